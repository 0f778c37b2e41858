#!/usr/bin/env bash
# test_shop_crash.sh: the order saga under crashes. While 2,000 random orders (1 to 3 lines
# over 10 products, some scarce, from 20 customers, some poor) and a few hundred cancels run,
# es-catalog, es-payments, es-orders and the saga coordinator es-sagas are killed (-9) at
# random moments and restarted, each on its own schedule, so their outages overlap. Afterwards
# every order is terminal, the shop's and the ledger's invariants hold (stock, charges, refunds,
# money), the coordinator's view of every order's saga agrees with the order, and the shop
# projection equals a rebuild from the log.
# The dedup window is a few seconds, so old dedup marks are deleted all along (see
# test_crash.sh).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ledger.sh"
. "$(dirname "$0")/bank.sh"
. "$(dirname "$0")/shop.sh"

N_ORDERS="${SHOP_CRASH_ORDERS:-2000}"
N_CANCELS="${SHOP_CRASH_CANCELS:-200}"
KILLS="${SHOP_CRASH_KILLS:-9}" # in all, spread over the four services
CHUNKS="${SHOP_CRASH_CHUNKS:-40}"               # a restarted service rejoins its group in
CHUNK_PAUSE="${SHOP_CRASH_CHUNK_PAUSE:-1}"       # ~10 s, and a service is killed at most 3
                                                 # times: the traffic lasts ~50 s, so every
                                                 # kill lands while orders flow
SEED="${SHOP_CRASH_SEED:-$RANDOM}"
DEPOSIT="${SHOP_CRASH_DEPOSIT:-200000}" # each customer's money, cents
STOCK="${SHOP_CRASH_STOCK:-400}"        # units of each plentiful product (p0-p2 have 15)

export ES_DEDUP_WINDOW="${SHOP_CRASH_DEDUP_WINDOW:-3}"
stack_start

shop_open_merchant
bank_open 20 acc-u "$DEPOSIT"
# a few customers who can pay for little
printf '{"account_id":"acc-u%d","amount":%d}\n' 17 $((DEPOSIT - 1000)) 18 $((DEPOSIT - 500)) 19 $((DEPOSIT - 100)) |
    esctl send --batch WithdrawFunds >/dev/null
for ((i = 0; i < 20; i++)); do
    printf '{"user_id":"u%d","email":"u%d@example.com","name":"User %d"}\n' "$i" "$i" "$i"
done | esctl send --batch RegisterUser >/dev/null
for ((i = 0; i < 10; i++)); do
    printf '{"product_id":"p%d","name":"Product %d","price":%d,"stock":%d}\n' "$i" "$i" $((100 + i * 250)) \
        $((i < 3 ? 15 : STOCK))
done | esctl send --batch AddProduct >/dev/null
shop_wait_copies 20 10
note "seed $SEED: 20 customers, 10 products (p0-p2 scarce), $N_ORDERS orders, $N_CANCELS cancels"

ORDERS="$ES_DATA/orders.jsonl"
awk -v n="$N_ORDERS" -v seed="$SEED" 'BEGIN {
    srand(seed)
    for (i = 1; i <= n; i++) {
        lines = 1 + int(rand() * 3); items = ""
        for (l = 0; l < lines; l++)
            items = items (l ? "," : "") sprintf("{\"product_id\":\"p%d\",\"quantity\":%d}", int(rand() * 10), 1 + int(rand() * 3))
        u = int(rand() * 20)
        printf "{\"order_id\":\"o-%d\",\"user_id\":\"u%d\",\"account_id\":\"acc-u%d\",\"items\":[%s]}\n", i, u, u, items
    }
}' >"$ORDERS"
CANCELS="$ES_DATA/cancels.jsonl"
awk -v n="$N_ORDERS" -v c="$N_CANCELS" -v seed="$SEED" 'BEGIN {
    srand(seed + 1)
    for (i = 0; i < c; i++) printf "{\"order_id\":\"o-%d\"}\n", 1 + int(rand() * n)
}' | sort -u >"$CANCELS"

# send_orders: the orders in CHUNKS pieces, with the cancels spread among them (a cancel may
# reach an order that is pending, confirmed, rejected or not yet placed: all are fine)
# cancels LINES: send the cancels of that sed range, if any
cancels() {
    local batch
    batch="$(sed -n "$1" "$CANCELS")"
    [ -z "$batch" ] || esctl send --batch CancelOrder <<<"$batch" >/dev/null
}

send_orders() {
    local per i=0 part cper=$(((N_CANCELS + CHUNKS - 1) / CHUNKS))
    per=$(((N_ORDERS + CHUNKS - 1) / CHUNKS))
    split -l "$per" -d -a 3 -- "$ORDERS" "$ORDERS.part-"
    for part in "$ORDERS".part-*; do
        esctl send --batch PlaceOrder <"$part" >/dev/null
        cancels "$((i * cper + 1)),$((i * cper + cper))p"
        i=$((i + 1))
        sleep "$CHUNK_PAUSE"
    done
    cancels "$((i * cper + 1)),\$p"
}

settled() { sql "SELECT count(*) FROM orders.orders WHERE status <> 'PENDING'"; }

progress() { echo "$(settled) orders settled"; }

t0=$SECONDS
(send_orders) &
SENDER=$!
# the KILLS in turns over the victims, each victim in its own loop
victims=(catalog payments orders sagas)
killers=()
for ((v = 0; v < ${#victims[@]}; v++)); do
    (bank_kill_loop "${victims[$v]}" $(((KILLS - v + ${#victims[@]} - 1) / ${#victims[@]})) 0.3 2.8 progress) &
    killers+=($!)
done
for ((v = 0; v < ${#victims[@]}; v++)); do
    wait "${killers[$v]}" || fail "crashing es-${victims[$v]} failed"
done
wait "$SENDER" || fail "sending the orders failed"
note "all sent after $((SECONDS - t0)) s; $(settled) settled"

shop_wait_settled "${SHOP_CRASH_SETTLE_TIMEOUT:-300}"
note "settled $((SECONDS - t0)) s after the first order was sent"
assert_eq "$N_ORDERS" "$(sql "SELECT count(*) FROM orders.orders")" "orders known to the orders service"
note "outcomes: $(sql "SELECT string_agg(status || coalesce(' ' || nullif(reason, ''), '') || ': ' || n, ', ') FROM
    (SELECT status, reason, count(*) n FROM shop_views.orders GROUP BY 1, 2 ORDER BY 1, 2) x")"
assert "[ \"\$(sql \"SELECT count(*) FROM orders.orders WHERE status = 'CONFIRMED'\")\" -gt 0 ]" "some orders were confirmed"
assert "[ \"\$(sql \"SELECT count(*) FROM orders.orders WHERE status = 'CANCELLED'\")\" -gt 0 ]" "some orders were cancelled"
ledger_check
shop_check
bank_dedup_window_check catalog payments orders sagas

shop_snapshot shop_live
out="$(esctl rebuild shop 2>&1)" || {
    printf '%s\n' "$out" | tail -n 20 | sed 's/^/    /' >&2
    fail "esctl rebuild shop failed"
}
shop_rebuild_matches shop_live
