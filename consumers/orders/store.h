/*
 * store.h: the orders service's own tables (schema "orders"): the orders, and its local
 * copies of the users and of the catalog's prices. Each is read once per batch (only the ids
 * the batch mentions) and written once per batch with set-based statements on the batch's
 * pipeline.
 */
#ifndef ORDERS_STORE_H
#define ORDERS_STORE_H

#include <libpq-fe.h>
#include <stddef.h>

#include "domain.h"
#include "pg.h"

/* orders (order_id, user_id, account_id, items jsonb, total, status, reason, version),
 * users (user_id, active, version) and prices (product_id, price, version): idempotent DDL,
 * run in the schema at start. */
extern const char orders_store_ddl[];

/* The batch's loads, in two halves (es_pg_load_rows_queue/_apply): _queue adds the load of
 * the rows named by ids[0..n) (borrowed until the pipeline ran) to `pl` and returns its index,
 * ES_PG_NOTHING or -1; _apply fills out[i] from that statement's result `res` (borrowed).
 *
 * Orders are locked (FOR UPDATE, in id order: no deadlock between instances); a found row is
 * copied into out[i] without its lines, which no rule needs after placement; missing orders get
 * status ORDER_NONE and version 0. */
int orders_store_load_queue(es_pg_pipeline_t *pl, const char *const *ids, size_t n);
void orders_store_load_apply(const PGresult *res, const char *const *ids, size_t n, order_t *out);

/* The copies of users are read without a lock (writes are guarded by version, see the saves);
 * unknown users get version 0. */
int orders_store_load_users_queue(es_pg_pipeline_t *pl, const char *const *ids, size_t n);
void orders_store_load_users_apply(const PGresult *res, const char *const *ids, size_t n,
                                   orders_user_t *out);

/* The same for the copies of the prices of products. */
int orders_store_load_prices_queue(es_pg_pipeline_t *pl, const char *const *ids, size_t n);
void orders_store_load_prices_apply(const PGresult *res, const char *const *ids, size_t n,
                                    orders_price_t *out);

/* Queue the writes of orders[0..n) (borrowed; the parameters are copied) whose flag in
 * `dirty` is set, on the batch's pipeline `pl`: 2 = placed by this batch (INSERT, with its
 * lines, which must be set), 1 = existed before (UPDATE of status, reason and version).
 * Returns 0, or -1 (out of memory). */
int orders_store_save(es_pg_pipeline_t *pl, const order_t *orders, const unsigned char *dirty,
                      size_t n);

/* Queue the upsert of users[0..n) / prices[0..n) whose flag in `dirty` is set, on `pl`. A
 * stored row is only overwritten by a newer version, so a late writer never undoes a newer
 * copy. Return 0, or -1 (out of memory). */
int orders_store_save_users(es_pg_pipeline_t *pl, const orders_user_t *users,
                            const unsigned char *dirty, size_t n);
int orders_store_save_prices(es_pg_pipeline_t *pl, const orders_price_t *prices,
                             const unsigned char *dirty, size_t n);

#endif
