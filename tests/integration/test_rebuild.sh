#!/usr/bin/env bash
# test_rebuild.sh: `esctl rebuild ledger` while transfers keep flowing. The rebuild shows its
# progress and says it swapped the projection in; the query service answers right after the
# swap; two rebuilds in a row work; once the traffic has settled the projection agrees with the
# services (ledger_check) and with yet another rebuild, row by row.
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
