/*
 * codec_internal.h: what envelope.c needs from the codec beyond codec.h.
 *
 * The envelope carries its payload as Avro bytes, which have no natural JSON form, so
 * envelope.c fills and reads the es.Envelope record as an avro-c value directly instead of
 * going through es_codec_encode()/es_codec_decode(). Not for use outside lib/.
 */
#ifndef ES_CODEC_INTERNAL_H
#define ES_CODEC_INTERNAL_H

#include <avro.h>

#include "codec.h"

/* The codec's scratch es.Envelope value, ready to be filled with avro_value_* setters.
 * Borrowed: valid until the next envelope call on this codec. NULL if the codec has no
 * envelope schema (never, with the embedded schemas). */
avro_value_t *es_codec_envelope_value(es_codec_t *codec);

/* Append the single-object encoding of the scratch envelope value to `out`.
 * Returns 0 or -1 (nothing appended on error). */
int es_codec_envelope_write(es_codec_t *codec, es_buf_t *out, char *errstr, size_t errstr_size);

/* Decode a single-object-encoded es.Envelope into the scratch value and point *value at it
 * (borrowed; valid until the next envelope call on this codec; byte and string contents
 * point into codec-owned memory). Returns 0 or -1 with a reason in errstr. */
int es_codec_envelope_read(es_codec_t *codec, const void *data, size_t len, avro_value_t **value,
                           char *errstr, size_t errstr_size);

#endif
