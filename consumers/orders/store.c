/*
 * store.c: the orders, users and prices tables, loaded and saved per batch (see store.h).
 */
#include "store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "pg.h"
#include "str.h"

/* orders: fillfactor 80 leaves room on each page for the status updates to stay HOT. */
const char orders_store_ddl[] =
    "CREATE TABLE IF NOT EXISTS orders ("
    " order_id text PRIMARY KEY, user_id text NOT NULL, account_id text NOT NULL,"
    " items jsonb NOT NULL, total bigint NOT NULL, status text NOT NULL CHECK (status IN"
    " ('PENDING', 'CONFIRMED', 'REJECTED', 'CANCELLED')), reason text NOT NULL,"
    " version bigint NOT NULL) WITH (fillfactor = 80);"
    /* the order's saga (PlaceOrder's correlation id), which its cancellation joins */
    "ALTER TABLE orders ADD COLUMN IF NOT EXISTS correlation_id text NOT NULL DEFAULT '';"
    /* No query looks inside the items, so ANALYZE gathers no statistics on them: sorting a
     * sample of 30,000 jsonb values took a fifth of PostgreSQL's CPU at 500 orders/s while
     * autovacuum analyzed the growing tables */
    "ALTER TABLE orders ALTER COLUMN items SET STATISTICS 0;"
    "CREATE TABLE IF NOT EXISTS users ("
    " user_id text PRIMARY KEY, active boolean NOT NULL, version bigint NOT NULL);"
    "CREATE TABLE IF NOT EXISTS prices ("
    " product_id text PRIMARY KEY, price bigint NOT NULL, version bigint NOT NULL);";

/* One row of orders_store_load(): fills out[i]. */
static void orders_store_load_row(const PGresult *res, int r, size_t i, void *opaque)
{
    order_t *out = opaque;
    order_t *o = &out[i];
    es_str_copy(o->user_id, sizeof(o->user_id), PQgetvalue(res, r, 1));
    es_str_copy(o->account_id, sizeof(o->account_id), PQgetvalue(res, r, 2));
    o->total = strtoll(PQgetvalue(res, r, 3), NULL, 10);
    o->status = orders_status_parse(PQgetvalue(res, r, 4));
    es_str_copy(o->reason, sizeof(o->reason), PQgetvalue(res, r, 5));
    o->version = strtoll(PQgetvalue(res, r, 6), NULL, 10);
    es_str_copy(o->correlation_id, sizeof(o->correlation_id), PQgetvalue(res, r, 7));
}

int orders_store_load_queue(es_pg_pipeline_t *pl, const char *const *ids, size_t n)
{
    return es_pg_load_rows_queue(pl,
                                 "SELECT order_id, user_id, account_id, total, status, "
                                 "reason, version, correlation_id FROM unnest($1::text[]) AS u(id) "
                                 "JOIN orders t ON t.order_id = u.id "
                                 "ORDER BY order_id FOR UPDATE OF t",
                                 ids, n);
}

void orders_store_load_apply(const PGresult *res, const char *const *ids, size_t n, order_t *out)
{
    for (size_t i = 0; i < n; i++) {
        memset(&out[i], 0, sizeof(out[i]));
        es_str_copy(out[i].id, sizeof(out[i].id), ids[i]);
    }
    es_pg_load_rows_apply(res, ids, n, orders_store_load_row, out);
}

/* One row of orders_store_load_users(): fills out[i]. */
static void orders_store_load_users_row(const PGresult *res, int r, size_t i, void *opaque)
{
    orders_user_t *out = opaque;
    out[i].active = PQgetvalue(res, r, 1)[0] == 't';
    out[i].version = strtoll(PQgetvalue(res, r, 2), NULL, 10);
}

int orders_store_load_users_queue(es_pg_pipeline_t *pl, const char *const *ids, size_t n)
{
    return es_pg_load_rows_queue(pl,
                                 "SELECT user_id, active, version FROM unnest($1::text[]) "
                                 "AS u(id) JOIN users t ON t.user_id = u.id",
                                 ids, n);
}

void orders_store_load_users_apply(const PGresult *res, const char *const *ids, size_t n,
                                   orders_user_t *out)
{
    for (size_t i = 0; i < n; i++) {
        memset(&out[i], 0, sizeof(out[i]));
        es_str_copy(out[i].id, sizeof(out[i].id), ids[i]);
    }
    es_pg_load_rows_apply(res, ids, n, orders_store_load_users_row, out);
}

/* One row of orders_store_load_prices(): fills out[i]. */
static void orders_store_load_prices_row(const PGresult *res, int r, size_t i, void *opaque)
{
    orders_price_t *out = opaque;
    out[i].price = strtoll(PQgetvalue(res, r, 1), NULL, 10);
    out[i].version = strtoll(PQgetvalue(res, r, 2), NULL, 10);
}

int orders_store_load_prices_queue(es_pg_pipeline_t *pl, const char *const *ids, size_t n)
{
    return es_pg_load_rows_queue(pl,
                                 "SELECT product_id, price, version FROM unnest($1::text[]) "
                                 "AS u(id) JOIN prices t ON t.product_id = u.id",
                                 ids, n);
}

void orders_store_load_prices_apply(const PGresult *res, const char *const *ids, size_t n,
                                    orders_price_t *out)
{
    for (size_t i = 0; i < n; i++) {
        memset(&out[i], 0, sizeof(out[i]));
        es_str_copy(out[i].id, sizeof(out[i].id), ids[i]);
    }
    es_pg_load_rows_apply(res, ids, n, orders_store_load_prices_row, out);
}

/* Write an order's lines as a JSON array into `buf` (reset first). Product ids are valid ids
 * ([A-Za-z0-9._:-], checked before an order is placed), so they need no escaping. Returns 0
 * or -1 (out of memory). */
static int lines_json(es_buf_t *buf, const order_t *o)
{
    es_buf_reset(buf);
    int rc = es_buf_puts(buf, "[");
    for (size_t k = 0; k < o->nlines && rc == 0; k++) {
        const order_line_t *l = &o->lines[k];
        rc = es_buf_printf(
            buf, "%s{\"product_id\":\"%s\",\"quantity\":%" PRId64 ",\"unit_price\":%" PRId64 "}",
            k ? "," : "", l->product_id, l->quantity, l->unit_price);
    }
    return rc == 0 ? es_buf_puts(buf, "]") : -1;
}

/* Queue the INSERT of the orders placed by this batch (dirty 2). Returns 0 or -1. */
static int save_placed(es_pg_pipeline_t *pl, const order_t *orders, const unsigned char *dirty,
                       size_t n)
{
    static const es_pg_oid_t oids[9] = {ES_PG_TEXT, ES_PG_TEXT, ES_PG_TEXT, ES_PG_TEXT, ES_PG_INT8,
                                        ES_PG_TEXT, ES_PG_TEXT, ES_PG_INT8, ES_PG_TEXT};
    es_pg_cols_t c;
    es_buf_t items;
    es_buf_init(&items);
    es_pg_cols_init(&c, oids, 9);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (dirty[i] != 2) {
            continue;
        }
        const order_t *o = &orders[i];
        rc = lines_json(&items, o);
        es_pg_array_add_text(&c.a[0], o->id);
        es_pg_array_add_text(&c.a[1], o->user_id);
        es_pg_array_add_text(&c.a[2], o->account_id);
        es_pg_array_add_bytes(&c.a[3], items.data, items.len);
        es_pg_array_add_int8(&c.a[4], o->total);
        es_pg_array_add_text(&c.a[5], orders_status_name(o->status));
        es_pg_array_add_text(&c.a[6], o->reason);
        es_pg_array_add_int8(&c.a[7], o->version);
        es_pg_array_add_text(&c.a[8], o->correlation_id);
    }
    es_buf_fini(&items);
    if (rc != 0) {
        es_pg_cols_fini(&c);
        return rc;
    }
    return es_pg_cols_queue(&c, pl,
                            "INSERT INTO orders (order_id, user_id, account_id, items, total, "
                            "status, reason, version, correlation_id) SELECT u.id, u.uid, u.acc, "
                            "u.items::jsonb, u.total, u.st, u.r, u.v, u.c FROM unnest($1::text[], "
                            "$2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[], "
                            "$7::text[], $8::bigint[], $9::text[]) AS u(id, uid, acc, items, "
                            "total, st, r, v, c)");
}

/* Queue the UPDATE of the stored orders this batch changed (dirty 1). Returns 0 or -1. */
static int save_changed(es_pg_pipeline_t *pl, const order_t *orders, const unsigned char *dirty,
                        size_t n)
{
    static const es_pg_oid_t oids[4] = {ES_PG_TEXT, ES_PG_TEXT, ES_PG_TEXT, ES_PG_INT8};
    es_pg_cols_t c;
    es_pg_cols_init(&c, oids, 4);
    for (size_t i = 0; i < n; i++) {
        if (dirty[i] != 1) {
            continue;
        }
        es_pg_array_add_text(&c.a[0], orders[i].id);
        es_pg_array_add_text(&c.a[1], orders_status_name(orders[i].status));
        es_pg_array_add_text(&c.a[2], orders[i].reason);
        es_pg_array_add_int8(&c.a[3], orders[i].version);
    }
    return es_pg_cols_queue(&c, pl,
                            "UPDATE orders o SET status = u.st, reason = u.r, version = u.v FROM "
                            "unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) "
                            "AS u(id, st, r, v) WHERE o.order_id = u.id");
}

int orders_store_save(es_pg_pipeline_t *pl, const order_t *orders, const unsigned char *dirty,
                      size_t n)
{
    if (save_placed(pl, orders, dirty, n) != 0) {
        return -1;
    }
    return save_changed(pl, orders, dirty, n);
}

int orders_store_save_users(es_pg_pipeline_t *pl, const orders_user_t *users,
                            const unsigned char *dirty, size_t n)
{
    static const es_pg_oid_t oids[3] = {ES_PG_TEXT, ES_PG_BOOL, ES_PG_INT8};
    es_pg_cols_t c;
    es_pg_cols_init(&c, oids, 3);
    for (size_t i = 0; i < n; i++) {
        if (!dirty[i]) {
            continue;
        }
        es_pg_array_add_text(&c.a[0], users[i].id);
        es_pg_array_add_bool(&c.a[1], users[i].active);
        es_pg_array_add_int8(&c.a[2], users[i].version);
    }
    /* in id order, so that two writers of the same rows never deadlock */
    return es_pg_cols_queue(&c, pl,
                            "INSERT INTO users AS t (user_id, active, version) SELECT * FROM "
                            "unnest($1::text[], $2::bool[], $3::bigint[]) AS u(id, a, v) "
                            "ORDER BY u.id ON CONFLICT (user_id) DO UPDATE SET "
                            "active = EXCLUDED.active, version = EXCLUDED.version "
                            "WHERE t.version < EXCLUDED.version");
}

int orders_store_save_prices(es_pg_pipeline_t *pl, const orders_price_t *prices,
                             const unsigned char *dirty, size_t n)
{
    static const es_pg_oid_t oids[3] = {ES_PG_TEXT, ES_PG_INT8, ES_PG_INT8};
    es_pg_cols_t c;
    es_pg_cols_init(&c, oids, 3);
    for (size_t i = 0; i < n; i++) {
        if (!dirty[i]) {
            continue;
        }
        es_pg_array_add_text(&c.a[0], prices[i].id);
        es_pg_array_add_int8(&c.a[1], prices[i].price);
        es_pg_array_add_int8(&c.a[2], prices[i].version);
    }
    /* in id order, so that two writers of the same rows never deadlock */
    return es_pg_cols_queue(&c, pl,
                            "INSERT INTO prices AS t (product_id, price, version) SELECT * FROM "
                            "unnest($1::text[], $2::bigint[], $3::bigint[]) AS u(id, p, v) "
                            "ORDER BY u.id ON CONFLICT (product_id) DO UPDATE SET "
                            "price = EXCLUDED.price, version = EXCLUDED.version "
                            "WHERE t.version < EXCLUDED.version");
}
