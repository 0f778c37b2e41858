/*
 * service.c: the consume-handle-emit loop shared by every service (see service.h for the
 * protocol): polling Kafka, positions loaded from PostgreSQL on assignment, each batch's
 * transaction (batch.c) with retries and reconnects, the next batch decoded while the last one
 * commits, committed outbox rows handed to the relay (relay.c), positions the broker no longer
 * holds read from the archive, and the graceful stop.
 */
#include "service_int.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dedup.h"
#include "envelope.h"
#include "journal.h"
#include "json_mem.h"
#include "kafka.h"
#include "log.h"
#include "nice.h"
#include "pg.h"

#define DEFAULT_MAX_BATCH 2000
#define MAX_RETRIES 20
#define TOP_UP_BELOW 100        /* records: see the loop in es_service_run */
#define CARRY_MAX_US 1000000    /* positions of ignored records are written at least this often */
#define LINGER_SAMPLE_US 200000 /* how often the linger looks at the rate and the pressure */
#define LINGER_DECAY 0.25       /* weight of a lower pressure sample (see linger_update) */
#define BACKGROUND_REST_MAX_US 500000 /* the longest rest of a background service (see below) */
#define MAX_GAPS 64                   /* partitions found out of the broker's window in one poll */

static volatile sig_atomic_t service_run = 1;

static void on_signal(int sig)
{
    (void)sig;
    service_run = 0;
    es_pg_stop_waiting(); /* a PostgreSQL out of reach does not hold the stop */
}

static es_service_t *service_alloc(const es_service_def_t *def)
{
    es_service_t *svc = calloc(1, sizeof(*svc));
    if (!svc) {
        return NULL;
    }
    svc->def = def;
    svc->dedup_window_ms = ES_DEDUP_WINDOW_DEFAULT_MS;
    es_pg_array_init(&svc->ids, ES_PG_UUID);
    es_pg_array_init(&svc->parts, ES_PG_INT8);
    es_pg_array_init(&svc->times, ES_PG_INT8);
    es_pg_array_init(&svc->batch_parts, ES_PG_INT8);
    es_pg_pipeline_init(&svc->pl);
    es_pg_pipeline_init(&svc->rl);
    es_buf_init(&svc->ob_records);
    es_buf_init(&svc->pend.records);
    es_window_init(&svc->win);
    es_buf_init(&svc->scratch);
    es_arena_init(&svc->arena);
    return svc;
}

es_service_t *es_service_offline_new(const es_service_def_t *def, es_codec_t *codec)
{
    es_service_t *svc = service_alloc(def);
    if (svc) {
        svc->codec = codec;
        svc->offline = 1;
    }
    return svc;
}

void es_service_destroy(es_service_t *svc)
{
    if (!svc) {
        return;
    }
    es_batch_inputs_clear(svc);
    free(svc->inputs);
    es_batch_loop_clear(svc);
    free(svc->loop);
    free(svc->dead);
    es_pg_array_fini(&svc->ids);
    es_pg_array_fini(&svc->parts);
    es_pg_array_fini(&svc->times);
    es_pg_array_fini(&svc->batch_parts);
    es_pg_pipeline_fini(&svc->pl);
    es_pg_pipeline_fini(&svc->rl);
    es_buf_fini(&svc->ob_records);
    es_buf_fini(&svc->pend.records);
    es_buf_fini(&svc->scratch);
    es_arena_fini(&svc->arena);
    if (svc->own_codec) {
        es_codec_destroy(svc->codec);
    }
    free(svc);
}

/* ---- Kafka wiring ---------------------------------------------------------------------- */

static int reconnect(es_service_t *svc);
static int pending_finish(es_service_t *svc);
static void outbox_handoff(es_service_t *svc, int64_t seq, es_buf_t *records, size_t count);

/* Whether `parts` holds every partition of every input topic (then no other instance handles
 * input, and the relay may take its fast path). When in doubt, no. Learns each input topic's
 * partition count on the way, for the loop-back (0 where it could not). */
static int handles_every_partition(es_service_t *svc, const rd_kafka_topic_partition_list_t *parts)
{
    int total = 0, known = 1;
    svc->parts_total = -1;
    memset(svc->topic_parts, 0, sizeof(svc->topic_parts));
    for (size_t i = 0; svc->def->topics[i]; i++) {
        char errstr[256];
        int n = es_kafka_partition_count(svc->consumer, svc->def->topics[i], 5000, errstr,
                                         sizeof(errstr));
        if (n <= 0) {
            es_log_warn("could not count partitions", "topic=%s error=\"%s\"", svc->def->topics[i],
                        errstr);
            known = 0;
            continue;
        }
        if (i < MAX_TOPICS) {
            svc->topic_parts[i] = n;
        }
        total += n;
    }
    if (known) {
        svc->parts_total = total;
    }
    return known && parts->cnt == total;
}

/* "topic:0,1 topic2:3", for the log: which partitions an instance has (cut with "..." when
 * long). Returns buf. */
static const char *partitions_text(const rd_kafka_topic_partition_list_t *parts, char *buf,
                                   size_t size)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < parts->cnt && len < size; i++) {
        const rd_kafka_topic_partition_t *p = &parts->elems[i];
        int same = i > 0 && !strcmp(parts->elems[i - 1].topic, p->topic);
        int n = same ? snprintf(buf + len, size - len, ",%d", (int)p->partition)
                     : snprintf(buf + len, size - len, "%s%s:%d", i ? " " : "", p->topic,
                                (int)p->partition);
        len += n > 0 ? (size_t)n : 0;
    }
    if (len >= size && size >= 4) {
        memcpy(buf + size - 4, "...", 4);
    }
    return buf;
}

/* A query on positions, waiting out a PostgreSQL outage (a restart, a lost connection) for up
 * to 30 s rather than guessing positions. Returns the result (caller clears) or NULL with
 * errstr. */
static PGresult *positions_query(es_service_t *svc, const char *sql, int nparams,
                                 const char *const *vals, char *errstr, size_t errstr_size)
{
    PGresult *res = NULL;
    for (int attempt = 0; attempt < 30 && !res; attempt++) {
        res = es_pg_query(svc->pg, sql, nparams, vals, NULL, NULL, 0, errstr, errstr_size);
        if (!res) {
            es_log_warn("could not read positions, retrying", "attempt=%d error=\"%s\"",
                        attempt + 1, errstr);
            struct timespec ts = {1, 0};
            nanosleep(&ts, NULL);
            if (PQstatus(svc->pg) != CONNECTION_OK) {
                reconnect(svc);
            }
        }
    }
    return res;
}

/* Set every partition of `parts` to its position stored in PostgreSQL (0 when none), waiting
 * out a PostgreSQL outage for up to 30 s. Returns 0, or -1 (logged) when they cannot be read. */
static int load_positions(es_service_t *svc, rd_kafka_topic_partition_list_t *parts)
{
    char errstr[512];
    PGresult *res = positions_query(svc, "SELECT topic, partition, next_offset FROM positions", 0,
                                    NULL, errstr, sizeof(errstr));
    if (!res) {
        es_log_error("could not load positions: stopping", "error=\"%s\"", errstr);
        return -1;
    }
    for (int i = 0; i < parts->cnt; i++) {
        int64_t off = 0;
        for (int r = 0; r < PQntuples(res); r++) {
            if (!strcmp(PQgetvalue(res, r, 0), parts->elems[i].topic) &&
                atoi(PQgetvalue(res, r, 1)) == parts->elems[i].partition) {
                off = strtoll(PQgetvalue(res, r, 2), NULL, 10);
            }
        }
        parts->elems[i].offset = off;
    }
    PQclear(res);
    return 0;
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    es_service_t *svc = opaque;
    /* the batch in flight commits (or is redone) before partitions move: its positions and
     * outbox row belong to this assignment, and the connection must be free */
    if (pending_finish(svc) != 0) {
        svc->fatal = 1;
        service_run = 0;
    }
    es_batch_forget_newest(svc); /* another instance may have moved them meanwhile */
    svc->rebalanced = 1;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        if (load_positions(svc, parts) != 0) {
            svc->fatal = 1;
            service_run = 0;
        }
        if (svc->unread) {
            rd_kafka_topic_partition_list_destroy(svc->unread);
        }
        svc->unread = rd_kafka_topic_partition_list_copy(parts);
        if (svc->assignment) {
            rd_kafka_topic_partition_list_destroy(svc->assignment);
        }
        svc->assignment = rd_kafka_topic_partition_list_copy(parts);
        svc->assigned_us = es_mono_us();
        int sole = handles_every_partition(svc, parts);
        svc->sole = sole;
        char which[512];
        es_log_info("partitions assigned", "count=%d every_partition=%s partitions=\"%s\"",
                    parts->cnt, sole ? "yes" : "no", partitions_text(parts, which, sizeof(which)));
        rd_kafka_assign(rk, parts);
        es_relay_set_sole(svc->relay, sole);
    } else {
        /* before anyone else can take them: the relay leaves its fast path */
        es_relay_set_sole(svc->relay, 0);
        memset(svc->topic_parts, 0, sizeof(svc->topic_parts));
        es_log_info("partitions revoked", "count=%d", parts->cnt);
        svc->sole = 0;
        if (svc->unread) {
            rd_kafka_topic_partition_list_destroy(svc->unread);
            svc->unread = NULL;
        }
        if (svc->assignment) {
            rd_kafka_topic_partition_list_destroy(svc->assignment);
            svc->assignment = NULL;
        }
        rd_kafka_assign(rk, NULL);
    }
}

/* Roll back a batch whose transaction failed. Its COMMIT may have gone through unseen, so its
 * outbox row must not be overtaken: the relay leaves its fast path until a round found it. */
static void batch_rollback(es_service_t *svc)
{
    char tmp[256];
    es_pg_exec(svc->pg, "ROLLBACK", tmp, sizeof(tmp));
    es_relay_suspend_fast(svc->relay);
    es_batch_forget_newest(svc); /* it may have moved them */
}

static int run_batch_tx(es_service_t *svc, const es_raw_t *raws, size_t cnt, char *errstr,
                        size_t errstr_size)
{
    if (es_batch_apply(svc, svc->pg, raws, cnt, 1, errstr, errstr_size) != 0) {
        batch_rollback(svc);
        return -1;
    }
    outbox_handoff(svc, svc->ob_seq, &svc->ob_records, svc->ob_count);
    return 0;
}

/* An instance stalled inside a batch's transaction (stopped, paused in a debugger, starved)
 * holds its rows' locks, and the instances that took its partitions over wait on them: after
 * this long without a statement its session ends (the batch rolls back; the stalled instance,
 * when it runs again, reconnects and redoes it, and the dedup marks keep every effect single).
 * A healthy batch's transaction waits only on its own round trips, never on Kafka. */
#define IDLE_TX_TIMEOUT_S 10

/* The session's settings: the service's schema first on the search path, asynchronous
 * commits for services that may (see async_commit in service.h), generic plans, and the end of
 * a transaction left idle (IDLE_TX_TIMEOUT_S). Every statement of a batch takes its rows as
 * arrays (unnest($1::text[]) ...): PostgreSQL's plan cache, left to itself, keeps planning each
 * execution anew for the array it was given, since a plan for a known one-element array always
 * looks cheaper than the generic one. The plans are the same (index lookups per row); planning
 * them was 9% of PostgreSQL's time at 200 transfers/s (perf), and forcing generic plans took
 * 8-13% off its CPU at 200/s. */
static int session_setup(es_service_t *svc, char *errstr, size_t errstr_size)
{
    char sql[320];
    snprintf(sql, sizeof(sql),
             "SET search_path TO %s; SET synchronous_commit = %s; "
             "SET plan_cache_mode = force_generic_plan; "
             "SET idle_in_transaction_session_timeout = '%ds'",
             svc->def->schema, svc->def->async_commit ? "off" : "on", IDLE_TX_TIMEOUT_S);
    return es_pg_exec(svc->pg, sql, errstr, errstr_size);
}

/* A background service under ES_BACKGROUND_NICE asks the same of its PostgreSQL backend, which
 * does most of its work (see nice.h; a backend elsewhere is left alone). */
static void backend_yield(es_service_t *svc)
{
    char errstr[256];
    int nice = svc->cfg->background_nice;
    if (!svc->def->background || nice <= 0) {
        return;
    }
    int rc = es_nice_pg_backend(svc->pg, nice, errstr, sizeof(errstr));
    if (rc < 0) {
        es_log_warn("could not lower the priority of the PostgreSQL backend", "error=\"%s\"",
                    errstr);
    } else {
        es_log_info("PostgreSQL backend yields the CPU", "nice=%d backend_pid=%d local=%s", nice,
                    PQbackendPID(svc->pg), rc ? "yes" : "no (left alone)");
    }
}

static int reconnect(es_service_t *svc)
{
    char errstr[512];
    PQfinish(svc->pg);
    es_pg_forget_prepared();
    svc->pg = NULL;
    const char *conninfo = es_config_pg(svc->cfg, errstr, sizeof(errstr));
    if (!conninfo) {
        return -1;
    }
    svc->pg = es_pg_connect(conninfo, 30, errstr, sizeof(errstr));
    if (!svc->pg) {
        es_log_error("could not reconnect to PostgreSQL", "error=\"%s\"", errstr);
        return -1;
    }
    backend_yield(svc);
    return session_setup(svc, errstr, sizeof(errstr));
}

/* Process one batch with retries: a lost connection or a deadlock is retried (the batch is
 * still in memory; dedup makes a retry after an unseen commit harmless). */
static int process_batch(es_service_t *svc, const es_raw_t *raws, size_t cnt)
{
    for (int attempt = 0; attempt < MAX_RETRIES; attempt++) {
        char errstr[1024];
        if (run_batch_tx(svc, raws, cnt, errstr, sizeof(errstr)) == 0) {
            return 0;
        }
        if (!service_run) { /* asked to stop: the batch's records are read again at the start */
            es_log_warn("stopping with a batch not committed: its records are read again at the "
                        "next start",
                        "records=%zu error=\"%s\"", cnt, errstr);
            return -1;
        }
        es_log_warn("batch failed, retrying", "attempt=%d records=%zu error=\"%s\"", attempt + 1,
                    cnt, errstr);
        struct timespec ts = {0, (long)(50 + 100 * attempt) * 1000 * 1000};
        nanosleep(&ts, NULL);
        if (PQstatus(svc->pg) != CONNECTION_OK && reconnect(svc) != 0) {
            continue;
        }
    }
    es_log_error("batch failed too many times: stopping", "records=%zu", cnt);
    return -1;
}

/* Count a finished batch for the stats line. */
static void batch_count(es_service_t *svc, size_t cnt, int64_t start_us)
{
    es_window_add(&svc->win, (int64_t)cnt, es_mono_us() - start_us);
    svc->batches++;
    svc->records += (int64_t)cnt;
}

/* Commit the carried positions of ignored records on their own (the loop found nothing more to
 * do, or a tick comes). Returns 0, or -1 when it failed for good. */
static int carry_flush(es_service_t *svc)
{
    if (!svc->carry || svc->pend.cnt > 0) {
        return 0;
    }
    int64_t t0 = es_mono_us();
    int rc = process_batch(svc, NULL, 0);
    svc->carry = 0;
    batch_count(svc, 0, t0);
    return rc;
}

/* One timer tick (def->tick), after the batch in flight committed. A failed tick is rolled
 * back and simply tried again at the next one. Returns -1 only when the batch in flight
 * failed for good. */
static int run_tick(es_service_t *svc)
{
    if (pending_finish(svc) != 0 || carry_flush(svc) != 0) {
        return -1;
    }
    /* the topics' partitions could not be counted when these were assigned (no metadata):
     * timers wait for that count (caught_up.h), so it is asked for again, every 10 s at most */
    if (svc->assignment && svc->parts_total < 0 && es_mono_us() >= svc->recount_us) {
        svc->recount_us = es_mono_us() + 10000000;
        svc->sole = handles_every_partition(svc, svc->assignment);
        es_log_info("partitions counted again", "known=%s every_partition=%s",
                    svc->parts_total >= 0 ? "yes" : "no", svc->sole ? "yes" : "no");
    }
    char errstr[1024];
    if (es_batch_tick(svc, svc->pg, errstr, sizeof(errstr)) != 0) {
        batch_rollback(svc);
        es_log_warn("timer tick failed, trying again at the next one", "error=\"%s\"", errstr);
        if (PQstatus(svc->pg) != CONNECTION_OK) {
            reconnect(svc);
        }
        return 0;
    }
    outbox_handoff(svc, svc->ob_seq, &svc->ob_records, svc->ob_count);
    return 0;
}

/* The dedup window (dedup.h): delete the marks it no longer needs, PRUNE_ROWS at most at a
 * time, after the batch in flight committed. Returns how many went (0 when it failed: tried
 * again later), or -1 when the batch in flight failed for good. */
#define PRUNE_ROWS 10000
static int run_prune(es_service_t *svc)
{
    if (pending_finish(svc) != 0) {
        return -1;
    }
    char errstr[1024];
    int n = es_batch_prune(svc, svc->pg, PRUNE_ROWS, errstr, sizeof(errstr));
    if (n < 0) {
        es_log_warn("could not delete old dedup marks, trying again later", "error=\"%s\"", errstr);
        if (PQstatus(svc->pg) != CONNECTION_OK) {
            reconnect(svc);
        }
        return 0;
    }
    svc->pruned += n;
    return n;
}

/* A batch sent ahead (batch_send) that failed, with the reason in `errstr`: rolled back and
 * redone the ordinary way, with retries. Returns 0, or -1 when it failed for good. */
static int batch_redo(es_service_t *svc, const es_raw_t *raws, size_t cnt, const char *errstr)
{
    batch_rollback(svc);
    es_log_warn("batch failed, retrying", "attempt=1 records=%zu error=\"%s\"", cnt, errstr);
    return process_batch(svc, raws, cnt);
}

/* Hand a committed batch's outbox row to the relay (the buffer's contents are stolen). */
static void outbox_handoff(es_service_t *svc, int64_t seq, es_buf_t *records, size_t count)
{
    if (count == 0) {
        return;
    }
    if (seq < 0) {
        es_relay_suspend_fast(svc->relay); /* cannot happen: let a round find the row */
        es_relay_notify(svc->relay);
        return;
    }
    es_relay_submit(svc->relay, seq, records, count);
}

/* Decide, every LINGER_SAMPLE_US, how long small batches linger (es_pressure_linger_us): only
 * when threads wait for the CPU much of the time (ES_LINGER_PRESSURE) and records come fast
 * enough that a linger gathers a few more (ES_LINGER_MIN_RECORDS). Then fewer, bigger
 * transactions leave the CPU to the work; at rest, at low rates, or with cores to spare, a batch
 * goes at once. The linger grows with the pressure, from 1 ms to the whole linger_ms at
 * ES_LINGER_PRESSURE_FULL: at the threshold a wait is all cost (a whole linger there made a
 * transfer at 1,000/s 7-9 ms slower at p99), and only when threads wait for a core most of the
 * time does the CPU it saves pay for it (bench, docs/bench/HISTORY.md). The pressure used rises
 * with a sample at once but falls slowly (LINGER_DECAY: over about a second): every service reads
 * the same machine-wide figure, so on the raw sample they all lingered together, which lowered the
 * pressure, which stopped them all together: the stack swung with a 400 ms period, and transfers at
 * 1,000/s sent in the high half were 5-8 ms slower. Falling slowly damps that; rising at once meets
 * a burst at once (an average both ways cost the order runs ~10% of their throughput). A background
 * service lingers its whole linger_ms: nothing waits on it. */
static void linger_update(es_service_t *svc)
{
    int64_t now = es_mono_us();
    if (svc->linger_ms <= 0 || now - svc->rate_at_us < LINGER_SAMPLE_US) {
        return;
    }
    double rate = (double)svc->rate_records * 1e6 / (double)(now - svc->rate_at_us);
    double sample = es_pressure_sample(&svc->pressure);
    svc->pressure_followed = es_pressure_follow(svc->pressure_followed, sample, LINGER_DECAY);
    svc->linger_us =
        es_pressure_linger_us(svc->pressure_followed, rate, svc->linger_ms, svc->def->background);
    svc->rate_at_us = now;
    svc->rate_records = 0;
}

/* Sleep `us` (at most BACKGROUND_REST_MAX_US), or until the service is asked to stop. The
 * batch in flight commits meanwhile. */
static void background_rest(es_service_t *svc, int64_t us)
{
    us = us < BACKGROUND_REST_MAX_US ? us : BACKGROUND_REST_MAX_US;
    int64_t until = es_mono_us() + us, now;
    while (service_run && (now = es_mono_us()) < until) {
        int64_t step = until - now < 10000 ? until - now : 10000;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)step * 1000};
        nanosleep(&ts, NULL);
    }
    svc->rested += us;
}

/* True when the decoded batch holds nothing but records the service ignores (no inputs, no
 * dead letters), and positions have not been carried for longer than CARRY_MAX_US. */
static int batch_ignorable(const es_service_t *svc)
{
    return svc->input_cnt == 0 && svc->ob_count == 0 && svc->dead_cnt == 0 && !svc->ob_failed &&
           (!svc->carry || es_mono_us() - svc->carry_since_us < CARRY_MAX_US);
}

/* Send the decoded batch up to its COMMIT without waiting for it: the next batch is polled and
 * decoded meanwhile, and pending_finish() waits. Returns 0 (in flight), or -1 with errstr
 * (nothing in flight; the transaction, if open, must be rolled back). */
static int batch_send(es_service_t *svc, const es_raw_t *raws, rd_kafka_message_t **msgs,
                      size_t cnt, char *errstr, size_t errstr_size)
{
    int64_t t0 = es_mono_us();
    if (es_batch_prepare(svc, svc->pg, 1, errstr, errstr_size) != 0 ||
        es_pg_pipeline_send(svc->pg, &svc->pl, 1, errstr, errstr_size) != 0) {
        return -1;
    }
    /* the outbox row waits with the batch; the next batch fills the other buffer */
    es_buf_t tmp = svc->pend.records;
    svc->pend.records = svc->ob_records;
    svc->ob_records = tmp;
    svc->pend.ob_count = svc->ob_count;
    svc->pend.ob_idx = svc->ob_idx;
    svc->pend.raws = raws;
    svc->pend.msgs = msgs;
    svc->pend.cnt = cnt;
    svc->pend.start_us = t0;
    return 0;
}

/* One line per 10 s of work: how big batches are, how long records waited for them, and
 * where their time went. */
static void batch_stats(es_service_t *svc)
{
    es_window_t *w = &svc->win;
    if (!es_window_due(w, 10000000)) {
        return;
    }
    double rounds = (double)w->rounds;
    es_json_mem_stats_t jm;
    es_json_mem_stats(&jm);
    es_log_info("batches",
                "count=%lld records=%lld avg_records=%.1f avg_ms=%.2f max_ms=%.2f "
                "age_avg_ms=%.1f age_max_ms=%lld decode_ms=%.2f begin_ms=%.2f handle_ms=%.2f "
                "commit_ms=%.2f ignored=%lld lingered=%lld rested_ms=%lld looped=%lld "
                "loop_reads_skipped=%lld payload_region_kib=%zu payload_region_fallback=%lld "
                "payload_region_reset_skipped=%lld",
                (long long)w->rounds, (long long)w->records, (double)w->records / rounds,
                (double)w->total_us / 1000.0 / rounds, (double)w->max_us / 1000.0,
                (double)svc->age_sum / (double)(w->records + svc->ignored), (long long)svc->age_max,
                (double)svc->spent.decode_us / 1000.0 / rounds,
                (double)svc->spent.begin_us / 1000.0 / rounds,
                (double)svc->spent.handle_us / 1000.0 / rounds,
                (double)svc->spent.commit_us / 1000.0 / rounds, (long long)svc->ignored,
                (long long)svc->lingered, (long long)(svc->rested / 1000), (long long)svc->looped,
                (long long)svc->loop_reads_skipped, jm.high / 1024, (long long)jm.fallback,
                (long long)jm.skipped);
    memset(&svc->spent, 0, sizeof(svc->spent));
    svc->age_sum = svc->age_max = svc->ignored = svc->lingered = svc->rested = svc->looped = 0;
    svc->loop_reads_skipped = 0;
    es_window_init(w);
}

/* Wait for the batch in flight: once committed its outbox row goes to the relay; if it failed
 * it is rolled back and redone the ordinary way (with retries). Its messages are freed.
 * Returns 0, or -1 when it failed for good. */
static int pending_finish(es_service_t *svc)
{
    if (svc->pend.cnt == 0) {
        return 0;
    }
    char errstr[1024];
    int rc = es_pg_pipeline_collect(svc->pg, &svc->pl, errstr, sizeof(errstr));
    int64_t now = es_mono_us();
    svc->spent.commit_us += now - svc->pend.start_us;
    int64_t seq = rc == 0 ? es_batch_outbox_seq(svc, svc->pend.ob_idx) : -1;
    es_pg_pipeline_reset(&svc->pl);
    if (rc == 0) {
        outbox_handoff(svc, seq, &svc->pend.records, svc->pend.ob_count);
    } else {
        rc = batch_redo(svc, svc->pend.raws, svc->pend.cnt, errstr);
    }
    batch_count(svc, svc->pend.cnt, svc->pend.start_us);
    for (size_t i = 0; i < svc->pend.cnt; i++) {
        rd_kafka_message_destroy(svc->pend.msgs[i]);
    }
    svc->pend.cnt = 0;
    return rc;
}

static void raw_from_message(es_raw_t *raw, const rd_kafka_message_t *rkm, char *type_buf,
                             size_t type_size)
{
    raw->topic = rd_kafka_topic_name(rkm->rkt);
    raw->partition = rkm->partition;
    raw->offset = rkm->offset;
    raw->value = rkm->payload;
    raw->value_len = rkm->len;
    raw->rkm = rkm;
    raw->key = rkm->key;
    raw->key_len = rkm->key_len;
    /* the type is peeked from the value: parsing Kafka headers costs an allocation each */
    raw->type_hdr =
        es_envelope_peek_type(rkm->payload, rkm->len, type_buf, type_size) == 0 ? type_buf : NULL;
}

/* ---- the archive tier ---------------------------------------------------------------------- */

/* A partition whose stored position the broker no longer holds. */
typedef struct gap {
    char topic[256];
    int32_t partition;
} gap_t;

/* Where a poll puts records: one slot's arrays, and the partitions found out of the broker's
 * window (read from the archive once the batch in hand is done). */
typedef struct poll_into {
    rd_kafka_message_t **msgs;
    es_raw_t *raws;
    char (*types)[ES_TYPE_MAX];
    size_t max;
    gap_t gaps[MAX_GAPS];
    size_t gap_cnt;
} poll_into_t;

/* Partitions moved while records were in hand (the rebalance callback runs inside a poll):
 * those records, and the positions carried from ignored ones, were read under the assignment
 * before. A partition now another instance's would have them handled twice, and this
 * instance's outbox row could reach Kafka behind the new owner's events of the same aggregate;
 * a partition kept is read again from the stored position its assignment started at. So they
 * all go, unhandled. Returns 0, the slot's new count, or n when nothing moved. */
static size_t drop_moved(es_service_t *svc, poll_into_t *ps, size_t n)
{
    if (!svc->rebalanced) {
        return n;
    }
    svc->rebalanced = 0;
    if (n > 0 || svc->carry) {
        es_log_info("partitions moved: the records in hand are left to their partitions' owner",
                    "records=%zu", n);
    }
    for (size_t i = 0; i < n; i++) {
        rd_kafka_message_destroy(ps->msgs[i]);
    }
    es_batch_inputs_clear(svc);
    svc->dead_cnt = 0; /* their records were those just destroyed */
    svc->decoded = NULL;
    svc->carry = 0;
    svc->pos_cnt = 0;
    ps->gap_cnt = 0; /* a partition still out of the broker's window says so again */
    return 0;
}

/* Poll records into ps's slot from index n on: wait up to timeout_ms for the first, then take
 * whatever else is already here, up to ps->max. Returns the new count (smaller than n when
 * partitions moved meanwhile: drop_moved). How long each record waited between its producer and
 * now goes to the batch statistics (Kafka timestamps are the producer's clock: the same machine
 * in the dev stack). */
static size_t poll_records(es_service_t *svc, poll_into_t *ps, size_t n, int timeout_ms)
{
    size_t first = n;
    while (n < ps->max) {
        rd_kafka_message_t *rkm =
            rd_kafka_consumer_poll(svc->consumer, n == first ? timeout_ms : 0);
        if (svc->rebalanced) { /* the records before this poll's are the old assignment's */
            n = first = drop_moved(svc, ps, n);
        }
        if (!rkm) {
            break;
        }
        if (rkm->err) {
            if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                if (svc->unread && rkm->rkt) {
                    rd_kafka_topic_partition_list_del(svc->unread, rd_kafka_topic_name(rkm->rkt),
                                                      rkm->partition);
                }
                rd_kafka_message_destroy(rkm);
                continue;
            }
            int lost_pos = rkm->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET ||
                           rkm->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE;
            if (lost_pos && rkm->rkt && ps->gap_cnt < MAX_GAPS) {
                gap_t *g = &ps->gaps[ps->gap_cnt++];
                snprintf(g->topic, sizeof(g->topic), "%s", rd_kafka_topic_name(rkm->rkt));
                g->partition = rkm->partition;
            } else {
                es_log_error("consumer error", "topic=%s partition=%d offset=%lld error=\"%s\"",
                             rkm->rkt ? rd_kafka_topic_name(rkm->rkt) : "-", rkm->partition,
                             (long long)rkm->offset, rd_kafka_message_errstr(rkm));
            }
            rd_kafka_message_destroy(rkm);
            continue;
        }
        ps->msgs[n] = rkm;
        raw_from_message(&ps->raws[n], rkm, ps->types[n], ES_TYPE_MAX);
        n++;
    }
    svc->rate_records += (int64_t)(n - first);
    if (n > first) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        int64_t now_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
        for (size_t i = first; i < n; i++) {
            int64_t ts = rd_kafka_message_timestamp(ps->msgs[i], NULL);
            if (ts > 0 && now_ms >= ts) {
                svc->age_sum += now_ms - ts;
                svc->age_max = now_ms - ts > svc->age_max ? now_ms - ts : svc->age_max;
            }
        }
    }
    return n;
}

/* poll_records() into a batch already decoded up to n, decoding what it adds. Returns the new
 * count. (After a redo of the previous batch the working state is that batch's: the loop then
 * decodes the whole of this one again before sending it.) */
static size_t poll_more(es_service_t *svc, poll_into_t *ps, size_t n, int timeout_ms)
{
    size_t more = poll_records(svc, ps, n, timeout_ms);
    if (more > n && svc->decoded == ps->raws) {
        es_batch_decode_more(svc, ps->raws, n, more);
    }
    return more;
}

/* positions_query() on one partition's row: $1 the topic, $2 the partition, $3 `value` (when
 * not NULL). */
static PGresult *partition_query(es_service_t *svc, const char *sql, const char *topic,
                                 int32_t partition, const char *value, char *errstr,
                                 size_t errstr_size)
{
    char part[16];
    snprintf(part, sizeof(part), "%d", (int)partition);
    const char *vals[3] = {topic, part, value};
    return positions_query(svc, sql, value ? 3 : 2, vals, errstr, errstr_size);
}

/* The stored position of a partition (0 when none is stored), or -1 with errstr. */
static int64_t stored_position(es_service_t *svc, const char *topic, int32_t partition,
                               char *errstr, size_t errstr_size)
{
    PGresult *res = partition_query(
        svc, "SELECT next_offset FROM positions WHERE topic = $1 AND partition = $2::int", topic,
        partition, NULL, errstr, errstr_size);
    if (!res) {
        return -1;
    }
    int64_t pos = PQntuples(res) == 1 ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : 0;
    PQclear(res);
    return pos;
}

/* Go on from the broker: every assigned partition restarts at its stored position (a
 * partition that failed its fetch does not resume on a seek). */
static rd_kafka_resp_err_t resume_from_stored(es_service_t *svc)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    rd_kafka_resp_err_t kerr = rd_kafka_assignment(svc->consumer, &parts);
    if (!kerr && load_positions(svc, parts) == 0) {
        kerr = rd_kafka_assign(svc->consumer, parts);
    } else if (!kerr) {
        kerr = RD_KAFKA_RESP_ERR__FAIL;
    }
    if (parts) {
        rd_kafka_topic_partition_list_destroy(parts);
    }
    return kerr;
}

/* Whether this data folder's journal holds a record of the partition at offset `at` or later
 * (0 when not, or when there is no journal: real Kafka). */
static int journal_holds_from(const es_service_t *svc, const gap_t *g, int64_t at)
{
    char err[256];
    es_journal_reader_t *jr =
        es_journal_reader_open(svc->cfg->data_dir, g->topic, g->partition, err, sizeof(err));
    if (!jr) {
        return 0;
    }
    es_journal_record_t rec;
    int held = es_journal_reader_seek(jr, at) == 0 &&
               es_journal_reader_next(jr, &rec, err, sizeof(err)) == 1;
    es_journal_reader_close(jr);
    return held;
}

/* A stored position past the partition's end: the log lost records this service had read
 * (a dev broker killed with -9 loses what it had acknowledged and not yet journaled; real Kafka
 * after an unclean leader election). Whatever is appended from now on takes those offsets
 * again, so going on from the stored position would skip it without a word. Instead the
 * position moves back to the partition's end, loudly. `from` is the stored position.
 * Returns 1 when it did, 0 when the position is not past the end (an ordinary gap: read the
 * archive), -1 with errstr. */
static int past_end_rewind(es_service_t *svc, const gap_t *g, int64_t from, char *errstr,
                           size_t errstr_size)
{
    int64_t lo = 0, hi = 0;
    rd_kafka_resp_err_t kerr =
        rd_kafka_query_watermark_offsets(svc->consumer, g->topic, g->partition, &lo, &hi, 5000);
    if (kerr) {
        snprintf(errstr, errstr_size, "could not read the end of %.200s [%d]: %s", g->topic,
                 (int)g->partition, rd_kafka_err2str(kerr));
        return -1;
    }
    if (from <= hi) {
        return 0;
    }
    /* The dev broker restores its journal before it lets anyone in, and journals only what it
     * holds: its partitions reach at least as far as the journal. One that ends before the
     * journal does is another broker (one of another data folder took the port, or the
     * address points elsewhere): going on from its end would read the journal back from there
     * and find the broker short again, for ever. Stop instead. */
    if (journal_holds_from(svc, g, hi)) {
        snprintf(errstr, errstr_size,
                 "the broker's %.200s [%d] ends at offset %lld, before this data folder's journal "
                 "does: it is not this data folder's dev broker (start this service again once "
                 "that one runs)",
                 g->topic, (int)g->partition, (long long)hi);
        return -1;
    }
    char end[24];
    snprintf(end, sizeof(end), "%lld", (long long)hi);
    PGresult *res = partition_query(svc,
                                    "UPDATE positions SET next_offset = $3::bigint, updated_at = "
                                    "now() WHERE topic = $1 AND partition = $2::int",
                                    g->topic, g->partition, end, errstr, errstr_size);
    if (!res) {
        return -1;
    }
    PQclear(res);
    es_log_error("the log lost records this service had read: going on from the partition's "
                 "new end (records appended from now on are read; the lost ones cannot be)",
                 "topic=%s partition=%d stored_position=%lld end=%lld lost=%lld", g->topic,
                 (int)g->partition, (long long)from, (long long)hi, (long long)(from - hi));
    kerr = resume_from_stored(svc);
    if (kerr) {
        snprintf(errstr, errstr_size, "could not resume from the broker at offset %lld: %s",
                 (long long)hi, rd_kafka_err2str(kerr));
        return -1;
    }
    return 1;
}

/* Read a partition from its stored position `from` to the end of the dev broker's journal, in
 * batches handled the ordinary way (dedup, effects, positions in one transaction each), then
 * point the consumer at the next offset. Returns the records read (>= 0), or -1 with errstr:
 * no journal (real Kafka), a hole in it, or a batch that failed for good. */
static int64_t archive_catch_up(es_service_t *svc, const gap_t *g, int64_t from, size_t max_batch,
                                char *errstr, size_t errstr_size)
{
    es_journal_reader_t *jr =
        es_journal_reader_open(svc->cfg->data_dir, g->topic, g->partition, errstr, errstr_size);
    if (!jr) {
        return -1;
    }
    es_raw_t *raws = calloc(max_batch, sizeof(*raws));
    size_t *voff = calloc(max_batch, sizeof(*voff)), *koff = calloc(max_batch, sizeof(*koff));
    char(*types)[ES_TYPE_MAX] = calloc(max_batch, sizeof(*types));
    es_buf_t bytes;
    es_buf_init(&bytes);
    int64_t next = from, total = 0;
    int rc = raws && voff && koff && types && es_journal_reader_seek(jr, from) == 0 ? 0 : -1;
    if (rc != 0) {
        snprintf(errstr, errstr_size, "could not read the journal of %.200s [%d] from offset %lld",
                 g->topic, (int)g->partition, (long long)from);
    }
    while (rc == 0) {
        size_t n = 0;
        es_buf_reset(&bytes);
        es_journal_record_t rec;
        int got = 0;
        while (n < max_batch &&
               (got = es_journal_reader_next(jr, &rec, errstr, errstr_size)) == 1) {
            if (rec.offset != next) {
                snprintf(errstr, errstr_size,
                         "the journal of %.200s [%d] has no record at offset %lld (next is %lld)",
                         g->topic, (int)g->partition, (long long)next, (long long)rec.offset);
                got = -1;
                break;
            }
            es_raw_t *raw = &raws[n];
            memset(raw, 0, sizeof(*raw));
            raw->topic = g->topic;
            raw->partition = g->partition;
            raw->offset = rec.offset;
            raw->value_len = rec.value_len > 0 ? (size_t)rec.value_len : 0;
            raw->key_len = rec.key_len > 0 ? (size_t)rec.key_len : 0;
            voff[n] = rec.value ? bytes.len : (size_t)-1;
            if (rec.value && es_buf_append(&bytes, rec.value, raw->value_len) != 0) {
                got = -1;
            }
            koff[n] = rec.key_len >= 0 ? bytes.len : (size_t)-1;
            if (rec.key_len >= 0 && es_buf_append(&bytes, rec.key, raw->key_len) != 0) {
                got = -1;
            }
            n++;
            next = rec.offset + 1;
        }
        for (size_t i = 0; i < n; i++) {
            raws[i].value = voff[i] == (size_t)-1 ? NULL : bytes.data + voff[i];
            raws[i].key = koff[i] == (size_t)-1 ? NULL : bytes.data + koff[i];
            raws[i].type_hdr =
                raws[i].value && es_envelope_peek_type(raws[i].value, raws[i].value_len, types[i],
                                                       ES_TYPE_MAX) == 0
                    ? types[i]
                    : NULL;
        }
        if (got < 0) {
            rc = -1;
        } else if (n > 0 && process_batch(svc, raws, n) != 0) {
            snprintf(errstr, errstr_size, "a batch read from the journal failed for good");
            rc = -1;
        }
        total += (int64_t)n;
        if (got == 0) {
            break; /* the end of what the journal holds */
        }
    }
    es_journal_reader_close(jr);
    free(raws);
    free(voff);
    free(koff);
    free(types);
    es_buf_fini(&bytes);
    if (rc != 0) {
        return -1;
    }
    rd_kafka_resp_err_t kerr = resume_from_stored(svc);
    if (kerr) {
        snprintf(errstr, errstr_size, "could not resume from the broker at offset %lld: %s",
                 (long long)next, rd_kafka_err2str(kerr));
        return -1;
    }
    es_log_info("caught up from the archive (the dev broker's journal)",
                "topic=%s partition=%d from=%lld to=%lld records=%lld", g->topic, (int)g->partition,
                (long long)from, (long long)next, (long long)total);
    return total;
}

/* A partition whose stored position the broker does not hold: past its end, go on from the
 * end (past_end_rewind); else read the archive up to the broker (archive_catch_up). Returns 0,
 * or -1 with errstr. */
static int handle_gap(es_service_t *svc, const gap_t *g, size_t max_batch, char *errstr,
                      size_t errstr_size)
{
    int64_t from = stored_position(svc, g->topic, g->partition, errstr, errstr_size);
    if (from < 0) {
        return -1;
    }
    int rewound = past_end_rewind(svc, g, from, errstr, errstr_size);
    if (rewound != 0) {
        return rewound < 0 ? -1 : 0;
    }
    return archive_catch_up(svc, g, from, max_batch, errstr, errstr_size) < 0 ? -1 : 0;
}

int es_service_run(const es_service_def_t *def, es_config_t *cfg)
{
    char errstr[1024];
    int rc = -1;
    size_t max_batch = def->max_batch > 0 ? (size_t)def->max_batch : DEFAULT_MAX_BATCH;
    rd_kafka_message_t **slot_msgs[2] = {calloc(max_batch, sizeof(**slot_msgs)),
                                         calloc(max_batch, sizeof(**slot_msgs))};
    es_raw_t *slot_raws[2] = {calloc(max_batch, sizeof(**slot_raws)),
                              calloc(max_batch, sizeof(**slot_raws))};
    char(*slot_types[2])[ES_TYPE_MAX] = {calloc(max_batch, sizeof(*slot_types[0])),
                                         calloc(max_batch, sizeof(*slot_types[0]))};
    es_service_t *svc = service_alloc(def);
    if (!svc || !slot_msgs[0] || !slot_msgs[1] || !slot_raws[0] || !slot_raws[1] ||
        !slot_types[0] || !slot_types[1]) {
        es_log_error("out of memory", "%s", "");
        goto err;
    }
    svc->cfg = cfg;
    /* on the dev stack, the service logs in as the role that owns its schema and nothing else
     * (es_<schema>: scripts/db-roles.sql) */
    if (es_config_set_pg_role(cfg, def->schema) != 0) {
        es_log_error("could not start", "error=\"no PostgreSQL role can be named %s\"",
                     def->schema);
        goto err;
    }
    svc->dedup_window_ms = cfg->dedup_window_ms;
    svc->linger_ms = cfg->batch_linger_ms;
    svc->linger_below = TOP_UP_BELOW;
    if (def->background && svc->linger_ms > 0) {
        svc->linger_ms = ES_BACKGROUND_LINGER_MS;
        svc->linger_below = max_batch;
    }
    es_pressure_init(&svc->pressure);
    svc->pressure_followed = -1;
    svc->rate_at_us = es_mono_us();
    svc->own_codec = 1;
    svc->codec = es_codec_new(errstr, sizeof(errstr));
    if (!svc->codec) {
        es_log_error("could not load schemas", "error=\"%s\"", errstr);
        goto err;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    const char *conninfo = es_config_pg(cfg, errstr, sizeof(errstr));
    if (!conninfo || !(svc->pg = es_pg_connect(conninfo, 30, errstr, sizeof(errstr)))) {
        es_log_error("could not start", "error=\"%s\"", errstr);
        goto err;
    }
    if (es_service_create_tables(def, svc->pg, errstr, sizeof(errstr)) != 0) {
        es_log_error("could not create tables", "error=\"%s\"", errstr);
        goto err;
    }
    if (session_setup(svc, errstr, sizeof(errstr)) != 0) {
        es_log_error("could not start", "error=\"%s\"", errstr);
        goto err;
    }
    /* a watcher yields the CPU to the sagas' services: before any thread starts (they inherit
     * it), and its backend */
    if (def->background && cfg->background_nice > 0) {
        if (es_nice_self(cfg->background_nice, errstr, sizeof(errstr)) != 0) {
            es_log_warn("could not lower this service's priority", "error=\"%s\"", errstr);
        }
        backend_yield(svc);
    }
    char group[128], client[128];
    snprintf(group, sizeof(group), "es-%s", def->name);
    snprintf(client, sizeof(client), "es-%s", def->name);
    svc->relay = es_relay_start(cfg, def->schema, client, errstr, sizeof(errstr));
    if (!svc->relay) {
        es_log_error("could not start", "error=\"%s\"", errstr);
        goto err;
    }
    /* timers need to know when the partitions were read to their end */
    svc->consumer = es_kafka_consumer_new(cfg, client, group, on_rebalance, svc,
                                          (def->tick ? ES_CONSUMER_PARTITION_EOF : 0) |
                                              (def->background ? ES_CONSUMER_BACKGROUND : 0),
                                          errstr, sizeof(errstr));
    if (!svc->consumer) {
        es_log_error("could not start", "error=\"%s\"", errstr);
        goto err;
    }
    rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new(4);
    for (size_t i = 0; def->topics[i]; i++) {
        rd_kafka_topic_partition_list_add(subs, def->topics[i], RD_KAFKA_PARTITION_UA);
    }
    rd_kafka_resp_err_t kerr = rd_kafka_subscribe(svc->consumer, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    if (kerr) {
        es_log_error("could not subscribe", "error=\"%s\"", rd_kafka_err2str(kerr));
        goto err;
    }
    es_log_info("ready", "group=%s schema=%s", group, def->schema);

    /* Two slots of messages: while one batch's writes and COMMIT travel to PostgreSQL, the next
     * is polled and decoded into the other. */
    int slot = 0;
    int64_t tick_us = (def->tick_ms > 0 ? def->tick_ms : 250) * 1000LL;
    int64_t next_tick = es_mono_us() + tick_us;
    /* every 10 s, or four times a window when it is shorter */
    int64_t prune_us =
        svc->dedup_window_ms * 250 < 10000000 ? svc->dedup_window_ms * 250 : 10000000;
    int64_t next_prune = es_mono_us() + prune_us, next_prune_log = 0;
    poll_into_t ps = {.max = max_batch};
    while (service_run) {
        int64_t cycle_us = es_mono_us();
        rd_kafka_message_t **msgs = slot_msgs[slot];
        es_raw_t *raws = slot_raws[slot];
        ps.msgs = msgs;
        ps.raws = raws;
        ps.types = slot_types[slot];
        /* wait briefly for the first record (not at all while a batch is in flight); then take
         * whatever else is already here */
        int in_flight = svc->pend.cnt > 0;
        size_t n = poll_records(svc, &ps, 0, in_flight ? 0 : 100), polled;
        int64_t first_us = es_mono_us();
        if (n > 0) {
            es_batch_decode(svc, raws, n);
        }
        if (pending_finish(svc) != 0) {
            svc->fatal = 1;
            service_run = 0;
        }
        /* what came while the last batch committed joins a small batch: it would otherwise
         * wait for this batch's commit too (a big one goes as it is, its successor already
         * decoding while it commits) */
        if (in_flight && n > 0 && n < TOP_UP_BELOW && !svc->fatal) {
            n = poll_more(svc, &ps, n, 0);
        }
        /* a full poll means a backlog (see the timers below); a batch a linger filled does not */
        int backlog = n >= max_batch;
        /* under CPU pressure a small batch waits for more, linger_us from its first record
         * (see linger_update; a background service's batches, whatever their size) */
        linger_update(svc);
        if (svc->linger_us > 0 && n > 0 && n < svc->linger_below && !svc->fatal) {
            int64_t until = first_us + svc->linger_us, now;
            svc->lingered++;
            while (n < svc->linger_below && (now = es_mono_us()) < until) {
                n = poll_more(svc, &ps, n, (int)((until - now + 999) / 1000));
            }
        }
        polled = n;
        if (n > 0 && !svc->fatal) {
            if (svc->decoded != raws) {
                es_batch_decode(svc, raws, n); /* a retry of the previous batch used the state */
            }
            if (batch_ignorable(svc)) {
                /* only records this service ignores: nothing to commit but their positions,
                 * which wait for the next batch (read again after a crash, they are ignored
                 * again). At low rates a third of the services' records came one at a time
                 * and each cost a transaction. */
                if (!svc->carry) {
                    svc->carry = 1;
                    svc->carry_since_us = es_mono_us();
                }
                svc->ignored += (int64_t)n;
            } else if (batch_send(svc, raws, msgs, n, errstr, sizeof(errstr)) == 0) {
                slot ^= 1; /* in flight: its messages stay until it committed */
                n = 0;
                svc->carry = 0; /* the carried positions are in it */
            } else {
                int64_t t0 = es_mono_us();
                if (batch_redo(svc, raws, n, errstr) != 0) {
                    svc->fatal = 1;
                    service_run = 0;
                }
                svc->carry = 0;
                batch_count(svc, n, t0);
            }
        } else if (!in_flight && polled == 0 && !svc->fatal && carry_flush(svc) != 0) {
            svc->fatal = 1; /* nothing came: the carried positions go on their own */
            service_run = 0;
        }
        batch_stats(svc);
        for (size_t i = 0; i < n; i++) {
            rd_kafka_message_destroy(msgs[i]);
        }
        /* positions the broker no longer holds: read them from the archive (or, past its end,
         * go on from the end) */
        for (size_t g = 0; g < ps.gap_cnt && !svc->fatal; g++) {
            /* the positions carried from ignored records first: stored after a rewind, they
             * would move the position past the records that take the lost offsets again */
            if (pending_finish(svc) != 0 || carry_flush(svc) != 0) {
                svc->fatal = 1;
                service_run = 0;
                break;
            }
            if (handle_gap(svc, &ps.gaps[g], max_batch, errstr, sizeof(errstr)) != 0) {
                es_log_error("stored position is no longer in the log and cannot be read from "
                             "an archive: stopping (records would be skipped)",
                             "topic=%s partition=%d error=\"%s\"", ps.gaps[g].topic,
                             (int)ps.gaps[g].partition, errstr);
                svc->fatal = 1;
                service_run = 0;
            }
        }
        ps.gap_cnt = 0;
        /* timers: once every assigned partition was read to its end, and not while a backlog
         * is read (a full poll); see tick in service.h */
        if (def->tick && !svc->fatal && svc->assignment && svc->assignment->cnt > 0 &&
            svc->unread && svc->unread->cnt == 0 && !backlog && es_mono_us() >= next_tick) {
            if (run_tick(svc) != 0) {
                svc->fatal = 1;
                service_run = 0;
            }
            next_tick = es_mono_us() + tick_us;
        }
        /* the dedup window: old marks go, a chunk at a time (at once again while chunks
         * come back full) */
        if (!svc->fatal && es_mono_us() >= next_prune) {
            int pruned = run_prune(svc);
            if (pruned < 0) {
                svc->fatal = 1;
                service_run = 0;
            }
            next_prune = es_mono_us() + (pruned == PRUNE_ROWS ? 0 : prune_us);
            if (svc->pruned > 0 && es_mono_us() >= next_prune_log) {
                es_log_info("old dedup marks deleted", "rows=%lld window_s=%lld",
                            (long long)svc->pruned, (long long)(svc->dedup_window_ms / 1000));
                svc->pruned = 0;
                next_prune_log = es_mono_us() + 60000000;
            }
        }
        if (svc->fatal) {
            break;
        }
        /* a background service reading a backlog under CPU pressure rests as long as the batch
         * took: it catches up at half its speed and leaves the rest to the sagas' services */
        if (def->background && svc->linger_us > 0 && backlog) {
            background_rest(svc, es_mono_us() - cycle_us);
        }
    }
    if (pending_finish(svc) != 0 || (!svc->fatal && carry_flush(svc) != 0)) {
        svc->fatal = 1;
    }

    /* graceful stop: the batch in hand is committed; now publish what the outbox holds */
    es_log_info("stopping", "batches=%lld records=%lld", (long long)svc->batches,
                (long long)svc->records);
    if (svc->consumer) {
        rd_kafka_consumer_close(svc->consumer);
    }
    rc = svc->fatal ? -1 : 0;
err:
    if (svc) {
        if (svc->consumer) {
            rd_kafka_destroy(svc->consumer);
        }
        /* what the outbox holds is published for up to 5 s; what is left goes at the next
         * start (a broker out of reach must not hold the stop past devstack's 10 s) */
        es_relay_stop(svc->relay, svc->fatal ? 0 : 5000);
        if (svc->unread) {
            rd_kafka_topic_partition_list_destroy(svc->unread);
        }
        if (svc->assignment) {
            rd_kafka_topic_partition_list_destroy(svc->assignment);
        }
        PQfinish(svc->pg);
        es_pg_forget_prepared();
    }
    es_service_destroy(svc);
    for (int k = 0; k < 2; k++) {
        free(slot_msgs[k]);
        free(slot_raws[k]);
        free(slot_types[k]);
    }
    return rc;
}
