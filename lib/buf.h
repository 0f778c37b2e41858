/*
 * buf.h: a growable byte buffer, the one type every encoder writes into.
 * The caller owns the es_buf_t storage; es_buf_fini() frees its contents.
 */
#ifndef ES_BUF_H
#define ES_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct es_buf {
    unsigned char *data; /* owned; NULL until the first write */
    size_t len;
    size_t cap;
} es_buf_t;

/* Initialise an empty buffer in caller storage. */
void es_buf_init(es_buf_t *buf);
/* Free the contents; the buffer is empty and reusable afterwards. */
void es_buf_fini(es_buf_t *buf);
/* Keep the allocation, drop the contents. */
void es_buf_reset(es_buf_t *buf);
/* Make room for at least `extra` more bytes. Returns 0, or -1 when out of memory. */
int es_buf_reserve(es_buf_t *buf, size_t extra);
/* Append `len` bytes (copied). Returns 0 or -1. */
int es_buf_append(es_buf_t *buf, const void *data, size_t len);
/* Append a NUL-terminated string without its terminator. Returns 0 or -1. */
int es_buf_puts(es_buf_t *buf, const char *s);
/* Append printf-formatted text. Returns 0 or -1. */
int es_buf_printf(es_buf_t *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
