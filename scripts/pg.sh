#!/usr/bin/env bash
# pg.sh: the private PostgreSQL 15 cluster of one data folder, for development and tests.
#
#   scripts/pg.sh init     create the cluster in $ES_DATA/pg (nothing if it exists)
#   scripts/pg.sh start    init if needed, start (already running is fine), make database `es`
#                          and the programs' roles (scripts/db-roles.sql), write
#                          $ES_DATA/pg.conninfo
#   scripts/pg.sh stop     fast shutdown (already stopped is fine); removes pg.conninfo
#   scripts/pg.sh status   running or stopped; exit 0 when running, 3 when not
#   scripts/pg.sh psql     psql on database `es` (extra arguments go to psql)
#
# Environment: ES_DATA (default ./.data), ES_PG_PORT (default: the port remembered in
# $ES_DATA/pg.port, else a free one), ES_PG_BIN (default /usr/lib/postgresql/15/bin),
# ES_PG_WAL_READY_MB (WAL made ready on a new cluster, default 1024; see prepare_wal).
#
# Layout: $ES_DATA/pg (cluster), $ES_DATA/pgsock (Unix socket), $ES_DATA/log/postgresql.log,
# $ES_DATA/pg.port, $ES_DATA/pg.conninfo (through the socket when there is one). The server
# listens on 127.0.0.1 only, and on the socket.
#
# initdb refuses to run as root, so as root the cluster belongs to, and runs as, the `postgres`
# user (runuser); the folders above it are opened to that user for traverse only. As anyone
# else it runs as you.
#
# Authentication is `trust`, on the loopback address and the private socket only: this is a
# throwaway cluster for one developer or one test run, and any local user who can reach the port
# is a superuser on it. Never point it at data that matters. pg.conninfo names the superuser
# (for esctl, the scripts and the tests); each program replaces it with its own role, which may
# touch its own schema only (lib/config.h, scripts/db-roles.sql).
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail

ES_PROG=pg
# shellcheck source=scripts/common.sh
. "$(dirname "$0")/common.sh"

PG_SUPERUSER=postgres
PG_DBNAME=es

usage() {
    sed -n '2,14s/^# \{0,1\}//p' "$0" >&2
    exit 2
}

pg_setup_paths() {
    es_data_resolve
    PGDATA_DIR="$ES_DATA/pg"
    PG_SOCK_DIR="$ES_DATA/pgsock"
    PG_LOG="$ES_LOG_DIR/postgresql.log"
    PG_PORT_FILE="$ES_DATA/pg.port"
    PG_CONNINFO_FILE="$ES_DATA/pg.conninfo"

    PGBIN="${ES_PG_BIN:-/usr/lib/postgresql/15/bin}"
    if [ ! -x "$PGBIN/pg_ctl" ]; then
        es_die "no PostgreSQL 15 server programs in $PGBIN (install postgresql-15: sh scripts/deps.sh)"
    fi

    if [ "$(id -u)" -eq 0 ]; then
        PG_OS_USER=postgres
        getent passwd "$PG_OS_USER" >/dev/null ||
            es_die "running as root needs the postgres user (it comes with postgresql-15)"
    else
        PG_OS_USER=''
    fi
}

# as_pg CMD...: run a PostgreSQL server program as the cluster's owner, from /, so that a current
# folder the postgres user cannot read does not matter (every path we pass is absolute). Our lock
# descriptor is closed, or the postmaster would hold the lock for its whole life.
as_pg() {
    if [ -n "$PG_OS_USER" ]; then
        (cd / && exec runuser -u "$PG_OS_USER" -- "$@" 9>&-)
    else
        (cd / && exec "$@" 9>&-)
    fi
}

# own_for_pg PATH...: give PATH to the cluster's owner (root only).
own_for_pg() {
    if [ -n "$PG_OS_USER" ]; then
        chown "$PG_OS_USER:" -- "$@"
    fi
}

# pg_lock: one pg.sh at a time per data folder (devstack up and a test could start it together).
# Held until this script exits; taking it twice is a no-op.
PG_LOCKED=''
pg_lock() {
    [ -z "$PG_LOCKED" ] || return 0
    es_data_init
    exec 9>"$ES_RUN_DIR/pg.lock"
    flock -w 120 9 || es_die "timed out waiting for another scripts/pg.sh on $ES_DATA"
    PG_LOCKED=1
}

pg_initialized() {
    [ -f "$PGDATA_DIR/PG_VERSION" ]
}

pg_pid() {
    head -n 1 -- "$PGDATA_DIR/postmaster.pid" 2>/dev/null || true
}

# pg_running: true if the postmaster of our data folder is alive. Checked here rather than with
# `pg_ctl status`, which takes a killed postmaster that nobody has reaped yet (a zombie: some
# container init processes never reap) for a running one.
pg_running() {
    local pid
    pg_initialized || return 1
    pid="$(pg_pid)"
    case "$pid" in
    '' | *[!0-9]*) return 1 ;;
    esac
    es_pid_alive "$pid" && [ "$(ps -o comm= -p "$pid" 2>/dev/null)" = postgres ]
}

# The port the running cluster listens on, from its own postmaster.pid (line 4).
pg_running_port() {
    sed -n 4p -- "$PGDATA_DIR/postmaster.pid" 2>/dev/null || true
}

# The programs connect through the private Unix socket when the server has one: a round trip
# costs less there than over TCP on the loopback (pgbench -S, one client: ~16 µs of ~108), and a
# service makes two a batch. Without the socket (a data folder too deep), 127.0.0.1.
write_conninfo() {
    local host=127.0.0.1
    if [ -S "$PG_SOCK_DIR/.s.PGSQL.$1" ]; then
        host="$PG_SOCK_DIR"
        host="${host//\\/\\\\}"
        host="'${host//\'/\\\'}'"
    fi
    es_write_atomic "$PG_CONNINFO_FILE" \
        "host=$host port=$1 dbname=$PG_DBNAME user=$PG_SUPERUSER connect_timeout=5"
}

# write_settings DIR: our settings, appended once to DIR/postgresql.conf at init (later lines of
# the file win over initdb's), and our pg_hba.conf.
write_settings() {
    local dir="$1"
    cat >>"$dir/postgresql.conf" <<'EOF'

# ---- es platform: private dev/test cluster (written by scripts/pg.sh init) ----
listen_addresses = '127.0.0.1'      # loopback only
max_connections = 200               # every service keeps a few; tests start many
shared_buffers = 256MB
fsync = on                          # crash safety is part of what the tests check
full_page_writes = on
# synchronous_commit stays on: a service commits its effects, its consumer offsets and its outbox
# in one transaction and then acts on that commit (the outbox relay publishes to Kafka). With it
# off, a crash could forget a commit whose events were already published, and the benchmarks
# would measure a durability this platform does not have in production.
synchronous_commit = on
wal_level = replica                 # as production; minimal would change how bulk loads behave
wal_buffers = 16MB
max_wal_size = 2GB                  # few checkpoints during bursts of event processing
min_wal_size = 256MB
checkpoint_timeout = 15min
checkpoint_completion_target = 0.9
# The outboxes are queues: rows are inserted and deleted within milliseconds, and the relay's
# "oldest rows first" index scan walks every dead row until vacuum removes it. Wake autovacuum
# often (the outbox tables also lower their own thresholds, see lib/service.c).
autovacuum_naptime = 5s                # every second cost ~10% throughput in our runs
# Every statement the services run finds its rows through an index (by key, or a range that stops
# at a limit), under generic plans (lib/service.c): column statistics barely matter to them. Autovacuum re-analyzes each growing table at every 10% of
# growth, and a sample of 3,000 rows instead of 30,000 cut its CPU 6-8 times (README).
default_statistics_target = 10
# The services' tables live in shared_buffers and the page cache, where reading a page found
# through an index costs about what reading the next page of a scan does. At the default (4) the
# generic plan of a service's key lookup ("unnest($1) JOIN table ON key") read a table of a few
# thousand rows whole (a hash join over a sequential scan: 0.2 ms for one row of 1,000) instead
# of probing its key (0.03 ms), at every hop of a fresh stack (README, Performance).
random_page_cost = 1.1
# When each transaction committed: when what it wrote became visible. `make bench` measures
# send-to-visible up to the commit of the projection's row (pg_xact_commit_timestamp(xmin)),
# and it answers "when did this row change" while debugging. A few bytes per transaction.
track_commit_timestamp = on
log_line_prefix = '%m [%p] %q%u@%d '
log_min_duration_statement = 1000   # log statements slower than 1 s
lc_messages = 'C'
timezone = 'UTC'
log_timezone = 'UTC'
# Port and socket folder change with the data folder: scripts/pg.sh start rewrites this file.
include_if_exists = 'es-runtime.conf'
EOF
    cat >"$dir/pg_hba.conf" <<'EOF'
# es platform private cluster: trust on the private socket and on loopback only (see scripts/pg.sh).
# TYPE  DATABASE  USER  ADDRESS        METHOD
local   all       all                  trust
host    all       all   127.0.0.1/32   trust
EOF
}

cmd_init() {
    pg_lock
    if pg_initialized; then
        return 0
    fi
    if [ -e "$PGDATA_DIR" ]; then
        es_die "$PGDATA_DIR exists but is not a PostgreSQL cluster; remove it or run scripts/devstack.sh reset"
    fi
    if [ -n "$PG_OS_USER" ]; then
        es_grant_traverse "$PG_OS_USER" "$ES_DATA" "$ES_LOG_DIR"
    fi
    # initdb into a side folder, renamed when complete: an interrupted init leaves no half
    # cluster behind. We create it (the postgres user cannot write into our data folder).
    local tmp="$ES_DATA/pg.init"
    rm -rf -- "$tmp"
    mkdir -m 700 -- "$tmp"
    own_for_pg "$tmp"
    es_info "creating PostgreSQL cluster in $PGDATA_DIR${PG_OS_USER:+ (owned by user $PG_OS_USER)}"
    if ! as_pg "$PGBIN/initdb" -D "$tmp" -U "$PG_SUPERUSER" --encoding=UTF8 --locale=C \
        --auth=trust --no-instructions >"$ES_LOG_DIR/initdb.log" 2>&1; then
        es_log_tail "$ES_LOG_DIR/initdb.log"
        rm -rf -- "$tmp"
        es_die "initdb failed (full output in $ES_LOG_DIR/initdb.log)"
    fi
    write_settings "$tmp"
    own_for_pg "$tmp/postgresql.conf" "$tmp/pg_hba.conf"
    mv -- "$tmp" "$PGDATA_DIR"
}

# choose_port: ES_PG_PORT if given, else the remembered port if it is free, else a free one.
choose_port() {
    local port=''
    if [ -n "${ES_PG_PORT:-}" ]; then
        case "$ES_PG_PORT" in
        '' | *[!0-9]*) es_die "ES_PG_PORT must be a port number, not '$ES_PG_PORT'" ;;
        esac
        if es_port_in_use "$ES_PG_PORT"; then
            es_die "ES_PG_PORT=$ES_PG_PORT is in use by another program"
        fi
        printf '%s\n' "$ES_PG_PORT"
        return 0
    fi
    port="$(es_read_file "$PG_PORT_FILE" 2>/dev/null)" || port=''
    if [ -n "$port" ] && es_port_in_use "$port"; then
        es_warn "remembered port $port is taken by another program; picking a new one"
        port=''
    fi
    if [ -z "$port" ]; then
        port="$(es_free_port)" || es_die "no free port for PostgreSQL"
    fi
    printf '%s\n' "$port"
}

write_runtime_conf() {
    local port="$1" sock="$PG_SOCK_DIR"
    # A Unix socket path must fit in 107 bytes; deep data folders get TCP only (the programs
    # then connect to 127.0.0.1: write_conninfo).
    if [ $((${#sock} + 20)) -gt 107 ]; then
        es_warn "data folder path too long for a Unix socket; PostgreSQL listens on TCP only"
        sock=''
    fi
    cat >"$PGDATA_DIR/es-runtime.conf.tmp" <<EOF
# written by scripts/pg.sh start: this data folder's port and socket folder
port = $port
unix_socket_directories = '${sock//\'/\'\'}'
EOF
    own_for_pg "$PGDATA_DIR/es-runtime.conf.tmp"
    mv -f -- "$PGDATA_DIR/es-runtime.conf.tmp" "$PGDATA_DIR/es-runtime.conf"
}

ensure_database() {
    local port="$1" exists
    exists="$("$PGBIN/psql" -X -At -v ON_ERROR_STOP=1 \
        "host=127.0.0.1 port=$port dbname=postgres user=$PG_SUPERUSER connect_timeout=5" \
        -c "SELECT 1 FROM pg_database WHERE datname = '$PG_DBNAME'")" ||
        es_die "could not connect to PostgreSQL on port $port to create database $PG_DBNAME"
    if [ "$exists" != 1 ]; then
        "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 \
            "host=127.0.0.1 port=$port dbname=postgres user=$PG_SUPERUSER connect_timeout=5" \
            -c "CREATE DATABASE $PG_DBNAME" ||
            es_die "could not create database $PG_DBNAME"
        es_info "created database $PG_DBNAME"
        prepare_wal "$port"
    fi
}

# ensure_roles PORT: each program's role, owning its schema (scripts/db-roles.sql), on every
# start: it also hands over the schemas of a data folder from before the roles.
ensure_roles() {
    "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 \
        "host=127.0.0.1 port=$1 dbname=$PG_DBNAME user=$PG_SUPERUSER connect_timeout=5" \
        -f "$ES_ROOT/scripts/db-roles.sql" ||
        es_die "could not set up the programs' roles (scripts/db-roles.sql)"
}

# prepare_wal PORT: on a new cluster, make ES_PG_WAL_READY_MB (default 1024) of WAL segments
# ready to be written. PostgreSQL makes a new segment by writing it full of zeros and syncing
# it, while every commit waits: here 16 MiB every ~2 s of an order saga at 500/s, and each
# stall held every service's commit for ~55 ms, the order p99 (bench/run.sh). A checkpoint
# recycles written segments for later use instead, so the first GiB is switched through at
# once (~2 s) and recycled. Later checkpoints keep as many as the write rate needs.
prepare_wal() {
    local port="$1" mb="${ES_PG_WAL_READY_MB:-1024}"
    case "$mb" in
    '' | *[!0-9]*) es_die "ES_PG_WAL_READY_MB must be a number of MiB, not '$mb'" ;;
    esac
    [ "$mb" -gt 0 ] || return 0
    es_info "making $mb MiB of WAL segments ready (so that the first writes do not wait for them)"
    "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 \
        "host=127.0.0.1 port=$port dbname=$PG_DBNAME user=$PG_SUPERUSER connect_timeout=5" \
        -c "DO \$\$ BEGIN
              FOR i IN 1 .. $mb::bigint * 1048576 /
                  (SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size') LOOP
                  PERFORM pg_logical_emit_message(false, 'es-wal-ready', '');
                  PERFORM pg_switch_wal();
              END LOOP;
            END \$\$" -c CHECKPOINT ||
        es_die "could not make the WAL segments ready"
}

cmd_start() {
    local port attempt out
    pg_lock
    cmd_init
    if pg_running; then
        port="$(pg_running_port)"
        if [ -n "${ES_PG_PORT:-}" ] && [ "$ES_PG_PORT" != "$port" ]; then
            es_warn "already running on port $port; ES_PG_PORT=$ES_PG_PORT ignored (stop it first)"
        fi
        es_write_atomic "$PG_PORT_FILE" "$port"
        ensure_database "$port"
        ensure_roles "$port"
        write_conninfo "$port"
        es_info "already running (pid $(pg_pid), port $port)"
        return 0
    fi
    rm -f -- "$PG_CONNINFO_FILE"
    # The lock file of a postmaster that was killed: the new postmaster would take a zombie
    # holding that pid for a live server and refuse to start.
    if [ -f "$PGDATA_DIR/postmaster.pid" ]; then
        es_info "removing stale postmaster.pid (server pid $(pg_pid) is gone)"
        rm -f -- "$PGDATA_DIR/postmaster.pid"
    fi
    if [ -n "$PG_OS_USER" ]; then
        es_grant_traverse "$PG_OS_USER" "$ES_DATA" "$ES_LOG_DIR"
        # A cluster made by a non-root user earlier, now started by root: hand it over.
        if [ "$(stat -c %U -- "$PGDATA_DIR")" != "$PG_OS_USER" ]; then
            es_info "giving $PGDATA_DIR to user $PG_OS_USER (chown -R)"
            chown -R "$PG_OS_USER:" -- "$PGDATA_DIR"
        fi
    fi
    mkdir -p -- "$PG_SOCK_DIR"
    chmod 700 -- "$PG_SOCK_DIR"
    touch -- "$PG_LOG"
    own_for_pg "$PG_SOCK_DIR" "$PG_LOG"

    # Retry with a fresh port when the one we picked was taken between the check and the bind,
    # and after a crash while the old server's processes are still on their way out.
    for attempt in 1 2 3 4 5 6 7 8 9 10; do
        port="$(choose_port)"
        write_runtime_conf "$port"
        if out="$(as_pg "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -l "$PG_LOG" -w -t 60 -s start </dev/null 2>&1)"; then
            break
        fi
        if [ "$attempt" -lt 10 ]; then
            if [ -z "${ES_PG_PORT:-}" ] && tail -n 5 -- "$PG_LOG" | grep -q 'could not create any TCP/IP sockets'; then
                es_warn "port $port was taken; trying another"
                rm -f -- "$PG_PORT_FILE"
                continue
            fi
            if tail -n 5 -- "$PG_LOG" | grep -q 'shared memory block is still in use\|lock file .* already exists'; then
                es_info "the previous server's processes are still exiting; retrying"
                rm -f -- "$PGDATA_DIR/postmaster.pid"
                sleep 1
                continue
            fi
        fi
        [ -z "$out" ] || printf '%s\n' "$out" >&2
        es_log_tail "$PG_LOG" 15
        es_die "PostgreSQL did not start (log: $PG_LOG)"
    done
    es_write_atomic "$PG_PORT_FILE" "$port"
    ensure_database "$port"
    ensure_roles "$port"
    write_conninfo "$port"
    es_info "started (pid $(pg_pid), port $port): $(cat -- "$PG_CONNINFO_FILE")"
}

cmd_stop() {
    if ! pg_initialized; then
        es_info "no cluster in $PGDATA_DIR"
        return 0
    fi
    pg_lock
    if ! pg_running; then
        rm -f -- "$PG_CONNINFO_FILE"
        es_info "already stopped"
        return 0
    fi
    # Fast: roll back open transactions and shut down cleanly (a checkpoint, no crash recovery).
    if ! as_pg "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -m fast -w -t 60 -s stop; then
        es_log_tail "$PG_LOG"
        es_die "PostgreSQL did not stop (log: $PG_LOG)"
    fi
    rm -f -- "$PG_CONNINFO_FILE"
    es_info "stopped"
}

cmd_status() {
    if ! pg_initialized; then
        printf 'postgresql: not initialized (%s)\n' "$PGDATA_DIR"
        return 3
    fi
    if pg_running; then
        printf 'postgresql: running, pid %s, port %s: %s\n' "$(pg_pid)" "$(pg_running_port)" \
            "$(cat -- "$PG_CONNINFO_FILE" 2>/dev/null || echo 'no pg.conninfo (run start)')"
        return 0
    fi
    printf 'postgresql: stopped (%s)\n' "$PGDATA_DIR"
    return 3
}

cmd_psql() {
    pg_running || es_die "PostgreSQL is not running for $ES_DATA: scripts/pg.sh start"
    local conninfo
    conninfo="$(es_read_file "$PG_CONNINFO_FILE")" || es_die "no $PG_CONNINFO_FILE: scripts/pg.sh start"
    exec "$PGBIN/psql" "$conninfo" "$@"
}

[ $# -ge 1 ] || usage
cmd="$1"
shift
pg_setup_paths
case "$cmd" in
init) cmd_init ;;
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
psql) cmd_psql "$@" ;;
-h | --help | help) usage ;;
*) usage ;;
esac
