#!/usr/bin/env bash
# test_sagas_scale_out.sh: two saga coordinators in one consumer group. With one partition per
# topic, one instance owns every partition and the other none. An instance with no partition
# has read nothing, so its timer never fires: when the owner stalls (SIGSTOP) with a saga's end
# still unread and its deadline passes, the other instance does not time that saga out. Once
# the owner's session expires it takes the partitions, reads them to their end, and the saga
# ends COMPLETED, with no SagaTimedOut.
. "$(dirname "$0")/lib.sh"

export ES_PARTITIONS=1 ES_SAGA_DEADLINES=order=3s,transfer=3s
stack_start

field() { jq -r "$1" <<<"$2"; }
saga_status() { http GET "/sagas/$1" | jq -r '.status + " " + (if .reason == "" then "-" else .reason end)'; }
# last_assigned LOG: the count of the instance's latest "partitions assigned" line (-1: none yet)
last_assigned() {
    local n
    n="$(grep 'msg="partitions assigned"' "$1" 2>/dev/null | tail -n 1 | sed -n 's/.*count=\([0-9]*\).*/\1/p')"
    printf '%s\n' "${n:--1}"
}

for a in so-a so-b; do
    out="$(esctl send OpenAccount "{\"account_id\":\"$a\",\"owner\":\"$a\",\"currency\":\"EUR\"}" --wait --timeout 30)"
    assert_eq ACCEPTED "$(field .status "$out")" "OpenAccount $a"
done
out="$(esctl send DepositFunds '{"account_id":"so-a","amount":500}' --wait --timeout 30)"
assert_eq ACCEPTED "$(field .status "$out")" "a deposit"

LOG1="$ES_DATA/log/es-sagas.log"
LOG2="$ES_DATA/log/es-sagas-2.log"
PID1="$(svc_pid sagas)"
"$ES_BIN/es-sagas" </dev/null >>"$LOG2" 2>&1 &
PID2=$!
at_exit "kill -CONT $PID1 2>/dev/null; kill -KILL $PID2 2>/dev/null; wait $PID2 2>/dev/null"
note "second es-sagas started (pid $PID2)"
# assignment LOG1 LOG2: both instances' latest assignment lines (they change until the group
# settles)
assignment() { grep -h 'msg="partitions \(assigned\|revoked\)"' "$1" 2>/dev/null | tail -n 1; grep -h 'msg="partitions \(assigned\|revoked\)"' "$2" 2>/dev/null | tail -n 1; }
# the coordinator reads 8 topics: one instance gets all 8 partitions, the other none; the
# group has settled once that holds for 3 s with no new assignment
settled=''
for _ in $(seq 1 20); do
    wait_until 60 "[ \"\$(last_assigned '$LOG1') \$(last_assigned '$LOG2')\" = '8 0' ] ||
        [ \"\$(last_assigned '$LOG1') \$(last_assigned '$LOG2')\" = '0 8' ]" ||
        fail "no assignment of all 8 partitions to one instance: $(last_assigned "$LOG1") and $(last_assigned "$LOG2")"
    seen="$(assignment "$LOG1" "$LOG2")"
    sleep 3
    if [ "$(assignment "$LOG1" "$LOG2")" = "$seen" ] && grep -q 'assigned' <<<"$seen" &&
        ! grep -q 'revoked' <<<"$seen"; then
        settled=1
        break
    fi
done
[ -n "$settled" ] || fail "the group did not settle"
if [ "$(last_assigned "$LOG1")" = 8 ]; then
    OWNER=$PID1 OTHER_LOG=$LOG2
else
    OWNER=$PID2 OTHER_LOG=$LOG1
fi
pass "one instance owns every partition (pid $OWNER), the other none"

# a transfer held after TransferRequested (es-accounts paused), seen PENDING by the owner
ACC="$(svc_pid accounts)"
kill -STOP "$ACC"
at_exit "kill -CONT $ACC 2>/dev/null"
id="$(esctl send RequestTransfer '{"transfer_id":"so-t","from_account":"so-a","to_account":"so-b","amount":100}' | jq -r .command_id)"
t0=$SECONDS
wait_until 10 "[ \"\$(saga_status $id)\" = 'PENDING -' ] &&
    [ \"\$(http GET /sagas/$id | jq '[.steps[].type] | index(\"TransferRequested\")')\" != null ]" ||
    fail "the owner did not record the saga as pending at TransferRequested"
# the owner stalls; the transfer goes through; its deadline (3 s) passes while the owner's
# session (6 s) has not expired yet: only an instance with no partition could fire it
kill -STOP "$OWNER"
note "coordinator $OWNER stopped (SIGSTOP) $((SECONDS - t0)) s after the transfer was sent"
kill -CONT "$ACC"
wait_until 10 "[ \"\$(sql \"SELECT status FROM transfers.transfers WHERE transfer_id = 'so-t'\")\" = COMPLETED ]" ||
    fail "the transfer did not complete"
pass "the transfer completed while the owner was stopped"
sleep $((t0 + 5 - SECONDS > 0 ? t0 + 5 - SECONDS : 0))
assert_eq "PENDING -" "$(saga_status "$id")" "its deadline passed with the owner stopped: the saga is still pending (not timed out)"
# the owner's session expires: the other instance takes every partition, reads them to their
# end, and only then may its timer fire
wait_until 40 "[ \"\$(last_assigned '$OTHER_LOG')\" = 8 ]" || fail "the other instance never took the partitions"
pass "the other instance took every partition"
wait_until 30 "[ \"\$(saga_status $id)\" = 'COMPLETED -' ]" || fail "the saga is $(saga_status "$id")"
pass "the saga ends COMPLETED"
kill -CONT "$OWNER"
sleep 2
assert_eq "COMPLETED -" "$(saga_status "$id")" "and stays COMPLETED once the owner runs again"
assert_eq 0 "$(esctl replay --topic sagas.events --correlation "$id" | jq -c 'select(.type == "SagaTimedOut")' | wc -l)" \
    "no SagaTimedOut for it"
