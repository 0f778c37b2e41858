/*
 * metrics.c: request counters and latency histograms (see metrics.h).
 */
#include "metrics.h"

#include <string.h>

static const double bucket_bounds[ES_QUERY_METRICS_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0};
static const char *const bucket_labels[ES_QUERY_METRICS_BUCKETS] = {
    "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1"};
/* The status codes the service answers with; the last slot counts any other. */
static const int codes[ES_QUERY_METRICS_CODES - 1] = {200, 400, 404, 405, 413, 500, 503};

void es_query_metrics_init(es_query_metrics_t *m)
{
    memset(m, 0, sizeof(*m));
}

void es_query_metrics_observe(es_query_metrics_t *m, es_query_route_t route, int code,
                              double seconds)
{
    if (route < 0 || route >= ES_ROUTE__CNT) {
        route = ES_ROUTE_NONE;
    }
    int ci = ES_QUERY_METRICS_CODES - 1;
    for (int i = 0; i < ES_QUERY_METRICS_CODES - 1; i++) {
        if (codes[i] == code) {
            ci = i;
            break;
        }
    }
    m->requests[route][ci]++;
    for (int b = 0; b < ES_QUERY_METRICS_BUCKETS; b++) {
        if (seconds <= bucket_bounds[b]) {
            m->buckets[route][b]++;
            break;
        }
    }
    m->count[route]++;
    m->sum[route] += seconds;
}

int es_query_metrics_label(es_buf_t *buf, const char *s)
{
    for (const char *p = s; *p; p++) {
        int rc;
        if (*p == '\\') {
            rc = es_buf_puts(buf, "\\\\");
        } else if (*p == '"') {
            rc = es_buf_puts(buf, "\\\"");
        } else if (*p == '\n') {
            rc = es_buf_puts(buf, "\\n");
        } else {
            rc = es_buf_append(buf, p, 1);
        }
        if (rc != 0) {
            return -1;
        }
    }
    return 0;
}

int es_query_metrics_render(const es_query_metrics_t *m, es_buf_t *buf)
{
    int rc = 0;
    rc |= es_buf_puts(buf, "# HELP es_http_requests_total HTTP requests answered, by route and "
                           "status code.\n# TYPE es_http_requests_total counter\n");
    for (int r = 0; r < ES_ROUTE__CNT; r++) {
        for (int c = 0; c < ES_QUERY_METRICS_CODES; c++) {
            if (!m->requests[r][c]) {
                continue;
            }
            if (c < ES_QUERY_METRICS_CODES - 1) {
                rc |= es_buf_printf(buf, "es_http_requests_total{route=\"%s\",code=\"%d\"} %llu\n",
                                    es_query_route_name((es_query_route_t)r), codes[c],
                                    (unsigned long long)m->requests[r][c]);
            } else {
                rc |=
                    es_buf_printf(buf, "es_http_requests_total{route=\"%s\",code=\"other\"} %llu\n",
                                  es_query_route_name((es_query_route_t)r),
                                  (unsigned long long)m->requests[r][c]);
            }
        }
    }
    rc |= es_buf_puts(buf, "# HELP es_http_request_duration_seconds Time from request to reply, "
                           "by route.\n# TYPE es_http_request_duration_seconds histogram\n");
    for (int r = 0; r < ES_ROUTE__CNT; r++) {
        const char *name = es_query_route_name((es_query_route_t)r);
        uint64_t cum = 0;
        for (int b = 0; b < ES_QUERY_METRICS_BUCKETS; b++) {
            cum += m->buckets[r][b];
            rc |= es_buf_printf(
                buf, "es_http_request_duration_seconds_bucket{route=\"%s\",le=\"%s\"} %llu\n", name,
                bucket_labels[b], (unsigned long long)cum);
        }
        rc |= es_buf_printf(buf,
                            "es_http_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} "
                            "%llu\n",
                            name, (unsigned long long)m->count[r]);
        rc |= es_buf_printf(buf, "es_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n", name,
                            m->sum[r]);
        rc |= es_buf_printf(buf, "es_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
                            name, (unsigned long long)m->count[r]);
    }
    return rc ? -1 : 0;
}
