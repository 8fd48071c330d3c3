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
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "chronicle/status.h"
#include "cursor.h"
#include "format.h"
#include "fs.h"

namespace chronicle {

inline constexpr std::string_view kWakePageName = "wake.shm";
inline constexpr std::string_view kEfdSuffix = ".efd";
inline constexpr std::string_view kFifoSuffix = ".fifo";

// Maps <queue>/wake.shm read-write, creating it if needed (any follower or the writer).
Result<fs::Mapping> open_wake_page(int dirfd, std::string_view dir);

// The writer's pid and /proc start time from writer.lock, if a writer holds the lock now.
struct WriterInfo {
    bool alive = false;
    int pid = 0;
    uint64_t start_time = 0;
};
WriterInfo query_writer(int dirfd, std::string_view dir);

// The wake metadata a follower publishes as readers/<name>.efd (one line of JSON).
struct EfdInfo {
    int version = 1;
    std::string name;
    int pid = 0;
    int fd = -1;
    uint64_t start_time = 0;  // field 22 of /proc/<pid>/stat
    uint64_t eventfd_id = 0;  // "eventfd-id:" of /proc/<pid>/fdinfo/<fd>; 0 if unknown
    std::string fifo;         // FIFO name in readers/ (fallback wake channel)
    std::string cursor;       // cursor file name in readers/
    uint64_t created_ns = 0;
    bool ephemeral = false;  // an anonymous follower's registration
};
std::string efd_to_json(const EfdInfo& e);
// Writes readers/<e.name>.efd atomically (temporary file + rename).
Status publish_efd(int readers_fd, std::string_view readers_path, const EfdInfo& e);
Result<EfdInfo> efd_from_json(std::string_view text, std::string_view path);

class WriterNotifier;

struct NotifierOptions {
    bool force_fifo = false;  // skip pidfd_getfd and wake every follower through its FIFO
};

// The writer's hook, called after every commit. Inline fast path: a fence and one load.
class WakeHook {
  public:
    WakeHook();
    ~WakeHook();
    WakeHook(const WakeHook&) = delete;
    WakeHook& operator=(const WakeHook&) = delete;

    // Starts watching readers/ (no-op for the portable notifier). Failures are not fatal:
    // the writer then wakes nobody, and followers fall back to their periodic re-check.
    void open(int dirfd, std::string_view dir, const NotifierOptions& o);

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
