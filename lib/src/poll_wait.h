// chronicle — waiting by re-checking, for a follower nobody can wake: the portable build
// (no eventfd, no inotify), and a reader that could not register in readers/ (a read-only
// queue, say). chronicle-tail reaches it through Reader::wait.
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>

#include "wake.h"

namespace chronicle {

// Sleeps 100 µs doubling to 50 ms between checks of `has_data`, until it is true (ready),
// `timeout_ns` passes (< 0: never) or the writer that held the queue's lock when the wait
// began lets it go (writer_gone; asked every 50 ms).
WaitResult poll_wait(int dirfd, std::string_view dir, int64_t timeout_ns,
                     const std::function<bool()>& has_data);

}  // namespace chronicle
