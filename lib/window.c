/*
 * window.c: rolling counters for periodic progress logs (see window.h).
 */
#include "window.h"

#include "ids.h"

void es_window_init(es_window_t *w)
{
    w->start_us = es_mono_us();
    w->rounds = w->records = w->total_us = w->max_us = 0;
}

void es_window_add(es_window_t *w, int64_t records, int64_t took_us)
{
    w->rounds++;
    w->records += records;
    w->total_us += took_us;
    if (took_us > w->max_us) {
        w->max_us = took_us;
    }
}

int es_window_due(const es_window_t *w, int64_t period_us)
{
    return w->rounds > 0 && es_mono_us() - w->start_us > period_us;
}
