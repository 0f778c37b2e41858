/*
 * store.c: the payments table, loaded and saved per batch (see store.h).
 */
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg.h"
#include "str.h"
#include "strmap.h"

/* fillfactor 80: every payment is updated a few times; room on its page keeps the updates
 * HOT (no index write). */
const char payments_store_ddl[] =
    "CREATE TABLE IF NOT EXISTS payments ("
    " order_id text PRIMARY KEY, state text NOT NULL, account_id text NOT NULL,"
    " merchant_account text NOT NULL, amount bigint NOT NULL, refund_owed boolean NOT NULL,"
    " reason text NOT NULL, version bigint NOT NULL) WITH (fillfactor = 80);";

#define COLS 8

int payments_store_load(PGconn *pg, const char *const *ids, size_t n, payment_t *out, char *errstr,
                        size_t errstr_size)
{
    es_strmap_t idx;
    es_strmap_init(&idx);
    for (size_t i = 0; i < n; i++) {
        memset(&out[i], 0, sizeof(out[i]));
        es_str_copy(out[i].order_id, sizeof(out[i].order_id), ids[i]);
    }
    PGresult *res = es_pg_load_by_ids(
        pg,
        "SELECT order_id, state, account_id, merchant_account, amount, refund_owed, reason, "
        "version FROM unnest($1::text[]) AS u(id) JOIN payments p ON p.order_id = u.id "
        "ORDER BY order_id FOR UPDATE OF p",
        ids, n, &idx, errstr, errstr_size);
    if (!res) {
        es_strmap_fini(&idx);
        return -1;
    }
    int rc = 0;
    for (int r = 0; r < PQntuples(res); r++) {
        size_t i = es_strmap_get(&idx, PQgetvalue(res, r, 0));
        if (i == (size_t)-1) {
            continue;
        }
        payment_t *p = &out[i];
        int state = payments_state_from_name(PQgetvalue(res, r, 1));
        if (state <= PAYMENT_NONE) {
            snprintf(errstr, errstr_size, "payment \"%s\" has an unknown state \"%s\"", p->order_id,
                     PQgetvalue(res, r, 1));
            rc = -1;
            break;
        }
        p->state = (payment_state_t)state;
        es_str_copy(p->account_id, sizeof(p->account_id), PQgetvalue(res, r, 2));
        es_str_copy(p->merchant_account, sizeof(p->merchant_account), PQgetvalue(res, r, 3));
        p->amount = strtoll(PQgetvalue(res, r, 4), NULL, 10);
        p->refund_owed = PQgetvalue(res, r, 5)[0] == 't';
        es_str_copy(p->reason, sizeof(p->reason), PQgetvalue(res, r, 6));
        p->version = strtoll(PQgetvalue(res, r, 7), NULL, 10);
    }
    PQclear(res);
    es_strmap_fini(&idx);
    return rc;
}

int payments_store_save(es_pg_pipeline_t *pl, const payment_t *payments, const unsigned char *dirty,
                        size_t n)
{
    es_pg_array_t a[COLS];
    static const es_pg_oid_t oids[COLS] = {ES_PG_TEXT, ES_PG_TEXT, ES_PG_TEXT, ES_PG_TEXT,
                                           ES_PG_INT8, ES_PG_BOOL, ES_PG_TEXT, ES_PG_INT8};
    for (int k = 0; k < COLS; k++) {
        es_pg_array_init(&a[k], oids[k]);
    }
    for (size_t i = 0; i < n; i++) {
        if (!dirty[i]) {
            continue;
        }
        const payment_t *p = &payments[i];
        es_pg_array_add_text(&a[0], p->order_id);
        es_pg_array_add_text(&a[1], payments_state_name(p->state));
        es_pg_array_add_text(&a[2], p->account_id);
        es_pg_array_add_text(&a[3], p->merchant_account);
        es_pg_array_add_int8(&a[4], p->amount);
        es_pg_array_add_bool(&a[5], p->refund_owed);
        es_pg_array_add_text(&a[6], p->reason);
        es_pg_array_add_int8(&a[7], p->version);
    }
    int rc = 0;
    if (a[0].count > 0) {
        const char *vals[COLS];
        int lens[COLS], fmts[COLS];
        for (int k = 0; k < COLS; k++) {
            if (es_pg_array_finish(&a[k]) != 0) {
                rc = -1;
            }
            vals[k] = (const char *)a[k].buf.data;
            lens[k] = (int)a[k].buf.len;
            fmts[k] = 1;
        }
        if (rc == 0 &&
            es_pg_pipeline_add(
                pl,
                "INSERT INTO payments (order_id, state, account_id, merchant_account, amount, "
                "refund_owed, reason, version) SELECT * FROM unnest($1::text[], $2::text[], "
                "$3::text[], $4::text[], $5::bigint[], $6::bool[], $7::text[], $8::bigint[]) "
                "ON CONFLICT (order_id) DO UPDATE SET state = EXCLUDED.state, "
                "account_id = EXCLUDED.account_id, merchant_account = EXCLUDED.merchant_account, "
                "amount = EXCLUDED.amount, refund_owed = EXCLUDED.refund_owed, "
                "reason = EXCLUDED.reason, version = EXCLUDED.version",
                COLS, vals, lens, fmts) < 0) {
            rc = -1;
        }
    }
    for (int k = 0; k < COLS; k++) {
        es_pg_array_fini(&a[k]);
    }
    return rc;
}
