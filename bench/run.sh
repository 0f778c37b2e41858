#!/usr/bin/env bash
# bench/run.sh: `make bench`. Starts a private stack, measures, prints and draws the results.
#
#   1. end-to-end throughput: 50 accounts with big balances, then BENCH_N RequestTransfer sent in
#      one `esctl send --batch`; the time from the start of the send until every transfer is
#      terminal (COMPLETED or FAILED) in projections.transfers. The end is the newest commit
#      that made one of the run's rows visible (see visible(); count(*) is polled every 0.5 s
#      to know when they are all there).
#      BENCH_RUNS runs with fresh transfer ids; the median and each run are reported.
#   2. latency at a fixed rate: bin/es-loadgen sends BENCH_RATE transfers a second for
#      BENCH_SECONDS seconds and records each send time; latency = visible - sent, joined
#      in PostgreSQL. p50/p90/p99/max and the achieved rate.
#      Then the same at rest: BENCH_REST_RATE (20) transfers/s for BENCH_REST_SECONDS (10): what
#      the hops cost when nothing queues (the floor under every figure at load); and at the
#      rate the reference's p99 was measured at (200 transfers/s), for BENCH_REST_SECONDS.
#   3. replay decode rate: `esctl replay --stats` over the whole log, median of BENCH_REPLAYS.
#   4. the shop (BENCH_SHOP=0 skips it): the shop's services join the stack; BENCH_SHOP_N
#      orders of two lines (esctl send --batch PlaceOrder) until every one is CONFIRMED or
#      REJECTED in shop_views.orders, BENCH_RUNS runs, median; then es-loadgen --kind orders
#      at BENCH_SHOP_RATE orders/s for BENCH_SECONDS: latency = visible - sent; orders at rest
#      (BENCH_REST_RATE/s) as for transfers. Then the saga coordinator (es-sagas), kept out of
#      everything above, starts cold and follows the whole log of both sagas: steps recorded
#      per second, until none came for 2 s; its steps give where an order's time went at
#      BENCH_SHOP_RATE/s and at rest, hop by hop (one step's occurred_at minus its cause's).
#      Then the fixed rate again with the coordinator running, as `make up` runs the platform.
#      Last, the whole stack at rest: the CPU its programs and PostgreSQL use doing nothing.
#   5. a summary against the targets and the reference figures, an ASCII chart, and
#      docs/bench/results.json + docs/bench/results.svg (bench/svg.awk draws it).
#
# Environment (defaults): BENCH_N (20000), BENCH_RUNS (3), BENCH_RATE (1000), BENCH_SECONDS (20),
# BENCH_ACCOUNTS (50), BENCH_REPLAYS (3), BENCH_TIMEOUT (seconds a step may wait for the read
# model, 180), BENCH_SHOP (1), BENCH_SHOP_N (10000), BENCH_SHOP_RATE (500), BENCH_SHOP_USERS
# (50), BENCH_SHOP_PRODUCTS (100), BENCH_REST_RATE (20), BENCH_REST_SECONDS (10),
# BENCH_IDLE_SECONDS (10: how long the stack at rest is watched), BENCH_SETTLE_PCT (25) and
# BENCH_SETTLE_MAX_S (15) (each measured run waits until the stack uses less than that % of a
# core, for at most that long: settle), BENCH_OUT
# (where results go, docs/bench), BENCH_KEEP=1 keeps the data folder (.data/bench-<pid>; else
# only its logs stay, in .data/bench-last-logs). ES_PARTITIONS and the other platform variables
# pass through.
#
# Progress goes to stderr; the summary to stdout.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -Eeuo pipefail

ES_PROG=bench
# shellcheck source=scripts/common.sh
. "$(cd "$(dirname "$0")/.." && pwd -P)/scripts/common.sh"

ES_BIN="${ES_BIN:-$ES_ROOT/bin}"
N="${BENCH_N:-20000}"
RUNS="${BENCH_RUNS:-3}"
RATE="${BENCH_RATE:-1000}"
SECS="${BENCH_SECONDS:-20}"
ACCOUNTS="${BENCH_ACCOUNTS:-50}"
REPLAYS="${BENCH_REPLAYS:-3}"
TIMEOUT="${BENCH_TIMEOUT:-180}"
SHOP="${BENCH_SHOP:-1}"
SHOP_N="${BENCH_SHOP_N:-10000}"
SHOP_RATE="${BENCH_SHOP_RATE:-500}"
SHOP_USERS="${BENCH_SHOP_USERS:-50}"
SHOP_PRODUCTS="${BENCH_SHOP_PRODUCTS:-100}"
REST_RATE="${BENCH_REST_RATE:-20}"
REST_SECS="${BENCH_REST_SECONDS:-10}"
IDLE_SECS="${BENCH_IDLE_SECONDS:-10}"
OUT="${BENCH_OUT:-$ES_ROOT/docs/bench}"
PSQL=/usr/lib/postgresql/15/bin/psql
[ -x "$PSQL" ] || PSQL=psql

# Reference figures (the tutorial-style Python saga on this machine) and our targets.
REF_PY_SINGLE=390
REF_PY_BATCHED=4400
REF_PY_P99_MS=29
REF_PY_P99_RATE=200
TARGET_TPUT=8000
TARGET_P99_MS=20
TARGET_REPLAY=500000
TARGET_ORDERS_TPUT=5000
TARGET_ORDERS_P99_MS=30

for v in N RUNS RATE SECS ACCOUNTS REPLAYS TIMEOUT SHOP_N SHOP_RATE SHOP_USERS SHOP_PRODUCTS \
    REST_RATE REST_SECS IDLE_SECS; do
    case "${!v}" in
    '' | *[!0-9]* | 0) es_die "BENCH_$v must be a positive integer, not '${!v}'" ;;
    esac
done
[ "$ACCOUNTS" -ge 2 ] || es_die "BENCH_ACCOUNTS must be at least 2"
for b in esctl es-loadgen es-broker es-accounts es-transfers es-projector es-query es-users \
    es-catalog es-orders es-payments es-shop-projector es-sagas; do
    [ -x "$ES_BIN/$b" ] || es_die "$ES_BIN/$b is not built: run make"
done

step() { printf '%s==> %s%s\n' "$ES_C_BOLD" "$*" "$ES_C_OFF" >&2; }

# stack_ticks: CPU time (clock ticks, user + system) used so far by the stack's programs and by
# its PostgreSQL (the postmaster and its children).
stack_ticks() {
    local f p pids pm
    pids=''
    for f in "$ES_DATA"/run/*.pid; do
        pids="$pids $(cat "$f" 2>/dev/null)"
    done
    pm="$(head -n 1 "$ES_DATA/pg/postmaster.pid" 2>/dev/null || true)"
    [ -z "$pm" ] || pids="$pids $pm $(pgrep -P "$pm" | tr '\n' ' ')"
    for p in $pids; do
        awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || true
    done | awk '{ t += $1 } END { print t + 0 }'
}
# cpu_ms BEFORE AFTER N: the stack's CPU per record between two cpu_snapshot files, in ms.
# Steadier than the latencies on a noisy machine: what a change saves shows here first.
CPU_WHAT="CPU time (user + system) of every program of the stack and of its PostgreSQL, from the first send until the last is visible, divided by the records sent (ms)"
cpu_ms() {
    awk -v hz="$(getconf CLK_TCK)" -v n="$3" 'FILENAME == ARGV[1] { t -= $2; next } { t += $2 }
        END { printf "%.2f", t * 1000 / hz / n }' "$1" "$2"
}
# cpu_snapshot: "name ticks" (CPU so far, user + system) of every program of the stack, named
# by its pid file, of every PostgreSQL client backend, named "pg:" and its application_name
# (the service it serves: lib/pg.c), and of the rest of PostgreSQL, "pg:(server)" (postmaster,
# WAL writer, checkpointer, autovacuum...).
cpu_snapshot() {
    local f p pm apps
    apps="$(sql -F' ' -c "SELECT pid, replace(coalesce(nullif(application_name, ''), '?'), ' ', '_')
        FROM pg_stat_activity WHERE backend_type = 'client backend'" 2>/dev/null || true)"
    {
        for f in "$ES_DATA"/run/*.pid; do
            p="$(cat -- "$f" 2>/dev/null)" || continue
            [ -z "$p" ] || awk -v n="$(basename -- "$f" .pid)" '{ print n, $14 + $15 }' "/proc/$p/stat" 2>/dev/null || true
        done
        pm="$(head -n 1 "$ES_DATA/pg/postmaster.pid" 2>/dev/null || true)"
        if [ -n "$pm" ]; then
            for p in $pm $(pgrep -P "$pm" | tr '\n' ' '); do
                awk -v p="$p" '{ print p, $14 + $15 }' "/proc/$p/stat" 2>/dev/null || true
            done | awk -v apps="$apps" 'BEGIN { n = split(apps, l, "\n")
                    for (i = 1; i <= n; i++) { split(l[i], a, " "); app[a[1]] = a[2] } }
                { print ($1 in app ? "pg:" app[$1] : "pg:(server)"), $2 }'
        fi
    } | awk '{ t[$1] += $2 } END { for (k in t) print k, t[k] }'
}
# cpu_split BEFORE AFTER N: "name ms" of CPU per record between two cpu_snapshot files.
cpu_split() {
    awk -v hz="$(getconf CLK_TCK)" -v n="$3" 'FILENAME == ARGV[1] { a[$1] = $2; next }
        { d = ($2 - a[$1]) * 1000 / hz / n; if (d > 0) printf "%s %.3f\n", $1, d }' "$1" "$2"
}
note() { printf '    %s\n' "$*" >&2; }
# settle: before a measured run, wait until what the previous step left behind is done (relays
# deleting published rows, autovacuum, a coordinator catching up): the stack's CPU over half a
# second below BENCH_SETTLE_PCT (25) % of one core, for at most BENCH_SETTLE_MAX_S (15) s, at
# least 1 s. Runs then start from the same state, not from wherever the last one stopped.
settle() {
    local t0=$SECONDS k0 k1 pct
    sleep 0.5
    while :; do
        k0="$(stack_ticks)"
        sleep 0.5
        k1="$(stack_ticks)"
        pct="$(awk -v t=$((k1 - k0)) -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.0f", t * 100 / hz / 0.5 }')"
        if [ "$pct" -lt "${BENCH_SETTLE_PCT:-25}" ]; then
            [ $((SECONDS - t0)) -lt 3 ] || note "settled after $((SECONDS - t0)) s"
            break
        fi
        if [ $((SECONDS - t0)) -ge "${BENCH_SETTLE_MAX_S:-15}" ]; then
            note "the stack still uses $pct% of a core after ${BENCH_SETTLE_MAX_S:-15} s: measuring anyway"
            break
        fi
    done
}
now_us() { date +%s%6N; }

# ---- the machine, before we start anything -----------------------------------------------------

M_DATE="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
M_NPROC="$(nproc)"
M_CPU="$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1)"
[ -n "$M_CPU" ] || M_CPU=unknown
read -r M_LOAD1 M_LOAD5 M_LOAD15 _ </proc/loadavg
M_MEM_GB="$(awk '/^MemTotal:/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)"
# What else was busy: the top processes by CPU share since they started (ps's %cpu).
M_TOP="$(ps -eo pcpu=,comm= --sort=-pcpu | awk '$1 > 1.0 { printf "%s%s %s%%", sep, $2, $1; sep = ", " }
    NR >= 8 { exit }')"
M_OTHER_STACKS="$(ps -eo stat=,comm= | awk '$1 !~ /^Z/ && $2 == "es-broker"' | wc -l)"
# CPU busy over one second, all cores (100 = every core busy): the load we compete with.
cpu_sample() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6; exit }' /proc/stat; }
read -r c_busy0 c_idle0 < <(cpu_sample)
sleep 1
read -r c_busy1 c_idle1 < <(cpu_sample)
M_BUSY="$(awk -v b="$((c_busy1 - c_busy0))" -v i="$((c_idle1 - c_idle0))" \
    'BEGIN { printf "%.0f", (b + i > 0 ? 100 * b / (b + i) : 0) }')"

# ---- the stack --------------------------------------------------------------------------------

ES_DATA="$ES_ROOT/.data/bench-$$"
export ES_DATA
unset KAFKA_BROKERS ES_PG ES_QUERY_URL
W="$ES_DATA/bench"
STACK_UP=''

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    if [ -n "$LOADGEN_PID" ]; then
        kill -TERM "$LOADGEN_PID" 2>/dev/null
        wait "$LOADGEN_PID" 2>/dev/null
    fi
    if [ -n "$STACK_UP" ]; then
        if [ "$rc" -ne 0 ]; then
            for f in "$ES_DATA"/log/es-*.log; do
                [ ! -e "$f" ] || es_log_tail "$f" 15
            done
        fi
        note "stopping the stack"
        bash "$ES_ROOT/scripts/devstack.sh" down >"$W/devstack-down.log" 2>&1 ||
            es_warn "the stack did not stop cleanly: $(tail -n 3 "$W/devstack-down.log")"
    fi
    if [ "${BENCH_KEEP:-0}" = 1 ]; then
        note "BENCH_KEEP=1: kept $ES_DATA"
    else
        # the last run's logs stay, to explain a figure afterwards (PostgreSQL's checkpoints,
        # each service's batches and relay rounds): the data goes
        rm -rf -- "$ES_ROOT/.data/bench-last-logs"
        if mv -- "$ES_DATA/log" "$ES_ROOT/.data/bench-last-logs" 2>/dev/null; then
            note "the run's logs: $ES_ROOT/.data/bench-last-logs"
        fi
        rm -rf -- "$ES_DATA"
    fi
    exit "$rc"
}
LOADGEN_PID=''
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p -- "$ES_DATA" "$W" "$OUT"
printf 'es platform data folder of bench/run.sh (pid %s)\n' "$$" >"$ES_DATA/.es-data"
ES_PG_PORT="$(es_free_port)"
ES_HTTP_PORT="$(es_free_port)"
while [ "$ES_HTTP_PORT" = "$ES_PG_PORT" ]; do
    ES_HTTP_PORT="$(es_free_port)"
done
export ES_PG_PORT ES_HTTP_PORT

T_BENCH0=$SECONDS
step "machine: $M_NPROC x $M_CPU, ${M_MEM_GB} GiB; load average $M_LOAD1 $M_LOAD5 $M_LOAD15," \
    "CPU $M_BUSY% busy in the second before we started"
[ -z "$M_TOP" ] || note "biggest CPU users (average over their lifetime): $M_TOP"
[ "$M_OTHER_STACKS" -eq 0 ] || note "$M_OTHER_STACKS other es-broker process(es) running: other stacks share this machine"
step "starting a private stack in $ES_DATA (postgresql :$ES_PG_PORT, es-query :$ES_HTTP_PORT)"
note "the ledger's services only: the shop's idle consumers would share the two cores"
STACK_UP=1
if ! ES_SERVICES="es-accounts es-transfers es-projector es-query" bash "$ES_ROOT/scripts/devstack.sh" up >"$W/devstack-up.log" 2>&1; then
    sed 's/^/    /' "$W/devstack-up.log" >&2
    es_die "the stack did not start"
fi
CONNINFO="$(es_read_file "$ES_DATA/pg.conninfo")" || es_die "no $ES_DATA/pg.conninfo"
note "up in $((SECONDS - T_BENCH0)) s; broker $(cat -- "$ES_DATA/broker.addr")"

sql() {
    "$PSQL" -X -q -At -v ON_ERROR_STOP=1 "$CONNINFO" "$@"
}

esctl() {
    "$ES_BIN/esctl" "$@"
}

# A row is visible to readers once the transaction that wrote it committed. The projectors stamp
# visible_at with the clock while they write the row, before their batch commits (0.2 ms before
# at the median, 1.2 ms at p99 at 1,000 transfers/s); the figures use the commit's own time
# instead, which PostgreSQL keeps per transaction (track_commit_timestamp, scripts/pg.sh).
COMMIT_TS="$(sql -c 'SHOW track_commit_timestamp')"
[ "$COMMIT_TS" = on ] ||
    es_warn "track_commit_timestamp is off in this cluster: latency measured to visible_at (before the commit)"
# visible [ALIAS]: the SQL for when ALIAS's row became visible.
visible() {
    if [ "$COMMIT_TS" = on ]; then
        printf 'pg_xact_commit_timestamp(%sxmin)' "${1:+$1.}"
    else
        printf '%svisible_at' "${1:+$1.}"
    fi
}

# terminal_count PREFIX: transfers whose id starts with PREFIX that are COMPLETED or FAILED.
# (A range on the primary key: LIKE could not use its index under a non-C collation.)
terminal_count() {
    sql -c "SELECT count(*) FROM projections.transfers WHERE transfer_id >= '$1'
            AND transfer_id < '$1~' AND status IN ('COMPLETED', 'FAILED')"
}

# orders_terminal_count PREFIX: the same for orders (CONFIRMED or REJECTED).
orders_terminal_count() {
    sql -c "SELECT count(*) FROM shop_views.orders WHERE order_id >= '$1'
            AND order_id < '$1~' AND status IN ('CONFIRMED', 'REJECTED')"
}

# wait_terminal [--orders] PREFIX COUNT LABEL: poll every 0.5 s until COUNT transfers (with
# --orders: orders) of PREFIX are
# terminal; progress every 2 s. Prints the wall-clock time (us) the poll saw them all. The
# figures come from the rows' commit times, not from when the poll noticed, so the poll can be
# slow: each count reads every row of the run, and polling every 50 ms took a tenth of the
# database's time away from the platform being measured.
wait_terminal() {
    local count=terminal_count
    if [ "$1" = --orders ]; then
        count=orders_terminal_count
        shift
    fi
    local prefix="$1" want="$2" label="$3" got=0 i=0 t0=$SECONDS last=-1 since=$SECONDS
    while :; do
        got="$($count "$prefix")"
        if [ "$got" -ge "$want" ]; then
            now_us
            return 0
        fi
        if [ "$got" != "$last" ]; then
            last="$got"
            since=$SECONDS
        elif [ $((SECONDS - since)) -ge 30 ]; then
            es_die "$label: stuck at $got of $want terminal for 30 s"
        fi
        i=$((i + 1))
        if [ $((i % 4)) -eq 0 ]; then
            printf '    %s: %s / %s terminal (%s s)\n' "$label" "$got" "$want" $((SECONDS - t0)) >&2
        fi
        [ $((SECONDS - t0)) -lt "$TIMEOUT" ] ||
            es_die "$label: only $got of $want terminal after $TIMEOUT s"
        sleep 0.5
    done
}

# ---- 1. accounts ------------------------------------------------------------------------------

step "opening $ACCOUNTS accounts with big balances"
BIG=1000000000000000
awk -v n="$ACCOUNTS" 'BEGIN { for (i = 0; i < n; i++)
    printf "{\"account_id\":\"bench-acct-%d\",\"owner\":\"Bench %d\",\"currency\":\"EUR\"}\n", i, i }' |
    esctl send --batch OpenAccount >/dev/null
t0=$SECONDS
until [ "$(sql -c "SELECT count(*) FROM projections.accounts WHERE account_id >= 'bench-acct-'
                   AND account_id < 'bench-acct-~'")" -ge "$ACCOUNTS" ]; do
    [ $((SECONDS - t0)) -lt "$TIMEOUT" ] || es_die "the accounts were not opened within $TIMEOUT s"
    sleep 0.05
done
awk -v n="$ACCOUNTS" -v big="$BIG" 'BEGIN { for (i = 0; i < n; i++)
    printf "{\"account_id\":\"bench-acct-%d\",\"amount\":%s}\n", i, big }' |
    esctl send --batch DepositFunds >/dev/null
until [ "$(sql -c "SELECT count(*) FROM projections.accounts WHERE account_id >= 'bench-acct-'
                   AND account_id < 'bench-acct-~' AND balance >= $BIG")" -ge "$ACCOUNTS" ]; do
    [ $((SECONDS - t0)) -lt "$TIMEOUT" ] || es_die "the deposits were not made within $TIMEOUT s"
    sleep 0.05
done
note "$ACCOUNTS accounts open, $BIG each, in $((SECONDS - t0)) s"

# ---- 2. end-to-end throughput -----------------------------------------------------------------

step "end-to-end throughput: $RUNS runs of $N transfers (esctl send --batch RequestTransfer)"
TPUT=()
SAGA_TPUT=()
TCPU=()
for ((r = 1; r <= RUNS; r++)); do
    prefix="tp$$-$r-"
    awk -v n="$N" -v a="$ACCOUNTS" -v p="$prefix" -v seed="$$$r" 'BEGIN { srand(seed);
        for (i = 0; i < n; i++) {
            f = int(rand() * a); t = (f + 1 + int(rand() * (a - 1))) % a
            printf "{\"transfer_id\":\"%s%07d\",\"from_account\":\"bench-acct-%d\",", p, i, f
            printf "\"to_account\":\"bench-acct-%d\",\"amount\":1}\n", t } }' >"$W/run$r.jsonl"
    settle
    cpu_snapshot >"$W/cpu-run-0"
    t_start="$(now_us)"
    esctl send --batch RequestTransfer <"$W/run$r.jsonl" >/dev/null
    t_sent="$(now_us)"
    note "run $r: $N published in $(awk -v a="$t_start" -v b="$t_sent" 'BEGIN { printf "%.2f", (b - a) / 1e6 }') s"
    t_seen="$(wait_terminal "$prefix" "$N" "run $r")"
    cpu_snapshot >"$W/cpu-run-1"
    TCPU+=("$(cpu_ms "$W/cpu-run-0" "$W/cpu-run-1" "$N")")
    # updated_at is the terminal event's occurred_at: when the saga itself was done, before the
    # projector made it visible. The gap between the two tells where the time went.
    IFS='|' read -r t_end t_saga completed failed < <(sql -c "SELECT
        (extract(epoch FROM max($(visible))) * 1e6)::bigint,
        (extract(epoch FROM max(updated_at)) * 1e6)::bigint,
        count(*) FILTER (WHERE status = 'COMPLETED'), count(*) FILTER (WHERE status = 'FAILED')
        FROM projections.transfers WHERE transfer_id >= '$prefix' AND transfer_id < '$prefix~'")
    tput="$(awk -v n="$N" -v a="$t_start" -v b="$t_end" 'BEGIN { printf "%.0f", n * 1e6 / (b - a) }')"
    TPUT+=("$tput")
    note "run $r: all terminal after $(awk -v a="$t_start" -v b="$t_end" 'BEGIN { printf "%.3f", (b - a) / 1e6 }') s" \
        "(poll saw it at $(awk -v a="$t_start" -v b="$t_seen" 'BEGIN { printf "%.2f", (b - a) / 1e6 }') s):" \
        "$tput transfers/s, ${TCPU[-1]} ms of CPU each; $completed completed, $failed failed;" \
        "the saga's last event at $(awk -v a="$t_start" -v b="$t_saga" 'BEGIN { printf "%.2f", (b - a) / 1e6 }') s"
    SAGA_TPUT+=("$(awk -v n="$N" -v a="$t_start" -v b="$t_saga" 'BEGIN { printf "%.0f", n * 1e6 / (b - a) }')")
    [ "$failed" -eq 0 ] || es_warn "run $r: $failed transfers FAILED (all accounts are funded: expected 0)"
done

# percentiles FILE: "p50 p90 p99 max mean" (nearest rank) of a sorted column of numbers.
percentiles() {
    awk '{ v[NR] = $1; s += $1 }
        function pct(q,  k) { k = int(q * NR); if (k < q * NR) k++; if (k < 1) k = 1; return v[k] }
        END { printf "%.1f %.1f %.1f %.1f %.1f\n", pct(0.5), pct(0.9), pct(0.99), v[NR], s / NR }' "$1"
}

# loadgen_latency transfers|orders RATE SECS PREFIX NAME [quiet]: es-loadgen at RATE/s for SECS s,
# ids starting with PREFIX (send times in $W/NAME.csv, send->visible latencies in $W/NAME.txt);
# prints "achieved count p50 p90 p99 max mean cpu" (cpu: cpu_ms from the first send until the
# last is visible; cpu_snapshot at both ends in $W/NAME.cpu0 and .cpu1). Its report goes to
# stderr unless quiet.
loadgen_latency() {
    local kind="$1" rate="$2" secs="$3" prefix="$4" out="$W/$5" quiet="${6:-}" n achieved cpu
    local table=projections.transfers key=transfer_id wait_args=()
    local args=(--rate "$rate" --seconds "$secs" --prefix "$prefix" --out "$out.csv")
    if [ "$kind" = orders ]; then
        args+=(--kind orders --accounts "$SHOP_USERS" --account-prefix bench-cust-
            --products "$SHOP_PRODUCTS")
        table=shop_views.orders key=order_id wait_args=(--orders)
    else
        args+=(--accounts "$ACCOUNTS" --account-prefix bench-acct-)
    fi
    settle
    cpu_snapshot >"$out.cpu0"
    "$ES_BIN/es-loadgen" "${args[@]}" 2>"$out.log" || {
        sed 's/^/    /' "$out.log" >&2
        es_die "es-loadgen ($kind at $rate/s) failed"
    }
    [ -n "$quiet" ] || sed 's/^/    /' "$out.log" >&2
    n="$(wc -l <"$out.csv")"
    achieved="$(sed -n 's/.*: \([0-9.]*\)\/s (target.*/\1/p' "$out.log" | tail -n 1)"
    wait_terminal "${wait_args[@]}" "$prefix" "$n" "$kind at $rate/s" >/dev/null
    cpu_snapshot >"$out.cpu1"
    cpu="$(cpu_ms "$out.cpu0" "$out.cpu1" "$n")"
    sql >/dev/null <<EOF
CREATE TEMP TABLE lg_sent (id text PRIMARY KEY, sent_us bigint NOT NULL);
\copy lg_sent FROM '$out.csv' WITH (FORMAT csv)
\copy (SELECT round((extract(epoch FROM $(visible t)) * 1e6 - s.sent_us) / 1e3, 3) FROM lg_sent s JOIN $table t ON t.$key = s.id ORDER BY 1) TO '$out.txt'
EOF
    [ "$(wc -l <"$out.txt")" -eq "$n" ] ||
        es_die "only $(wc -l <"$out.txt") of $n sent $kind found in $table"
    printf '%s %s %s %s\n' "${achieved:-0}" "$n" "$(percentiles "$out.txt")" "$cpu"
}

# at_rest transfers|orders [RATE]: loadgen_latency at RATE/s (default REST_RATE) for REST_SECS
# s; prints "p50 p99 count" of send->visible: what the hops themselves cost, with nothing (or
# little) queued in front of them.
at_rest() {
    local rate="${2:-$REST_RATE}" n p50 p99
    read -r _ n p50 _ p99 _ _ _ < <(loadgen_latency "$1" "$rate" "$REST_SECS" "rest$$-$1-$rate-" \
        "rest-$1-$rate" quiet)
    printf '%s %s %s\n' "$p50" "$p99" "$n"
}

# hops PREFIX FILE: for the order sagas whose subject starts with PREFIX, "step|p50|p99" of
# each kind of step after its cause (occurred_at, ms), in saga order, into FILE (empty when
# the coordinator has not seen them).
hops() {
    local want
    want="$(sql -c "SELECT count(*) FROM sagas.sagas WHERE subject >= '$1' AND subject < '$1~'" 2>/dev/null || echo 0)"
    sql -F'|' -c "SELECT ctype || ' -> ' || type,
            round(percentile_cont(0.5) WITHIN GROUP (ORDER BY d)::numeric, 1),
            round(percentile_cont(0.99) WITHIN GROUP (ORDER BY d)::numeric, 1)
        FROM (SELECT c.type AS ctype, s.type, c.occurred_at AS at,
                     extract(epoch FROM s.occurred_at - c.occurred_at) * 1000 AS d
                FROM sagas.steps s JOIN sagas.steps c ON c.event_id = s.causation_id
                JOIN sagas.sagas g ON g.saga_id = s.saga_id
               WHERE g.subject >= '$1' AND g.subject < '$1~') x
        GROUP BY 1 HAVING count(*) * 2 >= ${want:-0} ORDER BY min(at)" >"$2" 2>/dev/null || : >"$2"
}

median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1; if ($1 ~ /\./) f = "%.2f\n" } END {
    if (NR % 2) print v[(NR + 1) / 2]; else printf (f ? f : "%.0f\n"), (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
TPUT_MED="$(median "${TPUT[@]}")"
TCPU_MED="$(median "${TCPU[@]}")"
SAGA_TPUT_MED="$(median "${SAGA_TPUT[@]}")"
note "median: $TPUT_MED transfers/s (runs: ${TPUT[*]}); counting only up to the saga's last event" \
    "(without the projector): $SAGA_TPUT_MED transfers/s"

# ---- 3. latency at a fixed rate ---------------------------------------------------------------

step "latency at a fixed rate: $RATE transfers/s for $SECS s (bin/es-loadgen)"
settle
prefix="lat$$-"
cpu_snapshot >"$W/cpu-lat-0"
"$ES_BIN/es-loadgen" --rate "$RATE" --seconds "$SECS" --accounts "$ACCOUNTS" \
    --account-prefix bench-acct- --prefix "$prefix" --out "$W/sent.csv" 2>"$W/loadgen.log" &
LOADGEN_PID=$!
t0=$SECONDS
while es_pid_alive "$LOADGEN_PID"; do
    sleep 1
    if [ $(((SECONDS - t0) % 5)) -eq 0 ]; then
        note "sending: $(terminal_count "$prefix") terminal after $((SECONDS - t0)) s"
    fi
done
lg_rc=0
wait "$LOADGEN_PID" || lg_rc=$?
LOADGEN_PID=''
sed 's/^/    /' "$W/loadgen.log" >&2
[ "$lg_rc" -eq 0 ] || es_die "es-loadgen failed (exit $lg_rc)"
LAT_N="$(wc -l <"$W/sent.csv")"
LAT_ACHIEVED="$(sed -n 's/.*: \([0-9.]*\)\/s (target.*/\1/p' "$W/loadgen.log" | tail -n 1)"
LAT_PACING="$(sed -n 's/.*worst pacing lag \([0-9.]*\) ms.*/\1/p' "$W/loadgen.log" | tail -n 1)"
wait_terminal "$prefix" "$LAT_N" "fixed rate" >/dev/null
cpu_snapshot >"$W/cpu-lat-1"
LAT_CPU="$(cpu_ms "$W/cpu-lat-0" "$W/cpu-lat-1" "$LAT_N")"
cpu_split "$W/cpu-lat-0" "$W/cpu-lat-1" "$LAT_N" >"$W/cpu-split-lat"
sql >/dev/null <<EOF
CREATE TEMP TABLE sent (transfer_id text PRIMARY KEY, sent_us bigint NOT NULL);
\copy sent FROM '$W/sent.csv' WITH (FORMAT csv)
\copy (SELECT round((extract(epoch FROM $(visible t)) * 1e6 - s.sent_us) / 1e3, 3) FROM sent s JOIN projections.transfers t USING (transfer_id) ORDER BY 1) TO '$W/latency.txt'
\copy (SELECT round((extract(epoch FROM t.updated_at) * 1e6 - s.sent_us) / 1e3, 3) FROM sent s JOIN projections.transfers t USING (transfer_id) ORDER BY 1) TO '$W/saga-latency.txt'
EOF
[ "$(wc -l <"$W/latency.txt")" -eq "$LAT_N" ] ||
    es_die "only $(wc -l <"$W/latency.txt") of $LAT_N sent transfers found in projections.transfers"
read -r LAT_P50 LAT_P90 LAT_P99 LAT_MAX LAT_MEAN < <(percentiles "$W/latency.txt")
note "$LAT_N transfers at $LAT_ACHIEVED/s: p50 $LAT_P50 ms, p90 $LAT_P90 ms, p99 $LAT_P99 ms, max $LAT_MAX ms; $LAT_CPU ms of CPU each"
# The same up to the terminal event's occurred_at (ms resolution): the saga without the projector.
read -r SAGA_P50 _ SAGA_P99 _ _ < <(percentiles "$W/saga-latency.txt")
note "up to the saga's terminal event (before the projector): p50 $SAGA_P50 ms, p99 $SAGA_P99 ms"

step "latency at rest: $REST_RATE transfers/s for $REST_SECS s"
read -r REST_P50 REST_P99 REST_N < <(at_rest transfers)
note "$REST_N transfers: p50 $REST_P50 ms, p99 $REST_P99 ms (five hops: command, debit, credit, outcome, projection)"
step "latency at the reference's rate: $REF_PY_P99_RATE transfers/s for $REST_SECS s"
read -r REF_P50 REF_P99 REF_N < <(at_rest transfers "$REF_PY_P99_RATE")
note "$REF_N transfers: p50 $REF_P50 ms, p99 $REF_P99 ms (the Python saga: p99 $REF_PY_P99_MS ms)"

# ---- 4. replay decode rate --------------------------------------------------------------------

step "replay decode rate: esctl replay --stats over the whole log, $REPLAYS times"
# let the platform finish what the latency run left behind (relays deleting published rows,
# autovacuum) so the replays compete with as little as possible on two cores
sleep 3
REPLAY=()
REPLAY_EVENTS=0
for ((r = 1; r <= REPLAYS; r++)); do
    esctl replay --stats >/dev/null 2>"$W/replay$r.log" || {
        sed 's/^/    /' "$W/replay$r.log" >&2
        es_die "esctl replay failed"
    }
    line="$(grep 'records/s' "$W/replay$r.log" | tail -n 1)"
    eps="$(sed -n 's/.*: \([0-9]*\) records\/s.*/\1/p' <<<"$line")"
    REPLAY_EVENTS="$(sed -n 's/.* \([0-9]*\) read in .*/\1/p' <<<"$line")"
    [ -n "$eps" ] || es_die "could not read the rate from esctl replay --stats: $line"
    REPLAY+=("$eps")
    note "replay $r: ${line#esctl replay: }"
done
REPLAY_MED="$(median "${REPLAY[@]}")"

# ---- 5. the shop -------------------------------------------------------------------------------

if [ "$SHOP" = 1 ]; then
    step "the shop: starting its services (users, catalog, orders, payments, shop projector)"
    for svc in es-users es-catalog es-orders es-payments es-shop-projector; do
        bash "$ES_ROOT/scripts/devstack.sh" start "$svc" >>"$W/devstack-up.log" 2>&1 ||
            es_die "$svc did not start (log: $ES_DATA/log/$svc.log)"
    done
    t0=$SECONDS
    esctl send OpenAccount '{"account_id":"shop-merchant","owner":"The shop","currency":"EUR"}' >/dev/null
    awk -v n="$SHOP_USERS" 'BEGIN { for (i = 0; i < n; i++)
        printf "{\"account_id\":\"bench-cust-%d\",\"owner\":\"Customer %d\",\"currency\":\"EUR\"}\n", i, i }' |
        esctl send --batch OpenAccount >/dev/null
    awk -v n="$SHOP_USERS" 'BEGIN { for (i = 0; i < n; i++)
        printf "{\"user_id\":\"bench-user-%d\",\"email\":\"bench-user-%d@example.com\",\"name\":\"Customer %d\"}\n", i, i, i }' |
        esctl send --batch RegisterUser >/dev/null
    awk -v n="$SHOP_PRODUCTS" 'BEGIN { for (i = 0; i < n; i++)
        printf "{\"product_id\":\"bench-prod-%d\",\"name\":\"Product %d\",\"price\":100,\"stock\":1000000000000}\n", i, i }' |
        esctl send --batch AddProduct >/dev/null
    until [ "$(sql -c "SELECT count(*) FROM accounts.accounts WHERE account_id >= 'bench-cust-' AND account_id < 'bench-cust-~'")" -ge "$SHOP_USERS" ]; do
        [ $((SECONDS - t0)) -lt "$TIMEOUT" ] || es_die "the customers' accounts were not opened within $TIMEOUT s"
        sleep 0.1
    done
    awk -v n="$SHOP_USERS" -v big="$BIG" 'BEGIN { for (i = 0; i < n; i++)
        printf "{\"account_id\":\"bench-cust-%d\",\"amount\":%s}\n", i, big }' |
        esctl send --batch DepositFunds >/dev/null
    # the orders service prices and checks orders from its own copies of users and prices
    until [ "$(sql -c "SELECT count(*) FROM orders.users")" -ge "$SHOP_USERS" ] &&
        [ "$(sql -c "SELECT count(*) FROM orders.prices")" -ge "$SHOP_PRODUCTS" ] &&
        [ "$(sql -c "SELECT count(*) FROM accounts.accounts WHERE account_id >= 'bench-cust-' AND account_id < 'bench-cust-~' AND balance >= $BIG")" -ge "$SHOP_USERS" ] &&
        [ "$(sql -c "SELECT count(*) FROM accounts.accounts WHERE account_id = 'shop-merchant'")" = 1 ]; do
        [ $((SECONDS - t0)) -lt "$TIMEOUT" ] || es_die "the shop was not set up within $TIMEOUT s"
        sleep 0.1
    done
    note "$SHOP_USERS customers with funded accounts, $SHOP_PRODUCTS products, in $((SECONDS - t0)) s"

    step "orders end to end: $RUNS runs of $SHOP_N orders of two lines (esctl send --batch PlaceOrder)"
    OTPUT=()
    OCPU=()
    for ((r = 1; r <= RUNS; r++)); do
        prefix="op$$-$r-"
        awk -v n="$SHOP_N" -v u="$SHOP_USERS" -v np="$SHOP_PRODUCTS" -v p="$prefix" -v seed="$$$r" 'BEGIN { srand(seed)
            for (i = 0; i < n; i++) {
                c = int(rand() * u); a = int(rand() * np); b = (a + 1 + int(rand() * (np - 1))) % np
                printf "{\"order_id\":\"%s%07d\",\"user_id\":\"bench-user-%d\",\"account_id\":\"bench-cust-%d\",", p, i, c, c
                printf "\"items\":[{\"product_id\":\"bench-prod-%d\",\"quantity\":1},{\"product_id\":\"bench-prod-%d\",\"quantity\":1}]}\n", a, b } }' \
            >"$W/orders$r.jsonl"
        settle
        cpu_snapshot >"$W/cpu-orders-0"
        t_start="$(now_us)"
        esctl send --batch PlaceOrder <"$W/orders$r.jsonl" >/dev/null
        wait_terminal --orders "$prefix" "$SHOP_N" "orders run $r" >/dev/null
        cpu_snapshot >"$W/cpu-orders-1"
        OCPU+=("$(cpu_ms "$W/cpu-orders-0" "$W/cpu-orders-1" "$SHOP_N")")
        cpu_split "$W/cpu-orders-0" "$W/cpu-orders-1" "$SHOP_N" >"$W/cpu-split-orders" # the last run's
        IFS='|' read -r t_end confirmed rejected < <(sql -c "SELECT
            (extract(epoch FROM max($(visible))) * 1e6)::bigint,
            count(*) FILTER (WHERE status = 'CONFIRMED'), count(*) FILTER (WHERE status = 'REJECTED')
            FROM shop_views.orders WHERE order_id >= '$prefix' AND order_id < '$prefix~'")
        otput="$(awk -v n="$SHOP_N" -v a="$t_start" -v b="$t_end" 'BEGIN { printf "%.0f", n * 1e6 / (b - a) }')"
        OTPUT+=("$otput")
        note "orders run $r: all terminal after $(awk -v a="$t_start" -v b="$t_end" 'BEGIN { printf "%.3f", (b - a) / 1e6 }') s:" \
            "$otput orders/s, ${OCPU[-1]} ms of CPU each; $confirmed confirmed, $rejected rejected"
        [ "$rejected" -eq 0 ] || es_warn "orders run $r: $rejected orders REJECTED (stock and money are plenty: expected 0)"
    done
    OTPUT_MED="$(median "${OTPUT[@]}")"
    OCPU_MED="$(median "${OCPU[@]}")"
    note "median: $OTPUT_MED orders/s (runs: ${OTPUT[*]})"

    step "order latency at a fixed rate: $SHOP_RATE orders/s for $SECS s (es-loadgen --kind orders)"
    read -r OLAT_ACHIEVED OLAT_N OLAT_P50 OLAT_P90 OLAT_P99 OLAT_MAX OLAT_MEAN OLAT_CPU < <(loadgen_latency orders "$SHOP_RATE" "$SECS" "olat$$-" olatency)
    cpu_split "$W/olatency.cpu0" "$W/olatency.cpu1" "$OLAT_N" >"$W/cpu-split-olat"
    note "$OLAT_N orders at $OLAT_ACHIEVED/s: p50 $OLAT_P50 ms, p90 $OLAT_P90 ms, p99 $OLAT_P99 ms, max $OLAT_MAX ms; $OLAT_CPU ms of CPU each"

    step "order latency at rest: $REST_RATE orders/s for $REST_SECS s"
    read -r OREST_P50 OREST_P99 OREST_N < <(at_rest orders)
    note "$OREST_N orders: p50 $OREST_P50 ms, p99 $OREST_P99 ms (ten hops)"

    # The saga coordinator, started only now (it stays out of the figures above): how fast it
    # follows the whole log of both sagas, from the journal and the broker, from cold.
    step "the saga coordinator: es-sagas reads every step of every saga above, from cold"
    bash "$ES_ROOT/scripts/devstack.sh" start es-sagas >>"$W/devstack-up.log" 2>&1 ||
        es_die "es-sagas did not start (log: $ES_DATA/log/es-sagas.log)"
    t0=$SECONDS
    first_us='' first_n=0 last_us='' last_n=0
    while [ $((SECONDS - t0)) -lt "$TIMEOUT" ]; do
        n="$(sql -c 'SELECT count(*) FROM sagas.steps' 2>/dev/null || echo 0)"
        now="$(now_us)"
        if [ "$n" -gt 0 ] && [ -z "$first_us" ]; then
            first_us="$now" first_n="$n"
        fi
        if [ "$n" != "$last_n" ]; then
            last_us="$now" last_n="$n"
        elif [ -n "$first_us" ] && [ $((now - last_us)) -gt 2000000 ]; then
            break # no new step for 2 s: it has read everything
        fi
        sleep 0.2
    done
    [ -n "$first_us" ] && [ "$last_us" != "$first_us" ] || es_die "es-sagas recorded no steps"
    SAGA_STEPS="$last_n"
    SAGA_COUNT="$(sql -c 'SELECT count(*) FROM sagas.sagas')"
    SAGA_OPEN="$(sql -c "SELECT count(*) FROM sagas.sagas WHERE status IN ('PENDING', 'TIMED_OUT')")"
    SAGA_RATE="$(awk -v n=$((last_n - first_n)) -v a="$first_us" -v b="$last_us" 'BEGIN { printf "%.0f", n * 1e6 / (b - a) }')"
    note "$SAGA_STEPS steps of $SAGA_COUNT sagas followed at $SAGA_RATE steps/s ($SAGA_OPEN not ended)"
    # Where an order's time went, at the fixed rate and at rest: each step of those orders'
    # sagas after the step that caused it (occurred_at, ms), in saga order.
    hops "olat$$-" "$W/hops.txt"
    hops "rest$$-orders-" "$W/hops-rest.txt"

    # The same fixed rate with the coordinator following along, as `make up` runs the platform:
    # it records every step of both sagas, and takes its share of the two cores.
    step "order latency with the saga coordinator running: $SHOP_RATE orders/s for $SECS s"
    read -r OSAGA_ACHIEVED OSAGA_N OSAGA_P50 OSAGA_P90 OSAGA_P99 OSAGA_MAX _ OSAGA_CPU < <(loadgen_latency orders "$SHOP_RATE" "$SECS" "osaga$$-" olatency-sagas)
    note "$OSAGA_N orders at $OSAGA_ACHIEVED/s: p50 $OSAGA_P50 ms, p90 $OSAGA_P90 ms, p99 $OSAGA_P99 ms, max $OSAGA_MAX ms; $OSAGA_CPU ms of CPU each"

    # What the whole stack costs doing nothing: every service, the coordinator, the broker
    # and PostgreSQL, after the work above has settled.
    step "the whole stack at rest: CPU of every process for ${IDLE_SECS} s"
    sleep 5
    t_a="$(stack_ticks)" u_a="$(now_us)"
    sleep "$IDLE_SECS"
    t_b="$(stack_ticks)" u_b="$(now_us)"
    IDLE_CPU="$(awk -v t=$((t_b - t_a)) -v hz="$(getconf CLK_TCK)" -v us=$((u_b - u_a)) \
        'BEGIN { printf "%.1f", t * 100 / hz / (us / 1e6) }')"
    note "the stack at rest: $IDLE_CPU% of one core"
fi

# ---- 6. results -------------------------------------------------------------------------------

verdict() { # verdict VALUE OP TARGET
    if awk -v v="$1" -v t="$3" -v op="$2" 'BEGIN { exit !(op == ">=" ? v >= t : v < t) }'; then
        echo met
    else
        echo missed
    fi
}
V_TPUT="$(verdict "$TPUT_MED" '>=' "$TARGET_TPUT")"
V_P99="$(verdict "$LAT_P99" '<' "$TARGET_P99_MS")"
V_REPLAY="$(verdict "$REPLAY_MED" '>=' "$TARGET_REPLAY")"
if [ "$SHOP" = 1 ]; then
    V_OTPUT="$(verdict "$OTPUT_MED" '>=' "$TARGET_ORDERS_TPUT")"
    V_OP99="$(verdict "$OLAT_P99" '<' "$TARGET_ORDERS_P99_MS")"
fi
xf() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1fx", a / b }'; }
# The CPU split's three readings side by side: "name transfers orders_full orders_at_rate" (0:
# not measured there), the largest share of the orders at full speed first.
for f in 1:lat 2:orders 3:olat; do
    sed "s/^/${f%%:*} /" "$W/cpu-split-${f#*:}" 2>/dev/null || true
done | awk '{ v[$1, $2] = $3; names[$2] = 1 }
    END { for (k in names) printf "%s %s %s %s\n", k, v[1, k] + 0, v[2, k] + 0, v[3, k] + 0 }' |
    sort -k3,3gr -k2,2gr >"$W/cpu-split.txt"

{
    printf '\n%sbench results%s  (%s; %s x %s; before: load average %s %s %s, CPU %s%% busy, %s other es-broker)\n\n' \
        "$ES_C_BOLD" "$ES_C_OFF" "$M_DATE" "$M_NPROC" "$M_CPU" "$M_LOAD1" "$M_LOAD5" "$M_LOAD15" \
        "$M_BUSY" "$M_OTHER_STACKS"
    printf '%-34s %14s %14s %8s  %s\n' measure ours target verdict 'reference (Python saga)'
    printf '%-34s %14s %14s %8s  %s\n' "end to end, transfers/s (median)" "$TPUT_MED" \
        ">= $TARGET_TPUT" "$V_TPUT" "$REF_PY_BATCHED batched ($(xf "$TPUT_MED" "$REF_PY_BATCHED")), $REF_PY_SINGLE one tx/msg ($(xf "$TPUT_MED" "$REF_PY_SINGLE"))"
    printf '%-34s %14s\n' "  each run" "${TPUT[*]}"
    printf '%-34s %14s\n' "  saga only (no projector), median" "$SAGA_TPUT_MED"
    printf '%-34s %14s\n' "  CPU per transfer, ms (median)" "$TCPU_MED"
    printf '%-34s %14s %14s %8s  %s\n' "p99 send->visible at $RATE/s, ms" "$LAT_P99" \
        "< $TARGET_P99_MS" "$V_P99" "$REF_PY_P99_MS ms at $REF_PY_P99_RATE/s"
    printf '%-34s %14s\n' "  p50 / p90 / max, ms" "$LAT_P50 / $LAT_P90 / $LAT_MAX"
    printf '%-34s %14s\n' "  achieved rate, transfers/s" "$LAT_ACHIEVED"
    printf '%-34s %14s\n' "  CPU per transfer, ms" "$LAT_CPU"
    printf '%-34s %14s\n' "  saga only (no projector) p50/p99" "$SAGA_P50 / $SAGA_P99"
    printf '%-34s %14s\n' "  at rest ($REST_RATE/s) p50/p99" "$REST_P50 / $REST_P99"
    printf '%-34s %14s %14s %8s  %s\n' "  at $REF_PY_P99_RATE/s p50/p99" "$REF_P50 / $REF_P99" '' '' \
        "p99 $REF_PY_P99_MS ms at $REF_PY_P99_RATE/s ($(xf "$REF_PY_P99_MS" "$REF_P99") ours)"
    printf '%-34s %14s %14s %8s\n' "replay decode, events/s (median)" "$REPLAY_MED" \
        ">= $TARGET_REPLAY" "$V_REPLAY"
    printf '%-34s %14s\n' "  each run ($REPLAY_EVENTS events)" "${REPLAY[*]}"
    if [ "$SHOP" = 1 ]; then
        printf '%-34s %14s %14s %8s\n' "orders end to end, orders/s" "$OTPUT_MED" \
            ">= $TARGET_ORDERS_TPUT" "$V_OTPUT"
        printf '%-34s %14s\n' "  each run ($SHOP_N orders, 2 lines)" "${OTPUT[*]}"
        printf '%-34s %14s\n' "  CPU per order, ms (median)" "$OCPU_MED"
        printf '%-34s %14s %14s %8s\n' "p99 placed->visible at $SHOP_RATE/s, ms" "$OLAT_P99" \
            "< $TARGET_ORDERS_P99_MS" "$V_OP99"
        printf '%-34s %14s\n' "  p50 / p90 / max, ms" "$OLAT_P50 / $OLAT_P90 / $OLAT_MAX"
        printf '%-34s %14s\n' "  achieved rate, orders/s" "$OLAT_ACHIEVED"
        printf '%-34s %14s\n' "  CPU per order, ms" "$OLAT_CPU"
        printf '%-34s %14s\n' "  at rest ($REST_RATE/s) p50/p99" "$OREST_P50 / $OREST_P99"
        printf '%-34s %14s\n' "  coordinator running: p50/p99" "$OSAGA_P50 / $OSAGA_P99"
        printf '%-34s %14s\n' "  coordinator running: CPU/order" "$OSAGA_CPU"
        printf '%-34s %14s\n' "saga coordinator, steps/s from cold" "$SAGA_RATE"
        printf '%-34s %14s\n' "  steps, sagas" "$SAGA_STEPS, $SAGA_COUNT"
        printf '%-34s %14s\n' "whole stack at rest, % of a core" "$IDLE_CPU"
    fi
    printf '\n'
    # ASCII bars: throughput against the target and the references, then the latency histogram.
    printf 'transfers/s end to end\n'
    printf '%s\n' "ours (median)|$TPUT_MED" "target|$TARGET_TPUT" "Python batched|$REF_PY_BATCHED" \
        "Python 1 tx/msg|$REF_PY_SINGLE" | awk -F'|' '{ l[NR] = $1; v[NR] = $2; if ($2 > m) m = $2 }
        END { for (i = 1; i <= NR; i++) { w = int(v[i] / m * 50 + 0.5); b = ""
              for (j = 0; j < w; j++) b = b "#"; printf "  %-16s %-50s %s\n", l[i], b, v[i] } }'
    printf '\np99 latency, ms (lower is better)\n'
    printf '%s\n' "ours at $RATE/s|$LAT_P99" "target|$TARGET_P99_MS" \
        "ours at $REF_PY_P99_RATE/s|$REF_P99" "Python at $REF_PY_P99_RATE/s|$REF_PY_P99_MS" | awk -F'|' '{ l[NR] = $1; v[NR] = $2; if ($2 > m) m = $2 }
        END { for (i = 1; i <= NR; i++) { w = int(v[i] / m * 50 + 0.5); b = ""
              for (j = 0; j < w; j++) b = b "#"; printf "  %-16s %-50s %s\n", l[i], b, v[i] } }'
    printf '\nsend -> visible latency at %s/s (%s transfers), ms\n' "$RATE" "$LAT_N"
    awk -v p99="$LAT_P99" '{ v[NR] = $1 } END {
        hi = p99 * 1.5; if (hi < 5) hi = 5; w = hi / 12
        for (i = 1; i <= NR; i++) { b = int(v[i] / w); if (b > 12) b = 12; c[b]++ }
        for (b = 0; b <= 12; b++) if (c[b] > m) m = c[b]
        for (b = 0; b <= 12; b++) { bar = ""; n = int(c[b] / m * 50 + 0.5)
            for (j = 0; j < n; j++) bar = bar "#"
            if (b < 12) lab = sprintf("%6.1f-%-6.1f", b * w, (b + 1) * w); else lab = sprintf(">= %-9.1f", 12 * w)
            printf "  %s %-50s %d\n", lab, bar, c[b] } }' "$W/latency.txt"
    if [ -s "$W/hops.txt" ]; then
        printf '\nwhere an order'"'"'s time goes: each step after its cause, ms\n'
        printf '  %-36s %-40s %s   %s\n' '' "at $SHOP_RATE/s: p50 #, p99 +" "p50 / p99" "at rest, p50"
        awk -F'|' 'FNR == NR { r[$1] = $2; next }
            { l[++n] = $1; a[n] = $2; b[n] = $3; if ($3 > m) m = $3 }
            END { for (i = 1; i <= n; i++) { w = int(a[i] / m * 40 + 0.5); x = int(b[i] / m * 40 + 0.5); bar = ""
                  for (j = 0; j < x; j++) bar = bar (j < w ? "#" : "+")
                  printf "  %-36s %-40s %s / %s   %s\n", l[i], bar, a[i], b[i], (l[i] in r ? r[l[i]] : "-") } }' \
            "$W/hops-rest.txt" "$W/hops.txt"
    fi
    if [ -s "$W/cpu-split.txt" ]; then
        printf '\nwhere the CPU goes: ms of CPU per record, by process ("pg:" a service'"'"'s PostgreSQL backend)\n'
        printf '  %-24s %14s %14s %14s   %s\n' '' "$RATE tx/s" "orders, full" "$SHOP_RATE orders/s" \
            "orders, full speed: # (scaled to the largest)"
        awk '{ r[NR] = $0; if ($3 > m) m = $3; for (i = 2; i <= 4; i++) t[i] += $i }
                END { for (i = 1; i <= NR; i++) { split(r[i], a, " "); b = ""
                          for (j = 0; m > 0 && j < int(a[3] / m * 30 + 0.5); j++) b = b "#"
                          printf "  %-24s %14s %14s %14s   %s\n", a[1], (a[2] > 0 ? sprintf("%.3f", a[2]) : "-"),
                              (a[3] > 0 ? sprintf("%.3f", a[3]) : "-"), (a[4] > 0 ? sprintf("%.3f", a[4]) : "-"), b }
                      printf "  %-24s %14.3f %14.3f %14.3f\n", "total", t[2], t[3], t[4] }' "$W/cpu-split.txt"
    fi
    printf '\n'
} | tee "$W/summary.txt"

# results.json, by hand: every value is a number or a string we made.
jstr() { printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')"; }
jarr() { local IFS=,; printf '[%s]' "$*"; }
jobj() { awk '{ printf "%s\"%s\": %s", (NR > 1 ? ", " : ""), $1, $2 }' "$1" 2>/dev/null; } # "name value" lines
{
    printf '{\n'
    printf '  "date": %s,\n' "$(jstr "$M_DATE")"
    printf '  "machine": {"nproc": %s, "cpu_model": %s, "mem_gib": %s,\n' "$M_NPROC" \
        "$(jstr "$M_CPU")" "$M_MEM_GB"
    printf '    "load_average_before": [%s, %s, %s], "cpu_busy_pct_before": %s,\n' \
        "$M_LOAD1" "$M_LOAD5" "$M_LOAD15" "$M_BUSY"
    printf '    "top_cpu_users_before": %s, "other_es_brokers_running": %s},\n' \
        "$(jstr "$M_TOP")" "$M_OTHER_STACKS"
    printf '  "config": {"transfers_per_run": %s, "runs": %s, "accounts": %s, "rate": %s, "seconds": %s, "replays": %s, "partitions": %s},\n' \
        "$N" "$RUNS" "$ACCOUNTS" "$RATE" "$SECS" "$REPLAYS" "${ES_PARTITIONS:-6}"
    printf '  "throughput": {"unit": "transfers/s", "median": %s, "runs": %s, "target": %s, "verdict": "%s",\n' \
        "$TPUT_MED" "$(jarr "${TPUT[@]}")" "$TARGET_TPUT" "$V_TPUT"
    printf '    "saga_only_median": %s, "saga_only_runs": %s, "saga_only_what": "up to the last terminal event (updated_at), before the projector made it visible",\n' \
        "$SAGA_TPUT_MED" "$(jarr "${SAGA_TPUT[@]}")"
    printf '    "cpu_ms_per_transfer": %s, "cpu_ms_runs": %s, "cpu_what": "%s"},\n' \
        "$TCPU_MED" "$(jarr "${TCPU[@]}")" "$CPU_WHAT"
    printf '  "latency": {"unit": "ms", "what": "%s - sent_at", "rate_target": %s, "rate_achieved": %s, "count": %s,\n' \
        "$(visible)" "$RATE" "$LAT_ACHIEVED" "$LAT_N"
    printf '    "p50": %s, "p90": %s, "p99": %s, "max": %s, "mean": %s, "worst_pacing_lag_ms": %s, "target_p99": %s, "verdict": "%s", "cpu_ms_per_transfer": %s,\n' \
        "$LAT_P50" "$LAT_P90" "$LAT_P99" "$LAT_MAX" "$LAT_MEAN" "${LAT_PACING:-null}" "$TARGET_P99_MS" "$V_P99" "$LAT_CPU"
    printf '    "saga_only_p50": %s, "saga_only_p99": %s, "saga_only_what": "updated_at (terminal event occurred_at, ms) - sent_at",\n' \
        "$SAGA_P50" "$SAGA_P99"
    printf '    "at_rest": {"rate": %s, "count": %s, "p50": %s, "p99": %s},\n' \
        "$REST_RATE" "$REST_N" "$REST_P50" "$REST_P99"
    printf '    "at_reference_rate": {"rate": %s, "count": %s, "p50": %s, "p99": %s, "reference_p99": %s}},\n' \
        "$REF_PY_P99_RATE" "$REF_N" "$REF_P50" "$REF_P99" "$REF_PY_P99_MS"
    printf '  "replay": {"unit": "events/s", "median": %s, "runs": %s, "events": %s, "target": %s, "verdict": "%s"},\n' \
        "$REPLAY_MED" "$(jarr "${REPLAY[@]}")" "${REPLAY_EVENTS:-0}" "$TARGET_REPLAY" "$V_REPLAY"
    if [ "$SHOP" = 1 ]; then
        printf '  "orders": {"what": "PlaceOrder of two lines until CONFIRMED or REJECTED is visible in shop_views.orders", "orders_per_run": %s,\n' "$SHOP_N"
        printf '    "throughput": {"unit": "orders/s", "median": %s, "runs": %s, "target": %s, "verdict": "%s", "cpu_ms_per_order": %s, "cpu_ms_runs": %s},\n' \
            "$OTPUT_MED" "$(jarr "${OTPUT[@]}")" "$TARGET_ORDERS_TPUT" "$V_OTPUT" "$OCPU_MED" "$(jarr "${OCPU[@]}")"
        printf '    "latency": {"unit": "ms", "rate_target": %s, "rate_achieved": %s, "count": %s, "p50": %s, "p90": %s, "p99": %s, "max": %s, "mean": %s, "target_p99": %s, "verdict": "%s", "cpu_ms_per_order": %s},\n' \
            "$SHOP_RATE" "$OLAT_ACHIEVED" "$OLAT_N" "$OLAT_P50" "$OLAT_P90" "$OLAT_P99" "$OLAT_MAX" "$OLAT_MEAN" "$TARGET_ORDERS_P99_MS" "$V_OP99" "$OLAT_CPU"
        printf '    "at_rest": {"rate": %s, "count": %s, "p50": %s, "p99": %s},\n' \
            "$REST_RATE" "${OREST_N:-0}" "${OREST_P50:-null}" "${OREST_P99:-null}"
        printf '    "latency_with_coordinator": {"what": "the fixed rate again, es-sagas running (as make up runs it)", "rate_achieved": %s, "count": %s, "p50": %s, "p90": %s, "p99": %s, "max": %s, "cpu_ms_per_order": %s},\n' \
            "$OSAGA_ACHIEVED" "$OSAGA_N" "$OSAGA_P50" "$OSAGA_P90" "$OSAGA_P99" "$OSAGA_MAX" "$OSAGA_CPU"
        printf '    "hops_ms": {"what": "each step of the orders sagas after its cause (occurred_at)", "at_rate": [%s], "at_rest": [%s]}},\n' \
            "$(awk -F'|' '{ printf "%s{\"step\": \"%s\", \"p50\": %s, \"p99\": %s}", (NR > 1 ? ", " : ""), $1, $2, $3 }' "$W/hops.txt" 2>/dev/null)" \
            "$(awk -F'|' '{ printf "%s{\"step\": \"%s\", \"p50\": %s, \"p99\": %s}", (NR > 1 ? ", " : ""), $1, $2, $3 }' "$W/hops-rest.txt" 2>/dev/null)"
        printf '  "saga_coordinator": {"what": "es-sagas started after every run above, following the whole log from cold (journal and broker)", "unit": "steps/s", "steps_per_s": %s, "steps": %s, "sagas": %s, "not_ended": %s},\n' \
            "$SAGA_RATE" "$SAGA_STEPS" "$SAGA_COUNT" "$SAGA_OPEN"
        printf '  "at_rest": {"what": "CPU of every program of the stack and of its PostgreSQL, doing nothing, after everything above", "unit": "%% of one core", "cpu": %s, "seconds": %s},\n' \
            "$IDLE_CPU" "$IDLE_SECS"
        printf '  "cpu_by_process": {"what": "ms of CPU per record by process (pg: a service'"'"'s PostgreSQL backend, pg:(server) the rest of PostgreSQL): transfers at the fixed rate, the last orders run at full speed, orders at the fixed rate", "transfers_at_rate": {%s}, "orders_full_speed": {%s}, "orders_at_rate": {%s}},\n' \
            "$(jobj "$W/cpu-split-lat")" "$(jobj "$W/cpu-split-orders")" "$(jobj "$W/cpu-split-olat")"
    fi
    printf '  "reference": {"what": "tutorial-style Python saga on this machine", "single_tx_per_message": %s, "batched": %s, "p99_ms": %s, "p99_at_rate": %s}\n' \
        "$REF_PY_SINGLE" "$REF_PY_BATCHED" "$REF_PY_P99_MS" "$REF_PY_P99_RATE"
    printf '}\n'
} >"$W/results.json"
cp -- "$W/results.json" "$OUT/results.json"

awk -f "$ES_ROOT/bench/svg.awk" -v tput="$TPUT_MED" -v tput_runs="${TPUT[*]}" -v saga_tput="$SAGA_TPUT_MED" \
    -v target_tput="$TARGET_TPUT" -v py_batched="$REF_PY_BATCHED" -v py_single="$REF_PY_SINGLE" \
    -v p50="$LAT_P50" -v p90="$LAT_P90" -v p99="$LAT_P99" -v pmax="$LAT_MAX" \
    -v target_p99="$TARGET_P99_MS" -v py_p99="$REF_PY_P99_MS" -v py_rate="$REF_PY_P99_RATE" \
    -v ref_p99="$REF_P99" -v lat_end="$([ "$COMMIT_TS" = on ] && echo "its commit" || echo "visible_at")" \
    -v rate="$RATE" -v achieved="$LAT_ACHIEVED" -v replay="$REPLAY_MED" \
    -v target_replay="$TARGET_REPLAY" \
    -v orders_tput="${OTPUT_MED:-}" -v orders_runs="${OTPUT[*]:-}" -v target_orders_tput="$TARGET_ORDERS_TPUT" \
    -v orders_p99="${OLAT_P99:-}" -v orders_p50="${OLAT_P50:-}" -v orders_rate="$SHOP_RATE" \
    -v target_orders_p99="$TARGET_ORDERS_P99_MS" -v cpu_split="$([ "$SHOP" = 1 ] && echo "$W/cpu-split.txt")" \
    -v machine="$M_DATE; $M_NPROC x $M_CPU; before start: load average $M_LOAD1, CPU $M_BUSY% busy, $M_OTHER_STACKS other es-broker running" \
    "$W/latency.txt" >"$W/results.svg"
cp -- "$W/results.svg" "$OUT/results.svg"
step "done in $((SECONDS - T_BENCH0)) s: $OUT/results.json, $OUT/results.svg"
