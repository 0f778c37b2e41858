#!/usr/bin/env bash
# test_dedup_window.sh: the dedup window (lib/dedup.h) keeps <schema>.processed bounded and the
# effects exact. With ES_DEDUP_WINDOW=4 (seconds):
#   - a copy of a command published again at once (as the broker does with a retried produce)
#     is recognised and dropped: the money moves once;
#   - once its partition has moved more than the window past it, the command's dedup mark is
#     deleted, and the marks of recent inputs stay; es-query's /metrics shows the table's size;
#   - a copy arriving after that is too old to be told from a new command: it is not applied
#     but dead-lettered to accounts.dlq with the reason, and the projection agrees;
#   - the projector, whose writes are guarded by versions and which keeps no marks, ignores a
#     late copy of an event, live and in a rebuild from the log.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ledger.sh"
. "$(dirname "$0")/bank.sh"

export ES_DEDUP_WINDOW=4
stack_start

send_wait() { esctl send "$1" "$2" --wait --timeout 30; }
field() { jq -r "$1" <<<"$2"; }
balance() { sql "SELECT balance FROM accounts.accounts WHERE account_id = '$1'"; }
marks_of() { sql "SELECT count(*) FROM accounts.processed WHERE event_id = '$1'::uuid"; }
# handled_past PARTITION OFFSET: es-accounts has read accounts.commands/PARTITION past OFFSET
handled_past() {
    [ "$(sql "SELECT coalesce(max(next_offset), 0) FROM accounts.positions
              WHERE topic = 'accounts.commands' AND partition = $1")" -gt "$2" ]
}

send_wait OpenAccount '{"account_id":"dw-a","owner":"A","currency":"EUR"}' >/dev/null
out="$(send_wait DepositFunds '{"account_id":"dw-a","amount":100}')"
assert_eq "ACCEPTED 100" "$(field '.status + " " + (.account.balance|tostring)' "$out")" "deposit of 100"
P="$(field .partition "$out")"
OFF="$(field .offset "$out")"
CMD="$(field .command_id "$out")"
assert_eq 1 "$(marks_of "$CMD")" "the deposit has its dedup mark"
sql "SELECT part <> 0 AND at_ms > 0 FROM accounts.processed WHERE event_id = '$CMD'::uuid" |
    grep -qx t || fail "the mark carries its partition and time"
assert_eq t "$(sql "SELECT newest_ms > 0 AND part <> 0 FROM accounts.positions
                    WHERE topic = 'accounts.commands' AND partition = $P")" \
    "the partition's newest time is stored with its position"

# ---- a copy within the window: dropped -----------------------------------------------------
read -r _ copy1 < <(bank_copy accounts.commands "$P" "$OFF")
note "copy of the deposit at offset $copy1 (within the window)"
wait_until 30 "handled_past $P $copy1" || fail "es-accounts did not read past the copy"
assert_eq 100 "$(balance dw-a)" "a copy within the window is not applied again"
assert_eq "" "$(bank_dlq_record accounts.dlq accounts.commands "$P" "$copy1")" \
    "... and not dead-lettered: it is a known duplicate"

# ---- the partition moves on: the old mark goes, recent ones stay --------------------------
sleep 5
out="$(send_wait DepositFunds '{"account_id":"dw-a","amount":1}')"
assert_eq 101 "$(balance dw-a)" "a later deposit on the same partition"
assert_eq "$P" "$(field .partition "$out")" "same account, same partition"
RECENT="$(field .command_id "$out")"
wait_until 20 "[ \"\$(marks_of $CMD)\" = 0 ]" ||
    fail "the old deposit's dedup mark was not deleted once its partition moved past the window"
pass "the old deposit's dedup mark is deleted"
assert_eq 1 "$(marks_of "$RECENT")" "the recent deposit's mark stays"
# the table's size is on es-query's /metrics (the statistics' estimate, a second or so late)
wait_until 20 "http GET /metrics | grep -qE '^es_table_rows\\{schema=\"accounts\",table=\"processed\"\\} [0-9]+\$'" ||
    fail "GET /metrics has no es_table_rows for accounts.processed"
pass "GET /metrics: $(http GET /metrics | grep '^es_table_rows{schema="accounts",table="processed"}')"
grep -q '"old dedup marks deleted"\|old dedup marks deleted' "$ES_DATA/log/es-accounts.log" ||
    fail "es-accounts does not log the deletion"

# ---- a copy after that: too old, dead-lettered, not applied ---------------------------------
read -r _ copy2 < <(bank_copy accounts.commands "$P" "$OFF")
note "copy of the deposit at offset $copy2 (past the window)"
# and a copy of the event it caused, which the projector reads
ev="$(esctl replay --topic accounts.events --aggregate dw-a --type FundsDeposited | head -n 1)"
EP="$(field .partition "$ev")"
read -r _ evcopy < <(bank_copy accounts.events "$EP" "$(field .offset "$ev")")
note "copy of its FundsDeposited at accounts.events/$EP/$evcopy (past the window)"
wait_until 30 "[ -n \"\$(bank_dlq_record accounts.dlq accounts.commands $P $copy2)\" ]" ||
    fail "the late copy was not dead-lettered"
reason="$(bank_dlq_record accounts.dlq accounts.commands "$P" "$copy2" | head -n 1 |
    jq -r '.headers["es-dlq-reason"]')"
[[ "$reason" == "too old to deduplicate"* ]] || fail "dead-letter reason: $reason"
pass "a copy past the window -> accounts.dlq: $reason"
assert_eq 101 "$(balance dw-a)" "the late copy is not applied"
wait_until 30 "[ \"\$(http GET /accounts/dw-a | jq .balance)\" = 101 ]" ||
    fail "the projection shows $(http GET /accounts/dw-a | jq .balance), not 101"
pass "the projection agrees: 101"
# the projector keeps no dedup marks (its writes are guarded by versions): it just ignores it
wait_until 30 "[ \"\$(sql \"SELECT coalesce(max(next_offset), 0) FROM projections.positions
    WHERE topic = 'accounts.events' AND partition = $EP\")\" -gt $evcopy ]" ||
    fail "the projector did not read past the copy of the event"
assert_eq 2 "$(http GET '/accounts/dw-a/entries?limit=10' | jq '.entries | length')" \
    "the projection has two deposits, the copies none"

# ---- new commands still flow; a rebuild from the log agrees ---------------------------------
out="$(send_wait DepositFunds '{"account_id":"dw-a","amount":10}')"
assert_eq 111 "$(balance dw-a)" "a new deposit after the dead letter is applied"
esctl rebuild ledger >/dev/null 2>&1 || fail "esctl rebuild ledger failed"
assert_eq 111 "$(http GET /accounts/dw-a | jq .balance)" "the rebuilt projection: 111"
assert_eq 3 "$(http GET '/accounts/dw-a/entries?limit=10' | jq '.entries | length')" \
    "the rebuilt projection has the three deposits, not the late copy of the event"
ledger_check
