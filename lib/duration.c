/*
 * duration.c: durations as people type them (see duration.h).
 */
#include "duration.h"

#include <string.h>

int es_parse_duration_ms(const char *s, int64_t max_ms, int64_t *out_ms)
{
    static const struct {
        const char *suffix;
        int64_t ms;
    } units[] = {{"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 60 * 60 * 1000}};
    if (!s) {
        return -1;
    }
    /* Any value above the maximum in milliseconds is too long whatever its unit, which also
     * keeps the arithmetic far from overflowing. */
    int64_t v = 0;
    size_t i = 0;
    for (; s[i] >= '0' && s[i] <= '9'; i++) {
        int d = s[i] - '0';
        if (v > (max_ms - d) / 10) {
            return -1;
        }
        v = v * 10 + d;
    }
    if (i == 0) {
        return -1;
    }
    for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
        if (!strcmp(s + i, units[u].suffix)) {
            if (v > max_ms / units[u].ms) {
                return -1;
            }
            *out_ms = v * units[u].ms;
            return 0;
        }
    }
    return -1;
}
