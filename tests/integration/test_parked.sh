#!/usr/bin/env bash
# test_parked.sh: a record Kafka refuses for good must not stall a service's outbox. The
# accounts service runs with a producer limit (message.max.bytes) below the broker's: a 300 kB
# garbage input is accepted by the broker, but its dead letter cannot be produced. The relay
# parks it in accounts.outbox_parked with the reason, says so in the log, and every later event
# still flows.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/bank.sh"

stack_start
out="$(esctl send OpenAccount '{"account_id":"big-a","owner":"A","currency":"EUR"}' --wait)"
P="$(jq -r .partition <<<"$out")"
esctl send OpenAccount '{"account_id":"big-b","owner":"B","currency":"EUR"}' --wait >/dev/null
svc_stop accounts
ES_KAFKA_PROPS=message.max.bytes=200000 svc_start accounts

head -c 300000 /dev/urandom >"$ES_DATA/big.bin"
bank_rawprod accounts.commands "$P" big-a "@$ES_DATA/big.bin" >/dev/null

# later commands on the same partition, and a whole saga, still go through
out="$(esctl send DepositFunds '{"account_id":"big-a","amount":300}' --wait)"
assert_eq ACCEPTED "$(jq -r .status <<<"$out")" "a deposit after the oversized record"
out="$(esctl send RequestTransfer '{"transfer_id":"big-t","from_account":"big-a","to_account":"big-b","amount":100}' --wait)"
assert_eq COMPLETED "$(jq -r .transfer.status <<<"$out")" "a transfer after the oversized record"

wait_until 30 "[ \"\$(sql 'SELECT count(*) FROM accounts.outbox_parked')\" = 1 ]"
assert_eq "accounts.dlq" "$(sql 'SELECT topic FROM accounts.outbox_parked')" "the parked record's topic"
reason="$(sql 'SELECT error FROM accounts.outbox_parked')"
[ -n "$reason" ] || fail "the parked record has no reason"
pass "parked with its reason: $reason"
assert_eq 300000 "$(sql 'SELECT length(value) FROM accounts.outbox_parked')" "the parked record keeps its bytes"
grep -q 'outbox record parked' "$ES_DATA/log/es-accounts.log" || fail "the log does not report the parked record"
pass "the log reports it"
# the relay deletes acknowledged rows in bulk, every 100 ms on its fast path (lib/relay.c)
wait_until 10 "[ \"\$(sql 'SELECT count(*) FROM accounts.outbox')\" = 0 ]" || true
assert_eq 0 "$(sql 'SELECT count(*) FROM accounts.outbox')" "nothing left waiting in the outbox"
