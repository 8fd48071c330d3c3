// The time and duration parsers of the tools (tools/timespec.h), table-driven: every
// format that both accept is checked against date(1) -d, in UTC and in two zones with
// daylight saving time; the forms date(1) does not take against fixed values.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#include "timespec.h"

using namespace chronicle::cli;

namespace {

uint64_t now_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// `date -d SPEC +%s%N` in zone TZ; false if date refuses it.
bool date_d(const std::string& tz, const std::string& spec, uint64_t& ns) {
    const std::string cmd = "TZ='" + tz + "' date -d '" + spec + "' +%s%N 2>/dev/null";
    FILE* f = ::popen(cmd.c_str(), "r");
    REQUIRE(f != nullptr);
    char buf[64] = {};
    const bool got = std::fgets(buf, sizeof buf, f) != nullptr;
    const int rc = ::pclose(f);
    if (!got || rc != 0) return false;
    ns = std::strtoull(buf, nullptr, 10);
    return true;
}

void set_zone(const std::string& tz) {
    ::setenv("TZ", tz.c_str(), 1);
    ::tzset();
}

struct Case {
    const char* ours;   // what chronicle is given
    const char* date;   // the same time for date -d
    uint64_t slack_ms;  // 0: exact; else "now"-relative, both read the clock
};

// Every format both accept. date's "today" is now; its "today 00:00" is journalctl's. (date
// reads "-1 hour" as a zone correction, and "1 hour 30 minutes ago" as +1h -30m, where
// journalctl means an hour ago and 90 minutes ago: those are in the next test.)
const std::vector<Case> kBoth = {
    {"2026-11-29", "2026-11-29", 0},
    {"2026-11-29 14:00", "2026-11-29 14:00", 0},
    {"2026-11-29 14:00:05", "2026-11-29 14:00:05", 0},
    {"2026-11-29T14:00:05", "2026-11-29T14:00:05", 0},
    {"2026-11-29T14:00:05Z", "2026-11-29T14:00:05Z", 0},
    {"2026-11-29T14:00:05.25Z", "2026-11-29T14:00:05.25Z", 0},
    {"2026-11-29T14:00:05+01:00", "2026-11-29T14:00:05+01:00", 0},
    {"2026-11-29T14:00:05-05:30", "2026-11-29T14:00:05-05:30", 0},
    {"2026-11-29 14:00 UTC", "2026-11-29 14:00 UTC", 0},
    {"2024-02-29 23:59:59", "2024-02-29 23:59:59", 0},
    {"2026-07-01 12:00", "2026-07-01 12:00", 0},  // summer time where there is one
    {"2026-03-29 03:30", "2026-03-29 03:30", 0},  // just after the spring change in Berlin
    {"2026-10-25 01:59", "2026-10-25 01:59", 0},
    {"1970-01-02", "1970-01-02", 0},
    {"@1795528496", "@1795528496", 0},
    {"@1795528496.5", "@1795528496.5", 0},
    {"now", "now", 2000},
    {"today", "today 00:00", 2000},
    {"yesterday", "yesterday 00:00", 2000},
    {"tomorrow", "tomorrow 00:00", 2000},
    {"14:07", "14:07", 2000},
    {"14:07:30", "14:07:30", 2000},
    {"00:00", "00:00", 2000},
    {"1 hour ago", "1 hour ago", 2000},
    {"2 days ago", "2 days ago", 2000},
    {"90 minutes ago", "90 minutes ago", 2000},
    {"1 week ago", "1 week ago", 2000},
    {"3 weeks ago", "3 weeks ago", 2000},
    {"30 seconds ago", "30 seconds ago", 2000},
};

}  // namespace

TEST_CASE("every time format both accept means what date -d says, in three zones") {
    for (const char* tz : {"UTC", "Europe/Berlin", "America/New_York"}) {
        set_zone(tz);
        for (const Case& c : kBoth) {
            const std::string zone = tz, spec = c.ours;
            CAPTURE(zone);
            CAPTURE(spec);
            uint64_t want = 0;
            REQUIRE_MESSAGE(date_d(tz, c.date, want), "date -d refuses ", c.date);
            uint64_t got = 0;
            const std::string err = when_error(c.ours, now_ns(), got);
            REQUIRE_MESSAGE(err.empty(), err);
            const int64_t diff = static_cast<int64_t>(got) - static_cast<int64_t>(want);
            const int64_t slack = static_cast<int64_t>(c.slack_ms) * 1000000;
            CHECK_MESSAGE((diff >= -slack && diff <= slack), "ours ", got, " date ", want);
        }
    }
    set_zone("UTC");
}

TEST_CASE("the forms date -d does not take: journalctl's relative times and bare durations") {
    set_zone("UTC");
    const uint64_t now = 2000000000ull * 1000000000ull;
    struct Rel {
        const char* spec;
        int64_t offset_s;
    };
    for (const Rel& r : std::vector<Rel>{{"-1 hour", -3600},
                                         {"+10 minutes", 600},
                                         {"1 hour 30 minutes ago", -5400},
                                         {"-1h", -3600},
                                         {"+1h", 3600},
                                         {"1h ago", -3600},
                                         {"1h30m ago", -5400},
                                         {"-1h30m", -5400},
                                         {"1h30m", -5400},  // a bare duration: ago
                                         {"10m", -600},
                                         {"1w", -604800},
                                         {"2d 3h", -(2 * 86400 + 3 * 3600)},
                                         {"1.5h ago", -5400},
                                         {"  -5min  ", -300}}) {
        const std::string spec = r.spec;
        CAPTURE(spec);
        uint64_t got = 0;
        const std::string err = when_error(r.spec, now, got);
        REQUIRE_MESSAGE(err.empty(), err);
        CHECK(static_cast<int64_t>(got - now) / 1000000000 == r.offset_s);
    }
    uint64_t got = 0;
    REQUIRE(when_error("today", now, got).empty());
    CHECK(got == 1999987200ull * 1000000000ull);  // 2033-05-18T00:00:00Z
    REQUIRE(when_error("14:07", now, got).empty());
    CHECK(got == (1999987200ull + 14 * 3600 + 7 * 60) * 1000000000ull);
}

TEST_CASE("durations as systemd.time(7) spells them") {
    struct D {
        const char* spec;
        uint64_t ns;
    };
    for (const D& d : std::vector<D>{{"90", 90000000000ull},
                                     {"1.5s", 1500000000ull},
                                     {"500ms", 500000000ull},
                                     {"250us", 250000ull},
                                     {"7ns", 7ull},
                                     {"1h30m", 5400000000000ull},
                                     {"1h 30min", 5400000000000ull},
                                     {"2 weeks", 1209600000000000ull},
                                     {"1w", 604800000000000ull},
                                     {"1d", 86400000000000ull},
                                     {"3 hours", 10800000000000ull},
                                     {"1M", 2630016000000000ull},
                                     {"1y", 31557600000000000ull},
                                     {"1 minute 1 second", 61000000000ull}}) {
        const std::string spec = d.spec;
        CAPTURE(spec);
        uint64_t got = 0;
        const std::string err = duration_error(d.spec, got);
        REQUIRE_MESSAGE(err.empty(), err);
        CHECK(got == d.ns);
    }
}

TEST_CASE("malformed times and durations are refused with a reason") {
    const uint64_t now = 2000000000ull * 1000000000ull;
    for (const char* bad : {"",
                            "   ",
                            "2026-02-30",
                            "2026-13-01",
                            "2026-11-29 24:00",
                            "25:00",
                            "14:60",
                            "14:07:61",
                            "2026-11-29 14:00 +15:00",
                            "1h30x",
                            "ago",
                            "yesterdays",
                            "1 hour ago ago",
                            "@",
                            "@-5",
                            "1969-12-31",
                            "2026-11-29T14",
                            "--1h",
                            "1h-",
                            "5 5s",
                            "1s 5"}) {
        const std::string spec = bad;
        CAPTURE(spec);
        uint64_t got = 0;
        const std::string err = when_error(bad, now, got);
        CHECK_FALSE(err.empty());
    }
    for (const char* bad : {"", "-5s", "+5s", "5x", "s", "1h 30", "1e3s", "0x10"}) {
        const std::string spec = bad;
        CAPTURE(spec);
        uint64_t got = 0;
        CHECK_FALSE(duration_error(bad, got).empty());
    }
    uint64_t got = 0;
    const std::string err = duration_error("1h30x", got);
    CHECK(err.find("unknown unit 'x'") != std::string::npos);
}
