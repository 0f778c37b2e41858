/*
 * arena.c: a bump allocator reset per batch (see arena.h).
 */
#include "arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ALIGN 16

struct es_arena_chunk {
    es_arena_chunk_t *next;
    size_t size;
    /* the memory follows, aligned */
};

static size_t round_up(size_t n)
{
    return (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
}

void es_arena_init(es_arena_t *a)
{
    memset(a, 0, sizeof(*a));
}

void *es_arena_calloc(es_arena_t *a, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size) {
        return NULL;
    }
    size_t bytes = n * size;
    size_t len = round_up(bytes > 0 ? bytes : 1);
    if (a->base && a->cap - a->used >= len) {
        void *p = a->base + a->used;
        a->used += len;
        memset(p, 0, len);
        return p;
    }
    /* this round outgrew the block: take a chunk of its own, remembered for the next round */
    size_t hdr = round_up(sizeof(es_arena_chunk_t));
    es_arena_chunk_t *c = calloc(1, hdr + len);
    if (!c) {
        return NULL;
    }
    c->size = len;
    c->next = a->extra;
    a->extra = c;
    a->extra_total += len;
    return (unsigned char *)c + hdr;
}

void es_arena_reset(es_arena_t *a)
{
    if (a->extra) {
        size_t want = a->cap + a->extra_total;
        while (a->extra) {
            es_arena_chunk_t *next = a->extra->next;
            free(a->extra);
            a->extra = next;
        }
        a->extra_total = 0;
        unsigned char *base = malloc(want);
        if (base) {
            free(a->base);
            a->base = base;
            a->cap = want;
        }
    }
    a->used = 0;
}

void es_arena_fini(es_arena_t *a)
{
    es_arena_reset(a);
    free(a->base);
    es_arena_init(a);
}
