// Writer: appends, claims, batches, limits, the single-writer rule.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <random>
#include <span>
#include <vector>

#include "chronicle/admin.h"
#include "format.h"
#include "helpers.h"
#include "pack.h"
#include "queue_files.h"

using namespace chronicle;

TEST_CASE("AppendsGetDenseSequencesFromZeroAndReadBackInOrder") {
    test::TempDir t;
    auto w = Writer::open(t.queue());
    REQUIRE(w.ok());
    for (int i = 0; i < 100; ++i) {
        auto s = w.value()->append("record " + std::to_string(i));
        REQUIRE(s.ok());
        CHECK(s.value() == static_cast<uint64_t>(i));
    }
    auto all = test::read_all(t.queue());
    REQUIRE(all.size() == 100);
    CHECK(all[0] == "record 0");
    CHECK(all[99] == "record 99");
}

TEST_CASE("EmptyBinaryAndMaximumSizeRecordsRoundTrip") {
    test::TempDir t;
    auto w = Writer::open(t.queue(), test::small_segments(64 * 1024));
    REQUIRE(w.ok());
    Writer& wr = *w.value();
    const std::string binary("a\0b\nc\0\n\xff", 8);
    std::string maxrec(wr.max_payload(), 'x');
    maxrec[0] = '\0';
    maxrec.back() = '\n';
    REQUIRE(wr.append("").ok());
    REQUIRE(wr.append(binary).ok());
    REQUIRE(wr.append(maxrec).ok());
    REQUIRE(wr.append("after").ok());
    auto all = test::read_all(t.queue());
    REQUIRE(all.size() == 4);
    CHECK(all[0].empty());
    CHECK(all[1] == binary);
    CHECK(all[2] == maxrec);
    CHECK(all[3] == "after");
}

TEST_CASE("OneByteOverTheMaximumIsAClearErrorAndLosesNothing") {
    test::TempDir t;
    auto w = Writer::open(t.queue(), test::small_segments(64 * 1024));
    REQUIRE(w.ok());
    Writer& wr = *w.value();
    REQUIRE(wr.append("before").ok());
    auto s = wr.append(std::string(wr.max_payload() + 1, 'y'));
    REQUIRE_FALSE(s.ok());
    CHECK(s.status().code() == errc::too_large);
    CHECK(s.status().message().find(std::to_string(wr.max_payload())) != std::string::npos);
    REQUIRE(wr.append("after").ok());
    CHECK(test::read_all(t.queue()) == std::vector<std::string>{"before", "after"});
}

TEST_CASE("ClaimCommitWritesInPlaceAndAbortLeavesNoTrace") {
    test::TempDir t;
    auto w = Writer::open(t.queue());
    REQUIRE(w.ok());
    Writer& wr = *w.value();
    auto c = wr.claim(100);
    REQUIRE(c.ok());
    std::memset(c.value().data(), 'Z', 100);
    wr.abort();
    c = wr.claim(64);
    REQUIRE(c.ok());
    std::memcpy(c.value().data(), "hello, world", 12);
    std::memset(c.value().data() + 12, 'G', 52);  // garbage past the committed length
    auto s = wr.commit(5);
    REQUIRE(s.ok());
    CHECK(s.value() == 0);
    REQUIRE(wr.append("next").ok());
    CHECK(test::read_all(t.queue()) == std::vector<std::string>{"hello", "next"});
    CHECK_FALSE(wr.commit(1).ok());  // no claim open
}

TEST_CASE("BatchIsInvisibleUntilCommitThenVisibleAtOnce") {
    size_t hint = 0;
    SUBCASE("through the mapping") {}
    SUBCASE("through the page cache") {
        hint = 1 << 20;
    }
    test::TempDir t;
    auto w = Writer::open(t.queue(), test::small_segments());
    REQUIRE(w.ok());
    Writer& wr = *w.value();
    REQUIRE(wr.append("first").ok());
    REQUIRE(wr.begin_batch(hint).ok());
    for (int i = 0; i < 500; ++i) REQUIRE(wr.append("batched " + std::to_string(i)).ok());
    CHECK(test::read_all(t.queue()).size() == 1);  // spans several rolls, still invisible
    ReaderOptions ro;
    ro.start = Position::at_seq(300);
    auto r = Reader::open(t.queue(), ro);
    REQUIRE(r.ok());
    auto n = r.value()->next();
    REQUIRE(n.ok());
    CHECK_FALSE(n.value().has_value());  // a seek cannot land inside the batch either
    REQUIRE(wr.commit_batch().ok());
    auto all = test::read_all(t.queue());
    REQUIRE(all.size() == 501);
    CHECK(all[500] == "batched 499");
    n = r.value()->next();
    REQUIRE(n.ok());
    REQUIRE(n.value().has_value());
    CHECK(n.value()->seq == 300);
}

TEST_CASE("AbortedBatchAcrossRollsDisappearsWithItsSegments") {
    size_t hint = 0;
    SUBCASE("through the mapping") {}
    SUBCASE("through the page cache") {
        hint = 1 << 20;
    }
    test::TempDir t;
    auto w = Writer::open(t.queue(), test::small_segments());
    REQUIRE(w.ok());
    Writer& wr = *w.value();
    REQUIRE(wr.append("kept").ok());
    const auto before = test::list_dir(t.queue());
    REQUIRE(wr.begin_batch(hint).ok());
    for (int i = 0; i < 500; ++i) REQUIRE(wr.append("dropped " + std::to_string(i)).ok());
    wr.abort_batch();
    CHECK(test::list_dir(t.queue()) == before);
    CHECK(wr.next_seq() == 1);
    REQUIRE(wr.append("after").ok());
    CHECK(test::read_all(t.queue()) == std::vector<std::string>{"kept", "after"});
}

namespace {
// Walks the records of a segment file as they are on disk: every record's padding and
// everything past the last one (up to the file's end) must be zero.
std::string check_segment_bytes(const std::string& path) {
    const auto bytes = test::file_bytes(path);
    if (bytes.size() < sizeof(format::SegmentHeader)) return path + ": not a segment";
    uint32_t header_size = 0;
    std::memcpy(&header_size, bytes.data() + offsetof(format::SegmentHeader, header_size),
                sizeof header_size);
    uint64_t off = header_size;
    while (off + format::kRecordHeaderSize <= bytes.size()) {
        uint32_t state = 0, len = 0;
        std::memcpy(&state, bytes.data() + off, 4);
        std::memcpy(&len, bytes.data() + off + 4, 4);
        if (state == format::kStateEmpty) break;
        const uint64_t span = format::record_span(len);
        for (uint64_t i = off + format::kRecordHeaderSize + len; i < off + span; ++i) {
            if (bytes[i] != 0) return path + ": padding byte at " + std::to_string(i) + " not zero";
        }
        if (state == format::kStateSeal) return {};
        off += span;
    }
    for (uint64_t i = off; i < bytes.size(); ++i) {
        if (bytes[i] != 0)
            return path + ": byte at " + std::to_string(i) + " past the end not zero";
    }
    return {};
}
}  // namespace

TEST_CASE("ALargeBatchThroughThePageCacheIsWhatWasAppendedWithZerosPastIt") {
    uint64_t segment_size = 16 * 1024;
    SUBCASE("segments smaller than the stage") {}
    SUBCASE("segments larger than the stage") {
        segment_size = 4 << 20;
    }
    test::TempDir t;
    std::vector<std::string> want;
    {
        auto w = Writer::open(t.queue(), test::small_segments(segment_size));
        REQUIRE(w.ok());
        Writer& wr = *w.value();
        std::mt19937_64 rng(7);
        for (int batch = 0; batch < 12; ++batch) {
            REQUIRE(wr.begin_batch(1 << 20).ok());
            const int n = 50 + static_cast<int>(rng() % 400);
            for (int i = 0; i < n; ++i) {
                // Sizes from empty to a few KiB; their bytes are not zero, padding must be.
                const size_t len = rng() % 7 == 0 ? 0 : rng() % 3000;
                std::string rec(len, static_cast<char>('a' + rng() % 26));
                if (len > 0) rec[0] = static_cast<char>(0xff);
                // A claim inside two of the batches: the rest of them goes through the mapping.
                if ((batch == 5 || batch == 9) && rng() % 10 == 0) {
                    auto c = wr.claim(len + 5);
                    REQUIRE(c.ok());
                    std::memset(c.value().data(), 0x5a, len + 5);
                    std::memcpy(c.value().data(), rec.data(), len);
                    REQUIRE(wr.commit(len).ok());
                } else {
                    REQUIRE(wr.append(rec).ok());
                }
                want.push_back(rec);
            }
            if (batch % 4 == 3) {
                wr.abort_batch();
                want.resize(wr.next_seq());
            } else {
                REQUIRE(wr.commit_batch().ok());
            }
        }
        CHECK(test::read_all(t.queue()) == want);
    }
    const auto bases = files::list_segments(t.queue());
    REQUIRE(bases.ok());
    REQUIRE_FALSE(bases->empty());
    for (uint64_t b : bases.value()) {
        const std::string err = check_segment_bytes(t.queue() + "/" + files::segment_name(b));
        CHECK_MESSAGE(err.empty(), err);
    }
    // The next writer recovers the same tail and continues densely.
    auto w = Writer::open(t.queue());
    REQUIRE(w.ok());
    CHECK(w.value()->next_seq() == want.size());
    REQUIRE(w.value()->append("after").ok());
    want.push_back("after");
    CHECK(test::read_all(t.queue()) == want);
}

TEST_CASE("AppendDelimitedFramesLinesAsAppendsOneByOneWouldAndLeavesThePartialRecord") {
    uint64_t segment_size = 16 * 1024;
    SUBCASE("small segments: rolls and index slots inside blocks") {}
    SUBCASE("segments larger than the page stage") {
        segment_size = 4 << 20;
    }
    test::TempDir t;
    std::vector<std::string> want;
    std::mt19937_64 rng(11);
    auto w = Writer::open(t.queue(), test::small_segments(segment_size));
    REQUIRE(w.ok());
    Writer& wr = *w.value();
    std::string carry;  // the partial record each call leaves, continued by the next block
    for (int round = 0; round < 40; ++round) {
        // Blocks below and above the page stage's threshold (64 KiB), lines from empty to
        // 2000 bytes (short ones most often), bytes never zero: padding must be.
        const size_t target = round % 3 == 0 ? 200'000 : 1 + rng() % 9000;
        std::string block = carry;
        std::vector<std::string> lines;
        while (block.size() < target) {
            // Some longer than a pack takes (1 KiB), some with a two-byte length (>= 128).
            const size_t len =
                rng() % 4 == 0 ? (rng() % 8 == 0 ? rng() % 2000 : rng() % 300) : rng() % 12;
            std::string line(len, static_cast<char>('A' + rng() % 26));
            if (len > 1) line[len - 1] = static_cast<char>(0xff);
            if (lines.empty()) line = carry + line;
            lines.push_back(line);
            block += line.substr(lines.size() == 1 ? carry.size() : 0) + "\n";
        }
        // A partial record at the end: not appended, consumed stops before it.
        const std::string partial(rng() % 20, 'p');
        block += partial;
        const bool in_batch = round % 2 == 1;
        if (in_batch) REQUIRE(wr.begin_batch(block.size()).ok());
        const uint64_t before = wr.next_seq();
        auto r = wr.append_delimited(std::as_bytes(std::span(block.data(), block.size())),
                                     std::byte{'\n'});
        REQUIRE(r.status.ok());
        CHECK(r.records == lines.size());
        CHECK(r.consumed == block.size() - partial.size());
        CHECK(wr.next_seq() == before + lines.size());
        if (in_batch) {
            if (round % 4 == 3) {
                wr.abort_batch();
                CHECK(wr.next_seq() == before);
                carry = partial;
                continue;
            }
            REQUIRE(wr.commit_batch().ok());
        }
        want.insert(want.end(), lines.begin(), lines.end());
        carry = partial;
    }
    CHECK(test::read_all(t.queue()) == want);
    // Every record of a call carries one timestamp (a batch's), records seek by sequence.
    auto rd = Reader::open(t.queue());
    REQUIRE(rd.ok());
    for (uint64_t k = 0; k < want.size(); k += 997) {
        REQUIRE(rd.value()->seek(Position::at_seq(k)).ok());
        auto rec = rd.value()->next();
        REQUIRE(rec.ok());
        REQUIRE(rec.value().has_value());
        CHECK(rec.value()->seq == k);
        CHECK(rec.value()->text() == want[k]);
    }
    w.value().reset();
    const auto bases = files::list_segments(t.queue());
    REQUIRE(bases.ok());
    for (uint64_t b : bases.value()) {
        const std::string err = check_segment_bytes(t.queue() + "/" + files::segment_name(b));
        CHECK_MESSAGE(err.empty(), err);
    }
    const auto v = verify_queue(t.queue(), false);
    REQUIRE(v.ok());
    CHECK(v->problems.empty());
}

TEST_CASE("ThePackRunEncoderMatchesARecordByRecordEncodingAndWritesOnlyInsideItsRoom") {
    // pack::encode_run copies 16 bytes at a time and may write past the run it encodes, but
    // never past its room; the bytes of the run are the records' one-byte lengths and
    // payloads, as put_varint and a copy per record would write them.
    std::mt19937_64 rng(23);
    for (int round = 0; round < 20000; ++round) {
        std::string in;
        const size_t want_len = rng() % 300;
        while (in.size() < want_len) {
            // Mostly short records, some of 127 and 128 bytes (the boundary), some longer.
            const uint64_t pick = rng() % 16;
            const size_t len = pick == 0   ? 127
                               : pick == 1 ? 128
                               : pick == 2 ? 129 + rng() % 200
                                           : rng() % 20;
            in += std::string(len, static_cast<char>('a' + rng() % 26));
            if (rng() % 8 != 0) in += '\n';
        }
        const size_t avail = rng() % 4 == 0 ? in.size() : rng() % (in.size() + 1);
        // The reference: records shorter than 128 bytes whose delimiter is inside `avail`.
        std::string ref;
        size_t start = 0, records = 0, long_at = 0;
        bool long_found = false;
        for (size_t i = 0; i < avail; ++i) {
            if (in[i] != '\n') continue;
            if (i - start >= pack::kShortRecord) {
                long_found = true;
                long_at = i;
                break;
            }
            ref += static_cast<char>(i - start);
            ref += in.substr(start, i - start);
            start = i + 1;
            ++records;
        }
        constexpr size_t kGuard = 32;
        std::vector<std::byte> dst(avail + 2 * kGuard, std::byte{0xEE});
        const auto run = pack::encode_run(
            dst.data() + kGuard, reinterpret_cast<const std::byte*>(in.data()), avail, '\n');
        INFO("round ", round, " avail ", avail);
        REQUIRE(run.bytes == start);
        CHECK(run.records == records);
        CHECK(run.long_found == long_found);
        if (long_found) CHECK(run.long_delim == long_at);
        CHECK(run.written >= run.bytes);
        CHECK(run.written <= avail);
        CHECK(std::memcmp(dst.data() + kGuard, ref.data(), ref.size()) == 0);
        for (size_t i = 0; i < kGuard; ++i) REQUIRE(dst[i] == std::byte{0xEE});
        for (size_t i = kGuard + run.written; i < dst.size(); ++i)
            REQUIRE(dst[i] == std::byte{0xEE});
    }
}

TEST_CASE("AppendDelimitedStopsAtATooLargeRecordKeepingTheOnesBefore") {
    test::TempDir t;
    auto w = Writer::open(t.queue(), test::small_segments());
    REQUIRE(w.ok());
    Writer& wr = *w.value();
    const std::string big(wr.max_payload() + 1, 'x');
    const std::string block = "one\ntwo\n" + big + "\nthree\n";
    SUBCASE("outside a batch: the records before it are committed") {
        auto r = wr.append_delimited(std::as_bytes(std::span(block.data(), block.size())),
                                     std::byte{'\n'});
        CHECK(r.status.code() == errc::too_large);
        CHECK(r.records == 2);
        CHECK(r.consumed == 8);  // "one\ntwo\n": the bad record starts there
        CHECK(test::read_all(t.queue()) == std::vector<std::string>{"one", "two"});
    }
    SUBCASE("inside a batch: they stay in it") {
        REQUIRE(wr.begin_batch().ok());
        auto r = wr.append_delimited(std::as_bytes(std::span(block.data(), block.size())),
                                     std::byte{'\n'});
        CHECK(r.status.code() == errc::too_large);
        CHECK(r.records == 2);
        CHECK(test::read_all(t.queue()).empty());
        REQUIRE(wr.commit_batch().ok());
        CHECK(test::read_all(t.queue()) == std::vector<std::string>{"one", "two"});
    }
}

TEST_CASE("AnExclusiveWriterIsRefusedBesideAnotherAndRefusesOthersNamingTheHolderPid") {
    test::TempDir t;
    WriterOptions ex;
    ex.exclusive = true;
    auto w = Writer::open(t.queue(), ex);
    REQUIRE(w.ok());
    auto w2 = Writer::open(t.queue());  // shared: refused while an exclusive one writes
    REQUIRE_FALSE(w2.ok());
    CHECK(w2.status().code() == errc::busy);
    CHECK(w2.status().message().find("exclusive writer (pid " + std::to_string(::getpid())) !=
          std::string::npos);
    auto w3 = Writer::open(t.queue(), ex);
    REQUIRE_FALSE(w3.ok());
    CHECK(w3.status().code() == errc::busy);
    CHECK(w3.status().message().find("pid " + std::to_string(::getpid())) != std::string::npos);
    // The failed attempt must not have disturbed the holder.
    CHECK(w.value()->append("still writing").ok());
}

TEST_CASE("WriterLockIsReleasedWhenTheWriterCloses") {
    test::TempDir t;
    { REQUIRE(Writer::open(t.queue()).ok()); }
    CHECK(Writer::open(t.queue()).ok());
}

TEST_CASE("DirectoryWithOtherFilesIsNotTakenForAQueue") {
    test::TempDir t;
    std::ofstream(t.path() + "/precious.txt") << "data";
    auto w = Writer::open(t.path());
    REQUIRE_FALSE(w.ok());
    CHECK(w.status().code() == errc::invalid_argument);
    CHECK(test::list_dir(t.path()) == std::vector<std::string>{"precious.txt"});
}

TEST_CASE("TimestampsAreWallClockAndNeverDecrease") {
    test::TempDir t;
    auto w = Writer::open(t.queue());
    REQUIRE(w.ok());
    const auto now = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                               std::chrono::system_clock::now().time_since_epoch())
                                               .count());
    for (int i = 0; i < 1000; ++i) REQUIRE(w.value()->append("x").ok());
    auto r = Reader::open(t.queue());
    REQUIRE(r.ok());
    uint64_t prev = 0;
    for (;;) {
        auto n = r.value()->next();
        REQUIRE(n.ok());
        if (!n.value()) break;
        CHECK(n.value()->timestamp_ns >= prev);
        CHECK(n.value()->timestamp_ns + 1000000000ull > now);
        prev = n.value()->timestamp_ns;
    }
}

TEST_CASE("ExistingQueueKeepsItsSegmentSize") {
    test::TempDir t;
    { REQUIRE(Writer::open(t.queue(), test::small_segments(32 * 1024)).ok()); }
    auto w = Writer::open(t.queue(), test::small_segments(1 << 20));
    REQUIRE(w.ok());
    CHECK(w.value()->segment_size() == 32 * 1024);
}

TEST_CASE("BadSegmentSizeIsRefused") {
    test::TempDir t;
    auto w = Writer::open(t.queue(), test::small_segments(1000));
    REQUIRE_FALSE(w.ok());
    CHECK(w.status().code() == errc::invalid_argument);
}

TEST_CASE("DescriptorsAndMappingsStayFlatAcross1000Rolls") {
    test::TempDir t;
    auto w = Writer::open(t.queue(), test::small_segments());
    REQUIRE(w.ok());
    auto r = Reader::open(t.queue());
    REQUIRE(r.ok());
    const std::string rec(3000, 'r');  // 5 records per 16 KiB segment
    auto roll_some = [&](int rolls) {
        for (int i = 0; i < rolls * 4; ++i) {
            REQUIRE(w.value()->append(rec).ok());
            auto n = r.value()->next();
            REQUIRE(n.ok());
            REQUIRE(n.value().has_value());
        }
    };
    roll_some(20);  // warm up (pretouch thread, allocator)
    const size_t fds = test::count_open_fds();
    const size_t maps = test::count_mappings();
    roll_some(1000);
    CHECK(test::count_open_fds() == fds);
    CHECK(test::count_mappings() <= maps + 1);
}
