// chronicle tools — reading durations and points in time as systemd and journalctl take
// them. Each parser returns an error message (empty: the value is set); cli.h wraps them in
// option parsers that name the option.
#pragma once

#include <cstdint>
#include <string>

namespace chronicle::cli {

// A duration: one or more "<number><unit>" parts, spaces allowed between and inside them
// ("1h30m", "1h 30min", "2 weeks", "1.5s"); a bare number is seconds. Units: ns, us, ms,
// s/sec/second(s), m/min/minute(s), h/hr/hour(s), d/day(s), w/week(s), M/month(s)
// (30.44 days), y/year(s) (365.25 days), as systemd.time(7). No sign.
std::string duration_error(const std::string& s, uint64_t& ns);

// An absolute time: ISO 8601 "2026-11-24", "2026-11-24 13:05", "2026-11-24T13:05:00.25Z",
// "...+01:00" / "+0100" / "+01", a trailing " UTC"; local time when no zone is given, as
// date(1) reads it; or "@1795528496.5" (seconds since the epoch). Every field is checked.
std::string time_error(const std::string& s, uint64_t& ns);

// A point in time as journalctl --since/--until take it, relative to `now_ns`: any
// absolute time above; "HH:MM[:SS]" (today, local time); "now", "today", "yesterday",
// "tomorrow" (midnight, local time); "-DUR" or "DUR ago" (before now), "+DUR" (after now);
// and a bare duration "DUR", meaning "DUR ago" (chronicle's --since 10m).
std::string when_error(const std::string& s, uint64_t now_ns, uint64_t& ns);

// A non-negative decimal number "12", "1.5", ".5" at p (no sign, no exponent, no hex);
// advances p past it. False if there is none.
bool parse_decimal(const char*& p, double& v);

}  // namespace chronicle::cli
