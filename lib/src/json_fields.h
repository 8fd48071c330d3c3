// chronicle — reading fields of JSON found in a queue directory (writer.lock, .efd files).
// Those files may hold anything: these never throw and never convert a float (fuzz_efd
// and fuzz_writer_lock found both a throw and an out-of-range float conversion).
#pragma once

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>

namespace chronicle::json_fields {

// An integer field of a JSON object, if present, an integer and in T's range.
template <class T>
bool get_int(const nlohmann::json& j, const char* key, T& out) {
    auto it = j.find(key);
    if (it == j.end()) return false;
    if (it->is_number_unsigned()) {
        const auto v = it->get<uint64_t>();
        if (v > static_cast<uint64_t>(std::numeric_limits<T>::max())) return false;
        out = static_cast<T>(v);
        return true;
    }
    if (it->is_number_integer()) {
        const auto v = it->get<int64_t>();
        if (v < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
            (v > 0 &&
             static_cast<uint64_t>(v) > static_cast<uint64_t>(std::numeric_limits<T>::max()))) {
            return false;
        }
        out = static_cast<T>(v);
        return true;
    }
    return false;
}

// A string field, if present and a string.
inline bool get_string(const nlohmann::json& j, const char* key, std::string& out) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_string()) return false;
    out = it->get<std::string>();
    return true;
}

}  // namespace chronicle::json_fields
