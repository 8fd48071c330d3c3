// chronicle — retention: retention.json, the policy (plan_retention) and the pass that
// applies it (see retention.h; docs/DESIGN.md "Retention").
#include "chronicle/retention.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>

#include "chronicle/reader.h"
#include "cursor.h"
#include "fs.h"
#include "json_fields.h"
#include "queue_files.h"
#include "retention_plan.h"
#include "segment.h"

namespace chronicle {

namespace {

constexpr int kRetentionVersion = 1;
constexpr uint64_t kNsPerMs = 1000000;

// "7d", "36h", "90m", "45s", "250ms": the largest unit that divides the duration.
std::string human_ms(uint64_t ms) {
    struct Unit {
        uint64_t ms;
        const char* name;
    };
    static constexpr Unit kUnits[] = {
        {86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}, {1, "ms"}};
    for (const Unit& u : kUnits) {
        if (ms % u.ms == 0) return std::to_string(ms / u.ms) + u.name;
    }
    return std::to_string(ms) + "ms";
}

Status check_limits(const RetentionLimits& l, std::string_view where) {
    if (l.keep_free_bytes != 0 && l.keep_free_percent != 0) {
        return Status(errc::invalid_argument,
                      std::string(where) + ": keep-free is either bytes or a percentage, not both");
    }
    if (l.keep_free_percent > 99) {
        return Status(errc::invalid_argument, std::string(where) + ": keep-free percentage " +
                                                  std::to_string(l.keep_free_percent) +
                                                  " is not within 1..99");
    }
    if (l.max_age_ms > UINT64_MAX / kNsPerMs) {
        return Status(errc::invalid_argument, std::string(where) + ": max-age is too large");
    }
    return {};
}

std::string limits_to_json(const RetentionLimits& l) {
    nlohmann::json j = {
        {"version", kRetentionVersion},         {"max_bytes", l.max_bytes},
        {"max_age_ms", l.max_age_ms},           {"max_records", l.max_records},
        {"keep_free_bytes", l.keep_free_bytes}, {"keep_free_percent", l.keep_free_percent},
        {"mode", l.hard ? "hard" : "soft"}};
    return j.dump(2) + "\n";
}

Result<RetentionLimits> limits_from_json(std::string_view text, const std::string& path) {
    auto bad = [&](const std::string& why) { return Status(errc::corrupt, path + ": " + why); };
    const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return bad("not a JSON object");
    int version = 0;
    if (!json_fields::get_int(j, "version", version)) return bad("no \"version\"");
    if (version != kRetentionVersion) {
        return bad("version " + std::to_string(version) + " is not known to this chronicle (" +
                   std::to_string(kRetentionVersion) + ")");
    }
    RetentionLimits l;
    struct Field {
        const char* key;
        uint64_t* to;
    };
    uint64_t percent = 0;
    for (const Field& f :
         {Field{"max_bytes", &l.max_bytes}, Field{"max_age_ms", &l.max_age_ms},
          Field{"max_records", &l.max_records}, Field{"keep_free_bytes", &l.keep_free_bytes},
          Field{"keep_free_percent", &percent}}) {
        if (j.contains(f.key) && !json_fields::get_int(j, f.key, *f.to)) {
            return bad(std::string("\"") + f.key + "\" is not a non-negative integer");
        }
    }
    if (percent > 99) return bad("\"keep_free_percent\" is not within 0..99");
    l.keep_free_percent = static_cast<uint32_t>(percent);
    std::string mode = "soft";
    if (j.contains("mode") && !json_fields::get_string(j, "mode", mode)) {
        return bad("\"mode\" is not a string");
    }
    if (mode != "soft" && mode != "hard") return bad("\"mode\" is neither \"soft\" nor \"hard\"");
    l.hard = mode == "hard";
    if (Status st = check_limits(l, path); !st) return Status(errc::corrupt, st.message());
    return l;
}

// How segment `base` ends: its last verified index slot, then its records to the end (at
// most about one stride). Unreadable: not sealed (kept), never too old.
QueueFacts::End segment_end(int dirfd, std::string_view dir, uint64_t base) {
    auto s = Segment::open(dirfd, dir, base, false);
    if (!s) return {false, UINT64_MAX};
    auto [off, seq] = s->index_last();
    QueueFacts::End e;
    for (;;) {
        const RecView r = s->read(off);
        if (r.kind != RecKind::data) {
            e.sealed = r.kind == RecKind::seal;
            return e;
        }
        e.newest_ns = r.timestamp_ns;
        off = r.next_off;
        seq += r.count;
    }
}

Result<QueueFacts> gather_facts(int dirfd, std::string_view dir) {
    QueueFacts q;
    auto bases = files::list_segments(dir);
    if (!bases) return bases.status();
    for (uint64_t b : bases.value()) {
        struct stat st {};
        if (::fstatat(dirfd, files::segment_name(b).c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
            continue;  // deleted since the listing
        }
        q.segments.push_back({b, static_cast<uint64_t>(st.st_size)});
    }
    auto r = Reader::open(dir);
    if (!r) return r.status();
    auto head = r.value()->head();
    if (!head) return head.status();
    q.head = head.value();
    q.now_ns = fs::realtime_ns();
    struct statvfs vfs {};
    if (::fstatvfs(dirfd, &vfs) == 0) {
        q.disk_free = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
        q.disk_size = static_cast<uint64_t>(vfs.f_blocks) * vfs.f_frsize;
        q.disk_known = true;
    }
    const std::string readers_path = files::readers_path(dir);
    auto rfd = files::open_readers_dir(dirfd, dir);
    if (!rfd) return rfd.status();
    auto names = list_reader_names(readers_path, false);
    if (!names) return names.status();
    for (const auto& n : names.value()) {
        auto c = inspect_cursor(rfd->get(), readers_path, n);
        if (!c && c.status().code() == errc::not_found) continue;  // deleted meanwhile
        ReaderFacts f;
        f.name = n;
        if (c) {
            f.position = c->next_seq;
            f.alive = c->locked;
        } else {
            f.damaged = true;
        }
        q.readers.push_back(std::move(f));
    }
    std::string dir_s(dir);
    std::vector<uint64_t> seg_bases;
    for (const auto& s : q.segments) seg_bases.push_back(s.base);
    q.end_of = [dirfd, dir_s, seg_bases](size_t i) {
        return segment_end(dirfd, dir_s, seg_bases[i]);
    };
    return q;
}

}  // namespace

std::string describe_bytes(uint64_t b) {
    static const char* const kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double v = static_cast<double>(b);
    int u = 0;
    while (v >= 1024 && u < 6) {
        v /= 1024;
        ++u;
    }
    char buf[32];
    if (u == 0) {
        (void)std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(b));
    } else {
        (void)std::snprintf(buf, sizeof buf, "%.1f %s", v, kUnits[u]);
    }
    return buf;
}

const char* cause_name(RetentionCause c) noexcept {
    switch (c) {
        case RetentionCause::max_bytes:
            return "max-bytes";
        case RetentionCause::max_age:
            return "max-age";
        case RetentionCause::max_records:
            return "max-records";
        case RetentionCause::keep_free:
            return "keep-free";
    }
    return "?";
}

std::string describe(const RetentionLimits& l) {
    std::string s;
    auto add = [&](const std::string& part) { s += (s.empty() ? "" : ", ") + part; };
    if (l.max_bytes != 0) add("max-bytes " + describe_bytes(l.max_bytes));
    if (l.max_age_ms != 0) add("max-age " + human_ms(l.max_age_ms));
    if (l.max_records != 0) add("max-records " + std::to_string(l.max_records));
    if (l.keep_free_bytes != 0) add("keep-free " + describe_bytes(l.keep_free_bytes));
    if (l.keep_free_percent != 0) add("keep-free " + std::to_string(l.keep_free_percent) + "%");
    if (s.empty()) return "none";
    return s + (l.hard ? " (hard)" : " (soft)");
}

Result<RetentionLimits> read_retention(std::string_view dir) {
    auto dfd = files::open_queue_dir(dir);
    if (!dfd) return dfd.status();
    auto text = fs::read_small_file(dfd->get(), dir, files::kRetention, 65536);
    if (!text) {
        if (text.status().code() == errc::not_found) return RetentionLimits{};
        return text.status();
    }
    return limits_from_json(text.value(), fs::join(dir, files::kRetention));
}

Status write_retention(std::string_view dir, const RetentionLimits& limits) {
    const std::string path = fs::join(dir, files::kRetention);
    if (Status st = check_limits(limits, path); !st) return st;
    auto dfd = files::open_queue_dir(dir);
    if (!dfd) return dfd.status();
    if (!limits.any() && !limits.hard) {
        if (::unlinkat(dfd->get(), std::string(files::kRetention).c_str(), 0) != 0 &&
            errno != ENOENT) {
            return Status::from_errno(errno, "cannot remove", path);
        }
        return {};
    }
    return fs::write_file_atomic(dfd->get(), dir, files::kRetention,
                                 files::temp_name(files::kRetention), limits_to_json(limits));
}

RetentionReport plan_retention(const QueueFacts& q, const RetentionLimits& l) {
    RetentionReport rep;
    rep.limits = l;
    rep.head = q.head;
    rep.disk_free = q.disk_free;
    rep.first_before = q.segments.empty() ? q.head : std::min(q.segments.front().base, q.head);
    for (const auto& s : q.segments) rep.bytes_before += s.bytes;
    rep.segments_before = q.segments.size();
    rep.first_after = rep.first_before;
    rep.bytes_after = rep.bytes_before;
    rep.segments_after = rep.segments_before;
    const uint64_t keep_free =
        l.keep_free_bytes != 0 ? l.keep_free_bytes : q.disk_size / 100 * l.keep_free_percent;
    const uint64_t max_age_ns = l.max_age_ms * kNsPerMs;

    std::vector<std::optional<QueueFacts::End>> ends(q.segments.size());
    auto end_of = [&](size_t i) -> const QueueFacts::End& {
        if (!ends[i]) ends[i] = q.end_of ? q.end_of(i) : QueueFacts::End{true, 0};
        return *ends[i];
    };
    // The limit segment i exceeds with `bytes` left on disk and `freed` so far, if any.
    auto exceeded = [&](size_t i, uint64_t bytes, uint64_t freed) -> std::optional<RetentionCause> {
        if (l.max_bytes != 0 && bytes > l.max_bytes) return RetentionCause::max_bytes;
        if (max_age_ns != 0 && q.now_ns > max_age_ns &&
            end_of(i).newest_ns < q.now_ns - max_age_ns) {
            return RetentionCause::max_age;
        }
        if (l.max_records != 0 && q.head - q.segments[i].base > l.max_records) {
            return RetentionCause::max_records;
        }
        if (keep_free != 0 && q.disk_known && q.disk_free + freed < keep_free) {
            return RetentionCause::keep_free;
        }
        return std::nullopt;
    };
    // Deletable at all: not the last segment, every record committed, sealed.
    auto deletable = [&](size_t i) {
        return i + 1 < q.segments.size() && q.segments[i + 1].base <= q.head && end_of(i).sealed;
    };
    // A reader needs a segment until it has read past it; one that is behind the first
    // record on disk already (expired) resumes at that first record, so it needs it too.
    auto needs = [&](const ReaderFacts& r, uint64_t next_base) {
        return r.damaged || std::max(r.position, rep.first_before) < next_base;
    };

    if (!l.any()) return rep;
    uint64_t bytes = rep.bytes_before, freed = 0;
    for (size_t i = 0; deletable(i); ++i) {
        const auto cause = exceeded(i, bytes, freed);
        if (!cause) break;
        const uint64_t next = q.segments[i + 1].base;
        const bool pinned =
            !l.hard && std::any_of(q.readers.begin(), q.readers.end(),
                                   [&](const ReaderFacts& r) { return needs(r, next); });
        if (pinned) {
            // How far the limits would go without readers, and what each reader keeps of it.
            std::vector<size_t> wanted;
            uint64_t b = bytes, f = freed;
            for (size_t j = i; deletable(j) && exceeded(j, b, f); ++j) {
                wanted.push_back(j);
                b -= q.segments[j].bytes;
                f += q.segments[j].bytes;
            }
            for (const ReaderFacts& r : q.readers) {
                ReaderPin p{r.name, r.position, r.alive, r.damaged, 0, 0, 0};
                for (size_t j : wanted) {
                    if (!needs(r, q.segments[j + 1].base)) continue;
                    p.bytes += q.segments[j].bytes;
                    ++p.segments;
                }
                if (p.segments != 0) rep.pinned.push_back(std::move(p));
            }
            break;
        }
        SegmentDeletion d;
        d.file = files::segment_name(q.segments[i].base);
        d.base = q.segments[i].base;
        d.records = next - q.segments[i].base;
        d.bytes = q.segments[i].bytes;
        d.cause = *cause;
        d.first_after = next;
        rep.deleted.push_back(std::move(d));
        bytes -= q.segments[i].bytes;
        freed += q.segments[i].bytes;
        rep.first_after = next;
    }
    rep.bytes_after = bytes;
    rep.segments_after = rep.segments_before - rep.deleted.size();
    for (const ReaderFacts& r : q.readers) {
        if (!r.damaged && r.position < rep.first_after) {
            rep.expired.push_back(
                {r.name, r.position, r.alive, false, 0, 0, rep.first_after - r.position});
        }
    }
    return rep;
}

std::string summarize(const RetentionReport& r, uint64_t when_ns) {
    uint64_t n = 0, bytes = 0;
    for (const auto& d : r.deleted) {
        if (!d.done) continue;
        ++n;
        bytes += d.bytes;
    }
    if (n == 0 && r.error.ok()) return {};
    const time_t secs = static_cast<time_t>(when_ns / 1000000000);
    tm t{};
    gmtime_r(&secs, &t);
    char stamp[32];
    (void)std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &t);
    std::string s = std::string(stamp) + ": ";
    if (n != 0) {
        s += "deleted " + std::to_string(n) + (n == 1 ? " segment, " : " segments, ") +
             describe_bytes(bytes) + " (" + cause_name(r.deleted.front().cause) +
             "); first available " + std::to_string(r.first_after);
    }
    if (!r.error.ok()) s += (n != 0 ? "; " : "") + r.error.message();
    return s;
}

namespace {

// Replaces retention.last with this pass's line (atomically: a reader sees the previous
// line or this one). Best effort: a pass that cannot record itself still did its work.
void record_pass(int dirfd, std::string_view dir, const RetentionReport& r) {
    const std::string line = summarize(r, fs::realtime_ns());
    if (line.empty()) return;
    const nlohmann::json j = {{"version", 1}, {"pid", ::getpid()}, {"line", line}};
    (void)fs::write_file_atomic(dirfd, dir, files::kRetentionLast,
                                files::temp_name(files::kRetentionLast), j.dump() + "\n");
}

}  // namespace

Result<std::string> last_retention_pass(std::string_view dir) {
    auto dfd = files::open_queue_dir(dir);
    if (!dfd) return dfd.status();
    auto text = fs::read_small_file(dfd->get(), dir, files::kRetentionLast, 65536);
    if (!text) {
        if (text.status().code() == errc::not_found) return std::string();
        return text.status();
    }
    const nlohmann::json j = nlohmann::json::parse(text.value(), nullptr, false);
    std::string line;
    int pid = 0;
    if (j.is_discarded() || !j.is_object() || !json_fields::get_string(j, "line", line)) {
        return Status(errc::corrupt, fs::join(dir, files::kRetentionLast) + ": not a pass record");
    }
    if (json_fields::get_int(j, "pid", pid) && pid > 0)
        line += " (pid " + std::to_string(pid) + ")";
    return line;
}

Result<RetentionReport> apply_retention(std::string_view dir, const RetainOptions& o) {
    auto dfd = files::open_queue_dir(dir);
    if (!dfd) return dfd.status();
    // One pass at a time per queue (the writer's thread, chronicle-queue retain): a flock
    // on the directory, dropped by the kernel if we die. Where flock is not supported the
    // pass runs anyway: deleting ascending with ENOENT as done never leaves a hole.
    if (::flock(dfd->get(), LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK) {
        RetentionReport busy;
        busy.busy = true;
        return busy;
    }
    // A pass that cannot even start says why in retention.last (the writer's thread has
    // nobody else to tell).
    auto failed = [&](const Status& st) -> Result<RetentionReport> {
        if (!o.dry_run) {
            RetentionReport r;
            r.error = st;
            record_pass(dfd->get(), dir, r);
        }
        return st;
    };
    RetentionLimits limits;
    if (o.limits) {
        limits = *o.limits;
    } else {
        auto l = read_retention(dir);
        if (!l) return failed(l.status());
        limits = l.value();
    }
    auto facts = gather_facts(dfd->get(), dir);
    if (!facts) return failed(facts.status());
    RetentionReport rep = plan_retention(facts.value(), limits);
    if (o.dry_run) return rep;
    for (SegmentDeletion& d : rep.deleted) {
        // Ascending, one at a time: a pass killed here leaves a contiguous range.
        if (::unlinkat(dfd->get(), d.file.c_str(), 0) != 0 && errno != ENOENT) {
            rep.error = Status::from_errno(errno, "cannot delete", fs::join(dir, d.file));
            break;
        }
        d.done = true;
    }
    if (!rep.error.ok()) {
        // What is left starts at the first segment not deleted.
        uint64_t first = rep.first_before, bytes = rep.bytes_before;
        uint64_t segments = rep.segments_before;
        for (const SegmentDeletion& d : rep.deleted) {
            if (!d.done) break;
            first = d.first_after;
            bytes -= d.bytes;
            --segments;
        }
        rep.first_after = first;
        rep.bytes_after = bytes;
        rep.segments_after = segments;
        std::erase_if(rep.expired, [&](const ReaderPin& p) { return p.position >= first; });
        for (ReaderPin& p : rep.expired) p.records_lost = first - p.position;
    }
    record_pass(dfd->get(), dir, rep);
    return rep;
}

}  // namespace chronicle
