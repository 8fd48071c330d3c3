// chronicle — inspecting and managing a queue's readers (what chronicle-readers shows).
//
// Everything here reads without taking locks: liveness comes from asking the kernel whether
// a lock is held (F_OFD_GETLK), never from taking it and never from guessing with pids.
// Changing a reader (reset, delete) requires that no process holds its name.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "chronicle/export.h"
#include "chronicle/reader.h"
#include "chronicle/status.h"

namespace chronicle {

struct QueueStats {
    std::string dir;
    std::string id;                  // queue.json's id (empty: none yet, an old queue)
    uint64_t first_seq = 0;          // first record still on disk
    uint64_t head_seq = 0;           // one past the last committed record
    uint64_t last_timestamp_ns = 0;  // of the last committed record (0: empty)
    uint64_t segments = 0;
    uint64_t segment_size = 0;
    uint64_t bytes = 0;         // size of all segment files
    uint64_t disk_free = 0;     // bytes available on its file system
    uint64_t disk_size = 0;     // the size of that file system
    bool writer_alive = false;  // the writer lock is held
    int writer_pid = 0;         // as written in writer.lock (meaningful when alive)
    // Every live writer's pid, writer_pid first (several shared writers may append at once;
    // from producers.shm's table). Empty when none is alive.
    std::vector<int> writer_pids;
    // Why the live writer wakes no follower (its notifier could not start: no inotify, no
    // eventfd, readers/ unreadable…); followers then notice records by polling. Empty when
    // it wakes them, or when no writer is alive.
    std::string notifier_status;
    uint64_t notifier_rescans = 0;  // full rescans of readers/ by the writer's notifier
    uint64_t notifier_wakes = 0;    // follower wake-ups it sent
    // The last retention pass that deleted something or failed, by the writer or by
    // chronicle-queue retain (retention.h, last_retention_pass(); empty if none).
    std::string retention_last;
};

struct FollowerStats {
    bool registered = false;  // readers/<name>.efd exists and parses
    int pid = 0;
    int fd = -1;
    std::string fifo;
    uint64_t start_time = 0;
    uint64_t eventfd_id = 0;
    uint64_t created_ns = 0;
    bool pid_alive = false;  // the pid exists with the recorded start time
    bool sleeping = false;   // parked in wait() right now
    uint64_t wakeups = 0;
};

struct ReaderStats {
    std::string name;
    bool ephemeral = false;  // an anonymous follower's registration ("~anon.<pid>.<n>")
    bool alive = false;      // a process holds the name (its lock)
    int owner_pid = 0;       // the holder's pid (meaningful when alive)
    uint64_t position = 0;   // next record to hand over
    uint64_t lag = 0;        // head_seq - position (0 when caught up)
    uint64_t lag_bytes = 0;  // bytes of records not yet read (upper bound per segment)
    double lag_seconds = 0;  // age of the oldest unread record
    uint64_t created_ns = 0;
    uint64_t commit_ns = 0;  // last time the position was stored
    // Retention deleted records this reader had not read: its position is before the first
    // record on disk (chronicle-tail --skip-expired or a reset moves it on).
    bool expired = false;
    uint64_t records_lost = 0;  // first_seq - position when expired
    FollowerStats follower;
    // The cursor file cannot be used (truncated or of the wrong size, wrong magic, a
    // version this build does not know, not a regular file, unreadable): `damage` says why,
    // naming the file. Only name, ephemeral and alive (when the file could be opened) are
    // meaningful then; the other fields are 0.
    bool damaged = false;
    std::string damage;
};

CHRONICLE_API Result<QueueStats> inspect_queue(std::string_view dir);

struct SegmentStats {
    std::string file;      // "00000000000000001000.seg"
    uint64_t base = 0;     // sequence of its first record
    uint64_t records = 0;  // committed records in it (up to the next segment or the head)
    uint64_t bytes = 0;    // file size
};
// The queue's segments, oldest first.
CHRONICLE_API Result<std::vector<SegmentStats>> inspect_segments(std::string_view dir);
// All readers (named and ephemeral), sorted by name; a reader whose cursor file is damaged
// is listed with `damaged` set, never left out.
CHRONICLE_API Result<std::vector<ReaderStats>> inspect_readers(std::string_view dir);
// One reader (errc::not_found if it has no cursor file); damaged as above.
CHRONICLE_API Result<ReaderStats> inspect_reader(std::string_view dir, std::string_view name);

// ---------------------------------------------------------------------------- verify

// One thing wrong with a queue: the file (relative to the queue directory), the byte
// offset in it (0 when the whole file is at fault) and what is wrong.
struct Problem {
    std::string file;
    uint64_t offset = 0;
    std::string what;
    // Derived data or an uncommitted tail that a writer's recovery rewrites or clears
    // (verify_queue(dir, true), or the next writer): nothing committed is touched.
    bool repairable = false;
};

struct VerifyReport {
    uint64_t segments = 0;
    uint64_t records = 0;  // committed records read, first to head
    uint64_t first_seq = 0;
    uint64_t head_seq = 0;
    std::vector<Problem> problems;
    std::vector<std::string> notes;  // not problems: expired readers, a live writer
    bool repaired = false;           // `repair` ran recovery (problems are those found after it)
};

// Checks a queue's structure without changing it: every segment's header; segments
// contiguous (each seal names the next segment's base); records well formed, timestamps
// non-decreasing; each index slot names the record the records say; nothing but zeros
// after the last committed record (skipped while a writer is alive: its batch may be
// there); every cursor readable and within range; retention.json and queue.json valid.
// With `repair`, first runs a writer's recovery (errc::busy while a writer is alive), which
// seals a roll cut short, removes an uncommitted batch's segments and clears what lies after
// the last committed record, then rewrites every wrong index slot from the records; a
// committed record is never touched (a damaged one stays a problem).
CHRONICLE_API Result<VerifyReport> verify_queue(std::string_view dir, bool repair = false);

// Creates a named reader at `at`; errc::busy if it exists already, errc::invalid_argument
// for a sequence past the head.
CHRONICLE_API Status create_reader(std::string_view dir, std::string_view name, const Position& at);
// Deletes a named reader and its files (readers/NAME.cursor, .efd, .fifo: nothing else);
// errc::busy while a process holds it. A damaged cursor is deleted too: one that can be
// opened under its lock, any other non-directory file by that name as it is.
CHRONICLE_API Status delete_reader(std::string_view dir, std::string_view name);
// Moves a reader to `to` and returns (old, new) positions; with dry_run nothing changes.
// errc::busy while a process holds it.
struct ResetResult {
    uint64_t old_position = 0;
    uint64_t new_position = 0;
};
CHRONICLE_API Result<ResetResult> reset_reader(std::string_view dir, std::string_view name,
                                               const Position& to, bool dry_run);

// Removes what dead processes left in readers/: ephemeral follower registrations and the
// .efd/.fifo of named readers nobody holds (always), and named readers nobody holds whose
// position has not been stored for `stale_after_ns` (0: keep all names). Returns the files
// removed (or that would be, with dry_run), relative to the queue directory. Files changed
// in the last 10 seconds (kGcGraceSeconds) are left alone: their owner may be setting them
// up; those gc would otherwise remove are listed in `deferred`, if given.
constexpr int kGcGraceSeconds = 10;
CHRONICLE_API Result<std::vector<std::string>> gc_readers(
    std::string_view dir, uint64_t stale_after_ns, bool dry_run,
    std::vector<std::string>* deferred = nullptr);

}  // namespace chronicle
