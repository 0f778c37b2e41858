/*
 * kafka.c: producer and consumer construction shared by every program (see kafka.h).
 */
#include "kafka.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devgate.h"

static int conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *errstr,
                    size_t errstr_size)
{
    char err[256];
    if (rd_kafka_conf_set(conf, name, value, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
        snprintf(errstr, errstr_size, "could not set Kafka property %s=%s: %s", name, value, err);
        return -1;
    }
    return 0;
}

/* Common settings, then the operator's pass-through properties. */
static rd_kafka_conf_t *conf_base(es_config_t *cfg, const char *client_id, const char *const *pairs,
                                  const char *const *more, char *errstr, size_t errstr_size)
{
    const char *brokers = es_config_brokers(cfg, errstr, errstr_size);
    if (!brokers) {
        return NULL;
    }
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (cfg->brokers_from_file) {
        es_devgate_install(conf, cfg->data_dir); /* the dev stack's broker, and no other */
    }
    if (conf_set(conf, "bootstrap.servers", brokers, errstr, errstr_size) != 0 ||
        conf_set(conf, "client.id", client_id, errstr, errstr_size) != 0) {
        goto err;
    }
    for (size_t i = 0; pairs[i]; i += 2) {
        if (conf_set(conf, pairs[i], pairs[i + 1], errstr, errstr_size) != 0) {
            goto err;
        }
    }
    for (size_t i = 0; more && more[i]; i += 2) {
        if (conf_set(conf, more[i], more[i + 1], errstr, errstr_size) != 0) {
            goto err;
        }
    }
    for (size_t i = 0; i < cfg->prop_cnt; i++) {
        if (conf_set(conf, cfg->prop_names[i], cfg->prop_values[i], errstr, errstr_size) != 0) {
            goto err;
        }
    }
    return conf;
err:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

rd_kafka_t *es_kafka_producer_new(es_config_t *cfg, const char *client_id,
                                  void (*dr_cb)(rd_kafka_t *, const rd_kafka_message_t *, void *),
                                  void *opaque, char *errstr, size_t errstr_size)
{
    /* linger.ms 0.5: what arrives together leaves together. librdkafka waits for a linger in
     * whole milliseconds, so a record at rest waits ~1 ms a hop; linger 0 took that away (a
     * transfer visible at rest in 12 ms instead of 18, p50) but made more, smaller requests
     * and message sets, and at 1,000 transfers/s it cost more than it gave (bench, alternated
     * runs: p99 median 118 ms against 94, 7,401 transfers/s against 7,580). Linger 0 was far
     * slower still before the dev broker set TCP_NODELAY. The outbox relay's fast path does
     * not wait for the linger: it flushes each step (lib/relay.c). */
    static const char *const pairs[] = {
        "enable.idempotence", "true", "acks", "all", "linger.ms", "0.5", "batch.num.messages",
        "10000", "queue.buffering.max.messages", "1000000", "message.timeout.ms", "30000",
        /* the partitioner Java clients use: keys land on the
         * same partitions whichever client wrote them */
        "partitioner", "murmur2_random", "socket.nagle.disable", "true", NULL};
    rd_kafka_conf_t *conf = conf_base(cfg, client_id, pairs, NULL, errstr, errstr_size);
    if (!conf) {
        return NULL;
    }
    if (dr_cb) {
        rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    }
    rd_kafka_conf_set_opaque(conf, opaque);
    char err[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (!rk) {
        snprintf(errstr, errstr_size, "could not create Kafka producer: %s", err);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return rk;
}

rd_kafka_t *es_kafka_consumer_new(es_config_t *cfg, const char *client_id, const char *group_id,
                                  void (*rebalance_cb)(rd_kafka_t *, rd_kafka_resp_err_t,
                                                       rd_kafka_topic_partition_list_t *, void *),
                                  void *opaque, int flags, char *errstr, size_t errstr_size)
{
    /* A fetch with nothing to return waits up to fetch.wait.max.ms and is answered as soon as
     * records arrive (Kafka does that, and so does the dev broker: devstack/broker/longpoll.c),
     * so the wait costs no latency: it only bounds how often an idle consumer asks, and how
     * long a seek or a new assignment waits for the fetch in flight.
     * A session timeout under 6 s never forms a group on the dev broker. */
    static const char *const pairs[] = {"enable.auto.commit",
                                        "false",
                                        "enable.auto.offset.store",
                                        "false",
                                        "auto.offset.reset",
                                        "error",
                                        "fetch.wait.max.ms",
                                        "100",
                                        "fetch.error.backoff.ms",
                                        "10",
                                        "queued.min.messages",
                                        "200000",
                                        "queued.max.messages.kbytes",
                                        "262144",
                                        "session.timeout.ms",
                                        "6000",
                                        "heartbeat.interval.ms",
                                        "1000",
                                        "socket.nagle.disable",
                                        "true",
                                        NULL};
    /* A watcher nothing waits on takes its records in fewer, bigger fetch answers: the broker
     * answers when 64 KiB reached its partitions or 25 ms went by, instead of at every produce
     * (the dev broker counts MinBytes as Kafka does: devstack/broker/longpoll.c). */
    static const char *const background[] = {"fetch.min.bytes", "65536", "fetch.wait.max.ms", "25",
                                             NULL};
    rd_kafka_conf_t *conf =
        conf_base(cfg, client_id, pairs, (flags & ES_CONSUMER_BACKGROUND) ? background : NULL,
                  errstr, errstr_size);
    if (!conf) {
        return NULL;
    }
    if ((group_id && conf_set(conf, "group.id", group_id, errstr, errstr_size) != 0) ||
        ((flags & ES_CONSUMER_PARTITION_EOF) &&
         conf_set(conf, "enable.partition.eof", "true", errstr, errstr_size) != 0)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    if (rebalance_cb) {
        rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    }
    rd_kafka_conf_set_opaque(conf, opaque);
    char err[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (!rk) {
        snprintf(errstr, errstr_size, "could not create Kafka consumer: %s", err);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    if (group_id) {
        rd_kafka_poll_set_consumer(rk);
    }
    return rk;
}

int es_kafka_partition_count(rd_kafka_t *rk, const char *topic, int timeout_ms, char *errstr,
                             size_t errstr_size)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
    rd_kafka_topic_destroy(rkt);
    if (err) {
        snprintf(errstr, errstr_size, "could not read metadata of topic \"%s\": %s", topic,
                 rd_kafka_err2str(err));
        return -1;
    }
    int cnt = -1;
    if (md->topic_cnt == 1 && !md->topics[0].err) {
        cnt = md->topics[0].partition_cnt;
    } else {
        snprintf(errstr, errstr_size, "topic \"%s\" does not exist: %s", topic,
                 md->topic_cnt ? rd_kafka_err2str(md->topics[0].err) : "no metadata");
    }
    rd_kafka_metadata_destroy(md);
    return cnt;
}

int es_kafka_topics_warm(rd_kafka_t *rk, int timeout_ms, rd_kafka_topic_t ***rkts, size_t *cnt,
                         char *errstr, size_t errstr_size)
{
    *rkts = NULL;
    *cnt = 0;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms);
    if (err) {
        snprintf(errstr, errstr_size, "could not read the cluster's metadata: %s",
                 rd_kafka_err2str(err));
        return -1;
    }
    rd_kafka_topic_t **out = calloc(md->topic_cnt ? (size_t)md->topic_cnt : 1, sizeof(*out));
    size_t n = 0;
    for (int i = 0; out && i < md->topic_cnt; i++) {
        if (md->topics[i].err || md->topics[i].topic[0] == '_') {
            continue;
        }
        /* a new handle takes its partitions' leaders from the metadata just cached */
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, md->topics[i].topic, NULL);
        if (rkt) {
            out[n++] = rkt;
        }
    }
    rd_kafka_metadata_destroy(md);
    *rkts = out;
    *cnt = n;
    return 0;
}

void es_kafka_topics_release(rd_kafka_topic_t **rkts, size_t cnt)
{
    for (size_t i = 0; i < cnt; i++) {
        rd_kafka_topic_destroy(rkts[i]);
    }
    free(rkts);
}

int32_t es_kafka_key_partition(const void *key, size_t key_len, int32_t partition_cnt)
{
    /* the keyed half of murmur2_random; it reads neither the topic nor the opaques */
    return rd_kafka_msg_partitioner_murmur2(NULL, key, key_len, partition_cnt, NULL, NULL);
}
