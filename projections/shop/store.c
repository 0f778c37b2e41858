/*
 * store.c: set-based reads and writes of the shop's read models (see store.h). Every write is
 * one statement per table and batch over arrays (unnest), never one per event, and merges
 * each column group under its own version, like the pure projection does.
 */
#include "store.h"

#include <stdlib.h>
#include <string.h>

#include "pg.h"
#include "str.h"

const char shop_store_ddl[] =
    "CREATE TABLE IF NOT EXISTS users (user_id text PRIMARY KEY, email text NOT NULL,"
    " name text NOT NULL, status text NOT NULL, version bigint NOT NULL,"
    " registered_at timestamptz NOT NULL, updated_at timestamptz NOT NULL);"
    /* price_version and stock_version: products are fed by their own events and by the lines
     * of orders' stock events, read from other partitions at another pace */
    "CREATE TABLE IF NOT EXISTS products (product_id text PRIMARY KEY, name text NOT NULL,"
    " price bigint NOT NULL, on_hand bigint NOT NULL, reserved bigint NOT NULL,"
    " version bigint NOT NULL, price_version bigint NOT NULL, stock_version bigint NOT NULL,"
    " updated_at timestamptz NOT NULL) WITH (fillfactor = 80);"
    /* status '' (and NULL user, account, items, placed_at): only a catalog or payments event
     * of the order has been seen so far; readers treat it as not found */
    "CREATE TABLE IF NOT EXISTS orders (order_id text PRIMARY KEY, user_id text,"
    " account_id text, items jsonb, total bigint NOT NULL, status text NOT NULL, reason text,"
    " version bigint NOT NULL, stock text NOT NULL, stock_version bigint NOT NULL,"
    " payment text NOT NULL, payment_version bigint NOT NULL, placed_at timestamptz,"
    " updated_at timestamptz NOT NULL,"
    /* when the row last became visible to readers: send-to-visible latency is measured on it */
    " visible_at timestamptz NOT NULL DEFAULT clock_timestamp()) WITH (fillfactor = 70);"
    "CREATE INDEX IF NOT EXISTS orders_by_user ON orders (user_id, placed_at DESC, order_id);"
    /* no query looks inside the items: ANALYZE need not sort them (see orders/store.c) */
    "ALTER TABLE orders ALTER COLUMN items SET STATISTICS 0;"
    "CREATE TABLE IF NOT EXISTS commands (command_id text PRIMARY KEY, command_type text NOT"
    " NULL, aggregate_id text NOT NULL, status text NOT NULL, reason text,"
    " event_type text NOT NULL, recorded_at timestamptz NOT NULL);";

/* A text value to store, NULL for "". */
static const char *or_null(const char *s)
{
    return s[0] ? s : NULL;
}

static int64_t int8_at(const PGresult *res, int row, int col)
{
    return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

#define MS(col) "(extract(epoch FROM " col ") * 1000)::bigint"

/* One row of the users load (shop_store_load_users_apply): fills out[i]. */
static void shop_store_load_users_row(const PGresult *res, int r, size_t i, void *opaque)
{
    user_view_t *v = &((user_view_t *)opaque)[i];
    es_str_copy(v->email, sizeof(v->email), PQgetvalue(res, r, 1));
    es_str_copy(v->name, sizeof(v->name), PQgetvalue(res, r, 2));
    es_str_copy(v->status, sizeof(v->status), PQgetvalue(res, r, 3));
    v->version = int8_at(res, r, 4);
    v->registered_at = int8_at(res, r, 5);
    v->updated_at = int8_at(res, r, 6);
}

int shop_store_load_users_queue(es_pg_pipeline_t *pl, const char *const *ids, size_t n)
{
    return es_pg_load_rows_queue(
        pl,
        "SELECT user_id, email, name, status, version, " MS("registered_at") ", " MS(
            "updated_at") " FROM unnest($1::text[]) AS u(id) JOIN users t ON t.user_id = u.id "
                          "ORDER BY user_id FOR UPDATE OF t",
        ids, n);
}

void shop_store_load_users_apply(const PGresult *res, const char *const *ids, size_t n,
                                 user_view_t *out)
{
    for (size_t i = 0; i < n; i++) {
        memset(&out[i], 0, sizeof(out[i]));
        es_str_copy(out[i].user_id, sizeof(out[i].user_id), ids[i]);
    }
    es_pg_load_rows_apply(res, ids, n, shop_store_load_users_row, out);
}

/* One row of the products load (shop_store_load_products_apply): fills out[i]. */
static void shop_store_load_products_row(const PGresult *res, int r, size_t i, void *opaque)
{
    product_view_t *v = &((product_view_t *)opaque)[i];
    es_str_copy(v->name, sizeof(v->name), PQgetvalue(res, r, 1));
    v->price = int8_at(res, r, 2);
    v->on_hand = int8_at(res, r, 3);
    v->reserved = int8_at(res, r, 4);
    v->version = int8_at(res, r, 5);
    v->price_version = int8_at(res, r, 6);
    v->stock_version = int8_at(res, r, 7);
    v->updated_at = int8_at(res, r, 8);
}

int shop_store_load_products_queue(es_pg_pipeline_t *pl, const char *const *ids, size_t n)
{
    return es_pg_load_rows_queue(
        pl,
        "SELECT product_id, name, price, on_hand, reserved, version, price_version, "
        "stock_version, " MS("updated_at") " FROM unnest($1::text[]) AS u(id) JOIN products t "
                                           "ON t.product_id = u.id ORDER BY product_id "
                                           "FOR UPDATE OF t",
        ids, n);
}

void shop_store_load_products_apply(const PGresult *res, const char *const *ids, size_t n,
                                    product_view_t *out)
{
    for (size_t i = 0; i < n; i++) {
        memset(&out[i], 0, sizeof(out[i]));
        es_str_copy(out[i].product_id, sizeof(out[i].product_id), ids[i]);
    }
    es_pg_load_rows_apply(res, ids, n, shop_store_load_products_row, out);
}

/* One row of the orders load (shop_store_load_orders_apply): fills out[i]. */
static void shop_store_load_orders_row(const PGresult *res, int r, size_t i, void *opaque)
{
    order_view_t *v = &((order_view_t *)opaque)[i];
    es_str_copy(v->user_id, sizeof(v->user_id), PQgetvalue(res, r, 1));
    es_str_copy(v->account_id, sizeof(v->account_id), PQgetvalue(res, r, 2));
    v->total = int8_at(res, r, 3);
    es_str_copy(v->status, sizeof(v->status), PQgetvalue(res, r, 4));
    es_str_copy(v->reason, sizeof(v->reason), PQgetvalue(res, r, 5));
    v->version = int8_at(res, r, 6);
    es_str_copy(v->stock, sizeof(v->stock), PQgetvalue(res, r, 7));
    v->stock_version = int8_at(res, r, 8);
    es_str_copy(v->payment, sizeof(v->payment), PQgetvalue(res, r, 9));
    v->payment_version = int8_at(res, r, 10);
    v->placed_at = int8_at(res, r, 11);
    v->updated_at = int8_at(res, r, 12);
}

int shop_store_load_orders_queue(es_pg_pipeline_t *pl, const char *const *ids, size_t n)
{
    return es_pg_load_rows_queue(
        pl,
        "SELECT order_id, coalesce(user_id, ''), coalesce(account_id, ''), total, status, "
        "coalesce(reason, ''), version, stock, stock_version, payment, payment_version, "
        "coalesce(" MS("placed_at") ", 0), " MS(
            "updated_at") " FROM unnest($1::text[]) AS u(id) JOIN orders t "
                          "ON t.order_id = u.id ORDER BY order_id FOR UPDATE OF t",
        ids, n);
}

void shop_store_load_orders_apply(const PGresult *res, const char *const *ids, size_t n,
                                  order_view_t *out)
{
    for (size_t i = 0; i < n; i++) {
        memset(&out[i], 0, sizeof(out[i]));
        es_str_copy(out[i].order_id, sizeof(out[i].order_id), ids[i]);
    }
    es_pg_load_rows_apply(res, ids, n, shop_store_load_orders_row, out);
}

int shop_store_save_users(es_pg_pipeline_t *pl, const user_view_t *v, size_t n)
{
    static const es_pg_oid_t oids[] = {ES_PG_TEXT, ES_PG_TEXT, ES_PG_TEXT, ES_PG_TEXT,
                                       ES_PG_INT8, ES_PG_INT8, ES_PG_INT8};
    es_pg_cols_t c;
    es_pg_cols_init(&c, oids, 7);
    for (size_t i = 0; i < n; i++) {
        if (!v[i].dirty) {
            continue;
        }
        es_pg_array_add_text(&c.a[0], v[i].user_id);
        es_pg_array_add_text(&c.a[1], v[i].email);
        es_pg_array_add_text(&c.a[2], v[i].name);
        es_pg_array_add_text(&c.a[3], v[i].status);
        es_pg_array_add_int8(&c.a[4], v[i].version);
        es_pg_array_add_int8(&c.a[5], v[i].registered_at);
        es_pg_array_add_int8(&c.a[6], v[i].updated_at);
    }
    return es_pg_cols_queue(
        &c, pl,
        "INSERT INTO users AS t (user_id, email, name, status, version, registered_at, updated_at) "
        "SELECT i, e, n, s, v, to_timestamp(ra::float8 / 1000), to_timestamp(ua::float8 / 1000) "
        "FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], "
        "$7::bigint[]) AS u(i, e, n, s, v, ra, ua) "
        "ON CONFLICT (user_id) DO UPDATE SET email = EXCLUDED.email, name = EXCLUDED.name, "
        "status = EXCLUDED.status, version = EXCLUDED.version, updated_at = EXCLUDED.updated_at "
        "WHERE t.version < EXCLUDED.version");
}

/* Each column group is replaced only by a newer version of it (see store.h). */
static const char save_products_sql[] =
    "INSERT INTO products AS t (product_id, name, price, on_hand, reserved, version,"
    " price_version, stock_version, updated_at)"
    " SELECT i, n, p, h, r, v, pv, sv, to_timestamp(ua::float8 / 1000)"
    " FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[],"
    " $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[]) AS u(i, n, p, h, r, v, pv, sv, ua)"
    " ON CONFLICT (product_id) DO UPDATE SET"
    " name = CASE WHEN EXCLUDED.price_version > t.price_version THEN EXCLUDED.name ELSE t.name"
    " END,"
    " price = CASE WHEN EXCLUDED.price_version > t.price_version THEN EXCLUDED.price"
    " ELSE t.price END,"
    " on_hand = CASE WHEN EXCLUDED.stock_version > t.stock_version THEN EXCLUDED.on_hand"
    " ELSE t.on_hand END,"
    " reserved = CASE WHEN EXCLUDED.stock_version > t.stock_version THEN EXCLUDED.reserved"
    " ELSE t.reserved END,"
    " updated_at = CASE WHEN EXCLUDED.version > t.version THEN EXCLUDED.updated_at"
    " ELSE t.updated_at END,"
    " version = greatest(EXCLUDED.version, t.version),"
    " price_version = greatest(EXCLUDED.price_version, t.price_version),"
    " stock_version = greatest(EXCLUDED.stock_version, t.stock_version)";

/* The same for orders: the order's own columns under its version, stock and payment under
 * theirs; items only ever come with OrderPlaced (NULL: keep the stored ones). */
static const char save_orders_sql[] =
    "INSERT INTO orders AS t (order_id, user_id, account_id, items, total, status, reason,"
    " version, stock, stock_version, payment, payment_version, placed_at, updated_at)"
    " SELECT i, us, ac, it::jsonb, tt, s, r, v, st, sv, p, pv,"
    " to_timestamp(nullif(pa, 0)::float8 / 1000), to_timestamp(ua::float8 / 1000)"
    " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[],"
    " $7::text[], $8::bigint[], $9::text[], $10::bigint[], $11::text[], $12::bigint[],"
    " $13::bigint[], $14::bigint[]) AS u(i, us, ac, it, tt, s, r, v, st, sv, p, pv, pa, ua)"
    " ON CONFLICT (order_id) DO UPDATE SET"
    " user_id = CASE WHEN EXCLUDED.version > t.version THEN EXCLUDED.user_id ELSE t.user_id END,"
    " account_id = CASE WHEN EXCLUDED.version > t.version THEN EXCLUDED.account_id"
    " ELSE t.account_id END,"
    " items = CASE WHEN EXCLUDED.version > t.version THEN coalesce(EXCLUDED.items, t.items)"
    " ELSE t.items END,"
    " total = CASE WHEN EXCLUDED.version > t.version THEN EXCLUDED.total ELSE t.total END,"
    " status = CASE WHEN EXCLUDED.version > t.version THEN EXCLUDED.status ELSE t.status END,"
    " reason = CASE WHEN EXCLUDED.version > t.version THEN EXCLUDED.reason ELSE t.reason END,"
    " placed_at = CASE WHEN EXCLUDED.version > t.version THEN EXCLUDED.placed_at"
    " ELSE t.placed_at END,"
    " stock = CASE WHEN EXCLUDED.stock_version > t.stock_version THEN EXCLUDED.stock"
    " ELSE t.stock END,"
    " payment = CASE WHEN EXCLUDED.payment_version > t.payment_version THEN EXCLUDED.payment"
    " ELSE t.payment END,"
    " version = greatest(EXCLUDED.version, t.version),"
    " stock_version = greatest(EXCLUDED.stock_version, t.stock_version),"
    " payment_version = greatest(EXCLUDED.payment_version, t.payment_version),"
    " updated_at = greatest(EXCLUDED.updated_at, t.updated_at),"
    " visible_at = clock_timestamp()";

int shop_store_save_products(es_pg_pipeline_t *pl, const product_view_t *v, size_t n)
{
    static const es_pg_oid_t oids[] = {ES_PG_TEXT, ES_PG_TEXT, ES_PG_INT8, ES_PG_INT8, ES_PG_INT8,
                                       ES_PG_INT8, ES_PG_INT8, ES_PG_INT8, ES_PG_INT8};
    es_pg_cols_t c;
    es_pg_cols_init(&c, oids, 9);
    for (size_t i = 0; i < n; i++) {
        if (!v[i].dirty) {
            continue;
        }
        es_pg_array_add_text(&c.a[0], v[i].product_id);
        es_pg_array_add_text(&c.a[1], v[i].name);
        es_pg_array_add_int8(&c.a[2], v[i].price);
        es_pg_array_add_int8(&c.a[3], v[i].on_hand);
        es_pg_array_add_int8(&c.a[4], v[i].reserved);
        es_pg_array_add_int8(&c.a[5], v[i].version);
        es_pg_array_add_int8(&c.a[6], v[i].price_version);
        es_pg_array_add_int8(&c.a[7], v[i].stock_version);
        es_pg_array_add_int8(&c.a[8], v[i].updated_at);
    }
    return es_pg_cols_queue(&c, pl, save_products_sql);
}

int shop_store_save_orders(es_pg_pipeline_t *pl, const order_view_t *v, size_t n)
{
    static const es_pg_oid_t oids[] = {ES_PG_TEXT, ES_PG_TEXT, ES_PG_TEXT, ES_PG_TEXT, ES_PG_INT8,
                                       ES_PG_TEXT, ES_PG_TEXT, ES_PG_INT8, ES_PG_TEXT, ES_PG_INT8,
                                       ES_PG_TEXT, ES_PG_INT8, ES_PG_INT8, ES_PG_INT8};
    es_pg_cols_t c;
    int rc = 0;
    es_pg_cols_init(&c, oids, 14);
    for (size_t i = 0; i < n; i++) {
        if (!v[i].dirty) {
            continue;
        }
        char *items = NULL;
        if (v[i].items) {
            items = json_dumps(v[i].items, JSON_COMPACT);
            if (!items) {
                rc = -1;
            }
        }
        es_pg_array_add_text(&c.a[0], v[i].order_id);
        es_pg_array_add_text(&c.a[1], or_null(v[i].user_id));
        es_pg_array_add_text(&c.a[2], or_null(v[i].account_id));
        es_pg_array_add_text(&c.a[3], items);
        es_pg_array_add_int8(&c.a[4], v[i].total);
        es_pg_array_add_text(&c.a[5], v[i].status);
        es_pg_array_add_text(&c.a[6], or_null(v[i].reason));
        es_pg_array_add_int8(&c.a[7], v[i].version);
        es_pg_array_add_text(&c.a[8], v[i].stock);
        es_pg_array_add_int8(&c.a[9], v[i].stock_version);
        es_pg_array_add_text(&c.a[10], v[i].payment);
        es_pg_array_add_int8(&c.a[11], v[i].payment_version);
        es_pg_array_add_int8(&c.a[12], v[i].placed_at);
        es_pg_array_add_int8(&c.a[13], v[i].updated_at);
        free(items);
    }
    if (rc != 0) {
        es_pg_cols_fini(&c);
        return -1;
    }
    return es_pg_cols_queue(&c, pl, save_orders_sql);
}

int shop_store_insert_commands(es_pg_pipeline_t *pl, const shop_command_view_t *cv, size_t n)
{
    static const es_pg_oid_t oids[] = {ES_PG_TEXT, ES_PG_TEXT, ES_PG_TEXT, ES_PG_TEXT,
                                       ES_PG_TEXT, ES_PG_TEXT, ES_PG_INT8};
    es_pg_cols_t c;
    es_pg_cols_init(&c, oids, 7);
    for (size_t i = 0; i < n; i++) {
        es_pg_array_add_text(&c.a[0], cv[i].command_id);
        es_pg_array_add_text(&c.a[1], cv[i].command_type);
        es_pg_array_add_text(&c.a[2], cv[i].aggregate_id);
        es_pg_array_add_text(&c.a[3], cv[i].status);
        es_pg_array_add_text(&c.a[4], or_null(cv[i].reason));
        es_pg_array_add_text(&c.a[5], cv[i].event_type);
        es_pg_array_add_int8(&c.a[6], cv[i].recorded_at);
    }
    /* DISTINCT ON: one outcome per command even if a batch holds two events for it */
    return es_pg_cols_queue(
        &c, pl,
        "INSERT INTO commands (command_id, command_type, aggregate_id, status, "
        "reason, event_type, recorded_at) SELECT DISTINCT ON (i) i, t, a, s, r, e, "
        "to_timestamp(o::float8 / 1000) FROM unnest($1::text[], $2::text[], $3::text[], "
        "$4::text[], $5::text[], $6::text[], $7::bigint[]) AS u(i, t, a, s, r, e, o) "
        "ORDER BY i ON CONFLICT DO NOTHING");
}
