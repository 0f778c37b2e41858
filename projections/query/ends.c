/*
 * ends.c: the partitions' ends, read from Kafka by a thread of its own (see ends.h).
 */
#include "ends.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "ids.h"
#include "kafka.h"
#include "log.h"

#define ENDS_TIMEOUT_MS 2000 /* for the metadata and for each partition's watermarks */

/* One reading: every partition of every topic but Kafka's own. */
typedef struct snapshot {
    char **topic; /* per partition, owned (a topic's partitions share nothing) */
    int32_t *partition;
    int64_t *high;
    size_t cnt;
    int64_t read_us; /* es_mono_us() when it was read; 0: never */
} snapshot_t;

struct es_query_ends {
    rd_kafka_t *rk;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int stopping;
    int64_t wanted_us; /* when /metrics last asked */
    int64_t tried_us;  /* when the last reading started, good or not */
    snapshot_t last;   /* the last good reading */
    int failing;       /* the last reading failed (said once, until one works again) */
};

static void snapshot_free(snapshot_t *s)
{
    for (size_t i = 0; i < s->cnt; i++) {
        free(s->topic[i]);
    }
    free(s->topic);
    free(s->partition);
    free(s->high);
    memset(s, 0, sizeof(*s));
}

static int stopping(es_query_ends_t *e)
{
    pthread_mutex_lock(&e->lock);
    int stop = e->stopping;
    pthread_mutex_unlock(&e->lock);
    return stop;
}

/* Read every partition's end into `s` (empty on entry), giving up between two topics when
 * the thread is asked to stop. Returns 0, or -1 with errstr. */
static int snapshot_read(es_query_ends_t *e, snapshot_t *s, char *errstr, size_t errstr_size)
{
    rd_kafka_t *rk = e->rk;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, NULL, &md, ENDS_TIMEOUT_MS);
    if (err) {
        snprintf(errstr, errstr_size, "metadata: %s", rd_kafka_err2str(err));
        return -1;
    }
    size_t total = 0;
    for (int t = 0; t < md->topic_cnt; t++) {
        total += (size_t)md->topics[t].partition_cnt;
    }
    s->topic = calloc(total + 1, sizeof(*s->topic));
    s->partition = calloc(total + 1, sizeof(*s->partition));
    s->high = calloc(total + 1, sizeof(*s->high));
    int rc = s->topic && s->partition && s->high ? 0 : -1;
    if (rc != 0) {
        snprintf(errstr, errstr_size, "out of memory");
    }
    for (int t = 0; t < md->topic_cnt && rc == 0; t++) {
        const struct rd_kafka_metadata_topic *mt = &md->topics[t];
        if (stopping(e)) {
            snprintf(errstr, errstr_size, "stopping");
            rc = -1;
            break;
        }
        if (mt->err || strncmp(mt->topic, "__", 2) == 0) {
            continue;
        }
        for (int p = 0; p < mt->partition_cnt && rc == 0; p++) {
            int64_t lo = 0, hi = 0;
            int32_t id = mt->partitions[p].id;
            err = rd_kafka_query_watermark_offsets(rk, mt->topic, id, &lo, &hi, ENDS_TIMEOUT_MS);
            if (err) {
                snprintf(errstr, errstr_size, "watermarks of %s [%d]: %s", mt->topic, (int)id,
                         rd_kafka_err2str(err));
                rc = -1;
            } else if (!(s->topic[s->cnt] = strdup(mt->topic))) {
                snprintf(errstr, errstr_size, "out of memory");
                rc = -1;
            } else {
                s->partition[s->cnt] = id;
                s->high[s->cnt++] = hi;
            }
        }
    }
    rd_kafka_metadata_destroy(md);
    s->read_us = es_mono_us();
    return rc;
}

static void *ends_main(void *arg)
{
    es_query_ends_t *e = arg;
    pthread_mutex_lock(&e->lock);
    while (!e->stopping) {
        int64_t now = es_mono_us();
        int wanted = e->wanted_us > 0 && now - e->wanted_us < ES_QUERY_ENDS_WANTED_MS * 1000LL;
        int64_t due = e->tried_us + ES_QUERY_ENDS_EVERY_MS * 1000LL;
        if (!wanted) { /* until /metrics asks, or the stop */
            pthread_cond_wait(&e->cond, &e->lock);
            continue;
        }
        if (e->tried_us > 0 && now < due) { /* until due, or the stop */
            int64_t wait_us = due - now;
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            int64_t ns = (int64_t)ts.tv_nsec + wait_us * 1000;
            ts.tv_sec += (time_t)(ns / 1000000000LL);
            ts.tv_nsec = (long)(ns % 1000000000LL);
            pthread_cond_timedwait(&e->cond, &e->lock, &ts);
            continue;
        }
        e->tried_us = now;
        pthread_mutex_unlock(&e->lock);
        snapshot_t s;
        memset(&s, 0, sizeof(s));
        char errstr[512];
        int rc = snapshot_read(e, &s, errstr, sizeof(errstr));
        pthread_mutex_lock(&e->lock);
        if (rc == 0) {
            snapshot_free(&e->last);
            e->last = s;
            if (e->failing) {
                es_log_info("reading the log's ends again", "partitions=%zu", s.cnt);
                e->failing = 0;
            }
        } else {
            /* keep the last good reading (its age shows); try again after the same pause */
            snapshot_free(&s);
            if (!e->failing && !e->stopping) {
                es_log_warn("could not read the log's ends from Kafka: lags are measured "
                            "against the last read and those the consumers stored",
                            "error=\"%s\"", errstr);
                e->failing = 1;
            }
        }
    }
    pthread_mutex_unlock(&e->lock);
    return NULL;
}

es_query_ends_t *es_query_ends_start(es_config_t *cfg, char *errstr, size_t errstr_size)
{
    es_query_ends_t *e = calloc(1, sizeof(*e));
    if (!e) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    e->rk = es_kafka_consumer_new(cfg, "es-query-ends", NULL, NULL, NULL, 0, errstr, errstr_size);
    if (!e->rk) {
        free(e);
        return NULL;
    }
    pthread_mutex_init(&e->lock, NULL);
    pthread_cond_init(&e->cond, NULL);
    if (pthread_create(&e->thread, NULL, ends_main, e) != 0) {
        snprintf(errstr, errstr_size, "could not start a thread");
        pthread_cond_destroy(&e->cond);
        pthread_mutex_destroy(&e->lock);
        rd_kafka_destroy(e->rk);
        free(e);
        return NULL;
    }
    return e;
}

void es_query_ends_want(es_query_ends_t *e)
{
    if (!e) {
        return;
    }
    pthread_mutex_lock(&e->lock);
    e->wanted_us = es_mono_us();
    pthread_cond_signal(&e->cond);
    pthread_mutex_unlock(&e->lock);
}

int64_t es_query_ends_literals(es_query_ends_t *e, es_buf_t *topics, es_buf_t *parts,
                               es_buf_t *highs)
{
    es_buf_reset(topics);
    es_buf_reset(parts);
    es_buf_reset(highs);
    int rc = es_buf_puts(topics, "{") | es_buf_puts(parts, "{") | es_buf_puts(highs, "{");
    int64_t age_ms = -1;
    if (e) {
        pthread_mutex_lock(&e->lock);
        const snapshot_t *s = &e->last;
        for (size_t i = 0; i < s->cnt && rc == 0; i++) {
            /* Kafka topic names are [a-zA-Z0-9._-]: quoted, nothing to escape */
            rc = es_buf_printf(topics, "%s\"%s\"", i ? "," : "", s->topic[i]) |
                 es_buf_printf(parts, "%s%d", i ? "," : "", (int)s->partition[i]) |
                 es_buf_printf(highs, "%s%lld", i ? "," : "", (long long)s->high[i]);
        }
        if (s->cnt > 0) {
            age_ms = (es_mono_us() - s->read_us) / 1000;
        }
        pthread_mutex_unlock(&e->lock);
    }
    rc |=
        es_buf_append(topics, "}", 2) | es_buf_append(parts, "}", 2) | es_buf_append(highs, "}", 2);
    return rc != 0 ? -2 : age_ms;
}

void es_query_ends_stop(es_query_ends_t *e)
{
    if (!e) {
        return;
    }
    pthread_mutex_lock(&e->lock);
    e->stopping = 1;
    pthread_cond_signal(&e->cond);
    pthread_mutex_unlock(&e->lock);
    pthread_join(e->thread, NULL);
    snapshot_free(&e->last);
    pthread_cond_destroy(&e->cond);
    pthread_mutex_destroy(&e->lock);
    rd_kafka_destroy(e->rk);
    free(e);
}
