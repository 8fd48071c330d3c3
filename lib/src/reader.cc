// chronicle — readers (see reader.h; docs/DESIGN.md "Reading").
#include "chronicle/reader.h"

#include <fcntl.h>

#include <algorithm>

#include <unistd.h>

#include <time.h>

#include <atomic>

#include "cursor.h"
#include "format.h"
#include "fs.h"
#include "notifier.h"
#include "segment.h"
#include "wake.h"

namespace chronicle {

using namespace format;

class Reader::Impl {
  public:
    std::string dir_;
    std::string name_;
    fs::Fd dirfd_;
    Segment seg_;          // current segment (read-only); invalid before the first exists
    uint64_t off_ = 0;     // offset of the next record in seg_
    uint64_t seq_ = 0;     // its sequence
    uint64_t target_ = 0;  // records below this are skipped (seek lands on an index floor)
    // seg_ is known committed although its flag may say preparing: reached through a seal
    // (everything before it is committed), or placed before a live segment (locate()).
    bool via_seal_ = false;
    CursorStore cursor_;
    bool auto_commit_ = true;
    bool handed_ = false;  // a record was handed over since the last position store

    // Following (created on the first wait / prepare_wait / fd).
    std::unique_ptr<Follower> follower_;
    CursorStore eph_cursor_;  // an anonymous follower's ephemeral cursor
    std::string eph_name_;
    fs::Fd readers_fd_;
    bool armed_ = false;
    // Registration failed (e.g. a read-only queue): wait by polling, as the portable
    // notifier does. Holds the reason.
    Status no_registration_;

    ~Impl();
    Status poll_wait(std::chrono::nanoseconds timeout);
    Status ensure_follower();
    Status register_follower();
    bool has_data();
    Status wait(std::chrono::nanoseconds timeout);

    Status open(std::string_view dir, const ReaderOptions& o);
    Status locate(uint64_t target);
    Status seek(const Position& where);
    Result<std::optional<Record>> next();
    Result<uint64_t> head();
    Result<uint64_t> first();
    Result<uint64_t> seq_at_time(uint64_t ts);
    Status check_start(uint64_t head) const {
        if (position() <= head) return {};
        return Status(errc::invalid_argument,
                      "reader '" + name_ + "': start " + std::to_string(position()) +
                          " is past the head " + std::to_string(head) + " of " + dir_);
    }
    Status truncated_error() const {
        return seg_.corrupt_at(off_, "the segment was truncated while being read (reader " +
                                         (name_.empty() ? std::string("(anonymous)") : name_) +
                                         ", pid " + std::to_string(::getpid()) + ")");
    }
    [[nodiscard]] uint64_t position() const noexcept { return std::max(seq_, target_); }
};

Status Reader::Impl::open(std::string_view dir, const ReaderOptions& o) {
    dir_ = std::string(dir);
    name_ = o.name;
    auto_commit_ = o.auto_commit;
    if (!name_.empty()) {
        if (Status st = validate_reader_name(name_); !st) return st;
    }
    auto dfd = open_queue_dir(dir_);
    if (!dfd) return dfd.status();
    dirfd_ = std::move(dfd.value());
    auto bases = list_segments(dir_);
    if (!bases) return bases.status();
    if (bases->empty()) {
        // A queue whose writer has just started has a lock file but no segment yet.
        if (::faccessat(dirfd_.get(), "writer.lock", F_OK, AT_SYMLINK_NOFOLLOW) != 0) {
            return Status(errc::not_found, dir_ + " is not a chronicle queue (no segments)");
        }
    }
    if (name_.empty()) return seek(o.start);

    // A named reader: an existing cursor decides where it resumes; `start` matters only
    // when the cursor is created here or repositioned, so only then is it sought.
    const std::string readers_path = fs::join(dir_, kReadersDir);
    auto rfd = fs::open_at(dirfd_.get(), dir_, kReadersDir, O_RDONLY | O_DIRECTORY);
    if (!rfd) return rfd.status();
    // A stored position never passes the head: readers store only what they handed over,
    // and a start past the head is refused here as by chronicle-readers create/reset. So
    // one that does is a damaged word, never a place to wait silently for ever.
    auto h = head();
    if (!h) return h.status();
    bool created = false;
    auto c =
        CursorStore::open(rfd->get(), readers_path, name_, false, 0, created, false, h.value());
    if (!c && c.status().code() == errc::not_found && o.create) {
        if (Status st = seek(o.start); !st) return st;
        if (Status st = check_start(h.value()); !st) return st;
        c = CursorStore::open(rfd->get(), readers_path, name_, true, position(), created);
    }
    if (!c) return c.status();
    cursor_ = std::move(c.value());
    if (o.reposition && !created) {
        if (Status st = seek(o.start); !st) return st;
        if (Status st = check_start(h.value()); !st) return st;
    }
    if (created || o.reposition) {
        cursor_.store(position());
        return {};
    }
    return locate(cursor_.load());
}

Status Reader::Impl::locate(uint64_t target) {
    auto bases = list_segments(dir_);
    if (!bases) return bases.status();
    seg_ = Segment();
    via_seal_ = false;
    target_ = target;
    if (bases->empty()) {
        seq_ = 0;
        return {};
    }
    if (target < bases->front()) {
        return Status(errc::expired, "sequence " + std::to_string(target) + " is no longer in " +
                                         dir_ + " (the first is " + std::to_string(bases->front()) +
                                         ")");
    }
    auto it = std::upper_bound(bases->begin(), bases->end(), target);
    size_t i = static_cast<size_t>(it - bases->begin()) - 1;
    for (;;) {
        auto s = Segment::open(dirfd_.get(), dir_, (*bases)[i], false);
        // Gone since the listing: an uncommitted batch's segment that a starting writer's
        // recovery removed (a committed one is never removed by recovery).
        if (!s && s.status().code() == errc::not_found && i > 0) {
            --i;
            continue;
        }
        if (!s) return s.status();
        if (s->live()) {
            seg_ = std::move(s.value());
            break;
        }
        // Preparing, yet committed: the queue's first segment is never created preparing,
        // and batches mark their segments live in order, so one before a live segment is
        // committed too (the flag is damaged, or its writer died before setting it).
        bool committed = (*bases)[i] == 0;
        for (size_t j = i + 1; !committed && j < bases->size(); ++j) {
            auto later = Segment::open(dirfd_.get(), dir_, (*bases)[j], false);
            if (!later && later.status().code() == errc::not_found) continue;  // as above
            if (!later) return later.status();
            committed = later->live();
        }
        if (committed || i == 0) {
            seg_ = std::move(s.value());
            via_seal_ = committed;
            break;
        }
        // A segment of an uncommitted batch holds nothing yet: start before it.
        --i;
    }
    auto [off, seq] = seg_.index_floor(target);
    off_ = off;
    seq_ = seq;
    return {};
}

Result<uint64_t> Reader::Impl::head() {
    auto bases = list_segments(dir_);
    if (!bases) return bases.status();
    for (size_t i = bases->size(); i > 0; --i) {
        auto s = Segment::open(dirfd_.get(), dir_, (*bases)[i - 1], false);
        if (!s && s.status().code() == errc::not_found) continue;  // see locate()
        if (!s) return s.status();
        // Segments after the last live one belong to an uncommitted batch — except the
        // queue's first, which is never created preparing (see locate()).
        if (!s->live() && (*bases)[i - 1] != 0) continue;
        Segment seg = std::move(s.value());
        auto [off, seq] = seg.index_last();
        for (;;) {
            const auto e = seg.scan(off, seq, UINT64_MAX);
            if (e.stopped_at == RecKind::corrupt) return seg.corrupt_at(e.off, "damaged record");
            if (e.stopped_at != RecKind::seal) return e.seq;
            // A committed seal: the next segment holds committed records (live or not). It
            // was linked into place before the seal was written, so a missing one is damage.
            auto nx = Segment::open(dirfd_.get(), dir_, e.seq, false);
            if (!nx && nx.status().code() == errc::not_found) {
                return seg.corrupt_at(
                    e.off, "sealed, but the next segment " + segment_name(e.seq) + " is missing");
            }
            if (!nx) return nx.status();
            seg = std::move(nx.value());
            off = seg.data_begin();
            seq = seg.base();
        }
    }
    return uint64_t{0};
}

Result<uint64_t> Reader::Impl::first() {
    auto bases = list_segments(dir_);
    if (!bases) return bases.status();
    return bases->empty() ? uint64_t{0} : bases->front();
}

Result<uint64_t> Reader::Impl::seq_at_time(uint64_t ts) {
    auto bases = list_segments(dir_);
    if (!bases) return bases.status();
    if (bases->empty()) return uint64_t{0};
    // The last segment whose first record is older than ts: O(log segments) opens.
    size_t lo = 0, hi = bases->size();
    while (lo < hi) {
        const size_t mid = lo + (hi - lo) / 2;
        auto s = Segment::open(dirfd_.get(), dir_, (*bases)[mid], false);
        if (!s) return s.status();
        const RecView r = s->read(s->data_begin());
        if (s->live() && r.kind == RecKind::data && r.timestamp_ns < ts) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    auto s = Segment::open(dirfd_.get(), dir_, (*bases)[lo == 0 ? 0 : lo - 1], false);
    if (!s) return s.status();
    auto [off, seq] = s->index_floor_time(ts);
    for (;;) {
        const RecView r = s->read(off);
        if (r.kind != RecKind::data || r.timestamp_ns >= ts) return seq;
        off = r.next_off;
        ++seq;
    }
}

Status Reader::Impl::seek(const Position& where) {
    switch (where.kind) {
        case Position::Kind::start: {
            auto f = first();
            if (!f) return f.status();
            return locate(f.value());
        }
        case Position::Kind::seq:
            return locate(where.value);
        case Position::Kind::end: {
            auto h = head();
            if (!h) return h.status();
            return locate(h.value());
        }
        case Position::Kind::last: {
            auto h = head();
            if (!h) return h.status();
            auto f = first();
            if (!f) return f.status();
            return locate(h.value() - std::min(where.value, h.value() - f.value()));
        }
        case Position::Kind::time: {
            auto s = seq_at_time(where.value);
            if (!s) return s.status();
            return locate(s.value());
        }
    }
    return Status(errc::invalid_argument, "unknown position");
}

Reader::Impl::~Impl() {
    follower_.reset();  // removes .efd and .fifo
    if (!eph_name_.empty() && readers_fd_.valid()) {
        ::unlinkat(readers_fd_.get(), (eph_name_ + std::string(kCursorSuffix)).c_str(), 0);
    }
}

Status Reader::Impl::ensure_follower() {
    if (follower_ || !no_registration_.ok()) return {};
    Status st = register_follower();
    if (!st.ok()) {
        // Without files in readers/ the writer cannot wake us: keep working by polling.
        no_registration_ = std::move(st);
        follower_.reset();
    }
    return {};
}

Status Reader::Impl::poll_wait(std::chrono::nanoseconds timeout) {
    const uint64_t start = fs::monotonic_ns();
    const bool had_writer = query_writer(dirfd_.get(), dir_).alive;
    uint64_t nap = 100'000;
    for (;;) {
        if (has_data()) return {};
        const uint64_t now = fs::monotonic_ns();
        if (timeout.count() >= 0 && now - start >= static_cast<uint64_t>(timeout.count())) {
            return Status(errc::timeout, "no record within the timeout");
        }
        if (had_writer && !query_writer(dirfd_.get(), dir_).alive && !has_data()) {
            return Status(errc::closed, "the writer of " + dir_ + " exited");
        }
        uint64_t sleep_ns = nap;
        if (timeout.count() >= 0)
            sleep_ns = std::min<uint64_t>(sleep_ns,
                                          static_cast<uint64_t>(timeout.count()) - (now - start));
        timespec ts{static_cast<time_t>(sleep_ns / 1000000000),
                    static_cast<long>(sleep_ns % 1000000000)};
        ::nanosleep(&ts, nullptr);
        nap = std::min<uint64_t>(nap * 2, 50'000'000);
    }
}

Status Reader::Impl::register_follower() {
    if (!readers_fd_.valid()) {
        auto rfd = fs::open_at(dirfd_.get(), dir_, kReadersDir, O_RDONLY | O_DIRECTORY);
        if (!rfd) return rfd.status();
        readers_fd_ = std::move(rfd.value());
    }
    Follower::Config c;
    c.dirfd = dirfd_.get();
    c.dir = dir_;
    if (cursor_.valid()) {
        c.name = name_;
        c.wake = reinterpret_cast<CursorWake*>(cursor_.page() + kCursorWakeOffset);
    } else {
        static std::atomic<uint64_t> counter{0};
        // Relaxed: only uniqueness matters.
        const uint64_t n = counter.fetch_add(1, std::memory_order_relaxed);
        const std::string name =
            std::string(kEphemeralPrefix) + std::to_string(::getpid()) + "." + std::to_string(n);
        bool created = false;
        auto cs = CursorStore::open(readers_fd_.get(), fs::join(dir_, kReadersDir), name, true,
                                    position(), created, true);
        if (!cs) return cs.status();
        eph_cursor_ = std::move(cs.value());
        eph_name_ = name;
        c.name = name;
        c.wake = reinterpret_cast<CursorWake*>(eph_cursor_.page() + kCursorWakeOffset);
    }
    c.cursor_file = c.name + std::string(kCursorSuffix);
    auto f = Follower::create(c);
    if (!f) return f.status();
    follower_ = std::move(f.value());
    return {};
}

bool Reader::Impl::has_data() {
    if (!seg_.valid()) {
        auto b = list_segments(dir_);
        return b && !b->empty();
    }
    if (!via_seal_ && !seg_.live()) return false;
    // Acquire inside read(): after the follower's fence F3 (wake.h).
    return seg_.read(off_).kind != RecKind::empty;
}

Status Reader::Impl::wait(std::chrono::nanoseconds timeout) {
    if (armed_) {
        follower_->disarm();
        armed_ = false;
    }
    if (has_data()) return {};
    if (Status st = ensure_follower(); !st) return st;
    if (!follower_) return poll_wait(timeout);
    if (eph_cursor_.valid()) eph_cursor_.store(position());
    const auto r = follower_->wait(timeout.count(), [this] { return has_data(); });
    switch (r) {
        case WaitResult::ready:
            return {};
        case WaitResult::timeout:
            return Status(errc::timeout, "no record within the timeout");
        case WaitResult::writer_gone:
            return Status(errc::closed, "the writer of " + dir_ + " exited");
    }
    return {};
}

Result<std::optional<Record>> Reader::Impl::next() {
    if (armed_) {
        follower_->disarm();  // woken (or polled) after prepare_wait(): drain and mark awake
        armed_ = false;
    }
    if (handed_ && auto_commit_ && cursor_.valid()) cursor_.store(position());
    handed_ = false;
    for (;;) {
        if (!seg_.valid()) {
            if (Status st = locate(target_); !st) return st;
            if (!seg_.valid()) return std::optional<Record>{};
        }
        if (!via_seal_ && !seg_.live()) return std::optional<Record>{};
        const RecView r = seg_.read(off_);
        switch (r.kind) {
            case RecKind::empty:
                // A page cut off under us reads as zeros (fs.cc's truncation guard): that is
                // not the end of the data but a damaged queue.
                if (seg_.truncated()) return truncated_error();
                // The writer publishes an index slot only after the record it names, and
                // every record before it, is committed (acquire in filled_slots pairs with
                // that release). A slot past this offset, seen with acquire, makes the record
                // here visible as committed — so if its state word still reads empty after
                // that, it is a hole in committed data, not the end of it. (The first read
                // above may simply have come before the commit: read again.)
                if (const uint32_t n = seg_.filled_slots(); n > 0) {
                    const uint64_t last =
                        format::index_offset(seg_.slot(n - 1).load(std::memory_order_acquire));
                    if (last > off_ && seg_.read(off_).kind != RecKind::empty) continue;
                    if (last > off_) {
                        return seg_.corrupt_at(off_,
                                               "empty record state before committed "
                                               "records (index slot " +
                                                   std::to_string(n - 1) + " names offset " +
                                                   std::to_string(last) + ")");
                    }
                }
                return std::optional<Record>{};
            case RecKind::corrupt:
                return seg_.corrupt_at(off_, "damaged record");
            case RecKind::seal: {
                auto nx = Segment::open(dirfd_.get(), dir_, seq_, false);
                if (!nx) {
                    if (nx.status().code() == errc::not_found) {
                        return seg_.corrupt_at(off_, "sealed, but the next segment " +
                                                         segment_name(seq_) + " is missing");
                    }
                    return nx.status();
                }
                seg_ = std::move(nx.value());
                off_ = seg_.data_begin();
                via_seal_ = true;
                continue;
            }
            case RecKind::data: {
                const uint64_t s = seq_;
                off_ = r.next_off;
                ++seq_;
                if (s < target_) continue;
                // Touch the payload's last byte here: a file is truncated from the end, so if
                // that byte is still mapped, the whole payload is; if not, it faults now,
                // inside next(), and the record is not handed over with zeros in it.
                if (r.length > 0) {
                    (void)*static_cast<const volatile std::byte*>(r.payload + r.length - 1);
                    if (seg_.truncated()) return truncated_error();
                }
                handed_ = true;
                return std::optional<Record>(Record{s, r.timestamp_ns, {r.payload, r.length}});
            }
        }
    }
}

// ---------------------------------------------------------------------------------------

Reader::Reader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Reader::~Reader() {
    // A clean close means the caller is done with the last record handed over.
    if (impl_ && impl_->handed_ && impl_->auto_commit_ && impl_->cursor_.valid()) {
        impl_->cursor_.store(impl_->position());
    }
}

Result<std::unique_ptr<Reader>> Reader::open(std::string_view dir, const ReaderOptions& options) {
    auto impl = std::make_unique<Impl>();
    if (Status st = impl->open(dir, options); !st) return st;
    return std::unique_ptr<Reader>(new Reader(std::move(impl)));
}

Result<std::optional<Record>> Reader::next() {
    return impl_->next();
}
Status Reader::seek(const Position& where) {
    return impl_->seek(where);
}
uint64_t Reader::position() const noexcept {
    return impl_->position();
}
Result<uint64_t> Reader::head() {
    return impl_->head();
}
Result<uint64_t> Reader::first() {
    return impl_->first();
}
const std::string& Reader::name() const noexcept {
    return impl_->name_;
}
const std::string& Reader::dir() const noexcept {
    return impl_->dir_;
}

Status Reader::wait(std::chrono::nanoseconds timeout) {
    return impl_->wait(timeout);
}

Result<bool> Reader::prepare_wait() {
    Impl& r = *impl_;
    if (r.armed_) return true;
    if (r.has_data()) return false;
    if (Status st = r.ensure_follower(); !st) return st;
    if (!r.follower_) return true;  // polling: fd() is -1, the caller re-checks on a timer
    if (r.eph_cursor_.valid()) r.eph_cursor_.store(r.position());
    if (!r.follower_->arm([&r] { return r.has_data(); })) return false;
    r.armed_ = true;
    return true;
}

Result<int> Reader::fd() {
    if (Status st = impl_->ensure_follower(); !st) return st;
    return impl_->follower_ ? impl_->follower_->fd() : -1;
}

const Status& Reader::follow_status() const noexcept {
    return impl_->no_registration_;
}

bool Reader::writer_alive() {
    // Asked through the follower, created first if need be: "alive" then also means that
    // the writer's exit will make fd() readable. Asking the lock alone and creating the
    // follower later leaves a window in which the writer exits unseen (issue 8, item 4).
    (void)impl_->ensure_follower();
    if (impl_->follower_) return impl_->follower_->writer_alive();
    return query_writer(impl_->dirfd_.get(), impl_->dir_).alive;
}

Status Reader::commit() {
    return commit(impl_->position());
}

Status Reader::commit(uint64_t next_seq) {
    if (next_seq > impl_->position()) {
        return Status(errc::invalid_argument, "commit(" + std::to_string(next_seq) +
                                                  ") is past the reader's position " +
                                                  std::to_string(impl_->position()));
    }
    if (impl_->cursor_.valid()) impl_->cursor_.store(next_seq);
    impl_->handed_ = false;
    return {};
}

}  // namespace chronicle
