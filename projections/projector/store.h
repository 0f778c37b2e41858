/*
 * store.h: the ledger read models in PostgreSQL (schema "projections", or the rebuild's
 * shadow schema: every statement is unqualified and follows the connection's search_path).
 */
#ifndef PROJECTOR_STORE_H
#define PROJECTOR_STORE_H

#include <libpq-fe.h>
#include <stddef.h>

#include "domain.h"
#include "pg.h"

extern const char projector_store_ddl[];

/* The loads, each in two halves so that it can travel with the batch's BEGIN (service.h's
 * load hook). _queue adds to `pl` the load, with locks, of the views named by ids[0..n)
 * (borrowed, distinct; copied when queued) and returns its index in `pl`, ES_PG_NOTHING or
 * -1 (es_pg_load_rows_queue). _apply fills out[i] from that load's result `res` (borrowed;
 * NULL: no rows), given the same ids (status "" when missing). */
int projector_load_accounts_queue(es_pg_pipeline_t *pl, const char *const *ids, size_t n);
void projector_load_accounts_apply(const PGresult *res, const char *const *ids, size_t n,
                                   account_view_t *out);
int projector_load_transfers_queue(es_pg_pipeline_t *pl, const char *const *ids, size_t n);
void projector_load_transfers_apply(const PGresult *res, const char *const *ids, size_t n,
                                    transfer_view_t *out);
/* The writes below are queued on the batch's pipeline `pl` (sent with its commit); each
 * returns 0, or -1 when out of memory. Upsert the views whose dirty flag is set: */
int projector_save_accounts(es_pg_pipeline_t *pl, const account_view_t *v,
                            const unsigned char *dirty, size_t n);
int projector_save_transfers(es_pg_pipeline_t *pl, const transfer_view_t *v,
                             const unsigned char *dirty, size_t n);
/* Insert entries and command outcomes (existing ones are kept). */
int projector_insert_entries(es_pg_pipeline_t *pl, const entry_view_t *e, size_t n);
int projector_insert_commands(es_pg_pipeline_t *pl, const command_view_t *c, size_t n);

#endif
