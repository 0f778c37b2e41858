#!/usr/bin/env bash
# devstack.sh: the whole platform on one machine, for development and integration tests.
#
#   scripts/devstack.sh up       start whatever is not running: es-broker, PostgreSQL, the ledger
#                                (es-accounts, es-transfers, es-projector), the shop (es-users,
#                                es-catalog, es-orders, es-payments, es-shop-projector), the
#                                saga coordinator (es-sagas) and es-query; wait for /health
#   scripts/devstack.sh down     stop services (SIGTERM, 10 s, then KILL), es-broker, PostgreSQL;
#                                data is kept
#   scripts/devstack.sh status   each component running or stopped, with its pid
#   scripts/devstack.sh reset    down, then delete the data folder (other stacks' data folders
#                                inside it, such as .data/test-*, are kept)
#   scripts/devstack.sh start NAME | stop NAME    one component (es-broker, postgresql, es-*;
#                                es-broker listens where it did before, or, that port taken,
#                                elsewhere, and then restarts the services still running)
#
# Environment: ES_DATA (default ./.data), ES_HTTP_PORT (es-query, default 8080), ES_PARTITIONS
# (es-broker), ES_PG_PORT (scripts/pg.sh), ES_BIN (programs, default <repo>/bin),
# ES_START_TIMEOUT (seconds to wait for the broker and for /health, default 60),
# ES_SERVICES (the services `up` starts, space separated, default all of them: the ledger's
# benchmark runs without the shop, for instance),
# ES_STOP_TIMEOUT (seconds a service gets after SIGTERM, default 10; es-broker gets 3 times that).
# ES_BACKGROUND_NICE (default here 19: the saga coordinator, which nothing waits on, and its
# PostgreSQL backend, which does most of its work, yield the two cores to the sagas' services;
# lib/nice.h).
#
# Files: $ES_DATA/log/<name>.log (stdout and stderr, appended), $ES_DATA/run/<name>.pid,
# $ES_DATA/run/es-query.port, $ES_DATA/broker.addr (written by es-broker when it is ready),
# $ES_DATA/pg.conninfo (scripts/pg.sh).
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail

ES_PROG=devstack
# shellcheck source=scripts/common.sh
. "$(dirname "$0")/common.sh"

ALL_SERVICES=(es-accounts es-transfers es-projector es-users es-catalog es-orders es-payments
    es-shop-projector es-sagas es-query)
if [ -n "${ES_SERVICES:-}" ]; then
    read -r -a SERVICES <<<"$ES_SERVICES"
else
    SERVICES=("${ALL_SERVICES[@]}")
fi
COMPONENTS=(es-broker postgresql "${SERVICES[@]}")
ES_BIN="${ES_BIN:-$ES_ROOT/bin}"
START_TIMEOUT="${ES_START_TIMEOUT:-60}"
STOP_TIMEOUT="${ES_STOP_TIMEOUT:-10}"
export ES_BACKGROUND_NICE="${ES_BACKGROUND_NICE:-19}"
PG_SH="$ES_ROOT/scripts/pg.sh"

usage() {
    # the header comment, whole: from line 2 to the first line that is not a comment
    awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0" >&2
    exit 2
}

# One devstack.sh at a time per data folder. Descriptor 8 is closed in everything we start, or a
# long-lived child would keep the lock.
DS_LOCKED=''
ds_lock() {
    [ -z "$DS_LOCKED" ] || return 0
    es_data_init
    exec 8>"$ES_RUN_DIR/devstack.lock"
    flock -w 300 8 || es_die "timed out waiting for another scripts/devstack.sh on $ES_DATA"
    DS_LOCKED=1
}

pidfile() { printf '%s/%s.pid\n' "$ES_RUN_DIR" "$1"; }
logfile() { printf '%s/%s.log\n' "$ES_LOG_DIR" "$1"; }

# proc_pid NAME: pid of a running component, or fail (stale pid files are removed).
proc_pid() {
    if [ "$1" = postgresql ]; then
        [ -f "$ES_DATA/pg/postmaster.pid" ] || return 1
        bash "$PG_SH" status >/dev/null 2>&1 8>&- || return 1
        head -n 1 -- "$ES_DATA/pg/postmaster.pid"
        return 0
    fi
    es_pid_get "$1" "$(pidfile "$1")"
}

query_port() {
    local port
    if port="$(es_read_file "$ES_RUN_DIR/es-query.port" 2>/dev/null)"; then
        printf '%s\n' "$port"
    else
        printf '%s\n' "${ES_HTTP_PORT:-8080}"
    fi
}

# launch NAME: start bin/NAME in the background, in a session of its own (so a Ctrl-C or a hang-up
# meant for the shell that ran us does not reach it), with stdout and stderr appended to its log.
# The child writes its own pid before it becomes the program, so the pid file is exact.
launch() {
    local name="$1" bin="$ES_BIN/$1" pf log deadline pid='' comm
    pf="$(pidfile "$name")"
    log="$(logfile "$name")"
    [ -x "$bin" ] || es_die "$bin is not built: run make"
    rm -f -- "$pf"
    printf '==== %s devstack: starting %s ====\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$name" >>"$log"
    # shellcheck disable=SC2016 # $0 and $$ belong to the inner shell
    setsid bash -c 'printf "%s\n" "$$" >"$0.tmp" && mv -f "$0.tmp" "$0" && exec "$@"' \
        "$pf" "$bin" </dev/null >>"$log" 2>&1 8>&- 9>&- &
    # Wait until the pid file names a process that has become NAME (or died trying).
    deadline=$((SECONDS + 5))
    while :; do
        if [ -z "$pid" ] && [ -s "$pf" ]; then
            pid="$(es_read_file "$pf")" || pid=''
        fi
        if [ -n "$pid" ]; then
            comm="$(ps -o comm= -p "$pid" 2>/dev/null)" || comm=''
            [ "$comm" = "${name:0:15}" ] && break
            if [ -z "$comm" ]; then
                rm -f -- "$pf"
                es_log_tail "$log"
                es_die "$name exited at once (log: $log)"
            fi
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            es_die "$name did not start within 5 s (log: $log)"
        fi
        sleep 0.05
    done
    LAUNCHED_PID="$pid"
}

# check_alive NAME: fail with the log tail if NAME has died since we started it.
check_alive() {
    if ! proc_pid "$1" >/dev/null; then
        es_log_tail "$(logfile "$1")"
        es_die "$1 exited during start-up (log: $(logfile "$1"))"
    fi
}

# restart_stale_services OLD_ADDRESS NEW_ADDRESS: the broker had to listen elsewhere (its port
# was taken): the services still running keep retrying OLD_ADDRESS, where another program now
# listens and which they refuse (lib/devgate.c), so they are restarted (es-query reads
# PostgreSQL only). Services that had stopped start with `up`.
restart_stale_services() {
    local name
    local -a stale=()
    for name in "${ALL_SERVICES[@]}"; do
        if [ "$name" != es-query ] && proc_pid "$name" >/dev/null; then
            stale+=("$name")
        fi
    done
    es_warn "es-broker could not listen at $1 again (taken): it listens at $2 now"
    if [ "${#stale[@]}" -gt 0 ]; then
        es_info "restarting the services still talking to $1: ${stale[*]}"
        stop_procs "$STOP_TIMEOUT" "${stale[@]}"
        for name in "${stale[@]}"; do
            start_service "$name"
        done
    fi
    es_warn "other programs started before it must be started again (esctl replay --follow stops, saying so)"
}

start_broker() {
    local pid addr_file="$ES_DATA/broker.addr" deadline
    if pid="$(proc_pid es-broker)"; then
        es_info "es-broker already running (pid $pid)"
        return 0
    fi
    # Left behind by a broker that was killed: it would make us think the new one is ready.
    rm -f -- "$addr_file"
    # Where the last run listened: the broker listens there again when it can, and running
    # services reconnect by themselves; when it cannot, they are restarted (below).
    local previous=''
    previous="$(cat -- "$ES_DATA/broker.ports" 2>/dev/null || true)"
    launch es-broker
    pid="$LAUNCHED_PID"
    deadline=$((SECONDS + START_TIMEOUT))
    until [ -s "$addr_file" ]; do
        check_alive es-broker
        if [ "$SECONDS" -ge "$deadline" ]; then
            es_log_tail "$(logfile es-broker)"
            es_die "es-broker did not write $addr_file within $START_TIMEOUT s"
        fi
        sleep 0.1
    done
    local now
    now="$(cat -- "$addr_file")"
    es_info "es-broker started (pid $pid) at $now"
    if [ -n "$previous" ] && [ "$previous" != "$now" ]; then
        restart_stale_services "$previous" "$now"
    fi
}

start_postgresql() {
    bash "$PG_SH" start 8>&- || es_die "PostgreSQL did not start"
}

start_service() {
    local name="$1" pid port
    if pid="$(proc_pid "$name")"; then
        if [ "$name" = es-query ]; then
            port="$(query_port)"
            if [ -n "${ES_HTTP_PORT:-}" ] && [ "$ES_HTTP_PORT" != "$port" ]; then
                es_warn "es-query already runs on port $port; ES_HTTP_PORT=$ES_HTTP_PORT ignored"
            fi
        fi
        es_info "$name already running (pid $pid)"
        return 0
    fi
    [ -s "$ES_DATA/broker.addr" ] || es_die "$name needs the broker: start es-broker first (up)"
    [ -s "$ES_DATA/pg.conninfo" ] || es_die "$name needs PostgreSQL: start postgresql first (up)"
    if [ "$name" = es-query ]; then
        port="${ES_HTTP_PORT:-8080}"
        case "$port" in
        '' | *[!0-9]*) es_die "ES_HTTP_PORT must be a port number, not '$port'" ;;
        esac
        if es_port_in_use "$port"; then
            es_die "port $port is in use by another program: set ES_HTTP_PORT to a free port"
        fi
        export ES_HTTP_PORT="$port"
        es_write_atomic "$ES_RUN_DIR/es-query.port" "$port"
    fi
    launch "$name"
    es_info "$name started (pid $LAUNCHED_PID)"
}

wait_health() {
    local url deadline name
    url="http://127.0.0.1:$(query_port)/health"
    deadline=$((SECONDS + START_TIMEOUT))
    until es_http_ok "$url"; do
        for name in "${SERVICES[@]}"; do
            check_alive "$name"
        done
        if [ "$SECONDS" -ge "$deadline" ]; then
            es_log_tail "$(logfile es-query)"
            es_die "es-query did not answer $url within $START_TIMEOUT s"
        fi
        sleep 0.2
    done
}

start_one() {
    case "$1" in
    es-broker) start_broker ;;
    postgresql) start_postgresql ;;
    es-query)
        start_service es-query
        wait_health
        ;;
    es-*) start_service "$1" ;;
    *) es_die "unknown component '$1' (one of: es-broker postgresql ${ALL_SERVICES[*]})" ;;
    esac
}

# stop_procs TIMEOUT NAME...: SIGTERM to each running NAME at once, wait up to TIMEOUT seconds for
# all of them, then SIGKILL whatever is left, with a warning (a killed service may leave work for
# its next start to redo; a killed broker loses what it had not journaled).
stop_procs() {
    local timeout="$1" name pid deadline
    shift
    local -a names=() pids=()
    for name in "$@"; do
        if pid="$(proc_pid "$name")"; then
            kill -TERM "$pid" 2>/dev/null || true
            names+=("$name")
            pids+=("$pid")
        fi
    done
    [ "${#pids[@]}" -gt 0 ] || return 0
    es_info "stopping ${names[*]}"
    deadline=$((SECONDS + timeout))
    local i left
    while :; do
        left=0
        for i in "${!pids[@]}"; do
            if es_pid_wait_gone "${pids[$i]}" 0; then
                continue
            fi
            left=1
        done
        [ "$left" -eq 1 ] || break
        if [ "$SECONDS" -ge "$deadline" ]; then
            for i in "${!pids[@]}"; do
                if ! es_pid_wait_gone "${pids[$i]}" 0; then
                    es_warn "${names[$i]} (pid ${pids[$i]}) did not stop within $timeout s of SIGTERM: killing it"
                    kill -KILL "${pids[$i]}" 2>/dev/null || true
                    es_pid_wait_gone "${pids[$i]}" 5 || es_warn "${names[$i]} (pid ${pids[$i]}) survived SIGKILL"
                fi
            done
            break
        fi
        sleep 0.1
    done
    for name in "${names[@]}"; do
        rm -f -- "$(pidfile "$name")"
        [ "$name" != es-query ] || rm -f -- "$ES_RUN_DIR/es-query.port"
    done
}

stop_one() {
    case "$1" in
    es-broker)
        stop_procs $((STOP_TIMEOUT * 3)) es-broker
        # A broker that was killed could not remove its address: nobody listens there any more.
        if ! proc_pid es-broker >/dev/null; then
            rm -f -- "$ES_DATA/broker.addr"
        fi
        ;;
    postgresql)
        if [ -d "$ES_DATA/pg" ]; then
            bash "$PG_SH" stop 8>&- || es_die "PostgreSQL did not stop"
        fi
        ;;
    es-*) stop_procs "$STOP_TIMEOUT" "$1" ;;
    *) es_die "unknown component '$1' (one of: es-broker postgresql ${ALL_SERVICES[*]})" ;;
    esac
}

print_table() {
    local name pid state where
    printf '\n%s%-18s %-8s %-8s %s%s\n' "$ES_C_BOLD" COMPONENT STATE PID WHERE "$ES_C_OFF"
    for name in es-broker postgresql "${ALL_SERVICES[@]}"; do
        if pid="$(proc_pid "$name")"; then
            state="${ES_C_GREEN}running${ES_C_OFF}"
        else
            pid='-'
            state="${ES_C_RED}stopped${ES_C_OFF}"
        fi
        case "$name" in
        es-broker) where="$(cat -- "$ES_DATA/broker.addr" 2>/dev/null || echo '-')" ;;
        postgresql)
            where="$(cat -- "$ES_DATA/pg.conninfo" 2>/dev/null || echo '-')"
            ;;
        es-query)
            where="http://127.0.0.1:$(query_port)/"
            if [ "$pid" != - ] && ! es_http_ok "${where}health"; then
                where="$where (/health not answering)"
            fi
            ;;
        *) where="log/$name.log" ;;
        esac
        # The colour codes are invisible: pad the state by hand.
        printf '%-18s %s%*s %-8s %s\n' "$name" "$state" $((8 - 7)) '' "$pid" "$where"
    done
    printf '\ndata:  %s\nlogs:  %s/\n' "$ES_DATA" "$ES_LOG_DIR"
}

ds_up_failed() {
    if [ "$1" -ne 0 ]; then
        es_info "what did start is still running: ES_DATA=$ES_DATA scripts/devstack.sh status (or down)"
    fi
}

cmd_up() {
    local name
    ds_lock
    if [ -n "${KAFKA_BROKERS:-}" ] || [ -n "${ES_PG:-}" ]; then
        es_warn "KAFKA_BROKERS / ES_PG are ignored: the dev stack runs its own broker and PostgreSQL"
    fi
    unset KAFKA_BROKERS ES_PG
    # Check what can be checked before starting anything.
    for name in es-broker "${SERVICES[@]}"; do
        [ -x "$ES_BIN/$name" ] || es_die "$ES_BIN/$name is not built: run make"
    done
    if ! proc_pid es-query >/dev/null && es_port_in_use "${ES_HTTP_PORT:-8080}"; then
        es_die "port ${ES_HTTP_PORT:-8080} (es-query) is in use by another program: set ES_HTTP_PORT to a free port"
    fi
    trap 'ds_up_failed $?' EXIT
    for name in "${COMPONENTS[@]}"; do
        case "$name" in
        es-query) start_service es-query ;;
        *) start_one "$name" ;;
        esac
    done
    if [[ " ${SERVICES[*]} " == *" es-query "* ]]; then
        wait_health
    fi
    for name in "${SERVICES[@]}"; do
        check_alive "$name"
    done
    trap - EXIT
    print_table
    printf 'psql:  ES_DATA=%q scripts/pg.sh psql\n' "$ES_DATA"
    printf 'stop:  ES_DATA=%q scripts/devstack.sh down   (make down; make reset also deletes the data)\n\n' "$ES_DATA"
}

cmd_down() {
    if [ ! -d "$ES_DATA" ]; then
        es_info "nothing to stop: $ES_DATA does not exist"
        return 0
    fi
    ds_lock
    stop_procs "$STOP_TIMEOUT" "${ALL_SERVICES[@]}"
    stop_one es-broker
    stop_one postgresql
    es_info "stopped; data kept in $ES_DATA"
}

cmd_status() {
    print_table
    printf '\n'
}

cmd_reset() {
    if [ "$ES_DATA_RAW" = set-but-empty ]; then
        es_die "refusing to reset: ES_DATA is set but empty"
    fi
    es_data_resolve
    case "$ES_DATA" in
    / | "$ES_ROOT" | "${HOME:-/}" | "$(dirname "$ES_ROOT")")
        es_die "refusing to reset: ES_DATA is $ES_DATA"
        ;;
    esac
    if [ ! -e "$ES_DATA" ]; then
        es_info "nothing to reset: $ES_DATA does not exist"
        return 0
    fi
    if [ "$ES_DATA" != "$ES_ROOT/.data" ] && [ ! -e "$ES_DATA/.es-data" ] &&
        [ -n "$(ls -A -- "$ES_DATA")" ]; then
        es_die "refusing to reset: $ES_DATA does not look like an es data folder (no .es-data marker)"
    fi
    cmd_down
    # Other stacks' data folders inside this one (the integration tests' .data/test-*, which may
    # be running right now) are theirs: keep them.
    local entry kept=0
    for entry in "$ES_DATA"/* "$ES_DATA"/.[!.]* "$ES_DATA"/..?*; do
        [ -e "$entry" ] || [ -L "$entry" ] || continue
        if [ -d "$entry" ] && [ ! -L "$entry" ] && [ -e "$entry/.es-data" ]; then
            kept=$((kept + 1))
            continue
        fi
        rm -rf -- "$entry"
    done
    if [ "$kept" -gt 0 ]; then
        rm -f -- "$ES_DATA/.es-data"
        es_info "deleted the data in $ES_DATA; kept $kept data folder(s) of other stacks inside it"
    else
        rmdir -- "$ES_DATA" 2>/dev/null || rm -rf -- "$ES_DATA"
        es_info "deleted $ES_DATA"
    fi
}

[ $# -ge 1 ] || usage
cmd="$1"
shift
ES_DATA_RAW="${ES_DATA-unset}"
[ -n "$ES_DATA_RAW" ] || ES_DATA_RAW=set-but-empty
es_data_resolve
case "$cmd" in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
reset) cmd_reset ;;
start)
    [ $# -eq 1 ] || usage
    ds_lock
    unset KAFKA_BROKERS ES_PG
    start_one "$1"
    ;;
stop)
    [ $# -eq 1 ] || usage
    ds_lock
    stop_one "$1"
    ;;
*) usage ;;
esac
