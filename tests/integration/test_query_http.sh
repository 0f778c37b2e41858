#!/usr/bin/env bash
# test_query_http.sh: es-query against a real PostgreSQL, end to end over HTTP.
#
# Creates the projections tables (the projector's DDL) in a private cluster (scripts/pg.sh,
# data folder $ES_QTEST_DATA, default .data/qtest), inserts fixture rows with psql, runs
# bin/es-query on a free port and checks every route and every error code with curl + jq:
# bodies, types (money as JSON integers), pagination, URL decoding, conditional GETs (ETag,
# If-None-Match, 304 while the read model says the same), 405/413, a schema swap
# (rebuild), tables missing, the database going away and coming back, a saturated pool
# (the event loop keeps answering), 200 parallel requests, and SIGTERM draining.
# With wrk installed it also measures GET /accounts/{id} (ES_QTEST_BENCH_S seconds, default 5;
# 0 skips). Self-contained: stops everything it started.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
# ES_BIN, as for the other tests (make asan: relative to the repository)
case "${ES_BIN:-}" in
'') QBIN_DIR="$ROOT/bin" ;;
/*) QBIN_DIR="$ES_BIN" ;;
*) QBIN_DIR="$ROOT/$ES_BIN" ;;
esac
BIN="${ES_QTEST_BIN:-$QBIN_DIR/es-query}"
export ES_DATA="${ES_QTEST_DATA:-$ROOT/.data/qtest}"
BENCH_S="${ES_QTEST_BENCH_S:-5}"
WORK="$(mktemp -d /tmp/es-qtest.XXXXXX)"

for tool in curl jq psql; do
    command -v "$tool" >/dev/null || {
        echo "test_query_http: needs $tool" >&2
        exit 1
    }
done
[ -x "$BIN" ] || {
    echo "test_query_http: build first: make bin/es-query" >&2
    exit 1
}

PASS=0
FAIL=0
QPID=''
PG_STARTED=''
BG_PIDS=()

cleanup() {
    local pid
    for pid in "${BG_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    if [ -n "$QPID" ]; then
        kill -KILL "$QPID" 2>/dev/null || true
    fi
    if [ -n "$PG_STARTED" ]; then
        bash "$ROOT/scripts/pg.sh" stop >/dev/null 2>&1 || true
    fi
    rm -rf -- "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ok() {
    PASS=$((PASS + 1))
    printf 'ok   %s\n' "$1"
}
bad() {
    FAIL=$((FAIL + 1))
    printf 'FAIL %s\n' "$1"
    [ -z "${2:-}" ] || printf '     %s\n' "$2"
}

# ---- PostgreSQL ----
if ! bash "$ROOT/scripts/pg.sh" status >/dev/null 2>&1; then
    PG_STARTED=1
fi
bash "$ROOT/scripts/pg.sh" start >/dev/null 2>&1 || {
    echo "test_query_http: could not start PostgreSQL (scripts/pg.sh start)" >&2
    exit 1
}
CONNINFO="$(cat "$ES_DATA/pg.conninfo")"
export ES_PG="$CONNINFO"
sql() {
    PGOPTIONS="-c client_min_messages=warning" psql -X -q -At -v ON_ERROR_STOP=1 "$CONNINFO" "$@"
}

# The projector's DDL (projections schema), created here in schema $1.
ddl() {
    local s="$1"
    cat <<EOF
CREATE SCHEMA IF NOT EXISTS $s;
CREATE TABLE IF NOT EXISTS $s.accounts(account_id text PRIMARY KEY, owner text NOT NULL,
  currency text NOT NULL, balance bigint NOT NULL, status text NOT NULL, version bigint NOT NULL,
  opened_at timestamptz NOT NULL, updated_at timestamptz NOT NULL);
CREATE TABLE IF NOT EXISTS $s.entries(account_id text NOT NULL, seq bigint NOT NULL,
  event_id text NOT NULL UNIQUE, kind text NOT NULL, amount bigint NOT NULL,
  balance_after bigint NOT NULL, transfer_id text, occurred_at timestamptz NOT NULL,
  PRIMARY KEY(account_id, seq));
CREATE TABLE IF NOT EXISTS $s.transfers(transfer_id text PRIMARY KEY, from_account text NOT NULL,
  to_account text NOT NULL, amount bigint NOT NULL, currency text, status text NOT NULL,
  reason text, compensated boolean NOT NULL DEFAULT false, requested_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL);
CREATE TABLE IF NOT EXISTS $s.commands(command_id text PRIMARY KEY, command_type text NOT NULL,
  aggregate_id text NOT NULL, status text NOT NULL, reason text, event_type text NOT NULL,
  recorded_at timestamptz NOT NULL);
CREATE TABLE IF NOT EXISTS $s.positions(topic text NOT NULL, partition int NOT NULL,
  next_offset bigint NOT NULL, high_watermark bigint NOT NULL, updated_at timestamptz NOT NULL,
  PRIMARY KEY(topic, partition));
EOF
}

fixtures() {
    local s="$1"
    cat <<EOF
INSERT INTO $s.accounts VALUES
  ('acc-1', 'alice', 'EUR', 1500, 'OPEN', 3, '2026-01-02T03:04:05Z', now()),
  ('acc-2', 'bob', 'EUR', 0, 'OPEN', 1, now(), now()),
  ('acc-3', 'carol "the" \\ é', 'USD', 9007199254740993, 'CLOSED', 121, now(), now()),
  ('acc:4_x.y-z', E'tab\there\nnewline', 'EUR', -5, 'OPEN', 1, now(), now());
INSERT INTO $s.entries VALUES
  ('acc-1', 1, 'ev-1', 'DEPOSIT', 1000, 1000, NULL, '2026-01-02T03:04:05.123456Z'),
  ('acc-1', 2, 'ev-2', 'DEPOSIT', 1000, 2000, NULL, '2026-01-02T03:05:00Z'),
  ('acc-1', 3, 'ev-3', 'DEBIT', -500, 1500, 't-1', '2026-01-02T03:06:00+02:00');
INSERT INTO $s.entries
  SELECT 'acc-3', g, 'ev3-' || g, 'DEPOSIT', 1, g, NULL, '2026-01-01T00:00:00Z'::timestamptz + g * interval '1 second'
  FROM generate_series(1, 120) g;
INSERT INTO $s.transfers VALUES
  ('t-1', 'acc-1', 'acc-2', 500, 'EUR', 'COMPLETED', NULL, false, now(), now()),
  ('t-2', 'acc-2', 'acc-1', 700, NULL, 'FAILED', 'insufficient funds', true, now(), now());
INSERT INTO $s.commands VALUES
  ('c-1', 'OpenAccount', 'acc-1', 'ACCEPTED', NULL, 'AccountOpened', now()),
  ('c-2', 'Withdraw', 'acc-2', 'REJECTED', 'insufficient funds', 'CommandRejected', now());
INSERT INTO $s.positions VALUES
  ('accounts.events', 0, 10, 15, now()),
  ('accounts.events', 1, 20, 20, now());
EOF
}

sql -c "DROP SCHEMA IF EXISTS projections CASCADE; DROP SCHEMA IF EXISTS projections_new CASCADE;
        DROP SCHEMA IF EXISTS projections_old CASCADE;"
ddl projections | sql
fixtures projections | sql

# ---- es-query ----
# free_port: a port nobody listens on, below the kernel's ephemeral range (outgoing connections
# take their local ports from that range, and a port one of them holds cannot be listened on).
free_port() {
    local p lo=32768
    read -r lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || lo=32768
    for p in $(shuf -i 15000-$((lo - 1)) -n 50); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

# health_wait PORT: until the es-query on PORT answers /health (5 s at most).
health_wait() {
    local i
    for i in $(seq 1 100); do
        curl -s -o /dev/null "http://127.0.0.1:$1/health" && return 0
        sleep 0.05
    done
    return 0 # the checks that follow say what is wrong
}

# start_query [POOL]: es-query on a free port; another port if someone took it meanwhile.
start_query() {
    local i attempt
    # PostgreSQL's log is kept across runs: lines from here on are this run's es-query's
    [ -n "${PGLOG_FROM:-}" ] || PGLOG_FROM=$(($(wc -l <"$ES_DATA/log/postgresql.log") + 1))
    for attempt in 1 2 3 4 5; do
        PORT="$(free_port)"
        ES_LOG_LEVEL="${ES_QTEST_LOG_LEVEL:-info}" "$BIN" --port "$PORT" --pool "${1:-4}" \
            >>"$WORK/es-query.log" 2>&1 &
        QPID=$!
        for i in $(seq 1 100); do
            if curl -s -o /dev/null "http://127.0.0.1:$PORT/health"; then
                return 0
            fi
            kill -0 "$QPID" 2>/dev/null || break
            sleep 0.05
        done
        if kill -0 "$QPID" 2>/dev/null || ! grep -q 'Address already in use' "$WORK/es-query.log"; then
            break
        fi
        wait "$QPID" 2>/dev/null || true
        echo "  .. port $PORT was taken (attempt $attempt): another one" >&2
    done
    echo "es-query did not start:" >&2
    cat "$WORK/es-query.log" >&2
    exit 1
}

stop_query() {
    kill -TERM "$QPID"
    local rc=0
    wait "$QPID" || rc=$?
    QPID=''
    return "$rc"
}

# req METHOD PATH: sets CODE, BODY (file $WORK/body), HDRS (file $WORK/hdrs).
req() {
    CODE="$(curl -s -X "$1" -D "$WORK/hdrs" -o "$WORK/body" -w '%{http_code}' \
        "http://127.0.0.1:$PORT$2")" || CODE=000
}
# get PATH: GET with curl's --path-as-is (no dot-segment squashing).
get() {
    CODE="$(curl -s --path-as-is -D "$WORK/hdrs" -o "$WORK/body" -w '%{http_code}' \
        "http://127.0.0.1:$PORT$1")" || CODE=000
}

# expect NAME CODE JQ-EXPR: the last response had CODE and the body satisfies JQ-EXPR.
expect() {
    local name="$1" code="$2" expr="$3"
    if [ "$CODE" != "$code" ]; then
        bad "$name" "status $CODE, want $code; body: $(head -c 300 "$WORK/body")"
        return
    fi
    if jq -e "$expr" "$WORK/body" >/dev/null 2>&1; then
        ok "$name"
    else
        bad "$name" "body fails $expr: $(head -c 300 "$WORK/body")"
    fi
}

# An error body: {"error": string, "status": code}.
expect_error() {
    expect "$1" "$2" "(.error | type == \"string\") and .status == $2 ${3:+and $3}"
}

start_query 4

# ---- accounts ----
get /accounts/acc-1
expect "account" 200 '. == {"account_id":"acc-1","owner":"alice","currency":"EUR","balance":1500,"status":"OPEN","version":3}'
if grep -qi '^content-type: application/json' "$WORK/hdrs"; then ok "json content type"; else bad "json content type" "$(cat "$WORK/hdrs")"; fi
# Money is an integer beyond 2^53: compare the text, not a double.
get /accounts/acc-3
if grep -q '"balance":9007199254740993,' "$WORK/body"; then ok "big balance exact"; else bad "big balance exact" "$(cat "$WORK/body")"; fi
expect "escaping" 200 '.owner == "carol \"the\" \\ é" and .status == "CLOSED"'
get '/accounts/acc:4_x.y-z'
expect "id charset and control chars" 200 '.owner == "tab\there\nnewline" and .balance == -5'
get /accounts/acc%2D1
expect "percent-decoded id" 200 '.account_id == "acc-1"'
get /%61ccounts/acc-1
expect "percent-decoded route" 200 '.account_id == "acc-1"'
get /accounts/nope
expect_error "unknown account" 404 '.error == "account \"nope\" not found"'
get '/accounts/bad%20id'
expect_error "id with space" 400
get '/accounts/bad%zzid'
expect_error "bad percent escape" 400
get '/accounts/bad%2'
expect_error "truncated percent escape" 400
get '/accounts/a%00b'
expect_error "NUL in id" 400
get "/accounts/$(printf 'a%.0s' $(seq 1 129))"
expect_error "id too long" 400
get "/accounts/$(printf 'a%.0s' $(seq 1 128))"
expect_error "id of 128 chars" 404
get "/accounts/$(printf '%%41%.0s' $(seq 1 200))"
expect_error "long encoded id" 400
get '/accounts/'
expect_error "empty id" 400
get '/accounts/%C3%A9'
expect_error "non-ascii id" 400
CODE="$(curl -s -I -o /dev/null -w '%{http_code} %{size_download}' "http://127.0.0.1:$PORT/accounts/acc-1")" || CODE=000
if [ "$CODE" = "200 0" ]; then ok "HEAD"; else bad "HEAD" "status and size $CODE"; fi
# HEAD answers the GET's headers and no body: a body would be read as the start of the next
# answer on the same connection (curl -I stops at the headers and never sees it)
out="$(python3 - "$PORT" <<'PY'
import re, socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"HEAD /accounts/acc-1 HTTP/1.1\r\nHost: x\r\n\r\n"
          b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
head, _, rest = data.partition(b"\r\n\r\n")
m = re.search(rb"(?im)^content-length: *([0-9]+)", head)
good = head.startswith(b"HTTP/1.1 200") and m and int(m.group(1)) > 0 and rest.startswith(b"HTTP/1.1 200")
print("ok" if good else "bad: %r" % data[:300])
PY
)"
if [ "$out" = ok ]; then ok "HEAD: the GET's Content-Length, no body, the next answer right after"; else bad "HEAD then GET on one connection" "$out"; fi
# ---- conditional GET: an ETag on every answer of a read model, 304 while it still holds ----
get /accounts/acc-1
etag="$(sed -n 's/^etag: *//Ip' "$WORK/hdrs" | tr -d '\r')"
if [[ "$etag" =~ ^\"[0-9a-f]{16}\"$ ]] && grep -qi '^cache-control: no-cache' "$WORK/hdrs"; then
    ok "an answer carries an ETag ($etag) and Cache-Control: no-cache"
else
    bad "ETag and Cache-Control of an answer" "$(cat "$WORK/hdrs")"
fi
# cond PATH IF-NONE-MATCH [curl options]: CODE is "status bytes-of-body"
cond() {
    CODE="$(curl -s "${@:3}" -D "$WORK/hdrs" -o "$WORK/body" -w '%{http_code} %{size_download}' \
        -H "If-None-Match: $2" "http://127.0.0.1:$PORT$1")" || CODE=000
}
for inm in "$etag" "W/$etag" "\"0000000000000000\", $etag" '*'; do
    cond /accounts/acc-1 "$inm"
    if [ "$CODE" = "304 0" ] && grep -qiF "etag: $etag" "$WORK/hdrs"; then
        ok "If-None-Match: $inm -> 304, no body, the same ETag"
    else
        bad "If-None-Match: $inm" "status and size $CODE; $(cat "$WORK/hdrs")"
    fi
done
cond /accounts/acc-1 "$etag" -I
if [ "$CODE" = "304 0" ]; then ok "HEAD with the ETag -> 304"; else bad "HEAD with the ETag" "$CODE"; fi
cond /accounts/acc-1 '"0000000000000000"'
if [ "${CODE%% *}" = 200 ] && jq -e '.account_id == "acc-1"' "$WORK/body" >/dev/null; then
    ok "another tag -> 200 and the whole answer"
else
    bad "another tag" "$CODE $(head -c 200 "$WORK/body")"
fi
cond /accounts/acc-1 "$etag garbage"
if [ "${CODE%% *}" = 200 ]; then ok "a malformed If-None-Match -> 200"; else bad "a malformed If-None-Match" "$CODE"; fi
sql -c "UPDATE projections.accounts SET balance = balance + 1 WHERE account_id = 'acc-1'"
cond /accounts/acc-1 "$etag"
if [ "${CODE%% *}" = 200 ] && ! grep -qiF "etag: $etag" "$WORK/hdrs" && grep -qi '^etag: "' "$WORK/hdrs"; then
    ok "the read model changed: 200 with a new ETag"
else
    bad "the read model changed" "$CODE; $(cat "$WORK/hdrs")"
fi
sql -c "UPDATE projections.accounts SET balance = balance - 1 WHERE account_id = 'acc-1'"
cond /accounts/acc-1 "$etag"
if [ "$CODE" = "304 0" ]; then ok "changed back: the first ETag holds again"; else bad "changed back" "$CODE"; fi
for path in /accounts/nope /metrics /health; do
    cond "$path" '*'
    if [ "${CODE%% *}" != 304 ] && ! grep -qi '^etag:' "$WORK/hdrs" && grep -qi '^cache-control: no-store' "$WORK/hdrs"; then
        ok "$path: no ETag, Cache-Control: no-store, If-None-Match ignored"
    else
        bad "$path: ETag or caching headers" "$CODE; $(cat "$WORK/hdrs")"
    fi
done

get '/accounts/acc-1/entries?limit=1%00junk'
expect_error "an encoded NUL in a query value" 400 '(.error | contains("NUL"))'

# ---- entries ----
get /accounts/acc-1/entries
expect "entries" 200 '.account_id == "acc-1" and .next == null and ([.entries[].seq] == [3,2,1])
  and .entries[0] == {"seq":3,"kind":"DEBIT","amount":-500,"balance_after":1500,"transfer_id":"t-1","event_id":"ev-3","occurred_at":"2026-01-02T01:06:00.000000Z"}
  and .entries[1].transfer_id == null
  and .entries[2].occurred_at == "2026-01-02T03:04:05.123456Z"'
get /accounts/acc-2/entries
expect "no entries" 200 '.account_id == "acc-2" and .entries == [] and .next == null'
get /accounts/nope/entries
expect_error "entries of unknown account" 404 '.error == "account \"nope\" not found"'
get '/accounts/acc-1/entries?limit=2'
expect "entries limit" 200 '[.entries[].seq] == [3,2] and .next == "/accounts/acc-1/entries?limit=2&before=2"'
get '/accounts/acc-1/entries?limit=2&before=2'
expect "entries before" 200 '[.entries[].seq] == [1] and .next == null'
get '/accounts/acc-1/entries?before=0'
expect "entries before 0" 200 '.entries == [] and .next == null'
get '/accounts/acc-1/entries?limit=3'
expect "entries exact page" 200 '[.entries[].seq] == [3,2,1] and .next == null'
# Follow "next" through 120 entries, 50 at a time.
path='/accounts/acc-3/entries'
pages=0
: >"$WORK/seqs"
while [ "$path" != null ] && [ "$pages" -lt 10 ]; do
    get "$path"
    [ "$CODE" = 200 ] || break
    jq -r '.entries[].seq' "$WORK/body" >>"$WORK/seqs"
    path="$(jq -r '.next' "$WORK/body")"
    pages=$((pages + 1))
done
if [ "$pages" = 3 ] && [ "$(wc -l <"$WORK/seqs")" = 120 ] &&
    [ "$(sort -rn "$WORK/seqs" | uniq | tr '\n' ' ')" = "$(tr '\n' ' ' <"$WORK/seqs")" ] &&
    [ "$(head -1 "$WORK/seqs")" = 120 ] && [ "$(tail -1 "$WORK/seqs")" = 1 ]; then
    ok "pagination (3 pages, 120 entries, newest first, no repeats)"
else
    bad "pagination" "pages=$pages entries=$(wc -l <"$WORK/seqs")"
fi
get '/accounts/acc-3/entries?limit=501'
expect_error "limit above 500" 400 '.error == "malformed limit: expected an integer 1..500"'
get '/accounts/acc-3/entries?limit=500'
expect "limit 500" 200 '(.entries | length) == 120'
for q in 'limit=0' 'limit=-1' 'limit=abc' 'limit=' 'limit=1e3' 'limit=%2B5' 'before=-1' 'before=x' \
    'before=99999999999999999999' 'limit=5&before=' 'before=1.5'; do
    get "/accounts/acc-1/entries?$q"
    expect_error "malformed query $q" 400
done
# A parameter the route does not take, or one given twice, is refused rather than ignored:
# a typo such as ?limt=5 would otherwise quietly give the default page.
get '/accounts/acc-1/entries?other=1&limit=1'
expect_error "unknown query parameter" 400 '.error == "unknown query parameter \"other\": /accounts/{id}/entries takes limit, before"'
for q in '&limit=1' 'limit=1&' 'limit=1&&before=999999' '&&limit=1&&'; do
    get "/accounts/acc-1/entries?$q"
    expect "empty parameters are nothing: ?$q" 200 '(.entries | length) == 1'
done
get '/accounts/acc-1/entries?limit=1&limit=2'
expect_error "parameter given twice" 400 '.error == "query parameter \"limit\" given twice"'
get '/accounts/acc-1?limit=1'
expect_error "parameter on a route that takes none" 400 '.error == "unknown query parameter \"limit\": /accounts/{id} takes none"'
get '/users/u-1/orders?status=PENDING'
expect_error "unknown parameter on a user's orders" 400 '(.error | startswith("unknown query parameter \"status\""))'
get '/sagas?state=PENDING'
expect_error "unknown parameter on the saga list" 400 '.error == "unknown query parameter \"state\": /sagas takes status, older_than, type, limit"'
# Names are taken as they are written: an encoded "limit" is not limit.
get '/accounts/acc-1/entries?%6Cimit=1'
expect_error "names are not decoded" 400 '(.error | startswith("unknown query parameter \"%6Cimit\""))'
get '/accounts/acc-1/entries?limit=2&'
expect "a trailing & is no parameter" 200 '(.entries | length) == 2'

# ---- transfers, commands ----
get /transfers/t-1
expect "transfer" 200 '. == {"transfer_id":"t-1","from_account":"acc-1","to_account":"acc-2","amount":500,"status":"COMPLETED","reason":null,"compensated":false}'
get /transfers/t-2
expect "failed transfer" 200 '.status == "FAILED" and .reason == "insufficient funds" and .compensated == true'
get /transfers/t-x
expect_error "unknown transfer" 404 '.error == "transfer \"t-x\" not found"'
get '/transfers/t%2F1'
expect_error "slash in transfer id" 400
get /commands/c-1
expect "command" 200 '. == {"command_id":"c-1","command_type":"OpenAccount","aggregate_id":"acc-1","status":"ACCEPTED","reason":null,"event_type":"AccountOpened"}'
get /commands/c-2
expect "rejected command" 200 '.status == "REJECTED" and .reason == "insufficient funds"'
get /commands/c-404
expect_error "unknown command" 404 '.error == "command \"c-404\" not found"'

# ---- the shop's routes: ids are checked before any query; without the shop's read models
# (no es-shop-projector ever ran here) they answer 503, and commands fall back to not found ----
for p in '/users/bad%20id' '/users/bad%20id/orders' '/products/bad%20id' '/orders/bad%20id'; do
    get "$p"
    expect_error "malformed id in $p" 400
done
for p in /users/u-1 /users/u-1/orders /products/p-1 /orders/o-1; do
    get "$p"
    expect_error "$p without the shop's read models" 503 '(.error | startswith("read model not available: relation \"shop_views.")) and (.error | contains("LINE") | not)'
done
# es-query asks whether a statement's table exists before preparing it (to_regclass, which
# never fails): neither its connections' setup nor these requests left an ERROR in the log
missing_errors() {
    tail -n +"$PGLOG_FROM" "$ES_DATA/log/postgresql.log" | grep 'ERROR: .*relation "\(shop_views\|sagas\)\.'
}
if ! missing_errors >/dev/null; then
    ok "read models that do not exist leave no error in PostgreSQL's log"
else
    bad "read models that do not exist leave no error in PostgreSQL's log" "$(missing_errors | head -n 3)"
fi

# ---- routes, methods, limits ----
for p in / /nope /accounts /accounts/acc-1/ /accounts/acc-1/bar /accounts/acc-1/entries/x \
    /transfers/t-1/x /health/ /metricsx '/accounts/../health' /a/b/c/d/e; do
    get "$p"
    expect_error "no route $p" 404
done
for m in POST PUT DELETE PATCH OPTIONS; do
    req "$m" /accounts/acc-1
    expect_error "$m is 405" 405
    if grep -qi '^allow: GET, HEAD' "$WORK/hdrs"; then ok "$m has Allow"; else bad "$m has Allow" "$(cat "$WORK/hdrs")"; fi
done
CODE="$(head -c 10000 /dev/zero | curl -s -o "$WORK/body" -w '%{http_code}' --data-binary @- \
    "http://127.0.0.1:$PORT/accounts/acc-1")" || CODE=000
expect_error "body too large is 413" 413 '.error == "request body too large"'
CODE="$(head -c 100000 /dev/zero | curl -s -o "$WORK/body" -w '%{http_code}' --data-binary @- \
    "http://127.0.0.1:$PORT/accounts/acc-1")" || CODE=000
if [ "$CODE" = 413 ]; then ok "huge body is 413 (libevent's)"; else bad "huge body is 413" "status $CODE"; fi
CODE="$(curl -s -o "$WORK/body" -w '%{http_code}' -H "X-Big: $(head -c 10000 /dev/zero | tr '\0' a)" \
    "http://127.0.0.1:$PORT/accounts/acc-1")" || CODE=000
expect_error "headers too large is 413" 413 '.error == "request headers too large"'
CODE="$(curl -s -o "$WORK/body" -w '%{http_code}' -H "X-Big: $(head -c 100000 /dev/zero | tr '\0' a)" \
    "http://127.0.0.1:$PORT/health")" || CODE=000
case "$CODE" in 4??) ok "huge headers refused ($CODE, libevent's)" ;; *) bad "huge headers refused" "status $CODE" ;; esac

# Garbage on the socket never kills the server.
for junk in 'GARBAGE\r\n\r\n' 'GET\r\n\r\n' 'GET /health HTTP/9.9\r\n\r\n' '\x00\x01\x02\xff\r\n\r\n' \
    'GET /accounts/%%%% HTTP/1.1\r\nHost: x\r\n\r\n' 'GET http://x/accounts/acc-1 HTTP/1.1\r\nHost: x\r\n\r\n' \
    'GET /health HTTP/1.1\r\nContent-Length: -5\r\n\r\n' 'GET /health HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'; do
    # shellcheck disable=SC2059
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT" && printf "$junk" >&3 && timeout 2 cat <&3 >/dev/null) 2>/dev/null || true
done
get /health
expect "alive after garbage" 200 '. == {"status":"ok","circuit":"closed"}'

# ---- health, metrics ----
get /health
expect "health" 200 '. == {"status":"ok","circuit":"closed"}'
curl -s -o "$WORK/metrics" "http://127.0.0.1:$PORT/metrics"
check_metric() {
    if grep -qE "$1" "$WORK/metrics"; then ok "metrics: $1"; else bad "metrics: $1"; fi
}
check_metric '^es_http_requests_total\{route="/accounts/\{id\}",code="200"\} [0-9]+$'
check_metric '^es_http_requests_total\{route="/accounts/\{id\}",code="404"\} [0-9]+$'
check_metric '^es_http_requests_total\{route="other",code="404"\} [0-9]+$'
check_metric '^es_http_requests_total\{route="/accounts/\{id\}",code="405"\} 5$'
check_metric '^es_http_requests_total\{route="/accounts/\{id\}",code="304"\} 6$'
check_metric '^es_http_request_duration_seconds_bucket\{route="/accounts/\{id\}/entries",le="0.0005"\} [0-9]+$'
check_metric '^es_http_request_duration_seconds_bucket\{route="/health",le="\+Inf"\} [0-9]+$'
check_metric '^es_http_request_duration_seconds_count\{route="/transfers/\{id\}"\} 4$'
check_metric '^es_http_requests_total\{route="/transfers/\{id\}",code="400"\} 1$'
check_metric '^es_projection_lag_records\{projection="ledger",topic="accounts.events",partition="0"\} 5$'
check_metric '^es_projection_lag_records\{projection="ledger",topic="accounts.events",partition="1"\} 0$'
check_metric '^es_projection_position\{projection="ledger",topic="accounts.events",partition="1"\} 20$'
check_metric '^es_db_pool_connections\{state="idle"\} [0-9]+$'
check_metric '^es_db_pool_connections\{state="busy"\} [0-9]+$'
check_metric '^es_http_queue_depth 0$'
if grep -qi '^content-type: text/plain; version=0.0.4' <(curl -s -D - -o /dev/null "http://127.0.0.1:$PORT/metrics"); then
    ok "metrics content type"
else
    bad "metrics content type"
fi

# ---- a rebuild swaps the schema under us ----
{
    ddl projections_new
    fixtures projections_new
    echo "UPDATE projections_new.accounts SET balance = 4242 WHERE account_id = 'acc-1';"
    echo "BEGIN; ALTER SCHEMA projections RENAME TO projections_old;"
    echo "ALTER SCHEMA projections_new RENAME TO projections; COMMIT;"
    echo "DROP SCHEMA projections_old CASCADE;"
} | sql
for i in 1 2 3 4 5 6; do
    get /accounts/acc-1
    if [ "$CODE" != 200 ] || [ "$(jq .balance "$WORK/body")" != 4242 ]; then
        break
    fi
done
expect "after schema swap (every connection)" 200 '.balance == 4242'
# A swap that changes a column's type: "cached plan must not change result type" -> prepare again.
{
    ddl projections_new | sed 's/version bigint NOT NULL/version integer NOT NULL/'
    fixtures projections_new
    echo "BEGIN; ALTER SCHEMA projections RENAME TO projections_old;"
    echo "ALTER SCHEMA projections_new RENAME TO projections; COMMIT;"
} | sql
for i in 1 2 3 4 5 6; do
    get /accounts/acc-1
    [ "$CODE" = 200 ] || break
done
expect "after swap with changed column type" 200 '.balance == 1500 and .version == 3'
get /accounts/acc-1/entries
expect "entries after swap" 200 '[.entries[].seq] == [3,2,1]'
sql -c "DROP SCHEMA projections_old CASCADE;"
# Tables missing (projector not started yet): 503, while health stays up.
sql -c "ALTER SCHEMA projections RENAME TO projections_hidden;"
get /accounts/acc-1
expect_error "read model missing is 503" 503 '(.error | startswith("read model not available"))'
get /health
expect "health without tables" 200 '.status == "ok"'
curl -s -o "$WORK/metrics" "http://127.0.0.1:$PORT/metrics"
if ! grep -q '^es_projection_position' "$WORK/metrics" && grep -q '^es_http_queue_depth' "$WORK/metrics"; then
    ok "metrics without tables"
else
    bad "metrics without tables"
fi
# A second instance started before the tables exist prepares its statements when they appear.
PORT1="$PORT"
PORT="$(free_port)"
ES_LOG_LEVEL=debug "$BIN" --port "$PORT" --pool 2 >"$WORK/second.log" 2>&1 &
QPID2=$!
BG_PIDS+=("$QPID2")
health_wait "$PORT"
get /accounts/acc-1
expect_error "started without tables: 503" 503
sql -c "ALTER SCHEMA projections_hidden RENAME TO projections;"
get /accounts/acc-1
expect "started without tables: tables appear" 200 '.account_id == "acc-1"'
get /accounts/acc-1/entries
expect "started without tables: entries" 200 '(.entries | length) == 3'
kill -TERM "$QPID2"
rc=0
wait "$QPID2" || rc=$?
BG_PIDS=()
if [ "$rc" = 0 ]; then ok "second instance exits 0"; else bad "second instance exits 0" "rc=$rc"; fi
if grep -qE 'DEBUG es-query msg="request" method=GET path="/accounts/acc-1" route=/accounts/\{id\} status=200 duration_ms=[0-9.]+$' "$WORK/second.log"; then
    ok "debug log line per request"
else
    bad "debug log line per request" "$(grep request "$WORK/second.log" | head -3)"
fi
PORT="$PORT1"
get /accounts/acc-1
expect "tables back" 200 '.account_id == "acc-1"'

# ---- out of file descriptors: accept() fails; the listener rests instead of spinning ----
# (libevent retried at once and logged each failure: a million lines in 3 s, nothing answered)
if command -v prlimit >/dev/null; then
    PORT3="$(free_port)"
    prlimit --nofile=40:40 "$BIN" --port "$PORT3" --pool 2 >"$WORK/third.log" 2>&1 &
    QPID3=$!
    BG_PIDS+=("$QPID3")
    health_wait "$PORT3"
    out="$(python3 - "$PORT3" <<'PY'
import socket, sys, time
held = []
for _ in range(80):  # more than the 40 descriptors it may open
    try:
        held.append(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2))
    except OSError:
        break
time.sleep(2)
for s in held:
    s.close()
print(len(held))
PY
)"
    sleep 0.3
    t3="$(curl -s -o /dev/null -w '%{http_code} %{time_total}' --max-time 3 "http://127.0.0.1:$PORT3/health")" || t3="000"
    rests="$(grep -c 'could not accept connections: resting' "$WORK/third.log" || true)"
    spins="$(grep -c 'Error from accept' "$WORK/third.log" || true)"
    if [ "$rests" -ge 1 ] && [ "$rests" -le 2 ] && [ "$spins" = 0 ] && [ "${t3%% *}" = 200 ]; then
        ok "out of descriptors ($out connections held): $rests log line(s), health answers after ($t3 s)"
    else
        bad "out of descriptors" "held=$out rests=$rests accept-error lines=$spins health=$t3 cpu=$(ps -o time= -p "$QPID3"); log: $(grep -A25 "ERROR: AddressSanitizer" "$WORK/third.log" | head -30)"
    fi
    kill -TERM "$QPID3"
    wait "$QPID3" || true
    BG_PIDS=()
else
    echo "  .. no prlimit: the out-of-descriptors case is skipped" >&2
fi

# ---- a connection killed under us is replaced, the request retried ----
sql -c "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'es-query';" >/dev/null
get /accounts/acc-1
expect "after backends terminated" 200 '.account_id == "acc-1"'
sleep 0.3
for i in 1 2 3 4 5 6 7 8; do
    get /accounts/acc-1
    [ "$CODE" = 200 ] || break
done
expect "all connections replaced" 200 '.account_id == "acc-1"'

# ---- a saturated pool: the loop keeps answering, requests queue in order ----
# Hold a lock on transfers for 3 s: every /transfers query blocks on it.
sql -c "BEGIN; LOCK TABLE projections.transfers IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(3); COMMIT;" >/dev/null &
BG_PIDS+=($!)
sleep 0.3
for i in 1 2; do
    curl -s -o "$WORK/slow$i" -w '%{http_code}\n' "http://127.0.0.1:$PORT/transfers/t-1" >"$WORK/slowcode$i" &
    BG_PIDS+=($!)
done
sleep 0.3
t0=$(date +%s%N)
get /health
t1=$(date +%s%N)
if [ "$CODE" = 200 ] && [ $(((t1 - t0) / 1000000)) -lt 500 ]; then
    ok "health answers while two connections are blocked ($(((t1 - t0) / 1000000)) ms)"
else
    bad "health answers while two connections are blocked" "status $CODE, $(((t1 - t0) / 1000000)) ms"
fi
for i in $(seq 3 12); do
    curl -s -o "$WORK/slow$i" -w '%{http_code}\n' "http://127.0.0.1:$PORT/transfers/t-1" >"$WORK/slowcode$i" &
    BG_PIDS+=($!)
done
sleep 0.5
t0=$(date +%s%N)
get /nope
get /accounts/bad%20id
curl -s -o "$WORK/metrics" "http://127.0.0.1:$PORT/metrics"
t1=$(date +%s%N)
if [ $(((t1 - t0) / 1000000)) -lt 500 ] && grep -q '^es_http_queue_depth 8$' "$WORK/metrics" &&
    grep -q '^es_db_pool_connections{state="busy"} 4$' "$WORK/metrics"; then
    ok "saturated pool: loop answers in $(((t1 - t0) / 1000000)) ms, queue depth 8, 4 busy"
else
    bad "saturated pool" "$(((t1 - t0) / 1000000)) ms; $(grep -E '^es_(http_queue_depth|db_pool)' "$WORK/metrics" | tr '\n' ' ')"
fi
wait "${BG_PIDS[@]}" 2>/dev/null || true
BG_PIDS=()
if [ "$(cat "$WORK"/slowcode* | sort | uniq -c | awk '{print $1" "$2}')" = "12 200" ]; then
    ok "12 queued requests all answered 200 once the lock went"
else
    bad "queued requests" "$(cat "$WORK"/slowcode* | sort | uniq -c | tr '\n' ' ')"
fi

# ---- 200 parallel requests over a mix of routes ----
: >"$WORK/paths"
for i in $(seq 1 40); do
    printf '%s\n' /accounts/acc-1 /accounts/acc-3/entries?limit=20 /transfers/t-2 /commands/c-1 /accounts/nope >>"$WORK/paths"
done
xargs -P 50 -I{} curl -s -o /dev/null -w '{} %{http_code}\n' "http://127.0.0.1:$PORT{}" <"$WORK/paths" >"$WORK/par"
if [ "$(wc -l <"$WORK/par")" = 200 ] && [ "$(grep -c ' 200$' "$WORK/par")" = 160 ] &&
    [ "$(grep -c '^/accounts/nope 404$' "$WORK/par")" = 40 ]; then
    ok "200 parallel requests (160 x 200, 40 x 404)"
else
    bad "200 parallel requests" "$(awk '{print $2}' "$WORK/par" | sort | uniq -c | tr '\n' ' ')"
fi

# ---- the database goes away and comes back ----
if [ -n "$PG_STARTED" ] || [ -n "${ES_QTEST_RESTART_PG:-}" ]; then
    bash "$ROOT/scripts/pg.sh" stop >/dev/null 2>&1
    sleep 0.3
    get /health
    expect "health with database down" 503 '.status == "unavailable" and (.reason | type == "string") and (.reason | length > 0)'
    get /accounts/acc-1
    expect_error "account with database down" 503 '(.error | startswith("database unavailable"))'
    # The circuit breaker (default: 5 unanswered queries in a row, 1 s pause): a few more
    # requests and it opens; then requests are refused at once, with Retry-After.
    for i in 1 2 3 4 5; do get /transfers/t-1; done
    t0=$(date +%s%N)
    get /accounts/acc-1
    t1=$(date +%s%N)
    expect_error "circuit open: refused" 503 '(.error | startswith("database unavailable: circuit open after 5 failed queries in a row"))'
    if grep -qiE '^retry-after: [1-9][0-9]*' "$WORK/hdrs" && [ $(((t1 - t0) / 1000000)) -lt 200 ]; then
        ok "circuit open: Retry-After $(grep -i '^retry-after' "$WORK/hdrs" | tr -d '\r' | cut -d' ' -f2) s, answered in $(((t1 - t0) / 1000000)) ms"
    else
        bad "circuit open: Retry-After" "$(tr -d '\r' <"$WORK/hdrs" | tr '\n' ' ') in $(((t1 - t0) / 1000000)) ms"
    fi
    get /health
    expect "health shows the open circuit" 503 '.status == "unavailable" and .circuit == "open"'
    curl -s -o "$WORK/metrics" "http://127.0.0.1:$PORT/metrics"
    if grep -q '^es_db_circuit_state{state="open"} 1$' "$WORK/metrics" &&
        grep -qE '^es_db_circuit_opened_total [1-9]' "$WORK/metrics" &&
        grep -qE '^es_db_circuit_rejected_total [1-9]' "$WORK/metrics"; then
        ok "metrics while open: state open, opened and rejected counted"
    else
        bad "metrics while open" "$(grep '^es_db_circuit' "$WORK/metrics" | tr '\n' ' ')"
    fi
    bash "$ROOT/scripts/pg.sh" start >/dev/null 2>&1
    for i in $(seq 1 150); do
        get /health
        [ "$CODE" = 200 ] && break
        sleep 0.1
    done
    expect "reconnected after database restart (~$((i / 10)) s), circuit closed again" 200 '.status == "ok" and .circuit == "closed"'
    get /accounts/acc-1
    expect "account after database restart" 200 '.account_id == "acc-1"'
    curl -s -o "$WORK/metrics" "http://127.0.0.1:$PORT/metrics"
    if grep -q '^es_db_circuit_state{state="closed"} 1$' "$WORK/metrics"; then
        ok "metrics after recovery: state closed"
    else
        bad "metrics after recovery" "$(grep '^es_db_circuit' "$WORK/metrics" | tr '\n' ' ')"
    fi
else
    echo "skip database restart (PostgreSQL was already running; ES_QTEST_RESTART_PG=1 forces it)"
fi

# ---- benchmark ----
if command -v wrk >/dev/null && [ "$BENCH_S" != 0 ]; then
    wrk -t1 -c32 -d"${BENCH_S}s" --latency "http://127.0.0.1:$PORT/accounts/acc-1" >"$WORK/wrk" 2>&1 || true
    rps="$(awk '/^Requests\/sec/ {print $2}' "$WORK/wrk")"
    p99="$(awk '$1 == "99%" {print $2}' "$WORK/wrk")"
    errs="$(grep -E 'Non-2xx|Socket errors' "$WORK/wrk" || true)"
    echo "bench: GET /accounts/{id}: ${rps:-?} req/s, p99 ${p99:-?} (wrk -t1 -c32 ${BENCH_S}s, pool 4)"
    if [ -z "$errs" ] && [ -n "$rps" ]; then ok "bench without errors"; else bad "bench" "$errs"; fi
fi

# ---- SIGTERM: stop listening, finish what is in hand, exit 0 ----
sql -c "BEGIN; LOCK TABLE projections.commands IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(1.5); COMMIT;" >/dev/null &
BG_PIDS+=($!)
sleep 0.3
curl -s -o "$WORK/drain" -w '%{http_code}' "http://127.0.0.1:$PORT/commands/c-1" >"$WORK/draincode" &
CURL_PID=$!
sleep 0.3
kill -TERM "$QPID"
sleep 0.3
if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/health"; then
    bad "stopped listening after SIGTERM"
else
    ok "stopped listening after SIGTERM"
fi
rc=0
wait "$QPID" || rc=$?
QPID=''
wait "$CURL_PID" || true
if [ "$rc" = 0 ]; then ok "exit 0 after SIGTERM"; else bad "exit 0 after SIGTERM" "rc=$rc"; fi
if [ "$(cat "$WORK/draincode")" = 200 ] && jq -e '.command_id == "c-1"' "$WORK/drain" >/dev/null; then
    ok "in-flight request finished during drain"
else
    bad "in-flight request finished during drain" "$(cat "$WORK/draincode") $(cat "$WORK/drain")"
fi
wait "${BG_PIDS[@]}" 2>/dev/null || true
BG_PIDS=()

if grep -E ' (ERROR|WARN) ' "$WORK/es-query.log" | grep -vqE 'lost connection|could not connect|database unavailable|circuit opened|could not read projection positions'; then
    bad "no unexpected warnings" "$(grep -E ' (ERROR|WARN) ' "$WORK/es-query.log" | head -5)"
else
    ok "no unexpected warnings"
fi

# built with sanitizers (make asan), es-query reports into its logs
if cat "$WORK"/*.log 2>/dev/null | grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:'; then
    bad "no sanitizer report" "$(cat "$WORK"/*.log | grep -E -A8 'ERROR: (Address|Leak)Sanitizer|runtime error:' | head -20)"
else
    ok "no sanitizer report"
fi

if [ "$FAIL" != 0 ]; then
    echo "--- es-query log (last 40 lines) ---"
    tail -n 40 "$WORK/es-query.log"
fi
echo "test_query_http: $PASS passed, $FAIL failed"
[ "$FAIL" = 0 ] && [ "$PASS" -gt 0 ]
