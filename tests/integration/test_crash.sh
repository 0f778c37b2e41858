#!/usr/bin/env bash
# test_crash.sh: crash recovery under load. While random transfers run, es-accounts and
# es-projector are each killed (-9) and restarted several times at random moments, each on its
# own schedule, so their outages sometimes overlap. Afterwards every transfer has ended, the
# ledger invariants hold (money conserved, no effect applied twice or lost), and the live
# projection equals one rebuilt from the log, row by row.
#
# The dedup window is a few seconds (ES_DEDUP_WINDOW, default 7 days), so old dedup marks are
# deleted all along, crashes included: exactness must not depend on keeping them for ever, and
# no input that arrives in order may be taken for a copy too old to recognise.
#
# soak_crash.sh runs the same scenario scaled up: it sets CRASH_* before sourcing this file.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ledger.sh"
. "$(dirname "$0")/bank.sh"

N_ACCOUNTS="${CRASH_ACCOUNTS:-50}"
N_TRANSFERS="${CRASH_TRANSFERS:-2000}"
KILLS="${CRASH_KILLS:-5}"            # of each service
CHUNKS="${CRASH_CHUNKS:-25}"          # esctl send --batch calls
CHUNK_PAUSE="${CRASH_CHUNK_PAUSE:-2}" # seconds between them: the traffic lasts ~50 s, as long
                                      # as a service's kills (it rejoins its group in ~10 s)
SETTLE_TIMEOUT="${CRASH_SETTLE_TIMEOUT:-180}"

export ES_DEDUP_WINDOW="${CRASH_DEDUP_WINDOW:-3}"
stack_start

progress() { echo "$(bank_settled_count) transfers settled"; }

bank_open "$N_ACCOUNTS" acct- 10000

TRANSFERS="$ES_DATA/transfers.jsonl"
bank_transfers "$N_TRANSFERS" "$N_ACCOUNTS" acct- t- "${CRASH_SEED:-$RANDOM}" 2000 >"$TRANSFERS"
t0=$SECONDS

# the transfers flow while both services keep crashing, each in its own loop
(bank_send "$TRANSFERS" "$CHUNKS" "$CHUNK_PAUSE") &
SENDER=$!
(bank_kill_loop accounts "$KILLS" 0.05 1.5 progress) &
KILLER_ACCOUNTS=$!
(bank_kill_loop projector "$KILLS" 0.05 1.5 progress) &
KILLER_PROJECTOR=$!
wait "$KILLER_ACCOUNTS" || fail "crashing es-accounts failed"
wait "$KILLER_PROJECTOR" || fail "crashing es-projector failed"
wait "$SENDER" || fail "sending the transfers failed"
note "all sent and $((2 * KILLS)) kills done; $(bank_settled_count) settled after $((SECONDS - t0)) s"

ledger_wait_settled "$N_TRANSFERS" "$SETTLE_TIMEOUT"
note "$N_TRANSFERS transfers settled $((SECONDS - t0)) s after the first was sent"
assert_eq "$N_TRANSFERS" "$(sql "SELECT count(*) FROM transfers.transfers")" "transfers known to the service"
assert_eq "$N_TRANSFERS" "$(sql "SELECT count(*) FROM projections.transfers")" "transfers in the projection"
ledger_check
note "outcomes: $(sql "SELECT string_agg(status || coalesce(' ' || nullif(reason, ''), '') || ': ' || n, ', ') FROM
    (SELECT status, reason, count(*) n FROM projections.transfers GROUP BY 1, 2 ORDER BY 1, 2) x")"

bank_dedup_window_check accounts transfers

# the projection equals a rebuild from the log
bank_snapshot crash_live
t1=$SECONDS
out="$(esctl rebuild ledger 2>&1)" || {
    printf '%s\n' "$out" | tail -n 20 | sed 's/^/    /' >&2
    fail "esctl rebuild ledger failed"
}
note "rebuilt in $((SECONDS - t1)) s: $(printf '%s\n' "$out" | tail -n 1)"
bank_rebuild_matches crash_live
ledger_check
