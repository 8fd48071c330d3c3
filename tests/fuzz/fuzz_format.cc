// chronicle fuzzing — chronicle-tail's record rendering: --json (NDJSON) and --template.
//
// Input: [seq: 8][ts: 8][template length: 1][template][payload...]
// The template is parsed (unknown fields throw CLI::ValidationError, which is fine) and
// rendered; the record is rendered as a JSON line.
//
// Oracles: the JSON line is one line of valid JSON whose fields give back seq,
// timestamp_ns, length and the payload itself (as text when it is valid UTF-8, else as
// base64 with "encoding":"base64"); is_valid_utf8 agrees with nlohmann's UTF-8 check; a
// template without '%' or '\' renders as itself.
#include <nlohmann/json.hpp>
#include <string>

#include <CLI/CLI.hpp>

#include "fuzz_common.h"
#include "tools/render.h"

namespace {

std::string unbase64(const std::string& s) {
    auto val = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '+') return 62;
        if (c == '/') return 63;
        return -1;
    };
    if (s.size() % 4 != 0) fuzz::fail("base64 of length " + std::to_string(s.size()));
    std::string out;
    for (size_t i = 0; i < s.size(); i += 4) {
        uint32_t v = 0;
        int pad = 0;
        for (size_t k = 0; k < 4; ++k) {
            const char c = s[i + k];
            int d = 0;
            if (c == '=' && i + 4 == s.size() && k >= 2) {
                ++pad;
            } else if (pad != 0 || (d = val(c)) < 0) {
                fuzz::fail("bad base64 character in '" + s + "'");
            }
            v = (v << 6) | static_cast<uint32_t>(d);
        }
        out += static_cast<char>(v >> 16);
        if (pad < 2) out += static_cast<char>((v >> 8) & 0xff);
        if (pad < 1) out += static_cast<char>(v & 0xff);
    }
    return out;
}

void check_json(uint64_t seq, uint64_t ts, std::string_view payload) {
    std::string line;
    chronicle::cli::append_json_record(line, seq, ts, payload);
    if (line.empty() || line.back() != '\n' || line.find('\n') != line.size() - 1) {
        fuzz::fail("--json output is not one line");
    }
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) fuzz::fail("--json output is not JSON: " + line);
    if (j.value("seq", uint64_t{0}) != seq || j.value("timestamp_ns", uint64_t{0}) != ts ||
        j.value("length", uint64_t{0}) != payload.size()) {
        fuzz::fail("--json fields differ: " + line);
    }
    if (!j.contains("payload") || !j["payload"].is_string()) fuzz::fail("no payload: " + line);
    const std::string p = j["payload"].get<std::string>();
    const bool b64 = j.value("encoding", std::string()) == "base64";
    if ((b64 ? unbase64(p) : p) != payload) fuzz::fail("--json payload differs: " + line);
    if (b64 == chronicle::cli::is_valid_utf8(payload)) {
        fuzz::fail("base64 chosen for valid UTF-8, or text for invalid: " + line);
    }
    // nlohmann's UTF-8 check (dump throws on invalid UTF-8) agrees with ours.
    bool nl_valid = true;
    try {
        (void)nlohmann::json(std::string(payload)).dump();
    } catch (const nlohmann::json::exception&) {
        nl_valid = false;
    }
    if (nl_valid != chronicle::cli::is_valid_utf8(payload)) {
        fuzz::fail("is_valid_utf8 disagrees with nlohmann::json");
    }
    const std::string t = chronicle::cli::iso_time(ts);
    if (t.size() != 30 || t[4] != '-' || t[10] != 'T' || t.back() != 'Z') {
        fuzz::fail("iso_time(" + std::to_string(ts) + ") = " + t);
    }
}

void check_template(std::string_view spec, uint64_t seq, uint64_t ts, std::string_view payload) {
    try {
        const chronicle::cli::Template t(spec);
        std::string out;
        t.render(out, seq, ts, payload);
        if (spec.find_first_of("%\\") == std::string_view::npos && out != spec) {
            fuzz::fail("a template without fields rendered differently");
        }
    } catch (const CLI::ValidationError&) {
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz::Input in(data, size);
    const uint64_t seq = in.u64();
    const uint64_t ts = in.u64();
    const std::string_view spec = in.take(in.u8());
    const std::string_view payload = in.rest();
    check_json(seq, ts, payload);
    check_template(spec, seq, ts, payload);
    return 0;
}
