/*
 * test_json_mem.c: decoded payloads' memory (lib/json_mem.c): while on, jansson allocates from
 * the region and frees only count; the region starts over only when all of it was freed; a
 * string made while off is a plain malloc one; a second thread cannot take the region while
 * one holds it. (The sanitizer run keeps every test in one process: the checks compare the
 * counters with what they were before, and each test leaves the region empty.)
 */
#include <check.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "json_mem.h"

static json_t *payload(void)
{
    return json_pack("{s:s, s:I, s:[{s:s, s:i}, {s:s, s:i}]}", "order_id", "o-1", "total", 200,
                     "items", "product_id", "p-1", "quantity", 1, "product_id", "p-2", "quantity",
                     1);
}

START_TEST(test_allocates_from_the_region_and_starts_over)
{
    es_json_mem_stats_t st0, st;
    es_json_mem_stats(&st0);
    int outer = es_json_mem_on();
    ck_assert_int_eq(outer, 1);
    int inner = es_json_mem_on();
    ck_assert_int_eq(inner, 0); /* nested: already on */
    json_t *a = payload();
    es_json_mem_off(inner); /* the outer pair's region stays on */
    es_json_mem_stats(&st);
    int64_t after_a = st.allocs;
    json_t *b = payload();
    es_json_mem_off(outer);
    es_json_mem_stats(&st);
    ck_assert_int_gt(st.allocs, after_a);
    ck_assert_ptr_nonnull(a);
    es_json_mem_stats(&st);
    ck_assert_int_gt(st.allocs - st0.allocs, 10);
    ck_assert_int_eq(st.live, st.allocs - st0.allocs);
    ck_assert_int_eq(st.fallback, st0.fallback);

    /* alive: the region may not start over */
    ck_assert_int_eq(es_json_mem_reset(), 0);
    json_decref(a);
    ck_assert_int_eq(es_json_mem_reset(), 0);
    es_json_mem_stats(&st);
    ck_assert_int_eq(st.skipped - st0.skipped, 2);
    ck_assert_str_eq(json_string_value(json_object_get(b, "order_id")), "o-1");
    json_decref(b);
    ck_assert_int_eq(es_json_mem_reset(), 1);
    es_json_mem_stats(&st);
    ck_assert_int_eq(st.live, 0);
    ck_assert_int_eq(st.resets - st0.resets, 1);
    ck_assert_uint_gt(st.high, 0);

    /* the next round reuses the region from its start, and the values are whole */
    ck_assert_int_eq(es_json_mem_on(), 1);
    json_t *c = payload();
    es_json_mem_off(1);
    ck_assert_int_eq(json_integer_value(json_object_get(c, "total")), 200);
    json_decref(c);
    ck_assert_int_eq(es_json_mem_reset(), 1);
}
END_TEST

START_TEST(test_mixes_with_malloc)
{
    ck_assert_int_eq(es_json_mem_on(), 1);
    json_t *decoded = payload();
    es_json_mem_off(1);
    /* made while off: plain malloc memory, released with free() or by jansson */
    json_t *extra = json_string("added by a handler");
    json_object_set_new(decoded, "note", extra);
    char *text = json_dumps(decoded, JSON_COMPACT | JSON_SORT_KEYS);
    ck_assert_ptr_nonnull(text);
    ck_assert_ptr_nonnull(strstr(text, "\"note\":\"added by a handler\""));
    free(text);
    json_decref(decoded); /* frees the heap child, counts the region ones */
    ck_assert_int_eq(es_json_mem_reset(), 1);
    es_json_mem_stats_t st;
    es_json_mem_stats(&st);
    ck_assert_int_eq(st.live, 0);
}
END_TEST

static void *try_on(void *arg)
{
    int *got = arg;
    *got = es_json_mem_on();
    json_t *j = payload(); /* from malloc: this thread does not hold the region */
    json_decref(j);
    es_json_mem_off(*got);
    return NULL;
}

START_TEST(test_one_thread_at_a_time)
{
    es_json_mem_stats_t st0, st;
    es_json_mem_stats(&st0);
    ck_assert_int_eq(es_json_mem_on(), 1);
    int got = -1;
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, try_on, &got), 0);
    pthread_join(t, NULL);
    ck_assert_int_eq(got, 0);
    es_json_mem_stats(&st);
    ck_assert_int_eq(st.allocs, st0.allocs);
    es_json_mem_off(1);
    /* released: another thread may take it now */
    ck_assert_int_eq(pthread_create(&t, NULL, try_on, &got), 0);
    pthread_join(t, NULL);
    ck_assert_int_eq(got, 1);
    es_json_mem_stats(&st);
    ck_assert_int_gt(st.allocs, st0.allocs);
    ck_assert_int_eq(st.live, 0);
    ck_assert_int_eq(es_json_mem_reset(), 1);
}
END_TEST

Suite *json_mem_suite(void);
Suite *json_mem_suite(void)
{
    Suite *s = suite_create("json_mem");
    TCase *tc = tcase_create("json_mem");
    tcase_add_test(tc, test_allocates_from_the_region_and_starts_over);
    tcase_add_test(tc, test_mixes_with_malloc);
    tcase_add_test(tc, test_one_thread_at_a_time);
    suite_add_tcase(s, tc);
    return s;
}
