/*
 * main.c: the shop projector: keeps shop_views.users, products, orders and commands up to date
 * from users.events, catalog.events, orders.events and payments.events, exactly once (the
 * shared runtime's positions and the views commit together; every write is version-guarded,
 * so duplicates change nothing). With --rebuild shop it recomputes them from the complete log
 * instead (lib/projection.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domain.h"
#include "projection.h"
#include "store.h"
#include "strmap.h"

static const char *const topics[] = {"users.events", "catalog.events", "orders.events",
                                     "payments.events", NULL};

/* The advisory lock every live batch takes shared and a rebuild's swap takes exclusively. */
#define SHOP_PROJECTOR_SWAP_LOCK 74021

/* Per-batch working set: load() fills it, handle() uses it. The arrays and the ids come from
 * the batch's arena; the sets live across batches (reset at the start of each). */
typedef struct batch {
    user_view_t *users;
    product_view_t *products;
    order_view_t *orders;
    es_idset_t uset, pset, oset; /* the ids of users, products and orders the batch touches */
    int uload, pload, oload;     /* their loads' places in the batch's reads */
} batch_t;

/* Only the events the projection reads are decoded (service.h). */
static int wants(const char *type)
{
    return shop_event_target(type) != SHOP_TARGET_NONE;
}

/* The batch's product view named `id`, or NULL (shop_views_t's lookup). */
static product_view_t *find_product(void *ctx, const char *id)
{
    batch_t *b = ctx;
    size_t i = es_idset_find(&b->pset, id);
    return i == (size_t)-1 ? NULL : &b->products[i];
}

/* The projection's view of an input (borrowing from it). */
static shop_event_t event_of(const es_input_t *in)
{
    return (shop_event_t){.type = in->env.type,
                          .causation_id = in->env.causation_id,
                          .aggregate_id = in->env.aggregate_id,
                          .version = in->env.aggregate_version,
                          .occurred_at = in->env.occurred_at,
                          .payload = in->payload};
}

/* Collect the ids of the views the batch's well-formed inputs touch (the malformed ones are
 * left out: their ids are not to be trusted; handle() dead-letters them). Returns 0 or -1
 * with errstr. */
static int collect_ids(batch_t *b, es_service_t *svc, const es_input_t *inputs, size_t cnt,
                       char *errstr, size_t errstr_size)
{
    es_arena_t *arena = es_service_arena(svc);
    size_t nlines = 0; /* the malformed inputs' lines too: room enough */
    for (size_t i = 0; i < cnt; i++) {
        nlines += json_array_size(json_object_get(inputs[i].payload, "lines"));
    }
    if (es_idset_reset(&b->uset, arena, cnt) != 0 || es_idset_reset(&b->oset, arena, cnt) != 0 ||
        es_idset_reset(&b->pset, arena, cnt + nlines) != 0) {
        snprintf(errstr, errstr_size, "out of memory for a batch of %zu", cnt);
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < cnt && rc == 0; i++) {
        shop_event_t ev = event_of(&inputs[i]);
        if (shop_event_malformed(&ev)) {
            continue;
        }
        const char *id = ev.aggregate_id;
        switch (shop_event_target(ev.type)) {
        case SHOP_TARGET_USER:
            rc = es_idset_add(&b->uset, id);
            break;
        case SHOP_TARGET_PRODUCT:
            rc = es_idset_add(&b->pset, id);
            break;
        case SHOP_TARGET_STOCK: {
            rc = es_idset_add(&b->oset, id);
            const json_t *lines = json_object_get(ev.payload, "lines");
            size_t k;
            const json_t *line;
            json_array_foreach(lines, k, line)
            {
                const char *pid = json_string_value(json_object_get(line, "product_id"));
                if (rc == 0 && pid) {
                    rc = es_idset_add(&b->pset, pid);
                }
            }
            break;
        }
        case SHOP_TARGET_ORDER:
        case SHOP_TARGET_PAYMENT:
            rc = es_idset_add(&b->oset, id);
            break;
        case SHOP_TARGET_COMMAND:
        case SHOP_TARGET_NONE:
            break;
        }
    }
    if (rc != 0) {
        snprintf(errstr, errstr_size, "out of memory indexing a batch of %zu", cnt);
        return -1;
    }
    return 0;
}

/* The runtime's load hook (service.h): the views the batch touches, queued to be loaded with
 * the batch's first round trip. */
static int load(es_service_t *svc, es_pg_pipeline_t *pl, const es_input_t *inputs, size_t cnt,
                void *opaque, char *errstr, size_t errstr_size)
{
    batch_t *b = opaque;
    if (!b) {
        snprintf(errstr, errstr_size, "out of memory for the batch's working set");
        return -1;
    }
    if (collect_ids(b, svc, inputs, cnt, errstr, errstr_size) != 0) {
        return -1;
    }
    es_arena_t *arena = es_service_arena(svc);
    b->users = es_arena_calloc(arena, b->uset.n ? b->uset.n : 1, sizeof(*b->users));
    b->products = es_arena_calloc(arena, b->pset.n ? b->pset.n : 1, sizeof(*b->products));
    b->orders = es_arena_calloc(arena, b->oset.n ? b->oset.n : 1, sizeof(*b->orders));
    if (!b->users || !b->products || !b->orders) {
        snprintf(errstr, errstr_size, "out of memory for a batch of %zu", cnt);
        return -1;
    }
    b->uload = shop_store_load_users_queue(pl, b->uset.ids, b->uset.n);
    b->pload = shop_store_load_products_queue(pl, b->pset.ids, b->pset.n);
    b->oload = shop_store_load_orders_queue(pl, b->oset.ids, b->oset.n);
    if (b->uload == -1 || b->pload == -1 || b->oload == -1) {
        snprintf(errstr, errstr_size, "out of memory queueing the loads of a batch of %zu", cnt);
        return -1;
    }
    return 0;
}

/* The runtime's handler (service.h): dead-letter the malformed inputs, project every
 * well-formed one onto the views load() had loaded, in log order, queue the writes. The
 * inputs are looked at afresh (they need not be those load() saw, nor at the same places);
 * the views are found by id. */
static int handle(es_service_t *svc, es_input_t *inputs, size_t cnt, void *opaque, char *errstr,
                  size_t errstr_size)
{
    batch_t *b = opaque;
    es_arena_t *arena = es_service_arena(svc);
    unsigned char *skip = es_arena_calloc(arena, cnt, 1);
    shop_command_view_t *commands = es_arena_calloc(arena, cnt, sizeof(*commands));
    if (!skip || !commands) {
        snprintf(errstr, errstr_size, "out of memory for a batch of %zu", cnt);
        return -1;
    }
    for (size_t i = 0; i < cnt; i++) {
        shop_event_t ev = event_of(&inputs[i]);
        const char *why = shop_event_malformed(&ev);
        if (why) {
            skip[i] = 1;
            if (es_service_dead_letter(svc, &inputs[i], why) != 0) {
                snprintf(errstr, errstr_size, "could not dead-letter a %s: out of memory", ev.type);
                return -1;
            }
        }
    }
    es_pg_pipeline_t *reads = es_service_reads(svc);
    shop_store_load_users_apply(es_pg_pipeline_result(reads, b->uload), b->uset.ids, b->uset.n,
                                b->users);
    shop_store_load_products_apply(es_pg_pipeline_result(reads, b->pload), b->pset.ids, b->pset.n,
                                   b->products);
    shop_store_load_orders_apply(es_pg_pipeline_result(reads, b->oload), b->oset.ids, b->oset.n,
                                 b->orders);
    size_t nc = 0;
    for (size_t i = 0; i < cnt; i++) {
        if (skip[i]) {
            continue;
        }
        shop_event_t ev = event_of(&inputs[i]);
        shop_target_t target = shop_event_target(ev.type);
        int on_order = target == SHOP_TARGET_STOCK || target == SHOP_TARGET_ORDER ||
                       target == SHOP_TARGET_PAYMENT;
        size_t ui =
            target == SHOP_TARGET_USER ? es_idset_find(&b->uset, ev.aggregate_id) : (size_t)-1;
        size_t oi = on_order ? es_idset_find(&b->oset, ev.aggregate_id) : (size_t)-1;
        shop_views_t views = {.user = ui != (size_t)-1 ? &b->users[ui] : NULL,
                              .order = oi != (size_t)-1 ? &b->orders[oi] : NULL,
                              .product = find_product,
                              .ctx = b};
        shop_effect_t eff;
        const char *why = shop_project(&ev, &views, &eff);
        if (why && es_service_dead_letter(svc, &inputs[i], why) != 0) {
            snprintf(errstr, errstr_size, "could not dead-letter a %s: out of memory", ev.type);
            return -1;
        }
        if (eff.has_command) {
            commands[nc++] = eff.command;
        }
    }
    es_pg_pipeline_t *pl = es_service_pipeline(svc);
    if (shop_store_save_users(pl, b->users, b->uset.n) != 0 ||
        shop_store_save_products(pl, b->products, b->pset.n) != 0 ||
        shop_store_save_orders(pl, b->orders, b->oset.n) != 0 ||
        shop_store_insert_commands(pl, commands, nc) != 0) {
        snprintf(errstr, errstr_size, "out of memory queueing projection writes");
        return -1;
    }
    return 0;
}

/* Fill the shop projection's own part of `def` (lib/projection.c fills in what every
 * projection shares). */
static void shop_def_init(es_service_def_t *def)
{
    batch_t *b = calloc(1, sizeof(*b));
    if (b) {
        es_idset_init(&b->uset);
        es_idset_init(&b->pset);
        es_idset_init(&b->oset);
    }
    def->name = "shop-projector";
    def->ddl = shop_store_ddl;
    def->wants = wants;
    def->load = load;
    def->handle = handle;
    def->opaque = b;
}

/* Free what shop_def_init allocated. */
static void shop_def_fini(es_service_def_t *def)
{
    batch_t *b = def->opaque;
    if (!b) {
        return;
    }
    es_idset_fini(&b->uset);
    es_idset_fini(&b->pset);
    es_idset_fini(&b->oset);
    free(b);
    def->opaque = NULL;
}

static const es_projection_t shop = {
    .name = "shop",
    .program = "es-shop-projector",
    .schema = "shop_views",
    .topics = topics,
    .swap_lock = SHOP_PROJECTOR_SWAP_LOCK,
    .def_init = shop_def_init,
    .def_fini = shop_def_fini,
    .about = "The shop projector: keeps the shop's read models (users, products, orders, command\n"
             "outcomes) in PostgreSQL schema \"shop_views\" from the event log.\n"
             "  --rebuild shop      recompute them from the complete log and swap them in"};

int main(int argc, char **argv)
{
    return es_projection_main(argc, argv, &shop);
}
