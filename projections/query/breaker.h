/*
 * breaker.h: a circuit breaker in front of the query service's database.
 *
 * When the database stops answering (unreachable, connections lost, requests timing out in the
 * queue), sending it more work only makes callers wait and the database's recovery slower.
 * After `failures` such outcomes in a row the breaker OPENs: calls are refused at once, with
 * a hint of when to come back (HTTP's Retry-After). When the pause is over it lets one call
 * through (HALF_OPEN): if that probe succeeds the breaker CLOSEs, if it fails it opens again
 * for twice as long, up to `cooldown_max_ms`.
 *
 *     CLOSED --failures in a row--> OPEN --pause over--> HALF_OPEN --probe ok--> CLOSED
 *                                    ^                        |
 *                                    +-------probe failed-----+
 *
 * Only "the database did not answer" counts as a failure: a missing table or a SQL error is
 * an answer. Pure logic: the caller passes the time, so tests can drive it.
 */
#ifndef ES_QUERY_BREAKER_H
#define ES_QUERY_BREAKER_H

#include <stdint.h>

typedef enum {
    ES_BREAKER_CLOSED = 0,
    ES_BREAKER_OPEN,
    ES_BREAKER_HALF_OPEN,
} es_breaker_state_t;

typedef struct es_breaker {
    int threshold;           /* failures in a row that open it; 0: never opens */
    int64_t cooldown_min_ms; /* first pause */
    int64_t cooldown_max_ms; /* longest pause */
    es_breaker_state_t state;
    int failures;            /* in a row, while closed */
    int64_t cooldown_ms;     /* the current pause */
    int64_t open_until_ms;   /* while open: when a probe may go */
    int probing;             /* half open: the probe is out */
    uint64_t opened_total;   /* times it opened */
    uint64_t rejected_total; /* calls refused */
} es_breaker_t;

/* Set `b` (caller storage) closed. `cooldown_max_ms` below `cooldown_min_ms` is raised to it. */
void es_breaker_init(es_breaker_t *b, int threshold, int64_t cooldown_min_ms,
                     int64_t cooldown_max_ms);

/* May a call go now? 1 yes (*probe set to 1 when it is the half-open probe, whose outcome
 * decides), 0 refused (counted). */
int es_breaker_allow(es_breaker_t *b, int64_t now_ms, int *probe);

/* The outcome of a call that was allowed: ok is 0 only when the database did not answer.
 * `probe` as es_breaker_allow() set it. */
void es_breaker_record(es_breaker_t *b, int ok, int probe, int64_t now_ms);

/* While not closed: whole seconds until a call may be tried again (at least 1); else 0. */
int es_breaker_retry_after_s(const es_breaker_t *b, int64_t now_ms);

/* "closed", "open" or "half_open" (static). */
const char *es_breaker_state_name(es_breaker_state_t state);

#endif
