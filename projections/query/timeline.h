/*
 * timeline.h: a saga's steps in causal order, without any I/O.
 *
 * Steps are first sorted by time (milliseconds, so that a cause and its effect can tie, and two
 * processes' clocks can disagree by a little), ties broken by topic, partition and offset. Then
 * every step whose cause is a step of the same saga is moved after that cause, keeping the time
 * order otherwise: of the steps whose cause has been placed (or which have none in the saga),
 * the earliest is always placed next. Bad data (a step caused by itself, a cycle of causes)
 * never loops: a step caused by itself counts as having no cause in the saga, and a cycle is
 * broken at its earliest step, which then counts as having none either. So a cause the
 * timeline reports always comes before its effect.
 */
#ifndef ES_QUERY_TIMELINE_H
#define ES_QUERY_TIMELINE_H

#include <stddef.h>
#include <stdint.h>

/* One step as the timeline needs it. Strings are borrowed from the caller for the call. */
typedef struct es_query_timeline_step {
    const char *event_id;     /* the step's own id */
    const char *causation_id; /* the id of the record that caused it, "" for none */
    const char *topic;
    int32_t partition;
    int64_t offset;
    int64_t occurred_ms; /* ms since the epoch */
} es_query_timeline_step_t;

/* One step of the ordered timeline. */
typedef struct es_query_timeline_entry {
    size_t step;     /* index of the step in the input */
    long cause;      /* index in the input of its cause, -1 when the cause is not a step of the
                      * saga (or bad data, see above) */
    int64_t at_ms;   /* occurred_ms minus the saga's start */
    int64_t took_ms; /* occurred_ms minus its cause's, at least 0 (clocks may disagree); -1 when
                      * cause is -1 */
} es_query_timeline_entry_t;

/* Order the `n` steps of `steps` (borrowed) causally into out[0..n) (caller storage, n
 * entries; both may be NULL when n is 0), relative to the saga's start `started_ms`. Returns 0,
 * or -1 when out of memory (out is then undefined). */
int es_query_timeline_order(const es_query_timeline_step_t *steps, size_t n, int64_t started_ms,
                            es_query_timeline_entry_t *out);

#endif
