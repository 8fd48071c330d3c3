// chronicle — OFD locks (see lock.h).
#include "lock.h"

#include <fcntl.h>
#include <time.h>

#include <algorithm>
#include <cerrno>

#include "fs.h"

namespace chronicle::lock {

namespace {

struct flock span(short type, int64_t start, int64_t len) {
    struct flock fl {};
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    fl.l_start = start;
    fl.l_len = len;
    fl.l_pid = 0;  // required for OFD locks
    return fl;
}

Status busy_or_error(int err, std::string_view path) {
    if (err == EAGAIN || err == EACCES) {
        return Status(errc::busy, std::string(path) + " is locked by another process", err);
    }
    return Status::from_errno(err, "cannot lock", path);
}

}  // namespace

Status try_exclusive(int fd, std::string_view path) {
    return range(fd, path, Kind::write, 0, 0, 0);
}

Status range(int fd, std::string_view path, Kind kind, int64_t start, int64_t len,
             uint64_t wait_ms) {
    struct flock fl = span(kind == Kind::read ? F_RDLCK : F_WRLCK, start, len);
    if (wait_ms == kForever) {
        for (;;) {
            if (::fcntl(fd, F_OFD_SETLKW, &fl) == 0) return {};
            if (errno != EINTR) return Status::from_errno(errno, "cannot lock", path);
        }
    }
    const uint64_t deadline =
        fs::monotonic_ns() + std::min<uint64_t>(wait_ms, UINT64_MAX / 2'000'000) * 1'000'000;
    uint64_t pause_ns = 1'000'000;
    for (;;) {
        if (::fcntl(fd, F_OFD_SETLK, &fl) == 0) return {};
        const int err = errno;
        if (err != EAGAIN && err != EACCES) return busy_or_error(err, path);
        const uint64_t now = fs::monotonic_ns();
        if (wait_ms == 0 || now >= deadline) return busy_or_error(err, path);
        const uint64_t nap = std::min(pause_ns, deadline - now);
        const timespec ts{static_cast<time_t>(nap / 1'000'000'000),
                          static_cast<long>(nap % 1'000'000'000)};
        ::nanosleep(&ts, nullptr);
        pause_ns = std::min<uint64_t>(pause_ns * 2, 50'000'000);
    }
}

void unlock_range(int fd, int64_t start, int64_t len) noexcept {
    struct flock fl = span(F_UNLCK, start, len);
    (void)::fcntl(fd, F_OFD_SETLK, &fl);
}

Result<bool> is_held(int fd, std::string_view path) {
    struct flock fl = span(F_WRLCK, 0, 0);
    if (::fcntl(fd, F_OFD_GETLK, &fl) != 0)
        return Status::from_errno(errno, "cannot query lock", path);
    return fl.l_type != F_UNLCK;
}

}  // namespace chronicle::lock
