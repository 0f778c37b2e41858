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

#endif
