#!/usr/bin/env bash
# chronicle — runs one libFuzzer target for a bounded time (the CTest test fuzz_<name>).
#   run_fuzzer.sh BINARY NAME MAX_LEN SOURCE_DIR WORK_DIR
# Seconds: $CHRONICLE_FUZZ_SECONDS, else $CHRONICLE_FUZZ_DEFAULT_SECONDS (set by CMake), else 30.
# Fuzzes a fresh copy of SOURCE_DIR/corpus/NAME (so the tree's corpus never changes) plus
# the reproducers in SOURCE_DIR/regressions/NAME, which run first: a regression that still
# crashes fails the test at once. Crash/hang reproducers land in WORK_DIR/artifacts/NAME/,
# the whole log in WORK_DIR/logs/NAME.log. Exit status: libFuzzer's (0 = nothing found).
set -uo pipefail
bin=$1 name=$2 max_len=$3 src=$4 work=$5
secs=${CHRONICLE_FUZZ_SECONDS:-${CHRONICLE_FUZZ_DEFAULT_SECONDS:-30}}

corpus=$work/corpus/$name
artifacts=$work/artifacts/$name
log=$work/logs/$name.log
rm -rf "$corpus" "$artifacts"
mkdir -p "$corpus" "$artifacts" "$work/logs"
# Scratch space for the targets' queue directories: tmpfs when there is one (creating and
# removing files there is several times faster than on a disk file system).
tmp_base=${CHRONICLE_FUZZ_TMPDIR:-}
if [[ -z $tmp_base ]]; then
    tmp_base=$work
    [[ -d /dev/shm && -w /dev/shm ]] && tmp_base=/dev/shm
fi
tmp=$(mktemp -d "$tmp_base/chronicle-fuzz-$name.XXXXXX") || exit 1
[[ -d $src/corpus/$name ]] && cp -R "$src/corpus/$name/." "$corpus/"
dirs=("$corpus")
if [[ -d $src/regressions/$name ]] && compgen -G "$src/regressions/$name/*" >/dev/null; then
    dirs+=("$src/regressions/$name")
fi
args=(-max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len="$max_len"
      -artifact_prefix="$artifacts/" -print_final_stats=1 -print_funcs=0)
[[ -f $src/dict/$name.dict ]] && args+=(-dict="$src/dict/$name.dict")

# The targets make their scratch directories under TMPDIR: a directory of this run, removed
# afterwards even when a crash skipped the target's own clean-up.
export TMPDIR=$tmp
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
echo "fuzz_$name: ${secs}s, corpus ${dirs[*]}"
"$bin" "${args[@]}" "${dirs[@]}" >"$log" 2>&1
rc=$?
rm -rf "$tmp"
# One line for scripts/fuzz.sh's summary: executions, speed, corpus growth.
result=$work/logs/$name.result
awk -F': ' -v name="fuzz_$name" -v secs="$secs" -v rc="$rc" '
    { gsub(/^ +| +$/, "", $2) }
    /^stat::number_of_executed_units/ {n=$2} /^stat::average_exec_per_sec/ {s=$2}
    /^stat::new_units_added/ {u=$2} /^stat::peak_rss_mb/ {r=$2}
    END {printf "%-18s %s %ss: %s runs (%s/s), %s new inputs, peak RSS %s MB\n",
         name, rc == 0 ? "ok    " : "FAILED", secs, n, s, u, r}' "$log" | tee "$result"
((rc == 0)) && exit 0
echo "fuzz_$name: FAILED (exit $rc); the end of $log:"
grep -v -E '^#[0-9]+\s+(NEW|REDUCE|pulse|INITED|RELOAD)' "$log" | tail -n 120
shopt -s nullglob
found=("$artifacts"/crash-* "$artifacts"/timeout-* "$artifacts"/oom-* "$artifacts"/leak-*)
for f in "${found[@]}"; do
    # A known reproducer that still fails is named as such.
    for r in "$src/regressions/$name"/*; do
        [[ -f $r ]] && cmp -s "$f" "$r" && echo "fuzz_$name: still failing: regressions/$name/${r##*/}"
    done
done
if ((${#found[@]})); then
    echo "fuzz_$name: reproducer(s): ${found[*]}"
    echo "  replay:   $bin FILE"
    echo "  minimise: $bin -minimize_crash=1 -max_total_time=60 -exact_artifact_path=OUT FILE"
    echo "  then keep OUT as $src/regressions/$name/<what-it-is>"
fi
exit "$rc"
