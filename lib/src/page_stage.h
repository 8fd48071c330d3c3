// chronicle — bulk appends through the page cache. A large batch's records are encoded
// into a buffer that mirrors whole pages of the segment, then written with pwrite. Why: on
// ext4 a store into a fresh page of a shared file mapping makes the kernel zero the page
// first (half of chronicle-append's time from a file went there), while a pwrite of a whole
// page needs no zeroing — what makes `cat` fast. The mapping still publishes: the batch's
// first state word is stored through it after the pwrite (writer_append.cc), so readers see
// the same protocol (format.h), and a crash leaves the same torn tail for recovery.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "chronicle/status.h"

namespace chronicle {

class PageStage {
  public:
    static constexpr uint64_t kCapacity = 256ull << 10;

    // Starts mirroring the segment file `fd` (mapped at `map`, `map_size` bytes) from the
    // page holding `off`; the bytes of that page below `off` are copied from the mapping.
    void open(int fd, const std::byte* map, uint64_t map_size, uint64_t off);
    [[nodiscard]] bool active() const noexcept { return fd_ >= 0; }
    // The buffer's copy of file offset `off`, for base() <= off < limit().
    [[nodiscard]] std::byte* at(uint64_t off) const noexcept { return buf_.get() + (off - base_); }
    // End of the window: records must end (with room for a seal) below it.
    [[nodiscard]] uint64_t limit() const noexcept { return limit_; }
    // Writes the pages of [window start, upto) with pwrite — whole pages, the rest of the
    // last one zeroed — then restarts the window at the page holding `upto`.
    Status flush(uint64_t upto, const std::string& path);
    // Stops mirroring; what was not flushed is dropped.
    void close() noexcept { fd_ = -1; }

  private:
    std::unique_ptr<std::byte[]> buf_;
    int fd_ = -1;
    uint64_t base_ = 0;  // file offset of buf_[0], page-aligned
    uint64_t limit_ = 0;
    uint64_t map_size_ = 0;
};

}  // namespace chronicle
