/*
 * service.h: the runtime every service and projector runs on. It owns the exactly-once loop:
 *
 *   1. take whatever records are waiting (up to max_batch; never waits to fill a batch),
 *   2. decode them; a record that cannot be decoded or validated goes to <context>.dlq with
 *      the reason (through the outbox, like any emitted record),
 *   3. BEGIN; record the inputs' marks (partition, occurred_at, event id: a copy has the same
 *      three) in <schema>.processed, which drops duplicates (the broker can append a record
 *      twice; the outbox can republish after a crash); the
 *      handler's reads (its load hook) travel in the same round trip. An input older than
 *      the dedup window allows goes to the dead-letter topic; old marks are deleted between
 *      batches (dedup.h),
 *   4. call the service's handler with the new inputs: it takes the state it loaded, applies
 *      its pure decide/evolve functions, writes the state and emits events (a service that
 *      consumes its own events may handle them at once, in the same transaction: loop_back);
 *      the dead letters step 3 does not already cover (records that could not be decoded,
 *      and an idempotent handler's) get marks of their own, so a batch redone after a lost
 *      COMMIT answer, or records read again, never write one twice (one more round trip, only
 *      in a batch that has such a dead letter),
 *   5. insert the emitted records into <schema>.outbox (one row holding them all, outbox.h),
 *      store the next offset of every partition in <schema>.positions, COMMIT: effects, dedup
 *      marks, outbox and positions are one transaction, so a crash anywhere leaves either all
 *      of them or none,
 *   6. the relay (relay.c, a thread with its own connection and idempotent producer) publishes
 *      the committed rows and deletes them once Kafka acknowledged them: straight from memory
 *      when this instance handles every partition (the batch is handed over after COMMIT),
 *      otherwise by reading them back in seq order (see relay.h).
 * Steps 3 and 5 are pipelined: a batch costs two round trips to PostgreSQL whatever its size
 * (a handler whose reads depend on other reads adds its own), and while step 5 travels the
 * next batch is polled and decoded (steps 1-2).
 *
 * Positions come from <schema>.positions when partitions are assigned, never from the
 * broker's group offsets. A position the broker no longer holds (it keeps a window) is read
 * from the dev broker's journal, the archive tier, the ordinary way, and the service then goes
 * on from the broker; with no journal (real Kafka) the service stops with a clear error rather
 * than skip records. Only one instance of a service relays at a time (a PostgreSQL
 * advisory lock), so the events of one aggregate reach Kafka in the order they were committed
 * even with several instances running in one consumer group.
 */
#ifndef ES_SERVICE_H
#define ES_SERVICE_H

#include <jansson.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <stdint.h>

#include "arena.h"
#include "codec.h"
#include "config.h"
#include "envelope.h"
#include "pg.h"

typedef struct es_service es_service_t;
struct es_raw;

/* One decoded input record. Everything is owned by the runtime and valid during the handler
 * call only. */
typedef struct es_input {
    const char *topic;
    int32_t partition;
    int64_t offset;
    es_envelope_t env;
    const es_type_t *type;
    json_t *payload;
    const struct es_raw *raw; /* the record as received (for dead-lettering it unchanged) */
} es_input_t;

typedef struct es_service_def {
    const char *name;          /* "accounts": consumer group es-accounts, log name, outbox salt */
    const char *schema;        /* PostgreSQL schema of the service's tables */
    const char *dlq_topic;     /* where undecodable inputs go, "<context>.dlq" */
    const char *const *topics; /* input topics, NULL-terminated */
    /* The service's own tables (idempotent DDL, run in the schema at start), or NULL. */
    const char *ddl;
    /* Only records whose es-type header is accepted here are decoded and handled (NULL: all).
     * Others only move the position forward. */
    int (*wants)(const char *type);
    /* SQL run right after BEGIN of every batch transaction, or NULL (the projector takes a
     * shared advisory lock here so a rebuild can swap its schema between two batches). */
    const char *begin_sql;
    /* Handle the batch's new inputs (in log order per partition) inside the open transaction.
     * Emit with es_service_emit(), dead-letter with es_service_dead_letter(). Return 0, or -1
     * with errstr filled to roll back; the batch is then retried from the stored positions
     * after a pause (the failure is logged). */
    int (*handle)(es_service_t *svc, es_input_t *inputs, size_t cnt, void *opaque, char *errstr,
                  size_t errstr_size);
    /* Optional: queue the batch's reads on `pl` (es_pg_load_rows_queue), before the inputs
     * are deduplicated, so they travel with BEGIN and the dedup insert in the batch's first
     * round trip instead of one of their own; handle() then finds their results in
     * es_service_reads(). `inputs` are all the batch's decoded inputs, duplicates included
     * (loading a row more is harmless): handle() gets the new ones only, and must match them
     * to what was loaded by key, not by position. Return 0, or -1 with errstr. */
    int (*load)(es_service_t *svc, es_pg_pipeline_t *pl, const es_input_t *inputs, size_t cnt,
                void *opaque, char *errstr, size_t errstr_size);
    void *opaque;
    int max_batch; /* 0 = default (2000) */
    /* Set when the handler is idempotent by itself (every write is guarded by a version, a
     * unique key or a terminal state, as the projector's are): the runtime then skips the
     * dedup table, one index insert per input less. Duplicates still reach the handler. */
    int idempotent;
    /* Set when the service emits nothing but dead letters and its handler is idempotent (the
     * projector): a commit lost in an OS crash is then simply redone from the positions before
     * it, so its transactions need not wait for the disk (synchronous_commit = off). Never for
     * a service whose decisions others act on. */
    int async_commit;
    /* Timers (the saga coordinator's deadlines), or NULL: called about every tick_ms (0: 250)
     * in a transaction of its own between two batches, once the batch in flight committed,
     * and only once the service has read every assigned partition to its end since it got
     * them (an instance assigned none never ticks: it has read nothing), and not while it catches
     * up on a backlog (its last poll filled a whole batch): a deadline seen to pass then may belong
     * to work whose end is still unread. With other instances in the group, also only once the
     * group's caught-up time is known (es_service_caught_up()): the work's end may be in their
     * partitions. It keeps its timers in its tables and emits with
     * es_service_emit(), with a cause of its own making; its writes and the records it emits commit
     * together, so a timer that fired is never fired again, and one that did not survives any
     * crash. Return 0, or -1 with errstr to roll back (the tick is tried again at the next one). */
    int (*tick)(es_service_t *svc, PGconn *pg, void *opaque, char *errstr, size_t errstr_size);
    int tick_ms;
    /* Set for a watcher no saga waits on (the saga coordinator): when the service lingers
     * (under CPU pressure, see the loop in service.c) its batches wait up to
     * ES_BACKGROUND_LINGER_MS, whatever their size, instead of the configured linger for small
     * ones only; and its fetches are answered when 64 KiB of records came or 25 ms went by
     * (ES_CONSUMER_BACKGROUND in kafka.h), not at every produce, at rest too; and a backlog
     * read under pressure (full batches) rests after each batch as long as the batch took, so
     * that it catches up at half speed. Fewer fetch answers and bigger, rarer transactions
     * leave the CPU to the services on the sagas' path; what it shows lags by up to 25 ms at
     * rest, and by its backlog after a burst. */
    int background;
    /* Set for a service that consumes some of the events it emits (accounts: its FundsDebited
     * is what makes it credit the destination). Such an event, when its type is one wants()
     * accepts on one of the service's input topics, is handled at once, in the transaction of
     * the input that caused it (up to ES_LOOP_ROUNDS events deep), instead of a trip through
     * Kafka and a transaction of its own later. It is still published, and to the partition
     * its key hashes to (pinned in the outbox row), and its dedup mark, written in the same
     * transaction, drops it when it comes back: the same effects, exactly once, one hop less.
     * Such an input has offset -1. */
    int loop_back;
} es_service_def_t;

#define ES_LOOP_ROUNDS 4

#define ES_BACKGROUND_LINGER_MS 100

/* Run the service until SIGINT/SIGTERM or a fatal error (Kafka position lost, schema
 * mismatch): loads configuration from `cfg` (borrowed), installs the signal handlers, creates
 * the tables. Returns 0 after a graceful stop, -1 after a fatal error (logged). */
int es_service_run(const es_service_def_t *def, es_config_t *cfg);

/* Emit a record caused by `cause` (borrowed): its envelope gets an id derived from the cause's
 * id, the service name and `index` (the n-th record emitted for that cause: keep it stable),
 * the same correlation id and trace. `payload` is validated against the type's schema and
 * stolen (decref'd by the runtime). Returns 0, or -1 with errstr (bad payload: a bug). */
int es_service_emit(es_service_t *svc, const es_input_t *cause, uint32_t index,
                    const char *type_name, const char *aggregate_id, int64_t aggregate_version,
                    json_t *payload, char *errstr, size_t errstr_size);

/* Send `input` to the dead-letter topic with `reason` instead of handling it (e.g. a valid
 * record that breaks a domain invariant that must not be silently ignored). Once per input,
 * like every effect, copies and redone batches included. Returns 0, or -1 when out of memory
 * (the batch then fails and is tried again). */
int es_service_dead_letter(es_service_t *svc, const es_input_t *input, const char *reason);

/* The batch's write pipeline (borrowed): handlers queue their writes here
 * (es_pg_pipeline_add) and the runtime sends them with the outbox rows, the positions and the
 * COMMIT in one round trip. Reads belong in the load hook; a read that depends on another
 * goes straight to the connection. */
es_pg_pipeline_t *es_service_pipeline(es_service_t *svc);

/* The pipeline load() queued on, run (borrowed, valid during handle()): its statements'
 * results by the indexes load() got, with es_pg_pipeline_result(). */
es_pg_pipeline_t *es_service_reads(es_service_t *svc);

/* Which round of the batch load() and handle() are called for: 0 for the records read from
 * Kafka, n for the n-th loop-back round (loop_back above). A handler may keep what it loaded and
 * changed in the earlier rounds (the batch's arena lives until the batch ends); its load hook
 * then queues reads only for what it lacks, and a round that reads nothing costs no round trip.
 * Every round's writes are queued in order, before any later read. */
int es_service_round(const es_service_t *svc);

/* The batch's memory (borrowed): handlers take their working arrays from it with
 * es_arena_calloc(); the runtime resets it after every batch. */
es_arena_t *es_service_arena(es_service_t *svc);

/* The service's codec (borrowed), for handlers that need type lookups. */
es_codec_t *es_service_codec(es_service_t *svc);

/* In a tick: up to when the whole consumer group has read its input topics (caught_up.h), as
 * PostgreSQL timestamptz text (borrowed, valid during the tick), or NULL when this instance
 * reads every partition, so that its transaction's now() is that time. A deadline counts as
 * passed only when it is before both. */
const char *es_service_caught_up(const es_service_t *svc);

/*
 * Offline use (projection rebuilds): the same decode, dedup, handle and position steps on
 * records that come from elsewhere (the journal), inside a transaction the caller owns.
 * Emitted and dead-lettered records are discarded: a rebuild only recomputes state.
 */
typedef struct es_raw {
    const char *topic;
    int32_t partition;
    int64_t offset;
    const void *value;
    size_t value_len;
    const void *key; /* NULL: a null key */
    size_t key_len;
    const char *type_hdr;          /* the type peeked from the value (or a header), or NULL */
    const rd_kafka_message_t *rkm; /* the Kafka message when there is one (its headers go to
                                    * the DLQ with it) */
} es_raw_t;

/* Create an offline service over `codec` (borrowed). `def` is borrowed for the lifetime.
 * Returns NULL when out of memory. Use es_service_destroy(). */
es_service_t *es_service_offline_new(const es_service_def_t *def, es_codec_t *codec);
void es_service_destroy(es_service_t *svc);

/* Apply `cnt` records (borrowed) inside the caller's open transaction on `pg`. Returns 0 or -1
 * with errstr filled (the caller rolls back). */
int es_service_apply(es_service_t *svc, PGconn *pg, const es_raw_t *raws, size_t cnt, char *errstr,
                     size_t errstr_size);

/* Create the service's runtime tables (processed, positions, outbox) and its own DDL in
 * def->schema. Returns 0 or -1 with errstr. */
int es_service_create_tables(const es_service_def_t *def, PGconn *pg, char *errstr,
                             size_t errstr_size);

/* The whole main() of a service: parses the common flags (-d data, -b brokers, -X prop=val,
 * --pg conninfo, -h help; `about` is the help's description), then es_service_run().
 * Returns the process exit status (0 ok, 1 fatal error, 2 usage). */
int es_service_main(int argc, char **argv, const es_service_def_t *def, const char *about);

/* Take a service's own option "--name VALUE" / "--name=VALUE" out of argv before
 * es_service_main() parses the shared ones: *value is set (borrowed from argv) when the flag
 * is there, left alone otherwise; argc and argv are compacted. Returns 0, or -1 when the flag
 * has no value. */
int es_service_take_flag(int *argc, char **argv, const char *flag, const char **value);

#endif
