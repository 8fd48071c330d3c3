// chronicle — the following half of a Reader (see following.h).
#include "following.h"

#include <unistd.h>

#include <atomic>

#include "poll_wait.h"
#include "queue_files.h"

namespace chronicle {

using namespace format;

Following::~Following() {
    follower_.reset();  // removes .efd and .fifo
    if (!eph_name_.empty() && readers_fd_.valid()) {
        ::unlinkat(readers_fd_.get(),
                   files::reader_file(eph_name_, files::ReaderFile::cursor).c_str(), 0);
    }
}

void Following::ensure_follower() {
    if (follower_ || !no_registration_.ok()) return;
    Status st = register_follower();
    if (!st.ok()) {
        // Without files in readers/ the writer cannot wake us: keep working by polling.
        no_registration_ = std::move(st);
        follower_.reset();
    }
}

Status Following::register_follower() {
    if (!readers_fd_.valid()) {
        auto rfd = files::open_readers_dir(dirfd_, dir_);
        if (!rfd) return rfd.status();
        readers_fd_ = std::move(rfd.value());
    }
    Follower::Config c;
    c.dirfd = dirfd_;
    c.dir = dir_;
    if (named_ != nullptr && named_->valid()) {
        c.name = name_;
        c.wake = reinterpret_cast<CursorWake*>(named_->page() + kCursorWakeOffset);
    } else {
        static std::atomic<uint64_t> counter{0};
        // Relaxed: only uniqueness matters.
        const uint64_t n = counter.fetch_add(1, std::memory_order_relaxed);
        const std::string name = files::ephemeral_name(::getpid(), n);
        auto cs =
            CursorStore::open(readers_fd_.get(), files::readers_path(dir_), name,
                              {.create = true, .initial_seq = position_(), .ephemeral = true});
        if (!cs) return cs.status();
        eph_cursor_ = std::move(cs.value());
        eph_name_ = name;
        c.name = name;
        c.wake = reinterpret_cast<CursorWake*>(eph_cursor_.page() + kCursorWakeOffset);
    }
    c.cursor_file = files::reader_file(c.name, files::ReaderFile::cursor);
    auto f = Follower::create(c);
    if (!f) return f.status();
    follower_ = std::move(f.value());
    return {};
}

Status Following::wait(std::chrono::nanoseconds timeout) {
    before_read();
    if (has_data_()) return {};
    ensure_follower();
    WaitResult r;
    if (follower_) {
        if (eph_cursor_.valid()) eph_cursor_.store(position_());
        r = follower_->wait(timeout.count(), has_data_);
    } else {
        r = poll_wait(dirfd_, dir_, timeout.count(), has_data_);
    }
    switch (r) {
        case WaitResult::ready:
            return {};
        case WaitResult::timeout:
            return Status(errc::timeout, "no record within the timeout");
        case WaitResult::writer_gone:
            return Status(errc::closed, "the writer of " + dir_ + " exited");
    }
    return {};
}

Result<bool> Following::prepare() {
    if (armed_) return true;
    if (has_data_()) return false;
    ensure_follower();
    if (!follower_) return true;  // polling: fd() is -1, the caller waits with wait()
    if (eph_cursor_.valid()) eph_cursor_.store(position_());
    if (!follower_->arm(has_data_)) return false;
    armed_ = true;
    return true;
}

Result<int> Following::fd() {
    ensure_follower();
    return follower_ ? follower_->fd() : -1;
}

bool Following::writer_alive() {
    // Asked through the follower, created first if need be: "alive" then also means that
    // the writer's exit will make fd() readable. Asking the lock alone and creating the
    // follower later leaves a window in which the writer exits unseen (issue 8, item 4).
    ensure_follower();
    if (follower_) return follower_->writer_alive();
    return files::query_writer(dirfd_, dir_).alive;
}

}  // namespace chronicle
