/*
 * broker_probe.c: a small client for tests/integration/test_broker_restore.sh (not a unit test).
 *
 *   broker_probe produce TOPIC COUNT [VALUE_SIZE [PARTITION]]
 *       produce COUNT deterministic records (NULL and empty keys and values, headers with
 *       NULL and empty values, explicit timestamps) round-robin over the partitions, or all to
 *       PARTITION; prints one canonical line per acknowledged record on stdout
 *   broker_probe dump TOPIC...
 *       read every record from the beginning through lib/logreader (journal, then broker) and
 *       print the same canonical lines; the read rate goes to stderr
 *   broker_probe count TOPIC...
 *       the same read without printing: measures the read rate
 *   broker_probe watermarks TOPIC
 *       one line per partition: partition low high
 *   broker_probe latency TOPIC ROUNDS
 *       ROUNDS times: one record to every partition, then flush; prints p50/p99/max in ms
 *   broker_probe wait TOPIC ROUNDS WAIT_MS
 *       a consumer of partition 0 with fetch.wait.max.ms=WAIT_MS, idle for 50 ms each round,
 *       then one record produced: prints how long it took to arrive (p50/max in ms), then how
 *       long a watermark query on that consumer took while its fetch was waiting
 *   broker_probe sets TOPIC COUNT
 *       COUNT records to partition 0, each flushed alone (one message set each), then a
 *       consumer reads them from the first: checks that each arrives once, in order, and
 *       prints how long the read took
 *
 * Canonical line: topic partition offset timestamp key value headers, where key is NULL or
 * hex, value is NULL or <len>:<fnv1a-64>, headers are name=hex|NULL joined by ',' or '-'.
 * Finds the broker like every program (KAFKA_BROKERS or $ES_DATA/broker.addr).
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "kafka.h"
#include "logreader.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void print_hex(FILE *out, const void *p, size_t len)
{
    const unsigned char *b = p;
    if (len == 0) {
        fputs("\"\"", out);
    }
    for (size_t i = 0; i < len; i++) {
        fprintf(out, "%02x", b[i]);
    }
}

static void print_record(FILE *out, const char *topic, int32_t partition,
                         const es_journal_record_t *rec)
{
    fprintf(out, "%s %d %" PRId64 " %" PRId64 " ", topic, (int)partition, rec->offset,
            rec->timestamp);
    if (rec->key_len < 0) {
        fputs("NULL", out);
    } else {
        print_hex(out, rec->key, (size_t)rec->key_len);
    }
    if (rec->value_len < 0) {
        fputs(" NULL", out);
    } else {
        uint64_t h = 1469598103934665603ull;
        const unsigned char *v = rec->value;
        for (ssize_t i = 0; i < rec->value_len; i++) {
            h = (h ^ v[i]) * 1099511628211ull;
        }
        fprintf(out, " %zd:%016" PRIx64, rec->value_len, h);
    }
    fputc(' ', out);
    if (rec->header_cnt == 0) {
        fputc('-', out);
    }
    for (size_t i = 0; i < rec->header_cnt; i++) {
        fprintf(out, "%s%s=", i ? "," : "", rec->headers[i].name);
        if (rec->headers[i].value_len < 0) {
            fputs("NULL", out);
        } else {
            print_hex(out, rec->headers[i].value, (size_t)rec->headers[i].value_len);
        }
    }
    fputc('\n', out);
}

/* Convert a message (delivery report or consumed) to the journal's record view. */
static void record_of(const rd_kafka_message_t *rkm, es_journal_record_t *rec)
{
    rd_kafka_timestamp_type_t tstype;
    rec->offset = rkm->offset;
    rec->timestamp = rd_kafka_message_timestamp(rkm, &tstype);
    rec->key = rkm->key;
    rec->key_len = rkm->key ? (ssize_t)rkm->key_len : -1;
    rec->value = rkm->payload;
    rec->value_len = rkm->payload ? (ssize_t)rkm->len : -1;
    rec->header_cnt = 0;
    rd_kafka_headers_t *hdrs = NULL;
    if (rd_kafka_message_headers(rkm, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR && hdrs) {
        const char *name;
        const void *val;
        size_t size;
        while (rec->header_cnt < ES_JOURNAL_MAX_HEADERS &&
               rd_kafka_header_get_all(hdrs, rec->header_cnt, &name, &val, &size) == 0) {
            rec->headers[rec->header_cnt].name = name;
            rec->headers[rec->header_cnt].value = val;
            rec->headers[rec->header_cnt].value_len = val ? (ssize_t)size : -1;
            rec->header_cnt++;
        }
    }
}

static long failures;

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (rkm->err) {
        fprintf(stderr, "broker_probe: delivery failed: %s\n", rd_kafka_err2str(rkm->err));
        failures++;
        return;
    }
    es_journal_record_t rec;
    record_of(rkm, &rec);
    /* The dev broker reports a made-up LogAppendTime in produce responses: print the
     * timestamp this record was produced with (its opaque). */
    rec.timestamp = (int64_t)(intptr_t)rkm->_private;
    print_record(stdout, rd_kafka_topic_name(rkm->rkt), rkm->partition, &rec);
}

static int produce(es_config_t *cfg, const char *topic, long count, size_t value_size,
                   int partition)
{
    char errstr[512];
    rd_kafka_t *rk =
        es_kafka_producer_new(cfg, "broker-probe", dr_cb, NULL, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "broker_probe: %s\n", errstr);
        return 1;
    }
    int pcnt = es_kafka_partition_count(rk, topic, 10000, errstr, sizeof(errstr));
    if (pcnt < 0) {
        fprintf(stderr, "broker_probe: %s\n", errstr);
        rd_kafka_destroy(rk);
        return 1;
    }
    char *value = malloc(value_size + 1);
    for (long i = 0; i < count; i++) {
        char key[32];
        snprintf(key, sizeof(key), "key-%ld", i);
        for (size_t k = 0; k < value_size; k++) {
            value[k] = (char)('a' + (i + (long)k) % 26);
        }
        void *kp = i % 5 == 0 ? NULL : key;
        size_t kl = i % 5 == 0 || i % 5 == 1 ? 0 : strlen(key);
        void *vp = i % 7 == 3 ? NULL : value;
        size_t vl = i % 7 == 3 || i % 7 == 4 ? 0 : value_size;
        rd_kafka_headers_t *hdrs = NULL;
        if (i % 3 != 0) {
            hdrs = rd_kafka_headers_new(3);
            rd_kafka_header_add(hdrs, "trace", -1, key, strlen(key));
            rd_kafka_header_add(hdrs, "nullh", -1, NULL, 0);
            if (i % 3 == 2) {
                rd_kafka_header_add(hdrs, "empty", -1, "", 0);
            }
        }
        int32_t part = partition >= 0 ? partition : (int32_t)(i % pcnt);
        int64_t ts = 1600000000000 + (int64_t)i * 1000;
        rd_kafka_resp_err_t err;
        while ((err = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(part),
                                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                        RD_KAFKA_V_KEY(kp, kl), RD_KAFKA_V_VALUE(vp, vl),
                                        RD_KAFKA_V_TIMESTAMP(ts), RD_KAFKA_V_HEADERS(hdrs),
                                        RD_KAFKA_V_OPAQUE((void *)(intptr_t)ts), RD_KAFKA_V_END)) ==
               RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(rk, 10);
        }
        if (err) {
            fprintf(stderr, "broker_probe: produce failed: %s\n", rd_kafka_err2str(err));
            rd_kafka_headers_destroy(hdrs);
            failures++;
            break;
        }
        rd_kafka_poll(rk, 0);
    }
    free(value);
    while (rd_kafka_outq_len(rk) > 0) {
        rd_kafka_flush(rk, 1000);
    }
    rd_kafka_destroy(rk);
    return failures ? 1 : 0;
}

static int dump(es_config_t *cfg, const char *const *topics, size_t topic_cnt, int print)
{
    char errstr[512];
    es_logreader_t *lr = es_logreader_new(cfg, topics, topic_cnt, ES_LOGREADER_FROM_BEGINNING, 0, 0,
                                          errstr, sizeof(errstr));
    if (!lr) {
        fprintf(stderr, "broker_probe: %s\n", errstr);
        return 1;
    }
    double start = now_s();
    int64_t n = 0;
    es_logreader_msg_t msg;
    int rc;
    while ((rc = es_logreader_next(lr, &msg, 1000, errstr, sizeof(errstr))) == 1) {
        if (print) {
            print_record(stdout, msg.topic, msg.partition, &msg.rec);
        }
        n++;
    }
    double secs = now_s() - start;
    fprintf(stderr,
            "broker_probe: read %" PRId64 " records (expected %" PRId64
            ") in %.3f s: %.0f records/s\n",
            n, es_logreader_total(lr), secs, secs > 0 ? (double)n / secs : 0.0);
    int64_t total = es_logreader_total(lr);
    es_logreader_destroy(lr);
    if (rc < 0) {
        fprintf(stderr, "broker_probe: %s\n", errstr);
        return 1;
    }
    return n == total ? 0 : 1;
}

static int watermarks(es_config_t *cfg, const char *topic)
{
    char errstr[512];
    rd_kafka_t *rk = es_kafka_producer_new(cfg, "broker-probe", NULL, NULL, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "broker_probe: %s\n", errstr);
        return 1;
    }
    int pcnt = es_kafka_partition_count(rk, topic, 10000, errstr, sizeof(errstr));
    if (pcnt < 0) {
        fprintf(stderr, "broker_probe: %s\n", errstr);
        rd_kafka_destroy(rk);
        return 1;
    }
    for (int p = 0; p < pcnt; p++) {
        int64_t lo, hi;
        rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 10000);
        if (err) {
            fprintf(stderr, "broker_probe: watermarks of %s [%d]: %s\n", topic, p,
                    rd_kafka_err2str(err));
            rd_kafka_destroy(rk);
            return 1;
        }
        printf("%d %" PRId64 " %" PRId64 "\n", p, lo, hi);
    }
    rd_kafka_destroy(rk);
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void noop_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    (void)rk;
    (void)rkm;
    (void)opaque;
}

static int latency(es_config_t *cfg, const char *topic, int rounds)
{
    char errstr[512];
    /* With a delivery callback, rd_kafka_flush() wakes up on the last report instead of
     * polling in 10 ms steps. */
    rd_kafka_t *rk =
        es_kafka_producer_new(cfg, "broker-probe", noop_dr_cb, NULL, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "broker_probe: %s\n", errstr);
        return 1;
    }
    int pcnt = es_kafka_partition_count(rk, topic, 10000, errstr, sizeof(errstr));
    if (pcnt < 0 || rounds < 1) {
        fprintf(stderr, "broker_probe: %s\n", pcnt < 0 ? errstr : "rounds must be positive");
        rd_kafka_destroy(rk);
        return 1;
    }
    double *ms = calloc((size_t)rounds, sizeof(*ms));
    /* warm up: connections and producer id */
    rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_VALUE("w", 1), RD_KAFKA_V_END);
    rd_kafka_flush(rk, 10000);
    for (int r = 0; r < rounds; r++) {
        double t0 = now_s();
        for (int p = 0; p < pcnt; p++) {
            rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(p),
                              RD_KAFKA_V_VALUE("latency", 7), RD_KAFKA_V_END);
        }
        rd_kafka_flush(rk, 10000);
        ms[r] = (now_s() - t0) * 1000.0;
    }
    qsort(ms, (size_t)rounds, sizeof(*ms), cmp_double);
    printf("flush of %d partitions: p50=%.2f ms p99=%.2f ms max=%.2f ms\n", pcnt, ms[rounds / 2],
           ms[(rounds * 99) / 100], ms[rounds - 1]);
    free(ms);
    rd_kafka_destroy(rk);
    return 0;
}

/* A producer and a consumer (no group offsets: it is assigned by hand) in *prk and *crk.
 * Returns 0, or 1 with the error printed and nothing left open. */
static int clients_new(es_config_t *cfg, const char *group, rd_kafka_t **prk, rd_kafka_t **crk)
{
    char errstr[512];
    *prk = es_kafka_producer_new(cfg, "broker-probe", noop_dr_cb, NULL, errstr, sizeof(errstr));
    *crk = *prk ? es_kafka_consumer_new(cfg, "broker-probe", group, NULL, NULL, 0, errstr,
                                        sizeof(errstr))
                : NULL;
    if (!*crk) {
        fprintf(stderr, "broker_probe: %s\n", errstr);
        if (*prk) {
            rd_kafka_destroy(*prk);
        }
        return 1;
    }
    return 0;
}

/* Consume from `rkq` until a record of partition 0 with this value arrives. */
static int wait_for(rd_kafka_queue_t *rkq, const char *value, int timeout_ms)
{
    double until = now_s() + timeout_ms / 1000.0;
    while (now_s() < until) {
        rd_kafka_message_t *rkm = rd_kafka_consume_queue(rkq, 100);
        if (!rkm) {
            continue;
        }
        int hit = !rkm->err && rkm->len == strlen(value) && !memcmp(rkm->payload, value, rkm->len);
        rd_kafka_message_destroy(rkm);
        if (hit) {
            return 0;
        }
    }
    return -1;
}

static int wait_rounds(es_config_t *cfg, const char *topic, int rounds, int wait_ms)
{
    char errstr[512], prop[64];
    snprintf(prop, sizeof(prop), "fetch.wait.max.ms=%d", wait_ms);
    if (rounds < 1 || wait_ms < 1 || es_config_add_prop(cfg, prop, errstr, sizeof(errstr)) != 0) {
        fprintf(stderr, "broker_probe: %s\n", rounds < 1 || wait_ms < 1 ? "bad arguments" : errstr);
        return 1;
    }
    rd_kafka_t *prk, *crk;
    if (clients_new(cfg, "broker-probe-wait", &prk, &crk) != 0) {
        return 1;
    }
    /* from the current end, as a number: a logical "end" resolved after the first record
     * would skip it */
    int64_t lo, hi;
    rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(crk, topic, 0, &lo, &hi, 30000);
    if (err) {
        fprintf(stderr, "broker_probe: watermarks: %s\n", rd_kafka_err2str(err));
        rd_kafka_destroy(crk);
        rd_kafka_destroy(prk);
        return 1;
    }
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, topic, 0)->offset = hi;
    rd_kafka_assign(crk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_queue_t *rkq = rd_kafka_queue_get_consumer(crk);
    double *ms = calloc((size_t)rounds, sizeof(*ms));
    int rc = 1;
    /* warm up: the consumer is fetching once it has seen one record */
    char value[64];
    for (int r = -1; r < rounds; r++) {
        snprintf(value, sizeof(value), "wait-%d-%d", (int)getpid(), r);
        usleep(r < 0 ? 0 : 50000);
        double t0 = now_s();
        rd_kafka_producev(prk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0),
                          RD_KAFKA_V_VALUE(value, strlen(value)), RD_KAFKA_V_END);
        rd_kafka_flush(prk, 10000);
        if (wait_for(rkq, value, r < 0 ? 30000 : 3 * wait_ms + 5000) != 0) {
            fprintf(stderr, "broker_probe: record %s never arrived\n", value);
            goto out;
        }
        if (r >= 0) {
            ms[r] = (now_s() - t0) * 1000.0;
        }
    }
    usleep(50000);
    double t0 = now_s();
    err = rd_kafka_query_watermark_offsets(crk, topic, 0, &lo, &hi, 30000);
    double query_ms = (now_s() - t0) * 1000.0;
    if (err) {
        fprintf(stderr, "broker_probe: watermarks: %s\n", rd_kafka_err2str(err));
        goto out;
    }
    qsort(ms, (size_t)rounds, sizeof(*ms), cmp_double);
    printf("arrival with fetch.wait.max.ms=%d: p50=%.2f ms max=%.2f ms; watermark query %.2f ms\n",
           wait_ms, ms[rounds / 2], ms[rounds - 1], query_ms);
    rc = 0;
out:
    free(ms);
    rd_kafka_queue_destroy(rkq);
    rd_kafka_consumer_close(crk);
    rd_kafka_destroy(crk);
    rd_kafka_destroy(prk);
    return rc;
}

static int sets(es_config_t *cfg, const char *topic, int count)
{
    rd_kafka_t *prk, *crk;
    if (count < 1) {
        fprintf(stderr, "broker_probe: bad arguments\n");
        return 1;
    }
    if (clients_new(cfg, "broker-probe-sets", &prk, &crk) != 0) {
        return 1;
    }
    int64_t lo, hi;
    rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(crk, topic, 0, &lo, &hi, 30000);
    char value[64];
    for (int i = 0; !err && i < count; i++) {
        snprintf(value, sizeof(value), "set-%d", i);
        err = rd_kafka_producev(prk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(0),
                                RD_KAFKA_V_VALUE(value, strlen(value)), RD_KAFKA_V_END);
        err = err ? err : rd_kafka_flush(prk, 10000);
    }
    int rc = 1, got = 0;
    rd_kafka_queue_t *rkq = NULL;
    if (err) {
        fprintf(stderr, "broker_probe: %s\n", rd_kafka_err2str(err));
        goto out;
    }
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, topic, 0)->offset = hi;
    double t0 = now_s();
    rd_kafka_assign(crk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    rkq = rd_kafka_queue_get_consumer(crk);
    while (got < count && now_s() < t0 + 60) {
        rd_kafka_message_t *rkm = rd_kafka_consume_queue(rkq, 100);
        if (!rkm) {
            continue;
        }
        snprintf(value, sizeof(value), "set-%d", got);
        int ok = !rkm->err && rkm->offset == hi + got && rkm->len == strlen(value) &&
                 !memcmp(rkm->payload, value, rkm->len);
        if (!ok) {
            fprintf(stderr,
                    "broker_probe: record %d: expected %s at offset %" PRId64
                    ", got offset %" PRId64 " (%s)\n",
                    got, value, hi + got, rkm->offset, rkm->err ? rd_kafka_err2str(rkm->err) : "");
            rd_kafka_message_destroy(rkm);
            goto out;
        }
        got++;
        rd_kafka_message_destroy(rkm);
    }
    double ms = (now_s() - t0) * 1000.0;
    if (got < count) {
        fprintf(stderr, "broker_probe: read %d of %d records\n", got, count);
        goto out;
    }
    /* nothing more may come: a record seen twice would show here */
    rd_kafka_message_t *rkm = rd_kafka_consume_queue(rkq, 300);
    if (rkm) {
        fprintf(stderr, "broker_probe: a record after the last: offset %" PRId64 "\n", rkm->offset);
        rd_kafka_message_destroy(rkm);
        goto out;
    }
    printf("read %d message sets of one record, in order and once each, in %.1f ms\n", count, ms);
    rc = 0;
out:
    if (rkq) {
        rd_kafka_queue_destroy(rkq);
    }
    rd_kafka_consumer_close(crk);
    rd_kafka_destroy(crk);
    rd_kafka_destroy(prk);
    return rc;
}

int main(int argc, char **argv)
{
    es_config_t cfg;
    char errstr[512];
    if (es_config_init(&cfg, errstr, sizeof(errstr)) != 0) {
        fprintf(stderr, "broker_probe: %s\n", errstr);
        return 2;
    }
    if (argc >= 4 && !strcmp(argv[1], "produce")) {
        return produce(&cfg, argv[2], atol(argv[3]), argc > 4 ? (size_t)atol(argv[4]) : 100,
                       argc > 5 ? atoi(argv[5]) : -1);
    }
    if (argc >= 3 && !strcmp(argv[1], "dump")) {
        return dump(&cfg, (const char *const *)argv + 2, (size_t)argc - 2, 1);
    }
    if (argc >= 3 && !strcmp(argv[1], "count")) {
        return dump(&cfg, (const char *const *)argv + 2, (size_t)argc - 2, 0);
    }
    if (argc == 3 && !strcmp(argv[1], "watermarks")) {
        return watermarks(&cfg, argv[2]);
    }
    if (argc == 4 && !strcmp(argv[1], "latency")) {
        return latency(&cfg, argv[2], atoi(argv[3]));
    }
    if (argc == 5 && !strcmp(argv[1], "wait")) {
        return wait_rounds(&cfg, argv[2], atoi(argv[3]), atoi(argv[4]));
    }
    if (argc == 4 && !strcmp(argv[1], "sets")) {
        return sets(&cfg, argv[2], atoi(argv[3]));
    }
    fprintf(stderr, "usage: broker_probe produce TOPIC COUNT [VALUE_SIZE [PARTITION]]\n"
                    "       broker_probe dump TOPIC...\n"
                    "       broker_probe count TOPIC...\n"
                    "       broker_probe watermarks TOPIC\n"
                    "       broker_probe latency TOPIC ROUNDS\n"
                    "       broker_probe wait TOPIC ROUNDS WAIT_MS\n"
                    "       broker_probe sets TOPIC COUNT\n");
    return 2;
}
