// chronicle — pretoucher (see pretouch.h).
#include "pretouch.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

namespace chronicle {

namespace {
constexpr uint64_t kMinWindow = 256 * 1024;
constexpr uint64_t kMaxWindow = 8ull << 20;
}  // namespace

Pretoucher::~Pretoucher() {
    if (thread_.joinable()) {
        {
            std::lock_guard<std::mutex> g(mu_);
            stop_ = true;
        }
        cv_.notify_one();
        thread_.join();
    }
    if (prepared_.valid()) {
        prepared_ = Segment();
        ::unlinkat(dirfd_, prep_name_.c_str(), 0);
    }
}

void Pretoucher::configure(int dirfd, std::string dir, const SegmentGeometry& geo) {
    dirfd_ = dirfd;
    dir_ = std::move(dir);
    geo_ = geo;
}

void Pretoucher::switch_to(const Segment& seg, uint64_t off) {
    if (!enabled_) return;
    seg_size_ = seg.size();
    seg_begin_ = seg.data_begin();
    switch_off_ = off;
    {
        std::lock_guard<std::mutex> g(mu_);
        map_ = seg.bytes();
        ++generation_;
        target_ = 0;
    }
    if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
    next_kick_ = 0;
    kick(off);
    cv_.notify_one();  // the new generation, even when kick() found no work for it
}

void Pretoucher::kick(uint64_t off) {
    // The window grows with what was written to this segment, so a queue that receives a
    // line now and then does not get megabytes of zero pages dirtied ahead of it.
    const uint64_t written = off > seg_begin_ ? off - seg_begin_ : 0;
    const uint64_t window = std::clamp<uint64_t>(written, kMinWindow, kMaxWindow);
    const uint64_t target = std::min(seg_size_, off + window);
    // The next segment is prepared once the segment is half full — by a writer that wrote
    // a good part of it itself: a short-lived `echo x | chronicle-append` would otherwise
    // allocate and populate a whole segment only to remove it at exit, and each of many
    // shared writers would keep one of its own.
    const bool half = off >= seg_begin_ + (seg_size_ - seg_begin_) / 2 &&
                      off - switch_off_ >= std::min(kMaxWindow, (seg_size_ - seg_begin_) / 4);
    next_kick_ = target >= seg_size_ ? UINT64_MAX : off + window / 2;
    // Wakes the helper only for new work: with populating off (a batch through the page
    // stage), a wake-up for nothing cost the appender a futex call and, on an idle other
    // vCPU, the ~30 us such a wake-up costs its sender (docs/DESIGN.md, Surprises).
    bool work = false;
    {
        std::lock_guard<std::mutex> g(mu_);
        if (populate_ && target > target_) {
            target_ = target;
            work = true;
        }
        if (half && !prepared_.valid() && !preparing_ && !want_next_) {
            want_next_ = true;
            next_populate_ = populate_;
            work = true;
        }
    }
    if (work) cv_.notify_one();
}

void Pretoucher::detach() {
    if (!thread_.joinable()) return;
    std::unique_lock<std::mutex> lk(mu_);
    map_ = nullptr;
    ++generation_;
    target_ = 0;
    cv_.wait(lk, [&] { return !touching_; });
}

Segment Pretoucher::take_prepared(uint64_t base, uint32_t seg_state) {
    if (!enabled_) return {};
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait(lk, [&] { return !preparing_; });
    want_next_ = false;
    if (!prepared_.valid()) return {};
    Segment s = std::move(prepared_);
    lk.unlock();
    // Not yet visible to anyone (temporary name).
    s.header()->base_seq = base;
    Segment::set_state_unpublished(s.header(), seg_state);
    // Hand over under the writer's temporary name, which roll() publishes.
    const std::string& from = prep_name_;
    const std::string to(files::kNextSegmentTmp);
    if (::renameat(dirfd_, from.c_str(), dirfd_, to.c_str()) != 0) return {};
    return s;
}

void Pretoucher::prepare_next(bool populate) {
    // Called by the helper thread with mu_ released and preparing_ set.
    auto made = Segment::create(dirfd_, dir_, prep_name_, geo_, 0, format::kSegmentPreparing);
    if (!made) return;  // the writer will create the segment itself and report the error
    // A writer whose batches go through the page stage (pwrite) would only overwrite the
    // zeroed pages: populating them cost this thread ~5 ms per segment, on the CPU that the
    // producer of a pipe runs on (`cat log | chronicle-append`: 22 ms of 200 MB).
    if (populate) {
        const uint64_t first = std::min<uint64_t>(made->size(), made->data_begin() + kMaxWindow);
        ::madvise(made->bytes(), first, MADV_POPULATE_WRITE);
    }
    std::lock_guard<std::mutex> g(mu_);
    prepared_ = std::move(made.value());
}

void Pretoucher::run() {
    std::unique_lock<std::mutex> lk(mu_);
    uint64_t done = 0;  // populated up to here in generation `gen`
    uint64_t gen = 0;
    std::byte* map = nullptr;
    for (;;) {
        cv_.wait(lk, [&] {
            return stop_ || want_next_ || (gen == generation_ && done < target_) ||
                   gen != generation_;
        });
        if (stop_) break;
        if (gen != generation_) {
            gen = generation_;
            done = 0;
            map = map_;
            continue;
        }
        if (want_next_) {
            want_next_ = false;
            preparing_ = true;
            const bool populate = next_populate_;
            lk.unlock();
            prepare_next(populate);
            lk.lock();
            preparing_ = false;
            cv_.notify_all();
            continue;
        }
        if (map == nullptr) {
            done = target_;
            continue;
        }
        // Populate in slices so that a switch or a stop is noticed quickly.
        const uint64_t from = done & ~uint64_t{4095};
        const uint64_t to = std::min<uint64_t>(target_, from + (1ull << 20));
        // The writer unmaps this mapping only after detach(), which waits for touching_
        // to drop: the range stays mapped until the call returns.
        touching_ = true;
        lk.unlock();
        ::madvise(map + from, to - from, MADV_POPULATE_WRITE);
        lk.lock();
        touching_ = false;
        cv_.notify_all();
        if (gen == generation_) done = to;
    }
}

}  // namespace chronicle
