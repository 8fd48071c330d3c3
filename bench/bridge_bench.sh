#!/usr/bin/env bash
# chronicle-bridge benchmark (issue 13, item 7; the Redis part): records/s from a queue into
# a Redis stream through the bridge, beside redis-benchmark's own XADD in the same run
# against the same server, with the same pipeline depth, fields, payload size and one
# connection. The bridge waits for a whole batch's replies before it sends the next batch
# (its cursor follows the replies); redis-benchmark keeps the pipeline full.
#
# Usage: bench/bridge_bench.sh        (from the repository, after cmake --build build)
# Environment:
#   BUILD        build directory (default: build)
#   BENCH_DIR    where the queue goes (default /tmp; a fresh mktemp -d, removed at the end)
#   BENCH_N      records (default 1000000)
#   BENCH_SIZE   payload bytes (default 100)
#   BENCH_REPS   repetitions (default 3); the median and the best are printed
#   BENCH_BATCH  pipeline depths (default "100 1000")
# Output (stdout): "<name> <value> <unit>" lines; notes on stderr, prefixed '#'. Timings are
# never asserted. Compare within a run: the figures depend on the machine and its load.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BUILD=${BUILD:-build}
B=$BUILD/tools
N=${BENCH_N:-1000000}
SIZE=${BENCH_SIZE:-100}
REPS=${BENCH_REPS:-3}
BATCHES=${BENCH_BATCH:-100 1000}
note() { echo "# $*" >&2; }

[[ -x $B/chronicle-bridge ]] || { note "skip: $B/chronicle-bridge not built (libhiredis-dev)"; exit 0; }
for t in redis-server redis-cli redis-benchmark; do
    command -v $t >/dev/null || { note "skip: $t not installed (redis-server, redis-tools)"; exit 0; }
done

D=$(mktemp -d "${BENCH_DIR:-/tmp}/chronicle-bridge-bench.XXXXXX")
PID=
cleanup() {
    [[ -n $PID ]] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$D"
}
trap cleanup EXIT
for _ in $(seq 20); do
    PORT=$((20000 + RANDOM % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && continue
    redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$D" \
        --logfile "$D/redis.log" --daemonize no &
    PID=$!
    for _ in $(seq 50); do
        [[ $(redis-cli -p "$PORT" ping 2>/dev/null) == PONG ]] && break 2
        sleep 0.1
    done
    kill "$PID" 2>/dev/null || true
    PID=
done
[[ -n $PID ]] || { note "skip: redis-server did not start"; exit 0; }
R="redis-cli -p $PORT"

# The queue: N records of SIZE bytes.
payload=$(head -c "$SIZE" /dev/zero | tr '\0' 'x')
awk -v n="$N" -v p="$payload" 'BEGIN { for (i = 0; i < n; i++) print p }' | "$B/chronicle-append" "$D/q"
note "queue: $N records of $SIZE bytes; redis-server $(redis-server --version | grep -o 'v=[0-9.]*') on 127.0.0.1:$PORT"

# median and best of the numbers on stdin (rates: best = max)
stats() { sort -g | awk '{ v[NR] = $1 } END { printf "%.0f %.0f\n", v[int((NR + 1) / 2)], v[NR] }'; }

for batch in $BATCHES; do
    rates=()
    for ((r = 0; r < REPS; r++)); do
        $R DEL s >/dev/null
        "$B/chronicle-readers" "$D/q" reset bridge --to-start >/dev/null 2>&1 || true
        t0=$(date +%s%N)
        "$B/chronicle-bridge" --batch "$batch" "$D/q" "redis://127.0.0.1:$PORT/s"
        t1=$(date +%s%N)
        [[ $($R XLEN s) == "$N" ]] || { note "the stream holds $($R XLEN s), not $N"; exit 1; }
        rates+=("$(awk -v n="$N" -v ns=$((t1 - t0)) 'BEGIN { printf "%.0f", n / (ns / 1e9) }')")
    done
    read -r med best < <(printf '%s\n' "${rates[@]}" | stats)
    echo "bridge_redis_b$batch.med $med records/s"
    echo "bridge_redis_b$batch.best $best records/s"
    rates=()
    for ((r = 0; r < REPS; r++)); do
        $R DEL s >/dev/null
        # The same fields as the bridge's entries (data, seq, ts, queue); '*' for the ID.
        rates+=("$(redis-benchmark -p "$PORT" -c 1 -P "$batch" -n "$N" --csv XADD s '*' data "$payload" \
            seq 123456 ts 1796011921635828091 queue 2969700c864ad0ad3499ee46c58fda97 |
            awk -F'"' 'NR == 2 { print int($4) }')")
    done
    read -r bmed bbest < <(printf '%s\n' "${rates[@]}" | stats)
    echo "redis_benchmark_xadd_p$batch.med $bmed records/s"
    echo "redis_benchmark_xadd_p$batch.best $bbest records/s"
    awk -v a="$med" -v b="$bmed" 'BEGIN { printf "bridge_redis_b'"$batch"'.ratio %.2f x\n", a / b }'
done
