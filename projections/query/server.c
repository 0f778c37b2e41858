/*
 * server.c: the HTTP side of the query service (see server.h).
 *
 * Every request ends in exactly one reply() call: either at once (bad method, unknown route,
 * malformed id, database unavailable) or from the pool's callback once its query returned.
 * A request that waits on the pool is held in a small heap context (query_req_t); if the
 * client goes away meanwhile, libevent detaches the request and frees it when we reply.
 */
#include "server.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <time.h>

#include <sys/resource.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "buf.h"
#include "etag.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"
#include "routes.h"
#include "sagas.h"
#include "ends.h"

#define ENTRIES_LIMIT_DEFAULT 50
#define ENTRIES_LIMIT_MAX 500
#define HTTP_MAX_HEADERS_SIZE 8192 /* answered 413 in JSON */
#define HTTP_MAX_BODY_SIZE 4096
/* libevent's own limits, past which it answers itself */
#define HTTP_HARD_HEADERS_SIZE 65536
#define HTTP_HARD_BODY_SIZE 65536
/* after accept() failed, the listener rests ACCEPT_REST_MS, and says so every ACCEPT_WARN_S */
#define ACCEPT_REST_MS 100
#define ACCEPT_WARN_S 10.0
#define HTTP_TIMEOUT_S 30
#define DRAIN_FLUSH_GRACE_MS 1000

/* Every consumer's stored positions (each service, projector and the saga coordinator keeps
 * them in its schema's positions table, lib/batch.c, with the end of the partition it last
 * saw): the schemas are found in the catalog, and query_to_xml runs the same query on each
 * one's table (a rebuild's shadow and old schemas left out, and any this role may not read:
 * every consumer grants its positions to all, lib/batch.c). Columns x.topic, x.partition,
 * x.next_offset, x.hw, and n.nspname the consumer. */
#define EVERY_POSITIONS                                                                            \
    " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace,"                              \
    " LATERAL xmltable('/table/row' PASSING query_to_xml(format("                                  \
    "'SELECT topic, partition, next_offset, high_watermark AS hw FROM %I.positions',"              \
    " n.nspname), false, false, '') COLUMNS topic text, partition int, next_offset bigint,"        \
    " hw bigint) x"                                                                                \
    " WHERE c.relname = 'positions' AND c.relkind = 'r' AND n.nspname !~ '_(rebuild|old)$'"        \
    " AND has_schema_privilege(n.oid, 'USAGE') AND has_table_privilege(c.oid, 'SELECT')"           \
    " AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid"                           \
    " AND a.attname = 'high_watermark' AND NOT a.attisdropped)"
/* The ends read from Kafka (ends.h): $1 topics, $2 partitions, $3 ends, as arrays. */
#define KAFKA_ENDS                                                                                 \
    " SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[]) AS k(topic, partition, hw)"

/* A projector's positions and lag. The lag is measured against the newest end known of each
 * partition: what Kafka said last (ends.h), or what any consumer stored with its positions,
 * whichever is larger. Its own stored end stops where a stopped projector stopped. */
#define POSITIONS_SQL(schema)                                                                      \
    "SELECT p.topic, p.partition, p.next_offset,"                                                  \
    " GREATEST(GREATEST(p.high_watermark, coalesce(e.hw, 0)) - p.next_offset, 0)"                  \
    " FROM " schema ".positions p LEFT JOIN"                                                       \
    " (SELECT topic, partition, max(hw) AS hw FROM"                                                \
    " (SELECT x.topic, x.partition, x.hw" EVERY_POSITIONS " UNION ALL" KAFKA_ENDS ") a"            \
    " GROUP BY 1, 2) e USING (topic, partition) ORDER BY topic, partition"

/* Every consumer's lag per topic it reads, against the same ends; a partition of such a topic
 * it stored nothing for counts from offset 0 (where it would start). */
#define CONSUMER_LAG_SQL                                                                           \
    "WITH pos AS (SELECT n.nspname AS consumer, x.topic, x.partition, x.next_offset, "             \
    "x.hw" EVERY_POSITIONS "),"                                                                    \
    " ends AS (SELECT topic, partition, max(hw) AS hw FROM"                                        \
    " (SELECT topic, partition, hw FROM pos UNION ALL" KAFKA_ENDS ") a GROUP BY 1, 2),"            \
    " reads AS (SELECT DISTINCT consumer, topic FROM pos)"                                         \
    " SELECT r.consumer, r.topic, sum(GREATEST(e.hw - coalesce(p.next_offset, 0), 0))::bigint"     \
    " FROM reads r JOIN ends e USING (topic) LEFT JOIN pos p ON p.consumer = r.consumer"           \
    " AND p.topic = e.topic AND p.partition = e.partition GROUP BY 1, 2 ORDER BY 1, 2"

/* Statements, in the order of the enum below. Always schema-qualified: a rebuild swaps the
 * projections schema by renaming, and the pool prepares again after such a swap. */
enum {
    Q_ACCOUNT,
    Q_ENTRIES,
    Q_TRANSFER,
    Q_COMMAND,
    Q_SHOP_COMMAND,
    Q_USER,
    Q_USER_ORDERS,
    Q_PRODUCT,
    Q_ORDER,
    Q_HEALTH,
    Q_POSITIONS,
    Q_SHOP_POSITIONS,
    Q_SAGA,
    Q_SAGAS,
    Q_SAGA_METRICS,
    Q_STORAGE,
    Q_CONSUMER_LAG,
    Q__CNT
};

/* An order's columns, for both order statements (x: the orders table's alias). */
#define ORDER_COLUMNS(x)                                                                           \
    x ".order_id, " x ".user_id, " x ".account_id, " x ".items::text, " x ".total, " x             \
      ".status, NULLIF(" x ".reason, ''), NULLIF(" x ".stock, ''), NULLIF(" x ".payment, ''), " x  \
      ".version"

static const es_query_stmt_t statements[Q__CNT] = {
    [Q_ACCOUNT] = {"es_query_account",
                   "SELECT account_id, owner, currency, balance, status, version"
                   " FROM projections.accounts WHERE account_id = $1",
                   1, "projections.accounts"},
    /* One row per entry, newest first, or one row with NULL entry columns when the account
     * has none yet; no row at all when the account is unknown. $3 is the page size plus one,
     * to know whether there is a next page. */
    [Q_ENTRIES] = {"es_query_entries",
                   "SELECT a.account_id, e.seq, e.kind, e.amount, e.balance_after, e.transfer_id,"
                   " e.event_id,"
                   " to_char(e.occurred_at AT TIME ZONE 'UTC',"
                   " 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
                   " FROM projections.accounts a LEFT JOIN LATERAL"
                   " (SELECT x.seq, x.kind, x.amount, x.balance_after, x.transfer_id, x.event_id,"
                   " x.occurred_at FROM projections.entries x"
                   " WHERE x.account_id = a.account_id AND x.seq < $2::bigint"
                   " ORDER BY x.seq DESC LIMIT $3::bigint) e ON true"
                   " WHERE a.account_id = $1 ORDER BY e.seq DESC",
                   3, "projections.entries"},
    [Q_TRANSFER] = {"es_query_transfer",
                    "SELECT transfer_id, from_account, to_account, amount, status, reason,"
                    " compensated FROM projections.transfers WHERE transfer_id = $1",
                    1, "projections.transfers"},
    [Q_COMMAND] = {"es_query_command",
                   "SELECT command_id, command_type, aggregate_id, status, reason, event_type"
                   " FROM projections.commands WHERE command_id = $1",
                   1, "projections.commands"},
    /* the shop's commands, looked up when the ledger does not know the command */
    [Q_SHOP_COMMAND] = {"es_query_shop_command",
                        "SELECT command_id, command_type, aggregate_id, status, reason, event_type"
                        " FROM shop_views.commands WHERE command_id = $1",
                        1, "shop_views.commands"},
    [Q_USER] = {"es_query_user",
                "SELECT user_id, email, name, status, version FROM shop_views.users"
                " WHERE user_id = $1",
                1, "shop_views.users"},
    /* Like Q_ENTRIES: one row per order, newest first, or one row of NULLs when the user has
     * none (before the cursor); none when the user is unknown. The cursor is the order's
     * placed_at in microseconds and its id ($2, $3); $4 is the page size plus one. */
    [Q_USER_ORDERS] =
        {"es_query_user_orders",
         "SELECT u.user_id, " ORDER_COLUMNS(
             "o") ", o.cur"
                  " FROM shop_views.users u LEFT JOIN LATERAL"
                  " (SELECT x.*, floor(extract(epoch FROM x.placed_at) * 1000000)::bigint"
                  " AS cur FROM shop_views.orders x"
                  " WHERE x.user_id = u.user_id AND x.status <> ''"
                  " AND (floor(extract(epoch FROM x.placed_at) * 1000000)::bigint,"
                  " x.order_id) < ($2::bigint, $3::text)"
                  " ORDER BY x.placed_at DESC, x.order_id DESC LIMIT $4::bigint) o ON true"
                  " WHERE u.user_id = $1 ORDER BY o.placed_at DESC, o.order_id DESC",
         4, "shop_views.orders"},
    [Q_PRODUCT] = {"es_query_product",
                   "SELECT product_id, name, price, on_hand, reserved, on_hand - reserved,"
                   " version FROM shop_views.products WHERE product_id = $1"
                   " AND price_version > 0", /* 0: only stock lines seen so far */
                   1, "shop_views.products"},
    /* status '' is an order whose saga steps were seen before its OrderPlaced */
    [Q_ORDER] = {"es_query_order",
                 "SELECT " ORDER_COLUMNS("o") " FROM shop_views.orders o"
                                              " WHERE o.order_id = $1 AND o.status <> ''",
                 1, "shop_views.orders"},
    [Q_HEALTH] = {"es_query_health", "SELECT 1", 0},
    [Q_POSITIONS] = {"es_query_positions", POSITIONS_SQL("projections"), 3,
                     "projections.positions"},
    [Q_SHOP_POSITIONS] = {"es_query_shop_positions", POSITIONS_SQL("shop_views"), 3,
                          "shop_views.positions"},
    [Q_CONSUMER_LAG] = {"es_query_consumer_lag", CONSUMER_LAG_SQL, 3},
    /* the saga coordinator's tables: the SQL lives with its rendering, in sagas.c */
    [Q_SAGA] = {"es_query_saga", es_query_saga_sql, 1, "sagas.steps"},
    [Q_SAGAS] = {"es_query_sagas", es_query_sagas_sql, ES_QUERY_SAGAS_NPARAMS, "sagas.sagas"},
    [Q_SAGA_METRICS] = {"es_query_saga_metrics", es_query_saga_metrics_sql, 0, "sagas.durations"},
    /* the tables that grow with traffic, kept in bounds by the dedup window (lib/dedup.h), the
     * saga retention (docs/SAGAS.md) and the relay: the statistics' live-row estimates */
    [Q_STORAGE] = {"es_query_storage",
                   "SELECT schemaname, relname, n_live_tup FROM pg_stat_user_tables"
                   " WHERE relname IN ('processed', 'steps', 'sagas', 'outbox')"
                   " ORDER BY 1, 2",
                   0},
};

struct es_query_server {
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    int port;
    es_query_pool_t *pool;
    es_query_metrics_t metrics;
    es_buf_t body; /* reused for every reply: single-threaded */
    /* projection gauges from the last positions queries, per projection (0 ledger, 1 shop):
     * the lag lines and the position lines */
    es_buf_t lag[2], pos[2];
    es_buf_t saga_metrics; /* the saga families from the last saga metrics query */
    es_buf_t storage;      /* es_table_rows lines from the last storage query */
    es_buf_t consumer_lag; /* es_consumer_lag_records lines from the last lag query */
    /* the partitions' ends read from Kafka (NULL: none configured) and, for the statements of
     * one /metrics, as array literals, with their age (ms; -1: none read yet) */
    es_query_ends_t *ends;
    es_buf_t ends_topics, ends_parts, ends_highs;
    int64_t ends_age_ms;
    int debug;
    size_t inflight;  /* requests not answered yet */
    size_t unflushed; /* answered, reply still being written */
    int draining;
    struct event *drain_timer;
    struct timespec drain_start;
    struct timespec last_reply;
    int drain_max_ms;
    void (*drained)(void *);
    void *drained_opaque;
    /* accept() failing (out of file descriptors): the listener rests ACCEPT_REST_MS, and says
     * so at most every ACCEPT_WARN_S, instead of retrying (and logging) in a busy loop */
    struct event *accept_timer;
    int64_t accept_failures;
    struct timespec accept_warned;
};

typedef struct query_req {
    es_query_server_t *srv;
    struct evhttp_request *req;
    es_query_route_t route;
    struct timespec t0;
    char id[ES_QUERY_ID_MAX + 1];
    int64_t limit;
    int shop_tried; /* /commands/{id}, /metrics: the shop's read model was asked too */
} query_req_t;

static void reply_metrics(query_req_t *qr);

static double elapsed_s(const struct timespec *from, const struct timespec *to)
{
    return (double)(to->tv_sec - from->tv_sec) + (double)(to->tv_nsec - from->tv_nsec) / 1e9;
}

static const char *method_name(enum evhttp_cmd_type cmd)
{
    switch (cmd) {
    case EVHTTP_REQ_GET:
        return "GET";
    case EVHTTP_REQ_HEAD:
        return "HEAD";
    case EVHTTP_REQ_POST:
        return "POST";
    case EVHTTP_REQ_PUT:
        return "PUT";
    case EVHTTP_REQ_DELETE:
        return "DELETE";
    case EVHTTP_REQ_OPTIONS:
        return "OPTIONS";
    case EVHTTP_REQ_TRACE:
        return "TRACE";
    case EVHTTP_REQ_CONNECT:
        return "CONNECT";
    case EVHTTP_REQ_PATCH:
        return "PATCH";
    }
    return "?";
}

static void on_reply_complete(struct evhttp_request *req, void *arg)
{
    (void)req;
    es_query_server_t *srv = arg;
    if (srv->unflushed > 0) {
        srv->unflushed--;
    }
}

/* Send srv->body with `code`, count it, log it. Always the last thing done with `req`. */
static void reply(es_query_server_t *srv, struct evhttp_request *req, es_query_route_t route,
                  const struct timespec *t0, int code, const char *content_type)
{
    struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
    if (code == 200 && route != ES_ROUTE_HEALTH && route != ES_ROUTE_METRICS) {
        /* a read model's answer: keep it, but ask whether it still holds (etag.h) */
        char etag[ES_QUERY_ETAG_SIZE];
        es_query_etag(srv->body.data, srv->body.len, etag);
        evhttp_add_header(headers, "ETag", etag);
        evhttp_add_header(headers, "Cache-Control", "no-cache");
        if (es_query_etag_match(
                evhttp_find_header(evhttp_request_get_input_headers(req), "If-None-Match"), etag)) {
            code = 304; /* no body: the client has it */
            es_buf_reset(&srv->body);
        }
    } else {
        evhttp_add_header(headers, "Cache-Control", "no-store");
    }
    if (code != 304) {
        evhttp_add_header(headers, "Content-Type", content_type);
    }
    if (code == 405) {
        evhttp_add_header(headers, "Allow", "GET, HEAD");
    }
    if (srv->draining) {
        evhttp_add_header(headers, "Connection", "close");
    }
    struct evbuffer *out = evhttp_request_get_output_buffer(req);
    if (code == 304) {
        /* nothing more: no body and no length of one */
    } else if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
        /* the headers of the GET, no body (libevent would send what the buffer holds) */
        char len[32];
        snprintf(len, sizeof(len), "%zu", srv->body.len);
        evhttp_add_header(headers, "Content-Length", len);
    } else if (srv->body.len > 0) {
        evbuffer_add(out, srv->body.data, srv->body.len);
    }
    es_buf_reset(&srv->body);

    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double took = elapsed_s(t0, &now);
    es_query_metrics_observe(&srv->metrics, route, code, took);
    if (srv->debug) {
        char path[256];
        const char *uri = evhttp_request_get_uri(req);
        snprintf(path, sizeof(path), "%s", uri ? uri : "");
        for (char *p = path; *p; p++) {
            if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e || *p == '"' || *p == '\\') {
                *p = '?';
            }
        }
        es_log_debug("request", "method=%s path=\"%s\" route=%s status=%d duration_ms=%.3f",
                     method_name(evhttp_request_get_command(req)), path, es_query_route_name(route),
                     code, took * 1000.0);
    }

    srv->inflight--;
    srv->last_reply = now;
    if (evhttp_request_get_connection(req)) {
        srv->unflushed++;
        evhttp_request_set_on_complete_cb(req, on_reply_complete, srv);
    }
    evhttp_send_reply(req, code, NULL, NULL);
}

/* Reply {"error": msg, "status": code}. */
static void reply_error(es_query_server_t *srv, struct evhttp_request *req, es_query_route_t route,
                        const struct timespec *t0, int code, const char *msg)
{
    es_buf_reset(&srv->body);
    es_buf_puts(&srv->body, "{\"error\":");
    es_query_json_str(&srv->body, msg);
    es_buf_printf(&srv->body, ",\"status\":%d}\n", code);
    reply(srv, req, route, t0, code, "application/json");
}

static void reply_json(query_req_t *qr, int code)
{
    reply(qr->srv, qr->req, qr->route, &qr->t0, code, "application/json");
}

/* While the circuit breaker is not closed, tell the client when to come back. */
static void add_retry_after(query_req_t *qr)
{
    es_query_pool_stats_t st;
    es_query_pool_stats(qr->srv->pool, &st);
    if (st.retry_after_s > 0) {
        char v[16];
        snprintf(v, sizeof(v), "%d", st.retry_after_s);
        evhttp_add_header(evhttp_request_get_output_headers(qr->req), "Retry-After", v);
    }
}

/* Map a pool failure to an HTTP error. */
static void reply_db_error(query_req_t *qr, es_query_status_t status, const char *errmsg)
{
    char msg[600];
    switch (status) {
    case ES_QUERY_MISSING:
        snprintf(msg, sizeof(msg), "read model not available: %s", errmsg ? errmsg : "");
        reply_error(qr->srv, qr->req, qr->route, &qr->t0, 503, msg);
        return;
    case ES_QUERY_UNAVAILABLE:
        add_retry_after(qr);
        snprintf(msg, sizeof(msg), "database unavailable: %s", errmsg ? errmsg : "");
        es_log_warn("database unavailable", "route=%s error=\"%s\"", es_query_route_name(qr->route),
                    errmsg ? errmsg : "");
        reply_error(qr->srv, qr->req, qr->route, &qr->t0, 503, msg);
        return;
    default:
        es_log_warn("query failed", "route=%s error=\"%s\"", es_query_route_name(qr->route),
                    errmsg ? errmsg : "");
        reply_error(qr->srv, qr->req, qr->route, &qr->t0, 500, "internal error: query failed");
        return;
    }
}

static void reply_not_found(query_req_t *qr, const char *what)
{
    char msg[200];
    snprintf(msg, sizeof(msg), "%s \"%s\" not found", what, qr->id);
    reply_error(qr->srv, qr->req, qr->route, &qr->t0, 404, msg);
}

/* A result with fewer columns than expected means the tables changed under us. */
static int shape_ok(query_req_t *qr, const PGresult *res, int nfields)
{
    if (PQnfields(res) >= nfields) {
        return 1;
    }
    es_log_warn("unexpected result shape", "route=%s fields=%d expected=%d",
                es_query_route_name(qr->route), PQnfields(res), nfields);
    reply_error(qr->srv, qr->req, qr->route, &qr->t0, 500, "internal error: unexpected result");
    return 0;
}

/* A row of a result as a JSON object: column col0 + i is fields[i]. */
typedef struct field {
    const char *name;
    char kind; /* 't' text (NULL -> null), 'i' integer, 'b' boolean, 'j' JSON from jsonb */
} field_t;

static const field_t account_fields[] = {{"account_id", 't'}, {"owner", 't'},  {"currency", 't'},
                                         {"balance", 'i'},    {"status", 't'}, {"version", 'i'}};
static const field_t entry_fields[] = {
    {"seq", 'i'},         {"kind", 't'},     {"amount", 'i'},     {"balance_after", 'i'},
    {"transfer_id", 't'}, {"event_id", 't'}, {"occurred_at", 't'}};
static const field_t transfer_fields[] = {
    {"transfer_id", 't'}, {"from_account", 't'}, {"to_account", 't'}, {"amount", 'i'},
    {"status", 't'},      {"reason", 't'},       {"compensated", 'b'}};
static const field_t command_fields[] = {{"command_id", 't'},   {"command_type", 't'},
                                         {"aggregate_id", 't'}, {"status", 't'},
                                         {"reason", 't'},       {"event_type", 't'}};
static const field_t user_fields[] = {
    {"user_id", 't'}, {"email", 't'}, {"name", 't'}, {"status", 't'}, {"version", 'i'}};
static const field_t product_fields[] = {{"product_id", 't'}, {"name", 't'},     {"price", 'i'},
                                         {"on_hand", 'i'},    {"reserved", 'i'}, {"available", 'i'},
                                         {"version", 'i'}};
static const field_t order_fields[] = {
    {"order_id", 't'}, {"user_id", 't'}, {"account_id", 't'}, {"items", 'j'},   {"total", 'i'},
    {"status", 't'},   {"reason", 't'},  {"stock", 't'},      {"payment", 't'}, {"version", 'i'}};
#define NFIELDS(a) (sizeof(a) / sizeof((a)[0]))

static void row_json(es_buf_t *b, const PGresult *res, int row, int col0, const field_t *fields,
                     size_t n)
{
    es_buf_puts(b, "{");
    for (size_t i = 0; i < n; i++) {
        int col = col0 + (int)i;
        if (i) {
            es_buf_puts(b, ",");
        }
        if (fields[i].kind == 'i') {
            es_query_json_int(b, fields[i].name, res, row, col);
        } else if (fields[i].kind == 'b') {
            es_query_json_bool(b, fields[i].name, res, row, col);
        } else if (fields[i].kind == 'j') {
            es_query_json_raw(b, fields[i].name, res, row, col);
        } else {
            es_query_json_text(b, fields[i].name, res, row, col);
        }
    }
    es_buf_puts(b, "}");
}

/* The answer of a one-row lookup: the row as JSON, or 404 naming `what`. */
static void reply_row(query_req_t *qr, es_query_status_t status, const PGresult *res,
                      const char *errmsg, const char *what, const field_t *fields, size_t n)
{
    es_buf_t *b = &qr->srv->body;
    if (status != ES_QUERY_OK) {
        reply_db_error(qr, status, errmsg);
    } else if (!shape_ok(qr, res, (int)n)) {
        /* answered */
    } else if (PQntuples(res) == 0) {
        reply_not_found(qr, what);
    } else {
        es_buf_reset(b);
        row_json(b, res, 0, 0, fields, n);
        es_buf_puts(b, "\n");
        reply_json(qr, 200);
    }
    free(qr);
}

static void on_account(es_query_status_t status, const PGresult *res, const char *errmsg,
                       void *opaque)
{
    reply_row(opaque, status, res, errmsg, "account", account_fields, NFIELDS(account_fields));
}

static void on_entries(es_query_status_t status, const PGresult *res, const char *errmsg,
                       void *opaque)
{
    query_req_t *qr = opaque;
    es_buf_t *b = &qr->srv->body;
    if (status != ES_QUERY_OK) {
        reply_db_error(qr, status, errmsg);
    } else if (!shape_ok(qr, res, 8)) {
        /* answered */
    } else if (PQntuples(res) == 0) {
        reply_not_found(qr, "account");
    } else {
        int rows = PQntuples(res);
        if (rows == 1 && PQgetisnull(res, 0, 1)) {
            rows = 0; /* the account exists but has no entries (before this point) */
        }
        int shown = rows > qr->limit ? (int)qr->limit : rows;
        es_buf_reset(b);
        es_buf_puts(b, "{\"account_id\":");
        es_query_json_str(b, qr->id);
        es_buf_puts(b, ",\"entries\":[");
        for (int i = 0; i < shown; i++) {
            if (i) {
                es_buf_puts(b, ",");
            }
            row_json(b, res, i, 1, entry_fields, NFIELDS(entry_fields));
        }
        es_buf_puts(b, "],\"next\":");
        if (rows > shown && shown > 0) {
            /* Ids are [A-Za-z0-9._:-] only, so they need no escaping in a path or in JSON. */
            es_buf_printf(b, "\"/accounts/%s/entries?limit=%" PRId64 "&before=%s\"", qr->id,
                          qr->limit, PQgetvalue(res, shown - 1, 1));
        } else {
            es_buf_puts(b, "null");
        }
        es_buf_puts(b, "}\n");
        reply_json(qr, 200);
    }
    free(qr);
}

static void on_transfer(es_query_status_t status, const PGresult *res, const char *errmsg,
                        void *opaque)
{
    reply_row(opaque, status, res, errmsg, "transfer", transfer_fields, NFIELDS(transfer_fields));
}

static void on_command(es_query_status_t status, const PGresult *res, const char *errmsg,
                       void *opaque);

/* A command unknown to the ledger may be the shop's: ask its read model once. Returns 1 when
 * the question was sent (on_command answers later). */
static int ask_shop_command(query_req_t *qr)
{
    const char *params[1] = {qr->id};
    const char *why = NULL;
    qr->shop_tried = 1;
    return es_query_pool_submit(qr->srv->pool, Q_SHOP_COMMAND, params, on_command, qr, &why) == 0;
}

static void on_command(es_query_status_t status, const PGresult *res, const char *errmsg,
                       void *opaque)
{
    query_req_t *qr = opaque;
    if (!qr->shop_tried && status == ES_QUERY_OK && PQntuples(res) == 0 && ask_shop_command(qr)) {
        return;
    }
    if (qr->shop_tried && status == ES_QUERY_MISSING) {
        /* no shop running: the ledger's answer (not found) stands */
        reply_not_found(qr, "command");
        free(qr);
        return;
    }
    reply_row(qr, status, res, errmsg, "command", command_fields, NFIELDS(command_fields));
}

static void on_user(es_query_status_t status, const PGresult *res, const char *errmsg, void *opaque)
{
    reply_row(opaque, status, res, errmsg, "user", user_fields, NFIELDS(user_fields));
}

static void on_product(es_query_status_t status, const PGresult *res, const char *errmsg,
                       void *opaque)
{
    reply_row(opaque, status, res, errmsg, "product", product_fields, NFIELDS(product_fields));
}

static void on_order(es_query_status_t status, const PGresult *res, const char *errmsg,
                     void *opaque)
{
    reply_row(opaque, status, res, errmsg, "order", order_fields, NFIELDS(order_fields));
}

static void on_user_orders(es_query_status_t status, const PGresult *res, const char *errmsg,
                           void *opaque)
{
    query_req_t *qr = opaque;
    es_buf_t *b = &qr->srv->body;
    int ncols = 1 + (int)NFIELDS(order_fields) + 1;
    if (status != ES_QUERY_OK) {
        reply_db_error(qr, status, errmsg);
    } else if (!shape_ok(qr, res, ncols)) {
        /* answered */
    } else if (PQntuples(res) == 0) {
        reply_not_found(qr, "user");
    } else {
        int rows = PQntuples(res);
        if (rows == 1 && PQgetisnull(res, 0, 1)) {
            rows = 0; /* the user exists but has no orders (before this point) */
        }
        int shown = rows > qr->limit ? (int)qr->limit : rows;
        es_buf_reset(b);
        es_buf_puts(b, "{\"user_id\":");
        es_query_json_str(b, qr->id);
        es_buf_puts(b, ",\"orders\":[");
        for (int i = 0; i < shown; i++) {
            if (i) {
                es_buf_puts(b, ",");
            }
            row_json(b, res, i, 1, order_fields, NFIELDS(order_fields));
        }
        es_buf_puts(b, "],\"next\":");
        if (rows > shown && shown > 0) {
            /* ids are [A-Za-z0-9._:-] only: no escaping needed in a path or in JSON */
            es_buf_printf(b, "\"/users/%s/orders?limit=%" PRId64 "&before=%s:%s\"", qr->id,
                          qr->limit, PQgetvalue(res, shown - 1, ncols - 1),
                          PQgetvalue(res, shown - 1, 1));
        } else {
            es_buf_puts(b, "null");
        }
        es_buf_puts(b, "}\n");
        reply_json(qr, 200);
    }
    free(qr);
}

static void on_saga(es_query_status_t status, const PGresult *res, const char *errmsg, void *opaque)
{
    query_req_t *qr = opaque;
    es_buf_t *b = &qr->srv->body;
    if (status != ES_QUERY_OK) {
        reply_db_error(qr, status, errmsg);
        free(qr);
        return;
    }
    es_buf_reset(b);
    int rc = es_query_saga_json(b, res);
    if (rc == 0) {
        reply_json(qr, 200);
    } else if (rc == 1) {
        char msg[400];
        snprintf(msg, sizeof(msg),
                 "no saga \"%s\": neither a saga id nor the id of an order or a transfer (the "
                 "coordinator forgets sagas that ended longer ago than its retention; the log "
                 "keeps their records: esctl replay --correlation SAGA_ID)",
                 qr->id);
        reply_error(qr->srv, qr->req, qr->route, &qr->t0, 404, msg);
    } else {
        es_log_warn("could not render a saga", "saga=%s fields=%d", qr->id, PQnfields(res));
        reply_error(qr->srv, qr->req, qr->route, &qr->t0, 500, "internal error: unexpected result");
    }
    free(qr);
}

static void on_sagas(es_query_status_t status, const PGresult *res, const char *errmsg,
                     void *opaque)
{
    query_req_t *qr = opaque;
    es_buf_t *b = &qr->srv->body;
    if (status != ES_QUERY_OK) {
        reply_db_error(qr, status, errmsg);
    } else {
        es_buf_reset(b);
        if (es_query_sagas_json(b, res) == 0) {
            reply_json(qr, 200);
        } else {
            es_log_warn("could not render the saga list", "fields=%d", PQnfields(res));
            reply_error(qr->srv, qr->req, qr->route, &qr->t0, 500,
                        "internal error: unexpected result");
        }
    }
    free(qr);
}

/* The statements' parameters for the ends read from Kafka (ends_refresh). */
static void ends_params(const es_query_server_t *srv, const char *params[3])
{
    params[0] = (const char *)srv->ends_topics.data;
    params[1] = (const char *)srv->ends_parts.data;
    params[2] = (const char *)srv->ends_highs.data;
}

/* At the start of a /metrics: ask for fresh ends, and take the last ones read. */
static void ends_refresh(es_query_server_t *srv)
{
    es_query_ends_want(srv->ends);
    srv->ends_age_ms =
        es_query_ends_literals(srv->ends, &srv->ends_topics, &srv->ends_parts, &srv->ends_highs);
    if (srv->ends_age_ms < -1) { /* out of memory: no Kafka ends this time */
        es_buf_t *b[3] = {&srv->ends_topics, &srv->ends_parts, &srv->ends_highs};
        for (int i = 0; i < 3; i++) {
            es_buf_reset(b[i]);
            es_buf_append(b[i], "{}", 3);
        }
        srv->ends_age_ms = -1;
    }
}

/* Render `res`'s rows (label1 value, label2 value, number) as `name{l1="..",l2=".."} n` lines
 * into `cache` (reset first); what the query said when it failed goes to the log as `what`. */
static void metric_rows(es_buf_t *cache, const char *name, const char *l1, const char *l2,
                        es_query_status_t status, const PGresult *res, const char *errmsg,
                        const char *what)
{
    es_buf_reset(cache);
    if (status == ES_QUERY_OK && PQnfields(res) == 3) {
        for (int i = 0; i < PQntuples(res); i++) {
            es_buf_printf(cache, "%s{%s=\"", name, l1);
            es_query_metrics_label(cache, PQgetvalue(res, i, 0));
            es_buf_printf(cache, "\",%s=\"", l2);
            es_query_metrics_label(cache, PQgetvalue(res, i, 1));
            es_buf_printf(cache, "\"} %s\n", PQgetvalue(res, i, 2));
        }
    } else if (status != ES_QUERY_MISSING) {
        es_log_warn(what, "error=\"%s\"", errmsg ? errmsg : "");
    }
}

/* The last stage of /metrics: every consumer's lag per topic, cached like the rest. */
static void on_consumer_lag(es_query_status_t status, const PGresult *res, const char *errmsg,
                            void *opaque)
{
    query_req_t *qr = opaque;
    metric_rows(&qr->srv->consumer_lag, "es_consumer_lag_records", "consumer", "topic", status, res,
                errmsg, "could not read the consumers' lag");
    reply_metrics(qr);
    free(qr);
}

/* The next stage of /metrics: how many rows the growing tables hold, cached like the rest. */
static void on_storage(es_query_status_t status, const PGresult *res, const char *errmsg,
                       void *opaque)
{
    query_req_t *qr = opaque;
    metric_rows(&qr->srv->storage, "es_table_rows", "schema", "table", status, res, errmsg,
                "could not read the table sizes");
    const char *why = NULL;
    const char *params[3];
    ends_params(qr->srv, params);
    if (es_query_pool_submit(qr->srv->pool, Q_CONSUMER_LAG, params, on_consumer_lag, qr, &why) ==
        0) {
        return;
    }
    es_buf_reset(&qr->srv->consumer_lag);
    reply_metrics(qr);
    free(qr);
}

/* The next stage of /metrics: the saga families, cached for when the pool is saturated. Their
 * tables missing (no coordinator yet) leaves them out; the page is answered either way. */
static void on_saga_metrics(es_query_status_t status, const PGresult *res, const char *errmsg,
                            void *opaque)
{
    query_req_t *qr = opaque;
    es_buf_t *cache = &qr->srv->saga_metrics;
    es_buf_reset(cache);
    if (status == ES_QUERY_OK) {
        if (es_query_saga_metrics_text(cache, res) != 0) {
            es_log_warn("could not render the saga metrics", "fields=%d", PQnfields(res));
            es_buf_reset(cache);
        }
    } else if (status != ES_QUERY_MISSING) {
        es_log_warn("could not read the saga metrics", "error=\"%s\"", errmsg ? errmsg : "");
    }
    const char *why = NULL;
    const char *params[1] = {NULL};
    if (es_query_pool_submit(qr->srv->pool, Q_STORAGE, params, on_storage, qr, &why) == 0) {
        return;
    }
    es_buf_reset(&qr->srv->storage);
    es_buf_reset(&qr->srv->consumer_lag);
    reply_metrics(qr);
    free(qr);
}

static void reply_health_down(query_req_t *qr, const char *reason)
{
    es_query_pool_stats_t st;
    es_query_pool_stats(qr->srv->pool, &st);
    add_retry_after(qr);
    es_buf_t *b = &qr->srv->body;
    es_buf_reset(b);
    es_buf_puts(b, "{\"status\":\"unavailable\",\"reason\":");
    es_query_json_str(b, reason && *reason ? reason : "no database connection");
    es_buf_printf(b, ",\"circuit\":\"%s\"}\n", es_breaker_state_name(st.circuit));
    reply_json(qr, 503);
}

static void on_health(es_query_status_t status, const PGresult *res, const char *errmsg,
                      void *opaque)
{
    (void)res;
    query_req_t *qr = opaque;
    if (status == ES_QUERY_OK) {
        es_query_pool_stats_t st;
        es_query_pool_stats(qr->srv->pool, &st);
        es_buf_reset(&qr->srv->body);
        es_buf_printf(&qr->srv->body, "{\"status\":\"ok\",\"circuit\":\"%s\"}\n",
                      es_breaker_state_name(st.circuit));
        reply_json(qr, 200);
    } else {
        reply_health_down(qr, errmsg);
    }
    free(qr);
}

static const char *const projection_names[2] = {"ledger", "shop"};

/* Rebuild projection `p`'s cached gauges from its positions query (`res` NULL: none known). */
static void positions_cache_update(es_query_server_t *srv, int p, const PGresult *res)
{
    es_buf_reset(&srv->lag[p]);
    es_buf_reset(&srv->pos[p]);
    if (!res || PQnfields(res) < 4) {
        return;
    }
    for (int i = 0; i < PQntuples(res); i++) {
        es_buf_printf(&srv->lag[p], "es_projection_lag_records{projection=\"%s\",topic=\"",
                      projection_names[p]);
        es_query_metrics_label(&srv->lag[p], PQgetvalue(res, i, 0));
        es_buf_printf(&srv->lag[p], "\",partition=\"%s\"} %s\n", PQgetvalue(res, i, 1),
                      PQgetvalue(res, i, 3));
        es_buf_printf(&srv->pos[p], "es_projection_position{projection=\"%s\",topic=\"",
                      projection_names[p]);
        es_query_metrics_label(&srv->pos[p], PQgetvalue(res, i, 0));
        es_buf_printf(&srv->pos[p], "\",partition=\"%s\"} %s\n", PQgetvalue(res, i, 1),
                      PQgetvalue(res, i, 2));
    }
}

/* The metrics page: HTTP counters, pool gauges, the saga families and the projection gauges
 * from the last positions and saga metrics queries. */
static void reply_metrics(query_req_t *qr)
{
    es_query_server_t *srv = qr->srv;
    es_buf_t *b = &srv->body;
    es_query_pool_stats_t st;
    es_query_pool_stats(srv->pool, &st);
    es_buf_reset(b);
    es_query_metrics_render(&srv->metrics, b);
    es_buf_printf(b,
                  "# HELP es_db_pool_connections PostgreSQL connections of the pool, by state.\n"
                  "# TYPE es_db_pool_connections gauge\n"
                  "es_db_pool_connections{state=\"idle\"} %d\n"
                  "es_db_pool_connections{state=\"busy\"} %d\n"
                  "es_db_pool_connections{state=\"down\"} %d\n"
                  "# HELP es_http_queue_depth Requests waiting for a database connection.\n"
                  "# TYPE es_http_queue_depth gauge\n"
                  "es_http_queue_depth %zu\n"
                  "# HELP es_db_circuit_state The database circuit breaker's state (1: current).\n"
                  "# TYPE es_db_circuit_state gauge\n"
                  "es_db_circuit_state{state=\"closed\"} %d\n"
                  "es_db_circuit_state{state=\"open\"} %d\n"
                  "es_db_circuit_state{state=\"half_open\"} %d\n"
                  "# HELP es_db_circuit_opened_total Times the circuit breaker opened.\n"
                  "# TYPE es_db_circuit_opened_total counter\n"
                  "es_db_circuit_opened_total %llu\n"
                  "# HELP es_db_circuit_rejected_total Queries the open circuit refused at once.\n"
                  "# TYPE es_db_circuit_rejected_total counter\n"
                  "es_db_circuit_rejected_total %llu\n",
                  st.idle, st.busy, st.down, st.queued, st.circuit == ES_BREAKER_CLOSED,
                  st.circuit == ES_BREAKER_OPEN, st.circuit == ES_BREAKER_HALF_OPEN,
                  (unsigned long long)st.circuit_opened, (unsigned long long)st.circuit_rejected);
    es_buf_append(b, srv->saga_metrics.data, srv->saga_metrics.len);
    if (srv->storage.len > 0) {
        es_buf_puts(b, "# HELP es_table_rows Rows in the tables that grow with traffic (dedup "
                       "marks, saga timelines, outbox; the statistics' live-row estimate).\n"
                       "# TYPE es_table_rows gauge\n");
        es_buf_append(b, srv->storage.data, srv->storage.len);
    }
    if (srv->lag[0].len + srv->lag[1].len > 0) {
        es_buf_puts(b, "# HELP es_projection_lag_records Records a projector has yet to apply "
                       "(high watermark - next offset).\n"
                       "# TYPE es_projection_lag_records gauge\n");
        for (int p = 0; p < 2; p++) {
            es_buf_append(b, srv->lag[p].data, srv->lag[p].len);
        }
        es_buf_puts(b, "# HELP es_projection_position Next offset a projector will apply.\n"
                       "# TYPE es_projection_position gauge\n");
        for (int p = 0; p < 2; p++) {
            es_buf_append(b, srv->pos[p].data, srv->pos[p].len);
        }
    }
    if (srv->consumer_lag.len > 0) {
        es_buf_puts(b, "# HELP es_consumer_lag_records Records a consumer (a service, projector "
                       "or the saga coordinator, named by its schema) has yet to apply, per "
                       "topic: the partitions' newest ends known (Kafka's, or any consumer's) "
                       "minus its stored positions.\n"
                       "# TYPE es_consumer_lag_records gauge\n");
        es_buf_append(b, srv->consumer_lag.data, srv->consumer_lag.len);
    }
    if (srv->ends && srv->ends_age_ms >= 0) {
        es_buf_printf(b,
                      "# HELP es_log_ends_age_seconds How old the partitions' ends read from "
                      "Kafka for the lags are.\n"
                      "# TYPE es_log_ends_age_seconds gauge\n"
                      "es_log_ends_age_seconds %.3f\n",
                      (double)srv->ends_age_ms / 1000.0);
    }
    reply(srv, qr->req, qr->route, &qr->t0, 200, "text/plain; version=0.0.4; charset=utf-8");
}

/* The metrics wait for the ledger's positions, then the shop's (absent without its projector),
 * then the saga coordinator's figures (absent without it). */
static void on_positions(es_query_status_t status, const PGresult *res, const char *errmsg,
                         void *opaque)
{
    query_req_t *qr = opaque;
    int p = qr->shop_tried; /* 0: the ledger's answer, 1: the shop's */
    if (status != ES_QUERY_OK && status != ES_QUERY_MISSING) {
        es_log_warn("could not read projection positions", "projection=%s error=\"%s\"",
                    projection_names[p], errmsg ? errmsg : "");
    }
    positions_cache_update(qr->srv, p, status == ES_QUERY_OK ? res : NULL);
    const char *why = NULL;
    const char *params[3];
    ends_params(qr->srv, params);
    if (p == 0) {
        qr->shop_tried = 1;
        if (es_query_pool_submit(qr->srv->pool, Q_SHOP_POSITIONS, params, on_positions, qr, &why) ==
            0) {
            return;
        }
        positions_cache_update(qr->srv, 1, NULL);
    }
    if (es_query_pool_submit(qr->srv->pool, Q_SAGA_METRICS, params, on_saga_metrics, qr, &why) ==
        0) {
        return;
    }
    es_buf_reset(&qr->srv->saga_metrics);
    es_buf_reset(&qr->srv->storage);
    es_buf_reset(&qr->srv->consumer_lag);
    reply_metrics(qr);
    free(qr);
}

/* Parse the query string of `uri` (when it has one) into `args` (caller storage, emptied
 * first; clear it with evhttp_clear_headers). Empty parameters are nothing, wherever they are
 * ("?&limit=1", "?limit=1&&before=9", "?limit=1&": libevent refused the first two and took
 * the last). Returns 0, or -1 with errstr when libevent cannot parse it. */
static int query_args(const struct evhttp_uri *uri, struct evkeyvalq *args, char *errstr,
                      size_t errstr_size)
{
    TAILQ_INIT(args);
    const char *q = uri ? evhttp_uri_get_query(uri) : NULL;
    char *tidy = q ? malloc(strlen(q) + 1) : NULL;
    if (q && !tidy) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    size_t n = 0;
    for (const char *p = q; p && *p; p++) {
        if (*p != '&' || (n > 0 && tidy[n - 1] != '&')) {
            tidy[n++] = *p;
        }
    }
    if (n > 0 && tidy[n - 1] == '&') {
        n--;
    }
    if (tidy) {
        tidy[n] = '\0';
    }
    int bad = n > 0 && evhttp_parse_query_str(tidy, args) != 0;
    free(tidy);
    if (bad) {
        evhttp_clear_headers(args);
        snprintf(errstr, errstr_size, "malformed query string");
        return -1;
    }
    /* a decoded NUL would cut a value short unseen ("limit=5%00junk" read as 5) */
    for (const char *p = q; p && (p = strchr(p, '%')) != NULL; p++) {
        if (p[1] == '0' && p[2] == '0') {
            evhttp_clear_headers(args);
            snprintf(errstr, errstr_size, "a query value holds an encoded NUL character (%%00)");
            return -1;
        }
    }
    return 0;
}

/* The paging query string of /accounts/{id}/entries (`limit`, `before` = an entry's seq) and
 * of /users/{id}/orders (`limit`, `before` = "<placed_at in us>:<order id>", as the previous
 * page's `next` gives it): fills qr->limit, before (an integer as text) and before_id (the
 * order id, "" for entries). Returns 0, or -1 with errstr. */
static int parse_page_query(const struct evkeyvalq *args, query_req_t *qr, char *before,
                            size_t before_size, char *before_id, size_t before_id_size,
                            char *errstr, size_t errstr_size)
{
    qr->limit = ENTRIES_LIMIT_DEFAULT;
    snprintf(before, before_size, "%" PRId64, INT64_MAX);
    before_id[0] = '\0';
    int rc = 0;
    const char *v = evhttp_find_header(args, "limit");
    if (v) {
        int64_t n;
        if (es_query_parse_uint(v, ENTRIES_LIMIT_MAX, &n) != 0 || n < 1) {
            snprintf(errstr, errstr_size, "malformed limit: expected an integer 1..%d",
                     ENTRIES_LIMIT_MAX);
            rc = -1;
        } else {
            qr->limit = n;
        }
    }
    v = evhttp_find_header(args, "before");
    if (rc == 0 && v) {
        int orders = qr->route == ES_ROUTE_USER_ORDERS;
        char num[24];
        const char *colon = orders ? strchr(v, ':') : NULL;
        size_t numlen = colon ? (size_t)(colon - v) : strlen(v);
        int64_t n;
        int ok = numlen < sizeof(num);
        if (ok) {
            memcpy(num, v, numlen);
            num[numlen] = '\0';
            ok = es_query_parse_uint(num, INT64_MAX, &n) == 0;
        }
        if (ok && orders) {
            ok = colon && es_query_id_valid(colon + 1, strlen(colon + 1)) &&
                 strlen(colon + 1) < before_id_size;
        }
        if (!ok) {
            snprintf(errstr, errstr_size, "%s",
                     orders ? "malformed before: expected <microseconds>:<order id>, as the "
                              "previous page's next link gives it"
                            : "malformed before: expected a non-negative integer");
            rc = -1;
        } else {
            snprintf(before, before_size, "%" PRId64, n);
            if (orders) {
                snprintf(before_id, before_id_size, "%s", colon + 1);
            }
        }
    }
    return rc;
}

/* The names of the query string's parameters (`args`) against what `route` takes (routes.h):
 * 0, or -1 with errstr for a 400 (a name the route does not take or one given twice). */
static int check_query(const struct evkeyvalq *args, es_query_route_t route, char *errstr,
                       size_t errstr_size)
{
    const char *names[8];
    size_t n = 0;
    int rc = 0;
    struct evkeyval *kv;
    TAILQ_FOREACH(kv, args, next)
    {
        if (n == sizeof(names) / sizeof(*names)) {
            snprintf(errstr, errstr_size, "too many query parameters");
            rc = -1;
            break;
        }
        names[n++] = kv->key;
    }
    if (rc == 0) {
        rc = es_query_params_check(route, names, n, errstr, errstr_size);
    }
    return rc;
}

/* Answer a request for a route (`path`, `t0` borrowed) whose query string (`args`, borrowed)
 * passed check_query: its statement goes to the pool, or the answer goes at once. */
static void submit_query(es_query_server_t *srv, struct evhttp_request *req,
                         const es_query_path_t *path, const struct timespec *t0,
                         const struct evkeyvalq *args)
{
    char errstr[256];
    query_req_t *qr = calloc(1, sizeof(*qr));
    if (!qr) {
        reply_error(srv, req, path->route, t0, 500, "internal error: out of memory");
        return;
    }
    qr->srv = srv;
    qr->req = req;
    qr->route = path->route;
    qr->t0 = *t0;
    memcpy(qr->id, path->id, sizeof(qr->id));

    const char *params[4] = {qr->id, NULL, NULL, NULL};
    char before[24], limit_plus_one[24], before_id[ES_QUERY_ID_MAX + 1];
    es_query_sagas_params_t sagas_params;
    int stmt;
    es_query_cb_t *cb;
    switch (path->route) {
    case ES_ROUTE_ACCOUNT:
        stmt = Q_ACCOUNT;
        cb = on_account;
        break;
    case ES_ROUTE_ENTRIES:
    case ES_ROUTE_USER_ORDERS:
        if (parse_page_query(args, qr, before, sizeof(before), before_id, sizeof(before_id), errstr,
                             sizeof(errstr)) != 0) {
            reply_error(srv, req, path->route, t0, 400, errstr);
            free(qr);
            return;
        }
        snprintf(limit_plus_one, sizeof(limit_plus_one), "%" PRId64, qr->limit + 1);
        params[1] = before;
        if (path->route == ES_ROUTE_ENTRIES) {
            params[2] = limit_plus_one;
            stmt = Q_ENTRIES;
            cb = on_entries;
        } else {
            params[2] = before_id;
            params[3] = limit_plus_one;
            stmt = Q_USER_ORDERS;
            cb = on_user_orders;
        }
        break;
    case ES_ROUTE_USER:
        stmt = Q_USER;
        cb = on_user;
        break;
    case ES_ROUTE_PRODUCT:
        stmt = Q_PRODUCT;
        cb = on_product;
        break;
    case ES_ROUTE_ORDER:
        stmt = Q_ORDER;
        cb = on_order;
        break;
    case ES_ROUTE_TRANSFER:
        stmt = Q_TRANSFER;
        cb = on_transfer;
        break;
    case ES_ROUTE_COMMAND:
        stmt = Q_COMMAND;
        cb = on_command;
        break;
    case ES_ROUTE_SAGA:
        stmt = Q_SAGA;
        cb = on_saga;
        break;
    case ES_ROUTE_SAGAS:
        if (es_query_sagas_params(args, &sagas_params, errstr, sizeof(errstr)) != 0) {
            reply_error(srv, req, path->route, t0, 400, errstr);
            free(qr);
            return;
        }
        for (int i = 0; i < ES_QUERY_SAGAS_NPARAMS; i++) {
            params[i] = sagas_params.values[i];
        }
        stmt = Q_SAGAS;
        cb = on_sagas;
        break;
    case ES_ROUTE_HEALTH:
        stmt = Q_HEALTH;
        cb = on_health;
        break;
    case ES_ROUTE_METRICS: {
        /* Metrics must answer while the pool is saturated (that is when they matter): then
         * the projection gauges come from the last query instead of waiting in the queue. */
        es_query_pool_stats_t st;
        es_query_pool_stats(srv->pool, &st);
        if (st.idle == 0) {
            reply_metrics(qr);
            free(qr);
            return;
        }
        ends_refresh(srv);
        ends_params(srv, params);
        stmt = Q_POSITIONS;
        cb = on_positions;
        break;
    }
    default:
        reply_error(srv, req, path->route, t0, 404, "no such route");
        free(qr);
        return;
    }

    const char *why = NULL;
    if (es_query_pool_submit(srv->pool, stmt, params, cb, qr, &why) != 0) {
        if (path->route == ES_ROUTE_HEALTH) {
            reply_health_down(qr, why);
        } else if (path->route == ES_ROUTE_METRICS) {
            positions_cache_update(srv, 0, NULL);
            positions_cache_update(srv, 1, NULL);
            es_buf_reset(&srv->saga_metrics);
            es_buf_reset(&srv->storage);
            es_buf_reset(&srv->consumer_lag);
            reply_metrics(qr);
        } else {
            reply_db_error(qr, ES_QUERY_UNAVAILABLE, why);
        }
        free(qr);
    }
}

static void on_request(struct evhttp_request *req, void *arg)
{
    es_query_server_t *srv = arg;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    srv->inflight++;

    char errstr[256];
    es_query_path_t path;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *raw = uri ? evhttp_uri_get_path(uri) : NULL;
    int prc = es_query_route_parse(raw, &path, errstr, sizeof(errstr));

    /* libevent 2.1 answers past its own limits with an HTML 413 (body) or a 400 (headers);
     * below those, our tighter limits answer in JSON. */
    size_t header_bytes = 0;
    struct evkeyval *h;
    TAILQ_FOREACH(h, evhttp_request_get_input_headers(req), next)
    {
        header_bytes += strlen(h->key) + strlen(h->value) + 4;
    }
    if (header_bytes > HTTP_MAX_HEADERS_SIZE) {
        reply_error(srv, req, path.route, &t0, 413, "request headers too large");
        return;
    }
    if (evbuffer_get_length(evhttp_request_get_input_buffer(req)) > HTTP_MAX_BODY_SIZE) {
        reply_error(srv, req, path.route, &t0, 413, "request body too large");
        return;
    }

    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
        char msg[64];
        snprintf(msg, sizeof(msg), "method %s not allowed", method_name(cmd));
        reply_error(srv, req, path.route, &t0, 405, msg);
        return;
    }
    if (prc != 0) {
        reply_error(srv, req, path.route, &t0, 400, errstr);
        return;
    }
    if (path.route == ES_ROUTE_NONE) {
        reply_error(srv, req, ES_ROUTE_NONE, &t0, 404, "no such route");
        return;
    }
    /* the query string, parsed once: its names checked here, its values read by the route */
    struct evkeyvalq args;
    if (query_args(uri, &args, errstr, sizeof(errstr)) != 0 ||
        check_query(&args, path.route, errstr, sizeof(errstr)) != 0) {
        reply_error(srv, req, path.route, &t0, 400, errstr);
    } else {
        submit_query(srv, req, &path, &t0, &args);
    }
    evhttp_clear_headers(&args);
}

/* ---- lifecycle ---- */

static void on_accept_rested(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    es_query_server_t *srv = arg;
    if (srv->bound && !srv->draining) {
        evconnlistener_enable(evhttp_bound_socket_get_listener(srv->bound));
    }
}

/* The server whose listener reports accept errors: libevent calls the error callback with the
 * listener's own argument (its struct evhttp), so the one server a process runs is found here. */
static es_query_server_t *accept_srv;

/* accept() failed: with no file descriptor left it would fail again at once, and libevent
 * retried in a busy loop, logging every failure (a million lines in 3 s, no request answered
 * meanwhile). The listener rests instead, and the failures are told in one line a while. */
static void on_accept_error(struct evconnlistener *lev, void *arg)
{
    (void)arg; /* libevent's: the struct evhttp */
    es_query_server_t *srv = accept_srv;
    if (!srv) {
        return;
    }
    int err = EVUTIL_SOCKET_ERROR();
    srv->accept_failures++;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (srv->accept_warned.tv_sec == 0 || elapsed_s(&srv->accept_warned, &now) >= ACCEPT_WARN_S) {
        es_log_warn("could not accept connections: resting",
                    "error=\"%s\" failures=%lld rest_ms=%d", evutil_socket_error_to_string(err),
                    (long long)srv->accept_failures, ACCEPT_REST_MS);
        srv->accept_warned = now;
        srv->accept_failures = 0;
    }
    if (srv->accept_timer) {
        evconnlistener_disable(lev);
        struct timeval tv = {0, ACCEPT_REST_MS * 1000};
        evtimer_add(srv->accept_timer, &tv);
    }
}

/* Raise the soft limit on open files to the hard one: each connection holds one. */
static void nofile_raise(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

es_query_server_t *es_query_server_new(struct event_base *base, const es_query_server_conf_t *conf,
                                       char *errstr, size_t errstr_size)
{
    es_query_server_t *srv = calloc(1, sizeof(*srv));
    if (!srv) {
        snprintf(errstr, errstr_size, "could not start the http server: out of memory");
        return NULL;
    }
    srv->base = base;
    es_buf_init(&srv->body);
    for (int p = 0; p < 2; p++) {
        es_buf_init(&srv->lag[p]);
        es_buf_init(&srv->pos[p]);
    }
    es_buf_init(&srv->saga_metrics);
    es_buf_init(&srv->storage);
    es_buf_init(&srv->consumer_lag);
    es_buf_init(&srv->ends_topics);
    es_buf_init(&srv->ends_parts);
    es_buf_init(&srv->ends_highs);
    srv->ends = conf->ends;
    srv->ends_age_ms = -1;
    es_query_metrics_init(&srv->metrics);
    const char *lvl = getenv("ES_LOG_LEVEL");
    srv->debug = lvl && !strcmp(lvl, "debug");

    nofile_raise();
    srv->http = evhttp_new(base);
    if (!srv->http) {
        snprintf(errstr, errstr_size, "could not start the http server: out of memory");
        goto err;
    }
    /* Accept every method so that we answer 405 with Allow ourselves (libevent says 501). */
    evhttp_set_allowed_methods(srv->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                              EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                              EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                              EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_max_headers_size(srv->http, HTTP_HARD_HEADERS_SIZE);
    evhttp_set_max_body_size(srv->http, HTTP_HARD_BODY_SIZE);
    evhttp_set_timeout(srv->http, HTTP_TIMEOUT_S);
    evhttp_set_gencb(srv->http, on_request, srv);

    srv->bound = evhttp_bind_socket_with_handle(srv->http, conf->bind, (ev_uint16_t)conf->port);
    if (!srv->bound) {
        snprintf(errstr, errstr_size, "could not listen on %s:%d: %s", conf->bind, conf->port,
                 strerror(errno));
        goto err;
    }
    srv->port = conf->port;
    srv->accept_timer = evtimer_new(base, on_accept_rested, srv);
    accept_srv = srv;
    evconnlistener_set_error_cb(evhttp_bound_socket_get_listener(srv->bound), on_accept_error);
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof(ss);
    if (getsockname(evhttp_bound_socket_get_fd(srv->bound), (struct sockaddr *)&ss, &sslen) == 0) {
        if (ss.ss_family == AF_INET) {
            srv->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            srv->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        }
    }

    srv->pool = es_query_pool_new(base, conf->conninfo, conf->pool_size, statements, Q__CNT,
                                  conf->queue_timeout_ms, conf->breaker_failures,
                                  conf->breaker_cooldown_ms, errstr, errstr_size);
    if (!srv->pool) {
        goto err;
    }
    return srv;
err:
    es_query_server_destroy(srv);
    return NULL;
}

int es_query_server_port(const es_query_server_t *srv)
{
    return srv->port;
}

static void on_drain_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    es_query_server_t *srv = arg;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double total_ms = elapsed_s(&srv->drain_start, &now) * 1000.0;
    double since_reply_ms = elapsed_s(&srv->last_reply, &now) * 1000.0;
    /* A reply whose connection died never reports completion: wait for it only a little. */
    int done = srv->inflight == 0 && (srv->unflushed == 0 || since_reply_ms > DRAIN_FLUSH_GRACE_MS);
    if (!done && total_ms < srv->drain_max_ms) {
        struct timeval tv = {0, 20 * 1000};
        evtimer_add(srv->drain_timer, &tv);
        return;
    }
    if (!done) {
        es_log_warn("stopping with requests in hand", "inflight=%zu unflushed=%zu", srv->inflight,
                    srv->unflushed);
    }
    if (srv->drained) {
        srv->drained(srv->drained_opaque);
    }
}

void es_query_server_drain(es_query_server_t *srv, int max_ms, void (*drained)(void *),
                           void *opaque)
{
    if (srv->draining) {
        return;
    }
    srv->draining = 1;
    srv->drained = drained;
    srv->drained_opaque = opaque;
    srv->drain_max_ms = max_ms;
    clock_gettime(CLOCK_MONOTONIC, &srv->drain_start);
    if (srv->bound) {
        evhttp_del_accept_socket(srv->http, srv->bound);
        srv->bound = NULL;
    }
    es_log_info("draining", "inflight=%zu", srv->inflight);
    srv->drain_timer = evtimer_new(srv->base, on_drain_tick, srv);
    if (!srv->drain_timer) {
        if (drained) {
            drained(opaque);
        }
        return;
    }
    struct timeval tv = {0, 0};
    evtimer_add(srv->drain_timer, &tv);
}

void es_query_server_destroy(es_query_server_t *srv)
{
    if (!srv) {
        return;
    }
    /* The http server first: it frees the requests it still holds; then the pool, which drops
     * its jobs without calling back into requests that no longer exist. */
    if (srv->http) {
        evhttp_free(srv->http);
    }
    es_query_pool_destroy(srv->pool);
    if (srv->drain_timer) {
        event_free(srv->drain_timer);
    }
    if (srv->accept_timer) {
        event_free(srv->accept_timer);
    }
    if (accept_srv == srv) {
        accept_srv = NULL;
    }
    es_buf_fini(&srv->body);
    for (int p = 0; p < 2; p++) {
        es_buf_fini(&srv->lag[p]);
        es_buf_fini(&srv->pos[p]);
    }
    es_buf_fini(&srv->saga_metrics);
    es_buf_fini(&srv->storage);
    es_buf_fini(&srv->consumer_lag);
    es_buf_fini(&srv->ends_topics);
    es_buf_fini(&srv->ends_parts);
    es_buf_fini(&srv->ends_highs);
    free(srv);
}
