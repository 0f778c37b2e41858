/*
 * envelope.h: the metadata every record carries, in its body and in its Kafka headers.
 *
 * A record's value is the single-object encoding of es.Envelope (schemas/envelope.avsc):
 * the metadata below plus `payload`, the single-object encoding of the command or event.
 * The same metadata is copied into headers so that tools can filter without decoding:
 *   es-event-id, es-type, es-aggregate-id, es-aggregate-version, es-correlation-id,
 *   es-causation-id, traceparent, es-occurred-at (ms since epoch, decimal), and es-producer
 *   (who published it: a service's name, or esctl; not part of the envelope)
 * Dead-letter records add es-dlq-reason, es-dlq-topic, es-dlq-partition, es-dlq-offset and
 * keep the original key and value untouched.
 */
#ifndef ES_ENVELOPE_H
#define ES_ENVELOPE_H

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdint.h>

#include "codec.h"
#include "ids.h"

#define ES_TYPE_MAX 64
#define ES_AGG_MAX 128

typedef struct es_envelope {
    char event_id[ES_ID_LEN + 1];       /* command id for commands */
    char type[ES_TYPE_MAX];             /* "OpenAccount", "FundsDebited" */
    char aggregate_id[ES_AGG_MAX];      /* also the Kafka key */
    int64_t aggregate_version;          /* 0 for commands */
    char correlation_id[ES_ID_LEN + 1]; /* the saga / request: the first command's id */
    char causation_id[ES_ID_LEN + 1];   /* the record that caused this one ("" for commands) */
    char traceparent[ES_TRACEPARENT_LEN + 1];
    int64_t occurred_at; /* ms since epoch */
} es_envelope_t;

/* Encode envelope + payload (both borrowed) into `value` (appended). The payload is validated
 * against `type`'s schema and env->type must equal es_type_name(type). Returns 0 or -1. */
int es_envelope_encode(es_codec_t *codec, const es_envelope_t *env, const es_type_t *type,
                       const json_t *payload, es_buf_t *value, char *errstr, size_t errstr_size);

/* Decode a record value. On success fills *env, sets *type (borrowed) and *payload (new
 * reference). Fails (-1, reason in errstr) when the value or the payload cannot be decoded,
 * or when the envelope and payload disagree on the type. */
int es_envelope_decode(es_codec_t *codec, const void *value, size_t len, es_envelope_t *env,
                       const es_type_t **type, json_t **payload, char *errstr, size_t errstr_size);

/* Read the record's type name straight from the encoded envelope (its second field) without
 * decoding it: a cheap hint for skipping records a service does not handle, like the es-type
 * header but without parsing headers. Writes the name into out[size]; returns 0, or -1 when the
 * value does not look like an envelope. Not validated: decode before trusting anything. */
int es_envelope_peek_type(const void *value, size_t len, char *out, size_t size);

/* Read the envelope's metadata (every field before the payload) straight from an encoded
 * value written with the current envelope schema, without decoding the payload: the relay
 * rebuilds Kafka headers this way instead of storing them twice. Returns 0, or -1 when the
 * value does not parse. */
int es_envelope_peek(const void *value, size_t len, es_envelope_t *env);

/* Build Kafka headers from the envelope (borrowed), plus es-producer: `producer` (borrowed),
 * the program that publishes the record ("payments", "esctl"), or none when NULL. Returns a
 * new list: hand it to rd_kafka_producev() (which takes ownership on success) or
 * rd_kafka_headers_destroy() it. */
rd_kafka_headers_t *es_envelope_headers_new(const es_envelope_t *env, const char *producer);

/* Fill an envelope for a record emitted while handling `cause` (borrowed): a derived event id
 * (es_id_derive(cause->event_id, salt, index)), the same correlation id, causation = the
 * cause's id, a traceparent in the same trace, occurred_at = now. `salt` distinguishes
 * services that react to the same record. */
void es_envelope_caused_by(es_envelope_t *env, const es_envelope_t *cause, const char *salt,
                           uint32_t index, const char *type, const char *aggregate_id,
                           int64_t aggregate_version);

#endif
