/*
 * main.c: the orders service's wiring. It consumes orders.commands (PlaceOrder, CancelOrder),
 * the users' and the catalog's events that feed its local copies (UserRegistered,
 * UserDeactivated, ProductAdded, PriceChanged) and the saga's outcomes
 * (StockReservationRejected, PaymentCaptured, PaymentDeclined). Each batch loads the orders,
 * users and prices it mentions (one query per table), runs every input in log order through
 * the pure rules in domain.c against that working set (so an order placed after a product was
 * added in the same batch sees the product), emits the resulting events and queues the
 * writes. Batching, dedup, outbox and positions: lib/service.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "str.h"
#include "domain.h"
#include "service.h"
#include "store.h"
#include "strmap.h"
#include "json_get.h"

static const char *const topics[] = {"orders.commands", "users.events", "catalog.events",
                                     "payments.events", "sagas.events", NULL};

/* The runtime's filter: only the input types the rules know are decoded. */
static int wants(const char *type)
{
    return orders_input_kind(type) >= 0;
}

/* Map PlaceOrder's items (borrowed from the payload) into arena storage. Only 1..ORD_ITEMS_MAX
 * lines are copied: the rules refuse any other count without looking at them. Returns 0, or
 * -1 when out of memory. */
static int items_from_json(es_arena_t *arena, const json_t *items, orders_input_t *in)
{
    in->nitems = json_is_array(items) ? json_array_size(items) : 0;
    if (in->nitems == 0 || in->nitems > ORD_ITEMS_MAX) {
        return 0;
    }
    orders_item_t *out = es_arena_calloc(arena, in->nitems, sizeof(*out));
    if (!out) {
        return -1;
    }
    for (size_t k = 0; k < in->nitems; k++) {
        const json_t *item = json_array_get(items, k);
        out[k].product_id = es_json_str(item, "product_id");
        out[k].quantity = json_integer_value(json_object_get(item, "quantity"));
    }
    in->items = out;
    return 0;
}

/* Map a decoded input to the rules' view of it. The codec validated the payload against its
 * schema, but every field is still read defensively (missing: "" or 0, which the rules
 * refuse). Returns 0, or -1 when out of memory. */
static int input_from_json(es_arena_t *arena, const es_input_t *rec, orders_input_t *in)
{
    const json_t *p = rec->payload;
    memset(in, 0, sizeof(*in));
    in->kind = (orders_input_kind_t)orders_input_kind(rec->env.type);
    es_str_copy(in->command_id, sizeof(in->command_id), rec->env.event_id);
    es_str_copy(in->order_id, sizeof(in->order_id), es_json_str(p, "order_id"));
    es_str_copy(in->user_id, sizeof(in->user_id), es_json_str(p, "user_id"));
    es_str_copy(in->account_id, sizeof(in->account_id), es_json_str(p, "account_id"));
    es_str_copy(in->product_id, sizeof(in->product_id), es_json_str(p, "product_id"));
    es_str_copy(in->reason, sizeof(in->reason), es_json_str(p, "reason"));
    in->amount = json_integer_value(json_object_get(p, "amount"));
    in->price = json_integer_value(json_object_get(p, "price"));
    in->version = rec->env.aggregate_version;
    if (in->kind == ORD_IN_SAGA_TIMED_OUT) {
        /* an order saga's subject is its order; other sagas' timeouts are not ours ("") */
        es_str_copy(in->order_id, sizeof(in->order_id),
                    strcmp(es_json_str(p, "saga_type"), "order") ? "" : es_json_str(p, "subject"));
    }
    if (in->kind == ORD_IN_PLACE_ORDER) {
        return items_from_json(arena, json_object_get(p, "items"), in);
    }
    return 0;
}

/* OrderPlaced's priced lines as a JSON array (new reference), or NULL when out of memory. */
static json_t *lines_to_json(const orders_event_t *ev)
{
    json_t *arr = json_array();
    for (size_t k = 0; arr && k < ev->nlines; k++) {
        const order_line_t *l = &ev->lines[k];
        if (json_array_append_new(arr, json_pack("{ss sI sI}", "product_id", l->product_id,
                                                 "quantity", (json_int_t)l->quantity, "unit_price",
                                                 (json_int_t)l->unit_price)) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

/* The event's payload (new reference), or NULL when out of memory. */
static json_t *event_to_json(const orders_event_t *ev)
{
    const char *id = ev->order_id;
    switch (ev->kind) {
    case ORD_EV_ORDER_PLACED:
        /* "o" steals the lines; json_pack frees them when it fails */
        return json_pack("{ss ss ss so sI}", "order_id", id, "user_id", ev->user_id, "account_id",
                         ev->account_id, "items", lines_to_json(ev), "total",
                         (json_int_t)ev->total);
    case ORD_EV_ORDER_CONFIRMED:
        return json_pack("{ss sI}", "order_id", id, "total", (json_int_t)ev->total);
    case ORD_EV_ORDER_REJECTED:
        return json_pack("{ss ss}", "order_id", id, "reason", ev->reason);
    case ORD_EV_ORDER_CANCELLED:
        return json_pack("{ss ss}", "order_id", id, "previous_status", ev->previous_status);
    case ORD_EV_COMMAND_REJECTED:
        return json_pack("{ss ss ss ss}", "command_id", ev->command_id, "command_type",
                         ev->command_type, "order_id", id, "reason", ev->reason);
    default:
        return NULL;
    }
}

/* Per-batch working set, in the batch's arena (the maps are reused across batches). */
typedef struct batch {
    orders_input_t *ins;
    es_idset_t orders, users, products;
    order_t *order;
    orders_user_t *user;
    orders_price_t *price;
    unsigned char *order_dirty; /* 0 untouched, 1 existed and changed, 2 placed by this batch */
    unsigned char *user_dirty;
    unsigned char *price_dirty;
    int load_orders, load_users, load_prices; /* the loads' places in the batch's reads */
} batch_t;

/* The copies' lookups for the rules: the batch's entry for an id (borrowed), or NULL when the
 * batch never mentioned it. */
static const orders_user_t *lookup_user(const void *ctx, const char *id)
{
    const batch_t *b = ctx;
    size_t i = es_idset_find(&b->users, id);
    return i == (size_t)-1 ? NULL : &b->user[i];
}

static const orders_price_t *lookup_price(const void *ctx, const char *id)
{
    const batch_t *b = ctx;
    size_t i = es_idset_find(&b->products, id);
    return i == (size_t)-1 ? NULL : &b->price[i];
}

/* Parse the inputs and collect the ids of every table they mention; the ids of users and
 * products are collected only when valid (an invalid one is refused before any lookup).
 * Returns 0, or -1 when out of memory. */
static int collect(batch_t *b, es_arena_t *arena, const es_input_t *inputs, size_t cnt)
{
    size_t nlines = 0;
    for (size_t i = 0; i < cnt; i++) {
        if (input_from_json(arena, &inputs[i], &b->ins[i]) != 0) {
            return -1;
        }
        if (b->ins[i].items) {
            nlines += b->ins[i].nitems;
        }
    }
    if (es_idset_reset(&b->orders, arena, cnt) != 0 || es_idset_reset(&b->users, arena, cnt) != 0 ||
        es_idset_reset(&b->products, arena, cnt + nlines) != 0) {
        return -1;
    }
    for (size_t i = 0; i < cnt; i++) {
        const orders_input_t *in = &b->ins[i];
        int rc = 0;
        switch (orders_input_target(in->kind)) {
        case ORD_TARGET_USER:
            rc = orders_id_valid(in->user_id) ? es_idset_add(&b->users, in->user_id) : 0;
            break;
        case ORD_TARGET_PRODUCT:
            rc = orders_id_valid(in->product_id) ? es_idset_add(&b->products, in->product_id) : 0;
            break;
        default:
            rc = es_idset_add(&b->orders, in->order_id);
            if (rc == 0 && in->kind == ORD_IN_PLACE_ORDER && orders_id_valid(in->user_id)) {
                rc = es_idset_add(&b->users, in->user_id);
            }
            for (size_t k = 0; rc == 0 && in->items && k < in->nitems; k++) {
                if (orders_id_valid(in->items[k].product_id)) {
                    rc = es_idset_add(&b->products, in->items[k].product_id);
                }
            }
            break;
        }
        if (rc != 0) {
            return -1;
        }
    }
    b->order = es_arena_calloc(arena, b->orders.n + 1, sizeof(*b->order));
    b->user = es_arena_calloc(arena, b->users.n + 1, sizeof(*b->user));
    b->price = es_arena_calloc(arena, b->products.n + 1, sizeof(*b->price));
    b->order_dirty = es_arena_calloc(arena, b->orders.n + 1, 1);
    b->user_dirty = es_arena_calloc(arena, b->users.n + 1, 1);
    b->price_dirty = es_arena_calloc(arena, b->products.n + 1, 1);
    return b->order && b->user && b->price && b->order_dirty && b->user_dirty && b->price_dirty
               ? 0
               : -1;
}

/* Decide, evolve and emit for one command or saga outcome. Returns 0 or -1 with errstr. */
static int handle_order_input(es_service_t *svc, batch_t *b, const es_input_t *rec,
                              const orders_input_t *in, char *errstr, size_t errstr_size)
{
    size_t slot = es_idset_find(&b->orders, in->order_id);
    order_t *order = &b->order[slot];
    const char *invalid = orders_input_invalid(order, in);
    if (invalid) {
        es_service_dead_letter(svc, rec, invalid);
        return 0;
    }
    order_line_t *lines = NULL;
    if (in->kind == ORD_IN_PLACE_ORDER && in->items) {
        lines = es_arena_calloc(es_service_arena(svc), in->nitems, sizeof(*lines));
        if (!lines) {
            snprintf(errstr, errstr_size, "out of memory for the lines of order %s", in->order_id);
            return -1;
        }
    }
    orders_copies_t copies = {.user = lookup_user, .price = lookup_price, .ctx = b};
    orders_event_t ev;
    if (orders_decide(order, in, &copies, lines, &ev) == 0) {
        return 0; /* a late or duplicated saga outcome */
    }
    int existed = order->status != ORDER_NONE;
    orders_evolve(order, &ev);
    if (order->status != ORDER_NONE && !b->order_dirty[slot]) {
        b->order_dirty[slot] = existed ? 1 : 2;
    }
    if (!existed && order->status != ORDER_NONE) {
        /* placed, or fenced by a timeout: either way the record's saga is the order's */
        es_str_copy(order->correlation_id, sizeof(order->correlation_id), rec->env.correlation_id);
    }
    json_t *payload = event_to_json(&ev);
    if (!payload) {
        snprintf(errstr, errstr_size, "out of memory building %s for order %s",
                 orders_event_type(ev.kind), ev.order_id);
        return -1;
    }
    /* A cancellation joins the order's saga: its compensations (stock released, refund) are
     * steps of the saga they undo, on one timeline (docs/SAGAS.md). */
    es_input_t joined;
    if (ev.kind == ORD_EV_ORDER_CANCELLED && order->correlation_id[0]) {
        joined = *rec;
        memcpy(joined.env.correlation_id, order->correlation_id, sizeof(joined.env.correlation_id));
        rec = &joined;
    }
    return es_service_emit(svc, rec, 0, orders_event_type(ev.kind), ev.order_id, order->version,
                           payload, errstr, errstr_size);
}

/* The batch's reads (see es_service_def_t.load): parse every input, queue the loads of the
 * three tables with the batch's first round trip. */
static int load(es_service_t *svc, es_pg_pipeline_t *pl, const es_input_t *inputs, size_t cnt,
                void *opaque, char *errstr, size_t errstr_size)
{
    batch_t *b = opaque;
    es_arena_t *arena = es_service_arena(svc);
    b->ins = es_arena_calloc(arena, cnt, sizeof(*b->ins));
    if (!b->ins || collect(b, arena, inputs, cnt) != 0) {
        snprintf(errstr, errstr_size, "out of memory for a batch of %zu", cnt);
        return -1;
    }
    b->load_orders = orders_store_load_queue(pl, b->orders.ids, b->orders.n);
    b->load_users = orders_store_load_users_queue(pl, b->users.ids, b->users.n);
    b->load_prices = orders_store_load_prices_queue(pl, b->products.ids, b->products.n);
    if (b->load_orders == -1 || b->load_users == -1 || b->load_prices == -1) {
        snprintf(errstr, errstr_size, "out of memory queueing the batch's loads");
        return -1;
    }
    return 0;
}

/* The batch handler (see es_service_def_t.handle): take the loaded rows, apply every new
 * input in log order, queue the writes. */
static int handle(es_service_t *svc, es_input_t *inputs, size_t cnt, void *opaque, char *errstr,
                  size_t errstr_size)
{
    batch_t *b = opaque;
    es_arena_t *arena = es_service_arena(svc);
    es_pg_pipeline_t *reads = es_service_reads(svc);
    orders_store_load_apply(es_pg_pipeline_result(reads, b->load_orders), b->orders.ids,
                            b->orders.n, b->order);
    orders_store_load_users_apply(es_pg_pipeline_result(reads, b->load_users), b->users.ids,
                                  b->users.n, b->user);
    orders_store_load_prices_apply(es_pg_pipeline_result(reads, b->load_prices), b->products.ids,
                                   b->products.n, b->price);
    /* the new inputs only: duplicates were dropped after load() saw them */
    for (size_t i = 0; i < cnt; i++) {
        if (input_from_json(arena, &inputs[i], &b->ins[i]) != 0) {
            snprintf(errstr, errstr_size, "out of memory for a batch of %zu", cnt);
            return -1;
        }
    }
    for (size_t i = 0; i < cnt; i++) {
        const orders_input_t *in = &b->ins[i];
        orders_target_t target = orders_input_target(in->kind);
        if (target == ORD_TARGET_ORDER) {
            if (handle_order_input(svc, b, &inputs[i], in, errstr, errstr_size) != 0) {
                return -1;
            }
            continue;
        }
        const char *invalid = orders_input_invalid(NULL, in);
        if (invalid) {
            es_service_dead_letter(svc, &inputs[i], invalid);
            continue;
        }
        if (target == ORD_TARGET_USER) {
            size_t u = es_idset_find(&b->users, in->user_id);
            b->user_dirty[u] |= (unsigned char)orders_user_apply(&b->user[u], in);
        } else {
            size_t p = es_idset_find(&b->products, in->product_id);
            b->price_dirty[p] |= (unsigned char)orders_price_apply(&b->price[p], in);
        }
    }
    es_pg_pipeline_t *pl = es_service_pipeline(svc);
    if (orders_store_save(pl, b->order, b->order_dirty, b->orders.n) != 0 ||
        orders_store_save_users(pl, b->user, b->user_dirty, b->users.n) != 0 ||
        orders_store_save_prices(pl, b->price, b->price_dirty, b->products.n) != 0) {
        snprintf(errstr, errstr_size, "out of memory queueing order writes");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    batch_t batch;
    memset(&batch, 0, sizeof(batch));
    es_idset_init(&batch.orders);
    es_idset_init(&batch.users);
    es_idset_init(&batch.products);
    es_service_def_t def = {.name = "orders",
                            .schema = "orders",
                            .dlq_topic = "orders.dlq",
                            .topics = topics,
                            .ddl = orders_store_ddl,
                            .wants = wants,
                            .load = load,
                            .handle = handle,
                            .opaque = &batch};
    int rc = es_service_main(argc, argv, &def,
                             "The orders service: places and cancels orders, priced from its "
                             "copy of the\ncatalog and checked against its copy of the users, "
                             "and follows each order's saga.");
    es_idset_fini(&batch.orders);
    es_idset_fini(&batch.users);
    es_idset_fini(&batch.products);
    return rc;
}
