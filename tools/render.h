// chronicle tools — rendering: records for chronicle-tail (NDJSON, templates), and the
// human-readable sizes and ages the other tools print.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace chronicle::cli {

// "2026-11-24T13:05:00.123456789Z", or in local time "2026-11-24T14:05:00.123456789+01:00"
// after use_local_time(true) (chronicle-tail --localtime).
std::string iso_time(uint64_t ns);
void use_local_time(bool local);
bool is_valid_utf8(std::string_view s);
void append_base64(std::string& out, std::string_view bytes);
// Appends s as the body of a JSON string (without quotes); s must be valid UTF-8.
void append_json_escaped(std::string& out, std::string_view s);

// One NDJSON line (with '\n') for a record: seq, timestamp_ns, time, length, payload
// (text, or base64 with "encoding":"base64" when the payload is not valid UTF-8).
void append_json_record(std::string& out, uint64_t seq, uint64_t ts, std::string_view payload);

// A --template: %q sequence, %t ISO time, %T timestamp in ns, %l length, %s payload, %%;
// backslash escapes \n \t \0 \\. Printed as given (add \n yourself, as with kcat -f).
class Template {
  public:
    explicit Template(std::string_view spec);
    void render(std::string& out, uint64_t seq, uint64_t ts, std::string_view payload) const;

  private:
    struct Part {
        char field;  // 0 = literal
        std::string text;
    };
    std::vector<Part> parts_;
};

// "512", "1.5K", "64M", "2.0G": a size in binary units for tables.
std::string human_bytes(uint64_t b);
// "250ms", "4.2s", "17m", "5h", "3d": an age in seconds, rounded to its unit.
std::string human_age(double seconds);
// The live writers: "none", "pid 12", or "3 (pids 12, 13, 14)" (several shared writers).
std::string describe_writers(const std::vector<int>& pids);

}  // namespace chronicle::cli
