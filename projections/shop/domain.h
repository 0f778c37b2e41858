/*
 * domain.h: how each event of the shop changes the shop's read models (schema "shop_views"),
 * as a pure function. The shop projector's wiring (main.c) loads the rows a batch touches,
 * runs every event through shop_project() in log order and writes back the rows it changed;
 * a rebuild runs the very same code over the complete log.
 *
 * The views are fed by four topics whose partitions are read at their own pace, so a view may
 * see facts of different streams in any interleaving. Each group of columns is therefore
 * guarded by the version of the stream that writes it (an order's status by the order's
 * version, its stock by the catalog reservation's, its payment by the payment's; a product's
 * name and price apart from its stock figures), which makes the result independent of the
 * interleaving and makes older or repeated events change nothing.
 */
#ifndef SHOP_PROJECTION_DOMAIN_H
#define SHOP_PROJECTION_DOMAIN_H

#include <jansson.h>
#include <stdint.h>

#define SV_ID_CHARS 100 /* valid ids: 1..100 characters of [A-Za-z0-9._:-] */
#define SV_ID_MAX 128   /* room for any valid id */
#define SV_EMAIL_MAX 256
#define SV_NAME_MAX 808 /* 200 UTF-8 code points */
#define SV_REASON_MAX 64
#define SV_TYPE_MAX 64
#define SV_COMMAND_ID_MAX 40

/* shop_views.users */
typedef struct user_view {
    char user_id[SV_ID_MAX];
    char email[SV_EMAIL_MAX];
    char name[SV_NAME_MAX];
    char status[12];                   /* "" = not registered (no row), ACTIVE, INACTIVE */
    int64_t version;                   /* the user's version of the newest event applied */
    int64_t registered_at, updated_at; /* ms since epoch */
    int dirty; /* set by shop_project when it changed the view (the caller writes it back) */
} user_view_t;

/* shop_views.products */
typedef struct product_view {
    char product_id[SV_ID_MAX];
    char name[SV_NAME_MAX];
    int64_t price;
    int64_t on_hand, reserved;
    int64_t version;       /* the newest product version seen (max of the two below) */
    int64_t price_version; /* of the event that set name and price; 0 = ProductAdded unseen */
    int64_t stock_version; /* of the event (or saga line) that set on_hand and reserved */
    int64_t updated_at;    /* occurred_at of the event of `version` */
    int dirty;
} product_view_t;

/* shop_views.orders. A row may exist before its OrderPlaced is seen (status ""), created by a
 * catalog or payments event of the order: readers treat status "" as not found. */
typedef struct order_view {
    char order_id[SV_ID_MAX];
    char user_id[SV_ID_MAX];    /* "" until placed */
    char account_id[SV_ID_MAX]; /* "" until placed */
    /* The OrderPlaced items array, borrowed from the event that set it (valid during the
     * batch); NULL = as stored (the store never loads it back). */
    const json_t *items;
    int64_t total;
    char status[12]; /* "", PENDING, CONFIRMED, REJECTED, CANCELLED */
    char reason[SV_REASON_MAX];
    int64_t version; /* the order's */
    char stock[12];  /* "", RESERVED, COMMITTED, RELEASED, REJECTED */
    int64_t stock_version;
    char payment[16]; /* "", REQUESTED, CAPTURED, DECLINED, REFUNDED, REFUND_FAILED */
    int64_t payment_version;
    int64_t placed_at;  /* 0 until placed */
    int64_t updated_at; /* the newest occurred_at applied */
    int dirty;
} order_view_t;

/* shop_views.commands: what became of a command, for `esctl send --wait` */
typedef struct shop_command_view {
    char command_id[SV_COMMAND_ID_MAX];
    char command_type[SV_TYPE_MAX];
    char aggregate_id[SV_ID_MAX];
    const char *status; /* ACCEPTED, REJECTED (static) */
    char reason[SV_REASON_MAX];
    char event_type[SV_TYPE_MAX];
    int64_t recorded_at;
} shop_command_view_t;

/* Which views an event type feeds. */
typedef enum {
    SHOP_TARGET_NONE = 0,
    SHOP_TARGET_USER,    /* users events: the user named by the aggregate id */
    SHOP_TARGET_PRODUCT, /* product events: the product named by the aggregate id */
    SHOP_TARGET_STOCK,   /* catalog saga events: the order (aggregate id) and their lines'
                          * products */
    SHOP_TARGET_ORDER,   /* orders events: the order */
    SHOP_TARGET_PAYMENT, /* payments events: the order */
    SHOP_TARGET_COMMAND  /* *CommandRejected: a command outcome only */
} shop_target_t;

/* The event's metadata and payload as the projection needs them (all borrowed). */
typedef struct shop_event {
    const char *type;
    const char *causation_id;
    const char *aggregate_id;
    int64_t version; /* the envelope's aggregate_version */
    int64_t occurred_at;
    const json_t *payload; /* schema-valid */
} shop_event_t;

/* The views one event may change, as the caller found them in its working set (borrowed). */
typedef struct shop_views {
    user_view_t *user;   /* SHOP_TARGET_USER: the event's user, or NULL when not loaded */
    order_view_t *order; /* STOCK, ORDER, PAYMENT: the event's order, or NULL */
    /* Products by id (the product event's own, a saga line's): the view, or NULL when the
     * caller did not load it (that line is then skipped). */
    product_view_t *(*product)(void *ctx, const char *product_id);
    void *ctx;
} shop_views_t;

/* What one event asks for besides the views it changed (their dirty flags). */
typedef struct shop_effect {
    int has_command;
    shop_command_view_t command;
} shop_effect_t;

/* Which views events of `type` feed; SHOP_TARGET_NONE for a type the projection ignores. */
shop_target_t shop_event_target(const char *type);

/* An event that no correct service emits, whatever the state: returns why (static), or NULL.
 * Checks the aggregate id, that a view-changing event has a version, the command id of a
 * rejection, the ids of an OrderPlaced and of its items (stored as they are), and the product
 * ids and versions of a saga event's lines. Needs no state: the caller leaves such events
 * out of what it loads (and dead-letters them), and only then may it trust the ids to fit
 * the views. */
const char *shop_event_malformed(const shop_event_t *ev);

/* True when `id` is a valid id: 1..SV_ID_CHARS characters of [A-Za-z0-9._:-]. */
int shop_id_valid(const char *id);

/* Apply the well-formed event `ev` to `views` (every view it feeds must be there, or be NULL
 * and is then skipped). Sets the dirty flag of each view it changed and fills *eff (cleared
 * first). An event older than or as old as what a view holds changes nothing. Returns NULL, or
 * why the event makes no sense for the state (static: a user or order event before the event
 * that creates it, a second creation, a price change or restock of a product never added), in
 * which case nothing changed. A rejection, and an event accepting a command, report that
 * command's outcome unless refused, replays included (the store keeps the first): a product's
 * own event may change nothing because newer figures from a saga line are already there. */
const char *shop_project(const shop_event_t *ev, const shop_views_t *views, shop_effect_t *eff);

#endif
