// chronicle — the writer's retention thread: applies the queue's limits (retention.h)
// after each segment roll and every kPeriod, off the append path.
//
// Started when the writer opens a queue that has retention.json, or at the first roll after
// one appeared (`chronicle-queue set` on a queue whose writer is running). It re-reads the
// file on every pass, so a change of limits takes effect within kPeriod.
//
// Threading: start_if_configured(), on_roll() and the destructor are called by the writer
// thread; the helper thread shares stop_/nudged_ with it under mu_.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

namespace chronicle {

class Retainer {
  public:
    static constexpr std::chrono::seconds kPeriod{10};
    // The first pass of a thread started at open.
    static constexpr std::chrono::milliseconds kFirstDelay{1000};

    Retainer() = default;
    Retainer(const Retainer&) = delete;
    Retainer& operator=(const Retainer&) = delete;
    ~Retainer();

    // The queue directory (an open descriptor, borrowed for the writer's lifetime) and its
    // path. Starts the thread if the queue has retention limits.
    void start_if_configured(int dirfd, std::string dir);
    // After a roll: a pass now (starting the thread if limits appeared since the open).
    // One faccessat while no thread runs, one condition-variable notify while one does.
    void on_roll();

  private:
    void start(std::chrono::milliseconds delay);
    void run(std::chrono::milliseconds delay);

    int dirfd_ = -1;
    std::string dir_;
    std::thread thread_;  // writer-thread only

    std::mutex mu_;
    std::condition_variable cv_;
    // Guarded by mu_.
    bool stop_ = false;
    bool nudged_ = false;
};

}  // namespace chronicle
