#!/usr/bin/env bash
# test_sagas_split.sh: two saga coordinators that share the partitions (round robin: four topics
# each), so a transfer's RequestTransfer (transfers.commands) and its end (transfers.events) are
# read by different instances. Each instance notes up to when it has read its partitions, and a
# deadline counts as passed only once the whole group read past it (lib/caught_up.h):
#   0. first, the dev broker refuses a member that lists another strategy first than the
#      group's (the mock cluster aborted on it), and stays up;
#   1. both running: a transfer held by a stopped es-accounts times out after its deadline;
#   2. the instance that reads transfers.events stalls (SIGSTOP) before a transfer is sent: the
#      transfer goes through, its deadline passes, and the other instance, which read its start
#      and is caught up on its own partitions, does not time it out (the end is unread, not
#      missing). Once the stalled instance's session expires the other one takes every
#      partition, reads the end, and the saga ends COMPLETED with no SagaTimedOut.
. "$(dirname "$0")/lib.sh"

export ES_PARTITIONS=1 ES_SAGA_DEADLINES=order=3s,transfer=3s
stack_start

field() { jq -r "$1" <<<"$2"; }
saga_status() { http GET "/sagas/$1" | jq -r '.status + " " + (if .reason == "" then "-" else .reason end)'; }
# last_assigned LOG: the instance's latest "partitions assigned" line's partitions ("" if none)
last_assigned() {
    grep 'msg="partitions \(assigned\|revoked\)"' "$1" 2>/dev/null | tail -n 1 |
        sed -n 's/.*msg="partitions assigned".* partitions="\([^"]*\)".*/\1/p'
}
timed_out_records() {
    esctl replay --topic sagas.events --correlation "$1" | jq -c 'select(.type == "SagaTimedOut")' | wc -l
}

for a in sp-a sp-b; do
    out="$(esctl send OpenAccount "{\"account_id\":\"$a\",\"owner\":\"$a\",\"currency\":\"EUR\"}" --wait --timeout 30)"
    assert_eq ACCEPTED "$(field .status "$out")" "OpenAccount $a"
done
out="$(esctl send DepositFunds '{"account_id":"sp-a","amount":500}' --wait --timeout 30)"
assert_eq ACCEPTED "$(field .status "$out")" "a deposit"

# ---- 0. a member listing another strategy first is refused, and the broker stays up ---------
# The stack's es-sagas offers range, then round robin (librdkafka's default). The mock cluster
# aborted the whole broker when a member of the same group listed another strategy first.
LOGX="$ES_DATA/log/es-sagas-x.log"
BROKER="$(svc_pid broker)"
"$ES_BIN/es-sagas" -X partition.assignment.strategy=roundrobin </dev/null >>"$LOGX" 2>&1 &
PIDX=$!
at_exit "kill -KILL $PIDX 2>/dev/null; wait $PIDX 2>/dev/null"
wait_until 30 "grep -q 'a group join refused' '$ES_DATA/log/es-broker.log'" ||
    fail "the dev broker did not refuse the join"
pass "the dev broker refused the join: $(grep -m 1 -o "reason=\"[^\"]*\"" "$ES_DATA/log/es-broker.log")"
sleep 2
assert 'kill -0 "$BROKER" 2>/dev/null' "the dev broker still runs"
out="$(esctl send DepositFunds '{"account_id":"sp-b","amount":1}' --wait --timeout 30)"
assert_eq ACCEPTED "$(field .status "$out")" "the stack still works"
kill -TERM "$PIDX"
wait "$PIDX" 2>/dev/null || true

# ---- the two instances: round robin ----------------------------------------------------------
svc_stop sagas
LOG1="$ES_DATA/log/es-sagas-1.log"
LOG2="$ES_DATA/log/es-sagas-2.log"
"$ES_BIN/es-sagas" -X partition.assignment.strategy=roundrobin </dev/null >>"$LOG1" 2>&1 &
PID1=$!
"$ES_BIN/es-sagas" -X partition.assignment.strategy=roundrobin </dev/null >>"$LOG2" 2>&1 &
PID2=$!
at_exit "kill -CONT $PID1 $PID2 2>/dev/null; kill -KILL $PID1 $PID2 2>/dev/null; wait $PID1 $PID2 2>/dev/null"
note "two es-sagas started (pids $PID1 $PID2)"
# settled: both hold partitions, and their latest assignments stayed the same for 3 s
settled=''
for _ in $(seq 1 20); do
    wait_until 60 "[ -n \"\$(last_assigned '$LOG1')\" ] && [ -n \"\$(last_assigned '$LOG2')\" ]" ||
        fail "the two instances never both held partitions: \"$(last_assigned "$LOG1")\" and \"$(last_assigned "$LOG2")\""
    seen="$(last_assigned "$LOG1") / $(last_assigned "$LOG2")"
    sleep 3
    if [ "$(last_assigned "$LOG1") / $(last_assigned "$LOG2")" = "$seen" ]; then
        settled=1
        break
    fi
done
[ -n "$settled" ] || fail "the group did not settle"
note "partitions: $seen"
if grep -q 'transfers\.events' <<<"$(last_assigned "$LOG1")"; then
    ENDS=$PID1 STARTS_LOG=$LOG2 ENDS_LOG=$LOG1
else
    ENDS=$PID2 STARTS_LOG=$LOG1 ENDS_LOG=$LOG2
fi
grep -q 'transfers\.commands' <<<"$(last_assigned "$STARTS_LOG")" ||
    fail "transfers.commands and transfers.events are read by the same instance: $seen"
pass "the instances share the partitions; transfers.events is read by pid $ENDS, transfers.commands by the other"

# ---- 1. both running: a stuck transfer times out ------------------------------------------
ACC="$(svc_pid accounts)"
kill -STOP "$ACC"
at_exit "kill -CONT $ACC 2>/dev/null"
stuck="$(esctl send RequestTransfer '{"transfer_id":"sp-t1","from_account":"sp-a","to_account":"sp-b","amount":100}' | jq -r .command_id)"
wait_until 20 "[ \"\$(timed_out_records $stuck)\" = 1 ]" ||
    fail "the stuck transfer did not time out (saga $(saga_status "$stuck"))"
pass "with both instances caught up, the stuck transfer timed out after its deadline ($(saga_status "$stuck"))"
kill -CONT "$ACC"
wait_until 20 "sql \"SELECT status FROM transfers.transfers WHERE transfer_id = 'sp-t1'\" | grep -qx 'COMPLETED\\|FAILED'" ||
    fail "the timed-out transfer did not end"

# ---- 2. the instance that reads the ends stalls -----------------------------------------------
kill -STOP "$ENDS"
note "coordinator $ENDS stopped (SIGSTOP)"
t0=$SECONDS
id="$(esctl send RequestTransfer '{"transfer_id":"sp-t2","from_account":"sp-a","to_account":"sp-b","amount":100}' | jq -r .command_id)"
wait_until 10 "[ \"\$(saga_status $id)\" = 'PENDING -' ]" ||
    fail "the other instance did not record the saga as pending from its RequestTransfer"
wait_until 10 "[ \"\$(sql \"SELECT status FROM transfers.transfers WHERE transfer_id = 'sp-t2'\")\" = COMPLETED ]" ||
    fail "the transfer did not complete"
pass "the transfer completed; its end is in a partition of the stalled instance"
# the deadline (3 s) passes while the stalled instance's session (6 s) has not expired yet
sleep $((t0 + 5 - SECONDS > 0 ? t0 + 5 - SECONDS : 0))
# (on a slow machine the takeover below may have come first: then it is COMPLETED already)
st="$(saga_status "$id")"
assert '[ "$st" = "PENDING -" ] || [ "$st" = "COMPLETED -" ]' \
    "its deadline passed with its end unread: the saga is not timed out ($st)"
assert_eq 0 "$(timed_out_records "$id")" "no SagaTimedOut published"
line="$(grep 'timers held back' "$STARTS_LOG" | tail -n 1)"
assert 'grep -q "partition=transfers.events/0 " <<<"$line"' "the other instance's log says its timers wait for transfers.events/0: ${line#*msg=}"
wait_until 40 "grep -q 'transfers\.events' <<<\"\$(last_assigned '$STARTS_LOG')\"" ||
    fail "the other instance never took the stalled one's partitions"
pass "the other instance took the stalled one's partitions"
wait_until 30 "[ \"\$(saga_status $id)\" = 'COMPLETED -' ]" || fail "the saga is $(saga_status "$id")"
pass "the saga ends COMPLETED"
kill -CONT "$ENDS"
sleep 2
assert_eq "COMPLETED -" "$(saga_status "$id")" "and stays COMPLETED once the stalled instance runs again"
assert_eq 0 "$(timed_out_records "$id")" "no SagaTimedOut for it"
# both stop cleanly (under ASan, their leak check runs at exit)
kill -TERM "$PID1" "$PID2"
rc1=0 rc2=0
wait "$PID1" || rc1=$?
wait "$PID2" || rc2=$?
assert_eq "0 0" "$rc1 $rc2" "both instances stopped cleanly on SIGTERM"
