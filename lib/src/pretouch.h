// chronicle — background page pre-faulting and next-segment preparation for the writer.
//
// Faulting fresh pages of a file mapping costs ~1 µs per 4 KiB page here, as much as the
// rest of an append of a short line. A helper thread populates the file's pages ahead of
// the append offset through its OWN mapping of the same file (so its lifetime is not tied
// to the writer's mapping), which leaves the writer only cheap page-cache-hit faults, and
// prepares the next segment (fallocate + header + first pages) once the current one is
// half full, so a roll costs a rename.
//
// Threading: every public method is called by the writer thread only; the helper thread
// shares state with it under mu_. advance() is inline and costs one comparison per record.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "segment.h"

namespace chronicle {

class Pretoucher {
  public:
    Pretoucher() = default;
    Pretoucher(const Pretoucher&) = delete;
    Pretoucher& operator=(const Pretoucher&) = delete;
    ~Pretoucher();

    void enable(bool on) noexcept { enabled_ = on; }
    // Whether to populate pages ahead (off while a batch goes through the page cache with
    // pwrite, which needs no populated pages); the next segment is prepared either way.
    void set_populate(bool on) noexcept { populate_ = on; }
    // The temporary name the next segment is prepared under (files::kPreparedSegmentTmp
    // for an exclusive writer; each shared writer has its own).
    void set_prepare_name(std::string name) { prep_name_ = std::move(name); }
    // The writer now appends to `seg` at `off`; `dirfd`/`dir`/`geo` are used to prepare the
    // next segment.
    void configure(int dirfd, std::string dir, const SegmentGeometry& geo);
    void switch_to(const Segment& seg, uint64_t off);
    void advance(uint64_t off) {
        if (off >= next_kick_) kick(off);
    }
    // The prepared next segment, with its base and state set, or an invalid Segment.
    Segment take_prepared(uint64_t base, uint32_t seg_state);

  private:
    void kick(uint64_t off);
    void run();
    void prepare_next();

    bool enabled_ = false;
    bool populate_ = true;  // writer-thread only
    std::string prep_name_{files::kPreparedSegmentTmp};
    int dirfd_ = -1;
    std::string dir_;
    SegmentGeometry geo_;
    uint64_t next_kick_ = UINT64_MAX;  // writer-thread only
    uint64_t seg_size_ = 0;            // writer-thread only
    uint64_t seg_begin_ = 0;           // writer-thread only
    uint64_t switch_off_ = 0;          // writer-thread only: the offset at switch_to

    std::mutex mu_;
    std::condition_variable cv_;
    std::thread thread_;
    // Guarded by mu_.
    bool stop_ = false;
    int fd_ = -1;              // dup of the current segment's descriptor (helper's own)
    uint64_t fd_size_ = 0;     // its size
    uint64_t generation_ = 0;  // bumped on switch_to
    uint64_t target_ = 0;      // populate up to here
    bool want_next_ = false;
    bool preparing_ = false;
    Segment prepared_;
};

}  // namespace chronicle
