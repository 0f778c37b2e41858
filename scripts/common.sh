# shellcheck shell=bash disable=SC2034
# (SC2034: the variables set here are used by the scripts that source this file.)
# common.sh: shell helpers shared by scripts/*.sh and tests/integration/lib.sh. Sourced, never run.
#
# Gives: where the repo and the data folder are (ES_ROOT, ES_DATA made absolute), messages on stderr
# (es_info, es_warn, es_die), pid files that know a stale pid from a live one, free loopback ports,
# atomic small-file writes, and "give user U the right to reach this folder" for the PostgreSQL
# cluster that runs as `postgres` when we are root.
#
# Conventions: every function is prefixed es_; messages are lower-case; data goes to stdout,
# diagnostics to stderr. Nothing here exits except es_die.

if [ -n "${ES_COMMON_SH_LOADED:-}" ]; then
    return 0
fi
ES_COMMON_SH_LOADED=1

ES_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"

# Colours only on a terminal, and never when NO_COLOR is set (https://no-color.org).
if [ -t 2 ] && [ -z "${NO_COLOR:-}" ] && [ "${TERM:-dumb}" != dumb ]; then
    ES_C_RED=$'\033[31m' ES_C_GREEN=$'\033[32m' ES_C_YELLOW=$'\033[33m'
    ES_C_BOLD=$'\033[1m' ES_C_DIM=$'\033[2m' ES_C_OFF=$'\033[0m'
else
    ES_C_RED='' ES_C_GREEN='' ES_C_YELLOW='' ES_C_BOLD='' ES_C_DIM='' ES_C_OFF=''
fi

ES_PROG="${ES_PROG:-$(basename "$0" .sh)}"

es_info() {
    printf '%s: %s\n' "$ES_PROG" "$*" >&2
}

es_warn() {
    printf '%s: %swarning:%s %s\n' "$ES_PROG" "$ES_C_YELLOW" "$ES_C_OFF" "$*" >&2
}

es_die() {
    printf '%s: %serror:%s %s\n' "$ES_PROG" "$ES_C_RED" "$ES_C_OFF" "$*" >&2
    exit 1
}

# es_data_resolve: make ES_DATA absolute (default ./.data, relative to the caller's directory, as
# lib/config.h does) and export it, so that every process started from here agrees on it.
es_data_resolve() {
    local d="${ES_DATA:-./.data}"
    [ -n "$d" ] || d=./.data
    ES_DATA="$(realpath -m -- "$d")"
    export ES_DATA
    ES_LOG_DIR="$ES_DATA/log"
    ES_RUN_DIR="$ES_DATA/run"
}

# es_data_init: create the data folder with its log/ and run/ subfolders and the marker file that
# lets `reset` know this folder is ours to delete.
es_data_init() {
    es_data_resolve
    mkdir -p -- "$ES_DATA" "$ES_LOG_DIR" "$ES_RUN_DIR" ||
        es_die "could not create data folder $ES_DATA"
    if [ ! -e "$ES_DATA/.es-data" ]; then
        printf 'es platform data folder: scripts/devstack.sh reset deletes it\n' >"$ES_DATA/.es-data"
    fi
}

# es_write_atomic FILE TEXT: write TEXT plus a newline to FILE through a temporary file and a
# rename, so a reader never sees half a file.
es_write_atomic() {
    local file="$1" text="$2" tmp
    tmp="$file.tmp.$$"
    printf '%s\n' "$text" >"$tmp" || {
        rm -f -- "$tmp"
        return 1
    }
    mv -f -- "$tmp" "$file"
}

# es_read_file FILE: print the first line of FILE without trailing whitespace; fail if absent.
es_read_file() {
    local line
    [ -r "$1" ] || return 1
    IFS= read -r line <"$1" || [ -n "$line" ] || return 1
    printf '%s\n' "${line%"${line##*[![:space:]]}"}"
}

# es_pid_get NAME PIDFILE: print the pid in PIDFILE if that process is alive and is NAME (its
# command name, as ps shows it, truncated to 15 characters by the kernel). A pid file whose process
# is gone, or whose pid now belongs to another program, is stale: it is removed and we fail.
es_pid_get() {
    local name="$1" file="$2" pid comm
    pid="$(es_read_file "$file" 2>/dev/null)" || return 1
    case "$pid" in
    '' | *[!0-9]*)
        rm -f -- "$file"
        return 1
        ;;
    esac
    comm="$(ps -o comm= -p "$pid" 2>/dev/null)" || comm=''
    if [ -z "$comm" ] || [ "$comm" != "${name:0:15}" ]; then
        rm -f -- "$file"
        return 1
    fi
    # A zombie is not running.
    case "$(ps -o stat= -p "$pid" 2>/dev/null)" in
    Z*)
        rm -f -- "$file"
        return 1
        ;;
    esac
    printf '%s\n' "$pid"
}

# es_pid_alive PID: true if PID is a live process (a zombie, dead but not yet reaped by a parent
# that may never reap it, is not).
es_pid_alive() {
    kill -0 "$1" 2>/dev/null || return 1
    case "$(ps -o stat= -p "$1" 2>/dev/null)" in
    Z* | '') return 1 ;;
    esac
    return 0
}

# es_pid_wait_gone PID TIMEOUT_S: wait until PID has exited; fail if it is still there.
es_pid_wait_gone() {
    local pid="$1" deadline=$((SECONDS + $2))
    while es_pid_alive "$pid"; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.1
    done
    return 0
}

# es_port_in_use PORT: true if something listens on (or accepts connections at) 127.0.0.1:PORT.
es_port_in_use() {
    local port="$1"
    if command -v ss >/dev/null 2>&1; then
        if ss -Hltn "sport = :$port" 2>/dev/null | grep -q .; then
            return 0
        fi
    fi
    # Bash's /dev/tcp: a connect that succeeds means a listener. Run in a subshell so that the
    # descriptor is closed however it ends.
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        return 0
    fi
    return 1
}

# es_free_port: print a TCP port that nobody listens on at 127.0.0.1. Ports are drawn below the
# kernel's ephemeral range, so that the random ports other programs (the dev broker) bind to port 0
# cannot take ours between now and the moment we bind. Another caller can still race us: callers
# that bind should retry with a new port when the bind fails.
es_free_port() {
    local lo=32768 hi port i
    if [ -r /proc/sys/net/ipv4/ip_local_port_range ]; then
        read -r lo _ </proc/sys/net/ipv4/ip_local_port_range || lo=32768
    fi
    hi=$((lo - 1))
    lo=$((hi > 20000 ? 15000 : 1024))
    for ((i = 0; i < 200; i++)); do
        port=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo + 1)))
        if ! es_port_in_use "$port"; then
            printf '%s\n' "$port"
            return 0
        fi
    done
    es_warn "could not find a free loopback port between $lo and $hi"
    return 1
}

# es_http_ok URL: true if URL answers 2xx within 2 seconds.
es_http_ok() {
    curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null
}

# es_log_tail FILE [N]: print the last N (default 30) lines of FILE, indented, on stderr.
es_log_tail() {
    local file="$1" n="${2:-30}"
    if [ -s "$file" ]; then
        printf '%s--- last %s lines of %s ---%s\n' "$ES_C_DIM" "$n" "$file" "$ES_C_OFF" >&2
        tail -n "$n" -- "$file" | sed 's/^/    /' >&2
        printf '%s--- end of %s ---%s\n' "$ES_C_DIM" "$file" "$ES_C_OFF" >&2
    else
        printf '    (%s is empty or missing)\n' "$file" >&2
    fi
}

# es_grant_traverse USER PATH...: make each PATH and every folder above it searchable (x) by USER,
# so that a process running as USER can reach a folder inside root's home, as CI has. Uses an ACL
# entry (setfacl) when it can, which leaves every other permission as it was, else o+x. Each change
# is printed. Only root calls this.
es_grant_traverse() {
    local user="$1" path d rest part
    shift
    for path in "$@"; do
        path="$(realpath -m -- "$path")"
        d=''
        rest="${path#/}"
        while :; do
            part="${rest%%/*}"
            d="$d/$part"
            [ "$d" = "//" ] && d=/
            if [ -d "$d" ] && ! runuser -u "$user" -- test -x "$d" 2>/dev/null; then
                if command -v setfacl >/dev/null 2>&1 && setfacl -m "u:$user:x" -- "$d" 2>/dev/null; then
                    es_info "gave user $user traverse rights on $d (setfacl -m u:$user:x)"
                else
                    chmod o+x -- "$d" || es_die "could not let user $user traverse $d"
                    es_info "gave everyone traverse rights on $d (chmod o+x; setfacl unavailable)"
                fi
            fi
            [ "$rest" = "$part" ] && break
            rest="${rest#*/}"
        done
    done
}
