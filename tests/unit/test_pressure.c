/*
 * test_pressure.c: CPU pressure samples (lib/pressure.c): none before a first reading, then a
 * share of wall time between 0 and 1, or -1 on a kernel that does not report pressure.
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

Suite *pressure_suite(void);
Suite *pressure_suite(void)
{
    Suite *s = suite_create("pressure");
    TCase *tc = tcase_create("pressure");
    tcase_add_test(tc, test_first_sample_has_no_share);
    tcase_add_test(tc, test_share_is_a_fraction);
    suite_add_tcase(s, tc);
    return s;
}
