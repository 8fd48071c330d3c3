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
#include <span>
#include <thread>
#include <tuple>

#include "chronicle/admin.h"
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

// --- Packs (segment version 2, pack.h): small records of one append_delimited() call share
// one record header. Everything a reader does must see them as the records they are.
namespace {

// Appends `lines` lines "<i>" (i from `first`) through append_delimited, as one batch.
void append_lines(Writer& w, uint64_t first, uint64_t lines) {
    std::string block;
    for (uint64_t i = first; i < first + lines; ++i) block += std::to_string(i) + "\n";
    auto r =
        w.append_delimited(std::as_bytes(std::span(block.data(), block.size())), std::byte{'\n'});
    REQUIRE(r.status.ok());
    REQUIRE(r.records == lines);
}

Segment open_seg(const std::string& dir, uint64_t base) {
    auto dfd = fs::open_dir(dir);
    REQUIRE(dfd.ok());
    auto s = Segment::open(dfd->get(), dir, base, false);
    REQUIRE(s.ok());
    return std::move(s.value());
}

// Offsets of the packs of segment `base`, with the sequence of their first record.
std::vector<std::pair<uint64_t, uint64_t>> packs_of(const std::string& dir, uint64_t base) {
    const Segment s = open_seg(dir, base);
    std::vector<std::pair<uint64_t, uint64_t>> out;
    uint64_t off = s.data_begin(), seq = s.base();
    for (RecView r = s.read(off); r.kind == RecKind::data; r = s.read(off)) {
        if (r.packed) out.emplace_back(off, seq);
        seq += r.count;
        off = r.next_off;
    }
    return out;
}

}  // namespace

TEST_CASE("PackedRecordsAreFoundByEverySequenceAndTimeAndANamedReaderResumesInsideAPack") {
    test::TempDir t;
    constexpr uint64_t kBatches = 12, kPerBatch = 700;
    {
        auto w = Writer::open(t.queue(), test::small_segments());
        REQUIRE(w.ok());
        for (uint64_t b = 0; b < kBatches; ++b) {
            append_lines(*w.value(), b * kPerBatch, kPerBatch);
            std::this_thread::sleep_for(std::chrono::microseconds(50));  // distinct timestamps
        }
    }
    const uint64_t n = kBatches * kPerBatch;
    // Packed: a 16 KiB segment holds far more short lines than the 511 of 24-byte records.
    auto bases = files::list_segments(t.queue());
    REQUIRE(bases.ok());
    REQUIRE(bases->size() >= 2);
    CHECK((*bases)[1] > 1000);
    CHECK(!packs_of(t.queue(), 0).empty());
    // Read from the start: every record, in order, its batch's timestamp.
    std::vector<uint64_t> ts;
    {
        auto r = open_at(t.queue(), Position::start());
        for (uint64_t i = 0;; ++i) {
            auto rec = r->next();
            REQUIRE(rec.ok());
            if (!rec.value()) {
                CHECK(i == n);
                break;
            }
            REQUIRE(rec.value()->seq == i);
            REQUIRE(rec.value()->text() == std::to_string(i));
            ts.push_back(rec.value()->timestamp_ns);
        }
        CHECK(r->head().value() == n);
    }
    // Every sequence, inside packs or not, by a seek.
    auto r = open_at(t.queue(), Position::start());
    for (uint64_t k = 0; k < n; ++k) {
        REQUIRE(r->seek(Position::at_seq(k)).ok());
        auto rec = r->next();
        REQUIRE(rec.ok());
        REQUIRE(rec.value().has_value());
        REQUIRE(rec.value()->seq == k);
        REQUIRE(rec.value()->text() == std::to_string(k));
    }
    // Time: each batch's timestamp finds the batch's first record; -n counts records.
    for (uint64_t b = 0; b < kBatches; ++b) {
        const uint64_t first = b * kPerBatch;
        REQUIRE((b == 0 || ts[first] > ts[first - 1]));
        REQUIRE(r->seek(Position::at_time(ts[first])).ok());
        CHECK(r->next().value()->seq == first);
        if (b + 1 == kBatches) continue;
        REQUIRE(r->seek(Position::at_time(ts[first] + 1)).ok());
        CHECK(r->next().value()->seq == first + kPerBatch);
    }
    REQUIRE(r->seek(Position::last(3)).ok());
    CHECK(r->next().value()->seq == n - 3);
    // A named reader stopped inside a pack resumes at the next record of the pack.
    const auto inside = packs_of(t.queue(), 0).front();
    const uint64_t stop = inside.second + 5;
    {
        ReaderOptions o;
        o.name = "mid";
        auto named = Reader::open(t.queue(), o);
        REQUIRE(named.ok());
        for (uint64_t i = 0; i < stop; ++i) REQUIRE(named.value()->next().value()->seq == i);
    }
    ReaderOptions o;
    o.name = "mid";
    auto named = Reader::open(t.queue(), o);
    REQUIRE(named.ok());
    CHECK(named.value()->position() == stop);
    CHECK(named.value()->next().value()->seq == stop);
    const auto v = verify_queue(t.queue());
    REQUIRE(v.ok());
    CHECK(v->problems.empty());
}

TEST_CASE("AVersion1QueueIsReadAndAppendedToAndItsSegmentsNeverGetPacks") {
    test::TempDir t;
    const std::string seg0 = t.queue() + "/" + files::segment_name(0);
    {
        auto w = Writer::open(t.queue(), test::small_segments());
        REQUIRE(w.ok());
        for (int i = 0; i < 10; ++i) REQUIRE(w.value()->append(std::to_string(i)).ok());
    }
    // As a version-1 chronicle left it (the records are the same bytes).
    test::poke<uint32_t>(seg0, offsetof(format::SegmentHeader, version), 1);
    CHECK(test::read_all(t.queue()).size() == 10);
    {
        auto w = Writer::open(t.queue());
        REQUIRE(w.ok());
        append_lines(*w.value(), 10, 3000);  // fills the version-1 segment and rolls
    }
    auto all = test::read_all(t.queue());
    REQUIRE(all.size() == 3010);
    for (uint64_t i = 0; i < all.size(); ++i) REQUIRE(all[i] == std::to_string(i));
    CHECK(open_seg(t.queue(), 0).packs() == false);
    CHECK(packs_of(t.queue(), 0).empty());
    auto bases = files::list_segments(t.queue());
    REQUIRE(bases.ok());
    REQUIRE(bases->size() >= 2);
    CHECK(open_seg(t.queue(), (*bases)[1]).packs());
    CHECK(!packs_of(t.queue(), (*bases)[1]).empty());
    CHECK(verify_queue(t.queue())->problems.empty());
    // A pack in a version-1 segment is damage, reported where it is.
    const uint64_t third = 4096 + 2 * 24;  // records "0", "1" take 24 bytes each
    test::poke<uint32_t>(seg0, third, format::kStatePack);
    auto r = open_at(t.queue(), Position::start());
    for (int i = 0; i < 2; ++i) REQUIRE(r->next().value().has_value());
    auto bad = r->next();
    REQUIRE(!bad.ok());
    CHECK(bad.status().code() == errc::corrupt);
    CHECK(bad.status().message().find("offset " + std::to_string(third)) != std::string::npos);
}

TEST_CASE("ADamagedPackIsReportedAtItsOffsetAndNoneOfItsRecordsIsHandedOver") {
    test::TempDir t;
    {
        auto w = Writer::open(t.queue(), test::small_segments());
        REQUIRE(w.ok());
        append_lines(*w.value(), 0, 200);
    }
    const std::string seg0 = t.queue() + "/" + files::segment_name(0);
    const auto packs = packs_of(t.queue(), 0);
    REQUIRE(packs.size() == 1);
    const auto [at, first] = packs.front();
    REQUIRE(first == 1);  // the batch's first record stands alone
    const uint64_t body = at + format::kRecordHeaderSize;
    SUBCASE("a length that runs past the pack") {
        test::poke<uint8_t>(seg0, body + 4 + 2, 0x7f);  // "1": length 1, then '1'; now 127
    }
    SUBCASE("a count larger than the records in it") {
        test::poke<uint32_t>(seg0, body, 200);
    }
    SUBCASE("a length varint that never ends") {
        for (uint64_t i = 0; i < 6; ++i) test::poke<uint8_t>(seg0, body + 4 + i, 0x80);
    }
    auto r = open_at(t.queue(), Position::start());
    auto rec = r->next();
    REQUIRE(rec.ok());
    CHECK(rec.value()->text() == "0");
    auto bad = r->next();
    REQUIRE(!bad.ok());
    CHECK(bad.status().code() == errc::corrupt);
    CHECK(bad.status().message().find("offset " + std::to_string(at) + ": damaged pack") !=
          std::string::npos);
    // A seek into it meets the same damage, never a record from it.
    REQUIRE(r->seek(Position::at_seq(50)).ok());
    CHECK(r->next().status().code() == errc::corrupt);
    const auto v = verify_queue(t.queue());
    REQUIRE(v.ok());
    REQUIRE(!v->problems.empty());
    CHECK(v->problems[0].offset == at);
    CHECK(v->problems[0].what.find("damaged pack") != std::string::npos);
}
