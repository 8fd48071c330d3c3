// chronicle — writer start-up recovery (see recovery.h).
//
// Crash reasoning. A writer killed at any instant leaves, in the order it writes:
//   * a torn record: its state word is still 0 (published last), so readers already stop
//     there; the bytes after it, up to SegmentHeader::written_hw, may hold a partial
//     payload, a partial header, or records of an uncommitted batch whose states were
//     stored relaxed. All of it is zeroed so that the next writer's records are not
//     followed by stale "committed" words.
//   * a half-made roll: `.next.seg.tmp` (removed), or a renamed next segment without the
//     seal in the previous one (the seal is written here: the previous segment holds only
//     committed records at that point, because a roll happens between records).
//   * a committed batch whose segments were not yet marked live (its first state was
//     published, so the batch is committed: the segments are marked live here), or an
//     uncommitted batch (its first state is 0: the preparing segments are deleted and the
//     tail is zeroed from that first record on).
//   * index slots not yet published for committed records: rebuilt by the scan.
#include "recovery.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <tuple>

namespace chronicle {

using namespace format;

namespace {

// Publishes index slots for a record at `off` with sequence `seq` (same rule as the writer).
// A slot that already holds the right value is not written (recovery re-walks segments
// whose index is complete); a wrong one (damage) is corrected — the index is derived from
// the records, and rewriting it loses nothing.
void fill_slots(Segment& seg, uint32_t& next_slot, uint64_t off, uint64_t seq) {
    while (next_slot < seg.slots() && seg.slot_start(next_slot) <= off) {
        const uint64_t v = pack_index(seq - seg.base(), off);
        // Relaxed load: only this process (holding writer.lock) writes slots.
        if (seg.slot(next_slot).load(std::memory_order_relaxed) != v) {
            Segment::publish_slot(seg.slot(next_slot), v);  // the record is committed
        }
        ++next_slot;
    }
}

// Slots past the end of the log must be empty; a damaged one would make readers (and the
// next recovery) look for records where there are none.
void clear_slots_from(Segment& seg, uint32_t from) {
    for (uint32_t i = from; i < seg.slots(); ++i) {
        if (seg.slot(i).load(std::memory_order_relaxed) != 0) Segment::clear_slot(seg.slot(i));
    }
}

// True when [p, p + n) holds a non-zero byte. Word by word and without an early exit, so
// that the compiler vectorises it: every writer's open checks the up to 1 MiB between the
// tail and the high-water mark, and the byte loop with a break that did it was 11 % of the
// samples of a one-line chronicle-append (perf).
bool any_nonzero(const std::byte* p, uint64_t n) {
    uint64_t acc = 0;
    uint64_t i = 0;
    for (; i + sizeof(uint64_t) <= n; i += sizeof(uint64_t)) {
        uint64_t w;
        std::memcpy(&w, p + i, sizeof w);
        acc |= w;
    }
    for (; i < n; ++i) acc |= std::to_integer<uint64_t>(p[i]);
    return acc != 0;
}

// Zeroes [from, to) page by page, writing only pages that hold a non-zero byte, so that
// recovering a large, mostly empty segment does not dirty it.
void zero_range(Segment& seg, uint64_t from, uint64_t to) {
    std::byte* base = seg.bytes();
    while (from < to) {
        const uint64_t chunk_end = std::min(to, (from / kPageSize + 1) * kPageSize);
        if (any_nonzero(base + from, chunk_end - from)) {
            std::memset(base + from, 0, chunk_end - from);
        }
        from = chunk_end;
    }
}

Status remove_segment(int dirfd, std::string_view dir, uint64_t base) {
    const std::string name = files::segment_name(base);
    if (::unlinkat(dirfd, name.c_str(), 0) != 0 && errno != ENOENT) {
        return Status::from_errno(errno, "cannot remove uncommitted segment", fs::join(dir, name));
    }
    return {};
}

Result<Segment> create_live(int dirfd, std::string_view dir, const SegmentGeometry& geo,
                            uint64_t base) {
    auto seg = Segment::create(dirfd, dir, files::kNextSegmentTmp, geo, base, kSegmentLive);
    if (!seg) return seg.status();
    if (Status st = seg->publish_as(dirfd, dir, files::kNextSegmentTmp, base); !st) return st;
    return std::move(seg.value());
}

}  // namespace

Result<Tail> recover(int dirfd, std::string_view dir, const SegmentGeometry& geo_for_new) {
    // A temporary segment is never visible to readers: drop it.
    for (std::string_view name : {files::kNextSegmentTmp, files::kPreparedSegmentTmp}) {
        ::unlinkat(dirfd, std::string(name).c_str(), 0);
    }
    // Shared writers' prepared segments: those of processes that are gone (a live writer's
    // pretoucher may be filling its own right now).
    if (auto names = fs::list_dir(dir)) {
        for (const auto& n : names.value()) {
            int pid = 0;
            if (files::parse_prepared_segment_tmp(n, pid) && ::kill(pid, 0) != 0 &&
                errno == ESRCH) {
                ::unlinkat(dirfd, n.c_str(), 0);
            }
        }
    }

    auto bases_r = files::list_segments(dir);
    if (!bases_r) return bases_r.status();
    std::vector<uint64_t> bases = std::move(bases_r.value());

    Tail t;
    if (bases.empty()) {
        auto seg = create_live(dirfd, dir, geo_for_new, 0);
        if (!seg) return seg.status();
        t.seg = std::move(seg.value());
        t.off = t.seg.data_begin();
        return t;
    }

    // The last live segment: every segment before it is live too (batches mark theirs
    // live in order), those after it were created by a batch whose fate the scan decides.
    size_t li = bases.size();
    Segment seg;
    while (li > 0) {
        auto s = Segment::open(dirfd, dir, bases[li - 1], true);
        if (!s) return s.status();
        if (s->live()) {
            seg = std::move(s.value());
            break;
        }
        --li;
    }
    if (!seg.valid()) {
        // Only preparing segments. If the first batch of the queue never committed, its first
        // record is unpublished (state 0) and everything here is invisible: remove it. If
        // that record is committed, the batch is (its writer died before marking the
        // segment live) — or the seg_state word is damaged; either way the records are
        // committed, so the segment is made live and nothing is deleted.
        auto first = Segment::open(dirfd, dir, bases.front(), true);
        if (!first) return first.status();
        const RecKind k = first->read(first->data_begin()).kind;
        if (k == RecKind::empty && bases.front() == 0) {
            for (uint64_t b : bases) {
                if (Status st = remove_segment(dirfd, dir, b); !st) return st;
            }
            return recover(dirfd, dir, geo_for_new);
        }
        if (k != RecKind::data) {
            return first->corrupt_at(first->data_begin(),
                                     "no live segment, and the first segment's first record "
                                     "is not a committed record (the writer will not guess)");
        }
        Segment::mark_live(first->header());
        return recover(dirfd, dir, geo_for_new);
    }
    size_t cur = li - 1;
    // Start one segment earlier: if the last live segment is the fresh one of a roll cut
    // short before its seal, the previous segment is the one that needs the seal, and a
    // scan from it walks into the last one either way (one stride of extra reading).
    if (cur > 0) {
        auto prev = Segment::open(dirfd, dir, bases[cur - 1], true);
        // Not found: deleted by retention since the listing. Retention deletes only sealed
        // segments, so it needed nothing from us.
        if (!prev && prev.status().code() != errc::not_found) return prev.status();
        if (prev) {
            // Batches mark their segments live in order, so a segment before a live one is
            // committed even if its flag says preparing (a damaged word): mark it live.
            if (!prev->live()) Segment::mark_live(prev->header());
            seg = std::move(prev.value());
            --cur;
        }
    }

    // Resume the scan at the last index slot if it checks out; otherwise walk the segment
    // from its first record and rewrite its index.
    const uint32_t filled = seg.filled_slots();
    auto last = filled > 0 ? seg.verified_slot(filled - 1) : std::nullopt;
    uint64_t off = seg.data_begin(), seq = seg.base();
    uint32_t next_slot = 0;
    if (last) {
        std::tie(off, seq) = *last;
        next_slot = filled;
    }
    uint64_t last_ts = 0;
    for (;;) {
        const RecView r = seg.read(off);
        if (r.kind == RecKind::data) {
            fill_slots(seg, next_slot, off, seq);
            last_ts = r.timestamp_ns;
            off = r.next_off;
            seq += r.count;
            continue;
        }
        if (r.kind == RecKind::corrupt) {
            return seg.corrupt_at(off, "damaged record (the writer will not write over it)");
        }
        if (r.kind == RecKind::seal) {
            last_ts = std::max(last_ts, r.timestamp_ns);
            // The seal names the next segment: base == seq. A committed batch may have left
            // it preparing; make it live. If it vanished, recreate it empty.
            Segment next;
            if (cur + 1 < bases.size() && bases[cur + 1] == seq) {
                auto s = Segment::open(dirfd, dir, seq, true);
                if (!s) return s.status();
                next = std::move(s.value());
                ++cur;
            } else if (std::find(bases.begin(), bases.end(), seq) == bases.end()) {
                // A roll links the next segment into place before it writes the seal, so a
                // seal naming a missing segment means the segment was removed. Recreating
                // it would hand its sequence numbers out a second time: refuse.
                return seg.corrupt_at(off, "sealed, but the next segment " +
                                               files::segment_name(seq) +
                                               " is missing (the writer will not reuse its "
                                               "sequence numbers)");
            } else {
                return seg.corrupt_at(off, "seal names segment " + files::segment_name(seq) +
                                               " which is not the next one on disk");
            }
            Segment::mark_live(next.header());
            seg = std::move(next);
            off = seg.data_begin();
            next_slot = 0;  // walked from its first record: every slot is checked
            continue;
        }
        break;  // empty: the end of the committed log
    }

    // A roll cut short between renaming the next segment into place and sealing this one:
    // the next segment is live and empty. Seal here and continue in it.
    if (cur + 1 < bases.size() && bases[cur + 1] == seq) {
        auto s = Segment::open(dirfd, dir, seq, true);
        if (!s) return s.status();
        if (s->live() && s->read(s->data_begin()).kind == RecKind::empty &&
            off + kRecordHeaderSize <= seg.size()) {
            RecordHeader* rec = seg.record(off);
            rec->length = 0;
            rec->timestamp_ns = last_ts;
            Segment::publish_state(rec, kStateSeal);  // the next segment exists already
            seg = std::move(s.value());
            off = seg.data_begin();
            next_slot = 0;
            ++cur;
        }
    }

    // Segments after the tail belong to a batch that never committed.
    for (size_t i = cur + 1; i < bases.size(); ++i) {
        auto s = Segment::open(dirfd, dir, bases[i], false);
        if (s && s->live()) {
            return Status(errc::corrupt, s->path() + ": live segment after the end of the log in " +
                                             seg.path() + " (offset " + std::to_string(off) + ")");
        }
        if (Status st = remove_segment(dirfd, dir, bases[i]); !st) return st;
    }

    clear_slots_from(seg, next_slot);

    // Clear the torn tail. The state word at `off` is already 0 (that is why the scan
    // stopped), and it is the only word a reader may be loading; start after it.
    SegmentHeader* h = seg.header();
    const uint64_t hw =
        std::min<uint64_t>(h->written_hw.load(std::memory_order_relaxed), seg.size());
    if (hw > off + sizeof(uint32_t)) zero_range(seg, off + sizeof(uint32_t), hw);
    h->written_hw.store(off, std::memory_order_relaxed);  // only the writer reads it

    t.seg = std::move(seg);
    t.off = off;
    t.seq = seq;
    t.last_ts = last_ts;
    t.next_slot = next_slot;
    return t;
}

}  // namespace chronicle
