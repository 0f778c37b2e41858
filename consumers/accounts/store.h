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

/* The load, with locks (FOR UPDATE, in id order: no deadlock between instances), of the
 * accounts named by ids[0..n), in two halves (es_pg_load_rows_queue/_apply): _queue adds it to
 * `pl` (ids borrowed until the pipeline ran) and returns its index, ES_PG_NOTHING or -1;
 * _apply copies each found row of its result `res` (borrowed) into out[i] where ids[i]
 * matches; missing accounts get status ACCOUNT_NONE. */
int accounts_store_load_queue(es_pg_pipeline_t *pl, const char *const *ids, size_t n);
void accounts_store_load_apply(const PGresult *res, const char *const *ids, size_t n,
                               account_t *out);

/* Queue the writes of accounts[0..n) whose flag in `dirty` is set: 1 = existed before
 * (UPDATE), 2 = new (INSERT), on the batch's pipeline `pl`. Returns 0, or -1 (out of memory). */
int accounts_store_save(es_pg_pipeline_t *pl, const account_t *accounts, const unsigned char *dirty,
                        size_t n);

/* The fences (transfers whose saga timed out before their debit) among ids[0..n), in the same
 * two halves: _apply sets fenced[i] (caller storage, n bytes) to 1 for each, 0 otherwise. */
int accounts_store_load_fences_queue(es_pg_pipeline_t *pl, const char *const *ids, size_t n);
void accounts_store_load_fences_apply(const PGresult *res, const char *const *ids, size_t n,
                                      unsigned char *fenced);

/* Queue the fences of transfers ids[0..n), each of saga saga_ids[i] (kept if already there).
 * Returns 0, or -1 (out of memory). */
int accounts_store_save_fences(es_pg_pipeline_t *pl, const char *const *ids,
                               const char *const *saga_ids, size_t n);

#endif
