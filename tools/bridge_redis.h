// chronicle-bridge — Redis Streams (hiredis). docs/DESIGN.md §10.
#pragma once

#include "bridge.h"

namespace chronicle::bridge::redis {

// Out of a queue into the stream: XADD with the ID "<seq>-1", pipelined, the cursor stored
// up to the last record the server acknowledged. Returns an exit code.
int out(const Options& o);
// Into a queue from the stream: a consumer group, XACK after the local commit.
int in(const Options& o);

}  // namespace chronicle::bridge::redis
