# chronicle black-box tests — tiny harness. Each test is a function `t_<name>`; it runs the
# real binaries in a fresh directory ($T) and fails with `fail MESSAGE`.
set -uo pipefail
export LC_ALL=C

BIN=$(cd "${CHRONICLE_BIN:?set CHRONICLE_BIN to the directory holding the chronicle tools}" && pwd)
APPEND=$BIN/chronicle-append
TAIL=$BIN/chronicle-tail
READERS=$BIN/chronicle-readers

passed=0
failed=0
failures=()

# Ends the test (each test runs in its own subshell, under set -e).
fail() {
    echo "    FAIL: $*" >&2
    exit 1
}

# expect_eq WHAT EXPECTED ACTUAL
expect_eq() {
    if [[ "$2" != "$3" ]]; then
        fail "$1: expected [$2], got [$3]"
        return 1
    fi
}

# expect_code EXPECTED COMMAND... — runs COMMAND, checks its exit status; output in $T/out, $T/err
expect_code() {
    local want=$1
    shift
    local got=0
    "$@" >"$T/out" 2>"$T/err" || got=$?
    if [[ $got != "$want" ]]; then
        fail "'$*' exited $got, expected $want; stderr: $(cat "$T/err")"
        return 1
    fi
}

kill_strays() {
    local p cwd
    for p in /proc/[0-9]*; do
        cwd=$(readlink "$p/cwd" 2>/dev/null) || continue
        [[ "$cwd" == "$1" || "$cwd" == "$1"/* ]] && kill -9 "${p#/proc/}" 2>/dev/null
    done
    return 0
}

# A free TCP port on 127.0.0.1 (nothing answers on it now), for tests that start a server.
# Drawn below the kernel's ephemeral range (ip_local_port_range), where the outgoing
# connections of earlier servers and clients hold ports that answer nothing yet cannot be
# bound, and never twice in one test ($T/.ports), since several servers ask in a row.
free_port() {
    local p lo=32768 used=${T:-/tmp}/.ports
    read -r lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
    ((lo > 12000)) || lo=32768
    for _ in $(seq 100); do
        p=$((10000 + RANDOM % (lo - 10000)))
        grep -qx "$p" "$used" 2>/dev/null && continue
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p" >>"$used"
            echo "$p"
            return 0
        fi
    done
    return 1
}

# scaled N MIN — N times CHRONICLE_STRESS_SCALE (scripts/test.sh sets 0.25 in the sanitizer
# stages, where every process runs several times slower), at least MIN: the loop counts of
# kill -9 tests, which the default stage runs in full.
scaled() {
    awk -v n="$1" -v m="$2" -v s="${CHRONICLE_STRESS_SCALE:-1}" \
        'BEGIN { v = int(n * s + 0.5); print (v < m ? m : v) }'
}

# wait_until SECONDS COMMAND... — polls COMMAND every 0.05 s; false if it never succeeds.
# (Locals with names no caller uses: COMMAND may be an eval of the caller's variables.)
wait_until() {
    local _wu_limit=$(($1 * 20)) _wu_i
    shift
    for ((_wu_i = 0; _wu_i < _wu_limit; _wu_i++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    return 1
}

# wait_for 'SHELL CONDITION' [SECONDS] — wait_until over an eval of the condition (in the
# caller's variables), for up to SECONDS (default 30: a sanitizer build on a freshly booted
# 2-vCPU VM starts a tool in seconds, not milliseconds); false if it never holds.
wait_for() { wait_until "${2:-30}" eval "$1"; }

# stop_pids PID... — SIGTERM, up to 5 s each to exit, then SIGKILL. Never waits unbounded.
stop_pids() {
    local p
    for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "$@"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
    done
}

# Queue facts through the tools: the next sequence, a named reader's position, the identity.
head_seq() { $READERS "$1" --json 2>/dev/null | sed -n 's/.*"head_seq":\([0-9]*\).*/\1/p'; }
reader_pos() { $READERS "$1" show "$2" --json | sed -n 's/.*"position":\([0-9]*\).*/\1/p'; }
queue_id() { $BIN/chronicle-queue info "$1" --json | sed -n 's/.*"id":"\([0-9a-f]*\)".*/\1/p'; }

# numbered COUNT — lines "0000000001 record number" .. COUNT: 24 bytes each, so that a 16K
# segment holds about 490 of them (tests that need many segments); the first word is the
# line's number.
numbered() { seq -f '%010g record number' 1 "$1"; }

# gen FIRST COUNT — len32 frames of records FIRST..FIRST+COUNT-1: "<i>:" and 0..300 bytes of
# every value (NUL, CR LF, invalid UTF-8), the length and bytes depending on i.
gen() {
    perl -e '
        binmode STDOUT;
        my ($first, $n) = @ARGV;
        for my $i ($first .. $first + $n - 1) {
            my $len = ($i * 37) % 301;
            my $p = "$i:" . join("", map { chr(($i + $_ * 13) % 256) } 1 .. $len);
            print pack("N", length $p), $p;
        }' "$1" "$2"
}

# dump_hung DIR: what every process working in DIR is doing — for a test that hung. Thread
# stacks through gdb where it is installed, else each thread's kernel wait channel.
dump_hung() {
    local p cwd pid
    for p in /proc/[0-9]*; do
        cwd=$(readlink "$p/cwd" 2>/dev/null) || continue
        [[ "$cwd" == "$1" || "$cwd" == "$1"/* ]] || continue
        pid=${p#/proc/}
        echo "    --- pid $pid ($(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)) state $(awk '/^State/ {print $2}' "$p/status" 2>/dev/null)"
        if command -v gdb >/dev/null && [[ "$(readlink "$p/exe" 2>/dev/null)" == "$BIN"/* ]]; then
            timeout 20 gdb -p "$pid" -batch -nx -ex 'thread apply all bt 12' 2>/dev/null |
                grep -E '^(Thread|#)' | sed 's/^/    /'
        else
            local t
            for t in "$p"/task/*; do
                echo "    thread ${t##*/}: wchan $(cat "$t/wchan" 2>/dev/null) syscall $(cut -d' ' -f1 "$t/syscall" 2>/dev/null)"
            done
        fi
    done >&2
}

# CHRONICLE_TEST_FILTER (an extended regex) picks tests by name; CHRONICLE_TEST_LIMIT
# (seconds, default 300) bounds each: a test that hangs is dumped (dump_hung), killed
# and counted as failed — well inside CTest's 600 s, so the output says which one.
run_tests() {
    local fn limit=${CHRONICLE_TEST_LIMIT:-300}
    for fn in $(declare -F | awk '{print $3}' | grep '^t_' | grep -E -- "${CHRONICLE_TEST_FILTER:-.}"); do
        T=$(mktemp -d /tmp/chronicle-cli.XXXXXX)
        local rc=0 test_pid watchdog
        # In a || list, as the tests have always run: errexit is ignored inside (bash),
        # so a test stops at `fail` or at a command it checks, not at any non-zero status.
        {
            (
                cd "$T" || exit 1
                set -e
                "$fn"
            ) || exit $?
        } &
        test_pid=$!
        # The watchdog acts only while $T.running exists: removed once the test is reaped,
        # so it never touches a finished test (or a pid used again since).
        : >"$T.running"
        (
            sleep "$limit" &
            wait $!
            [[ -e "$T.running" ]] || exit 0
            echo "    HUNG: ${fn#t_} still running after ${limit} s; its processes:" >&2
            dump_hung "$T"
            kill -9 "$test_pid" 2>/dev/null
            kill_strays "$T"
        ) &
        watchdog=$!
        wait "$test_pid" || rc=$?
        rm -f "$T.running"
        pkill -P "$watchdog" sleep 2>/dev/null
        wait "$watchdog" 2>/dev/null
        if ((rc == 0)); then
            passed=$((passed + 1))
            echo "ok   ${fn#t_}"
        else
            failed=$((failed + 1))
            failures+=("${fn#t_}")
            echo "FAIL ${fn#t_}"
        fi
        # Kill anything a test left behind (followers, writers): every process whose
        # working directory is the test's, whatever its command line says.
        kill_strays "$T"
        rm -rf "$T"
    done
    echo "$passed passed, $failed failed"
    ((failed == 0))
}
