#!/usr/bin/env bash
# Black-box tests of the documentation: the man pages render cleanly and document every
# option the tools accept, and the shell completions load and complete what they should.
#   MAN_DIR          the man pages       (default: man/ of this source tree)
#   COMPLETIONS_DIR  the completions     (default: completions/ of this source tree)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MAN_DIR=$(cd "${MAN_DIR:-$(dirname "$0")/../../man}" && pwd)
COMPLETIONS_DIR=$(cd "${COMPLETIONS_DIR:-$(dirname "$0")/../../completions}" && pwd)
PAGES=(chronicle-append.1 chronicle-tail.1 chronicle-readers.1 chronicle-queue.1 chronicle.7)
TOOLS=(chronicle-append chronicle-tail chronicle-readers chronicle-queue)
# chronicle-queue: its subcommand comes first (chronicle-queue info QUEUE).
QUEUE_TOOL=$BIN/chronicle-queue
BASH_COMPLETION_PKG=/usr/share/bash-completion/bash_completion
# A UTF-8 locale for rendering as a user sees it (C.UTF-8 on Debian), if there is one.
UTF8_LOCALE=$(locale -a 2>/dev/null | grep -iE '^c\.utf-?8$' | head -n 1)

# ------------------------------------------------------------------------------ helpers

need() {
    command -v "$1" >/dev/null || fail "$1 is not installed (scripts/setup.sh installs it)"
}

# render PAGE [LOCALE]: the page as man(1) shows it at 80 columns, as plain text (no
# overstriking; Unicode hyphens and minus signs as '-'). Messages go to $T/render.err.
render() {
    MANWIDTH=80 MANPAGER=cat PAGER=cat LC_ALL=${2:-${UTF8_LOCALE:-C}} man -l "$1" 2>"$T/render.err" |
        sed -e 's/.\x08//g' -e $'s/\xe2\x80\x90/-/g' -e $'s/\xe2\x88\x92/-/g'
}

# section NAME: the lines of one top-level section (a heading at column 0) of rendered text.
section() {
    awk -v s="$1" '$0 == s { f = 1; next } /^[A-Z][A-Z0-9 ]*[A-Z]$/ { f = 0 } f'
}

# The options a --help output lists ("-n,--lines" gives -n and --lines).
help_options() {
    "$@" --help | grep -oE '^ +-[-[:alnum:],]+' | tr ',' '\n' | tr -d ' ' | grep . | sort -u
}

# help_subcommands TOOL: the subcommands TOOL --help lists (chronicle-readers, chronicle-queue).
help_subcommands() {
    "$1" --help | awk '/^Subcommands:/ { f = 1; next } f && /^  [a-z]/ { print $1 }'
}

# documented TEXT WORD...: prints the WORDs that do not occur in TEXT as whole words
# (delimited by anything but letters, digits, '_' and '-'; a WORD may be a phrase, and
# line breaks and justification in TEXT count as one space); fails if there are any.
documented() {
    local text w missing=()
    text=$(tr -s '[:space:]' ' ' <<<"$1")
    shift
    for w in "$@"; do
        grep -qE -- "(^|[^[:alnum:]_-])${w}([^[:alnum:]_-]|\$)" <<<"$text" || missing+=("$w")
    done
    if ((${#missing[@]})); then
        echo "${missing[*]}"
        return 1
    fi
}

# options_missing PAGE TOOL: the options of TOOL's --help (and of its subcommands'
# --help) that the OPTIONS section of PAGE does not document; fails if there are any.
options_missing() {
    local page=$1 tool=$2 opts text sub
    opts=$(help_options "$BIN/$tool")
    if [[ $tool == chronicle-readers ]]; then
        for sub in $(help_subcommands "$READERS"); do
            opts+=$'\n'$(help_options "$READERS" q "$sub")
        done
    elif [[ $tool == chronicle-queue ]]; then
        # The subcommand comes first: chronicle-queue info --help.
        for sub in $(help_subcommands "$QUEUE_TOOL"); do
            opts+=$'\n'$(help_options "$QUEUE_TOOL" "$sub")
        done
    fi
    text=$(render "$page" | section OPTIONS)
    # shellcheck disable=SC2046  # one option per word
    documented "$text" $(sort -u <<<"$opts")
}

# bash_complete PKG CWORD WORD...: runs the completion function that chronicle.bash
# registers for WORD[0] in a fresh `bash --norc` (after sourcing PKG, bash-completion's
# main script, unless PKG is empty), completing WORD[CWORD] ("-": the last word), and
# prints COMPREPLY one per line.
bash_complete() {
    local pkg=$1 cword=$2
    shift 2
    [[ $cword == - ]] && cword=$(($# - 1))
    bash --norc --noprofile -c '
        pkg=$1 file=$2 cword=$3
        shift 3
        if [[ -n $pkg ]]; then source "$pkg" || exit 90; fi
        source "$file" || exit 91
        COMP_WORDS=("$@")
        COMP_CWORD=$cword
        COMP_LINE="$*"
        COMP_POINT=${#COMP_LINE}
        spec=$(complete -p "$1") || exit 92
        fn=$(sed -E "s/.* -F ([^ ]+) .*/\\1/" <<<"$spec")
        COMPREPLY=()
        "$fn" "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
        ((${#COMPREPLY[@]})) && printf "%s\n" "${COMPREPLY[@]}"
        exit 0
    ' bash "$pkg" "$COMPLETIONS_DIR/chronicle.bash" "$cword" "$@" 2>"$T/comp.err"
    local rc=$?
    [[ ! -s $T/comp.err ]] || fail "completion printed on stderr: $(cat "$T/comp.err")"
    return $rc
}

# comp "LINE": completes the last word of LINE (an empty word if LINE ends with a
# space) in bash without bash-completion; prints the sorted, unique candidates.
# COMP_PKG may name bash-completion's main script to load first.
comp() {
    local -a w
    read -ra w <<<"$1"
    [[ $1 == *" " ]] && w+=("")
    bash_complete "${COMP_PKG:-}" - "${w[@]}" | sort -u
}

# A queue with readers alpha and beta, and an anonymous follower (~anon.*) in $T/q;
# the follower's pid in $follower.
make_queue_with_readers() {
    seq 1 5 | $APPEND q
    $READERS q create alpha
    $TAIL --reader beta q >/dev/null
    $TAIL -f q >/dev/null &
    follower=$!
    local _
    for _ in $(seq 100); do
        compgen -G 'q/readers/~anon.*.cursor' >/dev/null && return 0
        sleep 0.05
    done
    fail "the anonymous follower did not register"
}

stop_follower() {
    kill "$follower" 2>/dev/null || true
    wait "$follower" 2>/dev/null || true
}

# -------------------------------------------------------------------------- man pages

t_man_pages_render_at_80_columns_without_messages() {
    need man
    local page loc width
    for page in "${PAGES[@]}"; do
        for loc in C ${UTF8_LOCALE:+"$UTF8_LOCALE"}; do
            render "$MAN_DIR/$page" "$loc" >"$T/page.txt"
            [[ ! -s $T/render.err ]] || fail "man -l $page (LC_ALL=$loc): $(cat "$T/render.err")"
            grep -q '^NAME$' "$T/page.txt" || fail "$page: no NAME section in the rendered page"
            grep -q '^SEE ALSO$' "$T/page.txt" || fail "$page: no SEE ALSO section"
            if [[ -n $UTF8_LOCALE ]]; then
                width=$(LC_ALL=$UTF8_LOCALE wc -L <"$T/page.txt")
                ((width <= 80)) || fail "$page (LC_ALL=$loc): a line is $width columns wide"
            fi
        done
    done
}

t_groff_reports_no_warnings() {
    need groff
    local page dev
    for page in "${PAGES[@]}"; do
        for dev in utf8 ascii; do
            groff -man -T"$dev" -ww -z "$MAN_DIR/$page" 2>"$T/groff.err" ||
                fail "groff failed on $page: $(cat "$T/groff.err")"
            [[ ! -s $T/groff.err ]] || fail "groff -T$dev -ww $page: $(cat "$T/groff.err")"
        done
    done
}

t_whatis_entries_parse() {
    need lexgrog
    local page
    for page in "${PAGES[@]}"; do
        lexgrog "$MAN_DIR/$page" >"$T/whatis" 2>&1 || fail "lexgrog $page: $(cat "$T/whatis")"
        grep -q " - " "$T/whatis" || fail "$page: no whatis line: $(cat "$T/whatis")"
    done
}

t_every_help_option_is_in_its_man_page() {
    need man
    local tool missing n
    for tool in "${TOOLS[@]}"; do
        n=$(help_options "$BIN/$tool" | wc -l)
        ((n >= 3)) || fail "could not parse the options of $tool --help"
        missing=$(options_missing "$MAN_DIR/$tool.1" "$tool") ||
            fail "$tool.1 does not document in OPTIONS: $missing"
    done
}

t_option_check_fails_when_an_option_is_removed_from_a_page() {
    need man
    # The check above must notice a page that lost an option.
    sed '/until\\-writer\\-exits/d' "$MAN_DIR/chronicle-tail.1" >chronicle-tail.1
    local missing rc=0
    missing=$(options_missing chronicle-tail.1 chronicle-tail) || rc=$?
    ((rc != 0)) || fail "a page without --until-writer-exits passed the check"
    [[ " $missing " == *" --until-writer-exits "* ]] || fail "missing: [$missing]"
    sed '/\\-\\-stale\\-after/d' "$MAN_DIR/chronicle-readers.1" >chronicle-readers.1
    rc=0
    missing=$(options_missing chronicle-readers.1 chronicle-readers) || rc=$?
    ((rc != 0)) || fail "a page without gc --stale-after passed the check"
    [[ " $missing " == *" --stale-after "* ]] || fail "missing: [$missing]"
    sed '/\\-\\-dry\\-run/d' "$MAN_DIR/chronicle-queue.1" >chronicle-queue.1
    rc=0
    missing=$(options_missing chronicle-queue.1 chronicle-queue) || rc=$?
    ((rc != 0)) || fail "a page without retain --dry-run passed the check"
    [[ " $missing " == *" --dry-run "* ]] || fail "missing: [$missing]"
}

t_every_subcommand_is_in_the_readers_page() {
    need man
    local subs missing
    subs=$(help_subcommands "$READERS")
    [[ $(wc -w <<<"$subs") -ge 6 ]] || fail "could not parse the subcommands: $subs"
    # shellcheck disable=SC2086
    missing=$(documented "$(render "$MAN_DIR/chronicle-readers.1" | section SUBCOMMANDS)" $subs) ||
        fail "chronicle-readers.1 does not document the subcommands: $missing"
}

t_every_subcommand_is_in_the_queue_page() {
    need man
    local subs missing
    subs=$(help_subcommands "$QUEUE_TOOL")
    [[ $(wc -w <<<"$subs") -ge 3 ]] || fail "could not parse the subcommands: $subs"
    # shellcheck disable=SC2086
    missing=$(documented "$(render "$MAN_DIR/chronicle-queue.1" | section SUBCOMMANDS)" $subs) ||
        fail "chronicle-queue.1 does not document the subcommands: $missing"
}

t_exit_status_sections_have_the_shared_table() {
    need man
    local page text missing
    for page in chronicle-append.1 chronicle-tail.1 chronicle-readers.1 chronicle-queue.1; do
        text=$(render "$MAN_DIR/$page" | section "EXIT STATUS")
        missing=$(documented "$text" 0 1 2 3 4 5 6 7 Usage "Not found" Busy "No space" Timeout \
            "Data error") || fail "$page: EXIT STATUS lacks: $missing"
    done
    text=$(render "$MAN_DIR/chronicle-readers.1" | section "EXIT STATUS")
    missing=$(documented "$text" OK WARNING CRITICAL UNKNOWN) ||
        fail "chronicle-readers.1: EXIT STATUS lacks the --check codes: $missing"
}

t_every_file_the_tools_create_is_in_chronicle_7() {
    need man
    make_queue_with_readers
    $QUEUE_TOOL set q --max-bytes 1G >/dev/null # retention.json
    $TAIL -f --reader gamma q >/dev/null &
    local named=$! _
    for _ in $(seq 100); do [[ -e q/readers/gamma.efd ]] && break; sleep 0.05; done
    local text f doc missing=()
    text=$(render "$MAN_DIR/chronicle.7" | section FILES)
    while IFS= read -r f; do
        case $f in
            [0-9]*.seg) doc=NNNNNNNNNNNNNNNNNNNN.seg ;;
            "readers/~anon."*) doc="readers/~anon.PID.N.${f##*.}" ;;
            readers/*.*) doc="readers/NAME.${f##*.}" ;;
            *) doc=$f ;;
        esac
        # "readers/~anon.PID.N.cursor, .efd, .fifo" documents the other two as ".efd" etc.
        if ! grep -qF -- "$doc" <<<"$text" &&
            ! { [[ $doc == "readers/~anon."* ]] && grep -qF -- "~anon.PID.N" <<<"$text" &&
                grep -qF -- ".${f##*.}" <<<"$text"; }; then
            missing+=("$f")
        fi
    done < <(cd q && find . -mindepth 1 \( -type f -o -type p \) -printf '%P\n' | sort)
    kill "$named" 2>/dev/null || true
    wait "$named" 2>/dev/null || true
    stop_follower
    ((${#missing[@]} == 0)) || fail "chronicle.7 FILES does not describe: ${missing[*]}"
}

t_readers_json_keys_are_in_the_readers_page() {
    need man
    command -v jq >/dev/null || {
        echo "    skip: jq is not installed" >&2
        return 0
    }
    make_queue_with_readers
    local keys text missing _
    for _ in $(seq 100); do compgen -G 'q/readers/~anon.*.efd' >/dev/null && break; sleep 0.05; done
    $READERS --json q >all.json
    $READERS --ndjson q >lines.json
    $READERS --json q show alpha >one.json
    expect_eq schema chronicle.readers/v1 "$(jq -r .schema all.json)"
    expect_eq ndjson_schema chronicle.reader/v1 "$(jq -r .schema lines.json | sort -u)"
    expect_eq show_schema chronicle.reader/v1 "$(jq -r .schema one.json)"
    jq -e '[.readers[] | select(.follower != null)] | length > 0' all.json >/dev/null ||
        fail "no reader with a follower object in $(cat all.json)"
    keys=$(jq -r '[.. | objects | keys[]] | unique[]' all.json lines.json one.json | sort -u)
    stop_follower
    text=$(render "$MAN_DIR/chronicle-readers.1" | section "JSON OUTPUT")
    # shellcheck disable=SC2086
    missing=$(documented "$text" $keys chronicle.readers/v1 chronicle.reader/v1) ||
        fail "chronicle-readers.1 JSON OUTPUT does not document: $missing"
}

t_queue_json_keys_are_in_the_queue_page() {
    need man
    command -v jq >/dev/null || {
        echo "    skip: jq is not installed" >&2
        return 0
    }
    # Six 16K segments (about 490 records each); reader audit, in the fourth, pins it and
    # the ones after it under a soft limit of two segments, and expires under a hard one.
    numbered 3000 | $APPEND --segment-size 16K q
    $READERS q create audit --at 1500
    $QUEUE_TOOL set q --max-bytes 32K >/dev/null
    $QUEUE_TOOL info --json q >info-soft.json
    $QUEUE_TOOL retain --dry-run --json q >dry.json
    $QUEUE_TOOL set q --hard >/dev/null
    $QUEUE_TOOL retain --json q >hard.json
    $QUEUE_TOOL info --json q >info-hard.json
    $READERS --json q >readers.json
    expect_eq info_schema chronicle.queue/v1 "$(jq -r .schema info-soft.json)"
    expect_eq retain_schema chronicle.retain/v1 "$(jq -r .schema dry.json)"
    jq -e '.pinned | length > 0' info-soft.json >/dev/null ||
        fail "no reader pins segments in $(cat info-soft.json)"
    jq -e '.deleted | length > 0' dry.json >/dev/null || fail "nothing to delete in $(cat dry.json)"
    jq -e '.expired | length > 0' hard.json >/dev/null || fail "no reader expired in $(cat hard.json)"
    jq -e '.readers[] | select(.name == "audit") | .expired and .records_lost > 0' readers.json \
        >/dev/null || fail "audit is not expired in $(cat readers.json)"
    local keys text missing
    keys=$(jq -r '[.. | objects | keys[]] | unique[]' info-soft.json dry.json hard.json info-hard.json |
        sort -u)
    text=$(render "$MAN_DIR/chronicle-queue.1" | section "JSON OUTPUT")
    # shellcheck disable=SC2086
    missing=$(documented "$text" $keys chronicle.queue/v1 chronicle.retain/v1) ||
        fail "chronicle-queue.1 JSON OUTPUT does not document: $missing"
    keys=$(jq -r '[.. | objects | keys[]] | unique[]' readers.json | sort -u)
    text=$(render "$MAN_DIR/chronicle-readers.1" | section "JSON OUTPUT")
    # shellcheck disable=SC2086
    missing=$(documented "$text" $keys) ||
        fail "chronicle-readers.1 JSON OUTPUT does not document (expired reader): $missing"
}

t_tail_json_keys_are_in_the_tail_page() {
    need man
    command -v jq >/dev/null || {
        echo "    skip: jq is not installed" >&2
        return 0
    }
    printf 'text\n' | $APPEND q
    printf '\xff\xfe' | $APPEND --framing raw q
    local keys missing
    keys=$($TAIL --json q | jq -r 'keys[]' | sort -u)
    [[ $keys == *encoding* ]] || fail "no encoding key for a binary payload: $keys"
    # shellcheck disable=SC2086
    missing=$(documented "$(render "$MAN_DIR/chronicle-tail.1" | section DESCRIPTION)" $keys) ||
        fail "chronicle-tail.1 does not document the --json keys: $missing"
}

# ------------------------------------------------------------------------- completions

t_bash_completion_loads_in_bash_norc() {
    bash --norc --noprofile -c '
        source "$1" || exit 1
        for c in chronicle-append chronicle-tail chronicle-readers chronicle-queue; do
            complete -p "$c" >/dev/null || exit 2
        done
    ' bash "$COMPLETIONS_DIR/chronicle.bash" >"$T/out" 2>"$T/err" ||
        fail "chronicle.bash does not register every tool: $(cat "$T/err")"
    [[ ! -s $T/err && ! -s $T/out ]] || fail "loading chronicle.bash printed: $(cat "$T/out" "$T/err")"
}

t_bash_completes_options_and_their_values() {
    local pkg
    for pkg in "" "$BASH_COMPLETION_PKG"; do
        [[ -z $pkg || -f $pkg ]] || continue
        COMP_PKG=$pkg
        expect_eq "tail --for ($pkg)" "--format" "$(comp 'chronicle-tail --for')"
        expect_eq "tail --format" "$(printf 'len32\nlines\nnul\nraw')" "$(comp 'chronicle-tail --format ')"
        expect_eq "tail --format=l" "$(printf 'len32\nlines')" "$(bash_complete "$pkg" - chronicle-tail --format = l | sort)"
        expect_eq "append --framing" "$(printf 'len32\nlines\nnul\nraw')" "$(comp 'chronicle-append --framing ')"
        expect_eq "append --sync" "$(printf 'batch\nevery\nnone')" "$(comp 'chronicle-append --sync ')"
        expect_eq "readers --at" "$(printf 'end\nstart')" "$(comp 'chronicle-readers q create x --at ')"
        expect_eq "readers --to" "$(printf -- '--to-end\n--to-seq\n--to-start\n--to-time')" \
            "$(comp 'chronicle-readers q reset x --to')"
        expect_eq "append --max" "$(printf -- '--max-age\n--max-bytes\n--max-records')" \
            "$(comp 'chronicle-append --max')"
        expect_eq "tail --skip" --skip-expired "$(comp 'chronicle-tail --skip')"
        expect_eq "queue set --ha" --hard "$(comp 'chronicle-queue set q --ha')"
        expect_eq "queue set --max-age n" none "$(comp 'chronicle-queue set q --max-age n')"
        expect_eq "queue set --keep-free=n" none \
            "$(bash_complete "$pkg" - chronicle-queue set q --keep-free = n | sort)"
        expect_eq "queue retain --" "$(printf -- '--dry-run\n--help\n--json')" \
            "$(comp 'chronicle-queue retain q --')"
    done
}

t_bash_offers_every_help_option() {
    local tool offered missing
    for tool in "${TOOLS[@]}"; do
        offered=$(comp "$tool -")
        # shellcheck disable=SC2046
        missing=$(documented "$offered" $(help_options "$BIN/$tool")) ||
            fail "bash does not offer for $tool: $missing"
    done
    local sub
    for sub in $(help_subcommands "$READERS"); do
        offered=$(comp "chronicle-readers q $sub x -")
        # shellcheck disable=SC2046
        missing=$(documented "$offered" $(help_options "$READERS" q "$sub")) ||
            fail "bash does not offer for chronicle-readers $sub: $missing"
    done
    for sub in $(help_subcommands "$QUEUE_TOOL"); do
        offered=$(comp "chronicle-queue $sub q -")
        # shellcheck disable=SC2046
        missing=$(documented "$offered" $(help_options "$QUEUE_TOOL" "$sub")) ||
            fail "bash does not offer for chronicle-queue $sub: $missing"
    done
}

# zsh and fish: every option --help lists (the tool's and its subcommands') is in the
# tool's completion function (zsh) or its `complete -c TOOL` lines (fish).
t_zsh_and_fish_offer_every_help_option() {
    local tool base zsh_text fish_text opts sub missing
    for tool in "${TOOLS[@]}"; do
        base=${tool#chronicle-}
        zsh_text=$(awk -v f="_chronicle_$base() {" '$0 == f { on = 1 } on { print } on && /^}$/ { exit }' \
            "$COMPLETIONS_DIR/_chronicle")
        [[ -n $zsh_text ]] || fail "_chronicle has no _chronicle_$base"
        fish_text=$(grep -E "^complete -c $tool " "$COMPLETIONS_DIR/chronicle.fish" |
            grep -oE -- '-(s|l) [^ ]+' | sed -E 's/^-s /-/; s/^-l /--/')
        opts=$(help_options "$BIN/$tool")
        if [[ $tool == chronicle-readers ]]; then
            for sub in $(help_subcommands "$BIN/$tool"); do opts+=$'\n'$(help_options "$BIN/$tool" q "$sub"); done
        elif [[ $tool == chronicle-queue ]]; then
            for sub in $(help_subcommands "$BIN/$tool"); do opts+=$'\n'$(help_options "$BIN/$tool" "$sub"); done
        fi
        # shellcheck disable=SC2046
        missing=$(documented "$zsh_text" $(sort -u <<<"$opts")) || fail "zsh does not offer for $tool: $missing"
        # shellcheck disable=SC2046
        missing=$(documented "$fish_text" $(sort -u <<<"$opts")) || fail "fish does not offer for $tool: $missing"
    done
}

t_bash_completes_queues_subcommands_and_reader_names() {
    make_queue_with_readers
    mkdir other
    touch notaqueue.txt
    local pkg names
    names=$(printf 'alpha\nbeta')
    for pkg in "" "$BASH_COMPLETION_PKG"; do
        [[ -z $pkg || -f $pkg ]] || continue
        COMP_PKG=$pkg
        expect_eq "readers sh ($pkg)" show "$(comp 'chronicle-readers q sh')"
        expect_eq "readers subcommands" "$(printf 'create\ndelete\ngc\nlist\nreset\nshow')" \
            "$(comp 'chronicle-readers q ')"
        expect_eq "readers show NAME" "$names" "$(comp 'chronicle-readers q show ')"
        expect_eq "readers reset NAME" "$names" "$(comp 'chronicle-readers --json q reset ')"
        expect_eq "readers delete a" alpha "$(comp 'chronicle-readers q delete a')"
        expect_eq "readers create NAME" "" "$(comp 'chronicle-readers q create ')"
        expect_eq "tail --reader" "$names" "$(comp 'chronicle-tail -f q --reader ')"
        # The queue may come after --reader.
        expect_eq "tail --reader before queue" "$names" \
            "$(bash_complete "$pkg" 2 chronicle-tail --reader "" -f q | sort -u)"
        expect_eq "tail QUEUE" "$(printf 'other\nq')" "$(comp 'chronicle-tail -n 5 ' | tr -d /)"
        # A queue is a word: no descent into readers/ (issue 14).
        expect_eq "tail q/ ($pkg)" q "$(comp 'chronicle-tail -f q/')"
        expect_eq "tail q" q "$(comp 'chronicle-tail -f q')"
        expect_eq "readers q/r" "" "$(comp 'chronicle-readers q/r')"
        expect_eq "append q/" q "$(comp 'chronicle-append q/')"
        expect_eq "readers QUEUE" "$(printf 'other\nq')" "$(comp 'chronicle-readers --json ' | tr -d /)"
        expect_eq "append FILE" notaqueue.txt "$(comp 'chronicle-append q nota')"
        expect_eq "queue re" retain "$(comp 'chronicle-queue re')"
        expect_eq "queue subcommands" "$(printf 'info\nretain\nset\nverify')" "$(comp 'chronicle-queue ')"
        expect_eq "queue info QUEUE" "$(printf 'other\nq')" "$(comp 'chronicle-queue info ' | tr -d /)"
        expect_eq "queue set QUEUE" "$(printf 'other\nq')" \
            "$(comp 'chronicle-queue set --max-bytes 1G ' | tr -d /)"
        expect_eq "queue retain QUEUE x" "" "$(comp 'chronicle-queue retain q ')"
    done
    stop_follower
}

t_zsh_completion_passes_zsh_n() {
    if ! command -v zsh >/dev/null; then
        echo "    skip: zsh is not installed" >&2
        return 0
    fi
    head -n 1 "$COMPLETIONS_DIR/_chronicle" |
        grep -qx '#compdef chronicle-append chronicle-tail chronicle-readers chronicle-queue' ||
        fail "_chronicle does not start with its #compdef line"
    zsh -n "$COMPLETIONS_DIR/_chronicle" 2>"$T/err" || fail "zsh -n: $(cat "$T/err")"
}

t_fish_completion_passes_fish_n_and_completes() {
    if ! command -v fish >/dev/null; then
        echo "    skip: fish is not installed" >&2
        return 0
    fi
    fish -n "$COMPLETIONS_DIR/chronicle.fish" 2>"$T/err" || fail "fish -n: $(cat "$T/err")"
    make_queue_with_readers
    fc() {
        # shellcheck disable=SC2016  # $argv is fish's
        fish --no-config -c 'source $argv[1]; complete -C $argv[2]' "$COMPLETIONS_DIR/chronicle.fish" "$1" |
            cut -f1 | sort -u
    }
    expect_eq "fish tail --for" "--format" "$(fc 'chronicle-tail --for')"
    expect_eq "fish readers sh" show "$(fc 'chronicle-readers q sh')"
    expect_eq "fish readers show NAME" "$(printf 'alpha\nbeta')" "$(fc 'chronicle-readers q show ')"
    expect_eq "fish tail --reader" "$(printf 'alpha\nbeta')" "$(fc 'chronicle-tail q --reader ')"
    mkdir other
    expect_eq "fish queue subcommands" "$(printf 'info\nretain\nset\nverify')" "$(fc 'chronicle-queue ')"
    expect_eq "fish queue info QUEUE" "$(printf 'other\nq')" "$(fc 'chronicle-queue info ' | tr -d /)"
    expect_eq "fish queue set --ha" --hard "$(fc 'chronicle-queue set q --ha')"
    stop_follower
}

run_tests
