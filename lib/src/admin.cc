// chronicle — reader inspection and management (see admin.h).
#include "chronicle/admin.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "cursor.h"
#include "format.h"
#include "fs.h"
#include "lock.h"
#include "queue_files.h"
#include "registration.h"
#include "segment.h"
#include "wake.h"

namespace chronicle {

using namespace format;

namespace {

// Files younger than this are never collected: their owner may be between creating them
// and taking their lock.
constexpr uint64_t kGcGraceNs = 10ull * 1000000000ull;

Status check_name(std::string_view name) {
    if (files::is_ephemeral(name) && name.find('/') == std::string_view::npos &&
        name.size() < 200) {
        return {};
    }
    return validate_reader_name(name);
}

struct Opened {
    fs::Fd dirfd;
    fs::Fd readers_fd;
    std::string readers_path;
};

Result<Opened> open_queue(std::string_view dir) {
    Opened o;
    auto d = files::open_queue_dir(dir);
    if (!d) return d.status();
    o.dirfd = std::move(d.value());
    o.readers_path = files::readers_path(dir);
    auto r = files::open_readers_dir(o.dirfd.get(), dir);
    if (!r) return r.status();
    o.readers_fd = std::move(r.value());
    return o;
}

// Where record `seq` starts: (segment base, offset), via the sparse index.
struct Loc {
    uint64_t base = 0;
    uint64_t off = 0;
    uint64_t data_begin = 0;
    uint64_t size = 0;
};

Result<Loc> locate(int dirfd, std::string_view dir, const std::vector<uint64_t>& bases,
                   uint64_t seq) {
    if (bases.empty()) return Loc{};
    auto it = std::upper_bound(bases.begin(), bases.end(), seq);
    const uint64_t base = it == bases.begin() ? bases.front() : *(it - 1);
    auto s = Segment::open(dirfd, dir, base, false);
    if (!s) return s.status();
    auto [off, at] = s->index_floor(seq);
    const auto e = s->scan(off, at, seq);
    return Loc{base, e.off, s->data_begin(), s->size()};
}

uint64_t timestamp_at(std::string_view dir, uint64_t seq) {
    ReaderOptions ro;
    ro.start = Position::at_seq(seq);
    auto r = Reader::open(dir, ro);
    if (!r) return 0;
    auto n = r.value()->next();
    if (!n || !n.value()) return 0;
    return n.value()->timestamp_ns;
}

bool pid_matches(int pid, uint64_t start_time) {
    if (pid <= 0 || (::kill(pid, 0) != 0 && errno == ESRCH)) return false;
    return start_time == 0 || fs::process_start_time(pid) == start_time;
}

// A reader whose cursor file cannot be used, as it is reported (never left out: a damaged
// cursor that vanished from the list would turn a failing check into "OK"). `fd`, when
// valid, tells whether a process holds the name anyway (a newer version of chronicle).
ReaderStats damaged_reader(std::string_view name, const std::string& why, int fd) {
    ReaderStats r;
    r.name = std::string(name);
    r.ephemeral = files::is_ephemeral(name);
    r.damaged = true;
    r.damage = why;
    if (fd >= 0) {
        auto held = lock::is_held(fd, name);
        r.alive = held && held.value();
    }
    return r;
}

Result<ReaderStats> stat_reader(const Opened& q, std::string_view dir, std::string_view name,
                                const QueueStats& qs, const std::vector<uint64_t>& bases) {
    if (Status st = check_name(name); !st) return st;
    const std::string file = files::reader_file(name, files::ReaderFile::cursor);
    const std::string path = fs::join(q.readers_path, file);
    auto fd = open_cursor_readonly(q.readers_fd.get(), q.readers_path, name);
    if (!fd) {
        if (fd.status().code() == errc::not_found) return fd.status();
        // Opened again only to ask whether someone holds it (wrong size, say).
        auto raw = fs::open_at(q.readers_fd.get(), q.readers_path, file, O_RDONLY);
        return damaged_reader(name, fd.status().message(), raw ? raw->get() : -1);
    }
    std::byte page[kCursorFileSize];
    const ssize_t got = ::pread(fd->get(), page, sizeof page, 0);
    if (got != static_cast<ssize_t>(sizeof page)) {
        const Status st = got < 0 ? Status::from_errno(errno, "cannot read", path)
                                  : Status(errc::corrupt, path + ": truncated while read");
        return damaged_reader(name, st.message(), fd->get());
    }
    const auto* h = reinterpret_cast<const CursorHeader*>(page);
    const auto* w = reinterpret_cast<const CursorWake*>(page + kCursorWakeOffset);
    // The checks CursorStore::open makes: what it refuses is damaged here too.
    if (Status st = check_cursor_header(h, path); !st) {
        return damaged_reader(name, st.message(), fd->get());
    }
    // A stored position never passes the head (readers store only what they handed over,
    // and create/reset refuse positions past it): one that does is a damaged word. The
    // head is asked again first, in case the reader moved on since the snapshot.
    if (const uint64_t pos = h->next_seq.load(std::memory_order_relaxed); pos > qs.head_seq) {
        auto rd = Reader::open(dir);
        auto now = rd ? rd.value()->head() : Result<uint64_t>(rd.status());
        if (now && pos > now.value()) {
            return damaged_reader(name,
                                  path + ": stored position " + std::to_string(pos) +
                                      " is past the head " + std::to_string(now.value()),
                                  fd->get());
        }
    }
    auto held = lock::is_held(fd->get(), path);
    if (!held) return held.status();

    ReaderStats r;
    r.name = std::string(name);
    r.ephemeral = files::is_ephemeral(name);
    r.alive = held.value();
    r.owner_pid = r.alive ? static_cast<int>(h->owner_pid.load(std::memory_order_relaxed)) : 0;
    r.position = h->next_seq.load(std::memory_order_relaxed);
    r.created_ns = h->created_ns;
    r.commit_ns = h->commit_ns.load(std::memory_order_relaxed);
    r.lag = qs.head_seq > r.position ? qs.head_seq - r.position : 0;
    if (r.lag > 0) {
        const uint64_t ts = timestamp_at(dir, std::max(r.position, qs.first_seq));
        const uint64_t now = fs::realtime_ns();
        r.lag_seconds = ts != 0 && now > ts ? static_cast<double>(now - ts) / 1e9 : 0.0;
        auto from = locate(q.dirfd.get(), dir, bases, std::max(r.position, qs.first_seq));
        auto to = locate(q.dirfd.get(), dir, bases, qs.head_seq);
        if (from && to) {
            if (from->base == to->base) {
                r.lag_bytes = to->off - from->off;
            } else {
                // Segments in between count whole: an upper bound by less than one record
                // per segment (the slack before each seal).
                const auto a = std::find(bases.begin(), bases.end(), from->base);
                const auto b = std::find(bases.begin(), bases.end(), to->base);
                const uint64_t between = b > a ? static_cast<uint64_t>(b - a - 1) : 0;
                r.lag_bytes = (from->size - from->off) + between * (from->size - from->data_begin) +
                              (to->off - to->data_begin);
            }
        }
    }
    r.follower.sleeping = r.alive && (w->sleep_word.load(std::memory_order_relaxed) & 1) != 0;
    r.follower.wakeups = w->wakeups.load(std::memory_order_relaxed);
    auto text = fs::read_small_file(q.readers_fd.get(), q.readers_path,
                                    files::reader_file(name, files::ReaderFile::efd), 4096);
    if (text) {
        auto e = efd_from_json(text.value(), files::reader_file(name, files::ReaderFile::efd));
        if (e) {
            r.follower.registered = true;
            r.follower.pid = e->pid;
            r.follower.fd = e->fd;
            r.follower.fifo = e->fifo;
            r.follower.start_time = e->start_time;
            r.follower.eventfd_id = e->eventfd_id;
            r.follower.created_ns = e->created_ns;
            r.follower.pid_alive = pid_matches(e->pid, e->start_time);
        }
    }
    return r;
}

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
Status lock_damaged_cursor(const Opened& q, std::string_view name, fs::Fd& out) {
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

Result<QueueStats> inspect_queue(std::string_view dir) {
    auto q = open_queue(dir);
    if (!q) return q.status();
    QueueStats s;
    s.dir = std::string(dir);
    auto bases = files::list_segments(dir);
    if (!bases) return bases.status();
    s.segments = bases->size();
    for (uint64_t b : bases.value()) {
        struct stat st {};
        if (::fstatat(q->dirfd.get(), files::segment_name(b).c_str(), &st, AT_SYMLINK_NOFOLLOW) ==
            0) {
            s.bytes += static_cast<uint64_t>(st.st_size);
            s.segment_size = static_cast<uint64_t>(st.st_size);
        }
    }
    auto r = Reader::open(dir);
    if (!r) return r.status();
    auto head = r.value()->head();
    if (!head) return head.status();
    auto first = r.value()->first();
    if (!first) return first.status();
    s.head_seq = head.value();
    s.first_seq = first.value();
    if (s.head_seq > s.first_seq) s.last_timestamp_ns = timestamp_at(dir, s.head_seq - 1);
    struct statvfs vfs {};
    if (::fstatvfs(q->dirfd.get(), &vfs) == 0) {
        s.disk_free = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
    }
    const files::WriterInfo w = files::query_writer(q->dirfd.get(), dir);
    s.writer_alive = w.alive;
    s.writer_pid = w.pid;
    if (w.alive) s.notifier_status = w.notifier;
    // The wake page, read-only and only if it exists (inspection creates nothing).
    auto wp = fs::open_at(q->dirfd.get(), dir, files::kWakePage, O_RDONLY);
    if (wp) {
        auto size = fs::file_size(wp->get(), files::kWakePage);
        if (size && size.value() == kPageSize) {
            auto m = fs::Mapping::map(wp->get(), kPageSize, false, files::kWakePage);
            if (m) {
                const auto* page = reinterpret_cast<const WakePage*>(m->data());
                s.notifier_rescans = page->rescans.load(std::memory_order_relaxed);
                s.notifier_wakes = page->wakes_sent.load(std::memory_order_relaxed);
            }
        }
    }
    return s;
}

namespace {

// What every reader report starts from: the queue's descriptors, its stats, its segments.
struct Snapshot {
    Opened q;
    QueueStats stats;
    std::vector<uint64_t> bases;
};

Result<Snapshot> snapshot(std::string_view dir) {
    auto q = open_queue(dir);
    if (!q) return q.status();
    auto qs = inspect_queue(dir);
    if (!qs) return qs.status();
    auto bases = files::list_segments(dir);
    if (!bases) return bases.status();
    return Snapshot{std::move(q.value()), std::move(qs.value()), std::move(bases.value())};
}

}  // namespace

Result<std::vector<ReaderStats>> inspect_readers(std::string_view dir) {
    auto s = snapshot(dir);
    if (!s) return s.status();
    auto names = list_reader_names(s->q.readers_path, true);
    if (!names) return names.status();
    std::vector<ReaderStats> out;
    for (const auto& n : names.value()) {
        auto r = stat_reader(s->q, dir, n, s->stats, s->bases);
        if (r) {
            out.push_back(std::move(r.value()));
        } else if (r.status().code() != errc::not_found) {  // not_found: removed meanwhile
            out.push_back(damaged_reader(n, r.status().message(), -1));
        }
    }
    return out;
}

Result<ReaderStats> inspect_reader(std::string_view dir, std::string_view name) {
    auto s = snapshot(dir);
    if (!s) return s.status();
    return stat_reader(s->q, dir, name, s->stats, s->bases);
}

Status create_reader(std::string_view dir, std::string_view name, const Position& at) {
    if (Status st = validate_reader_name(name); !st) return st;
    auto q = open_queue(dir);
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
    if (Status st = check_name(name); !st) return st;
    auto q = open_queue(dir);
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
    auto q = open_queue(dir);
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
                                            bool dry_run) {
    auto q = open_queue(dir);
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
    auto has = [&](const std::string& file) {
        return std::find(names->begin(), names->end(), file) != names->end();
    };
    for (const auto& f : names.value()) {
        if (files::is_temp_name(f)) {
            if (old_enough(f)) {
                if (Status st = drop(f); !st) return st;
            }
            continue;
        }
        std::string base;
        files::ReaderFile kind{};
        if (!files::parse_reader_file(f, base, kind)) continue;
        if (kind != files::ReaderFile::cursor) {
            // .efd / .fifo without a cursor: the follower is gone.
            if (!has(files::reader_file(base, files::ReaderFile::cursor)) && old_enough(f)) {
                if (Status st = drop(f); !st) return st;
            }
            continue;
        }
        if (!check_name(base)) continue;
        auto fd = fs::open_at(q->readers_fd.get(), q->readers_path, f, O_RDONLY);
        if (!fd) continue;
        auto held = lock::is_held(fd->get(), f);
        if (!held || held.value()) continue;  // alive: never touched
        if (!old_enough(f)) continue;         // maybe being set up right now
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
