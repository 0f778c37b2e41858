/*
 * metrics.h: the HTTP side of the service's Prometheus metrics: request counts by route and
 * status code, and a latency histogram per route. Gauges that come from elsewhere (pool,
 * queue, projection positions) are written by the caller after es_query_metrics_render().
 * Single-threaded, in caller storage.
 */
#ifndef ES_QUERY_METRICS_H
#define ES_QUERY_METRICS_H

#include <stdint.h>

#include "buf.h"
#include "routes.h"

#define ES_QUERY_METRICS_BUCKETS 11
#define ES_QUERY_METRICS_CODES 8

typedef struct es_query_metrics {
    uint64_t requests[ES_ROUTE__CNT][ES_QUERY_METRICS_CODES];
    uint64_t buckets[ES_ROUTE__CNT][ES_QUERY_METRICS_BUCKETS]; /* not cumulative */
    uint64_t count[ES_ROUTE__CNT];
    double sum[ES_ROUTE__CNT];
} es_query_metrics_t;

/* Zero the metrics in caller storage. */
void es_query_metrics_init(es_query_metrics_t *m);

/* Count one answered request on `route` with HTTP status `code` that took `seconds`. */
void es_query_metrics_observe(es_query_metrics_t *m, es_query_route_t route, int code,
                              double seconds);

/* Append the counters and histograms in the Prometheus text format. 0 or -1 (no memory). */
int es_query_metrics_render(const es_query_metrics_t *m, es_buf_t *buf);

/* Append `s` escaped as a Prometheus label value (without quotes). 0 or -1. */
int es_query_metrics_label(es_buf_t *buf, const char *s);

#endif
