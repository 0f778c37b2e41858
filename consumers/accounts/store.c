/*
 * store.c: the accounts table, loaded and saved per batch (see store.h).
 */
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg.h"
#include "str.h"

const char accounts_store_ddl[] =
    "CREATE TABLE IF NOT EXISTS accounts ("
    " account_id text PRIMARY KEY, owner text NOT NULL, currency text NOT NULL,"
    " balance bigint NOT NULL, status text NOT NULL, version bigint NOT NULL);"
    /* transfers whose saga timed out before their debit (docs/SAGAS.md) */
    "CREATE TABLE IF NOT EXISTS timed_out_transfers ("
    " transfer_id text PRIMARY KEY, saga_id text NOT NULL,"
    " fenced_at timestamptz NOT NULL DEFAULT now());";

static const char *status_name(account_status_t s)
{
    return s == ACCOUNT_CLOSED ? "CLOSED" : "OPEN";
}

/* One row of accounts_store_load(): fills out[i]. */
static void accounts_store_load_row(const PGresult *res, int r, size_t i, void *opaque)
{
    account_t *out = opaque;
    account_t *acc = &out[i];
    snprintf(acc->owner, sizeof(acc->owner), "%s", PQgetvalue(res, r, 1));
    snprintf(acc->currency, sizeof(acc->currency), "%s", PQgetvalue(res, r, 2));
    acc->balance = strtoll(PQgetvalue(res, r, 3), NULL, 10);
    acc->status = !strcmp(PQgetvalue(res, r, 4), "CLOSED") ? ACCOUNT_CLOSED : ACCOUNT_OPEN;
    acc->version = strtoll(PQgetvalue(res, r, 5), NULL, 10);
}

int accounts_store_load_queue(es_pg_pipeline_t *pl, const char *const *ids, size_t n)
{
    return es_pg_load_rows_queue(pl,
                                 "SELECT account_id, owner, currency, balance, status, version "
                                 "FROM unnest($1::text[]) AS u(id) JOIN accounts t ON "
                                 "t.account_id = u.id ORDER BY account_id FOR UPDATE OF t",
                                 ids, n);
}

void accounts_store_load_apply(const PGresult *res, const char *const *ids, size_t n,
                               account_t *out)
{
    for (size_t i = 0; i < n; i++) {
        memset(&out[i], 0, sizeof(out[i]));
        es_str_copy(out[i].id, sizeof(out[i].id), ids[i]);
    }
    es_pg_load_rows_apply(res, ids, n, accounts_store_load_row, out);
}

int accounts_store_save(es_pg_pipeline_t *pl, const account_t *accounts, const unsigned char *dirty,
                        size_t n)
{
    static const es_pg_oid_t oids[6] = {ES_PG_TEXT, ES_PG_TEXT, ES_PG_TEXT,
                                        ES_PG_INT8, ES_PG_TEXT, ES_PG_INT8};
    int rc = 0;
    /* pass 1 inserts the new accounts, pass 2 updates the existing ones */
    for (int pass = 1; pass <= 2 && rc == 0; pass++) {
        unsigned char want = pass == 1 ? 2 : 1;
        es_pg_cols_t c;
        es_pg_cols_init(&c, oids, 6);
        for (size_t i = 0; i < n; i++) {
            if (dirty[i] != want) {
                continue;
            }
            es_pg_array_add_text(&c.a[0], accounts[i].id);
            es_pg_array_add_text(&c.a[1], accounts[i].owner);
            es_pg_array_add_text(&c.a[2], accounts[i].currency);
            es_pg_array_add_int8(&c.a[3], accounts[i].balance);
            es_pg_array_add_text(&c.a[4], status_name(accounts[i].status));
            es_pg_array_add_int8(&c.a[5], accounts[i].version);
        }
        rc = es_pg_cols_queue(
            &c, pl,
            pass == 1
                ? "INSERT INTO accounts (account_id, owner, currency, balance, status, version) "
                  "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], "
                  "$5::text[], $6::bigint[])"
                : "UPDATE accounts a SET balance = u.b, status = u.s, version = u.v FROM "
                  "unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], "
                  "$6::bigint[]) AS u(id, o, c, b, s, v) WHERE a.account_id = u.id");
    }
    return rc;
}

/* One row of accounts_store_load_fences(): marks fenced[i]. */
static void fence_row(const PGresult *res, int r, size_t i, void *opaque)
{
    (void)res;
    (void)r;
    ((unsigned char *)opaque)[i] = 1;
}

int accounts_store_load_fences_queue(es_pg_pipeline_t *pl, const char *const *ids, size_t n)
{
    return es_pg_load_rows_queue(pl,
                                 "SELECT transfer_id FROM unnest($1::text[]) AS u(id) "
                                 "JOIN timed_out_transfers t ON t.transfer_id = u.id",
                                 ids, n);
}

void accounts_store_load_fences_apply(const PGresult *res, const char *const *ids, size_t n,
                                      unsigned char *fenced)
{
    memset(fenced, 0, n);
    es_pg_load_rows_apply(res, ids, n, fence_row, fenced);
}

int accounts_store_save_fences(es_pg_pipeline_t *pl, const char *const *ids,
                               const char *const *saga_ids, size_t n)
{
    static const es_pg_oid_t oids[2] = {ES_PG_TEXT, ES_PG_TEXT};
    es_pg_cols_t c;
    es_pg_cols_init(&c, oids, 2);
    for (size_t i = 0; i < n; i++) {
        es_pg_array_add_text(&c.a[0], ids[i]);
        es_pg_array_add_text(&c.a[1], saga_ids[i]);
    }
    return es_pg_cols_queue(&c, pl,
                            "INSERT INTO timed_out_transfers (transfer_id, saga_id) SELECT * "
                            "FROM unnest($1::text[], $2::text[]) ON CONFLICT DO NOTHING");
}
