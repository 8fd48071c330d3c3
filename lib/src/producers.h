// chronicle — the producer page (producers.shm): what shared writers agree on.
//
// Several writers append to one queue by taking turns under the *append lock*, a robust,
// process-shared pthread mutex in this page: uncontended it costs two atomic
// read-modify-writes and no system call; contended, the waiter sleeps in the kernel. When
// a holder dies the kernel marks the mutex (robust futex list) and the next lock() reports
// it: that writer recovers the queue from its segments before it appends (docs/DESIGN.md
// §4 has the argument why no crash loses or exposes anything).
//
// Under the lock the page holds the tail — where the next record goes — and an epoch that
// each writer that moved the tail bumps, so that a writer that wrote last knows, with one
// comparison, that its own view is current. The page is a hint: a tail that fails its
// checks is recovered from the segments, which are the truth.
//
// The table of shared writers (pid, start time) is informational: it names a live writer
// in writer.lock when the one named there leaves, and lets chronicle-readers count them.
#pragma once

#include <pthread.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "chronicle/status.h"
#include "fs.h"

namespace chronicle {

inline constexpr uint64_t kProducerMagic = 0x31444f5250524843ull;  // "CHRPROD1"

struct ProducerTail {
    uint64_t seg_base = 0;   // base sequence of the segment appended to
    uint64_t off = 0;        // append offset in it
    uint64_t seq = 0;        // next sequence number
    uint64_t last_ts = 0;    // timestamp of the last record (timestamps never go back)
    uint32_t next_slot = 0;  // next index slot of the segment to fill
    uint32_t reserved = 0;
    uint64_t check = 0;  // tail_check() of the fields above: damage is not a tail
};
// A checksum of a tail's fields: a stray write or a flipped bit in the page makes the tail
// fail it and the holder recovers from the segments, instead of appending at a wrong offset
// whose state word happens to be zero (a record's padding).
uint64_t tail_check(const ProducerTail& t) noexcept;
inline ProducerTail sealed_tail(uint64_t base, uint64_t off, uint64_t seq, uint64_t ts,
                                uint32_t slot) noexcept {
    ProducerTail t{base, off, seq, ts, slot, 0, 0};
    t.check = tail_check(t);
    return t;
}

struct ProducerSlot {
    std::atomic<int32_t> pid{0};
    uint32_t reserved = 0;
    std::atomic<uint64_t> start_time{0};
};

struct ProducerPage {
    uint64_t magic;
    uint32_t version;
    uint32_t size;
    alignas(64) pthread_mutex_t mutex;  // the append lock
    // Under the append lock:
    alignas(64) ProducerTail tail;
    uint64_t epoch;   // bumped by every holder that moved the tail
    uint32_t repair;  // 1: a holder died; the next holder recovers from the segments
    uint32_t reserved;
    // Written while joining or leaving (writer.lock byte 1 held):
    alignas(64) ProducerSlot slots[200];
};
static_assert(sizeof(ProducerPage) <= 4096);
// Offsets documented in chronicle(7) and used by tests that damage the page.
inline constexpr size_t kProducerMutexOffset = 64;
inline constexpr size_t kProducerTailOffset = 128;
inline constexpr size_t kProducerEpochOffset = kProducerTailOffset + sizeof(ProducerTail);

class ProducerPageMap {
  public:
    // Maps <dir>/producers.shm, creating it. `fresh`: the caller is the only writer
    // (writer.lock byte 2 held as a write lock): the page is initialised afresh, whatever it
    // held. Otherwise it must be a valid page (errc::corrupt naming the file if not).
    static Result<ProducerPageMap> open(int dirfd, std::string_view dir, bool fresh);

    // Takes the append lock. True: the previous holder died holding it — the page's
    // `repair` is set and the lock made consistent, the caller recovers.
    Result<bool> lock();
    // The same without waiting: errc::busy while another writer holds it.
    Result<bool> try_lock();
    void unlock() noexcept;

    [[nodiscard]] ProducerPage* page() const noexcept {
        return reinterpret_cast<ProducerPage*>(map_.data());
    }
    [[nodiscard]] const std::string& path() const noexcept { return path_; }

    // The table (writer.lock byte 1 held): enter this process, leave it, the live others.
    void enter(int pid, uint64_t start_time) noexcept;
    void leave(int pid, uint64_t start_time) noexcept;
    struct Live {
        int pid;
        uint64_t start_time;
    };
    [[nodiscard]] std::vector<Live> live(int except_pid) const;

  private:
    Result<bool> taken(int rc);  // lock()'s and try_lock()'s result

    fs::Mapping map_;
    std::string path_;
};

// The live shared writers named in <dir>/producers.shm (read-only; empty when there is no
// usable page). Informational: the writer locks are the truth about liveness.
std::vector<ProducerPageMap::Live> read_live_writers(int dirfd, std::string_view dir);

}  // namespace chronicle
