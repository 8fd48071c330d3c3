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

struct RecView {
    RecKind kind = RecKind::empty;
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
    // The file was cut short under this mapping (see fs::Mapping::truncated).
    [[nodiscard]] bool truncated() const noexcept { return map_.truncated(); }

    // Acquire-load of seg_state; pairs with the writer's release store when a batch that
    // created this segment commits. A preparing segment reads as holding no records yet.
    [[nodiscard]] bool live() const noexcept {
        return header()->seg_state.load(std::memory_order_acquire) == format::kSegmentLive;
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

    // Scans committed records from (off, seq) until `seq == stop_seq`, an empty slot, a seal
    // or damage. Returns the final (off, seq) and what stopped it.
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
};

}  // namespace chronicle
