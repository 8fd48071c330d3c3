// chronicle — the retention policy as a pure function of what a queue looks like, so that
// every rule is tested without files (retention.cc gathers the facts and deletes).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "chronicle/retention.h"

namespace chronicle {

struct SegmentFacts {
    uint64_t base = 0;
    uint64_t bytes = 0;
};

struct ReaderFacts {
    std::string name;
    uint64_t position = 0;
    bool alive = false;
    bool damaged = false;  // position unknown
};

struct QueueFacts {
    std::vector<SegmentFacts> segments;  // ascending; the last one holds the head
    uint64_t head = 0;                   // one past the last committed record
    uint64_t now_ns = 0;
    uint64_t disk_free = 0;  // bytes available to us on the file system
    uint64_t disk_size = 0;
    bool disk_known = false;           // statvfs worked: without it keep-free deletes nothing
    std::vector<ReaderFacts> readers;  // named readers only (they are durable)
    // What the records of segments[i] end with, asked only for the segments the walk
    // reaches, oldest first: whether a seal (a segment without one — its writer died
    // mid-roll, before recovery sealed it — is never deleted: a reader inside it would wait
    // at its end for ever), and the timestamp of its newest record (0: none; UINT64_MAX:
    // unreadable, never too old).
    struct End {
        bool sealed = false;
        uint64_t newest_ns = 0;
    };
    std::function<End(size_t i)> end_of;
};

// What the limits delete, oldest first: whole segments that are sealed with every record
// committed (the next segment starts at or below the head), never the last segment. A
// segment goes while one limit is exceeded (checked in RetentionCause order); soft limits
// stop at the first segment a named reader has not finished (a damaged cursor counts as
// unfinished), and the report says how much each such reader keeps. Nothing is deleted
// here: the report's deletions are not `done`.
RetentionReport plan_retention(const QueueFacts& q, const RetentionLimits& limits);

}  // namespace chronicle
