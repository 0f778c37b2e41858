# shellcheck shell=bash
# lib.sh: the integration-test harness, sourced by tests/integration/test_*.sh (and soak_*.sh).
#
# A test is a bash script that sources this file, calls stack_start, drives the platform through
# esctl, http and sql, and checks invariants with assert_eq / wait_until / fail / pass:
#
#     #!/usr/bin/env bash
#     . "$(dirname "$0")/lib.sh"
#     stack_start
#     esctl send ...
#     wait_until 30 '[ "$(sql "SELECT count(*) FROM accounts")" = 2 ]'
#     assert_eq 0 "$(sql "SELECT sum(balance) FROM accounts")" "money is conserved"
#
# Each test gets its own stack: its own data folder (.data/test-<name>-<pid> in the repo, which
# the postgres user can reach), its own PostgreSQL port and es-query port. On exit, whatever the
# outcome, the stack is stopped and the folder removed, unless ES_KEEP=1 (then it is kept and
# named). On failure the tail of every log is printed first.
#
# Sourcing this file turns on `set -Eeuo pipefail` and installs the EXIT, INT, TERM and ERR traps:
# do not set your own EXIT trap; use `at_exit 'command'` for extra cleanup.
#
# Messages go to stderr, so that `x="$(http GET /path)"` captures data only.

set -Eeuo pipefail

T_FILE="$(basename "$0")"
T_NAME="${T_FILE%.sh}"
T_NAME="${T_NAME#test_}"
ES_PROG="$T_FILE"
# shellcheck source=scripts/common.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)/scripts/common.sh"

ES_BIN="${ES_BIN:-$ES_ROOT/bin}"
# A test's cluster lives a minute or two and measures no latency: it skips the GiB of WAL
# segments scripts/pg.sh makes ready for a long-lived stack (~4 s and a GiB written to disk per
# test). test_pg_restart checks that making them ready works.
export ES_PG_WAL_READY_MB="${ES_PG_WAL_READY_MB:-0}"
T_DEVSTACK="$ES_ROOT/scripts/devstack.sh"
T_PSQL="/usr/lib/postgresql/15/bin/psql"
[ -x "$T_PSQL" ] || T_PSQL=psql
T_CHECKS=0
T_STACK_UP=''
T_STACK_DIR=''
T_AT_EXIT=()
T_START=$SECONDS

# ---- output --------------------------------------------------------------------------------

note() {
    printf '%s  .. %s%s\n' "$ES_C_DIM" "$*" "$ES_C_OFF" >&2
}

# pass MESSAGE: record one successful check.
pass() {
    T_CHECKS=$((T_CHECKS + 1))
    printf '  %sok%s %s\n' "$ES_C_GREEN" "$ES_C_OFF" "$*" >&2
}

# _t_line: the line of the test file that called into this library (or into a helper file).
_t_line() {
    local i
    for ((i = 1; i < ${#BASH_SOURCE[@]}; i++)); do
        if [ "${BASH_SOURCE[$i]##*/}" = "$T_FILE" ]; then
            printf '%s\n' "${BASH_LINENO[$((i - 1))]}"
            return 0
        fi
    done
    printf '?\n'
}

# fail MESSAGE: the test fails here (the EXIT trap cleans up).
fail() {
    printf '  %sFAIL%s %s %s(%s line %s)%s\n' "$ES_C_RED$ES_C_BOLD" "$ES_C_OFF" "$*" "$ES_C_DIM" \
        "$T_FILE" "$(_t_line)" "$ES_C_OFF" >&2
    T_FAILED_MSG="$*"
    exit 1
}

# assert_eq EXPECTED ACTUAL [WHAT]: pass if equal (as strings), else fail saying both.
assert_eq() {
    local what="${3:-value}"
    if [ "$1" = "$2" ]; then
        pass "$what = $1"
    else
        fail "$what: expected '$1', got '$2'"
    fi
}

# assert 'SHELL CONDITION' [WHAT]: pass if the condition holds now, else fail.
assert() {
    if eval "$1"; then
        pass "${2:-$1}"
    else
        fail "${2:-condition} does not hold: $1"
    fi
}

# wait_until TIMEOUT_S 'SHELL CONDITION': poll every 0.1 s until the condition holds. Returns 1
# (which fails the test under set -e) with a message after TIMEOUT_S seconds.
wait_until() {
    local timeout="$1" cond="$2" deadline start=$SECONDS
    deadline=$((SECONDS + timeout))
    while :; do
        if eval "$cond" >/dev/null 2>&1; then
            note "after $((SECONDS - start)) s: $cond"
            return 0
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            printf '  %stimed out%s after %s s waiting for: %s\n' "$ES_C_RED" "$ES_C_OFF" \
                "$timeout" "$cond" >&2
            return 1
        fi
        sleep 0.1
    done
}

# at_exit 'COMMAND': run COMMAND when the test exits, before the stack is stopped.
at_exit() {
    T_AT_EXIT+=("$1")
}

# probe_build DEST: compile tests/integration/broker_probe.c (a client of the dev broker that
# links only what it uses from build/libes.a) to DEST.
probe_build() {
    local cflags libs
    [ -f "$ES_ROOT/build/libes.a" ] || make -s -C "$ES_ROOT" build/libes.a >&2
    read -r -a cflags <<<"$(pkg-config --cflags rdkafka)"
    read -r -a libs <<<"$(pkg-config --libs rdkafka avro-c jansson libpq libevent)"
    cc -std=c17 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -O2 -I"$ES_ROOT/lib" "${cflags[@]}" \
        -o "$1" "$ES_ROOT/tests/integration/broker_probe.c" "$ES_ROOT/build/libes.a" \
        "${libs[@]}" -lpthread -lm -ldl || fail "could not build the broker probe"
}

# A bare dev broker, without PostgreSQL or services, for the broker's own tests:
# bare_broker_init NAME makes $T_TMP (removed at exit unless ES_KEEP=1) with the data folder
# $DATA (exported as ES_DATA) and builds the probe as $PROBE; bare_broker_start ARGS... starts
# es-broker ARGS on it in the background ($BROKER_PID, log in $T_TMP/broker.log) and waits for
# its address (a broker.addr left by a killed broker does not count: broker.pid must be the new
# one's); a broker still running at exit is killed.
bare_broker_init() {
    T_TMP="$(mktemp -d "/tmp/es-test-$1.XXXXXX")"
    DATA="$T_TMP/data"
    PROBE="$T_TMP/broker_probe"
    BROKER_PID=''
    at_exit _bare_broker_exit
    [ -x "$ES_BIN/es-broker" ] || fail "$ES_BIN/es-broker is missing: run make first"
    probe_build "$PROBE"
    export ES_DATA="$DATA"
    unset KAFKA_BROKERS ES_KAFKA_PROPS ES_PARTITIONS ES_BROKERS ES_TOPICS
}

bare_broker_start() {
    "$ES_BIN/es-broker" -d "$DATA" "$@" 2>>"$T_TMP/broker.log" &
    BROKER_PID=$!
    wait_until 60 "{ [ -s '$DATA/broker.addr' ] && [ \"\$(cat '$DATA/broker.pid')\" = $BROKER_PID ]; } || ! kill -0 $BROKER_PID" ||
        fail "es-broker did not publish its address"
    kill -0 "$BROKER_PID" 2>/dev/null || fail "es-broker exited at start (see $T_TMP/broker.log)"
}

_bare_broker_exit() {
    if [ -n "$BROKER_PID" ] && kill -0 "$BROKER_PID" 2>/dev/null; then
        kill -KILL "$BROKER_PID" 2>/dev/null || true
        wait "$BROKER_PID" 2>/dev/null || true
    fi
    if [ "${ES_KEEP:-0}" = 1 ]; then
        note "ES_KEEP=1: kept $T_TMP"
    else
        rm -rf -- "$T_TMP"
    fi
}

# free_port: a TCP port nobody listens on at 127.0.0.1 (pure bash: ss, else /dev/tcp).
free_port() {
    es_free_port
}

# ---- the stack -----------------------------------------------------------------------------

# stack_start: an isolated stack for this test, up and healthy. Exports ES_DATA, ES_HTTP_PORT,
# ES_PG_PORT. Set ES_PARTITIONS (or anything else the programs read) before calling it.
stack_start() {
    local out t0=$SECONDS
    [ -z "$T_STACK_UP" ] || return 0
    if [ -z "$T_STACK_DIR" ]; then
        T_STACK_DIR="$ES_ROOT/.data/test-$T_NAME-$$"
        rm -rf -- "$T_STACK_DIR"
        mkdir -p -- "$T_STACK_DIR"
        printf 'es platform data folder of test %s (pid %s)\n' "$T_FILE" "$$" >"$T_STACK_DIR/.es-data"
    fi
    export ES_DATA="$T_STACK_DIR"
    ES_PG_PORT="$(free_port)"
    ES_HTTP_PORT="$(free_port)"
    while [ "$ES_HTTP_PORT" = "$ES_PG_PORT" ]; do
        ES_HTTP_PORT="$(free_port)"
    done
    export ES_PG_PORT ES_HTTP_PORT
    unset KAFKA_BROKERS ES_PG
    T_STACK_UP=1
    note "starting stack in $ES_DATA (postgresql :$ES_PG_PORT, es-query :$ES_HTTP_PORT)"
    if ! out="$(bash "$T_DEVSTACK" up 2>&1)"; then
        printf '%s\n' "$out" | sed 's/^/    /' >&2
        fail "the stack did not start"
    fi
    note "stack up in $((SECONDS - t0)) s; broker $(cat -- "$ES_DATA/broker.addr")"
}

# stack_stop: stop every component (services, broker, PostgreSQL); the data folder stays until
# the test exits. Warnings (a service that had to be killed) are shown.
stack_stop() {
    local out rc=0
    [ -n "$T_STACK_UP" ] || return 0
    out="$(bash "$T_DEVSTACK" down 2>&1)" || rc=$?
    if [ "$rc" -ne 0 ]; then
        printf '%s\n' "$out" | sed 's/^/    /' >&2
        T_STACK_UP=''
        fail "the stack did not stop"
    fi
    printf '%s\n' "$out" | grep -i 'warning\|error' | sed 's/^/    /' >&2 || true
    T_STACK_UP=''
}

# _t_component NAME: accept accounts / es-accounts, broker, pg / postgres / postgresql.
_t_component() {
    case "$1" in
    broker | es-broker) echo es-broker ;;
    pg | postgres | postgresql) echo postgresql ;;
    es-*) echo "$1" ;;
    *) echo "es-$1" ;;
    esac
}

# svc_pid NAME: the pid of a running component, or fail.
svc_pid() {
    local name
    name="$(_t_component "$1")"
    if [ "$name" = postgresql ]; then
        head -n 1 -- "$ES_DATA/pg/postmaster.pid" 2>/dev/null
        return
    fi
    es_pid_get "$name" "$ES_DATA/run/$name.pid"
}

# svc_running NAME: true if NAME runs.
svc_running() {
    local pid
    pid="$(svc_pid "$1" 2>/dev/null)" || return 1
    [ -n "$pid" ] && es_pid_alive "$pid"
}

# svc_kill9 NAME: SIGKILL one component (a crash: no clean shutdown, no journaling) and wait
# until it is gone.
svc_kill9() {
    local name pid
    name="$(_t_component "$1")"
    pid="$(svc_pid "$name")" || fail "svc_kill9: $name is not running"
    [ -n "$pid" ] || fail "svc_kill9: $name is not running"
    kill -KILL "$pid"
    es_pid_wait_gone "$pid" 10 || fail "svc_kill9: $name (pid $pid) survived SIGKILL"
    note "killed $name (pid $pid) with SIGKILL"
}

# svc_stop NAME: stop one component cleanly (SIGTERM, as devstack down does).
svc_stop() {
    local name out
    name="$(_t_component "$1")"
    out="$(bash "$T_DEVSTACK" stop "$name" 2>&1)" || {
        printf '%s\n' "$out" | sed 's/^/    /' >&2
        fail "svc_stop: could not stop $name"
    }
    note "stopped $name"
}

# svc_start NAME: start one component again (es-query: until /health answers).
svc_start() {
    local name out
    name="$(_t_component "$1")"
    out="$(bash "$T_DEVSTACK" start "$name" 2>&1)" || {
        printf '%s\n' "$out" | sed 's/^/    /' >&2
        fail "svc_start: could not start $name"
    }
    note "started $name"
}

# ---- talking to the stack ------------------------------------------------------------------

# sql 'SQL' [psql options...]: run SQL on the stack's database; prints unaligned tuples only
# (-At: one row a line, columns split by |). Fails on any SQL error.
sql() {
    local conninfo q="$1"
    shift
    conninfo="$(es_read_file "$ES_DATA/pg.conninfo")" || fail "sql: PostgreSQL is not running"
    "$T_PSQL" -X -q -At -v ON_ERROR_STOP=1 "$conninfo" "$@" -c "$q"
}

# http METHOD PATH [JSON_BODY]: request es-query; prints the body. Returns 0 for a 2xx status,
# else 1 (and says which status on stderr). http_status prints the status code only.
http() {
    local method="$1" path="$2" out code
    shift 2
    local -a args=(-sS -X "$method" --max-time "${ES_HTTP_TIMEOUT:-10}" -w '\n%{http_code}')
    if [ $# -gt 0 ]; then
        args+=(-H 'Content-Type: application/json' --data-binary "$1")
    fi
    out="$(curl "${args[@]}" "http://127.0.0.1:$ES_HTTP_PORT$path")" || {
        printf '  http %s %s: no answer\n' "$method" "$path" >&2
        return 1
    }
    code="${out##*$'\n'}"
    out="${out%$'\n'*}"
    printf '%s\n' "$out"
    case "$code" in
    2??) return 0 ;;
    esac
    printf '  http %s %s -> %s\n' "$method" "$path" "$code" >&2
    return 1
}

http_status() {
    local method="$1" path="$2"
    shift 2
    local -a args=(-sS -o /dev/null -X "$method" --max-time "${ES_HTTP_TIMEOUT:-10}" -w '%{http_code}')
    if [ $# -gt 0 ]; then
        args+=(-H 'Content-Type: application/json' --data-binary "$1")
    fi
    curl "${args[@]}" "http://127.0.0.1:$ES_HTTP_PORT$path" || true
}

# esctl ARGS...: the platform CLI, against this stack (through ES_DATA).
esctl() {
    "$ES_BIN/esctl" "$@"
}

# ---- traps ---------------------------------------------------------------------------------

_t_err() {
    local rc="$1" line="$2" cmd="$3"
    # Reported once, by the test's own shell: a failure inside $(...) shows as the line that
    # used it.
    [ "$BASH_SUBSHELL" -eq 0 ] && [ -z "${T_ERR_SEEN:-}" ] || return 0
    T_ERR_SEEN=1
    # BASH_SOURCE[1]: the file that was running (a helper file the test sourced, perhaps).
    local where="${BASH_SOURCE[1]##*/} line $line"
    if [ "${BASH_SOURCE[1]##*/}" != "$T_FILE" ]; then
        where="$where (from $T_FILE line $(_t_line))"
    fi
    printf '  %serror%s: %s: %s (exit %s)\n' "$ES_C_RED" "$ES_C_OFF" "$where" "$cmd" "$rc" >&2
}

_t_exit() {
    local rc=$? f i
    trap - ERR
    set +e
    for i in "${!T_AT_EXIT[@]}"; do
        eval "${T_AT_EXIT[$i]}"
    done
    if [ -n "$T_STACK_DIR" ] && [ -d "$T_STACK_DIR" ]; then
        if [ "$rc" -ne 0 ]; then
            for f in "$T_STACK_DIR"/log/*.log; do
                case "$f" in
                */initdb.log) continue ;;
                esac
                [ ! -e "$f" ] || es_log_tail "$f" 20
            done
        fi
        if [ -n "$T_STACK_UP" ]; then
            (stack_stop) || true
            T_STACK_UP=''
        fi
        # programs built with sanitizers (make asan) report at the fault, or at exit for leaks,
        # into their logs: any report fails the test
        for f in "$T_STACK_DIR"/log/*.log; do
            [ -e "$f" ] && grep -q -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' -- "$f" || continue
            printf '  %ssanitizer report%s in %s:\n' "$ES_C_RED" "$ES_C_OFF" "${f##*/}" >&2
            grep -E -A14 'ERROR: (Address|Leak)Sanitizer|runtime error:' -- "$f" | head -n 40 | sed 's/^/    /' >&2
            if [ "$rc" -eq 0 ]; then
                rc=1
                T_FAILED_MSG="a sanitizer report in ${f##*/}"
            fi
        done
        if [ "${ES_KEEP:-0}" = 1 ]; then
            : >"$T_STACK_DIR/.keep"
            note "ES_KEEP=1: kept $T_STACK_DIR (ES_DATA=$T_STACK_DIR scripts/devstack.sh up|reset)"
        else
            rm -rf -- "$T_STACK_DIR"
        fi
    fi
    if [ "$rc" -eq 0 ]; then
        printf '%sPASS%s %s: %s checks in %s s\n' "$ES_C_GREEN$ES_C_BOLD" "$ES_C_OFF" "$T_FILE" \
            "$T_CHECKS" "$((SECONDS - T_START))" >&2
    else
        printf '%sFAIL%s %s (exit %s)%s after %s s\n' "$ES_C_RED$ES_C_BOLD" "$ES_C_OFF" "$T_FILE" \
            "$rc" "${T_FAILED_MSG:+: $T_FAILED_MSG}" "$((SECONDS - T_START))" >&2
    fi
    exit "$rc"
}

trap '_t_err $? $LINENO "$BASH_COMMAND"' ERR
trap _t_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
