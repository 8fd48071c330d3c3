// chronicle — the writer's side of waking followers (placeholder until the wake path lands:
// commits call after_commit(), which is where the notifier plugs in).
#pragma once

#include <cstdint>
#include <string_view>

namespace chronicle {

class WakeHook {
public:
    void open(int /*dirfd*/, std::string_view /*dir*/) {}
    void after_commit(uint64_t /*head*/) {}
};

}  // namespace chronicle
