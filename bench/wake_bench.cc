// bench_wake: wake-up latency of a reader parked in Reader::wait(), beside the raw eventfd
// floor measured the same way in the same run.
//
//   lib   a forked reader process opens the queue, registers (fd()) and loops
//         wait() / next(); the writer (this process) appends, every --gap-us (1 ms), a
//         record holding its sequence and its send time (CLOCK_MONOTONIC); the reader
//         stamps each record as next() returns it: one-way latency = arrival - send.
//   raw   a forked reader blocked in read() on an eventfd; the writer stores the send time
//         in shared memory, then writes the eventfd (bench-limits/wake.cpp "paced").
//   raw_epoll_follower  the same, but the reader waits as a follower must: epoll_wait with
//         a 2 s timeout, the eventfd edge-triggered beside a pidfd of the writer.
// The two alternate per repetition; samples are pooled over repetitions.
//
// Usage: bench_wake --dir DIR [--n 2000] [--gap-us 1000] [--reps 1]
//                  [--dump PREFIX]  (samples to PREFIX.<name>.txt, in arrival order)
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>

#include <chrono>
#include <filesystem>
#include <memory>

#include "bench_common.h"
#include "chronicle/reader.h"
#include "chronicle/writer.h"

using namespace bench;
namespace stdfs = std::filesystem;

namespace {

struct Msg {
    uint64_t seq;   // 1..n; 0 for warm-up records
    uint64_t sent;  // CLOCK_MONOTONIC ns
};

bool wait_byte(int fd, int timeout_ms) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return false;
    char c;
    return read(fd, &c, 1) == 1;
}

// Reader process: returns its exit code.
int lib_reader(const std::string& q, int go, int ready, uint64_t* lat, int n) {
    if (!wait_byte(go, 20000)) return 10;
    auto r = chronicle::Reader::open(q);
    if (!r) {
        note("lib reader: %s", r.status().message().c_str());
        return 11;
    }
    chronicle::Reader& rd = *r.value();
    if (auto fd = rd.fd(); !fd) {  // register as a follower now
        note("lib reader: fd(): %s", fd.status().message().c_str());
        return 12;
    }
    const char c = 'r';
    if (write(ready, &c, 1) != 1) return 13;
    int timeouts = 0;
    for (;;) {
        auto st = rd.wait(std::chrono::seconds(2));
        if (!st) {
            if (st.code() == chronicle::errc::timeout && ++timeouts < 10) continue;
            note("lib reader: wait(): %s", st.message().c_str());
            return 14;
        }
        for (;;) {
            auto rec = rd.next();
            if (!rec) {
                note("lib reader: next(): %s", rec.status().message().c_str());
                return 15;
            }
            if (!rec.value()) break;
            const uint64_t t = now_ns();
            Msg m{};
            if (rec.value()->payload.size() != sizeof m) continue;
            std::memcpy(&m, rec.value()->payload.data(), sizeof m);
            if (m.seq >= 1 && m.seq <= uint64_t(n)) lat[m.seq] = t - m.sent;
            if (m.seq == uint64_t(n)) return 0;
        }
    }
}

std::vector<double> lib_paced(const std::string& dir, int n, long gap_us) {
    const std::string q = dir + "/wake_q";
    std::error_code ec;
    stdfs::remove_all(q, ec);
    const size_t bytes = size_t(n + 1) * sizeof(uint64_t);
    auto* lat = static_cast<uint64_t*>(
        mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
    if (lat == MAP_FAILED) die("mmap");
    int go[2], ready[2];
    if (pipe2(go, O_CLOEXEC) != 0 || pipe2(ready, O_CLOEXEC) != 0) die("pipe");
    // Fork before the Writer exists: the child must not inherit its threads.
    const pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        die_with_parent();
        _exit(lib_reader(q, go[0], ready[1], lat, n));
    }
    close(go[0]);
    close(ready[1]);
    std::vector<double> out;
    {
        auto w = chronicle::Writer::open(q);
        if (!w) fail("cannot open writer on " + q + ": " + w.status().message());
        chronicle::Writer& wr = *w.value();
        const char c = 'g';
        if (write(go[1], &c, 1) != 1) die("write");
        if (!wait_byte(ready[0], 20000)) {
            note("lib wake: the reader did not start");
        } else {
            sleep_ms(300);  // it parks; the writer's notifier registers it
            Pacer pace(gap_us);
            for (int i = -50; i <= n; ++i) {  // 50 warm-up records first
                if (i == 0) continue;
                pace.wait();
                Msg m{uint64_t(i < 0 ? 0 : i), now_ns()};
                auto s = wr.append(std::string_view(reinterpret_cast<const char*>(&m), sizeof m));
                if (!s) fail("append: " + s.status().message());
            }
        }
        const int st = reap(pid, 5000, "lib wake reader");
        if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            note("lib wake: reader exited abnormally (status %d)", st);
        }
    }
    close(go[1]);
    close(ready[0]);
    for (int i = 1; i <= n; ++i)
        if (lat[i] != 0) out.push_back(double(lat[i]) / 1000.0);
    if (out.size() < size_t(n)) note("lib wake: %zu of %d records measured", out.size(), n);
    munmap(lat, bytes);
    stdfs::remove_all(q, ec);
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    const std::string dir = arg(argc, argv, "--dir", "");
    if (dir.empty()) fail("usage: bench_wake --dir DIR [--n 2000] [--gap-us 1000] [--reps 1]");
    const int n = int(argl(argc, argv, "--n", 2000));
    const long gap_us = argl(argc, argv, "--gap-us", 1000);
    const int reps = int(argl(argc, argv, "--reps", 1));
    signal(SIGPIPE, SIG_IGN);
    std::error_code ec;
    stdfs::create_directories(dir, ec);
    note("wake: %d records paced at %ld us, %d rep(s), library reader vs raw eventfd", n, gap_us,
         reps);
    std::vector<double> lib, raw, follower;
    for (int rep = 0; rep < reps; ++rep) {
        auto a = lib_paced(dir, n, gap_us);
        lib.insert(lib.end(), a.begin(), a.end());
        auto b = raw_eventfd_paced(n, gap_us);
        raw.insert(raw.end(), b.begin(), b.end());
        auto c = raw_eventfd_paced(n, gap_us, true);
        follower.insert(follower.end(), c.begin(), c.end());
    }
    const std::string dump_prefix = arg(argc, argv, "--dump", "");
    dump(dump_prefix, "wake.lib_parked_reader", lib);
    dump(dump_prefix, "wake.raw_eventfd", raw);
    dump(dump_prefix, "wake.raw_epoll_follower", follower);
    emit("wake.lib_parked_reader.oneway_p50_us", percentile(lib, 50), "us");
    emit("wake.lib_parked_reader.oneway_p99_us", percentile(lib, 99), "us");
    emit("wake.raw_eventfd.oneway_p50_us", percentile(raw, 50), "us");
    emit("wake.raw_eventfd.oneway_p99_us", percentile(raw, 99), "us");
    // The floor of a reader that must also see its writer die: the same eventfd, waited
    // for in epoll_wait with a timeout beside a pidfd (what Reader::wait() does).
    emit("wake.raw_epoll_follower.oneway_p50_us", percentile(follower, 50), "us");
    emit("wake.raw_epoll_follower.oneway_p99_us", percentile(follower, 99), "us");
    emit_ratio("wake.lib_vs_raw_eventfd_p50", percentile(lib, 50), percentile(raw, 50));
    emit_ratio("wake.lib_vs_raw_epoll_follower_p50", percentile(lib, 50), percentile(follower, 50));
    emit_ratio("wake.raw_epoll_follower_vs_raw_eventfd_p50", percentile(follower, 50),
               percentile(raw, 50));
    return 0;
}
