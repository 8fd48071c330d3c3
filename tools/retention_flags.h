// chronicle tools — the retention options shared by chronicle-append (when it creates a
// queue) and chronicle-queue set: --max-bytes, --max-age, --max-records, --keep-free.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "chronicle/retention.h"

namespace chronicle::cli {

struct RetentionFlags {
    std::string max_bytes, max_age, max_records, keep_free;
    [[nodiscard]] bool any() const {
        return !max_bytes.empty() || !max_age.empty() || !max_records.empty() || !keep_free.empty();
    }
};

// Declares the four options on `app`. With allow_none, "none" removes a limit
// (chronicle-queue set); a value of 0 is refused either way (it would read as "no limit").
void add_retention_options(CLI::App& app, RetentionFlags& f, bool allow_none);

// Sets in `l` the limits given in `f` (a flag left empty keeps its value). Throws
// CLI::ValidationError naming the option for a bad value (the validators above check the
// same when CLI11 parses).
void apply_retention_flags(const RetentionFlags& f, RetentionLimits& l);

}  // namespace chronicle::cli
