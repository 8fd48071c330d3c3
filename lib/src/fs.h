// chronicle — small POSIX helpers: owned descriptors and mappings, no-follow opens, clocks.
// Every errno becomes a Status through Status::from_errno, which names the path.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "chronicle/status.h"

namespace chronicle::fs {

// An owned file descriptor; closes on destruction.
class Fd {
  public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    Fd& operator=(Fd&& o) noexcept;
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }
    [[nodiscard]] int get() const noexcept { return fd_; }
    [[nodiscard]] bool valid() const noexcept { return fd_ >= 0; }
    void reset() noexcept;

  private:
    int fd_ = -1;
};

// An owned shared mapping of a whole file; unmaps on destruction.
class Mapping {
  public:
    Mapping() = default;
    Mapping(Mapping&& o) noexcept
        : base_(std::exchange(o.base_, nullptr)),
          size_(std::exchange(o.size_, 0)),
          guard_(std::exchange(o.guard_, -1)) {}
    Mapping& operator=(Mapping&& o) noexcept;
    Mapping(const Mapping&) = delete;
    Mapping& operator=(const Mapping&) = delete;
    ~Mapping() { reset(); }

    // Maps `size` bytes of `fd` MAP_SHARED, read-only or read-write. A writable mapping is
    // allocated first (fallocate): a store into a hole of a full file system would be a
    // SIGBUS, an allocation failure is ENOSPC here. A mapping past the end of the file is
    // refused (reading it would be a SIGBUS).
    static Result<Mapping> map(int fd, size_t size, bool writable, std::string_view path);

    [[nodiscard]] std::byte* data() const noexcept { return base_; }
    [[nodiscard]] size_t size() const noexcept { return size_; }
    [[nodiscard]] bool valid() const noexcept { return base_ != nullptr; }
    void reset() noexcept;

    // Whether a page of this mapping was found cut off (the file was truncated under us).
    // Such a page reads as zeros from then on instead of raising SIGBUS — see the
    // truncation guard in fs.cc — so a reader sees "no more records" there and asks this
    // to tell the end of the data from damage.
    [[nodiscard]] bool truncated() const noexcept;

  private:
    std::byte* base_ = nullptr;
    size_t size_ = 0;
    int guard_ = -1;  // slot in the truncation guard's registry, -1 if none
};

std::string join(std::string_view dir, std::string_view name);

// What a file of a queue directory must be; anything else is damage (errc::corrupt).
enum class FileType { regular, directory, fifo };

// The one way a queue file is opened: openat(dirfd, name, flags | O_NOFOLLOW | O_NONBLOCK |
// O_CLOEXEC), then its type is checked. So a symlink (ELOOP), a FIFO where a file should be
// (never a blocking open), a directory or a device is refused as corrupt, naming the path.
// O_DIRECTORY in `flags` expects a directory. The descriptor is never 0, 1 or 2: with a
// standard descriptor closed, a queue file must not become the process's stderr.
Result<Fd> open_at(int dirfd, std::string_view dir_path, std::string_view name, int flags,
                   mode_t mode = 0644, FileType type = FileType::regular);
Result<Fd> open_dir(std::string_view path);

// Moves a new descriptor above 2 (see open_at); returns it, or -1 with errno set.
int above_stdio(int fd) noexcept;

// Allocates [0, size) of a file (fallocate without changing contents). EOPNOTSUPP (a file
// system without fallocate) is not an error: nothing better can be done there.
Status allocate(int fd, uint64_t size, std::string_view path);

// Writes all `size` bytes at `offset` (pwrite, again after EINTR and short writes). A
// write that makes no progress is ENOSPC, so a caller never loops or sees a stale errno.
Status pwrite_all(int fd, const void* data, size_t size, uint64_t offset, std::string_view path);

// Size of an open file.
Result<uint64_t> file_size(int fd, std::string_view path);

// Writes `content` to dir/name atomically: first to dir/tmp_name (in the same directory),
// then renamed over the target.
Status write_file_atomic(int dirfd, std::string_view dir_path, std::string_view name,
                         std::string_view tmp_name, std::string_view content);

// Reads a small text file whole (at most `limit` bytes).
Result<std::string> read_small_file(int dirfd, std::string_view dir_path, std::string_view name,
                                    size_t limit = 65536);

// Names of the entries of a directory (no "." or "..").
Result<std::vector<std::string>> list_dir(std::string_view path);

uint64_t realtime_ns() noexcept;
uint64_t monotonic_ns() noexcept;

// Field 22 of /proc/<pid>/stat (start time in clock ticks since boot); 0 if unknown.
uint64_t process_start_time(int pid) noexcept;

}  // namespace chronicle::fs
