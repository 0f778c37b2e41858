#!/usr/bin/env bash
# demo.sh: a scripted scenario against the running platform (make demo starts it first):
# accounts are opened and funded, money moves between them, one transfer fails for lack of
# funds and one is compensated because its destination is closed. Every step goes through
# esctl (Kafka) and every result is read back from the query service (the projections).
#
# Environment: ES_DATA (default ./.data), ES_HTTP_PORT (default 8080). Safe to run again:
# each run uses fresh ids.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail

export ES_PROG=demo
# shellcheck source=scripts/common.sh
. "$(dirname "$0")/common.sh"
es_data_init

ESCTL="$ES_ROOT/bin/esctl"
if [ -f "$ES_DATA/run/es-query.port" ]; then
    ES_HTTP_PORT="$(cat "$ES_DATA/run/es-query.port")"
fi
export ES_HTTP_PORT="${ES_HTTP_PORT:-8080}"
QUERY="http://127.0.0.1:$ES_HTTP_PORT"
run="$(date +%H%M%S)"

B="$ES_C_BOLD"
D="$ES_C_DIM"
G="$ES_C_GREEN"
R="$ES_C_RED"
O="$ES_C_OFF"

money() { # minor units -> 12.34
    local v="$1" sign=''
    if [ "$v" -lt 0 ]; then
        sign='-'
        v=$((-v))
    fi
    printf '%s%d.%02d' "$sign" $((v / 100)) $((v % 100))
}

section() { printf '\n%s%s%s\n' "$B" "$*" "$O"; }

# send TYPE JSON: publish a command, wait for its outcome in the projections, print it
send() {
    "$ESCTL" send "$1" "$2" --wait --timeout 30
}

outcome() { # a one-word verdict with colour
    case "$1" in
    ACCEPTED | COMPLETED) printf '%s%s%s' "$G" "$1" "$O" ;;
    *) printf '%s%s%s' "$R" "$1" "$O" ;;
    esac
}

alice="alice-$run"
bob="bob-$run"
carol="carol-$run"

section "1. Open three accounts (OpenAccount -> accounts.commands)"
for who in "$alice:Alice" "$bob:Bob" "$carol:Carol"; do
    id="${who%%:*}"
    out="$(send OpenAccount "{\"account_id\":\"$id\",\"owner\":\"${who#*:}\",\"currency\":\"EUR\"}")"
    printf '  %-22s %s\n' "$id" "$(outcome "$(jq -r .status <<<"$out")")"
done

section "2. Deposit money (DepositFunds)"
for dep in "$alice:50000" "$bob:2000"; do
    out="$(send DepositFunds "{\"account_id\":\"${dep%%:*}\",\"amount\":${dep#*:}}")"
    printf '  %-22s +%s EUR  %s  balance %s\n' "${dep%%:*}" "$(money "${dep#*:}")" \
        "$(outcome "$(jq -r .status <<<"$out")")" "$(money "$(jq -r .account.balance <<<"$out")")"
done

section "3. Close carol's account (CloseAccount)"
out="$(send CloseAccount "{\"account_id\":\"$carol\"}")"
printf '  %-22s %s  status %s\n' "$carol" "$(outcome "$(jq -r .status <<<"$out")")" \
    "$(jq -r .account.status <<<"$out")"

section "4. Transfers: a choreography saga each (transfers -> accounts -> transfers)"
printf '  %s%-16s %-22s %-22s %10s  %s%s\n' "$D" transfer from to amount outcome "$O"
declare -A corr
transfer() {
    local id="$1" from="$2" to="$3" amount="$4" out status reason comp
    out="$(send RequestTransfer "{\"transfer_id\":\"$id\",\"from_account\":\"$from\",\"to_account\":\"$to\",\"amount\":$amount}")"
    status="$(jq -r '.transfer.status // .status' <<<"$out")"
    reason="$(jq -r '.transfer.reason // .reason // empty' <<<"$out")"
    comp="$(jq -r '.transfer.compensated // false' <<<"$out")"
    corr[$id]="$(jq -r .command_id <<<"$out")"
    printf '  %-16s %-22s %-22s %10s  %s' "$id" "$from" "$to" "$(money "$amount")" "$(outcome "$status")"
    [ -n "$reason" ] && printf ' %s' "$reason"
    [ "$comp" = true ] && printf ' %s(compensated: the debit was reversed)%s' "$D" "$O"
    printf '\n'
}
transfer "t1-$run" "$alice" "$bob" 12500
transfer "t2-$run" "$bob" "$alice" 4000
transfer "t3-$run" "$bob" "$alice" 99999
transfer "t4-$run" "$alice" "$carol" 1000
transfer "t5-$run" "$alice" "$alice" 100

section "5. Balances, read from the projections (GET /accounts/{id})"
for id in "$alice" "$bob" "$carol"; do
    a="$(curl -fsS "$QUERY/accounts/$id")"
    printf '  %-22s %10s EUR  %-6s version %s\n' "$id" "$(money "$(jq -r .balance <<<"$a")")" \
        "$(jq -r .status <<<"$a")" "$(jq -r .version <<<"$a")"
done
printf '  %smoney in = 520.00 EUR deposited; money out = 0: the balances above add up to it%s\n' "$D" "$O"

section "6. $alice's ledger (GET /accounts/$alice/entries)"
curl -fsS "$QUERY/accounts/$alice/entries?limit=10" |
    jq -r '.entries[] | [.seq, .kind, .amount, .balance_after, (.transfer_id // "-")] | @tsv' |
    while IFS=$'\t' read -r seq kind amount after tid; do
        printf '  #%-3s %-10s %10s  balance %10s  %s\n' "$seq" "$kind" "$(money "$amount")" "$(money "$after")" "$tid"
    done

section "7. The compensated transfer t4-$run, event by event (esctl replay --correlation)"
"$ESCTL" replay --correlation "${corr[t4-$run]}" |
    jq -r '[.timestamp, .topic, .type, (.data.reason // "")] | @tsv' | sort |
    while IFS=$'\t' read -r ts topic type reason; do
        printf '  %s  %-20s %-18s %s\n' "${ts:11:12}" "$topic" "$type" "$reason"
    done

section "Look further"
cat <<TXT
  curl $QUERY/transfers/t4-$run
  curl $QUERY/metrics
  bin/esctl replay --context accounts --aggregate $alice
  bin/esctl send DepositFunds '{"account_id":"$bob","amount":100}' --wait
  make down   (stop, keep the data)      make reset   (delete the data)
TXT
