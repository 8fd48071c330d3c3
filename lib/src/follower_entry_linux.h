// chronicle — a follower as the writer's notifier keeps it: its registration, a proven
// wake descriptor, its pidfd and a read-only view of its cursor page's wake area.
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
#pragma once

#include <unistd.h>

#include <cstdint>
#include <memory>
#include <string>

#include "format.h"
#include "fs.h"
#include "registration.h"

namespace chronicle {

struct FollowerEntry {
    EfdInfo info;
    fs::Fd wake_fd;   // the follower's eventfd (a proven duplicate) or its FIFO, read-write
    fs::Fd pidfd;     // the follower process: readable once it exits (the entry is dropped)
    uint64_t id = 0;  // epoll key of pidfd
    bool via_fifo = false;
    fs::Mapping cursor;  // read-only: the writer never writes into a follower's page
    const format::CursorWake* wake = nullptr;
    uint64_t last_signalled = 0;  // guarded by the notifier's mutex

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

// Builds an entry from readers/<efd_name>, or nullptr when it is unusable (garbage JSON, a
// dead follower, an unprovable descriptor and no FIFO). Never fatal. `force_fifo`: skip
// pidfd_getfd and wake through the FIFO.
std::shared_ptr<FollowerEntry> load_follower_entry(int readers_fd, const std::string& readers_path,
                                                   const std::string& efd_name, bool force_fifo);

}  // namespace chronicle
