// chronicle fuzzing — valid queue files built byte by byte, deterministically (fixed
// timestamps, fixed payloads), so that a fuzz input that crashes reproduces on every run.
// The layout follows docs/DESIGN.md §2.2 (segments) and §2.4 (cursors); check_images()
// reads the images back through the library and aborts if the two ever disagree.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "format.h"
#include "fuzz_common.h"
#include "segment.h"

namespace fuzz {

namespace fmt = chronicle::format;

inline constexpr uint64_t kSegSize = 16 * 1024;              // the smallest segment size
inline constexpr uint64_t kTs0 = 1'790'000'000'000'000'000;  // timestamps of the images

inline void put32(std::vector<uint8_t>& b, uint64_t off, uint32_t v) {
    std::memcpy(b.data() + off, &v, sizeof v);
}
inline void put64(std::vector<uint8_t>& b, uint64_t off, uint64_t v) {
    std::memcpy(b.data() + off, &v, sizeof v);
}

inline const chronicle::SegmentGeometry& geometry() {
    static const chronicle::SegmentGeometry g = [] {
        auto r = chronicle::SegmentGeometry::for_size(kSegSize);
        if (!r) fail("SegmentGeometry::for_size(16 KiB): " + r.status().message());
        return r.value();
    }();
    return g;
}

// The payload of record `seq` in every image: `len` bytes derived from seq.
inline std::string payload_for(uint64_t seq, uint32_t len) {
    std::string p(len, '\0');
    for (uint32_t i = 0; i < len; ++i) p[i] = static_cast<char>('a' + (seq + i) % 26);
    return p;
}

// Payload lengths cycle through these (short, aligned, unaligned, long).
inline uint32_t length_for(uint64_t seq) {
    static constexpr uint32_t kLens[] = {0, 1, 7, 8, 9, 31, 100, 300, 1000, 2};
    return kLens[seq % (sizeof kLens / sizeof kLens[0])];
}

struct SegImage {
    uint64_t base = 0;
    uint64_t end_off = 0;   // offset after the last record (or of the seal)
    uint64_t next_seq = 0;  // one past the last record
    std::vector<uint8_t> bytes;
};

// A segment starting at `base` with `count` records (UINT64_MAX: as many as fit), sealed
// if `seal`, in state `seg_state` (fmt::kSegmentLive / fmt::kSegmentPreparing).
inline SegImage build_segment(uint64_t base, uint64_t count, bool seal, uint32_t seg_state) {
    const auto& g = geometry();
    SegImage s;
    s.base = base;
    s.bytes.assign(kSegSize, 0);
    put64(s.bytes, 0, fmt::kSegmentMagic);
    put32(s.bytes, 8, fmt::kSegmentVersion);
    put32(s.bytes, 12, g.header_size);
    put64(s.bytes, 16, kSegSize);
    put64(s.bytes, 24, base);
    put64(s.bytes, 32, kTs0 - 1000);
    put32(s.bytes, 40, g.stride_log2);
    put32(s.bytes, 44, g.slots);
    put32(s.bytes, 48, seg_state);
    uint64_t off = g.header_size;
    uint64_t seq = base;
    uint32_t slot = 0;
    uint64_t ts = kTs0 + base * 1000;
    for (uint64_t i = 0; i < count;) {
        // Records 10..19, 30..39, ... of each segment (after its first) go into packs of up
        // to ten (docs/DESIGN.md §2.2 "Packs"): count, then varint length + payload each.
        const bool packed = seq != base && (seq / 10) % 2 == 1;
        const uint64_t n = packed ? std::min<uint64_t>(10 - seq % 10, count - i) : 1;
        std::string body;
        if (packed) {
            const auto c = static_cast<uint32_t>(n);
            body.append(reinterpret_cast<const char*>(&c), sizeof c);
            for (uint64_t k = seq; k < seq + n; ++k) {
                for (uint32_t v = length_for(k);; v >>= 7) {  // LEB128
                    body.push_back(static_cast<char>((v & 0x7f) | (v >= 0x80 ? 0x80 : 0)));
                    if (v < 0x80) break;
                }
                body += payload_for(k, length_for(k));
            }
        } else {
            body = payload_for(seq, length_for(seq));
        }
        const uint64_t span = fmt::record_span(body.size());
        // The writer's rule: a record fits if the seal still fits after it.
        if (off + span + fmt::kRecordHeaderSize > kSegSize) break;
        while (slot < g.slots && g.header_size + (uint64_t{slot} << g.stride_log2) <= off) {
            put64(s.bytes, fmt::kIndexOffset + 8ull * slot, fmt::pack_index(seq - base, off));
            ++slot;
        }
        ts = kTs0 + seq * 1000;
        put32(s.bytes, off, packed ? fmt::kStatePack : fmt::kStateData);
        put32(s.bytes, off + 4, static_cast<uint32_t>(body.size()));
        put64(s.bytes, off + 8, ts);
        std::memcpy(s.bytes.data() + off + fmt::kRecordHeaderSize, body.data(), body.size());
        off += span;
        seq += n;
        i += n;
    }
    s.end_off = off;
    s.next_seq = seq;
    if (seal) {
        put32(s.bytes, off, fmt::kStateSeal);
        put32(s.bytes, off + 4, 0);
        put64(s.bytes, off + 8, ts);
    }
    // The writer raises written_hw in 1 MiB steps, capped at the segment size.
    put64(s.bytes, 56, (seq != base || seal) ? kSegSize : 0);
    return s;
}

inline void write_segment(const std::string& dir, const SegImage& s) {
    write_file(dir + "/" + chronicle::files::segment_name(s.base), s.bytes.data(), s.bytes.size());
}

// A valid cursor page (docs/DESIGN.md §2.4) at position `next_seq`.
inline std::vector<uint8_t> build_cursor(uint64_t next_seq) {
    std::vector<uint8_t> c(fmt::kCursorFileSize, 0);
    put64(c, 0, fmt::kCursorMagic);
    put32(c, 8, fmt::kCursorVersion);
    put32(c, 12, static_cast<uint32_t>(fmt::kCursorFileSize));
    put64(c, 16, kTs0 - 500);
    put64(c, 24, next_seq);
    put64(c, 32, kTs0 - 400);
    return c;
}

}  // namespace fuzz
