/*
 * relay.c: the outbox relay thread (see relay.h).
 */
#include "relay.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "envelope.h"
#include "ids.h"
#include "kafka.h"
#include "log.h"
#include "pg.h"
#include "window.h"

#define RELAY_BATCH 5000
#define IDLE_POLL_MS 20 /* rows committed by another instance are found this fast */

struct es_relay {
    es_config_t *cfg;
    char schema[64];
    char client_id[64];
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int notified;
    int stopping;
    int64_t drain_until_us;

    PGconn *pg;
    rd_kafka_t *rk;
    int leader;
    es_pg_pipeline_t pl;
    int failed; /* deliveries that failed in the current round and will be retried */
    /* rows Kafka refused for good in the current round (too large, invalid): parked */
    struct parked {
        int row;
        rd_kafka_resp_err_t err;
    } * parked;
    size_t parked_cnt, parked_cap;
    int64_t flush_us; /* time spent waiting for acknowledgements, for the stats line */
};

/* Errors that no retry will cure: the record itself is unacceptable to Kafka. */
static int permanent(rd_kafka_resp_err_t err)
{
    return err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ||
           err == RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE ||
           err == RD_KAFKA_RESP_ERR_INVALID_RECORD || err == RD_KAFKA_RESP_ERR_INVALID_MSG ||
           err == RD_KAFKA_RESP_ERR__INVALID_ARG;
}

static void park(es_relay_t *r, int row, rd_kafka_resp_err_t err)
{
    if (r->parked_cnt == r->parked_cap) {
        size_t cap = r->parked_cap ? r->parked_cap * 2 : 8;
        struct parked *n = realloc(r->parked, cap * sizeof(*n));
        if (!n) {
            r->failed++; /* cannot even remember it: retry the round */
            return;
        }
        r->parked = n;
        r->parked_cap = cap;
    }
    r->parked[r->parked_cnt].row = row;
    r->parked[r->parked_cnt].err = err;
    r->parked_cnt++;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    (void)rk;
    es_relay_t *r = opaque;
    if (rkm->err && permanent(rkm->err)) {
        park(r, (int)(intptr_t)rkm->_private, rkm->err);
    } else if (rkm->err) {
        r->failed++;
        es_log_warn("outbox record not delivered, the round will be retried",
                    "topic=%s error=\"%s\"", rd_kafka_topic_name(rkm->rkt),
                    rd_kafka_err2str(rkm->err));
    }
}

/* Headers are stored as one bytea: repeated u16 name length, name, u16 value length, value. */
static rd_kafka_headers_t *headers_parse(const unsigned char *p, size_t len)
{
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(10);
    size_t i = 0;
    while (i + 2 <= len) {
        size_t nlen = (size_t)p[i] << 8 | p[i + 1];
        i += 2;
        if (i + nlen + 2 > len) {
            break;
        }
        const char *name = (const char *)p + i;
        i += nlen;
        size_t vlen = (size_t)p[i] << 8 | p[i + 1];
        i += 2;
        if (i + vlen > len) {
            break;
        }
        rd_kafka_header_add(hdrs, name, (ssize_t)nlen, p + i, (ssize_t)vlen);
        i += vlen;
    }
    return hdrs;
}

/* A row's Kafka headers: stored ones (dead letters carry their own), or rebuilt from the
 * envelope at the front of the value (every emitted event). */
static rd_kafka_headers_t *row_headers(const PGresult *res, int row)
{
    if (!PQgetisnull(res, row, 4)) {
        return headers_parse((const unsigned char *)PQgetvalue(res, row, 4),
                             (size_t)PQgetlength(res, row, 4));
    }
    es_envelope_t env;
    if (es_envelope_peek(PQgetvalue(res, row, 3), (size_t)PQgetlength(res, row, 3), &env) != 0) {
        es_log_warn("outbox record without a readable envelope: published without headers",
                    "seq=%lld", (long long)es_pg_get_int8(res, row, 0));
        return rd_kafka_headers_new(0);
    }
    return es_envelope_headers_new(&env);
}

static int connect_pg(es_relay_t *r)
{
    char errstr[512];
    PQfinish(r->pg);
    r->pg = NULL;
    r->leader = 0;
    const char *conninfo = es_config_pg(r->cfg, errstr, sizeof(errstr));
    if (!conninfo || !(r->pg = es_pg_connect(conninfo, 5, errstr, sizeof(errstr)))) {
        es_log_warn("relay could not connect to PostgreSQL", "error=\"%s\"", errstr);
        return -1;
    }
    char sql[160];
    /* A relay commit lost in an OS crash only brings its rows back, to be published again
     * (consumers drop the copies): it need not wait for the disk. */
    snprintf(sql, sizeof(sql), "SET search_path TO %s; SET synchronous_commit = off", r->schema);
    return es_pg_exec(r->pg, sql, errstr, sizeof(errstr));
}

static int try_leadership(es_relay_t *r)
{
    char sql[160], errstr[512];
    snprintf(sql, sizeof(sql), "SELECT pg_try_advisory_lock(hashtext('es-relay:%s'))", r->schema);
    PGresult *res = es_pg_query(r->pg, sql, 0, NULL, NULL, NULL, 0, errstr, sizeof(errstr));
    if (res && PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't') {
        r->leader = 1;
        es_log_info("this instance relays the outbox", "schema=%s", r->schema);
    }
    PQclear(res);
    return r->leader;
}

static int cmp_seq(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* One round. Returns the rows published, or -1 (rolled back: they will be published again). */
static int relay_round(es_relay_t *r)
{
    char errstr[1024];
    char sql[256];
    /* A range, not "seq IN (subquery)": a semi-join planned on a young table's statistics can
     * rescan the outbox once per row. One snapshot serves the whole statement, so exactly the
     * visible rows up to the bound go. */
    snprintf(sql, sizeof(sql),
             "DELETE FROM outbox WHERE seq <= (SELECT max(seq) FROM (SELECT seq FROM outbox "
             "ORDER BY seq LIMIT %d) b) RETURNING seq, topic, key, value, headers",
             RELAY_BATCH);
    /* BEGIN and the DELETE in one round trip */
    es_pg_pipeline_reset(&r->pl);
    es_pg_pipeline_add(&r->pl, "BEGIN", 0, NULL, NULL, NULL);
    int del = es_pg_pipeline_add(&r->pl, sql, 0, NULL, NULL, NULL);
    if (es_pg_pipeline_run(r->pg, &r->pl, 1, errstr, sizeof(errstr)) != 0) {
        goto rollback;
    }
    PGresult *res = es_pg_pipeline_result(&r->pl, del);
    int n = PQntuples(res);
    /* RETURNING does not promise an order: publish by seq */
    int64_t(*order)[2] = n ? malloc((size_t)n * sizeof(*order)) : NULL;
    for (int i = 0; i < n; i++) {
        order[i][0] = es_pg_get_int8(res, i, 0);
        order[i][1] = i;
    }
    if (n > 1) {
        qsort(order, (size_t)n, sizeof(*order), cmp_seq);
    }
    r->failed = 0;
    r->parked_cnt = 0;
    for (int k = 0; k < n; k++) {
        int row = (int)order[k][1];
        int key_null = PQgetisnull(res, row, 2);
        rd_kafka_headers_t *hdrs = row_headers(res, row);
        rd_kafka_resp_err_t err;
        while ((err = rd_kafka_producev(
                    r->rk, RD_KAFKA_V_TOPIC(PQgetvalue(res, row, 1)),
                    RD_KAFKA_V_KEY(key_null ? NULL : PQgetvalue(res, row, 2),
                                   key_null ? 0 : (size_t)PQgetlength(res, row, 2)),
                    RD_KAFKA_V_VALUE(PQgetvalue(res, row, 3), (size_t)PQgetlength(res, row, 3)),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hdrs),
                    RD_KAFKA_V_OPAQUE((void *)(intptr_t)row), RD_KAFKA_V_END)) ==
               RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(r->rk, 5);
        }
        if (err && permanent(err)) {
            rd_kafka_headers_destroy(hdrs);
            park(r, row, err);
        } else if (err) {
            rd_kafka_headers_destroy(hdrs);
            snprintf(errstr, sizeof(errstr), "could not produce to %s: %s", PQgetvalue(res, row, 1),
                     rd_kafka_err2str(err));
            free(order);
            goto rollback;
        }
    }
    free(order);
    /* every record acknowledged before the rows go for good */
    int64_t f0 = es_mono_us();
    rd_kafka_resp_err_t ferr = n > 0 ? rd_kafka_flush(r->rk, 30000) : RD_KAFKA_RESP_ERR_NO_ERROR;
    r->flush_us += es_mono_us() - f0;
    if (ferr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(errstr, sizeof(errstr), "Kafka did not acknowledge %d records in time",
                 rd_kafka_outq_len(r->rk));
        goto rollback;
    }
    if (r->failed) {
        snprintf(errstr, sizeof(errstr), "%d records were not delivered", r->failed);
        goto rollback;
    }
    /* A record Kafka refuses for good must not stall every record behind it: it is parked,
     * with the reason, in outbox_parked (in this same transaction) and reported loudly. */
    for (size_t i = 0; i < r->parked_cnt; i++) {
        int row = r->parked[i].row;
        const char *vals[6] = {PQgetvalue(res, row, 0),
                               PQgetvalue(res, row, 1),
                               PQgetisnull(res, row, 2) ? NULL : PQgetvalue(res, row, 2),
                               PQgetvalue(res, row, 3),
                               PQgetvalue(res, row, 4),
                               rd_kafka_err2str(r->parked[i].err)};
        int lens[6] = {PQgetlength(res, row, 0), PQgetlength(res, row, 1), PQgetlength(res, row, 2),
                       PQgetlength(res, row, 3), PQgetlength(res, row, 4), 0};
        int fmts[6] = {1, 1, 1, 1, 1, 0};
        PGresult *pr = es_pg_query(r->pg,
                                   "INSERT INTO outbox_parked (seq, topic, key, value, headers, "
                                   "error) VALUES ($1::bigint, $2::text, $3::bytea, $4::bytea, "
                                   "$5::bytea, $6::text) ON CONFLICT DO NOTHING",
                                   6, vals, lens, fmts, 0, errstr, sizeof(errstr));
        if (!pr) {
            goto rollback;
        }
        PQclear(pr);
        es_log_error("outbox record parked: Kafka refused it",
                     "schema=%s seq=%lld topic=%s bytes=%d error=\"%s\"", r->schema,
                     (long long)es_pg_get_int8(res, row, 0), PQgetvalue(res, row, 1),
                     PQgetlength(res, row, 3), rd_kafka_err2str(r->parked[i].err));
    }
    es_pg_pipeline_reset(&r->pl);
    if (es_pg_exec(r->pg, "COMMIT", errstr, sizeof(errstr)) != 0) {
        goto fail;
    }
    return n;
rollback:;
    char tmp[256];
    es_pg_exec(r->pg, "ROLLBACK", tmp, sizeof(tmp));
fail:
    es_log_warn("relay round failed", "schema=%s error=\"%s\"", r->schema, errstr);
    if (PQstatus(r->pg) != CONNECTION_OK) {
        connect_pg(r);
    }
    return -1;
}

/* Wait until notified, stopping, or `ms` passed. */
static void relay_wait(es_relay_t *r, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += (long)ms * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    pthread_mutex_lock(&r->lock);
    while (!r->notified && !r->stopping) {
        if (pthread_cond_timedwait(&r->cond, &r->lock, &ts) != 0) {
            break;
        }
    }
    r->notified = 0;
    pthread_mutex_unlock(&r->lock);
}

static void *relay_main(void *arg)
{
    es_relay_t *r = arg;
    int64_t last_try = 0;
    es_window_t win;
    es_window_init(&win);
    for (;;) {
        pthread_mutex_lock(&r->lock);
        int stopping = r->stopping;
        pthread_mutex_unlock(&r->lock);
        if (stopping && (!r->leader || es_mono_us() > r->drain_until_us)) {
            break;
        }
        if (!r->pg || PQstatus(r->pg) != CONNECTION_OK) {
            if (connect_pg(r) != 0) {
                relay_wait(r, 500);
                continue;
            }
        }
        if (!r->leader) {
            if (es_mono_us() - last_try < 500000 || (last_try = es_mono_us(), !try_leadership(r))) {
                relay_wait(r, 100);
                continue;
            }
        }
        int64_t t0 = es_mono_us();
        int n = relay_round(r);
        if (n > 0) {
            es_window_add(&win, n, es_mono_us() - t0);
        }
        if (es_window_due(&win, 10000000)) {
            /* one line per 10 s of work: rows per round and how long a round takes */
            es_log_info("relay rounds",
                        "schema=%s count=%lld records=%lld avg_records=%.1f avg_ms=%.2f "
                        "max_ms=%.2f ack_wait_ms=%.2f",
                        r->schema, (long long)win.rounds, (long long)win.records,
                        (double)win.records / (double)win.rounds,
                        (double)win.total_us / 1000.0 / (double)win.rounds,
                        (double)win.max_us / 1000.0,
                        (double)r->flush_us / 1000.0 / (double)win.rounds);
            r->flush_us = 0;
            es_window_init(&win);
        }
        if (n < 0) {
            relay_wait(r, 100);
        } else if (n == 0) {
            if (stopping) {
                break; /* drained */
            }
            relay_wait(r, IDLE_POLL_MS);
        }
    }
    return NULL;
}

es_relay_t *es_relay_start(es_config_t *cfg, const char *schema, const char *client_id,
                           char *errstr, size_t errstr_size)
{
    es_relay_t *r = calloc(1, sizeof(*r));
    if (!r) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    r->cfg = cfg;
    snprintf(r->schema, sizeof(r->schema), "%s", schema);
    snprintf(r->client_id, sizeof(r->client_id), "%s", client_id);
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    es_pg_pipeline_init(&r->pl);
    r->rk = es_kafka_producer_new(cfg, client_id, on_delivery, r, errstr, errstr_size);
    if (!r->rk) {
        free(r);
        return NULL;
    }
    if (pthread_create(&r->thread, NULL, relay_main, r) != 0) {
        snprintf(errstr, errstr_size, "could not start the relay thread");
        rd_kafka_destroy(r->rk);
        free(r);
        return NULL;
    }
    return r;
}

void es_relay_notify(es_relay_t *r)
{
    pthread_mutex_lock(&r->lock);
    r->notified = 1;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

void es_relay_stop(es_relay_t *r, int drain_ms)
{
    if (!r) {
        return;
    }
    pthread_mutex_lock(&r->lock);
    r->stopping = 1;
    r->drain_until_us = es_mono_us() + (int64_t)drain_ms * 1000;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->thread, NULL);
    rd_kafka_flush(r->rk, 2000);
    rd_kafka_destroy(r->rk);
    PQfinish(r->pg);
    es_pg_pipeline_fini(&r->pl);
    free(r->parked);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->cond);
    free(r);
}
