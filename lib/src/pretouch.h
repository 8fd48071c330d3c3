// chronicle — background page pre-faulting and next-segment preparation for the writer.
//
// Faulting fresh pages of a file mapping costs ~1 µs per 4 KiB page here, as much as the
// rest of an append of a short line. A helper thread populates pages ahead of the append
// offset in the WRITER'S OWN mapping (MADV_POPULATE_WRITE on its address range: page cache
// and page tables, so the writer's stores take no fault at all), and prepares the next
// segment (fallocate + header, and its first pages if populating) once the current one is
// half full, so a roll costs a rename. The writer calls detach() before it unmaps a
// segment; detach() waits until the helper is out of its populate call (2026-11-30: a
// mapping of the helper's own left the writer a write fault per page, ext4_page_mkwrite,
// on pages already cached).
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
    // pwrite, which needs no populated pages); the next segment is prepared either way, its
    // first pages populated only if populating was on when its preparation was asked for.
    void set_populate(bool on) noexcept { populate_ = on; }
    // The temporary name the next segment is prepared under (files::kPreparedSegmentTmp
    // for an exclusive writer; each shared writer has its own).
    void set_prepare_name(std::string name) { prep_name_ = std::move(name); }
    // The writer now appends to `seg` at `off`; `dirfd`/`dir`/`geo` are used to prepare the
    // next segment.
    void configure(int dirfd, std::string dir, const SegmentGeometry& geo);
    // The helper populates pages in the writer's own mapping of `seg` (no fault is left for
    // the writer); call detach() before that mapping is unmapped.
    void switch_to(const Segment& seg, uint64_t off);
    // Forgets the current mapping, waiting until the helper is out of any populate call on
    // it (at most one 1 MiB slice).
    void detach();
    void advance(uint64_t off) {
        if (off >= next_kick_) kick(off);
    }
    // The prepared next segment, with its base and state set, or an invalid Segment.
    Segment take_prepared(uint64_t base, uint32_t seg_state);

  private:
    void kick(uint64_t off);
    void run();
    void prepare_next(bool populate);

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
    std::byte* map_ = nullptr;  // the writer's mapping of the current segment
    bool touching_ = false;     // the helper is in a populate call on generation_
    uint64_t generation_ = 0;   // bumped on switch_to
    uint64_t target_ = 0;       // populate up to here
    bool want_next_ = false;
    bool next_populate_ = true;  // populate the next segment's first pages (prepare_next())
    bool preparing_ = false;
    Segment prepared_;
};

}  // namespace chronicle
