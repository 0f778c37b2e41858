/*
 * test_query_timeline.c: the causal order of a saga's steps (projections/query/timeline.c):
 * no step and one step, ties in time broken by topic, partition and offset, effects whose time
 * is before their cause's, causes outside the saga, bad data (a step caused by itself, cycles,
 * duplicate ids) that must still give every step exactly once, and many steps checked against
 * the contract: a permutation, every reported cause before its effect, and at each place the
 * earliest step whose cause is already placed.
 */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../projections/query/timeline.h"

/* A step of a table-driven case. */
typedef struct tstep {
    const char *id, *cause, *topic;
    int32_t partition;
    int64_t offset, ms;
} tstep_t;

#define MAX_STEPS 16

/* The same total order as the timeline's first sort: time, topic, partition, offset, index. */
static int time_before(const es_query_timeline_step_t *s, size_t a, size_t b)
{
    if (s[a].occurred_ms != s[b].occurred_ms) {
        return s[a].occurred_ms < s[b].occurred_ms;
    }
    int c = strcmp(s[a].topic, s[b].topic);
    if (c) {
        return c < 0;
    }
    if (s[a].partition != s[b].partition) {
        return s[a].partition < s[b].partition;
    }
    if (s[a].offset != s[b].offset) {
        return s[a].offset < s[b].offset;
    }
    return a < b;
}

/* The contract, whatever the input: out is a permutation; a reported cause is a step with the
 * effect's causation id placed before it, and took_ms is the (non-negative) time between; at
 * each place the step is the earliest of those whose reported cause is placed or none. */
static void check_contract(const es_query_timeline_step_t *s, size_t n, int64_t started_ms,
                           const es_query_timeline_entry_t *out)
{
    size_t *pos = malloc((n ? n : 1) * sizeof(*pos));
    long *cause = malloc((n ? n : 1) * sizeof(*cause));
    ck_assert_ptr_nonnull(pos);
    ck_assert_ptr_nonnull(cause);
    for (size_t i = 0; i < n; i++) {
        pos[i] = n;
    }
    for (size_t k = 0; k < n; k++) {
        ck_assert_uint_lt(out[k].step, n);
        ck_assert_msg(pos[out[k].step] == n, "step %zu placed twice", out[k].step);
        pos[out[k].step] = k;
        cause[out[k].step] = out[k].cause;
    }
    for (size_t k = 0; k < n; k++) {
        size_t x = out[k].step;
        ck_assert_int_eq(out[k].at_ms, s[x].occurred_ms - started_ms);
        if (out[k].cause < 0) {
            ck_assert_int_eq(out[k].cause, -1);
            ck_assert_int_eq(out[k].took_ms, -1);
            continue;
        }
        size_t c = (size_t)out[k].cause;
        ck_assert_uint_lt(c, n);
        ck_assert_uint_ne(c, x);
        ck_assert_str_eq(s[c].event_id, s[x].causation_id);
        ck_assert_msg(pos[c] < k, "step %s at %zu before its cause %s at %zu", s[x].event_id, k,
                      s[c].event_id, pos[c]);
        int64_t took = s[x].occurred_ms - s[c].occurred_ms;
        ck_assert_int_eq(out[k].took_ms, took < 0 ? 0 : took);
    }
    /* greedy: nothing earlier was available when out[k] was placed (n * n pairs: checked
     * with a plain test, as each passing ck_assert writes to Check's pipe) */
    for (size_t k = 0; k < n; k++) {
        size_t x = out[k].step;
        for (size_t y = 0; y < n; y++) {
            if (pos[y] <= k) {
                continue;
            }
            int available = cause[y] < 0 || pos[(size_t)cause[y]] < k;
            if (available && time_before(s, y, x)) {
                ck_abort_msg("at %zu: %s placed while the earlier %s was available", k,
                             s[x].event_id, s[y].event_id);
            }
        }
    }
    free(pos);
    free(cause);
}

/* Run a table: check the contract, the order of ids and each step's cause ("" for none). */
static void check_case(const tstep_t *t, size_t n, int64_t started_ms, const char *const *order,
                       const char *const *causes)
{
    es_query_timeline_step_t s[MAX_STEPS];
    es_query_timeline_entry_t out[MAX_STEPS];
    ck_assert_uint_le(n, MAX_STEPS);
    for (size_t i = 0; i < n; i++) {
        s[i] = (es_query_timeline_step_t){t[i].id,        t[i].cause,  t[i].topic,
                                          t[i].partition, t[i].offset, t[i].ms};
    }
    memset(out, 0x5a, sizeof(out));
    ck_assert_int_eq(es_query_timeline_order(s, n, started_ms, out), 0);
    check_contract(s, n, started_ms, out);
    for (size_t k = 0; k < n; k++) {
        ck_assert_msg(!strcmp(s[out[k].step].event_id, order[k]), "place %zu: %s, want %s", k,
                      s[out[k].step].event_id, order[k]);
        const char *c = out[k].cause >= 0 ? s[out[k].cause].event_id : "";
        ck_assert_msg(!strcmp(c, causes[k]), "%s: cause \"%s\", want \"%s\"", order[k], c,
                      causes[k]);
    }
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

START_TEST(test_no_steps)
{
    ck_assert_int_eq(es_query_timeline_order(NULL, 0, 123, NULL), 0);
}
END_TEST

START_TEST(test_one_step)
{
    es_query_timeline_step_t s = {"e1", "", "orders.commands", 3, 17, 1005};
    es_query_timeline_entry_t out;
    ck_assert_int_eq(es_query_timeline_order(&s, 1, 1000, &out), 0);
    ck_assert_uint_eq(out.step, 0);
    ck_assert_int_eq(out.cause, -1);
    ck_assert_int_eq(out.at_ms, 5);
    ck_assert_int_eq(out.took_ms, -1);

    s.causation_id = "e1"; /* caused by itself: bad data, no cause */
    ck_assert_int_eq(es_query_timeline_order(&s, 1, 1005, &out), 0);
    ck_assert_int_eq(out.cause, -1);
    ck_assert_int_eq(out.at_ms, 0);
    ck_assert_int_eq(out.took_ms, -1);

    s.causation_id = "elsewhere";
    ck_assert_int_eq(es_query_timeline_order(&s, 1, 1005, &out), 0);
    ck_assert_int_eq(out.cause, -1);

    s.causation_id = NULL; /* treated as "" */
    ck_assert_int_eq(es_query_timeline_order(&s, 1, 1005, &out), 0);
    ck_assert_int_eq(out.cause, -1);
}
END_TEST

/* An order saga as it happens, listed out of order: the steps come back in time order, each
 * with its cause. */
START_TEST(test_order_saga)
{
    static const tstep_t t[] = {
        {"e5", "e4", "orders.events", 1, 9, 140},   {"e1", "", "orders.commands", 3, 17, 100},
        {"e3", "e2", "catalog.events", 0, 4, 115},  {"e2", "e1", "orders.events", 1, 8, 104},
        {"e4", "e3", "payments.events", 2, 2, 130},
    };
    static const char *const order[] = {"e1", "e2", "e3", "e4", "e5"};
    static const char *const causes[] = {"", "e1", "e2", "e3", "e4"};
    check_case(t, N(t), 100, order, causes);

    es_query_timeline_step_t s[5];
    es_query_timeline_entry_t out[5];
    for (size_t i = 0; i < 5; i++) {
        s[i] = (es_query_timeline_step_t){t[i].id,        t[i].cause,  t[i].topic,
                                          t[i].partition, t[i].offset, t[i].ms};
    }
    ck_assert_int_eq(es_query_timeline_order(s, 5, 100, out), 0);
    static const int64_t at[] = {0, 4, 15, 30, 40}, took[] = {-1, 4, 11, 15, 10};
    for (size_t k = 0; k < 5; k++) {
        ck_assert_int_eq(out[k].at_ms, at[k]);
        ck_assert_int_eq(out[k].took_ms, took[k]);
    }
}
END_TEST

/* Ties in time: unrelated steps by topic, then partition, then offset; an effect that sorts
 * before its cause in the tie comes right after it. */
START_TEST(test_ties)
{
    static const tstep_t t[] = {
        {"z", "", "b", 1, 7, 50},   {"y", "", "b", 1, 3, 50}, {"x", "", "b", 0, 9, 50},
        {"w", "", "a", 9, 9, 50},   {"v", "", "a", 9, 9, 49}, {"eff", "cau", "a", 0, 0, 60},
        {"cau", "", "c", 0, 0, 60}, {"u", "", "b", 0, 0, 60},
    };
    static const char *const order[] = {"v", "w", "x", "y", "z", "u", "cau", "eff"};
    static const char *const causes[] = {"", "", "", "", "", "", "", "cau"};
    check_case(t, N(t), 49, order, causes);
}
END_TEST

/* Clocks of two processes disagree: the effect is stamped before its cause. It still comes
 * after it, took_ms 0; at_ms stays what the clocks said. */
START_TEST(test_effect_before_cause)
{
    static const tstep_t t[] = {
        {"cmd", "", "orders.commands", 0, 1, 100},
        {"eff", "cau", "catalog.events", 0, 1, 109},
        {"cau", "cmd", "orders.events", 0, 1, 110},
        {"later", "cmd", "payments.events", 0, 1, 109},
    };
    static const char *const order[] = {"cmd", "later", "cau", "eff"};
    static const char *const causes[] = {"", "cmd", "cmd", "cau"};
    check_case(t, N(t), 100, order, causes);

    /* a whole chain stamped backwards */
    static const tstep_t r[] = {
        {"c3", "c2", "t", 0, 3, 1},
        {"c2", "c1", "t", 0, 2, 2},
        {"c1", "", "t", 0, 1, 3},
    };
    static const char *const rorder[] = {"c1", "c2", "c3"};
    static const char *const rcauses[] = {"", "c1", "c2"};
    check_case(r, N(r), 1, rorder, rcauses);
}
END_TEST

/* A cause that is not a step of the saga (another saga's record, one not seen yet): no cause,
 * time order. */
START_TEST(test_cause_outside)
{
    static const tstep_t t[] = {
        {"b", "elsewhere", "t", 0, 2, 20},
        {"a", "missing", "t", 0, 1, 10},
        {"c", "a", "t", 0, 3, 5},
    };
    static const char *const order[] = {"a", "c", "b"};
    static const char *const causes[] = {"", "a", ""};
    check_case(t, N(t), 5, order, causes);
}
END_TEST

/* Bad data: steps caused by themselves, cycles of two and three with a tail hanging off them
 * and unrelated steps around; every step placed once, the cycle cut at its earliest step. */
START_TEST(test_cycles)
{
    static const tstep_t self[] = {
        {"a", "a", "t", 0, 1, 10},
        {"b", "b", "t", 0, 2, 5},
    };
    static const char *const self_order[] = {"b", "a"};
    static const char *const self_causes[] = {"", ""};
    check_case(self, N(self), 5, self_order, self_causes);

    static const tstep_t two[] = {
        {"b", "a", "t", 0, 2, 2},
        {"a", "b", "t", 0, 1, 1},
    };
    static const char *const two_order[] = {"a", "b"};
    static const char *const two_causes[] = {"", "a"};
    check_case(two, N(two), 1, two_order, two_causes);

    static const tstep_t three[] = {
        {"T", "A", "t", 0, 0, 1}, /* hangs off the cycle, earlier than all of it */
        {"U", "", "t", 0, 0, 3},  {"A", "B", "t", 0, 0, 5}, {"B", "D", "t", 0, 0, 6},
        {"D", "A", "t", 0, 0, 7}, {"V", "", "t", 0, 0, 9},
    };
    static const char *const three_order[] = {"U", "A", "T", "D", "B", "V"}; /* V is last */
    static const char *const three_causes[] = {"", "", "A", "A", "D", ""};
    check_case(three, N(three), 1, three_order, three_causes);

    /* two separate cycles, the later one cut only when the earlier is done */
    static const tstep_t twice[] = {
        {"p", "q", "t", 0, 0, 10},
        {"q", "p", "t", 0, 0, 11},
        {"r", "s", "t", 0, 0, 1},
        {"s", "r", "t", 0, 0, 2},
    };
    static const char *const twice_order[] = {"r", "s", "p", "q"};
    static const char *const twice_causes[] = {"", "r", "", "p"};
    check_case(twice, N(twice), 1, twice_order, twice_causes);
}
END_TEST

/* Bad data: two steps with one id. The effect's cause is the earlier of them. */
START_TEST(test_duplicate_ids)
{
    static const tstep_t t[] = {
        {"d", "", "t", 0, 5, 30},
        {"e", "d", "t", 0, 6, 20},
        {"d", "", "t", 0, 4, 10},
    };
    static const char *const order[] = {"d", "e", "d"};
    static const char *const causes[] = {"", "d", ""};
    check_case(t, N(t), 10, order, causes);
}
END_TEST

/* ---- many steps ---- */

static uint64_t lcg_next(uint64_t *x)
{
    *x = *x * 6364136223846793005ULL + 1442695040888963407ULL;
    return *x >> 33;
}

/* Random steps with lots of ties, causes anywhere (later in time, outside, themselves,
 * cycles): the contract holds. */
START_TEST(test_many_random)
{
    enum { COUNT = 1500 };
    static const char *const topics[] = {"orders.events", "catalog.events", "payments.events"};
    es_query_timeline_step_t *s = calloc(COUNT, sizeof(*s));
    es_query_timeline_entry_t *out = calloc(COUNT, sizeof(*out));
    char(*ids)[16] = calloc(COUNT, sizeof(*ids));
    ck_assert_ptr_nonnull(s);
    ck_assert_ptr_nonnull(out);
    ck_assert_ptr_nonnull(ids);
    uint64_t x = 0x9e3779b97f4a7c15ULL * (uint64_t)(_i + 1);
    for (size_t i = 0; i < COUNT; i++) {
        snprintf(ids[i], sizeof(ids[i]), "e%zu", i);
    }
    for (size_t i = 0; i < COUNT; i++) {
        s[i].event_id = ids[i];
        s[i].topic = topics[lcg_next(&x) % 3];
        s[i].partition = (int32_t)(lcg_next(&x) % 4);
        s[i].offset = (int64_t)(lcg_next(&x) % 100);
        s[i].occurred_ms = 1000 + (int64_t)(lcg_next(&x) % 40);
        switch (lcg_next(&x) % 8) {
        case 0:
            s[i].causation_id = "";
            break;
        case 1:
            s[i].causation_id = "outside";
            break;
        case 2:
            s[i].causation_id = ids[i];
            break;
        default:
            s[i].causation_id = ids[lcg_next(&x) % COUNT];
            break;
        }
    }
    ck_assert_int_eq(es_query_timeline_order(s, COUNT, 1000, out), 0);
    check_contract(s, COUNT, 1000, out);
    free(s);
    free(out);
    free(ids);
}
END_TEST

/* A long chain stamped backwards and one long cycle: no recursion, no quadratic walk. */
START_TEST(test_many_chain)
{
    enum { COUNT = 20000 };
    es_query_timeline_step_t *s = calloc(COUNT, sizeof(*s));
    es_query_timeline_entry_t *out = calloc(COUNT, sizeof(*out));
    char(*ids)[16] = calloc(COUNT, sizeof(*ids));
    ck_assert_ptr_nonnull(s);
    ck_assert_ptr_nonnull(out);
    ck_assert_ptr_nonnull(ids);
    for (size_t i = 0; i < COUNT; i++) {
        snprintf(ids[i], sizeof(ids[i]), "c%zu", i);
    }
    for (int cyclic = 0; cyclic < 2; cyclic++) {
        for (size_t i = 0; i < COUNT; i++) {
            s[i] = (es_query_timeline_step_t){ids[i], i ? ids[i - 1] : "", "t",
                                              0,      (int64_t)i,          (int64_t)(COUNT - i)};
        }
        if (cyclic) {
            s[0].causation_id = ids[COUNT - 1];
        }
        ck_assert_int_eq(es_query_timeline_order(s, COUNT, 0, out), 0);
        /* the chain's root comes first; with the cycle, its earliest step (the last) does */
        size_t root = cyclic ? COUNT - 1 : 0;
        /* one check per position would be 40,000 assertions, each a write to Check's pipe */
        size_t bad = COUNT;
        for (size_t k = 0; k < COUNT && bad == COUNT; k++) {
            if (out[k].step != (root + k) % COUNT ||
                out[k].cause != (k ? (long)((root + k - 1) % COUNT) : -1)) {
                bad = k;
            }
        }
        ck_assert_msg(bad == COUNT, "position %zu: step %zu caused by %ld", bad,
                      bad < COUNT ? out[bad].step : 0, bad < COUNT ? (long)out[bad].cause : 0L);
    }
    free(s);
    free(out);
    free(ids);
}
END_TEST

Suite *query_timeline_suite(void);

Suite *query_timeline_suite(void)
{
    Suite *s = suite_create("query_timeline");
    TCase *tc = tcase_create("order");
    tcase_add_test(tc, test_no_steps);
    tcase_add_test(tc, test_one_step);
    tcase_add_test(tc, test_order_saga);
    tcase_add_test(tc, test_ties);
    tcase_add_test(tc, test_effect_before_cause);
    tcase_add_test(tc, test_cause_outside);
    tcase_add_test(tc, test_cycles);
    tcase_add_test(tc, test_duplicate_ids);
    suite_add_tcase(s, tc);

    tc = tcase_create("many");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_many_random, 0, 8);
    tcase_add_test(tc, test_many_chain);
    suite_add_tcase(s, tc);
    return s;
}
