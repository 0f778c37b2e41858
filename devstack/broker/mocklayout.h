/*
 * mocklayout.h: where librdkafka 2.0.2's mock cluster keeps a partition's message sets, for the
 * files that read them in the mock's own thread (fill.c, memjournal.c).
 *
 * The offsets are those of that one library build (x86-64, LP64). Nothing here is used before
 * fill.c has checked them against the partitions the broker created (broker_fill_setup), and
 * only the mock's thread, which appends to and trims the lists, follows them afterwards.
 */
#ifndef ES_BROKER_MOCKLAYOUT_H
#define ES_BROKER_MOCKLAYOUT_H

#include <stdint.h>
#include <string.h>

/* rd_kafka_mock_partition_t, bytes from its start */
#define PART_ID 16       /* int32_t id */
#define PART_MSGSETS 64  /* TAILQ_HEAD msgsets: its first element, then tqh_last */
#define PART_MAX_SIZE 96 /* size_t max_size: where window.c found the limits */
#define PART_TOPIC 200   /* rd_kafka_mock_topic_t *topic */
#define PART_STRUCT 208  /* sizeof, the stride of a topic's partitions array */
/* rd_kafka_mock_topic_t */
#define TOPIC_NAME 16     /* char *name */
#define TOPIC_PARTS 24    /* rd_kafka_mock_partition_t *partitions */
#define TOPIC_PART_CNT 32 /* int partition_cnt */
/* rd_kafka_mock_msgset_t */
#define MSET_NEXT 0   /* TAILQ_ENTRY link: the next element, */
#define MSET_PREV 8   /* where the previous one's MSET_NEXT is (the element itself) */
#define MSET_FIRST 16 /* int64_t first_offset */
#define MSET_LAST 24  /* int64_t last_offset */
#define MSET_LEN 32   /* rd_kafkap_bytes_t bytes: int32_t len */
#define MSET_DATA 40  /* and const void *data */

/* The pointer stored at `at` (unaligned reads are fine on x86-64; memcpy says so portably). */
static inline const unsigned char *mock_ptr_at(const unsigned char *at)
{
    const unsigned char *p;
    memcpy(&p, at, sizeof(p));
    return p;
}

static inline int64_t mock_i64_at(const unsigned char *at)
{
    int64_t v;
    memcpy(&v, at, sizeof(v));
    return v;
}

/* A partition's list head; its elements run from mock_first() to the head itself. */
static inline const unsigned char *mock_head(const unsigned char *mpart)
{
    return mpart + PART_MSGSETS;
}

/* The newest message set, or the head when the list is empty (tqh_last points at the last
 * element's "next" field, which is where that element starts, or at the head's first). */
static inline const unsigned char *mock_last(const unsigned char *mpart)
{
    return mock_ptr_at(mock_head(mpart) + sizeof(void *));
}

static inline const unsigned char *mset_next(const unsigned char *m)
{
    return mock_ptr_at(m + MSET_NEXT);
}

/* The one before `m`, or the head when `m` is the oldest. */
static inline const unsigned char *mset_prev(const unsigned char *m)
{
    return mock_ptr_at(m + MSET_PREV);
}

static inline int64_t mset_first(const unsigned char *m)
{
    return mock_i64_at(m + MSET_FIRST);
}

static inline int64_t mset_last(const unsigned char *m)
{
    return mock_i64_at(m + MSET_LAST);
}

static inline int32_t mset_len(const unsigned char *m)
{
    int32_t v;
    memcpy(&v, m + MSET_LEN, sizeof(v));
    return v;
}

static inline const unsigned char *mset_data(const unsigned char *m)
{
    return mock_ptr_at(m + MSET_DATA);
}

#endif
