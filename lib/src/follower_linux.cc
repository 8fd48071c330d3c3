// chronicle — the Linux follower: sleeps on its own eventfd (and its FIFO, the fallback
// wake channel), with the writer's pidfd in the same epoll set so that a wait ends when
// the writer exits. See wake.h for the protocol (F1..F4) and registration.h for how the
// writer finds it.
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <utility>

#include "proc_linux.h"
#include "queue_files.h"
#include "registration.h"
#include "wake.h"

namespace chronicle {

using namespace format;

namespace {

class LinuxFollower final : public Follower {
  public:
    ~LinuxFollower() override {
        if (readers_fd_.valid()) (void)remove_registration(readers_fd_.get(), c_.name);
    }

    Status init(const Config& c) {
        c_ = c;
        readers_path_ = files::readers_path(c.dir);
        auto rfd = files::open_readers_dir(c.dirfd, c.dir);
        if (!rfd) return rfd.status();
        readers_fd_ = std::move(rfd.value());
        auto page = open_wake_page(c.dirfd, c.dir);
        if (!page) return page.status();
        wake_page_ = std::move(page.value());
        hint_ = &reinterpret_cast<WakePage*>(wake_page_.data())->sleepers;

        efd_ = fs::Fd(fs::above_stdio(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)));
        if (!efd_.valid())
            return Status::from_errno(errno, "cannot create eventfd for reader", c.name);
        // The FIFO fallback: recreate it (a crashed predecessor may have left one), keep it
        // open read-write so that it never reports EOF and opens for writing never block.
        const std::string fifo = files::reader_file(c.name, files::ReaderFile::fifo);
        ::unlinkat(readers_fd_.get(), fifo.c_str(), 0);
        if (::mkfifoat(readers_fd_.get(), fifo.c_str(), 0600) != 0) {
            return Status::from_errno(errno, "cannot create", fs::join(readers_path_, fifo));
        }
        // World-writable on purpose: a writer running as another user may wake us through
        // it; the worst anyone else can do is a spurious wake-up.
        ::fchmodat(readers_fd_.get(), fifo.c_str(), 0622, 0);
        auto ff =
            fs::open_at(readers_fd_.get(), readers_path_, fifo, O_RDWR, 0, fs::FileType::fifo);
        if (!ff) return ff.status();
        fifo_ = std::move(ff.value());

        epfd_ = fs::Fd(fs::above_stdio(::epoll_create1(EPOLL_CLOEXEC)));
        if (!epfd_.valid())
            return Status::from_errno(errno, "cannot create epoll for reader", c.name);
        for (int fd : {efd_.get(), fifo_.get()}) {
            epoll_event ev{};
            // The eventfd edge-triggered: every write by a writer is an edge (eventfd wakes
            // its waiters on each write), so the count is never read back — a wake-up costs
            // the follower one epoll_wait and no read(). 2^64 wake-ups would overflow it.
            ev.events = fd == efd_.get() ? EPOLLIN | EPOLLET : EPOLLIN;
            ev.data.fd = fd;
            if (::epoll_ctl(epfd_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
                return Status::from_errno(errno, "cannot watch wake descriptors of reader", c.name);
            }
        }
        track_writer();
        watch_own_cursor();

        EfdInfo e;
        e.name = c.name;
        e.pid = ::getpid();
        e.fd = efd_.get();
        e.start_time = fs::process_start_time(e.pid);
        e.eventfd_id = proc::eventfd_id(efd_.get());
        e.fifo = fifo;
        e.cursor = c.cursor_file;
        e.created_ns = fs::realtime_ns();
        e.ephemeral = files::is_ephemeral(c.name);
        // Published last, atomically: the writer sees a complete .efd or none.
        return publish_efd(readers_fd_.get(), readers_path_, e);
    }

    bool arm(const std::function<bool()>& has_data) override {
        if (armed_) return true;
        CursorWake* w = c_.wake;
        const uint64_t v = w->sleep_word.load(std::memory_order_relaxed);
        // F1: odd = asleep. Only this process writes sleep_word.
        if ((v & 1) == 0) w->sleep_word.store(v + 1, std::memory_order_seq_cst);
        // F2: tell the writer that someone sleeps.
        hint_->store(1, std::memory_order_seq_cst);
        // F3: pairs with the writer's fence W2 (wake.h): the re-check below cannot miss a
        // commit whose writer then missed our hint.
        std::atomic_thread_fence(std::memory_order_seq_cst);
        armed_ = true;
        if (has_data()) {
            disarm();
            return false;
        }
        return true;
    }

    void disarm() override {
        mark_awake();
        if (!armed_) return;
        armed_ = false;
        // Woken through fd() by the caller's own poll: ask epoll what fired (one call)
        // and drain only that.
        epoll_event evs[4];
        const int n = ::epoll_wait(epfd_.get(), evs, 4, 0);
        if (drain(evs, n)) drop_writer();
        // A wake-up without a tracked writer is usually a new writer announcing itself:
        // watch its pidfd, so that its exit wakes this follower too.
        if (!pidfd_.valid()) track_writer();
    }

    WaitResult wait(int64_t timeout_ns, const std::function<bool()>& has_data) override {
        const uint64_t deadline =
            timeout_ns < 0 ? UINT64_MAX : fs::monotonic_ns() + static_cast<uint64_t>(timeout_ns);
        for (;;) {
            if (has_data()) return WaitResult::ready;
            if (!arm(has_data)) return WaitResult::ready;
            int ms = -1;
            if (deadline != UINT64_MAX) {
                const uint64_t now = fs::monotonic_ns();
                if (now >= deadline) {
                    disarm();
                    return has_data() ? WaitResult::ready : WaitResult::timeout;
                }
                ms = static_cast<int>(
                    std::min<uint64_t>((deadline - now + 999999) / 1000000, INT_MAX));
            }
            epoll_event evs[4];
            const int n = ::epoll_wait(epfd_.get(), evs, 4, ms);
            mark_awake();
            armed_ = false;
            // The wake-up itself costs nothing more (the eventfd is edge-triggered);
            // nothing else is touched unless epoll said it fired.
            const bool writer_exit = drain(evs, n);
            if (writer_exit) {
                drop_writer();
                if (has_data()) return WaitResult::ready;
                // Several writers: the one writer.lock named left, others may still append
                // (it named another before it went). Watch that one instead.
                track_writer();
                if (!pidfd_.valid() && !recheck_) return WaitResult::writer_gone;
                continue;
            }
            if (queue_check_) {
                queue_check_ = false;
                if (has_data()) return WaitResult::ready;
                return WaitResult::queue_check;
            }
            if (recheck_fired_) {
                // A writer whose exit we cannot watch (see track_writer): ask the lock.
                recheck_fired_ = false;
                if (!files::query_writer(c_.dirfd, c_.dir).alive) {
                    set_recheck(false);
                    if (has_data()) return WaitResult::ready;
                    return WaitResult::writer_gone;
                }
                track_writer();
            }
            if (has_data()) return WaitResult::ready;
            // Woken without data: a new writer announcing itself, or a spurious wake.
            if (!pidfd_.valid()) track_writer();
        }
    }

    int fd() const override { return epfd_.get(); }

    bool take_queue_check() override { return std::exchange(queue_check_, false); }

    // True only while a writer holds the lock, and then its exit will make fd() readable:
    // either its pidfd is watched, or (a writer.lock we cannot use) a timer re-checks.
    bool writer_alive() override {
        if (pidfd_.valid() && !proc::exited(pidfd_.get())) return true;
        drop_writer();
        track_writer();
        if (pidfd_.valid()) return !proc::exited(pidfd_.get());
        return recheck_;
    }

  private:
    void mark_awake() {
        CursorWake* w = c_.wake;
        const uint64_t v = w->sleep_word.load(std::memory_order_relaxed);
        // Awake again (even). Relaxed: nothing is published with it; the writer only
        // compares values (it signals each odd value once, N2 in wake.h), and the next
        // sleep's F1 is a seq_cst store.
        if ((v & 1) != 0) w->sleep_word.store(v + 1, std::memory_order_relaxed);
    }

    // Handles the descriptors epoll reported (the FIFO is drained; the eventfd, edge-
    // triggered, needs nothing); returns whether the writer's pidfd fired
    // (the writer exited: its pidfd stays readable, so it must leave the set).
    bool drain(const epoll_event* evs, int n) {
        bool writer_exit = false;
        for (int i = 0; i < n; ++i) {
            const int fd = evs[i].data.fd;
            if (fd == efd_.get()) {
                c_.wake->wakeups.fetch_add(1, std::memory_order_relaxed);  // statistic
            } else if (fd == fifo_.get()) {
                char buf[256];
                while (::read(fifo_.get(), buf, sizeof buf) > 0) {
                }
                c_.wake->wakeups.fetch_add(1, std::memory_order_relaxed);  // statistic
            } else if (pidfd_.valid() && fd == pidfd_.get()) {
                writer_exit = true;
            } else if (inotify_.valid() && fd == inotify_.get()) {
                alignas(inotify_event) char buf[4096];
                while (::read(inotify_.get(), buf, sizeof buf) > 0) {
                }
                queue_check_ = true;
            } else if (timer_.valid() && fd == timer_.get()) {
                uint64_t ticks = 0;
                (void)!::read(timer_.get(), &ticks, sizeof ticks);
                recheck_fired_ = true;
            }
        }
        return writer_exit;
    }

    // Watches the current writer's pidfd, so that a wait ends when it exits. The lock is
    // the truth about liveness, writer.lock's text only names the process: a writer that
    // exits between the two is caught either way — an exited process's pidfd is readable
    // (epoll reports it at once), and a pid that no longer exists (ESRCH) sends us back to
    // the lock. When the holder cannot be watched (writer.lock damaged or being rewritten,
    // no pidfd_open), a timer re-checks the lock instead: a wait never outlives the writer
    // by more than kRecheckMs.
    void track_writer() {
        if (pidfd_.valid()) return;
        for (int attempt = 0; attempt < 3; ++attempt) {
            const files::WriterInfo w = files::query_writer(c_.dirfd, c_.dir);
            if (!w.alive) {
                set_recheck(false);
                return;
            }
            fs::Fd p = proc::open_process(w.pid, w.start_time);
            if (p.valid()) {
                epoll_event ev{};
                ev.events = EPOLLIN;
                ev.data.fd = p.get();
                if (::epoll_ctl(epfd_.get(), EPOLL_CTL_ADD, p.get(), &ev) == 0) {
                    pidfd_ = std::move(p);
                    set_recheck(false);
                    return;
                }
                break;
            }
            if (w.pid <= 0 || errno != ESRCH) break;  // not a vanished process: cannot watch
        }
        set_recheck(true);
    }

    // An inotify watch on this follower's own cursor file: unlinking it changes its link
    // count (IN_ATTRIB), which is how `rm -rf` of the queue — or of the queue and a new one
    // made in its place — reaches a follower that would otherwise wait for ever. (The
    // directory itself reports nothing while we hold it open: no IN_DELETE_SELF.) Costs
    // nothing while nothing happens; without inotify the follower just cannot tell.
    void watch_own_cursor() {
        inotify_ = fs::Fd(fs::above_stdio(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC)));
        if (!inotify_.valid()) return;
        const std::string path = fs::join(readers_path_, c_.cursor_file);
        if (::inotify_add_watch(inotify_.get(), path.c_str(),
                                IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_DONT_FOLLOW) < 0) {
            inotify_.reset();
            return;
        }
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = inotify_.get();
        if (::epoll_ctl(epfd_.get(), EPOLL_CTL_ADD, inotify_.get(), &ev) != 0) inotify_.reset();
    }

    static constexpr int kRecheckMs = 200;

    void set_recheck(bool on) {
        if (on == recheck_) return;
        if (on && !timer_.valid()) {
            timer_ = fs::Fd(
                fs::above_stdio(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)));
            if (!timer_.valid()) return;  // nothing better: writer_alive() stays a poll
            epoll_event ev{};
            ev.events = EPOLLIN;
            ev.data.fd = timer_.get();
            if (::epoll_ctl(epfd_.get(), EPOLL_CTL_ADD, timer_.get(), &ev) != 0) {
                timer_.reset();
                return;
            }
        }
        if (!timer_.valid()) return;
        itimerspec its{};
        if (on) {
            its.it_value.tv_nsec = kRecheckMs * 1000000L;
            its.it_interval = its.it_value;
        }
        ::timerfd_settime(timer_.get(), 0, &its, nullptr);
        recheck_ = on;
    }

    void drop_writer() {
        if (!pidfd_.valid()) return;
        ::epoll_ctl(epfd_.get(), EPOLL_CTL_DEL, pidfd_.get(), nullptr);
        pidfd_.reset();
    }

    Config c_;
    std::string readers_path_;
    fs::Fd readers_fd_;
    fs::Mapping wake_page_;
    std::atomic<uint32_t>* hint_ = nullptr;
    fs::Fd efd_;
    fs::Fd fifo_;
    fs::Fd epfd_;
    fs::Fd pidfd_;
    fs::Fd timer_;                // re-checks an unwatchable writer (set_recheck)
    fs::Fd inotify_;              // watches our own cursor file (watch_own_cursor)
    bool queue_check_ = false;    // it fired since the last look
    bool recheck_ = false;        // timer_ is armed
    bool recheck_fired_ = false;  // it fired since the last look
    bool armed_ = false;
};

}  // namespace

Result<std::unique_ptr<Follower>> Follower::create(const Config& c) {
    auto f = std::make_unique<LinuxFollower>();
    if (Status st = f->init(c); !st) return st;
    return std::unique_ptr<Follower>(std::move(f));
}

}  // namespace chronicle
