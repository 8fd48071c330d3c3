// chronicle — portable notifier: no eventfd, no inotify, no pidfd. A waiting follower
// sleeps with exponential back-off (100 µs doubling to 50 ms) and re-checks; the writer
// notifies nobody (its hint pointer stays null, so a commit costs not even the fence).
// Selected on non-Linux systems, and on Linux with -DCHRONICLE_PORTABLE_NOTIFIER=ON so that
// CI runs the whole suite through it.
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>

#include "cursor.h"
#include "notifier.h"

namespace chronicle {

using format::CursorWake;

namespace {

class PortableFollower final : public Follower {
  public:
    explicit PortableFollower(const Config& c) : c_(c) {}
    ~PortableFollower() override {
        if (readers_fd_.valid()) {
            ::unlinkat(readers_fd_.get(), (c_.name + std::string(kEfdSuffix)).c_str(), 0);
        }
    }

    // Registers the follower (an .efd without a descriptor) so that chronicle-readers
    // shows it; the portable writer reads none of it.
    Status init() {
        auto rfd = fs::open_at(c_.dirfd, c_.dir, kReadersDir, O_RDONLY | O_DIRECTORY);
        if (!rfd) return rfd.status();
        readers_fd_ = std::move(rfd.value());
        EfdInfo e;
        e.name = c_.name;
        e.pid = ::getpid();
        e.fd = -1;
        e.start_time = fs::process_start_time(e.pid);
        e.cursor = c_.cursor_file;
        e.created_ns = fs::realtime_ns();
        e.ephemeral = !c_.name.empty() && c_.name[0] == '~';
        return publish_efd(readers_fd_.get(), fs::join(c_.dir, kReadersDir), e);
    }

    bool arm(const std::function<bool()>& has_data) override {
        CursorWake* w = c_.wake;
        const uint64_t v = w->sleep_word.load(std::memory_order_relaxed);
        if ((v & 1) == 0) w->sleep_word.store(v + 1, std::memory_order_relaxed);  // for reports
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

    WaitResult wait(int64_t timeout_ns, const std::function<bool()>& has_data) override {
        const uint64_t start = fs::monotonic_ns();
        const uint64_t deadline =
            timeout_ns < 0 ? UINT64_MAX : start + static_cast<uint64_t>(timeout_ns);
        const bool had_writer = query_writer(c_.dirfd, c_.dir).alive;
        uint64_t nap = 100'000;  // ns
        uint64_t next_writer_check = start + 50'000'000;
        if (!arm(has_data)) return WaitResult::ready;
        for (;;) {
            const uint64_t now = fs::monotonic_ns();
            if (now >= deadline) {
                disarm();
                return WaitResult::timeout;
            }
            const uint64_t sleep_ns = std::min(nap, deadline - now);
            timespec ts{static_cast<time_t>(sleep_ns / 1'000'000'000),
                        static_cast<long>(sleep_ns % 1'000'000'000)};
            ::nanosleep(&ts, nullptr);
            nap = std::min<uint64_t>(nap * 2, 50'000'000);
            if (has_data()) {
                disarm();
                c_.wake->wakeups.fetch_add(1, std::memory_order_relaxed);
                return WaitResult::ready;
            }
            if (had_writer && fs::monotonic_ns() >= next_writer_check) {
                next_writer_check = fs::monotonic_ns() + 50'000'000;
                if (!query_writer(c_.dirfd, c_.dir).alive) {
                    disarm();
                    return has_data() ? WaitResult::ready : WaitResult::writer_gone;
                }
            }
        }
    }

    int fd() const override { return -1; }
    bool writer_alive() override { return query_writer(c_.dirfd, c_.dir).alive; }

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

std::unique_ptr<WriterNotifier> WriterNotifier::create(int, std::string_view,
                                                       const NotifierOptions&,
                                                       std::atomic<uint32_t>*& hint) {
    hint = nullptr;
    return nullptr;
}

}  // namespace chronicle
