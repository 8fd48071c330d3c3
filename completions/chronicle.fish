# fish completion for the chronicle tools: chronicle-append, chronicle-tail,
# chronicle-readers and chronicle-queue. Install as
# ~/.config/fish/completions/chronicle-{append,tail,readers,queue}.fish
# or /usr/share/fish/vendor_completions.d/ (one file, four links), or source it.
#
# Keep the option lists in step with each tool's --help (tests/cli/cli_docs.sh checks).

# The positional arguments already on the command line (options and their values
# skipped). $argv: the options of the command that take a value.
function __chronicle_positionals
    set -l tokens (commandline -opc)
    set -e tokens[1]
    set -l skip 0
    set -l only_pos 0
    for t in $tokens
        if test $skip -eq 1
            set skip 0
            continue
        end
        if test $only_pos -eq 0
            if test "$t" = --
                set only_pos 1
                continue
            end
            if string match -q -- '-*' $t
                if not string match -q -- '*=*' $t; and contains -- $t $argv
                    set skip 1
                end
                continue
            end
        end
        echo $t
    end
end

function __chronicle_append_positionals
    __chronicle_positionals --framing --segment-size --max-bytes --max-age --max-records --keep-free --sync
end

function __chronicle_tail_positionals
    __chronicle_positionals -n --lines --from-seq -c --count --reader --format --template --since --from-time --until-seq --until --until-time --timeout --exec --batch --batch-bytes --linger --retries
end

function __chronicle_readers_positionals
    __chronicle_positionals --watch --max-lag --warn-lag --max-age --warn-age --max-idle --warn-idle --min-free --warn-free --at --to-seq --to-time --stale-after
end

function __chronicle_queue_positionals
    __chronicle_positionals --max-bytes --max-age --max-records --keep-free
end

# True when $argv[1] positional arguments come before the cursor (for command $argv[2]).
function __chronicle_npos
    test (count (__chronicle_$argv[2]_positionals)) -eq $argv[1]
end

# True when chronicle-readers' subcommand is one of $argv and its NAME is still missing.
function __chronicle_readers_needs_name
    set -l pos (__chronicle_readers_positionals)
    test (count $pos) -eq 2; and contains -- $pos[2] $argv
end

# True when chronicle-readers' subcommand is one of $argv.
function __chronicle_readers_sub
    set -l pos (__chronicle_readers_positionals)
    test (count $pos) -ge 2; and contains -- $pos[2] $argv
end

# True when chronicle-queue's subcommand (its first positional) is one of $argv.
function __chronicle_queue_sub
    set -l pos (__chronicle_queue_positionals)
    test (count $pos) -ge 1; and contains -- $pos[1] $argv
end

# Reader names of the queue on the command line (readers/*.cursor, without ~anon.*).
# The queue may come after the cursor, so the whole command line is searched.
function __chronicle_reader_names
    set -l cmd $argv[1]
    set -l all (commandline -op)
    set -l queue
    # The first positional of the whole line (not only before the cursor).
    set -l argopts
    switch $cmd
        case tail
            set argopts -n --lines --from-seq -c --count --reader --format --template --since --from-time --until-seq --until --until-time --timeout --exec --batch --batch-bytes --linger --retries
        case readers
            set argopts --watch --max-lag --warn-lag --max-age --warn-age --max-idle --warn-idle --min-free --warn-free --at --to-seq --to-time --stale-after
    end
    set -e all[1]
    set -l skip 0
    for t in $all
        if test $skip -eq 1
            set skip 0
            continue
        end
        if string match -q -- '-*' $t
            if not string match -q -- '*=*' $t; and contains -- $t $argopts
                set skip 1
            end
            continue
        end
        set queue $t
        break
    end
    test -n "$queue"; or return
    set queue (string replace -r '^~/' "$HOME/" -- $queue)
    for f in $queue/readers/*.cursor
        set -l n (string replace -r '\.cursor$' '' -- (basename $f))
        string match -q -- '~anon.*' $n; and continue
        echo $n
    end
end

# --- chronicle-append
complete -c chronicle-append -f
complete -c chronicle-append -s h -l help -d 'Print help and exit'
complete -c chronicle-append -l version -d 'Print version and exit'
complete -c chronicle-append -l framing -x -a 'lines\t"one record per line (default)" nul\t"NUL-terminated records" len32\t"4-byte big-endian length, then the bytes" raw\t"the whole input is one record"' -d 'Input framing'
complete -c chronicle-append -s z -l null -d 'Records end with NUL (--framing nul)'
complete -c chronicle-append -l segment-size -x -a '16K 1M 16M 64M 256M 1G' -d 'Segment size when creating the queue (default 64M)'
complete -c chronicle-append -l max-bytes -x -a '256M 1G 10G 100G' -d 'Retention when creating the queue: at most SIZE of segments'
complete -c chronicle-append -l max-age -x -a '1h 1d 7d 30d' -d 'Retention when creating the queue: delete segments older than DUR'
complete -c chronicle-append -l max-records -x -a '100000 1000000 10000000' -d 'Retention when creating the queue: at most N records'
complete -c chronicle-append -l keep-free -x -a '10% 15% 20% 1G 10G' -d 'Retention when creating the queue: keep SIZE or PCT% free'
complete -c chronicle-append -l print-seq -d 'Print the sequence number of each record'
complete -c chronicle-append -l atomic -d 'All of the input becomes visible at once, or none of it'
complete -c chronicle-append -l exclusive -d 'Be the only writer of the queue'
complete -c chronicle-append -l wait -d 'Wait for the queue (--wait=DUR: at most DUR)'
complete -c chronicle-append -l sync -x -a 'none\t"page cache only (default)" batch\t"msync after each read" every\t"msync after each record"' -d 'Durability'
complete -c chronicle-append -l wake-via-fifo -d 'Wake followers through their FIFO'
complete -c chronicle-append -n '__chronicle_npos 0 append' -x -a '(__fish_complete_directories (commandline -ct) "queue directory")'
complete -c chronicle-append -n 'not __chronicle_npos 0 append' -F -d 'input file'

# --- chronicle-tail
complete -c chronicle-tail -f
complete -c chronicle-tail -s h -l help -d 'Print help and exit'
complete -c chronicle-tail -l version -d 'Print version and exit'
complete -c chronicle-tail -s n -l lines -x -d 'The last N records, +N from the N-th, all'
complete -c chronicle-tail -l from-start -d 'Start at the first record'
complete -c chronicle-tail -l from-seq -x -d 'Start at sequence number S'
complete -c chronicle-tail -s c -l count -x -d 'Stop after N records'
complete -c chronicle-tail -l reader -x -a '(__chronicle_reader_names tail)' -d 'Durable cursor of reader NAME'
complete -c chronicle-tail -l skip-expired -d 'Continue at the first available record if the start was deleted by retention'
complete -c chronicle-tail -l show-seq -d 'Prefix each record with its sequence number and a tab'
complete -c chronicle-tail -l format -x -a 'lines\t"payload and newline (default)" nul\t"payload and NUL" len32\t"4-byte big-endian length, then the payload" raw\t"payloads back to back"' -d 'Output framing'
complete -c chronicle-tail -s z -l null -d 'End records with NUL (--format nul)'
complete -c chronicle-tail -l json -d 'One JSON object per record (NDJSON)'
complete -c chronicle-tail -l template -x -d 'Template: %q seq, %t time, %T ns, %l length, %s payload'
complete -c chronicle-tail -l since -x -a 'today yesterday now -1h -10m 1h 1d' -d 'Start at the first record at or after WHEN (2026-11-29 14:00, 14:07, 1h ago)'
complete -c chronicle-tail -l from-time -x -d 'Start at the first record at or after TIME'
complete -c chronicle-tail -l until-seq -x -d 'Stop before sequence number S'
complete -c chronicle-tail -l until -x -a 'today yesterday now -1h -10m' -d 'Stop before the first record at or after WHEN'
complete -c chronicle-tail -l until-time -x -d 'The same as --until'
complete -c chronicle-tail -s r -l reverse -d 'Newest first'
complete -c chronicle-tail -l utc -d 'Print times in UTC (the default)'
complete -c chronicle-tail -l localtime -d 'Print times in local time'
complete -c chronicle-tail -s f -l follow -d 'Keep waiting for new records'
complete -c chronicle-tail -s F -d 'The same as --follow --retry'
complete -c chronicle-tail -l retry -d 'Wait for the queue to appear; follow the new one when it is replaced'
complete -c chronicle-tail -l until-writer-exits -d 'With --follow: stop once no writer holds the queue'
complete -c chronicle-tail -l timeout -x -a '0 500ms 10s 1m 5m 1h 1d' -d 'With --follow: give up after DUR without a record (0: once caught up)'
complete -c chronicle-tail -l exec -x -a '(__fish_complete_command)' -d 'Hand the records to CMD in batches; the cursor moves when it exits 0'
complete -c chronicle-tail -l batch -x -d 'With --exec: at most N records per batch (default 1000)'
complete -c chronicle-tail -l batch-bytes -x -a '64K 1M 16M' -d 'With --exec: at most SIZE bytes per batch (default 1M)'
complete -c chronicle-tail -l linger -x -a '500ms 10s 1m 5m 1h 1d' -d 'With --exec and --follow: let a batch wait up to DUR for more'
complete -c chronicle-tail -l retries -x -d 'With --exec: run a failing batch again up to N times (default 8)'
complete -c chronicle-tail -x -a '(__fish_complete_directories (commandline -ct) "queue directory")'
complete -c chronicle-tail -s q -l quiet -d 'With several queues: no headers'
complete -c chronicle-tail -s v -l verbose -d 'A header even for one queue'

# --- chronicle-readers
complete -c chronicle-readers -f
complete -c chronicle-readers -s h -l help -d 'Print help and exit'
complete -c chronicle-readers -l version -d 'Print version and exit'
complete -c chronicle-readers -l json -d 'One JSON document (chronicle.readers/v1)'
complete -c chronicle-readers -l ndjson -d 'One JSON line per reader (chronicle.reader/v1)'
complete -c chronicle-readers -l watch -x -a '1 2 5 10' -d 'Redraw every SECS seconds'
complete -c chronicle-readers -l check -d 'Monitoring-plugin check (exit 0/1/2/3)'
complete -c chronicle-readers -l max-lag -x -d 'With --check: CRITICAL above N records of lag'
complete -c chronicle-readers -l warn-lag -x -d 'With --check: WARNING above N records of lag'
complete -c chronicle-readers -l max-age -x -a '10s 1m 5m 1h 1d' -d 'With --check: CRITICAL when the oldest unread record is older'
complete -c chronicle-readers -l warn-age -x -a '10s 1m 5m 1h 1d' -d 'With --check: WARNING when the oldest unread record is older'
complete -c chronicle-readers -l max-idle -x -a '1m 5m 15m 1h' -d 'With --check: CRITICAL when the newest record is older'
complete -c chronicle-readers -l warn-idle -x -a '1m 5m 15m 1h' -d 'With --check: WARNING when the newest record is older'
complete -c chronicle-readers -l min-free -x -a '5% 10% 1G 10G' -d 'With --check: CRITICAL below SIZE or N% free'
complete -c chronicle-readers -l warn-free -x -a '5% 10% 1G 10G' -d 'With --check: WARNING below SIZE or N% free'
complete -c chronicle-readers -l require-writer -d 'With --check: CRITICAL when no writer is running'
complete -c chronicle-readers -l prometheus -d 'Prometheus text format'
complete -c chronicle-readers -n '__chronicle_npos 0 readers' -x -a '(__fish_complete_directories (commandline -ct) "queue directory")'
complete -c chronicle-readers -n '__chronicle_npos 1 readers' -x -a 'list\t"list the queue and its readers (the default)" show\t"show one reader" create\t"create a named reader" delete\t"delete a named reader" reset\t"move a reader" gc\t"remove what dead followers left behind"'
complete -c chronicle-readers -n '__chronicle_readers_needs_name show delete reset' -x -a '(__chronicle_reader_names readers)'
complete -c chronicle-readers -n '__chronicle_readers_sub create' -l at -x -a 'start end' -d 'Where the reader starts (default start)'
complete -c chronicle-readers -n '__chronicle_readers_sub reset' -l to-seq -x -d 'To sequence number S'
complete -c chronicle-readers -n '__chronicle_readers_sub reset' -l to-time -x -d 'To the first record at or after TIME'
complete -c chronicle-readers -n '__chronicle_readers_sub reset' -l to-start -d 'To the first record'
complete -c chronicle-readers -n '__chronicle_readers_sub reset' -l to-end -d 'Past the last record'
complete -c chronicle-readers -n '__chronicle_readers_sub reset gc' -l dry-run -d 'Show what would change, change nothing'
complete -c chronicle-readers -n '__chronicle_readers_sub gc' -l stale-after -x -a '1d 7d 30d' -d 'Also delete named readers unused for DUR'

# --- chronicle-queue SUBCOMMAND QUEUE [options]: the subcommand comes first
complete -c chronicle-queue -f
complete -c chronicle-queue -s h -l help -d 'Print help and exit'
complete -c chronicle-queue -n '__chronicle_npos 0 queue' -l version -d 'Print version and exit'
complete -c chronicle-queue -n '__chronicle_npos 0 queue' -x -a 'info\t"what the queue holds and what keeps it" set\t"change the retention limits" retain\t"apply the retention limits now" verify\t"check the structure, report each problem"'
complete -c chronicle-queue -n '__chronicle_npos 1 queue; and __chronicle_queue_sub info set retain verify' -x -a '(__fish_complete_directories (commandline -ct) "queue directory")'
complete -c chronicle-queue -n '__chronicle_queue_sub info retain verify' -l json -d 'One JSON object (info: chronicle.queue/v1, retain: chronicle.retain/v1, verify: chronicle.verify/v1)'
complete -c chronicle-queue -n '__chronicle_queue_sub set' -l max-bytes -x -a 'none 256M 1G 10G 100G' -d 'Delete the oldest segments while they take more than SIZE'
complete -c chronicle-queue -n '__chronicle_queue_sub set' -l max-age -x -a 'none 1h 1d 7d 30d' -d 'Delete segments whose newest record is older than DUR'
complete -c chronicle-queue -n '__chronicle_queue_sub set' -l max-records -x -a 'none 100000 1000000 10000000' -d 'Delete the oldest segments while there are more than N records'
complete -c chronicle-queue -n '__chronicle_queue_sub set' -l keep-free -x -a 'none 10% 15% 20% 1G 10G' -d 'Delete the oldest segments while less than SIZE or PCT% is free'
complete -c chronicle-queue -n '__chronicle_queue_sub set' -l hard -d 'Hard limits: delete segments named readers have not finished'
complete -c chronicle-queue -n '__chronicle_queue_sub set' -l soft -d 'Soft limits (default): keep segments named readers have not finished'
complete -c chronicle-queue -n '__chronicle_queue_sub retain' -l dry-run -d 'Print what would be deleted, delete nothing'
complete -c chronicle-queue -n '__chronicle_queue_sub verify' -l repair -d 'Repair first: rewrite wrong index slots, clear what follows the last committed record'

# --- chronicle-bridge
complete -c chronicle-bridge -f
complete -c chronicle-bridge -a '(__fish_complete_directories) redis://127.0.0.1:6379/' -d 'Queue directory or redis://HOST:PORT/STREAM'
complete -c chronicle-bridge -s h -l help -d 'Print help and exit'
complete -c chronicle-bridge -l version -d 'Print version and exit'
complete -c chronicle-bridge -s f -l follow -d 'Keep going: wait for new records or entries'
complete -c chronicle-bridge -l reader -x -d 'Out of a queue: the named reader (default bridge)'
complete -c chronicle-bridge -l durable -x -d 'Into a queue from NATS: the durable pull consumer (default bridge)'
complete -c chronicle-bridge -l group -x -d 'Into a queue: the consumer group (default bridge)'
complete -c chronicle-bridge -l consumer -x -d 'Into a queue: the consumer name (default bridge)'
complete -c chronicle-bridge -l field -x -d 'The field that holds the bytes (default data)'
complete -c chronicle-bridge -l batch -x -a '100 1000 10000' -d 'Records per round trip'
complete -c chronicle-bridge -l max-len -x -d 'Trim the stream to about N entries'
complete -c chronicle-bridge -l create-stream -x -d 'NATS: create the JetStream stream for the subject'
complete -c chronicle-bridge -l duplicate-window -x -d 'NATS: duplicate window of the created stream'
complete -c chronicle-bridge -l replicas -x -a '1 2 3 4 5' -d 'With --create-stream: the stream replicas (default 1)'
complete -c chronicle-bridge -l retry-for -x -a '500ms 10s 1m 5m 1h 1d' -d 'Give up on an unreachable server after DUR'
complete -c chronicle-bridge -l io-timeout -x -a '500ms 10s 1m' -d 'Connect and reply timeout'
complete -c chronicle-bridge -s v -l verbose -d 'Say what was done at the end'
