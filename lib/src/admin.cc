// chronicle — inspecting a queue and its readers (see admin.h; admin_manage.cc changes them).
#include "chronicle/admin.h"

#include "chronicle/retention.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "admin_queue.h"
#include "cursor.h"
#include "format.h"
#include "fs.h"
#include "lock.h"
#include "producers.h"
#include "queue_files.h"
#include "registration.h"
#include "segment.h"
#include "wake.h"

namespace chronicle {

using namespace format;

namespace {

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

Result<ReaderStats> stat_reader(const AdminQueue& q, std::string_view dir, std::string_view name,
                                const QueueStats& qs, const std::vector<uint64_t>& bases) {
    if (Status st = check_admin_name(name); !st) return st;
    const std::string file = files::reader_file(name, files::ReaderFile::cursor);
    const std::string path = fs::join(q.readers_path, file);
    auto fd = open_cursor_readonly(q.readers_fd.get(), q.readers_path, name);
    if (!fd) {
        if (fd.status().code() == errc::not_found) return fd.status();
        // AdminQueue again only to ask whether someone holds it (wrong size, say).
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
    r.expired = r.position < qs.first_seq;
    r.records_lost = r.expired ? qs.first_seq - r.position : 0;
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

}  // namespace

Result<QueueStats> inspect_queue(std::string_view dir) {
    auto q = open_admin_queue(dir);
    if (!q) return q.status();
    QueueStats s;
    s.dir = std::string(dir);
    if (auto id = files::read_queue_id(q->dirfd.get(), dir)) s.id = id->id;
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
        s.disk_size = static_cast<uint64_t>(vfs.f_blocks) * vfs.f_frsize;
    }
    const files::WriterInfo w = files::query_writer(q->dirfd.get(), dir);
    s.writer_alive = w.alive;
    s.writer_pid = w.pid;
    if (w.alive) {
        s.notifier_status = w.notifier;
        s.writer_pids.push_back(w.pid);
        for (const auto& l : read_live_writers(q->dirfd.get(), dir)) {
            if (l.pid != w.pid) s.writer_pids.push_back(l.pid);
        }
    }
    if (auto last = last_retention_pass(dir)) s.retention_last = last.value();
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

Result<std::vector<SegmentStats>> inspect_segments(std::string_view dir) {
    auto q = open_admin_queue(dir);
    if (!q) return q.status();
    auto bases = files::list_segments(dir);
    if (!bases) return bases.status();
    auto r = Reader::open(dir);
    if (!r) return r.status();
    auto head = r.value()->head();
    if (!head) return head.status();
    std::vector<SegmentStats> out;
    for (size_t i = 0; i < bases->size(); ++i) {
        const uint64_t b = (*bases)[i];
        struct stat st {};
        const std::string file = files::segment_name(b);
        if (::fstatat(q->dirfd.get(), file.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
        const uint64_t end =
            std::min(i + 1 < bases->size() ? (*bases)[i + 1] : head.value(), head.value());
        out.push_back({file, b, end > b ? end - b : 0, static_cast<uint64_t>(st.st_size)});
    }
    return out;
}

namespace {

// What every reader report starts from: the queue's descriptors, its stats, its segments.
struct Snapshot {
    AdminQueue q;
    QueueStats stats;
    std::vector<uint64_t> bases;
};

Result<Snapshot> snapshot(std::string_view dir) {
    auto q = open_admin_queue(dir);
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

}  // namespace chronicle
