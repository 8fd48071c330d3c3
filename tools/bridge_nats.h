// chronicle-bridge — NATS JetStream (libnats). docs/DESIGN.md §10.
#pragma once

#include "bridge.h"

namespace chronicle::bridge::nats {

// Out of a queue into the stream that captures the URL's subject: one message per record
// (Nats-Msg-Id "<queue id>-<seq>", Nats-Expected-Last-Msg-Id the previous record's id),
// published asynchronously with at most --batch unacknowledged, the cursor stored up to the
// highest contiguous acknowledged record. Returns an exit code.
int out(const Options& o);

// Into a queue from the stream that captures the URL's subject, as the durable pull
// consumer --durable: each fetch of up to --batch messages appended as one batch, committed,
// then acknowledged (at-least-once: a crash between the two appends that batch again).
// Returns an exit code.
int in(const Options& o);

}  // namespace chronicle::bridge::nats
