/*
 * routes.h: the query service's URL space, parsed without any I/O: which route a path names,
 * the id it carries (percent-decoded and validated) and the strict integers of query strings.
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

/* True when `id` is 1..128 chars of [A-Za-z0-9._:-]. */
int es_query_id_valid(const char *id, size_t len);

/* Parse a decimal integer 0..max made of digits only (no sign, no spaces). 0 or -1. */
int es_query_parse_uint(const char *s, int64_t max, int64_t *out);

#endif
