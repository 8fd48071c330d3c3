// chronicle — Status: the single errno -> category mapping.
#include <cerrno>
#include <cstring>

#include "chronicle/status.h"

namespace chronicle {

const char* errc_name(errc c) noexcept {
    switch (c) {
        case errc::ok:
            return "ok";
        case errc::invalid_argument:
            return "invalid argument";
        case errc::not_found:
            return "not found";
        case errc::busy:
            return "busy";
        case errc::no_space:
            return "no space";
        case errc::too_large:
            return "too large";
        case errc::corrupt:
            return "corrupt";
        case errc::timeout:
            return "timeout";
        case errc::io_error:
            return "i/o error";
        case errc::expired:
            return "expired";
        case errc::closed:
            return "closed";
    }
    return "unknown";
}

Status Status::from_errno(int err, std::string_view what, std::string_view path) {
    errc code = errc::io_error;
    switch (err) {
        case ENOENT:
        case ENOTDIR:
            code = errc::not_found;
            break;
        case ENOSPC:
        case EDQUOT:
            code = errc::no_space;
            break;
        case EAGAIN:
            code = errc::busy;  // lock::try_exclusive maps a lock's EACCES itself
            break;
        case EINVAL:
        case ENAMETOOLONG:
            code = errc::invalid_argument;
            break;
        case ELOOP:  // O_NOFOLLOW met a symlink where a queue file should be: damage
            code = errc::corrupt;
            break;
        default:
            break;
    }
    std::string msg;
    msg.reserve(what.size() + path.size() + 40);
    msg.append(what);
    if (!path.empty()) {
        msg.append(" ");
        msg.append(path);
    }
    msg.append(": ");
    msg.append(err == ELOOP ? "is a symbolic link (refused)" : std::strerror(err));
    return Status(code, std::move(msg), err);
}

}  // namespace chronicle
