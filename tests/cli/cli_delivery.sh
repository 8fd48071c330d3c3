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

run_tests
