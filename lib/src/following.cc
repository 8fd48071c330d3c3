// chronicle — the following half of a Reader (see following.h).
#include "following.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>

#include "poll_wait.h"
#include "queue_files.h"

namespace chronicle {

using namespace format;

namespace {
constexpr uint64_t kQueueCheckNs = 1'000'000'000;
}  // namespace

Following::Following(int dirfd, std::string dir, std::function<bool()> has_data,
                     std::function<uint64_t()> position)
    : dirfd_(dirfd),
      dir_(std::move(dir)),
      has_data_(std::move(has_data)),
      position_(std::move(position)) {}

void Following::remember_queue() {
    // Read from the descriptor opened with the Reader: the queue it opened, whenever this
    // runs (only readers that follow pay for it).
    if (remembered_) return;
    remembered_ = true;
    struct stat st {};
    if (::fstat(dirfd_, &st) == 0) {
        dev_ = st.st_dev;
        ino_ = st.st_ino;
    }
    if (auto id = files::read_queue_id(dirfd_, dir_)) id_ = id->id;
}

Status Following::same_queue() const {
    struct stat st {};
    const bool exists = ::stat(dir_.c_str(), &st) == 0;
    const bool same_dir = exists && st.st_dev == dev_ && st.st_ino == ino_;
    auto id_now = [&] {
        auto dfd = files::open_queue_dir(dir_);
        auto id =
            dfd ? files::read_queue_id(dfd->get(), dir_) : Result<files::QueueId>(dfd.status());
        return id ? id->id : std::string();
    };
    std::string now_id = exists ? id_now() : std::string();
    // Another directory without an id yet: a writer making a new queue there writes one
    // next; give it a moment, to say which queue is there now.
    for (int i = 0; exists && !same_dir && now_id.empty() && i < 20; ++i) {
        ::usleep(25'000);
        now_id = id_now();
    }
    if (same_dir && (id_.empty() || now_id == id_)) return {};
    std::string there;
    if (exists) {
        there = now_id.empty() ? " (another directory of that name is there now)"
                               : " (a new queue, id " + now_id + ", is there now)";
    }
    return Status(errc::not_found, "queue " + dir_ + " was removed while being followed" + there);
}

Status Following::check_own_files() const {
    if (Status st = same_queue(); !st) return st;
    const std::string own = files::reader_file(
        named_ != nullptr && named_->valid() ? name_ : eph_name_, files::ReaderFile::cursor);
    struct stat st {};
    if (!readers_fd_.valid() ||
        ::fstatat(readers_fd_.get(), own.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
        return {};  // still there: its attributes changed (chmod), nothing more
    }
    // rm -rf removes readers/ first and the queue's own files last (up to 2 s for it).
    for (int i = 0; i < 80; ++i) {
        ::usleep(25'000);
        if (Status gone = same_queue(); !gone) return gone;
    }
    return Status(errc::not_found, fs::join(files::readers_path(dir_), own) +
                                       " was removed while following: no writer can wake this "
                                       "reader any more");
}

Following::~Following() {
    follower_.reset();  // removes .efd and .fifo
    if (!eph_name_.empty() && readers_fd_.valid()) {
        ::unlinkat(readers_fd_.get(),
                   files::reader_file(eph_name_, files::ReaderFile::cursor).c_str(), 0);
    }
}

void Following::ensure_follower() {
    remember_queue();
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
    // Nobody wakes a polling wait for a removed queue: it looks again once a second.
    const bool polling = !follower_ || follower_->fd() < 0;
    const uint64_t start = fs::monotonic_ns();
    const uint64_t deadline =
        timeout.count() < 0 ? UINT64_MAX : start + static_cast<uint64_t>(timeout.count());
    if (next_queue_check_ns_ == 0) next_queue_check_ns_ = start + kQueueCheckNs;
    for (;;) {
        const uint64_t now = fs::monotonic_ns();
        uint64_t until = deadline;
        if (polling) until = std::min(until, std::max(next_queue_check_ns_, now));
        // A deadline already passed is a zero wait (wait(0): look once), never "forever".
        const int64_t slice =
            until == UINT64_MAX ? -1 : static_cast<int64_t>(until > now ? until - now : 0);
        WaitResult r;
        if (follower_) {
            if (eph_cursor_.valid()) eph_cursor_.store(position_());
            r = follower_->wait(slice, has_data_);
        } else {
            r = poll_wait(dirfd_, dir_, slice, has_data_);
        }
        if (r == WaitResult::queue_check ||
            (polling && r == WaitResult::timeout && fs::monotonic_ns() >= next_queue_check_ns_)) {
            next_queue_check_ns_ = fs::monotonic_ns() + kQueueCheckNs;
            if (Status st = r == WaitResult::queue_check ? check_own_files() : same_queue(); !st) {
                return st;
            }
            if (fs::monotonic_ns() < deadline) continue;
            r = WaitResult::timeout;
        }
        switch (r) {
            case WaitResult::ready:
                return {};
            case WaitResult::timeout:
                return Status(errc::timeout, "no record within the timeout");
            case WaitResult::writer_gone:
                return Status(errc::closed, "the writer of " + dir_ + " exited");
            case WaitResult::queue_check:
                break;  // handled above
        }
        return {};
    }
}

Result<bool> Following::prepare() {
    if (armed_) return true;
    if (has_data_()) return false;
    ensure_follower();
    if (!follower_) return true;  // polling: fd() is -1, the caller waits with wait()
    if (follower_->take_queue_check()) {
        if (Status st = check_own_files(); !st) return st;
    }
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
