/*
 * outbox.h: how one transaction's emitted records are stored in its outbox row. A service
 * writes every record of a batch into one `records` value (one row, one index entry, and one
 * compressed TOAST value per batch instead of one row per record), and the relay reads them
 * back in the same order.
 *
 * Layout, per record: u8 topic length, topic, NUL; i32 key length (-1: null key), key;
 * u32 value length, value; i32 headers length (-1: none, the relay rebuilds them from the
 * envelope at the front of the value), headers. Integers are big-endian. A record that must
 * go to one partition (one its own service already handled, see loop_back in service.h) is
 * led by a pin: u8 0xff (no topic name is that long), u32 partition.
 */
#ifndef ES_OUTBOX_H
#define ES_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Topic names longer than this are not valid Kafka topic names anyway. */
#define ES_OUTBOX_TOPIC_MAX 249

/* One record, borrowed from the blob it was read from. */
typedef struct es_outbox_record {
    const char *topic; /* NUL-terminated */
    const void *key;   /* NULL: a null key */
    size_t key_len;
    const void *value;
    size_t value_len;
    const void *headers; /* NULL: none stored */
    size_t headers_len;
    int32_t partition; /* -1: the producer's partitioner chooses (by key) */
} es_outbox_record_t;

/* Append a record to `blob` (everything copied). `key` NULL means a null key; `headers` NULL
 * means none stored. Returns 0, or -1 when out of memory or the topic name is too long. */
int es_outbox_append(es_buf_t *blob, const char *topic, const void *key, size_t key_len,
                     const void *value, size_t value_len, const void *headers, size_t headers_len);

/* Pin the next record appended to `partition` (>= 0). Returns 0, or -1 when out of memory. */
int es_outbox_pin(es_buf_t *blob, int32_t partition);

/* Read the record at `*pos` in `blob` into `rec` (pointing into `blob`) and move `*pos` past
 * it. Returns 1 for a record, 0 at the end, -1 when the bytes are not a valid record. */
int es_outbox_next(const unsigned char *blob, size_t len, size_t *pos, es_outbox_record_t *rec);

#endif
