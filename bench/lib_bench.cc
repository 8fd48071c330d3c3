// bench_lib: the library's append path, each figure beside a baseline from the same run.
//
//   rate       64-byte records: Writer::append() one call per record, and in batches of 64
//              (begin_batch .. commit_batch); records/s and MB/s (payload bytes). Baseline:
//              memcpy of the same records (16-byte header + 64-byte payload, release store
//              of the state word) into a pre-faulted MAP_SHARED file mapping — the floor
//              of any mmap log. Fresh queue per repetition; reps interleaved.
//   followers  writer cost (ns/append) with 0 followers vs 100 registered followers that
//              keep up: 100 threads, each with its own Reader that called wait() once (so
//              it is registered and was woken by the writer) and then only polls next()
//              every --poll-ms (2 ms) without waiting again — never asleep, so the writer
//              must not make a system call for them. Appends come in bursts of --burst
//              records (so the followers can keep up on this machine); only the append
//              calls are timed. Every 1 ms tick appends one burst to each queue (0 and 100
//              followers), in alternating order, so both see the same machine load. With
//              two or more CPUs the writer is pinned to cpu 0 and the followers to cpu 1.
//              A large --poll-ms (200) leaves the followers registered but mostly idle:
//              what remains is the cost of registration alone, without their reads.
//   latency    per-append() latency p50/p99, one 64-byte append every --gap-us (100 us, so
//              woken followers have time to park again), with 0, 1, 16 and 64 followers
//              parked in wait() (each a thread with its own Reader looping next()/wait()).
//
// Usage: bench_lib --dir DIR [--modes rate,followers,latency] [--n 1000000] [--reps 5]
//                  [--followers 100] [--burst 256] [--bursts 400] [--poll-ms 2]
//                  [--lat-n 5000] [--gap-us 100] [--parked 0,1,16,64]
#include <fcntl.h>
#include <sys/mman.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <filesystem>
#include <memory>
#include <thread>

#include "bench_common.h"
#include "chronicle/reader.h"
#include "chronicle/writer.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

using namespace bench;
using chronicle::Reader;
using chronicle::Writer;
namespace stdfs = std::filesystem;

namespace {

constexpr size_t kPayload = 64;

std::unique_ptr<Writer> open_writer(const std::string& dir) {
    std::error_code ec;
    stdfs::remove_all(dir, ec);
    auto w = Writer::open(dir);
    if (!w) fail("cannot open writer on " + dir + ": " + w.status().message());
    return std::move(w.value());
}

void remove_queue(const std::string& dir) {
    std::error_code ec;
    stdfs::remove_all(dir, ec);
}

// Reads everything committed; returns the number of records, or -1 on error.
long drain(Reader& r) {
    long n = 0;
    for (;;) {
        auto rec = r.next();
        if (!rec) {
            note("reader error: %s", rec.status().message().c_str());
            return -1;
        }
        if (!rec.value()) return n;
        ++n;
    }
}

// ------------------------------------------------------------------------------- rate

// The floor: the same records memcpy'd into a pre-faulted shared file mapping.
double floor_seconds(const std::string& path, size_t n) {
    const size_t span = 16 + kPayload;
    const size_t cap = (n * span + 4095) & ~size_t(4095);
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) die("open floor file");
    if (::fallocate(fd, 0, 0, off_t(cap)) != 0) die("fallocate floor file");
    auto* base =
        static_cast<char*>(::mmap(nullptr, cap, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
    if (base == MAP_FAILED) die("mmap floor file");
    if (::madvise(base, cap, MADV_POPULATE_WRITE) != 0) {
        for (size_t o = 0; o < cap; o += 4096) base[o] = 0;  // older kernels: touch
    }
    alignas(8) char payload[kPayload] = {};
    const uint64_t t0 = now_ns();
    size_t off = 0;
    for (uint64_t i = 0; i < n; ++i) {
        std::memcpy(payload, &i, sizeof i);
        auto* hdr = reinterpret_cast<uint32_t*>(base + off);
        hdr[1] = uint32_t(kPayload);
        std::memcpy(base + off + 16, payload, kPayload);
        __atomic_store_n(&hdr[0], 0x41544144u, __ATOMIC_RELEASE);
        off += span;
    }
    const uint64_t t1 = now_ns();
    ::munmap(base, cap);
    ::close(fd);
    ::unlink(path.c_str());
    return double(t1 - t0) / 1e9;
}

double append_seconds(const std::string& dir, size_t n, size_t batch) {
    auto w = open_writer(dir);
    sleep_ms(50);  // let the pre-toucher get ahead, as it would in a long-running writer
    alignas(8) char payload[kPayload] = {};
    const uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < n;) {
        if (batch > 1) {
            if (auto st = w->begin_batch(); !st) fail("begin_batch: " + st.message());
        }
        for (size_t j = 0; j < batch && i < n; ++j, ++i) {
            std::memcpy(payload, &i, sizeof i);
            auto s = w->append(std::string_view(payload, kPayload));
            if (!s) fail("append: " + s.status().message());
        }
        if (batch > 1) {
            if (auto st = w->commit_batch(); !st) fail("commit_batch: " + st.message());
        }
    }
    const uint64_t t1 = now_ns();
    if (w->next_seq() != n)
        note("rate: next_seq %llu after %zu appends", (unsigned long long)w->next_seq(), n);
    w.reset();
    remove_queue(dir);
    return double(t1 - t0) / 1e9;
}

void run_rate(const std::string& dir, size_t n, int reps) {
    note("lib rate: %zu records of %zu bytes per repetition, %d repetitions", n, kPayload, reps);
    Reps r;
    auto add = [&](const std::string& name, double s) {
        r.add("lib.append64." + name + ".records_per_s", double(n) / s, "records/s", true);
        r.add("lib.append64." + name + ".MB_per_s", double(n * kPayload) / s / 1e6, "MB/s", true);
    };
    for (int rep = 0; rep < reps; ++rep) {
        add("memcpy_floor", floor_seconds(dir + "/floor.bin", n));
        add("single", append_seconds(dir + "/rate_q", n, 1));
        add("batch64", append_seconds(dir + "/rate_q", n, 64));
    }
    r.print();
    const double fl = r.med("lib.append64.memcpy_floor.records_per_s");
    emit_ratio("lib.append64.single_vs_memcpy", r.med("lib.append64.single.records_per_s"), fl);
    emit_ratio("lib.append64.batch64_vs_memcpy", r.med("lib.append64.batch64.records_per_s"), fl);
}

// -------------------------------------------------------------------------- followers

struct KeepUp {
    std::atomic<bool> stop{false};
    std::atomic<int> ready{0};
    std::atomic<int> woken{0};
    std::atomic<int> failed{0};
    std::unique_ptr<std::atomic<long>[]> got;
};

void keepup_follower(const std::string& dir, KeepUp& k, int idx, int cpu, int poll_ms) {
    pin_to_cpu(cpu);
    auto r = Reader::open(dir);
    if (!r) {
        note("follower %d: %s", idx, r.status().message().c_str());
        k.failed.fetch_add(1);
        k.ready.fetch_add(1);
        return;
    }
    Reader& rd = *r.value();
    k.ready.fetch_add(1);
    // Register as a follower: the queue is empty, so this wait() parks until the writer's
    // first record wakes it.
    auto st = rd.wait(std::chrono::seconds(10));
    if (st) {
        k.woken.fetch_add(1);
    } else {
        note("follower %d: wait() returned %s: %s", idx, chronicle::errc_name(st.code()),
             st.message().c_str());
        k.failed.fetch_add(1);
    }
    long got = 0;
    while (!k.stop.load(std::memory_order_relaxed)) {
        const long n = drain(rd);
        if (n < 0) break;
        got += n;
        k.got[idx].store(got, std::memory_order_relaxed);
        sleep_ms(poll_ms);  // keep up by polling: never wait() again, never asleep in the library
    }
}

// One repetition: `bursts` times, every 1 ms, a burst of `burst` appends on each queue, in
// alternating order, so that both see the same machine load. Adds the nanoseconds spent
// inside append() to ta / tb.
void bursts_ab(Writer& wa, Writer& wb, int bursts, int burst, uint64_t& ca, uint64_t& cb,
               double& ta, double& tb) {
    alignas(8) char payload[kPayload] = {};
    auto one = [&](Writer& w, uint64_t& counter) {
        const uint64_t t0 = now_ns();
        for (int j = 0; j < burst; ++j) {
            ++counter;
            std::memcpy(payload, &counter, sizeof counter);
            auto s = w.append(std::string_view(payload, kPayload));
            if (!s) fail("append: " + s.status().message());
        }
        return double(now_ns() - t0);
    };
    Pacer pace(1000);
    for (int b = 0; b < bursts; ++b) {
        pace.wait();
        if (b % 2 == 0) {
            ta += one(wa, ca);
            tb += one(wb, cb);
        } else {
            tb += one(wb, cb);
            ta += one(wa, ca);
        }
    }
}

void run_followers(const std::string& dir, int nf, int reps, int bursts, int burst, int poll_ms) {
    const long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    const int wcpu = ncpu >= 2 ? 0 : -1, fcpu = ncpu >= 2 ? 1 : -1;
    note(
        "lib followers: 0 vs %d keep-up followers; %d reps of %d ticks of 1 ms, each a burst of %d "
        "appends to both queues%s",
        nf, reps, bursts, burst, ncpu >= 2 ? "; writer on cpu0, followers on cpu1" : "");
    const std::string qa = dir + "/followers0_q", qb = dir + "/followersN_q";
    auto wa = open_writer(qa);
    auto wb = open_writer(qb);
    KeepUp k;
    k.got = std::make_unique<std::atomic<long>[]>(size_t(nf));
    for (int i = 0; i < nf; ++i) k.got[i].store(0);
    std::vector<std::thread> th;
    th.reserve(size_t(nf));
    for (int i = 0; i < nf; ++i)
        th.emplace_back(keepup_follower, qb, std::ref(k), i, fcpu, poll_ms);
    const uint64_t t_reg = now_ns();
    while (k.ready.load() < nf && now_ns() - t_reg < 20000000000ull) sleep_ms(5);
    sleep_ms(300);  // followers park; the writer's notifier registers them (inotify)
    uint64_t ca = 0, cb = 0;
    // The first record wakes every parked follower: proof that the writer registered them.
    {
        alignas(8) char payload[kPayload] = {};
        if (!wb->append(std::string_view(payload, kPayload))) fail("append");
        ++cb;
    }
    const uint64_t t_wake = now_ns();
    while (k.woken.load() + k.failed.load() < nf && now_ns() - t_wake < 15000000000ull) sleep_ms(5);
    note("lib followers: %d of %d followers woken by the first record in %.1f ms (%d failed)",
         k.woken.load(), nf, double(now_ns() - t_wake) / 1e6, k.failed.load());
    sleep_ms(20);
    pin_to_cpu(wcpu);
    Reps r;
    const double per = double(bursts) * burst;
    for (int rep = 0; rep < reps; ++rep) {
        double ta = 0, tb = 0;
        bursts_ab(*wa, *wb, bursts, burst, ca, cb, ta, tb);
        r.add("lib.append64.followers0.ns_per_append", ta / per, "ns", false);
        r.add("lib.append64.followers" + std::to_string(nf) + "_keepup.ns_per_append", tb / per,
              "ns", false);
    }
    unpin();
    // Did they keep up?
    const uint64_t t_end = now_ns();
    long min_got = 0;
    for (;;) {
        min_got = LONG_MAX;
        for (int i = 0; i < nf; ++i) min_got = std::min(min_got, k.got[i].load());
        if (min_got >= long(cb) || now_ns() - t_end > 3000000000ull) break;
        sleep_ms(5);
    }
    if (nf > 0) {
        note(
            "lib followers: slowest follower read %ld of %llu records (%.1f ms after the last "
            "append)",
            min_got, (unsigned long long)cb, double(now_ns() - t_end) / 1e6);
    }
    k.stop.store(true);
    for (auto& t : th) t.join();
    wa.reset();
    wb.reset();
    remove_queue(qa);
    remove_queue(qb);
    r.print();
    emit_ratio("lib.append64.followers" + std::to_string(nf) + "_keepup_vs_0",
               r.med("lib.append64.followers" + std::to_string(nf) + "_keepup.ns_per_append"),
               r.med("lib.append64.followers0.ns_per_append"));
}

// ---------------------------------------------------------------------------- latency

struct Parked {
    std::atomic<bool> stop{false};
    std::atomic<bool> active{false};
    std::atomic<int> ready{0};
    std::atomic<long> wakes{0};
    std::atomic<long> long_waits{0};
    std::atomic<int> errors{0};
    std::unique_ptr<std::atomic<long>[]> got;
};

void parked_follower(const std::string& dir, Parked& p, int idx) {
    auto r = Reader::open(dir);
    if (!r) {
        note("parked follower %d: %s", idx, r.status().message().c_str());
        p.errors.fetch_add(1);
        p.ready.fetch_add(1);
        return;
    }
    Reader& rd = *r.value();
    if (auto fd = rd.fd(); !fd) {  // registers it now, before the writer starts appending
        note("parked follower %d: fd(): %s", idx, fd.status().message().c_str());
    }
    p.ready.fetch_add(1);
    long got = 0;
    for (;;) {
        const long n = drain(rd);
        if (n < 0) {
            p.errors.fetch_add(1);
            return;
        }
        got += n;
        p.got[idx].store(got, std::memory_order_relaxed);
        if (p.stop.load()) return;
        const bool was_active = p.active.load();
        const uint64_t t0 = now_ns();
        auto st = rd.wait(std::chrono::seconds(1));
        const uint64_t t1 = now_ns();
        p.wakes.fetch_add(1, std::memory_order_relaxed);
        // The writer appends every 100 us: a wait this long while it was appending is a
        // wake-up that did not come.
        if (was_active && p.active.load() && t1 - t0 > 200000000ull) p.long_waits.fetch_add(1);
        if (!st && st.code() != chronicle::errc::timeout) {
            note("parked follower %d: wait(): %s", idx, st.message().c_str());
            p.errors.fetch_add(1);
            return;
        }
    }
}

void run_latency(const std::string& dir, const std::vector<int>& counts, int n, int gap_us) {
    const int warm = 500;
    // What a timed empty interval costs (two clock reads), for reading the figures.
    {
        std::vector<double> v;
        for (int i = 0; i < 100000; ++i) {
            const uint64_t a = now_ns();
            v.push_back(double(now_ns() - a));
        }
        emit("lib.append_latency.clock_overhead_p50_ns", percentile(v, 50), "ns");
    }
    note("lib latency: %d single appends paced at %d us (after %d warm-up) per follower count", n,
         gap_us, warm);
    for (int k : counts) {
        const std::string q = dir + "/latency_q";
        auto w = open_writer(q);
        Parked p;
        p.got = std::make_unique<std::atomic<long>[]>(size_t(std::max(k, 1)));
        for (int i = 0; i < k; ++i) p.got[i].store(0);
        std::vector<std::thread> th;
        for (int i = 0; i < k; ++i) th.emplace_back(parked_follower, q, std::ref(p), i);
        const uint64_t t_reg = now_ns();
        while (p.ready.load() < k && now_ns() - t_reg < 20000000000ull) sleep_ms(5);
        sleep_ms(300);  // they park; the writer's notifier registers them
        alignas(8) char payload[kPayload] = {};
        std::vector<double> lat;
        lat.reserve(size_t(n));
        uint64_t i = 0;
        Pacer pace(gap_us);
        p.active.store(true);
        for (int j = 0; j < warm + n; ++j) {
            pace.wait();
            ++i;
            std::memcpy(payload, &i, sizeof i);
            const uint64_t t0 = now_ns();
            auto s = w->append(std::string_view(payload, kPayload));
            const uint64_t t1 = now_ns();
            if (!s) fail("append: " + s.status().message());
            if (j >= warm) lat.push_back(double(t1 - t0));
        }
        p.active.store(false);
        const long wakes_before_drain = p.wakes.load();
        const uint64_t t_end = now_ns();
        long min_got = k > 0 ? 0 : long(i);
        while (k > 0) {
            min_got = LONG_MAX;
            for (int f = 0; f < k; ++f) min_got = std::min(min_got, p.got[f].load());
            if (min_got >= long(i) || now_ns() - t_end > 3000000000ull) break;
            sleep_ms(1);
        }
        const double catch_up_ms = double(now_ns() - t_end) / 1e6;
        p.stop.store(true);
        if (!w->append(std::string_view(payload, kPayload))) fail("append");  // wake them to stop
        for (auto& t : th) t.join();
        w.reset();
        remove_queue(q);
        const std::string base = "lib.append_latency.parked" + std::to_string(k);
        emit(base + ".p50_ns", percentile(lat, 50), "ns");
        emit(base + ".p99_ns", percentile(lat, 99), "ns");
        if (k > 0) {
            note(
                "parked=%d: %.2f wake-ups per follower per append; all caught up %.1f ms after the "
                "last append (slowest read %ld of %llu); %ld waits > 200 ms while appending; %d "
                "errors",
                k, double(wakes_before_drain) / double(k) / double(warm + n), catch_up_ms, min_got,
                (unsigned long long)i, p.long_waits.load(), p.errors.load());
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    const std::string dir = arg(argc, argv, "--dir", "");
    if (dir.empty()) fail("usage: bench_lib --dir DIR [options] (see the header of lib_bench.cc)");
    const std::string modes = arg(argc, argv, "--modes", "rate,followers,latency");
    const size_t n = size_t(argl(argc, argv, "--n", 1000000));
    const int reps = int(argl(argc, argv, "--reps", 5));
    const int nf = int(argl(argc, argv, "--followers", 100));
    const int burst = int(argl(argc, argv, "--burst", 256));
    const int bursts = int(argl(argc, argv, "--bursts", 400));
    const int lat_n = int(argl(argc, argv, "--lat-n", 5000));
    const int gap_us = int(argl(argc, argv, "--gap-us", 100));
    const auto parked = arg_list(argc, argv, "--parked", "0,1,16,64");
    signal(SIGPIPE, SIG_IGN);
    std::error_code ec;
    stdfs::create_directories(dir, ec);
    if (modes.find("rate") != std::string::npos) run_rate(dir, n, reps);
    const int poll_ms = int(argl(argc, argv, "--poll-ms", 2));
    if (modes.find("followers") != std::string::npos)
        run_followers(dir, nf, reps, bursts, burst, poll_ms);
    if (modes.find("latency") != std::string::npos) run_latency(dir, parked, lat_n, gap_us);
    return 0;
}
