#!/usr/bin/env bash
# The crash soak (issue 8, "Deliver 4"): chronicle-append writers killed with kill -9 at
# random instants, one after the other, while followers and named readers run; then the
# queue, everything the writers reported and everything the readers handed out are checked.
#
# Parameters (environment):
#   CHRONICLE_SOAK_KILLS  writer kills (kill -9 of a running writer). Default 150, a share
#                         for CI (~10-20 s here); the full soak is CHRONICLE_SOAK_KILLS=1000.
#   CHRONICLE_SOAK_SEED   seed of the random instants and sizes (default 1). Timing still
#                         varies from run to run; pass/fail never depends on timing.
#   CHRONICLE_SOAK_KEEP   a directory: on failure the whole work directory (queue, every
#                         writer's and reader's output) is copied there for a post-mortem.
#   CHRONICLE_SOAK_INJECT self-check of the checks: damages what was collected before it is
#                         checked (lose: drop a record from the queue's dump; garbage: change
#                         one; skip: drop a line from a named reader's run); the test must fail.
#
# The run:
#   - queue with 16 KiB segments (a roll every ~200 records, so kills land in rolls too);
#   - writer n: `chronicle-append --print-seq q` fed by a generator that writes lines
#     "w<n>-<k>-xxxx..." (k = 1, 2, 3, ...) in bursts of 1..300 lines (1 in 25 writers also
#     one burst of 20000: a batch across ~90 segments), with short pauses; killed -9 after
#     0..79 ms (1 in 10 writers gets a finite input instead and exits by itself);
#   - follower A: `chronicle-tail -f --show-seq` from the start, for the whole run;
#     follower B: the same, started after a third of the kills with -n 3;
#   - named reader "nr": `chronicle-tail --show-seq --reader nr -c K` in a loop
#     (K = 1..60); one run in four goes through a slow consumer (K up to 3000 for half of
#     them) and is killed -9 after 0..19 ms, so that kills land while records are handed
#     over but their position is not stored yet;
#   - named follower "nf": `chronicle-tail -f --show-seq --reader nf` through the slow
#     consumer, killed -9 (or TERM, one in four) after 50..399 ms and started again, for
#     the whole run;
#   - at the end one clean writer appends "END"; followers must catch up; nr and nf read
#     the rest without -f.
# The checks (all on content, none on timing; every call is under a timeout):
#   1. the queue holds dense sequences 0..N-1, every payload is a generator line, each
#      writer's records form one block w<n>-1, w<n>-2, ... in writer order (nothing
#      uncommitted resurrected, nothing torn, nothing from a dead batch after a later one);
#   2. every sequence number a writer printed (--print-seq, complete lines that reached
#      the test) holds that writer's record for that line: 0 committed records lost. A
#      printed sequence number is an acknowledgement (kcat's delivery report): printing
#      one before its batch is committed fails here too;
#   3. each writer exited by our kill (137) or by itself (0); never busy (4) or corrupt (7);
#   4. followers A and B printed exactly the queue's records from where they started, in
#      order (prefix-consistent), and caught up with END (a lost wake-up shows as a
#      follower stuck before END after 60 s);
#   5. named readers: every run's output is dense and equal to the queue's records; a run
#      starts no earlier than the position the previous runs durably stored and no later
#      than one past the last record they printed (at-least-once: nothing skipped, replays
#      only the window a killed run had not stored); together they cover every sequence
#      up to their final position, which is the end.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# Leak checking of processes that are killed or stopped mid-run in this loop is noise:
# LeakSanitizer printed "Unable to get registers from thread" (stderr the soak counts as a
# problem) when a reader stopped while its other thread was being torn down. Every other
# test keeps leak detection; address and UB errors still abort here (exit status checked).
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"

KILLS=${CHRONICLE_SOAK_KILLS:-150}
SEED=${CHRONICLE_SOAK_SEED:-1}
PAD=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx

# gen N FINITE: writer N's input. Bursts of lines w<N>-<k>-PAD with pauses; FINITE=1 stops
# after a few bursts (the writer then exits on its own at end of input).
gen() {
    local n=$1 finite=$2 k=1 b bursts=0
    RANDOM=$((SEED * 7919 + n))
    if ((RANDOM % 25 == 0)); then
        seq -f "w$n-%.0f-$PAD" 1 20000 || return 0
        k=20001
    fi
    while :; do
        b=$((1 + RANDOM % 300))
        seq -f "w$n-%.0f-$PAD" $k $((k + b - 1)) || return 0
        k=$((k + b))
        bursts=$((bursts + 1))
        ((finite && bursts >= 3)) && return 0
        sleep "0.00$((RANDOM % 10))"
    done
}

sleep_ms() { sleep "$(printf '0.%03d' "$1")"; }

# A consumer slower than chronicle-tail, so that kills land while records are handed over
# (in tail's buffer or blocked in write) but not yet stored: those must be replayed.
slow_copy() {
    local l i=0
    while IFS= read -r l; do
        printf '%s\n' "$l"
        ((++i % 400 == 0)) && sleep 0.005
    done
}

# kill_run OUT DELAY_MS SIGNAL ARGS...: chronicle-tail ARGS with its output through
# slow_copy into OUT, sent SIGNAL after DELAY_MS; its exit status goes to OUT's .rc file.
kill_run() {
    local out=$1 delay=$2 sig=$3
    shift 3
    # A pipe between tail and slow_copy, opened here (so that neither can block in open()
    # however early tail is killed): read-write first, which never blocks, then each end.
    mkfifo "$out.pipe"
    local hold rd wr
    exec {hold}<>"$out.pipe"
    exec {rd}<"$out.pipe"
    exec {wr}>"$out.pipe"
    exec {hold}>&-
    rm -f "$out.pipe"
    slow_copy <&$rd >"$out" {wr}>&- &
    local c=$!
    $TAIL "$@" >&$wr 2>"$out.err" {rd}<&- &
    local p=$! w rc=0
    exec {rd}<&- {wr}>&-
    sleep_ms "$delay"
    kill "$sig" $p 2>/dev/null
    # TERM must end it (DESIGN §7); one that ignores it is reported, then killed.
    for ((w = 0; w < 100; w++)); do kill -0 $p 2>/dev/null || break; sleep 0.05; done
    if kill -0 $p 2>/dev/null; then
        echo "ignored $sig for 5 s" >>"$out.err"
        kill -9 $p 2>/dev/null
    fi
    wait $p 2>/dev/null || rc=$?
    wait $c 2>/dev/null # the pipe's last writer is gone: slow_copy ends
    echo $rc >"${out%.out}.rc"
}

# The named reader loop: `--reader nr -c K` until the file "stop" appears; one run in four
# is killed -9 after 0..19 ms (K then up to 3000, through a slow consumer).
reader_loop() {
    set +e
    RANDOM=$((SEED + 17))
    local i=0 k rc
    mkdir -p nr
    while [[ ! -e stop ]]; do
        i=$((i + 1))
        k=$((1 + RANDOM % 60))
        if ((RANDOM % 4 == 0)); then
            ((RANDOM % 2)) && k=$((1 + RANDOM % 3000))
            kill_run nr/$i.out $((RANDOM % 20)) -9 --show-seq --reader nr -c $k q
        else
            rc=0
            { timeout -s KILL 20 $TAIL --show-seq --reader nr -c $k q >nr/$i.out 2>nr/$i.err; } 2>/dev/null || rc=$?
            echo $rc >nr/$i.rc
        fi
        sleep_ms $((RANDOM % 20))
    done
}

# The named follower loop: `-f --reader nf` through a slow consumer, killed -9 (or TERM,
# one in four) after 50..399 ms and started again.
follower_loop() {
    set +e
    RANDOM=$((SEED + 29))
    local j=0 sig
    mkdir -p nf
    while [[ ! -e stop ]]; do
        j=$((j + 1))
        sig=-9
        ((RANDOM % 4 == 0)) && sig=-TERM
        kill_run nf/$j.out $((50 + RANDOM % 350)) $sig -f --show-seq --reader nf q
    done
}

# check_runs DIR TOTAL: the at-least-once rule over the runs of one named reader, in order
# (DIR/<i>.out, DIR/<i>.rc), then DIR/final.out (a clean run to the end of the queue, which
# has TOTAL records). Prints problems, one per line, then "RANGE lo hi": the bounds of the
# position stored at the end.
#   Before each run the stored position is known to lie in [lo, hi]. A run that printed
#   seqs s..e must start with s in [lo, hi] (s < lo: it replayed records a completed run
#   had stored past; s > hi: it skipped records nobody printed) and be dense. After a clean
#   exit (0) the position is e+1; after a kill (-9: 137, TERM: 143) it is in [s, e+1]
#   (stored only after output was written, never moved back). A run that printed nothing
#   leaves [lo, hi] as it was; the final run printing nothing means the position was TOTAL.
check_runs() {
    local dir=$1 total=$2
    local -a runs
    mapfile -t runs < <(cd "$dir" && ls -- *.rc | sed 's/\.rc$//' | grep -v final | sort -n)
    runs+=(final)
    echo 0 >"$dir/final.rc"
    local r
    for r in "${runs[@]}"; do
        printf '%s\t%s\t' "$r" "$(cat "$dir/$r.rc")"
        # Complete lines only: a killed run may leave half a line.
        if [[ -s $dir/$r.out && $(tail -c 1 "$dir/$r.out" | od -An -tx1 | tr -d ' ') != 0a ]]; then
            sed '$d' "$dir/$r.out"
        else
            cat "$dir/$r.out"
        fi | awk -F'\t' '{printf "%s ", $1}'
        echo
    done | awk -F'\t' -v name="$(basename "$dir")" -v total="$total" '
        BEGIN { lo = 0; hi = 0 }
        {
            run = $1; rc = $2; n = split($3, s, " ")
            if (rc != 0 && rc != 137 && rc != 143) print name " run " run ": exit " rc
            if (n == 0) {
                if (run == "final") {
                    if (total < lo || total > hi) print name ": the final run printed nothing, so the stored position was " total ", outside [" lo ", " hi "]"
                    lo = total; hi = total
                }
                next
            }
            if (s[1] < lo) print name " run " run ": starts at " s[1] ", before the stored position (at least " lo "): replays more than the uncommitted window"
            if (s[1] > hi) print name " run " run ": starts at " s[1] ", but the runs before printed only up to " hi - 1 ": records skipped"
            for (i = 2; i <= n; i++) if (s[i] != s[i-1] + 1) { print name " run " run ": not dense: " s[i-1] " then " s[i]; break }
            e = s[n]
            if (rc == 0) { lo = e + 1; hi = e + 1 } else { lo = s[1]; hi = e + 1 }
        }
        END { print "RANGE " lo " " hi }'
}

t_crash_soak() {
    # Every failure below is collected in "problems" and reported at the end.
    set +e
    RANDOM=$SEED
    # The queue exists before anything follows it.
    echo "w0-1-$PAD" | $APPEND --segment-size 16K --print-seq q >w.0.seq 2>w.0.err
    echo 0 >w.0.rc

    $TAIL -f -n all --show-seq q >follow.A 2>follow.A.err &
    local fa=$!
    local fb=""
    reader_loop 2>/dev/null &
    local rl=$!
    follower_loop 2>/dev/null &
    local fl=$!

    local n=0 kills=0 finite p g rc
    local -a bad=()
    while ((kills < KILLS)); do
        n=$((n + 1))
        finite=0
        ((RANDOM % 10 == 0)) && finite=1
        mkfifo in.$n
        gen $n $finite >in.$n &
        g=$!
        $APPEND --print-seq q <in.$n >w.$n.seq 2>w.$n.err &
        p=$!
        if ((finite)); then
            rc=0
            # Bounded: the input ends after three bursts.
            local w
            for ((w = 0; w < 200; w++)); do kill -0 $p 2>/dev/null || break; sleep 0.05; done
            kill -9 $p 2>/dev/null
            wait $p 2>/dev/null || rc=$?
            # 137 here means it did not finish within 10 s: counted as a hang below.
            ((rc == 137)) && echo "finite writer did not exit within 10 s" >>w.$n.err
        else
            sleep_ms $((RANDOM % 80))
            kill -9 $p 2>/dev/null
            rc=0
            wait $p 2>/dev/null || rc=$?
            ((rc == 137)) && kills=$((kills + 1))
        fi
        echo $rc >w.$n.rc
        kill $g 2>/dev/null
        wait $g 2>/dev/null
        rm -f in.$n
        if ((rc != 0 && rc != 137)) || { ((finite)) && ((rc != 0)); }; then
            bad+=("writer $n exited $rc: $(head -c 300 w.$n.err | tr '\n' '|')")
        fi
        if [[ -z $fb ]] && ((kills >= KILLS / 3)); then
            $TAIL -f --show-seq -n 3 q >follow.B 2>follow.B.err &
            fb=$!
        fi
    done
    [[ -n $fb ]] || { $TAIL -f --show-seq -n 3 q >follow.B 2>follow.B.err & fb=$!; }
    touch stop
    wait $rl $fl 2>/dev/null || true

    # One clean writer at the end; its record is the last.
    n=$((n + 1))
    rc=0
    { echo END | timeout -s KILL 30 $APPEND --print-seq q >w.$n.seq 2>w.$n.err; } 2>/dev/null || rc=$?
    echo $rc >w.$n.rc
    ((rc == 0)) || bad+=("final writer exited $rc: $(head -c 300 w.$n.err | tr '\n' '|')")
    echo "    $n writers, $kills killed -9 while running, $(ls nr/*.rc | wc -l) runs of reader nr, $(ls nf/*.rc | wc -l) of follower nf"

    # The queue as it is now.
    rc=0
    { timeout -s KILL 120 $TAIL --show-seq q >final 2>final.err; } 2>/dev/null || rc=$?
    ((rc == 0)) || fail "reading the queue: exit $rc: $(head -c 300 final.err)"
    case ${CHRONICLE_SOAK_INJECT:-} in
    lose) sed -i '100d' final ;;
    garbage) sed -i '100s/\t.*/\tw1-1-garbage/' final ;;
    skip)
        local victim
        victim=$(for f in nr/*.out; do (($(wc -l <"$f") >= 3)) && echo "$f" && break; done)
        sed -i '2d' "$victim"
        ;;
    esac
    local total
    total=$(wc -l <final)
    echo "    queue: $total records, $(ls q/*.seg | wc -l) segments"

    # 1. Dense, only generator lines, one block per writer in writer order.
    awk -F'\t' -v pad="$PAD" '
        $1 != NR - 1 { print "sequence " NR - 1 " holds seq " $1; exit }
        $2 == "END" { if (NR != total) print "END is not the last record"; next }
        {
            if (match($2, /^w[0-9]+-[0-9]+-/) == 0 || substr($2, RLENGTH + 1) != pad) { print "seq " $1 ": not a generator line: [" substr($2, 1, 60) "]"; bad++; if (bad > 5) exit; next }
            split(substr($2, 2), f, "-"); w = f[1] + 0; k = f[2] + 0
            if (w != cw) {
                if (w < cw || (w in seen)) print "seq " $1 ": writer " w "'"'"'s records after writer " cw "'"'"'s (resurrected?)"
                if (k != 1) print "seq " $1 ": writer " w "'"'"'s block starts at line " k
                seen[w] = 1; cw = w
            } else if (k != ck + 1) print "seq " $1 ": writer " w " line " k " follows line " ck
            ck = k
        }' total="$total" final >problems

    # 2. Every reported sequence holds its writer's line.
    local f
    for f in w.*.seq; do
        local wn=${f#w.}
        wn=${wn%.seq}
        [[ $wn == "$n" ]] && continue
        # complete lines only
        if [[ -s $f && $(tail -c 1 "$f" | od -An -tx1 | tr -d ' ') != 0a ]]; then sed -i '$d' "$f"; fi
        awk -v w="$wn" '{print $1 "\t" w "\t" NR}' "$f"
    done >reported
    # One line per writer with reported sequences that do not hold its lines.
    awk -F'\t' -v pad="$PAD" '
        FILENAME == ARGV[1] { p[$1] = $2; next }
        {
            w = $2; n[w]++
            if (p[$1] == "w" w "-" $3 "-" pad) { if (w in bad) good_after[w]++; next }
            if (!(w in bad)) { order[++nw] = w; first_line[w] = $3; first_seq[w] = $1; held[w] = ($1 in p) ? "[" substr(p[$1], 1, 24) "]" : "nothing (past the end)" }
            bad[w]++; last_line[w] = $3; last_seq[w] = $1
        }
        END {
            for (i = 1; i <= nw; i++) {
                w = order[i]
                printf "LOST: writer %s reported %d sequence numbers; %d of them (lines %d..%d, seqs %d..%d) do not hold its lines (seq %d holds %s)%s\n", \
                    w, n[w], bad[w], first_line[w], last_line[w], first_seq[w], last_seq[w], first_seq[w], held[w], \
                    (good_after[w] ? ", " good_after[w] " later ones do" : "")
            }
        }' final reported >>problems
    local reported
    reported=$(wc -l <reported)
    [[ $(cat w.$n.seq) == "$((total - 1))" ]] || echo "END was reported at seq [$(cat w.$n.seq)], the queue has $total records" >>problems
    echo "    $reported sequence numbers reported by writers, all checked"

    # 3. Writers' exits.
    local b
    for b in "${bad[@]}"; do echo "$b" >>problems; done

    # 4. Followers: alive, then caught up with END, then exactly the queue from where they started.
    local who pid
    for who in A B; do
        [[ $who == A ]] && pid=$fa || pid=$fb
        if ! kill -0 "$pid" 2>/dev/null; then
            rc=0
            wait "$pid" || rc=$?
            echo "follower $who exited early ($rc): $(head -c 200 follow.$who.err)" >>problems
            continue
        fi
        local w
        for ((w = 0; w < 600; w++)); do
            [[ $(tail -n 1 follow.$who | cut -f2) == END ]] && break
            sleep 0.1
        done
        kill -TERM "$pid" 2>/dev/null
        for ((w = 0; w < 100; w++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
        kill -9 "$pid" 2>/dev/null && echo "follower $who ignored SIGTERM" >>problems
        wait "$pid" 2>/dev/null || true
        local first
        first=$(head -n 1 follow.$who | cut -f1)
        if [[ -z $first ]]; then
            echo "follower $who printed nothing" >>problems
            continue
        fi
        [[ $who == A && $first != 0 ]] && echo "follower A started at $first, not 0" >>problems
        if ! cmp -s follow.$who <(tail -n +$((first + 1)) final); then
            local l
            l=$(cmp follow.$who <(tail -n +$((first + 1)) final) 2>&1 | grep -o 'line [0-9]*' | awk '{print $2}')
            if [[ -n $l ]]; then
                echo "follower $who: line $l is [$(sed -n "${l}p" follow.$who | cut -c1-40)], the queue has [$(sed -n "$((first + l))p" final | cut -c1-40)]" >>problems
            else
                echo "follower $who stopped after $(wc -l <follow.$who) records (from $first), before END: a lost wake-up" >>problems
            fi
        fi
    done

    # 5. Named readers: the final runs read to the end, then the at-least-once rule.
    local nm
    for nm in nr nf; do
        rc=0
        { timeout -s KILL 60 $TAIL --show-seq --reader $nm q >$nm/final.out 2>$nm/final.err; } 2>/dev/null || rc=$?
        ((rc == 0)) || echo "$nm: the final run exited $rc: $(head -c 200 $nm/final.err)" >>problems
        # Content: every line any run printed is the queue's line.
        cat $nm/*.out | awk -F'\t' 'FILENAME == ARGV[1] { p[$1] = $0; next }
            NF >= 2 && p[$1] != $0 && $1 in p { print "'$nm': printed [" substr($0, 1, 40) "] for seq " $1 ", the queue has [" substr(p[$1], 1, 40) "]"; if (++bad > 5) exit }' final - >>problems
        check_runs $nm "$total" >$nm.check
        grep -v '^RANGE' $nm.check | head -n 20 >>problems
        local lo hi
        read -r _ lo hi < <(grep '^RANGE' $nm.check)
        [[ $lo == "$total" && $hi == "$total" ]] || echo "$nm: after its final run the position is in [$lo, $hi], not at the end ($total)" >>problems
        local stored
        stored=$(timeout -s KILL 20 $READERS q show $nm --json 2>/dev/null | jq -r .position)
        [[ $stored == "$total" ]] || echo "$nm: chronicle-readers shows position $stored, expected $total" >>problems
        grep -hv "^chronicle-tail: note:" $nm/*.err 2>/dev/null | grep -v '^$' | sort | uniq -c | head -n 5 | sed "s/^/$nm stderr: /" >>problems || true
    done
    echo "    reader nr: $(cat nr/*.out | wc -l) lines handed out for $total records; follower nf: $(cat nf/*.out | wc -l)"

    if [[ -s problems ]]; then
        sed 's/^/    /' problems | head -n 60 >&2
        if [[ -n ${CHRONICLE_SOAK_KEEP:-} ]]; then
            mkdir -p "$CHRONICLE_SOAK_KEEP" && cp -a . "$CHRONICLE_SOAK_KEEP/" &&
                echo "    work directory kept in $CHRONICLE_SOAK_KEEP" >&2
        fi
        fail "$(wc -l <problems) problems (seed $SEED, $KILLS kills)"
    fi
}

run_tests
