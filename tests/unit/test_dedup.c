/*
 * test_dedup.c: the dedup window's rules (lib/dedup.c): which inputs are too old to be told
 * from a copy, how a partition's newest time moves (a clock ahead cannot push it far), the
 * partition ids stored in processed and positions.
 */
#include <check.h>
#include <stdint.h>
#include <string.h>

#include "dedup.h"

Suite *dedup_suite(void);

#define W 1000000 /* a window of 1,000 s */
#define T0 1700000000000LL

START_TEST(test_nothing_handled_yet)
{
    /* a fresh partition (newest 0) takes anything, however old */
    ck_assert(!es_dedup_too_old(0, 0, W));
    ck_assert(!es_dedup_too_old(0, 1, W));
    ck_assert(!es_dedup_too_old(0, T0, W));
}
END_TEST

START_TEST(test_window_edges)
{
    int64_t newest = T0;
    ck_assert(!es_dedup_too_old(newest, newest, W));
    ck_assert(!es_dedup_too_old(newest, newest + 5, W)); /* newer than the newest */
    ck_assert(!es_dedup_too_old(newest, newest - W, W)); /* exactly at the edge: recognised */
    ck_assert(es_dedup_too_old(newest, newest - W - 1, W));
    ck_assert(es_dedup_too_old(newest, 0, W));
    ck_assert(es_dedup_too_old(newest, -1, W));
}
END_TEST

START_TEST(test_advance)
{
    int64_t now = T0;
    ck_assert_int_eq(es_dedup_advance(0, T0 - 10, now), T0 - 10);
    /* older inputs never move it back */
    ck_assert_int_eq(es_dedup_advance(T0 - 10, T0 - 500, now), T0 - 10);
    ck_assert_int_eq(es_dedup_advance(T0 - 10, T0 - 10, now), T0 - 10);
    /* a little ahead of our clock: counted as it is */
    ck_assert_int_eq(es_dedup_advance(T0, T0 + ES_DEDUP_SKEW_MS, now), T0 + ES_DEDUP_SKEW_MS);
    /* far ahead (a client's clock years off): no further than our clock plus the skew */
    ck_assert_int_eq(es_dedup_advance(T0, T0 + 365LL * 86400000, now), T0 + ES_DEDUP_SKEW_MS);
    /* ... so what comes next from a correct clock is not too old */
    int64_t newest = es_dedup_advance(T0, T0 + 365LL * 86400000, now);
    ck_assert(!es_dedup_too_old(newest, now + 1, W));
}
END_TEST

START_TEST(test_sequence_is_order_independent_of_batches)
{
    /* the decision for each input depends on the inputs before it, not on how they were
     * batched: fold the same sequence in one go and in two halves */
    const int64_t times[] = {T0, T0 + 10, T0 - 2 * W, T0 + 3 * W, T0 + W, T0 + 2 * W + 5};
    const int expect_old[] = {0, 0, 1, 0, 1, 0};
    int64_t newest = 0;
    for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
        int old = es_dedup_too_old(newest, times[i], W);
        ck_assert_msg(old == expect_old[i], "input %zu", i);
        if (!old) {
            newest = es_dedup_advance(newest, times[i], T0 + 10 * W);
        }
    }
    ck_assert_int_eq(newest, T0 + 3 * W);
}
END_TEST

START_TEST(test_part_ids)
{
    /* fixed forever: stored rows carry them (cross-checked with an independent FNV-1a) */
    ck_assert_int_eq(es_dedup_part("accounts.events", 3), -7339468870976706743LL);
    ck_assert_int_eq(es_dedup_part("accounts.events", 0), -7339472169511591376LL);
    ck_assert_int_eq(es_dedup_part("a", 1), -8206930552769186857LL);
    ck_assert_int_ne(es_dedup_part("accounts.events", 1), es_dedup_part("accounts.events", 2));
    ck_assert_int_ne(es_dedup_part("accounts.events", 1), es_dedup_part("accounts.commands", 1));
    /* the separator keeps the topic's bytes apart from the partition's */
    ck_assert_int_ne(es_dedup_part("a", 256), es_dedup_part("a\1", 0));
}
END_TEST

START_TEST(test_reason)
{
    char buf[256];
    const char *r = es_dedup_reason(buf, sizeof(buf), T0, T0 - 3 * W, W);
    ck_assert_ptr_eq(r, buf);
    ck_assert_ptr_nonnull(strstr(buf, "too old to deduplicate"));
    ck_assert_ptr_nonnull(strstr(buf, "3000 s before"));
    ck_assert_ptr_nonnull(strstr(buf, "within 1000 s"));
    /* truncated, still terminated */
    es_dedup_reason(buf, 10, T0, T0 - 3 * W, W);
    ck_assert_uint_eq(strlen(buf), 9);
}
END_TEST

Suite *dedup_suite(void)
{
    Suite *s = suite_create("dedup");
    TCase *tc = tcase_create("window");
    tcase_add_test(tc, test_nothing_handled_yet);
    tcase_add_test(tc, test_window_edges);
    tcase_add_test(tc, test_advance);
    tcase_add_test(tc, test_sequence_is_order_independent_of_batches);
    tcase_add_test(tc, test_part_ids);
    tcase_add_test(tc, test_reason);
    suite_add_tcase(s, tc);
    return s;
}
