// chronicle — writing to a queue.
//
// Any number of Writers — in any number of processes — may append to one queue at once
// (shared writers, the default). Each commit (an append(), a claim until commit(), a batch
// until commit_batch()) takes the queue's append lock, a robust process-shared mutex: it
// lands whole and contiguous, a writer's records keep its order, sequence numbers stay
// dense. Uncontended the lock costs no system call. A writer killed at any instant costs
// the others only the kernel's release of its lock; the next one recovers the queue (clears
// what the dead one left uncommitted, finishes a half-made roll) before it appends.
//
// WriterOptions::exclusive asks to be the only writer: open() then fails with errc::busy,
// naming the holder's pid, while any other writer has the queue (and shared writers are
// refused while it has it); WriterOptions::wait_ms waits instead.
//
// Thread safety: a Writer is used by one thread at a time. Records become visible to
// readers in other threads and processes at commit (see docs/DESIGN.md, "Commit").
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "chronicle/export.h"
#include "chronicle/retention.h"
#include "chronicle/status.h"

namespace chronicle {

// When a commit reaches stable storage (see WriterOptions::sync).
enum class Sync {
    none,       // when the kernel writes it back (a crashed process loses nothing anyway)
    on_commit,  // before the committing call returns
};

struct WriterOptions {
    // Create the queue directory (and its first segment) if it does not exist. An existing
    // directory that holds anything other than a queue is refused.
    bool create = true;
    // Size of every segment file, fixed when the queue is created (ignored afterwards:
    // an existing queue keeps its own). A multiple of 4096, 16 KiB .. 1 GiB.
    uint64_t segment_size = 64ull << 20;
    // Fault in pages ahead of the append offset from a background thread, so that appends
    // do not pay for page faults. Off for tiny tests only.
    bool pretouch = true;
    // Wake followers through their FIFO even where pidfd_getfd would work (the fallback
    // used across users or under Yama); for tests and diagnosis.
    bool wake_via_fifo = false;
    // Durability against power loss: msync a segment before leaving it and fsync the
    // directory after creating one, so that a sync() covers everything committed. Off by
    // default: a crashed process loses nothing anyway (the page cache keeps its stores).
    bool durable = false;
    // Sync::on_commit: every commit — append() or commit() outside a batch, commit_batch()
    // — is written to stable storage (msync MS_SYNC) before the call returns; implies
    // durable. A failed sync is returned by that call, although the records are committed
    // (visible to readers) by then.
    Sync sync = Sync::none;
    // Retention limits for a queue this open creates (written to retention.json). For an
    // existing queue they must equal the queue's own limits: errc::invalid_argument
    // otherwise (limits are changed with write_retention(), `chronicle-queue set`).
    // Whatever the queue's limits are, the writer applies them from a background thread
    // after each roll (retention.h).
    std::optional<RetentionLimits> retention;
    // Be the only writer of the queue while open: refused (errc::busy) while any other
    // writer has it, and other writers are refused while this one does. Exclusive writers
    // skip the append lock: the fastest single producer.
    bool exclusive = false;
    // How long open() waits when the queue is not to be had (an exclusive writer has it,
    // or, for an exclusive open, any writer): 0 = not at all (errc::busy), kWaitForever =
    // until it is free (blocking in the kernel), else that many milliseconds.
    static constexpr uint64_t kWaitForever = UINT64_MAX;
    uint64_t wait_ms = 0;
};

class CHRONICLE_API Writer {
  public:
    static Result<std::unique_ptr<Writer>> open(std::string_view dir,
                                                const WriterOptions& options = {});
    ~Writer();
    Writer(const Writer&) = delete;
    Writer& operator=(const Writer&) = delete;

    // Appends one record and commits it (or, inside a batch, adds it to the batch).
    // Returns its sequence number. errc::too_large past max_payload(); errc::no_space when
    // a new segment cannot be allocated — nothing committed is lost either way.
    Result<uint64_t> append(std::span<const std::byte> payload);
    Result<uint64_t> append(std::string_view payload) {
        return append(std::as_bytes(std::span(payload.data(), payload.size())));
    }

    // Bulk framing: appends every record of `block` that ends with `delimiter` (a line
    // without its newline, a NUL-ended record without its NUL) and stops after the last
    // delimiter; the bytes after it (a record not yet complete) are the caller's to keep.
    // The records are encoded in one loop, without a call per record: the fast path of
    // `chronicle-append`. Inside a batch they join it; outside, they are committed together
    // as one batch. On an error (errc::too_large for a record past max_payload(),
    // errc::no_space) the records before the failing one stay appended (committed when
    // outside a batch); `consumed` and `records` count them.
    // Records of up to 1 KiB after the first are stored in packs (docs/DESIGN.md §2.2):
    // about as many bytes as the input, with one timestamp per pack. A reader sees them as
    // the records they are, but their payloads are not 8-byte aligned (append() and claim()
    // records are).
    struct Appended {
        size_t consumed = 0;   // bytes of `block` framed into records, delimiters included
        uint64_t records = 0;  // records appended
        Status status;
    };
    Appended append_delimited(std::span<const std::byte> block, std::byte delimiter);

    // Zero-copy: reserves room for up to `max_len` bytes and returns it. Fill it, then call
    // commit(len) with the bytes used (len <= max_len), or abort(). One claim at a time; the
    // span is valid until commit() or abort().
    Result<std::span<std::byte>> claim(size_t max_len);
    Result<uint64_t> commit(size_t len);
    void abort() noexcept;

    // Batches: records appended between begin_batch() and commit_batch() become visible to
    // readers together, with one store, and readers are woken once. abort_batch() discards
    // them (and any segment the batch created). A batch may span segment rolls. Every
    // record of a batch carries the timestamp of its first record.
    // `expected_bytes` is a hint: a batch of at least 64 KiB is written through the page
    // cache (pwrite of whole pages) instead of stores into fresh mapped pages, which on
    // most file systems cost a page-zeroing fault per page. Readers see no difference.
    Status begin_batch(size_t expected_bytes = 0);
    Status commit_batch();
    void abort_batch() noexcept;

    // Sequence number the next record will get (= committed head outside a batch). With
    // other writers appending, as of this writer's last commit.
    [[nodiscard]] uint64_t next_seq() const noexcept;
    [[nodiscard]] uint64_t max_payload() const noexcept;
    [[nodiscard]] uint64_t segment_size() const noexcept;
    [[nodiscard]] const std::string& dir() const noexcept;

    // Writes the committed part of the current segment to stable storage (msync MS_SYNC);
    // with WriterOptions::durable, earlier segments were synced when they were left.
    Status sync();

  private:
    class Impl;
    explicit Writer(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace chronicle
