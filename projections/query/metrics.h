/*
 * metrics.h: the HTTP side of the service's Prometheus metrics: request counts by route and
 * status code, and a latency histogram per route; and the text of the saga coordinator's
 * counters and duration histogram, from figures the caller read. Gauges that come from
 * elsewhere (pool, queue, projection positions) are written by the caller after
 * es_query_metrics_render(). Single-threaded, in caller storage.
 */
#ifndef ES_QUERY_METRICS_H
#define ES_QUERY_METRICS_H

#include <stdint.h>

#include "buf.h"
#include "routes.h"

#define ES_QUERY_METRICS_BUCKETS 11
#define ES_QUERY_METRICS_CODES 9

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

/* The saga counters, by their name in the coordinator's counters table. */
typedef enum {
    ES_QUERY_SAGA_STARTED = 0,
    ES_QUERY_SAGA_COMPLETED,
    ES_QUERY_SAGA_FAILED,
    ES_QUERY_SAGA_CANCELLED,
    ES_QUERY_SAGA_TIMED_OUT,
    ES_QUERY_SAGA_DURATION_MS_SUM, /* not a family of its own: the histogram's sum */
    ES_QUERY_SAGA__CNT
} es_query_saga_counter_t;

/* The duration histogram's buckets: 10 ms .. 60 s, then +Inf. */
#define ES_QUERY_SAGA_BUCKETS 13

/* One saga type's figures. */
typedef struct es_query_saga_stats {
    const char *type; /* borrowed; "" (a type not known yet) is labelled "unknown" */
    int64_t counters[ES_QUERY_SAGA__CNT];
    int64_t buckets[ES_QUERY_SAGA_BUCKETS]; /* terminal sagas per bucket, not cumulative */
} es_query_saga_stats_t;

/* The counter a counters-table name stands for, or -1 for a name we do not show. `name` is
 * borrowed. */
int es_query_saga_counter(const char *name);

/* The bucket a durations-table bound stands for: the first bucket whose bound is at least
 * `le_ms` (so an unknown bound still lands in a cumulative-correct place), the last (+Inf)
 * for -1 or any bound above 60 s. */
int es_query_saga_bucket(int64_t le_ms);

/* Append the saga families (es_sagas_*_total counters and the es_saga_duration_seconds
 * histogram, HELP and TYPE included), one series per entry of `stats` (borrowed, n entries,
 * in the order given). Nothing when n is 0. 0 or -1 (no memory). */
int es_query_metrics_render_sagas(const es_query_saga_stats_t *stats, size_t n, es_buf_t *buf);

#endif
