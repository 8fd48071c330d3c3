// chronicle — changing a queue's readers: create, delete, reset, gc (see admin.h).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "admin_queue.h"
#include "chronicle/admin.h"
#include "cursor.h"
#include "format.h"
#include "lock.h"

namespace chronicle {

using namespace format;

namespace {

// Files younger than this are never collected: their owner may be between creating them
// and taking their lock.
constexpr uint64_t kGcGraceNs = uint64_t{kGcGraceSeconds} * 1000000000ull;

Status remove_file(int readers_fd, const std::string& readers_path, const std::string& name) {
    if (::unlinkat(readers_fd, name.c_str(), 0) != 0 && errno != ENOENT) {
        return Status::from_errno(errno, "cannot remove", fs::join(readers_path, name));
    }
    return {};
}

// A cursor file that CursorStore::open refuses (truncated, wrong magic or version, not a
// regular file): delete_reader removes it all the same, as the owner of the name would.
// A regular file is opened and locked like a cursor (errc::busy while another process
// holds it: a newer chronicle, say); a FIFO, socket or symlink by that name holds no
// lock and goes as it is (unlinkat removes a symlink, never its target). A directory is
// left alone.
Status lock_damaged_cursor(const AdminQueue& q, std::string_view name, fs::Fd& out) {
    const std::string file = files::reader_file(name, files::ReaderFile::cursor);
    const std::string path = fs::join(q.readers_path, file);
    struct stat st {};
    if (::fstatat(q.readers_fd.get(), file.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        return Status::from_errno(errno, "cannot stat", path);
    }
    if (S_ISDIR(st.st_mode)) return Status(errc::corrupt, path + " is a directory");
    if (!S_ISREG(st.st_mode)) return {};
    auto fd = fs::open_at(q.readers_fd.get(), q.readers_path, file, O_RDWR);
    if (!fd) return fd.status();
    if (Status l = lock::try_exclusive(fd->get(), path); !l) {
        if (l.code() != errc::busy) return l;
        return Status(errc::busy,
                      "reader '" + std::string(name) + "' is in use by another process");
    }
    out = std::move(fd.value());
    return {};
}

// Resolves a position for create/reset. A sequence past the head is refused: a reader
// placed there would silently skip the records in between as they arrive.
Result<uint64_t> resolve(std::string_view dir, const Position& p) {
    ReaderOptions ro;
    ro.start = p;
    auto r = Reader::open(dir, ro);
    if (!r) return r.status();
    auto head = r.value()->head();
    if (!head) return head.status();
    if (r.value()->position() > head.value()) {
        return Status(errc::invalid_argument, "sequence " + std::to_string(r.value()->position()) +
                                                  " is past the head of " + std::string(dir) +
                                                  " (" + std::to_string(head.value()) + ")");
    }
    return r.value()->position();
}

}  // namespace

Status create_reader(std::string_view dir, std::string_view name, const Position& at) {
    if (Status st = validate_reader_name(name); !st) return st;
    auto q = open_admin_queue(dir);
    if (!q) return q.status();
    auto pos = resolve(dir, at);
    if (!pos) return pos.status();
    auto c = CursorStore::open(q->readers_fd.get(), q->readers_path, name,
                               {.create = true, .initial_seq = pos.value()});
    if (!c) return c.status();
    if (!c->created())
        return Status(errc::busy, "reader '" + std::string(name) + "' already exists");
    return {};
}

Status delete_reader(std::string_view dir, std::string_view name) {
    if (Status st = check_admin_name(name); !st) return st;
    auto q = open_admin_queue(dir);
    if (!q) return q.status();
    // Taking the name's lock (this is a change, not a liveness probe) keeps a concurrent
    // opener out while the files go.
    auto c = CursorStore::open(q->readers_fd.get(), q->readers_path, name,
                               {.ephemeral = files::is_ephemeral(name)});
    fs::Fd damaged;  // holds the lock of a damaged cursor while its files go
    if (!c) {
        const errc code = c.status().code();
        if (code == errc::not_found || code == errc::busy || code == errc::invalid_argument) {
            return c.status();
        }
        if (Status st = lock_damaged_cursor(*q, name, damaged); !st) {
            return st.code() == errc::busy ? st : c.status();
        }
    }
    for (files::ReaderFile kind :
         {files::ReaderFile::efd, files::ReaderFile::fifo, files::ReaderFile::cursor}) {
        if (Status st =
                remove_file(q->readers_fd.get(), q->readers_path, files::reader_file(name, kind));
            !st) {
            return st;
        }
    }
    return {};
}

Result<ResetResult> reset_reader(std::string_view dir, std::string_view name, const Position& to,
                                 bool dry_run) {
    if (Status st = validate_reader_name(name); !st) return st;
    auto q = open_admin_queue(dir);
    if (!q) return q.status();
    auto pos = resolve(dir, to);
    if (!pos) return pos.status();
    ResetResult rr;
    rr.new_position = pos.value();
    if (dry_run) {
        auto info = inspect_cursor(q->readers_fd.get(), q->readers_path, name);
        if (!info) return info.status();
        if (info->locked) {
            return Status(errc::busy, "reader '" + std::string(name) + "' is in use (pid " +
                                          std::to_string(info->owner_pid) + ")");
        }
        rr.old_position = info->next_seq;
        return rr;
    }
    auto c = CursorStore::open(q->readers_fd.get(), q->readers_path, name, {});
    if (!c) return c.status();
    rr.old_position = c->load();
    c->store(rr.new_position);
    return rr;
}

Result<std::vector<std::string>> gc_readers(std::string_view dir, uint64_t stale_after_ns,
                                            bool dry_run, std::vector<std::string>* deferred) {
    auto q = open_admin_queue(dir);
    if (!q) return q.status();
    auto names = fs::list_dir(q->readers_path);
    if (!names) return names.status();
    const uint64_t now = fs::realtime_ns();
    std::vector<std::string> removed;
    auto drop = [&](const std::string& file) -> Status {
        struct stat st {};
        if (::fstatat(q->readers_fd.get(), file.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return {};
        removed.push_back(fs::join(files::kReadersDir, file));
        return dry_run ? Status() : remove_file(q->readers_fd.get(), q->readers_path, file);
    };
    auto old_enough = [&](const std::string& file) {
        struct stat st {};
        if (::fstatat(q->readers_fd.get(), file.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
            return false;
        const uint64_t mtime = static_cast<uint64_t>(st.st_mtim.tv_sec) * 1000000000ull +
                               static_cast<uint64_t>(st.st_mtim.tv_nsec);
        return now > mtime && now - mtime >= kGcGraceNs;
    };
    // A file gc would remove but for its age: said, so that a gc right after a kill -9
    // does not silently remove nothing.
    auto defer = [&](const std::string& file) {
        if (deferred != nullptr) deferred->push_back(fs::join(files::kReadersDir, file));
    };
    auto has = [&](const std::string& file) {
        return std::find(names->begin(), names->end(), file) != names->end();
    };
    for (const auto& f : names.value()) {
        if (files::is_temp_name(f)) {
            if (old_enough(f)) {
                if (Status st = drop(f); !st) return st;
            } else {
                defer(f);
            }
            continue;
        }
        std::string base;
        files::ReaderFile kind{};
        if (!files::parse_reader_file(f, base, kind)) continue;
        if (kind != files::ReaderFile::cursor) {
            // .efd / .fifo without a cursor: the follower is gone.
            if (!has(files::reader_file(base, files::ReaderFile::cursor))) {
                if (!old_enough(f)) {
                    defer(f);
                } else if (Status st = drop(f); !st) {
                    return st;
                }
            }
            continue;
        }
        if (!check_admin_name(base)) continue;
        auto fd = fs::open_at(q->readers_fd.get(), q->readers_path, f, O_RDONLY);
        if (!fd) continue;
        auto held = lock::is_held(fd->get(), f);
        if (!held || held.value()) continue;  // alive: never touched
        if (!old_enough(f)) {                 // maybe being set up right now
            if (files::is_ephemeral(base)) defer(f);
            for (auto k : {files::ReaderFile::efd, files::ReaderFile::fifo}) {
                if (has(files::reader_file(base, k))) defer(files::reader_file(base, k));
            }
            continue;
        }
        CursorHeader h{};
        if (::pread(fd->get(), &h, sizeof h, 0) != static_cast<ssize_t>(sizeof h)) continue;
        if (Status st = drop(files::reader_file(base, files::ReaderFile::efd)); !st) return st;
        if (Status st = drop(files::reader_file(base, files::ReaderFile::fifo)); !st) return st;
        const uint64_t last = h.commit_ns.load(std::memory_order_relaxed);
        const bool stale = stale_after_ns != 0 && now > last && now - last >= stale_after_ns;
        if (files::is_ephemeral(base) || stale) {
            if (Status st = drop(f); !st) return st;
        }
    }
    return removed;
}

}  // namespace chronicle
