/*
 * window.h: what a loop did over the last few seconds (how many rounds, how much work, how
 * long they took), for the one-line progress logs services and relays write every 10 s.
 */
#ifndef ES_WINDOW_H
#define ES_WINDOW_H

#include <stdint.h>

typedef struct es_window {
    int64_t start_us;
    int64_t rounds, records, total_us, max_us;
} es_window_t;

/* Open a window now (caller storage). */
void es_window_init(es_window_t *w);
/* Count one round of `records` that took `took_us`. */
void es_window_add(es_window_t *w, int64_t records, int64_t took_us);
/* True when the window is older than `period_us` and saw work: log it, then es_window_init(). */
int es_window_due(const es_window_t *w, int64_t period_us);

#endif
