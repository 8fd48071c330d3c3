#!/usr/bin/env bash
# Black-box tests of chronicle-readers and of the output/input options for scripts.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

jqr() { jq -r "$@"; }

t_json_document_fields_are_checked_one_by_one() {
    seq 1 100 | $APPEND q
    $TAIL --reader billing -c 10 q >/dev/null
    $READERS q create audit --at end
    $READERS q --json >j
    expect_eq schema chronicle.readers/v1 "$(jqr .schema j)"
    expect_eq dir q "$(jqr .queue.dir j)"
    expect_eq head 100 "$(jqr .queue.head_seq j)"
    expect_eq first 0 "$(jqr .queue.first_seq j)"
    expect_eq records 100 "$(jqr .queue.records j)"
    expect_eq segments 1 "$(jqr .queue.segments j)"
    expect_eq writer false "$(jqr .queue.writer.alive j)"
    expect_eq names "audit billing" "$(jqr '[.readers[].name] | join(" ")' j)"
    expect_eq billing.position 10 "$(jqr '.readers[] | select(.name=="billing") | .position' j)"
    expect_eq billing.lag 90 "$(jqr '.readers[] | select(.name=="billing") | .lag' j)"
    expect_eq billing.alive false "$(jqr '.readers[] | select(.name=="billing") | .alive' j)"
    expect_eq billing.follower null "$(jqr '.readers[] | select(.name=="billing") | .follower' j)"
    expect_eq audit.lag 0 "$(jqr '.readers[] | select(.name=="audit") | .lag' j)"
    [[ $(jqr '.readers[] | select(.name=="billing") | .lag_bytes' j) -gt 0 ]] || fail "lag_bytes"
}

t_ndjson_has_one_line_per_reader() {
    seq 1 10 | $APPEND q
    $READERS q create a
    $READERS q create b --at 4
    $READERS q --ndjson >j
    expect_eq lines 2 "$(wc -l <j)"
    expect_eq schema "chronicle.reader/v1 chronicle.reader/v1" "$(jqr .schema j | xargs)"
    expect_eq lags "10 6" "$(jqr .lag j | xargs)"
}

t_follower_state_and_efd_are_reported() {
    echo x | $APPEND q
    $TAIL -f --reader mon q >/dev/null &
    local pid=$!
    # Registered, then asleep (the sleep word is set once it parks; slow under sanitizers).
    wait_until 20 eval '[[ $($READERS q show mon --json | jq -r .follower.sleeping) == true ]]' ||
        fail "the follower never parked: $($READERS q show mon --json 2>&1)"
    $READERS q show mon --json >j
    expect_eq alive true "$(jqr .alive j)"
    expect_eq pid "$pid" "$(jqr .pid j)"
    expect_eq follower.pid "$pid" "$(jqr .follower.pid j)"
    if $TAIL --version | grep -q "notifier: linux"; then
        expect_eq follower.fifo mon.fifo "$(jqr .follower.fifo j)"
    fi
    expect_eq sleeping true "$(jqr .follower.sleeping j)"
    expect_eq efd_pid "$pid" "$(jq -r .pid q/readers/mon.efd)"
    $READERS q | grep -q "^mon .*sleeping" || fail "table: $($READERS q)"
    kill $pid
    wait $pid || true
    expect_eq after "false" "$($READERS q show mon --json | jqr .alive)"
}

t_delete_and_reset_are_refused_while_in_use() {
    echo x | $APPEND q
    $TAIL -f --reader busy q >/dev/null &
    local pid=$!
    for _ in $(seq 100); do [[ -f q/readers/busy.efd ]] && break; sleep 0.05; done
    expect_code 4 $READERS q delete busy
    grep -q "pid $pid" "$T/err" || fail "message: $(cat "$T/err")"
    expect_code 4 $READERS q reset busy --to-start
    kill $pid
    wait $pid || true
    expect_code 0 $READERS q delete busy
    expect_eq gone "" "$(ls q/readers)"
}

t_reset_moves_a_reader_and_dry_run_does_not() {
    seq 1 20 | $APPEND q
    $TAIL --reader r q >/dev/null
    expect_eq dry "would move r from 20 to 5" "$($READERS q reset r --to-seq 5 --dry-run)"
    expect_eq still 20 "$($READERS q show r --json | jqr .position)"
    $READERS q reset r --to-seq 5 >/dev/null
    expect_eq replay "$(seq 6 20)" "$($TAIL --reader r q)"
    $READERS q reset r --to-start >/dev/null
    expect_eq all 20 "$($TAIL --reader r q | wc -l)"
    $READERS q reset r --to-time "$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)" >/dev/null
    expect_eq none "" "$($TAIL --reader r q)"
}

t_gc_removes_dead_followers_files_and_stale_names() {
    seq 1 3 | $APPEND q
    $TAIL -f --reader dead q >/dev/null &
    local pid=$!
    for _ in $(seq 100); do [[ -f q/readers/dead.efd ]] && break; sleep 0.05; done
    kill -9 $pid
    wait $pid 2>/dev/null || true
    # Right after the kill: kept, and said so (not silently nothing).
    $READERS q gc >early
    grep -q "^kept readers/dead.efd: changed less than 10 s ago .*run gc again later$" early ||
        fail "gc right after kill -9: $(cat early)"
    [[ -f q/readers/dead.efd ]] || fail "removed within the grace period"
    $READERS q create keep
    # Age the files past gc's grace period.
    touch -d '-2 hours' q/readers/*
    $READERS q gc --dry-run >dry
    grep -q "would remove readers/dead.efd" dry || fail "dry run: $(cat dry)"
    [[ -f q/readers/dead.efd ]] || fail "the dry run removed a file"
    $READERS q gc >removed
    grep -q "readers/dead.efd" removed || fail "efd not removed: $(cat removed)"
    if $TAIL --version | grep -q "notifier: linux"; then
        grep -q "readers/dead.fifo" removed || fail "fifo not removed: $(cat removed)"
    fi
    [[ ! -e q/readers/dead.efd && ! -e q/readers/dead.fifo ]] || fail "left: $(ls q/readers)"
    [[ -f q/readers/dead.cursor ]] || fail "the name itself must stay without --stale-after"
    [[ -f q/readers/keep.cursor ]] || fail "keep removed"
    # Names nobody holds and whose position is older than --stale-after go too.
    $READERS q create fresh
    touch -d '-2 hours' q/readers/fresh.cursor
    sleep 1
    $READERS q gc --stale-after 500ms >removed
    expect_eq stale "readers/dead.cursor readers/fresh.cursor readers/keep.cursor" "$(grep -o 'readers/.*' removed | sort | xargs)"
}

t_check_exits_like_a_monitoring_plugin() {
    seq 1 100 | $APPEND q
    $READERS q create slow
    $READERS q create fast --at end
    expect_code 0 $READERS q --check --max-lag 1000
    grep -q "CHRONICLE OK" "$T/out" || fail "$(cat "$T/out")"
    expect_code 1 $READERS q --check --warn-lag 50 --max-lag 1000
    grep -q "CHRONICLE WARNING" "$T/out" || fail "$(cat "$T/out")"
    expect_code 2 $READERS q --check --max-lag 50
    grep -q "worst slow lag 100" "$T/out" || fail "$(cat "$T/out")"
    expect_code 0 $READERS q show fast --check --max-lag 50
    expect_code 3 $READERS missing --check --max-lag 1
}

t_watch_redraws_in_place_in_a_terminal() {
    command -v tmux >/dev/null || { echo "    skip: tmux not installed"; return 0; }
    seq 1 5 | $APPEND q
    $READERS q create w
    local s="chr$$"
    tmux new-session -d -s "$s" -x 120 -y 20 "$READERS $T/q --watch 0.2"
    # Each screen as soon as it shows (a fixed sleep is overrun by a slow start-up).
    wait_until 20 eval 'tmux capture-pane -t "$s" -p >screen1 && grep -q "^w .* 5 " screen1'
    seq 6 10 | $APPEND q
    wait_until 20 eval 'tmux capture-pane -t "$s" -p >screen2 && grep -q "^w .* 10 " screen2'
    sleep 0.5 # a few more redraws: each must replace the screen, not add to it
    tmux capture-pane -t "$s" -p >screen2
    tmux kill-session -t "$s"
    grep -q "^w .* 5 " screen1 || fail "first screen: $(cat screen1)"
    grep -q "^w .* 10 " screen2 || fail "second screen: $(cat screen2)"
    expect_eq one_header 1 "$(grep -c '^NAME' screen2)"
}

t_tail_json_is_utf8_or_base64() {
    printf 'plain\n\xff\xfe\n{"k":"\\"}\n' | $APPEND q
    $TAIL --json q >j
    expect_eq count 3 "$(wc -l <j)"
    expect_eq plain plain "$(sed -n 1p j | jqr .payload)"
    expect_eq enc base64 "$(sed -n 2p j | jqr .encoding)"
    expect_eq bytes "$(printf '\xff\xfe' | base64)" "$(sed -n 2p j | jqr .payload)"
    expect_eq escaped '{"k":"\"}' "$(sed -n 3p j | jqr .payload)"
    expect_eq fields "seq,timestamp_ns,time,length,payload" "$(sed -n 1p j | jq -r 'keys_unsorted | join(",")')"
    expect_eq seq 2 "$(sed -n 3p j | jqr .seq)"
}

t_template_and_time_ranges() {
    seq 1 5 | $APPEND q
    expect_eq tmpl "0:1:1;1:1:2;" "$($TAIL --template '%q:%l:%s;' -c 2 q)"
    $TAIL --template '%t\n' -c 1 q | grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$' || fail "%t"
    expect_eq since 5 "$($TAIL --since 1h q | wc -l)"
    expect_eq future "" "$($TAIL --from-time "$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)" q)"
    expect_eq until_seq "$(seq 1 3)" "$($TAIL --until-seq 3 q)"
    expect_eq until_time "" "$($TAIL --until-time "$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ)" q)"
    expect_code 2 $TAIL --from-time yesterdays q
}

t_binary_round_trips_through_every_framing() {
    head -c 200000 /dev/urandom >rnd
    # len32 and raw: any bytes.
    $APPEND --framing raw q1 <rnd
    cmp rnd <($TAIL --format raw q1) || fail "raw"
    split -b 997 rnd part.
    for f in part.*; do
        printf "$(printf '\\%03o' $(( $(stat -c %s "$f") >> 24 & 255 )) $(( $(stat -c %s "$f") >> 16 & 255 )) $(( $(stat -c %s "$f") >> 8 & 255 )) $(( $(stat -c %s "$f") & 255 )))"
        cat "$f"
    done >framed
    $APPEND --framing len32 q2 <framed
    cmp framed <($TAIL --format len32 q2) || fail "len32"
    expect_eq records "$(ls part.* | wc -l)" "$($TAIL --json q2 | wc -l)"
    # A queue copied through len32 is byte-identical record by record, binary included.
    $TAIL --format=len32 q2 | $APPEND --framing=len32 q3
    cmp <($TAIL --json q2 | jq -c '[.seq,.length,.payload]') <($TAIL --json q3 | jq -c '[.seq,.length,.payload]') || fail "copy"
    # nul framing: payloads with newlines; lines framing: payloads with NUL.
    printf 'a\nb\0c\0' | $APPEND -z q4
    cmp <(printf 'a\nb\0c\0') <($TAIL -z q4) || fail "nul"
    printf 'x\0y\nz\n' | $APPEND q5
    cmp <(printf 'x\0y\nz\n') <($TAIL q5) || fail "lines"
}

t_print_seq_and_atomic_append() {
    seq 1 3 | $APPEND --segment-size 64K q >/dev/null
    expect_eq seqs "$(seq 3 5)" "$(printf 'a\nb\nc\n' | $APPEND --print-seq q)"
    { seq 1 1000; head -c 70000 /dev/zero | tr '\0' x; echo; } >bad
    expect_code 7 $APPEND --atomic q <bad
    expect_eq unchanged 6 "$($TAIL q | wc -l)"
    seq 1 1000 | $APPEND --atomic --sync batch q
    expect_eq added 1006 "$($TAIL q | wc -l)"
}

t_check_perfdata_is_in_the_plugin_format_with_thresholds() {
    seq 1 100 | $APPEND q
    $READERS q create slow
    expect_code 1 $READERS q --check --warn-lag 50 --max-lag 1000 --warn-age 1h --max-age 2h --warn-idle 1h --max-idle 2h
    local perf item
    perf=$(sed 's/^[^|]*| //' "$T/out")
    for item in $perf; do
        [[ $item =~ ^\'[a-z_]+\'=[0-9.]+(s|B)?\;[0-9.:]*\;[0-9.:]*\;0\;[0-9]*$ ]] || fail "perfdata item [$item] in: $(cat "$T/out")"
    done
    grep -q "'lag_slow'=100;50;1000;0;" "$T/out" || fail "lag: $(cat "$T/out")"
    grep -q "'lag_seconds_slow'=[0-9.]*s;3600;7200;0;" "$T/out" || fail "lag seconds: $(cat "$T/out")"
    grep -q "'age'=[0-9.]*s;3600;7200;0;" "$T/out" || fail "age: $(cat "$T/out")"
    grep -q "'free'=[0-9]*B;;;0;[0-9]*" "$T/out" || fail "free: $(cat "$T/out")"
    # WARNING beyond CRITICAL can never be seen: refused, as a usage error is (UNKNOWN).
    expect_code 3 $READERS q --check --warn-lag 5000 --max-lag 1000
    grep -q -- "--warn-lag: above --max-lag" "$T/err" || fail "$(cat "$T/err")"
    expect_code 3 $READERS q --check --warn-age 2h --max-age 1h
    expect_code 3 $READERS q --check --warn-idle 2h --max-idle 1h
    expect_code 3 $READERS q --check --warn-free 1K --min-free 1M
    # --watch with --check: refused, not silently once.
    expect_code 3 $READERS q --check --watch 1
    grep -q -- "--watch excludes --check" "$T/err" || fail "$(cat "$T/err")"
}

t_check_sees_an_idle_queue_a_dead_writer_and_a_full_disk() {
    seq 1 3 | $APPEND q
    sleep 1.5
    expect_code 2 $READERS q --check --max-idle 1s
    grep -q "CRITICAL.*newest record .* old (--max-idle 1s)" "$T/out" || fail "$(cat "$T/out")"
    expect_code 1 $READERS q --check --warn-idle 1s --max-idle 1h
    expect_code 0 $READERS q --check --max-idle 1h
    # Writer liveness.
    expect_code 2 $READERS q --check --require-writer
    grep -q "no writer is running" "$T/out" || fail "$(cat "$T/out")"
    mkfifo in
    $APPEND q <in &
    exec 3>in
    local i
    for i in $(seq 100); do [[ $($READERS q --json | jq '.queue.writer.pids | length') == 1 ]] && break; sleep 0.1; done
    expect_code 0 $READERS q --check --require-writer
    grep -q "'writers'=1;;1:;0;" "$T/out" || fail "$(cat "$T/out")"
    exec 3>&-
    wait
    # Free space: as a size or a share of the file system.
    expect_code 2 $READERS q --check --min-free 100%
    grep -q "free (--min-free 100%)" "$T/out" || fail "$(cat "$T/out")"
    expect_code 1 $READERS q --check --min-free 1K --warn-free 100%
    expect_code 0 $READERS q --check --min-free 1K --warn-free 1%
    expect_code 3 $READERS q --check --min-free 101%
    expect_code 3 $READERS q --check --min-free -5%
}

t_prometheus_output_passes_promtool_and_names_each_reader() {
    seq 1 100 | $APPEND q
    $READERS q create slow
    $READERS q create fast --at end
    $READERS q --prometheus >metrics.prom
    grep -q '^chronicle_reader_lag_records{queue="q",reader="slow"} 100$' metrics.prom || fail "$(cat metrics.prom)"
    grep -q '^chronicle_queue_head_sequence{queue="q"} 100$' metrics.prom || fail "$(cat metrics.prom)"
    grep -q '^# TYPE chronicle_reader_lag_seconds gauge$' metrics.prom || fail "$(cat metrics.prom)"
    # promtool: installed, or unpacked by scripts/setup.sh into build/promtool/.
    local promtool
    promtool=$(command -v promtool || echo "$ROOT/build/promtool/usr/bin/promtool")
    if [[ -x $promtool ]]; then
        "$promtool" check metrics <metrics.prom >lint 2>&1 || fail "promtool: $(cat lint)"
        [[ ! -s lint ]] || fail "promtool: $(cat lint)"
    else
        echo "    note: no promtool (scripts/setup.sh unpacks it from Debian's prometheus); format checked by hand only"
    fi
    expect_code 2 $READERS q --prometheus --json
    expect_code 3 $READERS q --prometheus --check  # UNKNOWN: --check is on the line
}

t_watch_prints_a_header_and_rates() {
    seq 1 10 | $APPEND q
    $READERS q create r
    timeout 2.6 $READERS q --watch 1 >watch.out || true
    grep -q '^Every 1s: chronicle-readers q    [0-9-]*T[0-9:.]*Z$' watch.out || fail "$(head -3 watch.out)"
    grep -q 'RATE/S' watch.out || fail "$(cat watch.out)"
    grep -q '^appending: 0.0 records/s$' watch.out || fail "$(cat watch.out)"
}

t_subcommand_first_works_as_git_and_nats_take_it() {
    seq 1 10 | $APPEND q
    $READERS q create audit
    expect_eq "reset QUEUE NAME" "moved audit from 0 to 10" "$($READERS reset q audit --to-end)"
    expect_eq "QUEUE reset NAME" "moved audit from 10 to 0" "$($READERS q reset audit --to-start)"
    expect_eq "show QUEUE NAME" audit "$($READERS --ndjson show q audit | jq -r .name)"
    expect_eq "list QUEUE" "$($READERS --json q list | jq -c '.readers[] | [.name, .position]')" \
        "$($READERS --json list q | jq -c '.readers[] | [.name, .position]')"
    $READERS reset --help >help1
    $READERS q reset --help >help2
    grep -q "Usage: chronicle-readers \[OPTIONS\] QUEUE reset" help1 || fail "$(head -3 help1)"
    grep -q "or: chronicle-readers reset QUEUE" help1 || fail "$(head -3 help1)"
    cmp help1 help2 || fail "reset --help and q reset --help differ"
    # A directory named like a subcommand is a queue.
    seq 1 2 | $APPEND reset
    expect_eq "queue named reset" "2" "$($READERS --json reset | jq .queue.head_seq)"
}

run_tests
