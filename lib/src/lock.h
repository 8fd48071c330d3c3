// chronicle — open-file-description locks (fcntl F_OFD_*).
//
// Why OFD locks: they belong to the open file description, so they are dropped by the
// kernel when the holder dies, are not lost when some other descriptor of the same file is
// closed in the holder (unlike POSIX record locks), and anyone can ask whether one is held
// with F_OFD_GETLK WITHOUT taking it. A probe that takes a lock, even briefly, makes a
// starting writer or reader fail with a false "busy".
#pragma once

#include <string_view>

#include "chronicle/status.h"

namespace chronicle::lock {

// Takes an exclusive lock on the whole file without blocking. errc::busy if held.
Status try_exclusive(int fd, std::string_view path);

// Whether another open file description holds a lock on the file. Never takes one.
Result<bool> is_held(int fd, std::string_view path);

}  // namespace chronicle::lock
