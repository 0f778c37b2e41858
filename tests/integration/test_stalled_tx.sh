#!/usr/bin/env bash
# test_stalled_tx.sh: a service stopped (SIGSTOP) in the middle of a batch's transaction holds
# its rows' locks; an instance that took its partitions over would wait on them for as long as
# it stays stopped. Its session ends after 10 s idle in that transaction
# (idle_in_transaction_session_timeout, lib/service.c): the locks are released and the batch
# rolled back. Let run again, the service notices, reconnects and redoes the batch; every
# transfer is applied exactly once.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ledger.sh"
. "$(dirname "$0")/bank.sh"

stack_start
bank_open 20 acct- 100000
wait_until 30 "[ \"\$(sql \"SELECT count(*) FROM projections.accounts\")\" = 20 ]"
ACC="$(svc_pid accounts)"
# a steady stream of transfers keeps es-accounts in its transactions much of the time
(for c in $(seq 1 60); do
    bank_transfers 40 20 acct- "st$c-" | esctl send --batch RequestTransfer >/dev/null
    sleep 0.25
done) &
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
