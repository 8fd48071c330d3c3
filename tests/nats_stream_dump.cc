// nats_stream_dump — a test helper for cli_bridge_nats.sh: prints every message of a
// JetStream stream, in stream order, as len32 frames (4 bytes big-endian length, then the
// bytes) of its data, or with --seqs one line per message:
// "<Chronicle-Seq> <Nats-Msg-Id> <Nats-Expected-Last-Msg-Id>" ("-" for a missing header).
//
//   nats_stream_dump HOST:PORT STREAM [--seqs]
// (HOST:PORT may be several, "h1:p1,nats://h2:p2": the first that answers is used.)
//   nats_stream_dump HOST:PORT STREAM --leader
//     prints the name of the server that leads STREAM in a cluster ("-" for none).
//   nats_stream_dump HOST:PORT STREAM --limit SUBJECT MAX_MSGS
//     creates or updates STREAM for SUBJECT with at most MAX_MSGS messages, refusing new
//     ones beyond (discard new); -1: no limit.
#include <nats/nats.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: nats_stream_dump HOST:PORT STREAM [--seqs]\n");
        return 2;
    }
    const std::string url = std::string("nats://") + argv[1];
    const bool seqs = argc > 3 && std::strcmp(argv[3], "--seqs") == 0;
    natsConnection* nc = nullptr;
    jsCtx* js = nullptr;
    jsStreamInfo* si = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    natsStatus s = natsConnection_ConnectTo(&nc, url.c_str());
    if (s == NATS_OK) s = natsConnection_JetStream(&js, nc, nullptr);
    int rc = 0;
    if (s == NATS_OK && argc > 5 && std::strcmp(argv[3], "--limit") == 0) {
        jsStreamConfig cfg;
        jsStreamConfig_Init(&cfg);
        const char* subjects[] = {argv[4]};
        cfg.Name = argv[2];
        cfg.Subjects = subjects;
        cfg.SubjectsLen = 1;
        cfg.MaxMsgs = std::strtoll(argv[5], nullptr, 10);
        cfg.Discard = js_DiscardNew;
        s = js_AddStream(nullptr, js, &cfg, nullptr, &jerr);
        if (s != NATS_OK && jerr == JSStreamNameExistErr) {
            s = js_UpdateStream(nullptr, js, &cfg, nullptr, &jerr);
        }
        if (s != NATS_OK) {
            std::fprintf(stderr, "nats_stream_dump: update: %s (%d)\n", natsStatus_GetText(s),
                         static_cast<int>(jerr));
            rc = 1;
        }
        jsCtx_Destroy(js);
        natsConnection_Destroy(nc);
        return rc;
    }
    if (s == NATS_OK) s = js_GetStreamInfo(&si, js, argv[2], nullptr, &jerr);
    if (s != NATS_OK) {
        std::fprintf(stderr, "nats_stream_dump: %s (%d)\n", natsStatus_GetText(s),
                     static_cast<int>(jerr));
        return 1;
    }
    if (argc > 3 && std::strcmp(argv[3], "--leader") == 0) {
        const char* leader = si->Cluster != nullptr ? si->Cluster->Leader : nullptr;
        std::printf("%s\n", leader != nullptr && *leader != '\0' ? leader : "-");
        jsStreamInfo_Destroy(si);
        jsCtx_Destroy(js);
        natsConnection_Destroy(nc);
        return 0;
    }
    for (uint64_t seq = si->State.FirstSeq; seq != 0 && seq <= si->State.LastSeq; ++seq) {
        natsMsg* m = nullptr;
        s = js_GetMsg(&m, js, argv[2], seq, nullptr, &jerr);
        if (s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr) continue;  // deleted
        if (s != NATS_OK) {
            std::fprintf(stderr, "nats_stream_dump: message %llu: %s\n",
                         static_cast<unsigned long long>(seq), natsStatus_GetText(s));
            rc = 1;
            break;
        }
        if (seqs) {
            const char* cs = nullptr;
            const char* id = nullptr;
            const char* prev = nullptr;
            (void)natsMsgHeader_Get(m, "Chronicle-Seq", &cs);
            (void)natsMsgHeader_Get(m, "Nats-Msg-Id", &id);
            (void)natsMsgHeader_Get(m, "Nats-Expected-Last-Msg-Id", &prev);
            std::printf("%s %s %s\n", cs != nullptr ? cs : "-", id != nullptr ? id : "-",
                        prev != nullptr ? prev : "-");
        } else {
            const auto n = static_cast<uint32_t>(natsMsg_GetDataLength(m));
            const unsigned char len[4] = {
                static_cast<unsigned char>(n >> 24), static_cast<unsigned char>(n >> 16),
                static_cast<unsigned char>(n >> 8), static_cast<unsigned char>(n)};
            std::fwrite(len, 1, 4, stdout);
            std::fwrite(natsMsg_GetData(m), 1, n, stdout);
        }
        natsMsg_Destroy(m);
    }
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return std::fflush(stdout) == 0 ? rc : 1;
}
