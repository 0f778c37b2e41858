/*
 * test_payments_domain.c: the payments context's pure rules (consumers/payments/domain.c):
 * both arrival orders of OrderPlaced and StockReserved start exactly one charge (its two
 * records' figures); the capture; declines (TransferFailed with and without the MERCHANT_
 * prefix, TransferCommandRejected, the customer paying itself); cancels before anything,
 * while awaiting, while charging (then captured and refunded at once, or declined and nothing
 * owed) and after the capture; the refund's outcomes; StockReservationRejected closing; the
 * whole state x input table of docs/SHOP.md (every other cell, late and duplicated inputs,
 * changes nothing); OrderRejected TIMEOUT deciding what OrderCancelled decides in every state,
 * any other rejection nothing; foreign transfer ids; the inputs dead-lettered as broken;
 * RetryRefund (a failed refund asked for again under refund.<n>-, its outcome, late outcomes
 * of earlier attempts, its refusals in every other state); versions; names.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "../../consumers/payments/domain.h"

#define MERCHANT "shop-merchant"
#define ACCOUNT "acct-A"
#define AMOUNT 500

/* ---- helpers ---- */

/* An orders or catalog event about order o-1. */
static payments_input_t order_input(payments_input_kind_t kind)
{
    payments_input_t in;
    memset(&in, 0, sizeof(in));
    in.kind = kind;
    snprintf(in.order_id, sizeof(in.order_id), "o-1");
    if (kind == PAY_IN_ORDER_PLACED) {
        snprintf(in.account_id, sizeof(in.account_id), ACCOUNT);
        in.amount = AMOUNT;
    }
    return in;
}

/* A transfer outcome for `transfer_id`, read as the wiring reads it; its figures are those
 * of the payment's transfer of that kind (charge: customer -> merchant, refund: back). */
static payments_input_t transfer_input(payments_input_kind_t kind, const char *transfer_id,
                                       const char *reason, int compensated)
{
    payments_input_t in;
    memset(&in, 0, sizeof(in));
    in.kind = kind;
    snprintf(in.transfer_id, sizeof(in.transfer_id), "%s", transfer_id);
    in.leg = payments_transfer_leg(transfer_id, in.order_id, sizeof(in.order_id), &in.attempt);
    int refund = in.leg == PAY_LEG_REFUND;
    if (kind != PAY_IN_TRANSFER_REJECTED) {
        snprintf(in.from_account, sizeof(in.from_account), "%s", refund ? MERCHANT : ACCOUNT);
        snprintf(in.to_account, sizeof(in.to_account), "%s", refund ? ACCOUNT : MERCHANT);
        in.amount = AMOUNT;
    }
    snprintf(in.reason, sizeof(in.reason), "%s", reason);
    in.compensated = compensated;
    return in;
}

/* Check, decide and evolve, as the service does; returns the number of events. */
static int apply(payment_t *st, const payments_input_t *in, payments_event_t evs[PAY_EV_MAX])
{
    const char *invalid = payments_input_invalid(st, in);
    ck_assert_msg(invalid == NULL, "input %d refused: %s", (int)in->kind, invalid);
    int n = payments_decide(st, in, MERCHANT, evs);
    ck_assert_int_ge(n, 0);
    ck_assert_int_le(n, PAY_EV_MAX);
    for (int i = 0; i < n; i++) {
        payments_evolve(st, &evs[i]);
    }
    return n;
}

/* Apply and expect exactly one event of `kind`; returns it. */
static payments_event_t apply_one(payment_t *st, const payments_input_t *in,
                                  payments_event_kind_t kind)
{
    payments_event_t evs[PAY_EV_MAX];
    ck_assert_int_eq(apply(st, in, evs), 1);
    ck_assert_int_eq(evs[0].kind, kind);
    return evs[0];
}

static void assert_same(const payment_t *a, const payment_t *b)
{
    ck_assert_int_eq(a->state, b->state);
    ck_assert_int_eq(a->version, b->version);
    ck_assert_int_eq(a->amount, b->amount);
    ck_assert_int_eq(a->refund_owed, b->refund_owed);
    ck_assert_int_eq(a->refund_attempts, b->refund_attempts);
    ck_assert_str_eq(a->order_id, b->order_id);
    ck_assert_str_eq(a->account_id, b->account_id);
    ck_assert_str_eq(a->merchant_account, b->merchant_account);
    ck_assert_str_eq(a->reason, b->reason);
}

/* Every state a payment can be in, built through the rules (CHARGING_OWED: charging with a
 * refund owed). */
typedef enum {
    S_NONE,
    S_AWAITING_STOCK,
    S_AWAITING_ORDER,
    S_CHARGING,
    S_CHARGING_OWED,
    S_CAPTURED,
    S_DECLINED,
    S_REFUNDING,
    S_REFUNDED,
    S_REFUND_FAILED,
    S_CANCELLED,
    S_CLOSED,
    S__COUNT
} setup_t;

static const payment_state_t setup_state[S__COUNT] = {
    PAYMENT_NONE,     PAYMENT_AWAITING_STOCK, PAYMENT_AWAITING_ORDER, PAYMENT_CHARGING,
    PAYMENT_CHARGING, PAYMENT_CAPTURED,       PAYMENT_DECLINED,       PAYMENT_REFUNDING,
    PAYMENT_REFUNDED, PAYMENT_REFUND_FAILED,  PAYMENT_CANCELLED,      PAYMENT_CLOSED};

static void step(payment_t *st, payments_input_t in)
{
    payments_event_t evs[PAY_EV_MAX];
    ck_assert_int_ge(apply(st, &in, evs), 1);
}

static payment_t make(setup_t setup)
{
    payment_t st;
    memset(&st, 0, sizeof(st));
    switch (setup) {
    case S_NONE:
        break;
    case S_AWAITING_STOCK:
        step(&st, order_input(PAY_IN_ORDER_PLACED));
        break;
    case S_AWAITING_ORDER:
        step(&st, order_input(PAY_IN_STOCK_RESERVED));
        break;
    case S_CHARGING:
        st = make(S_AWAITING_STOCK);
        step(&st, order_input(PAY_IN_STOCK_RESERVED));
        break;
    case S_CHARGING_OWED:
        st = make(S_CHARGING);
        step(&st, order_input(PAY_IN_ORDER_CANCELLED));
        break;
    case S_CAPTURED:
        st = make(S_CHARGING);
        step(&st, transfer_input(PAY_IN_TRANSFER_COMPLETED, "pay-o-1", "", 0));
        break;
    case S_DECLINED:
        st = make(S_CHARGING);
        step(&st, transfer_input(PAY_IN_TRANSFER_FAILED, "pay-o-1", "INSUFFICIENT_FUNDS", 0));
        break;
    case S_REFUNDING:
        st = make(S_CAPTURED);
        step(&st, order_input(PAY_IN_ORDER_CANCELLED));
        break;
    case S_REFUNDED:
        st = make(S_REFUNDING);
        step(&st, transfer_input(PAY_IN_TRANSFER_COMPLETED, "refund-o-1", "", 0));
        break;
    case S_REFUND_FAILED:
        st = make(S_REFUNDING);
        step(&st, transfer_input(PAY_IN_TRANSFER_FAILED, "refund-o-1", "ACCOUNT_CLOSED", 1));
        break;
    case S_CANCELLED:
        step(&st, order_input(PAY_IN_ORDER_CANCELLED));
        break;
    case S_CLOSED:
        step(&st, order_input(PAY_IN_STOCK_REJECTED));
        break;
    default:
        ck_abort_msg("no such setup");
    }
    ck_assert_int_eq(st.state, setup_state[setup]);
    ck_assert_int_eq(st.refund_owed, setup == S_CHARGING_OWED);
    return st;
}

/* ---- the charge: both arrival orders ---- */

static void assert_charge(const payments_event_t *ev)
{
    ck_assert_int_eq(ev->kind, PAY_EV_CHARGE_REQUESTED);
    ck_assert_str_eq(ev->order_id, "o-1");
    ck_assert_str_eq(ev->account_id, ACCOUNT);
    ck_assert_str_eq(ev->merchant_account, MERCHANT);
    ck_assert_int_eq(ev->amount, AMOUNT);
    ck_assert_str_eq(ev->transfer_id, "pay-o-1");
}

/* _i = 0: OrderPlaced then StockReserved; 1: the reverse. Each input is then delivered again,
 * in both orders: still exactly one charge in all. */
START_TEST(test_arrival_orders)
{
    payments_input_kind_t first = _i == 0 ? PAY_IN_ORDER_PLACED : PAY_IN_STOCK_RESERVED;
    payments_input_kind_t second = _i == 0 ? PAY_IN_STOCK_RESERVED : PAY_IN_ORDER_PLACED;
    payment_t st;
    memset(&st, 0, sizeof(st));
    payments_input_t in = order_input(first);
    payments_event_t ev =
        apply_one(&st, &in, _i == 0 ? PAY_EV_ORDER_RECORDED : PAY_EV_STOCK_RECORDED);
    ck_assert(payments_event_silent(ev.kind));
    ck_assert_int_eq(st.state, _i == 0 ? PAYMENT_AWAITING_STOCK : PAYMENT_AWAITING_ORDER);
    ck_assert_str_eq(st.order_id, "o-1");
    ck_assert_int_eq(st.version, 0);

    /* the first fact again: nothing */
    payments_event_t evs[PAY_EV_MAX];
    payment_t before = st;
    ck_assert_int_eq(apply(&st, &in, evs), 0);
    assert_same(&st, &before);

    in = order_input(second);
    ev = apply_one(&st, &in, PAY_EV_CHARGE_REQUESTED);
    assert_charge(&ev);
    ck_assert(!payments_event_silent(ev.kind));
    ck_assert_int_eq(st.state, PAYMENT_CHARGING);
    ck_assert_str_eq(st.account_id, ACCOUNT);
    ck_assert_str_eq(st.merchant_account, MERCHANT);
    ck_assert_int_eq(st.amount, AMOUNT);
    ck_assert_int_eq(st.version, 1);

    int charges = 1;
    for (int k = 0; k < 2; k++) {
        before = st;
        in = order_input(k == 0 ? first : second);
        int n = apply(&st, &in, evs);
        for (int e = 0; e < n; e++) {
            charges += evs[e].kind == PAY_EV_CHARGE_REQUESTED;
        }
        ck_assert_int_eq(n, 0);
        assert_same(&st, &before);
    }
    ck_assert_int_eq(charges, 1);
}
END_TEST

/* ---- the charge's outcome ---- */

START_TEST(test_capture)
{
    payment_t st = make(S_CHARGING);
    payments_input_t in = transfer_input(PAY_IN_TRANSFER_COMPLETED, "pay-o-1", "", 0);
    payments_event_t ev = apply_one(&st, &in, PAY_EV_CAPTURED);
    ck_assert_str_eq(ev.order_id, "o-1");
    ck_assert_str_eq(ev.account_id, ACCOUNT);
    ck_assert_int_eq(ev.amount, AMOUNT);
    ck_assert_str_eq(ev.transfer_id, "pay-o-1");
    ck_assert_int_eq(st.state, PAYMENT_CAPTURED);
    ck_assert_int_eq(st.version, 2);
    ck_assert_int_eq(st.refund_owed, 0);
}
END_TEST

static const struct {
    payments_input_kind_t kind;
    const char *reason;
    int compensated;
    const char *expect;
} declines[] = {
    {PAY_IN_TRANSFER_FAILED, "INSUFFICIENT_FUNDS", 0, "INSUFFICIENT_FUNDS"},
    {PAY_IN_TRANSFER_FAILED, "ACCOUNT_NOT_FOUND", 0, "ACCOUNT_NOT_FOUND"},
    {PAY_IN_TRANSFER_FAILED, "ACCOUNT_CLOSED", 0, "ACCOUNT_CLOSED"},
    {PAY_IN_TRANSFER_FAILED, "CURRENCY_MISMATCH", 0, "CURRENCY_MISMATCH"},
    {PAY_IN_TRANSFER_FAILED, "ACCOUNT_NOT_FOUND", 1, "MERCHANT_ACCOUNT_NOT_FOUND"},
    {PAY_IN_TRANSFER_FAILED, "ACCOUNT_CLOSED", 1, "MERCHANT_ACCOUNT_CLOSED"},
    {PAY_IN_TRANSFER_FAILED, "CURRENCY_MISMATCH", 1, "MERCHANT_CURRENCY_MISMATCH"},
    {PAY_IN_TRANSFER_REJECTED, "TRANSFER_EXISTS", 0, "TRANSFER_EXISTS"},
    {PAY_IN_TRANSFER_REJECTED, "INVALID_ID", 0, "INVALID_ID"},
};

/* _i indexes declines[] twice: first from CHARGING, then from CHARGING with a refund owed
 * (declined: nothing was taken, nothing is owed). */
START_TEST(test_decline)
{
    int d = _i % (int)(sizeof(declines) / sizeof(declines[0]));
    int owed = _i >= (int)(sizeof(declines) / sizeof(declines[0]));
    payment_t st = make(owed ? S_CHARGING_OWED : S_CHARGING);
    payments_input_t in =
        transfer_input(declines[d].kind, "pay-o-1", declines[d].reason, declines[d].compensated);
    payments_event_t ev = apply_one(&st, &in, PAY_EV_DECLINED);
    ck_assert_str_eq(ev.reason, declines[d].expect);
    ck_assert_str_eq(ev.order_id, "o-1");
    ck_assert_str_eq(ev.account_id, ACCOUNT);
    ck_assert_int_eq(ev.amount, AMOUNT);
    ck_assert_int_eq(st.state, PAYMENT_DECLINED);
    ck_assert_str_eq(st.reason, declines[d].expect);
    ck_assert_int_eq(st.refund_owed, 0);
    ck_assert_int_eq(st.version, 2);
}
END_TEST

/* The customer's account is the merchant's: the charge still goes to the ledger, which
 * refuses it, and that comes back as a decline. */
START_TEST(test_customer_is_merchant)
{
    payment_t st;
    memset(&st, 0, sizeof(st));
    payments_input_t in = order_input(PAY_IN_ORDER_PLACED);
    snprintf(in.account_id, sizeof(in.account_id), MERCHANT);
    payments_event_t evs[PAY_EV_MAX];
    ck_assert_int_eq(apply(&st, &in, evs), 1);
    in = order_input(PAY_IN_STOCK_RESERVED);
    payments_event_t ev = apply_one(&st, &in, PAY_EV_CHARGE_REQUESTED);
    ck_assert_str_eq(ev.account_id, MERCHANT);
    ck_assert_str_eq(ev.merchant_account, MERCHANT);
    in = transfer_input(PAY_IN_TRANSFER_FAILED, "pay-o-1", "SAME_ACCOUNT", 0);
    snprintf(in.from_account, sizeof(in.from_account), MERCHANT);
    ev = apply_one(&st, &in, PAY_EV_DECLINED);
    ck_assert_str_eq(ev.reason, "SAME_ACCOUNT");
    ck_assert_int_eq(st.state, PAYMENT_DECLINED);
}
END_TEST

/* ---- cancels ---- */

/* Before anything and while awaiting either fact: cancelled, silently, and never charges. */
static const setup_t cancel_early[] = {S_NONE, S_AWAITING_STOCK, S_AWAITING_ORDER};

START_TEST(test_cancel_before_charge)
{
    payment_t st = make(cancel_early[_i]);
    payments_input_t in = order_input(PAY_IN_ORDER_CANCELLED);
    payments_event_t ev = apply_one(&st, &in, PAY_EV_CANCELLED);
    ck_assert(payments_event_silent(ev.kind));
    ck_assert_int_eq(st.state, PAYMENT_CANCELLED);
    ck_assert_int_eq(st.version, 0);
    ck_assert_str_eq(st.order_id, "o-1");
    /* the facts that would have started the charge, late: nothing */
    static const payments_input_kind_t late[] = {PAY_IN_ORDER_PLACED, PAY_IN_STOCK_RESERVED,
                                                 PAY_IN_ORDER_CANCELLED, PAY_IN_STOCK_REJECTED};
    for (size_t k = 0; k < sizeof(late) / sizeof(late[0]); k++) {
        payment_t before = st;
        in = order_input(late[k]);
        payments_event_t evs[PAY_EV_MAX];
        ck_assert_int_eq(apply(&st, &in, evs), 0);
        assert_same(&st, &before);
    }
}
END_TEST

START_TEST(test_cancel_while_charging_then_capture)
{
    payment_t st = make(S_CHARGING);
    payments_input_t in = order_input(PAY_IN_ORDER_CANCELLED);
    payments_event_t ev = apply_one(&st, &in, PAY_EV_REFUND_OWED);
    ck_assert(payments_event_silent(ev.kind));
    ck_assert_int_eq(st.state, PAYMENT_CHARGING);
    ck_assert_int_eq(st.refund_owed, 1);
    ck_assert_int_eq(st.version, 1);

    /* the cancel again: nothing more */
    payment_t before = st;
    payments_event_t evs[PAY_EV_MAX];
    ck_assert_int_eq(apply(&st, &in, evs), 0);
    assert_same(&st, &before);

    in = transfer_input(PAY_IN_TRANSFER_COMPLETED, "pay-o-1", "", 0);
    ck_assert_int_eq(apply(&st, &in, evs), 2);
    ck_assert_int_eq(evs[0].kind, PAY_EV_CAPTURED);
    ck_assert_str_eq(evs[0].transfer_id, "pay-o-1");
    ck_assert_int_eq(evs[1].kind, PAY_EV_REFUND_REQUESTED);
    ck_assert_str_eq(evs[1].transfer_id, "refund-o-1");
    ck_assert_str_eq(evs[1].order_id, "o-1");
    ck_assert_str_eq(evs[1].account_id, ACCOUNT);
    ck_assert_str_eq(evs[1].merchant_account, MERCHANT);
    ck_assert_int_eq(evs[1].amount, AMOUNT);
    ck_assert_int_eq(st.state, PAYMENT_REFUNDING);
    ck_assert_int_eq(st.refund_owed, 0);
    ck_assert_int_eq(st.version, 3);

    /* the capture again: no second refund */
    before = st;
    ck_assert_int_eq(apply(&st, &in, evs), 0);
    assert_same(&st, &before);

    in = transfer_input(PAY_IN_TRANSFER_COMPLETED, "refund-o-1", "", 0);
    ev = apply_one(&st, &in, PAY_EV_REFUNDED);
    ck_assert_str_eq(ev.transfer_id, "refund-o-1");
    ck_assert_int_eq(st.state, PAYMENT_REFUNDED);
    ck_assert_int_eq(st.version, 4);
}
END_TEST

START_TEST(test_cancel_after_capture)
{
    payment_t st = make(S_CAPTURED);
    payments_input_t in = order_input(PAY_IN_ORDER_CANCELLED);
    payments_event_t ev = apply_one(&st, &in, PAY_EV_REFUND_REQUESTED);
    ck_assert_str_eq(ev.transfer_id, "refund-o-1");
    ck_assert_str_eq(ev.account_id, ACCOUNT);
    ck_assert_str_eq(ev.merchant_account, MERCHANT);
    ck_assert_int_eq(ev.amount, AMOUNT);
    ck_assert_int_eq(st.state, PAYMENT_REFUNDING);
    ck_assert_int_eq(st.version, 3);
    /* a second cancel: the refund is asked for once */
    payment_t before = st;
    payments_event_t evs[PAY_EV_MAX];
    ck_assert_int_eq(apply(&st, &in, evs), 0);
    assert_same(&st, &before);
}
END_TEST

/* The refund goes back from the merchant the charge went to, even if the service's merchant
 * changed in between. */
START_TEST(test_refund_from_charged_merchant)
{
    payment_t st = make(S_CAPTURED);
    payments_input_t in = order_input(PAY_IN_ORDER_CANCELLED);
    payments_event_t evs[PAY_EV_MAX];
    ck_assert_int_eq(payments_decide(&st, &in, "other-merchant", evs), 1);
    ck_assert_int_eq(evs[0].kind, PAY_EV_REFUND_REQUESTED);
    ck_assert_str_eq(evs[0].merchant_account, MERCHANT);
}
END_TEST

/* ---- the refund's outcome ---- */

static const struct {
    payments_input_kind_t kind;
    const char *reason;
    int compensated;
    payments_event_kind_t expect;
    payment_state_t state;
} refund_outcomes[] = {
    {PAY_IN_TRANSFER_COMPLETED, "", 0, PAY_EV_REFUNDED, PAYMENT_REFUNDED},
    {PAY_IN_TRANSFER_FAILED, "ACCOUNT_CLOSED", 1, PAY_EV_REFUND_FAILED, PAYMENT_REFUND_FAILED},
    {PAY_IN_TRANSFER_FAILED, "INSUFFICIENT_FUNDS", 0, PAY_EV_REFUND_FAILED, PAYMENT_REFUND_FAILED},
    {PAY_IN_TRANSFER_REJECTED, "TRANSFER_EXISTS", 0, PAY_EV_REFUND_FAILED, PAYMENT_REFUND_FAILED},
};

START_TEST(test_refund_outcome)
{
    payment_t st = make(S_REFUNDING);
    payments_input_t in =
        transfer_input(refund_outcomes[_i].kind, "refund-o-1", refund_outcomes[_i].reason,
                       refund_outcomes[_i].compensated);
    payments_event_t ev = apply_one(&st, &in, refund_outcomes[_i].expect);
    ck_assert_str_eq(ev.order_id, "o-1");
    ck_assert_str_eq(ev.account_id, ACCOUNT);
    ck_assert_int_eq(ev.amount, AMOUNT);
    ck_assert_str_eq(ev.transfer_id, "refund-o-1");
    /* a refund's reason is the ledger's, never prefixed */
    ck_assert_str_eq(ev.reason, refund_outcomes[_i].reason);
    ck_assert_int_eq(st.state, refund_outcomes[_i].state);
    ck_assert_str_eq(st.reason, refund_outcomes[_i].reason);
    ck_assert_int_eq(st.version, 4);
}
END_TEST

/* ---- StockReservationRejected ---- */

START_TEST(test_stock_rejected_closes)
{
    payment_t st = make(cancel_early[_i]);
    payments_input_t in = order_input(PAY_IN_STOCK_REJECTED);
    payments_event_t ev = apply_one(&st, &in, PAY_EV_CLOSED);
    ck_assert(payments_event_silent(ev.kind));
    ck_assert_int_eq(st.state, PAYMENT_CLOSED);
    ck_assert_int_eq(st.version, 0);
    /* the order arriving late does not start anything */
    payment_t before = st;
    in = order_input(PAY_IN_ORDER_PLACED);
    payments_event_t evs[PAY_EV_MAX];
    ck_assert_int_eq(apply(&st, &in, evs), 0);
    assert_same(&st, &before);
}
END_TEST

/* ---- the whole table: every state x every input ---- */

/* The inputs of the table's columns: the order saga's four facts, then each transfer outcome
 * for the charge and for the refund. */
#define COLS 10
static payments_input_t column_input(int col)
{
    static const payments_input_kind_t order_kinds[4] = {
        PAY_IN_ORDER_PLACED, PAY_IN_STOCK_RESERVED, PAY_IN_STOCK_REJECTED, PAY_IN_ORDER_CANCELLED};
    static const payments_input_kind_t transfer_kinds[3] = {
        PAY_IN_TRANSFER_COMPLETED, PAY_IN_TRANSFER_FAILED, PAY_IN_TRANSFER_REJECTED};
    if (col < 4) {
        return order_input(order_kinds[col]);
    }
    col -= 4;
    return transfer_input(transfer_kinds[col % 3], col < 3 ? "pay-o-1" : "refund-o-1",
                          col % 3 ? "WHY" : "", 0);
}

/* What each (state, input) becomes; "-" (-1): unchanged, no event (late, duplicate, or not
 * meant for that state). Columns: OrderPlaced, StockReserved, StockReservationRejected,
 * OrderCancelled, TransferCompleted / Failed / CommandRejected of pay-, then of refund-. */
#define U (-1)
static const int table[S__COUNT][COLS] = {
    /* NONE */ {S_AWAITING_STOCK, S_AWAITING_ORDER, S_CLOSED, S_CANCELLED, U, U, U, U, U, U},
    /* AWAITING_STOCK */ {U, S_CHARGING, S_CLOSED, S_CANCELLED, U, U, U, U, U, U},
    /* AWAITING_ORDER */ {S_CHARGING, U, S_CLOSED, S_CANCELLED, U, U, U, U, U, U},
    /* CHARGING */ {U, U, U, S_CHARGING_OWED, S_CAPTURED, S_DECLINED, S_DECLINED, U, U, U},
    /* CHARGING_OWED */ {U, U, U, U, S_REFUNDING, S_DECLINED, S_DECLINED, U, U, U},
    /* CAPTURED */ {U, U, U, S_REFUNDING, U, U, U, U, U, U},
    /* DECLINED */ {U, U, U, U, U, U, U, U, U, U},
    /* REFUNDING */ {U, U, U, U, U, U, U, S_REFUNDED, S_REFUND_FAILED, S_REFUND_FAILED},
    /* REFUNDED */ {U, U, U, U, U, U, U, U, U, U},
    /* REFUND_FAILED */ {U, U, U, U, U, U, U, U, U, U},
    /* CANCELLED */ {U, U, U, U, U, U, U, U, U, U},
    /* CLOSED */ {U, U, U, U, U, U, U, U, U, U},
};

START_TEST(test_table)
{
    setup_t from = (setup_t)(_i / COLS);
    int col = _i % COLS;
    int to = table[from][col];
    payment_t st = make(from);
    payment_t before = st;
    payments_input_t in = column_input(col);
    payments_event_t evs[PAY_EV_MAX];
    int n = apply(&st, &in, evs);
    if (to == U) {
        ck_assert_msg(n == 0, "state %d, column %d: %d events", (int)from, col, n);
        assert_same(&st, &before);
        return;
    }
    ck_assert_msg(n >= 1, "state %d, column %d: no event", (int)from, col);
    ck_assert_int_eq(st.state, setup_state[to]);
    ck_assert_int_eq(st.refund_owed, to == S_CHARGING_OWED);
    ck_assert_str_eq(st.order_id, "o-1");
    /* the version counts the published events only */
    int published = 0;
    for (int e = 0; e < n; e++) {
        published += !payments_event_silent(evs[e].kind);
    }
    ck_assert_int_eq(st.version, before.version + published);
    /* and the same input again changes nothing more */
    before = st;
    ck_assert_int_eq(apply(&st, &in, evs), 0);
    assert_same(&st, &before);
}
END_TEST

/* ---- a timed-out order saga: OrderRejected TIMEOUT undone like a cancel ---- */

static payments_input_t rejected_input(const char *reason)
{
    payments_input_t in = order_input(PAY_IN_ORDER_REJECTED);
    snprintf(in.reason, sizeof(in.reason), "%s", reason);
    return in;
}

/* In every state, OrderRejected TIMEOUT decides what OrderCancelled decides (the same events
 * with the same figures) and leaves the payment as the cancel would. */
START_TEST(test_timeout_like_cancel)
{
    payment_t st = make((setup_t)_i);
    payments_input_t cancel = order_input(PAY_IN_ORDER_CANCELLED);
    payments_input_t timeout = rejected_input("TIMEOUT");
    ck_assert_ptr_null(payments_input_invalid(&st, &cancel));
    ck_assert_ptr_null(payments_input_invalid(&st, &timeout));
    payments_event_t by_cancel[PAY_EV_MAX], by_timeout[PAY_EV_MAX];
    int nc = payments_decide(&st, &cancel, MERCHANT, by_cancel);
    int nt = payments_decide(&st, &timeout, MERCHANT, by_timeout);
    ck_assert_msg(nc == nt, "state %s: %d events for the cancel, %d for the timeout",
                  payments_state_name(st.state), nc, nt);
    /* the table's OrderCancelled column says whether anything happens */
    ck_assert_int_eq(nt > 0, table[_i][3] != U);
    for (int e = 0; e < nt; e++) {
        ck_assert_int_eq(by_timeout[e].kind, by_cancel[e].kind);
        ck_assert_str_eq(by_timeout[e].order_id, by_cancel[e].order_id);
        ck_assert_str_eq(by_timeout[e].account_id, by_cancel[e].account_id);
        ck_assert_str_eq(by_timeout[e].merchant_account, by_cancel[e].merchant_account);
        ck_assert_int_eq(by_timeout[e].amount, by_cancel[e].amount);
        ck_assert_str_eq(by_timeout[e].transfer_id, by_cancel[e].transfer_id);
        ck_assert_str_eq(by_timeout[e].reason, by_cancel[e].reason);
    }
    payment_t after_cancel = st, after_timeout = st;
    for (int e = 0; e < nc; e++) {
        payments_evolve(&after_cancel, &by_cancel[e]);
        payments_evolve(&after_timeout, &by_timeout[e]);
    }
    assert_same(&after_timeout, &after_cancel);
    /* and the timeout again changes nothing more */
    payments_event_t evs[PAY_EV_MAX];
    payment_t before = after_timeout;
    ck_assert_int_eq(apply(&after_timeout, &timeout, evs), 0);
    assert_same(&after_timeout, &before);
}
END_TEST

/* Every other rejection follows a refused stock or a declined charge, which closed the
 * payment already: in no state does it change anything. */
static const char *const other_rejections[] = {
    "OUT_OF_STOCK", "PAYMENT_DECLINED", "INSUFFICIENT_FUNDS", "", "timeout", "TIMEOUT_"};
#define OTHER_REJECTIONS_N ((int)(sizeof(other_rejections) / sizeof(other_rejections[0])))

START_TEST(test_other_rejection_changes_nothing)
{
    setup_t from = (setup_t)(_i / OTHER_REJECTIONS_N);
    const char *reason = other_rejections[_i % OTHER_REJECTIONS_N];
    payment_t st = make(from);
    payment_t before = st;
    payments_input_t in = rejected_input(reason);
    payments_event_t evs[PAY_EV_MAX];
    ck_assert_msg(apply(&st, &in, evs) == 0, "OrderRejected \"%s\" in state %d: events", reason,
                  (int)from);
    assert_same(&st, &before);
}
END_TEST

/* The story the equivalence implies, spelled out: a saga that times out while the charge is
 * in flight gets its capture refunded at once. */
START_TEST(test_timeout_while_charging_refunds_capture)
{
    payment_t st = make(S_CHARGING);
    payments_input_t in = rejected_input("TIMEOUT");
    apply_one(&st, &in, PAY_EV_REFUND_OWED);
    ck_assert_int_eq(st.state, PAYMENT_CHARGING);
    ck_assert_int_eq(st.refund_owed, 1);
    in = transfer_input(PAY_IN_TRANSFER_COMPLETED, "pay-o-1", "", 0);
    payments_event_t evs[PAY_EV_MAX];
    ck_assert_int_eq(apply(&st, &in, evs), 2);
    ck_assert_int_eq(evs[0].kind, PAY_EV_CAPTURED);
    ck_assert_int_eq(evs[1].kind, PAY_EV_REFUND_REQUESTED);
    ck_assert_str_eq(evs[1].transfer_id, "refund-o-1");
    ck_assert_int_eq(evs[1].amount, AMOUNT);
    ck_assert_int_eq(st.state, PAYMENT_REFUNDING);
    ck_assert_int_eq(st.refund_owed, 0);
}
END_TEST

START_TEST(test_rejection_invalid_order_id)
{
    payment_t st;
    memset(&st, 0, sizeof(st));
    static const char *const reasons[] = {"TIMEOUT", "OUT_OF_STOCK"};
    static const char *const ids[] = {"", "o 1", "o/1"};
    for (size_t r = 0; r < 2; r++) {
        for (size_t k = 0; k < 3; k++) {
            payments_input_t in = rejected_input(reasons[r]);
            snprintf(in.order_id, sizeof(in.order_id), "%s", ids[k]);
            ck_assert_ptr_nonnull(payments_input_invalid(&st, &in));
        }
    }
}
END_TEST

/* ---- transfer ids ---- */

static const struct {
    const char *transfer_id;
    payments_leg_t leg;
    const char *order_id;
    int attempt;
} legs[] = {
    {"pay-o-1", PAY_LEG_CHARGE, "o-1", 1},
    {"refund-o-1", PAY_LEG_REFUND, "o-1", 1},
    {"pay-pay-1", PAY_LEG_CHARGE, "pay-1", 1},
    {"refund-pay-1", PAY_LEG_REFUND, "pay-1", 1},
    {"refund.2-o-1", PAY_LEG_REFUND, "o-1", 2},
    {"refund.10-o-1", PAY_LEG_REFUND, "o-1", 10},
    {"refund.999-o-1", PAY_LEG_REFUND, "o-1", 999},
    {"refund.2-refund.3-x", PAY_LEG_REFUND, "refund.3-x", 2},
    {"refund.1-o-1", PAY_LEG_NONE, "", 0}, /* the first attempt is refund- */
    {"refund.0-o-1", PAY_LEG_NONE, "", 0},
    {"refund.02-o-1", PAY_LEG_NONE, "", 0},   /* leading zero: two ids for one attempt */
    {"refund.1000-o-1", PAY_LEG_NONE, "", 0}, /* beyond the attempts allowed */
    {"refund.99999-o-1", PAY_LEG_NONE, "", 0},
    {"refund.-o-1", PAY_LEG_NONE, "", 0},
    {"refund.2o-1", PAY_LEG_NONE, "", 0},
    {"refund.2-", PAY_LEG_NONE, "", 0},
    {"refund.2", PAY_LEG_NONE, "", 0},
    {"refund.", PAY_LEG_NONE, "", 0},
    {"t-1", PAY_LEG_NONE, "", 0},
    {"pay-", PAY_LEG_NONE, "", 0},
    {"refund-", PAY_LEG_NONE, "", 0},
    {"payo-1", PAY_LEG_NONE, "", 0},
    {"PAY-o-1", PAY_LEG_NONE, "", 0},
    {"xpay-o-1", PAY_LEG_NONE, "", 0},
    {"refund_o-1", PAY_LEG_NONE, "", 0},
    {"pay-o 1", PAY_LEG_NONE, "", 0},
    {"", PAY_LEG_NONE, "", 0},
};

START_TEST(test_transfer_leg)
{
    char order_id[PAY_ID_MAX];
    memset(order_id, 'z', sizeof(order_id));
    int attempt = -1;
    ck_assert_int_eq(
        payments_transfer_leg(legs[_i].transfer_id, order_id, sizeof(order_id), &attempt),
        legs[_i].leg);
    ck_assert_str_eq(order_id, legs[_i].order_id);
    ck_assert_int_eq(attempt, legs[_i].attempt);
}
END_TEST

START_TEST(test_transfer_leg_length)
{
    char id[PAY_ID_MAX + 16], order_id[PAY_ID_MAX];
    snprintf(id, sizeof(id), "refund-");
    memset(id + 7, 'x', 100); /* the longest valid order id */
    id[107] = '\0';
    int attempt;
    ck_assert_int_eq(payments_transfer_leg(id, order_id, sizeof(order_id), &attempt),
                     PAY_LEG_REFUND);
    ck_assert_int_eq(strlen(order_id), 100);
    id[107] = 'x';
    id[108] = '\0';
    ck_assert_int_eq(payments_transfer_leg(id, order_id, sizeof(order_id), &attempt), PAY_LEG_NONE);
}
END_TEST

/* Most of transfers.events is other people's transfers: whatever the payment's state, an
 * outcome of a foreign transfer changes nothing. */
START_TEST(test_foreign_transfer_ignored)
{
    static const payments_input_kind_t kinds[] = {PAY_IN_TRANSFER_COMPLETED, PAY_IN_TRANSFER_FAILED,
                                                  PAY_IN_TRANSFER_REJECTED};
    for (int s = 0; s < S__COUNT; s++) {
        for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
            payment_t st = make((setup_t)s);
            payment_t before = st;
            payments_input_t in = transfer_input(kinds[k], "t-o-1", "WHY", 1);
            ck_assert_int_eq(in.leg, PAY_LEG_NONE);
            /* even if the wiring handed it over with the order id filled in */
            snprintf(in.order_id, sizeof(in.order_id), "o-1");
            payments_event_t evs[PAY_EV_MAX];
            ck_assert_int_eq(apply(&st, &in, evs), 0);
            assert_same(&st, &before);
        }
    }
}
END_TEST

/* ---- broken inputs (dead-lettered) ---- */

typedef enum { B_PLACED, B_RESERVED, B_PAY_DONE, B_REFUND_FAILED } broken_input_t;

static const struct {
    setup_t setup;
    broken_input_t input;
    const char *order_id, *account_id; /* NULL: the usual */
    int64_t amount;                    /* 0: the usual (OrderPlaced: -1 is 0) */
    const char *from, *to;             /* NULL: the usual */
    int valid;
} broken[] = {
    {S_NONE, B_PLACED, NULL, NULL, 0, NULL, NULL, 1},
    {S_AWAITING_STOCK, B_PLACED, NULL, NULL, 0, NULL, NULL, 1}, /* a duplicate */
    {S_NONE, B_PLACED, NULL, MERCHANT, 0, NULL, NULL, 1},       /* pays the shop itself */
    {S_NONE, B_PLACED, NULL, NULL, -1, NULL, NULL, 0},          /* total 0 */
    {S_NONE, B_PLACED, NULL, NULL, -5, NULL, NULL, 0},
    {S_NONE, B_PLACED, NULL, "", 0, NULL, NULL, 0},
    {S_NONE, B_PLACED, NULL, "a b", 0, NULL, NULL, 0},
    {S_NONE, B_PLACED, NULL, "a/b", 0, NULL, NULL, 0},
    {S_NONE, B_PLACED, "", NULL, 0, NULL, NULL, 0},
    {S_NONE, B_PLACED, "o 1", NULL, 0, NULL, NULL, 0},
    {S_AWAITING_STOCK, B_PLACED, NULL, "acct-B", 0, NULL, NULL, 0}, /* contradicts */
    {S_AWAITING_STOCK, B_PLACED, NULL, NULL, 501, NULL, NULL, 0},
    {S_CHARGING, B_PLACED, NULL, NULL, 499, NULL, NULL, 0},
    {S_NONE, B_RESERVED, "", NULL, 0, NULL, NULL, 0},
    {S_NONE, B_RESERVED, "o\"1", NULL, 0, NULL, NULL, 0},
    {S_CHARGING, B_PAY_DONE, NULL, NULL, 0, NULL, NULL, 1},
    {S_CHARGING, B_PAY_DONE, NULL, NULL, 499, NULL, NULL, 0},
    {S_CHARGING, B_PAY_DONE, NULL, NULL, 0, "acct-B", NULL, 0},
    {S_CHARGING, B_PAY_DONE, NULL, NULL, 0, NULL, "other-merchant", 0},
    {S_CAPTURED, B_PAY_DONE, NULL, NULL, 0, MERCHANT, ACCOUNT, 0}, /* the wrong way round */
    {S_AWAITING_STOCK, B_PAY_DONE, NULL, NULL, 7, NULL, NULL, 1},  /* not charged: ignored */
    {S_REFUNDING, B_REFUND_FAILED, NULL, NULL, 0, NULL, NULL, 1},
    {S_REFUNDING, B_REFUND_FAILED, NULL, NULL, 0, ACCOUNT, MERCHANT, 0},
    {S_REFUNDING, B_REFUND_FAILED, NULL, NULL, 1000, NULL, NULL, 0},
};

START_TEST(test_input_invalid)
{
    payment_t st = make(broken[_i].setup);
    payment_t before = st;
    payments_input_t in;
    switch (broken[_i].input) {
    case B_PLACED:
        in = order_input(PAY_IN_ORDER_PLACED);
        break;
    case B_RESERVED:
        in = order_input(PAY_IN_STOCK_RESERVED);
        break;
    case B_PAY_DONE:
        in = transfer_input(PAY_IN_TRANSFER_COMPLETED, "pay-o-1", "", 0);
        break;
    default:
        in = transfer_input(PAY_IN_TRANSFER_FAILED, "refund-o-1", "ACCOUNT_CLOSED", 0);
        break;
    }
    if (broken[_i].order_id) {
        snprintf(in.order_id, sizeof(in.order_id), "%s", broken[_i].order_id);
    }
    if (broken[_i].account_id) {
        snprintf(in.account_id, sizeof(in.account_id), "%s", broken[_i].account_id);
    }
    if (broken[_i].amount) {
        in.amount = broken[_i].amount == -1 ? 0 : broken[_i].amount;
    }
    if (broken[_i].from) {
        snprintf(in.from_account, sizeof(in.from_account), "%s", broken[_i].from);
    }
    if (broken[_i].to) {
        snprintf(in.to_account, sizeof(in.to_account), "%s", broken[_i].to);
    }
    const char *why = payments_input_invalid(&st, &in);
    if (broken[_i].valid) {
        ck_assert_msg(why == NULL, "case %d refused: %s", _i, why);
    } else {
        ck_assert_msg(why != NULL, "case %d accepted", _i);
        ck_assert(why[0] >= 'a' && why[0] <= 'z'); /* a message: lower-case */
    }
    assert_same(&st, &before);
}
END_TEST

START_TEST(test_long_ids_invalid)
{
    payment_t st;
    memset(&st, 0, sizeof(st));
    payments_input_t in = order_input(PAY_IN_ORDER_PLACED);
    memset(in.account_id, 'a', 100);
    in.account_id[100] = '\0';
    ck_assert_ptr_null(payments_input_invalid(&st, &in));
    in.account_id[100] = 'a';
    in.account_id[101] = '\0';
    ck_assert_ptr_nonnull(payments_input_invalid(&st, &in));
    in = order_input(PAY_IN_ORDER_PLACED);
    memset(in.order_id, 'o', PAY_ID_MAX - 1);
    in.order_id[PAY_ID_MAX - 1] = '\0';
    ck_assert_ptr_nonnull(payments_input_invalid(&st, &in));
}
END_TEST

/* ---- RetryRefund ---- */

/* The RetryRefund command for order `order_id`. */
static payments_input_t retry_input(const char *order_id)
{
    payments_input_t in;
    memset(&in, 0, sizeof(in));
    in.kind = PAY_IN_RETRY_REFUND;
    snprintf(in.order_id, sizeof(in.order_id), "%s", order_id);
    snprintf(in.command_id, sizeof(in.command_id), "cmd-1");
    return in;
}

static void assert_retry(const payments_event_t *ev, int attempt, const char *transfer_id)
{
    ck_assert_int_eq(ev->kind, PAY_EV_REFUND_RETRIED);
    ck_assert_str_eq(ev->order_id, "o-1");
    ck_assert_str_eq(ev->account_id, ACCOUNT);
    ck_assert_str_eq(ev->merchant_account, MERCHANT);
    ck_assert_int_eq(ev->amount, AMOUNT);
    ck_assert_int_eq(ev->attempt, attempt);
    ck_assert_str_eq(ev->transfer_id, transfer_id);
}

/* A failed refund asked for again: a new transfer id, REFUNDING; the first attempt's outcome
 * arriving late changes nothing; the retry's outcome ends it, and a retry fails again too. */
START_TEST(test_retry_refund)
{
    payment_t st = make(S_REFUND_FAILED);
    ck_assert_str_eq(st.reason, "ACCOUNT_CLOSED");
    ck_assert_int_eq(st.refund_attempts, 1);
    int64_t v = st.version;
    payments_input_t retry = retry_input("o-1");
    ck_assert_ptr_null(payments_input_invalid(&st, &retry));
    payments_event_t ev = apply_one(&st, &retry, PAY_EV_REFUND_RETRIED);
    assert_retry(&ev, 2, "refund.2-o-1");
    ck_assert_int_eq(st.state, PAYMENT_REFUNDING);
    ck_assert_int_eq(st.refund_attempts, 2);
    ck_assert_str_eq(st.reason, "");
    ck_assert_int_eq(st.version, v + 1);

    /* the first attempt's outcome again (late or duplicated): not the attempt under way */
    payment_t before = st;
    payments_event_t evs[PAY_EV_MAX];
    payments_input_t late = transfer_input(PAY_IN_TRANSFER_FAILED, "refund-o-1", "WHY", 1);
    ck_assert_int_eq(apply(&st, &late, evs), 0);
    assert_same(&st, &before);
    late = transfer_input(PAY_IN_TRANSFER_COMPLETED, "refund-o-1", "", 0);
    ck_assert_int_eq(apply(&st, &late, evs), 0);
    assert_same(&st, &before);

    /* a second RetryRefund while it runs is refused, and changes nothing */
    ev = apply_one(&st, &retry, PAY_EV_COMMAND_REJECTED);
    ck_assert_str_eq(ev.reason, "REFUND_IN_PROGRESS");
    assert_same(&st, &before);

    /* it fails again: retried again under the next id */
    payments_input_t failed =
        transfer_input(PAY_IN_TRANSFER_FAILED, "refund.2-o-1", "INSUFFICIENT_FUNDS", 0);
    ev = apply_one(&st, &failed, PAY_EV_REFUND_FAILED);
    ck_assert_str_eq(ev.transfer_id, "refund.2-o-1");
    ck_assert_str_eq(ev.reason, "INSUFFICIENT_FUNDS");
    ck_assert_int_eq(st.state, PAYMENT_REFUND_FAILED);
    ev = apply_one(&st, &retry, PAY_EV_REFUND_RETRIED);
    assert_retry(&ev, 3, "refund.3-o-1");

    /* this time it goes through */
    payments_input_t done = transfer_input(PAY_IN_TRANSFER_COMPLETED, "refund.3-o-1", "", 0);
    ev = apply_one(&st, &done, PAY_EV_REFUNDED);
    ck_assert_str_eq(ev.transfer_id, "refund.3-o-1");
    ck_assert_int_eq(ev.amount, AMOUNT);
    ck_assert_int_eq(st.state, PAYMENT_REFUNDED);
    ck_assert_int_eq(st.refund_attempts, 3);
    ck_assert_int_eq(st.version, v + 4); /* retried, failed, retried, refunded */

    /* nothing more to retry; every attempt's outcome again changes nothing */
    before = st;
    ev = apply_one(&st, &retry, PAY_EV_COMMAND_REJECTED);
    ck_assert_str_eq(ev.reason, "ALREADY_REFUNDED");
    static const char *const ids[] = {"refund-o-1", "refund.2-o-1", "refund.3-o-1"};
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        payments_input_t again = transfer_input(PAY_IN_TRANSFER_COMPLETED, ids[i], "", 0);
        ck_assert_int_eq(apply(&st, &again, evs), 0);
        again = transfer_input(PAY_IN_TRANSFER_FAILED, ids[i], "WHY", 0);
        ck_assert_int_eq(apply(&st, &again, evs), 0);
    }
    assert_same(&st, &before);
}
END_TEST

/* A retry's outcome under the payment's id with other figures is a broken peer. */
START_TEST(test_retry_outcome_must_match)
{
    payment_t st = make(S_REFUND_FAILED);
    payments_input_t retry = retry_input("o-1");
    (void)apply_one(&st, &retry, PAY_EV_REFUND_RETRIED);
    payments_input_t in = transfer_input(PAY_IN_TRANSFER_COMPLETED, "refund.2-o-1", "", 0);
    in.amount = AMOUNT + 1;
    ck_assert_ptr_nonnull(payments_input_invalid(&st, &in));
    in = transfer_input(PAY_IN_TRANSFER_COMPLETED, "refund.2-o-1", "", 0);
    snprintf(in.from_account, sizeof(in.from_account), "%s", ACCOUNT); /* the wrong way round */
    snprintf(in.to_account, sizeof(in.to_account), "%s", MERCHANT);
    ck_assert_ptr_nonnull(payments_input_invalid(&st, &in));
}
END_TEST

/* RetryRefund in every state but REFUND_FAILED is refused with a reason, naming the command,
 * and changes nothing. */
static const char *const retry_refusals[S__COUNT] = {
    [S_NONE] = "UNKNOWN_ORDER",
    [S_AWAITING_STOCK] = "NO_FAILED_REFUND",
    [S_AWAITING_ORDER] = "NO_FAILED_REFUND",
    [S_CHARGING] = "NO_FAILED_REFUND",
    [S_CHARGING_OWED] = "NO_FAILED_REFUND",
    [S_CAPTURED] = "NO_FAILED_REFUND",
    [S_DECLINED] = "NO_FAILED_REFUND",
    [S_REFUNDING] = "REFUND_IN_PROGRESS",
    [S_REFUNDED] = "ALREADY_REFUNDED",
    [S_REFUND_FAILED] = NULL,
    [S_CANCELLED] = "NO_FAILED_REFUND",
    [S_CLOSED] = "NO_FAILED_REFUND",
};

START_TEST(test_retry_refused)
{
    if (!retry_refusals[_i]) {
        return;
    }
    payment_t st = make((setup_t)_i);
    payment_t before = st;
    payments_input_t retry = retry_input("o-1");
    payments_event_t ev = apply_one(&st, &retry, PAY_EV_COMMAND_REJECTED);
    ck_assert_str_eq(ev.reason, retry_refusals[_i]);
    ck_assert_str_eq(ev.order_id, "o-1");
    ck_assert_str_eq(ev.command_id, "cmd-1");
    ck_assert_str_eq(ev.command_type, "RetryRefund");
    assert_same(&st, &before);
    ck_assert(!payments_event_silent(ev.kind)); /* a record is published */
}
END_TEST

START_TEST(test_retry_invalid_id_and_limit)
{
    static const char *const bad[] = {"", "o 1", "o/1", "o\"1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        payment_t st;
        memset(&st, 0, sizeof(st));
        payments_input_t retry = retry_input(bad[i]);
        ck_assert_ptr_null(payments_input_invalid(&st, &retry)); /* refused, not dead-lettered */
        payments_event_t ev = apply_one(&st, &retry, PAY_EV_COMMAND_REJECTED);
        ck_assert_str_eq(ev.reason, "INVALID_ID");
        ck_assert_int_eq(st.state, PAYMENT_NONE);
    }
    payment_t st = make(S_REFUND_FAILED);
    st.refund_attempts = PAY_REFUND_ATTEMPTS_MAX - 1;
    payments_input_t retry = retry_input("o-1");
    payments_event_t ev = apply_one(&st, &retry, PAY_EV_REFUND_RETRIED);
    assert_retry(&ev, PAY_REFUND_ATTEMPTS_MAX, "refund.999-o-1");
    payments_input_t failed = transfer_input(PAY_IN_TRANSFER_FAILED, "refund.999-o-1", "WHY", 0);
    (void)apply_one(&st, &failed, PAY_EV_REFUND_FAILED);
    payment_t before = st;
    ev = apply_one(&st, &retry, PAY_EV_COMMAND_REJECTED);
    ck_assert_str_eq(ev.reason, "TOO_MANY_ATTEMPTS");
    assert_same(&st, &before);
}
END_TEST

/* ---- names ---- */

START_TEST(test_names)
{
    static const char *const types[] = {"OrderPlaced",
                                        "OrderCancelled",
                                        "StockReserved",
                                        "StockReservationRejected",
                                        "TransferCompleted",
                                        "TransferFailed",
                                        "TransferCommandRejected",
                                        "OrderRejected",
                                        "RetryRefund"};
    for (int i = 0; i < PAY_IN__COUNT; i++) {
        ck_assert_int_eq(payments_input_kind(types[i]), i);
    }
    static const char *const others[] = {"PaymentCaptured", "TransferRequested", "RequestTransfer",
                                         "StockCommitted",  "StockReleased",     "OrderConfirmed",
                                         "OrderPaid",       "orderplaced",       ""};
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        ck_assert_int_eq(payments_input_kind(others[i]), -1);
    }
    static const char *const states[] = {
        "NONE",      "AWAITING_STOCK", "AWAITING_ORDER", "CHARGING",  "CAPTURED", "DECLINED",
        "REFUNDING", "REFUNDED",       "REFUND_FAILED",  "CANCELLED", "CLOSED"};
    for (int i = 0; i < PAYMENT__COUNT; i++) {
        ck_assert_str_eq(payments_state_name((payment_state_t)i), states[i]);
        ck_assert_int_eq(payments_state_from_name(states[i]), i);
    }
    ck_assert_str_eq(payments_state_name(PAYMENT__COUNT), "?");
    ck_assert_int_eq(payments_state_from_name("bogus"), -1);
    ck_assert_int_eq(payments_state_from_name(""), -1);
    for (int k = 0; k < PAY_EV__COUNT; k++) {
        ck_assert_int_eq(payments_event_silent((payments_event_kind_t)k),
                         k >= PAY_EV_ORDER_RECORDED);
    }
}
END_TEST

Suite *payments_domain_suite(void);

Suite *payments_domain_suite(void)
{
    Suite *s = suite_create("payments_domain");

    TCase *tc = tcase_create("charge");
    tcase_add_loop_test(tc, test_arrival_orders, 0, 2);
    tcase_add_test(tc, test_capture);
    tcase_add_loop_test(tc, test_decline, 0, 2 * (int)(sizeof(declines) / sizeof(declines[0])));
    tcase_add_test(tc, test_customer_is_merchant);
    suite_add_tcase(s, tc);

    tc = tcase_create("cancel_refund");
    tcase_add_loop_test(tc, test_cancel_before_charge, 0,
                        (int)(sizeof(cancel_early) / sizeof(cancel_early[0])));
    tcase_add_test(tc, test_cancel_while_charging_then_capture);
    tcase_add_test(tc, test_cancel_after_capture);
    tcase_add_test(tc, test_refund_from_charged_merchant);
    tcase_add_loop_test(tc, test_refund_outcome, 0,
                        (int)(sizeof(refund_outcomes) / sizeof(refund_outcomes[0])));
    tcase_add_loop_test(tc, test_stock_rejected_closes, 0,
                        (int)(sizeof(cancel_early) / sizeof(cancel_early[0])));
    suite_add_tcase(s, tc);

    tc = tcase_create("table");
    tcase_add_loop_test(tc, test_table, 0, S__COUNT * COLS);
    tcase_add_test(tc, test_foreign_transfer_ignored);
    suite_add_tcase(s, tc);

    tc = tcase_create("timeout");
    tcase_add_loop_test(tc, test_timeout_like_cancel, 0, S__COUNT);
    tcase_add_loop_test(tc, test_other_rejection_changes_nothing, 0, S__COUNT * OTHER_REJECTIONS_N);
    tcase_add_test(tc, test_timeout_while_charging_refunds_capture);
    tcase_add_test(tc, test_rejection_invalid_order_id);
    suite_add_tcase(s, tc);

    tc = tcase_create("inputs");
    tcase_add_loop_test(tc, test_transfer_leg, 0, (int)(sizeof(legs) / sizeof(legs[0])));
    tcase_add_test(tc, test_transfer_leg_length);
    tcase_add_loop_test(tc, test_input_invalid, 0, (int)(sizeof(broken) / sizeof(broken[0])));
    tcase_add_test(tc, test_long_ids_invalid);
    tcase_add_test(tc, test_names);
    suite_add_tcase(s, tc);

    tc = tcase_create("retry_refund");
    tcase_add_test(tc, test_retry_refund);
    tcase_add_test(tc, test_retry_outcome_must_match);
    tcase_add_loop_test(tc, test_retry_refused, 0, S__COUNT);
    tcase_add_test(tc, test_retry_invalid_id_and_limit);
    suite_add_tcase(s, tc);
    return s;
}
