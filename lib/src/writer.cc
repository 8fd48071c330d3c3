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

Status Writer::Impl::busy(bool exclusive_holder) {
    std::string who;
    auto text = fs::read_small_file(dirfd_.get(), dir_, files::kWriterLock);
    if (text) {
        const int pid = files::writer_lock_from_json(text.value()).pid;
        if (pid > 0) who = " (pid " + std::to_string(pid) + ")";
    }
    return Status(errc::busy, exclusive_holder ? "queue " + dir_ + " has an exclusive writer" + who
                                               : "queue " + dir_ + " already has a writer" + who);
}

Status Writer::Impl::take_lock(const WriterOptions& o) {
    auto fd = fs::open_at(dirfd_.get(), dir_, files::kWriterLock, O_RDWR | O_CREAT, 0644);
    if (!fd) return fd.status();
    lockfd_ = std::move(fd.value());
    const std::string lock_path = fs::join(dir_, files::kWriterLock);
    lock_text_.pid = ::getpid();
    lock_text_.start_time = fs::process_start_time(lock_text_.pid);
    lock_text_.started_ns = fs::realtime_ns();
    shared_ = !o.exclusive;
    if (!shared_) {
        // The whole file: conflicts with every shared writer's locks too.
        if (Status st = lock::range(lockfd_.get(), lock_path, lock::Kind::write, 0, 0, o.wait_ms);
            !st) {
            return st.code() == errc::busy ? busy(false) : st;
        }
        owns_text_ = true;
        return files::write_writer_lock(lockfd_.get(), dir_, lock_text_);
    }
    if (Status st = lock::range(lockfd_.get(), lock_path, lock::Kind::read, files::kLockByteMode, 1,
                                o.wait_ms);
        !st) {
        return st.code() == errc::busy ? busy(true) : st;
    }
    // One writer joins at a time (released at the end of open(), see join()).
    return lock::range(lockfd_.get(), lock_path, lock::Kind::write, files::kLockByteJoin, 1,
                       lock::kForever);
}

Status Writer::Impl::join(bool alone) {
    const std::string lock_path = fs::join(dir_, files::kWriterLock);
    auto page = ProducerPageMap::open(dirfd_.get(), dir_, alone);
    if (!page) return page.status();
    producers_.emplace(std::move(page.value()));
    if (alone) {
        // Recovered from the segments just now (open()): the page starts from that tail.
        ProducerPage* pg = producers_->page();
        pg->tail = sealed_tail(seg_.base(), off_, seq_, last_ts_, next_slot_);
        pg->repair = 0;
        epoch_ = pg->epoch = 1;
    } else if (Status st = hold(/*try_only=*/true); st) {
        // Adopted the tail now, so that next_seq() means something at once. When another
        // writer holds the lock (a long --atomic batch) the first commit adopts it: joining
        // (writer.lock byte 1) must not wait for the append lock, or a writer that leaves
        // meanwhile would too.
        let_go();
    } else if (st.code() != errc::busy) {
        return st;
    }
    producers_->enter(lock_text_.pid, lock_text_.start_time);
    // writer.lock's text names one live writer, for followers to watch and for busy
    // messages: ours when we are alone or the one named there is gone.
    bool name_us = alone;
    if (!alone) {
        auto text = fs::read_small_file(dirfd_.get(), dir_, files::kWriterLock);
        const files::WriterLockText t =
            text ? files::writer_lock_from_json(text.value()) : files::WriterLockText{};
        name_us = t.pid <= 0 || t.start_time == 0 || fs::process_start_time(t.pid) != t.start_time;
    }
    if (name_us) {
        if (Status st = files::write_writer_lock(lockfd_.get(), dir_, lock_text_); !st) return st;
        owns_text_ = true;
    }
    // Present for our life (a read lock: the next joiner learns it is not alone).
    if (Status st = lock::range(lockfd_.get(), lock_path, lock::Kind::read, files::kLockBytePresent,
                                1, lock::kForever);
        !st) {
        return st;
    }
    lock::unlock_range(lockfd_.get(), files::kLockByteJoin, 1);
    return {};
}

void Writer::Impl::leave() noexcept {
    if (!shared_ || !producers_ || !lockfd_.valid()) return;
    const std::string lock_path = fs::join(dir_, files::kWriterLock);
    if (!lock::range(lockfd_.get(), lock_path, lock::Kind::write, files::kLockByteJoin, 1,
                     lock::kForever)) {
        return;
    }
    producers_->leave(lock_text_.pid, lock_text_.start_time);
    if (owns_text_) {
        // Followers watch the process writer.lock names: name another live writer, so
        // that they do not take our exit for the last writer's.
        const auto others = producers_->live(lock_text_.pid);
        if (!others.empty()) {
            files::WriterLockText t;
            t.pid = others.front().pid;
            t.start_time = others.front().start_time;
            t.started_ns = fs::realtime_ns();
            (void)files::write_writer_lock(lockfd_.get(), dir_, t);
        }
    }
    lock::unlock_range(lockfd_.get(), files::kLockByteJoin, 1);
}

Status Writer::Impl::hold(bool try_only) {
    if (!shared_ || holding_) return {};
    auto died = try_only ? producers_->try_lock() : producers_->lock();
    if (!died) return died.status();
    holding_ = true;
    ProducerPage* pg = producers_->page();
    Status st;
    if (pg->repair != 0) {
        st = Status(errc::corrupt, "repair");
    } else if (pg->epoch != epoch_ || !seg_.valid()) {
        st = adopt_page(pg->tail);
        if (st) epoch_ = pg->epoch;
    }
    if (!st) {
        // A holder died holding the lock, or the page's tail cannot be right: the
        // segments are the truth (recovery clears what the dead holder left uncommitted).
        auto t = recover(dirfd_.get(), dir_, geo_);
        if (!t) {
            holding_ = false;
            producers_->unlock();
            return t.status();
        }
        adopt(std::move(t.value()));
        synced_off_ = 0;
        pg->tail = sealed_tail(seg_.base(), off_, seq_, last_ts_, next_slot_);
        pg->repair = 0;
        epoch_ = ++pg->epoch;
    }
    turn_base_ = seg_.base();
    turn_off_ = off_;
    return {};
}

Status Writer::Impl::adopt_page(const ProducerTail& t) {
    const std::string& page = producers_->path();
    if (t.check != tail_check(t)) return Status(errc::corrupt, page + ": its tail is damaged");
    if (!seg_.valid() || t.seg_base != seg_.base()) {
        auto s = Segment::open(dirfd_.get(), dir_, t.seg_base, true);
        if (!s) return s.status();
        if (s->size() != geo_.segment_size) {
            return Status(errc::corrupt, page + ": names a segment of another size");
        }
        pretouch_.detach();  // before the old mapping goes
        seg_ = std::move(s.value());
        synced_off_ = 0;
        pretouch_.switch_to(seg_, t.off);
    }
    if (t.off < seg_.data_begin() || t.off % 8 != 0 || t.off + kRecordHeaderSize > seg_.size() ||
        t.seq < seg_.base() || t.next_slot > seg_.slots() ||
        seg_.record(t.off)->state.load(std::memory_order_acquire) != kStateEmpty) {
        return Status(errc::corrupt, page + ": its tail is not the end of the log");
    }
    set_tail(t.off, t.seq, t.last_ts, t.next_slot);
    pretouch_.advance(off_);
    return {};
}

void Writer::Impl::set_tail(uint64_t off, uint64_t seq, uint64_t last_ts, uint32_t slot) {
    off_ = off;
    seq_ = seq;
    last_ts_ = last_ts;
    set_slot(slot);
    hw_ = seg_.header()->written_hw.load(std::memory_order_relaxed);
    set_limits();
}

void Writer::Impl::let_go() noexcept {
    if (!holding_) return;
    ProducerPage* pg = producers_->page();
    if (seg_.base() != turn_base_ || off_ != turn_off_) {
        pg->tail = sealed_tail(seg_.base(), off_, seq_, last_ts_, next_slot_);
        epoch_ = ++pg->epoch;
    }
    holding_ = false;
    producers_->unlock();
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
    pretouch_.detach();  // before the old mapping goes
    seg_ = std::move(t.seg);
    set_tail(t.off, t.seq, t.last_ts, t.next_slot);
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
    if (Status st = take_lock(o); !st) return st;
    // A shared writer that can take byte 2 for writing is alone: nobody appends, so it
    // recovers the queue from its segments as an exclusive writer does; otherwise it
    // adopts the tail the producer page holds (join()).
    bool alone = !shared_;
    if (shared_) {
        Status st = lock::range(lockfd_.get(), fs::join(dir_, files::kWriterLock),
                                lock::Kind::write, files::kLockBytePresent, 1, 0);
        if (!st && st.code() != errc::busy) return st;
        alone = static_cast<bool>(st);
    }
    if (auto id = files::ensure_queue_id(dirfd_.get(), dir_); !id) return id.status();
    if (Status st = settle_retention(fresh, o.retention); !st) return st;

    auto geo = SegmentGeometry::for_size(o.segment_size);
    if (!geo) return geo.status();
    // An existing queue keeps its segment size: take it from its newest segment. With
    // other writers appending, the one listed may be gone by the time it is opened (an
    // uncommitted batch's segment removed by its abort or by recovery after its writer
    // died; the oldest by retention): list again.
    for (int attempt = 0;; ++attempt) {
        auto bases = files::list_segments(dir_);
        if (!bases) return bases.status();
        if (bases->empty()) break;
        auto newest = Segment::open(dirfd_.get(), dir_, bases->back(), false);
        if (!newest && newest.status().code() == errc::not_found && attempt < 100) continue;
        if (!newest) return newest.status();
        geo = SegmentGeometry::for_size(newest->size());
        if (!geo) return geo.status();
        break;
    }
    geo_ = geo.value();
    pretouch_.enable(o.pretouch);
    sync_on_commit_ = o.sync == Sync::on_commit;
    durable_ = o.durable || sync_on_commit_;
    pretouch_.configure(dirfd_.get(), dir_, geo_);
    if (shared_) {
        // Each shared writer prepares its next segment under a name of its own; the one
        // that rolls renames its own into place under the append lock.
        static std::atomic<unsigned> writers{0};
        pretouch_.set_prepare_name(files::prepared_segment_tmp(
            lock_text_.pid, writers.fetch_add(1, std::memory_order_relaxed)));
    }
    if (alone) {
        auto tail = recover(dirfd_.get(), dir_, geo_);
        if (!tail) return tail.status();
        adopt(std::move(tail.value()));
    }
    if (shared_) {
        if (Status st = join(alone); !st) return st;
    }
    NotifierOptions no;
    no.force_fifo = o.wake_via_fifo;
    if (Status st = wake_.open(dirfd_.get(), dir_, no); !st) {
        // Not fatal: followers notice records by their periodic re-check. Said in
        // writer.lock, where chronicle-readers shows it.
        lock_text_.notifier = st.message();
        if (owns_text_) (void)files::write_writer_lock(lockfd_.get(), dir_, lock_text_);
    }
    retainer_.start(dirfd_.get(), dir_);
    return {};
}

Writer::Impl::~Impl() {
    if (claimed_) abort();
    if (explicit_batch_) abort_batch();
    let_go();
    leave();
}

Status Writer::Impl::sync() {
    if (shared_ && !holding_) {
        // What other writers committed since this one's last turn is synced too.
        if (Status st = hold(); !st) return st;
        Status st = sync();
        let_go();
        return st;
    }
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
Writer::Appended Writer::append_delimited(std::span<const std::byte> block, std::byte delimiter) {
    return impl_->append_delimited(block, delimiter);
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
