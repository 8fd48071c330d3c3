// chronicle-readers — list, inspect and manage the readers of a queue.
//
// Liveness comes from the kernel's lock table (F_OFD_GETLK), never from taking a lock or
// guessing with pids. --json / --ndjson output follows the versioned schemas
// "chronicle.readers/v1" and "chronicle.reader/v1" documented in chronicle-readers(1).
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

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
    std::string max_idle, warn_idle;  // the age of the newest record
    std::string min_free, warn_free;  // SIZE or N% of the file system
    bool require_writer = false;
    bool prometheus = false;
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

// --watch's previous snapshot: read and append rates come from the differences.
struct Snapshot {
    bool have = false;
    double at = 0;  // seconds, steady clock
    uint64_t head = 0;
    std::map<std::string, uint64_t> positions;
};

std::string rate_text(double r) {
    char buf[32];
    std::snprintf(buf, sizeof buf, r < 10 ? "%.1f" : "%.0f", r);
    return buf;
}

// The table; with `prev` (--watch) a RATE column, records/s since the last redraw.
std::string table(const QueueStats& q, const std::vector<ReaderStats>& rs,
                  const Snapshot* prev = nullptr, double now = 0) {
    std::string out = queue_line(q);
    const bool rates = prev != nullptr;
    const double dt = rates && prev->have ? now - prev->at : 0;
    if (rates) {
        out +=
            "appending: " +
            (dt > 0 ? rate_text(static_cast<double>(q.head_seq - std::min(q.head_seq, prev->head)) /
                                dt) +
                          " records/s"
                    : std::string("-")) +
            "\n";
    }
    char line[512];
    std::snprintf(line, sizeof line, "%-24s %12s %10s %9s %8s %-9s %7s %s%s\n", "NAME", "POSITION",
                  "LAG", "LAG-BYTES", "AGE", "STATE", "PID", rates ? "RATE/S   " : "", "WAKE");
    out += line;
    for (const auto& r : rs) {
        const std::string name = cli::printable(r.name);
        if (r.damaged) {
            (void)std::snprintf(line, sizeof line, "%-24s %12s %10s %9s %8s %-9s %7s %s",
                                name.c_str(), "-", "-", "-", "-", "damaged", r.alive ? "?" : "-",
                                rates ? "-        " : "");
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
        std::string rate;
        if (rates) {
            rate = "-";
            auto it = prev->positions.find(r.name);
            if (dt > 0 && it != prev->positions.end() && r.position >= it->second) {
                rate = rate_text(static_cast<double>(r.position - it->second) / dt);
            }
            rate.resize(std::max<size_t>(rate.size(), 8), ' ');
            rate += ' ';
        }
        std::snprintf(line, sizeof line, "%-24s %12llu %10llu %9s %8s %-9s %7s %s%s\n",
                      name.c_str(), static_cast<unsigned long long>(r.position),
                      static_cast<unsigned long long>(r.lag), cli::human_bytes(r.lag_bytes).c_str(),
                      cli::human_age(r.lag_seconds).c_str(), state_of(r).c_str(),
                      r.alive ? std::to_string(r.owner_pid).c_str() : "-", rate.c_str(),
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

// The thresholds of --check, parsed and checked against each other (a WARNING threshold
// beyond its CRITICAL one is a usage error: the check could never say WARNING).
struct Thresholds {
    std::optional<double> crit_lag, warn_lag;    // records
    std::optional<double> crit_age, warn_age;    // seconds: the oldest unread record
    std::optional<double> crit_idle, warn_idle;  // seconds: the newest record
    std::optional<double> crit_free, warn_free;  // bytes free
};

std::optional<double> seconds_of(const std::string& v, std::string_view option) {
    if (v.empty()) return std::nullopt;
    return static_cast<double>(cli::parse_duration_ns(v, option)) / 1e9;
}

// --min-free / --warn-free: a size, or N% of the file system's size.
std::string free_error(const std::string& v, double& out, uint64_t fs_size) {
    if (!v.empty() && v.back() == '%') {
        const std::string n = v.substr(0, v.size() - 1);
        uint64_t pct = 0;
        if (std::string err = cli::uint_problem(n, pct); !err.empty() || pct > 100) {
            return "'" + cli::printable(v) + "' is not a percentage from 0% to 100%";
        }
        out = static_cast<double>(fs_size) * static_cast<double>(pct) / 100.0;
        return {};
    }
    out = static_cast<double>(cli::parse_size(v, "free space"));
    return {};
}

CLI::Validator free_check() {
    return CLI::Validator(
        [](std::string& v) {
            double x = 0;
            try {
                return free_error(v, x, 0);
            } catch (const CLI::ValidationError& e) {
                return std::string(e.what());
            }
        },
        "SIZE|N%", "");
}

Thresholds thresholds(const Options& o) {
    Thresholds t;
    if (o.max_lag) t.crit_lag = static_cast<double>(*o.max_lag);
    if (o.warn_lag) t.warn_lag = static_cast<double>(*o.warn_lag);
    t.crit_age = seconds_of(o.max_age, "--max-age");
    t.warn_age = seconds_of(o.warn_age, "--warn-age");
    t.crit_idle = seconds_of(o.max_idle, "--max-idle");
    t.warn_idle = seconds_of(o.warn_idle, "--warn-idle");
    auto above = [](const std::optional<double>& warn, const std::optional<double>& crit,
                    const char* wname, const char* cname) {
        if (warn && crit && *warn > *crit) {
            throw CLI::ValidationError(wname, std::string("above ") + cname +
                                                  ": WARNING would never come before CRITICAL");
        }
    };
    above(t.warn_lag, t.crit_lag, "--warn-lag", "--max-lag");
    above(t.warn_age, t.crit_age, "--warn-age", "--max-age");
    above(t.warn_idle, t.crit_idle, "--warn-idle", "--max-idle");
    return t;
}

// A performance-data item as the Monitoring Plugins guidelines spell it:
// 'label'=value[UOM];[warn];[crit];[min];[max]. Thresholds are ranges: "N" alerts above N,
// "N:" (with `below`) alerts below N.
std::string perf_item(const std::string& label, double value, const char* uom,
                      const std::optional<double>& warn, const std::optional<double>& crit,
                      std::optional<double> max = std::nullopt, bool below = false) {
    auto num = [](double v) {
        char buf[40];
        if (v == std::floor(v) && std::fabs(v) < 1e15) {
            std::snprintf(buf, sizeof buf, "%.0f", v);
        } else {
            std::snprintf(buf, sizeof buf, "%.3f", v);
        }
        return std::string(buf);
    };
    auto range = [&](const std::optional<double>& t) {
        if (!t) return std::string();
        return below ? num(std::ceil(*t)) + ":" : num(*t);
    };
    std::string quoted;
    for (char c : cli::printable(label)) {
        quoted += c;
        if (c == '\'') quoted += '\'';  // a quote in a label is doubled
    }
    return " '" + quoted + "'=" + num(value) + uom + ";" + range(warn) + ";" + range(crit) + ";0;" +
           (max ? num(*max) : "");
}

double now_seconds() {
    return static_cast<double>(cli::now_ns()) / 1e9;
}

// Monitoring-plugin check over the queue and its named readers (or one): 0 OK,
// 1 WARNING, 2 CRITICAL, with every value checked in the performance data.
int check(const Options& o, const QueueStats& q, const std::vector<ReaderStats>& rs) {
    Thresholds t = thresholds(o);
    if (!o.min_free.empty()) {
        double v = 0;
        (void)free_error(o.min_free, v, q.disk_size);
        t.crit_free = v;
    }
    if (!o.warn_free.empty()) {
        double v = 0;
        (void)free_error(o.warn_free, v, q.disk_size);
        t.warn_free = v;
    }
    if (t.warn_free && t.crit_free && *t.warn_free < *t.crit_free) {
        throw CLI::ValidationError("--warn-free",
                                   "below --min-free: WARNING would never come before CRITICAL");
    }
    g_check_ran = true;
    int level = 0;
    std::vector<std::string> problems[3];  // what made each level, in order found
    auto raise = [&](int l, const std::string& why) {
        level = std::max(level, l);
        problems[l].push_back(why);
    };
    // Readers.
    std::string perf;
    int n = 0;
    const ReaderStats* worst = nullptr;
    int worst_level = -1;
    for (const auto& r : rs) {
        if (r.ephemeral) continue;
        ++n;
        const std::string name = cli::printable(r.name);
        if (r.damaged) {
            raise(2, name + " damaged: " + cli::printable(r.damage));
            continue;
        }
        if (r.expired) {
            raise(2, name + " expired: retention deleted " + std::to_string(r.records_lost) +
                         " unread records (position " + std::to_string(r.position) + ")");
        }
        const auto lag = static_cast<double>(r.lag);
        int l = 0;
        if ((t.crit_lag && lag > *t.crit_lag) || (t.crit_age && r.lag_seconds > *t.crit_age)) {
            l = 2;
        } else if ((t.warn_lag && lag > *t.warn_lag) ||
                   (t.warn_age && r.lag_seconds > *t.warn_age)) {
            l = 1;
        }
        if (l > 0) level = std::max(level, l);
        if (worst == nullptr || l > worst_level ||
            (l == worst_level && (r.lag > worst->lag || r.lag_seconds > worst->lag_seconds))) {
            worst = &r;
            worst_level = l;
        }
        perf += perf_item("lag_" + r.name, lag, "", t.warn_lag, t.crit_lag);
        perf += perf_item("lag_seconds_" + r.name, r.lag_seconds, "s", t.warn_age, t.crit_age);
    }
    // The queue: the newest record's age, writers, free space.
    const double age =
        q.last_timestamp_ns == 0
            ? 0
            : std::max(0.0, now_seconds() - static_cast<double>(q.last_timestamp_ns) / 1e9);
    if (q.last_timestamp_ns != 0 || t.crit_idle || t.warn_idle) {
        const std::string what = q.last_timestamp_ns == 0
                                     ? std::string("no record yet")
                                     : "newest record " + cli::human_age(age) + " old";
        if (t.crit_idle && (q.last_timestamp_ns == 0 || age > *t.crit_idle)) {
            raise(2, what + " (--max-idle " + o.max_idle + ")");
        } else if (t.warn_idle && (q.last_timestamp_ns == 0 || age > *t.warn_idle)) {
            raise(1, what + " (--warn-idle " + o.warn_idle + ")");
        }
    }
    perf += perf_item("age", age, "s", t.warn_idle, t.crit_idle);
    const auto writers = static_cast<double>(q.writer_pids.size());
    if (o.require_writer && q.writer_pids.empty()) raise(2, "no writer is running");
    perf +=
        perf_item("writers", writers, "", std::nullopt,
                  o.require_writer ? std::optional<double>(1) : std::nullopt, std::nullopt, true);
    const auto free_b = static_cast<double>(q.disk_free);
    if (t.crit_free && free_b < *t.crit_free) {
        raise(2, cli::human_bytes(q.disk_free) + " free (--min-free " + o.min_free + ")");
    } else if (t.warn_free && free_b < *t.warn_free) {
        raise(1, cli::human_bytes(q.disk_free) + " free (--warn-free " + o.warn_free + ")");
    }
    perf += perf_item("free", free_b, "B", t.warn_free, t.crit_free,
                      static_cast<double>(q.disk_size), true);

    const char* names[] = {"OK", "WARNING", "CRITICAL"};
    std::ostringstream msg;
    msg << "CHRONICLE " << names[level] << ": " << n << " reader" << (n == 1 ? "" : "s");
    // The reasons of the worst level first, then the worst reader.
    for (int l = 2; l >= 1; --l) {
        for (const auto& p : problems[l]) msg << ", " << p;
    }
    if (worst != nullptr) {
        msg << ", worst " << cli::printable(worst->name) << " lag " << worst->lag << " ("
            << cli::human_age(worst->lag_seconds) << ")";
    }
    if (problems[2].empty() && problems[1].empty() && q.last_timestamp_ns != 0) {
        msg << ", newest record " << cli::human_age(age) << " old";
    }
    msg << " |" << perf << "\n";
    (void)print_out(msg.str());
    return level;
}

// Prometheus text format (for node_exporter's textfile collector): the queue's and each
// named reader's figures, with HELP and TYPE, in base units (seconds, bytes).
std::string prometheus(const QueueStats& q, const std::vector<ReaderStats>& rs) {
    auto label = [](const std::string& v) {
        std::string out;
        for (char c : v) {
            if (c == '\\' || c == '"') {
                out += '\\';
                out += c;
            } else if (c == '\n') {
                out += "\\n";
            } else {
                out += c;
            }
        }
        return out;
    };
    auto num = [](double v) {
        char buf[40];
        std::snprintf(buf, sizeof buf, "%.17g", v);
        return std::string(buf);
    };
    const std::string ql = "queue=\"" + label(q.dir) + "\"";
    std::string out;
    auto family = [&](const char* name, const char* type, const char* help) {
        out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
    };
    auto sample = [&](const char* name, const std::string& labels, double v) {
        out += std::string(name) + "{" + labels + "} " + num(v) + "\n";
    };
    family("chronicle_queue_head_sequence", "gauge", "Sequence number the next record will get.");
    sample("chronicle_queue_head_sequence", ql, static_cast<double>(q.head_seq));
    family("chronicle_queue_first_sequence", "gauge",
           "Sequence number of the first record on disk.");
    sample("chronicle_queue_first_sequence", ql, static_cast<double>(q.first_seq));
    family("chronicle_queue_records", "gauge", "Records on disk.");
    sample("chronicle_queue_records", ql, static_cast<double>(q.head_seq - q.first_seq));
    family("chronicle_queue_size_bytes", "gauge", "Size of the queue's segment files.");
    sample("chronicle_queue_size_bytes", ql, static_cast<double>(q.bytes));
    family("chronicle_queue_segments", "gauge", "Segment files.");
    sample("chronicle_queue_segments", ql, static_cast<double>(q.segments));
    family("chronicle_queue_last_record_timestamp_seconds", "gauge",
           "Time of the newest record (0: none yet).");
    sample("chronicle_queue_last_record_timestamp_seconds", ql,
           static_cast<double>(q.last_timestamp_ns) / 1e9);
    family("chronicle_queue_writers", "gauge", "Writers appending to the queue now.");
    sample("chronicle_queue_writers", ql, static_cast<double>(q.writer_pids.size()));
    family("chronicle_queue_filesystem_free_bytes", "gauge",
           "Bytes available on the queue's file system.");
    sample("chronicle_queue_filesystem_free_bytes", ql, static_cast<double>(q.disk_free));
    family("chronicle_queue_filesystem_size_bytes", "gauge", "Size of the queue's file system.");
    sample("chronicle_queue_filesystem_size_bytes", ql, static_cast<double>(q.disk_size));

    struct Metric {
        const char* name;
        const char* type;
        const char* help;
        double (*value)(const ReaderStats&);
    };
    static const Metric metrics[] = {
        {"chronicle_reader_position", "gauge", "Sequence number of the next record to read.",
         [](const ReaderStats& r) { return static_cast<double>(r.position); }},
        {"chronicle_reader_lag_records", "gauge", "Records not yet read.",
         [](const ReaderStats& r) { return static_cast<double>(r.lag); }},
        {"chronicle_reader_lag_bytes", "gauge", "Bytes of the records not yet read.",
         [](const ReaderStats& r) { return static_cast<double>(r.lag_bytes); }},
        {"chronicle_reader_lag_seconds", "gauge", "Age of the oldest record not yet read.",
         [](const ReaderStats& r) { return r.lag_seconds; }},
        {"chronicle_reader_active", "gauge", "1 while a process holds the reader.",
         [](const ReaderStats& r) { return r.alive ? 1.0 : 0.0; }},
        {"chronicle_reader_expired", "gauge",
         "1 when retention deleted records the reader had not read.",
         [](const ReaderStats& r) { return r.expired ? 1.0 : 0.0; }},
        {"chronicle_reader_last_commit_timestamp_seconds", "gauge",
         "Time the reader last stored its position.",
         [](const ReaderStats& r) { return static_cast<double>(r.commit_ns) / 1e9; }},
    };
    for (const Metric& m : metrics) {
        family(m.name, m.type, m.help);
        for (const auto& r : rs) {
            if (r.ephemeral || r.damaged) continue;
            sample(m.name, ql + ",reader=\"" + label(r.name) + "\"", m.value(r));
        }
    }
    family("chronicle_reader_damaged", "gauge", "1 when the reader's cursor file is damaged.");
    for (const auto& r : rs) {
        if (r.ephemeral) continue;
        sample("chronicle_reader_damaged", ql + ",reader=\"" + label(r.name) + "\"",
               r.damaged ? 1.0 : 0.0);
    }
    return out;
}

}  // namespace

namespace {

const std::set<std::string_view> kSubcommands = {"list", "show", "create", "delete", "reset", "gc"};
// The options that take the next word as their value (unless given as --opt=value).
const std::set<std::string_view> kValued = {
    "--watch",    "--max-lag",   "--warn-lag",   "--max-age",   "--warn-age",
    "--max-idle", "--warn-idle", "--min-free",   "--warn-free", "--at",
    "--to-seq",   "--to-time",   "--stale-after"};

bool is_directory(const char* p) {
    struct stat st {};
    return ::stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

// Subcommand first, as git and nats take it: "chronicle-readers reset QUEUE NAME ..." is
// the canonical "chronicle-readers QUEUE reset NAME ...". The first word that is neither an
// option nor an option's value names a subcommand (and no directory of that name is
// here), and another word follows it: the two change places. "reset --help" alone shows
// the subcommand's help.
std::vector<char*> canonical_args(int argc, char** argv, std::string& placeholder) {
    std::vector<char*> v(argv, argv + argc);
    std::vector<int> words;
    bool help = false;
    for (int i = 1; i < argc && words.size() < 2; ++i) {
        const std::string_view a(argv[i]);
        if (a == "--") {
            for (int j = i + 1; j < argc && words.size() < 2; ++j) words.push_back(j);
            break;
        }
        if (a.size() > 1 && a[0] == '-') {
            help = help || a == "--help" || a == "-h";
            if (kValued.count(a) != 0) ++i;
            continue;
        }
        words.push_back(i);
    }
    if (words.empty() || kSubcommands.count(argv[words[0]]) == 0 || is_directory(argv[words[0]])) {
        return v;
    }
    if (words.size() >= 2) {
        std::swap(v[static_cast<size_t>(words[0])], v[static_cast<size_t>(words[1])]);
    } else if (help) {
        v.insert(v.begin() + words[0], placeholder.data());  // "QUEUE reset --help"
    }
    return v;
}

// Usage lines of a subcommand's --help: both orders, with QUEUE (CLI11 would print
// "chronicle-readers reset [OPTIONS] NAME", without the queue).
class Formatter : public CLI::Formatter {
  public:
    std::string make_usage(const CLI::App* app, std::string name) const override {
        std::string u = CLI::Formatter::make_usage(app, name);
        if (app->get_parent() == nullptr) return u;
        const std::string sub = app->get_name();
        const std::string from = "chronicle-readers " + sub;
        const auto at = u.find(from);
        if (at == std::string::npos) return u;
        std::string rest = u.substr(at + from.size());
        while (!rest.empty() && rest.back() == '\n') rest.pop_back();
        return u.substr(0, at) + "chronicle-readers [OPTIONS] QUEUE " + sub + rest +
               "\n   or: chronicle-readers " + sub + " QUEUE" + rest + "\n";
    }
};

int tool_main(int argc, char** argv) {
    cli::set_tool("chronicle-readers");
    Options o;
    CLI::App app{"List, inspect and manage the readers of a chronicle queue.", "chronicle-readers"};
    app.formatter(std::make_shared<Formatter>());
    app.fallthrough();
    app.require_subcommand(0, 1);
    app.add_option("QUEUE", o.queue, "queue directory")->required();
    app.add_flag("--json", o.json, "one JSON document (schema chronicle.readers/v1)");
    app.add_flag("--ndjson", o.ndjson, "one JSON line per reader (schema chronicle.reader/v1)")
        ->excludes("--json");
    auto* watch = app.add_option("--watch", o.watch, "redraw every SECS seconds until interrupted")
                      ->check(cli::seconds_check());
    app.add_flag("--check", o.check,
                 "monitoring-plugin check: exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN");
    auto* check_flag = app.get_option("--check");
    // A plugin checks once; the monitoring system repeats it.
    watch->excludes(check_flag);
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
    app.add_option("--max-idle", o.max_idle,
                   "with --check: CRITICAL when the newest record is older than DUR (or there "
                   "is none)")
        ->check(cli::duration_check())
        ->needs(check_flag);
    app.add_option("--warn-idle", o.warn_idle,
                   "with --check: WARNING when the newest record is older than DUR")
        ->check(cli::duration_check())
        ->needs(check_flag);
    app.add_option("--min-free", o.min_free,
                   "with --check: CRITICAL when the file system has less free (SIZE or N%)")
        ->check(free_check())
        ->needs(check_flag);
    app.add_option("--warn-free", o.warn_free,
                   "with --check: WARNING when the file system has less free (SIZE or N%)")
        ->check(free_check())
        ->needs(check_flag);
    app.add_flag("--require-writer", o.require_writer,
                 "with --check: CRITICAL when no writer is running")
        ->needs(check_flag);
    app.add_flag("--prometheus", o.prometheus,
                 "Prometheus text format (for node_exporter's textfile collector)")
        ->excludes("--json")
        ->excludes("--ndjson")
        ->excludes(check_flag);

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
    std::string placeholder = "QUEUE";
    std::vector<char*> args = canonical_args(argc, argv, placeholder);
    const int rc = cli::run(static_cast<int>(args.size()), args.data(), app, [&]() -> int {
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
            std::vector<std::string> deferred;
            auto r = gc_readers(o.queue, stale, o.dry_run, &deferred);
            if (!r) return cli::report(r.status());
            std::string out;
            for (const auto& f : r.value())
                out += (o.dry_run ? "would remove " : "removed ") + cli::printable(f) + "\n";
            for (const auto& f : deferred) {
                out += "kept " + cli::printable(f) + ": changed less than " +
                       std::to_string(kGcGraceSeconds) +
                       " s ago (its owner may be setting it up); run gc again later\n";
            }
            return print_out(out);
        }
        (void)list;
        if (o.watch > 0) cli::install_termination_handlers();
        Snapshot snap;
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
            if (o.check) return check(o, q.value(), rs);
            if (o.prometheus) return print_out(prometheus(q.value(), rs));
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
            } else if (show->parsed()) {
                out = show_text(q.value(), rs.front());
            } else if (o.watch > 0) {
                // A header as watch(1) prints one, and rates since the last redraw.
                const double now = std::chrono::duration<double>(
                                       std::chrono::steady_clock::now().time_since_epoch())
                                       .count();
                char every[32];
                std::snprintf(every, sizeof every, "%g", o.watch);
                out = "Every " + std::string(every) + "s: chronicle-readers " +
                      cli::printable(o.queue) + "    " + cli::iso_time(cli::now_ns()) + "\n\n" +
                      table(q.value(), rs, &snap, now);
                snap.have = true;
                snap.at = now;
                snap.head = q.value().head_seq;
                snap.positions.clear();
                for (const auto& r : rs) snap.positions[r.name] = r.position;
            } else {
                out = table(q.value(), rs);
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
