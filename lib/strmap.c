/*
 * strmap.c: string -> index map (see strmap.h).
 */
#include "strmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    }
    return h ^ (h >> 32);
}

void es_strmap_init(es_strmap_t *m)
{
    memset(m, 0, sizeof(*m));
}

void es_strmap_clear(es_strmap_t *m)
{
    for (size_t i = 0; i < m->cap; i++) {
        free(m->keys[i]);
        m->keys[i] = NULL;
    }
    m->cnt = 0;
}

void es_strmap_fini(es_strmap_t *m)
{
    es_strmap_clear(m);
    free(m->keys);
    free(m->vals);
    es_strmap_init(m);
}

size_t es_strmap_get(const es_strmap_t *m, const char *key)
{
    if (!m->cap) {
        return (size_t)-1;
    }
    for (size_t i = hash(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (!m->keys[i]) {
            return (size_t)-1;
        }
        if (!strcmp(m->keys[i], key)) {
            return m->vals[i];
        }
    }
}

static int grow(es_strmap_t *m)
{
    size_t cap = m->cap ? m->cap * 2 : 64;
    char **keys = calloc(cap, sizeof(*keys));
    size_t *vals = calloc(cap, sizeof(*vals));
    if (!keys || !vals) {
        free(keys);
        free(vals);
        return -1;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (m->keys[i]) {
            size_t j = hash(m->keys[i]) & (cap - 1);
            while (keys[j]) {
                j = (j + 1) & (cap - 1);
            }
            keys[j] = m->keys[i];
            vals[j] = m->vals[i];
        }
    }
    free(m->keys);
    free(m->vals);
    m->keys = keys;
    m->vals = vals;
    m->cap = cap;
    return 0;
}

int es_strmap_put(es_strmap_t *m, const char *key, size_t val)
{
    if ((m->cnt + 1) * 2 > m->cap && grow(m) != 0) {
        return -1;
    }
    size_t i = hash(key) & (m->cap - 1);
    for (; m->keys[i]; i = (i + 1) & (m->cap - 1)) {
        if (!strcmp(m->keys[i], key)) {
            m->vals[i] = val;
            return 0;
        }
    }
    m->keys[i] = strdup(key);
    if (!m->keys[i]) {
        return -1;
    }
    m->vals[i] = val;
    m->cnt++;
    return 0;
}

void es_idset_init(es_idset_t *s)
{
    s->ids = NULL;
    s->n = s->cap = 0;
    es_strmap_init(&s->index);
}

void es_idset_fini(es_idset_t *s)
{
    es_strmap_fini(&s->index);
}

int es_idset_reset(es_idset_t *s, es_arena_t *arena, size_t cap)
{
    es_strmap_clear(&s->index);
    s->n = 0;
    s->cap = cap;
    s->arena = arena;
    s->ids = es_arena_calloc(arena, cap ? cap : 1, sizeof(*s->ids));
    return s->ids ? 0 : -1;
}

int es_idset_add(es_idset_t *s, const char *id)
{
    if (es_strmap_get(&s->index, id) != (size_t)-1) {
        return 0;
    }
    size_t len = strlen(id) + 1;
    char *copy = s->n < s->cap ? es_arena_calloc(s->arena, len, 1) : NULL;
    if (!copy || es_strmap_put(&s->index, id, s->n) != 0) {
        return -1;
    }
    memcpy(copy, id, len);
    s->ids[s->n++] = copy;
    return 0;
}

size_t es_idset_find(const es_idset_t *s, const char *id)
{
    return es_strmap_get(&s->index, id);
}
