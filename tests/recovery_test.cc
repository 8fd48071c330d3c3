// Recovery: whatever instant a writer dies at, the next Writer::open keeps every committed
// record, drops everything uncommitted (torn records, uncommitted batches and the segments
// they made) and continues the sequence densely; damage it cannot explain stops it without
// touching the file. Readers never need a live writer.
//
// Crash states come from SIGKILL: at random instants of a forked child appending at full
// speed, and at every system call of a traced child (ptrace) going through rolls and
// batches. States a kill seldom hits are also written by hand into a closed queue.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <new>
#include <random>
#include <sstream>
#include <thread>

#include "format.h"
#include "helpers.h"

using namespace chronicle;
namespace fmt = chronicle::format;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
using test::file_bytes;
using test::peek;
using test::poke;

namespace {

constexpr uint64_t kTinySegment = 16 * 1024;

WriterOptions tiny(bool pretouch) {
    WriterOptions o;
    o.segment_size = kTinySegment;
    o.pretouch = pretouch;
    return o;
}

// ---- record content ------------------------------------------------------------------------

// Filler bytes after the text prefix: a function of the sequence, mostly 0..299 bytes, now and
// then a few kilobytes (so that records straddle the tiny segments' ends in every way).
size_t filler_len(uint64_t seq) {
    uint64_t h = (seq + 1) * 0x9E3779B97F4A7C15ull;
    h ^= h >> 31;
    return h % 53 == 0 ? 1000 + h % 3000 : h % 300;
}

void add_filler(std::string& s, uint64_t seq, size_t n) {
    for (size_t i = 0; i < n; ++i) s.push_back(static_cast<char>((seq * 131 + i * 7) & 0xff));
}

// "seq=<n>;b=<first>+<len>;" + filler: record `seq` of the batch [first, first + len) (a single
// record is a batch of one). A reader can check every byte, and that a batch appears whole.
std::string payload(uint64_t seq, uint64_t first, uint64_t len) {
    std::string s = "seq=" + std::to_string(seq) + ";b=" + std::to_string(first) + "+" +
                    std::to_string(len) + ";";
    add_filler(s, seq, filler_len(seq));
    return s;
}
std::string single(uint64_t seq) {
    return payload(seq, seq, 1);
}

// Exactly `len` bytes: "seq=<n>;" + filler (for hand-made states that need known spans).
std::string sized(uint64_t seq, size_t len) {
    std::string s = "seq=" + std::to_string(seq) + ";";
    REQUIRE(s.size() <= len);
    add_filler(s, seq, len - s.size());
    return s;
}

// The end of the batch record `seq` says it belongs to (first + len) if `text` is exactly
// what payload() makes for it, else 0.
uint64_t batch_end_if_valid(std::string_view text, uint64_t seq) {
    const std::string prefix = "seq=" + std::to_string(seq) + ";b=";
    if (text.substr(0, prefix.size()) != prefix) return 0;
    const char* p = text.data() + prefix.size();
    const char* end = text.data() + text.size();
    uint64_t first = 0;
    uint64_t len = 0;
    auto r = std::from_chars(p, end, first);
    if (r.ec != std::errc{} || r.ptr == end || *r.ptr != '+') return 0;
    r = std::from_chars(r.ptr + 1, end, len);
    if (r.ec != std::errc{}) return 0;
    if (len == 0 || first > seq || seq >= first + len) return 0;
    if (text != payload(seq, first, len)) return 0;
    return first + len;
}

std::string printable(std::string_view s) {
    std::ostringstream o;
    for (char c : s.substr(0, 48)) {
        if (c >= 32 && c < 127) {
            o << c;
        } else {
            o << "\\x" << std::hex << (static_cast<unsigned>(c) & 0xff) << std::dec;
        }
    }
    return o.str();
}

// Reads the whole queue from the start and checks what the kill loop's writer promises.
struct Scan {
    uint64_t count = 0;              // records read, dense from 0
    uint64_t batch_end = 0;          // the largest batch end named by a record read
    std::string error;               // the first problem, empty if none
    std::unique_ptr<Reader> reader;  // positioned after the last record read
};

Scan scan_queue(const std::string& q) {
    Scan s;
    auto r = Reader::open(q);
    if (!r) {
        s.error = "Reader::open: " + r.status().message();
        return s;
    }
    s.reader = std::move(r.value());
    uint64_t prev_ts = 0;
    for (;;) {
        auto n = s.reader->next();
        if (!n) {
            s.error =
                "next() after " + std::to_string(s.count) + " records: " + n.status().message();
            return s;
        }
        if (!n.value()) return s;
        const Record& rec = *n.value();
        if (rec.seq != s.count) {
            s.error =
                "record #" + std::to_string(s.count) + " has sequence " + std::to_string(rec.seq);
            return s;
        }
        const uint64_t end = batch_end_if_valid(rec.text(), rec.seq);
        if (end == 0) {
            s.error = "record " + std::to_string(rec.seq) + " has the wrong content (" +
                      std::to_string(rec.payload.size()) + " bytes): " + printable(rec.text());
            return s;
        }
        if (rec.timestamp_ns < prev_ts) {
            s.error = "record " + std::to_string(rec.seq) +
                      " has an earlier timestamp than the one before";
            return s;
        }
        prev_ts = rec.timestamp_ns;
        s.batch_end = std::max(s.batch_end, end);
        ++s.count;
    }
}

// ---- processes -----------------------------------------------------------------------------

// One std::atomic<uint64_t> in an anonymous shared page, visible to forked children.
class SharedCounter {
  public:
    SharedCounter() {
        void* p = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) std::abort();
        c_ = new (p) std::atomic<uint64_t>(0);
    }
    ~SharedCounter() { ::munmap(c_, 4096); }
    SharedCounter(const SharedCounter&) = delete;
    SharedCounter& operator=(const SharedCounter&) = delete;
    std::atomic<uint64_t>* operator->() const { return c_; }
    [[nodiscard]] std::atomic<uint64_t>* get() const { return c_; }

  private:
    std::atomic<uint64_t>* c_;
};

// fork() with stdio flushed, so that no child repeats the parent's buffered output.
pid_t fork_flushed() {
    std::cout.flush();
    std::cerr.flush();
    std::fflush(nullptr);
    return ::fork();
}

// Kills and reaps a child that is still running when a REQUIRE leaves the test early.
struct ChildGuard {
    pid_t pid = -1;
    ~ChildGuard() {
        if (pid > 0) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
    }
};

// SIGKILLs `pid` and returns a description of how it ended if that was not the SIGKILL.
std::string kill_and_reap(ChildGuard& g) {
    ::kill(g.pid, SIGKILL);
    int status = 0;
    const pid_t got = ::waitpid(g.pid, &status, 0);
    g.pid = -1;
    if (got < 0) return "waitpid failed";
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) return {};
    if (WIFEXITED(status))
        return "the child exited by itself with code " + std::to_string(WEXITSTATUS(status));
    return "the child ended with status " + std::to_string(status);
}

bool wait_until(const std::function<bool()>& cond, std::chrono::milliseconds limit) {
    const auto deadline = Clock::now() + limit;
    while (!cond()) {
        if (Clock::now() > deadline) return false;
        std::this_thread::sleep_for(20us);
    }
    return true;
}

// Child exit codes (the parent reports them; a SIGKILL is the expected end).
enum ChildExit {
    kOpenFailed = 10,
    kClaimFailed,
    kWrongSequence,
    kRanTooLong,
    kBatchFailed,
    kAbortLeftATrace,
    kNoPtrace,
};

// Appends `seq` with content `p`, by append() or by claim/commit (claiming more than needed
// and scribbling past the committed length).
void put(Writer& w, uint64_t seq, const std::string& p, bool by_claim, std::mt19937_64& rng) {
    if (by_claim) {
        const size_t extra = rng() % 64;
        auto c = w.claim(p.size() + extra);
        if (!c) ::_exit(kClaimFailed);
        std::memcpy(c.value().data(), p.data(), p.size());
        std::memset(c.value().data() + p.size(), 'G', extra);
        auto s = w.commit(p.size());
        if (!s || s.value() != seq) ::_exit(kWrongSequence);
    } else {
        auto s = w.append(p);
        if (!s || s.value() != seq) ::_exit(kWrongSequence);
    }
}

// The kill loop's child: appends until killed, mixing append(), claim/commit, batches of 1..50
// records and abandoned work, and stores the number of committed records into `committed`
// (release) after every commit.
[[noreturn]] void append_until_killed(const std::string& q, bool pretouch, uint64_t seed,
                                      std::atomic<uint64_t>* committed) {
    auto w = Writer::open(q, tiny(pretouch));
    if (!w) ::_exit(kOpenFailed);
    Writer& wr = *w.value();
    std::mt19937_64 rng(seed);
    const auto give_up = Clock::now() + 10s;
    for (;;) {
        if (Clock::now() > give_up) ::_exit(kRanTooLong);
        const uint64_t seq = wr.next_seq();
        const uint64_t kind = rng() % 10;
        if (kind < 3) {
            put(wr, seq, single(seq), false, rng);
        } else if (kind < 5) {
            put(wr, seq, single(seq), true, rng);
        } else if (kind < 9) {
            const uint64_t len = 1 + rng() % 50;
            // Half of the batches through the page cache (page_stage.h).
            if (!wr.begin_batch(rng() % 2 == 0 ? 0 : 1 << 20)) ::_exit(kBatchFailed);
            for (uint64_t i = 0; i < len; ++i) {
                put(wr, seq + i, payload(seq + i, seq, len), rng() % 4 == 0, rng);
            }
            if (!wr.commit_batch()) ::_exit(kBatchFailed);
        } else {
            // Abandoned work must never show up: a claim, then a batch that may span rolls.
            auto c = wr.claim(300);
            if (!c) ::_exit(kClaimFailed);
            std::memset(c.value().data(), 'A', 300);
            wr.abort();
            if (!wr.begin_batch(rng() % 2 == 0 ? 0 : 1 << 20)) ::_exit(kBatchFailed);
            const uint64_t n = 1 + rng() % 40;
            for (uint64_t i = 0; i < n; ++i) {
                if (!wr.append("aborted" + std::string(400, 'A'))) ::_exit(kBatchFailed);
            }
            wr.abort_batch();
            if (wr.next_seq() != seq) ::_exit(kAbortLeftATrace);
            continue;
        }
        committed->store(wr.next_seq(), std::memory_order_release);
    }
}

// ---- files ---------------------------------------------------------------------------------

std::string seg_file(const std::string& q, uint64_t base) {
    char name[32];
    std::snprintf(name, sizeof name, "%020llu.seg", static_cast<unsigned long long>(base));
    return q + "/" + name;
}

std::vector<uint64_t> segment_bases(const std::string& q) {
    std::vector<uint64_t> out;
    for (const auto& n : test::list_dir(q)) {
        if (n.size() == 24 && n.ends_with(".seg")) out.push_back(std::stoull(n.substr(0, 20)));
    }
    return out;  // list_dir sorts, and the names are zero-padded
}

// A record header as the writer lays it out (state, length, timestamp), then `body`.
std::string record_bytes(uint32_t state, uint32_t length, std::string_view body) {
    std::string s(fmt::kRecordHeaderSize, '\0');
    const uint64_t ts = 1;
    std::memcpy(s.data(), &state, 4);
    std::memcpy(s.data() + 4, &length, 4);
    std::memcpy(s.data() + 8, &ts, 8);
    s.append(body);
    return s;
}

uint64_t data_begin(const std::string& seg) {
    return peek<uint32_t>(seg, offsetof(fmt::SegmentHeader, header_size));
}

// Offset of record `upto` in the segment whose first record is `base`, from the lengths of
// the records read back (records[i] is record i): the header plus the spans before it.
uint64_t offset_of(const std::string& seg, const std::vector<std::string>& records, uint64_t base,
                   uint64_t upto) {
    uint64_t off = data_begin(seg);
    for (uint64_t s = base; s < upto; ++s) off += fmt::record_span(records.at(s).size());
    return off;
}

std::map<std::string, std::string> segment_snapshot(const std::string& q) {
    std::map<std::string, std::string> out;
    for (uint64_t b : segment_bases(q)) out[seg_file(q, b)] = file_bytes(seg_file(q, b));
    return out;
}

}  // namespace

// ---- SIGKILL at random instants ------------------------------------------------------------

TEST_CASE("KilledWriterLosesNothingCommittedAndTheNextWriterContinuesDensely") {
    constexpr int kIterations = 200;
    test::TempDir t;
    const std::string q = t.queue();
    { REQUIRE(Writer::open(q, tiny(false)).ok()); }
    SharedCounter committed;
    std::mt19937_64 rng(0xC0FFEE);
    uint64_t known = 0;            // records on disk before the iteration (its child's start)
    int killed_after_commits = 0;  // iterations whose child committed before it died
    for (int it = 0; it < kIterations; ++it) {
        CAPTURE(it);
        committed->store(known, std::memory_order_relaxed);
        const bool pretouch = rng() % 2 == 0;
        const bool wait_for_a_commit = rng() % 3 != 0;
        const auto delay = std::chrono::microseconds(rng() % 3001);
        const uint64_t seed = rng();
        ChildGuard child;
        child.pid = fork_flushed();
        REQUIRE(child.pid >= 0);
        if (child.pid == 0) append_until_killed(q, pretouch, seed, committed.get());
        if (wait_for_a_commit) {
            wait_until([&] { return committed->load(std::memory_order_acquire) > known; }, 5000ms);
        }
        std::this_thread::sleep_for(delay);
        const std::string how = kill_and_reap(child);
        INFO("pretouch=" << pretouch << " waited=" << wait_for_a_commit
                         << " delay=" << delay.count() << "us");
        REQUIRE_MESSAGE(how.empty(), how);
        const uint64_t acked = committed->load(std::memory_order_acquire);
        if (acked > known) ++killed_after_commits;

        // REQUIREs: a failure would repeat in every later iteration of the shared queue.
        const Scan s = scan_queue(q);
        REQUIRE_MESSAGE(s.error.empty(), s.error);
        REQUIRE(s.count >= known);
        REQUIRE(s.count >= acked);        // nothing acknowledged as committed is lost
        REQUIRE(s.batch_end <= s.count);  // no batch is visible in part

        auto w = Writer::open(q, tiny(pretouch));
        REQUIRE_MESSAGE(w.ok(), w.status().message());
        REQUIRE(w.value()->next_seq() == s.count);
        auto seq = w.value()->append(single(s.count));
        REQUIRE_MESSAGE(seq.ok(), seq.status().message());
        REQUIRE(seq.value() == s.count);
        // The reader that read everything before gets the new record: the log continues
        // where readers are, not only where the writer is.
        auto n = s.reader->next();
        REQUIRE_MESSAGE(n.ok(), n.status().message());
        REQUIRE_MESSAGE(
            n.value().has_value(),
            "record " << s.count << ", appended after recovery, never reaches a reader");
        REQUIRE(n.value()->seq == s.count);
        known = s.count + 1;
    }
    // The loop must have killed writers in mid-stream, not only before their first commit.
    CHECK(killed_after_commits >= kIterations / 2);
    const Scan final_scan = scan_queue(q);
    REQUIRE_MESSAGE(final_scan.error.empty(), final_scan.error);
    CHECK(final_scan.count == known);
    MESSAGE("kill loop: " << known << " records in " << segment_bases(q).size() << " segments");
}

// ---- SIGKILL at every system call ---------------------------------------------------------

namespace {

// The script the traced child runs after its marker: single appends and claims through a
// roll, a committed batch across a roll, an aborted batch across a roll, and more singles.
// Records start at `first`; `committed` gets the committed count after every commit.
void scripted_appends(Writer& w, uint64_t first, std::atomic<uint64_t>* committed) {
    std::mt19937_64 rng(99);
    auto ack = [&] { committed->store(w.next_seq(), std::memory_order_release); };
    uint64_t seq = first;
    for (int i = 0; i < 50; ++i, ++seq) {
        put(w, seq, single(seq), i % 3 == 0, rng);
        ack();
    }
    if (!w.begin_batch(1 << 20)) ::_exit(kBatchFailed);  // through the page cache
    const uint64_t b = seq;
    // Claims only late in the batch: a claim continues it through the mapping.
    for (int i = 0; i < 60; ++i, ++seq)
        put(w, seq, payload(seq, b, 60), i >= 40 && i % 5 == 0, rng);
    if (!w.commit_batch()) ::_exit(kBatchFailed);
    ack();
    if (!w.begin_batch()) ::_exit(kBatchFailed);
    for (int i = 0; i < 60; ++i) {
        if (!w.append("aborted" + std::string(300, 'A'))) ::_exit(kBatchFailed);
    }
    w.abort_batch();
    for (int i = 0; i < 50; ++i, ++seq) {
        put(w, seq, single(seq), i % 3 == 0, rng);
        ack();
    }
}

struct SyscallStop {
    uint64_t nr = 0;
    bool entry = false;
};

}  // namespace

namespace {
// Kill point k: the k-th system-call stop (entry or exit) the child makes after its
// marker. Between two stops the child runs only user code, so these are all the distinct
// states a kill can leave on disk that differ in a system call's effect.
// `beside_another`: a second (shared) writer of this process has the queue open all along;
// after each kill it appends, so it takes the append lock the kernel released — with the
// dead child's work half done, also mid-roll — and recovers under it (DESIGN §4), instead
// of a new writer recovering when it opens alone.
void kill_at_every_system_call(bool beside_another) {
    constexpr int kMaxPoints = 2000;
    int points = 0;
    bool finished = false;
    std::vector<SyscallStop> killed_at;
    for (int k = 1; k <= kMaxPoints && !finished; ++k) {
        CAPTURE(k);
        test::TempDir t;
        const std::string q = t.queue();
        {
            auto w = Writer::open(q, tiny(false));
            REQUIRE(w.ok());
            for (uint64_t i = 0; i < 5; ++i) REQUIRE(w.value()->append(single(i)).ok());
        }
        std::unique_ptr<Writer> other;  // opened once the child stopped (see below)
        SharedCounter committed;
        committed->store(5);
        ChildGuard child;
        child.pid = fork_flushed();
        REQUIRE(child.pid >= 0);
        if (child.pid == 0) {
            if (::ptrace(PTRACE_TRACEME, 0, nullptr, nullptr) != 0) ::_exit(kNoPtrace);
            ::raise(SIGSTOP);
            // Keep malloc from growing the heap at varying points of the script.
            ::mallopt(M_TOP_PAD, 64 << 20);
            ::mallopt(M_TRIM_THRESHOLD, 256 << 20);
            ::free(::malloc(64));
            auto w = Writer::open(q, tiny(false));
            if (!w) ::_exit(kOpenFailed);
            ::raise(SIGUSR2);  // the marker: kill points are counted from here
            scripted_appends(*w.value(), 5, committed.get());
            ::_exit(0);
        }
        int status = 0;
        REQUIRE(::waitpid(child.pid, &status, 0) == child.pid);
        if (WIFEXITED(status) && WEXITSTATUS(status) == kNoPtrace) {
            child.pid = -1;
            WARN_MESSAGE(false, "ptrace is not permitted here: this test checked nothing");
            return;
        }
        REQUIRE((WIFSTOPPED(status) && WSTOPSIG(status) == SIGSTOP));
        if (beside_another) {
            // Opened after the fork: a child forked while this process has a Writer's
            // threads could inherit a lock one of them held (ASan's allocator's).
            auto o = Writer::open(q, tiny(false));
            REQUIRE(o.ok());
            other = std::move(o.value());
        }
        REQUIRE(::ptrace(PTRACE_SETOPTIONS, child.pid, nullptr,
                         PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL) == 0);
        // Run to the marker without stopping at system calls.
        REQUIRE(::ptrace(PTRACE_CONT, child.pid, nullptr, nullptr) == 0);
        REQUIRE(::waitpid(child.pid, &status, 0) == child.pid);
        REQUIRE_MESSAGE((WIFSTOPPED(status) && WSTOPSIG(status) == SIGUSR2), "status " << status);
        int stops = 0;
        SyscallStop at;
        long deliver = 0;
        for (;;) {
            REQUIRE(::ptrace(PTRACE_SYSCALL, child.pid, nullptr, deliver) == 0);
            deliver = 0;
            REQUIRE(::waitpid(child.pid, &status, 0) == child.pid);
            if (WIFEXITED(status) || WIFSIGNALED(status)) {
                child.pid = -1;
                REQUIRE_MESSAGE((WIFEXITED(status) && WEXITSTATUS(status) == 0),
                                "the child ended by itself with status " << status);
                finished = true;  // k is past the script's last system call
                break;
            }
            REQUIRE(WIFSTOPPED(status));
            if (WSTOPSIG(status) != (SIGTRAP | 0x80)) {
                deliver = WSTOPSIG(status);  // an ordinary signal: pass it on
                continue;
            }
            __ptrace_syscall_info info{};
            if (::ptrace(PTRACE_GET_SYSCALL_INFO, child.pid, sizeof info, &info) > 0) {
                at.entry = info.op == PTRACE_SYSCALL_INFO_ENTRY;
                if (at.entry) at.nr = info.entry.nr;  // an exit stop is that call's exit
            }
            if (++stops == k) break;
        }
        if (finished) break;
        const std::string how = kill_and_reap(child);
        REQUIRE_MESSAGE(how.empty(), how);
        ++points;
        killed_at.push_back(at);
        const uint64_t acked = committed->load(std::memory_order_acquire);
        INFO("killed at the " << std::string(at.entry ? "entry" : "exit") << " of system call "
                              << at.nr);

        const Scan s = scan_queue(q);
        REQUIRE_MESSAGE(s.error.empty(), s.error);
        CHECK(s.count >= acked);
        CHECK(s.batch_end <= s.count);
        std::unique_ptr<Writer> fresh;
        if (!beside_another) {
            auto w = Writer::open(q, tiny(false));
            REQUIRE_MESSAGE(w.ok(), w.status().message());
            CHECK(w.value()->next_seq() == s.count);
            fresh = std::move(w.value());
        }
        Writer& next = beside_another ? *other : *fresh;
        auto seq = next.append(single(s.count));
        REQUIRE(seq.ok());
        CHECK(seq.value() == s.count);
        auto n = s.reader->next();
        REQUIRE_MESSAGE(n.ok(), n.status().message());
        CHECK_MESSAGE(n.value().has_value(),
                      "record " << s.count << ", appended after recovery, never reaches a reader");
        const Scan again = scan_queue(q);
        REQUIRE_MESSAGE(again.error.empty(), again.error);
        CHECK(again.count == s.count + 1);
    }
    CHECK(finished);
    // The script rolls at least four times; each roll is several system calls.
    CHECK(points >= 40);
    // Among the kill points: just after the next segment is linked into place (link or
    // rename), before the previous one is sealed.
    const bool hit_link = std::any_of(killed_at.begin(), killed_at.end(), [](const SyscallStop& a) {
        const bool publishes = a.nr == SYS_linkat || a.nr == SYS_renameat2
#ifdef SYS_renameat
                               || a.nr == SYS_renameat
#endif
            ;
        return !a.entry && publishes;
    });
    CHECK(hit_link);
    MESSAGE(points << " kill points");
}
}  // namespace

TEST_CASE("WriterKilledAtEverySystemCallOfRollsAndBatchesLosesNothingAndRecovers") {
    kill_at_every_system_call(false);
}

TEST_CASE("WriterKilledAtEverySystemCallBesideAnotherWriterCostsThatWriterNothing") {
    kill_at_every_system_call(true);
}

TEST_CASE("WriterKilledInsideABatchAcrossRollsLeavesNoTraceOfIt") {
    test::TempDir t;
    const std::string q = t.queue();
    SharedCounter stage;
    ChildGuard child;
    child.pid = fork_flushed();
    REQUIRE(child.pid >= 0);
    if (child.pid == 0) {
        auto w = Writer::open(q, tiny(true));
        if (!w) ::_exit(kOpenFailed);
        for (uint64_t i = 0; i < 10; ++i) {
            if (!w.value()->append(single(i))) ::_exit(kWrongSequence);
        }
        if (!w.value()->begin_batch()) ::_exit(kBatchFailed);
        for (uint64_t i = 10; i < 510; ++i) {
            if (!w.value()->append(payload(i, 10, 500))) ::_exit(kBatchFailed);
        }
        stage->store(1, std::memory_order_release);  // staged, never committed
        for (;;) ::pause();
    }
    REQUIRE(wait_until([&] { return stage->load(std::memory_order_acquire) == 1; }, 10000ms));
    const std::string how = kill_and_reap(child);
    REQUIRE_MESSAGE(how.empty(), how);
    // The batch left segments of its own behind (else this test proves nothing).
    REQUIRE(segment_bases(q).back() > 10);

    Scan s = scan_queue(q);
    REQUIRE_MESSAGE(s.error.empty(), s.error);
    CHECK(s.count == 10);
    ReaderOptions ro;
    ro.start = Position::at_seq(300);
    auto r = Reader::open(q, ro);
    REQUIRE(r.ok());
    auto n = r.value()->next();
    REQUIRE(n.ok());
    CHECK_FALSE(n.value().has_value());

    auto w = Writer::open(q, tiny(false));
    REQUIRE_MESSAGE(w.ok(), w.status().message());
    for (uint64_t b : segment_bases(q)) CHECK(b <= 10);  // the batch's segments are gone
    CHECK(w.value()->next_seq() == 10);
    for (uint64_t i = 10; i < 300; ++i) {
        auto seq = w.value()->append(single(i));
        REQUIRE(seq.ok());
        CHECK(seq.value() == i);
    }
    s = scan_queue(q);
    REQUIRE_MESSAGE(s.error.empty(), s.error);
    CHECK(s.count == 300);
}

TEST_CASE("ReaderNeedsNoLiveWriterToReadEverythingCommitted") {
    constexpr uint64_t kRecords = 3000;
    test::TempDir t;
    const std::string q = t.queue();
    SharedCounter committed;
    ChildGuard child;
    child.pid = fork_flushed();
    REQUIRE(child.pid >= 0);
    if (child.pid == 0) {
        auto w = Writer::open(q, tiny(true));
        if (!w) ::_exit(kOpenFailed);
        Writer& wr = *w.value();
        std::mt19937_64 rng(7);
        while (wr.next_seq() < kRecords) {
            const uint64_t seq = wr.next_seq();
            const uint64_t len = std::min<uint64_t>(1 + rng() % 20, kRecords - seq);
            if (rng() % 2 == 0) {
                put(wr, seq, single(seq), rng() % 2 == 0, rng);
            } else {
                if (!wr.begin_batch()) ::_exit(kBatchFailed);
                for (uint64_t i = 0; i < len; ++i)
                    put(wr, seq + i, payload(seq + i, seq, len), false, rng);
                if (!wr.commit_batch()) ::_exit(kBatchFailed);
            }
            committed->store(wr.next_seq(), std::memory_order_release);
        }
        for (;;) ::pause();  // alive, holding the lock, until killed
    }
    REQUIRE(wait_until([&] { return committed->load(std::memory_order_acquire) == kRecords; },
                       20000ms));
    const std::string how = kill_and_reap(child);
    REQUIRE_MESSAGE(how.empty(), how);

    // No writer, no recovery: the reader sees exactly what was committed.
    const Scan s = scan_queue(q);
    REQUIRE_MESSAGE(s.error.empty(), s.error);
    CHECK(s.count == kRecords);
    CHECK(s.batch_end == kRecords);
}

// ---- crash states made by hand -------------------------------------------------------------

TEST_CASE("TornRecordAndDeadBatchWordsAreClearedSoNoStaleRecordFollowsNewOnes") {
    constexpr uint64_t kOld = 40;
    test::TempDir t;
    const std::string q = t.queue();
    std::vector<std::string> expect;
    {
        auto w = Writer::open(q, tiny(false));
        REQUIRE(w.ok());
        for (uint64_t i = 0; i < kOld; ++i) {
            expect.push_back(sized(i, 40 + (i * 37) % 200));
            REQUIRE(w.value()->append(expect.back()).ok());
        }
    }
    REQUIRE(test::read_all(q) == expect);
    const uint64_t base = segment_bases(q).back();
    const std::string seg = seg_file(q, base);
    const uint64_t end = offset_of(seg, expect, base, kOld);
    REQUIRE(peek<uint32_t>(seg, end) == fmt::kStateEmpty);

    // The dead writer's leftovers: a torn record at `end` (length and half its payload, state
    // still 0), then the later records of its uncommitted batch, whose states were stored
    // relaxed: two DATA records and a SEAL, back to back.
    constexpr uint32_t kTornLen = 200;
    const uint64_t stale1 = end + fmt::record_span(kTornLen);
    const uint64_t stale2 = stale1 + fmt::record_span(64);
    const uint64_t stale3 = stale2 + fmt::record_span(8);
    poke(seg, end, record_bytes(fmt::kStateEmpty, kTornLen, std::string(kTornLen / 2, 'T')));
    poke(seg, stale1, record_bytes(fmt::kStateData, 64, std::string(64, 'S')));
    poke(seg, stale2, record_bytes(fmt::kStateData, 8, "STALE!!!"));
    poke(seg, stale3, record_bytes(fmt::kStateSeal, 0, ""));
    // Only where a writer may have written (below the high-water mark, with room to spare).
    REQUIRE(stale3 + 2 * fmt::kRecordHeaderSize <=
            peek<uint64_t>(seg, offsetof(fmt::SegmentHeader, written_hw)));
    CHECK(test::read_all(q) == expect);  // readers stop at the torn record

    auto w = Writer::open(q, tiny(false));
    REQUIRE_MESSAGE(w.ok(), w.status().message());
    CHECK(w.value()->next_seq() == kOld);
    ReaderOptions ro;
    ro.start = Position::at_seq(kOld);
    auto r = Reader::open(q, ro);
    REQUIRE(r.ok());
    // New records end exactly where each stale word sits: after each one, nothing follows.
    const std::vector<size_t> lens = {kTornLen, 64, 8};
    for (size_t i = 0; i < lens.size(); ++i) {
        const uint64_t seq = kOld + i;
        CAPTURE(seq);
        expect.push_back(sized(seq, lens[i]));
        auto s = w.value()->append(expect.back());
        REQUIRE(s.ok());
        CHECK(s.value() == seq);
        auto n = r.value()->next();
        REQUIRE(n.ok());
        REQUIRE(n.value().has_value());
        CHECK(n.value()->seq == seq);
        CHECK(n.value()->text() == expect.back());
        n = r.value()->next();
        REQUIRE_MESSAGE(n.ok(), n.status().message());
        CHECK_FALSE(n.value().has_value());
    }
    for (uint64_t seq = kOld + lens.size(); seq < 200; ++seq) {  // and on through rolls
        expect.push_back(sized(seq, 40 + (seq * 53) % 300));
        REQUIRE(w.value()->append(expect.back()).ok());
    }
    CHECK(test::read_all(q) == expect);
}

TEST_CASE("RollCutShortBeforeTheSealIsFinishedByRecovery") {
    test::TempDir t;
    const std::string q = t.queue();
    std::vector<std::string> recs;
    {
        auto w = Writer::open(q, tiny(false));
        REQUIRE(w.ok());
        while (segment_bases(q).size() < 2) {
            REQUIRE(recs.size() < 1000);
            recs.push_back(sized(recs.size(), 100 + (recs.size() * 29) % 200));
            REQUIRE(w.value()->append(recs.back()).ok());
        }
    }
    const uint64_t next_base = segment_bases(q).at(1);
    REQUIRE(next_base == recs.size() - 1);  // the record that made the roll is alone in it
    const std::string prev = seg_file(q, 0);
    const std::string next = seg_file(q, next_base);

    // Back to the instant after the next segment was renamed into place: the seal after the
    // previous segment's last record is not written, the next segment is empty.
    const uint64_t seal = offset_of(prev, recs, 0, next_base);
    REQUIRE(peek<uint32_t>(prev, seal) == fmt::kStateSeal);
    poke(prev, seal, std::string(fmt::kRecordHeaderSize, '\0'));
    poke(next, data_begin(next), std::string(fmt::record_span(recs.back().size()), '\0'));
    poke(next, fmt::kIndexOffset, std::string(sizeof(uint64_t), '\0'));
    recs.pop_back();
    CHECK(test::read_all(q) == recs);

    auto w = Writer::open(q, tiny(false));
    REQUIRE_MESSAGE(w.ok(), w.status().message());
    CHECK(w.value()->next_seq() == next_base);
    for (uint64_t seq = next_base; seq < next_base + 200; ++seq) {
        recs.push_back(sized(seq, 100 + (seq * 31) % 400));
        auto s = w.value()->append(recs.back());
        REQUIRE(s.ok());
        CHECK(s.value() == seq);
    }
    // A reader from the start must cross into the segment the writer continued in.
    const auto got = test::read_all(q);
    CHECK(got.size() == recs.size());
    CHECK(got == recs);
    auto r = Reader::open(q);  // and the sequence numbers themselves are dense
    REQUIRE(r.ok());
    for (uint64_t seq = 0; seq < recs.size(); ++seq) {
        auto n = r.value()->next();
        REQUIRE(n.ok());
        REQUIRE(n.value().has_value());
        REQUIRE(n.value()->seq == seq);
    }
}

// Killed after a batch's first state word was published (the batch is committed), before
// the segments the batch created were marked live.
void make_committed_batch_with_preparing_segments(const std::string& q,
                                                  std::vector<uint64_t>& bases) {
    {
        auto w = Writer::open(q, tiny(false));
        REQUIRE(w.ok());
        for (uint64_t i = 0; i < 5; ++i) REQUIRE(w.value()->append(single(i)).ok());
        REQUIRE(w.value()->begin_batch().ok());
        for (uint64_t i = 5; i < 505; ++i) REQUIRE(w.value()->append(payload(i, 5, 500)).ok());
        REQUIRE(w.value()->commit_batch().ok());
    }
    bases = segment_bases(q);
    REQUIRE(bases.size() >= 3);
    for (uint64_t b : bases) {
        if (b > 5) {
            poke(seg_file(q, b), offsetof(fmt::SegmentHeader, seg_state),
                 std::string(sizeof(uint32_t), '\0'));
        }
    }
}

TEST_CASE("ReaderWithoutAWriterSeesAllOfABatchCommittedBeforeItsSegmentsWereMarkedLive") {
    test::TempDir t;
    const std::string q = t.queue();
    std::vector<uint64_t> bases;
    make_committed_batch_with_preparing_segments(q, bases);
    // The first state word is published: the batch is committed, all of it or nothing.
    const Scan s = scan_queue(q);
    REQUIRE_MESSAGE(s.error.empty(), s.error);
    CHECK(s.batch_end <= s.count);
    CHECK(s.count == 505);
}

TEST_CASE("CommittedBatchWhoseSegmentsWereNotYetMarkedLiveIsKeptByRecovery") {
    test::TempDir t;
    const std::string q = t.queue();
    std::vector<uint64_t> bases;
    make_committed_batch_with_preparing_segments(q, bases);

    auto w = Writer::open(q, tiny(false));
    REQUIRE_MESSAGE(w.ok(), w.status().message());
    CHECK(w.value()->next_seq() == 505);
    CHECK(segment_bases(q) == bases);
    auto s = w.value()->append(single(505));
    REQUIRE(s.ok());
    CHECK(s.value() == 505);
    const Scan all = scan_queue(q);
    REQUIRE_MESSAGE(all.error.empty(), all.error);
    CHECK(all.count == 506);
}

TEST_CASE("LeftoverTemporarySegmentsAreRemovedByRecovery") {
    test::TempDir t;
    const std::string q = t.queue();
    {
        auto w = Writer::open(q, tiny(false));
        REQUIRE(w.ok());
        for (uint64_t i = 0; i < 10; ++i) REQUIRE(w.value()->append(single(i)).ok());
    }
    // A writer killed while making its next segment (.next.seg.tmp) and while its pretouch
    // thread was preparing one (.prep.seg.tmp).
    const std::string bytes = file_bytes(seg_file(q, 0));
    std::ofstream(q + "/.next.seg.tmp", std::ios::binary) << bytes;
    std::ofstream(q + "/.prep.seg.tmp", std::ios::binary) << bytes;
    const auto names = test::list_dir(q);
    REQUIRE(std::count(names.begin(), names.end(), ".next.seg.tmp") == 1);
    REQUIRE(std::count(names.begin(), names.end(), ".prep.seg.tmp") == 1);
    CHECK(scan_queue(q).count == 10);

    auto w = Writer::open(q, tiny(false));
    REQUIRE_MESSAGE(w.ok(), w.status().message());
    const auto after = test::list_dir(q);
    CHECK(std::count(after.begin(), after.end(), ".next.seg.tmp") == 0);
    CHECK(std::count(after.begin(), after.end(), ".prep.seg.tmp") == 0);
    auto s = w.value()->append(single(10));
    REQUIRE(s.ok());
    CHECK(s.value() == 10);
    const Scan all = scan_queue(q);
    REQUIRE_MESSAGE(all.error.empty(), all.error);
    CHECK(all.count == 11);
}

TEST_CASE("DamageBeforeTheLastCommittedRecordStopsTheWriterAndChangesNothing") {
    test::TempDir t;
    const std::string q = t.queue();
    std::vector<std::string> recs;
    {
        auto w = Writer::open(q, tiny(false));
        REQUIRE(w.ok());
        for (uint64_t i = 0; i < 10; ++i) {
            recs.push_back(sized(i, 30 + i * 8));
            REQUIRE(w.value()->append(recs.back()).ok());
        }
    }
    REQUIRE(segment_bases(q) == std::vector<uint64_t>{0});
    const std::string seg = seg_file(q, 0);
    // A garbage state word on record 8: record 9, committed, lies beyond it.
    const uint64_t bad = offset_of(seg, recs, 0, 8);
    REQUIRE(peek<uint32_t>(seg, bad) == fmt::kStateData);
    poke(seg, bad, "JUNK");
    const auto before = segment_snapshot(q);
    const auto names = test::list_dir(q);

    auto w = Writer::open(q, tiny(false));
    REQUIRE_FALSE(w.ok());
    CHECK(w.status().code() == errc::corrupt);
    const std::string& msg = w.status().message();
    CHECK_MESSAGE(msg.find(seg) != std::string::npos, msg);
    CHECK_MESSAGE(msg.find(std::to_string(bad)) != std::string::npos, msg);
    CHECK(segment_snapshot(q) == before);
    CHECK(test::list_dir(q) == names);
}
