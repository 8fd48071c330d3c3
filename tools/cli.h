// chronicle tools — shared CLI helpers: the exit-code table, error reporting, option
// parsing (sizes, durations, times, numbers, framings, start and target positions), the
// run() wrapper that keeps CLI11's own exit codes and stray exceptions from leaking out of
// main(), signal-aware waits and output.
#pragma once

#include <poll.h>

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "chronicle/reader.h"
#include "chronicle/status.h"

namespace chronicle::cli {

// The exit-code table shared by every tool (documented in README.md and every man page).
enum Exit : int {
    kOk = 0,
    kError = 1,      // I/O error, anything not below
    kUsage = 2,      // bad command line
    kNotFound = 3,   // queue or reader does not exist
    kBusy = 4,       // the queue has a writer / the reader name is in use
    kNoSpace = 5,    // the disk is full
    kTimeout = 6,    // --timeout ran out
    kDataError = 7,  // record too large, damaged queue, position no longer retained
};

int exit_code(errc c) noexcept;

// "chronicle-tail 0.1.0 (notifier: linux)" — the notifier tells how followers wait.
std::string version_string(std::string_view tool);

// Sets the tool name used in messages ("chronicle-append").
void set_tool(std::string_view name);

// "chronicle-<tool>: <message>" on stderr; returns the exit code for the status.
int report(const Status& st);
// "chronicle-<tool>: <what>" on stderr.
void warn(std::string_view what);

// The parsers below throw CLI::ValidationError("<option>: <why>") on bad input; `option`
// names the option in the message ("--since"). The *_check() validators run the same
// parsers when CLI11 parses the command line (->check(cli::duration_check())), so that a
// bad value is a usage error naming the option before anything is opened.

// Parses "4096", "64K", "64KiB", "16M", "1G".
uint64_t parse_size(const std::string& s, std::string_view option = "size");
// Parses a duration as systemd does (timespec.h): "500ms", "10s", "1h30m", "2 weeks",
// "1.5s"; a bare number means seconds.
uint64_t parse_duration_ns(const std::string& s, std::string_view option = "duration");

// Parses a point in time as journalctl --since/--until do (timespec.h, when_error()):
// ISO 8601 with or without time and zone ("2026-11-24", "2026-11-24 13:05",
// "2026-11-24T13:05:00.250+01:00"; local time without a zone), "HH:MM[:SS]" today,
// "now", "today", "yesterday", "tomorrow", "-1h", "1 hour ago", "+10m", a bare duration
// ("10m": ago) or "@1795528496.5". Every field is checked, and the time must lie between
// the epoch and 2554 (nanoseconds in 64 bits). Returns ns since the epoch.
uint64_t parse_time_ns(const std::string& s, std::string_view option = "time");
// The realtime clock in ns since the epoch.
uint64_t now_ns();

// Parses a non-negative decimal integer that fits in 64 bits ("+N" is N): no sign
// other than '+', no spaces, no hex, no exponent.
uint64_t parse_uint(const std::string& s, std::string_view option = "number");
// What is wrong with `s` as a non-negative decimal number (empty: nothing; `v` is set).
std::string uint_problem(const std::string& s, uint64_t& v);

// Validators for CLI11 options (error text without the option: CLI11 prefixes it).
CLI::Validator size_check();
CLI::Validator duration_check();
CLI::Validator time_check();
// For numeric options: add it with ->transform(), not ->check(): it also rewrites the value
// to plain decimal, since CLI11's own conversion reads "010" as octal 8.
CLI::Validator uint_check();
// A value that must not be empty (an empty --since or --reader is a mistake, not "unset").
CLI::Validator non_empty();
// A number of seconds for --watch: finite, 0 <= SECS <= 86400.
CLI::Validator seconds_check();
// A framing's name for --framing / --format (parse_framing() in framing.h); the error and
// --help list the accepted names.
CLI::Validator framing_check();

// A position given on the command line, one field per option: where chronicle-tail starts
// (--from-seq, -n, --since, --from-time) or where chronicle-readers reset moves a reader
// (--to-seq, --to-time, --to-start, --to-end). Each tool declares its options mutually
// exclusive and checks their values when CLI11 parses the command line.
struct PositionFlags {
    std::optional<uint64_t> seq;   // --from-seq / --to-seq S: sequence number S
    std::optional<uint64_t> last;  // -n N: the last N records
    std::string since;             // --since WHEN: as the time below (a bare DUR: DUR ago)
    std::string time;              // --from-time / --to-time T: the first record at or after T
    bool start = false;            // --to-start: the first record
    bool end = false;              // --to-end: past the last record
};

// The position the flags name (the first one set, in the order of PositionFlags), or
// nullopt when none is. --since counts back from now. `time_option` names the time option
// in errors; a bad duration or time throws CLI::ValidationError, as parse_time_ns() does.
std::optional<Position> position_from(const PositionFlags& f, std::string_view time_option);

// The bytes of s safe to print on a terminal: printable ASCII as is, a backslash as "\\",
// every other byte (control characters, escape sequences, bytes >= 0x80) as "\xNN".
std::string printable(std::string_view s);

// Runs `body` with CLI11 parsing inside: --help exits 0, a parse error prints one line and
// exits kUsage, an exception exits kError. SIGPIPE is ignored (tools handle EPIPE).
int run(int argc, char** argv, CLI::App& app, const std::function<int()>& body);

// SIGINT, SIGTERM and SIGHUP set a flag instead of killing the tool, so that it can remove
// its follower registration; terminated() returns the signal or 0. The signals are blocked
// and delivered only inside poll_signals(), which unblocks them atomically (ppoll): a
// signal that arrives just before a wait cannot be lost and leave the wait blocked.
void install_termination_handlers();
int terminated() noexcept;
// ppoll with the termination signals unblocked for its duration; -1/EINTR on a signal.
int poll_signals(pollfd* fds, unsigned long nfds, int timeout_ms);
// Lets a pending termination signal in (a zero-timeout poll_signals()) and says whether
// one came. A loop that may never wait — draining a long backlog into a fast reader —
// calls it now and then: the signals are blocked everywhere else, so without it a SIGTERM
// would wait until the loop goes idle.
bool termination_pending();

// Makes descriptors 0, 1 and 2 valid, as gnulib's stdopen does: a closed 0 gets /dev/null
// opened write-only, a closed 1 or 2 gets /dev/null opened read-only (a pipe end of the
// same direction if /dev/null cannot be opened). The numbers are then occupied, so no
// queue file can become "standard error", while reading such a stdin and writing such a
// stdout still fail (EBADF). Returns false if a descriptor could not be filled: the tool
// must not open anything then.
bool make_std_fds_valid() noexcept;

// Whether fd is open for writing (a closed standard output, made valid by
// make_std_fds_valid(), is not).
bool writable(int fd) noexcept;

// Bytes waiting to be read from fd (FIONREAD): for a pipe or socket, those written into it
// and not yet read out; -1 when the kernel cannot tell (e.g. a terminal on some systems).
int64_t unread_bytes(int fd) noexcept;

// Runs a tool's main, turning any exception that escapes it (CLI11 set-up) into one
// line on stderr and kError: main() itself never throws. First of all it makes fds 0-2
// valid (make_std_fds_valid()); if that fails it exits kError without opening anything.
int guard(int (*tool_main)(int, char**), int argc, char** argv) noexcept;

// Writes all of [p, p+n) to fd. Returns false with errno set on failure (EPIPE included).
// `written`, when given, receives the bytes that did get written, on failure too.
// A write that would block (a full pipe, a stalled terminal or socket) waits in
// poll_signals(): a termination signal ends it with false, errno EINTR and terminated()
// set. To make that possible, the first write to a standard descriptor that is a pipe,
// FIFO or terminal reopens it through /proc/self/fd/N with O_NONBLOCK (a new open file
// description: the one shared with the shell stays blocking) and dup2()s it over N;
// sockets are written with send(MSG_DONTWAIT | MSG_NOSIGNAL); regular files block as
// usual. Without /proc, a pipe is written PIPE_BUF bytes at a time after POLLOUT.
bool write_all(int fd, const void* p, size_t n, size_t* written = nullptr);

// Buffered output to a file descriptor (written with write_all()), for record printing
// without stdio. It owns its buffer of `capacity` bytes. Nothing is written at
// destruction: call flush().
class Output {
  public:
    explicit Output(int fd, size_t capacity = 1 << 16);
    Output(const Output&) = delete;
    Output& operator=(const Output&) = delete;
    // Appends bytes; flushes when the buffer is full (more than capacity() bytes at once
    // are written directly). Returns false once writing failed.
    bool put(const void* p, size_t n);
    bool put(std::string_view s) { return put(s.data(), s.size()); }
    bool put_char(char c);
    bool flush();
    [[nodiscard]] int error() const noexcept { return errno_; }
    // Bytes buffered, not yet written.
    [[nodiscard]] size_t pending() const noexcept { return len_; }
    // Bytes written to the descriptor so far, including the part of a failed flush that
    // got out before the failure.
    [[nodiscard]] uint64_t written() const noexcept { return written_; }
    [[nodiscard]] size_t capacity() const noexcept { return cap_; }

  private:
    int fd_;
    std::unique_ptr<char[]> buf_;
    size_t cap_;
    size_t len_ = 0;
    uint64_t written_ = 0;
    bool failed_ = false;
    int errno_ = 0;
};

}  // namespace chronicle::cli
