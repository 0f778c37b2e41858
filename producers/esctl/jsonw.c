/*
 * jsonw.c: a small, fast JSON writer into es_buf_t, for replay's output (hundreds of
 * thousands of lines per second): no intermediate json_t trees and no per-value allocation.
 * Output is always valid JSON, even from bytes that are not UTF-8.
 */
#include "esctl.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char hex[] = "0123456789abcdef";

/* Length of the valid UTF-8 sequence starting at s (n bytes available), or 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t cp;
    if (c < 0xC2) {
        return 0;
    } else if (c < 0xE0) {
        len = 2;
        cp = c & 0x1F;
    } else if (c < 0xF0) {
        len = 3;
        cp = c & 0x0F;
    } else if (c < 0xF5) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (len > n) {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))) {
        return 0;
    }
    return len;
}

int esctl_jw_str(es_buf_t *out, const char *s, size_t len)
{
    /* Worst case: every byte becomes \u00XX (6 bytes), plus the quotes. */
    if (es_buf_reserve(out, len * 6 + 2) != 0) {
        return -1;
    }
    unsigned char *p = out->data + out->len;
    const unsigned char *in = (const unsigned char *)s;
    *p++ = '"';
    for (size_t i = 0; i < len;) {
        unsigned char c = in[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            *p++ = c;
            i++;
            continue;
        }
        if (c >= 0x80) {
            size_t ul = utf8_len(in + i, len - i);
            if (ul) {
                memcpy(p, in + i, ul);
                p += ul;
                i += ul;
                continue;
            }
        }
        *p++ = '\\';
        switch (c) {
        case '"':
            *p++ = '"';
            break;
        case '\\':
            *p++ = '\\';
            break;
        case '\n':
            *p++ = 'n';
            break;
        case '\r':
            *p++ = 'r';
            break;
        case '\t':
            *p++ = 't';
            break;
        default:
            *p++ = 'u';
            *p++ = '0';
            *p++ = '0';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 15];
        }
        i++;
    }
    *p++ = '"';
    out->len = (size_t)(p - out->data);
    out->data[out->len] = '\0';
    return 0;
}

int esctl_jw_int(es_buf_t *out, int64_t v)
{
    char tmp[24];
    char *p = tmp + sizeof(tmp);
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) {
        *--p = '-';
    }
    return es_buf_append(out, p, (size_t)(tmp + sizeof(tmp) - p));
}

int esctl_jw_json(es_buf_t *out, const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        if (es_buf_append(out, "{", 1) != 0) {
            return -1;
        }
        int first = 1;
        const char *k;
        json_t *m;
        /* jansson keeps insertion order, which is the schema's field order. */
        json_object_foreach((json_t *)v, k, m)
        {
            if ((!first && es_buf_append(out, ",", 1) != 0) ||
                esctl_jw_str(out, k, strlen(k)) != 0 || es_buf_append(out, ":", 1) != 0 ||
                esctl_jw_json(out, m) != 0) {
                return -1;
            }
            first = 0;
        }
        return es_buf_append(out, "}", 1);
    }
    case JSON_ARRAY: {
        if (es_buf_append(out, "[", 1) != 0) {
            return -1;
        }
        size_t i;
        json_t *m;
        json_array_foreach(v, i, m)
        {
            if ((i && es_buf_append(out, ",", 1) != 0) || esctl_jw_json(out, m) != 0) {
                return -1;
            }
        }
        return es_buf_append(out, "]", 1);
    }
    case JSON_STRING:
        return esctl_jw_str(out, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        return esctl_jw_int(out, (int64_t)json_integer_value(v));
    case JSON_REAL: {
        double d = json_real_value(v);
        if (!isfinite(d)) {
            return es_buf_append(out, "null", 4);
        }
        char tmp[32];
        int n = snprintf(tmp, sizeof(tmp), "%.17g", d);
        if (!strpbrk(tmp, ".eEn")) {
            tmp[n++] = '.';
            tmp[n++] = '0';
        }
        return es_buf_append(out, tmp, (size_t)n);
    }
    case JSON_TRUE:
        return es_buf_append(out, "true", 4);
    case JSON_FALSE:
        return es_buf_append(out, "false", 5);
    default:
        return es_buf_append(out, "null", 4);
    }
}

int esctl_jw_time(es_buf_t *out, int64_t ms)
{
    /* Records of one replay mostly share the second: cache its text (per thread). */
    static _Thread_local int64_t cached_sec = INT64_MIN;
    static _Thread_local char cached[80];
    int64_t sec = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
    int msec = (int)(ms - sec * 1000);
    if (sec != cached_sec) {
        time_t t = (time_t)sec;
        struct tm tm;
        if (!gmtime_r(&t, &tm)) {
            return es_buf_append(out, "null", 4);
        }
        snprintf(cached, sizeof(cached), "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        cached_sec = sec;
    }
    char tmp[96];
    size_t n = strlen(cached);
    tmp[0] = '"';
    memcpy(tmp + 1, cached, n);
    n++;
    tmp[n++] = '.';
    tmp[n++] = (char)('0' + msec / 100);
    tmp[n++] = (char)('0' + msec / 10 % 10);
    tmp[n++] = (char)('0' + msec % 10);
    tmp[n++] = 'Z';
    tmp[n++] = '"';
    return es_buf_append(out, tmp, n);
}

int esctl_jw_base64(es_buf_t *out, const void *data, size_t len)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (es_buf_reserve(out, (len + 2) / 3 * 4 + 2) != 0) {
        return -1;
    }
    const unsigned char *in = data;
    unsigned char *p = out->data + out->len;
    *p++ = '"';
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *p++ = (unsigned char)b64[v >> 18];
        *p++ = (unsigned char)b64[(v >> 12) & 63];
        *p++ = (unsigned char)b64[(v >> 6) & 63];
        *p++ = (unsigned char)b64[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        *p++ = (unsigned char)b64[v >> 18];
        *p++ = (unsigned char)b64[(v >> 12) & 63];
        *p++ = '=';
        *p++ = '=';
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        *p++ = (unsigned char)b64[v >> 18];
        *p++ = (unsigned char)b64[(v >> 12) & 63];
        *p++ = (unsigned char)b64[(v >> 6) & 63];
        *p++ = '=';
    }
    *p++ = '"';
    out->len = (size_t)(p - out->data);
    out->data[out->len] = '\0';
    return 0;
}
