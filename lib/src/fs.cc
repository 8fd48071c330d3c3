// chronicle — POSIX helpers (see fs.h).
#include "fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace chronicle::fs {

Fd& Fd::operator=(Fd&& o) noexcept {
    if (this != &o) {
        reset();
        fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
}

void Fd::reset() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

Mapping& Mapping::operator=(Mapping&& o) noexcept {
    if (this != &o) {
        reset();
        base_ = std::exchange(o.base_, nullptr);
        size_ = std::exchange(o.size_, 0);
    }
    return *this;
}

void Mapping::reset() noexcept {
    if (base_ != nullptr) ::munmap(base_, size_);
    base_ = nullptr;
    size_ = 0;
}

Result<Mapping> Mapping::map(int fd, size_t size, bool writable, std::string_view path) {
    const int prot = writable ? (PROT_READ | PROT_WRITE) : PROT_READ;
    void* p = ::mmap(nullptr, size, prot, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) return Status::from_errno(errno, "cannot map", path);
    Mapping m;
    m.base_ = static_cast<std::byte*>(p);
    m.size_ = size;
    return m;
}

std::string join(std::string_view dir, std::string_view name) {
    std::string s(dir);
    if (!s.empty() && s.back() != '/') s.push_back('/');
    s.append(name);
    return s;
}

Result<Fd> open_at(int dirfd, std::string_view dir_path, std::string_view name, int flags,
                   mode_t mode) {
    std::string n(name);
    int fd = ::openat(dirfd, n.c_str(), flags | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0) return Status::from_errno(errno, "cannot open", join(dir_path, name));
    return Fd(fd);
}

Result<Fd> open_dir(std::string_view path) {
    std::string p(path);
    int fd = ::open(p.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return Status::from_errno(errno, "cannot open directory", path);
    return Fd(fd);
}

Result<uint64_t> file_size(int fd, std::string_view path) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) return Status::from_errno(errno, "cannot stat", path);
    if (!S_ISREG(st.st_mode)) {
        return Status(errc::corrupt, "not a regular file: " + std::string(path));
    }
    return static_cast<uint64_t>(st.st_size);
}

Status write_file_atomic(int dirfd, std::string_view dir_path, std::string_view name,
                         std::string_view content) {
    std::string tmp = "." + std::string(name) + "." + std::to_string(::getpid()) + ".tmp";
    auto fd = open_at(dirfd, dir_path, tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (!fd) return fd.status();
    const char* p = content.data();
    size_t left = content.size();
    while (left > 0) {
        ssize_t n = ::write(fd->get(), p, left);
        if (n < 0) {
            if (errno == EINTR) continue;
            Status st = Status::from_errno(errno, "cannot write", join(dir_path, tmp));
            ::unlinkat(dirfd, tmp.c_str(), 0);
            return st;
        }
        p += n;
        left -= static_cast<size_t>(n);
    }
    std::string final_name(name);
    if (::renameat(dirfd, tmp.c_str(), dirfd, final_name.c_str()) != 0) {
        Status st = Status::from_errno(errno, "cannot rename into", join(dir_path, name));
        ::unlinkat(dirfd, tmp.c_str(), 0);
        return st;
    }
    return {};
}

Result<std::string> read_small_file(int dirfd, std::string_view dir_path, std::string_view name,
                                    size_t limit) {
    auto fd = open_at(dirfd, dir_path, name, O_RDONLY);
    if (!fd) return fd.status();
    std::string out;
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(fd->get(), buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            return Status::from_errno(errno, "cannot read", join(dir_path, name));
        }
        if (n == 0) break;
        out.append(buf, static_cast<size_t>(n));
        if (out.size() > limit) {
            return Status(errc::corrupt, "file too large: " + join(dir_path, name));
        }
    }
    return out;
}

Result<std::vector<std::string>> list_dir(std::string_view path) {
    std::string p(path);
    DIR* d = ::opendir(p.c_str());
    if (d == nullptr) return Status::from_errno(errno, "cannot list", path);
    std::vector<std::string> names;
    errno = 0;
    while (dirent* e = ::readdir(d)) {
        if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
        names.emplace_back(e->d_name);
    }
    int err = errno;
    ::closedir(d);
    if (err != 0) return Status::from_errno(err, "cannot list", path);
    return names;
}

uint64_t realtime_ns() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

uint64_t monotonic_ns() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

uint64_t process_start_time(int pid) noexcept {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
    int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    char buf[1024];
    ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    if (n <= 0) return 0;
    buf[n] = '\0';
    // The command name (field 2) may contain spaces and ')': skip to the last ')'.
    const char* p = std::strrchr(buf, ')');
    if (p == nullptr) return 0;
    ++p;
    // Fields from 3 on are separated by single spaces; field 22 is the 20th after ')'.
    for (int field = 3; field < 22; ++field) {
        p = std::strchr(p + 1, ' ');
        if (p == nullptr) return 0;
    }
    return std::strtoull(p + 1, nullptr, 10);
}

}  // namespace chronicle::fs
