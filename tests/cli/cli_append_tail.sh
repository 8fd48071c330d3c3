#!/usr/bin/env bash
# Black-box tests of chronicle-append and chronicle-tail, run as a user would.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

t_million_lines_round_trip() {
    seq 1 1000000 | $APPEND q
    expect_eq md5 "$(seq 1 1000000 | md5sum)" "$($TAIL q | md5sum)"
}

# A producer that streams and then pauses with its end of the pipe open: every record
# chronicle-append read is committed without waiting for the producer's next write or its
# exit (one 64 KiB write: a whole pipe's worth, as a fast producer leaves it).
t_streamed_records_are_committed_when_the_producer_pauses() {
    mkfifo in
    yes 1234567 | head -c 65536 >chunk
    (dd if=chunk bs=65536 count=1 status=none && exec sleep 30) >in &
    local producer=$!
    $APPEND q <in &
    local appender=$!
    local deadline=$((SECONDS + 10))
    until [[ $($TAIL -n 1 --show-seq q 2>/dev/null) == 8191$'\t'1234567 ]]; do
        ((SECONDS < deadline)) || fail "records read 10 s ago are not committed yet: $($TAIL q 2>&1 | wc -l) of 8192"
        sleep 0.1
    done
    kill "$producer" 2>/dev/null
    wait "$appender" || fail "chronicle-append failed"
}

# After a bulk stream the appender lingers 200 us before a read while the pipe holds
# little (tools/chronicle-append.cc, linger()): a line that follows the burst, with the
# producer still there, is committed at once all the same.
t_a_line_after_a_bulk_burst_is_committed_while_the_producer_stays() {
    mkfifo in
    (seq 1 300000 && sleep 0.5 && echo last && exec sleep 30) >in &
    local producer=$!
    $APPEND q <in &
    local appender=$!
    wait_for '[[ $($TAIL -n 1 q 2>/dev/null) == last ]]' 10 ||
        fail "the line after the burst is not committed: last record $($TAIL -n 1 --show-seq q 2>&1)"
    expect_eq records 300001 "$($TAIL q | wc -l)"
    kill "$producer" 2>/dev/null
    wait "$appender" || fail "chronicle-append failed"
}

# A socket as standard input (systemd's StandardInput=socket, a socketpair from a
# supervisor) is read to its end like a pipe. F_SETPIPE_SZ fails on it, and it never
# lingers: its buffer cannot hold the bytes linger() waits for (chronicle-append.cc).
t_a_socket_as_standard_input_is_read_to_its_end() {
    seq 1 300000 >in.txt
    # shellcheck disable=SC2086
    perl -MSocket -e '
        socketpair(my $p, my $c, AF_UNIX, SOCK_STREAM, PF_UNSPEC) or die "socketpair: $!";
        defined(my $pid = fork()) or die "fork: $!";
        if ($pid == 0) { close $p; open(STDIN, "<&", $c) or die; exec(@ARGV) or die "exec: $!" }
        close $c;
        while (my $n = sysread(STDIN, my $buf, 65536)) {
            for (my $off = 0; $off < $n;) { $off += syswrite($p, $buf, $n - $off, $off) // die "write: $!" }
        }
        close $p;
        waitpid($pid, 0);
        exit($? >> 8);' $APPEND q <in.txt || fail "chronicle-append from a socket failed"
    expect_eq md5 "$(md5sum <in.txt)" "$($TAIL q | md5sum)"
}

t_empty_lines_and_unterminated_last_line_are_records() {
    printf 'a\n\nb' | $APPEND q
    expect_eq records "$(printf '0\ta\n1\t\n2\tb\n')" "$($TAIL --show-seq q)"
}

t_empty_input_appends_nothing() {
    $APPEND q </dev/null
    expect_eq output "" "$($TAIL q)"
}

t_nul_framing_keeps_newlines() {
    printf 'one\nline\0two\0' | $APPEND -z q
    expect_eq count 2 "$($TAIL -z q | tr -cd '\0' | wc -c)"
    expect_eq bytes "$(printf 'one\nline\0two\0' | od -c)" "$($TAIL -z q | od -c)"
}

t_files_and_stdin_in_order() {
    printf 'f1\n' >a
    printf 'f2\n' >b
    printf 'in\n' | $APPEND q a - b
    expect_eq order "$(printf 'f1\nin\nf2')" "$($TAIL q)"
}

t_last_n_from_seq_and_count() {
    seq 0 99 | $APPEND q
    expect_eq last3 "$(printf '97\n98\n99')" "$($TAIL -n 3 q)"
    expect_eq from "$(printf '50\n51')" "$($TAIL --from-seq 50 -c 2 q)"
    expect_eq beyond "" "$($TAIL --from-seq 1000 q)"
    expect_eq lastmore 100 "$($TAIL -n 1000 q | wc -l)"
}

t_named_reader_resumes_and_advances() {
    seq 1 10 | $APPEND q
    expect_eq first "$(printf '1\n2\n3')" "$($TAIL --reader r -c 3 q)"
    expect_eq second "$(printf '4\n5\n6')" "$($TAIL --reader r -c 3 q)"
    expect_eq rest "$(printf '7\n8\n9\n10')" "$($TAIL --reader r q)"
    expect_eq none "" "$($TAIL --reader r q)"
    seq 11 12 | $APPEND q
    expect_eq new "$(printf '11\n12')" "$($TAIL --reader r q)"
    expect_eq reposition "$(printf '2\n3')" "$($TAIL --reader r --from-seq 1 -c 2 q)"
}

t_hostile_reader_names_are_refused() {
    seq 1 3 | $APPEND q
    for name in ../x a/b .x "$(printf 'x%.0s' {1..300})"; do
        expect_code 2 $TAIL --reader "$name" q || return 1
        grep -q "invalid reader name" "$T/err" || fail "no clear message for '$name': $(cat "$T/err")"
    done
    expect_eq nothing_created "" "$(ls "$T" | grep -vE '^(q|err|out)$'; ls q/readers)"
}

t_second_writer_is_refused_by_an_exclusive_one_with_holder_pid() {
    mkfifo in
    $APPEND --exclusive q <in &
    local pid=$!
    exec 3>in
    echo hello >&3
    for _ in $(seq 100); do [[ -n "$($TAIL q)" ]] && break; sleep 0.05; done
    expect_code 4 $APPEND q </dev/null
    grep -q "has an exclusive writer (pid $pid)" "$T/err" || fail "message: $(cat "$T/err")"
    exec 3>&-
    wait $pid
    echo again | $APPEND q
    expect_eq both "$(printf 'hello\nagain')" "$($TAIL q)"
}

t_tail_without_reader_writes_nothing_to_the_queue() {
    seq 1 1000 | $APPEND q
    local before after
    before=$(find q -printf '%p %s %T@ %m\n' | sort)
    $TAIL q >/dev/null
    $TAIL -n 5 q >/dev/null
    $TAIL --from-seq 3 --show-seq q >/dev/null
    after=$(find q -printf '%p %s %T@ %m\n' | sort)
    expect_eq unchanged "$before" "$after"
}

t_record_over_the_maximum_is_a_clear_error_and_keeps_earlier_lines() {
    { echo before; head -c 20000 /dev/zero | tr '\0' x; echo; echo after; } >in
    expect_code 7 $APPEND --segment-size 16K q <in
    grep -q "larger than the queue's maximum" "$T/err" || fail "message: $(cat "$T/err")"
    expect_eq kept before "$($TAIL q)"
}

t_errors_have_documented_codes_and_one_line() {
    expect_code 3 $TAIL missing
    expect_eq lines 1 "$(wc -l <"$T/err")"
    grep -q '^chronicle-tail: queue missing does not exist' "$T/err" || fail "$(cat "$T/err")"
    expect_code 2 $TAIL --no-such-option q
    expect_code 2 $APPEND --segment-size 12345 q </dev/null
    expect_code 0 $TAIL --help
    expect_code 0 $APPEND --help
    mkdir notq && touch notq/file
    expect_code 2 $APPEND notq </dev/null
    grep -q "not a chronicle queue" "$T/err" || fail "$(cat "$T/err")"
    expect_code 3 $APPEND q missing-file </dev/null
}

t_tail_exits_quietly_when_its_output_closes() {
    seq 1 200000 | $APPEND q
    local out
    out=$($TAIL q 2>"$T/err2" | head -n 2)
    expect_eq head "$(printf '1\n2')" "$out"
    expect_eq stderr "" "$(cat "$T/err2")"
}

t_segment_rolls_are_invisible_to_the_user() {
    seq 1 50000 | $APPEND --segment-size 16K q
    [[ $(ls q/*.seg | wc -l) -gt 20 ]] || fail "expected many segments"
    expect_eq md5 "$(seq 1 50000 | md5sum)" "$($TAIL q | md5sum)"
    expect_eq seek "$(printf '40001\n40002')" "$($TAIL --from-seq 40000 -c 2 q)"
}

t_full_disk_is_exit_5_and_keeps_every_committed_record() {
    if ! unshare -m true 2>/dev/null; then
        echo "    skip: cannot make a mount namespace here (needs root)"
        return 0
    fi
    mkdir mnt
    # A 512 KiB file system: segments of 64 KiB run out after a few rolls.
    unshare -m bash -c "mount -t tmpfs -o size=512k tmpfs '$T/mnt' &&
        { seq 1 100000 | '$APPEND' --segment-size 64K '$T/mnt/q' 2>'$T/err'; echo \$? >'$T/rc'; } &&
        '$TAIL' '$T/mnt/q' >'$T/got' && echo x | '$APPEND' '$T/mnt/q' 2>'$T/err2'; echo \$? >'$T/rc2'"
    expect_eq exit 5 "$(cat rc)"
    grep -q "No space left on device" err || fail "message: $(cat err)"
    expect_eq lines 1 "$(wc -l <err)"
    local n
    n=$(wc -l <got)
    [[ $n -gt 1000 ]] || fail "only $n records kept"
    expect_eq dense "$(seq 1 "$n")" "$(cat got)"
    expect_eq still_full 5 "$(cat rc2)"
}

t_a_regular_file_as_queue_is_named_as_such_and_a_symlinked_segment_is_damage() {
    echo 'echo hi' >file.sh
    echo x | expect_code 2 "$APPEND" file.sh
    grep -q "file.sh is a regular file, not a directory" "$T/err" || fail "message: $(cat "$T/err")"
    expect_eq untouched "echo hi" "$(cat file.sh)"
    expect_code 2 "$TAIL" file.sh
    seq 3 | "$APPEND" q
    mv q/00000000000000000000.seg seg0
    ln -s ../seg0 q/00000000000000000000.seg
    expect_code 7 "$TAIL" q
    grep -q "symbolic link" "$T/err" || fail "message: $(cat "$T/err")"
    echo 4 | expect_code 7 "$APPEND" q
    expect_eq target_untouched "$(seq 3)" "$(rm q/00000000000000000000.seg && mv seg0 q/00000000000000000000.seg && "$TAIL" q)"
}

t_full_disk_while_the_wake_page_is_created_is_no_sigbus() {
    if ! unshare -m true 2>/dev/null; then
        echo "    skip: cannot make a mount namespace here (needs root)"
        return 0
    fi
    mkdir mnt
    # The queue fits; then the file system is filled to the last block, and wake.shm (which
    # a writer or follower creates on demand) has no room: never a SIGBUS (exit 135).
    unshare -m bash -c "mount -t tmpfs -o size=512k tmpfs '$T/mnt' &&
        seq 1 10 | '$APPEND' --segment-size 64K '$T/mnt/q' && rm -f '$T/mnt/q/wake.shm' &&
        { dd if=/dev/zero of='$T/mnt/fill' bs=4k 2>/dev/null; true; } &&
        { echo 11 | '$APPEND' '$T/mnt/q' 2>'$T/err'; echo \$? >'$T/rc'; } &&
        { timeout 10 '$TAIL' -f -n all --timeout 300ms '$T/mnt/q' >'$T/got' 2>'$T/err2'; echo \$? >'$T/rc2'; }"
    expect_eq append_exit 0 "$(cat rc)"
    expect_eq follower_exit 6 "$(cat rc2)"
    expect_eq records "$(seq 1 11)" "$(cat got)"
}

t_n_plus_counts_from_the_nth_record_and_all_prints_everything() {
    seq 1 100 | $APPEND q
    expect_eq plus3 "$(seq 3 100)" "$($TAIL -n +3 q)"
    expect_eq plus1 "$(seq 1 100)" "$($TAIL -n +1 q)"
    expect_eq plus0_like_gnu_tail "$(seq 1 100)" "$($TAIL -n +0 q)"
    expect_eq all "$(seq 1 100)" "$($TAIL -n all q)"
    expect_eq last2 "$(printf '99\n100')" "$($TAIL -n 2 q)"
    expect_eq beyond "" "$($TAIL -n +101 q)"
    for bad in +x ++3 -3 1.5 ''; do
        expect_code 2 $TAIL -n "$bad" q || return 1
        grep -q -- "--lines" "$T/err" || fail "-n '$bad': the message does not name --lines: $(cat "$T/err")"
    done
}

t_n_plus_counts_records_on_disk_after_retention() {
    seq 1 3000 | $APPEND --segment-size 16K q
    $BIN/chronicle-queue set q --max-records 1000 --hard >/dev/null
    $BIN/chronicle-queue retain q >/dev/null
    local first
    first=$($TAIL q | head -1)
    ((first > 1)) || fail "retention deleted nothing (first record $first)"
    expect_eq plus1 "$first" "$($TAIL -n +1 q | head -1)"
    expect_eq plus2 "$((first + 1))" "$($TAIL -n +2 q | head -1)"
}

t_follow_takes_the_same_positions() {
    seq 1 100 | $APPEND q
    expect_eq n_all "$(seq 1 3)" "$($TAIL -f -n all -c 3 q)"
    expect_eq from_start "$(seq 1 3)" "$($TAIL -f --from-start -c 3 q)"
    expect_eq n5 "$(seq 96 100)" "$($TAIL -f -n 5 -c 5 q)"
    expect_eq plus98 "$(seq 98 100)" "$($TAIL -f -n +98 -c 3 q)"
}

t_since_and_until_take_times_as_journalctl_does() {
    seq 1 5 | $APPEND q
    sleep 1.2
    seq 6 10 | $APPEND q
    local ts6 s
    ts6=$($TAIL --json --from-seq 5 -c 1 q | jq -r .timestamp_ns)
    s=$((ts6 / 1000000000)) # after record 5 (1.2 s earlier), at or before record 6
    expect_eq "@epoch" "$(seq 6 10)" "$($TAIL --since "@$s" q)"
    expect_eq "until @epoch" "$(seq 1 5)" "$($TAIL --until "@$s" q)"
    expect_eq "until-time" "$(seq 1 5)" "$($TAIL --until-time "@$s" q)"
    local tz
    for tz in UTC Europe/Berlin America/New_York Asia/Kolkata; do
        expect_eq "local date and time ($tz)" "$(seq 6 10)" \
            "$(TZ=$tz $TAIL --since "$(TZ=$tz date -d "@$s" '+%Y-%m-%d %H:%M:%S')" q)"
        expect_eq "ISO with zone ($tz)" "$(seq 6 10)" \
            "$($TAIL --since "$(TZ=$tz date -d "@$s" '+%Y-%m-%dT%H:%M:%S%:z')" q)"
        # HH:MM:SS is today: only when the records were written today.
        if [[ $(TZ=$tz date -d "@$s" +%F) == $(TZ=$tz date +%F) ]]; then
            expect_eq "HH:MM:SS ($tz)" "$(seq 6 10)" "$(TZ=$tz $TAIL --since "$(TZ=$tz date -d "@$s" +%T)" q)"
        fi
    done
    expect_eq yesterday "$(seq 1 10)" "$($TAIL --since yesterday q)"
    expect_eq tomorrow "" "$($TAIL --since tomorrow q)"
    expect_eq "1 hour ago" "$(seq 1 10)" "$($TAIL --since '1 hour ago' q)"
    expect_eq "-1h" "$(seq 1 10)" "$($TAIL --since -1h q)"
    expect_eq "1h30m (ago)" "$(seq 1 10)" "$($TAIL --since 1h30m q)"
    expect_eq "1w" "$(seq 1 10)" "$($TAIL --since 1w q)"
    expect_eq "until -1h" "" "$($TAIL --until -1h q)"
    expect_eq "until now" "$(seq 1 10)" "$($TAIL --until now q)"
    expect_eq "since +1h" "" "$($TAIL --since +1h q)"
    expect_code 2 $TAIL --since '2026-11-29 14:00 junk' q
    grep -q -- "--since: '2026-11-29 14:00 junk' is not a valid time" "$T/err" || fail "$(cat "$T/err")"
    expect_code 2 $TAIL --until 1h30x q
    grep -q -- "--until: .*unknown unit 'x'" "$T/err" || fail "$(cat "$T/err")"
    expect_code 2 $TAIL --until a --until-time b q
}

t_reverse_prints_a_bounded_range_newest_first() {
    seq 1 20000 | $APPEND q
    expect_eq all "$(seq 20000 -1 1)" "$($TAIL -r q)"
    expect_eq "-n 3" "$(seq 20000 -1 19998)" "$($TAIL -r -n 3 q)"
    expect_eq "-c 2" "$(printf '20000\n19999')" "$($TAIL -r -c 2 q)"
    expect_eq range "$(seq 13 -1 11)" "$($TAIL -r --from-seq 10 --until-seq 13 q)"
    expect_eq "+N" "$(seq 20000 -1 19990)" "$($TAIL --reverse -n +19990 q)"
    expect_eq json "19999 19998" "$($TAIL -r --json -n 3 q | jq -r .seq | head -2 | tr '\n' ' ' | sed 's/ $//')"
    # Large records: memory stays bounded, the order holds.
    local big
    big=$(head -c 3000000 /dev/zero | tr '\0' x)
    for i in 1 2 3 4 5; do printf '%s%d\n' "$big" "$i"; done | $APPEND r
    expect_eq big "54321" "$($TAIL -r r | cut -c3000001 | tr -d '\n')"
    expect_code 2 $TAIL -r -f q
    expect_code 2 $TAIL -r --reader x q
    expect_code 2 $TAIL -r --exec cat q
    expect_eq "reverse | head" "20000" "$($TAIL -r q | head -1)"
}

t_times_print_in_utc_or_local_time_on_request() {
    echo x | $APPEND q
    $TAIL --template '%t\n' q | grep -Eq 'Z$' || fail "default: $($TAIL --template '%t\n' q)"
    $TAIL --utc --json q | jq -r .time | grep -Eq 'Z$' || fail "--utc"
    local t
    t=$(TZ=Asia/Kolkata $TAIL --localtime --template '%t' q)
    [[ $t == *+05:30 ]] || fail "--localtime: $t"
    t=$(TZ=America/New_York $TAIL --localtime --json q | jq -r .time)
    [[ $t == *-05:00 || $t == *-04:00 ]] || fail "--localtime json: $t"
    # The same instant either way.
    expect_eq instant "$(date -d "$($TAIL --template '%t' q)" +%s)" \
        "$(date -d "$(TZ=Asia/Kolkata $TAIL --localtime --template '%t' q)" +%s)"
    expect_code 2 $TAIL --utc --localtime q
}

run_tests
