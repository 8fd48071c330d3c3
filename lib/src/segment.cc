// chronicle — segment files (see segment.h and docs/DESIGN.md "Segment file").
#include "segment.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "pack.h"

namespace chronicle {

using namespace format;

namespace {
// Writes header_size zero bytes at offset 0 (Segment::create()).
Status write_zero_header(int fd, uint32_t header_size, const std::string& path) {
    static const std::byte zeros[kPageSize] = {};
    for (uint64_t done = 0; done < header_size; done += kPageSize) {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(kPageSize, header_size - done));
        if (Status st = fs::pwrite_all(fd, zeros, n, done, path); !st.ok()) return st;
    }
    return {};
}
}  // namespace

Result<SegmentGeometry> SegmentGeometry::for_size(uint64_t segment_size) {
    if (segment_size < kMinSegmentSize || segment_size > kMaxSegmentSize ||
        segment_size % kPageSize != 0) {
        return Status(errc::invalid_argument, "segment size " + std::to_string(segment_size) +
                                                  " must be a multiple of 4096 between " +
                                                  std::to_string(kMinSegmentSize) + " and " +
                                                  std::to_string(kMaxSegmentSize));
    }
    SegmentGeometry g;
    g.segment_size = segment_size;
    const uint64_t per_slot = std::max<uint64_t>(segment_size / kMaxIndexSlots, 1);
    g.stride_log2 = std::max<uint32_t>(12, static_cast<uint32_t>(std::bit_width(per_slot - 1)));
    g.slots =
        static_cast<uint32_t>((segment_size + (uint64_t{1} << g.stride_log2) - 1) >> g.stride_log2);
    const uint64_t hdr = kIndexOffset + uint64_t{g.slots} * sizeof(uint64_t);
    g.header_size = static_cast<uint32_t>((hdr + kPageSize - 1) / kPageSize * kPageSize);
    return g;
}

uint64_t SegmentGeometry::max_payload() const {
    // One record header, the payload, and room for the seal that closes the segment.
    const uint64_t room = segment_size - header_size - 2 * kRecordHeaderSize;
    return std::min<uint64_t>(room & ~(kRecordAlign - 1), UINT32_MAX);
}

Status Segment::corrupt_at(uint64_t off, std::string_view why) const {
    return Status(errc::corrupt,
                  path_ + ": offset " + std::to_string(off) + ": " + std::string(why));
}

Result<Segment> Segment::open(int dirfd, std::string_view dir, uint64_t base, bool writable) {
    Segment s;
    const std::string name = files::segment_name(base);
    s.path_ = fs::join(dir, name);
    auto fd = fs::open_at(dirfd, dir, name, writable ? O_RDWR : O_RDONLY);
    if (!fd) return fd.status();
    s.fd_ = std::move(fd.value());
    auto size = fs::file_size(s.fd_.get(), s.path_);
    if (!size) return size.status();
    if (size.value() < kMinSegmentSize || size.value() > kMaxSegmentSize) {
        return Status(errc::corrupt, s.path_ + ": file size " + std::to_string(size.value()) +
                                         " is not a segment size");
    }
    auto map = fs::Mapping::map(s.fd_.get(), size.value(), writable, s.path_);
    if (!map) return map.status();
    s.map_ = std::move(map.value());
    const SegmentHeader* h = s.header();
    auto bad = [&](const char* why) {
        return Status(errc::corrupt, s.path_ + ": bad segment header: " + why);
    };
    if (h->magic != kSegmentMagic) return bad("wrong magic (not a chronicle segment)");
    if (h->version != kSegmentVersion && h->version != kSegmentVersionV1) {
        return bad(("unsupported version " + std::to_string(h->version) +
                    " (this chronicle reads versions 1 and 2; a newer chronicle wrote it?)")
                       .c_str());
    }
    s.packs_ = h->version >= kSegmentVersion;
    if (h->segment_size != size.value()) return bad("size field does not match the file size");
    if (h->base_seq != base) return bad("base sequence does not match the file name");
    auto geo = SegmentGeometry::for_size(h->segment_size);
    if (!geo || geo->header_size != h->header_size || geo->slots != h->index_slots ||
        geo->stride_log2 != h->index_stride_log2) {
        return bad("geometry fields are inconsistent");
    }
    const uint32_t state = h->seg_state.load(std::memory_order_relaxed);
    if (state != kSegmentPreparing && state != kSegmentLive) {
        return bad(("seg_state " + std::to_string(state) + " is neither 0 nor 1").c_str());
    }
    return s;
}

Result<Segment> Segment::create(int dirfd, std::string_view dir, std::string_view tmp_name,
                                const SegmentGeometry& geo, uint64_t base, uint32_t seg_state) {
    Segment s;
    s.path_ = fs::join(dir, tmp_name);
    auto fd = fs::open_at(dirfd, dir, tmp_name, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (!fd) return fd.status();
    s.fd_ = std::move(fd.value());
    const std::string tmp(tmp_name);
    // Reserve every block before mapping: the disk filling up must be an error here, not a
    // SIGBUS on some later store into the mapping.
    int rc;
    do {
        rc = ::posix_fallocate(s.fd_.get(), 0, static_cast<off_t>(geo.segment_size));
    } while (rc == EINTR);
    if (rc != 0) {
        Status st = Status::from_errno(rc, "cannot allocate segment", s.path_);
        ::unlinkat(dirfd, tmp.c_str(), 0);
        return st;
    }
    // The header's pages enter the page cache by a write, before the mapping touches them:
    // a first fault on a page that is not cached makes the kernel read around it, and on a
    // fresh file that means zero-filling up to the device's read-ahead window (8 MiB on
    // this VM: 1.3-2.5 ms per segment, against 0.2-0.3 ms with the write first).
    if (Status st = write_zero_header(s.fd_.get(), geo.header_size, s.path_); !st) {
        ::unlinkat(dirfd, tmp.c_str(), 0);
        return st;
    }
    auto map = fs::Mapping::map(s.fd_.get(), geo.segment_size, true, s.path_);
    if (!map) {
        ::unlinkat(dirfd, tmp.c_str(), 0);
        return map.status();
    }
    s.map_ = std::move(map.value());
    SegmentHeader* h = s.header();
    h->magic = kSegmentMagic;
    h->version = kSegmentVersion;
    s.packs_ = true;
    h->header_size = geo.header_size;
    h->segment_size = geo.segment_size;
    h->base_seq = base;
    h->created_ns = fs::realtime_ns();
    h->index_stride_log2 = geo.stride_log2;
    h->index_slots = geo.slots;
    set_state_unpublished(h, seg_state);
    return s;
}

Status Segment::publish_as(int dirfd, std::string_view dir, std::string_view tmp_name,
                           uint64_t base) {
    header()->base_seq = base;
    const std::string from(tmp_name);
    const std::string to = files::segment_name(base);
    // RENAME_NOREPLACE semantics via link+unlink: never clobber an existing segment.
    if (::linkat(dirfd, from.c_str(), dirfd, to.c_str(), 0) != 0) {
        return Status::from_errno(errno, "cannot create segment", fs::join(dir, to));
    }
    ::unlinkat(dirfd, from.c_str(), 0);
    path_ = fs::join(dir, to);
    return {};
}

RecView Segment::read(uint64_t off) const noexcept {
    RecView v;
    const uint64_t size = map_.size();
    if (off < data_begin() || off % kRecordAlign != 0 || off + kRecordHeaderSize > size) {
        v.kind = RecKind::corrupt;
        return v;
    }
    const RecordHeader* r = record(off);
    // Acquire: pairs with Segment::publish_state's release store (Writer::Impl::publish,
    // the seal of a roll, recovery's seal) of this word or of the first record of the same
    // batch, whose stage_state() stores it carries (format.h).
    const uint32_t state = r->state.load(std::memory_order_acquire);
    if (state == kStateEmpty) return v;
    if (state == kStateSeal) {
        // A segment is rolled only after a record: a seal as its first record would name
        // this segment itself as the next one.
        if (off == data_begin()) {
            v.kind = RecKind::corrupt;
            return v;
        }
        v.kind = RecKind::seal;
        v.timestamp_ns = r->timestamp_ns;
        v.next_off = off + kRecordHeaderSize;
        return v;
    }
    v.packed = state == kStatePack;
    if (state != kStateData && !(v.packed && packs_)) {
        v.kind = RecKind::corrupt;
        return v;
    }
    v.length = r->length;
    // A data record must leave room for the seal that follows the last one.
    if (record_span(v.length) + kRecordHeaderSize > size - off) {
        v.kind = RecKind::corrupt;
        return v;
    }
    v.payload = map_.data() + off + kRecordHeaderSize;
    if (v.packed) {
        // The count must be possible (each record takes at least its one-byte length);
        // the records themselves are checked by whoever hands them over (pack::valid).
        if (v.length <= pack::kCountBytes) {
            v.kind = RecKind::corrupt;
            return v;
        }
        v.count = pack::count_of(v.payload);
        if (v.count == 0 || v.count > v.length - pack::kCountBytes) {
            v.kind = RecKind::corrupt;
            return v;
        }
    }
    v.kind = RecKind::data;
    v.timestamp_ns = r->timestamp_ns;
    v.next_off = off + record_span(v.length);
    return v;
}

uint32_t Segment::filled_slots() const noexcept {
    // Slots are published in order, so the filled ones form a prefix: binary search it.
    uint32_t lo = 0, hi = slots();
    while (lo < hi) {
        const uint32_t mid = lo + (hi - lo) / 2;
        // Acquire: pairs with Segment::publish_slot's release store, made after the commit
        // of the record it names, so that record reads as committed.
        if (slot(mid).load(std::memory_order_acquire) != 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

std::optional<std::pair<uint64_t, uint64_t>> Segment::verified_slot(uint32_t i) const noexcept {
    if (i >= slots()) return std::nullopt;
    auto decode = [&](uint32_t k) -> std::optional<std::pair<uint64_t, uint64_t>> {
        // Acquire: pairs with Segment::publish_slot (as in filled_slots).
        const uint64_t v = slot(k).load(std::memory_order_acquire);
        const uint64_t off = index_offset(v);
        if (v == 0 || off < slot_start(k) || read(off).kind != RecKind::data) return std::nullopt;
        return std::pair<uint64_t, uint64_t>{off, base() + index_seq_delta(v)};
    };
    const auto mine = decode(i);
    if (!mine) return std::nullopt;
    // Walk from the previous slot (or the first record) to this one: the records between
    // must lead exactly to this slot's offset, and their count to its sequence.
    std::pair<uint64_t, uint64_t> from{data_begin(), base()};
    if (i > 0) {
        const auto prev = decode(i - 1);
        if (!prev || prev->first > mine->first) return std::nullopt;
        from = *prev;
    }
    uint64_t off = from.first, seq = from.second;
    while (off < mine->first) {
        const RecView r = read(off);
        if (r.kind != RecKind::data) return std::nullopt;
        off = r.next_off;
        seq += r.count;
    }
    if (off != mine->first || seq != mine->second) return std::nullopt;
    return mine;
}

std::pair<uint64_t, uint64_t> Segment::index_floor(uint64_t seq) const noexcept {
    const uint64_t base = this->base();
    const std::pair<uint64_t, uint64_t> first{data_begin(), base};
    if (seq <= base) return first;
    uint32_t lo = 0, hi = filled_slots();
    uint32_t found = UINT32_MAX;
    while (lo < hi) {
        const uint32_t mid = lo + (hi - lo) / 2;
        const uint64_t v = slot(mid).load(std::memory_order_acquire);  // pairs as above
        if (base + index_seq_delta(v) <= seq) {
            found = mid;
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (found == UINT32_MAX) return first;
    // A damaged slot is not trusted: scan from the first record instead.
    return verified_slot(found).value_or(first);
}

std::pair<uint64_t, uint64_t> Segment::index_last() const noexcept {
    const std::pair<uint64_t, uint64_t> first{data_begin(), base()};
    const uint32_t n = filled_slots();
    if (n == 0) return first;
    return verified_slot(n - 1).value_or(first);
}

std::pair<uint64_t, uint64_t> Segment::index_floor_time(uint64_t ts) const noexcept {
    const std::pair<uint64_t, uint64_t> first{data_begin(), base()};
    uint32_t lo = 0, hi = filled_slots();
    uint32_t found = UINT32_MAX;
    while (lo < hi) {
        const uint32_t mid = lo + (hi - lo) / 2;
        const uint64_t v = slot(mid).load(std::memory_order_acquire);  // pairs as above
        const RecView r = read(index_offset(v));
        if (r.kind == RecKind::data && r.timestamp_ns < ts) {
            found = mid;
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (found == UINT32_MAX) return first;
    return verified_slot(found).value_or(first);
}

Segment::ScanEnd Segment::scan(uint64_t off, uint64_t seq, uint64_t stop_seq) const noexcept {
    while (seq < stop_seq) {
        const RecView r = read(off);
        if (r.kind != RecKind::data) return {off, seq, r.kind};
        if (seq + r.count > stop_seq) break;  // stop_seq is inside this pack: stop at it
        off = r.next_off;
        seq += r.count;
    }
    return {off, seq, RecKind::data};
}

}  // namespace chronicle
