/*
 * test_outbox.c: the outbox row's record format (lib/outbox.c): records come back in order
 * with their topics, null and empty keys, binary values and optional headers; truncated or
 * corrupt bytes are refused, never read past the end; a pinned record keeps its partition,
 * and the partition a key pins to is the producers' partitioner's.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "kafka.h"
#include "outbox.h"

START_TEST(test_round_trip)
{
    es_buf_t b;
    es_buf_init(&b);
    const unsigned char bin[5] = {0, 1, 0xff, 0, 2};
    ck_assert_int_eq(es_outbox_append(&b, "accounts.events", "acct-1", 6, "v1", 2, NULL, 0), 0);
    ck_assert_int_eq(es_outbox_append(&b, "accounts.dlq", NULL, 0, bin, 5, "\0\1h\0\1x", 6), 0);
    ck_assert_int_eq(es_outbox_append(&b, "t", "", 0, "", 0, "", 0), 0);
    size_t pos = 0;
    es_outbox_record_t r;
    ck_assert_int_eq(es_outbox_next(b.data, b.len, &pos, &r), 1);
    ck_assert_str_eq(r.topic, "accounts.events");
    ck_assert_uint_eq(r.key_len, 6);
    ck_assert_int_eq(memcmp(r.key, "acct-1", 6), 0);
    ck_assert_uint_eq(r.value_len, 2);
    ck_assert_ptr_null(r.headers);
    ck_assert_int_eq(es_outbox_next(b.data, b.len, &pos, &r), 1);
    ck_assert_str_eq(r.topic, "accounts.dlq");
    ck_assert_ptr_null(r.key);
    ck_assert_uint_eq(r.value_len, 5);
    ck_assert_int_eq(memcmp(r.value, bin, 5), 0);
    ck_assert_uint_eq(r.headers_len, 6);
    ck_assert_int_eq(es_outbox_next(b.data, b.len, &pos, &r), 1);
    ck_assert_str_eq(r.topic, "t");
    ck_assert_ptr_nonnull(r.key); /* empty, not null */
    ck_assert_uint_eq(r.key_len, 0);
    ck_assert_ptr_nonnull(r.headers);
    ck_assert_uint_eq(r.headers_len, 0);
    ck_assert_int_eq(es_outbox_next(b.data, b.len, &pos, &r), 0);
    ck_assert_uint_eq(pos, b.len);
    es_buf_fini(&b);
}
END_TEST

START_TEST(test_truncated_refused)
{
    es_buf_t b;
    es_buf_init(&b);
    ck_assert_int_eq(es_outbox_append(&b, "topic", "key", 3, "value", 5, "hh", 2), 0);
    for (size_t cut = 1; cut < b.len; cut++) {
        size_t pos = 0;
        es_outbox_record_t r;
        ck_assert_int_eq(es_outbox_next(b.data, cut, &pos, &r), -1);
    }
    es_buf_fini(&b);
}
END_TEST

START_TEST(test_corrupt_refused)
{
    es_buf_t b;
    es_buf_init(&b);
    ck_assert_int_eq(es_outbox_append(&b, "topic", "key", 3, "value", 5, NULL, 0), 0);
    size_t pos = 0;
    es_outbox_record_t r;
    b.data[6] = 'x'; /* the topic's NUL */
    ck_assert_int_eq(es_outbox_next(b.data, b.len, &pos, &r), -1);
    b.data[6] = '\0';
    b.data[7] = 0x7f; /* a key length far past the end */
    pos = 0;
    ck_assert_int_eq(es_outbox_next(b.data, b.len, &pos, &r), -1);
    es_buf_fini(&b);
}
END_TEST

START_TEST(test_topic_too_long)
{
    es_buf_t b;
    es_buf_init(&b);
    char topic[ES_OUTBOX_TOPIC_MAX + 2];
    memset(topic, 'a', sizeof(topic) - 1);
    topic[sizeof(topic) - 1] = '\0';
    ck_assert_int_eq(es_outbox_append(&b, topic, "k", 1, "v", 1, NULL, 0), -1);
    topic[ES_OUTBOX_TOPIC_MAX] = '\0';
    ck_assert_int_eq(es_outbox_append(&b, topic, "k", 1, "v", 1, NULL, 0), 0);
    es_buf_fini(&b);
}
END_TEST

START_TEST(test_pinned)
{
    es_buf_t b;
    es_buf_init(&b);
    ck_assert_int_eq(es_outbox_pin(&b, 5), 0);
    ck_assert_int_eq(es_outbox_append(&b, "accounts.events", "acct-1", 6, "v1", 2, NULL, 0), 0);
    ck_assert_int_eq(es_outbox_append(&b, "accounts.events", "acct-2", 6, "v2", 2, NULL, 0), 0);
    ck_assert_int_eq(es_outbox_pin(&b, -1), -1); /* no such partition */
    size_t pos = 0;
    es_outbox_record_t r;
    ck_assert_int_eq(es_outbox_next(b.data, b.len, &pos, &r), 1);
    ck_assert_int_eq(r.partition, 5);
    ck_assert_int_eq(memcmp(r.key, "acct-1", 6), 0);
    ck_assert_int_eq(es_outbox_next(b.data, b.len, &pos, &r), 1);
    ck_assert_int_eq(r.partition, -1); /* the pin was the first record's only */
    ck_assert_int_eq(memcmp(r.key, "acct-2", 6), 0);
    ck_assert_int_eq(es_outbox_next(b.data, b.len, &pos, &r), 0);
    /* a pin with nothing after it, or cut short, is not a record */
    size_t end = b.len;
    ck_assert_int_eq(es_outbox_pin(&b, 2), 0);
    pos = end;
    ck_assert_int_eq(es_outbox_next(b.data, b.len, &pos, &r), -1);
    pos = end;
    ck_assert_int_eq(es_outbox_next(b.data, b.len - 2, &pos, &r), -1);
    es_buf_fini(&b);
}
END_TEST

/* A pinned record must land where the producer would have put it, beside its aggregate's other
 * records: murmur2 as Java clients hash (they hash "21" to -973932308, which is 1173551340 with
 * the sign bit cleared). */
START_TEST(test_key_partition)
{
    ck_assert_int_eq(es_kafka_key_partition("21", 2, 1000), 1173551340 % 1000);
    ck_assert_int_eq(es_kafka_key_partition("21", 2, 1), 0);
    for (int i = 0; i < 100; i++) {
        char key[16];
        int n = snprintf(key, sizeof(key), "acct-%d", i);
        int32_t p = es_kafka_key_partition(key, (size_t)n, 6);
        ck_assert(p >= 0 && p < 6);
    }
}
END_TEST

Suite *outbox_suite(void);
Suite *outbox_suite(void)
{
    Suite *s = suite_create("outbox");
    TCase *tc = tcase_create("format");
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_truncated_refused);
    tcase_add_test(tc, test_corrupt_refused);
    tcase_add_test(tc, test_topic_too_long);
    tcase_add_test(tc, test_pinned);
    tcase_add_test(tc, test_key_partition);
    suite_add_tcase(s, tc);
    return s;
}
