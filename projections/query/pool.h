/*
 * pool.h: a small pool of asynchronous PostgreSQL connections driven by a libevent loop.
 *
 * Each connection prepares the pool's statements once when it connects (those whose tables
 * exist: es_query_stmt_t's `needs`). A query takes an idle
 * connection (or waits in a FIFO queue), is sent with PQsendQueryPrepared and its result is
 * read when the socket becomes readable, so the event loop never waits for the database.
 * A broken connection is reconnected with backoff; while none is usable, submissions fail at
 * once so that callers can answer "unavailable". A circuit breaker (breaker.h) watches the
 * outcomes: after a run of queries the database did not answer, it refuses submissions for a
 * pause, then lets one probe through. A statement that fails because a relation
 * vanished or changed shape (a read-model rebuild swaps schemas) is prepared again and retried
 * once. Single-threaded: every function must be called from the loop's thread.
 */
#ifndef ES_QUERY_POOL_H
#define ES_QUERY_POOL_H

#include <stddef.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "breaker.h"

typedef struct es_query_pool es_query_pool_t;

/* One statement the pool prepares on every connection. Strings are borrowed: they must
 * outlive the pool (string literals in practice). */
typedef struct es_query_stmt {
    const char *name;
    const char *sql;
    int nparams; /* parameters are text, their types inferred by the server */
    /* A table the statement reads ("schema.table"), created by the same DDL as the others it
     * reads, or NULL. Before preparing the statement the pool asks whether that table exists
     * (to_regclass, which never fails): while it does not, the statement is not prepared and
     * its queries end ES_QUERY_MISSING, without an error in the server's log for every
     * connection or request (a read model whose service has not started, or not yet created
     * its tables). */
    const char *needs;
} es_query_stmt_t;

/* Why a query produced no rows. */
typedef enum {
    ES_QUERY_OK = 0,
    ES_QUERY_UNAVAILABLE, /* no usable connection, lost connection, queue wait too long */
    ES_QUERY_MISSING,     /* the read model's tables do not exist (yet) */
    ES_QUERY_FAILED,      /* any other SQL error */
} es_query_status_t;

/* Called once per submitted query, from the event loop, never from inside
 * es_query_pool_submit(). `res` is borrowed (a PGRES_TUPLES_OK or PGRES_COMMAND_OK result)
 * and only valid during the call, NULL unless status is ES_QUERY_OK; `errmsg` is borrowed,
 * NULL on success. */
typedef void(es_query_cb_t)(es_query_status_t status, const PGresult *res, const char *errmsg,
                            void *opaque);

/* Create a pool of `size` connections to `conninfo` (copied) on `base` (borrowed; must outlive
 * the pool). `stmts` (borrowed, `stmt_cnt` entries) is prepared on each connection.
 * Connecting starts at once, in the background. `queue_timeout_ms` bounds how long a query
 * waits for a connection. The circuit breaker opens after `breaker_failures` unanswered
 * queries in a row (0: never) for `breaker_cooldown_ms`, doubling after each failed probe up
 * to eight times that. Returns NULL with a message in errstr. Use es_query_pool_destroy(). */
es_query_pool_t *es_query_pool_new(struct event_base *base, const char *conninfo, int size,
                                   const es_query_stmt_t *stmts, int stmt_cnt, int queue_timeout_ms,
                                   int breaker_failures, int breaker_cooldown_ms, char *errstr,
                                   size_t errstr_size);

/* Queue statement `stmt` (an index into the pool's statements) with `params` (copied, text,
 * the statement's nparams of them; a NULL entry is SQL NULL). `cb` is called exactly once
 * later with `opaque`. Returns 0, or -1 without calling `cb` when the circuit is open or no
 * connection is usable now (errmsg, borrowed until the next pool call, says why) or out of
 * memory. */
int es_query_pool_submit(es_query_pool_t *pool, int stmt, const char *const *params,
                         es_query_cb_t *cb, void *opaque, const char **errmsg);

/* True when at least one connection is connected (or connecting for the first time since
 * it last worked), i.e. a submission would be accepted. */
int es_query_pool_usable(const es_query_pool_t *pool);

/* The last connection error (borrowed, "" when none). */
const char *es_query_pool_last_error(const es_query_pool_t *pool);

typedef struct es_query_pool_stats {
    int idle;      /* connected, no query */
    int busy;      /* connected, running a query */
    int down;      /* connecting or waiting to reconnect */
    size_t queued; /* queries waiting for a connection */
    es_breaker_state_t circuit;
    uint64_t circuit_opened;   /* times the breaker opened */
    uint64_t circuit_rejected; /* submissions it refused */
    int retry_after_s;         /* while not closed: seconds until a query may be tried */
} es_query_pool_stats_t;

/* Fill `stats` (caller storage). */
void es_query_pool_stats(const es_query_pool_t *pool, es_query_pool_stats_t *stats);

/* Close every connection and free the pool. Queries still queued or running are dropped
 * without their callback: call this only once callers no longer wait (after draining).
 * NULL is a no-op. */
void es_query_pool_destroy(es_query_pool_t *pool);

#endif
