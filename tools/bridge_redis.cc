// chronicle-bridge — Redis Streams through hiredis (blocking context, pipelined commands).
//
// Out of a queue: each record becomes one XADD with the ID "<seq>-1" (the sequence in the
// millisecond part, so that the IDs grow with the sequence and an entry's ID names its
// record) and the fields data (the bytes, unchanged), seq, ts (ns) and queue (the queue's
// identity). Up to --batch XADDs go out before the replies are read; the named reader's
// cursor is stored up to the last record of the unbroken run of accepted replies. After
// any doubt — a lost connection, a reply saying the ID is not above the stream's top — the
// bridge asks the stream for its last entry (XREVRANGE key + - COUNT 1) and resumes after
// it: Redis executes a pipeline in order, so what it holds is a prefix of what was sent,
// and neither a hole nor a duplicate can appear.
//
// Into a queue: a consumer group (created at the start of the stream when missing),
// XREADGROUP of --batch entries, one local batch commit, then XACK. After a restart the
// consumer's pending entries are read first (ID 0): what was committed locally but not yet
// acknowledged comes again, at most one batch (after a lost connection the bridge remembers
// what it committed and only acknowledges it).
#include "bridge_redis.h"

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chronicle/reader.h"
#include "chronicle/writer.h"
#include "cli.h"

namespace chronicle::bridge::redis {

namespace {

struct ReplyFree {
    void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyFree>;

timeval to_timeval(uint64_t ns) {
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(ns / 1'000'000'000ull);
    tv.tv_usec = static_cast<suseconds_t>((ns % 1'000'000'000ull) / 1000);
    return tv;
}

std::string_view str(const redisReply* r) {
    return r && r->str ? std::string_view(r->str, r->len) : std::string_view();
}

// The first word of an error reply ("WRONGTYPE", "NOPERM", "ERR").
std::string_view error_code(const redisReply* r) {
    std::string_view s = str(r);
    return s.substr(0, s.find(' '));
}

// Server errors that pass by themselves: retried with back-off rather than fatal.
bool transient(const redisReply* r) {
    const std::string_view c = error_code(r);
    return c == "LOADING" || c == "BUSY" || c == "MASTERDOWN" || c == "TRYAGAIN" ||
           c == "CLUSTERDOWN";
}

// XADD refused because the ID is not above the stream's top: a replay.
bool id_not_above_top(const redisReply* r) {
    return str(r).find("equal or smaller than the target stream top item") !=
           std::string_view::npos;
}

// A stream entry ID "<ms>-<seq>", ordered.
struct StreamId {
    uint64_t ms = 0;
    uint64_t seq = 0;
    bool operator<=(const StreamId& o) const { return ms < o.ms || (ms == o.ms && seq <= o.seq); }
    static std::optional<StreamId> parse(std::string_view s) {
        const size_t dash = s.find('-');
        if (dash == std::string_view::npos) return std::nullopt;
        auto a = parse_dec(s.substr(0, dash));
        auto b = parse_dec(s.substr(dash + 1));
        if (!a || !b) return std::nullopt;
        return StreamId{*a, *b};
    }
};

class Conn {
  public:
    explicit Conn(const Options& o) : o_(o) {}
    ~Conn() { close(); }
    Conn(const Conn&) = delete;
    Conn& operator=(const Conn&) = delete;

    Outcome open() {
        close();
        c_ =
            redisConnectWithTimeout(o_.url.host.c_str(), o_.url.port, to_timeval(o_.io_timeout_ns));
        if (c_ == nullptr) return Outcome::lost_because(o_.url.display() + ": cannot connect");
        if (c_->err != 0)
            return Outcome::lost_because(o_.url.display() + ": cannot connect: " + c_->errstr);
        (void)redisSetTimeout(c_, to_timeval(o_.io_timeout_ns));
        (void)redisEnableKeepAlive(c_);
        if (!o_.url.password.empty() || !o_.url.user.empty()) {
            std::vector<std::string_view> args{"AUTH"};
            if (!o_.url.user.empty()) args.emplace_back(o_.url.user);
            args.emplace_back(o_.url.password);
            Reply r = call(args);
            if (!r) return lost("AUTH");
            if (r->type == REDIS_REPLY_ERROR) return refused("AUTH", r.get());
        }
        return {};
    }
    void close() {
        if (c_ != nullptr) redisFree(c_);
        c_ = nullptr;
    }
    bool append(const std::vector<std::string_view>& args) {
        argv_.clear();
        lens_.clear();
        for (auto a : args) {
            argv_.push_back(a.data());
            lens_.push_back(a.size());
        }
        return redisAppendCommandArgv(c_, static_cast<int>(args.size()), argv_.data(),
                                      lens_.data()) == REDIS_OK;
    }
    // The next reply, or null when the connection failed (why() says how).
    Reply get() {
        void* r = nullptr;
        if (redisGetReply(c_, &r) != REDIS_OK) return nullptr;
        return Reply(static_cast<redisReply*>(r));
    }
    Reply call(const std::vector<std::string_view>& args) {
        if (!append(args)) return nullptr;
        return get();
    }
    [[nodiscard]] std::string why() const {
        if (c_ == nullptr) return "not connected";
        if (c_->err == REDIS_ERR_EOF) return "the server closed the connection";
        if (c_->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return "no reply within the I/O timeout";
        }
        return c_->errstr[0] != '\0' ? std::string(c_->errstr) : "connection failed";
    }
    Outcome lost(std::string_view cmd) const {
        return Outcome::lost_because(o_.url.display() + ": " + std::string(cmd) +
                                     ": connection lost: " + why());
    }
    Outcome refused(std::string_view cmd, const redisReply* r) const {
        std::string msg =
            o_.url.display() + ": " + std::string(cmd) + " refused: " + cli::printable(str(r));
        if (transient(r)) return Outcome::lost_because(msg);
        return Outcome::fatal_because(msg);
    }

  private:
    const Options& o_;
    redisContext* c_ = nullptr;
    std::vector<const char*> argv_;
    std::vector<size_t> lens_;
};

// The value of field `name` in an entry's field array, or null.
const redisReply* field(const redisReply* fields, std::string_view name) {
    if (fields == nullptr || fields->type != REDIS_REPLY_ARRAY) return nullptr;
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        if (str(fields->element[i]) == name) return fields->element[i + 1];
    }
    return nullptr;
}

// ------------------------------------------------------------------------------ out

class Out {
  public:
    Out(const Options& o, QueueSource& src) : o_(o), src_(src), conn_(o) {
        max_len_ = to_dec(o.max_len);
    }

    int run() {
        Backoff backoff(o_.retry_for_ns);
        bool connected = false;
        for (;;) {
            if (stop_requested()) return signal_exit();
            if (!connected) {
                Outcome oc = conn_.open();
                if (oc.kind == Outcome::ok) oc = resync();
                if (oc.kind == Outcome::fatal) return fatal(oc);
                if (oc.kind == Outcome::lost) {
                    conn_.close();
                    if (!backoff.wait(oc.why)) return gave_up(oc, backoff);
                    ++n_.reconnects;
                    continue;
                }
                connected = true;
                backoff.reset();
            }
            // One round trip: up to --batch XADDs, then their replies.
            seqs_.clear();
            while (seqs_.size() < o_.batch) {
                auto r = src_.reader().next();
                if (!r) return cli::report(r.status());
                if (!r.value()) break;
                const Record& rec = *r.value();
                if (!send(rec)) break;  // the connection failed: the replies tell
                seqs_.push_back(rec.seq);
            }
            if (seqs_.empty()) {
                if (!o_.follow) return done();
                if (Status st = src_.wait(1000); !st) return cli::report(st);
                continue;
            }
            Outcome oc = replies();
            if (oc.kind == Outcome::ok && resync_) oc = resync();
            if (oc.kind == Outcome::fatal) return fatal(oc);
            if (oc.kind == Outcome::lost) {
                conn_.close();
                connected = false;
                // Reconnect at once the first time; the back-off is for failing connects.
                note(oc.why + "; reconnecting");
            }
        }
    }

  private:
    bool send(const Record& rec) {
        seq_s_ = to_dec(rec.seq);
        ts_s_ = to_dec(rec.timestamp_ns);
        id_s_ = seq_s_ + "-1";
        args_.clear();
        args_.insert(args_.end(), {"XADD", o_.url.name});
        if (o_.max_len > 0) args_.insert(args_.end(), {"MAXLEN", "~", max_len_});
        args_.insert(args_.end(),
                     {id_s_, o_.field, rec.text(), "seq", seq_s_, "ts", ts_s_, "queue", src_.id()});
        return conn_.append(args_);
    }

    // Reads the replies to the XADDs of seqs_ and stores the cursor past the unbroken run
    // of accepted ones.
    Outcome replies() {
        uint64_t acked_to = src_.committed();
        bool unbroken = true;
        std::optional<Outcome> refusal;
        std::vector<std::string> after_refusal;  // accepted after a refused one: a hole
        Outcome result;
        for (size_t i = 0; i < seqs_.size(); ++i) {
            Reply r = conn_.get();
            if (!r) {
                result = conn_.lost("XADD");
                break;
            }
            if (r->type == REDIS_REPLY_ERROR) {
                unbroken = false;
                if (id_not_above_top(r.get())) {
                    ++n_.refused;
                    resync_ = true;
                } else if (!refusal) {
                    refusal = conn_.refused("XADD", r.get());
                }
                continue;
            }
            if (unbroken) {
                acked_to = seqs_[i] + 1;
                ++n_.sent;
            } else if (refusal) {
                after_refusal.emplace_back(to_dec(seqs_[i]) + "-1");
            } else {
                ++n_.sent;  // after a replay refused: the resync finds it
            }
        }
        if (Status st = src_.commit(acked_to); !st) {
            return Outcome::fatal_because(st.message(), cli::exit_code(st.code()));
        }
        if (refusal) {
            // The server refused a record and accepted later ones (e.g. out of memory for a
            // moment): take those back, so that the stream keeps no hole. What cannot be
            // taken back is reported.
            if (!after_refusal.empty() && !undo(after_refusal)) {
                refusal->why += "; and could not delete the " +
                                std::to_string(after_refusal.size()) +
                                " entries accepted after it (from " + after_refusal.front() +
                                "): the stream has a hole there";
            }
            resync_ = true;
            return *refusal;
        }
        if (result.kind == Outcome::lost) resync_ = true;
        return result;
    }

    bool undo(const std::vector<std::string>& ids) {
        std::vector<std::string_view> args{"XDEL", o_.url.name};
        for (const auto& id : ids) args.emplace_back(id);
        Reply r = conn_.call(args);
        return r && r->type == REDIS_REPLY_INTEGER;
    }

    // Asks the stream for its last entry and resumes after it (or at the cursor, when the
    // stream holds nothing of this queue past it).
    Outcome resync() {
        resync_ = false;
        Reply r = conn_.call({"XREVRANGE", o_.url.name, "+", "-", "COUNT", "1"});
        if (!r) return conn_.lost("XREVRANGE");
        if (r->type == REDIS_REPLY_ERROR) return conn_.refused("XREVRANGE", r.get());
        uint64_t resume = src_.committed();
        if (r->type == REDIS_REPLY_ARRAY && r->elements > 0) {
            const redisReply* e = r->element[0];
            if (e->type != REDIS_REPLY_ARRAY || e->elements < 2) {
                return Outcome::fatal_because(o_.url.display() + ": XREVRANGE: unexpected reply");
            }
            const std::string id(str(e->element[0]));
            const redisReply* q = field(e->element[1], "queue");
            const redisReply* s = field(e->element[1], "seq");
            std::optional<uint64_t> seq = s ? parse_dec(str(s)) : std::nullopt;
            if (q == nullptr || str(q) != src_.id() || !seq || id != to_dec(*seq) + "-1") {
                return Outcome::fatal_because(
                    o_.url.display() + ": the stream's last entry " + cli::printable(id) +
                    " did not come from this queue (" +
                    (src_.id().empty() ? std::string("no id") : src_.id()) +
                    "): a stream takes the records of one queue; bridge into another stream");
            }
            auto head = src_.reader().head();
            if (!head)
                return Outcome::fatal_because(head.status().message(),
                                              cli::exit_code(head.status().code()));
            if (*seq >= head.value()) {
                return Outcome::fatal_because(
                    o_.url.display() + ": the stream holds sequence " + to_dec(*seq) +
                        ", past the queue's last record (" + to_dec(head.value()) +
                        " records): a queue made again under the same identity?",
                    cli::kDataError);
            }
            if (*seq + 1 > resume) {
                n_.skipped += *seq + 1 - resume;
                resume = *seq + 1;
            }
        }
        if (Status st = src_.resume_at(resume); !st) {
            return Outcome::fatal_because(st.message(), cli::exit_code(st.code()));
        }
        return {};
    }

    int done() {
        if (o_.verbose) {
            note(o_.url.display() + ": " + to_dec(n_.sent) + " records accepted, " +
                 to_dec(n_.refused) + " refused as already there, " + to_dec(n_.skipped) +
                 " skipped as already there, " + to_dec(n_.reconnects) + " reconnects");
        }
        return cli::kOk;
    }

    struct {
        uint64_t sent = 0, refused = 0, skipped = 0, reconnects = 0;
    } n_;
    const Options& o_;
    QueueSource& src_;
    Conn conn_;
    bool resync_ = false;
    std::vector<uint64_t> seqs_;
    std::vector<std::string_view> args_;
    std::string seq_s_, ts_s_, id_s_, max_len_;
};

// ------------------------------------------------------------------------------- in

class In {
  public:
    In(const Options& o, Writer& w) : o_(o), w_(w), conn_(o) {}

    int run() {
        Backoff backoff(o_.retry_for_ns);
        bool connected = false;
        bool pending = true;  // re-reading this consumer's unacknowledged entries first
        for (;;) {
            if (stop_requested()) {
                if (connected) (void)ack();
                return signal_exit();
            }
            if (!connected) {
                Outcome oc = conn_.open();
                if (oc.kind == Outcome::ok) oc = create_group();
                if (oc.kind == Outcome::ok) oc = ack();
                if (oc.kind == Outcome::fatal) return fatal(oc);
                if (oc.kind == Outcome::lost) {
                    conn_.close();
                    if (!backoff.wait(oc.why)) return gave_up(oc, backoff);
                    ++reconnects_;
                    continue;
                }
                connected = true;
                pending = true;
                backoff.reset();
            }
            Outcome oc = round(pending);
            if (oc.kind == Outcome::ok) oc = ack();
            if (oc.kind == Outcome::fatal) return fatal(oc);
            if (oc.kind == Outcome::lost) {
                conn_.close();
                connected = false;
                note(oc.why + "; reconnecting");
                continue;
            }
            if (idle_) {
                if (pending) {
                    pending = false;  // every pending entry is in; now the new ones
                } else if (!o_.follow) {
                    return done();
                }
            }
        }
    }

  private:
    Outcome create_group() {
        Reply r = conn_.call({"XGROUP", "CREATE", o_.url.name, o_.group, "0", "MKSTREAM"});
        if (!r) return conn_.lost("XGROUP CREATE");
        if (r->type == REDIS_REPLY_ERROR && error_code(r.get()) != "BUSYGROUP") {
            return conn_.refused("XGROUP CREATE", r.get());
        }
        return {};
    }

    // One XREADGROUP, the entries appended as one batch and committed.
    Outcome round(bool pending) {
        idle_ = false;
        const uint64_t block_ms = std::clamp<uint64_t>(o_.io_timeout_ns / 2'000'000ull, 1, 1000);
        const std::string count = to_dec(o_.batch);
        const std::string block = to_dec(block_ms);
        std::vector<std::string_view> args{"XREADGROUP", "GROUP", o_.group,
                                           o_.consumer,  "COUNT", count};
        if (!pending && o_.follow) args.insert(args.end(), {"BLOCK", block});
        args.insert(args.end(), {"STREAMS", o_.url.name, pending ? "0" : ">"});
        Reply r = conn_.call(args);
        if (!r) return conn_.lost("XREADGROUP");
        if (r->type == REDIS_REPLY_ERROR) return conn_.refused("XREADGROUP", r.get());
        const redisReply* entries = nullptr;
        if (r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
            r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements == 2) {
            entries = r->element[0]->element[1];
        }
        if (entries == nullptr || entries->type != REDIS_REPLY_ARRAY || entries->elements == 0) {
            idle_ = true;
            return {};
        }
        bool batch = false;
        for (size_t i = 0; i < entries->elements; ++i) {
            const redisReply* e = entries->element[i];
            if (e->type != REDIS_REPLY_ARRAY || e->elements < 2) continue;
            const std::string id(str(e->element[0]));
            auto sid = StreamId::parse(id);
            unacked_.push_back(id);
            // Deleted since it was delivered (XDEL): nothing to append, only to acknowledge.
            if (e->element[1]->type != REDIS_REPLY_ARRAY) continue;
            // Committed here before a lost connection: acknowledge, do not append again.
            if (sid && committed_ && *sid <= *committed_) continue;
            const redisReply* data = field(e->element[1], o_.field);
            if (data == nullptr || data->type != REDIS_REPLY_STRING) {
                if (batch) w_.abort_batch();
                unacked_.pop_back();
                return Outcome::fatal_because(
                    o_.url.display() + ": entry " + cli::printable(id) + " has no field '" +
                        cli::printable(o_.field) +
                        "' (acknowledge or delete it to go on: XACK / XDEL)",
                    cli::kDataError);
            }
            if (!batch) {
                if (Status st = w_.begin_batch(); !st) {
                    return Outcome::fatal_because(st.message(), cli::exit_code(st.code()));
                }
                batch = true;
            }
            auto seq = w_.append(str(data));
            if (!seq) {
                w_.abort_batch();
                return Outcome::fatal_because(
                    "entry " + cli::printable(id) + ": " + seq.status().message(),
                    cli::exit_code(seq.status().code()));
            }
            ++appended_;
            if (sid) last_in_batch_ = *sid;
        }
        if (batch) {
            if (Status st = w_.commit_batch(); !st) {
                return Outcome::fatal_because(st.message(), cli::exit_code(st.code()));
            }
            committed_ = last_in_batch_;
        }
        return {};
    }

    // XACK of what is committed here.
    Outcome ack() {
        if (unacked_.empty()) return {};
        std::vector<std::string_view> args{"XACK", o_.url.name, o_.group};
        for (const auto& id : unacked_) args.emplace_back(id);
        Reply r = conn_.call(args);
        if (!r) return conn_.lost("XACK");
        if (r->type == REDIS_REPLY_ERROR) return conn_.refused("XACK", r.get());
        unacked_.clear();
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
    Conn conn_;
    bool idle_ = false;
    std::vector<std::string> unacked_;
    std::optional<StreamId> committed_;  // the last entry committed here (this process)
    StreamId last_in_batch_;
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

}  // namespace chronicle::bridge::redis
