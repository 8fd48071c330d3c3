#!/usr/bin/env bash
# Renders the figures of a bench/run.sh run: DIR/figures.json and DIR/samples/ (written by
# run.sh --out DIR) into
#   DIR/latency-cdf.svg  CDF of the latency samples (wake and cli sections), log-x
#   DIR/throughput.svg   bar chart of the append section's rates, seq lines and 100-byte log
#                        lines (+ Redis XADD, lib)
#   DIR/summary.md       the machine line and a table of the key figures and ratios
# Pictures need gnuplot (Debian package gnuplot-nox); without it a note says so and only
# summary.md is written. A picture whose figures the run did not measure is skipped.
#
# Usage: bench/plot.sh [--readme FILE] [DIR]     (DIR default: docs/bench)
#   --readme FILE  also put summary.md between the lines "<!-- bench-summary:begin -->"
#                  and "<!-- bench-summary:end -->" of FILE (README.md)
# bench/run.sh --plot calls it.
set -euo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
DIR=""
README=""
while (($#)); do
    case $1 in
        --readme) [[ $# -ge 2 ]] || { echo "# --readme needs a file" >&2; exit 2; }; README=$2; shift ;;
        -h | --help) sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}"; exit 0 ;;
        -*) echo "# unknown option '$1' (bench/plot.sh --help)" >&2; exit 2 ;;
        *) DIR=$1 ;;
    esac
    shift
done
DIR=${DIR:-$ROOT/docs/bench}
J=$DIR/figures.json
note() { echo "# $*" >&2; }
[[ -f "$J" ]] || { note "plot: no $J (bench/run.sh --out $DIR writes it)"; exit 2; }
command -v jq >/dev/null || { note "plot: missing jq (Debian package jq)"; exit 2; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/chronicle-plot.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

declare -A V=()
while IFS=$'\t' read -r k v; do V[$k]=$v; done < <(jq -r '.figures[] | select(.value != null) | "\(.name)\t\(.value)"' "$J")
has() { [[ -n "${V[$1]:-}" ]]; }
# fmt KIND VALUE: rate (M/s or k/s), us (microseconds), x (ratio), g (3 digits), int
fmt() {
    awk -v k="$1" -v v="$2" 'BEGIN {
        if (k == "rate") { if (v >= 1e6) printf "%.3g M/s", v / 1e6; else printf "%.3g k/s", v / 1e3 }
        else if (k == "us") { if (v < 10) printf "%.1f µs", v; else printf "%.0f µs", v }
        else if (k == "x") printf "%.2f", v
        else if (k == "g") printf "%.3g", v
        else printf "%d", v
    }'
}
jqr() { jq -r "$1" "$J"; }
SETTINGS=$(jqr '.run.settings | "\(.BENCH_REPS) rep(s), \(.BENCH_LINES) lines\(if .BENCH_LOG_LINES then ", \(.BENCH_LOG_LINES) 100-byte log lines" else "" end), \(.BENCH_LAT_N) latency samples per series"')
MACHINE=$(jqr '.machine as $m | .run as $r |
    "\($r.date_utc | sub("T.*"; "")), \($m.cpus) vCPU \($m.cpu_model), \($m.ram_gib) GiB RAM, Linux \($m.kernel) (\($m.os)\(if ($m.virtualization // "") != "" and $m.virtualization != "none" then ", " + $m.virtualization else "" end)), data on \($m.bench_dir_fs); commit \($r.git_commit[0:10])\(if $r.git_dirty then " (modified)" else "" end), \($r.build_type), \($r.compiler | sub(" \\(.*\\)"; ""))"')
LOAD=$(jqr '.machine.loadavg_start[0] // 0')
CPUS=$(jqr '.machine.cpus // 1')
BUSY=$(awk -v l="$LOAD" -v c="$CPUS" 'BEGIN { print (l >= 0.5 * c) ? 1 : 0 }')

# ------------------------------------------------------------------ pictures
GNUPLOT=1
if ! command -v gnuplot >/dev/null; then
    GNUPLOT=0
    note "skip: gnuplot not installed (Debian package gnuplot-nox): no pictures, only $DIR/summary.md"
fi

# Latency CDF: one series per sample file, in this order; the raw eventfd floor of the cli
# section (same run as its chains), else the wake section's.
cdf() {
    local files="" colors="" key title color f n=0
    local series=(
        "cli.chronicle_append_tail_f|chronicle-append → chronicle-tail -f (line)|#1f77b4"
        "cli.cat_append_tail_f|cat >> f; tail -f f (line)|#ff7f0e"
        "cli.fifo|FIFO (line)|#2ca02c"
        "wake.lib_parked_reader|Reader::wait() parked reader woken (library)|#9467bd"
        "wake.raw_epoll_follower|raw eventfd in epoll + pidfd, timeout (a follower's floor)|#8c564b"
        "cli.raw_eventfd|raw eventfd wake (floor)|#7f7f7f"
        "wake.raw_eventfd|raw eventfd wake (floor)|#7f7f7f"
        "cli.raw_eventfd_other_cpu|raw eventfd wake onto another, idle CPU (pinned)|#bcbd22"
    )
    for s in "${series[@]}"; do
        IFS='|' read -r key title color <<<"$s"
        [[ "$key" == wake.raw_eventfd && -s "$DIR/samples/latency_us.cli.raw_eventfd.txt" ]] && continue
        f=$DIR/samples/latency_us.$key.txt
        [[ -s "$f" ]] || continue
        # Sorted samples -> "<us> <fraction>" points (every k-th, all of the top 2 %), under
        # a title line with p50 and p99 (the rank rule of bench_common.h percentile()).
        sort -g "$f" | awk -v t="$title" '
            { a[NR] = $1 }
            END {
                n = NR
                p50 = a[int(0.5 * (n - 1) + 0.5) + 1]; p99 = a[int(0.99 * (n - 1) + 0.5) + 1]
                printf "\"%s: p50 %s, p99 %s µs\"\n", t, p50 < 10 ? sprintf("%.1f", p50) : sprintf("%.0f", p50), p99 < 10 ? sprintf("%.1f", p99) : sprintf("%.0f", p99)
                k = int(n / 400); if (k < 1) k = 1
                for (i = 1; i <= n; i++)
                    if (i == 1 || i == n || i % k == 0 || i / n >= 0.98) printf "%.3f %.5f\n", a[i], i / n
            }' >"$TMP/cdf.$key.dat"
        files+="$TMP/cdf.$key.dat "
        colors+="$color "
        n=$((n + 1))
    done
    if ((n == 0)); then
        note "plot: no latency samples in $DIR/samples (sections wake, cli): latency-cdf.svg not written"
        return 0
    fi
    local t
    t="Latency CDF, $(jqr '.run.settings.BENCH_LAT_N') samples per series paced at 1 ms ($(jqr '.run.date_utc | sub("T.*"; "")'))"
    gnuplot -e "files='${files% }'; colors='${colors% }'; outfile='$DIR/latency-cdf.svg'; titletext='$t'" \
        "$HERE/latency-cdf.gp"
    note "plot: $DIR/latency-cdf.svg ($n series)"
}

throughput() {
    local rows=(
        "append.seq_pipe.chronicle.lines_per_s.med@seq | chronicle-append Q@0x1f77b4@0"
        "append.seq_pipe.cat.lines_per_s.med@seq | cat > file@0x8c8c8c@0"
        "append.seq_pipe.floor_lines2mmap.lines_per_s.med@seq | lines2mmap (mmap floor)@0xc7c7c7@0"
        "append.from_file.chronicle.lines_per_s.med@chronicle-append Q < file@0x1f77b4@1"
        "append.from_file.cat_pipe.lines_per_s.med@cat file | cat > file2@0x8c8c8c@1"
        "append.from_file.cat.lines_per_s.med@cat file > file2 (kernel copy)@0xa8a8a8@1"
        "append.from_file.dd.lines_per_s.med@dd bs=1M (one process, no framing)@0xb5b5b5@1"
        "append.from_file.floor_lines2mmap.lines_per_s.med@lines2mmap < file (mmap floor)@0xc7c7c7@1"
        "append.log100_pipe.chronicle.lines_per_s.med@cat log | chronicle-append Q@0x1f77b4@2"
        "append.log100_pipe.cat.lines_per_s.med@cat log | cat > file@0x8c8c8c@2"
        "append.log100_file.chronicle.lines_per_s.med@chronicle-append Q < log@0x1f77b4@3"
        "append.log100_file.cat_pipe.lines_per_s.med@cat log | cat > file2@0x8c8c8c@3"
        "append.log100_file.cat.lines_per_s.med@cat log > file2 (kernel copy)@0xa8a8a8@3"
        "append.log100_file.dd.lines_per_s.med@dd bs=1M (one process, no framing)@0xb5b5b5@3"
        "append.redis_xadd_p64.records_per_s.med@Redis XADD, 1 client, pipelined 64@0xd62728@4"
        "lib.append64.single.records_per_s.med@library append(), 64 B records@0x1f77b4@5"
        "lib.append64.batch64.records_per_s.med@library append(), batches of 64@0x1f77b4@5"
        "lib.append64.memcpy_floor.records_per_s.med@memcpy into a mapping (floor)@0xc7c7c7@5"
    )
    local r key label color group y=-1 last=-1 max=0 n=0
    : >"$TMP/tp.dat"
    for r in "${rows[@]}"; do
        IFS="@" read -r key label color group <<<"$r"
        has "$key" || continue
        # A gap between groups (seq pipe, seq file, log pipe, log file, Redis, library).
        if ((last >= 0 && group != last)); then y=$((y + 2)); else y=$((y + 1)); fi
        last=$group
        printf '%d %s %d "%s"\n' "$y" "${V[$key]}" "$((color))" "$label" >>"$TMP/tp.dat"
        max=$(awk -v a="$max" -v b="${V[$key]}" 'BEGIN { print (b > a) ? b : a }')
        n=$((n + 1))
    done
    if ((n == 0)); then
        note "plot: no append figures in $J (section append): throughput.svg not written"
        return 0
    fi
    local t xmax
    # (short: the title is centred over the bars and cut beyond ~85 characters)
    t="Appending lines: $(jqr '.run.settings | if .BENCH_LOG_LINES then "\(.BENCH_LINES) seq, \(.BENCH_LOG_LINES) log (100 B)" else "\(.BENCH_LINES) lines" end + ", median of \(.BENCH_REPS) rep(s)"') ($(jqr '.run.date_utc | sub("T.*"; "")'))"
    xmax=$(awk -v m="$max" 'BEGIN { printf "%.6g", m / 1e6 * 1.22 }')
    gnuplot -e "datafile='$TMP/tp.dat'; outfile='$DIR/throughput.svg'; titletext='$t'; xmax=$xmax; ymax=$y; height=$((140 + 34 * (y + 1)))" \
        "$HERE/throughput.gp"
    note "plot: $DIR/throughput.svg ($n bars)"
}

if ((GNUPLOT)); then
    cdf
    throughput
fi

# ------------------------------------------------------------------ summary.md
# Table rows only for what the run measured.
row() {
    local a out=()
    for a in "$@"; do out+=("${a//|/\\|}"); done
    printf "| %s | %s | %s | %s |\n" "${out[@]}"
}
ns_us() { awk -v n="$1" 'BEGIN { print n / 1000 }'; }
pq() { # p50 / p99 of a latency figure prefix
    printf '%s / %s' "$(fmt us "${V[${1}_p50_us]}")" "$(fmt us "${V[${1}_p99_us]}")"
}
{
    echo "Measured $MACHINE."
    if ((BUSY)); then
        echo "A shared, busy machine: load average $LOAD on $CPUS CPUs when the run started, so the figures are noisy (p99s most of all)."
    fi
    echo "Run: \`$(jqr .run.command)\` ($SETTINGS); every baseline ran in the same run. All figures: \`$(realpath -m --relative-to="$ROOT" "$DIR")/figures.json\`."
    echo
    row "what" "chronicle" "baseline, same run" "ratio"
    row "---" "---" "---" "---"
    # ingest_row KIND LABEL CAT_LABEL [CAT_PIPE_LABEL]: the append section's row for
    # seq_pipe, from_file, log100_pipe or log100_file. With CAT_PIPE_LABEL (the file inputs)
    # the baseline is KIND.cat_pipe (`| cat > file`, the target) and KIND.cat is the kernel
    # copy `cat file > file2`, the upper bound; else KIND.cat is `| cat > file`.
    ingest_row() {
        local k=append.$1 b r
        has "$k.chronicle.lines_per_s.med" || return 0
        if [[ -n "${4:-}" ]] && has "$k.cat_pipe.lines_per_s.med"; then
            b="$4 $(fmt rate "${V[$k.cat_pipe.lines_per_s.med]}")"
            r="cat time / chronicle time $(fmt x "${V[$k.cat_pipe_over_chronicle_time.ratio]:-0}")"
            if has "$k.cat.lines_per_s.med"; then
                b+="; upper bound $3 (kernel copy) $(fmt rate "${V[$k.cat.lines_per_s.med]}")"
                r+="; kernel copy time / chronicle time $(fmt x "${V[$k.cat_over_chronicle_time.ratio]:-0}")"
            fi
        else
            b="$3 $(fmt rate "${V[$k.cat.lines_per_s.med]:-0}")"
            r="cat time / chronicle time $(fmt x "${V[$k.cat_over_chronicle_time.ratio]:-0}")"
        fi
        if has "$k.dd.lines_per_s.med"; then
            b+="; one process, \`dd bs=1M\` (the same two copies, no framing) $(fmt rate "${V[$k.dd.lines_per_s.med]}")"
            r+="; dd time / chronicle time $(fmt x "${V[$k.dd_over_chronicle_time.ratio]:-0}")"
        fi
        if has "$k.floor_lines2mmap.lines_per_s.med"; then
            b+="; mmap floor $(fmt rate "${V[$k.floor_lines2mmap.lines_per_s.med]}")"
            r+="; of the floor $(fmt x "${V[$k.chronicle_over_floor.ratio]:-0}")"
        fi
        row "$2" "$(fmt rate "${V[$k.chronicle.lines_per_s.med]}")" "$b" "$r"
    }
    ingest_row seq_pipe "\`seq 1 N | chronicle-append q\` (lines/s)" "\`| cat > file\`"
    ingest_row from_file "\`chronicle-append q < file\` (lines/s)" "\`cat file > file2\`" "\`cat file | cat > file2\`"
    ingest_row log100_pipe "100-byte log lines: \`cat log | chronicle-append q\` (lines/s)" "\`cat log | cat > file\`"
    ingest_row log100_file "100-byte log lines: \`chronicle-append q < log\` (lines/s)" "\`cat log > file2\`" "\`cat log | cat > file2\`"
    if has append.seq.bytes_per_record.chronicle || has append.log100.bytes_per_record.chronicle; then
        # bpr KIND FIELD: the figure, 3 digits, or "–" when the run lacks it
        bpr() { if has "append.$1.bytes_per_record.$2"; then fmt g "${V[append.$1.bytes_per_record.$2]}"; else echo "–"; fi; }
        bpr_x() {
            if has "append.$1.bytes_per_record.chronicle" && has "append.$1.bytes_per_record.cat"; then
                fmt x "$(awk -v a="${V[append.$1.bytes_per_record.chronicle]}" -v b="${V[append.$1.bytes_per_record.cat]}" 'BEGIN { if (b > 0) print a / b }')"
            else echo "–"; fi
        }
        row "disk bytes per record, \`seq\` lines / 100-byte log lines" \
            "$(bpr seq chronicle) / $(bpr log100 chronicle) B (in the segment files)" \
            "\`cat\`'s file: $(bpr seq cat) / $(bpr log100 cat) B" \
            "$(bpr_x seq) / $(bpr_x log100) × cat"
    fi
    if has append.redis_xadd_p64.records_per_s.med; then
        row "records/s from one producer" "$(fmt rate "${V[append.seq_pipe.chronicle.lines_per_s.med]:-0}") (from a pipe)" \
            "Redis \`XADD\`, pipelined 64: $(fmt rate "${V[append.redis_xadd_p64.records_per_s.med]}")" \
            "$(fmt x "${V[append.seq_pipe.chronicle_over_redis_xadd.ratio]:-0}") × Redis"
    fi
    if has lib.append64.single.records_per_s.med; then
        row "library \`append()\`, 64 B records (records/s)" \
            "$(fmt rate "${V[lib.append64.single.records_per_s.med]}") single, $(fmt rate "${V[lib.append64.batch64.records_per_s.med]:-0}") in batches of 64" \
            "memcpy $(fmt rate "${V[lib.append64.memcpy_floor.records_per_s.med]:-0}")" \
            "$(fmt x "${V[lib.append64.single_vs_memcpy.ratio]:-0}") / $(fmt x "${V[lib.append64.batch64_vs_memcpy.ratio]:-0}") of memcpy"
    fi
    if has cli.chronicle_append_tail_f.line_latency_p50_us; then
        row "line latency \`chronicle-append\` → \`chronicle-tail -f\`, p50 / p99" "$(pq cli.chronicle_append_tail_f.line_latency)" \
            "\`cat >> f\` + \`tail -f f\` $(pq cli.cat_append_tail_f.line_latency); FIFO $(pq cli.fifo.line_latency)" \
            "p50 $(fmt x "${V[cli.chronicle_vs_tail_f_p50.ratio]:-0}") × tail -f"
        if has cli.chain_floor_2fifo_1eventfd_p50_us; then
            row "the same line's floor: its two pipe hops (FIFO) and one eventfd wake-up, p50" \
                "$(fmt us "${V[cli.chain_floor_2fifo_1eventfd_p50_us]}")" \
                "3 raw eventfd wake-ups $(fmt us "$(awk -v e="${V[cli.raw_eventfd.oneway_p50_us]:-0}" 'BEGIN{print 3*e}')")" \
                "chronicle $(fmt x "${V[cli.chronicle_vs_chain_floor_p50.ratio]:-0}"), tail -f $(fmt x "${V[cli.tail_f_vs_chain_floor_p50.ratio]:-0}") × floor; chronicle $(fmt x "${V[cli.chronicle_vs_3_raw_eventfd_p50.ratio]:-0}") × 3 eventfd"
        fi
        if has cli.chain_floor_1_cross_2_same_cpu_hops_p50_us; then
            row "the same floor with the one hop per line that wakes a process on the other, idle vCPU (perf sched): 1 pinned eventfd wake-up across CPUs + 2 on one CPU, p50" \
                "$(fmt us "${V[cli.chain_floor_1_cross_2_same_cpu_hops_p50_us]}")" \
                "one wake-up across CPUs $(pq cli.raw_eventfd_other_cpu.oneway); on one CPU $(pq cli.raw_eventfd_same_cpu.oneway)" \
                "chronicle $(fmt x "${V[cli.chronicle_vs_cross_cpu_chain_floor_p50.ratio]:-0}"), tail -f $(fmt x "${V[cli.tail_f_vs_cross_cpu_chain_floor_p50.ratio]:-0}") × that floor"
        fi
    fi
    if has wake.lib_parked_reader.oneway_p50_us; then
        row "wake-up of a reader parked in \`Reader::wait()\`, p50 / p99" "$(pq wake.lib_parked_reader.oneway)" \
            "raw eventfd $(pq wake.raw_eventfd.oneway)" "p50 $(fmt x "${V[wake.lib_vs_raw_eventfd_p50.ratio]:-0}") × eventfd"
        if has wake.raw_epoll_follower.oneway_p50_us; then
            row "the same wake-up's floor for a reader that also watches its writer (epoll, eventfd + pidfd, timeout), p50 / p99" \
                "$(pq wake.lib_parked_reader.oneway)" "$(pq wake.raw_epoll_follower.oneway)" \
                "p50 $(fmt x "${V[wake.lib_vs_raw_epoll_follower_p50.ratio]:-0}") × that floor"
        fi
    fi
    for fp in followers followers_procs; do
        has "$fp.f64.append_stream_p99_ns" || continue
        what="threads of one process"
        [[ $fp == followers_procs ]] && what="one process each"
        base="no followers $(fmt us "$(ns_us "${V[$fp.f64.base0.append_stream_p99_ns]:-0}")")"
        ratio="$(fmt x "${V[$fp.f64.append_stream_p99_vs_base0.ratio]:-0}") × none"
        if has "$fp.f64.wake_other_cpu_stream_p99_ns"; then
            base+="; one wake-up of a sleeping thread, same ticks: on another (idle) CPU $(fmt us "$(ns_us "${V[$fp.f64.wake_other_cpu_stream_p99_ns]}")"), on its own $(fmt us "$(ns_us "${V[$fp.f64.wake_same_cpu_stream_p99_ns]:-0}")")"
            ratio+="; $(fmt x "${V[$fp.f64.append_stream_p99_vs_wake_other_cpu.ratio]:-0}") × a wake-up on another CPU"
        fi
        row "append p99 while 64 parked followers ($what) follow, appends every 1 ms" \
            "$(fmt us "$(ns_us "${V[$fp.f64.append_stream_p99_ns]}")")" "$base" "$ratio"
        if has "$fp.f64.fast.append_stream_p99_ns"; then
            row "the same, appends every 20 µs (while the notifier thread still wakes followers)" \
                "$(fmt us "$(ns_us "${V[$fp.f64.fast.append_stream_p99_ns]}")")" \
                "no followers $(fmt us "$(ns_us "${V[$fp.f64.fast.base0.append_stream_p99_ns]:-0}")")" \
                "$(fmt x "${V[$fp.f64.fast.append_stream_p99_vs_base0.ratio]:-0}") × none"
        fi
    done
    idle=$(jqr '[.figures[] | select(.name | test("^wake[.]tail_f_parked_[0-9]+s[.]")) | .name] | first // empty')
    if [[ -n "$idle" ]]; then
        secs=$(sed 's/.*parked_\([0-9]*\)s.*/\1/' <<<"$idle")
        row "CPU of an idle \`chronicle-tail -f\` over $secs s" \
            "${V[wake.tail_f_parked_${secs}s.cpu_ticks]:-?} ticks, ${V[wake.tail_f_parked_${secs}s.context_switches]:-?} context switches" "" ""
    fi
} >"$DIR/summary.md"
note "plot: $DIR/summary.md"

if [[ -n "$README" ]]; then
    grep -q '^<!-- bench-summary:begin -->$' "$README" && grep -q '^<!-- bench-summary:end -->$' "$README" ||
        { note "plot: $README has no bench-summary:begin/end lines; not changed"; exit 1; }
    awk -v s="$DIR/summary.md" '
        /^<!-- bench-summary:begin -->$/ { print; print ""; while ((getline l < s) > 0) print l; print ""; skip = 1; next }
        /^<!-- bench-summary:end -->$/ { skip = 0 }
        !skip' "$README" >"$TMP/readme" && cat "$TMP/readme" >"$README"
    note "plot: $README updated between the bench-summary lines"
fi
