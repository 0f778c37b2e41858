#!/usr/bin/env bash
# test_broker_restore.sh: the dev broker's records survive a stop, a crash and a start, and the
# journal is a complete archive tier behind the mock's ~5 MiB-per-partition window.
#
# Needs only bin/es-broker and build/libes.a (run from the repo root after `make`); no
# PostgreSQL. tests/integration/broker_probe.c is compiled into the test's temp folder.
#
#  1. every record (topic, partition, offset, key incl. NULL and empty, value incl. NULL and
#     empty, headers incl. NULL and empty values, explicit timestamp) reads back identically
#     through lib/logreader before a stop, after SIGTERM + start, and after kill -9 + start;
#  2. > 5 MiB in one partition: the mock dropped the oldest records (low watermark > 0) and
#     lib/logreader still returns every record from offset 0, from the journal;
#  3. a partition count that disagrees with the journal is refused with a clear error;
#  4. a second broker on the same data folder is refused;
#  5. records are journaled from the mock's memory before they are acknowledged: a partition
#     that receives compressed batches (which that path does not read) is handed to the
#     journal consumer, and its records too read back identically after a restart; a broker
#     killed with -9 while a producer hears back keeps every record it acknowledged.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

bare_broker_init broker-restore
probe() {
    "$PROBE" "$@"
}

broker_start() {
    bare_broker_start --topics probe.small,probe.big,probe.acks -p 3
}

# broker_stop: SIGTERM and a clean exit.
broker_stop() {
    local rc=0
    kill -TERM "$BROKER_PID"
    wait "$BROKER_PID" || rc=$?
    BROKER_PID=''
    assert_eq 0 "$rc" "es-broker exit status after SIGTERM"
    assert "[ ! -e '$DATA/broker.addr' ]" "broker.addr removed on exit"
}

# check_same WHAT EXPECTED_FILE TOPIC...: logreader reads exactly the expected records.
check_same() {
    local what="$1" want="$2"
    shift 2
    probe dump "$@" >"$T_TMP/got.txt" 2>>"$T_TMP/probe.log" || fail "$what: reading failed: $(tail -1 "$T_TMP/probe.log")"
    sort "$want" >"$T_TMP/want.sorted"
    sort "$T_TMP/got.txt" >"$T_TMP/got.sorted"
    if ! cmp -s "$T_TMP/want.sorted" "$T_TMP/got.sorted"; then
        diff "$T_TMP/want.sorted" "$T_TMP/got.sorted" | head -10 >&2
        fail "$what: records differ"
    fi
    pass "$what: $(wc -l <"$want") records identical (topic, partition, offset, key, value, headers, timestamp)"
}

# ---- 1. records survive a clean stop -------------------------------------------------------
broker_start
pass "es-broker started, address $(cat "$DATA/broker.addr")"
grep -q 'msg="ready".*journal=memory' "$T_TMP/broker.log" ||
    fail "the broker does not journal from the mock's memory: $(grep 'msg="ready"' "$T_TMP/broker.log")"
pass "the broker journals from the mock's memory (memjournal.c)"
assert "[ \"\$(cat '$DATA/broker.pid')\" = $BROKER_PID ]" "broker.pid holds the broker's pid"
for t in accounts.commands accounts.events accounts.dlq; do
    probe watermarks "$t" >/dev/null 2>&1 || fail "topic $t was not created"
done
pass "topics of the schema contexts exist"

probe produce probe.small 3000 64 >"$T_TMP/small.txt"
probe produce accounts.events 50 32 >>"$T_TMP/small.txt"
assert_eq 3050 "$(wc -l <"$T_TMP/small.txt" | tr -d ' ')" "records acknowledged"
check_same "before the stop" "$T_TMP/small.txt" probe.small accounts.events

# ---- 2. more than 5 MiB in one partition ----------------------------------------------------
probe produce probe.big 30000 400 0 >"$T_TMP/big.txt"
lo="$(probe watermarks probe.big | awk '$1 == 0 { print $2 }')"
assert "[ '$lo' -gt 0 ]" "the mock dropped the oldest records of probe.big [0] (low watermark $lo)"
check_same "probe.big through the journal archive tier" "$T_TMP/big.txt" probe.big

broker_stop
stopped="$(grep 'msg="stopped"' "$T_TMP/broker.log" | tail -1)"
assert_eq "journaled_records=33050 journaled_from_memory=33050" \
    "$(grep -o 'journaled_records=[0-9]* journaled_from_memory=[0-9]*' <<<"$stopped")" \
    "records journaled in the first run, and of them from the mock's memory"
broker_start
grep -q 'msg="journal restored"' "$T_TMP/broker.log" || fail "no restore logged"
pass "restored: $(grep 'msg="journal restored"' "$T_TMP/broker.log" | tail -1 | sed 's/.*records=/records=/')"
# every start found the mock's limits and set the in-memory window (window.c): both starts
assert_eq 2 "$(grep -c 'msg="in-memory window set' "$T_TMP/broker.log")" \
    "starts that set the in-memory window"
check_same "after SIGTERM and start" "$T_TMP/small.txt" probe.small accounts.events
check_same "probe.big after SIGTERM and start" "$T_TMP/big.txt" probe.big
hi="$(probe watermarks probe.big | awk '$1 == 0 { print $3 }')"
assert_eq 30000 "$hi" "probe.big [0] high watermark after restore"

# New records continue at the next offsets.
probe produce probe.small 300 64 >>"$T_TMP/small.txt"
check_same "appended after the restart" "$T_TMP/small.txt" probe.small accounts.events

# ---- 5a. compressed batches: the partition goes to the journal consumer ----------------------
ES_KAFKA_PROPS=compression.type=lz4 probe produce probe.small 200 64 2 >>"$T_TMP/small.txt"
probe produce probe.small 30 64 2 >>"$T_TMP/small.txt"
wait_until 10 "grep -q 'journaling a partition through the journal consumer.*topic=probe.small partition=2 ' '$T_TMP/broker.log'" ||
    fail "no hand-over of probe.small [2] to the journal consumer logged"
pass "compressed batches: probe.small [2] is journaled through the journal consumer from then on"
broker_stop
broker_start
check_same "compressed and uncompressed batches after SIGTERM and start" "$T_TMP/small.txt" \
    probe.small accounts.events

# ---- crash: kill -9 after the journal sync interval, then start ---------------------------
probe produce probe.small 300 16 >>"$T_TMP/small.txt"
sleep 1 # the journal syncs every ~200 ms
kill -KILL "$BROKER_PID"
wait "$BROKER_PID" 2>/dev/null || true
BROKER_PID=''
broker_start
check_same "after kill -9 and start" "$T_TMP/small.txt" probe.small accounts.events

# ---- 5b. kill -9 while a producer hears back: nothing acknowledged is lost --------------------
# (every partition is journaled from memory again: a hand-over lasts one run.) The producer
# prints each record as its acknowledgement arrives; the broker is killed in the middle and
# started again where it listened, the producer goes on against it.
probe produce probe.acks 300000 32 >"$T_TMP/acked.txt" 2>"$T_TMP/acked.err" &
producer=$!
at_exit "kill $producer 2>/dev/null"
wait_until 30 "[ \$(wc -l <'$T_TMP/acked.txt') -ge 20000 ]" ||
    fail "the producer did not get going: $(tail -1 "$T_TMP/acked.err")"
kill -KILL "$BROKER_PID"
wait "$BROKER_PID" 2>/dev/null || true
BROKER_PID=''
broker_start
wait_until 120 "! kill -0 $producer" || fail "the producer did not finish after the broker came back"
wait "$producer" || true # records in flight at the kill may fail: they were never acknowledged
probe dump probe.acks >"$T_TMP/acks-log.txt" 2>>"$T_TMP/probe.log" || fail "reading probe.acks failed"
lost="$(sort "$T_TMP/acked.txt" | comm -23 - <(sort "$T_TMP/acks-log.txt") | wc -l)"
assert_eq 0 "$lost" "records acknowledged (of $(wc -l <"$T_TMP/acked.txt")) that the killed broker lost"

# ---- 4. one broker per data folder ---------------------------------------------------------
rc=0
"$ES_BIN/es-broker" -d "$DATA" 2>"$T_TMP/second.log" || rc=$?
assert "[ $rc -ne 0 ]" "a second broker on the same data folder is refused"
grep -q "another es-broker" "$T_TMP/second.log" || fail "unclear refusal: $(cat "$T_TMP/second.log")"
assert "[ -s '$DATA/broker.addr' ]" "the refused broker left broker.addr alone"
broker_stop

# ---- 3. partition count disagreeing with the journal ---------------------------------------
rc=0
"$ES_BIN/es-broker" -d "$DATA" --topics probe.small -p 4 2>"$T_TMP/refused.log" || rc=$?
assert "[ $rc -ne 0 ]" "a partition count that disagrees with the journal is refused"
grep -q 'journaled with 3 partitions but 4' "$T_TMP/refused.log" ||
    fail "unclear refusal: $(tail -1 "$T_TMP/refused.log")"
pass "refusal names the counts: $(grep -o 'topic .*4 were asked for' "$T_TMP/refused.log" | head -1)"
