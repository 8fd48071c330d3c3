// chronicle — the durable cursor of a named reader: readers/<name>.cursor.
//
// One page, mmap'd read-write by the process that holds the name (an OFD lock on the
// cursor file itself: exclusive per name, dropped by the kernel when the holder dies,
// queryable without taking it). The position is a single 64-bit word, so a crash never
// tears it. Layout: format::CursorHeader; the wake area that follows belongs to the
// notifier.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "chronicle/status.h"
#include "format.h"
#include "fs.h"

namespace chronicle {

class CursorStore {
  public:
    CursorStore() = default;
    CursorStore(CursorStore&&) noexcept = default;
    CursorStore& operator=(CursorStore&&) noexcept = default;

    struct OpenOptions {
        bool create = false;       // create a missing cursor at initial_seq
        uint64_t initial_seq = 0;  // (errc::not_found for a missing one otherwise)
        // An anonymous follower's generated name ("~anon.<pid>.<n>", outside the alphabet
        // of user names), exempt from validate_reader_name.
        bool ephemeral = false;
        // A stored position past this (the head) is a damaged word: errc::corrupt.
        uint64_t max_next_seq = UINT64_MAX;
    };
    // Opens readers/<name>.cursor and takes its lock (errc::busy naming the holder's pid if
    // another process has it); created() tells whether it was created here.
    static Result<CursorStore> open(int readers_fd, std::string_view readers_path,
                                    std::string_view name, const OpenOptions& o);

    [[nodiscard]] bool valid() const noexcept { return map_.valid(); }
    [[nodiscard]] uint64_t load() const noexcept {
        // Relaxed: only this process writes it while it holds the lock.
        return header()->next_seq.load(std::memory_order_relaxed);
    }
    void store(uint64_t seq) noexcept;
    [[nodiscard]] format::CursorHeader* header() const noexcept {
        return reinterpret_cast<format::CursorHeader*>(map_.data());
    }
    [[nodiscard]] std::byte* page() const noexcept { return map_.data(); }
    [[nodiscard]] bool created() const noexcept { return created_; }

  private:
    fs::Fd fd_;
    fs::Mapping map_;
    std::string path_;
    bool created_ = false;
};

// Opens readers/<name>.cursor read-only (no lock) and checks its size: errc::not_found
// "reader 'NAME' does not exist", errc::corrupt for a file of the wrong size.
// The header checks every user of a cursor page makes (magic, version, size field): what
// CursorStore::open refuses, chronicle-readers reports as damaged.
Status check_cursor_header(const format::CursorHeader* h, const std::string& path);

Result<fs::Fd> open_cursor_readonly(int readers_fd, std::string_view readers_path,
                                    std::string_view name);

// What chronicle-readers shows of a cursor, read without taking its lock.
struct CursorInfo {
    std::string name;
    uint64_t next_seq = 0;
    uint64_t created_ns = 0;
    uint64_t commit_ns = 0;
    uint64_t owner_pid = 0;
    bool locked = false;  // a live process holds the name
};
Result<CursorInfo> inspect_cursor(int readers_fd, std::string_view readers_path,
                                  std::string_view name);

// Names of the readers that have a cursor file, sorted.
// With include_ephemeral, anonymous followers' "~anon.<pid>.<n>" names too.
Result<std::vector<std::string>> list_reader_names(std::string_view readers_path,
                                                   bool include_ephemeral = false);

}  // namespace chronicle
