#!/usr/bin/env bash
# Black-box tests of chronicle-bridge with Redis Streams (issue 13, items 4 and 6), against
# a redis-server started here on a free 127.0.0.1 port: binary payloads byte for byte both
# ways, the server's refusals as clear errors, and kill -9 of the bridge and CLIENT KILL of
# its connection in a loop while records flow: no hole, no duplicate in the stream. Exits 77
# (CTest: skipped) with "SKIP: reason" when redis-server, redis-cli or the bridge (built only
# where hiredis is) is missing. Every wait is bounded; the server is stopped in a trap.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BRIDGE=$BIN/chronicle-bridge
for need in redis-server redis-cli; do
    if ! command -v "$need" >/dev/null; then
        echo "SKIP: $need is not installed (Debian: redis-server redis-tools)"
        exit 77
    fi
done
if [[ ! -x $BRIDGE ]]; then
    echo "SKIP: chronicle-bridge was not built (hiredis not found: apt-get install libhiredis-dev)"
    exit 77
fi

rcli() { redis-cli -p "$REDIS_PORT" "$@"; }
redis_up() { [[ $(rcli ping 2>/dev/null) == PONG ]]; }

# start_redis — a redis-server on a free port ($REDIS_PORT, $URL), stopped by the EXIT trap.
PIDS=()
cleanup() {
    stop_pids "${PIDS[@]}"
}
start_redis() {
    trap cleanup EXIT
    for _ in 1 2 3; do
        REDIS_PORT=$(free_port) || fail "no free port"
        redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
            --daemonize no --dir "$T" >redis.log 2>&1 &
        local pid=$!
        if wait_until 10 redis_up; then
            PIDS+=("$pid")
            URL=redis://127.0.0.1:$REDIS_PORT
            return 0
        fi
        kill -KILL "$pid" 2>/dev/null || true
    done
    fail "redis-server did not start: $(tail -5 redis.log)"
}

# indices: the "<i>" of each len32 record on stdin, one per line (for messages).
indices() {
    perl -e 'binmode STDIN; local $/; my $d = <STDIN>; my $o = 0;
        while ($o + 4 <= length $d) { my $n = unpack("N", substr($d, $o, 4));
            my ($i) = substr($d, $o + 4, $n) =~ /^(\d+):/; print "$i\n"; $o += 4 + $n }'
}
last_id() { rcli --raw XREVRANGE "$1" + - COUNT 1 | head -1; }
first_id() { rcli --raw XRANGE "$1" - + COUNT 1 | head -1; }

t_records_go_out_and_come_back_byte_for_byte_and_the_reader_shows_the_progress() {
    start_redis
    gen 0 2000 >data
    $APPEND --framing=len32 q <data
    expect_code 0 "$BRIDGE" -v q "$URL/s"
    expect_eq xlen 2000 "$(rcli XLEN s)"
    expect_eq "first id" 0-1 "$(first_id s)"
    expect_eq "last id" 1999-1 "$(last_id s)"
    # The fields: data (the bytes), seq, ts (ns), queue (the queue's identity).
    printf 'hello world\n' | $APPEND q0
    expect_code 0 "$BRIDGE" q0 "$URL/s0"
    local id
    id=$($BIN/chronicle-queue info q0 --json | sed -n 's/.*"id":"\([0-9a-f]*\)".*/\1/p')
    [[ -n $id ]] || fail "no queue id"
    expect_eq entry "0-1 data hello world seq 0 ts queue $id" \
        "$(rcli --raw XRANGE s0 - + | grep -v '^[0-9]\{19\}$' | tr '\n' ' ' | sed 's/ $//')"
    # chronicle-readers shows the bridge as a reader that has caught up.
    expect_eq position 2000 "$(reader_pos q bridge)"
    $READERS q | grep -q '^bridge ' || fail "chronicle-readers does not list the bridge"
    # Again: nothing to send, the stream is unchanged.
    expect_code 0 "$BRIDGE" q "$URL/s"
    expect_eq "xlen again" 2000 "$(rcli XLEN s)"
    # Back into a queue through a consumer group: the same bytes, in the same order.
    expect_code 0 "$BRIDGE" -v "$URL/s" q2
    cmp data <($TAIL --format=len32 q2) || fail "the records that came back differ"
    expect_eq pending 0 "$(rcli XPENDING s bridge | head -1)"
    # Again: the group has delivered everything; nothing is appended twice.
    expect_code 0 "$BRIDGE" "$URL/s" q2
    cmp data <($TAIL --format=len32 q2) || fail "a second run into the queue appended again"
}

t_a_replay_after_the_cursor_was_moved_back_is_neither_sent_twice_nor_a_hole() {
    start_redis
    gen 0 500 | $APPEND --framing=len32 q
    expect_code 0 "$BRIDGE" q "$URL/s"
    # The cursor moved back (as after a crash between XADD and the cursor store).
    $READERS q reset bridge --to-seq 100 >/dev/null
    gen 500 500 | $APPEND --framing=len32 q
    expect_code 0 "$BRIDGE" -v q "$URL/s"
    grep -q ': 500 records accepted, 0 refused as already there, 400 skipped' err ||
        fail "expected 500 sent and 400 skipped: $(cat err)"
    expect_eq xlen 1000 "$(rcli XLEN s)"
    expect_eq "last id" 999-1 "$(last_id s)"
    expect_code 0 "$BRIDGE" "$URL/s" q2
    cmp <(gen 0 1000) <($TAIL --format=len32 q2) || fail "the stream is not the queue"
}

t_refusals_are_one_clear_line_and_the_shared_exit_codes() {
    start_redis
    echo x | $APPEND q
    rcli SET str x >/dev/null
    expect_code 1 "$BRIDGE" q "$URL/str"
    grep -q 'WRONGTYPE' err || fail "no WRONGTYPE: $(cat err)"
    expect_eq "one line" 1 "$(wc -l <err)"
    expect_code 1 "$BRIDGE" "$URL/str" q2
    grep -q 'WRONGTYPE' err || fail "no WRONGTYPE into a queue: $(cat err)"
    # A stream that holds another producer's entries.
    rcli XADD foreign '*' a b >/dev/null
    expect_code 1 "$BRIDGE" q "$URL/foreign"
    grep -q 'did not come from this queue' err || fail "foreign stream: $(cat err)"
    # An entry without the data field, on the way in: a data error naming the entry.
    expect_code 7 "$BRIDGE" "$URL/foreign" q3
    grep -q "has no field 'data'" err || fail "no field: $(cat err)"
    # No permission (an ACL user that may only read), a wrong password.
    rcli ACL SETUSER ro on '>pw' '~*' '+@read' '+ping' >/dev/null
    expect_code 1 "$BRIDGE" "q" "redis://ro:pw@127.0.0.1:$REDIS_PORT/s2"
    grep -q 'NOPERM' err || fail "no NOPERM: $(cat err)"
    expect_code 1 "$BRIDGE" "q" "redis://ro:wrong@127.0.0.1:$REDIS_PORT/s2"
    grep -q 'WRONGPASS' err || fail "no WRONGPASS: $(cat err)"
    # A dead server: retried with back-off, then exit 6 (timeout).
    local dead
    dead=$(free_port)
    expect_code 6 "$BRIDGE" --retry-for 500ms q "redis://127.0.0.1:$dead/s"
    grep -q 'gave up after' err || fail "no give-up line: $(cat err)"
    # Usage and not found.
    expect_code 2 "$BRIDGE" q q2
    expect_code 2 "$BRIDGE" "$URL/s" "$URL/t"
    expect_code 2 "$BRIDGE" q "$URL/"
    expect_code 2 "$BRIDGE" q "kafka://127.0.0.1:1/x"
    expect_code 2 "$BRIDGE" --group g q "$URL/s"
    expect_code 3 "$BRIDGE" nope "$URL/s"
}

t_sigterm_stops_a_following_bridge_with_its_cursor_stored() {
    start_redis
    gen 0 300 | $APPEND --framing=len32 q
    "$BRIDGE" -f q "$URL/s" 2>bridge.err &
    local pid=$!
    wait_until 30 eval '[[ $(reader_pos q bridge) == 300 ]]' || fail "the bridge did not catch up"
    gen 300 10 | $APPEND --framing=len32 q
    wait_until 30 eval '[[ $(rcli XLEN s) == 310 ]]' || fail "the bridge did not follow"
    kill -TERM "$pid"
    local rc=0
    wait "$pid" || rc=$?
    expect_eq "exit status" 143 "$rc"
    expect_eq position 310 "$(reader_pos q bridge)"
    # The way in, following, stops the same way.
    "$BRIDGE" -f "$URL/s" q2 2>in.err &
    pid=$!
    wait_until 30 eval '[[ $(head_seq q2) == 310 ]]' ||
        fail "the bridge into q2 did not catch up"
    kill -TERM "$pid"
    rc=0
    wait "$pid" || rc=$?
    expect_eq "exit status in" 143 "$rc"
    expect_eq pending 0 "$(rcli XPENDING s bridge | head -1)"
}

# The issue's loop: 10^5 records flow into the queue while the bridge is killed with -9 (at
# least 30 times, at random moments) and its connection is killed by the server
# (CLIENT KILL); then one last run to the end. The stream must hold every record once, in
# order, byte for byte.
t_kill_9_and_client_kill_in_a_loop_leave_no_hole_and_no_duplicate() {
    start_redis
    local total=100000 rounds=40 per=2500 i pid appender kills=0 client_kills=0 midway=0
    gen 0 "$per" | $APPEND --framing=len32 q
    "$BRIDGE" -f --batch 500 q "$URL/s" 2>>bridge.err &
    pid=$!
    for ((i = 1; i < rounds; i++)); do
        # The kill lands while this chunk is being appended and bridged, or just after.
        gen $((i * per)) "$per" | $APPEND --framing=len32 q &
        appender=$!
        sleep "0.0$((RANDOM % 10))"
        # In flight: the stream is behind the queue at the moment of the kill.
        (($(rcli XLEN s) < $(head_seq q))) && midway=$((midway + 1))
        if ((i % 4 == 0)); then
            rcli CLIENT KILL TYPE normal >/dev/null
            client_kills=$((client_kills + 1))
        else
            kill -9 "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
            kills=$((kills + 1))
            "$BRIDGE" -f --batch 500 q "$URL/s" 2>>bridge.err &
            pid=$!
        fi
        wait "$appender" || fail "an append failed"
    done
    sleep "0.$((RANDOM % 10))"
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    kills=$((kills + 1))
    echo "    $kills kill -9, $client_kills CLIENT KILL ($midway with the stream behind the queue); stream at $(rcli XLEN s) of $total when the loop ended"
    ((kills >= 30)) || fail "only $kills kills"
    expect_code 0 "$BRIDGE" -v --batch 500 q "$URL/s"
    expect_eq xlen "$total" "$(rcli XLEN s)"
    expect_eq "first id" 0-1 "$(first_id s)"
    expect_eq "last id" $((total - 1))-1 "$(last_id s)"
    expect_eq position "$total" "$(reader_pos q bridge)"
    # Every record once, in order, byte for byte: read the stream back into a queue.
    expect_code 0 "$BRIDGE" --batch 5000 "$URL/s" back
    gen 0 "$total" >expected
    cmp expected <($TAIL --format=len32 q) || fail "the source queue is not what was appended"
    cmp expected <($TAIL --format=len32 back) || fail "the stream does not hold every record once, in order"
    if grep -v 'note: ' bridge.err | grep -q .; then fail "unexpected errors: $(grep -v 'note: ' bridge.err | head -3)"; fi
}

# The way in under the same treatment, while entries flow into the stream (a bridge out of
# `src`, following, fed in chunks): CLIENT KILL alone loses nothing and duplicates nothing
# (the bridge remembers what it committed); kill -9 may append at most one batch again per
# kill (at-least-once), never loses an entry, and keeps the order of first arrival.
t_into_a_queue_client_kill_is_exactly_once_and_kill_9_at_least_once_within_a_batch() {
    start_redis
    local chunk=1000 i pid feeder kills=0 batch=200 n=0
    feed() { seq "$n" $((n + chunk - 1)) | $APPEND src; n=$((n + chunk)); }
    feed
    "$BRIDGE" -f src "$URL/s" 2>feeder.err &
    feeder=$!
    PIDS+=("$feeder")
    # CLIENT KILL only.
    "$BRIDGE" -f --batch "$batch" --group g1 "$URL/s" q1 2>>in1.err &
    pid=$!
    for ((i = 0; i < 15; i++)); do
        feed
        sleep "0.0$((RANDOM % 10))"
        rcli CLIENT KILL TYPE normal >/dev/null
    done
    wait_until 60 eval '[[ $($TAIL q1 | wc -l) -ge '"$n"' ]]' || fail "q1 did not get every entry"
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null || true
    cmp <(seq 0 $((n - 1))) <($TAIL q1) || fail "CLIENT KILL: q1 is not every entry once, in order"
    # kill -9 in a loop.
    "$BRIDGE" -f --batch "$batch" --group g2 "$URL/s" q2 2>>in2.err &
    pid=$!
    for ((i = 0; i < 30; i++)); do
        feed
        sleep "0.0$((RANDOM % 10))"
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        kills=$((kills + 1))
        "$BRIDGE" -f --batch "$batch" --group g2 "$URL/s" q2 2>>in2.err &
        pid=$!
    done
    wait_until 60 eval '[[ $(rcli XLEN s) == '"$n"' ]]' || fail "the feeder did not forward every record"
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null || true
    expect_code 0 "$BRIDGE" --batch "$batch" --group g2 "$URL/s" q2
    $TAIL q2 >got
    # Every entry; first arrivals in order; the extra ones at most one batch per kill.
    cmp <(seq 0 $((n - 1))) <(awk '!seen[$0]++' got) || fail "kill -9: an entry is missing or out of order"
    local extra=$(($(wc -l <got) - n))
    echo "    into a queue: $n entries, $kills kill -9, $extra records appended twice (bound $((kills * batch)))"
    ((extra <= kills * batch)) || fail "$extra duplicates, more than one batch per kill"
    expect_eq pending 0 "$(rcli XPENDING s g2 | head -1)"
    if grep -v 'note: ' in1.err in2.err feeder.err | grep -q .; then
        fail "unexpected errors: $(grep -v 'note: ' in1.err in2.err feeder.err | head -3)"
    fi
}

# The man page renders without a warning and documents every option of --help; each
# shell's completion loads and knows the bridge.
t_man_page_and_completions_cover_the_bridge() {
    local src opts missing=() o text
    src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
    text=$(MANWIDTH=80 MANPAGER=cat man -l "$src/man/chronicle-bridge.1" 2>man.err |
        sed -e 's/.\x08//g' | awk '$0 == "OPTIONS" { f = 1; next } /^[A-Z][A-Z ]*$/ { f = 0 } f')
    [[ ! -s man.err ]] || fail "man warns: $(cat man.err)"
    opts=$("$BRIDGE" --help | grep -oE '^ +-[-[:alnum:],]+' | tr ',' '\n' | tr -d ' ' | grep . | sort -u)
    for o in $opts; do grep -qE -- "(^|[^[:alnum:]-])$o([^[:alnum:]-]|\$)" <<<"$text" || missing+=("$o"); done
    ((${#missing[@]} == 0)) || fail "chronicle-bridge.1 does not document: ${missing[*]}"
    # bash: the function, every option offered.
    local offered
    offered=$(bash --norc --noprofile -c '
        source "$1"
        COMP_WORDS=(chronicle-bridge -); COMP_CWORD=1; COMPREPLY=()
        _chronicle_bridge
        printf "%s\n" "${COMPREPLY[@]}"' bash "$src/completions/chronicle.bash")
    for o in $opts; do grep -qxF -- "$o" <<<"$offered" || missing+=("$o"); done
    ((${#missing[@]} == 0)) || fail "bash completion does not offer: ${missing[*]}"
    expect_eq "zsh #compdef" "#compdef chronicle-bridge" "$(head -1 "$src/completions/_chronicle-bridge")"
    if command -v zsh >/dev/null; then zsh -n "$src/completions/_chronicle-bridge" || fail "zsh: syntax"; fi
    for o in $opts; do
        [[ $o == --* ]] || continue
        grep -qE -- "$o(\\[|=\\[|\\})" "$src/completions/_chronicle-bridge" || missing+=("$o")
    done
    ((${#missing[@]} == 0)) || fail "zsh completion does not offer: ${missing[*]}"
    if command -v fish >/dev/null; then
        offered=$(fish --no-config -c "source $src/completions/chronicle.fish; complete -C 'chronicle-bridge --'")
        for o in $opts; do
            [[ $o == --* ]] || continue
            grep -q -- "^$o\b" <<<"$offered" || missing+=("$o")
        done
        ((${#missing[@]} == 0)) || fail "fish completion does not offer: ${missing[*]}"
    fi
}

# The server killed with -9 and started again (with its append-only file, fsync always):
# a following bridge retries with back-off meanwhile, then carries on; nothing is lost or
# doubled, both ways.
t_a_server_killed_and_restarted_is_retried_and_nothing_is_lost_or_doubled() {
    start_redis
    local port=$REDIS_PORT pid back i
    # Again on the same port, now with persistence.
    kill -KILL "${PIDS[0]}"
    wait "${PIDS[0]}" 2>/dev/null || true
    wait_until 10 eval '! redis_up' || fail "redis-server did not die"
    persistent() {
        redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly yes \
            --appendfsync always --daemonize no --dir "$T" >>redis.log 2>&1 &
        PIDS+=("$!")
        wait_until 20 redis_up || fail "redis-server did not start again: $(tail -5 redis.log)"
    }
    persistent
    gen 0 5000 | $APPEND --framing=len32 q
    "$BRIDGE" -f --batch 200 q "$URL/s" 2>>bridge.err &
    pid=$!
    "$BRIDGE" -f --batch 200 "$URL/s" back 2>back.err &
    back=$!
    for i in 1 2 3; do
        kill -KILL "${PIDS[-1]}"
        wait "${PIDS[-1]}" 2>/dev/null || true
        # Records while the server is down: the bridge out tries, fails and backs off.
        gen $((i * 5000)) 5000 | $APPEND --framing=len32 q
        wait_until 30 grep -q "retrying in" bridge.err || fail "no back-off note: $(cat bridge.err)"
        : >bridge.err
        kill -0 "$pid" || fail "the bridge out exited while the server was down: $(cat bridge.err)"
        kill -0 "$back" || fail "the bridge in exited while the server was down: $(cat back.err)"
        persistent
    done
    wait_until 60 eval '[[ $(reader_pos q bridge) == 20000 ]]' || fail "the bridge out did not catch up: $(tail -3 bridge.err)"
    wait_until 60 eval '[[ $(head_seq back) -ge 20000 ]]' || fail "the bridge in did not catch up: $(tail -3 back.err)"
    kill -TERM "$pid" "$back"
    wait "$pid" 2>/dev/null || true
    wait "$back" 2>/dev/null || true
    expect_eq xlen 20000 "$(rcli XLEN s)"
    cmp <(gen 0 20000) <($TAIL --format=len32 back) ||
        fail "the way back lost or doubled a record: $(head_seq back) records; first differences: $(
            diff <(gen 0 20000 | indices) <($TAIL --format=len32 back | indices) | head -5 | tr '\n' ' '
        ); $(tail -3 back.err)"
}

run_tests
