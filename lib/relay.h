/*
 * relay.h: the transactional outbox's relay. A thread of its own, with its own PostgreSQL
 * connection and idempotent producer, moves committed rows of <schema>.outbox to Kafka. It
 * works in one of two ways, and only one instance of a service relays at a time (a session
 * advisory lock): two relays could interleave one aggregate's records. The lock lives as long
 * as the leader's session; a leader stopped (SIGSTOP, a debugger) would keep it for as long as
 * it stays stopped, so the session ends after 10 s idle (60 s inside a round's transaction,
 * which waits for Kafka up to 30 s), and another instance's relay takes the lock. A running
 * relay is never idle that long. The stopped one, let run again, finds its session gone and
 * follows. What it had in flight may still reach Kafka: its rows stayed in the outbox, the new
 * leader publishes them again, and consumers drop the copies by event id (one producer keeps
 * one partition's records in order, so each aggregate's first copies still come in order).
 *
 * Round trips through PostgreSQL (always correct, used whenever the fast path is not):
 *   BEGIN; DELETE the oldest rows RETURNING them; produce their records in seq order (each row
 *   holds one transaction's records, outbox.h); wait until Kafka acknowledged every one; COMMIT.
 *   A crash or a failed delivery before COMMIT puts the rows back, and they are published again
 *   (consumers drop the copies by event id): nothing is lost, nothing is applied twice.
 *   Order: rows of one aggregate are inserted by transactions serialised on that aggregate's
 *   row lock, so whenever a row is visible, every earlier row of its aggregate is visible too
 *   and has a smaller seq; taking visible rows in seq order keeps each aggregate's order.
 *
 * The fast path (when this instance is the only one handling input: it owns every partition):
 *   the service thread hands every committed batch over in memory (es_relay_submit), and the
 *   relay produces it at once, in commit order, without reading it back; rows are deleted in
 *   bulk once Kafka acknowledged them. Nothing else writes the outbox then, so commit order is
 *   the order a round would have used. It is entered only after a round found the outbox empty
 *   (every older row, including another instance's, is out), and left -- waiting for every
 *   delivery, then back to rounds, which publish whatever is left in seq order -- when the
 *   instance stops owning every partition, when a delivery fails, when the service reports a
 *   commit it could not confirm (es_relay_suspend_fast), or when a row it did not write shows
 *   up. A crash leaves acknowledged-but-undeleted rows behind: they are published again.
 */
#ifndef ES_RELAY_H
#define ES_RELAY_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"

typedef struct es_relay es_relay_t;

/* Start relaying `schema`.outbox (borrowed strings are copied). Returns NULL with errstr. */
es_relay_t *es_relay_start(es_config_t *cfg, const char *schema, const char *client_id,
                           char *errstr, size_t errstr_size);

/* Tell the relay that rows were just committed (wakes it at once instead of at its next poll). */
void es_relay_notify(es_relay_t *relay);

/* Hand over the outbox row just committed as `seq`: its `count` records in the outbox format
 * (outbox.h). The contents of `records` are stolen (it is left empty and reusable). Published
 * from memory on the fast path, dropped otherwise (a round reads the row back). Call in commit
 * order, from one thread; wakes the relay. Returns 0, or -1 when out of memory (the fast path
 * is then suspended, so a round publishes the row). */
int es_relay_submit(es_relay_t *relay, int64_t seq, es_buf_t *records, size_t count);

/* Whether this instance now handles every input partition (from the rebalance callback: set
 * on assignment, cleared on revocation, before any other instance can take them over). */
void es_relay_set_sole(es_relay_t *relay, int sole);

/* A commit's outcome is unknown (its rows may be in the outbox and never handed over): leave
 * the fast path until a round has published them. Takes effect before the next handed-over
 * row is produced. */
void es_relay_suspend_fast(es_relay_t *relay);

/* Publish what the outbox holds (for up to `drain_ms`), stop the thread and free everything.
 * NULL is a no-op. */
void es_relay_stop(es_relay_t *relay, int drain_ms);

#endif
