// Reader: start positions, seeks, head/first, time seeks, missing queues, damage, read-only.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <thread>
#include <tuple>

#include "format.h"
#include "helpers.h"
#include "segment.h"

using namespace chronicle;

namespace {

// Payload of record i: its number, then a deterministic filler of varying length.
std::string payload(uint64_t i) {
    return "#" + std::to_string(i) + ":" + std::string((i * 7919) % 2500, char('a' + i % 26));
}

// A closed queue at t.queue() with `n` records payload(0..n-1).
void write_queue(const test::TempDir& t, uint64_t n, uint64_t segment_size = 16384) {
    auto w = Writer::open(t.queue(), test::small_segments(segment_size));
    REQUIRE(w.ok());
    for (uint64_t i = 0; i < n; ++i) REQUIRE(w.value()->append(payload(i)).ok());
}

std::unique_ptr<Reader> open_at(const std::string& dir, const Position& p) {
    ReaderOptions o;
    o.start = p;
    auto r = Reader::open(dir, o);
    REQUIRE(r.ok());
    return std::move(r.value());
}

// The next record's sequence, or UINT64_MAX at the end.
uint64_t next_seq(Reader& r) {
    auto n = r.next();
    REQUIRE(n.ok());
    return n.value() ? n.value()->seq : UINT64_MAX;
}

// Name, size, mtime, ctime and contents of every entry of `dir` and of dir/readers.
using Snapshot = std::map<std::string, std::tuple<off_t, int64_t, int64_t, std::string>>;
Snapshot snapshot(const std::string& dir) {
    Snapshot out;
    for (const std::string sub : {"", "/readers"}) {
        for (const auto& name : test::list_dir(dir + sub)) {
            const std::string path = dir + sub + "/" + name;
            struct stat st {};
            REQUIRE(::lstat(path.c_str(), &st) == 0);
            std::string content;
            if (S_ISREG(st.st_mode)) {
                std::ifstream f(path, std::ios::binary);
                content.assign(std::istreambuf_iterator<char>(f), {});
            }
            out[sub + "/" + name] = {
                st.st_size, st.st_mtim.tv_sec * 1000000000ll + st.st_mtim.tv_nsec,
                st.st_ctim.tv_sec * 1000000000ll + st.st_ctim.tv_nsec, std::move(content)};
        }
    }
    return out;
}

// Offset of record `k` inside a segment file, found by walking the record headers.
uint64_t record_offset(const std::string& seg_path, uint64_t k) {
    const int fd = ::open(seg_path.c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    format::SegmentHeader h{};
    REQUIRE(::pread(fd, &h, sizeof h, 0) == static_cast<ssize_t>(sizeof h));
    uint64_t off = h.header_size;
    for (uint64_t i = 0; i < k; ++i) {
        uint32_t len = 0;
        REQUIRE(::pread(fd, &len, sizeof len, static_cast<off_t>(off + 4)) == 4);
        off += format::record_span(len);
    }
    ::close(fd);
    return off;
}

}  // namespace

TEST_CASE("StartPositionBeginsAtTheFirstRecord") {
    test::TempDir t;
    write_queue(t, 50);
    auto r = open_at(t.queue(), Position::start());
    CHECK(r->position() == 0);
    auto n = r->next();
    REQUIRE(n.ok());
    REQUIRE(n.value().has_value());
    CHECK(n.value()->seq == 0);
    CHECK(n.value()->text() == payload(0));
}

TEST_CASE("EndPositionSeesOnlyRecordsAppendedAfterOpen") {
    test::TempDir t;
    auto w = Writer::open(t.queue(), test::small_segments());
    REQUIRE(w.ok());
    for (int i = 0; i < 50; ++i) REQUIRE(w.value()->append(payload(i)).ok());
    auto r = open_at(t.queue(), Position::end());
    CHECK(r->position() == 50);
    CHECK(next_seq(*r) == UINT64_MAX);
    REQUIRE(w.value()->append("later").ok());
    auto n = r->next();
    REQUIRE(n.ok());
    REQUIRE(n.value().has_value());
    CHECK(n.value()->seq == 50);
    CHECK(n.value()->text() == "later");
}

TEST_CASE("AtSeqPositionBeginsAtThatRecord") {
    test::TempDir t;
    write_queue(t, 50);
    auto r = open_at(t.queue(), Position::at_seq(37));
    CHECK(r->position() == 37);
    auto n = r->next();
    REQUIRE(n.ok());
    REQUIRE(n.value().has_value());
    CHECK(n.value()->seq == 37);
    CHECK(n.value()->text() == payload(37));
}

TEST_CASE("LastNBeginsNRecordsBeforeTheHead") {
    test::TempDir t;
    write_queue(t, 50);
    auto r = open_at(t.queue(), Position::last(10));
    CHECK(r->position() == 40);
    int count = 0;
    for (uint64_t s; (s = next_seq(*r)) != UINT64_MAX; ++count) CHECK(s == 40u + count);
    CHECK(count == 10);
    CHECK(next_seq(*open_at(t.queue(), Position::last(0))) == UINT64_MAX);
}

TEST_CASE("LastNLargerThanTheQueueBeginsAtTheFirstRecord") {
    test::TempDir t;
    write_queue(t, 50);
    auto r = open_at(t.queue(), Position::last(1000));
    CHECK(next_seq(*r) == 0);
    auto huge = open_at(t.queue(), Position::last(UINT64_MAX));
    CHECK(next_seq(*huge) == 0);
}

TEST_CASE("LastNLargerThanWhatIsLeftBeginsAtTheFirstSegmentOnDisk") {
    test::TempDir t;
    write_queue(t, 300);  // many 16 KiB segments
    auto bases = files::list_segments(t.queue());
    REQUIRE(bases.ok());
    REQUIRE(bases->size() > 3);
    // Old segments removed (as retention would): the queue now starts at the third one.
    std::filesystem::remove(t.queue() + "/" + files::segment_name((*bases)[0]));
    std::filesystem::remove(t.queue() + "/" + files::segment_name((*bases)[1]));
    const uint64_t first = (*bases)[2];
    auto r = open_at(t.queue(), Position::last(300));
    CHECK(r->first().value() == first);
    CHECK(next_seq(*r) == first);
    CHECK(next_seq(*open_at(t.queue(), Position::start())) == first);
}

TEST_CASE("SeekBelowTheFirstSegmentOnDiskIsExpired") {
    test::TempDir t;
    write_queue(t, 300);
    auto bases = files::list_segments(t.queue());
    REQUIRE(bases.ok());
    REQUIRE(bases->size() > 2);
    std::filesystem::remove(t.queue() + "/" + files::segment_name((*bases)[0]));
    ReaderOptions o;
    o.start = Position::at_seq(0);
    auto r = Reader::open(t.queue(), o);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == errc::expired);
}

TEST_CASE("SeekBySequenceAcrossHundredsOfRollsReturnsExactlyThatRecord") {
    test::TempDir t;
    const uint64_t n = 2500;  // ~1.3 KiB average: ~10 records per 16 KiB segment
    write_queue(t, n);
    REQUIRE(files::list_segments(t.queue())->size() > 200);
    auto r = open_at(t.queue(), Position::start());
    // Every sequence, in a scrambled order so each seek moves across segments.
    for (uint64_t k = 0; k < n; ++k) {
        const uint64_t target = (k * 1031) % n;
        CAPTURE(target);
        REQUIRE(r->seek(Position::at_seq(target)).ok());
        CHECK(r->position() == target);
        auto rec = r->next();
        REQUIRE(rec.ok());
        REQUIRE(rec.value().has_value());
        CHECK(rec.value()->seq == target);
        CHECK(rec.value()->text() == payload(target));
    }
    REQUIRE(r->seek(Position::at_seq(n)).ok());
    CHECK(next_seq(*r) == UINT64_MAX);
}

TEST_CASE("OpeningAtSequenceAcrossRollsReturnsExactlyThatRecord") {
    test::TempDir t;
    const uint64_t n = 1200;
    write_queue(t, n);
    for (uint64_t target = 0; target < n; target += 13) {
        CAPTURE(target);
        auto r = open_at(t.queue(), Position::at_seq(target));
        auto rec = r->next();
        REQUIRE(rec.ok());
        REQUIRE(rec.value().has_value());
        CHECK(rec.value()->seq == target);
        CHECK(rec.value()->text() == payload(target));
    }
}

TEST_CASE("HeadAndFirstReportTheCommittedRange") {
    test::TempDir t;
    auto w = Writer::open(t.queue(), test::small_segments());
    REQUIRE(w.ok());
    auto r = open_at(t.queue(), Position::start());
    CHECK(r->head().value() == 0);
    CHECK(r->first().value() == 0);
    for (uint64_t i = 0; i < 500; ++i) REQUIRE(w.value()->append(payload(i)).ok());
    CHECK(r->head().value() == 500);  // across dozens of rolls since the reader opened
    CHECK(r->first().value() == 0);
    REQUIRE(w.value()->begin_batch().ok());
    REQUIRE(w.value()->append("pending").ok());
    CHECK(r->head().value() == 500);  // an open batch is not committed
    REQUIRE(w.value()->commit_batch().ok());
    CHECK(r->head().value() == 501);
}

TEST_CASE("AtTimeFindsTheFirstRecordAtOrAfterTheTime") {
    test::TempDir t;
    {
        auto w = Writer::open(t.queue(), test::small_segments());
        REQUIRE(w.ok());
        for (int burst = 0; burst < 4; ++burst) {
            if (burst > 0) std::this_thread::sleep_for(std::chrono::milliseconds(3));
            for (int i = 0; i < 60; ++i) REQUIRE(w.value()->append(payload(burst * 60 + i)).ok());
        }
    }
    std::vector<uint64_t> ts;  // as the reader reports them
    auto all = open_at(t.queue(), Position::start());
    for (;;) {
        auto n = all->next();
        REQUIRE(n.ok());
        if (!n.value()) break;
        ts.push_back(n.value()->timestamp_ns);
    }
    REQUIRE(ts.size() == 240);
    std::vector<uint64_t> probes{0, ts.front() - 1, ts.back() + 1};
    for (uint64_t x : ts) probes.insert(probes.end(), {x - 1, x, x + 1});
    for (uint64_t at : probes) {
        CAPTURE(at);
        const auto expected =
            static_cast<uint64_t>(std::lower_bound(ts.begin(), ts.end(), at) - ts.begin());
        auto r = open_at(t.queue(), Position::at_time(at));
        CHECK(next_seq(*r) == (expected == ts.size() ? UINT64_MAX : expected));
    }
}

TEST_CASE("ReadingAnEmptyQueueReturnsNothing") {
    test::TempDir t;
    { REQUIRE(Writer::open(t.queue(), test::small_segments()).ok()); }
    for (const Position& p : {Position::start(), Position::end(), Position::last(5),
                              Position::at_time(0), Position::at_seq(0)}) {
        auto r = open_at(t.queue(), p);
        CHECK(r->position() == 0);
        auto n = r->next();
        REQUIRE(n.ok());
        CHECK_FALSE(n.value().has_value());
        CHECK(r->head().value() == 0);
    }
}

TEST_CASE("MissingQueueDirectoryIsNotFound") {
    test::TempDir t;
    auto r = Reader::open(t.path() + "/no-such-queue");
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == errc::not_found);
    CHECK(r.status().message().find(t.path() + "/no-such-queue") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(t.path() + "/no-such-queue"));
}

TEST_CASE("DirectoryThatIsNotAQueueIsNotFound") {
    test::TempDir t;
    std::ofstream(t.path() + "/notes.txt") << "not a queue";
    auto r = Reader::open(t.path());
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == errc::not_found);
    CHECK(r.status().message().find(t.path()) != std::string::npos);
    CHECK(test::list_dir(t.path()) == std::vector<std::string>{"notes.txt"});
}

TEST_CASE("ReaderOpenedBeforeAnyRecordSeesLaterAppends") {
    test::TempDir t;
    auto w = Writer::open(t.queue(), test::small_segments());
    REQUIRE(w.ok());
    auto r = open_at(t.queue(), Position::start());
    CHECK(next_seq(*r) == UINT64_MAX);
    CHECK(next_seq(*r) == UINT64_MAX);  // polling at the end is harmless
    uint64_t expected = 0;
    for (int round = 0; round < 5; ++round) {
        for (int i = 0; i < 30; ++i) REQUIRE(w.value()->append(payload(expected + i)).ok());
        for (int i = 0; i < 30; ++i, ++expected) {
            auto n = r->next();
            REQUIRE(n.ok());
            REQUIRE(n.value().has_value());
            CHECK(n.value()->seq == expected);
            CHECK(n.value()->text() == payload(expected));
        }
        CHECK(next_seq(*r) == UINT64_MAX);
    }
}

TEST_CASE("AnonymousReaderWritesNothingIntoTheQueue") {
    test::TempDir t;
    write_queue(t, 300);
    {  // one named cursor so that readers/ is not empty
        ReaderOptions o;
        o.name = "existing";
        REQUIRE(Reader::open(t.queue(), o).ok());
    }
    const Snapshot before = snapshot(t.queue());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // mtimes would move
    for (const Position& p : {Position::start(), Position::end(), Position::at_seq(123),
                              Position::last(7), Position::at_time(1)}) {
        auto r = open_at(t.queue(), p);
        while (next_seq(*r) != UINT64_MAX) {
        }
        CHECK(r->commit().ok());
        CHECK(r->head().value() == 300);
        CHECK(r->first().value() == 0);
        REQUIRE(r->seek(Position::at_seq(5)).ok());
        CHECK(next_seq(*r) == 5);
    }
    CHECK(snapshot(t.queue()) == before);
}

TEST_CASE("DamagedRecordInTheMiddleNamesTheSegmentFileAndOffset") {
    test::TempDir t;
    write_queue(t, 6, 1 << 20);  // all in segment 0
    const std::string seg = t.queue() + "/" + files::segment_name(0);
    const uint64_t off = record_offset(seg, 3);
    const int fd = ::open(seg.c_str(), O_WRONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    const uint32_t garbage = 0xDEADBEEF;
    REQUIRE(::pwrite(fd, &garbage, sizeof garbage, static_cast<off_t>(off)) == 4);
    ::close(fd);
    auto r = open_at(t.queue(), Position::start());
    for (uint64_t i = 0; i < 3; ++i) CHECK(next_seq(*r) == i);
    auto n = r->next();
    REQUIRE_FALSE(n.ok());
    CHECK(n.status().code() == errc::corrupt);
    CHECK(n.status().message().find(seg) != std::string::npos);
    CHECK(n.status().message().find(std::to_string(off)) != std::string::npos);
}

TEST_CASE("TruncatedSegmentIsCorruptOnOpenNotACrash") {
    test::TempDir t;
    write_queue(t, 10, 32768);
    const std::string seg = t.queue() + "/" + files::segment_name(0);
    REQUIRE(files::list_segments(t.queue())->size() == 1);
    for (uint64_t size : {uint64_t{16384}, uint64_t{4096}, uint64_t{0}}) {
        CAPTURE(size);
        std::filesystem::resize_file(seg, size);  // shorter than the header's 32 KiB
        auto r = Reader::open(t.queue());
        REQUIRE_FALSE(r.ok());
        CHECK(r.status().code() == errc::corrupt);
        CHECK(r.status().message().find(seg) != std::string::npos);
    }
}

namespace {
// A queue at `q` holding one record, and a reader that has read it (at the end, to wait).
Result<std::unique_ptr<Reader>> one_record_read(const std::string& q) {
    {
        auto w = Writer::open(q);
        REQUIRE(w.ok());
        REQUIRE(w.value()->append("x").ok());
    }
    auto r = Reader::open(q);
    REQUIRE(r.ok());
    REQUIRE(r.value()->next().value());
    return r;
}
}  // namespace

TEST_CASE("AFollowerWhoseQueueIsRemovedOrReplacedStopsWaitingWithNotFound") {
    for (bool replace : {false, true}) {
        CAPTURE(replace);
        test::TempDir t;
        const std::string q = t.queue();
        auto r = one_record_read(q);
        Status result;
        std::thread waiter([&] { result = r.value()->wait(std::chrono::seconds(20)); });
        std::this_thread::sleep_for(std::chrono::milliseconds(200));  // parked
        std::filesystem::remove_all(q);
        if (replace) {
            auto w = Writer::open(q);
            REQUIRE(w.ok());
            REQUIRE(w.value()->append("new").ok());
        }
        const auto t0 = std::chrono::steady_clock::now();
        waiter.join();
        CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
        CHECK(result.code() == errc::not_found);
        CHECK(result.message().find("was removed while being followed") != std::string::npos);
    }
}

TEST_CASE("AWaitWithAZeroOrShortTimeoutReturnsTimeoutAtOnce") {
    // fuzz_cursor found wait(0) blocking for ever: a deadline already past when the wait
    // loop computed its slice wrapped around to "no timeout".
    test::TempDir t;
    const std::string q = t.queue();
    auto r = one_record_read(q);
    for (auto timeout : {std::chrono::nanoseconds(0), std::chrono::nanoseconds(1),
                         std::chrono::nanoseconds(1000000)}) {
        const auto t0 = std::chrono::steady_clock::now();
        const Status st = r.value()->wait(timeout);
        CHECK(st.code() == errc::timeout);
        CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(2));
    }
}
