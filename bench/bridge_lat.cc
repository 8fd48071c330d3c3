// bridge_lat — end-to-end latency of bench/nats_bench.sh (and any bridge out of a queue):
// appends N records to QUEUE, one every INTERVAL microseconds, and for each waits until the
// named reader READER (a following chronicle-bridge) has stored its cursor past it — the
// bridge stores it only once the server acknowledged the record. Latency = the cursor's
// commit time minus the time just before the append (both CLOCK_REALTIME, taken by the two
// processes themselves: the polling here adds nothing to the figure).
//
//   bridge_lat QUEUE READER N INTERVAL_US
//
// Prints "p50 p99 max" in microseconds on stdout.
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "bench_common.h"
#include "chronicle/admin.h"
#include "chronicle/writer.h"

namespace {
uint64_t realtime_ns() {
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}
}  // namespace

int main(int argc, char** argv) {
    if (argc != 5) {
        std::fprintf(stderr, "usage: bridge_lat QUEUE READER N INTERVAL_US\n");
        return 2;
    }
    const std::string q = argv[1];
    const std::string reader = argv[2];
    const int n = std::atoi(argv[3]);
    const auto interval = std::chrono::microseconds(std::atoll(argv[4]));
    auto w = chronicle::Writer::open(q);
    if (!w) {
        std::fprintf(stderr, "bridge_lat: %s\n", w.status().message().c_str());
        return 1;
    }
    std::vector<double> us;
    for (int i = 0; i < n; ++i) {
        const uint64_t t0 = realtime_ns();
        auto seq = w.value()->append(std::string_view("latency probe 0123456789"));
        if (!seq) {
            std::fprintf(stderr, "bridge_lat: %s\n", seq.status().message().c_str());
            return 1;
        }
        const uint64_t deadline = bench::now_ns() + 10'000'000'000ull;
        for (;;) {
            auto r = chronicle::inspect_reader(q, reader);
            if (r && r->position > seq.value()) {
                us.push_back(static_cast<double>(r->commit_ns - t0) / 1000.0);
                break;
            }
            if (bench::now_ns() > deadline) {
                std::fprintf(stderr, "bridge_lat: reader %s did not pass record %llu in 10 s\n",
                             reader.c_str(), static_cast<unsigned long long>(seq.value()));
                return 1;
            }
            std::this_thread::sleep_for(std::chrono::microseconds(20));
        }
        std::this_thread::sleep_for(interval);
    }
    std::sort(us.begin(), us.end());
    auto at = [&](double p) {
        return us[static_cast<size_t>(p * static_cast<double>(us.size() - 1))];
    };
    std::printf("%.0f %.0f %.0f\n", at(0.5), at(0.99), us.back());
    return 0;
}
