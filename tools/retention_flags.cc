// chronicle tools — retention options (see retention_flags.h).
#include "retention_flags.h"

#include "cli.h"

namespace chronicle::cli {

namespace {

constexpr uint64_t kNsPerMs = 1000000;

// "15%" -> 15 (1..99); nullopt when s is not a percentage at all.
std::optional<uint32_t> parse_percent(const std::string& s, std::string_view option) {
    if (s.empty() || s.back() != '%') return std::nullopt;
    const uint64_t p = parse_uint(s.substr(0, s.size() - 1), option);
    if (p < 1 || p > 99) {
        throw CLI::ValidationError(std::string(option),
                                   "a percentage of the file system is 1%..99%, not " + s);
    }
    return static_cast<uint32_t>(p);
}

// One limit's value: "none" -> 0 (only with allow_none), else the parser's result, which
// must not be 0.
template <class Parse>
uint64_t limit_value(const std::string& s, std::string_view option, Parse parse) {
    if (s == "none") return 0;
    const uint64_t v = parse(s, option);
    if (v == 0) {
        throw CLI::ValidationError(std::string(option),
                                   "0 is not a limit (use 'none' to remove a limit)");
    }
    return v;
}

template <class Parse>
CLI::Validator limit_check(bool allow_none, const char* name, Parse parse) {
    return CLI::Validator(
        [allow_none, parse](std::string& s) -> std::string {
            if (s == "none" && !allow_none) return "'none' is for chronicle-queue set";
            try {
                (void)limit_value(s, "", parse);
            } catch (const CLI::ValidationError& e) {
                std::string m = e.what();
                // CLI11 prefixes the option itself: drop our empty one (": ").
                return m.rfind(": ", 0) == 0 ? m.substr(2) : m;
            }
            return {};
        },
        "", name);
}

uint64_t parse_age_ms(const std::string& s, std::string_view option) {
    const uint64_t ns = parse_duration_ns(s, option);
    if (ns < kNsPerMs) {
        throw CLI::ValidationError(std::string(option), "an age below 1ms is not a limit");
    }
    return ns / kNsPerMs;
}

// Keep-free as bytes, or as a percentage encoded above 2^63 (split again by the caller).
constexpr uint64_t kPercentTag = uint64_t{1} << 63;
uint64_t parse_keep_free(const std::string& s, std::string_view option) {
    if (auto p = parse_percent(s, option)) return kPercentTag | *p;
    return parse_size(s, option);
}

}  // namespace

void add_retention_options(CLI::App& app, RetentionFlags& f, bool allow_none) {
    const std::string none = allow_none ? " ('none': no limit)" : "";
    app.add_option("--max-bytes", f.max_bytes,
                   "retention: delete the oldest segments while the queue's segment files "
                   "take more than SIZE" +
                       none)
        ->check(limit_check(allow_none, "SIZE", parse_size));
    app.add_option(
           "--max-age", f.max_age,
           "retention: delete segments whose newest record is older than DUR (e.g. 7d)" + none)
        ->check(limit_check(allow_none, "DUR", parse_age_ms));
    app.add_option("--max-records", f.max_records,
                   "retention: delete the oldest segments while the queue holds more than N "
                   "records" +
                       none)
        ->check(limit_check(allow_none, "N", parse_uint));
    app.add_option("--keep-free", f.keep_free,
                   "retention: delete the oldest segments while the file system has less than "
                   "SIZE, or PCT% of its size, free" +
                       none)
        ->check(limit_check(allow_none, "SIZE|PCT%", parse_keep_free));
}

void apply_retention_flags(const RetentionFlags& f, RetentionLimits& l) {
    if (!f.max_bytes.empty()) l.max_bytes = limit_value(f.max_bytes, "--max-bytes", parse_size);
    if (!f.max_age.empty()) l.max_age_ms = limit_value(f.max_age, "--max-age", parse_age_ms);
    if (!f.max_records.empty()) {
        l.max_records = limit_value(f.max_records, "--max-records", parse_uint);
    }
    if (!f.keep_free.empty()) {
        const uint64_t v = limit_value(f.keep_free, "--keep-free", parse_keep_free);
        l.keep_free_bytes = (v & kPercentTag) != 0 ? 0 : v;
        l.keep_free_percent = (v & kPercentTag) != 0 ? static_cast<uint32_t>(v & ~kPercentTag) : 0;
    }
}

}  // namespace chronicle::cli
