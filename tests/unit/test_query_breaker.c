/*
 * test_query_breaker.c: the query service's circuit breaker (projections/query/breaker.c):
 * it opens after the configured failures in a row and not before, a success in between starts
 * the count again, an open breaker refuses and counts what it refused, one probe at a time
 * goes once the pause is over, the probe's outcome closes it or reopens it for twice as long
 * (up to the longest pause), late outcomes of calls made before it opened move nothing, and
 * Retry-After is whole seconds rounded up.
 */
#include <check.h>

#include "../../projections/query/breaker.h"

/* Allow a call at `now`, expecting `want` (1 allowed, 0 refused) and the probe flag. */
static void expect_allow(es_breaker_t *b, int64_t now, int want, int want_probe)
{
    int probe = -1;
    ck_assert_int_eq(es_breaker_allow(b, now, &probe), want);
    ck_assert_int_eq(probe, want_probe);
}

/* `n` allowed calls at `now` that all fail. */
static void fail_n(es_breaker_t *b, int64_t now, int n)
{
    for (int i = 0; i < n; i++) {
        expect_allow(b, now, 1, 0);
        es_breaker_record(b, 0, 0, now);
    }
}

START_TEST(opens_after_threshold_in_a_row)
{
    es_breaker_t b;
    es_breaker_init(&b, 3, 1000, 8000);
    ck_assert_int_eq(b.state, ES_BREAKER_CLOSED);
    fail_n(&b, 0, 2);
    ck_assert_int_eq(b.state, ES_BREAKER_CLOSED);
    ck_assert_int_eq(es_breaker_retry_after_s(&b, 0), 0);
    fail_n(&b, 0, 1);
    ck_assert_int_eq(b.state, ES_BREAKER_OPEN);
    ck_assert_uint_eq(b.opened_total, 1);
    ck_assert_str_eq(es_breaker_state_name(b.state), "open");
}
END_TEST

START_TEST(success_resets_the_count)
{
    es_breaker_t b;
    es_breaker_init(&b, 3, 1000, 8000);
    fail_n(&b, 0, 2);
    expect_allow(&b, 0, 1, 0);
    es_breaker_record(&b, 1, 0, 0);
    fail_n(&b, 0, 2);
    ck_assert_int_eq(b.state, ES_BREAKER_CLOSED);
    fail_n(&b, 0, 1);
    ck_assert_int_eq(b.state, ES_BREAKER_OPEN);
}
END_TEST

START_TEST(open_refuses_and_counts)
{
    es_breaker_t b;
    es_breaker_init(&b, 1, 1000, 8000);
    fail_n(&b, 100, 1);
    expect_allow(&b, 100, 0, 0);
    expect_allow(&b, 1099, 0, 0);
    ck_assert_uint_eq(b.rejected_total, 2);
    ck_assert_int_eq(es_breaker_retry_after_s(&b, 100), 1);
    ck_assert_int_eq(es_breaker_retry_after_s(&b, 1099), 1);
}
END_TEST

START_TEST(one_probe_then_closed)
{
    es_breaker_t b;
    es_breaker_init(&b, 1, 1000, 8000);
    fail_n(&b, 0, 1);
    expect_allow(&b, 1000, 1, 1); /* the pause is over: the probe */
    ck_assert_int_eq(b.state, ES_BREAKER_HALF_OPEN);
    ck_assert_str_eq(es_breaker_state_name(b.state), "half_open");
    ck_assert_int_eq(es_breaker_retry_after_s(&b, 1000), 1);
    expect_allow(&b, 1001, 0, 0); /* one probe at a time */
    es_breaker_record(&b, 1, 1, 1002);
    ck_assert_int_eq(b.state, ES_BREAKER_CLOSED);
    expect_allow(&b, 1003, 1, 0);
    ck_assert_int_eq(es_breaker_retry_after_s(&b, 1003), 0);
}
END_TEST

START_TEST(failed_probe_doubles_the_pause_up_to_max)
{
    es_breaker_t b;
    es_breaker_init(&b, 1, 1000, 3000);
    fail_n(&b, 0, 1);
    int64_t now = 0;
    const int64_t pauses[] = {2000, 3000, 3000};
    for (size_t i = 0; i < sizeof(pauses) / sizeof(pauses[0]); i++) {
        now = b.open_until_ms;
        expect_allow(&b, now, 1, 1);
        es_breaker_record(&b, 0, 1, now);
        ck_assert_int_eq(b.state, ES_BREAKER_OPEN);
        ck_assert_int_eq(b.open_until_ms - now, pauses[i]);
        ck_assert_int_eq(es_breaker_retry_after_s(&b, now), (int)(pauses[i] / 1000));
    }
    ck_assert_uint_eq(b.opened_total, 4);
    /* a successful probe brings the first pause back */
    now = b.open_until_ms;
    expect_allow(&b, now, 1, 1);
    es_breaker_record(&b, 1, 1, now);
    fail_n(&b, now, 1);
    ck_assert_int_eq(b.open_until_ms - now, 1000);
}
END_TEST

START_TEST(late_outcomes_move_nothing)
{
    es_breaker_t b;
    es_breaker_init(&b, 2, 1000, 8000);
    expect_allow(&b, 0, 1, 0); /* two calls go out while closed */
    expect_allow(&b, 0, 1, 0);
    fail_n(&b, 0, 2);
    ck_assert_int_eq(b.state, ES_BREAKER_OPEN);
    es_breaker_record(&b, 1, 0, 10); /* the early calls answer late */
    es_breaker_record(&b, 0, 0, 10);
    ck_assert_int_eq(b.state, ES_BREAKER_OPEN);
    ck_assert_uint_eq(b.opened_total, 1);
    expect_allow(&b, 1000, 1, 1);
    es_breaker_record(&b, 1, 0, 1000); /* not the probe: still half open */
    ck_assert_int_eq(b.state, ES_BREAKER_HALF_OPEN);
    expect_allow(&b, 1000, 0, 0);
}
END_TEST

START_TEST(zero_threshold_never_opens)
{
    es_breaker_t b;
    es_breaker_init(&b, 0, 1000, 8000);
    fail_n(&b, 0, 1000);
    ck_assert_int_eq(b.state, ES_BREAKER_CLOSED);
    ck_assert_uint_eq(b.opened_total, 0);
}
END_TEST

START_TEST(retry_after_rounds_up)
{
    es_breaker_t b;
    es_breaker_init(&b, 1, 2500, 2500);
    fail_n(&b, 0, 1);
    ck_assert_int_eq(es_breaker_retry_after_s(&b, 0), 3);
    ck_assert_int_eq(es_breaker_retry_after_s(&b, 1500), 1);
    ck_assert_int_eq(es_breaker_retry_after_s(&b, 1499), 2);
    ck_assert_int_eq(es_breaker_retry_after_s(&b, 9999), 1); /* overdue: try now */
}
END_TEST

Suite *query_breaker_suite(void);
Suite *query_breaker_suite(void)
{
    Suite *s = suite_create("query_breaker");
    TCase *tc = tcase_create("breaker");
    tcase_add_test(tc, opens_after_threshold_in_a_row);
    tcase_add_test(tc, success_resets_the_count);
    tcase_add_test(tc, open_refuses_and_counts);
    tcase_add_test(tc, one_probe_then_closed);
    tcase_add_test(tc, failed_probe_doubles_the_pause_up_to_max);
    tcase_add_test(tc, late_outcomes_move_nothing);
    tcase_add_test(tc, zero_threshold_never_opens);
    tcase_add_test(tc, retry_after_rounds_up);
    suite_add_tcase(s, tc);
    return s;
}
