// chronicle — portable notifier: no eventfd, no inotify, no pidfd. A waiting follower
// re-checks with back-off (poll_wait.h); the writer notifies nobody (WakeHook keeps no
// hint, so a commit costs not even the fence). Selected on non-Linux systems, and on Linux
// with -DCHRONICLE_PORTABLE_NOTIFIER=ON so that CI runs the whole suite through it.
#include <unistd.h>

#include "poll_wait.h"
#include "queue_files.h"
#include "registration.h"
#include "wake.h"

namespace chronicle {

using format::CursorWake;

namespace {

class PortableFollower final : public Follower {
  public:
    explicit PortableFollower(const Config& c) : c_(c) {}
    ~PortableFollower() override {
        if (readers_fd_.valid()) (void)remove_registration(readers_fd_.get(), c_.name);
    }

    // Registers the follower (an .efd without a descriptor) so that chronicle-readers
    // shows it; the portable writer reads none of it.
    Status init() {
        auto rfd = files::open_readers_dir(c_.dirfd, c_.dir);
        if (!rfd) return rfd.status();
        readers_fd_ = std::move(rfd.value());
        EfdInfo e;
        e.name = c_.name;
        e.pid = ::getpid();
        e.fd = -1;
        e.start_time = fs::process_start_time(e.pid);
        e.cursor = c_.cursor_file;
        e.created_ns = fs::realtime_ns();
        e.ephemeral = files::is_ephemeral(c_.name);
        return publish_efd(readers_fd_.get(), files::readers_path(c_.dir), e);
    }

    bool arm(const std::function<bool()>& has_data) override {
        CursorWake* w = c_.wake;
        const uint64_t v = w->sleep_word.load(std::memory_order_relaxed);
        // Relaxed: nobody wakes a portable follower; the word only feeds reports.
        if ((v & 1) == 0) w->sleep_word.store(v + 1, std::memory_order_relaxed);
        if (has_data()) {
            disarm();
            return false;
        }
        return true;
    }

    void disarm() override {
        CursorWake* w = c_.wake;
        const uint64_t v = w->sleep_word.load(std::memory_order_relaxed);
        if ((v & 1) != 0) w->sleep_word.store(v + 1, std::memory_order_relaxed);
    }

    bool take_queue_check() override { return false; }

    WaitResult wait(int64_t timeout_ns, const std::function<bool()>& has_data) override {
        if (!arm(has_data)) return WaitResult::ready;
        const WaitResult r = poll_wait(c_.dirfd, c_.dir, timeout_ns, has_data);
        disarm();
        // Relaxed: a statistic.
        if (r == WaitResult::ready) c_.wake->wakeups.fetch_add(1, std::memory_order_relaxed);
        return r;
    }

    int fd() const override { return -1; }
    bool writer_alive() override { return files::query_writer(c_.dirfd, c_.dir).alive; }

  private:
    Config c_;
    fs::Fd readers_fd_;
};

}  // namespace

Result<std::unique_ptr<Follower>> Follower::create(const Config& c) {
    auto f = std::make_unique<PortableFollower>(c);
    if (Status st = f->init(); !st) return st;
    return std::unique_ptr<Follower>(std::move(f));
}

// Nobody to wake, by design: followers poll. Not a failure (nothing to report).
Result<std::unique_ptr<WriterNotifier>> WriterNotifier::create(int, std::string_view,
                                                               const NotifierOptions&) {
    return std::unique_ptr<WriterNotifier>();
}

}  // namespace chronicle
