/*
 * test_orders_domain.c: the orders context's pure rules (consumers/orders/domain.c): every
 * PlaceOrder refusal and the documented precedence between them (INVALID_ID, INVALID_ORDER,
 * ORDER_EXISTS, UNKNOWN_USER, USER_INACTIVE, UNKNOWN_PRODUCT, then the total's overflow),
 * pricing from the local copy (lines kept as given, duplicates included; the total, up to
 * INT64_MAX and its overflow by multiplication and by addition), each saga outcome from
 * PENDING, late and duplicated outcomes on CONFIRMED / REJECTED / CANCELLED orders changing
 * nothing, the dead-letter checks (outcome for an unknown order, a capture of another amount,
 * broken copy events), a timed-out saga (a PENDING order rejected with TIMEOUT; an unknown
 * one fenced, its later PlaceOrder refused with TIMEOUT; closed orders and foreign or invalid
 * ids untouched; no outcome, a capture above all, moving a timed-out order), cancelling from
 * PENDING and CONFIRMED and its refusals, the local copies' version rule (an older or repeated
 * event never overwrites a newer copy), the wire names, id validity, and a seeded random run
 * that checks closed orders never move.
 */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../consumers/orders/domain.h"

/* ---- the local copies the tests decide against ---- */

#define HALF ((int64_t)1 << 62) /* two of these overflow int64 */

static const orders_user_t test_users[] = {
    {"ann", 1, 1},  /* active */
    {"bob", 0, 2},  /* deactivated */
    {"ghost", 1, 0} /* an entry the copy has not heard of yet */
};

static const orders_price_t test_prices[] = {
    {"p1", 100, 1}, {"p2", 250, 3}, {"big", INT64_MAX, 1}, {"half", HALF, 1}, {"ghost", 5, 0}};

static const orders_user_t *find_user(const void *ctx, const char *id)
{
    (void)ctx;
    for (size_t i = 0; i < sizeof(test_users) / sizeof(test_users[0]); i++) {
        if (!strcmp(test_users[i].id, id)) {
            return &test_users[i];
        }
    }
    return NULL;
}

static const orders_price_t *find_price(const void *ctx, const char *id)
{
    (void)ctx;
    for (size_t i = 0; i < sizeof(test_prices) / sizeof(test_prices[0]); i++) {
        if (!strcmp(test_prices[i].id, id)) {
            return &test_prices[i];
        }
    }
    return NULL;
}

static const orders_copies_t copies = {.user = find_user, .price = find_price, .ctx = NULL};

/* ---- helpers ---- */

static orders_input_t command(orders_input_kind_t kind, const char *order_id)
{
    orders_input_t in;
    memset(&in, 0, sizeof(in));
    in.kind = kind;
    snprintf(in.command_id, sizeof(in.command_id), "cmd-%d", (int)kind);
    snprintf(in.order_id, sizeof(in.order_id), "%s", order_id);
    return in;
}

static orders_input_t place(const char *order_id, const char *user_id, const char *account_id,
                            const orders_item_t *items, size_t n)
{
    orders_input_t in = command(ORD_IN_PLACE_ORDER, order_id);
    snprintf(in.user_id, sizeof(in.user_id), "%s", user_id);
    snprintf(in.account_id, sizeof(in.account_id), "%s", account_id);
    in.items = items;
    in.nitems = n;
    return in;
}

static orders_input_t outcome(orders_input_kind_t kind, const char *order_id, int64_t amount,
                              const char *reason)
{
    orders_input_t in;
    memset(&in, 0, sizeof(in));
    in.kind = kind;
    snprintf(in.order_id, sizeof(in.order_id), "%s", order_id);
    snprintf(in.reason, sizeof(in.reason), "%s", reason);
    in.amount = amount;
    return in;
}

static orders_input_t copy_event(orders_input_kind_t kind, const char *id, int64_t price,
                                 int64_t version)
{
    orders_input_t in;
    memset(&in, 0, sizeof(in));
    in.kind = kind;
    if (orders_input_target(kind) == ORD_TARGET_USER) {
        snprintf(in.user_id, sizeof(in.user_id), "%s", id);
    } else {
        snprintf(in.product_id, sizeof(in.product_id), "%s", id);
    }
    in.price = price;
    in.version = version;
    return in;
}

/* Decide then evolve, as the service does; returns the number of events (0 or 1). */
static int apply(order_t *o, const orders_input_t *in, order_line_t *lines, orders_event_t *ev)
{
    int n = orders_decide(o, in, &copies, lines, ev);
    if (n) {
        orders_evolve(o, ev);
    }
    return n;
}

static const orders_item_t two_lines[] = {{"p1", 2}, {"p2", 1}}; /* total 450 */

/* An order "o-1" of ann's (two_lines, total 450) in the given status, built through the rules.
 * `lines` must outlive the order (it borrows them). */
static order_t make_order(order_status_t status, order_line_t *lines)
{
    order_t o;
    memset(&o, 0, sizeof(o));
    if (status == ORDER_NONE) {
        return o;
    }
    orders_event_t ev;
    orders_input_t in = place("o-1", "ann", "acc-1", two_lines, 2);
    ck_assert_int_eq(apply(&o, &in, lines, &ev), 1);
    ck_assert_int_eq(ev.kind, ORD_EV_ORDER_PLACED);
    switch (status) {
    case ORDER_CONFIRMED:
        in = outcome(ORD_IN_PAYMENT_CAPTURED, "o-1", 450, "");
        break;
    case ORDER_REJECTED:
        in = outcome(ORD_IN_STOCK_RESERVATION_REJECTED, "o-1", 0, "OUT_OF_STOCK");
        break;
    case ORDER_CANCELLED:
        in = command(ORD_IN_CANCEL_ORDER, "o-1");
        break;
    default:
        return o;
    }
    ck_assert_int_eq(apply(&o, &in, NULL, &ev), 1);
    ck_assert_int_eq(o.status, status);
    ck_assert_int_eq(o.version, 2);
    return o;
}

/* True when the two orders hold the same state. */
static int same_order(const order_t *a, const order_t *b)
{
    return !strcmp(a->id, b->id) && !strcmp(a->user_id, b->user_id) &&
           !strcmp(a->account_id, b->account_id) && a->lines == b->lines &&
           a->nlines == b->nlines && a->total == b->total && a->status == b->status &&
           !strcmp(a->reason, b->reason) && a->version == b->version;
}

/* ---- PlaceOrder refusals, in precedence order ---- */

#define MANY (ORD_ITEMS_MAX + 1)

static orders_item_t many_items[MANY]; /* filled with valid lines of p1 by the suite */

static const orders_item_t no_qty[] = {{"p1", 1}, {"p2", 0}};
static const orders_item_t neg_qty[] = {{"p1", -3}};
static const orders_item_t min_qty[] = {{"p1", INT64_MIN}};
static const orders_item_t empty_product[] = {{"p1", 1}, {"", 1}};
static const orders_item_t bad_product[] = {{"p 1", 1}};
static const orders_item_t unknown_product[] = {{"p1", 1}, {"nope", 1}};
static const orders_item_t unseen_product[] = {{"ghost", 1}};
static const orders_item_t mul_overflow[] = {{"big", 2}};
static const orders_item_t half_twice[] = {{"half", 2}};
static const orders_item_t add_overflow[] = {{"half", 1}, {"p1", 1}, {"half", 1}};
static const orders_item_t overflow_and_unknown[] = {{"big", 2}, {"nope", 1}};

static const struct {
    const char *name;
    order_status_t existing; /* the order's state before the command */
    const char *order_id, *user_id, *account_id;
    const orders_item_t *items;
    size_t n;
    const char *reason;
} place_rejections[] = {
    {"empty order id", ORDER_NONE, "", "ann", "acc-1", two_lines, 2, "INVALID_ID"},
    {"order id with a space", ORDER_NONE, "o 1", "ann", "acc-1", two_lines, 2, "INVALID_ID"},
    {"order id with a slash", ORDER_NONE, "o/1", "ann", "acc-1", two_lines, 2, "INVALID_ID"},
    {"empty user id", ORDER_NONE, "o-1", "", "acc-1", two_lines, 2, "INVALID_ID"},
    {"user id non-ascii", ORDER_NONE, "o-1", "caf\xc3\xa9", "acc-1", two_lines, 2, "INVALID_ID"},
    {"empty account id", ORDER_NONE, "o-1", "ann", "", two_lines, 2, "INVALID_ID"},
    {"account id with a quote", ORDER_NONE, "o-1", "ann", "a\"b", two_lines, 2, "INVALID_ID"},
    {"invalid id before no items", ORDER_NONE, "", "ann", "acc-1", NULL, 0, "INVALID_ID"},
    {"invalid id before existing", ORDER_PENDING, "o-1", "ann", "a b", two_lines, 2, "INVALID_ID"},
    {"no items", ORDER_NONE, "o-1", "ann", "acc-1", NULL, 0, "INVALID_ORDER"},
    {"101 items", ORDER_NONE, "o-1", "ann", "acc-1", many_items, MANY, "INVALID_ORDER"},
    {"a zero quantity", ORDER_NONE, "o-1", "ann", "acc-1", no_qty, 2, "INVALID_ORDER"},
    {"a negative quantity", ORDER_NONE, "o-1", "ann", "acc-1", neg_qty, 1, "INVALID_ORDER"},
    {"quantity INT64_MIN", ORDER_NONE, "o-1", "ann", "acc-1", min_qty, 1, "INVALID_ORDER"},
    {"an empty product id", ORDER_NONE, "o-1", "ann", "acc-1", empty_product, 2, "INVALID_ORDER"},
    {"a product id with a space", ORDER_NONE, "o-1", "ann", "acc-1", bad_product, 1,
     "INVALID_ORDER"},
    {"invalid order before existing", ORDER_PENDING, "o-1", "ann", "acc-1", NULL, 0,
     "INVALID_ORDER"},
    {"invalid order before unknown user", ORDER_NONE, "o-1", "zed", "acc-1", neg_qty, 1,
     "INVALID_ORDER"},
    {"existing pending", ORDER_PENDING, "o-1", "ann", "acc-1", two_lines, 2, "ORDER_EXISTS"},
    {"existing confirmed", ORDER_CONFIRMED, "o-1", "ann", "acc-1", two_lines, 2, "ORDER_EXISTS"},
    {"existing rejected", ORDER_REJECTED, "o-1", "ann", "acc-1", two_lines, 2, "ORDER_EXISTS"},
    {"existing cancelled", ORDER_CANCELLED, "o-1", "ann", "acc-1", two_lines, 2, "ORDER_EXISTS"},
    {"existing before unknown user", ORDER_PENDING, "o-1", "zed", "acc-1", two_lines, 2,
     "ORDER_EXISTS"},
    {"unknown user", ORDER_NONE, "o-1", "zed", "acc-1", two_lines, 2, "UNKNOWN_USER"},
    {"user not yet in the copy", ORDER_NONE, "o-1", "ghost", "acc-1", two_lines, 2, "UNKNOWN_USER"},
    {"unknown user before unknown product", ORDER_NONE, "o-1", "zed", "acc-1", unknown_product, 2,
     "UNKNOWN_USER"},
    {"inactive user", ORDER_NONE, "o-1", "bob", "acc-1", two_lines, 2, "USER_INACTIVE"},
    {"inactive user before unknown product", ORDER_NONE, "o-1", "bob", "acc-1", unknown_product, 2,
     "USER_INACTIVE"},
    {"unknown product", ORDER_NONE, "o-1", "ann", "acc-1", unknown_product, 2, "UNKNOWN_PRODUCT"},
    {"product not yet in the copy", ORDER_NONE, "o-1", "ann", "acc-1", unseen_product, 1,
     "UNKNOWN_PRODUCT"},
    {"unknown product before overflow", ORDER_NONE, "o-1", "ann", "acc-1", overflow_and_unknown, 2,
     "UNKNOWN_PRODUCT"},
    {"line overflows (INT64_MAX x 2)", ORDER_NONE, "o-1", "ann", "acc-1", mul_overflow, 1,
     "INVALID_ORDER"},
    {"line overflows (2^62 x 2)", ORDER_NONE, "o-1", "ann", "acc-1", half_twice, 1,
     "INVALID_ORDER"},
    {"sum overflows (2^62 + 100 + 2^62)", ORDER_NONE, "o-1", "ann", "acc-1", add_overflow, 3,
     "INVALID_ORDER"},
};
#define PLACE_REJECTIONS_N ((int)(sizeof(place_rejections) / sizeof(place_rejections[0])))

START_TEST(test_place_rejected)
{
    const char *name = place_rejections[_i].name;
    order_line_t made[2], lines[MANY];
    order_t o = make_order(place_rejections[_i].existing, made);
    order_t before = o;
    orders_input_t in =
        place(place_rejections[_i].order_id, place_rejections[_i].user_id,
              place_rejections[_i].account_id, place_rejections[_i].items, place_rejections[_i].n);
    ck_assert_ptr_null(orders_input_invalid(&o, &in)); /* commands are never dead-lettered */
    orders_event_t ev;
    ck_assert_int_eq(orders_decide(&o, &in, &copies, lines, &ev), 1);
    ck_assert_msg(ev.kind == ORD_EV_COMMAND_REJECTED, "%s: kind %s", name,
                  orders_event_type(ev.kind));
    ck_assert_msg(!strcmp(ev.reason, place_rejections[_i].reason), "%s: reason %s, expected %s",
                  name, ev.reason, place_rejections[_i].reason);
    ck_assert_str_eq(ev.command_id, in.command_id);
    ck_assert_str_eq(ev.command_type, "PlaceOrder");
    ck_assert_str_eq(ev.order_id, place_rejections[_i].order_id);

    orders_evolve(&o, &ev);
    ck_assert_int_eq(o.status, before.status);
    ck_assert_int_eq(o.total, before.total);
    ck_assert_str_eq(o.user_id, before.user_id);
    ck_assert_str_eq(o.reason, before.reason);
    if (before.status == ORDER_NONE) {
        ck_assert_int_eq(o.version, 0); /* a missing order stays missing */
    } else {
        ck_assert_msg(o.version == before.version + 1, "%s: version %" PRId64, name, o.version);
    }
}
END_TEST

/* ---- pricing ---- */

START_TEST(test_place_priced_from_copy)
{
    /* lines keep the command's order; a product named twice stays two lines */
    static const orders_item_t items[] = {{"p1", 2}, {"p2", 3}, {"p1", 1}};
    order_line_t lines[3];
    order_t o;
    memset(&o, 0, sizeof(o));
    orders_input_t in = place("o-1.a_b:C", "ann", "acc-1", items, 3);
    orders_event_t ev;
    ck_assert_int_eq(orders_decide(&o, &in, &copies, lines, &ev), 1);
    ck_assert_int_eq(ev.kind, ORD_EV_ORDER_PLACED);
    ck_assert_str_eq(ev.order_id, "o-1.a_b:C");
    ck_assert_str_eq(ev.user_id, "ann");
    ck_assert_str_eq(ev.account_id, "acc-1");
    ck_assert_ptr_eq(ev.lines, lines);
    ck_assert_uint_eq(ev.nlines, 3);
    static const struct {
        const char *product;
        int64_t quantity, unit_price;
    } want[] = {{"p1", 2, 100}, {"p2", 3, 250}, {"p1", 1, 100}};
    for (int k = 0; k < 3; k++) {
        ck_assert_str_eq(ev.lines[k].product_id, want[k].product);
        ck_assert_int_eq(ev.lines[k].quantity, want[k].quantity);
        ck_assert_int_eq(ev.lines[k].unit_price, want[k].unit_price);
    }
    ck_assert_int_eq(ev.total, 200 + 750 + 100);

    orders_evolve(&o, &ev);
    ck_assert_int_eq(o.status, ORDER_PENDING);
    ck_assert_int_eq(o.version, 1);
    ck_assert_int_eq(o.total, 1050);
    ck_assert_str_eq(o.id, "o-1.a_b:C");
    ck_assert_str_eq(o.user_id, "ann");
    ck_assert_str_eq(o.account_id, "acc-1");
    ck_assert_ptr_eq(o.lines, lines);
    ck_assert_uint_eq(o.nlines, 3);
    ck_assert_str_eq(o.reason, "");
}
END_TEST

START_TEST(test_place_total_limits)
{
    order_line_t lines[MANY];
    orders_event_t ev;
    /* exactly INT64_MAX is a valid total */
    static const orders_item_t max_total[] = {{"big", 1}};
    order_t o;
    memset(&o, 0, sizeof(o));
    orders_input_t in = place("o-1", "ann", "acc-1", max_total, 1);
    ck_assert_int_eq(apply(&o, &in, lines, &ev), 1);
    ck_assert_int_eq(ev.kind, ORD_EV_ORDER_PLACED);
    ck_assert_int_eq(ev.total, INT64_MAX);
    /* 2^62 + (2^62 - 1) x 1 does not overflow: the half is priced once, p1 adds 100 */
    static const orders_item_t near[] = {{"half", 1}, {"p1", (HALF - 1) / 100}};
    memset(&o, 0, sizeof(o));
    in = place("o-2", "ann", "acc-1", near, 2);
    ck_assert_int_eq(apply(&o, &in, lines, &ev), 1);
    ck_assert_int_eq(ev.kind, ORD_EV_ORDER_PLACED);
    ck_assert_int_eq(ev.total, HALF + (HALF - 1) / 100 * 100);
    /* exactly ORD_ITEMS_MAX lines is allowed */
    memset(&o, 0, sizeof(o));
    in = place("o-3", "ann", "acc-1", many_items, ORD_ITEMS_MAX);
    ck_assert_int_eq(apply(&o, &in, lines, &ev), 1);
    ck_assert_int_eq(ev.kind, ORD_EV_ORDER_PLACED);
    ck_assert_uint_eq(ev.nlines, ORD_ITEMS_MAX);
    ck_assert_int_eq(ev.total, ORD_ITEMS_MAX * 100);
}
END_TEST

/* A copies view over one user and one price entry, as the batch's working set would be. */
typedef struct one_each {
    const orders_user_t *user;
    const orders_price_t *price;
} one_each_t;

static const orders_user_t *one_user(const void *ctx, const char *id)
{
    const one_each_t *v = ctx;
    return strcmp(v->user->id, id) ? NULL : v->user;
}

static const orders_price_t *one_price(const void *ctx, const char *id)
{
    const one_each_t *v = ctx;
    return strcmp(v->price->id, id) ? NULL : v->price;
}

START_TEST(test_place_sees_copy_updates)
{
    /* the batch loop applies copy events in log order with the commands: a user registered
     * or a product added just before a PlaceOrder is seen by it, and a later price change
     * prices later orders only */
    orders_user_t user;
    orders_price_t price;
    memset(&user, 0, sizeof(user));
    memset(&price, 0, sizeof(price));
    snprintf(user.id, sizeof(user.id), "carol");
    snprintf(price.id, sizeof(price.id), "p9");
    one_each_t view = {&user, &price};
    orders_copies_t c = {.user = one_user, .price = one_price, .ctx = &view};
    static const orders_item_t items[] = {{"p9", 3}};
    order_line_t lines[1];
    orders_event_t ev;
    order_t o;
    memset(&o, 0, sizeof(o));
    orders_input_t in = place("o-9", "carol", "acc-9", items, 1);

    ck_assert_int_eq(orders_decide(&o, &in, &c, lines, &ev), 1);
    ck_assert_str_eq(ev.reason, "UNKNOWN_USER");
    orders_input_t reg = copy_event(ORD_IN_USER_REGISTERED, "carol", 0, 1);
    ck_assert_int_eq(orders_user_apply(&user, &reg), 1);
    ck_assert_int_eq(orders_decide(&o, &in, &c, lines, &ev), 1);
    ck_assert_str_eq(ev.reason, "UNKNOWN_PRODUCT");
    orders_input_t add = copy_event(ORD_IN_PRODUCT_ADDED, "p9", 70, 1);
    ck_assert_int_eq(orders_price_apply(&price, &add), 1);
    ck_assert_int_eq(orders_decide(&o, &in, &c, lines, &ev), 1);
    ck_assert_int_eq(ev.kind, ORD_EV_ORDER_PLACED);
    orders_evolve(&o, &ev);
    ck_assert_int_eq(ev.lines[0].unit_price, 70);
    ck_assert_int_eq(ev.total, 210);

    orders_input_t change = copy_event(ORD_IN_PRICE_CHANGED, "p9", 80, 2);
    ck_assert_int_eq(orders_price_apply(&price, &change), 1);
    ck_assert_int_eq(o.total, 210); /* a placed order keeps its price */
    order_t o2;
    memset(&o2, 0, sizeof(o2));
    in = place("o-10", "carol", "acc-9", items, 1);
    ck_assert_int_eq(orders_decide(&o2, &in, &c, lines, &ev), 1);
    ck_assert_int_eq(ev.total, 240);

    orders_input_t deact = copy_event(ORD_IN_USER_DEACTIVATED, "carol", 0, 2);
    ck_assert_int_eq(orders_user_apply(&user, &deact), 1);
    ck_assert_int_eq(orders_decide(&o2, &in, &c, lines, &ev), 1);
    ck_assert_str_eq(ev.reason, "USER_INACTIVE");
}
END_TEST

/* ---- saga outcomes ---- */

static const struct {
    const char *name;
    orders_input_kind_t kind;
    int64_t amount;
    const char *reason;
    orders_event_kind_t event;
    order_status_t becomes;
} outcomes[] = {
    {"stock rejected", ORD_IN_STOCK_RESERVATION_REJECTED, 0, "OUT_OF_STOCK", ORD_EV_ORDER_REJECTED,
     ORDER_REJECTED},
    {"stock rejected, unknown product", ORD_IN_STOCK_RESERVATION_REJECTED, 0, "UNKNOWN_PRODUCT",
     ORD_EV_ORDER_REJECTED, ORDER_REJECTED},
    {"payment declined", ORD_IN_PAYMENT_DECLINED, 450, "INSUFFICIENT_FUNDS", ORD_EV_ORDER_REJECTED,
     ORDER_REJECTED},
    {"payment declined, merchant", ORD_IN_PAYMENT_DECLINED, 450, "MERCHANT_ACCOUNT_CLOSED",
     ORD_EV_ORDER_REJECTED, ORDER_REJECTED},
    {"payment captured", ORD_IN_PAYMENT_CAPTURED, 450, "", ORD_EV_ORDER_CONFIRMED, ORDER_CONFIRMED},
};
#define OUTCOMES_N ((int)(sizeof(outcomes) / sizeof(outcomes[0])))

START_TEST(test_outcome_from_pending)
{
    order_line_t made[2];
    order_t o = make_order(ORDER_PENDING, made);
    orders_input_t in = outcome(outcomes[_i].kind, "o-1", outcomes[_i].amount, outcomes[_i].reason);
    ck_assert_ptr_null(orders_input_invalid(&o, &in));
    orders_event_t ev;
    ck_assert_int_eq(orders_decide(&o, &in, NULL, NULL, &ev), 1);
    ck_assert_msg(ev.kind == outcomes[_i].event, "%s: kind %s", outcomes[_i].name,
                  orders_event_type(ev.kind));
    ck_assert_str_eq(ev.order_id, "o-1");
    if (ev.kind == ORD_EV_ORDER_CONFIRMED) {
        ck_assert_int_eq(ev.total, 450);
    } else {
        ck_assert_str_eq(ev.reason, outcomes[_i].reason);
    }
    orders_evolve(&o, &ev);
    ck_assert_int_eq(o.status, outcomes[_i].becomes);
    ck_assert_int_eq(o.version, 2);
    ck_assert_int_eq(o.total, 450);
    ck_assert_str_eq(o.reason, ev.kind == ORD_EV_ORDER_REJECTED ? outcomes[_i].reason : "");
}
END_TEST

/* Every outcome on every closed status: nothing happens, whatever the outcome says. */
START_TEST(test_outcome_late_changes_nothing)
{
    static const order_status_t closed[] = {ORDER_CONFIRMED, ORDER_REJECTED, ORDER_CANCELLED};
    for (int s = 0; s < 3; s++) {
        order_line_t made[2];
        order_t o = make_order(closed[s], made);
        order_t before = o;
        /* a capture of another amount is only a broken peer while it could still move */
        for (int64_t amount = 450; amount <= 451; amount++) {
            orders_input_t in = outcome(outcomes[_i].kind, "o-1", amount, outcomes[_i].reason);
            ck_assert_ptr_null(orders_input_invalid(&o, &in));
            orders_event_t ev;
            ck_assert_msg(orders_decide(&o, &in, NULL, NULL, &ev) == 0, "%s on %s emitted",
                          outcomes[_i].name, orders_status_name(closed[s]));
            ck_assert(same_order(&o, &before));
        }
    }
}
END_TEST

START_TEST(test_outcome_duplicate_changes_nothing)
{
    order_line_t made[2];
    order_t o = make_order(ORDER_PENDING, made);
    orders_input_t in = outcome(outcomes[_i].kind, "o-1", outcomes[_i].amount, outcomes[_i].reason);
    orders_event_t ev;
    ck_assert_int_eq(apply(&o, &in, NULL, &ev), 1);
    order_t after = o;
    ck_assert_int_eq(apply(&o, &in, NULL, &ev), 0);
    ck_assert(same_order(&o, &after));
}
END_TEST

START_TEST(test_outcome_dead_lettered)
{
    order_t missing;
    memset(&missing, 0, sizeof(missing));
    for (int i = 0; i < OUTCOMES_N; i++) {
        orders_input_t in = outcome(outcomes[i].kind, "o-404", outcomes[i].amount, "X");
        const char *why = orders_input_invalid(&missing, &in);
        ck_assert_ptr_nonnull(why);
        ck_assert_str_eq(why, "saga outcome for an unknown order");
        ck_assert_ptr_nonnull(orders_input_invalid(NULL, &in));
    }
    order_line_t made[2];
    order_t o = make_order(ORDER_PENDING, made);
    static const int64_t wrong[] = {0, 449, 451, -450, INT64_MAX};
    for (int i = 0; i < 5; i++) {
        orders_input_t in = outcome(ORD_IN_PAYMENT_CAPTURED, "o-1", wrong[i], "");
        ck_assert_ptr_nonnull(orders_input_invalid(&o, &in));
    }
    /* declines carry the attempted amount but it is not the order's business */
    orders_input_t in = outcome(ORD_IN_PAYMENT_DECLINED, "o-1", 1, "INSUFFICIENT_FUNDS");
    ck_assert_ptr_null(orders_input_invalid(&o, &in));
}
END_TEST

/* ---- a timed-out order saga (docs/SAGAS.md) ---- */

static orders_input_t timed_out(const char *order_id)
{
    orders_input_t in;
    memset(&in, 0, sizeof(in));
    in.kind = ORD_IN_SAGA_TIMED_OUT;
    snprintf(in.order_id, sizeof(in.order_id), "%s", order_id);
    return in;
}

START_TEST(test_timeout_rejects_pending)
{
    order_line_t made[2], lines[2];
    order_t o = make_order(ORDER_PENDING, made);
    orders_input_t in = timed_out("o-1");
    ck_assert_ptr_null(orders_input_invalid(&o, &in));
    orders_event_t ev;
    ck_assert_int_eq(orders_decide(&o, &in, NULL, NULL, &ev), 1);
    ck_assert_int_eq(ev.kind, ORD_EV_ORDER_REJECTED);
    ck_assert_str_eq(ev.reason, "TIMEOUT");
    ck_assert_str_eq(ev.order_id, "o-1");
    orders_evolve(&o, &ev);
    ck_assert_int_eq(o.status, ORDER_REJECTED);
    ck_assert_str_eq(o.reason, "TIMEOUT");
    ck_assert_int_eq(o.version, 2);
    ck_assert_int_eq(o.total, 450);
    ck_assert_str_eq(o.user_id, "ann");
    ck_assert(!orders_is_fence(&o)); /* it was placed: an ordinary rejection */

    /* the timeout again changes nothing; a PlaceOrder finds an order that exists */
    order_t before = o;
    ck_assert_int_eq(apply(&o, &in, NULL, &ev), 0);
    ck_assert(same_order(&o, &before));
    orders_input_t again = place("o-1", "ann", "acc-1", two_lines, 2);
    ck_assert_int_eq(apply(&o, &again, lines, &ev), 1);
    ck_assert_int_eq(ev.kind, ORD_EV_COMMAND_REJECTED);
    ck_assert_str_eq(ev.reason, "ORDER_EXISTS");
}
END_TEST

START_TEST(test_timeout_fences_unknown)
{
    order_line_t lines[2];
    order_t o;
    memset(&o, 0, sizeof(o));
    ck_assert(!orders_is_fence(&o));
    orders_input_t in = timed_out("o-1");
    ck_assert_ptr_null(orders_input_invalid(&o, &in)); /* unlike a saga outcome: decided */
    orders_event_t ev;
    ck_assert_int_eq(orders_decide(&o, &in, NULL, NULL, &ev), 1);
    ck_assert_int_eq(ev.kind, ORD_EV_ORDER_REJECTED);
    ck_assert_str_eq(ev.reason, "TIMEOUT");
    ck_assert_str_eq(ev.order_id, "o-1");
    orders_evolve(&o, &ev);
    ck_assert_int_eq(o.status, ORDER_REJECTED);
    ck_assert_str_eq(o.reason, "TIMEOUT");
    ck_assert_str_eq(o.id, "o-1");
    ck_assert_str_eq(o.user_id, "");
    ck_assert_int_eq(o.total, 0);
    ck_assert_uint_eq(o.nlines, 0);
    ck_assert_int_eq(o.version, 1); /* the fence is the order's first event */
    ck_assert(orders_is_fence(&o));

    /* the PlaceOrder that comes later: refused with TIMEOUT, not ORDER_EXISTS */
    order_t before = o;
    in = place("o-1", "ann", "acc-1", two_lines, 2);
    ck_assert_ptr_null(orders_input_invalid(&o, &in));
    ck_assert_int_eq(apply(&o, &in, lines, &ev), 1);
    ck_assert_int_eq(ev.kind, ORD_EV_COMMAND_REJECTED);
    ck_assert_str_eq(ev.reason, "TIMEOUT");
    ck_assert_str_eq(ev.command_type, "PlaceOrder");
    ck_assert_str_eq(ev.command_id, in.command_id);
    ck_assert_str_eq(ev.order_id, "o-1");
    ck_assert_int_eq(o.status, ORDER_REJECTED);
    ck_assert_str_eq(o.user_id, "");
    ck_assert_int_eq(o.total, 0);
    ck_assert_int_eq(o.version, before.version + 1);
    ck_assert(orders_is_fence(&o)); /* and stays a fence: a retry is refused the same way */
    ck_assert_int_eq(apply(&o, &in, lines, &ev), 1);
    ck_assert_str_eq(ev.reason, "TIMEOUT");

    /* the documented precedence: a malformed command is refused as such first */
    orders_input_t bad = place("o-1", "ann", "a b", two_lines, 2);
    ck_assert_int_eq(orders_decide(&o, &bad, &copies, lines, &ev), 1);
    ck_assert_str_eq(ev.reason, "INVALID_ID");
    bad = place("o-1", "ann", "acc-1", NULL, 0);
    ck_assert_int_eq(orders_decide(&o, &bad, &copies, lines, &ev), 1);
    ck_assert_str_eq(ev.reason, "INVALID_ORDER");
    /* a fence is closed: it cannot be cancelled, and a second timeout changes nothing */
    orders_input_t cancel = command(ORD_IN_CANCEL_ORDER, "o-1");
    ck_assert_int_eq(orders_decide(&o, &cancel, NULL, NULL, &ev), 1);
    ck_assert_str_eq(ev.reason, "ORDER_CLOSED");
    before = o;
    in = timed_out("o-1");
    ck_assert_int_eq(apply(&o, &in, NULL, &ev), 0);
    ck_assert(same_order(&o, &before));
}
END_TEST

/* An ordinary rejection (a placed order, with its user) is not a fence: PlaceOrder again
 * gets ORDER_EXISTS. Nor is anything but REJECTED with TIMEOUT and no user. */
START_TEST(test_fence_is_only_a_timeout_before_placement)
{
    order_line_t made[2], lines[2];
    order_t o = make_order(ORDER_REJECTED, made);
    ck_assert_str_eq(o.reason, "OUT_OF_STOCK");
    ck_assert(!orders_is_fence(&o));
    orders_input_t in = place("o-1", "ann", "acc-1", two_lines, 2);
    orders_event_t ev;
    ck_assert_int_eq(orders_decide(&o, &in, &copies, lines, &ev), 1);
    ck_assert_str_eq(ev.reason, "ORDER_EXISTS");

    static const order_status_t others[] = {ORDER_NONE, ORDER_PENDING, ORDER_CONFIRMED,
                                            ORDER_CANCELLED};
    for (size_t k = 0; k < sizeof(others) / sizeof(others[0]); k++) {
        o = make_order(others[k], made);
        ck_assert_msg(!orders_is_fence(&o), "%s is a fence", orders_status_name(others[k]));
    }
    /* a rejection without a user but for another reason is not a fence either */
    memset(&o, 0, sizeof(o));
    o.status = ORDER_REJECTED;
    snprintf(o.reason, sizeof(o.reason), "OUT_OF_STOCK");
    ck_assert(!orders_is_fence(&o));
    snprintf(o.reason, sizeof(o.reason), "TIMEOUT");
    ck_assert(orders_is_fence(&o)); /* as loaded from the store: REJECTED, TIMEOUT, no user */
}
END_TEST

/* A closed order: the saga already ended, the timeout changes nothing. */
static const order_status_t timeout_closed[] = {ORDER_CONFIRMED, ORDER_REJECTED, ORDER_CANCELLED};

START_TEST(test_timeout_on_closed_changes_nothing)
{
    order_line_t made[2];
    order_t o = make_order(timeout_closed[_i], made);
    order_t before = o;
    orders_input_t in = timed_out("o-1");
    ck_assert_ptr_null(orders_input_invalid(&o, &in));
    orders_event_t ev;
    ck_assert_msg(orders_decide(&o, &in, NULL, NULL, &ev) == 0, "timeout on %s emitted",
                  orders_status_name(timeout_closed[_i]));
    ck_assert(same_order(&o, &before));
}
END_TEST

/* Not an order saga's timeout (the wiring leaves "" then), or an id no order can have: no
 * fence is made. */
START_TEST(test_timeout_invalid_id)
{
    char long_id[ORD_ID_VALID_MAX + 2];
    memset(long_id, 'o', ORD_ID_VALID_MAX + 1);
    long_id[ORD_ID_VALID_MAX + 1] = '\0';
    const char *const ids[] = {"", "o 1", "o/1", "caf\xc3\xa9", long_id};
    for (size_t k = 0; k < sizeof(ids) / sizeof(ids[0]); k++) {
        order_t o;
        memset(&o, 0, sizeof(o));
        orders_input_t in = timed_out(ids[k]);
        orders_event_t ev;
        ck_assert_msg(orders_decide(&o, &in, NULL, NULL, &ev) == 0, "timeout of \"%s\" emitted",
                      ids[k]);
        ck_assert_int_eq(o.status, ORDER_NONE);
        ck_assert_int_eq(o.version, 0);
    }
    /* the longest valid id is fenced */
    long_id[ORD_ID_VALID_MAX] = '\0';
    order_t o;
    memset(&o, 0, sizeof(o));
    orders_input_t in = timed_out(long_id);
    orders_event_t ev;
    ck_assert_int_eq(apply(&o, &in, NULL, &ev), 1);
    ck_assert(orders_is_fence(&o));
}
END_TEST

/* Outcomes reaching an order the timeout rejected (placed or fenced): none moves it; above
 * all a PaymentCaptured never confirms it (payments refunds the charge). */
START_TEST(test_outcome_after_timeout_changes_nothing)
{
    for (int fence = 0; fence < 2; fence++) {
        order_line_t made[2];
        order_t o = make_order(fence ? ORDER_NONE : ORDER_PENDING, made);
        orders_input_t in = timed_out("o-1");
        orders_event_t ev;
        ck_assert_int_eq(apply(&o, &in, NULL, &ev), 1);
        ck_assert_int_eq(o.status, ORDER_REJECTED);
        ck_assert_int_eq(orders_is_fence(&o), fence);
        order_t before = o;
        for (int i = 0; i < OUTCOMES_N; i++) {
            in = outcome(outcomes[i].kind, "o-1", outcomes[i].amount, outcomes[i].reason);
            ck_assert_ptr_null(orders_input_invalid(&o, &in));
            ck_assert_msg(orders_decide(&o, &in, NULL, NULL, &ev) == 0,
                          "%s after a timeout (fence %d) emitted", outcomes[i].name, fence);
            ck_assert(same_order(&o, &before));
        }
        ck_assert_int_eq(o.status, ORDER_REJECTED);
        ck_assert_str_eq(o.reason, "TIMEOUT");
    }
}
END_TEST

/* ---- CancelOrder ---- */

START_TEST(test_cancel)
{
    static const order_status_t from[] = {ORDER_PENDING, ORDER_CONFIRMED};
    for (int s = 0; s < 2; s++) {
        order_line_t made[2];
        order_t o = make_order(from[s], made);
        int64_t v = o.version;
        orders_input_t in = command(ORD_IN_CANCEL_ORDER, "o-1");
        orders_event_t ev;
        ck_assert_int_eq(apply(&o, &in, NULL, &ev), 1);
        ck_assert_int_eq(ev.kind, ORD_EV_ORDER_CANCELLED);
        ck_assert_str_eq(ev.order_id, "o-1");
        ck_assert_str_eq(ev.previous_status, orders_status_name(from[s]));
        ck_assert_int_eq(o.status, ORDER_CANCELLED);
        ck_assert_int_eq(o.version, v + 1);
        ck_assert_int_eq(o.total, 450);
        /* a second cancel is refused and changes nothing but the version */
        ck_assert_int_eq(apply(&o, &in, NULL, &ev), 1);
        ck_assert_int_eq(ev.kind, ORD_EV_COMMAND_REJECTED);
        ck_assert_str_eq(ev.reason, "ORDER_CLOSED");
        ck_assert_int_eq(o.status, ORDER_CANCELLED);
        ck_assert_int_eq(o.version, v + 2);
    }
}
END_TEST

static const struct {
    order_status_t status;
    const char *reason;
} cancel_refusals[] = {
    {ORDER_NONE, "ORDER_NOT_FOUND"},
    {ORDER_REJECTED, "ORDER_CLOSED"},
    {ORDER_CANCELLED, "ORDER_CLOSED"},
};
#define CANCEL_REFUSALS_N ((int)(sizeof(cancel_refusals) / sizeof(cancel_refusals[0])))

START_TEST(test_cancel_refused)
{
    order_line_t made[2];
    order_t o = make_order(cancel_refusals[_i].status, made);
    order_t before = o;
    orders_input_t in = command(ORD_IN_CANCEL_ORDER, "o-1");
    orders_event_t ev;
    ck_assert_int_eq(apply(&o, &in, NULL, &ev), 1);
    ck_assert_int_eq(ev.kind, ORD_EV_COMMAND_REJECTED);
    ck_assert_str_eq(ev.reason, cancel_refusals[_i].reason);
    ck_assert_str_eq(ev.command_type, "CancelOrder");
    ck_assert_str_eq(ev.command_id, in.command_id);
    ck_assert_str_eq(ev.order_id, "o-1");
    ck_assert_int_eq(o.status, before.status);
    ck_assert_str_eq(o.reason, before.reason);
    ck_assert_int_eq(o.version, before.status == ORDER_NONE ? 0 : before.version + 1);
}
END_TEST

/* ---- the local copies ---- */

START_TEST(test_price_version_rule)
{
    orders_price_t p;
    memset(&p, 0, sizeof(p));
    orders_input_t in = copy_event(ORD_IN_PRODUCT_ADDED, "p1", 100, 1);
    ck_assert_int_eq(orders_price_apply(&p, &in), 1);
    ck_assert_str_eq(p.id, "p1");
    ck_assert_int_eq(p.price, 100);
    ck_assert_int_eq(p.version, 1);
    in = copy_event(ORD_IN_PRICE_CHANGED, "p1", 300, 3);
    ck_assert_int_eq(orders_price_apply(&p, &in), 1);
    ck_assert_int_eq(p.price, 300);
    ck_assert_int_eq(p.version, 3);
    /* older: an earlier change arriving late does not overwrite the newer price */
    in = copy_event(ORD_IN_PRICE_CHANGED, "p1", 200, 2);
    ck_assert_int_eq(orders_price_apply(&p, &in), 0);
    ck_assert_int_eq(p.price, 300);
    ck_assert_int_eq(p.version, 3);
    /* the same version again (a duplicate) */
    in = copy_event(ORD_IN_PRICE_CHANGED, "p1", 999, 3);
    ck_assert_int_eq(orders_price_apply(&p, &in), 0);
    ck_assert_int_eq(p.price, 300);
    /* a replayed ProductAdded */
    in = copy_event(ORD_IN_PRODUCT_ADDED, "p1", 100, 1);
    ck_assert_int_eq(orders_price_apply(&p, &in), 0);
    ck_assert_int_eq(p.price, 300);
    /* a change the copy missed the addition of still records the newer price */
    orders_price_t q;
    memset(&q, 0, sizeof(q));
    in = copy_event(ORD_IN_PRICE_CHANGED, "p2", 40, 5);
    ck_assert_int_eq(orders_price_apply(&q, &in), 1);
    ck_assert_int_eq(q.price, 40);
    ck_assert_int_eq(q.version, 5);
}
END_TEST

START_TEST(test_user_version_rule)
{
    orders_user_t u;
    memset(&u, 0, sizeof(u));
    orders_input_t reg = copy_event(ORD_IN_USER_REGISTERED, "ann", 0, 1);
    orders_input_t deact = copy_event(ORD_IN_USER_DEACTIVATED, "ann", 0, 4);
    ck_assert_int_eq(orders_user_apply(&u, &reg), 1);
    ck_assert_str_eq(u.id, "ann");
    ck_assert_int_eq(u.active, 1);
    ck_assert_int_eq(u.version, 1);
    ck_assert_int_eq(orders_user_apply(&u, &deact), 1);
    ck_assert_int_eq(u.active, 0);
    ck_assert_int_eq(u.version, 4);
    /* a replayed registration does not bring a deactivated user back */
    ck_assert_int_eq(orders_user_apply(&u, &reg), 0);
    ck_assert_int_eq(u.active, 0);
    ck_assert_int_eq(orders_user_apply(&u, &deact), 0);
    ck_assert_int_eq(u.version, 4);
}
END_TEST

static const struct {
    const char *name;
    orders_input_kind_t kind;
    const char *id;
    int64_t price, version;
    int invalid;
} copy_checks[] = {
    {"user ok", ORD_IN_USER_REGISTERED, "ann", 0, 1, 0},
    {"user empty id", ORD_IN_USER_REGISTERED, "", 0, 1, 1},
    {"user bad id", ORD_IN_USER_DEACTIVATED, "a b", 0, 2, 1},
    {"user version 0", ORD_IN_USER_DEACTIVATED, "ann", 0, 0, 1},
    {"user negative version", ORD_IN_USER_REGISTERED, "ann", 0, -1, 1},
    {"product ok", ORD_IN_PRODUCT_ADDED, "p1", 1, 1, 0},
    {"price ok", ORD_IN_PRICE_CHANGED, "p1", 5, 7, 0},
    {"product bad id", ORD_IN_PRODUCT_ADDED, "p/1", 1, 1, 1},
    {"product zero price", ORD_IN_PRODUCT_ADDED, "p1", 0, 1, 1},
    {"price negative", ORD_IN_PRICE_CHANGED, "p1", -5, 2, 1},
    {"price version 0", ORD_IN_PRICE_CHANGED, "p1", 5, 0, 1},
};
#define COPY_CHECKS_N ((int)(sizeof(copy_checks) / sizeof(copy_checks[0])))

START_TEST(test_copy_event_invalid)
{
    orders_input_t in = copy_event(copy_checks[_i].kind, copy_checks[_i].id, copy_checks[_i].price,
                                   copy_checks[_i].version);
    const char *why = orders_input_invalid(NULL, &in);
    ck_assert_msg((why != NULL) == copy_checks[_i].invalid, "%s: %s", copy_checks[_i].name,
                  why ? why : "valid");
}
END_TEST

/* ---- names and ids ---- */

START_TEST(test_names)
{
    static const char *const accepted[] = {
        "PlaceOrder",      "CancelOrder",  "UserRegistered",           "UserDeactivated",
        "ProductAdded",    "PriceChanged", "StockReservationRejected", "PaymentCaptured",
        "PaymentDeclined", "SagaTimedOut"};
    for (int i = 0; i < ORD_IN__COUNT; i++) {
        ck_assert_int_eq(orders_input_kind(accepted[i]), i);
        ck_assert_str_eq(orders_input_type((orders_input_kind_t)i), accepted[i]);
    }
    static const char *const ignored[] = {"OrderPlaced",
                                          "EmailChanged",
                                          "StockReserved",
                                          "RegisterUser",
                                          "PaymentRequested",
                                          "placeorder",
                                          ""};
    for (int i = 0; i < 7; i++) {
        ck_assert_int_eq(orders_input_kind(ignored[i]), -1);
    }
    ck_assert_str_eq(orders_event_type(ORD_EV_ORDER_PLACED), "OrderPlaced");
    ck_assert_str_eq(orders_event_type(ORD_EV_ORDER_CONFIRMED), "OrderConfirmed");
    ck_assert_str_eq(orders_event_type(ORD_EV_ORDER_REJECTED), "OrderRejected");
    ck_assert_str_eq(orders_event_type(ORD_EV_ORDER_CANCELLED), "OrderCancelled");
    ck_assert_str_eq(orders_event_type(ORD_EV_COMMAND_REJECTED), "OrderCommandRejected");
    ck_assert_str_eq(orders_event_type(ORD_EV__COUNT), "?");
    for (int s = ORDER_PENDING; s < ORDER__COUNT; s++) {
        ck_assert_int_eq(orders_status_parse(orders_status_name((order_status_t)s)), s);
    }
    ck_assert_int_eq(orders_status_parse("SHIPPED"), ORDER_NONE);
    ck_assert_int_eq(orders_input_target(ORD_IN_USER_DEACTIVATED), ORD_TARGET_USER);
    ck_assert_int_eq(orders_input_target(ORD_IN_PRICE_CHANGED), ORD_TARGET_PRODUCT);
    ck_assert_int_eq(orders_input_target(ORD_IN_PAYMENT_CAPTURED), ORD_TARGET_ORDER);
    ck_assert_int_eq(orders_input_target(ORD_IN_CANCEL_ORDER), ORD_TARGET_ORDER);
    ck_assert_int_eq(orders_input_target(ORD_IN_SAGA_TIMED_OUT), ORD_TARGET_ORDER);
    ck_assert_int_eq(orders_input_kind("SagaTimedOut"), ORD_IN_SAGA_TIMED_OUT);
}
END_TEST

START_TEST(test_id_valid)
{
    char id[ORD_ID_MAX];
    memset(id, 'a', sizeof(id));
    id[ORD_ID_VALID_MAX] = '\0';
    ck_assert(orders_id_valid(id)); /* 100 characters */
    id[ORD_ID_VALID_MAX] = 'a';
    id[ORD_ID_VALID_MAX + 1] = '\0';
    ck_assert(!orders_id_valid(id)); /* 101 */
    ck_assert(orders_id_valid("Az09._:-"));
    ck_assert(!orders_id_valid(""));
    ck_assert(!orders_id_valid("a\tb"));
    /* a 101-character order id is refused as INVALID_ID */
    order_line_t lines[2];
    orders_event_t ev;
    order_t o;
    memset(&o, 0, sizeof(o));
    orders_input_t in = place(id, "ann", "acc-1", two_lines, 2);
    ck_assert_int_eq(orders_decide(&o, &in, &copies, lines, &ev), 1);
    ck_assert_str_eq(ev.reason, "INVALID_ID");
    /* a 101-character product id is an invalid line */
    orders_item_t long_item[] = {{id, 1}};
    in = place("o-1", "ann", "acc-1", long_item, 1);
    ck_assert_int_eq(orders_decide(&o, &in, &copies, lines, &ev), 1);
    ck_assert_str_eq(ev.reason, "INVALID_ORDER");
}
END_TEST

/* ---- property: closed orders never move ---- */

START_TEST(test_property_closed_orders_stay_closed)
{
    srand(20240611);
    static const char *const ids[] = {"o-1", "o-2", "o-3", "o-4"};
    static const char *const users[] = {"ann", "bob", "zed"};
    static const orders_item_t choices[][2] = {
        {{"p1", 2}, {"p2", 1}}, {{"p2", 1}, {"nope", 1}}, {{"p1", 0}, {"p1", 1}}};
    order_t orders[4];
    order_line_t lines[4][2];
    memset(orders, 0, sizeof(orders));
    int events[4] = {0}, placed = 0, confirmed = 0, rejected = 0, cancelled = 0;
    for (int step = 0; step < 20000; step++) {
        int k = rand() % 4;
        order_t *o = &orders[k];
        order_t before = *o;
        orders_input_t in;
        int pick = rand() % 5;
        if (pick == 0) {
            in = place(ids[k], users[rand() % 3], "acc-1", choices[rand() % 3], 2);
        } else if (pick == 1) {
            in = command(ORD_IN_CANCEL_ORDER, ids[k]);
        } else {
            static const orders_input_kind_t kinds[] = {ORD_IN_STOCK_RESERVATION_REJECTED,
                                                        ORD_IN_PAYMENT_CAPTURED,
                                                        ORD_IN_PAYMENT_DECLINED};
            in = outcome(kinds[pick - 2], ids[k], o->total, "R");
            if (orders_input_invalid(o, &in)) {
                ck_assert_int_eq(o->status, ORDER_NONE);
                continue;
            }
        }
        orders_event_t ev;
        int n = apply(o, &in, lines[k], &ev);
        if (n && o->status != ORDER_NONE) {
            events[k]++;
        }
        ck_assert_int_eq(o->version, events[k]);
        if (before.status == ORDER_REJECTED || before.status == ORDER_CANCELLED) {
            ck_assert_int_eq(o->status, before.status);
            ck_assert_str_eq(o->reason, before.reason);
        }
        if (before.status == ORDER_CONFIRMED) {
            ck_assert(o->status == ORDER_CONFIRMED || o->status == ORDER_CANCELLED);
        }
        if (o->status == ORDER_CONFIRMED && before.status != ORDER_CONFIRMED) {
            ck_assert_int_eq(before.status, ORDER_PENDING);
            confirmed++;
        }
        if (o->status != ORDER_NONE) {
            ck_assert_int_eq(o->total, 450); /* only the first choice is ever placed */
        }
        placed += before.status == ORDER_NONE && o->status == ORDER_PENDING;
        rejected += before.status != ORDER_REJECTED && o->status == ORDER_REJECTED;
        cancelled += before.status != ORDER_CANCELLED && o->status == ORDER_CANCELLED;
        if (o->status != ORDER_NONE && o->status != before.status && before.status != ORDER_NONE) {
            ck_assert(before.status == ORDER_PENDING || before.status == ORDER_CONFIRMED);
        }
    }
    ck_assert_int_gt(placed, 0);
    ck_assert_int_gt(confirmed + rejected + cancelled, 0);
}
END_TEST

Suite *orders_domain_suite(void);

Suite *orders_domain_suite(void)
{
    for (int k = 0; k < MANY; k++) {
        many_items[k].product_id = "p1";
        many_items[k].quantity = 1;
    }
    Suite *s = suite_create("orders_domain");

    TCase *tc = tcase_create("place");
    tcase_add_loop_test(tc, test_place_rejected, 0, PLACE_REJECTIONS_N);
    tcase_add_test(tc, test_place_priced_from_copy);
    tcase_add_test(tc, test_place_total_limits);
    tcase_add_test(tc, test_place_sees_copy_updates);
    suite_add_tcase(s, tc);

    tc = tcase_create("saga");
    tcase_add_loop_test(tc, test_outcome_from_pending, 0, OUTCOMES_N);
    tcase_add_loop_test(tc, test_outcome_late_changes_nothing, 0, OUTCOMES_N);
    tcase_add_loop_test(tc, test_outcome_duplicate_changes_nothing, 0, OUTCOMES_N);
    tcase_add_test(tc, test_outcome_dead_lettered);
    suite_add_tcase(s, tc);

    tc = tcase_create("timeout");
    tcase_add_test(tc, test_timeout_rejects_pending);
    tcase_add_test(tc, test_timeout_fences_unknown);
    tcase_add_test(tc, test_fence_is_only_a_timeout_before_placement);
    tcase_add_loop_test(tc, test_timeout_on_closed_changes_nothing, 0,
                        (int)(sizeof(timeout_closed) / sizeof(timeout_closed[0])));
    tcase_add_test(tc, test_timeout_invalid_id);
    tcase_add_test(tc, test_outcome_after_timeout_changes_nothing);
    suite_add_tcase(s, tc);

    tc = tcase_create("cancel");
    tcase_add_test(tc, test_cancel);
    tcase_add_loop_test(tc, test_cancel_refused, 0, CANCEL_REFUSALS_N);
    suite_add_tcase(s, tc);

    tc = tcase_create("copies");
    tcase_add_test(tc, test_price_version_rule);
    tcase_add_test(tc, test_user_version_rule);
    tcase_add_loop_test(tc, test_copy_event_invalid, 0, COPY_CHECKS_N);
    suite_add_tcase(s, tc);

    tc = tcase_create("names");
    tcase_add_test(tc, test_names);
    tcase_add_test(tc, test_id_valid);
    suite_add_tcase(s, tc);

    tc = tcase_create("property");
    tcase_add_test(tc, test_property_closed_orders_stay_closed);
    suite_add_tcase(s, tc);
    return s;
}
