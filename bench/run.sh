#!/usr/bin/env bash
# chronicle benchmarks: every figure beside a baseline measured in the same run.
#
# Usage: bench/run.sh [--plot] [--out DIR] [SECTION...]
#   SECTION: append retention lib wake cli syscalls layout followers producers   (default:
#            all, in that order); also, not by default (it starts servers): bridges —
#            chronicle-bridge into Redis and into NATS JetStream R1/R3 beside the servers'
#            own clients (bench/bridge_bench.sh, bench/nats_bench.sh)
#   --out DIR  where figures.json and the latency samples go (default: build/bench-out,
#              or docs/bench with --plot); created if missing
#   --plot     also render the pictures from them (bench/plot.sh DIR: gnuplot; a note when
#              gnuplot is missing): latency-cdf.svg, throughput.svg, summary.md; into
#              docs/bench, summary.md also replaces the README's bench-summary block
# Builds nothing: expects a build directory (cmake --build build && bench/run.sh).
#
# Output (stdout): one figure per line, "<name> <value> <unit>";
#   <name>.med = median over repetitions, <name>.best = best repetition (max for rates,
#   min for times); ratios are their own lines, "<name>.ratio <value> x".
# Notes go to stderr, prefixed '#'. Benchmarks never assert timings.
# The same figures, the notes and the machine go to DIR/figures.json at the end; the raw
# latency samples of the wake and cli sections (microseconds, one per line, in arrival
# order) to DIR/samples/latency_us.<name>.txt.
#
# Environment:
#   BUILD          build directory (default: build; relative to the current directory,
#                  else to the repository). Tools in $BUILD/tools, benchmarks in $BUILD/bench.
#   BENCH_DIR      where the data goes (default /tmp): a fresh mktemp -d under it, removed
#                  at the end. Put it on the file system your queues will live on.
#   BENCH_OUT      default of --out
#   BENCH_REPS     repetitions of the append and lib figures (default 5)
#   BENCH_LINES    lines for the append and retention sections (default 10000000)
#   BENCH_LOG_LINES  lines of the append section's second input, generated log lines of 99
#                  characters + newline (default 2000000)
#   BENCH_RET_SEGMENT, BENCH_RET_CAP  the retention section's segment size and --max-bytes
#                  (default 4M and 16M: the queue is capped at four segments)
#   BENCH_REDIS    1 (default): the append section also measures Redis XADD, pipelined, when
#                  redis-server and redis-benchmark are installed; 0: skip it
#   BENCH_REDIS_N  XADDs per repetition (default 1000000)
#   BENCH_LAT_N    samples for the wake and cli latencies (default 2000, paced at 1 ms)
#   BENCH_LAT_REPS rounds the wake and cli series alternate in, BENCH_LAT_N / rounds samples
#                  each, pooled (default 4)
#   BENCH_IDLE_S   idle period of the parked-follower CPU check (default 10)
#   BENCH_FOLLOWERS        follower counts of the followers section (default 1,64,100,1000)
#   BENCH_FOLLOWER_ROUNDS  wake-all rounds per count (default 200)
#   BENCH_FOLLOWER_PROCS   followers section passes: 1 = threads of one helper process,
#                  0 = one process per follower, K = K helper processes (default "1 0": both)
#   BENCH_PRODUCERS_N      records per run of bench_producers (default 2000000), shared by
#                  the P producers of a run
#   BENCH_PRODUCERS_PROCS  producer counts P of bench_producers (default 1,2,4,8)
#   BENCH_PRODUCERS_CLI_N  lines per run of the producers section's tool comparison
#                  (default 4000000), shared by the P parallel writers
#   BENCH_BASE_TOOLS  a directory holding an older chronicle-append: the producers section
#                  then also times one producer with it against the current one (unset: not)
#   BENCH_KEEP=1   keep the data directory (for inspection)
set -euo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)

ARGS=("$@")
PLOT=0
OUT=${BENCH_OUT:-}
SECTIONS=()
while (($#)); do
    case $1 in
        --plot) PLOT=1 ;;
        --out) [[ $# -ge 2 ]] || { echo "# --out needs a directory" >&2; exit 2; }; OUT=$2; shift ;;
        --out=*) OUT=${1#--out=} ;;
        -h | --help) sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}"; exit 0 ;;
        -*) echo "# unknown option '$1' (bench/run.sh --help)" >&2; exit 2 ;;
        *) SECTIONS+=("$1") ;;
    esac
    shift
done

BUILD=${BUILD:-build}
if [[ "$BUILD" != /* && ! -d "$BUILD" && -d "$ROOT/$BUILD" ]]; then BUILD=$ROOT/$BUILD; fi
BUILD_ABS=$(cd "$BUILD" 2>/dev/null && pwd) || { echo "# no build directory '$BUILD': cmake --build build first" >&2; exit 2; }
BUILD=$BUILD_ABS
TOOLS=$BUILD/tools
BBIN=$BUILD/bench
REPS=${BENCH_REPS:-5}
LINES=${BENCH_LINES:-10000000}
LOG_LINES=${BENCH_LOG_LINES:-2000000}
LAT_N=${BENCH_LAT_N:-2000}
# The latency series alternate in LAT_REPS rounds of LAT_N / LAT_REPS samples each, so that
# a change in the machine's state (a noisy neighbour on a shared VM) reaches every series.
LAT_REPS=${BENCH_LAT_REPS:-4}
IDLE_S=${BENCH_IDLE_S:-10}
F_COUNTS=${BENCH_FOLLOWERS:-1,64,100,1000}
F_ROUNDS=${BENCH_FOLLOWER_ROUNDS:-200}
F_PROCS=${BENCH_FOLLOWER_PROCS:-1 0}
P_N=${BENCH_PRODUCERS_N:-2000000}
P_PROCS=${BENCH_PRODUCERS_PROCS:-1,2,4,8}
P_CLI_N=${BENCH_PRODUCERS_CLI_N:-4000000}
BASE_TOOLS=${BENCH_BASE_TOOLS:-}
REDIS=${BENCH_REDIS:-1}
REDIS_N=${BENCH_REDIS_N:-1000000}
if [[ -z "$OUT" ]]; then
    if ((PLOT)); then OUT=$ROOT/docs/bench; else OUT=$BUILD/bench-out; fi
fi
mkdir -p "$OUT" || { echo "# cannot create the output directory '$OUT'" >&2; exit 2; }
OUT=$(cd "$OUT" && pwd)
SAMPLES=$OUT/samples

mkdir -p "${BENCH_DIR:-/tmp}"
WORK=$(mktemp -d "${BENCH_DIR:-/tmp}/chronicle-bench.XXXXXX")
BG_PIDS=()

cleanup() {
    local p
    [[ -n "$FG_PID" ]] && BG_PIDS+=("$FG_PID")
    for p in "${BG_PIDS[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    for p in "${BG_PIDS[@]}"; do
        # Bounded: SIGKILL whatever is still there after the SIGTERM above.
        for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    if [[ "${BENCH_KEEP:-0}" == 1 ]]; then echo "# kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

note() { echo "# $*" >&2; }
now_us() { local t=$EPOCHREALTIME; echo "${t/./}"; }
# Every command runs under a time limit: nothing here can hang. It runs in the background
# and is waited for, so that a signal to this script is handled at once (the trap then
# stops it: timeout passes SIGTERM on to the command).
FG_PID=""
limit() {
    local rc=0
    timeout -k 5 "$@" <&0 &
    FG_PID=$!
    wait "$FG_PID" || rc=$?
    FG_PID=""
    return "$rc"
}
# An interruptible sleep.
nap() {
    sleep "$1" &
    wait $! || true
}

# emit_reps NAME UNIT HIGHER_BETTER(1|0) VALUE...  -> NAME.med / NAME.best
emit_reps() {
    local name=$1 unit=$2 hb=$3
    shift 3
    (($#)) || return 0
    printf '%s\n' "$@" | sort -g | awk -v n="$name" -v u="$unit" -v hb="$hb" '
        { a[NR] = $1 }
        END {
            m = a[int(0.5 * (NR - 1) + 0.5) + 1]
            b = hb ? a[NR] : a[1]
            printf "%s.med %.6g %s\n%s.best %.6g %s\n", n, m, u, n, b, u
        }'
}
# med / best of a list of numbers (same rank rule as emit_reps)
med_of() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int(0.5*(NR-1)+0.5)+1]}'; }
min_of() { printf '%s\n' "$@" | sort -g | head -1; }
ratio() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { if (b > 0) printf "%s.ratio %.6g x\n", n, a / b }'; }

# timed SECONDS_LIMIT "shell command" -> prints the wall seconds; fails if the command does
timed() {
    local lim=$1 cmd=$2 t0 t1
    t0=$(now_us)
    if ! limit "$lim" bash -c "$cmd"; then
        note "failed or timed out: $cmd"
        return 1
    fi
    t1=$(now_us)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f\n", (b - a) / 1e6 }'
}

# rates NAME SECONDS... -> NAME.lines_per_s.med/.best and NAME.s.med
rates() {
    local name=$1
    shift
    emit_reps "$name.lines_per_s" lines/s 1 $(for s in "$@"; do awk -v l="$LINES" -v s="$s" 'BEGIN{printf "%.6g\n", l/s}'; done)
    echo "$name.s.med $(med_of "$@") s"
}

# ---------------------------------------------------------------- Redis (an append baseline)
REDIS_PORT=""
REDIS_PID=""
# redis_start DIR: a private redis-server on 127.0.0.1 and a free port, without persistence;
# sets REDIS_PORT and REDIS_PID. Fails when no port worked.
redis_start() {
    local d=$1 p pid
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        p=$((20000 + RANDOM % 40000))
        # Something listens there already: another port.
        if (exec 5<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then continue; fi
        timeout -k 5 3600 redis-server --port "$p" --bind 127.0.0.1 --save '' --appendonly no \
            --dir "$d" --logfile "$d/redis.log" --daemonize no &
        pid=$!
        BG_PIDS+=("$pid")
        for _ in $(seq 100); do
            kill -0 "$pid" 2>/dev/null || break # it exited: the port was taken meanwhile
            if [[ $(timeout 5 redis-cli -p "$p" ping 2>/dev/null) == PONG ]]; then
                REDIS_PORT=$p
                REDIS_PID=$pid
                return 0
            fi
            sleep 0.05
        done
        redis_stop "$pid"
    done
    return 1
}
# redis_stop [PID]: stops it (SIGTERM; nothing to save) and forgets it.
redis_stop() {
    local pid=${1:-$REDIS_PID} keep=() q
    [[ -n "$pid" ]] || return 0
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for q in "${BG_PIDS[@]}"; do [[ "$q" == "$pid" ]] || keep+=("$q"); done
    BG_PIDS=("${keep[@]}")
    [[ "$pid" == "$REDIS_PID" ]] && REDIS_PORT="" REDIS_PID=""
    return 0
}
# One repetition: REDIS_N XADDs to a fresh stream, one client, 64 commands per round trip.
# Prints records/s (redis-benchmark's own figure).
redis_xadd() {
    timeout 10 redis-cli -p "$REDIS_PORT" DEL s >/dev/null
    limit 300 redis-benchmark -p "$REDIS_PORT" -c 1 -P 64 -n "$REDIS_N" --csv XADD s '*' f v |
        awk -F'"' 'NR == 2 && $4 + 0 > 0 { print $4 }'
}

# ---------------------------------------------------------------- append
# A deterministic log of N lines, each exactly 99 characters and a newline (100-byte
# lines): timestamp, level, worker, request id, method, path, status, duration, user,
# bytes, a word, then word=number pairs cut at 99 characters. The numbers come from minstd
# (x * 48271 mod 2^31 - 1, exact in doubles), so mawk and gawk write the same lines.
gen_log100() {
    awk -v n="$1" 'BEGIN {
        nl = split("INFO INFO INFO INFO DEBUG DEBUG WARN ERROR", lv, " ")
        nm = split("GET GET GET POST PUT DELETE", me, " ")
        nr = split("users orders items sessions carts invoices payments search", rs, " ")
        nw = split("ok accepted cached retried throttled forwarded queued replayed", wd, " ")
        x = 20261130
        for (i = 0; i < n; i++) {
            x = (x * 48271) % 2147483647; a = x
            x = (x * 48271) % 2147483647; b = x
            us = i * 37 + a % 37
            s = int(us / 1000000)
            l = sprintf("2026-11-30T%02d:%02d:%02d.%06dZ %-5s w%02d req=%08x %s /api/%s/%d %d %dms user=u%05d bytes=%d %s",
                int(s / 3600) % 24, int(s / 60) % 60, s % 60, us % 1000000,
                lv[a % nl + 1], b % 16, b, me[b % nm + 1], rs[a % nr + 1], a % 100000,
                (a % 50 ? 200 : 503), b % 1000, a % 40000, b % 65536, wd[b % nw + 1])
            while (length(l) < 99) l = l " " wd[(a + length(l)) % nw + 1] "=" (b + length(l)) % 997
            print substr(l, 1, 99)
        }
    }'
}

# bytes_per_record NAME QUEUE INPUT -> NAME.bytes_per_record.chronicle and .cat (bytes)
# The queue tools report no bytes-used figure (chronicle-queue info's bytes are the
# preallocated segment files), so chronicle's is measured in the segment files: from each
# segment's first record (header_size, at offset 12) to its last non-zero byte rounded up
# to 8 (every byte past the records is zero, DESIGN §3) — records, packs and seals; the
# segment headers and the preallocated rest are not counted. That the queue's payloads are
# the input's lines without their newlines is checked: chronicle-tail --format len32 writes
# 4 + length bytes per record. cat's: the input file's size / lines.
bytes_per_record() {
    local name=$1 q=$2 in=$3 lines len32 used got
    read -r lines len32 < <(awk '{ b += 4 + length($0) } END { if (NR) printf "%d %d\n", NR, b }' "$in") || true
    [[ -n "${lines:-}" ]] || return 0
    got=$(limit 120 "$TOOLS/chronicle-tail" --format len32 "$q" | wc -c || true)
    [[ "$got" == "$len32" ]] ||
        note "append: UNEXPECTED: the queue's records of ${in##*/} take $got bytes as len32 (want $len32): payloads differ from the lines"
    used=$(perl -e '
        my $sum = 0;
        for my $f (@ARGV) {
            open(my $h, "<:raw", $f) or die "$f: $!";
            my $size = -s $h;
            read($h, my $hd, 16) == 16 or die "$f: short";
            my $begin = unpack("V", substr($hd, 12, 4));
            my $end = $size;
            while ($end > $begin) {    # back to the last non-zero byte, 64 KiB at a time
                my $at = $end - 65536 < $begin ? $begin : $end - 65536;
                seek($h, $at, 0);
                read($h, my $buf, $end - $at);
                (my $t = $buf) =~ s/\0+\z//;
                if (length $t) { $end = $at + length $t; last }
                $end = $at;
            }
            $sum += (($end + 7) & ~7) - $begin if $end > $begin;
        }
        print $sum;' "$q"/*.seg)
    echo "$name.bytes_per_record.chronicle $(awk -v u="$used" -v l="$lines" 'BEGIN { printf "%.6g", u / l }') bytes"
    echo "$name.bytes_per_record.cat $(awk -v s="$(stat -c %s "$in")" -v l="$lines" 'BEGIN { printf "%.6g", s / l }') bytes"
}

# Two inputs, each appended as records by chronicle-append and copied by cat in the same
# run, reps interleaved, a fresh queue or file per rep (issue 10: "ingestion at the speed
# of cat"):
#   seq     seq 1 N (7.9-byte lines): from a pipe (seq | ...) and from a file; baselines
#           `| cat > file` (seq | cat > F, cat file | cat > F) and, as the upper bound,
#           `cat file > F` (a copy that the kernel does: copy_file_range, no user space);
#           also the lines2mmap floor, Redis XADD and `dd bs=1M` (one process making the
#           two copies chronicle-append makes, without framing: on one CPU, where
#           `cat file | cat` has two).
#   log100  BENCH_LOG_LINES generated log lines of 99 characters + newline: from a pipe
#           (cat log | chronicle-append) and from the file, against cat log | cat > F,
#           dd bs=1M and the upper bound cat log > F.
# Target: every *cat_over_chronicle_time and *cat_pipe_over_chronicle_time ratio >= 1.0 —
# chronicle-append at least as fast as `| cat > file`; the cat file > file2 ratios say how
# far that is from a kernel copy.
sec_append() {
    local D=$WORK/append Q QL F L n=$LINES ln=$LOG_LINES
    mkdir -p "$D"
    Q=$D/q
    QL=$D/qlog
    F=$D/out.txt
    L=$D/log100.txt
    seq 1 "$n" >"$D/seq.txt"
    gen_log100 "$ln" >"$L"
    note "append: seq 1 $n ($(stat -c %s "$D/seq.txt") bytes) and a log of $ln lines of 99 characters + newline" \
        "($(stat -c %s "$L") bytes), $REPS reps each, fresh queue/file per rep, reps interleaved"
    local floor="" src="$ROOT/../shared/bench-limits/lines2mmap.cpp"
    if [[ -f "$src" ]]; then
        if limit 120 "${CXX:-g++}" -O2 -std=c++20 -o "$WORK/lines2mmap" "$src" 2>"$WORK/l2m.log"; then
            floor=$WORK/lines2mmap
        else
            note "append: lines2mmap did not compile (see below); floor skipped"
            sed 's/^/# /' "$WORK/l2m.log" >&2
        fi
    else
        note "append: $src not found; lines2mmap floor skipped"
    fi
    # Redis XADD, pipelined: a local stream server's append rate, as a baseline.
    local r_xadd=() rver
    if [[ "$REDIS" != 1 ]]; then
        note "skip: Redis XADD (BENCH_REDIS=$REDIS)"
    elif ! command -v redis-server >/dev/null; then
        note "skip: redis-server not installed (Debian package redis-server)"
    elif ! command -v redis-benchmark >/dev/null || ! command -v redis-cli >/dev/null; then
        note "skip: redis-benchmark or redis-cli not installed (Debian package redis-tools)"
    elif ! redis_start "$D"; then
        note "skip: redis-server did not start on 127.0.0.1 (see below)"
        sed 's/^/# redis: /' "$D/redis.log" 2>/dev/null | tail -5 >&2 || true
    else
        rver=$(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p')
        note "append: Redis XADD baseline: redis-server $rver on 127.0.0.1:$REDIS_PORT (--save '' --appendonly no);" \
            "redis-benchmark -c 1 -P 64 -n $REDIS_N XADD s '*' f v (one client, 64 per round trip, a fresh stream per rep)"
    fi
    local a_pipe=() c_pipe=() a_file=() c_file=() p_file=() d_file=() t
    local la_pipe=() lc_pipe=() la_file=() lc_file=() ld_file=()
    local A=$TOOLS/chronicle-append
    for ((i = 0; i < REPS; i++)); do
        rm -rf "$Q"
        t=$(timed 300 "seq 1 $n | '$A' '$Q'") && a_pipe+=("$t")
        rm -f "$F"
        t=$(timed 300 "seq 1 $n | cat > '$F'") && c_pipe+=("$t")
        rm -rf "$Q"
        t=$(timed 300 "'$A' '$Q' < '$D/seq.txt'") && a_file+=("$t")
        rm -f "$F"
        t=$(timed 300 "cat '$D/seq.txt' | cat > '$F'") && p_file+=("$t")
        rm -f "$F"
        # The upper bound: cat copies a file to a file in the kernel.
        t=$(timed 300 "cat '$D/seq.txt' > '$F'") && c_file+=("$t")
        rm -f "$F"
        # One process, read() and write() of 1 MiB blocks: the two copies chronicle-append
        # makes too, on one CPU, without the framing.
        t=$(timed 300 "dd if='$D/seq.txt' of='$F' bs=1M status=none") && d_file+=("$t")
        rm -f "$F"
        # 100-byte log lines. `cat log | cat > F` is the baseline of both chronicle-append
        # runs (from the pipe `cat log |` and from the file): timed once per rep.
        rm -rf "$QL"
        t=$(timed 300 "cat '$L' | '$A' '$QL'") && la_pipe+=("$t")
        rm -f "$F"
        t=$(timed 300 "cat '$L' | cat > '$F'") && lc_pipe+=("$t")
        rm -rf "$QL"
        t=$(timed 300 "'$A' '$QL' < '$L'") && la_file+=("$t")
        rm -f "$F"
        t=$(timed 300 "cat '$L' > '$F'") && lc_file+=("$t")
        rm -f "$F"
        t=$(timed 300 "dd if='$L' of='$F' bs=1M status=none") && ld_file+=("$t")
        rm -f "$F"
        if [[ -n "$floor" ]]; then
            # As bench-limits/run.sh sec_cli runs it (it times itself: read loop only).
            limit 300 "$floor" --out "$D/l2m.bin" --name p <"$D/seq.txt" | awk '$1 == "p.lines_per_s" {print $2}' >>"$D/floor_file" || true
            limit 300 bash -c "seq 1 $n | '$floor' --out '$D/l2m.bin' --name p" | awk '$1 == "p.lines_per_s" {print $2}' >>"$D/floor_pipe" || true
        fi
        if [[ -n "$REDIS_PORT" ]]; then
            t=$(redis_xadd) && [[ -n "$t" ]] && r_xadd+=("$t") || note "append: redis-benchmark gave no figure"
        fi
    done
    rm -f "$D/l2m.bin"
    # Sanity: the last queues hold every line (outside the timing).
    local last want
    last=$(limit 60 "$TOOLS/chronicle-tail" -n 1 --show-seq "$Q" | tr '\t' ' ' || true)
    [[ "$last" == "$((n - 1)) $n" ]] || note "append: UNEXPECTED last record of the queue: '$last' (want '$((n - 1)) $n')"
    last=$(limit 60 "$TOOLS/chronicle-tail" -n 1 --show-seq "$QL" | tr '\t' ' ' || true)
    want="$((ln - 1)) $(tail -n 1 "$L")"
    [[ "$last" == "$want" ]] || note "append: UNEXPECTED last record of the log queue: '$last' (want '$want')"
    if [[ -n "$REDIS_PORT" ]]; then
        last=$(timeout 10 redis-cli -p "$REDIS_PORT" XLEN s 2>/dev/null || true)
        [[ "$last" == "$REDIS_N" ]] || note "append: the Redis stream holds '$last' entries (want $REDIS_N)"
        redis_stop
    fi
    # Disk bytes per record, chronicle beside cat (outside the timing).
    local bpr
    note "append: bytes_per_record.chronicle is measured in the segment files (first record to the last" \
        "non-zero byte: records, packs, seals), the queue's payload sizes checked with chronicle-tail" \
        "--format len32; segment headers and preallocation not counted;" \
        "bytes_per_record.cat = the input file's size / lines"
    bpr=$(bytes_per_record append.seq "$Q" "$D/seq.txt")
    bpr+=$'\n'$(bytes_per_record append.log100 "$QL" "$L")
    rm -rf "$Q" "$QL" "$F"

    rates append.seq_pipe.chronicle "${a_pipe[@]}"
    rates append.seq_pipe.cat "${c_pipe[@]}"
    if ((${#a_pipe[@]} && ${#c_pipe[@]})); then
        # cat time / chronicle-append time: >= 1.0 means chronicle-append is at least as fast.
        ratio "$(med_of "${c_pipe[@]}")" "$(med_of "${a_pipe[@]}")" append.seq_pipe.cat_over_chronicle_time
        ratio "$(min_of "${c_pipe[@]}")" "$(min_of "${a_pipe[@]}")" append.seq_pipe.cat_over_chronicle_time_best
    fi
    rates append.from_file.chronicle "${a_file[@]}"
    # cat file > F: the upper bound (a kernel copy), not the target.
    rates append.from_file.cat "${c_file[@]}"
    if ((${#a_file[@]} && ${#c_file[@]})); then
        ratio "$(med_of "${c_file[@]}")" "$(med_of "${a_file[@]}")" append.from_file.cat_over_chronicle_time
        ratio "$(min_of "${c_file[@]}")" "$(min_of "${a_file[@]}")" append.from_file.cat_over_chronicle_time_best
    fi
    # cat file | cat > F: the target (`| cat > file`).
    rates append.from_file.cat_pipe "${p_file[@]}"
    if ((${#a_file[@]} && ${#p_file[@]})); then
        ratio "$(med_of "${p_file[@]}")" "$(med_of "${a_file[@]}")" append.from_file.cat_pipe_over_chronicle_time
        ratio "$(min_of "${p_file[@]}")" "$(min_of "${a_file[@]}")" append.from_file.cat_pipe_over_chronicle_time_best
    fi
    # dd if=file of=F bs=1M: one process, the same two copies (how far the framing is from
    # them, on one CPU; cat file | cat uses two).
    rates append.from_file.dd "${d_file[@]}"
    if ((${#a_file[@]} && ${#d_file[@]})); then
        ratio "$(med_of "${d_file[@]}")" "$(med_of "${a_file[@]}")" append.from_file.dd_over_chronicle_time
    fi
    # The log lines: rates in lines/s of its BENCH_LOG_LINES lines.
    LINES=$ln rates append.log100_pipe.chronicle "${la_pipe[@]}"
    LINES=$ln rates append.log100_pipe.cat "${lc_pipe[@]}"
    if ((${#la_pipe[@]} && ${#lc_pipe[@]})); then
        ratio "$(med_of "${lc_pipe[@]}")" "$(med_of "${la_pipe[@]}")" append.log100_pipe.cat_over_chronicle_time
        ratio "$(min_of "${lc_pipe[@]}")" "$(min_of "${la_pipe[@]}")" append.log100_pipe.cat_over_chronicle_time_best
    fi
    LINES=$ln rates append.log100_file.chronicle "${la_file[@]}"
    # The same timings as append.log100_pipe.cat (the same command).
    LINES=$ln rates append.log100_file.cat_pipe "${lc_pipe[@]}"
    if ((${#la_file[@]} && ${#lc_pipe[@]})); then
        ratio "$(med_of "${lc_pipe[@]}")" "$(med_of "${la_file[@]}")" append.log100_file.cat_pipe_over_chronicle_time
        ratio "$(min_of "${lc_pipe[@]}")" "$(min_of "${la_file[@]}")" append.log100_file.cat_pipe_over_chronicle_time_best
    fi
    LINES=$ln rates append.log100_file.dd "${ld_file[@]}"
    if ((${#la_file[@]} && ${#ld_file[@]})); then
        ratio "$(med_of "${ld_file[@]}")" "$(med_of "${la_file[@]}")" append.log100_file.dd_over_chronicle_time
    fi
    # cat log > F: the upper bound (a kernel copy).
    LINES=$ln rates append.log100_file.cat "${lc_file[@]}"
    if ((${#la_file[@]} && ${#lc_file[@]})); then
        ratio "$(med_of "${lc_file[@]}")" "$(med_of "${la_file[@]}")" append.log100_file.cat_over_chronicle_time
        ratio "$(min_of "${lc_file[@]}")" "$(min_of "${la_file[@]}")" append.log100_file.cat_over_chronicle_time_best
    fi
    if [[ -n "$floor" && -s "$D/floor_pipe" ]]; then
        emit_reps append.seq_pipe.floor_lines2mmap.lines_per_s lines/s 1 $(cat "$D/floor_pipe")
        emit_reps append.from_file.floor_lines2mmap.lines_per_s lines/s 1 $(cat "$D/floor_file")
        if ((${#a_pipe[@]})); then
            # chronicle-append lines/s as a fraction of the floor's (both medians).
            ratio "$(awk -v l="$n" -v s="$(med_of "${a_pipe[@]}")" 'BEGIN{print l/s}')" \
                "$(med_of $(cat "$D/floor_pipe"))" append.seq_pipe.chronicle_over_floor
        fi
        if ((${#a_file[@]})); then
            ratio "$(awk -v l="$n" -v s="$(med_of "${a_file[@]}")" 'BEGIN{print l/s}')" \
                "$(med_of $(cat "$D/floor_file"))" append.from_file.chronicle_over_floor
        fi
    fi
    if ((${#r_xadd[@]})); then
        emit_reps append.redis_xadd_p64.records_per_s records/s 1 "${r_xadd[@]}"
        if ((${#a_pipe[@]})); then
            # chronicle-append lines (records)/s from a pipe / Redis XADD records/s (medians).
            ratio "$(awk -v l="$n" -v s="$(med_of "${a_pipe[@]}")" 'BEGIN{print l/s}')" \
                "$(med_of "${r_xadd[@]}")" append.seq_pipe.chronicle_over_redis_xadd
        fi
    fi
    printf '%s\n' "$bpr" | sed '/^$/d'
    rm -rf "$D"
}

# ---------------------------------------------------------------- retention
# Append rate with retention deleting as it goes (a queue capped at a few segments) against
# the same run without limits: deletion happens on the writer's retention thread, off the
# append path (issue 11: the ratio must stay >= 0.95). Same segment size both ways, reps
# interleaved, fresh queue per rep; the capped queue's size is checked afterwards.
sec_retention() {
    local D=$WORK/retention Q n=$LINES seg=${BENCH_RET_SEGMENT:-4M} cap=${BENCH_RET_CAP:-16M}
    mkdir -p "$D"
    Q=$D/q
    local A=$TOOLS/chronicle-append a_free=() a_capped=() t i bytes segs=()
    note "retention: seq 1 $n | chronicle-append, --segment-size $seg, without limits and with --max-bytes $cap" \
        "($REPS reps each, interleaved)"
    for ((i = 0; i < REPS; i++)); do
        rm -rf "$Q"
        t=$(timed 300 "seq 1 $n | '$A' --segment-size $seg '$Q'") && a_free+=("$t")
        rm -rf "$Q"
        t=$(timed 300 "seq 1 $n | '$A' --segment-size $seg --max-bytes $cap '$Q'") && a_capped+=("$t")
        bytes=$(cat "$Q"/*.seg | wc -c)
        segs+=("$bytes")
    done
    local last
    last=$(limit 60 "$TOOLS/chronicle-tail" -n 1 --show-seq "$Q" | tr '\t' ' ' || true)
    [[ "$last" == "$((n - 1)) $n" ]] || note "retention: UNEXPECTED last record of the capped queue: '$last'"
    note "retention: the capped queue held $(printf '%s ' "${segs[@]}")bytes of segments at exit (cap $cap)"
    echo "retention.capped_bytes_at_exit.max $(printf '%s\n' "${segs[@]}" | sort -g | tail -1) bytes"
    rm -rf "$Q"
    rates retention.unlimited "${a_free[@]}"
    rates retention.capped "${a_capped[@]}"
    if ((${#a_free[@]} && ${#a_capped[@]})); then
        # unlimited time / capped time: >= 0.95 means deleting costs the append < 5 %.
        ratio "$(med_of "${a_free[@]}")" "$(med_of "${a_capped[@]}")" retention.capped_over_unlimited_rate
    fi
    rm -rf "$D"
}

# ---------------------------------------------------------------- lib
sec_lib() {
    limit 600 "$BBIN/bench_lib" --dir "$WORK/lib" --reps "$REPS"
}

# ---------------------------------------------------------------- wake
# utime + stime (clock ticks) of a process, from /proc/PID/stat (fields after the comm).
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
ctx_switches() { awk '/^(voluntary|nonvoluntary)_ctxt_switches/ { s += $2 } END { print s }' "/proc/$1/status"; }

sec_wake() {
    limit 300 "$BBIN/bench_wake" --dir "$WORK/wake" --n "$((LAT_N / LAT_REPS))" --reps "$LAT_REPS" --gap-us 1000 --dump "$SAMPLES/latency_us"
    # A parked follower uses no CPU: chronicle-tail -f on an idle queue whose writer is
    # alive (chronicle-append reading a FIFO it also holds open, so it never sees EOF).
    local D=$WORK/idle Q apid tpid
    mkdir -p "$D"
    Q=$D/q
    mkfifo "$D/in"
    # `timeout` directly (not through a shell function, which would fork a subshell): $!
    # is then the timeout process, which passes our SIGTERM on to the tool.
    timeout -k 5 $((IDLE_S + 60)) "$TOOLS/chronicle-append" "$Q" <>"$D/in" 2>"$D/append.err" &
    apid=$!
    BG_PIDS+=("$apid")
    for _ in $(seq 100); do [[ -e "$Q/writer.lock" ]] && compgen -G "$Q/*.seg" >/dev/null && break; sleep 0.05; done
    # -c 2: it exits after the second line, sent after the idle period — proof that the
    # parked follower is still woken.
    timeout -k 5 $((IDLE_S + 60)) "$TOOLS/chronicle-tail" -f -c 2 "$Q" >/dev/null &
    tpid=$!
    BG_PIDS+=("$tpid")
    echo "first line" >"$D/in"  # the follower reads it, then parks
    nap 1
    # `timeout` runs the tool as its child: measure the tool, not the wrapper.
    local tail_pid app_pid
    tail_pid=$(pgrep -P "$tpid" | head -1)
    app_pid=$(pgrep -P "$apid" | head -1)
    if [[ -z "$tail_pid" || -z "$app_pid" ]]; then
        note "wake: chronicle-tail -f or chronicle-append is not running; idle check skipped"
        return 0
    fi
    if ! kill -0 "$tail_pid" 2>/dev/null; then
        note "wake: chronicle-tail -f exited early"
        return 0
    fi
    local t0 t1 c0 c1 a0 a1
    t0=$(cpu_ticks "$tail_pid"); c0=$(ctx_switches "$tail_pid"); a0=$(cpu_ticks "$app_pid")
    note "wake: chronicle-tail -f (pid $tail_pid, state $(awk '{sub(/^.*\) /, ""); print $1}' "/proc/$tail_pid/stat")) idle for ${IDLE_S} s"
    nap "$IDLE_S"
    t1=$(cpu_ticks "$tail_pid"); c1=$(ctx_switches "$tail_pid"); a1=$(cpu_ticks "$app_pid")
    echo "wake.tail_f_parked_${IDLE_S}s.cpu_ticks $((t1 - t0)) ticks"
    echo "wake.tail_f_parked_${IDLE_S}s.context_switches $((c1 - c0)) switches"
    echo "wake.append_idle_writer_${IDLE_S}s.cpu_ticks $((a1 - a0)) ticks"
    note "wake: 1 tick = 1/$(getconf CLK_TCK) s"
    local w0 woken=0
    w0=$(now_us)
    echo "second line" >"$D/in"
    for _ in $(seq 300); do kill -0 "$tail_pid" 2>/dev/null || { woken=1; break; }; sleep 0.01; done
    echo "wake.tail_f_parked_woken_after_idle $woken bool"
    if ((woken)); then
        note "wake: the parked chronicle-tail -f got the next line and exited $(awk -v a="$w0" -v b="$(now_us)" 'BEGIN{printf "%.1f", (b-a)/1e3}') ms after it was sent"
    else
        note "wake: UNEXPECTED: the parked chronicle-tail -f did not deliver the line sent after the idle period within 3 s"
    fi
    kill "$tpid" "$apid" 2>/dev/null || true
    wait "$tpid" 2>/dev/null || true
    wait "$apid" 2>/dev/null || true
    # It reports the SIGTERM we sent it; anything else is worth showing.
    grep -v 'interrupted by signal' "$D/append.err" | sed 's/^/# idle chronicle-append: /' >&2 || true
    BG_PIDS=()
    rm -rf "$D"
}

# ---------------------------------------------------------------- cli
sec_cli() {
    limit 300 "$BBIN/bench_linelat" --dir "$WORK/cli" --tools "$TOOLS" --n "$((LAT_N / LAT_REPS))" --reps "$LAT_REPS" --gap-us 1000 --dump "$SAMPLES/latency_us"
}

# ---------------------------------------------------------------- layout
# What the record layout is worth against what fresh pages cost (bench_layout): the
# measurement behind the format decision (docs/DESIGN.md, issue 10).
sec_layout() {
    limit 300 "$BBIN/bench_layout" --dir "$WORK" --reps "$REPS"
}

# ---------------------------------------------------------------- syscalls
# System calls per delivered line on each side of the end-to-end path, with paced lines
# (~1 ms apart: every line its own wake-up): chronicle-append -> chronicle-tail -f, beside
# cat >> f -> tail -f f. strace -f -c counts each process with its threads; per line =
# (calls with N2 lines - calls with N1 lines) / (N2 - N1), which cancels start-up and exit.
sc_calls() { awk '$NF == "total" {print $4}' "$1"; }
sc_paced() {
    local i
    for ((i = 1; i <= $1; i++)); do
        printf 'line %d\n' "$i"
        sleep 0.001
    done
}
# sc_chronicle N: leaves $D/c_append.N and $D/c_tail.N (strace -c summaries)
sc_chronicle() {
    local n=$1 q=$D/sc_q tp i
    rm -rf "$q"
    "$TOOLS/chronicle-append" "$q" </dev/null
    strace -f -c -o "$D/c_tail.$n" "$TOOLS/chronicle-tail" -f -c "$n" "$q" >/dev/null &
    tp=$!
    for ((i = 0; i < 500; i++)); do  # registered: the writer will find it
        compgen -G "$q/readers/*.efd" >/dev/null && break
        nap 0.01
    done
    sc_paced "$n" | limit 60 strace -f -c -o "$D/c_append.$n" "$TOOLS/chronicle-append" "$q"
    limit 30 tail --pid="$tp" -f /dev/null || kill "$tp" 2>/dev/null
    wait "$tp" 2>/dev/null || true
}
# sc_tail_f N: leaves $D/t_cat.N and $D/t_tail.N
sc_tail_f() {
    local n=$1 f=$D/sc_f tp i
    : >"$f"
    strace -f -c -o "$D/t_tail.$n" tail -n +1 -f "$f" >"$D/t_out" &
    tp=$!
    nap 0.2
    sc_paced "$n" | limit 60 strace -f -c -o "$D/t_cat.$n" cat >>"$f"
    for ((i = 0; i < 1000; i++)); do
        (($(wc -l <"$D/t_out") >= n)) && break
        nap 0.01
    done
    pkill -TERM -P "$tp" 2>/dev/null || true  # tail itself; strace then writes its summary
    wait "$tp" 2>/dev/null || true
}
sec_syscalls() {
    if ! command -v strace >/dev/null; then
        note "skip: strace not installed (Debian package strace)"
        return 0
    fi
    D=$WORK/syscalls
    mkdir -p "$D"
    local n1=${BENCH_SYSCALL_N1:-50} n2=${BENCH_SYSCALL_N2:-550} n side
    for n in "$n1" "$n2"; do
        sc_chronicle "$n"
        sc_tail_f "$n"
    done
    for side in c_append c_tail t_cat t_tail; do
        if [[ ! -s "$D/$side.$n1" || ! -s "$D/$side.$n2" ]]; then
            note "syscalls: no strace summary for $side"
            return 1
        fi
    done
    per_line() {
        awk -v a="$(sc_calls "$D/$1.$n1")" -v b="$(sc_calls "$D/$1.$n2")" -v n="$((n2 - n1))" \
            'BEGIN { printf "%.3g\n", (b - a) / n }'
    }
    local ca ct tc tt
    ca=$(per_line c_append)
    ct=$(per_line c_tail)
    tc=$(per_line t_cat)
    tt=$(per_line t_tail)
    echo "syscalls.chronicle.append_per_line $ca calls"
    echo "syscalls.chronicle.tail_f_per_line $ct calls"
    echo "syscalls.tail_f.cat_append_per_line $tc calls"
    echo "syscalls.tail_f.tail_f_per_line $tt calls"
    ratio "$(awk -v a="$ca" -v b="$ct" 'BEGIN{print a + b}')" \
        "$(awk -v a="$tc" -v b="$tt" 'BEGIN{print a + b}')" syscalls.chronicle_vs_tail_f_per_line
}

# ---------------------------------------------------------------- followers
# Parked followers at scale (bench_followers): writer start-up, the cost of waking them
# all, the last follower's wake latency, the append's latency; raw eventfd floors. One
# pass per BENCH_FOLLOWER_PROCS entry (threads of one process; one process per follower).
# chronicle-bridge against real servers (skipped with a note where one is missing).
sec_bridges() {
    BUILD="$BUILD" BENCH_DIR="$WORK" "$HERE/bridge_bench.sh"
    BUILD="$BUILD" BENCH_DIR="$WORK" "$HERE/nats_bench.sh"
}

sec_followers() {
    local procs rc=0
    for procs in $F_PROCS; do
        limit 300 "$BBIN/bench_followers" --dir "$WORK/followers" --counts "$F_COUNTS" \
            --rounds "$F_ROUNDS" --procs "$procs" || rc=$?
        rm -rf "$WORK/followers"
    done
    return "$rc"
}

# ---------------------------------------------------------------- producers
# Several producers on one queue (shared writers taking turns under the append lock):
# bench_producers — one producer, exclusive writer against shared; P forked producers on one
# queue against P processes appending to one file with O_APPEND and with flock; the append's
# latency under contention. Then the same through the tools: P parallel
# `seq | chronicle-append q` into one queue against P parallel `seq >> file` (bash opens the
# file with O_APPEND). With BENCH_BASE_TOOLS: one producer before and after the change.
sec_producers() {
    local rc=0
    limit 300 "$BBIN/bench_producers" --dir "$WORK/producers" --n "$P_N" --procs "$P_PROCS" || rc=$?
    rm -rf "$WORK/producers"
    producers_cli || rc=$?
    return "$rc"
}
# prod_group P PIPELINE -> a bash command that starts P copies of PIPELINE at once, waits for
# every one and fails when one failed ($! of a background pipeline is its last command).
prod_group() {
    printf 'rc=0; pids=(); for ((k = 0; k < %d; k++)); do %s & pids+=($!); done; for x in "${pids[@]}"; do wait "$x" || rc=1; done; exit $rc' "$1" "$2"
}
# lines_per_s LINES SECONDS
lines_per_s() { awk -v l="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.6g\n", l / s }'; }
producers_cli() {
    local D=$WORK/producers_cli n=$P_CLI_N A=$TOOLS/chronicle-append Q F p per total tc to got
    local rate_c rate_o
    mkdir -p "$D"
    Q=$D/q
    F=$D/out.txt
    note "producers cli: $n lines in all per run; P = 1 2 4 parallel 'seq 1 $n/P | chronicle-append q' into one queue" \
        "vs 'seq 1 $n/P >> file' (O_APPEND) into one file; wall time of the P together; the queue and the file exist beforehand"
    for p in 1 2 4; do
        per=$((n / p))
        total=$((per * p))
        rate_c=""
        rate_o=""
        # An empty queue first, so that the P writers do not all create it.
        rm -rf "$Q"
        limit 60 "$A" "$Q" </dev/null || { note "producers cli: cannot create the queue $Q"; return 1; }
        if tc=$(timed 300 "$(prod_group "$p" "seq 1 $per | '$A' '$Q'")"); then
            rate_c=$(lines_per_s "$total" "$tc")
            echo "producers.cli.p$p.chronicle_append_lines_per_s $rate_c lines/s"
            got=$(limit 120 "$TOOLS/chronicle-tail" "$Q" | wc -l || true)
            [[ "$got" == "$total" ]] || note "producers cli: UNEXPECTED: P=$p: the queue holds '$got' lines (want $total)"
        fi
        rm -rf "$Q"
        : >"$F"
        if to=$(timed 300 "$(prod_group "$p" "seq 1 $per >> '$F'")"); then
            rate_o=$(lines_per_s "$total" "$to")
            echo "producers.cli.p$p.oappend_lines_per_s $rate_o lines/s"
            got=$(wc -l <"$F")
            [[ "$got" == "$total" ]] || note "producers cli: P=$p: the O_APPEND file holds '$got' lines (want $total)"
        fi
        rm -f "$F"
        # chronicle-append lines/s / O_APPEND lines/s, P writers each.
        if [[ -n "$rate_c" && -n "$rate_o" ]]; then
            ratio "$rate_c" "$rate_o" "producers.cli.p$p.chronicle_over_oappend"
        fi
    done
    # One producer before and after the change: the current chronicle-append against an
    # older one (BENCH_BASE_TOOLS), a fresh queue per run, which goes first alternating.
    local B=$BASE_TOOLS/chronicle-append cur=() base=() i w t order
    if [[ -z "$BASE_TOOLS" ]]; then
        note "producers cli: BENCH_BASE_TOOLS not set: no before/after comparison of one producer"
    elif [[ ! -x "$B" ]]; then
        note "skip: producers cli before/after: no executable $B (BENCH_BASE_TOOLS)"
    else
        note "producers cli: one producer before and after: seq 1 $n | chronicle-append q, current $A vs base $B, $REPS reps interleaved"
        for ((i = 0; i < REPS; i++)); do
            order="cur base"
            if ((i % 2)); then order="base cur"; fi
            for w in $order; do
                rm -rf "$Q"
                if [[ "$w" == cur ]]; then
                    t=$(timed 300 "seq 1 $n | '$A' '$Q'") && cur+=("$(lines_per_s "$n" "$t")")
                else
                    t=$(timed 300 "seq 1 $n | '$B' '$Q'") && base+=("$(lines_per_s "$n" "$t")")
                fi
            done
        done
        rm -rf "$Q"
        emit_reps producers.cli.single.current.lines_per_s lines/s 1 "${cur[@]}"
        emit_reps producers.cli.single.base.lines_per_s lines/s 1 "${base[@]}"
        if ((${#cur[@]} && ${#base[@]})); then
            # rate current / rate base (medians). Target >= 0.95.
            ratio "$(med_of "${cur[@]}")" "$(med_of "${base[@]}")" producers.cli.single.current_over_base
        fi
    fi
    rm -rf "$D"
}

# ---------------------------------------------------------------- figures.json
fs_type() { findmnt -n -o FSTYPE -T "$1" 2>/dev/null || stat -f -c %T "$1"; }
cache_var() { sed -n "s/^$1:[A-Z]*=//p" "$BUILD/CMakeCache.txt" 2>/dev/null | head -1; }

# write_json FIGURES_FILE NOTES_FILE SECONDS: the run's figures, notes, machine and latency
# sample files into $OUT/figures.json.
write_json() {
    local figs=$1 notes=$2 secs=$3 cxx commit dirty=false f name samples=""
    cxx=$(cache_var CMAKE_CXX_COMPILER)
    [[ -n "$cxx" ]] && cxx=$("$cxx" --version 2>/dev/null | head -1)
    commit=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)
    # Dirty: the code measured differs from the commit (the generated docs do not count).
    git -C "$ROOT" diff --quiet HEAD -- lib tools bench CMakeLists.txt cmake 2>/dev/null || dirty=true
    for f in "$SAMPLES"/latency_us.*.txt; do
        [[ -f "$f" ]] || continue
        name=${f##*/latency_us.}
        name=${name%.txt}
        samples+="$name	samples/${f##*/}	$(wc -l <"$f")"$'\n'
    done
    jq -n --rawfile figs "$figs" --rawfile notes "$notes" --arg samples "$samples" \
        --arg cpu "$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)" \
        --arg cpus "$(nproc)" --arg kernel "$(uname -r)" \
        --arg os "$(. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-}")" \
        --arg ram_kib "$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)" \
        --arg virt "$(systemd-detect-virt 2>/dev/null || true)" \
        --arg bench_dir "${BENCH_DIR:-/tmp}" --arg fs "$(fs_type "$WORK")" \
        --arg load_start "$LOAD_START" --arg load_end "$(cut -d' ' -f1-3 /proc/loadavg)" \
        --arg date "$DATE_START" --arg commit "$commit" --argjson dirty "$dirty" \
        --arg build_type "$(cache_var CMAKE_BUILD_TYPE)" --arg cxx "$cxx" \
        --arg command "bench/run.sh${ARGS[*]:+ ${ARGS[*]}}" --arg sections "${SECTIONS[*]}" \
        --arg secs "$secs" --arg reps "$REPS" --arg lines "$LINES" --arg log_lines "$LOG_LINES" --arg lat_n "$LAT_N" --arg lat_reps "$LAT_REPS" \
        --arg idle_s "$IDLE_S" --arg redis "$REDIS" --arg redis_n "$REDIS_N" \
        --arg f_counts "$F_COUNTS" --arg f_rounds "$F_ROUNDS" --arg f_procs "$F_PROCS" \
        --arg p_n "$P_N" --arg p_procs "$P_PROCS" --arg p_cli_n "$P_CLI_N" --arg base_tools "$BASE_TOOLS" '
        def num: if test("^[-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?$") then tonumber else null end;
        def loads: split(" ") | map(num);
        {
          schema: "chronicle.bench/v1",
          machine: {
            cpu_model: $cpu, cpus: ($cpus | num), kernel: $kernel, os: $os,
            ram_gib: (($ram_kib | num) / 1048576 * 10 | round / 10),
            virtualization: $virt, bench_dir: $bench_dir, bench_dir_fs: $fs,
            loadavg_start: ($load_start | loads), loadavg_end: ($load_end | loads)
          },
          run: {
            date_utc: $date, git_commit: $commit, git_dirty: $dirty,
            build_type: $build_type, compiler: $cxx, command: $command,
            sections: ($sections | split(" ")), seconds: ($secs | num),
            settings: {
              BENCH_REPS: ($reps | num), BENCH_LINES: ($lines | num), BENCH_LOG_LINES: ($log_lines | num), BENCH_LAT_N: ($lat_n | num), BENCH_LAT_REPS: ($lat_reps | num),
              BENCH_IDLE_S: ($idle_s | num), BENCH_REDIS: ($redis | num), BENCH_REDIS_N: ($redis_n | num),
              BENCH_FOLLOWERS: $f_counts, BENCH_FOLLOWER_ROUNDS: ($f_rounds | num),
              BENCH_FOLLOWER_PROCS: $f_procs,
              BENCH_PRODUCERS_N: ($p_n | num), BENCH_PRODUCERS_PROCS: $p_procs,
              BENCH_PRODUCERS_CLI_N: ($p_cli_n | num), BENCH_BASE_TOOLS: $base_tools
            }
          },
          figures: [$figs | split("\n")[] | select(test("^[^ #]+ [^ ]+ [^ ]+$")) | split(" ")
                    | {name: .[0], value: (.[1] | num), unit: .[2]}],
          samples: [$samples | split("\n")[] | select(length > 0) | split("\t")
                    | {name: .[0], file: .[1], n: (.[2] | num), unit: "us"}],
          notes: [$notes | split("\n")[] | select(startswith("#")) | sub("^# ?"; "")]
        }' >"$OUT/figures.json.tmp" && mv "$OUT/figures.json.tmp" "$OUT/figures.json"
}

# ---------------------------------------------------------------- main
((${#SECTIONS[@]})) || SECTIONS=(append retention lib wake cli syscalls layout followers producers)
NEED=()
for s in "${SECTIONS[@]}"; do
    case $s in
        append | retention) NEED+=("$TOOLS/chronicle-append" "$TOOLS/chronicle-tail") ;;
        lib) NEED+=("$BBIN/bench_lib") ;;
        wake) NEED+=("$BBIN/bench_wake" "$TOOLS/chronicle-append" "$TOOLS/chronicle-tail") ;;
        cli) NEED+=("$BBIN/bench_linelat" "$TOOLS/chronicle-append" "$TOOLS/chronicle-tail") ;;
        syscalls) NEED+=("$TOOLS/chronicle-append" "$TOOLS/chronicle-tail") ;;
        layout) NEED+=("$BBIN/bench_layout") ;;
        followers) NEED+=("$BBIN/bench_followers") ;;
        producers) NEED+=("$BBIN/bench_producers" "$TOOLS/chronicle-append" "$TOOLS/chronicle-tail") ;;
        bridges) NEED+=("$TOOLS/chronicle-append") ;;
        *) note "unknown section '$s' (sections: append retention lib wake cli syscalls layout followers producers bridges)"; exit 2 ;;
    esac
done
for b in "${NEED[@]}"; do
    if [[ ! -x "$b" ]]; then
        note "missing $b: build first (cmake --build $BUILD)"
        exit 2
    fi
done
command -v jq >/dev/null || { note "missing jq (Debian package jq): it writes figures.json"; exit 2; }

# The output directory holds this run's samples only.
mkdir -p "$SAMPLES"
rm -f "$SAMPLES"/latency_us.*.txt
# Stdout and stderr also go to files, for figures.json; tee -i survives Ctrl-C, so that
# the notes of the clean-up still show.
exec 3>&1 4>&2
exec 1> >(tee -i "$WORK/stdout.txt" >&3)
TEE_OUT=$!
exec 2> >(tee -i "$WORK/stderr.txt" >&4)
TEE_ERR=$!

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
DATE_START=$(date -u +%Y-%m-%dT%H:%M:%SZ)
note "chronicle bench: $(uname -r), $(nproc) cpus, load $LOAD_START," \
    "$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), data $WORK ($(fs_type "$WORK")), build $BUILD"
T_START=$(now_us)
for s in "${SECTIONS[@]}"; do
    t0=$(now_us)
    "sec_$s" || note "section $s failed (status $?)"
    note "section $s took $(awk -v a="$t0" -v b="$(now_us)" 'BEGIN{printf "%.1f", (b-a)/1e6}') s"
done
T_TOTAL=$(awk -v a="$T_START" -v b="$(now_us)" 'BEGIN{printf "%.1f", (b-a)/1e6}')
note "total $T_TOTAL s"

# Back to the terminal; the tees finish writing their files (bounded).
exec 1>&3 2>&4 3>&- 4>&-
for _ in $(seq 50); do
    kill -0 "$TEE_OUT" 2>/dev/null || kill -0 "$TEE_ERR" 2>/dev/null || break
    sleep 0.1
done
write_json "$WORK/stdout.txt" "$WORK/stderr.txt" "$T_TOTAL" || note "could not write $OUT/figures.json"
note "figures: $OUT/figures.json; latency samples: $SAMPLES/"
if ((PLOT)); then
    # Into the repository's docs/bench: the README's table follows (between its
    # bench-summary lines).
    PLOT_ARGS=()
    if [[ "$OUT" == "$ROOT/docs/bench" ]] && grep -q '^<!-- bench-summary:begin -->$' "$ROOT/README.md" 2>/dev/null; then
        PLOT_ARGS=(--readme "$ROOT/README.md")
    fi
    "$HERE/plot.sh" "${PLOT_ARGS[@]}" "$OUT" || note "plot: bench/plot.sh $OUT failed (status $?)"
fi
