// chronicle — writer start-up recovery.
//
// Runs with writer.lock held, while readers may be reading. It finds the last committed
// record, clears the torn tail after it, finishes a roll a dead writer left half-done, and
// returns where appending continues. It never destroys committed data: damage in the middle
// of the log (a bad state word, an impossible length) is reported as errc::corrupt, naming
// the file and offset, and the writer refuses to start rather than write over it.
#pragma once

#include <cstdint>
#include <string_view>

#include "chronicle/status.h"
#include "segment.h"

namespace chronicle {

struct Tail {
    Segment seg;             // mapped writable
    uint64_t off = 0;        // append offset in seg
    uint64_t seq = 0;        // next sequence number
    uint64_t last_ts = 0;    // timestamp of the last record (keeps timestamps monotonic)
    uint32_t next_slot = 0;  // next index slot of seg to fill
};

// `geo_for_new` is used only when the queue has no segment yet.
Result<Tail> recover(int dirfd, std::string_view dir, const SegmentGeometry& geo_for_new);

}  // namespace chronicle
