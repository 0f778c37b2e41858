/*
 * test_strmap.c: lib/strmap.c's id set (es_idset_t), the working set of every batch handler:
 * distinct ids in first-added order with their slots, refusing more than its capacity, and
 * emptied by a reset for the next batch.
 */
#include <check.h>
#include <stdio.h>

#include "../../lib/strmap.h"

START_TEST(test_idset)
{
    es_arena_t arena;
    es_arena_init(&arena);
    es_idset_t s;
    es_idset_init(&s);
    ck_assert_int_eq(es_idset_reset(&s, &arena, 3), 0);
    ck_assert_int_eq(es_idset_add(&s, "b"), 0);
    ck_assert_int_eq(es_idset_add(&s, "a"), 0);
    ck_assert_int_eq(es_idset_add(&s, "b"), 0); /* already there: no new slot */
    ck_assert_uint_eq(s.n, 2);
    ck_assert_str_eq(s.ids[0], "b");
    ck_assert_str_eq(s.ids[1], "a");
    ck_assert_uint_eq(es_idset_find(&s, "a"), 1);
    ck_assert_uint_eq(es_idset_find(&s, "zz"), (size_t)-1);
    ck_assert_int_eq(es_idset_add(&s, "c"), 0);
    ck_assert_int_eq(es_idset_add(&s, "d"), -1); /* full */
    ck_assert_uint_eq(s.n, 3);
    /* the next batch starts empty */
    es_arena_reset(&arena);
    ck_assert_int_eq(es_idset_reset(&s, &arena, 1), 0);
    ck_assert_uint_eq(s.n, 0);
    ck_assert_uint_eq(es_idset_find(&s, "b"), (size_t)-1);
    ck_assert_int_eq(es_idset_add(&s, "x"), 0);
    ck_assert_uint_eq(es_idset_find(&s, "x"), 0);
    es_idset_fini(&s);
    es_arena_fini(&arena);
}
END_TEST

Suite *strmap_suite(void);
Suite *strmap_suite(void)
{
    Suite *s = suite_create("strmap");
    TCase *tc = tcase_create("idset");
    tcase_add_test(tc, test_idset);
    suite_add_tcase(s, tc);
    return s;
}
