// chronicle tools — shared CLI helpers (see cli.h).
#include "cli.h"

#include <poll.h>
#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>
#include <iostream>

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
const std::string& tool() {
    return g_tool;
}

int report(const Status& st) {
    std::string line = g_tool + ": " + st.message() + "\n";
    (void)write_all(2, line.data(), line.size());
    return exit_code(st.code());
}

void warn(std::string_view what) {
    std::string line = g_tool + ": " + std::string(what) + "\n";
    (void)write_all(2, line.data(), line.size());
}

uint64_t parse_size(const std::string& s) {
    char* end = nullptr;
    errno = 0;
    const unsigned long long v = std::strtoull(s.c_str(), &end, 10);
    if (end == s.c_str() || errno != 0 || s[0] == '-') {
        throw CLI::ValidationError("size", "'" + s + "' is not a size (e.g. 4096, 64K, 16M, 1G)");
    }
    std::string suffix(end);
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
        throw CLI::ValidationError("size", "'" + s + "': unknown unit '" + suffix + "'");
    }
    if (v > UINT64_MAX / mul) throw CLI::ValidationError("size", "'" + s + "' is too large");
    return v * mul;
}

uint64_t parse_duration_ns(const std::string& s) {
    char* end = nullptr;
    errno = 0;
    const double v = std::strtod(s.c_str(), &end);
    if (end == s.c_str() || errno != 0 || !(v >= 0) || !std::isfinite(v)) {
        throw CLI::ValidationError("duration",
                                   "'" + s + "' is not a duration (e.g. 500ms, 10s, 5m, 2h, 1d)");
    }
    const std::string unit(end);
    double mul = 1e9;
    if (unit.empty() || unit == "s") {
        mul = 1e9;
    } else if (unit == "ms") {
        mul = 1e6;
    } else if (unit == "us") {
        mul = 1e3;
    } else if (unit == "ns") {
        mul = 1;
    } else if (unit == "m" || unit == "min") {
        mul = 60e9;
    } else if (unit == "h") {
        mul = 3600e9;
    } else if (unit == "d") {
        mul = 86400e9;
    } else {
        throw CLI::ValidationError("duration", "'" + s + "': unknown unit '" + unit + "'");
    }
    const double ns = v * mul;
    if (ns > 9.2e18) throw CLI::ValidationError("duration", "'" + s + "' is too long");
    return static_cast<uint64_t>(ns);
}

uint64_t parse_time_ns(const std::string& s) {
    auto bad = [&]() {
        return CLI::ValidationError("time", "'" + s +
                                                "' is not a time (e.g. 2026-11-24T13:05:00Z, "
                                                "2026-11-24 13:05, @1795528496)");
    };
    if (!s.empty() && s[0] == '@') {
        char* end = nullptr;
        const double v = std::strtod(s.c_str() + 1, &end);
        if (end == s.c_str() + 1 || *end != '\0' || !(v >= 0)) throw bad();
        return static_cast<uint64_t>(v * 1e9);
    }
    std::tm tm{};
    int consumed = 0;
    if (std::sscanf(s.c_str(), "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &consumed) !=
        3) {
        throw bad();
    }
    const char* p = s.c_str() + consumed;
    double frac = 0;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        int n = 0;
        if (std::sscanf(p + 1, "%2d:%2d%n", &tm.tm_hour, &tm.tm_min, &n) != 2) throw bad();
        p += 1 + n;
        if (*p == ':') {
            if (std::sscanf(p + 1, "%2d%n", &tm.tm_sec, &n) != 1) throw bad();
            p += 1 + n;
            if (*p == '.' || *p == ',') {
                const char* q = p + 1;
                double scale = 0.1;
                while (*q >= '0' && *q <= '9') {
                    frac += (*q - '0') * scale;
                    scale /= 10;
                    ++q;
                }
                p = q;
            }
        }
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    std::time_t t;
    if (*p == '\0') {
        tm.tm_isdst = -1;
        t = std::mktime(&tm);  // local time
    } else if ((*p == 'Z' || *p == 'z') && p[1] == '\0') {
        t = ::timegm(&tm);
    } else if (*p == '+' || *p == '-') {
        int hh = 0, mm = 0;
        if (std::sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2 &&
            std::sscanf(p + 1, "%2d%2d", &hh, &mm) < 1) {
            throw bad();
        }
        t = ::timegm(&tm) - (*p == '+' ? 1 : -1) * (hh * 3600 + mm * 60);
    } else {
        throw bad();
    }
    if (t < 0) throw bad();
    return static_cast<uint64_t>(t) * 1000000000ull + static_cast<uint64_t>(frac * 1e9);
}

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

int guard(int (*tool_main)(int, char**), int argc, char** argv) noexcept {
    try {
        return tool_main(argc, argv);
    } catch (const std::exception& e) {
        warn(std::string("internal error: ") + e.what());
    } catch (...) {
        warn("internal error");
    }
    return kError;
}

bool write_all(int fd, const void* p, size_t n) {
    const char* c = static_cast<const char*>(p);
    while (n > 0) {
        const ssize_t w = ::write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        c += w;
        n -= static_cast<size_t>(w);
    }
    return true;
}

Output::Output(int fd, size_t capacity)
    : fd_(fd), buf_(static_cast<char*>(std::malloc(capacity))), cap_(capacity) {
    if (buf_ == nullptr) throw std::bad_alloc();
}

Output::~Output() {
    std::free(buf_);
}

bool Output::put(const void* p, size_t n) {
    if (failed_) return false;
    if (len_ + n > cap_) {
        if (!flush()) return false;
        if (n > cap_) {
            if (!write_all(fd_, p, n)) {
                failed_ = true;
                errno_ = errno;
                return false;
            }
            return true;
        }
    }
    std::memcpy(buf_ + len_, p, n);
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
    if (len_ > 0 && !write_all(fd_, buf_, len_)) {
        failed_ = true;
        errno_ = errno;
        return false;
    }
    len_ = 0;
    return true;
}

}  // namespace chronicle::cli
