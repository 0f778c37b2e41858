/*
 * test_arena.c: the per-batch arena (lib/arena.c): zeroed, aligned, growing past its block,
 * one block after a reset, overflow refused.
 */
#include <check.h>
#include <stdint.h>
#include <string.h>

#include "arena.h"

Suite *arena_suite(void);

START_TEST(test_zeroed_and_aligned)
{
    es_arena_t a;
    es_arena_init(&a);
    for (int round = 0; round < 3; round++) {
        for (size_t n = 1; n < 200; n += 7) {
            unsigned char *p = es_arena_calloc(&a, n, 3);
            ck_assert_ptr_nonnull(p);
            ck_assert_uint_eq((uintptr_t)p % 16, 0);
            for (size_t i = 0; i < n * 3; i++) {
                ck_assert_uint_eq(p[i], 0);
            }
            memset(p, 0xab, n * 3); /* dirty it: the next round must get zeroes again */
        }
        es_arena_reset(&a);
    }
    es_arena_fini(&a);
}
END_TEST

START_TEST(test_grows_then_one_block)
{
    es_arena_t a;
    es_arena_init(&a);
    void *x = es_arena_calloc(&a, 1000, 1000); /* more than any block so far */
    void *y = es_arena_calloc(&a, 10, 100);
    ck_assert_ptr_nonnull(x);
    ck_assert_ptr_nonnull(y);
    ck_assert_ptr_ne(x, y);
    es_arena_reset(&a);
    ck_assert_uint_ge(a.cap, 1000 * 1000);
    ck_assert_ptr_null(a.extra);
    /* the same round again fits in the one block */
    ck_assert_ptr_nonnull(es_arena_calloc(&a, 1000, 1000));
    ck_assert_ptr_nonnull(es_arena_calloc(&a, 10, 100));
    ck_assert_ptr_null(a.extra);
    es_arena_fini(&a);
}
END_TEST

START_TEST(test_overflow_refused)
{
    es_arena_t a;
    es_arena_init(&a);
    ck_assert_ptr_null(es_arena_calloc(&a, SIZE_MAX / 2, 3));
    ck_assert_ptr_nonnull(es_arena_calloc(&a, 0, 8)); /* an empty array is still a pointer */
    es_arena_fini(&a);
}
END_TEST

Suite *arena_suite(void)
{
    Suite *s = suite_create("arena");
    TCase *tc = tcase_create("arena");
    tcase_add_test(tc, test_zeroed_and_aligned);
    tcase_add_test(tc, test_grows_then_one_block);
    tcase_add_test(tc, test_overflow_refused);
    suite_add_tcase(s, tc);
    return s;
}
