/*
 * store.h: the payments service's own table (schema "payments"), read and written once per
 * batch with set-based statements.
 */
#ifndef PAYMENTS_STORE_H
#define PAYMENTS_STORE_H

#include <libpq-fe.h>
#include <stddef.h>

#include "domain.h"
#include "pg.h"

/* The table's DDL (idempotent), run by the runtime at start. */
extern const char payments_store_ddl[];

/* The load, with locks (FOR UPDATE, in id order: no deadlock between instances), of the
 * payments named by ids[0..n), in two halves (es_pg_load_rows_queue/_apply): _queue adds it
 * to `pl` (ids borrowed until the pipeline ran) and returns its index, ES_PG_NOTHING or -1;
 * _apply copies each found row of its result `res` (borrowed) into out[i] where ids[i]
 * matches (unknown payments get state PAYMENT_NONE and their order id) and returns 0, or -1
 * with errstr when a stored state is one this build does not know. */
int payments_store_load_queue(es_pg_pipeline_t *pl, const char *const *ids, size_t n);
int payments_store_load_apply(const PGresult *res, const char *const *ids, size_t n, payment_t *out,
                              char *errstr, size_t errstr_size);

/* Queue the upsert of payments[i] whose dirty[i] is set on the batch's pipeline `pl`
 * (borrowed; the parameters are copied). Returns 0, or -1 (out of memory). */
int payments_store_save(es_pg_pipeline_t *pl, const payment_t *payments, const unsigned char *dirty,
                        size_t n);

#endif
