/*
 * domain.c: the orders context's decide/evolve and its local copies' version rule (see
 * domain.h). Pure: no I/O, no clock.
 */
#include "str.h"
#include "domain.h"

#include <string.h>

static const char *const input_types[ORD_IN__COUNT] = {
    "PlaceOrder",      "CancelOrder",  "UserRegistered",           "UserDeactivated",
    "ProductAdded",    "PriceChanged", "StockReservationRejected", "PaymentCaptured",
    "PaymentDeclined", "SagaTimedOut"};

static const char *const event_types[ORD_EV__COUNT] = {
    "OrderPlaced", "OrderConfirmed", "OrderRejected", "OrderCancelled", "OrderCommandRejected"};

static const char *const status_names[ORDER__COUNT] = {"NONE", "PENDING", "CONFIRMED", "REJECTED",
                                                       "CANCELLED"};

const char *orders_event_type(orders_event_kind_t kind)
{
    return kind < ORD_EV__COUNT ? event_types[kind] : "?";
}

const char *orders_input_type(orders_input_kind_t kind)
{
    return kind < ORD_IN__COUNT ? input_types[kind] : "?";
}

const char *orders_status_name(order_status_t status)
{
    return status < ORDER__COUNT ? status_names[status] : "?";
}

int orders_input_kind(const char *type)
{
    for (int i = 0; i < ORD_IN__COUNT; i++) {
        if (!strcmp(type, input_types[i])) {
            return i;
        }
    }
    return -1;
}

order_status_t orders_status_parse(const char *name)
{
    for (int i = ORDER_PENDING; i < ORDER__COUNT; i++) {
        if (!strcmp(name, status_names[i])) {
            return (order_status_t)i;
        }
    }
    return ORDER_NONE;
}

int orders_id_valid(const char *id)
{
    /* strnlen: a borrowed id may be arbitrarily long; one past the limit is enough to refuse */
    return es_str_id_valid(id, strnlen(id, ORD_ID_VALID_MAX + 1), ORD_ID_VALID_MAX);
}

orders_target_t orders_input_target(orders_input_kind_t kind)
{
    switch (kind) {
    case ORD_IN_USER_REGISTERED:
    case ORD_IN_USER_DEACTIVATED:
        return ORD_TARGET_USER;
    case ORD_IN_PRODUCT_ADDED:
    case ORD_IN_PRICE_CHANGED:
        return ORD_TARGET_PRODUCT;
    default:
        return ORD_TARGET_ORDER;
    }
}

const char *orders_input_invalid(const order_t *order, const orders_input_t *in)
{
    switch (in->kind) {
    case ORD_IN_USER_REGISTERED:
    case ORD_IN_USER_DEACTIVATED:
        if (!orders_id_valid(in->user_id)) {
            return "user event with an invalid user id";
        }
        return in->version < 1 ? "user event without a positive aggregate version" : NULL;
    case ORD_IN_PRODUCT_ADDED:
    case ORD_IN_PRICE_CHANGED:
        if (!orders_id_valid(in->product_id)) {
            return "product event with an invalid product id";
        }
        if (in->price <= 0) {
            return "product event with a non-positive price";
        }
        return in->version < 1 ? "product event without a positive aggregate version" : NULL;
    case ORD_IN_STOCK_RESERVATION_REJECTED:
    case ORD_IN_PAYMENT_CAPTURED:
    case ORD_IN_PAYMENT_DECLINED:
        if (!order || order->status == ORDER_NONE) {
            return "saga outcome for an unknown order";
        }
        if (in->kind == ORD_IN_PAYMENT_CAPTURED && order->status == ORDER_PENDING &&
            in->amount != order->total) {
            return "payment captured for an amount other than the order's total";
        }
        return NULL;
    default:
        return NULL; /* commands are refused with a rejection event instead */
    }
}

/* Fill *out as an OrderCommandRejected for `reason`; returns 1 (one event). */
static int reject_command(const char *reason, orders_event_t *out)
{
    out->kind = ORD_EV_COMMAND_REJECTED;
    es_str_copy(out->reason, sizeof(out->reason), reason);
    return 1;
}

/* The refusals that need nothing but the command itself. */
static const char *place_order_malformed(const orders_input_t *in)
{
    if (!orders_id_valid(in->order_id) || !orders_id_valid(in->user_id) ||
        !orders_id_valid(in->account_id)) {
        return "INVALID_ID";
    }
    if (in->nitems == 0 || in->nitems > ORD_ITEMS_MAX || !in->items) {
        return "INVALID_ORDER";
    }
    for (size_t i = 0; i < in->nitems; i++) {
        if (in->items[i].quantity <= 0 || !orders_id_valid(in->items[i].product_id)) {
            return "INVALID_ORDER";
        }
    }
    return NULL;
}

/* PlaceOrder: the refusals in their documented order, then the priced OrderPlaced. */
static int decide_place(const order_t *order, const orders_input_t *in,
                        const orders_copies_t *copies, order_line_t *lines, orders_event_t *out)
{
    const char *why = place_order_malformed(in);
    if (why) {
        return reject_command(why, out);
    }
    if (order->status != ORDER_NONE) {
        return reject_command(orders_is_fence(order) ? "TIMEOUT" : "ORDER_EXISTS", out);
    }
    const orders_user_t *user = copies ? copies->user(copies->ctx, in->user_id) : NULL;
    if (!user || user->version == 0) {
        return reject_command("UNKNOWN_USER", out);
    }
    if (!user->active) {
        return reject_command("USER_INACTIVE", out);
    }
    for (size_t i = 0; i < in->nitems; i++) {
        const orders_price_t *p = copies->price(copies->ctx, in->items[i].product_id);
        if (!p || p->version == 0) {
            return reject_command("UNKNOWN_PRODUCT", out);
        }
        lines[i].product_id = in->items[i].product_id;
        lines[i].quantity = in->items[i].quantity;
        lines[i].unit_price = p->price;
    }
    int64_t total = 0;
    for (size_t i = 0; i < in->nitems; i++) {
        int64_t amount;
        if (__builtin_mul_overflow(lines[i].quantity, lines[i].unit_price, &amount) ||
            __builtin_add_overflow(total, amount, &total)) {
            return reject_command("INVALID_ORDER", out);
        }
    }
    out->kind = ORD_EV_ORDER_PLACED;
    es_str_copy(out->user_id, sizeof(out->user_id), in->user_id);
    es_str_copy(out->account_id, sizeof(out->account_id), in->account_id);
    out->lines = lines;
    out->nlines = in->nitems;
    out->total = total;
    return 1;
}

/* CancelOrder: open orders (PENDING, CONFIRMED) are cancelled, the rest refused. */
static int decide_cancel(const order_t *order, orders_event_t *out)
{
    switch (order->status) {
    case ORDER_PENDING:
    case ORDER_CONFIRMED:
        out->kind = ORD_EV_ORDER_CANCELLED;
        out->previous_status = status_names[order->status];
        return 1;
    case ORDER_NONE:
        return reject_command("ORDER_NOT_FOUND", out);
    default:
        return reject_command("ORDER_CLOSED", out);
    }
}

/* A saga outcome moves a PENDING order only: anything else is late or duplicated. */
static int decide_outcome(const order_t *order, const orders_input_t *in, orders_event_t *out)
{
    if (order->status != ORDER_PENDING) {
        return 0;
    }
    if (in->kind == ORD_IN_PAYMENT_CAPTURED) {
        out->kind = ORD_EV_ORDER_CONFIRMED;
        out->total = order->total;
    } else {
        out->kind = ORD_EV_ORDER_REJECTED;
        es_str_copy(out->reason, sizeof(out->reason), in->reason);
    }
    return 1;
}

int orders_is_fence(const order_t *order)
{
    return order->status == ORDER_REJECTED && !order->user_id[0] &&
           !strcmp(order->reason, "TIMEOUT");
}

/* SagaTimedOut: the orders service decides how the saga ends (see domain.h). */
static int decide_timeout(const order_t *order, const orders_input_t *in, orders_event_t *out)
{
    if (!orders_id_valid(in->order_id) ||
        (order->status != ORDER_PENDING && order->status != ORDER_NONE)) {
        return 0;
    }
    out->kind = ORD_EV_ORDER_REJECTED;
    es_str_copy(out->reason, sizeof(out->reason), "TIMEOUT");
    return 1;
}

int orders_decide(const order_t *order, const orders_input_t *in, const orders_copies_t *copies,
                  order_line_t *lines, orders_event_t *out)
{
    memset(out, 0, sizeof(*out));
    es_str_copy(out->order_id, sizeof(out->order_id), in->order_id);
    switch (in->kind) {
    case ORD_IN_PLACE_ORDER:
    case ORD_IN_CANCEL_ORDER:
        out->command_type = input_types[in->kind];
        es_str_copy(out->command_id, sizeof(out->command_id), in->command_id);
        return in->kind == ORD_IN_PLACE_ORDER ? decide_place(order, in, copies, lines, out)
                                              : decide_cancel(order, out);
    case ORD_IN_STOCK_RESERVATION_REJECTED:
    case ORD_IN_PAYMENT_CAPTURED:
    case ORD_IN_PAYMENT_DECLINED:
        return decide_outcome(order, in, out);
    case ORD_IN_SAGA_TIMED_OUT:
        return decide_timeout(order, in, out);
    default:
        return 0; /* copy events are applied with orders_user_apply / orders_price_apply */
    }
}

void orders_evolve(order_t *order, const orders_event_t *ev)
{
    switch (ev->kind) {
    case ORD_EV_ORDER_PLACED:
        es_str_copy(order->id, sizeof(order->id), ev->order_id);
        es_str_copy(order->user_id, sizeof(order->user_id), ev->user_id);
        es_str_copy(order->account_id, sizeof(order->account_id), ev->account_id);
        order->lines = ev->lines;
        order->nlines = ev->nlines;
        order->total = ev->total;
        order->status = ORDER_PENDING;
        order->reason[0] = '\0';
        break;
    case ORD_EV_ORDER_CONFIRMED:
        order->status = ORDER_CONFIRMED;
        break;
    case ORD_EV_ORDER_REJECTED:
        if (order->status == ORDER_NONE) { /* a timeout's fence */
            es_str_copy(order->id, sizeof(order->id), ev->order_id);
        }
        order->status = ORDER_REJECTED;
        es_str_copy(order->reason, sizeof(order->reason), ev->reason);
        break;
    case ORD_EV_ORDER_CANCELLED:
        order->status = ORDER_CANCELLED;
        break;
    default: /* rejections change nothing but the stream position */
        break;
    }
    if (order->status != ORDER_NONE) {
        order->version++;
    }
}

int orders_user_apply(orders_user_t *user, const orders_input_t *in)
{
    if (in->version <= user->version) {
        return 0; /* older or the same: the copy already knows better */
    }
    es_str_copy(user->id, sizeof(user->id), in->user_id);
    user->active = in->kind == ORD_IN_USER_REGISTERED;
    user->version = in->version;
    return 1;
}

int orders_price_apply(orders_price_t *price, const orders_input_t *in)
{
    if (in->version <= price->version) {
        return 0; /* older or the same: the copy already knows better */
    }
    es_str_copy(price->id, sizeof(price->id), in->product_id);
    price->price = in->price;
    price->version = in->version;
    return 1;
}
