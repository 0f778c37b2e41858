/*
 * store.c: set-based reads and writes of the ledger read models (see store.h). Every write is
 * one statement per batch over arrays (unnest), never one per event.
 */
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg.h"

const char projector_store_ddl[] =
    "CREATE TABLE IF NOT EXISTS accounts (account_id text PRIMARY KEY, owner text NOT NULL,"
    " currency text NOT NULL, balance bigint NOT NULL, status text NOT NULL,"
    " version bigint NOT NULL, opened_at timestamptz NOT NULL, updated_at timestamptz NOT NULL);"
    "CREATE TABLE IF NOT EXISTS entries (account_id text NOT NULL, seq bigint NOT NULL,"
    " event_id text NOT NULL, kind text NOT NULL, amount bigint NOT NULL,"
    " balance_after bigint NOT NULL, transfer_id text, occurred_at timestamptz NOT NULL,"
    " PRIMARY KEY (account_id, seq));"
    "CREATE TABLE IF NOT EXISTS transfers (transfer_id text PRIMARY KEY,"
    " from_account text NOT NULL, to_account text NOT NULL, amount bigint NOT NULL,"
    " currency text, status text NOT NULL, reason text, compensated boolean NOT NULL DEFAULT"
    " false, requested_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,"
    /* when the row last became visible to readers: send-to-visible latency is measured on it */
    " visible_at timestamptz NOT NULL DEFAULT clock_timestamp());"
    "CREATE TABLE IF NOT EXISTS commands (command_id text PRIMARY KEY, command_type text NOT"
    " NULL, aggregate_id text NOT NULL, status text NOT NULL, reason text,"
    " event_type text NOT NULL, recorded_at timestamptz NOT NULL);";

/* One row of the accounts load (projector_load_accounts_apply): fills out[i]. */
static void projector_load_accounts_row(const PGresult *res, int r, size_t i, void *opaque)
{
    account_view_t *v = &((account_view_t *)opaque)[i];
    snprintf(v->owner, sizeof(v->owner), "%s", PQgetvalue(res, r, 1));
    snprintf(v->currency, sizeof(v->currency), "%s", PQgetvalue(res, r, 2));
    v->balance = strtoll(PQgetvalue(res, r, 3), NULL, 10);
    snprintf(v->status, sizeof(v->status), "%s", PQgetvalue(res, r, 4));
    v->version = strtoll(PQgetvalue(res, r, 5), NULL, 10);
    v->opened_at = strtoll(PQgetvalue(res, r, 6), NULL, 10);
}

int projector_load_accounts_queue(es_pg_pipeline_t *pl, const char *const *ids, size_t n)
{
    return es_pg_load_rows_queue(pl,
                                 "SELECT account_id, owner, currency, balance, status, version, "
                                 "(extract(epoch FROM opened_at) * 1000)::bigint FROM "
                                 "unnest($1::text[]) AS u(id) JOIN accounts t ON t.account_id = "
                                 "u.id ORDER BY account_id FOR UPDATE OF t",
                                 ids, n);
}

void projector_load_accounts_apply(const PGresult *res, const char *const *ids, size_t n,
                                   account_view_t *out)
{
    for (size_t i = 0; i < n; i++) {
        memset(&out[i], 0, sizeof(out[i]));
        snprintf(out[i].account_id, sizeof(out[i].account_id), "%s", ids[i]);
    }
    es_pg_load_rows_apply(res, ids, n, projector_load_accounts_row, out);
}

/* One row of the transfers load (projector_load_transfers_apply): fills out[i]. */
static void projector_load_transfers_row(const PGresult *res, int r, size_t i, void *opaque)
{
    transfer_view_t *v = &((transfer_view_t *)opaque)[i];
    snprintf(v->from_account, sizeof(v->from_account), "%s", PQgetvalue(res, r, 1));
    snprintf(v->to_account, sizeof(v->to_account), "%s", PQgetvalue(res, r, 2));
    v->amount = strtoll(PQgetvalue(res, r, 3), NULL, 10);
    snprintf(v->currency, sizeof(v->currency), "%s", PQgetvalue(res, r, 4));
    snprintf(v->status, sizeof(v->status), "%s", PQgetvalue(res, r, 5));
    snprintf(v->reason, sizeof(v->reason), "%s", PQgetvalue(res, r, 6));
    v->compensated = PQgetvalue(res, r, 7)[0] == 't';
    v->requested_at = strtoll(PQgetvalue(res, r, 8), NULL, 10);
}

int projector_load_transfers_queue(es_pg_pipeline_t *pl, const char *const *ids, size_t n)
{
    return es_pg_load_rows_queue(
        pl,
        "SELECT transfer_id, from_account, to_account, amount, "
        "coalesce(currency, ''), status, coalesce(reason, ''), compensated, "
        "(extract(epoch FROM requested_at) * 1000)::bigint FROM unnest($1::text[]) "
        "AS u(id) JOIN transfers t ON t.transfer_id = u.id ORDER BY transfer_id "
        "FOR UPDATE OF t",
        ids, n);
}

void projector_load_transfers_apply(const PGresult *res, const char *const *ids, size_t n,
                                    transfer_view_t *out)
{
    for (size_t i = 0; i < n; i++) {
        memset(&out[i], 0, sizeof(out[i]));
        snprintf(out[i].transfer_id, sizeof(out[i].transfer_id), "%s", ids[i]);
    }
    es_pg_load_rows_apply(res, ids, n, projector_load_transfers_row, out);
}

int projector_save_accounts(es_pg_pipeline_t *pl, const account_view_t *v,
                            const unsigned char *dirty, size_t n)
{
    static const es_pg_oid_t oids[] = {ES_PG_TEXT, ES_PG_TEXT, ES_PG_TEXT, ES_PG_INT8,
                                       ES_PG_TEXT, ES_PG_INT8, ES_PG_INT8, ES_PG_INT8};
    es_pg_cols_t c;
    es_pg_cols_init(&c, oids, 8);
    for (size_t i = 0; i < n; i++) {
        if (!dirty[i]) {
            continue;
        }
        es_pg_array_add_text(&c.a[0], v[i].account_id);
        es_pg_array_add_text(&c.a[1], v[i].owner);
        es_pg_array_add_text(&c.a[2], v[i].currency);
        es_pg_array_add_int8(&c.a[3], v[i].balance);
        es_pg_array_add_text(&c.a[4], v[i].status);
        es_pg_array_add_int8(&c.a[5], v[i].version);
        es_pg_array_add_int8(&c.a[6], v[i].opened_at);
        es_pg_array_add_int8(&c.a[7], v[i].updated_at);
    }
    return es_pg_cols_queue(
        &c, pl,
        "INSERT INTO accounts (account_id, owner, currency, balance, status, version, opened_at, "
        "updated_at) SELECT i, o, c, b, s, v, to_timestamp(oa::float8 / 1000), "
        "to_timestamp(ua::float8 / "
        "1000) FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], "
        "$6::bigint[], $7::bigint[], $8::bigint[]) AS u(i, o, c, b, s, v, oa, ua) "
        "ON CONFLICT (account_id) DO UPDATE SET balance = EXCLUDED.balance, status = "
        "EXCLUDED.status, version = EXCLUDED.version, updated_at = EXCLUDED.updated_at");
}

int projector_save_transfers(es_pg_pipeline_t *pl, const transfer_view_t *v,
                             const unsigned char *dirty, size_t n)
{
    static const es_pg_oid_t oids[] = {ES_PG_TEXT, ES_PG_TEXT, ES_PG_TEXT, ES_PG_INT8, ES_PG_TEXT,
                                       ES_PG_TEXT, ES_PG_TEXT, ES_PG_BOOL, ES_PG_INT8, ES_PG_INT8};
    es_pg_cols_t c;
    es_pg_cols_init(&c, oids, 10);
    for (size_t i = 0; i < n; i++) {
        if (!dirty[i]) {
            continue;
        }
        es_pg_array_add_text(&c.a[0], v[i].transfer_id);
        es_pg_array_add_text(&c.a[1], v[i].from_account);
        es_pg_array_add_text(&c.a[2], v[i].to_account);
        es_pg_array_add_int8(&c.a[3], v[i].amount);
        es_pg_array_add_text(&c.a[4], v[i].currency[0] ? v[i].currency : NULL);
        es_pg_array_add_text(&c.a[5], v[i].status);
        es_pg_array_add_text(&c.a[6], v[i].reason[0] ? v[i].reason : NULL);
        es_pg_array_add_bool(&c.a[7], v[i].compensated);
        es_pg_array_add_int8(&c.a[8], v[i].requested_at);
        es_pg_array_add_int8(&c.a[9], v[i].updated_at);
    }
    return es_pg_cols_queue(
        &c, pl,
        "INSERT INTO transfers (transfer_id, from_account, to_account, amount, currency, status, "
        "reason, compensated, requested_at, updated_at) SELECT i, f, t, a, c, s, r, x, "
        "to_timestamp(ra::float8 / 1000), to_timestamp(ua::float8 / 1000) FROM unnest($1::text[], "
        "$2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::bool[], "
        "$9::bigint[], $10::bigint[]) AS u(i, f, t, a, c, s, r, x, ra, ua) "
        "ON CONFLICT (transfer_id) DO UPDATE SET status = EXCLUDED.status, reason = "
        "EXCLUDED.reason, compensated = EXCLUDED.compensated, updated_at = EXCLUDED.updated_at, "
        "visible_at = clock_timestamp()");
}

int projector_insert_entries(es_pg_pipeline_t *pl, const entry_view_t *e, size_t n)
{
    static const es_pg_oid_t oids[] = {ES_PG_TEXT, ES_PG_INT8, ES_PG_TEXT, ES_PG_TEXT,
                                       ES_PG_INT8, ES_PG_INT8, ES_PG_TEXT, ES_PG_INT8};
    es_pg_cols_t c;
    es_pg_cols_init(&c, oids, 8);
    for (size_t i = 0; i < n; i++) {
        es_pg_array_add_text(&c.a[0], e[i].account_id);
        es_pg_array_add_int8(&c.a[1], e[i].seq);
        es_pg_array_add_text(&c.a[2], e[i].event_id);
        es_pg_array_add_text(&c.a[3], e[i].kind);
        es_pg_array_add_int8(&c.a[4], e[i].amount);
        es_pg_array_add_int8(&c.a[5], e[i].balance_after);
        es_pg_array_add_text(&c.a[6], e[i].transfer_id[0] ? e[i].transfer_id : NULL);
        es_pg_array_add_int8(&c.a[7], e[i].occurred_at);
    }
    return es_pg_cols_queue(
        &c, pl,
        "INSERT INTO entries (account_id, seq, event_id, kind, amount, balance_after, "
        "transfer_id, occurred_at) SELECT a, s, e, k, m, b, t, to_timestamp(o::float8 "
        "/ 1000) FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], "
        "$5::bigint[], $6::bigint[], $7::text[], $8::bigint[]) AS u(a, s, e, k, m, "
        "b, t, o) ON CONFLICT DO NOTHING");
}

int projector_insert_commands(es_pg_pipeline_t *pl, const command_view_t *cv, size_t n)
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
        es_pg_array_add_text(&c.a[4], cv[i].reason[0] ? cv[i].reason : NULL);
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
