/*
 * test_query_etag.c: the query service's validators (projections/query/etag.c): a tag is a
 * quoted digest of the body, equal bodies give equal tags and a changed byte another; an
 * If-None-Match value matches when it is "*" or lists the tag, weak or strong, among others,
 * with or without spaces; an absent, empty or malformed value never matches (the full answer
 * goes).
 */
#include <check.h>
#include <string.h>

#include "../../projections/query/etag.h"

START_TEST(tag_is_a_quoted_digest_of_the_body)
{
    char a[ES_QUERY_ETAG_SIZE], b[ES_QUERY_ETAG_SIZE], c[ES_QUERY_ETAG_SIZE];
    const char *body = "{\"account_id\":\"a\",\"balance\":100}";
    es_query_etag(body, strlen(body), a);
    es_query_etag(body, strlen(body), b);
    ck_assert_str_eq(a, b);
    ck_assert_uint_eq(strlen(a), ES_QUERY_ETAG_SIZE - 1);
    ck_assert_int_eq(a[0], '"');
    ck_assert_int_eq(a[ES_QUERY_ETAG_SIZE - 2], '"');
    const char *changed = "{\"account_id\":\"a\",\"balance\":101}";
    es_query_etag(changed, strlen(changed), c);
    ck_assert_str_ne(a, c);
    es_query_etag("", 0, c); /* an empty body has a tag too */
    ck_assert_str_eq(c, "\"cbf29ce484222325\"");
}
END_TEST

START_TEST(if_none_match_forms)
{
    const char *t = "\"0123456789abcdef\"";
    ck_assert_int_eq(es_query_etag_match("\"0123456789abcdef\"", t), 1);
    ck_assert_int_eq(es_query_etag_match("W/\"0123456789abcdef\"", t), 1); /* weak comparison */
    ck_assert_int_eq(es_query_etag_match("*", t), 1);
    ck_assert_int_eq(es_query_etag_match("  * ", t), 1);
    ck_assert_int_eq(es_query_etag_match("\"x\", \"0123456789abcdef\"", t), 1);
    ck_assert_int_eq(es_query_etag_match("\"x\",W/\"0123456789abcdef\" ,\"y\"", t), 1);
    ck_assert_int_eq(es_query_etag_match(" \"0123456789abcdef\"\t", t), 1);
    /* other tags, or none */
    ck_assert_int_eq(es_query_etag_match("\"0123456789abcdee\"", t), 0);
    ck_assert_int_eq(es_query_etag_match("\"0123456789abcdef0\"", t), 0);
    ck_assert_int_eq(es_query_etag_match("\"0123456789abcde\"", t), 0);
    ck_assert_int_eq(es_query_etag_match(NULL, t), 0);
    ck_assert_int_eq(es_query_etag_match("", t), 0);
    ck_assert_int_eq(es_query_etag_match(" , ", t), 0);
    /* malformed: never a match, even with the tag in it */
    ck_assert_int_eq(es_query_etag_match("0123456789abcdef", t), 0);
    ck_assert_int_eq(es_query_etag_match("\"0123456789abcdef", t), 0);
    ck_assert_int_eq(es_query_etag_match("\"0123456789abcdef\" junk", t), 0);
    ck_assert_int_eq(es_query_etag_match("\"0123456789abcdef\", x", t), 0);
    ck_assert_int_eq(es_query_etag_match("*, \"0123456789abcdef\"", t), 0);
    ck_assert_int_eq(es_query_etag_match("w/\"0123456789abcdef\"", t), 0);
}
END_TEST

Suite *query_etag_suite(void);
Suite *query_etag_suite(void)
{
    Suite *s = suite_create("query_etag");
    TCase *tc = tcase_create("etag");
    tcase_add_test(tc, tag_is_a_quoted_digest_of_the_body);
    tcase_add_test(tc, if_none_match_forms);
    suite_add_tcase(s, tc);
    return s;
}
