/*
 * service_int.h: what lib/service.c (the loop) and lib/batch.c (one batch's transaction) share.
 * Private to lib/: services see service.h only.
 */
#ifndef ES_SERVICE_INT_H
#define ES_SERVICE_INT_H

#include "caught_up.h"
#include "pressure.h"
#include "relay.h"
#include "service.h"
#include "window.h"

#define MAX_POSITIONS 512
#define MAX_TOPICS 32 /* input topics of a service that can loop back (more: no loop-back) */

typedef struct position {
    const char *topic; /* borrowed from def->topics (or the raw record, for a topic not there) */
    int32_t partition;
    int64_t next_offset;
    int64_t high_watermark;
    int64_t part;      /* es_dedup_part() */
    int64_t newest_ms; /* the newest occurred_at handled from it (dedup.h), 0: not known */
} position_t;

/* A dead letter that waits for its dedup mark (batch.c): one a redone batch, or a record read
 * again, must not write twice. */
typedef struct dead_letter {
    const es_raw_t *raw;
    const char *reason; /* in the batch's arena */
    char id[ES_ID_LEN + 1];
    int64_t part, at_ms; /* the mark's key, with id (dedup.h) */
} dead_letter_t;

struct es_service {
    const es_service_def_t *def;
    es_config_t *cfg;
    es_codec_t *codec;
    int own_codec;
    int offline;
    int64_t dedup_window_ms; /* dedup.h */
    PGconn *pg;
    rd_kafka_t *consumer;
    es_relay_t *relay;

    /* current batch */
    es_input_t *inputs;
    size_t input_cnt, input_cap;
    position_t pos[MAX_POSITIONS];
    size_t pos_cnt;
    es_pg_array_t ids;         /* uuid[] for dedup */
    es_pg_array_t parts;       /* bigint[]: each input's partition id (dedup.h) */
    es_pg_array_t times;       /* bigint[]: each input's occurred_at */
    es_pg_array_t batch_parts; /* bigint[]: the batch's partition ids */
    int64_t pruned;            /* dedup rows deleted since the last stats line */
    /* the newest time handled per partition (dedup.h), as of the last batch prepared, so a
     * batch need not read it; emptied whenever a batch fails or partitions move */
    struct {
        int64_t part, newest_ms;
    } newest[MAX_POSITIONS];
    size_t newest_cnt;
    es_pg_pipeline_t pl; /* the batch's statements */
    es_pg_pipeline_t rl; /* its first round trip: BEGIN, dedup, the handler's reads */
    es_buf_t ob_records; /* the batch's emitted records: its outbox row (outbox.h) */
    size_t ob_count;
    int ob_failed;       /* a record or an input could not be kept: the batch fails */
    dead_letter_t *dead; /* the batch's dead letters waiting for their marks */
    size_t dead_cnt, dead_cap;
    int ob_idx;              /* the outbox insert's place in the pipeline, or -1 */
    int64_t ob_seq;          /* the seq the insert returned, or -1 */
    const es_raw_t *decoded; /* the raws the working state was decoded from */
    /* Set while pos[] holds the positions of batches that held only records the service
     * ignores: they committed nothing, and their positions go with the next batch that
     * commits (see the loop in service.c) */
    int carry;
    int64_t carry_since_us;
    /* The linger (see the loop in service.c): under CPU pressure and a steady stream, a small
     * batch waits up to linger_us (at most linger_ms, more the higher the pressure) for more
     * records before it goes */
    int linger_ms;       /* from the configuration (def->background: its own); 0: never */
    size_t linger_below; /* only batches smaller than this linger */
    int64_t linger_us;   /* as of the last sample; 0: batches go at once */
    es_pressure_t pressure;
    double pressure_followed; /* es_pressure_follow() of the samples (linger_update); <0: none */
    int64_t rate_at_us;       /* records polled since then, for the rate */
    int64_t rate_records;
    int64_t lingered; /* batches that waited, this stats window */
    /* the loop-back (def->loop_back, batch.c): the partition count of each input topic
     * (def->topics order; 0: not known, nothing loops back to it), and the events emitted by
     * the current round of the handler that it will handle in the next */
    int32_t topic_parts[MAX_TOPICS];
    int looping; /* the handler is running a round that may loop back */
    int round;   /* es_service_round() */
    es_input_t *loop;
    size_t loop_cnt, loop_cap;
    int64_t looped;             /* inputs handled that way, this stats window */
    int64_t loop_reads_skipped; /* loop-back rounds that read nothing, this stats window */
    int64_t rested; /* µs a background service rested on a backlog, this stats window */

    /* the batch whose writes and COMMIT are on their way while the next one is decoded */
    struct {
        const es_raw_t *raws;
        rd_kafka_message_t **msgs; /* destroyed once it committed */
        size_t cnt;
        int64_t start_us;
        es_buf_t records; /* its outbox row, for the relay once committed */
        size_t ob_count;
        int ob_idx;
    } pend;
    es_window_t win;          /* batches since the last stats line */
    int64_t age_sum, age_max; /* ms records waited before their batch, this window */
    int64_t ignored;          /* records in batches that committed nothing, this window */
    int64_t batches, records;
    es_buf_t scratch;
    es_arena_t arena; /* the handler's memory for one batch */

    /* the assigned partitions the consumer has not yet read to their end since they were
     * assigned (NULL: no assignment); timers wait until it is empty (see tick in service.h) */
    rd_kafka_topic_partition_list_t *unread;
    /* for timers (caught_up.h): the partitions assigned (NULL: none; an instance with none has
     * read nothing: no timers), whether they are every partition of the input topics, and how
     * many those have in all (-1: not known) */
    rd_kafka_topic_partition_list_t *assignment;
    int sole;
    int parts_total;
    int64_t recount_us; /* when to count the partitions again, if parts_total is not known */
    /* the group's caught-up time for the tick running (caught_up.h); its time is empty when
     * this instance reads every partition, so its own "now" is the group's */
    es_caught_up_t caught_up;
    int64_t caught_up_unknown_us; /* since when it has not been known (0: it is) */
    int64_t assigned_us;          /* when the partitions were assigned */
    int64_t caught_up_said_us[2]; /* when the log last said it held the timers back [known] */

    int fatal;
    /* set by the rebalance callback, which runs inside a poll: the records in hand were read
     * under the assignment before it (see drop_moved in service.c) */
    int rebalanced;
    /* where batches spent their time since the last stats line: decoding, the first round
     * trip (BEGIN, dedup), the handler (its reads and decisions), the writes and COMMIT */
    struct {
        int64_t decode_us, begin_us, handle_us, commit_us;
    } spent;
};

/* Forget the newest times kept in memory: the next batch reads them from positions. */
void es_batch_forget_newest(es_service_t *svc);

/* Drop the inputs of the batch in hand (their payloads are released). */
void es_batch_inputs_clear(es_service_t *svc);

/* Drop the events kept for the handler's next loop-back round (their payloads are released). */
void es_batch_loop_clear(es_service_t *svc);

/* Decode a batch into the working state (inputs, positions). No database work: it can overlap
 * the previous batch's COMMIT. */
void es_batch_decode(es_service_t *svc, const es_raw_t *raws, size_t cnt);

/* Decode raws[from..cnt) into the batch es_batch_decode() began with raws[0..from): records
 * polled while the previous batch committed, or while this one lingered. */
void es_batch_decode_more(es_service_t *svc, const es_raw_t *raws, size_t from, size_t cnt);

/* The decoded batch up to its last round trip, which is left queued on svc->pl: [BEGIN,
 * begin_sql,] the dedup insert; the handler (its reads, its decisions, its writes queued); then
 * the outbox row, the positions[, COMMIT] queued. Returns 0, or -1 with errstr (roll back). */
int es_batch_prepare(es_service_t *svc, PGconn *pg, int own_tx, char *errstr, size_t errstr_size);

/* The seq the outbox insert at pipeline index `idx` returned, or -1. */
int64_t es_batch_outbox_seq(const es_service_t *svc, int idx);

/* Delete up to `limit` dedup rows that the window no longer needs (dedup.h), in a
 * transaction of its own. Returns how many, or -1 with errstr. */
int es_batch_prune(es_service_t *svc, PGconn *pg, int limit, char *errstr, size_t errstr_size);

/* One timer tick (def->tick) in a transaction of its own, committed. Returns 0 (svc->ob_seq
 * set), or -1 with errstr (the transaction must be rolled back). */
int es_batch_tick(es_service_t *svc, PGconn *pg, char *errstr, size_t errstr_size);

/* A whole batch, waiting for its last round trip (svc->ob_seq is set). With own_tx the
 * transaction is opened and committed; otherwise the caller owns it. Returns 0 or -1. */
int es_batch_apply(es_service_t *svc, PGconn *pg, const es_raw_t *raws, size_t cnt, int own_tx,
                   char *errstr, size_t errstr_size);

#endif
