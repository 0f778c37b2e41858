#!/usr/bin/env bash
# test_esctl.sh: the esctl CLI against a real dev broker (bin/es-broker only: no services, no
# PostgreSQL; the query service of `send --wait` is a small stand-in written in Python).
#
# Checks: every send error (exit code, one line on stderr, nothing on stdout, nothing published),
# an unreachable broker failing within ~5 s, send + replay round trips (payloads, ids, headers)
# with every filter, a batch of 10,000 commands (all published, in input order), replay of
# undecodable and dead-letter records, replay --follow seeing a record sent after it started,
# send --wait (outcome, PENDING transfers, timeout), types, and the measured rates.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

DIR="$ES_ROOT/.data/test-esctl-$$"
BROKER_PID=''

FOLLOW_PID=''
rm -rf -- "$DIR"
mkdir -p -- "$DIR"
export ES_DATA="$DIR"
unset KAFKA_BROKERS ES_KAFKA_PROPS ES_QUERY_URL ES_HTTP_PORT
ESCTL="$ES_BIN/esctl"
WORK="$DIR/work"
mkdir -p -- "$WORK"

# Whatever happens: stop what we started (by pid), then remove the data folder.
cleanup() {
    [ -z "$FOLLOW_PID" ] || kill "$FOLLOW_PID" 2>/dev/null || true
    broker_stop
    if [ "${ES_KEEP:-0}" = 1 ]; then
        note "ES_KEEP=1: kept $DIR"
    else
        rm -rf -- "$DIR"
    fi
}
at_exit cleanup

broker_start() {
    rm -f -- "$DIR/broker.addr"
    "$ES_BIN/es-broker" -d "$DIR" >>"$DIR/broker.log" 2>&1 &
    BROKER_PID=$!
    wait_until 30 '[ -s "$DIR/broker.addr" ]' || {
        tail -n 20 "$DIR/broker.log" >&2
        fail "es-broker did not start"
    }
}

broker_stop() {
    [ -n "$BROKER_PID" ] || return 0
    kill -TERM "$BROKER_PID" 2>/dev/null || true
    es_pid_wait_gone "$BROKER_PID" 60 || kill -KILL "$BROKER_PID" 2>/dev/null || true
    wait "$BROKER_PID" 2>/dev/null || true
    BROKER_PID=''
}

# run_esctl ARGS...: run esctl, keeping stdout in $OUT, stderr in $ERR, the status in $RC.
run_esctl() {
    local o="$WORK/out" e="$WORK/err"
    RC=0
    "$ESCTL" "$@" >"$o" 2>"$e" || RC=$?
    OUT="$(cat -- "$o")"
    ERR="$(cat -- "$e")"
}

# expect_error CODE PATTERN ARGS...: esctl fails with CODE, prints nothing on stdout and exactly
# one line on stderr that contains PATTERN (grep -E).
expect_error() {
    local code="$1" pattern="$2"
    shift 2
    run_esctl "$@"
    [ "$RC" = "$code" ] || fail "esctl $*: expected exit $code, got $RC (stderr: $ERR)"
    [ -z "$OUT" ] || fail "esctl $*: expected no output, got: $OUT"
    [ "$(printf '%s\n' "$ERR" | wc -l)" = 1 ] || fail "esctl $*: expected one line on stderr, got: $ERR"
    printf '%s\n' "$ERR" | grep -Eq -- "$pattern" || fail "esctl $*: stderr '$ERR' lacks /$pattern/"
    pass "exit $code: $ERR"
}

# replay_count ARGS...: how many records `esctl replay ARGS` prints.
replay_count() {
    "$ESCTL" replay "$@" | wc -l | tr -d ' '
}

now_ms() {
    date +%s%3N
}

# ---- start ---------------------------------------------------------------------------------------

note "es-broker in $DIR"
broker_start
BROKERS="$(cat -- "$DIR/broker.addr")"

# ---- help, types, usage --------------------------------------------------------------------------

for sub in send replay rebuild types; do
    run_esctl "$sub" --help
    assert_eq 0 "$RC" "esctl $sub --help exit status"
    printf '%s\n' "$OUT" | grep -q 'KAFKA_BROKERS' || fail "esctl $sub --help does not mention KAFKA_BROKERS"
    printf '%s\n' "$OUT" | grep -q 'ES_DATA' || fail "esctl $sub --help does not mention ES_DATA"
done
run_esctl types
assert_eq 0 "$RC" "esctl types exit status"
printf '%s\n' "$OUT" | grep -Eq '^OpenAccount +command +accounts\.commands +key=account_id' ||
    fail "esctl types does not list OpenAccount with its topic and key"
printf '%s\n' "$OUT" | grep -Eq '^TransferCompleted +event +transfers\.events +key=transfer_id' ||
    fail "esctl types does not list TransferCompleted"
run_esctl types --json
assert_eq "RequestTransfer transfers.commands transfer_id" \
    "$(printf '%s\n' "$OUT" | jq -r 'select(.type=="RequestTransfer") | "\(.type) \(.topic) \(.key)"')" \
    "types --json RequestTransfer"

expect_error 2 'unknown command "bogus"' bogus
expect_error 2 'unknown flag' send --bogus OpenAccount '{}'
expect_error 2 'missing the command type' send
expect_error 2 'exactly one payload' send OpenAccount
expect_error 2 'missing the projection' rebuild
expect_error 2 'expected an offset, an RFC 3339 time' replay --from yesterday
expect_error 2 'unknown type "OpenAcount" \(did you mean "OpenAccount"\?\)' replay --type OpenAcount
expect_error 2 'unknown context "nosuch"' replay --context nosuch

# ---- send: every invalid input is refused and publishes nothing ---------------------------------

expect_error 2 'unknown command type "OpenAcount" \(did you mean "OpenAccount"\?\)' \
    send OpenAcount '{"account_id":"X1","owner":"x"}'
expect_error 2 'unknown command type "Deposit" \(did you mean "DepositFunds"\?\)' \
    send Deposit '{"account_id":"X1","amount":1}'
expect_error 2 'unknown command type "Frobnicate"' send Frobnicate '{}'
expect_error 2 '"AccountOpened" is an event type: only commands can be sent' \
    send AccountOpened '{"account_id":"X1","owner":"x","currency":"EUR"}'
expect_error 2 'invalid JSON in the argument at line 1, column [0-9]+' \
    send OpenAccount '{"account_id":"X1",'
expect_error 2 'invalid JSON in the argument at line 1, column [0-9]+' send OpenAccount 'nope'
expect_error 2 'payload must be a JSON object' send OpenAccount '[1,2]'
expect_error 2 'invalid OpenAccount: .*"owner"' send OpenAccount '{"account_id":"X1"}'
expect_error 2 'invalid DepositFunds: .*"amount".*integer' \
    send DepositFunds '{"account_id":"X1","amount":"12"}'
expect_error 2 'invalid DepositFunds: .*"colour"' \
    send DepositFunds '{"account_id":"X1","amount":12,"colour":"red"}'
expect_error 2 'invalid DepositFunds: field "account_id" \(the aggregate id\) must not be empty' \
    send DepositFunds '{"account_id":"","amount":12}'
printf '{\n  "account_id": "X1",\n  "owner": }\n' >"$WORK/bad.json"
expect_error 2 "invalid JSON in $WORK/bad.json at line 3, column [0-9]+" send OpenAccount -f "$WORK/bad.json"
expect_error 1 'could not read .*nosuch.json' send OpenAccount -f "$WORK/nosuch.json"
# flags that cannot work are usage errors, said before anything is read or sent
expect_error 2 '-X foo.bar=1: No such configuration property' send -X foo.bar=1 OpenAccount '{}'
expect_error 2 '-X message.timeout.ms=abc: Invalid value' replay -X message.timeout.ms=abc
expect_error 2 '-b/--brokers: an empty list' send -b '' OpenAccount '{}'
# duplicate keys are refused (with jansson's default the last one won, unseen)
expect_error 2 'duplicate object key' send DepositFunds '{"account_id":"X1","amount":"x","amount":5}'
# what a name quotes stays on one line, its control characters shown, not sent to the terminal
expect_error 2 'unknown command type "Open\\x0aAccount\\x1b\[31m"' send $'Open\nAccount\e[31m' '{}'
# too large: a payload Kafka would refuse (avro-c's setters wrote through NULL past 16 MiB:
# esctl died with SIGSEGV), and an input esctl would have read without end
python3 -c 'import json; print(json.dumps({"account_id": "X1", "owner": "x" * (15 << 20), "currency": "EUR"}))' >"$WORK/big.json"
expect_error 2 'invalid OpenAccount: field "owner": the payload is too large \(more than 4 MiB\)' \
    send OpenAccount -f "$WORK/big.json"
python3 -c 'import json; print(json.dumps({"account_id": "X1", "owner": "x" * 950000, "currency": "EUR"}))' >"$WORK/big.json"
expect_error 2 'invalid OpenAccount: the command is too large: [0-9]+ bytes once encoded, more than 900000' \
    send OpenAccount -f "$WORK/big.json"
python3 -c 'import json; print(json.dumps({"order_id": "o", "user_id": "u", "account_id": "a", "items": [{"product_id": "p", "quantity": 1}] * 163841}))' >"$WORK/items.json"
expect_error 2 'invalid PlaceOrder: field "items\[16384\]": too many items \(more than 16384 in a record\)' send PlaceOrder -f "$WORK/items.json"
expect_error 1 'could not read /dev/zero: more than 16 MiB' send OpenAccount -f /dev/zero

# --batch: one bad line anywhere and nothing at all is published.
{
    printf '{"account_id":"X1","owner":"a"}\n'
    printf '{"account_id":"X2","owner":"b"}\n'
    printf '{"account_id":"X3","owner":"c","currency":7}\n'
    printf '{"account_id":"X4","owner":"d"}\n'
} >"$WORK/batch-bad.jsonl"
run_esctl send --batch OpenAccount <"$WORK/batch-bad.jsonl"
assert_eq 2 "$RC" "batch with an invalid line 3: exit status"
assert_eq "" "$OUT" "batch with an invalid line: stdout"
printf '%s\n' "$ERR" | grep -q '^esctl send: line 3: invalid OpenAccount: .*"currency"' ||
    fail "batch error does not name line 3: $ERR"
printf '%s\n' "$ERR" | grep -q 'nothing was published' || fail "batch error does not say nothing was published"
pass "batch error names line 3 and publishes nothing"
{
    printf '{"type":"OpenAccount","data":{"account_id":"X1","owner":"a"}}\n'
    printf '\n'
    printf '{"type":"OpenAcount","data":{"account_id":"X2","owner":"b"}}\n'
    printf '{"account_id":"X3"}\n'
    printf 'not json\n'
    printf '{"type":"OpenAccount","data":{"account_id":"X6","owner":"f","currency":"EUR"},"extra":1}\n'
} >"$WORK/batch-bad2.jsonl"
run_esctl send --batch <"$WORK/batch-bad2.jsonl"
assert_eq 2 "$RC" "untyped batch with three bad lines: exit status"
printf '%s\n' "$ERR" | grep -q '^esctl send: line 3: unknown command type "OpenAcount" (did you mean "OpenAccount"?)' ||
    fail "untyped batch: line 3 not reported: $ERR"
printf '%s\n' "$ERR" | grep -q '^esctl send: line 4: expected {"type"' || fail "untyped batch: line 4 not reported: $ERR"
printf '%s\n' "$ERR" | grep -q '^esctl send: line 5: invalid JSON at column' || fail "untyped batch: line 5 not reported: $ERR"
printf '%s\n' "$ERR" | grep -q '^esctl send: line 6: expected {"type"' || fail "untyped batch: line 6 (a key beside type and data) not reported: $ERR"
printf '%s\n' "$ERR" | grep -q '4 invalid lines: nothing was published' || fail "untyped batch: no summary: $ERR"
pass "untyped batch reports lines 3, 4, 5, 6 and publishes nothing"

# No broker address, an unreachable broker: one line, quickly.
mkdir -p -- "$WORK/empty"
expect_error 1 'no Kafka broker: KAFKA_BROKERS is not set' \
    -d "$WORK/empty" send OpenAccount '{"account_id":"X1","owner":"a"}'
dead_port="$(free_port)"
t0="$(now_ms)"
expect_error 1 "could not reach the Kafka broker at 127.0.0.1:$dead_port" \
    -b "127.0.0.1:$dead_port" send OpenAccount '{"account_id":"X1","owner":"a"}'
elapsed=$(($(now_ms) - t0))
assert "[ $elapsed -lt 6500 ]" "unreachable broker reported in $elapsed ms (< 6.5 s)"
t0="$(now_ms)"
run_esctl -b "127.0.0.1:$dead_port" send --batch OpenAccount <"$WORK/batch-bad.jsonl"
assert_eq 2 "$RC" "invalid batch is refused before the broker is tried"

assert_eq 0 "$(replay_count)" "records published by all the failed sends"

# ---- send + replay round trip -------------------------------------------------------------------

run_esctl send OpenAccount '{"account_id":"A1","owner":"Ann"}'
assert_eq 0 "$RC" "send OpenAccount A1"
assert_eq "" "$ERR" "send OpenAccount A1 stderr"
open_a1="$OUT"
printf '%s\n' "$open_a1" | jq -e '(.command_id|test("^[0-9a-f]{32}$")) and .topic=="accounts.commands"
    and (.partition>=0) and .offset==0' >/dev/null || fail "unexpected delivery line: $open_a1"
pass "delivery line: $open_a1"
id_open_a1="$(jq -r .command_id <<<"$open_a1")"
part_a1="$(jq -r .partition <<<"$open_a1")"

printf '{"account_id":"B1","owner":"Bob","currency":"USD"}' >"$WORK/b1.json"
run_esctl send OpenAccount -f "$WORK/b1.json"
assert_eq 0 "$RC" "send -f FILE"
id_open_b1="$(jq -r .command_id <<<"$OUT")"
run_esctl send DepositFunds -f - <<<'{"account_id":"A1","amount":500}'
assert_eq 0 "$RC" "send -f - (stdin)"
id_dep_a1="$(jq -r .command_id <<<"$OUT")"
assert_eq "$part_a1" "$(jq -r .partition <<<"$OUT")" "same aggregate, same partition"
assert_eq 1 "$(jq -r .offset <<<"$OUT")" "second record of A1's partition"
run_esctl send RequestTransfer '{"transfer_id":"T1","from_account":"A1","to_account":"B1","amount":120}'
assert_eq 0 "$RC" "send RequestTransfer"
id_t1="$(jq -r .command_id <<<"$OUT")"
assert_eq transfers.commands "$(jq -r .topic <<<"$OUT")" "RequestTransfer topic"

printf '%s\n' '{"type":"WithdrawFunds","data":{"account_id":"A1","amount":20}}' \
    '{"type":"DepositFunds","data":{"account_id":"B1","amount":7}}' \
    '{"type":"CloseAccount","data":{"account_id":"C9"}}' >"$WORK/mixed.jsonl"
run_esctl send --batch <"$WORK/mixed.jsonl"
assert_eq 0 "$RC" "untyped batch of 3"
assert_eq 3 "$(printf '%s\n' "$OUT" | wc -l | tr -d ' ')" "untyped batch: delivery lines"
assert_eq "accounts.commands accounts.commands accounts.commands" \
    "$(printf '%s\n' "$OUT" | jq -r .topic | tr '\n' ' ' | sed 's/ $//')" "untyped batch topics"
id_withdraw="$(printf '%s\n' "$OUT" | sed -n 1p | jq -r .command_id)"

assert_eq 7 "$(replay_count)" "records after 7 sends"
all="$("$ESCTL" replay)"
rec="$(printf '%s\n' "$all" | jq -c "select(.event_id==\"$id_open_a1\")")"
printf '%s\n' "$rec" | jq -e --arg id "$id_open_a1" --argjson p "$part_a1" '
    .topic=="accounts.commands" and .partition==$p and .offset==0 and .key=="A1"
    and .type=="OpenAccount" and .correlation_id==$id and .causation_id==""
    and .aggregate_version==0 and (.timestamp|test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\\.[0-9]{3}Z$"))
    and .data=={"account_id":"A1","owner":"Ann","currency":"EUR"}' >/dev/null ||
    fail "replayed OpenAccount A1 is not what was sent: $rec"
pass "replayed OpenAccount A1 (default currency filled in): $rec"
printf '%s\n' "$all" | jq -e "select(.event_id==\"$id_t1\") | .data ==
    {\"transfer_id\":\"T1\",\"from_account\":\"A1\",\"to_account\":\"B1\",\"amount\":120,\"currency\":null}" \
    >/dev/null || fail "replayed RequestTransfer differs"
pass "replayed RequestTransfer equals the payload sent"

# Filters.
assert_eq 3 "$(replay_count --aggregate A1)" "replay --aggregate A1"
assert_eq "OpenAccount DepositFunds WithdrawFunds" \
    "$("$ESCTL" replay --aggregate A1 | jq -r .type | tr '\n' ' ' | sed 's/ $//')" \
    "replay --aggregate A1: types in offset order"
assert_eq 1 "$(replay_count --correlation "$id_dep_a1")" "replay --correlation"
assert_eq "$id_dep_a1" "$("$ESCTL" replay --correlation "$id_dep_a1" | jq -r .event_id)" "replay --correlation id"
assert_eq 2 "$(replay_count --type OpenAccount)" "replay --type OpenAccount"
assert_eq 1 "$(replay_count --type OpenAccount --aggregate B1)" "replay --type + --aggregate"
assert_eq 1 "$(replay_count --context transfers)" "replay --context transfers"
assert_eq 6 "$(replay_count --topic accounts.commands)" "replay --topic accounts.commands"
assert_eq 0 "$(replay_count --topic accounts.events)" "replay --topic accounts.events (empty)"
assert_eq 2 "$(replay_count --aggregate A1 --from 1)" "replay --from OFFSET"
assert_eq 2 "$(replay_count --aggregate A1 --until 1)" "replay --until OFFSET"
ts_dep="$(printf '%s\n' "$all" | jq -r "select(.event_id==\"$id_dep_a1\") | .timestamp")"
assert_eq 2 "$(replay_count --aggregate A1 --from "$ts_dep")" "replay --from RFC 3339 time"
assert_eq 2 "$(replay_count --aggregate A1 --until "$ts_dep")" "replay --until RFC 3339 time"
assert_eq 7 "$(replay_count --from @0)" "replay --from @0"
assert_eq 0 "$(replay_count --from "@$(($(now_ms) + 60000))")" "replay --from a future time"
raw="$("$ESCTL" replay --raw --correlation "$id_withdraw")"
printf '%s\n' "$raw" | jq -e --arg id "$id_withdraw" '.key=="A1" and .headers["es-type"]=="WithdrawFunds"
    and .headers["es-event-id"]==$id and .headers["es-correlation-id"]==$id
    and .headers["es-aggregate-id"]=="A1" and (.headers.traceparent|test("^00-[0-9a-f]{32}-[0-9a-f]{16}-01$"))
    and (.value_base64|length>0) and (has("data")|not)' >/dev/null || fail "replay --raw: $raw"
pass "replay --raw shows the headers and the value"

# ---- a batch of 10,000 commands ---------------------------------------------------------------

awk 'BEGIN { for (i = 0; i < 10000; i++)
    printf "{\"account_id\":\"bulk-%d\",\"amount\":%d}\n", i % 500, i + 1 }' >"$WORK/bulk.jsonl"
t0="$(now_ms)"
run_esctl send --batch DepositFunds <"$WORK/bulk.jsonl"
elapsed=$(($(now_ms) - t0))
assert_eq 0 "$RC" "batch of 10,000: exit status"
assert_eq "" "$ERR" "batch of 10,000: stderr"
printf '%s\n' "$OUT" >"$WORK/bulk.out"
assert_eq 10000 "$(wc -l <"$WORK/bulk.out" | tr -d ' ')" "batch of 10,000: delivery lines"
assert_eq 10000 "$(jq -r .command_id "$WORK/bulk.out" | sort -u | wc -l | tr -d ' ')" "batch of 10,000: distinct ids"
assert_eq 0 "$(jq -c 'select(.partition<0 or .offset<0 or .topic!="accounts.commands")' "$WORK/bulk.out" | wc -l | tr -d ' ')" \
    "batch of 10,000: all delivered"
note "batch of 10,000 sent in $elapsed ms ($((10000 * 1000 / (elapsed > 0 ? elapsed : 1))) commands/s, process start included)"
# Results come back in input order: line i's command carries amount i + 1.
"$ESCTL" replay --type DepositFunds --topic accounts.commands |
    jq -r 'select(.key|startswith("bulk-")) | "\(.event_id) \(.data.amount)"' | sort >"$WORK/bulk.replayed"
awk '{ print NR }' "$WORK/bulk.out" | paste -d' ' <(jq -r .command_id "$WORK/bulk.out") - | sort >"$WORK/bulk.expected"
assert_eq 10000 "$(wc -l <"$WORK/bulk.replayed" | tr -d ' ')" "batch of 10,000: records replayed"
cmp -s "$WORK/bulk.replayed" "$WORK/bulk.expected" || fail "delivery lines are not in input order (or payloads differ)"
pass "delivery lines are in input order and every payload replays intact"
total=$((7 + 10000))
assert_eq "$total" "$(replay_count)" "records after the batch"
stats="$("$ESCTL" replay --stats 2>&1 >/dev/null)"
printf '%s\n' "$stats" | grep -Eq "^esctl replay: $total records printed, $total read in [0-9.]+ s: [0-9]+ records/s$" ||
    fail "replay --stats: $stats"
pass "$stats"

# ---- undecodable and dead-letter records (published raw, as a broken peer would) ---------------

# bank.sh compiles a tiny raw producer (C, librdkafka): no envelope, no validation
# shellcheck source=tests/integration/bank.sh
. "$(dirname "$0")/bank.sh"
bank_rawprod accounts.dlq 0 K1 00ff6e6f74206176726f es-dlq-reason='undecodable payload' \
    es-dlq-topic=accounts.commands es-dlq-partition=2 es-dlq-offset=41 >/dev/null
bank_rawprod accounts.dlq 0 K2 c30167617262616765 es-type=OpenAccount >/dev/null
total=$((total + 2))
broker_stop
broker_start
assert_eq "$total" "$(replay_count)" "records after a broker restart"
dlq="$("$ESCTL" replay --topic accounts.dlq)"
assert_eq 2 "$(printf '%s\n' "$dlq" | wc -l | tr -d ' ')" "replay of two undecodable records"
printf '%s\n' "$dlq" | sed -n 1p | jq -e '.type==null and .key=="K1" and .dlq_reason=="undecodable payload"
    and .dlq_topic=="accounts.commands" and .dlq_partition==2 and .dlq_offset==41
    and .value_base64=="AP9ub3QgYXZybw=="' >/dev/null ||
    fail "dead-letter record: $(printf '%s\n' "$dlq" | sed -n 1p)"
pass "dead-letter record: $(printf '%s\n' "$dlq" | sed -n 1p)"
printf '%s\n' "$dlq" | sed -n 2p | jq -e '.type==null and .offset==1 and (.error|length>0)
    and .value_base64=="wwFnYXJiYWdl"' >/dev/null || fail "undecodable record: $(printf '%s\n' "$dlq" | sed -n 2p)"
pass "undecodable record: $(printf '%s\n' "$dlq" | sed -n 2p)"
# Filters trust the headers (nothing is decoded to filter): the record is shown, with its error.
assert_eq "1 null" "$("$ESCTL" replay --topic accounts.dlq --type OpenAccount | jq -r '"\(.offset) \(.type)"')" \
    "--type on an undecodable record whose header names the type"

# ---- replay --follow ----------------------------------------------------------------------------

"$ESCTL" replay --follow --context accounts >"$WORK/follow.out" 2>"$WORK/follow.err" &
FOLLOW_PID=$!
wait_until 30 "[ \"\$(wc -l <'$WORK/follow.out')\" -ge $((total - 1)) ]" || fail "replay --follow did not print the history"
run_esctl send CloseAccount '{"account_id":"F1"}'
assert_eq 0 "$RC" "send while following"
id_close="$(jq -r .command_id <<<"$OUT")"
wait_until 15 "grep -q '$id_close' '$WORK/follow.out'" || fail "replay --follow did not see the new record"
pass "replay --follow printed the record sent after it started"
kill -INT "$FOLLOW_PID"
rc=0
wait "$FOLLOW_PID" || rc=$?
FOLLOW_PID=''
assert_eq 0 "$rc" "replay --follow exit status after SIGINT"
assert_eq "CloseAccount F1" "$(tail -n 1 "$WORK/follow.out" | jq -r '"\(.type) \(.key)"')" "last followed record"

# ---- send --wait without a query service ------------------------------------------------------
# (--wait against the real query service runs in every saga test: test_transfer_saga.sh)

dead_port="$(free_port)"
t0="$(now_ms)"
run_esctl send --wait --timeout 1 --query-url "http://127.0.0.1:$dead_port" CloseAccount '{"account_id":"W1"}'
elapsed=$(($(now_ms) - t0))
assert_eq 1 "$RC" "send --wait with no query service: exit status"
assert_eq 1 "$(printf '%s\n' "$ERR" | wc -l | tr -d ' ')" "send --wait timeout: one line on stderr"
printf '%s\n' "$ERR" | grep -q "timed out after 1 s: command [0-9a-f]\{32\} was not handled in time (query service at http://127.0.0.1:$dead_port: could not connect" ||
    fail "send --wait timeout message: $ERR"
pass "$ERR"
assert "[ $elapsed -lt 3000 ]" "send --wait --timeout 1 gave up in $elapsed ms"

# ---- speed ------------------------------------------------------------------------------------

awk 'BEGIN { for (i = 0; i < 100000; i++)
    printf "{\"account_id\":\"speed-%d\",\"amount\":%d}\n", i % 1000, i + 1 }' >"$WORK/speed.jsonl"
t0="$(now_ms)"
"$ESCTL" send --batch DepositFunds <"$WORK/speed.jsonl" >"$WORK/speed.out"
elapsed=$(($(now_ms) - t0))
assert_eq 100000 "$(wc -l <"$WORK/speed.out" | tr -d ' ')" "batch of 100,000: delivery lines"
note "send --batch: 100,000 commands in $elapsed ms = $((100000 * 1000 / (elapsed > 0 ? elapsed : 1))) commands/s"
stats="$("$ESCTL" replay --stats 2>&1 >/dev/null)"
note "replay to /dev/null: $stats"
