// chronicle — the wake protocol, shared by the writer and followers.
//
// A follower that has read everything blocks on its own eventfd; the writer wakes it after
// a commit. A follower that keeps up must cost the writer no system call, so the writer
// only looks for sleepers when the queue-wide hint (WakePage::sleepers) says someone went
// to sleep.
//
// Protocol (F = follower about to block, W = writer after a commit, N = W's slow path):
//   F1 sleep_word += 1 (odd: asleep)            seq_cst
//   F2 hint = 1                                 seq_cst
//   F3 fence(seq_cst); re-check the record at its position; if committed: wake up itself
//   F4 block on poll(eventfd, fifo, writer pidfd)
//   W1 store record state (release: the commit)
//   W2 fence(seq_cst); if hint == 0: done (no system call)
//   N1 hint.exchange(0)                         seq_cst
//   N2 for every registered follower: w = sleep_word (seq_cst); if w is odd and w is not
//      the value last signalled: signal it (write its eventfd or FIFO), remember w.
//
// No lost wake-up. Suppose F blocks at F4 although the commit W1 happened. F's re-check F3
// missed W1, so F's fence precedes W's fence in the single total order S of seq_cst
// operations, and W2's load of the hint sees F2's store or a later one in its modification
// order. Either it reads 1 — then N runs after F2 — or it reads the 0 of some exchange N1'
// that came after F2. In both cases an N1 follows F2 in S; its scan N2 comes after that in
// S and F1 precedes F2, so N2 reads F's odd sleep_word (F only makes it even after it wakes)
// and signals F, unless it already signalled this very sleep — which also wakes F.
// A follower that registers (its .efd appears) after an N2 that could not see it is covered
// by the registration check: the writer inspects a follower's sleep_word right after
// adding it to its registry and signals it if it sleeps.
//
// A dead sleeper costs one signal: its sleep_word stays odd, but the writer signals each
// odd value once. Nothing counts sleepers, so nothing leaks.
//
// Where each part lives:
//   wake.h/.cc                  this protocol, the shared page, the two sides' interfaces
//                               and the writer's inline hook
//   registration.h/.cc          readers/<name>.efd, how a follower says where it sleeps
//   follower_linux.cc           the follower: eventfd + FIFO + the writer's pidfd in epoll
//   writer_notifier_linux.cc    the writer side: registry, discovery (inotify, else
//                               rescans) and the wake-ups (N1, N2)
//   follower_entry_linux.h/.cc  a follower as the writer keeps it; the descriptor proofs
//   proc_linux.h/.cc            /proc and pidfd helpers (proving processes, descriptors)
//   poll_wait.h/.cc             waiting by re-checking, for whoever cannot be woken
//   notifier_portable.cc        both sides without eventfd, inotify or pidfd
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "chronicle/status.h"
#include "format.h"
#include "fs.h"

namespace chronicle {

// Maps <queue>/wake.shm read-write, creating it if needed (any follower or the writer).
Result<fs::Mapping> open_wake_page(int dirfd, std::string_view dir);

// queue_check: something happened to the follower's own files (its cursor was unlinked:
// `rm -rf` of the queue, say); the caller asks whether the queue is still there.
enum class WaitResult { ready, timeout, writer_gone, queue_check };

// The follower side (F1..F4): created by a following Reader the first time it waits.
class Follower {
  public:
    struct Config {
        int dirfd = -1;  // the queue directory
        std::string dir;
        std::string name;                    // reader name (files::is_ephemeral for anonymous)
        std::string cursor_file;             // its cursor file in readers/
        format::CursorWake* wake = nullptr;  // the wake area of its cursor page
    };
    // Registers the follower (readers/<name>.efd) so that writers can wake it.
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
    // Whether, since the last call, fd() fired for a change to the follower's own files
    // (what wait() reports as queue_check). The portable notifier never says so: its
    // waits are checked by time instead (Following::wait).
    virtual bool take_queue_check() = 0;
    // Whether a writer holds the queue's lock now.
    virtual bool writer_alive() = 0;
};

struct NotifierOptions {
    bool force_fifo = false;  // skip pidfd_getfd and wake every follower through its FIFO
};

// The writer side (N1..N2), owned by WakeHook.
class WriterNotifier {
  public:
    // Starts discovering followers. Fails (with why) when it cannot wake anyone: no
    // eventfd or epoll, readers/ unreadable. Null for the portable build (nobody to wake).
    static Result<std::unique_ptr<WriterNotifier>> create(int dirfd, std::string_view dir,
                                                          const NotifierOptions& o);
    virtual ~WriterNotifier() = default;
    // The wake page's hint (F2, N1), which WakeHook loads after every commit.
    virtual std::atomic<uint32_t>* hint() const = 0;
    // N1..N2; called on the writer thread when the hint is set.
    virtual void wake_sleepers() noexcept = 0;
};

// The writer's hook, called after every commit. Inline fast path: a fence and one load.
class WakeHook {
  public:
    WakeHook();
    ~WakeHook();
    WakeHook(const WakeHook&) = delete;
    WakeHook& operator=(const WakeHook&) = delete;

    // Starts watching readers/. A failure is not fatal: the writer then wakes nobody, and
    // followers notice records by their periodic re-check; the Status says why.
    [[nodiscard]] Status open(int dirfd, std::string_view dir, const NotifierOptions& o);

    void after_commit() noexcept {
        if (hint_ == nullptr) return;
        // W2: orders the commit (W1) before the load of the hint; pairs with the
        // follower's fence at F3. See the protocol comment above.
        std::atomic_thread_fence(std::memory_order_seq_cst);
        if (hint_->load(std::memory_order_relaxed) != 0) slow_path();
    }

  private:
    void slow_path() noexcept;
    std::atomic<uint32_t>* hint_ = nullptr;
    std::unique_ptr<WriterNotifier> notifier_;
};

}  // namespace chronicle
