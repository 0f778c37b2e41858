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

/* Load the account views named by ids[0..n) into out[i] (status "" when missing). */
int projector_load_accounts(PGconn *pg, const char *const *ids, size_t n, account_view_t *out,
                            char *errstr, size_t errstr_size);
/* Load the transfer views named by ids[0..n) into out[i] (status "" when missing). */
int projector_load_transfers(PGconn *pg, const char *const *ids, size_t n, transfer_view_t *out,
                             char *errstr, size_t errstr_size);
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
