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

/* Load and lock (FOR UPDATE, in id order: no deadlock between instances) the orders named by
 * ids[0..n) (borrowed). Each found row is copied into out[i] where ids[i] matches (without its
 * lines, which no rule needs after placement); missing orders get status ORDER_NONE and
 * version 0. Returns 0 or -1 with errstr. */
int orders_store_load(PGconn *pg, const char *const *ids, size_t n, order_t *out, char *errstr,
                      size_t errstr_size);

/* Read (no lock: writes are guarded by version, see the saves) the copies of the users named
 * by ids[0..n) (borrowed) into out[i]; unknown users get version 0. Returns 0 or -1 with
 * errstr. */
int orders_store_load_users(PGconn *pg, const char *const *ids, size_t n, orders_user_t *out,
                            char *errstr, size_t errstr_size);

/* The same for the copies of the prices of products ids[0..n) (borrowed). */
int orders_store_load_prices(PGconn *pg, const char *const *ids, size_t n, orders_price_t *out,
                             char *errstr, size_t errstr_size);

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
