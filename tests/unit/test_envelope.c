/*
 * test_envelope.c: the record envelope (lib/envelope.c): round trip, Kafka headers, type
 * agreement between envelope and payload, derived envelopes, hostile values.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec_internal.h"
#include "envelope.h"

Suite *envelope_suite(void);

static es_codec_t *codec;
static char errstr[512];

static void setup(void)
{
    codec = es_codec_new(errstr, sizeof(errstr));
    ck_assert_msg(codec != NULL, "es_codec_new: %s", errstr);
}

static void teardown(void)
{
    es_codec_destroy(codec);
    codec = NULL;
}

static void sample_envelope(es_envelope_t *env, const char *type, const char *agg)
{
    memset(env, 0, sizeof(*env));
    ck_assert_int_eq(es_id_random(env->event_id), 0);
    snprintf(env->type, sizeof(env->type), "%s", type);
    snprintf(env->aggregate_id, sizeof(env->aggregate_id), "%s", agg);
    env->aggregate_version = 42;
    memcpy(env->correlation_id, env->event_id, sizeof(env->event_id));
    es_traceparent_make(env->traceparent, env->correlation_id, env->event_id);
    env->occurred_at = INT64_C(1700000000123);
}

static json_t *jparse(const char *text)
{
    json_t *j = json_loads(text, 0, NULL);

    ck_assert_ptr_nonnull(j);
    return j;
}

START_TEST(test_round_trip)
{
    const es_type_t *type = es_codec_type(codec, "FundsDeposited");
    json_t *payload = jparse("{\"account_id\":\"acc-1\",\"amount\":500,\"balance\":1500}");
    es_envelope_t env;
    es_envelope_t got;
    const es_type_t *gtype = NULL;
    json_t *gpayload = NULL;
    es_buf_t value;

    sample_envelope(&env, "FundsDeposited", "acc-1");
    es_buf_init(&value);
    ck_assert_msg(es_envelope_encode(codec, &env, type, payload, &value, errstr, sizeof(errstr)) ==
                      0,
                  "%s", errstr);
    ck_assert_uint_eq(value.data[0], 0xC3);
    ck_assert_msg(es_envelope_decode(codec, value.data, value.len, &got, &gtype, &gpayload, errstr,
                                     sizeof(errstr)) == 0,
                  "%s", errstr);
    ck_assert_ptr_eq(gtype, type);
    ck_assert(json_equal(payload, gpayload));
    ck_assert_str_eq(got.event_id, env.event_id);
    ck_assert_str_eq(got.type, env.type);
    ck_assert_str_eq(got.aggregate_id, env.aggregate_id);
    ck_assert_int_eq(got.aggregate_version, env.aggregate_version);
    ck_assert_str_eq(got.correlation_id, env.correlation_id);
    ck_assert_str_eq(got.causation_id, "");
    ck_assert_str_eq(got.traceparent, env.traceparent);
    ck_assert_int_eq(got.occurred_at, env.occurred_at);
    ck_assert(memcmp(&got, &env, sizeof(env)) == 0); /* zero padding both sides */
    {
        const es_type_t *t2;
        json_t *j2;
        ck_assert_int_eq(
            es_codec_decode(codec, value.data, value.len, &t2, &j2, errstr, sizeof(errstr)), -1);
        ck_assert_ptr_nonnull(strstr(errstr, "envelope"));
    }

    /* a payload is not an envelope, and an envelope is not a payload */
    {
        es_buf_t p;
        es_buf_init(&p);
        ck_assert_int_eq(es_codec_encode(codec, type, payload, &p, errstr, sizeof(errstr)), 0);
        ck_assert_int_eq(es_envelope_decode(codec, p.data, p.len, &got, &gtype, &gpayload, errstr,
                                            sizeof(errstr)),
                         -1);
        ck_assert_ptr_nonnull(strstr(errstr, "expected an envelope"));
        es_buf_fini(&p);
    }
    json_decref(payload);
    json_decref(gpayload);
    es_buf_fini(&value);
}
END_TEST

START_TEST(test_encode_refuses)
{
    const es_type_t *type = es_codec_type(codec, "FundsDeposited");
    json_t *payload = jparse("{\"account_id\":\"acc-1\",\"amount\":500,\"balance\":1500}");
    json_t *bad = jparse("{\"account_id\":\"acc-1\",\"amount\":\"500\",\"balance\":1500}");
    es_envelope_t env;
    es_buf_t value;

    es_buf_init(&value);
    sample_envelope(&env, "FundsWithdrawn", "acc-1");
    ck_assert_int_eq(es_envelope_encode(codec, &env, type, payload, &value, errstr, sizeof(errstr)),
                     -1);
    ck_assert_ptr_nonnull(strstr(errstr, "FundsWithdrawn"));
    sample_envelope(&env, "FundsDeposited", "acc-1");
    ck_assert_int_eq(es_envelope_encode(codec, &env, type, bad, &value, errstr, sizeof(errstr)),
                     -1);
    ck_assert_str_eq(errstr, "field \"amount\": expected an integer, got a string");
    ck_assert_uint_eq(value.len, 0);
    json_decref(payload);
    json_decref(bad);
    es_buf_fini(&value);
}
END_TEST

/* An envelope whose type field disagrees with its payload, built behind the API's back. */
START_TEST(test_decode_type_mismatch)
{
    const es_type_t *type = es_codec_type(codec, "AccountClosed");
    json_t *payload = jparse("{\"account_id\":\"acc-1\"}");
    es_envelope_t env;
    es_envelope_t got;
    const es_type_t *gtype;
    json_t *gpayload = NULL;
    es_buf_t value;
    avro_value_t *rec;
    avro_value_t field;

    es_buf_init(&value);
    sample_envelope(&env, "AccountClosed", "acc-1");
    ck_assert_int_eq(es_envelope_encode(codec, &env, type, payload, &value, errstr, sizeof(errstr)),
                     0);
    /* the scratch value still holds that envelope: change its type and write it again */
    rec = es_codec_envelope_value(codec);
    ck_assert_int_eq(avro_value_get_by_name(rec, "type", &field, NULL), 0);
    ck_assert_int_eq(avro_value_set_string(&field, "AccountOpened"), 0);
    es_buf_reset(&value);
    ck_assert_int_eq(es_codec_envelope_write(codec, &value, errstr, sizeof(errstr)), 0);
    ck_assert_int_eq(es_envelope_decode(codec, value.data, value.len, &got, &gtype, &gpayload,
                                        errstr, sizeof(errstr)),
                     -1);
    ck_assert_ptr_nonnull(strstr(errstr, "AccountOpened"));
    ck_assert_ptr_nonnull(strstr(errstr, "AccountClosed"));
    ck_assert_ptr_null(gpayload);

    /* an over-long string in the envelope is refused, not truncated */
    ck_assert_int_eq(avro_value_get_by_name(rec, "type", &field, NULL), 0);
    char longtype[200];
    memset(longtype, 'X', sizeof(longtype) - 1);
    longtype[sizeof(longtype) - 1] = '\0';
    ck_assert_int_eq(avro_value_set_string(&field, longtype), 0);
    es_buf_reset(&value);
    ck_assert_int_eq(es_codec_envelope_write(codec, &value, errstr, sizeof(errstr)), 0);
    ck_assert_int_eq(es_envelope_decode(codec, value.data, value.len, &got, &gtype, &gpayload,
                                        errstr, sizeof(errstr)),
                     -1);
    ck_assert_ptr_nonnull(strstr(errstr, "too long"));
    json_decref(payload);
    es_buf_fini(&value);
}
END_TEST

START_TEST(test_decode_truncations)
{
    const es_type_t *type = es_codec_type(codec, "TransferFailed");
    json_t *payload = jparse("{\"transfer_id\":\"t-1\",\"from_account\":\"a\",\"to_account\":"
                             "\"b\",\"amount\":7,\"reason\":\"closed\",\"compensated\":true}");
    es_envelope_t env;
    es_envelope_t got;
    const es_type_t *gtype;
    json_t *gpayload;
    es_buf_t value;

    es_buf_init(&value);
    sample_envelope(&env, "TransferFailed", "t-1");
    ck_assert_int_eq(es_envelope_encode(codec, &env, type, payload, &value, errstr, sizeof(errstr)),
                     0);
    for (size_t len = 0; len < value.len; len++) {
        unsigned char *copy = malloc(len + 1);
        memcpy(copy, value.data, len);
        ck_assert_int_eq(
            es_envelope_decode(codec, copy, len, &got, &gtype, &gpayload, errstr, sizeof(errstr)),
            -1);
        free(copy);
    }
    json_decref(payload);
    es_buf_fini(&value);
}
END_TEST

/* An envelope whose payload is an envelope is refused before it is read: it was read into the
 * same scratch value as the outer one, which the read freed while reading from it (a
 * use-after-free found by fuzzing). Every field empty: 8 zero bytes, then the payload. */
START_TEST(test_decode_nested_envelope)
{
    const es_type_t *type = es_codec_type(codec, "FundsDeposited");
    json_t *payload = jparse("{\"account_id\":\"acc-1\",\"amount\":500,\"balance\":1500}");
    es_envelope_t env, got;
    const es_type_t *gtype;
    json_t *gpayload;
    es_buf_t value;
    es_buf_init(&value);
    sample_envelope(&env, "FundsDeposited", "acc-1");
    ck_assert_int_eq(es_envelope_encode(codec, &env, type, payload, &value, errstr, sizeof(errstr)),
                     0);
    unsigned char inner[19], outer[38];
    memcpy(inner, value.data, 10); /* the envelope's marker and fingerprint */
    memset(inner + 10, 0, 9);      /* eight empty fields, an empty payload */
    memcpy(outer, value.data, 10);
    memset(outer + 10, 0, 8);
    outer[18] = 2 * sizeof(inner); /* zigzag length of the payload bytes */
    memcpy(outer + 19, inner, sizeof(inner));
    ck_assert_int_eq(es_envelope_decode(codec, outer, sizeof(outer), &got, &gtype, &gpayload,
                                        errstr, sizeof(errstr)),
                     -1);
    ck_assert_msg(strstr(errstr, "envelope") != NULL, "%s", errstr);
    /* the codec still decodes */
    ck_assert_int_eq(es_envelope_decode(codec, value.data, value.len, &got, &gtype, &gpayload,
                                        errstr, sizeof(errstr)),
                     0);
    json_decref(gpayload);
    json_decref(payload);
    es_buf_fini(&value);
}
END_TEST

/* A record holds at most ES_CODEC_ITEMS_MAX items: past what avro-c may allocate at once, a
 * failed read left the type's scratch value broken, and the next read of that type crashed.
 * PlaceOrder {order_id, user_id, account_id, items [{product_id, quantity}]}. */
START_TEST(test_decode_too_many_items)
{
    const es_type_t *type = es_codec_type(codec, "PlaceOrder");
    json_t *one = jparse("{\"order_id\":\"o\",\"user_id\":\"u\",\"account_id\":\"a\","
                         "\"items\":[{\"product_id\":\"p\",\"quantity\":1}]}");
    es_buf_t value;
    es_buf_init(&value);
    ck_assert_int_eq(es_codec_encode(codec, type, one, &value, errstr, sizeof(errstr)), 0);
    for (int n = ES_CODEC_ITEMS_MAX; n <= ES_CODEC_ITEMS_MAX + 1; n++) {
        es_buf_t big;
        es_buf_init(&big);
        es_buf_append(&big, value.data, 10);
        es_buf_append(&big, "\002o\002u\002a", 6);
        uint64_t zz = (uint64_t)n << 1;
        while (zz >= 0x80) {
            unsigned char b = (unsigned char)(zz | 0x80);
            es_buf_append(&big, &b, 1);
            zz >>= 7;
        }
        unsigned char b = (unsigned char)zz;
        es_buf_append(&big, &b, 1);
        for (int i = 0; i < n; i++) {
            es_buf_append(&big, "\0\0", 2); /* "" and 0 */
        }
        es_buf_append(&big, "\0", 1);
        const es_type_t *gtype;
        json_t *gpayload = NULL;
        int rc =
            es_codec_decode(codec, big.data, big.len, &gtype, &gpayload, errstr, sizeof(errstr));
        if (n == ES_CODEC_ITEMS_MAX) {
            ck_assert_msg(rc == 0, "%s", errstr);
            ck_assert_uint_eq(json_array_size(json_object_get(gpayload, "items")), (size_t)n);
            json_decref(gpayload);
        } else {
            ck_assert_int_eq(rc, -1);
            ck_assert_msg(strstr(errstr, "too many items") != NULL, "%s", errstr);
        }
        es_buf_fini(&big);
    }
    /* the type still decodes, and encoding refuses as many */
    const es_type_t *gtype;
    json_t *gpayload;
    ck_assert_int_eq(
        es_codec_decode(codec, value.data, value.len, &gtype, &gpayload, errstr, sizeof(errstr)),
        0);
    json_decref(gpayload);
    json_t *items = json_object_get(one, "items");
    json_t *item = json_array_get(items, 0);
    for (int i = 1; i <= ES_CODEC_ITEMS_MAX; i++) {
        json_array_append(items, item);
    }
    es_buf_reset(&value);
    ck_assert_int_eq(es_codec_encode(codec, type, one, &value, errstr, sizeof(errstr)), -1);
    ck_assert_msg(strstr(errstr, "too many items") != NULL, "%s", errstr);
    json_decref(one);
    es_buf_fini(&value);
}
END_TEST

/* es_envelope_peek reads the same metadata as a full decode, and refuses every truncation
 * that cuts into it (the relay rebuilds headers this way). */
START_TEST(test_peek)
{
    const es_type_t *type = es_codec_type(codec, "TransferFailed");
    json_t *payload = jparse("{\"transfer_id\":\"t-1\",\"from_account\":\"a\",\"to_account\":"
                             "\"b\",\"amount\":7,\"reason\":\"closed\",\"compensated\":true}");
    es_envelope_t env, peeked, decoded;
    const es_type_t *gtype;
    json_t *gpayload = NULL;
    es_buf_t value;

    es_buf_init(&value);
    sample_envelope(&env, "TransferFailed", "t-1");
    env.aggregate_version = -3; /* negative longs too */
    ck_assert_int_eq(es_envelope_encode(codec, &env, type, payload, &value, errstr, sizeof(errstr)),
                     0);
    ck_assert_int_eq(es_envelope_peek(value.data, value.len, &peeked), 0);
    ck_assert_int_eq(es_envelope_decode(codec, value.data, value.len, &decoded, &gtype, &gpayload,
                                        errstr, sizeof(errstr)),
                     0);
    ck_assert(memcmp(&peeked, &decoded, sizeof(peeked)) == 0);
    ck_assert_int_eq(peeked.aggregate_version, -3);
    /* cut anywhere inside the metadata: refused, never a crash */
    size_t meta_end = 0;
    for (size_t len = 0; len < value.len; len++) {
        unsigned char *copy = malloc(len + 1);
        memcpy(copy, value.data, len);
        if (es_envelope_peek(copy, len, &peeked) == 0 && !meta_end) {
            meta_end = len;
        }
        free(copy);
    }
    ck_assert_uint_gt(meta_end, 10);
    ck_assert_int_eq(es_envelope_peek("nope", 4, &peeked), -1);
    json_decref(payload);
    json_decref(gpayload);
    es_buf_fini(&value);
}
END_TEST

static const char *header(rd_kafka_headers_t *hdrs, const char *name)
{
    static char buf[256];
    const void *v = NULL;
    size_t size = 0;

    if (rd_kafka_header_get_last(hdrs, name, &v, &size) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return NULL;
    }
    ck_assert_uint_lt(size, sizeof(buf));
    memcpy(buf, v, size);
    buf[size] = '\0';
    return buf;
}

START_TEST(test_headers)
{
    es_envelope_t env;
    rd_kafka_headers_t *hdrs;

    sample_envelope(&env, "DepositFunds", "acc-9");
    env.aggregate_version = 0;
    snprintf(env.causation_id, sizeof(env.causation_id), "%s", "");
    hdrs = es_envelope_headers_new(&env, NULL);
    ck_assert_ptr_nonnull(hdrs);
    ck_assert_uint_eq(rd_kafka_header_cnt(hdrs), 8);
    ck_assert_str_eq(header(hdrs, "es-event-id"), env.event_id);
    ck_assert_str_eq(header(hdrs, "es-type"), "DepositFunds");
    ck_assert_str_eq(header(hdrs, "es-aggregate-id"), "acc-9");
    ck_assert_str_eq(header(hdrs, "es-aggregate-version"), "0");
    ck_assert_str_eq(header(hdrs, "es-correlation-id"), env.correlation_id);
    ck_assert_str_eq(header(hdrs, "es-causation-id"), "");
    ck_assert_str_eq(header(hdrs, "traceparent"), env.traceparent);
    ck_assert_str_eq(header(hdrs, "es-occurred-at"), "1700000000123");
    rd_kafka_headers_destroy(hdrs);
}
END_TEST

START_TEST(test_caused_by)
{
    es_envelope_t cmd;
    es_envelope_t a;
    es_envelope_t b;
    es_envelope_t c;

    sample_envelope(&cmd, "OpenAccount", "acc-1");
    cmd.correlation_id[0] = '\0'; /* a command without one: it starts the correlation */
    es_envelope_caused_by(&a, &cmd, "accounts", 0, "AccountOpened", "acc-1", 1);
    es_envelope_caused_by(&b, &cmd, "accounts", 0, "AccountOpened", "acc-1", 1);
    es_envelope_caused_by(&c, &cmd, "accounts", 1, "AccountOpened", "acc-1", 1);
    ck_assert(es_id_valid(a.event_id));
    ck_assert_str_eq(a.event_id, b.event_id);
    ck_assert_str_ne(a.event_id, c.event_id);
    ck_assert_str_ne(a.event_id, cmd.event_id);
    ck_assert_str_eq(a.type, "AccountOpened");
    ck_assert_str_eq(a.aggregate_id, "acc-1");
    ck_assert_int_eq(a.aggregate_version, 1);
    ck_assert_str_eq(a.correlation_id, cmd.event_id);
    ck_assert_str_eq(a.causation_id, cmd.event_id);
    ck_assert_str_eq(a.traceparent, b.traceparent);
    ck_assert(strncmp(a.traceparent + 3, cmd.event_id, ES_ID_LEN) == 0);
    ck_assert(a.occurred_at > 0);

    /* the next hop keeps the correlation */
    es_envelope_caused_by(&b, &a, "transfers", 0, "TransferCompleted", "t-1", 2);
    ck_assert_str_eq(b.correlation_id, cmd.event_id);
    ck_assert_str_eq(b.causation_id, a.event_id);
    ck_assert(strncmp(a.traceparent, b.traceparent, 36) == 0);
}
END_TEST

START_TEST(test_envelope_rate)
{
    const es_type_t *type = es_codec_type(codec, "FundsDeposited");
    json_t *payload = jparse("{\"account_id\":\"acc-1\",\"amount\":500,\"balance\":1500}");
    es_envelope_t env;
    es_envelope_t got;
    const es_type_t *gtype;
    json_t *gpayload;
    es_buf_t value;
    int n = 200000;
    int64_t t0;
    int64_t us;

    es_buf_init(&value);
    sample_envelope(&env, "FundsDeposited", "acc-1");
    ck_assert_int_eq(es_envelope_encode(codec, &env, type, payload, &value, errstr, sizeof(errstr)),
                     0);
    t0 = es_mono_us();
    for (int i = 0; i < n; i++) {
        /* no ck_assert in the loop: each one writes to Check's log */
        if (es_envelope_decode(codec, value.data, value.len, &got, &gtype, &gpayload, errstr,
                               sizeof(errstr)) != 0) {
            ck_abort_msg("decode: %s", errstr);
        }
        json_decref(gpayload);
    }
    us = es_mono_us() - t0;
    fprintf(stderr, "envelope: decoded %d envelopes (%zu bytes) in %.3f s: %.0f/s\n", n, value.len,
            (double)us / 1e6, us > 0 ? n * 1e6 / (double)us : 0.0);
    json_decref(payload);
    es_buf_fini(&value);
}
END_TEST

Suite *envelope_suite(void)
{
    Suite *s = suite_create("envelope");
    TCase *tc = tcase_create("envelope");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_encode_refuses);
    tcase_add_test(tc, test_decode_type_mismatch);
    tcase_add_test(tc, test_decode_truncations);
    tcase_add_test(tc, test_decode_nested_envelope);
    tcase_add_test(tc, test_decode_too_many_items);
    tcase_add_test(tc, test_peek);
    tcase_add_test(tc, test_headers);
    tcase_add_test(tc, test_caused_by);
    tcase_add_test(tc, test_envelope_rate);
    suite_add_tcase(s, tc);
    return s;
}
