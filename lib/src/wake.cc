// chronicle — platform-independent parts of the wake protocol (see wake.h).
#include "wake.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <nlohmann/json.hpp>

#include "lock.h"
#include "notifier.h"

namespace chronicle {

using namespace format;

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
            w.pid = j.value("pid", 0);
            w.start_time = j.value("start_time", uint64_t{0});
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
    try {
        e.version = j.at("version").get<int>();
        e.name = j.at("name").get<std::string>();
        e.pid = j.at("pid").get<int>();
        e.fd = j.at("fd").get<int>();
        e.start_time = j.at("start_time").get<uint64_t>();
        e.eventfd_id = j.value("eventfd_id", uint64_t{0});
        e.fifo = j.value("fifo", std::string());
        e.cursor = j.at("cursor").get<std::string>();
        e.created_ns = j.value("created_ns", uint64_t{0});
        e.ephemeral = j.value("ephemeral", false);
    } catch (const nlohmann::json::exception& ex) {
        return bad(ex.what());
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
