// Retention (chronicle/retention.h): the policy as a pure function (plan_retention), the
// limits file, the pass on demand, the writer applying limits by itself, and what readers
// see when segments go — pinned, expired, skipped, or still read from a deleted file.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <random>

#include "chronicle/admin.h"
#include "chronicle/reader.h"
#include "chronicle/retention.h"
#include "chronicle/writer.h"
#include "helpers.h"
#include "queue_files.h"
#include "retention_plan.h"

using namespace chronicle;

namespace {

constexpr uint64_t kSeg = 16 * 1024;

// Ten segments of 1000 records each, 100 bytes apiece; head 10000 (the last segment holds
// 9000..9999); the newest record of segment i is i hours old counted back from 10 h.
QueueFacts ten_segments() {
    QueueFacts q;
    for (uint64_t i = 0; i < 10; ++i) q.segments.push_back({i * 1000, 100});
    q.head = 10000;
    q.now_ns = 100ull * 3600 * 1000000000;
    q.disk_free = 1000;
    q.disk_size = 10000;
    q.disk_known = true;
    q.end_of = [now = q.now_ns](size_t i) {
        // Segment 0: newest record 10 h old … 9: 1 h; all sealed but the last.
        return QueueFacts::End{i < 9, now - (10 - i) * 3600ull * 1000000000};
    };
    return q;
}

std::vector<uint64_t> deleted_bases(const RetentionReport& r) {
    std::vector<uint64_t> b;
    for (const auto& d : r.deleted) b.push_back(d.base);
    return b;
}

// A closed queue of n records "r<i>" in 16 KiB segments, with `limits` if any.
void fill(const std::string& q, int n, std::optional<RetentionLimits> limits = std::nullopt) {
    WriterOptions o = test::small_segments(kSeg);
    o.retention = limits;
    auto w = Writer::open(q, o);
    REQUIRE(w.ok());
    for (int i = 0; i < n; ++i) REQUIRE(w.value()->append("r" + std::to_string(i)).ok());
}

uint64_t first_of(const std::string& q) {
    auto r = Reader::open(q);
    REQUIRE(r.ok());
    auto f = r.value()->first();
    REQUIRE(f.ok());
    return f.value();
}

// Every record from `from` to the head, in order and without a gap; returns the count.
uint64_t check_contiguous(const std::string& q) {
    auto r = Reader::open(q);
    REQUIRE(r.ok());
    const uint64_t first = r.value()->first().value();
    uint64_t expect = first;
    for (;;) {
        auto n = r.value()->next();
        REQUIRE(n.ok());
        if (!n.value()) break;
        REQUIRE(n.value()->seq == expect);
        REQUIRE(n.value()->text() == "r" + std::to_string(expect));
        ++expect;
    }
    return expect - first;
}

RetainOptions opts(bool dry_run, std::optional<RetentionLimits> limits = std::nullopt) {
    RetainOptions o;
    o.dry_run = dry_run;
    o.limits = limits;
    return o;
}

}  // namespace

TEST_CASE("TheRetentionPolicyDeletesWholeSegmentsOldestFirstForEachLimit") {
    QueueFacts q = ten_segments();
    SUBCASE("max-bytes keeps at most that much") {
        RetentionLimits l;
        l.max_bytes = 450;
        const auto r = plan_retention(q, l);
        CHECK(deleted_bases(r) == std::vector<uint64_t>{0, 1000, 2000, 3000, 4000, 5000});
        CHECK(r.bytes_after == 400);
        CHECK(r.first_after == 6000);
        CHECK(r.deleted.front().cause == RetentionCause::max_bytes);
        CHECK(r.deleted.front().records == 1000);
        CHECK(r.deleted.back().first_after == 6000);
    }
    SUBCASE("max-records") {
        RetentionLimits l;
        l.max_records = 2500;
        const auto r = plan_retention(q, l);
        CHECK(r.first_after == 8000);  // 2000 records left: 7000.. would be 3000 > 2500
        CHECK(r.deleted.back().cause == RetentionCause::max_records);
    }
    SUBCASE("max-age looks at each segment's newest record") {
        RetentionLimits l;
        l.max_age_ms = 5ull * 3600 * 1000 + 1;  // older than 5 h: segments 0..4 (10..6 h)
        const auto r = plan_retention(q, l);
        CHECK(r.first_after == 5000);
        CHECK(r.deleted.front().cause == RetentionCause::max_age);
    }
    SUBCASE("keep-free in bytes and in percent") {
        RetentionLimits l;
        l.keep_free_bytes = 1250;  // 1000 free: three segments of 100 bring it to 1300
        CHECK(plan_retention(q, l).first_after == 3000);
        l.keep_free_bytes = 0;
        l.keep_free_percent = 12;  // 1200 of 10000
        const auto r = plan_retention(q, l);
        CHECK(r.first_after == 2000);
        CHECK(r.deleted.front().cause == RetentionCause::keep_free);
        q.disk_known = false;  // statvfs failed: free space unknown, nothing deleted for it
        CHECK(plan_retention(q, l).deleted.empty());
    }
    SUBCASE("the segment holding the head is never deleted") {
        RetentionLimits l;
        l.max_bytes = 1;
        const auto r = plan_retention(q, l);
        CHECK(r.deleted.size() == 9);
        CHECK(r.first_after == 9000);
        q.head = 9000;  // the last segment is empty: still kept
        CHECK(plan_retention(q, l).deleted.size() == 9);
    }
    SUBCASE("a segment whose successor holds uncommitted records (a batch) is kept") {
        RetentionLimits l;
        l.max_bytes = 1;
        q.head = 7500;  // segments 8000 and 9000 belong to a batch in progress
        const auto r = plan_retention(q, l);
        CHECK(r.first_after == 7000);
    }
    SUBCASE("a segment without its seal (a roll cut short) is kept, and all after it") {
        RetentionLimits l;
        l.max_bytes = 1;
        q.end_of = [](size_t i) { return QueueFacts::End{i != 3 && i < 9, 0}; };
        CHECK(plan_retention(q, l).first_after == 3000);
    }
    SUBCASE("no limits, no deletions") {
        CHECK(plan_retention(q, RetentionLimits{}).deleted.empty());
    }
}

TEST_CASE("SoftLimitsStopAtWhatANamedReaderNeedsAndSayHowMuchItKeeps") {
    QueueFacts q = ten_segments();
    RetentionLimits l;
    l.max_bytes = 250;  // would delete 0..7000 (8 segments)
    q.readers = {{"audit", 2500, true, false}, {"billing", 9000, false, false}};
    const auto r = plan_retention(q, l);
    CHECK(deleted_bases(r) == std::vector<uint64_t>{0, 1000});
    REQUIRE(r.pinned.size() == 1);
    CHECK(r.pinned[0].name == "audit");
    CHECK(r.pinned[0].segments == 6);  // 2000 .. 7000
    CHECK(r.pinned[0].bytes == 600);
    CHECK(r.pinned[0].alive);
    CHECK(r.expired.empty());

    SUBCASE("a damaged cursor pins everything") {
        q.readers = {{"broken", 0, false, true}};
        const auto d = plan_retention(q, l);
        CHECK(d.deleted.empty());
        REQUIRE(d.pinned.size() == 1);
        CHECK(d.pinned[0].damaged);
    }
    SUBCASE("a reader already behind the first record pins the first segment") {
        q.segments.erase(q.segments.begin(), q.segments.begin() + 3);  // first is 3000
        q.readers = {{"late", 5, false, false}};
        const auto d = plan_retention(q, l);
        CHECK(d.deleted.empty());
        REQUIRE(d.expired.size() == 1);  // it is expired already, and said so
        CHECK(d.expired[0].records_lost == 2995);
    }
}

TEST_CASE("HardLimitsDeleteAnywayAndTheOvertakenReadersAreExpired") {
    QueueFacts q = ten_segments();
    RetentionLimits l;
    l.max_bytes = 250;
    l.hard = true;
    q.readers = {{"audit", 2500, true, false}, {"billing", 9000, false, false}};
    const auto r = plan_retention(q, l);
    CHECK(r.first_after == 8000);
    CHECK(r.pinned.empty());
    REQUIRE(r.expired.size() == 1);
    CHECK(r.expired[0].name == "audit");
    CHECK(r.expired[0].records_lost == 5500);
}

TEST_CASE("RetentionJsonRoundTripsAndIsRefusedWhenMalformed") {
    test::TempDir t;
    const std::string q = t.queue();
    fill(q, 10);
    auto none = read_retention(q);
    REQUIRE(none.ok());
    CHECK_FALSE(none.value().any());
    CHECK(describe(none.value()) == "none");

    RetentionLimits l;
    l.max_bytes = 256ull << 20;
    l.max_age_ms = 7ull * 86400 * 1000;
    l.keep_free_percent = 15;
    l.hard = true;
    REQUIRE(write_retention(q, l).ok());
    auto back = read_retention(q);
    REQUIRE(back.ok());
    CHECK(back.value() == l);
    CHECK(describe(l) == "max-bytes 256.0 MiB, max-age 7d, keep-free 15% (hard)");

    RetentionLimits both;
    both.keep_free_bytes = 1;
    both.keep_free_percent = 1;
    CHECK(write_retention(q, both).code() == errc::invalid_argument);

    const std::string path = q + "/retention.json";
    for (const char* bad :
         {"", "[]", "{\"version\":2}", "{\"version\":1,\"max_bytes\":-1}",
          "{\"version\":1,\"mode\":\"sometimes\"}", "{\"version\":1,\"keep_free_percent\":100}"}) {
        CAPTURE(bad);
        std::ofstream(path, std::ios::trunc) << bad;
        auto r = read_retention(q);
        REQUIRE_FALSE(r.ok());
        CHECK(r.status().code() == errc::corrupt);
        CHECK(r.status().message().find(path) != std::string::npos);
    }
    // No limits and soft: the file goes.
    REQUIRE(write_retention(q, RetentionLimits{}).ok());
    CHECK_FALSE(std::filesystem::exists(path));
}

TEST_CASE("AWriterCreatesTheQueueWithItsLimitsAndRefusesOthersForAnExistingQueue") {
    test::TempDir t;
    const std::string q = t.queue();
    RetentionLimits l;
    l.max_records = 500;
    fill(q, 10, l);
    CHECK(read_retention(q).value() == l);
    fill(q, 10, l);  // the same limits again: fine
    RetentionLimits other;
    other.max_records = 600;
    WriterOptions o = test::small_segments(kSeg);
    o.retention = other;
    auto w = Writer::open(q, o);
    REQUIRE_FALSE(w.ok());
    CHECK(w.status().code() == errc::invalid_argument);
    CHECK(w.status().message().find("chronicle-queue set") != std::string::npos);
}

TEST_CASE("TheWriterAppliesItsLimitsItselfAndLeavesTheQueueWithinThemWhenItCloses") {
    test::TempDir t;
    const std::string q = t.queue();
    RetentionLimits l;
    l.max_bytes = 4 * kSeg;
    fill(q, 20000, l);  // ~40 segments of 16 KiB
    auto segs = inspect_segments(q);
    REQUIRE(segs.ok());
    uint64_t bytes = 0;
    for (const auto& s : segs.value()) bytes += s.bytes;
    CHECK(bytes <= l.max_bytes);
    CHECK(first_of(q) > 0);
    CHECK(check_contiguous(q) == 20000 - first_of(q));
    // A writer that started before the limits existed picks them up at its next roll.
    test::TempDir t2;
    const std::string q2 = t2.queue();
    auto w = Writer::open(q2, test::small_segments(kSeg));
    REQUIRE(w.ok());
    for (int i = 0; i < 2000; ++i) REQUIRE(w.value()->append("r" + std::to_string(i)).ok());
    REQUIRE(write_retention(q2, l).ok());
    for (int i = 2000; i < 20000; ++i) REQUIRE(w.value()->append("r" + std::to_string(i)).ok());
    w = Result<std::unique_ptr<Writer>>(Status(errc::closed, "closed"));
    bytes = 0;
    auto segs2 = inspect_segments(q2);
    REQUIRE(segs2.ok());
    for (const auto& s : segs2.value()) bytes += s.bytes;
    CHECK(bytes <= l.max_bytes);
}

TEST_CASE("ARetentionPassReportsEachDeletionAndTheReadersItPinsOrExpires") {
    test::TempDir t;
    const std::string q = t.queue();
    fill(q, 6000);  // ~12 segments
    {
        ReaderOptions ro;
        ro.name = "audit";
        ro.start = Position::at_seq(100);
        REQUIRE(Reader::open(q, ro).ok());  // created at 100, closed
    }
    RetentionLimits l;
    l.max_records = 1000;
    REQUIRE(write_retention(q, l).ok());

    auto dry = apply_retention(q, opts(true));
    REQUIRE(dry.ok());
    CHECK(dry->deleted.empty());  // segment 0 holds 100: audit needs it
    REQUIRE(dry->pinned.size() == 1);
    CHECK(dry->pinned[0].name == "audit");
    CHECK(dry->pinned[0].position == 100);
    CHECK(dry->pinned[0].bytes > 0);

    l.hard = true;
    auto hard_dry = apply_retention(q, opts(true, l));
    REQUIRE(hard_dry.ok());
    CHECK_FALSE(hard_dry->deleted.empty());
    CHECK(first_of(q) == 0);  // a dry run deletes nothing
    for (const auto& d : hard_dry->deleted) CHECK_FALSE(d.done);

    REQUIRE(write_retention(q, l).ok());
    auto done = apply_retention(q);
    REQUIRE(done.ok());
    REQUIRE_FALSE(done->deleted.empty());
    for (const auto& d : done->deleted) {
        CHECK(d.done);
        CHECK(d.cause == RetentionCause::max_records);
        CHECK_FALSE(std::filesystem::exists(q + "/" + d.file));
    }
    const uint64_t first = first_of(q);
    CHECK(first == done->first_after);
    CHECK(6000 - first <= 1000);
    REQUIRE(done->expired.size() == 1);
    CHECK(done->expired[0].records_lost == first - 100);

    // The expired reader: chronicle-readers' view, an error that says so, or a skip.
    auto rs = inspect_reader(q, "audit");
    REQUIRE(rs.ok());
    CHECK(rs->expired);
    CHECK(rs->records_lost == first - 100);
    ReaderOptions ro;
    ro.name = "audit";
    auto expired = Reader::open(q, ro);
    REQUIRE_FALSE(expired.ok());
    CHECK(expired.status().code() == errc::expired);
    CHECK(expired.status().message().find("audit") != std::string::npos);
    ro.skip_expired = true;
    auto skipping = Reader::open(q, ro);
    REQUIRE(skipping.ok());
    CHECK(skipping.value()->expired_skipped() == first - 100);
    auto rec = skipping.value()->next();
    REQUIRE(rec.ok());
    REQUIRE(rec.value());
    CHECK(rec.value()->seq == first);
}

TEST_CASE("AReaderInsideADeletedSegmentReadsItToTheEndAndMovesOn") {
    test::TempDir t;
    const std::string q = t.queue();
    fill(q, 3000);
    auto r = Reader::open(q);
    REQUIRE(r.ok());
    auto first = r.value()->next();  // maps segment 0
    REQUIRE(first.ok());
    REQUIRE(first.value());
    RetentionLimits l;
    l.max_records = 1;
    l.hard = true;
    auto rep = apply_retention(q, opts(false, l));
    REQUIRE(rep.ok());
    REQUIRE(rep->deleted.size() >= 2);
    const uint64_t seg1_end = rep->deleted[0].first_after;
    // Segment 0 is still mapped: its records come; at its seal the next segment is gone too.
    uint64_t seq = 1;
    for (; seq < seg1_end; ++seq) {
        auto n = r.value()->next();
        REQUIRE(n.ok());
        REQUIRE(n.value());
        CHECK(n.value()->seq == seq);
    }
    auto gone = r.value()->next();
    REQUIRE_FALSE(gone.ok());
    CHECK(gone.status().code() == errc::expired);

    // With skip_expired the same reader carries on at the first record on disk.
    ReaderOptions ro;
    ro.skip_expired = true;
    ro.start = Position::at_seq(0);
    auto s = Reader::open(q, ro);
    REQUIRE(s.ok());
    CHECK(s.value()->expired_skipped() == rep->first_after);
}

TEST_CASE("OnePassAtATimeAnotherProcessHoldingTheQueueIsBusy") {
    test::TempDir t;
    const std::string q = t.queue();
    fill(q, 3000);
    const int fd = ::open(q.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    REQUIRE(::flock(fd, LOCK_EX) == 0);
    RetentionLimits l;
    l.max_records = 1;
    auto r = apply_retention(q, opts(false, l));
    REQUIRE(r.ok());
    CHECK(r->busy);
    CHECK(first_of(q) == 0);
    ::close(fd);
    r = apply_retention(q, opts(false, l));
    REQUIRE(r.ok());
    CHECK_FALSE(r->busy);
    CHECK(first_of(q) > 0);
}

TEST_CASE("KillingADeletingProcessAtAnyInstantLeavesAContiguousQueue") {
    std::mt19937 rng(42);
    for (int trial = 0; trial < 20; ++trial) {
        test::TempDir t;
        const std::string q = t.queue();
        fill(q, 20000);
        const pid_t pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            RetentionLimits l;
            l.max_records = 1;
            (void)apply_retention(q, opts(false, l));
            ::_exit(0);
        }
        ::usleep(std::uniform_int_distribution<useconds_t>(0, 3000)(rng));
        ::kill(pid, SIGKILL);
        int st = 0;
        ::waitpid(pid, &st, 0);
        CAPTURE(trial);
        const uint64_t first = first_of(q);
        CHECK(check_contiguous(q) == 20000 - first);
        // A writer opens it cleanly and appends after the head.
        auto w = Writer::open(q, test::small_segments(kSeg));
        REQUIRE(w.ok());
        CHECK(w.value()->next_seq() == 20000);
    }
}
