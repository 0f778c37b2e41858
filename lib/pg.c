/*
 * pg.c: PostgreSQL helpers (see pg.h).
 */
#include "pg.h"

#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

/* Server notices ("schema ... does not exist, skipping") are debug logs, not stderr noise. */
static void notice_to_log(void *arg, const char *message)
{
    (void)arg;
    size_t n = strlen(message);
    es_log_debug("postgresql notice", "notice=\"%.*s\"",
                 (int)(n && message[n - 1] == '\n' ? n - 1 : n), message);
}

static volatile sig_atomic_t stop_waiting;

void es_pg_stop_waiting(void)
{
    stop_waiting = 1;
}

PGconn *es_pg_connect(const char *conninfo, int wait_s, char *errstr, size_t errstr_size)
{
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (int attempt = 0;; attempt++) {
        /* The service's name shows in pg_stat_activity, unless the conninfo names another. */
        const char *const keywords[] = {"dbname", "fallback_application_name", NULL};
        const char *const values[] = {conninfo, es_log_service(), NULL};
        PGconn *pg = PQconnectdbParams(keywords, values, 1);
        if (PQstatus(pg) == CONNECTION_OK) {
            PQsetNoticeProcessor(pg, notice_to_log, NULL);
            return pg;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec >= wait_s || stop_waiting) {
            snprintf(errstr, errstr_size, "could not connect to PostgreSQL%s: %s",
                     stop_waiting ? " (stopping: not waiting for it)" : "", PQerrorMessage(pg));
            /* libpq messages end with a newline: drop it */
            size_t n = strlen(errstr);
            while (n && (errstr[n - 1] == '\n')) {
                errstr[--n] = '\0';
            }
            PQfinish(pg);
            return NULL;
        }
        PQfinish(pg);
        if (attempt == 0) {
            es_log_info("waiting for PostgreSQL", "wait_s=%d", wait_s);
        }
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static void set_err(PGconn *pg, const PGresult *res, const char *sql, char *errstr,
                    size_t errstr_size)
{
    const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(pg);
    if (!msg || !*msg) {
        msg = PQerrorMessage(pg);
    }
    char first[64];
    snprintf(first, sizeof(first), "%s", sql);
    for (char *p = first; *p; p++) {
        if (*p == '\n' || *p == '\t') {
            *p = ' ';
        }
    }
    snprintf(errstr, errstr_size, "statement \"%s...\" failed: %s", first, msg);
    size_t n = strlen(errstr);
    while (n && errstr[n - 1] == '\n') {
        errstr[--n] = '\0';
    }
}

int es_pg_exec(PGconn *pg, const char *sql, char *errstr, size_t errstr_size)
{
    PGresult *res = PQexec(pg, sql);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        set_err(pg, res, sql, errstr, errstr_size);
        PQclear(res);
        return -1;
    }
    PQclear(res);
    return 0;
}

/*
 * Prepared statements: every statement with parameters is prepared once per connection and
 * then executed by name, so PostgreSQL parses and plans it once instead of once per batch.
 * The cache is per thread, keyed by the SQL text, and serves the connection the thread used
 * last: it starts over when the connection changes (a reconnect drops the server's prepared
 * statements).
 */
#define STMT_CACHE 128

/* The statements prepared on this thread's connection, which is known by its address and its
 * server process: a new connection can reuse a closed one's address. */
static _Thread_local struct {
    const PGconn *pg;
    int backend_pid;
    size_t cnt;
    char *sql[STMT_CACHE];
} stmts;

static int stmt_name(PGconn *pg, const char *sql, int nparams, char name[32], char *errstr,
                     size_t errstr_size)
{
    if (stmts.pg != pg || stmts.backend_pid != PQbackendPID(pg)) {
        for (size_t i = 0; i < stmts.cnt; i++) {
            free(stmts.sql[i]);
        }
        stmts.cnt = 0;
        stmts.pg = pg;
        stmts.backend_pid = PQbackendPID(pg);
    }
    for (size_t i = 0; i < stmts.cnt; i++) {
        if (!strcmp(stmts.sql[i], sql)) {
            snprintf(name, 32, "es%zu", i);
            return 0;
        }
    }
    if (stmts.cnt == STMT_CACHE) {
        return 1; /* full: run it unprepared */
    }
    char *dup = strdup(sql);
    if (!dup) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    snprintf(name, 32, "es%zu", stmts.cnt);
    PGresult *res = PQprepare(pg, name, sql, nparams, NULL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        set_err(pg, res, sql, errstr, errstr_size);
        PQclear(res);
        free(dup);
        return -1;
    }
    PQclear(res);
    stmts.sql[stmts.cnt++] = dup;
    return 0;
}

void es_pg_forget_prepared(void)
{
    for (size_t i = 0; i < stmts.cnt; i++) {
        free(stmts.sql[i]);
    }
    stmts.cnt = 0;
    stmts.pg = NULL;
}

PGresult *es_pg_query(PGconn *pg, const char *sql, int nparams, const char *const *values,
                      const int *lens, const int *formats, int result_binary, char *errstr,
                      size_t errstr_size)
{
    char name[32];
    int prep = nparams > 0 ? stmt_name(pg, sql, nparams, name, errstr, errstr_size) : 1;
    if (prep < 0) {
        return NULL;
    }
    PGresult *res =
        prep == 0
            ? PQexecPrepared(pg, name, nparams, values, lens, formats, result_binary ? 1 : 0)
            : PQexecParams(pg, sql, nparams, NULL, values, lens, formats, result_binary ? 1 : 0);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        set_err(pg, res, sql, errstr, errstr_size);
        PQclear(res);
        return NULL;
    }
    return res;
}

PGresult *es_pg_query_int8(PGconn *pg, const char *sql, int nparams, const int64_t *params,
                           char *errstr, size_t errstr_size)
{
    char text[8][24];
    const char *vals[8];
    if (nparams < 0 || nparams > 8) {
        snprintf(errstr, errstr_size, "es_pg_query_int8: %d parameters (at most 8)", nparams);
        return NULL;
    }
    for (int i = 0; i < nparams; i++) {
        snprintf(text[i], sizeof(text[i]), "%lld", (long long)params[i]);
        vals[i] = text[i];
    }
    return es_pg_query(pg, sql, nparams, vals, NULL, NULL, 0, errstr, errstr_size);
}

/* ---- pipelines -------------------------------------------------------------------------- */

typedef struct es_pg_stmt {
    const char *sql;
    int nparams;
    size_t off[16]; /* parameter offsets in the arena; (size_t)-1 = NULL */
    int lens[16];
    int formats[16];
    PGresult *res;
} es_pg_stmt_t;

void es_pg_pipeline_init(es_pg_pipeline_t *pl)
{
    memset(pl, 0, sizeof(*pl));
    es_buf_init(&pl->arena);
}

void es_pg_pipeline_reset(es_pg_pipeline_t *pl)
{
    for (size_t i = 0; i < pl->cnt; i++) {
        PQclear(pl->stmts[i].res);
    }
    pl->cnt = 0;
    es_buf_reset(&pl->arena);
}

void es_pg_pipeline_fini(es_pg_pipeline_t *pl)
{
    es_pg_pipeline_reset(pl);
    free(pl->stmts);
    es_buf_fini(&pl->arena);
    memset(pl, 0, sizeof(*pl));
}

int es_pg_pipeline_add(es_pg_pipeline_t *pl, const char *sql, int nparams,
                       const char *const *values, const int *lens, const int *formats)
{
    if (nparams > 16) {
        return -1;
    }
    if (pl->cnt == pl->cap) {
        size_t cap = pl->cap ? pl->cap * 2 : 16;
        es_pg_stmt_t *n = realloc(pl->stmts, cap * sizeof(*n));
        if (!n) {
            return -1;
        }
        pl->stmts = n;
        pl->cap = cap;
    }
    es_pg_stmt_t *st = &pl->stmts[pl->cnt];
    memset(st, 0, sizeof(*st));
    st->sql = sql;
    st->nparams = nparams;
    for (int i = 0; i < nparams; i++) {
        st->formats[i] = formats ? formats[i] : 0;
        if (!values[i]) {
            st->off[i] = (size_t)-1;
            continue;
        }
        size_t len = st->formats[i] ? (size_t)lens[i] : strlen(values[i]) + 1;
        st->off[i] = pl->arena.len;
        st->lens[i] = (int)len;
        if (es_buf_append(&pl->arena, values[i], len) != 0) {
            return -1;
        }
    }
    return (int)pl->cnt++;
}

PGresult *es_pg_pipeline_result(const es_pg_pipeline_t *pl, int idx)
{
    return idx >= 0 && (size_t)idx < pl->cnt ? pl->stmts[idx].res : NULL;
}

int es_pg_pipeline_send(PGconn *pg, es_pg_pipeline_t *pl, int result_binary, char *errstr,
                        size_t errstr_size)
{
    char names[64][32];
    int prepared[64]; /* 0: the cache is full, the statement goes unprepared */
    pl->failed = 0;
    pl->err[0] = '\0';
    pl->sent = 0;
    if (pl->cnt > 64) {
        snprintf(errstr, errstr_size, "pipeline of %zu statements is too long", pl->cnt);
        return -1;
    }
    /* prepare first: preparing is not possible once in pipeline mode */
    for (size_t i = 0; i < pl->cnt; i++) {
        int rc = pl->stmts[i].nparams > 0 ? stmt_name(pg, pl->stmts[i].sql, pl->stmts[i].nparams,
                                                      names[i], errstr, errstr_size)
                                          : 1;
        if (rc < 0) {
            return -1;
        }
        prepared[i] = rc == 0;
    }
    if (!PQenterPipelineMode(pg)) {
        snprintf(errstr, errstr_size, "could not enter pipeline mode: %s", PQerrorMessage(pg));
        return -1;
    }
    for (size_t i = 0; i < pl->cnt && !pl->failed; i++) {
        es_pg_stmt_t *st = &pl->stmts[i];
        const char *vals[16];
        for (int k = 0; k < st->nparams; k++) {
            vals[k] = st->off[k] == (size_t)-1 ? NULL : (const char *)pl->arena.data + st->off[k];
        }
        int ok = prepared[i] ? PQsendQueryPrepared(pg, names[i], st->nparams, vals, st->lens,
                                                   st->formats, result_binary)
                             : PQsendQueryParams(pg, st->sql, st->nparams, NULL, vals, st->lens,
                                                 st->formats, result_binary);
        if (!ok) {
            snprintf(pl->err, sizeof(pl->err), "could not send a statement: %s",
                     PQerrorMessage(pg));
            pl->failed = 1;
        }
    }
    if (!PQpipelineSync(pg)) {
        if (!pl->failed) {
            snprintf(pl->err, sizeof(pl->err), "could not send the pipeline: %s",
                     PQerrorMessage(pg));
        }
        pl->failed = 1;
    }
    pl->sent = 1;
    return 0;
}

int es_pg_pipeline_collect(PGconn *pg, es_pg_pipeline_t *pl, char *errstr, size_t errstr_size)
{
    int failed = pl->failed;
    if (failed) {
        snprintf(errstr, errstr_size, "%s", pl->err);
    }
    pl->sent = 0;
    /* read every statement's results, each ended by a NULL, then the sync point */
    for (size_t i = 0; i < pl->cnt; i++) {
        PGresult *r;
        while ((r = PQgetResult(pg)) != NULL) {
            ExecStatusType est = PQresultStatus(r);
            if (est == PGRES_PIPELINE_SYNC) {
                PQclear(r);
                goto synced; /* sent fewer than queued (a send failed) */
            }
            if (est == PGRES_FATAL_ERROR && !failed) {
                set_err(pg, r, pl->stmts[i].sql, errstr, errstr_size);
                failed = 1;
            }
            if ((est == PGRES_TUPLES_OK || est == PGRES_COMMAND_OK) && !pl->stmts[i].res) {
                pl->stmts[i].res = r;
            } else {
                PQclear(r);
            }
        }
        if (PQstatus(pg) != CONNECTION_OK) {
            if (!failed) {
                snprintf(errstr, errstr_size, "connection lost: %s", PQerrorMessage(pg));
            }
            failed = 1;
            break;
        }
    }
    if (PQstatus(pg) == CONNECTION_OK) {
        PGresult *r = PQgetResult(pg);
        while (r && PQresultStatus(r) != PGRES_PIPELINE_SYNC) {
            PQclear(r);
            r = PQgetResult(pg);
        }
        PQclear(r);
    }
synced:
    PQexitPipelineMode(pg);
    return failed ? -1 : 0;
}

int es_pg_pipeline_run(PGconn *pg, es_pg_pipeline_t *pl, int result_binary, char *errstr,
                       size_t errstr_size)
{
    if (pl->cnt == 0) {
        return 0;
    }
    if (es_pg_pipeline_send(pg, pl, result_binary, errstr, errstr_size) != 0) {
        return -1;
    }
    return es_pg_pipeline_collect(pg, pl, errstr, errstr_size);
}

void es_pg_cols_init(es_pg_cols_t *c, const es_pg_oid_t *oids, int n)
{
    c->n = n;
    for (int i = 0; i < n; i++) {
        es_pg_array_init(&c->a[i], oids[i]);
    }
}

void es_pg_cols_fini(es_pg_cols_t *c)
{
    for (int i = 0; i < c->n; i++) {
        es_pg_array_fini(&c->a[i]);
    }
    c->n = 0;
}

int es_pg_cols_queue(es_pg_cols_t *c, es_pg_pipeline_t *pl, const char *sql)
{
    int rc = 0;
    if (c->n > 0 && c->a[0].count > 0) {
        const char *vals[ES_PG_COLS_MAX];
        int lens[ES_PG_COLS_MAX], fmts[ES_PG_COLS_MAX];
        for (int i = 0; i < c->n; i++) {
            if (es_pg_array_finish(&c->a[i]) != 0) {
                rc = -1;
            }
            vals[i] = (const char *)c->a[i].buf.data;
            lens[i] = (int)c->a[i].buf.len;
            fmts[i] = 1;
        }
        if (rc == 0 && es_pg_pipeline_add(pl, sql, c->n, vals, lens, fmts) < 0) {
            rc = -1;
        }
    }
    es_pg_cols_fini(c);
    return rc;
}

/* The ids as one binary text[] parameter value, in `a` (initialised here). */
static int ids_param(es_pg_array_t *a, const char *const *ids, size_t n)
{
    es_pg_array_init(a, ES_PG_TEXT);
    for (size_t i = 0; i < n; i++) {
        es_pg_array_add_text(a, ids[i]);
    }
    return es_pg_array_finish(a);
}

void es_pg_load_rows_apply(const PGresult *res, const char *const *ids, size_t n, es_pg_row_fn *row,
                           void *opaque)
{
    if (!res || n == 0 || PQntuples(res) == 0) {
        return;
    }
    es_strmap_t idx;
    es_strmap_init(&idx);
    for (size_t i = 0; i < n; i++) {
        es_strmap_put(&idx, ids[i], i);
    }
    for (int r = 0; r < PQntuples(res); r++) {
        size_t i = es_strmap_get(&idx, PQgetvalue(res, r, 0));
        if (i != (size_t)-1) {
            row(res, r, i, opaque);
        }
    }
    es_strmap_fini(&idx);
}

int es_pg_load_rows_queue(es_pg_pipeline_t *pl, const char *sql, const char *const *ids, size_t n)
{
    if (n == 0) {
        return ES_PG_NOTHING;
    }
    es_pg_array_t a;
    int k = -1;
    if (ids_param(&a, ids, n) == 0) {
        const char *vals[1] = {(const char *)a.buf.data};
        int lens[1] = {(int)a.buf.len};
        int fmts[1] = {1};
        k = es_pg_pipeline_add(pl, sql, 1, vals, lens, fmts);
    }
    es_pg_array_fini(&a);
    return k;
}

int es_pg_load_rows_queue2(es_pg_pipeline_t *pl, const char *sql, const char *const *ids, size_t n,
                           const char *const *more, size_t m)
{
    if (n == 0 && m == 0) {
        return ES_PG_NOTHING;
    }
    es_pg_array_t a[2];
    int k = -1;
    int rc0 = ids_param(&a[0], ids, n), rc1 = ids_param(&a[1], more, m);
    if (rc0 == 0 && rc1 == 0) {
        const char *vals[2] = {(const char *)a[0].buf.data, (const char *)a[1].buf.data};
        int lens[2] = {(int)a[0].buf.len, (int)a[1].buf.len};
        int fmts[2] = {1, 1};
        k = es_pg_pipeline_add(pl, sql, 2, vals, lens, fmts);
    }
    es_pg_array_fini(&a[0]);
    es_pg_array_fini(&a[1]);
    return k;
}

int es_pg_load_rows(PGconn *pg, const char *sql, const char *const *ids, size_t n,
                    es_pg_row_fn *row, void *opaque, char *errstr, size_t errstr_size)
{
    if (n == 0) {
        return 0; /* nothing to load: no round trip (a projector batch often touches one kind) */
    }
    es_pg_array_t a;
    if (ids_param(&a, ids, n) != 0) {
        es_pg_array_fini(&a);
        snprintf(errstr, errstr_size, "out of memory for %zu ids", n);
        return -1;
    }
    const char *vals[1] = {(const char *)a.buf.data};
    int lens[1] = {(int)a.buf.len};
    int fmts[1] = {1};
    PGresult *res = es_pg_query(pg, sql, 1, vals, lens, fmts, 0, errstr, errstr_size);
    es_pg_array_fini(&a);
    if (!res) {
        return -1;
    }
    es_pg_load_rows_apply(res, ids, n, row, opaque);
    PQclear(res);
    return 0;
}

int es_pg_retriable(PGconn *pg, const PGresult *res)
{
    if (PQstatus(pg) != CONNECTION_OK) {
        return 1;
    }
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (!state) {
        return 0;
    }
    /* 40001 serialization, 40P01 deadlock, 55P03 lock not available, 57P01 admin shutdown,
     * 08xxx connection exceptions, 53xxx insufficient resources, 23505 unique violation */
    return !strcmp(state, "40001") || !strcmp(state, "40P01") || !strcmp(state, "55P03") ||
           !strncmp(state, "57P", 3) || !strncmp(state, "08", 2) || !strncmp(state, "53", 2) ||
           /* two instances creating the same row: the retry reads it */
           !strcmp(state, "23505");
}

/* Binary array layout: i32 ndim, i32 has_null, u32 elem oid, i32 dim, i32 lbound, then
 * elements as i32 length (-1 = NULL) + bytes. The header is reserved at init and written by
 * finish, once the count is known. */
#define ARRAY_HDR 20

void es_pg_array_init(es_pg_array_t *a, es_pg_oid_t oid)
{
    es_buf_init(&a->buf);
    a->oid = oid;
    a->count = 0;
    es_pg_array_reset(a);
}

void es_pg_array_fini(es_pg_array_t *a)
{
    es_buf_fini(&a->buf);
}

void es_pg_array_reset(es_pg_array_t *a)
{
    static const unsigned char zeros[ARRAY_HDR] = {0};
    es_buf_reset(&a->buf);
    a->count = 0;
    a->has_null = 0;
    a->failed = es_buf_append(&a->buf, zeros, ARRAY_HDR) != 0;
}

static int put32(es_buf_t *b, uint32_t v)
{
    uint32_t n = htonl(v);
    return es_buf_append(b, &n, 4);
}

static int add_elem(es_pg_array_t *a, const void *data, int32_t len)
{
    if (a->failed || put32(&a->buf, (uint32_t)len) != 0 ||
        (len > 0 && es_buf_append(&a->buf, data, (size_t)len) != 0)) {
        a->failed = 1;
        return -1;
    }
    if (len < 0) {
        a->has_null = 1;
    }
    a->count++;
    return 0;
}

int es_pg_array_add_text(es_pg_array_t *a, const char *s)
{
    return s ? add_elem(a, s, (int32_t)strlen(s)) : add_elem(a, NULL, -1);
}

int es_pg_array_add_bytes(es_pg_array_t *a, const void *data, size_t len)
{
    return data ? add_elem(a, data, (int32_t)len) : add_elem(a, NULL, -1);
}

int es_pg_array_add_int4(es_pg_array_t *a, int32_t v)
{
    uint32_t n = htonl((uint32_t)v);
    return add_elem(a, &n, 4);
}

int es_pg_array_add_int8(es_pg_array_t *a, int64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++) {
        b[i] = (unsigned char)((uint64_t)v >> (56 - 8 * i));
    }
    return add_elem(a, b, 8);
}

int es_pg_array_add_bool(es_pg_array_t *a, int v)
{
    unsigned char b = v ? 1 : 0;
    return add_elem(a, &b, 1);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

int es_pg_array_add_uuid(es_pg_array_t *a, const char *id)
{
    unsigned char b[16];
    for (int i = 0; i < 16; i++) {
        int hi = hexval(id[2 * i]);
        int lo = hi < 0 ? -1 : hexval(id[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return -1;
        }
        b[i] = (unsigned char)(hi << 4 | lo);
    }
    if (id[32] != '\0') {
        return -1;
    }
    return add_elem(a, b, 16);
}

int es_pg_array_finish(es_pg_array_t *a)
{
    if (a->failed || a->buf.len < ARRAY_HDR) {
        return -1;
    }
    uint32_t hdr[5] = {htonl(1), htonl(a->has_null ? 1 : 0), htonl((uint32_t)a->oid),
                       htonl((uint32_t)a->count), htonl(1)};
    if (a->count == 0) {
        /* an empty array has no dimensions */
        hdr[0] = htonl(0);
        memcpy(a->buf.data, hdr, 12);
        a->buf.len = 12;
        return 0;
    }
    memcpy(a->buf.data, hdr, ARRAY_HDR);
    return 0;
}

int64_t es_pg_get_int8(const PGresult *res, int row, int col)
{
    const unsigned char *p = (const unsigned char *)PQgetvalue(res, row, col);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = v << 8 | p[i];
    }
    return (int64_t)v;
}

int32_t es_pg_get_int4(const PGresult *res, int row, int col)
{
    const unsigned char *p = (const unsigned char *)PQgetvalue(res, row, col);
    return (int32_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
}
