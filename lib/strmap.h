/*
 * strmap.h: a string -> index map for batch-sized working sets (open addressing, grows).
 * Services use it to find the in-memory copy of an aggregate touched by several inputs of
 * one batch. Keys are copied.
 */
#ifndef ES_STRMAP_H
#define ES_STRMAP_H

#include <stddef.h>

#include "arena.h"

typedef struct es_strmap {
    char **keys;
    size_t *vals;
    size_t cap, cnt;
} es_strmap_t;

void es_strmap_init(es_strmap_t *m);
void es_strmap_fini(es_strmap_t *m);
/* Remove every key, keep the allocation. */
void es_strmap_clear(es_strmap_t *m);
/* The value for `key`, or (size_t)-1. */
size_t es_strmap_get(const es_strmap_t *m, const char *key);
/* Insert or replace. Returns 0 or -1 (out of memory). */
int es_strmap_put(es_strmap_t *m, const char *key, size_t val);

/*
 * A batch's set of distinct ids, in the order first added, each with its slot: what a handler
 * loads, keeps in parallel arrays (slot i is ids[i]) and writes back. The ids array and a
 * copy of each id live in the batch's arena, so the inputs they came from may change.
 */
typedef struct es_idset {
    const char **ids;
    size_t n, cap;
    es_strmap_t index; /* id -> slot */
    es_arena_t *arena; /* borrowed from es_idset_reset() */
} es_idset_t;

void es_idset_init(es_idset_t *s);
void es_idset_fini(es_idset_t *s);
/* Empty `s` and give it room for `cap` ids from `arena` (borrowed). Returns 0 or -1. */
int es_idset_reset(es_idset_t *s, es_arena_t *arena, size_t cap);
/* Add a copy of `id` unless present. Returns 0, or -1 when full or out of memory. */
int es_idset_add(es_idset_t *s, const char *id);
/* The slot of `id`, or (size_t)-1. */
size_t es_idset_find(const es_idset_t *s, const char *id);

#endif
