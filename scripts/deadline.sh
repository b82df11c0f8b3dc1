# Sourced by scripts/gpu-table2.sh and scripts/gpu-seeds.sh.
# stop_at_deadline SECONDS GRACE PID...: wait until every PID has ended or SECONDS have passed, then stop the rest:
# SIGTERM (a training run stops after its current iteration, with a checkpoint), SIGKILL GRACE seconds later.
stop_at_deadline() {
    local end=$((SECONDS + $1)) grace=$2 p n
    shift 2
    [ $# -gt 0 ] || return 0
    while [ $SECONDS -lt $end ]; do
        n=0
        for p in "$@"; do kill -0 "$p" 2>/dev/null && n=$((n + 1)); done
        [ $n -gt 0 ] || break
        sleep 5
    done
    for p in "$@"; do kill -TERM "$p" 2>/dev/null; done
    sleep "$grace"
    for p in "$@"; do kill -KILL "$p" 2>/dev/null; done
    wait 2>/dev/null
}
