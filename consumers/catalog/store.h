/*
 * store.h: the catalog service's own tables (schema "catalog"), read and written once per
 * batch with set-based statements:
 *   products     (product_id, name, price, on_hand, reserved, version), CHECK 0 <= reserved
 *                <= on_hand; fillfactor 80 so the per-batch updates stay HOT,
 *   reservations (order_id, status, lines jsonb [{"product_id", "quantity"}...], version).
 * Rows are locked FOR UPDATE in id order, reservations first, then products, so two instances
 * never lose an update and never deadlock.
 */
#ifndef CATALOG_STORE_H
#define CATALOG_STORE_H

#include <libpq-fe.h>
#include <stddef.h>

#include "arena.h"
#include "domain.h"
#include "pg.h"

extern const char catalog_store_ddl[];

/* The load, with locks, of the reservations of the orders ids[0..n), in two halves
 * (es_pg_load_rows_queue/_apply): _queue adds it to `pl` (ids borrowed until the pipeline
 * ran) and returns its index, ES_PG_NOTHING or -1; _apply gives out[i] the row of ids[i] from
 * its result `res` (borrowed), or status CAT_RES_NONE and version 0 when there is none. The
 * lines of a loaded reservation are allocated from `arena` (borrowed; they live until its
 * reset). _apply returns 0 or -1 with errstr (a row whose lines cannot be read). */
int catalog_store_load_reservations_queue(es_pg_pipeline_t *pl, const char *const *ids, size_t n);
int catalog_store_load_reservations_apply(const PGresult *res, es_arena_t *arena,
                                          const char *const *ids, size_t n,
                                          catalog_reservation_t *out, char *errstr,
                                          size_t errstr_size);

/* Queue on `pl`, after catalog_store_load_reservations_queue(), the load and lock of every
 * product a batch may touch, in one statement and in id order: ids[0..n) (borrowed: the
 * products its commands and new orders name) and the products in the lines of those of
 * orders[0..m) (borrowed) whose reservation holds units, which the statement before locked.
 * Returns the statement's index, ES_PG_NOTHING when both lists are empty, or -1 (out of
 * memory). */
int catalog_store_load_products_queue(es_pg_pipeline_t *pl, const char *const *ids, size_t n,
                                      const char *const *orders, size_t m);

/* Fill out[i] (caller storage) for ids[i] (borrowed) from `res` (borrowed: that statement's
 * result; NULL for none): its row (name left NULL: it never changes), or version 0 when
 * there is none. Rows of other products are skipped. */
void catalog_store_load_products_apply(const PGresult *res, const char *const *ids, size_t n,
                                       catalog_product_t *out);

/* Queue on the batch's pipeline `pl` the writes of products[0..n) whose flag in `dirty` is
 * set: 1 = existed before (UPDATE price, stock, version), 2 = new (INSERT, with its name).
 * Everything is copied when queued. Returns 0, or -1 (out of memory). */
int catalog_store_save_products(es_pg_pipeline_t *pl, const catalog_product_t *products,
                                const unsigned char *dirty, size_t n);

/* The same for reservations: 1 = existed (UPDATE status, version), 2 = new (INSERT, with its
 * lines). Returns 0, or -1 (out of memory). */
int catalog_store_save_reservations(es_pg_pipeline_t *pl, const catalog_reservation_t *res,
                                    const unsigned char *dirty, size_t n);

#endif
