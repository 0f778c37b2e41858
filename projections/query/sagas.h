/*
 * sagas.h: the saga coordinator's tables (schema `sagas`, see docs/SAGAS.md) as the query
 * service reads them: the SQL of the saga routes and of the saga metrics, their parameters
 * from a request, and their results as JSON or Prometheus text. No I/O here: server.c sends
 * the statements through the pool and answers.
 */
#ifndef ES_QUERY_SAGAS_H
#define ES_QUERY_SAGAS_H

#include <stddef.h>

#include <event2/keyvalq_struct.h>
#include <libpq-fe.h>

#include "buf.h"

/* The statements (static text, for the pool's statement table):
 * - es_query_saga_sql, 1 parameter: a saga id, or an order or transfer id (the most recently
 *   started saga with that subject); its row once per step (or once with no step)
 * - es_query_sagas_sql, 4 parameters, as es_query_sagas_params() fills them: the list
 * - es_query_saga_metrics_sql, no parameter: the counters and duration buckets */
extern const char es_query_saga_sql[];
extern const char es_query_sagas_sql[];
extern const char es_query_saga_metrics_sql[];

#define ES_QUERY_SAGAS_NPARAMS 4

/* The parameters of es_query_sagas_sql, in caller storage. */
typedef struct es_query_sagas_params {
    const char *values[ES_QUERY_SAGAS_NPARAMS]; /* borrowed from this struct or static; NULL
                                                 * for SQL NULL (no such filter) */
    char older_than_ms[24];
    char limit[24];
} es_query_sagas_params_t;

/* Fill `p` from `args` (the request's parsed query string, borrowed): status, older_than,
 * type, limit (see routes.h). Returns 0, or -1 with a message for a 400 in errstr. */
int es_query_sagas_params(const struct evkeyvalq *args, es_query_sagas_params_t *p, char *errstr,
                          size_t errstr_size);

/* Append the saga of `res` (borrowed, es_query_saga_sql's result) to `body` as JSON: the saga,
 * then its steps in causal order (timeline.h). Returns 0, 1 when `res` has no row (no such
 * saga: nothing appended), or -1 (unexpected result shape or out of memory; body may hold a
 * part). */
int es_query_saga_json(es_buf_t *body, const PGresult *res);

/* Append the list of `res` (borrowed, es_query_sagas_sql's result) to `body` as JSON
 * {"sagas":[...],"count":N}. Returns 0, or -1 (unexpected shape or out of memory). */
int es_query_sagas_json(es_buf_t *body, const PGresult *res);

/* Append the saga metric families for `res` (borrowed, es_query_saga_metrics_sql's result) to
 * `out` (nothing when it has no row). Returns 0, or -1 (unexpected shape or out of memory). */
int es_query_saga_metrics_text(es_buf_t *out, const PGresult *res);

#endif
