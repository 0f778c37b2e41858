/*
 * str.h: bounded string copy, the one used on hot paths (snprintf("%s") parses a format for
 * every field of every record).
 */
#ifndef ES_STR_H
#define ES_STR_H

#include <string.h>

/* Copy `src` into dst[size] (size > 0), cutting it short if needed; always NUL-terminated. */
static inline void es_str_copy(char *dst, size_t size, const char *src)
{
    size_t n = strnlen(src, size - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* True when s[0..len) is a usable id: 1..max characters of [A-Za-z0-9._:-] (what fits in a
 * URL path segment and a log line unescaped). */
static inline int es_str_id_valid(const char *s, size_t len, size_t max)
{
    if (len < 1 || len > max) {
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == ':' || c == '-';
        if (!ok) {
            return 0;
        }
    }
    return 1;
}

#endif
