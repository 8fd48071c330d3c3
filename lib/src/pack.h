// chronicle — packs: several small records under one record header (segment version 2).
//
// A pack is a record whose state word is format::kStatePack. Its `length` bytes (the body)
// are a 4-byte count (at least 1), then `count` times: the record's length as a LEB128
// varint (1 to 5 bytes), then its payload. The body ends exactly after the last payload;
// zero padding to 8 bytes follows, as after any record. Every record of a pack takes one
// sequence number, in order, and has the pack's timestamp.
//
// Why: a 7-byte line as a record of its own occupies 24 bytes (16-byte header, 8-byte
// alignment); in a pack it occupies 8 — about what `cat` writes for it, and the page-cache
// bytes per line are what bounds ingestion (docs/DESIGN.md, decision log 2026-11-30).
//
// A pack is committed like any record — by one release store of its state word, or of its
// batch's first state word — so its records appear together, and kill -9 leaves all of it
// or none. The sparse index names packs, never a record inside one: seeking to a sequence
// inside a pack walks the pack's varints (a pack is at most kMaxBody bytes).
//
// Readers never trust a pack blindly: valid() checks that the varints and payloads fill the
// body exactly before any record of it is handed over; Iter checks every step again.
#pragma once

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace chronicle::pack {

inline constexpr uint64_t kCountBytes = 4;
// The writer closes a pack before its body passes this (header included, a pack spans at
// most one 4 KiB page's worth, so a seek inside one walks at most that far).
inline constexpr uint64_t kMaxBody = 4096 - 16;
// Records longer than this are written as records of their own: their header is a small
// part of them, and a pack would only make them unaligned.
inline constexpr uint64_t kMaxPacked = 1024;

// Longest varint of a 32-bit length.
inline constexpr uint64_t kMaxVarint = 5;

inline std::byte* put_varint(std::byte* p, uint64_t v) noexcept {
    while (v >= 0x80) {
        *p++ = std::byte(static_cast<uint8_t>(v | 0x80));
        v >>= 7;
    }
    *p++ = std::byte(static_cast<uint8_t>(v));
    return p;
}

// Records shorter than this have a one-byte length: a run of them takes exactly the bytes
// of its delimited input (the length byte stands where the previous delimiter stood).
inline constexpr uint64_t kShortRecord = 0x80;

// A run of short records, encoded by encode_run().
struct Run {
    size_t bytes = 0;         // input bytes taken (records and their delimiters) = bytes encoded
    uint32_t records = 0;     // records taken
    size_t long_delim = 0;    // offset of the delimiter ending the first record not taken, if
    bool long_found = false;  // it is one of kShortRecord bytes or more (then it ends the run)
    size_t written = 0;       // dst[0, written) may have been written (>= bytes)
};

// Encodes the records shorter than kShortRecord at the start of [p, p + avail), each ended
// by `delim`, into dst: the input is copied shifted by one byte, and each record's length
// is stored where the delimiter before it landed (the first at dst[0]). One pass, 16 bytes
// per step where SSE2 is there. The run ends at the first longer record, or at the last
// delimiter within `avail` bytes. Writes only inside [dst, dst + avail), but past the run's
// end too (Run::written): the caller overwrites or zeroes those bytes.
inline Run encode_run(std::byte* dst, const std::byte* p, size_t avail, int delim) noexcept {
    Run r;
    size_t start = 0;  // input offset of the current record's first byte
    size_t i = 0;
    // One record ends at input offset `pos`: its length goes where its predecessor's
    // delimiter landed (dst[start], already copied); false when it is too long for a run.
    const auto take = [&](size_t pos) noexcept {
        const size_t len = pos - start;
        if (len >= kShortRecord) {
            r.long_delim = pos;
            r.long_found = true;
            return false;
        }
        dst[start] = std::byte(static_cast<uint8_t>(len));
        start = pos + 1;
        ++r.records;
        return true;
    };
#if defined(__SSE2__)
    const __m128i d = _mm_set1_epi8(static_cast<char>(delim));
    for (; i + 16 <= avail; i += 16) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
        // Input bytes [i, i + 16) land at dst[i + 1, i + 17): within avail once i + 16 < avail,
        // and the last input byte is never needed (a delimiter, or a record not taken).
        if (i + 16 < avail) {
            _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i + 1), v);
        } else {
            std::memcpy(dst + i + 1, p + i, 15);
        }
        auto mask = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, d)));
        while (mask != 0) {
            if (!take(i + static_cast<unsigned>(std::countr_zero(mask)))) {
                r.bytes = start;
                r.written = std::min(i + 17, avail);
                return r;
            }
            mask &= mask - 1;
        }
    }
#endif
    for (; i < avail; ++i) {
        if (i + 1 < avail) dst[i + 1] = p[i];
        if (std::to_integer<int>(p[i]) == delim && !take(i)) {
            r.bytes = start;
            r.written = std::min(i + 17, avail);
            return r;
        }
    }
    r.bytes = start;
    r.written = avail;
    return r;
}

// Reads a varint of at most kMaxVarint bytes ending before `end`; false if it does not.
inline bool get_varint(const std::byte*& p, const std::byte* end, uint64_t& v) noexcept {
    v = 0;
    for (unsigned shift = 0; shift < 7 * kMaxVarint; shift += 7) {
        if (p == end) return false;
        const auto b = std::to_integer<uint64_t>(*p++);
        v |= (b & 0x7f) << shift;
        if ((b & 0x80) == 0) return true;
    }
    return false;
}

inline uint32_t count_of(const std::byte* body) noexcept {
    uint32_t n;
    std::memcpy(&n, body, sizeof n);
    return n;
}

// The records of a pack body, in order.
class Iter {
  public:
    Iter() = default;
    Iter(const std::byte* body, uint64_t length) noexcept
        : p_(body + kCountBytes), end_(body + length), left_(count_of(body)) {}
    [[nodiscard]] uint32_t left() const noexcept { return left_; }
    // The next record; false if the body is damaged (a varint or payload runs past it).
    bool next(std::span<const std::byte>& out) noexcept {
        uint64_t len;
        if (left_ == 0 || !get_varint(p_, end_, len) || len > uint64_t(end_ - p_)) return false;
        out = {p_, static_cast<size_t>(len)};
        p_ += len;
        --left_;
        return true;
    }
    [[nodiscard]] bool at_end() const noexcept { return left_ == 0 && p_ == end_; }

  private:
    const std::byte* p_ = nullptr;
    const std::byte* end_ = nullptr;
    uint32_t left_ = 0;
};

// Whether a pack body of `length` bytes holds exactly its count of records.
inline bool valid(const std::byte* body, uint64_t length) noexcept {
    if (length < kCountBytes + 1) return false;
    Iter it(body, length);
    if (it.left() == 0) return false;
    std::span<const std::byte> r;
    while (it.left() > 0) {
        if (!it.next(r)) return false;
    }
    return it.at_end();
}

}  // namespace chronicle::pack
