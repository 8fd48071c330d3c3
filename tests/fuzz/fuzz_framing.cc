// chronicle fuzzing — the record framings of tools/framing.h (chronicle-append's input,
// chronicle-tail's output).
//
// Input: [ctrl][bytes...]
//   ctrl bit 0     delimiter: 0 '\n' (lines), 1 '\0' (nul)
//   ctrl bits 1-7  k: the callback stops the split at the k-th record (0: never)
//
// Oracles: split_records (SSE2 blocks of 64 bytes, then memchr) finds exactly the records
// a byte-by-byte split finds, at every alignment, stops where the callback says and returns
// the start of the unterminated rest; len32 frames decode and re-encode to the same bytes
// (load_be32 / store_be32); parse_framing accepts exactly the four names.
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "fuzz_common.h"
#include "tools/framing.h"

namespace {

using Span = std::pair<size_t, size_t>;  // offset, length

// The reference: records ending with `delim`, in order; `rest` = start of what is left.
std::vector<Span> reference(const char* p, size_t n, char delim, size_t stop, size_t& rest) {
    std::vector<Span> out;
    size_t start = 0;
    for (size_t i = 0; i < n; ++i) {
        if (p[i] != delim) continue;
        out.emplace_back(start, i - start);
        if (out.size() == stop) {
            rest = start;  // the callback said stop: the rest starts at that record
            return out;
        }
        start = i + 1;
    }
    rest = start;
    return out;
}

void check_split(const std::string& bytes, size_t shift, char delim, size_t stop) {
    // A copy `shift` bytes into an allocation that ends where it ends: the SIMD loads see
    // every alignment, and ASan sees any read past the end.
    const size_t n = bytes.size();
    std::vector<char> mem(shift + n);
    if (n > 0) std::memcpy(mem.data() + shift, bytes.data(), n);
    const char* p = mem.data() + shift;
    std::vector<Span> got;
    const char* rest =
        chronicle::cli::split_records(p, p + n, delim, [&](const char* rec, size_t len) {
            got.emplace_back(static_cast<size_t>(rec - p), len);
            return got.size() != stop;
        });
    size_t want_rest = 0;
    const std::vector<Span> want = reference(p, n, delim, stop, want_rest);
    if (got != want) {
        fuzz::fail("split_records found " + std::to_string(got.size()) + " records, expected " +
                   std::to_string(want.size()) + " (shift " + std::to_string(shift) + ")");
    }
    if (static_cast<size_t>(rest - p) != want_rest) {
        fuzz::fail("split_records returned offset " + std::to_string(rest - p) + ", expected " +
                   std::to_string(want_rest));
    }
}

void check_len32(const std::string& in) {
    using chronicle::cli::load_be32;
    using chronicle::cli::store_be32;
    // Decode as chronicle-append does, then encode as chronicle-tail does.
    const char* p = in.data();
    const char* end = p + in.size();
    std::string again;
    while (end - p >= 4) {
        const uint32_t len = load_be32(p);
        if (static_cast<size_t>(end - p - 4) < len) break;
        char hdr[4];
        store_be32(hdr, len);
        again.append(hdr, 4);
        again.append(p + 4, len);
        p += 4 + len;
    }
    if (again != in.substr(0, static_cast<size_t>(p - in.data()))) {
        fuzz::fail("len32 frames do not re-encode to the same bytes");
    }
    if (in.size() >= 4) {
        const uint32_t v = load_be32(in.data());
        char b[4];
        store_be32(b, v);
        if (std::memcmp(b, in.data(), 4) != 0) fuzz::fail("store_be32(load_be32(x)) != x");
        const auto* u = reinterpret_cast<const unsigned char*>(in.data());
        if (v != ((uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | u[3])) {
            fuzz::fail("load_be32 is not big-endian");
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz::Input in(data, size);
    const uint8_t ctrl = in.u8();
    const std::string bytes(in.rest());
    const char delim = (ctrl & 1) != 0 ? '\0' : '\n';
    const size_t stop = ctrl >> 1;

    for (size_t shift : {0, 1, 7, 13}) check_split(bytes, shift, delim, stop);
    check_len32(bytes);

    const std::string name(bytes.substr(0, 16));
    const bool known = name == "lines" || name == "nul" || name == "len32" || name == "raw";
    if (chronicle::cli::parse_framing(name).has_value() != known) {
        fuzz::fail("parse_framing " + std::string(known ? "refused" : "accepted") + " '" + name +
                   "'");
    }
    return 0;
}
