// bench_layout: what the record layout is worth, against what fresh pages cost — the
// measurement behind the format decision of issue 10 (docs/DESIGN.md decision log).
//
// Every line of a generated input (7-byte lines as `seq` prints them, and 100-byte lines)
// is encoded as a record into a MAP_SHARED file mapping, in three layouts:
//   v1     16-byte header (state, length, timestamp), 8-byte alignment — today's format
//   h8     8-byte header (length+state in one published word, a 32-bit time delta), align 8
//   h4     4-byte header (length+state), 4-byte alignment, timestamps per batch — Chronicle
//          Queue's layout
// into pages already populated (the floor: what the layout costs) and into a fresh
// fallocate'd file (what a writer storing through the mapping pays: the kernel zeroes each
// page at its first write fault on ext4). Best of --reps runs.
//
// Usage: bench_layout --dir DIR [--lines7 N] [--lines100 N] [--reps 3]
// Figures: layout.<input>.<layout>.<populated|fresh>.ns_per_line, .bytes_per_line
#include <fcntl.h>
#include <sys/mman.h>

#include <cstring>

#include "bench_common.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

using namespace bench;

namespace {

struct Layout {
    const char* name;
    size_t hdr;
    size_t align;
};

std::string make_input(bool short_lines, long n) {
    std::string in;
    if (short_lines) {
        for (long i = 1; i <= n; ++i) in += std::to_string(i) + "\n";
    } else {
        uint64_t x = 88172645463325252ull;
        for (long i = 0; i < n; ++i) {
            for (int k = 0; k < 100; ++k) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                in += static_cast<char>('A' + x % 58);
            }
            in += '\n';
        }
    }
    return in;
}

// Returns the best ns per line; `out_bytes` gets the bytes written.
double encode(const std::string& dir, const std::string& in, size_t lines, const Layout& L,
              bool fresh, int reps, size_t& out_bytes) {
    const size_t cap = (in.size() / lines + L.hdr + 8) * lines + (1 << 20);
    const std::string path = dir + "/layout.bin";
    double best = 1e18;
    for (int rep = 0; rep < reps; ++rep) {
        ::unlink(path.c_str());
        const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) die("open");
        if (::fallocate(fd, 0, 0, static_cast<off_t>(cap)) != 0) die("fallocate");
        auto* m =
            static_cast<char*>(::mmap(nullptr, cap, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
        if (m == MAP_FAILED) die("mmap");
        if (!fresh && ::madvise(m, cap, MADV_POPULATE_WRITE) != 0) die("madvise");
        const uint64_t t0 = now_ns();
        size_t off = 0;
        const char* p = in.data();
        const char* end = p + in.size();
        const uint64_t ts = t0;
        while (p < end) {
            const char* nl = static_cast<const char*>(std::memchr(p, '\n', size_t(end - p)));
            const auto len = static_cast<uint32_t>(nl - p);
            const size_t rec = (L.hdr + len + L.align - 1) & ~(L.align - 1);
            std::memcpy(m + off + L.hdr, p, len);
            auto* word = reinterpret_cast<uint32_t*>(m + off);
            if (L.hdr == 16) {
                std::memcpy(m + off + 4, &len, 4);
                std::memcpy(m + off + 8, &ts, 8);
                __atomic_store_n(word, 1u, __ATOMIC_RELEASE);
            } else if (L.hdr == 8) {
                const uint32_t delta = 0;
                std::memcpy(m + off + 4, &delta, 4);
                __atomic_store_n(word, len | 0x80000000u, __ATOMIC_RELEASE);
            } else {
                __atomic_store_n(word, len | 0x80000000u, __ATOMIC_RELEASE);
            }
            off += rec;
            p = nl + 1;
        }
        const double t = double(now_ns() - t0);
        best = std::min(best, t);
        out_bytes = off;
        ::munmap(m, cap);
        ::close(fd);
    }
    ::unlink(path.c_str());
    return best / double(lines);
}

}  // namespace

int main(int argc, char** argv) {
    const std::string dir = arg(argc, argv, "--dir", "");
    if (dir.empty()) fail("usage: bench_layout --dir DIR [--lines7 N] [--lines100 N] [--reps 3]");
    const int reps = int(argl(argc, argv, "--reps", 3));
    const Layout layouts[] = {{"v1", 16, 8}, {"h8", 8, 8}, {"h4", 4, 4}};
    struct Input {
        const char* name;
        bool short_lines;
        long n;
    };
    const Input inputs[] = {{"lines7", true, argl(argc, argv, "--lines7", 10000000)},
                            {"lines100", false, argl(argc, argv, "--lines100", 1000000)}};
    for (const Input& I : inputs) {
        const std::string in = make_input(I.short_lines, I.n);
        emit(std::string("layout.") + I.name + ".input_bytes_per_line",
             double(in.size()) / double(I.n), "B");
        double v1_fresh = 0, v1_pop = 0;
        for (const Layout& L : layouts) {
            for (bool fresh : {false, true}) {
                size_t bytes = 0;
                const double ns = encode(dir, in, size_t(I.n), L, fresh, reps, bytes);
                const std::string name = std::string("layout.") + I.name + "." + L.name + "." +
                                         (fresh ? "fresh" : "populated");
                emit(name + ".ns_per_line", ns, "ns");
                if (!fresh)
                    emit(std::string("layout.") + I.name + "." + L.name + ".bytes_per_line",
                         double(bytes) / double(I.n), "B");
                if (L.hdr == 16) (fresh ? v1_fresh : v1_pop) = ns;
                if (L.hdr == 4) {
                    emit_ratio(std::string("layout.") + I.name + ".h4_vs_v1." +
                                   (fresh ? "fresh" : "populated"),
                               ns, fresh ? v1_fresh : v1_pop);
                }
            }
        }
        emit_ratio(std::string("layout.") + I.name + ".v1.fresh_vs_populated", v1_fresh, v1_pop);
    }
}
