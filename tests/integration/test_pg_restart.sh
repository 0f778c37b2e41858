#!/usr/bin/env bash
# test_pg_restart.sh: PostgreSQL goes away for a few seconds while transfers flow. The services
# retry their batch, reconnect and carry on; nothing is lost or applied twice. Then a service
# told to stop while PostgreSQL is away stops at once, and its batch is done after its restart.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ledger.sh"
. "$(dirname "$0")/bank.sh"

# wal_ready: WAL segments in the cluster's pg_wal (scripts/pg.sh makes 1 GiB ready at creation)
wal_ready() { find "$ES_DATA/pg/pg_wal" -maxdepth 1 -regextype posix-extended -regex '.*/[0-9A-F]{24}' | wc -l; }

# as scripts/pg.sh makes them for `make up` (lib.sh turns this off for the other tests)
export ES_PG_WAL_READY_MB=1024
stack_start
n="$(wal_ready)"
[ "$n" -ge 64 ] || fail "a new cluster has $n WAL segments, not the 64 (1 GiB) scripts/pg.sh makes ready"
pass "a new cluster has $n WAL segments ready"
# the programs connect through the cluster's private socket, not TCP
grep -q "^host='$ES_DATA/pgsock' " "$ES_DATA/pg.conninfo" ||
    fail "pg.conninfo does not name the private socket: $(cat "$ES_DATA/pg.conninfo")"
assert_eq 0 "$(sql "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'accounts' AND client_port <> -1")" \
    "es-accounts' connections over TCP"
n="$(sql "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'accounts' AND client_port = -1")"
[ "$n" -ge 1 ] || fail "es-accounts has no connection through the socket"
pass "es-accounts' connections through the socket: $n"
bank_open 20 acct- 100000
wait_until 30 "[ \"\$(sql \"SELECT count(*) FROM projections.accounts\")\" = 20 ]"
# 1,000 transfers in chunks over ~6 s, while PostgreSQL stops for 4 s in the middle
(for c in $(seq 1 20); do
    bank_transfers 50 20 acct- "pg$c-" | esctl send --batch RequestTransfer >/dev/null
    sleep 0.3
done) &
sender=$!
at_exit "kill $sender 2>/dev/null"
sleep 1.5
svc_stop pg
note "PostgreSQL is down for 4 s"
sleep 4
svc_start pg
wait "$sender"
ledger_wait_settled 1000 120
for s in accounts transfers projector query; do
    svc_running "$s" || fail "es-$s did not survive the PostgreSQL restart"
done
pass "every service survived the PostgreSQL restart"
n="$(wal_ready)"
[ "$n" -ge 48 ] || fail "after a restart the cluster has $n WAL segments left of the 64 made ready"
pass "the WAL segments made ready outlive a restart ($n)"
grep -q 'batch failed, retrying' "$ES_DATA"/log/es-*.log ||
    fail "no service noticed the outage (the test did not test anything)"
pass "the services retried their batches through the outage"
ledger_check
# The relays reconnected with fresh prepared statements and went back to their fast path
# (a reused connection address once kept a stale statement cache: every fast-path statement
# failed and the relay bounced between its two paths).
restarted_at="$(date -u +%Y-%m-%dT%H:%M:%S)"
sleep 2
if grep -q 'prepared statement .* does not exist' "$ES_DATA"/log/es-*.log; then
    grep -h 'prepared statement' "$ES_DATA"/log/es-*.log | head -3 | sed 's/^/    /' >&2
    fail "a service used a prepared statement from before the restart"
fi
pass "no statement prepared before the restart was used after it"
for s in accounts transfers; do
    last="$(grep -h 'msg="relay \(on the fast path\|back to rounds\)' "$ES_DATA/log/es-$s.log" | tail -n 1)"
    case "$last" in
    *'on the fast path'*) ;;
    *) fail "es-$s's relay did not return to its fast path after the restart (last: ${last:-none}; at $restarted_at)" ;;
    esac
done
pass "both relays are back on their fast path"

# Stopped while PostgreSQL is away: es-transfers holds a batch of commands it cannot commit and
# would wait up to 30 s for each reconnection; on SIGTERM it gives up waiting, says the batch
# was not committed and stops (devstack would kill it with -9 after 10 s). The commands are read
# again when it starts.
svc_stop pg
retries() { grep -c 'batch failed, retrying' "$ES_DATA/log/es-transfers.log" || true; }
before="$(retries)"
bank_transfers 50 20 acct- late- | esctl send --batch RequestTransfer >/dev/null
wait_until 20 "[ \"\$(retries)\" -gt $before ]"
t0=$SECONDS
svc_stop transfers
took=$((SECONDS - t0))
[ "$took" -le 6 ] || fail "es-transfers took $took s to stop while PostgreSQL was away"
pass "es-transfers stopped in $took s while PostgreSQL was away"
grep -q 'stopping with a batch not committed' "$ES_DATA/log/es-transfers.log" ||
    fail "es-transfers did not say that its batch was not committed"
pass "es-transfers said its batch was not committed"
svc_start pg
svc_start transfers
ledger_wait_settled 1050 120
ledger_check
