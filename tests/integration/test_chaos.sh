#!/usr/bin/env bash
# test_chaos.sh: `esctl chaos` injects faults into the running dev broker, and the platform rides
# through them. Transfers are in flight while the broker goes down, answers 150 ms late, cuts
# producers' and consumers' connections as it reads their requests, and fails requests with
# retriable errors: afterwards every transfer has ended once, money is conserved, the
# projections agree with the services and a rebuild, and no service restarted. Events a
# service committed while no produce went through show in `esctl lag` as unsent (and
# --max-lag 0 exits 3) until they are published. A fault ends by itself when
# its time is up, `heal` ends every fault at once, and a broker stopped while a fault is in
# force heals first, stops cleanly and comes back whole; in a cluster of three, one broker can
# be taken down alone. Usage errors, a request the broker
# refuses and a data folder without a broker fail with one line and their exit status.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ledger.sh"
. "$(dirname "$0")/bank.sh"

N_ACCOUNTS=20
CHUNK=400

# expect_error CODE PATTERN ARGS...: esctl fails with CODE, prints nothing on stdout and one
# line on stderr matching PATTERN (grep -E).
expect_error() {
    local code="$1" pattern="$2" rc=0 out err
    shift 2
    out="$(esctl "$@" 2>"$ES_DATA/err")" || rc=$?
    err="$(cat -- "$ES_DATA/err")"
    [ "$rc" = "$code" ] || fail "esctl $*: expected exit $code, got $rc (stderr: $err)"
    [ -z "$out" ] || fail "esctl $*: expected no output, got: $out"
    [ "$(printf '%s\n' "$err" | wc -l)" = 1 ] || fail "esctl $*: expected one line on stderr, got: $err"
    grep -Eq -- "$pattern" <<<"$err" || fail "esctl $*: stderr '$err' lacks /$pattern/"
    pass "exit $code: $err"
}

# faults: the faults in force, as esctl chaos status --json lists them, one compact line each
faults() {
    esctl chaos status --json | jq -c '.faults[]'
}

# send_chunk TAG SEED: CHUNK transfers among the accounts, published (returns once Kafka has them)
send_chunk() {
    bank_transfers "$CHUNK" "$N_ACCOUNTS" acct- "$1-" "$2" >"$ES_DATA/$1.jsonl"
    bank_send "$ES_DATA/$1.jsonl"
}

stack_start
esctl chaos --help | grep -q 'usage: esctl chaos' || fail "esctl chaos --help"
pass "esctl chaos --help"

# ---- 1. usage errors, refusals, no broker ---------------------------------------------------
expect_error 2 'which fault' chaos
expect_error 2 'unknown fault "slow"' chaos slow
expect_error 2 'latency takes one argument' chaos latency
expect_error 2 'expected the milliseconds to add, 1..60000, not "fast"' chaos latency fast
expect_error 2 'expected the milliseconds to add' chaos latency 60001
expect_error 2 '--for: expected a duration' chaos down --for 2x
expect_error 2 '--for: expected a duration' chaos down --for 0
expect_error 2 '--broker: expected a broker id' chaos down --broker 0
expect_error 2 'down does not take --count' chaos down --count 3
expect_error 2 'errors does not take --for' chaos errors produce --for 1s
expect_error 2 'heal takes no argument' chaos heal now
expect_error 2 'unknown flag' chaos status --bogus
expect_error 2 'the broker refused it: the api must be one of produce, fetch' chaos errors prodcue
expect_error 2 'the broker refused it: the error must name a Kafka error code' chaos errors fetch --error NO_SUCH_ERROR
expect_error 2 'the broker refused it: the error must name' chaos errors fetch --error NO_ERROR
expect_error 2 'the broker refused it: broker must be an integer in 0..1' chaos down --broker 2
mkdir -p -- "$ES_DATA/empty"
expect_error 1 'no dev broker runs on the data folder .*/empty' -d "$ES_DATA/empty" chaos status
assert_eq 0 "$(find "$ES_DATA/chaos" -type f | wc -l)" "files left in $ES_DATA/chaos"
assert_eq "no faults: the broker answers as it should" "$(esctl chaos status)" "status before any fault"
assert "grep -q 'chaos: request refused' '$ES_DATA/log/es-broker.log'" "the broker logs the requests it refused"

# ---- 2. transfers in flight through each fault -------------------------------------------------
bank_open "$N_ACCOUNTS" acct- 100000
pids_before="$(for s in accounts transfers projector query; do svc_pid "$s"; done | paste -sd' ')"

send_chunk a 21
out="$(esctl chaos down --for 2s)"
grep -Eq '^down +broker 1 +no connections, [12]\.[0-9] s left$' <<<"$out" || fail "chaos down printed: $out"
pass "the broker is down for 2 s with $CHUNK transfers in flight: $out"
assert "grep -q 'chaos: broker down' '$ES_DATA/log/es-broker.log'" "the broker logs it"
wait_until 10 "grep -q 'chaos: broker up again' '$ES_DATA/log/es-broker.log'" ||
    fail "the broker did not come up again by itself"
pass "the broker came up again by itself after 2 s"
[ -z "$(faults)" ] || fail "faults still listed after the down ended: $(faults)"

send_chunk b 22
esctl chaos latency 150 --for 3s >/dev/null
assert_eq '{"fault":"latency","broker":1,"ms":150}' "$(faults | jq -c 'del(.left_ms)')" "the latency in force"
send_chunk c 23 # published through the slow broker
wait_until 10 "grep -q 'chaos: latency over' '$ES_DATA/log/es-broker.log'" ||
    fail "the latency did not end by itself"
pass "the latency ended by itself after 3 s"

# connections cut as the broker reads a produce or a fetch, retriable errors on both (a few
# cuts only: librdkafka waits twice as long before each reconnection, up to 10 s)
esctl chaos errors produce --count 5 >/dev/null
esctl chaos errors fetch --count 5 >/dev/null
esctl chaos errors produce --count 10 --error REQUEST_TIMED_OUT >/dev/null
esctl chaos errors fetch --count 10 --error NOT_LEADER_FOR_PARTITION >/dev/null
esctl chaos errors heartbeat --count 5 >/dev/null
send_chunk d 24
send_chunk e 25
assert_eq 'fetch 15 NOT_LEADER_FOR_PARTITION|heartbeat 5 _TRANSPORT|produce 15 REQUEST_TIMED_OUT' \
    "$(faults | jq -r '"\(.api) \(.pushed) \(.error)"' | sort | paste -sd'|')" \
    "the errors pushed (by request type: how many, the last error)"

ledger_wait_settled $((5 * CHUNK)) 120
ledger_check
assert_eq $((5 * CHUNK)) "$(sql "SELECT count(*) FROM projections.transfers WHERE transfer_id ~ '^[a-e]-'")" \
    "transfers sent through the faults, all in the projection"
assert_eq "$pids_before" "$(for s in accounts transfers projector query; do svc_pid "$s"; done | paste -sd' ')" \
    "the services' pids (none restarted: each rode through)"
# the log may hold copies of records (a produce appended and its answer lost); each applied once
copies="$(esctl replay --topic accounts.events --topic transfers.events | jq -r .event_id | sort | uniq -d | wc -l)"
note "records the broker holds twice after the faults: $copies (each applied once: ledger_check above)"
# and the projection equals a rebuild from the log
bank_snapshot chaos_live
out="$(esctl rebuild ledger 2>&1)" || {
    printf '%s\n' "$out" | tail -n 20 | sed 's/^/    /' >&2
    fail "esctl rebuild ledger failed"
}
bank_rebuild_matches chaos_live

# ---- 3. events committed and not yet in Kafka show in esctl lag ------------------------------
# es-accounts applies three deposits while every produce fails: its effects are committed, their
# events wait in its outbox. Its lag is 0, but esctl lag lists it as UNSENT and --max-lag 0
# exits 3 until the events are published.
svc_stop accounts
for i in 1 2 3; do printf '{"account_id":"acct-%d","amount":1}\n' "$i"; done | esctl send --batch DepositFunds >/dev/null
esctl chaos errors produce --count 100000 --error REQUEST_TIMED_OUT >/dev/null
svc_start accounts
wait_until 60 "esctl lag --json -c accounts | jq -se 'map(select(.topic == \"accounts.commands\"))[0] | .lag == 0 and .unsent_transactions > 0' >/dev/null" ||
    fail "es-accounts did not apply the deposits with their events unsent"
pass "es-accounts applied the deposits (lag 0) and its outbox holds their events"
out="$(esctl lag -c accounts)"
printf '%s\n' "$out" | sed 's/^/    /' >&2
grep -Eq '^UNSENT \(committed, not yet in Kafka\): accounts [0-9]+ transactions?$' <<<"$out" ||
    fail "esctl lag does not list es-accounts' unsent events"
pass "the table lists them under UNSENT"
rc=0
esctl lag --max-lag 0 >/dev/null || rc=$?
assert_eq 3 "$rc" "esctl lag --max-lag 0 while events wait in an outbox (exit status)"
assert_eq "no faults: the broker answers as it should" "$(esctl chaos heal)" "heal"
wait_until 60 'esctl lag --max-lag 0 >/dev/null' || fail "the unsent events were not published after the heal"
pass "published once the broker took produces again: esctl lag --max-lag 0 exits 0"

# ---- 4. heal, and a broker stopped with a fault in force --------------------------------------
esctl chaos latency 50 --for 10m >/dev/null
esctl chaos errors metadata --count 3 >/dev/null
[ "$(faults | wc -l)" -ge 2 ] || fail "the latency and the errors are not listed"
assert_eq "no faults: the broker answers as it should" "$(esctl chaos heal)" "heal ends every fault"
assert "grep -q 'chaos: every fault healed.*by=esctl chaos heal' '$ES_DATA/log/es-broker.log'" "the broker logs the heal"

records="$(esctl replay --context accounts --context transfers | wc -l)"
esctl chaos down --for 10m >/dev/null
svc_stop broker
assert "grep -q 'chaos: every fault healed.*by=stopping' '$ES_DATA/log/es-broker.log'" \
    "a broker stopped with a fault in force heals first"
assert "grep -q 'drained=yes' '$ES_DATA/log/es-broker.log'" "and stops cleanly, its journal drained"
svc_start broker
assert_eq "no faults: the broker answers as it should" "$(esctl chaos status)" "status after the restart"
assert_eq "$records" "$(esctl replay --context accounts --context transfers | wc -l)" \
    "records of the ledger's topics after the restart (test_broker_restart sends more through)"

# ---- 5. one broker of a cluster of three ------------------------------------------------------
multi="$ES_DATA/multi"
mkdir -p -- "$multi"
"$ES_BIN/es-broker" -d "$multi" --brokers 3 2>"$ES_DATA/multi.log" &
MULTI_PID=$!
at_exit 'kill -KILL "$MULTI_PID" 2>/dev/null; wait "$MULTI_PID" 2>/dev/null'
wait_until 60 "[ -s '$multi/broker.addr' ]" || fail "the three-broker es-broker did not start"
esctl -d "$multi" chaos down --broker 2 --for 10s >/dev/null
esctl -d "$multi" chaos latency 20 --for 10s >/dev/null
assert_eq 'latency 1|latency 2|down 2|latency 3' \
    "$(esctl -d "$multi" chaos status --json | jq -r '.faults[] | "\(.fault) \(.broker)"' | paste -sd'|')" \
    "faults of a three-broker cluster: broker 2 down, all three slowed"
expect_error 2 'the broker refused it: broker must be an integer in 0..3' -d "$multi" chaos down --broker 4
kill -TERM "$MULTI_PID"
rc=0
wait "$MULTI_PID" || rc=$?
assert_eq 0 "$rc" "the three-broker es-broker's exit status, stopped with faults in force"
assert "grep -q 'chaos: every fault healed.*by=stopping' '$ES_DATA/multi.log'" "it healed them first"
