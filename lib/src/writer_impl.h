// chronicle — the writer's state (see writer.h for the API, format.h for the commit
// protocol). writer.cc opens a queue and holds writer.lock; writer_append.cc encodes,
// stages, rolls and publishes records.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "chronicle/writer.h"
#include "format.h"
#include "fs.h"
#include "page_stage.h"
#include "pretouch.h"
#include "producers.h"
#include "queue_files.h"
#include "recovery.h"
#include "retainer.h"
#include "segment.h"
#include "wake.h"

namespace chronicle {

class Writer::Impl {
  public:
    Status open(std::string_view dir, const WriterOptions& o);
    ~Impl();

    Result<uint64_t> append(std::span<const std::byte> payload);
    Writer::Appended append_delimited(std::span<const std::byte> block, std::byte delim);
    Result<std::span<std::byte>> claim(size_t max_len);
    Result<uint64_t> commit(size_t len);
    void abort() noexcept;
    Status begin_batch(size_t expected_bytes);
    Status commit_batch();
    void abort_batch() noexcept;
    Status sync();

    [[nodiscard]] uint64_t next_seq() const noexcept { return seq_; }
    [[nodiscard]] const SegmentGeometry& geometry() const noexcept { return geo_; }
    [[nodiscard]] const std::string& dir() const noexcept { return dir_; }

  private:
    Status take_lock(const WriterOptions& o);
    Status busy(bool exclusive_holder);
    // Shared writers: joining (under writer.lock byte 1) and leaving.
    Status join(bool alone);
    void leave() noexcept;
    // Shared writers take the append lock for each commit (producers.h): hold() brings
    // this writer's view up to date (the page's tail, or recovery after a dead holder),
    // let_go() stores the tail and releases. Both no-ops for an exclusive writer.
    // `try_only`: errc::busy instead of waiting when another writer holds the lock.
    Status hold(bool try_only = false);
    void let_go() noexcept;
    // The tail the producer page holds, checked; errc::corrupt when it cannot be right.
    Status adopt_page(const ProducerTail& t);
    // let_go() unless a claim or a batch keeps the turn.
    void end_turn() noexcept {
        if (holding_ && !claimed_ && !explicit_batch_) let_go();
    }
    Result<uint64_t> append_in_turn(std::span<const std::byte> payload);
    Status settle_retention(bool fresh, const std::optional<RetentionLimits>& wanted);
    void adopt(Tail&& t);
    // Where appending continues in seg_ (from recovery or the producer page).
    void set_tail(uint64_t off, uint64_t seq, uint64_t last_ts, uint32_t slot);
    Status roll();
    // The record encoder: begin_record() makes room (rolling if needed) and returns where
    // the payload goes; finish_record() names index slots and calls encode().
    Result<std::byte*> begin_record(uint64_t len, bool claim);
    uint64_t finish_record(uint64_t len);
    // The common case of append(), the encoder without its slow checks: the record fits
    // below the high-water mark, names no index slot and no claim is open.
    bool try_append_fast(const std::byte* p, uint64_t len, uint64_t& seq) noexcept;
    // Writes the header of the record at off_ (its payload is in place), stages its state
    // word and advances; publishes unless a batch is open. Returns its sequence. Inlined
    // into both callers: a call per record cost `cat file | chronicle-append` 6 %.
    [[gnu::always_inline]] inline uint64_t encode(uint64_t len) noexcept;
    // append_delimited() inside a batch: frames [p, end) record by record.
    void split_into_batch(const std::byte* p, const std::byte* end, std::byte delim,
                          Writer::Appended& r);
    // Packs the delimited records at the start of [p, end), as many as one pack holds
    // (pack.h); returns where the rest begins. The first must fit (the caller checks).
    const std::byte* pack_into_batch(const std::byte* p, const std::byte* end, int delim,
                                     Writer::Appended& r) noexcept;
    void publish();
    void undo_staged() noexcept;
    void raise_hw(uint64_t need) noexcept;
    uint64_t stamp() noexcept;
    // Where the record at file offset `off` is written: the page stage while one is open,
    // the mapping otherwise.
    [[nodiscard]] std::byte* wptr(uint64_t off) const noexcept {
        return stage_.active() ? stage_.at(off) : seg_.bytes() + off;
    }
    // wlimit_ after a change of hw_ or of the stage.
    void set_limits() noexcept { wlimit_ = stage_.active() ? std::min(hw_, stage_.limit()) : hw_; }
    // Writes the stage out and closes it (pwrite errors are returned; nothing is published).
    Status close_stage();
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
    uint64_t wlimit_ = 0;  // records (and a seal) end below: hw_, and the stage's window
    // A large batch's records go through the page cache (page_stage.h).
    PageStage stage_;
    bool stage_batch_ = false;  // this batch uses the stage (reopened after a roll)

    // Claim in progress.
    bool claimed_ = false;
    size_t claim_max_ = 0;

    // Staged, unpublished work. first_state_ is the record whose state word's release
    // store (Segment::publish_state) will publish everything staged (the first record or
    // seal of a batch); null = nothing.
    bool explicit_batch_ = false;
    uint64_t batch_ts_ = 0;
    format::RecordHeader* first_state_ = nullptr;
    uint32_t first_value_ = 0;
    std::vector<std::pair<format::IndexSlot*, uint64_t>> pending_index_;
    std::vector<Segment> held_;                      // earlier segments of the batch, mapped
    std::vector<format::SegmentHeader*> preparing_;  // segments created by the batch, in order
    // Where the staged work began, to undo it.
    uint64_t start_off_ = 0, start_seq_ = 0, start_seg_end_ = 0, start_last_ts_ = 0;
    uint32_t start_slot_ = 0;

    bool durable_ = false;
    bool sync_on_commit_ = false;
    uint64_t synced_off_ = 0;  // sync() has written [data_begin, synced_off_) of seg_

    Pretoucher pretouch_;
    WakeHook wake_;
    files::WriterLockText lock_text_;  // what writer.lock says about this writer
    bool owns_text_ = false;           // writer.lock's text names this writer

    // Shared writers (not WriterOptions::exclusive).
    bool shared_ = false;
    bool holding_ = false;                   // the append lock is held
    uint64_t epoch_ = 0;                     // the page's epoch as this writer left it
    uint64_t turn_base_ = 0, turn_off_ = 0;  // the tail when the turn began
    std::optional<ProducerPageMap> producers_;
    Retainer retainer_;  // last: its thread stops before anything else goes
};

}  // namespace chronicle
