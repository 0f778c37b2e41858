/*
 * json.c: JSON writing helpers (see json.h).
 */
#include "json.h"

#include <string.h>

int es_query_json_str(es_buf_t *buf, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t len = strlen(s);
    /* Worst case every byte becomes \u00XX. */
    if (es_buf_reserve(buf, len * 6 + 2) != 0) {
        return -1;
    }
    unsigned char *out = buf->data + buf->len;
    *out++ = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            *out++ = '\\';
            *out++ = ch;
        } else if (ch == '\n') {
            *out++ = '\\';
            *out++ = 'n';
        } else if (ch == '\t') {
            *out++ = '\\';
            *out++ = 't';
        } else if (ch < 0x20 || ch == 0x7f) {
            *out++ = '\\';
            *out++ = 'u';
            *out++ = '0';
            *out++ = '0';
            *out++ = (unsigned char)hex[ch >> 4];
            *out++ = (unsigned char)hex[ch & 0xf];
        } else {
            *out++ = ch;
        }
    }
    *out++ = '"';
    buf->len = (size_t)(out - buf->data);
    return 0;
}

static int put_key(es_buf_t *buf, const char *key)
{
    if (es_buf_puts(buf, "\"") != 0 || es_buf_puts(buf, key) != 0 || es_buf_puts(buf, "\":") != 0) {
        return -1;
    }
    return 0;
}

int es_query_json_text(es_buf_t *buf, const char *key, const PGresult *res, int row, int col)
{
    if (put_key(buf, key) != 0) {
        return -1;
    }
    if (PQgetisnull(res, row, col)) {
        return es_buf_puts(buf, "null");
    }
    return es_query_json_str(buf, PQgetvalue(res, row, col));
}

int es_query_json_int(es_buf_t *buf, const char *key, const PGresult *res, int row, int col)
{
    if (put_key(buf, key) != 0) {
        return -1;
    }
    const char *v = PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
    size_t i = v && v[0] == '-' ? 1 : 0;
    int ok = v && v[i] != '\0';
    for (; ok && v[i]; i++) {
        ok = v[i] >= '0' && v[i] <= '9';
    }
    return es_buf_puts(buf, ok ? v : "null");
}

int es_query_json_bool(es_buf_t *buf, const char *key, const PGresult *res, int row, int col)
{
    if (put_key(buf, key) != 0) {
        return -1;
    }
    if (PQgetisnull(res, row, col)) {
        return es_buf_puts(buf, "null");
    }
    return es_buf_puts(buf, PQgetvalue(res, row, col)[0] == 't' ? "true" : "false");
}

int es_query_json_raw(es_buf_t *buf, const char *key, const PGresult *res, int row, int col)
{
    if (put_key(buf, key) != 0) {
        return -1;
    }
    if (PQgetisnull(res, row, col)) {
        return es_buf_puts(buf, "null");
    }
    return es_buf_puts(buf, PQgetvalue(res, row, col));
}
