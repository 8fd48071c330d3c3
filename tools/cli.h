// chronicle tools — shared CLI helpers: the exit-code table, error reporting, option
// parsing of sizes and durations, and the run() wrapper that keeps CLI11's own exit codes
// and stray exceptions from leaking out of main().
#pragma once

#include <poll.h>

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

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
const std::string& tool();

// "chronicle-<tool>: <message>" on stderr; returns the exit code for the status.
int report(const Status& st);
// "chronicle-<tool>: <what>" on stderr.
void warn(std::string_view what);

// Parses "4096", "64K", "64KiB", "16M", "1G". Throws CLI::ValidationError on bad input.
uint64_t parse_size(const std::string& s);
// Parses "500ms", "10s", "2m", "1h", "1d", "1.5s", a bare number means seconds.
uint64_t parse_duration_ns(const std::string& s);

// Parses a time: ISO-8601 "2026-11-24T13:05:00Z", "2026-11-24T13:05:00.250+01:00",
// "2026-11-24 13:05" or "2026-11-24" (no offset: local time, as date(1) reads it), or
// "@1795528496.5" (seconds since the epoch). Returns ns since the epoch; throws
// CLI::ValidationError on bad input.
uint64_t parse_time_ns(const std::string& s);

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

// Runs a tool's main, turning any exception that escapes it (CLI11 set-up) into one
// line on stderr and kError: main() itself never throws.
int guard(int (*tool_main)(int, char**), int argc, char** argv) noexcept;

// Writes all of [p, p+n) to fd. Returns false with errno set on failure (EPIPE included).
bool write_all(int fd, const void* p, size_t n);

// An output buffer on a file descriptor, for record printing without stdio.
class Output {
  public:
    explicit Output(int fd, size_t capacity = 1 << 16);
    ~Output();
    Output(const Output&) = delete;
    Output& operator=(const Output&) = delete;
    // Appends bytes; flushes when the buffer is full. Returns false once writing failed.
    bool put(const void* p, size_t n);
    bool put(std::string_view s) { return put(s.data(), s.size()); }
    bool put_char(char c);
    bool flush();
    [[nodiscard]] bool failed() const noexcept { return failed_; }
    [[nodiscard]] int error() const noexcept { return errno_; }
    [[nodiscard]] size_t pending() const noexcept { return len_; }

  private:
    int fd_;
    char* buf_;
    size_t cap_;
    size_t len_ = 0;
    bool failed_ = false;
    int errno_ = 0;
};

}  // namespace chronicle::cli
