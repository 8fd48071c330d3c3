// chronicle tools — record framings shared by chronicle-append (input) and
// chronicle-tail (output), so that any payload survives a round trip:
//   lines  payload + '\n'          (payloads containing '\n' do not survive)
//   nul    payload + '\0'          (payloads containing NUL do not survive)
//   len32  4-byte big-endian length + payload (kcat's %R; lossless)
//   raw    payload bytes only      (append: the whole input is one record)
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>
#include <utility>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace chronicle::cli {

enum class Framing { lines, nul, len32, raw };

// The framings by name, in the order --help and messages list them.
inline constexpr std::pair<std::string_view, Framing> kFramings[] = {{"lines", Framing::lines},
                                                                     {"nul", Framing::nul},
                                                                     {"len32", Framing::len32},
                                                                     {"raw", Framing::raw}};

// The framing called `name`; nullopt for any other name. The tools' --framing and --format
// options check their value with cli::framing_check() (cli.h): a bad name is a usage error.
inline std::optional<Framing> parse_framing(std::string_view name) noexcept {
    for (const auto& [n, f] : kFramings) {
        if (n == name) return f;
    }
    return std::nullopt;
}

inline uint32_t load_be32(const char* p) {
    const auto* u = reinterpret_cast<const unsigned char*>(p);
    return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | uint32_t{u[3]};
}

inline void store_be32(char* p, uint32_t v) {
    p[0] = static_cast<char>(v >> 24);
    p[1] = static_cast<char>(v >> 16);
    p[2] = static_cast<char>(v >> 8);
    p[3] = static_cast<char>(v);
}

// Calls f(begin, length) for every record in [p, end) that ends with `delim`, in order,
// until f returns false. Returns the start of the unterminated rest (or where f stopped).
// Short lines are the common case; a memchr per line costs more than the line, so 64-byte
// blocks are compared at once and the delimiters taken from the bit mask.
template <class F>
const char* split_records(const char* p, const char* end, char delim, F&& f) {
    const char* rec = p;
#if defined(__SSE2__)
    const __m128i d = _mm_set1_epi8(delim);
    while (end - p >= 64) {
        auto mask16 = [&](int k) {
            const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * k));
            return static_cast<uint64_t>(
                static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, d))));
        };
        uint64_t m = mask16(0) | (mask16(1) << 16) | (mask16(2) << 32) | (mask16(3) << 48);
        while (m != 0) {
            const char* hit = p + __builtin_ctzll(m);
            if (!f(rec, static_cast<size_t>(hit - rec))) return rec;
            rec = hit + 1;
            m &= m - 1;
        }
        p += 64;
    }
#endif
    while (p < end) {
        const char* hit =
            static_cast<const char*>(std::memchr(p, delim, static_cast<size_t>(end - p)));
        if (hit == nullptr) break;
        if (!f(rec, static_cast<size_t>(hit - rec))) return rec;
        rec = hit + 1;
        p = rec;
    }
    return rec;
}

}  // namespace chronicle::cli
