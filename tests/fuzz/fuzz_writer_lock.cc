// chronicle fuzzing — writer.lock contents.
//
// The input is the text of writer.lock in a valid queue. With the file's lock held (by
// this process, through its own open file description, as a live writer would), the lock
// file is parsed by everything that names the writer: files::query_writer(), chronicle-readers'
// inspect_queue(), a second Writer::open (busy, naming the pid), a reader asking whether
// the writer lives, and a follower that watches the writer (wait 0 s). Then the lock is
// dropped and a writer must start over whatever the file holds.
//
// Oracles, besides "no crash, no hang": while the lock is held, the queue has a writer
// (Writer::open says busy, query_writer says alive); once it is dropped, Writer::open
// succeeds and leaves writer.lock as one JSON line naming this process.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>

#include "chronicle/admin.h"
#include "chronicle/reader.h"
#include "chronicle/writer.h"
#include "fs.h"
#include "fuzz_common.h"
#include "queue_files.h"
#include "queue_image.h"
#include "registration.h"
#include "wake.h"

namespace {

chronicle::WriterOptions writer_options() {
    chronicle::WriterOptions o;
    o.create = false;
    o.pretouch = false;
    o.segment_size = fuzz::kSegSize;
    return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const fuzz::SegImage seg =
        fuzz::build_segment(0, 20, false, chronicle::format::kSegmentLive);
    const std::string q = fuzz::fresh_queue_dir();
    fuzz::write_segment(q, seg);
    fuzz::make_dir(q + "/readers");
    const std::string lock_path = q + "/writer.lock";
    fuzz::write_file(lock_path, data, size);

    // A live writer: an OFD write lock on writer.lock.
    const int lfd = ::open(lock_path.c_str(), O_RDWR | O_CLOEXEC);
    if (lfd < 0) fuzz::fail("cannot open " + lock_path);
    struct flock fl {};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (::fcntl(lfd, F_OFD_SETLK, &fl) != 0) fuzz::fail("cannot lock " + lock_path);

    {
        auto dfd = chronicle::fs::open_dir(q);
        if (!dfd) fuzz::fail("cannot open " + q);
        const chronicle::files::WriterInfo wi = chronicle::files::query_writer(dfd->get(), q);
        if (!wi.alive) fuzz::fail("query_writer: no writer although writer.lock is locked");
    }
    (void)chronicle::inspect_queue(q);
    (void)chronicle::inspect_readers(q);
    {
        auto w = chronicle::Writer::open(q, writer_options());
        if (w) fuzz::fail("a second writer started while writer.lock is locked");
        if (w.status().code() != chronicle::errc::busy) {
            fuzz::fail("a second writer: " + w.status().message() + " (expected busy)");
        }
    }
    {
        auto r = chronicle::Reader::open(q);
        if (r) {
            (void)r.value()->writer_alive();
            (void)r.value()->next();
            (void)r.value()->seek(chronicle::Position::end());
            (void)r.value()->wait(std::chrono::nanoseconds(0));
            (void)r.value()->writer_alive();
        }
    }
    ::close(lfd);  // the writer "dies"

    {
        auto w = chronicle::Writer::open(q, writer_options());
        if (!w) fuzz::fail("no writer starts over writer.lock: " + w.status().message());
        std::ifstream f(lock_path);
        const std::string text((std::istreambuf_iterator<char>(f)),
                               std::istreambuf_iterator<char>());
        auto j = nlohmann::json::parse(text, nullptr, false);
        if (!j.is_object() || !j.contains("pid") || j["pid"] != ::getpid()) {
            fuzz::fail("the new writer left writer.lock as: " + text);
        }
    }
    return 0;
}
