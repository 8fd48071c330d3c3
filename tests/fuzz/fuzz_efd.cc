// chronicle fuzzing — follower wake metadata: readers/<name>.efd (one line of JSON).
//
// The input is the file's text. It is parsed directly (efd_from_json), then planted as
// readers/fz.efd — and as readers/<name>.efd when it names a plausible reader — next to an
// unlocked, valid cursor of a valid queue, where chronicle-readers' inspection, gc (dry run)
// and a starting writer's notifier (which scans readers/ for followers) read it.
//
// No cursor here is locked, so the writer drops every entry before it would fetch or
// signal a descriptor: nothing outside the scratch directory is ever written to.
//
// Oracles, besides "no crash, no hang": what efd_from_json accepts keeps the documented
// rules (version 1, pid > 0, cursor "<name>.cursor", fifo "" or "<name>.fifo", a name
// without '/' not starting with '.'), and it survives efd_to_json -> efd_from_json.
#include <string>

#include "chronicle/admin.h"
#include "chronicle/reader.h"
#include "chronicle/writer.h"
#include "fuzz_common.h"
#include "queue_files.h"
#include "queue_image.h"
#include "registration.h"
#include "wake.h"

namespace {

void check_accepted(const chronicle::EfdInfo& e) {
    if (e.version != 1) fuzz::fail("accepted version " + std::to_string(e.version));
    if (e.pid <= 0) fuzz::fail("accepted pid " + std::to_string(e.pid));
    if (e.name.empty() || e.name[0] == '.' || e.name.find('/') != std::string::npos) {
        fuzz::fail("accepted name '" + e.name + "'");
    }
    if (e.cursor != e.name + ".cursor") fuzz::fail("accepted cursor '" + e.cursor + "'");
    if (!e.fifo.empty() && e.fifo != e.name + ".fifo") {
        fuzz::fail("accepted fifo '" + e.fifo + "'");
    }
    auto again = chronicle::efd_from_json(chronicle::efd_to_json(e), "again.efd");
    if (!again) fuzz::fail("efd_to_json output refused: " + again.status().message());
    const auto& a = again.value();
    if (a.version != e.version || a.name != e.name || a.pid != e.pid || a.fd != e.fd ||
        a.start_time != e.start_time || a.eventfd_id != e.eventfd_id || a.fifo != e.fifo ||
        a.cursor != e.cursor || a.created_ns != e.created_ns || a.ephemeral != e.ephemeral) {
        fuzz::fail("efd_to_json -> efd_from_json changed a field");
    }
}

// A name that is safe to use as a file name here (what the library would look up).
bool plantable(const std::string& name) {
    if (name.size() > 120 || name == "fz") return false;
    if (chronicle::validate_reader_name(name)) return true;
    if (name.rfind("~anon.", 0) != 0) return false;
    for (char c : name) {
        if (c == '/' || c == '\0') return false;
    }
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const fuzz::SegImage seg =
        fuzz::build_segment(0, 20, false, chronicle::format::kSegmentLive);
    static const std::vector<uint8_t> cursor = fuzz::build_cursor(3);
    const std::string_view text(reinterpret_cast<const char*>(data), size);

    auto parsed = chronicle::efd_from_json(text, "readers/fz.efd");
    if (parsed) check_accepted(parsed.value());

    const std::string q = fuzz::fresh_queue_dir();
    const std::string readers = q + "/readers";
    fuzz::write_segment(q, seg);
    fuzz::make_dir(readers);
    fuzz::write_file(readers + "/fz.cursor", cursor.data(), cursor.size());
    fuzz::write_file(readers + "/fz.efd", text);
    if (parsed && plantable(parsed->name)) {
        fuzz::write_file(readers + "/" + parsed->name + ".cursor", cursor.data(), cursor.size());
        fuzz::write_file(readers + "/" + parsed->name + ".efd", text);
    }

    (void)chronicle::inspect_readers(q);
    (void)chronicle::inspect_reader(q, "fz");
    if (parsed) (void)chronicle::inspect_reader(q, parsed->name);
    (void)chronicle::gc_readers(q, 1, true);

    // A writer starts: its notifier loads every .efd it finds (and drops them: no locks).
    chronicle::WriterOptions o;
    o.create = false;
    o.pretouch = false;
    o.segment_size = fuzz::kSegSize;
    auto w = chronicle::Writer::open(q, o);
    if (w) (void)w.value()->append("x");
    return 0;
}
