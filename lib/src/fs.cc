// chronicle — POSIX helpers (see fs.h).
#include "fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace chronicle::fs {

namespace {
constexpr size_t kPageBytes = 4096;
}

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

// --- The truncation guard. A mapped file that another process truncates raises SIGBUS on
// the next access past its new end: a reader of a queue someone damaged would die. Every
// Mapping registers its range here; a SIGBUS inside a registered range replaces the
// faulting page with a private zero page (MAP_FIXED) and marks the mapping, and the access
// is retried and reads zeros — a record state of 0, "no record here". The owner asks
// Mapping::truncated() when it meets the end of the data. A SIGBUS anywhere else goes to
// the handler that was installed before (or the default action: the process dies as it
// would have). The registry is a fixed array of lock-free words, so the handler reads it
// without locks; a mapping made while it is full is simply not guarded.
namespace {

constexpr int kGuardSlots = 4096;
struct GuardSlot {
    std::atomic<uintptr_t> begin{0};  // 0: free
    std::atomic<uintptr_t> end{0};
    std::atomic<uint32_t> hit{0};
};
GuardSlot g_guard[kGuardSlots];
struct sigaction g_previous_sigbus {};

extern "C" void on_sigbus(int sig, siginfo_t* si, void* ctx) {
    const auto addr = reinterpret_cast<uintptr_t>(si->si_addr);
    for (auto& slot : g_guard) {
        // Acquire: pairs with the release store of `begin` in guard_register, so `end`
        // is that mapping's.
        const uintptr_t b = slot.begin.load(std::memory_order_acquire);
        if (b == 0 || addr < b || addr >= slot.end.load(std::memory_order_relaxed)) continue;
        const uintptr_t page = addr & ~(uintptr_t{kPageBytes} - 1);
        void* p = ::mmap(reinterpret_cast<void*>(page), kPageBytes, PROT_READ | PROT_WRITE,
                         MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) break;
        slot.hit.store(1, std::memory_order_relaxed);  // read by the same thread later
        return;
    }
    // Not ours: behave as if we had never been installed.
    if ((g_previous_sigbus.sa_flags & SA_SIGINFO) != 0 && g_previous_sigbus.sa_sigaction) {
        g_previous_sigbus.sa_sigaction(sig, si, ctx);
        return;
    }
    if (g_previous_sigbus.sa_handler != SIG_DFL && g_previous_sigbus.sa_handler != SIG_IGN) {
        g_previous_sigbus.sa_handler(sig);
        return;
    }
    (void)::signal(SIGBUS, SIG_DFL);  // the access is retried and kills the process as before
}

void install_guard() {
    static std::once_flag once;
    std::call_once(once, [] {
        struct sigaction sa {};
        sa.sa_sigaction = on_sigbus;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
        ::sigaction(SIGBUS, &sa, &g_previous_sigbus);
    });
}

int guard_register(const std::byte* base, size_t size) {
    install_guard();
    for (int i = 0; i < kGuardSlots; ++i) {
        uintptr_t expect = 0;
        // Claim a free slot with a placeholder, fill it, then publish `begin` (release).
        if (g_guard[i].begin.compare_exchange_strong(expect, 1, std::memory_order_relaxed)) {
            g_guard[i].hit.store(0, std::memory_order_relaxed);
            g_guard[i].end.store(0, std::memory_order_relaxed);
            g_guard[i].end.store(reinterpret_cast<uintptr_t>(base) + size,
                                 std::memory_order_relaxed);
            g_guard[i].begin.store(reinterpret_cast<uintptr_t>(base), std::memory_order_release);
            return i;
        }
    }
    return -1;
}

void guard_unregister(int i) {
    if (i < 0) return;
    g_guard[i].end.store(0, std::memory_order_relaxed);
    // Release: orders the reset of `end` before the slot becomes free for reuse.
    g_guard[i].begin.store(0, std::memory_order_release);
}

}  // namespace

Mapping& Mapping::operator=(Mapping&& o) noexcept {
    if (this != &o) {
        reset();
        base_ = std::exchange(o.base_, nullptr);
        size_ = std::exchange(o.size_, 0);
        guard_ = std::exchange(o.guard_, -1);
    }
    return *this;
}

void Mapping::reset() noexcept {
    guard_unregister(std::exchange(guard_, -1));
    if (base_ != nullptr) ::munmap(base_, size_);
    base_ = nullptr;
    size_ = 0;
}

bool Mapping::truncated() const noexcept {
    return guard_ >= 0 && g_guard[guard_].hit.load(std::memory_order_relaxed) != 0;
}

Result<Mapping> Mapping::map(int fd, size_t size, bool writable, std::string_view path) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) return Status::from_errno(errno, "cannot stat", path);
    if (static_cast<uint64_t>(st.st_size) < size) {
        return Status(errc::corrupt, std::string(path) + ": file is shorter (" +
                                         std::to_string(st.st_size) + " bytes) than expected (" +
                                         std::to_string(size) + ")");
    }
    if (writable) {
        if (Status a = allocate(fd, size, path); !a) return a;
    }
    const int prot = writable ? (PROT_READ | PROT_WRITE) : PROT_READ;
    void* p = ::mmap(nullptr, size, prot, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) return Status::from_errno(errno, "cannot map", path);
    Mapping m;
    m.base_ = static_cast<std::byte*>(p);
    m.size_ = size;
    m.guard_ = guard_register(m.base_, size);
    return m;
}

std::string join(std::string_view dir, std::string_view name) {
    std::string s(dir);
    if (!s.empty() && s.back() != '/') s.push_back('/');
    s.append(name);
    return s;
}

int above_stdio(int fd) noexcept {
    if (fd < 0 || fd > 2) return fd;
    const int high = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
    const int err = errno;
    ::close(fd);
    errno = err;
    return high;
}

namespace {
const char* type_name(mode_t m) {
    if (S_ISFIFO(m)) return "a FIFO";
    if (S_ISDIR(m)) return "a directory";
    if (S_ISSOCK(m)) return "a socket";
    if (S_ISCHR(m) || S_ISBLK(m)) return "a device";
    if (S_ISLNK(m)) return "a symbolic link";
    return "a regular file";
}
const char* type_name(FileType t) {
    switch (t) {
        case FileType::directory:
            return "a directory";
        case FileType::fifo:
            return "a FIFO";
        case FileType::regular:
            break;
    }
    return "a regular file";
}
bool has_type(mode_t m, FileType t) {
    switch (t) {
        case FileType::directory:
            return S_ISDIR(m);
        case FileType::fifo:
            return S_ISFIFO(m);
        case FileType::regular:
            break;
    }
    return S_ISREG(m);
}
}  // namespace

Result<Fd> open_at(int dirfd, std::string_view dir_path, std::string_view name, int flags,
                   mode_t mode, FileType type) {
    if ((flags & O_DIRECTORY) != 0) type = FileType::directory;
    std::string n(name);
    const int raw = ::openat(dirfd, n.c_str(), flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, mode);
    if (raw < 0) {
        const int err = errno;
        // A FIFO opened for writing without a reader (ENXIO), or a directory opened for
        // writing (EISDIR): the wrong type of file, reported as such.
        struct stat st {};
        if ((err == ENXIO || err == EISDIR || err == ENOTDIR) &&
            ::fstatat(dirfd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            !has_type(st.st_mode, type)) {
            return Status(
                errc::corrupt,
                join(dir_path, name) + " is " + type_name(st.st_mode) + ", not " + type_name(type),
                err);
        }
        return Status::from_errno(err, "cannot open", join(dir_path, name));
    }
    Fd fd(above_stdio(raw));
    if (!fd.valid()) return Status::from_errno(errno, "cannot open", join(dir_path, name));
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
        return Status::from_errno(errno, "cannot stat", join(dir_path, name));
    }
    if (!has_type(st.st_mode, type)) {
        return Status(errc::corrupt, join(dir_path, name) + " is " + type_name(st.st_mode) +
                                         ", not " + type_name(type));
    }
    return fd;
}

Result<Fd> open_dir(std::string_view path) {
    std::string p(path);
    Fd fd(above_stdio(::open(p.c_str(), O_RDONLY | O_DIRECTORY | O_NONBLOCK | O_CLOEXEC)));
    if (!fd.valid()) {
        const int err = errno;
        struct stat st {};
        if (err == ENOTDIR && ::stat(p.c_str(), &st) == 0) {
            return Status(errc::invalid_argument,
                          std::string(path) + " is " + type_name(st.st_mode) + ", not a directory",
                          err);
        }
        return Status::from_errno(err, "cannot open directory", path);
    }
    return fd;
}

Status allocate(int fd, uint64_t size, std::string_view path) {
    int rc;
    do {
        rc = ::fallocate(fd, 0, 0, static_cast<off_t>(size)) == 0 ? 0 : errno;
    } while (rc == EINTR);
    if (rc == 0 || rc == EOPNOTSUPP) return {};
    return Status::from_errno(rc, "cannot allocate", path);
}

Result<uint64_t> file_size(int fd, std::string_view path) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) return Status::from_errno(errno, "cannot stat", path);
    if (!S_ISREG(st.st_mode)) {
        return Status(errc::corrupt, "not a regular file: " + std::string(path));
    }
    return static_cast<uint64_t>(st.st_size);
}

Status pwrite_all(int fd, const void* data, size_t size, uint64_t offset, std::string_view path) {
    const auto* p = static_cast<const std::byte*>(data);
    size_t done = 0;
    while (done < size) {
        const ssize_t n = ::pwrite(fd, p + done, size - done, static_cast<off_t>(offset + done));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return Status::from_errno(errno, "cannot write", path);
        if (n == 0) return Status::from_errno(ENOSPC, "cannot write", path);
        done += static_cast<size_t>(n);
    }
    return {};
}

Status write_file_atomic(int dirfd, std::string_view dir_path, std::string_view name,
                         std::string_view tmp_name, std::string_view content) {
    const std::string tmp(tmp_name);
    auto fd = open_at(dirfd, dir_path, tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (!fd) return fd.status();
    if (Status st = pwrite_all(fd->get(), content.data(), content.size(), 0, join(dir_path, tmp));
        !st.ok()) {
        ::unlinkat(dirfd, tmp.c_str(), 0);
        return st;
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
    (void)std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
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
