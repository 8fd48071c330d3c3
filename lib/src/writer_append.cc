// chronicle — appending: the record encoder, batches, claims, rolls and publication (the
// commit protocol of format.h; writer_impl.h for the state).
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstring>

#include "pack.h"
#include "writer_impl.h"

namespace chronicle {

using namespace format;

namespace {
inline constexpr uint64_t kHighWaterStep = 1ull << 20;
// Batches expected to hold at least this much go through the page stage: below it, a
// pwrite costs more than the page faults it saves.
inline constexpr size_t kStageMinBytes = 64 * 1024;
// A record's last 8 bytes, which hold its padding, are zeroed before its payload is
// written: the stage's buffer is reused, and padding must read as zero like the mapping's.
// One store; the payload and header overwrite the rest.
inline void clear_tail(std::byte* rec, uint64_t span) noexcept {
    const uint64_t zero = 0;
    std::memcpy(rec + span - sizeof zero, &zero, sizeof zero);
}

// Copies a payload of `len` bytes followed by zero padding up to the next multiple of 8,
// in 8-byte words; `src` must be readable that far. The last word is masked, so that stale
// bytes of the stage's reused buffer never reach the padding (it must read as zero, as in
// the mapping).
inline void copy_padded(std::byte* dst, const std::byte* src, uint64_t len) noexcept {
    const uint64_t whole = len & ~uint64_t{7};
    if (whole > 32) {
        std::memcpy(dst, src, whole);
    } else {
        for (uint64_t i = 0; i < whole; i += 8) std::memcpy(dst + i, src + i, 8);
    }
    if (whole == len) return;
    uint64_t w;
    std::memcpy(&w, src + whole, sizeof w);
    const unsigned keep = static_cast<unsigned>(len - whole) * 8;  // 8..56 bits
    if constexpr (std::endian::native == std::endian::little) {
        w &= (uint64_t{1} << keep) - 1;
    } else {
        w &= ~(~uint64_t{0} >> keep);
    }
    std::memcpy(dst + whole, &w, sizeof w);
}

}  // namespace

Writer::Appended Writer::Impl::append_delimited(std::span<const std::byte> block, std::byte delim) {
    Writer::Appended r;
    if (claimed_) {
        r.status = Status(errc::invalid_argument, "append_delimited() while a claim is open");
        return r;
    }
    const bool own_batch = !explicit_batch_;
    if (own_batch) {
        if (Status st = begin_batch(block.size()); !st) {
            r.status = std::move(st);
            return r;
        }
    }
    const uint64_t first = seq_;  // up to date once the batch holds the append lock
    split_into_batch(block.data(), block.data() + block.size(), delim, r);
    if (own_batch) {
        if (Status st = commit_batch(); !st) {
            // Either the stage could not be written (the batch was dropped: nothing is
            // appended) or the sync failed after the records became visible.
            if (seq_ == first) r = Writer::Appended{};
            if (r.status) r.status = std::move(st);
        }
    }
    return r;
}

void Writer::Impl::split_into_batch(const std::byte* p, const std::byte* end, std::byte delim,
                                    Writer::Appended& r) {
    const std::byte* const start = p;
    const int d = std::to_integer<int>(delim);
    while (const auto* nl = static_cast<const std::byte*>(std::memchr(p, d, size_t(end - p)))) {
        const uint64_t len = uint64_t(nl - p);
        // Small records after the batch's first go into packs (pack.h) in a version 2
        // segment, when the pack's header, count, the first record and a seal fit below
        // wlimit_ and it starts before the next index slot (which names the next record).
        if (seg_.packs() && first_state_ != nullptr && len <= pack::kMaxPacked &&
            next_slot_off_ > off_ &&
            off_ + 2 * kRecordHeaderSize + pack::kCountBytes + pack::kMaxVarint + len + 8 <=
                wlimit_) {
            p = pack_into_batch(p, end, d, r);
            continue;
        }
        const uint64_t span = record_span(len);
        // The fast path of try_append_fast() without a call per record: the batch's first
        // record is encoded (its timestamp stamped, its state word the one published),
        // the record and a seal fit below wlimit_, it names no index slot, and the word
        // copy may read the padding's length past the payload (the block goes on).
        if (first_state_ != nullptr && off_ + span + kRecordHeaderSize <= wlimit_ &&
            next_slot_off_ > off_ && p + (span - kRecordHeaderSize) <= end) {
            std::byte* at = wptr(off_);
            copy_padded(at + kRecordHeaderSize, p, len);
            auto* rec = reinterpret_cast<RecordHeader*>(at);
            rec->length = static_cast<uint32_t>(len);
            rec->timestamp_ns = last_ts_;           // = the batch's timestamp (stamp())
            Segment::stage_state(rec, kStateData);  // published with first_state_
            off_ += span;
            ++seq_;
            pretouch_.advance(off_);
        } else if (auto seq = append(std::span(p, len)); !seq) {
            r.status = seq.status();
            break;
        }
        ++r.records;
        p = nl + 1;
    }
    r.consumed = size_t(p - start);
}

const std::byte* Writer::Impl::pack_into_batch(const std::byte* p, const std::byte* end, int delim,
                                               Writer::Appended& r) noexcept {
    std::byte* const at = wptr(off_);
    std::byte* const body = at + kRecordHeaderSize;
    // The pack ends (padding included) at most pack::kMaxBody past its header, and leaves
    // room for a seal below wlimit_. A multiple of 8, so the padded end stays within it.
    const uint64_t room = std::min<uint64_t>(kRecordHeaderSize + pack::kMaxBody,
                                             (wlimit_ - off_ - kRecordHeaderSize) & ~uint64_t{7});
    std::byte* const limit = at + room;
    std::byte* q = body + pack::kCountBytes;
    std::byte* dirty = q;  // bytes in [q, dirty) hold leftovers of encode_run: zeroed below
    uint32_t n = 0;
    for (;;) {
        // A run of short records takes exactly its input's bytes (pack::encode_run).
        const size_t avail = std::min<size_t>(size_t(end - p), size_t(limit - q));
        const pack::Run run = pack::encode_run(q, p, avail, delim);
        dirty = std::max(dirty, q + run.written);
        p += run.bytes;
        q += run.bytes;
        n += run.records;
        if (!run.long_found) break;  // no whole record left in the room, or none in the input
        // The next record is longer: a length of two bytes or more, copied on its own.
        const uint64_t len = run.long_delim - run.bytes;
        if (len > pack::kMaxPacked || q + pack::kMaxVarint + len > limit) break;
        q = pack::put_varint(q, len);
        std::memcpy(q, p, len);
        q += len;
        p += len + 1;
        ++n;
    }
    // The caller checked that the first record fits: n >= 1.
    const uint64_t body_len = uint64_t(q - body);
    const uint64_t span = record_span(body_len);
    // Padding (the stage's buffer is reused) and what encode_run left past the pack: every
    // byte past the tail reads as zero, as in a fresh mapping.
    std::memset(q, 0, size_t(std::max(at + span, dirty) - q));
    std::memcpy(body, &n, sizeof n);
    auto* rec = reinterpret_cast<RecordHeader*>(at);
    rec->length = static_cast<uint32_t>(body_len);
    rec->timestamp_ns = last_ts_;           // = the batch's timestamp (stamp())
    Segment::stage_state(rec, kStatePack);  // published with first_state_
    off_ += span;
    seq_ += n;
    r.records += n;
    pretouch_.advance(off_);
    return p;
}

Result<uint64_t> Writer::Impl::append_in_turn(std::span<const std::byte> payload) {
    if (Status st = hold(); !st) return st;
    auto r = append(payload);
    let_go();
    return r;
}

Result<uint64_t> Writer::Impl::append(std::span<const std::byte> payload) {
    // A shared writer takes the append lock for the record (a batch or claim holds it).
    if (shared_ && !holding_) return append_in_turn(payload);
    uint64_t seq;
    if (!try_append_fast(payload.data(), payload.size(), seq)) {
        if (claimed_) return Status(errc::invalid_argument, "append() while a claim is open");
        auto p = begin_record(payload.size(), false);
        if (!p) return p.status();
        if (!payload.empty()) std::memcpy(p.value(), payload.data(), payload.size());
        seq = finish_record(payload.size());
    }
    if (sync_on_commit_ && !explicit_batch_) {
        if (Status st = sync(); !st) return st;
    }
    return seq;
}

Result<std::span<std::byte>> Writer::Impl::claim(size_t max_len) {
    if (claimed_) return Status(errc::invalid_argument, "claim() while a claim is open");
    if (Status st = hold(); !st) return st;  // until commit() or abort()
    auto p = begin_record(max_len, true);
    if (!p) {
        end_turn();
        return p.status();
    }
    claimed_ = true;
    claim_max_ = max_len;
    return std::span<std::byte>(p.value(), max_len);
}

Result<uint64_t> Writer::Impl::commit(size_t len) {
    if (!claimed_) return Status(errc::invalid_argument, "commit() without a claim");
    if (len > claim_max_) {
        return Status(errc::invalid_argument, "commit(" + std::to_string(len) +
                                                  ") exceeds the claim of " +
                                                  std::to_string(claim_max_) + " bytes");
    }
    // Bytes the caller wrote past `len` would break "zero past the append offset".
    std::memset(seg_.bytes() + off_ + kRecordHeaderSize + len, 0, claim_max_ - len);
    claimed_ = false;
    const uint64_t seq = finish_record(len);
    if (sync_on_commit_ && !explicit_batch_) {
        Status st = sync();
        end_turn();
        if (!st) return st;
    }
    end_turn();
    return seq;
}

void Writer::Impl::abort() noexcept {
    if (!claimed_) return;
    std::memset(seg_.bytes() + off_ + kRecordHeaderSize, 0, claim_max_);
    claimed_ = false;
    if (!explicit_batch_) undo_staged();  // a roll made for the claim stays; it is harmless
    end_turn();
}

Status Writer::Impl::begin_batch(size_t expected_bytes) {
    if (explicit_batch_) return Status(errc::invalid_argument, "begin_batch() inside a batch");
    if (claimed_) return Status(errc::invalid_argument, "begin_batch() while a claim is open");
    if (Status st = hold(); !st) return st;  // until commit_batch() or abort_batch()
    explicit_batch_ = true;
    batch_ts_ = 0;
    stage_batch_ = expected_bytes >= kStageMinBytes;
    if (stage_batch_) {
        stage_.open(seg_.fd(), seg_.bytes(), seg_.size(), off_);
        pretouch_.set_populate(false);
        set_limits();
    }
    return {};
}

Status Writer::Impl::close_stage() {
    if (!stage_.active()) return {};
    Status st = stage_.flush(off_, seg_.path());
    stage_.close();
    set_limits();
    return st;
}

Status Writer::Impl::commit_batch() {
    if (!explicit_batch_) return Status(errc::invalid_argument, "commit_batch() without a batch");
    if (claimed_) abort();
    // The staged pages reach the page cache before the store that publishes them.
    if (Status st = close_stage(); !st) {
        abort_batch();  // nothing of it is committed
        return st;
    }
    stage_batch_ = false;
    pretouch_.set_populate(true);
    explicit_batch_ = false;
    publish();
    Status st = sync_on_commit_ ? sync() : Status();
    end_turn();
    return st;
}

void Writer::Impl::abort_batch() noexcept {
    if (claimed_) abort();
    stage_.close();  // dropped: never written, or written but never published
    stage_batch_ = false;
    pretouch_.set_populate(true);
    undo_staged();
    set_limits();
    explicit_batch_ = false;
    end_turn();
}

void Writer::Impl::raise_hw(uint64_t need) noexcept {
    hw_ = std::min<uint64_t>(seg_.size(),
                             (need + kHighWaterStep - 1) / kHighWaterStep * kHighWaterStep);
    // Relaxed: read only by a later writer's recovery, after this process is gone (a dead
    // process's stores are all in the page cache, whatever their order).
    seg_.header()->written_hw.store(hw_, std::memory_order_relaxed);
    set_limits();
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
    // The seal goes through the mapping, after the staged pages of this segment.
    if (Status st = close_stage(); !st) return st;
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
        // The next segment is in place (the rename above): a reader that sees the seal
        // can open it.
        Segment::publish_state(rec, kStateSeal);
    } else {
        Segment::stage_state(rec, kStateSeal);  // part of the batch: published with it
        if (held_.empty()) start_seg_end_ = off_ + kRecordHeaderSize;
        held_.push_back(std::move(seg_));
        preparing_.push_back(next.header());
    }
    if (durable_ && !staged) {
        // Everything in the segment we leave is committed: make it durable now, while it
        // is still mapped.
        ::msync(seg_.bytes(), std::min<uint64_t>(seg_.size(), off_ + kRecordHeaderSize), MS_SYNC);
    }
    pretouch_.detach();  // before the old mapping goes (unless held_ keeps it)
    seg_ = std::move(next);
    off_ = seg_.data_begin();
    synced_off_ = 0;
    set_slot(0);
    hw_ = seg_.header()->written_hw.load(std::memory_order_relaxed);
    pretouch_.switch_to(seg_, off_);
    if (stage_batch_) stage_.open(seg_.fd(), seg_.bytes(), seg_.size(), off_);
    set_limits();
    // The segment left behind may be due for deletion — once its records are committed
    // (a batch's rolls are reported when it publishes).
    if (!staged) retainer_.on_roll();
    return {};
}

Result<std::byte*> Writer::Impl::begin_record(uint64_t len, bool claim) {
    if (len > geo_.max_payload()) {
        return Status(errc::too_large,
                      "record of " + std::to_string(len) + " bytes is larger than the maximum of " +
                          std::to_string(geo_.max_payload()) + " bytes for " + dir_ +
                          " (its segment size is " + std::to_string(geo_.segment_size) + ")");
    }
    const uint64_t span = record_span(len);
    // Keep room for the seal after every record.
    const bool roll_first = off_ + span + kRecordHeaderSize > seg_.size();
    if (stage_.active() &&
        (claim || (!roll_first && off_ + span + kRecordHeaderSize > stage_.limit()))) {
        // Write the window out and slide it. A claim (the caller writes into the mapping)
        // or a record larger than the window continues the batch through the mapping.
        if (Status st = stage_.flush(off_, seg_.path()); !st) return st;
        if (claim || off_ + span + kRecordHeaderSize > stage_.limit()) {
            stage_.close();
            stage_batch_ = false;
            pretouch_.set_populate(true);
        }
        set_limits();
    }
    if (roll_first) {
        if (Status st = roll(); !st) return st;  // the stage follows into the next segment
    }
    if (first_state_ == nullptr) mark_start();
    if (off_ + span + kRecordHeaderSize > hw_) raise_hw(off_ + span + kRecordHeaderSize);
    pretouch_.advance(off_ + span);
    std::byte* at = wptr(off_);
    if (stage_.active()) clear_tail(at, span);
    return at + kRecordHeaderSize;
}

inline uint64_t Writer::Impl::encode(uint64_t len) noexcept {
    const uint64_t span = record_span(len);
    RecordHeader* rec = reinterpret_cast<RecordHeader*>(wptr(off_));
    rec->length = static_cast<uint32_t>(len);
    rec->timestamp_ns = stamp();
    if (first_state_ == nullptr) {
        // Published through the mapping, after the stage is written out (commit_batch).
        first_state_ = seg_.record(off_);
        first_value_ = kStateData;
        if (stage_.active()) Segment::stage_state(rec, kStateEmpty);
    } else {
        Segment::stage_state(rec, kStateData);  // published with first_state_
    }
    off_ += span;
    const uint64_t seq = seq_++;
    if (!explicit_batch_) publish();
    return seq;
}

uint64_t Writer::Impl::finish_record(uint64_t len) {
    while (next_slot_off_ <= off_) {
        pending_index_.emplace_back(&seg_.slot(next_slot_), pack_index(seq_ - seg_.base(), off_));
        set_slot(next_slot_ + 1);
    }
    return encode(len);
}

bool Writer::Impl::try_append_fast(const std::byte* p, uint64_t len, uint64_t& seq) noexcept {
    const uint64_t end = off_ + record_span(len);
    if (claimed_ || end + kRecordHeaderSize > wlimit_ || next_slot_off_ <= off_) return false;
    pretouch_.advance(end);
    if (first_state_ == nullptr) mark_start();
    std::byte* at;
    if (stage_.active()) {
        at = stage_.at(off_);
        clear_tail(at, end - off_);
    } else {
        at = seg_.bytes() + off_;  // zero past the append offset already
    }
    if (len != 0) std::memcpy(at + kRecordHeaderSize, p, len);
    seq = encode(len);
    return true;
}

void Writer::Impl::publish() {
    if (first_state_ != nullptr) {
        // Everything staged before (payloads, lengths, timestamps, later states, seals)
        // becomes visible with this one store.
        Segment::publish_state(first_state_, first_value_);
        first_state_ = nullptr;
    }
    if (!pending_index_.empty()) {
        // The records they name were published above.
        for (auto& [slot, v] : pending_index_) Segment::publish_slot(*slot, v);
        pending_index_.clear();
    }
    if (!preparing_.empty()) {
        // A seeking reader may land in them.
        for (SegmentHeader* h : preparing_) Segment::mark_live(h);
        preparing_.clear();
        held_.clear();
        retainer_.on_roll();  // the batch's rolls are committed now
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
        pretouch_.detach();  // before the batch's newest segment is unmapped
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
    set_limits();
    first_state_ = nullptr;
    pending_index_.clear();
    preparing_.clear();
    held_.clear();
    pretouch_.switch_to(seg_, off_);
}

}  // namespace chronicle
