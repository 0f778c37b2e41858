/*
 * metrics.c: request counters and latency histograms, and the saga families (see metrics.h).
 */
#include "metrics.h"

#include <inttypes.h>
#include <string.h>

static const double bucket_bounds[ES_QUERY_METRICS_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0};
static const char *const bucket_labels[ES_QUERY_METRICS_BUCKETS] = {
    "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1"};
/* The status codes the service answers with; the last slot counts any other. */
static const int codes[ES_QUERY_METRICS_CODES - 1] = {200, 304, 400, 404, 405, 413, 500, 503};

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

/* ---- the saga coordinator's figures ---- */

static const char *const saga_counter_names[ES_QUERY_SAGA__CNT] = {
    [ES_QUERY_SAGA_STARTED] = "started",     [ES_QUERY_SAGA_COMPLETED] = "completed",
    [ES_QUERY_SAGA_FAILED] = "failed",       [ES_QUERY_SAGA_CANCELLED] = "cancelled",
    [ES_QUERY_SAGA_TIMED_OUT] = "timed_out", [ES_QUERY_SAGA_DURATION_MS_SUM] = "duration_ms_sum",
};

static const char *const saga_counter_help[ES_QUERY_SAGA_DURATION_MS_SUM] = {
    [ES_QUERY_SAGA_STARTED] = "Sagas whose type became known, by type.",
    [ES_QUERY_SAGA_COMPLETED] = "Sagas that completed, by type.",
    [ES_QUERY_SAGA_FAILED] = "Sagas that failed (a timeout undone included), by type.",
    [ES_QUERY_SAGA_CANCELLED] = "Sagas cancelled (orders), by type.",
    [ES_QUERY_SAGA_TIMED_OUT] = "Sagas that missed their deadline (SagaTimedOut published), by "
                                "type.",
};

/* The last bound is +Inf (-1 in the table). */
static const int64_t saga_bucket_ms[ES_QUERY_SAGA_BUCKETS - 1] = {
    10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000};
static const char *const saga_bucket_labels[ES_QUERY_SAGA_BUCKETS] = {
    "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30", "60", "+Inf"};

int es_query_saga_counter(const char *name)
{
    for (int i = 0; i < ES_QUERY_SAGA__CNT; i++) {
        if (!strcmp(name, saga_counter_names[i])) {
            return i;
        }
    }
    return -1;
}

int es_query_saga_bucket(int64_t le_ms)
{
    if (le_ms >= 0) {
        for (int i = 0; i < ES_QUERY_SAGA_BUCKETS - 1; i++) {
            if (le_ms <= saga_bucket_ms[i]) {
                return i;
            }
        }
    }
    return ES_QUERY_SAGA_BUCKETS - 1;
}

static int saga_type_label(es_buf_t *buf, const char *type)
{
    return es_query_metrics_label(buf, *type ? type : "unknown");
}

int es_query_metrics_render_sagas(const es_query_saga_stats_t *stats, size_t n, es_buf_t *buf)
{
    if (n == 0) {
        return 0;
    }
    int rc = 0;
    for (int c = 0; c < ES_QUERY_SAGA_DURATION_MS_SUM; c++) {
        const char *name = saga_counter_names[c];
        rc |= es_buf_printf(buf, "# HELP es_sagas_%s_total %s\n# TYPE es_sagas_%s_total counter\n",
                            name, saga_counter_help[c], name);
        for (size_t t = 0; t < n; t++) {
            rc |= es_buf_printf(buf, "es_sagas_%s_total{type=\"", name);
            rc |= saga_type_label(buf, stats[t].type);
            rc |= es_buf_printf(buf, "\"} %" PRId64 "\n", stats[t].counters[c]);
        }
    }
    rc |= es_buf_puts(buf, "# HELP es_saga_duration_seconds Time from a saga's first step to its "
                           "end, by type.\n# TYPE es_saga_duration_seconds histogram\n");
    for (size_t t = 0; t < n; t++) {
        int64_t cum = 0;
        for (int b = 0; b < ES_QUERY_SAGA_BUCKETS; b++) {
            cum += stats[t].buckets[b];
            rc |= es_buf_puts(buf, "es_saga_duration_seconds_bucket{type=\"");
            rc |= saga_type_label(buf, stats[t].type);
            rc |= es_buf_printf(buf, "\",le=\"%s\"} %" PRId64 "\n", saga_bucket_labels[b], cum);
        }
        /* milliseconds to seconds in integers: exact, whatever the size */
        int64_t sum = stats[t].counters[ES_QUERY_SAGA_DURATION_MS_SUM];
        const char *sign = sum < 0 ? "-" : "";
        uint64_t mag = sum < 0 ? (uint64_t)0 - (uint64_t)sum : (uint64_t)sum;
        rc |= es_buf_puts(buf, "es_saga_duration_seconds_sum{type=\"");
        rc |= saga_type_label(buf, stats[t].type);
        rc |= es_buf_printf(buf, "\"} %s%" PRIu64 ".%03" PRIu64 "\n", sign, mag / 1000, mag % 1000);
        rc |= es_buf_puts(buf, "es_saga_duration_seconds_count{type=\"");
        rc |= saga_type_label(buf, stats[t].type);
        rc |= es_buf_printf(buf, "\"} %" PRId64 "\n", cum);
    }
    return rc ? -1 : 0;
}
