#!/usr/bin/env bash
# Black-box tests of examples/: the systemd units pass `systemd-analyze verify`, the tool
# command lines in them parse and run, and chronicle-journal-ingest resumes after the
# last entry its queue holds (against a stand-in journalctl that honours --after-cursor).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
EX=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../examples/systemd" && pwd)

# units DIR: the example units with /usr/local/bin/ pointing at the built tools (and a
# stand-in myapp), written into DIR.
units() {
    mkdir -p "$1/bin"
    local t u
    for t in chronicle-tail chronicle-append chronicle-readers chronicle-queue; do ln -sf "$BIN/$t" "$1/bin/$t"; done
    cp "$EX/chronicle-journal-ingest" "$1/bin/"
    printf '#!/bin/sh\necho hello\n' >"$1/bin/myapp"
    chmod +x "$1/bin/myapp"
    for u in "$EX"/*.service; do sed "s|/usr/local/bin/|$1/bin/|g" "$u" >"$1/$(basename "$u")"; done
}

t_systemd_units_pass_systemd_analyze_verify() {
    if ! command -v systemd-analyze >/dev/null; then
        echo "    skip: systemd-analyze not installed (Debian: systemd)"
        return 0
    fi
    units "$T/u"
    local f n=0
    for f in u/*.service; do
        systemd-analyze verify --man=no "$f" >verify.out 2>&1 || fail "$f: $(cat verify.out)"
        [[ ! -s verify.out ]] || fail "$f: $(cat verify.out)"
        n=$((n + 1))
    done
    ((n >= 4)) || fail "only $n units"
}

t_the_units_tool_command_lines_parse_and_run() {
    units "$T/u"
    mkdir -p var/lib/app
    $APPEND var/lib/app/orders </dev/null
    local f cmd rc
    for f in u/chronicle-forward.service u/chronicle-follow.service; do
        # ExecStart, continuation lines joined, %% unescaped, the queue path moved here.
        cmd=$(sed -n '/^ExecStart=/,/[^\\]$/p' "$f" | sed 's/^ExecStart=//; s/\\$//' | tr -d '\n' |
            sed "s|%%|%|g; s|/var/lib/app/orders|$T/var/lib/app/orders|")
        rc=0
        eval "$cmd --timeout 300ms" >out 2>err || rc=$?
        # 6: it parsed, opened the queue, followed it and timed out idle.
        expect_eq "$f exit ($(cat err))" 6 "$rc"
    done
}

t_journal_ingest_resumes_after_the_last_entry_the_queue_holds() {
    command -v jq >/dev/null || { echo "    skip: jq not installed"; return 0; }
    units "$T/u"
    # A stand-in journalctl: prints the entries of $T/journal (one JSON object per line),
    # after --after-cursor if given, all of them with --lines=all, none with -n 0.
    cat >u/bin/journalctl <<'EOF'
#!/bin/sh
after= mode=all
for a in "$@"; do
    case $a in
        --after-cursor=*) after=${a#--after-cursor=} ;;
        -n) mode=none ;;
    esac
done
[ "$mode" = none ] && [ -z "$after" ] && exit 0
if [ -n "$after" ]; then
    awk -v c="$after" 'found { print } index($0, "\"__CURSOR\":\"" c "\"") { found = 1 }' "$T_JOURNAL"
else
    cat "$T_JOURNAL"
fi
EOF
    chmod +x u/bin/journalctl
    export T_JOURNAL=$T/journal PATH=$T/u/bin:$PATH
    local i
    for i in 1 2 3; do printf '{"__CURSOR":"s=%d","MESSAGE":"entry %d"}\n' "$i" "$i"; done >journal
    u/bin/chronicle-journal-ingest jq --lines=all
    expect_eq first "$(seq 1 3)" "$($TAIL jq | jq -r '.MESSAGE' | cut -d' ' -f2)"
    # A restart: nothing appended twice.
    u/bin/chronicle-journal-ingest jq --lines=all
    expect_eq again "$(seq 1 3)" "$($TAIL jq | jq -r '.MESSAGE' | cut -d' ' -f2)"
    for i in 4 5; do printf '{"__CURSOR":"s=%d","MESSAGE":"entry %d"}\n' "$i" "$i"; done >>journal
    u/bin/chronicle-journal-ingest jq --lines=all
    expect_eq resumed "$(seq 1 5)" "$($TAIL jq | jq -r '.MESSAGE' | cut -d' ' -f2)"
    # Without a record and without options: from now on (-n 0), nothing old.
    u/bin/chronicle-journal-ingest fresh
    expect_eq fresh 0 "$($READERS fresh --json | jq .queue.head_seq)"
}

run_tests
