// chronicle — the single writer (see writer.h, format.h for the commit protocol, and
// docs/DESIGN.md for the files it writes).
#include "chronicle/writer.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "cursor.h"
#include "format.h"
#include "fs.h"
#include "lock.h"
#include "pretouch.h"
#include "recovery.h"
#include "segment.h"
#include "wake.h"

namespace chronicle {

using namespace format;

inline constexpr uint64_t kHighWaterStep = 1ull << 20;

class Writer::Impl {
  public:
    std::string dir_;
    fs::Fd dirfd_;
    fs::Fd lockfd_;
    SegmentGeometry geo_;
    Segment seg_;                          // current segment, mapped writable
    uint64_t off_ = 0;                     // append offset in seg_
    uint64_t seq_ = 0;                     // next sequence number (counts staged batch records)
    uint64_t last_ts_ = 0;                 // timestamps never go backwards
    uint32_t next_slot_ = 0;               // next index slot of seg_ to fill
    uint64_t next_slot_off_ = UINT64_MAX;  // seg_.slot_start(next_slot_), cached
    uint64_t hw_ = 0;                      // cached seg_.header()->written_hw

    // Claim in progress.
    bool claimed_ = false;
    size_t claim_max_ = 0;

    // Staged, unpublished work. first_state_ is the state word whose release store will
    // publish everything staged (the first record or seal of a batch); null = nothing.
    bool explicit_batch_ = false;
    uint64_t batch_ts_ = 0;
    std::atomic<uint32_t>* first_state_ = nullptr;
    uint32_t first_value_ = 0;
    std::vector<std::pair<IndexSlot*, uint64_t>> pending_index_;
    std::vector<Segment> held_;              // earlier segments of the batch, still mapped
    std::vector<SegmentHeader*> preparing_;  // segments created by the batch, in order
    // Where the staged work began, to undo it.
    uint64_t start_off_ = 0, start_seq_ = 0, start_seg_end_ = 0, start_last_ts_ = 0;
    uint32_t start_slot_ = 0;

    bool durable_ = false;
    uint64_t synced_off_ = 0;  // sync() has written [data_begin, synced_off_) of seg_

    Pretoucher pretouch_;
    WakeHook wake_;
    files::WriterLockText lock_text_;  // what writer.lock says about this writer

    Status open(std::string_view dir, const WriterOptions& o);
    Status take_lock();
    Status roll();
    Result<std::byte*> begin_record(uint64_t len);
    uint64_t finish_record(uint64_t len);
    bool try_append_fast(const std::byte* p, uint64_t len, uint64_t& seq) noexcept;
    void set_slot(uint32_t slot) noexcept {
        next_slot_ = slot;
        next_slot_off_ = slot < seg_.slots() ? seg_.slot_start(slot) : UINT64_MAX;
    }
    void mark_start() noexcept {
        start_off_ = off_;
        start_seq_ = seq_;
        start_slot_ = next_slot_;
        start_seg_end_ = 0;
        start_last_ts_ = last_ts_;
    }
    void publish();
    void undo_staged() noexcept;
    void raise_hw(uint64_t need) noexcept;
    uint64_t stamp() noexcept;
    void adopt(Tail&& t);
};

namespace {

Status check_is_queue_dir(std::string_view dir, bool create, bool& fresh) {
    auto names = fs::list_dir(dir);
    if (!names) return names.status();
    bool queue_files = false;
    bool other = false;
    for (const auto& n : names.value()) {
        if (files::is_queue_entry(n)) {
            queue_files = true;
        } else {
            other = true;
        }
    }
    fresh = !queue_files;
    if (!queue_files && other) {
        return Status(
            errc::invalid_argument,
            std::string(dir) + " is not a chronicle queue (the directory holds other files)");
    }
    if (!queue_files && !create) {
        return Status(errc::not_found, std::string(dir) + " is not a chronicle queue");
    }
    return {};
}

}  // namespace

Status Writer::Impl::take_lock() {
    auto fd = fs::open_at(dirfd_.get(), dir_, files::kWriterLock, O_RDWR | O_CREAT, 0644);
    if (!fd) return fd.status();
    lockfd_ = std::move(fd.value());
    const std::string lock_path = fs::join(dir_, files::kWriterLock);
    if (Status st = lock::try_exclusive(lockfd_.get(), lock_path); !st) {
        if (st.code() != errc::busy) return st;
        std::string who;
        auto text = fs::read_small_file(dirfd_.get(), dir_, files::kWriterLock);
        if (text) {
            const int pid = files::writer_lock_from_json(text.value()).pid;
            if (pid > 0) who = " (pid " + std::to_string(pid) + ")";
        }
        return Status(errc::busy, "queue " + dir_ + " already has a writer" + who);
    }
    lock_text_.pid = ::getpid();
    lock_text_.start_time = fs::process_start_time(lock_text_.pid);
    lock_text_.started_ns = fs::realtime_ns();
    return files::write_writer_lock(lockfd_.get(), dir_, lock_text_);
}

void Writer::Impl::adopt(Tail&& t) {
    seg_ = std::move(t.seg);
    off_ = t.off;
    seq_ = t.seq;
    last_ts_ = t.last_ts;
    set_slot(t.next_slot);
    hw_ = seg_.header()->written_hw.load(std::memory_order_relaxed);
    pretouch_.switch_to(seg_, off_);
}

Status Writer::Impl::open(std::string_view dir, const WriterOptions& o) {
    dir_ = std::string(dir);
    if (o.create && ::mkdir(dir_.c_str(), 0755) != 0 && errno != EEXIST) {
        return Status::from_errno(errno, "cannot create queue directory", dir_);
    }
    auto dfd = files::open_queue_dir(dir_);
    if (!dfd) return dfd.status();
    dirfd_ = std::move(dfd.value());
    bool fresh = false;
    if (Status st = check_is_queue_dir(dir_, o.create, fresh); !st) return st;
    if (::mkdirat(dirfd_.get(), std::string(files::kReadersDir).c_str(), 0755) != 0 &&
        errno != EEXIST) {
        return Status::from_errno(errno, "cannot create", fs::join(dir_, files::kReadersDir));
    }
    if (Status st = take_lock(); !st) return st;

    auto geo = SegmentGeometry::for_size(o.segment_size);
    if (!geo) return geo.status();
    // An existing queue keeps its segment size: take it from its first segment.
    auto bases = files::list_segments(dir_);
    if (!bases) return bases.status();
    if (!bases->empty()) {
        auto first = Segment::open(dirfd_.get(), dir_, bases->back(), false);
        if (!first) return first.status();
        geo = SegmentGeometry::for_size(first->size());
        if (!geo) return geo.status();
    }
    geo_ = geo.value();
    pretouch_.enable(o.pretouch);
    durable_ = o.durable;
    pretouch_.configure(dirfd_.get(), dir_, geo_);
    auto tail = recover(dirfd_.get(), dir_, geo_);
    if (!tail) return tail.status();
    adopt(std::move(tail.value()));
    NotifierOptions no;
    no.force_fifo = o.wake_via_fifo;
    if (Status st = wake_.open(dirfd_.get(), dir_, no); !st) {
        // Not fatal: followers notice records by their periodic re-check. Said in
        // writer.lock, where chronicle-readers shows it.
        lock_text_.notifier = st.message();
        (void)files::write_writer_lock(lockfd_.get(), dir_, lock_text_);
    }
    return {};
}

void Writer::Impl::raise_hw(uint64_t need) noexcept {
    hw_ = std::min<uint64_t>(seg_.size(),
                             (need + kHighWaterStep - 1) / kHighWaterStep * kHighWaterStep);
    // Relaxed: read only by a later writer's recovery, after this process is gone (a dead
    // process's stores are all in the page cache, whatever their order).
    seg_.header()->written_hw.store(hw_, std::memory_order_relaxed);
}

uint64_t Writer::Impl::stamp() noexcept {
    uint64_t ts;
    if (explicit_batch_) {
        if (batch_ts_ == 0) batch_ts_ = fs::realtime_ns();
        ts = batch_ts_;
    } else {
        ts = fs::realtime_ns();
    }
    if (ts < last_ts_) ts = last_ts_;  // CLOCK_REALTIME may step back; time seek needs order
    last_ts_ = ts;
    return ts;
}

Status Writer::Impl::roll() {
    const uint64_t base = seq_;
    const bool staged = first_state_ != nullptr;
    auto next = pretouch_.take_prepared(base, staged ? kSegmentPreparing : kSegmentLive);
    if (!next.valid()) {
        auto made = Segment::create(dirfd_.get(), dir_, files::kNextSegmentTmp, geo_, base,
                                    staged ? kSegmentPreparing : kSegmentLive);
        if (!made) return made.status();
        next = std::move(made.value());
    }
    if (Status st = next.publish_as(dirfd_.get(), dir_, files::kNextSegmentTmp, base); !st) {
        ::unlinkat(dirfd_.get(), std::string(files::kNextSegmentTmp).c_str(), 0);
        return st;
    }
    if (durable_ && ::fsync(dirfd_.get()) != 0) {
        return Status::from_errno(errno, "cannot sync directory", dir_);
    }
    // Seal the current segment. The writer keeps room for it (see begin_record).
    if (off_ + kRecordHeaderSize > hw_) raise_hw(off_ + kRecordHeaderSize);
    RecordHeader* rec = seg_.record(off_);
    rec->length = 0;
    rec->timestamp_ns = std::max(last_ts_, fs::realtime_ns());
    if (!staged) {
        // Release: pairs with Segment::read's acquire. The next segment is in place (the
        // rename above), so a reader that sees the seal can open it.
        rec->state.store(kStateSeal, std::memory_order_release);
    } else {
        // Part of the batch: published by the release store of first_state_.
        rec->state.store(kStateSeal, std::memory_order_relaxed);
        if (held_.empty()) start_seg_end_ = off_ + kRecordHeaderSize;
        held_.push_back(std::move(seg_));
        preparing_.push_back(next.header());
    }
    if (durable_ && !staged) {
        // Everything in the segment we leave is committed: make it durable now, while it
        // is still mapped.
        ::msync(seg_.bytes(), std::min<uint64_t>(seg_.size(), off_ + kRecordHeaderSize), MS_SYNC);
    }
    seg_ = std::move(next);
    off_ = seg_.data_begin();
    synced_off_ = 0;
    set_slot(0);
    hw_ = seg_.header()->written_hw.load(std::memory_order_relaxed);
    pretouch_.switch_to(seg_, off_);
    return {};
}

Result<std::byte*> Writer::Impl::begin_record(uint64_t len) {
    if (len > geo_.max_payload()) {
        return Status(errc::too_large,
                      "record of " + std::to_string(len) + " bytes is larger than the maximum of " +
                          std::to_string(geo_.max_payload()) + " bytes for " + dir_ +
                          " (its segment size is " + std::to_string(geo_.segment_size) + ")");
    }
    const uint64_t span = record_span(len);
    // Keep room for the seal after every record.
    if (off_ + span + kRecordHeaderSize > seg_.size()) {
        if (Status st = roll(); !st) return st;
    }
    if (first_state_ == nullptr) mark_start();
    if (off_ + span + kRecordHeaderSize > hw_) raise_hw(off_ + span + kRecordHeaderSize);
    pretouch_.advance(off_ + span);
    return seg_.bytes() + off_ + kRecordHeaderSize;
}

uint64_t Writer::Impl::finish_record(uint64_t len) {
    RecordHeader* rec = seg_.record(off_);
    rec->length = static_cast<uint32_t>(len);
    rec->timestamp_ns = stamp();
    while (next_slot_off_ <= off_) {
        pending_index_.emplace_back(&seg_.slot(next_slot_), pack_index(seq_ - seg_.base(), off_));
        set_slot(next_slot_ + 1);
    }
    if (first_state_ == nullptr) {
        first_state_ = &rec->state;
        first_value_ = kStateData;
    } else {
        // Relaxed: published by the release store of first_state_ (see format.h).
        rec->state.store(kStateData, std::memory_order_relaxed);
    }
    off_ += record_span(len);
    const uint64_t seq = seq_++;
    if (!explicit_batch_) publish();
    return seq;
}

// The common case of append(): the record fits below the high-water mark, names no index
// slot and no claim is open. Same stores as begin_record + finish_record, minus the checks
// they need for rolls, slots and claims.
bool Writer::Impl::try_append_fast(const std::byte* p, uint64_t len, uint64_t& seq) noexcept {
    const uint64_t end = off_ + record_span(len);
    if (claimed_ || end + kRecordHeaderSize > hw_ || next_slot_off_ <= off_) return false;
    pretouch_.advance(end);
    RecordHeader* rec = seg_.record(off_);
    rec->length = static_cast<uint32_t>(len);
    rec->timestamp_ns = stamp();
    if (len != 0) std::memcpy(reinterpret_cast<std::byte*>(rec) + kRecordHeaderSize, p, len);
    if (first_state_ == nullptr) {
        mark_start();
        first_state_ = &rec->state;
        first_value_ = kStateData;
    } else {
        // Relaxed: published by the release store of first_state_ (see format.h).
        rec->state.store(kStateData, std::memory_order_relaxed);
    }
    off_ = end;
    seq = seq_++;
    if (!explicit_batch_) publish();
    return true;
}

void Writer::Impl::publish() {
    if (first_state_ != nullptr) {
        // Release: pairs with the acquire load in Segment::read. Everything staged before
        // (payloads, lengths, timestamps, later states, seals) becomes visible with it.
        first_state_->store(first_value_, std::memory_order_release);
        first_state_ = nullptr;
    }
    if (!pending_index_.empty()) {
        for (auto& [slot, v] : pending_index_) {
            // Release: pairs with Segment::filled_slots / index_floor acquire; the record
            // it names was published above.
            slot->store(v, std::memory_order_release);
        }
        pending_index_.clear();
    }
    if (!preparing_.empty()) {
        for (SegmentHeader* h : preparing_) {
            // Release: pairs with Segment::live()'s acquire (a seeking reader may land here).
            h->seg_state.store(kSegmentLive, std::memory_order_release);
        }
        preparing_.clear();
        held_.clear();
    }
    wake_.after_commit();
}

void Writer::Impl::undo_staged() noexcept {
    if (first_state_ == nullptr) return;
    // Unpublished records are invisible: remove the segments the batch created and zero
    // what it wrote, restoring "all zero past the append offset".
    for (SegmentHeader* h : preparing_) {
        const std::string name = files::segment_name(h->base_seq);
        ::unlinkat(dirfd_.get(), name.c_str(), 0);
    }
    if (!held_.empty()) {
        seg_ = std::move(held_.front());
        off_ = start_seg_end_;
    }
    // The first state word was never stored; everything after it is ours alone.
    std::memset(seg_.bytes() + start_off_ + sizeof(uint32_t), 0,
                off_ - start_off_ - sizeof(uint32_t));
    off_ = start_off_;
    seq_ = start_seq_;
    set_slot(start_slot_);
    last_ts_ = start_last_ts_;
    hw_ = seg_.header()->written_hw.load(std::memory_order_relaxed);
    first_state_ = nullptr;
    pending_index_.clear();
    preparing_.clear();
    held_.clear();
    pretouch_.switch_to(seg_, off_);
}

// ---------------------------------------------------------------------------------------

Writer::Writer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Writer::~Writer() {
    if (impl_) {
        if (impl_->claimed_) abort();
        if (impl_->explicit_batch_) abort_batch();
    }
}

Result<std::unique_ptr<Writer>> Writer::open(std::string_view dir, const WriterOptions& options) {
    auto impl = std::make_unique<Impl>();
    if (Status st = impl->open(dir, options); !st) return st;
    return std::unique_ptr<Writer>(new Writer(std::move(impl)));
}

Result<uint64_t> Writer::append(std::span<const std::byte> payload) {
    Impl& w = *impl_;
    uint64_t seq;
    if (w.try_append_fast(payload.data(), payload.size(), seq)) return seq;
    if (w.claimed_) return Status(errc::invalid_argument, "append() while a claim is open");
    auto p = w.begin_record(payload.size());
    if (!p) return p.status();
    if (!payload.empty()) std::memcpy(p.value(), payload.data(), payload.size());
    return w.finish_record(payload.size());
}

Result<std::span<std::byte>> Writer::claim(size_t max_len) {
    Impl& w = *impl_;
    if (w.claimed_) return Status(errc::invalid_argument, "claim() while a claim is open");
    auto p = w.begin_record(max_len);
    if (!p) return p.status();
    w.claimed_ = true;
    w.claim_max_ = max_len;
    return std::span<std::byte>(p.value(), max_len);
}

Result<uint64_t> Writer::commit(size_t len) {
    Impl& w = *impl_;
    if (!w.claimed_) return Status(errc::invalid_argument, "commit() without a claim");
    if (len > w.claim_max_) {
        return Status(errc::invalid_argument, "commit(" + std::to_string(len) +
                                                  ") exceeds the claim of " +
                                                  std::to_string(w.claim_max_) + " bytes");
    }
    // Bytes the caller wrote past `len` would break "zero past the append offset".
    std::memset(w.seg_.bytes() + w.off_ + kRecordHeaderSize + len, 0, w.claim_max_ - len);
    w.claimed_ = false;
    return w.finish_record(len);
}

void Writer::abort() noexcept {
    Impl& w = *impl_;
    if (!w.claimed_) return;
    std::memset(w.seg_.bytes() + w.off_ + kRecordHeaderSize, 0, w.claim_max_);
    w.claimed_ = false;
    if (!w.explicit_batch_) w.undo_staged();  // a roll made for the claim stays; it is harmless
}

Status Writer::begin_batch() {
    Impl& w = *impl_;
    if (w.explicit_batch_) return Status(errc::invalid_argument, "begin_batch() inside a batch");
    if (w.claimed_) return Status(errc::invalid_argument, "begin_batch() while a claim is open");
    w.explicit_batch_ = true;
    w.batch_ts_ = 0;
    return {};
}

Status Writer::commit_batch() {
    Impl& w = *impl_;
    if (!w.explicit_batch_) return Status(errc::invalid_argument, "commit_batch() without a batch");
    if (w.claimed_) abort();
    w.explicit_batch_ = false;
    w.publish();
    return {};
}

void Writer::abort_batch() noexcept {
    Impl& w = *impl_;
    if (w.claimed_) abort();
    w.undo_staged();
    w.explicit_batch_ = false;
}

bool Writer::in_batch() const noexcept {
    return impl_->explicit_batch_;
}
uint64_t Writer::next_seq() const noexcept {
    return impl_->seq_;
}
uint64_t Writer::max_payload() const noexcept {
    return impl_->geo_.max_payload();
}
uint64_t Writer::segment_size() const noexcept {
    return impl_->geo_.segment_size;
}
const std::string& Writer::dir() const noexcept {
    return impl_->dir_;
}
void Writer::set_batch_time(uint64_t realtime_ns) noexcept {
    impl_->batch_ts_ = realtime_ns;
}

Status Writer::sync() {
    Impl& w = *impl_;
    // Segments a batch left behind (still mapped in held_) were not synced at the roll.
    for (const Segment& s : w.held_) ::msync(s.bytes(), s.size(), MS_SYNC);
    const uint64_t from = w.synced_off_ / kPageSize * kPageSize;
    const uint64_t end =
        std::min<uint64_t>((w.off_ + kPageSize - 1) / kPageSize * kPageSize, w.seg_.size());
    if (end > from && ::msync(w.seg_.bytes() + from, end - from, MS_SYNC) != 0) {
        return Status::from_errno(errno, "cannot sync", w.seg_.path());
    }
    w.synced_off_ = w.off_;
    return {};
}

}  // namespace chronicle
