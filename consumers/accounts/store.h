/*
 * store.h: the accounts service's own table (schema "accounts"), read and written once per
 * batch with set-based statements.
 */
#ifndef ACCOUNTS_STORE_H
#define ACCOUNTS_STORE_H

#include <libpq-fe.h>
#include <stddef.h>

#include "domain.h"
#include "pg.h"

extern const char accounts_store_ddl[];

/* Load and lock (FOR UPDATE, in id order: no deadlock between instances) the accounts named
 * by ids[0..n). Each found row is copied into out[i] where ids[i] matches; missing accounts
 * get status ACCOUNT_NONE. Returns 0 or -1 with errstr. */
int accounts_store_load(PGconn *pg, const char *const *ids, size_t n, account_t *out, char *errstr,
                        size_t errstr_size);

/* Queue the writes of accounts[0..n) whose flag in `dirty` is set: 1 = existed before
 * (UPDATE), 2 = new (INSERT), on the batch's pipeline `pl`. Returns 0, or -1 (out of memory). */
int accounts_store_save(es_pg_pipeline_t *pl, const account_t *accounts, const unsigned char *dirty,
                        size_t n);

/* The fences (transfers whose saga timed out before their debit) among ids[0..n): fenced[i]
 * (caller storage, n bytes) is set to 1 for each. Returns 0 or -1 with errstr. */
int accounts_store_load_fences(PGconn *pg, const char *const *ids, size_t n, unsigned char *fenced,
                               char *errstr, size_t errstr_size);

/* Queue the fences of transfers ids[0..n), each of saga saga_ids[i] (kept if already there).
 * Returns 0, or -1 (out of memory). */
int accounts_store_save_fences(es_pg_pipeline_t *pl, const char *const *ids,
                               const char *const *saga_ids, size_t n);

#endif
