// chronicle fuzzing — retention.json and the retention pass it drives.
//
// The input is the file's text, planted in a valid queue of four sealed segments and an
// open fifth (head 4 segments + 3 records), with a named reader "fz" at a position inside
// the second segment. Then: read_retention(), a dry run, a real pass, chronicle-queue's
// inspection, and a writer start.
//
// Oracles, besides "no crash, no hang": what read_retention() accepts keeps the documented
// rules (keep-free in one form, a percentage below 100) and survives write_retention() ->
// read_retention(); a pass never deletes the segment holding the head nor one the soft
// limits leave to "fz", deletes only what its dry run planned (a prefix of the segments,
// oldest first), and leaves a queue that reads from its first record to the same head
// without a gap; a file that is refused deletes nothing.
#include <string>

#include "chronicle/admin.h"
#include "chronicle/reader.h"
#include "chronicle/retention.h"
#include "chronicle/writer.h"
#include "fuzz_common.h"
#include "queue_files.h"
#include "queue_image.h"

namespace {

struct Image {
    std::vector<fuzz::SegImage> segs;
    uint64_t head = 0;
};

const Image& image() {
    static const Image img = [] {
        Image i;
        uint64_t base = 0;
        for (int k = 0; k < 4; ++k) {
            i.segs.push_back(
                fuzz::build_segment(base, UINT64_MAX, true, chronicle::format::kSegmentLive));
            base = i.segs.back().next_seq;
        }
        i.segs.push_back(fuzz::build_segment(base, 3, false, chronicle::format::kSegmentLive));
        i.head = i.segs.back().next_seq;
        return i;
    }();
    return img;
}

// Reads the queue from its first record; the sequence numbers must run to `head` without a
// gap. Returns the first sequence.
uint64_t check_contiguous(const std::string& q, uint64_t head) {
    auto r = chronicle::Reader::open(q);
    if (!r) fuzz::fail("queue does not open after a pass: " + r.status().message());
    auto first = r.value()->first();
    if (!first) fuzz::fail("first(): " + first.status().message());
    uint64_t want = first.value();
    for (;;) {
        auto n = r.value()->next();
        if (!n) fuzz::fail("read after a pass: " + n.status().message());
        if (!n.value()) break;
        if (n.value()->seq != want) fuzz::fail("gap at " + std::to_string(want));
        ++want;
    }
    if (want != head) fuzz::fail("head moved to " + std::to_string(want));
    return first.value();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const Image& img = image();
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const std::string q = fuzz::fresh_queue_dir();
    for (const auto& s : img.segs) fuzz::write_segment(q, s);
    fuzz::make_dir(q + "/readers");
    const uint64_t reader_at = img.segs[1].base + 1;
    const auto cursor = fuzz::build_cursor(reader_at);
    fuzz::write_file(q + "/readers/fz.cursor", cursor.data(), cursor.size());
    fuzz::write_file(q + "/" + std::string(chronicle::files::kRetention), text);

    auto limits = chronicle::read_retention(q);
    if (limits) {
        const auto& l = limits.value();
        if (l.keep_free_bytes != 0 && l.keep_free_percent != 0) fuzz::fail("two keep-free forms");
        if (l.keep_free_percent > 99) fuzz::fail("keep-free percentage above 99");
        if (!chronicle::write_retention(q, l)) fuzz::fail("write_retention refused what it read");
        auto again = chronicle::read_retention(q);
        if (!again || !(again.value() == l)) fuzz::fail("retention.json did not round-trip");
    }

    chronicle::RetainOptions dry;
    dry.dry_run = true;
    auto plan = chronicle::apply_retention(q, dry);
    auto done = chronicle::apply_retention(q);
    if (!limits) {
        if (plan || done) fuzz::fail("a refused retention.json still drove a pass");
        if (check_contiguous(q, img.head) != 0) fuzz::fail("a refused file deleted segments");
    } else if (plan && done) {
        const auto& p = plan.value();
        const auto& d = done.value();
        if (d.deleted.size() != p.deleted.size()) fuzz::fail("the pass is not its dry run");
        for (size_t i = 0; i < d.deleted.size(); ++i) {
            if (d.deleted[i].base != img.segs[i].base) fuzz::fail("not oldest first");
            if (!d.deleted[i].done && d.error.ok()) fuzz::fail("planned, not done, no error");
        }
        if (d.first_after > img.segs.back().base) fuzz::fail("deleted the head segment");
        if (!limits.value().hard && d.first_after > reader_at && d.first_after > img.segs[1].base) {
            fuzz::fail("soft limits deleted what reader fz needs");
        }
        if (check_contiguous(q, img.head) != d.first_after) fuzz::fail("first is not first_after");
    }
    (void)chronicle::inspect_queue(q);
    (void)chronicle::inspect_readers(q);

    // A writer starts (its retention thread reads the file too) and appends.
    chronicle::WriterOptions o;
    o.create = false;
    o.pretouch = false;
    o.segment_size = fuzz::kSegSize;
    auto w = chronicle::Writer::open(q, o);
    if (w) (void)w.value()->append("x");
    return 0;
}
