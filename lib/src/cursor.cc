// chronicle — durable cursors of named readers (see cursor.h and docs/DESIGN.md).
#include "cursor.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "chronicle/reader.h"
#include "lock.h"
#include "queue_files.h"

namespace chronicle {

using namespace format;

Status validate_reader_name(std::string_view name) {
    auto bad = [&](const char* why) {
        std::string shown(name.substr(0, 40));
        if (name.size() > 40) shown += "...";
        return Status(errc::invalid_argument, "invalid reader name '" + shown + "': " + why);
    };
    if (name.empty()) return bad("empty");
    if (name.size() > 100) return bad("longer than 100 characters");
    if (name.front() == '.') return bad("starts with '.'");
    if (name.find("..") != std::string_view::npos) return bad("contains '..'");
    for (char c : name) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
        if (!ok) return bad("only letters, digits, '.', '_' and '-' are allowed");
    }
    return {};
}

Status check_cursor_header(const CursorHeader* h, const std::string& path) {
    if (h->magic != kCursorMagic) {
        return Status(errc::corrupt, path + ": not a chronicle cursor (wrong magic)");
    }
    if (h->version != kCursorVersion) {
        return Status(errc::corrupt,
                      path + ": unsupported cursor version " + std::to_string(h->version));
    }
    if (h->size != kCursorFileSize) {
        return Status(errc::corrupt, path + ": size field " + std::to_string(h->size) +
                                         " is not the cursor size " +
                                         std::to_string(kCursorFileSize));
    }
    return {};
}

namespace {

// Creates <name>.cursor at `seq` unless it exists: written under a temporary name, then
// linked into place, which fails with EEXIST instead of replacing a cursor that another
// process created meanwhile.
Status create_cursor_file(int readers_fd, std::string_view readers_path, const std::string& file,
                          uint64_t seq) {
    const std::string tmp = files::temp_name(file);
    auto fd = fs::open_at(readers_fd, readers_path, tmp, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (!fd) return fd.status();
    CursorHeader h{};
    h.magic = kCursorMagic;
    h.version = kCursorVersion;
    h.size = static_cast<uint32_t>(kCursorFileSize);
    h.created_ns = fs::realtime_ns();
    h.next_seq.store(seq, std::memory_order_relaxed);
    h.commit_ns.store(h.created_ns, std::memory_order_relaxed);
    std::byte pagebuf[kCursorFileSize] = {};
    std::memcpy(pagebuf, &h, sizeof h);
    Status st = fs::pwrite_all(fd->get(), pagebuf, sizeof pagebuf, 0, fs::join(readers_path, tmp));
    if (st.ok() && ::linkat(readers_fd, tmp.c_str(), readers_fd, file.c_str(), 0) != 0 &&
        errno != EEXIST) {
        st = Status::from_errno(errno, "cannot create", fs::join(readers_path, file));
    }
    ::unlinkat(readers_fd, tmp.c_str(), 0);
    return st;
}

}  // namespace

Result<CursorStore> CursorStore::open(int readers_fd, std::string_view readers_path,
                                      std::string_view name, const OpenOptions& o) {
    if (!o.ephemeral) {
        if (Status st = validate_reader_name(name); !st) return st;
    }
    const std::string file = files::reader_file(name, files::ReaderFile::cursor);
    CursorStore c;
    c.path_ = fs::join(readers_path, file);
    auto fd = fs::open_at(readers_fd, readers_path, file, O_RDWR);
    if (!fd && fd.status().sys_errno() == ENOENT) {
        if (!o.create) {
            return Status(errc::not_found,
                          "reader '" + std::string(name) + "' does not exist (" + c.path_ + ")");
        }
        if (Status st = create_cursor_file(readers_fd, readers_path, file, o.initial_seq); !st) {
            return st;
        }
        c.created_ = true;
        fd = fs::open_at(readers_fd, readers_path, file, O_RDWR);
    }
    if (!fd) return fd.status();
    c.fd_ = std::move(fd.value());
    if (Status st = lock::try_exclusive(c.fd_.get(), c.path_); !st) {
        if (st.code() != errc::busy) return st;
        // Name the holder: it wrote its pid into the page when it took the lock.
        CursorHeader h{};
        std::string who;
        if (::pread(c.fd_.get(), &h, sizeof h, 0) == static_cast<ssize_t>(sizeof h) &&
            h.owner_pid.load(std::memory_order_relaxed) != 0) {
            who = " (pid " + std::to_string(h.owner_pid.load(std::memory_order_relaxed)) + ")";
        }
        return Status(errc::busy,
                      "reader '" + std::string(name) + "' is in use by another process" + who);
    }
    auto size = fs::file_size(c.fd_.get(), c.path_);
    if (!size) return size.status();
    if (size.value() != kCursorFileSize) {
        return Status(errc::corrupt,
                      c.path_ + ": size " + std::to_string(size.value()) + " is not a cursor size");
    }
    auto map = fs::Mapping::map(c.fd_.get(), kCursorFileSize, true, c.path_);
    if (!map) return map.status();
    c.map_ = std::move(map.value());
    if (Status st = check_cursor_header(c.header(), c.path_); !st) return st;
    // A stored position past the head (the caller's bound) is a damaged word: refused
    // before this process writes anything into the page.
    if (const uint64_t pos = c.header()->next_seq.load(std::memory_order_relaxed);
        pos > o.max_next_seq) {
        return Status(errc::corrupt, c.path_ + ": stored position " + std::to_string(pos) +
                                         " is past the head " + std::to_string(o.max_next_seq) +
                                         " (a damaged cursor)");
    }
    // Relaxed: informational, read by other processes only alongside the lock query.
    c.header()->owner_pid.store(static_cast<uint64_t>(::getpid()), std::memory_order_relaxed);
    c.header()->owner_start.store(fs::process_start_time(::getpid()), std::memory_order_relaxed);
    return c;
}

void CursorStore::store(uint64_t seq) noexcept {
    CursorHeader* h = header();
    // Relaxed: single 64-bit word, written only by the lock holder; a crash leaves either
    // the old or the new value. Readers of other processes take snapshots for reports.
    if (h->next_seq.load(std::memory_order_relaxed) == seq) return;
    h->next_seq.store(seq, std::memory_order_relaxed);
    h->commit_ns.store(fs::realtime_ns(), std::memory_order_relaxed);
}

Result<fs::Fd> open_cursor_readonly(int readers_fd, std::string_view readers_path,
                                    std::string_view name) {
    const std::string file = files::reader_file(name, files::ReaderFile::cursor);
    const std::string path = fs::join(readers_path, file);
    auto fd = fs::open_at(readers_fd, readers_path, file, O_RDONLY);
    if (!fd) {
        if (fd.status().sys_errno() == ENOENT) {
            return Status(errc::not_found, "reader '" + std::string(name) + "' does not exist");
        }
        return fd.status();
    }
    auto size = fs::file_size(fd->get(), path);
    if (!size) return size.status();
    if (size.value() != kCursorFileSize) {
        return Status(errc::corrupt,
                      path + ": size " + std::to_string(size.value()) + " is not a cursor size");
    }
    return std::move(fd.value());
}

Result<CursorInfo> inspect_cursor(int readers_fd, std::string_view readers_path,
                                  std::string_view name) {
    if (Status st = validate_reader_name(name); !st) return st;
    const std::string file = files::reader_file(name, files::ReaderFile::cursor);
    const std::string path = fs::join(readers_path, file);
    auto fd = open_cursor_readonly(readers_fd, readers_path, name);
    if (!fd) return fd.status();
    CursorHeader h{};
    if (::pread(fd->get(), &h, sizeof h, 0) != static_cast<ssize_t>(sizeof h)) {
        return Status::from_errno(errno, "cannot read", path);
    }
    if (Status st = check_cursor_header(&h, path); !st) return st;
    auto held = lock::is_held(fd->get(), path);
    if (!held) return held.status();
    CursorInfo info;
    info.name = std::string(name);
    info.next_seq = h.next_seq.load(std::memory_order_relaxed);
    info.created_ns = h.created_ns;
    info.commit_ns = h.commit_ns.load(std::memory_order_relaxed);
    info.owner_pid = h.owner_pid.load(std::memory_order_relaxed);
    info.locked = held.value();
    return info;
}

Result<std::vector<std::string>> list_reader_names(std::string_view readers_path,
                                                   bool include_ephemeral) {
    auto names = fs::list_dir(readers_path);
    if (!names) return names.status();
    std::vector<std::string> out;
    for (const auto& n : names.value()) {
        std::string base;
        files::ReaderFile kind{};
        if (!files::parse_reader_file(n, base, kind) || kind != files::ReaderFile::cursor) continue;
        const bool ephemeral =
            include_ephemeral && files::is_ephemeral(base) && base.find('/') == std::string::npos;
        if (ephemeral || validate_reader_name(base)) out.push_back(std::move(base));
    }
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace chronicle
