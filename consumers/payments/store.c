/*
 * store.c: the payments table, loaded and saved per batch (see store.h).
 */
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg.h"
#include "str.h"

/* fillfactor 80: every payment is updated a few times; room on its page keeps the updates
 * HOT (no index write). refund_attempts and correlation_id came later: a table made before
 * gets them (0 and ""; a refund already asked for then counts as attempt 1, see load_row). */
const char payments_store_ddl[] =
    "CREATE TABLE IF NOT EXISTS payments ("
    " order_id text PRIMARY KEY, state text NOT NULL, account_id text NOT NULL,"
    " merchant_account text NOT NULL, amount bigint NOT NULL, refund_owed boolean NOT NULL,"
    " reason text NOT NULL, version bigint NOT NULL) WITH (fillfactor = 80);"
    "ALTER TABLE payments ADD COLUMN IF NOT EXISTS refund_attempts int NOT NULL DEFAULT 0;"
    "ALTER TABLE payments ADD COLUMN IF NOT EXISTS correlation_id text NOT NULL DEFAULT '';";

#define COLS 10

/* What payments_store_load() hands each row: where to put it and how a bad one fails. */
typedef struct load_ctx {
    payment_t *out;
    char *errstr;
    size_t errstr_size;
    int failed;
} load_ctx_t;

/* One row of payments_store_load(): fills out[i], or fails on a state this build does not
 * know (never guessed). */
static void payments_store_load_row(const PGresult *res, int r, size_t i, void *opaque)
{
    load_ctx_t *ctx = opaque;
    payment_t *p = &ctx->out[i];
    int state = payments_state_from_name(PQgetvalue(res, r, 1));
    if (ctx->failed) {
        return;
    }
    if (state <= PAYMENT_NONE) {
        snprintf(ctx->errstr, ctx->errstr_size, "payment \"%s\" has an unknown state \"%s\"",
                 p->order_id, PQgetvalue(res, r, 1));
        ctx->failed = 1;
        return;
    }
    p->state = (payment_state_t)state;
    es_str_copy(p->account_id, sizeof(p->account_id), PQgetvalue(res, r, 2));
    es_str_copy(p->merchant_account, sizeof(p->merchant_account), PQgetvalue(res, r, 3));
    p->amount = strtoll(PQgetvalue(res, r, 4), NULL, 10);
    p->refund_owed = PQgetvalue(res, r, 5)[0] == 't';
    es_str_copy(p->reason, sizeof(p->reason), PQgetvalue(res, r, 6));
    p->version = strtoll(PQgetvalue(res, r, 7), NULL, 10);
    p->refund_attempts = (int)strtol(PQgetvalue(res, r, 8), NULL, 10);
    if (p->refund_attempts == 0 && (p->state == PAYMENT_REFUNDING || p->state == PAYMENT_REFUNDED ||
                                    p->state == PAYMENT_REFUND_FAILED)) {
        p->refund_attempts = 1; /* asked for before the column existed */
    }
    es_str_copy(p->correlation_id, sizeof(p->correlation_id), PQgetvalue(res, r, 9));
}

int payments_store_load_queue(es_pg_pipeline_t *pl, const char *const *ids, size_t n)
{
    return es_pg_load_rows_queue(
        pl,
        "SELECT order_id, state, account_id, merchant_account, amount, "
        "refund_owed, reason, version, refund_attempts, correlation_id "
        "FROM unnest($1::text[]) AS u(id) "
        "JOIN payments p ON p.order_id = u.id ORDER BY order_id FOR UPDATE OF p",
        ids, n);
}

int payments_store_load_apply(const PGresult *res, const char *const *ids, size_t n, payment_t *out,
                              char *errstr, size_t errstr_size)
{
    for (size_t i = 0; i < n; i++) {
        memset(&out[i], 0, sizeof(out[i]));
        es_str_copy(out[i].order_id, sizeof(out[i].order_id), ids[i]);
    }
    load_ctx_t ctx = {.out = out, .errstr = errstr, .errstr_size = errstr_size, .failed = 0};
    es_pg_load_rows_apply(res, ids, n, payments_store_load_row, &ctx);
    return ctx.failed ? -1 : 0;
}

int payments_store_save(es_pg_pipeline_t *pl, const payment_t *payments, const unsigned char *dirty,
                        size_t n)
{
    static const es_pg_oid_t oids[COLS] = {ES_PG_TEXT, ES_PG_TEXT, ES_PG_TEXT, ES_PG_TEXT,
                                           ES_PG_INT8, ES_PG_BOOL, ES_PG_TEXT, ES_PG_INT8,
                                           ES_PG_INT4, ES_PG_TEXT};
    es_pg_cols_t c;
    es_pg_cols_init(&c, oids, COLS);
    for (size_t i = 0; i < n; i++) {
        if (!dirty[i]) {
            continue;
        }
        const payment_t *p = &payments[i];
        es_pg_array_add_text(&c.a[0], p->order_id);
        es_pg_array_add_text(&c.a[1], payments_state_name(p->state));
        es_pg_array_add_text(&c.a[2], p->account_id);
        es_pg_array_add_text(&c.a[3], p->merchant_account);
        es_pg_array_add_int8(&c.a[4], p->amount);
        es_pg_array_add_bool(&c.a[5], p->refund_owed);
        es_pg_array_add_text(&c.a[6], p->reason);
        es_pg_array_add_int8(&c.a[7], p->version);
        es_pg_array_add_int4(&c.a[8], p->refund_attempts);
        es_pg_array_add_text(&c.a[9], p->correlation_id);
    }
    return es_pg_cols_queue(
        &c, pl,
        "INSERT INTO payments (order_id, state, account_id, merchant_account, amount, "
        "refund_owed, reason, version, refund_attempts, correlation_id) "
        "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], "
        "$5::bigint[], $6::bool[], $7::text[], $8::bigint[], $9::int[], $10::text[]) "
        "ON CONFLICT (order_id) DO UPDATE SET state = EXCLUDED.state, "
        "account_id = EXCLUDED.account_id, merchant_account = EXCLUDED.merchant_account, "
        "amount = EXCLUDED.amount, refund_owed = EXCLUDED.refund_owed, "
        "reason = EXCLUDED.reason, version = EXCLUDED.version, "
        "refund_attempts = EXCLUDED.refund_attempts, "
        "correlation_id = EXCLUDED.correlation_id");
}
