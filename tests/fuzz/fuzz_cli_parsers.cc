// chronicle fuzzing — the tools' parsers of sizes, durations, times and numbers
// (tools/cli.cc), differentially: each is compared with a small reference written from its
// documentation in tools/cli.h.
//
// The input, up to its first NUL (a command-line argument cannot hold one), goes to
// parse_size (--segment-size), parse_duration_ns (--timeout, --max-age: systemd's
// compound durations), when_error() at a fixed "now" (--since, --until, --from-time,
// --to-time: journalctl's times; parse_time_ns() is it at the clock's now), parse_uint,
// and through CLI11 to
// numeric options declared as the tools declare them (std::optional<uint64_t> with
// uint_check(): -n, -c, --from-seq, --until-seq, --to-seq; double with seconds_check():
// --watch). Runs in UTC, so that "local time" is UTC.
//
// Findings: a crash or sanitizer report; an exception other than CLI::ValidationError
// (CLI::ParseError through CLI11); a parser that accepts what its reference refuses, or the
// other way round, or returns another value; an option whose value differs from what its
// validator's parser says.
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "fuzz_common.h"
#include "tools/cli.h"
#include "tools/timespec.h"

namespace {

namespace cli = chronicle::cli;

template <class F>
std::optional<uint64_t> attempt(F f) {
    try {
        return f();
    } catch (const CLI::ValidationError&) {
        return std::nullopt;
    }
}

std::string show(const std::optional<uint64_t>& v) {
    return v ? std::to_string(*v) : std::string("refused");
}

void compare(const char* what, const std::string& s, const std::optional<uint64_t>& got,
             const std::optional<uint64_t>& want) {
    if (got != want) {
        fuzz::fail(std::string(what) + "('" + s + "') = " + show(got) + ", the reference says " +
                   show(want));
    }
}

// Decimal digits to a number; nullopt past 64 bits.
std::optional<uint64_t> digits_value(const std::string& d) {
    uint64_t v = 0;
    for (char c : d) {
        const auto x = static_cast<uint64_t>(c - '0');
        if (v > (UINT64_MAX - x) / 10) return std::nullopt;
        v = v * 10 + x;
    }
    return v;
}

// "digits[+]": a non-negative decimal integer, '+' allowed, nothing else.
std::optional<uint64_t> ref_uint(const std::string& s) {
    static const std::regex re(R"(^\+?([0-9]+)$)");
    std::smatch m;
    if (!std::regex_match(s, m, re)) return std::nullopt;
    return digits_value(m[1]);
}

std::optional<uint64_t> ref_size(const std::string& s) {
    static const std::regex re(R"(^([0-9]+)(B|K|k|KiB|KB|M|m|MiB|MB|G|g|GiB|GB)?$)");
    std::smatch m;
    if (!std::regex_match(s, m, re)) return std::nullopt;
    auto v = digits_value(m[1]);
    const std::string u = m[2];
    uint64_t mul = 1;
    if (!u.empty() && u != "B")
        mul = 1ull << (u[0] == 'K' || u[0] == 'k' ? 10 : u[0] == 'M' || u[0] == 'm' ? 20 : 30);
    if (!v || *v > UINT64_MAX / mul) return std::nullopt;
    return *v * mul;
}

// systemd.time(7)'s units, as timespec.h lists them ("m" minutes, "M" months).
std::optional<double> unit_ns(const std::string& u) {
    static const std::vector<std::pair<std::vector<std::string>, double>> units = {
        {{"ns", "nsec", "nsecs"}, 1},
        {{"us", "usec", "usecs"}, 1e3},
        {{"ms", "msec", "msecs"}, 1e6},
        {{"s", "sec", "secs", "second", "seconds"}, 1e9},
        {{"m", "min", "mins", "minute", "minutes"}, 60e9},
        {{"h", "hr", "hrs", "hour", "hours"}, 3600e9},
        {{"d", "day", "days"}, 86400e9},
        {{"w", "week", "weeks"}, 7 * 86400e9},
        {{"M", "month", "months"}, 30.44 * 86400e9},
        {{"y", "year", "years"}, 365.25 * 86400e9},
    };
    for (const auto& [names, ns] : units) {
        for (const auto& n : names) {
            if (n == u) return ns;
        }
    }
    return std::nullopt;
}

// A duration: parts "<number>[spaces]<unit>" with spaces (blanks and tabs) around them; a
// number without a unit only when it is the only part (seconds).
std::optional<uint64_t> ref_span(const std::string& s) {
    // One part at a time from where the last ended (no regex over the whole: a repeated
    // group of optional pieces backtracks exponentially on long digit runs).
    static const std::regex part(R"([ \t]*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)[ \t]*([A-Za-z]*)[ \t]*)");
    double total = 0;
    int parts = 0;
    bool bare = false;
    auto at = s.cbegin();
    std::smatch m;
    while (at != s.cend()) {
        if (!std::regex_search(at, s.cend(), m, part, std::regex_constants::match_continuous)) {
            return std::nullopt;
        }
        const double v = std::strtod(m[1].str().c_str(), nullptr);
        if (!std::isfinite(v)) return std::nullopt;
        const std::string u = m[2];
        double mul = 1e9;
        if (u.empty()) {
            bare = true;
        } else {
            auto ns = unit_ns(u);
            if (!ns) return std::nullopt;
            mul = *ns;
        }
        total += v * mul;
        ++parts;
        at = m[0].second;
    }
    if (parts == 0 || (bare && parts > 1) || !(total <= 9.2e18)) return std::nullopt;
    return static_cast<uint64_t>(total);
}

std::optional<uint64_t> ref_duration(const std::string& s) {
    if (s.empty() || s[0] == '-' || s[0] == '+') return std::nullopt;
    return ref_span(s);
}

// Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (H. Hinnant's
// days_from_civil), independent of timegm.
int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;
    const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int days_in(int y, int m) {
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

// Nanoseconds from ".ddd..." digits: the first nine, the rest dropped.
uint64_t frac_ns(const std::string& digits) {
    uint64_t ns = 0, scale = 100000000;
    for (size_t i = 0; i < digits.size() && i < 9; ++i, scale /= 10) {
        ns += static_cast<uint64_t>(digits[i] - '0') * scale;
    }
    return ns;
}

std::optional<uint64_t> ref_time(const std::string& s) {
    constexpr uint64_t kMaxSec = UINT64_MAX / 1000000000ull;
    constexpr uint64_t kMaxFrac = UINT64_MAX % 1000000000ull;
    auto finish = [&](int64_t sec, uint64_t frac) -> std::optional<uint64_t> {
        if (sec < 0) return std::nullopt;
        const auto u = static_cast<uint64_t>(sec);
        if (u > kMaxSec || (u == kMaxSec && frac > kMaxFrac)) return std::nullopt;
        return u * 1000000000ull + frac;
    };
    static const std::regex at(R"(^@([0-9]+)(?:\.([0-9]+))?$)");
    static const std::regex iso(
        R"(^([0-9]{4})-([0-9]{2})-([0-9]{2})(?:[Tt ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:[.,]([0-9]+))?)?)?([Zz]| UTC| Z| ?[+-][0-9]{2}(?::?[0-9]{2})?)?$)");
    std::smatch m;
    if (std::regex_match(s, m, at)) {
        auto sec = digits_value(m[1]);
        if (!sec || *sec > kMaxSec) return std::nullopt;
        return finish(static_cast<int64_t>(*sec), frac_ns(m[2]));
    }
    if (!std::regex_match(s, m, iso)) return std::nullopt;
    auto num = [&](int i) { return m[i].matched ? std::atoi(m[i].str().c_str()) : 0; };
    const int y = num(1), mo = num(2), d = num(3), hh = num(4), mm = num(5), ss = num(6);
    if (mo < 1 || mo > 12 || d < 1 || d > days_in(y, mo) || hh > 23 || mm > 59 || ss > 59) {
        return std::nullopt;
    }
    int64_t off = 0;
    std::string z = m[8];
    if (!z.empty() && z[0] == ' ' && z.size() > 1 && (z[1] == '+' || z[1] == '-')) z.erase(0, 1);
    if (!z.empty() && (z[0] == '+' || z[0] == '-')) {
        const int oh = std::atoi(z.substr(1, 2).c_str());
        const std::string rest = z.substr(3);
        const int om = rest.empty() ? 0 : std::atoi(rest.substr(rest[0] == ':').c_str());
        if (om > 59 || oh * 60 + om > 14 * 60) return std::nullopt;
        off = (z[0] == '+' ? 1 : -1) * (oh * 3600 + om * 60);
    }
    const int64_t sec = days_from_civil(y, mo, d) * 86400 + hh * 3600 + mm * 60 + ss - off;
    return finish(sec, frac_ns(m[7]));
}

// A fixed "now" for when_error(): 2026-11-29T22:13:20.123456789Z.
constexpr uint64_t kNow = 1796000000ull * 1000000000ull + 123456789ull;

// journalctl's times at kNow, in UTC (the fuzzer's zone): trimmed; now, today, yesterday,
// tomorrow; an absolute time (ref_time); HH:MM[:SS[.frac]] today; -DUR, +DUR, DUR ago, DUR.
std::optional<uint64_t> ref_when(const std::string& s) {
    const auto b = s.find_first_not_of(" \t");
    if (b == std::string::npos) return std::nullopt;
    const std::string t = s.substr(b, s.find_last_not_of(" \t") - b + 1);
    const uint64_t day_ns = 86400ull * 1000000000ull;
    const uint64_t midnight = kNow / day_ns * day_ns;
    if (t == "now") return kNow;
    if (t == "today") return midnight;
    if (t == "yesterday") return midnight - day_ns;
    if (t == "tomorrow") return midnight + day_ns;
    const auto digit = [](char c) { return c >= '0' && c <= '9'; };
    if (t[0] == '@' || (t.size() >= 10 && t[4] == '-' && digit(t[0]))) return ref_time(t);
    if (t.size() >= 5 && digit(t[0]) && digit(t[1]) && t[2] == ':') {
        static const std::regex clock(
            R"(^([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:[.,]([0-9]+))?)?$)");
        std::smatch m;
        if (!std::regex_match(t, m, clock)) return std::nullopt;
        const int hh = std::atoi(m[1].str().c_str()), mm = std::atoi(m[2].str().c_str());
        const int ss = m[3].matched ? std::atoi(m[3].str().c_str()) : 0;
        if (hh > 23 || mm > 59 || ss > 59) return std::nullopt;
        return midnight + (static_cast<uint64_t>(hh) * 3600 + mm * 60 + ss) * 1000000000ull +
               frac_ns(m[4]);
    }
    std::string rest = t;
    int sign = -1;
    if (t[0] == '-' || t[0] == '+') {
        sign = t[0] == '-' ? -1 : 1;
        rest = t.substr(1);
    } else if (t.size() > 4 && t.compare(t.size() - 4, 4, " ago") == 0) {
        rest = t.substr(0, t.size() - 4);
    }
    const auto d = ref_span(rest);
    if (!d) return std::nullopt;
    if (sign < 0) return *d > kNow ? std::nullopt : std::optional<uint64_t>(kNow - *d);
    return *d > UINT64_MAX - kNow ? std::nullopt : std::optional<uint64_t>(kNow + *d);
}

// The numeric options, declared as the tools declare them, through CLI11.
void options(const std::string& s, const std::optional<uint64_t>& want) {
    CLI::App app("fuzz");
    std::optional<uint64_t> n;
    app.add_option("-n", n)->transform(cli::uint_check());
    std::vector<std::string> args = {s, "-n"};  // CLI11 takes the arguments reversed
    bool parsed = true;
    try {
        app.parse(args);
    } catch (const CLI::ParseError&) {
        parsed = false;
    }
    const std::optional<uint64_t> got = parsed ? n : std::nullopt;
    if (got != want) {
        fuzz::fail("-n '" + s + "' gives " + show(got) + ", but parse_uint says " + show(want));
    }

    CLI::App app2("fuzz");
    double watch = -1;
    app2.add_option("--watch", watch)->check(cli::seconds_check());
    std::vector<std::string> args2 = {s, "--watch"};
    try {
        app2.parse(args2);
    } catch (const CLI::ParseError&) {
        return;
    }
    if (!(watch >= 0 && watch <= 86400)) {
        fuzz::fail("--watch '" + s + "' gives " + std::to_string(watch));
    }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    ::setenv("TZ", "UTC", 1);
    ::tzset();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string s(reinterpret_cast<const char*>(data), size);
    s = s.substr(0, s.find('\0'));
    const auto u = attempt([&] { return cli::parse_uint(s); });
    compare("parse_uint", s, u, ref_uint(s));
    compare("parse_size", s, attempt([&] { return cli::parse_size(s); }), ref_size(s));
    compare("parse_duration_ns", s, attempt([&] { return cli::parse_duration_ns(s); }),
            ref_duration(s));
    std::optional<uint64_t> when;
    if (uint64_t v = 0; cli::when_error(s, kNow, v).empty()) when = v;
    compare("when_error", s, when, ref_when(s));
    // parse_time_ns() is when_error() at the clock's now: the same verdict (the value moves
    // with the clock for the relative forms).
    const auto now_time = attempt([&] { return cli::parse_time_ns(s); });
    if (now_time.has_value() != when.has_value()) {
        compare("parse_time_ns", s, now_time, when);
    }
    options(s, u);
    return 0;
}
