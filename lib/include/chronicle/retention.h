// chronicle — retention: the limits a queue keeps with it, and the policy that deletes whole
// sealed segments, oldest first, to honour them (docs/DESIGN.md, "Retention").
//
// The limits live in <queue>/retention.json. The writer applies them from a background
// thread after each segment roll and every few seconds (never on the append path);
// apply_retention() runs the same policy on demand (chronicle-queue retain). Deletion
// unlinks segment files in ascending order, so whatever instant a deleting process dies at,
// what is left is one contiguous range of sequence numbers. A reader that still maps a
// deleted segment keeps reading it and moves on at its seal.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chronicle/export.h"
#include "chronicle/status.h"

namespace chronicle {

// A queue's retention limits; 0 = no such limit. All zero: keep everything (the default).
struct RetentionLimits {
    uint64_t max_bytes = 0;          // total size of the segment files
    uint64_t max_age_ms = 0;         // age of a segment's newest record
    uint64_t max_records = 0;        // records on disk (head - first)
    uint64_t keep_free_bytes = 0;    // free space to leave on the file system, in bytes…
    uint32_t keep_free_percent = 0;  // …or in percent of its size (1..99); at most one is set
    // Soft (false): a segment that a named reader still needs is kept, and the report names
    // the reader. Hard (true): it is deleted anyway; the reader is then expired.
    bool hard = false;

    [[nodiscard]] bool any() const noexcept {
        return max_bytes != 0 || max_age_ms != 0 || max_records != 0 || keep_free_bytes != 0 ||
               keep_free_percent != 0;
    }
    friend bool operator==(const RetentionLimits&, const RetentionLimits&) = default;
};

// "max-bytes 256.0 MiB, max-age 7d, hard" / "none": one line for messages and `info`.
CHRONICLE_API std::string describe(const RetentionLimits& l);
// "512 B", "64.0 MiB", "1.5 GiB": a size as describe() writes it (the tools' reports too).
CHRONICLE_API std::string describe_bytes(uint64_t bytes);

// The queue's limits: all zero when it has no retention.json. errc::corrupt (naming the
// file) for a malformed file or a version this build does not know.
CHRONICLE_API Result<RetentionLimits> read_retention(std::string_view dir);
// Replaces retention.json atomically (a temporary file renamed over it); an empty
// RetentionLimits (any() false, soft) removes the file. errc::invalid_argument for
// contradictory limits (both keep-free forms, a percentage outside 1..99).
CHRONICLE_API Status write_retention(std::string_view dir, const RetentionLimits& limits);

// Why a segment is deleted: the first limit it exceeds, in this order.
enum class RetentionCause { max_bytes, max_age, max_records, keep_free };
CHRONICLE_API const char* cause_name(RetentionCause c) noexcept;  // "max-bytes", …

struct SegmentDeletion {
    std::string file;   // "00000000000000001000.seg"
    uint64_t base = 0;  // its first sequence
    uint64_t records = 0;
    uint64_t bytes = 0;  // disk space it held
    RetentionCause cause = RetentionCause::max_bytes;
    uint64_t first_after = 0;  // the first available sequence once it is gone
    bool done = false;         // deleted (false in a dry run, or when deletion failed)
};

// A named reader that keeps segments the limits would delete (soft limits), or that a hard
// limit overtook (expired).
struct ReaderPin {
    std::string name;
    uint64_t position = 0;  // its stored position (0 for a damaged cursor)
    bool alive = false;     // a process holds the name
    bool damaged = false;   // the cursor cannot be read: it pins everything (soft)
    uint64_t bytes = 0;     // pinned: disk space kept for it; expired: 0
    uint64_t segments = 0;
    uint64_t records_lost = 0;  // expired: records it had not read that are gone
};

struct RetentionReport {
    RetentionLimits limits;
    uint64_t first_before = 0, first_after = 0, head = 0;
    uint64_t bytes_before = 0, bytes_after = 0;
    uint64_t segments_before = 0, segments_after = 0;
    uint64_t disk_free = 0;  // before
    std::vector<SegmentDeletion> deleted;
    std::vector<ReaderPin> pinned;   // soft limits held back by these readers
    std::vector<ReaderPin> expired;  // hard limits overtook these readers
    // Another process was applying retention at that moment (it holds the queue
    // directory's flock): nothing was done.
    bool busy = false;
    // A deletion failed (EACCES, EROFS…): the pass stopped at that segment; `done` says
    // what went before it.
    Status error;
};

struct RetainOptions {
    bool dry_run = false;  // plan only: `deleted` lists what would go, nothing is removed
    // Use these limits instead of retention.json (a dry run of limits not yet set).
    std::optional<RetentionLimits> limits;
};

// One line for a pass: "2026-11-29T22:35:21Z: deleted 3 segments, 48.0 MiB (max-bytes);
// first available 39118128", or what stopped it. Empty when the pass did nothing.
CHRONICLE_API std::string summarize(const RetentionReport& r, uint64_t when_ns);

// What the last pass that deleted something or failed said (summarize(), plus "by pid
// N"), from retention.last: every pass that is not a dry run records itself there, so the
// writer's own deletions are reported too. Empty when there was none.
CHRONICLE_API Result<std::string> last_retention_pass(std::string_view dir);

// Applies the policy once. errc::not_found for a missing queue, errc::corrupt for a
// malformed retention.json; a failed deletion is the report's `error`.
CHRONICLE_API Result<RetentionReport> apply_retention(std::string_view dir,
                                                      const RetainOptions& options = {});

}  // namespace chronicle
