/*
 * relay.c: the outbox relay thread (see relay.h): rounds through PostgreSQL, and the fast
 * path that publishes handed-over batches from memory.
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
#include "outbox.h"
#include "pg.h"
#include "window.h"

#define ROUND_ROWS 64              /* outbox rows (each one transaction's records) per round */
#define IDLE_POLL_MS 20            /* rows committed by another instance are found this fast */
#define FAST_DELETE_MS 100         /* acknowledged rows are deleted this often on the fast path */
#define FAST_DELETE_MAX 1000       /* ... or as soon as this many are waiting */
#define FAST_CHECK_MS 250          /* how often the fast path looks for rows it did not write */
#define FAST_RING 65536u           /* rows produced and not yet deleted, at most */
#define FAST_FLUSH_MS 100          /* a step waits this long at most for its records' acks */
#define RELAY_IDLE_TIMEOUT_S 10    /* a relay's session idle this long: see connect_pg */
#define RELAY_IDLE_TX_TIMEOUT_S 60 /* ... or this long in a transaction */

/* A batch handed over by the service thread: one outbox row. */
typedef struct handoff {
    int64_t seq;
    es_buf_t records; /* outbox.h format */
    size_t count;
    struct handoff *next;
} handoff_t;

static void handoff_list_destroy(handoff_t *h)
{
    while (h) {
        handoff_t *next = h->next;
        es_buf_fini(&h->records);
        free(h);
        h = next;
    }
}

enum { RING_INFLIGHT, RING_ACKED, RING_DELETED };

/* Delivery-report tags: fast-path records carry their row's production index with this bit
 * set; a round's carry the round's number, the row's in the round's result and the record's in
 * the row (round_tag). A round rolled back can leave reports in flight that arrive during the
 * next one: its number tells them apart, or a refusal would park the next round's record that
 * has the same place. */
#define FAST_TAG ((uint64_t)1 << 63)
#define ROUND_GEN_MASK 0x7fffffu /* bits 40-62 */
_Static_assert(ROUND_ROWS <= 256, "a round's row number takes 8 bits of its tag");

static uint64_t round_tag(unsigned gen, int row, int idx)
{
    return (uint64_t)(gen & ROUND_GEN_MASK) << 40 | (uint64_t)(row & 0xff) << 32 | (uint32_t)idx;
}

struct es_relay {
    es_config_t *cfg;
    char schema[64];
    char client_id[64];
    const char *producer; /* the es-producer header: client_id without its "es-" */
    pthread_t thread;

    /* shared with the service thread: under lock */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int notified;
    int stopping;
    int64_t drain_until_us;
    int sole;                   /* this instance handles every input partition */
    unsigned suspend_epoch;     /* bumped by es_relay_suspend_fast() */
    handoff_t *q_head, *q_tail; /* handed over, not yet taken */

    /* the relay thread's own */
    PGconn *pg;
    rd_kafka_t *rk;
    int leader;
    es_pg_pipeline_t pl;
    int failed;         /* deliveries that failed in the current round and will be retried */
    unsigned round_gen; /* the current round's number (round_tag) */
    /* records Kafka refused for good in the current round (too large, invalid): parked */
    struct parked {
        int row, idx;
        rd_kafka_resp_err_t err;
    } * parked;
    size_t parked_cnt, parked_cap;
    int64_t flush_us; /* time spent waiting for acknowledgements, for the stats line */

    /* the fast path: every row produced and not yet deleted, by production index */
    int fast;
    unsigned fast_epoch;
    int64_t *ring_seq;
    uint32_t *ring_left; /* records of the row not yet acknowledged */
    unsigned char *ring_state;
    uint64_t ring_head; /* oldest production index not yet deleted */
    uint64_t ring_tail; /* next production index */
    uint64_t *acked;    /* production indexes acknowledged and not yet deleted */
    size_t acked_cnt;
    int fast_failed;
    int64_t max_seen_seq;
    int64_t last_delete_us, last_check_us;
};

/* Errors that no retry will cure: the record itself is unacceptable to Kafka. */
static int permanent(rd_kafka_resp_err_t err)
{
    return err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ||
           err == RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE ||
           err == RD_KAFKA_RESP_ERR_INVALID_RECORD || err == RD_KAFKA_RESP_ERR_INVALID_MSG ||
           err == RD_KAFKA_RESP_ERR__INVALID_ARG;
}

static void park(es_relay_t *r, int row, int idx, rd_kafka_resp_err_t err)
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
    r->parked[r->parked_cnt].idx = idx;
    r->parked[r->parked_cnt].err = err;
    r->parked_cnt++;
}

/* rd_kafka_flush() in slices, for up to `timeout_ms`: a relay asked to stop gives up once its
 * drain time is over (the rows stay in the outbox for the next start), so that a broker out of
 * reach does not hold a stopping service for the whole timeout. */
static rd_kafka_resp_err_t relay_flush(es_relay_t *r, int timeout_ms)
{
    int64_t until = es_mono_us() + (int64_t)timeout_ms * 1000;
    for (;;) {
        rd_kafka_resp_err_t err = rd_kafka_flush(r->rk, 100);
        if (err != RD_KAFKA_RESP_ERR__TIMED_OUT) {
            return err;
        }
        int64_t now = es_mono_us();
        pthread_mutex_lock(&r->lock);
        int give_up = r->stopping && now > r->drain_until_us;
        pthread_mutex_unlock(&r->lock);
        if (give_up || now >= until) {
            return RD_KAFKA_RESP_ERR__TIMED_OUT;
        }
    }
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    (void)rk;
    es_relay_t *r = opaque;
    uint64_t tag = (uint64_t)(uintptr_t)rkm->_private;
    if (tag & FAST_TAG) {
        uint64_t idx = tag & ~FAST_TAG;
        if (idx < r->ring_head) {
            return; /* from before the fast path was last left: already accounted for */
        }
        if (rkm->err) {
            if (r->fast_failed++ == 0) { /* once: a broker away fails every record in flight */
                es_log_warn("outbox record not delivered, leaving the fast path",
                            "topic=%s error=\"%s\"", rd_kafka_topic_name(rkm->rkt),
                            rd_kafka_err2str(rkm->err));
            }
        } else if (--r->ring_left[idx % FAST_RING] == 0) {
            r->ring_state[idx % FAST_RING] = RING_ACKED;
            r->acked[r->acked_cnt++] = idx;
        }
        return;
    }
    if ((unsigned)(tag >> 40 & ROUND_GEN_MASK) != (r->round_gen & ROUND_GEN_MASK)) {
        return; /* a round rolled back: its records are published again */
    }
    if (rkm->err && permanent(rkm->err)) {
        park(r, (int)(tag >> 32 & 0xff), (int)(tag & 0xffffffffu), rkm->err);
    } else if (rkm->err && r->failed++ == 0) { /* the round's failure counts them all */
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

/* Produce one record (to its pinned partition, if it has one: outbox.h); `tag` comes back
 * with its delivery report. Its Kafka headers are the stored ones (dead letters carry their
 * own) or rebuilt from the envelope at the front of the value (every emitted event). Returns
 * what producev returned once the queue had room. */
static rd_kafka_resp_err_t produce_record(es_relay_t *r, const es_outbox_record_t *rec,
                                          uint64_t tag)
{
    rd_kafka_headers_t *hdrs;
    es_envelope_t env;
    if (rec->headers) {
        hdrs = headers_parse(rec->headers, rec->headers_len);
    } else if (es_envelope_peek(rec->value, rec->value_len, &env) == 0) {
        hdrs = es_envelope_headers_new(&env, r->producer);
    } else {
        es_log_warn("outbox record without a readable envelope: published without headers",
                    "schema=%s topic=%s", r->schema, rec->topic);
        hdrs = rd_kafka_headers_new(0);
    }
    rd_kafka_resp_err_t err;
    while ((err = rd_kafka_producev(
                r->rk, RD_KAFKA_V_TOPIC(rec->topic),
                RD_KAFKA_V_PARTITION(rec->partition >= 0 ? rec->partition : RD_KAFKA_PARTITION_UA),
                RD_KAFKA_V_KEY(rec->key, rec->key_len),
                RD_KAFKA_V_VALUE((void *)rec->value, rec->value_len),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hdrs),
                RD_KAFKA_V_OPAQUE((void *)(uintptr_t)tag), RD_KAFKA_V_END)) ==
           RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        rd_kafka_poll(r->rk, 5);
    }
    if (err) {
        rd_kafka_headers_destroy(hdrs);
    }
    return err;
}

/* Record number `idx` of a stored row, or -1 when the row holds fewer or is malformed. */
static int record_at(const unsigned char *blob, size_t len, int idx, es_outbox_record_t *rec)
{
    size_t pos = 0;
    for (int i = 0; i <= idx; i++) {
        if (es_outbox_next(blob, len, &pos, rec) != 1) {
            return -1;
        }
    }
    return 0;
}

static int connect_pg(es_relay_t *r)
{
    char errstr[512];
    PQfinish(r->pg);
    es_pg_forget_prepared();
    r->pg = NULL;
    r->leader = 0;
    const char *conninfo = es_config_pg(r->cfg, errstr, sizeof(errstr));
    if (!conninfo || !(r->pg = es_pg_connect(conninfo, 5, errstr, sizeof(errstr)))) {
        es_log_warn("relay could not connect to PostgreSQL", "error=\"%s\"", errstr);
        return -1;
    }
    char sql[320];
    /* A relay commit lost in an OS crash only brings its rows back, to be published again
     * (consumers drop the copies): it need not wait for the disk. Generic plans: see
     * session_setup in service.c. The leader's session holds the relay's lock: an instance
     * stopped while it leads (stopped, paused in a debugger) would keep every other instance
     * from publishing for as long as it stays stopped. A running relay uses its session at
     * least every 500 ms (a leader checks the outbox every FAST_CHECK_MS, a follower tries the
     * lock every 500 ms), and a round waits for Kafka up to 30 s inside its transaction: a
     * session idle for 10 s, or for 60 s in a transaction, belongs to a stopped instance, and
     * PostgreSQL ends it, which frees the lock for another instance. */
    snprintf(sql, sizeof(sql),
             "SET search_path TO %s; SET synchronous_commit = off; "
             "SET plan_cache_mode = force_generic_plan; SET idle_session_timeout = '%ds'; "
             "SET idle_in_transaction_session_timeout = '%ds'",
             r->schema, RELAY_IDLE_TIMEOUT_S, RELAY_IDLE_TX_TIMEOUT_S);
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

/* Park a record (or, with idx -1, a whole row that is not in the outbox format) in
 * outbox_parked, inside the round's transaction. Returns 0 or -1. */
static int park_insert(es_relay_t *r, const PGresult *res, int row, int idx, const char *why,
                       char *errstr, size_t errstr_size)
{
    es_outbox_record_t rec;
    const unsigned char *blob = (const unsigned char *)PQgetvalue(res, row, 1);
    size_t len = (size_t)PQgetlength(res, row, 1);
    if (idx < 0 || record_at(blob, len, idx, &rec) != 0) {
        memset(&rec, 0, sizeof(rec));
        rec.topic = "";
        rec.value = blob;
        rec.value_len = len;
        idx = -1;
    }
    char seq[32], num[16];
    snprintf(seq, sizeof(seq), "%lld", (long long)es_pg_get_int8(res, row, 0));
    snprintf(num, sizeof(num), "%d", idx);
    const char *vals[7] = {seq, num, rec.topic, rec.key, rec.value, rec.headers, why};
    int lens[7] = {0, 0, 0, (int)rec.key_len, (int)rec.value_len, (int)rec.headers_len, 0};
    int fmts[7] = {0, 0, 0, 1, 1, 1, 0};
    PGresult *pr = es_pg_query(r->pg,
                               "INSERT INTO outbox_parked (seq, idx, topic, key, value, headers, "
                               "error) VALUES ($1::bigint, $2::int, $3::text, $4::bytea, "
                               "$5::bytea, $6::bytea, $7::text) ON CONFLICT DO NOTHING",
                               7, vals, lens, fmts, 0, errstr, errstr_size);
    if (!pr) {
        return -1;
    }
    PQclear(pr);
    es_log_error("outbox record parked: Kafka refused it",
                 "schema=%s seq=%s record=%d topic=%s bytes=%zu error=\"%s\"", r->schema, seq, idx,
                 rec.topic, rec.value_len, why);
    return 0;
}

/* One round. Returns the records published (at least the rows taken, so 0 means the outbox
 * was empty), or -1 (rolled back: they will be published again). */
static int relay_round(es_relay_t *r)
{
    char errstr[1024];
    char sql[256];
    /* A range, not "seq IN (subquery)": a semi-join planned on a young table's statistics can
     * rescan the outbox once per row. One snapshot serves the whole statement, so exactly the
     * visible rows up to the bound go. */
    snprintf(sql, sizeof(sql),
             "DELETE FROM outbox WHERE seq <= (SELECT max(seq) FROM (SELECT seq FROM outbox "
             "ORDER BY seq LIMIT %d) b) RETURNING seq, records",
             ROUND_ROWS);
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
    if (n && !order) {
        snprintf(errstr, sizeof(errstr), "out of memory");
        goto rollback;
    }
    for (int i = 0; i < n; i++) {
        order[i][0] = es_pg_get_int8(res, i, 0);
        order[i][1] = i;
    }
    if (n > 1) {
        qsort(order, (size_t)n, sizeof(*order), cmp_seq);
    }
    r->failed = 0;
    r->parked_cnt = 0;
    r->round_gen++;
    int records = 0;
    for (int k = 0; k < n; k++) {
        int row = (int)order[k][1];
        const unsigned char *blob = (const unsigned char *)PQgetvalue(res, row, 1);
        size_t len = (size_t)PQgetlength(res, row, 1), pos = 0;
        es_outbox_record_t rec;
        int got, idx = 0;
        while ((got = es_outbox_next(blob, len, &pos, &rec)) == 1) {
            rd_kafka_resp_err_t err = produce_record(r, &rec, round_tag(r->round_gen, row, idx));
            if (err && permanent(err)) {
                park(r, row, idx, err);
            } else if (err) {
                snprintf(errstr, sizeof(errstr), "could not produce to %s: %s", rec.topic,
                         rd_kafka_err2str(err));
                free(order);
                goto rollback;
            }
            idx++;
            records++;
        }
        if (got < 0) {
            park(r, row, -1, RD_KAFKA_RESP_ERR__BAD_MSG);
        }
    }
    free(order);
    /* every record acknowledged before the rows go for good */
    int64_t f0 = es_mono_us();
    rd_kafka_resp_err_t ferr = records > 0 ? relay_flush(r, 30000) : RD_KAFKA_RESP_ERR_NO_ERROR;
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
        const char *why = r->parked[i].idx < 0 ? "the outbox row is not in the outbox format"
                                               : rd_kafka_err2str(r->parked[i].err);
        if (park_insert(r, res, r->parked[i].row, r->parked[i].idx, why, errstr, sizeof(errstr)) !=
            0) {
            goto rollback;
        }
    }
    es_pg_pipeline_reset(&r->pl);
    if (es_pg_exec(r->pg, "COMMIT", errstr, sizeof(errstr)) != 0) {
        goto fail;
    }
    return records > n ? records : n;
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

/* ---- the fast path -------------------------------------------------------------------------- */

/* Delete the acknowledged rows (one statement; the relay's session commits asynchronously: a
 * delete lost in an OS crash only publishes those rows again). Returns 0 or -1. */
static int fast_delete(es_relay_t *r)
{
    if (r->acked_cnt == 0) {
        return 0;
    }
    es_pg_array_t seqs;
    es_pg_array_init(&seqs, ES_PG_INT8);
    for (size_t i = 0; i < r->acked_cnt; i++) {
        es_pg_array_add_int8(&seqs, r->ring_seq[r->acked[i] % FAST_RING]);
    }
    if (es_pg_array_finish(&seqs) != 0) {
        es_pg_array_fini(&seqs);
        es_log_warn("relay could not delete published rows", "schema=%s error=\"out of memory\"",
                    r->schema);
        return -1;
    }
    const char *vals[1] = {(const char *)seqs.buf.data};
    int lens[1] = {(int)seqs.buf.len};
    int fmts[1] = {1};
    char errstr[512];
    PGresult *res = es_pg_query(r->pg,
                                "DELETE FROM outbox o USING unnest($1::bigint[]) AS d(seq) "
                                "WHERE o.seq = d.seq",
                                1, vals, lens, fmts, 0, errstr, sizeof(errstr));
    es_pg_array_fini(&seqs);
    if (!res) {
        es_log_warn("relay could not delete published rows", "schema=%s error=\"%s\"", r->schema,
                    errstr);
        return -1;
    }
    PQclear(res);
    for (size_t i = 0; i < r->acked_cnt; i++) {
        r->ring_state[r->acked[i] % FAST_RING] = RING_DELETED;
    }
    r->acked_cnt = 0;
    while (r->ring_head < r->ring_tail && r->ring_state[r->ring_head % FAST_RING] == RING_DELETED) {
        r->ring_head++;
    }
    r->last_delete_us = es_mono_us();
    return 0;
}

/* Look for a row this relay did not write: one below every row it still tracks (rows above
 * the highest seq it saw may still be on their way to it). Returns 1 if there is one, 0 if not,
 * -1 on error. */
static int fast_check(es_relay_t *r)
{
    r->last_check_us = es_mono_us();
    int64_t below =
        r->ring_head < r->ring_tail ? r->ring_seq[r->ring_head % FAST_RING] : r->max_seen_seq + 1;
    char num[32], errstr[512];
    snprintf(num, sizeof(num), "%lld", (long long)below);
    const char *vals[1] = {num};
    PGresult *res = es_pg_query(r->pg, "SELECT seq FROM outbox WHERE seq < $1::bigint LIMIT 1", 1,
                                vals, NULL, NULL, 0, errstr, sizeof(errstr));
    if (!res) {
        es_log_warn("relay could not check the outbox", "schema=%s error=\"%s\"", r->schema,
                    errstr);
        return -1;
    }
    int found = PQntuples(res) > 0;
    PQclear(res);
    return found;
}

/* Produce one handed-over row's records, in order. Returns 0, or -1 (leave the fast path: the
 * row is still in the outbox and a round publishes it). */
static int fast_produce(es_relay_t *r, const handoff_t *h)
{
    while (r->ring_tail - r->ring_head >= FAST_RING) {
        rd_kafka_poll(r->rk, 5); /* full: wait for acknowledgements, then delete */
        if (r->fast_failed || fast_delete(r) != 0) {
            return -1;
        }
    }
    uint64_t idx = r->ring_tail++;
    r->ring_seq[idx % FAST_RING] = h->seq;
    r->ring_left[idx % FAST_RING] = (uint32_t)h->count;
    r->ring_state[idx % FAST_RING] = RING_INFLIGHT;
    if (h->seq > r->max_seen_seq) {
        r->max_seen_seq = h->seq;
    }
    size_t pos = 0, n = 0;
    es_outbox_record_t rec;
    int got;
    while ((got = es_outbox_next(h->records.data, h->records.len, &pos, &rec)) == 1) {
        rd_kafka_resp_err_t err = produce_record(r, &rec, idx | FAST_TAG);
        if (err) {
            es_log_warn("could not produce an outbox record, leaving the fast path",
                        "schema=%s seq=%lld error=\"%s\"", r->schema, (long long)h->seq,
                        rd_kafka_err2str(err));
            return -1;
        }
        n++;
    }
    return got < 0 || n != h->count ? -1 : 0;
}

/* Back to rounds: wait for every delivery, delete what was acknowledged; the rounds publish
 * everything else still in the outbox, in seq order. */
static void fast_leave(es_relay_t *r, const char *why)
{
    if (relay_flush(r, 30000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        es_log_warn("records still unacknowledged on leaving the fast path: they may be "
                    "published twice",
                    "schema=%s count=%d", r->schema, rd_kafka_outq_len(r->rk));
    }
    if (r->pg && PQstatus(r->pg) == CONNECTION_OK) {
        fast_delete(r);
    }
    r->acked_cnt = 0;
    r->ring_head = r->ring_tail;
    r->fast = 0;
    r->fast_failed = 0;
    es_log_info("relay back to rounds through PostgreSQL", "schema=%s reason=\"%s\"", r->schema,
                why);
}

/* Take the handed-over batches (caller holds the lock). */
static handoff_t *queue_take(es_relay_t *r)
{
    handoff_t *q = r->q_head;
    r->q_head = r->q_tail = NULL;
    return q;
}

/* One step of the fast path: produce what was handed over, collect acknowledgements, delete,
 * check. Returns the records produced (0 when it left the fast path or had nothing). */
static int fast_step(es_relay_t *r)
{
    pthread_mutex_lock(&r->lock);
    const char *leave = !r->sole ? "this instance no longer handles every partition"
                        : r->suspend_epoch != r->fast_epoch ? "a commit could not be confirmed"
                                                            : NULL;
    handoff_t *q = leave ? NULL : queue_take(r);
    pthread_mutex_unlock(&r->lock);
    if (leave) {
        fast_leave(r, leave);
        return 0;
    }
    int n = 0;
    for (handoff_t *h = q; h; h = h->next) {
        if (fast_produce(r, h) != 0) {
            handoff_list_destroy(q);
            fast_leave(r, "a record could not be produced");
            return 0;
        }
        n += (int)h->count;
    }
    handoff_list_destroy(q);
    if (n > 0) {
        /* Send now and wait for the acknowledgements, instead of letting the producer linger
         * (librdkafka counts a linger in whole milliseconds: ~1 ms on every hop of a saga).
         * Batches handed over meanwhile wait in the queue and go together in the next step:
         * at rest a record leaves at once, under load the steps grow instead of the number
         * of message sets (each costs a consumer one fetch from the dev broker). */
        rd_kafka_flush(r->rk, FAST_FLUSH_MS);
    } else {
        rd_kafka_poll(r->rk, 0);
    }
    if (r->fast_failed) {
        fast_leave(r, "a delivery failed");
        return 0;
    }
    int64_t now = es_mono_us();
    if (r->acked_cnt >= FAST_DELETE_MAX ||
        (r->acked_cnt > 0 && now - r->last_delete_us >= FAST_DELETE_MS * 1000)) {
        if (fast_delete(r) != 0) {
            fast_leave(r, "could not delete published rows");
            return 0;
        }
    }
    if (now - r->last_check_us >= FAST_CHECK_MS * 1000) {
        int found = fast_check(r);
        if (found != 0) {
            fast_leave(r, found > 0 ? "found rows it did not write" : "could not check the outbox");
            return 0;
        }
    }
    return n;
}

/* After a round that found the outbox empty: take the fast path if this instance handles
 * every partition and no commit went unconfirmed since the round began (`epoch`). */
static void fast_maybe_enter(es_relay_t *r, unsigned epoch)
{
    pthread_mutex_lock(&r->lock);
    int enter = r->sole && r->suspend_epoch == epoch && !r->stopping;
    pthread_mutex_unlock(&r->lock);
    if (!enter) {
        return;
    }
    r->fast = 1;
    r->fast_epoch = epoch;
    r->fast_failed = 0;
    r->last_delete_us = r->last_check_us = es_mono_us();
    es_log_info("relay on the fast path: publishing committed batches from memory", "schema=%s",
                r->schema);
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

static void stats_log(es_relay_t *r, es_window_t *win)
{
    if (!es_window_due(win, 10000000)) {
        return;
    }
    /* one line per 10 s of work: rows per round (or per fast step) and how long it took */
    es_log_info("relay rounds",
                "schema=%s mode=%s count=%lld records=%lld avg_records=%.1f avg_ms=%.2f "
                "max_ms=%.2f ack_wait_ms=%.2f",
                r->schema, r->fast ? "fast" : "rounds", (long long)win->rounds,
                (long long)win->records, (double)win->records / (double)win->rounds,
                (double)win->total_us / 1000.0 / (double)win->rounds, (double)win->max_us / 1000.0,
                (double)r->flush_us / 1000.0 / (double)win->rounds);
    r->flush_us = 0;
    es_window_init(win);
}

static void *relay_main(void *arg)
{
    es_relay_t *r = arg;
    int64_t last_try = 0;
    es_window_t win;
    es_window_init(&win);
    rd_kafka_topic_t **warm = NULL;
    size_t warm_cnt = 0;
    char werr[256];
    if (es_kafka_topics_warm(r->rk, 5000, &warm, &warm_cnt, werr, sizeof(werr)) != 0) {
        es_log_warn("could not learn the topics' leaders ahead of time", "schema=%s error=\"%s\"",
                    r->schema, werr);
    }
    for (;;) {
        pthread_mutex_lock(&r->lock);
        int stopping = r->stopping;
        pthread_mutex_unlock(&r->lock);
        if (stopping && r->fast) {
            fast_leave(r, "stopping");
        }
        if (stopping && (!r->leader || es_mono_us() > r->drain_until_us)) {
            break;
        }
        if (!r->pg || PQstatus(r->pg) != CONNECTION_OK) {
            if (r->fast) {
                fast_leave(r, "lost the connection to PostgreSQL");
            }
            if (connect_pg(r) != 0) {
                relay_wait(r, 500);
                continue;
            }
        }
        if (!r->leader) {
            pthread_mutex_lock(&r->lock);
            handoff_list_destroy(queue_take(r)); /* the leader's rounds publish them */
            pthread_mutex_unlock(&r->lock);
            if (es_mono_us() - last_try < 500000 || (last_try = es_mono_us(), !try_leadership(r))) {
                relay_wait(r, 100);
                continue;
            }
        }
        int64_t t0 = es_mono_us();
        if (r->fast) {
            int n = fast_step(r);
            if (n > 0) {
                es_window_add(&win, n, es_mono_us() - t0);
            } else {
                /* acknowledgements arrive while waiting for the next batch */
                relay_wait(r, r->ring_head < r->ring_tail ? 2 : IDLE_POLL_MS);
            }
            stats_log(r, &win);
            continue;
        }
        /* A round reads back everything committed so far: batches handed over until now are
         * covered by it (or were by an earlier one). */
        pthread_mutex_lock(&r->lock);
        handoff_list_destroy(queue_take(r));
        unsigned epoch = r->suspend_epoch;
        pthread_mutex_unlock(&r->lock);
        int n = relay_round(r);
        if (n > 0) {
            es_window_add(&win, n, es_mono_us() - t0);
        }
        stats_log(r, &win);
        if (n < 0) {
            relay_wait(r, 100);
        } else if (n == 0) {
            if (stopping) {
                break; /* drained */
            }
            fast_maybe_enter(r, epoch);
            if (!r->fast) {
                relay_wait(r, IDLE_POLL_MS);
            }
        }
    }
    es_kafka_topics_release(warm, warm_cnt);
    es_pg_forget_prepared(); /* this thread's (its connection is closed by es_relay_stop) */
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
    r->ring_seq = calloc(FAST_RING, sizeof(*r->ring_seq));
    r->ring_left = calloc(FAST_RING, sizeof(*r->ring_left));
    r->ring_state = calloc(FAST_RING, 1);
    r->acked = calloc(FAST_RING, sizeof(*r->acked));
    if (!r->ring_seq || !r->ring_left || !r->ring_state || !r->acked) {
        snprintf(errstr, errstr_size, "out of memory");
        goto err;
    }
    r->cfg = cfg;
    snprintf(r->schema, sizeof(r->schema), "%s", schema);
    snprintf(r->client_id, sizeof(r->client_id), "%s", client_id);
    r->producer = strncmp(r->client_id, "es-", 3) == 0 ? r->client_id + 3 : r->client_id;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    es_pg_pipeline_init(&r->pl);
    r->rk = es_kafka_producer_new(cfg, client_id, on_delivery, r, errstr, errstr_size);
    if (!r->rk) {
        goto err;
    }
    if (pthread_create(&r->thread, NULL, relay_main, r) != 0) {
        snprintf(errstr, errstr_size, "could not start the relay thread");
        rd_kafka_destroy(r->rk);
        goto err;
    }
    return r;
err:
    free(r->ring_seq);
    free(r->ring_left);
    free(r->ring_state);
    free(r->acked);
    free(r);
    return NULL;
}

void es_relay_notify(es_relay_t *r)
{
    pthread_mutex_lock(&r->lock);
    r->notified = 1;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

int es_relay_submit(es_relay_t *r, int64_t seq, es_buf_t *records, size_t count)
{
    handoff_t *h = malloc(sizeof(*h));
    if (!h) {
        es_relay_suspend_fast(r);
        es_relay_notify(r);
        return -1;
    }
    h->seq = seq;
    h->records = *records;
    h->count = count;
    h->next = NULL;
    es_buf_init(records);
    pthread_mutex_lock(&r->lock);
    if (r->q_tail) {
        r->q_tail->next = h;
    } else {
        r->q_head = h;
    }
    r->q_tail = h;
    r->notified = 1;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->lock);
    return 0;
}

void es_relay_set_sole(es_relay_t *r, int sole)
{
    pthread_mutex_lock(&r->lock);
    r->sole = sole;
    pthread_mutex_unlock(&r->lock);
}

void es_relay_suspend_fast(es_relay_t *r)
{
    pthread_mutex_lock(&r->lock);
    r->suspend_epoch++;
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
    handoff_list_destroy(r->q_head);
    free(r->parked);
    free(r->ring_seq);
    free(r->ring_left);
    free(r->ring_state);
    free(r->acked);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->cond);
    free(r);
}
