#!/usr/bin/env bash
# chronicle — fuzzing: builds the libFuzzer targets of tests/fuzz/ with clang, ASan and
# UBSan in build-fuzz/, and runs each for SECONDS through CTest (tests/fuzz/README.md).
#   scripts/fuzz.sh                 every target, 30 s each
#   scripts/fuzz.sh 3600            a long campaign: an hour each
#   scripts/fuzz.sh 60 segment efd  only these targets
# Each target starts from a copy of tests/fuzz/corpus/<target>/ plus the reproducers in
# tests/fuzz/regressions/<target>/. Exit status: 0 when nothing was found, non-zero when a
# target crashed, hung (10 s per input) or failed an oracle; its reproducer is then in
# build-fuzz/fuzz-work/artifacts/<target>/. When clang or its libFuzzer runtime is missing
# and cannot be installed, prints "fuzz: skip: <reason>" and exits 0.
# Environment: CHRONICLE_FUZZ_JOBS (targets run at once, default 1), CMAKE_BUILD_PARALLEL_LEVEL
# (build jobs), CHRONICLE_FUZZ_TMPDIR (scratch space; default /dev/shm when writable).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

secs=30
if [[ $# -gt 0 && $1 =~ ^[0-9]+$ ]]; then
    secs=$1
    shift
fi
targets=("$@")
build=build-fuzz

skip() {
    echo "fuzz: skip: $*"
    exit 0
}

SUDO=""
[[ $(id -u) -eq 0 ]] || SUDO="sudo"
install() {  # best effort
    export DEBIAN_FRONTEND=noninteractive
    command -v apt-get >/dev/null || return 1
    [[ -z $SUDO ]] || command -v sudo >/dev/null || return 1
    echo "fuzz: installing $*" >&2
    $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1 ||
        { $SUDO apt-get update -qq >/dev/null 2>&1 &&
          $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1; }
}

# A libFuzzer program with the sanitizers links and runs: the toolchain is usable.
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
libfuzzer_works() {
    printf 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) {\n%s\n' \
        '  return 0; }' >"$probe/p.cc"
    clang++ -fsanitize=fuzzer,address,undefined "$probe/p.cc" -o "$probe/p" >/dev/null 2>&1 &&
        "$probe/p" -runs=1 >/dev/null 2>&1
}
if ! command -v clang++ >/dev/null; then
    install clang || skip "clang is not installed and could not be installed (apt-get install clang)"
fi
major=$(clang++ -dumpversion | cut -d. -f1)
if ! libfuzzer_works; then
    # Debian ships libFuzzer's runtime (libclang_rt.fuzzer) in libclang-rt-<major>-dev.
    install "libclang-rt-$major-dev" "llvm-$major" ||
        skip "libFuzzer's runtime is missing and could not be installed (libclang-rt-$major-dev)"
    libfuzzer_works || skip "clang++ $major cannot build a libFuzzer program with ASan+UBSan"
fi
# Symbolized stacks in the reports (optional).
command -v llvm-symbolizer >/dev/null || install "llvm-$major" || true

gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
echo "== fuzz: build ($build, clang $major, ASan+UBSan)"
CC=clang CXX=clang++ cmake -S . -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g" -DCHRONICLE_FUZZ=ON \
    -DCHRONICLE_SANITIZE=address,undefined -DCHRONICLE_BUILD_TESTS=OFF \
    -DCHRONICLE_BUILD_BENCH=OFF -DCHRONICLE_FUZZ_SECONDS="$secs" >/dev/null
nice cmake --build "$build" --target chronicle_fuzzers

select=()
if ((${#targets[@]})); then
    select=(-R "^fuzz_($(IFS='|'; echo "${targets[*]}"))\$")
fi
echo "== fuzz: ${secs}s per target"
rm -f "$build"/fuzz-work/logs/*.result
export CHRONICLE_FUZZ_SECONDS=$secs
rc=0
ctest --test-dir "$build" --output-on-failure -j "${CHRONICLE_FUZZ_JOBS:-1}" \
    --timeout $((secs * 2 + 600)) "${select[@]}" || rc=$?
cat "$build"/fuzz-work/logs/*.result 2>/dev/null || true
exit "$rc"
