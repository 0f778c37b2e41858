/*
 * pool.c: asynchronous PostgreSQL connection pool on a libevent loop (see pool.h).
 *
 * Every connection is a small state machine: DOWN (waiting to reconnect) -> CONNECTING
 * (PQconnectPoll driven by socket events) -> SETUP (preparing the statements one by one) ->
 * IDLE <-> BUSY. A busy connection runs one job through phases: TABLE (does the table the
 * statement needs exist?) and PREPARE, both only when the statement is not prepared on that
 * connection, -> EXEC, and after a "relation vanished or changed" error once more through
 * DEALLOC -> TABLE -> PREPARE -> EXEC. A missing table ends the job at TABLE, so the server
 * logs no error for it. Results are only read when the socket is readable, so nothing here
 * ever blocks the loop.
 */
#include "pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

#define POOL_MAX_PARAMS 4
#define POOL_MAX_STMTS 32
#define POOL_CONNECT_TIMEOUT_MS 10000
#define POOL_BACKOFF_MIN_MS 100
#define POOL_BACKOFF_MAX_MS 5000
#define POOL_BREAKER_MAX_FACTOR 8 /* the breaker's longest pause, in first pauses */

typedef enum {
    CONN_DOWN = 0,
    CONN_CONNECTING,
    CONN_SETUP,
    CONN_IDLE,
    CONN_BUSY,
} conn_state_t;

typedef enum {
    PHASE_NONE = 0,
    PHASE_DEALLOC,
    PHASE_TABLE,
    PHASE_PREPARE,
    PHASE_EXEC,
} conn_phase_t;

typedef struct pool_job {
    struct pool_job *prev, *next; /* FIFO links while queued */
    es_query_pool_t *pool;
    int stmt;
    es_query_cb_t *cb;
    void *opaque;
    struct event *timer; /* queue wait limit, armed only while queued behind others */
    int probe;           /* the circuit breaker's half-open probe */
    int requeued;        /* times its connection broke under it */
    int reprepared;      /* already retried after a schema change */
    const char *params[POOL_MAX_PARAMS];
    char data[]; /* parameter strings */
} pool_job_t;

typedef struct pool_conn {
    es_query_pool_t *pool;
    int idx;
    PGconn *pg;
    conn_state_t state;
    struct event *rev;      /* read watch: one-shot while connecting, persistent afterwards */
    struct event *wev;      /* write watch while libpq has unsent output */
    struct event *timer;    /* reconnect backoff, or connect timeout */
    int failures;           /* consecutive failed connection attempts */
    unsigned long prepared; /* one bit per statement */
    int setup_next;         /* next statement to prepare while in SETUP */
    pool_job_t *job;
    conn_phase_t phase;
    PGresult *res; /* first result of the command in progress */
} pool_conn_t;

struct es_query_pool {
    struct event_base *base;
    char *conninfo;
    const es_query_stmt_t *stmts;
    int stmt_cnt;
    int queue_timeout_ms;
    pool_conn_t *conns;
    int size;
    pool_job_t *qhead, *qtail;
    size_t qlen;
    struct event *kick; /* deferred dispatch, so that submit never calls back */
    char last_error[512];
    es_breaker_t breaker;
    char refusal[600]; /* why the breaker refused the last submission */
};

static void conn_connect(pool_conn_t *c);
static void conn_break(pool_conn_t *c, const char *why);
static void pool_dispatch(es_query_pool_t *pool);

/* Keep libpq's message on one line, without its trailing newline. */
static void copy_message(char *dst, size_t size, const char *msg)
{
    snprintf(dst, size, "%s", msg ? msg : "");
    for (char *p = dst; *p; p++) {
        if (*p == '\n' || *p == '\r' || *p == '\t') {
            *p = ' ';
        }
    }
    size_t n = strlen(dst);
    while (n > 0 && dst[n - 1] == ' ') {
        dst[--n] = '\0';
    }
}

/* ---- the job queue ---- */

static void job_free(pool_job_t *job)
{
    if (job->timer) {
        event_free(job->timer);
    }
    free(job);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Log the breaker's move from `before` to its state now, if it moved. */
static void breaker_log(const es_query_pool_t *pool, es_breaker_state_t before)
{
    const es_breaker_t *b = &pool->breaker;
    if (b->state == before) {
        return;
    }
    if (b->state == ES_BREAKER_OPEN) {
        es_log_warn("circuit opened", "pause_ms=%lld last_error=\"%s\"", (long long)b->cooldown_ms,
                    pool->last_error[0] ? pool->last_error : "no database connection");
    } else if (b->state == ES_BREAKER_HALF_OPEN) {
        es_log_info("circuit half open", "probe=1");
    } else {
        es_log_info("circuit closed", "opened_total=%llu", (unsigned long long)b->opened_total);
    }
}

/* Tell the breaker how a query it let through ended: only "no answer" is a failure. */
static void breaker_outcome(es_query_pool_t *pool, int probe, es_query_status_t status)
{
    es_breaker_state_t before = pool->breaker.state;
    es_breaker_record(&pool->breaker, status != ES_QUERY_UNAVAILABLE, probe, now_ms());
    breaker_log(pool, before);
}

static void queue_remove(es_query_pool_t *pool, pool_job_t *job)
{
    if (job->prev) {
        job->prev->next = job->next;
    } else {
        pool->qhead = job->next;
    }
    if (job->next) {
        job->next->prev = job->prev;
    } else {
        pool->qtail = job->prev;
    }
    job->prev = job->next = NULL;
    pool->qlen--;
    if (job->timer) {
        event_free(job->timer);
        job->timer = NULL;
    }
}

static void on_job_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pool_job_t *job = arg;
    queue_remove(job->pool, job);
    breaker_outcome(job->pool, job->probe, ES_QUERY_UNAVAILABLE);
    job->cb(ES_QUERY_UNAVAILABLE, NULL, "timed out waiting for a database connection", job->opaque);
    job_free(job);
}

static void queue_arm_timer(es_query_pool_t *pool, pool_job_t *job)
{
    if (job->timer || pool->queue_timeout_ms <= 0) {
        return;
    }
    job->timer = evtimer_new(pool->base, on_job_timeout, job);
    if (job->timer) {
        struct timeval tv = {pool->queue_timeout_ms / 1000, (pool->queue_timeout_ms % 1000) * 1000};
        evtimer_add(job->timer, &tv);
    }
}

static void queue_push(es_query_pool_t *pool, pool_job_t *job, int at_head)
{
    if (at_head) {
        job->next = pool->qhead;
        job->prev = NULL;
        if (pool->qhead) {
            pool->qhead->prev = job;
        } else {
            pool->qtail = job;
        }
        pool->qhead = job;
    } else {
        job->prev = pool->qtail;
        job->next = NULL;
        if (pool->qtail) {
            pool->qtail->next = job;
        } else {
            pool->qhead = job;
        }
        pool->qtail = job;
    }
    pool->qlen++;
}

/* ---- pool-wide state ---- */

int es_query_pool_usable(const es_query_pool_t *pool)
{
    for (int i = 0; i < pool->size; i++) {
        const pool_conn_t *c = &pool->conns[i];
        /* failures == 0 while DOWN or CONNECTING: reconnecting at once after a break. */
        if (c->state == CONN_SETUP || c->state == CONN_IDLE || c->state == CONN_BUSY ||
            c->failures == 0) {
            return 1;
        }
    }
    return 0;
}

/* When no connection can serve them soon, queued jobs are answered now rather than later. */
static void pool_fail_queue_if_unusable(es_query_pool_t *pool)
{
    if (es_query_pool_usable(pool)) {
        return;
    }
    while (pool->qhead) {
        pool_job_t *job = pool->qhead;
        queue_remove(pool, job);
        breaker_outcome(pool, job->probe, ES_QUERY_UNAVAILABLE);
        job->cb(ES_QUERY_UNAVAILABLE, NULL,
                pool->last_error[0] ? pool->last_error : "no database connection", job->opaque);
        job_free(job);
    }
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pool_dispatch(arg);
}

/* ---- one connection ---- */

static void conn_clear_events(pool_conn_t *c)
{
    if (c->rev) {
        event_free(c->rev);
        c->rev = NULL;
    }
    if (c->wev) {
        event_free(c->wev);
        c->wev = NULL;
    }
    if (c->timer) {
        evtimer_del(c->timer);
    }
}

static void conn_close(pool_conn_t *c)
{
    conn_clear_events(c);
    if (c->res) {
        PQclear(c->res);
        c->res = NULL;
    }
    if (c->pg) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
    c->prepared = 0;
    c->phase = PHASE_NONE;
}

static void conn_schedule(pool_conn_t *c, int delay_ms)
{
    struct timeval tv = {delay_ms / 1000, (delay_ms % 1000) * 1000};
    c->state = CONN_DOWN;
    evtimer_add(c->timer, &tv);
}

/* A connection attempt failed: wait (doubling up to 5 s) and try again. */
static void conn_fail_connect(pool_conn_t *c, const char *why)
{
    es_query_pool_t *pool = c->pool;
    copy_message(pool->last_error, sizeof(pool->last_error), why);
    conn_close(c);
    c->failures++;
    int backoff = POOL_BACKOFF_MIN_MS;
    for (int i = 1; i < c->failures && backoff < POOL_BACKOFF_MAX_MS; i++) {
        backoff *= 2;
    }
    if (backoff > POOL_BACKOFF_MAX_MS) {
        backoff = POOL_BACKOFF_MAX_MS;
    }
    es_log_warn("could not connect to postgresql", "conn=%d attempt=%d retry_ms=%d error=\"%s\"",
                c->idx, c->failures, backoff, pool->last_error);
    conn_schedule(c, backoff);
    pool_fail_queue_if_unusable(pool);
}

static void on_conn_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pool_conn_t *c = arg;
    if (c->state == CONN_CONNECTING) {
        conn_fail_connect(c, "connection attempt timed out");
    } else if (c->state == CONN_DOWN) {
        conn_connect(c);
    }
}

/* Send what libpq buffered; watch for writability while some is left. 0, or -1 (broken). */
static int conn_flush(pool_conn_t *c)
{
    int r = PQflush(c->pg);
    if (r < 0) {
        conn_break(c, PQerrorMessage(c->pg));
        return -1;
    }
    if (r == 1) {
        event_add(c->wev, NULL);
    }
    return 0;
}

static int conn_send_prepare(pool_conn_t *c, int stmt)
{
    const es_query_stmt_t *s = &c->pool->stmts[stmt];
    if (!PQsendPrepare(c->pg, s->name, s->sql, s->nparams, NULL)) {
        conn_break(c, PQerrorMessage(c->pg));
        return -1;
    }
    c->phase = PHASE_PREPARE;
    return conn_flush(c);
}

/* Ask whether the table statement `stmt` needs exists: one row, true or false. */
static int conn_send_table_check(pool_conn_t *c, int stmt)
{
    const char *param = c->pool->stmts[stmt].needs;
    if (!PQsendQueryParams(c->pg, "SELECT to_regclass($1) IS NOT NULL", 1, NULL, &param, NULL, NULL,
                           0)) {
        conn_break(c, PQerrorMessage(c->pg));
        return -1;
    }
    c->phase = PHASE_TABLE;
    return conn_flush(c);
}

/* The answer to conn_send_table_check(): 1 the table exists, 0 not (or no clear answer). */
static int table_found(const PGresult *res)
{
    return res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
           !strcmp(PQgetvalue(res, 0, 0), "t");
}

/* Prepare statement `stmt`, first asking whether its table exists when it names one. */
static int conn_send_table_or_prepare(pool_conn_t *c, int stmt)
{
    return c->pool->stmts[stmt].needs ? conn_send_table_check(c, stmt) : conn_send_prepare(c, stmt);
}

static int conn_send_exec(pool_conn_t *c)
{
    pool_job_t *job = c->job;
    const es_query_stmt_t *s = &c->pool->stmts[job->stmt];
    if (!PQsendQueryPrepared(c->pg, s->name, s->nparams, job->params, NULL, NULL, 0)) {
        conn_break(c, PQerrorMessage(c->pg));
        return -1;
    }
    c->phase = PHASE_EXEC;
    return conn_flush(c);
}

static int conn_send_dealloc(pool_conn_t *c)
{
    char sql[160];
    /* Statement names are our own identifiers, so quoting them is enough. */
    snprintf(sql, sizeof(sql), "DEALLOCATE \"%s\"", c->pool->stmts[c->job->stmt].name);
    if (!PQsendQuery(c->pg, sql)) {
        conn_break(c, PQerrorMessage(c->pg));
        return -1;
    }
    c->phase = PHASE_DEALLOC;
    return conn_flush(c);
}

/* Prepare the next statement of the setup, or become idle when all were tried. A statement
 * whose tables do not exist yet stays unprepared and is prepared again by the first job that
 * needs it. */
static void conn_setup_step(pool_conn_t *c)
{
    if (c->setup_next < c->pool->stmt_cnt) {
        conn_send_table_or_prepare(c, c->setup_next);
        return;
    }
    c->state = CONN_IDLE;
    c->phase = PHASE_NONE;
    es_log_info("connected to postgresql", "conn=%d prepared=%d/%d", c->idx,
                __builtin_popcountl(c->prepared), c->pool->stmt_cnt);
    pool_dispatch(c->pool);
}

static void conn_start_job(pool_conn_t *c, pool_job_t *job)
{
    c->state = CONN_BUSY;
    c->job = job;
    if (c->prepared & (1UL << job->stmt)) {
        conn_send_exec(c);
    } else {
        conn_send_table_or_prepare(c, job->stmt);
    }
}

static void conn_become_idle(pool_conn_t *c)
{
    c->job = NULL;
    c->phase = PHASE_NONE;
    c->state = CONN_IDLE;
    pool_dispatch(c->pool);
}

static es_query_status_t classify(const PGresult *res)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (!state) {
        return ES_QUERY_FAILED;
    }
    if (!strcmp(state, "42P01") || !strcmp(state, "3F000")) {
        return ES_QUERY_MISSING;
    }
    if (!strncmp(state, "08", 2) || !strncmp(state, "57P", 3) || !strcmp(state, "53300")) {
        return ES_QUERY_UNAVAILABLE;
    }
    return ES_QUERY_FAILED;
}

/* Errors after which a fresh PREPARE may succeed: the relation was swapped by a rebuild
 * (undefined table or schema, changed columns, "cached plan must not change result type"),
 * or the statement is gone. */
static int worth_repreparing(const PGresult *res)
{
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (!state) {
        return 0;
    }
    return !strcmp(state, "42P01") || !strcmp(state, "3F000") || !strcmp(state, "0A000") ||
           !strcmp(state, "26000") || !strcmp(state, "42703");
}

/* What a failed statement's result says, for a client: PostgreSQL's primary message (not the
 * statement text and caret that follow it in the full message). */
static const char *result_message(const PGresult *res)
{
    if (!res) {
        return "no result";
    }
    const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    return primary ? primary : PQresultErrorMessage(res);
}

static void job_finish(pool_job_t *job, es_query_status_t status, const PGresult *res,
                       const char *errmsg)
{
    char msg[512];
    if (errmsg) {
        copy_message(msg, sizeof(msg), errmsg);
    }
    breaker_outcome(job->pool, job->probe, status);
    job->cb(status, status == ES_QUERY_OK ? res : NULL, errmsg ? msg : NULL, job->opaque);
    job_free(job);
}

/* The command in progress returned all its results (the first one is c->res). */
static void conn_command_done(pool_conn_t *c)
{
    PGresult *res = c->res;
    c->res = NULL;
    if (PQstatus(c->pg) == CONNECTION_BAD) {
        char why[512];
        copy_message(why, sizeof(why), res ? PQresultErrorMessage(res) : PQerrorMessage(c->pg));
        PQclear(res);
        conn_break(c, why);
        return;
    }
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;

    if (c->state == CONN_SETUP) {
        if (c->phase == PHASE_TABLE) {
            int found = table_found(res);
            PQclear(res);
            if (found) {
                conn_send_prepare(c, c->setup_next);
            } else {
                c->setup_next++;
                conn_setup_step(c);
            }
            return;
        }
        if (ok) {
            c->prepared |= 1UL << c->setup_next;
        } else {
            es_log_debug("could not prepare statement", "conn=%d stmt=%s error=\"%s\"", c->idx,
                         c->pool->stmts[c->setup_next].name,
                         res ? PQresultErrorMessage(res) : "no result");
        }
        PQclear(res);
        c->setup_next++;
        conn_setup_step(c);
        return;
    }
    if (c->state != CONN_BUSY || !c->job) {
        PQclear(res);
        return;
    }

    pool_job_t *job = c->job;
    switch (c->phase) {
    case PHASE_DEALLOC:
        /* Whether or not the statement existed, prepare it afresh. */
        PQclear(res);
        conn_send_table_or_prepare(c, job->stmt);
        return;
    case PHASE_TABLE:
        if (table_found(res)) {
            PQclear(res);
            conn_send_prepare(c, job->stmt);
            return;
        }
        c->job = NULL;
        if (ok) {
            char msg[300];
            snprintf(msg, sizeof(msg), "relation \"%s\" does not exist",
                     c->pool->stmts[job->stmt].needs);
            job_finish(job, ES_QUERY_MISSING, NULL, msg);
        } else {
            job_finish(job, classify(res), NULL, result_message(res));
        }
        PQclear(res);
        conn_become_idle(c);
        return;
    case PHASE_PREPARE:
        if (ok) {
            PQclear(res);
            c->prepared |= 1UL << job->stmt;
            conn_send_exec(c);
            return;
        }
        c->job = NULL;
        job_finish(job, classify(res), NULL, result_message(res));
        PQclear(res);
        conn_become_idle(c);
        return;
    case PHASE_EXEC:
        if (!ok && res && !job->reprepared && worth_repreparing(res)) {
            es_log_info("preparing statement again", "conn=%d stmt=%s error=\"%s\"", c->idx,
                        c->pool->stmts[job->stmt].name,
                        PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY));
            PQclear(res);
            job->reprepared = 1;
            c->prepared &= ~(1UL << job->stmt);
            conn_send_dealloc(c);
            return;
        }
        c->job = NULL;
        if (ok) {
            job_finish(job, ES_QUERY_OK, res, NULL);
        } else {
            job_finish(job, classify(res), NULL, result_message(res));
        }
        PQclear(res);
        conn_become_idle(c);
        return;
    case PHASE_NONE:
        break;
    }
    PQclear(res);
}

/* Read whatever arrived and finish the command in progress when its results are complete. */
static void conn_read(pool_conn_t *c)
{
    if (!PQconsumeInput(c->pg)) {
        conn_break(c, PQerrorMessage(c->pg));
        return;
    }
    PGnotify *n;
    while ((n = PQnotifies(c->pg)) != NULL) {
        PQfreemem(n);
    }
    if (c->state != CONN_SETUP && c->state != CONN_BUSY) {
        if (PQstatus(c->pg) == CONNECTION_BAD) {
            conn_break(c, PQerrorMessage(c->pg));
        }
        return;
    }
    while (!PQisBusy(c->pg)) {
        PGresult *res = PQgetResult(c->pg);
        if (!res) {
            conn_command_done(c);
            return;
        }
        if (!c->res) {
            c->res = res;
        } else {
            PQclear(res);
        }
    }
}

static void on_conn_io(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    pool_conn_t *c = arg;
    if (what & EV_WRITE) {
        if (conn_flush(c) != 0) {
            return;
        }
    }
    if (what & EV_READ) {
        conn_read(c);
    }
}

static void conn_connected(pool_conn_t *c)
{
    es_query_pool_t *pool = c->pool;
    conn_clear_events(c);
    evutil_socket_t fd = PQsocket(c->pg);
    if (PQsetnonblocking(c->pg, 1) != 0) {
        conn_fail_connect(c, PQerrorMessage(c->pg));
        return;
    }
    c->rev = event_new(pool->base, fd, EV_READ | EV_PERSIST, on_conn_io, c);
    c->wev = event_new(pool->base, fd, EV_WRITE, on_conn_io, c);
    if (!c->rev || !c->wev || event_add(c->rev, NULL) != 0) {
        conn_fail_connect(c, "could not watch the connection's socket");
        return;
    }
    c->failures = 0;
    c->state = CONN_SETUP;
    c->setup_next = 0;
    c->prepared = 0;
    conn_setup_step(c);
}

static void on_connect_io(evutil_socket_t fd, short what, void *arg);

/* Wait for the socket as PQconnectPoll asked (its socket may change between attempts). */
static void conn_connect_wait(pool_conn_t *c, PostgresPollingStatusType st)
{
    if (c->rev) {
        event_free(c->rev);
    }
    c->rev = event_new(c->pool->base, PQsocket(c->pg),
                       st == PGRES_POLLING_READING ? EV_READ : EV_WRITE, on_connect_io, c);
    if (!c->rev || event_add(c->rev, NULL) != 0) {
        conn_fail_connect(c, "could not watch the connection's socket");
    }
}

static void conn_connect_poll(pool_conn_t *c)
{
    PostgresPollingStatusType st = PQconnectPoll(c->pg);
    switch (st) {
    case PGRES_POLLING_READING:
    case PGRES_POLLING_WRITING:
        conn_connect_wait(c, st);
        return;
    case PGRES_POLLING_OK:
        conn_connected(c);
        return;
    default:
        conn_fail_connect(c, PQerrorMessage(c->pg));
        return;
    }
}

static void on_connect_io(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_connect_poll(arg);
}

static void conn_connect(pool_conn_t *c)
{
    static const char *const keywords[] = {"fallback_application_name", "dbname", NULL};
    const char *values[] = {"es-query", c->pool->conninfo, NULL};
    conn_close(c);
    c->pg = PQconnectStartParams(keywords, values, 1);
    if (!c->pg) {
        conn_fail_connect(c, "out of memory");
        return;
    }
    if (PQstatus(c->pg) == CONNECTION_BAD) {
        conn_fail_connect(c, PQerrorMessage(c->pg));
        return;
    }
    c->state = CONN_CONNECTING;
    struct timeval tv = {POOL_CONNECT_TIMEOUT_MS / 1000, 0};
    evtimer_add(c->timer, &tv);
    conn_connect_wait(c, PGRES_POLLING_WRITING);
}

/* The connection broke: retry its job once elsewhere, reconnect at once (then with backoff). */
static void conn_break(pool_conn_t *c, const char *why)
{
    es_query_pool_t *pool = c->pool;
    copy_message(pool->last_error, sizeof(pool->last_error), why);
    es_log_warn("lost connection to postgresql", "conn=%d error=\"%s\"", c->idx, pool->last_error);
    pool_job_t *job = c->job;
    c->job = NULL;
    conn_close(c);
    c->failures = 0;
    conn_schedule(c, 0);
    if (job) {
        /* Queries are read-only, so retrying is safe. Allow one try per connection: after the
         * server dropped them all, each may be found dead only when used. */
        if (job->requeued++ <= pool->size) {
            queue_push(pool, job, 1);
            queue_arm_timer(pool, job);
            event_active(pool->kick, EV_TIMEOUT, 0);
        } else {
            job_finish(job, ES_QUERY_UNAVAILABLE, NULL, pool->last_error);
        }
    }
    pool_fail_queue_if_unusable(pool);
}

/* ---- the pool ---- */

static void pool_dispatch(es_query_pool_t *pool)
{
    for (int i = 0; i < pool->size && pool->qhead; i++) {
        pool_conn_t *c = &pool->conns[i];
        if (c->state != CONN_IDLE) {
            continue;
        }
        pool_job_t *job = pool->qhead;
        queue_remove(pool, job);
        conn_start_job(c, job);
    }
}

es_query_pool_t *es_query_pool_new(struct event_base *base, const char *conninfo, int size,
                                   const es_query_stmt_t *stmts, int stmt_cnt, int queue_timeout_ms,
                                   int breaker_failures, int breaker_cooldown_ms, char *errstr,
                                   size_t errstr_size)
{
    if (size < 1 || size > 1024) {
        snprintf(errstr, errstr_size, "pool size %d is out of range 1..1024", size);
        return NULL;
    }
    if (stmt_cnt < 0 || stmt_cnt > POOL_MAX_STMTS) {
        snprintf(errstr, errstr_size, "too many statements (%d, at most %d)", stmt_cnt,
                 POOL_MAX_STMTS);
        return NULL;
    }
    for (int i = 0; i < stmt_cnt; i++) {
        if (stmts[i].nparams > POOL_MAX_PARAMS || strlen(stmts[i].name) > 63) {
            snprintf(errstr, errstr_size, "statement \"%s\" has too many parameters",
                     stmts[i].name);
            return NULL;
        }
    }
    es_query_pool_t *pool = calloc(1, sizeof(*pool));
    if (!pool) {
        goto oom;
    }
    pool->base = base;
    pool->stmts = stmts;
    pool->stmt_cnt = stmt_cnt;
    pool->queue_timeout_ms = queue_timeout_ms;
    es_breaker_init(&pool->breaker, breaker_failures, breaker_cooldown_ms,
                    (int64_t)breaker_cooldown_ms * POOL_BREAKER_MAX_FACTOR);
    pool->size = size;
    pool->conninfo = strdup(conninfo);
    pool->conns = calloc((size_t)size, sizeof(*pool->conns));
    pool->kick = event_new(base, -1, 0, on_kick, pool);
    if (!pool->conninfo || !pool->conns || !pool->kick) {
        goto oom;
    }
    for (int i = 0; i < size; i++) {
        pool_conn_t *c = &pool->conns[i];
        c->pool = pool;
        c->idx = i;
        c->timer = evtimer_new(base, on_conn_timer, c);
        if (!c->timer) {
            goto oom;
        }
    }
    for (int i = 0; i < size; i++) {
        conn_connect(&pool->conns[i]);
    }
    return pool;
oom:
    snprintf(errstr, errstr_size, "could not create the connection pool: out of memory");
    es_query_pool_destroy(pool);
    return NULL;
}

int es_query_pool_submit(es_query_pool_t *pool, int stmt, const char *const *params,
                         es_query_cb_t *cb, void *opaque, const char **errmsg)
{
    *errmsg = NULL;
    if (stmt < 0 || stmt >= pool->stmt_cnt) {
        *errmsg = "unknown statement";
        return -1;
    }
    int probe = 0;
    es_breaker_state_t before = pool->breaker.state;
    int allowed = es_breaker_allow(&pool->breaker, now_ms(), &probe);
    breaker_log(pool, before);
    if (!allowed) {
        snprintf(pool->refusal, sizeof(pool->refusal),
                 "circuit open after %d failed queries in a row (last error: %s)",
                 pool->breaker.threshold,
                 pool->last_error[0] ? pool->last_error : "no database connection");
        *errmsg = pool->refusal;
        return -1;
    }
    if (!es_query_pool_usable(pool)) {
        breaker_outcome(pool, probe, ES_QUERY_UNAVAILABLE);
        *errmsg = pool->last_error[0] ? pool->last_error : "no database connection";
        return -1;
    }
    int nparams = pool->stmts[stmt].nparams;
    size_t total = 0;
    for (int i = 0; i < nparams; i++) {
        total += params[i] ? strlen(params[i]) + 1 : 0;
    }
    pool_job_t *job = calloc(1, sizeof(*job) + total);
    if (!job) {
        breaker_outcome(pool, probe, ES_QUERY_UNAVAILABLE);
        *errmsg = "out of memory";
        return -1;
    }
    job->probe = probe;
    job->pool = pool;
    job->stmt = stmt;
    job->cb = cb;
    job->opaque = opaque;
    char *p = job->data;
    for (int i = 0; i < nparams; i++) {
        if (params[i]) {
            size_t n = strlen(params[i]) + 1;
            memcpy(p, params[i], n);
            job->params[i] = p;
            p += n;
        }
    }
    int idle = 0;
    for (int i = 0; i < pool->size; i++) {
        idle += pool->conns[i].state == CONN_IDLE;
    }
    queue_push(pool, job, 0);
    if ((size_t)idle < pool->qlen) {
        queue_arm_timer(pool, job);
    }
    event_active(pool->kick, EV_TIMEOUT, 0);
    return 0;
}

const char *es_query_pool_last_error(const es_query_pool_t *pool)
{
    return pool->last_error;
}

void es_query_pool_stats(const es_query_pool_t *pool, es_query_pool_stats_t *stats)
{
    memset(stats, 0, sizeof(*stats));
    for (int i = 0; i < pool->size; i++) {
        switch (pool->conns[i].state) {
        case CONN_IDLE:
            stats->idle++;
            break;
        case CONN_BUSY:
            stats->busy++;
            break;
        default:
            stats->down++;
            break;
        }
    }
    stats->queued = pool->qlen;
    stats->circuit = pool->breaker.state;
    stats->circuit_opened = pool->breaker.opened_total;
    stats->circuit_rejected = pool->breaker.rejected_total;
    stats->retry_after_s = es_breaker_retry_after_s(&pool->breaker, now_ms());
}

void es_query_pool_destroy(es_query_pool_t *pool)
{
    if (!pool) {
        return;
    }
    if (pool->conns) {
        for (int i = 0; i < pool->size; i++) {
            pool_conn_t *c = &pool->conns[i];
            conn_close(c);
            if (c->timer) {
                event_free(c->timer);
            }
            if (c->job) {
                job_free(c->job);
            }
        }
        free(pool->conns);
    }
    while (pool->qhead) {
        pool_job_t *job = pool->qhead;
        queue_remove(pool, job);
        job_free(job);
    }
    if (pool->kick) {
        event_free(pool->kick);
    }
    free(pool->conninfo);
    free(pool);
}
