/*
 * store.h: the transfers service's own table (schema "transfers"), read and written once per
 * batch with set-based statements.
 */
#ifndef TRANSFERS_STORE_H
#define TRANSFERS_STORE_H

#include <libpq-fe.h>
#include <stddef.h>

#include "domain.h"
#include "pg.h"

extern const char transfers_store_ddl[];

/* Load and lock the transfers named by ids[0..n) into out[i] (status TRANSFER_NONE when
 * unknown). Returns 0 or -1 with errstr. */
int transfers_store_load(PGconn *pg, const char *const *ids, size_t n, transfer_t *out,
                         char *errstr, size_t errstr_size);

/* Queue the upsert of transfers[i] whose dirty[i] is set on the batch's pipeline `pl`.
 * Returns 0, or -1 (out of memory). */
int transfers_store_save(es_pg_pipeline_t *pl, const transfer_t *transfers,
                         const unsigned char *dirty, size_t n);

#endif
