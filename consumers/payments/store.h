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

/* Load and lock (FOR UPDATE, in id order: no deadlock between instances) the payments named
 * by ids[0..n) (borrowed), in one query. Each found row is copied into out[i] where ids[i]
 * matches; unknown payments get state PAYMENT_NONE and their order id. Returns 0, or -1 with
 * errstr (a failed query, or a stored state this build does not know). */
int payments_store_load(PGconn *pg, const char *const *ids, size_t n, payment_t *out, char *errstr,
                        size_t errstr_size);

/* Queue the upsert of payments[i] whose dirty[i] is set on the batch's pipeline `pl`
 * (borrowed; the parameters are copied). Returns 0, or -1 (out of memory). */
int payments_store_save(es_pg_pipeline_t *pl, const payment_t *payments, const unsigned char *dirty,
                        size_t n);

#endif
