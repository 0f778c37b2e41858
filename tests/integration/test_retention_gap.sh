#!/usr/bin/env bash
# test_retention_gap.sh: the dev broker keeps ~5 MiB per partition and drops older records. A
# service whose stored position fell below what the broker still holds must stop with a clear
# error instead of silently skipping what it never saw; esctl replay still reads everything
# (journal first, then broker).
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

svc_start accounts
wait_until 30 "! svc_running accounts"
pass "es-accounts stopped instead of skipping records"
grep -q 'stored position is no longer in the log' "$ES_DATA/log/es-accounts.log" ||
    fail "es-accounts' log does not say why it stopped"
pass "its log says why: $(grep -m1 -o 'stored position is no longer in the log[^"]*' "$ES_DATA/log/es-accounts.log")"
assert_eq 0 "$(sql "SELECT balance FROM accounts.accounts WHERE account_id = 'gap'")" \
    "no deposit applied out of order"
