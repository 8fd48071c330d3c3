#!/usr/bin/env bash
# Black-box tests of several chronicle-append processes on one queue (docs/DESIGN.md §4).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# check_producers FILE N M: FILE holds "<producer>:<n>" lines; every producer 1..N has
# exactly its lines 1..M, in order, and nothing else is there.
check_producers() {
    awk -F: -v n="$2" -v m="$3" '
        $0 !~ /^[0-9]+:[0-9]+$/ { print "torn or foreign line " NR ": " $0; bad = 1; exit }
        { if ($2 != last[$1] + 1) { print "producer " $1 ": " $2 " after " last[$1] " (line " NR ")"; bad = 1; exit }
          last[$1] = $2 }
        END { if (bad) exit 1
              for (p = 1; p <= n; p++) if (last[p] != m) { print "producer " p " ends at " last[p] ", not " m; exit 1 }
              if (length(last) != n) { print length(last) " producers, not " n; exit 1 } }' "$1"
}

# The issue's own words: 20 producers of 100,000 lines each, at once, with a follower.
t_twenty_producers_at_once_leave_every_line_once_in_order_and_a_follower_sees_them() {
    echo start | $APPEND q
    $TAIL -f --from-seq 1 -c 2000000 q >followed &
    local follower=$!
    local pids=() i
    for i in $(seq 1 20); do
        (seq 1 100000 | sed "s/^/$i:/" | $APPEND q) &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || fail "a producer failed (exit $?): $(cat "$T"/err 2>/dev/null)"; done
    $TAIL --from-seq 1 q >all
    expect_eq records 2000000 "$(wc -l <all)"
    check_producers all 20 100000 || fail "$(check_producers all 20 100000)"
    # The follower prints every one of them and ends (-c) by itself.
    local waited=0
    while kill -0 "$follower" 2>/dev/null && ((waited < 600)); do sleep 0.1; waited=$((waited + 1)); done
    kill -0 "$follower" 2>/dev/null && fail "the follower did not get all 2,000,000 records"
    wait "$follower" || fail "the follower exited $?"
    cmp -s all followed || fail "the follower saw another order than the queue holds"
}

t_long_records_from_several_producers_are_never_torn() {
    # Longer than PIPE_BUF and than the 1 MiB read: a FIFO fan-in would tear these.
    local i pids=()
    for i in 1 2 3 4; do
        (for n in $(seq 1 20); do
            printf '%s:%s:' "$i" "$n"
            head -c $((n * 30000)) /dev/zero | tr '\0' "$(printf "\\x$((40 + i))")"
            echo
        done | $APPEND q) &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i"; done
    expect_eq records 80 "$($TAIL q | wc -l)"
    $TAIL q | awk -F: '{ want = $2 * 30000; c = substr($3, 1, 1)
        if (length($3) != want || $3 !~ ("^[" c "]+$")) { print "record " NR " torn"; exit 1 } }' ||
        fail "a long record is torn"
}

t_exclusive_and_shared_refuse_each_other_naming_the_pid_and_wait_when_asked() {
    mkfifo in
    $APPEND q <in &
    local shared=$!
    exec 3>in
    echo one >&3
    for _ in $(seq 100); do [[ -n "$($TAIL q)" ]] && break; sleep 0.05; done
    echo two | $APPEND q # a second shared writer is welcome
    expect_code 4 $APPEND --exclusive q </dev/null
    grep -q "already has a writer (pid $shared)" "$T/err" || fail "message: $(cat "$T/err")"
    local t0=$SECONDS
    expect_code 4 $APPEND --exclusive --wait=1s q </dev/null
    ((SECONDS - t0 >= 1)) || fail "--wait=1s gave up at once"
    # --wait: the exclusive writer gets the queue once the shared one is gone.
    (echo three | $APPEND --exclusive --wait q) 3>&- &
    local waiter=$!
    sleep 0.3
    kill -0 $waiter 2>/dev/null || fail "--wait did not wait"
    exec 3>&-
    wait $shared
    wait $waiter || fail "the waiting exclusive writer exited $?"
    expect_eq all "$(printf 'one\ntwo\nthree')" "$($TAIL q)"
    # While an exclusive writer runs, shared ones are refused, naming it.
    mkfifo in2
    $APPEND --exclusive q <in2 &
    local ex=$!
    exec 4>in2
    for _ in $(seq 100); do grep -q "\"pid\":$ex" q/writer.lock 2>/dev/null && break; sleep 0.05; done
    expect_code 4 $APPEND q </dev/null
    grep -q "has an exclusive writer (pid $ex)" "$T/err" || fail "message: $(cat "$T/err")"
    exec 4>&-
    wait $ex
    echo four | $APPEND q
    expect_eq last four "$($TAIL -n 1 q)"
}

t_a_short_lived_producer_wakes_every_parked_follower_while_another_runs() {
    echo start | $APPEND q
    # A long-lived producer, named in writer.lock: the short one's exit wakes nobody.
    mkfifo in
    $APPEND q <in &
    local long=$!
    exec 3>in
    local i pids=()
    for i in $(seq 1 100); do
        $TAIL -f --from-seq 1 -c 1 q >"got.$i" 3>&- &
        pids+=($!)
    done
    # All registered and asleep (each sleep word is odd once it sleeps; a registration
    # is enough here: a follower registers before it first sleeps).
    for _ in $(seq 200); do
        (($(ls q/readers | grep -c '\.efd$') >= 100)) && break
        sleep 0.05
    done
    sleep 0.5
    echo wake | $APPEND q
    local waited=0
    for i in "${pids[@]}"; do
        while kill -0 "$i" 2>/dev/null && ((waited < 100)); do sleep 0.1; waited=$((waited + 1)); done
    done
    local asleep=0
    for i in "${pids[@]}"; do kill -0 "$i" 2>/dev/null && asleep=$((asleep + 1)); done
    expect_eq still_asleep_after_10s 0 "$asleep"
    expect_eq delivered 100 "$(cat got.* | grep -c '^wake$')"
    exec 3>&-
    wait $long
}

t_a_producer_killed_mid_stream_costs_the_others_nothing() {
    # kill -9 of producers while others go on: the others' lines are all there, in order;
    # the killed one's lines are a prefix of its input (whole batches).
    local pids=() i k
    for i in 1 2 3; do
        (seq 1 300000 | sed "s/^/$i:/" | $APPEND --segment-size 1M q) &
        pids+=($!)
    done
    for k in 4 5 6 7 8 9; do
        (seq 1 2000000 | sed "s/^/$k:/" | exec $APPEND --segment-size 1M q) 2>/dev/null &
        local victim=$!
        sleep 0.0$((RANDOM % 9 + 1))
        pkill -9 -P "$victim" chronicle-appen 2>/dev/null || true
        kill -9 "$victim" 2>/dev/null || true
        wait "$victim" 2>/dev/null || true
    done
    for i in "${pids[@]}"; do wait "$i" || fail "a surviving producer exited $?"; done
    # The last one killed may have held the append lock: the next writer clears its tail.
    echo 10:1 | $APPEND q
    $TAIL q >all
    awk -F: '$0 !~ /^[0-9]+:[0-9]+$/ { print "torn line " NR; exit 1 }
        { if ($2 != last[$1] + 1) { print "producer " $1 ": " $2 " after " last[$1]; exit 1 } last[$1] = $2 }
        END { for (p = 1; p <= 3; p++) if (last[p] != 300000) { print "producer " p " ends at " last[p]; exit 1 } }' all ||
        fail "$(awk -F: '{ if ($2 != last[$1] + 1) { print "producer " $1 ": " $2 " after " last[$1]; exit } last[$1] = $2 }' all)"
    $BIN/chronicle-queue verify q >/dev/null || fail "verify: $($BIN/chronicle-queue verify q)"
}

run_tests
