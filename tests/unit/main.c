/*
 * main.c: the unit test runner. Each tests/unit/test_<module>.c exports
 * `Suite *<module>_suite(void)`; suites are declared weak here so a tree that lacks one still
 * links. The run fails when any check fails or when no check ran at all.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#define SUITES(X)                                                                                  \
    X(arena)                                                                                       \
    X(json_mem)                                                                                    \
    X(strmap)                                                                                      \
    X(buf)                                                                                         \
    X(config)                                                                                      \
    X(devgate)                                                                                     \
    X(pressure)                                                                                    \
    X(nice)                                                                                        \
    X(ids)                                                                                         \
    X(dedup)                                                                                       \
    X(codec)                                                                                       \
    X(envelope)                                                                                    \
    X(journal)                                                                                     \
    X(outbox)                                                                                      \
    X(pg_array)                                                                                    \
    X(accounts_domain)                                                                             \
    X(transfers_domain)                                                                            \
    X(projection_domain)                                                                           \
    X(users_domain)                                                                                \
    X(catalog_domain)                                                                              \
    X(orders_domain)                                                                               \
    X(payments_domain)                                                                             \
    X(shop_projection_domain)                                                                      \
    X(query_routes)                                                                                \
    X(query_timeline)                                                                              \
    X(query_breaker)                                                                               \
    X(query_etag)                                                                                  \
    X(saga_domain)                                                                                 \
    X(saga_draw)                                                                                   \
    X(chaos_req)

#define DECLARE(name) Suite *name##_suite(void) __attribute__((weak));
SUITES(DECLARE)
#undef DECLARE

int main(void)
{
    SRunner *sr = srunner_create(NULL);
    int suites = 0;
#define ADD(name)                                                                                  \
    if (name##_suite) {                                                                            \
        srunner_add_suite(sr, name##_suite());                                                     \
        suites++;                                                                                  \
    }
    SUITES(ADD)
#undef ADD
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    int ran = srunner_ntests_run(sr);
    srunner_free(sr);
    if (ran == 0) {
        fprintf(stderr, "no unit checks ran (%d suites): failing\n", suites);
        return EXIT_FAILURE;
    }
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
