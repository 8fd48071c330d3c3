// chronicle — names in a queue directory (see queue_files.h).
#include "queue_files.h"

#include "producers.h"

#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>

#include "json_fields.h"
#include "lock.h"

namespace chronicle::files {

namespace {
constexpr std::string_view kSegmentSuffix = ".seg";
constexpr std::string_view kTempSuffix = ".tmp";
constexpr size_t kSegmentDigits = 20;

bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() > suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}
}  // namespace

std::string prepared_segment_tmp(int pid, unsigned n) {
    return ".prep." + std::to_string(pid) + "." + std::to_string(n) + ".seg.tmp";
}

bool parse_prepared_segment_tmp(std::string_view name, int& pid) {
    constexpr std::string_view head = ".prep.", tail = ".seg.tmp";
    if (name.size() <= head.size() + tail.size() || name.substr(0, head.size()) != head ||
        name.substr(name.size() - tail.size()) != tail) {
        return false;
    }
    const std::string_view mid = name.substr(head.size(), name.size() - head.size() - tail.size());
    const size_t dot = mid.find('.');
    if (dot == std::string_view::npos || dot == 0 || dot + 1 == mid.size()) return false;
    int p = 0;
    for (char c : mid.substr(0, dot)) {
        if (c < '0' || c > '9' || p > 100000000) return false;
        p = p * 10 + (c - '0');
    }
    for (char c : mid.substr(dot + 1)) {
        if (c < '0' || c > '9') return false;
    }
    pid = p;
    return p > 0;
}

std::string segment_name(uint64_t base_seq) {
    char buf[32];
    (void)std::snprintf(buf, sizeof buf, "%020" PRIu64 ".seg", base_seq);
    return buf;
}

bool parse_segment_name(std::string_view name, uint64_t& base_seq) {
    if (name.size() != kSegmentDigits + kSegmentSuffix.size() ||
        name.substr(kSegmentDigits) != kSegmentSuffix) {
        return false;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < kSegmentDigits; ++i) {
        const char c = name[i];
        if (c < '0' || c > '9') return false;
        const uint64_t d = static_cast<uint64_t>(c - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    base_seq = v;
    return true;
}

Result<std::vector<uint64_t>> list_segments(std::string_view dir) {
    auto names = fs::list_dir(dir);
    if (!names) return names.status();
    std::vector<uint64_t> bases;
    for (const auto& n : names.value()) {
        uint64_t b = 0;
        if (parse_segment_name(n, b)) bases.push_back(b);
    }
    std::sort(bases.begin(), bases.end());
    return bases;
}

std::string_view suffix(ReaderFile kind) {
    switch (kind) {
        case ReaderFile::cursor:
            return ".cursor";
        case ReaderFile::efd:
            return ".efd";
        case ReaderFile::fifo:
            return ".fifo";
    }
    return {};
}

std::string reader_file(std::string_view reader, ReaderFile kind) {
    return std::string(reader) + std::string(suffix(kind));
}

bool parse_reader_file(std::string_view file, std::string& reader, ReaderFile& kind) {
    if (file.empty() || file.front() == '.') return false;
    for (ReaderFile k : {ReaderFile::cursor, ReaderFile::efd, ReaderFile::fifo}) {
        const std::string_view s = suffix(k);
        if (ends_with(file, s)) {
            reader = std::string(file.substr(0, file.size() - s.size()));
            kind = k;
            return true;
        }
    }
    return false;
}

std::string ephemeral_name(int pid, uint64_t n) {
    return std::string(kEphemeralPrefix) + std::to_string(pid) + "." + std::to_string(n);
}

bool is_ephemeral(std::string_view reader) {
    return reader.substr(0, kEphemeralPrefix.size()) == kEphemeralPrefix;
}

std::string temp_name(std::string_view file) {
    return "." + std::string(file) + "." + std::to_string(::getpid()) + std::string(kTempSuffix);
}

bool is_temp_name(std::string_view name) {
    return !name.empty() && name.front() == '.' && ends_with(name, kTempSuffix);
}

std::string readers_path(std::string_view dir) {
    return fs::join(dir, kReadersDir);
}

Result<fs::Fd> open_queue_dir(std::string_view dir) {
    auto dfd = fs::open_dir(dir);
    if (!dfd && dfd.status().code() == errc::not_found) {
        return Status(errc::not_found, "queue " + std::string(dir) + " does not exist");
    }
    return dfd;
}

Result<fs::Fd> open_readers_dir(int dirfd, std::string_view dir) {
    auto r = fs::open_at(dirfd, dir, kReadersDir, O_RDONLY | O_DIRECTORY);
    if (!r && r.status().code() == errc::not_found) {
        return Status(errc::not_found,
                      std::string(dir) + " is not a chronicle queue (no readers/)");
    }
    return r;
}

bool is_queue_entry(std::string_view name) {
    uint64_t b = 0;
    return name == kWriterLock || name == kReadersDir || name == kRetention || name == kQueueId ||
           parse_segment_name(name, b);
}

std::string writer_lock_to_json(const WriterLockText& w) {
    nlohmann::json j = {{"pid", w.pid}, {"start_time", w.start_time}, {"started_ns", w.started_ns}};
    if (!w.notifier.empty()) j["notifier"] = w.notifier;
    return j.dump() + "\n";
}

WriterLockText writer_lock_from_json(std::string_view text) {
    WriterLockText w;
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (!j.is_object()) return w;
    if (!json_fields::get_int(j, "pid", w.pid)) w.pid = 0;
    if (!json_fields::get_int(j, "start_time", w.start_time)) w.start_time = 0;
    if (!json_fields::get_int(j, "started_ns", w.started_ns)) w.started_ns = 0;
    (void)json_fields::get_string(j, "notifier", w.notifier);
    return w;
}

Status write_writer_lock(int lockfd, std::string_view dir, const WriterLockText& w) {
    const std::string text = writer_lock_to_json(w);
    if (::ftruncate(lockfd, 0) != 0) {
        return Status::from_errno(errno, "cannot write", fs::join(dir, kWriterLock));
    }
    return fs::pwrite_all(lockfd, text.data(), text.size(), 0, fs::join(dir, kWriterLock));
}

WriterInfo query_writer(int dirfd, std::string_view dir) {
    WriterInfo w;
    auto fd = fs::open_at(dirfd, dir, kWriterLock, O_RDONLY);
    if (!fd) return w;
    auto held = lock::is_held(fd->get(), fs::join(dir, kWriterLock));
    if (!held || !held.value()) return w;
    w.alive = true;
    char buf[1024];
    const ssize_t n = ::pread(fd->get(), buf, sizeof buf - 1, 0);
    if (n > 0) {
        const WriterLockText t =
            writer_lock_from_json(std::string_view(buf, static_cast<size_t>(n)));
        w.pid = t.pid;
        w.start_time = t.start_time;
        w.notifier = t.notifier;
    }
    if (w.pid <= 0 || w.start_time == 0 || fs::process_start_time(w.pid) != w.start_time) {
        // The writer named there was killed while others go on (a clean exit names
        // another): any live shared writer will do.
        const auto live = read_live_writers(dirfd, dir);
        if (!live.empty()) {
            w.pid = live.front().pid;
            w.start_time = live.front().start_time;
        }
    }
    return w;
}

bool has_writer_lock(int dirfd) {
    return ::faccessat(dirfd, std::string(kWriterLock).c_str(), F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

Result<QueueId> read_queue_id(int dirfd, std::string_view dir) {
    auto text = fs::read_small_file(dirfd, dir, kQueueId, 4096);
    if (!text) return text.status();
    const std::string path = fs::join(dir, kQueueId);
    const nlohmann::json j = nlohmann::json::parse(text.value(), nullptr, false);
    QueueId q;
    int version = 0;
    if (j.is_discarded() || !j.is_object() || !json_fields::get_int(j, "version", version) ||
        version != 1 || !json_fields::get_string(j, "id", q.id) || q.id.size() != 32 ||
        q.id.find_first_not_of("0123456789abcdef") != std::string::npos) {
        return Status(errc::corrupt,
                      path + ": not a queue identity (version 1, a 32-digit hex id)");
    }
    (void)json_fields::get_int(j, "created_ns", q.created_ns);
    return q;
}

Result<QueueId> ensure_queue_id(int dirfd, std::string_view dir) {
    auto have = read_queue_id(dirfd, dir);
    if (have || have.status().code() != errc::not_found) return have;
    uint8_t bytes[16];
    size_t got = 0;
    while (got < sizeof bytes) {
        const ssize_t n = ::getrandom(bytes + got, sizeof bytes - got, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return Status::from_errno(errno, "cannot make an id for", dir);
        got += static_cast<size_t>(n);
    }
    QueueId q;
    static const char* const kHex = "0123456789abcdef";
    for (uint8_t b : bytes) {
        q.id += kHex[b >> 4];
        q.id += kHex[b & 15];
    }
    q.created_ns = fs::realtime_ns();
    const nlohmann::json j = {{"version", 1}, {"id", q.id}, {"created_ns", q.created_ns}};
    if (Status st =
            fs::write_file_atomic(dirfd, dir, kQueueId, temp_name(kQueueId), j.dump() + "\n");
        !st) {
        return st;
    }
    return q;
}

}  // namespace chronicle::files
