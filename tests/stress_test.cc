// Stress: one writer and several followers, in threads and in processes, through hundreds of
// segment rolls. Every record must arrive exactly once, in order and intact, and no follower
// may stall at a segment boundary. CHRONICLE_STRESS_SCALE (a fraction such as 0.2, default 1)
// shrinks the record counts for sanitizer builds.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <random>
#include <thread>

#include "helpers.h"

using namespace chronicle;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

// A follower that receives nothing for this long while records are due has stalled.
constexpr auto kStallLimit = 5s;

uint64_t scaled(uint64_t n) {
    double f = 1.0;
    if (const char* s = std::getenv("CHRONICLE_STRESS_SCALE")) {
        const double v = std::strtod(s, nullptr);
        if (v > 0) f = v;
    }
    return std::max<uint64_t>(1000, static_cast<uint64_t>(static_cast<double>(n) * f));
}

WriterOptions segments_of(uint64_t size) {
    WriterOptions o;
    o.segment_size = size;
    return o;
}

// "seq=<n>;b=<first>+<len>;" + 0..119 filler bytes (binary included), all a function of the
// sequence and of the batch [first, first + len) the record was committed in (a single
// record is a batch of one).
std::string content(uint64_t seq, uint64_t first, uint64_t len) {
    std::string s = "seq=" + std::to_string(seq) + ";b=" + std::to_string(first) + "+" +
                    std::to_string(len) + ";";
    uint64_t h = (seq + 1) * 0x9E3779B97F4A7C15ull;
    h ^= h >> 29;
    const size_t n = h % 120;
    for (size_t i = 0; i < n; ++i) s.push_back(static_cast<char>((h >> (i % 8)) + i * 13));
    return s;
}

// The end (first + len) of the batch record `seq` says it belongs to, if its text is exactly
// content(seq, first, len); 0 otherwise.
uint64_t batch_end_if_valid(std::string_view text, uint64_t seq) {
    const std::string prefix = "seq=" + std::to_string(seq) + ";b=";
    if (text.substr(0, prefix.size()) != prefix) return 0;
    const char* end = text.data() + text.size();
    uint64_t first = 0;
    uint64_t len = 0;
    auto r = std::from_chars(text.data() + prefix.size(), end, first);
    if (r.ec != std::errc{} || r.ptr == end || *r.ptr != '+') return 0;
    r = std::from_chars(r.ptr + 1, end, len);
    if (r.ec != std::errc{} || len == 0 || first > seq || seq >= first + len) return 0;
    return text == content(seq, first, len) ? first + len : 0;
}

// Appends records 0..total-1 with content(seq): single append()s, claim/commit, and batches
// of 1..50 records. Returns the first problem, or an empty string. Bumps `progress` (if any)
// with the number of records committed.
std::string write_all(Writer& w, uint64_t total, uint64_t seed,
                      std::atomic<uint64_t>* progress = nullptr) {
    std::mt19937_64 rng(seed);
    auto put = [&](uint64_t seq, uint64_t first, uint64_t len, bool by_claim) -> std::string {
        const std::string p = content(seq, first, len);
        Result<uint64_t> s = uint64_t{0};
        if (by_claim) {
            auto c = w.claim(p.size() + 16);
            if (!c) return "claim: " + c.status().message();
            std::memcpy(c.value().data(), p.data(), p.size());
            s = w.commit(p.size());
        } else {
            s = w.append(p);
        }
        if (!s) return "append " + std::to_string(seq) + ": " + s.status().message();
        if (s.value() != seq)
            return "record " + std::to_string(seq) + " got sequence " + std::to_string(s.value());
        return {};
    };
    while (w.next_seq() < total) {
        const uint64_t seq = w.next_seq();
        const uint64_t kind = rng() % 10;
        if (kind < 4) {
            if (auto e = put(seq, seq, 1, kind == 0); !e.empty()) return e;
        } else {
            const uint64_t len = std::min<uint64_t>(1 + rng() % 50, total - seq);
            if (!w.begin_batch()) return "begin_batch failed";
            for (uint64_t i = 0; i < len; ++i) {
                if (auto e = put(seq + i, seq, len, rng() % 8 == 0); !e.empty()) return e;
            }
            if (Status st = w.commit_batch(); !st) return "commit_batch: " + st.message();
        }
        if (progress != nullptr) progress->store(w.next_seq(), std::memory_order_relaxed);
    }
    return {};
}

// Follows `r` until it has received records 0..total-1, polling (yield on nullopt) and
// checking each one, and that a batch is never seen in part: once its first record has
// arrived, the rest must follow without a nullopt in between. `progress` counts the records
// received. Gives up when `stop` is set or, if `stall_limit` is non-zero, when nothing
// arrives for that long. Returns the first problem, or an empty string.
std::string follow(Reader& r, uint64_t total, std::atomic<uint64_t>& progress,
                   const std::atomic<bool>* stop, Clock::duration stall_limit) {
    uint64_t expect = 0;
    uint64_t batch_end = 0;  // end of the batch of the last record received
    auto last = Clock::now();
    while (expect < total) {
        auto n = r.next();
        if (!n) return "next() at " + std::to_string(expect) + ": " + n.status().message();
        if (!n.value()) {
            if (expect < batch_end) {
                return "only part of a batch was visible: record " + std::to_string(expect) +
                       " of the batch ending at " + std::to_string(batch_end) + " was not there";
            }
            if (stop != nullptr && stop->load(std::memory_order_relaxed)) {
                return "stopped while waiting for record " + std::to_string(expect);
            }
            if (stall_limit != Clock::duration::zero() && Clock::now() - last > stall_limit) {
                return "stalled: nothing after record " + std::to_string(expect) + " for " +
                       std::to_string(
                           std::chrono::duration_cast<std::chrono::seconds>(stall_limit).count()) +
                       " s";
            }
            std::this_thread::yield();
            continue;
        }
        const Record& rec = *n.value();
        if (rec.seq != expect) {
            return "expected record " + std::to_string(expect) + ", got " + std::to_string(rec.seq);
        }
        const uint64_t end = batch_end_if_valid(rec.text(), rec.seq);
        if (end == 0) return "record " + std::to_string(expect) + " has the wrong content";
        batch_end = end;
        ++expect;
        progress.store(expect, std::memory_order_relaxed);
        last = Clock::now();
    }
    // Exactly once: nothing after the last record.
    auto n = r.next();
    if (!n) return "next() after the last record: " + n.status().message();
    if (n.value()) return "a record after the last one: " + std::to_string(n.value()->seq);
    return {};
}

// fork() with stdio flushed, so that no child repeats the parent's buffered output.
pid_t fork_flushed() {
    std::cout.flush();
    std::cerr.flush();
    std::fflush(nullptr);
    return ::fork();
}

// Waits for a child until `deadline`, SIGKILLing it after that. Returns its wait status.
int reap(pid_t pid, Clock::time_point deadline) {
    int status = 0;
    for (;;) {
        const pid_t got = ::waitpid(pid, &status, WNOHANG);
        if (got == pid) return status;
        if (got < 0) return -1;
        if (Clock::now() > deadline) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            return status;
        }
        std::this_thread::sleep_for(5ms);
    }
}

std::string describe(int status) {
    if (status == -1) return "waitpid failed";
    if (WIFEXITED(status)) return "exit code " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
    return "status " + std::to_string(status);
}

bool exited_cleanly(int status) {
    return status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

}  // namespace

TEST_CASE("ThreadFollowersGetEveryRecordOnceInOrderAndNeverStallAtARoll") {
    const uint64_t total = scaled(200000);
    test::TempDir t;
    const std::string q = t.queue();
    auto w = Writer::open(q, segments_of(64 * 1024));
    REQUIRE(w.ok());
    constexpr int kReaders = 2;
    std::vector<std::unique_ptr<Reader>> readers;
    for (int i = 0; i < kReaders; ++i) {
        auto r = Reader::open(q);
        REQUIRE(r.ok());
        readers.push_back(std::move(r.value()));
    }

    std::atomic<bool> stop{false};
    std::atomic<uint64_t> written{0};
    std::atomic<uint64_t> got[kReaders]{};
    std::atomic<int> finished{0};
    std::string writer_error;
    std::string reader_error[kReaders];
    std::vector<std::thread> threads;
    threads.emplace_back([&] {
        writer_error = write_all(*w.value(), total, 42, &written);
        finished.fetch_add(1);
    });
    for (int i = 0; i < kReaders; ++i) {
        threads.emplace_back([&, i] {
            reader_error[i] = follow(*readers[i], total, got[i], &stop, Clock::duration::zero());
            finished.fetch_add(1);
        });
    }

    // Watchdog: some thread must make progress at least every kStallLimit.
    uint64_t last_sum = 0;
    auto last_change = Clock::now();
    bool stalled = false;
    while (finished.load() < kReaders + 1) {
        std::this_thread::sleep_for(20ms);
        uint64_t sum = written.load();
        for (auto& g : got) sum += g.load();
        if (sum != last_sum) {
            last_sum = sum;
            last_change = Clock::now();
        } else if (Clock::now() - last_change > kStallLimit) {
            stalled = true;
            stop.store(true);
            break;
        }
    }
    if (stalled) {
        // The threads poll `stop`; if one is stuck inside the library, end the process.
        const auto deadline = Clock::now() + 5s;
        while (finished.load() < kReaders + 1 && Clock::now() < deadline)
            std::this_thread::sleep_for(10ms);
        if (finished.load() < kReaders + 1) {
            std::fprintf(
                stderr,
                "stress: a thread is stuck inside the library (written %llu, got %llu/%llu)\n",
                static_cast<unsigned long long>(written.load()),
                static_cast<unsigned long long>(got[0].load()),
                static_cast<unsigned long long>(got[1].load()));
            std::_Exit(1);
        }
    }
    for (auto& th : threads) th.join();
    INFO("written " << written.load() << ", followers at " << got[0].load() << " and "
                    << got[1].load());
    CHECK_FALSE(stalled);
    CHECK_MESSAGE(writer_error.empty(), writer_error);
    for (int i = 0; i < kReaders; ++i) {
        CAPTURE(i);
        CHECK_MESSAGE(reader_error[i].empty(), reader_error[i]);
        CHECK(got[i].load() == total);
    }
    // Hundreds of rolls happened (the point of the tiny segments).
    const auto names = test::list_dir(q);
    const auto segs = std::count_if(names.begin(), names.end(), [](const std::string& n) {
        return n.ends_with(".seg") && n[0] != '.';
    });
    CHECK(segs >= static_cast<long>(total / 1000));
}

TEST_CASE("ProcessFollowersGetEveryRecordOnceInOrderAndNeverStallAtARoll") {
    const uint64_t total = scaled(200000);
    test::TempDir t;
    const std::string q = t.queue();
    { REQUIRE(Writer::open(q, segments_of(64 * 1024)).ok()); }  // the queue exists, empty

    const pid_t writer = fork_flushed();
    REQUIRE(writer >= 0);
    if (writer == 0) {
        int code = 0;
        {
            auto w = Writer::open(q, segments_of(64 * 1024));
            if (!w) ::_exit(10);
            const std::string e = write_all(*w.value(), total, 4242);
            if (!e.empty()) {
                std::fprintf(stderr, "writer child: %s\n", e.c_str());
                code = 11;
            }
        }
        ::_exit(code);
    }
    const pid_t other = fork_flushed();
    if (other == 0) {
        int code = 0;
        {
            auto r = Reader::open(q);
            if (!r) ::_exit(20);
            std::atomic<uint64_t> got{0};
            const std::string e = follow(*r.value(), total, got, nullptr, kStallLimit);
            if (!e.empty()) {
                std::fprintf(stderr, "reader child: %s\n", e.c_str());
                code = e.starts_with("stalled") ? 22 : 21;
            }
        }
        ::_exit(code);
    }

    std::string error;
    std::atomic<uint64_t> got{0};
    if (other > 0) {
        auto r = Reader::open(q);
        if (!r) {
            error = "Reader::open: " + r.status().message();
        } else {
            error = follow(*r.value(), total, got, nullptr, kStallLimit);
        }
    }
    const auto deadline = Clock::now() + 60s;
    const int ws = reap(writer, deadline);
    const int rs = other > 0 ? reap(other, deadline) : -1;
    REQUIRE(other > 0);
    CHECK_MESSAGE(exited_cleanly(ws), "writer child: " << describe(ws));
    CHECK_MESSAGE(exited_cleanly(rs), "reader child: " << describe(rs));
    CHECK_MESSAGE(error.empty(), error);
    CHECK(got.load() == total);
}

TEST_CASE("DescriptorsAndMappingsStayFlatForAFollowerAcross1000RollsOfAnotherProcess") {
    constexpr uint64_t kPerSegment = 4;  // 3000-byte records in 16 KiB segments
    constexpr uint64_t kRolls = 1000;
    constexpr uint64_t kWarmup = 20 * kPerSegment;
    constexpr uint64_t kTotal = kWarmup + (kRolls + 1) * kPerSegment;
    test::TempDir t;
    const std::string q = t.queue();
    { REQUIRE(Writer::open(q, segments_of(16 * 1024)).ok()); }
    auto r = Reader::open(q);
    REQUIRE(r.ok());

    const pid_t writer = fork_flushed();
    REQUIRE(writer >= 0);
    if (writer == 0) {
        {
            auto w = Writer::open(q, segments_of(16 * 1024));
            if (!w) ::_exit(10);
            for (uint64_t i = 0; i < kTotal; ++i) {
                std::string rec = content(i, i, 1);
                rec.resize(3000, static_cast<char>('a' + i % 26));
                if (!w.value()->append(rec)) ::_exit(11);
            }
        }
        ::_exit(0);
    }

    std::string error;
    std::atomic<uint64_t> got{0};
    size_t fds = 0;
    size_t maps = 0;
    auto read_to = [&](uint64_t n) {
        auto last = Clock::now();
        while (error.empty() && got.load() < n) {
            auto x = r.value()->next();
            if (!x) {
                error = "next(): " + x.status().message();
            } else if (!x.value()) {
                if (Clock::now() - last > kStallLimit)
                    error = "stalled at " + std::to_string(got.load());
                std::this_thread::yield();
            } else {
                if (x.value()->seq != got.load())
                    error = "out of order at " + std::to_string(got.load());
                got.fetch_add(1);
                last = Clock::now();
            }
        }
    };
    read_to(kWarmup);  // warm up (allocator, first mappings)
    fds = test::count_open_fds();
    maps = test::count_mappings();
    read_to(kTotal);
    const size_t fds_after = test::count_open_fds();
    const size_t maps_after = test::count_mappings();
    const int ws = reap(writer, Clock::now() + 60s);
    CHECK_MESSAGE(exited_cleanly(ws), "writer child: " << describe(ws));
    REQUIRE_MESSAGE(error.empty(), error);
    CHECK(got.load() == kTotal);
    CHECK(fds_after == fds);
    CHECK(maps_after <= maps + 1);
    // The follower really crossed 1000 boundaries.
    const auto names = test::list_dir(q);
    CHECK(std::count_if(names.begin(), names.end(), [](const std::string& n) {
              return n.ends_with(".seg") && n[0] != '.';
          }) >= static_cast<long>(kRolls));
}
