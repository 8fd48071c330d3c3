// chronicle — a follower's wake registration: readers/<name>.efd, one line of JSON that
// tells the writer how to wake it (its eventfd, to be fetched with pidfd_getfd, or its
// FIFO), published atomically when the follower first waits and removed when it goes.
// Everything in it is checked before use: the writer proves the process and the descriptor
// (writer_notifier_linux.cc), and a file naming anything but its own reader's files is
// refused here.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "chronicle/status.h"

namespace chronicle {

// The wake metadata a follower publishes as readers/<name>.efd (one line of JSON).
struct EfdInfo {
    int version = 1;
    std::string name;
    int pid = 0;
    int fd = -1;
    uint64_t start_time = 0;  // field 22 of /proc/<pid>/stat
    uint64_t eventfd_id = 0;  // "eventfd-id:" of /proc/<pid>/fdinfo/<fd>; 0 if unknown
    std::string fifo;         // FIFO name in readers/ (fallback wake channel)
    std::string cursor;       // cursor file name in readers/
    uint64_t created_ns = 0;
    bool ephemeral = false;  // an anonymous follower's registration
};
std::string efd_to_json(const EfdInfo& e);
// Writes readers/<e.name>.efd atomically (temporary file + rename).
Status publish_efd(int readers_fd, std::string_view readers_path, const EfdInfo& e);
Result<EfdInfo> efd_from_json(std::string_view text, std::string_view path);
// Removes readers/<name>.efd and <name>.fifo (missing ones are fine).
Status remove_registration(int readers_fd, std::string_view name);

}  // namespace chronicle
