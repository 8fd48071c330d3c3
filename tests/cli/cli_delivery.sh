#!/usr/bin/env bash
# Black-box tests of delivery out of a queue: a named reader writing into a pipe commits
# only what the consumer read out of it (docs/DESIGN.md §6).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# position Q NAME: the named reader's stored position.
position() { $READERS --json "$1" | jq -r --arg n "$2" '.readers[] | select(.name == $n) | .position'; }

# Lines "1\n" .. "99\n" ...: the first 100 bytes hold records 1..36 whole (9 x 2 + 27 x 3 = 99).
t_a_consumer_that_reads_100_bytes_moves_the_cursor_past_36_records_only() {
    seq 1 100000 | $APPEND q
    $TAIL --reader r q | dd bs=100 count=1 status=none >/dev/null
    expect_eq position 36 "$(position q r)"
    expect_eq next 37 "$($TAIL --reader r -c 1 q)"
}

# The consumer starts late, when the pipe is full and the tool waits to write its next
# buffer. It reads 8 KiB (two of the pipe's pages, so room for 8 KiB more), stops reading
# and leaves later. The tool's write gets those 8 KiB out, waits for room, and fails when
# the consumer leaves. The 8 KiB that went out in that failed write count in the bytes
# written, since the pipe's unread bytes include them. (Not counting them committed
# nothing, and made the head -3 test below fail now and then.) Records 1..1859 fill the
# first 8192 bytes: 9 x 2 + 90 x 3 + 900 x 4 + 860 x 6 = 8148.
t_a_consumer_that_reads_late_and_leaves_later_moves_the_cursor_past_what_it_read() {
    seq 1 100000 | $APPEND q
    local opts
    for opts in "" "-f"; do
        $TAIL $opts --reader "r$opts" q |
            (sleep 0.3; dd bs=8192 count=1 iflag=fullblock status=none >/dev/null; sleep 0.3)
        expect_eq "position ($opts)" 1859 "$(position q "r$opts")"
    done
}

t_a_follower_into_a_pipe_commits_what_its_consumer_read_when_the_consumer_goes() {
    seq 1 100000 | $APPEND q
    $TAIL -f --reader f q | dd bs=100 count=1 status=none >/dev/null
    expect_eq position 36 "$(position q f)"
}

t_head_3_leaves_the_cursor_at_most_where_head_read_not_a_pipe_buffer_on() {
    seq 1 100000 | $APPEND q
    expect_eq printed "$(printf '1\n2\n3')" "$($TAIL --reader h q | head -3)"
    local p
    p=$(position q h)
    # head reads one buffer (a few KiB); the old rule committed everything written into
    # the 64 KiB pipe buffer (12,752 records on).
    ((p >= 3 && p < 4000)) || fail "position $p after head -3"
    expect_eq resumes "$((p + 1))" "$($TAIL --reader h -c 1 q)"
}

t_a_slow_consumer_gets_everything_and_the_cursor_reaches_the_end() {
    seq 1 100000 | $APPEND q
    expect_eq count 100000 "$($TAIL --reader s q | (sleep 0.5; wc -l))"
    expect_eq position 100000 "$(position q s)"
}

t_a_consumer_killed_mid_stream_gets_the_unread_records_again() {
    seq 1 200000 | $APPEND q
    mkfifo slow
    # The consumer reads 1000 lines, then stops reading and is killed: what it read counts
    # as delivered, what sat in the pipe does not.
    ($TAIL --reader k q >slow) &
    local tailpid=$!
    exec 3<slow
    local i line last=0
    for i in $(seq 1000); do read -r line <&3; last=$line; done
    sleep 0.3
    exec 3<&- # the consumer is gone
    wait $tailpid || true
    local p
    p=$(position q k)
    ((p >= last)) || fail "position $p is before the last line read ($last)"
    # bash's read takes a line at a time from a pipe (one byte per read): nothing more.
    expect_eq position "$last" "$p"
    expect_eq again "$((last + 1))" "$($TAIL --reader k -c 1 q)"
}

t_into_a_file_the_cursor_moves_when_the_output_is_written() {
    seq 1 1000 | $APPEND q
    $TAIL --reader w q >out.txt
    expect_eq position 1000 "$(position q w)"
    expect_eq lines 1000 "$(wc -l <out.txt)"
}

# ---------------------------------------------------------------------------------------
# --exec CMD: batches to a command, committed when it exits 0.

QUEUE_TOOL=$BIN/chronicle-queue

# wait_lines FILE LINES: until FILE has at least LINES lines (30 s at most).
wait_lines() {
    local i
    for i in $(seq 300); do
        [[ -f "$1" ]] && (($(wc -l <"$1") >= $2)) && return 0
        sleep 0.1
    done
    fail "$1 has $(wc -l <"$1" 2>/dev/null) lines, waited for $2"
}

# wait_for_file F: until F exists (30 s at most).
wait_for_file() {
    local i
    for i in $(seq 300); do
        [[ -e "$1" ]] && return 0
        sleep 0.1
    done
    fail "no $1 after 30 s"
}

t_exec_hands_batches_with_their_range_in_the_environment_and_commits_each() {
    seq 1 25 | $APPEND q
    $TAIL --reader x --batch 10 --exec \
        'echo "$CHRONICLE_FIRST_SEQ $CHRONICLE_LAST_SEQ $CHRONICLE_COUNT $CHRONICLE_QUEUE_ID" >>batches; cat >>got' q
    local id
    id=$($QUEUE_TOOL info --json q | jq -r .id)
    [[ "$id" =~ ^[0-9a-f]{32}$ ]] || fail "queue id [$id]"
    expect_eq batches "$(printf '0 9 10 %s\n10 19 10 %s\n20 24 5 %s' "$id" "$id" "$id")" "$(cat batches)"
    expect_eq records "$(seq 1 25)" "$(cat got)"
    expect_eq position 25 "$(position q x)"
    # Nothing new: no batch, nothing run.
    $TAIL --reader x --exec 'echo ran >>again' q
    [[ ! -e again ]] || fail "ran a command on no records"
    # Without --reader: batches all the same, nothing remembered.
    $TAIL -n 3 --exec 'cat >>anon' q
    expect_eq anonymous "$(seq 23 25)" "$(cat anon)"
}

t_exec_bounds_a_batch_by_bytes_and_a_larger_record_goes_alone() {
    local line i
    line=$(printf 'x%.0s' $(seq 300))
    {
        for i in 1 2 3 4 5; do echo "$line"; done
        printf 'y%.0s' $(seq 5000)
        echo
        for i in 1 2; do echo "$line"; done
    } | $APPEND q
    # 301 bytes a line: 3 fit in 1 KiB; the 5001-byte record goes alone.
    $TAIL --reader b --batch-bytes 1K --exec 'echo $CHRONICLE_COUNT >>counts; cat >>got' q
    expect_eq counts "$(printf '3\n2\n1\n2')" "$(cat counts)"
    expect_eq bytes "$($TAIL q | md5sum)" "$(md5sum <got)"
    expect_eq position 8 "$(position q b)"
}

t_exec_gets_the_records_in_the_output_format_and_stops_at_count() {
    printf 'a\nb\nc\n' | $APPEND q
    $TAIL --json -c 2 --reader j --exec 'jq -r .payload >>got' q
    expect_eq payloads "$(printf 'a\nb')" "$(cat got)"
    expect_eq position 2 "$(position q j)"
    $TAIL -z --reader j --exec 'tr "\0" "|" >>got0' q
    expect_eq nul "c|" "$(cat got0)"
}

t_exec_a_failing_command_is_retried_then_the_tool_stops_with_the_cursor_before_the_batch() {
    seq 1 20 | $APPEND q
    $TAIL --reader r --batch 10 -c 10 --exec 'cat >/dev/null' q
    expect_eq position 10 "$(position q r)"
    expect_code 1 $TAIL --reader r --batch 10 --retries 2 --exec 'cat >>seen; exit 3' q
    grep -q "failed 3 times on records 10..19 (last: exit status 3); reader 'r' stays at sequence 10" "$T/err" ||
        fail "stderr: $(cat "$T/err")"
    expect_eq warnings 2 "$(grep -c 'again in' "$T/err")"
    expect_eq position 10 "$(position q r)"
    # The same batch each time.
    expect_eq tries "$(for i in 1 2 3; do seq 11 20; done)" "$(cat seen)"
    # A command killed by a signal, no retries.
    expect_code 1 $TAIL --reader r --retries 0 --exec 'kill -9 $$' q
    grep -q "failed 1 time on records 10..19 (last: killed by signal 9" "$T/err" ||
        fail "stderr: $(cat "$T/err")"
    expect_eq position 10 "$(position q r)"
}

t_exec_a_command_that_fails_at_random_delivers_every_record_at_least_once() {
    seq 1 3000 | $APPEND q
    # Fails at random (and always at the first try of the first batch), sometimes after
    # taking part of its input; never at its third try, to bound the time taken.
    cat >cmd.sh <<'EOF'
r=$(od -An -N1 -tu1 /dev/urandom | tr -d ' ')
if [ "$CHRONICLE_ATTEMPT" -lt 3 ] && { [ "$r" -lt 100 ] || [ "$CHRONICLE_FIRST_SEQ.$CHRONICLE_ATTEMPT" = 0.1 ]; }; then
    echo fail >>failures
    head -n $((r % 7)) >>got
    exit 1
fi
cat >>got
EOF
    $TAIL --reader z --batch 100 --exec 'sh ./cmd.sh' q 2>err.txt
    [[ -s failures ]] || fail "the command never failed"
    expect_eq every "$(seq 1 3000)" "$(sort -nu got)"
    expect_eq position 3000 "$(position q z)"
}

t_exec_a_killed_tail_never_skips_a_record() {
    seq 1 20000 | $APPEND q
    local i pid
    for i in $(seq 15); do
        $TAIL --reader k --batch 300 --exec 'cat >>got' q &
        pid=$!
        sleep "0.0$((RANDOM % 10))"
        kill -9 $pid 2>/dev/null || true
        wait $pid 2>/dev/null || true
    done
    $TAIL --reader k --batch 300 --exec 'cat >>got' q
    expect_eq every "$(seq 1 20000)" "$(sort -nu got)"
    expect_eq position 20000 "$(position q k)"
}

t_exec_sigterm_during_a_batch_commits_nothing() {
    seq 1 10 | $APPEND q
    $TAIL --reader t --exec 'cat >/dev/null; touch started; sleep 30' q &
    local pid=$! rc=0
    wait_for_file started
    local t0=$SECONDS
    kill -TERM $pid
    wait $pid || rc=$?
    expect_eq exit 143 "$rc"
    ((SECONDS - t0 < 10)) || fail "took $((SECONDS - t0)) s to stop"
    expect_eq position 0 "$(position q t)"
}

t_exec_following_runs_a_batch_when_it_is_full_or_when_it_has_lingered() {
    $APPEND q </dev/null
    # --linger 1h: only a full batch (3) runs.
    $TAIL -f --reader f --batch 3 --linger 1h --exec 'echo $CHRONICLE_COUNT >>counts; cat >>got' q &
    local f=$!
    # No linger: a batch runs as soon as everything committed is read.
    $TAIL -f --reader g --exec 'cat >>got_g' q &
    local g=$!
    echo 1 | $APPEND q
    wait_lines got_g 1
    echo 2 | $APPEND q
    wait_lines got_g 2
    echo 3 | $APPEND q
    wait_lines counts 1
    expect_eq counts 3 "$(cat counts)"
    expect_eq got "$(seq 3)" "$(cat got)"
    expect_eq got_g "$(seq 3)" "$(cat got_g)"
    echo 4 | $APPEND q
    wait_lines got_g 4
    kill -TERM $f $g
    local rc=0
    wait $f || rc=$?
    expect_eq "exit of f" 143 "$rc"
    # Record 4 was waiting for more in f's batch: not run, not committed.
    expect_eq "f position" 3 "$(position q f)"
    expect_eq "g position" 4 "$(position q g)"
    # --linger runs out: a lone record goes after DUR.
    $TAIL -f --reader h --linger 300ms --exec 'cat >>got_h' q &
    wait_lines got_h 4
    kill -TERM $!
}

t_exec_a_command_that_does_not_read_its_input_still_decides_by_its_exit_status() {
    seq 1 300000 | $APPEND q
    $TAIL --reader n --batch 1000000 --batch-bytes 4M --exec true q
    expect_eq position 300000 "$(position q n)"
    $TAIL --reader m --batch 1000000 --batch-bytes 4M --exec 'head -n 1 >>got' q
    expect_eq first 1 "$(cat got)"
    expect_eq position 300000 "$(position q m)"
}

t_exec_options_are_checked() {
    seq 1 3 | $APPEND q
    expect_code 2 $TAIL --batch 0 --exec cat q
    grep -q -- "--batch" "$T/err" || fail "stderr: $(cat "$T/err")"
    expect_code 2 $TAIL --batch -1 --exec cat q
    expect_code 2 $TAIL --batch-bytes 0 --exec cat q
    expect_code 2 $TAIL --linger 1s --exec cat q
    grep -q -- "--linger requires --follow" "$T/err" || fail "stderr: $(cat "$T/err")"
    expect_code 2 $TAIL --batch 5 q
    expect_code 2 $TAIL --retries -1 --exec cat q
    expect_code 2 $TAIL --exec '' q
}

run_tests
