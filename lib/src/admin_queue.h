// chronicle — what the admin functions (admin.cc inspects, admin_manage.cc changes) share:
// a queue opened with its readers/ directory, and the names they accept.
#pragma once

#include <string>
#include <string_view>

#include "chronicle/reader.h"
#include "chronicle/status.h"
#include "fs.h"
#include "queue_files.h"

namespace chronicle {

// A user's reader name, or an anonymous follower's "~anon.<pid>.<n>" (which can be
// inspected and deleted, never created).
inline Status check_admin_name(std::string_view name) {
    if (files::is_ephemeral(name) && name.find('/') == std::string_view::npos &&
        name.size() < 200) {
        return {};
    }
    return validate_reader_name(name);
}

// The queue directory and readers/, opened.
struct AdminQueue {
    fs::Fd dirfd;
    fs::Fd readers_fd;
    std::string readers_path;
};

inline Result<AdminQueue> open_admin_queue(std::string_view dir) {
    AdminQueue o;
    auto d = files::open_queue_dir(dir);
    if (!d) return d.status();
    o.dirfd = std::move(d.value());
    o.readers_path = files::readers_path(dir);
    auto r = files::open_readers_dir(o.dirfd.get(), dir);
    if (!r) return r.status();
    o.readers_fd = std::move(r.value());
    return o;
}

}  // namespace chronicle
