/*
 * sagas.c: the saga routes' and the saga metrics' SQL, parameters and rendering (see sagas.h).
 *
 * Times leave the database twice: as ISO-8601 UTC text with milliseconds for people, and as
 * milliseconds since the epoch for the arithmetic (durations, the timeline). Both truncate
 * to the millisecond, so they always agree.
 */
#include "sagas.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "json.h"
#include "metrics.h"
#include "routes.h"
#include "timeline.h"

#define ISO(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
#define MS(col) "floor(extract(epoch FROM " col ") * 1000)::bigint"

/* At most this many steps are shown (the earliest); a saga has a dozen or so, but a loop of
 * duplicates must not make a reply without bound. The SQL asks for one more, to know. */
#define STEPS_MAX 1000
#define STEPS_MAX_SQL "1001"

/* es_query_saga_sql's columns */
enum {
    C_SAGA_ID,
    C_TYPE,
    C_SUBJECT,
    C_STATUS,
    C_REASON,
    C_STARTED_AT,
    C_ENDED_AT,
    C_DEADLINE_AT,
    C_TIMED_OUT_AT,
    C_STARTED_MS,
    C_ENDED_MS,
    C_NOW_MS,
    C_EVENT_ID, /* the step's columns, all NULL when the saga has no step */
    C_STEP_TYPE,
    C_SERVICE,
    C_AGGREGATE_ID,
    C_CAUSATION_ID,
    C_TOPIC,
    C_PARTITION,
    C_OFFSET,
    C_OCCURRED_AT,
    C_OCCURRED_MS,
    C_DETAIL,
    C__CNT
};

/* es_query_sagas_sql's columns */
enum {
    L_SAGA_ID,
    L_TYPE,
    L_SUBJECT,
    L_STATUS,
    L_REASON,
    L_STARTED_AT,
    L_AGE_MS,
    L_LAST_STEP,
    L_DEADLINE_AT,
    L_TIMED_OUT_AT,
    L__CNT
};

/* es_query_saga_metrics_sql's columns: a counter row has a name and no bound, a duration row
 * a bound and no name */
enum { M_TYPE, M_NAME, M_N, M_LE_MS, M__CNT };

/* clang-format off */

/* The saga id first, else the latest saga of that subject; then its steps, the earliest
 * first, cut at STEPS_MAX + 1. */
const char es_query_saga_sql[] =
    "WITH s AS (SELECT saga_id, saga_type, subject, status, reason, started_at, ended_at,"
    " deadline_at, timed_out_at FROM sagas.sagas WHERE saga_id = $1 OR subject = $1"
    " ORDER BY saga_id = $1 DESC, started_at DESC, saga_id DESC LIMIT 1)"
    " SELECT s.saga_id, s.saga_type, s.subject, s.status, s.reason,"
    " " ISO("s.started_at") ", " ISO("s.ended_at") ","
    " " ISO("s.deadline_at") ", " ISO("s.timed_out_at") ","
    " " MS("s.started_at") ", " MS("s.ended_at") ", " MS("clock_timestamp()") ","
    " t.event_id, t.type, t.service, t.aggregate_id, t.causation_id, t.topic, t.partition,"
    " t.\"offset\", " ISO("t.occurred_at") ", " MS("t.occurred_at") ", t.detail"
    " FROM s LEFT JOIN LATERAL (SELECT x.event_id, x.type, x.service, x.aggregate_id,"
    " x.causation_id, x.topic, x.partition, x.\"offset\", x.occurred_at, x.detail"
    " FROM sagas.steps x WHERE x.saga_id = s.saga_id"
    " ORDER BY x.occurred_at, x.topic, x.partition, x.\"offset\""
    " LIMIT " STEPS_MAX_SQL ") t ON true"
    " ORDER BY t.occurred_at, t.topic, t.partition, t.\"offset\"";

/* $1 status, $2 older than (ms), $3 type: NULL for any; $4 limit. Oldest first.
 *
 * One branch per status reads that status's oldest matching sagas in order from the
 * sagas_status (status, started_at) index and stops at the limit; the branches are then merged.
 * So a list costs the same whatever the table keeps (30 days of sagas by default), where a single
 * query over every status sorted the whole table (33 ms for 184,000 sagas). A branch whose
 * status is not the one asked for is skipped at once. The statuses are the five of the table's
 * CHECK constraint (saga-coordinator/store.c). */
#define LIST_STATUS(status)                                                                        \
    "(SELECT saga_id, saga_type, subject, status, reason, started_at, last_step, deadline_at,"     \
    " timed_out_at FROM sagas.sagas WHERE status = '" status "'"                                   \
    " AND ($1::text IS NULL OR $1::text = '" status "')"                                           \
    " AND started_at < coalesce(now() - $2::bigint * interval '1 millisecond', 'infinity')"        \
    " AND ($3::text IS NULL OR saga_type = $3::text)"                                              \
    " ORDER BY started_at, saga_id LIMIT $4::bigint)"

const char es_query_sagas_sql[] =
    "SELECT saga_id, saga_type, subject, status, reason, " ISO("started_at") ","
    " GREATEST(" MS("now()") " - " MS("started_at") ", 0), last_step,"
    " " ISO("deadline_at") ", " ISO("timed_out_at")
    " FROM (" LIST_STATUS("PENDING") " UNION ALL " LIST_STATUS("TIMED_OUT")
    " UNION ALL " LIST_STATUS("COMPLETED") " UNION ALL " LIST_STATUS("FAILED")
    " UNION ALL " LIST_STATUS("CANCELLED") ") s"
    " ORDER BY started_at, saga_id LIMIT $4::bigint";

const char es_query_saga_metrics_sql[] =
    "SELECT saga_type, name, n, NULL::bigint FROM sagas.counters"
    " UNION ALL SELECT saga_type, NULL, n, le_ms FROM sagas.durations"
    " ORDER BY 1";

/* clang-format on */

int es_query_sagas_params(const struct evkeyvalq *args, es_query_sagas_params_t *p, char *errstr,
                          size_t errstr_size)
{
    memset(p, 0, sizeof(*p));
    es_query_sagas_filter_t f;
    if (es_query_sagas_filter_parse(
            evhttp_find_header(args, "status"), evhttp_find_header(args, "older_than"),
            evhttp_find_header(args, "type"), evhttp_find_header(args, "limit"), &f, errstr,
            errstr_size) != 0) {
        return -1;
    }
    /* f's strings are static: they outlive the parsed arguments */
    p->values[0] = f.status;
    if (f.older_than_ms >= 0) {
        snprintf(p->older_than_ms, sizeof(p->older_than_ms), "%" PRId64, f.older_than_ms);
        p->values[1] = p->older_than_ms;
    }
    p->values[2] = f.type;
    snprintf(p->limit, sizeof(p->limit), "%" PRId64, f.limit);
    p->values[3] = p->limit;
    return 0;
}

/* A bigint column (never NULL where we read it). */
static int64_t col_i64(const PGresult *res, int row, int col)
{
    return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

/* Append `"key":` and the text column, or null when SQL NULL or `force_null`. */
static int text_or_null(es_buf_t *b, const char *key, const PGresult *res, int row, int col,
                        int force_null)
{
    if (force_null) {
        return es_buf_printf(b, "\"%s\":null", key);
    }
    return es_query_json_text(b, key, res, row, col);
}

/* One step of the timeline: entry `e` of `tl`, `seq` from 1. */
static int step_json(es_buf_t *b, const PGresult *res, const es_query_timeline_entry_t *e,
                     size_t seq)
{
    int r = (int)e->step;
    int c = (int)e->cause; /* a row too, or -1 */
    int rc = 0;
    rc |= es_buf_printf(b, "{\"seq\":%zu,", seq);
    rc |= es_query_json_text(b, "service", res, r, C_SERVICE);
    rc |= es_buf_puts(b, ",");
    rc |= es_query_json_text(b, "type", res, r, C_STEP_TYPE);
    rc |= es_buf_puts(b, ",");
    rc |= es_query_json_text(b, "aggregate_id", res, r, C_AGGREGATE_ID);
    rc |= es_buf_puts(b, ",");
    rc |= es_query_json_text(b, "event_id", res, r, C_EVENT_ID);
    rc |= es_buf_puts(b, ",");
    rc |= es_query_json_text(b, "causation_id", res, r, C_CAUSATION_ID);
    rc |= es_buf_puts(b, ",");
    rc |= text_or_null(b, "cause_type", res, c < 0 ? r : c, C_STEP_TYPE, c < 0);
    rc |= es_buf_puts(b, ",");
    rc |= text_or_null(b, "cause_service", res, c < 0 ? r : c, C_SERVICE, c < 0);
    rc |= es_buf_puts(b, ",");
    rc |= es_query_json_text(b, "topic", res, r, C_TOPIC);
    rc |= es_buf_puts(b, ",");
    rc |= es_query_json_int(b, "partition", res, r, C_PARTITION);
    rc |= es_buf_puts(b, ",");
    rc |= es_query_json_int(b, "offset", res, r, C_OFFSET);
    rc |= es_buf_puts(b, ",");
    rc |= es_query_json_text(b, "occurred_at", res, r, C_OCCURRED_AT);
    rc |= es_buf_printf(b, ",\"at_ms\":%" PRId64 ",\"took_ms\":", e->at_ms);
    if (e->took_ms >= 0) {
        rc |= es_buf_printf(b, "%" PRId64, e->took_ms);
    } else {
        rc |= es_buf_puts(b, "null");
    }
    rc |= es_buf_puts(b, ",");
    rc |= es_query_json_text(b, "detail", res, r, C_DETAIL);
    rc |= es_buf_puts(b, "}");
    return rc ? -1 : 0;
}

int es_query_saga_json(es_buf_t *body, const PGresult *res)
{
    if (PQnfields(res) < C__CNT) {
        return -1;
    }
    int rows = PQntuples(res);
    if (rows == 0) {
        return 1;
    }
    /* one row with NULL step columns: a saga without steps */
    size_t n = PQgetisnull(res, 0, C_EVENT_ID) ? 0 : (size_t)rows;
    int truncated = n > STEPS_MAX;
    if (truncated) {
        n = STEPS_MAX;
    }
    es_query_timeline_step_t *steps = NULL;
    es_query_timeline_entry_t *tl = NULL;
    if (n > 0) {
        steps = calloc(n, sizeof(*steps));
        tl = calloc(n, sizeof(*tl));
        if (!steps || !tl) {
            free(steps);
            free(tl);
            return -1;
        }
    }
    /* rows are steps: row i is steps[i], so timeline indexes are rows */
    for (size_t i = 0; i < n; i++) {
        int r = (int)i;
        steps[i].event_id = PQgetvalue(res, r, C_EVENT_ID);
        steps[i].causation_id = PQgetvalue(res, r, C_CAUSATION_ID);
        steps[i].topic = PQgetvalue(res, r, C_TOPIC);
        steps[i].partition = (int32_t)col_i64(res, r, C_PARTITION);
        steps[i].offset = col_i64(res, r, C_OFFSET);
        steps[i].occurred_ms = col_i64(res, r, C_OCCURRED_MS);
    }
    int64_t started_ms = col_i64(res, 0, C_STARTED_MS);
    int rc = es_query_timeline_order(steps, n, started_ms, tl);
    if (rc != 0) {
        free(steps);
        free(tl);
        return -1;
    }

    int64_t end_ms =
        PQgetisnull(res, 0, C_ENDED_MS) ? col_i64(res, 0, C_NOW_MS) : col_i64(res, 0, C_ENDED_MS);
    int64_t duration_ms = end_ms > started_ms ? end_ms - started_ms : 0;
    static const struct {
        const char *key;
        int col;
    } head[] = {{"saga_id", C_SAGA_ID},
                {"type", C_TYPE},
                {"subject", C_SUBJECT},
                {"status", C_STATUS},
                {"reason", C_REASON},
                {"started_at", C_STARTED_AT},
                {"ended_at", C_ENDED_AT},
                {"deadline_at", C_DEADLINE_AT},
                {"timed_out_at", C_TIMED_OUT_AT}};
    rc |= es_buf_puts(body, "{");
    for (size_t i = 0; i < sizeof(head) / sizeof(head[0]); i++) {
        rc |= es_query_json_text(body, head[i].key, res, 0, head[i].col);
        rc |= es_buf_puts(body, ",");
    }
    rc |= es_buf_printf(body, "\"duration_ms\":%" PRId64 ",\"steps\":[", duration_ms);
    for (size_t k = 0; k < n; k++) {
        if (k) {
            rc |= es_buf_puts(body, ",");
        }
        rc |= step_json(body, res, &tl[k], k + 1);
    }
    rc |= es_buf_printf(body, "],\"truncated\":%s}\n", truncated ? "true" : "false");
    free(steps);
    free(tl);
    return rc ? -1 : 0;
}

int es_query_sagas_json(es_buf_t *body, const PGresult *res)
{
    static const struct {
        const char *key;
        int col;
        char kind; /* 't' text, 'i' integer */
    } fields[] = {{"saga_id", L_SAGA_ID, 't'},         {"type", L_TYPE, 't'},
                  {"subject", L_SUBJECT, 't'},         {"status", L_STATUS, 't'},
                  {"reason", L_REASON, 't'},           {"started_at", L_STARTED_AT, 't'},
                  {"age_ms", L_AGE_MS, 'i'},           {"last_step", L_LAST_STEP, 't'},
                  {"deadline_at", L_DEADLINE_AT, 't'}, {"timed_out_at", L_TIMED_OUT_AT, 't'}};
    if (PQnfields(res) < L__CNT) {
        return -1;
    }
    int rows = PQntuples(res);
    int rc = es_buf_puts(body, "{\"sagas\":[");
    for (int r = 0; rc == 0 && r < rows; r++) {
        rc |= es_buf_puts(body, r ? ",{" : "{");
        for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
            if (i) {
                rc |= es_buf_puts(body, ",");
            }
            if (fields[i].kind == 'i') {
                rc |= es_query_json_int(body, fields[i].key, res, r, fields[i].col);
            } else {
                rc |= es_query_json_text(body, fields[i].key, res, r, fields[i].col);
            }
        }
        rc |= es_buf_puts(body, "}");
    }
    rc |= es_buf_printf(body, "],\"count\":%d}\n", rows);
    return rc ? -1 : 0;
}

int es_query_saga_metrics_text(es_buf_t *out, const PGresult *res)
{
    if (PQnfields(res) < M__CNT) {
        return -1;
    }
    int rows = PQntuples(res);
    if (rows == 0) {
        return 0;
    }
    /* rows come by type: one entry per run of a type */
    es_query_saga_stats_t *stats = calloc((size_t)rows, sizeof(*stats));
    if (!stats) {
        return -1;
    }
    size_t n = 0;
    for (int r = 0; r < rows; r++) {
        const char *type = PQgetvalue(res, r, M_TYPE);
        if (n == 0 || strcmp(stats[n - 1].type, type) != 0) {
            stats[n++].type = type;
        }
        es_query_saga_stats_t *st = &stats[n - 1];
        int64_t v = col_i64(res, r, M_N);
        if (!PQgetisnull(res, r, M_NAME)) {
            int c = es_query_saga_counter(PQgetvalue(res, r, M_NAME));
            if (c >= 0) {
                st->counters[c] += v;
            }
        } else if (!PQgetisnull(res, r, M_LE_MS)) {
            st->buckets[es_query_saga_bucket(col_i64(res, r, M_LE_MS))] += v;
        }
    }
    int rc = es_query_metrics_render_sagas(stats, n, out);
    free(stats);
    return rc;
}
