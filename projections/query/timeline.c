/*
 * timeline.c: causal ordering of a saga's steps (see timeline.h).
 *
 * Each step has at most one cause, so the causes form a forest (plus, in bad data, cycles).
 * Cycles are cut first (at their earliest step), which leaves a forest. The order is then a
 * topological sort that always places the earliest available step next: a min heap of time
 * ranks holds the steps whose cause is placed. Every step is placed exactly once, so the whole
 * costs O(n log n).
 */
#include "timeline.h"

#include <stdlib.h>
#include <string.h>

typedef struct by_time {
    const es_query_timeline_step_t *s;
    size_t i;
} by_time_t;

typedef struct by_id {
    const char *id;
    size_t rank;
    size_t i;
} by_id_t;

static int cmp_i64(int64_t a, int64_t b)
{
    return (a > b) - (a < b);
}

/* Time, then topic, partition and offset, then the input order: a total order. */
static int cmp_time(const void *pa, const void *pb)
{
    const by_time_t *a = pa, *b = pb;
    int c = cmp_i64(a->s->occurred_ms, b->s->occurred_ms);
    if (!c) {
        c = strcmp(a->s->topic, b->s->topic);
    }
    if (!c) {
        c = cmp_i64(a->s->partition, b->s->partition);
    }
    if (!c) {
        c = cmp_i64(a->s->offset, b->s->offset);
    }
    if (!c) {
        c = (a->i > b->i) - (a->i < b->i);
    }
    return c;
}

/* Id, then time rank: of steps sharing an id (bad data), the earliest is found first. */
static int cmp_id(const void *pa, const void *pb)
{
    const by_id_t *a = pa, *b = pb;
    int c = strcmp(a->id, b->id);
    return c ? c : (a->rank > b->rank) - (a->rank < b->rank);
}

/* The first entry of ids[0..n) whose id is `id`, or n. */
static size_t id_lower_bound(const by_id_t *ids, size_t n, const char *id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(ids[mid].id, id) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo < n && !strcmp(ids[lo].id, id) ? lo : n;
}

/* A binary min heap of ranks. */
typedef struct heap {
    size_t *a;
    size_t len;
} heap_t;

static void heap_push(heap_t *h, size_t v)
{
    size_t k = h->len++;
    while (k > 0 && h->a[(k - 1) / 2] > v) {
        h->a[k] = h->a[(k - 1) / 2];
        k = (k - 1) / 2;
    }
    h->a[k] = v;
}

static size_t heap_pop(heap_t *h)
{
    size_t top = h->a[0];
    size_t v = h->a[--h->len];
    size_t k = 0;
    for (;;) {
        size_t c = 2 * k + 1;
        if (c >= h->len) {
            break;
        }
        if (c + 1 < h->len && h->a[c + 1] < h->a[c]) {
            c++;
        }
        if (h->a[c] >= v) {
            break;
        }
        h->a[k] = h->a[c];
        k = c;
    }
    if (h->len > 0) {
        h->a[k] = v;
    }
    return top;
}

/* Cut every cycle of causes (bad data) at its earliest step, whose cause becomes -1. Each
 * step has at most one cause, so walking up from a step either ends (a root, or a step seen
 * by an earlier walk) or comes back to a step of this walk, which is on a cycle. Each step is
 * walked once: O(n). seen[] is caller storage of n zeros. */
static void cut_cycles(long *cause, const size_t *rank, size_t *seen, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        long x = (long)i;
        while (x >= 0 && !seen[x]) {
            seen[x] = i + 1;
            x = cause[x];
        }
        if (x < 0 || seen[x] != i + 1) {
            continue;
        }
        size_t best = (size_t)x;
        for (size_t y = (size_t)cause[x]; y != (size_t)x; y = (size_t)cause[y]) {
            if (rank[y] < rank[best]) {
                best = y;
            }
        }
        cause[best] = -1;
    }
}

int es_query_timeline_order(const es_query_timeline_step_t *steps, size_t n, int64_t started_ms,
                            es_query_timeline_entry_t *out)
{
    if (n == 0) {
        return 0;
    }
    int rc = -1;
    by_time_t *bt = malloc(n * sizeof(*bt));
    by_id_t *ids = malloc(n * sizeof(*ids));
    size_t *ord = malloc(n * sizeof(*ord));        /* rank -> step */
    size_t *rank = malloc(n * sizeof(*rank));      /* step -> rank */
    long *cause = malloc(n * sizeof(*cause));      /* step -> step, -1 */
    size_t *first = calloc(n + 1, sizeof(*first)); /* kids of s: kids[first[s]..first[s + 1]) */
    size_t *kids = malloc(n * sizeof(*kids));
    size_t *seen = calloc(n, sizeof(*seen));
    heap_t heap = {malloc(n * sizeof(size_t)), 0};
    if (!bt || !ids || !ord || !rank || !cause || !first || !kids || !seen || !heap.a) {
        goto out;
    }

    for (size_t i = 0; i < n; i++) {
        bt[i].s = &steps[i];
        bt[i].i = i;
    }
    qsort(bt, n, sizeof(*bt), cmp_time);
    for (size_t r = 0; r < n; r++) {
        ord[r] = bt[r].i;
        rank[bt[r].i] = r;
    }

    /* Each step's cause among the steps, never itself. */
    for (size_t i = 0; i < n; i++) {
        ids[i].id = steps[i].event_id;
        ids[i].rank = rank[i];
        ids[i].i = i;
    }
    qsort(ids, n, sizeof(*ids), cmp_id);
    for (size_t i = 0; i < n; i++) {
        cause[i] = -1;
        const char *cid = steps[i].causation_id;
        if (!cid || !*cid) {
            continue;
        }
        for (size_t k = id_lower_bound(ids, n, cid); k < n && !strcmp(ids[k].id, cid); k++) {
            if (ids[k].i != i) {
                cause[i] = (long)ids[k].i;
                break;
            }
        }
    }

    /* The children of each step, as a counting sort by cause: count, sum up to the end of
     * each range, then fill each range backwards, which leaves first[c] at its start. */
    for (size_t i = 0; i < n; i++) {
        if (cause[i] >= 0) {
            first[cause[i]]++;
        }
    }
    for (size_t i = 1; i <= n; i++) {
        first[i] += first[i - 1];
    }
    for (size_t i = 0; i < n; i++) {
        if (cause[i] >= 0) {
            kids[--first[cause[i]]] = i;
        }
    }

    cut_cycles(cause, rank, seen, n);
    for (size_t i = 0; i < n; i++) {
        if (cause[i] < 0) {
            heap_push(&heap, rank[i]);
        }
    }
    for (size_t k = 0; k < n; k++) {
        if (heap.len == 0) {
            goto out; /* cannot happen: with the cycles cut, every step descends from a root */
        }
        size_t x = ord[heap_pop(&heap)];
        out[k].step = x;
        out[k].cause = cause[x];
        out[k].at_ms = steps[x].occurred_ms - started_ms;
        out[k].took_ms = -1;
        if (cause[x] >= 0) {
            int64_t took = steps[x].occurred_ms - steps[cause[x]].occurred_ms;
            out[k].took_ms = took < 0 ? 0 : took;
        }
        for (size_t j = first[x]; j < first[x + 1]; j++) {
            /* a step cut out of a cycle is a root, pushed already */
            if (cause[kids[j]] == (long)x) {
                heap_push(&heap, rank[kids[j]]);
            }
        }
    }
    rc = 0;
out:
    free(bt);
    free(ids);
    free(ord);
    free(rank);
    free(cause);
    free(first);
    free(kids);
    free(seen);
    free(heap.a);
    return rc;
}
