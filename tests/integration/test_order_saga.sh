#!/usr/bin/env bash
# test_order_saga.sh: every path of the order saga (docs/SHOP.md), end to end through the real
# users, catalog, orders, payments, transfers and accounts services; after each scenario the
# shop's and the ledger's invariants (shop_invariants), at the end every one of them line by
# line, and a rebuild of the shop projection that must equal the live one.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ledger.sh"
. "$(dirname "$0")/shop.sh"
. "$(dirname "$0")/bank.sh"

stack_start

send_wait() { esctl send "$1" "$2" --wait --timeout 30; }
field() { jq -r "$1" <<<"$2"; }
outcome() { field '.status + " " + (.reason // "-")' "$1"; }
order_outcome() { field '.order.status + " " + (.order.reason // "-")' "$1"; }

# ---- the cast ----
shop_open_merchant
for a in ann:100000 bob:300; do
    send_wait OpenAccount "{\"account_id\":\"acc-${a%%:*}\",\"owner\":\"${a%%:*}\",\"currency\":\"EUR\"}" >/dev/null
    send_wait DepositFunds "{\"account_id\":\"acc-${a%%:*}\",\"amount\":${a##*:}}" >/dev/null
done
send_wait OpenAccount '{"account_id":"acc-cid","owner":"cid","currency":"EUR"}' >/dev/null
out="$(send_wait CloseAccount '{"account_id":"acc-cid"}')"
assert_eq "ACCEPTED CLOSED" "$(field '.status + " " + .account.status' "$out")" "cid's account closed"

out="$(send_wait RegisterUser '{"user_id":"u-ann","email":" Ann@Example.COM ","name":"Ann"}')"
assert_eq "ACCEPTED ann@example.com" "$(field '.status + " " + .user.email' "$out")" "RegisterUser ann (email normalized)"
send_wait RegisterUser '{"user_id":"u-bob","email":"bob@example.com","name":"Bob"}' >/dev/null
send_wait RegisterUser '{"user_id":"u-cid","email":"cid@example.com","name":"Cid"}' >/dev/null
out="$(send_wait RegisterUser '{"user_id":"u-copy","email":"ANN@example.com","name":"Copycat"}')"
assert_eq "REJECTED EMAIL_TAKEN" "$(outcome "$out")" "registering ann's email again"
out="$(send_wait RegisterUser '{"user_id":"u-bad","email":"not-an-email","name":"Bad"}')"
assert_eq "REJECTED INVALID_EMAIL" "$(outcome "$out")" "registering a malformed email"
send_wait RegisterUser '{"user_id":"u-gone","email":"gone@example.com","name":"Gone"}' >/dev/null
out="$(send_wait DeactivateUser '{"user_id":"u-gone"}')"
assert_eq "ACCEPTED INACTIVE" "$(field '.status + " " + .user.status' "$out")" "DeactivateUser"

out="$(send_wait AddProduct '{"product_id":"p-widget","name":"Widget","price":1500,"stock":10}')"
assert_eq "ACCEPTED 10" "$(field '.status + " " + (.product.available|tostring)' "$out")" "AddProduct widget"
send_wait AddProduct '{"product_id":"p-gadget","name":"Gadget","price":2500,"stock":5}' >/dev/null
send_wait AddProduct '{"product_id":"p-rare","name":"Rare","price":9900,"stock":1}' >/dev/null
send_wait AddProduct '{"product_id":"p-bulk","name":"Bulk","price":100,"stock":0}' >/dev/null
out="$(send_wait RestockProduct '{"product_id":"p-bulk","quantity":50}')"
assert_eq "ACCEPTED 50" "$(field '.status + " " + (.product.on_hand|tostring)' "$out")" "RestockProduct"
out="$(send_wait ChangePrice '{"product_id":"p-gadget","price":2000}')"
assert_eq "ACCEPTED 2000" "$(field '.status + " " + (.product.price|tostring)' "$out")" "ChangePrice"
out="$(send_wait AddProduct '{"product_id":"p-free","name":"Free","price":0,"stock":1}')"
assert_eq "REJECTED INVALID_PRICE" "$(outcome "$out")" "a product priced 0"
shop_wait_copies 4 4
wait_until 30 "[ \"\$(sql \"SELECT price FROM orders.prices WHERE product_id = 'p-gadget'\")\" = 2000 ]"

# ---- the saga's paths ----
out="$(shop_order o-ok u-ann acc-ann 'p-widget:2 p-gadget:1')"
assert_eq "CONFIRMED -" "$(order_outcome "$out")" "an order that goes through"
assert_eq 5000 "$(field .order.total "$out")" "its total (2 x 1500 + 1 x 2000, the new price)"
wait_until 30 "[ \"\$(http GET /products/p-widget | jq -c '[.on_hand, .reserved, .available]')\" = '[8,0,8]' ]"
pass "the widgets it bought left the stock"
shop_invariants "a confirmed order"

out="$(shop_order o-oos u-ann acc-ann 'p-gadget:1 p-widget:100')"
assert_eq "REJECTED OUT_OF_STOCK" "$(order_outcome "$out")" "more widgets than there are"
assert_eq 4 "$(http GET /products/p-gadget | jq .available)" "nothing reserved by the rejected order (all or none: 5 - 1 sold)"

out="$(shop_order o-nope u-ann acc-ann 'p-nope:1')"
assert_eq "REJECTED UNKNOWN_PRODUCT" "$(outcome "$out")" "an unknown product"
out="$(shop_order o-who u-nobody acc-ann 'p-widget:1')"
assert_eq "REJECTED UNKNOWN_USER" "$(outcome "$out")" "an unknown user"
out="$(shop_order o-gone u-gone acc-ann 'p-widget:1')"
assert_eq "REJECTED USER_INACTIVE" "$(outcome "$out")" "a deactivated user"
out="$(shop_order o-zero u-ann acc-ann 'p-widget:0')"
assert_eq "REJECTED INVALID_ORDER" "$(outcome "$out")" "a line of 0 units"
shop_invariants "orders short of stock or refused at once"

out="$(shop_order o-poor u-bob acc-bob 'p-widget:1')"
assert_eq "REJECTED INSUFFICIENT_FUNDS" "$(order_outcome "$out")" "a customer who cannot pay"
out="$(shop_order o-closed u-cid acc-cid 'p-widget:1')"
assert_eq "REJECTED ACCOUNT_CLOSED" "$(order_outcome "$out")" "a closed account"
out="$(shop_order o-noacc u-bob acc-missing 'p-widget:1')"
assert_eq "REJECTED ACCOUNT_NOT_FOUND" "$(order_outcome "$out")" "an account that does not exist"
wait_until 30 "[ \"\$(http GET /products/p-widget | jq .reserved)\" = 0 ]"
pass "declined orders gave their widgets back"
shop_invariants "declined orders"

# cancel after confirm: refunded, the units back in stock
out="$(shop_order o-cancel u-ann acc-ann 'p-bulk:5')"
assert_eq "CONFIRMED -" "$(order_outcome "$out")" "an order to cancel later"
before="$(http GET /accounts/acc-ann | jq .balance)"
out="$(send_wait CancelOrder '{"order_id":"o-cancel"}')"
assert_eq "ACCEPTED CANCELLED" "$(field '.status + " " + .order.status' "$out")" "cancelling a confirmed order"
wait_until 30 "[ \"\$(http GET /accounts/acc-ann | jq .balance)\" = $((before + 500)) ]"
pass "the charge went back to the customer"
wait_until 30 "[ \"\$(http GET /products/p-bulk | jq -c '[.on_hand, .reserved]')\" = '[50,0]' ]"
pass "the units went back to stock"
wait_until 30 "[ \"\$(http GET /orders/o-cancel | jq -r .payment)\" = REFUNDED ]"
pass "the order shows its payment REFUNDED"
out="$(send_wait CancelOrder '{"order_id":"o-cancel"}')"
assert_eq "REJECTED ORDER_CLOSED" "$(outcome "$out")" "cancelling it twice"
out="$(send_wait CancelOrder '{"order_id":"o-never"}')"
assert_eq "REJECTED ORDER_NOT_FOUND" "$(outcome "$out")" "cancelling an order that does not exist"
shop_invariants "a cancel after confirm"

# a refund the ledger refuses (the merchant account emptied), asked for again with RetryRefund:
# once more while the cause remains (a second attempt under refund.2-), then once it is fixed
out="$(shop_order o-refund u-ann acc-ann 'p-bulk:2')"
assert_eq "CONFIRMED -" "$(order_outcome "$out")" "an order whose refund will be refused"
held="$(http GET "/accounts/$SHOP_MERCHANT" | jq .balance)"
send_wait WithdrawFunds "{\"account_id\":\"$SHOP_MERCHANT\",\"amount\":$held}" >/dev/null
before="$(http GET /accounts/acc-ann | jq .balance)"
out="$(send_wait CancelOrder '{"order_id":"o-refund"}')"
assert_eq "ACCEPTED CANCELLED" "$(field '.status + " " + .order.status' "$out")" "cancelling it while the merchant account is empty"
wait_until 30 "[ \"\$(http GET /orders/o-refund | jq -r .payment)\" = REFUND_FAILED ]"
pass "the ledger refused the refund: the order shows its payment REFUND_FAILED"
out="$(send_wait RetryRefund '{"order_id":"o-refund"}')"
assert_eq "ACCEPTED o-refund" "$(field '.status + " " + .order.order_id' "$out")" "RetryRefund accepted (shows the order)"
wait_until 30 "[ \"\$(sql \"SELECT state || ' ' || refund_attempts FROM payments.payments WHERE order_id = 'o-refund'\")\" = 'REFUND_FAILED 2' ]"
pass "the second attempt, the merchant still empty, was refused too"
send_wait DepositFunds "{\"account_id\":\"$SHOP_MERCHANT\",\"amount\":$held}" >/dev/null
out="$(send_wait RetryRefund '{"order_id":"o-refund"}')"
assert_eq "ACCEPTED" "$(field .status "$out")" "RetryRefund once the merchant account is funded again"
wait_until 30 "[ \"\$(http GET /orders/o-refund | jq -r .payment)\" = REFUNDED ]"
pass "the third attempt went through: the order shows its payment REFUNDED"
assert_eq "$((before + 200))" "$(http GET /accounts/acc-ann | jq .balance)" "the customer got the charge back, once"
assert_eq "refund-o-refund:FAILED refund.2-o-refund:FAILED refund.3-o-refund:COMPLETED" \
    "$(sql "SELECT string_agg(transfer_id || ':' || status, ' ' ORDER BY transfer_id COLLATE \"C\") FROM transfers.transfers WHERE transfer_id LIKE 'refund%-o-refund'")" \
    "the refund's three transfers in the ledger"
out="$(send_wait RetryRefund '{"order_id":"o-refund"}')"
assert_eq "REJECTED ALREADY_REFUNDED" "$(outcome "$out")" "retrying a refund that went through"
out="$(send_wait RetryRefund '{"order_id":"o-ok"}')"
assert_eq "REJECTED NO_FAILED_REFUND" "$(outcome "$out")" "retrying the refund of an order never refunded"
out="$(send_wait RetryRefund '{"order_id":"o-never"}')"
assert_eq "REJECTED UNKNOWN_ORDER" "$(outcome "$out")" "retrying the refund of an unknown order"
out="$(send_wait RetryRefund '{"order_id":"o refund"}')"
assert_eq "REJECTED INVALID_ID" "$(outcome "$out")" "retrying with a malformed order id"
wait_until 30 "[ \"\$(http GET /sagas/o-refund | jq -c '[.status, ([.steps[].type] | map(select(. == \"PaymentRefundRetried\")) | length)]')\" = '[\"CANCELLED\",2]' ]"
pass "both retries are steps of the order's saga, which stays CANCELLED"
shop_invariants "a refund retried until the ledger took it"

# cancel while pending: payments is held stopped, so the order waits after its reservation
svc_stop payments
esctl send PlaceOrder "{\"order_id\":\"o-pend\",\"user_id\":\"u-ann\",\"account_id\":\"acc-ann\",\"items\":$(shop_items 'p-rare:1')}" >/dev/null
wait_until 30 "[ \"\$(sql \"SELECT status FROM catalog.reservations WHERE order_id = 'o-pend'\")\" = RESERVED ]"
assert_eq PENDING "$(http GET /orders/o-pend | jq -r .status)" "the order waits for its payment"
before="$(http GET /accounts/acc-ann | jq .balance)"
out="$(send_wait CancelOrder '{"order_id":"o-pend"}')"
assert_eq "ACCEPTED CANCELLED" "$(field '.status + " " + .order.status' "$out")" "cancelling a pending order"
wait_until 30 "[ \"\$(http GET /products/p-rare | jq .available)\" = 1 ]"
pass "its reservation was released"
svc_start payments
# back, payments finds OrderPlaced, StockReserved and OrderCancelled waiting on two topics: it
# either never charges (the cancel came first) or charges and refunds at once
wait_until 30 "sql \"SELECT state FROM payments.payments WHERE order_id = 'o-pend'\" | grep -qx 'CANCELLED\\|REFUNDED'"
pass "payments, back, ends the cancelled order's payment $(sql "SELECT state FROM payments.payments WHERE order_id = 'o-pend'")"
wait_until 30 "[ \"\$(http GET /accounts/acc-ann | jq .balance)\" = $before ]"
pass "the customer's balance is what it was before the order"
shop_invariants "a cancel while pending"

# a race for the last unit: five orders at once, one wins
for i in 1 2 3 4 5; do
    printf '{"order_id":"o-race-%d","user_id":"u-ann","account_id":"acc-ann","items":[{"product_id":"p-rare","quantity":1}]}\n' "$i"
done | esctl send --batch PlaceOrder >/dev/null
wait_until 60 "[ \"\$(sql \"SELECT count(*) FROM shop_views.orders WHERE order_id LIKE 'o-race-%' AND status IN ('CONFIRMED', 'REJECTED')\")\" = 5 ]"
assert_eq "CONFIRMED:1 REJECTED:4" "$(sql "SELECT string_agg(status || ':' || n, ' ' ORDER BY status) FROM (SELECT status, count(*) n FROM shop_views.orders WHERE order_id LIKE 'o-race-%' GROUP BY 1) x")" \
    "five orders for the last unit"
assert_eq OUT_OF_STOCK "$(sql "SELECT DISTINCT reason FROM shop_views.orders WHERE order_id LIKE 'o-race-%' AND status = 'REJECTED'")" "the losers' reason"
shop_invariants "the race for the last unit"

# two registrations of one email at once, on two partitions: exactly one wins
for i in 1 2 3 4; do
    printf '{"user_id":"u-twin-%d","email":"twin@example.com","name":"Twin %d"}\n' "$i" "$i"
done | esctl send --batch RegisterUser >/dev/null
wait_until 30 "[ \"\$(sql \"SELECT count(*) FROM shop_views.commands WHERE command_type = 'RegisterUser' AND aggregate_id LIKE 'u-twin-%'\")\" = 4 ]"
assert_eq 1 "$(sql "SELECT count(*) FROM users.users WHERE email = 'twin@example.com'")" "users holding twin@example.com"
assert_eq 3 "$(sql "SELECT count(*) FROM shop_views.commands WHERE aggregate_id LIKE 'u-twin-%' AND reason = 'EMAIL_TAKEN'")" "registrations refused with EMAIL_TAKEN"
shop_invariants "the race for one email"

# ChangeEmail frees the old email and claims the new one: the claims of a user's own email are
# read with the user, in the batch's first round trip
out="$(send_wait ChangeEmail '{"user_id":"u-cid","email":"CID2@example.com"}')"
assert_eq "ACCEPTED cid2@example.com" "$(field '.status + " " + .user.email' "$out")" "ChangeEmail cid"
out="$(send_wait RegisterUser '{"user_id":"u-cid-old","email":"cid@example.com","name":"Cid Old"}')"
assert_eq "ACCEPTED" "$(field .status "$out")" "cid's old email is free again"
out="$(send_wait ChangeEmail '{"user_id":"u-bob","email":"cid2@example.com"}')"
assert_eq "REJECTED EMAIL_TAKEN" "$(outcome "$out")" "changing to another user's email"
out="$(send_wait ChangeEmail '{"user_id":"u-gone","email":"gone2@example.com"}')"
assert_eq "REJECTED USER_INACTIVE" "$(outcome "$out")" "changing a deactivated user's email"
out="$(send_wait ChangeEmail '{"user_id":"u-bob","email":"bob2@example.com"}')"
assert_eq "ACCEPTED bob2@example.com" "$(field '.status + " " + .user.email' "$out")" "ChangeEmail bob"
out="$(send_wait RegisterUser '{"user_id":"u-bob-heir","email":"bob@example.com","name":"Heir"}')"
assert_eq "ACCEPTED" "$(field .status "$out")" "bob's old email is free again"
out="$(send_wait ChangeEmail '{"user_id":"u-cid","email":"bob@example.com"}')"
assert_eq "REJECTED EMAIL_TAKEN" "$(outcome "$out")" "... and taken by its new owner"
assert_eq "bob2@example.com bob@example.com cid2@example.com" \
    "$(sql "SELECT string_agg(email, ' ' ORDER BY user_id) FROM users.users WHERE user_id IN ('u-bob', 'u-bob-heir', 'u-cid')")" \
    "the users' emails after the changes"
assert_eq 0 "$(sql "SELECT count(*) FROM users.users u WHERE NOT EXISTS (SELECT 1 FROM users.emails e WHERE e.email = u.email AND e.user_id = u.user_id)")" \
    "users without the claim of their email"
assert_eq 0 "$(sql "SELECT count(*) FROM users.emails e WHERE NOT EXISTS (SELECT 1 FROM users.users u WHERE u.user_id = e.user_id AND u.email = e.email)")" \
    "claims their user no longer holds"
shop_invariants "email changes"

# a user's orders, newest first, paginated
page="$(http GET '/users/u-ann/orders?limit=3')"
assert_eq 3 "$(jq '.orders | length' <<<"$page")" "first page of ann's orders"
next="$(jq -r .next <<<"$page")"
all="$(jq -r '.orders[].order_id' <<<"$page")"
while [ "$next" != null ]; do
    page="$(http GET "$next")"
    all="$all"$'\n'"$(jq -r '.orders[].order_id' <<<"$page")"
    next="$(jq -r .next <<<"$page")"
done
assert_eq "$(sql "SELECT count(*) FROM shop_views.orders WHERE user_id = 'u-ann' AND status <> ''")" "$(grep -c . <<<"$all")" "ann's orders over all pages"
assert_eq 404 "$(http_status GET /users/u-nobody/orders)" "orders of an unknown user"
assert_eq 400 "$(http_status GET '/users/u-ann/orders?before=12')" "a malformed cursor"

shop_wait_settled
ledger_check
shop_check

# the order saga's events share one correlation id
corr="$(esctl replay --topic orders.events --type OrderPlaced --aggregate o-ok | jq -r .correlation_id)"
types="$(esctl replay --correlation "$corr" | jq -r .type | sort -u | tr '\n' ' ')"
assert_eq "FundsCredited FundsDebited OrderConfirmed OrderPlaced PaymentCaptured PaymentRequested PlaceOrder RequestTransfer StockCommitted StockReserved TransferCompleted TransferRequested " \
    "$types" "events of a confirmed order's saga"

# /metrics shows how far each projection is behind, the shop's too
metrics="$(http GET /metrics)"
assert "grep -q '^es_projection_lag_records{projection=\"shop\",topic=\"orders.events\",partition=\"[0-9]*\"} 0$' <<<\"\$metrics\"" \
    "/metrics shows the shop projection's lag (0 at rest)"
assert "grep -q '^es_projection_position{projection=\"ledger\",topic=\"accounts.events\"' <<<\"\$metrics\"" \
    "/metrics shows the ledger projection's positions"

# A batch of records a service ignores commits nothing on its own (lib/service.c): their
# positions wait for its next transaction, or for the loop to find nothing more to read.
# payments ignores OrderPlaced and OrderConfirmed; its stored positions still reach the end of
# every partition of orders.events.
ends="$(esctl replay --topic orders.events | jq -r '"\(.partition) \(.offset + 1)"' |
    awk '$2 > e[$1] { e[$1] = $2 } END { for (p in e) print p, e[p] }')"
[ -n "$ends" ] || fail "orders.events holds no records"
while read -r p e; do
    wait_until 5 "[ \"\$(sql \"SELECT next_offset FROM payments.positions WHERE topic = 'orders.events' AND partition = $p\")\" = $e ]" ||
        fail "payments' stored position on orders.events partition $p: $(sql "SELECT next_offset FROM payments.positions WHERE topic = 'orders.events' AND partition = $p"), the partition ends at $e"
done <<<"$ends"
pass "payments' stored positions reach the end of orders.events ($(wc -l <<<"$ends") partitions)"

# ---- the shop projector's dead letters -------------------------------------------------------
# Records that decode but that the shop projection cannot take go to projections.dlq with the
# reason, and the projection goes on: bob's UserRegistered with a user id that is no id, and
# cid's EmailChanged for a user never registered (u-zzz).
hex_of() { od -An -tx1 -v | tr -d ' \n'; }
# republish_as TYPE USER NEW: TYPE's first record of USER on users.events published again on the
# same partition as a new event (another event id), every USER in its value and headers turned
# into NEW (as long); prints "PARTITION OFFSET"
republish_as() {
    local rec hex from to id id2
    rec="$(esctl replay --raw --topic users.events --type "$1" --aggregate "$2" | head -n 1)"
    [ -n "$rec" ] || fail "no $1 of $2 on users.events"
    id="$(jq -r '.headers["es-event-id"]' <<<"$rec")"
    id2="$(printf '%s' "$id" | tr '0-9a-f' '1-9a-f0')" # each hex digit the next: still an id
    from="$(printf '%s' "$2" | hex_of)"
    to="$(printf '%s' "$3" | hex_of)"
    hex="$(jq -r .value_base64 <<<"$rec" | base64 -d | hex_of |
        sed "s/$from/$to/g; s/$(printf '%s' "$id" | hex_of)/$(printf '%s' "$id2" | hex_of)/g")"
    local -a hdrs
    mapfile -t hdrs < <(jq -r '.headers | to_entries[] | "\(.key)=\(.value)"' <<<"$rec" |
        sed "s/$2/$3/g; s/$id/$id2/g")
    bank_rawprod users.events "$(jq -r .partition <<<"$rec")" "$3" "$hex" "${hdrs[@]}"
}
read -r bad_p bad_o <<<"$(republish_as UserRegistered u-bob 'u!bob')"
read -r orphan_p orphan_o <<<"$(republish_as EmailChanged u-cid u-zzz)"
note "published users.events/$bad_p/$bad_o (u!bob) and users.events/$orphan_p/$orphan_o (u-zzz)"
for what in "bad:$bad_p:$bad_o:invalid aggregate id" "orphan:$orphan_p:$orphan_o:user event before its UserRegistered"; do
    IFS=: read -r name p o reason <<<"$what"
    wait_until 30 "[ -n \"\$(bank_dlq_record projections.dlq users.events $p $o)\" ]" ||
        fail "no dead letter in projections.dlq for the $name record (users.events/$p/$o)"
    assert_eq "$reason" "$(bank_dlq_record projections.dlq users.events "$p" "$o" | head -n 1 | jq -r '.headers["es-dlq-reason"]')" \
        "the $name record's dead letter says why"
done
# es-orders keeps its own copies of the users from users.events: the bad record is its dead
# letter too (the orphan EmailChanged is no input of it)
wait_until 30 "[ -n \"\$(bank_dlq_record orders.dlq users.events $bad_p $bad_o)\" ]" ||
    fail "no dead letter in orders.dlq for the bad record"
assert_eq "user event with an invalid user id" "$(bank_dlq_record orders.dlq users.events "$bad_p" "$bad_o" | head -n 1 | jq -r '.headers["es-dlq-reason"]')" \
    "es-orders dead-lettered the bad record too"
assert_eq "0|1" "$(sql "SELECT count(*) FILTER (WHERE user_id IN ('u!bob', 'u-zzz')), count(*) FILTER (WHERE user_id = 'u-bob') FROM shop_views.users")" \
    "neither became a user of the projection; bob is still there"
out="$(send_wait RegisterUser '{"user_id":"u-dora","email":"dora@example.com","name":"Dora"}')"
assert_eq ACCEPTED "$(field .status "$out")" "a registration after them"
wait_until 20 "[ \"\$(sql \"SELECT count(*) FROM shop_views.users WHERE user_id = 'u-dora'\")\" = 1 ]" ||
    fail "the projection did not go on after the dead letters"
pass "the projection went on"
n="$(esctl replay --raw --topic projections.dlq | jq -c 'select(.headers["es-dlq-topic"] == "users.events")' | wc -l)"
assert_eq 2 "$n" "dead letters from users.events in projections.dlq"
for svc in shop-projector orders users; do
    svc_running "$svc" || fail "es-$svc is not running"
done
pass "every service that reads users.events still runs"

# a rebuild of the shop projection equals the live one
shop_snapshot shop_live
out="$(esctl rebuild shop 2>&1)" || fail "esctl rebuild shop failed: $out"
grep -q 'rebuilt projection "shop" from [0-9]* events' <<<"$out" || fail "the rebuild did not say it swapped in: $out"
shop_rebuild_matches shop_live
