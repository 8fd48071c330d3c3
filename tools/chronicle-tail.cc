// chronicle-tail — print the records of a queue.
//
// Without --reader and --follow it opens every queue file read-only and writes nothing into
// the queue directory; --follow registers the follower in readers/ (or polls when it cannot). With
// --reader NAME it resumes from and advances that reader's durable cursor, and only past records
// whose output has been written (flushed) — at-least-once; into a pipe, only past records whose
// bytes the consumer has read out of it (PipeCommitter).
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <optional>
#include <string>
#include <utility>

#include "chronicle/reader.h"
#include "cli.h"
#include "framing.h"
#include "render.h"

using namespace chronicle;

namespace {

struct Options {
    std::string queue;
    cli::PositionFlags from;        // -n, --from-seq, --since, --from-time, --from-start
    std::string lines;              // -n N | +N | all (parse_lines)
    std::optional<uint64_t> nth;    // -n +N: from the N-th record on disk (1-based)
    std::optional<uint64_t> count;  // none = no limit
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
    static int64_t unread() {
        int n = 0;
        if (::ioctl(1, FIONREAD, &n) != 0) return -1;
        return n;
    }

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

    bool print(const Record& r) {
        const std::string_view payload = r.text();
        if (json_ || tmpl_) {
            scratch_.clear();
            if (json_) {
                cli::append_json_record(scratch_, r.seq, r.timestamp_ns, payload);
            } else {
                tmpl_->render(scratch_, r.seq, r.timestamp_ns, payload);
            }
            return out_.put(scratch_);
        }
        if (show_seq_) {
            char num[24];
            const int k =
                std::snprintf(num, sizeof num, "%llu\t", static_cast<unsigned long long>(r.seq));
            out_.put(num, static_cast<size_t>(k));
        }
        switch (framing_) {
            case cli::Framing::lines:
                out_.put(payload);
                return out_.put_char('\n');
            case cli::Framing::nul:
                out_.put(payload);
                return out_.put_char('\0');
            case cli::Framing::len32: {
                char len[4];
                cli::store_be32(len, static_cast<uint32_t>(payload.size()));
                out_.put(len, 4);
                return out_.put(payload);
            }
            case cli::Framing::raw:
                return out_.put(payload);
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

int tail(Options o) {
    if (o.nth) {
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
    const uint64_t until_ts =
        o.until_time.empty() ? UINT64_MAX : cli::parse_time_ns(o.until_time, "--until-time");
    const uint64_t until_seq = o.until_seq.value_or(UINT64_MAX);
    if (o.show_seq && (o.format == "len32" || o.format == "raw")) {
        throw CLI::ValidationError("--show-seq",
                                   "only with --format lines or nul (it would break the framing)");
    }
    if (o.count && *o.count == 0) return cli::kOk;  // like head -n 0
    // A closed standard output (made valid, read-only, by cli::guard): say so before
    // opening anything, rather than creating a reader that can never print.
    if (!cli::writable(1)) {
        return cli::report(Status::from_errno(EBADF, "cannot write", "standard output"));
    }
    if (o.follow) cli::install_termination_handlers();
    auto rd = Reader::open(o.queue, ro);
    if (!rd) return report_read(o, rd.status());
    Reader& reader = *rd.value();
    uint64_t skipped_reported = 0;
    note_skipped(reader, skipped_reported);

    // --format passed framing_check() when the command line was parsed.
    const cli::Framing f = o.nul ? cli::Framing::nul : cli::parse_framing(o.format).value();
    Printer pr(f, o.show_seq, o.json, o.tmpl);
    bool reached_end = false;  // --until-seq / --until-time met
    cli::Output& out = pr.out();
    PipeCommitter committer(reader, out, !o.reader.empty());
    uint64_t printed = 0;
    // --timeout: none = wait forever; 0 = give up as soon as everything is printed.
    std::optional<uint64_t> idle_ns;
    if (!o.timeout.empty()) idle_ns = cli::parse_duration_ns(o.timeout, "--timeout");
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
        while (!o.count || printed < *o.count) {
            auto r = reader.next();
            if (!r) {
                err = r.status();
                return true;
            }
            if (!r.value()) break;  // end of the committed data
            const Record& rec = *r.value();
            if (rec.seq >= until_seq || rec.timestamp_ns >= until_ts) {
                reached_end = true;
                break;
            }
            // Flush before a record that would not fit, then store the position of the
            // records whose bytes are now written.
            if (out.pending() + pr.size_of(rec.payload.size()) > out.capacity() &&
                out.pending() > 0) {
                if (!out.flush()) return false;
                committer.flushed(rec.seq);
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
        if (!err) return done(report_read(o, err));
        if (printed != before) last_record = std::chrono::steady_clock::now();
        if (!o.follow || reached_end || (o.count && printed >= *o.count)) return done(cli::kOk);
        if (o.until_writer_exits) {
            // Everything the writer committed before it exited was drained above.
            if (writer_seen_gone) return done(cli::kOk);
            if (!reader.writer_alive()) {
                writer_seen_gone = true;
                continue;  // one more drain
            }
        }
        int timeout_ms = -1;
        if (idle_ns) {
            const auto idle = std::chrono::steady_clock::now() - last_record;
            const auto left = std::chrono::nanoseconds(*idle_ns) - idle;
            if (left <= std::chrono::nanoseconds(0)) {
                return done(cli::report(Status(errc::timeout, "no record for " + o.timeout)));
            }
            timeout_ms = static_cast<int>(std::min<int64_t>(
                std::chrono::ceil<std::chrono::milliseconds>(left).count(), INT32_MAX));
        }
        // Records still unread in the pipe: look again soon, to commit them once read.
        if (committer.waiting()) {
            timeout_ms = timeout_ms < 0 ? kSettleMs : std::min(timeout_ms, kSettleMs);
        }
        auto armed = reader.prepare_wait();
        if (!armed) return cli::report(armed.status());
        if (!armed.value()) continue;  // records arrived meanwhile
        auto fd = reader.fd();
        if (!fd) return cli::report(fd.status());
        if (fd.value() < 0 && !reader.follow_status().ok() && !warned_polling) {
            cli::warn("note: following by polling: " + reader.follow_status().message());
            warned_polling = true;
        }
        pollfd fds[2] = {{1, 0, 0}, {fd.value(), POLLIN, 0}};
        int n = 0;
        if (fd.value() < 0) {
            // Nobody can wake this reader (the portable build, or no registration): the
            // library's polling wait, in slices, so that a closed output or a signal still
            // ends us within kPollSliceMs.
            const int slice = timeout_ms < 0 ? kPollSliceMs : std::min(timeout_ms, kPollSliceMs);
            Status st = reader.wait(std::chrono::milliseconds(slice));
            if (!st && st.code() != errc::timeout && st.code() != errc::closed) {
                return cli::report(st);
            }
            n = cli::poll_signals(fds, 1, 0);
        } else {
            n = cli::poll_signals(fds, 2, timeout_ms);
        }
        committer.settle();
        if (n > 0 && output_closed(fds[0].revents)) return cli::kOk;
        if (cli::terminated() != 0) return 128 + cli::terminated();  // after cleanup
    }
}

}  // namespace

namespace {

int tool_main(int argc, char** argv) {
    cli::set_tool("chronicle-tail");
    Options o;
    CLI::App app{
        "Print the records of a chronicle queue, one per line, and exit at the end of "
        "the data.",
        "chronicle-tail"};
    app.add_option("QUEUE", o.queue, "queue directory")->required();
    app.add_option("-n,--lines", o.lines,
                   "the last N records; +N: from the N-th record on (1-based, as tail); all: "
                   "everything (the default)")
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
    app.add_flag("--from-start", o.from.start,
                 "start at the first record (the default; same as -n all)")
        ->excludes("-n")
        ->excludes("--from-seq");
    app.add_option("--since", o.from.since, "start at records younger than DUR (e.g. 10m, 2h)")
        ->check(cli::duration_check())
        ->excludes("-n")
        ->excludes("--from-seq");
    app.add_option("--from-time", o.from.time,
                   "start at the first record at or after an ISO-8601 time (2026-11-24T13:05:00Z)")
        ->check(cli::time_check())
        ->excludes("-n")
        ->excludes("--from-seq")
        ->excludes("--since");
    app.add_option("--until-seq", o.until_seq, "stop before sequence number S")
        ->transform(cli::uint_check());
    app.add_option("--until-time", o.until_time, "stop before the first record at or after a time")
        ->check(cli::time_check());
    auto* follow = app.add_flag("-f,--follow", o.follow,
                                "keep waiting for new records (sleeps on an eventfd: no CPU while "
                                "idle); each record is written out as soon as it arrives");
    app.add_flag("--until-writer-exits", o.until_writer_exits,
                 "with --follow: stop once no writer holds the queue and everything is printed")
        ->needs(follow);
    app.add_option("--timeout", o.timeout,
                   "with --follow: give up after DUR without a record (500ms, 10s, 5m; 0: as "
                   "soon as everything is printed); exit 6")
        ->check(cli::duration_check())
        ->needs(follow);
    app.add_flag("--skip-expired", o.skip_expired,
                 "when retention deleted records this reader had not read, continue at the "
                 "first record on disk (and say how many were lost) instead of exit 7");
    app.set_version_flag("--version", cli::version_string("chronicle-tail"));
    return cli::run(argc, argv, app, [&] {
        if (!o.lines.empty()) (void)parse_lines(o.lines, o);  // checked when parsed
        return tail(o);
    });
}

}  // namespace

int main(int argc, char** argv) {
    return cli::guard(tool_main, argc, argv);
}
