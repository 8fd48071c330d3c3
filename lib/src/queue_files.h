// chronicle — every name in a queue directory, in one place (after LevelDB's db/filename.h).
//
//   <queue>/
//     00000000000000000000.seg   segments, named by the sequence of their first record
//     writer.lock                the writer's lock; its text names the holder (JSON)
//     wake.shm                   the wake page shared by the writer and followers
//     producers.shm              shared writers' append lock, tail and table (producers.h)
//     retention.json             the queue's retention limits (JSON; absent: keep all)
//     retention.last             what the last retention pass deleted, or why it failed
//     queue.json                 the queue's identity: a random id made with it (JSON)
//     .next.seg.tmp              a segment being created by a roll (removed by recovery)
//     .prep.seg.tmp              the next segment prepared ahead of a roll
//     .prep.<pid>.<n>.seg.tmp    the same, by shared writer n of process pid
//     readers/
//       <name>.cursor            a named reader's durable position (and its wake area)
//       <name>.efd               a following reader's wake registration (JSON)
//       <name>.fifo              its fallback wake channel
//       ~anon.<pid>.<n>.*        the same for an anonymous follower
//       .<file>.<pid>.tmp        a file being written atomically (temporary + rename)
//
// Building a name, recognising one, opening the two directories and reading or writing
// writer.lock happen here and nowhere else; docs/DESIGN.md describes each file's content.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "chronicle/status.h"
#include "fs.h"

namespace chronicle::files {

inline constexpr std::string_view kWriterLock = "writer.lock";
inline constexpr std::string_view kWakePage = "wake.shm";
inline constexpr std::string_view kProducers = "producers.shm";
// Bytes of writer.lock that carry the writers' locks (docs/DESIGN.md §4): 0 = exclusive
// (write) or shared (read) writer; 1 = a shared writer joining or leaving; 2 = a shared
// writer (read; write while it joins: "am I alone?").
inline constexpr int64_t kLockByteMode = 0;
inline constexpr int64_t kLockByteJoin = 1;
inline constexpr int64_t kLockBytePresent = 2;
inline constexpr std::string_view kReadersDir = "readers";
inline constexpr std::string_view kRetention = "retention.json";
// The last retention pass that deleted something or failed (JSON, replaced by each).
inline constexpr std::string_view kRetentionLast = "retention.last";
inline constexpr std::string_view kQueueId = "queue.json";
// The writer's temporary segment during a roll, and the one prepared ahead of it.
inline constexpr std::string_view kNextSegmentTmp = ".next.seg.tmp";
inline constexpr std::string_view kPreparedSegmentTmp = ".prep.seg.tmp";
// Names of anonymous followers: "~anon.<pid>.<n>" ('~' is outside the user alphabet).
inline constexpr std::string_view kEphemeralPrefix = "~anon.";

// ------------------------------------------------------------------------------ segments

// ".prep.<pid>.<n>.seg.tmp": the next segment prepared ahead by a shared writer (one per
// writer: each prepares its own; the one that rolls renames its own to kNextSegmentTmp).
std::string prepared_segment_tmp(int pid, unsigned n);
// Whether `name` is one; its writer's pid if so.
bool parse_prepared_segment_tmp(std::string_view name, int& pid);

// "%020u.seg" of the segment's first sequence number.
std::string segment_name(uint64_t base_seq);
// Whether `name` is exactly a segment name; its base sequence if so.
bool parse_segment_name(std::string_view name, uint64_t& base_seq);
// Base sequences of dir's segments, ascending.
Result<std::vector<uint64_t>> list_segments(std::string_view dir);

// ------------------------------------------------------------------------ reader files

enum class ReaderFile { cursor, efd, fifo };
std::string_view suffix(ReaderFile kind);
// "<reader><suffix>", e.g. reader_file("audit", ReaderFile::cursor) == "audit.cursor".
std::string reader_file(std::string_view reader, ReaderFile kind);
// Splits "<reader><suffix>" into its parts; false for a hidden file (".x"), an empty reader
// name, or any other suffix.
bool parse_reader_file(std::string_view file, std::string& reader, ReaderFile& kind);
// "~anon.<pid>.<n>", the n-th anonymous follower of process pid.
std::string ephemeral_name(int pid, uint64_t n);
bool is_ephemeral(std::string_view reader);

// ------------------------------------------------------------------- temporary files

// ".<file>.<pid>.tmp": where `file` is written before it is renamed into place.
std::string temp_name(std::string_view file);
bool is_temp_name(std::string_view name);

// ---------------------------------------------------------------------- directories

// "<dir>/readers".
std::string readers_path(std::string_view dir);
// Opens the queue directory; errc::not_found "queue DIR does not exist".
Result<fs::Fd> open_queue_dir(std::string_view dir);
// Opens readers/ of an opened queue directory; errc::not_found "DIR is not a chronicle
// queue (no readers/)".
Result<fs::Fd> open_readers_dir(int dirfd, std::string_view dir);
// Whether `name` is one of the entries that make a directory a queue (a segment,
// writer.lock or readers/): a directory with none of them is empty or someone else's.
bool is_queue_entry(std::string_view name);

// ---------------------------------------------------------------------- writer.lock

// What writer.lock says about its holder (one line of JSON, written by the writer after
// taking the lock). A field that is missing or unusable reads as 0 / empty: the lock, not
// the text, is the truth about liveness.
struct WriterLockText {
    int pid = 0;
    uint64_t start_time = 0;  // field 22 of /proc/<pid>/stat
    uint64_t started_ns = 0;
    std::string notifier;  // why the writer wakes nobody (empty: it wakes followers)
};
std::string writer_lock_to_json(const WriterLockText& w);
WriterLockText writer_lock_from_json(std::string_view text);
// Replaces the content of the (held) writer.lock.
Status write_writer_lock(int lockfd, std::string_view dir, const WriterLockText& w);

// Whether a writer holds the queue's lock now, and what its writer.lock says.
struct WriterInfo {
    bool alive = false;
    int pid = 0;
    uint64_t start_time = 0;
    std::string notifier;
};
WriterInfo query_writer(int dirfd, std::string_view dir);
// Whether writer.lock exists (a writer that has just started has it before any segment).
bool has_writer_lock(int dirfd);

// ------------------------------------------------------------------------ queue.json

// A queue's identity: 128 random bits in hex, made once with the queue (or by the first
// writer of a queue older than the file), never changed. A directory at the same path with
// another id, or none, is another queue.
struct QueueId {
    std::string id;  // 32 lowercase hex digits
    uint64_t created_ns = 0;
};
// errc::not_found when the queue has none yet; errc::corrupt for a malformed file.
Result<QueueId> read_queue_id(int dirfd, std::string_view dir);
// The writer's: reads the id, or makes one (the writer lock is held: nobody races).
Result<QueueId> ensure_queue_id(int dirfd, std::string_view dir);

}  // namespace chronicle::files
