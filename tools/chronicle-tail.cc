// chronicle-tail — print the records of a queue.
//
// Without --reader and --follow it opens every queue file read-only and writes nothing into
// the queue directory; --follow registers the follower in readers/ (or polls when it cannot). With
// --reader NAME it resumes from and advances that reader's durable cursor, and only past records
// whose output has been written (flushed) — at-least-once; into a pipe, only past records whose
// bytes the consumer has read out of it (PipeCommitter).
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "chronicle/admin.h"
#include "chronicle/reader.h"
#include "cli.h"
#include "exec.h"
#include "framing.h"
#include "render.h"

using namespace chronicle;

namespace {

struct Options {
    std::vector<std::string> queues;  // QUEUE...
    std::string queue;                // the queue being read
    bool quiet = false;               // -q: no headers
    bool verbose = false;             // -v: headers even for one queue
    cli::PositionFlags from;          // -n, --from-seq, --since, --from-time, --from-start
    std::string lines;                // -n N | +N | all (parse_lines)
    std::optional<uint64_t> nth;      // -n +N: from the N-th record on disk (1-based)
    std::optional<uint64_t> count;    // none = no limit
    std::string reader;
    bool show_seq = false;
    bool nul = false;
    std::string format = "lines";
    bool follow = false;
    bool until_writer_exits = false;
    std::string timeout;  // idle timeout while following
    bool json = false;
    std::string tmpl;
    std::optional<uint64_t> until_seq;
    std::string until_time;
    bool skip_expired = false;
    std::string exec;         // --exec CMD: batches to CMD, committed on exit 0
    uint64_t batch = 1000;    // --batch N records at most
    std::string batch_bytes;  // --batch-bytes SIZE
    uint64_t batch_bytes_n = 1 << 20;
    std::string linger;      // --linger DUR: the longest a record waits for more
    uint64_t retries = 8;    // --retries N after the first try
    bool utc = false;        // --utc: times in UTC (the default)
    bool localtime = false;  // --localtime: times in local time
    bool reverse = false;    // -r: newest first
    bool retry = false;      // --retry / -F: wait for the queue, reopen it when replaced
};

// A read error on stderr; an expired position also says how to go on.
int report_read(const Options& o, const Status& st) {
    if (st.code() != errc::expired) return cli::report(st);
    std::string how = "; --skip-expired continues at the first record on disk";
    if (!o.reader.empty()) {
        how += ", or move the reader: chronicle-readers " + o.queue + " reset " + o.reader +
               " --to-start";
    }
    return cli::report(Status(st.code(), st.message() + how, st.sys_errno()));
}

// -n as tail(1) takes it: "N" the last N records, "+N" from the N-th record (1-based; +0
// is +1, as in GNU tail), "all" everything. Sets the option's fields; an error message
// (for CLI11, naming the option) otherwise.
std::string parse_lines(const std::string& v, Options& o) {
    if (v == "all") {
        o.from.start = true;
        return {};
    }
    uint64_t n = 0;
    const bool from = !v.empty() && v[0] == '+';
    std::string err = cli::uint_problem(from ? v.substr(1) : v, n);
    if (!err.empty() || (from && v.size() > 1 && (v[1] == '+' || v[1] == '-'))) {
        return "'" + v + "' is not N, +N or all (the last N records, from the N-th, everything)";
    }
    if (from) {
        o.nth = std::max<uint64_t>(n, 1);
    } else {
        o.from.last = n;
    }
    return {};
}

// Says on stderr how many records retention deleted before this reader got to them
// (--skip-expired), once per jump.
void note_skipped(const Reader& r, uint64_t& reported) {
    const uint64_t n = r.expired_skipped();
    if (n == reported) return;
    cli::warn("warning: " + std::to_string(n - reported) +
              " records were deleted by retention before they were read" +
              (r.name().empty() ? std::string() : " (reader '" + r.name() + "')") +
              "; continuing at the first record on disk");
    reported = n;
}

// Moves a named reader's cursor past records once their bytes are out of our hands. Into a
// regular file or a terminal that is when they are written. Into a pipe it is when the
// consumer has read them: the kernel tells how many bytes are still unread in the pipe
// (FIONREAD), so bytes written minus bytes unread is how far the consumer got, and the
// cursor moves past the records that end there. What the consumer read but had not finished
// when it stopped is beyond anyone's knowing here (docs/recipes.md, "Delivery").
class PipeCommitter {
  public:
    PipeCommitter(Reader& r, const cli::Output& out, bool named) : r_(r), out_(out) {
        struct stat st {};
        pipe_ = named && ::fstat(1, &st) == 0 && S_ISFIFO(st.st_mode) && unread() >= 0;
    }
    [[nodiscard]] bool into_pipe() const noexcept { return pipe_; }
    // Into a pipe: a record was printed; the stream up to its end (written + buffered
    // bytes) holds every record before `next_seq`.
    void printed(uint64_t next_seq) {
        points_.emplace_back(out_.written() + out_.pending(), next_seq);
    }
    // The output is flushed: the records before `next_seq` are written.
    void flushed(uint64_t next_seq) {
        if (!pipe_) {
            (void)r_.commit(next_seq);
            return;
        }
        settle();
    }
    // Commits what the consumer has read by now.
    void settle() {
        if (points_.empty()) return;
        const int64_t left = unread();
        if (left < 0) return;  // cannot tell: commit nothing more
        const uint64_t consumed =
            out_.written() - std::min<uint64_t>(out_.written(), static_cast<uint64_t>(left));
        std::optional<uint64_t> upto;
        while (!points_.empty() && points_.front().first <= consumed) {
            upto = points_.front().second;
            points_.pop_front();
        }
        if (upto) (void)r_.commit(*upto);
    }
    // Records written but not yet read out of the pipe.
    [[nodiscard]] bool waiting() const noexcept { return !points_.empty(); }
    // At the end of a run: waits until the consumer has read everything or is gone (or a
    // signal came), committing as it goes.
    void drain() {
        while (waiting() && cli::terminated() == 0) {
            pollfd p{1, 0, 0};
            const int n = cli::poll_signals(&p, 1, 20);
            settle();
            if (n > 0 && (p.revents & (POLLERR | POLLHUP)) != 0) break;  // consumer gone
        }
        settle();
    }

  private:
    static int64_t unread() { return cli::unread_bytes(1); }

    Reader& r_;
    const cli::Output& out_;
    bool pipe_ = false;
    std::deque<std::pair<uint64_t, uint64_t>> points_;  // (bytes written, next seq) at a flush
};

// Longest polling wait between looks at the output and at signals, when following
// without a wake-up descriptor.
constexpr int kPollSliceMs = 100;
// How often a follower looks whether the consumer read what waits in the pipe.
constexpr int kSettleMs = 50;

// Whether the reader of our standard output has gone (a closed pipe reports POLLERR).
bool output_closed(short revents) {
    return (revents & (POLLERR | POLLHUP | POLLNVAL)) != 0;
}

class Printer {
  public:
    Printer(cli::Framing f, bool show_seq, bool json, const std::string& tmpl)
        : framing_(f), show_seq_(show_seq), json_(json), out_(1) {
        if (!tmpl.empty()) tmpl_.emplace(tmpl);
    }

    // Bytes print() will produce for a payload of n bytes (upper bound).
    [[nodiscard]] size_t size_of(size_t n) const { return (json_ ? n * 2 : n) + 128; }

    bool print(const Record& r) { return print(out_, r); }

    // Renders a record into `out` (cli::Output, or StringSink for a batch of --exec).
    template <class Sink>
    bool print(Sink& out, const Record& r) {
        const std::string_view payload = r.text();
        if (json_ || tmpl_) {
            scratch_.clear();
            if (json_) {
                cli::append_json_record(scratch_, r.seq, r.timestamp_ns, payload);
            } else {
                tmpl_->render(scratch_, r.seq, r.timestamp_ns, payload);
            }
            return out.put(scratch_);
        }
        if (show_seq_) {
            char num[24];
            const int k =
                std::snprintf(num, sizeof num, "%llu\t", static_cast<unsigned long long>(r.seq));
            out.put(num, static_cast<size_t>(k));
        }
        switch (framing_) {
            case cli::Framing::lines:
                out.put(payload);
                return out.put_char('\n');
            case cli::Framing::nul:
                out.put(payload);
                return out.put_char('\0');
            case cli::Framing::len32: {
                char len[4];
                cli::store_be32(len, static_cast<uint32_t>(payload.size()));
                out.put(len, 4);
                return out.put(payload);
            }
            case cli::Framing::raw:
                return out.put(payload);
        }
        return false;
    }

    cli::Output& out() { return out_; }

  private:
    cli::Framing framing_;
    bool show_seq_;
    bool json_;
    std::optional<cli::Template> tmpl_;
    std::string scratch_;
    cli::Output out_;
};

// --timeout while following: the milliseconds left before giving up (-1: no limit), or
// nullopt when the time is up.
std::optional<int> idle_left_ms(const std::optional<uint64_t>& idle_ns,
                                std::chrono::steady_clock::time_point last_record) {
    if (!idle_ns) return -1;
    const auto idle = std::chrono::steady_clock::now() - last_record;
    const auto left = std::chrono::nanoseconds(*idle_ns) - idle;
    if (left <= std::chrono::nanoseconds(0)) return std::nullopt;
    return static_cast<int>(
        std::min<int64_t>(std::chrono::ceil<std::chrono::milliseconds>(left).count(), INT32_MAX));
}

// The smaller of two timeouts in milliseconds, -1 meaning none.
int min_timeout(int a, int b) {
    if (a < 0) return b;
    if (b < 0) return a;
    return std::min(a, b);
}

// print_loop()'s and exec_batches()'s answer when the queue went away under --retry.
constexpr int kReopen = -1;
// How often --retry looks for a queue that does not exist.
constexpr int kRetryLookMs = 250;

// A read error; under --retry, a removed or replaced queue is kReopen instead (said on
// stderr).
int fail_read(const Options& o, const Status& st) {
    if (o.retry && st.code() == errc::not_found) {
        cli::warn("warning: " + st.message() + "; following it again when it is back (--retry)");
        return kReopen;
    }
    return report_read(o, st);
}

// --retry: waits until the queue exists (says so on stderr once when it does not, and when
// it appears). kOk, or 128 + the signal that ended the wait.
int wait_for_queue(const Options& o, bool reopened) {
    bool said = reopened;
    for (;;) {
        auto probe = Reader::open(o.queue);
        if (probe || probe.status().code() != errc::not_found) {
            if (said) cli::warn("note: queue " + o.queue + " is there; following it");
            return cli::kOk;  // other errors are reported by the real open
        }
        if (!said) {
            cli::warn("warning: " + probe.status().message() +
                      "; waiting for it to appear (--retry)");
            said = true;
        }
        (void)cli::poll_signals(nullptr, 0, kRetryLookMs);
        if (cli::terminated() != 0) return 128 + cli::terminated();
    }
}

// Waits while following until the reader may have records, `timeout_ms` passes (-1: no
// limit), a termination signal comes (cli::terminated()) or — with `watch_output` — the
// reader of our standard output goes (`output_gone`). An error when waiting itself fails.
Status wait_for_records(Reader& reader, int timeout_ms, bool watch_output, bool& warned_polling,
                        bool& output_gone) {
    auto armed = reader.prepare_wait();
    if (!armed) return armed.status();
    if (!armed.value()) return {};  // records arrived meanwhile
    auto fd = reader.fd();
    if (!fd) return fd.status();
    if (fd.value() < 0 && !reader.follow_status().ok() && !warned_polling) {
        cli::warn("note: following by polling: " + reader.follow_status().message());
        warned_polling = true;
    }
    // Watching fd 1 for POLLERR (a closed pipe) needs no events; -1 leaves it out.
    pollfd fds[2] = {{watch_output ? 1 : -1, 0, 0}, {fd.value(), POLLIN, 0}};
    int n = 0;
    if (fd.value() < 0) {
        // Nobody can wake this reader (the portable build, or no registration): the
        // library's polling wait, in slices, so that a closed output or a signal still
        // ends us within kPollSliceMs.
        const int slice = min_timeout(timeout_ms, kPollSliceMs);
        Status st = reader.wait(std::chrono::milliseconds(slice));
        if (!st && st.code() != errc::timeout && st.code() != errc::closed) return st;
        n = cli::poll_signals(fds, 1, 0);
    } else {
        n = cli::poll_signals(fds, 2, timeout_ms);
    }
    output_gone = n > 0 && watch_output && output_closed(fds[0].revents);
    return {};
}

// Where reading stops: --until-seq, --until-time, -c.
struct Limits {
    uint64_t until_seq = UINT64_MAX;
    uint64_t until_ts = UINT64_MAX;
    std::optional<uint64_t> count;
    std::optional<uint64_t> idle_ns;  // --timeout while following
};

// The limits the options set (checked when parsed), and the output settings every way of
// printing shares: --show-seq's framing, --localtime.
Limits limits_of(const Options& o) {
    if (o.show_seq && (o.format == "len32" || o.format == "raw")) {
        throw CLI::ValidationError("--show-seq",
                                   "only with --format lines or nul (it would break the framing)");
    }
    cli::use_local_time(o.localtime);
    Limits lim;
    lim.until_ts = o.until_time.empty() ? UINT64_MAX : cli::parse_time_ns(o.until_time, "--until");
    lim.until_seq = o.until_seq.value_or(UINT64_MAX);
    lim.count = o.count;
    // --timeout: none = wait forever; 0 = give up as soon as everything is printed.
    if (!o.timeout.empty()) lim.idle_ns = cli::parse_duration_ns(o.timeout, "--timeout");
    return lim;
}

// A batch of --exec being gathered: the records rendered as they will reach the command.
struct StringSink {
    std::string& s;
    bool put(const void* p, size_t n) {
        s.append(static_cast<const char*>(p), n);
        return true;
    }
    bool put(std::string_view v) { return put(v.data(), v.size()); }
    bool put_char(char c) {
        s.push_back(c);
        return true;
    }
};

struct Batch {
    std::string bytes;
    uint64_t first = 0;  // sequence of its first record
    uint64_t last = 0;   // and of its last
    uint64_t records = 0;
    std::chrono::steady_clock::time_point started;  // when its first record was read

    void add(uint64_t seq, std::string_view rendered) {
        if (records == 0) {
            first = seq;
            started = std::chrono::steady_clock::now();
        }
        last = seq;
        ++records;
        bytes.append(rendered);
    }
    void clear() {
        bytes.clear();
        records = 0;
    }
};

std::string seq_range(const Batch& b) {
    return b.first == b.last ? "record " + std::to_string(b.first)
                             : "records " + std::to_string(b.first) + ".." + std::to_string(b.last);
}

// The delay before retry `n` (1-based) of a failed --exec: 100 ms doubling, at most 30 s.
std::chrono::milliseconds retry_delay(uint64_t n) {
    const uint64_t ms = 100ULL << std::min<uint64_t>(n - 1, 9);
    return std::chrono::milliseconds(std::min<uint64_t>(ms, 30000));
}

std::string show_ms(std::chrono::milliseconds d) {
    const auto ms = d.count();
    if (ms < 1000) return std::to_string(ms) + "ms";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(ms) / 1000.0);
    return buf;
}

// Runs --exec on a batch until it succeeds, then moves a named reader past it. Returns
// kOk, or the exit code after a bounded number of failures (the cursor stays before the
// batch) or a termination signal (the batch is not committed).
int deliver(const Options& o, Reader& reader, const std::string& queue_id, const Batch& b) {
    const std::vector<std::pair<std::string, std::string>> env = {
        {"CHRONICLE_FIRST_SEQ", std::to_string(b.first)},
        {"CHRONICLE_LAST_SEQ", std::to_string(b.last)},
        {"CHRONICLE_COUNT", std::to_string(b.records)},
        {"CHRONICLE_QUEUE_ID", queue_id},
        {"CHRONICLE_QUEUE", o.queue},
        {"CHRONICLE_READER", o.reader},
    };
    const uint64_t tries = o.retries + 1;
    for (uint64_t attempt = 1;; ++attempt) {
        auto with_attempt = env;
        with_attempt.emplace_back("CHRONICLE_ATTEMPT", std::to_string(attempt));
        const cli::CommandResult res = cli::run_command(o.exec, b.bytes, with_attempt);
        if (res.kind == cli::CommandResult::Kind::interrupted) return 128 + cli::terminated();
        if (res.success()) break;
        const std::string where =
            !o.reader.empty()
                ? "; reader '" + o.reader + "' stays at sequence " + std::to_string(b.first)
                : std::string();
        if (attempt >= tries) {
            cli::warn("--exec failed " + std::to_string(attempt) +
                      (attempt == 1 ? " time" : " times") + " on " + seq_range(b) +
                      " (last: " + res.describe() + ")" + where);
            return cli::kError;
        }
        const auto delay = retry_delay(attempt);
        cli::warn("warning: --exec: " + res.describe() + " on " + seq_range(b) + " (try " +
                  std::to_string(attempt) + " of " + std::to_string(tries) + "); again in " +
                  show_ms(delay));
        (void)cli::poll_signals(nullptr, 0, static_cast<int>(delay.count()));
        if (cli::terminated() != 0) return 128 + cli::terminated();
    }
    if (!o.reader.empty()) {
        Status st = reader.commit(b.last + 1);
        if (!st) return cli::report(st);
    }
    return cli::kOk;
}

// chronicle-tail --exec CMD: records in batches to CMD, each committed when CMD exits 0.
int exec_batches(const Options& o, Reader& reader, Printer& pr, const Limits& lim) {
    std::string queue_id;
    if (auto st = inspect_queue(o.queue)) queue_id = st.value().id;
    const uint64_t max_records = o.batch;
    const uint64_t max_bytes = o.batch_bytes_n;
    const int64_t linger_ms =
        o.linger.empty()
            ? 0
            : static_cast<int64_t>(cli::parse_duration_ns(o.linger, "--linger") / 1000000);
    uint64_t skipped_reported = 0;
    Batch batch;
    std::string one;  // a record that did not fit in the batch: the next one's first
    std::optional<uint64_t> carried;
    uint64_t taken = 0;        // records read into batches (for -c)
    bool reached_end = false;  // --until-seq / --until-time met
    bool writer_seen_gone = false;
    bool warned_polling = false;
    auto last_record = std::chrono::steady_clock::now();
    auto count_left = [&] { return !lim.count || taken < *lim.count; };
    for (;;) {
        // Gather: up to --batch records and --batch-bytes bytes (one record at least).
        Status err;
        bool full = false;
        if (carried) {
            batch.add(*carried, one);
            carried.reset();
        }
        while (!full && !reached_end && count_left()) {
            auto r = reader.next();
            if (!r) {
                err = r.status();
                break;
            }
            if (!r.value()) break;  // end of the committed data
            const Record& rec = *r.value();
            if (rec.seq >= lim.until_seq || rec.timestamp_ns >= lim.until_ts) {
                reached_end = true;
                break;
            }
            ++taken;
            last_record = std::chrono::steady_clock::now();
            one.clear();
            StringSink sink{one};
            pr.print(sink, rec);
            if (batch.records > 0 && batch.bytes.size() + one.size() > max_bytes) {
                carried = rec.seq;
                full = true;
                break;
            }
            batch.add(rec.seq, one);
            full = batch.records >= max_records || batch.bytes.size() >= max_bytes;
        }
        note_skipped(reader, skipped_reported);
        const bool finished = !err || reached_end || (!count_left() && !carried) || !o.follow ||
                              (o.until_writer_exits && writer_seen_gone);
        // Run the batch when it is full, when nothing more is coming, or when its first
        // record has waited --linger.
        if (batch.records > 0) {
            const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::steady_clock::now() - batch.started)
                                    .count();
            if (full || finished || waited >= linger_ms) {
                const int rc = deliver(o, reader, queue_id, batch);
                batch.clear();
                if (rc != cli::kOk) return rc;
                continue;  // more may have come meanwhile
            }
        }
        if (!err) return fail_read(o, err);
        if (finished) return cli::kOk;
        if (o.until_writer_exits && !reader.writer_alive()) {
            writer_seen_gone = true;  // one more look: what it committed before it exited
            continue;
        }
        // Following: wait for records, at most until the batch's linger runs out.
        std::optional<int> timeout_ms = idle_left_ms(lim.idle_ns, last_record);
        if (!timeout_ms) {
            // What was gathered goes out first.
            const int rc = batch.records > 0 ? deliver(o, reader, queue_id, batch) : cli::kOk;
            if (rc != cli::kOk) return rc;
            return cli::report(Status(errc::timeout, "no record for " + o.timeout));
        }
        if (batch.records > 0) {
            const auto left = std::chrono::milliseconds(linger_ms) -
                              std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::steady_clock::now() - batch.started);
            timeout_ms =
                min_timeout(*timeout_ms, static_cast<int>(std::max<int64_t>(left.count(), 0)));
        }
        bool gone = false;
        Status st = wait_for_records(reader, *timeout_ms, false, warned_polling, gone);
        if (!st) return fail_read(o, st);
        // A signal while gathering: the batch never ran, nothing of it is committed.
        if (cli::terminated() != 0) return 128 + cli::terminated();
    }
}

// Records -f shows before following when no start is given, as tail -f and journalctl -f.
constexpr uint64_t kFollowLast = 10;

// How many bytes of rendered records -r holds at a time (plus one record).
constexpr size_t kReverseBytes = 8 << 20;
// How many records -r reads forward at a time, at first.
constexpr uint64_t kReverseWindow = 1024;

// -r: the records of the range newest first. The Reader only walks forward, so the range
// is read back to front in windows: seek to `hi - window`, read up to `hi`, print that
// window reversed, move `hi` down. A window whose records outgrow kReverseBytes keeps only
// its last records (the rest is read again by the next window), so memory stays bounded
// whatever the records' sizes.
int print_reverse(const Options& o, Reader& reader, Printer& pr, const Limits& lim) {
    cli::Output& out = pr.out();
    // The range: [lo, hi).
    auto first = reader.next();
    if (!first) return report_read(o, first.status());
    if (!first.value()) return cli::kOk;
    const uint64_t lo = first.value()->seq;
    auto head = reader.head();
    if (!head) return report_read(o, head.status());
    uint64_t hi = std::min(head.value(), lim.until_seq);
    if (lim.until_ts != UINT64_MAX) {
        if (Status st = reader.seek(Position::at_time(lim.until_ts)); !st) {
            return report_read(o, st);
        }
        auto r = reader.next();
        if (!r) return report_read(o, r.status());
        if (r.value()) hi = std::min(hi, r.value()->seq);
    }
    uint64_t printed = 0;
    uint64_t window = kReverseWindow;
    std::deque<std::pair<uint64_t, std::string>> kept;  // (seq, rendered), oldest first
    size_t kept_bytes = 0;
    while (hi > lo && (!lim.count || printed < *lim.count)) {
        const uint64_t from = hi - std::min(window, hi - lo);
        if (Status st = reader.seek(Position::at_seq(from)); !st) return report_read(o, st);
        kept.clear();
        kept_bytes = 0;
        for (;;) {
            auto r = reader.next();
            if (!r) return report_read(o, r.status());
            if (!r.value() || r.value()->seq >= hi) break;
            std::string one;
            StringSink sink{one};
            pr.print(sink, *r.value());
            kept_bytes += one.size();
            kept.emplace_back(r.value()->seq, std::move(one));
            while (kept_bytes > kReverseBytes && kept.size() > 1) {
                kept_bytes -= kept.front().second.size();
                kept.pop_front();
            }
        }
        if (kept.empty()) break;  // nothing between from and hi (cannot happen: dense)
        for (auto it = kept.rbegin(); it != kept.rend(); ++it) {
            if (lim.count && printed >= *lim.count) break;
            if (!out.put(it->second)) break;
            ++printed;
        }
        if (out.error() != 0) break;
        hi = kept.front().first;
        if (kept.front().first == from) window *= 2;  // the whole window fitted: read more
    }
    if (!out.flush() || out.error() != 0) {
        if (out.error() == EPIPE) return cli::kOk;
        return cli::report(Status::from_errno(out.error(), "cannot write", "standard output"));
    }
    return cli::kOk;
}

// Prints records (following with -f) until the end, a limit, a signal or an error.
// kReopen when the queue was removed or replaced and --retry asks to go on.
int print_loop(const Options& o, Reader& reader, Printer& pr, const Limits& lim,
               uint64_t& skipped_reported) {
    bool reached_end = false;  // --until-seq / --until-time met
    cli::Output& out = pr.out();
    PipeCommitter committer(reader, out, !o.reader.empty());
    uint64_t printed = 0;
    auto output_failed = [&]() -> int {
        // What the consumer did read out of the pipe is committed; nothing else.
        committer.settle();
        // A signal while the output was blocked (a full pipe): nothing more is committed.
        if (cli::terminated() != 0) return 128 + cli::terminated();
        if (out.error() == EPIPE) return cli::kOk;  // the reader of our output is gone
        return cli::report(Status::from_errno(out.error(), "cannot write", "standard output"));
    };
    // Prints what is committed now. Returns false when output failed.
    auto drain = [&](Status& err) -> bool {
        while (!lim.count || printed < *lim.count) {
            auto r = reader.next();
            if (!r) {
                err = r.status();
                return true;
            }
            if (!r.value()) break;  // end of the committed data
            const Record& rec = *r.value();
            if (rec.seq >= lim.until_seq || rec.timestamp_ns >= lim.until_ts) {
                reached_end = true;
                break;
            }
            // Flush before a record that would not fit, then store the position of the
            // records whose bytes are now written.
            if (out.pending() + pr.size_of(rec.payload.size()) > out.capacity() &&
                out.pending() > 0) {
                if (!out.flush()) return false;
                committer.flushed(rec.seq);
                // A long backlog never waits: let SIGTERM in at each flush.
                if (o.follow && cli::termination_pending()) return false;
            }
            if (!pr.print(rec)) return false;
            if (committer.into_pipe()) committer.printed(rec.seq + 1);
            ++printed;
        }
        if (!out.flush()) return false;
        committer.flushed(reader.position());
        return true;
    };
    // Every way out once the output is intact: commit what the consumer read.
    auto done = [&](int code) -> int {
        committer.drain();
        return code;
    };

    auto last_record = std::chrono::steady_clock::now();
    bool writer_seen_gone = false;
    bool warned_polling = false;
    for (;;) {
        const uint64_t before = printed;
        Status err;
        const bool drained = drain(err);
        note_skipped(reader, skipped_reported);
        if (!drained) return output_failed();
        if (!err) return done(fail_read(o, err));
        if (printed != before) last_record = std::chrono::steady_clock::now();
        if (!o.follow || reached_end || (lim.count && printed >= *lim.count)) {
            return done(cli::kOk);
        }
        if (o.until_writer_exits) {
            // Everything the writer committed before it exited was drained above.
            if (writer_seen_gone) return done(cli::kOk);
            if (!reader.writer_alive()) {
                writer_seen_gone = true;
                continue;  // one more drain
            }
        }
        std::optional<int> timeout_ms = idle_left_ms(lim.idle_ns, last_record);
        if (!timeout_ms) {
            return done(cli::report(Status(errc::timeout, "no record for " + o.timeout)));
        }
        // Records still unread in the pipe: look again soon, to commit them once read.
        if (committer.waiting()) timeout_ms = min_timeout(*timeout_ms, kSettleMs);
        bool gone = false;
        Status st = wait_for_records(reader, *timeout_ms, true, warned_polling, gone);
        if (!st) return fail_read(o, st);
        committer.settle();
        if (gone) return cli::kOk;
        if (cli::terminated() != 0) return 128 + cli::terminated();  // after cleanup
    }
}

// Several queues (chronicle-tail [-f] a b), as tail(1) prints several files: each
// queue's records under a "==> QUEUE <==" header, a header again whenever the output
// moves to another queue, -q for none. Anonymous readers only (each queue would need its
// own cursor and its own idea of "delivered").
int tail_many(Options o) {
    const bool positioned = o.nth || o.from.seq || o.from.last || !o.from.since.empty() ||
                            !o.from.time.empty() || o.from.start;
    if (o.follow && !positioned) o.from.last = kFollowLast;
    const Limits lim = limits_of(o);
    if (o.count && *o.count == 0) return cli::kOk;
    if (!cli::writable(1)) {
        return cli::report(Status::from_errno(EBADF, "cannot write", "standard output"));
    }
    if (o.follow) cli::install_termination_handlers();
    std::vector<std::unique_ptr<Reader>> readers;
    for (const std::string& q : o.queues) {
        o.queue = q;
        ReaderOptions ro;
        ro.auto_commit = false;
        ro.skip_expired = o.skip_expired;
        cli::PositionFlags from = o.from;
        if (o.nth) {
            auto probe = Reader::open(q);
            if (!probe) return report_read(o, probe.status());
            auto first = probe.value()->first();
            if (!first) return report_read(o, first.status());
            from.seq = first.value() + *o.nth - 1;
        }
        if (auto start = cli::position_from(from, "--from-time")) ro.start = *start;
        auto rd = Reader::open(q, ro);
        if (!rd) return report_read(o, rd.status());
        readers.push_back(std::move(rd.value()));
    }
    const cli::Framing f = o.nul ? cli::Framing::nul : cli::parse_framing(o.format).value();
    Printer pr(f, o.show_seq, o.json, o.tmpl);
    cli::Output& out = pr.out();
    const bool headers = !o.quiet;
    size_t current = SIZE_MAX;  // the queue the last header named
    auto header = [&](size_t i) {
        if (!headers || i == current) return;
        if (current != SIZE_MAX) out.put_char('\n');
        out.put("==> " + cli::printable(o.queues[i]) + " <==\n");
        current = i;
    };
    auto output_failed = [&]() -> int {
        if (cli::terminated() != 0) return 128 + cli::terminated();
        if (out.error() == EPIPE) return cli::kOk;
        return cli::report(Status::from_errno(out.error(), "cannot write", "standard output"));
    };
    uint64_t printed = 0;
    std::vector<bool> ended(readers.size(), false);  // --until-* met in that queue
    auto last_record = std::chrono::steady_clock::now();
    bool first_pass = true;
    bool warned_polling = false;
    bool writers_gone = false;  // --until-writer-exits: no queue has a writer now
    for (;;) {
        const uint64_t before = printed;
        for (size_t i = 0; i < readers.size(); ++i) {
            o.queue = o.queues[i];
            if (first_pass) header(i);  // every queue's header once, as tail
            while (!ended[i] && (!lim.count || printed < *lim.count)) {
                auto r = readers[i]->next();
                if (!r) return report_read(o, r.status());
                if (!r.value()) break;
                const Record& rec = *r.value();
                if (rec.seq >= lim.until_seq || rec.timestamp_ns >= lim.until_ts) {
                    ended[i] = true;
                    break;
                }
                header(i);
                if (!pr.print(rec)) return output_failed();
                ++printed;
            }
        }
        first_pass = false;
        if (!out.flush()) return output_failed();
        if (printed != before) last_record = std::chrono::steady_clock::now();
        const bool all_ended = std::all_of(ended.begin(), ended.end(), [](bool e) { return e; });
        if (!o.follow || all_ended || (lim.count && printed >= *lim.count)) return cli::kOk;
        if (o.until_writer_exits) {
            // Once no queue has a writer, one more pass prints what they committed last.
            if (writers_gone) return cli::kOk;
            writers_gone = std::none_of(readers.begin(), readers.end(),
                                        [](const auto& r) { return r->writer_alive(); });
            if (writers_gone) continue;
        }
        std::optional<int> timeout_ms = idle_left_ms(lim.idle_ns, last_record);
        if (!timeout_ms) return cli::report(Status(errc::timeout, "no record for " + o.timeout));
        // Arm every reader; poll their descriptors together (or, where one has none, in
        // slices, as the single-queue loop does).
        std::vector<pollfd> fds{{1, 0, 0}};
        bool ready = false;
        bool slices = false;
        for (size_t i = 0; i < readers.size() && !ready; ++i) {
            o.queue = o.queues[i];
            auto armed = readers[i]->prepare_wait();
            if (!armed) return fail_read(o, armed.status());
            if (!armed.value()) {
                ready = true;
                break;
            }
            auto fd = readers[i]->fd();
            if (!fd) return cli::report(fd.status());
            if (fd.value() < 0) {
                slices = true;
                if (!readers[i]->follow_status().ok() && !warned_polling) {
                    cli::warn("note: following " + o.queues[i] +
                              " by polling: " + readers[i]->follow_status().message());
                    warned_polling = true;
                }
            } else {
                fds.push_back({fd.value(), POLLIN, 0});
            }
        }
        if (ready) continue;
        const int wait_ms = slices ? min_timeout(*timeout_ms, 50) : *timeout_ms;
        const int n = cli::poll_signals(fds.data(), fds.size(), wait_ms);
        if (n > 0 && output_closed(fds[0].revents)) return cli::kOk;
        if (cli::terminated() != 0) return 128 + cli::terminated();
    }
}

int tail(Options o) {
    const bool positioned = o.nth || o.from.seq || o.from.last || !o.from.since.empty() ||
                            !o.from.time.empty() || o.from.start;
    // -f alone: the last 10, as tail -f. A named reader resumes from its cursor instead (or
    // is created at the first record).
    if (o.follow && !positioned && o.reader.empty()) o.from.last = kFollowLast;
    if (o.retry) cli::install_termination_handlers();
    if (o.nth) {
        if (o.retry) {
            if (const int rc = wait_for_queue(o, false); rc != cli::kOk) return rc;
        }
        // The N-th record on disk now: first + N - 1 (retention may have deleted the start).
        auto probe = Reader::open(o.queue);
        if (!probe) return report_read(o, probe.status());
        auto first = probe.value()->first();
        if (!first) return report_read(o, first.status());
        o.from.seq = first.value() + *o.nth - 1;
    }
    ReaderOptions ro;
    ro.name = o.reader;
    ro.auto_commit = false;  // the position is stored after output is flushed
    ro.skip_expired = o.skip_expired;
    if (auto start = cli::position_from(o.from, "--from-time")) {
        ro.start = *start;
        ro.reposition = true;
    }
    const Limits lim = limits_of(o);
    if (!o.batch_bytes.empty()) o.batch_bytes_n = cli::parse_size(o.batch_bytes, "--batch-bytes");
    if (o.count && *o.count == 0) return cli::kOk;  // like head -n 0
    const bool exec = !o.exec.empty();
    // A closed standard output (made valid, read-only, by cli::guard): say so before
    // opening anything, rather than creating a reader that can never print.
    if (!exec && !cli::writable(1)) {
        return cli::report(Status::from_errno(EBADF, "cannot write", "standard output"));
    }
    if (o.follow || exec || o.retry) cli::install_termination_handlers();
    // --format passed framing_check() when the command line was parsed.
    const cli::Framing f = o.nul ? cli::Framing::nul : cli::parse_framing(o.format).value();
    Printer pr(f, o.show_seq, o.json, o.tmpl);
    for (bool reopened = false;; reopened = true) {
        if (o.retry) {
            if (const int rc = wait_for_queue(o, reopened); rc != cli::kOk) return rc;
        }
        auto rd = Reader::open(o.queue, ro);
        if (!rd && o.retry && rd.status().code() == errc::not_found) continue;  // gone again
        if (!rd) return report_read(o, rd.status());
        Reader& reader = *rd.value();
        uint64_t skipped_reported = 0;
        note_skipped(reader, skipped_reported);
        int rc = 0;
        if (exec) {
            rc = exec_batches(o, reader, pr, lim);
        } else if (o.reverse) {
            rc = print_reverse(o, reader, pr, lim);
        } else {
            rc = print_loop(o, reader, pr, lim, skipped_reported);
        }
        if (rc != kReopen) return rc;
        // The queue was removed or replaced (--retry): a new queue is read from its start.
        ro.start = Position::start();
        ro.reposition = false;
    }
}

}  // namespace

namespace {

// The options that need --follow, in --help too.
constexpr const char* kFollowGroup = "Following (with -f or -F)";

// For counts that must be positive (after uint_check(), which made the value decimal).
CLI::Validator at_least_one() {
    return CLI::Validator(
        [](std::string& v) { return v == "0" ? "must be at least 1" : std::string(); }, "", "");
}

int tool_main(int argc, char** argv) {
    cli::set_tool("chronicle-tail");
    Options o;
    CLI::App app{
        "Print the records of a chronicle queue, one per line, and exit at the end of "
        "the data.",
        "chronicle-tail"};
    app.add_option("QUEUE", o.queues,
                   "queue directory; several: each under a ==> QUEUE <== header, as tail")
        ->required();
    app.add_flag("-q,--quiet", o.quiet, "with several queues: no ==> QUEUE <== headers");
    app.add_flag("-v,--verbose", o.verbose, "a ==> QUEUE <== header even for one queue")
        ->excludes("--quiet");
    app.add_option("-n,--lines", o.lines,
                   "the last N records; +N: from the N-th record on (1-based, as tail); all: "
                   "everything (the default; with -f: the last 10)")
        ->check(CLI::Validator(
            [](std::string& v) {
                Options scratch;
                return parse_lines(v, scratch);
            },
            "N|+N|all", "LINES"));
    app.add_option("--from-seq", o.from.seq, "start at sequence number S")
        ->excludes("-n")
        ->transform(cli::uint_check());
    app.add_option("-c,--count", o.count, "stop after N records")->transform(cli::uint_check());
    app.add_option("--reader", o.reader,
                   "resume from and advance the durable cursor of reader NAME (created at "
                   "the start position if missing)")
        ->check(cli::non_empty());
    auto* show_seq =
        app.add_flag("--show-seq", o.show_seq,
                     "prefix each record with its sequence number and a tab (lines and "
                     "nul formats)");
    app.add_option("--format", o.format,
                   "output framing: lines (default), nul, len32 (4-byte big-endian length, "
                   "then the bytes), raw")
        ->check(cli::framing_check());
    app.add_flag("-z,--null", o.nul, "end records with NUL instead of newline (--format nul)");
    auto* json =
        app.add_flag("--json", o.json,
                     "one JSON object per record (NDJSON): seq, timestamp_ns, time, length, "
                     "payload (base64 with \"encoding\":\"base64\" when not UTF-8)");
    app.add_option("--template", o.tmpl,
                   "print each record through a template: %q seq, %t ISO time, %T ns, %l length, "
                   "%s payload, %%, \\n \\t (e.g. '%q %t %s\\n')")
        ->check(cli::non_empty())
        ->excludes(json)
        ->excludes(show_seq);
    json->excludes(show_seq);
    app.add_flag("--from-start", o.from.start, "start at the first record (same as -n all)")
        ->excludes("-n")
        ->excludes("--from-seq");
    app.add_option("--since", o.from.since,
                   "start at the first record at or after WHEN: 2026-11-29 14:00, 14:07, "
                   "yesterday, '1 hour ago', -30m, @EPOCH; a bare duration (10m) is that long ago")
        ->check(cli::time_check())
        ->excludes("-n")
        ->excludes("--from-seq");
    app.add_option("--from-time", o.from.time,
                   "start at the first record at or after a time (as --since)")
        ->check(cli::time_check())
        ->excludes("-n")
        ->excludes("--from-seq")
        ->excludes("--since");
    app.add_option("--until-seq", o.until_seq, "stop before sequence number S")
        ->transform(cli::uint_check());
    auto* until = app.add_option("--until", o.until_time,
                                 "stop before the first record at or after WHEN (as --since)")
                      ->check(cli::time_check());
    app.add_option("--until-time", o.until_time, "the same as --until")
        ->check(cli::time_check())
        ->excludes(until);
    auto* utc = app.add_flag("--utc", o.utc, "print times (--json, %t) in UTC: the default");
    app.add_flag("--localtime", o.localtime,
                 "print times (--json, %t) in local time, with its UTC offset")
        ->excludes(utc);
    auto* reverse = app.add_flag("-r,--reverse", o.reverse,
                                 "newest first (not with --follow, --reader or --exec)");
    auto* follow = app.add_flag("-f,--follow", o.follow,
                                "keep waiting for new records, after the last 10 unless a start or "
                                "--reader is given (sleeps on an eventfd: no CPU while idle)");
    reverse->excludes(follow);
    app.add_flag("--retry", o.retry,
                 "wait for a queue that does not exist yet, and when it is removed or "
                 "replaced, say so and follow the new one (with -f)");
    app.add_flag_callback(
        "-F",
        [&o] {
            o.follow = true;
            o.retry = true;
        },
        "the same as --follow --retry");
    app.add_flag("--until-writer-exits", o.until_writer_exits,
                 "with --follow: stop once no writer holds the queue and everything is printed")
        ->group(kFollowGroup);
    app.add_option("--timeout", o.timeout,
                   "with --follow: give up after DUR without a record (500ms, 10s, 5m; 0: as "
                   "soon as everything is printed); exit 6")
        ->check(cli::duration_check())
        ->group(kFollowGroup);
    app.add_flag("--skip-expired", o.skip_expired,
                 "when retention deleted records this reader had not read, continue at the "
                 "first record on disk (and say how many were lost) instead of exit 7");
    auto* exec =
        app.add_option("--exec", o.exec,
                       "hand the records to CMD (run by sh -c) in batches on its standard input, "
                       "in the output format, with CHRONICLE_FIRST_SEQ, _LAST_SEQ, _COUNT and "
                       "_QUEUE_ID set; with --reader, the cursor moves past a batch only when "
                       "CMD exits 0")
            ->check(cli::non_empty());
    app.add_option("--batch", o.batch, "with --exec: at most N records per batch (default 1000)")
        ->transform(cli::uint_check())
        ->check(at_least_one())
        ->needs(exec);
    app.add_option("--batch-bytes", o.batch_bytes,
                   "with --exec: at most SIZE bytes per batch (default 1M; a larger record goes "
                   "alone)")
        ->check(cli::size_check())
        ->check(CLI::Validator(
            [](std::string& v) {
                return cli::parse_size(v, "--batch-bytes") == 0 ? "must be at least 1 byte"
                                                                : std::string();
            },
            "", ""))
        ->needs(exec);
    app.add_option("--linger", o.linger,
                   "with --exec and --follow: let a batch wait up to DUR for more records "
                   "(default 0: run it as soon as everything is read)")
        ->check(cli::duration_check())
        ->needs(exec)
        ->group(kFollowGroup);
    app.add_option("--retries", o.retries,
                   "with --exec: run a failing batch again up to N times (back-off from 100ms "
                   "doubling to 30s; default 8), then stop with exit 1, the cursor before it")
        ->transform(cli::uint_check())
        ->needs(exec);
    reverse->excludes("--reader")->excludes(exec);
    app.set_version_flag("--version", cli::version_string("chronicle-tail"));
    return cli::run(argc, argv, app, [&] {
        if (!o.lines.empty()) (void)parse_lines(o.lines, o);  // checked when parsed
        // Options that need --follow (or -F, which CLI11 cannot see as --follow).
        for (const CLI::Option* opt : app.get_options()) {
            if (opt->get_group() == kFollowGroup && opt->count() > 0 && !o.follow) {
                throw CLI::ValidationError(opt->get_name() + " requires --follow");
            }
        }
        if (o.reverse && o.follow) throw CLI::ValidationError("--reverse excludes --follow");
        if (o.queues.size() == 1 && !o.verbose) {
            o.queue = o.queues.front();
            return tail(o);
        }
        if (!o.reader.empty() || !o.exec.empty() || o.retry || o.reverse) {
            throw CLI::ValidationError(
                "several queues: one at a time with --reader, --exec, -r or --retry/-F");
        }
        return tail_many(o);
    });
}

}  // namespace

int main(int argc, char** argv) {
    return cli::guard(tool_main, argc, argv);
}
