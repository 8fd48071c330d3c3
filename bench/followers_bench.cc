// bench_followers: what many parked followers cost, with 1, 100 and 1000 of them, each
// figure beside a baseline from the same run (0 followers, or raw eventfds).
//
// Followers are real chronicle::Readers following the queue: threads of --procs helper
// processes (1: all in one; 0: one process per follower), forked before any Writer exists.
// Each follower loops
//   next() until nullopt; prepare_wait(); poll({fd(), stop}); stamp the wake (CLOCK_MONOTONIC)
// — the event-loop API, so that the thread sees every wake-up, also one without data (a new
// writer announcing itself). Each holds its own eventfd, FIFO, epoll fd and ephemeral cursor
// mapping, and is registered in readers/ (about 9 descriptors; the program raises
// RLIMIT_NOFILE to its hard limit). The writer is this process; the driver reads the
// followers' state from shared memory and blocks in poll() while it waits for them.
//
//   startup  (a) Writer::open() on a queue whose N followers are parked (and no writer):
//            the time until open() returns, and until the last follower was woken by the
//            writer's registration check (DESIGN §5: a new writer signals every sleeping
//            follower as it registers it) — the time until the notifier has registered
//            every follower. --startup-reps repetitions (the writer is closed in between
//            and the followers park again). Baseline: the same queue without followers.
//   rounds   (b)+(c) --rounds times: wait until all N followers are parked (and nothing
//            moved for 2 ms), then one append(). Measured: the append call's time (it runs
//            the wake-up scan), the writer process's CPU until every follower woke (append
//            thread + notifier thread + anything else in the writer, less the driver's
//            own waiting), and the last (and first) follower's wake time minus the time
//            taken just before the append call. p50/p99 over rounds. Baseline for the
//            append: the same rounds with 0 followers.
//   stream   (d) --stream-n appends paced at --gap-us (1 ms) while the N followers follow
//            (each woken follower reads, then parks again): p50/p99 of each append call.
//            Baseline: the same stream with 0 followers. Floors, in a second pass: one
//            eventfd write that wakes a sleeping SCHED_BATCH thread pinned to this
//            thread's CPU, and one pinned to another CPU, timed in each tick beside the
//            appends (what an append that hands the wake-ups to the notifier thread pays
//            at least). Then the stream at --fast-gap-us (20 us, 5x the appends): appends
//            arrive while the notifier thread still wakes followers.
//   raw      the floors, same rounds, same helper threads, same nesting (an epoll fd polled
//            with poll(), as a follower's fd() is):
//            raw_fanout     N eventfds, one per thread; the driver writes all N in a loop
//                           (what the notifier does, without the registry).
//            raw_broadcast  ONE eventfd in every thread's epoll set, EPOLLET, never read;
//                           the driver writes it once (the broadcast design of issue 8).
//
// Output: figures on stdout ("<name> <value> <unit>", ratios as "<name>.ratio <value> x");
// notes and a summary table on stderr ("# ..."). It never asserts timings.
//
// Usage: bench_followers --dir DIR [--counts 1,100,1000] [--procs 1] [--rounds 200]
//                        [--startup-reps 5] [--stream-n 1000] [--gap-us 1000] [--fast-gap-us 20]
//                        [--modes raw,lib]
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <filesystem>
#include <memory>
#include <new>
#include <thread>

#include "bench_common.h"
#include "chronicle/reader.h"
#include "chronicle/writer.h"

using namespace bench;
using chronicle::Reader;
using chronicle::Writer;
namespace stdfs = std::filesystem;

namespace {

constexpr size_t kPayload = 64;
constexpr size_t kStack = 256 * 1024;  // follower thread stacks (1000 threads)

enum class Mode : int { lib, raw_fanout, raw_broadcast };

const char* mode_name(Mode m) {
    switch (m) {
        case Mode::lib:
            return "lib";
        case Mode::raw_fanout:
            return "raw_fanout";
        case Mode::raw_broadcast:
            return "raw_broadcast";
    }
    return "?";
}

// One follower's state, written by its thread, read by the driver (shared memory).
struct alignas(64) Slot {
    std::atomic<uint64_t> parks{0};       // +1 just before it blocks in poll()
    std::atomic<uint64_t> wakes{0};       // +1 just after poll() returns
    std::atomic<uint64_t> first_wake{0};  // set once (0 -> t) per round; reset by the driver
    std::atomic<int> state{0};            // 0 starting, 1 ready, -1 failed
};

struct Ctl {
    std::atomic<int> stop{0};
    std::atomic<int> target{0};  // wake-ups the driver waits for in this round
    std::atomic<int> woken{0};   // followers woken so far in this round
};

struct Shared {
    Ctl* ctl = nullptr;
    Slot* slots = nullptr;
    size_t bytes = 0;
};

Shared map_shared(int n) {
    Shared s;
    s.bytes = 4096 + size_t(std::max(n, 1)) * sizeof(Slot);
    void* p = mmap(nullptr, s.bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) die("mmap");
    s.ctl = new (p) Ctl();
    s.slots = reinterpret_cast<Slot*>(static_cast<char*>(p) + 4096);
    for (int i = 0; i < n; ++i) new (&s.slots[i]) Slot();
    return s;
}

uint64_t thread_cpu_ns() {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

uint64_t process_cpu_ns() {
    timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

void raise_nofile() {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
}

void remove_queue(const std::string& dir) {
    std::error_code ec;
    stdfs::remove_all(dir, ec);
}

// ------------------------------------------------------------------- follower threads

struct Env {
    Mode mode = Mode::lib;
    std::string queue;
    Shared sh;
    int stop_fd = -1;           // eventfd, written once (never read) to stop everyone
    int done_fd = -1;           // eventfd: the follower completing a round's count writes it
    const int* efds = nullptr;  // raw_fanout: one eventfd per follower; raw_broadcast: [0]
};

struct ThreadArg {
    const Env* env;
    int idx;
};

// A follower observed a wake-up at t: the first one of the round counts.
void stamp(const Env& e, Slot& s, uint64_t t) {
    s.wakes.fetch_add(1, std::memory_order_release);
    uint64_t expect = 0;
    if (s.first_wake.compare_exchange_strong(expect, t)) {
        const int target = e.sh.ctl->target.load();
        if (e.sh.ctl->woken.fetch_add(1) + 1 == target) {
            const uint64_t one = 1;
            (void)!write(e.done_fd, &one, sizeof one);
        }
    }
}

// Blocks until fd or the stop eventfd is readable. Returns false on stop.
bool park(const Env& e, Slot& s, int fd) {
    pollfd p[2] = {{fd, POLLIN, 0}, {e.stop_fd, POLLIN, 0}};
    s.parks.fetch_add(1, std::memory_order_release);
    for (;;) {
        const int rc = poll(p, 2, -1);
        if (rc > 0) break;
        if (rc < 0 && errno != EINTR) return false;
    }
    const uint64_t t = now_ns();
    if (e.sh.ctl->stop.load() != 0) return false;
    stamp(e, s, t);
    return true;
}

void lib_follower(const Env& e, Slot& s, int idx) {
    chronicle::ReaderOptions ro;
    ro.start = chronicle::Position::end();
    auto r = Reader::open(e.queue, ro);
    if (!r) {
        note("follower %d: %s", idx, r.status().message().c_str());
        s.state.store(-1);
        return;
    }
    Reader& rd = *r.value();
    auto fd = rd.fd();  // registers it (readers/~anon.*.efd) now
    if (!fd || fd.value() < 0) {
        note("follower %d: fd(): %s", idx,
             fd ? "-1 (not registered: polling)" : fd.status().message().c_str());
        s.state.store(-1);
        return;
    }
    s.state.store(1);
    while (e.sh.ctl->stop.load() == 0) {
        for (;;) {
            auto rec = rd.next();
            if (!rec) {
                note("follower %d: next(): %s", idx, rec.status().message().c_str());
                s.state.store(-1);
                return;
            }
            if (!rec.value()) break;
        }
        auto armed = rd.prepare_wait();
        if (!armed) {
            note("follower %d: prepare_wait(): %s", idx, armed.status().message().c_str());
            s.state.store(-1);
            return;
        }
        if (!armed.value()) continue;  // records arrived: read them first
        if (!park(e, s, fd.value())) return;
    }
}

void raw_follower(const Env& e, Slot& s, int idx) {
    const int efd = e.mode == Mode::raw_fanout ? e.efds[idx] : e.efds[0];
    const int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
        note("raw follower %d: epoll_create1: %s", idx, std::strerror(errno));
        s.state.store(-1);
        return;
    }
    epoll_event ev{};
    // The broadcast is edge-triggered and never read: every write is a new edge for every
    // epoll instance watching it. The per-follower eventfd is level-triggered and drained.
    ev.events = e.mode == Mode::raw_broadcast ? (EPOLLIN | EPOLLET) : EPOLLIN;
    ev.data.fd = efd;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev) != 0) {
        note("raw follower %d: epoll_ctl: %s", idx, std::strerror(errno));
        s.state.store(-1);
        close(ep);
        return;
    }
    s.state.store(1);
    while (e.sh.ctl->stop.load() == 0) {
        if (!park(e, s, ep)) break;
        epoll_event evs[2];
        (void)epoll_wait(ep, evs, 2, 0);  // consumes the edge
        if (e.mode == Mode::raw_fanout) {
            uint64_t v;
            (void)!read(efd, &v, sizeof v);
        }
    }
    close(ep);
}

void* follower_main(void* p) {
    const auto* a = static_cast<const ThreadArg*>(p);
    Slot& s = a->env->sh.slots[a->idx];
    if (a->env->mode == Mode::lib) {
        lib_follower(*a->env, s, a->idx);
    } else {
        raw_follower(*a->env, s, a->idx);
    }
    return nullptr;
}

// A helper process: followers [lo, hi) as threads. Never returns.
[[noreturn]] void helper_main(const Env& e, int lo, int hi) {
    die_with_parent();
    std::vector<pthread_t> th;
    std::vector<ThreadArg> args(size_t(hi - lo));
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, kStack);
    for (int i = lo; i < hi; ++i) {
        args[size_t(i - lo)] = ThreadArg{&e, i};
        pthread_t t;
        const int rc = pthread_create(&t, &attr, follower_main, &args[size_t(i - lo)]);
        if (rc != 0) {
            note("helper: pthread_create for follower %d: %s", i, std::strerror(rc));
            e.sh.slots[i].state.store(-1);
            continue;
        }
        th.push_back(t);
    }
    for (pthread_t t : th) pthread_join(t, nullptr);
    _exit(0);
}

// --------------------------------------------------------------------------- driver side

class Followers {
  public:
    // Forks the helpers. The caller must not hold a Writer (no threads at fork).
    Followers(Mode mode, const std::string& queue, int n, int procs) : n_(n) {
        env_.mode = mode;
        env_.queue = queue;
        env_.sh = map_shared(n);
        env_.stop_fd = eventfd(0, EFD_CLOEXEC);
        env_.done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (env_.stop_fd < 0 || env_.done_fd < 0) die("eventfd");
        if (mode != Mode::lib) {
            efds_.resize(mode == Mode::raw_fanout ? size_t(n) : 1);
            for (int& fd : efds_) {
                fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
                if (fd < 0) die("eventfd");
            }
            env_.efds = efds_.data();
        }
        procs = procs <= 0 ? n : std::max(1, std::min(procs, n));
        for (int p = 0; p < procs; ++p) {
            const int lo = int(int64_t(n) * p / procs), hi = int(int64_t(n) * (p + 1) / procs);
            const pid_t pid = fork();
            if (pid < 0) die("fork");
            if (pid == 0) helper_main(env_, lo, hi);
            pids_.push_back(pid);
        }
    }

    ~Followers() { stop(); }

    // Waits until every follower is ready (or failed) and parked, and nothing moved for
    // 2 ms. Returns false on timeout.
    bool quiesce(long timeout_ms) {
        const uint64_t deadline = now_ns() + uint64_t(timeout_ms) * 1000000ull;
        for (;;) {
            uint64_t sum0 = 0;
            if (all_parked(sum0)) {
                sleep_ms(2);
                uint64_t sum1 = 0;
                if (all_parked(sum1) && sum1 == sum0) return true;
            }
            if (now_ns() > deadline) return false;
            sleep_ms(1);
        }
    }

    int live() const {
        int k = 0;
        for (int i = 0; i < n_; ++i) k += env_.sh.slots[i].state.load() == 1 ? 1 : 0;
        return k;
    }
    int failed() const {
        int k = 0;
        for (int i = 0; i < n_; ++i) k += env_.sh.slots[i].state.load() < 0 ? 1 : 0;
        return k;
    }

    // Before a measured event: forget the last round's wake-ups.
    void arm_round() {
        for (int i = 0; i < n_; ++i) env_.sh.slots[i].first_wake.store(0);
        env_.sh.ctl->woken.store(0);
        env_.sh.ctl->target.store(live());
        uint64_t v;
        (void)!read(env_.done_fd, &v, sizeof v);
    }

    // Blocks (no CPU) until every live follower was woken since arm_round().
    bool wait_all_woken(long timeout_ms) {
        if (env_.sh.ctl->woken.load() >= env_.sh.ctl->target.load()) return true;
        pollfd p{env_.done_fd, POLLIN, 0};
        const uint64_t deadline = now_ns() + uint64_t(timeout_ms) * 1000000ull;
        while (env_.sh.ctl->woken.load() < env_.sh.ctl->target.load()) {
            const uint64_t now = now_ns();
            if (now >= deadline) return false;
            (void)poll(&p, 1, int(std::min<uint64_t>((deadline - now) / 1000000 + 1, 1000)));
        }
        return true;
    }
    int woken() const { return env_.sh.ctl->woken.load(); }

    // First and last wake-up of this round.
    void wake_span(uint64_t& first, uint64_t& last) const {
        first = UINT64_MAX;
        last = 0;
        for (int i = 0; i < n_; ++i) {
            const uint64_t t = env_.sh.slots[i].first_wake.load();
            if (t == 0) continue;
            first = std::min(first, t);
            last = std::max(last, t);
        }
    }

    const std::vector<int>& efds() const { return efds_; }

    void stop() {
        if (pids_.empty()) return;
        env_.sh.ctl->stop.store(1);
        const uint64_t one = 1;
        (void)!write(env_.stop_fd, &one, sizeof one);
        for (pid_t p : pids_) {
            const int st = reap(p, 30000, "follower helper");
            if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
                note("follower helper %d exited abnormally (status %d)", int(p), st);
        }
        pids_.clear();
        for (int fd : efds_) close(fd);
        efds_.clear();
        close(env_.stop_fd);
        close(env_.done_fd);
        munmap(env_.sh.ctl, env_.sh.bytes);
    }

  private:
    bool all_parked(uint64_t& sum) const {
        sum = 0;
        for (int i = 0; i < n_; ++i) {
            const Slot& s = env_.sh.slots[i];
            const int st = s.state.load();
            if (st < 0) continue;
            if (st == 0) return false;
            const uint64_t w = s.wakes.load(std::memory_order_acquire);
            if (s.parks.load(std::memory_order_acquire) != w + 1) return false;
            sum += w;
        }
        return true;
    }

    int n_;
    Env env_;
    std::vector<int> efds_;
    std::vector<pid_t> pids_;
};

// Waits for the helpers' followers to be ready and parked; false (with a note) if not.
bool settle(Followers& f, int n, const char* what) {
    const uint64_t t0 = now_ns();
    const bool ok = f.quiesce(60000);
    note("%s: %d followers: %d ready, %d failed, %s after %.0f ms", what, n, f.live(), f.failed(),
         ok ? "all parked" : "NOT all parked (timeout)", double(now_ns() - t0) / 1e6);
    return ok && f.live() > 0;
}

std::unique_ptr<Writer> open_writer(const std::string& q) {
    auto w = Writer::open(q);
    if (!w) fail("cannot open writer on " + q + ": " + w.status().message());
    return std::move(w.value());
}

void append_one(Writer& w, uint64_t i) {
    alignas(8) char payload[kPayload] = {};
    std::memcpy(payload, &i, sizeof i);
    auto s = w.append(std::string_view(payload, kPayload));
    if (!s) fail("append: " + s.status().message());
}

// The wake-up floors of a tick: samples of a wake-up onto the appending thread's own CPU
// and onto another one.
struct WakeFloor {
    std::vector<double> same_cpu, other_cpu;
};

// Everything measured for one follower count (lib or raw).
struct Figures {
    int n = 0;
    Reps startup;                        // writer_open_ms, ..._cpu_ms, ..._to_all_woken_ms
    std::vector<double> append_us;       // the wake-triggering append call
    std::vector<double> append_cpu_us;   // CPU of the append thread in that call
    std::vector<double> writer_cpu_us;   // writer process CPU until all woken
    std::vector<double> first_wake_us;   // first follower woken - commit
    std::vector<double> last_wake_us;    // last follower woken - commit
    std::vector<double> stream_ns;       // paced appends while they follow
    std::vector<double> base_append_us;  // baseline: the same append, no followers
    std::vector<double> base_stream_ns;  // baseline: the same stream, no followers
    WakeFloor wake;                      // floors: one wake-up of a sleeping thread, same tick
    std::vector<double> fast_stream_ns;  // the stream at --fast-gap-us
    std::vector<double> fast_base_stream_ns;
    int rounds_incomplete = 0;
};

// "followers" with threads in one helper process; "followers_procs" with one process per
// follower (--procs 0); "followers_pK" with K helper processes.
std::string g_prefix = "followers";

std::string fname(int n) {
    return g_prefix + ".f" + std::to_string(n);
}

// ----------------------------------------------------------------------------- raw floors

Figures run_raw(Mode mode, int n, int procs, int rounds) {
    Figures r;
    r.n = n;
    Followers f(mode, "", n, procs);
    if (!settle(f, n, mode_name(mode))) return r;
    const std::vector<int>& efds = f.efds();
    for (int k = 0; k < rounds; ++k) {
        if (!f.quiesce(10000)) {
            note("%s n=%d: followers did not park again", mode_name(mode), n);
            break;
        }
        sleep_ms(1);
        f.arm_round();
        const uint64_t c0 = thread_cpu_ns();
        const uint64_t t0 = now_ns();
        const uint64_t one = 1;
        for (int fd : efds) (void)!write(fd, &one, sizeof one);
        const uint64_t t1 = now_ns();
        const uint64_t c1 = thread_cpu_ns();
        if (!f.wait_all_woken(5000)) {
            ++r.rounds_incomplete;
            continue;
        }
        uint64_t first, last;
        f.wake_span(first, last);
        r.append_us.push_back(double(t1 - t0) / 1e3);
        r.append_cpu_us.push_back(double(c1 - c0) / 1e3);
        r.writer_cpu_us.push_back(double(c1 - c0) / 1e3);
        r.first_wake_us.push_back(double(first - t0) / 1e3);
        r.last_wake_us.push_back(double(last - t0) / 1e3);
    }
    if (r.rounds_incomplete > 0)
        note("%s n=%d: UNEXPECTED: %d rounds did not wake every follower within 5 s",
             mode_name(mode), n, r.rounds_incomplete);
    return r;
}

// ----------------------------------------------------------------------------- library

// A thread asleep in poll() on an eventfd, SCHED_BATCH as the writer's notifier thread,
// pinned to one CPU: one write to the eventfd is one wake-up of a sleeping thread on that
// CPU — what an append that hands its followers' wake-ups to the notifier thread pays at
// least. On a VM of this kind a wake-up onto another, idle vCPU costs the waker ~30 us
// (the IPI to a halted vCPU), one onto its own CPU ~2 us: the floors are timed for both.
class Sleeper {
  public:
    explicit Sleeper(int cpu) : efd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
        if (efd_ < 0) die("eventfd");
        th_ = std::thread([this, cpu] {
            sched_param sp{};
            (void)sched_setscheduler(0, SCHED_BATCH, &sp);
            (void)pin_to_cpu(cpu);
            pollfd p{efd_, POLLIN, 0};
            while (!stop_.load()) {
                (void)poll(&p, 1, -1);
                uint64_t v;
                (void)!read(efd_, &v, sizeof v);
            }
        });
    }
    ~Sleeper() {
        stop_.store(true);
        poke();
        th_.join();
        close(efd_);
    }
    void poke() const {
        const uint64_t one = 1;
        (void)!write(efd_, &one, sizeof one);
    }

  private:
    int efd_;
    std::atomic<bool> stop_{false};
    std::thread th_;
};

// Each tick: one timed append on each queue, in alternating order, so that the baseline
// queue (no followers) sees the same machine load as the followers' queue. With `wake`,
// also one timed wake-up of a Sleeper on this thread's CPU and one on another CPU, the four
// in rotating order: a pass of its own, because more wake-ups in the tick load the machine
// further (with 1 follower the append's own wake-up took 2.8 -> 24 us p50 beside one).
void stream_ab(Writer& w0, Writer& w, uint64_t& s0, uint64_t& s, int n, long gap_us,
               std::vector<double>& out0, std::vector<double>& out, WakeFloor* wake = nullptr) {
    const int warm = std::min(100, n / 5);
    // Sleepers on two CPUs this process may use; each tick times the one on the appending
    // thread's CPU and the one on the other.
    const auto [cpu_a, cpu_b] = wake != nullptr ? two_cpus() : std::pair<int, int>{-1, -1};
    std::unique_ptr<Sleeper> on_a, on_b;
    if (cpu_b >= 0) {
        on_a = std::make_unique<Sleeper>(cpu_a);
        on_b = std::make_unique<Sleeper>(cpu_b);
        sleep_ms(2);  // they sleep
    }
    auto sleeper_at = [&](int cpu, bool other) -> const Sleeper* {
        if (cpu != cpu_a && cpu != cpu_b) return nullptr;
        return (cpu == cpu_a) != other ? on_a.get() : on_b.get();
    };
    const int ops = wake != nullptr ? 4 : 2;
    Pacer pace(gap_us);
    for (int j = 0; j < warm + n; ++j) {
        pace.wait();
        double t[4] = {-1, -1, -1, -1};
        for (int k = 0; k < ops; ++k) {
            const int op = (j + k) % ops;
            const Sleeper* sl = nullptr;
            if (op >= 2) {
                const int cpu = sched_getcpu();
                sl = cpu < 0 ? nullptr : sleeper_at(cpu, op == 3);
                if (sl == nullptr) continue;
            }
            const uint64_t t0 = now_ns();
            if (op == 0) {
                append_one(w0, ++s0);
            } else if (op == 1) {
                append_one(w, ++s);
            } else {
                sl->poke();
            }
            t[op] = double(now_ns() - t0);
        }
        if (j >= warm) {
            out0.push_back(t[0]);
            out.push_back(t[1]);
            if (wake != nullptr && t[2] >= 0) wake->same_cpu.push_back(t[2]);
            if (wake != nullptr && t[3] >= 0) wake->other_cpu.push_back(t[3]);
        }
    }
}

// N library followers on one queue; the baselines on a second queue without followers,
// interleaved with every measurement (same moment, same load).
Figures run_lib(const std::string& dir, int n, int procs, int rounds, int startup_reps,
                int stream_n, long gap_us, long fast_gap_us) {
    Figures r;
    r.n = n;
    const std::string q = dir + "/q_f" + std::to_string(n), q0 = dir + "/q_base";
    remove_queue(q);
    remove_queue(q0);
    open_writer(q).reset();  // creates the queues; followers need one to open
    open_writer(q0).reset();
    // Forked while this process has no Writer (and so no threads).
    Followers f(Mode::lib, q, n, procs);
    if (!settle(f, n, "lib")) return r;
    const std::string name = fname(n);
    std::unique_ptr<Writer> w, w0;
    // (a) start-up, followers parked and no writer.
    for (int k = 0; k < startup_reps; ++k) {
        if (!f.quiesce(20000)) note("lib n=%d: followers did not park before open", n);
        sleep_ms(5);
        {
            const uint64_t t0 = now_ns();
            w0 = open_writer(q0);
            r.startup.add(name + ".base0.writer_open_ms", double(now_ns() - t0) / 1e6, "ms", false);
            w0.reset();
        }
        f.arm_round();
        const uint64_t c0 = thread_cpu_ns();
        const uint64_t t0 = now_ns();
        w = open_writer(q);
        const uint64_t t1 = now_ns();
        const uint64_t c1 = thread_cpu_ns();
        r.startup.add(name + ".writer_open_ms", double(t1 - t0) / 1e6, "ms", false);
        r.startup.add(name + ".writer_open_cpu_ms", double(c1 - c0) / 1e6, "ms", false);
        if (f.wait_all_woken(20000)) {
            uint64_t first, last;
            f.wake_span(first, last);
            r.startup.add(name + ".writer_open_to_all_woken_ms", double(last - t0) / 1e6, "ms",
                          false);
        } else {
            note("lib n=%d: UNEXPECTED: open() woke %d of %d parked followers within 20 s", n,
                 f.woken(), f.live());
        }
        if (k + 1 < startup_reps) {
            w.reset();  // the followers see its pidfd fire, and park again
            sleep_ms(20);
        }
    }
    w0 = open_writer(q0);
    // (b)+(c) one append with all followers parked; the baseline append just before it.
    uint64_t seq = 0, seq0 = 0;
    for (int k = 0; k < rounds; ++k) {
        if (!f.quiesce(10000)) {
            note("lib n=%d: followers did not park again", n);
            break;
        }
        sleep_ms(1);
        {
            const uint64_t t0 = now_ns();
            append_one(*w0, ++seq0);
            r.base_append_us.push_back(double(now_ns() - t0) / 1e3);
        }
        f.arm_round();
        const uint64_t p0 = process_cpu_ns(), c0 = thread_cpu_ns();
        const uint64_t t0 = now_ns();
        append_one(*w, ++seq);
        const uint64_t t1 = now_ns();
        const uint64_t c1 = thread_cpu_ns();
        r.append_us.push_back(double(t1 - t0) / 1e3);
        r.append_cpu_us.push_back(double(c1 - c0) / 1e3);
        if (!f.wait_all_woken(5000)) {
            ++r.rounds_incomplete;
            continue;
        }
        uint64_t first, last;
        f.wake_span(first, last);
        sleep_ms(1);  // the notifier thread returns to its poll()
        const uint64_t p1 = process_cpu_ns(), c2 = thread_cpu_ns();
        // Everything the writer process spent, less this thread's own waiting.
        r.writer_cpu_us.push_back(double((p1 - p0) - (c2 - c1)) / 1e3);
        r.first_wake_us.push_back(double(first - t0) / 1e3);
        r.last_wake_us.push_back(double(last - t0) / 1e3);
    }
    if (r.rounds_incomplete > 0)
        note("lib n=%d: UNEXPECTED: %d rounds did not wake every follower within 5 s", n,
             r.rounds_incomplete);
    // (d) a paced stream while they follow.
    f.quiesce(10000);
    sleep_ms(5);
    stream_ab(*w0, *w, seq0, seq, stream_n, gap_us, r.base_stream_ns, r.stream_ns);
    // (d') the wake-up floor, in a pass of its own (its appends are not reported).
    {
        f.quiesce(10000);
        sleep_ms(5);
        std::vector<double> a0, a;
        stream_ab(*w0, *w, seq0, seq, stream_n, gap_us, a0, a, &r.wake);
    }
    // (e) the same stream, faster: appends arrive while the notifier thread still wakes
    // followers.
    if (fast_gap_us > 0) {
        f.quiesce(10000);
        sleep_ms(5);
        stream_ab(*w0, *w, seq0, seq, stream_n * 5, fast_gap_us, r.fast_base_stream_ns,
                  r.fast_stream_ns);
    }
    f.stop();
    w.reset();
    w0.reset();
    remove_queue(q);
    remove_queue(q0);
    return r;
}

// ------------------------------------------------------------------------------ output

double p(const std::vector<double>& v, double q) {
    return percentile(v, q);
}

void emit_pct(const std::string& name, const std::vector<double>& v, const char* unit,
              const char* suffix) {
    if (v.empty()) return;
    emit(name + "_p50_" + suffix, p(v, 50), unit);
    emit(name + "_p99_" + suffix, p(v, 99), unit);
}

struct Row {
    int n;
    Figures lib, fan, bc;
};

std::string cell(const char* fmt, double v, bool have = true) {
    if (!have) return "-";
    char buf[64];
    std::snprintf(buf, sizeof buf, fmt, v);
    return buf;
}

std::string ratio_cell(double a, double b) {
    if (!(b > 0) || !(a > 0)) return "";
    char buf[32];
    std::snprintf(buf, sizeof buf, " (%.2gx)", a / b);
    return buf;
}

void print_row(const std::vector<std::string>& cols, const std::vector<int>& w) {
    std::string line = "#";
    for (size_t i = 0; i < cols.size(); ++i) {
        char buf[96];
        std::snprintf(buf, sizeof buf, " %*s", w[i], cols[i].c_str());
        line += buf;
    }
    std::fprintf(stderr, "%s\n", line.c_str());
}

std::string pair_cell(const std::vector<double>& v, const char* fmt) {
    if (v.empty()) return "-";
    return cell(fmt, p(v, 50)) + " / " + cell(fmt, p(v, 99));
}

// The summary on stderr: figures with ratios against the baselines of this run.
void print_tables(const std::vector<Row>& rows) {
    std::fprintf(stderr,
                 "#\n# %s (a) writer start-up, ms, medians over start-ups; base = the same "
                 "open() of a queue without followers, just before\n",
                 g_prefix.c_str());
    const std::vector<int> w1 = {9, 20, 10, 12, 16};
    print_row({"followers", "Writer::open (x base)", "base", "open CPU", "open->all woken"}, w1);
    for (const Row& r : rows) {
        const std::string nm = fname(r.n);
        const double open = r.lib.startup.med(nm + ".writer_open_ms");
        const double base = r.lib.startup.med(nm + ".base0.writer_open_ms");
        const double cpu = r.lib.startup.med(nm + ".writer_open_cpu_ms");
        const double all = r.lib.startup.med(nm + ".writer_open_to_all_woken_ms");
        print_row(
            {std::to_string(r.n), cell("%.2f", open, open > 0) + ratio_cell(open, base),
             cell("%.2f", base, base > 0), cell("%.2f", cpu, cpu > 0), cell("%.2f", all, all > 0)},
            w1);
    }
    std::fprintf(stderr,
                 "#\n# %s (b) the append that wakes N parked followers, and (d) appends paced "
                 "at 1 ms while they follow: p50 / p99;\n# base = the same appends to a queue "
                 "without followers, interleaved; (x) = p99 / base p99\n",
                 g_prefix.c_str());
    const std::vector<int> w2 = {9, 24, 14, 26, 16};
    print_row({"followers", "wake-all append us", "base us", "stream append ns", "base ns"}, w2);
    for (const Row& r : rows) {
        const Figures& L = r.lib;
        print_row({std::to_string(r.n),
                   pair_cell(L.append_us, "%.1f") +
                       ratio_cell(p(L.append_us, 99), p(L.base_append_us, 99)),
                   pair_cell(L.base_append_us, "%.1f"),
                   pair_cell(L.stream_ns, "%.0f") +
                       ratio_cell(p(L.stream_ns, 99), p(L.base_stream_ns, 99)),
                   pair_cell(L.base_stream_ns, "%.0f")},
                  w2);
    }
    std::fprintf(stderr,
                 "#\n# %s (b) the writer's CPU to wake all, us, p50 (x) = / raw fan-out CPU; "
                 "(c) wake-up after the commit, us, p50 / p99,\n# (x) = last p50 / raw fan-out "
                 "last p50. Raw floors (p50): the waker's write time / its CPU / last woken\n",
                 g_prefix.c_str());
    const std::vector<int> w3 = {9, 18, 12, 12, 22, 26, 26};
    print_row({"followers", "writer CPU (x raw)", "per follower", "first woken", "last woken",
               "raw fan-out, N writes", "raw broadcast, 1 write"},
              w3);
    for (const Row& r : rows) {
        const Figures& L = r.lib;
        const bool hc = !L.writer_cpu_us.empty(), hl = !L.last_wake_us.empty(),
                   hf = !r.fan.last_wake_us.empty(), hb = !r.bc.last_wake_us.empty();
        const double cpu = p(L.writer_cpu_us, 50);
        print_row({std::to_string(r.n),
                   cell("%.0f", cpu, hc) + ratio_cell(cpu, p(r.fan.writer_cpu_us, 50)),
                   cell("%.2f", cpu / double(r.n), hc), cell("%.1f", p(L.first_wake_us, 50), hl),
                   pair_cell(L.last_wake_us, "%.0f") +
                       ratio_cell(p(L.last_wake_us, 50), p(r.fan.last_wake_us, 50)),
                   cell("%.0f", p(r.fan.append_us, 50), hf) + " / " +
                       cell("%.0f", p(r.fan.writer_cpu_us, 50), hf) + " / " +
                       cell("%.0f", p(r.fan.last_wake_us, 50), hf),
                   cell("%.0f", p(r.bc.append_us, 50), hb) + " / " +
                       cell("%.0f", p(r.bc.writer_cpu_us, 50), hb) + " / " +
                       cell("%.0f", p(r.bc.last_wake_us, 50), hb)},
                  w3);
    }
}

}  // namespace

int main(int argc, char** argv) {
    const std::string dir = arg(argc, argv, "--dir", "");
    if (dir.empty())
        fail("usage: bench_followers --dir DIR [options] (see the header of followers_bench.cc)");
    const auto counts = arg_list(argc, argv, "--counts", "1,100,1000");
    const int procs = int(argl(argc, argv, "--procs", 1));
    const int rounds = int(argl(argc, argv, "--rounds", 200));
    const int startup_reps = int(argl(argc, argv, "--startup-reps", 5));
    const int stream_n = int(argl(argc, argv, "--stream-n", 1000));
    const long gap_us = argl(argc, argv, "--gap-us", 1000);
    const long fast_gap_us = argl(argc, argv, "--fast-gap-us", 20);
    const std::string modes = arg(argc, argv, "--modes", "raw,lib");
    const bool do_raw = modes.find("raw") != std::string::npos;
    const bool do_lib = modes.find("lib") != std::string::npos;
    if (procs <= 0) {
        g_prefix = "followers_procs";
    } else if (procs > 1) {
        g_prefix = "followers_p" + std::to_string(procs);
    }
    signal(SIGPIPE, SIG_IGN);
    raise_nofile();
    rlimit rl{};
    getrlimit(RLIMIT_NOFILE, &rl);
    const int max_n = counts.empty() ? 0 : *std::max_element(counts.begin(), counts.end());
    // Measured: a follower holds 9 descriptors (eventfd, FIFO, epoll, cursor, segment,
    // queue and readers/ directories, the writer's pidfd); the writer 2 per follower.
    if (rl.rlim_cur < rlim_t(10 * max_n + 64))
        note(
            "RLIMIT_NOFILE %llu is low for %d followers (about 10 descriptors each): some may "
            "fail to start",
            (unsigned long long)rl.rlim_cur, max_n);
    std::error_code ec;
    stdfs::create_directories(dir, ec);
    const std::string how = procs <= 0 ? std::string("one process per follower")
                                       : std::to_string(procs) + " helper process(es)";
    note(
        "%s: counts %s, followers as threads of %s, %d rounds, %d start-ups, stream of %d at "
        "%ld us; RLIMIT_NOFILE %llu",
        g_prefix.c_str(), arg(argc, argv, "--counts", "1,100,1000").c_str(), how.c_str(), rounds,
        startup_reps, stream_n, gap_us, (unsigned long long)rl.rlim_cur);

    std::vector<Row> rows;
    for (int n : counts) {
        if (n <= 0) continue;
        const uint64_t t0 = now_ns();
        Row row{n, {}, {}, {}};
        const std::string nm = fname(n);
        if (do_raw) {
            row.fan = run_raw(Mode::raw_fanout, n, procs, rounds);
            row.bc = run_raw(Mode::raw_broadcast, n, procs, rounds);
            emit_pct(nm + ".raw_fanout.write_all", row.fan.append_us, "us", "us");
            emit_pct(nm + ".raw_fanout.write_all_cpu", row.fan.writer_cpu_us, "us", "us");
            emit_pct(nm + ".raw_fanout.last_wake", row.fan.last_wake_us, "us", "us");
            emit_pct(nm + ".raw_broadcast.write", row.bc.append_us, "us", "us");
            emit_pct(nm + ".raw_broadcast.write_cpu", row.bc.writer_cpu_us, "us", "us");
            emit_pct(nm + ".raw_broadcast.last_wake", row.bc.last_wake_us, "us", "us");
            if (!row.fan.last_wake_us.empty() && !row.bc.last_wake_us.empty()) {
                emit_ratio(nm + ".raw_broadcast_vs_fanout_write_p50", p(row.bc.append_us, 50),
                           p(row.fan.append_us, 50));
                emit_ratio(nm + ".raw_broadcast_vs_fanout_last_wake_p50",
                           p(row.bc.last_wake_us, 50), p(row.fan.last_wake_us, 50));
            }
        }
        if (do_lib) {
            row.lib = run_lib(dir, n, procs, rounds, startup_reps, stream_n, gap_us, fast_gap_us);
            const Figures& L = row.lib;
            L.startup.print();
            emit_pct(nm + ".base0.wake_all.append", L.base_append_us, "us", "us");
            emit_pct(nm + ".wake_all.append", L.append_us, "us", "us");
            emit_pct(nm + ".wake_all.append_cpu", L.append_cpu_us, "us", "us");
            emit_pct(nm + ".wake_all.writer_cpu", L.writer_cpu_us, "us", "us");
            emit_pct(nm + ".first_wake", L.first_wake_us, "us", "us");
            emit_pct(nm + ".last_wake", L.last_wake_us, "us", "us");
            emit_pct(nm + ".base0.append_stream", L.base_stream_ns, "ns", "ns");
            emit_pct(nm + ".append_stream", L.stream_ns, "ns", "ns");
            emit_pct(nm + ".wake_same_cpu_stream", L.wake.same_cpu, "ns", "ns");
            emit_pct(nm + ".wake_other_cpu_stream", L.wake.other_cpu, "ns", "ns");
            if (!L.fast_stream_ns.empty()) {
                emit_pct(nm + ".fast.base0.append_stream", L.fast_base_stream_ns, "ns", "ns");
                emit_pct(nm + ".fast.append_stream", L.fast_stream_ns, "ns", "ns");
                emit_ratio(nm + ".fast.append_stream_p99_vs_base0", p(L.fast_stream_ns, 99),
                           p(L.fast_base_stream_ns, 99));
            }
            emit_ratio(nm + ".writer_open_vs_base0", L.startup.med(nm + ".writer_open_ms"),
                       L.startup.med(nm + ".base0.writer_open_ms"));
            if (!L.append_us.empty() && !L.base_append_us.empty()) {
                emit_ratio(nm + ".wake_all_append_p99_vs_base0", p(L.append_us, 99),
                           p(L.base_append_us, 99));
            }
            if (!L.stream_ns.empty() && !L.base_stream_ns.empty()) {
                emit_ratio(nm + ".append_stream_p99_vs_base0", p(L.stream_ns, 99),
                           p(L.base_stream_ns, 99));
                // The floor of an append that must wake someone: one wake-up of a
                // sleeping thread on another CPU (where the kernel puts a wakee when one
                // is idle), timed in the same ticks.
                if (!L.wake.other_cpu.empty()) {
                    emit_ratio(nm + ".append_stream_p99_vs_wake_other_cpu", p(L.stream_ns, 99),
                               p(L.wake.other_cpu, 99));
                }
            }
            if (!L.writer_cpu_us.empty() && !row.fan.writer_cpu_us.empty()) {
                emit_ratio(nm + ".writer_cpu_vs_raw_fanout_p50", p(L.writer_cpu_us, 50),
                           p(row.fan.writer_cpu_us, 50));
            }
            if (!L.last_wake_us.empty() && !row.fan.last_wake_us.empty()) {
                emit_ratio(nm + ".last_wake_p50_vs_raw_fanout", p(L.last_wake_us, 50),
                           p(row.fan.last_wake_us, 50));
            }
            if (!L.last_wake_us.empty() && !row.bc.last_wake_us.empty()) {
                emit_ratio(nm + ".last_wake_p50_vs_raw_broadcast", p(L.last_wake_us, 50),
                           p(row.bc.last_wake_us, 50));
            }
        }
        note("f%d took %.1f s", n, double(now_ns() - t0) / 1e9);
        rows.push_back(std::move(row));
    }
    print_tables(rows);
    return 0;
}
