// chronicle fuzzing — durable cursor files: readers/<name>.cursor.
//
// Each input becomes readers/fz.cursor of a valid queue (one 16 KiB segment, records
// 0..19); then a named reader resumes from it, chronicle-readers inspects, resets, collects
// and deletes it, and (ctrl bit 1) the reader registers as a follower and waits 0 s.
//
// Input: [ctrl][aux][bytes...]
//   ctrl bit 0  0: the bytes are XORed onto a valid cursor page (all zeros: valid);
//               1: the bytes are the whole file (any size)
//   ctrl bit 1  follow: prepare_wait(), fd(), wait(0)
//   ctrl bit 2  reset the reader to sequence aux (bit 3: as a dry run), then delete it
//   ctrl bit 4  the same bytes also as an anonymous follower's cursor (~anon.1.0.cursor)
//   The bytes are also checked as a reader name (validate_reader_name).
//
// Oracle, besides "no crash, no hang": a reader that opens resumes where the cursor says:
// with a stored position P inside the queue, its first record is P; never one before P.
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "chronicle/admin.h"
#include "chronicle/reader.h"
#include "cursor.h"
#include "fs.h"
#include "fuzz_common.h"
#include "queue_image.h"

namespace {

constexpr uint64_t kRecords = 20;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    namespace fmt = chronicle::format;
    static const fuzz::SegImage seg =
        fuzz::build_segment(0, kRecords, false, chronicle::format::kSegmentLive);
    fuzz::Input in(data, size);
    const uint8_t ctrl = in.u8();
    const uint8_t aux = in.u8();
    const std::string_view bytes = in.rest();
    (void)chronicle::validate_reader_name(bytes);

    std::vector<uint8_t> file;
    if ((ctrl & 1) == 0) {
        file = fuzz::build_cursor(aux % (kRecords + 2));
        for (size_t i = 0; i < bytes.size() && i < file.size(); ++i) {
            file[i] ^= static_cast<uint8_t>(bytes[i]);
        }
    } else {
        file.assign(bytes.begin(), bytes.end());
    }

    const std::string q = fuzz::fresh_queue_dir();
    const std::string readers = q + "/readers";
    fuzz::write_segment(q, seg);
    fuzz::make_dir(readers);
    fuzz::write_file(readers + "/fz.cursor", file.data(), file.size());
    if ((ctrl & 0x10) != 0) {
        fuzz::write_file(readers + "/~anon.1.0.cursor", file.data(), file.size());
    }

    // What a well-formed page would tell: the stored position.
    uint64_t stored = 0;
    bool well_formed = false;
    if (file.size() == fmt::kCursorFileSize) {
        uint64_t magic = 0;
        uint32_t version = 0;
        std::memcpy(&magic, file.data(), 8);
        std::memcpy(&version, file.data() + 8, 4);
        std::memcpy(&stored, file.data() + 24, 8);
        well_formed = magic == fmt::kCursorMagic && version == fmt::kCursorVersion;
    }

    // chronicle-readers' view, read-only.
    {
        auto rfd = chronicle::fs::open_dir(readers);
        if (rfd) (void)chronicle::inspect_cursor(rfd->get(), readers, "fz");
        (void)chronicle::list_reader_names(readers, true);
        (void)chronicle::inspect_readers(q);
        (void)chronicle::inspect_reader(q, "fz");
        (void)chronicle::inspect_reader(q, "~anon.1.0");
        (void)chronicle::gc_readers(q, 1, true);
    }

    // The named reader resumes.
    {
        chronicle::ReaderOptions o;
        o.name = "fz";
        o.create = false;
        auto r = chronicle::Reader::open(q, o);
        if (r) {
            auto& rd = *r.value();
            bool first = true;
            for (uint64_t i = 0; i <= kRecords; ++i) {
                auto n = rd.next();
                if (!n || !n.value()) break;
                const uint64_t s = n.value()->seq;
                if (well_formed && s < stored) {
                    fuzz::fail("a reader resuming at " + std::to_string(stored) + " returned " +
                               std::to_string(s));
                }
                if (well_formed && first && stored < kRecords && s != stored) {
                    fuzz::fail("a reader resuming at " + std::to_string(stored) + " started at " +
                               std::to_string(s));
                }
                first = false;
                if (i == 2) (void)rd.commit();
            }
            if ((ctrl & 2) != 0) {
                (void)rd.prepare_wait();
                (void)rd.fd();
                (void)rd.wait(std::chrono::nanoseconds(0));
            }
        }
    }

    if ((ctrl & 4) != 0) {
        (void)chronicle::reset_reader(q, "fz", chronicle::Position::at_seq(aux), (ctrl & 8) != 0);
        (void)chronicle::inspect_reader(q, "fz");
        (void)chronicle::delete_reader(q, "fz");
        (void)chronicle::delete_reader(q, "~anon.1.0");
    }
    return 0;
}
