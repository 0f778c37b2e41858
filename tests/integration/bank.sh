# shellcheck shell=bash
# bank.sh: shared helpers for the load and failure tests (test_scale_out, test_crash,
# test_dead_letters, test_rebuild, soak_crash), sourced after lib.sh and ledger.sh.
#
#   bank_open N [PREFIX] [DEPOSIT]        open accounts PREFIX0..PREFIX<N-1> (EUR), deposit DEPOSIT
#                                         in each, and wait until the service has them all
#   bank_transfers M N [PREFIX] [TPREFIX] [SEED] [MAX_AMOUNT]
#                                         print M random RequestTransfer payloads (JSON lines) among
#                                         accounts PREFIX0..PREFIX<N-1>, ids TPREFIX1..TPREFIX<M>,
#                                         amounts 1..MAX_AMOUNT (default 1000); ~2% go to an
#                                         account that does not exist (compensation)
#   bank_send FILE [CHUNKS] [PAUSE]       publish the JSON lines of FILE with esctl send --batch
#                                         RequestTransfer, in CHUNKS pieces (default 1), PAUSE
#                                         seconds apart (default 0)
#   bank_settled_count                    transfers the projection shows as terminal
#   bank_assigned_count NAME              "partitions assigned" lines in NAME's log (es-NAME.log)
#   bank_kill_loop NAME TIMES MIN MAX PROGRESS
#                                         TIMES times: once es-NAME has its partitions, kill -9 it
#                                         after a random MIN..MAX s and restart it; then wait until
#                                         it has them again. Each kill's note shows the output
#                                         of the command PROGRESS (how far the traffic got)
#   bank_snapshot SCHEMA                  copy the projection's comparable state into SCHEMA
#   bank_snapshot_diff SCHEMA             print the rows where SCHEMA and the projection differ
#   bank_versions_in_order                print accounts whose events (accounts.events, first
#                                         occurrence of each event id) are not in version order
#   bank_rawprod ARGS...                  publish one raw record (see _bank_rawprod_src)
#   bank_copy TOPIC PARTITION OFFSET      publish the record at OFFSET again (same partition, key,
#                                         value and headers), as the broker does when it appends
#                                         a retried produce twice; prints "PARTITION OFFSET"
#   bank_dlq_record DLQ TOPIC PARTITION OFFSET
#                                         the dead letter (raw JSON) of the record at
#                                         TOPIC/PARTITION/OFFSET, or nothing yet
#   bank_dedup_window_check SERVICE...    each es-SERVICE deleted old dedup marks (a short
#                                         ES_DEDUP_WINDOW), and no service took an input for a
#                                         copy too old to recognise

BANK_PREFIX_DEFAULT=acct-

bank_open() {
    local n="$1" prefix="${2:-$BANK_PREFIX_DEFAULT}" deposit="${3:-10000}" i
    for ((i = 0; i < n; i++)); do
        printf '{"type":"OpenAccount","data":{"account_id":"%s%d","owner":"Owner %d","currency":"EUR"}}\n' \
            "$prefix" "$i" "$i"
        printf '{"type":"DepositFunds","data":{"account_id":"%s%d","amount":%d}}\n' "$prefix" "$i" "$deposit"
    done | esctl send --batch >/dev/null
    wait_until 60 "[ \"\$(sql \"SELECT count(*) FROM accounts.accounts WHERE account_id LIKE '$prefix%' AND balance = $deposit\")\" = $n ]"
    wait_until 60 "[ \"\$(sql \"SELECT count(*) FROM projections.accounts WHERE account_id LIKE '$prefix%' AND balance = $deposit\")\" = $n ]"
    note "opened $n accounts $prefix* with $deposit each"
}

bank_transfers() {
    local m="$1" n="$2" prefix="${3:-$BANK_PREFIX_DEFAULT}" tprefix="${4:-t-}" seed="${5:-$RANDOM}"
    local max="${6:-1000}"
    awk -v m="$m" -v n="$n" -v p="$prefix" -v tp="$tprefix" -v seed="$seed" -v max="$max" 'BEGIN {
        srand(seed)
        for (i = 1; i <= m; i++) {
            f = int(rand() * n)
            t = int(rand() * (n - 1)); if (t >= f) t++
            to = p t
            if (rand() < 0.02) to = p "missing-" t
            amt = 1 + int(rand() * max)
            printf "{\"transfer_id\":\"%s%d\",\"from_account\":\"%s%d\",\"to_account\":\"%s\",\"amount\":%d}\n", tp, i, p, f, to, amt
        }
    }'
}

bank_send() {
    local file="$1" chunks="${2:-1}" pause="${3:-0}" total per first=1
    total="$(wc -l <"$file")"
    per=$(((total + chunks - 1) / chunks))
    split -l "$per" -d -a 3 -- "$file" "$file.part-"
    local part
    for part in "$file".part-*; do
        [ -n "$first" ] || sleep "$pause"
        first=''
        esctl send --batch RequestTransfer <"$part" >/dev/null || {
            rm -f -- "$file".part-*
            fail "esctl send --batch RequestTransfer failed for $part"
        }
    done
    rm -f -- "$file".part-*
}

bank_assigned_count() {
    grep -c 'msg="partitions assigned"' "$ES_DATA/log/es-${1#es-}.log" 2>/dev/null || true
}

bank_kill_loop() {
    local name="$1" times="$2" min="$3" max="$4" progress="$5" i before=0
    for ((i = 1; i <= times; i++)); do
        # the first tenths of a second after an assignment are when the backlog of the outage is
        # worked through: the random pause lands some kills there and some in steady traffic
        wait_until 60 "[ \$(bank_assigned_count $name) -gt $before ]"
        sleep "$(awk -v r="$RANDOM" -v lo="$min" -v hi="$max" 'BEGIN { printf "%.2f", lo + r / 32767 * (hi - lo) }')"
        svc_kill9 "$name"
        note "kill $i/$times of $name; $($progress)"
        before="$(bank_assigned_count "$name")"
        svc_start "$name"
    done
    wait_until 60 "[ \$(bank_assigned_count $name) -gt $before ]"
}

bank_settled_count() {
    sql "SELECT count(*) FROM projections.transfers WHERE status <> 'PENDING'"
}

# The projection's state that a rebuild from the log must reproduce exactly (timestamps and
# visible_at excluded: they record when the projector saw the event).
bank_snapshot() {
    local s="$1"
    sql "DROP SCHEMA IF EXISTS $s CASCADE; CREATE SCHEMA $s;
        CREATE TABLE $s.accounts AS SELECT account_id, owner, currency, balance, status, version FROM projections.accounts;
        CREATE TABLE $s.entries AS SELECT account_id, count(*) AS n, sum(amount) AS total,
            max(seq) AS last_seq, sum(balance_after) AS after_sum FROM projections.entries GROUP BY 1;
        CREATE TABLE $s.entry_rows AS SELECT account_id, seq, event_id, kind, amount, balance_after, transfer_id FROM projections.entries;
        CREATE TABLE $s.transfers AS SELECT transfer_id, from_account, to_account, amount, currency, status, reason, compensated FROM projections.transfers;
        CREATE TABLE $s.commands AS SELECT command_id, command_type, aggregate_id, status, reason, event_type FROM projections.commands;"
}

bank_snapshot_diff() {
    local s="$1"
    sql "(SELECT 'accounts live', * FROM (SELECT * FROM $s.accounts EXCEPT SELECT account_id, owner, currency, balance, status, version FROM projections.accounts) x LIMIT 5)"
    sql "(SELECT 'accounts rebuilt', * FROM (SELECT account_id, owner, currency, balance, status, version FROM projections.accounts EXCEPT SELECT * FROM $s.accounts) x LIMIT 5)"
    sql "(SELECT 'entries live', * FROM (SELECT * FROM $s.entries EXCEPT SELECT account_id, count(*), sum(amount), max(seq), sum(balance_after) FROM projections.entries GROUP BY 1) x LIMIT 5)"
    sql "(SELECT 'entries rebuilt', * FROM (SELECT account_id, count(*), sum(amount), max(seq), sum(balance_after) FROM projections.entries GROUP BY 1 EXCEPT SELECT * FROM $s.entries) x LIMIT 5)"
    sql "(SELECT 'entry rows live', * FROM (SELECT * FROM $s.entry_rows EXCEPT SELECT account_id, seq, event_id, kind, amount, balance_after, transfer_id FROM projections.entries) x LIMIT 5)"
    sql "(SELECT 'entry rows rebuilt', * FROM (SELECT account_id, seq, event_id, kind, amount, balance_after, transfer_id FROM projections.entries EXCEPT SELECT * FROM $s.entry_rows) x LIMIT 5)"
    sql "(SELECT 'transfers live', * FROM (SELECT * FROM $s.transfers EXCEPT SELECT transfer_id, from_account, to_account, amount, currency, status, reason, compensated FROM projections.transfers) x LIMIT 5)"
    sql "(SELECT 'transfers rebuilt', * FROM (SELECT transfer_id, from_account, to_account, amount, currency, status, reason, compensated FROM projections.transfers EXCEPT SELECT * FROM $s.transfers) x LIMIT 5)"
    sql "(SELECT 'commands live', * FROM (SELECT * FROM $s.commands EXCEPT SELECT command_id, command_type, aggregate_id, status, reason, event_type FROM projections.commands) x LIMIT 5)"
    sql "(SELECT 'commands rebuilt', * FROM (SELECT command_id, command_type, aggregate_id, status, reason, event_type FROM projections.commands EXCEPT SELECT * FROM $s.commands) x LIMIT 5)"
}

# bank_rebuild_matches SCHEMA: after a rebuild, the projection equals the snapshot in SCHEMA,
# table by table (counts, then row by row).
bank_rebuild_matches() {
    local s="$1" diff
    assert_eq "$(sql "SELECT count(*) FROM $s.accounts")" "$(sql "SELECT count(*) FROM projections.accounts")" "accounts after the rebuild (count)"
    assert_eq "$(sql "SELECT count(*) FROM $s.entry_rows")" "$(sql "SELECT count(*) FROM projections.entries")" "ledger entries after the rebuild (count)"
    assert_eq "$(sql "SELECT count(*) FROM $s.transfers")" "$(sql "SELECT count(*) FROM projections.transfers")" "transfers after the rebuild (count)"
    assert_eq "$(sql "SELECT count(*) FROM $s.commands")" "$(sql "SELECT count(*) FROM projections.commands")" "command outcomes after the rebuild (count)"
    diff="$(bank_snapshot_diff "$s")"
    if [ -n "$diff" ]; then
        printf '%s\n' "$diff" | head -40 | sed 's/^/    /' >&2
        fail "the rebuilt projection differs from the live one (rows above)"
    fi
    pass "rebuilt projection equals the live one row by row (accounts, entries, transfers, commands)"
}

# Accounts whose events reach accounts.events out of version order. Duplicates (the same event
# id again) are allowed; the first occurrence of each event must carry the account's previous
# version + 1 (every event of an account bumps its version: a gap is a lost event). Version 0
# events (rejections about an account that does not exist) belong to no stream.
bank_versions_in_order() {
    esctl replay --topic accounts.events | jq -r '[.key, .event_id, .aggregate_version, .partition, .offset] | @tsv' |
        awk -F'\t' '
            seen[$2]++ { next }
            $3 == 0 { next }
            $3 + 0 != last[$1] + 1 {
                print "account " $1 ": version " $3 " (event " $2 " at " $4 "/" $5 ") after version " last[$1] + 0
            }
            { last[$1] = $3 }'
}

# ---- a raw producer, for records esctl refuses to write ------------------------------------

_bank_rawprod_src() {
    cat <<'EOF'
/* rawprod: publish one record exactly as given, for the dead-letter tests.
 *   rawprod TOPIC PARTITION KEY VALUE [NAME=VALUE...]
 * PARTITION -1 lets librdkafka choose; VALUE is hex, "-" for an empty value, "null" for
 * none or @FILE for a file's bytes; each NAME=VALUE is a header. Prints "partition offset" once acknowledged. */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int32_t part = -1;
static int64_t off = -1;
static int err = 1;

static void on_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    err = m->err != 0;
    part = m->partition;
    off = m->offset;
    if (m->err) fprintf(stderr, "rawprod: %s\n", rd_kafka_err2str(m->err));
}

int main(int argc, char **argv)
{
    char brokers[512] = "", es[512];
    if (argc < 5) { fprintf(stderr, "usage: rawprod TOPIC PARTITION KEY VALUE [H=V...]\n"); return 2; }
    const char *env = getenv("KAFKA_BROKERS");
    if (env && *env) {
        snprintf(brokers, sizeof(brokers), "%s", env);
    } else {
        char path[1024];
        snprintf(path, sizeof(path), "%s/broker.addr", getenv("ES_DATA") ? getenv("ES_DATA") : ".data");
        FILE *f = fopen(path, "r");
        if (!f || !fgets(brokers, sizeof(brokers), f)) { fprintf(stderr, "rawprod: no %s\n", path); return 1; }
        fclose(f);
        brokers[strcspn(brokers, "\r\n")] = 0;
    }
    size_t vlen = 0;
    unsigned char *val = NULL;
    if (argv[4][0] == '@') { /* @FILE: the value is the file's bytes */
        FILE *vf = fopen(argv[4] + 1, "rb");
        if (!vf) { fprintf(stderr, "rawprod: cannot read %s\n", argv[4] + 1); return 1; }
        fseek(vf, 0, SEEK_END);
        long sz = ftell(vf);
        fseek(vf, 0, SEEK_SET);
        val = malloc((size_t)sz + 1);
        vlen = fread(val, 1, (size_t)sz, vf);
        fclose(vf);
    } else if (strcmp(argv[4], "null") != 0) {
        size_t hl = strcmp(argv[4], "-") == 0 ? 0 : strlen(argv[4]);
        val = malloc(hl / 2 + 1);
        for (size_t i = 0; i + 1 < hl; i += 2) { unsigned v; sscanf(argv[4] + i, "%2x", &v); val[vlen++] = (unsigned char)v; }
    }
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, es, sizeof(es)) != RD_KAFKA_CONF_OK) { fprintf(stderr, "rawprod: %s\n", es); return 1; }
    rd_kafka_conf_set_dr_msg_cb(conf, on_dr);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, es, sizeof(es));
    if (!rk) { fprintf(stderr, "rawprod: %s\n", es); return 1; }
    rd_kafka_headers_t *h = rd_kafka_headers_new(8);
    for (int i = 5; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq) continue;
        rd_kafka_header_add(h, argv[i], eq - argv[i], eq + 1, -1);
    }
    rd_kafka_resp_err_t e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(argv[1]),
        RD_KAFKA_V_PARTITION(atoi(argv[2])), RD_KAFKA_V_KEY(argv[3], strlen(argv[3])),
        RD_KAFKA_V_VALUE(val ? (void *)val : NULL, vlen), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
    if (e) { fprintf(stderr, "rawprod: %s\n", rd_kafka_err2str(e)); return 1; }
    rd_kafka_flush(rk, 20000);
    rd_kafka_destroy(rk);
    free(val);
    if (err) return 1;
    printf("%d %lld\n", (int)part, (long long)off);
    return 0;
}
EOF
}

BANK_RAWPROD=''
bank_rawprod() {
    if [ -z "$BANK_RAWPROD" ]; then
        BANK_RAWPROD="$ES_DATA/rawprod"
        _bank_rawprod_src >"$BANK_RAWPROD.c"
        cc -std=c17 -O1 -o "$BANK_RAWPROD" "$BANK_RAWPROD.c" -lrdkafka ||
            fail "could not build the raw producer (cc and librdkafka-dev are needed)"
    fi
    "$BANK_RAWPROD" "$@"
}

bank_copy() {
    local rec hex
    rec="$(esctl replay --raw --topic "$1" --from "$3" | jq -c --argjson p "$2" --argjson o "$3" \
        'select(.partition == $p and .offset == $o)' | head -n 1)"
    [ -n "$rec" ] || fail "bank_copy: no record at $1/$2/$3"
    hex="$(jq -r .value_base64 <<<"$rec" | base64 -d | od -An -tx1 -v | tr -d ' \n')"
    local -a hdrs
    mapfile -t hdrs < <(jq -r '.headers | to_entries[] | "\(.key)=\(.value)"' <<<"$rec")
    bank_rawprod "$1" "$2" "$(jq -r .key <<<"$rec")" "$hex" "${hdrs[@]}"
}

bank_dlq_record() {
    esctl replay --raw --topic "$1" |
        jq -c --arg t "$2" --arg p "$3" --arg o "$4" 'select(.headers["es-dlq-topic"] == $t and
            .headers["es-dlq-partition"] == $p and .headers["es-dlq-offset"] == $o)'
}

bank_dedup_window_check() {
    local name
    for name in "$@"; do
        grep -q 'old dedup marks deleted' "$ES_DATA/log/es-$name.log" ||
            fail "es-$name deleted no dedup marks with a ${ES_DEDUP_WINDOW:-?} s window"
    done
    pass "old dedup marks deleted along the way by: $*"
    assert_eq 0 "$(cat "$ES_DATA"/log/es-*.log | grep -c 'too old to deduplicate' || true)" \
        "inputs dead-lettered as too old to deduplicate"
}
