# shellcheck shell=bash
# ledger.sh: the money ledger's invariants, checked after every scenario (sourced after lib.sh).
#
#   ledger_wait_settled N   wait until N transfers exist and none is PENDING, and the projector
#                           has caught up with the services (projection == service state)
#   ledger_check            every invariant below, each one a pass/fail line

# ledger_wait_settled COUNT [TIMEOUT_S]
ledger_wait_settled() {
    local n="$1" timeout="${2:-120}"
    wait_until "$timeout" "[ \"\$(sql \"SELECT count(*) FROM projections.transfers WHERE status <> 'PENDING'\")\" -ge $n ]"
    # the projection has seen every account event the service wrote
    wait_until 60 "[ \"\$(sql \"SELECT count(*) FROM accounts.accounts a LEFT JOIN projections.accounts p USING (account_id) WHERE p.version IS DISTINCT FROM a.version\")\" = 0 ]"
}

ledger_check() {
    local deposits withdrawals total
    deposits="$(sql "SELECT coalesce(sum(amount), 0) FROM projections.entries WHERE kind = 'DEPOSIT'")"
    withdrawals="$(sql "SELECT coalesce(-sum(amount), 0) FROM projections.entries WHERE kind = 'WITHDRAWAL'")"
    total="$(sql "SELECT coalesce(sum(balance), 0) FROM accounts.accounts")"
    assert_eq "$((deposits - withdrawals))" "$total" "sum of balances (deposits $deposits - withdrawals $withdrawals)"
    assert_eq "$total" "$(sql "SELECT coalesce(sum(balance), 0) FROM projections.accounts")" "projected sum of balances"
    assert_eq 0 "$(sql "SELECT count(*) FROM accounts.accounts WHERE balance < 0")" "accounts with a negative balance"
    assert_eq 0 "$(sql "SELECT count(*) FROM transfers.transfers WHERE status = 'PENDING'")" "transfers not terminal (service)"
    assert_eq 0 "$(sql "SELECT count(*) FROM projections.transfers WHERE status = 'PENDING'")" "transfers not terminal (projection)"
    assert_eq 0 "$(sql "SELECT count(*) FROM transfers.transfers t FULL JOIN projections.transfers p USING (transfer_id)
        WHERE t.status IS DISTINCT FROM p.status OR t.reason IS DISTINCT FROM coalesce(p.reason, '') OR t.compensated IS DISTINCT FROM p.compensated")" \
        "transfers where the projection disagrees with the service"
    assert_eq 0 "$(sql "SELECT count(*) FROM accounts.accounts a FULL JOIN projections.accounts p USING (account_id)
        WHERE a.balance IS DISTINCT FROM p.balance OR a.status IS DISTINCT FROM p.status")" \
        "accounts where the projection disagrees with the service"
    # each account's balance is the sum of its ledger entries: no entry missing or applied twice
    assert_eq 0 "$(sql "SELECT count(*) FROM projections.accounts a LEFT JOIN (SELECT account_id, sum(amount) s FROM projections.entries GROUP BY 1) e USING (account_id)
        WHERE a.balance <> coalesce(e.s, 0)")" "accounts whose balance differs from the sum of their entries"
    # each transfer moved money exactly as its outcome says
    assert_eq 0 "$(sql "WITH m AS (SELECT transfer_id,
            count(*) FILTER (WHERE kind = 'DEBIT') d, count(*) FILTER (WHERE kind = 'CREDIT') c,
            count(*) FILTER (WHERE kind = 'REVERSAL') r FROM projections.entries WHERE transfer_id IS NOT NULL GROUP BY 1)
        SELECT count(*) FROM projections.transfers t LEFT JOIN m USING (transfer_id) WHERE NOT (
            (t.status = 'COMPLETED' AND m.d = 1 AND m.c = 1 AND m.r = 0) OR
            (t.status = 'FAILED' AND t.compensated AND m.d = 1 AND m.c = 0 AND m.r = 1) OR
            (t.status = 'FAILED' AND NOT t.compensated AND m.transfer_id IS NULL))")" \
        "transfers whose ledger entries do not match their outcome"
    assert_eq 0 "$(sql "SELECT count(*) FROM (SELECT transfer_id, kind FROM projections.entries WHERE transfer_id IS NOT NULL GROUP BY 1, 2 HAVING count(*) > 1) x")" \
        "ledger entries applied twice"
    # the archive is whole: the dev broker journaled every record before it left its window
    assert_eq 0 "$(grep -c 'JOURNAL GAP' "$ES_DATA/log/es-broker.log" 2>/dev/null || true)" \
        "journal gaps reported by the dev broker"
}
