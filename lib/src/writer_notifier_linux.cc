// chronicle — the Linux writer notifier: finds followers in readers/ (inotify, else
// rescans), proves and keeps their wake descriptors, and wakes the sleeping ones after a
// commit (N1..N2 of the protocol in wake.h; the follower is follower_linux.cc).
// The followers it keeps, and how it proves their descriptors: follower_entry_linux.h.
#include <fcntl.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "follower_entry_linux.h"
#include "proc_linux.h"
#include "queue_files.h"
#include "registration.h"
#include "wake.h"

namespace chronicle {

using namespace format;

namespace {

using Entry = FollowerEntry;

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
            // A follower that registered after the last look and sleeps may have seen none
            // of this writer's commits; with other writers alive it is not woken by this
            // one's exit either (it watches the one writer.lock names). Its registration
            // check runs now: it is signalled if asleep (wake.h). One read when nothing
            // happened.
            if (inotify_.valid()) {
                if (!drain_inotify()) rescan();
            } else {
                rescan();
            }
        }
    }

    Status init(int dirfd, std::string_view dir, const NotifierOptions& o) {
        dirfd_ = dirfd;  // the writer's, open while this notifier lives
        dir_ = std::string(dir);
        opts_ = o;
        readers_path_ = files::readers_path(dir);
        auto rfd = files::open_readers_dir(dirfd, dir);
        if (!rfd) return rfd.status();
        readers_fd_ = std::move(rfd.value());
        auto page = open_wake_page(dirfd, dir);
        if (!page) return page.status();
        wake_page_ = std::move(page.value());
        hint_ = &reinterpret_cast<WakePage*>(wake_page_.data())->sleepers;
        kick_ = fs::Fd(fs::above_stdio(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)));
        if (!kick_.valid())
            return Status::from_errno(errno, "cannot create an eventfd to watch", readers_path_);
        epfd_ = fs::Fd(fs::above_stdio(::epoll_create1(EPOLL_CLOEXEC)));
        if (!epfd_.valid())
            return Status::from_errno(errno, "cannot create an epoll set to watch", readers_path_);
        if (!watch(kick_.get(), kKickKey)) {
            return Status::from_errno(errno, "cannot watch an eventfd for", readers_path_);
        }
        // Watch first, then scan: a follower that registers in between is seen twice, never
        // missed. Without inotify (e.g. fs.inotify.max_user_instances reached) the thread
        // rescans periodically instead (run()).
        inotify_ = fs::Fd(fs::above_stdio(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC)));
        if (inotify_.valid() && (!add_watch() || !watch(inotify_.get(), kInotifyKey))) {
            inotify_.reset();
        }
        rescan();
        thread_ = std::thread([this] {
            // SCHED_BATCH: woken by an append's kick, this thread must not preempt the
            // appending thread (a SCHED_NORMAL wakee may, on the waker's CPU). It runs on an
            // idle CPU at once, else at the next scheduling point. Measured with 64 parked
            // followers, appends every 1 ms on 2 vCPUs: append p99 155-215 us -> 4-6 us,
            // the followers' last wake-up unchanged (docs/DESIGN.md, 2026-11-30). A refusal
            // (a policy that forbids it) leaves it SCHED_NORMAL.
            sched_param sp{};
            (void)::sched_setscheduler(0, SCHED_BATCH, &sp);
            run();
        });
        return {};
    }

    std::atomic<uint32_t>* hint() const override { return hint_; }

    void wake_sleepers() noexcept override {
        // N1: pairs with the followers' F2 (see wake.h).
        hint_->exchange(0, std::memory_order_seq_cst);
        bool defer = false, asleep = false;
        {
            std::lock_guard<std::mutex> g(mu_);
            if (entries_.size() > kInlineWakes) {
                defer = true;
                // Many followers: the scan (N2) and the wake-ups move to the notifier thread,
                // so that an append's cost does not grow with the number of followers. The
                // scan runs after this critical section (serve() reads the request under
                // mu_), so N1 above is ordered before it.
                scan_requested_ = true;
                asleep = !notifier_awake_;
            }
        }
        if (defer) {
            // Kicked only when it sleeps (or is about to): an awake thread looks at
            // scan_requested_ again before it blocks (serve()), and kicking it anyway is a
            // system call, contended with its own wake-ups, for nothing. 64 followers,
            // appends every 20 us on 2 vCPUs: append p50 ~2 -> 0.34 us, p99 74-109 -> 7-8 us
            // (bench_followers --gap-us 20, docs/DESIGN.md 2026-12-01).
            if (asleep) kick();
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

    // A registry entry from readers/<efd_name>, or nullptr when it is unusable.
    std::shared_ptr<Entry> load(const std::string& efd_name) {
        return load_follower_entry(readers_fd_.get(), readers_path_, efd_name, opts_.force_fifo);
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
        // The registration check (wake.h): seq_cst like N2, so that a follower whose F1/F2
        // came before an N2 that could not see its .efd yet is signalled here.
        const uint64_t w = e->wake->sleep_word.load(std::memory_order_seq_cst);
        if ((w & 1) != 0) {
            e->last_signalled = w;
            e->signal();
        }
        entries_[efd_name] = std::move(e);
    }

    static bool is_efd_name(std::string_view n) {
        std::string reader;
        files::ReaderFile kind{};
        return files::parse_reader_file(n, reader, kind) && kind == files::ReaderFile::efd;
    }

    // readers/ replaced under us (`rm -rf q/readers; mkdir q/readers`): the descriptor
    // still names the old directory, where no follower registers any more. Reopens it;
    // true when it did.
    bool follow_readers_dir() {
        struct stat held {
        }, now{};
        if (::fstat(readers_fd_.get(), &held) != 0 ||
            ::fstatat(dirfd_, std::string(files::kReadersDir).c_str(), &now, AT_SYMLINK_NOFOLLOW) !=
                0 ||
            (held.st_ino == now.st_ino && held.st_dev == now.st_dev)) {
            return false;
        }
        auto r = files::open_readers_dir(dirfd_, dir_);
        if (!r) return false;
        readers_fd_ = std::move(r.value());
        return true;
    }

    void rescan() {
        // Relaxed: a statistic.
        page()->rescans.fetch_add(1, std::memory_order_relaxed);
        (void)follow_readers_dir();
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

    // Applies inotify's events to the registry; false when inotify stopped working
    // (readers/ removed or replaced, a read error).
    bool drain_inotify() {
        alignas(inotify_event) char buf[16384];
        for (;;) {
            const ssize_t len = ::read(inotify_.get(), buf, sizeof buf);
            if (len < 0) return errno == EAGAIN || errno == EINTR;
            if (len == 0) return false;
            for (ssize_t off = 0; off < len;) {
                const auto* ev = reinterpret_cast<const inotify_event*>(buf + off);
                off += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
                if ((ev->mask & IN_Q_OVERFLOW) != 0) {
                    rescan();  // events were lost: rebuild from the directory
                    continue;
                }
                // readers/ itself went (removed or renamed away): rescans take over, and
                // they follow a new readers/ (rescan()).
                if ((ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF)) != 0) return false;
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

    // The notifier thread. Discovery is inotify on readers/ while it works, rescans of
    // readers/ twice a second when it does not (as coreutils tail keeps
    // tail_forever_inotify apart from polling): watch_with_inotify() returns to fall back.
    void run() {
        if (inotify_.valid() && !watch_with_inotify()) return;
        inotify_.reset();
        rescan_periodically();
    }

    static constexpr uint64_t kRescanNs = 500'000'000;

    void rescan_periodically() {
        uint64_t next = fs::monotonic_ns() + kRescanNs;
        for (;;) {
            const uint64_t now = fs::monotonic_ns();
            if (now >= next) {
                rescan();
                next = now + kRescanNs;
            }
            if (!serve(static_cast<int>((next - now + 999'999) / 1'000'000))) return;
        }
    }

    // Returns false when the writer stops, true when inotify fails (then rescans take over).
    bool watch_with_inotify() {
        uint64_t next_check = fs::monotonic_ns() + kDirCheckNs;
        for (;;) {
            bool notified = false;
            if (!serve(static_cast<int>(kDirCheckNs / 1'000'000), &notified)) return false;
            if (notified && !drain_inotify()) {
                rescan();  // whatever it missed
                return true;
            }
            if (const uint64_t now = fs::monotonic_ns(); now >= next_check) {
                next_check = now + kDirCheckNs;
                // readers/ replaced: IN_DELETE_SELF does not come while anyone (this
                // notifier, a follower) holds the old directory open. Watch the new one.
                if (follow_readers_dir()) {
                    ::inotify_rm_watch(inotify_.get(), wd_);
                    if (!add_watch()) {
                        rescan();
                        return true;
                    }
                    rescan();
                }
            }
        }
    }

    // How often the watch checks that readers/ is still the directory it watches.
    static constexpr uint64_t kDirCheckNs = 1'000'000'000;

    bool add_watch() {
        wd_ = ::inotify_add_watch(inotify_.get(), readers_path_.c_str(),
                                  IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE | IN_DELETE |
                                      IN_MOVED_FROM | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR);
        return wd_ >= 0;
    }

    // One round of the notifier thread's epoll: the scans a writer asked for (N2 for many
    // followers), followers that exited, and whether inotify has events (`notified`).
    // Returns false when the writer stops.
    bool serve(int timeout_ms, bool* notified = nullptr) {
        {
            // From here an append that asks for a scan kicks; one that asked before is
            // served without blocking. Both under mu_ with wake_sleepers(), so no request
            // falls between the look and the sleep.
            std::lock_guard<std::mutex> g(mu_);
            if (scan_requested_ || stop_) {
                timeout_ms = 0;
            } else {
                notifier_awake_ = false;
            }
        }
        epoll_event evs[64];
        const int n = ::epoll_wait(epfd_.get(), evs, 64, timeout_ms);
        std::vector<std::shared_ptr<Entry>> work;
        bool stop = false, scan_now = false;
        {
            std::lock_guard<std::mutex> g(mu_);
            notifier_awake_ = true;
            scan_now = std::exchange(scan_requested_, false);
            stop = stop_;
        }
        bool kicked = false;
        std::vector<uint64_t> exited;
        for (int i = 0; i < n; ++i) {
            const uint64_t key = evs[i].data.u64;
            if (key == kKickKey) {
                kicked = true;
            } else if (key == kInotifyKey) {
                if (notified != nullptr) *notified = true;
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
        if (stop) return false;
        if (!exited.empty()) drop_exited(exited);
        return true;
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
    int wd_ = -1;           // inotify_'s watch of readers/
    fs::Fd epfd_;           // kick_, inotify_ and every entry's pidfd
    uint64_t next_id_ = 2;  // guarded by mu_; epoll keys of entries (0, 1: see run())
    std::thread thread_;
    std::mutex mu_;
    bool stop_ = false;                                      // guarded by mu_
    std::map<std::string, std::shared_ptr<Entry>> entries_;  // guarded by mu_
    bool scan_requested_ = false;                            // guarded by mu_
    bool notifier_awake_ = true;  // guarded by mu_: false while serve() blocks or is about to
    std::vector<std::shared_ptr<Entry>> batch_;  // writer thread only
};

}  // namespace

Result<std::unique_ptr<WriterNotifier>> WriterNotifier::create(int dirfd, std::string_view dir,
                                                               const NotifierOptions& o) {
    auto n = std::make_unique<LinuxWriterNotifier>();
    if (Status st = n->init(dirfd, dir, o); !st) {
        return Status(st.code(), "followers are not woken (they poll): " + st.message());
    }
    return std::unique_ptr<WriterNotifier>(std::move(n));
}

}  // namespace chronicle
