// chronicle — a follower as the writer's notifier keeps it (see follower_entry_linux.h).
#include "follower_entry_linux.h"

#include <fcntl.h>

#include "lock.h"
#include "proc_linux.h"
#include "queue_files.h"

namespace chronicle {

using namespace format;

namespace {

// pidfd_getfd with the proofs listed in follower_entry_linux.h; an invalid Fd if any
// step fails. `pidfd` is the follower's, already proved by start time.
fs::Fd fetch_eventfd(int pidfd, const EfdInfo& info) {
    fs::Fd fd(proc::pidfd_getfd(pidfd, info.fd));
    if (!fd.valid()) return {};  // EPERM (ptrace rules) or the fd is gone
    if (!proc::is_eventfd(fd.get())) return {};
    // Where the kernel reports eventfd ids, the published one must match: an .efd
    // without one (or with 0) proves nothing and is refused.
    const uint64_t id = proc::eventfd_id(fd.get());
    if (id != 0 && id != info.eventfd_id) return {};
    return fd;
}

}  // namespace

std::shared_ptr<FollowerEntry> load_follower_entry(int readers_fd, const std::string& readers_path,
                                                   const std::string& efd_name, bool force_fifo) {
    auto text = fs::read_small_file(readers_fd, readers_path, efd_name, 4096);
    if (!text) return nullptr;
    auto info = efd_from_json(text.value(), fs::join(readers_path, efd_name));
    if (!info || files::reader_file(info->name, files::ReaderFile::efd) != efd_name) {
        return nullptr;
    }
    auto e = std::make_shared<FollowerEntry>();
    e->info = info.value();
    auto cfd = fs::open_at(readers_fd, readers_path, e->info.cursor, O_RDONLY);
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
    e->pidfd = proc::open_process(e->info.pid, e->info.start_time);
    if (!e->pidfd.valid() || e->info.start_time == 0) return nullptr;
    if (proc::exited(e->pidfd.get())) return nullptr;  // the stat may be another's
    if (!force_fifo) e->wake_fd = fetch_eventfd(e->pidfd.get(), e->info);
    if (!e->wake_fd.valid() && !e->info.fifo.empty()) {
        // Read-write, though the writer only writes: holding a read end itself, it never
        // writes into a FIFO without readers, which raises SIGPIPE and kills the writer's
        // process (the follower can die between the check above and a wake-up; found by
        // CI, hostile_test). A dead follower's FIFO then only buffers a byte or two.
        auto ff =
            fs::open_at(readers_fd, readers_path, e->info.fifo, O_RDWR, 0, fs::FileType::fifo);
        if (ff) {
            e->wake_fd = std::move(ff.value());
            e->via_fifo = true;
        }
    }
    if (!e->wake_fd.valid()) return nullptr;
    return e;
}

}  // namespace chronicle
