#!/usr/bin/env bash
# Black-box tests of chronicle-bridge and NATS JetStream, against nats-servers (JetStream on,
# storage in $T) started here on free 127.0.0.1 ports: out of a queue, binary payloads byte
# for byte, a clear error when no stream captures the subject, SIGTERM, and kill -9 of the
# bridge in a loop while records flow: every record exactly once, in order; the same into
# an R3 stream of a 3-node cluster whose stream leader is killed mid-stream; and the way
# back (a durable pull consumer into a queue) under kill -9: every message, in order,
# duplicates within a batch per kill. The stream is read back by the test helper
# nats_stream_dump ($NATS_STREAM_DUMP, built with the NATS engine). Exits 77 (CTest:
# skipped) with "SKIP: reason" when nats-server or the NATS engine is missing.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BRIDGE=$BIN/chronicle-bridge
DUMP=${NATS_STREAM_DUMP:-}
if ! command -v nats-server >/dev/null; then
    echo "SKIP: nats-server is not installed (Debian: nats-server)"
    exit 77
fi
if [[ ! -x $BRIDGE || -z $DUMP || ! -x $DUMP ]]; then
    echo "SKIP: chronicle-bridge was built without the NATS engine (libnats not found: apt-get install libnats-dev)"
    exit 77
fi

PIDS=()
cleanup() { stop_pids "${PIDS[@]}"; }
# nats_on PORT — the server's log says it is ready.
nats_ready() { grep -q 'Server is ready' nats.log; }
# start_nats [PORT] — a nats-server with JetStream ($NATS_PORT, $URL, $HOSTPORT), stopped by
# the EXIT trap; with PORT, again on that port (the same storage directory).
start_nats() {
    trap cleanup EXIT
    local tries=3 port=${1:-}
    for ((; tries > 0; tries--)); do
        NATS_PORT=${port:-$(free_port)} || fail "no free port"
        : >nats.log
        nats-server -js -sd "$T/js" -a 127.0.0.1 -p "$NATS_PORT" >nats.log 2>&1 &
        local pid=$!
        if wait_until 20 nats_ready; then
            PIDS+=("$pid")
            HOSTPORT=127.0.0.1:$NATS_PORT
            URL=nats://$HOSTPORT
            return 0
        fi
        kill -KILL "$pid" 2>/dev/null || true
    done
    fail "nats-server did not start: $(tail -5 nats.log)"
}

# expected_seqs QUEUE FIRST LAST — the "<seq> <id>-<seq>" lines nats_stream_dump --seqs prints.
# dump_seqs STREAM — "<Chronicle-Seq> <Nats-Msg-Id>" of each message in the stream.
dump_seqs() { "$DUMP" "$HOSTPORT" "$1" --seqs | cut -d' ' -f1,2; }
expected_seqs() { local id; id=$(queue_id "$1"); seq "$2" "$3" | awk -v id="$id" '{ print $1, id "-" $1 }'; }

t_records_go_out_byte_for_byte_with_their_headers_and_the_reader_shows_the_progress() {
    start_nats
    gen 0 10000 >data
    $APPEND --framing=len32 q <data
    # No stream captures the subject: one clear line, exit 1.
    expect_code 1 "$BRIDGE" q "$URL/orders.eu"
    grep -q "no JetStream stream captures 'orders.eu'" err || fail "no clear error: $(cat err)"
    expect_eq "one line" 1 "$(wc -l <err)"
    expect_code 0 "$BRIDGE" -v --create-stream ORDERS q "$URL/orders.eu"
    grep -q ': 10000 records accepted, 0 refused as duplicates' err || fail "verbose: $(cat err)"
    cmp data <("$DUMP" "$HOSTPORT" ORDERS) || fail "the stream is not the queue, byte for byte"
    cmp <(expected_seqs q 0 9999) <(dump_seqs ORDERS) ||
        fail "the headers Chronicle-Seq / Nats-Msg-Id are not 0..9999"
    # Nats-Expected-Last-Msg-Id: none on the first message, then the previous record's id.
    "$DUMP" "$HOSTPORT" ORDERS --seqs | awk '
        (NR == 1 && $3 != "-") || (NR > 1 && $3 != prev) { print "message " NR ": " $0; exit 1 }
        { prev = $2 }' >chain || fail "Nats-Expected-Last-Msg-Id: $(cat chain)"
    expect_eq position 10000 "$(reader_pos q bridge)"
    # Again: nothing to send; with --create-stream of the existing stream too.
    expect_code 0 "$BRIDGE" --create-stream ORDERS q "$URL/orders.eu"
    gen 10000 5 >>data
    gen 10000 5 | $APPEND --framing=len32 q
    expect_code 0 "$BRIDGE" q "$URL/orders.eu"
    cmp data <("$DUMP" "$HOSTPORT" ORDERS) || fail "the second run did not append exactly the new records"
    # The cursor moved back (as after a crash between the acknowledgment and the cursor
    # store): the records the stream holds are skipped, not sent twice.
    $READERS q reset bridge --to-seq 100 >/dev/null
    gen 10005 5 >>data
    gen 10005 5 | $APPEND --framing=len32 q
    expect_code 0 "$BRIDGE" -v q "$URL/orders.eu"
    grep -q ': 5 records accepted, 0 refused as duplicates, 9905 skipped' err || fail "skipped: $(cat err)"
    cmp data <("$DUMP" "$HOSTPORT" ORDERS) || fail "a record was sent twice after the cursor moved back"
    # A second queue into the same subject is refused (the last message is not its own).
    echo x | $APPEND q2
    expect_code 1 "$BRIDGE" q2 "$URL/orders.eu"
    grep -q 'did not come from this queue' err || fail "foreign subject: $(cat err)"
    # A record over the server's max_payload (1 MiB): a data error naming it, exit 7.
    { echo small; head -c 2000000 /dev/zero | tr '\0' x; echo; } | $APPEND q4
    expect_code 7 "$BRIDGE" --create-stream BIG q4 "$URL/big"
    grep -q "record 1 (2000000 bytes) is over the server's max_payload" err || fail "max_payload: $(cat err)"
    expect_eq "reader past the small one" 1 "$(reader_pos q4 bridge)"
    # Usage.
    expect_code 2 "$BRIDGE" --create-stream X "$URL/orders.eu" q3
    expect_code 2 "$BRIDGE" --duplicate-window 5m q "$URL/orders.eu"
    # A dead server: back-off, then exit 6.
    expect_code 6 "$BRIDGE" --retry-for 500ms q "nats://127.0.0.1:$(free_port)/x"
    grep -q 'gave up after' err || fail "no give-up line: $(cat err)"
}

t_sigterm_stops_a_following_bridge_with_its_cursor_stored() {
    start_nats
    gen 0 300 | $APPEND --framing=len32 q
    "$BRIDGE" -f --create-stream S q "$URL/s" 2>bridge.err &
    local pid=$!
    wait_until 30 eval '[[ $(reader_pos q bridge) == 300 ]]' || fail "the bridge did not catch up: $(cat bridge.err)"
    gen 300 10 | $APPEND --framing=len32 q
    wait_until 30 eval '[[ $(reader_pos q bridge) == 310 ]]' || fail "the bridge did not follow"
    kill -TERM "$pid"
    local rc=0
    wait "$pid" || rc=$?
    expect_eq "exit status" 143 "$rc"
    cmp <(gen 0 310) <("$DUMP" "$HOSTPORT" S) || fail "the stream is not the queue"
}

# A refusal in the middle of a window (the stream is full: max 2500 messages, new ones
# refused): the stream keeps 0..2499 and nothing after a hole, the cursor stops at 2500,
# the bridge backs off and gives up (exit 6); with the limit lifted, the rest once, in order.
t_a_refusal_in_the_middle_of_a_window_leaves_no_hole() {
    start_nats
    gen 0 6000 | $APPEND --framing=len32 q2
    "$DUMP" "$HOSTPORT" L --limit lim 2500 || fail "could not create the stream L"
    expect_code 6 "$BRIDGE" --batch 700 --retry-for 1s q2 "$URL/lim"
    grep -q 'maximum messages exceeded' err || fail "no refusal: $(cat err)"
    expect_eq position 2500 "$(reader_pos q2 bridge)"
    cmp <(expected_seqs q2 0 2499) <(dump_seqs L) || fail "the stream is not 0..2499"
    "$DUMP" "$HOSTPORT" L --limit lim -1 || fail "could not lift the limit"
    expect_code 0 "$BRIDGE" --batch 700 q2 "$URL/lim"
    cmp <(expected_seqs q2 0 5999) <(dump_seqs L) || fail "the rest was not delivered once, in order"
    cmp <(gen 0 6000) <("$DUMP" "$HOSTPORT" L) || fail "the stream's bytes differ"
}

# kill -9 of the bridge (25 times, 8 in the sanitizer stages, at random moments) while
# records flow into the queue, then one last run: the stream holds every record once, in
# order, byte for byte.
t_kill_9_in_a_loop_leaves_no_hole_and_no_duplicate() {
    start_nats
    local rounds per=4000 i pid appender kills=0 midway=0 total
    rounds=$(scaled 25 8)
    total=$((rounds * per))
    gen 0 "$per" | $APPEND --framing=len32 q
    "$BRIDGE" -f --batch 200 --create-stream S q "$URL/s" 2>>bridge.err &
    pid=$!
    for ((i = 1; i < rounds; i++)); do
        gen $((i * per)) "$per" | $APPEND --framing=len32 q &
        appender=$!
        sleep "0.0$((RANDOM % 10))"
        (($(reader_pos q bridge) < $(head_seq q))) && midway=$((midway + 1))
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        kills=$((kills + 1))
        "$BRIDGE" -f --batch 200 q "$URL/s" 2>>bridge.err &
        pid=$!
        wait "$appender" || fail "an append failed"
    done
    sleep "0.$((RANDOM % 10))"
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    kills=$((kills + 1))
    echo "    $kills kill -9 ($midway with the bridge behind the queue)"
    ((kills >= rounds)) || fail "only $kills kills"
    expect_code 0 "$BRIDGE" -v --batch 200 q "$URL/s"
    expect_eq position "$total" "$(reader_pos q bridge)"
    cmp <(expected_seqs q 0 $((total - 1))) <(dump_seqs S) ||
        fail "the stream does not hold every record once, in order: $(diff <(expected_seqs q 0 $((total - 1))) <(dump_seqs S) | head -5 | tr '\n' ' ')"
    cmp <(gen 0 "$total") <("$DUMP" "$HOSTPORT" S) || fail "the stream's bytes differ"
    if grep -v 'note: ' bridge.err | grep -q .; then fail "unexpected errors: $(grep -v 'note: ' bridge.err | head -3)"; fi
}

# nats-server killed with -9 and started again on the same port and storage, three times,
# while a following bridge publishes: it backs off meanwhile, then resumes after the
# stream's last message; every record once, in order.
t_a_server_killed_and_restarted_is_retried_and_nothing_is_lost_or_doubled() {
    start_nats
    local port=$NATS_PORT pid i
    gen 0 5000 | $APPEND --framing=len32 q
    "$BRIDGE" -f --batch 300 --create-stream S q "$URL/s" 2>>bridge.err &
    pid=$!
    for i in 1 2 3; do
        sleep "0.$((RANDOM % 3))"
        kill -KILL "${PIDS[-1]}"
        wait "${PIDS[-1]}" 2>/dev/null || true
        # Records while the server is down: the bridge fails and backs off.
        gen $((i * 5000)) 5000 | $APPEND --framing=len32 q
        wait_until 30 grep -q "retrying in" bridge.err || fail "no back-off note: $(cat bridge.err)"
        kill -0 "$pid" || fail "the bridge exited while the server was down: $(cat bridge.err)"
        cat bridge.err >>bridge.all
        : >bridge.err
        start_nats "$port"
    done
    wait_until 60 eval '[[ $(reader_pos q bridge) == 20000 ]]' ||
        fail "the bridge did not catch up: $(reader_pos q bridge); $(tail -3 bridge.err)"
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null || true
    cmp <(expected_seqs q 0 19999) <(dump_seqs S) ||
        fail "lost or doubled: $(diff <(expected_seqs q 0 19999) <(dump_seqs S) | head -5 | tr '\n' ' ')"
    cmp <(gen 0 20000) <("$DUMP" "$HOSTPORT" S) || fail "the stream's bytes differ"
    cat bridge.err >>bridge.all
    if grep -v 'note: ' bridge.all | grep -q .; then fail "unexpected errors: $(grep -v 'note: ' bridge.all | head -3)"; fi
}

# check_in_order FILE N — FILE holds the numbers 1..N once each as first seen, in order
# (a number seen before is a duplicate, counted in $T/dups); anything else fails.
check_in_order() {
    awk -v n="$2" '{ v = $1; if (v == max + 1) max = v; else if (v <= max) dup++
                     else { print "hole: " v " after " max; exit 1 } }
        END { if (max != n) { print "ends at " max ", not " n; exit 1 } print dup + 0 > "dups" }' "$1"
}

t_the_way_back_appends_every_message_in_order_under_kill_9_duplicates_at_most_a_batch_each() {
    start_nats
    seq 1 20000 | $APPEND q
    "$BRIDGE" --create-stream S q "$URL/s.x"
    # Byte for byte back, then nothing more; a second run appends nothing.
    expect_code 0 "$BRIDGE" -v "$URL/s.x" back
    cmp <($TAIL -n all q) <($TAIL -n all back) || fail "the way back differs"
    grep -q "20000 records appended" err || fail "verbose: $(cat err)"
    expect_code 0 "$BRIDGE" -v "$URL/s.x" back
    grep -q " 0 records appended" err || fail "appended again: $(cat err)"
    # Following, then SIGTERM: exit 143 at the next round (at most a fetch's second).
    "$BRIDGE" -f --durable term "$URL/s.x" termq 2>term.err 3>&- &
    local follower=$!
    wait_until 30 eval '[[ $($TAIL -n all termq 2>/dev/null | wc -l) == 20000 ]]' ||
        fail "the following way back did not catch up: $(cat term.err)"
    kill -TERM "$follower"
    wait_until 10 eval '! kill -0 "$follower"' || fail "SIGTERM did not stop the way back"
    local rc=0
    wait "$follower" || rc=$?
    expect_eq "exit on SIGTERM" 143 "$rc"
    # Usage: --durable only into a queue from NATS; --group is Redis's.
    expect_code 2 "$BRIDGE" --durable x q "$URL/s.x"
    expect_code 2 "$BRIDGE" --group x "$URL/s.x" back
    # A subject no stream captures: exit 1, and no hint about --create-stream.
    expect_code 1 "$BRIDGE" "$URL/nowhere" back
    grep -q "no JetStream stream captures 'nowhere'$" err || fail "message: $(cat err)"
    # 10^5 messages arriving while the way back is killed with -9 30 times.
    (
        for i in $(seq 1 40); do
            seq $((20000 + (i - 1) * 2000 + 1)) $((20000 + i * 2000)) | $APPEND q
            sleep 0.05
        done
    ) 3>&- &
    local producer=$! kills=0 pid
    "$BRIDGE" -f --batch 500 q "$URL/s.x" 2>>out.err 3>&- &
    PIDS+=($!)
    for kills in $(seq 1 30); do
        "$BRIDGE" -f --batch 500 --durable again "$URL/s.x" again 2>>in.err 3>&- &
        pid=$!
        sleep "0.$((RANDOM % 2))$((RANDOM % 10))"
        kill -KILL "$pid"
        wait "$pid" 2>/dev/null || true
    done
    wait "$producer"
    wait_until 60 eval '[[ $(reader_pos q bridge) == 100000 ]]' || fail "the bridge out did not catch up"
    expect_code 0 "$BRIDGE" --batch 500 --durable again "$URL/s.x" again
    $TAIL -n all again >got
    check_in_order got 100000 || fail "$(check_in_order got 100000)"
    (($(cat dups) <= 30 * 500)) || fail "$(cat dups) duplicates from 30 kills of batches of 500"
    echo "    $(cat dups) duplicates after 30 kill -9 (bound 30 x 500);" \
        "$(grep -c 'taking them back' in.err) starts took back a dead run's messages" >&2
    if grep -v 'note: ' in.err | grep -q .; then fail "errors: $(grep -v 'note: ' in.err | head -3)"; fi
}

# start_cluster — three nats-servers n1..n3 with JetStream, one cluster on loopback
# ($CPORTS[i] client ports, $CURL the bridge's URL prefix listing all three, $CHOST the
# dump helper's); start_node I restarts node I (same ports and storage), launch_node I is
# the same without failing the test.
launch_node() {
    local i=$1
    : >"n$i.log"
    nats-server -js -sd "$T/js$i" -a 127.0.0.1 -p "${CPORTS[$i]}" -n "n$i" --cluster_name c \
        --cluster "nats://127.0.0.1:${RPORTS[$i]}" --routes "$ROUTES" >"n$i.log" 2>&1 &
    NODE[$i]=$!
    PIDS+=("${NODE[$i]}")
    wait_until 20 eval "grep -q 'Server is ready' n$i.log || ! kill -0 ${NODE[$i]}"
    grep -q 'Server is ready' "n$i.log"
}
start_node() { launch_node "$1" || fail "n$1 did not start: $(tail -3 "n$1.log")"; }
# cluster_up — picks six ports and starts n1..n3; false (all stopped) when a port was taken
# between the pick and the bind, so start_cluster can pick again.
cluster_up() {
    local i
    CPORTS=() RPORTS=() NODE=()
    rm -rf "$T/js1" "$T/js2" "$T/js3"
    for i in 1 2 3; do
        CPORTS[i]=$(free_port) && RPORTS[i]=$(free_port) || fail "no free port"
    done
    ROUTES="nats://127.0.0.1:${RPORTS[1]},nats://127.0.0.1:${RPORTS[2]},nats://127.0.0.1:${RPORTS[3]}"
    for i in 1 2 3; do
        launch_node "$i" && continue
        grep -q 'address already in use' "n$i.log" || fail "n$i did not start: $(tail -3 "n$i.log")"
        stop_pids "${NODE[@]}"
        return 1
    done
}
start_cluster() {
    trap cleanup EXIT
    local tries
    for ((tries = 3; tries > 0; tries--)); do cluster_up && break; done
    ((tries > 0)) || fail "no three free ports to start the cluster on: $(grep -h 'address already' n?.log | head -1)"
    wait_until 30 eval 'grep -q "metadata leader" n1.log n2.log n3.log' || fail "no JetStream meta leader"
    CURL="nats://127.0.0.1:${CPORTS[1]},127.0.0.1:${CPORTS[2]},127.0.0.1:${CPORTS[3]}"
    CHOST="127.0.0.1:${CPORTS[1]},nats://127.0.0.1:${CPORTS[2]},nats://127.0.0.1:${CPORTS[3]}"
    HOSTPORT=$CHOST
}

# (31 kills of the bridge; 9 in the sanitizer stages, see scaled in lib.sh)
t_a_three_node_cluster_r3_stream_survives_30_bridge_kills_and_a_leader_kill() {
    start_cluster
    local rounds per=4000 i pid appender kills=0 midway=0 total leader lnode
    rounds=$(scaled 25 8)
    total=$((rounds * per))
    gen 0 "$per" | $APPEND --framing=len32 q
    "$BRIDGE" -f --batch 200 --create-stream S --replicas 3 q "$CURL/s" 2>>bridge.err &
    pid=$!
    wait_until 30 eval '[[ $("$DUMP" "$CHOST" S --leader 2>/dev/null) == n? ]]' || fail "no stream leader"
    for ((i = 1; i < rounds; i++)); do
        gen $((i * per)) "$per" | $APPEND --framing=len32 q &
        appender=$!
        sleep "0.0$((RANDOM % 10))"
        if ((i == rounds / 2)); then
            # The stream's leader, killed mid-stream: the others elect a new one.
            leader=$("$DUMP" "$CHOST" S --leader) || fail "no leader: $leader"
            lnode=${leader#n}
            [[ $lnode == [123] ]] || fail "leader '$leader'"
            kill -KILL "${NODE[$lnode]}"
            wait "${NODE[$lnode]}" 2>/dev/null || true
            echo "    killed the stream leader $leader at round $i"
        fi
        (($(reader_pos q bridge) < $(head_seq q))) && midway=$((midway + 1))
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        kills=$((kills + 1))
        "$BRIDGE" -f --batch 200 q "$CURL/s" 2>>bridge.err &
        pid=$!
        wait "$appender" || fail "an append failed"
        # A second kill in some rounds, soon after the start (mid-resync).
        if ((i % 4 == 0)); then
            sleep "0.0$((RANDOM % 5))"
            kill -9 "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
            kills=$((kills + 1))
            "$BRIDGE" -f --batch 200 q "$CURL/s" 2>>bridge.err &
            pid=$!
        fi
    done
    start_node "$lnode" # back, to catch up as a replica
    sleep "0.$((RANDOM % 10))"
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    kills=$((kills + 1))
    echo "    $kills kill -9 of the bridge ($midway with it behind the queue)"
    ((kills >= rounds + (rounds - 1) / 4)) || fail "only $kills kills"
    expect_code 0 "$BRIDGE" -v --batch 200 --retry-for 60s q "$CURL/s"
    expect_eq position "$total" "$(reader_pos q bridge)"
    cmp <(expected_seqs q 0 $((total - 1))) <(dump_seqs S) ||
        fail "the stream does not hold every record once, in order: $(diff <(expected_seqs q 0 $((total - 1))) <(dump_seqs S) | head -5 | tr '\n' ' ')"
    cmp <(gen 0 "$total") <("$DUMP" "$CHOST" S) || fail "the stream's bytes differ"
    if grep -v 'note: ' bridge.err | grep -q .; then fail "unexpected errors: $(grep -v 'note: ' bridge.err | head -3)"; fi
}

run_tests
