// chronicle — notifier: the platform half of the wake protocol (see wake.h).
//
// Two implementations, chosen by CMake:
//   notifier_linux.cc     eventfd per follower, published in readers/<name>.efd; the writer
//                         watches readers/ with inotify, fetches each follower's eventfd
//                         with pidfd_open + pidfd_getfd (after proving who it belongs to),
//                         or falls back to the follower's FIFO; followers also watch the
//                         writer's pidfd so that wait() returns when the writer exits.
//   notifier_portable.cc  no descriptors: wait() sleeps with exponential back-off and
//                         re-checks; the writer notifies nobody.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "chronicle/status.h"
#include "format.h"
#include "fs.h"
#include "wake.h"

namespace chronicle {

enum class WaitResult { ready, timeout, writer_gone };

// The follower side: created lazily by a Reader the first time it waits.
class Follower {
  public:
    struct Config {
        int dirfd = -1;  // the queue directory
        std::string dir;
        std::string name;                    // reader name (ephemeral ones start with '~')
        std::string cursor_file;             // its cursor file in readers/
        format::CursorWake* wake = nullptr;  // the wake area of its cursor page
    };
    static Result<std::unique_ptr<Follower>> create(const Config& c);
    virtual ~Follower() = default;

    // F1..F3: announce sleep, then re-check. Returns false (and stays awake) when
    // `has_data` is already true — read instead of blocking; true when armed.
    virtual bool arm(const std::function<bool()>& has_data) = 0;
    // After a wake-up (or instead of blocking): mark awake, drain the wake descriptors.
    virtual void disarm() = 0;
    // Blocks until data, timeout (< 0: none) or writer exit.
    virtual WaitResult wait(int64_t timeout_ns, const std::function<bool()>& has_data) = 0;
    // A descriptor that becomes readable on a wake-up (-1 for the portable notifier).
    virtual int fd() const = 0;
    // Whether a writer holds the queue's lock now.
    virtual bool writer_alive() = 0;
};

// The writer side, owned by WakeHook.
class WriterNotifier {
  public:
    static std::unique_ptr<WriterNotifier> create(int dirfd, std::string_view dir,
                                                  const NotifierOptions& o,
                                                  std::atomic<uint32_t>*& hint);
    virtual ~WriterNotifier() = default;
    // N1..N2 (see wake.h); called on the writer thread when the hint is set.
    virtual void wake_sleepers() noexcept = 0;
};

}  // namespace chronicle
