#!/usr/bin/env bash
# test_scale_out.sh: two instances of es-accounts in one consumer group split the partitions;
# when one is killed (-9) in the middle of ~1,000 transfers the other takes over its partitions
# (and the outbox relay), every transfer still ends, the ledger holds, and each account's events
# reach accounts.events in version order. Then a third instance joins and leaves while 1,000 more
# flow: the same holds when partitions move under load.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ledger.sh"
. "$(dirname "$0")/bank.sh"

N_ACCOUNTS=20
N_TRANSFERS=1000
PARTITIONS_TOTAL=24 # accounts.commands, transfers.events, accounts.events, sagas.events: 6 each

stack_start

# last_assigned LOG: the count of the instance's latest "partitions assigned" line (0: none).
last_assigned() {
    local n
    n="$(grep 'msg="partitions assigned"' "$1" 2>/dev/null | tail -n 1 | sed -n 's/.*count=\([0-9]*\).*/\1/p')"
    printf '%s\n' "${n:-0}"
}
# settled_assignment LOG: true if the latest assignment line is an assignment (not mid-rebalance).
settled_assignment() {
    local last
    last="$(grep 'msg="partitions \(assigned\|revoked\)"' "$1" 2>/dev/null | tail -n 1)"
    case "$last" in *'partitions assigned'*) return 0 ;; esac
    return 1
}

LOG1="$ES_DATA/log/es-accounts.log"
LOG2="$ES_DATA/log/es-accounts-2.log"
# alone, the instance publishes committed batches from memory
wait_until 30 "grep -q 'msg=\"relay on the fast path' '$LOG1'"
pass "alone, the first instance's relay takes the fast path"
"$ES_BIN/es-accounts" </dev/null >>"$LOG2" 2>&1 &
PID2=$!
at_exit "kill -KILL $PID2 2>/dev/null; wait $PID2 2>/dev/null"
note "second es-accounts started (pid $PID2)"

# both instances own a share of the 24 partitions
wait_until 60 "settled_assignment '$LOG1' && settled_assignment '$LOG2' &&
    [ \$(last_assigned '$LOG1') -gt 0 ] && [ \$(last_assigned '$LOG2') -gt 0 ] &&
    [ \$((\$(last_assigned '$LOG1') + \$(last_assigned '$LOG2'))) = $PARTITIONS_TOTAL ]"
pass "partitions split between the instances: $(last_assigned "$LOG1") + $(last_assigned "$LOG2")"
# sharing the partitions, the first instance's relay reads rows back in seq order again
grep -q 'msg="relay back to rounds through PostgreSQL".*no longer handles every partition' "$LOG1" ||
    fail "the first instance's relay kept its fast path after sharing the partitions"
pass "the relay left its fast path when a second instance joined"

bank_open "$N_ACCOUNTS"

TRANSFERS="$ES_DATA/transfers.jsonl"
bank_transfers "$N_TRANSFERS" "$N_ACCOUNTS" acct- t- 4242 >"$TRANSFERS"

t0=$SECONDS
# ten chunks, 0.3 s apart, in the background; the first instance (it relays the outbox: it
# started first) dies once a quarter of them have settled
(bank_send "$TRANSFERS" 10 0.3) &
SENDER=$!
wait_until 60 "[ \$(bank_settled_count) -ge $((N_TRANSFERS / 4)) ]"
settled_at_kill="$(bank_settled_count)"
svc_kill9 accounts
note "killed the first instance with $settled_at_kill of $N_TRANSFERS transfers settled"
wait "$SENDER" || fail "sending the transfers failed"
sent_at="$(bank_settled_count)"
note "all transfers sent; $sent_at settled"

# the survivor owns every partition (the broker notices the death after the session timeout)
wait_until 60 "settled_assignment '$LOG2' && [ \$(last_assigned '$LOG2') = $PARTITIONS_TOTAL ]"
pass "the surviving instance owns all $PARTITIONS_TOTAL partitions"
assert 'kill -0 $PID2' "the surviving instance is running"

ledger_wait_settled "$N_TRANSFERS" 180
note "$N_TRANSFERS transfers settled in $((SECONDS - t0)) s"
grep -q 'msg="this instance relays the outbox"' "$LOG2" ||
    fail "the surviving instance never took over the outbox relay"
pass "the surviving instance took over the outbox relay"
wait_until 30 "grep -q 'msg=\"relay on the fast path' '$LOG2'"
pass "alone again, the survivor's relay took the fast path"
assert_eq "$N_TRANSFERS" "$(sql "SELECT count(*) FROM transfers.transfers")" "transfers known to the service"
ledger_check

# versions_in_order WHEN: each account's events appear in strictly increasing version order in
# accounts.events (per-aggregate order)
versions_in_order() {
    local bad
    bad="$(bank_versions_in_order)"
    if [ -n "$bad" ]; then
        printf '%s\n' "$bad" | head -20 | sed 's/^/    /' >&2
        fail "events of some accounts are out of version order in accounts.events $1"
    fi
    pass "every account's events are in version order in accounts.events $1"
}
versions_in_order "after the kill"
assert_eq "$N_ACCOUNTS" "$(esctl replay --topic accounts.events | jq -r "select(.aggregate_version > 0) | .key" | sort -u | wc -l)" "accounts with events"

# Partitions moving under load: a third instance joins while 1,000 more transfers flow, then
# leaves on SIGTERM. Each rebalance takes away the records an instance had polled and not yet
# handled (they are read again by the partitions' owner): every transfer still ends once, and
# the order per account holds.
TRANSFERS2="$ES_DATA/transfers2.jsonl"
bank_transfers "$N_TRANSFERS" "$N_ACCOUNTS" acct- u- 4343 >"$TRANSFERS2"
LOG3="$ES_DATA/log/es-accounts-3.log"
(bank_send "$TRANSFERS2" 20 0.2) &
SENDER=$!
"$ES_BIN/es-accounts" </dev/null >>"$LOG3" 2>&1 &
PID3=$!
at_exit "kill -KILL $PID3 2>/dev/null; wait $PID3 2>/dev/null"
wait_until 60 "settled_assignment '$LOG2' && settled_assignment '$LOG3' && [ \$(last_assigned '$LOG3') -gt 0 ]"
pass "a third instance joined while transfers flowed: $(last_assigned "$LOG2") + $(last_assigned "$LOG3") partitions"
kill -TERM "$PID3"
rc3=0
wait "$PID3" || rc3=$?
assert_eq 0 "$rc3" "the third instance's exit status after SIGTERM"
wait "$SENDER" || fail "sending the second transfers failed"
wait_until 60 "settled_assignment '$LOG2' && [ \$(last_assigned '$LOG2') = $PARTITIONS_TOTAL ]"
pass "the remaining instance owns all $PARTITIONS_TOTAL partitions again"
ledger_wait_settled $((2 * N_TRANSFERS)) 180
ledger_check
versions_in_order "after the partitions moved under load"
note "records left to their partitions' owner at a rebalance: $(grep -h 'msg="partitions moved' "$LOG2" "$LOG3" |
    sed -n 's/.*records=\([0-9]*\).*/\1/p' | awk '{ n += $1 } END { print n + 0 }')"
