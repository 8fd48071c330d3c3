// chronicle — OFD locks (see lock.h).
#include "lock.h"

#include <fcntl.h>

#include <cerrno>

namespace chronicle::lock {

Status try_exclusive(int fd, std::string_view path) {
    struct flock fl {};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = 0;
    fl.l_len = 0;  // whole file
    fl.l_pid = 0;  // required for OFD locks
    if (::fcntl(fd, F_OFD_SETLK, &fl) == 0) return {};
    const int err = errno;
    if (err == EAGAIN || err == EACCES) {
        return Status(errc::busy, std::string(path) + " is locked by another process", err);
    }
    return Status::from_errno(err, "cannot lock", path);
}

Result<bool> is_held(int fd, std::string_view path) {
    struct flock fl {};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = 0;
    fl.l_len = 0;
    fl.l_pid = 0;
    if (::fcntl(fd, F_OFD_GETLK, &fl) != 0)
        return Status::from_errno(errno, "cannot query lock", path);
    return fl.l_type != F_UNLCK;
}

}  // namespace chronicle::lock
