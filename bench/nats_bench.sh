#!/usr/bin/env bash
# chronicle-bridge into NATS JetStream (issue 13, item 7): records/s from a queue into an R1
# stream (one nats-server) and an R3 stream (a 3-node cluster on loopback) through the
# bridge, beside a minimal libnats publisher (bench_nats_pub) doing the same per message
# (async, the same ack window, a Nats-Msg-Id and two headers) in the same run against the
# same servers; and the end-to-end latency append -> JetStream ack -> cursor stored
# (bench_bridge_lat, one record every 2 ms through a following bridge).
#
# Usage: bench/nats_bench.sh        (from the repository, after cmake --build build)
# Environment:
#   BUILD        build directory (default: build)
#   BENCH_DIR    where queues and server storage go (default /tmp; removed at the end)
#   BENCH_N      records (default 200000)
#   BENCH_SIZE   payload bytes (default 100)
#   BENCH_REPS   repetitions (default 3); the median is printed
#   BENCH_BATCH  ack window (--batch) (default 1000)
#   BENCH_LAT_N  latency probes (default 1000)
# Output (stdout): "<name> <value> <unit>" lines; notes on stderr, prefixed '#'. Timings are
# never asserted. Compare within a run: the figures depend on the machine and its load.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BUILD=${BUILD:-build}
B=$BUILD/tools
N=${BENCH_N:-200000}
SIZE=${BENCH_SIZE:-100}
REPS=${BENCH_REPS:-3}
BATCH=${BENCH_BATCH:-1000}
LAT_N=${BENCH_LAT_N:-1000}
note() { echo "# $*" >&2; }

[[ -x $B/chronicle-bridge && -x $BUILD/bench/bench_nats_pub ]] ||
    { note "skip: chronicle-bridge or bench_nats_pub not built (libnats-dev)"; exit 0; }
command -v nats-server >/dev/null || { note "skip: nats-server not installed"; exit 0; }

D=$(mktemp -d "${BENCH_DIR:-/tmp}/chronicle-nats-bench.XXXXXX")
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$D"
}
trap cleanup EXIT
free_port() {
    local p
    for _ in $(seq 100); do
        p=$((20000 + RANDOM % 40000))
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return 0; }
    done
    return 1
}
ready() { for _ in $(seq 100); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; return 1; }

# One server (R1), three in a cluster (R3).
P0=$(free_port)
nats-server -js -sd "$D/js0" -a 127.0.0.1 -p "$P0" >"$D/n0.log" 2>&1 &
PIDS+=($!)
ready "$D/n0.log" 'Server is ready' || { note "skip: nats-server did not start"; exit 0; }
CP=() RP=()
for i in 1 2 3; do CP[i]=$(free_port); RP[i]=$(free_port); done
ROUTES="nats://127.0.0.1:${RP[1]},nats://127.0.0.1:${RP[2]},nats://127.0.0.1:${RP[3]}"
for i in 1 2 3; do
    nats-server -js -sd "$D/js$i" -a 127.0.0.1 -p "${CP[i]}" -n "n$i" --cluster_name c \
        --cluster "nats://127.0.0.1:${RP[i]}" --routes "$ROUTES" >"$D/n$i.log" 2>&1 &
    PIDS+=($!)
done
for i in 1 2 3; do ready "$D/n$i.log" 'Server is ready' || { note "skip: cluster did not start"; exit 0; }; done
for _ in $(seq 100); do grep -q 'metadata leader' "$D"/n[123].log && break; sleep 0.1; done
R1="127.0.0.1:$P0"
R3="127.0.0.1:${CP[1]},127.0.0.1:${CP[2]},127.0.0.1:${CP[3]}"
note "nats-server $(nats-server --version | grep -o 'v[0-9][0-9.]*'); $N records of $SIZE bytes, window $BATCH"

payload=$(head -c "$SIZE" /dev/zero | tr '\0' 'x')
awk -v n="$N" -v p="$payload" 'BEGIN { for (i = 0; i < n; i++) print p }' | "$B/chronicle-append" "$D/q"
median() { sort -g | awk '{ v[NR] = $1 } END { printf "%.0f\n", v[int((NR + 1) / 2)] }'; }
servers() { echo "$1" | sed 's|^|nats://|; s|,|,nats://|g'; }

for r in 1 3; do
    hosts=$R1
    ((r == 3)) && hosts=$R3
    bridge=() base=()
    for ((k = 0; k < REPS; k++)); do
        # A fresh stream each time (subject b<r>.<k>, stream B<r>_<k>), and one for the baseline.
        "$B/chronicle-readers" "$D/q" reset bridge --to-start >/dev/null 2>&1 || true
        t0=$(date +%s%N)
        "$B/chronicle-bridge" --batch "$BATCH" --create-stream "B${r}_$k" --replicas "$r" \
            "$D/q" "nats://$hosts/b$r.$k"
        t1=$(date +%s%N)
        bridge+=("$(awk -v n="$N" -v ns=$((t1 - t0)) 'BEGIN { printf "%.0f", n / (ns / 1e9) }')")
        base+=("$("$BUILD/bench/bench_nats_pub" "$(servers "$hosts")" "p$r.$k" "$N" "$SIZE" \
            "$BATCH" "P${r}_$k" "$r")")
    done
    b=$(printf '%s\n' "${bridge[@]}" | median)
    p=$(printf '%s\n' "${base[@]}" | median)
    echo "bridge_nats_r$r $b records/s"
    echo "nats_pub_r$r $p records/s"
    echo "bridge_nats_r$r.ratio $(awk -v a="$b" -v b="$p" 'BEGIN { printf "%.2f", a / b }') x"
    # Latency: a following bridge, one record every 2 ms.
    rm -rf "$D/lat"
    echo start | "$B/chronicle-append" "$D/lat"
    "$B/chronicle-bridge" -f --create-stream "L$r" --replicas "$r" "$D/lat" "nats://$hosts/l$r" &
    lat_pid=$!
    sleep 1
    read -r p50 p99 max < <("$BUILD/bench/bench_bridge_lat" "$D/lat" bridge "$LAT_N" 2000)
    kill "$lat_pid"
    wait "$lat_pid" 2>/dev/null || true
    echo "e2e_append_to_ack_r$r.p50 $p50 us"
    echo "e2e_append_to_ack_r$r.p99 $p99 us"
    echo "e2e_append_to_ack_r$r.max $max us"
done
