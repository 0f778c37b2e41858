/*
 * arena.h: memory by lifetime. A batch's working memory (the inputs' views, the aggregates
 * they touch, the rows to write) comes from one arena that the runtime resets after each
 * batch: no per-object free, no leak across batches, and after the first large batch no
 * allocation at all.
 */
#ifndef ES_ARENA_H
#define ES_ARENA_H

#include <stddef.h>

typedef struct es_arena_chunk es_arena_chunk_t;

typedef struct es_arena {
    unsigned char *base; /* owned */
    size_t cap, used;
    es_arena_chunk_t *extra; /* overflow chunks of this round, owned */
    size_t extra_total;
} es_arena_t;

void es_arena_init(es_arena_t *a);
/* Zeroed room for n objects of `size` bytes, aligned for any type; valid until the next reset.
 * Returns NULL when out of memory or when n * size overflows. */
void *es_arena_calloc(es_arena_t *a, size_t n, size_t size);
/* Forget everything allocated; the next round gets one block as large as this round needed. */
void es_arena_reset(es_arena_t *a);
void es_arena_fini(es_arena_t *a);

#endif
