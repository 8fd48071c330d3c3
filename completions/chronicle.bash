# bash completion for chronicle-append, chronicle-tail, chronicle-readers and chronicle-queue
# -*- shell-script -*-
#
# Install as /usr/share/bash-completion/completions/chronicle-{append,tail,readers,queue}
# (one file, four links) or source it from ~/.bashrc. Self-contained: works with and
# without the bash-completion package (which it uses for file names when present).
#
# Keep the option lists in step with each tool's --help (tests/cli/cli_docs.sh checks).

# Options that take a value, per tool (their values are skipped when looking for
# positional arguments).
_chronicle_append_argopts=" --framing --segment-size --max-bytes --max-age --max-records --keep-free --sync "
_chronicle_tail_argopts=" -n --lines --from-seq -c --count --reader --format --template --since --from-time --until-seq --until --until-time --timeout --exec --batch --batch-bytes --linger --retries "
_chronicle_readers_argopts=" --watch --max-lag --warn-lag --max-age --warn-age --max-idle --warn-idle --min-free --warn-free --at --to-seq --to-time --stale-after "
_chronicle_queue_argopts=" --max-bytes --max-age --max-records --keep-free "

# Sets cur and prev for the word being completed. A value given as --opt=VALUE arrives
# as three words ("--opt" "=" "VALUE") while '=' is in COMP_WORDBREAKS (the default);
# otherwise as one, and then completions must carry the "--opt=" prefix (in $eqprefix).
_chronicle_cur_prev() {
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=
    eqprefix=
    ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
    if [[ $cur == "=" && $prev == -* ]]; then
        cur=
    elif [[ $prev == "=" ]] && ((COMP_CWORD > 1)); then
        prev=${COMP_WORDS[COMP_CWORD - 2]}
    elif [[ $cur == --*=* ]]; then
        prev=${cur%%=*}
        eqprefix=$prev=
        cur=${cur#*=}
    fi
}

# Fills the array _chronicle_pos with the positional arguments on the command line
# (every word but the one being completed) and sets _chronicle_npos to how many of them
# come before it. $1: the options of this tool that take a value.
_chronicle_positionals() {
    local argopts=$1 i w skip=0 only_pos=0
    _chronicle_pos=()
    _chronicle_npos=0
    for ((i = 1; i < ${#COMP_WORDS[@]}; i++)); do
        w=${COMP_WORDS[i]}
        if ((i == COMP_CWORD)); then
            skip=0
            continue
        fi
        if ((skip)); then
            # The value of the previous option; "--opt" "=" "value" spans two words.
            [[ $w == "=" ]] || skip=0
            continue
        fi
        if ((!only_pos)); then
            if [[ $w == "--" ]]; then
                only_pos=1
                continue
            fi
            if [[ $w == -* ]]; then
                [[ $w != *=* && $argopts == *" $w "* ]] && skip=1
                # "--opt" "=" "value": the "=" word follows; skip both.
                [[ ${COMP_WORDS[i + 1]:-} == "=" && $argopts == *" $w "* ]] && skip=1
                continue
            fi
            [[ $w == "=" ]] && continue
        fi
        _chronicle_pos+=("$w")
        ((i < COMP_CWORD)) && ((_chronicle_npos++))
    done
    return 0
}

# COMPREPLY from a word list, filtered by $cur, with $eqprefix put back.
_chronicle_words() {
    local w
    COMPREPLY=()
    for w in $(compgen -W "$1" -- "$cur"); do
        COMPREPLY+=("$eqprefix$w")
    done
}

# Directories (queues), or any file with $1 = -f.
# Whether $1 is a queue directory (its own files are in it): completion stops there
# instead of descending into readers/.
_chronicle_is_queue() {
    local d=${1%/}
    [[ -n $d && -d $d ]] || return 1
    [[ -e $d/queue.json || -e $d/writer.lock || -e $d/producers.shm ]] && return 0
    compgen -G "$d/*.seg" >/dev/null
}

_chronicle_paths() {
    local p c keep=()
    # A queue (QUEUE, not FILE) typed whole, with or without its slash: that is the word.
    if [[ ${1:-} != -f ]] && _chronicle_is_queue "$cur"; then
        COMPREPLY=("$eqprefix${cur%/}")
        compopt +o filenames 2>/dev/null
        return 0
    fi
    if [[ -z $eqprefix ]] && declare -F _filedir >/dev/null; then
        if [[ ${1:-} == -f ]]; then _filedir; else _filedir -d; fi
    else
        local IFS=$'\n'
        COMPREPLY=()
        for p in $(compgen "${1:--d}" -- "$cur"); do
            COMPREPLY+=("$eqprefix$p")
        done
        compopt -o filenames 2>/dev/null
    fi
    # Nothing inside a queue: its files are not the user's to name.
    for c in "${COMPREPLY[@]}"; do
        p=${c#"$eqprefix"}
        [[ $p == */* ]] && _chronicle_is_queue "${p%/*}" && continue
        keep+=("$c")
    done
    COMPREPLY=("${keep[@]}")
    # One queue left: complete it as a word (a space after it, not a slash).
    if [[ ${1:-} != -f && ${#COMPREPLY[@]} -eq 1 ]] && _chronicle_is_queue "${COMPREPLY[0]#"$eqprefix"}"; then
        compopt +o filenames 2>/dev/null
    fi
    return 0
}

# Reader names of queue $1: readers/*.cursor, without anonymous followers (~anon.*).
_chronicle_reader_names() {
    local q=$1 f n names=
    q=${q#[\"\']}
    q=${q%[\"\']}
    # A leading ~/ as typed (not yet expanded on the command line).
    # shellcheck disable=SC2088
    [[ $q == "~/"* ]] && q=$HOME/${q#"~/"}
    [[ -n $q && -d $q/readers ]] || return 0
    for f in "$q"/readers/*.cursor; do
        [[ -f $f ]] || continue
        n=${f##*/}
        n=${n%.cursor}
        [[ $n == "~anon."* ]] && continue
        names+=" $n"
    done
    _chronicle_words "$names"
}

_chronicle_duration_examples="500ms 10s 1m 5m 1h 1d"
# Retention limits (chronicle-append at creation, chronicle-queue set).
_chronicle_max_bytes_examples="256M 1G 10G 100G"
_chronicle_max_age_examples="1h 1d 7d 30d"
_chronicle_max_records_examples="100000 1000000 10000000"
_chronicle_keep_free_examples="10% 15% 20% 1G 10G"

_chronicle_append() {
    local cur prev eqprefix
    _chronicle_cur_prev
    case $prev in
        --framing) _chronicle_words "lines nul len32 raw"; return ;;
        --sync) _chronicle_words "none batch every"; return ;;
        --segment-size) _chronicle_words "16K 1M 16M 64M 256M 1G"; return ;;
        --max-bytes) _chronicle_words "$_chronicle_max_bytes_examples"; return ;;
        --max-age) _chronicle_words "$_chronicle_max_age_examples"; return ;;
        --max-records) _chronicle_words "$_chronicle_max_records_examples"; return ;;
        --keep-free) _chronicle_words "$_chronicle_keep_free_examples"; return ;;
    esac
    if [[ $cur == -* && -z $eqprefix ]]; then
        _chronicle_words "-h --help --framing -z --null --segment-size --max-bytes --max-age --max-records --keep-free --print-seq --atomic --exclusive --wait --wait= --sync --wake-via-fifo --version"
        return
    fi
    _chronicle_positionals "$_chronicle_append_argopts"
    if ((_chronicle_npos == 0)); then
        _chronicle_paths -d  # QUEUE
    else
        _chronicle_paths -f  # FILE...
    fi
}

_chronicle_tail() {
    local cur prev eqprefix
    _chronicle_cur_prev
    case $prev in
        --format) _chronicle_words "lines nul len32 raw"; return ;;
        --reader)
            _chronicle_positionals "$_chronicle_tail_argopts"
            _chronicle_reader_names "${_chronicle_pos[0]:-}"
            return
            ;;
        --since | --until) _chronicle_words "today yesterday now -1h $_chronicle_duration_examples"; return ;;
        --timeout) _chronicle_words "0 $_chronicle_duration_examples"; return ;; # 0: do not wait
        --linger) _chronicle_words "$_chronicle_duration_examples"; return ;;
        --batch-bytes) _chronicle_words "64K 1M 16M"; return ;;
        --exec)
            COMPREPLY=($(compgen -c -- "$cur"))
            return
            ;;
        -n | --lines | --from-seq | -c | --count | --template | --from-time | --until-seq | --until-time | --batch | --retries)
            COMPREPLY=()
            return
            ;;
    esac
    if [[ $cur == -* && -z $eqprefix ]]; then
        _chronicle_words "-h --help -n --lines --from-start --from-seq -c --count --reader --skip-expired --show-seq --format -z --null --json --template --since --from-time --until-seq --until --until-time -r --reverse --utc --localtime -f --follow -F --retry -q --quiet -v --verbose --until-writer-exits --timeout --exec --batch --batch-bytes --linger --retries --version"
        return
    fi
    _chronicle_positionals "$_chronicle_tail_argopts"
    _chronicle_paths -d  # QUEUE...
}

_chronicle_readers() {
    local cur prev eqprefix
    _chronicle_cur_prev
    local global="-h --help --json --ndjson --prometheus --watch --check --max-lag --warn-lag --max-age --warn-age --max-idle --warn-idle --min-free --warn-free --require-writer --version"
    case $prev in
        --at) _chronicle_words "start end"; return ;;
        --watch) _chronicle_words "1 2 5 10"; return ;;
        --max-age | --warn-age | --max-idle | --warn-idle | --stale-after) _chronicle_words "$_chronicle_duration_examples"; return ;;
        --min-free | --warn-free) _chronicle_words "5% 10% 1G 10G"; return ;;
        --max-lag | --warn-lag | --to-seq | --to-time)
            COMPREPLY=()
            return
            ;;
    esac
    _chronicle_positionals "$_chronicle_readers_argopts"
    local sub=
    ((_chronicle_npos >= 2)) && sub=${_chronicle_pos[1]}
    if [[ $cur == -* && -z $eqprefix ]]; then
        case $sub in
            create) _chronicle_words "--at $global" ;;
            reset) _chronicle_words "--to-seq --to-time --to-start --to-end --dry-run $global" ;;
            gc) _chronicle_words "--stale-after --dry-run $global" ;;
            *) _chronicle_words "$global" ;;
        esac
        return
    fi
    case $_chronicle_npos in
        0) _chronicle_paths -d ;;  # QUEUE
        1) _chronicle_words "list show create delete reset gc" ;;
        2)
            case $sub in
                show | delete | reset) _chronicle_reader_names "${_chronicle_pos[0]}" ;;
                *) COMPREPLY=() ;;
            esac
            ;;
        *) COMPREPLY=() ;;
    esac
}

# chronicle-queue SUBCOMMAND QUEUE [options]: the subcommand comes first.
_chronicle_queue() {
    local cur prev eqprefix
    _chronicle_cur_prev
    case $prev in
        --max-bytes) _chronicle_words "none $_chronicle_max_bytes_examples"; return ;;
        --max-age) _chronicle_words "none $_chronicle_max_age_examples"; return ;;
        --max-records) _chronicle_words "none $_chronicle_max_records_examples"; return ;;
        --keep-free) _chronicle_words "none $_chronicle_keep_free_examples"; return ;;
    esac
    _chronicle_positionals "$_chronicle_queue_argopts"
    local sub=
    ((_chronicle_npos >= 1)) && sub=${_chronicle_pos[0]}
    if [[ $cur == -* && -z $eqprefix ]]; then
        case $sub in
            info) _chronicle_words "-h --help --json" ;;
            set) _chronicle_words "-h --help --max-bytes --max-age --max-records --keep-free --hard --soft" ;;
            retain) _chronicle_words "-h --help --dry-run --json" ;;
            verify) _chronicle_words "-h --help --repair --json" ;;
            *) _chronicle_words "-h --help --version" ;;
        esac
        return
    fi
    case $_chronicle_npos in
        0) _chronicle_words "info set retain verify" ;;
        1)
            case $sub in
                info | set | retain | verify) _chronicle_paths -d ;;  # QUEUE
                *) COMPREPLY=() ;;
            esac
            ;;
        *) COMPREPLY=() ;;
    esac
}

complete -F _chronicle_append chronicle-append
complete -F _chronicle_tail chronicle-tail
complete -F _chronicle_readers chronicle-readers
complete -F _chronicle_queue chronicle-queue

# chronicle-bridge [options] SOURCE DESTINATION: a queue directory and a redis:// URL.
_chronicle_bridge_argopts=" --reader --durable --group --consumer --field --batch --max-len --create-stream --duplicate-window --replicas --retry-for --io-timeout "
_chronicle_bridge() {
    local cur prev eqprefix
    _chronicle_cur_prev
    case $prev in
        --reader)
            _chronicle_positionals "$_chronicle_bridge_argopts"
            local p
            for p in "${_chronicle_pos[@]}"; do
                [[ $p == *://* ]] && continue
                _chronicle_reader_names "$p"
                return
            done
            COMPREPLY=()
            return
            ;;
        --retry-for | --io-timeout) _chronicle_words "$_chronicle_duration_examples"; return ;;
        --batch) _chronicle_words "100 1000 10000"; return ;;
        --durable | --group | --consumer | --field | --max-len | --create-stream | --duplicate-window | --replicas) COMPREPLY=(); return ;;
    esac
    if [[ $cur == -* && -z $eqprefix ]]; then
        _chronicle_words "-h --help -f --follow --reader --durable --group --consumer --field --batch --max-len --create-stream --duplicate-window --replicas --retry-for --io-timeout -v --verbose --version"
        return
    fi
    _chronicle_positionals "$_chronicle_bridge_argopts"
    if ((_chronicle_npos < 2)); then
        if [[ $cur == r* ]]; then
            _chronicle_words "redis://127.0.0.1:6379/"
            compopt -o nospace 2>/dev/null
        else
            _chronicle_paths -d
        fi
    else
        COMPREPLY=()
    fi
}
complete -F _chronicle_bridge chronicle-bridge
