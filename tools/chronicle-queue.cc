// chronicle-queue — a queue as a whole: what it holds and keeps (info), its retention limits
// (set), the retention pass on demand (retain), and a structural check (verify). See
// chronicle-queue(1).
//
// --json output follows the versioned schemas "chronicle.queue/v1" (info),
// "chronicle.retain/v1" (retain) and "chronicle.verify/v1" (verify), documented in the man
// page.
#include <algorithm>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "chronicle/admin.h"
#include "chronicle/retention.h"
#include "cli.h"
#include "render.h"
#include "retention_flags.h"

using namespace chronicle;
using json = nlohmann::ordered_json;  // keys in the documented order, schema first

namespace {

struct Options {
    std::string queue;
    bool json = false;
    bool dry_run = false;
    cli::RetentionFlags limits;
    bool hard = false;
    bool soft = false;
    bool repair = false;
};

std::string dump(const json& j) {
    return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

int print_out(const std::string& s) {
    if (!cli::write_all(1, s.data(), s.size()) && errno != EPIPE) {
        return cli::report(Status::from_errno(errno, "cannot write", "standard output"));
    }
    return cli::kOk;
}

std::string plural(uint64_t n, const char* what) {
    return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
}

json limits_json(const RetentionLimits& l) {
    return {{"max_bytes", l.max_bytes},
            {"max_age_ms", l.max_age_ms},
            {"max_records", l.max_records},
            {"keep_free_bytes", l.keep_free_bytes},
            {"keep_free_percent", l.keep_free_percent},
            {"mode", l.hard ? "hard" : "soft"}};
}

json deletions_json(const RetentionReport& r) {
    json a = json::array();
    for (const auto& d : r.deleted) {
        a.push_back({{"file", d.file},
                     {"base", d.base},
                     {"records", d.records},
                     {"bytes", d.bytes},
                     {"cause", cause_name(d.cause)},
                     {"first_after", d.first_after},
                     {"done", d.done}});
    }
    return a;
}

json pins_json(const std::vector<ReaderPin>& pins, bool expired) {
    json a = json::array();
    for (const auto& p : pins) {
        json j = {{"name", p.name},
                  {"position", p.damaged ? json(nullptr) : json(p.position)},
                  {"alive", p.alive}};
        if (expired) {
            j["records_lost"] = p.records_lost;
        } else {
            j["damaged"] = p.damaged;
            j["bytes"] = p.bytes;
            j["segments"] = p.segments;
        }
        a.push_back(std::move(j));
    }
    return a;
}

std::string where(const ReaderPin& p) {
    return "reader '" + cli::printable(p.name) + "' " +
           (p.damaged ? std::string("(its cursor is damaged: position unknown)")
                      : "at " + std::to_string(p.position));
}

// retain: "kept 64.0 MiB (1 segment) for reader 'audit' at 1000 (soft limits; …)"
std::string pin_line(const std::string& queue, const ReaderPin& p) {
    return "kept " + describe_bytes(p.bytes) + " (" + plural(p.segments, "segment") + ") for " +
           where(p) + " (soft limits; chronicle-readers " + cli::printable(queue) + " reset " +
           cli::printable(p.name) + ", or set --hard, releases it)\n";
}

// retain: "expired reader 'old': 995 unread records deleted; first available 1000"
std::string expired_line(const ReaderPin& p, uint64_t first) {
    return "expired reader '" + cli::printable(p.name) + "': " + std::to_string(p.records_lost) +
           " unread records deleted; first available " + std::to_string(first) + "\n";
}

// ------------------------------------------------------------------------------- info

int info(const Options& o) {
    auto q = inspect_queue(o.queue);
    if (!q) return cli::report(q.status());
    auto segs = inspect_segments(o.queue);
    if (!segs) return cli::report(segs.status());
    auto limits = read_retention(o.queue);
    if (!limits) return cli::report(limits.status());
    RetainOptions ro;
    ro.dry_run = true;
    ro.limits = limits.value();
    auto plan = apply_retention(o.queue, ro);
    if (!plan) return cli::report(plan.status());
    const QueueStats& s = q.value();
    if (o.json) {
        json segments = json::array();
        for (const auto& g : segs.value()) {
            segments.push_back(
                {{"file", g.file}, {"base", g.base}, {"records", g.records}, {"bytes", g.bytes}});
        }
        json j = {
            {"schema", "chronicle.queue/v1"},
            {"dir", s.dir},
            {"id", s.id.empty() ? json(nullptr) : json(s.id)},
            {"first_seq", s.first_seq},
            {"head_seq", s.head_seq},
            {"records", s.head_seq - s.first_seq},
            {"bytes", s.bytes},
            {"segment_size", s.segment_size},
            {"segments", segments},
            {"newest_ns", s.last_timestamp_ns == 0 ? json(nullptr) : json(s.last_timestamp_ns)},
            {"newest",
             s.last_timestamp_ns == 0 ? json(nullptr) : json(cli::iso_time(s.last_timestamp_ns))},
            {"writer",
             {{"alive", s.writer_alive},
              {"pid", s.writer_alive ? json(s.writer_pid) : json(nullptr)},
              {"pids", s.writer_pids}}},
            {"disk", {{"free", s.disk_free}, {"size", s.disk_size}}},
            {"retention", limits_json(limits.value())},
            {"last_pass", s.retention_last.empty() ? json(nullptr) : json(s.retention_last)},
            {"pinned", pins_json(plan->pinned, false)},
            {"expired", pins_json(plan->expired, true)},
            {"would_delete", deletions_json(plan.value())}};
        return print_out(dump(j));
    }
    std::ostringstream t;
    t << "queue:      " << cli::printable(s.dir) << "\n";
    if (!s.id.empty()) t << "id:         " << s.id << "\n";
    t << "segments:   " << s.segments;
    if (!segs->empty()) {
        t << " (" << segs->front().file << (segs->size() > 1 ? " .. " + segs->back().file : "")
          << ")";
    }
    t << ", " << describe_bytes(s.bytes) << " on disk\n";
    t << "records:    ";
    if (s.head_seq > s.first_seq) {
        t << s.first_seq << " .. " << s.head_seq - 1 << " ("
          << plural(s.head_seq - s.first_seq, "record") << "; head " << s.head_seq << ")\n";
    } else {
        t << "none (head " << s.head_seq << ")\n";
    }
    if (s.last_timestamp_ns != 0) t << "newest:     " << cli::iso_time(s.last_timestamp_ns) << "\n";
    t << "writer:     " << cli::describe_writers(s.writer_pids) << "\n";
    t << "disk:       " << describe_bytes(s.disk_free) << " free of " << describe_bytes(s.disk_size)
      << "\n";
    t << "retention:  " << describe(limits.value()) << "\n";
    if (!s.retention_last.empty()) t << "last pass:  " << cli::printable(s.retention_last) << "\n";
    for (const auto& p : plan->pinned) {
        t << "pinned:     " << where(p) << " keeps " << describe_bytes(p.bytes) << " ("
          << plural(p.segments, "segment") << ")\n";
    }
    for (const auto& p : plan->expired) {
        t << "expired:    " << where(p) << ": " << p.records_lost
          << " records lost, first available " << s.first_seq << "\n";
    }
    if (plan->deleted.empty()) {
        t << "next pass:  nothing to delete\n";
    } else {
        uint64_t bytes = 0;
        for (const auto& d : plan->deleted) bytes += d.bytes;
        t << "next pass:  would delete " << plural(plan->deleted.size(), "segment") << ", "
          << describe_bytes(bytes) << " (" << cause_name(plan->deleted.front().cause) << ")\n";
    }
    return print_out(t.str());
}

// -------------------------------------------------------------------------------- set

int set(const Options& o) {
    if (!o.limits.any() && !o.hard && !o.soft) {
        throw CLI::ValidationError("set",
                                   "nothing to set: give --max-bytes, --max-age, "
                                   "--max-records, --keep-free, --hard or --soft");
    }
    auto l = read_retention(o.queue);
    if (!l) return cli::report(l.status());
    RetentionLimits limits = l.value();
    cli::apply_retention_flags(o.limits, limits);  // a keep-free replaces either form
    if (o.hard) limits.hard = true;
    if (o.soft) limits.hard = false;
    if (Status st = write_retention(o.queue, limits); !st) return cli::report(st);
    return print_out(o.queue + ": retention: " + describe(limits) + "\n");
}

// ----------------------------------------------------------------------------- retain

int retain(const Options& o) {
    RetainOptions ro;
    ro.dry_run = o.dry_run;
    auto r = apply_retention(o.queue, ro);
    if (!r) return cli::report(r.status());
    const RetentionReport& rep = r.value();
    if (rep.busy) {
        return cli::report(
            Status(errc::busy, "another process is applying retention to " + o.queue + " now"));
    }
    int rc = cli::kOk;
    if (o.json) {
        json j = {{"schema", "chronicle.retain/v1"},
                  {"dry_run", o.dry_run},
                  {"retention", limits_json(rep.limits)},
                  {"first_before", rep.first_before},
                  {"first_after", rep.first_after},
                  {"head", rep.head},
                  {"bytes_before", rep.bytes_before},
                  {"bytes_after", rep.bytes_after},
                  {"deleted", deletions_json(rep)},
                  {"pinned", pins_json(rep.pinned, false)},
                  {"expired", pins_json(rep.expired, true)},
                  {"error", rep.error.ok() ? json(nullptr) : json(rep.error.message())}};
        rc = print_out(dump(j));
    } else {
        std::ostringstream t;
        uint64_t n = 0, bytes = 0;
        for (const auto& d : rep.deleted) {
            if (!o.dry_run && !d.done) continue;
            t << (o.dry_run ? "would delete " : "deleted ") << d.file << ": "
              << plural(d.records, "record") << ", " << describe_bytes(d.bytes) << " ("
              << cause_name(d.cause) << "); first available " << d.first_after << "\n";
            ++n;
            bytes += d.bytes;
        }
        for (const auto& p : rep.pinned) t << pin_line(o.queue, p);
        for (const auto& p : rep.expired) t << expired_line(p, rep.first_after);
        if (n == 0) {
            t << o.queue << ": nothing to delete (retention: " << describe(rep.limits) << ")\n";
        } else {
            t << o.queue << ": " << (o.dry_run ? "would delete " : "deleted ")
              << plural(n, "segment") << ", " << describe_bytes(bytes) << "; "
              << plural(rep.segments_after, "segment") << ", " << describe_bytes(rep.bytes_after)
              << " left; first available " << rep.first_after << "\n";
        }
        rc = print_out(t.str());
    }
    if (!rep.error.ok()) return cli::report(rep.error);
    return rc;
}

// ----------------------------------------------------------------------------- verify

int verify(const Options& o) {
    auto r = verify_queue(o.queue, o.repair);
    if (!r) return cli::report(r.status());
    const VerifyReport& v = r.value();
    int rc = cli::kOk;
    if (o.json) {
        json problems = json::array();
        for (const auto& p : v.problems) {
            problems.push_back({{"file", p.file},
                                {"offset", p.offset},
                                {"problem", p.what},
                                {"repairable", p.repairable}});
        }
        json j = {{"schema", "chronicle.verify/v1"},
                  {"dir", o.queue},
                  {"ok", v.problems.empty()},
                  {"repaired", v.repaired},
                  {"segments", v.segments},
                  {"records", v.records},
                  {"first_seq", v.first_seq},
                  {"head_seq", v.head_seq},
                  {"problems", problems},
                  {"notes", v.notes}};
        rc = print_out(dump(j));
    } else {
        std::ostringstream t;
        for (const auto& p : v.problems) {
            t << cli::printable(o.queue) << "/" << cli::printable(p.file) << ": offset " << p.offset
              << ": " << cli::printable(p.what) << "\n";
        }
        for (const auto& n : v.notes) t << "note: " << cli::printable(n) << "\n";
        t << cli::printable(o.queue) << ": " << plural(v.segments, "segment") << ", "
          << plural(v.records, "record") << " (first " << v.first_seq << ", head " << v.head_seq
          << "), ";
        if (v.problems.empty()) {
            t << "OK";
        } else {
            const auto fixable =
                static_cast<uint64_t>(std::count_if(v.problems.begin(), v.problems.end(),
                                                    [](const Problem& p) { return p.repairable; }));
            t << plural(v.problems.size(), "problem");
            if (fixable != 0 && !o.repair) t << " (" << fixable << " repairable with --repair)";
        }
        t << (v.repaired ? " after repair" : "") << "\n";
        rc = print_out(t.str());
    }
    if (!v.problems.empty()) return cli::kDataError;
    return rc;
}

int tool_main(int argc, char** argv) {
    cli::set_tool("chronicle-queue");
    Options o;
    CLI::App app{"Inspect a chronicle queue and manage its retention.", "chronicle-queue"};
    app.require_subcommand(1, 1);
    app.set_version_flag("--version", cli::version_string("chronicle-queue"));

    auto* info_cmd = app.add_subcommand(
        "info", "what the queue holds and what keeps it: segments, records, limits, pins");
    info_cmd->add_option("QUEUE", o.queue, "queue directory")->required();
    info_cmd->add_flag("--json", o.json, "one JSON document (schema chronicle.queue/v1)");

    auto* set_cmd = app.add_subcommand("set", "change the queue's retention limits");
    set_cmd->add_option("QUEUE", o.queue, "queue directory")->required();
    cli::add_retention_options(*set_cmd, o.limits, true);
    auto* hard = set_cmd->add_flag(
        "--hard", o.hard, "delete even what a named reader has not read (it becomes expired)");
    set_cmd
        ->add_flag("--soft", o.soft,
                   "keep what a named reader has not read, beyond the limits (the default)")
        ->excludes(hard);

    auto* retain_cmd = app.add_subcommand(
        "retain", "apply the retention limits now: delete the oldest segments beyond them");
    retain_cmd->add_option("QUEUE", o.queue, "queue directory")->required();
    retain_cmd->add_flag("--dry-run", o.dry_run, "list what would be deleted, delete nothing");
    retain_cmd->add_flag("--json", o.json, "one JSON document (schema chronicle.retain/v1)");

    auto* verify_cmd = app.add_subcommand(
        "verify", "check the queue's structure and report each problem with file and offset");
    verify_cmd->add_option("QUEUE", o.queue, "queue directory")->required();
    verify_cmd->add_flag("--repair", o.repair,
                         "first run a writer's recovery: rewrite the index, clear what lies "
                         "after the last committed record (never a committed record)");
    verify_cmd->add_flag("--json", o.json, "one JSON document (schema chronicle.verify/v1)");

    return cli::run(argc, argv, app, [&]() -> int {
        if (info_cmd->parsed()) return info(o);
        if (set_cmd->parsed()) return set(o);
        if (verify_cmd->parsed()) return verify(o);
        return retain(o);
    });
}

}  // namespace

int main(int argc, char** argv) {
    return cli::guard(tool_main, argc, argv);
}
