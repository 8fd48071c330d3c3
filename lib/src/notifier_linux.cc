// chronicle — Linux notifier: eventfd followers, inotify discovery, pidfd hand-over.
// See notifier.h for the roles and wake.h for the protocol and its proof.
//
// Descriptor hand-over. An eventfd cannot be opened by path from another process: opening
// /proc/<pid>/fd/<n> of an eventfd fails with ENXIO (anonymous inode; checked by
// notifier_test). The writer therefore takes a duplicate with pidfd_open + pidfd_getfd
// (Linux >= 5.6; needs ptrace-attach rights over the follower — same user and no Yama
// restriction). Before it ever writes to the duplicate it proves what it holds:
//   1. the pidfd names a live process whose start time (field 22 of /proc/<pid>/stat) is
//      the one in the .efd — a stale .efd whose pid was reused by an unrelated process
//      fails here, so nothing is fetched from it at all;
//   2. the fetched descriptor reads as "anon_inode:[eventfd]";
//   3. its "eventfd-id:" (Linux >= 6.x fdinfo) equals the one the follower published.
// When pidfd_getfd is refused (EPERM across users or under Yama ptrace_scope >= 1), the
// writer wakes the follower through readers/<name>.fifo, which the follower keeps open for
// reading (so opening it for writing never blocks, and fails with ENXIO once the follower
// is gone) and polls beside its eventfd.
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "cursor.h"
#include "lock.h"
#include "notifier.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

namespace chronicle {

using namespace format;

namespace {

int pidfd_open(int pid) {
    return fs::above_stdio(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
}
int pidfd_getfd(int pidfd, int fd) {
    return fs::above_stdio(static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd, fd, 0)));
}

// A pidfd of `pid` if it is the process that started at `start_time` (0: unknown, not
// checked); an invalid Fd otherwise. A pidfd names one process for good, so a pid reused
// after the start-time check cannot slip in: if the process exits after pidfd_open, the
// pidfd reports it (readable) instead of naming the newcomer.
fs::Fd open_process(int pid, uint64_t start_time) {
    if (pid <= 0) return {};
    fs::Fd p(pidfd_open(pid));
    if (!p.valid()) return {};
    if (start_time != 0 && fs::process_start_time(pid) != start_time) return {};
    return p;
}

bool process_exited(int pidfd) {
    pollfd p{pidfd, POLLIN, 0};
    return ::poll(&p, 1, 0) > 0;
}

// The "eventfd-id:" of one of our descriptors, 0 if the kernel does not report it.
uint64_t eventfd_id(int fd) {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
    const int f = ::open(path, O_RDONLY | O_CLOEXEC);
    if (f < 0) return 0;
    char buf[1024];
    const ssize_t n = ::read(f, buf, sizeof buf - 1);
    ::close(f);
    if (n <= 0) return 0;
    buf[n] = '\0';
    const char* p = std::strstr(buf, "eventfd-id:");
    if (p == nullptr) return 0;
    return std::strtoull(p + std::strlen("eventfd-id:"), nullptr, 10);
}

bool is_eventfd(int fd) {
    char path[64];
    char target[64] = {};
    std::snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    const ssize_t n = ::readlink(path, target, sizeof target - 1);
    return n > 0 && std::string_view(target, static_cast<size_t>(n)) == "anon_inode:[eventfd]";
}

bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() > suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// ------------------------------------------------------------------------ follower side

class LinuxFollower final : public Follower {
  public:
    ~LinuxFollower() override {
        if (readers_fd_.valid()) {
            ::unlinkat(readers_fd_.get(), (c_.name + std::string(kEfdSuffix)).c_str(), 0);
            ::unlinkat(readers_fd_.get(), (c_.name + std::string(kFifoSuffix)).c_str(), 0);
        }
    }

    Status init(const Config& c) {
        c_ = c;
        readers_path_ = fs::join(c.dir, kReadersDir);
        auto rfd = fs::open_at(c.dirfd, c.dir, kReadersDir, O_RDONLY | O_DIRECTORY);
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
        const std::string fifo = c.name + std::string(kFifoSuffix);
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
            ev.events = EPOLLIN;
            ev.data.fd = fd;
            if (::epoll_ctl(epfd_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) {
                return Status::from_errno(errno, "cannot watch wake descriptors of reader", c.name);
            }
        }
        track_writer();

        EfdInfo e;
        e.name = c.name;
        e.pid = ::getpid();
        e.fd = efd_.get();
        e.start_time = fs::process_start_time(e.pid);
        e.eventfd_id = eventfd_id(efd_.get());
        e.fifo = fifo;
        e.cursor = c.cursor_file;
        e.created_ns = fs::realtime_ns();
        e.ephemeral = !c.name.empty() && c.name[0] == '~';
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
            // The wake-up itself costs one read of the eventfd; nothing else is touched
            // unless epoll said it fired.
            const bool writer_exit = drain(evs, n);
            if (writer_exit) {
                drop_writer();
                if (has_data()) return WaitResult::ready;
                return WaitResult::writer_gone;
            }
            if (recheck_fired_) {
                // A writer whose exit we cannot watch (see track_writer): ask the lock.
                recheck_fired_ = false;
                if (!query_writer(c_.dirfd, c_.dir).alive) {
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

    // True only while a writer holds the lock, and then its exit will make fd() readable:
    // either its pidfd is watched, or (a writer.lock we cannot use) a timer re-checks.
    bool writer_alive() override {
        if (pidfd_.valid() && !process_exited(pidfd_.get())) return true;
        drop_writer();
        track_writer();
        if (pidfd_.valid()) return !process_exited(pidfd_.get());
        return recheck_;
    }

  private:
    void mark_awake() {
        CursorWake* w = c_.wake;
        const uint64_t v = w->sleep_word.load(std::memory_order_relaxed);
        // Awake again (even). Release: nothing depends on it beyond the writer's "once per
        // sleep" bookkeeping, which only compares values.
        if ((v & 1) != 0) w->sleep_word.store(v + 1, std::memory_order_release);
    }

    // Drains the descriptors epoll reported; returns whether the writer's pidfd fired
    // (the writer exited: its pidfd stays readable, so it must leave the set).
    bool drain(const epoll_event* evs, int n) {
        bool writer_exit = false;
        for (int i = 0; i < n; ++i) {
            const int fd = evs[i].data.fd;
            if (fd == efd_.get()) {
                uint64_t count = 0;
                if (::read(efd_.get(), &count, sizeof count) ==
                    static_cast<ssize_t>(sizeof count)) {
                    c_.wake->wakeups.fetch_add(1, std::memory_order_relaxed);  // statistic
                }
            } else if (fd == fifo_.get()) {
                char buf[256];
                while (::read(fifo_.get(), buf, sizeof buf) > 0) {
                }
                c_.wake->wakeups.fetch_add(1, std::memory_order_relaxed);  // statistic
            } else if (pidfd_.valid() && fd == pidfd_.get()) {
                writer_exit = true;
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
            const WriterInfo w = query_writer(c_.dirfd, c_.dir);
            if (!w.alive) {
                set_recheck(false);
                return;
            }
            fs::Fd p = open_process(w.pid, w.start_time);
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
    bool recheck_ = false;        // timer_ is armed
    bool recheck_fired_ = false;  // it fired since the last look
    bool armed_ = false;
};

// -------------------------------------------------------------------------- writer side

struct Entry {
    EfdInfo info;
    fs::Fd wake_fd;   // the follower's eventfd (a proven duplicate) or its FIFO's write end
    fs::Fd pidfd;     // the follower process: readable once it exits (the entry is dropped)
    uint64_t id = 0;  // epoll key of pidfd
    bool via_fifo = false;
    fs::Mapping cursor;  // read-only: the writer never writes into a follower's page
    const CursorWake* wake = nullptr;
    uint64_t last_signalled = 0;  // guarded by LinuxWriterNotifier::mu_

    void signal() const noexcept {
        if (via_fifo) {
            const char c = 'w';
            (void)!::write(wake_fd.get(), &c, 1);  // EAGAIN: wake-ups already pending
        } else {
            const uint64_t one = 1;
            (void)!::write(wake_fd.get(), &one, sizeof one);
        }
    }
};

class LinuxWriterNotifier final : public WriterNotifier {
  public:
    ~LinuxWriterNotifier() override {
        if (thread_.joinable()) {
            {
                std::lock_guard<std::mutex> g(mu_);
                stop_ = true;
            }
            kick();
            thread_.join();
        }
    }

    bool init(int dirfd, std::string_view dir, const NotifierOptions& o) {
        dirfd_ = dirfd;
        dir_ = std::string(dir);
        opts_ = o;
        readers_path_ = fs::join(dir_, kReadersDir);
        auto rfd = fs::open_at(dirfd, dir_, kReadersDir, O_RDONLY | O_DIRECTORY);
        if (!rfd) return false;
        readers_fd_ = std::move(rfd.value());
        auto page = open_wake_page(dirfd, dir_);
        if (!page) return false;
        wake_page_ = std::move(page.value());
        hint_ = &reinterpret_cast<WakePage*>(wake_page_.data())->sleepers;
        kick_ = fs::Fd(fs::above_stdio(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)));
        if (!kick_.valid()) return false;
        epfd_ = fs::Fd(fs::above_stdio(::epoll_create1(EPOLL_CLOEXEC)));
        if (!epfd_.valid()) return false;
        if (!watch(kick_.get(), kKickKey)) return false;
        // Watch first, then scan: a follower that registers in between is seen twice, never
        // missed. Without inotify (e.g. fs.inotify.max_user_instances reached) the thread
        // rescans periodically instead.
        inotify_ = fs::Fd(fs::above_stdio(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC)));
        if (inotify_.valid() &&
            (::inotify_add_watch(inotify_.get(), readers_path_.c_str(),
                                 IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE | IN_DELETE |
                                     IN_MOVED_FROM | IN_ONLYDIR) < 0 ||
             !watch(inotify_.get(), kInotifyKey))) {
            inotify_.reset();
        }
        rescan();
        thread_ = std::thread([this] { run(); });
        return true;
    }

    std::atomic<uint32_t>* hint() const { return hint_; }

    void wake_sleepers() noexcept override {
        // N1: pairs with the followers' F2 (see wake.h).
        hint_->exchange(0, std::memory_order_seq_cst);
        bool defer = false;
        {
            std::lock_guard<std::mutex> g(mu_);
            if (entries_.size() > kInlineWakes) {
                defer = true;
                // Many followers: the scan (N2) and the wake-ups move to the notifier thread,
                // so that an append's cost does not grow with the number of followers. The
                // kick (an eventfd write the thread reads) orders N1 before that scan.
                scan_requested_ = true;
            }
        }
        if (defer) {
            kick();
            return;
        }
        // Few followers: waking one costs about what waking the helper thread would.
        batch_.clear();
        scan(batch_);
        for (const auto& e : batch_) e->signal();
        batch_.clear();
    }

  private:
    static constexpr size_t kInlineWakes = 2;

    // N2 (wake.h): the registered followers asleep in a sleep not yet signalled.
    void scan(std::vector<std::shared_ptr<Entry>>& out) {
        {
            std::lock_guard<std::mutex> g(mu_);
            for (auto& [name, e] : entries_) {
                // N2: seq_cst, ordered after N1 (wake.h).
                const uint64_t w = e->wake->sleep_word.load(std::memory_order_seq_cst);
                if ((w & 1) != 0 && w != e->last_signalled) {
                    e->last_signalled = w;
                    out.push_back(e);
                }
            }
        }
        // Relaxed: a statistic.
        if (!out.empty()) page()->wakes_sent.fetch_add(out.size(), std::memory_order_relaxed);
    }
    // epoll keys of the notifier thread: the kick eventfd, inotify, then followers' pidfds.
    static constexpr uint64_t kKickKey = 0;
    static constexpr uint64_t kInotifyKey = 1;

    bool watch(int fd, uint64_t key) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = key;
        return ::epoll_ctl(epfd_.get(), EPOLL_CTL_ADD, fd, &ev) == 0;
    }

    WakePage* page() const { return reinterpret_cast<WakePage*>(wake_page_.data()); }

    void kick() noexcept {
        const uint64_t one = 1;
        (void)!::write(kick_.get(), &one, sizeof one);
    }

    // Builds a registry entry from readers/<efd_name>, or nullptr when it is unusable
    // (garbage JSON, dead follower, unprovable descriptor and no FIFO). Never fatal.
    std::shared_ptr<Entry> load(const std::string& efd_name) {
        auto text = fs::read_small_file(readers_fd_.get(), readers_path_, efd_name, 4096);
        if (!text) return nullptr;
        auto info = efd_from_json(text.value(), fs::join(readers_path_, efd_name));
        if (!info || info->name + std::string(kEfdSuffix) != efd_name) return nullptr;
        auto e = std::make_shared<Entry>();
        e->info = info.value();
        auto cfd = fs::open_at(readers_fd_.get(), readers_path_, e->info.cursor, O_RDONLY);
        if (!cfd) return nullptr;
        auto size = fs::file_size(cfd->get(), e->info.cursor);
        if (!size || size.value() != kCursorFileSize) return nullptr;
        // A follower holds its name's lock while it lives; no lock, no follower.
        auto held = lock::is_held(cfd->get(), e->info.cursor);
        if (!held || !held.value()) return nullptr;
        auto map = fs::Mapping::map(cfd->get(), kCursorFileSize, false, e->info.cursor);
        if (!map) return nullptr;
        e->cursor = std::move(map.value());
        if (reinterpret_cast<const CursorHeader*>(e->cursor.data())->magic != kCursorMagic) {
            return nullptr;
        }
        e->wake = reinterpret_cast<const CursorWake*>(e->cursor.data() + kCursorWakeOffset);
        // The follower's process, proved by its start time (a recycled pid fails here,
        // before anything is fetched). Kept: its exit drops the entry (run()).
        e->pidfd = open_process(e->info.pid, e->info.start_time);
        if (!e->pidfd.valid() || e->info.start_time == 0) return nullptr;
        if (process_exited(e->pidfd.get())) return nullptr;  // the stat may be another's
        if (!opts_.force_fifo) e->wake_fd = fetch_eventfd(e->pidfd.get(), e->info);
        if (!e->wake_fd.valid() && !e->info.fifo.empty()) {
            auto ff = fs::open_at(readers_fd_.get(), readers_path_, e->info.fifo, O_WRONLY, 0,
                                  fs::FileType::fifo);
            if (ff) {
                e->wake_fd = std::move(ff.value());
                e->via_fifo = true;
            }
        }
        if (!e->wake_fd.valid()) return nullptr;
        return e;
    }

    // pidfd_getfd with the proofs listed at the top of this file; an invalid Fd if any
    // step fails. `pidfd` is the follower's, already proved by start time.
    static fs::Fd fetch_eventfd(int pidfd, const EfdInfo& info) {
        fs::Fd fd(pidfd_getfd(pidfd, info.fd));
        if (!fd.valid()) return {};  // EPERM (ptrace rules) or the fd is gone
        if (!is_eventfd(fd.get())) return {};
        // Where the kernel reports eventfd ids, the published one must match: an .efd
        // without one (or with 0) proves nothing and is refused.
        const uint64_t id = eventfd_id(fd.get());
        if (id != 0 && id != info.eventfd_id) return {};
        return fd;
    }

    // Adds or replaces an entry, then the registration check (wake.h).
    void add(const std::string& efd_name, std::shared_ptr<Entry> e) {
        std::lock_guard<std::mutex> g(mu_);
        if (!e) {
            entries_.erase(efd_name);
            return;
        }
        e->id = next_id_++;
        if (!watch(e->pidfd.get(), e->id)) return;  // cannot see it die: do not hold it
        const uint64_t w = e->wake->sleep_word.load(std::memory_order_seq_cst);
        if ((w & 1) != 0) {
            e->last_signalled = w;
            e->signal();
        }
        entries_[efd_name] = std::move(e);
    }

    static bool is_efd_name(std::string_view n) {
        return !n.empty() && n[0] != '.' && ends_with(n, kEfdSuffix);
    }

    void rescan() {
        // Relaxed: a statistic.
        page()->rescans.fetch_add(1, std::memory_order_relaxed);
        auto names = fs::list_dir(readers_path_);
        if (!names) return;
        std::map<std::string, std::shared_ptr<Entry>> fresh;
        for (const auto& n : names.value()) {
            if (is_efd_name(n)) fresh[n] = load(n);
        }
        {
            std::lock_guard<std::mutex> g(mu_);
            for (auto it = entries_.begin(); it != entries_.end();) {
                it = fresh.count(it->first) != 0 ? std::next(it) : entries_.erase(it);
            }
        }
        for (auto& [n, e] : fresh) add(n, std::move(e));
    }

    void drain_inotify() {
        alignas(inotify_event) char buf[16384];
        for (;;) {
            const ssize_t len = ::read(inotify_.get(), buf, sizeof buf);
            if (len <= 0) return;
            for (ssize_t off = 0; off < len;) {
                const auto* ev = reinterpret_cast<const inotify_event*>(buf + off);
                off += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
                if ((ev->mask & IN_Q_OVERFLOW) != 0) {
                    rescan();  // events were lost: rebuild from the directory
                    continue;
                }
                if (ev->len == 0) continue;
                const std::string name(ev->name);
                if (!is_efd_name(name)) continue;
                if ((ev->mask & (IN_DELETE | IN_MOVED_FROM)) != 0) {
                    add(name, nullptr);
                } else {
                    add(name, load(name));
                }
            }
        }
    }

    // Drops the entries of followers that exited: their descriptors and mappings go with
    // them, so a writer that runs for months does not collect one per dead follower.
    void drop_exited(const std::vector<uint64_t>& ids) {
        std::vector<std::shared_ptr<Entry>> gone;  // destroyed outside the lock
        std::lock_guard<std::mutex> g(mu_);
        for (auto it = entries_.begin(); it != entries_.end();) {
            if (std::find(ids.begin(), ids.end(), it->second->id) != ids.end()) {
                ::epoll_ctl(epfd_.get(), EPOLL_CTL_DEL, it->second->pidfd.get(), nullptr);
                gone.push_back(std::move(it->second));
                it = entries_.erase(it);
            } else {
                ++it;
            }
        }
    }

    void run() {
        for (;;) {
            epoll_event evs[64];
            // Without inotify: rescan twice a second.
            const int n = ::epoll_wait(epfd_.get(), evs, 64, inotify_.valid() ? -1 : 500);
            std::vector<std::shared_ptr<Entry>> work;
            bool stop = false, scan_now = false;
            {
                std::lock_guard<std::mutex> g(mu_);
                scan_now = std::exchange(scan_requested_, false);
                stop = stop_;
            }
            bool kicked = false, notified = false;
            std::vector<uint64_t> exited;
            for (int i = 0; i < n; ++i) {
                const uint64_t key = evs[i].data.u64;
                if (key == kKickKey) {
                    kicked = true;
                } else if (key == kInotifyKey) {
                    notified = true;
                } else {
                    exited.push_back(key);
                }
            }
            uint64_t v;
            if (kicked) (void)!::read(kick_.get(), &v, sizeof v);
            // A scan asked for before a stop is still owed: a writer that appends and exits
            // at once (echo x | chronicle-append q) must not leave followers asleep.
            if (scan_now) scan(work);
            for (const auto& e : work) e->signal();
            work.clear();
            if (stop) return;
            if (!exited.empty()) drop_exited(exited);
            if (!inotify_.valid() && n == 0) rescan();
            if (notified) drain_inotify();
        }
    }

    int dirfd_ = -1;
    std::string dir_;
    std::string readers_path_;
    NotifierOptions opts_;
    fs::Fd readers_fd_;
    fs::Mapping wake_page_;
    std::atomic<uint32_t>* hint_ = nullptr;
    fs::Fd kick_;
    fs::Fd inotify_;
    fs::Fd epfd_;           // kick_, inotify_ and every entry's pidfd
    uint64_t next_id_ = 2;  // guarded by mu_; epoll keys of entries (0, 1: see run())
    std::thread thread_;
    std::mutex mu_;
    bool stop_ = false;                                      // guarded by mu_
    std::map<std::string, std::shared_ptr<Entry>> entries_;  // guarded by mu_
    bool scan_requested_ = false;                            // guarded by mu_
    std::vector<std::shared_ptr<Entry>> batch_;              // writer thread only
};

}  // namespace

Result<std::unique_ptr<Follower>> Follower::create(const Config& c) {
    auto f = std::make_unique<LinuxFollower>();
    if (Status st = f->init(c); !st) return st;
    return std::unique_ptr<Follower>(std::move(f));
}

std::unique_ptr<WriterNotifier> WriterNotifier::create(int dirfd, std::string_view dir,
                                                       const NotifierOptions& o,
                                                       std::atomic<uint32_t>*& hint) {
    auto n = std::make_unique<LinuxWriterNotifier>();
    if (!n->init(dirfd, dir, o)) {
        hint = nullptr;
        return nullptr;
    }
    hint = n->hint();
    return n;
}

}  // namespace chronicle
