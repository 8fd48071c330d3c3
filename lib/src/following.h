// chronicle — the following half of a Reader: registering as a follower, arming, waiting
// and asking after the writer (docs/DESIGN.md "Wake-ups"). The Reader reads; this waits
// until there is something to read. It owns the Follower (created on first use), an
// anonymous reader's ephemeral cursor (whose page holds its wake area), and the reason it
// polls when it could not register.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "chronicle/status.h"
#include "cursor.h"
#include "fs.h"
#include "wake.h"

namespace chronicle {

class Following {
  public:
    // `has_data`: whether the reader's next() has a record now (the F3 re-check; it
    // acquire-loads the record's state). `position`: the reader's next sequence, stored in
    // an anonymous follower's ephemeral cursor for chronicle-readers.
    // The first wait remembers which queue the reader opened (its directory and
    // queue.json's id), to notice later that the path names another queue or none
    // (same_queue()).
    Following(int dirfd, std::string dir, std::function<bool()> has_data,
              std::function<uint64_t()> position);
    ~Following();
    Following(const Following&) = delete;
    Following& operator=(const Following&) = delete;

    // The named reader's cursor (its page holds the wake area); none for an anonymous one.
    void use_cursor(const CursorStore* named, std::string name) {
        named_ = named;
        name_ = std::move(name);
    }

    // Before a read: a follower armed by prepare() drains its wake-up and is awake again.
    void before_read() {
        if (armed_) {
            follower_->disarm();
            armed_ = false;
        }
    }
    // Reader::wait: ok, errc::timeout, errc::closed (the writer exited) or errc::not_found
    // (the queue was removed or replaced while we waited).
    Status wait(std::chrono::nanoseconds timeout);
    // Reader::prepare_wait: true when armed (poll fd()), false when records are ready.
    Result<bool> prepare();
    // Reader::fd: the follower's descriptor, -1 when polling.
    Result<int> fd();
    // Reader::writer_alive.
    bool writer_alive();
    // Why this reader could not register (ok if it did or never tried).
    [[nodiscard]] const Status& status() const noexcept { return no_registration_; }

    // Whether the queue's path still names the queue this reader opened: the same
    // directory, with the same id. errc::not_found saying what happened otherwise.
    [[nodiscard]] Status same_queue() const;

  private:
    // After the follower's own cursor file changed (WaitResult::queue_check): same_queue(),
    // and if the queue is still there but our cursor is gone, a moment for an `rm -rf`
    // under way to finish before saying which of the two happened.
    [[nodiscard]] Status check_own_files() const;
    // Registers on first use; a failure is kept in no_registration_ (then it polls).
    void ensure_follower();
    Status register_follower();

    int dirfd_;
    std::string dir_;
    std::function<bool()> has_data_;
    std::function<uint64_t()> position_;
    const CursorStore* named_ = nullptr;
    std::string name_;

    std::unique_ptr<Follower> follower_;
    CursorStore eph_cursor_;  // an anonymous follower's ephemeral cursor
    std::string eph_name_;
    fs::Fd readers_fd_;
    bool armed_ = false;
    // Registration failed (e.g. a read-only queue): wait by polling. Holds the reason.
    Status no_registration_;
    // The queue as opened (same_queue()); an empty id: it had none (an old queue).
    void remember_queue();
    bool remembered_ = false;
    uint64_t dev_ = 0, ino_ = 0;
    std::string id_;
    uint64_t next_queue_check_ns_ = 0;  // polling: same_queue() at most once a second
};

}  // namespace chronicle
