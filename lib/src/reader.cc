// chronicle — readers (see reader.h; docs/DESIGN.md "Reading").
#include "chronicle/reader.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <optional>

#include "cursor.h"
#include "following.h"
#include "format.h"
#include "fs.h"
#include "pack.h"
#include "queue_files.h"
#include "segment.h"

namespace chronicle {

using namespace format;

// Reading: locate, seek, next and the durable cursor. Following (waiting for records)
// is a Following object, created at open.
class Reader::Impl {
  public:
    ~Impl();
    Status open(std::string_view dir, const ReaderOptions& o);
    Status seek(const Position& where);
    Result<std::optional<Record>> next();
    Result<uint64_t> head();
    Result<uint64_t> first();
    Status commit(uint64_t next_seq);
    [[nodiscard]] uint64_t expired_skipped() const noexcept { return skipped_; }
    [[nodiscard]] uint64_t position() const noexcept { return std::max(seq_, target_); }
    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    [[nodiscard]] const std::string& dir() const noexcept { return dir_; }
    Following& following() noexcept { return *follow_; }

  private:
    Status locate(uint64_t target);
    Status locate_once(uint64_t target, bool& again, uint64_t& skipped);
    Status expired_error(uint64_t target, uint64_t first) const;
    Result<uint64_t> seq_at_time(uint64_t ts);
    bool has_data();

    std::string dir_;
    std::string name_;
    fs::Fd dirfd_;
    Segment seg_;       // current segment (read-only); invalid before the first exists
    uint64_t off_ = 0;  // offset of the next record in seg_ (after pack_, if in one)
    uint64_t seq_ = 0;  // sequence of the next record (pack_'s next one, if in one)
    // Inside a pack of seg_ (left() > 0): its records not yet walked, their timestamp, and
    // the pack's offset (for errors).
    pack::Iter pack_;
    uint64_t pack_ts_ = 0;
    uint64_t pack_off_ = 0;
    uint64_t target_ = 0;  // records below this are skipped (seek lands on an index floor)
    // seg_ is known committed although its flag may say preparing: reached through a seal
    // (everything before it is committed), or placed before a live segment (locate()).
    bool via_seal_ = false;
    CursorStore cursor_;
    bool auto_commit_ = true;
    bool handed_ = false;  // a record was handed over since the last position store
    bool skip_expired_ = false;
    uint64_t skipped_ = 0;  // records lost to retention and passed over (skip_expired_)

    std::optional<Following> follow_;  // set at open
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
};

Status Reader::Impl::open(std::string_view dir, const ReaderOptions& o) {
    dir_ = std::string(dir);
    name_ = o.name;
    auto_commit_ = o.auto_commit;
    skip_expired_ = o.skip_expired;
    if (!name_.empty()) {
        if (Status st = validate_reader_name(name_); !st) return st;
    }
    auto dfd = files::open_queue_dir(dir_);
    if (!dfd) return dfd.status();
    dirfd_ = std::move(dfd.value());
    follow_.emplace(
        dirfd_.get(), dir_, [this] { return has_data(); }, [this] { return position(); });
    follow_->use_cursor(&cursor_, name_);
    auto bases = files::list_segments(dir_);
    if (!bases) return bases.status();
    if (bases->empty()) {
        // A queue whose writer has just started has a lock file but no segment yet.
        if (!files::has_writer_lock(dirfd_.get())) {
            return Status(errc::not_found, dir_ + " is not a chronicle queue (no segments)");
        }
    }
    if (name_.empty()) return seek(o.start);

    // A named reader: an existing cursor decides where it resumes; `start` matters only
    // when the cursor is created here or repositioned, so only then is it sought.
    const std::string readers_path = files::readers_path(dir_);
    auto rfd = files::open_readers_dir(dirfd_.get(), dir_);
    if (!rfd) return rfd.status();
    // A stored position never passes the head: readers store only what they handed over,
    // and a start past the head is refused here as by chronicle-readers create/reset. So
    // one that does is a damaged word, never a place to wait silently for ever.
    auto h = head();
    if (!h) return h.status();
    auto c = CursorStore::open(rfd->get(), readers_path, name_, {.max_next_seq = h.value()});
    if (!c && c.status().code() == errc::not_found && o.create) {
        if (Status st = seek(o.start); !st) return st;
        if (Status st = check_start(h.value()); !st) return st;
        c = CursorStore::open(rfd->get(), readers_path, name_,
                              {.create = true, .initial_seq = position()});
    }
    if (!c) return c.status();
    cursor_ = std::move(c.value());
    const bool created = cursor_.created();
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

Status Reader::Impl::expired_error(uint64_t target, uint64_t first) const {
    return Status(errc::expired, (name_.empty() ? std::string() : "reader '" + name_ + "': ") +
                                     "sequence " + std::to_string(target) + " is no longer in " +
                                     dir_ + ": retention deleted the records before " +
                                     std::to_string(first) + " (" + std::to_string(first - target) +
                                     " records)");
}

Status Reader::Impl::locate(uint64_t target) {
    // Segments can vanish between the listing and the open: the oldest to retention, an
    // uncommitted batch's to a starting writer's recovery. Each retry lists them again.
    for (int attempt = 0;; ++attempt) {
        bool again = false;
        uint64_t skipped = 0;  // counted once, by the attempt that succeeds
        Status st = locate_once(target, again, skipped);
        if (st) skipped_ += skipped;
        if (!again || attempt == 16) return st;
    }
}

Status Reader::Impl::locate_once(uint64_t target, bool& again, uint64_t& skipped) {
    auto bases = files::list_segments(dir_);
    if (!bases) return bases.status();
    seg_ = Segment();
    pack_ = {};
    via_seal_ = false;
    target_ = target;
    if (bases->empty()) {
        seq_ = 0;
        return {};
    }
    if (target < bases->front()) {
        if (!skip_expired_) return expired_error(target, bases->front());
        skipped = bases->front() - target;
        target = target_ = bases->front();
    }
    auto it = std::upper_bound(bases->begin(), bases->end(), target);
    size_t i = static_cast<size_t>(it - bases->begin()) - 1;
    for (;;) {
        auto s = Segment::open(dirfd_.get(), dir_, (*bases)[i], false);
        if (!s && s.status().code() == errc::not_found) {
            again = true;  // gone since the listing: list again
            return s.status();
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
            if (!later && later.status().code() == errc::not_found) continue;  // recovery
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
    auto bases = files::list_segments(dir_);
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
                return seg.corrupt_at(e.off, "sealed, but the next segment " +
                                                 files::segment_name(e.seq) + " is missing");
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
    auto bases = files::list_segments(dir_);
    if (!bases) return bases.status();
    return bases->empty() ? uint64_t{0} : bases->front();
}

Result<uint64_t> Reader::Impl::seq_at_time(uint64_t ts) {
    auto bases = files::list_segments(dir_);
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
        seq += r.count;
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
    // A clean close means the caller is done with the last record handed over.
    if (handed_ && auto_commit_ && cursor_.valid()) cursor_.store(position());
}

bool Reader::Impl::has_data() {
    if (!seg_.valid()) {
        auto b = files::list_segments(dir_);
        return b && !b->empty();
    }
    if (pack_.left() > 0) return true;
    if (!via_seal_ && !seg_.live()) return false;
    // Acquire inside read(): after the follower's fence F3 (wake.h).
    return seg_.read(off_).kind != RecKind::empty;
}

Result<std::optional<Record>> Reader::Impl::next() {
    follow_->before_read();  // woken after prepare_wait(): drain and mark awake
    if (handed_ && auto_commit_ && cursor_.valid()) cursor_.store(position());
    handed_ = false;
    for (;;) {
        if (pack_.left() > 0) {
            std::span<const std::byte> rec;
            // pack::valid() passed when the pack was entered; a failure now means the
            // bytes changed under the reader.
            if (!pack_.next(rec)) return seg_.corrupt_at(pack_off_, "damaged pack");
            const uint64_t s = seq_++;
            if (s < target_) continue;
            handed_ = true;
            return std::optional<Record>(Record{s, pack_ts_, rec});
        }
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
                    if (nx.status().code() != errc::not_found) return nx.status();
                    // Deleted by retention while this reader was in the segment before it?
                    // Then the first segment on disk is a later one.
                    auto f = first();
                    if (f && f.value() > seq_) {
                        if (Status st = locate(seq_); !st) return st;
                        continue;
                    }
                    return seg_.corrupt_at(off_, "sealed, but the next segment " +
                                                     files::segment_name(seq_) + " is missing");
                }
                seg_ = std::move(nx.value());
                off_ = seg_.data_begin();
                via_seal_ = true;
                continue;
            }
            case RecKind::data: {
                if (r.packed) {
                    if (seq_ + r.count <= target_) {  // all of it before a seek's target
                        off_ = r.next_off;
                        seq_ += r.count;
                        continue;
                    }
                    // As below: touch the last byte, so a truncated file faults here.
                    (void)*static_cast<const volatile std::byte*>(r.payload + r.length - 1);
                    if (seg_.truncated()) return truncated_error();
                    if (!pack::valid(r.payload, r.length)) {
                        return seg_.corrupt_at(off_, "damaged pack (its " +
                                                         std::to_string(r.count) +
                                                         " records do not fill its " +
                                                         std::to_string(r.length) + " bytes)");
                    }
                    pack_ = pack::Iter(r.payload, r.length);
                    pack_ts_ = r.timestamp_ns;
                    pack_off_ = off_;
                    off_ = r.next_off;
                    continue;
                }
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

Status Reader::Impl::commit(uint64_t next_seq) {
    if (next_seq > position()) {
        return Status(errc::invalid_argument, "commit(" + std::to_string(next_seq) +
                                                  ") is past the reader's position " +
                                                  std::to_string(position()));
    }
    if (cursor_.valid()) cursor_.store(next_seq);
    handed_ = false;
    return {};
}

Reader::Reader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Reader::~Reader() = default;

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
uint64_t Reader::expired_skipped() const noexcept {
    return impl_->expired_skipped();
}
const std::string& Reader::name() const noexcept {
    return impl_->name();
}
const std::string& Reader::dir() const noexcept {
    return impl_->dir();
}
Status Reader::commit() {
    return impl_->commit(impl_->position());
}
Status Reader::commit(uint64_t next_seq) {
    return impl_->commit(next_seq);
}

Status Reader::wait(std::chrono::nanoseconds timeout) {
    return impl_->following().wait(timeout);
}
Result<bool> Reader::prepare_wait() {
    return impl_->following().prepare();
}
Result<int> Reader::fd() {
    return impl_->following().fd();
}
const Status& Reader::follow_status() const noexcept {
    return impl_->following().status();
}
bool Reader::writer_alive() {
    return impl_->following().writer_alive();
}

}  // namespace chronicle
