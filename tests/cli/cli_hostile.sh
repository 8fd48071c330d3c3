#!/usr/bin/env bash
# Black-box tests of the tools against a hostile or unlucky caller (issue 8): closed
# standard descriptors, signals while the output is blocked, file names that are not
# text, damaged cursor files, and bad option values. Every test is bounded in time.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

jqr() { jq -r "$@"; }

# The first 56 bytes of a segment header (magic .. seg_state): they never change once the
# segment is live.
seg_header() { head -c 56 "$1" | od -An -tx1 | tr -d ' \n'; }

# Checksums of every file in a queue directory (names and contents).
queue_sums() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 md5sum); }

# exit_within PID SECS: waits up to SECS seconds for PID (a child of this shell) to exit
# and sets $exited to its exit status; kills it (-9) and fails if it is still running.
# (Not in $(...): a subshell cannot wait for its parent's children.)
exit_within() {
    local pid=$1 secs=$2 i rc=0
    for ((i = 0; i < secs * 20; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -9 "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        fail "pid $pid still running ${secs}s after the signal"
    fi
    wait "$pid" || rc=$?
    exited=$rc
}

# blocked PID: the process catches SIGINT and SIGTERM (a tool past its start-up) and
# sleeps (with a backlog to print: blocked on its full output pipe).
blocked() {
    local cgt state
    cgt=$(awk '/^SigCgt:/ { print $2 }' "/proc/$1/status" 2>/dev/null) || return 1
    [[ -n $cgt ]] && (((16#$cgt & 0x4002) == 0x4002)) || return 1
    state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ $state == S ]]
}

# ------------------------------------------------------------- 1. closed descriptors

t_closed_std_fds_never_let_a_queue_file_become_stdout_or_stderr() {
    printf 'one\n\x01\x02bin\ntwo\n' | $APPEND q
    $TAIL --format len32 q >before
    local hdr
    hdr=$(seg_header q/00000000000000000000.seg)
    # Every combination of closed descriptors, for the writer: no record to append (stdin
    # closed or empty), so the queue must read back byte for byte as before.
    local r
    for r in '<&- >&- 2>&-' '<&-' '>&-' '2>&-' '<&- 2>&-' '>&- 2>&-' '<&- >&-'; do
        eval "timeout 10 $APPEND q </dev/null >/dev/null 2>/dev/null $r" || true
        expect_eq "header after append $r" "$hdr" "$(seg_header q/00000000000000000000.seg)"
        cmp before <($TAIL --format len32 q) || fail "records changed after append $r"
        jq -e .pid q/writer.lock >/dev/null || fail "writer.lock damaged after $r: $(cat -v q/writer.lock)"
    done
    # With standard output closed, the reading tools refuse at once and write nothing into
    # the queue (a named reader's cursor, say, must not receive its own output).
    $READERS q create named
    local sums
    sums=$(queue_sums q)
    for r in '<&- >&- 2>&-' '>&-' '>&- 2>&-' '<&- >&-'; do
        eval "timeout 10 $TAIL q 2>/dev/null $r" || true
        eval "timeout 10 $TAIL --reader named q 2>/dev/null $r" || true
        eval "timeout 10 $TAIL --reader fresh q 2>/dev/null $r" || true
        eval "timeout 10 $TAIL -f --timeout 200ms q 2>/dev/null $r" || true
        eval "timeout 10 $READERS q 2>/dev/null $r" || true
        eval "timeout 10 $READERS q --json 2>/dev/null $r" || true
        expect_eq "queue files after $r" "$sums" "$(queue_sums q)"
    done
    # Reading read-only with stdin or stderr closed: the same records, nothing written.
    for r in '<&-' '2>&-' '<&- 2>&-'; do
        eval "timeout 10 $TAIL --format len32 q >out $r" || true
        cmp before out || fail "tail with $r printed something else"
        eval "timeout 10 $READERS q >/dev/null $r" || true
        expect_eq "queue files after $r" "$sums" "$(queue_sums q)"
    done
    expect_eq named_position 0 "$($READERS q show named --json | jqr .position)"
}

t_closed_stdin_is_an_error_not_an_empty_input() {
    echo a | $APPEND q
    local rc=0
    $APPEND q <&- 2>err || rc=$?
    expect_eq rc 1 "$rc"
    grep -q "standard input" err || fail "message: $(cat err)"
    expect_eq records a "$($TAIL q)"
}

t_print_seq_into_a_closed_stdout_fails_and_writes_no_queue_file() {
    echo a | $APPEND q
    local hdr lock rc=0
    hdr=$(seg_header q/00000000000000000000.seg)
    echo b | $APPEND --print-seq q >&- 2>err || rc=$?
    expect_eq rc 1 "$rc"
    grep -q "standard output" err || fail "message: $(cat err)"
    jq -e .pid q/writer.lock >/dev/null || fail "writer.lock: $(cat -v q/writer.lock)"
    expect_eq lock_lines 1 "$(wc -l <q/writer.lock)"
    expect_eq header "$hdr" "$(seg_header q/00000000000000000000.seg)"
    # Refused before the queue was opened: nothing appended whose number was not printed.
    expect_eq records a "$($TAIL q)"
    # Both closed: the same, silently.
    rc=0
    echo c | $APPEND --print-seq q >&- 2>&- || rc=$?
    expect_eq rc_silent 1 "$rc"
    expect_eq records_after a "$($TAIL q)"
    jq -e .pid q/writer.lock >/dev/null || fail "writer.lock: $(cat -v q/writer.lock)"
}

# ------------------------------------------------- 2. signals while output is blocked

t_sigterm_while_blocked_writing_a_full_pipe_exits_143() {
    seq 1 300000 | $APPEND q
    mkfifo pipe
    local sig want pid
    for sig in TERM INT HUP; do
        case $sig in TERM) want=143 ;; INT) want=130 ;; HUP) want=129 ;; esac
        # A consumer that never reads: the follower fills the pipe and blocks in write.
        sleep 30 <pipe &
        local consumer=$!
        $TAIL -f q >pipe &
        pid=$!
        # It fills the pipe (64 KiB of 2 MB) and blocks writing.
        wait_for "blocked $pid" || fail "$sig: the follower did not block"
        kill -0 $pid || fail "$sig: the follower exited before the signal"
        kill -$sig $pid
        exit_within $pid 5
        expect_eq "exit status after SIG$sig" "$want" "$exited"
        kill $consumer 2>/dev/null || true
        wait $consumer 2>/dev/null || true
        # It cleaned up as on any other signal: no registration left behind.
        expect_eq "readers/ after SIG$sig" "" "$(ls q/readers)"
    done
}

t_sigterm_while_blocked_keeps_a_named_reader_at_what_was_written() {
    seq 1 300000 | $APPEND q
    mkfifo pipe
    # Reads exactly 100 KiB (dd reads no further), stalls for longer than the follower may
    # take to exit, then drains the rest: got+rest is every byte the follower managed to
    # write before the signal.
    { dd bs=4096 count=25 of=got 2>/dev/null; sleep 8; cat >rest; } <pipe &
    local consumer=$!
    $TAIL -f --reader r q >pipe &
    local pid=$!
    # 100 KiB read, then the pipe fills and the follower blocks writing.
    wait_for "blocked $pid" || fail "the follower did not block"
    kill -TERM $pid
    exit_within $pid 5
    expect_eq status 143 "$exited"
    wait $consumer
    cat got rest >all
    local lines pos
    lines=$(wc -l <all)
    pos=$($READERS q show r --json | jqr .position)
    ((lines >= 25000)) || fail "only $lines lines were written"
    # At least once: the stored position never passes what reached the pipe.
    ((pos <= lines)) || fail "position $pos is past the $lines records written"
    ((pos > 0)) || fail "nothing was committed although $lines records were written"
    cmp <(head -n "$lines" all) <(seq 1 "$lines") || fail "the output is not the records in order"
    # The next run resumes there.
    expect_eq resumes $((pos + 1)) "$($TAIL --reader r -c 1 q)"
}

# --------------------------------------------------------- 3. names that are not text

t_non_utf8_reader_names_give_valid_json_and_escaped_text() {
    seq 1 3 | $APPEND q
    $READERS q create good
    cp q/readers/good.cursor $'q/readers/~anon.\xff\xfe\x1b[31mred.cursor'
    $READERS q --json >j || fail "--json failed: $(cat j)"
    jq -e . j >/dev/null || fail "not JSON: $(cat -v j)"
    expect_eq count 2 "$(jqr '.readers | length' j)"
    # Invalid bytes become U+FFFD; the escape character is a JSON escape.
    expect_eq name $'~anon.\xef\xbf\xbd\xef\xbf\xbd\x1b[31mred' "$(jqr '.readers[] | select(.ephemeral) | .name' j)"
    $READERS q --ndjson >nd || fail "--ndjson failed"
    expect_eq ndjson_lines 2 "$(jq -c . nd | wc -l)"
    $READERS q show $'~anon.\xff\xfe\x1b[31mred' --json | jq -e .name >/dev/null || fail "show --json"
    # The table never sends the raw escape sequence (or invalid bytes) to a terminal.
    $READERS q >table
    ! grep -q $'\x1b' table || fail "raw ESC in: $(cat -v table)"
    ! grep -qa $'\xff' table || fail "raw 0xff in: $(cat -v table)"
    grep -qF '~anon.\xff\xfe\x1b[31mred' table || fail "escaped name missing: $(cat table)"
    # gc's report likewise.
    touch -d '-1 hour' q/readers/*
    $READERS q gc --dry-run >gc
    ! grep -q $'\x1b' gc || fail "raw ESC in gc: $(cat -v gc)"
}

# ------------------------------------------------------------ 4. damaged cursor files

# A queue with readers good, trunc (truncated), magic (wrong magic), future (version 9).
make_damaged_readers() {
    seq 1 5 | $APPEND q
    local n
    for n in good trunc magic future; do $READERS q create $n; done
    truncate -s 100 q/readers/trunc.cursor
    printf 'XXXXXXXX' | dd of=q/readers/magic.cursor conv=notrunc 2>/dev/null
    printf '\x09' | dd of=q/readers/future.cursor bs=1 seek=8 conv=notrunc 2>/dev/null
}

t_damaged_cursors_are_listed_as_damaged() {
    make_damaged_readers
    expect_code 0 $READERS q
    local n
    for n in trunc magic future; do
        grep -Eq "^$n +- +- +- +- +damaged " "$T/out" || fail "$n not damaged: $(cat "$T/out")"
    done
    grep -q "size 100" "$T/out" || fail "no reason for trunc: $(cat "$T/out")"
    grep -q "version 9" "$T/out" || fail "no reason for future: $(cat "$T/out")"
    grep -Eq "^good +0 +5 .* idle " "$T/out" || fail "good: $(cat "$T/out")"
    $READERS q --json >j
    expect_eq names "future good magic trunc" "$(jqr '[.readers[].name] | join(" ")' j)"
    expect_eq states "damaged idle damaged damaged" "$(jqr '[.readers[].state] | join(" ")' j)"
    expect_eq good_damage null "$(jqr '.readers[] | select(.name=="good") | .damage' j)"
    expect_eq trunc_position null "$(jqr '.readers[] | select(.name=="trunc") | .position' j)"
    jqr '.readers[] | select(.name=="magic") | .damage' j | grep -q "magic" || fail "magic: $(cat j)"
    # show reports it as an error, like any damage: one line on stderr, exit 7.
    expect_code 7 $READERS q show future
    grep -q "^chronicle-readers: .*future.cursor: unsupported cursor version 9$" "$T/err" ||
        fail "show: $(cat "$T/err")"
    [[ ! -s $T/out ]] || fail "show printed: $(cat "$T/out")"
    expect_code 7 $READERS q show trunc --json
    grep -q "size 100" "$T/err" || fail "show --json: $(cat "$T/err")"
}

t_check_is_critical_for_a_damaged_cursor() {
    seq 1 5 | $APPEND q
    $READERS q create only
    truncate -s 0 q/readers/only.cursor
    expect_code 2 $READERS q --check --max-lag 1000
    grep -q "^CHRONICLE CRITICAL: 1 reader, only damaged" "$T/out" || fail "$(cat "$T/out")"
    expect_code 2 $READERS q show only --check
    $READERS q create fine
    printf 'XXXXXXXX' | dd of=q/readers/only.cursor conv=notrunc 2>/dev/null
    expect_code 2 $READERS q --check
}

t_delete_removes_a_damaged_cursor_and_nothing_else() {
    make_damaged_readers
    mkfifo q/readers/fifo.cursor
    mkdir q/readers/dir.cursor
    local segs
    segs=$(ls q/*.seg)
    local n
    for n in trunc magic future fifo; do
        expect_code 0 timeout 10 $READERS q delete $n
        [[ ! -e q/readers/$n.cursor ]] || fail "$n.cursor still there"
    done
    # A directory by that name is not a cursor to delete.
    expect_code 7 timeout 10 $READERS q delete dir
    [[ -d q/readers/dir.cursor ]] || fail "directory removed"
    expect_eq segments "$segs" "$(ls q/*.seg)"
    expect_eq left "dir.cursor good.cursor" "$(ls q/readers | xargs)"
    expect_eq good_reads "$(seq 1 5)" "$($TAIL --reader good q)"
}

t_delete_of_a_damaged_cursor_is_refused_while_it_is_held() {
    command -v python3 >/dev/null || { echo "    skip: python3 not installed"; return 0; }
    seq 1 3 | $APPEND q
    $READERS q create newer
    printf '\x02' | dd of=q/readers/newer.cursor bs=1 seek=8 conv=notrunc 2>/dev/null
    # A newer chronicle holding its (version 2) cursor: an OFD lock, as the library takes.
    python3 -c '
import fcntl, os, struct, sys, time
fd = os.open("q/readers/newer.cursor", os.O_RDWR)
fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack("hhqqi", fcntl.F_WRLCK, 0, 0, 0, 0))
open("locked", "w").close()
time.sleep(30)' &
    local holder=$!
    for _ in $(seq 100); do [[ -f locked ]] && break; sleep 0.05; done
    [[ -f locked ]] || fail "python could not take the lock"
    expect_code 4 $READERS q delete newer
    [[ -f q/readers/newer.cursor ]] || fail "deleted while held"
    expect_eq alive true "$($READERS q --json | jqr '.readers[0].alive')"
    kill $holder
    wait $holder 2>/dev/null || true
    expect_code 0 $READERS q delete newer
}

# ---------------------------------------------------------------- 5. option values

t_out_of_range_and_malformed_times_are_usage_errors() {
    seq 1 3 | $APPEND q
    local v
    for v in @1e30 @inf @nan @-1 @0x10 @ @99999999999 2026-13-45T99:99:99Z 2026-00-10 \
        2026-02-29 2025-04-31T00:00Z 2026-11-24T24:00Z 2026-11-24T13:60Z \
        2026-11-24T13:05:60Z 2026-11-24T13:05+99:99 2026-11-24T13:05+14:30 2026-11-24T13:05+01:0000 \
        2026-11-24T13:05+01:60 '2026-11-24 1:05' 2026-1-24 1969-12-31T23:59:59Z \
        2026-11-24T13:05:00.Z '2026-11-24T13:05:00Z junk'; do
        expect_code 2 $TAIL --from-time "$v" q
        grep -q -- "--from-time" "$T/err" || fail "$v: option not named: $(cat "$T/err")"
        [[ ! -s $T/out ]] || fail "$v printed records"
        expect_code 2 $TAIL --until-time "$v" q
        grep -q -- "--until-time" "$T/err" || fail "$v: $(cat "$T/err")"
    done
    expect_code 2 $READERS q reset x --to-time @inf
    grep -q -- "--to-time" "$T/err" || fail "$(cat "$T/err")"
    # What is valid stays valid: leap days, offsets up to 14:00, fractions, epoch seconds.
    for v in 2024-02-29 2000-02-29T12:00Z 2026-11-24T13:05:00.250+01:00 2026-11-24T13:05+14:00 \
        2026-11-24T13:05-1200 2026-11-24T13:05+05 '2026-11-24 13:05' @0 @1795528496.5; do
        expect_code 0 $TAIL --from-time "$v" q
    done
    expect_eq all 3 "$($TAIL --from-time @0 q | wc -l)"
}

t_empty_values_are_usage_errors() {
    seq 1 3 | $APPEND q
    local o
    for o in --since --reader --from-time --until-time --template; do
        expect_code 2 $TAIL "$o" "" q
        grep -q -- "$o: empty value" "$T/err" || fail "$o: $(cat "$T/err")"
    done
    expect_code 2 $TAIL -f --timeout "" q
    expect_code 2 $APPEND --segment-size "" q2 </dev/null
    [[ ! -e q2 ]] || fail "queue created"
    expect_code 2 $READERS q gc --stale-after ""
    expect_code 2 $READERS q reset x --to-time ""
    expect_code 3 $READERS q --check --max-age ""
    grep -q "CHRONICLE UNKNOWN" "$T/out" || fail "$(cat "$T/out")"
    expect_eq no_reader_created "" "$(ls q/readers)"
}

t_timeout_0_returns_at_once_when_caught_up() {
    seq 1 3 | $APPEND q
    local start end
    start=$(date +%s%N)
    expect_code 6 timeout 10 $TAIL -f --timeout 0 q
    end=$(date +%s%N)
    expect_eq printed "$(seq 1 3)" "$(cat "$T/out")"
    (((end - start) < 3000000000)) || fail "took $(((end - start) / 1000000)) ms"
    expect_code 6 timeout 10 $TAIL -f --timeout 0 -n 0 q
    expect_eq nothing "" "$(cat "$T/out")"
    expect_eq no_registration "" "$(ls q/readers)"
    # A named reader advances past what it printed.
    expect_code 6 timeout 10 $TAIL -f --timeout 0s --reader r q
    expect_eq position 3 "$($READERS q show r --json | jqr .position)"
}

t_negative_and_malformed_numbers_are_usage_errors() {
    seq 1 10 | $APPEND q
    local a
    for a in "-n -3" "-n 3x" "-n 0x10" "-n 1e2" "-c -1" "--from-seq -1" "--until-seq -2" \
        "-n 99999999999999999999" "--from-seq 18446744073709551616"; do
        # shellcheck disable=SC2086  # the option and its value
        expect_code 2 $TAIL $a q
        grep -Eq -- "--(lines|count|from-seq|until-seq)" "$T/err" || fail "$a: $(cat "$T/err")"
    done
    expect_code 2 $TAIL -n " 3" q
    # -n +N means from the N-th record, as in tail; a leading zero is decimal, not octal.
    expect_eq plus "$(seq 3 10)" "$($TAIL -n +3 q)"
    expect_eq leading_zero "$(seq 1 10)" "$($TAIL -n 010 q)"
    expect_eq leading_zero_c "$(seq 1 9)" "$($TAIL -c 09 q)"
    expect_code 2 $READERS q --watch -1
    expect_code 2 $READERS q --watch nan
    expect_code 2 $READERS q --watch 1e9
    expect_code 2 $READERS q create x --at -5
    expect_code 2 $READERS q create x --at ' 5'
    expect_code 2 $READERS q reset x --to-seq -1
    expect_code 3 $READERS q --check --max-lag -1
    expect_code 3 $READERS q --check --warn-lag 1.5
    expect_code 2 $APPEND --segment-size -64M q2 </dev/null
    expect_code 2 $APPEND --segment-size ' 64M' q2 </dev/null
    expect_eq no_reader_created "" "$(ls q/readers)"
}

run_tests
