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
    int release() noexcept { return std::exchange(fd_, -1); }

  private:
    int fd_ = -1;
};

// An owned shared mapping of a whole file; unmaps on destruction.
class Mapping {
  public:
    Mapping() = default;
    Mapping(Mapping&& o) noexcept
        : base_(std::exchange(o.base_, nullptr)), size_(std::exchange(o.size_, 0)) {}
    Mapping& operator=(Mapping&& o) noexcept;
    Mapping(const Mapping&) = delete;
    Mapping& operator=(const Mapping&) = delete;
    ~Mapping() { reset(); }

    // Maps `size` bytes of `fd` MAP_SHARED, read-only or read-write.
    static Result<Mapping> map(int fd, size_t size, bool writable, std::string_view path);

    [[nodiscard]] std::byte* data() const noexcept { return base_; }
    [[nodiscard]] size_t size() const noexcept { return size_; }
    [[nodiscard]] bool valid() const noexcept { return base_ != nullptr; }
    void reset() noexcept;

  private:
    std::byte* base_ = nullptr;
    size_t size_ = 0;
};

std::string join(std::string_view dir, std::string_view name);

// openat(dirfd, name, flags | O_NOFOLLOW | O_CLOEXEC). A symlink gives ELOOP -> an error.
Result<Fd> open_at(int dirfd, std::string_view dir_path, std::string_view name, int flags,
                   mode_t mode = 0644);
Result<Fd> open_dir(std::string_view path);

// Size of an open file.
Result<uint64_t> file_size(int fd, std::string_view path);

// Writes `content` to dir/name atomically: a temporary file in the same directory, then
// rename over the target.
Status write_file_atomic(int dirfd, std::string_view dir_path, std::string_view name,
                         std::string_view content);

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
