/*
 * replay.c: `esctl replay`: print the history of topics as JSON lines, read from the journal
 * and then the broker through lib/logreader (never joining a consumer group).
 *
 * Speed: filters by aggregate, correlation and type look at the Kafka headers before anything
 * is decoded. Decoding (Avro envelope + payload) and formatting are done by worker threads,
 * each with its own codec, on batches of records copied out of the reader; the main thread
 * reads, filters and writes the finished batches in reading order, in large write()s.
 * A record that cannot be decoded is printed with its reason, never aborting the replay.
 */
#include "esctl.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "devgate.h"
#include "envelope.h"
#include "ids.h"
#include "logreader.h"

#define RP_MAX_TOPICS 256
#define RP_BATCH_RECS 2048
#define RP_BATCH_BYTES (1u << 20)
#define RP_WRITE_CHUNK (1u << 20)
#define RP_MAX_THREADS 16

/* DLQ headers carried to the formatter. */
enum { DLQ_REASON, DLQ_TOPIC, DLQ_PARTITION, DLQ_OFFSET, DLQ_CNT };
static const char *const dlq_headers[DLQ_CNT] = {"es-dlq-reason", "es-dlq-topic",
                                                 "es-dlq-partition", "es-dlq-offset"};

typedef struct rp_opts {
    const char *topics[RP_MAX_TOPICS];
    size_t topic_cnt;
    const char *aggregate, *correlation, *type;
    int64_t from_offset, from_ms;
    int64_t until_offset; /* -1: none */
    int64_t until_ms;     /* -1: none */
    int follow, raw, stats, threads;
} rp_opts_t;

/* One record as the formatter sees it: every pointer borrowed. */
typedef struct rp_view {
    const char *topic;
    int32_t partition;
    int64_t offset, timestamp;
    const void *key;
    ssize_t key_len;
    const void *value;
    ssize_t value_len;
    const void *dlq[DLQ_CNT];
    ssize_t dlq_len[DLQ_CNT];       /* -1: absent */
    int check_type, check_corr;     /* the header was missing: filter on the decoded envelope */
    const es_journal_record_t *rec; /* for --raw (inline only), else NULL */
} rp_view_t;

/* A record copied into a batch: offsets into the batch's data. */
typedef struct rp_rec {
    const char *topic; /* borrowed from rp_opts_t.topics */
    int32_t partition;
    int64_t offset, timestamp;
    size_t key_off, value_off, dlq_off[DLQ_CNT];
    ssize_t key_len, value_len, dlq_len[DLQ_CNT];
    unsigned char check_type, check_corr;
} rp_rec_t;

typedef enum { BATCH_FILLING, BATCH_QUEUED, BATCH_DONE } batch_state_t;

typedef struct rp_batch {
    es_buf_t data;
    rp_rec_t recs[RP_BATCH_RECS];
    size_t cnt;
    es_buf_t out;
    size_t printed;
    batch_state_t state;
    struct rp_batch *next; /* work queue link */
} rp_batch_t;

typedef struct rp_pool {
    pthread_mutex_t lock;
    pthread_cond_t work, done;
    rp_batch_t *q_head, *q_tail;
    int stop;
    const rp_opts_t *opt;
    pthread_t threads[RP_MAX_THREADS];
    es_codec_t *codecs[RP_MAX_THREADS];
    int started;
    /* Batches in reading order: ring[(head + i) % size], i < used. */
    rp_batch_t **ring;
    size_t size, head, used;
    rp_batch_t *cur; /* being filled by the main thread, or NULL */
} rp_pool_t;

typedef struct rp_out {
    const esctl_t *ctx;
    es_buf_t buf;
    int broken; /* the reader of our stdout went away */
    int failed;
    uint64_t printed;
} rp_out_t;

static volatile sig_atomic_t run = 1;

static void on_signal(int sig)
{
    (void)sig;
    run = 0;
}

static void help(FILE *out)
{
    fprintf(out,
            "usage: esctl replay [--topic T]... [--context C]... [--aggregate ID]\n"
            "                    [--correlation ID] [--type T] [--from OFFSET|TIME]\n"
            "                    [--until OFFSET|TIME] [--follow] [--raw] [--stats]\n"
            "\n"
            "Prints every record of the topics as one JSON line, from the journal (records the\n"
            "broker no longer holds) and then the broker, in offset order within each partition:\n"
            "  {\"topic\",\"partition\",\"offset\",\"timestamp\",\"key\",\"type\",\"event_id\",\n"
            "   \"correlation_id\",\"causation_id\",\"aggregate_version\",\"data\":{...}}\n"
            "Dead-letter records add \"dlq_reason\" (and dlq_topic/partition/offset); when their\n"
            "value is not a decodable envelope they print \"type\":null and \"value_base64\".\n"
            "Other undecodable records print \"type\":null, \"error\" and \"value_base64\".\n"
            "Never joins a consumer group and commits nothing.\n"
            "\n"
            "flags:\n"
            "      --topic T         a topic to read, repeatable\n"
            "      --context C       <C>.commands, <C>.events and <C>.dlq, repeatable\n"
            "                        default: every context's three topics\n"
            "      --aggregate ID    only records of this aggregate (header es-aggregate-id)\n"
            "      --correlation ID  only records of this saga/request (es-correlation-id)\n"
            "      --type T          only records of this type (es-type)\n"
            "      --from X          start at offset X in every partition, or at the first\n"
            "                        record at or after time X        default: the beginning\n"
            "      --until X         stop after offset X, or after time X (inclusive)\n"
            "                        TIME is RFC 3339 (2026-11-26T12:00:00Z, "
            "2026-11-26T13:00:00+01:00)\n"
            "                        or @<ms since the epoch>\n"
            "  -f, --follow          keep waiting for new records (until SIGINT/SIGTERM, or\n"
            "                        until the dev broker moves to another address)\n"
            "      --raw             do not decode: key, all headers and \"value_base64\"\n"
            "      --stats           print the count and the rate on stderr at the end\n"
            "      --threads N       decoding threads                 default: the CPU count\n"
            "\n");
    esctl_common_help(out);
}

/*
 * Time and offset arguments
 */

/* Parse "YYYY-MM-DD[THH:MM[:SS[.fff]]][Z|+HH:MM|-HH:MM]" into ms since the epoch. */
static int rfc3339_parse(const char *s, int64_t *ms)
{
    int y, mo, d, h = 0, mi = 0, sec = 0, n = 0;
    if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10) {
        return -1;
    }
    const char *p = s + n;
    int64_t frac_ms = 0;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        int m = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &h, &mi, &m) != 2 || m != 5) {
            return -1;
        }
        p += 1 + m;
        if (*p == ':') {
            if (!isdigit((unsigned char)p[1]) || !isdigit((unsigned char)p[2])) {
                return -1;
            }
            sec = (p[1] - '0') * 10 + (p[2] - '0');
            p += 3;
            if (*p == '.') {
                p++;
                int digits = 0;
                while (isdigit((unsigned char)*p)) {
                    if (digits < 3) {
                        frac_ms = frac_ms * 10 + (*p - '0');
                    }
                    digits++;
                    p++;
                }
                if (!digits) {
                    return -1;
                }
                for (; digits < 3; digits++) {
                    frac_ms *= 10;
                }
            }
        }
    }
    int64_t tz_s = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int th, tm, m = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &th, &tm, &m) != 2 || m != 5) {
            return -1;
        }
        tz_s = (int64_t)(th * 3600 + tm * 60) * (*p == '-' ? -1 : 1);
        p += 1 + m;
    }
    if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) {
        return -1;
    }
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = sec};
    time_t t = timegm(&tm);
    *ms = ((int64_t)t - tz_s) * 1000 + frac_ms;
    return 0;
}

/* OFFSET (digits) or TIME (RFC 3339 or @ms). Exactly one of *offset / *ms is set (>= 0). */
static int point_parse(const char *s, int64_t *offset, int64_t *ms)
{
    char *end;
    *offset = -1;
    *ms = -1;
    size_t digits = strspn(s, "0123456789");
    if (digits > 0 && !s[digits]) {
        long long v = strtoll(s, &end, 10);
        if (*end || v < 0) {
            return -1;
        }
        *offset = v;
        return 0;
    }
    if (s[0] == '@') {
        long long v = strtoll(s + 1, &end, 10);
        if (*end || end == s + 1 || v < 0) {
            return -1;
        }
        *ms = v;
        return 0;
    }
    return rfc3339_parse(s, ms);
}

/*
 * Formatting one record
 */

static int span_eq(const void *v, ssize_t len, const char *s)
{
    return len >= 0 && (size_t)len == strlen(s) && !memcmp(v, s, (size_t)len);
}

static void put_text(es_buf_t *out, const char *name)
{
    es_buf_puts(out, name);
}

/* A header value printed as a number when it is one (dlq partition/offset), else a string. */
static void put_num_or_str(es_buf_t *out, const void *v, ssize_t len)
{
    char tmp[32];
    size_t n_len = len > 0 ? (size_t)len : 0;
    if (n_len > 0 && n_len < sizeof(tmp)) {
        memcpy(tmp, v, n_len);
        tmp[n_len] = '\0';
        char *end;
        long long n = strtoll(tmp, &end, 10);
        if (!*end) {
            esctl_jw_int(out, n);
            return;
        }
    }
    esctl_jw_str(out, v, n_len);
}

static void put_dlq(es_buf_t *out, const rp_view_t *v)
{
    static const char *const names[DLQ_CNT] = {
        ",\"dlq_reason\":", ",\"dlq_topic\":", ",\"dlq_partition\":", ",\"dlq_offset\":"};
    for (int i = 0; i < DLQ_CNT; i++) {
        if (v->dlq_len[i] < 0) {
            continue;
        }
        put_text(out, names[i]);
        if (i == DLQ_PARTITION || i == DLQ_OFFSET) {
            put_num_or_str(out, v->dlq[i], v->dlq_len[i]);
        } else {
            esctl_jw_str(out, v->dlq[i], (size_t)v->dlq_len[i]);
        }
    }
}

/* Format one record into out. Returns 1 when printed, 0 when a decoded filter rejected it. */
static int rp_format(es_codec_t *codec, const rp_opts_t *o, const rp_view_t *v, es_buf_t *out)
{
    es_envelope_t env;
    const es_type_t *type = NULL;
    json_t *payload = NULL;
    char err[256] = "";
    int decoded = 0;
    if (!o->raw || v->check_type || v->check_corr) {
        if (v->value_len < 0) {
            snprintf(err, sizeof(err), "the record has no value");
        } else {
            decoded = es_envelope_decode(codec, v->value, (size_t)v->value_len, &env, &type,
                                         &payload, err, sizeof(err)) == 0;
        }
        if ((v->check_type && (!decoded || strcmp(env.type, o->type) != 0)) ||
            (v->check_corr && (!decoded || strcmp(env.correlation_id, o->correlation) != 0))) {
            json_decref(payload);
            return 0;
        }
    }
    put_text(out, "{\"topic\":");
    esctl_jw_str(out, v->topic, strlen(v->topic));
    put_text(out, ",\"partition\":");
    esctl_jw_int(out, v->partition);
    put_text(out, ",\"offset\":");
    esctl_jw_int(out, v->offset);
    put_text(out, ",\"timestamp\":");
    esctl_jw_time(out, v->timestamp);
    put_text(out, ",\"key\":");
    if (v->key_len < 0) {
        put_text(out, "null");
    } else {
        esctl_jw_str(out, v->key, (size_t)v->key_len);
    }
    if (o->raw) {
        put_text(out, ",\"headers\":{");
        for (size_t i = 0; v->rec && i < v->rec->header_cnt; i++) {
            const es_journal_header_t *h = &v->rec->headers[i];
            if (i) {
                put_text(out, ",");
            }
            esctl_jw_str(out, h->name, strlen(h->name));
            put_text(out, ":");
            if (h->value_len < 0) {
                put_text(out, "null");
            } else {
                esctl_jw_str(out, h->value, (size_t)h->value_len);
            }
        }
        put_text(out, "},\"value_base64\":");
        if (v->value_len < 0) {
            put_text(out, "null");
        } else {
            esctl_jw_base64(out, v->value, (size_t)v->value_len);
        }
    } else if (decoded) {
        put_text(out, ",\"type\":");
        esctl_jw_str(out, env.type, strlen(env.type));
        put_text(out, ",\"event_id\":");
        esctl_jw_str(out, env.event_id, strlen(env.event_id));
        put_text(out, ",\"correlation_id\":");
        esctl_jw_str(out, env.correlation_id, strlen(env.correlation_id));
        put_text(out, ",\"causation_id\":");
        esctl_jw_str(out, env.causation_id, strlen(env.causation_id));
        put_text(out, ",\"aggregate_version\":");
        esctl_jw_int(out, env.aggregate_version);
        put_dlq(out, v);
        put_text(out, ",\"data\":");
        esctl_jw_json(out, payload);
    } else {
        put_text(out, ",\"type\":null");
        put_dlq(out, v);
        if (v->dlq_len[DLQ_REASON] < 0) {
            put_text(out, ",\"error\":");
            esctl_jw_str(out, err, strlen(err));
        }
        put_text(out, ",\"value_base64\":");
        if (v->value_len < 0) {
            put_text(out, "null");
        } else {
            esctl_jw_base64(out, v->value, (size_t)v->value_len);
        }
    }
    put_text(out, "}\n");
    json_decref(payload);
    return 1;
}

/* The header filters, on the undecoded record. Returns 1 to keep, 0 to skip. Sets the
 * check flags when a filter's header is missing (legacy or foreign records). */
static int rp_prefilter(const rp_opts_t *o, const es_journal_record_t *rec, int *check_type,
                        int *check_corr)
{
    *check_type = 0;
    *check_corr = 0;
    if (o->until_offset >= 0 && rec->offset > o->until_offset) {
        return 0;
    }
    if (o->until_ms >= 0 && rec->timestamp > o->until_ms) {
        return 0;
    }
    if (!o->aggregate && !o->correlation && !o->type) {
        return 1;
    }
    int seen_agg = 0, seen_corr = 0, seen_type = 0;
    for (size_t i = 0; i < rec->header_cnt; i++) {
        const es_journal_header_t *h = &rec->headers[i];
        if (h->name[0] != 'e' || h->name[1] != 's' || h->name[2] != '-') {
            continue;
        }
        const char *n = h->name + 3;
        if (o->aggregate && !strcmp(n, "aggregate-id")) {
            if (!span_eq(h->value, h->value_len, o->aggregate)) {
                return 0;
            }
            seen_agg = 1;
        } else if (o->correlation && !strcmp(n, "correlation-id")) {
            if (!span_eq(h->value, h->value_len, o->correlation)) {
                return 0;
            }
            seen_corr = 1;
        } else if (o->type && !strcmp(n, "type")) {
            if (!span_eq(h->value, h->value_len, o->type)) {
                return 0;
            }
            seen_type = 1;
        }
    }
    /* The key is the aggregate id. */
    if (o->aggregate && !seen_agg && !span_eq(rec->key, rec->key_len, o->aggregate)) {
        return 0;
    }
    *check_type = o->type && !seen_type;
    *check_corr = o->correlation && !seen_corr;
    return 1;
}

static void dlq_find(const es_journal_record_t *rec, const void *val[DLQ_CNT], ssize_t len[DLQ_CNT])
{
    for (int i = 0; i < DLQ_CNT; i++) {
        val[i] = NULL;
        len[i] = -1;
    }
    for (size_t i = 0; i < rec->header_cnt; i++) {
        const char *n = rec->headers[i].name;
        if (strncmp(n, "es-dlq-", 7) != 0) {
            continue;
        }
        for (int j = 0; j < DLQ_CNT; j++) {
            if (!strcmp(n, dlq_headers[j])) {
                val[j] = rec->headers[i].value;
                len[j] = rec->headers[i].value_len < 0 ? 0 : rec->headers[i].value_len;
            }
        }
    }
}

/*
 * Output
 */

static void out_write(rp_out_t *w, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0 && !w->broken && !w->failed) {
        ssize_t n = write(STDOUT_FILENO, p, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            if (errno == EPIPE) {
                w->broken = 1;
            } else {
                esctl_err(w->ctx, "could not write to stdout: %s", strerror(errno));
                w->failed = 1;
            }
            return;
        }
        p += n;
        len -= (size_t)n;
    }
}

/* Write what the buffer holds. */
static void out_flush(rp_out_t *w)
{
    if (w->buf.len) {
        out_write(w, w->buf.data, w->buf.len);
        es_buf_reset(&w->buf);
    }
}

/*
 * The worker pool
 */

static void batch_format(es_codec_t *codec, const rp_opts_t *o, rp_batch_t *b)
{
    es_buf_reset(&b->out);
    b->printed = 0;
    for (size_t i = 0; i < b->cnt; i++) {
        const rp_rec_t *r = &b->recs[i];
        rp_view_t v = {.topic = r->topic,
                       .partition = r->partition,
                       .offset = r->offset,
                       .timestamp = r->timestamp,
                       .key = b->data.data + r->key_off,
                       .key_len = r->key_len,
                       .value = b->data.data + r->value_off,
                       .value_len = r->value_len,
                       .check_type = r->check_type,
                       .check_corr = r->check_corr};
        for (int j = 0; j < DLQ_CNT; j++) {
            v.dlq[j] = b->data.data + r->dlq_off[j];
            v.dlq_len[j] = r->dlq_len[j];
        }
        b->printed += (size_t)rp_format(codec, o, &v, &b->out);
    }
}

typedef struct rp_worker_arg {
    rp_pool_t *pool;
    int idx;
} rp_worker_arg_t;

static void *worker_main(void *arg)
{
    rp_worker_arg_t *wa = arg;
    rp_pool_t *p = wa->pool;
    es_codec_t *codec = p->codecs[wa->idx];
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->q_head && !p->stop) {
            pthread_cond_wait(&p->work, &p->lock);
        }
        if (!p->q_head) {
            break;
        }
        rp_batch_t *b = p->q_head;
        p->q_head = b->next;
        if (!p->q_head) {
            p->q_tail = NULL;
        }
        pthread_mutex_unlock(&p->lock);
        batch_format(codec, p->opt, b);
        pthread_mutex_lock(&p->lock);
        b->state = BATCH_DONE;
        pthread_cond_broadcast(&p->done);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* Write finished batches at the head of the ring; with `all`, wait for every one. */
static void pool_drain(rp_pool_t *p, rp_out_t *w, int all)
{
    pthread_mutex_lock(&p->lock);
    while (p->used > 0) {
        rp_batch_t *b = p->ring[p->head];
        if (b->state != BATCH_DONE) {
            if (!all) {
                break;
            }
            pthread_cond_wait(&p->done, &p->lock);
            continue;
        }
        pthread_mutex_unlock(&p->lock);
        out_write(w, b->out.data, b->out.len);
        w->printed += b->printed;
        pthread_mutex_lock(&p->lock);
        b->state = BATCH_FILLING;
        b->cnt = 0;
        es_buf_reset(&b->data);
        p->head = (p->head + 1) % p->size;
        p->used--;
    }
    pthread_mutex_unlock(&p->lock);
}

/* Hand the batch being filled to the workers. */
static void pool_submit(rp_pool_t *p)
{
    rp_batch_t *b = p->cur;
    if (!b) {
        return;
    }
    p->cur = NULL;
    pthread_mutex_lock(&p->lock);
    b->state = BATCH_QUEUED;
    b->next = NULL;
    if (p->q_tail) {
        p->q_tail->next = b;
    } else {
        p->q_head = b;
    }
    p->q_tail = b;
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->lock);
}

/* A batch to fill: the current one, or the next free slot of the ring (waiting for the
 * oldest batch to be written when all are in flight). */
static rp_batch_t *pool_batch(rp_pool_t *p, rp_out_t *w)
{
    if (p->cur) {
        return p->cur;
    }
    if (p->used == p->size) {
        /* Wait for the oldest, write it: its slot is the one we take. */
        pthread_mutex_lock(&p->lock);
        while (p->ring[p->head]->state != BATCH_DONE) {
            pthread_cond_wait(&p->done, &p->lock);
        }
        pthread_mutex_unlock(&p->lock);
        pool_drain(p, w, 0);
    }
    rp_batch_t *b = p->ring[(p->head + p->used) % p->size];
    p->used++;
    b->cnt = 0;
    es_buf_reset(&b->data);
    b->state = BATCH_FILLING;
    p->cur = b;
    return b;
}

/* Copy one record into the batch being filled. Returns 0 or -1 (out of memory). */
static int batch_add(rp_batch_t *b, const char *topic, const es_logreader_msg_t *m, int check_type,
                     int check_corr)
{
    const es_journal_record_t *rec = &m->rec;
    rp_rec_t *r = &b->recs[b->cnt];
    r->topic = topic;
    r->partition = m->partition;
    r->offset = rec->offset;
    r->timestamp = rec->timestamp;
    r->check_type = (unsigned char)check_type;
    r->check_corr = (unsigned char)check_corr;
    r->key_len = rec->key_len;
    r->key_off = b->data.len;
    if (rec->key_len > 0 && es_buf_append(&b->data, rec->key, (size_t)rec->key_len) != 0) {
        return -1;
    }
    r->value_len = rec->value_len;
    r->value_off = b->data.len;
    if (rec->value_len > 0 && es_buf_append(&b->data, rec->value, (size_t)rec->value_len) != 0) {
        return -1;
    }
    const void *dv[DLQ_CNT];
    dlq_find(rec, dv, r->dlq_len);
    for (int j = 0; j < DLQ_CNT; j++) {
        r->dlq_off[j] = b->data.len;
        if (r->dlq_len[j] > 0 && es_buf_append(&b->data, dv[j], (size_t)r->dlq_len[j]) != 0) {
            return -1;
        }
    }
    b->cnt++;
    return 0;
}

static int pool_start(rp_pool_t *p, const rp_opts_t *o, char *errstr, size_t errstr_size)
{
    memset(p, 0, sizeof(*p));
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->done, NULL);
    p->opt = o;
    p->size = (size_t)o->threads * 2 + 2;
    p->ring = calloc(p->size, sizeof(*p->ring));
    if (!p->ring) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < p->size; i++) {
        p->ring[i] = calloc(1, sizeof(rp_batch_t));
        if (!p->ring[i]) {
            snprintf(errstr, errstr_size, "out of memory");
            return -1;
        }
    }
    static rp_worker_arg_t args[RP_MAX_THREADS];
    for (int i = 0; i < o->threads; i++) {
        p->codecs[i] = es_codec_new(errstr, errstr_size);
        if (!p->codecs[i]) {
            return -1;
        }
        args[i].pool = p;
        args[i].idx = i;
        if (pthread_create(&p->threads[i], NULL, worker_main, &args[i]) != 0) {
            snprintf(errstr, errstr_size, "could not start a decoding thread");
            return -1;
        }
        p->started++;
    }
    return 0;
}

static void pool_stop(rp_pool_t *p)
{
    pthread_mutex_lock(&p->lock);
    p->stop = 1;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->started; i++) {
        pthread_join(p->threads[i], NULL);
    }
    for (int i = 0; i < RP_MAX_THREADS; i++) {
        es_codec_destroy(p->codecs[i]);
    }
    for (size_t i = 0; p->ring && i < p->size; i++) {
        if (p->ring[i]) {
            es_buf_fini(&p->ring[i]->data);
            es_buf_fini(&p->ring[i]->out);
            free(p->ring[i]);
        }
    }
    free(p->ring);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->done);
}

/*
 * The command
 */

/* Our own copy of a topic name from the reader: stable for the batches that outlive it. */
static const char *topic_intern(const rp_opts_t *o, const char *topic)
{
    for (size_t i = 0; i < o->topic_cnt; i++) {
        if (o->topics[i] == topic || !strcmp(o->topics[i], topic)) {
            return o->topics[i];
        }
    }
    return "?";
}

static int add_topic(esctl_t *ctx, rp_opts_t *o, const char *topic)
{
    for (size_t i = 0; i < o->topic_cnt; i++) {
        if (!strcmp(o->topics[i], topic)) {
            return 0;
        }
    }
    if (o->topic_cnt == RP_MAX_TOPICS) {
        esctl_err(ctx, "too many topics (at most %d)", RP_MAX_TOPICS);
        return -1;
    }
    char *dup = strdup(topic);
    if (!dup) {
        return -1;
    }
    o->topics[o->topic_cnt++] = dup;
    return 0;
}

static int add_context(esctl_t *ctx, rp_opts_t *o, const char *context)
{
    static const char *const kinds[] = {"commands", "events", "dlq"};
    for (size_t k = 0; k < 3; k++) {
        char t[256];
        snprintf(t, sizeof(t), "%s.%s", context, kinds[k]);
        if (add_topic(ctx, o, t) != 0) {
            return -1;
        }
    }
    return 0;
}

static int default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) {
        n = 1;
    }
    return n > RP_MAX_THREADS ? RP_MAX_THREADS : (int)n;
}

int esctl_replay_main(esctl_t *ctx, int argc, char **argv)
{
    enum {
        O_TOPIC = 256,
        O_CONTEXT,
        O_AGG,
        O_CORR,
        O_TYPE,
        O_FROM,
        O_UNTIL,
        O_RAW,
        O_STATS,
        O_THREADS
    };
    static const struct option longopts[] = {ESCTL_COMMON_LONG,
                                             {"topic", required_argument, NULL, O_TOPIC},
                                             {"context", required_argument, NULL, O_CONTEXT},
                                             {"aggregate", required_argument, NULL, O_AGG},
                                             {"correlation", required_argument, NULL, O_CORR},
                                             {"type", required_argument, NULL, O_TYPE},
                                             {"from", required_argument, NULL, O_FROM},
                                             {"until", required_argument, NULL, O_UNTIL},
                                             {"follow", no_argument, NULL, 'f'},
                                             {"raw", no_argument, NULL, O_RAW},
                                             {"stats", no_argument, NULL, O_STATS},
                                             {"threads", required_argument, NULL, O_THREADS},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    static rp_opts_t o;
    memset(&o, 0, sizeof(o));
    o.until_offset = -1;
    o.until_ms = -1;
    o.threads = default_threads();
    const char *contexts[RP_MAX_TOPICS];
    size_t context_cnt = 0;
    const char *topics_arg[RP_MAX_TOPICS];
    size_t topics_arg_cnt = 0;
    int rc = ESCTL_FAIL;

    int opt;
    while ((opt = getopt_long(argc, argv, ESCTL_COMMON_SHORT "fh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'h':
            help(stdout);
            return ESCTL_OK;
        case O_TOPIC:
        case O_CONTEXT:
            if ((opt == O_TOPIC ? topics_arg_cnt : context_cnt) == RP_MAX_TOPICS) {
                esctl_err(ctx, "too many --topic/--context flags");
                return ESCTL_USAGE;
            }
            if (opt == O_TOPIC) {
                topics_arg[topics_arg_cnt++] = optarg;
            } else {
                contexts[context_cnt++] = optarg;
            }
            break;
        case O_AGG:
            o.aggregate = optarg;
            break;
        case O_CORR:
            o.correlation = optarg;
            break;
        case O_TYPE:
            o.type = optarg;
            break;
        case O_FROM:
        case O_UNTIL: {
            int64_t off, ms;
            if (point_parse(optarg, &off, &ms) != 0) {
                esctl_err(ctx,
                          "%s \"%s\": expected an offset, an RFC 3339 time "
                          "(2026-11-26T12:00:00Z) or @<ms since the epoch>",
                          opt == O_FROM ? "--from" : "--until", optarg);
                return ESCTL_USAGE;
            }
            if (opt == O_FROM) {
                o.from_offset = off >= 0 ? off : 0;
                o.from_ms = ms >= 0 ? (ms > 0 ? ms : 1) : 0;
            } else {
                o.until_offset = off;
                o.until_ms = ms;
            }
            break;
        }
        case 'f':
            o.follow = 1;
            break;
        case O_RAW:
            o.raw = 1;
            break;
        case O_STATS:
            o.stats = 1;
            break;
        case O_THREADS: {
            char *end;
            long n = strtol(optarg, &end, 10);
            if (*end || n < 1 || n > RP_MAX_THREADS) {
                esctl_err(ctx, "--threads must be in 1..%d, not \"%s\"", RP_MAX_THREADS, optarg);
                return ESCTL_USAGE;
            }
            o.threads = (int)n;
            break;
        }
        default:
            if (esctl_other_opt(ctx, opt, optarg, argv) != 0) {
                return ESCTL_USAGE;
            }
        }
    }
    if (optind < argc) {
        esctl_err(ctx, "unexpected argument \"%s\"", argv[optind]);
        return ESCTL_USAGE;
    }
    if (o.follow && o.until_offset >= 0) {
        esctl_err(ctx, "--follow cannot stop at an offset: use --until TIME");
        return ESCTL_USAGE;
    }

    char errstr[512];
    es_codec_t *codec = es_codec_new(errstr, sizeof(errstr));
    if (!codec) {
        esctl_err(ctx, "%s", errstr);
        return ESCTL_FAIL;
    }
    es_logreader_t *lr = NULL;
    rp_pool_t pool;
    int pool_on = 0;
    rp_out_t w;
    memset(&w, 0, sizeof(w));
    w.ctx = ctx;
    es_buf_init(&w.buf);

    if (o.type && !es_codec_type(codec, o.type)) {
        const char *hint = esctl_suggest_type(codec, o.type, -1);
        esctl_err(ctx, "unknown type \"%s\"%s%s%s", o.type, hint ? " (did you mean \"" : "",
                  hint ? hint : "", hint ? "\"?)" : "");
        rc = ESCTL_USAGE;
        goto out;
    }
    for (size_t i = 0; i < context_cnt; i++) {
        const char *c;
        size_t j = 0;
        while ((c = es_codec_context_at(codec, j)) != NULL && strcmp(c, contexts[i]) != 0) {
            j++;
        }
        if (!c) {
            esctl_err(ctx, "unknown context \"%s\" (\"esctl types\" lists them)", contexts[i]);
            rc = ESCTL_USAGE;
            goto out;
        }
        if (add_context(ctx, &o, contexts[i]) != 0) {
            goto out;
        }
    }
    for (size_t i = 0; i < topics_arg_cnt; i++) {
        if (add_topic(ctx, &o, topics_arg[i]) != 0) {
            goto out;
        }
    }
    if (o.topic_cnt == 0) {
        const char *c;
        for (size_t j = 0; (c = es_codec_context_at(codec, j)) != NULL; j++) {
            if (add_context(ctx, &o, c) != 0) {
                goto out;
            }
        }
    }

    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* A quick look first: an unreachable broker is one clear line within seconds. */
    esctl_prop_default(ctx, "log_level", "2");
    if (esctl_broker_check(ctx, ESCTL_CONNECT_TIMEOUT_MS) != 0) {
        goto out;
    }
    lr = es_logreader_new(&ctx->cfg, o.topics, o.topic_cnt, o.from_offset, o.from_ms, o.follow,
                          errstr, sizeof(errstr));
    if (!lr) {
        esctl_err(ctx, "%s", errstr);
        goto out;
    }
    /* --raw needs no decoding and shows every header: it is formatted inline. So is a single
     * thread's work, which gains nothing from handing batches over. */
    int inline_fmt = o.raw || o.threads == 1;
    if (!inline_fmt) {
        if (pool_start(&pool, &o, errstr, sizeof(errstr)) != 0) {
            esctl_err(ctx, "%s", errstr);
            pool_on = 1;
            goto out;
        }
        pool_on = 1;
    }

    int64_t t0 = es_mono_us();
    uint64_t read_cnt = 0;
    int idle = 0;
    int64_t next_move_check = 0;
    rc = ESCTL_OK;
    while (run && !w.broken && !w.failed) {
        es_logreader_msg_t m;
        /* Following: ask without waiting first, so that output is flushed before a wait. */
        int wait_ms = !o.follow ? 1000 : idle ? 100 : 0;
        int r = es_logreader_next(lr, &m, wait_ms, errstr, sizeof(errstr));
        if (r < 0) {
            esctl_err(ctx, "%s", errstr);
            rc = ESCTL_FAIL;
            break;
        }
        if (r == 0) {
            if (!o.follow) {
                break;
            }
            if (!idle) {
                /* Caught up: show everything read so far before waiting. */
                if (pool_on) {
                    pool_submit(&pool);
                    pool_drain(&pool, &w, 1);
                }
                out_flush(&w);
                idle = 1;
            }
            if (o.until_ms >= 0 && es_now_ms() > o.until_ms) {
                break;
            }
            /* the dev broker restarted elsewhere (its port was taken): this reader's clients
             * would wait at the old address for ever (lib/devgate.h); a look each second */
            char moved[1024];
            if (es_mono_us() >= next_move_check) {
                next_move_check = es_mono_us() + 1000000;
                if (es_devgate_moved(&ctx->cfg, moved, sizeof(moved))) {
                    esctl_err(ctx,
                              "the dev broker moved from %s to %s: run esctl replay again "
                              "(--from a time goes on from where this one stopped)",
                              ctx->cfg.brokers, moved);
                    rc = ESCTL_FAIL;
                    break;
                }
            }
            continue;
        }
        idle = 0;
        read_cnt++;
        int check_type, check_corr;
        if (!rp_prefilter(&o, &m.rec, &check_type, &check_corr)) {
            continue;
        }
        const char *topic = topic_intern(&o, m.topic);
        if (inline_fmt) {
            rp_view_t v = {.topic = topic,
                           .partition = m.partition,
                           .offset = m.rec.offset,
                           .timestamp = m.rec.timestamp,
                           .key = m.rec.key,
                           .key_len = m.rec.key_len,
                           .value = m.rec.value,
                           .value_len = m.rec.value_len,
                           .check_type = check_type,
                           .check_corr = check_corr,
                           .rec = &m.rec};
            dlq_find(&m.rec, v.dlq, v.dlq_len);
            w.printed += (uint64_t)rp_format(codec, &o, &v, &w.buf);
            if (w.buf.len >= RP_WRITE_CHUNK) {
                out_flush(&w);
            }
        } else {
            rp_batch_t *b = pool_batch(&pool, &w);
            if (batch_add(b, topic, &m, check_type, check_corr) != 0) {
                esctl_err(ctx, "out of memory");
                rc = ESCTL_FAIL;
                break;
            }
            if (b->cnt == RP_BATCH_RECS || b->data.len >= RP_BATCH_BYTES) {
                pool_submit(&pool);
                pool_drain(&pool, &w, 0);
            }
        }
    }
    if (pool_on) {
        pool_submit(&pool);
        pool_drain(&pool, &w, 1);
    }
    out_flush(&w);
    if (w.failed) {
        rc = ESCTL_FAIL;
    }
    if (o.stats) {
        double secs = (double)(es_mono_us() - t0) / 1e6;
        fprintf(stderr, "esctl replay: %llu records printed, %llu read in %.3f s: %.0f records/s\n",
                (unsigned long long)w.printed, (unsigned long long)read_cnt, secs,
                secs > 0 ? (double)read_cnt / secs : 0.0);
    }
out:
    if (pool_on) {
        pool_stop(&pool);
    }
    es_logreader_destroy(lr);
    es_buf_fini(&w.buf);
    for (size_t i = 0; i < o.topic_cnt; i++) {
        free((char *)o.topics[i]);
    }
    es_codec_destroy(codec);
    return rc;
}
