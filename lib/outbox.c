/*
 * outbox.c: the outbox row's record format (see outbox.h).
 */
#include "outbox.h"

#include <string.h>

static int put_u32(es_buf_t *b, uint32_t v)
{
    unsigned char p[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    return es_buf_append(b, p, 4);
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int es_outbox_append(es_buf_t *blob, const char *topic, const void *key, size_t key_len,
                     const void *value, size_t value_len, const void *headers, size_t headers_len)
{
    size_t tlen = strlen(topic);
    if (tlen > ES_OUTBOX_TOPIC_MAX || key_len > INT32_MAX || value_len > UINT32_MAX ||
        headers_len > INT32_MAX) {
        return -1;
    }
    unsigned char t = (unsigned char)tlen;
    if (es_buf_reserve(blob, 1 + tlen + 1 + 12 + key_len + value_len + headers_len) != 0 ||
        es_buf_append(blob, &t, 1) != 0 || es_buf_append(blob, topic, tlen + 1) != 0 ||
        put_u32(blob, key ? (uint32_t)key_len : UINT32_MAX) != 0 ||
        (key && es_buf_append(blob, key, key_len) != 0) || put_u32(blob, (uint32_t)value_len) ||
        es_buf_append(blob, value, value_len) != 0 ||
        put_u32(blob, headers ? (uint32_t)headers_len : UINT32_MAX) != 0 ||
        (headers && es_buf_append(blob, headers, headers_len) != 0)) {
        return -1;
    }
    return 0;
}

#define PIN 0xff

int es_outbox_pin(es_buf_t *blob, int32_t partition)
{
    unsigned char m = PIN;
    return partition < 0 || es_buf_append(blob, &m, 1) != 0 ? -1
                                                            : put_u32(blob, (uint32_t)partition);
}

/* Read a length-prefixed field at *pos; `nullable`: 0xffffffff means absent. */
static int field(const unsigned char *blob, size_t len, size_t *pos, int nullable,
                 const void **data, size_t *flen)
{
    if (len - *pos < 4) {
        return -1;
    }
    uint32_t n = get_u32(blob + *pos);
    *pos += 4;
    if (nullable && n == UINT32_MAX) {
        *data = NULL;
        *flen = 0;
        return 0;
    }
    if (len - *pos < n) {
        return -1;
    }
    *data = blob + *pos;
    *flen = n;
    *pos += n;
    return 0;
}

int es_outbox_next(const unsigned char *blob, size_t len, size_t *pos, es_outbox_record_t *rec)
{
    if (*pos >= len) {
        return 0;
    }
    rec->partition = -1;
    if (blob[*pos] == PIN) {
        if (len - *pos < 5 || get_u32(blob + *pos + 1) > INT32_MAX) {
            return -1;
        }
        rec->partition = (int32_t)get_u32(blob + *pos + 1);
        *pos += 5;
        if (*pos >= len) {
            return -1; /* a pin leads a record */
        }
    }
    size_t tlen = blob[*pos];
    if (len - *pos < 1 + tlen + 1 || blob[*pos + 1 + tlen] != '\0' ||
        memchr(blob + *pos + 1, '\0', tlen)) {
        return -1;
    }
    rec->topic = (const char *)blob + *pos + 1;
    *pos += 1 + tlen + 1;
    if (field(blob, len, pos, 1, &rec->key, &rec->key_len) != 0 ||
        field(blob, len, pos, 0, &rec->value, &rec->value_len) != 0 ||
        field(blob, len, pos, 1, &rec->headers, &rec->headers_len) != 0) {
        return -1;
    }
    return 1;
}
