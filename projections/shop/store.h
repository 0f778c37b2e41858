/*
 * store.h: the shop's read models in PostgreSQL (schema "shop_views", or the rebuild's shadow
 * schema: every statement is unqualified and follows the connection's search_path). Rows of a
 * batch are loaded in one statement per table and written back in one statement per table.
 */
#ifndef SHOP_PROJECTION_STORE_H
#define SHOP_PROJECTION_STORE_H

#include <libpq-fe.h>
#include <stddef.h>

#include "domain.h"
#include "pg.h"

/* The tables (idempotent DDL). */
extern const char shop_store_ddl[];

/* The loads, each in two halves so that it can travel with the batch's BEGIN (service.h's
 * load hook). _queue adds to `pl` the load of the views named by ids[0..n) (borrowed,
 * distinct; copied when queued), locking their rows in id order, and returns its index in
 * `pl`, ES_PG_NOTHING or -1 (es_pg_load_rows_queue). _apply fills out[i] from that load's
 * result `res` (borrowed; NULL: no rows), given the same ids; a view without a row comes
 * back empty but for its id (status "" / versions 0). */
int shop_store_load_users_queue(es_pg_pipeline_t *pl, const char *const *ids, size_t n);
void shop_store_load_users_apply(const PGresult *res, const char *const *ids, size_t n,
                                 user_view_t *out);
int shop_store_load_products_queue(es_pg_pipeline_t *pl, const char *const *ids, size_t n);
void shop_store_load_products_apply(const PGresult *res, const char *const *ids, size_t n,
                                    product_view_t *out);
/* An order's items are not loaded (out[i].items is NULL: the stored ones are kept). */
int shop_store_load_orders_queue(es_pg_pipeline_t *pl, const char *const *ids, size_t n);
void shop_store_load_orders_apply(const PGresult *res, const char *const *ids, size_t n,
                                  order_view_t *out);

/* The writes below are queued on the batch's pipeline `pl` (sent with its commit; the views
 * are borrowed and copied); each returns 0, or -1 when out of memory. Upsert the views whose
 * dirty flag is set; every column group is written only over an older one, so a row another
 * transaction created meanwhile keeps its newer facts: */
int shop_store_save_users(es_pg_pipeline_t *pl, const user_view_t *v, size_t n);
int shop_store_save_products(es_pg_pipeline_t *pl, const product_view_t *v, size_t n);
int shop_store_save_orders(es_pg_pipeline_t *pl, const order_view_t *v, size_t n);
/* Insert command outcomes (one per command id; existing ones are kept). */
int shop_store_insert_commands(es_pg_pipeline_t *pl, const shop_command_view_t *c, size_t n);

#endif
