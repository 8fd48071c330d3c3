// chronicle — one segment file: naming, geometry, validation, record access, sparse index.
//
// A Segment owns its descriptor and mapping (RAII: unmapped and closed on destruction or
// move-assignment, so rolling through thousands of segments keeps descriptors and mappings
// flat). Readers map segments read-only; only the writer maps them writable.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "chronicle/status.h"
#include "format.h"
#include "fs.h"
#include "queue_files.h"

namespace chronicle {

struct SegmentGeometry {
    uint64_t segment_size = 0;
    uint32_t header_size = 0;
    uint32_t stride_log2 = 0;
    uint32_t slots = 0;
    static Result<SegmentGeometry> for_size(uint64_t segment_size);
    // Largest payload one record can have in a segment of this geometry.
    [[nodiscard]] uint64_t max_payload() const;
};

enum class RecKind { empty, data, seal, corrupt };

// A record as read. A pack (pack.h) reads as kind data with packed set: `count` records,
// `payload` and `length` its body.
struct RecView {
    RecKind kind = RecKind::empty;
    bool packed = false;
    uint32_t count = 1;  // sequence numbers it takes (data)
    uint32_t length = 0;
    uint64_t timestamp_ns = 0;
    const std::byte* payload = nullptr;
    uint64_t next_off = 0;  // offset of the following record (data and seal)
};

class Segment {
  public:
    Segment() = default;
    Segment(Segment&&) noexcept = default;
    Segment& operator=(Segment&&) noexcept = default;

    // Opens and validates dir/<files::segment_name(base)>. not_found if it does not exist.
    static Result<Segment> open(int dirfd, std::string_view dir, uint64_t base, bool writable);
    // Creates a fresh segment under the temporary name `tmp_name`: fallocate'd (a full disk
    // is ENOSPC here, never SIGBUS later), mapped writable, header written with `seg_state`.
    // The caller renames it into place with publish_as().
    static Result<Segment> create(int dirfd, std::string_view dir, std::string_view tmp_name,
                                  const SegmentGeometry& geo, uint64_t base, uint32_t seg_state);
    // Renames a segment made by create() to its final name (after setting its base).
    Status publish_as(int dirfd, std::string_view dir, std::string_view tmp_name, uint64_t base);

    [[nodiscard]] bool valid() const noexcept { return map_.valid(); }
    [[nodiscard]] const std::string& path() const noexcept { return path_; }
    [[nodiscard]] uint64_t base() const noexcept { return header()->base_seq; }
    [[nodiscard]] uint64_t size() const noexcept { return map_.size(); }
    [[nodiscard]] uint64_t data_begin() const noexcept { return header()->header_size; }
    [[nodiscard]] uint32_t slots() const noexcept { return header()->index_slots; }
    [[nodiscard]] uint64_t slot_start(uint32_t i) const noexcept {
        return data_begin() + (uint64_t{i} << header()->index_stride_log2);
    }
    [[nodiscard]] format::SegmentHeader* header() const noexcept {
        return reinterpret_cast<format::SegmentHeader*>(map_.data());
    }
    [[nodiscard]] format::RecordHeader* record(uint64_t off) const noexcept {
        return reinterpret_cast<format::RecordHeader*>(map_.data() + off);
    }
    [[nodiscard]] std::byte* bytes() const noexcept { return map_.data(); }
    [[nodiscard]] format::IndexSlot& slot(uint32_t i) const noexcept {
        return reinterpret_cast<format::IndexSlot*>(map_.data() + format::kIndexOffset)[i];
    }
    [[nodiscard]] int fd() const noexcept { return fd_.get(); }
    // Version 2: the segment may hold packs (pack.h); the writer packs records only then.
    [[nodiscard]] bool packs() const noexcept { return packs_; }
    // The file was cut short under this mapping (see fs::Mapping::truncated).
    [[nodiscard]] bool truncated() const noexcept { return map_.truncated(); }

    // Acquire-load of seg_state; pairs with the writer's release store when a batch that
    // created this segment commits. A preparing segment reads as holding no records yet.
    [[nodiscard]] bool live() const noexcept {
        return header()->seg_state.load(std::memory_order_acquire) == format::kSegmentLive;
    }

    // --- Stores that publish, for the writer and recovery. The barrier lives here, with
    // the load it pairs with named (as LevelDB's skiplist.h keeps SetNext beside
    // NoBarrier_SetNext). Static: a batch publishes words of segments it already left.

    // A record's state word (data or seal). Release: pairs with read()'s acquire, so the
    // length, timestamp and payload stored before it are visible with it — and so is every
    // word stage_state() stored before it (a batch).
    static void publish_state(format::RecordHeader* r, uint32_t state) noexcept {
        r->state.store(state, std::memory_order_release);
    }
    // The same without a barrier: a later record of a batch, published by the release store
    // of the batch's first state word (format.h).
    static void stage_state(format::RecordHeader* r, uint32_t state) noexcept {
        r->state.store(state, std::memory_order_relaxed);
    }
    // An index slot. Release: pairs with the acquire loads of filled_slots() and
    // index_floor(); the record it names, and every record before it, is published first.
    static void publish_slot(format::IndexSlot& slot, uint64_t v) noexcept {
        slot.store(v, std::memory_order_release);
    }
    // Empties an index slot past the end of the log (recovery). Relaxed: it names nothing a
    // reader may rely on, and readers verify slots before use (verified_slot()).
    static void clear_slot(format::IndexSlot& slot) noexcept {
        slot.store(0, std::memory_order_relaxed);
    }
    // seg_state = live. Release: pairs with live()'s acquire; what a batch staged in the
    // segment is visible with it.
    static void mark_live(format::SegmentHeader* h) noexcept {
        h->seg_state.store(format::kSegmentLive, std::memory_order_release);
    }
    // seg_state of a segment still under a temporary name. Relaxed: nobody else maps it
    // yet; the rename into place comes after, and a reader's open+mmap sees the page.
    static void set_state_unpublished(format::SegmentHeader* h, uint32_t seg_state) noexcept {
        h->seg_state.store(seg_state, std::memory_order_relaxed);
    }

    // Reads the record at `off` (acquire on its state word; see format.h).
    [[nodiscard]] RecView read(uint64_t off) const noexcept;

    // The furthest published index entry at or before `seq`, as (offset, seq); the first
    // record if none. Binary search over the filled prefix of the slots: O(log slots).
    [[nodiscard]] std::pair<uint64_t, uint64_t> index_floor(uint64_t seq) const noexcept;
    // Index slot i as (offset, seq) if it is consistent: it names a committed record at or
    // after its stride, and the records from the previous slot (or the first record) lead
    // exactly to it. A damaged slot is never trusted (the callers below fall back to the
    // first record). Costs a scan of at most about one stride.
    [[nodiscard]] std::optional<std::pair<uint64_t, uint64_t>> verified_slot(
        uint32_t i) const noexcept;
    // Number of filled slots (they form a prefix).
    [[nodiscard]] uint32_t filled_slots() const noexcept;
    // The last published index entry, as (offset, seq).
    [[nodiscard]] std::pair<uint64_t, uint64_t> index_last() const noexcept;
    // First record whose timestamp is >= ts, via binary search over the index slots, then a
    // scan of at most one stride. Returns (offset, seq) at which to start scanning.
    [[nodiscard]] std::pair<uint64_t, uint64_t> index_floor_time(uint64_t ts) const noexcept;

    // Scans committed records from (off, seq) until `seq == stop_seq` (or the pack that
    // holds stop_seq: then seq is the pack's first), an empty slot, a seal or damage.
    // Returns the final (off, seq) and what stopped it.
    struct ScanEnd {
        uint64_t off;
        uint64_t seq;
        RecKind stopped_at;
    };
    [[nodiscard]] ScanEnd scan(uint64_t off, uint64_t seq, uint64_t stop_seq) const noexcept;

    Status corrupt_at(uint64_t off, std::string_view why) const;

  private:
    fs::Fd fd_;
    fs::Mapping map_;
    std::string path_;
    bool packs_ = false;
};

}  // namespace chronicle
