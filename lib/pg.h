/*
 * pg.h: PostgreSQL helpers shared by the services: connecting, running statements with
 * parameters, building binary array parameters for set-based statements (one statement per
 * batch instead of one per message), and telling retriable failures from fatal ones.
 */
#ifndef ES_PG_H
#define ES_PG_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "strmap.h"

/* Connect with `conninfo` (borrowed), retrying for up to `wait_s` seconds while the server
 * starts, or until es_pg_stop_waiting() was called. Returns a connection (PQfinish() it) or
 * NULL with errstr filled. */
PGconn *es_pg_connect(const char *conninfo, int wait_s, char *errstr, size_t errstr_size);

/* From now on, in every thread, es_pg_connect() tries once and waits no longer: the process is
 * stopping, and a PostgreSQL out of reach must not hold its stop for the whole wait.
 * Async-signal-safe (a service's SIGTERM handler calls it). */
void es_pg_stop_waiting(void);

/* Run one statement without parameters. Returns 0, or -1 with "<what>: <server message>". */
int es_pg_exec(PGconn *pg, const char *sql, char *errstr, size_t errstr_size);

/* Run a statement with text or binary parameters. `lens`/`formats` may be NULL for all-text.
 * Returns the result when its status is COMMAND_OK or TUPLES_OK (PQclear() it), or NULL with
 * errstr filled. The result's columns are binary when result_binary is set. A statement with
 * parameters is prepared on first use and reused by name on this connection afterwards. */
PGresult *es_pg_query(PGconn *pg, const char *sql, int nparams, const char *const *values,
                      const int *lens, const int *formats, int result_binary, char *errstr,
                      size_t errstr_size);

/* es_pg_query() with `nparams` (at most 8) bigint parameters, text results. */
PGresult *es_pg_query_int8(PGconn *pg, const char *sql, int nparams, const int64_t *params,
                           char *errstr, size_t errstr_size);

/* Called by es_pg_load_rows() for each row of `res` (borrowed, valid during the call) whose
 * first column is ids[i]. */
typedef void es_pg_row_fn(const PGresult *res, int row, size_t i, void *opaque);

/* The load every store does: run `sql`, whose only parameter $1 is a text[] of ids[0..n)
 * (join it with unnest; the first column must be the id), and hand each row to `row` with the
 * index of its id. Rows whose first column is not one of ids are skipped. Returns 0, or -1
 * with errstr. With no ids there is no round trip. */
int es_pg_load_rows(PGconn *pg, const char *sql, const char *const *ids, size_t n,
                    es_pg_row_fn *row, void *opaque, char *errstr, size_t errstr_size);

/* Forget the statements this thread prepared so far, and free what it kept of them: call
 * after PQfinish of the connection they were prepared on (before a new connection may reuse
 * its address), and before a thread that used PostgreSQL ends. */
void es_pg_forget_prepared(void);

/*
 * A pipeline: statements queued now and sent together in one round trip (libpq's pipeline
 * mode), for the writes of a batch. Parameters are copied when queued. Statements run in
 * order; after a failure the rest are skipped. Usage:
 *   es_pg_pipeline_t pl; es_pg_pipeline_init(&pl);
 *   int k = es_pg_pipeline_add(&pl, sql, n, values, lens, formats);   (k: its index)
 *   es_pg_pipeline_run(pg, &pl, errstr, size);  es_pg_pipeline_result(&pl, k) (borrowed)
 *   es_pg_pipeline_reset(&pl) to reuse, es_pg_pipeline_fini(&pl) at the end.
 */
typedef struct es_pg_pipeline {
    size_t cnt, cap;
    struct es_pg_stmt *stmts;
    es_buf_t arena; /* parameter bytes */
    int sent;       /* sent and not yet collected */
    int failed;     /* a send failed: collect reports err */
    char err[512];
} es_pg_pipeline_t;

void es_pg_pipeline_init(es_pg_pipeline_t *pl);
void es_pg_pipeline_fini(es_pg_pipeline_t *pl);
/* Clear the queue and the kept results. */
void es_pg_pipeline_reset(es_pg_pipeline_t *pl);
/* Queue a statement (`sql` must stay valid until run; parameters are copied). Binary
 * parameters need `lens` and `formats`; NULL for all-text. Returns its index, or -1. */
int es_pg_pipeline_add(es_pg_pipeline_t *pl, const char *sql, int nparams,
                       const char *const *values, const int *lens, const int *formats);
/* Send everything queued, wait for every result. Returns 0, or -1 with the first failure in
 * errstr (the transaction, if one is open, is then aborted: roll it back). */
int es_pg_pipeline_run(PGconn *pg, es_pg_pipeline_t *pl, int result_binary, char *errstr,
                       size_t errstr_size);
/* The same in two halves, to do other work while the server executes: _send queues everything
 * on the connection and returns (the parameters are copied out; the pipeline keeps the slots
 * for the results, so it is not reset, and the connection is used for nothing else, until
 * _collect, which waits for them). _send returns -1 with errstr when nothing could be sent
 * (no _collect then). */
int es_pg_pipeline_send(PGconn *pg, es_pg_pipeline_t *pl, int result_binary, char *errstr,
                        size_t errstr_size);
int es_pg_pipeline_collect(PGconn *pg, es_pg_pipeline_t *pl, char *errstr, size_t errstr_size);
/* The result of statement `idx` after a successful run (borrowed until reset), or NULL. */
PGresult *es_pg_pipeline_result(const es_pg_pipeline_t *pl, int idx);

/* es_pg_load_rows() in two halves, so that the load can travel in a pipeline with other statements:
 * _queue adds `sql` with the ids to `pl` (text results: run it with result_binary 0) and
 * returns its index, ES_PG_NOTHING when there are no ids (nothing is queued), or -1 (out of
 * memory). _apply hands the rows of that statement's result (NULL and ES_PG_NOTHING: no rows)
 * to `row` as es_pg_load_rows() does, with the same ids. */
#define ES_PG_NOTHING (-2)
int es_pg_load_rows_queue(es_pg_pipeline_t *pl, const char *sql, const char *const *ids, size_t n);

/* The same for a load that names its rows two ways: `sql` gets ids[0..n) as $1 and
 * more[0..m) as $2 (both text[], borrowed, copied). ES_PG_NOTHING when both are empty. Its
 * rows are handed out by key with _apply as well, matched to whatever ids the caller names. */
int es_pg_load_rows_queue2(es_pg_pipeline_t *pl, const char *sql, const char *const *ids, size_t n,
                           const char *const *more, size_t m);
void es_pg_load_rows_apply(const PGresult *res, const char *const *ids, size_t n, es_pg_row_fn *row,
                           void *opaque);

/* True when the failure that produced `res` (or the broken connection) is worth retrying:
 * serialization failure, deadlock, lost connection, admin shutdown, lock timeout. */
int es_pg_retriable(PGconn *pg, const PGresult *res);

/*
 * Binary array parameter builder. Batches pass their keys as one array and join with it
 * (FROM unnest($1::text[]) AS u(id) JOIN t ON t.key = u.id), never "key = ANY($1)": a cached
 * generic plan may scan the table with ANY, which compares every row with every element.
 *
 * Usage: Usage:
 *   es_pg_array_t a; es_pg_array_init(&a, ES_PG_TEXT);
 *   es_pg_array_add_text(&a, "x"); ...; es_pg_array_finish(&a);
 *   params: value = (const char *)a.buf.data, length = (int)a.buf.len, format = 1
 *   es_pg_array_fini(&a);
 */
typedef enum {
    ES_PG_TEXT = 25,
    ES_PG_BYTEA = 17,
    ES_PG_INT4 = 23,
    ES_PG_INT8 = 20,
    ES_PG_BOOL = 16,
    ES_PG_UUID = 2950
} es_pg_oid_t;

typedef struct es_pg_array {
    es_buf_t buf;
    es_pg_oid_t oid;
    int32_t count;
    int has_null;
    int failed; /* an append ran out of memory: finish() reports it */
} es_pg_array_t;

void es_pg_array_init(es_pg_array_t *a, es_pg_oid_t oid);
void es_pg_array_fini(es_pg_array_t *a);
/* Empty the array for reuse (keeps the allocation). */
void es_pg_array_reset(es_pg_array_t *a);
/* Append one element (copied). NULL `s` adds an SQL NULL. Return 0 or -1 (out of memory). */
int es_pg_array_add_text(es_pg_array_t *a, const char *s);
int es_pg_array_add_bytes(es_pg_array_t *a, const void *data, size_t len);
int es_pg_array_add_int4(es_pg_array_t *a, int32_t v);
int es_pg_array_add_int8(es_pg_array_t *a, int64_t v);
int es_pg_array_add_bool(es_pg_array_t *a, int v);
/* A 32-hex-character id as uuid. Returns -1 if `id` is not 32 hex characters. */
int es_pg_array_add_uuid(es_pg_array_t *a, const char *id);
/* Write the array header; after this the buffer is a complete binary array value. */
int es_pg_array_finish(es_pg_array_t *a);

/* Read a binary int8 / int4 / bool column value of a binary-format result. */
int64_t es_pg_get_int8(const PGresult *res, int row, int col);
int32_t es_pg_get_int4(const PGresult *res, int row, int col);

/* A row set as parallel binary arrays, one per column, sent as the parameters of one
 * statement (INSERT ... SELECT FROM unnest($1, $2, ...)): the set-based write of a batch. */
#define ES_PG_COLS_MAX 16
typedef struct es_pg_cols {
    es_pg_array_t a[ES_PG_COLS_MAX];
    int n;
} es_pg_cols_t;

/* Start `n` (at most ES_PG_COLS_MAX) empty columns of types oids[0..n) in caller storage. */
void es_pg_cols_init(es_pg_cols_t *c, const es_pg_oid_t *oids, int n);
void es_pg_cols_fini(es_pg_cols_t *c);
/* Queue `sql` (borrowed) on `pl` with the columns as its parameters, unless there are no rows,
 * then free the columns (es_pg_cols_fini). Returns 0, or -1 when out of memory. */
int es_pg_cols_queue(es_pg_cols_t *c, es_pg_pipeline_t *pl, const char *sql);

#endif
