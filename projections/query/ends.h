/*
 * ends.h: the end of every partition of the log (its high watermark), read from Kafka by a
 * thread of its own, for the lag figures of /metrics.
 *
 * The consumers store their positions in PostgreSQL with their effects, and with them the
 * end each one last saw; a stopped consumer's figure stops there. The lags of /metrics are
 * measured against the larger of that and what this thread read. It reads only while someone
 * looks: at once when /metrics asks after a pause, then every ES_QUERY_ENDS_EVERY_MS for as
 * long as /metrics was asked within ES_QUERY_ENDS_WANTED_MS (a scraper every 15 s keeps it
 * reading; at rest it sends the broker nothing). The HTTP loop never waits for Kafka: it
 * takes the last ends read, and their age goes out as es_log_ends_age_seconds.
 */
#ifndef ES_QUERY_ENDS_H
#define ES_QUERY_ENDS_H

#include <stdint.h>

#include "buf.h"
#include "config.h"

#define ES_QUERY_ENDS_EVERY_MS 2000
#define ES_QUERY_ENDS_WANTED_MS 60000

typedef struct es_query_ends es_query_ends_t;

/* Start reading the ends of the cluster `cfg` names (borrowed; its brokers are resolved now).
 * Returns NULL with errstr when there is no broker address or no handle could be made. */
es_query_ends_t *es_query_ends_start(es_config_t *cfg, char *errstr, size_t errstr_size);

/* /metrics was asked: read now if the last ends are older than ES_QUERY_ENDS_EVERY_MS, and go
 * on reading for ES_QUERY_ENDS_WANTED_MS. Never blocks on Kafka. */
void es_query_ends_want(es_query_ends_t *ends);

/* The last ends read, as three PostgreSQL array literals (topics, partitions, ends, in the
 * same order) written into the caller's buffers (reset first, NUL-terminated). Returns their
 * age in milliseconds, or -1 when none were read yet (the arrays are then empty). `ends` may
 * be NULL (empty arrays, -1). Returns -2 when out of memory. */
int64_t es_query_ends_literals(es_query_ends_t *ends, es_buf_t *topics, es_buf_t *parts,
                               es_buf_t *highs);

/* Stop the thread (waiting for a read in progress, at most its timeouts) and free
 * everything. NULL is a no-op. */
void es_query_ends_stop(es_query_ends_t *ends);

#endif
