// chronicle-bridge — stream a queue into a server (Redis Streams, NATS JetStream) or a server
// into a queue.
//
//   chronicle-bridge [options] QUEUE redis://HOST:PORT/STREAM    out of the queue
//   chronicle-bridge [options] redis://HOST:PORT/STREAM QUEUE    into the queue
//   chronicle-bridge [options] QUEUE nats://HOST:PORT/SUBJECT    out of the queue
//   chronicle-bridge [options] nats://HOST:PORT/SUBJECT QUEUE    into the queue
//
// Out of a queue it reads as a named reader (--reader, default "bridge"): its cursor moves
// only past records the server acknowledged, so chronicle-readers shows the bridge's
// progress and lag, and a restart resumes where the server's copy ends. The engines live in
// bridge_<engine>.cc; docs/DESIGN.md §10 gives the delivery rules.
#include <string>

#include "bridge.h"
#ifdef CHRONICLE_BRIDGE_NATS
#include "bridge_nats.h"
#endif
#ifdef CHRONICLE_BRIDGE_REDIS
#include "bridge_redis.h"
#endif
#include "chronicle/reader.h"
#include "cli.h"

using namespace chronicle;

namespace {

int tool_main(int argc, char** argv) {
    cli::set_tool("chronicle-bridge");
    bridge::Options o;
    std::string source;
    std::string destination;
    std::string retry_for;
    std::string io_timeout = "10s";
    std::string duplicate_window = "2m";
    CLI::App app{
        "Stream the records of a chronicle queue into Redis Streams or NATS JetStream, or "
        "either into a queue. One side is a queue directory, the other a URL: "
        "redis://HOST:PORT/STREAM or nats://HOST:PORT/SUBJECT.",
        "chronicle-bridge"};
    app.add_option("SOURCE", source, "queue directory or URL to read from")->required();
    app.add_option("DESTINATION", destination, "URL or queue directory to write to")->required();
    auto* reader =
        app.add_option("--reader", o.reader,
                       "out of a queue: the named reader whose cursor tracks what the server "
                       "holds (default: bridge)")
            ->check(cli::non_empty());
    auto* group = app.add_option("--group", o.group,
                                 "into a queue from Redis: the consumer group (default: bridge; "
                                 "created at the start of the stream if missing)")
                      ->check(cli::non_empty());
    auto* consumer = app.add_option("--consumer", o.consumer,
                                    "into a queue from Redis: the consumer's name in the group "
                                    "(default: bridge)")
                         ->check(cli::non_empty());
    auto* durable = app.add_option("--durable", o.durable,
                                   "into a queue from NATS: the durable pull consumer (default: "
                                   "bridge; created on the subject if missing)")
                        ->check(cli::non_empty());
    app.add_option("--field", o.field, "the field that holds a record's bytes (default: data)")
        ->check(cli::non_empty());
    app.add_flag("-f,--follow", o.follow,
                 "keep going: wait for new records (or entries) instead of stopping at the end "
                 "of the data");
    app.add_option("--batch", o.batch,
                   "records per round trip (default 1000): out of a queue, the XADDs sent "
                   "before their replies are read, or the NATS messages unacknowledged at "
                   "most; into a queue, the entries per XREADGROUP or messages per NATS fetch "
                   "(and so the most a crash can append twice)")
        ->transform(cli::uint_check())
        ->check(CLI::Range(uint64_t{1}, uint64_t{100000}));
    auto* max_len = app.add_option("--max-len", o.max_len,
                                   "out of a queue into Redis: trim the stream to about N "
                                   "entries (XADD MAXLEN ~ N)")
                        ->transform(cli::uint_check());
    auto* create_stream =
        app.add_option("--create-stream", o.create_stream,
                       "out of a queue into NATS: create the JetStream stream NAME capturing "
                       "the subject if it does not exist (otherwise a stream must capture it)")
            ->check(cli::non_empty());
    auto* dup_window = app.add_option("--duplicate-window", duplicate_window,
                                      "with --create-stream: the stream's duplicate window "
                                      "(default 2m; at least as long as a bridge may be down)")
                           ->check(cli::duration_check());
    auto* replicas = app.add_option("--replicas", o.replicas,
                                    "with --create-stream: the stream's replicas in a "
                                    "JetStream cluster (default 1)")
                         ->check(CLI::Range(1, 5));
    app.add_option("--retry-for", retry_for,
                   "how long to keep trying an unreachable server before giving up (exit 6); "
                   "default: for ever with --follow, 30s without")
        ->check(cli::duration_check());
    app.add_option("--io-timeout", io_timeout,
                   "how long to wait to connect, and for a reply, before counting the "
                   "connection lost (default 10s)")
        ->check(cli::duration_check());
    app.add_flag("-v,--verbose", o.verbose, "say what was done at the end (on stderr)");
    app.set_version_flag("--version", cli::version_string("chronicle-bridge"));
    return cli::run(argc, argv, app, [&]() -> int {
        const bool out = bridge::is_url(destination);
        if (out == bridge::is_url(source)) {
            throw CLI::ValidationError(
                "SOURCE DESTINATION",
                out ? "both are URLs: one side must be a queue directory"
                    : "neither is a URL: one side must be redis://HOST:PORT/STREAM");
        }
        o.queue = out ? source : destination;
        const std::string& url = out ? destination : source;
        if (std::string err = bridge::parse_url(url, o.url); !err.empty()) {
            throw CLI::ValidationError(url, err);
        }
        bool engine = false;
#ifdef CHRONICLE_BRIDGE_REDIS
        engine = engine || o.url.scheme == "redis";
#endif
#ifdef CHRONICLE_BRIDGE_NATS
        engine = engine || o.url.scheme == "nats";
#endif
        if (!engine) {
            throw CLI::ValidationError(url, "this build has no " + o.url.scheme + ":// engine");
        }
        if (o.url.scheme == "nats" && (group->count() > 0 || consumer->count() > 0)) {
            throw CLI::ValidationError("--group/--consumer",
                                       "only into a queue from Redis (NATS: --durable)");
        }
        if (durable->count() > 0 && (out || o.url.scheme != "nats")) {
            throw CLI::ValidationError("--durable", "only into a queue from NATS");
        }
        if (o.url.scheme != "nats" && (create_stream->count() > 0 || dup_window->count() > 0)) {
            throw CLI::ValidationError("--create-stream/--duplicate-window", "only into NATS");
        }
        if (!out && create_stream->count() > 0) {
            throw CLI::ValidationError("--create-stream", "only out of a queue");
        }
        if ((dup_window->count() > 0 || replicas->count() > 0) && create_stream->count() == 0) {
            throw CLI::ValidationError("--duplicate-window/--replicas",
                                       "only with --create-stream");
        }
        o.duplicate_window_ns = cli::parse_duration_ns(duplicate_window, "--duplicate-window");
        if (out && (group->count() > 0 || consumer->count() > 0)) {
            throw CLI::ValidationError("--group/--consumer", "only into a queue (SOURCE a URL)");
        }
        if (!out && (reader->count() > 0 || max_len->count() > 0)) {
            throw CLI::ValidationError("--reader/--max-len",
                                       "only out of a queue (DESTINATION a URL)");
        }
        if (out) {
            if (Status st = validate_reader_name(o.reader); !st) return cli::report(st);
        }
        if (!retry_for.empty()) {
            o.retry_for_ns = cli::parse_duration_ns(retry_for, "--retry-for");
        } else if (!o.follow) {
            o.retry_for_ns = 30'000'000'000ull;
        }
        o.io_timeout_ns = cli::parse_duration_ns(io_timeout, "--io-timeout");
        if (o.io_timeout_ns < 1'000'000ull) {
            throw CLI::ValidationError("--io-timeout", "at least 1ms");
        }
        cli::install_termination_handlers();
#ifdef CHRONICLE_BRIDGE_NATS
        if (o.url.scheme == "nats") return out ? bridge::nats::out(o) : bridge::nats::in(o);
#endif
#ifdef CHRONICLE_BRIDGE_REDIS
        return out ? bridge::redis::out(o) : bridge::redis::in(o);
#else
        return cli::kUsage;
#endif
    });
}

}  // namespace

int main(int argc, char** argv) {
    return cli::guard(tool_main, argc, argv);
}
