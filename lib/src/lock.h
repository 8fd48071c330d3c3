// chronicle — open-file-description locks (fcntl F_OFD_*).
//
// Why OFD locks: they belong to the open file description, so they are dropped by the
// kernel when the holder dies, are not lost when some other descriptor of the same file is
// closed in the holder (unlike POSIX record locks), and anyone can ask whether one is held
// with F_OFD_GETLK WITHOUT taking it. A probe that takes a lock, even briefly, makes a
// starting writer or reader fail with a false "busy".
#pragma once

#include <cstdint>
#include <string_view>

#include "chronicle/status.h"

namespace chronicle::lock {

// Takes an exclusive lock on the whole file without blocking. errc::busy if held.
Status try_exclusive(int fd, std::string_view path);

// Whether another open file description holds a lock on the file. Never takes one.
Result<bool> is_held(int fd, std::string_view path);

// A lock on bytes [start, start + len) (len 0: to the end and beyond), read (shared) or
// write (exclusive). Taking a lock the same descriptor holds on the same bytes converts it
// (atomically). `wait_ms`: 0 = do not wait (errc::busy when held), kForever = block until
// it is free, else retry with a back-off up to 50 ms until that many milliseconds have
// passed (errc::busy then).
inline constexpr uint64_t kForever = UINT64_MAX;
enum class Kind { read, write };
Status range(int fd, std::string_view path, Kind kind, int64_t start, int64_t len,
             uint64_t wait_ms = 0);
// Drops this descriptor's lock on [start, start + len).
void unlock_range(int fd, int64_t start, int64_t len) noexcept;

}  // namespace chronicle::lock
