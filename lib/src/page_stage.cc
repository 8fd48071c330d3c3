// chronicle — bulk appends through the page cache (see page_stage.h).
#include "page_stage.h"

#include <algorithm>
#include <cstring>

#include "format.h"
#include "fs.h"

namespace chronicle {

using format::kPageSize;

void PageStage::open(int fd, const std::byte* map, uint64_t map_size, uint64_t off) {
    if (!buf_) buf_ = std::make_unique<std::byte[]>(kCapacity);
    fd_ = fd;
    map_size_ = map_size;
    base_ = off / kPageSize * kPageSize;
    limit_ = std::min(base_ + kCapacity, map_size_);
    // The page holding `off` keeps what is below it (committed records, or the segment's
    // header). The buffer past `off` is not cleared: the writer overwrites every byte of a
    // record (its padding too, see writer_append.cc) and flush() zeroes the rest of the
    // last page, so the file stays zero past the append offset.
    std::memcpy(buf_.get(), map + base_, off - base_);
}

Status PageStage::flush(uint64_t upto, const std::string& path) {
    const uint64_t end = std::min((upto + kPageSize - 1) / kPageSize * kPageSize, map_size_);
    std::memset(buf_.get() + (upto - base_), 0, end - upto);
    if (Status st = fs::pwrite_all(fd_, buf_.get(), end - base_, base_, path); !st.ok()) return st;
    // Slide: the page holding `upto` starts the window again, with its bytes.
    const uint64_t page = upto / kPageSize * kPageSize;
    if (page > base_) {
        std::memmove(buf_.get(), buf_.get() + (page - base_), upto - page);
        base_ = page;
        limit_ = std::min(base_ + kCapacity, map_size_);
    }
    return {};
}

}  // namespace chronicle
