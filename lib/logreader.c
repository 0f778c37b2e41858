/*
 * logreader.c: complete, ordered history per partition: journal first, then the broker
 * (see logreader.h).
 *
 * Each partition goes through phases: JOURNAL (read the dev broker's journal file from the
 * next offset, in large buffered chunks), then BROKER (the partition is added to a consumer
 * assignment at the next offset), then DONE (non-follow: the high watermark captured at open
 * is reached). librdkafka 2.0.2 refuses rd_kafka_assign() without a group.id, so the consumer
 * carries a private, unique group id that is never joined (no subscribe) nor committed to.
 * If the broker no longer has the next offset, the journal is tried again (it may have caught
 * up); if it does not have it either, reading fails naming the missing range.
 */
#include "logreader.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kafka.h"

#define LR_BATCH 4096
#define LR_BURST 1024             /* records served from one partition's journal in a row */
#define LR_STALL_TIMEOUT_MS 30000 /* non-follow: longest wait for a record the broker has */

typedef enum { PH_NONE = 0, PH_JOURNAL, PH_BROKER, PH_DONE } lr_phase_t;

typedef struct lr_part {
    size_t topic_idx;
    int32_t partition;
    int64_t start;   /* first offset to deliver */
    int64_t end;     /* high watermark at open (non-follow stops there) */
    int64_t next;    /* next offset to deliver */
    int64_t skip_ts; /* > 0: skip records older than this until the first newer one */
    es_journal_reader_t *jr;
    lr_phase_t phase;
    int fell_back; /* back in the journal because the broker no longer had `next` */
} lr_part_t;

typedef struct lr_topic {
    char *name;
    const rd_kafka_topic_t *rkt; /* cache for message lookups */
    size_t part_base;
    int part_cnt;
} lr_topic_t;

struct es_logreader {
    es_config_t *cfg;
    rd_kafka_t *rk;
    rd_kafka_queue_t *rkq;
    lr_topic_t *topics;
    size_t topic_cnt;
    lr_part_t *parts;
    size_t part_cnt;
    size_t done_cnt;
    size_t journal_cnt; /* partitions in PH_JOURNAL */
    int follow;
    int64_t total;
    size_t cur; /* journal round robin */
    int burst;
    rd_kafka_message_t *batch[LR_BATCH];
    size_t batch_len, batch_pos;
    rd_kafka_message_t *lent; /* the message the caller's record points into */
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *part_topic(const es_logreader_t *lr, const lr_part_t *p)
{
    return lr->topics[p->topic_idx].name;
}

static void set_phase(es_logreader_t *lr, lr_part_t *p, lr_phase_t phase)
{
    lr->journal_cnt -= p->phase == PH_JOURNAL;
    lr->journal_cnt += phase == PH_JOURNAL;
    lr->done_cnt -= p->phase == PH_DONE;
    lr->done_cnt += phase == PH_DONE;
    p->phase = phase;
}

static int change_assignment(es_logreader_t *lr, lr_part_t *p, int add, char *errstr,
                             size_t errstr_size)
{
    rd_kafka_topic_partition_list_t *tps = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(tps, part_topic(lr, p), p->partition)->offset = p->next;
    rd_kafka_error_t *error =
        add ? rd_kafka_incremental_assign(lr->rk, tps) : rd_kafka_incremental_unassign(lr->rk, tps);
    rd_kafka_topic_partition_list_destroy(tps);
    if (error) {
        snprintf(errstr, errstr_size, "could not %s \"%s\" [%d] at offset %lld: %s",
                 add ? "start reading" : "stop reading", part_topic(lr, p), (int)p->partition,
                 (long long)p->next, rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
        return -1;
    }
    return 0;
}

static void mark_done(es_logreader_t *lr, lr_part_t *p)
{
    if (p->phase == PH_BROKER) {
        char err[256];
        change_assignment(lr, p, 0, err, sizeof(err)); /* only stops prefetching */
    }
    set_phase(lr, p, PH_DONE);
}

/* The journal has nothing more for `p` (yet): continue from the broker. */
static int switch_to_broker(es_logreader_t *lr, lr_part_t *p, char *errstr, size_t errstr_size)
{
    int64_t lo = -1, hi = -1;
    rd_kafka_resp_err_t err =
        rd_kafka_query_watermark_offsets(lr->rk, part_topic(lr, p), p->partition, &lo, &hi, 10000);
    if (err) {
        snprintf(errstr, errstr_size, "could not read the watermarks of \"%s\" [%d]: %s",
                 part_topic(lr, p), (int)p->partition, rd_kafka_err2str(err));
        return -1;
    }
    if (p->next < lo) {
        snprintf(errstr, errstr_size,
                 "records %lld..%lld of \"%s\" [%d] are neither in the journal nor in the broker "
                 "(the broker keeps offsets %lld..%lld%s)",
                 (long long)p->next, (long long)lo - 1, part_topic(lr, p), (int)p->partition,
                 (long long)lo, (long long)hi - 1,
                 p->jr ? ", the journal ends before" : ", there is no journal");
        return -1;
    }
    if (change_assignment(lr, p, 1, errstr, errstr_size) != 0) {
        return -1;
    }
    set_phase(lr, p, PH_BROKER);
    p->fell_back = 0;
    return 0;
}

/* Is this record to be delivered? Applies the end and time rules; advances p->next. */
static int accept_record(es_logreader_t *lr, lr_part_t *p, int64_t timestamp)
{
    p->next++;
    if (p->skip_ts > 0) {
        if (timestamp < p->skip_ts) {
            if (!lr->follow && p->next >= p->end) {
                mark_done(lr, p);
            }
            return 0;
        }
        p->skip_ts = 0;
    }
    return 1;
}

/* Scan a journal for the first record with timestamp >= t. Returns its offset, or the
 * journal's record count when there is none (with *found = 0), or -1 on error. */
static int64_t journal_find_time(es_journal_reader_t *jr, int64_t t, int *found, char *errstr,
                                 size_t errstr_size)
{
    es_journal_record_t rec;
    int64_t next = 0;
    int rc;
    *found = 0;
    while ((rc = es_journal_reader_next(jr, &rec, errstr, errstr_size)) == 1) {
        if (rec.timestamp >= t) {
            *found = 1;
            return rec.offset;
        }
        next = rec.offset + 1;
    }
    return rc < 0 ? -1 : next;
}

es_logreader_t *es_logreader_new(es_config_t *cfg, const char *const *topics, size_t topic_cnt,
                                 int64_t from_offset, int64_t from_time_ms, int follow,
                                 char *errstr, size_t errstr_size)
{
    static atomic_int instance;
    es_logreader_t *lr = calloc(1, sizeof(*lr));
    if (!lr) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    lr->cfg = cfg;
    lr->follow = follow;
    lr->topics = calloc(topic_cnt ? topic_cnt : 1, sizeof(*lr->topics));
    if (!lr->topics) {
        snprintf(errstr, errstr_size, "out of memory");
        goto err;
    }

    /* Fast prefetch first, then the operator's properties (which may override it). */
    es_config_t ccfg = *cfg;
    ccfg.prop_cnt = 0;
    static const char *const tuning[] = {
        "queued.min.messages=1000000", "queued.max.messages.kbytes=524288",
        "fetch.max.bytes=104857600", "max.partition.fetch.bytes=8388608", NULL};
    for (size_t i = 0; tuning[i]; i++) {
        if (es_config_add_prop(&ccfg, tuning[i], errstr, errstr_size) != 0) {
            goto err;
        }
    }
    for (size_t i = 0; i < cfg->prop_cnt; i++) {
        char kv[1024];
        snprintf(kv, sizeof(kv), "%s=%s", cfg->prop_names[i], cfg->prop_values[i]);
        if (es_config_add_prop(&ccfg, kv, errstr, errstr_size) != 0) {
            goto err;
        }
    }
    char group[128];
    snprintf(group, sizeof(group), "es-logreader-%d-%d", (int)getpid(),
             atomic_fetch_add(&instance, 1));
    lr->rk =
        es_kafka_consumer_new(&ccfg, "es-logreader", group, NULL, NULL, 0, errstr, errstr_size);
    if (!lr->rk) {
        goto err;
    }
    /* Remember the resolved brokers for the caller's config too. */
    if (!cfg->brokers[0]) {
        snprintf(cfg->brokers, sizeof(cfg->brokers), "%s", ccfg.brokers);
    }
    lr->rkq = rd_kafka_queue_get_consumer(lr->rk);

    for (size_t t = 0; t < topic_cnt; t++) {
        int cnt = es_kafka_partition_count(lr->rk, topics[t], 10000, errstr, errstr_size);
        if (cnt < 0) {
            goto err;
        }
        lr->topics[t].name = strdup(topics[t]);
        if (!lr->topics[t].name) {
            snprintf(errstr, errstr_size, "out of memory");
            goto err;
        }
        lr->topics[t].part_base = lr->part_cnt;
        lr->topics[t].part_cnt = cnt;
        lr->topic_cnt++;
        lr_part_t *np = realloc(lr->parts, (lr->part_cnt + (size_t)cnt) * sizeof(*np));
        if (!np) {
            snprintf(errstr, errstr_size, "out of memory");
            goto err;
        }
        lr->parts = np;
        memset(lr->parts + lr->part_cnt, 0, (size_t)cnt * sizeof(*np));
        for (int p = 0; p < cnt; p++) {
            lr->parts[lr->part_cnt + (size_t)p].topic_idx = t;
            lr->parts[lr->part_cnt + (size_t)p].partition = p;
        }
        lr->part_cnt += (size_t)cnt;
    }

    /* Without a journal, a time start comes from the broker (real Kafka answers; the dev
     * broker does not, and then records are skipped until the first recent enough one). */
    rd_kafka_topic_partition_list_t *times = NULL;
    for (size_t i = 0; i < lr->part_cnt; i++) {
        lr_part_t *p = &lr->parts[i];
        const char *topic = part_topic(lr, p);
        int64_t lo = -1, hi = -1;
        rd_kafka_resp_err_t err =
            rd_kafka_query_watermark_offsets(lr->rk, topic, p->partition, &lo, &hi, 10000);
        if (err) {
            snprintf(errstr, errstr_size, "could not read the watermarks of \"%s\" [%d]: %s", topic,
                     (int)p->partition, rd_kafka_err2str(err));
            goto err;
        }
        p->end = hi;
        char jerr[512];
        p->jr = es_journal_reader_open(cfg->data_dir, topic, p->partition, jerr, sizeof(jerr));
        if (!p->jr && errno != ENOENT) {
            snprintf(errstr, errstr_size, "%s", jerr);
            goto err;
        }
        if (from_time_ms > 0) {
            if (p->jr) {
                int found;
                int64_t off = journal_find_time(p->jr, from_time_ms, &found, errstr, errstr_size);
                if (off < 0) {
                    goto err;
                }
                p->start = off;
                if (!found) {
                    p->skip_ts = from_time_ms;
                }
            } else {
                if (!times) {
                    times = rd_kafka_topic_partition_list_new((int)lr->part_cnt);
                }
                rd_kafka_topic_partition_list_add(times, topic, p->partition)->offset =
                    from_time_ms;
                p->start = lo;
            }
        } else {
            p->start = from_offset > 0 ? from_offset : 0;
        }
    }
    if (times) {
        rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(lr->rk, times, 10000);
        if (err) {
            rd_kafka_topic_partition_list_destroy(times);
            snprintf(errstr, errstr_size, "could not look offsets up by time: %s",
                     rd_kafka_err2str(err));
            goto err;
        }
        for (int i = 0; i < times->cnt; i++) {
            rd_kafka_topic_partition_t *tp = &times->elems[i];
            for (size_t k = 0; k < lr->part_cnt; k++) {
                lr_part_t *p = &lr->parts[k];
                if (p->partition == tp->partition && !strcmp(part_topic(lr, p), tp->topic)) {
                    if (!tp->err && tp->offset >= 0) {
                        p->start = tp->offset;
                    } else {
                        p->skip_ts = from_time_ms;
                    }
                }
            }
        }
        rd_kafka_topic_partition_list_destroy(times);
    }

    for (size_t i = 0; i < lr->part_cnt; i++) {
        lr_part_t *p = &lr->parts[i];
        if (p->start > p->end && !follow) {
            p->start = p->end;
        }
        p->next = p->start;
        lr->total += p->end > p->start ? p->end - p->start : 0;
        if (!follow && p->next >= p->end) {
            set_phase(lr, p, PH_DONE);
        } else if (p->jr) {
            es_journal_reader_seek(p->jr, p->next);
            set_phase(lr, p, PH_JOURNAL);
        } else if (switch_to_broker(lr, p, errstr, errstr_size) != 0) {
            goto err;
        }
    }
    return lr;
err:
    es_logreader_destroy(lr);
    return NULL;
}

int64_t es_logreader_total(const es_logreader_t *lr)
{
    return lr->total;
}

/* Serve from the journals. Returns 1 with *msg, 0 when no journal has anything now, -1. */
static int next_from_journals(es_logreader_t *lr, es_logreader_msg_t *msg, char *errstr,
                              size_t errstr_size)
{
    if (lr->journal_cnt == 0) {
        return 0;
    }
    for (size_t tried = 0; tried < lr->part_cnt; tried++) {
        lr_part_t *p = &lr->parts[lr->cur];
        if (p->phase == PH_JOURNAL && lr->burst < LR_BURST) {
            int rc;
            while ((rc = es_journal_reader_next(p->jr, &msg->rec, errstr, errstr_size)) == 1) {
                if (msg->rec.offset != p->next) {
                    snprintf(errstr, errstr_size,
                             "journal of \"%s\" [%d] gave offset %lld where %lld was expected",
                             part_topic(lr, p), (int)p->partition, (long long)msg->rec.offset,
                             (long long)p->next);
                    return -1;
                }
                if (!lr->follow && p->next >= p->end) {
                    mark_done(lr, p);
                    break;
                }
                p->fell_back = 0;
                if (accept_record(lr, p, msg->rec.timestamp)) {
                    msg->topic = part_topic(lr, p);
                    msg->partition = p->partition;
                    lr->burst++;
                    return 1;
                }
                if (p->phase == PH_DONE) {
                    break;
                }
            }
            if (rc < 0) {
                return -1;
            }
            if (rc == 0 && p->phase == PH_JOURNAL) {
                if (!lr->follow && p->next >= p->end) {
                    mark_done(lr, p);
                } else if (p->fell_back) {
                    snprintf(errstr, errstr_size,
                             "offset %lld of \"%s\" [%d] is neither in the journal nor in the "
                             "broker any more",
                             (long long)p->next, part_topic(lr, p), (int)p->partition);
                    return -1;
                } else if (switch_to_broker(lr, p, errstr, errstr_size) != 0) {
                    return -1;
                }
            }
        }
        lr->cur = (lr->cur + 1) % lr->part_cnt;
        lr->burst = 0;
    }
    return 0;
}

static lr_part_t *part_of(es_logreader_t *lr, const rd_kafka_message_t *rkm)
{
    if (!rkm->rkt) {
        return NULL;
    }
    for (int pass = 0; pass < 2; pass++) {
        const char *name = pass ? rd_kafka_topic_name(rkm->rkt) : NULL;
        for (size_t t = 0; t < lr->topic_cnt; t++) {
            lr_topic_t *tp = &lr->topics[t];
            if (pass ? !strcmp(tp->name, name) : tp->rkt == rkm->rkt) {
                tp->rkt = rkm->rkt;
                if (rkm->partition < 0 || rkm->partition >= tp->part_cnt) {
                    return NULL;
                }
                return &lr->parts[tp->part_base + (size_t)rkm->partition];
            }
        }
    }
    return NULL;
}

/* The broker no longer has p->next: go back to the journal if there is one. */
static int fall_back(es_logreader_t *lr, lr_part_t *p, const char *why, char *errstr,
                     size_t errstr_size)
{
    char err[256];
    change_assignment(lr, p, 0, err, sizeof(err));
    if (!p->jr) {
        snprintf(errstr, errstr_size,
                 "could not read \"%s\" [%d] at offset %lld: %s, and there is no journal",
                 part_topic(lr, p), (int)p->partition, (long long)p->next, why);
        return -1;
    }
    es_journal_reader_seek(p->jr, p->next);
    set_phase(lr, p, PH_JOURNAL);
    p->fell_back = 1;
    return 0;
}

/* Handle one broker message. Returns 1 when it is delivered (lent), 0 when dropped, -1. */
static int take_message(es_logreader_t *lr, rd_kafka_message_t *rkm, es_logreader_msg_t *msg,
                        char *errstr, size_t errstr_size)
{
    lr_part_t *p = part_of(lr, rkm);
    if (rkm->err) {
        if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            return 0;
        }
        if (p && p->phase == PH_BROKER &&
            (rkm->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE ||
             rkm->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET)) {
            return fall_back(lr, p, rd_kafka_message_errstr(rkm), errstr, errstr_size);
        }
        if (rkm->err == RD_KAFKA_RESP_ERR__TRANSPORT ||
            rkm->err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
            return 0; /* retried by librdkafka */
        }
        snprintf(errstr, errstr_size, "could not read %s%s%s: %s", rkm->rkt ? "\"" : "the broker",
                 rkm->rkt ? rd_kafka_topic_name(rkm->rkt) : "", rkm->rkt ? "\"" : "",
                 rd_kafka_message_errstr(rkm));
        return -1;
    }
    if (!p || p->phase != PH_BROKER || rkm->offset < p->next) {
        return 0; /* not ours any more, or already delivered */
    }
    if (rkm->offset > p->next) {
        char why[128];
        snprintf(why, sizeof(why), "the broker skipped to offset %lld", (long long)rkm->offset);
        return fall_back(lr, p, why, errstr, errstr_size) < 0 ? -1 : 0;
    }
    if (!lr->follow && p->next >= p->end) {
        mark_done(lr, p);
        return 0;
    }
    rd_kafka_timestamp_type_t tstype;
    int64_t ts = rd_kafka_message_timestamp(rkm, &tstype);
    if (!accept_record(lr, p, ts)) {
        return 0;
    }
    es_journal_record_t *rec = &msg->rec;
    rec->offset = rkm->offset;
    rec->timestamp = ts;
    rec->key = rkm->key;
    rec->key_len = rkm->key ? (ssize_t)rkm->key_len : -1;
    rec->value = rkm->payload;
    rec->value_len = rkm->payload ? (ssize_t)rkm->len : -1;
    rec->header_cnt = 0;
    rd_kafka_headers_t *hdrs = NULL;
    if (rd_kafka_message_headers(rkm, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR && hdrs) {
        size_t cnt = rd_kafka_header_cnt(hdrs);
        for (size_t i = 0; i < cnt && i < ES_JOURNAL_MAX_HEADERS; i++) {
            const char *name;
            const void *val;
            size_t size;
            if (rd_kafka_header_get_all(hdrs, i, &name, &val, &size) != 0) {
                break;
            }
            rec->headers[i].name = name;
            rec->headers[i].value = val;
            rec->headers[i].value_len = val ? (ssize_t)size : -1;
            rec->header_cnt++;
        }
    }
    msg->topic = part_topic(lr, p);
    msg->partition = p->partition;
    if (!lr->follow && p->next >= p->end) {
        mark_done(lr, p);
    }
    return 1;
}

int es_logreader_next(es_logreader_t *lr, es_logreader_msg_t *msg, int timeout_ms, char *errstr,
                      size_t errstr_size)
{
    if (lr->lent) {
        rd_kafka_message_destroy(lr->lent);
        lr->lent = NULL;
    }
    int64_t deadline = now_ms() + (lr->follow ? timeout_ms : LR_STALL_TIMEOUT_MS);
    for (;;) {
        if (!lr->follow && lr->done_cnt == lr->part_cnt) {
            return 0;
        }
        int rc = next_from_journals(lr, msg, errstr, errstr_size);
        if (rc != 0) {
            return rc;
        }
        while (lr->batch_pos < lr->batch_len) {
            rd_kafka_message_t *rkm = lr->batch[lr->batch_pos++];
            rc = take_message(lr, rkm, msg, errstr, errstr_size);
            if (rc == 1) {
                lr->lent = rkm;
                return 1;
            }
            rd_kafka_message_destroy(rkm);
            if (rc < 0) {
                return -1;
            }
        }
        if (!lr->follow && lr->done_cnt == lr->part_cnt) {
            return 0;
        }
        int journal_active = lr->journal_cnt > 0;
        int64_t left = deadline - now_ms();
        int wait = journal_active || left <= 0 ? 0 : (int)(left < 100 ? left : 100);
        lr->batch_pos = 0;
        ssize_t n = rd_kafka_consume_batch_queue(lr->rkq, wait, lr->batch, LR_BATCH);
        lr->batch_len = n > 0 ? (size_t)n : 0;
        if (lr->batch_len == 0 && !journal_active && now_ms() >= deadline) {
            if (lr->follow) {
                return 0;
            }
            snprintf(errstr, errstr_size,
                     "no record from the broker for %d s although the log is not at its end",
                     LR_STALL_TIMEOUT_MS / 1000);
            return -1;
        }
    }
}

void es_logreader_destroy(es_logreader_t *lr)
{
    if (!lr) {
        return;
    }
    if (lr->lent) {
        rd_kafka_message_destroy(lr->lent);
    }
    while (lr->batch_pos < lr->batch_len) {
        rd_kafka_message_destroy(lr->batch[lr->batch_pos++]);
    }
    for (size_t i = 0; i < lr->part_cnt; i++) {
        es_journal_reader_close(lr->parts[i].jr);
    }
    free(lr->parts);
    if (lr->rkq) {
        rd_kafka_queue_destroy(lr->rkq);
    }
    if (lr->rk) {
        rd_kafka_consumer_close(lr->rk);
        rd_kafka_destroy(lr->rk);
    }
    for (size_t t = 0; t < lr->topic_cnt; t++) {
        free(lr->topics[t].name);
    }
    free(lr->topics);
    free(lr);
}
