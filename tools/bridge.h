// chronicle-bridge — what the engines share: the options, the endpoint URL, the queue side
// (a named reader out of a queue, with following and signals), reconnect back-off and the
// exit paths. One file per engine (bridge_redis.cc, ...) implements out() and in().
// docs/DESIGN.md §10 gives the delivery rules.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chronicle/reader.h"
#include "chronicle/status.h"
#include "chronicle/writer.h"
#include "cli.h"

namespace chronicle::bridge {

// A server endpoint: scheme://[[user]:password@]host:port/name.
struct Url {
    std::string scheme;  // "redis", "nats"
    std::string host;
    int port = 0;
    std::string user;
    std::string password;
    std::string name;  // the Redis stream key, the NATS subject
    // NATS: the other servers of a cluster ("host:port", the URL's "h1:p1,h2:p2" after the
    // first), tried in turn on every connect.
    std::vector<std::string> more;
    // host:port, for messages.
    [[nodiscard]] std::string where() const;
    // scheme://host:port/name (no password), for messages.
    [[nodiscard]] std::string display() const;
};

// Whether s looks like a URL (scheme://...) rather than a queue directory.
bool is_url(std::string_view s);
// Parses a URL; the error names what is wrong (empty when ok).
std::string parse_url(std::string_view s, Url& out);

struct Options {
    std::string queue;
    Url url;
    bool follow = false;
    std::string reader = "bridge";    // out of a queue: the named reader
    std::string group = "bridge";     // into a queue from Redis: the consumer group
    std::string consumer = "bridge";  // ... and the consumer in it
    std::string durable = "bridge";   // into a queue from NATS: the durable pull consumer
    std::string field = "data";       // the field that holds the record's bytes
    uint64_t batch = 1000;            // records per round trip / outstanding at most
    uint64_t max_len = 0;             // Redis out: XADD MAXLEN ~ N (0: no trimming)
    std::string create_stream;        // NATS out: create this stream for the subject
    uint64_t duplicate_window_ns = 120'000'000'000ull;  // ... with this duplicate window
    int replicas = 1;                                   // ... and this many replicas
    // How long to keep trying an unreachable server (since the last success); nullopt:
    // for ever.
    std::optional<uint64_t> retry_for_ns;
    uint64_t io_timeout_ns = 10'000'000'000ull;  // connect and per-reply timeout
    bool verbose = false;
    // io_timeout_ns in milliseconds, at least 1.
    [[nodiscard]] int64_t io_ms() const {
        return static_cast<int64_t>(std::max<uint64_t>(io_timeout_ns / 1'000'000ull, 1));
    }
};

// Counters a run reports with --verbose.
struct Counters {
    uint64_t sent = 0;        // records the server accepted
    uint64_t duplicates = 0;  // records the server already held (a replay refused)
    uint64_t reconnects = 0;
};

// What a step of an engine came to: done, a lost connection (or a server saying "not
// now": reconnect with back-off), or a refusal (stop with `code`).
struct Outcome {
    enum Kind { ok, lost, fatal };
    Kind kind = ok;
    std::string why;
    int code = cli::kError;
    static Outcome lost_because(std::string why) { return {lost, std::move(why), cli::kError}; }
    static Outcome fatal_because(std::string why, int code = cli::kError) {
        return {fatal, std::move(why), code};
    }
};

// Reconnect back-off: 100 ms doubling to 5 s, with jitter, for at most retry_for.
class Backoff {
  public:
    explicit Backoff(std::optional<uint64_t> retry_for_ns) : limit_ns_(retry_for_ns) {}
    // The server answered: start over.
    void reset() {
        first_failure_.reset();
        delay_ms_ = 100;
    }
    // A failure `why`: prints a note, sleeps (in poll_signals(): a signal cuts it short)
    // and returns true, or returns false when retry_for has run out.
    bool wait(const std::string& why);
    // The time spent failing, for the final message ("gave up after 30s").
    [[nodiscard]] std::string spent() const;

  private:
    std::optional<uint64_t> limit_ns_;
    std::optional<std::chrono::steady_clock::time_point> first_failure_;
    int delay_ms_ = 100;
};

// Out of a queue: the named reader, positioned by the engine, with following.
class QueueSource {
  public:
    // Opens the named reader (created at the first record when missing; never auto-commits).
    static Result<std::unique_ptr<QueueSource>> open(const Options& o);
    Reader& reader() { return *reader_; }
    // The position stored last (the next record the server may not have).
    [[nodiscard]] uint64_t committed() const noexcept { return committed_; }
    // Stores `next_seq` as the durable cursor (the server holds every record before it).
    Status commit(uint64_t next_seq);
    // Moves the reader to `seq` (what is sent next) and, if past what is committed,
    // commits it too.
    Status resume_at(uint64_t seq);
    // With --follow: waits for records, a signal or `max_ms`. Returns the library's error
    // only (timeouts and signals are ok: look at cli::terminated()).
    Status wait(int max_ms);
    // queue.json's id ("" for a queue made before identities).
    [[nodiscard]] const std::string& id() const noexcept { return id_; }

  private:
    std::unique_ptr<Reader> reader_;
    uint64_t committed_ = 0;
    std::string id_;
    bool warned_polling_ = false;
};

// A note on stderr ("chronicle-bridge: note: ...").
void note(const std::string& what);

// Whether SIGINT, SIGTERM or SIGHUP came: they are blocked outside cli::poll_signals(), so
// this lets a pending one in first. Called between round trips.
bool stop_requested();

// 128 + the termination signal, for a run that a signal stopped.
int signal_exit();

// A refusal: its one line on stderr; returns its exit code.
int fatal(const Outcome& oc);

// --retry-for ran out (or a signal came while backing off): the line, kTimeout.
int gave_up(const Outcome& oc, const Backoff& b);

// v in decimal (for protocol fields and messages), and back: nullopt unless `s` is all
// digits and fits.
std::string to_dec(uint64_t v);
std::optional<uint64_t> parse_dec(std::string_view s);

// An engine's run out of a queue (Out(options, QueueSource&).run()) or into one
// (In(options, Writer&).run()), the queue opened first; returns the exit code.
template <class Out>
int run_out(const Options& o) {
    auto src = QueueSource::open(o);
    if (!src) return cli::report(src.status());
    Out run(o, *src.value());
    return run.run();
}
template <class In>
int run_in(const Options& o) {
    auto w = Writer::open(o.queue);
    if (!w) return cli::report(w.status());
    In run(o, *w.value());
    return run.run();
}

}  // namespace chronicle::bridge
