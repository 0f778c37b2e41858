/*
 * test_chaos_req.c: the requests `esctl chaos` leaves for the dev broker
 * (devstack/broker/chaos_req.c): each fault with its fields and defaults; a request that is
 * not an object, names no usable id, an unknown fault, a field the fault does not take, a
 * value out of range, an unknown request type or error is refused with a reason, and the id
 * is kept whenever it was usable (the refusal is answered under it).
 */
#include <check.h>
#include <librdkafka/rdkafka.h>
#include <string.h>

#include "../../devstack/broker/chaos_req.h"

static int parse(const char *json, int brokers, chaos_req_t *r, char *why)
{
    return chaos_req_parse(json, strlen(json), brokers, r, why, 256);
}

START_TEST(each_fault_and_its_defaults)
{
    chaos_req_t r;
    char why[256];
    ck_assert_int_eq(parse("{\"id\":\"a1\",\"fault\":\"latency\",\"ms\":200}", 1, &r, why), 0);
    ck_assert_str_eq(r.id, "a1");
    ck_assert_int_eq(r.fault, CHAOS_LATENCY);
    ck_assert_int_eq(r.ms, 200);
    ck_assert_int_eq(r.for_ms, CHAOS_LATENCY_FOR_DEFAULT_MS);
    ck_assert_int_eq(r.broker, 0);
    ck_assert_int_eq(
        parse("{\"id\":\"a2\",\"fault\":\"latency\",\"ms\":60000,\"for_ms\":1,\"broker\":3}", 3, &r,
              why),
        0);
    ck_assert_int_eq(r.ms, 60000);
    ck_assert_int_eq(r.for_ms, 1);
    ck_assert_int_eq(r.broker, 3);
    ck_assert_int_eq(parse("{\"fault\":\"down\",\"id\":\"b\"}", 1, &r, why), 0);
    ck_assert_int_eq(r.fault, CHAOS_DOWN);
    ck_assert_int_eq(r.for_ms, CHAOS_DOWN_FOR_DEFAULT_MS);
    ck_assert_int_eq(parse("{\"id\":\"c\",\"fault\":\"errors\",\"api\":\"produce\"}", 1, &r, why),
                     0);
    ck_assert_int_eq(r.fault, CHAOS_ERRORS);
    ck_assert_int_eq(r.api, 0);
    ck_assert_int_eq(r.count, CHAOS_COUNT_DEFAULT);
    ck_assert_int_eq(r.error, RD_KAFKA_RESP_ERR__TRANSPORT);
    ck_assert_str_eq(chaos_api_name(r.api), "produce");
    ck_assert_str_eq(chaos_error_name(r.error), "_TRANSPORT");
    ck_assert_int_eq(parse("{\"id\":\"c\",\"fault\":\"errors\",\"api\":\"Heartbeat\",\"count\":"
                           "100000,\"error\":\"request_timed_out\"}",
                           1, &r, why),
                     0);
    ck_assert_int_eq(r.api, 12);
    ck_assert_int_eq(r.count, 100000);
    ck_assert_int_eq(r.error, RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT);
    ck_assert_str_eq(chaos_error_name(r.error), "REQUEST_TIMED_OUT");
    ck_assert_int_eq(parse("{\"id\":\"d\",\"fault\":\"heal\"}", 1, &r, why), 0);
    ck_assert_int_eq(r.fault, CHAOS_HEAL);
    ck_assert_int_eq(parse("{\"id\":\"e\",\"fault\":\"status\"}", 1, &r, why), 0);
    ck_assert_int_eq(r.fault, CHAOS_STATUS);
    ck_assert_str_eq(chaos_fault_name(CHAOS_STATUS), "status");
}
END_TEST

static const struct {
    const char *json;
    const char *why; /* a part of the reason */
    int keeps_id;
} refused[] = {
    {"", "not a JSON object", 0},
    {"[1]", "not a JSON object", 0},
    {"{\"id\":\"x\",\"id\":\"y\",\"fault\":\"heal\"}", "not a JSON object", 0},
    {"{\"fault\":\"heal\"}", "the id must be", 0},
    {"{\"id\":\"\",\"fault\":\"heal\"}", "the id must be", 0},
    {"{\"id\":\"../x\",\"fault\":\"heal\"}", "the id must be", 0},
    {"{\"id\":\"0123456789012345678901234567890123\",\"fault\":\"heal\"}", "the id must be", 0},
    {"{\"id\":7,\"fault\":\"heal\"}", "the id must be", 0},
    {"{\"id\":\"i\"}", "the fault must be one of", 1},
    {"{\"id\":\"i\",\"fault\":\"slow\"}", "the fault must be one of", 1},
    {"{\"id\":\"i\",\"fault\":\"heal\",\"ms\":1}", "the heal fault takes no ms", 1},
    {"{\"id\":\"i\",\"fault\":\"down\",\"count\":1}", "the down fault takes no count", 1},
    {"{\"id\":\"i\",\"fault\":\"errors\",\"api\":\"fetch\",\"for_ms\":1}",
     "the errors fault takes no for_ms", 1},
    {"{\"id\":\"i\",\"fault\":\"latency\"}", "needs ms", 1},
    {"{\"id\":\"i\",\"fault\":\"latency\",\"ms\":0}", "ms must be an integer in 1..60000", 1},
    {"{\"id\":\"i\",\"fault\":\"latency\",\"ms\":60001}", "ms must be", 1},
    {"{\"id\":\"i\",\"fault\":\"latency\",\"ms\":\"200\"}", "ms must be", 1},
    {"{\"id\":\"i\",\"fault\":\"latency\",\"ms\":1.5}", "ms must be", 1},
    {"{\"id\":\"i\",\"fault\":\"down\",\"for_ms\":0}", "for_ms must be", 1},
    {"{\"id\":\"i\",\"fault\":\"down\",\"for_ms\":3600001}", "for_ms must be", 1},
    {"{\"id\":\"i\",\"fault\":\"down\",\"broker\":2}", "broker must be an integer in 0..1", 1},
    {"{\"id\":\"i\",\"fault\":\"down\",\"broker\":-1}", "broker must be", 1},
    {"{\"id\":\"i\",\"fault\":\"errors\"}", "the api must be one of", 1},
    {"{\"id\":\"i\",\"fault\":\"errors\",\"api\":\"prodcue\"}", "the api must be one of", 1},
    {"{\"id\":\"i\",\"fault\":\"errors\",\"api\":\"fetch\",\"count\":0}", "count must be", 1},
    {"{\"id\":\"i\",\"fault\":\"errors\",\"api\":\"fetch\",\"count\":100001}", "count must be", 1},
    {"{\"id\":\"i\",\"fault\":\"errors\",\"api\":\"fetch\",\"error\":\"NO_ERROR\"}",
     "the error must name", 1},
    {"{\"id\":\"i\",\"fault\":\"errors\",\"api\":\"fetch\",\"error\":\"_MSG_TIMED_OUT\"}",
     "the error must name", 1},
    {"{\"id\":\"i\",\"fault\":\"errors\",\"api\":\"fetch\",\"error\":3}", "the error must name", 1},
};

START_TEST(refusals)
{
    chaos_req_t r;
    char why[256] = "";
    ck_assert_int_eq(parse(refused[_i].json, 1, &r, why), -1);
    ck_assert_msg(strstr(why, refused[_i].why), "%s: reason \"%s\" lacks \"%s\"", refused[_i].json,
                  why, refused[_i].why);
    ck_assert_str_eq(r.id, refused[_i].keeps_id ? "i" : "");
}
END_TEST

Suite *chaos_req_suite(void);
Suite *chaos_req_suite(void)
{
    Suite *s = suite_create("chaos_req");
    TCase *tc = tcase_create("chaos_req");
    tcase_add_test(tc, each_fault_and_its_defaults);
    tcase_add_loop_test(tc, refusals, 0, sizeof(refused) / sizeof(refused[0]));
    suite_add_tcase(s, tc);
    return s;
}
