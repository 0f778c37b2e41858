#!/usr/bin/env bash
# test_broker_longpoll.sh: the dev broker answers a waiting fetch as soon as records arrive, as
# Kafka does, so consumers can ask with a long fetch.wait.max.ms and an idle stack does not
# keep asking (devstack/broker/longpoll.c).
#
# Needs only bin/es-broker and build/libes.a; no PostgreSQL. With a 3 s fetch.wait.max.ms:
#  1. a record produced while the consumer's fetch waits arrives long before the 3 s are up;
#  2. another request on that consumer's connection (a watermark query) does not wait behind
#     the fetch either;
#  3. the broker counts the fetches it held and woke, at the end and every ES_BROKER_STATS_MS
#     that records came in (its "fetches" line);
#  4. a fetch with fetch.min.bytes waits for that many bytes, or for its wait to end;
#  5. with ES_BROKER_LONGPOLL=0 (the mock as it is) the same record waits for the end of the
#     wait: the contrast is printed, so the test shows what the mechanism buys.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

bare_broker_init broker-longpoll
unset ES_BROKER_LONGPOLL
WAIT_MS=3000

broker_start() {
    ES_BROKER_STATS_MS=500 bare_broker_start --topics probe.wait -p 2
}

broker_stop() {
    kill -TERM "$BROKER_PID"
    wait "$BROKER_PID" || fail "es-broker did not stop cleanly"
    BROKER_PID=''
}

# field NAME LINE: the number after "NAME=" in LINE.
field() {
    sed -n "s/.*[ ;]$1=\([0-9.]*\).*/\1/p" <<<"$2"
}

# ---- 1-3. long-polled fetches ---------------------------------------------------------------
broker_start
grep -q 'msg="ready".*long_poll=on' "$T_TMP/broker.log" || fail "the broker does not say long_poll=on"
out="$("$PROBE" wait probe.wait 10 "$WAIT_MS" 2>>"$T_TMP/probe.log")" ||
    fail "the probe failed: $(tail -1 "$T_TMP/probe.log")"
note "long-poll on: $out"
max="$(field max "$out")"
query="$(sed -n 's/.*watermark query \([0-9.]*\) ms.*/\1/p' <<<"$out")"
assert "awk 'BEGIN { exit !($max < $WAIT_MS / 3) }'" \
    "every record arrived long before the ${WAIT_MS} ms wait was up (slowest: $max ms)"
assert "awk 'BEGIN { exit !($query < $WAIT_MS / 3) }'" \
    "a watermark query behind a waiting fetch did not wait for it ($query ms)"
broker_stop
stopped="$(grep 'msg="stopped"' "$T_TMP/broker.log" | tail -1)"
note "broker: ${stopped#*msg=\"stopped\" }"
held="$(field fetches_held "$stopped")"
woken="$(field woken_by_records "$stopped")"
cut="$(field cut_short "$stopped")"
assert "[ '${held:-0}' -gt 0 ] && [ '${woken:-0}' -ge 10 ]" \
    "the broker held empty fetches ($held) and woke them when records came ($woken)"
assert "[ '${cut:-0}' -ge 1 ]" "the watermark query cut a held fetch short ($cut)"
windows="$(grep -c 'msg="fetches"' "$T_TMP/broker.log" || true)"
line="$(grep 'msg="fetches"' "$T_TMP/broker.log" | head -1)"
note "first window: ${line#*msg=\"fetches\" }"
assert "[ '${windows:-0}' -ge 1 ] && [ '$(field records "$line")' -ge 1 ] && [ -n '$(field woken_by_records "$line")' ]" \
    "while records came, the broker logged what its fetches did every 500 ms ($windows lines)"

# ---- 4. MinBytes -----------------------------------------------------------------------------
# A fetch with fetch.min.bytes waits for that many bytes of message sets to reach its partitions
# (or for its wait to end), as on Kafka: the saga coordinator asks so (lib/kafka.c). A record
# here is one message set of ~80 bytes.
broker_start
MIN_WAIT_MS=1000
out="$(ES_KAFKA_PROPS=fetch.min.bytes=1000000 "$PROBE" wait probe.wait 4 "$MIN_WAIT_MS" \
    2>>"$T_TMP/probe.log")" || fail "the probe failed: $(tail -1 "$T_TMP/probe.log")"
note "fetch.min.bytes=1000000: $out"
p50="$(field p50 "$out")"
assert "awk 'BEGIN { exit !($p50 >= $MIN_WAIT_MS / 2 && $p50 < 3 * $MIN_WAIT_MS) }'" \
    "a record below the fetch's MinBytes waits for the fetch's wait to end (p50 $p50 ms)"
out="$(ES_KAFKA_PROPS=fetch.min.bytes=40 "$PROBE" wait probe.wait 4 "$WAIT_MS" \
    2>>"$T_TMP/probe.log")" || fail "the probe failed: $(tail -1 "$T_TMP/probe.log")"
note "fetch.min.bytes=40: $out"
max="$(field max "$out")"
assert "awk 'BEGIN { exit !($max < $WAIT_MS / 3) }'" \
    "a record above the fetch's MinBytes is answered at once (slowest: $max ms)"
broker_stop

# ---- 5. the mock as it is -------------------------------------------------------------------
ES_BROKER_LONGPOLL=0 broker_start
grep -q 'msg="ready".*long_poll=off' "$T_TMP/broker.log" || fail "the broker does not say long_poll=off"
out="$("$PROBE" wait probe.wait 3 "$WAIT_MS" 2>>"$T_TMP/probe.log")" ||
    fail "the probe failed: $(tail -1 "$T_TMP/probe.log")"
note "long-poll off (ES_BROKER_LONGPOLL=0): $out"
p50="$(field p50 "$out")"
assert "awk 'BEGIN { exit !($p50 >= 100) }'" \
    "without it a record waits for the fetch's wait to end (p50 $p50 ms)"
broker_stop


