/*
 * store.c: the saga coordinator's tables, loaded and saved per batch (see store.h).
 */
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "str.h"

/* Times are timestamptz in the tables (people read them) and ms since the epoch here. */
#define MS(col) "(extract(epoch FROM " col ") * 1000)::bigint"
#define TS(ms) "'epoch'::timestamptz + " ms " * interval '1 millisecond'"

const char saga_store_ddl[] =
    "CREATE TABLE IF NOT EXISTS sagas ("
    " saga_id text PRIMARY KEY, saga_type text NOT NULL DEFAULT '',"
    " subject text NOT NULL DEFAULT '', status text NOT NULL CHECK (status IN ('PENDING',"
    " 'TIMED_OUT', 'COMPLETED', 'FAILED', 'CANCELLED')), reason text NOT NULL DEFAULT '',"
    " started_at timestamptz NOT NULL, updated_at timestamptz NOT NULL, ended_at timestamptz,"
    " deadline_at timestamptz, timed_out_at timestamptz, last_step text NOT NULL DEFAULT '',"
    " last_event_id text NOT NULL DEFAULT '', traceparent text NOT NULL DEFAULT '',"
    " step_count int NOT NULL DEFAULT 0) WITH (fillfactor = 80);"
    /* the timer's scan: only the pending ones, by deadline */
    "CREATE INDEX IF NOT EXISTS sagas_due ON sagas (deadline_at) WHERE status = 'PENDING';"
    "CREATE INDEX IF NOT EXISTS sagas_status ON sagas (status, started_at);"
    "CREATE INDEX IF NOT EXISTS sagas_subject ON sagas (subject, started_at);"
    "CREATE TABLE IF NOT EXISTS steps ("
    " event_id text PRIMARY KEY, saga_id text NOT NULL, type text NOT NULL,"
    " service text NOT NULL, aggregate_id text NOT NULL, causation_id text NOT NULL,"
    " topic text NOT NULL, partition int NOT NULL, \"offset\" bigint NOT NULL,"
    " occurred_at timestamptz NOT NULL, detail text NOT NULL DEFAULT '');"
    "CREATE INDEX IF NOT EXISTS steps_saga ON steps (saga_id, occurred_at);"
    "CREATE TABLE IF NOT EXISTS counters ("
    " saga_type text NOT NULL, name text NOT NULL, n bigint NOT NULL,"
    " PRIMARY KEY (saga_type, name));"
    "CREATE TABLE IF NOT EXISTS durations ("
    " saga_type text NOT NULL, le_ms bigint NOT NULL, n bigint NOT NULL,"
    " PRIMARY KEY (saga_type, le_ms));";

const int64_t saga_bucket_le_ms[SAGA_BUCKETS] = {10,   25,   50,    100,   250,   500, 1000,
                                                 2500, 5000, 10000, 30000, 60000, -1};

/* A saga row's columns, as saga_from_row() reads them (optional times: 0 for none). */
/* clang-format off */
#define SAGA_COLS                                                                      \
    "saga_id, saga_type, subject, status, reason, "                                    \
    MS("started_at") ", " MS("updated_at") ", "                                        \
    "coalesce(" MS("ended_at") ", 0), coalesce(" MS("deadline_at") ", 0), "            \
    "coalesce(" MS("timed_out_at") ", 0), last_step, last_event_id, traceparent, step_count"
/* clang-format on */

/* A row of SAGA_COLS into *s. */
static void saga_from_row(const PGresult *res, int r, saga_t *s)
{
    s->exists = 1;
    es_str_copy(s->id, sizeof(s->id), PQgetvalue(res, r, 0));
    int t = saga_type_parse(PQgetvalue(res, r, 1));
    s->type = t < 0 ? SAGA_T_UNKNOWN : (saga_type_t)t;
    es_str_copy(s->subject, sizeof(s->subject), PQgetvalue(res, r, 2));
    int st = saga_status_parse(PQgetvalue(res, r, 3));
    s->status = st < 0 ? SAGA_PENDING : (saga_status_t)st;
    es_str_copy(s->reason, sizeof(s->reason), PQgetvalue(res, r, 4));
    s->started_ms = strtoll(PQgetvalue(res, r, 5), NULL, 10);
    s->updated_ms = strtoll(PQgetvalue(res, r, 6), NULL, 10);
    s->ended_ms = strtoll(PQgetvalue(res, r, 7), NULL, 10);
    s->deadline_ms = strtoll(PQgetvalue(res, r, 8), NULL, 10);
    s->timed_out_ms = strtoll(PQgetvalue(res, r, 9), NULL, 10);
    es_str_copy(s->last_step, sizeof(s->last_step), PQgetvalue(res, r, 10));
    es_str_copy(s->last_event_id, sizeof(s->last_event_id), PQgetvalue(res, r, 11));
    es_str_copy(s->traceparent, sizeof(s->traceparent), PQgetvalue(res, r, 12));
    s->step_count = strtoll(PQgetvalue(res, r, 13), NULL, 10);
}

static void load_row(const PGresult *res, int r, size_t i, void *opaque)
{
    saga_from_row(res, r, &((saga_t *)opaque)[i]);
}

int saga_store_load_queue(es_pg_pipeline_t *pl, const char *const *ids, size_t n)
{
    return es_pg_load_rows_queue(pl,
                                 "SELECT " SAGA_COLS " FROM unnest($1::text[]) AS u(id) JOIN "
                                 "sagas t ON t.saga_id = u.id ORDER BY saga_id FOR UPDATE OF t",
                                 ids, n);
}

void saga_store_load_apply(const PGresult *res, const char *const *ids, size_t n, saga_t *out)
{
    for (size_t i = 0; i < n; i++) {
        memset(&out[i], 0, sizeof(out[i]));
        es_str_copy(out[i].id, sizeof(out[i].id), ids[i]);
    }
    es_pg_load_rows_apply(res, ids, n, load_row, out);
}

/* An optional time: 0 ms means "none". */
#define TS_OR_NULL(ms) "CASE WHEN " ms " = 0 THEN NULL ELSE " TS(ms) " END"

/* clang-format off */
static const char save_sql[] =
    "INSERT INTO sagas (saga_id, saga_type, subject, status, reason, started_at, updated_at,"
    " ended_at, deadline_at, timed_out_at, last_step, last_event_id, traceparent, step_count)"
    " SELECT id, ty, sub, st, r, " TS("s0") ", " TS("s1") ","
    " " TS_OR_NULL("e") ", " TS_OR_NULL("d") ", " TS_OR_NULL("tmo") ", ls, le, tp, sc"
    " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[],"
    " $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::text[], $12::text[],"
    " $13::text[], $14::bigint[]) AS u(id, ty, sub, st, r, s0, s1, e, d, tmo, ls, le, tp, sc)"
    " ON CONFLICT (saga_id) DO UPDATE SET saga_type = EXCLUDED.saga_type,"
    " subject = EXCLUDED.subject, status = EXCLUDED.status, reason = EXCLUDED.reason,"
    " started_at = EXCLUDED.started_at, updated_at = EXCLUDED.updated_at,"
    " ended_at = EXCLUDED.ended_at, deadline_at = EXCLUDED.deadline_at,"
    " timed_out_at = EXCLUDED.timed_out_at, last_step = EXCLUDED.last_step,"
    " last_event_id = EXCLUDED.last_event_id, traceparent = EXCLUDED.traceparent,"
    " step_count = EXCLUDED.step_count";
/* clang-format on */

int saga_store_save(es_pg_pipeline_t *pl, const saga_t *sagas, const unsigned char *dirty, size_t n)
{
    static const es_pg_oid_t oids[14] = {ES_PG_TEXT, ES_PG_TEXT, ES_PG_TEXT, ES_PG_TEXT, ES_PG_TEXT,
                                         ES_PG_INT8, ES_PG_INT8, ES_PG_INT8, ES_PG_INT8, ES_PG_INT8,
                                         ES_PG_TEXT, ES_PG_TEXT, ES_PG_TEXT, ES_PG_INT8};
    es_pg_cols_t c;
    es_pg_cols_init(&c, oids, 14);
    for (size_t i = 0; i < n; i++) {
        if (!dirty[i]) {
            continue;
        }
        const saga_t *s = &sagas[i];
        es_pg_array_add_text(&c.a[0], s->id);
        es_pg_array_add_text(&c.a[1], saga_type_name(s->type));
        es_pg_array_add_text(&c.a[2], s->subject);
        es_pg_array_add_text(&c.a[3], saga_status_name(s->status));
        es_pg_array_add_text(&c.a[4], s->reason);
        es_pg_array_add_int8(&c.a[5], s->started_ms);
        es_pg_array_add_int8(&c.a[6], s->updated_ms);
        es_pg_array_add_int8(&c.a[7], s->ended_ms);
        es_pg_array_add_int8(&c.a[8], s->deadline_ms);
        es_pg_array_add_int8(&c.a[9], s->timed_out_ms);
        es_pg_array_add_text(&c.a[10], s->last_step);
        es_pg_array_add_text(&c.a[11], s->last_event_id);
        es_pg_array_add_text(&c.a[12], s->traceparent);
        es_pg_array_add_int8(&c.a[13], s->step_count);
    }
    return es_pg_cols_queue(&c, pl, save_sql);
}

int saga_store_add_steps(es_pg_pipeline_t *pl, const saga_step_row_t *steps, size_t n)
{
    static const es_pg_oid_t oids[11] = {ES_PG_TEXT, ES_PG_TEXT, ES_PG_TEXT, ES_PG_TEXT,
                                         ES_PG_TEXT, ES_PG_TEXT, ES_PG_TEXT, ES_PG_INT4,
                                         ES_PG_INT8, ES_PG_INT8, ES_PG_TEXT};
    es_pg_cols_t c;
    es_pg_cols_init(&c, oids, 11);
    for (size_t i = 0; i < n; i++) {
        const saga_step_row_t *r = &steps[i];
        es_pg_array_add_text(&c.a[0], r->step->event_id);
        es_pg_array_add_text(&c.a[1], r->step->correlation_id);
        es_pg_array_add_text(&c.a[2], r->step->type);
        es_pg_array_add_text(&c.a[3], r->service);
        es_pg_array_add_text(&c.a[4], r->aggregate_id);
        es_pg_array_add_text(&c.a[5], r->step->causation_id);
        es_pg_array_add_text(&c.a[6], r->topic);
        es_pg_array_add_int4(&c.a[7], r->partition);
        es_pg_array_add_int8(&c.a[8], r->offset);
        es_pg_array_add_int8(&c.a[9], r->step->occurred_ms);
        es_pg_array_add_text(&c.a[10], r->detail);
    }
    return es_pg_cols_queue(
        &c, pl,
        "INSERT INTO steps (event_id, saga_id, type, service, aggregate_id, causation_id, "
        "topic, partition, \"offset\", occurred_at, detail) SELECT id, sid, ty, svc, agg, cau, "
        "top, p, o, " TS("t") ", d FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], "
                              "$5::text[], $6::text[], $7::text[], $8::int[], $9::bigint[], "
                              "$10::bigint[], $11::text[]) AS u(id, sid, ty, svc, agg, cau, "
                              "top, p, o, t, d) ON CONFLICT (event_id) DO NOTHING");
}

void saga_tally_add(saga_tally_t tally[SAGA_T__COUNT], const saga_change_t *chg)
{
    saga_tally_t *t = &tally[chg->counted_type];
    t->started += chg->started;
    t->completed += chg->completed;
    t->failed += chg->failed;
    t->cancelled += chg->cancelled;
    t->timed_out += chg->timed_out;
    if (chg->duration_ms >= 0) {
        t->duration_ms_sum += chg->duration_ms;
        size_t b = 0;
        while (b + 1 < SAGA_BUCKETS && chg->duration_ms > saga_bucket_le_ms[b]) {
            b++;
        }
        t->buckets[b]++;
    }
}

int saga_store_add_tally(es_pg_pipeline_t *pl, const saga_tally_t tally[SAGA_T__COUNT])
{
    static const es_pg_oid_t coids[3] = {ES_PG_TEXT, ES_PG_TEXT, ES_PG_INT8};
    static const es_pg_oid_t doids[3] = {ES_PG_TEXT, ES_PG_INT8, ES_PG_INT8};
    es_pg_cols_t c, d;
    es_pg_cols_init(&c, coids, 3);
    es_pg_cols_init(&d, doids, 3);
    for (int ty = 0; ty < SAGA_T__COUNT; ty++) {
        const saga_tally_t *t = &tally[ty];
        const char *name = saga_type_name((saga_type_t)ty);
        const struct {
            const char *counter;
            int64_t n;
        } counts[] = {{"started", t->started},     {"completed", t->completed},
                      {"failed", t->failed},       {"cancelled", t->cancelled},
                      {"timed_out", t->timed_out}, {"duration_ms_sum", t->duration_ms_sum}};
        for (size_t k = 0; k < sizeof(counts) / sizeof(counts[0]); k++) {
            if (counts[k].n) {
                es_pg_array_add_text(&c.a[0], name);
                es_pg_array_add_text(&c.a[1], counts[k].counter);
                es_pg_array_add_int8(&c.a[2], counts[k].n);
            }
        }
        for (size_t b = 0; b < SAGA_BUCKETS; b++) {
            if (t->buckets[b]) {
                es_pg_array_add_text(&d.a[0], name);
                es_pg_array_add_int8(&d.a[1], saga_bucket_le_ms[b]);
                es_pg_array_add_int8(&d.a[2], t->buckets[b]);
            }
        }
    }
    /* sorted keys: two coordinators never wait on each other's rows in opposite orders */
    int rc = es_pg_cols_queue(&c, pl,
                              "INSERT INTO counters (saga_type, name, n) SELECT * FROM "
                              "unnest($1::text[], $2::text[], $3::bigint[]) ORDER BY 1, 2 ON "
                              "CONFLICT (saga_type, name) DO UPDATE SET n = counters.n + "
                              "EXCLUDED.n");
    int rc2 = es_pg_cols_queue(&d, pl,
                               "INSERT INTO durations (saga_type, le_ms, n) SELECT * FROM "
                               "unnest($1::text[], $2::bigint[], $3::bigint[]) ORDER BY 1, 2 ON "
                               "CONFLICT (saga_type, le_ms) DO UPDATE SET n = durations.n + "
                               "EXCLUDED.n");
    return rc == 0 && rc2 == 0 ? 0 : -1;
}

int saga_store_time_out(PGconn *pg, const char *read_until, size_t max, saga_t *out, size_t *n,
                        char *errstr, size_t errstr_size)
{
    *n = 0;
    char lim[32];
    snprintf(lim, sizeof(lim), "%zu", max);
    const char *vals[2] = {lim, read_until};
    /* least() passes over a NULL */
    PGresult *res = es_pg_query(pg,
                                "UPDATE sagas SET status = 'TIMED_OUT', timed_out_at = now() "
                                "FROM (SELECT saga_id AS due_id FROM sagas WHERE status = "
                                "'PENDING' AND deadline_at <= least(now(), $2::timestamptz) "
                                "ORDER BY deadline_at LIMIT $1::int FOR UPDATE SKIP LOCKED) due "
                                "WHERE saga_id = due_id RETURNING " SAGA_COLS,
                                2, vals, NULL, NULL, 0, errstr, errstr_size);
    if (!res) {
        return -1;
    }
    for (int r = 0; r < PQntuples(res) && *n < max; r++) {
        memset(&out[*n], 0, sizeof(out[*n]));
        saga_from_row(res, r, &out[(*n)++]);
    }
    PQclear(res);
    return 0;
}

/* CUTOFF: now minus the retention. ENDED_BEFORE_CUTOFF: the sagas of one ended status that
 * started and ended before it, oldest first, read by a range scan of sagas_status (status,
 * started_at) that stops at the LIMIT. Statements are planned once for any value of their
 * parameters (plan_cache_mode), and the plan made for an unknown cutoff with the three statuses
 * in one IN list read the whole table at every tick: 9 ms for 50,000 sagas, 27 ms under load,
 * growing with the retention, where nothing had to go. */
#define CUTOFF "now() - $1::bigint * interval '1 millisecond'"
#define ENDED_BEFORE_CUTOFF(status)                                                                \
    "(SELECT saga_id FROM sagas WHERE status = '" status "' AND started_at < " CUTOFF              \
    " AND ended_at < " CUTOFF " ORDER BY started_at LIMIT $2::int)"

int saga_store_forget(PGconn *pg, int64_t retention_ms, int max, char *errstr, size_t errstr_size)
{
    const int64_t params[2] = {retention_ms, max};
    /* clang-format off */
    PGresult *res = es_pg_query_int8(
        pg,
        "WITH old AS (" ENDED_BEFORE_CUTOFF("COMPLETED")
        " UNION ALL " ENDED_BEFORE_CUTOFF("FAILED")
        " UNION ALL " ENDED_BEFORE_CUTOFF("CANCELLED") "),"
        " gone AS (DELETE FROM sagas WHERE saga_id IN (SELECT saga_id FROM old LIMIT $2::int)"
        " RETURNING saga_id),"
        " steps_gone AS (DELETE FROM steps WHERE saga_id IN (SELECT saga_id FROM gone))"
        " SELECT count(*) FROM gone",
        2, params, errstr, errstr_size);
    /* clang-format on */
    if (!res) {
        return -1;
    }
    int n = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    return n;
}
