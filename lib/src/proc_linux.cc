// chronicle — Linux process and descriptor helpers (see proc_linux.h).
#include "proc_linux.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

namespace chronicle::proc {

int pidfd_open(int pid) {
    return fs::above_stdio(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
}

int pidfd_getfd(int pidfd, int fd) {
    return fs::above_stdio(static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd, fd, 0)));
}

fs::Fd open_process(int pid, uint64_t start_time) {
    if (pid <= 0) return {};
    fs::Fd p(pidfd_open(pid));
    if (!p.valid()) return {};
    if (start_time != 0 && fs::process_start_time(pid) != start_time) return {};
    return p;
}

bool exited(int pidfd) {
    pollfd p{pidfd, POLLIN, 0};
    return ::poll(&p, 1, 0) > 0;
}

uint64_t eventfd_id(int fd) {
    char path[64];
    (void)std::snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
    const int f = ::open(path, O_RDONLY | O_CLOEXEC);
    if (f < 0) return 0;
    char buf[1024];
    const ssize_t n = ::read(f, buf, sizeof buf - 1);
    ::close(f);
    if (n <= 0) return 0;
    buf[n] = '\0';
    const char* p = std::strstr(buf, "eventfd-id:");
    if (p == nullptr) return 0;
    return std::strtoull(p + std::strlen("eventfd-id:"), nullptr, 10);
}

bool is_eventfd(int fd) {
    char path[64];
    char target[64] = {};
    (void)std::snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    const ssize_t n = ::readlink(path, target, sizeof target - 1);
    return n > 0 && std::string_view(target, static_cast<size_t>(n)) == "anon_inode:[eventfd]";
}

}  // namespace chronicle::proc
