#!/usr/bin/env bash
# test_stalled_tx.sh: a stopped (SIGSTOP) instance must not hold the others up.
#  1. Stopped in the middle of a batch's transaction, a service holds its rows' locks; an
#     instance that took its partitions over would wait on them for as long as it stays
#     stopped. Its session ends after 10 s idle in that transaction
#     (idle_in_transaction_session_timeout, lib/service.c): the locks are released and the
#     batch rolled back. Let run again, the service notices, reconnects and redoes the batch;
#     every transfer is applied exactly once.
#  2. Stopped while its relay leads (the relay's lock is its PostgreSQL session's), an instance
#     kept every other instance from publishing. Its relay's session ends after 10 s idle
#     (idle_session_timeout, lib/relay.c): a second instance takes its partitions and the
#     relay, and transfers complete while the first is still stopped; let run again, it
#     follows; the ledger holds and each account's events stay in version order.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ledger.sh"
. "$(dirname "$0")/bank.sh"

stack_start
bank_open 20 acct- 100000
wait_until 30 "[ \"\$(sql \"SELECT count(*) FROM projections.accounts\")\" = 20 ]"
ACC="$(svc_pid accounts)"
# transfers keep coming through the stall: every one must end, and be applied once
bank_transfers 2400 20 acct- st- >"$ES_DATA/stream.jsonl"
(bank_send "$ES_DATA/stream.jsonl" 60 0.25) &
sender=$!
at_exit "kill $sender 2>/dev/null; kill -CONT $ACC 2>/dev/null"
sleep 1
# Catch it inside a transaction: this session holds acct-0's row for 3 s, a transfer from acct-0
# makes es-accounts' batch wait for it (its backend "active", waiting on the lock), and the
# service is stopped then. Once the lock is released its backend finishes the batch's reads
# and waits for the next statement of a client that does not run: "idle in transaction".
sql "BEGIN; SELECT 1 FROM accounts.accounts WHERE account_id = 'acct-0' FOR UPDATE; SELECT pg_sleep(3); COMMIT" >/dev/null &
locker=$!
sleep 0.5
esctl send RequestTransfer '{"transfer_id":"st-lock","from_account":"acct-0","to_account":"acct-1","amount":1}' >/dev/null
wait_until 10 "[ -n \"\$(sql \"SELECT pid FROM pg_stat_activity WHERE application_name = 'accounts' AND wait_event_type = 'Lock'\")\" ]" ||
    fail "es-accounts' batch did not wait for the locked account"
kill -STOP "$ACC"
wait "$locker"
wait_until 5 "[ -n \"\$(sql \"SELECT pid FROM pg_stat_activity WHERE application_name = 'accounts' AND state = 'idle in transaction'\")\" ]" ||
    fail "the stopped service's backend is not idle in its transaction"
backend="$(sql "SELECT pid FROM pg_stat_activity WHERE application_name = 'accounts' AND state = 'idle in transaction' LIMIT 1")"
note "es-accounts stopped inside a transaction (backend $backend)"
t0=$SECONDS
wait_until 20 "[ -z \"\$(sql \"SELECT pid FROM pg_stat_activity WHERE pid = $backend\")\" ]" ||
    fail "the stopped service's session still holds its transaction after 20 s"
took=$((SECONDS - t0))
assert "[ $took -ge 7 ] && [ $took -le 15 ]" "its session ended ${took} s after the stop (10 s idle in its transaction)"
grep -q 'idle-in-transaction timeout' "$ES_DATA/log/postgresql.log" ||
    fail "PostgreSQL's log does not say why it ended the session"
pass "PostgreSQL's log says the session ended for its idle transaction"
kill -CONT "$ACC"
wait "$sender"
ledger_wait_settled 2401 120
svc_running accounts || fail "es-accounts did not survive its stall"
pass "es-accounts survived its stall"
grep -q 'batch failed, retrying' "$ES_DATA/log/es-accounts.log" ||
    fail "es-accounts did not notice that its transaction was ended"
pass "es-accounts noticed its session had ended, reconnected and redid its batch"
ledger_check

# ---- 2. the relay's leader stops --------------------------------------------------------------
LOG2="$ES_DATA/log/es-accounts-2.log"
grep -q 'msg="this instance relays the outbox"' "$ES_DATA/log/es-accounts.log" ||
    fail "the first instance does not lead the relay"
"$ES_BIN/es-accounts" </dev/null >>"$LOG2" 2>&1 &
PID2=$!
at_exit "kill -KILL $PID2 2>/dev/null; wait $PID2 2>/dev/null"
ACC="$(svc_pid accounts)"
wait_until 30 "grep -q 'msg=\"partitions assigned\" count=[1-9]' '$LOG2'" ||
    fail "the second instance got no partitions"
pass "a second es-accounts shares the partitions; the first leads the relay"
kill -STOP "$ACC"
note "the first instance stopped (SIGSTOP)"
t0=$SECONDS
bank_transfers 200 20 acct- lead- 77 | esctl send --batch RequestTransfer >/dev/null
wait_until 40 "grep -q 'msg=\"this instance relays the outbox\"' '$LOG2'" ||
    fail "the second instance never took the relay over"
pass "the second instance took the relay over $((SECONDS - t0)) s after the first stopped"
wait_until 60 "[ \"\$(sql \"SELECT count(*) FROM projections.transfers WHERE transfer_id LIKE 'lead-%' AND status <> 'PENDING'\")\" = 200 ]" ||
    fail "the transfers sent while the first instance was stopped did not all end"
pass "the 200 transfers sent while the first instance is stopped all ended"
kill -0 "$ACC" && [ "$(ps -o stat= -p "$ACC" | cut -c1)" = T ] ||
    fail "the first instance was not stopped all along"
kill -CONT "$ACC"
sleep 3
svc_running accounts || fail "the first instance did not survive its stop"
kill -0 "$PID2" || fail "the second instance died"
pass "both instances run on"
bank_transfers 200 20 acct- after- 78 | esctl send --batch RequestTransfer >/dev/null
ledger_wait_settled 2801 120
ledger_check
bad="$(bank_versions_in_order)"
if [ -n "$bad" ]; then
    printf '%s\n' "$bad" | head -20 | sed 's/^/    /' >&2
    fail "events of some accounts are out of version order in accounts.events"
fi
pass "every account's events are in version order in accounts.events"
