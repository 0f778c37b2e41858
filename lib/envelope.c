/*
 * envelope.c: the es.Envelope record around every command and event, and its Kafka headers
 * (see envelope.h). The payload travels as the single-object encoding of its own schema, so
 * a consumer can read the metadata without knowing every payload type.
 */
#include "envelope.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "codec_internal.h"

static void seterr(char *errstr, size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void seterr(char *errstr, size_t errstr_size, const char *fmt, ...)
{
    va_list ap;

    if (errstr == NULL || errstr_size == 0) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(errstr, errstr_size, fmt, ap);
    va_end(ap);
}

static int set_str(avro_value_t *rec, const char *name, const char *s, size_t max, char *errstr,
                   size_t errstr_size)
{
    avro_value_t field;
    size_t len = strnlen(s, max);

    if (len == max) {
        seterr(errstr, errstr_size, "could not encode envelope: %s is not terminated", name);
        return -1;
    }
    if (avro_value_get_by_name(rec, name, &field, NULL) != 0 ||
        avro_value_set_string_len(&field, s, len + 1) != 0) {
        seterr(errstr, errstr_size, "could not encode envelope: cannot set %s", name);
        return -1;
    }
    return 0;
}

static int set_long(avro_value_t *rec, const char *name, int64_t v, char *errstr,
                    size_t errstr_size)
{
    avro_value_t field;

    if (avro_value_get_by_name(rec, name, &field, NULL) != 0 ||
        avro_value_set_long(&field, v) != 0) {
        seterr(errstr, errstr_size, "could not encode envelope: cannot set %s", name);
        return -1;
    }
    return 0;
}

int es_envelope_encode(es_codec_t *codec, const es_envelope_t *env, const es_type_t *type,
                       const json_t *payload, es_buf_t *value, char *errstr, size_t errstr_size)
{
    avro_value_t *rec;
    avro_value_t field;
    es_buf_t body;
    int rc = -1;

    if (codec == NULL || env == NULL || type == NULL || payload == NULL || value == NULL) {
        seterr(errstr, errstr_size, "could not encode envelope: missing argument");
        return -1;
    }
    if (strncmp(env->type, es_type_name(type), sizeof(env->type)) != 0) {
        seterr(errstr, errstr_size,
               "could not encode envelope: its type \"%.*s\" is not the payload's type %s",
               (int)strnlen(env->type, sizeof(env->type)), env->type, es_type_name(type));
        return -1;
    }
    rec = es_codec_envelope_value(codec);
    if (rec == NULL) {
        seterr(errstr, errstr_size, "could not encode envelope: no envelope schema");
        return -1;
    }
    es_buf_init(&body);
    if (es_codec_encode(codec, type, payload, &body, errstr, errstr_size) != 0) {
        goto out;
    }
    if (set_str(rec, "event_id", env->event_id, sizeof(env->event_id), errstr, errstr_size) ||
        set_str(rec, "type", env->type, sizeof(env->type), errstr, errstr_size) ||
        set_str(rec, "aggregate_id", env->aggregate_id, sizeof(env->aggregate_id), errstr,
                errstr_size) ||
        set_long(rec, "aggregate_version", env->aggregate_version, errstr, errstr_size) ||
        set_str(rec, "correlation_id", env->correlation_id, sizeof(env->correlation_id), errstr,
                errstr_size) ||
        set_str(rec, "causation_id", env->causation_id, sizeof(env->causation_id), errstr,
                errstr_size) ||
        set_str(rec, "traceparent", env->traceparent, sizeof(env->traceparent), errstr,
                errstr_size) ||
        set_long(rec, "occurred_at", env->occurred_at, errstr, errstr_size)) {
        goto out;
    }
    if (avro_value_get_by_name(rec, "payload", &field, NULL) != 0 ||
        avro_value_set_bytes(&field, body.data, body.len) != 0) {
        seterr(errstr, errstr_size, "could not encode envelope: cannot set payload");
        goto out;
    }
    rc = es_codec_envelope_write(codec, value, errstr, errstr_size);
out:
    es_buf_fini(&body);
    return rc;
}

static int get_str(avro_value_t *rec, const char *name, char *dst, size_t dst_size, char *errstr,
                   size_t errstr_size)
{
    avro_value_t field;
    const char *s = NULL;
    size_t size = 0;

    if (avro_value_get_by_name(rec, name, &field, NULL) != 0 ||
        avro_value_get_string(&field, &s, &size) != 0) {
        seterr(errstr, errstr_size, "could not decode envelope: cannot read %s", name);
        return -1;
    }
    /* size counts the terminating NUL */
    if (size == 0 || s == NULL) {
        dst[0] = '\0';
        return 0;
    }
    if (size > dst_size) {
        seterr(errstr, errstr_size, "could not decode envelope: %s is too long (%zu bytes)", name,
               size - 1);
        return -1;
    }
    memcpy(dst, s, size - 1);
    dst[size - 1] = '\0';
    return 0;
}

static int get_long(avro_value_t *rec, const char *name, int64_t *v, char *errstr,
                    size_t errstr_size)
{
    avro_value_t field;

    if (avro_value_get_by_name(rec, name, &field, NULL) != 0 ||
        avro_value_get_long(&field, v) != 0) {
        seterr(errstr, errstr_size, "could not decode envelope: cannot read %s", name);
        return -1;
    }
    return 0;
}

int es_envelope_decode(es_codec_t *codec, const void *value, size_t len, es_envelope_t *env,
                       const es_type_t **type, json_t **payload, char *errstr, size_t errstr_size)
{
    avro_value_t *rec = NULL;
    avro_value_t field;
    const void *body = NULL;
    size_t body_len = 0;
    const es_type_t *ptype = NULL;
    json_t *pjson = NULL;
    char reason[256];

    memset(env, 0, sizeof(*env));
    if (es_codec_envelope_read(codec, value, len, &rec, reason, sizeof(reason)) != 0) {
        seterr(errstr, errstr_size, "could not decode envelope: %s", reason);
        return -1;
    }
    if (get_str(rec, "event_id", env->event_id, sizeof(env->event_id), errstr, errstr_size) ||
        get_str(rec, "type", env->type, sizeof(env->type), errstr, errstr_size) ||
        get_str(rec, "aggregate_id", env->aggregate_id, sizeof(env->aggregate_id), errstr,
                errstr_size) ||
        get_long(rec, "aggregate_version", &env->aggregate_version, errstr, errstr_size) ||
        get_str(rec, "correlation_id", env->correlation_id, sizeof(env->correlation_id), errstr,
                errstr_size) ||
        get_str(rec, "causation_id", env->causation_id, sizeof(env->causation_id), errstr,
                errstr_size) ||
        get_str(rec, "traceparent", env->traceparent, sizeof(env->traceparent), errstr,
                errstr_size) ||
        get_long(rec, "occurred_at", &env->occurred_at, errstr, errstr_size)) {
        return -1;
    }
    if (avro_value_get_by_name(rec, "payload", &field, NULL) != 0 ||
        avro_value_get_bytes(&field, &body, &body_len) != 0) {
        seterr(errstr, errstr_size, "could not decode envelope: cannot read payload");
        return -1;
    }
    if (es_codec_decode(codec, body, body_len, &ptype, &pjson, reason, sizeof(reason)) != 0) {
        seterr(errstr, errstr_size, "could not decode %s%spayload: %s", env->type,
               env->type[0] ? " " : "the ", reason);
        return -1;
    }
    if (es_type_topic(ptype)[0] == '\0' || strcmp(es_type_name(ptype), env->type) != 0) {
        seterr(errstr, errstr_size,
               "could not decode envelope: it says type %s but its payload is a %s", env->type,
               es_type_name(ptype));
        json_decref(pjson);
        return -1;
    }
    *type = ptype;
    *payload = pjson;
    return 0;
}

/* Avro long: zigzag varint. Returns bytes used, 0 when malformed or truncated. */
static size_t read_long(const unsigned char *p, size_t len, int64_t *v)
{
    uint64_t u = 0;
    for (size_t i = 0; i < len && i < 10; i++) {
        u |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80)) {
            *v = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
            return i + 1;
        }
    }
    return 0;
}

/* Read the next Avro string into dst[size] (NULL dst: skip it). Returns 0 or -1. */
static int next_string(const unsigned char *p, size_t len, size_t *i, char *dst, size_t size)
{
    int64_t n;
    size_t used = read_long(p + *i, len - *i, &n);
    if (!used || n < 0 || (uint64_t)n > len - *i - used) {
        return -1;
    }
    *i += used;
    if (dst) {
        if ((size_t)n >= size) {
            return -1;
        }
        memcpy(dst, p + *i, (size_t)n);
        dst[n] = '\0';
    }
    *i += (size_t)n;
    return 0;
}

static int next_long(const unsigned char *p, size_t len, size_t *i, int64_t *v)
{
    size_t used = read_long(p + *i, len - *i, v);
    *i += used;
    return used ? 0 : -1;
}

static int envelope_start(const unsigned char *p, size_t len, size_t *i)
{
    *i = 10; /* C3 01 + 8-byte fingerprint */
    return p && len >= 10 && p[0] == 0xC3 && p[1] == 0x01 ? 0 : -1;
}

int es_envelope_peek_type(const void *value, size_t len, char *out, size_t size)
{
    const unsigned char *p = value;
    size_t i;
    return envelope_start(p, len, &i) == 0 && next_string(p, len, &i, NULL, 0) == 0 &&
                   next_string(p, len, &i, out, size) == 0
               ? 0
               : -1;
}

int es_envelope_peek(const void *value, size_t len, es_envelope_t *env)
{
    const unsigned char *p = value;
    size_t i;
    memset(env, 0, sizeof(*env));
    return envelope_start(p, len, &i) == 0 &&
                   next_string(p, len, &i, env->event_id, sizeof(env->event_id)) == 0 &&
                   next_string(p, len, &i, env->type, sizeof(env->type)) == 0 &&
                   next_string(p, len, &i, env->aggregate_id, sizeof(env->aggregate_id)) == 0 &&
                   next_long(p, len, &i, &env->aggregate_version) == 0 &&
                   next_string(p, len, &i, env->correlation_id, sizeof(env->correlation_id)) == 0 &&
                   next_string(p, len, &i, env->causation_id, sizeof(env->causation_id)) == 0 &&
                   next_string(p, len, &i, env->traceparent, sizeof(env->traceparent)) == 0 &&
                   next_long(p, len, &i, &env->occurred_at) == 0
               ? 0
               : -1;
}

static void header_add(rd_kafka_headers_t *hdrs, const char *name, const char *value)
{
    rd_kafka_header_add(hdrs, name, -1, value, (ssize_t)strlen(value));
}

rd_kafka_headers_t *es_envelope_headers_new(const es_envelope_t *env, const char *producer)
{
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(9);
    char num[32];

    if (hdrs == NULL) {
        return NULL;
    }
    header_add(hdrs, "es-event-id", env->event_id);
    header_add(hdrs, "es-type", env->type);
    header_add(hdrs, "es-aggregate-id", env->aggregate_id);
    snprintf(num, sizeof(num), "%" PRId64, env->aggregate_version);
    header_add(hdrs, "es-aggregate-version", num);
    header_add(hdrs, "es-correlation-id", env->correlation_id);
    header_add(hdrs, "es-causation-id", env->causation_id);
    header_add(hdrs, "traceparent", env->traceparent);
    snprintf(num, sizeof(num), "%" PRId64, env->occurred_at);
    header_add(hdrs, "es-occurred-at", num);
    if (producer) {
        header_add(hdrs, "es-producer", producer);
    }
    return hdrs;
}

void es_envelope_caused_by(es_envelope_t *env, const es_envelope_t *cause, const char *salt,
                           uint32_t index, const char *type, const char *aggregate_id,
                           int64_t aggregate_version)
{
    memset(env, 0, sizeof(*env));
    es_id_derive(env->event_id, cause->event_id, salt, index);
    snprintf(env->type, sizeof(env->type), "%s", type);
    snprintf(env->aggregate_id, sizeof(env->aggregate_id), "%s", aggregate_id);
    env->aggregate_version = aggregate_version;
    /* a command starts its correlation: its own id when it carries none */
    snprintf(env->correlation_id, sizeof(env->correlation_id), "%s",
             cause->correlation_id[0] != '\0' ? cause->correlation_id : cause->event_id);
    snprintf(env->causation_id, sizeof(env->causation_id), "%s", cause->event_id);
    es_traceparent_make(env->traceparent, env->correlation_id, env->event_id);
    env->occurred_at = es_now_ms();
}
