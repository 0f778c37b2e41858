/*
 * restore.c: put every journaled record back into a fresh mock cluster before anyone else
 * connects, so each record gets its old offset again (the cluster is empty and nothing else
 * produces yet; records go partition by partition, in order, with an idempotent producer).
 * Afterwards every partition's high watermark must equal its journal's record count.
 */
#include "broker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kafka.h"
#include "log.h"

typedef struct restore_state {
    int64_t delivered;
    int64_t failed;
    char first_error[512];
} restore_state_t;

#define RESTORE_TURN 2000

typedef struct restore_part {
    const char *topic; /* borrowed */
    int32_t partition;
    int64_t want; /* records in the journal */
    int64_t n;    /* produced so far */
    es_journal_reader_t *r;
} restore_part_t;

static void restore_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    (void)rk;
    restore_state_t *st = opaque;
    if (rkm->err) {
        if (st->failed++ == 0) {
            snprintf(st->first_error, sizeof(st->first_error), "%s [%d]: %s",
                     rd_kafka_topic_name(rkm->rkt), (int)rkm->partition,
                     rd_kafka_err2str(rkm->err));
        }
    } else {
        st->delivered++;
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Produce one record (copied), waiting for queue room. Returns 0 or -1. */
static int produce_record(rd_kafka_t *rk, const char *topic, int32_t partition,
                          const es_journal_record_t *rec, char *errstr, size_t errstr_size)
{
    /* The RD_KAFKA_V_* macros do not parenthesise their arguments: compute them first. */
    void *key = rec->key_len < 0 ? NULL : (void *)rec->key;
    size_t key_len = rec->key_len < 0 ? 0 : (size_t)rec->key_len;
    void *value = rec->value_len < 0 ? NULL : (void *)rec->value;
    size_t value_len = rec->value_len < 0 ? 0 : (size_t)rec->value_len;
    int64_t ts = rec->timestamp > 0 ? rec->timestamp : 0;
    for (;;) {
        rd_kafka_headers_t *hdrs = NULL;
        if (rec->header_cnt > 0) {
            hdrs = rd_kafka_headers_new(rec->header_cnt);
            for (size_t i = 0; i < rec->header_cnt; i++) {
                const es_journal_header_t *h = &rec->headers[i];
                rd_kafka_header_add(hdrs, h->name, -1, h->value,
                                    h->value_len < 0 ? 0 : (size_t)h->value_len);
            }
        }
        rd_kafka_resp_err_t err =
            rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                              RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_VALUE(value, value_len),
                              RD_KAFKA_V_TIMESTAMP(ts), RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
        if (!err) {
            return 0; /* hdrs now belong to the message */
        }
        if (hdrs) {
            rd_kafka_headers_destroy(hdrs);
        }
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            snprintf(errstr, errstr_size, "could not re-produce \"%s\" [%d] offset %lld: %s", topic,
                     (int)partition, (long long)rec->offset, rd_kafka_err2str(err));
            return -1;
        }
        rd_kafka_poll(rk, 10);
    }
}

int broker_restore(broker_t *b, char *errstr, size_t errstr_size)
{
    int64_t total = 0;
    for (size_t t = 0; t < b->topic_cnt; t++) {
        for (int p = 0; p < b->topics[t].partition_cnt; p++) {
            total += es_journal_writer_next_offset(b->topics[t].parts[p].writer);
        }
    }
    if (total == 0) {
        es_log_info("nothing to restore", "topics=%zu", b->topic_cnt);
        return 0;
    }
    es_log_info("restoring the journal", "records=%lld", (long long)total);

    restore_state_t st = {0};
    es_config_t cfg = b->cfg;
    /* Large batches: restore speed is what matters, nothing else is connected yet. */
    static const char *const tuning[] = {"linger.ms=5", "batch.size=4000000",
                                         "queue.buffering.max.kbytes=1048576", NULL};
    for (size_t i = 0; tuning[i]; i++) {
        if (es_config_add_prop(&cfg, tuning[i], errstr, errstr_size) != 0) {
            return -1;
        }
    }
    rd_kafka_t *rk =
        es_kafka_producer_new(&cfg, "es-broker-restore", restore_dr_cb, &st, errstr, errstr_size);
    if (!rk) {
        return -1;
    }
    int rc = -1;
    /* One reader per non-empty partition, served in turns of RESTORE_TURN records so that
     * every produce request carries many partitions. */
    size_t nparts = 0;
    for (size_t t = 0; t < b->topic_cnt; t++) {
        nparts += (size_t)b->topics[t].partition_cnt;
    }
    restore_part_t *rp = calloc(nparts, sizeof(*rp));
    if (!rp) {
        snprintf(errstr, errstr_size, "out of memory");
        rd_kafka_destroy(rk);
        return -1;
    }
    size_t active = 0;
    for (size_t t = 0; t < b->topic_cnt; t++) {
        for (int p = 0; p < b->topics[t].partition_cnt; p++) {
            int64_t want = es_journal_writer_next_offset(b->topics[t].parts[p].writer);
            if (want == 0) {
                continue;
            }
            restore_part_t *x = &rp[active++];
            x->topic = b->topics[t].name;
            x->partition = p;
            x->want = want;
            x->r = es_journal_reader_open(b->cfg.data_dir, x->topic, p, errstr, errstr_size);
            if (!x->r) {
                goto out;
            }
        }
    }
    double start = now_s(), last_report = start;
    int64_t produced = 0;
    size_t left = active;
    while (left > 0) {
        for (size_t i = 0; i < active; i++) {
            restore_part_t *x = &rp[i];
            if (x->n >= x->want) {
                continue;
            }
            es_journal_record_t rec;
            int nrc = 1;
            for (int k = 0; k < RESTORE_TURN && x->n < x->want &&
                            (nrc = es_journal_reader_next(x->r, &rec, errstr, errstr_size)) == 1;
                 k++, produced++) {
                if (produce_record(rk, x->topic, x->partition, &rec, errstr, errstr_size) != 0) {
                    goto out;
                }
                x->n++;
            }
            if (nrc < 0) {
                goto out;
            }
            if (nrc == 0 && x->n < x->want) {
                snprintf(errstr, errstr_size,
                         "journal of \"%s\" [%d] ended at %lld records, expected %lld", x->topic,
                         (int)x->partition, (long long)x->n, (long long)x->want);
                goto out;
            }
            if (x->n >= x->want) {
                left--;
            }
            rd_kafka_poll(rk, 0);
        }
        double now = now_s();
        if (now - last_report >= 2.0) {
            es_log_info("restore progress", "records=%lld total=%lld", (long long)produced,
                        (long long)total);
            last_report = now;
        }
    }
    while (rd_kafka_outq_len(rk) > 0) {
        rd_kafka_flush(rk, 1000);
        if (st.failed > 0) {
            break;
        }
    }
    if (st.failed > 0) {
        snprintf(errstr, errstr_size, "restore failed: %lld records not accepted, first: %s",
                 (long long)st.failed, st.first_error);
        goto out;
    }
    /* Every partition must hold exactly its journal: same count means same offsets. */
    for (size_t t = 0; t < b->topic_cnt; t++) {
        broker_topic_t *topic = &b->topics[t];
        for (int p = 0; p < topic->partition_cnt; p++) {
            int64_t want = es_journal_writer_next_offset(topic->parts[p].writer);
            int64_t lo = -1, hi = -1;
            rd_kafka_resp_err_t err =
                rd_kafka_query_watermark_offsets(rk, topic->name, p, &lo, &hi, 10000);
            if (err) {
                snprintf(errstr, errstr_size,
                         "could not check the restore of \"%s\" [%d]: watermarks: %s", topic->name,
                         p, rd_kafka_err2str(err));
                goto out;
            }
            if (hi != want) {
                snprintf(errstr, errstr_size,
                         "restore of \"%s\" [%d] is wrong: the broker holds %lld records, the "
                         "journal %lld",
                         topic->name, p, (long long)hi, (long long)want);
                goto out;
            }
        }
    }
    double secs = now_s() - start;
    es_log_info("journal restored", "records=%lld seconds=%.2f rate=%.0f/s", (long long)produced,
                secs, secs > 0 ? (double)produced / secs : 0.0);
    rc = 0;
out:
    for (size_t i = 0; i < active; i++) {
        es_journal_reader_close(rp[i].r);
    }
    free(rp);
    rd_kafka_destroy(rk);
    return rc;
}
