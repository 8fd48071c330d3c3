// chronicle fuzzing — segment scanning and writer start-up recovery on damaged segments.
//
// Each input builds a queue directory (16 KiB segments) from one of eight valid layouts —
// a sealed segment and its successor, a single segment, a committed batch whose next
// segment is still "preparing", a roll cut short before its seal, a fresh queue, a seal
// naming a missing segment, an uncommitted batch's segment after the tail, a queue that
// does not start at 0 — with packs among the records (queue_image.h) — and damages its
// segment files with the rest of the input. Then it runs what readers do (a scan from the
// start, seeks by sequence, count and time, head, first, chronicle-readers' inspection)
// and what a starting writer does (recovery), appends, and reads again.
//
// Input: [ctrl][aux][size][damage...]
//   ctrl bits 0-2  layout
//   ctrl bit 3     leave a stale .next.seg.tmp (recovery removes it)
//   ctrl bit 4     the first segment file gets 4096 * (size % 9) bytes instead of 16 KiB
//   ctrl bit 5     after recovery, append enough to roll into a new segment
//   ctrl bit 6     keep a reader open across recovery and appends
//   ctrl bit 7     damage mode: 0 = XOR the bytes onto the header windows ([0,128) of each
//                  segment) and then the data areas, 1 = a patch list
//                  [u16 where (bit 15: second segment)][u8 n][n bytes]...
//   aux            positions for the seeks
//
// Oracles, besides "no crash, no hang, no sanitizer report":
//   * recovery never destroys committed data: the records a reader saw before Writer::open
//     are still there, unchanged, when Writer::open succeeded;
//   * a record the writer appended (and said committed) is read back by a reader scanning
//     from the start, with its sequence number and payload, unless that scan stops at
//     damage first;
//   * a record found by a seek (-n, --from-seq, --from-time), within the sequence range
//     the scan from the start covered, is the record that scan found under that number
//     (the sparse index is not trusted blindly).
#include <algorithm>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "chronicle/admin.h"
#include "chronicle/reader.h"
#include "chronicle/writer.h"
#include "fuzz_common.h"
#include "queue_image.h"
#include "recovery.h"

namespace {

using fuzz::build_segment;
using fuzz::SegImage;

constexpr uint64_t kAll = UINT64_MAX;
// No queue built here can hold more records than this (a record in a pack takes at least
// one byte; a few segments).
constexpr uint64_t kMaxRecords = 8 * fuzz::kSegSize;

std::vector<SegImage> make_layout(unsigned v) {
    namespace fmt = chronicle::format;
    std::vector<SegImage> s;
    switch (v) {
        case 0:  // a sealed segment and its successor
        case 7:  // the same, not starting at 0
            s.push_back(build_segment(v == 7 ? 1000 : 0, kAll, true, fmt::kSegmentLive));
            s.push_back(build_segment(s[0].next_seq, 5, false, fmt::kSegmentLive));
            break;
        case 1:  // one segment
            s.push_back(build_segment(0, 20, false, fmt::kSegmentLive));
            break;
        case 2:  // a committed batch across a roll: the next segment is still preparing
            s.push_back(build_segment(0, kAll, true, fmt::kSegmentLive));
            s.push_back(build_segment(s[0].next_seq, 5, false, fmt::kSegmentPreparing));
            break;
        case 3:  // a roll cut short: next segment renamed into place, no seal yet
            s.push_back(build_segment(0, kAll, false, fmt::kSegmentLive));
            s.push_back(build_segment(s[0].next_seq, 0, false, fmt::kSegmentLive));
            break;
        case 4:  // a fresh queue
            s.push_back(build_segment(0, 0, false, fmt::kSegmentLive));
            break;
        case 5:  // a seal naming a segment that is missing
            s.push_back(build_segment(0, kAll, true, fmt::kSegmentLive));
            break;
        default:  // 6: an uncommitted batch's segment after the tail
            s.push_back(build_segment(0, 20, false, fmt::kSegmentLive));
            s.push_back(build_segment(20, 5, false, fmt::kSegmentPreparing));
            break;
    }
    return s;
}

const std::vector<SegImage>& layout(unsigned v) {
    static const std::vector<std::vector<SegImage>> all = [] {
        std::vector<std::vector<SegImage>> a;
        for (unsigned i = 0; i < 8; ++i) a.push_back(make_layout(i));
        return a;
    }();
    return all[v % 8];
}

uint64_t hash(std::string_view s) {
    uint64_t h = 1469598103934665603ull;
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
    return h;
}

struct Seen {
    uint64_t seq;
    uint64_t hash;
    bool operator==(const Seen&) const = default;
};

struct Scan {
    std::vector<Seen> records;
    bool damaged = false;  // open() or next() failed (damage) before the end
};

// Reads everything from the start. Every payload byte is read, so that a record that
// points outside its mapping is a fault here.
Scan scan_all(const std::string& q) {
    Scan s;
    auto r = chronicle::Reader::open(q);
    if (!r) {
        s.damaged = true;  // refused: damage it reports
        return s;
    }
    for (;;) {
        auto n = r.value()->next();
        if (!n) {
            s.damaged = true;
            break;
        }
        if (!n.value()) break;
        s.records.push_back({n.value()->seq, hash(n.value()->text())});
        if (s.records.size() > kMaxRecords) {
            fuzz::fail("a scan returned more records than the queue can hold");
        }
    }
    (void)r.value()->head();
    (void)r.value()->first();
    return s;
}

const Seen* find(const Scan& s, uint64_t seq) {
    for (const auto& r : s.records) {
        if (r.seq == seq) return &r;
    }
    return nullptr;
}

// Seeks as chronicle-tail does (-n, --from-seq, --from-time, -f's end) and reads a few.
void seeks(const std::string& q, uint8_t aux, const Scan& full) {
    const chronicle::Position where[] = {
        chronicle::Position::last(aux % 40),
        chronicle::Position::at_seq(uint64_t{aux} * 7),
        chronicle::Position::at_seq(1000 + uint64_t{aux}),
        chronicle::Position::at_time(fuzz::kTs0 + uint64_t{aux} * 5000),
        chronicle::Position::end(),
    };
    for (const auto& pos : where) {
        chronicle::ReaderOptions o;
        o.start = pos;
        auto r = chronicle::Reader::open(q, o);
        if (!r) continue;
        for (int i = 0; i < 4; ++i) {
            auto n = r.value()->next();
            if (!n || !n.value()) break;
            const Seen got{n.value()->seq, hash(n.value()->text())};
            // Within the range the scan covered, a seek must find what the scan found.
            if (!full.damaged && !full.records.empty() && got.seq >= full.records.front().seq &&
                got.seq <= full.records.back().seq) {
                const Seen* want = find(full, got.seq);
                if (want == nullptr || !(*want == got)) {
                    fuzz::fail("a seek returned record " + std::to_string(got.seq) +
                               (want == nullptr ? " that the scan from the start does not have"
                                                : " with another payload than the scan's"));
                }
            }
        }
        (void)r.value()->seek(chronicle::Position::start());
        (void)r.value()->next();
    }
}

void build(const std::string& q, const uint8_t* data, size_t size) {
    fuzz::Input in(data, size);
    const uint8_t ctrl = in.u8();
    (void)in.u8();  // aux, read by the caller
    const uint8_t size_byte = in.u8();
    std::vector<SegImage> segs = layout(ctrl & 7);
    if ((ctrl & 0x80) == 0) {
        // XOR: all-zero damage leaves the layout valid.
        struct Window {
            size_t seg;
            uint64_t off, len;
        };
        const uint64_t hdr = fuzz::geometry().header_size;
        const Window windows[] = {{0, 0, 128},
                                  {1, 0, 128},
                                  {0, hdr, fuzz::kSegSize - hdr},
                                  {1, hdr, fuzz::kSegSize - hdr}};
        for (const auto& w : windows) {
            for (uint64_t i = 0; i < w.len && in.left() > 0; ++i) {
                const uint8_t b = in.u8();
                if (w.seg < segs.size()) segs[w.seg].bytes[w.off + i] ^= b;
            }
        }
    } else {
        for (int k = 0; k < 64 && in.left() >= 3; ++k) {
            const uint16_t where = in.u16();
            const uint8_t n = in.u8();
            const std::string_view bytes = in.take(n);
            const size_t seg = where >> 15;
            const uint64_t off = where & 0x3fff;
            if (seg >= segs.size()) continue;
            const size_t len = std::min<size_t>(bytes.size(), fuzz::kSegSize - off);
            std::memcpy(segs[seg].bytes.data() + off, bytes.data(), len);
        }
    }
    for (size_t i = 0; i < segs.size(); ++i) {
        std::vector<uint8_t>& b = segs[i].bytes;
        if (i == 0 && (ctrl & 0x10) != 0) b.resize(4096u * (size_byte % 9), 0);
        fuzz::write_file(q + "/" + chronicle::files::segment_name(segs[i].base), b.data(),
                         b.size());
    }
    if ((ctrl & 0x08) != 0) {
        const auto& last = segs.back().bytes;
        fuzz::write_file(q + "/" + std::string(chronicle::files::kNextSegmentTmp), last.data(),
                         last.size());
    }
}

chronicle::WriterOptions writer_options() {
    chronicle::WriterOptions o;
    o.create = false;
    o.segment_size = fuzz::kSegSize;
    o.pretouch = false;
    return o;
}

// The images must be what the library reads: a layout read back gives its records.
void check_images() {
    const std::string q = fuzz::fresh_queue_dir();
    const auto& segs = layout(0);
    for (const auto& s : segs) fuzz::write_segment(q, s);
    const Scan s = scan_all(q);
    if (s.damaged || s.records.size() != segs.back().next_seq) {
        fuzz::fail("the valid layout does not read back (" + std::to_string(s.records.size()) +
                   " records); tests/fuzz/queue_image.h no longer matches the format");
    }
    for (const auto& r : s.records) {
        if (r.hash != hash(fuzz::payload_for(r.seq, fuzz::length_for(r.seq)))) {
            fuzz::fail("record " + std::to_string(r.seq) + " of the valid layout differs");
        }
    }
    auto w = chronicle::Writer::open(q, writer_options());
    if (!w) fuzz::fail("Writer::open on the valid layout: " + w.status().message());
    if (w.value()->next_seq() != segs.back().next_seq) {
        fuzz::fail("Writer::open on the valid layout continues at " +
                   std::to_string(w.value()->next_seq()));
    }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    check_images();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string q = fuzz::fresh_queue_dir();
    build(q, data, size);
    fuzz::keep_copy(q, "before");
    const uint8_t ctrl = size > 0 ? data[0] : 0;
    const uint8_t aux = size > 1 ? data[1] : 0;

    // Readers first: they must cope with the damage as it is.
    const Scan before = scan_all(q);
    seeks(q, aux, before);
    (void)chronicle::inspect_queue(q);
    (void)chronicle::inspect_readers(q);

    std::unique_ptr<chronicle::Reader> across;
    if ((ctrl & 0x40) != 0) {
        auto r = chronicle::Reader::open(q);
        if (r) {
            across = std::move(r.value());
            (void)across->next();
        }
    }

    // Then a writer starts: recovery.
    std::vector<std::pair<uint64_t, std::string>> appended;
    {
        auto w = chronicle::Writer::open(q, writer_options());
        if (w) {
            const Scan mid = scan_all(q);
            if (mid.records.size() < before.records.size() ||
                !std::equal(before.records.begin(), before.records.end(), mid.records.begin())) {
                fuzz::fail("recovery changed or removed committed records (" +
                           std::to_string(before.records.size()) + " before, " +
                           std::to_string(mid.records.size()) + " after)");
            }
            const int n = (ctrl & 0x20) != 0 ? 4 : 1;
            for (int i = 0; i < n; ++i) {
                std::string p = "fuzz-append-" + std::to_string(i);
                if (n > 1) p.resize(5000, static_cast<char>('A' + i));
                auto seq = w.value()->append(p);
                if (!seq) break;
                appended.emplace_back(seq.value(), std::move(p));
            }
            // Lines through append_delimited(): packed, after the batch's first.
            std::string block;
            for (int i = 0; i < 12; ++i) block += "fuzz-line-" + std::to_string(i) + "\n";
            const uint64_t at = w.value()->next_seq();
            const auto r = w.value()->append_delimited(
                std::as_bytes(std::span(block.data(), block.size())), std::byte{'\n'});
            for (uint64_t k = 0; k < r.records; ++k) {
                appended.emplace_back(at + k, "fuzz-line-" + std::to_string(k));
            }
        }
    }
    if (across) {
        for (uint64_t i = 0; i < kMaxRecords; ++i) {
            auto n = across->next();
            if (!n || !n.value()) break;
        }
        across.reset();
    }

    // What the writer said it committed is there.
    fuzz::keep_copy(q, "after");
    const Scan after = scan_all(q);
    for (const auto& [seq, payload] : appended) {
        const Seen* got = find(after, seq);
        if (got == nullptr) {
            if (after.damaged) continue;  // the scan stopped at damage before it
            fuzz::fail("record " + std::to_string(seq) +
                       " was appended but a scan from the start does not find it");
        }
        if (got->hash != hash(payload)) {
            fuzz::fail("record " + std::to_string(seq) + " reads back with another payload");
        }
    }
    seeks(q, aux, after);
    (void)chronicle::inspect_queue(q);
    return 0;
}
