/*
 * logreader.h: read the complete history of topics, in order per partition, from the journal
 * (the archive tier) and then from the broker, never disturbing any consumer group
 * (it assigns partitions itself and commits nothing).
 *
 * For each partition it reads the journal from the requested start offset for as long as the
 * journal has records, then continues from the broker at the next offset. Against real Kafka
 * (no journal folder) it reads the broker only. If a record it needs is neither in the journal
 * nor in the broker (below the low watermark), reading fails with a clear error: a gap is never
 * skipped silently.
 */
#ifndef ES_LOGREADER_H
#define ES_LOGREADER_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "journal.h"

typedef struct es_logreader es_logreader_t;

typedef struct es_logreader_msg {
    const char *topic; /* borrowed */
    int32_t partition;
    es_journal_record_t rec; /* borrowed until the next call */
} es_logreader_msg_t;

/* Start offset rules. */
#define ES_LOGREADER_FROM_BEGINNING 0

/* Open a reader over `topics` (borrowed array of topic_cnt names), all partitions, starting at
 * `from_offset` in every partition (0 = the beginning), or at the first record with
 * timestamp >= from_time_ms when from_time_ms > 0. With `follow`, _next() waits for new records
 * instead of reporting the end. Returns NULL with errstr filled. */
es_logreader_t *es_logreader_new(es_config_t *cfg, const char *const *topics, size_t topic_cnt,
                                 int64_t from_offset, int64_t from_time_ms, int follow,
                                 char *errstr, size_t errstr_size);

/* The end of the log as it was when the reader was opened: the sum over partitions of
 * (high watermark - start offset). For progress bars. */
int64_t es_logreader_total(const es_logreader_t *lr);

/* Next record, in offset order within each partition (partitions are interleaved).
 * Returns 1 with *msg filled, 0 when every partition reached the end captured at open time
 * (never with follow), -1 on error (errstr filled). `timeout_ms` bounds one wait in follow
 * mode (0 then means "nothing yet": call again). */
int es_logreader_next(es_logreader_t *lr, es_logreader_msg_t *msg, int timeout_ms, char *errstr,
                      size_t errstr_size);

void es_logreader_destroy(es_logreader_t *lr);

#endif
