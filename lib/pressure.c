/*
 * pressure.c: CPU pressure from /proc/pressure/cpu (see pressure.h). Its first line reads
 * "some avg10=1.23 avg60=4.56 avg300=7.89 total=123456789": total is the microseconds during
 * which at least one runnable thread had no CPU, since boot.
 */
#include "pressure.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ids.h"

void es_pressure_init(es_pressure_t *p)
{
    p->total_us = -1;
    p->at_us = 0;
}

/* The "some" line's total, or -1. */
static int64_t read_total(void)
{
    FILE *f = fopen("/proc/pressure/cpu", "r");
    if (!f) {
        return -1;
    }
    char line[256];
    int64_t total = -1;
    if (fgets(line, sizeof(line), f) && !strncmp(line, "some ", 5)) {
        const char *t = strstr(line, "total=");
        if (t) {
            char *end;
            long long v = strtoll(t + 6, &end, 10);
            if (end != t + 6 && v >= 0) {
                total = v;
            }
        }
    }
    fclose(f);
    return total;
}

double es_pressure_sample(es_pressure_t *p)
{
    int64_t total = read_total(), now = es_mono_us();
    double share = -1;
    if (total >= 0 && p->total_us >= 0 && now > p->at_us && total >= p->total_us) {
        share = (double)(total - p->total_us) / (double)(now - p->at_us);
        share = share > 1 ? 1 : share;
    }
    p->total_us = total;
    p->at_us = now;
    return share;
}

double es_pressure_follow(double followed, double sample, double decay)
{
    if (sample < 0) {
        return followed;
    }
    if (followed < 0 || sample > followed) {
        return sample;
    }
    return followed + decay * (sample - followed);
}

int64_t es_pressure_linger_us(double pressure, double rate, int64_t linger_ms, int whole)
{
    if (linger_ms <= 0 || pressure < ES_LINGER_PRESSURE ||
        rate * (double)linger_ms / 1000.0 < ES_LINGER_MIN_RECORDS) {
        return 0;
    }
    double part = (pressure - ES_LINGER_PRESSURE) / (ES_LINGER_PRESSURE_FULL - ES_LINGER_PRESSURE);
    if (whole || part > 1) {
        part = 1;
    }
    int64_t us = (int64_t)llround((double)linger_ms * 1000.0 * part);
    return us < ES_LINGER_MIN_US ? ES_LINGER_MIN_US : us;
}
