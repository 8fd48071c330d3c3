#!/usr/bin/env bash
# chronicle — set-up: installs the build dependencies (Debian packages, idempotent),
# builds into build/, then runs the example (pipe lines into a queue, print them back).
#   scripts/setup.sh              install + build + example
#   scripts/setup.sh --no-example install + build
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PACKAGES=(g++ cmake ninja-build pkg-config libcli11-dev nlohmann-json3-dev doctest-dev
          tmux man-db groff bash-completion zsh fish jq perl
          redis-server redis-tools kcat nats-server)

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}" >&2
    SUDO=""
    [[ $(id -u) -eq 0 ]] || SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
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
