// chronicle — the producer page (see producers.h).
#include "producers.h"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "format.h"
#include "queue_files.h"

namespace chronicle {

namespace {
// How long lock() sleeps before it looks at the lock word again (see there).
constexpr long kLockSliceNs = 50'000'000;
#if defined(__SANITIZE_THREAD__)
// ThreadSanitizer intercepts pthread_mutex_timedlock, not clocklock; a step of the real-time
// clock only lengthens or shortens one slice.
constexpr clockid_t kLockClock = CLOCK_REALTIME;
#else
constexpr clockid_t kLockClock = CLOCK_MONOTONIC;
#endif
}  // namespace

static_assert(offsetof(ProducerPage, mutex) == kProducerMutexOffset);
static_assert(offsetof(ProducerPage, tail) == kProducerTailOffset);
static_assert(offsetof(ProducerPage, epoch) == kProducerEpochOffset);

uint64_t tail_check(const ProducerTail& t) noexcept {
    // FNV-1a over the words, finished with a multiply-xorshift: any change of one field
    // changes the result.
    uint64_t h = 0xcbf29ce484222325ull;
    for (uint64_t v : {t.seg_base, t.off, t.seq, t.last_ts, uint64_t{t.next_slot}}) {
        h = (h ^ v) * 0x100000001b3ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    return h ^ (h >> 33);
}

Result<ProducerPageMap> ProducerPageMap::open(int dirfd, std::string_view dir, bool fresh) {
    ProducerPageMap m;
    m.path_ = fs::join(dir, files::kProducers);
    auto fd = fs::open_at(dirfd, dir, files::kProducers, O_RDWR | O_CREAT, 0644);
    if (!fd) return fd.status();
    auto size = fs::file_size(fd->get(), m.path_);
    if (!size) return size.status();
    if (size.value() != format::kPageSize) {
        if (!fresh) {
            return Status(errc::corrupt, m.path_ + ": size " + std::to_string(size.value()) +
                                             " is not a producer page (stop every writer of "
                                             "the queue; the next one makes it afresh)");
        }
        if (::ftruncate(fd->get(), format::kPageSize) != 0) {
            return Status::from_errno(errno, "cannot size", m.path_);
        }
    }
    auto map = fs::Mapping::map(fd->get(), format::kPageSize, true, m.path_);
    if (!map) return map.status();
    m.map_ = std::move(map.value());
    ProducerPage* p = m.page();
    if (fresh) {
        // Nobody else maps it for writing (no other writer lives): start from zero, which
        // also forgets a mutex a crash or a reboot left locked.
        std::memset(static_cast<void*>(p), 0, format::kPageSize);
        pthread_mutexattr_t a;
        pthread_mutexattr_init(&a);
        pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
        pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
        const int rc = pthread_mutex_init(&p->mutex, &a);
        pthread_mutexattr_destroy(&a);
        if (rc != 0) return Status::from_errno(rc, "cannot initialise the append lock in", m.path_);
        p->version = 1;
        p->size = static_cast<uint32_t>(format::kPageSize);
        p->repair = 1;  // the tail is unknown until the first writer stores it
        p->magic = kProducerMagic;
    } else if (p->magic != kProducerMagic || p->version != 1 || p->size != format::kPageSize) {
        return Status(errc::corrupt, m.path_ +
                                         ": not a chronicle producer page (stop every writer "
                                         "of the queue; the next one makes it afresh)");
    }
    return m;
}

Result<bool> ProducerPageMap::lock() {
    // Waits in slices, never for ever: a robust mutex can lose a wake-up. When a holder is
    // killed between storing 0 into the lock word and its FUTEX_WAKE (or a woken waiter is
    // killed before it takes the lock), the kernel wakes the next waiter only if the word is
    // still 0 when it reaps the dead thread; a third writer that took the lock in between
    // took it without the waiters bit, and its unlock wakes nobody. A sleeper would then
    // wait for ever on a free lock (seen in cli_producers' kill -9 loop, DESIGN.md §4).
    // A slice that ends retries: a free lock is taken, a held one is waited on again with
    // the waiters bit set. Uncontended, this is the same single compare-and-swap.
    for (;;) {
        timespec at{};
        ::clock_gettime(kLockClock, &at);
        at.tv_nsec += kLockSliceNs;
        if (at.tv_nsec >= 1'000'000'000) {
            at.tv_nsec -= 1'000'000'000;
            ++at.tv_sec;
        }
#if defined(__SANITIZE_THREAD__)
        const int rc = pthread_mutex_timedlock(&page()->mutex, &at);
#else
        const int rc = pthread_mutex_clocklock(&page()->mutex, kLockClock, &at);
#endif
        if (rc != ETIMEDOUT) return taken(rc);
    }
}

Result<bool> ProducerPageMap::try_lock() {
    const int rc = pthread_mutex_trylock(&page()->mutex);
    if (rc == EBUSY) return Status(errc::busy, "another writer appends to " + path_);
    return taken(rc);
}

Result<bool> ProducerPageMap::taken(int rc) {
    if (rc == 0) return false;
    if (rc == EOWNERDEAD) {
        // We hold it. The tail may be behind the segments (a holder that died after its
        // commit) or ahead of garbage (one that died before): recover before appending.
        // Marked consistent now, with `repair` set, so that a recovery that fails (a full
        // disk) leaves the next holder to try again instead of a lock nobody can take.
        page()->repair = 1;
        pthread_mutex_consistent(&page()->mutex);
        return true;
    }
    return Status::from_errno(rc, "cannot take the append lock in", path_);
}

void ProducerPageMap::unlock() noexcept {
    pthread_mutex_unlock(&page()->mutex);
}

void ProducerPageMap::enter(int pid, uint64_t start_time) noexcept {
    for (ProducerSlot& s : page()->slots) {
        if (s.pid.load(std::memory_order_relaxed) != 0) {
            // A writer killed with kill -9 never left: reuse its slot.
            const int other = s.pid.load(std::memory_order_relaxed);
            if (other == pid ||
                fs::process_start_time(other) == s.start_time.load(std::memory_order_relaxed)) {
                continue;
            }
        }
        s.start_time.store(start_time, std::memory_order_relaxed);
        s.pid.store(pid, std::memory_order_release);
        return;
    }
    // A full table costs only the informational naming of writers.
}

void ProducerPageMap::leave(int pid, uint64_t start_time) noexcept {
    for (ProducerSlot& s : page()->slots) {
        if (s.pid.load(std::memory_order_relaxed) == pid &&
            s.start_time.load(std::memory_order_relaxed) == start_time) {
            s.pid.store(0, std::memory_order_release);
            return;
        }
    }
}

namespace {
std::vector<ProducerPageMap::Live> live_in(const ProducerPage* p, int except_pid) {
    std::vector<ProducerPageMap::Live> out;
    for (const ProducerSlot& s : p->slots) {
        const int pid = s.pid.load(std::memory_order_acquire);
        if (pid <= 0 || pid == except_pid) continue;
        const uint64_t st = s.start_time.load(std::memory_order_relaxed);
        if (st != 0 && fs::process_start_time(pid) == st) out.push_back({pid, st});
    }
    return out;
}
}  // namespace

std::vector<ProducerPageMap::Live> ProducerPageMap::live(int except_pid) const {
    return live_in(page(), except_pid);
}

std::vector<ProducerPageMap::Live> read_live_writers(int dirfd, std::string_view dir) {
    const std::string path = fs::join(dir, files::kProducers);
    auto fd = fs::open_at(dirfd, dir, files::kProducers, O_RDONLY);
    if (!fd) return {};
    auto size = fs::file_size(fd->get(), path);
    if (!size || size.value() != format::kPageSize) return {};
    auto map = fs::Mapping::map(fd->get(), format::kPageSize, false, path);
    if (!map) return {};
    const auto* p = reinterpret_cast<const ProducerPage*>(map->data());
    if (p->magic != kProducerMagic || p->version != 1) return {};
    return live_in(p, 0);
}

}  // namespace chronicle
