#!/usr/bin/env bash
# test_dead_letters.sh: records a service cannot decode (garbage bytes, an envelope whose payload
# has an unknown schema fingerprint, an empty value, no value at all) go to the consuming
# service's dead-letter topic with the reason in header es-dlq-reason and the original key and
# value; the position moves past them; and later valid records on the same partition are still
# handled.
#
# esctl only publishes valid commands, so the bad records are written by a tiny librdkafka
# producer that bank.sh compiles on the fly (bank_rawprod).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ledger.sh"
. "$(dirname "$0")/bank.sh"

stack_start

send_wait() { esctl send "$1" "$2" --wait --timeout 30; }
field() { jq -r "$1" <<<"$2"; }
hex_of() { od -An -tx1 -v | tr -d ' \n'; }
b64_of_hex() {
    local h="$1" i
    for ((i = 0; i < ${#h}; i += 2)); do printf '%b' "\\x${h:i:2}"; done | base64 -w0
}

# with_unknown_fingerprint HEX: the record value HEX (an envelope) with the 8-byte schema
# fingerprint of its payload (the last field: a length, then C3 01 + fingerprint + body)
# replaced by one no schema has.
with_unknown_fingerprint() {
    local h="$1" n i len_hex
    n=$((${#h} / 2))
    for ((i = n - 10; i >= 3; i--)); do
        [ "${h:2*i:4}" = c301 ] || continue
        len_hex="$(printf '%02x' $(((n - i) * 2)))" # zigzag varint of a length below 64
        [ "${h:2*i-2:2}" = "$len_hex" ] || continue
        printf '%s0102030405060708%s\n' "${h:0:2*i+4}" "${h:2*i+20}"
        return 0
    done
    return 1
}

# expect_dead_letter DLQ TOPIC PARTITION OFFSET VALUE_HEX|null KEY WHAT REASON_PATTERN
expect_dead_letter() {
    local dlq="$1" topic="$2" part="$3" off="$4" value="$5" key="$6" what="$7" pattern="$8" rec reason b64=''
    wait_until 30 "[ -n \"\$(bank_dlq_record $dlq $topic $part $off)\" ]" ||
        fail "$what: no dead letter in $dlq for $topic/$part/$off"
    rec="$(bank_dlq_record "$dlq" "$topic" "$part" "$off" | head -n 1)"
    reason="$(field '.headers["es-dlq-reason"] // ""' "$rec")"
    [ -n "$reason" ] || fail "$what: the dead letter has no es-dlq-reason header: $rec"
    [[ "$reason" =~ $pattern ]] || fail "$what: reason '$reason' does not match /$pattern/"
    pass "$what -> $dlq, es-dlq-reason: $reason"
    assert_eq "$key" "$(field .key "$rec")" "$what: key kept"
    [ "$value" = null ] || [ "$value" = - ] || b64="$(b64_of_hex "$value")"
    assert_eq "$b64" "$(field '.value_base64 // ""' "$rec")" "$what: value kept"
}

# ---- accounts.commands -> accounts.dlq (es-accounts) -----------------------------------------

out="$(send_wait OpenAccount '{"account_id":"dl-a","owner":"A","currency":"EUR"}')"
assert_eq ACCEPTED "$(field .status "$out")" "OpenAccount dl-a"
P="$(field .partition "$out")"
send_wait OpenAccount '{"account_id":"dl-b","owner":"B","currency":"EUR"}' >/dev/null
out="$(send_wait DepositFunds '{"account_id":"dl-a","amount":1000}')"
assert_eq "ACCEPTED 1000" "$(field '.status + " " + (.account.balance|tostring)' "$out")" "first deposit"

valid="$(esctl replay --raw --topic accounts.commands --type DepositFunds --aggregate dl-a | head -n 1 |
    jq -r .value_base64 | base64 -d | hex_of)"
bad_fp="$(with_unknown_fingerprint "$valid")" || fail "could not find the payload fingerprint in $valid"

GARBAGE=deadbeef00ff7f80c3
declare -A OFF
OFF[garbage]="$(bank_rawprod accounts.commands "$P" dl-a "$GARBAGE" | cut -d' ' -f2)"
OFF[garbage_typed]="$(bank_rawprod accounts.commands "$P" dl-a 6e6f74206176726f es-type=DepositFunds | cut -d' ' -f2)"
OFF[fingerprint]="$(bank_rawprod accounts.commands "$P" dl-a "$bad_fp" es-type=DepositFunds | cut -d' ' -f2)"
OFF[empty]="$(bank_rawprod accounts.commands "$P" dl-a - | cut -d' ' -f2)"
OFF[null]="$(bank_rawprod accounts.commands "$P" dl-a null | cut -d' ' -f2)"
# an envelope whose payload is an envelope, every field empty (its payload was read into the
# value it was being read from: a use-after-free, found by fuzzing)
NESTED="${valid:0:20}000000000000000026${valid:0:20}000000000000000000"
OFF[nested]="$(bank_rawprod accounts.commands "$P" dl-a "$NESTED" | cut -d' ' -f2)"
note "bad records at accounts.commands/$P offsets ${OFF[*]}"

# a valid command with the same key, after them on the same partition, is still handled
out="$(send_wait DepositFunds '{"account_id":"dl-a","amount":250}')"
assert_eq "ACCEPTED 1250" "$(field '.status + " " + (.account.balance|tostring)' "$out")" "deposit after the bad records"
assert_eq "$P" "$(field .partition "$out")" "its partition"
last="$(field .offset "$out")"
assert '[ "$last" -gt "${OFF[nested]}" ]' "the deposit comes after the bad records ($last > ${OFF[nested]})"

expect_dead_letter accounts.dlq accounts.commands "$P" "${OFF[garbage]}" "$GARBAGE" dl-a "garbage bytes" 'decode'
expect_dead_letter accounts.dlq accounts.commands "$P" "${OFF[garbage_typed]}" 6e6f74206176726f dl-a "garbage with an es-type header" 'decode'
expect_dead_letter accounts.dlq accounts.commands "$P" "${OFF[fingerprint]}" "$bad_fp" dl-a "unknown payload fingerprint" 'fingerprint|schema|unknown'
expect_dead_letter accounts.dlq accounts.commands "$P" "${OFF[empty]}" - dl-a "empty value" '.'
expect_dead_letter accounts.dlq accounts.commands "$P" "${OFF[null]}" null dl-a "no value" '.'
expect_dead_letter accounts.dlq accounts.commands "$P" "${OFF[nested]}" "$NESTED" dl-a "an envelope in an envelope" 'envelope'
wait_until 10 "[ \"\$(sql \"SELECT next_offset FROM accounts.positions WHERE topic = 'accounts.commands' AND partition = $P\")\" -gt $last ]"
pass "es-accounts' position on accounts.commands/$P is past the bad records"
assert_eq 1250 "$(http GET /accounts/dl-a | jq .balance)" "dl-a's balance over HTTP"
assert_eq 6 "$(esctl replay --topic accounts.dlq | jq -c 'select(.dlq_topic == "accounts.commands")' | wc -l)" \
    "dead letters from accounts.commands"

# ---- transfers.commands -> transfers.dlq (es-transfers) --------------------------------------

out="$(send_wait RequestTransfer '{"transfer_id":"dl-x","from_account":"dl-a","to_account":"dl-b","amount":100}')"
assert_eq COMPLETED "$(field .transfer.status "$out")" "transfer dl-x"
R="$(field .partition "$out")"
off_tc="$(bank_rawprod transfers.commands "$R" dl-x "$GARBAGE" | cut -d' ' -f2)"
off_tc_empty="$(bank_rawprod transfers.commands "$R" dl-x - | cut -d' ' -f2)"
out="$(send_wait RequestTransfer '{"transfer_id":"dl-x","from_account":"dl-a","to_account":"dl-b","amount":100}')"
assert_eq "REJECTED TRANSFER_EXISTS $R" "$(field '.status + " " + .reason + " " + (.partition|tostring)' "$out")" \
    "the same transfer again, after the bad records on transfers.commands/$R"
expect_dead_letter transfers.dlq transfers.commands "$R" "$off_tc" "$GARBAGE" dl-x "garbage bytes" 'decode'
expect_dead_letter transfers.dlq transfers.commands "$R" "$off_tc_empty" - dl-x "empty value" '.'

# ---- transfers.events -> accounts.dlq (es-accounts) and projections.dlq (es-projector) -------

Q="$(esctl replay --topic transfers.events --type TransferRequested --aggregate dl-x | head -n 1 | jq -r .partition)"
off_te="$(bank_rawprod transfers.events "$Q" dl-x "$GARBAGE" | cut -d' ' -f2)"
off_te_fp="$(bank_rawprod transfers.events "$Q" dl-x "$bad_fp" es-type=TransferRequested | cut -d' ' -f2)"
# thirty more transfers: some of their TransferRequested land on partition Q after the garbage
for i in $(seq 1 30); do
    printf '{"transfer_id":"dl-t%d","from_account":"dl-a","to_account":"dl-b","amount":10}\n' "$i"
done | esctl send --batch RequestTransfer >/dev/null
ledger_wait_settled 31 60
after="$(esctl replay --topic transfers.events --type TransferRequested |
    jq -c --argjson q "$Q" --argjson o "$off_te_fp" 'select(.partition == $q and .offset > $o)' | wc -l)"
assert '[ "$after" -gt 0 ]' "TransferRequested events after the garbage on transfers.events/$Q ($after)"
assert_eq 30 "$(sql "SELECT count(*) FROM transfers.transfers WHERE transfer_id LIKE 'dl-t%' AND status = 'COMPLETED'")" \
    "transfers completed after the garbage"
expect_dead_letter accounts.dlq transfers.events "$Q" "$off_te" "$GARBAGE" dl-x "garbage event (es-accounts)" 'decode'
expect_dead_letter accounts.dlq transfers.events "$Q" "$off_te_fp" "$bad_fp" dl-x "unknown payload fingerprint event (es-accounts)" 'fingerprint|schema|unknown'
expect_dead_letter projections.dlq transfers.events "$Q" "$off_te" "$GARBAGE" dl-x "garbage event (es-projector)" 'decode'
wait_until 10 "[ \"\$(sql \"SELECT next_offset FROM accounts.positions WHERE topic = 'transfers.events' AND partition = $Q\")\" -gt $off_te_fp ]"
pass "es-accounts' position on transfers.events/$Q is past the bad records"
wait_until 10 "[ \"\$(sql \"SELECT next_offset FROM projections.positions WHERE topic = 'transfers.events' AND partition = $Q\")\" -gt $off_te_fp ]"
pass "es-projector's position on transfers.events/$Q is past the bad records"

ledger_check
# the projection still rebuilds from a log that holds garbage
out="$(esctl rebuild ledger 2>&1)" || {
    printf '%s\n' "$out" | tail -n 20 | sed 's/^/    /' >&2
    fail "esctl rebuild ledger failed over a log with bad records"
}
pass "esctl rebuild ledger over a log with bad records"
ledger_check

# ---- a key that is not UTF-8 --------------------------------------------------------------
# Keys are kept as bytes all the way to the dead-letter topic: a record whose key PostgreSQL
# would refuse as text must not stop the service (it did, before the outbox stored keys as bytea).
off_badkey="$(bank_rawprod accounts.commands "$P" $'\xff\xfe-not-utf8' "$GARBAGE" | cut -d' ' -f2)"
out="$(send_wait DepositFunds '{"account_id":"dl-a","amount":5}')"
assert_eq ACCEPTED "$(field .status "$out")" "a deposit after a record with a non-UTF-8 key"
wait_until 30 "[ -n \"\$(bank_dlq_record accounts.dlq accounts.commands $P $off_badkey)\" ]" ||
    fail "no dead letter for the record with a non-UTF-8 key"
pass "the record with a non-UTF-8 key -> accounts.dlq"

# ---- read again: each dead letter once -----------------------------------------------------
# A batch redone after a COMMIT whose answer was lost, or an instance that reads a partition
# from an older position, reads again records that were dead-lettered. A dead letter is an
# effect like any other: written once. Here es-accounts and es-projector (whose handler is
# idempotent: it has no dedup marks of its own) read the bad records again, from positions
# set back while they were stopped.
dlq_count() {
    esctl replay --raw --topic "$1" | jq -c --arg t "$2" 'select(.headers["es-dlq-topic"] == $t)' | wc -l
}
acc_cmd="$(dlq_count accounts.dlq accounts.commands)"
acc_ev="$(dlq_count accounts.dlq transfers.events)"
proj_ev="$(dlq_count projections.dlq transfers.events)"
assert_eq "7 2" "$acc_cmd $acc_ev" "dead letters in accounts.dlq before (from accounts.commands, transfers.events)"
assert '[ "$proj_ev" -ge 1 ]' "dead letters in projections.dlq before ($proj_ev)"
again_before="$(cat "$ES_DATA/log/es-accounts.log" "$ES_DATA/log/es-projector.log" |
    grep -c 'record dead-lettered before' || true)"
balance="$(http GET /accounts/dl-a | jq .balance)"
svc_stop accounts
svc_stop projector
sql "UPDATE accounts.positions SET next_offset = ${OFF[garbage]} WHERE topic = 'accounts.commands' AND partition = $P" >/dev/null
sql "UPDATE accounts.positions SET next_offset = $off_te WHERE topic = 'transfers.events' AND partition = $Q" >/dev/null
sql "UPDATE projections.positions SET next_offset = $off_te WHERE topic = 'transfers.events' AND partition = $Q" >/dev/null
svc_start accounts
svc_start projector
out="$(send_wait DepositFunds '{"account_id":"dl-a","amount":7}')"
assert_eq "ACCEPTED $P" "$(field '.status + " " + (.partition|tostring)' "$out")" "a deposit behind the records read again"
end_q="$(esctl replay --topic transfers.events | jq -s --argjson q "$Q" '[.[] | select(.partition == $q) | .offset] | max + 1')"
wait_until 30 "[ \"\$(sql \"SELECT min(next_offset) FROM projections.positions WHERE topic = 'transfers.events' AND partition = $Q\")\" -ge $end_q ] &&
    [ \"\$(sql \"SELECT min(next_offset) FROM accounts.positions WHERE topic = 'transfers.events' AND partition = $Q\")\" -ge $end_q ]" ||
    fail "es-accounts and es-projector did not read transfers.events/$Q to its end again"
pass "es-accounts and es-projector read the bad records and what follows them again"
sleep 1 # a dead letter written twice would be published by now
assert_eq "$acc_cmd $acc_ev $proj_ev" \
    "$(dlq_count accounts.dlq accounts.commands) $(dlq_count accounts.dlq transfers.events) $(dlq_count projections.dlq transfers.events)" \
    "no dead letter written twice"
again="$(cat "$ES_DATA/log/es-accounts.log" "$ES_DATA/log/es-projector.log" | grep -c 'record dead-lettered before' || true)"
assert '[ $((again - again_before)) -ge $((acc_cmd + acc_ev + proj_ev)) ]' \
    "each bad record read again was recognised as dead-lettered before ($((again - again_before)) log lines)"
wait_until 10 "[ \"\$(http GET /accounts/dl-a | jq .balance)\" = $((balance + 7)) ]" ||
    fail "dl-a's balance is not $balance + 7: $(http GET /accounts/dl-a | jq .balance)"
pass "dl-a's balance is $balance + 7: what was read again was not applied again"
ledger_check
