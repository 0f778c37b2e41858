#!/usr/bin/env bash
# test_retention_gap.sh: the dev broker keeps ~5 MiB per partition and drops older records. A
# service whose stored position fell below what the broker still holds reads the rest from the
# dev broker's journal (the archive tier) and goes on; without an archive (real Kafka) it stops
# with a clear error instead of silently skipping what it never saw. esctl replay reads
# everything (journal first, then broker).
. "$(dirname "$0")/lib.sh"

stack_start
esctl send OpenAccount '{"account_id":"gap","owner":"Gap","currency":"EUR"}' --wait >/dev/null
svc_stop accounts

# ~40,000 deposits to one account: one partition of accounts.commands, well over 5 MiB
n=40000
for ((i = 0; i < n; i++)); do printf '{"account_id":"gap","amount":1}\n'; done |
    esctl send --batch DepositFunds >/dev/null
total="$(esctl replay --topic accounts.commands --aggregate gap | wc -l)"
assert_eq $((n + 1)) "$total" "commands readable through esctl replay (journal + broker)"

# Without an archive (real Kafka has none) the service must stop, never skip: hide the journal.
mv "$ES_DATA/journal/accounts.commands" "$ES_DATA/journal-hidden"
svc_start accounts
wait_until 30 "! svc_running accounts"
pass "without an archive, es-accounts stopped instead of skipping records"
grep -q 'stored position is no longer in the log' "$ES_DATA/log/es-accounts.log" ||
    fail "es-accounts' log does not say why it stopped"
pass "its log says why: $(grep -m1 -o 'stored position is no longer in the log[^"]*' "$ES_DATA/log/es-accounts.log")"
assert_eq 0 "$(sql "SELECT balance FROM accounts.accounts WHERE account_id = 'gap'")" \
    "no deposit applied out of order"

# With the dev broker's journal (the archive tier) it reads what the broker dropped, then goes on
# from the broker.
mv "$ES_DATA/journal-hidden" "$ES_DATA/journal/accounts.commands"
svc_start accounts
wait_until 60 "[ \"\$(sql \"SELECT balance FROM accounts.accounts WHERE account_id = 'gap'\")\" = $n ]"
pass "every deposit applied once, in order: balance $n"
# the line comes once the catch-up's last batch committed: the balance may show it first
wait_until 10 "grep -q 'msg=\"caught up from the archive' \"\$ES_DATA/log/es-accounts.log\"" ||
    fail "es-accounts' log does not say it read the archive"
pass "$(grep -m1 -o 'caught up from the archive.*' "$ES_DATA/log/es-accounts.log")"
assert 'svc_running accounts' "es-accounts keeps running"
esctl send DepositFunds '{"account_id":"gap","amount":5}' >/dev/null
wait_until 30 "[ \"\$(sql \"SELECT balance FROM accounts.accounts WHERE account_id = 'gap'\")\" = $((n + 5)) ]"
pass "and goes on from the broker"
