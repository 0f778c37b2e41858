/*
 * wire.c: reading the few Kafka protocol fields the broker's socket wrappers need.
 *
 * Frames are big-endian and, in the versions looked at (Produce up to v8, Fetch up to v11),
 * free of tagged fields. A read past the end of a frame marks the reader bad and yields zeros,
 * so a caller checks once, after a run of reads, instead of after each.
 */
#include "broker.h"

uint32_t wire_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

const unsigned char *wire_take(wire_rd_t *r, size_t n)
{
    if (r->bad || r->len - r->pos < n) {
        r->bad = 1;
        return NULL;
    }
    const unsigned char *at = r->p + r->pos;
    r->pos += n;
    return at;
}

void wire_skip(wire_rd_t *r, size_t n)
{
    wire_take(r, n);
}

int64_t wire_int(wire_rd_t *r, size_t n)
{
    const unsigned char *b = wire_take(r, n);
    if (!b) {
        return 0;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        v = v << 8 | b[i];
    }
    /* sign-extend */
    if (n < 8 && (v >> (n * 8 - 1)) & 1) {
        v |= ~(uint64_t)0 << (n * 8);
    }
    return (int64_t)v;
}

void wire_str(wire_rd_t *r, const unsigned char **s, size_t *len)
{
    int64_t n = wire_int(r, 2);
    *s = NULL;
    *len = 0;
    if (n > 0) {
        *s = wire_take(r, (size_t)n);
        *len = *s ? (size_t)n : 0;
    }
}

int64_t wire_uvarint(wire_rd_t *r)
{
    uint64_t v = 0;
    for (int i = 0; i < 5; i++) {
        const unsigned char *b = wire_take(r, 1);
        if (!b) {
            return 0;
        }
        v |= (uint64_t)(*b & 0x7f) << (7 * i);
        if (!(*b & 0x80)) {
            return (int64_t)v;
        }
    }
    r->bad = 1;
    return 0;
}

int32_t wire_count(wire_rd_t *r, size_t min_item)
{
    int64_t n = wire_int(r, 4);
    if (n < 0) {
        return 0;
    }
    if ((uint64_t)n * min_item > r->len - r->pos) {
        r->bad = 1;
        return 0;
    }
    return (int32_t)n;
}

/* A Fetch answer from its start up to its topic count: returns its error code (v7+). */
static int fetch_answer_head(wire_rd_t *r, int16_t ver)
{
    r->pos = 8; /* size, CorrelationId */
    if (ver >= 1) {
        wire_skip(r, 4); /* ThrottleTime */
    }
    int err = 0;
    if (ver >= 7) {
        err = (int)wire_int(r, 2);
        wire_skip(r, 4); /* SessionId */
    }
    return err;
}

/* One partition of a Fetch answer, its records included. */
static void fetch_answer_partition(wire_rd_t *r, int16_t ver, wire_fetch_part_t *p)
{
    p->partition = (int32_t)wire_int(r, 4);
    p->err = (int)wire_int(r, 2);
    /* HighWatermark, LastStableOffset (v4), LogStartOffset (v5) */
    wire_skip(r, 8 + (ver >= 4 ? 8 : 0) + (ver >= 5 ? 8 : 0));
    if (ver >= 4) {
        int32_t aborted = wire_count(r, 16);
        wire_skip(r, (size_t)aborted * 16);
    }
    if (ver >= 11) {
        wire_skip(r, 4); /* PreferredReadReplica */
    }
    p->records_at = r->pos;
    int64_t n = wire_int(r, 4);
    p->records = n > 0 ? wire_take(r, (size_t)n) : NULL;
    p->records_len = p->records ? (size_t)n : 0;
    p->records_end = r->pos;
}

int wire_fetch_answer_each(const unsigned char *frame, size_t len, int16_t ver, int *err,
                           int (*fn)(void *arg, const wire_fetch_part_t *p), void *arg)
{
    wire_rd_t r = {.p = frame, .len = len};
    *err = fetch_answer_head(&r, ver);
    int32_t topics = wire_count(&r, 6);
    for (int32_t t = 0; t < topics && !r.bad; t++) {
        wire_fetch_part_t p;
        wire_str(&r, &p.topic, &p.topic_len);
        int32_t parts = wire_count(&r, 18);
        for (int32_t i = 0; i < parts && !r.bad; i++) {
            fetch_answer_partition(&r, ver, &p);
            if (!r.bad && fn(arg, &p) != 0) {
                return 1;
            }
        }
    }
    return r.bad || r.pos != len ? -1 : 0;
}
