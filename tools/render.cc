// chronicle tools — record rendering (see render.h).
#include "render.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <ctime>

namespace chronicle::cli {

namespace {
bool g_local_time = false;
}  // namespace

void use_local_time(bool local) {
    g_local_time = local;
}

std::string iso_time(uint64_t ns) {
    const std::time_t secs = static_cast<std::time_t>(ns / 1000000000ull);
    std::tm tm{};
    if (g_local_time) {
        ::localtime_r(&secs, &tm);
    } else {
        ::gmtime_r(&secs, &tm);
    }
    char zone[8] = "Z";
    if (g_local_time) {
        const long off = tm.tm_gmtoff;
        const long a = off < 0 ? -off : off;
        std::snprintf(zone, sizeof zone, "%c%02ld:%02ld", off < 0 ? '-' : '+', (a / 3600) % 100,
                      (a / 60) % 60);
    }
    char buf[56];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%09llu%s", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<unsigned long long>(ns % 1000000000ull), zone);
    return buf;
}

bool is_valid_utf8(std::string_view s) {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const auto* end = p + s.size();
    while (p < end) {
        const unsigned char c = *p;
        if (c < 0x80) {
            ++p;
            continue;
        }
        int n;
        uint32_t cp;
        if ((c & 0xE0) == 0xC0) {
            n = 1;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (end - p <= n) return false;
        for (int i = 1; i <= n; ++i) {
            if ((p[i] & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (p[i] & 0x3F);
        }
        // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            return false;
        }
        p += n + 1;
    }
    return true;
}

void append_base64(std::string& out, std::string_view bytes) {
    static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
    size_t i = 0;
    for (; i + 3 <= bytes.size(); i += 3) {
        const uint32_t v = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8) | p[i + 2];
        out += k[v >> 18];
        out += k[(v >> 12) & 63];
        out += k[(v >> 6) & 63];
        out += k[v & 63];
    }
    if (i < bytes.size()) {
        uint32_t v = uint32_t{p[i]} << 16;
        if (i + 1 < bytes.size()) v |= uint32_t{p[i + 1]} << 8;
        out += k[v >> 18];
        out += k[(v >> 12) & 63];
        out += i + 1 < bytes.size() ? k[(v >> 6) & 63] : '=';
        out += '=';
    }
}

void append_json_escaped(std::string& out, std::string_view s) {
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        switch (ch) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            default:
                if (c < 0x20) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", c);
                    out += buf;
                } else {
                    out += ch;
                }
        }
    }
}

void append_json_record(std::string& out, uint64_t seq, uint64_t ts, std::string_view payload) {
    out += "{\"seq\":";
    out += std::to_string(seq);
    out += ",\"timestamp_ns\":";
    out += std::to_string(ts);
    out += ",\"time\":\"";
    out += iso_time(ts);
    out += "\",\"length\":";
    out += std::to_string(payload.size());
    out += ",\"payload\":\"";
    if (is_valid_utf8(payload)) {
        append_json_escaped(out, payload);
        out += "\"}\n";
    } else {
        append_base64(out, payload);
        out += "\",\"encoding\":\"base64\"}\n";
    }
}

Template::Template(std::string_view spec) {
    std::string lit;
    for (size_t i = 0; i < spec.size(); ++i) {
        const char c = spec[i];
        if (c == '\\' && i + 1 < spec.size()) {
            const char e = spec[++i];
            lit += e == 'n' ? '\n' : e == 't' ? '\t' : e == '0' ? '\0' : e;
        } else if (c == '%' && i + 1 < spec.size()) {
            const char f = spec[++i];
            if (f == '%') {
                lit += '%';
                continue;
            }
            if (f != 'q' && f != 't' && f != 'T' && f != 'l' && f != 's') {
                throw CLI::ValidationError(
                    "--template", std::string("unknown field %") + f + " (use %q %t %T %l %s %%)");
            }
            if (!lit.empty()) parts_.push_back({0, std::move(lit)});
            lit.clear();
            parts_.push_back({f, {}});
        } else {
            lit += c;
        }
    }
    if (!lit.empty()) parts_.push_back({0, std::move(lit)});
}

void Template::render(std::string& out, uint64_t seq, uint64_t ts, std::string_view payload) const {
    for (const auto& p : parts_) {
        switch (p.field) {
            case 0:
                out += p.text;
                break;
            case 'q':
                out += std::to_string(seq);
                break;
            case 't':
                out += iso_time(ts);
                break;
            case 'T':
                out += std::to_string(ts);
                break;
            case 'l':
                out += std::to_string(payload.size());
                break;
            case 's':
                out.append(payload.data(), payload.size());
                break;
            default:
                break;
        }
    }
}

// ------------------------------------------------------------ human-readable sizes, ages

std::string human_bytes(uint64_t b) {
    const char* units[] = {"", "K", "M", "G", "T"};
    double v = static_cast<double>(b);
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        ++u;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, u == 0 ? "%.0f%s" : (v < 10 ? "%.1f%s" : "%.0f%s"), v, units[u]);
    return buf;
}

std::string human_age(double s) {
    char buf[32];
    if (s < 1) {
        std::snprintf(buf, sizeof buf, "%.0fms", s * 1000);
    } else if (s < 120) {
        std::snprintf(buf, sizeof buf, "%.1fs", s);
    } else if (s < 7200) {
        std::snprintf(buf, sizeof buf, "%.0fm", s / 60);
    } else if (s < 172800) {
        std::snprintf(buf, sizeof buf, "%.0fh", s / 3600);
    } else {
        std::snprintf(buf, sizeof buf, "%.0fd", s / 86400);
    }
    return buf;
}

std::string describe_writers(const std::vector<int>& pids) {
    if (pids.empty()) return "none";
    if (pids.size() == 1) return "pid " + std::to_string(pids.front());
    std::string s = std::to_string(pids.size()) + " (pids ";
    for (size_t i = 0; i < pids.size(); ++i) {
        if (i != 0) s += ", ";
        s += std::to_string(pids[i]);
    }
    return s + ")";
}

}  // namespace chronicle::cli
