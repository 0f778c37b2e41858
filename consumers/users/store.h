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

/* Load and lock (FOR UPDATE, in id order: no deadlock between instances) the users named by
 * ids[0..n) (borrowed). Each found row is copied into out[i] where ids[i] matches; missing
 * users get status USER_NONE. Returns 0 or -1 with errstr. */
int users_store_load(PGconn *pg, const char *const *ids, size_t n, user_t *out, char *errstr,
                     size_t errstr_size);

/* Read the claims of every email tracked in `claims` (one query, no lock: a claim another
 * instance makes meanwhile is settled by the primary key at insert) and record them with
 * users_claims_load. Returns 0 or -1 with errstr. */
int users_store_load_claims(PGconn *pg, users_claims_t *claims, char *errstr, size_t errstr_size);

/* Queue the writes of users[0..n) whose flag in `dirty` is set: 1 = existed before (UPDATE),
 * 2 = new (INSERT), on the batch's pipeline `pl`. Returns 0, or -1 (out of memory). */
int users_store_save(es_pg_pipeline_t *pl, const user_t *users, const unsigned char *dirty,
                     size_t n);

/* Queue the claims' net changes on `pl`: first the deletes of released claims, then plain
 * INSERTs of new ones (a claim committed meanwhile by another instance fails the batch on the
 * primary key; the retry then sees it). Returns 0, or -1 (out of memory). */
int users_store_save_claims(es_pg_pipeline_t *pl, const users_claims_t *claims);

#endif
