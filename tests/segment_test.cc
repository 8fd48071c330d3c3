// Segment files: naming, geometry, header validation, the sparse index.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "format.h"
#include "fs.h"
#include "helpers.h"
#include "segment.h"

using namespace chronicle;

namespace {

// Overwrites `len` bytes at `off` of the file at `path`.
void poke(const std::string& path, uint64_t off, const void* bytes, size_t len) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    REQUIRE(::pwrite(fd, bytes, len, static_cast<off_t>(off)) == static_cast<ssize_t>(len));
    ::close(fd);
}

// A closed queue at t.queue() holding `n` records "rec <i>"; returns the path of segment 0.
std::string queue_with_records(const test::TempDir& t, int n, uint64_t segment_size = 16384) {
    {
        auto w = Writer::open(t.queue(), test::small_segments(segment_size));
        REQUIRE(w.ok());
        for (int i = 0; i < n; ++i) REQUIRE(w.value()->append("rec " + std::to_string(i)).ok());
    }
    return t.queue() + "/" + files::segment_name(0);
}

Result<Segment> open_segment(const std::string& dir, uint64_t base) {
    auto dfd = fs::open_dir(dir);
    REQUIRE(dfd.ok());
    return Segment::open(dfd->get(), dir, base, false);
}

}  // namespace

TEST_CASE("SegmentNamesRoundTrip") {
    for (uint64_t base : {uint64_t{0}, uint64_t{1}, uint64_t{42}, uint64_t{1} << 32,
                          uint64_t{12345678901234567890ull}, UINT64_MAX}) {
        const std::string name = files::segment_name(base);
        CHECK(name.size() == 24);
        uint64_t parsed = 7;
        REQUIRE(files::parse_segment_name(name, parsed));
        CHECK(parsed == base);
    }
    CHECK(files::segment_name(42) == "00000000000000000042.seg");
}

TEST_CASE("SegmentNamesSortLexicographicallyInNumericOrder") {
    std::vector<uint64_t> bases{
        UINT64_MAX, 0, 10, 9, 100, 99, 1000000, 999999, uint64_t{1} << 40, (uint64_t{1} << 40) - 1,
        1};
    std::vector<std::string> names;
    for (uint64_t b : bases) names.push_back(files::segment_name(b));
    std::sort(names.begin(), names.end());
    std::sort(bases.begin(), bases.end());
    for (size_t i = 0; i < names.size(); ++i) {
        uint64_t parsed = 0;
        REQUIRE(files::parse_segment_name(names[i], parsed));
        CHECK(parsed == bases[i]);
    }
}

TEST_CASE("GarbageSegmentNamesAreRejected") {
    for (const char* name :
         {"", "42.seg", "0000000000000000042.seg", "000000000000000000042.seg",
          "0000000000000000004a.seg", "00000000000000000042.SEG", "00000000000000000042.sg",
          "00000000000000000042.seg.tmp", " 0000000000000000042.seg", "-0000000000000000042.seg",
          "+0000000000000000042.seg", "18446744073709551616.seg", "99999999999999999999.seg",
          "00000000000000000042_seg", ".next.seg.tmp", "writer.lock"}) {
        uint64_t parsed = 1234;
        CHECK_MESSAGE(!files::parse_segment_name(name, parsed), name);
        CHECK(parsed == 1234);  // left untouched
    }
}

TEST_CASE("ListSegmentsIgnoresOtherEntriesAndSortsNumerically") {
    test::TempDir t;
    for (uint64_t b : {uint64_t{100}, uint64_t{9}, uint64_t{0}}) {
        std::ofstream(t.path() + "/" + files::segment_name(b)) << "x";
    }
    std::ofstream(t.path() + "/writer.lock") << "";
    std::ofstream(t.path() + "/00000000000000000042.seg.tmp") << "";
    auto l = files::list_segments(t.path());
    REQUIRE(l.ok());
    CHECK(l.value() == std::vector<uint64_t>{0, 9, 100});
}

TEST_CASE("GeometryRejectsSizesOutsideTheRangeOrNotPageMultiples") {
    for (uint64_t bad : {uint64_t{0}, uint64_t{4096}, uint64_t{12288}, uint64_t{16383},
                         uint64_t{16384 + 512}, uint64_t{16384 + 4095}, (uint64_t{1} << 30) + 4096,
                         uint64_t{1} << 31, UINT64_MAX - 4095}) {
        auto g = SegmentGeometry::for_size(bad);
        CHECK_MESSAGE(!g.ok(), bad);
        if (!g.ok()) CHECK(g.status().code() == errc::invalid_argument);
    }
    for (uint64_t good :
         {uint64_t{16384}, uint64_t{20480}, uint64_t{64} << 20, uint64_t{1} << 30}) {
        CHECK_MESSAGE(SegmentGeometry::for_size(good).ok(), good);
    }
}

TEST_CASE("GeometryLeavesRoomForHeaderIndexRecordAndSeal") {
    for (uint64_t size : {uint64_t{16384}, uint64_t{20480}, uint64_t{1} << 20, uint64_t{64} << 20,
                          uint64_t{1} << 30}) {
        CAPTURE(size);
        auto g = SegmentGeometry::for_size(size);
        REQUIRE(g.ok());
        CHECK(g->header_size % format::kPageSize == 0);
        CHECK(g->header_size >= format::kIndexOffset + uint64_t{g->slots} * 8);
        CHECK(g->slots <= format::kMaxIndexSlots);
        CHECK((uint64_t{g->slots} << g->stride_log2) >= size);  // the index covers the file
        const uint64_t max = g->max_payload();
        CHECK(max % format::kRecordAlign == 0);
        // The largest record plus the seal that follows it fit after the header...
        CHECK(g->header_size + format::record_span(max) + format::kRecordHeaderSize <= size);
        // ...and one more aligned step would not.
        CHECK(g->header_size + format::record_span(max + 1) + format::kRecordHeaderSize > size);
    }
}

TEST_CASE("SegmentWithWrongMagicIsCorruptNamingThePath") {
    test::TempDir t;
    const std::string path = queue_with_records(t, 3);
    const uint64_t junk = 0x0123456789abcdefull;
    poke(path, offsetof(format::SegmentHeader, magic), &junk, sizeof junk);
    auto s = open_segment(t.queue(), 0);
    REQUIRE_FALSE(s.ok());
    CHECK(s.status().code() == errc::corrupt);
    CHECK(s.status().message().find(path) != std::string::npos);
}

TEST_CASE("SegmentWhoseSizeFieldDisagreesWithTheFileIsCorrupt") {
    test::TempDir t;
    const std::string path = queue_with_records(t, 3);
    const uint64_t wrong = 32768;
    poke(path, offsetof(format::SegmentHeader, segment_size), &wrong, sizeof wrong);
    auto s = open_segment(t.queue(), 0);
    REQUIRE_FALSE(s.ok());
    CHECK(s.status().code() == errc::corrupt);
    CHECK(s.status().message().find(path) != std::string::npos);
}

TEST_CASE("SegmentWhoseBaseDisagreesWithItsNameIsCorrupt") {
    test::TempDir t;
    const std::string path = queue_with_records(t, 3);
    const std::string renamed = t.queue() + "/" + files::segment_name(5);
    std::filesystem::rename(path, renamed);
    auto s = open_segment(t.queue(), 5);
    REQUIRE_FALSE(s.ok());
    CHECK(s.status().code() == errc::corrupt);
    CHECK(s.status().message().find(renamed) != std::string::npos);
}

TEST_CASE("SegmentShorterThanTheMinimumIsCorruptNotACrash") {
    test::TempDir t;
    const std::string path = queue_with_records(t, 3);
    std::filesystem::resize_file(path, 100);
    auto s = open_segment(t.queue(), 0);
    REQUIRE_FALSE(s.ok());
    CHECK(s.status().code() == errc::corrupt);
    CHECK(s.status().message().find(path) != std::string::npos);
}

TEST_CASE("MissingSegmentIsNotFound") {
    test::TempDir t;
    queue_with_records(t, 1);
    auto s = open_segment(t.queue(), 77);
    REQUIRE_FALSE(s.ok());
    CHECK(s.status().code() == errc::not_found);
}

TEST_CASE("IndexFloorLandsAtOrBeforeTheTargetWithinOneStride") {
    test::TempDir t;
    const int n = 8000;  // ~190 KiB of records in one 1 MiB segment (4 KiB stride)
    queue_with_records(t, n, 1 << 20);
    auto s = open_segment(t.queue(), 0);
    REQUIRE(s.ok());
    REQUIRE(files::list_segments(t.queue())->size() == 1);
    const uint64_t per_stride = (uint64_t{1} << s->header()->index_stride_log2) / 16 + 1;
    for (uint64_t target = 0; target < n; target += 37) {
        CAPTURE(target);
        auto [off, seq] = s->index_floor(target);
        CHECK(seq <= target);
        CHECK(target - seq <= per_stride);
        const RecView at = s->read(off);  // the floor names a real record boundary...
        REQUIRE(at.kind == RecKind::data);
        CHECK(std::string_view(reinterpret_cast<const char*>(at.payload), at.length) ==
              "rec " + std::to_string(seq));  // ...holding record `seq`
        const auto e = s->scan(off, seq, target);
        REQUIRE(e.seq == target);
        const RecView r = s->read(e.off);
        REQUIRE(r.kind == RecKind::data);
        CHECK(std::string_view(reinterpret_cast<const char*>(r.payload), r.length) ==
              "rec " + std::to_string(target));
    }
    CHECK(s->index_floor(0) == std::make_pair(s->data_begin(), uint64_t{0}));
}
