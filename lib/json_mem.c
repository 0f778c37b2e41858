/*
 * json_mem.c: a bump region for jansson's allocations while decoding (see json_mem.h).
 *
 * The region is reserved once with mmap (address space only: pages are taken as they are
 * touched) and never moves, so "is this pointer ours" is one subtraction and a compare, and no
 * allocation needs a header: what free() would get stays a plain malloc pointer. A count of
 * live region allocations decides when the region may start over; jansson frees everything it
 * allocated (it has no realloc), so the count reaches zero once a batch's trees are released.
 * Under AddressSanitizer what a round used is poisoned when the region starts over, so a use
 * after a reset is reported as one.
 */
#include "json_mem.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define REGION_SIZE ((size_t)1 << 30) /* address space; a batch of 2,000 takes a few MiB */
#define ALIGN 16
#define KEEP_SIZE ((size_t)64 << 20) /* what a reset leaves resident after an unusual round */

static unsigned char *region; /* NULL until reserved; MAP_FAILED never stored */
static size_t used;           /* bytes handed out this round (the holder's thread only) */
static atomic_long live;      /* region allocations not yet freed */
static atomic_flag held = ATOMIC_FLAG_INIT;
static _Thread_local int on; /* this thread holds the region */
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int reserved;           /* the reservation succeeded */
static es_json_mem_stats_t st; /* written by the holder only (live and high apart) */

static void *mem_alloc(size_t n)
{
    if (on) {
        size_t len = (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
        if (len >= n && REGION_SIZE - used >= len) {
            void *p = region + used;
            used += len;
            UNPOISON(p, n);
            atomic_fetch_add_explicit(&live, 1, memory_order_relaxed);
            st.allocs++;
            return p;
        }
        st.fallback++;
    }
    return malloc(n);
}

static void mem_free(void *p)
{
    if (region && (uintptr_t)p - (uintptr_t)region < REGION_SIZE) {
        /* release: a reset that sees the count at zero sees every use of the memory before */
        atomic_fetch_sub_explicit(&live, 1, memory_order_release);
        return;
    }
    free(p);
}

static void reserve(void)
{
    void *p = mmap(NULL, REGION_SIZE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        return;
    }
    region = p;
    reserved = 1;
    json_set_alloc_funcs(mem_alloc, mem_free);
}

int es_json_mem_on(void)
{
    if (on) {
        return 0;
    }
    pthread_once(&once, reserve);
    if (!reserved || atomic_flag_test_and_set(&held)) {
        return 0;
    }
    on = 1;
    return 1;
}

void es_json_mem_off(int token)
{
    if (!token || !on) {
        return;
    }
    on = 0;
    atomic_flag_clear(&held);
}

int es_json_mem_reset(void)
{
    if (!reserved || used == 0) {
        return 0;
    }
    /* only between rounds of the holder: take the region so no thread bumps meanwhile */
    int was_on = on;
    if (!was_on && atomic_flag_test_and_set(&held)) {
        return 0;
    }
    int done = 0;
    if (atomic_load_explicit(&live, memory_order_acquire) == 0) {
        if (used > st.high) {
            st.high = used;
        }
        POISON(region, used);
        if (used > KEEP_SIZE) {
            /* give the pages of an unusually large round back; they read as zeros if reused */
            (void)madvise(region + KEEP_SIZE, used - KEEP_SIZE, MADV_DONTNEED);
        }
        used = 0;
        st.resets++;
        done = 1;
    } else {
        st.skipped++;
    }
    if (!was_on) {
        atomic_flag_clear(&held);
    }
    return done;
}

void es_json_mem_stats(es_json_mem_stats_t *out)
{
    *out = st;
    out->live = atomic_load_explicit(&live, memory_order_relaxed);
    if (used > out->high) {
        out->high = used;
    }
}
