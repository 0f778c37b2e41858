#!/usr/bin/env bash
# demo.sh: a scripted scenario against the running platform (make demo starts it first).
# The ledger: accounts are opened and funded, money moves between them, one transfer fails for
# lack of funds and one is compensated because its destination is closed. The shop: users and
# products are added and four orders run the order saga: one confirmed, one out of stock, one
# declined for lack of funds, one cancelled after it was paid (refunded, stock given back).
# The saga coordinator's timelines of the compensated transfer and the cancelled order, every
# consumer's lag, the boundaries PostgreSQL enforces between the services, and 200 transfers
# that go through a broker taken down for 2 s (esctl chaos) end it.
# Every step goes through esctl (Kafka) and every result is read back from the query service
# (the projections).
#
# Environment: ES_DATA (default ./.data), ES_QUERY_URL (the query service; default
# http://127.0.0.1:ES_HTTP_PORT, ES_HTTP_PORT default 8080, or the port the dev stack's es-query
# published). Safe to run again: each run uses fresh ids. What the last section suggests trying
# next, for a demo run elsewhere (compose/docker-compose.yml sets them): ES_DEMO_ESCTL (how to
# run esctl; default bin/esctl), ES_DEMO_QUERY_URL (the query service as the reader reaches it;
# default the one above), ES_DEMO_STOP (how to stop the platform; default make down / reset).
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
QUERY="${ES_QUERY_URL:-http://127.0.0.1:$ES_HTTP_PORT}"
run="$(date +%H%M%S)"
hint_esctl="${ES_DEMO_ESCTL:-bin/esctl}"
hint_query="${ES_DEMO_QUERY_URL:-$QUERY}"
hint_stop="${ES_DEMO_STOP:-make down   (stop, keep the data)      make reset   (delete the data)}"

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
    ACCEPTED | COMPLETED | CONFIRMED | REFUNDED) printf '%s%s%s' "$G" "$1" "$O" ;;
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
printf '  %s# is the account'"'"'s version after the entry (version 1 is its opening, which moved no money)%s\n' "$D" "$O"
curl -fsS "$QUERY/accounts/$alice/entries?limit=10" |
    jq -r '.entries[] | [.seq, .kind, .amount, .balance_after, (.transfer_id // "-")] | @tsv' |
    while IFS=$'\t' read -r seq kind amount after tid; do
        printf '  #%-3s %-10s %10s  balance %10s  %s\n' "$seq" "$kind" "$(money "$amount")" "$(money "$after")" "$tid"
    done

section "7. The compensated transfer t4-$run as the saga coordinator saw it (esctl saga)"
# the coordinator may still be reading the last steps
for _ in $(seq 1 50); do
    [ "$(curl -fsS "$QUERY/sagas/${corr[t4-$run]}" 2>/dev/null | jq -r .status)" = FAILED ] && break
    sleep 0.1
done
"$ESCTL" saga "${corr[t4-$run]}" | sed 's/^/  /'

section "8. The shop: customers, their accounts, products (users, accounts, catalog)"
"$ESCTL" send OpenAccount '{"account_id":"shop-merchant","owner":"The shop","currency":"EUR"}' \
    --wait --timeout 30 >/dev/null || true
dan="dan-$run"
eve="eve-$run"
for who in "$dan:Dan:30000" "$eve:Eve:500"; do
    IFS=: read -r id name amount <<<"$who"
    send OpenAccount "{\"account_id\":\"acc-$id\",\"owner\":\"$name\",\"currency\":\"EUR\"}" >/dev/null
    send DepositFunds "{\"account_id\":\"acc-$id\",\"amount\":$amount}" >/dev/null
    out="$(send RegisterUser "{\"user_id\":\"$id\",\"email\":\"$id@example.com\",\"name\":\"$name\"}")"
    printf '  user %-16s %s  account acc-%s with %s EUR\n' "$id" "$(outcome "$(jq -r .status <<<"$out")")" "$id" "$(money "$amount")"
done
out="$(send RegisterUser "{\"user_id\":\"copy-$run\",\"email\":\"$dan@example.com\",\"name\":\"Copycat\"}")"
printf '  user %-16s %s %s %s(the email is %s'"'"'s)%s\n' "copy-$run" "$(outcome "$(jq -r .status <<<"$out")")" \
    "$(jq -r .reason <<<"$out")" "$D" "$dan" "$O"
lamp="lamp-$run"
chair="chair-$run"
for p in "$lamp:Lamp:4500:10" "$chair:Chair:12000:1"; do
    IFS=: read -r id name price stock <<<"$p"
    out="$(send AddProduct "{\"product_id\":\"$id\",\"name\":\"$name\",\"price\":$price,\"stock\":$stock}")"
    printf '  product %-14s %s  %s EUR, %s in stock\n' "$id" "$(outcome "$(jq -r .status <<<"$out")")" "$(money "$price")" "$stock"
done

section "9. Orders: a choreography saga each (orders -> catalog -> payments -> ledger -> orders)"
printf '  %s%-18s %-14s %-26s %10s  %s%s\n' "$D" order customer items total outcome "$O"
declare -A ocorr
place() { # ORDER USER ITEMS_JSON LABEL
    local out status reason tries=0
    while :; do
        out="$(send PlaceOrder "{\"order_id\":\"$1\",\"user_id\":\"$2\",\"account_id\":\"acc-$2\",\"items\":$3}")"
        reason="$(jq -r '.order.reason // .reason // empty' <<<"$out")"
        # the orders service prices from its own copy of the catalog, which may lag by a few ms
        case "$reason" in
        UNKNOWN_PRODUCT | UNKNOWN_USER)
            # refused, so no order exists: the same id can be placed again
            if [ $((tries += 1)) -lt 20 ]; then
                sleep 0.1
                continue
            fi
            ;;
        esac
        break
    done
    status="$(jq -r '.order.status // .status' <<<"$out")"
    ocorr[$1]="$(jq -r .command_id <<<"$out")"
    printf '  %-18s %-14s %-26s %10s  %s' "$1" "$2" "$4" "$(money "$(jq -r '.order.total // 0' <<<"$out")")" "$(outcome "$status")"
    [ -n "$reason" ] && printf ' %s' "$reason"
    printf '\n'
    LAST_ORDER="$1"
}
item() { printf '[{"product_id":"%s","quantity":%s}]' "$1" "$2"; }
place "o1-$run" "$dan" "$(item "$lamp" 2)" "2 x lamp"
place "o2-$run" "$dan" "$(item "$chair" 3)" "3 x chair (1 in stock)"
place "o3-$run" "$eve" "$(item "$lamp" 1)" "1 x lamp (eve has 5 EUR)"
place "o4-$run" "$dan" "$(item "$chair" 1)" "1 x chair"
cancelled="$LAST_ORDER"
out="$(send CancelOrder "{\"order_id\":\"$cancelled\"}")"
printf '  %-18s %s cancelled after it was paid: %s\n' "$cancelled" "$D$(jq -r .order.status <<<"$out")$O" \
    "the charge is refunded and the chair goes back to stock"

# A refund the ledger refuses: the merchant account emptied before the cancel. The payment
# waits in REFUND_FAILED until someone fixes the cause and sends RetryRefund.
place "o5-$run" "$dan" "$(item "$lamp" 1)" "1 x lamp"
refused="$LAST_ORDER"
held="$(curl -fsS "$QUERY/accounts/shop-merchant" | jq -r .balance)"
send WithdrawFunds "{\"account_id\":\"shop-merchant\",\"amount\":$held}" >/dev/null
send CancelOrder "{\"order_id\":\"$refused\"}" >/dev/null
payment() { # ORDER WANT: the order's payment once it is WANT (5 s at most)
    local p=''
    for _ in $(seq 1 50); do
        p="$(curl -fsS "$QUERY/orders/$1" | jq -r '.payment // "-"')"
        [ "$p" = "$2" ] && break
        sleep 0.1
    done
    printf '%s' "$p"
}
printf '  %-18s %s cancelled with the merchant account emptied: payment %s %s(the ledger refused the refund)%s\n' \
    "$refused" "$D$(curl -fsS "$QUERY/orders/$refused" | jq -r .status)$O" "$(outcome "$(payment "$refused" REFUND_FAILED)")" "$D" "$O"
send DepositFunds "{\"account_id\":\"shop-merchant\",\"amount\":$held}" >/dev/null
out="$(send RetryRefund "{\"order_id\":\"$refused\"}")"
printf '  %-18s the merchant funded again, RetryRefund %s: payment %s %s(a new ledger transfer, refund.2-%s)%s\n' \
    "$refused" "$(outcome "$(jq -r .status <<<"$out")")" "$(outcome "$(payment "$refused" REFUNDED)")" "$D" "$refused" "$O"

section "10. What the shop's read models say (GET /orders, /products, /accounts)"
sleep 0.3
for o in "o1-$run" "o2-$run" "o3-$run" "$cancelled" "$refused"; do
    curl -fsS "$QUERY/orders/$o" | jq -r '[.order_id, .status, (.reason // "-"), (.stock // "-"), (.payment // "-")] | @tsv' |
        while IFS=$'\t' read -r id status reason stock payment; do
            printf '  order %-18s %-10s %-20s stock %-10s payment %s\n' "$id" "$status" "$reason" "$stock" "$payment"
        done
done
for p in "$lamp" "$chair"; do
    curl -fsS "$QUERY/products/$p" | jq -r '[.product_id, .on_hand, .reserved, .available] | @tsv' |
        while IFS=$'\t' read -r id on res av; do
            printf '  product %-16s on hand %3s  reserved %s  available %s\n' "$id" "$on" "$res" "$av"
        done
done
for a in "acc-$dan" "acc-$eve" shop-merchant; do
    printf '  account %-16s %10s EUR\n' "$a" "$(money "$(curl -fsS "$QUERY/accounts/$a" | jq -r .balance)")"
done

etag="$(curl -fsS -D - -o /dev/null "$QUERY/orders/o1-$run" | sed -n 's/^[Ee][Tt][Aa][Gg]: *//p' | tr -d '\r')"
printf '  %sasked again with its ETag (If-None-Match: %s): %s, no body: the read model says the same%s\n' \
    "$D" "$etag" "$(curl -sS -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "$QUERY/orders/o1-$run")" "$O"

section "11. The cancelled order $cancelled, one saga from order to refund (esctl saga)"
for _ in $(seq 1 50); do
    curl -fsS "$QUERY/sagas/${ocorr[$cancelled]}" 2>/dev/null |
        jq -e '[.steps[].type] | index("PaymentRefunded")' >/dev/null && break
    sleep 0.1
done
"$ESCTL" saga "${ocorr[$cancelled]}" | sed 's/^/  /'
if [ -z "${ES_DEMO_ESCTL:-}" ]; then
    "$ESCTL" saga "${ocorr[$cancelled]}" --svg "$ES_DATA/saga-$cancelled.svg" 2>/dev/null &&
        printf '  %sthe same as a picture: %s%s\n' "$D" "$ES_DATA/saga-$cancelled.svg" "$O"
else # this file system is not the reader's
    printf '  %sthe same as a picture: %s saga %s --svg - > %s.svg%s\n' "$D" "$hint_esctl" "${ocorr[$cancelled]}" "$cancelled" "$O"
fi

section "12. Every saga of this run, as the saga coordinator saw it (GET /sagas/{id})"
printf '  %s%-10s %-16s %-10s %-20s %9s%s\n' "$D" type subject status reason took "$O"
for id in "${corr[@]}" "${ocorr[@]}"; do
    curl -fsS "$QUERY/sagas/$id" 2>/dev/null |
        jq -r '[.type, .subject, .status, (if .reason == "" then "-" else .reason end), (.duration_ms // "-" | tostring)] | @tsv' |
        while IFS=$'\t' read -r type subject status reason took; do
            printf '  %-10s %-16s %-10s %-20s %6s ms\n' "$type" "$subject" "$status" "$reason" "$took"
        done
done | sort -k2,2
stuck="$("$ESCTL" sagas --status PENDING --older-than 10s --json 2>/dev/null | jq '.sagas | length' 2>/dev/null || echo '?')"
printf '  %ssagas stuck anywhere (pending for more than 10 s, esctl sagas --status PENDING --older-than 10s): %s%s\n' \
    "$D" "$stuck" "$O"

section "13. Every consumer, how far behind the log it is (esctl lag)"
for _ in $(seq 1 100); do
    "$ESCTL" lag --max-lag 0 >/dev/null 2>&1 && break
    sleep 0.1
done
printf '  %s%-12s %6s %16s %6s%s\n' "$D" consumer topics "records applied" lag "$O"
"$ESCTL" lag --json 2>/dev/null |
    jq -rs 'group_by(.consumer)[] | [.[0].consumer, length, (map(.position) | add), (map(.lag // "?") | if all(type == "number") then add else "?" end)] | @tsv' |
    while IFS=$'\t' read -r consumer topics applied lag; do
        printf '  %-12s %6s %16s %6s\n' "$consumer" "$topics" "$applied" "$lag"
    done
printf '  %spositions stored in PostgreSQL with each consumer'"'"'s effects, the log'"'"'s ends read from Kafka\n  (a schema names each: projections is es-projector, shop_views es-shop-projector); by topic: esctl lag%s\n' "$D" "$O"

section "14. Each service reaches its own tables only: PostgreSQL roles (scripts/db-roles.sql)"
if [ -z "${ES_DEMO_ESCTL:-}" ] && [ -s "$ES_DATA/pg.conninfo" ]; then
    # as_role ROLE SQL: the first line of what psql says, SQL run as ROLE in a transaction
    # rolled back (nothing runs if the role cannot be taken; nothing stays if SQL was allowed)
    as_role() {
        bash "$ES_ROOT/scripts/pg.sh" psql -X -q -At -v ON_ERROR_STOP=1 -c BEGIN -c "SET LOCAL ROLE $1" \
            -c "$2" -c ROLLBACK 2>&1 | head -n 1
    }
    printf '  %-42s %s rows\n' "orders reads its own copy of the prices:" "$(as_role es_orders 'SELECT count(*) FROM orders.prices')"
    printf '  %-42s %s%s%s\n' "orders reads the catalog's stock:" "$R" "$(as_role es_orders 'SELECT count(*) FROM catalog.products')" "$O"
    printf '  %-42s %s%s%s\n' "the query service deletes a read model:" "$R" "$(as_role es_query 'DELETE FROM projections.accounts')" "$O"
    printf '  %seach program logs in as es_ + the name of its schema (pg_stat_activity.usename)%s\n' "$D" "$O"
else
    printf '  %seach program logs in as its own role (its ES_PG), owner of its schema; docker compose\n  exec postgres psql -U es es -c "SET ROLE es_orders" -c "SELECT * FROM catalog.products": permission denied%s\n' "$D" "$O"
fi

section "15. Chaos: the broker goes down while transfers flow (esctl chaos)"
if [ -z "${ES_DEMO_ESCTL:-}" ] && [ -s "$ES_DATA/broker.pid" ] && [ -s "$ES_DATA/pg.conninfo" ]; then
    # psql_one SQL: one value from the platform's PostgreSQL
    psql_one() { bash "$ES_ROOT/scripts/pg.sh" psql -X -q -At -c "$1"; }
    balances() { psql_one "SELECT sum(balance) FROM projections.accounts WHERE account_id IN ('$alice', '$bob')"; }
    before="$(balances)"
    # 40 batches of 10 transfers of 0.50 EUR, back and forth, 0.1 s apart: the ones published
    # when the broker goes down wait for it (esctl send waits up to 4 s for a broker)
    sender() {
        local c i from to t
        for c in $(seq 1 40); do
            t="$(date +%s%N)"
            for i in $(seq 1 10); do
                if [ $((i % 2)) = 1 ]; then from="$alice" to="$bob"; else from="$bob" to="$alice"; fi
                printf '{"transfer_id":"c%d.%d-%s","from_account":"%s","to_account":"%s","amount":50}\n' \
                    "$c" "$i" "$run" "$from" "$to"
            done | "$ESCTL" send --batch RequestTransfer 2>/dev/null || true
            echo "took_ms $((($(date +%s%N) - t) / 1000000))"
            sleep 0.1
        done
    }
    sender >"$ES_DATA/demo-chaos.out" &
    sender_pid=$!
    sleep 1
    "$ESCTL" chaos down --for 2s >/dev/null
    printf '  400 transfers between %s and %s, 10 every 0.1 s; 1 s in, the broker goes down for 2 s\n  %s(esctl chaos down --for 2s: every connection dropped, none taken; clients retry)%s\n' \
        "$alice" "$bob" "$D" "$O"
    wait "$sender_pid"
    sent="$(grep -c command_id "$ES_DATA/demo-chaos.out" || true)"
    done_sql="SELECT count(*) FROM projections.transfers WHERE transfer_id LIKE 'c%-$run' AND status <> 'PENDING'"
    for _ in $(seq 1 300); do
        [ "$(psql_one "$done_sql")" = "$sent" ] && break
        sleep 0.2
    done
    took="$(psql_one "SELECT 'median ' || round(1000 * percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM visible_at - requested_at)))::bigint || ' ms, the slowest ' || round(max(extract(epoch FROM visible_at - requested_at))::numeric, 1) || ' s' FROM projections.transfers WHERE transfer_id LIKE 'c%-$run'")"
    completed="$(psql_one "SELECT count(*) FROM projections.transfers WHERE transfer_id LIKE 'c%-$run' AND status = 'COMPLETED'")"
    entries="$(psql_one "SELECT count(*) FROM projections.entries WHERE transfer_id LIKE 'c%-$run'")"
    after="$(balances)"
    verdict=COMPLETED
    [ "$completed" = "$sent" ] && [ "$entries" = $((2 * sent)) ] && [ "$before" = "$after" ] || verdict=INCOMPLETE
    printf '  %-42s %s of %s published %s\n' "transfers completed:" "$completed" "$sent" "$(outcome "$verdict")"
    longest="$(awk '$1 == "took_ms" && $2 > m { m = $2 } END { printf "%.1f", m / 1000 }' "$ES_DATA/demo-chaos.out")"
    printf '  %-42s %s s %s(the sends made while it was down waited for it)%s\n' "the longest esctl send:" "$longest" "$D" "$O"
    printf '  %-42s %s %s(in the services, request to visible)%s\n' "the transfers took:" "$took" "$D" "$O"
    printf '  %-42s %s %s(a debit and a credit each: none lost, none twice)%s\n' "their ledger entries:" "$entries" "$D" "$O"
    printf '  %-42s %s EUR before, %s EUR after\n' "$alice + $bob:" "$(money "$before")" "$(money "$after")"
    grep -h 'chaos: broker' "$ES_DATA/log/es-broker.log" | tail -n 2 | sed 's/^/  /; s/ INFO / /; s/ WARN / /'
else
    printf '  %son the dev stack, esctl chaos takes the broker down, slows it or fails its requests\n  while traffic flows (see the README, "Chaos on the dev stack")%s\n' "$D" "$O"
fi

section "Look further"
cat <<TXT
  $hint_esctl saga o1-$run               $hint_esctl saga o1-$run --svg - > o1.svg
  $hint_esctl sagas --status PENDING --older-than 10s      curl '$hint_query/sagas?status=FAILED'
  $hint_esctl lag --partitions         curl -s $hint_query/metrics | grep consumer_lag
  $hint_esctl chaos latency 200 --for 30s      $hint_esctl chaos errors produce --count 5
  $hint_esctl replay --correlation ${ocorr[o1-$run]}
  curl $hint_query/transfers/t4-$run
  curl $hint_query/orders/o1-$run      curl $hint_query/users/$dan/orders
  curl $hint_query/metrics
  $hint_esctl replay --context accounts --aggregate $alice
  $hint_esctl send DepositFunds '{"account_id":"$bob","amount":100}' --wait
  $hint_stop
TXT
