/*
 * test_codec.c: the schema registry and the Avro codec (lib/codec.c): fingerprints against
 * the Avro project's published values, round trips of every embedded type, validation
 * messages, schema evolution (OpenAccount v1 read as the current version), and decoding of
 * garbage, truncated and hostile inputs (run these under `make asan`).
 */
#include <avro.h>
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "ids.h"
#include "schemas_embedded.h"

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

/* ---- fingerprints ---- */

/* From the Avro project's share/test/data/schema-tests.txt (cross-checked there against the
 * Java reference implementation); fingerprints are the signed 64-bit values it lists. */
static const struct {
    const char *input;
    const char *canonical;
    int64_t fingerprint;
} fp_cases[] = {
    {"\"null\"", "\"null\"", INT64_C(7195948357588979594)},
    {"{\"type\":\"null\"}", "\"null\"", INT64_C(7195948357588979594)},
    {"\"boolean\"", "\"boolean\"", INT64_C(-6970731678124411036)},
    {"\"int\"", "\"int\"", INT64_C(8247732601305521295)},
    {"{\"type\":\"int\"}", "\"int\"", INT64_C(8247732601305521295)},
    {"\"long\"", "\"long\"", INT64_C(-3434872931120570953)},
    {"\"float\"", "\"float\"", INT64_C(5583340709985441680)},
    {"\"double\"", "\"double\"", INT64_C(-8181574048448539266)},
    {"\"bytes\"", "\"bytes\"", INT64_C(5746618253357095269)},
    {"\"string\"", "\"string\"", INT64_C(-8142146995180207161)},
    {"[  ]", "[]", INT64_C(-1241056759729112623)},
    {"[ \"int\"  ]", "[\"int\"]", INT64_C(-5232228896498058493)},
    {"[ \"int\" , {\"type\":\"boolean\"} ]", "[\"int\",\"boolean\"]", INT64_C(5392556393470105090)},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"foo\"}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[]}", INT64_C(-4824392279771201922)},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"foo\", \"namespace\":\"x.y\"}",
     "{\"name\":\"x.y.foo\",\"type\":\"record\",\"fields\":[]}", INT64_C(5916914534497305771)},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"a.b.foo\", \"namespace\":\"x.y\"}",
     "{\"name\":\"a.b.foo\",\"type\":\"record\",\"fields\":[]}", INT64_C(-4616218487480524110)},
    {"{\"fields\":[], \"type\":\"record\", \"name\":\"foo\", \"doc\":\"foo\", "
     "\"aliases\":[\"foo\",\"bar\"]}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[]}", INT64_C(-4824392279771201922)},
    {"{\"fields\":[{\"type\":{\"type\":\"boolean\"}, \"name\":\"f1\"}], \"type\":\"record\", "
     "\"name\":\"foo\"}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[{\"name\":\"f1\",\"type\":\"boolean\"}]}",
     INT64_C(7843277075252814651)},
    {"{ \"fields\":[{\"type\":\"boolean\", \"aliases\":[], \"name\":\"f1\", "
     "\"default\":\"true\"},\n {\"order\":\"descending\",\"name\":\"f2\",\"doc\":\"Hello\","
     "\"type\":\"int\"}],\n \"type\":\"record\", \"name\":\"foo\"\n}",
     "{\"name\":\"foo\",\"type\":\"record\",\"fields\":[{\"name\":\"f1\",\"type\":\"boolean\"},"
     "{\"name\":\"f2\",\"type\":\"int\"}]}",
     INT64_C(-4860222112080293046)},
    {"{\"type\":\"enum\", \"name\":\"foo\", \"symbols\":[\"A1\"]}",
     "{\"name\":\"foo\",\"type\":\"enum\",\"symbols\":[\"A1\"]}", INT64_C(-6342190197741309591)},
    {"{\"namespace\":\"x.y.z\", \"type\":\"enum\", \"name\":\"foo\", \"doc\":\"foo bar\", "
     "\"symbols\":[\"A1\", \"A2\"]}",
     "{\"name\":\"x.y.z.foo\",\"type\":\"enum\",\"symbols\":[\"A1\",\"A2\"]}",
     INT64_C(-4448647247586288245)},
    {"{\"name\":\"foo\",\"type\":\"fixed\",\"size\":15}",
     "{\"name\":\"foo\",\"type\":\"fixed\",\"size\":15}", INT64_C(1756455273707447556)},
    {"{\"namespace\":\"x.y.z\", \"type\":\"fixed\", \"name\":\"foo\", \"doc\":\"foo bar\", "
     "\"size\":32}",
     "{\"name\":\"x.y.z.foo\",\"type\":\"fixed\",\"size\":32}", INT64_C(-3064184465700546786)},
    {"{ \"items\":{\"type\":\"null\"}, \"type\":\"array\"}",
     "{\"type\":\"array\",\"items\":\"null\"}", INT64_C(-589620603366471059)},
    {"{ \"values\":\"string\", \"type\":\"map\"}", "{\"type\":\"map\",\"values\":\"string\"}",
     INT64_C(-8732877298790414990)},
    {"{\"name\":\"PigValue\",\"type\":\"record\",\n \"fields\":[{\"name\":\"value\", "
     "\"type\":[\"null\", \"int\", \"long\", \"PigValue\"]}]}",
     "{\"name\":\"PigValue\",\"type\":\"record\",\"fields\":[{\"name\":\"value\",\"type\":"
     "[\"null\",\"int\",\"long\",\"PigValue\"]}]}",
     INT64_C(-1759257747318642341)},
};

START_TEST(test_fingerprint_known_values)
{
    es_buf_t pcf;
    uint64_t fp = 0;

    es_buf_init(&pcf);
    ck_assert_int_eq(es_codec_fingerprint(fp_cases[_i].input, &fp, &pcf, errstr, sizeof(errstr)),
                     0);
    ck_assert_int_eq(pcf.len, strlen(fp_cases[_i].canonical));
    ck_assert_msg(memcmp(pcf.data, fp_cases[_i].canonical, pcf.len) == 0, "case %d: got %.*s", _i,
                  (int)pcf.len, (const char *)pcf.data);
    ck_assert_msg(fp == (uint64_t)fp_cases[_i].fingerprint,
                  "case %d: fingerprint 0x%016" PRIx64 " != 0x%016" PRIx64, _i, fp,
                  (uint64_t)fp_cases[_i].fingerprint);
    es_buf_fini(&pcf);
}
END_TEST

START_TEST(test_fingerprint_strips_and_nests)
{
    /* logicalType, doc and custom attributes are stripped; a named type nested in a record
     * takes the record's namespace and is referenced by full name after its definition */
    const char *in = "{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"es.t\",\"doc\":\"d\","
                     "\"es.key\":\"a\",\"fields\":["
                     "{\"name\":\"a\",\"type\":{\"type\":\"long\",\"logicalType\":"
                     "\"timestamp-millis\"}},"
                     "{\"name\":\"b\",\"type\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":"
                     "[\"X\"]},\"default\":\"X\"},"
                     "{\"name\":\"c\",\"type\":[\"null\",\"E\"]}]}";
    const char *want = "{\"name\":\"es.t.R\",\"type\":\"record\",\"fields\":["
                       "{\"name\":\"a\",\"type\":\"long\"},"
                       "{\"name\":\"b\",\"type\":{\"name\":\"es.t.E\",\"type\":\"enum\","
                       "\"symbols\":[\"X\"]}},"
                       "{\"name\":\"c\",\"type\":[\"null\",\"es.t.E\"]}]}";
    es_buf_t pcf;
    uint64_t fp;

    es_buf_init(&pcf);
    ck_assert_int_eq(es_codec_fingerprint(in, &fp, &pcf, errstr, sizeof(errstr)), 0);
    ck_assert_int_eq(pcf.len, strlen(want));
    ck_assert(memcmp(pcf.data, want, pcf.len) == 0);
    es_buf_fini(&pcf);

    ck_assert_int_eq(es_codec_fingerprint("{\"type\":", &fp, NULL, errstr, sizeof(errstr)), -1);
    ck_assert_int_eq(es_codec_fingerprint("\"Nope\"", &fp, NULL, errstr, sizeof(errstr)), -1);
    ck_assert_ptr_nonnull(strstr(errstr, "unknown type"));
}
END_TEST

/* ---- the registry ---- */

static const struct {
    const char *name;
    const char *topic;
    const char *key;
    es_kind_t kind;
} catalog[] = {
    {"OpenAccount", "accounts.commands", "account_id", ES_KIND_COMMAND},
    {"DepositFunds", "accounts.commands", "account_id", ES_KIND_COMMAND},
    {"WithdrawFunds", "accounts.commands", "account_id", ES_KIND_COMMAND},
    {"CloseAccount", "accounts.commands", "account_id", ES_KIND_COMMAND},
    {"AccountOpened", "accounts.events", "account_id", ES_KIND_EVENT},
    {"FundsDeposited", "accounts.events", "account_id", ES_KIND_EVENT},
    {"FundsWithdrawn", "accounts.events", "account_id", ES_KIND_EVENT},
    {"AccountClosed", "accounts.events", "account_id", ES_KIND_EVENT},
    {"FundsDebited", "accounts.events", "account_id", ES_KIND_EVENT},
    {"DebitRejected", "accounts.events", "account_id", ES_KIND_EVENT},
    {"FundsCredited", "accounts.events", "account_id", ES_KIND_EVENT},
    {"CreditRejected", "accounts.events", "account_id", ES_KIND_EVENT},
    {"DebitReversed", "accounts.events", "account_id", ES_KIND_EVENT},
    {"AccountCommandRejected", "accounts.events", "account_id", ES_KIND_EVENT},
    {"RequestTransfer", "transfers.commands", "transfer_id", ES_KIND_COMMAND},
    {"TransferRequested", "transfers.events", "transfer_id", ES_KIND_EVENT},
    {"TransferCompleted", "transfers.events", "transfer_id", ES_KIND_EVENT},
    {"TransferFailed", "transfers.events", "transfer_id", ES_KIND_EVENT},
    {"TransferCommandRejected", "transfers.events", "transfer_id", ES_KIND_EVENT},
    {"ChangeEmail", "users.commands", "user_id", ES_KIND_COMMAND},
    {"DeactivateUser", "users.commands", "user_id", ES_KIND_COMMAND},
    {"RegisterUser", "users.commands", "user_id", ES_KIND_COMMAND},
    {"EmailChanged", "users.events", "user_id", ES_KIND_EVENT},
    {"UserCommandRejected", "users.events", "user_id", ES_KIND_EVENT},
    {"UserDeactivated", "users.events", "user_id", ES_KIND_EVENT},
    {"UserRegistered", "users.events", "user_id", ES_KIND_EVENT},
    {"AddProduct", "catalog.commands", "product_id", ES_KIND_COMMAND},
    {"ChangePrice", "catalog.commands", "product_id", ES_KIND_COMMAND},
    {"RestockProduct", "catalog.commands", "product_id", ES_KIND_COMMAND},
    {"CatalogCommandRejected", "catalog.events", "product_id", ES_KIND_EVENT},
    {"PriceChanged", "catalog.events", "product_id", ES_KIND_EVENT},
    {"ProductAdded", "catalog.events", "product_id", ES_KIND_EVENT},
    {"ProductRestocked", "catalog.events", "product_id", ES_KIND_EVENT},
    {"StockCommitted", "catalog.events", "order_id", ES_KIND_EVENT},
    {"StockReleased", "catalog.events", "order_id", ES_KIND_EVENT},
    {"StockReservationRejected", "catalog.events", "order_id", ES_KIND_EVENT},
    {"StockReserved", "catalog.events", "order_id", ES_KIND_EVENT},
    {"CancelOrder", "orders.commands", "order_id", ES_KIND_COMMAND},
    {"PlaceOrder", "orders.commands", "order_id", ES_KIND_COMMAND},
    {"OrderCancelled", "orders.events", "order_id", ES_KIND_EVENT},
    {"OrderCommandRejected", "orders.events", "order_id", ES_KIND_EVENT},
    {"OrderConfirmed", "orders.events", "order_id", ES_KIND_EVENT},
    {"OrderPlaced", "orders.events", "order_id", ES_KIND_EVENT},
    {"OrderRejected", "orders.events", "order_id", ES_KIND_EVENT},
    {"RetryRefund", "payments.commands", "order_id", ES_KIND_COMMAND},
    {"PaymentCaptured", "payments.events", "order_id", ES_KIND_EVENT},
    {"PaymentCommandRejected", "payments.events", "order_id", ES_KIND_EVENT},
    {"PaymentDeclined", "payments.events", "order_id", ES_KIND_EVENT},
    {"PaymentRefundFailed", "payments.events", "order_id", ES_KIND_EVENT},
    {"PaymentRefundRetried", "payments.events", "order_id", ES_KIND_EVENT},
    {"PaymentRefunded", "payments.events", "order_id", ES_KIND_EVENT},
    {"PaymentRequested", "payments.events", "order_id", ES_KIND_EVENT},
    {"SagaTimedOut", "sagas.events", "saga_id", ES_KIND_EVENT},
};
#define CATALOG_N ((int)(sizeof(catalog) / sizeof(catalog[0])))

START_TEST(test_registry_catalog)
{
    const es_type_t *type = es_codec_type(codec, catalog[_i].name);

    ck_assert_msg(type != NULL, "missing type %s", catalog[_i].name);
    ck_assert_str_eq(es_type_name(type), catalog[_i].name);
    ck_assert_str_eq(es_type_topic(type), catalog[_i].topic);
    ck_assert_str_eq(es_type_key_field(type), catalog[_i].key);
    ck_assert_int_eq(es_type_kind(type), catalog[_i].kind);
    ck_assert_ptr_nonnull(strstr(es_type_schema_json(type), catalog[_i].name));
    ck_assert(es_type_fingerprint(type) != 0);
}
END_TEST

START_TEST(test_registry_listing)
{
    size_t n = 0;
    uint64_t fp;

    while (es_codec_type_at(codec, n) != NULL) {
        n++;
    }
    ck_assert_int_eq(n, CATALOG_N);
    static const char *const contexts[] = {"accounts", "catalog",   "orders", "payments",
                                           "sagas",    "transfers", "users"};
    for (size_t c = 0; c < sizeof(contexts) / sizeof(contexts[0]); c++) {
        ck_assert_str_eq(es_codec_context_at(codec, c), contexts[c]);
    }
    ck_assert_ptr_null(es_codec_context_at(codec, sizeof(contexts) / sizeof(contexts[0])));
    ck_assert_ptr_null(es_codec_type(codec, "Envelope"));
    ck_assert_ptr_null(es_codec_type(codec, "NoSuchType"));

    /* the registry's fingerprint is the one of the current schema text */
    const es_type_t *type = es_codec_type(codec, "OpenAccount");
    ck_assert_int_eq(
        es_codec_fingerprint(es_type_schema_json(type), &fp, NULL, errstr, sizeof(errstr)), 0);
    ck_assert(fp == es_type_fingerprint(type));
    ck_assert_ptr_null(strstr(es_type_schema_json(type), "OpenAccount.v1"));
    ck_assert_ptr_nonnull(strstr(es_type_schema_json(type), "\"currency\""));
}
END_TEST

/* ---- round trips ---- */

/* A sample value of schema `t` (a field named `name`): `variant` picks between alternatives
 * (union branches, enum symbols) so that both sides get exercised. */
static json_t *sample_value(const es_type_t *type, const char *name, const json_t *t, int variant);

/* A sample record of the fields `fields`. */
static json_t *sample_record(const es_type_t *type, const json_t *fields, int variant)
{
    json_t *out = json_object();
    size_t i;
    json_t *field;
    json_array_foreach(fields, i, field)
    {
        const char *name = json_string_value(json_object_get(field, "name"));
        json_t *v = sample_value(type, name, json_object_get(field, "type"), variant);
        ck_assert_msg(v != NULL, "no sample for %s.%s", es_type_name(type), name);
        json_object_set_new(out, name, v);
    }
    return out;
}

static json_t *sample_value(const es_type_t *type, const char *name, const json_t *t, int variant)
{
    char s[64];
    if (json_is_array(t)) { /* ["null", "string"] */
        return variant % 2 ? json_string("USD") : json_null();
    }
    if (json_is_object(t)) {
        const char *kind = json_string_value(json_object_get(t, "type"));
        if (kind && !strcmp(kind, "enum")) {
            json_t *syms = json_object_get(t, "symbols");
            return json_incref(json_array_get(syms, (size_t)variant % json_array_size(syms)));
        }
        if (kind && !strcmp(kind, "array")) { /* of records: one or two of them */
            json_t *arr = json_array();
            for (int k = 0; k <= variant % 2; k++) {
                json_array_append_new(
                    arr, sample_value(type, name, json_object_get(t, "items"), variant + k));
            }
            return arr;
        }
        if (kind && !strcmp(kind, "record")) {
            return sample_record(type, json_object_get(t, "fields"), variant);
        }
        return NULL;
    }
    if (strcmp(json_string_value(t), "string") == 0) {
        snprintf(s, sizeof(s), "%s-%d-\xc3\xa9\xe2\x82\xac", name, variant);
        return json_string(s);
    }
    if (strcmp(json_string_value(t), "long") == 0) {
        return json_integer(variant % 2 ? INT64_C(-9007199254740993) : 123456789012 + variant);
    }
    if (strcmp(json_string_value(t), "boolean") == 0) {
        return json_boolean(variant % 2);
    }
    return NULL;
}

/* A sample payload for any of our schemas, built from its JSON. */
static json_t *sample_payload(const es_type_t *type, int variant)
{
    json_t *schema = json_loads(es_type_schema_json(type), 0, NULL);
    ck_assert_ptr_nonnull(schema);
    json_t *out = sample_record(type, json_object_get(schema, "fields"), variant);
    json_decref(schema);
    return out;
}

START_TEST(test_round_trip_every_type)
{
    const es_type_t *type = es_codec_type_at(codec, (size_t)_i);

    ck_assert_ptr_nonnull(type);
    for (int variant = 0; variant < 4; variant++) {
        json_t *in = sample_payload(type, variant);
        json_t *out = NULL;
        const es_type_t *got = NULL;
        es_buf_t buf;
        uint64_t fp = 0;

        es_buf_init(&buf);
        ck_assert_msg(es_codec_encode(codec, type, in, &buf, errstr, sizeof(errstr)) == 0, "%s: %s",
                      es_type_name(type), errstr);
        ck_assert_uint_ge(buf.len, 10);
        ck_assert_uint_eq(buf.data[0], 0xC3);
        ck_assert_uint_eq(buf.data[1], 0x01);
        for (int k = 0; k < 8; k++) {
            fp |= (uint64_t)buf.data[2 + k] << (8 * k);
        }
        ck_assert(fp == es_type_fingerprint(type));
        ck_assert_msg(
            es_codec_decode(codec, buf.data, buf.len, &got, &out, errstr, sizeof(errstr)) == 0,
            "%s: %s", es_type_name(type), errstr);
        ck_assert_ptr_eq(got, type);
        if (!json_equal(in, out)) {
            char *a = json_dumps(in, JSON_SORT_KEYS);
            char *b = json_dumps(out, JSON_SORT_KEYS);
            ck_abort_msg("%s: sent %s, got %s", es_type_name(type), a, b);
        }
        json_decref(in);
        json_decref(out);
        es_buf_fini(&buf);
    }
}
END_TEST

static json_t *jparse(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);

    ck_assert_msg(j != NULL, "bad test JSON %s: %s", text, jerr.text);
    return j;
}

START_TEST(test_encode_bytes_are_avro)
{
    /* DepositFunds{account_id:"a1", amount:150}: zigzag(2)=04 'a' '1', zigzag(150)=ac 02 */
    const es_type_t *type = es_codec_type(codec, "DepositFunds");
    const unsigned char body[] = {0x04, 'a', '1', 0xac, 0x02};
    json_t *in = jparse("{\"account_id\":\"a1\",\"amount\":150}");
    es_buf_t buf;

    es_buf_init(&buf);
    ck_assert_int_eq(es_codec_encode(codec, type, in, &buf, errstr, sizeof(errstr)), 0);
    ck_assert_uint_eq(buf.len, 10 + sizeof(body));
    ck_assert(memcmp(buf.data + 10, body, sizeof(body)) == 0);
    /* encoding appends */
    ck_assert_int_eq(es_codec_encode(codec, type, in, &buf, errstr, sizeof(errstr)), 0);
    ck_assert_uint_eq(buf.len, 2 * (10 + sizeof(body)));
    ck_assert(memcmp(buf.data, buf.data + buf.len / 2, buf.len / 2) == 0);
    json_decref(in);
    es_buf_fini(&buf);
}
END_TEST

/* A payload is at most ES_ENCODE_MAX: avro-c's setters do not check what its (capped)
 * allocator returns, so a larger one must be refused before it reaches them. */
START_TEST(test_encode_payload_too_large)
{
    const es_type_t *type = es_codec_type(codec, "OpenAccount");
    size_t big = ES_ENCODE_MAX - 1000;
    char *owner = malloc(ES_ENCODE_MAX + 1);
    ck_assert_ptr_nonnull(owner);
    memset(owner, 'x', ES_ENCODE_MAX);
    es_buf_t buf;
    es_buf_init(&buf);
    for (int pass = 0; pass < 2; pass++) {
        owner[big] = pass == 0 ? '\0' : 'x';
        owner[ES_ENCODE_MAX] = '\0';
        json_t *in = json_pack("{ss ss ss}", "account_id", "a1", "owner", owner, "currency", "EUR");
        ck_assert_ptr_nonnull(in);
        int rc = es_codec_encode(codec, type, in, &buf, errstr, sizeof(errstr));
        if (pass == 0) {
            ck_assert_msg(rc == 0, "%s", errstr);
            ck_assert_uint_gt(buf.len, big);
        } else {
            ck_assert_int_eq(rc, -1);
            ck_assert_ptr_nonnull(strstr(errstr, "the payload is too large"));
        }
        json_decref(in);
    }
    /* the codec still encodes after the refusal */
    json_t *ok = jparse("{\"account_id\":\"a1\",\"amount\":150}");
    es_buf_reset(&buf);
    ck_assert_int_eq(es_codec_encode(codec, es_codec_type(codec, "DepositFunds"), ok, &buf, errstr,
                                     sizeof(errstr)),
                     0);
    json_decref(ok);
    es_buf_fini(&buf);
    free(owner);
}
END_TEST

START_TEST(test_open_account_currency_default)
{
    const es_type_t *type = es_codec_type(codec, "OpenAccount");
    const es_type_t *got;
    json_t *in = jparse("{\"account_id\":\"a1\",\"owner\":\"ann\"}");
    json_t *out = NULL;
    es_buf_t buf;

    es_buf_init(&buf);
    ck_assert_int_eq(es_codec_encode(codec, type, in, &buf, errstr, sizeof(errstr)), 0);
    ck_assert_int_eq(es_codec_decode(codec, buf.data, buf.len, &got, &out, errstr, sizeof(errstr)),
                     0);
    ck_assert_str_eq(json_string_value(json_object_get(out, "currency")), "EUR");
    json_decref(in);
    json_decref(out);
    es_buf_fini(&buf);
}
END_TEST

/* ---- schema evolution ---- */

static const char *embedded_json(const char *name, int version)
{
    for (size_t i = 0; i < es_embedded_schema_count; i++) {
        if (strcmp(es_embedded_schemas[i].name, name) == 0 &&
            es_embedded_schemas[i].version == version) {
            return es_embedded_schemas[i].json;
        }
    }
    return NULL;
}

START_TEST(test_v1_open_account_reads_as_current)
{
    const char *v1 = embedded_json("OpenAccount", 1);
    const es_type_t *got = NULL;
    json_t *out = NULL;
    json_t *want;
    uint64_t fp;
    unsigned char rec[64];
    size_t n = 0;

    ck_assert_ptr_nonnull(v1);
    ck_assert_int_eq(es_codec_fingerprint(v1, &fp, NULL, errstr, sizeof(errstr)), 0);
    ck_assert(fp != es_type_fingerprint(es_codec_type(codec, "OpenAccount")));
    /* a record written by a v1 producer: account_id "acc-1", owner "Bo" */
    rec[n++] = 0xC3;
    rec[n++] = 0x01;
    for (int k = 0; k < 8; k++) {
        rec[n++] = (unsigned char)(fp >> (8 * k));
    }
    rec[n++] = 10;
    memcpy(rec + n, "acc-1", 5);
    n += 5;
    rec[n++] = 4;
    memcpy(rec + n, "Bo", 2);
    n += 2;

    ck_assert_msg(es_codec_decode(codec, rec, n, &got, &out, errstr, sizeof(errstr)) == 0, "%s",
                  errstr);
    ck_assert_ptr_eq(got, es_codec_type(codec, "OpenAccount"));
    want = jparse("{\"account_id\":\"acc-1\",\"owner\":\"Bo\",\"currency\":\"EUR\"}");
    ck_assert(json_equal(want, out));
    json_decref(want);
    json_decref(out);
}
END_TEST

/* ---- validation ---- */

static const struct {
    const char *type;
    const char *payload;
    const char *error; /* the exact message */
} invalid[] = {
    {"DepositFunds", "{\"account_id\":\"a\",\"amount\":\"10\"}",
     "field \"amount\": expected an integer, got a string"},
    {"DepositFunds", "{\"account_id\":\"a\",\"amount\":1.5}",
     "field \"amount\": expected an integer, got a real number"},
    {"DepositFunds", "{\"account_id\":\"a\"}", "field \"amount\": missing required field"},
    {"DepositFunds", "{\"account_id\":\"a\",\"amount\":1,\"memo\":\"x\"}",
     "field \"memo\": unknown field"},
    {"DepositFunds", "{\"account_id\":7,\"amount\":1}",
     "field \"account_id\": expected a string, got an integer"},
    {"DepositFunds", "{\"account_id\":null,\"amount\":1}",
     "field \"account_id\": expected a string, got null"},
    {"DepositFunds", "{\"account_id\":\"a\\u0000b\",\"amount\":1}",
     "field \"account_id\": string contains a NUL character"},
    {"DepositFunds", "[1]", "payload: expected an object, got an array"},
    {"DepositFunds", "\"x\"", "payload: expected an object, got a string"},
    {"OpenAccount", "{\"account_id\":\"a\",\"owner\":\"o\",\"currency\":null}",
     "field \"currency\": expected a string, got null"},
    {"RequestTransfer",
     "{\"transfer_id\":\"t\",\"from_account\":\"a\",\"to_account\":\"b\",\"amount\":1,"
     "\"currency\":5}",
     "field \"currency\": expected null or a string, got an integer"},
    {"DebitRejected",
     "{\"account_id\":\"a\",\"transfer_id\":\"t\",\"amount\":1,\"reason\":\"BROKE\"}",
     "field \"reason\": unknown symbol \"BROKE\" (expected one of INSUFFICIENT_FUNDS, "
     "ACCOUNT_NOT_FOUND, ACCOUNT_CLOSED, CURRENCY_MISMATCH, TIMEOUT)"},
    {"DebitRejected", "{\"account_id\":\"a\",\"transfer_id\":\"t\",\"amount\":1,\"reason\":3}",
     "field \"reason\": expected a symbol string, got an integer"},
    {"TransferFailed",
     "{\"transfer_id\":\"t\",\"from_account\":\"a\",\"to_account\":\"b\",\"amount\":1,"
     "\"reason\":\"r\",\"compensated\":\"yes\"}",
     "field \"compensated\": expected a boolean, got a string"},
};

START_TEST(test_validation_errors)
{
    const es_type_t *type = es_codec_type(codec, invalid[_i].type);
    json_t *in = jparse(invalid[_i].payload);
    es_buf_t buf;

    es_buf_init(&buf);
    ck_assert_ptr_nonnull(type);
    errstr[0] = '\0';
    ck_assert_int_eq(es_codec_encode(codec, type, in, &buf, errstr, sizeof(errstr)), -1);
    ck_assert_str_eq(errstr, invalid[_i].error);
    ck_assert_uint_eq(buf.len, 0);
    /* the codec is still usable after an error */
    json_decref(in);
    in = jparse("{\"account_id\":\"a\",\"amount\":1}");
    ck_assert_int_eq(es_codec_encode(codec, es_codec_type(codec, "DepositFunds"), in, &buf, errstr,
                                     sizeof(errstr)),
                     0);
    json_decref(in);
    es_buf_fini(&buf);
}
END_TEST

START_TEST(test_validation_accepts_null_union)
{
    const es_type_t *type = es_codec_type(codec, "RequestTransfer");
    json_t *in = jparse("{\"transfer_id\":\"t\",\"from_account\":\"a\",\"to_account\":\"b\","
                        "\"amount\":1}");
    json_t *out = NULL;
    const es_type_t *got;
    es_buf_t buf;

    es_buf_init(&buf);
    ck_assert_int_eq(es_codec_encode(codec, type, in, &buf, errstr, sizeof(errstr)), 0);
    ck_assert_int_eq(es_codec_decode(codec, buf.data, buf.len, &got, &out, errstr, sizeof(errstr)),
                     0);
    ck_assert(json_is_null(json_object_get(out, "currency")));
    json_decref(in);
    json_decref(out);
    es_buf_fini(&buf);
}
END_TEST

/* ---- hostile input ---- */

static es_buf_t encode_sample(const char *name, int variant)
{
    const es_type_t *type = es_codec_type(codec, name);
    json_t *in = sample_payload(type, variant);
    es_buf_t buf;

    es_buf_init(&buf);
    ck_assert_int_eq(es_codec_encode(codec, type, in, &buf, errstr, sizeof(errstr)), 0);
    json_decref(in);
    return buf;
}

static int try_decode(const void *data, size_t len)
{
    const es_type_t *type;
    json_t *out = NULL;
    int rc = es_codec_decode(codec, data, len, &type, &out, errstr, sizeof(errstr));

    if (rc == 0) {
        ck_assert_ptr_nonnull(out);
        json_decref(out);
    } else {
        ck_assert(errstr[0] != '\0');
    }
    return rc;
}

START_TEST(test_decode_errors)
{
    es_buf_t buf = encode_sample("FundsDeposited", 0);
    unsigned char bad[64];

    ck_assert_int_eq(try_decode("", 0), -1);
    ck_assert_str_eq(errstr, "not single-object encoded");
    ck_assert_int_eq(try_decode("\xC3\x01\x00", 3), -1);
    ck_assert_str_eq(errstr, "not single-object encoded");
    memcpy(bad, buf.data, buf.len);
    bad[0] = 0x4f;
    ck_assert_int_eq(try_decode(bad, buf.len), -1);
    ck_assert_str_eq(errstr, "not single-object encoded");
    memcpy(bad, "\xC3\x01\x01\x02\x03\x04\x05\x06\x07\x08", 10);
    ck_assert_int_eq(try_decode(bad, 10), -1);
    ck_assert_str_eq(errstr, "unknown schema fingerprint 0x0807060504030201");
    /* a trailing byte */
    memcpy(bad, buf.data, buf.len);
    bad[buf.len] = 0;
    ck_assert_int_eq(try_decode(bad, buf.len + 1), -1);
    ck_assert_ptr_nonnull(strstr(errstr, "trailing"));
    /* truncated */
    ck_assert_int_eq(try_decode(buf.data, buf.len - 1), -1);
    ck_assert_ptr_nonnull(strstr(errstr, "could not decode a FundsDeposited record"));
    es_buf_fini(&buf);
}
END_TEST

START_TEST(test_decode_hostile_lengths)
{
    es_buf_t buf = encode_sample("AccountClosed", 0);
    /* AccountClosed{account_id}: a 6-byte body declaring a 1 TiB, then an 8 MiB, string */
    const unsigned char huge[][6] = {{0x80, 0x80, 0x80, 0x80, 0x80, 0x40}, /* 2^40 */
                                     {0x80, 0x80, 0x80, 0x08, 'x', 'y'},   /* 8 MiB */
                                     {0x01, 0, 0, 0, 0, 0},                /* -1 */
                                     {0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
    unsigned char rec[16];

    for (size_t k = 0; k < sizeof(huge) / sizeof(huge[0]); k++) {
        memcpy(rec, buf.data, 10);
        memcpy(rec + 10, huge[k], 6);
        ck_assert_int_eq(try_decode(rec, 16), -1);
    }
    /* an enum index out of range, a union branch out of range */
    {
        es_buf_t d = encode_sample("DebitRejected", 0);
        d.data[d.len - 1] = 0x0e; /* zigzag(7) */
        ck_assert_int_eq(try_decode(d.data, d.len), -1);
        d.data[d.len - 1] = 0x01; /* zigzag(-1) */
        ck_assert_int_eq(try_decode(d.data, d.len), -1);
        es_buf_fini(&d);
    }
    {
        es_buf_t t = encode_sample("TransferRequested", 0); /* currency null: last byte 00 */
        t.data[t.len - 1] = 0x04;                           /* branch 2 of 2 */
        ck_assert_int_eq(try_decode(t.data, t.len), -1);
        es_buf_fini(&t);
    }
    {
        /* invalid UTF-8 in a string */
        es_buf_t c = encode_sample("AccountClosed", 0);
        c.data[11] = 0xff;
        ck_assert_int_eq(try_decode(c.data, c.len), -1);
        es_buf_fini(&c);
    }
    es_buf_fini(&buf);
}
END_TEST

/* The capped allocator es_codec_new() installs: avro-c asked for a 1 TiB string by a
 * 6-byte input fails cleanly instead of trying to allocate it. */
START_TEST(test_allocator_cap)
{
    const unsigned char body[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x40}; /* length 2^40 */
    avro_schema_t schema = avro_schema_string();
    avro_value_iface_t *iface = avro_generic_class_from_schema(schema);
    avro_value_t value;
    avro_reader_t reader = avro_reader_memory((const char *)body, sizeof(body));

    ck_assert_int_eq(avro_generic_value_new(iface, &value), 0);
    ck_assert_int_ne(avro_value_read(reader, &value), 0);
    avro_reader_free(reader);
    avro_value_decref(&value);
    avro_value_iface_decref(iface);
    avro_schema_decref(schema);
}
END_TEST

/* xorshift: reproducible garbage */
static uint64_t rng_state = UINT64_C(0x9e3779b97f4a7c15);
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

START_TEST(test_decode_fuzz)
{
    size_t ntypes = 0;
    uint64_t fps[64];
    unsigned char junk[256];
    int ok = 0;

    while (es_codec_type_at(codec, ntypes) != NULL) {
        fps[ntypes] = es_type_fingerprint(es_codec_type_at(codec, ntypes));
        ntypes++;
    }
    /* every truncation of every type's record fails cleanly */
    for (size_t t = 0; t < ntypes; t++) {
        for (int variant = 0; variant < 2; variant++) {
            es_buf_t buf = encode_sample(es_type_name(es_codec_type_at(codec, t)), variant);
            for (size_t len = 0; len < buf.len; len++) {
                unsigned char *copy = malloc(len + 1); /* exact size: asan sees overreads */
                memcpy(copy, buf.data, len);
                ck_assert_int_eq(try_decode(copy, len), -1);
                free(copy);
            }
            /* byte flips in the body: decode or fail, never crash */
            for (int round = 0; round < 300; round++) {
                unsigned char *copy = malloc(buf.len);
                memcpy(copy, buf.data, buf.len);
                for (int f = 0; f < 1 + (int)(rng() % 3); f++) {
                    size_t at = 10 + (size_t)(rng() % (buf.len - 10));
                    copy[at] = (unsigned char)rng();
                }
                ok += try_decode(copy, buf.len) == 0;
                free(copy);
            }
            es_buf_fini(&buf);
        }
    }
    /* random bodies behind valid headers */
    for (int round = 0; round < 20000; round++) {
        size_t len = 10 + (size_t)(rng() % 60);
        uint64_t fp = fps[rng() % ntypes];
        unsigned char *copy;
        for (size_t k = 0; k < sizeof(junk); k++) {
            junk[k] = (unsigned char)rng();
        }
        junk[0] = 0xC3;
        junk[1] = 0x01;
        for (int k = 0; k < 8; k++) {
            junk[2 + k] = (unsigned char)(fp >> (8 * k));
        }
        copy = malloc(len);
        memcpy(copy, junk, len);
        ok += try_decode(copy, len) == 0;
        free(copy);
    }
    fprintf(stderr, "codec fuzz: %d mutated inputs happened to decode\n", ok);
}
END_TEST

/* ---- speed (reported, not asserted) ---- */

START_TEST(test_decode_rate)
{
    es_buf_t buf = encode_sample("FundsDeposited", 0);
    const es_type_t *type;
    json_t *out;
    int n = 300000;
    int64_t t0 = es_mono_us();
    int64_t us;

    for (int i = 0; i < n; i++) {
        if (es_codec_decode(codec, buf.data, buf.len, &type, &out, errstr, sizeof(errstr)) != 0) {
            ck_abort_msg("decode: %s", errstr);
        }
        json_decref(out);
    }
    us = es_mono_us() - t0;
    fprintf(stderr, "codec: decoded %d FundsDeposited (%zu bytes) in %.3f s: %.0f/s\n", n, buf.len,
            (double)us / 1e6, us > 0 ? n * 1e6 / (double)us : 0.0);

    {
        json_t *in = sample_payload(es_codec_type(codec, "FundsDeposited"), 0);
        es_buf_t enc;
        es_buf_init(&enc);
        t0 = es_mono_us();
        for (int i = 0; i < n; i++) {
            es_buf_reset(&enc);
            if (es_codec_encode(codec, es_codec_type(codec, "FundsDeposited"), in, &enc, errstr,
                                sizeof(errstr)) != 0) {
                ck_abort_msg("encode: %s", errstr);
            }
        }
        us = es_mono_us() - t0;
        fprintf(stderr, "codec: encoded %d FundsDeposited in %.3f s: %.0f/s\n", n, (double)us / 1e6,
                us > 0 ? n * 1e6 / (double)us : 0.0);
        json_decref(in);
        es_buf_fini(&enc);
    }
    es_buf_fini(&buf);
}
END_TEST

Suite *codec_suite(void);

Suite *codec_suite(void)
{
    Suite *s = suite_create("codec");
    TCase *tc;

    tc = tcase_create("fingerprint");
    tcase_add_loop_test(tc, test_fingerprint_known_values, 0,
                        (int)(sizeof(fp_cases) / sizeof(fp_cases[0])));
    tcase_add_test(tc, test_fingerprint_strips_and_nests);
    suite_add_tcase(s, tc);

    tc = tcase_create("registry");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_registry_catalog, 0, CATALOG_N);
    tcase_add_test(tc, test_registry_listing);
    suite_add_tcase(s, tc);

    tc = tcase_create("round_trip");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_round_trip_every_type, 0, CATALOG_N);
    tcase_add_test(tc, test_encode_bytes_are_avro);
    tcase_add_test(tc, test_encode_payload_too_large);
    tcase_add_test(tc, test_open_account_currency_default);
    tcase_add_test(tc, test_v1_open_account_reads_as_current);
    suite_add_tcase(s, tc);

    tc = tcase_create("validation");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_validation_errors, 0, (int)(sizeof(invalid) / sizeof(invalid[0])));
    tcase_add_test(tc, test_validation_accepts_null_union);
    suite_add_tcase(s, tc);

    tc = tcase_create("hostile");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_decode_errors);
    tcase_add_test(tc, test_decode_hostile_lengths);
    tcase_add_test(tc, test_allocator_cap);
    tcase_add_test(tc, test_decode_fuzz);
    suite_add_tcase(s, tc);

    tc = tcase_create("speed");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_decode_rate);
    suite_add_tcase(s, tc);
    return s;
}
