# shellcheck shell=bash
# shop.sh: the shop's invariants and helpers, sourced after lib.sh and ledger.sh.
#
#   shop_open_merchant              open the merchant account (shop-merchant, EUR)
#   shop_wait_copies U P            wait until the orders service's own copies hold U users and
#                                   P prices (it prices orders from them: docs/SHOP.md)
#   shop_order ID USER ACCOUNT ITEMS   PlaceOrder --wait; ITEMS like 'p-1:2 p-2:1'
#   shop_wait_settled               wait until every order, reservation and payment is at rest,
#                                   the shop projection has caught up with the services and the
#                                   saga coordinator has seen every saga end
#   shop_check                      every shop invariant, each a pass/fail line
#   shop_invariants LABEL           settle, then every shop and ledger invariant, as one line
#                                   (the failing check's lines when one fails)
#   shop_snapshot SCHEMA / shop_rebuild_matches SCHEMA
#                                   copy the shop projection, later compare it row by row

SHOP_MERCHANT=shop-merchant

shop_open_merchant() {
    esctl send OpenAccount "{\"account_id\":\"$SHOP_MERCHANT\",\"owner\":\"The shop\",\"currency\":\"EUR\"}" \
        --wait --timeout 30 >/dev/null
}

shop_wait_copies() {
    wait_until 60 "[ \"\$(sql 'SELECT count(*) FROM orders.users')\" -ge $1 ] && [ \"\$(sql 'SELECT count(*) FROM orders.prices')\" -ge $2 ]"
}

# shop_items 'p-1:2 p-2:1' -> [{"product_id":"p-1","quantity":2},...]
shop_items() {
    local out='' it
    for it in $1; do
        out="$out${out:+,}{\"product_id\":\"${it%%:*}\",\"quantity\":${it##*:}}"
    done
    printf '[%s]' "$out"
}

shop_order() {
    esctl send PlaceOrder "{\"order_id\":\"$1\",\"user_id\":\"$2\",\"account_id\":\"$3\",\"items\":$(shop_items "$4")}" \
        --wait --timeout 60
}

shop_wait_settled() {
    local timeout="${1:-120}"
    wait_until "$timeout" "[ \"\$(sql \"SELECT count(*) FROM orders.orders WHERE status = 'PENDING'\")\" = 0 ]"
    wait_until 60 "[ \"\$(sql \"SELECT count(*) FROM catalog.reservations WHERE status = 'RESERVED'\")\" = 0 ]"
    wait_until 60 "[ \"\$(sql \"SELECT count(*) FROM payments.payments WHERE state IN ('CHARGING', 'REFUNDING')\")\" = 0 ]"
    wait_until 60 "[ \"\$(sql \"SELECT count(*) FROM transfers.transfers WHERE status = 'PENDING'\")\" = 0 ]"
    # the projection has seen what the services wrote
    wait_until 60 "[ \"\$(sql \"SELECT count(*) FROM orders.orders o FULL JOIN shop_views.orders v USING (order_id) WHERE v.status IS DISTINCT FROM o.status AND (o.order_id IS NOT NULL)\")\" = 0 ]"
    wait_until 60 "[ \"\$(sql \"SELECT count(*) FROM catalog.products c FULL JOIN shop_views.products v USING (product_id) WHERE (c.on_hand, c.reserved, c.version) IS DISTINCT FROM (v.on_hand, v.reserved, v.version)\")\" = 0 ]"
    ledger_wait_settled 0 60
    # the saga coordinator has seen every saga end
    wait_until 60 "[ \"\$(sql \"SELECT count(*) FROM sagas.sagas WHERE status IN ('PENDING', 'TIMED_OUT')\")\" = 0 ]"
}

# a payment's refund transfers: refund-<id>, then refund.<n>-<id> for each RetryRefund
_shop_refund_ids="(t.transfer_id LIKE 'refund-%' OR t.transfer_id ~ '^refund\\.[1-9][0-9]{0,2}-')"
# payment transfers of an order: pay-<id> and its refunds, COMPLETED or not
_shop_moves="SELECT o.order_id, o.status, o.total,
        (SELECT t.status = 'COMPLETED' FROM transfers.transfers t WHERE t.transfer_id = 'pay-' || o.order_id) AS paid,
        (SELECT t.amount FROM transfers.transfers t WHERE t.transfer_id = 'pay-' || o.order_id) AS paid_amount,
        (SELECT count(*) > 0 FROM transfers.transfers t WHERE $_shop_refund_ids AND t.status = 'COMPLETED'
            AND substr(t.transfer_id, strpos(t.transfer_id, '-') + 1) = o.order_id) AS refunded,
        (SELECT count(*) FROM transfers.transfers t WHERE $_shop_refund_ids AND t.status = 'COMPLETED'
            AND substr(t.transfer_id, strpos(t.transfer_id, '-') + 1) = o.order_id) AS refunds
    FROM orders.orders o"

shop_check() {
    shop_record_added
    assert_eq 0 "$(sql "SELECT count(*) FROM catalog.products WHERE on_hand < 0 OR reserved < 0 OR reserved > on_hand")" \
        "products with negative stock or more reserved than on hand"
    assert_eq 0 "$(sql "SELECT count(*) FROM catalog.products WHERE reserved <> 0")" "units still reserved once every order is at rest"
    assert_eq 0 "$(sql "SELECT count(*) FROM orders.orders WHERE status NOT IN ('CONFIRMED', 'REJECTED', 'CANCELLED')")" \
        "orders not terminal (service)"
    assert_eq 0 "$(sql "SELECT count(*) FROM ($_shop_moves) m WHERE m.status = 'REJECTED' AND m.paid IS TRUE AND m.refunded IS NOT TRUE")" \
        "rejected orders whose charge stayed with the shop"
    assert_eq 0 "$(sql "SELECT count(*) FROM ($_shop_moves) m WHERE m.status = 'CANCELLED' AND m.paid IS TRUE AND m.refunded IS NOT TRUE")" \
        "cancelled orders whose charge was not refunded"
    assert_eq 0 "$(sql "SELECT count(*) FROM ($_shop_moves) m WHERE m.refunded IS TRUE AND m.paid IS NOT TRUE")" \
        "refunds of charges that never happened"
    assert_eq 0 "$(sql "SELECT count(*) FROM ($_shop_moves) m WHERE m.refunds > 1")" \
        "charges refunded more than once (over every attempt)"
    assert_eq 0 "$(sql "SELECT count(*) FROM ($_shop_moves) m WHERE m.status = 'CONFIRMED' AND NOT (m.paid IS TRUE AND m.refunded IS NOT TRUE AND m.paid_amount = m.total)")" \
        "confirmed orders not charged exactly their total"
    assert_eq 0 "$(sql "SELECT count(*) FROM transfers.transfers t WHERE (t.transfer_id LIKE 'pay-%' OR $_shop_refund_ids)
        AND substr(t.transfer_id, strpos(t.transfer_id, '-') + 1) NOT IN (SELECT order_id FROM orders.orders)")" \
        "charges or refunds of unknown orders"
    assert_eq "$(sql "SELECT coalesce(sum(total), 0) FROM orders.orders WHERE status = 'CONFIRMED'")" \
        "$(sql "SELECT coalesce(sum(balance), 0) FROM accounts.accounts WHERE account_id = '$SHOP_MERCHANT'")" \
        "the merchant holds exactly the totals of the confirmed orders"
    # units: on hand = added + restocked - sold (sold: the lines of confirmed orders)
    assert_eq 0 "$(sql "WITH sold AS (SELECT i->>'product_id' AS product_id, sum((i->>'quantity')::bigint) AS q
            FROM shop_views.orders o, jsonb_array_elements(o.items) i WHERE o.status = 'CONFIRMED' GROUP BY 1)
        SELECT count(*) FROM catalog.products p LEFT JOIN sold s USING (product_id)
        JOIN shop_added a USING (product_id) WHERE p.on_hand <> a.units - coalesce(s.q, 0)")" \
        "products whose units on hand are not added + restocked - sold"
    # the read models agree with the services
    assert_eq 0 "$(sql "SELECT count(*) FROM orders.orders o FULL JOIN shop_views.orders v USING (order_id)
        WHERE o.order_id IS NOT NULL AND (v.status IS DISTINCT FROM o.status OR v.total IS DISTINCT FROM o.total)")" \
        "orders where the projection disagrees with the service"
    assert_eq 0 "$(sql "SELECT count(*) FROM shop_views.orders v LEFT JOIN orders.orders o USING (order_id) WHERE o.order_id IS NULL")" \
        "orders in the projection the service does not know"
    assert_eq 0 "$(sql "SELECT count(*) FROM catalog.products c FULL JOIN shop_views.products v USING (product_id)
        WHERE (c.on_hand, c.reserved, c.price) IS DISTINCT FROM (v.on_hand, v.reserved, v.price)")" \
        "products where the projection disagrees with the service"
    assert_eq 0 "$(sql "SELECT count(*) FROM users.users u FULL JOIN shop_views.users v USING (user_id)
        WHERE (u.email, u.status) IS DISTINCT FROM (v.email, v.status)")" \
        "users where the projection disagrees with the service"
    assert_eq 0 "$(sql "SELECT count(*) FROM (SELECT email FROM users.users GROUP BY 1 HAVING count(*) > 1) x")" \
        "emails held by two users"
    # the saga coordinator's view of each order's saga agrees with the order
    assert_eq 0 "$(sql "SELECT count(*) FROM orders.orders o LEFT JOIN sagas.sagas s ON s.saga_id = o.correlation_id
        WHERE o.correlation_id <> '' AND (s.saga_type IS DISTINCT FROM 'order' OR (s.status, s.reason) IS DISTINCT FROM
        (CASE o.status WHEN 'CONFIRMED' THEN 'COMPLETED' WHEN 'REJECTED' THEN 'FAILED' ELSE o.status END, o.reason))")" \
        "orders whose saga (es-sagas) is missing or disagrees with the order"
}

# shop_added: a table of the units each product received (ProductAdded stock + restocks), read
# from the log, for shop_check's stock accounting.
shop_record_added() {
    local f="$ES_DATA/catalog-added.tsv"
    esctl replay --topic catalog.events | jq -r 'select(.type == "ProductAdded" or .type == "ProductRestocked")
        | [.key, .event_id, (if .type == "ProductAdded" then .data.on_hand else .data.quantity end)] | @tsv' |
        sort -u -k2,2 | awk -F'\t' '{ u[$1] += $3 } END { for (p in u) print p "\t" u[p] }' >"$f"
    sql "SET client_min_messages = warning; DROP TABLE IF EXISTS shop_added; CREATE TABLE shop_added (product_id text PRIMARY KEY, units bigint)"
    sql "COPY shop_added FROM STDIN" <"$f"
}

shop_snapshot() {
    local s="$1"
    sql "SET client_min_messages = warning; DROP SCHEMA IF EXISTS $s CASCADE; CREATE SCHEMA $s;
        CREATE TABLE $s.users AS SELECT user_id, email, name, status, version FROM shop_views.users;
        CREATE TABLE $s.products AS SELECT product_id, name, price, on_hand, reserved, version FROM shop_views.products;
        CREATE TABLE $s.orders AS SELECT order_id, user_id, account_id, items, total, status, reason, stock, payment, version FROM shop_views.orders;
        CREATE TABLE $s.commands AS SELECT command_id, command_type, aggregate_id, status, reason, event_type FROM shop_views.commands;"
}

shop_rebuild_matches() {
    local s="$1" t cols diff=''
    for t in users:"user_id, email, name, status, version" \
        products:"product_id, name, price, on_hand, reserved, version" \
        orders:"order_id, user_id, account_id, items, total, status, reason, stock, payment, version" \
        commands:"command_id, command_type, aggregate_id, status, reason, event_type"; do
        cols="${t#*:}"
        t="${t%%:*}"
        assert_eq "$(sql "SELECT count(*) FROM $s.$t")" "$(sql "SELECT count(*) FROM shop_views.$t")" "$t after the rebuild (count)"
        diff="$diff$(sql "(SELECT 'live', * FROM (SELECT * FROM $s.$t EXCEPT SELECT $cols FROM shop_views.$t) x LIMIT 5)
            UNION ALL (SELECT 'rebuilt', * FROM (SELECT $cols FROM shop_views.$t EXCEPT SELECT * FROM $s.$t) x LIMIT 5)")"
    done
    if [ -n "$diff" ]; then
        printf '%s\n' "$diff" | head -40 | sed 's/^/    /' >&2
        fail "the rebuilt shop projection differs from the live one (rows above)"
    fi
    pass "rebuilt shop projection equals the live one row by row (users, products, orders, commands)"
}

shop_invariants() {
    local out rc=0
    out="$( (shop_wait_settled 60 && ledger_check && shop_check) 2>&1)" || rc=$?
    if [ "$rc" -ne 0 ]; then
        printf '%s\n' "$out" | grep -v '^  ok \|^  \.\. ' | sed 's/^/    /' >&2
        fail "invariants after $1"
    fi
    pass "invariants after $1 ($(grep -c '^  ok ' <<<"$out") checks)"
}
