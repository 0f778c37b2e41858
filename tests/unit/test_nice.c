/*
 * test_nice.c: yielding the CPU (lib/nice.c): the calling thread takes the nice value asked
 * (Check runs each test in a child process, so the runner keeps its own), and a connection
 * that reached no local backend leaves every process alone.
 */
#include <check.h>
#include <errno.h>
#include <sys/resource.h>

#include "nice.h"

START_TEST(test_self_takes_the_nice_value)
{
    char errstr[256];
    ck_assert_int_eq(es_nice_self(7, errstr, sizeof(errstr)), 0);
    errno = 0;
    ck_assert_int_eq(getpriority(PRIO_PROCESS, 0), 7);
}
END_TEST

START_TEST(test_no_connection_no_backend)
{
    char errstr[256];
    ck_assert_int_eq(es_nice_pg_backend(NULL, 19, errstr, sizeof(errstr)), 0);
    PGconn *pg = PQconnectdb("host=/nonexistent-es-socket-dir connect_timeout=1");
    ck_assert_int_eq(es_nice_pg_backend(pg, 19, errstr, sizeof(errstr)), 0);
    PQfinish(pg);
}
END_TEST

Suite *nice_suite(void);
Suite *nice_suite(void)
{
    Suite *s = suite_create("nice");
    TCase *tc = tcase_create("nice");
    tcase_add_test(tc, test_self_takes_the_nice_value);
    tcase_add_test(tc, test_no_connection_no_backend);
    suite_add_tcase(s, tc);
    return s;
}
