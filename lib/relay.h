/*
 * relay.h: the transactional outbox's relay. A thread of its own, with its own PostgreSQL
 * connection and idempotent producer, moves committed rows of <schema>.outbox to Kafka:
 *
 *   BEGIN; DELETE the oldest rows RETURNING them; produce them in seq order; wait until
 *   Kafka acknowledged every one; COMMIT.
 *
 * A crash or a failed delivery before COMMIT puts the rows back, and they are published again
 * (consumers drop the copies by event id): nothing is lost, nothing is applied twice.
 * Order: rows of one aggregate are inserted by transactions serialised on that aggregate's
 * row lock, so whenever a row is visible, every earlier row of its aggregate is visible too and
 * has a smaller seq; taking visible rows in seq order keeps each aggregate's order.
 * Only one instance of a service relays (a session advisory lock): two relays could interleave.
 */
#ifndef ES_RELAY_H
#define ES_RELAY_H

#include <stddef.h>

#include "config.h"

typedef struct es_relay es_relay_t;

/* Start relaying `schema`.outbox (borrowed strings are copied). Returns NULL with errstr. */
es_relay_t *es_relay_start(es_config_t *cfg, const char *schema, const char *client_id,
                           char *errstr, size_t errstr_size);

/* Tell the relay that rows were just committed (wakes it at once instead of at its next poll). */
void es_relay_notify(es_relay_t *relay);

/* Publish what the outbox holds (for up to `drain_ms`), stop the thread and free everything.
 * NULL is a no-op. */
void es_relay_stop(es_relay_t *relay, int drain_ms);

#endif
