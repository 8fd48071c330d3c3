#!/usr/bin/env bash
# chronicle — the whole test suite, through CTest:
#   1. AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/), all but the tests of
#      the documentation and the installed tree
#   2. ThreadSanitizer on the multi-threaded tests (build-tsan/)
#   3. the portable (sleep-based) notifier instead of eventfd/inotify (build-portable/),
#      all but the documentation, installation and bridge tests
#   4. the libFuzzer targets, CHRONICLE_FUZZ_SECONDS (default 20) each (build-fuzz/,
#      scripts/fuzz.sh; skipped with a note when clang's libFuzzer cannot be had)
#   5. the normal build (build/) — last, so that its CTest summary closes the output
# Pass --quick to run only the normal build.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup.sh --no-example

suite() {  # suite NAME BUILD_DIR CTEST_ARGS -- CMAKE_ARGS...
    local name=$1 dir=$2 ctest_args=$3
    shift 4
    echo "== test suite: $name ($dir)"
    cmake -S . -B "$dir" -G Ninja "$@" >/dev/null
    cmake --build "$dir"
    # One at a time: -j2 saved little (the builds dominate a cold run) and loaded the timing
    # of tests that check a documented delay.
    ctest --test-dir "$dir" --output-on-failure $ctest_args
}

if [[ "${1:-}" != "--quick" ]]; then
    # Sanitizer runs first, the plain build last: its CTest summary closes the output.
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
    export CHRONICLE_STRESS_SCALE=0.25
    # The damage matrix (tests/cli/cli_damage.sh) runs whole in the default stage. Under the
    # sanitizers it runs every damaged file against the tools that parse them — the writer,
    # a named reader, a follower, the readers' JSON — and under the portable notifier
    # against the writer and the followers: on a freshly booted VM the whole matrix took
    # 21 min under ASan, and the suite must stay inside CI's 90.
    export CHRONICLE_DAMAGE_ONLY='/(append|tail-reader|tail-f|readers-json)$'
    # The documentation and installation tests check files (man pages, completions, the
    # installed tree) that no sanitizer or notifier changes: they run in the default stage.
    # The portable stage leaves out the bridges too: they wait through the same
    # Reader::wait as chronicle-tail -f, which cli_follow and cli_delivery cover there, and
    # were a fifth of its time. CI's 90 minutes were nearly used up (5218 s).
    local_only="cli_docs|cli_install"
    suite "ASan+UBSan" build-asan "-E $local_only" -- -DCMAKE_BUILD_TYPE=Debug \
        -DCHRONICLE_SANITIZE=address,undefined -DCHRONICLE_BUILD_BENCH=OFF
    export TSAN_OPTIONS=halt_on_error=1
    suite "TSan" build-tsan "-R stress_test|writer_test|reader_test|notifier_test|retention_test|producers_test" -- -DCMAKE_BUILD_TYPE=Debug \
        -DCHRONICLE_SANITIZE=thread -DCHRONICLE_BUILD_BENCH=OFF
    unset CHRONICLE_STRESS_SCALE
    CHRONICLE_DAMAGE_ONLY='/(append|tail-f|tail-fu)$'
    suite "portable notifier" build-portable "-E $local_only|cli_bridge_nats|cli_bridge_redis" -- -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DCHRONICLE_PORTABLE_NOTIFIER=ON -DCHRONICLE_BUILD_BENCH=OFF -DCHRONICLE_LTO=OFF
    echo "== test suite: fuzzing (build-fuzz)"
    scripts/fuzz.sh "${CHRONICLE_FUZZ_SECONDS:-20}"
    unset CHRONICLE_DAMAGE_ONLY
fi
suite "default" build "" -- -DCMAKE_BUILD_TYPE=RelWithDebInfo
