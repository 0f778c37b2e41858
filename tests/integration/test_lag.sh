#!/usr/bin/env bash
# test_lag.sh: `esctl lag` on a running stack. Once the traffic is applied every consumer's lag
# is 0 (--max-lag 0 exits 0); with es-accounts stopped, the commands sent to it show as its
# lag on accounts.commands, and only there (table, --partitions and --json agree, --max-lag
# exits 3, es-query's es_consumer_lag_records, measured against the ends it reads from Kafka,
# agrees); started again, it catches up and the lag is 0. es-projector stopped, its lag in
# es-query's /metrics grows too (it used to stay at its last figure); started, back to 0.
# Usage errors, an unreachable broker and an unreachable PostgreSQL fail with one line and
# their exit status.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ledger.sh"
. "$(dirname "$0")/bank.sh"

N_ACCOUNTS=10
N_DEPOSITS=50

stack_start
bank_open "$N_ACCOUNTS" lag- 1000
bank_transfers 200 "$N_ACCOUNTS" lag- lt- 7 >"$ES_DATA/transfers.jsonl"
bank_send "$ES_DATA/transfers.jsonl"
ledger_wait_settled 200 60

# lag_of CONSUMER TOPIC: the lag --json prints for that consumer's topic
lag_of() {
    esctl lag --json --consumer "$1" | jq -r --arg t "$2" 'select(.topic == $t) | .lag'
}

# send_deposits: N_DEPOSITS deposits of 1 spread over the accounts, acknowledged by Kafka
send_deposits() {
    for ((i = 0; i < N_DEPOSITS; i++)); do
        printf '{"account_id":"lag-%d","amount":1}\n' $((i % N_ACCOUNTS))
    done | esctl send --batch DepositFunds >/dev/null
}

# ignored records (another service's events) are stored with the next batch or tick: wait
wait_until 30 'esctl lag --max-lag 0'
pass "every consumer applied everything: esctl lag --max-lag 0 exits 0"
out="$(esctl lag)"
printf '%s\n' "$out" | sed 's/^/    /' >&2
for c in accounts transfers projections; do
    grep -q "^$c " <<<"$out" || fail "esctl lag does not list $c"
done
pass "the table lists the services and the projector"
assert_eq 0 "$(esctl lag --json | jq -s 'map(select(.lag != 0)) | length')" "consumer topics with a lag (--json)"

# es-accounts stopped: what is sent to it waits in accounts.commands
svc_stop accounts
send_deposits
assert_eq "$N_DEPOSITS" "$(lag_of accounts accounts.commands)" "accounts' lag on accounts.commands while it is stopped"
out="$(esctl lag --consumer accounts)"
printf '%s\n' "$out" | sed 's/^/    /' >&2
grep -Eq "^accounts +accounts\.commands +${ES_PARTITIONS:-6} +[0-9]+ +[0-9]+ +$N_DEPOSITS +" <<<"$out" ||
    fail "the table does not show a lag of $N_DEPOSITS on accounts.commands"
pass "the table shows it"
assert_eq "$N_DEPOSITS" "$(esctl lag --json --partitions -c accounts | jq -s '[.[] | select(.topic == "accounts.commands") | .lag] | add')" \
    "the per-partition lags of accounts.commands, summed"
assert_eq "${ES_PARTITIONS:-6}" "$(esctl lag --json --partitions -c accounts | jq -s '[.[] | select(.topic == "accounts.commands")] | length')" \
    "per-partition lines of accounts.commands"
assert_eq 0 "$(esctl lag --json | jq -s 'map(select(.consumer != "accounts" and .lag != 0)) | length')" \
    "other consumers' topics with a lag"
# es-query's /metrics says the same: measured against the ends it reads from Kafka (no running
# consumer reads accounts.commands, so no stored end is newer than es-accounts' own)
metric() {
    curl -s "http://127.0.0.1:$ES_HTTP_PORT/metrics" | awk -v m="$1" 'index($0, m " ") == 1 { print $2 }'
}
wait_until 10 "[ \"\$(metric 'es_consumer_lag_records{consumer=\"accounts\",topic=\"accounts.commands\"}')\" = $N_DEPOSITS ]"
pass "/metrics: es_consumer_lag_records of accounts on accounts.commands = $N_DEPOSITS"
assert_eq 0 "$(curl -s "http://127.0.0.1:$ES_HTTP_PORT/metrics" | awk '/^es_consumer_lag_records\{/ && $1 !~ /consumer="accounts"/ && $2 != 0' | wc -l)" \
    "other consumers with a lag in /metrics"
age="$(metric es_log_ends_age_seconds)"
assert "awk -v a='$age' 'BEGIN { exit !(a != \"\" && a >= 0 && a < 5) }'" "the ends /metrics measured against are fresh ($age s)"
rc=0
esctl lag --max-lag $((N_DEPOSITS - 1)) >/dev/null || rc=$?
assert_eq 3 "$rc" "esctl lag --max-lag $((N_DEPOSITS - 1)) exit status"
rc=0
esctl lag --max-lag "$N_DEPOSITS" >/dev/null || rc=$?
assert_eq 0 "$rc" "esctl lag --max-lag $N_DEPOSITS exit status"

svc_start accounts
wait_until 60 'esctl lag --max-lag 0'
pass "started again, es-accounts applied the deposits: every lag is 0"
wait_until 10 "[ \"\$(metric 'es_consumer_lag_records{consumer=\"accounts\",topic=\"accounts.commands\"}')\" = 0 ]"
assert_eq $((N_ACCOUNTS * 1000 + N_DEPOSITS)) "$(sql "SELECT sum(balance) FROM accounts.accounts")" "money in the accounts"

# es-projector stopped: its lag in /metrics grows with what it has not applied (measured
# against the ends the services keep storing, not its own last figure)
projector_lag() {
    curl -s "http://127.0.0.1:$ES_HTTP_PORT/metrics" |
        awk '/^es_projection_lag_records\{projection="ledger",topic="accounts.events",/ { s += $2 } END { print s + 0 }'
}
assert_eq 0 "$(projector_lag)" "the ledger projector's lag on accounts.events in /metrics"
svc_stop projector
send_deposits
wait_until 30 'esctl lag -c accounts --max-lag 0'
assert_eq "$N_DEPOSITS" "$(lag_of projections accounts.events)" "the stopped projector's lag on accounts.events (esctl lag)"
wait_until 10 "[ \"\$(projector_lag)\" = $N_DEPOSITS ]"
pass "/metrics shows the stopped projector's lag: $N_DEPOSITS"
svc_start projector
wait_until 60 "[ \"\$(projector_lag)\" = 0 ]"
pass "started again, the projector's lag in /metrics is 0"

# the broker stopped: /metrics still answers at once, with the last ends read, and says how
# old they are; started again, they are fresh
svc_stop broker
t0=$(date +%s%N)
metric es_log_ends_age_seconds >/dev/null
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$ms" -lt 1500 ] || fail "/metrics took $ms ms with the broker stopped"
pass "/metrics answered in $ms ms with the broker stopped"
sleep 3
age="$(metric es_log_ends_age_seconds)"
assert "awk -v a='$age' 'BEGIN { exit !(a >= 3) }'" "the ends' age grows while the broker is away ($age s)"
svc_start broker
wait_until 30 "awk -v a=\"\$(metric es_log_ends_age_seconds)\" 'BEGIN { exit !(a != \"\" && a < 3) }'"
pass "the broker back, the ends are fresh again"
wait_until 30 'esctl lag --max-lag 0'

# a position on a topic the cluster does not have (deleted on real Kafka): shown, with "?"
# for what Kafka cannot tell, and exit status 1
sql "INSERT INTO payments.positions (topic, partition, next_offset) VALUES ('gone.events', 0, 5)"
rc=0
out="$(esctl lag -c payments 2>"$ES_DATA/err")" || rc=$?
sql "DELETE FROM payments.positions WHERE topic = 'gone.events'"
assert_eq 1 "$rc" "esctl lag exit status with a topic the cluster does not have"
grep -Eq '^payments +gone\.events +\? +5 +\? +\? ' <<<"$out" || fail "the unknown topic's line: $out"
assert_eq "esctl lag: topic gone.events is not in the cluster's metadata" "$(cat "$ES_DATA/err")" "what esctl lag said"

# usage errors and failures: one line on stderr, nothing on stdout, the exit status
expect_fail() {
    local want="$1" pattern="$2" rc=0 out err
    shift 2
    out="$("$@" 2>"$ES_DATA/err")" || rc=$?
    err="$(cat "$ES_DATA/err")"
    assert_eq "$want" "$rc" "exit status of $*"
    assert_eq "" "$out" "stdout of $*"
    assert_eq 1 "$(printf '%s\n' "$err" | wc -l)" "stderr lines of $*"
    grep -q -- "$pattern" <<<"$err" || fail "$* said: $err"
}
expect_fail 2 'esctl lag: invalid --max-lag "x"' esctl lag --max-lag x
expect_fail 2 'esctl lag: no consumer "nobody" has stored a position (known: accounts, ' esctl lag -c nobody
expect_fail 2 'esctl lag: unexpected argument "extra"' esctl lag extra
expect_fail 1 'esctl lag: could not connect to PostgreSQL: connection to server at "127.0.0.1", port 1 failed' \
    env ES_PG='host=127.0.0.1 port=1 dbname=es connect_timeout=2' "$ES_BIN/esctl" lag
t0=$SECONDS
expect_fail 1 'esctl lag: could not reach the Kafka broker at 127.0.0.1:1' esctl -b 127.0.0.1:1 lag
[ $((SECONDS - t0)) -le 8 ] || fail "esctl lag took $((SECONDS - t0)) s to give up on an unreachable broker"
pass "an unreachable broker fails within $((SECONDS - t0)) s"
