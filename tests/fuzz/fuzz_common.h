// chronicle fuzzing — shared helpers for the libFuzzer targets in tests/fuzz/.
//
// Every target works in ONE temporary directory per process (created on first use under
// $TMPDIR, removed at exit), empties and refills it for each input, and never touches
// anything outside it. An oracle that fails calls fuzz::fail(), which prints why and
// aborts, so that libFuzzer records the input as a crash.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace fuzz {

[[noreturn]] inline void fail(const std::string& why) {
    std::fprintf(stderr, "chronicle fuzz oracle failed: %s\n", why.c_str());
    std::abort();
}

// The process's scratch directory, removed (with everything in it) at exit. A crash skips
// the removal; scripts/fuzz.sh points TMPDIR into build-fuzz/ so that nothing piles up.
inline const std::string& scratch_dir() {
    static const std::string dir = [] {
        const char* base = std::getenv("TMPDIR");
        std::string tmpl = std::string(base != nullptr && *base != '\0' ? base : "/tmp") +
                           "/chronicle-fuzz.XXXXXX";
        std::vector<char> buf(tmpl.begin(), tmpl.end());
        buf.push_back('\0');
        if (::mkdtemp(buf.data()) == nullptr) {
            std::perror("chronicle fuzz: mkdtemp");
            std::abort();
        }
        std::string d = buf.data();
        static std::string for_exit;
        for_exit = d;
        std::atexit([] {
            std::error_code ec;
            std::filesystem::remove_all(for_exit, ec);
        });
        return d;
    }();
    return dir;
}

// <scratch>/q, empty (removed with its contents and created again).
inline std::string fresh_queue_dir() {
    const std::string q = scratch_dir() + "/q";
    std::error_code ec;
    std::filesystem::remove_all(q, ec);
    if (ec || ::mkdir(q.c_str(), 0755) != 0) {
        std::perror("chronicle fuzz: cannot make the queue directory");
        std::abort();
    }
    return q;
}

inline void write_file(const std::string& path, const void* data, size_t n) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        std::perror(path.c_str());
        std::abort();
    }
    const auto* p = static_cast<const char*>(data);
    while (n > 0) {
        const ssize_t k = ::write(fd, p, n);
        if (k <= 0) {
            std::perror(path.c_str());
            std::abort();
        }
        p += k;
        n -= static_cast<size_t>(k);
    }
    ::close(fd);
}

inline void write_file(const std::string& path, std::string_view s) {
    write_file(path, s.data(), s.size());
}

inline void make_dir(const std::string& path) {
    if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
        std::perror(path.c_str());
        std::abort();
    }
}

// For looking at a reproducer: with CHRONICLE_FUZZ_KEEP=DIR, a copy of the queue directory
// `q` as it is now goes to DIR/<label> (replaced if it exists). Off unless set.
inline void keep_copy(const std::string& q, const std::string& label) {
    static const char* keep = std::getenv("CHRONICLE_FUZZ_KEEP");
    if (keep == nullptr || *keep == '\0') return;
    const std::string to = std::string(keep) + "/" + label;
    std::error_code ec;
    std::filesystem::create_directories(keep, ec);
    std::filesystem::remove_all(to, ec);
    std::filesystem::copy(q, to, std::filesystem::copy_options::recursive, ec);
    if (ec) std::fprintf(stderr, "chronicle fuzz: cannot copy %s to %s\n", q.c_str(), to.c_str());
}

// Reads the fuzz input front to back; past the end every read yields zeros.
class Input {
  public:
    Input(const uint8_t* data, size_t size) : p_(data), end_(data + size) {}
    uint8_t u8() { return p_ < end_ ? *p_++ : 0; }
    uint16_t u16() { return static_cast<uint16_t>(u8() | (u8() << 8)); }
    uint32_t u32() { return u16() | (uint32_t{u16()} << 16); }
    uint64_t u64() { return u32() | (uint64_t{u32()} << 32); }
    [[nodiscard]] size_t left() const { return static_cast<size_t>(end_ - p_); }
    [[nodiscard]] const uint8_t* data() const { return p_; }
    std::string_view take(size_t n) {
        n = std::min(n, left());
        std::string_view s(reinterpret_cast<const char*>(p_), n);
        p_ += n;
        return s;
    }
    std::string_view rest() { return take(left()); }

  private:
    const uint8_t* p_;
    const uint8_t* end_;
};

}  // namespace fuzz
