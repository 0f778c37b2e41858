/*
 * domain.c: the shop projection's rules (see domain.h). Pure: no I/O, no clock.
 */
#include "domain.h"

#include <string.h>

#include "str.h"
#include "json_get.h"

/* What the projection knows of each event type it handles. */
typedef struct shop_type {
    const char *type;
    shop_target_t target;
    const char *accepts; /* the command type it is the accepted outcome of, or NULL */
    const char *state;   /* what it sets: the user's or order's status, the order's stock or
                          * payment; NULL when it sets none */
} shop_type_t;

static const shop_type_t shop_types[] = {
    {"UserRegistered", SHOP_TARGET_USER, "RegisterUser", "ACTIVE"},
    {"EmailChanged", SHOP_TARGET_USER, "ChangeEmail", NULL},
    {"UserDeactivated", SHOP_TARGET_USER, "DeactivateUser", "INACTIVE"},
    {"UserCommandRejected", SHOP_TARGET_COMMAND, NULL, NULL},
    {"ProductAdded", SHOP_TARGET_PRODUCT, "AddProduct", NULL},
    {"PriceChanged", SHOP_TARGET_PRODUCT, "ChangePrice", NULL},
    {"ProductRestocked", SHOP_TARGET_PRODUCT, "RestockProduct", NULL},
    {"CatalogCommandRejected", SHOP_TARGET_COMMAND, NULL, NULL},
    {"StockReserved", SHOP_TARGET_STOCK, NULL, "RESERVED"},
    {"StockReleased", SHOP_TARGET_STOCK, NULL, "RELEASED"},
    {"StockCommitted", SHOP_TARGET_STOCK, NULL, "COMMITTED"},
    {"StockReservationRejected", SHOP_TARGET_STOCK, NULL, "REJECTED"},
    {"OrderPlaced", SHOP_TARGET_ORDER, "PlaceOrder", "PENDING"},
    {"OrderConfirmed", SHOP_TARGET_ORDER, NULL, "CONFIRMED"},
    {"OrderRejected", SHOP_TARGET_ORDER, NULL, "REJECTED"},
    {"OrderCancelled", SHOP_TARGET_ORDER, "CancelOrder", "CANCELLED"},
    {"OrderCommandRejected", SHOP_TARGET_COMMAND, NULL, NULL},
    {"PaymentRequested", SHOP_TARGET_PAYMENT, NULL, "REQUESTED"},
    {"PaymentCaptured", SHOP_TARGET_PAYMENT, NULL, "CAPTURED"},
    {"PaymentDeclined", SHOP_TARGET_PAYMENT, NULL, "DECLINED"},
    {"PaymentRefunded", SHOP_TARGET_PAYMENT, NULL, "REFUNDED"},
    {"PaymentRefundFailed", SHOP_TARGET_PAYMENT, NULL, "REFUND_FAILED"},
    {"PaymentRefundRetried", SHOP_TARGET_PAYMENT, "RetryRefund", "REFUNDING"},
    {"PaymentCommandRejected", SHOP_TARGET_COMMAND, NULL, NULL},
};

/* The entry for `type`, or NULL. */
static const shop_type_t *type_find(const char *type)
{
    if (!type) {
        return NULL;
    }
    for (size_t i = 0; i < sizeof(shop_types) / sizeof(shop_types[0]); i++) {
        if (!strcmp(type, shop_types[i].type)) {
            return &shop_types[i];
        }
    }
    return NULL;
}

/* An integer field of `obj`, 0 when missing or not an integer. */
static int64_t num(const json_t *obj, const char *field)
{
    return (int64_t)json_integer_value(json_object_get(obj, field));
}

/* Copy the text `src` into dst[size], cut short if needed before a UTF-8 character, never
 * inside one (the database refuses invalid UTF-8). */
static void copy_text(char *dst, size_t size, const char *src)
{
    size_t n = strnlen(src, size - 1);
    while (n > 0 && src[n] != '\0' && ((unsigned char)src[n] & 0xC0) == 0x80) {
        n--; /* src[n], the first byte left out, continues a character: leave that out too */
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
}

shop_target_t shop_event_target(const char *type)
{
    const shop_type_t *t = type_find(type);
    return t ? t->target : SHOP_TARGET_NONE;
}

int shop_id_valid(const char *id)
{
    return id && es_str_id_valid(id, strnlen(id, SV_ID_CHARS + 1), SV_ID_CHARS);
}

/* True for the saga events that carry stock lines. */
static int has_lines(const char *type)
{
    return !strcmp(type, "StockReserved") || !strcmp(type, "StockReleased") ||
           !strcmp(type, "StockCommitted");
}

const char *shop_event_malformed(const shop_event_t *ev)
{
    const shop_type_t *t = type_find(ev->type);
    if (!t) {
        return NULL; /* not the projection's: it changes nothing */
    }
    const json_t *p = ev->payload;
    if (t->target == SHOP_TARGET_COMMAND) {
        /* a refusal's aggregate id is the command's, as sent: a malformed one (INVALID_ID) is
         * exactly what the user must be told about, so only the command id must be sound */
        const char *cid = es_json_str(p, "command_id");
        size_t len = strnlen(cid, SV_COMMAND_ID_MAX);
        return es_str_id_valid(cid, len, SV_COMMAND_ID_MAX - 1) ? NULL : "invalid command id";
    }
    if (!shop_id_valid(ev->aggregate_id)) {
        return "invalid aggregate id";
    }
    if (ev->version <= 0) {
        return "event without an aggregate version";
    }
    if (!strcmp(ev->type, "OrderPlaced")) {
        if (!shop_id_valid(es_json_str(p, "user_id")) ||
            !shop_id_valid(es_json_str(p, "account_id"))) {
            return "invalid user or account id in OrderPlaced";
        }
        const json_t *items = json_object_get(p, "items");
        if (!json_is_array(items)) {
            return "OrderPlaced without items";
        }
        size_t i;
        const json_t *item;
        json_array_foreach(items, i, item)
        {
            if (!shop_id_valid(es_json_str(item, "product_id"))) {
                return "OrderPlaced item with an invalid product id";
            }
        }
    }
    if (t->target == SHOP_TARGET_STOCK && has_lines(ev->type)) {
        const json_t *lines = json_object_get(p, "lines");
        if (!json_is_array(lines)) {
            return "stock event without lines";
        }
        size_t i;
        const json_t *line;
        json_array_foreach(lines, i, line)
        {
            if (!shop_id_valid(es_json_str(line, "product_id")) ||
                num(line, "product_version") <= 0) {
                return "stock line with an invalid product id or version";
            }
        }
    }
    return NULL;
}

/* Report the event as the accepted outcome of the command that caused it, if it is one. */
static void accepted(const shop_event_t *ev, const shop_type_t *t, shop_effect_t *eff)
{
    if (!t->accepts || !ev->causation_id || !ev->causation_id[0]) {
        return;
    }
    shop_command_view_t *c = &eff->command;
    eff->has_command = 1;
    es_str_copy(c->command_id, sizeof(c->command_id), ev->causation_id);
    es_str_copy(c->command_type, sizeof(c->command_type), t->accepts);
    es_str_copy(c->aggregate_id, sizeof(c->aggregate_id), ev->aggregate_id);
    c->status = "ACCEPTED";
    c->reason[0] = '\0';
    es_str_copy(c->event_type, sizeof(c->event_type), ev->type);
    c->recorded_at = ev->occurred_at;
}

/* A *CommandRejected event: the refused command named by the payload. */
static void rejected(const shop_event_t *ev, shop_effect_t *eff)
{
    const json_t *p = ev->payload;
    shop_command_view_t *c = &eff->command;
    eff->has_command = 1;
    es_str_copy(c->command_id, sizeof(c->command_id), es_json_str(p, "command_id"));
    copy_text(c->command_type, sizeof(c->command_type), es_json_str(p, "command_type"));
    es_str_copy(c->aggregate_id, sizeof(c->aggregate_id), ev->aggregate_id);
    c->status = "REJECTED";
    copy_text(c->reason, sizeof(c->reason), es_json_str(p, "reason"));
    es_str_copy(c->event_type, sizeof(c->event_type), ev->type);
    c->recorded_at = ev->occurred_at;
}

/* A users event: the user's columns under the user's version. */
static const char *project_user(const shop_event_t *ev, const shop_type_t *t, user_view_t *u)
{
    const json_t *p = ev->payload;
    if (!u || ev->version <= u->version) {
        return NULL; /* a replay */
    }
    if (!strcmp(ev->type, "UserRegistered")) {
        if (u->status[0]) {
            return "UserRegistered of a registered user";
        }
        copy_text(u->email, sizeof(u->email), es_json_str(p, "email"));
        copy_text(u->name, sizeof(u->name), es_json_str(p, "name"));
        u->registered_at = ev->occurred_at;
    } else if (!u->status[0]) {
        return "user event before its UserRegistered";
    } else if (!strcmp(ev->type, "EmailChanged")) {
        copy_text(u->email, sizeof(u->email), es_json_str(p, "email"));
    }
    if (t->state) {
        es_str_copy(u->status, sizeof(u->status), t->state);
    }
    u->version = ev->version;
    u->updated_at = ev->occurred_at;
    u->dirty = 1;
    return NULL;
}

/* Note that `pv` has seen a product version `version` (of an event at `at`). */
static void product_seen(product_view_t *pv, int64_t version, int64_t at)
{
    if (version > pv->version) {
        pv->version = version;
        pv->updated_at = at;
    }
    pv->dirty = 1;
}

/* A product's own event: name and price under price_version, on_hand and reserved under
 * stock_version. */
static const char *project_product(const shop_event_t *ev, const shop_views_t *views)
{
    const json_t *p = ev->payload;
    product_view_t *pv = views->product ? views->product(views->ctx, ev->aggregate_id) : NULL;
    if (!pv) {
        return NULL;
    }
    int added = !strcmp(ev->type, "ProductAdded");
    int sets_price = added || !strcmp(ev->type, "PriceChanged");
    int sets_stock = added || !strcmp(ev->type, "ProductRestocked");
    int price_new = sets_price && ev->version > pv->price_version;
    int stock_new = sets_stock && ev->version > pv->stock_version;
    if (!price_new && !stock_new) {
        return NULL; /* a replay */
    }
    if (added && price_new && pv->price_version > 0) {
        return "ProductAdded of a product already added";
    }
    if (!added && pv->price_version == 0) {
        return "product event before its ProductAdded";
    }
    if (price_new) {
        if (added) {
            copy_text(pv->name, sizeof(pv->name), es_json_str(p, "name"));
        }
        pv->price = num(p, "price");
        pv->price_version = ev->version;
    }
    if (stock_new) {
        pv->on_hand = num(p, "on_hand");
        pv->reserved = added ? 0 : num(p, "reserved");
        pv->stock_version = ev->version;
    }
    product_seen(pv, ev->version, ev->occurred_at);
    return NULL;
}

/* Note a change of `o` by an event at `at`. */
static void order_touched(order_view_t *o, int64_t at)
{
    if (at > o->updated_at) {
        o->updated_at = at;
    }
    o->dirty = 1;
}

/* A catalog saga event: each line's product figures under that product's stock_version, the
 * order's stock under its stock_version. */
static void project_stock(const shop_event_t *ev, const shop_type_t *t, const shop_views_t *views)
{
    const json_t *lines = json_object_get(ev->payload, "lines");
    size_t i;
    const json_t *line;
    json_array_foreach(lines, i, line)
    {
        product_view_t *pv =
            views->product ? views->product(views->ctx, es_json_str(line, "product_id")) : NULL;
        int64_t version = num(line, "product_version");
        if (!pv || version <= pv->stock_version) {
            continue; /* not loaded, or older figures than the view's */
        }
        pv->on_hand = num(line, "on_hand");
        pv->reserved = num(line, "reserved");
        pv->stock_version = version;
        product_seen(pv, version, ev->occurred_at);
    }
    order_view_t *o = views->order;
    if (o && ev->version > o->stock_version) {
        es_str_copy(o->stock, sizeof(o->stock), t->state);
        o->stock_version = ev->version;
        order_touched(o, ev->occurred_at);
    }
}

/* A payments event: the order's payment under its payment_version. */
static void project_payment(const shop_event_t *ev, const shop_type_t *t, order_view_t *o)
{
    if (o && ev->version > o->payment_version) {
        es_str_copy(o->payment, sizeof(o->payment), t->state);
        o->payment_version = ev->version;
        order_touched(o, ev->occurred_at);
    }
}

/* An orders event: the order's own columns under its version. */
static const char *project_order(const shop_event_t *ev, const shop_type_t *t, order_view_t *o)
{
    const json_t *p = ev->payload;
    if (!o || ev->version <= o->version) {
        return NULL; /* a replay */
    }
    if (!strcmp(ev->type, "OrderPlaced")) {
        if (o->status[0]) {
            return "OrderPlaced of an order already placed";
        }
        es_str_copy(o->user_id, sizeof(o->user_id), es_json_str(p, "user_id"));
        es_str_copy(o->account_id, sizeof(o->account_id), es_json_str(p, "account_id"));
        o->items = json_object_get(p, "items");
        o->total = num(p, "total");
        o->placed_at = ev->occurred_at;
    } else if (!o->status[0] && !(!strcmp(ev->type, "OrderRejected") &&
                                  !strcmp(es_json_str(p, "reason"), "TIMEOUT"))) {
        /* only a timeout's fence rejects an order before it is placed (docs/SAGAS.md) */
        return "order event before its OrderPlaced";
    } else if (!strcmp(ev->type, "OrderRejected")) {
        copy_text(o->reason, sizeof(o->reason), es_json_str(p, "reason"));
    }
    es_str_copy(o->status, sizeof(o->status), t->state);
    o->version = ev->version;
    order_touched(o, ev->occurred_at);
    return NULL;
}

const char *shop_project(const shop_event_t *ev, const shop_views_t *views, shop_effect_t *eff)
{
    memset(eff, 0, sizeof(*eff));
    const shop_type_t *t = type_find(ev->type);
    if (!t) {
        return NULL;
    }
    const char *why = NULL;
    switch (t->target) {
    case SHOP_TARGET_USER:
        why = project_user(ev, t, views->user);
        break;
    case SHOP_TARGET_PRODUCT:
        why = project_product(ev, views);
        break;
    case SHOP_TARGET_STOCK:
        project_stock(ev, t, views);
        break;
    case SHOP_TARGET_ORDER:
        why = project_order(ev, t, views->order);
        break;
    case SHOP_TARGET_PAYMENT:
        project_payment(ev, t, views->order);
        break;
    case SHOP_TARGET_COMMAND:
        rejected(ev, eff);
        break;
    case SHOP_TARGET_NONE:
        break;
    }
    /* Reported whether or not the view changed: a product's own event may find newer figures
     * from a saga line already there and change nothing, yet its command was accepted. */
    if (!why) {
        accepted(ev, t, eff);
    }
    return why;
}
