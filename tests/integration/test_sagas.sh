#!/usr/bin/env bash
# test_sagas.sh: the saga coordinator (docs/SAGAS.md), end to end with every real service.
#   1. the timeline of every path of both sagas, read through GET /sagas/{id}: the steps, who
#      emitted each, in causal order, every record of the saga's correlation id and no other;
#   2. a timeout per saga type, with a participant held stopped past the deadline and started
#      again: the saga ends FAILED with TIMEOUT (or COMPLETED where the money had moved), money
#      and stock conserved;
#   3. the coordinator killed (SIGKILL) again and again while 250 deadlines fire (100 a tick):
#      every timer fires, none twice;
#   4. its tables dropped and rebuilt from the whole log (journal, then broker) by a cold start:
#      every saga and step as before, and no timer fired again;
#   5. under CPU pressure the coordinator's batches linger, and it still follows every saga;
#   6. restarted with a 2 s retention: every ended saga and its steps are forgotten, a pending
#      one stays until it ends, the counters stay, GET /sagas/{id} says why, and the log still
#      has them;
#   7. with 50,000 ended sagas kept, neither the timer's ticks nor GET /sagas read them all,
#      and the list gives the oldest that match its filters, in order.
# And first: the coordinator and its PostgreSQL backend run at a low priority (nice 19).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ledger.sh"
. "$(dirname "$0")/shop.sh"

stack_start

# 0. the coordinator, a watcher nothing waits on, yields the two cores to the sagas' services:
# it and the PostgreSQL backend that does its work run at nice 19 (ES_BACKGROUND_NICE, set by
# the dev stack; lib/nice.h)
wait_until 10 "grep -q 'msg=\"PostgreSQL backend yields the CPU\"' '$ES_DATA/log/es-sagas.log'"
assert_eq 19 "$(ps -o ni= -p "$(svc_pid sagas)" | tr -d ' ')" "the coordinator's nice value"
backend_nices="$(for p in $(sql "SELECT pid FROM pg_stat_activity WHERE application_name = 'sagas'"); do
    ps -o ni= -p "$p"; done | tr -d ' ' | tr '\n' ' ')"
assert "[[ ' $backend_nices' == *' 19 '* ]]" "a backend of the coordinator at nice 19 (nice values: $backend_nices)"

send_wait() { esctl send "$1" "$2" --wait --timeout 30; }
field() { jq -r "$1" <<<"$2"; }
cmd_id() { esctl send "$1" "$2" | jq -r .command_id; }
saga() { http GET "/sagas/$1"; }
saga_status() { saga "$1" | jq -r '.status + " " + (if .reason == "" then "-" else .reason end)'; }
# the saga's step types in timeline order, space separated
saga_steps() { saga "$1" | jq -r '[.steps[].type] | join(" ")'; }

# saga_wait ID STATUS [TIMEOUT]: until the saga's status (and reason) is STATUS, e.g.
# "FAILED TIMEOUT" or "COMPLETED -".
saga_wait() {
    wait_until "${3:-30}" "[ \"\$(saga_status $1 2>/dev/null)\" = \"$2\" ]"
}

# saga_timeline_ok ID: the timeline's shape holds: every record of the saga's correlation id in
# the log is a step and nothing else is; each step comes after its cause; each was emitted by
# the service that owns its type; the times each took are not negative.
saga_timeline_ok() {
    local id="$1" s logged steps bad
    s="$(saga "$id")"
    logged="$(esctl replay --correlation "$id" | jq -r .event_id | sort -u | tr '\n' ' ')"
    steps="$(jq -r '.steps[].event_id' <<<"$s" | sort -u | tr '\n' ' ')"
    assert_eq "$logged" "$steps" "saga $id: its steps are exactly the records of its correlation id"
    bad="$(jq -r '.steps as $st | [range(0; $st | length) as $i | $st[$i] | select(.causation_id != "")
        | .causation_id as $c | ($st | map(.event_id) | index($c)) as $k | select($k != null and $k > $i)
        | .type] | join(" ")' <<<"$s")"
    assert_eq "" "$bad" "saga $id: no step before its cause"
    bad="$(jq -r '[.steps[] | . as $x | {
            PlaceOrder: "esctl", OrderPlaced: "orders", OrderConfirmed: "orders", OrderRejected: "orders",
            OrderCancelled: "orders", OrderCommandRejected: "orders", StockReserved: "catalog",
            StockReservationRejected: "catalog", StockCommitted: "catalog", StockReleased: "catalog",
            PaymentRequested: "payments", PaymentCaptured: "payments", PaymentDeclined: "payments",
            PaymentRefunded: "payments", PaymentRefundFailed: "payments", TransferRequested: "transfers",
            TransferCompleted: "transfers", TransferFailed: "transfers", TransferCommandRejected: "transfers",
            FundsDebited: "accounts", DebitRejected: "accounts", FundsCredited: "accounts",
            CreditRejected: "accounts", DebitReversed: "accounts", SagaTimedOut: "sagas",
            RequestTransfer: (if $x.causation_id == "" then "esctl" else "payments" end)
        }[.type] as $want | select($want != .service) | "\(.type) by \(.service)"] | join(", ")' <<<"$s")"
    assert_eq "" "$bad" "saga $id: every step emitted by the service that owns its type"
    assert_eq 0 "$(jq '[.steps[] | select(.took_ms != null and .took_ms < 0)] | length' <<<"$s")" \
        "saga $id: no step took a negative time after its cause"
}

# sorted step types (for paths where two services react to one event in either order)
sorted() { tr ' ' '\n' <<<"$1" | sort | tr '\n' ' '; }

# ---- the cast ----
shop_open_merchant
for a in ann:100000 bob:300 eve:50000; do
    send_wait OpenAccount "{\"account_id\":\"acc-${a%%:*}\",\"owner\":\"${a%%:*}\",\"currency\":\"EUR\"}" >/dev/null
    send_wait DepositFunds "{\"account_id\":\"acc-${a%%:*}\",\"amount\":${a##*:}}" >/dev/null
done
send_wait OpenAccount '{"account_id":"acc-shut","owner":"shut","currency":"EUR"}' >/dev/null
send_wait CloseAccount '{"account_id":"acc-shut"}' >/dev/null
send_wait RegisterUser '{"user_id":"u-ann","email":"ann@example.com","name":"Ann"}' >/dev/null
send_wait RegisterUser '{"user_id":"u-bob","email":"bob@example.com","name":"Bob"}' >/dev/null
send_wait AddProduct '{"product_id":"p-widget","name":"Widget","price":1500,"stock":1000}' >/dev/null
send_wait AddProduct '{"product_id":"p-one","name":"One","price":700,"stock":1}' >/dev/null
shop_wait_copies 2 2

# ---- 1. timelines: the transfer saga ----
id="$(send_wait RequestTransfer '{"transfer_id":"t-ok","from_account":"acc-ann","to_account":"acc-eve","amount":250}' | jq -r .command_id)"
saga_wait "$id" "COMPLETED -"
assert_eq "RequestTransfer TransferRequested FundsDebited FundsCredited TransferCompleted" "$(saga_steps "$id")" \
    "a transfer that goes through: its timeline"
s="$(saga "$id")"
assert_eq "transfer t-ok" "$(field '.type + " " + .subject' "$s")" "its type and subject"
assert_eq "null RequestTransfer TransferRequested FundsDebited FundsCredited" "$(field '[.steps[] | .cause_type // "null"] | join(" ")' "$s")" \
    "each step caused by the one before"
assert_eq "esctl transfers accounts accounts transfers" "$(field '[.steps[].service] | join(" ")' "$s")" "the lanes: who did what"
assert_eq "transfer t-ok" "$(saga t-ok | jq -r '.type + " " + .subject')" "/sagas/{id} also finds a saga by its transfer id"
saga_timeline_ok "$id"

id="$(cmd_id RequestTransfer '{"transfer_id":"t-poor","from_account":"acc-bob","to_account":"acc-eve","amount":99999}')"
saga_wait "$id" "FAILED INSUFFICIENT_FUNDS"
assert_eq "RequestTransfer TransferRequested DebitRejected TransferFailed" "$(saga_steps "$id")" "insufficient funds: its timeline"
saga_timeline_ok "$id"

id="$(cmd_id RequestTransfer '{"transfer_id":"t-shut","from_account":"acc-ann","to_account":"acc-shut","amount":100}')"
saga_wait "$id" "FAILED ACCOUNT_CLOSED"
assert_eq "RequestTransfer TransferRequested FundsDebited CreditRejected DebitReversed TransferFailed" "$(saga_steps "$id")" \
    "a closed destination, compensated: its timeline"
saga_timeline_ok "$id"

id="$(cmd_id RequestTransfer '{"transfer_id":"t-self","from_account":"acc-ann","to_account":"acc-ann","amount":100}')"
saga_wait "$id" "FAILED SAME_ACCOUNT"
assert_eq "RequestTransfer TransferFailed" "$(saga_steps "$id")" "a transfer to self, refused at once: its timeline"

id="$(cmd_id RequestTransfer '{"transfer_id":"t-ok","from_account":"acc-ann","to_account":"acc-eve","amount":1}')"
saga_wait "$id" "FAILED TRANSFER_EXISTS"
assert_eq "RequestTransfer TransferCommandRejected" "$(saga_steps "$id")" "a transfer id used twice: its timeline"

# ---- 1. timelines: the order saga ----
out="$(shop_order o-ok u-ann acc-ann 'p-widget:2')"
id="$(field .command_id "$out")"
saga_wait "$id" "COMPLETED -"
assert_eq "$(sorted "PlaceOrder OrderPlaced StockReserved PaymentRequested RequestTransfer TransferRequested FundsDebited FundsCredited TransferCompleted PaymentCaptured OrderConfirmed StockCommitted")" \
    "$(sorted "$(saga_steps "$id")")" "an order that goes through: its steps (the payment's transfer nested in it)"
assert_eq "PlaceOrder OrderPlaced StockReserved" "$(saga_steps "$id" | cut -d' ' -f1-3)" "… in causal order"
assert_eq "order o-ok" "$(saga o-ok | jq -r '.type + " " + .subject')" "/sagas/{id} also finds a saga by its order id"
assert_eq 0 "$(sql "SELECT count(*) FROM sagas.sagas WHERE subject LIKE 'pay-%'")" "a payment's transfer is no saga of its own"
saga_timeline_ok "$id"

# esctl draws it: lanes in the usual order, every step on a row of its own
drawn="$(esctl saga o-ok)"
assert "grep -q 'order saga o-ok .*COMPLETED after' <<<\"\$drawn\"" "esctl saga: the header says how it ended"
assert "grep -Eq '^ +esctl +orders +catalog +payments +transfers +accounts *$' <<<\"\$drawn\"" "esctl saga: one lane per service, in the saga's order"
assert_eq 12 "$(grep -cE '^ +\+[0-9.]+ (ms|s) ' <<<"$drawn")" "esctl saga: a row per step"
assert "grep -q '●◀.*✔ OrderConfirmed' <<<\"\$drawn\"" "esctl saga: the confirmation, an arrow back from payments to orders"
esctl saga "$id" --svg "$ES_DATA/o-ok.svg" 2>/dev/null
assert "head -c 5 '$ES_DATA/o-ok.svg' | grep -q '<svg' && tail -n 1 '$ES_DATA/o-ok.svg' | grep -q '</svg>'" "esctl saga --svg writes a picture"
assert_eq 12 "$(grep -c '<circle' "$ES_DATA/o-ok.svg")" "… with a dot per step"
assert_eq "$(cat "$ES_DATA/o-ok.svg")" "$(esctl saga "$id" --svg -)" "esctl saga --svg - writes the same picture to standard output"
rc=0
err="$(esctl saga o-nowhere 2>&1 >/dev/null)" || rc=$?
assert_eq "1 esctl saga: no saga \"o-nowhere\" (neither a saga id nor an order or transfer id; sagas ended before es-sagas' retention are forgotten: esctl replay --correlation SAGA_ID reads their records)" \
    "$rc $err" "esctl saga of an unknown id"
rc=0
err="$(esctl saga 'bad id' 2>&1 >/dev/null)" || rc=$?
assert_eq 2 "$rc" "esctl saga of a malformed id: a usage error ($err)"

id="$(shop_order o-oos u-ann acc-ann 'p-widget:5000' | jq -r .command_id)"
saga_wait "$id" "FAILED OUT_OF_STOCK"
assert_eq "PlaceOrder OrderPlaced StockReservationRejected OrderRejected" "$(saga_steps "$id")" "out of stock: its timeline"
saga_timeline_ok "$id"

id="$(shop_order o-what u-ann acc-ann 'p-nope:1' | jq -r .command_id)"
saga_wait "$id" "FAILED UNKNOWN_PRODUCT"
assert_eq "PlaceOrder OrderCommandRejected" "$(saga_steps "$id")" "an unknown product, refused at once: its timeline"

id="$(shop_order o-poor u-bob acc-bob 'p-widget:1' | jq -r .command_id)"
saga_wait "$id" "FAILED INSUFFICIENT_FUNDS"
assert_eq "$(sorted "PlaceOrder OrderPlaced StockReserved PaymentRequested RequestTransfer TransferRequested DebitRejected TransferFailed PaymentDeclined OrderRejected StockReleased")" \
    "$(sorted "$(saga_steps "$id")")" "a declined payment, stock released: its steps"
saga_timeline_ok "$id"

id="$(shop_order o-shut u-ann acc-shut 'p-widget:1' | jq -r .command_id)"
saga_wait "$id" "FAILED ACCOUNT_CLOSED"
saga_timeline_ok "$id"

id="$(shop_order o-back u-ann acc-ann 'p-widget:3' | jq -r .command_id)"
saga_wait "$id" "COMPLETED -"
send_wait CancelOrder '{"order_id":"o-back"}' >/dev/null
saga_wait "$id" "CANCELLED -"
wait_until 30 "saga $id | jq -e '[.steps[].type] | index(\"PaymentRefunded\")' >/dev/null"
steps="$(saga_steps "$id")"
assert_eq "$(sorted "PlaceOrder OrderPlaced StockReserved PaymentRequested RequestTransfer TransferRequested FundsDebited FundsCredited TransferCompleted PaymentCaptured OrderConfirmed StockCommitted OrderCancelled StockReleased RequestTransfer TransferRequested FundsDebited FundsCredited TransferCompleted PaymentRefunded")" \
    "$(sorted "$steps")" "a cancel after confirm joins the order's saga: refund and restock on one timeline"
assert_eq null "$(saga "$id" | jq -r '.steps[] | select(.type == "OrderCancelled") | .cause_type')" \
    "the cancel's cause, the CancelOrder command, is not a step of the order's saga"
saga_timeline_ok "$id"

# a refused cancel is no saga: nothing happened
id="$(send_wait CancelOrder '{"order_id":"o-nowhere"}' | jq -r .command_id)"
assert_eq 404 "$(http_status GET "/sagas/$id")" "a refused CancelOrder starts no saga"

svc_stop payments
id="$(cmd_id PlaceOrder "{\"order_id\":\"o-pend\",\"user_id\":\"u-ann\",\"account_id\":\"acc-ann\",\"items\":$(shop_items 'p-widget:1')}")"
wait_until 30 "[ \"\$(sql \"SELECT status FROM catalog.reservations WHERE order_id = 'o-pend'\")\" = RESERVED ]"
# the coordinator follows the log on its own (a background consumer): it may see the
# reservation a moment after the catalog made it
saga_wait "$id" "PENDING -" 10
pass "an order waiting for payments: its saga is PENDING"
assert "http GET '/sagas?status=PENDING&type=order' | jq -e --arg id '$id' '[.sagas[].saga_id] | index(\$id)' >/dev/null" \
    "/sagas?status=PENDING lists it"
assert "esctl sagas --status PENDING --type order | grep -q '^$id  order  *o-pend  *PENDING'" "esctl sagas --status PENDING lists it"
rc=0
esctl sagas --status STUCK >/dev/null 2>&1 || rc=$?
assert_eq 2 "$rc" "esctl sagas with an unknown status: a usage error"
send_wait CancelOrder '{"order_id":"o-pend"}' >/dev/null
saga_wait "$id" "CANCELLED -"
svc_start payments
shop_invariants "the saga timelines"
saga_timeline_ok "$id"

# ---- 2. deadlines: the coordinator again, with deadlines of 3 s ----
svc_stop sagas
export ES_SAGA_DEADLINES=order=3s,transfer=3s
svc_start sagas

# an order saga, payments held stopped: the orders service rejects it with TIMEOUT, the
# catalog releases its stock; payments, back, never keeps the money
svc_stop payments
before="$(http GET /accounts/acc-ann | jq .balance)"
avail="$(http GET /products/p-widget | jq .available)"
id="$(cmd_id PlaceOrder "{\"order_id\":\"o-slow\",\"user_id\":\"u-ann\",\"account_id\":\"acc-ann\",\"items\":$(shop_items 'p-widget:4')}")"
saga_wait "$id" "FAILED TIMEOUT" 30
assert_eq "REJECTED TIMEOUT" "$(http GET /orders/o-slow | jq -r '.status + " " + .reason')" "the order rejected with TIMEOUT"
s="$(saga "$id")"
assert_eq "sagas" "$(field '.steps[] | select(.type == "SagaTimedOut") | .service' "$s")" "the timeout on the timeline, from the coordinator"
assert "[ \"\$(field '.timed_out_at' '$s')\" != null ]" "the saga says when it timed out"
wait_until 30 "[ \"\$(http GET /products/p-widget | jq .available)\" = $avail ]"
pass "the catalog released the timed-out order's stock"
svc_start payments
wait_until 60 "sql \"SELECT state FROM payments.payments WHERE order_id = 'o-slow'\" | grep -qx 'CANCELLED\\|REFUNDED'"
pass "payments, back, ended the payment $(sql "SELECT state FROM payments.payments WHERE order_id = 'o-slow'")"
wait_until 30 "[ \"\$(http GET /accounts/acc-ann | jq .balance)\" = $before ]"
pass "the customer has every cent back"
assert_eq "FAILED TIMEOUT" "$(saga_status "$id")" "late steps never moved the saga out of FAILED"
shop_invariants "an order saga timed out"
saga_timeline_ok "$id"

# an order saga whose PlaceOrder the orders service has not read at the deadline: fenced
svc_stop orders
id="$(cmd_id PlaceOrder "{\"order_id\":\"o-fence\",\"user_id\":\"u-ann\",\"account_id\":\"acc-ann\",\"items\":$(shop_items 'p-widget:1')}")"
saga_wait "$id" "TIMED_OUT -" 30
svc_start orders
saga_wait "$id" "FAILED TIMEOUT" 60
assert_eq "REJECTED TIMEOUT" "$(sql "SELECT status || ' ' || reason FROM orders.orders WHERE order_id = 'o-fence'")" \
    "the orders service, back, ended the order with TIMEOUT"
shop_invariants "an order saga timed out before the order existed"

# a transfer saga, transfers held stopped: the ledger fences the transfer, it never moves money
svc_stop transfers
ann="$(http GET /accounts/acc-ann | jq .balance)"
id="$(cmd_id RequestTransfer '{"transfer_id":"t-slow","from_account":"acc-ann","to_account":"acc-eve","amount":100}')"
saga_wait "$id" "TIMED_OUT -" 30
svc_start transfers
saga_wait "$id" "FAILED TIMEOUT" 60
assert_eq "FAILED TIMEOUT" "$(http GET /transfers/t-slow | jq -r '.status + " " + .reason')" "the transfer failed with TIMEOUT"
assert_eq "$ann" "$(http GET /accounts/acc-ann | jq .balance)" "no money moved"
saga_timeline_ok "$id"

# a transfer saga, accounts held stopped: whichever accounts reads first, the fence or the
# request, decides; either way the saga's end agrees with the money
svc_stop accounts
id="$(cmd_id RequestTransfer '{"transfer_id":"t-late","from_account":"acc-ann","to_account":"acc-eve","amount":100}')"
saga_wait "$id" "TIMED_OUT -" 30
svc_start accounts
wait_until 60 "saga_status $id | grep -qx 'COMPLETED -\\|FAILED TIMEOUT'"
end="$(saga_status "$id")"
case "$end" in
"COMPLETED -") assert_eq "$((ann - 100))" "$(http GET /accounts/acc-ann | jq .balance)" "the request was read first: the transfer went through ($end)" ;;
*) assert_eq "$ann" "$(http GET /accounts/acc-ann | jq .balance)" "the fence was read first: no money moved ($end)" ;;
esac
ledger_wait_settled 0 60
ledger_check >/dev/null
pass "ledger invariants after a transfer saga timed out"

# ---- 3. the coordinator killed while 250 deadlines fire: none lost, none fired twice ----
svc_stop payments
for i in $(seq 1 250); do
    printf '{"order_id":"o-due-%d","user_id":"u-ann","account_id":"acc-ann","items":[{"product_id":"p-widget","quantity":1}]}\n' "$i"
done | esctl send --batch PlaceOrder >/dev/null
wait_until 30 "[ \"\$(sql \"SELECT count(*) FROM sagas.sagas WHERE subject LIKE 'o-due-%' AND saga_type = 'order'\")\" = 250 ]"
svc_kill9 sagas
sleep 4 # every deadline passes while the coordinator is down
due_fired() { sql "SELECT count(*) FROM sagas.sagas WHERE subject LIKE 'o-due-%' AND timed_out_at IS NOT NULL"; }
fired=0
kills=1
for k in 1 2 3; do
    svc_start sagas
    # a tick fires at most 100: kill it as soon as one has, likely in the middle of the next
    wait_until 60 "[ \"\$(due_fired)\" -gt $fired ]"
    fired="$(due_fired)"
    [ "$fired" -lt 250 ] || break
    svc_kill9 sagas
    kills=$((kills + 1))
    note "the coordinator was killed with $fired of 250 timers fired"
done
svc_running sagas || svc_start sagas
wait_until 60 "[ \"\$(sql \"SELECT count(*) FROM sagas.sagas WHERE subject LIKE 'o-due-%' AND status = 'FAILED' AND reason = 'TIMEOUT'\")\" = 250 ]"
pass "all 250 sagas timed out and were undone, across $kills kills of the coordinator"
fired="$(esctl replay --topic sagas.events --type SagaTimedOut | jq -r '[.data.subject, .event_id] | @tsv' | grep '^o-due-' | sort -u)"
assert_eq 250 "$(cut -f1 <<<"$fired" | sort -u | grep -c .)" "sagas with a SagaTimedOut in the log"
assert_eq 250 "$(grep -c . <<<"$fired")" "distinct SagaTimedOut events: one per saga, none fired twice"
assert_eq 250 "$(sql "SELECT count(*) FROM orders.orders WHERE order_id LIKE 'o-due-%' AND status = 'REJECTED' AND reason = 'TIMEOUT'")" \
    "orders rejected with TIMEOUT, each once"
assert_eq "$(sql "SELECT count(*) FROM sagas.sagas WHERE saga_type = 'order' AND timed_out_at IS NOT NULL")" \
    "$(sql "SELECT n FROM sagas.counters WHERE saga_type = 'order' AND name = 'timed_out'")" \
    "the timed-out counter counted each timeout once"
svc_start payments
shop_invariants "250 timeouts across coordinator crashes"

# ---- every saga agrees with its order or transfer ----
assert_eq 0 "$(sql "SELECT count(*) FROM sagas.sagas s JOIN orders.orders o ON o.order_id = s.subject
    WHERE s.saga_type = 'order' AND o.correlation_id = s.saga_id AND (s.status, s.reason) IS DISTINCT FROM
    (CASE o.status WHEN 'CONFIRMED' THEN 'COMPLETED' WHEN 'REJECTED' THEN 'FAILED' ELSE o.status END, o.reason)")" \
    "order sagas whose status or reason disagrees with their order's"
assert_eq 0 "$(sql "SELECT count(*) FROM sagas.sagas WHERE status IN ('PENDING', 'TIMED_OUT')")" \
    "sagas not terminal at rest (of any type, or of none)"
metrics="$(http GET /metrics)"
assert "grep -q '^es_sagas_timed_out_total{type=\"order\"} [1-9]' <<<\"\$metrics\"" "/metrics counts the timed-out order sagas"
assert "grep -q '^es_saga_duration_seconds_count{type=\"transfer\"} [1-9]' <<<\"\$metrics\"" "/metrics has the transfer sagas' duration histogram"

# ---- 4. the coordinator's tables rebuilt from the log ----
# Once payments, back, has caught up (it may charge a timed-out order whose rejection it had
# not read yet, then refund it: steps of sagas already ended) and the coordinator has read
# everything, its tables are dropped and a cold start reads the whole log again.
# deadline_at is left out: it is the deadline configured when the saga was seen, and this test
# changed it half way; so is last_step, which of two steps of the same millisecond came last.
cols="saga_id, saga_type, subject, status, reason, started_at, ended_at, timed_out_at, step_count"
step_cols="event_id, saga_id, type, service, causation_id, occurred_at"
wait_until 60 "[ \"\$(sql \"SELECT count(*) FROM payments.payments WHERE order_id LIKE 'o-due-%'
    AND state IN ('CANCELLED', 'REFUNDED', 'DECLINED', 'CLOSED')\")\" = 250 ]"
shop_wait_settled 60
prev=-1
wait_until 60 "[ \"\$(sql 'SELECT coalesce(sum(high_watermark - next_offset), 0) FROM sagas.positions')\" = 0 ] &&
    n=\$(sql 'SELECT count(*) FROM sagas.steps') && { [ \"\$n\" = \"\$prev\" ] || { prev=\$n; sleep 1; false; }; }"
sql "SET client_min_messages = warning; DROP TABLE IF EXISTS sagas_before, steps_before, counters_before;
    CREATE TABLE sagas_before AS SELECT $cols FROM sagas.sagas;
    CREATE TABLE steps_before AS SELECT $step_cols FROM sagas.steps;
    CREATE TABLE counters_before AS SELECT * FROM sagas.counters"
timeouts_before="$(esctl replay --topic sagas.events --type SagaTimedOut | grep -c .)"
svc_stop sagas
sql "SET client_min_messages = warning; DROP SCHEMA sagas CASCADE"
svc_start sagas
wait_until 120 "[ \"\$(sql 'SELECT count(*) FROM sagas.steps' 2>/dev/null)\" = \"\$(sql 'SELECT count(*) FROM steps_before')\" ]" ||
    fail "the rebuilt coordinator has $(sql 'SELECT count(*) FROM sagas.steps') steps, $(sql 'SELECT count(*) FROM steps_before') before"
sleep 1 # a tick after catching up: a timer that would fire again has had its chance
diff_count() { # TABLE_BEFORE LIVE_TABLE COLS
    sql "SELECT count(*) FROM ((SELECT * FROM $1 EXCEPT SELECT $3 FROM $2)
        UNION ALL (SELECT $3 FROM $2 EXCEPT SELECT * FROM $1)) x"
}
assert_eq 0 "$(diff_count sagas_before sagas.sagas "$cols")" \
    "sagas that differ after a rebuild from the log ($(sql 'SELECT count(*) FROM sagas_before') before)"
assert_eq 0 "$(diff_count steps_before sagas.steps "$step_cols")" \
    "steps that differ after the rebuild ($(sql 'SELECT count(*) FROM steps_before') before)"
assert_eq none "$(sql "SELECT coalesce(string_agg(b.saga_type || '.' || b.name || ' ' || b.n || ' -> ' || coalesce(a.n::text, 'none'), ', '), 'none')
        FROM counters_before b LEFT JOIN sagas.counters a USING (saga_type, name)
        WHERE a.n IS DISTINCT FROM b.n AND b.name <> 'duration_ms_sum'")" \
    "counters that differ after the rebuild (not the duration sums: a start that moves back changes them)"
assert_eq "$timeouts_before" "$(esctl replay --topic sagas.events --type SagaTimedOut | grep -c .)" \
    "SagaTimedOut records in the log: the rebuild fired no timer again"

# ---- 5. under CPU pressure the coordinator lingers, and still follows every saga ----------
# Busy loops at the lowest priority, two more than the cores, always have one waiting for a
# CPU (what the kernel's pressure information reports), while the services, ahead of them,
# carry 15 transfers a second: ~90 records a second for the coordinator. A watcher, it then
# lets its batches wait for more (docs/SAGAS.md); its batches line counts them. Needs the
# kernel's pressure information.
if [ -r /proc/pressure/cpu ]; then
    for i in 0 1 2 3; do
        send_wait OpenAccount "{\"account_id\":\"acc-lg-$i\",\"owner\":\"lg\",\"currency\":\"EUR\"}" >/dev/null
        send_wait DepositFunds "{\"account_id\":\"acc-lg-$i\",\"amount\":100000}" >/dev/null
    done
    sagas_log="$T_STACK_DIR/log/es-sagas.log"
    # restarted, its batches line counts from now: its first line then covers the load only
    svc_stop sagas
    mark=$(($(wc -l <"$sagas_log") + 1))
    svc_start sagas
    burners=""
    for i in $(seq 1 $(($(nproc) + 2))); do
        timeout 90 nice -n 19 sh -c 'while :; do :; done' & # gone by themselves, whatever happens
        burners="$burners $!"
    done
    at_exit "kill $burners 2>/dev/null"
    "$ES_BIN/es-loadgen" --rate 15 --seconds 12 --accounts 4 --account-prefix acc-lg- \
        --prefix lg-t- --out "$T_STACK_DIR/lg-sent.csv" 2>/dev/null || fail "es-loadgen failed"
    # its first window of 10 s of batches
    wait_until 20 "tail -n +$mark '$sagas_log' | grep 'msg=\"batches\"' | grep -q 'lingered=[1-9][0-9]'" || true
    # shellcheck disable=SC2086 # the pids, one word each
    kill $burners 2>/dev/null
    line="$(tail -n +"$mark" "$sagas_log" | grep 'msg="batches"' | grep 'lingered=[1-9][0-9]' | head -n 1)"
    note "${line#*msg=\"batches\" }"
    avg="$(grep -o 'avg_records=[0-9]*' <<<"$line" | cut -d= -f2)"
    # a linger of the ordinary 4 ms would gather less than one record more at this rate
    assert "[ '${avg:-0}' -ge 4 ]" \
        "under CPU pressure the coordinator's batches linger: ${avg:-no} records a batch"
    sent=$(grep -c . "$T_STACK_DIR/lg-sent.csv")
    lg_completed() { sql "SELECT count(*) FROM sagas.sagas WHERE subject LIKE 'lg-t-%' AND status = 'COMPLETED'"; }
    wait_until 30 "[ \"\$(lg_completed)\" = $sent ]" || true
    assert_eq "$sent" "$(lg_completed)" \
        "every transfer saga sent under pressure followed to its end"
else
    note "no /proc/pressure/cpu: the coordinator's linger is not tested"
fi

# ---- 6. retention: ended sagas are forgotten, with their steps; the counters keep them ------
ended="$(sql "SELECT count(*) FROM sagas.sagas WHERE ended_at IS NOT NULL")"
open_before="$(sql "SELECT count(*) FROM sagas.sagas WHERE ended_at IS NULL")"
gone_id="$(sql "SELECT saga_id FROM sagas.sagas WHERE ended_at IS NOT NULL ORDER BY started_at LIMIT 1")"
sql "SET client_min_messages = warning; DROP TABLE IF EXISTS counters_before;
    CREATE TABLE counters_before AS SELECT * FROM sagas.counters"
svc_stop sagas
ES_SAGA_RETENTION=2s ES_SAGA_DEADLINES=order=1h,transfer=1h svc_start sagas
# a saga that stays pending meanwhile: its debit waits for es-accounts
svc_stop accounts
esctl send RequestTransfer '{"transfer_id":"t-kept","from_account":"acc-ann","to_account":"acc-eve","amount":1}' >/dev/null
wait_until 30 "[ \"\$(sql \"SELECT status FROM sagas.sagas WHERE subject = 't-kept'\")\" = PENDING ]" ||
    fail "the transfer t-kept did not show as a pending saga"
wait_until 60 "[ \"\$(sql 'SELECT count(*) FROM sagas.sagas WHERE ended_at IS NOT NULL')\" = 0 ]" ||
    fail "$(sql 'SELECT count(*) FROM sagas.sagas WHERE ended_at IS NOT NULL') ended sagas left with a 2 s retention"
pass "with a 2 s retention, the $ended ended sagas are forgotten"
assert_eq PENDING "$(sql "SELECT status FROM sagas.sagas WHERE subject = 't-kept'")" \
    "a pending saga is kept"
kept_steps="$(sql "SELECT count(*) FROM sagas.steps s JOIN sagas.sagas g USING (saga_id) WHERE g.subject = 't-kept'")"
assert "[ $kept_steps -ge 2 ]" "... with its steps ($kept_steps)"
assert_eq 0 "$(sql "SELECT count(*) FROM sagas.steps s WHERE NOT EXISTS
    (SELECT 1 FROM sagas.sagas g WHERE g.saga_id = s.saga_id)")" "steps left of forgotten sagas"
assert_eq "$((open_before + 1))" "$(sql "SELECT count(*) FROM sagas.sagas WHERE ended_at IS NULL")" \
    "sagas not ended are kept ($open_before before, and t-kept)"
assert_eq none "$(sql "SELECT coalesce(string_agg(b.saga_type || '.' || b.name, ', '), 'none')
        FROM counters_before b LEFT JOIN sagas.counters a USING (saga_type, name)
        WHERE a.n IS DISTINCT FROM b.n AND b.name <> 'started'")" \
    "counters that changed when sagas were forgotten (but for t-kept's start)"
# once it ends, it goes too
svc_start accounts
wait_until 60 "[ \"\$(sql \"SELECT count(*) FROM sagas.sagas WHERE subject = 't-kept'\")\" = 0 ]" ||
    fail "t-kept was not forgotten once it ended"
pass "t-kept, once it completed, is forgotten too"
grep -q 'ended sagas past their retention deleted' "$ES_DATA/log/es-sagas.log" ||
    fail "es-sagas does not log what it forgot"
out="$(http GET "/sagas/$gone_id" 2>/dev/null || true)"
[[ "$(jq -r .error <<<"$out")" == *"retention"*"esctl replay --correlation"* ]] ||
    fail "GET /sagas/<forgotten> does not say why: $out"
pass "GET /sagas/<forgotten id>: 404, $(jq -r .error <<<"$out" | cut -c1-80)..."
assert "[ \"\$(esctl replay --correlation $gone_id | grep -c .)\" -gt 0 ]" \
    "the log still has the forgotten saga's records"

# ---- 7. neither the timer nor the list grows with the sagas kept ----------------------------
# A stack that has run for a while keeps 30 days of ended sagas. Four times a second the timer
# looks for due deadlines and for sagas past the retention, and GET /sagas lists the oldest that
# match a filter: all of them must find their rows through an index, never by reading the whole
# table. 50,000 ended sagas, started between a day and a day and eight hours ago, stand for
# that history.
svc_stop sagas
sql "INSERT INTO sagas.sagas (saga_id, saga_type, subject, status, started_at, updated_at, ended_at)
    SELECT 'old-' || i, CASE WHEN i % 3 = 0 THEN 'transfer' ELSE 'order' END, 'o-old-' || i,
        CASE WHEN i % 7 = 0 THEN 'FAILED' ELSE 'COMPLETED' END,
        now() - interval '1 day' - i % 500 * interval '1 minute', now() - interval '1 day',
        now() - interval '1 day' FROM generate_series(1, 50000) i;
    ANALYZE sagas.sagas"
svc_start sagas
# each list: its query string, and the same filter and limit in SQL
lists=("limit=7|true|7"
    "status=COMPLETED&limit=5|status = 'COMPLETED'|5"
    "type=transfer&limit=4|saga_type = 'transfer'|4"
    "status=FAILED&type=order&limit=3|status = 'FAILED' AND saga_type = 'order'|3"
    "older_than=25h&limit=6|started_at < now() - interval '25 hours'|6"
    "status=PENDING|status = 'PENDING'|100"
    "older_than=2h&type=order&limit=1000|started_at < now() - interval '2 hours' AND saga_type = 'order'|1000")
scans() {
    sql "SELECT seq_scan || ' ' || idx_scan FROM pg_stat_user_tables
        WHERE relid = 'sagas.sagas'::regclass"
}
sleep 2 # its start's statistics flushed
read -r seq0 idx0 <<<"$(scans)"
for l in "${lists[@]}"; do http GET "/sagas?${l%%|*}" >/dev/null || fail "GET /sagas?${l%%|*}"; done
sleep 4 # 16 ticks
read -r seq1 idx1 <<<"$(scans)"
assert "[ $idx1 -gt $idx0 ]" \
    "the timer's ticks and the lists read the sagas by index ($((idx1 - idx0)) index scans in 4 s)"
assert_eq 0 "$((seq1 - seq0))" \
    "whole-table reads of the sagas by the timer's ticks and the lists, 50,000 ended sagas kept"
# list_is Q WHERE LIMIT: GET /sagas?Q names the sagas a plain sort of the table gives
list_is() {
    got="$(http GET "/sagas?$1" | jq -r '[.sagas[].saga_id] | join(" ")')"
    want="$(sql "SELECT coalesce(string_agg(saga_id, ' ' ORDER BY started_at, saga_id), '') FROM
        (SELECT saga_id, started_at FROM sagas.sagas WHERE $2 ORDER BY started_at, saga_id LIMIT $3) x")"
    [ "$got" = "$want" ]
}
for l in "${lists[@]}"; do
    IFS='|' read -r q where limit <<<"$l"
    # (a saga that ends meanwhile moves between lists: asked again)
    wait_until 10 "list_is '$q' \"$where\" $limit" ||
        fail "GET /sagas?$q: expected '$(cut -c1-200 <<<"$want")', got '$(cut -c1-200 <<<"$got")'"
    [ -n "$want" ] || [ "$q" = status=PENDING ] ||
        fail "no saga matches /sagas?$q: the check proves nothing"
    pass "GET /sagas?$q: the $(wc -w <<<"$want") oldest that match, in order"
done
