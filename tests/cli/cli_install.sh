#!/usr/bin/env bash
# Black-box test of `cmake --install`: installs the build tree into a temporary prefix and
# uses it the way a user does — the installed tools, a CMake project that calls
# find_package(chronicle), a compile with `pkg-config --cflags --libs chronicle`, `man`, and
# the completion loaders of bash, zsh and fish.
#
# The build directory is $CHRONICLE_BUILD_DIR, or else the parent of $CHRONICLE_BIN.
# Files whose sources do not exist (yet) are skipped with a note; a source that exists
# but was not installed where its shell looks is a failure.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=$(cd "${CHRONICLE_BUILD_DIR:-$BIN/..}" && pwd)
[[ -f $BUILD/CMakeCache.txt ]] || {
    echo "cli_install: $BUILD is not a CMake build directory (set CHRONICLE_BUILD_DIR)" >&2
    exit 1
}
cache() { sed -n "s/^$1:[A-Z]*=//p" "$BUILD/CMakeCache.txt"; }
CXX=$(cache CMAKE_CXX_COMPILER)
CXX=${CXX:-c++}
VERSION=$(sed -n 's/^project(chronicle VERSION \([0-9.]*\).*/\1/p' "$SRC/CMakeLists.txt")
# A sanitizer build installs a sanitized library: its consumers must link the runtime too.
SANITIZE=$(cache CHRONICLE_SANITIZE)
SANFLAGS=${SANITIZE:+-fsanitize=$SANITIZE}
GENERATOR=()
command -v ninja >/dev/null && GENERATOR=(-G Ninja)

# One installation for all tests.
PFX=$(mktemp -d /tmp/chronicle-install.XXXXXX)
INSTALL_LOG=$PFX.log
trap 'rm -rf "$PFX" "$INSTALL_LOG"' EXIT
INSTALLED=0
cmake --install "$BUILD" --prefix "$PFX" >"$INSTALL_LOG" 2>&1 && INSTALLED=1
LIBDIR=$(dirname "$(find "$PFX" -name libchronicle.a -print -quit 2>/dev/null)")

need_install() {
    ((INSTALLED)) || fail "cmake --install $BUILD --prefix $PFX failed: $(tail -5 "$INSTALL_LOG")"
}

note() { echo "    note: $*"; }

# The tool names and the installed file each completion source must appear as.
TOOLS=(chronicle-append chronicle-tail chronicle-readers chronicle-queue)

t_install_puts_tools_library_headers_and_package_files_in_place() {
    need_install
    for tool in "${TOOLS[@]}"; do
        [[ -x $PFX/bin/$tool ]] || fail "bin/$tool not installed"
    done
    [[ -f $LIBDIR/libchronicle.a ]] || fail "libchronicle.a not installed"
    [[ ${LIBDIR#"$PFX"/} == lib || ${LIBDIR#"$PFX"/} == lib/*-linux-gnu* || ${LIBDIR#"$PFX"/} == lib64 ]] ||
        fail "library in an unexpected directory: $LIBDIR"
    local h n=0
    for h in "$SRC"/lib/include/chronicle/*.h; do
        cmp -s "$h" "$PFX/include/chronicle/${h##*/}" || fail "include/chronicle/${h##*/} not installed"
        n=$((n + 1))
    done
    expect_eq headers "$n" "$(ls "$PFX/include/chronicle" | wc -l)"
    for f in chronicleConfig.cmake chronicleConfigVersion.cmake chronicleTargets.cmake; do
        [[ -f $LIBDIR/cmake/chronicle/$f ]] || fail "lib/cmake/chronicle/$f not installed"
    done
    [[ -f $LIBDIR/pkgconfig/chronicle.pc ]] || fail "lib/pkgconfig/chronicle.pc not installed"
    # Nothing of the build tree leaks into the installed package.
    if grep -rn "$BUILD\|$SRC" "$LIBDIR/cmake/chronicle" "$LIBDIR/pkgconfig"; then
        fail "the installed package files name the source or build tree"
    fi
}

t_installed_tools_run() {
    need_install
    for tool in "${TOOLS[@]}"; do
        local v
        v=$("$PFX/bin/$tool" --version)
        [[ $v == "$tool $VERSION" || $v == "$tool $VERSION "* ]] ||
            fail "$tool --version: expected [$tool $VERSION ...], got [$v]"
    done
    printf 'one\ntwo\n' | "$PFX/bin/chronicle-append" q
    expect_eq round_trip "$(printf 'one\ntwo')" "$("$PFX/bin/chronicle-tail" q)"
    "$PFX/bin/chronicle-readers" q >/dev/null || fail "chronicle-readers q failed"
    "$PFX/bin/chronicle-queue" info q >/dev/null || fail "chronicle-queue info q failed"
}

t_cmake_find_package_consumer_builds_and_runs() {
    need_install
    # The package must not ask for the library's private dependencies (nlohmann_json).
    if grep -n nlohmann "$LIBDIR"/cmake/chronicle/chronicleTargets*.cmake; then
        fail "the exported package refers to nlohmann_json"
    fi
    cmake -S "$SRC/tests/install/consumer" -B b "${GENERATOR[@]}" \
        -DCMAKE_PREFIX_PATH="$PFX" -DCMAKE_CXX_COMPILER="$CXX" \
        -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCMAKE_DISABLE_FIND_PACKAGE_nlohmann_json=ON \
        -DCMAKE_CXX_FLAGS="$SANFLAGS" -DCMAKE_EXE_LINKER_FLAGS="$SANFLAGS" >cfg.log 2>&1 ||
        fail "configuring the consumer failed: $(cat cfg.log)"
    expect_eq chronicle_DIR "$LIBDIR/cmake/chronicle" \
        "$(sed -n 's/^chronicle_DIR:PATH=//p' b/CMakeCache.txt)"
    cmake --build b >build.log 2>&1 || fail "building the consumer failed: $(tail -20 build.log)"
    expect_eq first "0 hello" "$(b/consumer q hello)"
    expect_eq second "$(printf '0 hello\n1 wörld')" "$(b/consumer q wörld)"
    # The installed tools read what the library wrote.
    expect_eq tail "$(printf 'hello\nwörld')" "$("$PFX/bin/chronicle-tail" q)"
}

t_find_package_version_check() {
    need_install
    mkdir p
    cat >p/CMakeLists.txt <<'EOF'
cmake_minimum_required(VERSION 3.20)
project(v LANGUAGES CXX)
find_package(chronicle ${WANT} EXACT QUIET)
message(STATUS "found=${chronicle_FOUND} version=${chronicle_VERSION}")
EOF
    cmake -S p -B b1 -DCMAKE_PREFIX_PATH="$PFX" -DWANT="$VERSION" >out1 2>&1 || fail "$(cat out1)"
    grep -q "found=1 version=$VERSION" out1 || fail "version $VERSION not found: $(cat out1)"
    cmake -S p -B b2 -DCMAKE_PREFIX_PATH="$PFX" -DWANT=999.0 >out2 2>&1 || fail "$(cat out2)"
    grep -q "found=0" out2 || fail "version 999.0 accepted: $(cat out2)"
}

t_pkg_config_consumer_builds_and_runs() {
    need_install
    command -v pkg-config >/dev/null || fail "pkg-config is not installed (scripts/setup.sh installs it)"
    export PKG_CONFIG_PATH=$LIBDIR/pkgconfig
    expect_eq modversion "$VERSION" "$(pkg-config --modversion chronicle)"
    local flags
    flags=$(pkg-config --cflags --libs chronicle)
    [[ $flags == *"-I$PFX/include"* && $flags == *-lchronicle* && $flags == *-pthread* ]] ||
        fail "pkg-config flags: $flags"
    # shellcheck disable=SC2086 # the flags are words
    "$CXX" -std=c++20 $SANFLAGS "$SRC/tests/install/consumer/main.cc" -o consumer $flags \
        >build.log 2>&1 || fail "g++ \$(pkg-config --cflags --libs chronicle) failed: $(tail -20 build.log)"
    expect_eq run "0 pkg-config" "$(./consumer q pkg-config)"
}

t_destdir_and_prefix_are_honoured() {
    # A packager's install: DESTDIR staging with a prefix that is not the configured one.
    DESTDIR=$T/stage cmake --install "$BUILD" --prefix /opt/chronicle >log 2>&1 || fail "$(tail -5 log)"
    [[ -x stage/opt/chronicle/bin/chronicle-tail ]] || fail "DESTDIR/prefix not honoured: $(ls -R stage | head)"
    local pc
    pc=$(find stage -name chronicle.pc)
    [[ -n $pc ]] || fail "no chronicle.pc under DESTDIR"
    grep -qx 'prefix=/opt/chronicle' "$pc" || fail "chronicle.pc: $(cat "$pc")"
    # Nothing escaped DESTDIR.
    [[ ! -e /opt/chronicle ]] || fail "/opt/chronicle was written outside DESTDIR"
    # Completion links are relative, so they survive the move out of DESTDIR.
    local l
    while IFS= read -r l; do
        [[ $(readlink "$l") != /* ]] || fail "absolute symbolic link $l -> $(readlink "$l")"
        [[ -e $l ]] || fail "dangling symbolic link $l"
    done < <(find stage -type l)
}

t_man_pages_are_found_by_man() {
    need_install
    local page sec n=0
    for page in "$SRC"/man/*.[17]; do
        [[ -f $page ]] || continue
        n=$((n + 1))
        sec=${page##*.}
        cmp -s "$page" "$PFX/share/man/man$sec/${page##*/}" ||
            fail "man/${page##*/} not installed into share/man/man$sec"
    done
    ((n > 0)) || { note "no man/*.1 or man/*.7 yet: skipped"; return 0; }
    command -v man >/dev/null || { note "man is not installed: lookup skipped"; return 0; }
    # man-db finds the pages of a prefix from PATH (PREFIX/bin -> PREFIX/share/man).
    for page in "$SRC"/man/*.[17]; do
        local name=${page##*/}
        local found
        found=$(PATH=$PFX/bin:$PATH MANPATH='' man -w "${name##*.}" "${name%.*}" 2>&1) || true
        expect_eq "man -w ${name%.*}" "$PFX/share/man/man${name##*.}/$name" "$found"
    done
}

# The completion source $1 must be installed as each of the files $2...: same bytes (links
# resolved). Returns 1 (skip) when the source does not exist yet.
completion_installed() {
    local src=$SRC/completions/$1 f
    shift
    [[ -f $src ]] || { note "completions/${src##*/} does not exist yet: skipped"; return 1; }
    for f in "$@"; do
        cmp -s "$src" "$PFX/$f" || fail "completions/${src##*/} not installed as $f"
    done
}

t_bash_completion_is_loaded_by_bash_completion() {
    need_install
    local d=share/bash-completion/completions
    completion_installed chronicle.bash "$d/chronicle-append" "$d/chronicle-tail" \
        "$d/chronicle-readers" "$d/chronicle-queue" || return 0
    local loader=/usr/share/bash-completion/bash_completion
    [[ -f $loader ]] || { note "bash-completion is not installed: loader check skipped"; return 0; }
    # bash-completion loads <dir>/<command> on first use, for dir in $XDG_DATA_DIRS
    # (default /usr/local/share:/usr/share) + /bash-completion/completions.
    XDG_DATA_DIRS=$PFX/share HOME=$T bash -c '
        source "$1" || exit 1
        for c in chronicle-append chronicle-tail chronicle-readers chronicle-queue; do
            __load_completion "$c" || { echo "$c: not loaded"; exit 1; }
            complete -p "$c" || exit 1
        done' _ "$loader" >out 2>&1 || fail "$(cat out)"
    [[ $(wc -l <out) == 4 ]] || fail "$(cat out)"
}

t_zsh_completion_is_in_fpath() {
    need_install
    local d=share/zsh/site-functions
    completion_installed _chronicle "$d/_chronicle" || return 0
    command -v zsh >/dev/null || { note "zsh is not installed: loader check skipped"; return 0; }
    # With the default prefix (/usr/local) the directory is in zsh's own $fpath.
    zsh -fc 'print -l $fpath' | grep -qx "/usr/local/$d" ||
        note "/usr/local/$d is not in this zsh's default \$fpath"
    local got
    got=$(HOME=$T zsh -fc "fpath=($PFX/$d \$fpath); autoload -Uz compinit; compinit -u -D
        for c in ${TOOLS[*]}; do print -r -- \"\$c=\$_comps[\$c]\"; done" 2>&1)
    expect_eq compinit "$(printf '%s=_chronicle\n' "${TOOLS[@]}")" "$got"
}

t_fish_completion_is_loaded_by_fish() {
    need_install
    local d=share/fish/vendor_completions.d
    completion_installed chronicle.fish "$d/chronicle-append.fish" "$d/chronicle-tail.fish" \
        "$d/chronicle-readers.fish" "$d/chronicle-queue.fish" || return 0
    command -v fish >/dev/null || { note "fish is not installed: loader check skipped"; return 0; }
    # fish autoloads <dir>/<command>.fish from <XDG_DATA_DIRS entry>/fish/vendor_completions.d
    # (for a command it finds in $PATH).
    local tool got
    for tool in "${TOOLS[@]}"; do
        got=$(PATH=$PFX/bin:$PATH HOME=$T XDG_CONFIG_HOME=$T/cfg XDG_DATA_HOME=$T/data XDG_DATA_DIRS=$PFX/share \
            fish -c "complete -C '$tool --'" 2>&1)
        [[ $got == *--version* ]] || fail "fish does not complete $tool: $got"
    done
}

run_tests
