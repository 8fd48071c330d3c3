// The wake path: followers blocking in wait(), woken by the writer; discovery, safety and
// the sleep protocol. Linux-specific cases are compiled out with the portable notifier.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <random>
#include <thread>

#include "chronicle/reader.h"
#include "chronicle/writer.h"
#include "cursor.h"
#include "format.h"
#include "fs.h"
#include "helpers.h"
#include "lock.h"
#include "queue_files.h"
#include "registration.h"
#include "wake.h"

using namespace chronicle;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// Waits for the next record with a generous bound; returns it or fails the test.
std::string next_following(Reader& r, std::chrono::nanoseconds limit = 5s) {
    const auto end = Clock::now() + limit;
    for (;;) {
        auto n = r.next();
        REQUIRE(n.ok());
        if (n.value()) return std::string(n.value()->text());
        const auto left = end - Clock::now();
        REQUIRE(left > 0ns);
        Status st = r.wait(std::chrono::duration_cast<std::chrono::nanoseconds>(left));
        REQUIRE((st.ok() || st.code() == errc::timeout));
    }
}

template <class T>
T* shared_page() {
    void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REQUIRE(p != MAP_FAILED);
    return new (p) T();
}

bool in_readers(const std::string& q, const std::string& suffix) {
    for (const auto& n : test::list_dir(q + "/readers")) {
        if (n.size() > suffix.size() &&
            n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0)
            return true;
    }
    return false;
}

}  // namespace

TEST_CASE("WaitBlocksUntilAnAppendArrivesInTheSameProcess") {
    test::TempDir t;
    auto w = Writer::open(t.queue());
    REQUIRE(w.ok());
    auto r = Reader::open(t.queue());
    REQUIRE(r.ok());
    const auto t0 = Clock::now();
    std::thread appender([&] {
        std::this_thread::sleep_for(100ms);
        REQUIRE(w.value()->append("late").ok());
    });
    Status st = r.value()->wait(10s);
    appender.join();
    CHECK(st.ok());
    CHECK(Clock::now() - t0 >= 90ms);
    CHECK(next_following(*r.value()) == "late");
}

TEST_CASE("WaitBlocksUntilAnAppendArrivesFromAnotherProcess") {
    test::TempDir t;
    { REQUIRE(Writer::open(t.queue()).ok()); }
    auto r = Reader::open(t.queue());
    REQUIRE(r.ok());
    REQUIRE(r.value()->wait(1ms).code() == errc::timeout);  // registers as a follower
    const pid_t child = ::fork();
    if (child == 0) {
        auto w = Writer::open(t.queue());
        ::usleep(100000);
        _exit(w.ok() && w.value()->append("from child").ok() ? 0 : 1);
    }
    CHECK(next_following(*r.value()) == "from child");
    int status = 0;
    ::waitpid(child, &status, 0);
    CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("WaitTimesOutWithoutData") {
    test::TempDir t;
    auto w = Writer::open(t.queue());
    REQUIRE(w.ok());
    auto r = Reader::open(t.queue());
    REQUIRE(r.ok());
    const auto t0 = Clock::now();
    CHECK(r.value()->wait(50ms).code() == errc::timeout);
    CHECK(Clock::now() - t0 >= 45ms);
}

TEST_CASE("WaitReturnsClosedWhenTheWriterExits") {
    test::TempDir t;
    int ready[2];
    REQUIRE(::pipe(ready) == 0);
    const pid_t child = ::fork();
    if (child == 0) {
        auto w = Writer::open(t.queue());
        char c = 'r';
        (void)!::write(ready[1], &c, 1);
        ::usleep(200000);
        _exit(w.ok() ? 0 : 1);  // exits without appending
    }
    char c;
    REQUIRE(::read(ready[0], &c, 1) == 1);
    auto r = Reader::open(t.queue());
    REQUIRE(r.ok());
    CHECK(r.value()->writer_alive());
    Status st = r.value()->wait(10s);
    CHECK(st.code() == errc::closed);
    CHECK_FALSE(r.value()->writer_alive());
    ::waitpid(child, nullptr, 0);
    ::close(ready[0]);
    ::close(ready[1]);
}

TEST_CASE("FollowerFilesAreRemovedWhenTheReaderCloses") {
    test::TempDir t;
    auto w = Writer::open(t.queue());
    REQUIRE(w.ok());
    {
        auto r = Reader::open(t.queue());
        REQUIRE(r.ok());
        (void)r.value()->wait(1ms);
        CHECK(in_readers(t.queue(), ".efd"));
        CHECK(in_readers(t.queue(), ".cursor"));
    }
    CHECK(test::list_dir(t.queue() + "/readers").empty());
}

TEST_CASE("NamedFollowerPublishesEfdMetadata") {
    test::TempDir t;
    auto w = Writer::open(t.queue());
    REQUIRE(w.ok());
    ReaderOptions ro;
    ro.name = "mon";
    auto r = Reader::open(t.queue(), ro);
    REQUIRE(r.ok());
    (void)r.value()->wait(1ms);
    std::ifstream in(t.queue() + "/readers/mon.efd");
    std::string line;
    std::getline(in, line);
    auto e = efd_from_json(line, "mon.efd");
    REQUIRE(e.ok());
    CHECK(e->pid == ::getpid());
    CHECK(e->name == "mon");
    CHECK(e->cursor == "mon.cursor");
    CHECK(e->start_time == fs::process_start_time(::getpid()));
    CHECK(e->created_ns > 0);
#ifndef CHRONICLE_PORTABLE_NOTIFIER
    CHECK(e->fifo == "mon.fifo");
    char path[64];
    std::snprintf(path, sizeof path, "/proc/self/fd/%d", e->fd);
    char target[64] = {};
    REQUIRE(::readlink(path, target, sizeof target - 1) > 0);
    CHECK(std::string(target) == "anon_inode:[eventfd]");
#endif
}

TEST_CASE("SixtyFourFollowersAreAllWokenByOneAppend") {
    test::TempDir t;
    auto w = Writer::open(t.queue());
    REQUIRE(w.ok());
    constexpr int kFollowers = 64;
    std::atomic<int> parked{0};
    std::atomic<int> woken{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < kFollowers; ++i) {
        threads.emplace_back([&] {
            auto r = Reader::open(t.queue());
            REQUIRE(r.ok());
            (void)r.value()->wait(1ms);  // register first
            parked.fetch_add(1);
            if (r.value()->wait(20s).ok()) {
                auto n = r.value()->next();
                if (n.ok() && n.value() && n.value()->text() == "wake up") woken.fetch_add(1);
            }
        });
    }
    while (parked.load() < kFollowers) std::this_thread::sleep_for(1ms);
    std::this_thread::sleep_for(100ms);  // let them block
    REQUIRE(w.value()->append("wake up").ok());
    for (auto& th : threads) th.join();
    CHECK(woken.load() == kFollowers);
}

TEST_CASE("AWriterThatAppendsAndExitsAtOnceStillWakesEveryFollower") {
    // More sleepers than the writer wakes inline: the rest go through its notifier thread,
    // which must deliver them although the writer closes right after the append. The
    // followers use the event-loop path (prepare_wait + poll(fd)), as chronicle-tail does.
    const char* bin_env = std::getenv("CHRONICLE_BIN");
    if (bin_env == nullptr) {
        MESSAGE("skipped: CHRONICLE_BIN (the tools' directory) is not set");
        return;
    }
    const std::string bin = bin_env;
    test::TempDir t;
    { REQUIRE(Writer::open(t.queue()).ok()); }
    for (int round = 0; round < 3; ++round) {
        constexpr int kFollowers = 8;
        std::atomic<int> parked{0};
        std::atomic<int> woken{0};
        std::vector<std::thread> threads;
        for (int i = 0; i < kFollowers; ++i) {
            threads.emplace_back([&] {
                ReaderOptions ro;
                ro.start = Position::end();
                auto r = Reader::open(t.queue(), ro);
                REQUIRE(r.ok());
                auto fd = r.value()->fd();
                REQUIRE(fd.ok());
                parked.fetch_add(1);
                const auto end = Clock::now() + 3s;
                while (Clock::now() < end) {
                    auto n = r.value()->next();
                    REQUIRE(n.ok());
                    if (n.value()) {
                        woken.fetch_add(1);
                        return;
                    }
                    auto armed = r.value()->prepare_wait();
                    REQUIRE(armed.ok());
                    if (!armed.value()) continue;
                    pollfd p{fd.value(), POLLIN, 0};
                    ::poll(&p, 1, fd.value() < 0 ? 10 : 3000);
                }
            });
        }
        while (parked.load() < kFollowers) std::this_thread::sleep_for(1ms);
        std::this_thread::sleep_for(50ms);
        // The real thing: a chronicle-append that opens the queue (its registration
        // wake-ups come and go), appends one line 200 ms later and exits at once.
        const std::string cmd =
            "(sleep 0.2; echo once) | '" + bin + "/chronicle-append' '" + t.queue() + "'";
        REQUIRE(std::system(cmd.c_str()) == 0);
        for (auto& th : threads) th.join();
        CHECK(woken.load() == kFollowers);
    }
}

TEST_CASE("FollowingAcrossSegmentRollsSeesEveryRecordInOrder") {
    test::TempDir t;
    auto w = Writer::open(t.queue(), test::small_segments());
    REQUIRE(w.ok());
    auto r = Reader::open(t.queue());
    REQUIRE(r.ok());
    constexpr int kRecords = 3000;  // ~100 segments
    std::thread appender([&] {
        for (int i = 0; i < kRecords; ++i) {
            REQUIRE(w.value()->append("r" + std::to_string(i) + std::string(100, '.')).ok());
            if (i % 100 == 0) std::this_thread::sleep_for(2ms);  // let the follower park
        }
    });
    for (int i = 0; i < kRecords; ++i) {
        CHECK(next_following(*r.value()) == "r" + std::to_string(i) + std::string(100, '.'));
    }
    appender.join();
}

TEST_CASE("EventLoopApiPollsTheReaderDescriptor") {
    test::TempDir t;
    auto w = Writer::open(t.queue());
    REQUIRE(w.ok());
    auto r = Reader::open(t.queue());
    REQUIRE(r.ok());
    auto armed = r.value()->prepare_wait();
    REQUIRE(armed.ok());
    CHECK(armed.value());
    auto fd = r.value()->fd();
    REQUIRE(fd.ok());
#ifndef CHRONICLE_PORTABLE_NOTIFIER
    pollfd p{fd.value(), POLLIN, 0};
    CHECK(::poll(&p, 1, 0) == 0);  // nothing yet
    REQUIRE(w.value()->append("tick").ok());
    CHECK(::poll(&p, 1, 5000) == 1);
#else
    CHECK(fd.value() == -1);
    REQUIRE(w.value()->append("tick").ok());
#endif
    auto n = r.value()->next();
    REQUIRE(n.ok());
    REQUIRE(n.value().has_value());
    CHECK(n.value()->text() == "tick");
    // Records already there: prepare_wait says "read first".
    REQUIRE(w.value()->append("tock").ok());
    armed = r.value()->prepare_wait();
    REQUIRE(armed.ok());
    CHECK_FALSE(armed.value());
}

#ifndef CHRONICLE_PORTABLE_NOTIFIER

TEST_CASE("OpeningAnEventfdThroughProcFailsWithENXIO") {
    // The measured fact behind pidfd_getfd: an eventfd cannot be opened by path.
    const int efd = ::eventfd(0, EFD_CLOEXEC);
    REQUIRE(efd >= 0);
    const std::string path = "/proc/self/fd/" + std::to_string(efd);
    errno = 0;
    const int fd = ::open(path.c_str(), O_RDWR);
    CHECK(fd < 0);
    CHECK(errno == ENXIO);
    if (fd >= 0) ::close(fd);
    ::close(efd);
}

TEST_CASE("FifoPathWakesFollowersWhenForced") {
    test::TempDir t;
    WriterOptions wo;
    wo.wake_via_fifo = true;
    auto w = Writer::open(t.queue(), wo);
    REQUIRE(w.ok());
    ReaderOptions ro;
    ro.name = "viafifo";
    auto r = Reader::open(t.queue(), ro);
    REQUIRE(r.ok());
    CHECK(r.value()->wait(1ms).code() == errc::timeout);
    std::thread appender([&] {
        std::this_thread::sleep_for(100ms);
        REQUIRE(w.value()->append("through the fifo").ok());
    });
    const auto t0 = Clock::now();
    CHECK(r.value()->wait(10s).ok());
    CHECK(Clock::now() - t0 < 5s);
    appender.join();
    // The writer (this process) holds the FIFO open for writing.
    bool fifo_open = false;
    for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
        std::error_code ec;
        const auto target = std::filesystem::read_symlink(e.path(), ec);
        if (!ec && target.string().find("viafifo.fifo") != std::string::npos) fifo_open = true;
    }
    CHECK(fifo_open);
}

TEST_CASE("StaleEfdOfADeadProcessIsIgnored") {
    test::TempDir t;
    { REQUIRE(Writer::open(t.queue()).ok()); }
    const pid_t dead = ::fork();
    if (dead == 0) _exit(0);
    ::waitpid(dead, nullptr, 0);
    // A leftover registration: .efd naming the dead pid, an unlocked cursor, no FIFO.
    {
        auto rfd = fs::open_dir(t.queue() + "/readers");
        REQUIRE(rfd.ok());
        auto c = CursorStore::open(rfd->get(), t.queue() + "/readers", "ghost", {.create = true});
        REQUIRE(c.ok());
    }
    EfdInfo e;
    e.name = "ghost";
    e.pid = dead;
    e.fd = 3;
    e.start_time = 12345;
    e.cursor = "ghost.cursor";
    e.fifo = "ghost.fifo";
    std::ofstream(t.queue() + "/readers/ghost.efd") << efd_to_json(e);
    std::ofstream(t.queue() + "/readers/garbage.efd") << "{not json";
    auto w = Writer::open(t.queue());
    REQUIRE(w.ok());
    auto r = Reader::open(t.queue());
    REQUIRE(r.ok());
    (void)r.value()->wait(1ms);
    std::thread appender([&] {
        std::this_thread::sleep_for(50ms);
        REQUIRE(w.value()->append("alive").ok());
    });
    CHECK(next_following(*r.value()) == "alive");
    appender.join();
}

TEST_CASE("EfdNamingAnUnrelatedLiveProcessCausesNoWriteToIt") {
    test::TempDir t;
    { REQUIRE(Writer::open(t.queue()).ok()); }
    // An unrelated process holding a pipe at a known descriptor number, plus an eventfd.
    int p[2];
    REQUIRE(::pipe2(p, O_NONBLOCK) == 0);
    const int victim_efd = ::eventfd(0, EFD_NONBLOCK);
    REQUIRE(victim_efd >= 0);
    const pid_t victim = ::fork();
    if (victim == 0) {
        ::pause();
        _exit(0);
    }
    // Registrations that claim to be readers but name the victim's descriptors: its pipe
    // with the right start time, and its eventfd with a wrong start time (pid reuse).
    auto rfd = fs::open_dir(t.queue() + "/readers");
    REQUIRE(rfd.ok());
    std::vector<CursorStore> held;  // hold the locks so that the entries look alive
    for (const char* name : {"impostor1", "impostor2"}) {
        auto c = CursorStore::open(rfd->get(), t.queue() + "/readers", name, {.create = true});
        REQUIRE(c.ok());
        auto* wake = reinterpret_cast<format::CursorWake*>(c->page() + format::kCursorWakeOffset);
        wake->sleep_word.store(1);  // "asleep": the writer would signal it at once
        held.push_back(std::move(c.value()));
    }
    EfdInfo e;
    e.pid = victim;
    e.start_time = fs::process_start_time(victim);
    e.name = "impostor1";
    e.cursor = "impostor1.cursor";
    e.fd = p[1];
    std::ofstream(t.queue() + "/readers/impostor1.efd") << efd_to_json(e);
    e.name = "impostor2";
    e.cursor = "impostor2.cursor";
    e.fd = victim_efd;
    e.start_time += 1;
    std::ofstream(t.queue() + "/readers/impostor2.efd") << efd_to_json(e);

    auto w = Writer::open(t.queue());
    REQUIRE(w.ok());
    for (int i = 0; i < 10; ++i) REQUIRE(w.value()->append("x").ok());
    std::this_thread::sleep_for(50ms);
    char buf[16];
    CHECK(::read(p[0], buf, sizeof buf) == -1);  // nothing written into the victim's pipe
    CHECK(errno == EAGAIN);
    uint64_t v = 0;
    CHECK(::read(victim_efd, &v, sizeof v) == -1);  // nor into its eventfd
    ::kill(victim, SIGKILL);
    ::waitpid(victim, nullptr, 0);
    ::close(p[0]);
    ::close(p[1]);
    ::close(victim_efd);
}

TEST_CASE("InotifyOverflowIsFollowedByARescan") {
    const char* knob = "/proc/sys/fs/inotify/max_queued_events";
    std::string saved;
    {
        std::ifstream in(knob);
        std::getline(in, saved);
    }
    if (saved.empty() || ::access(knob, W_OK) != 0) {
        MESSAGE("skipped: cannot lower " << knob << " (needs root)");
        return;
    }
    test::TempDir t;
    { REQUIRE(Writer::open(t.queue()).ok()); }
    // The queue limit is taken when the inotify instance is created: shrink it around the
    // writer's start only, then restore it.
    { std::ofstream(knob) << 1; }
    auto w = Writer::open(t.queue());
    { std::ofstream(knob) << saved; }
    REQUIRE(w.ok());
    auto page = open_wake_page(::open(t.queue().c_str(), O_RDONLY | O_DIRECTORY), t.queue());
    REQUIRE(page.ok());
    auto* wp = reinterpret_cast<format::WakePage*>(page->data());
    const uint64_t rescans_before = wp->rescans.load();
    // A burst of registrations overflows a one-event queue.
    std::vector<std::unique_ptr<Reader>> readers;
    for (int i = 0; i < 20; ++i) {
        auto r = Reader::open(t.queue());
        REQUIRE(r.ok());
        (void)r.value()->wait(1ms);
        readers.push_back(std::move(r.value()));
    }
    const auto end = Clock::now() + 5s;
    while (wp->rescans.load() == rescans_before && Clock::now() < end)
        std::this_thread::sleep_for(1ms);
    CHECK(wp->rescans.load() > rescans_before);
    // After the rescan every follower is known: one append wakes them all.
    std::thread appender([&] {
        std::this_thread::sleep_for(50ms);
        REQUIRE(w.value()->append("after overflow").ok());
    });
    for (auto& r : readers) CHECK(next_following(*r) == "after overflow");
    appender.join();
}

TEST_CASE("FollowersOfAReplacedReadersDirectoryAreStillWoken") {
    // `rm -rf q/readers; mkdir q/readers` under a running writer: followers that register
    // in the new directory must still be found (by rescans) and woken.
    test::TempDir t;
    auto w = Writer::open(t.queue());
    REQUIRE(w.ok());
    REQUIRE(w.value()->append("before").ok());
    std::filesystem::remove_all(t.queue() + "/readers");
    std::filesystem::create_directory(t.queue() + "/readers");
    auto r = Reader::open(t.queue());
    REQUIRE(r.ok());
    REQUIRE(next_following(*r.value()) == "before");
    std::atomic<bool> appended{false};
    std::thread appender([&] {
        std::this_thread::sleep_for(1500ms);  // the follower is parked by then
        appended = w.value()->append("after").ok();
    });
    // Parked until the writer wakes it: a follower it cannot find sleeps to the timeout.
    Status st;
    do {
        st = r.value()->wait(10s);
    } while (st.ok() && !appended.load());  // the registration check may wake it early
    appender.join();
    CHECK(appended.load());
    CHECK_MESSAGE(st.ok(), st.message());
    CHECK(next_following(*r.value()) == "after");
    auto page = open_wake_page(::open(t.queue().c_str(), O_RDONLY | O_DIRECTORY), t.queue());
    REQUIRE(page.ok());
    auto* wp = reinterpret_cast<format::WakePage*>(page->data());
    // Woken by the writer, not by the end of its wait (which also finds the record).
    CHECK(wp->wakes_sent.load() >= 1);
}

#endif  // CHRONICLE_PORTABLE_NOTIFIER

TEST_CASE("NoWakeupIsLostInParkAppendRacesAcrossProcesses") {
    // Ping-pong: the writer appends one record, then waits until the follower has read
    // it, with a random pause so that appends land before, during and after the
    // follower's park. A lost wake-up shows as a follower that times out in wait() while
    // the record it waits for is committed.
    const char* scale_env = std::getenv("CHRONICLE_STRESS_SCALE");
    double scale = scale_env ? std::atof(scale_env) : 1.0;
#ifdef CHRONICLE_PORTABLE_NOTIFIER
    scale *= 0.05;  // back-off sleeps make each round trip ~100 µs+
#endif
    const uint64_t rounds = std::max<uint64_t>(1000, static_cast<uint64_t>(100000 * scale));
    test::TempDir t;
    { REQUIRE(Writer::open(t.queue()).ok()); }
    struct Shared {
        std::atomic<uint64_t> consumed{0};
        std::atomic<uint64_t> lost{0};
        std::atomic<int> ready{0};
    };
    auto* sh = shared_page<Shared>();
    const pid_t follower = ::fork();
    if (follower == 0) {
        auto r = Reader::open(t.queue());
        if (!r) _exit(2);
        (void)r.value()->wait(1ms);
        sh->ready.store(1);
        uint64_t expect = 0;
        while (expect < rounds) {
            auto n = r.value()->next();
            if (!n) _exit(3);
            if (n.value()) {
                if (n.value()->seq != expect) _exit(4);
                ++expect;
                sh->consumed.store(expect, std::memory_order_release);
                continue;
            }
            Status st = r.value()->wait(2s);
            if (st.code() == errc::timeout) {
                auto h = r.value()->head();
                if (h.ok() && h.value() > expect) sh->lost.fetch_add(1);  // asleep with data
            }
        }
        _exit(0);
    }
    while (sh->ready.load() == 0) std::this_thread::sleep_for(1ms);
    auto w = Writer::open(t.queue());
    REQUIRE(w.ok());
    std::mt19937 rng(42);
    std::uniform_int_distribution<int> pause(0, 40);
    const auto deadline = Clock::now() + 300s;
    bool stuck = false;
    for (uint64_t i = 0; i < rounds && !stuck; ++i) {
        for (int k = pause(rng); k > 0; --k) std::atomic_signal_fence(std::memory_order_seq_cst);
        if (pause(rng) == 0) std::this_thread::sleep_for(std::chrono::microseconds(pause(rng)));
        REQUIRE(w.value()->append("p").ok());
        while (sh->consumed.load(std::memory_order_acquire) <= i) {
            if (Clock::now() > deadline) {
                stuck = true;
                break;
            }
            std::this_thread::yield();
        }
    }
    int status = 0;
    if (stuck) ::kill(follower, SIGKILL);
    ::waitpid(follower, &status, 0);
    CHECK_FALSE(stuck);
    CHECK(sh->lost.load() == 0);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    MESSAGE(rounds << " park/append round trips");
    ::munmap(sh, 4096);
}

TEST_CASE("NoWakeupIsLostWhenTheNotifierThreadWakesManyFollowers") {
    // More followers than the writer wakes inline, so every append's wake-ups go through
    // its notifier thread, which an append kicks only when the thread sleeps (an awake one
    // looks at the request before it blocks). Ping-pong with random pauses, so that appends
    // land while the thread blocks, serves, and is about to block. A request that slipped
    // between its look and its sleep would leave the followers asleep until the thread's
    // next timeout (1 s): a follower sleeps to the end of its wait with the record there.
    const char* scale_env = std::getenv("CHRONICLE_STRESS_SCALE");
    double scale = scale_env ? std::atof(scale_env) : 1.0;
#ifdef CHRONICLE_PORTABLE_NOTIFIER
    scale *= 0.05;
#endif
    const uint64_t rounds = std::max<uint64_t>(300, static_cast<uint64_t>(4000 * scale));
    constexpr int kFollowers = 4;
    test::TempDir t;
    auto w = Writer::open(t.queue());
    REQUIRE(w.ok());
    std::array<std::atomic<uint64_t>, kFollowers> consumed{};
    std::atomic<uint64_t> lost{0}, failed{0};
    std::atomic<int> ready{0};
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    for (int f = 0; f < kFollowers; ++f) {
        threads.emplace_back([&, f] {
            auto r = Reader::open(t.queue());
            if (!r) {
                failed.fetch_add(1);
                ready.fetch_add(1);
                return;
            }
            (void)r.value()->wait(1ms);  // registers it
            ready.fetch_add(1);
            uint64_t expect = 0;
            while (expect < rounds && !stop.load()) {
                auto n = r.value()->next();
                if (!n || (n.value() && n.value()->seq != expect)) {
                    failed.fetch_add(1);
                    consumed[f].store(rounds, std::memory_order_release);
                    return;
                }
                if (n.value()) {
                    consumed[f].store(++expect, std::memory_order_release);
                    continue;
                }
                // A round trip takes well under a millisecond, also under TSan. A wait that
                // ends at its timeout (wait() then looks once more and may find the record)
                // with the record committed slept through its wake-up.
                const auto t0 = Clock::now();
                (void)r.value()->wait(400ms);
                if (Clock::now() - t0 >= 300ms) {
                    auto h = r.value()->head();
                    if (h.ok() && h.value() > expect) lost.fetch_add(1);  // asleep with data
                }
            }
        });
    }
    while (ready.load() < kFollowers) std::this_thread::sleep_for(1ms);
    std::this_thread::sleep_for(50ms);  // the notifier thread has registered them
    std::mt19937 rng(7);
    std::uniform_int_distribution<int> pause(0, 60);
    const auto deadline = Clock::now() + 240s;
    bool stuck = false;
    for (uint64_t i = 0; i < rounds && !stuck && lost.load() == 0; ++i) {
        for (int k = pause(rng); k > 0; --k) std::atomic_signal_fence(std::memory_order_seq_cst);
        if (pause(rng) < 6) std::this_thread::sleep_for(std::chrono::microseconds(pause(rng)));
        REQUIRE(w.value()->append("p").ok());
        for (const auto& c : consumed) {
            while (c.load(std::memory_order_acquire) <= i && !stuck) {
                stuck = Clock::now() > deadline;
                std::this_thread::yield();
            }
        }
    }
    stop.store(true);  // stopped early (stuck, a wake-up lost): no more records come
    for (auto& th : threads) th.join();
    CHECK_FALSE(stuck);
    CHECK(failed.load() == 0);
    CHECK(lost.load() == 0);
    MESSAGE(rounds << " rounds of one append woken in " << kFollowers << " followers");
}
