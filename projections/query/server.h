/*
 * server.h: the HTTP query service: an evhttp server on one event loop that answers the
 * read-model routes (see routes.h) from PostgreSQL through the asynchronous pool (pool.h),
 * with JSON bodies, Prometheus metrics and a graceful drain.
 */
#ifndef ES_QUERY_SERVER_H
#define ES_QUERY_SERVER_H

#include <stddef.h>

#include <event2/event.h>

#include "ends.h"

typedef struct es_query_server es_query_server_t;

typedef struct es_query_server_conf {
    const char *bind;        /* address to listen on (borrowed) */
    int port;                /* 0 picks a free port */
    int pool_size;           /* PostgreSQL connections */
    const char *conninfo;    /* libpq connection string (borrowed, copied by the pool) */
    int queue_timeout_ms;    /* how long a request may wait for a connection */
    int breaker_failures;    /* unanswered queries in a row that open the circuit (0: never) */
    int breaker_cooldown_ms; /* the open circuit's first pause */
    es_query_ends_t *ends;   /* the log's ends from Kafka (borrowed, may be NULL), ends.h */
} es_query_server_conf_t;

/* Listen and start connecting to PostgreSQL on `base` (borrowed, must outlive the server).
 * Returns NULL with a message in errstr. Use es_query_server_destroy(). */
es_query_server_t *es_query_server_new(struct event_base *base, const es_query_server_conf_t *conf,
                                       char *errstr, size_t errstr_size);

/* The port actually listened on. */
int es_query_server_port(const es_query_server_t *srv);

/* Stop accepting connections, finish the requests in hand (at most `max_ms`), then call
 * `drained(opaque)` once from the loop. Calling it again does nothing. */
void es_query_server_drain(es_query_server_t *srv, int max_ms, void (*drained)(void *),
                           void *opaque);

/* Close everything. NULL is a no-op. */
void es_query_server_destroy(es_query_server_t *srv);

#endif
