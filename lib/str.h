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

#endif
