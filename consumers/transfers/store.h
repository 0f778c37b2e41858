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

/* Queue on `pl` the load, with locks, of the transfers named by ids[0..n) (borrowed until
 * the pipeline ran). Returns its index in `pl`, ES_PG_NOTHING or -1 (es_pg_load_rows_queue). */
int transfers_store_load_queue(es_pg_pipeline_t *pl, const char *const *ids, size_t n);

/* Fill out[i] from that load's result `res` (borrowed; status TRANSFER_NONE when unknown). */
void transfers_store_load_apply(const PGresult *res, const char *const *ids, size_t n,
                                transfer_t *out);

/* Queue the upsert of transfers[i] whose dirty[i] is set on the batch's pipeline `pl`.
 * Returns 0, or -1 (out of memory). */
int transfers_store_save(es_pg_pipeline_t *pl, const transfer_t *transfers,
                         const unsigned char *dirty, size_t n);

#endif
