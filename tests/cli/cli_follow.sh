#!/usr/bin/env bash
# Black-box tests of chronicle-tail --follow and the wake path, as a user runs them.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

lines_in() { [[ -f "$1" && $(wc -l <"$1") -ge $2 ]]; }

t_follow_prints_records_as_they_arrive() {
    echo first | $APPEND q
    $TAIL -f q >out &
    local pid=$!
    wait_for 'lines_in out 1' || fail "first record not printed"
    echo second | $APPEND q
    wait_for 'lines_in out 2' || fail "second record not printed while following"
    printf 'third\nfourth\n' | $APPEND --segment-size 16K q
    wait_for 'lines_in out 4' || fail "batch not printed"
    kill $pid
    wait $pid || true
    expect_eq out "$(printf 'first\nsecond\nthird\nfourth')" "$(cat out)"
}

t_follow_ends_when_its_output_pipe_closes_even_while_idle() {
    echo x | $APPEND q
    mkfifo in
    $APPEND q <in &
    local writer=$!
    exec 3>in
    local start end
    start=$(date +%s%N)
    # head exits after the third record; tail must notice at once although it is idle.
    ( $TAIL -f --from-seq 1 q | head -n 3 >out ) 3>&- &
    local pipeline=$!
    for i in 1 2 3; do
        echo "r$i" >&3
        sleep 0.2
    done
    wait_for 'lines_in out 3' || fail "records not followed"
    local i
    for ((i = 0; i < 40; i++)); do
        kill -0 $pipeline 2>/dev/null || break
        sleep 0.05
    done
    kill -0 $pipeline 2>/dev/null && fail "chronicle-tail -f did not exit after head closed the pipe"
    end=$(date +%s%N)
    exec 3>&-
    wait $writer
    expect_eq out "$(printf 'r1\nr2\nr3')" "$(cat out)"
    (( (end - start) < 5000000000 )) || fail "took $(( (end - start) / 1000000 )) ms"
}

t_until_writer_exits_prints_everything_then_stops() {
    mkfifo in
    $APPEND q <in &
    local writer=$!
    exec 3>in
    echo a >&3
    wait_for '[[ -n "$($TAIL q)" ]]' || fail "writer did not start"
    $TAIL -f --until-writer-exits q >out 3>&- &  # must not hold the FIFO's write end
    local tail=$!
    echo b >&3
    echo c >&3
    exec 3>&-
    wait $writer
    local i
    for ((i = 0; i < 100; i++)); do kill -0 $tail 2>/dev/null || break; sleep 0.05; done
    kill -0 $tail 2>/dev/null && fail "still following after the writer exited"
    wait $tail || fail "exit status $?"
    expect_eq out "$(printf 'a\nb\nc')" "$(cat out)"
}

t_until_writer_exits_without_writer_ends_at_once() {
    seq 1 3 | $APPEND q
    expect_eq out "$(seq 1 3)" "$(timeout 5 $TAIL -f --until-writer-exits q)"
}

t_idle_timeout_exits_with_code_6() {
    seq 1 2 | $APPEND q
    local start=$(date +%s%N)
    expect_code 6 $TAIL -f --timeout 300ms q
    local ms=$(( ($(date +%s%N) - start) / 1000000 ))
    (( ms >= 250 && ms < 5000 )) || fail "timeout took $ms ms"
    expect_eq printed "$(seq 1 2)" "$(cat "$T/out")"
    grep -q "no record for 300ms" "$T/err" || fail "message: $(cat "$T/err")"
}

t_parked_follower_uses_no_cpu() {
    if ! $TAIL --version | grep -q "notifier: linux"; then
        echo "    skip: the portable notifier polls by design"
        return 0
    fi
    echo x | $APPEND q
    $TAIL -f q >/dev/null &
    local pid=$!
    # Parked: registered, then a moment to reach its wait (start-up CPU is not the question).
    wait_for 'compgen -G "q/readers/*.efd" >/dev/null' || fail "no registration"
    sleep 0.3
    local before after
    before=$(awk '{print $14 + $15}' /proc/$pid/stat)
    sleep 2
    after=$(awk '{print $14 + $15}' /proc/$pid/stat)
    kill $pid
    wait $pid || true
    expect_eq cpu_ticks "$before" "$after"
}

t_terminated_follower_removes_its_registration() {
    echo x | $APPEND q
    $TAIL -f q >/dev/null &
    local pid=$!
    wait_for 'compgen -G "q/readers/*.efd" >/dev/null' || fail "no registration"
    ls q/readers | grep -q '\.efd$' || fail "no .efd: $(ls q/readers)"
    kill -TERM $pid
    local rc=0
    wait $pid || rc=$?
    expect_eq exit 143 "$rc"
    expect_eq readers "" "$(ls q/readers)"
}

t_sigterm_at_any_moment_ends_the_follower() {
    # A signal arriving just before the follower blocks must not be lost.
    echo x | $APPEND q
    local i pid rc
    for i in $(seq 1 20); do
        $TAIL -f q >/dev/null &
        pid=$!
        sleep "0.0$((i % 10))"
        kill -TERM $pid
        for _ in $(seq 40); do kill -0 $pid 2>/dev/null || break; sleep 0.05; done
        kill -0 $pid 2>/dev/null && fail "round $i: still running 2 s after SIGTERM"
        rc=0
        wait $pid || rc=$?
        expect_eq "round $i exit" 143 "$rc"
    done
    expect_eq readers "" "$(ls q/readers)"
}

t_named_follower_resumes_after_kill_9() {
    seq 1 5 | $APPEND q
    $TAIL -f --reader r q >out &
    local pid=$!
    wait_for 'lines_in out 5' || fail "not followed"
    kill -9 $pid
    wait $pid 2>/dev/null || true
    seq 6 8 | $APPEND q
    # At-least-once: a restart prints at most the records not yet stored, nothing earlier.
    local again
    again=$($TAIL --reader r q)
    expect_eq resumed "$(seq 6 8)" "$again"
}

t_followers_are_woken_through_the_fifo_fallback() {
    echo x | $APPEND q
    $TAIL -f --from-seq 1 q >out &
    local pid=$!
    wait_for '[[ -n "$(ls q/readers/*.efd 2>/dev/null)" ]]' || fail "no registration"
    mkfifo in
    $APPEND --wake-via-fifo q <in &
    local writer=$!
    exec 3>in
    echo via-fifo >&3
    wait_for 'lines_in out 1' || fail "not woken through the FIFO"
    exec 3>&-
    wait $writer
    kill $pid
    wait $pid || true
    expect_eq out via-fifo "$(cat out)"
}

t_follower_survives_a_writer_restart() {
    echo one | $APPEND q
    $TAIL -f q >out &
    local pid=$!
    wait_for 'lines_in out 1' || fail "not followed"
    for i in two three four; do
        echo $i | $APPEND q  # a new writer process each time
    done
    wait_for 'lines_in out 4' || fail "records of later writers not followed: $(cat out)"
    kill $pid
    wait $pid || true
}

t_many_followers_all_see_one_append() {
    echo start | $APPEND q
    local pids=() i
    for i in $(seq 1 16); do
        $TAIL -f --from-seq 1 q >"out$i" &
        pids+=($!)
    done
    wait_for '[[ $(ls q/readers/*.efd 2>/dev/null | wc -l) -eq 16 ]]' || fail "not all registered"
    echo ping | $APPEND q
    for i in $(seq 1 16); do
        wait_for 'lines_in "out$i" 1' || fail "follower $i not woken"
    done
    kill "${pids[@]}"
    wait "${pids[@]}" 2>/dev/null || true
}

t_read_only_queue_is_read_and_followed_by_polling() {
    if ! unshare -m true 2>/dev/null; then
        echo "    skip: cannot make a mount namespace here (needs root)"
        return 0
    fi
    seq 1 2 | $APPEND q
    # The queue seen through a read-only bind mount, in a private mount namespace.
    unshare -m bash -c "mount --bind '$T/q' '$T/q' && mount -o remount,ro,bind '$T/q' &&
        '$TAIL' '$T/q' >'$T/plain' && exec '$TAIL' -f '$T/q'" >out 2>err &
    local pid=$!
    wait_for 'lines_in out 2' || fail "not read: $(cat err)"
    expect_eq plain "$(seq 1 2)" "$(cat plain)"
    echo 3 | $APPEND q
    wait_for 'lines_in out 3' || fail "not followed: $(cat err)"
    kill $pid
    wait $pid || true
    grep -q "following by polling" err || fail "no note: $(cat err)"
    expect_eq no_registration "" "$(ls q/readers)"
}

t_follow_without_a_start_shows_the_last_10_then_follows_as_tail_f() {
    seq 1 100 | $APPEND q
    local rc=0
    out=$($TAIL -f --timeout 300ms q) || rc=$?
    expect_eq "exit (timeout)" 6 "$rc"
    expect_eq "-f" "$(seq 91 100)" "$out"
    out=$($TAIL -f -n all --timeout 300ms q) || true
    expect_eq "-f -n all" "$(seq 1 100)" "$out"
    out=$($TAIL -f --from-start --timeout 300ms q) || true
    expect_eq "-f --from-start" "$(seq 1 100)" "$out"
    out=$($TAIL -f -n 3 --timeout 300ms q) || true
    expect_eq "-f -n 3" "$(seq 98 100)" "$out"
    out=$($TAIL -f -n +95 --timeout 300ms q) || true
    expect_eq "-f -n +95" "$(seq 95 100)" "$out"
    # A named reader resumes from its cursor (a new one starts at the first record).
    out=$($TAIL -f --reader r -c 50 q)
    expect_eq "new reader" "$(seq 1 50)" "$out"
    out=$($TAIL -f --reader r --timeout 300ms q) || true
    expect_eq "resumed reader" "$(seq 51 100)" "$out"
}

# wait_lines FILE N: until FILE has N lines (20 s at most).
wait_lines() {
    local i
    for i in $(seq 200); do
        [[ -f $1 && $(wc -l <"$1") -ge $2 ]] && return 0
        sleep 0.1
    done
    fail "$1: $(wc -l <"$1" 2>/dev/null) lines, expected $2; $(cat "$1" 2>/dev/null | tail -3)"
}

t_F_waits_for_the_queue_and_follows_it_across_a_replacement() {
    $TAIL -F q >out 2>err &
    local pid=$! rc=0
    wait_lines err 1
    grep -q "queue q does not exist; waiting for it to appear (--retry)" err || fail "$(cat err)"
    seq 1 3 | $APPEND q
    wait_lines out 3
    grep -q "note: queue q is there; following it" err || fail "$(cat err)"
    rm -rf q
    seq 4 5 | $APPEND q
    wait_lines out 5
    expect_eq records "$(seq 1 5)" "$(cat out)"
    grep -q "queue q was removed while being followed.*following it again when it is back" err || fail "$(cat err)"
    kill -TERM $pid
    wait $pid || rc=$?
    expect_eq exit 143 "$rc"
}

t_F_with_a_named_reader_starts_the_new_queue_at_its_first_record() {
    seq 1 3 | $APPEND q
    $TAIL -F --reader r q >out 2>err &
    local pid=$!
    wait_lines out 3
    rm -rf q
    mkdir q2 && seq 4 6 | $APPEND q2 && mv q2 q # replaced at once, by a queue with records
    wait_lines out 6
    expect_eq records "$(seq 1 6)" "$(cat out)"
    kill -TERM $pid
    wait $pid || true
    expect_eq position 3 "$($READERS q --json | jq '.readers[] | select(.name == "r") | .position')"
}

t_retry_without_follow_waits_for_the_queue_then_prints_it_and_exits() {
    ($TAIL --retry q >out 2>err; echo $? >rc) &
    wait_lines err 1
    # The queue appears with its records at once: made aside, then renamed into place (a
    # writer creating q in place could be seen empty, and an empty queue prints nothing).
    mkdir q2 && seq 1 3 | $APPEND q2 && mv q2 q
    wait_lines rc 1
    expect_eq exit 0 "$(cat rc)"
    expect_eq records "$(seq 1 3)" "$(cat out)"
}

t_without_F_a_missing_queue_is_an_error_at_once() {
    expect_code 3 timeout 10 $TAIL -f q
    grep -q "does not exist" "$T/err" || fail "$(cat "$T/err")"
}

t_several_queues_print_under_headers_as_tail_does() {
    seq 1 3 | $APPEND a
    seq 11 12 | $APPEND b
    expect_eq plain "$(printf '==> a <==\n1\n2\n3\n\n==> b <==\n11\n12')" "$($TAIL a b)"
    expect_eq "-q -n 1" "$(printf '3\n12')" "$($TAIL -q -n 1 a b)"
    expect_eq "-v" "$(printf '==> a <==\n3')" "$($TAIL -v -n 1 a)"
    # Following: a header whenever the output moves to the other queue.
    $TAIL -f a b >out &
    local pid=$!
    wait_lines out 8
    echo 4 | $APPEND a
    wait_lines out 11
    echo 13 | $APPEND b
    wait_lines out 14
    kill -TERM $pid
    wait $pid || true
    expect_eq follow "$(printf '==> a <==\n1\n2\n3\n\n==> b <==\n11\n12\n\n==> a <==\n4\n\n==> b <==\n13')" "$(cat out)"
    # --until-writer-exits: once neither queue has a writer.
    mkfifo in
    $APPEND b <in &
    exec 3>in
    for i in $(seq 100); do [[ $($READERS b --json | jq '.queue.writer.pids | length') == 1 ]] && break; sleep 0.1; done
    ($TAIL -f --until-writer-exits -q -n 0 a b >uw 3>&-; echo $? >uw.rc) 3>&- &
    # -n 0 starts at the end: 14 must come after the follower has opened both queues.
    wait_for 'compgen -G "a/readers/*.efd" >/dev/null && compgen -G "b/readers/*.efd" >/dev/null' ||
        fail "the follower of a and b did not register"
    echo 14 >&3
    exec 3>&-
    wait_lines uw.rc 1
    expect_eq "until-writer-exits" "0 14" "$(cat uw.rc) $(cat uw)"
    expect_code 2 $TAIL --reader r a b
    grep -q "several queues: one at a time with --reader" "$T/err" || fail "$(cat "$T/err")"
    expect_code 3 $TAIL a missing
}

t_usage_errors_name_the_word_at_fault() {
    seq 1 3 | $APPEND q
    expect_code 2 $TAIL --bogus q
    grep -q "unknown option '--bogus'" "$T/err" || fail "$(cat "$T/err")"
    expect_code 2 $READERS q list x y
    grep -q "unexpected arguments 'x', 'y'" "$T/err" || fail "$(cat "$T/err")"
    expect_code 2 $TAIL -n -3 q
    grep -q -- "--lines: '-3'" "$T/err" || fail "$(cat "$T/err")"
}

t_sigterm_stops_a_follower_draining_a_long_backlog_at_once() {
    seq 1 20000000 | $APPEND q
    $TAIL -f -n all --reader r q >/dev/null &
    local pid=$! p=0 i
    for i in $(seq 300); do
        p=$($READERS --ndjson q show r 2>/dev/null | jq -r .position)
        ((p > 0)) && break
        sleep 0.02
    done
    # Stopped mid-backlog, a SIGTERM made pending, then let go: it must stop at its next
    # flush, not after the 20 million records (the signals are blocked outside its waits).
    kill -STOP $pid
    p=$($READERS --ndjson q show r | jq -r .position)
    kill -TERM $pid
    kill -CONT $pid
    local rc=0
    wait $pid || rc=$?
    expect_eq exit 143 "$rc"
    if ((p >= 20000000)); then
        echo "    note: the backlog was drained before the test could stop it"
        return 0
    fi
    local end
    end=$($READERS --ndjson q show r | jq -r .position)
    ((end - p < 100000)) || fail "went on from $p to $end after SIGTERM"
}

run_tests
