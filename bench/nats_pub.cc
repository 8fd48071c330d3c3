// nats_pub — the same-run baseline of bench/nats_bench.sh: a minimal libnats JetStream
// publisher doing what chronicle-bridge does per record, without the queue: N messages of
// SIZE bytes to SUBJECT, published asynchronously with at most WINDOW unacknowledged, each
// with a Nats-Msg-Id and the two Chronicle headers, then waits for every acknowledgment.
//
//   nats_pub SERVERS SUBJECT N SIZE WINDOW STREAM REPLICAS
//     (SERVERS: "nats://h:p[,nats://h:p...]"; the stream STREAM capturing SUBJECT is
//     created with REPLICAS replicas first)
//
// Prints "<records/s>" on stdout; errors on stderr, exit 1.
#include <nats/nats.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "bench_common.h"

namespace {
std::atomic<int> failed{0};
void on_ack(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr*, void*) {
    if (pa == nullptr) ++failed;  // libnats' thread; read after PublishAsyncComplete
    natsMsg_Destroy(msg);
}
}  // namespace

int main(int argc, char** argv) {
    if (argc != 8) {
        std::fprintf(stderr, "usage: nats_pub SERVERS SUBJECT N SIZE WINDOW STREAM REPLICAS\n");
        return 2;
    }
    const char* subject = argv[2];
    const uint64_t n = std::strtoull(argv[3], nullptr, 10);
    const std::string payload(std::strtoull(argv[4], nullptr, 10), 'x');
    const int64_t window = std::strtoll(argv[5], nullptr, 10);
    natsConnection* nc = nullptr;
    jsCtx* js = nullptr;
    natsStatus s = natsConnection_ConnectTo(&nc, argv[1]);
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = window;
    jo.PublishAsync.AckHandler = on_ack;
    if (s == NATS_OK) s = natsConnection_JetStream(&js, nc, &jo);
    if (s == NATS_OK) {
        jsStreamConfig cfg;
        jsStreamConfig_Init(&cfg);
        const char* subjects[] = {subject};
        cfg.Name = argv[6];
        cfg.Subjects = subjects;
        cfg.SubjectsLen = 1;
        cfg.Replicas = std::atoi(argv[7]);
        s = js_AddStream(nullptr, js, &cfg, nullptr, nullptr);
    }
    const uint64_t t0 = bench::now_ns();
    for (uint64_t i = 0; s == NATS_OK && i < n; ++i) {
        const std::string seq = std::to_string(i);
        const std::string id = "bench-" + seq;
        natsMsg* m = nullptr;
        s = natsMsg_Create(&m, subject, nullptr, payload.data(), static_cast<int>(payload.size()));
        if (s == NATS_OK) s = natsMsgHeader_Set(m, "Chronicle-Seq", seq.c_str());
        if (s == NATS_OK) s = natsMsgHeader_Set(m, "Chronicle-Time", seq.c_str());
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MsgId = id.c_str();
        if (s == NATS_OK) s = js_PublishMsgAsync(js, &m, &po);
        natsMsg_Destroy(m);
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 60000;
    if (s == NATS_OK) s = js_PublishAsyncComplete(js, &po);
    const uint64_t t1 = bench::now_ns();
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    if (s != NATS_OK || failed.load() != 0) {
        std::fprintf(stderr, "nats_pub: %s, %d failed\n", natsStatus_GetText(s), failed.load());
        return 1;
    }
    std::printf("%.0f\n", static_cast<double>(n) / (static_cast<double>(t1 - t0) / 1e9));
    return 0;
}
