/*
 * store.c: the transfers table, loaded and saved per batch (see store.h).
 */
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg.h"
#include "str.h"

const char transfers_store_ddl[] =
    "CREATE TABLE IF NOT EXISTS transfers ("
    " transfer_id text PRIMARY KEY, from_account text NOT NULL, to_account text NOT NULL,"
    " amount bigint NOT NULL, currency text NOT NULL, status text NOT NULL, reason text NOT NULL,"
    " compensated boolean NOT NULL, version bigint NOT NULL);";

/* One row of transfers_store_load(): fills out[i]. */
static void transfers_store_load_row(const PGresult *res, int r, size_t i, void *opaque)
{
    transfer_t *out = opaque;
    transfer_t *t = &out[i];
    snprintf(t->from_account, sizeof(t->from_account), "%s", PQgetvalue(res, r, 1));
    snprintf(t->to_account, sizeof(t->to_account), "%s", PQgetvalue(res, r, 2));
    t->amount = strtoll(PQgetvalue(res, r, 3), NULL, 10);
    snprintf(t->currency, sizeof(t->currency), "%s", PQgetvalue(res, r, 4));
    const char *st = PQgetvalue(res, r, 5);
    t->status = !strcmp(st, "PENDING")     ? TRANSFER_PENDING
                : !strcmp(st, "COMPLETED") ? TRANSFER_COMPLETED
                : !strcmp(st, "TIMED_OUT") ? TRANSFER_TIMED_OUT
                                           : TRANSFER_FAILED;
    snprintf(t->reason, sizeof(t->reason), "%s", PQgetvalue(res, r, 6));
    t->compensated = PQgetvalue(res, r, 7)[0] == 't';
    t->version = strtoll(PQgetvalue(res, r, 8), NULL, 10);
}

int transfers_store_load_queue(es_pg_pipeline_t *pl, const char *const *ids, size_t n)
{
    return es_pg_load_rows_queue(pl,
                                 "SELECT transfer_id, from_account, to_account, amount, currency, "
                                 "status, reason, compensated, version FROM unnest($1::text[]) "
                                 "AS u(id) JOIN transfers t ON t.transfer_id = u.id "
                                 "ORDER BY transfer_id FOR UPDATE OF t",
                                 ids, n);
}

void transfers_store_load_apply(const PGresult *res, const char *const *ids, size_t n,
                                transfer_t *out)
{
    for (size_t i = 0; i < n; i++) {
        memset(&out[i], 0, sizeof(out[i]));
        es_str_copy(out[i].id, sizeof(out[i].id), ids[i]);
    }
    es_pg_load_rows_apply(res, ids, n, transfers_store_load_row, out);
}

int transfers_store_save(es_pg_pipeline_t *pl, const transfer_t *transfers,
                         const unsigned char *dirty, size_t n)
{
    static const es_pg_oid_t oids[9] = {ES_PG_TEXT, ES_PG_TEXT, ES_PG_TEXT, ES_PG_INT8, ES_PG_TEXT,
                                        ES_PG_TEXT, ES_PG_TEXT, ES_PG_BOOL, ES_PG_INT8};
    es_pg_cols_t c;
    es_pg_cols_init(&c, oids, 9);
    for (size_t i = 0; i < n; i++) {
        if (!dirty[i]) {
            continue;
        }
        const transfer_t *t = &transfers[i];
        es_pg_array_add_text(&c.a[0], t->id);
        es_pg_array_add_text(&c.a[1], t->from_account);
        es_pg_array_add_text(&c.a[2], t->to_account);
        es_pg_array_add_int8(&c.a[3], t->amount);
        es_pg_array_add_text(&c.a[4], t->currency);
        es_pg_array_add_text(&c.a[5], transfers_status_name(t->status));
        es_pg_array_add_text(&c.a[6], t->reason);
        es_pg_array_add_bool(&c.a[7], t->compensated);
        es_pg_array_add_int8(&c.a[8], t->version);
    }
    return es_pg_cols_queue(
        &c, pl,
        "INSERT INTO transfers (transfer_id, from_account, to_account, amount, currency, "
        "status, reason, compensated, version) SELECT * FROM unnest($1::text[], $2::text[], "
        "$3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::bool[], "
        "$9::bigint[]) ON CONFLICT (transfer_id) DO UPDATE SET status = EXCLUDED.status, "
        "reason = EXCLUDED.reason, compensated = EXCLUDED.compensated, "
        "version = EXCLUDED.version, from_account = EXCLUDED.from_account, "
        "to_account = EXCLUDED.to_account, amount = EXCLUDED.amount, "
        "currency = EXCLUDED.currency");
}
