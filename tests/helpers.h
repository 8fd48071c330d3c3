// chronicle tests — shared helpers: temporary queue directories, byte damage, processes.
#pragma once

#include <dirent.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
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

}  // namespace test
