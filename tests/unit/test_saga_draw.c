/*
 * test_saga_draw.c: drawing a saga's timeline (producers/esctl/saga_draw.c) from the JSON of
 * GET /sagas/{id}: the lanes present and in the usual order, one row per step, arrows pointing
 * from the cause's lane to the emitter's, widths respected, XML escaped, and bad JSON refused
 * without a crash.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "../../producers/esctl/saga_draw.h"

/* A step: service, type, cause service (NULL: none in the saga), at, took (-1: null). */
static json_t *step(const char *service, const char *type, const char *cause, int at, int took)
{
    return json_pack("{ss ss so si so ss}", "service", service, "type", type, "cause_service",
                     cause ? json_string(cause) : json_null(), "at_ms", at, "took_ms",
                     took >= 0 ? json_integer(took) : json_null(), "detail", "");
}

static json_t *saga(const char *status, const char *reason, json_t *steps)
{
    return json_pack("{ss ss ss ss ss ss ss so si so}", "saga_id",
                     "01a21974aacf8b43696bf73af39646d0", "type", "order", "subject", "o-1",
                     "status", status, "reason", reason, "started_at", "2026-11-26T20:00:00.000Z",
                     "deadline_at", "2026-11-26T20:00:30.000Z", "timed_out_at", json_null(),
                     "duration_ms", 57, "steps", steps);
}

static json_t *order_saga(void)
{
    json_t *st = json_array();
    json_array_append_new(st, step("esctl", "PlaceOrder", NULL, 0, -1));
    json_array_append_new(st, step("orders", "OrderPlaced", "esctl", 9, 9));
    json_array_append_new(st, step("catalog", "StockReserved", "orders", 16, 7));
    json_array_append_new(st, step("payments", "PaymentRequested", "catalog", 24, 8));
    json_array_append_new(st, step("transfers", "TransferRequested", "payments", 31, 7));
    json_array_append_new(st, step("accounts", "FundsDebited", "transfers", 36, 5));
    json_array_append_new(st, step("accounts", "FundsCredited", "accounts", 41, 5));
    json_array_append_new(st, step("transfers", "TransferCompleted", "accounts", 46, 5));
    json_array_append_new(st, step("payments", "PaymentCaptured", "transfers", 51, 5));
    json_array_append_new(st, step("orders", "OrderConfirmed", "payments", 57, 6));
    return saga("COMPLETED", "", st);
}

/* The line of `text` that contains `needle` (copied into line[size]), or "" */
static const char *line_with(const char *text, const char *needle, char *line, size_t size)
{
    const char *p = strstr(text, needle);
    line[0] = '\0';
    if (!p) {
        return line;
    }
    const char *start = p;
    while (start > text && start[-1] != '\n') {
        start--;
    }
    const char *end = strchr(p, '\n');
    size_t len = end ? (size_t)(end - start) : strlen(start);
    len = len < size - 1 ? len : size - 1;
    memcpy(line, start, len);
    line[len] = '\0';
    return line;
}

/* Columns of UTF-8 text (code points). */
static size_t cols(const char *s)
{
    size_t n = 0;
    for (; *s; s++) {
        n += ((unsigned char)*s & 0xC0) != 0x80;
    }
    return n;
}

START_TEST(test_text_order_saga)
{
    json_t *s = order_saga();
    es_buf_t out;
    es_buf_init(&out);
    char err[256];
    ck_assert_int_eq(esctl_saga_draw_text(s, 120, 0, &out, err, sizeof(err)), 0);
    es_buf_append(&out, "", 1);
    const char *text = (const char *)out.data;
    ck_assert_ptr_nonnull(strstr(text, "order saga o-1"));
    ck_assert_ptr_nonnull(strstr(text, "COMPLETED after 57 ms"));
    ck_assert_ptr_nonnull(strstr(text, "deadline 30.0 s"));
    /* lanes in the usual order */
    char line[1024];
    line_with(text, "esctl", line, sizeof(line));
    const char *e = strstr(line, "esctl"), *o = strstr(line, "orders"),
               *c = strstr(line, "catalog");
    const char *p = strstr(line, "payments"), *t = strstr(line, "transfers"),
               *a = strstr(line, "accounts");
    ck_assert(e && o && c && p && t && a);
    ck_assert(e < o && o < c && c < p && p < t && t < a);
    /* every step on its own row; forward arrows point right, backward ones left */
    static const char *const types[] = {"PlaceOrder",       "OrderPlaced",       "StockReserved",
                                        "PaymentRequested", "TransferRequested", "FundsDebited",
                                        "FundsCredited",    "TransferCompleted", "PaymentCaptured",
                                        "OrderConfirmed"};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        ck_assert_msg(line_with(text, types[i], line, sizeof(line))[0], "%s missing", types[i]);
        ck_assert_msg(cols(line) <= 120, "%s: %zu columns", types[i], cols(line));
    }
    line_with(text, "OrderPlaced", line, sizeof(line));
    ck_assert_ptr_nonnull(strstr(line, "\u251c"));
    ck_assert_ptr_nonnull(strstr(line, "\u25b6\u25cf"));
    ck_assert_ptr_nonnull(strstr(line, "+9 ms"));
    line_with(text, "OrderConfirmed", line, sizeof(line));
    ck_assert_ptr_nonnull(strstr(line, "\u25cf\u25c0")); /* payments -> orders: leftwards */
    ck_assert_ptr_nonnull(strstr(line, "\u2524"));
    ck_assert_ptr_nonnull(strstr(line, "\u2714")); /* completion mark */
    line_with(text, "FundsCredited", line, sizeof(line));
    ck_assert_ptr_null(strstr(line, "\u25b6")); /* same lane: a dot, no arrow */
    ck_assert_ptr_null(strstr(line, "\u25c0"));
    line_with(text, "PlaceOrder", line, sizeof(line));
    ck_assert_ptr_null(strstr(line, "\u251c")); /* no cause in the saga */
    ck_assert_ptr_null(strstr(text, "\033["));  /* no colour unless asked */
    es_buf_fini(&out);
    json_decref(s);
}
END_TEST

START_TEST(test_text_narrow_and_colour)
{
    json_t *s = order_saga();
    es_buf_t out;
    es_buf_init(&out);
    char err[256], line[1024];
    ck_assert_int_eq(esctl_saga_draw_text(s, 70, 1, &out, err, sizeof(err)), 0);
    es_buf_append(&out, "", 1);
    const char *text = (const char *)out.data;
    ck_assert_ptr_nonnull(strstr(text, "\033[32m")); /* completions green */
    line_with(text, "PaymentRequested", line, sizeof(line));
    ck_assert_msg(cols(line) <= 70 + 1, "%zu columns at width 70", cols(line));
    es_buf_fini(&out);
    json_decref(s);
}
END_TEST

START_TEST(test_text_timeout_unknown_services_empty)
{
    json_t *st = json_array();
    json_array_append_new(st, step("esctl", "PlaceOrder", NULL, 0, -1));
    json_array_append_new(st, step("sagas", "SagaTimedOut", "esctl", 30000, 30000));
    json_array_append_new(st, step("orders", "OrderRejected", "sagas", 30004, 4));
    json_array_append_new(st, step("billing", "InvoiceVoided", "orders", 30010, 6));
    json_t *s = saga("FAILED", "TIMEOUT", st);
    json_object_set_new(s, "timed_out_at", json_string("2026-11-26T20:00:30.000Z"));
    es_buf_t out;
    es_buf_init(&out);
    char err[256], line[1024];
    ck_assert_int_eq(esctl_saga_draw_text(s, 120, 0, &out, err, sizeof(err)), 0);
    es_buf_append(&out, "", 1);
    const char *text = (const char *)out.data;
    ck_assert_ptr_nonnull(strstr(text, "FAILED TIMEOUT"));
    ck_assert_ptr_nonnull(strstr(text, "timed out at 30.0 s"));
    line_with(text, "SagaTimedOut", line, sizeof(line));
    ck_assert_ptr_nonnull(strstr(line, "\u23f1"));
    ck_assert_ptr_nonnull(strstr(line, "+30.0 s"));
    line_with(text, "OrderRejected", line, sizeof(line));
    ck_assert_ptr_nonnull(strstr(line, "\u2716"));
    /* an unknown service gets a lane, after the known ones */
    line_with(text, "billing", line, sizeof(line));
    ck_assert(strstr(line, "sagas") && strstr(line, "billing") > strstr(line, "sagas"));
    es_buf_fini(&out);
    json_decref(s);

    s = saga("PENDING", "", json_array());
    es_buf_init(&out);
    ck_assert_int_eq(esctl_saga_draw_text(s, 120, 0, &out, err, sizeof(err)), 0);
    es_buf_append(&out, "", 1);
    ck_assert_ptr_nonnull(strstr((const char *)out.data, "no steps yet"));
    es_buf_reset(&out);
    ck_assert_int_eq(esctl_saga_draw_svg(s, &out, err, sizeof(err)), 0);
    es_buf_fini(&out);
    json_decref(s);
}
END_TEST

START_TEST(test_svg)
{
    json_t *s = order_saga();
    json_t *st = json_object_get(s, "steps");
    json_array_append_new(st, json_pack("{ss ss ss si}", "service", "<script>&\"x'", "type",
                                        "Evil<b>", "detail", "a < b & c > d", "at_ms", 60));
    json_object_set_new(s, "subject", json_string("o&1"));
    es_buf_t out;
    es_buf_init(&out);
    char err[256];
    ck_assert_int_eq(esctl_saga_draw_svg(s, &out, err, sizeof(err)), 0);
    es_buf_append(&out, "", 1);
    const char *svg = (const char *)out.data;
    ck_assert(strncmp(svg, "<svg ", 5) == 0);
    ck_assert_ptr_nonnull(strstr(svg, "</svg>\n"));
    ck_assert_int_eq(strlen(strstr(svg, "</svg>\n")), 7); /* nothing after it */
    ck_assert_ptr_nonnull(strstr(svg, "OrderConfirmed"));
    ck_assert_ptr_nonnull(strstr(svg, "TransferRequested"));
    ck_assert_ptr_nonnull(strstr(svg, "&lt;script&gt;&amp;&quot;x&apos;"));
    ck_assert_ptr_nonnull(strstr(svg, "Evil&lt;b&gt;"));
    ck_assert_ptr_nonnull(strstr(svg, "a &lt; b &amp; c &gt; d"));
    ck_assert_ptr_nonnull(strstr(svg, "o&amp;1"));
    ck_assert_ptr_null(strstr(svg, "<script>"));
    ck_assert_ptr_null(strstr(svg, "Evil<b>"));
    /* one dot per step, an arrow per step with a cause on another lane */
    size_t dots = 0, arrows = 0;
    for (const char *p = svg; (p = strstr(p, "<circle")); p++) {
        dots++;
    }
    for (const char *p = svg; (p = strstr(p, "marker-end")); p++) {
        arrows++;
    }
    ck_assert_int_eq(dots, 11);
    ck_assert_int_eq(arrows, 8); /* 11 steps: 2 without a cause, 1 on its cause's lane */
    es_buf_fini(&out);
    json_decref(s);
}
END_TEST

/* Bad JSON: refused with a reason, never a crash. */
static const char *const bad[] = {
    "[]",
    "{}",
    "{\"saga_id\":\"x\",\"status\":\"PENDING\"}",
    "{\"saga_id\":\"x\",\"status\":\"PENDING\",\"steps\":{}}",
    "{\"saga_id\":1,\"status\":\"PENDING\",\"steps\":[]}",
    "{\"saga_id\":\"x\",\"status\":null,\"steps\":[]}",
    "{\"saga_id\":\"x\",\"status\":\"PENDING\",\"steps\":[{\"type\":\"A\"}]}",
    "{\"saga_id\":\"x\",\"status\":\"PENDING\",\"steps\":[{\"service\":\"a\",\"type\":3}]}",
    "{\"saga_id\":\"x\",\"status\":\"PENDING\",\"steps\":[7]}",
};

START_TEST(test_bad_json)
{
    json_t *j = json_loads(bad[_i], 0, NULL);
    ck_assert_ptr_nonnull(j);
    es_buf_t out;
    es_buf_init(&out);
    char err[256] = "";
    ck_assert_int_eq(esctl_saga_draw_text(j, 100, 0, &out, err, sizeof(err)), -1);
    ck_assert(err[0] != '\0');
    err[0] = '\0';
    ck_assert_int_eq(esctl_saga_draw_svg(j, &out, err, sizeof(err)), -1);
    ck_assert(err[0] != '\0');
    es_buf_fini(&out);
    json_decref(j);
}
END_TEST

START_TEST(test_odd_values)
{
    /* wrong-typed optional fields, a cause naming a service with no step of its own, more
     * services than lanes: drawn anyway */
    json_t *st = json_array();
    for (int i = 0; i < 20; i++) {
        char svc[16];
        snprintf(svc, sizeof(svc), "svc-%d", i);
        json_array_append_new(st,
                              json_pack("{ss ss ss ss ss}", "service", svc, "type", "Thing",
                                        "cause_service", "ghost", "at_ms", "soon", "detail", "x"));
    }
    json_t *s = json_pack("{ss ss so s[]}", "saga_id", "x", "status", "PENDING", "steps", st,
                          "duration_ms");
    es_buf_t out;
    es_buf_init(&out);
    char err[256];
    ck_assert_int_eq(esctl_saga_draw_text(s, 100, 0, &out, err, sizeof(err)), 0);
    ck_assert_int_eq(esctl_saga_draw_svg(s, &out, err, sizeof(err)), 0);
    es_buf_fini(&out);
    json_decref(s);
}
END_TEST

START_TEST(test_elapsed)
{
    char b[32];
    esctl_saga_elapsed(0, b, sizeof(b));
    ck_assert_str_eq(b, "+0 ms");
    esctl_saga_elapsed(999, b, sizeof(b));
    ck_assert_str_eq(b, "+999 ms");
    esctl_saga_elapsed(1250, b, sizeof(b));
    ck_assert_str_eq(b, "+1.25 s");
    esctl_saga_elapsed(42300, b, sizeof(b));
    ck_assert_str_eq(b, "+42.3 s");
    esctl_saga_elapsed(102000, b, sizeof(b));
    ck_assert_str_eq(b, "+1m42s");
    esctl_saga_elapsed(3600000LL * 5 + 60000 * 7, b, sizeof(b));
    ck_assert_str_eq(b, "+5h07m");
    esctl_saga_elapsed(-5, b, sizeof(b));
    ck_assert_str_eq(b, "?");
}
END_TEST

Suite *saga_draw_suite(void);

Suite *saga_draw_suite(void)
{
    Suite *s = suite_create("saga_draw");
    TCase *tc = tcase_create("text");
    tcase_add_test(tc, test_text_order_saga);
    tcase_add_test(tc, test_text_narrow_and_colour);
    tcase_add_test(tc, test_text_timeout_unknown_services_empty);
    suite_add_tcase(s, tc);
    tc = tcase_create("svg");
    tcase_add_test(tc, test_svg);
    suite_add_tcase(s, tc);
    tc = tcase_create("robustness");
    tcase_add_loop_test(tc, test_bad_json, 0, (int)(sizeof(bad) / sizeof(bad[0])));
    tcase_add_test(tc, test_odd_values);
    tcase_add_test(tc, test_elapsed);
    suite_add_tcase(s, tc);
    return s;
}
