/*
 * ids.h: identifiers. Every id is 32 lowercase hex characters (128 bits).
 * Random ids name commands (esctl); derived ids name the events a service emits, so that
 * handling the same input twice emits events with the same ids (exactly-once effects rely on
 * it). Ids are k-sortable, like UUIDv7: the first 12 hex characters are the creation time in
 * ms (a derived id inherits its parent's), so indexes over ids grow at their right edge.
 */
#ifndef ES_IDS_H
#define ES_IDS_H

#include <stdint.h>

#define ES_ID_LEN 32
#define ES_TRACEPARENT_LEN 55

/* Write a random id (from the OS's random source) into out[ES_ID_LEN + 1]. Returns 0 or -1. */
int es_id_random(char out[ES_ID_LEN + 1]);

/* Derive the id of the `index`-th record emitted while handling `parent` (any string):
 * a 128-bit hash of (parent, salt, index). Same inputs, same id. */
void es_id_derive(char out[ES_ID_LEN + 1], const char *parent, const char *salt, uint32_t index);

/* W3C traceparent "00-<trace id: 32 hex>-<span id: 16 hex>-01".
 * The trace id is the correlation id (one trace per saga); the span id comes from the event id. */
void es_traceparent_make(char out[ES_TRACEPARENT_LEN + 1], const char *correlation_id,
                         const char *event_id);

/* True when s is exactly ES_ID_LEN lowercase hex characters. */
int es_id_valid(const char *s);

/* Milliseconds since the epoch (wall clock). */
int64_t es_now_ms(void);
/* Microseconds from a monotonic clock. */
int64_t es_mono_us(void);

#endif
