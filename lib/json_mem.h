/*
 * json_mem.h: where jansson takes the memory of decoded payloads. Decoding a batch builds a
 * tree of small objects per record (an object, its hashtable, a pair per field, a string or
 * integer per value), and malloc and free of those were the largest part of a service's CPU
 * after PostgreSQL's. While a thread is "on" (es_json_mem_on), jansson's allocations on that
 * thread come from one region by bumping a pointer, and their frees only count them; when
 * every one of them has been freed, es_json_mem_reset starts the region over. Everything else
 * (other threads, the thread while "off", a full region) gets malloc and free as before, so
 * objects of both kinds mix freely in one tree, and a string from json_dumps() made while off
 * may be released with free().
 *
 * One region per process, for one thread at a time (the service's): es_json_mem_on returns 0
 * and does nothing on a second thread while another is on.
 */
#ifndef ES_JSON_MEM_H
#define ES_JSON_MEM_H

#include <stddef.h>
#include <stdint.h>

/* Route the calling thread's jansson allocations to the region until es_json_mem_off.
 * Installs the allocator on first use (json_set_alloc_funcs: safe at any time, since its free
 * hands anything outside the region to free()). Returns a token for es_json_mem_off: 1 when
 * this call turned it on, 0 when it was on already (a nested call) or the region is unavailable
 * (another thread holds it, or it could not be reserved). */
int es_json_mem_on(void);
/* Back to malloc for the calling thread if `token` (what the matching es_json_mem_on returned)
 * is 1; a nested pair's token 0 leaves the outer one's region on. */
void es_json_mem_off(int token);
/* Start the region over if nothing allocated in it is alive; returns 1 if it did. Call it
 * where the runtime drops a batch's payloads (lib/batch.c). */
int es_json_mem_reset(void);

typedef struct es_json_mem_stats {
    int64_t allocs;   /* allocations served from the region since start */
    int64_t fallback; /* allocations made while on but served by malloc (region full) */
    int64_t resets;   /* times the region started over */
    int64_t skipped;  /* resets refused: something allocated in the region was alive */
    size_t high;      /* the most of the region used in one round, bytes */
    int64_t live;     /* region allocations not yet freed */
} es_json_mem_stats_t;

/* A copy of the counters (for logs and tests). */
void es_json_mem_stats(es_json_mem_stats_t *out);

#endif
