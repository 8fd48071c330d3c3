#!/usr/bin/env bash
# Black-box tests of retention: limits set at creation and changed later, the writer and
# `chronicle-queue retain` deleting whole segments, pinned and expired readers as every tool
# reports them, followers across deletions, kill -9 of a deleting process, a follower whose
# queue is removed or replaced under it, and chronicle-queue verify on damaged queues.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
QUEUE=$BIN/chronicle-queue

jqr() { jq -r "$@"; }

# Total bytes of the segment files of queue $1.
seg_bytes() {
    local total=0 f
    for f in "$1"/*.seg; do total=$((total + $(stat -c %s "$f"))); done
    echo "$total"
}

# Every record of queue $1 from its first to its head is there, once, in order: the payload
# of sequence S is S+1 (the queues here are fed by `seq 1 N`).
contiguous() {
    $TAIL --show-seq "$1" | awk '{ if ($2 != $1 + 1 || (NR > 1 && $1 != prev + 1)) { print "gap at " NR ": " $0; exit 1 } prev = $1 }'
}

t_a_capped_queue_stays_within_its_limit_while_and_after_it_is_written() {
    seq 1 3000000 | $APPEND --segment-size 64K --max-bytes 1M q
    local bytes
    bytes=$(seg_bytes q)
    ((bytes <= 1048576)) || fail "segments take $bytes bytes, more than 1M"
    expect_eq limits 1048576 "$(jqr .max_bytes q/retention.json)"
    $QUEUE info --json q >j
    expect_eq schema chronicle.queue/v1 "$(jqr .schema j)"
    expect_eq head 3000000 "$(jqr .head_seq j)"
    expect_eq bytes "$bytes" "$(jqr .bytes j)"
    expect_eq max_bytes 1048576 "$(jqr .retention.max_bytes j)"
    expect_eq mode soft "$(jqr .retention.mode j)"
    expect_eq would_delete 0 "$(jqr '.would_delete | length' j)"
    # The writer's own deletions are reported where operators look.
    [[ $(jqr .last_pass j) =~ ^20[0-9-]+T[0-9:]+Z:\ deleted\ [0-9]+\ segments?,\ .*\(max-bytes\)\;\ first\ available\ [0-9]+\ \(pid\ [0-9]+\)$ ]] ||
        fail "last_pass: $(jqr .last_pass j)"
    $QUEUE info q | grep -q "^last pass:  .*: deleted " || fail "info: no last pass line"
    [[ $(jqr .first_seq j) -gt 0 ]] || fail "nothing was deleted"
    expect_eq last-record 3000000 "$($TAIL -n 1 q)"
    contiguous q
}

t_set_changes_the_limits_and_retain_applies_them_with_a_report() {
    seq 1 100000 | $APPEND --segment-size 64K q
    expect_code 0 $QUEUE set q --max-records 20000
    expect_eq set-output "q: retention: max-records 20000 (soft)" "$(cat "$T/out")"
    $QUEUE retain --dry-run --json q >j
    expect_eq dry_run true "$(jqr .dry_run j)"
    local n first_after
    n=$(jqr '.deleted | length' j)
    ((n > 0)) || fail "the dry run lists nothing"
    expect_eq cause max-records "$(jqr '.deleted[0].cause' j)"
    expect_eq done false "$(jqr '.deleted[0].done' j)"
    first_after=$(jqr .first_after j)
    expect_eq still-there 1 "$($TAIL --from-seq 0 -c 1 q)"
    expect_code 0 $QUEUE retain q
    grep -q "^deleted 00000000000000000000.seg: .* (max-records); first available " "$T/out" ||
        fail "no deletion line: $(cat "$T/out")"
    grep -q "^q: deleted $n segments" "$T/out" || fail "no summary: $(cat "$T/out")"
    expect_eq first "$first_after" "$($QUEUE info --json q | jqr .first_seq)"
    ((100000 - first_after <= 20000)) || fail "more than 20000 records left"
    expect_code 0 $QUEUE retain q
    grep -q "^q: nothing to delete (retention: max-records 20000 (soft))" "$T/out" ||
        fail "second pass: $(cat "$T/out")"
    # none removes a limit; with none left the file goes.
    expect_code 0 $QUEUE set q --max-records none
    [[ ! -e q/retention.json ]] || fail "retention.json is still there"
    contiguous q
}

t_limits_set_while_an_idle_writer_runs_take_effect_within_10_s() {
    numbered 20000 | $APPEND --segment-size 16K q
    # A writer that holds the queue open, idle, started before the queue had limits.
    # It lives longer than the wait below, so that its final pass at exit cannot stand in
    # for the 10-second timer; the wait allows for a loaded machine (sanitizers, -j2).
    (sleep 30 | $APPEND q) &
    local idle=$! i
    for i in $(seq 1 50); do $QUEUE info q | grep -q "^writer: *pid" && break; sleep 0.1; done
    $QUEUE set q --max-records 1000 >/dev/null
    local first=0
    for i in $(seq 1 250); do
        first=$($QUEUE info --json q | jqr .first_seq)
        ((20000 - first <= 1000)) && break # the pass deletes one segment after another
        sleep 0.1
    done
    ((20000 - first <= 1000)) || fail "the running writer did not apply the new limits within 25 s (first $first)"
    $QUEUE info q | grep -q "^last pass:  .*(max-records).*(pid " || fail "$($QUEUE info q)"
    pkill -P "$idle" sleep || true # the idle writer's input ends: it exits
    wait "$idle" 2>/dev/null || true
}

t_max_age_and_keep_free_delete_with_their_cause() {
    numbered 20000 | $APPEND --segment-size 16K q
    local segs
    segs=$(ls q/*.seg | wc -l)
    $QUEUE set q --max-age 1s >/dev/null
    expect_code 0 $QUEUE retain --dry-run q
    grep -q "^q: nothing to delete" "$T/out" || fail "young records deleted: $(cat "$T/out")"
    sleep 1.2
    expect_code 0 $QUEUE retain --json q
    expect_eq cause max-age "$(jqr '.deleted[0].cause' "$T/out")"
    expect_eq deleted $((segs - 1)) "$(jqr '.deleted | length' "$T/out")"
    expect_eq left 1 "$(ls q/*.seg | wc -l)"
    # keep-free: a floor no real file system meets (99 % free) deletes every sealed segment.
    rm -rf q
    numbered 20000 | $APPEND --segment-size 16K q
    local used
    used=$(df --output=pcent q | tail -1 | tr -dc 0-9)
    if ((used < 1)); then
        echo "    note: the file system is less than 1 % used: keep-free part skipped"
        return 0
    fi
    $QUEUE set q --keep-free 99% >/dev/null
    expect_code 0 $QUEUE retain --json q
    expect_eq cause keep-free "$(jqr '.deleted[0].cause' "$T/out")"
    expect_eq left 1 "$(ls q/*.seg | wc -l)"
    expect_eq last "$(numbered 20000 | tail -n 1)" "$($TAIL -n 1 q)"
}

t_a_named_reader_pins_its_data_until_a_hard_limit_expires_it() {
    seq 1 100000 | $APPEND --segment-size 64K q
    $READERS q create audit --at 10
    $QUEUE set q --max-records 1000 >/dev/null
    expect_code 0 $QUEUE retain q
    grep -q "kept .* for reader 'audit' at 10" "$T/out" || fail "no pin line: $(cat "$T/out")"
    grep -q "^q: nothing to delete" "$T/out" || fail "deleted under a pin: $(cat "$T/out")"
    $QUEUE info q >info
    grep -q "^pinned: .*reader 'audit' at 10" info || fail "info: $(cat info)"
    expect_code 0 $READERS q --check

    $QUEUE set q --hard >/dev/null
    expect_code 0 $QUEUE retain --json q
    local first lost
    first=$(jqr .first_after "$T/out")
    expect_eq expired audit "$(jqr '.expired[0].name' "$T/out")"
    lost=$(jqr '.expired[0].records_lost' "$T/out")
    expect_eq lost $((first - 10)) "$lost"
    # Every tool tells the truth about it.
    $READERS q --json >j
    expect_eq state expired "$(jqr '.readers[0].state' j)"
    expect_eq records_lost "$lost" "$(jqr '.readers[0].records_lost' j)"
    expect_code 2 $READERS q --check
    grep -q "CRITICAL.*audit expired" "$T/out" || fail "check: $(cat "$T/out")"
    expect_code 7 $TAIL --reader audit q
    grep -q "no longer in q" "$T/err" || fail "tail: $(cat "$T/err")"
    grep -q -- "--skip-expired" "$T/err" || fail "no way on: $(cat "$T/err")"
    grep -q "chronicle-readers q reset audit --to-start" "$T/err" || fail "no reset hint"
    expect_code 0 $TAIL --reader audit --skip-expired -c 1 q
    expect_eq next-record $((first + 1)) "$(cat "$T/out")"
    grep -q "warning: $lost records were deleted by retention before they were read" "$T/err" ||
        fail "no loss report: $(cat "$T/err")"
    expect_code 0 $READERS q --check
}

t_a_named_follower_gets_every_record_while_segments_are_deleted_under_it() {
    seq 1 10 | $APPEND --segment-size 64K --max-records 5000 q
    $TAIL -f --reader f q >got &
    local follower=$!
    # Its cursor pins the records from the first one on only once it exists: a follower
    # registered after the first append's retention would rightly start behind the deletion.
    wait_until 30 test -e q/readers/f.cursor || fail "the follower did not register"
    for i in 1 2 3 4 5; do
        seq $((i * 100000 + 1)) $((i * 100000 + 40000)) | $APPEND q
    done
    local want=$((10 + 5 * 40000)) n=0
    for _ in $(seq 1 600); do
        n=$(wc -l <got)
        ((n >= want)) && break
        sleep 0.1
    done
    if ((n < want)); then
        # Slow, or asleep? Its state tells (a parked follower with lag is a lost wake-up).
        echo "    follower after 60 s: $n of $want lines; $($READERS q 2>&1 | tr '\n' ';')" >&2
    fi
    kill "$follower"
    wait "$follower" || true
    expect_eq received "$want" "$(wc -l <got)"
    expect_eq order-ok "" "$(awk 'NR > 1 && $1 <= prev { print NR; exit } { prev = $1 }' got)"
    # What the follower has read is deleted once its cursor moves past it.
    $QUEUE retain q >/dev/null
    local first
    first=$($QUEUE info --json q | jqr .first_seq)
    ((first > 0)) || fail "nothing was deleted behind the follower"
}

t_an_anonymous_reader_behind_a_deletion_gets_exit_7() {
    seq 1 50000 | $APPEND --segment-size 64K q
    $QUEUE set q --max-records 1000 >/dev/null
    $QUEUE retain q >/dev/null
    expect_code 7 $TAIL --from-seq 5 q
    grep -q "sequence 5 is no longer in q" "$T/err" || fail "$(cat "$T/err")"
    expect_code 0 $TAIL --from-seq 5 --skip-expired -c 1 q
    [[ -s $T/out ]] || fail "nothing printed"
}

t_bad_limits_are_usage_errors_naming_the_option() {
    seq 1 10 | $APPEND q
    expect_code 2 $QUEUE set q
    grep -q "nothing to set" "$T/err" || fail "$(cat "$T/err")"
    expect_code 2 $QUEUE set q --max-bytes 0
    grep -q -- "--max-bytes" "$T/err" || fail "$(cat "$T/err")"
    expect_code 2 $QUEUE set q --keep-free 150%
    expect_code 2 $QUEUE set q --max-age 10parsecs
    expect_code 2 $QUEUE set q --hard --soft
    expect_code 2 $APPEND --max-records none q </dev/null
    expect_code 3 $QUEUE info nosuchqueue
    # An existing queue's limits are changed with set, not by a writer's options.
    $QUEUE set q --max-bytes 1G >/dev/null
    expect_code 2 $APPEND --max-bytes 2G q </dev/null
    grep -q "chronicle-queue set" "$T/err" || fail "$(cat "$T/err")"
    echo y | $APPEND --max-bytes 1G q
    expect_code 0 $QUEUE set q --keep-free 15%
    expect_eq keep-free "q: retention: max-bytes 1.0 GiB, keep-free 15% (soft)" "$(cat "$T/out")"
}

t_a_damaged_retention_file_is_reported_not_guessed() {
    seq 1 10 | $APPEND q
    echo '{"version": 9}' >q/retention.json
    expect_code 7 $QUEUE info q
    grep -q "retention.json: version 9" "$T/err" || fail "$(cat "$T/err")"
    expect_code 7 $QUEUE retain q
    # The writer still appends (retention errors never stop ingestion).
    echo more | $APPEND q
    expect_eq last more "$($TAIL -n 1 q)"
}

t_kill_9_during_deletion_leaves_a_contiguous_queue() {
    local i
    for i in $(seq 1 10); do
        rm -rf q
        numbered 200000 | $APPEND --segment-size 16K q  # ~400 segments
        $QUEUE set q --max-records 1 >/dev/null
        $QUEUE retain q >/dev/null &
        sleep "0.0$((RANDOM % 3))$((RANDOM % 10))"  # 0..29 ms: before, during or after
        kill -9 $! 2>/dev/null || true
        wait $! 2>/dev/null || true
        contiguous q
        # The next pass finishes the job, and a writer goes on after the head.
        $QUEUE retain q >/dev/null
        echo 200001 | $APPEND q
        expect_eq tail 200001 "$($TAIL -n 1 q)"
        contiguous q
    done
}

t_a_follower_of_a_removed_queue_ends_with_a_clear_error() {
    seq 1 3 | $APPEND q
    ($TAIL -f q >out 2>err; echo $? >rc) &
    # Following (its records printed, not still starting), then removed: it notices.
    wait_until 30 eval '[[ $(wc -l <out) == 3 ]]' || fail "the follower did not start"
    rm -rf q
    wait_until 30 test -s rc || fail "the follower of a removed queue still runs"
    expect_eq exit 3 "$(cat rc)"
    grep -q "was removed while" err || fail "$(cat err)"
}

t_a_named_follower_of_a_replaced_queue_names_the_new_one() {
    seq 1 3 | $APPEND q
    local old
    old=$($QUEUE info --json q | jqr .id)
    [[ $old =~ ^[0-9a-f]{32}$ ]] || fail "no id: $old"
    ($TAIL -f --reader r q >out 2>err; echo $? >rc) &
    wait_until 30 eval '[[ $(wc -l <out) == 3 ]]' || fail "the follower did not start"
    # Replaced in one step (as a deployment would): the new queue is in place before the
    # old one's files go.
    seq 1 3 | $APPEND q.new
    mv q q.old
    mv q.new q
    rm -rf q.old
    local new
    new=$(jqr .id q/queue.json)
    [[ $new != "$old" ]] || fail "the new queue has the old id"
    wait_until 30 test -s rc || fail "the follower of a replaced queue still runs"
    expect_eq exit 3 "$(cat rc)"
    grep -q "a new queue, id $new, is there now" err || fail "$(cat err)"
    expect_eq printed 3 "$(wc -l <out)"
}

# poke FILE OFFSET BYTES (printf format): writes bytes into a file in place.
poke() { printf "$3" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }

t_verify_finds_each_kind_of_damage_with_its_file_and_offset() {
    mkq() { rm -rf q; numbered 5000 | $APPEND --segment-size 16K q; }
    mkq
    local segs mid next
    segs=$(ls q/*.seg | wc -l)
    mid=$(ls q/*.seg | sed -n 2p)
    next=$(ls q/*.seg | sed -n 3p)
    ((segs >= 8)) || fail "5000 records of 24 bytes in only $segs 16K segments"
    expect_code 0 $QUEUE verify q
    grep -q "^q: $segs segments, 5000 records (first 0, head 5000), OK$" "$T/out" || fail "$(cat "$T/out")"
    # A missing middle segment.
    rm $mid
    expect_code 7 $QUEUE verify q
    grep -q "^$next: offset 0: not contiguous: .*(${mid#q/} is missing" "$T/out" ||
        fail "missing: $(cat "$T/out")"
    # A truncated segment.
    mkq
    truncate -s 8192 $mid
    expect_code 7 $QUEUE verify q
    grep -q "^$mid: offset 0: .*file size 8192" "$T/out" || fail "truncated: $(cat "$T/out")"
    # A flipped state word of a record in the middle: a segment's first record stands alone
    # (40 bytes for a 24-byte line); the pack of the records after it follows.
    local at=$((4096 + 40))
    mkq
    poke $mid $at 'JUNK'
    expect_code 7 $QUEUE verify --json q
    expect_eq ok false "$(jqr .ok "$T/out")"
    expect_eq file "${mid#q/}" "$(jqr '.problems[0].file' "$T/out")"
    expect_eq offset $at "$(jqr '.problems[0].offset' "$T/out")"
    expect_eq repairable false "$(jqr '.problems[0].repairable' "$T/out")"
    # --repair never "fixes" a committed record: the damage stays, reported.
    expect_code 7 $QUEUE verify --repair q
    grep -q "offset $at: damaged record" "$T/out" || fail "$(cat "$T/out")"
    # A length byte inside that pack: its records no longer fill it.
    mkq
    poke $mid $((at + 16 + 4)) '\x7f'
    expect_code 7 $QUEUE verify q
    grep -q "^$mid: offset $at: damaged pack: " "$T/out" || fail "pack: $(cat "$T/out")"
    local base=$((10#$(basename $mid .seg)))
    expect_code 7 $TAIL --from-seq $((base + 2)) -c 1 q
    grep -q "offset $at: damaged pack" "$T/err" || fail "tail: $(cat "$T/err")"
}

t_verify_repair_rewrites_the_index_and_clears_a_torn_tail_and_nothing_else() {
    numbered 5000 | $APPEND --segment-size 16K q
    $TAIL q >before
    local mid
    mid=$(ls q/*.seg | sed -n 2p)
    poke $mid 72 '\x01' # index slot 1: one byte off
    expect_code 7 $QUEUE verify q
    grep -q "offset 72: index slot 1 names offset" "$T/out" || fail "$(cat "$T/out")"
    grep -q "1 repairable with --repair" "$T/out" || fail "$(cat "$T/out")"
    expect_code 0 $QUEUE verify --repair q
    grep -q "rewrote 1 index slot of ${mid#q/}" "$T/out" || fail "$(cat "$T/out")"
    expect_code 0 $QUEUE verify q
    $TAIL q >after
    cmp -s before after || fail "the records changed"
    # A torn tail in a one-record queue: the record is at 4096 (24 bytes), junk after it.
    rm -rf q
    echo x | $APPEND --segment-size 16K q
    poke q/00000000000000000000.seg $((4096 + 24 + 8)) 'junk'
    expect_code 7 $QUEUE verify q
    grep -q "offset $((4096 + 24 + 8)): bytes after the last committed record" "$T/out" ||
        fail "$(cat "$T/out")"
    expect_code 0 $QUEUE verify --repair q
    expect_eq record x "$($TAIL q)"
    # With a writer alive, repair is refused (the writer keeps the queue consistent).
    (sleep 3 | $APPEND q) &
    local i
    for i in $(seq 1 50); do $QUEUE info q | grep -q "^writer: *pid" && break; sleep 0.1; done
    expect_code 4 $QUEUE verify --repair q
    grep -q "has a writer (pid" "$T/err" || fail "$(cat "$T/err")"
    expect_code 0 $QUEUE verify q
    grep -q "^note: a writer is alive" "$T/out" || fail "$(cat "$T/out")"
    wait
}

t_verify_reports_damaged_cursors_and_files_and_notes_expired_readers() {
    numbered 5000 | $APPEND --segment-size 16K q
    $READERS q create ok --at 4000
    $READERS q create old --at 5
    $QUEUE set q --max-records 1000 --hard >/dev/null
    $QUEUE retain q >/dev/null
    expect_code 0 $QUEUE verify q
    grep -q "^note: reader 'old' is expired: at 5" "$T/out" || fail "$(cat "$T/out")"
    poke q/readers/ok.cursor 0 'X'
    echo '{"version": 7}' >q/retention.json
    expect_code 7 $QUEUE verify q
    grep -q "^q/readers/ok.cursor: offset 0: " "$T/out" || fail "$(cat "$T/out")"
    grep -q "^q/retention.json: offset 0: .*version 7" "$T/out" || fail "$(cat "$T/out")"
}

run_tests
