/*
 * strmap.h: a string -> index map for batch-sized working sets (open addressing, grows).
 * Services use it to find the in-memory copy of an aggregate touched by several inputs of
 * one batch. Keys are copied.
 */
#ifndef ES_STRMAP_H
#define ES_STRMAP_H

#include <stddef.h>

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

#endif
