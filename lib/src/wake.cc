// chronicle — the wake page and the writer's hook (see wake.h for the protocol).
#include "wake.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include "queue_files.h"

namespace chronicle {

using namespace format;

Result<fs::Mapping> open_wake_page(int dirfd, std::string_view dir) {
    const std::string path = fs::join(dir, files::kWakePage);
    auto fd = fs::open_at(dirfd, dir, files::kWakePage, O_RDWR | O_CREAT, 0644);
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

WakeHook::WakeHook() = default;
WakeHook::~WakeHook() = default;

Status WakeHook::open(int dirfd, std::string_view dir, const NotifierOptions& o) {
    auto n = WriterNotifier::create(dirfd, dir, o);
    if (!n) return n.status();
    notifier_ = std::move(n.value());
    hint_ = notifier_ ? notifier_->hint() : nullptr;  // none: the portable build
    return {};
}

void WakeHook::slow_path() noexcept {
    notifier_->wake_sleepers();
}

}  // namespace chronicle
