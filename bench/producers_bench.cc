// bench_producers: several producers on one queue — shared writers taking turns under the
// append lock (WriterOptions::exclusive = false) — each figure beside a baseline from the
// same run.
//
//   single    one producer, 64-byte records, one append() per record, then in batches of
//             64 (begin_batch .. commit_batch): an exclusive writer (WriterOptions::
//             exclusive: no lock, the fastest path) against a shared writer alone on the
//             queue (every commit takes the append lock, uncontended). A fresh queue per
//             run; repetitions interleaved, which of the two goes first alternating.
//   procs     for each P of --procs: P forked processes each open their own shared Writer
//             on one fresh queue (created, and closed, by the parent just before) and append
//             their share of the --n 64-byte records (n/P; the remainder goes to the first
//             ones), one append() per record; then the same in batches of 64. Start: each
//             child opens its writer, says so on a pipe and blocks in read() on a second
//             pipe, which the parent closes (50 ms after the last one was ready, so that
//             their pre-touchers get ahead) to release them all at once. End: every child
//             holds a third pipe open until it exits, so the parent's read() of it returns
//             0 when the last one has gone. Time = release to last exit, measured in the
//             parent; figure = n / time. Afterwards a Reader checks that the queue holds
//             exactly n records, with dense sequence numbers and every producer's records
//             in its own order (an UNEXPECTED note if not).
//   baselines the same P processes, started and timed the same way, without chronicle:
//             oappend — each write()s its share as 65-byte lines (the record's 64 bytes +
//             '\n') to one file that it opened itself with O_APPEND, one write() per
//             record; flock — the same with flock(LOCK_EX); write(); flock(LOCK_UN) around
//             every record. The file's size is checked afterwards.
//   latency   in the one-record-per-call runs (chronicle, oappend, flock) every process
//             times every --lat-every-th record (CLOCK_MONOTONIC around the append() call,
//             or around lock + write + unlock, or the write) into its own array in a
//             MAP_SHARED anonymous mapping made before fork: p50/p99 pooled over the
//             processes and the repetitions. The lock hand-off: p50 with P = 2 minus p50
//             with P = 1.
//
// Every record is the same for every contender: 16 hex digits of the producer's own index,
// a space, 4 hex digits of the producer, 'x' up to 64 bytes (and '\n' in the files).
// Repetitions: --reps rounds; each round runs every P, and for each P the four runs
// (chronicle, batch64, oappend, flock) one after the other.
//
// Usage: bench_producers --dir DIR [--n 2000000] [--reps 3] [--procs 1,2,4,8]
//                        [--lat-every 16]
#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <filesystem>
#include <memory>
#include <string_view>

#include "bench_common.h"
#include "chronicle/reader.h"
#include "chronicle/writer.h"

using namespace bench;
using chronicle::Reader;
using chronicle::Writer;
using chronicle::WriterOptions;
namespace stdfs = std::filesystem;

namespace {

constexpr size_t kPayload = 64;
constexpr size_t kLine = kPayload + 1;  // the files' lines: the record + '\n'
constexpr uint64_t kBatch = 64;
constexpr long kReadyTimeoutMs = 60000;  // until every producer has opened its writer/file
constexpr long kRunTimeoutMs = 200000;   // from the release until the last one has exited

void remove_queue(const std::string& dir) {
    std::error_code ec;
    stdfs::remove_all(dir, ec);
}

// ------------------------------------------------------------------------------ records

void init_record(char* buf) {
    std::memset(buf, 'x', kPayload);
    buf[16] = ' ';
}

void fill_record(char* buf, uint32_t producer, uint64_t i) {
    static constexpr char kHex[] = "0123456789abcdef";
    for (int k = 15; k >= 0; --k) {
        buf[k] = kHex[i & 15];
        i >>= 4;
    }
    for (int k = 20; k >= 17; --k) {
        buf[k] = kHex[producer & 15];
        producer >>= 4;
    }
}

bool parse_hex(const char* p, int digits, uint64_t& out) {
    out = 0;
    for (int k = 0; k < digits; ++k) {
        const char c = p[k];
        uint64_t d;
        if (c >= '0' && c <= '9') {
            d = uint64_t(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            d = uint64_t(c - 'a' + 10);
        } else {
            return false;
        }
        out = (out << 4) | d;
    }
    return true;
}

bool parse_record(std::string_view s, uint32_t& producer, uint64_t& i) {
    if (s.size() != kPayload || s[16] != ' ') return false;
    uint64_t who = 0;
    if (!parse_hex(s.data(), 16, i) || !parse_hex(s.data() + 17, 4, who)) return false;
    producer = uint32_t(who);
    return true;
}

// ---------------------------------------------------------------------- single producer

double single_seconds(const std::string& dir, uint64_t n, uint64_t batch, bool exclusive) {
    remove_queue(dir);
    WriterOptions o;
    o.exclusive = exclusive;
    auto r = Writer::open(dir, o);
    if (!r) fail("cannot open writer on " + dir + ": " + r.status().message());
    std::unique_ptr<Writer> w = std::move(r.value());
    sleep_ms(50);  // let the pre-toucher get ahead, as in bench_lib
    alignas(8) char rec[kPayload];
    init_record(rec);
    const uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < n;) {
        if (batch > 1) {
            if (auto st = w->begin_batch(); !st) fail("begin_batch: " + st.message());
        }
        for (uint64_t j = 0; j < batch && i < n; ++j, ++i) {
            fill_record(rec, 0, i);
            auto s = w->append(std::string_view(rec, kPayload));
            if (!s) fail("append: " + s.status().message());
        }
        if (batch > 1) {
            if (auto st = w->commit_batch(); !st) fail("commit_batch: " + st.message());
        }
    }
    const uint64_t t1 = now_ns();
    if (w->next_seq() != n)
        note("single: UNEXPECTED: next_seq %llu after %llu appends",
             (unsigned long long)w->next_seq(), (unsigned long long)n);
    w.reset();
    remove_queue(dir);
    return double(t1 - t0) / 1e9;
}

void run_single(const std::string& dir, uint64_t n, int reps) {
    note(
        "producers single: %llu records of %zu bytes per run, %d repetitions; an exclusive "
        "writer vs a shared writer alone on the queue (one append() per record, then batches "
        "of %llu); fresh queue per run, which goes first alternating",
        (unsigned long long)n, kPayload, reps, (unsigned long long)kBatch);
    Reps r;
    const std::string q = dir + "/single_q";
    auto add = [&](const std::string& name, double secs) {
        r.add("producers.single." + name + ".records_per_s", double(n) / secs, "records/s", true);
    };
    for (int rep = 0; rep < reps; ++rep) {
        const bool exclusive_first = rep % 2 == 0;
        for (int k = 0; k < 2; ++k) {
            const bool ex = (k == 0) == exclusive_first;
            add(ex ? "exclusive" : "shared", single_seconds(q, n, 1, ex));
        }
        for (int k = 0; k < 2; ++k) {
            const bool ex = (k == 0) == exclusive_first;
            add(ex ? "batch64.exclusive" : "batch64.shared", single_seconds(q, n, kBatch, ex));
        }
    }
    r.print();
    // Rate shared / rate exclusive (medians): what the uncontended append lock costs one
    // producer. Target >= 0.95.
    emit_ratio("producers.single.shared_over_exclusive",
               r.med("producers.single.shared.records_per_s"),
               r.med("producers.single.exclusive.records_per_s"));
    emit_ratio("producers.single.batch64.shared_over_exclusive",
               r.med("producers.single.batch64.shared.records_per_s"),
               r.med("producers.single.batch64.exclusive.records_per_s"));
}

// ---------------------------------------------------------------------- P producers

enum class Kind { single, batch64, oappend, flocked };

const char* kind_name(Kind k) {
    switch (k) {
        case Kind::single:
            return "chronicle";
        case Kind::batch64:
            return "chronicle batch64";
        case Kind::oappend:
            return "O_APPEND";
        case Kind::flocked:
            return "flock";
    }
    return "?";
}

struct Job {
    Kind kind = Kind::single;
    std::string path;  // the queue directory, or the file
    int procs = 1;
    uint64_t n = 0;  // records in all
    int every = 0;   // time every every-th record; 0: none
};

// Producer i's share of the n records.
uint64_t share(uint64_t n, int procs, int i) {
    const uint64_t p = uint64_t(procs);
    return n / p + (uint64_t(i) < n % p ? 1 : 0);
}

struct Pipes {
    int ready_r = -1, ready_w = -1;  // children -> parent: '1' ready, '0' failed
    int go_r = -1, go_w = -1;        // the parent closes go_w: the release
    int done_r = -1, done_w = -1;    // every child holds done_w until it exits
};

Pipes make_pipes() {
    int a[2], b[2], c[2];
    if (::pipe2(a, O_CLOEXEC) != 0 || ::pipe2(b, O_CLOEXEC) != 0 || ::pipe2(c, O_CLOEXEC) != 0)
        die("pipe2");
    Pipes p;
    p.ready_r = a[0];
    p.ready_w = a[1];
    p.go_r = b[0];
    p.go_w = b[1];
    p.done_r = c[0];
    p.done_w = c[1];
    return p;
}

// Per-process latency arrays in a MAP_SHARED anonymous mapping made before fork: producer
// i's sample count at [i * (cap + 1)], its samples (ns) right after it.
struct LatBuf {
    uint64_t* base = nullptr;
    uint64_t cap = 0;  // samples per producer
    int procs = 0;
    size_t bytes = 0;
};

LatBuf lat_map(int procs, uint64_t n, int every) {
    LatBuf b;
    b.procs = procs;
    b.cap = (n / uint64_t(procs) + 1) / uint64_t(every) + 2;
    b.bytes = size_t(procs) * size_t(b.cap + 1) * sizeof(uint64_t);
    void* m = ::mmap(nullptr, b.bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) die("mmap latency arrays");
    b.base = static_cast<uint64_t*>(m);
    return b;
}

// Appends every producer's samples to `out` and unmaps the arrays.
void lat_collect(LatBuf& b, std::vector<double>& out) {
    for (int i = 0; i < b.procs; ++i) {
        const uint64_t* slot = b.base + size_t(i) * size_t(b.cap + 1);
        const uint64_t k = std::min(slot[0], b.cap);
        for (uint64_t j = 0; j < k; ++j) out.push_back(double(slot[1 + j]));
    }
    ::munmap(b.base, b.bytes);
    b.base = nullptr;
}

// ----------------------------------------------------------------- the child's side

// In a forked producer: a note, then _exit — never back into the parent's code (no
// atexit handlers, no stdio buffers flushed twice).
[[noreturn]] void child_fail(const std::string& what) {
    note("producer (pid %d): %s", int(::getpid()), what.c_str());
    ::_exit(2);
}

std::string errno_msg(const char* what) {
    return std::string(what) + ": " + std::strerror(errno);
}

struct Sampler {
    uint64_t* count = nullptr;  // null: no sampling
    uint64_t* v = nullptr;
    uint64_t cap = 0;
    uint64_t every = 1;
};

// One record: an append() on the queue, or a line to the file.
template <Kind K>
inline void put([[maybe_unused]] Writer* w, [[maybe_unused]] int fd, const char* rec) {
    if constexpr (K == Kind::single || K == Kind::batch64) {
        auto s = w->append(std::string_view(rec, kPayload));
        if (!s) child_fail("append: " + s.status().message());
    } else {
        if constexpr (K == Kind::flocked) {
            if (::flock(fd, LOCK_EX) != 0) child_fail(errno_msg("flock(LOCK_EX)"));
        }
        if (::write(fd, rec, kLine) != ssize_t(kLine)) child_fail(errno_msg("write"));
        if constexpr (K == Kind::flocked) {
            if (::flock(fd, LOCK_UN) != 0) child_fail(errno_msg("flock(LOCK_UN)"));
        }
    }
}

template <Kind K>
void produce(Writer* w, int fd, char* rec, uint32_t who, uint64_t mine, const Sampler& smp) {
    uint64_t taken = 0, countdown = 1;  // the first record is timed, then every every-th
    for (uint64_t i = 0; i < mine;) {
        if constexpr (K == Kind::batch64) {
            if (auto st = w->begin_batch(); !st) child_fail("begin_batch: " + st.message());
        }
        const uint64_t end = K == Kind::batch64 ? std::min<uint64_t>(mine, i + kBatch) : i + 1;
        for (; i < end; ++i) {
            fill_record(rec, who, i);
            if (smp.count != nullptr && --countdown == 0) {
                countdown = smp.every;
                const uint64_t t0 = now_ns();
                put<K>(w, fd, rec);
                const uint64_t t1 = now_ns();
                if (taken < smp.cap) smp.v[taken++] = t1 - t0;
            } else {
                put<K>(w, fd, rec);
            }
        }
        if constexpr (K == Kind::batch64) {
            if (auto st = w->commit_batch(); !st) child_fail("commit_batch: " + st.message());
        }
    }
    if (smp.count != nullptr) *smp.count = taken;
}

// A producer process: opens its writer (or file), reports ready, waits for the release,
// appends its share, closes, exits. Never returns.
[[noreturn]] void producer_main(const Job& job, int idx, const Pipes& p, const LatBuf* lat) {
    die_with_parent();
    ::close(p.ready_r);
    ::close(p.go_w);  // else the release (the parent closing its go_w) never reaches us
    ::close(p.done_r);
    alignas(8) char rec[kLine];
    init_record(rec);
    rec[kPayload] = '\n';
    std::unique_ptr<Writer> w;
    int fd = -1;
    std::string err;
    if (job.kind == Kind::single || job.kind == Kind::batch64) {
        WriterOptions o;
        o.exclusive = false;  // a shared writer: every commit takes the append lock
        auto r = Writer::open(job.path, o);
        if (r) {
            w = std::move(r.value());
        } else {
            err = "Writer::open " + job.path + ": " + r.status().message();
        }
    } else {
        fd = ::open(job.path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
        if (fd < 0) err = errno_msg(("open " + job.path).c_str());
    }
    const char ok = err.empty() ? '1' : '0';
    (void)!::write(p.ready_w, &ok, 1);
    if (!err.empty()) child_fail(err);
    for (;;) {  // the release: end of file on the go pipe
        char c;
        const ssize_t got = ::read(p.go_r, &c, 1);
        if (got == 0) break;
        if (got < 0 && errno == EINTR) continue;
        child_fail(got < 0 ? errno_msg("read release pipe")
                           : "unexpected byte on the release pipe");
    }
    ::close(p.go_r);
    Sampler smp;
    if (lat != nullptr && lat->base != nullptr) {
        smp.count = lat->base + size_t(idx) * size_t(lat->cap + 1);
        smp.v = smp.count + 1;
        smp.cap = lat->cap;
        smp.every = uint64_t(job.every);
    }
    const uint64_t mine = share(job.n, job.procs, idx);
    const uint32_t who = uint32_t(idx);
    switch (job.kind) {
        case Kind::single:
            produce<Kind::single>(w.get(), fd, rec, who, mine, smp);
            break;
        case Kind::batch64:
            produce<Kind::batch64>(w.get(), fd, rec, who, mine, smp);
            break;
        case Kind::oappend:
            produce<Kind::oappend>(w.get(), fd, rec, who, mine, smp);
            break;
        case Kind::flocked:
            produce<Kind::flocked>(w.get(), fd, rec, who, mine, smp);
            break;
    }
    w.reset();
    if (fd >= 0) ::close(fd);
    ::_exit(0);  // closes done_w: the last one to get here ends the parent's clock
}

// ---------------------------------------------------------------- the parent's side

void abort_children(const std::vector<pid_t>& pids) {
    for (pid_t pid : pids) ::kill(pid, SIGKILL);
    for (pid_t pid : pids) reap(pid, 5000, "producer");
}

// Forks job.procs producers, releases them together, returns the seconds from the release
// to the last exit. Fails (after killing them) when one of them fails.
double run_procs(const Job& job, LatBuf* lat) {
    const std::string what = "P=" + std::to_string(job.procs) + " " + kind_name(job.kind);
    Pipes p = make_pipes();
    std::vector<pid_t> pids;
    for (int i = 0; i < job.procs; ++i) {
        const pid_t pid = ::fork();
        if (pid < 0) {
            const int e = errno;
            abort_children(pids);
            errno = e;
            die("fork");
        }
        if (pid == 0) producer_main(job, i, p, lat);
        pids.push_back(pid);
    }
    ::close(p.ready_w);
    ::close(p.go_r);
    ::close(p.done_w);
    // Every producer ready (its writer or file open)?
    int ready = 0, bad = 0;
    const uint64_t ready_by = now_ns() + uint64_t(kReadyTimeoutMs) * 1000000ull;
    while (ready + bad < job.procs) {
        const uint64_t now = now_ns();
        if (now >= ready_by) break;
        pollfd pr{p.ready_r, POLLIN, 0};
        const int rc = ::poll(&pr, 1, int((ready_by - now) / 1000000 + 1));
        if (rc < 0 && errno != EINTR) die("poll ready pipe");
        if (rc <= 0) continue;
        char buf[64];
        const ssize_t got = ::read(p.ready_r, buf, sizeof buf);
        if (got == 0) break;  // every producer has gone
        if (got < 0) {
            if (errno == EINTR) continue;
            die("read ready pipe");
        }
        for (ssize_t k = 0; k < got; ++k) {
            if (buf[k] == '1') {
                ++ready;
            } else {
                ++bad;
            }
        }
    }
    ::close(p.ready_r);
    if (ready < job.procs) {
        abort_children(pids);
        fail(what + ": " + std::to_string(ready) + " of " + std::to_string(job.procs) +
             " producers got ready (" + std::to_string(bad) + " failed: see the notes above)");
    }
    sleep_ms(50);  // their pre-touchers get ahead, as in bench_lib
    const uint64_t t0 = now_ns();
    ::close(p.go_w);  // the release: every producer's read() returns 0
    // The end: read() of the done pipe returns 0 once no producer holds it any more.
    bool done = false;
    const uint64_t run_by = t0 + uint64_t(kRunTimeoutMs) * 1000000ull;
    for (;;) {
        const uint64_t now = now_ns();
        if (now >= run_by) break;
        pollfd pd{p.done_r, POLLIN, 0};
        const int rc = ::poll(&pd, 1, int((run_by - now) / 1000000 + 1));
        if (rc < 0 && errno != EINTR) die("poll done pipe");
        if (rc <= 0) continue;
        char c;
        const ssize_t got = ::read(p.done_r, &c, 1);
        if (got == 0) {
            done = true;
            break;
        }
        if (got < 0 && errno != EINTR) die("read done pipe");
    }
    const uint64_t t1 = now_ns();
    ::close(p.done_r);
    if (!done) {
        abort_children(pids);
        fail(what + ": the producers did not finish within " +
             std::to_string(kRunTimeoutMs / 1000) + " s");
    }
    int failed = 0;
    for (pid_t pid : pids) {
        const int st = reap(pid, 10000, "producer");
        if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            note("%s: producer %d exited abnormally (status %d)", what.c_str(), int(pid), st);
            ++failed;
        }
    }
    if (failed > 0)
        fail(what + ": " + std::to_string(failed) + " of " + std::to_string(job.procs) +
             " producers failed (see the notes above)");
    return double(t1 - t0) / 1e9;
}

// A fresh, empty queue, and no Writer left in this process (no writer threads at fork).
void fresh_queue(const std::string& q) {
    remove_queue(q);
    WriterOptions o;
    o.exclusive = false;
    auto w = Writer::open(q, o);
    if (!w) fail("cannot create the queue " + q + ": " + w.status().message());
}

void fresh_file(const std::string& path) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) die(("create " + path).c_str());
    ::close(fd);
}

// The queue holds exactly n records, sequence numbers 0..n-1, every producer's records in
// its own order, none lost or doubled.
void verify_queue(const std::string& dir, uint64_t n, int procs, const std::string& what) {
    auto r = Reader::open(dir);
    if (!r) {
        note("%s: UNEXPECTED: cannot open a reader: %s", what.c_str(),
             r.status().message().c_str());
        return;
    }
    Reader& rd = *r.value();
    std::vector<uint64_t> next(size_t(procs), 0);
    uint64_t count = 0, bad_seq = 0, bad_order = 0, bad_payload = 0;
    for (;;) {
        auto rec = rd.next();
        if (!rec) {
            note("%s: UNEXPECTED: reader error after %llu records: %s", what.c_str(),
                 (unsigned long long)count, rec.status().message().c_str());
            return;
        }
        if (!rec.value()) break;
        const chronicle::Record& x = *rec.value();
        if (x.seq != count) ++bad_seq;
        uint32_t who = 0;
        uint64_t i = 0;
        if (!parse_record(x.text(), who, i) || who >= uint32_t(procs)) {
            ++bad_payload;
        } else {
            if (i != next[who]) ++bad_order;
            next[who] = i + 1;
        }
        ++count;
    }
    uint64_t short_producers = 0;
    for (int i = 0; i < procs; ++i)
        short_producers += next[size_t(i)] != share(n, procs, i) ? 1 : 0;
    if (count != n || bad_seq != 0 || bad_order != 0 || bad_payload != 0 || short_producers != 0)
        note(
            "%s: UNEXPECTED: the queue holds %llu records (want %llu); %llu out of sequence, "
            "%llu out of their producer's order, %llu unreadable, %llu producers whose records "
            "end early",
            what.c_str(), (unsigned long long)count, (unsigned long long)n,
            (unsigned long long)bad_seq, (unsigned long long)bad_order,
            (unsigned long long)bad_payload, (unsigned long long)short_producers);
}

void verify_file(const std::string& path, uint64_t n, const std::string& what) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        note("%s: UNEXPECTED: stat %s: %s", what.c_str(), path.c_str(), std::strerror(errno));
        return;
    }
    if (uint64_t(st.st_size) != n * kLine)
        note("%s: UNEXPECTED: the file holds %lld bytes (want %llu lines of %zu bytes)",
             what.c_str(), (long long)st.st_size, (unsigned long long)n, kLine);
}

struct Latencies {
    std::vector<double> lib, oappend, flocked;  // ns, pooled over producers and reps
};

void run_procs_section(const std::string& dir, uint64_t n, int reps, const std::vector<int>& procs,
                       int every) {
    const long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    std::string plist;
    for (int np : procs) plist += (plist.empty() ? "" : ",") + std::to_string(np);
    note(
        "producers procs: P = %s processes, %llu records of %zu bytes in all per run, %d "
        "repetitions; for each P: chronicle (shared writers, one append() per record), "
        "batch64, O_APPEND write() of %zu-byte lines, flock + write + unlock; every %d-th "
        "record timed; %ld cpus",
        plist.c_str(), (unsigned long long)n, kPayload, reps, kLine, every, ncpu);
    Reps r;
    std::map<int, Latencies> lat;
    const std::string q = dir + "/procs_q", f = dir + "/procs.txt";
    for (int rep = 0; rep < reps; ++rep) {
        for (int np : procs) {
            const uint64_t t_start = now_ns();
            const std::string pn = "producers.p" + std::to_string(np);
            Latencies& l = lat[np];
            Job job;
            job.procs = np;
            job.n = n;
            // One kind of run: fresh target, P processes, the rate (and latency samples
            // when `into` is given), then the check of what they wrote.
            auto measure = [&](Kind kind, const std::string& path, const std::string& name,
                               std::vector<double>* into) {
                if (kind == Kind::single || kind == Kind::batch64) {
                    fresh_queue(path);
                } else {
                    fresh_file(path);
                }
                job.kind = kind;
                job.path = path;
                job.every = into != nullptr ? every : 0;
                LatBuf lb = into != nullptr ? lat_map(np, n, every) : LatBuf{};
                const double secs = run_procs(job, into != nullptr ? &lb : nullptr);
                if (into != nullptr) lat_collect(lb, *into);
                r.add(pn + name + "records_per_s", double(n) / secs, "records/s", true);
                if (kind == Kind::single || kind == Kind::batch64) {
                    verify_queue(path, n, np, pn + " " + name);
                } else {
                    verify_file(path, n, pn + " " + name);
                }
            };
            // chronicle: P shared writers, one append() per record, every every-th timed.
            measure(Kind::single, q, ".", &l.lib);
            // chronicle in batches of 64 (no latency samples: a call is not a record).
            measure(Kind::batch64, q, ".batch64.", nullptr);
            remove_queue(q);
            // O_APPEND: one write() per line.
            measure(Kind::oappend, f, ".oappend.", &l.oappend);
            // flock(LOCK_EX); write(); flock(LOCK_UN) per line.
            measure(Kind::flocked, f, ".flock.", &l.flocked);
            ::unlink(f.c_str());
            note("p%d repetition %d took %.1f s", np, rep + 1, double(now_ns() - t_start) / 1e9);
        }
    }
    r.print();
    for (int np : procs) {
        const std::string pn = "producers.p" + std::to_string(np);
        const double c = r.med(pn + ".records_per_s");
        // chronicle records/s / baseline records/s (medians).
        emit_ratio(pn + ".chronicle_over_oappend", c, r.med(pn + ".oappend.records_per_s"));
        emit_ratio(pn + ".chronicle_over_flock", c, r.med(pn + ".flock.records_per_s"));
        const Latencies& l = lat[np];
        if (!l.lib.empty()) {
            emit(pn + ".append_p50_ns", percentile(l.lib, 50), "ns");
            emit(pn + ".append_p99_ns", percentile(l.lib, 99), "ns");
        }
        if (!l.oappend.empty()) {
            emit(pn + ".oappend.append_p50_ns", percentile(l.oappend, 50), "ns");
            emit(pn + ".oappend.append_p99_ns", percentile(l.oappend, 99), "ns");
        }
        if (!l.flocked.empty()) {
            emit(pn + ".flock.append_p50_ns", percentile(l.flocked, 50), "ns");
            emit(pn + ".flock.append_p99_ns", percentile(l.flocked, 99), "ns");
        }
    }
    // The lock hand-off: p50 of an append with two producers appending at once minus its
    // p50 with one. Alone, a shared writer's append lock is uncontended (atomic operations
    // only, no system call); with two, an append often finds the lock held by the other
    // producer. The difference is the cost a contended append pays on top of an
    // uncontended one: waiting for the holder's commit, the lock's and the tail's cache
    // lines moving between CPUs, and — when the waiter had to sleep, or the holder was
    // descheduled — a futex wake-up. flock.handoff_p50_ns: the same difference for
    // flock + write + unlock, its baseline.
    const auto one = lat.find(1), two = lat.find(2);
    if (one != lat.end() && two != lat.end() && !one->second.lib.empty() &&
        !two->second.lib.empty()) {
        emit("producers.handoff_p50_ns",
             percentile(two->second.lib, 50) - percentile(one->second.lib, 50), "ns");
        if (!one->second.flocked.empty() && !two->second.flocked.empty())
            emit("producers.flock.handoff_p50_ns",
                 percentile(two->second.flocked, 50) - percentile(one->second.flocked, 50), "ns");
    } else {
        note("producers: no hand-off figure: --procs must include 1 and 2");
    }
    // Summary on stderr.
    for (int np : procs) {
        const std::string pn = "producers.p" + std::to_string(np);
        const Latencies& l = lat[np];
        note(
            "P=%d: records/s chronicle %.3g, batch64 %.3g, O_APPEND %.3g, flock %.3g; latency "
            "p50/p99 ns: chronicle %.0f/%.0f, O_APPEND %.0f/%.0f, flock %.0f/%.0f",
            np, r.med(pn + ".records_per_s"), r.med(pn + ".batch64.records_per_s"),
            r.med(pn + ".oappend.records_per_s"), r.med(pn + ".flock.records_per_s"),
            percentile(l.lib, 50), percentile(l.lib, 99), percentile(l.oappend, 50),
            percentile(l.oappend, 99), percentile(l.flocked, 50), percentile(l.flocked, 99));
    }
}

}  // namespace

int main(int argc, char** argv) {
    const std::string dir = arg(argc, argv, "--dir", "");
    if (dir.empty())
        fail(
            "usage: bench_producers --dir DIR [--n 2000000] [--reps 3] [--procs 1,2,4,8] "
            "[--lat-every 16] (see the header of producers_bench.cc)");
    const long n_arg = argl(argc, argv, "--n", 2000000);
    const int reps = int(argl(argc, argv, "--reps", 3));
    const int every = int(argl(argc, argv, "--lat-every", 16));
    std::vector<int> procs;
    for (int np : arg_list(argc, argv, "--procs", "1,2,4,8")) {
        if (np >= 1) {
            procs.push_back(np);
        } else {
            note("producers: --procs %d ignored", np);
        }
    }
    if (n_arg <= 0 || reps <= 0 || every <= 0) fail("--n, --reps and --lat-every must be positive");
    const uint64_t n = uint64_t(n_arg);
    signal(SIGPIPE, SIG_IGN);
    std::error_code ec;
    stdfs::create_directories(dir, ec);
    // What a timed empty interval costs (two clock reads), included in every latency.
    {
        std::vector<double> v;
        for (int i = 0; i < 100000; ++i) {
            const uint64_t a = now_ns();
            v.push_back(double(now_ns() - a));
        }
        emit("producers.clock_overhead_p50_ns", percentile(v, 50), "ns");
    }
    run_single(dir, n, reps);
    if (!procs.empty()) run_procs_section(dir, n, reps, procs, every);
    return 0;
}
