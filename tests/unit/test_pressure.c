/*
 * test_pressure.c: CPU pressure samples (lib/pressure.c): none before a first reading, then a
 * share of wall time between 0 and 1, or -1 on a kernel that does not report pressure; the
 * pressure a loop follows, up at once and down slowly; how long a batch lingers for it.
 */
#include <check.h>
#include <time.h>
#include <unistd.h>

#include "pressure.h"

START_TEST(test_first_sample_has_no_share)
{
    es_pressure_t p;
    es_pressure_init(&p);
    ck_assert(es_pressure_sample(&p) == -1);
}
END_TEST

START_TEST(test_share_is_a_fraction)
{
    es_pressure_t p;
    es_pressure_init(&p);
    es_pressure_sample(&p);
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    double share = es_pressure_sample(&p);
    if (access("/proc/pressure/cpu", R_OK) == 0) {
        ck_assert_msg(share >= 0 && share <= 1, "share %f", share);
    } else {
        ck_assert(share == -1);
    }
}
END_TEST

START_TEST(test_follow_rises_at_once_and_falls_slowly)
{
    ck_assert(es_pressure_follow(-1, -1, 0.25) < 0);      /* nothing yet */
    ck_assert(es_pressure_follow(-1, 0.4, 0.25) == 0.4);  /* the first sample */
    ck_assert(es_pressure_follow(0.4, 0.9, 0.25) == 0.9); /* up: at once */
    double down = es_pressure_follow(0.8, 0.4, 0.25);     /* down: a quarter of the way */
    ck_assert_msg(down > 0.6999 && down < 0.7001, "down %f", down);
    ck_assert(es_pressure_follow(0.7, -1, 0.25) == 0.7); /* no sample: kept */
    /* the swing it damps: pressure high while nobody lingers, low while all do */
    double f = -1;
    for (int i = 0; i < 20; i++) {
        f = es_pressure_follow(f, i % 2 ? 0.4 : 0.8, 0.25);
    }
    ck_assert_msg(f > 0.65 && f <= 0.8, "followed %f", f);
}
END_TEST

START_TEST(test_linger_grows_with_the_pressure)
{
    /* below the threshold, unknown pressure, no linger configured: at once */
    ck_assert_int_eq(es_pressure_linger_us(0.49, 5000, 4, 0), 0);
    ck_assert_int_eq(es_pressure_linger_us(-1, 5000, 4, 0), 0);
    ck_assert_int_eq(es_pressure_linger_us(0.9, 5000, 0, 0), 0);
    /* at the threshold the shortest linger, then in proportion, the whole from the top */
    ck_assert_int_eq(es_pressure_linger_us(0.5, 5000, 4, 0), ES_LINGER_MIN_US);
    ck_assert_int_eq(es_pressure_linger_us(0.65, 5000, 4, 0), 2000);
    ck_assert_int_eq(es_pressure_linger_us(0.8, 5000, 4, 0), 4000);
    ck_assert_int_eq(es_pressure_linger_us(1.0, 5000, 4, 0), 4000);
    /* a short linger_ms never goes under the shortest linger */
    ck_assert_int_eq(es_pressure_linger_us(0.6, 5000, 2, 0), ES_LINGER_MIN_US);
    /* too slow a stream to gather ES_LINGER_MIN_RECORDS in one linger: at once */
    ck_assert_int_eq(es_pressure_linger_us(0.9, 999, 4, 0), 0);
    ck_assert_int_eq(es_pressure_linger_us(0.9, 1000, 4, 0), 4000);
    /* a loop nothing waits on lingers its whole linger_ms from the threshold */
    ck_assert_int_eq(es_pressure_linger_us(0.5, 100, 100, 1), 100000);
    ck_assert_int_eq(es_pressure_linger_us(0.4, 100, 100, 1), 0);
}
END_TEST

Suite *pressure_suite(void);
Suite *pressure_suite(void)
{
    Suite *s = suite_create("pressure");
    TCase *tc = tcase_create("pressure");
    tcase_add_test(tc, test_first_sample_has_no_share);
    tcase_add_test(tc, test_share_is_a_fraction);
    tcase_add_test(tc, test_follow_rises_at_once_and_falls_slowly);
    tcase_add_test(tc, test_linger_grows_with_the_pressure);
    suite_add_tcase(s, tc);
    return s;
}
