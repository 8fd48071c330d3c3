// chronicle-append — records from standard input or files into a queue.
//
// Reads large blocks (never a system call per record), frames them into records and
// commits each block's records as one batch, which also wakes followers once per read: a
// line typed into chronicle-append is visible to followers as soon as it is read.
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "chronicle/writer.h"
#include "cli.h"
#include "framing.h"
#include "retention_flags.h"

using namespace chronicle;

namespace {

// Bytes per read. Not more, although the buffer (2 * kReadSize) would take more: the block
// read, the records encoded from it and the page stage's 256 KiB then stay near the 1 MiB
// L2 of this machine kind, where the encoder reads its input. From a file, reads of up to
// 2 MiB -> 1 MiB (perf stat, 8 runs, twice): `< seq file` 68-70 -> 62-64 ms, `< log`
// 107-108 -> 103-104 ms; 512 KiB was no better. A pipe holds at most 1 MiB by default
// (F_SETPIPE_SZ below; /proc/sys/fs/pipe-max-size), so its reads are as before.
constexpr size_t kReadSize = 1 << 20;
// linger(): a read at least this large marks a bulk stream; it lingers while less than
// kLingerBelow bytes wait in the input, kLingerUs microseconds.
constexpr size_t kBulkRead = 64 << 10;
constexpr int kLingerBelow = 256 << 10;
constexpr long kLingerUs = 200;
// The pipe size feed() asks for, and the least a pipe must hold for linger(): in a smaller
// pipe (or a socket) less than kLingerBelow bytes wait even when the producer is blocked on
// a full buffer, and each read would sleep for nothing. `cat log |` with a 64 KiB pipe:
// 1.28 s lingering, 0.25 s not; from a socket pair 0.48-0.55 s -> 0.18-0.26 s
// (docs/DESIGN.md decision log, 2026-12-01).
constexpr int kLingerPipe = 1 << 20;

// The read buffer's allocator default-initialises its bytes, so that sizing the buffer does
// not zero-fill it: read() overwrites what it uses. Zero-filling the first 2 MiB cost every
// run 512 page faults and a memset before its first byte (perf: 5 % of the samples of
// `seq 1 1e7 | chronicle-append`; a one-line append 866 -> 355 page faults).
template <class T>
struct UninitAllocator : std::allocator<T> {
    template <class U>
    struct rebind {
        using other = UninitAllocator<U>;
    };
    UninitAllocator() = default;
    template <class U>
    UninitAllocator(const UninitAllocator<U>&) noexcept {}
    template <class U>
    void construct(U* p) noexcept {
        ::new (static_cast<void*>(p)) U;
    }
    template <class U, class... Args>
    void construct(U* p, Args&&... args) {
        ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
    }
};

struct Options {
    std::string queue;
    std::vector<std::string> files;
    std::string framing = "lines";
    bool nul = false;
    std::string segment_size = "64M";
    bool print_seq = false;
    bool atomic = false;
    std::string sync = "none";
    bool wake_via_fifo = false;
    bool exclusive = false;
    std::string wait;  // --wait[=DUR]: "forever" without a value
    cli::RetentionFlags retention;
};

enum class SyncMode { none, batch, every };

class Appender {
  public:
    Appender(Writer& w, cli::Framing f, bool print_seq, bool atomic, SyncMode sync)
        : w_(w), framing_(f), print_seq_(print_seq), atomic_(atomic), sync_(sync), out_(1) {
        buf_.resize(kReadSize * 2);
    }

    // --atomic: one batch around all of the input; visible at the end, or never.
    Status begin_all() { return atomic_ ? w_.begin_batch() : Status(); }
    Status commit_all() {
        if (!atomic_) return {};
        // Fails only in the sync (Sync::on_commit), after the batch became visible.
        Status st = w_.commit_batch();
        print_committed();
        return st;
    }
    void abort_all() {
        if (atomic_) w_.abort_batch();
    }

    // Appends everything from `fd`. On error, every complete record before the failing one
    // is committed and the status names the input and record number.
    Status feed(int fd, const std::string& name) {
        have_ = 0;
        last_read_ = 0;
        // A larger pipe buffer halves the context switches with the producer, and lets
        // linger() work: it needs room for kLingerBelow bytes to wait, so only a pipe that
        // holds kLingerPipe lingers. A pipe is only grown, never shrunk; F_SETPIPE_SZ can
        // be refused (pipe-user-pages-soft, pipe-max-size). A file or a socket (whose
        // buffer FIONREAD cannot fill that far) has no pipe size.
        int pipe_size = ::fcntl(fd, F_GETPIPE_SZ);
        if (pipe_size > 0 && pipe_size < kLingerPipe) {
            pipe_size = std::max(pipe_size, ::fcntl(fd, F_SETPIPE_SZ, kLingerPipe));
        }
        linger_ = pipe_size >= kLingerPipe;
        // Large batches go through the page cache with pwrite (Writer's begin_batch hint),
        // from a pipe and from a file: pwrite spares the page zeroing and the first stores
        // into fresh mapped pages, whose cost depends on the machine's memory state (from a
        // file, stores into the mapping took 2.2x pwrite's time on a fresh VM and 0.85x on a
        // warm one: docs/DESIGN.md decision log, 2026-11-29 and 2026-11-30).
        for (;;) {
            if (buf_.size() - have_ < kReadSize) {
                // A record longer than the buffer: grow, within the queue's maximum.
                if (have_ > w_.max_payload() + 4) return too_large(name);
                buf_.resize(std::max(buf_.size() * 2, have_ + kReadSize));
            }
            // Wait for input with the termination signals deliverable (see cli.h); a file
            // is always readable, so this costs one cheap call per read.
            linger(fd);
            pollfd pfd{fd, POLLIN, 0};
            (void)cli::poll_signals(&pfd, 1, -1);
            const ssize_t n =
                cli::terminated() != 0 ? 0 : ::read(fd, buf_.data() + have_, kReadSize);
            if (cli::terminated() != 0) {
                return Status(errc::io_error, "interrupted by signal " +
                                                  std::to_string(cli::terminated()) +
                                                  (atomic_ ? " (nothing appended)" : ""));
            }
            if (n < 0) {
                // EAGAIN: a standard input that another process made non-blocking; the
                // poll above waits for it.
                if (errno == EINTR || errno == EAGAIN) continue;
                return Status::from_errno(errno, "cannot read", name);
            }
            if (n == 0) return finish(name);
            have_ += static_cast<size_t>(n);
            last_read_ = static_cast<size_t>(n);
            if (Status st = frame_block(name, false); !st) return st;
        }
    }

    Status flush_output() {
        if (!out_.flush())
            return Status::from_errno(out_.error(), "cannot write", "standard output");
        return {};
    }

  private:
    // A bulk stream (the last read filled at least kBulkRead bytes) that has little
    // waiting: let the producer fill the pipe for kLingerUs before reading again, as
    // Kafka's linger.ms does. Each read that empties the pipe puts the appender to sleep,
    // and the producer's next write wakes it: on 2 vCPUs that wake-up costs the producer
    // ~30 us (docs/DESIGN.md, Surprises), and the small batch it leaves goes through the
    // mapping instead of the page stage. `seq 1 1e7 |`: appender CPU 132 -> 77 ms, reads
    // 955 -> 176, wall -10 % (decision log 2026-12-01). A line now and then (a read below
    // kBulkRead) never waits, nor does a file, a socket or a pipe smaller than kLingerPipe.
    void linger(int fd) const {
        if (!linger_ || last_read_ < kBulkRead) return;
        const int64_t waiting = cli::unread_bytes(fd);
        if (waiting < 0 || waiting >= kLingerBelow) return;
        timespec ts{0, kLingerUs * 1000L};
        (void)::nanosleep(&ts, nullptr);  // a signal ends it; the poll below reports it
    }

    bool linger_ = false;   // the input is a pipe that holds kLingerPipe bytes or more
    size_t last_read_ = 0;  // bytes the last read() returned
    Status too_large(const std::string& name) {
        return Status(errc::too_large, name + ": record " + std::to_string(count_ + 1) +
                                           " is larger than the queue's maximum of " +
                                           std::to_string(w_.max_payload()) + " bytes");
    }

    // The library's error for record count_ + 1 of `name`, with the input's name and the
    // record's number.
    Status record_error(const Status& st, const std::string& name) {
        if (st.code() == errc::too_large) return too_large(name);
        return Status(st.code(),
                      name + ": record " + std::to_string(count_ + 1) + ": " + st.message(),
                      st.sys_errno());
    }

    // Appends one record; false (with err_ set) on failure.
    bool append_one(const char* p, size_t n, const std::string& name) {
        auto seq = w_.append(std::string_view(p, n));
        if (!seq) {
            err_ = record_error(seq.status(), name);
            return false;
        }
        ++count_;
        note_appended(seq.value());
        if (!per_read_batch() && !atomic_) print_committed();  // --sync every: committed
        return true;
    }

    // Appends the delimited records of [p, end) inside the open batch, in one library call
    // (Writer::append_delimited: no call per record). Returns where the framed part ends;
    // `ok` false (with err_ set) on failure.
    const char* append_split(const char* p, const char* end, char delim, const std::string& name,
                             bool& ok) {
        const uint64_t first = w_.next_seq();  // exact: the batch holds the append lock
        auto r = w_.append_delimited(std::as_bytes(std::span(p, static_cast<size_t>(end - p))),
                                     std::byte(delim));
        note_appended(first, r.records);  // the records of a batch are dense
        count_ += r.records;
        if (!r.status) {
            err_ = record_error(r.status, name);
            ok = false;
        }
        return p + r.consumed;
    }

    // --print-seq prints a sequence only once its record is committed: a number printed
    // for a record that a crash then discards would be reused by the next writer (found
    // by the kill -9 soak, tests/cli/cli_soak.sh). Sequences of a batch are dense, so the
    // pending ones are a range.
    void note_appended(uint64_t seq, uint64_t n = 1) {
        if (!print_seq_ || n == 0) return;
        if (pending_ == 0) pending_first_ = seq;
        pending_ += n;
    }
    void print_committed() {
        for (uint64_t i = 0; i < pending_; ++i) {
            char num[24];
            char* end = std::to_chars(num, num + sizeof num - 1, pending_first_ + i).ptr;
            *end++ = '\n';
            out_.put(num, static_cast<size_t>(end - num));
        }
        pending_ = 0;
    }

    // Each read is one batch, committed (and with --sync batch synced) at once, unless
    // --atomic makes all input one batch or --sync every commits record by record.
    bool per_read_batch() const { return !atomic_ && sync_ != SyncMode::every; }

    // Frames the complete records in buf_[0, have_); keeps the remainder.
    Status frame_block(const std::string& name, bool at_eof) {
        if (per_read_batch()) {
            if (Status st = w_.begin_batch(have_); !st) return st;
        }
        const char* p = buf_.data();
        const char* end = p + have_;
        bool ok = true;
        if (framing_ == cli::Framing::len32) {
            while (end - p >= 4) {
                const uint32_t len = cli::load_be32(p);
                if (len > w_.max_payload()) {
                    err_ = too_large(name);
                    ok = false;
                    break;
                }
                if (static_cast<size_t>(end - p - 4) < len) break;
                if (!(ok = append_one(p + 4, len, name))) break;
                p += 4 + len;
            }
            if (ok && at_eof && p != end) {
                ok = false;
                err_ = Status(errc::corrupt,
                              name + ": input ends inside record " + std::to_string(count_ + 1) +
                                  " (" + std::to_string(end - p) + " bytes left of a len32 frame)");
            }
        } else if (framing_ == cli::Framing::raw) {
            if (at_eof) {
                if (have_ > w_.max_payload()) {
                    err_ = too_large(name);
                    ok = false;
                } else if ((ok = append_one(p, have_, name))) {
                    p = end;
                }
            }
        } else {
            const char delim = framing_ == cli::Framing::nul ? '\0' : '\n';
            if (per_read_batch() || atomic_) {
                p = append_split(p, end, delim, name, ok);
            } else {  // --sync every: record by record, each committed and synced
                p = cli::split_records(p, end, delim, [&](const char* rec, size_t n) {
                    return ok = append_one(rec, n, name);
                });
            }
            // A last line without its newline is still a record.
            if (ok && at_eof && p < end && (ok = append_one(p, size_t(end - p), name))) p = end;
        }
        // Commit what was framed, even when a later record failed: nothing is lost. A
        // failure here is the sync's (Sync::on_commit), after the batch became visible.
        if (per_read_batch()) {
            Status st = w_.commit_batch();
            print_committed();
            if (!st) return st;
        }
        if (print_seq_ && !out_.flush()) {
            return Status::from_errno(out_.error(), "cannot write", "standard output");
        }
        const size_t used = size_t(p - buf_.data());
        std::memmove(buf_.data(), p, have_ - used);
        have_ -= used;
        if (ok) return {};
        return std::move(err_);
    }

    Status finish(const std::string& name) {
        if (have_ == 0 && framing_ != cli::Framing::raw) return {};
        if (Status st = frame_block(name, true); !st) return st;
        if (framing_ == cli::Framing::len32 && have_ != 0) {
            return Status(errc::corrupt, name + ": input ends inside a len32 frame");
        }
        return {};
    }

    Writer& w_;
    cli::Framing framing_;
    bool print_seq_;
    bool atomic_;
    SyncMode sync_;
    cli::Output out_;
    std::vector<char, UninitAllocator<char>> buf_;
    size_t have_ = 0;
    uint64_t count_ = 0;
    uint64_t pending_first_ = 0;  // --print-seq: appended, not yet committed
    uint64_t pending_ = 0;
    Status err_;  // why append_one() failed
};

}  // namespace

namespace {

int tool_main(int argc, char** argv) {
    cli::set_tool("chronicle-append");
    Options o;
    CLI::App app{
        "Append records from standard input or files to a chronicle queue.\n"
        "Each line becomes one record (without its newline); the queue is created on "
        "first use.",
        "chronicle-append"};
    app.add_option("QUEUE", o.queue, "queue directory")->required();
    app.add_option("FILE", o.files, "input files ('-' or none: standard input)");
    app.add_option("--framing", o.framing,
                   "input framing: lines (default), nul, len32 (4-byte big-endian length, "
                   "then the bytes; kcat's %R), raw (the whole input is one record)")
        ->check(cli::framing_check());
    app.add_flag("-z,--null", o.nul, "records end with NUL instead of newline (--framing nul)");
    auto* segsize = app.add_option("--segment-size", o.segment_size,
                                   "segment size when creating the queue (default 64M; 16K..1G)")
                        ->check(cli::size_check());
    app.add_flag("--print-seq", o.print_seq, "print the sequence number of each record");
    app.add_flag("--atomic", o.atomic,
                 "all of the input becomes visible at once at the end, or none of it (on an "
                 "error or a signal)");
    app.add_option("--sync", o.sync,
                   "durability: none (page cache; survives a crash of any process, not of the "
                   "machine), batch (msync after each read), every (msync after each record)")
        ->check(CLI::IsMember({"none", "batch", "every"}));
    // Retention limits of a queue this command creates (retention_flags.h).
    cli::add_retention_options(app, o.retention, false);
    app.add_flag("--exclusive", o.exclusive,
                 "be the only writer: refused while another writer appends, and others are "
                 "refused while this one does (the default lets any number append at once)");
    app.add_flag("--wait{forever}", o.wait,
                 "--wait[=DUR]: when the queue is not to be had (an exclusive writer has it; "
                 "with --exclusive, any writer), wait for it — for ever, or at most DUR "
                 "(e.g. 30s, 5m) — instead of exiting with status 4");
    app.add_flag("--wake-via-fifo", o.wake_via_fifo,
                 "wake followers through their FIFO instead of their eventfd (diagnosis)");
    app.set_version_flag("--version", cli::version_string("chronicle-append"));

    return cli::run(argc, argv, app, [&]() -> int {
        WriterOptions wo;
        wo.segment_size = cli::parse_size(o.segment_size, "--segment-size");
        // --print-seq into a closed standard output (made valid, read-only, by cli::guard):
        // refuse before the queue is opened, rather than append records whose numbers
        // cannot be printed.
        if (o.print_seq && !cli::writable(1)) {
            return cli::report(
                Status(errc::io_error, "--print-seq: cannot write standard output: " +
                                           std::string(std::strerror(EBADF)) + " (is it closed?)"));
        }
        const SyncMode sync = o.sync == "every"   ? SyncMode::every
                              : o.sync == "batch" ? SyncMode::batch
                                                  : SyncMode::none;
        // Every commit is synced: each read's batch (batch), each record (every, which
        // appends without batches), or all input at once (--atomic).
        wo.sync = sync != SyncMode::none ? Sync::on_commit : Sync::none;
        wo.wake_via_fifo = o.wake_via_fifo;
        wo.exclusive = o.exclusive;
        if (!o.wait.empty()) {
            wo.wait_ms = o.wait == "forever" ? WriterOptions::kWaitForever
                                             : cli::parse_duration_ns(o.wait, "--wait") / 1'000'000;
        }
        if (o.retention.any()) {
            RetentionLimits l;
            cli::apply_retention_flags(o.retention, l);
            wo.retention = l;
        }
        cli::install_termination_handlers();
        auto w = Writer::open(o.queue, wo);
        if (!w) return cli::report(w.status());
        if (segsize->count() > 0 && w.value()->segment_size() != wo.segment_size) {
            cli::warn("note: " + o.queue + " keeps its segment size of " +
                      std::to_string(w.value()->segment_size()) +
                      " bytes; --segment-size applies when a queue is created");
        }
        // --framing passed framing_check() when the command line was parsed.
        const cli::Framing f = o.nul ? cli::Framing::nul : cli::parse_framing(o.framing).value();
        Appender a(*w.value(), f, o.print_seq, o.atomic, sync);
        if (o.files.empty()) o.files.emplace_back("-");
        if (Status st = a.begin_all(); !st) return cli::report(st);
        for (const auto& file : o.files) {
            Status st;
            if (file == "-") {
                st = a.feed(0, "standard input");
            } else {
                const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
                if (fd < 0) return cli::report(Status::from_errno(errno, "cannot open", file));
                st = a.feed(fd, file);
                ::close(fd);
            }
            if (!st) {
                a.abort_all();
                (void)a.flush_output();
                if (cli::terminated() != 0) {
                    (void)cli::report(st);
                    return 128 + cli::terminated();
                }
                return cli::report(st);
            }
        }
        if (Status st = a.commit_all(); !st) return cli::report(st);
        if (Status st = a.flush_output(); !st) {
            (void)cli::report(st);
            // A signal while --print-seq's output was blocked (a full pipe).
            return cli::terminated() != 0 ? 128 + cli::terminated() : cli::exit_code(st.code());
        }
        return cli::kOk;
    });
}

}  // namespace

int main(int argc, char** argv) {
    return cli::guard(tool_main, argc, argv);
}
