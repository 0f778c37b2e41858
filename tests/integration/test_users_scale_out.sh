#!/usr/bin/env bash
# test_users_scale_out.sh: emails stay unique across two instances of es-users. Users are keyed
# by user id, so two registrations of one email usually land on two partitions, here owned by
# two processes committing concurrently: the email claims' primary key makes the later batch
# fail, the runtime retries it, and the retry refuses with EMAIL_TAKEN (docs/SHOP.md).
. "$(dirname "$0")/lib.sh"

N_EMAILS=150

stack_start

last_assigned() {
    local n
    n="$(grep 'msg="partitions assigned"' "$1" 2>/dev/null | tail -n 1 | sed -n 's/.*count=\([0-9]*\).*/\1/p')"
    printf '%s\n' "${n:-0}"
}
LOG1="$ES_DATA/log/es-users.log"
LOG2="$ES_DATA/log/es-users-2.log"
"$ES_BIN/es-users" </dev/null >>"$LOG2" 2>&1 &
PID2=$!
at_exit "kill -TERM $PID2 2>/dev/null; wait $PID2 2>/dev/null"
wait_until 60 "[ \$(last_assigned '$LOG1') -gt 0 ] && [ \$(last_assigned '$LOG2') -gt 0 ] &&
    [ \$((\$(last_assigned '$LOG1') + \$(last_assigned '$LOG2'))) = 6 ]"
pass "users.commands split between the instances: $(last_assigned "$LOG1") + $(last_assigned "$LOG2")"

# three rounds; in each, every email is asked for by two users at once
for round in 1 2 3; do
    for ((i = 0; i < N_EMAILS; i++)); do
        printf '{"user_id":"a%d-%d","email":"e%d-%d@example.com","name":"A"}\n' "$round" "$i" "$round" "$i"
        printf '{"user_id":"b%d-%d","email":"E%d-%d@Example.com","name":"B"}\n' "$round" "$i" "$round" "$i"
    done | esctl send --batch RegisterUser >/dev/null
done
total=$((3 * 2 * N_EMAILS))
wait_until 60 "[ \"\$(sql \"SELECT count(*) FROM shop_views.commands WHERE command_type = 'RegisterUser'\")\" = $total ]"
assert_eq $((3 * N_EMAILS)) "$(sql "SELECT count(*) FROM users.users")" "users registered (one per email)"
assert_eq $((3 * N_EMAILS)) "$(sql "SELECT count(*) FROM shop_views.commands WHERE reason = 'EMAIL_TAKEN'")" "registrations refused with EMAIL_TAKEN"
assert_eq 0 "$(sql "SELECT count(*) FROM (SELECT email FROM users.users GROUP BY 1 HAVING count(*) > 1) x")" "emails held by two users"
assert_eq 0 "$(sql "SELECT count(*) FROM users.users u FULL JOIN users.emails e USING (email) WHERE u.user_id IS DISTINCT FROM e.user_id")" \
    "users and email claims that disagree"
pairs="$(sql "SELECT count(*) FROM users.users a JOIN users.users b ON a.user_id < b.user_id AND a.email = b.email")"
assert_eq 0 "$pairs" "pairs of users sharing an email"
retried="$(cat "$LOG1" "$LOG2" | grep -c 'duplicate key' || true)"
note "batches that lost a race on an email claim and were retried: $retried"
