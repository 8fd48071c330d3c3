// chronicle-readers — list, inspect and manage the readers of a queue.
//
// Liveness comes from the kernel's lock table (F_OFD_GETLK), never from taking a lock or
// guessing with pids. --json / --ndjson output follows the versioned schemas
// "chronicle.readers/v1" and "chronicle.reader/v1" documented in chronicle-readers(1).
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include "chronicle/admin.h"
#include "chronicle/reader.h"
#include "cli.h"
#include "render.h"

using namespace chronicle;
using json = nlohmann::ordered_json;  // keys in the documented order, schema first

namespace {

// Every JSON document is printed through here: bytes that are not UTF-8 (a file name in
// readers/ can be anything) become U+FFFD, each, instead of an exception.
std::string dump(const json& j) {
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

struct Options {
    std::string queue;
    bool json = false;
    bool ndjson = false;
    double watch = 0;
    bool check = false;
    std::optional<uint64_t> max_lag, warn_lag;
    std::string max_age, warn_age;
    // Subcommand arguments.
    std::string name;
    std::string at = "start";
    cli::PositionFlags to;  // reset: --to-seq, --to-time, --to-start, --to-end
    bool dry_run = false;
    std::string stale_after;
};

json queue_json(const QueueStats& q) {
    return {{"dir", q.dir},
            {"head_seq", q.head_seq},
            {"first_seq", q.first_seq},
            {"records", q.head_seq - q.first_seq},
            {"last_timestamp_ns", q.last_timestamp_ns},
            {"segments", q.segments},
            {"segment_size", q.segment_size},
            {"bytes", q.bytes},
            {"disk_free", q.disk_free},
            {"writer",
             {{"alive", q.writer_alive},
              {"pid", q.writer_alive ? json(q.writer_pid) : json(nullptr)},
              {"pids", q.writer_pids}}},
            {"notifier",
             {{"rescans", q.notifier_rescans},
              {"wakes", q.notifier_wakes},
              // Why the live writer wakes nobody (null when it does, or when none is alive).
              {"error", q.notifier_status.empty() ? json(nullptr) : json(q.notifier_status)}}}};
}

std::string state_of(const ReaderStats& r) {
    if (r.damaged) return "damaged";
    if (r.expired) return "expired";
    if (!r.alive) return "idle";
    if (r.follower.registered) return r.follower.sleeping ? "sleeping" : "reading";
    return "open";
}

json reader_json(const ReaderStats& r) {
    // A damaged cursor's numbers are unknown: null, not a made-up 0.
    auto known = [&](const json& v) { return r.damaged ? json(nullptr) : v; };
    json j = {{"name", r.name},
              {"ephemeral", r.ephemeral},
              {"alive", r.alive},
              {"pid", r.alive && !r.damaged ? json(r.owner_pid) : json(nullptr)},
              {"position", known(r.position)},
              {"lag", known(r.lag)},
              {"lag_bytes", known(r.lag_bytes)},
              {"lag_seconds", known(r.lag_seconds)},
              {"created_ns", known(r.created_ns)},
              {"commit_ns", known(r.commit_ns)},
              {"expired", known(r.expired)},
              {"records_lost", known(r.records_lost)}};
    if (r.follower.registered) {
        const FollowerStats& f = r.follower;
        j["follower"] = {{"pid", f.pid},
                         {"fd", f.fd},
                         {"fifo", f.fifo},
                         {"start_time", f.start_time},
                         {"eventfd_id", f.eventfd_id},
                         {"created_ns", f.created_ns},
                         {"alive", f.pid_alive && r.alive},
                         {"sleeping", f.sleeping},
                         {"wakeups", f.wakeups}};
    } else {
        j["follower"] = nullptr;
    }
    j["state"] = state_of(r);
    j["damage"] = r.damaged ? json(r.damage) : json(nullptr);
    return j;
}

// One reader as a chronicle.reader/v1 document (--ndjson lines and show --json).
std::string reader_line(const QueueStats& q, const ReaderStats& r) {
    json j = {{"schema", "chronicle.reader/v1"}, {"queue", q.dir}, {"head_seq", q.head_seq}};
    const json fields = reader_json(r);  // kept alive for the loop (items() is a view)
    for (const auto& [k, v] : fields.items()) j[k] = v;
    return dump(j) + "\n";
}

std::string queue_line(const QueueStats& q) {
    std::ostringstream o;
    o << "queue " << cli::printable(q.dir) << ": head " << q.head_seq << " (first " << q.first_seq
      << "), " << q.segments << " segment" << (q.segments == 1 ? "" : "s") << " of "
      << cli::human_bytes(q.segment_size) << ", " << cli::human_bytes(q.bytes) << " on disk, "
      << cli::human_bytes(q.disk_free) << " free, writer " << cli::describe_writers(q.writer_pids)
      << "\n";
    if (!q.notifier_status.empty()) {
        o << "note: the writer wakes no follower: " << cli::printable(q.notifier_status) << "\n";
    }
    return o.str();
}

std::string table(const QueueStats& q, const std::vector<ReaderStats>& rs) {
    std::string out = queue_line(q);
    char line[512];
    std::snprintf(line, sizeof line, "%-24s %12s %10s %9s %8s %-9s %7s %s\n", "NAME", "POSITION",
                  "LAG", "LAG-BYTES", "AGE", "STATE", "PID", "WAKE");
    out += line;
    for (const auto& r : rs) {
        const std::string name = cli::printable(r.name);
        if (r.damaged) {
            (void)std::snprintf(line, sizeof line, "%-24s %12s %10s %9s %8s %-9s %7s ",
                                name.c_str(), "-", "-", "-", "-", "damaged", r.alive ? "?" : "-");
            out += line + cli::printable(r.damage) + "\n";
            continue;
        }
        std::string wake = "-";
        if (r.follower.registered) {
            wake = r.follower.pid_alive && r.alive
                       ? "eventfd " + std::to_string(r.follower.fd) + ", " +
                             std::to_string(r.follower.wakeups) + " wakeups"
                       : "stale (run gc)";
        }
        std::snprintf(line, sizeof line, "%-24s %12llu %10llu %9s %8s %-9s %7s %s\n", name.c_str(),
                      static_cast<unsigned long long>(r.position),
                      static_cast<unsigned long long>(r.lag), cli::human_bytes(r.lag_bytes).c_str(),
                      cli::human_age(r.lag_seconds).c_str(), state_of(r).c_str(),
                      r.alive ? std::to_string(r.owner_pid).c_str() : "-",
                      cli::printable(wake).c_str());
        out += line;
    }
    if (rs.empty()) out += "(no readers)\n";
    return out;
}

std::string show_text(const QueueStats& q, const ReaderStats& r) {
    std::ostringstream o;
    o << "reader:      " << cli::printable(r.name) << (r.ephemeral ? " (anonymous follower)" : "")
      << "\n";
    if (r.damaged) {
        o << "state:       damaged" << (r.alive ? " (held by a process)" : "") << "\n"
          << "damage:      " << cli::printable(r.damage) << "\n"
          << "head:        " << q.head_seq << "\n";
        return o.str();
    }
    o << "state:       " << state_of(r)
      << (r.alive ? " (pid " + std::to_string(r.owner_pid) + ")" : "") << "\n"
      << "position:    " << r.position << "\n";
    if (r.expired) {
        o << "expired:     retention deleted " << r.records_lost
          << " records it had not read; the first on disk is " << q.first_seq << "\n";
    }
    o << "head:        " << q.head_seq << "\n"
      << "lag:         " << r.lag << " records, " << cli::human_bytes(r.lag_bytes)
      << (r.lag_bytes < 1024 ? " bytes" : "") << ", oldest unread " << cli::human_age(r.lag_seconds)
      << " old\n";
    if (r.follower.registered) {
        const auto& f = r.follower;
        o << "follower:    pid " << f.pid << ", eventfd " << f.fd << " (id " << f.eventfd_id
          << "), fifo readers/" << cli::printable(f.fifo) << ", "
          << (f.pid_alive && r.alive ? "alive" : "stale") << ", "
          << (f.sleeping ? "sleeping" : "awake") << ", " << f.wakeups << " wakeups\n";
    } else {
        o << "follower:    no\n";
    }
    return o.str();
}

// Writes to stdout; a reader that went away (EPIPE) is not an error.
bool g_output_gone = false;
int print_out(const std::string& s) {
    if (!cli::write_all(1, s.data(), s.size())) {
        // A signal while the output was blocked (--watch into a full pipe): the same as a
        // signal between two snapshots.
        if (errno == EPIPE || cli::terminated() != 0) {
            g_output_gone = true;
            return cli::kOk;
        }
        return cli::report(Status::from_errno(errno, "cannot write", "standard output"));
    }
    return cli::kOk;
}

// Parses --at / a position: "start", "end" or a sequence number.
Position parse_at(const std::string& s) {
    if (s == "start") return Position::start();
    if (s == "end") return Position::end();
    if (s.empty() || s[0] < '0' || s[0] > '9') {
        throw CLI::ValidationError(
            "--at", "'" + cli::printable(s) + "' is not start, end or a sequence number");
    }
    return Position::at_seq(cli::parse_uint(s, "--at"));
}

// Set once the check's thresholds parsed: CRITICAL (2) from a check is not a usage error.
bool g_check_ran = false;

// --check could not look: "CHRONICLE UNKNOWN: why" on stdout, exit 3.
int unknown(const Status& st) {
    (void)print_out("CHRONICLE UNKNOWN: " + st.message() + "\n");
    return 3;
}

// Nagios-style check over the named readers (or one): 0 OK, 1 WARNING, 2 CRITICAL.
int check(const Options& o, const std::vector<ReaderStats>& rs) {
    const double max_age =
        o.max_age.empty()
            ? -1
            : static_cast<double>(cli::parse_duration_ns(o.max_age, "--max-age")) / 1e9;
    const double warn_age =
        o.warn_age.empty()
            ? -1
            : static_cast<double>(cli::parse_duration_ns(o.warn_age, "--warn-age")) / 1e9;
    g_check_ran = true;
    int level = 0;
    std::string worst = "-";
    uint64_t worst_lag = 0;
    double worst_age = 0;
    std::string perf;
    const ReaderStats* damaged = nullptr;  // the first damaged cursor: CRITICAL, named
    const ReaderStats* expired = nullptr;  // the first expired reader: CRITICAL, named
    int n = 0;
    for (const auto& r : rs) {
        if (r.ephemeral) continue;
        ++n;
        if (r.damaged) {
            if (damaged == nullptr) damaged = &r;
            level = 2;
            continue;
        }
        if (r.expired && expired == nullptr) expired = &r;
        int l = r.expired ? 2 : 0;
        if ((o.max_lag && r.lag > *o.max_lag) || (max_age >= 0 && r.lag_seconds > max_age)) {
            l = 2;
        } else if ((o.warn_lag && r.lag > *o.warn_lag) ||
                   (warn_age >= 0 && r.lag_seconds > warn_age)) {
            l = 1;
        }
        if (l > level || (l == level && (r.lag > worst_lag || r.lag_seconds > worst_age))) {
            worst = r.name;
            worst_lag = r.lag;
            worst_age = r.lag_seconds;
        }
        level = std::max(level, l);
        perf += " lag_" + cli::printable(r.name) + "=" + std::to_string(r.lag);
    }
    const char* names[] = {"OK", "WARNING", "CRITICAL"};
    std::ostringstream msg;
    msg << "CHRONICLE " << names[level] << ": " << n << " reader" << (n == 1 ? "" : "s");
    if (damaged != nullptr) {
        msg << ", " << cli::printable(damaged->name)
            << " damaged: " << cli::printable(damaged->damage);
    } else if (expired != nullptr) {
        msg << ", " << cli::printable(expired->name) << " expired: retention deleted "
            << expired->records_lost << " unread records (position " << expired->position << ")";
    } else if (n > 0) {
        msg << ", worst " << cli::printable(worst) << " lag " << worst_lag << " ("
            << cli::human_age(worst_age) << ")";
    }
    msg << " |" << perf << "\n";
    (void)print_out(msg.str());
    return level;
}

}  // namespace

namespace {

int tool_main(int argc, char** argv) {
    cli::set_tool("chronicle-readers");
    Options o;
    CLI::App app{"List, inspect and manage the readers of a chronicle queue.", "chronicle-readers"};
    app.fallthrough();
    app.require_subcommand(0, 1);
    app.add_option("QUEUE", o.queue, "queue directory")->required();
    app.add_flag("--json", o.json, "one JSON document (schema chronicle.readers/v1)");
    app.add_flag("--ndjson", o.ndjson, "one JSON line per reader (schema chronicle.reader/v1)")
        ->excludes("--json");
    app.add_option("--watch", o.watch, "redraw every SECS seconds until interrupted")
        ->check(cli::seconds_check());
    app.add_flag("--check", o.check,
                 "monitoring-plugin check: exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN");
    auto* check_flag = app.get_option("--check");
    app.add_option("--max-lag", o.max_lag, "with --check: CRITICAL above N records of lag")
        ->transform(cli::uint_check())
        ->needs(check_flag);
    app.add_option("--warn-lag", o.warn_lag, "with --check: WARNING above N records of lag")
        ->transform(cli::uint_check())
        ->needs(check_flag);
    app.add_option("--max-age", o.max_age,
                   "with --check: CRITICAL when the oldest unread record is older (e.g. 30s, 5m)")
        ->check(cli::duration_check())
        ->needs(check_flag);
    app.add_option("--warn-age", o.warn_age,
                   "with --check: WARNING when the oldest unread record is older")
        ->check(cli::duration_check())
        ->needs(check_flag);

    auto* list = app.add_subcommand("list", "list the queue and its readers (the default)");
    auto* show = app.add_subcommand("show", "show one reader");
    show->add_option("NAME", o.name, "reader name")->required();
    auto* create = app.add_subcommand("create", "create a named reader");
    create->add_option("NAME", o.name, "reader name")->required();
    create->add_option("--at", o.at, "start, end or a sequence number (default start)");
    auto* del = app.add_subcommand("delete", "delete a named reader (refused while in use)");
    del->add_option("NAME", o.name, "reader name")->required();
    auto* reset = app.add_subcommand("reset", "move a reader (refused while in use)");
    reset->add_option("NAME", o.name, "reader name")->required();
    auto* to = reset->add_option_group("target", "where to move it")->require_option(1);
    to->add_option("--to-seq", o.to.seq, "to sequence number S")->transform(cli::uint_check());
    to->add_option("--to-time", o.to.time, "to the first record at or after an ISO-8601 time")
        ->check(cli::time_check());
    to->add_flag("--to-start", o.to.start, "to the first record");
    to->add_flag("--to-end", o.to.end, "past the last record");
    reset->add_flag("--dry-run", o.dry_run, "print the move without making it");
    auto* gc = app.add_subcommand("gc", "remove what dead followers left behind, and stale names");
    gc->add_option("--stale-after", o.stale_after,
                   "also delete named readers nobody holds whose position is older than DUR")
        ->check(cli::duration_check());
    gc->add_flag("--dry-run", o.dry_run, "list what would be removed");
    app.set_version_flag("--version", cli::version_string("chronicle-readers"));

    // Under --check a monitoring system reads 2 as CRITICAL: a usage error there is UNKNOWN.
    bool checking = false;
    for (int i = 1; i < argc; ++i) checking = checking || std::string_view(argv[i]) == "--check";
    const int rc = cli::run(argc, argv, app, [&]() -> int {
        if (create->parsed()) {
            if (Status st = create_reader(o.queue, o.name, parse_at(o.at)); !st)
                return cli::report(st);
            return cli::kOk;
        }
        if (del->parsed()) {
            if (Status st = delete_reader(o.queue, o.name); !st) return cli::report(st);
            return cli::kOk;
        }
        if (reset->parsed()) {
            // Exactly one "target" option was given (require_option(1)).
            const Position p = cli::position_from(o.to, "--to-time").value_or(Position::start());
            auto r = reset_reader(o.queue, o.name, p, o.dry_run);
            if (!r) return cli::report(r.status());
            if (o.json) {
                return print_out(dump(json({{"name", o.name},
                                            {"old_position", r->old_position},
                                            {"new_position", r->new_position},
                                            {"dry_run", o.dry_run}})) +
                                 "\n");
            }
            return print_out((o.dry_run ? "would move " : "moved ") + o.name + " from " +
                             std::to_string(r->old_position) + " to " +
                             std::to_string(r->new_position) + "\n");
        }
        if (gc->parsed()) {
            const uint64_t stale =
                o.stale_after.empty() ? 0 : cli::parse_duration_ns(o.stale_after, "--stale-after");
            auto r = gc_readers(o.queue, stale, o.dry_run);
            if (!r) return cli::report(r.status());
            std::string out;
            for (const auto& f : r.value())
                out += (o.dry_run ? "would remove " : "removed ") + cli::printable(f) + "\n";
            return print_out(out);
        }
        (void)list;
        if (o.watch > 0) cli::install_termination_handlers();
        // list / show, once or under --watch.
        for (;;) {
            auto q = inspect_queue(o.queue);
            if (!q) return o.check ? unknown(q.status()) : cli::report(q.status());
            std::vector<ReaderStats> rs;
            if (show->parsed()) {
                auto r = inspect_reader(o.queue, o.name);
                if (!r) return o.check ? unknown(r.status()) : cli::report(r.status());
                rs.push_back(std::move(r.value()));
            } else {
                auto r = inspect_readers(o.queue);
                if (!r) return o.check ? unknown(r.status()) : cli::report(r.status());
                rs = std::move(r.value());
            }
            if (o.check) return check(o, rs);
            // show of a damaged cursor: an error like any damage (list shows it as such).
            if (show->parsed() && rs.front().damaged) {
                return cli::report(Status(errc::corrupt, rs.front().damage));
            }
            std::string out;
            if (o.ndjson) {
                for (const auto& r : rs) out += reader_line(q.value(), r);
            } else if (o.json) {
                if (show->parsed()) {
                    out = reader_line(q.value(), rs.front());
                } else {
                    json arr = json::array();
                    for (const auto& r : rs) arr.push_back(reader_json(r));
                    out = dump(json({{"schema", "chronicle.readers/v1"},
                                     {"queue", queue_json(q.value())},
                                     {"readers", arr}})) +
                          "\n";
                }
            } else {
                out = show->parsed() ? show_text(q.value(), rs.front()) : table(q.value(), rs);
            }
            if (o.watch <= 0) return print_out(out);
            if (::isatty(1)) {
                out.insert(0, "\x1b[H\x1b[2J");  // home, clear: redraw in place
            } else {
                out += "\n";
            }
            if (const int prc = print_out(out); prc != cli::kOk || g_output_gone) return prc;
            // Sleeps with the termination signals deliverable (they are blocked elsewhere).
            (void)cli::poll_signals(nullptr, 0, static_cast<int>(o.watch * 1000));
            if (cli::terminated() != 0) return cli::kOk;
        }
    });
    if (checking && !g_check_ran && rc == cli::kUsage) {
        (void)print_out("CHRONICLE UNKNOWN: bad command line (see chronicle-readers --help)\n");
        return 3;
    }
    return rc;
}

}  // namespace

int main(int argc, char** argv) {
    return cli::guard(tool_main, argc, argv);
}
