#!/usr/bin/env bash
# chronicle — set-up: installs the build dependencies (Debian packages, idempotent),
# builds into build/, then runs the example (pipe lines into a queue, print them back).
#   scripts/setup.sh              install + build + example
#   scripts/setup.sh --no-example install + build
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Needed to build and test.
PACKAGES=(g++ cmake ninja-build pkg-config libcli11-dev nlohmann-json3-dev doctest-dev
          man-db groff bash-completion jq perl tzdata)
# Used by some black-box tests only (shells, tmux, the recipes' servers) and by the
# benchmarks (redis-server for a baseline, gnuplot-nox for bench/run.sh --plot), and gdb for
# the stacks of a hung test (tests/cli/lib.sh dump_hung); those say
# "skip" when a tool is missing, so a package that fails to install does not stop set-up.
# libhiredis-dev (and libnats-dev, for the NATS side to come) build chronicle-bridge, which
# CMake skips, saying so, where they are missing.
OPTIONAL=(tmux zsh fish redis-server redis-tools kcat nats-server gnuplot-nox gdb
          libhiredis-dev libnats-dev)

missing() {
    local p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
    done
}
SUDO=""
[[ $(id -u) -eq 0 ]] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
need=($(missing "${PACKAGES[@]}"))
want=($(missing "${OPTIONAL[@]}"))
if ((${#need[@]} + ${#want[@]})); then
    $SUDO apt-get update -qq
fi
if ((${#need[@]})); then
    echo "setup: installing ${need[*]}" >&2
    $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
for p in "${want[@]}"; do
    echo "setup: installing $p (optional)" >&2
    $SUDO apt-get install -y -qq --no-install-recommends "$p" >/dev/null 2>&1 ||
        echo "setup: could not install $p; the tests that need it will be skipped" >&2
done

# promtool, to check chronicle-readers --prometheus: only the binary, unpacked from the
# Debian package into build/promtool/ (installing the package would start a Prometheus
# server on this machine). The test skips that check when it is missing.
if ! command -v promtool >/dev/null && [[ ! -x build/promtool/usr/bin/promtool ]]; then
    (
        set +e
        tmp=$(mktemp -d)
        cd "$tmp" && apt-get download prometheus >/dev/null 2>&1 &&
            mkdir -p "$OLDPWD/build/promtool" &&
            dpkg-deb -x prometheus_*.deb "$OLDPWD/build/promtool" &&
            find "$OLDPWD/build/promtool" -mindepth 1 -maxdepth 1 ! -name usr -exec rm -rf {} + &&
            find "$OLDPWD/build/promtool/usr" -mindepth 1 -maxdepth 1 ! -name bin -exec rm -rf {} + &&
            find "$OLDPWD/build/promtool/usr/bin" -mindepth 1 ! -name promtool -delete
        rm -rf "$tmp"
    ) || true
    [[ -x build/promtool/usr/bin/promtool ]] ||
        echo "setup: could not unpack promtool (Debian: prometheus); the Prometheus format check will be skipped" >&2
fi

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build

[[ "${1:-}" == "--no-example" ]] && exit 0

# The main job on an example: a pipeline into a queue, and the records back out.
demo=$(mktemp -d /tmp/chronicle-demo.XXXXXX)
trap 'rm -rf "$demo"' EXIT
B=build/tools
echo "== printf 'hello\nbinary-safe\nworld\n' | chronicle-append $demo/q"
printf 'hello\nbinary-safe\nworld\n' | $B/chronicle-append "$demo/q"
echo "== seq 1 100000 | chronicle-append $demo/q"
seq 1 100000 | $B/chronicle-append "$demo/q"
echo "== chronicle-tail --show-seq -n 5 $demo/q"
$B/chronicle-tail --show-seq -n 5 "$demo/q"
echo "== chronicle-tail --reader audit -c 2 $demo/q   (a durable cursor; run twice)"
$B/chronicle-tail --reader audit -c 2 "$demo/q"
$B/chronicle-tail --reader audit -c 2 "$demo/q"
echo "== chronicle-tail $demo/q | md5sum  vs  (printf ...; seq 1 100000) | md5sum"
$B/chronicle-tail "$demo/q" | md5sum
(printf 'hello\nbinary-safe\nworld\n'; seq 1 100000) | md5sum
