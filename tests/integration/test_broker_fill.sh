#!/usr/bin/env bash
# test_broker_fill.sh: the dev broker answers a fetch with every message set that fits, as
# Kafka does, not one per partition as the mock does by itself (devstack/broker/fill.c).
#
# Needs only bin/es-broker and build/libes.a; no PostgreSQL. 2,000 records are produced to one
# partition one by one (one message set each), then a consumer reads them from the first:
#  1. every record arrives once, in order (the answers the broker fills are read as Kafka's);
#  2. the broker filled answers, adding message sets to them;
#  3. with ES_BROKER_FETCH_FILL=0 the same read takes one fetch per message set: the two read
#     times are printed, so the test shows what filling buys a consumer catching up.
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/lib.sh"

bare_broker_init broker-fill
unset ES_BROKER_FETCH_FILL ES_BROKER_LONGPOLL
SETS=2000

# read_back: start a broker (window larger than the test: every set stays in memory), produce
# and read; prints the probe's line and leaves the broker's last line in $stopped.
read_back() {
    rm -rf "$DATA"
    bare_broker_start --topics probe.sets -p 1 --window $((SETS * 2))
    out="$("$PROBE" sets probe.sets "$SETS" 2>>"$T_TMP/probe.log")" ||
        fail "the probe failed: $(tail -1 "$T_TMP/probe.log")"
    kill -TERM "$BROKER_PID"
    wait "$BROKER_PID" || fail "es-broker did not stop cleanly"
    BROKER_PID=''
    stopped="$(grep 'msg="stopped"' "$T_TMP/broker.log" | tail -1)"
}

field() {
    sed -n "s/.*[ ;]$1=\([0-9.]*\).*/\1/p" <<<"$2"
}

read_back
grep -q 'msg="ready".*fetch_fill=on' "$T_TMP/broker.log" || fail "the broker does not say fetch_fill=on"
note "fill on: $out"
ms_on="$(sed -n 's/.* in \([0-9.]*\) ms$/\1/p' <<<"$out")"
assert "[ -n '$ms_on' ]" "$SETS records of $SETS message sets arrived once each, in order"
filled="$(field answers_filled "$stopped")"
added="$(field message_sets_added "$stopped")"
note "broker: answers_filled=$filled message_sets_added=$added"
assert "[ '${added:-0}' -ge $((SETS / 2)) ] && [ '${filled:-0}' -ge 1 ]" \
    "the broker filled answers ($filled) with message sets that followed ($added)"

ES_BROKER_FETCH_FILL=0 read_back
grep -q 'msg="ready".*fetch_fill=off' "$T_TMP/broker.log" || fail "the broker does not say fetch_fill=off"
note "fill off (ES_BROKER_FETCH_FILL=0): $out"
ms_off="$(sed -n 's/.* in \([0-9.]*\) ms$/\1/p' <<<"$out")"
assert "[ -n '$ms_off' ] && [ '$(field message_sets_added "$stopped")' = 0 ]" \
    "without filling the same records arrive too, one message set a fetch"
note "reading $SETS message sets: ${ms_on} ms filled, ${ms_off} ms one a fetch"
