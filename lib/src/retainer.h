// chronicle — the writer's retention thread: applies the queue's limits (retention.h)
// after each segment roll and every kPeriod, off the append path.
//
// Started with the writer; its first look comes kFirstDelay later, so that
// `echo x | chronicle-append q` never waits for a pass. Each look checks for retention.json
// (one faccessat: a queue without limits costs nothing more) and re-reads it, so limits set
// or changed while the writer runs (`chronicle-queue set`) take effect within kPeriod.
//
// Threading: start(), on_roll() and the destructor are called by the writer thread; the
// helper thread shares stop_/nudged_ with it under mu_.
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
    // path; starts the thread.
    void start(int dirfd, std::string dir);
    // After a roll: a pass now. One condition-variable notify.
    void on_roll();

  private:
    void run();

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
