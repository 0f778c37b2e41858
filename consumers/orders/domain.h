/*
 * domain.h: the orders context's rules, as pure functions (no I/O):
 *
 *   orders_decide(order, input, copies) -> the event the input causes (or none)
 *   orders_evolve(order, event)         -> the order after the event
 *   orders_user_apply / orders_price_apply -> the local copies after a users / catalog event
 *
 * An order is priced from the service's own copy of the catalog's prices and checked against
 * its own copy of the users (docs/SHOP.md, section "orders"); both copies are fed by the same
 * batch loop, in log order with the commands, and only ever move to a newer version of the
 * user or product. The saga's outcomes (stock rejected, payment captured or declined) move a
 * PENDING order only: a late or duplicated outcome never moves a closed order.
 *
 * The orders service decides what a timed-out order saga becomes (docs/SAGAS.md): a PENDING
 * order is rejected with TIMEOUT (the others compensate on OrderRejected); an order not placed
 * yet is fenced, rejected with TIMEOUT before it exists, so that its PlaceOrder, when it comes,
 * is refused with TIMEOUT instead of starting work nobody waits for any more.
 */
#ifndef ORDERS_DOMAIN_H
#define ORDERS_DOMAIN_H

#include <stddef.h>
#include <stdint.h>

/* Buffers are larger than the longest valid id, so a too-long id is still too long (and
 * invalid) after a bounded copy. */
#define ORD_ID_MAX 128
#define ORD_ID_VALID_MAX 100 /* ids: 1..100 characters of [A-Za-z0-9._:-] */
#define ORD_REASON_MAX 64
#define ORD_ITEMS_MAX 100 /* lines an order may have */

typedef enum {
    ORDER_NONE = 0, /* no such order */
    ORDER_PENDING,
    ORDER_CONFIRMED,
    ORDER_REJECTED,
    ORDER_CANCELLED,
    ORDER__COUNT
} order_status_t;

/* One priced line. */
typedef struct order_line {
    const char *product_id; /* borrowed from the PlaceOrder input's item */
    int64_t quantity;
    int64_t unit_price; /* minor units, from the local copy when placed */
} order_line_t;

typedef struct order {
    char id[ORD_ID_MAX];
    char user_id[ORD_ID_MAX];
    char account_id[ORD_ID_MAX];
    /* The lines (borrowed from the OrderPlaced event, i.e. the caller's storage) of an order
     * placed by the current batch, so that the store can insert them; NULL/0 for an order
     * loaded from the store: no rule after placement needs them. */
    const order_line_t *lines;
    size_t nlines;
    int64_t total; /* sum of quantity * unit_price, minor units */
    order_status_t status;
    char reason[ORD_REASON_MAX]; /* REJECTED: why */
    int64_t version;             /* events of this order so far, rejections included */
    /* The order's saga (the PlaceOrder's correlation id): its cancellation joins it. "" for
     * orders stored before it was kept. Set by the wiring, not by the rules. */
    char correlation_id[40];
} order_t;

/* The local copy of one user: version 0 means the copy has never heard of it. */
typedef struct orders_user {
    char id[ORD_ID_MAX];
    int active;
    int64_t version; /* the user's aggregate version in the last event applied */
} orders_user_t;

/* The local copy of one product's price: version 0 means the copy has never heard of it. */
typedef struct orders_price {
    char id[ORD_ID_MAX];
    int64_t price;   /* minor units */
    int64_t version; /* the product's aggregate version in the last event applied */
} orders_price_t;

typedef enum {
    ORD_IN_PLACE_ORDER = 0,
    ORD_IN_CANCEL_ORDER,
    ORD_IN_USER_REGISTERED,            /* users.events: copy */
    ORD_IN_USER_DEACTIVATED,           /* users.events: copy */
    ORD_IN_PRODUCT_ADDED,              /* catalog.events: copy */
    ORD_IN_PRICE_CHANGED,              /* catalog.events: copy */
    ORD_IN_STOCK_RESERVATION_REJECTED, /* catalog.events: saga outcome */
    ORD_IN_PAYMENT_CAPTURED,           /* payments.events: saga outcome */
    ORD_IN_PAYMENT_DECLINED,           /* payments.events: saga outcome */
    ORD_IN_SAGA_TIMED_OUT,             /* sagas.events: the order's saga missed its deadline */
    ORD_IN__COUNT
} orders_input_kind_t;

/* What an input reads and changes. */
typedef enum { ORD_TARGET_ORDER = 0, ORD_TARGET_USER, ORD_TARGET_PRODUCT } orders_target_t;

/* One line of a PlaceOrder, as given. */
typedef struct orders_item {
    const char *product_id; /* borrowed (the input payload); never NULL ("" when missing) */
    int64_t quantity;
} orders_item_t;

/* A command or an upstream event, as the rules need it. Strings are NUL-terminated copies
 * except the items, which are borrowed. */
typedef struct orders_input {
    orders_input_kind_t kind;
    char command_id[40];         /* commands: their id, echoed in rejections */
    char order_id[ORD_ID_MAX];   /* commands and saga outcomes */
    char user_id[ORD_ID_MAX];    /* PlaceOrder, user events */
    char account_id[ORD_ID_MAX]; /* PlaceOrder */
    char product_id[ORD_ID_MAX]; /* product events */
    /* PlaceOrder: the number of lines in the command and, when 1..ORD_ITEMS_MAX, the lines
     * themselves (borrowed); items may be NULL when nitems is 0 or above ORD_ITEMS_MAX. */
    const orders_item_t *items;
    size_t nitems;
    int64_t amount;              /* PaymentCaptured: what was charged */
    int64_t price;               /* ProductAdded, PriceChanged */
    int64_t version;             /* copy events: the envelope's aggregate_version */
    char reason[ORD_REASON_MAX]; /* StockReservationRejected, PaymentDeclined */
} orders_input_t;

typedef enum {
    ORD_EV_ORDER_PLACED = 0,
    ORD_EV_ORDER_CONFIRMED,
    ORD_EV_ORDER_REJECTED,
    ORD_EV_ORDER_CANCELLED,
    ORD_EV_COMMAND_REJECTED,
    ORD_EV__COUNT
} orders_event_kind_t;

typedef struct orders_event {
    orders_event_kind_t kind;
    char order_id[ORD_ID_MAX]; /* the aggregate */
    char user_id[ORD_ID_MAX];
    char account_id[ORD_ID_MAX];
    const order_line_t *lines; /* OrderPlaced: the priced lines (the caller's storage) */
    size_t nlines;
    int64_t total;               /* OrderPlaced, OrderConfirmed */
    char reason[ORD_REASON_MAX]; /* OrderRejected, OrderCommandRejected */
    const char *previous_status; /* OrderCancelled: static string */
    char command_id[40];         /* OrderCommandRejected */
    const char *command_type;    /* OrderCommandRejected: static string */
} orders_event_t;

/* Read access to the local copies while deciding (the wiring's working set, the tests'
 * tables). Each lookup returns the entry (borrowed) or NULL when the copy does not know the
 * id (an entry with version 0 counts as unknown too). */
typedef struct orders_copies {
    const orders_user_t *(*user)(const void *ctx, const char *user_id);
    const orders_price_t *(*price)(const void *ctx, const char *product_id);
    const void *ctx;
} orders_copies_t;

/* Which kind of state `kind` reads and changes. */
orders_target_t orders_input_target(orders_input_kind_t kind);

/* Upstream events must make sense before any rule runs: returns NULL when `in` can be
 * applied, else why not. `order` (borrowed; NULL for copy events) is the order a saga outcome
 * names. Refused: a copy event with an invalid id, a version below 1 or a non-positive price;
 * a saga outcome for an order that does not exist; a capture of an amount other than the
 * pending order's total. The wiring dead-letters such inputs: they mean a peer is broken, and
 * guessing would corrupt an order. Commands are never refused here (they get rejections). */
const char *orders_input_invalid(const order_t *order, const orders_input_t *in);

/* Decide what the command or saga outcome `in` causes for `order` (status ORDER_NONE when it
 * does not exist), reading the local copies through `copies` (PlaceOrder only; may be NULL
 * otherwise). `lines` is room for in->nitems lines (caller's storage, may be NULL unless `in`
 * is a PlaceOrder with 1..ORD_ITEMS_MAX items): an OrderPlaced fills it and points out->lines
 * at it. Returns the number of events written to *out: 1, or 0 when the input changes nothing
 * (an outcome for an order that is no longer PENDING).
 *
 * PlaceOrder's refusals, checked in this order: INVALID_ID (order, user or account id),
 * INVALID_ORDER (no lines, more than ORD_ITEMS_MAX, a quantity <= 0, an invalid product id),
 * ORDER_EXISTS (TIMEOUT when the order is a timeout's fence), UNKNOWN_USER, USER_INACTIVE,
 * UNKNOWN_PRODUCT, then INVALID_ORDER again when the total overflows int64 (pricing needs
 * every product known first).
 *
 * SagaTimedOut (in->order_id: the saga's subject): a PENDING order, or one that does not exist
 * yet, is rejected with TIMEOUT; anything else (an invalid id, a closed order) changes nothing. */
int orders_decide(const order_t *order, const orders_input_t *in, const orders_copies_t *copies,
                  order_line_t *lines, orders_event_t *out);

/* Apply `ev` to `order` in place. Rejections of a missing order leave it missing (version 0);
 * every other event counts in the version. An OrderPlaced makes order->lines borrow ev->lines. */
void orders_evolve(order_t *order, const orders_event_t *ev);

/* Apply a UserRegistered / UserDeactivated `in` to the copy `user` when in->version is newer
 * than user->version. Returns 1 when the copy changed, 0 when the event was not newer. */
int orders_user_apply(orders_user_t *user, const orders_input_t *in);

/* Apply a ProductAdded / PriceChanged `in` to the copy `price` when in->version is newer than
 * price->version. Returns 1 when the copy changed, 0 when the event was not newer. */
int orders_price_apply(orders_price_t *price, const orders_input_t *in);

/* Names used on the wire and in the store (static strings). */
const char *orders_event_type(orders_event_kind_t kind);
const char *orders_input_type(orders_input_kind_t kind);
const char *orders_status_name(order_status_t status);
/* The input kind for a type name, or -1. */
int orders_input_kind(const char *type);
/* The status for a stored name, or ORDER_NONE when unknown. */
order_status_t orders_status_parse(const char *name);

/* True when `order` is a timeout's fence: rejected with TIMEOUT before it was ever placed. */
int orders_is_fence(const order_t *order);

/* True when `id` is usable as an id: 1..ORD_ID_VALID_MAX characters of [A-Za-z0-9._:-]. */
int orders_id_valid(const char *id);

#endif
