/*
 * codec.h: the schema registry and the Avro codec.
 *
 * Every schema under schemas/ is embedded at build time (scripts/embed-schemas.sh) as
 * schemas/<context>/<kind>s/<Name>.avsc, kind = command | event, plus schemas/envelope.avsc.
 * Several versions of one type may exist (<Name>.avsc is the current one, the reader schema;
 * <Name>.v<N>.avsc are older writer schemas still decodable).
 *
 * Wire format: Avro single-object encoding: 0xC3 0x01, the writer schema's 64-bit Rabin
 * fingerprint (CRC-64-AVRO of its Parsing Canonical Form, little-endian), then the Avro
 * binary body. Decoding looks the fingerprint up, decodes with that writer schema and resolves
 * it to the reader (current) schema of the same name with avro-c's resolver.
 *
 * JSON mapping (what esctl accepts and replay prints): records are objects, long/int are
 * integers, a ["null", T] union is null or the plain T value, enums are their symbol strings,
 * arrays are arrays. Money is always a long in minor units.
 *
 * avro-c's decoder trusts length fields in its input: es_codec_new() installs a capped
 * allocator (avro_set_allocator) so a hostile record becomes an error, never a huge malloc.
 */
#ifndef ES_CODEC_H
#define ES_CODEC_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef struct es_codec es_codec_t;
typedef struct es_type es_type_t; /* one named command or event type (its current schema) */

typedef enum { ES_KIND_COMMAND = 0, ES_KIND_EVENT = 1 } es_kind_t;

/* Build the registry from the embedded schemas. Returns NULL with errstr filled on failure.
 * Use es_codec_destroy(). One codec per thread (it keeps scratch values). */
es_codec_t *es_codec_new(char *errstr, size_t errstr_size);
void es_codec_destroy(es_codec_t *codec);

/* Look a type up by its short name ("OpenAccount"). Returns a borrowed pointer valid for the
 * codec's lifetime, or NULL if there is no such type. */
const es_type_t *es_codec_type(const es_codec_t *codec, const char *name);
/* Iterate over all current types: idx from 0 while the result is non-NULL. Borrowed. */
const es_type_t *es_codec_type_at(const es_codec_t *codec, size_t idx);
/* The distinct context names ("accounts", "transfers", ...), borrowed, idx from 0 until NULL. */
const char *es_codec_context_at(const es_codec_t *codec, size_t idx);

/* Accessors, all borrowed. */
const char *es_type_name(const es_type_t *type);
const char *es_type_context(const es_type_t *type);
es_kind_t es_type_kind(const es_type_t *type);
/* "<context>.commands" or "<context>.events". */
const char *es_type_topic(const es_type_t *type);
/* The payload field that holds the aggregate id (the "es.key" attribute of the schema),
 * which is the Kafka key. */
const char *es_type_key_field(const es_type_t *type);
/* The current schema's fingerprint. */
uint64_t es_type_fingerprint(const es_type_t *type);
/* The current schema as JSON text (for --help listings). */
const char *es_type_schema_json(const es_type_t *type);

/* Validate `payload` (borrowed) against the type's schema and append its single-object
 * encoding to `out`. Unknown fields, missing required fields and wrong JSON types are errors
 * whose message names the field: "field \"amount\": expected an integer, got a string".
 * So is a payload larger than ES_ENCODE_MAX bytes (its strings' lengths, and a few bytes per
 * value and more per array item): far more than Kafka takes in a message (its default limit is
 * 1,000,000 bytes, which the edges check), and far less than what avro-c may allocate at once.
 * Returns 0 or -1 (nothing appended on error). */
#define ES_ENCODE_MAX (4 << 20)
/* Array items and map entries in one record, encoded or decoded: avro-c keeps an array's items
 * in one block, which must stay well under what its allocator may take at once. */
#define ES_CODEC_ITEMS_MAX 16384
int es_codec_encode(es_codec_t *codec, const es_type_t *type, const json_t *payload, es_buf_t *out,
                    char *errstr, size_t errstr_size);

/* Decode one single-object-encoded payload. On success returns 0, sets *type (borrowed) and
 * *payload (a new reference: json_decref() it). On failure returns -1 with a reason:
 * "not single-object encoded", "unknown schema fingerprint 0x...", "truncated" ... */
int es_codec_decode(es_codec_t *codec, const void *data, size_t len, const es_type_t **type,
                    json_t **payload, char *errstr, size_t errstr_size);

/* CRC-64-AVRO (Rabin) fingerprint of a schema given as JSON text: computed over its Parsing
 * Canonical Form, which is also written to `canonical` when non-NULL. Returns 0 or -1. */
int es_codec_fingerprint(const char *schema_json, uint64_t *fingerprint, es_buf_t *canonical,
                         char *errstr, size_t errstr_size);

#endif
