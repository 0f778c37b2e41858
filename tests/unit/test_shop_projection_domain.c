/*
 * test_shop_projection_domain.c: the shop projection's pure rules (projections/shop/domain.c):
 * which views each event type feeds; which events are malformed whatever the state; what every
 * users, catalog, orders and payments event does to its view and which command outcome it
 * reports; that older or repeated events change no view (so duplicates are harmless; an
 * accepting event reports its outcome again, which the store keeps once); that an
 * order's stock and payment may arrive before its OrderPlaced; that products take their
 * figures from saga lines only when newer, apart from their name and price; that events which
 * make no sense for the state are refused with a reason and change nothing; that missing views
 * are skipped without a crash; and a seeded random run that feeds one order's four streams in
 * many interleavings, each event also repeated later, and checks every run ends in the same
 * views.
 */
#include <check.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../projections/shop/domain.h"

#define T_AT 1700000000000LL /* occurred_at base of the events under test */

/* ---- a world: one user, one order, two products, and the payloads fed to them ---- */

#define HELD_MAX 64

typedef struct world {
    user_view_t user;
    order_view_t order;
    product_view_t products[2]; /* "p-1", "p-2" */
    json_t *held[HELD_MAX];     /* payloads kept alive: views borrow an order's items */
    size_t nheld;
} world_t;

static product_view_t *world_product(void *ctx, const char *id)
{
    world_t *w = ctx;
    for (size_t i = 0; i < 2; i++) {
        if (!strcmp(w->products[i].product_id, id)) {
            return &w->products[i];
        }
    }
    return NULL;
}

/* Empty views, as the store hands over ids without rows. */
static void world_init(world_t *w)
{
    memset(w, 0, sizeof(*w));
    snprintf(w->user.user_id, sizeof(w->user.user_id), "u-1");
    snprintf(w->order.order_id, sizeof(w->order.order_id), "o-1");
    snprintf(w->products[0].product_id, sizeof(w->products[0].product_id), "p-1");
    snprintf(w->products[1].product_id, sizeof(w->products[1].product_id), "p-2");
}

static void world_fini(world_t *w)
{
    for (size_t i = 0; i < w->nheld; i++) {
        json_decref(w->held[i]);
    }
    w->nheld = 0;
}

/* Clear the dirty flags (what the caller does after writing the views back). */
static void world_clean(world_t *w)
{
    w->user.dirty = 0;
    w->order.dirty = 0;
    w->products[0].dirty = 0;
    w->products[1].dirty = 0;
}

static int world_dirty(const world_t *w)
{
    return w->user.dirty || w->order.dirty || w->products[0].dirty || w->products[1].dirty;
}

/* Apply one event to the world (the aggregate id is the world's user, order or product as the
 * type says, unless `agg` is given). Keeps `payload` (a new reference) until world_fini. The
 * causation id is "cmd-1". Returns shop_project's reason. */
static const char *apply_to(world_t *w, const char *type, const char *agg, int64_t version,
                            int64_t at, json_t *payload, shop_effect_t *eff)
{
    ck_assert_ptr_nonnull(payload);
    ck_assert_uint_lt(w->nheld, HELD_MAX);
    w->held[w->nheld++] = payload;
    if (!agg) {
        shop_target_t t = shop_event_target(type);
        agg = t == SHOP_TARGET_USER      ? "u-1"
              : t == SHOP_TARGET_PRODUCT ? "p-1"
              : t == SHOP_TARGET_COMMAND ? "x-1"
                                         : "o-1";
    }
    shop_event_t ev = {.type = type,
                       .causation_id = "cmd-1",
                       .aggregate_id = agg,
                       .version = version,
                       .occurred_at = at,
                       .payload = payload};
    ck_assert_ptr_null(shop_event_malformed(&ev));
    shop_views_t views = {.user = &w->user, .order = &w->order, .product = world_product, .ctx = w};
    memset(eff, 0x5a, sizeof(*eff)); /* shop_project must clear it */
    return shop_project(&ev, &views, eff);
}

/* The same at T_AT + version, expecting no reason. */
static shop_effect_t apply(world_t *w, const char *type, int64_t version, json_t *payload)
{
    shop_effect_t eff;
    const char *why = apply_to(w, type, NULL, version, T_AT + version, payload, &eff);
    ck_assert_msg(why == NULL, "%s v%" PRId64 " refused: %s", type, version, why);
    return eff;
}

/* ---- payloads (schema-shaped) ---- */

static json_t *user_payload(const char *type)
{
    if (!strcmp(type, "UserRegistered")) {
        return json_pack("{s:s, s:s, s:s}", "user_id", "u-1", "email", "ann@example.com", "name",
                         "Ann");
    }
    if (!strcmp(type, "EmailChanged")) {
        return json_pack("{s:s, s:s, s:s}", "user_id", "u-1", "email", "ann@new.example",
                         "old_email", "ann@example.com");
    }
    if (!strcmp(type, "UserDeactivated")) {
        return json_pack("{s:s}", "user_id", "u-1");
    }
    ck_abort_msg("no payload for %s", type);
    return NULL;
}

static json_t *product_payload(const char *type, int64_t price, int64_t on_hand, int64_t reserved)
{
    if (!strcmp(type, "ProductAdded")) {
        return json_pack("{s:s, s:s, s:I, s:I}", "product_id", "p-1", "name", "Pen", "price",
                         (json_int_t)price, "on_hand", (json_int_t)on_hand);
    }
    if (!strcmp(type, "PriceChanged")) {
        return json_pack("{s:s, s:I, s:I}", "product_id", "p-1", "price", (json_int_t)price,
                         "old_price", (json_int_t)1);
    }
    if (!strcmp(type, "ProductRestocked")) {
        return json_pack("{s:s, s:I, s:I, s:I}", "product_id", "p-1", "quantity", (json_int_t)5,
                         "on_hand", (json_int_t)on_hand, "reserved", (json_int_t)reserved);
    }
    ck_abort_msg("no payload for %s", type);
    return NULL;
}

static json_t *line(const char *product_id, int64_t on_hand, int64_t reserved, int64_t version)
{
    return json_pack("{s:s, s:I, s:I, s:I, s:I}", "product_id", product_id, "quantity",
                     (json_int_t)2, "on_hand", (json_int_t)on_hand, "reserved",
                     (json_int_t)reserved, "product_version", (json_int_t)version);
}

/* A stock event of o-1 with the given lines (stolen; NULL-terminated). */
static json_t *stock_payload(const char *type, json_t *l1, json_t *l2)
{
    if (!strcmp(type, "StockReservationRejected")) {
        json_decref(l1);
        json_decref(l2);
        return json_pack("{s:s, s:s, s:s}", "order_id", "o-1", "reason", "OUT_OF_STOCK",
                         "product_id", "p-2");
    }
    json_t *lines = json_array();
    if (l1) {
        json_array_append_new(lines, l1);
    }
    if (l2) {
        json_array_append_new(lines, l2);
    }
    if (!strcmp(type, "StockReleased")) {
        return json_pack("{s:s, s:o, s:s}", "order_id", "o-1", "lines", lines, "reason",
                         "ORDER_CANCELLED");
    }
    return json_pack("{s:s, s:o}", "order_id", "o-1", "lines", lines);
}

static json_t *order_payload(const char *type)
{
    if (!strcmp(type, "OrderPlaced")) {
        return json_pack("{s:s, s:s, s:s, s:[{s:s, s:I, s:I}, {s:s, s:I, s:I}], s:I}", "order_id",
                         "o-1", "user_id", "u-1", "account_id", "acc-1", "items", "product_id",
                         "p-1", "quantity", (json_int_t)2, "unit_price", (json_int_t)150,
                         "product_id", "p-2", "quantity", (json_int_t)1, "unit_price",
                         (json_int_t)300, "total", (json_int_t)600);
    }
    if (!strcmp(type, "OrderConfirmed")) {
        return json_pack("{s:s, s:I}", "order_id", "o-1", "total", (json_int_t)600);
    }
    if (!strcmp(type, "OrderRejected")) {
        return json_pack("{s:s, s:s}", "order_id", "o-1", "reason", "INSUFFICIENT_FUNDS");
    }
    if (!strcmp(type, "OrderCancelled")) {
        return json_pack("{s:s, s:s}", "order_id", "o-1", "previous_status", "PENDING");
    }
    ck_abort_msg("no payload for %s", type);
    return NULL;
}

static json_t *payment_payload(const char *type)
{
    if (!strcmp(type, "PaymentRequested")) {
        return json_pack("{s:s, s:s, s:s, s:I, s:s}", "order_id", "o-1", "account_id", "acc-1",
                         "merchant_account", "shop-merchant", "amount", (json_int_t)600,
                         "transfer_id", "pay-o-1");
    }
    if (!strcmp(type, "PaymentCaptured") || !strcmp(type, "PaymentRefunded")) {
        return json_pack("{s:s, s:s, s:I, s:s}", "order_id", "o-1", "account_id", "acc-1", "amount",
                         (json_int_t)600, "transfer_id", "pay-o-1");
    }
    if (!strcmp(type, "PaymentDeclined") || !strcmp(type, "PaymentRefundFailed")) {
        return json_pack("{s:s, s:s, s:I, s:s}", "order_id", "o-1", "account_id", "acc-1", "amount",
                         (json_int_t)600, "reason", "INSUFFICIENT_FUNDS");
    }
    ck_abort_msg("no payload for %s", type);
    return NULL;
}

static json_t *rejection_payload(const char *id_field)
{
    return json_pack("{s:s, s:s, s:s, s:s}", "command_id", "cmd-rej", "command_type", "Whatever",
                     id_field, "x-1", "reason", "SOME_REASON");
}

/* Any payload of `type` (for tables over every type). */
static json_t *any_payload(const char *type)
{
    switch (shop_event_target(type)) {
    case SHOP_TARGET_USER:
        return user_payload(type);
    case SHOP_TARGET_PRODUCT:
        return product_payload(type, 175, 15, 3);
    case SHOP_TARGET_STOCK:
        return stock_payload(type, line("p-1", 10, 2, 9), NULL);
    case SHOP_TARGET_ORDER:
        return order_payload(type);
    case SHOP_TARGET_PAYMENT:
        return payment_payload(type);
    case SHOP_TARGET_COMMAND:
        return rejection_payload("user_id");
    case SHOP_TARGET_NONE:
        break;
    }
    ck_abort_msg("no payload for %s", type);
    return NULL;
}

/* ---- assertions ---- */

static void assert_command(const shop_effect_t *eff, const char *id, const char *type,
                           const char *agg, const char *status, const char *reason,
                           const char *event_type, int64_t at)
{
    ck_assert_int_eq(eff->has_command, 1);
    ck_assert_str_eq(eff->command.command_id, id);
    ck_assert_str_eq(eff->command.command_type, type);
    ck_assert_str_eq(eff->command.aggregate_id, agg);
    ck_assert_str_eq(eff->command.status, status);
    ck_assert_str_eq(eff->command.reason, reason);
    ck_assert_str_eq(eff->command.event_type, event_type);
    ck_assert_int_eq(eff->command.recorded_at, at);
}

static void assert_user_eq(const user_view_t *a, const user_view_t *b)
{
    ck_assert_str_eq(a->user_id, b->user_id);
    ck_assert_str_eq(a->email, b->email);
    ck_assert_str_eq(a->name, b->name);
    ck_assert_str_eq(a->status, b->status);
    ck_assert_int_eq(a->version, b->version);
    ck_assert_int_eq(a->registered_at, b->registered_at);
    ck_assert_int_eq(a->updated_at, b->updated_at);
}

static void assert_product_eq(const product_view_t *a, const product_view_t *b)
{
    ck_assert_str_eq(a->product_id, b->product_id);
    ck_assert_str_eq(a->name, b->name);
    ck_assert_int_eq(a->price, b->price);
    ck_assert_int_eq(a->on_hand, b->on_hand);
    ck_assert_int_eq(a->reserved, b->reserved);
    ck_assert_int_eq(a->version, b->version);
    ck_assert_int_eq(a->price_version, b->price_version);
    ck_assert_int_eq(a->stock_version, b->stock_version);
    ck_assert_int_eq(a->updated_at, b->updated_at);
}

static void assert_order_eq(const order_view_t *a, const order_view_t *b)
{
    ck_assert_str_eq(a->order_id, b->order_id);
    ck_assert_str_eq(a->user_id, b->user_id);
    ck_assert_str_eq(a->account_id, b->account_id);
    ck_assert_int_eq(!a->items, !b->items);
    if (a->items) {
        ck_assert(json_equal(a->items, b->items));
    }
    ck_assert_int_eq(a->total, b->total);
    ck_assert_str_eq(a->status, b->status);
    ck_assert_str_eq(a->reason, b->reason);
    ck_assert_int_eq(a->version, b->version);
    ck_assert_str_eq(a->stock, b->stock);
    ck_assert_int_eq(a->stock_version, b->stock_version);
    ck_assert_str_eq(a->payment, b->payment);
    ck_assert_int_eq(a->payment_version, b->payment_version);
    ck_assert_int_eq(a->placed_at, b->placed_at);
    ck_assert_int_eq(a->updated_at, b->updated_at);
}

static void assert_world_eq(const world_t *a, const world_t *b)
{
    assert_user_eq(&a->user, &b->user);
    assert_order_eq(&a->order, &b->order);
    assert_product_eq(&a->products[0], &b->products[0]);
    assert_product_eq(&a->products[1], &b->products[1]);
}

/* ---- targets and wants ---- */

static const struct {
    const char *type;
    shop_target_t target;
} targets[] = {
    {"UserRegistered", SHOP_TARGET_USER},
    {"EmailChanged", SHOP_TARGET_USER},
    {"UserDeactivated", SHOP_TARGET_USER},
    {"UserCommandRejected", SHOP_TARGET_COMMAND},
    {"ProductAdded", SHOP_TARGET_PRODUCT},
    {"PriceChanged", SHOP_TARGET_PRODUCT},
    {"ProductRestocked", SHOP_TARGET_PRODUCT},
    {"CatalogCommandRejected", SHOP_TARGET_COMMAND},
    {"StockReserved", SHOP_TARGET_STOCK},
    {"StockReleased", SHOP_TARGET_STOCK},
    {"StockCommitted", SHOP_TARGET_STOCK},
    {"StockReservationRejected", SHOP_TARGET_STOCK},
    {"OrderPlaced", SHOP_TARGET_ORDER},
    {"OrderConfirmed", SHOP_TARGET_ORDER},
    {"OrderRejected", SHOP_TARGET_ORDER},
    {"OrderCancelled", SHOP_TARGET_ORDER},
    {"OrderCommandRejected", SHOP_TARGET_COMMAND},
    {"PaymentRequested", SHOP_TARGET_PAYMENT},
    {"PaymentCaptured", SHOP_TARGET_PAYMENT},
    {"PaymentDeclined", SHOP_TARGET_PAYMENT},
    {"PaymentRefunded", SHOP_TARGET_PAYMENT},
    {"PaymentRefundFailed", SHOP_TARGET_PAYMENT},
    /* not the projection's: commands, the ledger's events, near misses */
    {"RegisterUser", SHOP_TARGET_NONE},
    {"PlaceOrder", SHOP_TARGET_NONE},
    {"AccountOpened", SHOP_TARGET_NONE},
    {"TransferCompleted", SHOP_TARGET_NONE},
    {"TransferCommandRejected", SHOP_TARGET_NONE},
    {"orderplaced", SHOP_TARGET_NONE},
    {"OrderPlaced ", SHOP_TARGET_NONE},
    {"", SHOP_TARGET_NONE},
};
#define TARGETS_N ((int)(sizeof(targets) / sizeof(targets[0])))
#define SHOP_TYPES_N 22 /* the first entries of targets[] */

START_TEST(test_event_target)
{
    ck_assert_int_eq(shop_event_target(targets[_i].type), targets[_i].target);
}
END_TEST

START_TEST(test_unknown_type_changes_nothing)
{
    world_t w;
    world_init(&w);
    world_t want = w;
    shop_effect_t eff;
    const char *why =
        apply_to(&w, "TransferCompleted", "o-1", 3, T_AT, order_payload("OrderPlaced"), &eff);
    ck_assert_ptr_null(why);
    ck_assert_int_eq(eff.has_command, 0);
    ck_assert(!world_dirty(&w));
    assert_world_eq(&w, &want);
    world_fini(&w);
}
END_TEST

/* ---- malformed events ---- */

/* Each case mutates a well-formed event of `type` (aggregate id, version, one payload field). */
static const struct {
    const char *name;
    const char *type;
    const char *agg;   /* NULL: the usual one */
    int64_t version;   /* of the event */
    const char *field; /* payload field replaced, or NULL */
    const char *value; /* its new string value (NULL: removed) */
    int line_field;    /* 1: the field is in the first line (or item) instead */
    int malformed;
} malformed[] = {
    {"well-formed user event", "UserRegistered", NULL, 1, NULL, NULL, 0, 0},
    {"well-formed stock event", "StockReserved", NULL, 1, NULL, NULL, 0, 0},
    {"well-formed OrderPlaced", "OrderPlaced", NULL, 1, NULL, NULL, 0, 0},
    {"well-formed rejection", "OrderCommandRejected", NULL, 0, NULL, NULL, 0, 0},
    {"empty aggregate id", "UserRegistered", "", 1, NULL, NULL, 0, 1},
    {"aggregate id with a space", "PaymentCaptured", "o 1", 1, NULL, NULL, 0, 1},
    {"aggregate id of 101 characters", "ProductAdded",
     "p123456789p123456789p123456789p123456789p123456789p123456789p123456789p123456789p123456789"
     "p123456789p",
     1, NULL, NULL, 0, 1},
    {"version 0", "OrderConfirmed", NULL, 0, NULL, NULL, 0, 1},
    {"negative version", "StockReleased", NULL, -1, NULL, NULL, 0, 1},
    {"rejection without a command id", "UserCommandRejected", NULL, 0, "command_id", "", 0, 1},
    {"rejection with a bad command id", "CatalogCommandRejected", NULL, 2, "command_id", "a/b", 0,
     1},
    {"rejection with a 40-character command id", "OrderCommandRejected", NULL, 2, "command_id",
     "0123456789012345678901234567890123456789", 0, 1},
    {"OrderPlaced with a bad user id", "OrderPlaced", NULL, 1, "user_id", "u 1", 0, 1},
    {"OrderPlaced with no account id", "OrderPlaced", NULL, 1, "account_id", NULL, 0, 1},
    {"OrderPlaced without items", "OrderPlaced", NULL, 1, "items", NULL, 0, 1},
    {"OrderPlaced item with a bad product id", "OrderPlaced", NULL, 1, "product_id", "p\"1", 1, 1},
    {"stock event without lines", "StockCommitted", NULL, 2, "lines", NULL, 0, 1},
    {"stock line with a bad product id", "StockReserved", NULL, 1, "product_id", "", 1, 1},
    {"stock line without a product version", "StockReleased", NULL, 3, "product_version", NULL, 1,
     1},
};

START_TEST(test_malformed)
{
    const char *type = malformed[_i].type;
    json_t *p = shop_event_target(type) == SHOP_TARGET_COMMAND ? rejection_payload("order_id")
                                                               : any_payload(type);
    ck_assert_ptr_nonnull(p);
    if (malformed[_i].field) {
        json_t *obj = p;
        if (malformed[_i].line_field) {
            obj = json_array_get(
                json_object_get(p, !strcmp(type, "OrderPlaced") ? "items" : "lines"), 0);
            ck_assert_ptr_nonnull(obj);
        }
        if (malformed[_i].value) {
            json_object_set_new(obj, malformed[_i].field, json_string(malformed[_i].value));
        } else {
            json_object_del(obj, malformed[_i].field);
        }
    }
    shop_event_t ev = {.type = type,
                       .causation_id = "cmd-1",
                       .aggregate_id = malformed[_i].agg ? malformed[_i].agg : "o-1",
                       .version = malformed[_i].version,
                       .occurred_at = T_AT,
                       .payload = p};
    const char *why = shop_event_malformed(&ev);
    ck_assert_msg((why != NULL) == malformed[_i].malformed, "%s: %s", malformed[_i].name,
                  why ? why : "well-formed");
    json_decref(p);
}
END_TEST

/* Types the projection does not read are never malformed (they change nothing). */
START_TEST(test_foreign_type_not_malformed)
{
    shop_event_t ev = {.type = "AccountOpened",
                       .causation_id = "",
                       .aggregate_id = "",
                       .version = 0,
                       .occurred_at = T_AT,
                       .payload = NULL};
    ck_assert_ptr_null(shop_event_malformed(&ev));
}
END_TEST

START_TEST(test_id_valid)
{
    ck_assert(shop_id_valid("a"));
    ck_assert(shop_id_valid("A-z_0.9:x"));
    ck_assert(!shop_id_valid(""));
    ck_assert(!shop_id_valid(NULL));
    ck_assert(!shop_id_valid("a b"));
    ck_assert(!shop_id_valid("é"));
    char id[102];
    memset(id, 'x', sizeof(id));
    id[100] = '\0';
    ck_assert(shop_id_valid(id));
    id[100] = 'x';
    id[101] = '\0';
    ck_assert(!shop_id_valid(id));
}
END_TEST

/* ---- users ---- */

/* u-1 registered at version 1. */
static void registered(world_t *w)
{
    shop_effect_t eff = apply(w, "UserRegistered", 1, user_payload("UserRegistered"));
    ck_assert_int_eq(eff.has_command, 1);
    world_clean(w);
}

START_TEST(test_user_registered)
{
    world_t w;
    world_init(&w);
    shop_effect_t eff = apply(&w, "UserRegistered", 1, user_payload("UserRegistered"));
    ck_assert_int_eq(w.user.dirty, 1);
    ck_assert_str_eq(w.user.user_id, "u-1");
    ck_assert_str_eq(w.user.email, "ann@example.com");
    ck_assert_str_eq(w.user.name, "Ann");
    ck_assert_str_eq(w.user.status, "ACTIVE");
    ck_assert_int_eq(w.user.version, 1);
    ck_assert_int_eq(w.user.registered_at, T_AT + 1);
    ck_assert_int_eq(w.user.updated_at, T_AT + 1);
    assert_command(&eff, "cmd-1", "RegisterUser", "u-1", "ACCEPTED", "", "UserRegistered",
                   T_AT + 1);
    ck_assert(!w.order.dirty && !w.products[0].dirty);
    world_fini(&w);
}
END_TEST

/* Later user events; versions may skip (the users service counts its rejections too). */
static const struct {
    const char *type;
    const char *email, *status, *command_type;
} user_changes[] = {
    {"EmailChanged", "ann@new.example", "ACTIVE", "ChangeEmail"},
    {"UserDeactivated", "ann@example.com", "INACTIVE", "DeactivateUser"},
};

START_TEST(test_user_change)
{
    world_t w;
    world_init(&w);
    registered(&w);
    user_view_t want = w.user;
    shop_effect_t eff = apply(&w, user_changes[_i].type, 3, user_payload(user_changes[_i].type));
    snprintf(want.email, sizeof(want.email), "%s", user_changes[_i].email);
    snprintf(want.status, sizeof(want.status), "%s", user_changes[_i].status);
    want.version = 3;
    want.updated_at = T_AT + 3;
    assert_user_eq(&w.user, &want);
    ck_assert_int_eq(w.user.dirty, 1);
    assert_command(&eff, "cmd-1", user_changes[_i].command_type, "u-1", "ACCEPTED", "",
                   user_changes[_i].type, T_AT + 3);
    world_fini(&w);
}
END_TEST

static const char *const user_types[] = {"UserRegistered", "EmailChanged", "UserDeactivated"};
#define USER_TYPES_N ((int)(sizeof(user_types) / sizeof(user_types[0])))

/* Each user event at a version equal to (even _i) or older than (odd _i) the view's: nothing
 * changes; the outcome is reported again (inserted ON CONFLICT DO NOTHING). */
START_TEST(test_user_replay)
{
    const char *type = user_types[_i / 2];
    int64_t v = _i % 2 == 0 ? 4 : 1;
    world_t w;
    world_init(&w);
    registered(&w);
    apply(&w, "EmailChanged", 4, user_payload("EmailChanged"));
    world_clean(&w);
    world_t want = w;
    shop_effect_t eff;
    ck_assert_ptr_null(apply_to(&w, type, NULL, v, T_AT + 9, user_payload(type), &eff));
    ck_assert_int_eq(eff.has_command, 1);
    ck_assert_str_eq(eff.command.status, "ACCEPTED");
    ck_assert(!world_dirty(&w));
    assert_world_eq(&w, &want);
    world_fini(&w);
}
END_TEST

/* Events that make no sense for the user's state: refused with a reason, nothing changed. */
START_TEST(test_user_nonsense)
{
    world_t w;
    world_init(&w);
    world_t want = w;
    shop_effect_t eff;
    const char *type = _i == 0 ? "EmailChanged" : _i == 1 ? "UserDeactivated" : "UserRegistered";
    if (_i == 2) { /* a second registration of a registered user */
        registered(&w);
        want = w;
    }
    const char *why = apply_to(&w, type, NULL, 2, T_AT + 2, user_payload(type), &eff);
    ck_assert_ptr_nonnull(why);
    ck_assert_int_eq(eff.has_command, 0);
    ck_assert(!world_dirty(&w));
    assert_world_eq(&w, &want);
    world_fini(&w);
}
END_TEST

/* Names are cut short at a character boundary, never inside a UTF-8 character. */
START_TEST(test_long_name_cut_on_a_character)
{
    world_t w;
    world_init(&w);
    char name[2 * SV_NAME_MAX + 1];
    size_t n = 0;
    name[n++] = 'a'; /* so that a two-byte character straddles the buffer's end */
    while (n + 2 < sizeof(name)) {
        name[n++] = (char)0xC3;
        name[n++] = (char)0xA9; /* é */
    }
    name[n] = '\0';
    json_t *p = user_payload("UserRegistered");
    json_object_set_new(p, "name", json_string(name));
    apply(&w, "UserRegistered", 1, p);
    size_t len = strlen(w.user.name);
    ck_assert_uint_le(len, SV_NAME_MAX - 1);
    ck_assert_uint_ge(len, SV_NAME_MAX - 2);
    ck_assert_int_eq(len % 2, 1); /* 'a' plus whole two-byte characters */
    ck_assert_int_eq(memcmp(w.user.name, name, len), 0);
    world_fini(&w);
}
END_TEST

START_TEST(test_user_not_loaded)
{
    world_t w;
    world_init(&w);
    json_t *p = user_payload("UserRegistered");
    shop_event_t ev = {.type = "UserRegistered",
                       .causation_id = "cmd-1",
                       .aggregate_id = "u-1",
                       .version = 1,
                       .occurred_at = T_AT,
                       .payload = p};
    shop_views_t views = {.user = NULL, .order = NULL, .product = NULL, .ctx = NULL};
    shop_effect_t eff;
    ck_assert_ptr_null(shop_project(&ev, &views, &eff));
    ck_assert_int_eq(eff.has_command, 1); /* the outcome is the event's, not the view's */
    json_decref(p);
    world_fini(&w);
}
END_TEST

/* ---- products ---- */

/* p-1 added at version 1: Pen, 150, 10 on hand. */
static void added(world_t *w)
{
    apply(w, "ProductAdded", 1, product_payload("ProductAdded", 150, 10, 0));
    world_clean(w);
}

START_TEST(test_product_added)
{
    world_t w;
    world_init(&w);
    shop_effect_t eff = apply(&w, "ProductAdded", 1, product_payload("ProductAdded", 150, 10, 0));
    product_view_t *p = &w.products[0];
    ck_assert_int_eq(p->dirty, 1);
    ck_assert_str_eq(p->name, "Pen");
    ck_assert_int_eq(p->price, 150);
    ck_assert_int_eq(p->on_hand, 10);
    ck_assert_int_eq(p->reserved, 0);
    ck_assert_int_eq(p->version, 1);
    ck_assert_int_eq(p->price_version, 1);
    ck_assert_int_eq(p->stock_version, 1);
    ck_assert_int_eq(p->updated_at, T_AT + 1);
    assert_command(&eff, "cmd-1", "AddProduct", "p-1", "ACCEPTED", "", "ProductAdded", T_AT + 1);
    ck_assert(!w.products[1].dirty && !w.order.dirty && !w.user.dirty);
    world_fini(&w);
}
END_TEST

static const struct {
    const char *type;
    int64_t price, on_hand, reserved; /* the view after */
    int64_t price_version, stock_version;
    const char *command_type;
} product_changes[] = {
    {"PriceChanged", 175, 10, 0, 4, 1, "ChangePrice"},
    {"ProductRestocked", 150, 15, 3, 1, 4, "RestockProduct"},
};

START_TEST(test_product_change)
{
    world_t w;
    world_init(&w);
    added(&w);
    const char *type = product_changes[_i].type;
    shop_effect_t eff = apply(&w, type, 4, product_payload(type, 175, 15, 3));
    product_view_t *p = &w.products[0];
    ck_assert_int_eq(p->dirty, 1);
    ck_assert_str_eq(p->name, "Pen");
    ck_assert_int_eq(p->price, product_changes[_i].price);
    ck_assert_int_eq(p->on_hand, product_changes[_i].on_hand);
    ck_assert_int_eq(p->reserved, product_changes[_i].reserved);
    ck_assert_int_eq(p->version, 4);
    ck_assert_int_eq(p->price_version, product_changes[_i].price_version);
    ck_assert_int_eq(p->stock_version, product_changes[_i].stock_version);
    ck_assert_int_eq(p->updated_at, T_AT + 4);
    assert_command(&eff, "cmd-1", product_changes[_i].command_type, "p-1", "ACCEPTED", "", type,
                   T_AT + 4);
    world_fini(&w);
}
END_TEST

static const char *const product_types[] = {"ProductAdded", "PriceChanged", "ProductRestocked"};
#define PRODUCT_TYPES_N ((int)(sizeof(product_types) / sizeof(product_types[0])))

/* Each product event at a version equal to (even _i) or older than (odd _i) what the view
 * holds for the columns it sets: nothing changes (the outcome is reported again). */
START_TEST(test_product_replay)
{
    const char *type = product_types[_i / 2];
    world_t w;
    world_init(&w);
    added(&w);
    apply(&w, "PriceChanged", 3, product_payload("PriceChanged", 175, 0, 0));
    apply(&w, "ProductRestocked", 4, product_payload("ProductRestocked", 0, 15, 3));
    world_clean(&w);
    int64_t v = !strcmp(type, "ProductAdded") ? 1 : !strcmp(type, "PriceChanged") ? 3 : 4;
    if (_i % 2 == 1) {
        v = !strcmp(type, "ProductAdded") ? 0 : v - 1;
    }
    world_t want = w;
    if (v > 0) {
        shop_effect_t eff;
        ck_assert_ptr_null(
            apply_to(&w, type, NULL, v, T_AT + 9, product_payload(type, 999, 99, 9), &eff));
        ck_assert_int_eq(eff.has_command, 1);
    }
    ck_assert(!world_dirty(&w));
    assert_world_eq(&w, &want);
    world_fini(&w);
}
END_TEST

/* A price change or restock of a product never added, and a second ProductAdded: refused. */
START_TEST(test_product_nonsense)
{
    world_t w;
    world_init(&w);
    const char *type = product_types[_i];
    if (_i == 0) {
        added(&w);
    }
    world_t want = w;
    shop_effect_t eff;
    ck_assert_ptr_nonnull(
        apply_to(&w, type, NULL, 2, T_AT + 2, product_payload(type, 175, 15, 3), &eff));
    ck_assert_int_eq(eff.has_command, 0);
    ck_assert(!world_dirty(&w));
    assert_world_eq(&w, &want);
    world_fini(&w);
}
END_TEST

/* ---- products from saga lines ---- */

START_TEST(test_lines_set_product_figures)
{
    world_t w;
    world_init(&w);
    added(&w);
    apply(&w, "StockReserved", 1,
          stock_payload("StockReserved", line("p-1", 10, 2, 2), line("p-2", 5, 1, 7)));
    product_view_t *p1 = &w.products[0], *p2 = &w.products[1];
    ck_assert(p1->dirty && p2->dirty);
    ck_assert_str_eq(p1->name, "Pen"); /* the name and price stay */
    ck_assert_int_eq(p1->price, 150);
    ck_assert_int_eq(p1->on_hand, 10);
    ck_assert_int_eq(p1->reserved, 2);
    ck_assert_int_eq(p1->version, 2);
    ck_assert_int_eq(p1->stock_version, 2);
    ck_assert_int_eq(p1->price_version, 1);
    ck_assert_int_eq(p1->updated_at, T_AT + 1); /* the stock event's time */
    /* p-2's ProductAdded not seen yet: figures only, price_version 0 */
    ck_assert_str_eq(p2->name, "");
    ck_assert_int_eq(p2->on_hand, 5);
    ck_assert_int_eq(p2->reserved, 1);
    ck_assert_int_eq(p2->version, 7);
    ck_assert_int_eq(p2->stock_version, 7);
    ck_assert_int_eq(p2->price_version, 0);
    world_fini(&w);
}
END_TEST

/* Lines whose product version is not newer than the view's stock figures are skipped; each
 * line is judged on its own. */
START_TEST(test_lines_older_skipped)
{
    world_t w;
    world_init(&w);
    added(&w);
    apply(&w, "ProductRestocked", 5, product_payload("ProductRestocked", 0, 20, 4));
    world_clean(&w);
    product_view_t want = w.products[0];
    /* the order's stock event is new, p-1's line (5: equal, 3: older) is not, p-2's is */
    int64_t pv = _i == 0 ? 5 : 3;
    apply(&w, "StockCommitted", 2,
          stock_payload("StockCommitted", line("p-1", 8, 0, pv), line("p-2", 3, 0, 2)));
    assert_product_eq(&w.products[0], &want);
    ck_assert_int_eq(w.products[0].dirty, 0);
    ck_assert_int_eq(w.products[1].dirty, 1);
    ck_assert_int_eq(w.products[1].on_hand, 3);
    ck_assert_str_eq(w.order.stock, "COMMITTED");
    world_fini(&w);
}
END_TEST

/* The product's own events arrive after newer saga figures (another partition): the name and
 * price are taken, the newer figures and version kept. */
START_TEST(test_product_events_after_lines)
{
    world_t w;
    world_init(&w);
    apply(&w, "StockReserved", 1, stock_payload("StockReserved", line("p-1", 10, 2, 2), NULL));
    apply(&w, "ProductAdded", 1, product_payload("ProductAdded", 150, 10, 0));
    product_view_t *p = &w.products[0];
    ck_assert_str_eq(p->name, "Pen");
    ck_assert_int_eq(p->price, 150);
    ck_assert_int_eq(p->price_version, 1);
    ck_assert_int_eq(p->on_hand, 10);
    ck_assert_int_eq(p->reserved, 2); /* not reset by the older ProductAdded */
    ck_assert_int_eq(p->stock_version, 2);
    ck_assert_int_eq(p->version, 2);
    ck_assert_int_eq(p->updated_at, T_AT + 1);

    /* a line at version 4, then the price change of version 3 and the restock of version 3 */
    apply(&w, "StockCommitted", 2, stock_payload("StockCommitted", line("p-1", 8, 0, 4), NULL));
    shop_effect_t eff = apply(&w, "PriceChanged", 3, product_payload("PriceChanged", 175, 0, 0));
    ck_assert_int_eq(eff.has_command, 1);
    ck_assert_int_eq(p->price, 175);
    ck_assert_int_eq(p->price_version, 3);
    ck_assert_int_eq(p->on_hand, 8);
    ck_assert_int_eq(p->version, 4);
    ck_assert_int_eq(p->updated_at, T_AT + 2);
    world_clean(&w);
    product_view_t want = *p;
    shop_effect_t eff2;
    ck_assert_ptr_null(apply_to(&w, "ProductRestocked", NULL, 3, T_AT + 3,
                                product_payload("ProductRestocked", 0, 99, 9), &eff2));
    /* the restock changed nothing, yet its command was accepted */
    assert_command(&eff2, "cmd-1", "RestockProduct", "p-1", "ACCEPTED", "", "ProductRestocked",
                   T_AT + 3);
    assert_product_eq(p, &want);
    ck_assert_int_eq(p->dirty, 0);
    world_fini(&w);
}
END_TEST

/* A line older than the product's price change but newer than its stock figures still sets
 * them (the price change says nothing about stock). */
START_TEST(test_line_between_price_changes)
{
    world_t w;
    world_init(&w);
    added(&w);
    apply(&w, "PriceChanged", 3, product_payload("PriceChanged", 175, 0, 0));
    world_clean(&w);
    apply(&w, "StockReserved", 1, stock_payload("StockReserved", line("p-1", 10, 2, 2), NULL));
    product_view_t *p = &w.products[0];
    ck_assert_int_eq(p->dirty, 1);
    ck_assert_int_eq(p->reserved, 2);
    ck_assert_int_eq(p->stock_version, 2);
    ck_assert_int_eq(p->price, 175);
    ck_assert_int_eq(p->price_version, 3);
    ck_assert_int_eq(p->version, 3);
    ck_assert_int_eq(p->updated_at, T_AT + 3); /* still the newest version's */
    world_fini(&w);
}
END_TEST

/* A line naming a product the caller did not load is skipped. */
START_TEST(test_line_product_not_loaded)
{
    world_t w;
    world_init(&w);
    world_t want = w;
    apply(&w, "StockReserved", 1, stock_payload("StockReserved", line("p-9", 1, 1, 1), NULL));
    assert_product_eq(&w.products[0], &want.products[0]);
    assert_product_eq(&w.products[1], &want.products[1]);
    ck_assert(!w.products[0].dirty && !w.products[1].dirty);
    ck_assert_str_eq(w.order.stock, "RESERVED");
    world_fini(&w);
}
END_TEST

/* ---- the order's stock and payment ---- */

static const struct {
    const char *type;
    const char *value;
} order_sides[] = {
    {"StockReserved", "RESERVED"},
    {"StockReleased", "RELEASED"},
    {"StockCommitted", "COMMITTED"},
    {"StockReservationRejected", "REJECTED"},
    {"PaymentRequested", "REQUESTED"},
    {"PaymentCaptured", "CAPTURED"},
    {"PaymentDeclined", "DECLINED"},
    {"PaymentRefunded", "REFUNDED"},
    {"PaymentRefundFailed", "REFUND_FAILED"},
};
#define ORDER_SIDES_N ((int)(sizeof(order_sides) / sizeof(order_sides[0])))

static int is_stock(const char *type)
{
    return shop_event_target(type) == SHOP_TARGET_STOCK;
}

/* Each stock or payment event sets its column of a placed order, guarded by its own version;
 * the order's own columns stay. */
START_TEST(test_order_side)
{
    const char *type = order_sides[_i].type;
    world_t w;
    world_init(&w);
    apply(&w, "OrderPlaced", 1, order_payload("OrderPlaced"));
    world_clean(&w);
    order_view_t want = w.order;
    shop_effect_t eff = apply(&w, type, 3, any_payload(type));
    ck_assert_int_eq(eff.has_command, 0);
    ck_assert_int_eq(w.order.dirty, 1);
    if (is_stock(type)) {
        snprintf(want.stock, sizeof(want.stock), "%s", order_sides[_i].value);
        want.stock_version = 3;
    } else {
        snprintf(want.payment, sizeof(want.payment), "%s", order_sides[_i].value);
        want.payment_version = 3;
    }
    want.updated_at = T_AT + 3;
    assert_order_eq(&w.order, &want);
    ck_assert(!w.user.dirty);
    world_fini(&w);
}
END_TEST

/* The same events again at the same (even _i) or an older (odd _i) version of their stream:
 * the order stays as it is. */
START_TEST(test_order_side_replay)
{
    const char *type = order_sides[_i / 2].type;
    int64_t v = _i % 2 == 0 ? 3 : 2;
    world_t w;
    world_init(&w);
    apply(&w, "OrderPlaced", 1, order_payload("OrderPlaced"));
    apply(&w, is_stock(type) ? "StockCommitted" : "PaymentCaptured", 3,
          any_payload(is_stock(type) ? "StockCommitted" : "PaymentCaptured"));
    world_clean(&w);
    order_view_t want = w.order;
    shop_effect_t eff;
    json_t *p = is_stock(type) ? stock_payload(type, NULL, NULL) : any_payload(type);
    ck_assert_ptr_null(apply_to(&w, type, NULL, v, T_AT + 9, p, &eff));
    ck_assert_int_eq(eff.has_command, 0);
    ck_assert_int_eq(w.order.dirty, 0);
    assert_order_eq(&w.order, &want);
    world_fini(&w);
}
END_TEST

/* Stock and payment events before the OrderPlaced (other topics): the row is created with
 * status "" and filled in later; the order's own columns then come from OrderPlaced and the
 * stock and payment stay. */
START_TEST(test_sides_before_order_placed)
{
    world_t w;
    world_init(&w);
    apply(&w, "PaymentRequested", 1, payment_payload("PaymentRequested"));
    ck_assert_int_eq(w.order.dirty, 1);
    ck_assert_str_eq(w.order.status, "");
    ck_assert_str_eq(w.order.payment, "REQUESTED");
    apply(&w, "StockReserved", 1, stock_payload("StockReserved", line("p-1", 10, 2, 2), NULL));
    apply(&w, "PaymentCaptured", 2, payment_payload("PaymentCaptured"));
    ck_assert_str_eq(w.order.status, "");
    ck_assert_str_eq(w.order.user_id, "");
    ck_assert_ptr_null(w.order.items);
    ck_assert_int_eq(w.order.placed_at, 0);
    ck_assert_int_eq(w.order.version, 0);
    ck_assert_str_eq(w.order.stock, "RESERVED");
    ck_assert_int_eq(w.order.updated_at, T_AT + 2);

    shop_effect_t eff = apply(&w, "OrderPlaced", 1, order_payload("OrderPlaced"));
    assert_command(&eff, "cmd-1", "PlaceOrder", "o-1", "ACCEPTED", "", "OrderPlaced", T_AT + 1);
    ck_assert_str_eq(w.order.status, "PENDING");
    ck_assert_str_eq(w.order.user_id, "u-1");
    ck_assert_str_eq(w.order.account_id, "acc-1");
    ck_assert_int_eq(w.order.total, 600);
    ck_assert_ptr_nonnull(w.order.items);
    ck_assert_int_eq(w.order.placed_at, T_AT + 1);
    ck_assert_int_eq(w.order.version, 1);
    ck_assert_str_eq(w.order.stock, "RESERVED");
    ck_assert_int_eq(w.order.stock_version, 1);
    ck_assert_str_eq(w.order.payment, "CAPTURED");
    ck_assert_int_eq(w.order.payment_version, 2);
    ck_assert_int_eq(w.order.updated_at, T_AT + 2); /* the newest time seen stays */
    world_fini(&w);
}
END_TEST

START_TEST(test_order_not_loaded)
{
    const char *type = targets[_i].type;
    json_t *p = any_payload(type);
    shop_event_t ev = {.type = type,
                       .causation_id = "cmd-1",
                       .aggregate_id = "o-1",
                       .version = 1,
                       .occurred_at = T_AT,
                       .payload = p};
    shop_views_t views = {.user = NULL, .order = NULL, .product = NULL, .ctx = NULL};
    shop_effect_t eff;
    ck_assert_ptr_null(shop_project(&ev, &views, &eff));
    ck_assert_int_eq(eff.has_command, shop_event_target(type) == SHOP_TARGET_COMMAND ||
                                          !strcmp(type, "OrderPlaced") ||
                                          !strcmp(type, "OrderCancelled") ||
                                          shop_event_target(type) == SHOP_TARGET_USER ||
                                          shop_event_target(type) == SHOP_TARGET_PRODUCT);
    json_decref(p);
}
END_TEST

/* ---- orders ---- */

START_TEST(test_order_placed)
{
    world_t w;
    world_init(&w);
    json_t *p = order_payload("OrderPlaced");
    shop_effect_t eff = apply(&w, "OrderPlaced", 1, p);
    order_view_t *o = &w.order;
    ck_assert_int_eq(o->dirty, 1);
    ck_assert_str_eq(o->order_id, "o-1");
    ck_assert_str_eq(o->user_id, "u-1");
    ck_assert_str_eq(o->account_id, "acc-1");
    ck_assert_ptr_eq(o->items, json_object_get(p, "items")); /* as given */
    ck_assert_int_eq(o->total, 600);
    ck_assert_str_eq(o->status, "PENDING");
    ck_assert_str_eq(o->reason, "");
    ck_assert_int_eq(o->version, 1);
    ck_assert_str_eq(o->stock, "");
    ck_assert_int_eq(o->stock_version, 0);
    ck_assert_str_eq(o->payment, "");
    ck_assert_int_eq(o->payment_version, 0);
    ck_assert_int_eq(o->placed_at, T_AT + 1);
    ck_assert_int_eq(o->updated_at, T_AT + 1);
    assert_command(&eff, "cmd-1", "PlaceOrder", "o-1", "ACCEPTED", "", "OrderPlaced", T_AT + 1);
    ck_assert(!w.products[0].dirty && !w.user.dirty);
    world_fini(&w);
}
END_TEST

static const struct {
    const char *type;
    const char *status, *reason;
    const char *command_type; /* NULL: a saga step, no outcome */
} order_changes[] = {
    {"OrderConfirmed", "CONFIRMED", "", NULL},
    {"OrderRejected", "REJECTED", "INSUFFICIENT_FUNDS", NULL},
    {"OrderCancelled", "CANCELLED", "", "CancelOrder"},
};
#define ORDER_CHANGES_N ((int)(sizeof(order_changes) / sizeof(order_changes[0])))

START_TEST(test_order_change)
{
    const char *type = order_changes[_i].type;
    world_t w;
    world_init(&w);
    apply(&w, "OrderPlaced", 1, order_payload("OrderPlaced"));
    world_clean(&w);
    order_view_t want = w.order;
    shop_effect_t eff = apply(&w, type, 2, order_payload(type));
    snprintf(want.status, sizeof(want.status), "%s", order_changes[_i].status);
    snprintf(want.reason, sizeof(want.reason), "%s", order_changes[_i].reason);
    want.version = 2;
    want.updated_at = T_AT + 2;
    assert_order_eq(&w.order, &want);
    ck_assert_int_eq(w.order.dirty, 1);
    if (order_changes[_i].command_type) {
        assert_command(&eff, "cmd-1", order_changes[_i].command_type, "o-1", "ACCEPTED", "", type,
                       T_AT + 2);
    } else {
        ck_assert_int_eq(eff.has_command, 0);
    }
    world_fini(&w);
}
END_TEST

static const char *const order_types[] = {"OrderPlaced", "OrderConfirmed", "OrderRejected",
                                          "OrderCancelled"};
#define ORDER_TYPES_N ((int)(sizeof(order_types) / sizeof(order_types[0])))

/* A confirmed then cancelled order (version 3); every order event at version 3 (even _i) or
 * older (odd _i): nothing changes; only PlaceOrder and CancelOrder outcomes are reported. */
START_TEST(test_order_replay)
{
    const char *type = order_types[_i / 2];
    int64_t v = _i % 2 == 0 ? 3 : 1;
    world_t w;
    world_init(&w);
    apply(&w, "OrderPlaced", 1, order_payload("OrderPlaced"));
    apply(&w, "OrderConfirmed", 2, order_payload("OrderConfirmed"));
    apply(&w, "OrderCancelled", 3, order_payload("OrderCancelled"));
    world_clean(&w);
    world_t want = w;
    shop_effect_t eff;
    ck_assert_ptr_null(apply_to(&w, type, NULL, v, T_AT + 9, order_payload(type), &eff));
    ck_assert_int_eq(eff.has_command,
                     !strcmp(type, "OrderPlaced") || !strcmp(type, "OrderCancelled"));
    ck_assert(!world_dirty(&w));
    assert_world_eq(&w, &want);
    world_fini(&w);
}
END_TEST

/* An order event before its OrderPlaced (loop 0..2), even on a row that stock and payment
 * events created (loop 3..5), and a second OrderPlaced at a newer version (loop 6): refused,
 * nothing changed. */
START_TEST(test_order_nonsense)
{
    world_t w;
    world_init(&w);
    if (_i >= 3 && _i < 6) {
        apply(&w, "StockReserved", 1, stock_payload("StockReserved", NULL, NULL));
        apply(&w, "PaymentRequested", 1, payment_payload("PaymentRequested"));
        world_clean(&w);
    }
    if (_i == 6) {
        apply(&w, "OrderPlaced", 1, order_payload("OrderPlaced"));
        world_clean(&w);
    }
    const char *type = _i == 6 ? "OrderPlaced" : order_changes[_i % 3].type;
    world_t want = w;
    shop_effect_t eff;
    ck_assert_ptr_nonnull(apply_to(&w, type, NULL, 2, T_AT + 2, order_payload(type), &eff));
    ck_assert_int_eq(eff.has_command, 0);
    ck_assert(!world_dirty(&w));
    assert_world_eq(&w, &want);
    world_fini(&w);
}
END_TEST

/* ---- command outcomes ---- */

static const struct {
    const char *type;
    const char *id_field;
} rejections[] = {
    {"UserCommandRejected", "user_id"},
    {"CatalogCommandRejected", "product_id"},
    {"OrderCommandRejected", "order_id"},
};

/* A refusal records REJECTED with the payload's command id, type and reason whatever the
 * version (0: no such aggregate), and changes no view. */
START_TEST(test_command_rejected)
{
    const char *type = rejections[_i / 2].type;
    int64_t v = _i % 2 == 0 ? 0 : 7;
    world_t w;
    world_init(&w);
    world_t want = w;
    shop_effect_t eff;
    ck_assert_ptr_null(apply_to(&w, type, NULL, v, T_AT + 5,
                                rejection_payload(rejections[_i / 2].id_field), &eff));
    assert_command(&eff, "cmd-rej", "Whatever", "x-1", "REJECTED", "SOME_REASON", type, T_AT + 5);
    ck_assert(!world_dirty(&w));
    assert_world_eq(&w, &want);
    world_fini(&w);
}
END_TEST

/* Events that accept a command name it by their causation id; an event without one reports
 * nothing. */
START_TEST(test_accepted_without_causation)
{
    world_t w;
    world_init(&w);
    json_t *p = user_payload("UserRegistered");
    shop_event_t ev = {.type = "UserRegistered",
                       .causation_id = "",
                       .aggregate_id = "u-1",
                       .version = 1,
                       .occurred_at = T_AT,
                       .payload = p};
    shop_views_t views = {.user = &w.user, .order = NULL, .product = NULL, .ctx = NULL};
    shop_effect_t eff;
    ck_assert_ptr_null(shop_project(&ev, &views, &eff));
    ck_assert_int_eq(eff.has_command, 0);
    ck_assert_str_eq(w.user.status, "ACTIVE");
    json_decref(p);
    world_fini(&w);
}
END_TEST

/* Which events report an outcome: exactly the accepting and rejecting ones. */
START_TEST(test_outcome_types)
{
    static const char *const accepting[] = {"UserRegistered", "EmailChanged",  "UserDeactivated",
                                            "ProductAdded",   "PriceChanged",  "ProductRestocked",
                                            "OrderPlaced",    "OrderCancelled"};
    const char *type = targets[_i].type;
    int accepts = 0;
    for (size_t k = 0; k < sizeof(accepting) / sizeof(accepting[0]); k++) {
        accepts |= !strcmp(type, accepting[k]);
    }
    world_t w;
    world_init(&w);
    /* the state each needs to be applied */
    if (!strcmp(type, "EmailChanged") || !strcmp(type, "UserDeactivated")) {
        registered(&w);
    } else if (!strcmp(type, "PriceChanged") || !strcmp(type, "ProductRestocked")) {
        added(&w);
    } else if (shop_event_target(type) == SHOP_TARGET_ORDER && strcmp(type, "OrderPlaced") != 0) {
        apply(&w, "OrderPlaced", 1, order_payload("OrderPlaced"));
    }
    shop_effect_t eff;
    ck_assert_ptr_null(apply_to(&w, type, NULL, 2, T_AT + 2, any_payload(type), &eff));
    int rejects = shop_event_target(type) == SHOP_TARGET_COMMAND;
    ck_assert_msg(eff.has_command == (accepts || rejects), "%s: has_command %d", type,
                  eff.has_command);
    if (eff.has_command) {
        ck_assert_str_eq(eff.command.status, accepts ? "ACCEPTED" : "REJECTED");
        ck_assert_str_eq(eff.command.event_type, type);
    }
    world_fini(&w);
}
END_TEST

/* ---- one order's four streams in any interleaving, with duplicates ---- */

#define MIX_MAX 16
#define MIX_ROUNDS 400

typedef struct mix_event {
    const char *type;
    const char *agg;
    int64_t version, at;
    json_t *payload;
    int stream; /* 0 order, 1 reservation, 2 payment, 3 p-1, 4 p-2, 5 user */
} mix_event_t;

/* A plausible history: u-1 registered; p-1, p-2 added; o-1 placed, reserved, paid, confirmed,
 * then cancelled (released, refunded); p-1 repriced and restocked meanwhile. Times follow the
 * order the services emitted them in. */
static size_t mix_history(mix_event_t *e)
{
    size_t n = 0;
#define EV(T, A, V, AT, P, S) e[n++] = (mix_event_t){T, A, V, T_AT + (AT), P, S}
    EV("UserRegistered", "u-1", 1, 0, user_payload("UserRegistered"), 5);
    EV("ProductAdded", "p-1", 1, 1, product_payload("ProductAdded", 150, 10, 0), 3);
    EV("ProductAdded", "p-2", 1, 2,
       json_pack("{s:s, s:s, s:I, s:I}", "product_id", "p-2", "name", "Ink", "price",
                 (json_int_t)300, "on_hand", (json_int_t)5),
       4);
    EV("OrderPlaced", "o-1", 1, 3, order_payload("OrderPlaced"), 0);
    EV("StockReserved", "o-1", 1, 4,
       stock_payload("StockReserved", line("p-1", 10, 2, 2), line("p-2", 5, 1, 2)), 1);
    EV("PriceChanged", "p-1", 3, 5, product_payload("PriceChanged", 175, 0, 0), 3);
    EV("PaymentRequested", "o-1", 2, 6, payment_payload("PaymentRequested"), 2);
    EV("PaymentCaptured", "o-1", 3, 7, payment_payload("PaymentCaptured"), 2);
    EV("OrderConfirmed", "o-1", 2, 8, order_payload("OrderConfirmed"), 0);
    EV("StockCommitted", "o-1", 2, 8,
       stock_payload("StockCommitted", line("p-1", 8, 0, 4), line("p-2", 4, 0, 3)), 1);
    EV("ProductRestocked", "p-1", 5, 9, product_payload("ProductRestocked", 0, 13, 0), 3);
    EV("OrderCancelled", "o-1", 3, 10, order_payload("OrderCancelled"), 0);
    EV("StockReleased", "o-1", 3, 11,
       stock_payload("StockReleased", line("p-1", 15, 0, 6), line("p-2", 5, 0, 4)), 1);
    EV("PaymentRefunded", "o-1", 5, 12, payment_payload("PaymentRefunded"), 2);
#undef EV
    return n;
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static unsigned rng_below(uint64_t *s, unsigned n)
{
    return (unsigned)(rng_next(s) >> 33) % n;
}

/* Apply the events in `order` to a fresh world; *outcomes gets a bit per event (its index in
 * `base`) that reported a command outcome. */
static void mix_apply(world_t *w, const mix_event_t *base, mix_event_t *const *order, size_t n,
                      uint32_t *outcomes)
{
    world_init(w);
    *outcomes = 0;
    for (size_t i = 0; i < n; i++) {
        const mix_event_t *e = order[i];
        char causation[16];
        snprintf(causation, sizeof(causation), "c-%d", (int)(e - base));
        shop_event_t ev = {.type = e->type,
                           .causation_id = causation,
                           .aggregate_id = e->agg,
                           .version = e->version,
                           .occurred_at = e->at,
                           .payload = e->payload};
        shop_views_t views = {
            .user = &w->user, .order = &w->order, .product = world_product, .ctx = w};
        shop_effect_t eff;
        const char *why = shop_project(&ev, &views, &eff);
        ck_assert_msg(why == NULL, "%s v%" PRId64 ": %s", e->type, e->version, why);
        if (eff.has_command) {
            ck_assert_str_eq(eff.command.command_id, causation);
            *outcomes |= 1u << (e - base);
        }
    }
}

START_TEST(test_any_interleaving_same_views)
{
    mix_event_t evs[MIX_MAX];
    size_t n = mix_history(evs);
    mix_event_t *log_order[MIX_MAX];
    for (size_t i = 0; i < n; i++) {
        log_order[i] = &evs[i];
    }
    world_t want;
    uint32_t want_outcomes;
    mix_apply(&want, evs, log_order, n, &want_outcomes);
    ck_assert_str_eq(want.order.status, "CANCELLED");
    ck_assert_str_eq(want.order.stock, "RELEASED");
    ck_assert_str_eq(want.order.payment, "REFUNDED");
    ck_assert_int_eq(want.products[0].price, 175);
    ck_assert_int_eq(want.products[0].on_hand, 15);
    ck_assert_int_eq(want.products[0].version, 6);
    ck_assert_int_eq(want.products[0].updated_at, T_AT + 11);
    ck_assert_int_eq(want.products[1].on_hand, 5);
    ck_assert_str_eq(want.products[1].name, "Ink");
    /* registered, 2 added, placed, repriced, restocked, cancelled */
    ck_assert_uint_eq(want_outcomes, (1u << 0) | (1u << 1) | (1u << 2) | (1u << 3) | (1u << 5) |
                                         (1u << 10) | (1u << 11));

    for (uint64_t seed = 1; seed <= MIX_ROUNDS; seed++) {
        uint64_t rng = seed * 0x9e3779b97f4a7c15ULL;
        /* merge the streams at random, each in its own order (as partitions are read) */
        size_t next[6] = {0};
        mix_event_t *streams[6][MIX_MAX];
        size_t lens[6] = {0};
        for (size_t i = 0; i < n; i++) {
            streams[evs[i].stream][lens[evs[i].stream]++] = &evs[i];
        }
        mix_event_t *mixed[2 * MIX_MAX];
        size_t m = 0;
        while (m < n) {
            unsigned s = rng_below(&rng, 6);
            if (next[s] < lens[s]) {
                mixed[m++] = streams[s][next[s]++];
            }
        }
        /* and deliver each event again at a random later place */
        for (size_t i = 0; i < n; i++) {
            size_t orig = 0;
            while (mixed[orig] != &evs[i]) {
                orig++;
            }
            size_t at = orig + 1 + rng_below(&rng, (unsigned)(m - orig));
            memmove(&mixed[at + 1], &mixed[at], (m - at) * sizeof(mixed[0]));
            mixed[at] = &evs[i];
            m++;
        }
        world_t got;
        uint32_t got_outcomes;
        mix_apply(&got, evs, mixed, m, &got_outcomes);
        assert_world_eq(&got, &want);
        ck_assert_msg(got_outcomes == want_outcomes, "seed %" PRIu64 ": outcomes %x, want %x", seed,
                      got_outcomes, want_outcomes);
    }
    for (size_t i = 0; i < n; i++) {
        json_decref(evs[i].payload);
    }
}
END_TEST

Suite *shop_projection_domain_suite(void);

Suite *shop_projection_domain_suite(void)
{
    Suite *s = suite_create("shop_projection_domain");

    TCase *tc = tcase_create("targets");
    tcase_add_loop_test(tc, test_event_target, 0, TARGETS_N);
    tcase_add_test(tc, test_unknown_type_changes_nothing);
    tcase_add_loop_test(tc, test_malformed, 0, (int)(sizeof(malformed) / sizeof(malformed[0])));
    tcase_add_test(tc, test_foreign_type_not_malformed);
    tcase_add_test(tc, test_id_valid);
    suite_add_tcase(s, tc);

    tc = tcase_create("users");
    tcase_add_test(tc, test_user_registered);
    tcase_add_loop_test(tc, test_user_change, 0,
                        (int)(sizeof(user_changes) / sizeof(user_changes[0])));
    tcase_add_loop_test(tc, test_user_replay, 0, 2 * USER_TYPES_N);
    tcase_add_loop_test(tc, test_user_nonsense, 0, 3);
    tcase_add_test(tc, test_long_name_cut_on_a_character);
    tcase_add_test(tc, test_user_not_loaded);
    suite_add_tcase(s, tc);

    tc = tcase_create("products");
    tcase_add_test(tc, test_product_added);
    tcase_add_loop_test(tc, test_product_change, 0,
                        (int)(sizeof(product_changes) / sizeof(product_changes[0])));
    tcase_add_loop_test(tc, test_product_replay, 0, 2 * PRODUCT_TYPES_N);
    tcase_add_loop_test(tc, test_product_nonsense, 0, PRODUCT_TYPES_N);
    tcase_add_test(tc, test_lines_set_product_figures);
    tcase_add_loop_test(tc, test_lines_older_skipped, 0, 2);
    tcase_add_test(tc, test_product_events_after_lines);
    tcase_add_test(tc, test_line_between_price_changes);
    tcase_add_test(tc, test_line_product_not_loaded);
    suite_add_tcase(s, tc);

    tc = tcase_create("orders");
    tcase_add_test(tc, test_order_placed);
    tcase_add_loop_test(tc, test_order_change, 0, ORDER_CHANGES_N);
    tcase_add_loop_test(tc, test_order_replay, 0, 2 * ORDER_TYPES_N);
    tcase_add_loop_test(tc, test_order_nonsense, 0, 7);
    tcase_add_loop_test(tc, test_order_side, 0, ORDER_SIDES_N);
    tcase_add_loop_test(tc, test_order_side_replay, 0, 2 * ORDER_SIDES_N);
    tcase_add_test(tc, test_sides_before_order_placed);
    tcase_add_loop_test(tc, test_order_not_loaded, 0, SHOP_TYPES_N);
    suite_add_tcase(s, tc);

    tc = tcase_create("commands");
    tcase_add_loop_test(tc, test_command_rejected, 0,
                        2 * (int)(sizeof(rejections) / sizeof(rejections[0])));
    tcase_add_test(tc, test_accepted_without_causation);
    tcase_add_loop_test(tc, test_outcome_types, 0, SHOP_TYPES_N);
    suite_add_tcase(s, tc);

    tc = tcase_create("interleavings");
    tcase_add_test(tc, test_any_interleaving_same_views);
    suite_add_tcase(s, tc);
    return s;
}
