/*
 * routes.h: the query service's URL space, parsed without any I/O: which route a path names,
 * the id it carries (percent-decoded and validated), the strict integers and durations of query
 * strings, and the filters of the saga list.
 */
#ifndef ES_QUERY_ROUTES_H
#define ES_QUERY_ROUTES_H

#include <stddef.h>
#include <stdint.h>

#define ES_QUERY_ID_MAX 128

typedef enum {
    ES_ROUTE_NONE = 0,    /* no such route */
    ES_ROUTE_ACCOUNT,     /* /accounts/{id} */
    ES_ROUTE_ENTRIES,     /* /accounts/{id}/entries */
    ES_ROUTE_TRANSFER,    /* /transfers/{id} */
    ES_ROUTE_COMMAND,     /* /commands/{id} */
    ES_ROUTE_USER,        /* /users/{id} */
    ES_ROUTE_USER_ORDERS, /* /users/{id}/orders */
    ES_ROUTE_PRODUCT,     /* /products/{id} */
    ES_ROUTE_ORDER,       /* /orders/{id} */
    ES_ROUTE_SAGA,        /* /sagas/{id}: a saga id, or an order or transfer id */
    ES_ROUTE_SAGAS,       /* /sagas: the list, filtered by its query string */
    ES_ROUTE_HEALTH,      /* /health */
    ES_ROUTE_METRICS,     /* /metrics */
    ES_ROUTE__CNT
} es_query_route_t;

typedef struct es_query_path {
    es_query_route_t route;
    char id[ES_QUERY_ID_MAX + 1]; /* "" for routes without an id */
} es_query_path_t;

/* Parse `path` (the raw, percent-encoded path of a request URI, borrowed) into `out` (caller
 * storage). Returns 0 with out->route set (ES_ROUTE_NONE when nothing matches), or -1 when the
 * path names a route but is malformed (bad percent escape, id not 1..128 chars of
 * [A-Za-z0-9._:-]), with a message in errstr and out->route still naming the route. */
int es_query_route_parse(const char *path, es_query_path_t *out, char *errstr, size_t errstr_size);

/* The route's label for metrics and logs, e.g. "/accounts/{id}" (static string). */
const char *es_query_route_name(es_query_route_t route);

/* The query-string parameters `route` takes: a NULL-terminated list of static names, empty
 * for the routes that take none. */
const char *const *es_query_route_params(es_query_route_t route);

/* Check the names of a request's query-string parameters (`names[0..n)`, borrowed, as the
 * query string writes them: libevent decodes values, not names) against what `route` takes.
 * Returns 0, or -1 with a message for a 400 in errstr: the first name the route does not
 * take, or the first given twice, and the names it takes. A name is shown as printable ASCII,
 * at most 40 characters. */
int es_query_params_check(es_query_route_t route, const char *const *names, size_t n, char *errstr,
                          size_t errstr_size);

/* True when `id` is 1..128 chars of [A-Za-z0-9._:-]. */
int es_query_id_valid(const char *id, size_t len);

/* Parse a decimal integer 0..max made of digits only (no sign, no spaces). 0 or -1. */
int es_query_parse_uint(const char *s, int64_t max, int64_t *out);

/* The longest duration a query string may name: 100 years, so that the database can always
 * subtract it from now (es_parse_duration_ms, lib/duration.h). */
#define ES_QUERY_DURATION_MAX_MS INT64_C(3155760000000)

#define ES_QUERY_SAGAS_LIMIT_DEFAULT 100
#define ES_QUERY_SAGAS_LIMIT_MAX 1000

/* The filters of GET /sagas. Strings are static (never from the request). */
typedef struct es_query_sagas_filter {
    const char *status;    /* one of the five saga statuses, or NULL for any */
    const char *type;      /* "order" or "transfer", or NULL for any */
    int64_t older_than_ms; /* only sagas started before now minus this; -1 for any */
    int64_t limit;         /* 1..ES_QUERY_SAGAS_LIMIT_MAX */
} es_query_sagas_filter_t;

/* Fill `out` (caller storage) from the raw values of the query string's parameters `status`,
 * `older_than`, `type` and `limit` (each borrowed, NULL when absent). Returns 0, or -1 with a
 * message naming the parameter and what it accepts in errstr (the first bad one). */
int es_query_sagas_filter_parse(const char *status, const char *older_than, const char *type,
                                const char *limit, es_query_sagas_filter_t *out, char *errstr,
                                size_t errstr_size);

#endif
