/*
 * dedup.c: the dedup window's rules (see dedup.h).
 */
#include "dedup.h"

#include <stdio.h>

int64_t es_dedup_part(const char *topic, int32_t partition)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const unsigned char *p = (const unsigned char *)topic; *p; p++) {
        h = (h ^ *p) * 0x100000001b3ULL;
    }
    h = (h ^ 0) * 0x100000001b3ULL; /* keeps ("a", 1) and ("a\1", ...) apart */
    uint32_t u = (uint32_t)partition;
    for (int i = 3; i >= 0; i--) {
        h = (h ^ ((u >> (8 * i)) & 0xffu)) * 0x100000001b3ULL;
    }
    return (int64_t)h;
}

int es_dedup_too_old(int64_t newest_ms, int64_t occurred_ms, int64_t window_ms)
{
    return newest_ms > 0 && occurred_ms < newest_ms - window_ms;
}

int64_t es_dedup_advance(int64_t newest_ms, int64_t occurred_ms, int64_t now_ms)
{
    int64_t t = occurred_ms;
    if (t > now_ms + ES_DEDUP_SKEW_MS) {
        t = now_ms + ES_DEDUP_SKEW_MS;
    }
    return t > newest_ms ? t : newest_ms;
}

const char *es_dedup_reason(char *buf, size_t size, int64_t newest_ms, int64_t occurred_ms,
                            int64_t window_ms)
{
    snprintf(buf, size,
             "too old to deduplicate: it happened %lld s before the newest record handled from "
             "its partition, and copies are only recognised within %lld s (ES_DEDUP_WINDOW)",
             (long long)((newest_ms - occurred_ms) / 1000), (long long)(window_ms / 1000));
    return buf;
}
