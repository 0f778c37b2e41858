/*
 * store.c: the users and emails tables, loaded and saved per batch (see store.h).
 */
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg.h"
#include "str.h"

const char users_store_ddl[] =
    "CREATE TABLE IF NOT EXISTS users ("
    " user_id text PRIMARY KEY, email text NOT NULL, name text NOT NULL,"
    " status text NOT NULL CHECK (status IN ('ACTIVE', 'INACTIVE')), version bigint NOT NULL);"
    "CREATE TABLE IF NOT EXISTS emails (email text PRIMARY KEY, user_id text NOT NULL);";

/* One row of the users' load: fills out[i]. */
static void users_row(const PGresult *res, int r, size_t i, void *opaque)
{
    user_t *out = opaque;
    user_t *u = &out[i];
    es_str_copy(u->email, sizeof(u->email), PQgetvalue(res, r, 1));
    es_str_copy(u->name, sizeof(u->name), PQgetvalue(res, r, 2));
    u->status = !strcmp(PQgetvalue(res, r, 3), "INACTIVE") ? USER_INACTIVE : USER_ACTIVE;
    u->version = strtoll(PQgetvalue(res, r, 4), NULL, 10);
}

int users_store_load_queue(es_pg_pipeline_t *pl, const char *const *ids, size_t n)
{
    return es_pg_load_rows_queue(pl,
                                 "SELECT user_id, email, name, status, version "
                                 "FROM unnest($1::text[]) AS u(id) JOIN users t ON "
                                 "t.user_id = u.id ORDER BY user_id FOR UPDATE OF t",
                                 ids, n);
}

void users_store_load_apply(const PGresult *res, const char *const *ids, size_t n, user_t *out)
{
    for (size_t i = 0; i < n; i++) {
        memset(&out[i], 0, sizeof(out[i]));
        es_str_copy(out[i].id, sizeof(out[i].id), ids[i]);
    }
    es_pg_load_rows_apply(res, ids, n, users_row, out);
}

int users_store_load_claims_queue(es_pg_pipeline_t *pl, const char *const *emails, size_t m,
                                  const char *const *ids, size_t n)
{
    /* the users' own emails are read here rather than after their load came back: the
     * batch's reads all go with its first round trip */
    return es_pg_load_rows_queue2(pl,
                                  "SELECT e.email, e.user_id FROM emails e WHERE e.email IN "
                                  "(SELECT unnest($1::text[]) UNION ALL "
                                  "SELECT t.email FROM users t WHERE t.user_id = ANY($2::text[]))",
                                  emails, m, ids, n);
}

int users_store_load_claims_apply(const PGresult *res, users_claims_t *claims)
{
    for (int r = 0; res && r < PQntuples(res); r++) {
        const char *email = PQgetvalue(res, r, 0);
        /* a row for an input the dedup dropped after the load saw it */
        if (users_claims_tracked(claims, email) &&
            users_claims_load(claims, email, PQgetvalue(res, r, 1)) != 0) {
            return -1;
        }
    }
    return 0;
}

int users_store_save(es_pg_pipeline_t *pl, const user_t *users, const unsigned char *dirty,
                     size_t n)
{
    static const es_pg_oid_t oids[5] = {ES_PG_TEXT, ES_PG_TEXT, ES_PG_TEXT, ES_PG_TEXT, ES_PG_INT8};
    int rc = 0;
    /* pass 1 inserts the new users (a plain INSERT: a row another instance created meanwhile
     * fails the batch, and the retry sees it), pass 2 updates the existing ones */
    for (int pass = 1; pass <= 2 && rc == 0; pass++) {
        unsigned char want = pass == 1 ? 2 : 1;
        es_pg_cols_t c;
        es_pg_cols_init(&c, oids, 5);
        for (size_t i = 0; i < n; i++) {
            if (dirty[i] != want) {
                continue;
            }
            es_pg_array_add_text(&c.a[0], users[i].id);
            es_pg_array_add_text(&c.a[1], users[i].email);
            es_pg_array_add_text(&c.a[2], users[i].name);
            es_pg_array_add_text(&c.a[3], users_status_name(users[i].status));
            es_pg_array_add_int8(&c.a[4], users[i].version);
        }
        rc = es_pg_cols_queue(&c, pl,
                              pass == 1
                                  ? "INSERT INTO users (user_id, email, name, status, version) "
                                    "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], "
                                    "$4::text[], $5::bigint[]) AS u(id, e, n, s, v) ORDER BY id"
                                  : "UPDATE users t SET email = u.e, status = u.s, version = u.v "
                                    "FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], "
                                    "$5::bigint[]) AS u(id, e, n, s, v) WHERE t.user_id = u.id");
    }
    return rc;
}

int users_store_save_claims(es_pg_pipeline_t *pl, const users_claims_t *claims)
{
    static const es_pg_oid_t oids[2] = {ES_PG_TEXT, ES_PG_TEXT};
    int rc = 0;
    /* pass 1 deletes the released claims (guarded by their owner), pass 2 inserts the new
     * ones: an email released by one user and taken by another in this batch is deleted,
     * then inserted again. Inserts go in email order, so two instances claiming the same
     * emails wait for each other in one order instead of deadlocking. */
    for (int pass = 1; pass <= 2 && rc == 0; pass++) {
        es_pg_cols_t c;
        es_pg_cols_init(&c, oids, 2);
        for (size_t i = 0; i < claims->cnt; i++) {
            const users_claim_t *cl = &claims->slots[i];
            if (pass == 1 ? users_claim_released(cl) : users_claim_claimed(cl)) {
                es_pg_array_add_text(&c.a[0], cl->email);
                es_pg_array_add_text(&c.a[1], pass == 1 ? cl->before : cl->owner);
            }
        }
        rc = es_pg_cols_queue(&c, pl,
                              pass == 1
                                  ? "DELETE FROM emails e USING unnest($1::text[], $2::text[]) "
                                    "AS u(email, user_id) WHERE e.email = u.email AND "
                                    "e.user_id = u.user_id"
                                  : "INSERT INTO emails (email, user_id) "
                                    "SELECT * FROM unnest($1::text[], $2::text[]) AS u(email, "
                                    "user_id) ORDER BY email");
    }
    return rc;
}
