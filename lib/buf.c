/*
 * buf.c: growable byte buffer (see buf.h).
 */
#include "buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void es_buf_init(es_buf_t *buf)
{
    buf->data = NULL;
    buf->len = 0;
    buf->cap = 0;
}

void es_buf_fini(es_buf_t *buf)
{
    free(buf->data);
    es_buf_init(buf);
}

void es_buf_reset(es_buf_t *buf)
{
    buf->len = 0;
}

int es_buf_reserve(es_buf_t *buf, size_t extra)
{
    if (extra > SIZE_MAX / 2 - buf->len - 1) {
        return -1; /* would wrap around */
    }
    if (buf->len + extra + 1 <= buf->cap) {
        return 0;
    }
    size_t cap = buf->cap ? buf->cap : 256;
    while (cap < buf->len + extra + 1) {
        cap *= 2;
    }
    unsigned char *data = realloc(buf->data, cap);
    if (!data) {
        return -1;
    }
    buf->data = data;
    buf->cap = cap;
    return 0;
}

int es_buf_append(es_buf_t *buf, const void *data, size_t len)
{
    if (es_buf_reserve(buf, len) != 0) {
        return -1;
    }
    if (len) {
        memcpy(buf->data + buf->len, data, len);
    }
    buf->len += len;
    buf->data[buf->len] = '\0'; /* always NUL-terminated, handy for text */
    return 0;
}

int es_buf_puts(es_buf_t *buf, const char *s)
{
    return es_buf_append(buf, s, strlen(s));
}

int es_buf_printf(es_buf_t *buf, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || es_buf_reserve(buf, (size_t)n) != 0) {
        return -1;
    }
    va_start(ap, fmt);
    vsnprintf((char *)buf->data + buf->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    buf->len += (size_t)n;
    return 0;
}
