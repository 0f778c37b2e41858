/*
 * store.c: the products and reservations tables, loaded and saved per batch (see store.h).
 */
#include "store.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg.h"
#include "str.h"

const char catalog_store_ddl[] =
    "CREATE TABLE IF NOT EXISTS products ("
    " product_id text PRIMARY KEY, name text NOT NULL, price bigint NOT NULL,"
    " on_hand bigint NOT NULL, reserved bigint NOT NULL, version bigint NOT NULL,"
    " CHECK (reserved >= 0 AND reserved <= on_hand)) WITH (fillfactor = 80);"
    "CREATE TABLE IF NOT EXISTS reservations ("
    " order_id text PRIMARY KEY, status text NOT NULL"
    " CHECK (status IN ('RESERVED', 'COMMITTED', 'RELEASED', 'REJECTED')),"
    " lines jsonb NOT NULL, version bigint NOT NULL) WITH (fillfactor = 80);"
    /* no query looks inside the lines: ANALYZE need not sort them (see orders/store.c) */
    "ALTER TABLE reservations ALTER COLUMN lines SET STATISTICS 0;";

/* Parse a reservation's stored lines (`text`, a JSON array) into memory from `arena`.
 * Returns 0, or -1 when they are not what the service writes. */
static int lines_parse(es_arena_t *arena, const char *text, catalog_reservation_t *res)
{
    json_error_t jerr;
    json_t *arr = json_loads(text, 0, &jerr);
    size_t n = json_array_size(arr);
    int rc = -1;
    if (!json_is_array(arr) || n > CAT_LINES_MAX) {
        goto out;
    }
    catalog_line_t *lines = n ? es_arena_calloc(arena, n, sizeof(*lines)) : NULL;
    if (n && !lines) {
        goto out;
    }
    for (size_t k = 0; k < n; k++) {
        const json_t *line = json_array_get(arr, k);
        const char *pid = json_string_value(json_object_get(line, "product_id"));
        const json_t *q = json_object_get(line, "quantity");
        if (!pid || !json_is_integer(q)) {
            goto out;
        }
        es_str_copy(lines[k].product_id, sizeof(lines[k].product_id), pid);
        lines[k].quantity = json_integer_value(q);
    }
    res->lines = lines;
    res->nlines = n;
    rc = 0;
out:
    json_decref(arr);
    return rc;
}

/* What catalog_store_load_reservations() hands each row. */
typedef struct reservations_ctx {
    catalog_reservation_t *out;
    es_arena_t *arena; /* the lines' storage */
    char *errstr;
    size_t errstr_size;
    int failed;
} reservations_ctx_t;

/* One row of catalog_store_load_reservations(): fills out[i], or fails on a status or lines
 * it cannot read. */
static void reservations_row(const PGresult *res, int r, size_t i, void *opaque)
{
    reservations_ctx_t *ctx = opaque;
    catalog_reservation_t *rv = &ctx->out[i];
    if (ctx->failed) {
        return;
    }
    rv->status = catalog_res_status(PQgetvalue(res, r, 1));
    rv->version = strtoll(PQgetvalue(res, r, 3), NULL, 10);
    if (rv->status == CAT_RES_NONE || lines_parse(ctx->arena, PQgetvalue(res, r, 2), rv) != 0) {
        snprintf(ctx->errstr, ctx->errstr_size, "could not read the reservation of order \"%s\"",
                 rv->order_id);
        ctx->failed = 1;
    }
}

int catalog_store_load_reservations_queue(es_pg_pipeline_t *pl, const char *const *ids, size_t n)
{
    return es_pg_load_rows_queue(pl,
                                 "SELECT order_id, status, lines::text, version "
                                 "FROM unnest($1::text[]) AS u(id) JOIN reservations t ON "
                                 "t.order_id = u.id ORDER BY order_id FOR UPDATE OF t",
                                 ids, n);
}

int catalog_store_load_reservations_apply(const PGresult *res, es_arena_t *arena,
                                          const char *const *ids, size_t n,
                                          catalog_reservation_t *out, char *errstr,
                                          size_t errstr_size)
{
    for (size_t i = 0; i < n; i++) {
        memset(&out[i], 0, sizeof(out[i]));
        es_str_copy(out[i].order_id, sizeof(out[i].order_id), ids[i]);
    }
    reservations_ctx_t ctx = {
        .out = out, .arena = arena, .errstr = errstr, .errstr_size = errstr_size, .failed = 0};
    es_pg_load_rows_apply(res, ids, n, reservations_row, &ctx);
    return ctx.failed ? -1 : 0;
}

/* One row of the products' load: fills out[i]. */
static void products_row(const PGresult *res, int r, size_t i, void *opaque)
{
    catalog_product_t *out = opaque;
    catalog_product_t *p = &out[i];
    p->price = strtoll(PQgetvalue(res, r, 1), NULL, 10);
    p->on_hand = strtoll(PQgetvalue(res, r, 2), NULL, 10);
    p->reserved = strtoll(PQgetvalue(res, r, 3), NULL, 10);
    p->version = strtoll(PQgetvalue(res, r, 4), NULL, 10);
}

int catalog_store_load_products_queue(es_pg_pipeline_t *pl, const char *const *ids, size_t n,
                                      const char *const *orders, size_t m)
{
    /* The reservations' lines are read here rather than after their load came back: one
     * round trip less for every batch with a payment or a cancel in it. */
    return es_pg_load_rows_queue2(
        pl,
        "SELECT product_id, price, on_hand, reserved, version FROM products t "
        "WHERE t.product_id IN (SELECT unnest($1::text[]) UNION ALL "
        "SELECT l->>'product_id' FROM reservations r "
        "CROSS JOIN LATERAL jsonb_array_elements(r.lines) AS l "
        "WHERE r.order_id = ANY($2::text[]) AND r.status IN ('RESERVED', 'COMMITTED')) "
        "ORDER BY product_id FOR UPDATE OF t",
        ids, n, orders, m);
}

void catalog_store_load_products_apply(const PGresult *res, const char *const *ids, size_t n,
                                       catalog_product_t *out)
{
    for (size_t i = 0; i < n; i++) {
        memset(&out[i], 0, sizeof(out[i]));
        es_str_copy(out[i].id, sizeof(out[i].id), ids[i]);
    }
    es_pg_load_rows_apply(res, ids, n, products_row, out);
}

int catalog_store_save_products(es_pg_pipeline_t *pl, const catalog_product_t *products,
                                const unsigned char *dirty, size_t n)
{
    /* inserts: id, name, price, on_hand, reserved, version; updates: the same without name */
    static const es_pg_oid_t ins_oids[6] = {ES_PG_TEXT, ES_PG_TEXT, ES_PG_INT8,
                                            ES_PG_INT8, ES_PG_INT8, ES_PG_INT8};
    static const es_pg_oid_t upd_oids[5] = {ES_PG_TEXT, ES_PG_INT8, ES_PG_INT8, ES_PG_INT8,
                                            ES_PG_INT8};
    es_pg_cols_t ins, upd;
    es_pg_cols_init(&ins, ins_oids, 6);
    es_pg_cols_init(&upd, upd_oids, 5);
    for (size_t i = 0; i < n; i++) {
        const catalog_product_t *p = &products[i];
        if (dirty[i] == 2) {
            es_pg_array_add_text(&ins.a[0], p->id);
            es_pg_array_add_text(&ins.a[1], p->name ? p->name : "");
            es_pg_array_add_int8(&ins.a[2], p->price);
            es_pg_array_add_int8(&ins.a[3], p->on_hand);
            es_pg_array_add_int8(&ins.a[4], p->reserved);
            es_pg_array_add_int8(&ins.a[5], p->version);
        } else if (dirty[i] == 1) {
            es_pg_array_add_text(&upd.a[0], p->id);
            es_pg_array_add_int8(&upd.a[1], p->price);
            es_pg_array_add_int8(&upd.a[2], p->on_hand);
            es_pg_array_add_int8(&upd.a[3], p->reserved);
            es_pg_array_add_int8(&upd.a[4], p->version);
        }
    }
    int rc = es_pg_cols_queue(&ins, pl,
                              "INSERT INTO products (product_id, name, price, on_hand, reserved, "
                              "version) SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], "
                              "$4::bigint[], $5::bigint[], $6::bigint[])");
    if (rc != 0) {
        es_pg_cols_fini(&upd);
        return rc;
    }
    return es_pg_cols_queue(&upd, pl,
                            "UPDATE products p SET price = u.pr, on_hand = u.oh, reserved = u.rs, "
                            "version = u.v FROM unnest($1::text[], $2::bigint[], $3::bigint[], "
                            "$4::bigint[], $5::bigint[]) AS u(id, pr, oh, rs, v) "
                            "WHERE p.product_id = u.id");
}

/* The JSON text of a reservation's lines, as lines_parse() reads it back (a new string:
 * free() it), or NULL when out of memory. */
static char *lines_json(const catalog_reservation_t *res)
{
    json_t *arr = json_array();
    for (size_t k = 0; arr && k < res->nlines; k++) {
        json_t *line = json_pack("{ss sI}", "product_id", res->lines[k].product_id, "quantity",
                                 (json_int_t)res->lines[k].quantity);
        if (json_array_append_new(arr, line) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    char *text = arr ? json_dumps(arr, JSON_COMPACT) : NULL;
    json_decref(arr);
    return text;
}

int catalog_store_save_reservations(es_pg_pipeline_t *pl, const catalog_reservation_t *res,
                                    const unsigned char *dirty, size_t n)
{
    /* inserts: id, status, lines, version; updates: id, status, version */
    static const es_pg_oid_t ins_oids[4] = {ES_PG_TEXT, ES_PG_TEXT, ES_PG_TEXT, ES_PG_INT8};
    static const es_pg_oid_t upd_oids[3] = {ES_PG_TEXT, ES_PG_TEXT, ES_PG_INT8};
    es_pg_cols_t ins, upd;
    es_pg_cols_init(&ins, ins_oids, 4);
    es_pg_cols_init(&upd, upd_oids, 3);
    for (size_t i = 0; i < n; i++) {
        const catalog_reservation_t *r = &res[i];
        const char *status = catalog_res_status_name(r->status);
        if (dirty[i] == 2) {
            char *lines = lines_json(r);
            if (!lines) {
                es_pg_cols_fini(&ins);
                es_pg_cols_fini(&upd);
                return -1;
            }
            es_pg_array_add_text(&ins.a[0], r->order_id);
            es_pg_array_add_text(&ins.a[1], status);
            es_pg_array_add_text(&ins.a[2], lines);
            es_pg_array_add_int8(&ins.a[3], r->version);
            free(lines);
        } else if (dirty[i] == 1) {
            es_pg_array_add_text(&upd.a[0], r->order_id);
            es_pg_array_add_text(&upd.a[1], status);
            es_pg_array_add_int8(&upd.a[2], r->version);
        }
    }
    int rc = es_pg_cols_queue(&ins, pl,
                              "INSERT INTO reservations (order_id, status, lines, version) "
                              "SELECT u.id, u.s, u.l::jsonb, u.v FROM unnest($1::text[], "
                              "$2::text[], $3::text[], $4::bigint[]) AS u(id, s, l, v)");
    if (rc != 0) {
        es_pg_cols_fini(&upd);
        return rc;
    }
    return es_pg_cols_queue(&upd, pl,
                            "UPDATE reservations r SET status = u.s, version = u.v "
                            "FROM unnest($1::text[], $2::text[], $3::bigint[]) AS u(id, s, v) "
                            "WHERE r.order_id = u.id");
}
