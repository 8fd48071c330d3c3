// chronicle tools — shared CLI helpers (see cli.h).
#include "cli.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>
#include <iostream>
#include <sstream>
#include <vector>

#include "framing.h"
#include "timespec.h"

namespace chronicle::cli {

namespace {
std::string g_tool = "chronicle";
volatile std::sig_atomic_t g_signal = 0;
extern "C" void on_terminate(int sig) {
    g_signal = sig;
}
bool g_handlers = false;
sigset_t g_wait_mask;  // the mask in force inside poll_signals()
}  // namespace

void install_termination_handlers() {
    if (g_handlers) return;
    struct sigaction sa {};
    sa.sa_handler = on_terminate;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    sigset_t block;
    sigemptyset(&block);
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
        ::sigaction(sig, &sa, nullptr);
        sigaddset(&block, sig);
    }
    // Blocked from now on (threads started later inherit it), delivered in poll_signals().
    ::pthread_sigmask(SIG_BLOCK, &block, &g_wait_mask);
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigdelset(&g_wait_mask, sig);
    g_handlers = true;
}

int poll_signals(pollfd* fds, unsigned long nfds, int timeout_ms) {
    if (g_signal != 0) {
        errno = EINTR;
        return -1;
    }
    timespec ts{};
    timespec* tsp = nullptr;
    if (timeout_ms >= 0) {
        ts.tv_sec = timeout_ms / 1000;
        ts.tv_nsec = static_cast<long>(timeout_ms % 1000) * 1000000L;
        tsp = &ts;
    }
    return ::ppoll(fds, static_cast<nfds_t>(nfds), tsp, g_handlers ? &g_wait_mask : nullptr);
}

bool termination_pending() {
    (void)poll_signals(nullptr, 0, 0);
    return terminated() != 0;
}

int terminated() noexcept {
    return g_signal;
}

int exit_code(errc c) noexcept {
    switch (c) {
        case errc::ok:
            return kOk;
        case errc::invalid_argument:
            return kUsage;
        case errc::not_found:
            return kNotFound;
        case errc::busy:
            return kBusy;
        case errc::no_space:
            return kNoSpace;
        case errc::timeout:
            return kTimeout;
        case errc::too_large:
        case errc::corrupt:
        case errc::expired:
            return kDataError;
        case errc::closed:
        case errc::io_error:
            return kError;
    }
    return kError;
}

std::string version_string(std::string_view tool) {
#ifdef CHRONICLE_PORTABLE_NOTIFIER
    const char* notifier = "portable";
#else
    const char* notifier = "linux";
#endif
    return std::string(tool) + " " CHRONICLE_VERSION " (notifier: " + notifier + ")";
}

void set_tool(std::string_view name) {
    g_tool = std::string(name);
}

int report(const Status& st) {
    // Messages name files, whose names may hold anything: nothing raw reaches a terminal.
    std::string line = g_tool + ": " + printable(st.message()) + "\n";
    (void)write_all(2, line.data(), line.size());
    return exit_code(st.code());
}

void warn(std::string_view what) {
    std::string line = g_tool + ": " + printable(what) + "\n";
    (void)write_all(2, line.data(), line.size());
}

namespace {

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

std::string quoted(const std::string& s) {
    return "'" + printable(s) + "'";
}

// The parsers: "" and the value, or an error text without the option's name.
std::string uint_error(const std::string& s, uint64_t& v) {
    if (s.empty()) return "empty value";
    if (s[0] == '-') return quoted(s) + " is negative (a number from 0 is expected)";
    const char* p = s.c_str();
    if (*p == '+') ++p;
    if (!is_digit(*p)) return quoted(s) + " is not a number (decimal digits expected)";
    uint64_t x = 0;
    for (; is_digit(*p); ++p) {
        const auto d = static_cast<uint64_t>(*p - '0');
        if (x > (UINT64_MAX - d) / 10) return quoted(s) + " is too large";
        x = x * 10 + d;
    }
    if (*p != '\0') return quoted(s) + " is not a number (decimal digits expected)";
    v = x;
    return {};
}

std::string size_error(const std::string& s, uint64_t& out) {
    if (s.empty()) return "empty value";
    if (s[0] == '-') return quoted(s) + " is negative";
    const char* p = s.c_str();
    if (!is_digit(*p)) return quoted(s) + " is not a size (e.g. 4096, 64K, 16M, 1G)";
    uint64_t v = 0;
    for (; is_digit(*p); ++p) {
        const auto d = static_cast<uint64_t>(*p - '0');
        if (v > (UINT64_MAX - d) / 10) return quoted(s) + " is too large";
        v = v * 10 + d;
    }
    const std::string suffix(p);
    uint64_t mul = 1;
    if (suffix.empty() || suffix == "B") {
        mul = 1;
    } else if (suffix == "K" || suffix == "k" || suffix == "KiB" || suffix == "KB") {
        mul = 1ull << 10;
    } else if (suffix == "M" || suffix == "m" || suffix == "MiB" || suffix == "MB") {
        mul = 1ull << 20;
    } else if (suffix == "G" || suffix == "g" || suffix == "GiB" || suffix == "GB") {
        mul = 1ull << 30;
    } else {
        return quoted(s) + ": unknown unit " + quoted(suffix) + " (K, M, G, KiB, MB...)";
    }
    if (v > UINT64_MAX / mul) return quoted(s) + " is too large";
    out = v * mul;
    return {};
}

std::string seconds_error(const std::string& s) {
    if (s.empty()) return "empty value";
    if (s[0] == '-') return quoted(s) + " is negative";
    const char* p = s.c_str();
    double v = 0;
    if (!parse_decimal(p, v) || *p != '\0')
        return quoted(s) + " is not a number of seconds (e.g. 2, 0.5)";
    if (v > 86400) return quoted(s) + " is more than a day (86400)";
    return {};
}

template <typename F>
uint64_t parse_or_throw(F f, const std::string& s, std::string_view option) {
    uint64_t v = 0;
    if (std::string err = f(s, v); !err.empty()) {
        throw CLI::ValidationError(std::string(option), err);
    }
    return v;
}

template <typename F>
CLI::Validator validator(F f, const char* name) {
    return CLI::Validator(
        [f](std::string& s) {
            uint64_t v = 0;
            return f(s, v);
        },
        "", name);
}

// The length of the valid UTF-8 sequence at p[0, n) and its code point; 0 if invalid
// (overlong, surrogate, past U+10FFFF, truncated).
size_t utf8_sequence(const unsigned char* p, size_t n, uint32_t& cp) {
    const unsigned char c = p[0];
    size_t len = 0;
    uint32_t min = 0;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1fu;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0fu;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07u;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < len) return 0;
    for (size_t i = 1; i < len; ++i) {
        if ((p[i] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3fu);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return len;
}

}  // namespace

uint64_t parse_size(const std::string& s, std::string_view option) {
    return parse_or_throw(size_error, s, option);
}

uint64_t parse_duration_ns(const std::string& s, std::string_view option) {
    return parse_or_throw(duration_error, s, option);
}

uint64_t now_ns() {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
}

namespace {
// when_error() against the clock now.
std::string when_now_error(const std::string& s, uint64_t& out) {
    return when_error(s, now_ns(), out);
}
}  // namespace

uint64_t parse_time_ns(const std::string& s, std::string_view option) {
    return parse_or_throw(when_now_error, s, option);
}

uint64_t parse_uint(const std::string& s, std::string_view option) {
    return parse_or_throw(uint_error, s, option);
}

CLI::Validator size_check() {
    return validator(size_error, "SIZE");
}
CLI::Validator duration_check() {
    return validator(duration_error, "DURATION");
}
CLI::Validator time_check() {
    return validator(when_now_error, "TIME");
}
std::string uint_problem(const std::string& s, uint64_t& v) {
    return uint_error(s, v);
}

CLI::Validator uint_check() {
    // Rewrites the value to plain decimal after checking it: CLI11's own conversion would
    // read "010" as octal 8 (found by fuzz_cli_parsers).
    return CLI::Validator(
        [](std::string& s) {
            uint64_t v = 0;
            std::string err = uint_error(s, v);
            if (err.empty()) s = std::to_string(v);
            return err;
        },
        "", "UINT");
}
CLI::Validator non_empty() {
    return CLI::Validator(
        [](std::string& s) { return s.empty() ? std::string("empty value") : std::string(); }, "",
        "NONEMPTY");
}
CLI::Validator seconds_check() {
    return CLI::Validator([](std::string& s) { return seconds_error(s); }, "", "SECONDS");
}
CLI::Validator framing_check() {
    // "{lines,nul,len32,raw}": the wording of CLI::IsMember, which the tools used before.
    std::string names = "{";
    for (const auto& framing : kFramings) {
        if (names.size() > 1) names += ',';
        names += framing.first;
    }
    names += '}';
    return CLI::Validator(
        [names](std::string& s) {
            return parse_framing(s) ? std::string() : s + " not in " + names;
        },
        names, "FRAMING");
}

std::optional<Position> position_from(const PositionFlags& f, std::string_view time_option) {
    if (f.seq) return Position::at_seq(*f.seq);
    if (f.last) return Position::last(*f.last);
    if (!f.since.empty()) return Position::at_time(parse_time_ns(f.since, "--since"));
    if (!f.time.empty()) return Position::at_time(parse_time_ns(f.time, time_option));
    if (f.start) return Position::start();
    if (f.end) return Position::end();
    return std::nullopt;
}

std::string printable(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const size_t n = s.size();
    for (size_t i = 0; i < n;) {
        const unsigned char c = p[i];
        if (c == '\\') {
            out += "\\\\";
            ++i;
            continue;
        }
        if (c >= 0x20 && c < 0x7f) {
            out += static_cast<char>(c);
            ++i;
            continue;
        }
        uint32_t cp = 0;
        const size_t len = c >= 0x80 ? utf8_sequence(p + i, n - i, cp) : 0;
        // Printable UTF-8 as is; C1 controls and the bidirectional overrides (which
        // reorder what a terminal shows) escaped like invalid bytes.
        const bool shown = len > 0 && cp >= 0xa0 && !(cp >= 0x202a && cp <= 0x202e) &&
                           !(cp >= 0x2066 && cp <= 0x2069);
        const size_t k = len > 0 ? len : 1;
        for (size_t j = 0; j < k; ++j) {
            if (shown) {
                out += static_cast<char>(p[i + j]);
            } else {
                char hex[8];
                (void)std::snprintf(hex, sizeof hex, "\\x%02x", p[i + j]);
                out += hex;
            }
        }
        i += k;
    }
    return out;
}

namespace {
// CLI11's "The following arguments were not expected: --bogus d" as the words it means:
// "unknown option '--bogus'", "unexpected argument 'd'".
std::string extras_message(const std::string& what) {
    const auto colon = what.find(": ");
    if (what.rfind("The following argument", 0) != 0 || colon == std::string::npos) return what;
    std::istringstream in(what.substr(colon + 2));
    std::vector<std::string> words;
    for (std::string w; in >> w;) words.push_back(w);
    std::string options, args;
    // CLI11 lists them last first.
    for (auto it = words.rbegin(); it != words.rend(); ++it) {
        const std::string& w = *it;
        std::string& list = (w.size() > 1 && w[0] == '-') ? options : args;
        list += (list.empty() ? "'" : ", '") + printable(w) + "'";
    }
    std::string out;
    if (!options.empty()) {
        out = (options.find(", ") == std::string::npos ? "unknown option " : "unknown options ") +
              options;
    }
    if (!args.empty()) {
        out += (out.empty() ? "" : "; ") +
               std::string(args.find(", ") == std::string::npos ? "unexpected argument "
                                                                : "unexpected arguments ") +
               args;
    }
    return out.empty() ? what : out;
}
}  // namespace

int run(int argc, char** argv, CLI::App& app, const std::function<int()>& body) {
    std::signal(SIGPIPE, SIG_IGN);
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        std::cout << app.help();
        return kOk;
    } catch (const CLI::CallForAllHelp& e) {
        std::cout << app.help("", CLI::AppFormatMode::All);
        return kOk;
    } catch (const CLI::CallForVersion& e) {
        std::cout << e.what() << "\n";
        return kOk;
    } catch (const CLI::ExtrasError& e) {
        warn(extras_message(e.what()) + " (see --help)");
        return kUsage;
    } catch (const CLI::ParseError& e) {
        warn(std::string(e.what()) + " (see --help)");
        return kUsage;
    }
    try {
        return body();
    } catch (const CLI::ParseError& e) {
        warn(std::string(e.what()) + " (see --help)");
        return kUsage;
    } catch (const std::exception& e) {
        warn(std::string("internal error: ") + e.what());
        return kError;
    }
}

bool make_std_fds_valid() noexcept {
    for (int fd = 0; fd <= 2; ++fd) {
        if (::fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
        // The opposite direction: reading stdin or writing stdout/stderr then fails.
        int nfd = ::open("/dev/null", (fd == 0 ? O_WRONLY : O_RDONLY) | O_NOCTTY);
        if (nfd < 0) {
            int p[2];
            if (::pipe(p) != 0) return false;
            ::close(fd == 0 ? p[0] : p[1]);
            nfd = fd == 0 ? p[1] : p[0];
        }
        if (nfd != fd) {
            const int r = ::dup2(nfd, fd);
            ::close(nfd);
            if (r != fd) return false;
        }
    }
    return true;
}

bool writable(int fd) noexcept {
    const int fl = ::fcntl(fd, F_GETFL);
    return fl >= 0 && (fl & O_ACCMODE) != O_RDONLY;
}

int64_t unread_bytes(int fd) noexcept {
    int n = 0;
    if (::ioctl(fd, FIONREAD, &n) != 0) return -1;
    return n;
}

int guard(int (*tool_main)(int, char**), int argc, char** argv) noexcept {
    // Before anything is opened: a queue file must never become descriptor 0, 1 or 2.
    if (!make_std_fds_valid()) return kError;
    try {
        return tool_main(argc, argv);
    } catch (const std::exception& e) {
        warn(std::string("internal error: ") + e.what());
    } catch (...) {
        warn("internal error");
    }
    return kError;
}

namespace {

// How write_all() writes to a descriptor (decided at the first write to it).
enum class Sink : unsigned char {
    unknown,
    plain,   // write(); EAGAIN (a descriptor that is non-blocking) waits for POLLOUT
    socket,  // send(MSG_DONTWAIT | MSG_NOSIGNAL), EAGAIN waits for POLLOUT
    paced,   // a blocking pipe or terminal: POLLOUT, then at most PIPE_BUF bytes
};
Sink g_sink[3] = {Sink::unknown, Sink::unknown, Sink::unknown};

// Makes a standard descriptor's writes interruptible (see write_all in cli.h).
Sink prepare_sink(int fd) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) return Sink::plain;
    if (S_ISSOCK(st.st_mode)) return Sink::socket;
    if (!S_ISFIFO(st.st_mode) && !(S_ISCHR(st.st_mode) && ::isatty(fd) == 1)) {
        return Sink::plain;  // regular files, /dev/null...: writes do not wait for a reader
    }
    const int fl = ::fcntl(fd, F_GETFL);
    if (fl < 0 || (fl & O_ACCMODE) == O_RDONLY) return Sink::plain;  // writes fail anyway
    if ((fl & O_NONBLOCK) != 0) return Sink::plain;                  // EAGAIN is handled
    // A new open file description of the same pipe or terminal, non-blocking, in place of
    // ours: the description we share with the shell (and its other children) stays as is.
    char path[40];
    (void)std::snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    const int nfd = ::open(path, O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC | (fl & O_APPEND));
    if (nfd >= 0) {
        struct stat nst {};
        const bool same =
            ::fstat(nfd, &nst) == 0 && nst.st_dev == st.st_dev && nst.st_ino == st.st_ino;
        const bool moved = same && ::dup2(nfd, fd) == fd;
        ::close(nfd);
        if (moved) return Sink::plain;
    }
    return Sink::paced;  // no /proc (or no permission): small writes after POLLOUT
}

Sink sink_of(int fd) {
    if (fd < 0 || fd > 2) return Sink::plain;
    if (g_sink[fd] == Sink::unknown) g_sink[fd] = prepare_sink(fd);
    return g_sink[fd];
}

// Waits until fd is writable (or has an error the next write reports), with the
// termination signals deliverable. False with errno EINTR once a signal arrived.
bool wait_writable(int fd) {
    for (;;) {
        pollfd p{fd, POLLOUT, 0};
        const int n = poll_signals(&p, 1, -1);
        if (n > 0) return true;
        if (n < 0 && errno != EINTR) return false;
        if (g_signal != 0) {
            errno = EINTR;
            return false;
        }
    }
}

}  // namespace

bool write_all(int fd, const void* p, size_t n, size_t* written) {
    const char* c = static_cast<const char*>(p);
    const char* const begin = c;
    // Bytes written so far, also when a later write fails (a consumer that left mid-way).
    auto report = [&](bool ok) {
        if (written != nullptr) *written = static_cast<size_t>(c - begin);
        return ok;
    };
    const Sink sink = sink_of(fd);
    while (n > 0) {
        size_t chunk = n;
        if (sink == Sink::paced) {
            if (!wait_writable(fd)) return report(false);
            chunk = std::min<size_t>(n, PIPE_BUF);
        }
        const ssize_t w = sink == Sink::socket ? ::send(fd, c, chunk, MSG_DONTWAIT | MSG_NOSIGNAL)
                                               : ::write(fd, c, chunk);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                if (!wait_writable(fd)) return report(false);
                continue;
            }
            if (errno == EINTR && g_signal == 0) continue;
            return report(false);
        }
        c += w;
        n -= static_cast<size_t>(w);
    }
    return report(true);
}

Output::Output(int fd, size_t capacity)
    : fd_(fd), buf_(std::make_unique_for_overwrite<char[]>(capacity)), cap_(capacity) {}

bool Output::put(const void* p, size_t n) {
    if (failed_) return false;
    if (len_ + n > cap_) {
        if (!flush()) return false;
        if (n > cap_) {
            size_t done = 0;
            const bool ok = write_all(fd_, p, n, &done);
            written_ += done;
            if (!ok) {
                failed_ = true;
                errno_ = errno;
            }
            return ok;
        }
    }
    std::memcpy(buf_.get() + len_, p, n);
    len_ += n;
    return true;
}

bool Output::put_char(char c) {
    if (len_ == cap_ && !flush()) return false;
    buf_[len_++] = c;
    return !failed_;
}

bool Output::flush() {
    if (failed_) return false;
    if (len_ == 0) return true;
    size_t done = 0;
    const bool ok = write_all(fd_, buf_.get(), len_, &done);
    // A failed flush still counts what got out: a consumer that read part of it and left
    // has those bytes, and written() minus the pipe's unread bytes says how many.
    written_ += done;
    if (!ok) {
        failed_ = true;
        errno_ = errno;
        std::memmove(buf_.get(), buf_.get() + done, len_ - done);
        len_ -= done;
        return false;
    }
    len_ = 0;
    return true;
}

}  // namespace chronicle::cli
