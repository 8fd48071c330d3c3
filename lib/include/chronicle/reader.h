// chronicle — reading a queue.
//
// A Reader walks committed records in sequence order. It never needs the writer to be
// alive, opens every queue file read-only (an anonymous reader that does not wait() writes
// nothing and works on a read-only copy of a queue) and holds at most one segment mapped
// at a time.
//
// Named readers keep a durable cursor in readers/<name>.cursor, exclusively: a second
// Reader with the same name, in any process, gets errc::busy while the first lives.
// Delivery is at-least-once: the stored position is the sequence of the next record to
// hand over, and it advances past a record only after that record was handed over — when
// next() is called again or the Reader is destroyed (auto_commit), or when commit() is
// called. A crash therefore replays at most the records handed over since the last
// position store (with auto_commit: the last record handed over).
//
// Thread safety: one thread at a time per Reader; any number of Readers concurrently.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "chronicle/export.h"
#include "chronicle/status.h"

namespace chronicle {

// Where a reader starts.
struct Position {
    enum class Kind { start, end, seq, last, time };
    Kind kind = Kind::start;
    uint64_t value = 0;  // the sequence, the count N of `last`, or the time (ns, realtime)

    static Position start() { return {Kind::start, 0}; }
    static Position end() { return {Kind::end, 0}; }
    static Position at_seq(uint64_t s) { return {Kind::seq, s}; }
    static Position last(uint64_t n) { return {Kind::last, n}; }
    static Position at_time(uint64_t realtime_ns) { return {Kind::time, realtime_ns}; }
};

struct ReaderOptions {
    // Empty: an anonymous reader. Otherwise the durable cursor readers/<name>.cursor.
    std::string name;
    // Where an anonymous reader starts, or where a named reader is created.
    Position start = Position::start();
    // Named readers: reposition an existing cursor to `start` instead of resuming.
    bool reposition = false;
    // Named readers: create the cursor if it does not exist (else errc::not_found).
    bool create = true;
    // Named readers: store the position on each next() (see the header comment). When
    // false, only commit() stores it.
    bool auto_commit = true;
    // A position that retention deleted (a named reader's stored cursor, a sequence asked
    // for, or the next segment of one being read): errc::expired when false; when true the
    // reader moves on to the first record still on disk and counts the records it lost
    // in expired_skipped().
    bool skip_expired = false;
};

struct Record {
    uint64_t seq = 0;
    uint64_t timestamp_ns = 0;           // writer's CLOCK_REALTIME, non-decreasing
    std::span<const std::byte> payload;  // valid until the next call on the Reader
    [[nodiscard]] std::string_view text() const noexcept {
        return {reinterpret_cast<const char*>(payload.data()), payload.size()};
    }
};

class CHRONICLE_API Reader {
  public:
    static Result<std::unique_ptr<Reader>> open(std::string_view dir,
                                                const ReaderOptions& options = {});
    ~Reader();
    Reader(const Reader&) = delete;
    Reader& operator=(const Reader&) = delete;

    // The next committed record, or std::nullopt at the end of the committed data.
    // errc::corrupt names the file and offset of damage in the middle of the log.
    Result<std::optional<Record>> next();

    // Repositions (the durable cursor moves at the next commit or auto-commit).
    Status seek(const Position& where);

    // Sequence of the next record next() will return.
    [[nodiscard]] uint64_t position() const noexcept;
    // Stores position() as the durable cursor (named readers; a no-op otherwise).
    Status commit();
    // Stores `next_seq` as the durable cursor: the caller has handed over every record
    // before it (e.g. the records whose output was flushed). At most position().
    Status commit(uint64_t next_seq);

    // Sequence one past the last committed record (lag = head() - position()).
    Result<uint64_t> head();
    // Sequence of the first record still on disk.
    Result<uint64_t> first();
    // Records passed over because retention deleted them before they were read (with
    // ReaderOptions::skip_expired; 0 otherwise), since open.
    [[nodiscard]] uint64_t expired_skipped() const noexcept;

    // --- Following (docs/DESIGN.md, "Wake-ups").
    // Blocks until next() has something to return (ok), the timeout passes
    // (errc::timeout; a negative timeout waits forever) or the writer that was alive when
    // the wait began exits (errc::closed). A parked reader uses no CPU: it sleeps on its
    // own eventfd, which the writer signals after a commit. The first call registers the
    // reader as a follower — readers/<name>.efd and .fifo (an anonymous reader gets an
    // ephemeral name "~anon.<pid>.<n>" and cursor) — removed when the Reader is destroyed.
    Status wait(std::chrono::nanoseconds timeout = std::chrono::nanoseconds(-1));
    // For event loops (epoll, asio, libuv): prepare_wait() returns true when the reader is
    // armed — poll fd() for readability, then call next() until it returns nullopt and
    // prepare_wait() again — or false when records are ready: read them first. fd() is -1
    // with the portable notifier (use wait() with a timeout there).
    Result<bool> prepare_wait();
    Result<int> fd();
    // Why this reader could not register as a follower (ok if it did, or never tried):
    // e.g. a read-only queue. It then waits by polling (100 µs doubling to 50 ms) and
    // fd() is -1.
    [[nodiscard]] const Status& follow_status() const noexcept;
    // Whether a writer holds the queue's lock right now (asks the kernel; takes no lock).
    bool writer_alive();

    [[nodiscard]] const std::string& name() const noexcept;
    [[nodiscard]] const std::string& dir() const noexcept;

  private:
    class Impl;
    explicit Reader(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// Reader names: 1..100 characters of [A-Za-z0-9._-], not starting with '.', no "..".
CHRONICLE_API Status validate_reader_name(std::string_view name);

}  // namespace chronicle
