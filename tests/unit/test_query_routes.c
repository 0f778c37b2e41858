/*
 * test_query_routes.c: the query service's URL parsing (projections/query/routes.c): every
 * route with plain and percent-encoded ids, paths that name no route, each way a path that
 * names a route can be malformed (bad escapes, empty, too long or badly charactered ids), id
 * validation on its own, the strict integers and durations of query strings, the saga list's
 * filters, and the routes' metric labels.
 */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "../../projections/query/routes.h"
#include "duration.h"

/* Writes `head`, then `unit` n times, then `tail` into buf; returns buf. */
static const char *repeat(char *buf, size_t size, const char *head, const char *unit, size_t n,
                          const char *tail)
{
    size_t len = (size_t)snprintf(buf, size, "%s", head);
    for (size_t i = 0; i < n; i++) {
        len += (size_t)snprintf(buf + len, size - len, "%s", unit);
    }
    snprintf(buf + len, size - len, "%s", tail);
    ck_assert_uint_lt(strlen(buf), size - 1);
    return buf;
}

/* ---- routes that parse ---- */

static const struct {
    const char *path;
    es_query_route_t route;
    const char *id;
} valid[] = {
    {"/health", ES_ROUTE_HEALTH, ""},
    {"/metrics", ES_ROUTE_METRICS, ""},
    {"/accounts/A", ES_ROUTE_ACCOUNT, "A"},
    {"/accounts/acc-1.x_y:Z9", ES_ROUTE_ACCOUNT, "acc-1.x_y:Z9"},
    {"/accounts/A/entries", ES_ROUTE_ENTRIES, "A"},
    {"/accounts/acc-42/entries", ES_ROUTE_ENTRIES, "acc-42"},
    {"/transfers/t-1", ES_ROUTE_TRANSFER, "t-1"},
    {"/users/u-1", ES_ROUTE_USER, "u-1"},
    {"/users/u-1/orders", ES_ROUTE_USER_ORDERS, "u-1"},
    {"/products/p.1", ES_ROUTE_PRODUCT, "p.1"},
    {"/orders/o:1", ES_ROUTE_ORDER, "o:1"},
    {"/commands/6f1c2a9e-3b4d-4c5e-8f70-112233445566", ES_ROUTE_COMMAND,
     "6f1c2a9e-3b4d-4c5e-8f70-112233445566"},
    {"/accounts/%41b", ES_ROUTE_ACCOUNT, "Ab"},
    {"/accounts/a%2db%2Dc", ES_ROUTE_ACCOUNT, "a-b-c"},
    {"/accounts/%3a%3A", ES_ROUTE_ACCOUNT, "::"},
    {"/accounts/%61%62c/entries", ES_ROUTE_ENTRIES, "abc"},
    {"/transfers/%74%2D1", ES_ROUTE_TRANSFER, "t-1"},
    {"/commands/c.1", ES_ROUTE_COMMAND, "c.1"},
    {"/accounts/..", ES_ROUTE_ACCOUNT, ".."}, /* only an id here, never a file path */
    /* the fixed segments are compared after decoding too */
    {"/%61ccounts/x", ES_ROUTE_ACCOUNT, "x"},
    {"/accounts/x/%65ntries", ES_ROUTE_ENTRIES, "x"},
    {"/h%65alth", ES_ROUTE_HEALTH, ""},
    {"/sagas", ES_ROUTE_SAGAS, ""},
    {"/sagas/s-1", ES_ROUTE_SAGA, "s-1"},
    {"/sagas/6f1c2a9e-3b4d-4c5e-8f70-112233445566", ES_ROUTE_SAGA,
     "6f1c2a9e-3b4d-4c5e-8f70-112233445566"},
    {"/sagas/pay-o.1", ES_ROUTE_SAGA, "pay-o.1"},
    {"/%73agas/o%2D1", ES_ROUTE_SAGA, "o-1"},
    {"/saga%73", ES_ROUTE_SAGAS, ""},
};
#define VALID_N ((int)(sizeof(valid) / sizeof(valid[0])))

START_TEST(test_valid)
{
    es_query_path_t out;
    char errstr[256] = "";
    memset(&out, 0x5a, sizeof(out));
    int rc = es_query_route_parse(valid[_i].path, &out, errstr, sizeof(errstr));
    ck_assert_msg(rc == 0, "%s: rc %d (%s)", valid[_i].path, rc, errstr);
    ck_assert_msg(out.route == valid[_i].route, "%s: route %d, want %d", valid[_i].path,
                  (int)out.route, (int)valid[_i].route);
    ck_assert_str_eq(out.id, valid[_i].id);
}
END_TEST

/* Ids of exactly 128 characters, plain or every character percent-encoded (384 bytes). */
START_TEST(test_longest_id)
{
    static const struct {
        const char *head, *unit, *tail;
        es_query_route_t route;
    } cases[] = {
        {"/accounts/", "z", "", ES_ROUTE_ACCOUNT},
        {"/accounts/", "%7a", "/entries", ES_ROUTE_ENTRIES},
        {"/transfers/", "%7A", "", ES_ROUTE_TRANSFER},
        {"/commands/", "z", "", ES_ROUTE_COMMAND},
        {"/sagas/", "%7a", "", ES_ROUTE_SAGA},
    };
    char path[1024], id[256];
    repeat(id, sizeof(id), "", "z", ES_QUERY_ID_MAX, "");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        repeat(path, sizeof(path), cases[i].head, cases[i].unit, ES_QUERY_ID_MAX, cases[i].tail);
        es_query_path_t out;
        char errstr[256] = "";
        ck_assert_msg(es_query_route_parse(path, &out, errstr, sizeof(errstr)) == 0, "case %zu: %s",
                      i, errstr);
        ck_assert_int_eq(out.route, cases[i].route);
        ck_assert_str_eq(out.id, id);
    }
}
END_TEST

/* ---- paths that name no route: 0 and ES_ROUTE_NONE ---- */

static const char *const no_route[] = {
    "",
    "health",
    "accounts/A",
    "/",
    "//",
    "/healthz",
    "/health/",
    "/Health",
    "/users/u/entries",
    "/users/u/orders/x",
    "/products/p/orders",
    "/orders/o/items",
    "/HEALTH",
    "/metrics/x",
    "/accounts",
    "/transfers",
    "/commands",
    "/accounts/A/",
    "/accounts/A/entries/",
    "/accounts/A/Entries",
    "/accounts/A/other",
    "/accounts/A/entries/x",
    "/transfers/t-1/entries",
    "/commands/c-1/x",
    "/commands/c-1/",
    "/transfers/t-1/",
    "/account/A",
    "/Accounts/A",
    "//accounts/A",
    "/unknown/x",
    "/a/b/c/d",
    "/accounts%2FA",   /* an encoded slash never splits a segment */
    "/health%00",      /* a decoded NUL does not end a literal */
    "/%zzalth",        /* bad escape outside an id: simply no route */
    "/accounts/A/%zz", /* ditto in the third segment */
    "/Sagas",
    "/saga",
    "/saga/s-1",
    "/sagas/s-1/",
    "/sagas/s-1/steps",
    "/sagas/s-1/x/y",
    "/sagas%2Fs-1", /* one segment that is not "sagas" */
};
#define NO_ROUTE_N ((int)(sizeof(no_route) / sizeof(no_route[0])))

START_TEST(test_no_route)
{
    es_query_path_t out;
    char errstr[256] = "";
    memset(&out, 0x5a, sizeof(out));
    int rc = es_query_route_parse(no_route[_i], &out, errstr, sizeof(errstr));
    ck_assert_msg(rc == 0 && out.route == ES_ROUTE_NONE, "\"%s\": rc %d route %d", no_route[_i], rc,
                  (int)out.route);
    ck_assert_str_eq(out.id, "");
}
END_TEST

START_TEST(test_null_path)
{
    es_query_path_t out;
    char errstr[64] = "";
    ck_assert_int_eq(es_query_route_parse(NULL, &out, errstr, sizeof(errstr)), 0);
    ck_assert_int_eq(out.route, ES_ROUTE_NONE);
    ck_assert_str_eq(out.id, "");
}
END_TEST

/* ---- paths that name a route but are malformed: -1, route kept, message ---- */

static const struct {
    const char *path;
    es_query_route_t route;
    const char *what; /* in the message */
} malformed[] = {
    {"/accounts/", ES_ROUTE_ACCOUNT, "account"},
    {"/accounts//entries", ES_ROUTE_ENTRIES, "account"},
    {"/transfers/", ES_ROUTE_TRANSFER, "transfer"},
    {"/commands/", ES_ROUTE_COMMAND, "command"},
    {"/accounts/a b", ES_ROUTE_ACCOUNT, "account"},
    {"/accounts/a%20b", ES_ROUTE_ACCOUNT, "account"},
    {"/accounts/a+b", ES_ROUTE_ACCOUNT, "account"},
    {"/accounts/a%2Fb", ES_ROUTE_ACCOUNT, "account"},         /* decodes to a slash */
    {"/accounts/a%2fb/entries", ES_ROUTE_ENTRIES, "account"}, /* ditto */
    {"/accounts/a%00b", ES_ROUTE_ACCOUNT, "account"},         /* decodes to a NUL */
    {"/accounts/%00", ES_ROUTE_ACCOUNT, "account"},
    {"/accounts/a%", ES_ROUTE_ACCOUNT, "account"},
    {"/accounts/%", ES_ROUTE_ACCOUNT, "account"},
    {"/accounts/a%4", ES_ROUTE_ACCOUNT, "account"},
    {"/accounts/a%4/entries", ES_ROUTE_ENTRIES, "account"},
    {"/accounts/%zz", ES_ROUTE_ACCOUNT, "account"},
    {"/accounts/%4g", ES_ROUTE_ACCOUNT, "account"},
    {"/accounts/%g4", ES_ROUTE_ACCOUNT, "account"},
    {"/accounts/%%41", ES_ROUTE_ACCOUNT, "account"},
    {"/accounts/\xc3\xa9", ES_ROUTE_ACCOUNT, "account"}, /* raw UTF-8 */
    {"/accounts/%C3%A9", ES_ROUTE_ACCOUNT, "account"},   /* encoded UTF-8 */
    {"/accounts/a?b", ES_ROUTE_ACCOUNT, "account"},
    {"/accounts/a#b", ES_ROUTE_ACCOUNT, "account"},
    {"/accounts/a;b", ES_ROUTE_ACCOUNT, "account"},
    {"/accounts/a,b", ES_ROUTE_ACCOUNT, "account"},
    {"/accounts/a\\b", ES_ROUTE_ACCOUNT, "account"},
    {"/accounts/a\tb", ES_ROUTE_ACCOUNT, "account"},
    {"/transfers/t!1", ES_ROUTE_TRANSFER, "transfer"},
    {"/transfers/t%7E1", ES_ROUTE_TRANSFER, "transfer"},
    {"/commands/c*", ES_ROUTE_COMMAND, "command"},
    {"/commands/%", ES_ROUTE_COMMAND, "command"},
    {"/sagas/", ES_ROUTE_SAGA, "saga"},
    {"/sagas/a%2Fb", ES_ROUTE_SAGA, "saga"},
    {"/sagas/a b", ES_ROUTE_SAGA, "saga"},
    {"/sagas/%", ES_ROUTE_SAGA, "saga"},
    {"/sagas/o-1%00", ES_ROUTE_SAGA, "saga"},
    {"/sagas/o-1?", ES_ROUTE_SAGA, "saga"},
};
#define MALFORMED_N ((int)(sizeof(malformed) / sizeof(malformed[0])))

static void check_malformed(const char *path, es_query_route_t route, const char *what)
{
    es_query_path_t out;
    char errstr[256] = "";
    memset(&out, 0x5a, sizeof(out));
    int rc = es_query_route_parse(path, &out, errstr, sizeof(errstr));
    ck_assert_msg(rc == -1, "\"%s\": rc %d, want -1", path, rc);
    ck_assert_msg(out.route == route, "\"%s\": route %d, want %d", path, (int)out.route,
                  (int)route);
    ck_assert_str_eq(out.id, "");
    char want[64];
    snprintf(want, sizeof(want), "malformed %s id", what);
    ck_assert_msg(strstr(errstr, want) != NULL, "\"%s\": message \"%s\"", path, errstr);
}

START_TEST(test_malformed)
{
    check_malformed(malformed[_i].path, malformed[_i].route, malformed[_i].what);
}
END_TEST

/* One character too many, plain or encoded, and segments far past any id's length. */
START_TEST(test_too_long)
{
    static char path[4096];
    check_malformed(repeat(path, sizeof(path), "/accounts/", "z", ES_QUERY_ID_MAX + 1, ""),
                    ES_ROUTE_ACCOUNT, "account");
    check_malformed(repeat(path, sizeof(path), "/accounts/", "%7a", ES_QUERY_ID_MAX + 1, ""),
                    ES_ROUTE_ACCOUNT, "account");
    check_malformed(repeat(path, sizeof(path), "/accounts/", "z", ES_QUERY_ID_MAX + 1, "/entries"),
                    ES_ROUTE_ENTRIES, "account");
    check_malformed(repeat(path, sizeof(path), "/transfers/", "z", 3 * ES_QUERY_ID_MAX, ""),
                    ES_ROUTE_TRANSFER, "transfer");
    check_malformed(repeat(path, sizeof(path), "/commands/", "z", 3000, ""), ES_ROUTE_COMMAND,
                    "command");
    check_malformed(repeat(path, sizeof(path), "/sagas/", "z", ES_QUERY_ID_MAX + 1, ""),
                    ES_ROUTE_SAGA, "saga");
    /* a huge first or last segment is simply no route */
    es_query_path_t out;
    char errstr[64];
    ck_assert_int_eq(es_query_route_parse(repeat(path, sizeof(path), "/", "a", 1000, "/x"), &out,
                                          errstr, sizeof(errstr)),
                     0);
    ck_assert_int_eq(out.route, ES_ROUTE_NONE);
    ck_assert_int_eq(es_query_route_parse(repeat(path, sizeof(path), "/accounts/x/", "e", 1000, ""),
                                          &out, errstr, sizeof(errstr)),
                     0);
    ck_assert_int_eq(out.route, ES_ROUTE_NONE);
}
END_TEST

/* A small error buffer truncates the message but is still terminated. */
START_TEST(test_small_errstr)
{
    es_query_path_t out;
    char errstr[8];
    memset(errstr, 'x', sizeof(errstr));
    ck_assert_int_eq(es_query_route_parse("/accounts/%", &out, errstr, sizeof(errstr)), -1);
    ck_assert_uint_eq(strlen(errstr), sizeof(errstr) - 1);
}
END_TEST

/* ---- es_query_id_valid ---- */

static const struct {
    const char *id;
    size_t len;
    int ok;
} ids[] = {
    {"a", 1, 1},       {"AZaz09._:-", 10, 1}, {"-", 1, 1},
    {"", 0, 0},        {"abc", 0, 0}, /* the explicit length wins */
    {"abc def", 3, 1},                /* only the first len bytes count */
    {"abc def", 4, 0}, {"a\0b", 3, 0},        {"a/b", 3, 0},
    {"a%b", 3, 0},     {"a@b", 3, 0},         {"\xff", 1, 0},
    {"[a]", 3, 0},     {"`a`", 3, 0},         {"{a}", 3, 0},
};

START_TEST(test_id_valid)
{
    ck_assert_msg(es_query_id_valid(ids[_i].id, ids[_i].len) == ids[_i].ok, "id %d", _i);
}
END_TEST

START_TEST(test_id_length)
{
    char id[ES_QUERY_ID_MAX + 2];
    memset(id, '7', sizeof(id));
    ck_assert_int_eq(es_query_id_valid(id, ES_QUERY_ID_MAX), 1);
    ck_assert_int_eq(es_query_id_valid(id, ES_QUERY_ID_MAX + 1), 0);
    ck_assert_int_eq(es_query_id_valid(id, ES_QUERY_ID_MAX + 2), 0);
}
END_TEST

/* ---- es_query_parse_uint ---- */

static const struct {
    const char *s;
    int64_t max;
    int ok;
    int64_t value;
} uints[] = {
    {"0", 100, 1, 0},
    {"1", 100, 1, 1},
    {"42", 100, 1, 42},
    {"100", 100, 1, 100},
    {"007", 10, 1, 7},
    {"000", 0, 1, 0},
    {"10", 10, 1, 10},
    {"9223372036854775807", INT64_MAX, 1, INT64_MAX},
    {"00009223372036854775807", INT64_MAX, 1, INT64_MAX},
    {"101", 100, 0, 0},
    {"1000", 100, 0, 0},
    {"11", 10, 0, 0},
    {"65536", 65535, 0, 0},
    {"9223372036854775808", INT64_MAX, 0, 0},
    {"18446744073709551616", INT64_MAX, 0, 0},
    {"99999999999999999999999", INT64_MAX, 0, 0},
    {"", 100, 0, 0},
    {"-1", 100, 0, 0},
    {"+1", 100, 0, 0},
    {" 1", 100, 0, 0},
    {"1 ", 100, 0, 0},
    {"1a", 100, 0, 0},
    {"a1", 100, 0, 0},
    {"0x10", 100, 0, 0},
    {"1.0", 100, 0, 0},
    {"1e2", 100, 0, 0},
    {"1,000", 10000, 0, 0},
    {"\xd9\xa3", 100, 0, 0}, /* ARABIC-INDIC DIGIT THREE */
};

START_TEST(test_parse_uint)
{
    int64_t v = -7;
    int rc = es_query_parse_uint(uints[_i].s, uints[_i].max, &v);
    if (uints[_i].ok) {
        ck_assert_msg(rc == 0, "\"%s\" (max %" PRId64 "): rc %d", uints[_i].s, uints[_i].max, rc);
        ck_assert_int_eq(v, uints[_i].value);
    } else {
        ck_assert_msg(rc == -1, "\"%s\" (max %" PRId64 "): rc %d value %" PRId64, uints[_i].s,
                      uints[_i].max, rc, v);
        ck_assert_int_eq(v, -7); /* untouched on failure */
    }
}
END_TEST

START_TEST(test_parse_uint_null)
{
    int64_t v = -7;
    ck_assert_int_eq(es_query_parse_uint(NULL, 100, &v), -1);
    ck_assert_int_eq(v, -7);
}
END_TEST

/* Known bug, off by default: with a max below 9, a single digit above max is accepted because
 * (max - d) / 10 truncates towards zero (e.g. (5 - 7) / 10 == 0). No caller passes such a max
 * today (the smallest is 256). */
static const struct {
    const char *s;
    int64_t max;
} small_max[] = {{"7", 5}, {"9", 0}, {"0007", 5}, {"1", 0}};

START_TEST(test_parse_uint_small_max)
{
    int64_t v = -7;
    ck_assert_msg(es_query_parse_uint(small_max[_i].s, small_max[_i].max, &v) == -1,
                  "\"%s\" accepted with max %" PRId64 ": %" PRId64, small_max[_i].s,
                  small_max[_i].max, v);
}
END_TEST

/* ---- route names ---- */

static const struct {
    es_query_route_t route;
    const char *name;
} names[] = {
    {ES_ROUTE_NONE, "other"},
    {ES_ROUTE_ACCOUNT, "/accounts/{id}"},
    {ES_ROUTE_ENTRIES, "/accounts/{id}/entries"},
    {ES_ROUTE_TRANSFER, "/transfers/{id}"},
    {ES_ROUTE_COMMAND, "/commands/{id}"},
    {ES_ROUTE_HEALTH, "/health"},
    {ES_ROUTE_METRICS, "/metrics"},
    {ES_ROUTE_USER, "/users/{id}"},
    {ES_ROUTE_USER_ORDERS, "/users/{id}/orders"},
    {ES_ROUTE_PRODUCT, "/products/{id}"},
    {ES_ROUTE_ORDER, "/orders/{id}"},
    {ES_ROUTE_SAGA, "/sagas/{id}"},
    {ES_ROUTE_SAGAS, "/sagas"},
    {ES_ROUTE__CNT, "other"},
    {(es_query_route_t)99, "other"},
    {(es_query_route_t)-1, "other"},
};

START_TEST(test_route_name)
{
    ck_assert_str_eq(es_query_route_name(names[_i].route), names[_i].name);
}
END_TEST

/* Every route has a name of its own (a new route without one would be counted as "other"). */
START_TEST(test_route_names_distinct)
{
    for (int a = 1; a < ES_ROUTE__CNT; a++) {
        const char *na = es_query_route_name((es_query_route_t)a);
        ck_assert_ptr_nonnull(na);
        ck_assert_str_ne(na, "other");
        for (int b = a + 1; b < ES_ROUTE__CNT; b++) {
            ck_assert_str_ne(na, es_query_route_name((es_query_route_t)b));
        }
    }
}
END_TEST

/* ---- es_parse_duration_ms (lib/duration.c), at the query service's maximum ---- */

static const struct {
    const char *s;
    int ok;
    int64_t ms;
} durations[] = {
    {"10s", 1, 10000},
    {"500ms", 1, 500},
    {"2m", 1, 120000},
    {"1h", 1, 3600000},
    {"10", 1, 10000}, /* a plain number is seconds */
    {"0", 1, 0},
    {"0ms", 1, 0},
    {"0h", 1, 0},
    {"007s", 1, 7000},
    {"1ms", 1, 1},
    {"3155760000000ms", 1, ES_QUERY_DURATION_MAX_MS}, /* 100 years, the most */
    {"3155760000", 1, ES_QUERY_DURATION_MAX_MS},
    {"3155760000s", 1, ES_QUERY_DURATION_MAX_MS},
    {"52596000m", 1, ES_QUERY_DURATION_MAX_MS},
    {"876600h", 1, ES_QUERY_DURATION_MAX_MS},
    {"0000000000000000000000000000001s", 1, 1000}, /* leading zeros are not an overflow */
    {"3155760000001ms", 0, 0},
    {"3155760001", 0, 0},
    {"52596001m", 0, 0},
    {"876601h", 0, 0},
    {"9223372036854775807ms", 0, 0},
    {"9223372036854775808", 0, 0},
    {"99999999999999999999999999h", 0, 0},
    {"", 0, 0},
    {"s", 0, 0},
    {"ms", 0, 0},
    {"-1", 0, 0},
    {"-1s", 0, 0},
    {"+1s", 0, 0},
    {" 1s", 0, 0},
    {"1s ", 0, 0},
    {"1 s", 0, 0},
    {"1.5s", 0, 0},
    {"1e3", 0, 0},
    {"0x10", 0, 0},
    {"10S", 0, 0},
    {"10MS", 0, 0},
    {"10H", 0, 0},
    {"10sec", 0, 0},
    {"10d", 0, 0},
    {"10us", 0, 0},
    {"10mss", 0, 0},
    {"10sm", 0, 0},
    {"1h30m", 0, 0},
    {"10s\n", 0, 0},
    {"\xd9\xa3s", 0, 0}, /* ARABIC-INDIC DIGIT THREE */
};

START_TEST(test_parse_duration)
{
    int64_t v = -7;
    int rc = es_parse_duration_ms(durations[_i].s, ES_QUERY_DURATION_MAX_MS, &v);
    if (durations[_i].ok) {
        ck_assert_msg(rc == 0, "\"%s\": rc %d", durations[_i].s, rc);
        ck_assert_int_eq(v, durations[_i].ms);
    } else {
        ck_assert_msg(rc == -1, "\"%s\": rc %d value %" PRId64, durations[_i].s, rc, v);
        ck_assert_int_eq(v, -7); /* untouched on failure */
    }
}
END_TEST

START_TEST(test_parse_duration_null)
{
    int64_t v = -7;
    ck_assert_int_eq(es_parse_duration_ms(NULL, ES_QUERY_DURATION_MAX_MS, &v), -1);
    ck_assert_int_eq(v, -7);
}
END_TEST

/* ---- es_query_sagas_filter_parse ---- */

static const struct {
    const char *status, *older_than, *type, *limit;
    const char *err; /* NULL: valid; else a part of the message */
    const char *want_status, *want_type;
    int64_t want_older_ms, want_limit;
} filters[] = {
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL, -1, 100},
    {"PENDING", "10s", "order", "100", NULL, "PENDING", "order", 10000, 100},
    {"TIMED_OUT", NULL, NULL, NULL, NULL, "TIMED_OUT", NULL, -1, 100},
    {"COMPLETED", NULL, "transfer", "1", NULL, "COMPLETED", "transfer", -1, 1},
    {"FAILED", "0", NULL, "1000", NULL, "FAILED", NULL, 0, 1000},
    {"CANCELLED", "500ms", NULL, "0001", NULL, "CANCELLED", NULL, 500, 1},
    {NULL, "2m", NULL, NULL, NULL, NULL, NULL, 120000, 100},
    {NULL, "1h", NULL, NULL, NULL, NULL, NULL, 3600000, 100},
    {"pending", NULL, NULL, NULL,
     "status: expected one of PENDING, TIMED_OUT, COMPLETED, FAILED, "
     "CANCELLED",
     NULL, NULL, 0, 0},
    {"", NULL, NULL, NULL, "malformed status", NULL, NULL, 0, 0},
    {"PENDING ", NULL, NULL, NULL, "malformed status", NULL, NULL, 0, 0},
    {"DONE", NULL, NULL, NULL, "malformed status", NULL, NULL, 0, 0},
    {NULL, "-10s", NULL, NULL, "malformed older_than", NULL, NULL, 0, 0},
    {NULL, "", NULL, NULL, "malformed older_than", NULL, NULL, 0, 0},
    {NULL, "10x", NULL, NULL, "malformed older_than", NULL, NULL, 0, 0},
    {NULL, "99999999999999999999", NULL, NULL, "malformed older_than", NULL, NULL, 0, 0},
    {NULL, NULL, "ORDER", NULL, "malformed type: expected order or transfer", NULL, NULL, 0, 0},
    {NULL, NULL, "", NULL, "malformed type", NULL, NULL, 0, 0},
    {NULL, NULL, "payment", NULL, "malformed type", NULL, NULL, 0, 0},
    {NULL, NULL, NULL, "0", "malformed limit: expected an integer 1..1000", NULL, NULL, 0, 0},
    {NULL, NULL, NULL, "1001", "malformed limit", NULL, NULL, 0, 0},
    {NULL, NULL, NULL, "-1", "malformed limit", NULL, NULL, 0, 0},
    {NULL, NULL, NULL, "", "malformed limit", NULL, NULL, 0, 0},
    {NULL, NULL, NULL, "10abc", "malformed limit", NULL, NULL, 0, 0},
    {NULL, NULL, NULL, "99999999999999999999", "malformed limit", NULL, NULL, 0, 0},
    /* the first bad parameter is named */
    {"nope", "nope", "nope", "nope", "malformed status", NULL, NULL, 0, 0},
    {"PENDING", "nope", "nope", "nope", "malformed older_than", NULL, NULL, 0, 0},
    {"PENDING", "1s", "nope", "nope", "malformed type", NULL, NULL, 0, 0},
    {"PENDING", "1s", "order", "nope", "malformed limit", NULL, NULL, 0, 0},
};

START_TEST(test_sagas_filter)
{
    es_query_sagas_filter_t f;
    char errstr[256] = "";
    memset(&f, 0x5a, sizeof(f));
    int rc =
        es_query_sagas_filter_parse(filters[_i].status, filters[_i].older_than, filters[_i].type,
                                    filters[_i].limit, &f, errstr, sizeof(errstr));
    if (!filters[_i].err) {
        ck_assert_msg(rc == 0, "case %d: rc %d (%s)", _i, rc, errstr);
        if (filters[_i].want_status) {
            ck_assert_str_eq(f.status, filters[_i].want_status);
        } else {
            ck_assert_ptr_null(f.status);
        }
        if (filters[_i].want_type) {
            ck_assert_str_eq(f.type, filters[_i].want_type);
        } else {
            ck_assert_ptr_null(f.type);
        }
        ck_assert_int_eq(f.older_than_ms, filters[_i].want_older_ms);
        ck_assert_int_eq(f.limit, filters[_i].want_limit);
    } else {
        ck_assert_msg(rc == -1, "case %d: rc %d", _i, rc);
        ck_assert_msg(strstr(errstr, filters[_i].err) != NULL, "case %d: message \"%s\"", _i,
                      errstr);
    }
}
END_TEST

/* The statuses and types come back as static strings, never as the request's own. */
START_TEST(test_sagas_filter_static)
{
    char status[] = "PENDING", type[] = "order";
    es_query_sagas_filter_t f;
    char errstr[64];
    ck_assert_int_eq(
        es_query_sagas_filter_parse(status, NULL, type, NULL, &f, errstr, sizeof(errstr)), 0);
    ck_assert_ptr_ne(f.status, status);
    ck_assert_ptr_ne(f.type, type);
    status[0] = 'X';
    type[0] = 'X';
    ck_assert_str_eq(f.status, "PENDING");
    ck_assert_str_eq(f.type, "order");
}
END_TEST

/* ---- es_query_params_check ---- */

static const struct {
    es_query_route_t route;
    const char *names[4];
    size_t n;
    const char *err; /* NULL: accepted; else a part of the message */
} params[] = {
    {ES_ROUTE_ENTRIES, {0}, 0, NULL},
    {ES_ROUTE_ENTRIES, {"limit"}, 1, NULL},
    {ES_ROUTE_ENTRIES, {"before", "limit"}, 2, NULL},
    {ES_ROUTE_USER_ORDERS, {"limit", "before"}, 2, NULL},
    {ES_ROUTE_SAGAS, {"status", "older_than", "type", "limit"}, 4, NULL},
    {ES_ROUTE_ACCOUNT, {0}, 0, NULL},
    {ES_ROUTE_ENTRIES,
     {"limit", "other"},
     2,
     "unknown query parameter \"other\": /accounts/{id}/entries takes limit, before"},
    {ES_ROUTE_ENTRIES, {"Limit"}, 1, "unknown query parameter \"Limit\""},
    {ES_ROUTE_ENTRIES, {"status"}, 1, "unknown query parameter \"status\""},
    {ES_ROUTE_ENTRIES, {""}, 1, "unknown query parameter \"\""},
    {ES_ROUTE_ENTRIES, {"limit", "limit"}, 2, "query parameter \"limit\" given twice"},
    {ES_ROUTE_SAGAS,
     {"before"},
     1,
     "unknown query parameter \"before\": /sagas takes status, older_than, type, limit"},
    {ES_ROUTE_SAGAS, {"type", "status", "type"}, 3, "\"type\" given twice"},
    {ES_ROUTE_ACCOUNT,
     {"limit"},
     1,
     "unknown query parameter \"limit\": /accounts/{id} takes none"},
    {ES_ROUTE_HEALTH, {"x"}, 1, "/health takes none"},
    {ES_ROUTE_METRICS, {"x"}, 1, "/metrics takes none"},
    {ES_ROUTE_ENTRIES, {"a\n\"b\xc3\xa9"}, 1, "unknown query parameter \"a?\"b??\""},
};

START_TEST(test_params_check)
{
    char errstr[256] = "";
    int rc = es_query_params_check(params[_i].route, params[_i].names, params[_i].n, errstr,
                                   sizeof(errstr));
    if (!params[_i].err) {
        ck_assert_msg(rc == 0, "case %d: rc %d (%s)", _i, rc, errstr);
    } else {
        ck_assert_msg(rc == -1, "case %d: rc %d", _i, rc);
        ck_assert_msg(strstr(errstr, params[_i].err) != NULL, "case %d: message \"%s\"", _i,
                      errstr);
    }
}
END_TEST

/* A long name is cut at 40 characters in the message, which always fits its buffer. */
START_TEST(test_params_check_long_name)
{
    char name[300];
    memset(name, 'x', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    const char *one[] = {name};
    char errstr[256] = "";
    ck_assert_int_eq(es_query_params_check(ES_ROUTE_SAGAS, one, 1, errstr, sizeof(errstr)), -1);
    ck_assert_msg(strstr(errstr, "\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...\"") != NULL, "%s",
                  errstr);
    char small[16];
    ck_assert_int_eq(es_query_params_check(ES_ROUTE_SAGAS, one, 1, small, sizeof(small)), -1);
    ck_assert_uint_eq(strlen(small), sizeof(small) - 1);
}
END_TEST

/* Every route's list names each parameter once, and only the paged routes and /sagas take any. */
START_TEST(test_route_params)
{
    for (int r = 0; r < ES_ROUTE__CNT; r++) {
        const char *const *t = es_query_route_params((es_query_route_t)r);
        size_t n = 0;
        for (; t[n]; n++) {
            for (size_t j = 0; j < n; j++) {
                ck_assert_str_ne(t[n], t[j]);
            }
        }
        int takes = r == ES_ROUTE_ENTRIES || r == ES_ROUTE_USER_ORDERS || r == ES_ROUTE_SAGAS;
        ck_assert_msg((n > 0) == takes, "route %d: %zu parameters", r, n);
    }
}
END_TEST

Suite *query_routes_suite(void);

Suite *query_routes_suite(void)
{
    Suite *s = suite_create("query_routes");

    TCase *tc = tcase_create("parse");
    tcase_add_loop_test(tc, test_valid, 0, VALID_N);
    tcase_add_test(tc, test_longest_id);
    tcase_add_loop_test(tc, test_no_route, 0, NO_ROUTE_N);
    tcase_add_test(tc, test_null_path);
    tcase_add_loop_test(tc, test_malformed, 0, MALFORMED_N);
    tcase_add_test(tc, test_too_long);
    tcase_add_test(tc, test_small_errstr);
    suite_add_tcase(s, tc);

    tc = tcase_create("ids");
    tcase_add_loop_test(tc, test_id_valid, 0, (int)(sizeof(ids) / sizeof(ids[0])));
    tcase_add_test(tc, test_id_length);
    suite_add_tcase(s, tc);

    tc = tcase_create("integers");
    tcase_add_loop_test(tc, test_parse_uint, 0, (int)(sizeof(uints) / sizeof(uints[0])));
    tcase_add_test(tc, test_parse_uint_null);
    tcase_add_loop_test(tc, test_parse_uint_small_max, 0,
                        (int)(sizeof(small_max) / sizeof(small_max[0])));
    suite_add_tcase(s, tc);

    tc = tcase_create("names");
    tcase_add_loop_test(tc, test_route_name, 0, (int)(sizeof(names) / sizeof(names[0])));
    tcase_add_test(tc, test_route_names_distinct);
    suite_add_tcase(s, tc);

    tc = tcase_create("durations");
    tcase_add_loop_test(tc, test_parse_duration, 0,
                        (int)(sizeof(durations) / sizeof(durations[0])));
    tcase_add_test(tc, test_parse_duration_null);
    suite_add_tcase(s, tc);

    tc = tcase_create("saga_filters");
    tcase_add_loop_test(tc, test_sagas_filter, 0, (int)(sizeof(filters) / sizeof(filters[0])));
    tcase_add_test(tc, test_sagas_filter_static);
    suite_add_tcase(s, tc);

    tc = tcase_create("query_params");
    tcase_add_loop_test(tc, test_params_check, 0, (int)(sizeof(params) / sizeof(params[0])));
    tcase_add_test(tc, test_params_check_long_name);
    tcase_add_test(tc, test_route_params);
    suite_add_tcase(s, tc);
    return s;
}
