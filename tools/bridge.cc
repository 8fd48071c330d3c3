// chronicle-bridge — what the engines share (see bridge.h).
#include "bridge.h"

#include <poll.h>

#include <algorithm>
#include <charconv>
#include <random>

#include "chronicle/admin.h"
#include "cli.h"

namespace chronicle::bridge {

std::string Url::where() const {
    const bool v6 = host.find(':') != std::string::npos;
    return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::string Url::display() const {
    std::string all = where();
    for (const std::string& m : more) all += "," + m;
    return scheme + "://" + all + "/" + name;
}

bool is_url(std::string_view s) {
    return s.find("://") != std::string_view::npos;
}

std::string parse_url(std::string_view s, Url& out) {
    const size_t colon = s.find("://");
    if (colon == std::string_view::npos) return "not a URL (scheme://host:port/name)";
    out.scheme = std::string(s.substr(0, colon));
    if (out.scheme == "redis") {
        out.port = 6379;
    } else if (out.scheme == "nats") {
        out.port = 4222;
    } else {
        return "unknown scheme '" + out.scheme + "' (redis://HOST:PORT/STREAM)";
    }
    std::string_view rest = s.substr(colon + 3);
    const size_t slash = rest.find('/');
    if (slash == std::string_view::npos || slash + 1 == rest.size()) {
        return "no " + std::string(out.scheme == "redis" ? "stream" : "subject") +
               " after the host (" + out.scheme + "://HOST:PORT/" +
               (out.scheme == "redis" ? "STREAM" : "SUBJECT") + ")";
    }
    out.name = std::string(rest.substr(slash + 1));
    std::string_view authority = rest.substr(0, slash);
    if (const size_t at = authority.rfind('@'); at != std::string_view::npos) {
        std::string_view cred = authority.substr(0, at);
        authority = authority.substr(at + 1);
        if (const size_t c = cred.find(':'); c != std::string_view::npos) {
            out.user = std::string(cred.substr(0, c));
            out.password = std::string(cred.substr(c + 1));
        } else {
            out.user = std::string(cred);
        }
    }
    // NATS: several servers of one cluster, "h1:p1,h2:p2" (the first names the URL).
    if (const size_t comma = authority.find(','); comma != std::string_view::npos) {
        if (out.scheme != "nats") return "several hosts are for nats:// only";
        std::string_view others = authority.substr(comma + 1);
        authority = authority.substr(0, comma);
        while (!others.empty()) {
            const size_t next = others.find(',');
            Url one;
            one.scheme = out.scheme;
            if (std::string err =
                    parse_url("nats://" + std::string(others.substr(0, next)) + "/x", one);
                !err.empty()) {
                return err;
            }
            out.more.push_back(one.where());
            others = next == std::string_view::npos ? std::string_view() : others.substr(next + 1);
        }
    }
    std::string_view host = authority;
    std::string_view port;
    if (!authority.empty() && authority[0] == '[') {
        const size_t close = authority.find(']');
        if (close == std::string_view::npos) return "unclosed '[' in the host";
        host = authority.substr(1, close - 1);
        std::string_view after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after[0] != ':') return "junk after the host";
            port = after.substr(1);
        }
    } else if (const size_t c = authority.rfind(':'); c != std::string_view::npos) {
        host = authority.substr(0, c);
        port = authority.substr(c + 1);
    }
    if (host.empty()) return "no host";
    out.host = std::string(host);
    if (!port.empty()) {
        int p = 0;
        auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
        if (ec != std::errc() || end != port.data() + port.size() || p < 1 || p > 65535) {
            return "bad port '" + std::string(port) + "'";
        }
        out.port = p;
    }
    return {};
}

void note(const std::string& what) {
    cli::warn("note: " + what);
}

bool stop_requested() {
    (void)cli::poll_signals(nullptr, 0, 0);
    return cli::terminated() != 0;
}

int signal_exit() {
    return 128 + cli::terminated();
}

int fatal(const Outcome& oc) {
    cli::warn(oc.why);
    return oc.code;
}

int gave_up(const Outcome& oc, const Backoff& b) {
    if (cli::terminated() != 0) return signal_exit();
    cli::warn(oc.why + " (gave up after " + b.spent() + ", --retry-for)");
    return cli::kTimeout;
}

std::string to_dec(uint64_t v) {
    char b[24];
    auto [end, ec] = std::to_chars(b, b + sizeof b, v);
    (void)ec;
    return {b, end};
}

std::optional<uint64_t> parse_dec(std::string_view s) {
    uint64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
    return v;
}

bool Backoff::wait(const std::string& why) {
    const auto now = std::chrono::steady_clock::now();
    if (!first_failure_) first_failure_ = now;
    const auto spent_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(now - *first_failure_).count();
    if (limit_ns_ && static_cast<uint64_t>(spent_ns) >= *limit_ns_) return false;
    static thread_local std::minstd_rand rng{std::random_device{}()};
    // The delay +- 10 %, so that bridges restarted together do not knock in step.
    const int jitter = static_cast<int>(rng() % static_cast<unsigned>(delay_ms_ / 5 + 1));
    int ms = delay_ms_ - delay_ms_ / 10 + jitter;
    if (limit_ns_) {
        const auto left_ms =
            static_cast<int64_t>((*limit_ns_ - static_cast<uint64_t>(spent_ns)) / 1'000'000ull) + 1;
        ms = static_cast<int>(std::min<int64_t>(ms, left_ms));
    }
    note(why + "; retrying in " + std::to_string(ms) + " ms");
    (void)cli::poll_signals(nullptr, 0, ms);
    delay_ms_ = std::min(delay_ms_ * 2, 5000);
    return true;
}

std::string Backoff::spent() const {
    if (!first_failure_) return "0s";
    const auto s = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::steady_clock::now() - *first_failure_)
                       .count();
    return std::to_string(s) + "s";
}

Result<std::unique_ptr<QueueSource>> QueueSource::open(const Options& o) {
    auto src = std::unique_ptr<QueueSource>(new QueueSource());
    ReaderOptions ro;
    ro.name = o.reader;
    ro.auto_commit = false;  // stored only once the server holds the records
    auto r = Reader::open(o.queue, ro);
    if (!r) return r.status();
    src->reader_ = std::move(r.value());
    src->committed_ = src->reader_->position();
    auto stats = inspect_queue(o.queue);
    if (!stats) return stats.status();
    src->id_ = stats.value().id;
    return src;
}

Status QueueSource::commit(uint64_t next_seq) {
    if (next_seq <= committed_) return {};
    Status st = reader_->commit(next_seq);
    if (st) committed_ = next_seq;
    return st;
}

Status QueueSource::resume_at(uint64_t seq) {
    if (Status st = reader_->seek(Position::at_seq(seq)); !st) return st;
    return commit(seq);
}

Status QueueSource::wait(int max_ms) {
    auto armed = reader_->prepare_wait();
    if (!armed) return armed.status();
    if (!armed.value()) return {};  // records arrived meanwhile
    auto fd = reader_->fd();
    if (!fd) return fd.status();
    if (fd.value() < 0) {
        if (!reader_->follow_status().ok() && !warned_polling_) {
            note("following by polling: " + reader_->follow_status().message());
            warned_polling_ = true;
        }
        // The library's polling wait, in slices, so that a signal still ends us soon.
        Status st = reader_->wait(std::chrono::milliseconds(std::min(max_ms, 100)));
        if (!st && st.code() != errc::timeout && st.code() != errc::closed) return st;
        (void)cli::poll_signals(nullptr, 0, 0);
        return {};
    }
    pollfd p{fd.value(), POLLIN, 0};
    (void)cli::poll_signals(&p, 1, max_ms);
    return {};
}

}  // namespace chronicle::bridge
