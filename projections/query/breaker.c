/*
 * breaker.c: the query service's circuit breaker (see breaker.h).
 */
#include "breaker.h"

#include <string.h>

void es_breaker_init(es_breaker_t *b, int threshold, int64_t cooldown_min_ms,
                     int64_t cooldown_max_ms)
{
    memset(b, 0, sizeof(*b));
    b->threshold = threshold > 0 ? threshold : 0;
    b->cooldown_min_ms = cooldown_min_ms > 0 ? cooldown_min_ms : 1;
    b->cooldown_max_ms =
        cooldown_max_ms > b->cooldown_min_ms ? cooldown_max_ms : b->cooldown_min_ms;
    b->cooldown_ms = b->cooldown_min_ms;
    b->state = ES_BREAKER_CLOSED;
}

static void trip(es_breaker_t *b, int64_t now_ms)
{
    b->state = ES_BREAKER_OPEN;
    b->open_until_ms = now_ms + b->cooldown_ms;
    b->probing = 0;
    b->failures = 0;
    b->opened_total++;
}

int es_breaker_allow(es_breaker_t *b, int64_t now_ms, int *probe)
{
    *probe = 0;
    switch (b->state) {
    case ES_BREAKER_CLOSED:
        return 1;
    case ES_BREAKER_OPEN:
        if (now_ms < b->open_until_ms) {
            break;
        }
        b->state = ES_BREAKER_HALF_OPEN;
        b->probing = 0;
        /* fall through */
    case ES_BREAKER_HALF_OPEN:
        if (b->probing) {
            break; /* one probe at a time */
        }
        b->probing = 1;
        *probe = 1;
        return 1;
    }
    b->rejected_total++;
    return 0;
}

void es_breaker_record(es_breaker_t *b, int ok, int probe, int64_t now_ms)
{
    if (probe) {
        if (b->state != ES_BREAKER_HALF_OPEN) {
            return; /* cannot happen: only the probe's outcome moves a half-open breaker */
        }
        if (ok) {
            b->state = ES_BREAKER_CLOSED;
            b->failures = 0;
            b->probing = 0;
            b->cooldown_ms = b->cooldown_min_ms;
        } else {
            int64_t next = b->cooldown_ms * 2;
            b->cooldown_ms = next < b->cooldown_max_ms ? next : b->cooldown_max_ms;
            trip(b, now_ms);
        }
        return;
    }
    if (b->state != ES_BREAKER_CLOSED) {
        return; /* calls that started before it opened say nothing more */
    }
    if (ok) {
        b->failures = 0;
        return;
    }
    if (b->threshold > 0 && ++b->failures >= b->threshold) {
        trip(b, now_ms);
    }
}

int es_breaker_retry_after_s(const es_breaker_t *b, int64_t now_ms)
{
    if (b->state == ES_BREAKER_CLOSED) {
        return 0;
    }
    int64_t left = b->state == ES_BREAKER_OPEN ? b->open_until_ms - now_ms : 0;
    int64_t s = (left + 999) / 1000;
    return s < 1 ? 1 : (int)s;
}

const char *es_breaker_state_name(es_breaker_state_t state)
{
    switch (state) {
    case ES_BREAKER_OPEN:
        return "open";
    case ES_BREAKER_HALF_OPEN:
        return "half_open";
    default:
        return "closed";
    }
}
