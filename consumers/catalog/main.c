/*
 * main.c: the catalog service's wiring. It consumes catalog.commands (AddProduct,
 * ChangePrice, RestockProduct) and the order saga's steps (OrderPlaced and OrderCancelled on
 * orders.events, PaymentCaptured and PaymentDeclined on payments.events), runs each input
 * through the pure rules in domain.c against the batch's working set of products and
 * reservations, and emits the resulting events on catalog.events. Batching, dedup, outbox and
 * positions are the shared runtime's (lib/service.c).
 *
 * One batch costs two reads whatever its size, both in the runtime's first round trip: the
 * reservations of every order it names, then every product named by its commands, its new
 * orders and those reservations' lines, each locked FOR UPDATE in id order; the writes go out
 * set-based on the batch's pipeline.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domain.h"
#include "log.h"
#include "service.h"
#include "store.h"
#include "str.h"
#include "strmap.h"
#include "json_get.h"

static const char *const topics[] = {"catalog.commands", "orders.events", "payments.events", NULL};

/* The service's `wants`: the catalog's commands and the saga steps it reacts to. */
static int wants(const char *type)
{
    return catalog_input_kind(type) >= 0;
}

/* Map a decoded input to the rules' view of it; OrderPlaced's items go to memory from
 * `arena`. The codec validated the payload against its schema, so fields are present and
 * typed (missing ones read as "" and 0 anyway). Returns 0, or -1 when out of memory. */
static int input_from_json(es_arena_t *arena, const es_input_t *rec, catalog_input_t *in)
{
    const json_t *p = rec->payload;
    memset(in, 0, sizeof(*in));
    in->kind = (catalog_input_kind_t)catalog_input_kind(rec->env.type);
    es_str_copy(in->command_id, sizeof(in->command_id), rec->env.event_id);
    es_str_copy(in->product_id, sizeof(in->product_id), es_json_str(p, "product_id"));
    es_str_copy(in->order_id, sizeof(in->order_id), es_json_str(p, "order_id"));
    es_str_copy(in->reason, sizeof(in->reason), es_json_str(p, "reason"));
    in->price = json_integer_value(json_object_get(p, "price"));
    switch (in->kind) {
    case CAT_IN_ADD_PRODUCT:
        in->name = es_json_str(p, "name");
        in->quantity = json_integer_value(json_object_get(p, "stock"));
        break;
    case CAT_IN_RESTOCK_PRODUCT:
        in->quantity = json_integer_value(json_object_get(p, "quantity"));
        break;
    case CAT_IN_ORDER_PLACED: {
        const json_t *items = json_object_get(p, "items");
        in->nlines = json_array_size(items);
        if (in->nlines == 0 || in->nlines > CAT_LINES_MAX) {
            break; /* malformed: catalog_input_malformed() says so */
        }
        catalog_line_t *lines = es_arena_calloc(arena, in->nlines, sizeof(*lines));
        if (!lines) {
            return -1;
        }
        for (size_t k = 0; k < in->nlines; k++) {
            const json_t *item = json_array_get(items, k);
            es_str_copy(lines[k].product_id, sizeof(lines[k].product_id),
                        es_json_str(item, "product_id"));
            lines[k].quantity = json_integer_value(json_object_get(item, "quantity"));
        }
        in->lines = lines;
        break;
    }
    default:
        break;
    }
    return 0;
}

/* The lines of a saga event with each product's figures after it (new reference, or NULL
 * when out of memory). `prods` is aligned with ev->lines. */
static json_t *lines_to_json(const catalog_event_t *ev, catalog_product_t *const *prods)
{
    json_t *arr = json_array();
    for (size_t k = 0; arr && k < ev->nlines; k++) {
        const catalog_product_t *p = prods[k];
        json_t *line = json_pack("{ss sI sI sI sI}", "product_id", ev->lines[k].product_id,
                                 "quantity", (json_int_t)ev->lines[k].quantity, "on_hand",
                                 (json_int_t)p->on_hand, "reserved", (json_int_t)p->reserved,
                                 "product_version", (json_int_t)p->version);
        if (json_array_append_new(arr, line) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

/* The payload of `ev` (new reference, or NULL when out of memory); `prods` as above. */
static json_t *event_to_json(const catalog_event_t *ev, catalog_product_t *const *prods)
{
    const char *pid = ev->product_id;
    switch (ev->kind) {
    case CAT_EV_PRODUCT_ADDED:
        return json_pack("{ss ss sI sI}", "product_id", pid, "name", ev->name, "price",
                         (json_int_t)ev->price, "on_hand", (json_int_t)ev->on_hand);
    case CAT_EV_PRICE_CHANGED:
        return json_pack("{ss sI sI}", "product_id", pid, "price", (json_int_t)ev->price,
                         "old_price", (json_int_t)ev->old_price);
    case CAT_EV_PRODUCT_RESTOCKED:
        return json_pack("{ss sI sI sI}", "product_id", pid, "quantity", (json_int_t)ev->quantity,
                         "on_hand", (json_int_t)ev->on_hand, "reserved", (json_int_t)ev->reserved);
    case CAT_EV_COMMAND_REJECTED:
        return json_pack("{ss ss ss ss}", "command_id", ev->command_id, "command_type",
                         ev->command_type, "product_id", pid, "reason", ev->reason);
    case CAT_EV_STOCK_RESERVED:
    case CAT_EV_STOCK_COMMITTED:
        return json_pack("{ss so}", "order_id", ev->order_id, "lines", lines_to_json(ev, prods));
    case CAT_EV_STOCK_RELEASED:
        return json_pack("{ss so ss}", "order_id", ev->order_id, "lines", lines_to_json(ev, prods),
                         "reason", ev->reason);
    case CAT_EV_STOCK_RESERVATION_REJECTED:
        return json_pack("{ss ss ss}", "order_id", ev->order_id, "reason", ev->reason, "product_id",
                         pid);
    default:
        return NULL;
    }
}

/* A batch's working set of one table: rows by id, in the batch's arena. */
typedef struct rows {
    es_idset_t set;
    unsigned char *existed; /* the row was in the table when loaded */
    unsigned char *dirty;   /* 0 untouched, 1 existed and changed, 2 created */
} rows_t;

/* Per-batch state: the inputs' views, their malformed reasons, and the working sets. */
typedef struct batch {
    catalog_input_t *ins;
    const char **malformed;
    rows_t orders;
    catalog_reservation_t *reservations; /* aligned with orders.set.ids */
    rows_t products;
    catalog_product_t *items; /* aligned with products.set.ids */
    es_idset_t named;         /* the products the batch's commands and new orders name */
    int load_reservations;    /* those loads' places in the batch's reads */
    int load_products;
} batch_t;

/* Make room for `cap` rows from `arena` and forget the previous batch's. Returns 0 or -1. */
static int rows_reset(rows_t *r, es_arena_t *arena, size_t cap)
{
    r->existed = es_arena_calloc(arena, cap ? cap : 1, 1);
    r->dirty = es_arena_calloc(arena, cap ? cap : 1, 1);
    return es_idset_reset(&r->set, arena, cap) == 0 && r->existed && r->dirty ? 0 : -1;
}

/* Mark slot `i` as changed. */
static void rows_touch(rows_t *r, size_t i)
{
    if (!r->dirty[i]) {
        r->dirty[i] = r->existed[i] ? 1 : 2;
    }
}

/* Parse the inputs into b->ins and b->malformed. Returns 0 or -1 (out of memory). */
static int parse_inputs(batch_t *b, es_arena_t *arena, const es_input_t *inputs, size_t cnt)
{
    for (size_t i = 0; i < cnt; i++) {
        if (input_from_json(arena, &inputs[i], &b->ins[i]) != 0) {
            return -1;
        }
        b->malformed[i] = catalog_input_malformed(&b->ins[i]);
    }
    return 0;
}

/* How many products the commands and new orders of b->ins[0..cnt) name, repeats counted. */
static size_t named_count(const batch_t *b, size_t cnt)
{
    size_t n = 0;
    for (size_t i = 0; i < cnt; i++) {
        const catalog_input_t *in = &b->ins[i];
        if (catalog_input_is_command(in)) {
            n++;
        } else if (!b->malformed[i] && in->kind == CAT_IN_ORDER_PLACED) {
            n += in->nlines;
        }
    }
    return n;
}

/* Add to `set` the products the commands and new orders of b->ins[0..cnt) name. Returns 0 or
 * -1 (out of memory). */
static int add_named(es_idset_t *set, const batch_t *b, size_t cnt)
{
    for (size_t i = 0; i < cnt; i++) {
        const catalog_input_t *in = &b->ins[i];
        if (catalog_input_is_command(in)) {
            if (es_idset_add(set, in->product_id) != 0) {
                return -1;
            }
        } else if (!b->malformed[i] && in->kind == CAT_IN_ORDER_PLACED) {
            for (size_t k = 0; k < in->nlines; k++) {
                if (es_idset_add(set, in->lines[k].product_id) != 0) {
                    return -1;
                }
            }
        }
    }
    return 0;
}

/* The batch's reads (see es_service_def_t.load), with its first round trip: the reservations
 * of every well-formed saga input's order, then the products it names and those the
 * reservations' lines name. */
static int load(es_service_t *svc, es_pg_pipeline_t *pl, const es_input_t *inputs, size_t cnt,
                void *opaque, char *errstr, size_t errstr_size)
{
    batch_t *b = opaque;
    es_arena_t *arena = es_service_arena(svc);
    b->ins = es_arena_calloc(arena, cnt ? cnt : 1, sizeof(*b->ins));
    b->malformed = es_arena_calloc(arena, cnt ? cnt : 1, sizeof(*b->malformed));
    if (!b->ins || !b->malformed || parse_inputs(b, arena, inputs, cnt) != 0 ||
        rows_reset(&b->orders, arena, cnt) != 0) {
        goto oom;
    }
    for (size_t i = 0; i < cnt; i++) {
        const catalog_input_t *in = &b->ins[i];
        if (!catalog_input_is_command(in) && !b->malformed[i] &&
            es_idset_add(&b->orders.set, in->order_id) != 0) {
            goto oom;
        }
    }
    if (es_idset_reset(&b->named, arena, named_count(b, cnt)) != 0 ||
        add_named(&b->named, b, cnt) != 0) {
        goto oom;
    }
    b->load_reservations =
        catalog_store_load_reservations_queue(pl, b->orders.set.ids, b->orders.set.n);
    b->load_products = catalog_store_load_products_queue(pl, b->named.ids, b->named.n,
                                                         b->orders.set.ids, b->orders.set.n);
    if (b->load_reservations != -1 && b->load_products != -1) {
        return 0;
    }
oom:
    snprintf(errstr, errstr_size, "out of memory for a batch of %zu", cnt);
    return -1;
}

/* Take the loaded reservations and products: the working set of every product the batch may
 * touch (commands, new orders' items, lines of reservations that hold units). */
static int load_working_set(batch_t *b, es_service_t *svc, size_t cnt, char *errstr,
                            size_t errstr_size)
{
    es_arena_t *arena = es_service_arena(svc);
    size_t pcap = named_count(b, cnt);
    b->reservations =
        es_arena_calloc(arena, b->orders.set.n ? b->orders.set.n : 1, sizeof(*b->reservations));
    if (!b->reservations) {
        goto oom;
    }
    if (catalog_store_load_reservations_apply(
            es_pg_pipeline_result(es_service_reads(svc), b->load_reservations), arena,
            b->orders.set.ids, b->orders.set.n, b->reservations, errstr, errstr_size) != 0) {
        return -1;
    }
    for (size_t r = 0; r < b->orders.set.n; r++) {
        const catalog_reservation_t *rv = &b->reservations[r];
        b->orders.existed[r] = rv->status != CAT_RES_NONE;
        if (rv->status == CAT_RES_RESERVED || rv->status == CAT_RES_COMMITTED) {
            pcap += rv->nlines;
        }
    }
    b->items = es_arena_calloc(arena, pcap ? pcap : 1, sizeof(*b->items));
    if (!b->items || rows_reset(&b->products, arena, pcap) != 0) {
        goto oom;
    }
    if (add_named(&b->products.set, b, cnt) != 0) {
        goto oom;
    }
    for (size_t r = 0; r < b->orders.set.n; r++) {
        const catalog_reservation_t *rv = &b->reservations[r];
        if (rv->status != CAT_RES_RESERVED && rv->status != CAT_RES_COMMITTED) {
            continue;
        }
        for (size_t k = 0; k < rv->nlines; k++) {
            if (es_idset_add(&b->products.set, rv->lines[k].product_id) != 0) {
                goto oom;
            }
        }
    }
    /* the same reservations, locked since, named these products to the load too */
    catalog_store_load_products_apply(
        es_pg_pipeline_result(es_service_reads(svc), b->load_products), b->products.set.ids,
        b->products.set.n, b->items);
    for (size_t p = 0; p < b->products.set.n; p++) {
        b->products.existed[p] = b->items[p].version != 0;
    }
    return 0;
oom:
    snprintf(errstr, errstr_size, "out of memory for a batch of %zu", cnt);
    return -1;
}

/* Decide, apply and emit one command. */
static int handle_command(es_service_t *svc, batch_t *b, const es_input_t *rec,
                          const catalog_input_t *in, char *errstr, size_t errstr_size)
{
    size_t slot = es_idset_find(&b->products.set, in->product_id);
    if (slot == (size_t)-1) {
        snprintf(errstr, errstr_size, "product \"%s\" missing from the working set",
                 in->product_id);
        return -1;
    }
    catalog_product_t *p = &b->items[slot];
    catalog_event_t ev;
    catalog_product_decide(p, in, &ev);
    catalog_product_evolve(p, &ev);
    if (ev.kind != CAT_EV_COMMAND_REJECTED) {
        rows_touch(&b->products, slot);
    }
    return es_service_emit(svc, rec, 0, catalog_event_type(ev.kind), ev.product_id, p->version,
                           event_to_json(&ev, NULL), errstr, errstr_size);
}

/* Decide, apply and emit one saga step (or dead-letter it, or ignore it). */
static int handle_saga(es_service_t *svc, batch_t *b, const es_input_t *rec,
                       const catalog_input_t *in, char *errstr, size_t errstr_size)
{
    size_t r = es_idset_find(&b->orders.set, in->order_id);
    if (r == (size_t)-1) {
        snprintf(errstr, errstr_size, "order \"%s\" missing from the working set", in->order_id);
        return -1;
    }
    catalog_reservation_t *res = &b->reservations[r];
    catalog_product_t *prods[CAT_LINES_MAX];
    size_t slots[CAT_LINES_MAX];
    size_t n;
    const catalog_line_t *lines = catalog_stock_lines(res, in, &n);
    if (n > CAT_LINES_MAX) {
        snprintf(errstr, errstr_size, "order \"%s\" has %zu lines", in->order_id, n);
        return -1;
    }
    for (size_t k = 0; k < n; k++) {
        slots[k] = es_idset_find(&b->products.set, lines[k].product_id);
        if (slots[k] == (size_t)-1) {
            snprintf(errstr, errstr_size,
                     "product \"%s\" of order \"%s\" missing from the "
                     "working set",
                     lines[k].product_id, in->order_id);
            return -1;
        }
        prods[k] = &b->items[slots[k]];
    }
    const char *invalid = catalog_input_invalid(res, prods, in);
    if (invalid) {
        es_service_dead_letter(svc, rec, invalid);
        return 0;
    }
    catalog_event_t ev;
    if (!catalog_stock_decide(res, prods, in, &ev)) {
        if (res->status == CAT_RES_NONE) {
            es_log_debug("saga step for an order without a reservation ignored",
                         "order_id=%s type=%s topic=%s partition=%d offset=%lld", in->order_id,
                         rec->env.type, rec->topic, rec->partition, (long long)rec->offset);
        }
        return 0;
    }
    catalog_stock_evolve(res, prods, &ev);
    rows_touch(&b->orders, r);
    if (ev.kind != CAT_EV_STOCK_RESERVATION_REJECTED) {
        for (size_t k = 0; k < n; k++) {
            rows_touch(&b->products, slots[k]);
        }
    }
    return es_service_emit(svc, rec, 0, catalog_event_type(ev.kind), ev.order_id, res->version,
                           event_to_json(&ev, prods), errstr, errstr_size);
}

/* The service's handler (see es_service_def_t.handle). */
static int handle(es_service_t *svc, es_input_t *inputs, size_t cnt, void *opaque, char *errstr,
                  size_t errstr_size)
{
    batch_t *b = opaque;
    es_arena_t *arena = es_service_arena(svc);
    /* the new inputs only: duplicates were dropped after load() saw them */
    if (parse_inputs(b, arena, inputs, cnt) != 0) {
        snprintf(errstr, errstr_size, "out of memory for a batch of %zu", cnt);
        return -1;
    }
    if (load_working_set(b, svc, cnt, errstr, errstr_size) != 0) {
        return -1;
    }
    for (size_t i = 0; i < cnt; i++) {
        const catalog_input_t *in = &b->ins[i];
        if (b->malformed[i]) {
            es_service_dead_letter(svc, &inputs[i], b->malformed[i]);
            continue;
        }
        int rc = catalog_input_is_command(in)
                     ? handle_command(svc, b, &inputs[i], in, errstr, errstr_size)
                     : handle_saga(svc, b, &inputs[i], in, errstr, errstr_size);
        if (rc != 0) {
            return -1;
        }
    }
    es_pg_pipeline_t *pl = es_service_pipeline(svc);
    if (catalog_store_save_reservations(pl, b->reservations, b->orders.dirty, b->orders.set.n) !=
            0 ||
        catalog_store_save_products(pl, b->items, b->products.dirty, b->products.set.n) != 0) {
        snprintf(errstr, errstr_size, "out of memory queueing catalog writes");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    batch_t batch;
    memset(&batch, 0, sizeof(batch));
    es_idset_init(&batch.orders.set);
    es_idset_init(&batch.products.set);
    es_idset_init(&batch.named);
    es_service_def_t def = {.name = "catalog",
                            .schema = "catalog",
                            .dlq_topic = "catalog.dlq",
                            .topics = topics,
                            .ddl = catalog_store_ddl,
                            .wants = wants,
                            .load = load,
                            .handle = handle,
                            .opaque = &batch};
    int rc = es_service_main(argc, argv, &def,
                             "The catalog service: keeps products, prices and stock, and holds, "
                             "sells or\nreleases each order's units for the order saga.");
    es_idset_fini(&batch.orders.set);
    es_idset_fini(&batch.products.set);
    es_idset_fini(&batch.named);
    return rc;
}
