/*
 * journaler.c: the in-process consumer that appends every record of every topic to the
 * journals. It reads each partition from its journal's next offset (assigned explicitly under
 * a private group id that never joins or commits), so the journal has no gaps: an offset jump
 * means the mock dropped records (its ~5 MiB window) before they were journaled, which is
 * logged as an error and stops journaling that partition rather than writing a hole.
 * What each batch appended is written to the files at once, so that a broker killed with -9
 * loses only what it had acknowledged and not yet consumed here (a few milliseconds; it used to
 * lose everything since the last sync, up to sync_interval_ms). Dirty journals are synced
 * (fdatasync, against an OS crash) every sync_interval_ms and on drain.
 *
 * When memjournal.c journals from the mock's memory, this consumer reads only the partitions
 * it hands over, and those of topics created after start; it still syncs every journal.
 */
#include "broker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ids.h"
#include "kafka.h"
#include "log.h"

#define BATCH_MAX 8192
#define DISCOVER_INTERVAL_MS 2000

struct broker_journaler {
    broker_t *b;
    rd_kafka_t *rk;
    rd_kafka_queue_t *rkq;
    int64_t count;
    int64_t last_sync_ms;
    int64_t last_discover_ms;
    int handovers;     /* partitions taken over from memjournal.c */
    int64_t warned_us; /* the last "journal consumer error" line */
    rd_kafka_message_t *msgs[BATCH_MAX];
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int by_consumer(broker_partition_t *part)
{
    return atomic_load_explicit(&part->owner, memory_order_acquire) == BROKER_BY_CONSUMER;
}

/* Assign the partitions this consumer journals, of topics [from, b->topic_cnt), at their
 * journals' next offsets; with `handed`, only those memjournal.c hands over (they become this
 * consumer's). */
static int assign_topics(broker_journaler_t *j, size_t from, int handed, char *errstr,
                         size_t errstr_size)
{
    broker_t *b = j->b;
    rd_kafka_topic_partition_list_t *tps = rd_kafka_topic_partition_list_new(64);
    for (size_t t = from; t < b->topic_cnt; t++) {
        for (int p = 0; p < b->topics[t].partition_cnt; p++) {
            broker_partition_t *part = &b->topics[t].parts[p];
            if (handed &&
                atomic_load_explicit(&part->owner, memory_order_acquire) == BROKER_HANDOVER) {
                atomic_store(&part->owner, BROKER_BY_CONSUMER);
                j->handovers++;
            } else if (handed || !by_consumer(part)) {
                continue;
            }
            rd_kafka_topic_partition_list_add(tps, b->topics[t].name, p)->offset =
                es_journal_writer_next_offset(part->writer);
        }
    }
    rd_kafka_error_t *error = rd_kafka_incremental_assign(j->rk, tps);
    rd_kafka_topic_partition_list_destroy(tps);
    if (error) {
        snprintf(errstr, errstr_size, "could not assign the journal consumer: %s",
                 rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
        return -1;
    }
    return 0;
}

broker_journaler_t *broker_journaler_start(broker_t *b, char *errstr, size_t errstr_size)
{
    broker_journaler_t *j = calloc(1, sizeof(*j));
    if (!j) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    j->b = b;
    es_config_t cfg = b->cfg;
    /* Keep up with far more than 100 k msg/s: the default stops prefetching at ~100 k
     * queued messages and rechecks about once a second. */
    static const char *const tuning[] = {
        "queued.min.messages=2000000",     "queued.max.messages.kbytes=1048576",
        "fetch.max.bytes=104857600",       "max.partition.fetch.bytes=8388608",
        "fetch.message.max.bytes=8388608", NULL};
    for (size_t i = 0; tuning[i]; i++) {
        if (es_config_add_prop(&cfg, tuning[i], errstr, errstr_size) != 0) {
            goto err;
        }
    }
    /* with the long poll (longpoll.c) a fetch is answered when records arrive; without it,
     * the mock holds an empty one for the whole wait */
    if (es_config_add_prop(
            &cfg, broker_longpoll_active() ? "fetch.wait.max.ms=100" : "fetch.wait.max.ms=5",
            errstr, errstr_size) != 0) {
        goto err;
    }
    /* A group id is needed for rd_kafka_assign() in librdkafka 2.0.2; this one is never
     * joined (no subscribe) and never committed to. */
    char group[64];
    snprintf(group, sizeof(group), "es-broker-journal-%d", (int)getpid());
    j->rk =
        es_kafka_consumer_new(&cfg, "es-broker-journal", group, NULL, NULL, 0, errstr, errstr_size);
    if (!j->rk) {
        goto err;
    }
    j->rkq = rd_kafka_queue_get_consumer(j->rk);
    if (assign_topics(j, 0, 0, errstr, errstr_size) != 0) {
        goto err;
    }
    j->last_sync_ms = j->last_discover_ms = now_ms();
    return j;
err:
    broker_journaler_destroy(j);
    return NULL;
}

static broker_topic_t *topic_of(broker_journaler_t *j, const rd_kafka_message_t *rkm)
{
    broker_t *b = j->b;
    for (size_t t = 0; t < b->topic_cnt; t++) {
        if (b->topics[t].rkt == rkm->rkt) {
            return &b->topics[t];
        }
    }
    const char *name = rd_kafka_topic_name(rkm->rkt);
    for (size_t t = 0; t < b->topic_cnt; t++) {
        if (!strcmp(b->topics[t].name, name)) {
            b->topics[t].rkt = rkm->rkt;
            return &b->topics[t];
        }
    }
    return NULL;
}

/* The consumer's error `rkm` on a partition it journals: the partition is journaled no more
 * (broken), said once with `why`; with `pause`, it is no longer fetched either. */
static void journal_gap(broker_journaler_t *j, broker_topic_t *t, const rd_kafka_message_t *rkm,
                        const char *why, int pause)
{
    broker_partition_t *part = &t->parts[rkm->partition];
    if (part->broken || !by_consumer(part)) {
        return;
    }
    part->broken = 1;
    char msg[256];
    snprintf(msg, sizeof(msg),
             "JOURNAL GAP: %s; this partition is no longer journaled until restart", why);
    es_log_error(msg, "topic=%s partition=%d offset=%lld journal_next_offset=%lld error=\"%s\"",
                 t->name, (int)rkm->partition, (long long)rkm->offset,
                 (long long)es_journal_writer_next_offset(part->writer),
                 rd_kafka_message_errstr(rkm));
    if (pause) {
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, t->name, rkm->partition);
        rd_kafka_pause_partitions(j->rk, l);
        rd_kafka_topic_partition_list_destroy(l);
    }
}

/* Journal one message. Returns 0, or -1 on a write error (fatal for durability). */
static int journal_message(broker_journaler_t *j, const rd_kafka_message_t *rkm)
{
    if (rkm->err) {
        if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            return 0;
        }
        const char *topic = rkm->rkt ? rd_kafka_topic_name(rkm->rkt) : "";
        broker_topic_t *t = rkm->rkt ? topic_of(j, rkm) : NULL;
        int in_range = t && rkm->partition >= 0 && rkm->partition < t->partition_cnt;
        if (in_range && (rkm->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE ||
                         rkm->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET)) {
            journal_gap(j, t, rkm, "the broker dropped records before they were journaled", 0);
            return 0;
        }
        if (in_range &&
            (rkm->err == RD_KAFKA_RESP_ERR__BAD_COMPRESSION ||
             rkm->err == RD_KAFKA_RESP_ERR__BAD_MSG || rkm->err == RD_KAFKA_RESP_ERR_INVALID_MSG ||
             rkm->err == RD_KAFKA_RESP_ERR_INVALID_RECORD)) {
            /* a batch nobody can read (a client set a compression bit on records that are not
             * compressed: the mock does not check, Kafka would have refused it); read again, it
             * fails again, a hundred times a second: the partition is paused */
            journal_gap(j, t, rkm, "a record batch that cannot be read", 1);
            return 0;
        }
        int64_t now = es_mono_us();
        if (now - j->warned_us >= 10 * 1000000LL) { /* at most a line every 10 s */
            j->warned_us = now;
            es_log_warn("journal consumer error", "topic=%s partition=%d error=\"%s\"", topic,
                        (int)rkm->partition, rd_kafka_message_errstr(rkm));
        }
        return 0;
    }
    broker_topic_t *t = topic_of(j, rkm);
    if (!t || rkm->partition < 0 || rkm->partition >= t->partition_cnt) {
        return 0;
    }
    broker_partition_t *part = &t->parts[rkm->partition];
    if (part->broken || !by_consumer(part)) {
        return 0;
    }
    int64_t next = es_journal_writer_next_offset(part->writer);
    if (rkm->offset < next) {
        return 0; /* already journaled */
    }
    if (rkm->offset > next) {
        part->broken = 1;
        es_log_error("JOURNAL GAP: the broker dropped records before they were journaled; "
                     "this partition is no longer journaled until restart",
                     "topic=%s partition=%d journal_next_offset=%lld got_offset=%lld", t->name,
                     (int)rkm->partition, (long long)next, (long long)rkm->offset);
        return 0;
    }
    es_journal_record_t rec;
    rec.offset = rkm->offset;
    rd_kafka_timestamp_type_t tstype;
    rec.timestamp = rd_kafka_message_timestamp(rkm, &tstype);
    rec.key = rkm->key;
    rec.key_len = rkm->key ? (ssize_t)rkm->key_len : -1;
    rec.value = rkm->payload;
    rec.value_len = rkm->payload ? (ssize_t)rkm->len : -1;
    rec.header_cnt = 0;
    rd_kafka_headers_t *hdrs = NULL;
    if (rd_kafka_message_headers(rkm, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR && hdrs) {
        size_t cnt = rd_kafka_header_cnt(hdrs);
        if (cnt > ES_JOURNAL_MAX_HEADERS) {
            es_log_error("record has too many headers for the journal, extra headers dropped",
                         "topic=%s partition=%d offset=%lld headers=%zu max=%d", t->name,
                         (int)rkm->partition, (long long)rkm->offset, cnt, ES_JOURNAL_MAX_HEADERS);
            cnt = ES_JOURNAL_MAX_HEADERS;
        }
        for (size_t i = 0; i < cnt; i++) {
            const char *name;
            const void *val;
            size_t size;
            if (rd_kafka_header_get_all(hdrs, i, &name, &val, &size) != 0) {
                break;
            }
            rec.headers[i].name = name;
            rec.headers[i].value = val;
            rec.headers[i].value_len = val ? (ssize_t)size : -1;
            rec.header_cnt++;
        }
    }
    if (es_journal_writer_append(part->writer, &rec) != 0) {
        es_log_error("could not append to the journal",
                     "topic=%s partition=%d offset=%lld "
                     "error=\"%s\"",
                     t->name, (int)rkm->partition, (long long)rkm->offset, strerror(errno));
        return -1;
    }
    part->dirty = 1;
    j->count++;
    return 0;
}

/* Write what the dirty journals buffered to their files; with `sync`, fdatasync them too and
 * mark them clean. memjournal.c writes its own to the files: they are only synced here. */
static int flush_dirty(broker_journaler_t *j, int sync)
{
    broker_t *b = j->b;
    int rc = 0;
    for (size_t t = 0; t < b->topic_cnt; t++) {
        for (int p = 0; p < b->topics[t].partition_cnt; p++) {
            broker_partition_t *part = &b->topics[t].parts[p];
            if (!by_consumer(part)) {
                if (sync && atomic_exchange(&part->dirty, 0) &&
                    es_journal_writer_datasync(part->writer) != 0) {
                    es_log_error("could not sync the journal", "topic=%s partition=%d error=\"%s\"",
                                 b->topics[t].name, p, strerror(errno));
                    rc = -1;
                }
                continue;
            }
            if (!part->dirty) {
                continue;
            }
            if ((sync ? es_journal_writer_sync(part->writer)
                      : es_journal_writer_flush(part->writer)) != 0) {
                es_log_error(sync ? "could not sync the journal" : "could not write the journal",
                             "topic=%s partition=%d error=\"%s\"", b->topics[t].name, p,
                             strerror(errno));
                rc = -1;
            }
            part->dirty = sync ? 0 : part->dirty;
        }
    }
    if (sync) {
        j->last_sync_ms = now_ms();
    }
    return rc;
}

/* Pick up topics created after start (auto-created by a client, for instance). */
static void discover_topics(broker_journaler_t *j)
{
    const struct rd_kafka_metadata *md = NULL;
    if (rd_kafka_metadata(j->rk, 1, NULL, &md, 2000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return;
    }
    size_t before = j->b->topic_cnt;
    for (int i = 0; i < md->topic_cnt; i++) {
        const struct rd_kafka_metadata_topic *mt = &md->topics[i];
        if (mt->err || mt->partition_cnt <= 0 || !strncmp(mt->topic, "__", 2)) {
            continue;
        }
        int known = 0;
        for (size_t t = 0; t < j->b->topic_cnt && !known; t++) {
            known = !strcmp(j->b->topics[t].name, mt->topic);
        }
        if (known) {
            continue;
        }
        char err[512];
        if (broker_topic_add(j->b, mt->topic, mt->partition_cnt, err, sizeof(err)) < 0) {
            es_log_error("could not journal a new topic", "topic=%s error=\"%s\"", mt->topic, err);
            continue;
        }
        es_log_info("journaling a new topic", "topic=%s partitions=%d", mt->topic,
                    mt->partition_cnt);
    }
    rd_kafka_metadata_destroy(md);
    if (j->b->topic_cnt > before) {
        char err[512];
        if (assign_topics(j, before, 0, err, sizeof(err)) != 0) {
            es_log_error("could not journal new topics", "error=\"%s\"", err);
        }
    }
}

/* Keep every record not yet journaled in the mock's memory: the window grows by the largest
 * lag of any partition (high watermarks as of the last fetch). */
static void window_follow(broker_journaler_t *j)
{
    broker_t *b = j->b;
    if (!b->limits) {
        return;
    }
    int64_t lag = 0;
    for (size_t t = 0; t < b->topic_cnt; t++) {
        for (int p = 0; p < b->topics[t].partition_cnt; p++) {
            int64_t lo, hi;
            if (by_consumer(&b->topics[t].parts[p]) &&
                rd_kafka_get_watermark_offsets(j->rk, b->topics[t].name, p, &lo, &hi) ==
                    RD_KAFKA_RESP_ERR_NO_ERROR &&
                hi >= 0) {
                int64_t behind = hi - es_journal_writer_next_offset(b->topics[t].parts[p].writer);
                lag = behind > lag ? behind : lag;
            }
        }
    }
    broker_window_apply(b, lag);
}

int broker_journaler_run_once(broker_journaler_t *j, int timeout_ms)
{
    int rc = 0;
    if (broker_memjournal_handovers() > j->handovers) {
        char err[512];
        if (assign_topics(j, 0, 1, err, sizeof(err)) != 0) {
            es_log_error("could not take over a partition's journal", "error=\"%s\"", err);
            rc = -1;
        }
    }
    /* wait for the first record only: a batch call waits out its whole timeout unless the
     * batch fills, and each record would reach the file up to timeout_ms late */
    ssize_t n = 0;
    rd_kafka_message_t *first = rd_kafka_consume_queue(j->rkq, timeout_ms);
    if (first) {
        j->msgs[0] = first;
        ssize_t more = rd_kafka_consume_batch_queue(j->rkq, 0, j->msgs + 1, BATCH_MAX - 1);
        n = 1 + (more > 0 ? more : 0);
    }
    for (ssize_t i = 0; i < n; i++) {
        if (rc == 0 && journal_message(j, j->msgs[i]) != 0) {
            rc = -1;
        }
        rd_kafka_message_destroy(j->msgs[i]);
    }
    window_follow(j);
    int64_t now = now_ms();
    if (flush_dirty(j, now - j->last_sync_ms >= j->b->sync_interval_ms) != 0) {
        rc = -1;
    }
    /* a broker down or slowed on request would hold the metadata call, and the main loop
     * (which ends the fault) with it */
    if (now - j->last_discover_ms >= DISCOVER_INTERVAL_MS && !broker_chaos_slowed()) {
        discover_topics(j);
        j->last_discover_ms = now_ms();
    }
    return rc;
}

int broker_journaler_drain(broker_journaler_t *j, int timeout_ms)
{
    broker_t *b = j->b;
    size_t total = 0;
    for (size_t t = 0; t < b->topic_cnt; t++) {
        total += (size_t)b->topics[t].partition_cnt;
    }
    int64_t *hwm = calloc(total ? total : 1, sizeof(*hwm));
    if (!hwm) {
        return -1;
    }
    int rc = 0;
    size_t k = 0;
    for (size_t t = 0; t < b->topic_cnt; t++) {
        for (int p = 0; p < b->topics[t].partition_cnt; p++, k++) {
            int64_t lo, hi;
            rd_kafka_resp_err_t err =
                rd_kafka_query_watermark_offsets(j->rk, b->topics[t].name, p, &lo, &hi, 5000);
            if (err) {
                es_log_error("could not read a high watermark to drain the journal",
                             "topic=%s partition=%d error=\"%s\"", b->topics[t].name, p,
                             rd_kafka_err2str(err));
                rc = -1;
                hi = -1;
            }
            hwm[k] = hi;
        }
    }
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        int behind = 0;
        k = 0;
        for (size_t t = 0; t < b->topic_cnt; t++) {
            for (int p = 0; p < b->topics[t].partition_cnt; p++, k++) {
                broker_partition_t *part = &b->topics[t].parts[p];
                if (!part->broken && es_journal_writer_next_offset(part->writer) < hwm[k]) {
                    behind++;
                }
            }
        }
        if (!behind) {
            break;
        }
        if (now_ms() >= deadline) {
            es_log_error("gave up draining the journal: some acknowledged records are not "
                         "journaled",
                         "partitions_behind=%d", behind);
            rc = -1;
            break;
        }
        if (broker_journaler_run_once(j, 100) != 0) {
            rc = -1;
            break;
        }
    }
    free(hwm);
    if (flush_dirty(j, 1) != 0) {
        rc = -1;
    }
    for (size_t t = 0; t < b->topic_cnt; t++) {
        for (int p = 0; p < b->topics[t].partition_cnt; p++) {
            if (b->topics[t].parts[p].broken) {
                rc = -1;
            }
        }
    }
    return rc;
}

int64_t broker_journaler_count(const broker_journaler_t *j)
{
    return j->count + broker_memjournal_count();
}

void broker_journaler_destroy(broker_journaler_t *j)
{
    if (!j) {
        return;
    }
    if (j->rkq) {
        rd_kafka_queue_destroy(j->rkq);
    }
    if (j->rk) {
        rd_kafka_consumer_close(j->rk);
        rd_kafka_destroy(j->rk);
    }
    free(j);
}
