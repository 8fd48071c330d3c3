// chronicle — Linux process and descriptor helpers for the wake path: pidfds (a process
// named for good, readable once it exits), fetching another process's descriptor, and
// proving what a descriptor is through /proc.
#pragma once

#include <cstdint>

#include "fs.h"

namespace chronicle::proc {

// pidfd_open(2) and pidfd_getfd(2), never returning fds 0-2 (fs::above_stdio).
int pidfd_open(int pid);
int pidfd_getfd(int pidfd, int fd);

// A pidfd of `pid` if it is the process that started at `start_time` (0: unknown, not
// checked); an invalid Fd otherwise (errno says why). A pidfd names one process for good,
// so a pid reused after the start-time check cannot slip in: if the process exits after
// pidfd_open, the pidfd reports it (readable) instead of naming the newcomer.
fs::Fd open_process(int pid, uint64_t start_time);

// Whether the process of `pidfd` has exited (its pidfd is readable).
bool exited(int pidfd);

// The "eventfd-id:" of one of our descriptors (/proc/self/fdinfo), 0 if the kernel does
// not report it.
uint64_t eventfd_id(int fd);

// Whether one of our descriptors is an eventfd (/proc/self/fd/<fd> reads
// "anon_inode:[eventfd]").
bool is_eventfd(int fd);

}  // namespace chronicle::proc
