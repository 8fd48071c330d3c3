#!/usr/bin/env bash
# The damage matrix (issue 8, "Deliver 3"): every kind of file in a queue directory
# (docs/DESIGN.md §2) x every kind of damage, and every tool run on the result.
#
# A cell is (file kind, damage); a run is (cell, tool). Each run gets its own copy of the
# damaged queue and passes when the tool
#   - ends within KILL_AFTER seconds (every call is `timeout -s KILL 10`; a kill is a hang),
#   - is not killed by a signal (exit >= 128: SIGBUS is 135, SIGSEGV 139),
#   - either WORKS: the exit status and output the undamaged queue gives (the "oracle",
#     computed from the records the fixture wrote, not from a tool run), or fails CLEARLY:
#     a documented exit code that fits (README's table; see errset below), every stderr
#     line starting `chronicle-<tool>: ` with exactly one that is not a note, no
#     "internal error", and what it printed before failing is a prefix of the oracle's
#     output (nothing wrong printed);
#   - changes nothing it does not own (sha256 + type + mode of every file before and
#     after; the per-tool rules are in allowed_change below; for chronicle-append the
#     committed bytes and immutable header fields of every segment are compared too, and
#     its new record must be readable afterwards at the sequence it printed).
#
# Tools (the brief's list, plus -f --until-writer-exits, which issue 8 item 4 says hangs
# on a damaged writer.lock): chronicle-append --print-seq; chronicle-tail --show-seq
# (plain, -n 2, --reader r1 -c 2, -f --timeout 300ms, -f --until-writer-exits);
# chronicle-readers (list, --json, --check --max-lag 50, show r1).
#
# "Unreadable" (chmod 000) does not stop root. When the suite runs as root, the unreadable
# cells give every file of the copy to everyone (a+rwX), make the damaged one mode 000 and
# run the tool as nobody (setpriv --reuid 65534); run as another user they chmod only.
#
# The fixtures (built once, by the real tools):
#   main: 16 KiB segments, 140 records of 190 bytes (payload "rec-NNNNN-000…"), three
#         segments (0, 59, 118); reader r1 at 10 (lag 130: --check --max-lag 50 is
#         CRITICAL); reader f1 at 140 whose follower was killed -9 while parked, leaving
#         a stale f1.efd and (linux notifier) f1.fifo; wake.shm; writer.lock; queue.json;
#         retention.json (max-bytes 1G: never reached).
#   only: one segment with 30 records, no readers (for segonly: issue 8 item 5).
#
# Environment: CHRONICLE_DAMAGE_JOBS (runs in parallel, default 8: a hang mostly sleeps),
# CHRONICLE_DAMAGE_ONLY (a regex on "kind/damage/tool" to run a subset),
# CHRONICLE_DAMAGE_REPORT (a file that receives one TSV line per run: kind, damage, tool,
# PASS/FAIL, symptom class, exit code, detail — for a pass: "works" or the error it gave).
# Each kind is one test (t_damage_<kind>); its failing runs are listed under it, and a
# summary grouped by symptom is printed at the end.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KILL_AFTER=10
JOBS=${CHRONICLE_DAMAGE_JOBS:-8}
ONLY=${CHRONICLE_DAMAGE_ONLY:-}
FOLLOW_IDLE=300ms
NOBODY=65534
DATA_WORD=1096040772 # "DATA" little-endian
SEAL_WORD=1279346003 # "SEAL"

NOTIFIER=linux
$TAIL --version 2>/dev/null | grep -q "notifier: linux" || NOTIFIER=portable

FIX=$(mktemp -d /tmp/chronicle-damage.XXXXXX)
chmod 755 "$FIX"
mkdir -p "$FIX/results"
trap 'print_summary; rm -rf "$FIX"' EXIT

TOOLS=(append tail tail-n2 tail-reader tail-f tail-fu readers-list readers-json readers-check readers-show)

# The helpers below that answer a question set a global named after it (CMD, PROG, TARGET,
# VARIANT, ERRSET) instead of printing it: the matrix makes ~1500 runs on 2 cores, and a
# $(...) per question was a third of its processes.

# tool_cmd TOOL: CMD, the command line (queue path "q", run in the copy's directory), and
# PROG, the program's name (its stderr lines start with it).
tool_cmd() {
    case $1 in
    append) CMD="$APPEND --print-seq q" ;;
    tail) CMD="$TAIL --show-seq q" ;;
    tail-n2) CMD="$TAIL --show-seq -n 2 q" ;;
    tail-reader) CMD="$TAIL --show-seq --reader r1 -c 2 q" ;;
    tail-f) CMD="$TAIL --show-seq -f -n all --timeout $FOLLOW_IDLE q" ;;
    tail-fu) CMD="$TAIL --show-seq -f -n all --until-writer-exits q" ;;
    readers-list) CMD="$READERS q" ;;
    readers-json) CMD="$READERS q --json" ;;
    readers-check) CMD="$READERS q --check --max-lag 50" ;;
    readers-show) CMD="$READERS q show r1" ;;
    esac
    case $1 in append) PROG=chronicle-append ;; tail*) PROG=chronicle-tail ;; *) PROG=chronicle-readers ;; esac
}

payload() { printf 'rec-%05d-%0180d' "$1" 0; }

# ---------------------------------------------------------------------------------------
# Fixtures

# seg_walk FILE: sets REC_OFFS (offsets of the DATA records), SEAL_OFF (-1 if none) and
# CEND (end of the committed bytes: after the last record, or after the seal).
seg_walk() {
    local -a w
    mapfile -t w < <(od -An -v -tu4 -w4 "$1" | tr -d ' ')
    local off=4096 len
    REC_OFFS=()
    SEAL_OFF=-1
    while ((off / 4 + 1 < ${#w[@]})); do
        if ((w[off / 4] == DATA_WORD)); then
            REC_OFFS+=("$off")
            len=${w[off / 4 + 1]}
            off=$((off + 16 + (len + 7) / 8 * 8))
        elif ((w[off / 4] == SEAL_WORD)); then
            SEAL_OFF=$off
            off=$((off + 16))
            break
        else
            break
        fi
    done
    CEND=$off
}

build_fixtures() {
    local d=$FIX/main i
    mkdir -p "$d"
    (
        cd "$d" || exit 1
        # Limits far above the fixture's size: retention.json exists (damage kind "limits")
        # and nothing is ever deleted.
        for ((i = 0; i < 140; i++)); do payload $i; echo; done |
            $APPEND --segment-size 16K --max-bytes 1G q || exit 1
        $TAIL --reader r1 -c 10 q >/dev/null || exit 1
        $TAIL -f --reader f1 q >/dev/null &
        local pid=$!
        for ((i = 0; i < 200; i++)); do
            [[ -f q/readers/f1.efd ]] && [[ $($READERS q show f1 --json 2>/dev/null | jq -r '.position, .follower.sleeping' | xargs) == "140 true" ]] && break
            sleep 0.05
        done
        kill -9 $pid
        wait $pid 2>/dev/null
        [[ -f q/readers/f1.efd ]] || exit 1
    ) || { echo "cannot build the main fixture" >&2; return 1; }
    mkdir -p "$FIX/only"
    (cd "$FIX/only" && for ((i = 0; i < 30; i++)); do payload $i; echo; done | $APPEND --segment-size 16K q) ||
        { echo "cannot build the single-segment fixture" >&2; return 1; }
    local segs
    mapfile -t segs < <(cd "$d/q" && ls -- *.seg)
    ((${#segs[@]} == 3)) || { echo "fixture: expected 3 segments, got ${segs[*]}" >&2; return 1; }
    SEG0=${segs[0]} SEGMID=${segs[1]} SEGLAST=${segs[2]}
    SEGONLY=$(cd "$FIX/only/q" && ls -- *.seg)
    MIDBASE=$((10#${SEGMID%.seg}))
    # Committed ends and record offsets of every segment (for damage offsets and the
    # writer's committed-bytes check).
    : >"$FIX/cend"
    local f name
    for f in "$d/q/$SEG0" "$d/q/$SEGMID" "$d/q/$SEGLAST" "$FIX/only/q/$SEGONLY"; do
        seg_walk "$f"
        name=$(basename "$f")
        local fx=main
        [[ $f == "$FIX/only/"* ]] && fx=only
        echo "$fx $name $CEND" >>"$FIX/cend"
        local n=${#REC_OFFS[@]}
        echo "${REC_OFFS[0]} ${REC_OFFS[n / 2]} ${REC_OFFS[n - 1]} $SEAL_OFF" >"$FIX/offs.$fx.$name"
    done
    # Looked up by every run: the committed end of each segment, the last segment of each
    # fixture (a writer's new segment must come after it).
    declare -gA CEND_OF=()
    while read -r fx name f; do CEND_OF[$fx/$name]=$f; done <"$FIX/cend"
    MAXSEG_main=$SEGLAST MAXSEG_only=$SEGONLY
    build_oracles
}

# Oracles: $FIX/oracle/<variant>/<tool>.{rc,out}. rc "any" = any output with exit 0 is right.
# Variants: full (the fixture), trimmed (first segment gone: what retention would leave),
# nor1 (reader r1 deleted), noreaders (readers/ gone: no readers at all), noqueue (no
# queue directory), fresh (a directory without segments: a new queue), only (fixture 2).
oracle_variant() { # VARIANT LO HI "name pos;name pos" | VARIANT any | VARIANT noqueue
    local o=$FIX/oracle/$1
    mkdir -p "$o"
    local t
    if [[ $2 == any || $2 == noqueue ]]; then
        for t in "${TOOLS[@]}"; do
            if [[ $2 == noqueue ]]; then echo 3 >"$o/$t.rc"; else echo any >"$o/$t.rc"; fi
            : >"$o/$t.out"
        done
        if [[ $2 == noqueue ]]; then echo "CHRONICLE UNKNOWN:" >"$o/readers-check.out"; fi
        echo 0 >"$o/append.rc"
        echo 0 >"$o/append.out"
        return
    fi
    local lo=$2 hi=$3 readers=$4 s
    lines() { local s; for ((s = $1; s < $2; s++)); do printf '%d\trec-%05d-%0180d\n' $s $s 0; done; }
    echo 0 >"$o/append.rc"
    echo "$hi" >"$o/append.out"
    echo 0 >"$o/tail.rc"
    lines "$lo" "$hi" >"$o/tail.out"
    echo 0 >"$o/tail-n2.rc"
    lines $((hi - 2 > lo ? hi - 2 : lo)) "$hi" >"$o/tail-n2.out"
    echo 6 >"$o/tail-f.rc"
    cp "$o/tail.out" "$o/tail-f.out"
    echo 0 >"$o/tail-fu.rc"
    cp "$o/tail.out" "$o/tail-fu.out"
    # Readers: "name pos" pairs.
    local r1pos="" worst=0 name pos
    local -a pairs=()
    IFS=';' read -ra pairs <<<"$readers"
    {
        echo "head $hi first $lo"
        for s in "${pairs[@]}"; do
            read -r name pos <<<"$s"
            echo "$name $pos"
            [[ $name == r1 ]] && r1pos=$pos
            ((hi - pos > worst)) && worst=$((hi - pos))
        done
    } >"$o/readers-list.out"
    cp "$o/readers-list.out" "$o/readers-json.out"
    echo 0 >"$o/readers-list.rc"
    echo 0 >"$o/readers-json.rc"
    if ((worst > 50)); then
        echo 2 >"$o/readers-check.rc"
        echo "CHRONICLE CRITICAL:" >"$o/readers-check.out"
    else
        echo 0 >"$o/readers-check.rc"
        echo "CHRONICLE OK:" >"$o/readers-check.out"
    fi
    if [[ -n $r1pos ]]; then
        echo 0 >"$o/readers-show.rc"
        printf 'reader: r1\nposition: %s\nhead: %s\n' "$r1pos" "$hi" >"$o/readers-show.out"
        if ((r1pos < lo)); then
            echo 7 >"$o/tail-reader.rc" # expired: the position is no longer on disk
            : >"$o/tail-reader.out"
        else
            echo 0 >"$o/tail-reader.rc"
            lines "$r1pos" $((r1pos + 2 < hi ? r1pos + 2 : hi)) >"$o/tail-reader.out"
        fi
    else
        echo 3 >"$o/readers-show.rc"
        : >"$o/readers-show.out"
        echo 0 >"$o/tail-reader.rc" # a new name starts at the start
        lines "$lo" $((lo + 2 < hi ? lo + 2 : hi)) >"$o/tail-reader.out"
    fi
}

build_oracles() {
    oracle_variant full 0 140 "f1 140;r1 10"
    oracle_variant trimmed "$MIDBASE" 140 "f1 140;r1 10"
    oracle_variant nor1 0 140 "f1 140"
    oracle_variant noreaders 0 140 ""
    oracle_variant only 0 30 ""
    oracle_variant noqueue noqueue
    oracle_variant fresh any
    # A cursor whose magic, version or size field is wrong is not a cursor: tail --reader
    # must refuse it (exit 7) rather than guess, as it does for the magic already.
    mkdir -p "$FIX/oracle/badcursor"
    cp "$FIX"/oracle/full/* "$FIX/oracle/badcursor/"
    echo 7 >"$FIX/oracle/badcursor/tail-reader.rc"
    : >"$FIX/oracle/badcursor/tail-reader.out"
    # Stray files: the records and the writer's result must not change; chronicle-readers
    # may list a stray cursor as a reader (any output, exit 0).
    mkdir -p "$FIX/oracle/stray"
    cp "$FIX"/oracle/full/* "$FIX/oracle/stray/"
    local t
    for t in readers-list readers-json readers-show; do echo any >"$FIX/oracle/stray/$t.rc"; done
}

# What a correct tool may legitimately see instead of the fixture (a damage that leaves a
# valid queue behind); everything else is compared with the undamaged fixture.
variant_of() { # KIND DAMAGE -> VARIANT
    case $1/$2 in
    cursor/missing) VARIANT=nor1 ;;
    readersdir/missing | readersdir/empty) VARIANT=noreaders ;;
    queuedir/missing) VARIANT=noqueue ;;
    queuedir/empty | segonly/missing) VARIANT=fresh ;;
    # Debatable: the first segment missing is what retention leaves (kcat and journalctl
    # start at the oldest data still there), so tools may work from the next segment.
    seg0/missing) VARIANT=trimmed ;;
    segonly/*) VARIANT=only ;;
    cursor/flip:magic@* | cursor/flip:version@* | cursor/flip:size@*) VARIANT=badcursor ;;
    stray/*) VARIANT=stray ;;
    # Everything else must give the undamaged queue's results or a clear error. Cells where
    # that is a choice, made as a user of tail/journalctl/kcat would expect:
    #  - seglast/missing: chronicle-append recreating the segment restarts at 118 and hands
    #    out sequence numbers 118..139 a second time (f1's cursor at 140 then silently
    #    skips the new records, a consumer deduplicating by sequence drops them): it must
    #    refuse (exit 7), as Kafka does with a hole in a partition. chronicle-readers
    #    reporting head 118 while f1 sits at 140 hides the loss: error, or the true head.
    #  - seg0|segonly/set:seg_state=0 (the first segment says "preparing" but holds
    #    committed records, e.g. a writer killed between publishing its first batch and
    #    marking the segment live): no earlier segment can hold an unpublished batch start,
    #    so its DATA records are committed; printing nothing with exit 0 hides committed
    #    data. Print them, or report the segment as damaged (exit 7).
    #  - cursor/flip:next_seq*: the flip makes r1's position 245 (or 2^56+10), past the
    #    head (140), which no reader can have stored: tail --reader printing nothing with
    #    exit 0 (and storing it again) silently skips everything up to 245; --check saying
    #    OK hides it. A position past the head must be an error (exit 7) / not OK.
    *) VARIANT=full ;;
    esac
}

# ---------------------------------------------------------------------------------------
# The matrix

KINDS=(control lock seg0 segmid seglast segonly wake prod qid limits cursor efd fifo readersdir queuedir stray)

target_of() { # KIND -> TARGET, the path of the damaged thing, relative to the cell directory
    case $1 in
    lock) TARGET=q/writer.lock ;;
    seg0) TARGET="q/$SEG0" ;;
    segmid) TARGET="q/$SEGMID" ;;
    seglast) TARGET="q/$SEGLAST" ;;
    segonly) TARGET="q/$SEGONLY" ;;
    wake) TARGET=q/wake.shm ;;
    prod) TARGET=q/producers.shm ;;
    qid) TARGET=q/queue.json ;;
    limits) TARGET=q/retention.json ;;
    cursor) TARGET=q/readers/r1.cursor ;;
    efd) TARGET=q/readers/f1.efd ;;
    fifo) TARGET=q/readers/f1.fifo ;;
    readersdir) TARGET=q/readers ;;
    queuedir) TARGET=q ;;
    control | stray) TARGET=q ;;
    esac
}

FILE_DAMAGES=(missing empty trunc-half trunc-5 type-fifo type-dir type-symlink unreadable)

# damages_of KIND: one damage per line. flip:NAME@OFFSET XORs the byte at OFFSET with 0xff.
damages_of() {
    local k=$1 f
    case $k in
    control) printf '%s\n' pristine pristine-as-nobody ;;
    seg0 | segmid | seglast | segonly)
        printf '%s\n' "${FILE_DAMAGES[@]}"
        local fx=main seg
        target_of "$k"
        seg=${TARGET##*/}
        [[ $k == segonly ]] && fx=only
        local r0 rmid rlast seal
        read -r r0 rmid rlast seal <"$FIX/offs.$fx.$seg"
        printf '%s\n' flip:magic@0 flip:version@8 flip:header_size@12 flip:segment_size@16 \
            flip:base_seq@24 flip:created_ns@32 flip:index_stride_log2@40 flip:index_slots@44 \
            flip:seg_state@48 flip:reserved@52 flip:written_hw@57 flip:slot1.offset@72 \
            flip:slot1.seq@76 "flip:rec0.state@$r0" "flip:rec0.length@$r0+4" \
            "flip:rec0.length.hi@$r0+5" "flip:recmid.state@$rmid" "flip:recmid.length.hi@$rmid+5" \
            set:seg_state=0@48 set:rec0=SEAL@$r0
        if ((seal >= 0)); then
            echo "flip:seal.state@$seal"
        else
            printf '%s\n' "flip:reclast.state@$rlast" "flip:reclast.length.hi@$rlast+5"
        fi
        ;;
    wake)
        printf '%s\n' "${FILE_DAMAGES[@]}" flip:magic@0 flip:version@8 flip:size@13 \
            flip:sleepers@64 flip:rescans@128 flip:wakes_sent@136
        ;;
    prod) # producers.h: magic, version, the mutex (64), the tail (128: base, off, seq, ts,
        # slot, check at 168), the epoch (176), the first writer slot (192)
        printf '%s\n' "${FILE_DAMAGES[@]}" flip:magic@0 flip:version@8 flip:mutex@64 \
            flip:tail.off@136 flip:tail.check@168 flip:epoch@176 flip:slot0.pid@192
        ;;
    cursor)
        printf '%s\n' "${FILE_DAMAGES[@]}" flip:magic@0 flip:version@8 flip:size@13 \
            flip:created_ns@16 flip:next_seq@24 flip:next_seq.hi@31 flip:commit_ns@32 \
            flip:owner_pid@40 flip:owner_start@48 flip:sleep_word@64 flip:wait_seq@72 \
            flip:wakeups@80
        ;;
    lock)
        local size
        size=$(stat -c %s "$FIX/main/q/writer.lock")
        printf '%s\n' "${FILE_DAMAGES[@]}" flip:brace@0 flip:pid@7 "flip:started_ns@$((size - 3))" \
            garbage json-pid1
        ;;
    qid)
        local o
        o=$(grep -bo '"id":"' "$FIX/main/q/queue.json" | head -1 | cut -d: -f1)
        printf '%s\n' "${FILE_DAMAGES[@]}" flip:brace@0 "flip:id@$((o + 6))" garbage
        ;;
    limits)
        local o
        o=$(grep -bo '"version": ' "$FIX/main/q/retention.json" | head -1 | cut -d: -f1)
        printf '%s\n' "${FILE_DAMAGES[@]}" flip:brace@0 "flip:version@$((o + 11))" garbage
        ;;
    efd)
        local j=$FIX/main/q/readers/f1.efd o
        printf '%s\n' "${FILE_DAMAGES[@]}" flip:brace@0 garbage json-pid1
        for f in pid fd name fifo eventfd_id; do
            o=$(grep -bo "\"$f\":" "$j" | head -1 | cut -d: -f1)
            # the first byte of the value (inside the quotes for strings)
            local q=0
            [[ $f == name || $f == fifo ]] && q=1
            [[ -n $o ]] && echo "flip:$f@$((o + ${#f} + 3 + q))"
        done
        ;;
    fifo) printf '%s\n' missing type-file-empty type-file-data type-dir type-symlink unreadable ;;
    readersdir) printf '%s\n' missing empty type-file type-fifo type-symlink unreadable ;;
    queuedir) printf '%s\n' missing empty type-file type-fifo type-symlink unreadable ;;
    # Files that are not the queue's, planted where its files live.
    stray) printf '%s\n' cursor-non-utf8-name junk-in-readers junk-seg-name next-seg-tmp segment-after-gap ;;
    esac
}

# apply_damage CELLDIR KIND DAMAGE. Symlinks are relative (the copy is copied per tool)
# and point into CELLDIR/ext, which mirrors q/.
apply_damage() {
    local c=$1 k=$2 d=$3 t
    target_of "$k"
    t=$TARGET
    cd "$c" || return 1
    local rel=${t#q}
    rel=${rel#/}
    case $d in
    pristine | pristine-as-nobody) ;;
    missing) rm -rf -- "$t" ;;
    empty)
        if [[ -d $t ]]; then find "$t" -mindepth 1 -delete; else : >"$t"; fi
        ;;
    trunc-half) truncate -s $(($(stat -c %s "$t") / 2)) "$t" ;;
    trunc-5) truncate -s 5 "$t" ;;
    type-fifo) rm -rf -- "$t" && mkfifo "$t" ;;
    type-dir) rm -rf -- "$t" && mkdir "$t" ;;
    type-file | type-file-data) rm -rf -- "$t" && echo "not a $k" >"$t" ;;
    type-file-empty) rm -rf -- "$t" && : >"$t" ;;
    type-symlink)
        if [[ $t == q ]]; then
            mv q ext && ln -s ext q
        else
            mkdir -p "ext/$(dirname "$rel")"
            mv "$t" "ext/$rel"
            local up
            up=$(dirname "$t" | sed 's#[^/][^/]*#..#g')
            ln -s "$up/ext/$rel" "$t"
        fi
        ;;
    unreadable) chmod 000 "$t" ;;
    cursor-non-utf8-name) cp q/readers/r1.cursor q/readers/$'r\xff\xfe'.cursor ;;
    junk-in-readers) echo notes >q/readers/notes.txt ;;
    junk-seg-name) head -c 16384 /dev/zero >q/abc.seg ;;
    # a transient of the writer's (DESIGN §2): the writer removes it, readers ignore it
    next-seg-tmp) head -c 16384 /dev/urandom >q/.next.seg.tmp ;;
    # a copy of the last segment, named as if it started at 500: its header disagrees
    segment-after-gap) cp "q/$SEGLAST" q/00000000000000000500.seg ;;
    garbage) printf 'this is not json\n' >"$t" ;;
    json-pid1)
        # An unrelated live process (pid 1) with a start time that is not its own.
        if [[ $k == lock ]]; then
            printf '{"pid":1,"start_time":1,"started_ns":1}\n' >"$t"
        else
            printf '{"version":1,"name":"f1","pid":1,"fd":0,"start_time":1,"eventfd_id":0,"fifo":"f1.fifo","cursor":"f1.cursor","created_ns":1,"ephemeral":false}\n' >"$t"
        fi
        ;;
    flip:*)
        local off=$((${d#*@}))
        local b
        b=$(od -An -tu1 -j "$off" -N1 "$t" | tr -d ' ')
        printf "$(printf '\\%03o' $((b ^ 255)))" | dd of="$t" bs=1 seek="$off" conv=notrunc status=none
        ;;
    set:*)
        local off=$((${d#*@})) what=${d#set:}
        what=${what%@*}
        case $what in
        seg_state=0) printf '\0\0\0\0' | dd of="$t" bs=1 seek="$off" conv=notrunc status=none ;;
        rec0=SEAL) printf 'SEAL\0\0\0\0' | dd of="$t" bs=1 seek="$off" conv=notrunc status=none ;;
        esac
        ;;
    *) echo "unknown damage $d" >&2; return 1 ;;
    esac
}

# ---------------------------------------------------------------------------------------
# snapshot: "path<TAB>type<TAB>mode<TAB>size<TAB>link<TAB>sha256" for q and ext in the
# current directory — one find and one sha256sum per snapshot.
snapshot() {
    local -a roots=()
    [[ -e q || -L q ]] && roots+=(q)
    [[ -e ext ]] && roots+=(ext)
    ((${#roots[@]})) || return 0
    # find prints an entry's line, then hands regular files to sha256sum ("<hash>  <path>",
    # no tab: that is how the awk tells them apart).
    find "${roots[@]}" -printf '%p\t%y\t%m\t%s\t%l\n' -type f -exec sha256sum {} + 2>/dev/null |
        awk -F'\t' -v OFS='\t' 'index($0, "\t") == 0 { h[substr($0, 67)] = substr($0, 1, 64); next }
            { if ($2 == "d") $4 = 0; e[$1] = $0 }
            END { for (p in e) print e[p], (p in h ? h[p] : "-") }'
}

# changes BEFORE: what differs between the snapshot BEFORE and the current directory now,
# "added|removed|changed<TAB>path<TAB>what<TAB>type" (type: the entry's type now, or before
# for a removed one).
changes() {
    snapshot | awk -F'\t' -v OFS='\t' '
        FILENAME == ARGV[1] { b[$1] = $0; bt[$1] = $2; next }
        { a[$1] = $0; at[$1] = $2 }
        END {
            for (p in b) if (!(p in a)) print "removed", p, bt[p], bt[p]
            for (p in a) {
                if (!(p in b)) { print "added", p, at[p], at[p]; continue }
                if (a[p] == b[p]) continue
                split(b[p], x, "\t"); split(a[p], y, "\t"); w = ""
                if (x[2] != y[2]) w = w " type " x[2] "->" y[2]
                if (x[3] != y[3]) w = w " mode " x[3] "->" y[3]
                if (x[4] != y[4]) w = w " size " x[4] "->" y[4]
                if (x[5] != y[5]) w = w " link"
                if (x[6] != y[6]) w = w " content"
                print "changed", p, substr(w, 2), at[p]
            }
        }' "$1" -
}

# allowed_change TOOL OP PATH WHAT TYPE WORKS DAMAGED_PATH — 0 when the tool may do this.
#   Readers without --reader/-f (tail, tail -n, chronicle-readers): nothing at all.
#   tail --reader r1: create readers/ and readers/r1.cursor, rewrite r1.cursor (a damaged
#     r1.cursor only when the run worked, i.e. the damage did not matter).
#   tail -f: create readers/ and wake.shm, rewrite wake.shm (a hint page, also when
#     damaged); its ~anon.* registration must be gone after it exits.
#   chronicle-append: create the queue (q/, readers/, writer.lock, wake.shm, queue.json,
#     producers.shm, segments after the last one), rewrite writer.lock, wake.shm, producers.shm and retention.last, write into segments (checked
#     separately: committed bytes and immutable header fields must stay); never resize
#     or delete a segment, never touch readers' files.
#   Nobody may delete or retype an existing file, change its mode, or write through a
#   symlink to a file (ext/...; a symlinked queue or readers directory is followed and
#   judged as if it were in place).
allowed_change() {
    local tool=$1 op=$2 p=$3 what=$4 type=$5 works=$6 damaged=$7
    [[ $op == removed && ! ($tool == append && $p == q/.*.seg.tmp) ]] && return 1
    [[ $op == changed && ($what == *type* || $what == *mode* || $what == *link*) ]] && return 1
    [[ $p == ext/* ]] && return 1
    local base=${p##*/}
    case $tool in
    append)
        case $p in
        q | q/readers) [[ $op == added && $type == d ]] ;;
        q/writer.lock | q/wake.shm | q/producers.shm) [[ $type == f ]] ;;
        q/queue.json) [[ $op == added && $type == f ]] ;; # a queue's id, made once
        q/retention.last) [[ $type == f ]] ;;              # its retention thread's report
        q/.next.seg.tmp | q/.prep.seg.tmp | q/.prep.*.seg.tmp) [[ $op == removed ]] ;;
        q/*.seg)
            if [[ $op == added ]]; then
                [[ $type == f && $base =~ ^[0-9]{20}\.seg$ && $base > $MAXSEG ]]
            else
                [[ $what == content ]]
            fi
            ;;
        *) return 1 ;;
        esac
        ;;
    tail-reader)
        case $p in
        q/readers) [[ $op == added && $type == d ]] ;;
        q/readers/r1.cursor)
            [[ $type == f ]] || return 1
            [[ $op == added ]] && return 0
            [[ $damaged != "$p" || $works == 1 ]]
            ;;
        *) return 1 ;;
        esac
        ;;
    tail-f | tail-fu)
        case $p in
        q/readers) [[ $op == added && $type == d ]] ;;
        q/wake.shm) [[ $type == f ]] ;;
        *) return 1 ;;
        esac
        ;;
    *) return 1 ;;
    esac
}

# The writer's segment check: PRE holds copies of the segments before the run. One cmp per
# segment lists every changed byte up to the committed end; the header bytes 0-47 and
# 52-55 and the committed bytes from 4096 must not change (a changed size is reported by
# the snapshot comparison).
check_segments() { # CELLRUN FIXTURE -> problems on stdout
    local r=$1 fx=$2 f name now
    for f in "$r"/pre/*.seg; do
        [[ -e $f ]] || continue
        name=${f##*/}
        now=$r/q/$name
        [[ -f $now && ! -L $now ]] || continue # reported by the snapshot comparison
        cmp -l -n "${CEND_OF[$fx/$name]:-4096}" "$f" "$now" 2>/dev/null | awk -v n="$name" '
            $1 <= 48 && !h { print n ": header field at offset " $1 - 1 " changed"; h = 1 }
            $1 > 52 && $1 <= 56 && !r { print n ": reserved header word changed"; r = 1 }
            $1 > 4096 && !c { print n ": committed bytes changed (first difference at byte " $1 - 1 ")"; c = 1 }'
    done
}

# Accepted error exit codes for a cell (README: 1 error/I/O, 3 not found, 7 damaged queue).
# 2 (usage), 4 (busy), 5 (no space) and 6 (timeout) never describe damage. 3 only where
# something is missing or the queue/readers directory is not one.
errset() { # KIND DAMAGE -> ERRSET
    local s=" 1 7 "
    [[ $2 == missing || $2 == empty || $1 == queuedir || $1 == readersdir ]] && s+="3 "
    # A queue path that is a file or a FIFO: the user named something that is not a queue,
    # so usage (2) is as fair as not found (3), as long as the message does not say it is
    # missing (checked below).
    [[ $1 == queuedir && ($2 == type-file || $2 == type-fifo) ]] && s+="2 "
    ERRSET=$s
}

# project TOOL FILE MASK_R1: the comparable part of a chronicle-readers output (the other
# tools' outputs are compared whole).
project() {
    case $1 in
    readers-list)
        awk 'NR == 1 {
                if (match($0, /^queue [^:]*: head [0-9]+ \(first [0-9]+\), [0-9]+ segments?/)) {
                    split(substr($0, RSTART, RLENGTH), w, /[ (),]+/)
                    print "head", w[4], "first", w[6]
                } else print "header: " $0
                next }
             /^NAME/ { f = 1; next }
             f && $0 != "(no readers)" { print $1, $2 }' "$2"
        # (the segment count is left out: a missing middle segment makes it 2, truly)
        ;;
    readers-json)
        jq -r '"head \(.queue.head_seq) first \(.queue.first_seq)",
               (.readers[] | "\(.name) \(.position)")' "$2" 2>/dev/null || echo "(not JSON)"
        ;;
    readers-show) grep -E '^(reader|position|head):' "$2" | awk '{print $1, $2}' ;;
    readers-check) head -n 1 "$2" | awk '{print $1, $2}' ;;
    *) cat "$2" ;;
    esac | if [[ $3 == 1 ]]; then sed -E 's/^r1 .*/r1 */; s/^position: .*/position: */'; else cat; fi
}

first_diff() { # EXPECTED ACTUAL -> a short description of the difference
    local e a
    e=$(wc -l <"$1")
    a=$(wc -l <"$2")
    if ((a < e)) && cmp -s -n "$(stat -c %s "$2")" "$1" "$2"; then
        echo "output ends after $a of $e lines"
        return
    fi
    diff "$1" "$2" | grep '^[<>]' | head -n 4 | cut -c1-48 | sed 's/^</expected/; s/^>/got/' | tr '\t\n' ' |' | sed 's/|$//'
}

# run_one CELLDIR KIND DAMAGE TOOL: runs one tool on a copy of the damaged cell; prints
# one result line: "kind<TAB>damage<TAB>tool<TAB>PASS|FAIL<TAB>symptom class<TAB>rc<TAB>detail".
# (Most of it is bash without a process of its own: the matrix makes ~1500 runs.)
run_one() {
    local cell=$1 k=$2 d=$3 tool=$4
    local r=$cell.run.$tool
    cp -a "$cell" "$r"
    cd "$r" || return
    local fx=main
    [[ $k == segonly ]] && fx=only
    variant_of "$k" "$d"
    local variant=$VARIANT orc oracle=$FIX/oracle/$VARIANT/$tool.out
    read -r orc <"$FIX/oracle/$variant/$tool.rc"
    target_of "$k"
    local damaged=$TARGET
    [[ $k == control ]] && damaged=none
    local mask=0
    [[ $k == cursor ]] && mask=1
    if [[ $tool == append ]]; then
        mkdir pre
        local -a segs=()
        local f
        for f in q/*.seg; do [[ -f $f && ! -L $f ]] && segs+=("$f"); done
        ((${#segs[@]})) && cp -a -- "${segs[@]}" pre/ 2>/dev/null
    fi
    # New segments must come after every segment the fixture had (a writer that recreates
    # a missing segment hands out sequence numbers a second time); in a queue without
    # segments any is new.
    local maxseg_var=MAXSEG_$fx
    MAXSEG=${!maxseg_var}
    [[ $variant == fresh || $variant == noqueue ]] && MAXSEG=""
    local -a run=()
    if [[ $d == unreadable || $d == pristine-as-nobody ]] && ((EUID == 0)); then
        run=(setpriv "--reuid=$NOBODY" "--regid=$NOBODY" --clear-groups --)
    fi
    tool_cmd "$tool"
    local cmd=$CMD prog=$PROG
    local input=/dev/null
    if [[ $tool == append ]]; then
        echo NEW-RECORD >in
        input=in
    fi
    local t0=$EPOCHREALTIME rc=0
    # (the braces keep bash's "Killed" job report out of the test's output)
    # shellcheck disable=SC2086
    { timeout -s KILL $KILL_AFTER "${run[@]}" $cmd <"$input" >out 2>err; } 2>/dev/null || rc=$?
    local t1=$EPOCHREALTIME
    local ms=$(((${t1/./} - ${t0/./}) / 1000))

    local -a sym=()
    local cls=""
    addf() { [[ -z $cls ]] && cls=$1; sym+=("$2"); }
    # stderr: its first line that is not a note (else its first line), how many lines are
    # not notes, whether every line is the program's.
    local -a errl=()
    mapfile -t errl <err
    local errline="" nonnote=0 foreign=0 internal=0 missing=0 line
    for line in "${errl[@]}"; do
        [[ $line == "$prog: "* ]] || foreign=1
        [[ $line == *"internal error"* ]] && internal=1
        [[ $line == *"does not exist"* ]] && missing=1
        if [[ $line != "$prog: note:"* ]]; then
            nonnote=$((nonnote + 1))
            [[ -z $errline ]] && errline=${line:0:160}
        fi
    done
    [[ -z $errline ]] && line=${errl[0]:-} && errline=${line:0:160}
    local -a outl=()
    mapfile -t -n 2 outl <out
    local works=0
    if ((rc == 137 && ms >= KILL_AFTER * 1000 - 500)); then
        addf HANG "hang: killed after ${KILL_AFTER}s"
    elif ((rc >= 128)); then
        addf SIGNAL "killed by signal $((rc - 128)) ($(kill -l $((rc - 128)) 2>/dev/null))"
    elif ((rc >= 125)); then
        addf HARNESS "could not run (exit $rc)"
    else
        # The oracle is stored already projected; chronicle-tail's and chronicle-append's
        # outputs are compared whole.
        local got=out want=$oracle
        if [[ $tool == readers-* ]]; then
            project "$tool" out "$mask" >out.proj
            project cat "$oracle" "$mask" >exp.proj
            got=out.proj want=exp.proj
        fi
        if [[ $orc == any ]]; then
            # A directory without segments: exit 0 with anything, or -f waiting (6).
            [[ $rc == 0 || ($rc == 6 && $tool == tail-f) ]] && works=1
        elif [[ $rc == "$orc" ]] && cmp -s "$got" "$want"; then
            works=1
        fi
        errset "$k" "$d"
        local es=$ERRSET
        if ((works)); then
            :
        elif [[ $tool == readers-check ]]; then
            # Monitoring-plugin codes: the oracle's status (CRITICAL for r1's lag), or
            # UNKNOWN (3). OK/WARNING on a queue that cannot be read hides the problem.
            local first=${outl[0]:-} w1="" word=""
            read -r w1 word _ <<<"$first"
            local -a want=([0]=OK: [1]=WARNING: [2]=CRITICAL: [3]=UNKNOWN:)
            if [[ $rc != "$orc" && $rc != 3 ]]; then
                addf BAD-EXIT "exit $rc [${first:0:80}], expected $orc or 3"
            elif ((${#outl[@]} != 1)) || [[ $word != "${want[$rc]:-?}" || $w1 != CHRONICLE ]]; then
                addf UNCLEAR-ERROR "status line [${first:0:80}] does not match exit $rc"
            fi
        elif [[ $es == *" $rc "* ]]; then
            if ((foreign || nonnote != 1)); then
                addf UNCLEAR-ERROR "stderr is not one '$prog: ...' line: [$(head -c 200 err | tr '\n' '|')]"
            elif ((internal)); then
                addf UNCLEAR-ERROR "internal error: $errline"
            elif [[ $k == queuedir && $d != missing ]] && ((missing)); then
                addf UNCLEAR-ERROR "says the queue does not exist: $errline"
            fi
            if [[ $tool == tail* && -s out ]] && ! cmp -s -n "$(stat -c %s out)" out "$oracle"; then
                addf WRONG-OUTPUT "printed a wrong record before failing: $(first_diff "$oracle" out)"
            fi
        elif [[ $rc == "$orc" ]]; then
            if [[ $tool == readers-* ]]; then
                addf WRONG-OUTPUT "exit $rc with wrong output: $(diff exp.proj out.proj | grep '^[<>]' | head -n 4 | sed -E 's/^< (.*)/expected [\1]/; s/^> (.*)/got [\1]/' | tr '\n' '|' | sed 's/|$//')"
            else
                addf WRONG-OUTPUT "exit $rc with wrong output: $(first_diff "$want" "$got")"
            fi
        else
            if [[ $es == *" $orc "* ]]; then
                addf BAD-EXIT "exit $rc; expected an error exit in {$(echo $es | tr ' ' ,)}"
            else
                addf BAD-EXIT "exit $rc; expected exit $orc with the undamaged queue's output, or an error exit in {$(echo $es | tr ' ' ,)}"
            fi
        fi
        # Success must not print garbage on stderr either (notes are fine).
        if ((works && foreign)); then
            addf UNCLEAR-ERROR "stderr not '$prog: ...': [$(head -c 120 err | tr '\n' '|')]"
        fi
    fi

    # What changed on disk.
    local op p what ty mp
    while IFS=$'\t' read -r op p what ty; do
        [[ -z $op ]] && continue
        mp=$p
        if [[ $d == type-symlink && ($k == queuedir || $k == readersdir) && $p == ext* ]]; then
            mp=q${p#ext}
        fi
        if [[ $op == added && ($mp == q/readers/~anon.* || $mp == q/readers/.*.tmp || $mp == q/.*.tmp) ]]; then
            [[ $cls == HANG || $cls == SIGNAL ]] && continue
            addf WROTE "left behind $p"
            continue
        fi
        if ! allowed_change "$tool" "$op" "$mp" "$what" "$ty" "$works" "$damaged"; then
            addf WROTE "$op $p ($what)"
        fi
    done < <(changes "$cell.before.snap")
    if [[ $tool == append ]]; then
        local prob
        while read -r prob; do
            addf WROTE "$prob"
        done < <(check_segments "$r" "$fx")
        if ((rc == 0)) && [[ $cls != HANG && $cls != SIGNAL ]]; then
            local s=${outl[0]:-}
            if [[ $s =~ ^[0-9]+$ ]]; then
                local back rc2=0
                back=$({ timeout -s KILL $KILL_AFTER $TAIL --show-seq --from-seq "$s" q 2>&1; } 2>/dev/null) || rc2=$?
                if [[ $back != "$s"$'\t'NEW-RECORD ]]; then
                    addf LOST-APPEND "printed seq $s but reading it back gives (exit $rc2) [$(echo "$back" | head -n 2 | tr '\n' '|' | cut -c1-100)]"
                fi
            fi
        fi
    fi
    local status=PASS detail
    ((${#sym[@]})) && status=FAIL
    printf -v detail '%s; ' "${sym[@]}"
    detail=${detail%; }
    if [[ $status == PASS ]]; then
        detail="works"
        ((works)) || detail="error: $errline"
        local first=${outl[0]:-}
        [[ $tool == readers-check ]] && detail+=" [${first:0:60}]"
    elif [[ -n $errline ]]; then
        detail+=" | stderr: $errline"
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$k" "$d" "$tool" "$status" "${cls:-OK}" "$rc" "$detail"
    cd "$cell/.." && rm -rf "$r"
}

# prepare_cell KIND DAMAGE: builds the damaged copy (and its snapshot) once; every tool
# then runs on a copy of it. Prints the cell's directory.
prepare_cell() {
    local k=$1 d=$2
    local fx=main
    [[ $k == segonly ]] && fx=only
    local cell=$T/cells/$k.${d//[^A-Za-z0-9_.=+-]/_}
    mkdir -p "$cell"
    cp -a "$FIX/$fx/q" "$cell/q"
    if [[ $d == unreadable || $d == pristine-as-nobody ]]; then
        if ((EUID == 0)); then
            chmod o+rx "$T" "$T/cells" "$cell"
            chmod -R a+rwX "$cell/q"
        fi
    fi
    (apply_damage "$cell" "$k" "$d") || return 1
    (cd "$cell" && snapshot) >"$cell.before.snap"
    echo "$cell"
}

# run_kind KIND: every damage of KIND x every tool, JOBS runs at a time (a hang costs its
# 10 s in parallel with the others), then the failing runs, sorted by symptom.
run_kind() {
    local k=$1 d tool cell
    local -a running=()
    local out=$FIX/results/$k.tsv
    : >"$out"
    mkdir -p "$T/cells" "$T/results"
    local -a damages
    mapfile -t damages < <(damages_of "$k")
    # The portable notifier creates neither wake.shm nor readers/NAME.fifo.
    local fx=main
    [[ $k == segonly ]] && fx=only
    local t
    target_of "$k"
    t=$TARGET
    if [[ ! -e $FIX/$fx/$t ]]; then
        echo "    skip: this build ($NOTIFIER notifier) does not create ${t#q/}"
        return 0
    fi
    local i=0
    for d in "${damages[@]}"; do
        if [[ -n $ONLY ]]; then
            local any=0
            for tool in "${TOOLS[@]}"; do [[ "$k/$d/$tool" =~ $ONLY ]] && any=1; done
            ((any)) || continue
        fi
        if ! cell=$(prepare_cell "$k" "$d"); then
            printf '%s\t%s\t*\tFAIL\tHARNESS\t-\tcannot apply the damage\n' "$k" "$d" >"$T/results/$i.h"
            i=$((i + 1))
            continue
        fi
        for tool in "${TOOLS[@]}"; do
            [[ -n $ONLY && ! "$k/$d/$tool" =~ $ONLY ]] && continue
            # (jobs writes into a file: counting through $(jobs | wc) cost two processes a run)
            while jobs -rp >"$T/jobs" && mapfile -t running <"$T/jobs" && ((${#running[@]} >= JOBS)); do
                wait -n || true
            done
            (
                set +e
                run_one "$cell" "$k" "$d" "$tool" >"$T/results/$i.$tool"
            ) &
        done
        i=$((i + 1))
    done
    wait || true
    cat "$T"/results/* >"$out" 2>/dev/null || true
    [[ -n ${CHRONICLE_DAMAGE_REPORT:-} ]] && cat "$out" >>"$CHRONICLE_DAMAGE_REPORT"
    local total fails
    total=$(wc -l <"$out")
    fails=$(awk -F'\t' '$4 == "FAIL"' "$out" | wc -l)
    if ((fails > 0)); then
        awk -F'\t' '$4 == "FAIL" {printf "    %-14s %-30s %-13s %-13s exit %-4s %s\n", $1, $2, $3, $5, $6, $7}' "$out" |
            sort -k4,4 -k2,2 -k3,3 >&2
        fail "$fails of $total runs failed for $k"
    fi
    if ((total == 0)); then echo "    (no run selected)"; else echo "    $total runs, all pass"; fi
}

print_summary() {
    local all=$FIX/results/all.tsv
    cat "$FIX"/results/*.tsv 2>/dev/null | grep -v '^$' >"$all.tmp" || true
    mv "$all.tmp" "$all" 2>/dev/null || return 0
    [[ -s $all ]] || return 0
    local total fails
    total=$(wc -l <"$all")
    fails=$(awk -F'\t' '$4 == "FAIL"' "$all" | wc -l)
    echo
    echo "damage matrix: $total runs, $fails failed"
    ((fails)) || return 0
    echo "failing cells by symptom (kind/damage: tools):"
    awk -F'\t' '$4 == "FAIL" { key = $5 "\t" $1 "/" $2; t[key] = t[key] " " $3 }
        END { for (k in t) { split(k, a, "\t"); printf "  %-13s %-40s%s\n", a[1], a[2], t[k] } }' "$all" | sort
}

# ---------------------------------------------------------------------------------------

build_fixtures || exit 1

for kind in "${KINDS[@]}"; do
    eval "t_damage_$kind() { run_kind $kind; }"
done

run_tests
