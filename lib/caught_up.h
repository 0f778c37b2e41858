/*
 * caught_up.h: up to when a consumer group has read its topics, for timers that must not fire
 * on work whose end is still unread somewhere in the group (service.h's tick: the saga
 * coordinator's deadlines).
 *
 * An instance's timer runs only once it has read its own partitions to their end. With several
 * instances that is not enough: a saga whose start one instance read may end in a partition
 * another one owns, and that one may be stalled, restarting or catching up. So an instance
 * that has read its partitions to their end notes, per partition, that it read it up to now
 * (<schema>.caught_up), and the group has read everything up to the oldest of those times over
 * every partition of the topics it reads: its "caught-up time" (an event-time watermark, in
 * stream processing's words). Until every partition has a row, it is unknown. A stalled
 * instance holds its partitions' times back, so a deadline counts as passed only once every
 * partition was read past it; a partition that moves keeps the time its last owner read it to,
 * until the new owner has read it to its end.
 */
#ifndef ES_CAUGHT_UP_H
#define ES_CAUGHT_UP_H

#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

/* The table, in the service's schema (the search path). */
#define ES_CAUGHT_UP_DDL                                                                           \
    "CREATE TABLE IF NOT EXISTS caught_up (topic text NOT NULL, partition int NOT NULL, "          \
    "at timestamptz NOT NULL, PRIMARY KEY (topic, partition));"

/* What a mark found. */
typedef struct es_caught_up {
    char at[64];      /* the group's caught-up time, PostgreSQL timestamptz text ("" unknown) */
    int rows, total;  /* partitions that have a time, of how many (-1: not known) */
    int64_t lag_ms;   /* how long ago the oldest of those times was */
    char oldest[320]; /* the partition with the oldest time, "topic/partition" */
} es_caught_up_t;

/* In the caller's transaction: note that the partitions `mine` (borrowed) were read to their
 * end now, and compute the group's caught-up time over every partition of `topics`
 * (NULL-terminated, borrowed; `total` partitions in all, or -1 when not known) into *out
 * (caller storage). Returns 1 when the time is known, 0 when some partition has no time yet
 * (or `total` is not known), or -1 with errstr. */
int es_caught_up_mark(PGconn *pg, const rd_kafka_topic_partition_list_t *mine,
                      const char *const *topics, int total, es_caught_up_t *out, char *errstr,
                      size_t errstr_size);

/* Timers held back this long by one partition (or by partitions with no time) are logged. */
#define ES_CAUGHT_UP_SLOW_MS 3000

#endif
