/*
 * test_pg_array.c: the binary array parameter builder (lib/pg.c), byte for byte against
 * PostgreSQL's array_recv() layout: i32 ndim, i32 flags, u32 element oid, then per dimension
 * i32 length and i32 lower bound, then each element as i32 length (-1 = NULL) and its bytes.
 * No database is needed.
 */
#include <check.h>
#include <stdint.h>
#include <string.h>

#include "pg.h"

static void assert_bytes(const es_pg_array_t *a, const unsigned char *expect, size_t n)
{
    ck_assert_uint_eq(a->buf.len, n);
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(a->buf.data[i] == expect[i], "byte %zu: 0x%02x, expected 0x%02x", i,
                      a->buf.data[i], expect[i]);
    }
}

START_TEST(test_int8_two_elements)
{
    /* clang-format off */
    static const unsigned char expect[] = {
        0, 0, 0, 1,                             /* ndim */
        0, 0, 0, 0,                             /* no NULLs */
        0, 0, 0, 20,                            /* int8 */
        0, 0, 0, 2,                             /* 2 elements */
        0, 0, 0, 1,                             /* lower bound 1 */
        0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1,     /* 1 */
        0, 0, 0, 8, 0xff, 0xff, 0xff, 0xff,     /* -2 */
        0xff, 0xff, 0xff, 0xfe,
    };
    /* clang-format on */
    es_pg_array_t a;
    es_pg_array_init(&a, ES_PG_INT8);
    ck_assert_int_eq(es_pg_array_add_int8(&a, 1), 0);
    ck_assert_int_eq(es_pg_array_add_int8(&a, -2), 0);
    ck_assert_int_eq(a.count, 2);
    ck_assert_int_eq(es_pg_array_finish(&a), 0);
    assert_bytes(&a, expect, sizeof(expect));
    es_pg_array_fini(&a);
}
END_TEST

START_TEST(test_int8_extremes)
{
    static const unsigned char expect[] = {
        0,    0,    0, 1, 0, 0, 0,    0, 0, 0,    0,    20,   0,    0,    0,
        2,    0,    0, 0, 1, 0, 0,    0, 8, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0, 0, 0, 8, 0x80, 0, 0, 0,    0,    0,    0,    0,
    };
    es_pg_array_t a;
    es_pg_array_init(&a, ES_PG_INT8);
    ck_assert_int_eq(es_pg_array_add_int8(&a, INT64_MAX), 0);
    ck_assert_int_eq(es_pg_array_add_int8(&a, INT64_MIN), 0);
    ck_assert_int_eq(es_pg_array_finish(&a), 0);
    assert_bytes(&a, expect, sizeof(expect));
    es_pg_array_fini(&a);
}
END_TEST

START_TEST(test_empty)
{
    static const unsigned char expect[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 20};
    es_pg_array_t a;
    es_pg_array_init(&a, ES_PG_INT8);
    ck_assert_int_eq(es_pg_array_finish(&a), 0);
    assert_bytes(&a, expect, sizeof(expect));

    /* emptied by reset after use: the same 12 bytes */
    es_pg_array_reset(&a);
    ck_assert_int_eq(es_pg_array_add_int8(&a, 5), 0);
    es_pg_array_reset(&a);
    ck_assert_int_eq(a.count, 0);
    ck_assert_int_eq(es_pg_array_finish(&a), 0);
    assert_bytes(&a, expect, sizeof(expect));
    es_pg_array_fini(&a);
}
END_TEST

START_TEST(test_text_with_null)
{
    static const unsigned char expect_tail[] = {
        0,    0,    0,    25,             /* text */
        0,    0,    0,    3,              /* 3 elements */
        0,    0,    0,    1,              /* lower bound */
        0,    0,    0,    2,    'a', 'b', /* "ab" */
        0xff, 0xff, 0xff, 0xff,           /* NULL */
        0,    0,    0,    0,              /* "" */
    };
    es_pg_array_t a;
    es_pg_array_init(&a, ES_PG_TEXT);
    ck_assert_int_eq(es_pg_array_add_text(&a, "ab"), 0);
    ck_assert_int_eq(es_pg_array_add_text(&a, NULL), 0);
    ck_assert_int_eq(es_pg_array_add_text(&a, ""), 0);
    ck_assert_int_eq(es_pg_array_finish(&a), 0);
    ck_assert_uint_eq(a.buf.len, 8 + sizeof(expect_tail));
    static const unsigned char ndim[] = {0, 0, 0, 1};
    ck_assert_mem_eq(a.buf.data, ndim, 4);
    /* the flags word is advisory: array_recv() accepts 0 or 1 and finds NULLs itself */
    ck_assert_int_eq(a.buf.data[4] | a.buf.data[5] | a.buf.data[6], 0);
    ck_assert_uint_le(a.buf.data[7], 1);
    ck_assert_mem_eq(a.buf.data + 8, expect_tail, sizeof(expect_tail));
    es_pg_array_fini(&a);
}
END_TEST

START_TEST(test_int4_bool_bytes)
{
    es_pg_array_t a;
    es_pg_array_init(&a, ES_PG_INT4);
    ck_assert_int_eq(es_pg_array_add_int4(&a, -1), 0);
    ck_assert_int_eq(es_pg_array_add_int4(&a, 0x01020304), 0);
    ck_assert_int_eq(es_pg_array_finish(&a), 0);
    static const unsigned char int4[] = {0,    0,    0,    1,    0, 0, 0, 0, 0, 0, 0, 23,
                                         0,    0,    0,    2,    0, 0, 0, 1, 0, 0, 0, 4,
                                         0xff, 0xff, 0xff, 0xff, 0, 0, 0, 4, 1, 2, 3, 4};
    assert_bytes(&a, int4, sizeof(int4));
    es_pg_array_fini(&a);

    es_pg_array_init(&a, ES_PG_BOOL);
    ck_assert_int_eq(es_pg_array_add_bool(&a, 7), 0);
    ck_assert_int_eq(es_pg_array_add_bool(&a, 0), 0);
    ck_assert_int_eq(es_pg_array_finish(&a), 0);
    static const unsigned char boolv[] = {0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0,
                                          2, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0,  0, 1, 0};
    assert_bytes(&a, boolv, sizeof(boolv));
    es_pg_array_fini(&a);

    es_pg_array_init(&a, ES_PG_BYTEA);
    static const unsigned char raw[] = {0, 0xff, 0};
    ck_assert_int_eq(es_pg_array_add_bytes(&a, raw, sizeof(raw)), 0);
    ck_assert_int_eq(es_pg_array_add_bytes(&a, NULL, 0), 0);
    ck_assert_int_eq(es_pg_array_finish(&a), 0);
    static const unsigned char bytea_tail[] = {0, 0, 0, 17, 0, 0,    0, 2,    0,    0,    0,   1,
                                               0, 0, 0, 3,  0, 0xff, 0, 0xff, 0xff, 0xff, 0xff};
    ck_assert_uint_eq(a.buf.len, 8 + sizeof(bytea_tail));
    ck_assert_mem_eq(a.buf.data + 8, bytea_tail, sizeof(bytea_tail));
    es_pg_array_fini(&a);
}
END_TEST

START_TEST(test_uuid)
{
    es_pg_array_t a;
    es_pg_array_init(&a, ES_PG_UUID);
    ck_assert_int_eq(es_pg_array_add_uuid(&a, "00112233445566778899aabbccddeeff"), 0);
    ck_assert_int_eq(es_pg_array_add_uuid(&a, "0123456789ABCDEFabcdef0123456789"), 0);
    ck_assert_int_eq(es_pg_array_finish(&a), 0);
    static const unsigned char expect[] = {
        0,    0,    0,    1,    0,    0,    0,    0,    0,    0,    0x0b, 0x86, 0,    0,    0,
        2,    0,    0,    0,    1,    0,    0,    0,    16,   0x00, 0x11, 0x22, 0x33, 0x44, 0x55,
        0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0,    0,    0,    16,   0x01,
        0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89,
    };
    assert_bytes(&a, expect, sizeof(expect));
    es_pg_array_fini(&a);
}
END_TEST

static const char *const bad_uuids[] = {
    "",
    "0",
    "00112233445566778899aabbccddeef",   /* 31 */
    "00112233445566778899aabbccddeeff0", /* 33 */
    "00112233445566778899aabbccddeefg",
    "g0112233445566778899aabbccddeeff",
    "00112233-4455-6677-8899-aabbccddeeff",
    " 00112233445566778899aabbccddeef",
    "00112233445566778899aabbccddeef ",
    "0x112233445566778899aabbccddeeff",
};

START_TEST(test_uuid_rejected)
{
    es_pg_array_t a;
    es_pg_array_init(&a, ES_PG_UUID);
    ck_assert_int_eq(es_pg_array_add_uuid(&a, "ffffffffffffffffffffffffffffffff"), 0);
    size_t len = a.buf.len;
    ck_assert_msg(es_pg_array_add_uuid(&a, bad_uuids[_i]) == -1, "\"%s\" accepted", bad_uuids[_i]);
    /* a refused id leaves the array as it was */
    ck_assert_int_eq(a.count, 1);
    ck_assert_uint_eq(a.buf.len, len);
    es_pg_array_fini(&a);
}
END_TEST

/* Reset and refill gives the same bytes as a fresh array. */
START_TEST(test_reuse)
{
    es_pg_array_t a, b;
    es_pg_array_init(&a, ES_PG_TEXT);
    es_pg_array_init(&b, ES_PG_TEXT);
    for (int i = 0; i < 100; i++) {
        ck_assert_int_eq(es_pg_array_add_text(&a, "some longer text to force growth"), 0);
    }
    ck_assert_int_eq(es_pg_array_finish(&a), 0);
    es_pg_array_reset(&a);
    ck_assert_int_eq(es_pg_array_add_text(&a, "x"), 0);
    ck_assert_int_eq(es_pg_array_finish(&a), 0);
    ck_assert_int_eq(es_pg_array_add_text(&b, "x"), 0);
    ck_assert_int_eq(es_pg_array_finish(&b), 0);
    ck_assert_uint_eq(a.buf.len, b.buf.len);
    ck_assert_mem_eq(a.buf.data, b.buf.data, a.buf.len);
    es_pg_array_fini(&a);
    es_pg_array_fini(&b);
}
END_TEST

Suite *pg_array_suite(void);

Suite *pg_array_suite(void)
{
    Suite *s = suite_create("pg_array");
    TCase *tc = tcase_create("pg_array");
    tcase_add_test(tc, test_int8_two_elements);
    tcase_add_test(tc, test_int8_extremes);
    tcase_add_test(tc, test_empty);
    tcase_add_test(tc, test_text_with_null);
    tcase_add_test(tc, test_int4_bool_bytes);
    tcase_add_test(tc, test_uuid);
    tcase_add_loop_test(tc, test_uuid_rejected, 0, (int)(sizeof(bad_uuids) / sizeof(bad_uuids[0])));
    tcase_add_test(tc, test_reuse);
    suite_add_tcase(s, tc);
    return s;
}
