// chronicle-bridge — NATS JetStream through libnats (asynchronous publishing).
//
// Out of a queue: each record becomes one message on the URL's subject, its data the
// record's bytes unchanged, with the headers Nats-Msg-Id "<queue id>-<seq>", Chronicle-Seq
// and Chronicle-Time (ns). Up to --batch messages are unacknowledged at a time; the named
// reader's cursor is stored up to the highest contiguous acknowledged record. Each message
// but the first after a resync also carries Nats-Expected-Last-Msg-Id, the previous
// record's id: when a message fails, the later ones of the window are refused instead of
// stored after a hole. After any failure the bridge stops publishing, lets the outstanding
// acknowledgments settle, reads the stream's last message on the subject and resumes after
// it (as the Redis engine does with XREVRANGE).
#include "bridge_nats.h"

#include <nats/nats.h>

#include <charconv>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "chronicle/reader.h"
#include "chronicle/writer.h"
#include "cli.h"

namespace chronicle::bridge::nats {

namespace {

std::string status_text(natsStatus s) {
    std::string t = natsStatus_GetText(s);
    std::string_view last = nats_GetLastError(nullptr) ? nats_GetLastError(nullptr) : "";
    // "(conn.c:2088): No server available for connection": the location is of no use here.
    if (!last.empty() && last[0] == '(') {
        if (const size_t c = last.find("): "); c != std::string_view::npos)
            last.remove_prefix(c + 3);
    }
    if (!last.empty() && last != t) t += ": " + std::string(last);
    return t;
}

// Whether a NATS subject pattern (tokens, '*' one token, '>' the rest) captures `subject`.
bool subject_matches(std::string_view pattern, std::string_view subject) {
    for (;;) {
        const size_t pd = pattern.find('.');
        const size_t sd = subject.find('.');
        const std::string_view pt = pattern.substr(0, pd);
        const std::string_view st = subject.substr(0, sd);
        if (pt == ">") return true;
        if (pt != "*" && pt != st) return false;
        if (pd == std::string_view::npos || sd == std::string_view::npos) {
            return pd == std::string_view::npos && sd == std::string_view::npos;
        }
        pattern = pattern.substr(pd + 1);
        subject = subject.substr(sd + 1);
    }
}

bool connection_ok(natsConnection* nc) {
    return nc != nullptr && natsConnection_Status(nc) == NATS_CONN_STATUS_CONNECTED;
}

// A JetStream API error: a lost connection (retried), or a refusal (fatal).
Outcome api_error(const Options& o, natsConnection* nc, std::string_view what, natsStatus s,
                  jsErrCode jerr) {
    std::string why = o.url.display() + ": " + std::string(what) + ": " + status_text(s);
    if (jerr != 0) why += " (" + to_dec(jerr) + ")";
    // A cluster between leaders answers with these for a moment: retried like a lost
    // connection, with back-off, for --retry-for.
    const bool transient = jerr == JSClusterNotAvailErr || jerr == JSClusterNotLeaderErr ||
                           jerr == JSClusterIncompleteErr || jerr == JSClusterNotAssignedErr ||
                           jerr == JSStreamOfflineErr || jerr == JSConsumerOfflineErr;
    if (s == NATS_TIMEOUT || s == NATS_NO_RESPONDERS || s == NATS_CONNECTION_CLOSED ||
        s == NATS_CONNECTION_DISCONNECTED || s == NATS_IO_ERROR || s == NATS_STALE_CONNECTION ||
        transient || !connection_ok(nc)) {
        return Outcome::lost_because(why);
    }
    return Outcome::fatal_because(why);
}

// Connects without the library's reconnects (ours come with a resync after each: the
// library's would resend its buffer behind our back) and makes the JetStream context.
Outcome connect(const Options& o, int64_t io_ms, const jsOptions& jo, natsConnection** nc,
                jsCtx** js) {
    natsOptions* opts = nullptr;
    natsStatus s = natsOptions_Create(&opts);
    const std::string url = "nats://" + o.url.where();
    if (s == NATS_OK && o.url.more.empty()) s = natsOptions_SetURL(opts, url.c_str());
    if (s == NATS_OK && !o.url.more.empty()) {
        std::vector<std::string> urls{url};
        for (const std::string& m : o.url.more) urls.push_back("nats://" + m);
        std::vector<const char*> ptrs;
        for (const std::string& u : urls) ptrs.push_back(u.c_str());
        s = natsOptions_SetServers(opts, ptrs.data(), static_cast<int>(ptrs.size()));
        // In the order given: the first is the one the user named.
        if (s == NATS_OK) s = natsOptions_SetNoRandomize(opts, true);
    }
    if (s == NATS_OK && (!o.url.user.empty() || !o.url.password.empty())) {
        s = natsOptions_SetUserInfo(opts, o.url.user.c_str(), o.url.password.c_str());
    }
    if (s == NATS_OK) s = natsOptions_SetTimeout(opts, io_ms);
    if (s == NATS_OK) s = natsOptions_SetAllowReconnect(opts, false);
    if (s == NATS_OK) s = natsConnection_Connect(nc, opts);
    natsOptions_Destroy(opts);
    if (s != NATS_OK) {
        return Outcome::lost_because(o.url.display() + ": cannot connect: " + status_text(s));
    }
    jsOptions copy = jo;
    s = natsConnection_JetStream(js, *nc, &copy);
    if (s != NATS_OK) {
        return Outcome::lost_because(o.url.display() + ": JetStream: " + status_text(s));
    }
    return {};
}

// With o.create_stream, creates it; then names the stream that captures the URL's subject.
// `out`: publishing into it (--create-stream is offered).
Outcome find_stream(const Options& o, natsConnection* nc, jsCtx* js, std::string& stream,
                    bool out) {
    jsErrCode jerr = static_cast<jsErrCode>(0);
    if (!o.create_stream.empty()) {
        jsStreamConfig cfg;
        jsStreamConfig_Init(&cfg);
        const char* subjects[] = {o.url.name.c_str()};
        cfg.Name = o.create_stream.c_str();
        cfg.Subjects = subjects;
        cfg.SubjectsLen = 1;
        cfg.Duplicates = static_cast<int64_t>(o.duplicate_window_ns);
        cfg.Replicas = o.replicas;
        natsStatus s = js_AddStream(nullptr, js, &cfg, nullptr, &jerr);
        if (s != NATS_OK && jerr != JSStreamNameExistErr) {
            return api_error(o, nc, "creating stream " + o.create_stream, s, jerr);
        }
    }
    // The names (kept by the cluster's meta leader), then each stream's configuration: a
    // full listing (js_Streams) leaves out, without an error, streams whose leader does not
    // answer in time — during an election the subject would seem uncaptured.
    jsStreamNamesList* names = nullptr;
    jerr = static_cast<jsErrCode>(0);
    natsStatus s = js_StreamNames(&names, js, nullptr, &jerr);
    if (s == NATS_NOT_FOUND)
        names = nullptr;
    else if (s != NATS_OK)
        return api_error(o, nc, "listing streams", s, jerr);
    stream.clear();
    Outcome failed;
    for (int i = 0; names != nullptr && i < names->Count && stream.empty(); ++i) {
        jsStreamInfo* si = nullptr;
        jerr = static_cast<jsErrCode>(0);
        s = js_GetStreamInfo(&si, js, names->List[i], nullptr, &jerr);
        if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) continue;  // deleted meanwhile
        if (s != NATS_OK) {
            failed = api_error(o, nc, std::string("stream ") + names->List[i], s, jerr);
            break;
        }
        const jsStreamConfig* c = si->Config;
        for (int j = 0; c != nullptr && j < c->SubjectsLen; ++j) {
            if (subject_matches(c->Subjects[j], o.url.name)) {
                stream = c->Name;
                break;
            }
        }
        jsStreamInfo_Destroy(si);
    }
    if (names != nullptr) jsStreamNamesList_Destroy(names);
    if (failed.kind != Outcome::ok) return failed;
    if (stream.empty()) {
        return Outcome::fatal_because(o.url.display() + ": no JetStream stream captures '" +
                                      o.url.name + "'" +
                                      (out ? " (create one, or use --create-stream NAME)" : ""));
    }
    if (!o.create_stream.empty() && stream != o.create_stream) {
        return Outcome::fatal_because(o.url.display() + ": '" + o.url.name +
                                      "' is captured by stream " + stream + ", not " +
                                      o.create_stream);
    }
    return {};
}

// The acknowledgments, filled on the library's thread, drained by the main loop.
struct Acks {
    std::mutex m;
    std::condition_variable cv;
    std::set<uint64_t> ok;  // acknowledged sequences not yet folded into the cursor
    uint64_t sent = 0;
    uint64_t duplicates = 0;
    uint64_t answered = 0;  // callbacks so far
    bool failed = false;
    std::string why;  // the first failure
};

void on_ack(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure) {
    auto* a = static_cast<Acks*>(closure);
    const char* v = nullptr;
    std::optional<uint64_t> seq;
    if (natsMsgHeader_Get(msg, "Chronicle-Seq", &v) == NATS_OK && v != nullptr) {
        seq = parse_dec(v);
    }
    {
        std::lock_guard lk(a->m);
        ++a->answered;
        if (pa != nullptr && seq) {
            a->ok.insert(*seq);
            ++(pa->Duplicate ? a->duplicates : a->sent);
        } else if (!a->failed) {
            a->failed = true;
            a->why = "publish of record " + (seq ? to_dec(*seq) : std::string("?")) + " failed: ";
            if (pae != nullptr) {
                a->why += pae->ErrText != nullptr ? std::string(pae->ErrText)
                                                  : std::string(natsStatus_GetText(pae->Err));
                if (pae->ErrCode != 0) a->why += " (" + to_dec(pae->ErrCode) + ")";
            } else {
                a->why += "no acknowledgment";
            }
        }
    }
    a->cv.notify_all();
    natsMsg_Destroy(msg);
}

class Out {
  public:
    Out(const Options& o, QueueSource& src) : o_(o), src_(src) { io_ms_ = o.io_ms(); }
    ~Out() { close(); }
    Out(const Out&) = delete;
    Out& operator=(const Out&) = delete;

    int run() {
        Backoff backoff(o_.retry_for_ns);
        bool connected = false;
        uint64_t progress_mark = 0;
        for (;;) {
            if (stop_requested()) return stop();
            if (!connected) {
                Outcome oc = open();
                if (oc.kind == Outcome::ok) oc = find_stream();
                if (oc.kind == Outcome::ok) oc = resync();
                if (oc.kind == Outcome::fatal) return fatal(oc);
                if (oc.kind == Outcome::lost) {
                    close();
                    if (!backoff.wait(oc.why)) return gave_up(oc, backoff);
                    ++reconnects_;
                    continue;
                }
                connected = true;
                backoff.reset();
                progress_mark = src_.committed();
            }
            // Fill the window.
            bool published = false;
            Outcome oc;
            while (window_.size() < o_.batch && !failed()) {
                auto r = src_.reader().next();
                if (!r) return cli::report(r.status());
                if (!r.value()) break;
                oc = publish(*r.value());
                if (oc.kind != Outcome::ok) break;
                published = true;
            }
            if (oc.kind == Outcome::ok) {
                if (!window_.empty() && (!published || window_.size() >= o_.batch)) {
                    // Wait for acknowledgments: all of them when nothing more is to be sent.
                    oc = wait_acks(published ? window_.size() - 1 : 0);
                }
            }
            if (oc.kind == Outcome::ok && failed()) oc = Outcome::lost_because(failure());
            if (Status st = fold(); !st) return cli::report(st);
            if (oc.kind == Outcome::fatal) {
                (void)settle();  // what was published before it, acknowledged, stays
                return fatal(oc);
            }
            if (oc.kind == Outcome::lost) {
                // Stop publishing, let the window settle, resume after the stream's last.
                const Outcome rc = recover(oc);
                if (rc.kind == Outcome::fatal) return fatal(rc);
                // Failing again without progress (a refusal that persists, a server that
                // is gone): back off, for at most --retry-for.
                const bool progressed = src_.committed() > progress_mark;
                progress_mark = src_.committed();
                if (progressed) backoff.reset();
                if (rc.kind == Outcome::lost || !progressed) {
                    const Outcome& why = rc.kind == Outcome::lost ? rc : oc;
                    if (!backoff.wait(why.why)) return gave_up(why, backoff);
                }
                if (rc.kind == Outcome::lost || !connection_ok()) {
                    close();
                    connected = false;
                    ++reconnects_;
                }
                continue;
            }
            if (!published && window_.empty()) {
                if (!o_.follow) return done();
                if (Status st = src_.wait(1000); !st) return cli::report(st);
            }
        }
    }

  private:
    Outcome open() {
        close();
        jsOptions jo;
        jsOptions_Init(&jo);
        jo.Wait = io_ms_;
        jo.PublishAsync.MaxPending = static_cast<int64_t>(o_.batch);
        jo.PublishAsync.AckHandler = on_ack;
        jo.PublishAsync.AckHandlerClosure = &acks_;
        return connect(o_, io_ms_, jo, &nc_, &js_);
    }

    void close() {
        if (js_ != nullptr) {
            drop_pending();
            jsCtx_Destroy(js_);
            js_ = nullptr;
            async_used_ = false;
        }
        if (nc_ != nullptr) {
            natsConnection_Destroy(nc_);
            nc_ = nullptr;
        }
    }

    bool connection_ok() const { return nats::connection_ok(nc_); }
    Outcome api_error(std::string_view what, natsStatus st, jsErrCode jerr) const {
        return nats::api_error(o_, nc_, what, st, jerr);
    }
    Outcome find_stream() { return nats::find_stream(o_, nc_, js_, stream_, true); }

    // Reads the stream's last message on the subject and resumes after it (or at the
    // cursor, when the stream holds nothing of this queue past it).
    Outcome resync() {
        natsMsg* last = nullptr;
        jsErrCode jerr = static_cast<jsErrCode>(0);
        natsStatus s =
            js_GetLastMsg(&last, js_, stream_.c_str(), o_.url.name.c_str(), nullptr, &jerr);
        uint64_t resume = src_.committed();
        prev_id_.clear();
        if (s == NATS_OK) {
            const char* id = nullptr;
            const char* sq = nullptr;
            (void)natsMsgHeader_Get(last, "Nats-Msg-Id", &id);
            (void)natsMsgHeader_Get(last, "Chronicle-Seq", &sq);
            std::optional<uint64_t> seq = sq != nullptr ? parse_dec(sq) : std::nullopt;
            const std::string msg_id = id != nullptr ? id : "";
            natsMsg_Destroy(last);
            if (!seq || msg_id != src_.id() + "-" + to_dec(*seq)) {
                return Outcome::fatal_because(
                    o_.url.display() + ": the last message on the subject (" +
                    cli::printable(msg_id) + ") did not come from this queue (" +
                    (src_.id().empty() ? std::string("no id") : src_.id()) +
                    "): a subject takes the records of one queue; bridge into another subject");
            }
            auto head = src_.reader().head();
            if (!head) {
                return Outcome::fatal_because(head.status().message(),
                                              cli::exit_code(head.status().code()));
            }
            if (*seq >= head.value()) {
                return Outcome::fatal_because(
                    o_.url.display() + ": the stream holds sequence " + to_dec(*seq) +
                        ", past the queue's last record (" + to_dec(head.value()) +
                        " records): a queue made again under the same identity?",
                    cli::kDataError);
            }
            if (*seq + 1 >= resume) {
                skipped_ += *seq + 1 - resume;
                resume = *seq + 1;
            }
        } else if (!(s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr)) {
            return api_error("reading the stream's last message", s, jerr);
        }
        // The message after a resync goes without an expected last id: the server may have
        // forgotten it (after a restart it keeps only ids inside the duplicate window).
        prev_id_.clear();
        if (Status st = src_.resume_at(resume); !st) {
            return Outcome::fatal_because(st.message(), cli::exit_code(st.code()));
        }
        return {};
    }

    Outcome publish(const Record& rec) {
        const std::string seq = to_dec(rec.seq);
        const std::string id = src_.id() + "-" + seq;
        const std::string ts = to_dec(rec.timestamp_ns);
        const std::string_view data = rec.text();
        natsMsg* m = nullptr;
        natsStatus s = natsMsg_Create(&m, o_.url.name.c_str(), nullptr, data.data(),
                                      static_cast<int>(data.size()));
        if (s == NATS_OK) s = natsMsgHeader_Set(m, "Chronicle-Seq", seq.c_str());
        if (s == NATS_OK) s = natsMsgHeader_Set(m, "Chronicle-Time", ts.c_str());
        if (s == NATS_OK) {
            jsPubOptions po;
            jsPubOptions_Init(&po);
            po.MaxWait = io_ms_;
            po.MsgId = id.c_str();
            if (!prev_id_.empty()) po.ExpectLastMsgId = prev_id_.c_str();
            async_used_ = true;
            s = js_PublishMsgAsync(js_, &m, &po);
        }
        natsMsg_Destroy(m);
        if (s == NATS_MAX_PAYLOAD) {
            return Outcome::fatal_because(
                o_.url.display() + ": record " + seq + " (" + to_dec(data.size()) +
                    " bytes) is over the server's max_payload: " + status_text(s),
                cli::kDataError);
        }
        if (s != NATS_OK) {
            return Outcome::lost_because(o_.url.display() + ": publish of record " + seq + ": " +
                                         status_text(s));
        }
        window_.push_back(rec.seq);
        ++sent_count_;
        prev_id_ = id;
        return {};
    }

    bool failed() {
        std::lock_guard lk(acks_.m);
        return acks_.failed;
    }
    std::string failure() {
        std::lock_guard lk(acks_.m);
        return o_.url.display() + ": " + acks_.why;
    }

    // Waits until at most `left` messages are unacknowledged, a failure, a lost connection,
    // a signal, or the I/O timeout. (libnats does not fail the outstanding acknowledgments
    // when the connection closes: they would wait for their MaxWait.)
    Outcome wait_acks(size_t left) {
        const auto deadline =
            std::chrono::steady_clock::now() + std::chrono::milliseconds(io_ms_ + 1000);
        for (;;) {
            {
                std::unique_lock lk(acks_.m);
                const uint64_t target = answered_base_ + (sent_count_ - left);
                if (acks_.cv.wait_for(lk, std::chrono::milliseconds(100),
                                      [&] { return acks_.failed || acks_.answered >= target; })) {
                    return {};
                }
            }
            if (!connection_ok()) {
                return Outcome::lost_because(o_.url.display() + ": connection lost");
            }
            if (stop_requested()) return {};
            if (std::chrono::steady_clock::now() >= deadline) {
                return Outcome::lost_because(o_.url.display() +
                                             ": no acknowledgment within the I/O timeout");
            }
        }
    }

    // Moves the cursor past the acknowledged front of the window.
    Status fold() {
        uint64_t to = src_.committed();
        {
            std::lock_guard lk(acks_.m);
            while (!window_.empty() && acks_.ok.erase(window_.front()) > 0) {
                to = window_.front() + 1;
                window_.pop_front();
                ++answered_base_;
                --sent_count_;
            }
        }
        return src_.commit(to);
    }

    // Library-owned messages still waiting for an acknowledgment are dropped. (libnats 3.4.1
    // crashes in js_PublishAsyncGetPendingList on a context that never published async.)
    void drop_pending() {
        if (!async_used_) return;
        natsMsgList pending{};
        if (js_PublishAsyncGetPendingList(&pending, js_) == NATS_OK) natsMsgList_Destroy(&pending);
    }

    // After a failure: wait for the window's acknowledgments, commit what is contiguous, then
    // resume after the stream's last message.
    Outcome recover(const Outcome& why) {
        if (js_ != nullptr && connection_ok()) {
            jsPubOptions po;
            jsPubOptions_Init(&po);
            po.MaxWait = io_ms_;
            (void)js_PublishAsyncComplete(js_, &po);
            drop_pending();
        }
        if (Status st = fold(); !st) {
            return Outcome::fatal_because(st.message(), cli::exit_code(st.code()));
        }
        {
            std::lock_guard lk(acks_.m);
            acks_.ok.clear();
            acks_.failed = false;
            acks_.why.clear();
            answered_base_ = acks_.answered;
        }
        window_.clear();
        sent_count_ = 0;
        if (!connection_ok()) return why;
        Outcome oc = resync();
        if (oc.kind != Outcome::ok) return oc;
        note(why.why + "; resuming at record " + to_dec(src_.committed()));
        return {};
    }

    // Waits (bounded) for the window's acknowledgments and stores the cursor past them.
    Status settle() {
        if (js_ != nullptr && !window_.empty() && connection_ok()) {
            jsPubOptions po;
            jsPubOptions_Init(&po);
            po.MaxWait = io_ms_;
            (void)js_PublishAsyncComplete(js_, &po);
        }
        return fold();
    }

    int stop() {
        if (Status st = settle(); !st) return cli::report(st);
        return signal_exit();
    }

    int done() {
        if (o_.verbose) {
            std::lock_guard lk(acks_.m);
            note(o_.url.display() + ": " + to_dec(acks_.sent) + " records accepted, " +
                 to_dec(acks_.duplicates) + " refused as duplicates, " + to_dec(skipped_) +
                 " skipped as already there, " + to_dec(reconnects_) + " reconnects");
        }
        return cli::kOk;
    }

    const Options& o_;
    QueueSource& src_;
    int64_t io_ms_ = 10000;
    natsConnection* nc_ = nullptr;
    jsCtx* js_ = nullptr;
    std::string stream_;
    std::string prev_id_;          // the id of the record published last ("" after a resync)
    std::deque<uint64_t> window_;  // published, not yet folded into the cursor
    uint64_t sent_count_ = 0;      // == window_.size(), counted against answered
    uint64_t answered_base_ = 0;   // acks_.answered at the window's start
    bool async_used_ = false;      // js_ has published asynchronously
    uint64_t skipped_ = 0;
    uint64_t reconnects_ = 0;
    Acks acks_;
};

// ------------------------------------------------------------------------------ in

// How long the server waits for an acknowledgment before it hands a message out again, in
// normal running and while taking back what a previous bridge left unacknowledged.
constexpr int64_t kAckWaitNs = 30'000'000'000;
constexpr int64_t kTakeBackAckWaitNs = 1'000'000'000;

// Into a queue: the durable pull consumer --durable on the stream that captures the subject
// (created when missing: explicit acks, every message, the subject as its filter, at most
// --batch unacknowledged). A fetch of up to --batch messages is appended as one batch,
// committed, and only then acknowledged. Messages a previous bridge fetched and did not
// acknowledge (it died) are taken back first, in order (take_back()).
class In {
  public:
    In(const Options& o, Writer& w) : o_(o), w_(w) { io_ms_ = o.io_ms(); }
    ~In() { close(); }
    In(const In&) = delete;
    In& operator=(const In&) = delete;

    int run() {
        Backoff backoff(o_.retry_for_ns);
        bool connected = false;
        for (;;) {
            // Nothing is held across rounds (each acknowledges what it committed).
            if (stop_requested()) return signal_exit();
            if (!connected) {
                Outcome oc = open();
                if (oc.kind == Outcome::ok) oc = nats::find_stream(o_, nc_, js_, stream_, false);
                if (oc.kind == Outcome::ok) oc = subscribe();
                if (oc.kind == Outcome::fatal) return fatal(oc);
                if (oc.kind == Outcome::lost) {
                    close();
                    if (!backoff.wait(oc.why)) return gave_up(oc, backoff);
                    ++reconnects_;
                    continue;
                }
                connected = true;
                backoff.reset();
            }
            bool idle = false;
            Outcome oc = round(static_cast<int>(o_.batch), o_.follow ? 1000 : 200, idle);
            if (oc.kind == Outcome::ok && idle && !o_.follow) {
                int64_t pending = 0;
                oc = pending_of(nullptr, &pending);
                if (oc.kind == Outcome::ok && pending == 0) return done();
            }
            if (oc.kind == Outcome::fatal) return fatal(oc);
            if (oc.kind == Outcome::lost) {
                close();
                connected = false;
                note(oc.why + "; reconnecting");
                if (!backoff.wait(oc.why)) return gave_up(oc, backoff);
                ++reconnects_;
            }
        }
    }

  private:
    Outcome open() {
        close();
        jsOptions jo;
        jsOptions_Init(&jo);
        jo.Wait = io_ms_;
        return connect(o_, io_ms_, jo, &nc_, &js_);
    }

    void close() {
        if (sub_ != nullptr) {
            natsSubscription_Destroy(sub_);  // bound to the durable: the consumer stays
            sub_ = nullptr;
        }
        if (js_ != nullptr) {
            jsCtx_Destroy(js_);
            js_ = nullptr;
        }
        if (nc_ != nullptr) {
            natsConnection_Destroy(nc_);
            nc_ = nullptr;
        }
    }

    // The consumer's unacknowledged (delivered, not acknowledged) and not yet delivered
    // message counts; either pointer may be null.
    Outcome pending_of(int64_t* unacked, int64_t* undelivered) {
        jsConsumerInfo* ci = nullptr;
        if (Outcome oc = consumer_info(&ci); oc.kind != Outcome::ok) return oc;
        if (unacked != nullptr) *unacked = ci->NumAckPending;
        if (undelivered != nullptr) *undelivered = static_cast<int64_t>(ci->NumPending);
        jsConsumerInfo_Destroy(ci);
        return {};
    }

    // The durable consumer's state and configuration (the caller destroys *ci).
    Outcome consumer_info(jsConsumerInfo** ci) {
        jsErrCode jerr = static_cast<jsErrCode>(0);
        natsStatus s =
            js_GetConsumerInfo(ci, js_, stream_.c_str(), o_.durable.c_str(), nullptr, &jerr);
        if (s != NATS_OK) return api_error(o_, nc_, "consumer " + o_.durable, s, jerr);
        return {};
    }

    // Sets the consumer's window and acknowledgment wait (the rest of its configuration
    // as it is).
    Outcome configure(int64_t max_ack_pending, int64_t ack_wait_ns) {
        jsConsumerInfo* ci = nullptr;
        Outcome oc = consumer_info(&ci);
        if (oc.kind != Outcome::ok) return oc;
        if (ci->Config->MaxAckPending != max_ack_pending || ci->Config->AckWait != ack_wait_ns) {
            jsConsumerConfig cc = *ci->Config;
            cc.MaxAckPending = max_ack_pending;
            cc.AckWait = ack_wait_ns;
            jsErrCode jerr = static_cast<jsErrCode>(0);
            natsStatus s = js_UpdateConsumer(nullptr, js_, stream_.c_str(), &cc, nullptr, &jerr);
            if (s != NATS_OK) oc = api_error(o_, nc_, "updating consumer " + o_.durable, s, jerr);
        }
        jsConsumerInfo_Destroy(ci);
        return oc;
    }

    // The durable consumer (created when missing), a pull subscription bound to it, and
    // what a previous bridge left unacknowledged taken back.
    Outcome subscribe() {
        jsConsumerInfo* ci = nullptr;
        jsErrCode jerr = static_cast<jsErrCode>(0);
        natsStatus s =
            js_GetConsumerInfo(&ci, js_, stream_.c_str(), o_.durable.c_str(), nullptr, &jerr);
        if (s == NATS_NOT_FOUND || jerr == JSConsumerNotFoundErr) {
            jsConsumerConfig cc;
            jsConsumerConfig_Init(&cc);
            cc.Durable = o_.durable.c_str();
            cc.AckPolicy = js_AckExplicit;
            cc.DeliverPolicy = js_DeliverAll;
            cc.FilterSubject = o_.url.name.c_str();
            cc.MaxAckPending = static_cast<int64_t>(o_.batch);
            cc.AckWait = kAckWaitNs;
            jerr = static_cast<jsErrCode>(0);
            s = js_AddConsumer(&ci, js_, stream_.c_str(), &cc, nullptr, &jerr);
            if (s != NATS_OK) return api_error(o_, nc_, "creating consumer " + o_.durable, s, jerr);
        } else if (s != NATS_OK) {
            return api_error(o_, nc_, "consumer " + o_.durable, s, jerr);
        }
        const jsConsumerConfig* c = ci->Config;
        std::string refuse;
        if (c->DeliverSubject != nullptr && *c->DeliverSubject != '\0') {
            refuse = "is a push consumer; the bridge pulls";
        } else if (c->AckPolicy != js_AckExplicit) {
            refuse = "does not acknowledge each message (AckPolicy explicit needed)";
        } else if (c->FilterSubject != nullptr && *c->FilterSubject != '\0' &&
                   o_.url.name != c->FilterSubject) {
            refuse = "takes '" + std::string(c->FilterSubject) + "', not '" + o_.url.name + "'";
        }
        const int64_t unacked = ci->NumAckPending;
        jsConsumerInfo_Destroy(ci);
        if (!refuse.empty()) {
            return Outcome::fatal_because(o_.url.display() + ": consumer " + o_.durable +
                                          " of stream " + stream_ + " " + refuse);
        }
        jsSubOptions so;
        jsSubOptions_Init(&so);
        so.Stream = stream_.c_str();
        so.Consumer = o_.durable.c_str();
        so.ManualAck = true;
        jerr = static_cast<jsErrCode>(0);
        s = js_PullSubscribe(&sub_, js_, o_.url.name.c_str(), o_.durable.c_str(), nullptr, &so,
                             &jerr);
        if (s != NATS_OK) return api_error(o_, nc_, "subscribing as " + o_.durable, s, jerr);
        if (unacked > 0) {
            if (Outcome oc = take_back(unacked); oc.kind != Outcome::ok) return oc;
        }
        return configure(static_cast<int64_t>(o_.batch), kAckWaitNs);
    }

    // Messages a previous bridge fetched and did not acknowledge: the server hands them out
    // again only after the acknowledgment wait, newer ones first, and in no particular
    // order. To keep the queue in the stream's order, nothing new is handed out (a window of
    // exactly what is owed), the wait is shortened while they come back, and they are
    // collected, put in order and appended as one batch. A crash in the middle leaves the
    // same state for the next start. One committed here before a lost connection is only
    // acknowledged (take()).
    Outcome take_back(int64_t owed) {
        note(o_.url.display() + ": consumer " + o_.durable + " has " + to_dec(owed) +
             " messages fetched before and not acknowledged; taking them back first");
        if (Outcome oc = configure(owed, kTakeBackAckWaitNs); oc.kind != Outcome::ok) return oc;
        const auto deadline = std::chrono::steady_clock::now() +
                              std::chrono::milliseconds(3 * io_ms_) +
                              std::chrono::nanoseconds(10 * kTakeBackAckWaitNs);
        std::vector<natsMsgList> lists;
        std::map<uint64_t, natsMsg*> back;  // by stream sequence (a message may come twice)
        auto release = [&] {
            for (natsMsgList& l : lists) natsMsgList_Destroy(&l);
        };
        Outcome oc;
        for (;;) {
            if (stop_requested()) break;
            natsMsgList list{};
            jsErrCode jerr = static_cast<jsErrCode>(0);
            natsStatus s = natsSubscription_Fetch(&list, sub_, static_cast<int>(owed), 1000, &jerr);
            if (s == NATS_OK) {
                lists.push_back(list);
                for (int i = 0; i < list.Count; ++i)
                    back.emplace(stream_seq(list.Msgs[i]), list.Msgs[i]);
            } else if (s != NATS_TIMEOUT) {
                oc = api_error(o_, nc_, "fetching from " + o_.durable, s, jerr);
                break;
            }
            // Everything unacknowledged is here (fewer than owed if some left the stream).
            int64_t left = 0;
            if (oc = pending_of(&left, nullptr); oc.kind != Outcome::ok) break;
            if (static_cast<int64_t>(back.size()) >= left) {
                std::vector<natsMsg*> in_order;
                for (const auto& [seq, m] : back) in_order.push_back(m);
                oc = take(in_order);
                break;
            }
            if (std::chrono::steady_clock::now() >= deadline) {
                oc = Outcome::lost_because(o_.url.display() + ": " + to_dec(left - back.size()) +
                                           " unacknowledged messages of consumer " + o_.durable +
                                           " did not come back");
                break;
            }
        }
        release();
        return oc;
    }

    static uint64_t stream_seq(natsMsg* m) {
        jsMsgMetaData* md = nullptr;
        uint64_t seq = 0;
        if (natsMsg_GetMetaData(&md, m) == NATS_OK) {
            seq = md->Sequence.Stream;
            jsMsgMetaData_Destroy(md);
        }
        return seq;
    }

    // One fetch of up to `n` messages, appended as one batch, committed, acknowledged.
    Outcome round(int n, int64_t wait_ms, bool& idle) {
        natsMsgList list{};
        jsErrCode jerr = static_cast<jsErrCode>(0);
        natsStatus s = natsSubscription_Fetch(&list, sub_, n, wait_ms, &jerr);
        if (s == NATS_TIMEOUT || (s == NATS_OK && list.Count == 0)) {
            if (s == NATS_OK) natsMsgList_Destroy(&list);
            idle = true;
            return {};
        }
        if (s != NATS_OK) return api_error(o_, nc_, "fetching from " + o_.durable, s, jerr);
        Outcome oc = take(std::vector<natsMsg*>(list.Msgs, list.Msgs + list.Count));
        natsMsgList_Destroy(&list);
        return oc;
    }

    // Appends `msgs` (in this order) as one batch, commits, then acknowledges them.
    Outcome take(const std::vector<natsMsg*>& msgs) {
        if (msgs.empty()) return {};
        bool batch = false;
        uint64_t last = committed_;
        uint64_t appended = 0;
        for (natsMsg* m : msgs) {
            const uint64_t sseq = stream_seq(m);
            // Committed here before a lost connection: acknowledge, do not append again.
            if (sseq != 0 && sseq <= committed_) continue;
            if (!batch) {
                if (Status st = w_.begin_batch(); !st) {
                    return Outcome::fatal_because(st.message(), cli::exit_code(st.code()));
                }
                batch = true;
            }
            const char* data = natsMsg_GetData(m);
            const auto len = static_cast<size_t>(natsMsg_GetDataLength(m));
            auto seq = w_.append(std::string_view(data != nullptr ? data : "", len));
            if (!seq) {
                w_.abort_batch();
                return Outcome::fatal_because("message " + to_dec(sseq) + " of stream " + stream_ +
                                                  ": " + seq.status().message(),
                                              cli::exit_code(seq.status().code()));
            }
            ++appended;
            last = std::max(last, sseq);
        }
        if (batch) {
            if (Status st = w_.commit_batch(); !st) {
                return Outcome::fatal_because(st.message(), cli::exit_code(st.code()));
            }
            committed_ = last;
            appended_ += appended;
        }
        // Acknowledged only now; the last synchronously: the server handles a connection's
        // messages in order, so its answer covers the ones before.
        for (size_t i = 0; i + 1 < msgs.size(); ++i) {
            natsStatus s = natsMsg_Ack(msgs[i], nullptr);
            if (s != NATS_OK) return api_error(o_, nc_, "acknowledging", s, {});
        }
        jsOptions jo;
        jsOptions_Init(&jo);
        jo.Wait = io_ms_;
        jsErrCode jerr = static_cast<jsErrCode>(0);
        natsStatus s = natsMsg_AckSync(msgs.back(), &jo, &jerr);
        if (s != NATS_OK) return api_error(o_, nc_, "acknowledging", s, jerr);
        return {};
    }

    int done() {
        if (o_.verbose) {
            note(o_.url.display() + ": " + to_dec(appended_) + " records appended, " +
                 to_dec(reconnects_) + " reconnects");
        }
        return cli::kOk;
    }

    const Options& o_;
    Writer& w_;
    int64_t io_ms_ = 10000;
    natsConnection* nc_ = nullptr;
    jsCtx* js_ = nullptr;
    natsSubscription* sub_ = nullptr;
    std::string stream_;
    uint64_t committed_ = 0;  // the highest stream sequence committed here (this process)
    uint64_t appended_ = 0;
    uint64_t reconnects_ = 0;
};

}  // namespace

int out(const Options& o) {
    return run_out<Out>(o);
}

int in(const Options& o) {
    return run_in<In>(o);
}

}  // namespace chronicle::bridge::nats
