// chronicle — on-disk format: constants and header structs only.
// The bytes are described in prose in docs/DESIGN.md ("On-disk format"); keep both in step.
//
// Concurrency (segment data area)
//   Writer: the one process holding writer.lock. It writes a record's length, timestamp and
//   payload with plain stores, then publishes the record with ONE release store of
//   RecordHeader::state (kStateData or kStateSeal). Readers acquire-load `state`; only after
//   they see a non-zero value do they read the other fields, which the release made visible.
//   Invariant: every byte of a segment at or past the writer's append offset is zero, so
//   the first unpublished record always reads as state == kStateEmpty. The writer keeps it
//   by zeroing aborted claims, and recovery restores it after a crash.
//
//   Batch commit: records after the first of a batch get their state stored relaxed; the
//   batch becomes visible with the release store of the FIRST record's state. A reader
//   walks records in order and therefore cannot reach a later record of the batch before
//   the first. Segments created inside a batch start in kSegmentPreparing and are set
//   kSegmentLive (release) after that first store, so a reader that seeks by sequence never
//   lands in an uncommitted batch either. A reader that reaches a segment through a seal
//   ignores the flag: it passed the batch's first record, so the batch is committed even
//   if its writer died before marking the segments live.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace chronicle::format {

inline constexpr uint64_t kSegmentMagic = 0x3147455331524843ull;  // "CHR1SEG1" little-endian
inline constexpr uint64_t kCursorMagic = 0x3152554331524843ull;   // "CHR1CUR1"
// Version 2 segments may hold packs (kStatePack) besides version 1's records; a reader
// reads both. A version 1 segment never holds a pack: one found there is damage.
inline constexpr uint32_t kSegmentVersion = 2;
inline constexpr uint32_t kSegmentVersionV1 = 1;
inline constexpr uint32_t kCursorVersion = 1;

inline constexpr uint64_t kPageSize = 4096;
inline constexpr uint64_t kMinSegmentSize = 16 * 1024;
inline constexpr uint64_t kMaxSegmentSize = 1ull << 30;  // index offsets are 32-bit
inline constexpr uint32_t kMaxIndexSlots = 1024;
inline constexpr uint64_t kRecordAlign = 8;

// Record states. Distinct non-trivial values so that stray bytes are recognisable as damage.
inline constexpr uint32_t kStateEmpty = 0;
inline constexpr uint32_t kStateData = 0x41544144;  // "DATA"
inline constexpr uint32_t kStateSeal = 0x4C414553;  // "SEAL": segment ends, next one exists
inline constexpr uint32_t kStatePack = 0x4B434150;  // "PACK": several small records (pack.h)

inline constexpr uint32_t kSegmentPreparing = 0;
inline constexpr uint32_t kSegmentLive = 1;

// 16 bytes before every payload; payload starts 8-byte aligned. A pack (kStatePack) has the
// same header; its `length` bytes are a count and the records it holds (pack.h).
struct RecordHeader {
    std::atomic<uint32_t> state;  // published last (release); readers acquire
    uint32_t length;              // payload bytes (0 for a seal)
    uint64_t timestamp_ns;        // CLOCK_REALTIME at write, non-decreasing per queue
};
static_assert(sizeof(RecordHeader) == 16);
static_assert(offsetof(RecordHeader, length) == 4);
static_assert(offsetof(RecordHeader, timestamp_ns) == 8);
static_assert(std::atomic<uint32_t>::is_always_lock_free);

inline constexpr uint64_t kRecordHeaderSize = sizeof(RecordHeader);

// Bytes a record with `payload` bytes occupies, header included.
constexpr uint64_t record_span(uint64_t payload) {
    return kRecordHeaderSize + ((payload + kRecordAlign - 1) & ~(kRecordAlign - 1));
}

// First bytes of every segment file; the sparse index follows at kIndexOffset and the first
// record starts at header_size (a multiple of the page size).
struct SegmentHeader {
    uint64_t magic;              // kSegmentMagic
    uint32_t version;            // kSegmentVersion
    uint32_t header_size;        // offset of the first record
    uint64_t segment_size;       // file size, fixed at creation
    uint64_t base_seq;           // sequence of the first record; also the file name
    uint64_t created_ns;         // CLOCK_REALTIME at creation
    uint32_t index_stride_log2;  // one index slot per 2^n data bytes
    uint32_t index_slots;
    std::atomic<uint32_t> seg_state;  // kSegmentPreparing / kSegmentLive (release)
    uint32_t reserved0;
    // Every byte at or past this offset is still zero. The writer raises it (relaxed: only
    // the next writer's recovery reads it, after this one is gone) BEFORE it writes past
    // it, so recovery knows how far a torn tail can reach without reading the whole file.
    std::atomic<uint64_t> written_hw;
};
static_assert(sizeof(SegmentHeader) == 64);
static_assert(offsetof(SegmentHeader, base_seq) == 24);
static_assert(offsetof(SegmentHeader, seg_state) == 48);
static_assert(offsetof(SegmentHeader, written_hw) == 56);
inline constexpr uint64_t kIndexOffset = 64;

// Index slot i names the first record that starts at or after header_size + i * stride:
// (seq - base_seq) << 32 | offset. 0 = not written yet (offset is never 0).
// Stored with release after the record it names is committed; readers acquire.
using IndexSlot = std::atomic<uint64_t>;
static_assert(std::atomic<uint64_t>::is_always_lock_free);

constexpr uint64_t pack_index(uint64_t seq_delta, uint64_t offset) {
    return (seq_delta << 32) | offset;
}
constexpr uint64_t index_seq_delta(uint64_t v) {
    return v >> 32;
}
constexpr uint64_t index_offset(uint64_t v) {
    return v & 0xffffffffull;
}

// Durable cursor of a named reader: readers/<name>.cursor, one page, mmap'd.
// Concurrency: only the process holding the name's lock writes `next_seq` and `commit_ns`
// (relaxed stores of whole 64-bit words: a crash never tears them). Other processes read
// them relaxed; they are informational snapshots for lag reports. The wake area (from 64
// on) belongs to the wake protocol and is documented in wake.h.
struct CursorHeader {
    uint64_t magic;    // kCursorMagic
    uint32_t version;  // kCursorVersion
    uint32_t size;     // file size (one page)
    uint64_t created_ns;
    std::atomic<uint64_t> next_seq;   // the next record to hand over
    std::atomic<uint64_t> commit_ns;  // CLOCK_REALTIME of the last position store
    // Pid and /proc start time of the process that last took the name's lock. Meaningful
    // only while the lock is held (chronicle-readers checks the lock, not the pid).
    std::atomic<uint64_t> owner_pid;
    std::atomic<uint64_t> owner_start;
    uint64_t reserved;
};
static_assert(sizeof(CursorHeader) == 64);
static_assert(offsetof(CursorHeader, next_seq) == 24);
inline constexpr uint64_t kCursorFileSize = kPageSize;

// Wake area of a cursor page (offset 64, its own cache line): the follower's half of the
// sleep protocol (see wake.h for the whole argument).
//   sleep_word  written only by the follower: incremented to an odd value when it is about
//               to block, to the next even value when it is awake again. The writer never
//               writes it; it remembers the last odd value it signalled, so it signals once
//               per sleep even when it may only map the page read-only.
//   wait_seq    the sequence the follower waits for (informational).
//   wakeups     how many times it was woken (informational).
struct CursorWake {
    std::atomic<uint64_t> sleep_word;
    std::atomic<uint64_t> wait_seq;
    std::atomic<uint64_t> wakeups;
    uint64_t reserved[5];
};
static_assert(sizeof(CursorWake) == 64);
inline constexpr uint64_t kCursorWakeOffset = 64;

// <queue>/wake.shm: one page shared by the writer and every follower.
//   sleepers  the hint: a follower stores 1 before it blocks; the writer exchanges it to 0
//             when it looks for sleepers. 0 means no follower has gone to sleep since the
//             writer last looked, so a commit needs no system call.
inline constexpr uint64_t kWakeMagic = 0x454B415731524843ull;  // "CHR1WAKE"
struct WakePage {
    std::atomic<uint64_t> magic;  // kWakeMagic once initialised (0 right after creation)
    uint32_t version;
    uint32_t size;
    uint64_t reserved[6];
    alignas(64) std::atomic<uint32_t> sleepers;
    // Statistics the writer's notifier keeps for chronicle-readers (relaxed, informational):
    // full rescans of readers/ (at start and after an inotify overflow), followers woken.
    alignas(64) std::atomic<uint64_t> rescans;
    std::atomic<uint64_t> wakes_sent;
};
static_assert(offsetof(WakePage, sleepers) == 64);
static_assert(offsetof(WakePage, rescans) == 128);
static_assert(sizeof(WakePage) <= kPageSize);

}  // namespace chronicle::format
