// chronicle — verifying a queue's structure (see admin.h, verify_queue).
#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "chronicle/admin.h"
#include "chronicle/retention.h"
#include "chronicle/writer.h"
#include "cursor.h"
#include "format.h"
#include "fs.h"
#include "pack.h"
#include "queue_files.h"
#include "segment.h"

namespace chronicle {

using namespace format;

namespace {

class Verifier {
  public:
    Verifier(int dirfd, std::string_view dir, VerifyReport& r, bool repair)
        : dirfd_(dirfd), dir_(dir), r_(r), repair_(repair) {}

    void segments(bool writer_alive) {
        auto bases = files::list_segments(dir_);
        if (!bases) return problem(".", 0, bases.status().message());
        r_.segments = bases->size();
        if (bases->empty()) return;
        r_.first_seq = bases->front();
        uint64_t expect = bases->front();  // the base the previous seal names
        for (size_t i = 0; i < bases->size(); ++i) {
            const uint64_t base = (*bases)[i];
            const std::string file = files::segment_name(base);
            if (i > 0 && expect != UINT64_MAX && base != expect) {
                problem(file, 0,
                        "not contiguous: the segment before ends at sequence " +
                            std::to_string(expect) + " (" + files::segment_name(expect) +
                            " is missing, or records were lost)");
            }
            auto s = Segment::open(dirfd_, dir_, base, false);
            if (!s) {
                problem(file, 0, strip(s.status().message()));
                expect = UINT64_MAX;  // unknown: the next one is not compared
                continue;
            }
            const bool last = i + 1 == bases->size();
            const Walk w = walk(s.value(), file);
            r_.records += w.seq - base;
            if (w.sealed) {
                expect = w.seq;
                if (last) {
                    problem(file, w.end,
                            "sealed, but the next segment " + files::segment_name(w.seq) +
                                " is missing");
                }
            } else {
                if (!last && !w.damaged) {
                    // A batch in progress (the next segment preparing) is not damage.
                    auto next = Segment::open(dirfd_, dir_, (*bases)[i + 1], false);
                    if (!next || next->live()) {
                        problem(file, w.end,
                                "ends without a seal, but later segments follow (a roll cut "
                                "short: the next writer seals it)",
                                true);
                    }
                }
                expect = UINT64_MAX;
                r_.head_seq = std::max(r_.head_seq, w.seq);
                if (last && !writer_alive && !w.damaged) tail(s.value(), file, w.end);
            }
            if (w.sealed) r_.head_seq = std::max(r_.head_seq, w.seq);
        }
    }

    // Every cursor file, read as chronicle-readers reads it (without its lock).
    void cursors() {
        // Damage in the segments leaves the head unknown: positions are then not compared.
        const bool head_known = r_.problems.empty();
        const std::string readers_path = files::readers_path(dir_);
        auto rfd = files::open_readers_dir(dirfd_, dir_);
        if (!rfd) return problem(std::string(files::kReadersDir), 0, strip(rfd.status().message()));
        auto names = list_reader_names(readers_path, true);
        if (!names)
            return problem(std::string(files::kReadersDir), 0, strip(names.status().message()));
        for (const auto& n : names.value()) {
            const std::string file =
                fs::join(files::kReadersDir, files::reader_file(n, files::ReaderFile::cursor));
            auto c = inspect_cursor(rfd->get(), readers_path, n);
            if (!c && c.status().code() == errc::not_found) continue;  // removed meanwhile
            if (!c) {
                problem(file, 0, strip(c.status().message()));
            } else if (head_known && c->next_seq > r_.head_seq) {
                problem(file, 24,
                        "position " + std::to_string(c->next_seq) + " is past the head " +
                            std::to_string(r_.head_seq));
            } else if (c->next_seq < r_.first_seq && !files::is_ephemeral(n)) {
                r_.notes.push_back("reader '" + n + "' is expired: at " +
                                   std::to_string(c->next_seq) + ", the first record on disk is " +
                                   std::to_string(r_.first_seq));
            }
        }
    }

    void small_files() {
        if (auto l = read_retention(dir_); !l) {
            problem(std::string(files::kRetention), 0, strip(l.status().message()));
        }
        auto id = files::read_queue_id(dirfd_, dir_);
        if (!id && id.status().code() != errc::not_found) {
            problem(std::string(files::kQueueId), 0, strip(id.status().message()));
        }
    }

  private:
    struct Walk {
        uint64_t seq = 0;  // one past the last record
        uint64_t end = 0;  // offset after the last record (of the seal, if sealed)
        bool sealed = false;
        bool damaged = false;
    };

    // Every record of the segment, checking timestamps and the index as it goes.
    Walk walk(const Segment& s, const std::string& file) {
        Walk w;
        w.seq = s.base();
        uint64_t off = s.data_begin();
        uint32_t slot = 0;
        const uint32_t filled = s.filled_slots();
        std::vector<std::pair<uint32_t, uint64_t>> fixes;  // --repair: (slot, value)
        auto check_slots_to = [&](uint64_t record_off, uint64_t seq) {
            // Slot k names the first record starting at or after its stride start.
            while (slot < s.slots() && s.slot_start(slot) <= record_off) {
                if (slot < filled) {
                    const uint64_t v = s.slot(slot).load(std::memory_order_relaxed);
                    const uint64_t want = pack_index(seq - s.base(), record_off);
                    if (v != want && repair_) {
                        fixes.emplace_back(slot, want);
                    } else if (v != want) {
                        problem(file, kIndexOffset + 8ull * slot,
                                "index slot " + std::to_string(slot) + " names offset " +
                                    std::to_string(index_offset(v)) + " (sequence " +
                                    std::to_string(s.base() + index_seq_delta(v)) +
                                    "), the records say offset " + std::to_string(record_off) +
                                    " (sequence " + std::to_string(seq) + ")",
                                true);
                    }
                }
                ++slot;
            }
        };
        for (;;) {
            const RecView rec = s.read(off);
            if (rec.kind == RecKind::data) {
                check_slots_to(off, w.seq);
                if (rec.timestamp_ns < last_ts_) {
                    problem(file, off + 8,
                            "timestamp goes back: " + std::to_string(rec.timestamp_ns) + " after " +
                                std::to_string(last_ts_));
                }
                last_ts_ = std::max(last_ts_, rec.timestamp_ns);
                if (rec.packed && !pack::valid(rec.payload, rec.length)) {
                    // Its records cannot be handed over: readers stop here, as at damage.
                    w.end = off;
                    w.damaged = true;
                    problem(file, off,
                            "damaged pack: its " + std::to_string(rec.count) +
                                " records do not fill its " + std::to_string(rec.length) +
                                " bytes");
                    break;
                }
                off = rec.next_off;
                w.seq += rec.count;
                continue;
            }
            w.end = off;
            if (rec.kind == RecKind::seal) {
                w.sealed = true;
            } else if (rec.kind == RecKind::corrupt) {
                w.damaged = true;
                problem(file, off, "damaged record (state, length or alignment)");
            }
            break;
        }
        // Filled slots past the end name records that do not exist (after damage the end
        // is not known: the slots there are left alone).
        for (uint32_t k = slot; !w.damaged && k < filled; ++k) {
            if (s.slot(k).load(std::memory_order_relaxed) != 0 && s.slot_start(k) > w.end) {
                if (repair_) {
                    for (uint32_t z = k; z < filled; ++z) fixes.emplace_back(z, 0);
                    break;
                }
                problem(file, kIndexOffset + 8ull * k,
                        "index slot " + std::to_string(k) + " names a record past the end of " +
                            "the records (offset " + std::to_string(w.end) + ")",
                        true);
                break;
            }
        }
        if (!fixes.empty()) rewrite_slots(s.base(), file, fixes);
        return w;
    }

    // --repair: index slots are derived data; a wrong one is rewritten from the records
    // (atomic 8-byte stores: a reader sees the old or the new value, and verifies either).
    void rewrite_slots(uint64_t base, const std::string& file,
                       const std::vector<std::pair<uint32_t, uint64_t>>& fixes) {
        auto w = Segment::open(dirfd_, dir_, base, true);
        if (!w) {
            problem(file, 0, "cannot rewrite its index: " + strip(w.status().message()));
            return;
        }
        for (const auto& [k, v] : fixes) {
            if (v == 0) {
                Segment::clear_slot(w->slot(k));
            } else {
                Segment::publish_slot(w->slot(k), v);
            }
        }
        r_.notes.push_back("repair: rewrote " + std::to_string(fixes.size()) + " index slot" +
                           (fixes.size() == 1 ? "" : "s") + " of " + file);
    }

    // After the last committed record: zeros up to the written high-water mark.
    void tail(const Segment& s, const std::string& file, uint64_t end) {
        const uint64_t hw =
            std::min<uint64_t>(s.header()->written_hw.load(std::memory_order_relaxed), s.size());
        const std::byte* p = s.bytes();
        for (uint64_t o = end; o < hw; ++o) {
            if (p[o] != std::byte{0}) {
                problem(file, o,
                        "bytes after the last committed record (offset " + std::to_string(end) +
                            "): the uncommitted tail of a writer that died; the next writer "
                            "(or --repair) clears it",
                        true);
                return;
            }
        }
    }

    // Messages from the library name the path; the report names the file itself.
    std::string strip(const std::string& msg) const {
        const std::string prefix = dir_ + "/";
        std::string m = msg;
        for (size_t at; (at = m.find(prefix)) != std::string::npos;) m.erase(at, prefix.size());
        return m;
    }

    void problem(const std::string& file, uint64_t off, const std::string& what,
                 bool repairable = false) {
        r_.problems.push_back({file, off, what, repairable});
    }

    int dirfd_;
    std::string dir_;
    VerifyReport& r_;
    bool repair_;
    uint64_t last_ts_ = 0;
};

}  // namespace

Result<VerifyReport> verify_queue(std::string_view dir, bool repair) {
    auto dfd = files::open_queue_dir(dir);
    if (!dfd) return dfd.status();
    VerifyReport r;
    std::unique_ptr<Writer> repairer;  // --repair: the writer lock, held to the end
    bool writer_alive = files::query_writer(dfd->get(), dir).alive;
    if (repair) {
        if (writer_alive) {
            const auto w = files::query_writer(dfd->get(), dir);
            return Status(errc::busy, "queue " + std::string(dir) + " has a writer (pid " +
                                          std::to_string(w.pid) +
                                          "): it keeps the queue consistent; repair refused");
        }
        // A writer's recovery is the repair: it rewrites wrong index slots, seals a roll cut
        // short, removes an uncommitted batch's segments and zeros the tail after the last
        // committed record. It refuses (and changes nothing it cannot prove) on damage.
        WriterOptions o;
        o.create = false;
        o.pretouch = false;
        o.exclusive = true;  // recovery runs only for a writer that is alone
        auto w = Writer::open(dir, o);
        if (!w && w.status().code() != errc::corrupt) return w.status();
        r.repaired = w.ok();
        if (!w) r.notes.push_back("repair: " + w.status().message());
        // Held until the index is rewritten too: no writer starts meanwhile.
        if (w) repairer = std::move(w.value());
    }
    Verifier v(dfd->get(), dir, r, r.repaired);
    v.segments(writer_alive);
    v.cursors();
    v.small_files();
    if (writer_alive) {
        r.notes.emplace_back("a writer is alive: the bytes after its last commit were not checked");
    }
    return r;
}

}  // namespace chronicle
