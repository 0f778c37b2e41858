#!/usr/bin/env bash
# test_rebuild.sh: `esctl rebuild ledger` while transfers keep flowing. The rebuild shows its
# progress and says it swapped the projection in; the query service answers right after the
# swap; two rebuilds in a row work; once the traffic has settled the projection agrees with the
# services (ledger_check) and with yet another rebuild, row by row. Last, a rebuild stopped
# (SIGSTOP) while it holds the swap lock pauses the live projector for at most the idle
# transaction timeout of its session (lib/projection.c), not for as long as it stays stopped.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ledger.sh"
. "$(dirname "$0")/bank.sh"

N_ACCOUNTS=30
N_BEFORE=1000
N_DURING=3000

stack_start
bank_open "$N_ACCOUNTS" acct- 10000

# some history first
bank_transfers "$N_BEFORE" "$N_ACCOUNTS" acct- t1- 11 >"$ES_DATA/before.jsonl"
bank_send "$ES_DATA/before.jsonl" 2
ledger_wait_settled "$N_BEFORE" 120

# rebuild_now N: run a rebuild, check what it printed and that es-query answers at once
rebuild_now() {
    local n="$1" out rc=0 t0=$SECONDS
    out="$(esctl rebuild ledger 2>&1)" || rc=$?
    http GET /accounts/acct-0 >"$ES_DATA/after-swap-$n.json" || fail "GET /accounts/acct-0 right after rebuild $n failed"
    if [ "$rc" -ne 0 ]; then
        printf '%s\n' "$out" | tail -n 20 | sed 's/^/    /' >&2
        fail "rebuild $n failed (exit $rc)"
    fi
    assert_eq acct-0 "$(jq -r .account_id "$ES_DATA/after-swap-$n.json")" "GET /accounts/acct-0 right after rebuild $n"
    grep -q 'rebuilding ledger.*events' <<<"$out" || fail "rebuild $n printed no progress: $out"
    pass "rebuild $n printed its progress"
    grep -q 'rebuilt projection "ledger" from [0-9]* events and swapped it in' <<<"$out" ||
        fail "rebuild $n did not say it swapped the projection in: $out"
    pass "rebuild $n swapped in after $((SECONDS - t0)) s: $(tail -n 1 <<<"$out")"
}

# the rebuilds run while a paced batch of transfers is in flight
bank_transfers "$N_DURING" "$N_ACCOUNTS" acct- t2- 22 >"$ES_DATA/during.jsonl"
(bank_send "$ES_DATA/during.jsonl" 30 0.3) &
SENDER=$!
wait_until 30 "[ \$(bank_settled_count) -gt $((N_BEFORE + 100)) ]"
rebuild_now 1
settled_between="$(bank_settled_count)"
rebuild_now 2
note "settled: $settled_between after rebuild 1, $(bank_settled_count) after rebuild 2"
if kill -0 "$SENDER" 2>/dev/null; then
    pass "the transfers were still being sent during both rebuilds"
else
    note "the sender had finished before the second rebuild ended"
fi
wait "$SENDER" || fail "sending the transfers failed"

ledger_wait_settled $((N_BEFORE + N_DURING)) 180
assert_eq $((N_BEFORE + N_DURING)) "$(sql "SELECT count(*) FROM projections.transfers")" "transfers in the projection"
ledger_check

# a rebuild at rest reproduces the live projection row by row
bank_snapshot rebuild_live
rebuild_now 3
bank_rebuild_matches rebuild_live
assert_eq 0 "$(sql "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'projections_%'")" "schemas left over by the rebuilds"

# ---- a rebuild stopped while it holds the swap lock -------------------------------------------
# A session of ours holds the lock shared, as a live batch does, so the rebuild's last phase
# waits for it; the rebuild is stopped there, then our session ends and the stopped rebuild's
# transaction gets the lock. Transfers sent then are projected once PostgreSQL ended that idle
# transaction (25 s), and the rebuild, let run again, fails and says why.
SWAP_LOCK="$(sed -n 's/^#define PROJECTOR_SWAP_LOCK \([0-9]*\).*/\1/p' "$ES_ROOT/projections/projector/main.c")"
[ -n "$SWAP_LOCK" ] || fail "PROJECTOR_SWAP_LOCK not found in projections/projector/main.c"
lock_state() {
    sql "SELECT string_agg(granted::text, ',') FROM pg_locks WHERE locktype = 'advisory' AND objid = $SWAP_LOCK AND mode = 'ExclusiveLock'"
}
(PGAPPNAME=swap-lock-holder sql "SELECT pg_advisory_lock_shared($SWAP_LOCK), pg_sleep(600)" >/dev/null 2>&1 || true) &
HOLDER=$!
wait_until 10 "[ \"\$(sql \"SELECT count(*) FROM pg_stat_activity WHERE application_name = 'swap-lock-holder' AND wait_event = 'PgSleep'\")\" = 1 ]"
"$ES_BIN/esctl" rebuild ledger >"$ES_DATA/stopped-rebuild.out" 2>&1 &
RB=$!
at_exit "kill -CONT $RB 2>/dev/null; kill $HOLDER 2>/dev/null"
wait_until 60 "[ \"\$(lock_state)\" = false ]"
kill -STOP "$RB"
pass "the rebuild waits for the swap lock in its last phase; stopped it there (SIGSTOP)"
sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'swap-lock-holder'" >/dev/null
wait "$HOLDER" || true
wait_until 10 "[ \"\$(lock_state)\" = true ]"
pass "the stopped rebuild's transaction holds the swap lock"
t_stop=$SECONDS
bank_transfers 20 "$N_ACCOUNTS" acct- t3- 33 >"$ES_DATA/stalled.jsonl"
bank_send "$ES_DATA/stalled.jsonl"
sleep 3
stalled="$(sql "SELECT count(*) FROM projections.transfers WHERE transfer_id LIKE 't3-%'")"
note "$stalled of 20 transfers projected 3 s after they were sent (the live projector waits for the lock)"
ledger_wait_settled $((N_BEFORE + N_DURING + 20)) 45
pass "the live projector went on $((SECONDS - t_stop)) s after the rebuild stopped holding its lock"
assert_eq "" "$(lock_state)" "swap lock holders once the stopped rebuild's session ended"
kill -CONT "$RB"
rb_rc=0
wait "$RB" || rb_rc=$?
[ "$rb_rc" -ne 0 ] || fail "the rebuild let run again after its session ended exited 0: $(tail -n 3 "$ES_DATA/stopped-rebuild.out")"
grep -q 'lost its PostgreSQL session.*idle inside a transaction for 25 s' "$ES_DATA/stopped-rebuild.out" ||
    fail "the failed rebuild did not say it lost its session: $(tail -n 3 "$ES_DATA/stopped-rebuild.out")"
pass "the rebuild let run again failed (exit $rb_rc) and says why: $(grep -m 1 'lost its PostgreSQL session' "$ES_DATA/stopped-rebuild.out")"
ledger_check
bank_snapshot rebuild_live_2
rebuild_now 4
bank_rebuild_matches rebuild_live_2
assert_eq 0 "$(sql "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'projections_%'")" "schemas left over once a rebuild ran again"
