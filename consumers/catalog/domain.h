/*
 * domain.h: the catalog context's rules, as pure functions (no I/O, no clock):
 *
 *   catalog_product_decide(product, command) -> the event the command causes
 *   catalog_product_evolve(product, event)   -> the product after it
 *   catalog_stock_decide(reservation, products, saga input) -> the event, or nothing
 *   catalog_stock_evolve(reservation, products, event)      -> both after it
 *
 * Commands (AddProduct, ChangePrice, RestockProduct) concern one product. The order saga's
 * inputs (OrderPlaced, OrderCancelled, PaymentCaptured, PaymentDeclined) concern one order's
 * reservation and the products its lines name: the caller resolves every line to its product
 * (catalog_stock_lines() says which lines) and hands the rules an array of pointers aligned
 * with those lines, so the rules stay pure while the wiring owns the batch's working set.
 * Invariants kept for every product: 0 <= reserved <= on_hand (docs/SHOP.md, "catalog").
 */
#ifndef CATALOG_DOMAIN_H
#define CATALOG_DOMAIN_H

#include <stddef.h>
#include <stdint.h>

#define CAT_ID_MAX 128     /* buffer size; valid ids are shorter (CAT_ID_CHARS) */
#define CAT_ID_CHARS 100   /* ids: 1..100 characters of [A-Za-z0-9._:-] */
#define CAT_NAME_CHARS 200 /* product names: 1..200 characters (UTF-8 code points) */
#define CAT_LINES_MAX 100  /* lines of one order */
#define CAT_COMMAND_ID_MAX 40
#define CAT_REASON_MAX 64

typedef struct catalog_product {
    char id[CAT_ID_MAX];
    /* The name of a product added in this batch, borrowed from its AddProduct input; NULL for
     * a product loaded from the table (the rules never read it back). */
    const char *name;
    int64_t price; /* minor units */
    int64_t on_hand;
    int64_t reserved;
    int64_t version; /* events that changed this product; 0: the product does not exist */
} catalog_product_t;

typedef enum {
    CAT_RES_NONE = 0, /* no reservation for this order yet */
    CAT_RES_RESERVED,
    CAT_RES_COMMITTED,
    CAT_RES_RELEASED, /* terminal */
    CAT_RES_REJECTED, /* terminal: never held anything */
    CAT_RES__COUNT
} catalog_res_status_t;

/* One order line: a product and its units. */
typedef struct catalog_line {
    char product_id[CAT_ID_MAX];
    int64_t quantity;
} catalog_line_t;

typedef struct catalog_reservation {
    char order_id[CAT_ID_MAX];
    catalog_res_status_t status;
    /* The order's lines as placed (duplicates kept), borrowed: from the batch's memory when
     * loaded, from the OrderPlaced input when created in this batch. */
    const catalog_line_t *lines;
    size_t nlines;
    int64_t version; /* events of this order emitted by the catalog; 0 with CAT_RES_NONE */
} catalog_reservation_t;

typedef enum {
    CAT_IN_ADD_PRODUCT = 0,
    CAT_IN_CHANGE_PRICE,
    CAT_IN_RESTOCK_PRODUCT,
    CAT_IN_ORDER_PLACED,     /* saga: reserve every line or none */
    CAT_IN_ORDER_CANCELLED,  /* saga: give the units back */
    CAT_IN_PAYMENT_CAPTURED, /* saga: the reserved units are sold */
    CAT_IN_PAYMENT_DECLINED, /* saga: release the reserved units */
    CAT_IN_ORDER_REJECTED,   /* saga: with reason TIMEOUT, undone like a cancel */
    CAT_IN__COUNT
} catalog_input_kind_t;

/* A command or an upstream event, as the rules need it. */
typedef struct catalog_input {
    catalog_input_kind_t kind;
    char command_id[CAT_COMMAND_ID_MAX]; /* commands: their id, echoed in rejections */
    char product_id[CAT_ID_MAX];         /* commands */
    const char *name;                    /* AddProduct, borrowed (never NULL for it) */
    int64_t price;                       /* AddProduct, ChangePrice */
    int64_t quantity;                    /* AddProduct: the first stock; RestockProduct: units */
    char order_id[CAT_ID_MAX];           /* saga inputs */
    char reason[CAT_REASON_MAX];         /* OrderRejected: why */
    /* OrderPlaced: its items, borrowed; NULL when there are none or more than CAT_LINES_MAX
     * (nlines still says how many there were, so the input is seen to be malformed). */
    const catalog_line_t *lines;
    size_t nlines;
} catalog_input_t;

typedef enum {
    CAT_EV_PRODUCT_ADDED = 0,
    CAT_EV_PRICE_CHANGED,
    CAT_EV_PRODUCT_RESTOCKED,
    CAT_EV_COMMAND_REJECTED,
    CAT_EV_STOCK_RESERVED,
    CAT_EV_STOCK_RESERVATION_REJECTED,
    CAT_EV_STOCK_COMMITTED,
    CAT_EV_STOCK_RELEASED,
    CAT_EV__COUNT
} catalog_event_kind_t;

typedef struct catalog_event {
    catalog_event_kind_t kind;
    /* Product events: the product (aggregate). StockReservationRejected: the first product
     * that failed. */
    char product_id[CAT_ID_MAX];
    const char *name;          /* ProductAdded: borrowed from the input */
    int64_t price;             /* ProductAdded, PriceChanged */
    int64_t old_price;         /* PriceChanged */
    int64_t quantity;          /* ProductRestocked: units added */
    int64_t on_hand;           /* product events: after the event */
    int64_t reserved;          /* product events: after the event */
    char order_id[CAT_ID_MAX]; /* saga events: the order (aggregate) */
    /* Saga events: the lines concerned, borrowed from the input or the reservation (valid as
     * long as they are). StockReservationRejected carries the order's items for the
     * reservation to keep, but not on the wire. */
    const catalog_line_t *lines;
    size_t nlines;
    /* Rejections and StockReleased: a static string ("OUT_OF_STOCK", "ORDER_CANCELLED"...);
     * NULL otherwise. */
    const char *reason;
    char command_id[CAT_COMMAND_ID_MAX];
    const char *command_type; /* CatalogCommandRejected: static string */
} catalog_event_t;

/* True when `in` is a command (AddProduct, ChangePrice, RestockProduct). */
int catalog_input_is_command(const catalog_input_t *in);

/* A saga input that no correct peer can send: returns why (a static string), or NULL when it
 * is well-formed. Checks the order id, and for OrderPlaced 1..CAT_LINES_MAX lines with valid
 * product ids and positive quantities. Needs no state: the wiring dead-letters such inputs
 * before loading anything. Commands are never malformed here (they are refused instead). */
const char *catalog_input_malformed(const catalog_input_t *in);

/* The lines whose products the saga input `in` may touch given the order's reservation `res`
 * (borrowed from either; *n set to their count): the reservation's lines while it holds
 * units (RESERVED, COMMITTED), the input's items for an OrderPlaced of a new order, none
 * otherwise (terminal reservations and inputs for an unknown order change nothing). */
const catalog_line_t *catalog_stock_lines(const catalog_reservation_t *res,
                                          const catalog_input_t *in, size_t *n);

/* A well-formed saga input that cannot be applied to the state without breaking an
 * invariant (stored state that disagrees with the reservation: fewer units reserved than it
 * holds, a product gone, on_hand that would overflow when sold units come back): returns why
 * (static), or NULL. `products` is aligned with catalog_stock_lines(res, in) (borrowed). The
 * wiring dead-letters such inputs rather than guess. */
const char *catalog_input_invalid(const catalog_reservation_t *res,
                                  catalog_product_t *const *products, const catalog_input_t *in);

/* Decide what the command `in` causes for `product` (version 0 when it does not exist).
 * Always writes exactly one event into *out: the success event or CatalogCommandRejected
 * with a reason. */
void catalog_product_decide(const catalog_product_t *product, const catalog_input_t *in,
                            catalog_event_t *out);

/* Apply a product event to `product` in place: a success bumps its version by one; a
 * rejection changes nothing. */
void catalog_product_evolve(catalog_product_t *product, const catalog_event_t *ev);

/* Decide what the saga input `in` causes for the order's reservation `res` (status
 * CAT_RES_NONE when there is none) and its products, `products[k]` being the product named by
 * line k of catalog_stock_lines(res, in) (version 0 when it does not exist; lines naming one
 * product share one pointer). Returns 1 with the event in *out, or 0 when the input changes
 * nothing (duplicates, late events, events for an unknown order). `in` must not be malformed
 * nor invalid (see above). */
int catalog_stock_decide(const catalog_reservation_t *res, catalog_product_t *const *products,
                         const catalog_input_t *in, catalog_event_t *out);

/* Apply a saga event to the reservation and to its products (aligned with ev->lines, except
 * for StockReservationRejected, which touches no product) in place. StockReleased gives back
 * what the reservation's state before it says it took: held units (reserved) from RESERVED,
 * sold units (on_hand) from COMMITTED. The reservation's version goes up by one; each product
 * touched goes up by one whatever the number of lines naming it. A new reservation keeps
 * borrowing ev->lines. */
void catalog_stock_evolve(catalog_reservation_t *res, catalog_product_t *const *products,
                          const catalog_event_t *ev);

/* Names used on the wire. */
const char *catalog_event_type(catalog_event_kind_t kind);
const char *catalog_input_type(catalog_input_kind_t kind);
/* The input kind for a type name, or -1 (the service's `wants`). */
int catalog_input_kind(const char *type);
/* "RESERVED", "COMMITTED", ... (static); catalog_res_status() maps back, or CAT_RES_NONE. */
const char *catalog_res_status_name(catalog_res_status_t status);
catalog_res_status_t catalog_res_status(const char *name);

/* True when `id` is usable as an id: 1..CAT_ID_CHARS characters of [A-Za-z0-9._:-]. */
int catalog_id_valid(const char *id);
/* True when `name` is 1..CAT_NAME_CHARS UTF-8 code points. */
int catalog_name_valid(const char *name);

#endif
