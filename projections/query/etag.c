/*
 * etag.c: validators for the query service's answers (see etag.h).
 */
#include "etag.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

void es_query_etag(const void *body, size_t len, char *out)
{
    /* FNV-1a, 64 bits: fast, and a change of any byte changes the tag (a collision between
     * two answers of one resource in a row is the only way to miss a change: 1 in 2^64) */
    const unsigned char *p = body;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    snprintf(out, ES_QUERY_ETAG_SIZE, "\"%016llx\"", (unsigned long long)h);
}

static const char *skip_ows(const char *s)
{
    while (*s == ' ' || *s == '\t') {
        s++;
    }
    return s;
}

int es_query_etag_match(const char *header, const char *etag)
{
    if (!header) {
        return 0;
    }
    size_t etag_len = strlen(etag);
    const char *s = skip_ows(header);
    if (*s == '*') {
        return *skip_ows(s + 1) == '\0';
    }
    int matched = 0;
    for (;;) {
        while (*s == ',' || *s == ' ' || *s == '\t') {
            s++;
        }
        if (*s == '\0') {
            return matched;
        }
        if (s[0] == 'W' && s[1] == '/') {
            s += 2;
        }
        if (*s != '"') {
            return 0;
        }
        const char *end = strchr(s + 1, '"');
        if (!end) {
            return 0;
        }
        size_t n = (size_t)(end - s) + 1; /* with both quotes, as etag is */
        if (n == etag_len && !memcmp(s, etag, n)) {
            matched = 1;
        }
        s = skip_ows(end + 1);
        if (*s != ',' && *s != '\0') {
            return 0;
        }
    }
}
