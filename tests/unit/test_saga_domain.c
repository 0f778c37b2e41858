/*
 * test_saga_domain.c: the saga coordinator's pure rules (saga-coordinator/domain.c): how
 * records reveal a saga's type, each saga type's way to its terminal status, records arriving
 * out of order across topics, a payment's transfers nested in an order saga, the deadline, the
 * counters a step moves, and the deadline list parser.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "../../saga-coordinator/domain.h"

#define SAGA "0123456789abcdef0123456789abcdef"
#define T0 1000000

static const int64_t deadlines[SAGA_T__COUNT] = {0, 30000, 10000};

/* A step of saga SAGA: type, its own id, its cause ("" for a client's command; "saga" for the
 * saga's first command), time offset from T0. */
static saga_step_t step(const char *type, const char *id, const char *cause, int64_t at)
{
    saga_step_t st;
    memset(&st, 0, sizeof(st));
    snprintf(st.type, sizeof(st.type), "%s", type);
    snprintf(st.event_id, sizeof(st.event_id), "%s", !strcmp(id, "saga") ? SAGA : id);
    snprintf(st.correlation_id, sizeof(st.correlation_id), SAGA);
    snprintf(st.causation_id, sizeof(st.causation_id), "%s", !strcmp(cause, "saga") ? SAGA : cause);
    snprintf(st.traceparent, sizeof(st.traceparent), "00-%s-0000000000000001-01", SAGA);
    st.occurred_ms = T0 + at;
    return st;
}

static saga_step_t order_step(const char *type, const char *id, const char *cause, int64_t at)
{
    saga_step_t st = step(type, id, cause, at);
    snprintf(st.order_id, sizeof(st.order_id), "o-1");
    return st;
}

static saga_step_t transfer_step(const char *type, const char *id, const char *cause, int64_t at,
                                 const char *transfer)
{
    saga_step_t st = step(type, id, cause, at);
    snprintf(st.transfer_id, sizeof(st.transfer_id), "%s", transfer);
    return st;
}

static saga_change_t apply(saga_t *s, saga_step_t st)
{
    saga_change_t chg;
    saga_evolve(s, &st, deadlines, &chg);
    return chg;
}

START_TEST(test_order_saga_completes)
{
    saga_t s;
    memset(&s, 0, sizeof(s));
    saga_change_t c = apply(&s, order_step("PlaceOrder", "saga", "", 0));
    ck_assert_int_eq(s.exists, 1);
    ck_assert_str_eq(s.id, SAGA);
    ck_assert_int_eq(s.type, SAGA_T_ORDER);
    ck_assert_str_eq(s.subject, "o-1");
    ck_assert_int_eq(s.status, SAGA_PENDING);
    ck_assert_int_eq(s.deadline_ms, T0 + 30000);
    ck_assert_int_eq(c.started, 1);
    ck_assert_int_eq(c.counted_type, SAGA_T_ORDER);
    c = apply(&s, order_step("OrderPlaced", "e1", "saga", 5));
    ck_assert_int_eq(c.started, 0);
    apply(&s, order_step("StockReserved", "e2", "e1", 9));
    apply(&s, order_step("PaymentRequested", "e3", "e2", 12));
    /* the payment's transfer: caused by a payments record, so a step, not a saga */
    c = apply(&s, transfer_step("TransferRequested", "e4", "e3b", 15, "pay-o-1"));
    ck_assert_int_eq(s.type, SAGA_T_ORDER);
    ck_assert_int_eq(c.started, 0);
    c = apply(&s, transfer_step("TransferCompleted", "e5", "e4", 20, "pay-o-1"));
    ck_assert_int_eq(s.status, SAGA_PENDING);
    ck_assert_int_eq(c.completed, 0);
    apply(&s, order_step("PaymentCaptured", "e6", "e5", 24));
    c = apply(&s, order_step("OrderConfirmed", "e7", "e6", 30));
    ck_assert_int_eq(s.status, SAGA_COMPLETED);
    ck_assert_int_eq(c.completed, 1);
    ck_assert_int_eq(c.duration_ms, 30);
    ck_assert_int_eq(s.ended_ms, T0 + 30);
    ck_assert_str_eq(s.last_step, "OrderConfirmed");
    ck_assert_str_eq(s.last_event_id, "e7");
    /* the catalog's commit after the confirmation: a step, nothing more */
    c = apply(&s, order_step("StockCommitted", "e8", "e6", 30));
    ck_assert_int_eq(s.status, SAGA_COMPLETED);
    ck_assert_int_eq(c.completed + c.failed + c.cancelled, 0);
    ck_assert_int_eq(c.duration_ms, -1);
    ck_assert_int_eq(s.step_count, 9);
}
END_TEST

START_TEST(test_order_saga_fails)
{
    saga_t s;
    memset(&s, 0, sizeof(s));
    apply(&s, order_step("OrderPlaced", "e1", "saga", 5));
    saga_step_t st = order_step("OrderRejected", "e2", "e1", 9);
    snprintf(st.reason, sizeof(st.reason), "OUT_OF_STOCK");
    saga_change_t c = apply(&s, st);
    ck_assert_int_eq(s.status, SAGA_FAILED);
    ck_assert_str_eq(s.reason, "OUT_OF_STOCK");
    ck_assert_int_eq(c.failed, 1);
    ck_assert_int_eq(c.duration_ms, 4);
    /* a late confirmation never moves it */
    c = apply(&s, order_step("OrderConfirmed", "e3", "e1", 20));
    ck_assert_int_eq(s.status, SAGA_FAILED);
    ck_assert_int_eq(c.completed, 0);

    /* PlaceOrder refused: the saga fails at once */
    memset(&s, 0, sizeof(s));
    apply(&s, order_step("PlaceOrder", "saga", "", 0));
    st = order_step("OrderCommandRejected", "e1", "saga", 3);
    snprintf(st.command_type, sizeof(st.command_type), "PlaceOrder");
    snprintf(st.reason, sizeof(st.reason), "UNKNOWN_USER");
    c = apply(&s, st);
    ck_assert_int_eq(s.status, SAGA_FAILED);
    ck_assert_str_eq(s.reason, "UNKNOWN_USER");
    ck_assert_int_eq(c.failed, 1);
}
END_TEST

START_TEST(test_order_cancelled)
{
    saga_t s;
    memset(&s, 0, sizeof(s));
    apply(&s, order_step("OrderPlaced", "e1", "saga", 0));
    apply(&s, order_step("OrderConfirmed", "e2", "x", 10));
    saga_change_t c = apply(&s, order_step("OrderCancelled", "e3", "cancel-cmd", 500));
    ck_assert_int_eq(s.status, SAGA_CANCELLED);
    ck_assert_int_eq(c.cancelled, 1);
    ck_assert_int_eq(c.duration_ms, -1); /* its duration was counted when it completed */
    c = apply(&s, order_step("PaymentRefunded", "e4", "x", 520));
    ck_assert_int_eq(s.status, SAGA_CANCELLED);
    ck_assert_int_eq(c.cancelled, 0);

    /* cancelled while pending: ends there, with its duration */
    memset(&s, 0, sizeof(s));
    apply(&s, order_step("OrderPlaced", "e1", "saga", 0));
    c = apply(&s, order_step("OrderCancelled", "e3", "cancel-cmd", 40));
    ck_assert_int_eq(s.status, SAGA_CANCELLED);
    ck_assert_int_eq(c.cancelled, 1);
    ck_assert_int_eq(c.duration_ms, 40);
}
END_TEST

START_TEST(test_cancel_command_rejected_is_not_the_order)
{
    saga_t s;
    memset(&s, 0, sizeof(s));
    saga_step_t st = order_step("OrderCommandRejected", "e1", "saga", 3);
    snprintf(st.command_type, sizeof(st.command_type), "CancelOrder");
    ck_assert_int_eq(saga_step_counts(&st), 0); /* a refused cancel: no saga's step */
    saga_change_t c = apply(&s, st);
    ck_assert_int_eq(s.type, SAGA_T_UNKNOWN);
    ck_assert_int_eq(s.status, SAGA_PENDING);
    ck_assert_int_eq(s.deadline_ms, 0);
    ck_assert_int_eq(c.started, 0);
    snprintf(st.command_type, sizeof(st.command_type), "PlaceOrder");
    ck_assert_int_eq(saga_step_counts(&st), 1);
    st = order_step("OrderCancelled", "e1", "x", 0);
    ck_assert_int_eq(saga_step_counts(&st), 1);
}
END_TEST

START_TEST(test_transfer_saga)
{
    saga_t s;
    memset(&s, 0, sizeof(s));
    saga_change_t c = apply(&s, transfer_step("RequestTransfer", "saga", "", 0, "t-1"));
    ck_assert_int_eq(s.type, SAGA_T_TRANSFER);
    ck_assert_str_eq(s.subject, "t-1");
    ck_assert_int_eq(s.deadline_ms, T0 + 10000);
    ck_assert_int_eq(c.started, 1);
    apply(&s, transfer_step("TransferRequested", "e1", "saga", 4, "t-1"));
    apply(&s, transfer_step("FundsDebited", "e2", "e1", 8, "t-1"));
    apply(&s, transfer_step("FundsCredited", "e3", "e2", 11, "t-1"));
    c = apply(&s, transfer_step("TransferCompleted", "e4", "e3", 15, "t-1"));
    ck_assert_int_eq(s.status, SAGA_COMPLETED);
    ck_assert_int_eq(c.completed, 1);
    ck_assert_int_eq(c.duration_ms, 15);

    /* failed, with the ledger's reason */
    memset(&s, 0, sizeof(s));
    apply(&s, transfer_step("TransferRequested", "e1", "saga", 4, "t-2"));
    ck_assert_int_eq(s.type, SAGA_T_TRANSFER);
    saga_step_t st = transfer_step("TransferFailed", "e2", "e1", 9, "t-2");
    snprintf(st.reason, sizeof(st.reason), "INSUFFICIENT_FUNDS");
    c = apply(&s, st);
    ck_assert_int_eq(s.status, SAGA_FAILED);
    ck_assert_str_eq(s.reason, "INSUFFICIENT_FUNDS");
    ck_assert_int_eq(c.failed, 1);

    /* refused at once */
    memset(&s, 0, sizeof(s));
    st = transfer_step("TransferCommandRejected", "e1", "saga", 2, "t-3");
    snprintf(st.reason, sizeof(st.reason), "TRANSFER_EXISTS");
    c = apply(&s, st);
    ck_assert_int_eq(s.type, SAGA_T_TRANSFER);
    ck_assert_int_eq(s.status, SAGA_FAILED);
    ck_assert_int_eq(c.started, 1);
    ck_assert_int_eq(c.failed, 1);
}
END_TEST

START_TEST(test_out_of_order)
{
    saga_t s;
    memset(&s, 0, sizeof(s));
    /* a step of another service first: type unknown, no deadline yet */
    saga_change_t c = apply(&s, order_step("StockReserved", "e2", "e1", 9));
    ck_assert_int_eq(s.type, SAGA_T_UNKNOWN);
    ck_assert_int_eq(s.deadline_ms, 0);
    ck_assert_int_eq(c.started, 0);
    ck_assert_int_eq(c.counted_type, SAGA_T_UNKNOWN);
    /* then the command, earlier in time: the start moves back, the type is known */
    c = apply(&s, order_step("PlaceOrder", "saga", "", 0));
    ck_assert_int_eq(s.type, SAGA_T_ORDER);
    ck_assert_int_eq(s.started_ms, T0);
    ck_assert_int_eq(s.deadline_ms, T0 + 30000);
    ck_assert_int_eq(c.started, 1);
    /* the latest step stays the latest in time */
    ck_assert_str_eq(s.last_step, "StockReserved");
    ck_assert_int_eq(s.updated_ms, T0 + 9);
    ck_assert_int_eq(s.step_count, 2);
}
END_TEST

START_TEST(test_refused_at_once_read_first)
{
    /* a transfer to self: TransferFailed, caused by the command, read before the command (they
     * are on two topics): the saga ends FAILED at once, and the command, read next, neither
     * reopens it nor starts it again */
    saga_t s;
    memset(&s, 0, sizeof(s));
    saga_step_t failed = transfer_step("TransferFailed", "e1", "saga", 2, "t-self");
    snprintf(failed.reason, sizeof(failed.reason), "SAME_ACCOUNT");
    saga_change_t c = apply(&s, failed);
    ck_assert_int_eq(s.type, SAGA_T_TRANSFER);
    ck_assert_str_eq(s.subject, "t-self");
    ck_assert_int_eq(s.status, SAGA_FAILED);
    ck_assert_str_eq(s.reason, "SAME_ACCOUNT");
    ck_assert_int_eq(c.started, 1);
    ck_assert_int_eq(c.failed, 1);
    c = apply(&s, transfer_step("RequestTransfer", "saga", "", 0, "t-self"));
    ck_assert_int_eq(s.status, SAGA_FAILED);
    ck_assert_str_eq(s.reason, "SAME_ACCOUNT");
    ck_assert_int_eq(s.started_ms, T0);
    ck_assert_int_eq(c.started, 0);
    ck_assert_int_eq(c.failed, 0);
    ck_assert_int_eq(s.step_count, 2);
}
END_TEST

START_TEST(test_reveals)
{
    /* a payment's RequestTransfer is not a client's: no saga of its own */
    saga_step_t st = transfer_step("RequestTransfer", "e9", "e3", 0, "pay-o-1");
    ck_assert_int_eq(saga_step_reveals(&st), SAGA_T_UNKNOWN);
    st = transfer_step("RequestTransfer", "saga", "", 0, "t-1");
    ck_assert_int_eq(saga_step_reveals(&st), SAGA_T_TRANSFER);
    st = transfer_step("TransferCompleted", "e4", "e3", 0, "t-1");
    ck_assert_int_eq(saga_step_reveals(&st), SAGA_T_UNKNOWN);
    st = transfer_step("TransferFailed", "e4", "saga", 0, "t-1"); /* refused at once */
    ck_assert_int_eq(saga_step_reveals(&st), SAGA_T_TRANSFER);
    st = transfer_step("TransferFailed", "e4", "e9", 0, "pay-o-1"); /* a payment's */
    ck_assert_int_eq(saga_step_reveals(&st), SAGA_T_UNKNOWN);
    st = order_step("PlaceOrder", "e9", "", 0); /* not the saga's own command */
    ck_assert_int_eq(saga_step_reveals(&st), SAGA_T_UNKNOWN);
    st = order_step("OrderCancelled", "e9", "x", 0);
    ck_assert_int_eq(saga_step_reveals(&st), SAGA_T_ORDER);
    st = step("OrderPlaced", "e1", "saga", 0); /* no order id: nothing to follow */
    ck_assert_int_eq(saga_step_reveals(&st), SAGA_T_UNKNOWN);
    st = step("SagaTimedOut", "e1", "x", 0);
    ck_assert_int_eq(saga_step_reveals(&st), SAGA_T_UNKNOWN);
}
END_TEST

START_TEST(test_time_out)
{
    saga_t s;
    memset(&s, 0, sizeof(s));
    ck_assert_int_eq(saga_time_out(&s, T0 + 99999), 0); /* no saga */
    apply(&s, order_step("StockReserved", "e2", "e1", 0));
    ck_assert_int_eq(saga_time_out(&s, T0 + 99999), 0); /* type unknown: no deadline */
    apply(&s, order_step("OrderPlaced", "e1", "saga", 0));
    ck_assert_int_eq(saga_time_out(&s, T0 + 29999), 0);
    ck_assert_int_eq(saga_time_out(&s, T0 + 30000), 1);
    ck_assert_int_eq(s.status, SAGA_TIMED_OUT);
    ck_assert_int_eq(s.timed_out_ms, T0 + 30000);
    ck_assert_int_eq(saga_time_out(&s, T0 + 40000), 0); /* fires once */
    /* the orders service undoes it */
    saga_step_t st = order_step("OrderRejected", "e3", "timeout", 30010);
    snprintf(st.reason, sizeof(st.reason), "TIMEOUT");
    saga_change_t c = apply(&s, st);
    ck_assert_int_eq(s.status, SAGA_FAILED);
    ck_assert_str_eq(s.reason, "TIMEOUT");
    ck_assert_int_eq(c.failed, 1);
    ck_assert_int_eq(c.duration_ms, 30010);

    /* or it had gone through: completed after the timeout */
    memset(&s, 0, sizeof(s));
    apply(&s, transfer_step("RequestTransfer", "saga", "", 0, "t-1"));
    ck_assert_int_eq(saga_time_out(&s, T0 + 10000), 1);
    c = apply(&s, transfer_step("TransferCompleted", "e4", "e3", 12000, "t-1"));
    ck_assert_int_eq(s.status, SAGA_COMPLETED);
    ck_assert_int_eq(c.completed, 1);

    /* a terminal saga never times out */
    memset(&s, 0, sizeof(s));
    apply(&s, transfer_step("RequestTransfer", "saga", "", 0, "t-1"));
    apply(&s, transfer_step("TransferCompleted", "e4", "e3", 5, "t-1"));
    ck_assert_int_eq(saga_time_out(&s, T0 + 99999), 0);
}
END_TEST

/* The coordinator's own SagaTimedOut read back from the log: live, after the tick, it counts
 * nothing more and keeps the event's time; rebuilding from the log (no tick), it marks the saga
 * timed out and counts it once, so the rebuilt saga equals the live one. */
START_TEST(test_timed_out_read_back)
{
    saga_t live, rebuilt;
    memset(&live, 0, sizeof(live));
    memset(&rebuilt, 0, sizeof(rebuilt));
    apply(&live, order_step("OrderPlaced", "e1", "saga", 0));
    apply(&rebuilt, order_step("OrderPlaced", "e1", "saga", 0));
    ck_assert_int_eq(saga_time_out(&live, T0 + 30003), 1); /* the tick, live */
    saga_change_t c = apply(&live, order_step("SagaTimedOut", "e2", "e1", 30001));
    ck_assert_int_eq(c.timed_out, 0); /* counted by the tick already */
    ck_assert_int_eq(live.status, SAGA_TIMED_OUT);
    ck_assert_int_eq(live.timed_out_ms, T0 + 30001); /* the event's time */
    c = apply(&rebuilt, order_step("SagaTimedOut", "e2", "e1", 30001));
    ck_assert_int_eq(c.timed_out, 1);
    ck_assert_int_eq(rebuilt.status, SAGA_TIMED_OUT);
    ck_assert_int_eq(rebuilt.timed_out_ms, T0 + 30001);
    ck_assert_int_eq(saga_time_out(&rebuilt, T0 + 99999), 0); /* never fires again */
    /* then both end alike */
    saga_step_t st = order_step("OrderRejected", "e3", "e2", 30010);
    snprintf(st.reason, sizeof(st.reason), "TIMEOUT");
    apply(&live, st);
    c = apply(&rebuilt, st);
    ck_assert_int_eq(c.timed_out, 0);
    ck_assert_int_eq(live.status, SAGA_FAILED);
    ck_assert_int_eq(rebuilt.status, SAGA_FAILED);
    ck_assert_int_eq(live.timed_out_ms, rebuilt.timed_out_ms);
    ck_assert_int_eq(live.ended_ms, rebuilt.ended_ms);
    /* a late copy of the event changes nothing more */
    c = apply(&rebuilt, order_step("SagaTimedOut", "e2", "e1", 30001));
    ck_assert_int_eq(c.timed_out, 0);
    ck_assert_int_eq(rebuilt.status, SAGA_FAILED);

    /* rebuilt from topics read in another order: the timeout before the record that says what
     * the saga is; it counts once, when the type is known, under that type */
    saga_t early;
    memset(&early, 0, sizeof(early));
    c = apply(&early, step("SagaTimedOut", "e2", "e1", 30001));
    ck_assert_int_eq(c.timed_out, 0);
    ck_assert_int_eq(early.status, SAGA_TIMED_OUT);
    c = apply(&early, order_step("OrderPlaced", "e1", "saga", 0));
    ck_assert_int_eq(c.timed_out, 1);
    ck_assert_int_eq(c.counted_type, SAGA_T_ORDER);
    ck_assert_int_eq(c.started, 1);
    c = apply(&early, st);
    ck_assert_int_eq(c.timed_out, 0);
    ck_assert_int_eq(early.status, SAGA_FAILED);
    ck_assert_int_eq(early.timed_out_ms, live.timed_out_ms);
}
END_TEST

START_TEST(test_deadlines_parse)
{
    int64_t d[SAGA_T__COUNT] = {0, 30000, 30000};
    char err[256];
    ck_assert_int_eq(saga_deadlines_parse("order=5s,transfer=250ms", d, err, sizeof(err)), 0);
    ck_assert_int_eq(d[SAGA_T_ORDER], 5000);
    ck_assert_int_eq(d[SAGA_T_TRANSFER], 250);
    ck_assert_int_eq(saga_deadlines_parse("transfer=2m", d, err, sizeof(err)), 0);
    ck_assert_int_eq(d[SAGA_T_TRANSFER], 120000);
    ck_assert_int_eq(d[SAGA_T_ORDER], 5000); /* not named: unchanged */
    ck_assert_int_eq(saga_deadlines_parse("order=45", d, err, sizeof(err)), 0);
    ck_assert_int_eq(d[SAGA_T_ORDER], 45000);
    ck_assert_int_eq(saga_deadlines_parse("order=1h", d, err, sizeof(err)), 0);
    ck_assert_int_eq(d[SAGA_T_ORDER], 3600000);
    ck_assert_int_eq(saga_deadlines_parse("", d, err, sizeof(err)), 0);
    static const char *const bad[] = {
        "order",         "order=",     "=5s",       "refund=5s", "order=-5s", "order=0",
        "order=25h",     "order=2d",   "order=5 s", "order=s",   "order=5w",  "order=99999999999",
        "order=5s,,x=1", "order=1e3ms"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        ck_assert_msg(saga_deadlines_parse(bad[i], d, err, sizeof(err)) == -1, "%s accepted",
                      bad[i]);
        ck_assert_msg(err[0] != '\0', "%s: no error message", bad[i]);
    }
}
END_TEST

START_TEST(test_retention_parse)
{
    static const struct {
        const char *spec;
        int64_t ms;
    } good[] = {{"30d", 30LL * 86400000},
                {"12h", 12LL * 3600000},
                {"90m", 90LL * 60000},
                {"45s", 45000},
                {"45", 45000},
                {"500ms", 500},
                {"forever", 0},
                {"3660d", 3660LL * 86400000}};
    char err[256];
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        int64_t ms = -1;
        ck_assert_msg(saga_retention_parse(good[i].spec, &ms, err, sizeof(err)) == 0, "%s: %s",
                      good[i].spec, err);
        ck_assert_int_eq(ms, good[i].ms);
    }
    static const char *const bad[] = {"",  "0",   "-1d", "3661d", "1y",
                                      "d", "5 d", "1e3", "never", "99999999999999999999d"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t ms = 7;
        err[0] = '\0';
        ck_assert_msg(saga_retention_parse(bad[i], &ms, err, sizeof(err)) == -1, "%s accepted",
                      bad[i]);
        ck_assert_msg(strstr(err, "retention") != NULL, "%s: no error message", bad[i]);
        ck_assert_int_eq(ms, 7);
    }
}
END_TEST

START_TEST(test_names)
{
    for (int t = 0; t < SAGA_T__COUNT; t++) {
        ck_assert_int_eq(saga_type_parse(saga_type_name((saga_type_t)t)), t);
    }
    for (int s = 0; s < SAGA_S__COUNT; s++) {
        ck_assert_int_eq(saga_status_parse(saga_status_name((saga_status_t)s)), s);
    }
    ck_assert_int_eq(saga_type_parse("refund"), -1);
    ck_assert_int_eq(saga_status_parse("DONE"), -1);
    ck_assert_int_eq(saga_follows("PlaceOrder"), 1);
    ck_assert_int_eq(saga_follows("FundsDebited"), 1);
    ck_assert_int_eq(saga_follows("SagaTimedOut"), 1);
    ck_assert_int_eq(saga_follows("OpenAccount"), 0);
    ck_assert_int_eq(saga_follows("PriceChanged"), 0);
    ck_assert_int_eq(saga_follows(""), 0);
}
END_TEST

Suite *saga_domain_suite(void);

Suite *saga_domain_suite(void)
{
    Suite *s = suite_create("saga_domain");
    TCase *tc = tcase_create("sagas");
    tcase_add_test(tc, test_order_saga_completes);
    tcase_add_test(tc, test_order_saga_fails);
    tcase_add_test(tc, test_order_cancelled);
    tcase_add_test(tc, test_cancel_command_rejected_is_not_the_order);
    tcase_add_test(tc, test_transfer_saga);
    tcase_add_test(tc, test_out_of_order);
    tcase_add_test(tc, test_refused_at_once_read_first);
    tcase_add_test(tc, test_reveals);
    tcase_add_test(tc, test_time_out);
    tcase_add_test(tc, test_timed_out_read_back);
    suite_add_tcase(s, tc);
    tc = tcase_create("config");
    tcase_add_test(tc, test_deadlines_parse);
    tcase_add_test(tc, test_retention_parse);
    tcase_add_test(tc, test_names);
    suite_add_tcase(s, tc);
    return s;
}
