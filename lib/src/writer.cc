// chronicle — opening a queue for writing: the directory check, writer.lock, recovery, the
// wake hook; and the public Writer API (see writer.h; writer_append.cc appends).
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "lock.h"
#include "writer_impl.h"

namespace chronicle {

using namespace format;

namespace {

Status check_is_queue_dir(std::string_view dir, bool create, bool& fresh) {
    auto names = fs::list_dir(dir);
    if (!names) return names.status();
    bool queue_files = false;
    bool other = false;
    for (const auto& n : names.value()) {
        if (files::is_queue_entry(n)) {
            queue_files = true;
        } else {
            other = true;
        }
    }
    fresh = !queue_files;
    if (!queue_files && other) {
        return Status(
            errc::invalid_argument,
            std::string(dir) + " is not a chronicle queue (the directory holds other files)");
    }
    if (!queue_files && !create) {
        return Status(errc::not_found, std::string(dir) + " is not a chronicle queue");
    }
    return {};
}

}  // namespace

Status Writer::Impl::take_lock() {
    auto fd = fs::open_at(dirfd_.get(), dir_, files::kWriterLock, O_RDWR | O_CREAT, 0644);
    if (!fd) return fd.status();
    lockfd_ = std::move(fd.value());
    const std::string lock_path = fs::join(dir_, files::kWriterLock);
    if (Status st = lock::try_exclusive(lockfd_.get(), lock_path); !st) {
        if (st.code() != errc::busy) return st;
        std::string who;
        auto text = fs::read_small_file(dirfd_.get(), dir_, files::kWriterLock);
        if (text) {
            const int pid = files::writer_lock_from_json(text.value()).pid;
            if (pid > 0) who = " (pid " + std::to_string(pid) + ")";
        }
        return Status(errc::busy, "queue " + dir_ + " already has a writer" + who);
    }
    lock_text_.pid = ::getpid();
    lock_text_.start_time = fs::process_start_time(lock_text_.pid);
    lock_text_.started_ns = fs::realtime_ns();
    return files::write_writer_lock(lockfd_.get(), dir_, lock_text_);
}

Status Writer::Impl::settle_retention(bool fresh, const std::optional<RetentionLimits>& wanted) {
    if (!wanted) return {};
    if (fresh) return write_retention(dir_, *wanted);
    auto have = read_retention(dir_);
    if (!have) return have.status();
    if (have.value() == *wanted) return {};
    return Status(errc::invalid_argument, "queue " + dir_ + " exists with retention " +
                                              describe(have.value()) + ", not " +
                                              describe(*wanted) +
                                              " (limits of an existing queue are changed with "
                                              "chronicle-queue set)");
}

void Writer::Impl::adopt(Tail&& t) {
    seg_ = std::move(t.seg);
    off_ = t.off;
    seq_ = t.seq;
    last_ts_ = t.last_ts;
    set_slot(t.next_slot);
    hw_ = seg_.header()->written_hw.load(std::memory_order_relaxed);
    set_limits();
    pretouch_.switch_to(seg_, off_);
}

Status Writer::Impl::open(std::string_view dir, const WriterOptions& o) {
    dir_ = std::string(dir);
    if (o.create && ::mkdir(dir_.c_str(), 0755) != 0 && errno != EEXIST) {
        return Status::from_errno(errno, "cannot create queue directory", dir_);
    }
    auto dfd = files::open_queue_dir(dir_);
    if (!dfd) return dfd.status();
    dirfd_ = std::move(dfd.value());
    bool fresh = false;
    if (Status st = check_is_queue_dir(dir_, o.create, fresh); !st) return st;
    if (::mkdirat(dirfd_.get(), std::string(files::kReadersDir).c_str(), 0755) != 0 &&
        errno != EEXIST) {
        return Status::from_errno(errno, "cannot create", fs::join(dir_, files::kReadersDir));
    }
    if (Status st = take_lock(); !st) return st;
    if (auto id = files::ensure_queue_id(dirfd_.get(), dir_); !id) return id.status();
    if (Status st = settle_retention(fresh, o.retention); !st) return st;

    auto geo = SegmentGeometry::for_size(o.segment_size);
    if (!geo) return geo.status();
    // An existing queue keeps its segment size: take it from its first segment.
    auto bases = files::list_segments(dir_);
    if (!bases) return bases.status();
    if (!bases->empty()) {
        auto first = Segment::open(dirfd_.get(), dir_, bases->back(), false);
        if (!first) return first.status();
        geo = SegmentGeometry::for_size(first->size());
        if (!geo) return geo.status();
    }
    geo_ = geo.value();
    pretouch_.enable(o.pretouch);
    sync_on_commit_ = o.sync == Sync::on_commit;
    durable_ = o.durable || sync_on_commit_;
    pretouch_.configure(dirfd_.get(), dir_, geo_);
    auto tail = recover(dirfd_.get(), dir_, geo_);
    if (!tail) return tail.status();
    adopt(std::move(tail.value()));
    NotifierOptions no;
    no.force_fifo = o.wake_via_fifo;
    if (Status st = wake_.open(dirfd_.get(), dir_, no); !st) {
        // Not fatal: followers notice records by their periodic re-check. Said in
        // writer.lock, where chronicle-readers shows it.
        lock_text_.notifier = st.message();
        (void)files::write_writer_lock(lockfd_.get(), dir_, lock_text_);
    }
    retainer_.start(dirfd_.get(), dir_);
    return {};
}

Writer::Impl::~Impl() {
    if (claimed_) abort();
    if (explicit_batch_) abort_batch();
}

Status Writer::Impl::sync() {
    // Segments a batch left behind (still mapped in held_) were not synced at the roll.
    for (const Segment& s : held_) ::msync(s.bytes(), s.size(), MS_SYNC);
    const uint64_t from = synced_off_ / kPageSize * kPageSize;
    const uint64_t end =
        std::min<uint64_t>((off_ + kPageSize - 1) / kPageSize * kPageSize, seg_.size());
    if (end > from && ::msync(seg_.bytes() + from, end - from, MS_SYNC) != 0) {
        return Status::from_errno(errno, "cannot sync", seg_.path());
    }
    synced_off_ = off_;
    return {};
}

// ---------------------------------------------------------------------------------------

Writer::Writer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Writer::~Writer() = default;

Result<std::unique_ptr<Writer>> Writer::open(std::string_view dir, const WriterOptions& options) {
    auto impl = std::make_unique<Impl>();
    if (Status st = impl->open(dir, options); !st) return st;
    return std::unique_ptr<Writer>(new Writer(std::move(impl)));
}

Result<uint64_t> Writer::append(std::span<const std::byte> payload) {
    return impl_->append(payload);
}
Result<std::span<std::byte>> Writer::claim(size_t max_len) {
    return impl_->claim(max_len);
}
Result<uint64_t> Writer::commit(size_t len) {
    return impl_->commit(len);
}
void Writer::abort() noexcept {
    impl_->abort();
}
Status Writer::begin_batch(size_t expected_bytes) {
    return impl_->begin_batch(expected_bytes);
}
Status Writer::commit_batch() {
    return impl_->commit_batch();
}
void Writer::abort_batch() noexcept {
    impl_->abort_batch();
}
Status Writer::sync() {
    return impl_->sync();
}
uint64_t Writer::next_seq() const noexcept {
    return impl_->next_seq();
}
uint64_t Writer::max_payload() const noexcept {
    return impl_->geometry().max_payload();
}
uint64_t Writer::segment_size() const noexcept {
    return impl_->geometry().segment_size;
}
const std::string& Writer::dir() const noexcept {
    return impl_->dir();
}

}  // namespace chronicle
