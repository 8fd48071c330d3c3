// chronicle — platform-independent parts of the wake protocol (see wake.h).
#include "wake.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <limits>
#include <nlohmann/json.hpp>

#include "lock.h"
#include "notifier.h"

namespace chronicle {

using namespace format;

namespace {
// An integer field of a JSON object, if present, an integer and in T's range. Never throws
// and never converts a float (files in a queue directory may hold anything: fuzz_efd and
// fuzz_writer_lock found both a throw and an out-of-range float conversion).
template <class T>
bool json_int(const nlohmann::json& j, const char* key, T& out) {
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
}  // namespace

Result<fs::Mapping> open_wake_page(int dirfd, std::string_view dir) {
    const std::string path = fs::join(dir, kWakePageName);
    auto fd = fs::open_at(dirfd, dir, kWakePageName, O_RDWR | O_CREAT, 0644);
    if (!fd) return fd.status();
    auto size = fs::file_size(fd->get(), path);
    if (!size) return size.status();
    if (size.value() < kPageSize && ::ftruncate(fd->get(), kPageSize) != 0) {
        return Status::from_errno(errno, "cannot size", path);
    }
    if (size.value() > kPageSize) {
        return Status(errc::corrupt,
                      path + ": size " + std::to_string(size.value()) + " is not a wake page");
    }
    auto map = fs::Mapping::map(fd->get(), kPageSize, true, path);
    if (!map) return map.status();
    auto* page = reinterpret_cast<WakePage*>(map->data());
    uint64_t expect = 0;
    // Whoever comes first stamps the page; a zero page is a valid "nobody sleeps" page.
    if (page->magic.compare_exchange_strong(expect, kWakeMagic, std::memory_order_relaxed)) {
        page->version = 1;
        page->size = static_cast<uint32_t>(kPageSize);
    } else if (expect != kWakeMagic) {
        return Status(errc::corrupt, path + ": not a chronicle wake page (wrong magic)");
    }
    return std::move(map.value());
}

WriterInfo query_writer(int dirfd, std::string_view dir) {
    WriterInfo w;
    auto fd = fs::open_at(dirfd, dir, "writer.lock", O_RDONLY);
    if (!fd) return w;
    auto held = lock::is_held(fd->get(), fs::join(dir, "writer.lock"));
    if (!held || !held.value()) return w;
    w.alive = true;
    char buf[512];
    const ssize_t n = ::pread(fd->get(), buf, sizeof buf - 1, 0);
    if (n > 0) {
        auto j =
            nlohmann::json::parse(std::string_view(buf, static_cast<size_t>(n)), nullptr, false);
        if (j.is_object()) {
            if (!json_int(j, "pid", w.pid)) w.pid = 0;
            if (!json_int(j, "start_time", w.start_time)) w.start_time = 0;
        }
    }
    return w;
}

std::string efd_to_json(const EfdInfo& e) {
    nlohmann::json j = {{"version", e.version},
                        {"name", e.name},
                        {"pid", e.pid},
                        {"fd", e.fd},
                        {"start_time", e.start_time},
                        {"eventfd_id", e.eventfd_id},
                        {"fifo", e.fifo},
                        {"cursor", e.cursor},
                        {"created_ns", e.created_ns},
                        {"ephemeral", e.ephemeral}};
    return j.dump() + "\n";
}

Status publish_efd(int readers_fd, std::string_view readers_path, const EfdInfo& e) {
    return fs::write_file_atomic(readers_fd, readers_path, e.name + std::string(kEfdSuffix),
                                 efd_to_json(e));
}

Result<EfdInfo> efd_from_json(std::string_view text, std::string_view path) {
    auto j = nlohmann::json::parse(text, nullptr, false);
    auto bad = [&](const char* why) {
        return Status(errc::corrupt, std::string(path) + ": unusable wake metadata: " + why);
    };
    if (!j.is_object()) return bad("not a JSON object");
    EfdInfo e;
    if (!json_int(j, "version", e.version) || !json_int(j, "pid", e.pid) ||
        !json_int(j, "fd", e.fd) || !json_int(j, "start_time", e.start_time)) {
        return bad("version, pid, fd and start_time must be integers in range");
    }
    (void)json_int(j, "eventfd_id", e.eventfd_id);  // absent: 0 (refused where ids exist)
    (void)json_int(j, "created_ns", e.created_ns);
    auto str = [&](const char* key, std::string& out) {
        auto it = j.find(key);
        if (it == j.end() || !it->is_string()) return false;
        out = it->get<std::string>();
        return true;
    };
    if (!str("name", e.name) || !str("cursor", e.cursor))
        return bad("name and cursor must be strings");
    if (j.contains("fifo") && !str("fifo", e.fifo)) return bad("fifo must be a string");
    if (auto it = j.find("ephemeral"); it != j.end()) {
        if (!it->is_boolean()) return bad("ephemeral must be true or false");
        e.ephemeral = it->get<bool>();
    }
    if (e.version != 1) return bad("unsupported version");
    if (e.pid <= 0 || e.fd < -1) return bad("bad pid or fd");  // -1: no eventfd (portable)
    // The files it names must be this reader's own, in readers/: no path tricks.
    if (e.cursor != e.name + ".cursor") return bad("cursor is not <name>.cursor");
    if (!e.fifo.empty() && e.fifo != e.name + std::string(kFifoSuffix)) {
        return bad("fifo is not <name>.fifo");
    }
    if (e.name.empty() || e.name.find('/') != std::string::npos || e.name[0] == '.') {
        return bad("bad name");
    }
    return e;
}

WakeHook::WakeHook() = default;
WakeHook::~WakeHook() = default;

void WakeHook::open(int dirfd, std::string_view dir, const NotifierOptions& o) {
    notifier_ = WriterNotifier::create(dirfd, dir, o, hint_);
}

void WakeHook::slow_path() noexcept {
    notifier_->wake_sleepers();
}

}  // namespace chronicle
