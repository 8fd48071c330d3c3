// chronicle tools — durations and points in time (timespec.h).
#include "timespec.h"

#include <array>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <string_view>

#include "cli.h"

namespace chronicle::cli {

namespace {

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

bool is_space(char c) {
    return c == ' ' || c == '\t';
}

void skip_spaces(const char*& p) {
    while (is_space(*p)) ++p;
}

// Reads exactly n digits at p into v and advances p; false (p unchanged) otherwise.
bool fixed_digits(const char*& p, int n, int& v) {
    int x = 0;
    for (int i = 0; i < n; ++i) {
        if (!is_digit(p[i])) return false;
        x = x * 10 + (p[i] - '0');
    }
    p += n;
    v = x;
    return true;
}

std::string quoted(const std::string& s) {
    return "'" + printable(s) + "'";
}

struct Unit {
    std::string_view name;
    double ns;
};
constexpr double kSecond = 1e9;
constexpr double kDay = 86400 * kSecond;
// systemd.time(7)'s units; "m" is minutes and "M" months, as there.
constexpr std::array<Unit, 36> kUnits{{
    {"ns", 1},
    {"nsec", 1},
    {"us", 1e3},
    {"usec", 1e3},
    {"ms", 1e6},
    {"msec", 1e6},
    {"s", kSecond},
    {"sec", kSecond},
    {"secs", kSecond},
    {"second", kSecond},
    {"seconds", kSecond},
    {"m", 60 * kSecond},
    {"min", 60 * kSecond},
    {"mins", 60 * kSecond},
    {"minute", 60 * kSecond},
    {"minutes", 60 * kSecond},
    {"h", 3600 * kSecond},
    {"hr", 3600 * kSecond},
    {"hrs", 3600 * kSecond},
    {"hour", 3600 * kSecond},
    {"hours", 3600 * kSecond},
    {"d", kDay},
    {"day", kDay},
    {"days", kDay},
    {"w", 7 * kDay},
    {"week", 7 * kDay},
    {"weeks", 7 * kDay},
    {"M", 30.44 * kDay},
    {"month", 30.44 * kDay},
    {"months", 30.44 * kDay},
    {"y", 365.25 * kDay},
    {"year", 365.25 * kDay},
    {"years", 365.25 * kDay},
    {"usecs", 1e3},
    {"msecs", 1e6},
    {"nsecs", 1},
}};

bool is_unit_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// The duration spelled by [p, end) (already checked not to start with a sign); an error
// text without the value's quotes otherwise.
std::string span(const char* p, const char* end, uint64_t& out) {
    double total = 0;
    bool any = false;
    bool bare = false;  // a number without a unit: seconds, only when it is all there is
    while (p < end) {
        skip_spaces(p);
        if (p >= end) break;
        double v = 0;
        if (!parse_decimal(p, v)) return "expected a number";
        skip_spaces(p);
        const char* u = p;
        while (p < end && is_unit_char(*p)) ++p;
        const std::string_view unit(u, static_cast<size_t>(p - u));
        double mul = kSecond;
        if (unit.empty()) {
            if (any) return "a number without a unit after another part";
            bare = true;
        } else {
            bool found = false;
            for (const Unit& x : kUnits) {
                if (x.name == unit) {
                    mul = x.ns;
                    found = true;
                    break;
                }
            }
            if (!found) {
                return "unknown unit '" + std::string(unit) +
                       "' (ns, us, ms, s, m/min, h, d, w, M/month, y)";
            }
            if (bare) return "a number without a unit before another part";
        }
        total += v * mul;
        any = true;
        if (p < end && !is_space(*p) && !is_digit(*p) && *p != '.') {
            return "unexpected '" + std::string(p, end) + "'";
        }
    }
    if (!any) return "expected a number";
    if (!(total <= 9.2e18)) return "too long";
    out = static_cast<uint64_t>(total);
    return {};
}

bool leap_year(int y) {
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int days_in_month(int y, int m) {
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && leap_year(y) ? 29 : days[m - 1];
}

// The last second whose nanoseconds since the epoch fit in 64 bits (2554-07-21T23:34:33Z).
constexpr uint64_t kMaxSeconds = UINT64_MAX / 1000000000ull;
constexpr uint64_t kMaxFracAtMax = UINT64_MAX % 1000000000ull;

// Reads ".ddd" (up to nanoseconds; further digits are dropped) at p. False if the point
// is not followed by a digit.
bool fraction(const char*& p, uint64_t& ns) {
    if (!is_digit(p[1])) return false;
    ++p;
    uint64_t scale = 100000000;
    ns = 0;
    for (; is_digit(*p); ++p) {
        ns += static_cast<uint64_t>(*p - '0') * scale;
        scale /= 10;
    }
    return true;
}

// "HH:MM[:SS[.frac]]" at p; advances p. An error text, or "" with the fields set.
std::string clock(const char*& p, int& hh, int& mm, int& ss, uint64_t& frac) {
    if (!fixed_digits(p, 2, hh) || *p != ':' || !fixed_digits(++p, 2, mm)) {
        return "expected HH:MM";
    }
    if (*p == ':') {
        if (!fixed_digits(++p, 2, ss)) return "expected two digits of seconds";
        if ((*p == '.' || *p == ',') && !fraction(p, frac)) {
            return "expected digits after the point";
        }
    }
    if (hh > 23) return "hour " + std::to_string(hh) + " is out of range (00-23)";
    if (mm > 59) return "minute " + std::to_string(mm) + " is out of range (00-59)";
    if (ss > 59) return "second " + std::to_string(ss) + " is out of range (00-59)";
    return {};
}

// Seconds and fraction as nanoseconds, checked against the 64-bit range.
std::string to_ns(int64_t sec, uint64_t frac, uint64_t& out) {
    if (sec < 0) return "before 1970-01-01T00:00:00Z";
    const auto s = static_cast<uint64_t>(sec);
    if (s > kMaxSeconds || (s == kMaxSeconds && frac > kMaxFracAtMax)) {
        return "after 2554-07-21 (64-bit nanoseconds)";
    }
    out = s * 1000000000ull + frac;
    return {};
}

// Today's date at local midnight, `days` days on (mktime normalises the day).
int64_t local_midnight(uint64_t now_ns, int days, int hh = 0, int mm = 0, int ss = 0) {
    const auto now = static_cast<std::time_t>(now_ns / 1000000000ull);
    std::tm tm{};
    ::localtime_r(&now, &tm);
    tm.tm_mday += days;
    tm.tm_hour = hh;
    tm.tm_min = mm;
    tm.tm_sec = ss;
    tm.tm_isdst = -1;
    return static_cast<int64_t>(std::mktime(&tm));
}

constexpr const char* kTimeExamples =
    " (e.g. 2026-11-24 13:05, 2026-11-24T13:05:00Z, 14:07, yesterday, 1h30m ago, -2h, "
    "@1795528496)";

}  // namespace

bool parse_decimal(const char*& p, double& v) {
    const char* q = p;
    while (is_digit(*q)) ++q;
    const bool int_digits = q != p;
    if (*q == '.') {
        ++q;
        const char* f = q;
        while (is_digit(*q)) ++q;
        if (!int_digits && q == f) return false;
    } else if (!int_digits) {
        return false;
    }
    v = std::strtod(std::string(p, q).c_str(), nullptr);
    p = q;
    return std::isfinite(v);
}

std::string duration_error(const std::string& s, uint64_t& out) {
    if (s.empty()) return "empty value";
    if (s[0] == '-') return quoted(s) + " is negative";
    if (s[0] == '+') return quoted(s) + " is not a duration (no sign)";
    const std::string err = span(s.c_str(), s.c_str() + s.size(), out);
    if (err.empty()) return {};
    return quoted(s) + " is not a duration: " + err + " (e.g. 500ms, 10s, 5m, 1h30m, 2d, 1w)";
}

std::string time_error(const std::string& s, uint64_t& out) {
    if (s.empty()) return "empty value";
    auto bad = [&](const std::string& why) {
        return quoted(s) + " is not a valid time: " + why + kTimeExamples;
    };
    const char* p = s.c_str();
    uint64_t frac = 0;
    if (*p == '@') {
        ++p;
        if (!is_digit(*p)) return bad("expected seconds since the epoch (decimal digits) after @");
        uint64_t sec = 0;
        for (; is_digit(*p); ++p) {
            sec = sec * 10 + static_cast<uint64_t>(*p - '0');
            if (sec > kMaxSeconds) return bad("after 2554-07-21 (64-bit nanoseconds)");
        }
        if (*p == '.' && !fraction(p, frac)) return bad("expected digits after the point");
        if (*p != '\0') return bad("unexpected " + quoted(p));
        const std::string err = to_ns(static_cast<int64_t>(sec), frac, out);
        return err.empty() ? err : bad(err);
    }
    int year = 0, mon = 0, day = 0;
    if (!fixed_digits(p, 4, year) || *p != '-' || !fixed_digits(++p, 2, mon) || *p != '-' ||
        !fixed_digits(++p, 2, day)) {
        return bad("expected YYYY-MM-DD");
    }
    if (mon < 1 || mon > 12)
        return bad("month " + std::to_string(mon) + " is out of range (01-12)");
    if (day < 1 || day > days_in_month(year, mon)) {
        return bad("day " + std::to_string(day) + " is out of range (01-" +
                   std::to_string(days_in_month(year, mon)) + ")");
    }
    int hh = 0, mm = 0, ss = 0;
    if ((*p == 'T' || *p == 't' || *p == ' ') && is_digit(p[1])) {
        ++p;
        std::string err = clock(p, hh, mm, ss, frac);
        if (!err.empty()) return bad(err + " after the date");
    }
    std::tm tm{};
    tm.tm_year = year - 1900;
    tm.tm_mon = mon - 1;
    tm.tm_mday = day;
    tm.tm_hour = hh;
    tm.tm_min = mm;
    tm.tm_sec = ss;
    int64_t t = 0;
    if (*p == '\0') {
        tm.tm_isdst = -1;
        t = static_cast<int64_t>(std::mktime(&tm));  // local time, as date(1) reads it
    } else if (((*p == 'Z' || *p == 'z') && p[1] == '\0') || std::string_view(p) == " UTC" ||
               std::string_view(p) == " Z") {
        t = static_cast<int64_t>(::timegm(&tm));
    } else if (*p == '+' || *p == '-' || ((p[0] == ' ') && (p[1] == '+' || p[1] == '-'))) {
        if (*p == ' ') ++p;
        const int sign = *p == '+' ? 1 : -1;
        int oh = 0, om = 0;
        ++p;
        // +HH, then :MM or MM (once: "+14:0000" is not an offset).
        bool ok = fixed_digits(p, 2, oh);
        if (ok && *p == ':') {
            ok = fixed_digits(++p, 2, om);
        } else if (ok && is_digit(*p)) {
            ok = fixed_digits(p, 2, om);
        }
        if (!ok || *p != '\0') return bad("expected an offset +HH:MM, +HHMM or +HH at the end");
        if (om > 59) return bad("offset minute " + std::to_string(om) + " is out of range (00-59)");
        if (oh * 60 + om > 14 * 60) {
            return bad("offset " + std::string(sign > 0 ? "+" : "-") + std::to_string(oh) + ":" +
                       (om < 10 ? "0" : "") + std::to_string(om) +
                       " is out of range (at most 14:00)");
        }
        t = static_cast<int64_t>(::timegm(&tm)) - sign * (oh * 3600 + om * 60);
    } else {
        return bad("unexpected " + quoted(p));
    }
    const std::string err = to_ns(t, frac, out);
    return err.empty() ? err : bad(err);
}

std::string when_error(const std::string& s, uint64_t now_ns, uint64_t& out) {
    if (s.empty()) return "empty value";
    // Trimmed; the forms are tried from the most specific.
    size_t b = 0, e = s.size();
    while (b < e && is_space(s[b])) ++b;
    while (e > b && is_space(s[e - 1])) --e;
    const std::string t = s.substr(b, e - b);
    auto bad = [&](const std::string& why) {
        return quoted(s) + " is not a valid time: " + why + kTimeExamples;
    };
    if (t == "now") {
        out = now_ns;
        return {};
    }
    if (t == "today" || t == "yesterday" || t == "tomorrow") {
        const int days = t == "today" ? 0 : t == "yesterday" ? -1 : 1;
        const std::string err = to_ns(local_midnight(now_ns, days), 0, out);
        return err.empty() ? err : bad(err);
    }
    if (t.empty()) return bad("nothing but spaces");
    if (t[0] == '@' || (t.size() >= 10 && t[4] == '-' && is_digit(t[0]))) return time_error(t, out);
    // HH:MM[:SS] today.
    if (t.size() >= 5 && is_digit(t[0]) && is_digit(t[1]) && t[2] == ':') {
        const char* p = t.c_str();
        int hh = 0, mm = 0, ss = 0;
        uint64_t frac = 0;
        std::string err = clock(p, hh, mm, ss, frac);
        if (err.empty() && *p != '\0') err = "unexpected " + quoted(p);
        if (!err.empty()) return bad(err);
        err = to_ns(local_midnight(now_ns, 0, hh, mm, ss), frac, out);
        return err.empty() ? err : bad(err);
    }
    // Relative: -DUR, +DUR, DUR ago, DUR.
    int sign = -1;
    const char* p = t.c_str();
    const char* end = p + t.size();
    if (*p == '-' || *p == '+') {
        sign = *p == '-' ? -1 : 1;
        ++p;
    } else if (t.size() > 4 && t.compare(t.size() - 4, 4, " ago") == 0) {
        end -= 4;
    }
    uint64_t d = 0;
    const std::string err = span(p, end, d);
    if (!err.empty()) return bad(err);
    if (sign < 0) {
        if (d > now_ns) return bad("before 1970-01-01T00:00:00Z");
        out = now_ns - d;
    } else {
        if (d > UINT64_MAX - now_ns) return bad("after 2554-07-21 (64-bit nanoseconds)");
        out = now_ns + d;
    }
    return {};
}

}  // namespace chronicle::cli
