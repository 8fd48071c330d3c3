// chronicle tests — shared helpers: temporary queue directories, byte damage, processes.
#pragma once

#include <dirent.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "chronicle/reader.h"
#include "chronicle/writer.h"

namespace test {

// A fresh directory under $TMPDIR, removed with everything in it on destruction.
class TempDir {
  public:
    TempDir() {
        const char* base = std::getenv("TMPDIR");
        std::string tmpl = std::string(base ? base : "/tmp") + "/chronicle-test.XXXXXX";
        std::vector<char> buf(tmpl.begin(), tmpl.end());
        buf.push_back('\0');
        if (::mkdtemp(buf.data()) == nullptr) std::abort();
        path_ = buf.data();
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    [[nodiscard]] const std::string& path() const { return path_; }
    [[nodiscard]] std::string queue() const { return path_ + "/q"; }

  private:
    std::string path_;
};

inline chronicle::WriterOptions small_segments(uint64_t size = 16 * 1024) {
    chronicle::WriterOptions o;
    o.segment_size = size;
    return o;
}

// Reads every record of `dir` from the start with a fresh anonymous reader.
inline std::vector<std::string> read_all(const std::string& dir) {
    std::vector<std::string> out;
    auto r = chronicle::Reader::open(dir);
    if (!r) return out;
    for (;;) {
        auto n = r.value()->next();
        if (!n || !n.value()) break;
        out.emplace_back(n.value()->text());
    }
    return out;
}

inline size_t count_open_fds() {
    size_t n = 0;
    if (DIR* d = ::opendir("/proc/self/fd")) {
        while (::readdir(d) != nullptr) ++n;
        ::closedir(d);
    }
    return n;
}

inline size_t count_mappings() {
    size_t n = 0;
    if (FILE* f = std::fopen("/proc/self/maps", "r")) {
        for (int c; (c = std::fgetc(f)) != EOF;) n += c == '\n';
        std::fclose(f);
    }
    return n;
}

inline std::vector<std::string> list_dir(const std::string& dir) {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(dir))
        out.push_back(e.path().filename());
    std::sort(out.begin(), out.end());
    return out;
}

// ---- Byte damage: a file's bytes read and written behind the library's back (pread and
// pwrite, bypassing any mapping). A file that cannot be opened or is too short fails the test.

// A value whose bytes can be peeked and poked as they are (not a pointer: a string literal
// goes to the std::string_view overload of poke, not its address).
template <class T>
concept PlainBytes = std::is_trivially_copyable_v<T> && !std::is_pointer_v<T>;

// The T stored at `off` of the file `path`: peek<uint32_t>(seg, offset).
template <PlainBytes T>
T peek(const std::string& path, uint64_t off) {
    T v{};
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    const ssize_t n = ::pread(fd, &v, sizeof v, static_cast<off_t>(off));
    ::close(fd);
    REQUIRE(n == static_cast<ssize_t>(sizeof v));
    return v;
}

// Stores `v` at `off` of the file `path`: poke<uint32_t>(seg, offset, 0).
template <PlainBytes T>
void poke(const std::string& path, uint64_t off, T v) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    const ssize_t n = ::pwrite(fd, &v, sizeof v, static_cast<off_t>(off));
    ::close(fd);
    REQUIRE(n == static_cast<ssize_t>(sizeof v));
}

// Writes `bytes` at `off` of the file `path`: poke(seg, offset, "JUNK").
inline void poke(const std::string& path, uint64_t off, std::string_view bytes) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    const ssize_t n = ::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(off));
    ::close(fd);
    REQUIRE(n == static_cast<ssize_t>(bytes.size()));
}

// The whole content of the file `path` (empty if it cannot be read).
inline std::string file_bytes(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::ostringstream o;
    o << f.rdbuf();
    return o.str();
}

}  // namespace test
