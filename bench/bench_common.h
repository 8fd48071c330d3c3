// chronicle benchmarks — shared helpers (header-only, C++20, Linux).
//
// Output convention (as in ../shared/bench-limits): one figure per line on stdout,
//   "<name> <value> <unit>"
// ratios as their own lines ("<name>.ratio <value> x"); notes on stderr, prefixed '#'.
// Benchmarks print figures; they never assert timings.
#pragma once

#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace bench {

inline uint64_t now_ns() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

// A note on stderr: "# ..." (never a figure).
inline void note(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
inline void note(const char* fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    std::fprintf(stderr, "# %s\n", buf);
    std::fflush(stderr);
}

[[noreturn]] inline void die(const char* what) {
    std::fprintf(stderr, "# fatal: %s: %s\n", what, std::strerror(errno));
    std::exit(2);
}

[[noreturn]] inline void fail(const std::string& what) {
    std::fprintf(stderr, "# fatal: %s\n", what.c_str());
    std::exit(2);
}

inline bool pin_to_cpu(int cpu) {
    if (cpu < 0) return false;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof(set), &set) == 0;
}

inline void unpin() {
    cpu_set_t set;
    CPU_ZERO(&set);
    const long n = sysconf(_SC_NPROCESSORS_ONLN);
    for (long i = 0; i < n && i < CPU_SETSIZE; ++i) CPU_SET(int(i), &set);
    sched_setaffinity(0, sizeof(set), &set);
}

// Nearest-rank percentile on a copy (p in [0,100]) — the method of bench-limits/common.h.
inline double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0.0;
    std::sort(v.begin(), v.end());
    const double rank = p / 100.0 * double(v.size() - 1);
    size_t i = size_t(rank + 0.5);
    if (i >= v.size()) i = v.size() - 1;
    return v[i];
}

inline double median(std::vector<double> v) {
    return percentile(std::move(v), 50.0);
}

inline void emit(const std::string& name, double value, const char* unit) {
    std::printf("%s %.6g %s\n", name.c_str(), value, unit);
    std::fflush(stdout);
}

// Writes samples, one per line, to PREFIX.NAME.txt when --dump PREFIX was given.
inline void dump(const std::string& prefix, const std::string& name, const std::vector<double>& v) {
    if (prefix.empty()) return;
    FILE* f = std::fopen((prefix + "." + name + ".txt").c_str(), "w");
    if (f == nullptr) return;
    for (double x : v) std::fprintf(f, "%.3f\n", x);
    std::fclose(f);
}

inline void emit_ratio(const std::string& name, double num, double den) {
    if (den > 0) emit(name + ".ratio", num / den, "x");
}

// One value per repetition for each figure; prints "<name>.med" (median over reps) and
// "<name>.best" (max if higher_better, else min) in insertion order.
class Reps {
  public:
    void add(const std::string& name, double v, const char* unit, bool higher_better) {
        auto it = idx_.find(name);
        if (it == idx_.end()) {
            idx_[name] = rows_.size();
            rows_.push_back(Row{name, unit, higher_better, {v}});
        } else {
            rows_[it->second].vals.push_back(v);
        }
    }
    [[nodiscard]] double med(const std::string& name) const {
        auto it = idx_.find(name);
        return it == idx_.end() ? 0.0 : median(rows_[it->second].vals);
    }
    [[nodiscard]] double best(const std::string& name) const {
        auto it = idx_.find(name);
        if (it == idx_.end()) return 0.0;
        const Row& r = rows_[it->second];
        return r.higher_better ? *std::max_element(r.vals.begin(), r.vals.end())
                               : *std::min_element(r.vals.begin(), r.vals.end());
    }
    void print() const {
        for (const auto& r : rows_) {
            emit(r.name + ".med", med(r.name), r.unit.c_str());
            emit(r.name + ".best", best(r.name), r.unit.c_str());
        }
    }

  private:
    struct Row {
        std::string name;
        std::string unit;
        bool higher_better;
        std::vector<double> vals;
    };
    std::vector<Row> rows_;
    std::map<std::string, size_t> idx_;
};

// Tiny argv helper: "--key=value" or "--key value".
inline std::string arg(int argc, char** argv, const char* key, const char* def) {
    const size_t kl = std::strlen(key);
    for (int i = 1; i < argc; ++i) {
        if (std::strncmp(argv[i], key, kl) == 0) {
            if (argv[i][kl] == '=') return argv[i] + kl + 1;
            if (argv[i][kl] == 0 && i + 1 < argc) return argv[i + 1];
        }
    }
    return def;
}

inline long argl(int argc, char** argv, const char* key, long def) {
    const std::string s = arg(argc, argv, key, "");
    return s.empty() ? def : std::strtol(s.c_str(), nullptr, 10);
}

inline std::vector<int> arg_list(int argc, char** argv, const char* key, const char* def) {
    const std::string s = arg(argc, argv, key, def);
    std::vector<int> out;
    size_t i = 0;
    while (i < s.size()) {
        size_t j = s.find(',', i);
        if (j == std::string::npos) j = s.size();
        if (j > i) out.push_back(std::atoi(s.substr(i, j - i).c_str()));
        i = j + 1;
    }
    return out;
}

// Absolute-time pacing on CLOCK_MONOTONIC (no drift).
class Pacer {
  public:
    explicit Pacer(long gap_us) : gap_ns_(gap_us * 1000L) {
        clock_gettime(CLOCK_MONOTONIC, &next_);
    }
    void wait() {
        next_.tv_nsec += gap_ns_;
        while (next_.tv_nsec >= 1000000000L) {
            next_.tv_nsec -= 1000000000L;
            ++next_.tv_sec;
        }
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next_, nullptr) == EINTR) {
        }
    }

  private:
    long gap_ns_;
    timespec next_;
};

inline void sleep_ms(long ms) {
    timespec ts{ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

// In a forked child: die with the parent, so that nothing outlives the benchmark.
inline void die_with_parent() {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() == 1) _exit(3);
}

// Waits for a child for at most `timeout_ms`; then SIGTERM, then SIGKILL. Never hangs.
// Returns the wait status, or -1 if it had to be killed.
inline int reap(pid_t pid, long timeout_ms, const char* what) {
    if (pid <= 0) return -1;
    int st = 0;
    const uint64_t deadline = now_ns() + uint64_t(timeout_ms) * 1000000ull;
    for (int sig : {0, SIGTERM, SIGKILL}) {
        if (sig != 0) {
            note("%s (pid %d) did not exit in time: sending %s", what, int(pid),
                 sig == SIGTERM ? "SIGTERM" : "SIGKILL");
            kill(pid, sig);
        }
        const uint64_t until = sig == 0 ? deadline : now_ns() + 2000000000ull;
        for (;;) {
            const pid_t r = waitpid(pid, &st, WNOHANG);
            if (r == pid) return sig == 0 ? st : -1;
            if (r < 0) return -1;
            if (now_ns() >= until) break;
            sleep_ms(2);
        }
    }
    return -1;
}

// Sends SIGTERM and reaps (for children that run until told to stop, like tail -f).
inline void stop_child(pid_t pid, const char* what) {
    if (pid <= 0) return;
    kill(pid, SIGTERM);
    reap(pid, 3000, what);
}

}  // namespace bench

// ---------------------------------------------------------------------------------------
// The raw floor of a wake-up, measured as bench-limits/wake.cpp "paced" does: a forked
// reader blocks in read() on an eventfd; every `gap_us` the writer stores a send time
// (CLOCK_MONOTONIC) and a sequence in shared memory, then writes the eventfd; the reader
// stamps its arrival. Returns one-way latencies in microseconds.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include <atomic>
#include <new>

namespace bench {

// Two CPUs this process may run on, or {-1, -1} when it may use only one.
inline std::pair<int, int> two_cpus() {
    cpu_set_t s;
    CPU_ZERO(&s);
    if (sched_getaffinity(0, sizeof s, &s) != 0) return {-1, -1};
    int a = -1;
    for (int c = 0; c < CPU_SETSIZE; ++c) {
        if (!CPU_ISSET(c, &s)) continue;
        if (a < 0) {
            a = c;
        } else {
            return {a, c};
        }
    }
    return {-1, -1};
}

// `as_follower`: the reader waits as a follower must — in epoll_wait with a timeout (2 s),
// its eventfd edge-triggered beside a pidfd of the writer (to see it die) — instead of a
// blocking read(): the floor of a wake-up for a reader that also watches its writer.
// `waker_cpu`/`wakee_cpu` >= 0 pin the writer (for the run) and the reader to those CPUs.
inline std::vector<double> raw_eventfd_paced(int n, long gap_us, bool as_follower = false,
                                             int waker_cpu = -1, int wakee_cpu = -1) {
    // Shared page(s): the sequence word, then t0[n + 1], then lat[n + 1].
    const size_t bytes = 64 + size_t(2 * (n + 1)) * sizeof(uint64_t);
    auto* base = static_cast<char*>(
        mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
    if (base == MAP_FAILED) die("mmap");
    auto* word = new (base) std::atomic<uint32_t>(0);
    auto* t0 = reinterpret_cast<uint64_t*>(base + 64);
    uint64_t* lat = t0 + n + 1;
    const int efd = eventfd(0, EFD_CLOEXEC);
    if (efd < 0) die("eventfd");
    const pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        die_with_parent();
        if (wakee_cpu >= 0 && !pin_to_cpu(wakee_cpu)) _exit(1);
        int ep = -1;
        if (as_follower) {
            const int pidfd = int(syscall(SYS_pidfd_open, getppid(), 0));
            ep = epoll_create1(EPOLL_CLOEXEC);
            epoll_event ev{};
            ev.events = EPOLLIN | EPOLLET;
            ev.data.u64 = 0;
            if (pidfd < 0 || ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev) != 0) _exit(1);
            ev.events = EPOLLIN;
            ev.data.u64 = 1;
            if (epoll_ctl(ep, EPOLL_CTL_ADD, pidfd, &ev) != 0) _exit(1);
        }
        uint32_t last = 0;
        while (last < uint32_t(n)) {
            if (as_follower) {
                epoll_event evs[4];
                const int k = epoll_wait(ep, evs, 4, 2000);
                if (k < 0 && errno != EINTR) _exit(1);
                if (k > 0 && evs[0].data.u64 == 1) _exit(1);  // the writer died
            } else {
                uint64_t cnt;
                if (read(efd, &cnt, 8) != 8) _exit(1);
            }
            const uint64_t t = now_ns();
            const uint32_t v = word->load(std::memory_order_acquire);
            // Woken late, the reader may find several sends: each arrived now.
            for (uint32_t j = last + 1; j <= v && j <= uint32_t(n); ++j) lat[j] = t - t0[j];
            if (v > last) last = v;
        }
        _exit(0);
    }
    cpu_set_t saved;
    const bool pinned =
        waker_cpu >= 0 && sched_getaffinity(0, sizeof saved, &saved) == 0 && pin_to_cpu(waker_cpu);
    sleep_ms(50);  // the reader blocks
    Pacer pace(gap_us);
    for (int i = 1; i <= n; ++i) {
        pace.wait();
        t0[i] = now_ns();
        word->store(uint32_t(i), std::memory_order_release);
        const uint64_t one = 1;
        if (write(efd, &one, 8) != 8) die("eventfd write");
    }
    if (pinned) (void)sched_setaffinity(0, sizeof saved, &saved);
    reap(pid, 5000, "eventfd reader");
    close(efd);
    std::vector<double> out;
    for (int i = 1; i <= n; ++i)
        if (lat[i] != 0) out.push_back(double(lat[i]) / 1000.0);
    munmap(base, bytes);
    if (out.size() < size_t(n)) note("raw eventfd: %zu of %d wake-ups measured", out.size(), n);
    return out;
}

}  // namespace bench
