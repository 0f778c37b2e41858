/*
 * pressure.h: how much of the time runnable threads on this machine waited for a CPU (Linux's
 * pressure stall information, /proc/pressure/cpu "some"), sampled by the caller, for a loop that
 * trades a little latency for fewer, bigger batches when the CPU is the bottleneck.
 */
#ifndef ES_PRESSURE_H
#define ES_PRESSURE_H

#include <stdint.h>

typedef struct es_pressure {
    int64_t total_us; /* the kernel's stall counter at the last sample, -1: not read yet */
    int64_t at_us;    /* when (monotonic) */
} es_pressure_t;

/* Start with no sample (caller storage). */
void es_pressure_init(es_pressure_t *p);
/* The share of wall time since the previous sample during which some thread waited for a CPU,
 * 0..1, or -1 when the kernel does not report it (no PSI) or this is the first sample. */
double es_pressure_sample(es_pressure_t *p);
/* The pressure a loop follows, given the one it followed so far (`followed`, <0: none yet) and
 * a new sample (<0: none, `followed` is kept): a higher sample is taken at once, a lower one
 * moves it by `decay` (0..1) of the way. Loops on every process of a machine read the same
 * figure; following it down slowly keeps them from all backing off at the same sample. */
double es_pressure_follow(double followed, double sample, double decay);
/* How long a small batch waits for more records (us, 0: it goes at once), given the pressure
 * followed (<0: unknown), the rate records come at (per second) and the longest linger allowed
 * (`linger_ms`). None below ES_LINGER_PRESSURE, nor when a linger would gather fewer than
 * ES_LINGER_MIN_RECORDS more at that rate; from 1 ms at the threshold up to the whole
 * `linger_ms` at ES_LINGER_PRESSURE_FULL; `whole`: the whole `linger_ms` from the threshold
 * (for a loop nothing waits on). */
int64_t es_pressure_linger_us(double pressure, double rate, int64_t linger_ms, int whole);

#define ES_LINGER_PRESSURE 0.5      /* lingers from this share of time some thread waited */
#define ES_LINGER_PRESSURE_FULL 0.8 /* ... for its whole linger_ms from this one */
#define ES_LINGER_MIN_RECORDS 4     /* records the stream brings in one linger, at its rate */
#define ES_LINGER_MIN_US 1000       /* the shortest linger */

#endif
