/*
 * store.h: the saga coordinator's tables (schema "sagas", see docs/SAGAS.md), read and written
 * once per batch with set-based statements: the sagas, their steps, and the counters and
 * duration buckets /metrics reads.
 */
#ifndef SAGA_STORE_H
#define SAGA_STORE_H

#include <libpq-fe.h>
#include <stddef.h>

#include "domain.h"
#include "pg.h"

extern const char saga_store_ddl[];

/* One step as stored: the rules' view plus where it came from. Strings borrowed. */
typedef struct saga_step_row {
    const saga_step_t *step;
    const char *service; /* who published it (es-producer header) */
    const char *aggregate_id;
    const char *topic;
    int32_t partition;
    int64_t offset;
    const char *detail; /* a short summary for people: "reason TIMEOUT", "amount 2400" */
} saga_step_row_t;

/* The load, with locks (in id order), of the sagas ids[0..n), in two halves
 * (es_pg_load_rows_queue/_apply): _queue adds it to `pl` (ids borrowed until the pipeline
 * ran) and returns its index, ES_PG_NOTHING or -1; _apply fills out[i] from its result `res`
 * (borrowed), a zeroed saga with its id when there is none. */
int saga_store_load_queue(es_pg_pipeline_t *pl, const char *const *ids, size_t n);
void saga_store_load_apply(const PGresult *res, const char *const *ids, size_t n, saga_t *out);

/* Queue the upsert of sagas[i] whose dirty[i] is set. Returns 0, or -1 (out of memory). */
int saga_store_save(es_pg_pipeline_t *pl, const saga_t *sagas, const unsigned char *dirty,
                    size_t n);

/* Queue the insert of steps[0..n) (a step already stored is skipped). Returns 0 or -1. */
int saga_store_add_steps(es_pg_pipeline_t *pl, const saga_step_row_t *steps, size_t n);

/* Per type, what the batch changed in the counters (started, completed, failed, cancelled,
 * timed_out, duration_ms_sum) and in the duration buckets (not cumulative). */
#define SAGA_BUCKETS 13
extern const int64_t saga_bucket_le_ms[SAGA_BUCKETS]; /* the last is -1: above the others */
typedef struct saga_tally {
    int64_t started, completed, failed, cancelled, timed_out, duration_ms_sum;
    int64_t buckets[SAGA_BUCKETS];
} saga_tally_t;

/* Count a change (and its duration) into tally[type]. */
void saga_tally_add(saga_tally_t tally[SAGA_T__COUNT], const saga_change_t *chg);

/* Queue the counters' and buckets' increments of tally[]. Returns 0 or -1. */
int saga_store_add_tally(es_pg_pipeline_t *pl, const saga_tally_t tally[SAGA_T__COUNT]);

/* The timer: mark up to `max` pending sagas whose deadline passed TIMED_OUT (oldest first,
 * skipping rows another transaction holds) and return them in out[] (caller storage, `max`
 * entries), their count in *n. A deadline has passed when it is before now and before
 * `read_until` (borrowed timestamptz text, NULL: now), the time up to which every step of the
 * sagas has been read. Returns 0 or -1 with errstr. */
int saga_store_time_out(PGconn *pg, const char *read_until, size_t max, saga_t *out, size_t *n,
                        char *errstr, size_t errstr_size);

/* Retention: delete up to `max` sagas that ended more than `retention_ms` ago, with their
 * steps (the counters keep counting them). Returns how many, or -1 with errstr. */
int saga_store_forget(PGconn *pg, int64_t retention_ms, int max, char *errstr, size_t errstr_size);

#endif
