// chronicle — waiting by re-checking (see poll_wait.h).
#include "poll_wait.h"

#include <time.h>

#include <algorithm>

#include "fs.h"
#include "queue_files.h"

namespace chronicle {

namespace {
constexpr uint64_t kFirstNapNs = 100'000;
constexpr uint64_t kMaxNapNs = 50'000'000;
constexpr uint64_t kWriterCheckNs = 50'000'000;
}  // namespace

WaitResult poll_wait(int dirfd, std::string_view dir, int64_t timeout_ns,
                     const std::function<bool()>& has_data) {
    const uint64_t start = fs::monotonic_ns();
    const uint64_t deadline =
        timeout_ns < 0 ? UINT64_MAX : start + static_cast<uint64_t>(timeout_ns);
    const bool had_writer = files::query_writer(dirfd, dir).alive;
    uint64_t next_writer_check = start + kWriterCheckNs;
    uint64_t nap = kFirstNapNs;
    for (;;) {
        if (has_data()) return WaitResult::ready;
        const uint64_t now = fs::monotonic_ns();
        if (now >= deadline) return WaitResult::timeout;
        if (had_writer && now >= next_writer_check) {
            next_writer_check = now + kWriterCheckNs;
            if (!files::query_writer(dirfd, dir).alive) {
                return has_data() ? WaitResult::ready : WaitResult::writer_gone;
            }
        }
        const uint64_t sleep_ns = std::min(nap, deadline - now);
        timespec ts{static_cast<time_t>(sleep_ns / 1'000'000'000),
                    static_cast<long>(sleep_ns % 1'000'000'000)};
        ::nanosleep(&ts, nullptr);
        nap = std::min(nap * 2, kMaxNapNs);
    }
}

}  // namespace chronicle
