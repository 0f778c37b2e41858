/*
 * duration.h: the durations people type ("500ms", "10s", "2m", "1h"), for the query service's
 * filters and esctl's flags alike.
 */
#ifndef ES_DURATION_H
#define ES_DURATION_H

#include <stdint.h>

/* Parse a duration `s` (borrowed): digits then an optional unit, "ms", "s", "m" or "h" (lower
 * case); no unit means seconds. Fills *out_ms and returns 0, or returns -1 and leaves *out_ms
 * untouched (NULL, empty, sign, spaces, fraction, other units, more than max_ms, which must be
 * below INT64_MAX / 3,600,000 ms). */
int es_parse_duration_ms(const char *s, int64_t max_ms, int64_t *out_ms);

#endif
