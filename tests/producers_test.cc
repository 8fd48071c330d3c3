// Several writers (docs/DESIGN.md §4): any number of Writers, in threads or processes,
// append to one queue at once. Every record lands exactly once, whole; each producer's
// records keep its order; each batch is contiguous; sequence numbers stay dense; followers
// and named readers see one queue. A producer killed at any instant — holding the append
// lock, mid-batch, mid-roll — costs the others nothing but the kernel's release of its
// lock: its uncommitted records never appear, nothing committed is lost.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <new>
#include <random>
#include <thread>

#include "chronicle/admin.h"
#include "format.h"
#include "helpers.h"
#include "producers.h"
#include "queue_files.h"

using namespace chronicle;
using namespace std::chrono_literals;

namespace {

constexpr uint64_t kSegment = 64 * 1024;

WriterOptions opts(bool pretouch = false) {
    WriterOptions o;
    o.segment_size = kSegment;
    o.pretouch = pretouch;
    return o;
}

// "p=<producer>;n=<its record number>;b=<batch's first n>+<batch length>;" + filler bytes
// that are a function of (p, n): mostly 0..299 bytes, now and then a few kilobytes, so that
// records straddle the small segments' ends in every way.
std::string payload(uint32_t p, uint64_t n, uint64_t first, uint64_t len) {
    char head[96];
    const int k = std::snprintf(
        head, sizeof head, "p=%u;n=%llu;b=%llu+%llu;", p, static_cast<unsigned long long>(n),
        static_cast<unsigned long long>(first), static_cast<unsigned long long>(len));
    std::string s(head, static_cast<size_t>(k));
    uint64_t h = (n + 1) * 0x9E3779B97F4A7C15ull + p;
    h ^= h >> 29;
    const size_t fill = h % 61 == 0 ? 1000 + h % 3000 : h % 300;
    for (size_t i = 0; i < fill; ++i) s.push_back(static_cast<char>((n * 131 + p * 17 + i) & 0xff));
    return s;
}

struct Parsed {
    uint32_t p = 0;
    uint64_t n = 0, first = 0, len = 0;
};

bool parse(std::string_view s, Parsed& out) {
    unsigned p = 0;
    unsigned long long n = 0, first = 0, len = 0;
    int used = 0;
    const std::string head(s.substr(0, std::min<size_t>(s.size(), 96)));
    if (std::sscanf(head.c_str(), "p=%u;n=%llu;b=%llu+%llu;%n", &p, &n, &first, &len, &used) != 4 ||
        used <= 0) {
        return false;
    }
    out = {p, n, first, len};
    return payload(p, n, first, len) == s;  // every byte, so a torn record is caught
}

// Appends `count` records as producer `p`, in commits of every kind: single appends,
// claims, batches of 2..40 records. `acked` (if any) is raised to the number of records
// committed after each commit.
void produce(Writer& w, uint32_t p, uint64_t count, uint64_t seed,
             std::atomic<uint64_t>* acked = nullptr) {
    std::mt19937_64 rng(seed);
    uint64_t n = 0;
    auto ack = [&] {
        if (acked != nullptr) acked->store(n, std::memory_order_release);
    };
    while (n < count) {
        const int kind = static_cast<int>(rng() % 10);
        if (kind < 5) {
            if (!w.append(payload(p, n, n, 1))) std::abort();
            ++n;
        } else if (kind < 7) {
            const std::string s = payload(p, n, n, 1);
            auto c = w.claim(s.size() + 64);
            if (!c) std::abort();
            std::memcpy(c->data(), s.data(), s.size());
            if (!w.commit(s.size())) std::abort();
            ++n;
        } else {
            const uint64_t len = std::min<uint64_t>(count - n, 2 + rng() % 39);
            if (!w.begin_batch(kind == 9 ? 128 * 1024 : 0)) std::abort();
            for (uint64_t i = 0; i < len; ++i) {
                if (!w.append(payload(p, n + i, n, len))) std::abort();
            }
            if (!w.commit_batch()) std::abort();
            n += len;
        }
        ack();
    }
}

// Follows the invariants record by record: dense sequences, whole records, each
// producer's records in its order from 0, each batch contiguous.
struct Checker {
    uint64_t next_seq = 0;
    std::map<uint32_t, uint64_t> count;  // records per producer
    Parsed open;                         // the batch being read
    uint64_t open_left = 0;
    std::string error;

    bool add(const Record& r) {
        if (!error.empty()) return false;
        Parsed x;
        if (r.seq != next_seq) {
            error = "sequence " + std::to_string(r.seq) + " where " + std::to_string(next_seq) +
                    " was due";
        } else if (!parse(r.text(), x)) {
            error = "record " + std::to_string(r.seq) +
                    " is torn or foreign: " + std::string(r.text().substr(0, 60));
        } else if (x.n != count[x.p]) {
            error = "record " + std::to_string(r.seq) + ": producer " + std::to_string(x.p) +
                    "'s record " + std::to_string(x.n) + " where " + std::to_string(count[x.p]) +
                    " was due (order, loss or duplicate)";
        } else if (open_left > 0 && (x.p != open.p || x.first != open.first)) {
            error = "record " + std::to_string(r.seq) + " interleaves producer " +
                    std::to_string(open.p) + "'s batch at " + std::to_string(open.first);
        } else if (open_left == 0 && x.n != x.first) {
            error = "record " + std::to_string(r.seq) + " begins in the middle of a batch";
        }
        if (!error.empty()) return false;
        if (open_left == 0) {
            open = x;
            open_left = x.len;
        }
        --open_left;
        ++count[x.p];
        ++next_seq;
        return true;
    }
    [[nodiscard]] uint64_t total() const { return next_seq; }
};

Checker check_queue(const std::string& q) {
    Checker c;
    auto r = Reader::open(q);
    if (!r) {
        c.error = r.status().message();
        return c;
    }
    for (;;) {
        auto n = r.value()->next();
        if (!n) {
            c.error = n.status().message();
            break;
        }
        if (!n.value() || !c.add(*n.value())) break;
    }
    if (c.error.empty() && c.open_left != 0) c.error = "the log ends inside a batch";
    return c;
}

// Shared memory for counters that children raise.
template <size_t N>
class SharedCounters {
  public:
    SharedCounters() {
        void* p = ::mmap(nullptr, sizeof(std::atomic<uint64_t>) * N, PROT_READ | PROT_WRITE,
                         MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) std::abort();
        c_ = static_cast<std::atomic<uint64_t>*>(p);
        for (size_t i = 0; i < N; ++i) new (&c_[i]) std::atomic<uint64_t>(0);
    }
    ~SharedCounters() { ::munmap(c_, sizeof(std::atomic<uint64_t>) * N); }
    SharedCounters(const SharedCounters&) = delete;
    SharedCounters& operator=(const SharedCounters&) = delete;
    std::atomic<uint64_t>& operator[](size_t i) { return c_[i]; }

  private:
    std::atomic<uint64_t>* c_;
};

// ThreadSanitizer cannot follow a child forked from a process with threads that then
// starts threads of its own (a Writer's): those cases run under ASan and plain builds.
#if defined(__SANITIZE_THREAD__)
#define SKIP_FORKS_UNDER_TSAN()                                                  \
    do {                                                                         \
        MESSAGE("skipped under ThreadSanitizer (forks a process with threads)"); \
        return;                                                                  \
    } while (0)
#else
#define SKIP_FORKS_UNDER_TSAN() \
    do {                        \
    } while (0)
#endif

// A forked child that cannot go on: says why on stderr (doctest is the parent's) and exits 3.
[[noreturn]] void child_failed(const std::string& why) {
    std::fprintf(stderr, "child %d: %s\n", static_cast<int>(::getpid()), why.c_str());
    ::_exit(3);
}

pid_t fork_flushed() {
    std::cout.flush();
    std::cerr.flush();
    std::fflush(nullptr);
    return ::fork();
}

// A follower that reads everything as it comes, checking each record, until it has
// `want` records (told later) or is told to stop. A process of its own, forked before
// anything else: every other child is then forked from a process without threads (a child
// of a process with threads may inherit a lock one of them held, e.g. ASan's allocator's).
struct Follower {
    SharedCounters<4> st;  // [0] want (0: not yet told), [1] seen, [2] ended, [3] stop
    std::string log;       // why it failed, if it did
    pid_t pid = -1;
    std::string error;  // after finish(): its failure, if any
    uint64_t seen = 0;  // after finish(): records it checked

    void start(const std::string& q, const std::string& dir) {
        log = dir + "/follower.err";
        pid = fork_flushed();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            std::string why = run(q);
            if (!why.empty()) std::ofstream(log) << why;
            st[2].store(1);
            ::_exit(why.empty() ? 0 : 1);
        }
    }
    std::string run(const std::string& q) {
        Checker c;
        auto r = Reader::open(q);
        if (!r) return r.status().message();
        for (;;) {
            const uint64_t want = st[0].load();
            if (st[3].load() != 0 || (want != 0 && c.total() >= want)) return {};
            auto n = r.value()->next();
            if (!n) return n.status().message();
            if (n.value()) {
                if (!c.add(*n.value())) return c.error;
                st[1].store(c.total());
                continue;
            }
            Status w = r.value()->wait(200ms);
            if (!w && w.code() != errc::timeout && w.code() != errc::closed) return w.message();
        }
    }
    void finish(uint64_t total) {
        st[0].store(total);
        // Generous: it only has to catch up with what is on disk.
        for (int i = 0; i < 600 && st[1].load() < total && st[2].load() == 0; ++i) {
            std::this_thread::sleep_for(50ms);
        }
        st[3].store(1);
        int status = 0;
        REQUIRE(::waitpid(pid, &status, 0) == pid);
        seen = st[1].load();
        if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
            std::getline(std::ifstream(log), error);
            if (error.empty()) error = "the follower ended with status " + std::to_string(status);
        }
    }
};

}  // namespace

TEST_CASE("WritersInThreadsAppendAtOnceAndAFollowerSeesOneDenseQueue") {
    test::TempDir t;
    const std::string q = t.queue();
    constexpr uint32_t kThreads = 8;
    constexpr uint64_t kEach = 3000;
    { REQUIRE(Writer::open(q, opts()).ok()); }  // the queue exists before the follower
    Follower f;
    f.start(q, t.path());
    std::vector<std::thread> ts;
    std::atomic<int> failed{0};
    for (uint32_t p = 0; p < kThreads; ++p) {
        ts.emplace_back([&, p] {
            auto w = Writer::open(q, opts(p % 2 == 0));
            if (!w) {
                failed.fetch_add(1);
                return;
            }
            produce(*w.value(), p, kEach, 1000 + p);
        });
    }
    for (auto& th : ts) th.join();
    REQUIRE(failed.load() == 0);
    f.finish(kThreads * kEach);
    CHECK_MESSAGE(f.error.empty(), f.error);
    CHECK(f.seen == kThreads * kEach);
    const Checker c = check_queue(q);
    REQUIRE_MESSAGE(c.error.empty(), c.error);
    CHECK(c.total() == kThreads * kEach);
    for (uint32_t p = 0; p < kThreads; ++p) CHECK(c.count.at(p) == kEach);
    const auto v = verify_queue(q, false);
    REQUIRE(v.ok());
    CHECK(v->problems.empty());
}

TEST_CASE("ThirtyTwoProcessesAppendAtOnceEveryRecordExactlyOnceInEachProducersOrder") {
    SKIP_FORKS_UNDER_TSAN();
    test::TempDir t;
    const std::string q = t.queue();
    constexpr uint32_t kProcs = 32;
    constexpr uint64_t kEach = 1500;
    { REQUIRE(Writer::open(q, opts()).ok()); }
    Follower f;
    f.start(q, t.path());
    std::vector<pid_t> kids;
    for (uint32_t p = 0; p < kProcs; ++p) {
        const pid_t pid = fork_flushed();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            auto w = Writer::open(q, opts(p % 4 == 0));
            if (!w) child_failed("Writer::open: " + w.status().message());
            produce(*w.value(), p, kEach, 7 * p + 1);
            ::_exit(0);
        }
        kids.push_back(pid);
    }
    for (pid_t pid : kids) {
        int status = 0;
        REQUIRE(::waitpid(pid, &status, 0) == pid);
        CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
    }
    f.finish(kProcs * kEach);
    CHECK_MESSAGE(f.error.empty(), f.error);
    CHECK(f.seen == kProcs * kEach);
    const Checker c = check_queue(q);
    REQUIRE_MESSAGE(c.error.empty(), c.error);
    CHECK(c.total() == kProcs * kEach);
    for (uint32_t p = 0; p < kProcs; ++p) CHECK(c.count.at(p) == kEach);
}

TEST_CASE("ProducersKilledAtRandomInstantsLoseNothingCommittedAndExposeNothingUncommitted") {
    SKIP_FORKS_UNDER_TSAN();
    // >= 200 kill -9s of producers at random instants (holding the append lock, mid-batch,
    // mid-roll: the segments are small), while others go on, a follower follows and a
    // named reader reads and commits.
    test::TempDir t;
    const std::string q = t.queue();
    constexpr int kKills = 200;
    constexpr size_t kLive = 4;
    constexpr size_t kMaxProducers = kKills + kLive + 1;
    SharedCounters<kMaxProducers> acked;
    { REQUIRE(Writer::open(q, opts()).ok()); }
    Follower f;
    f.start(q, t.path());
    // The named reader is a process of its own: a thread would hand its cursor's lock to
    // every producer forked while it holds the name.
    SharedCounters<2> named_state;  // [0]: 1 = stop; [1]: 1 = failed
    const std::string named_log = t.path() + "/named.err";
    const pid_t named = fork_flushed();
    REQUIRE(named >= 0);
    if (named == 0) {
        ReaderOptions ro;
        ro.name = "audit";
        uint64_t last = 0;
        auto die = [&](const std::string& why) {
            std::ofstream(named_log) << why;
            named_state[1].store(1);
            ::_exit(1);
        };
        while (named_state[0].load() == 0) {
            auto r = Reader::open(q, ro);  // reopened now and then: resumes at its cursor
            if (!r) die(r.status().message());
            for (int i = 0; i < 500; ++i) {
                auto n = r.value()->next();
                if (!n) die(n.status().message());
                if (!n.value()) break;
                if (n.value()->seq < last) die("went back to " + std::to_string(n.value()->seq));
                last = n.value()->seq;
            }
            std::this_thread::sleep_for(1ms);
        }
        ::_exit(0);
    }
    std::mt19937_64 rng(0x5EED);
    std::vector<std::pair<pid_t, uint32_t>> live;
    uint32_t next_p = 0;
    auto spawn = [&] {
        const uint32_t p = next_p++;
        const bool pretouch = rng() % 2 == 0;
        const uint64_t seed = rng();
        const pid_t pid = fork_flushed();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            auto w = Writer::open(q, opts(pretouch));
            if (!w) child_failed("Writer::open: " + w.status().message());
            produce(*w.value(), p, UINT64_MAX / 2, seed, &acked[p]);
            ::_exit(0);
        }
        live.emplace_back(pid, p);
    };
    for (size_t i = 0; i < kLive; ++i) spawn();
    int kills = 0;
    while (kills < kKills) {
        std::this_thread::sleep_for(std::chrono::microseconds(rng() % 4000));
        const size_t victim = rng() % live.size();
        const pid_t pid = live[victim].first;
        ::kill(pid, SIGKILL);
        int status = 0;
        REQUIRE(::waitpid(pid, &status, 0) == pid);
        REQUIRE_MESSAGE((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL),
                        "a producer ended by itself with status " << status);
        ++kills;
        live.erase(live.begin() + static_cast<long>(victim));
        spawn();
    }
    for (auto [pid, p] : live) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
    }
    // A writer after all that: it appends where the dead left off.
    uint64_t total = 0;
    {
        auto w = Writer::open(q, opts());
        REQUIRE_MESSAGE(w.ok(), w.status().message());
        const uint32_t p = next_p++;
        auto s = w.value()->append(payload(p, 0, 0, 1));
        REQUIRE_MESSAGE(s.ok(), s.status().message());
        total = s.value() + 1;
    }
    const Checker c = check_queue(q);
    REQUIRE_MESSAGE(c.error.empty(), c.error);
    CHECK(c.total() == total);
    uint64_t lost = 0;
    for (uint32_t p = 0; p + 1 < next_p; ++p) {
        const uint64_t have = c.count.count(p) != 0 ? c.count.at(p) : 0;
        if (have < acked[p].load()) lost += acked[p].load() - have;
    }
    CHECK_MESSAGE(lost == 0, lost << " acknowledged records are missing");
    f.finish(total);
    CHECK_MESSAGE(f.error.empty(), f.error);
    CHECK(f.seen == total);
    named_state[0].store(1);
    int named_status = 0;
    REQUIRE(::waitpid(named, &named_status, 0) == named);
    std::string named_error;
    if (named_state[1].load() != 0) std::getline(std::ifstream(named_log), named_error);
    CHECK_MESSAGE((WIFEXITED(named_status) && WEXITSTATUS(named_status) == 0),
                  "the named reader: " << named_error);
    const auto v = verify_queue(q, false);
    REQUIRE(v.ok());
    CHECK(v->problems.empty());
}

TEST_CASE("ProducersKilledAtTheLockNeverStrandAWaiter") {
    SKIP_FORKS_UNDER_TSAN();
    // Found by cli_producers' kill -9 loop (1 run in 60): the last producer asleep for ever
    // in the append lock with the lock word 0. A robust mutex can lose a wake-up: when its
    // holder is killed between storing 0 and its FUTEX_WAKE, or a woken waiter is killed
    // before it takes the lock, the kernel wakes the next waiter only if the word is still 0
    // as it reaps the dead thread; a writer that took the lock in between took it without
    // the waiters bit, and its unlock wakes nobody. Three producers that live throughout
    // (large batches: the lock is held a while, waiters queue up) and victims killed 1-20 ms
    // after they start, 200 times: no producer may stand still for 3 s.
    test::TempDir t;
    const std::string q = t.queue();
    constexpr int kKills = 200;
    constexpr size_t kLive = 3;
    constexpr uint64_t kBatch = 2000;
    SharedCounters<kKills + kLive> acked;
    { REQUIRE(Writer::open(q, opts()).ok()); }
    auto spawn = [&](uint32_t p) {
        const pid_t pid = fork_flushed();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            auto w = Writer::open(q, opts());
            if (!w) child_failed("Writer::open: " + w.status().message());
            for (uint64_t n = 0;; n += kBatch) {
                if (!w.value()->begin_batch(kBatch * 200)) child_failed("begin_batch failed");
                for (uint64_t i = 0; i < kBatch; ++i) {
                    if (!w.value()->append(payload(p, n + i, n, kBatch))) {
                        child_failed("append failed");
                    }
                }
                if (!w.value()->commit_batch()) child_failed("commit_batch failed");
                acked[p].store(n + kBatch, std::memory_order_release);
                // A pause between batches, as a producer that reads its input has: in a
                // tight loop the holder takes the lock again before a woken waiter runs
                // (a mutex is not fair) and can starve it for seconds under ASan — not
                // the lost wake-up this test is about.
                std::this_thread::sleep_for(200us);
            }
        }
        return pid;
    };
    std::vector<pid_t> live;
    for (uint32_t p = 0; p < kLive; ++p) live.push_back(spawn(p));
    std::vector<uint64_t> seen(kLive, 0);
    std::vector<std::chrono::steady_clock::time_point> since(kLive,
                                                             std::chrono::steady_clock::now());
    // A long-lived producer that has not moved for 3 s is stranded.
    auto stranded = [&]() -> std::string {
        const auto now = std::chrono::steady_clock::now();
        for (uint32_t p = 0; p < kLive; ++p) {
            const uint64_t a = acked[p].load(std::memory_order_acquire);
            if (a != seen[p]) {
                seen[p] = a;
                since[p] = now;
            } else if (now - since[p] > 3s) {
                // Its threads' stacks, to tell where it waits.
                const std::string gdb = "timeout 20 gdb -p " + std::to_string(live[p]) +
                                        " -batch -nx -ex 'thread apply all bt 10' 2>/dev/null "
                                        "| grep -E '^(Thread|#)' >&2";
                (void)std::system(gdb.c_str());
                return "producer " + std::to_string(p) + " (pid " + std::to_string(live[p]) +
                       ") made no progress for 3 s after " + std::to_string(a) + " records";
            }
        }
        return {};
    };
    std::mt19937_64 rng(0xDEAD);
    std::string why;
    for (int kills = 0; kills < kKills && why.empty(); ++kills) {
        const pid_t victim = spawn(static_cast<uint32_t>(kLive + kills));
        std::this_thread::sleep_for(std::chrono::microseconds(1000 + rng() % 19000));
        ::kill(victim, SIGKILL);
        REQUIRE(::waitpid(victim, nullptr, 0) == victim);
        why = stranded();
    }
    for (int i = 0; i < 40 && why.empty(); ++i) {
        std::this_thread::sleep_for(100ms);
        why = stranded();
    }
    for (pid_t pid : live) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
    }
    CHECK_MESSAGE(why.empty(), why);
    const Checker c = check_queue(q);
    CHECK_MESSAGE(c.error.empty(), c.error);
}

TEST_CASE("AProducerKilledHoldingTheLockInABatchAcrossRollsCostsTheOthersNothing") {
    SKIP_FORKS_UNDER_TSAN();
    test::TempDir t;
    const std::string q = t.queue();
    int go[2], ready[2];
    REQUIRE(::pipe(go) == 0);
    REQUIRE(::pipe(ready) == 0);
    // Forked before this process has a Writer (and its threads).
    const pid_t pid = fork_flushed();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        char g;
        if (::read(go[0], &g, 1) != 1) ::_exit(2);
        auto w = Writer::open(q, opts());
        if (!w) child_failed("Writer::open: " + w.status().message());
        if (!w.value()->begin_batch()) ::_exit(4);
        // About three segments' worth: the batch rolls twice, its segments are preparing.
        for (uint64_t i = 0; i < 600; ++i) {
            if (!w.value()->append(payload(1, i, 0, 600))) ::_exit(5);
        }
        (void)!::write(ready[1], "x", 1);
        ::pause();  // killed here, holding the append lock
        ::_exit(6);
    }
    ::close(ready[1]);
    auto other = Writer::open(q, opts());
    REQUIRE(other.ok());
    REQUIRE(other.value()->append(payload(0, 0, 0, 1)).ok());
    REQUIRE(::write(go[1], "g", 1) == 1);
    char x;
    REQUIRE(::read(ready[0], &x, 1) == 1);
    ::close(ready[0]);
    const size_t segments_then = files::list_segments(q)->size();
    CHECK(segments_then >= 3);
    ::kill(pid, SIGKILL);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    // The other writer takes the lock the kernel released, recovers and goes on.
    auto s = other.value()->append(payload(0, 1, 1, 1));
    REQUIRE_MESSAGE(s.ok(), s.status().message());
    CHECK(s.value() == 1);
    CHECK(files::list_segments(q)->size() == 1);  // the dead batch's segments are gone
    const Checker c = check_queue(q);
    REQUIRE_MESSAGE(c.error.empty(), c.error);
    CHECK(c.total() == 2);
    CHECK(c.count.count(1) == 0);
    const auto v = verify_queue(q, false);
    REQUIRE(v.ok());
    CHECK(v->problems.empty());
}

TEST_CASE("ExclusiveAndSharedWritersRefuseEachOtherAndWaitWhenAsked") {
    test::TempDir t;
    const std::string q = t.queue();
    WriterOptions ex = opts();
    ex.exclusive = true;
    auto shared = Writer::open(q, opts());
    REQUIRE(shared.ok());
    auto two = Writer::open(q, opts());  // shared writers coexist
    REQUIRE(two.ok());
    auto e = Writer::open(q, ex);
    REQUIRE_FALSE(e.ok());
    CHECK(e.status().code() == errc::busy);
    CHECK(e.status().message().find("already has a writer (pid " + std::to_string(::getpid())) !=
          std::string::npos);
    // A bounded wait gives up after about that long.
    ex.wait_ms = 150;
    const auto t0 = std::chrono::steady_clock::now();
    e = Writer::open(q, ex);
    CHECK(e.status().code() == errc::busy);
    CHECK(std::chrono::steady_clock::now() - t0 >= 150ms);
    // An unbounded one gets the queue once the shared writers are gone.
    std::thread closer([&] {
        std::this_thread::sleep_for(100ms);
        shared.value().reset();
        two.value().reset();
    });
    ex.wait_ms = WriterOptions::kWaitForever;
    e = Writer::open(q, ex);
    closer.join();
    REQUIRE_MESSAGE(e.ok(), e.status().message());
    auto s = Writer::open(q, opts());
    REQUIRE_FALSE(s.ok());
    CHECK(s.status().message().find("has an exclusive writer") != std::string::npos);
    REQUIRE(e.value()->append("alone").ok());
    e.value().reset();
    auto after = Writer::open(q, opts());
    REQUIRE(after.ok());
    CHECK(after.value()->append("shared again").value() == 1);
}

TEST_CASE("ADamagedProducerPageIsRecoveredFromTheSegments") {
    test::TempDir t;
    const std::string q = t.queue();
    auto a = Writer::open(q, opts());
    REQUIRE(a.ok());
    for (uint64_t i = 0; i < 10; ++i) REQUIRE(a.value()->append(payload(0, i, i, 1)).ok());
    // The page's tail moved back into the last record (where its padding may read as an
    // empty state word), and its epoch changed so that every writer reads it.
    const std::string page = q + "/" + std::string(files::kProducers);
    const size_t off_at = kProducerTailOffset + offsetof(ProducerTail, off);
    test::poke<uint64_t>(page, off_at, test::peek<uint64_t>(page, off_at) - 8);
    test::poke<uint64_t>(page, kProducerEpochOffset, 999);
    auto b = Writer::open(q, opts());  // joins: the page's tail is checked, then recovered
    REQUIRE_MESSAGE(b.ok(), b.status().message());
    auto s = b.value()->append(payload(1, 0, 0, 1));
    REQUIRE(s.ok());
    CHECK(s.value() == 10);
    s = a.value()->append(payload(0, 10, 10, 1));
    REQUIRE(s.ok());
    CHECK(s.value() == 11);
    const Checker c = check_queue(q);
    REQUIRE_MESSAGE(c.error.empty(), c.error);
    CHECK(c.total() == 12);
}

TEST_CASE("JoiningAndLeavingDoNotWaitForABatchInProgress") {
    test::TempDir t;
    const std::string q = t.queue();
    auto a = Writer::open(q, opts());
    REQUIRE(a.ok());
    auto c = Writer::open(q, opts());
    REQUIRE(c.ok());
    REQUIRE(a.value()->begin_batch().ok());  // holds the append lock until commit_batch()
    REQUIRE(a.value()->append(payload(0, 0, 0, 2)).ok());
    // A writer joins and another leaves while the batch is open: neither waits for it.
    std::atomic<int> done{0};
    std::unique_ptr<Writer> b;
    std::thread joiner([&] {
        auto w = Writer::open(q, opts());
        if (w) b = std::move(w.value());
        done.fetch_add(1);
    });
    std::thread leaver([&] {
        c.value().reset();
        done.fetch_add(1);
    });
    for (int i = 0; i < 200 && done.load() < 2; ++i) std::this_thread::sleep_for(10ms);
    CHECK_MESSAGE(done.load() == 2, "joining or leaving waited for another writer's batch");
    // Its first commit waits for the batch, then lands after it.
    std::atomic<uint64_t> seq{UINT64_MAX};
    std::thread appender([&] {
        for (int i = 0; i < 200 && done.load() < 2; ++i) std::this_thread::sleep_for(10ms);
        if (!b) return;
        auto s = b->append(payload(1, 0, 0, 1));
        if (s) seq.store(s.value());
    });
    std::this_thread::sleep_for(50ms);
    REQUIRE(a.value()->append(payload(0, 1, 0, 2)).ok());
    REQUIRE(a.value()->commit_batch().ok());
    joiner.join();
    leaver.join();
    appender.join();
    REQUIRE(b != nullptr);
    CHECK(seq.load() == 2);
    const Checker ch = check_queue(q);
    REQUIRE_MESSAGE(ch.error.empty(), ch.error);
    CHECK(ch.total() == 3);
}
