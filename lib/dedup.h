/*
 * dedup.h: the dedup window, the rules that keep <schema>.processed (one row per input handled,
 * see service.h) from growing forever while staying exact.
 *
 * A copy of a record (the broker appended it twice; an outbox row published again after a
 * crash) carries the same envelope, so the same event id and the same occurred_at, and lands
 * on the same topic and partition (same key). So each partition keeps the newest occurred_at
 * among the records read from it, handled or dropped as copies (positions.newest_ms; a record
 * its own service handled at once, loop_back in service.h, first shows in its partition as a
 * copy), and:
 *
 *   - an input older than that newest time minus the window (ES_DEDUP_WINDOW, 7 days by
 *     default) is "too old to deduplicate": if its dedup row is gone it cannot tell a late
 *     first copy from a copy of something handled long ago, so it is never applied: it goes
 *     to the dead-letter topic with the reason (or, if its row is still there, it is dropped
 *     as the duplicate it is);
 *   - a dedup row older than its partition's newest time minus the window can therefore be
 *     deleted: nothing it could still catch would be applied anyway.
 *
 * The same facts make the rows' key (part, at_ms, event_id): a copy finds its original's row
 * by it, and a batch's rows land at the right end of one range of the index per partition
 * (cheap to insert, and the window's deletes read the same index).
 *
 * Whether an input is applied depends only on the log before it (its partition's newest
 * time), never on when rows were deleted: a rebuild from the log decides as the live service
 * did. One exception, a record dated in the future (a client's clock ahead): it moves its
 * partition's newest time only up to the consumer's clock plus ES_DEDUP_SKEW_MS, so one bad
 * clock cannot make every later record of its partition "too old".
 *
 * Pure functions; the SQL is in batch.c and service.c.
 */
#ifndef ES_DEDUP_H
#define ES_DEDUP_H

#include <stddef.h>
#include <stdint.h>

#define ES_DEDUP_WINDOW_DEFAULT_MS (7LL * 24 * 3600 * 1000)
#define ES_DEDUP_SKEW_MS 60000LL

/* The id a topic's partition has in processed.part and positions.part: a 64-bit hash of both
 * (FNV-1a), fixed forever (stored rows carry it). */
int64_t es_dedup_part(const char *topic, int32_t partition);

/* Nonzero when an input that happened at `occurred_ms` can no longer be told from a copy of
 * something older: its partition's newest time is `newest_ms` (0: nothing handled yet). */
int es_dedup_too_old(int64_t newest_ms, int64_t occurred_ms, int64_t window_ms);

/* The partition's newest time once an input that happened at `occurred_ms` was handled, the
 * consumer's clock reading `now_ms`. */
int64_t es_dedup_advance(int64_t newest_ms, int64_t occurred_ms, int64_t now_ms);

/* The dead-letter reason for a too-old input, in buf (NUL-terminated). Returns buf. */
const char *es_dedup_reason(char *buf, size_t size, int64_t newest_ms, int64_t occurred_ms,
                            int64_t window_ms);

#endif
