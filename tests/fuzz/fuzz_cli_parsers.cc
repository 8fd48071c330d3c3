// chronicle fuzzing — the tools' parsers of sizes, durations, times and numbers
// (tools/cli.cc), differentially: each is compared with a small reference written from its
// documentation in tools/cli.h.
//
// The input, up to its first NUL (a command-line argument cannot hold one), goes to
// parse_size (--segment-size), parse_duration_ns (--since, --timeout, --max-age),
// parse_time_ns (--from-time, --until-time, --to-time), parse_uint, and through CLI11 to
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

std::optional<uint64_t> ref_duration(const std::string& s) {
    static const std::regex re(R"(^([0-9]+\.?[0-9]*|\.[0-9]+)(ns|us|ms|s|m|min|h|d)?$)");
    std::smatch m;
    if (!std::regex_match(s, m, re)) return std::nullopt;
    const double v = std::strtod(m[1].str().c_str(), nullptr);
    const std::string u = m[2];
    const double mul = u == "ns"                ? 1
                       : u == "us"              ? 1e3
                       : u == "ms"              ? 1e6
                       : u == "m" || u == "min" ? 60e9
                       : u == "h"               ? 3600e9
                       : u == "d"               ? 86400e9
                                                : 1e9;
    const double ns = v * mul;
    if (!std::isfinite(v) || !(ns <= 9.2e18)) return std::nullopt;
    return static_cast<uint64_t>(ns);
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
        R"(^([0-9]{4})-([0-9]{2})-([0-9]{2})(?:[Tt ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:[.,]([0-9]+))?)?)?([Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)?$)");
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
    const std::string z = m[8];
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
    compare("parse_time_ns", s, attempt([&] { return cli::parse_time_ns(s); }), ref_time(s));
    options(s, u);
    return 0;
}
