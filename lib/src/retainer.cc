// chronicle — the writer's retention thread (see retainer.h).
#include "retainer.h"

#include <fcntl.h>
#include <unistd.h>

#include <system_error>

#include "chronicle/retention.h"
#include "queue_files.h"

namespace chronicle {

namespace {
bool has_limits_file(int dirfd) {
    return ::faccessat(dirfd, std::string(files::kRetention).c_str(), F_OK, AT_SYMLINK_NOFOLLOW) ==
           0;
}
}  // namespace

Retainer::~Retainer() {
    if (!thread_.joinable()) return;
    {
        std::lock_guard<std::mutex> g(mu_);
        stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
}

void Retainer::start(int dirfd, std::string dir) {
    dirfd_ = dirfd;
    dir_ = std::move(dir);
    try {
        thread_ = std::thread([this] { run(); });
    } catch (const std::system_error&) {
        // No thread (resources exhausted): the writer appends without applying limits;
        // chronicle-queue retain still does. Never an exception out of Writer::open.
    }
}

void Retainer::on_roll() {
    if (!thread_.joinable()) return;
    {
        std::lock_guard<std::mutex> g(mu_);
        nudged_ = true;
    }
    cv_.notify_one();
}

void Retainer::run() {
    std::unique_lock<std::mutex> g(mu_);
    cv_.wait_for(g, kFirstDelay, [this] { return stop_ || nudged_; });
    // A roll that came before the stop is still applied: a writer that exits leaves its
    // queue within the limits.
    while (!stop_ || nudged_) {
        nudged_ = false;
        g.unlock();
        // Errors (a malformed retention.json, a segment that cannot be deleted) leave the
        // queue as it is; the pass records them in retention.last, where chronicle-queue
        // info shows them. No retention.json: no limits, nothing to do.
        if (has_limits_file(dirfd_)) (void)apply_retention(dir_);
        g.lock();
        cv_.wait_for(g, kPeriod, [this] { return stop_ || nudged_; });
    }
}

}  // namespace chronicle
