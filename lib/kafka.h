/*
 * kafka.h: librdkafka handles configured the same way in every program: bootstrap servers
 * from es_config, the tuning the dev broker needs for low latency (see the README), then every
 * pass-through property (-X / ES_KAFKA_PROPS) last, so an operator can override anything.
 */
#ifndef ES_KAFKA_H
#define ES_KAFKA_H

#include <librdkafka/rdkafka.h>

#include "config.h"

/* An idempotent producer (acks=all, ordered per partition, linger 0.5 ms).
 * `dr_cb` may be NULL. Returns NULL with errstr filled. Use rd_kafka_destroy(). */
rd_kafka_t *es_kafka_producer_new(es_config_t *cfg, const char *client_id,
                                  void (*dr_cb)(rd_kafka_t *, const rd_kafka_message_t *, void *),
                                  void *opaque, char *errstr, size_t errstr_size);

/* A consumer. With a non-NULL `group_id` it joins that group (the caller subscribes and
 * provides `rebalance_cb`); offsets are never committed to Kafka and auto.offset.reset=error,
 * so a position that fell out of the log is an error, never a silent skip.
 * librdkafka 2.0 refuses rd_kafka_assign() on a consumer without group.id: a reader that only
 * assigns must still pass a private group id (it never subscribes nor commits, so no group
 * forms). Without any group the handle is good for metadata only. `flags`:
 * ES_CONSUMER_PARTITION_EOF: the consumer reports reaching the end of each partition
 * (RD_KAFKA_RESP_ERR__PARTITION_EOF), as services with timers need (lib/service.h);
 * ES_CONSUMER_BACKGROUND: a watcher no saga waits on, whose fetches are answered when 64 KiB
 * of records came or 25 ms went by. ES_KAFKA_PROPS overrides either. Returns NULL with
 * errstr. */
enum { ES_CONSUMER_PARTITION_EOF = 1, ES_CONSUMER_BACKGROUND = 2 };
rd_kafka_t *es_kafka_consumer_new(es_config_t *cfg, const char *client_id, const char *group_id,
                                  void (*rebalance_cb)(rd_kafka_t *, rd_kafka_resp_err_t,
                                                       rd_kafka_topic_partition_list_t *, void *),
                                  void *opaque, int flags, char *errstr, size_t errstr_size);

/* Partition count of `topic` from the cluster's metadata, or -1 with errstr. */
/* Learn where every topic the cluster has is led, so that a producer's first record to a
 * topic does not wait for a metadata round trip of its own (on the dev broker the first
 * lookup of a topic can take most of a second). Keeps a handle on each topic in *rkts (new
 * array, *cnt entries; release with es_kafka_topics_release). Best effort: returns 0, or -1
 * with errstr when the cluster did not answer within timeout_ms (nothing to release then). */
int es_kafka_topics_warm(rd_kafka_t *rk, int timeout_ms, rd_kafka_topic_t ***rkts, size_t *cnt,
                         char *errstr, size_t errstr_size);
void es_kafka_topics_release(rd_kafka_topic_t **rkts, size_t cnt);

int es_kafka_partition_count(rd_kafka_t *rk, const char *topic, int timeout_ms, char *errstr,
                             size_t errstr_size);

/* The partition of `partition_cnt` a record with this (non-empty) key goes to: what the
 * producers' partitioner (murmur2_random, as Java clients hash) chooses for it. */
int32_t es_kafka_key_partition(const void *key, size_t key_len, int32_t partition_cnt);

#endif
