#!/usr/bin/env bash
# Black-box tests of docs/recipes.md: each recipe block is taken from the document and run
# as written, against servers started here on 127.0.0.1 (redis-server, nats-server, a
# librdkafka mock cluster inside kcat), and the records must arrive intact — binary
# payloads included. A test whose server or client is not installed says so and passes.
# Every wait is bounded; every process started is stopped by the test that started it.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DOC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/docs/recipes.md
export PATH=$BIN:$PATH  # the recipes call the tools by name

note() { echo "    note: $*"; }

# block MARKER — the fenced block that follows "<!-- MARKER -->" in docs/recipes.md.
block() {
    local text
    text=$(awk -v m="<!-- $1 -->" '
        $0 == m { f = 1; next }
        f == 1 && /^```/ { f = 2; next }
        f == 2 && /^```/ { exit }
        f == 2 { print }' "$DOC")
    [[ -n $text ]] || fail "docs/recipes.md has no block <!-- $1 -->"
    printf '%s\n' "$text"
}

# run_recipe NAME — runs a recipe in the foreground (at most 60 s).
run_recipe() {
    local script
    script=$(block "recipe: $1")
    timeout 60 bash -c "$script" >"$T/$1.out" 2>"$T/$1.err" ||
        fail "recipe $1 failed ($?): $(tail -5 "$T/$1.err")"
}

# start_recipe NAME — runs a recipe in the background, in its own process group.
BG=()
start_recipe() {
    local script
    script=$(block "recipe: $1")
    # Not holding the test's own FIFO ends (3, 4): they must close when the test closes them.
    setsid bash -c "$script" >"$T/$1.out" 2>"$T/$1.err" 3>&- 4>&- &
    BG+=("$!")
}
stop_all() {
    local p
    for p in "${BG[@]}"; do kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null || true; done
    for p in "${BG[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null || true
    done
    BG=()
}
# stop_recipe — stops the most recent background recipe.
stop_last() {
    local p=${BG[-1]}
    unset 'BG[-1]'
    kill -TERM -- "-$p" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
    kill -KILL -- "-$p" 2>/dev/null || true
}

# cleanup — the EXIT trap of every test that starts processes: closes the test's FIFO ends,
# stops its background recipes and the servers and writers listed in PIDS. Never waits
# unbounded.
PIDS=()
cleanup() {
    exec 3>&- 4>&-
    stop_all
    stop_pids "${PIDS[@]}"
}

has_records() { [[ $(head_seq "$1") == "$2" ]]; }

# make_records FILE [SALT] — len32 frames of payloads that break every naive framing: empty,
# newlines, CR LF, NUL, quotes and backslashes, DEL, UTF-8, invalid UTF-8, all 256 byte
# values, text that looks like protocol (PING, MSG, XADD, \x41), and a 100 KiB record.
make_records() {
    perl -e '
        my $salt = $ARGV[0] // "";
        my @p = ("hello$salt", "", "line\nbreak", "crlf\r\nPING\r\n", "nul\0byte", "del\x7f",
                 "tab\t\"quoted\" back\\slash \\x41 \\u0000", "w\xc3\xb6rld \xe2\x9c\x93",
                 "bad utf8 \xff\xfe\xc3", join("", map { chr } 0 .. 255),
                 "MSG events 1 5\r\nXADD x * f v\n", "{\"seq\":1}",
                 join("", map { chr(($_ * 7 + 3) % 256) } 0 .. 102399));
        binmode STDOUT;
        print pack("N", length $_), $_ for @p;' "${2:-}" >"$1"
}
RECORDS_PER_SET=13

# same_records Q1 Q2 — both queues hold the same records, byte for byte.
same_records() {
    cmp <($TAIL --format=len32 "$1") <($TAIL --format=len32 "$2") ||
        fail "the records of $2 differ from those of $1"
}

# --- Copying a queue --------------------------------------------------------------------

t_copy_queue_byte_for_byte() {
    make_records data
    $APPEND --framing=len32 q <data
    cmp data <($TAIL --format=len32 q) || fail "len32 round trip of the test data"
    export Q=$T/q Q2=$T/q2
    run_recipe copy
    same_records q q2
    expect_eq seqs "$($TAIL --json q | cut -d, -f1)" "$($TAIL --json q2 | cut -d, -f1)"
    # Again into a queue that already has records: appended after them.
    run_recipe copy
    expect_eq head $((2 * RECORDS_PER_SET)) "$(head_seq q2)"
}

t_copy_queue_while_it_is_written() {
    trap cleanup EXIT
    export Q=$T/q Q2=$T/q2
    mkfifo in
    $APPEND --framing=len32 q <in &
    local writer=$!
    PIDS+=("$writer")
    exec 3>in
    make_records a 1
    cat a >&3
    wait_until 10 has_records q "$RECORDS_PER_SET" || fail "the writer did not append"
    start_recipe copy-follow
    wait_until 20 has_records q2 "$RECORDS_PER_SET" || fail "copy-follow did not copy the first records"
    make_records b 2
    cat b >&3
    exec 3>&-
    wait_until 20 eval "! kill -0 $writer" || fail "the writer did not exit"
    # --until-writer-exits: the copy ends by itself once the writer is gone.
    wait_until 20 has_records q2 $((2 * RECORDS_PER_SET)) || fail "copy-follow did not copy the rest"
    wait_until 20 eval '! kill -0 '"${BG[0]}" || fail "copy-follow did not exit after the writer"
    same_records q q2
    [[ -z $(cat copy-follow.err) ]] || fail "stderr: $(cat copy-follow.err)"
}

# --- Redis Streams ------------------------------------------------------------------------

redis_up() { [[ $(redis-cli -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]; }

start_redis() {
    for _ in 1 2 3; do
        REDIS_PORT=$(free_port) || fail "no free port"
        redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
            --daemonize no --dir "$T" >redis.log 2>&1 &
        REDIS_PID=$!
        PIDS+=("$REDIS_PID")
        wait_until 10 redis_up && return 0
        kill "$REDIS_PID" 2>/dev/null || true
        wait_until 5 eval "! kill -0 $REDIS_PID" || kill -KILL "$REDIS_PID" 2>/dev/null || true
    done
    fail "redis-server did not start: $(tail -5 redis.log)"
}

# $REDIS is a list of redis-cli options: unquoted on purpose, as in the recipes.
# shellcheck disable=SC2086
t_redis_streams_round_trip() {
    if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
        note "skip: redis-server/redis-cli not installed (Debian: redis-server redis-tools)"
        return 0
    fi
    trap cleanup EXIT
    start_redis
    export Q=$T/q Q2=$T/q2 REDIS="-h 127.0.0.1 -p $REDIS_PORT" STREAM=events
    local n=$RECORDS_PER_SET
    make_records a 1
    $APPEND --framing=len32 q <a

    # Queue -> stream, following.
    xlen() { [[ $(redis-cli $REDIS XLEN "$STREAM") == "$1" ]]; }
    block "file: redis-xadd.sh" >redis-xadd.sh
    start_recipe redis-out
    wait_until 20 xlen $n || fail "redis-out: XLEN $(redis-cli $REDIS XLEN "$STREAM"), expected $n"
    make_records b 2
    $APPEND --framing=len32 q <b
    wait_until 20 xlen $((2 * n)) || fail "redis-out did not forward new records"
    # Restart: resumes after the last entry, sends nothing twice.
    stop_last
    start_recipe redis-out
    printf 'after restart' | $APPEND --framing=raw q
    wait_until 20 xlen $((2 * n + 1)) || fail "redis-out after a restart: XLEN $(redis-cli $REDIS XLEN "$STREAM")"
    sleep 0.5
    xlen $((2 * n + 1)) || fail "records sent twice"
    stop_last
    # Entry IDs are <ms>-<seq>: the seq parts are 0..N-1 and the ms part is the record's.
    expect_eq ids "$(seq 0 $((2 * n)))" "$(redis-cli $REDIS --raw XRANGE "$STREAM" - + | awk 'NR % 3 == 1' | cut -d- -f2)"
    local ns
    ns=$($TAIL --json -c 1 q | sed 's/.*"timestamp_ns":\([0-9]*\),.*/\1/')
    expect_eq first_id "${ns:0:${#ns}-6}-0" "$(redis-cli $REDIS --raw XRANGE "$STREAM" - + COUNT 1 | head -1)"

    # Connections killed while records flow (the issue's five CLIENT KILLs): each killed
    # batch is sent again from the first record Redis lacks.
    start_recipe redis-out
    local i total=$((2 * n + 1))
    for i in $(seq 10); do
        seq 1 300 | $APPEND q
        total=$((total + 300))
        redis-cli $REDIS CLIENT KILL TYPE normal >/dev/null
        sleep 0.05
    done
    wait_until 30 xlen $total || fail "after CLIENT KILLs: XLEN $(redis-cli $REDIS XLEN "$STREAM"), expected $total"
    stop_last
    expect_eq "ids after kills" "$(seq 0 $((total - 1)))" \
        "$(redis-cli $REDIS --raw XRANGE "$STREAM" - + | awk 'NR % 3 == 1' | cut -d- -f2)"

    # Stream -> queue: the original bytes come back.
    start_recipe redis-in
    wait_until 30 has_records q2 $total || fail "redis-in: $(head_seq q2) records of $total; $(tail -3 redis-in.err)"
    same_records q q2
}

# --- NATS ---------------------------------------------------------------------------------

t_nats_round_trip() {
    if ! command -v nats-server >/dev/null; then
        note "skip: nats-server not installed (Debian: nats-server)"
        return 0
    fi
    trap cleanup EXIT
    # -p -1: a random free port, written to the ports file.
    nats-server -a 127.0.0.1 -p -1 --ports_file_dir "$T" >nats.log 2>&1 &
    PIDS+=("$!")
    wait_until 10 eval 'ls "$T"/nats-server_*.ports' || fail "nats-server did not start: $(tail -5 nats.log)"
    local port
    port=$(grep -o '127.0.0.1:[0-9]*' "$T"/nats-server_*.ports | head -1)
    [[ -n $port ]] || fail "no port in $(cat "$T"/nats-server_*.ports)"
    export Q=$T/q Q2=$T/q2 NATS=$port SUBJECT=events
    block "file: nats-pub.pl" >nats-pub.pl
    block "file: nats-sub.pl" >nats-sub.pl
    if ! perl -c nats-pub.pl 2>/dev/null || ! perl -c nats-sub.pl 2>/dev/null; then
        fail "the perl programs do not compile"
    fi

    # The subscriber first: core NATS keeps nothing for absent subscribers.
    start_recipe nats-in
    wait_until 10 grep -q subscribed nats-in.err || fail "nats-sub.pl did not subscribe: $(cat nats-in.err)"

    # A live writer, so that the publisher follows until it exits.
    local n=$RECORDS_PER_SET
    mkfifo in
    $APPEND --framing=len32 q <in &
    local writer=$!
    PIDS+=("$writer")
    exec 3>in
    make_records a 1
    cat a >&3
    wait_until 10 has_records q $n || fail "the writer did not append"
    start_recipe nats-out
    wait_until 20 has_records q2 $n || fail "NATS: $(head_seq q2) of $n records arrived; $(tail -3 nats-out.err)"
    make_records b 2
    cat b >&3
    exec 3>&-
    wait_until 20 eval "! kill -0 $writer" || fail "the writer did not exit"
    wait_until 20 has_records q2 $((2 * n)) || fail "NATS: $(head_seq q2) of $((2 * n)) records arrived"
    # The publisher ends by itself after the writer, once the server has everything.
    wait_until 20 eval '! kill -0 '"${BG[1]}" || fail "nats-out did not exit after the writer"
    [[ -z $(cat nats-out.err) ]] || fail "nats-out: $(cat nats-out.err)"
    same_records q q2
}

# --- Kafka --------------------------------------------------------------------------------

# chronicle-tail --format=len32 is kcat's %R%s: a big-endian signed 32-bit length, then the
# payload. Checked against the definition, without kcat.
t_len32_is_kcat_R_framing() {
    make_records data
    $APPEND --framing=len32 q <data
    $TAIL --format=len32 q >out.bin
    perl -e '
        binmode STDIN;
        local $/;
        my $all = <STDIN>;
        my ($n, $off) = (0, 0);
        while ($off < length $all) {
            die "truncated length at $off\n" if $off + 4 > length $all;
            my $len = unpack("l>", substr($all, $off, 4));    # %R: signed, big-endian
            die "negative length\n" if $len < 0;
            $off += 4 + $len;
            die "truncated payload\n" if $off > length $all;
            $n++;
        }
        print "$n\n";' <out.bin >count || fail "not %R frames: $(cat count)"
    expect_eq frames "$RECORDS_PER_SET" "$(cat count)"
    # The big-endian length of the 100 KiB record: 00 01 90 00.
    [[ $(head -c 4 < <($TAIL --format=len32 --from-seq 12 q) | od -An -tx1 | tr -d ' ') == 00019000 ]] ||
        fail "length is not big-endian"
}

start_kafka_mock() {
    mkfifo hold
    kcat -P -b 127.0.0.1:1 -X test.mock.num.brokers=1 -t keepalive <hold 2>mock.log &
    PIDS+=("$!")
    exec 4>hold
    wait_until 10 grep -q 'replaced with' mock.log || fail "no mock cluster: $(cat mock.log)"
    BROKERS=$(grep -o 'replaced with [0-9.:]*' mock.log | head -1 | cut -d' ' -f3)
    [[ -n $BROKERS ]] || fail "no mock cluster address: $(cat mock.log)"
}

messages() { kcat -C -b "$BROKERS" -t "$1" -p 0 -o beginning -e -q -f '%o\n' 2>/dev/null | wc -l; }

t_kafka_recipes_with_kcat_mock_cluster() {
    if ! command -v kcat >/dev/null; then
        note "skip: kcat not installed (Debian: kcat)"
        return 0
    fi
    trap cleanup EXIT
    start_kafka_mock
    export Q=$T/q Q2=$T/q2 BROKERS TOPIC=events
    local n=$RECORDS_PER_SET
    make_records a 1
    $APPEND --framing=len32 q <a

    # Queue -> topic (NDJSON), resumable: a second run sends nothing, a third only what is new.
    run_recipe kafka-out
    expect_eq messages $n "$(messages events)"
    run_recipe kafka-out
    expect_eq "messages after a rerun" $n "$(messages events)"
    make_records b 2
    $APPEND --framing=len32 q <b
    run_recipe kafka-out
    expect_eq "messages after new records" $((2 * n)) "$(messages events)"
    expect_eq "seqs in the topic" "$(seq 0 $((2 * n - 1)))" \
        "$(kcat -C -b "$BROKERS" -t events -p 0 -o beginning -e -q | sed 's/^{"seq":\([0-9]*\),.*/\1/')"

    # Topic (NDJSON) -> queue: the original records.
    run_recipe kafka-in-ndjson
    same_records q q2

    # Any topic -> queue with %R%s: messages produced by kcat, one file each (binary-safe).
    mkdir msgs
    perl -e '
        binmode STDIN;
        local $/;
        my $all = <STDIN>;
        my $i = 0;
        while (length $all) {
            my $len = unpack("N", $all);
            my $p = substr($all, 4, $len);
            substr($all, 0, 4 + $len, "");
            next unless length $p;    # kcat sends no message for an empty file
            open(my $f, ">", sprintf("msgs/%03d", $i++)) or die;
            binmode $f;
            print $f $p;
        }' <a
    timeout 30 kcat -P -b "$BROKERS" -t raw -p 0 msgs/* 2>kcat.err || fail "kcat -P: $(cat kcat.err)"
    local count
    count=$(ls msgs | wc -l)
    expect_eq "raw messages" "$count" "$(messages raw)"
    TOPIC=raw Q2=$T/q3 run_recipe kafka-in
    expect_eq "records from raw" "$count" "$(head_seq q3)"
    # Byte for byte what kcat prints as %R%s, and each record is its message's file.
    cmp <(kcat -C -b "$BROKERS" -t raw -p 0 -o beginning -e -q -f '%R%s') <($TAIL --format=len32 q3) ||
        fail "chronicle-tail --format=len32 differs from kcat -f '%R%s'"
    local i=0 f
    for f in msgs/*; do
        cmp -s "$f" <($TAIL --format=raw --from-seq $i -c 1 q3) || fail "record $i differs from $f"
        i=$((i + 1))
    done
}

run_tests
