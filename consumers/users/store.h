/*
 * store.h: the users service's own tables (schema "users"): the users and the email claims,
 * each read and written once per batch with set-based statements.
 */
#ifndef USERS_STORE_H
#define USERS_STORE_H

#include <libpq-fe.h>
#include <stddef.h>

#include "domain.h"
#include "pg.h"

/* users (user_id, email, name, status, version) and emails (email PRIMARY KEY, user_id):
 * idempotent DDL, run in the schema at start. */
extern const char users_store_ddl[];

/* Queue on `pl` the load and lock (FOR UPDATE, in id order: no deadlock between instances) of
 * the users ids[0..n) (borrowed). Returns the statement's index, ES_PG_NOTHING when there is
 * no id, or -1 (out of memory). */
int users_store_load_queue(es_pg_pipeline_t *pl, const char *const *ids, size_t n);

/* Copy into out[i] (caller storage) the row of ids[i] (borrowed) from `res` (borrowed: that
 * statement's result; NULL for none); users without a row get status USER_NONE. */
void users_store_load_apply(const PGresult *res, const char *const *ids, size_t n, user_t *out);

/* Queue on `pl`, after users_store_load_queue(), the read of the claims of emails[0..m)
 * (borrowed, normalized) and of the emails the users ids[0..n) (borrowed) hold, which the
 * statement before locked: one statement, no lock of its own (a claim another instance makes
 * meanwhile is settled by the primary key at insert). Returns its index, ES_PG_NOTHING when
 * both lists are empty, or -1 (out of memory). */
int users_store_load_claims_queue(es_pg_pipeline_t *pl, const char *const *emails, size_t m,
                                  const char *const *ids, size_t n);

/* Record with users_claims_load the rows of `res` (borrowed: that statement's result; NULL
 * for none) whose email `claims` tracks; the others are skipped. Returns 0, or -1 (no room or
 * no memory). */
int users_store_load_claims_apply(const PGresult *res, users_claims_t *claims);

/* Queue the writes of users[0..n) whose flag in `dirty` is set: 1 = existed before (UPDATE),
 * 2 = new (INSERT), on the batch's pipeline `pl`. Returns 0, or -1 (out of memory). */
int users_store_save(es_pg_pipeline_t *pl, const user_t *users, const unsigned char *dirty,
                     size_t n);

/* Queue the claims' net changes on `pl`: first the deletes of released claims, then plain
 * INSERTs of new ones (a claim committed meanwhile by another instance fails the batch on the
 * primary key; the retry then sees it). Returns 0, or -1 (out of memory). */
int users_store_save_claims(es_pg_pipeline_t *pl, const users_claims_t *claims);

#endif
