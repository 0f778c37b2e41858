/*
 * test_catalog_domain.c: the catalog context's pure rules (consumers/catalog/domain.c):
 * every command's success and every rejection reason (INVALID_ID, PRODUCT_EXISTS,
 * INVALID_NAME, INVALID_PRICE, INVALID_QUANTITY incl. a restock overflow, PRODUCT_NOT_FOUND,
 * PRICE_UNCHANGED) with the id and name length limits; reservations all or none (a short
 * second line holds nothing and names that product), duplicate lines checked as their sum,
 * UNKNOWN_PRODUCT before OUT_OF_STOCK, units already reserved by other orders; commit,
 * release from RESERVED (declined, cancelled) and from COMMITTED (on_hand back); an order
 * rejected with TIMEOUT undone like a cancel (any other rejection changing nothing); table-driven
 * sequences of duplicates and late events that must change nothing, with the invariant
 * 0 <= reserved <= on_hand and the versions checked after every step; the malformed and
 * invalid saga inputs the wiring dead-letters; the wire names; and a seeded random run of
 * 20,000 saga steps over 4 products whose stock always matches the reservations' states.
 */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "../../consumers/catalog/domain.h"

/* ---- helpers ---- */

/* The products a test knows, found by id the way the wiring's working set finds them: an
 * unknown id gets a slot with version 0 (a product that does not exist). */
typedef struct shop {
    catalog_product_t products[16];
    size_t n;
} shop_t;

static catalog_product_t *shop_find(shop_t *s, const char *id)
{
    for (size_t i = 0; i < s->n; i++) {
        if (!strcmp(s->products[i].id, id)) {
            return &s->products[i];
        }
    }
    ck_assert_uint_lt(s->n, sizeof(s->products) / sizeof(s->products[0]));
    catalog_product_t *p = &s->products[s->n++];
    memset(p, 0, sizeof(*p));
    snprintf(p->id, sizeof(p->id), "%s", id);
    return p;
}

/* Every product keeps 0 <= reserved <= on_hand. */
static void check_invariants(const shop_t *s, const char *where)
{
    for (size_t i = 0; i < s->n; i++) {
        const catalog_product_t *p = &s->products[i];
        ck_assert_msg(p->reserved >= 0 && p->reserved <= p->on_hand,
                      "%s: product %s has reserved %" PRId64 " of on_hand %" PRId64, where, p->id,
                      p->reserved, p->on_hand);
    }
}

static catalog_input_t command(catalog_input_kind_t kind, const char *product_id, int64_t price,
                               int64_t quantity)
{
    catalog_input_t in;
    memset(&in, 0, sizeof(in));
    in.kind = kind;
    snprintf(in.command_id, sizeof(in.command_id), "cmd-%d", (int)kind);
    snprintf(in.product_id, sizeof(in.product_id), "%s", product_id);
    in.name = "Widget";
    in.price = price;
    in.quantity = quantity;
    return in;
}

/* Decide then evolve a command, as the service does; returns the event. */
static catalog_event_t apply_command(catalog_product_t *p, const catalog_input_t *in)
{
    catalog_event_t ev;
    catalog_product_decide(p, in, &ev);
    catalog_product_evolve(p, &ev);
    return ev;
}

/* Add product `id` at `price` with `stock` units to the shop through the rules. */
static catalog_product_t *add(shop_t *s, const char *id, int64_t price, int64_t stock)
{
    catalog_product_t *p = shop_find(s, id);
    catalog_input_t in = command(CAT_IN_ADD_PRODUCT, id, price, stock);
    catalog_event_t ev = apply_command(p, &in);
    ck_assert_int_eq(ev.kind, CAT_EV_PRODUCT_ADDED);
    return p;
}

static catalog_input_t saga(catalog_input_kind_t kind, const char *order_id,
                            const catalog_line_t *lines, size_t nlines)
{
    catalog_input_t in;
    memset(&in, 0, sizeof(in));
    in.kind = kind;
    snprintf(in.order_id, sizeof(in.order_id), "%s", order_id);
    in.lines = lines;
    in.nlines = nlines;
    return in;
}

/* Run a saga input through the rules as the wiring does: resolve the lines' products, check
 * the input is neither malformed nor invalid, decide, evolve. Returns 1 with *ev when an event
 * came, 0 when the input changed nothing. */
static int apply_saga(shop_t *s, catalog_reservation_t *res, const catalog_input_t *in,
                      catalog_event_t *ev)
{
    size_t n;
    const catalog_line_t *lines = catalog_stock_lines(res, in, &n);
    catalog_product_t *prods[CAT_LINES_MAX];
    ck_assert_uint_le(n, CAT_LINES_MAX);
    for (size_t k = 0; k < n; k++) {
        prods[k] = shop_find(s, lines[k].product_id);
    }
    ck_assert_ptr_null(catalog_input_malformed(in));
    ck_assert_ptr_null(catalog_input_invalid(res, prods, in));
    if (!catalog_stock_decide(res, prods, in, ev)) {
        return 0;
    }
    catalog_stock_evolve(res, prods, ev);
    return 1;
}

/* Place order `order_id` with `lines` (borrowed by the reservation). Returns the event. */
static catalog_event_t place(shop_t *s, catalog_reservation_t *res, const char *order_id,
                             const catalog_line_t *lines, size_t n)
{
    catalog_input_t in = saga(CAT_IN_ORDER_PLACED, order_id, lines, n);
    catalog_event_t ev;
    ck_assert_int_eq(apply_saga(s, res, &in, &ev), 1);
    return ev;
}

/* One saga step for order `order_id`; returns the event kind, or -1 when nothing happened. */
static int step(shop_t *s, catalog_reservation_t *res, catalog_input_kind_t kind,
                const char *order_id, catalog_event_t *ev)
{
    catalog_input_t in = saga(kind, order_id, NULL, 0);
    return apply_saga(s, res, &in, ev) ? (int)ev->kind : -1;
}

/* Field by field (a struct copy need not copy padding). */
static int same_reservation(const catalog_reservation_t *a, const catalog_reservation_t *b)
{
    return !strcmp(a->order_id, b->order_id) && a->status == b->status && a->lines == b->lines &&
           a->nlines == b->nlines && a->version == b->version;
}

static catalog_reservation_t no_reservation(void)
{
    catalog_reservation_t res;
    memset(&res, 0, sizeof(res));
    return res;
}

/* ---- commands ---- */

typedef enum { P_MISSING, P_PRESENT } setup_t;

static const struct {
    const char *name;
    setup_t setup;
    int64_t stock; /* of the present product "P" (price 100) */
    catalog_input_kind_t kind;
    const char *product_id; /* NULL: 101 x 'x' */
    const char *pname;      /* AddProduct's name; NULL: 201 x 'n' */
    int64_t price;
    int64_t quantity;
    const char *reason;
} rejections[] = {
    {"add empty id", P_MISSING, 0, CAT_IN_ADD_PRODUCT, "", "W", 5, 1, "INVALID_ID"},
    {"add id with space", P_MISSING, 0, CAT_IN_ADD_PRODUCT, "a b", "W", 5, 1, "INVALID_ID"},
    {"add id with slash", P_MISSING, 0, CAT_IN_ADD_PRODUCT, "a/b", "W", 5, 1, "INVALID_ID"},
    {"add id non-ascii", P_MISSING, 0, CAT_IN_ADD_PRODUCT, "caf\xc3\xa9", "W", 5, 1, "INVALID_ID"},
    {"add id of 101", P_MISSING, 0, CAT_IN_ADD_PRODUCT, NULL, "W", 5, 1, "INVALID_ID"},
    {"add invalid id before exists", P_MISSING, 0, CAT_IN_ADD_PRODUCT, "P P", "", 0, -1,
     "INVALID_ID"},
    {"add existing", P_PRESENT, 3, CAT_IN_ADD_PRODUCT, "P", "W", 5, 1, "PRODUCT_EXISTS"},
    {"add existing, bad fields", P_PRESENT, 3, CAT_IN_ADD_PRODUCT, "P", "", 0, -1,
     "PRODUCT_EXISTS"},
    {"add empty name", P_MISSING, 0, CAT_IN_ADD_PRODUCT, "P", "", 5, 1, "INVALID_NAME"},
    {"add name of 201", P_MISSING, 0, CAT_IN_ADD_PRODUCT, "P", NULL, 5, 1, "INVALID_NAME"},
    {"add price zero", P_MISSING, 0, CAT_IN_ADD_PRODUCT, "P", "W", 0, 1, "INVALID_PRICE"},
    {"add price negative", P_MISSING, 0, CAT_IN_ADD_PRODUCT, "P", "W", -5, 1, "INVALID_PRICE"},
    {"add price INT64_MIN", P_MISSING, 0, CAT_IN_ADD_PRODUCT, "P", "W", INT64_MIN, 1,
     "INVALID_PRICE"},
    {"add stock negative", P_MISSING, 0, CAT_IN_ADD_PRODUCT, "P", "W", 5, -1, "INVALID_QUANTITY"},
    {"add stock INT64_MIN", P_MISSING, 0, CAT_IN_ADD_PRODUCT, "P", "W", 5, INT64_MIN,
     "INVALID_QUANTITY"},
    {"price invalid id", P_MISSING, 0, CAT_IN_CHANGE_PRICE, "p#1", "", 5, 0, "INVALID_ID"},
    {"price missing", P_MISSING, 0, CAT_IN_CHANGE_PRICE, "P", "", 5, 0, "PRODUCT_NOT_FOUND"},
    {"price zero", P_PRESENT, 3, CAT_IN_CHANGE_PRICE, "P", "", 0, 0, "INVALID_PRICE"},
    {"price negative", P_PRESENT, 3, CAT_IN_CHANGE_PRICE, "P", "", -100, 0, "INVALID_PRICE"},
    {"price unchanged", P_PRESENT, 3, CAT_IN_CHANGE_PRICE, "P", "", 100, 0, "PRICE_UNCHANGED"},
    {"restock invalid id", P_MISSING, 0, CAT_IN_RESTOCK_PRODUCT, "", "", 0, 5, "INVALID_ID"},
    {"restock missing", P_MISSING, 0, CAT_IN_RESTOCK_PRODUCT, "P", "", 0, 5, "PRODUCT_NOT_FOUND"},
    {"restock zero", P_PRESENT, 3, CAT_IN_RESTOCK_PRODUCT, "P", "", 0, 0, "INVALID_QUANTITY"},
    {"restock negative", P_PRESENT, 3, CAT_IN_RESTOCK_PRODUCT, "P", "", 0, -4, "INVALID_QUANTITY"},
    {"restock overflow by one", P_PRESENT, INT64_MAX - 10, CAT_IN_RESTOCK_PRODUCT, "P", "", 0, 11,
     "INVALID_QUANTITY"},
    {"restock INT64_MAX on stock", P_PRESENT, 1, CAT_IN_RESTOCK_PRODUCT, "P", "", 0, INT64_MAX,
     "INVALID_QUANTITY"},
};
#define REJECTIONS_N ((int)(sizeof(rejections) / sizeof(rejections[0])))

START_TEST(test_command_rejected)
{
    const char *name = rejections[_i].name;
    char long_id[CAT_ID_CHARS + 2], long_name[CAT_NAME_CHARS + 2];
    memset(long_id, 'x', CAT_ID_CHARS + 1);
    long_id[CAT_ID_CHARS + 1] = '\0';
    memset(long_name, 'n', CAT_NAME_CHARS + 1);
    long_name[CAT_NAME_CHARS + 1] = '\0';

    shop_t s = {.n = 0};
    catalog_product_t *p = rejections[_i].setup == P_PRESENT
                               ? add(&s, "P", 100, rejections[_i].stock)
                               : shop_find(&s, "P");
    catalog_product_t before = *p;
    const char *id = rejections[_i].product_id ? rejections[_i].product_id : long_id;
    catalog_input_t in =
        command(rejections[_i].kind, id, rejections[_i].price, rejections[_i].quantity);
    in.name = rejections[_i].pname ? rejections[_i].pname : long_name;

    catalog_event_t ev;
    catalog_product_decide(p, &in, &ev);
    ck_assert_msg(ev.kind == CAT_EV_COMMAND_REJECTED, "%s: kind %s", name,
                  catalog_event_type(ev.kind));
    ck_assert_ptr_nonnull(ev.reason);
    ck_assert_msg(!strcmp(ev.reason, rejections[_i].reason), "%s: reason %s, expected %s", name,
                  ev.reason, rejections[_i].reason);
    ck_assert_str_eq(ev.command_id, in.command_id);
    ck_assert_str_eq(ev.command_type, catalog_input_type(in.kind));
    ck_assert_str_eq(ev.product_id, in.product_id);

    catalog_product_evolve(p, &ev);
    ck_assert_msg(!memcmp(p, &before, sizeof(before)), "%s: a rejection changed the product", name);
    ck_assert_int_eq(p->version, rejections[_i].setup == P_PRESENT ? 1 : 0);
}
END_TEST

START_TEST(test_add_product)
{
    catalog_product_t p;
    memset(&p, 0, sizeof(p));
    catalog_input_t in = command(CAT_IN_ADD_PRODUCT, "sku-1.a_b:C", 1250, 7);
    in.name = "Blue mug";
    catalog_event_t ev;
    catalog_product_decide(&p, &in, &ev);
    ck_assert_int_eq(ev.kind, CAT_EV_PRODUCT_ADDED);
    ck_assert_str_eq(ev.product_id, "sku-1.a_b:C");
    ck_assert_str_eq(ev.name, "Blue mug");
    ck_assert_int_eq(ev.price, 1250);
    ck_assert_int_eq(ev.on_hand, 7);
    ck_assert_ptr_null(ev.reason);
    ck_assert_ptr_eq(p.name, NULL); /* decide does not touch the state */

    catalog_product_evolve(&p, &ev);
    ck_assert_str_eq(p.id, "sku-1.a_b:C");
    ck_assert_str_eq(p.name, "Blue mug");
    ck_assert_int_eq(p.price, 1250);
    ck_assert_int_eq(p.on_hand, 7);
    ck_assert_int_eq(p.reserved, 0);
    ck_assert_int_eq(p.version, 1);

    /* no stock at all is a valid start */
    memset(&p, 0, sizeof(p));
    in = command(CAT_IN_ADD_PRODUCT, "empty", 1, 0);
    ev = apply_command(&p, &in);
    ck_assert_int_eq(ev.kind, CAT_EV_PRODUCT_ADDED);
    ck_assert_int_eq(p.on_hand, 0);
    ck_assert_int_eq(p.version, 1);
}
END_TEST

START_TEST(test_id_and_name_limits)
{
    char id[CAT_ID_MAX];
    memset(id, 'i', CAT_ID_CHARS);
    id[CAT_ID_CHARS] = '\0';
    ck_assert(catalog_id_valid(id));
    catalog_product_t p;
    memset(&p, 0, sizeof(p));
    catalog_input_t in = command(CAT_IN_ADD_PRODUCT, id, 5, 1);
    ck_assert_int_eq(apply_command(&p, &in).kind, CAT_EV_PRODUCT_ADDED);
    ck_assert_str_eq(p.id, id);
    id[CAT_ID_CHARS] = 'i';
    id[CAT_ID_CHARS + 1] = '\0';
    ck_assert(!catalog_id_valid(id));
    ck_assert(catalog_id_valid("a"));
    ck_assert(catalog_id_valid("A-z_0.9:x"));
    ck_assert(!catalog_id_valid(""));
    ck_assert(!catalog_id_valid("tab\t"));

    /* names count code points: 200 two-byte characters are fine, 201 are not */
    char name[2 * CAT_NAME_CHARS + 3];
    for (int i = 0; i < CAT_NAME_CHARS; i++) {
        memcpy(name + 2 * i, "\xc3\xa9", 2);
    }
    name[2 * CAT_NAME_CHARS] = '\0';
    ck_assert(catalog_name_valid(name));
    memset(&p, 0, sizeof(p));
    in = command(CAT_IN_ADD_PRODUCT, "P", 5, 1);
    in.name = name;
    ck_assert_int_eq(apply_command(&p, &in).kind, CAT_EV_PRODUCT_ADDED);
    memcpy(name + 2 * CAT_NAME_CHARS, "\xc3\xa9", 3);
    ck_assert(!catalog_name_valid(name));
    ck_assert(catalog_name_valid("x"));
    ck_assert(!catalog_name_valid(""));
}
END_TEST

START_TEST(test_change_price)
{
    shop_t s = {.n = 0};
    catalog_product_t *p = add(&s, "P", 100, 4);
    catalog_input_t in = command(CAT_IN_CHANGE_PRICE, "P", 120, 0);
    catalog_event_t ev = apply_command(p, &in);
    ck_assert_int_eq(ev.kind, CAT_EV_PRICE_CHANGED);
    ck_assert_str_eq(ev.product_id, "P");
    ck_assert_int_eq(ev.price, 120);
    ck_assert_int_eq(ev.old_price, 100);
    ck_assert_int_eq(p->price, 120);
    ck_assert_int_eq(p->on_hand, 4);
    ck_assert_int_eq(p->version, 2);

    in = command(CAT_IN_CHANGE_PRICE, "P", 1, 0);
    ev = apply_command(p, &in);
    ck_assert_int_eq(ev.kind, CAT_EV_PRICE_CHANGED);
    ck_assert_int_eq(ev.old_price, 120);
    ck_assert_int_eq(p->price, 1);
    ck_assert_int_eq(p->version, 3);
}
END_TEST

START_TEST(test_restock)
{
    shop_t s = {.n = 0};
    catalog_product_t *p = add(&s, "P", 100, 4);
    catalog_reservation_t res = no_reservation();
    static const catalog_line_t lines[] = {{"P", 3}};
    ck_assert_int_eq(place(&s, &res, "o-1", lines, 1).kind, CAT_EV_STOCK_RESERVED);
    ck_assert_int_eq(p->version, 2);

    catalog_input_t in = command(CAT_IN_RESTOCK_PRODUCT, "P", 0, 6);
    catalog_event_t ev = apply_command(p, &in);
    ck_assert_int_eq(ev.kind, CAT_EV_PRODUCT_RESTOCKED);
    ck_assert_int_eq(ev.quantity, 6);
    ck_assert_int_eq(ev.on_hand, 10);
    ck_assert_int_eq(ev.reserved, 3); /* what orders hold is untouched */
    ck_assert_int_eq(p->on_hand, 10);
    ck_assert_int_eq(p->reserved, 3);
    ck_assert_int_eq(p->version, 3);

    /* up to INT64_MAX exactly */
    in = command(CAT_IN_RESTOCK_PRODUCT, "P", 0, INT64_MAX - 10);
    ev = apply_command(p, &in);
    ck_assert_int_eq(ev.kind, CAT_EV_PRODUCT_RESTOCKED);
    ck_assert_int_eq(p->on_hand, INT64_MAX);
    check_invariants(&s, "restock");
}
END_TEST

/* ---- reserving ---- */

/* Products for the reservation table: A (5 on hand, 1 held by another order), B (3), C (0). */
static void stock_abc(shop_t *s)
{
    add(s, "A", 10, 5)->reserved = 1;
    add(s, "B", 20, 3);
    add(s, "C", 30, 0);
}

static const struct {
    const char *name;
    catalog_line_t lines[4];
    size_t n;
    const char *reason; /* NULL: reserved */
    const char *product_id;
} reservations[] = {
    {"one line", {{"A", 4}}, 1, NULL, NULL},
    {"every line", {{"A", 2}, {"B", 3}}, 2, NULL, NULL},
    {"exactly available", {{"A", 4}, {"B", 3}}, 2, NULL, NULL},
    {"duplicates within available", {{"A", 2}, {"B", 1}, {"A", 2}}, 3, NULL, NULL},
    {"held by others count", {{"A", 5}}, 1, "OUT_OF_STOCK", "A"},
    {"first line short", {{"B", 4}, {"A", 1}}, 2, "OUT_OF_STOCK", "B"},
    {"second line short", {{"A", 2}, {"B", 4}}, 2, "OUT_OF_STOCK", "B"},
    {"nothing on hand", {{"A", 1}, {"C", 1}}, 2, "OUT_OF_STOCK", "C"},
    {"duplicates summed", {{"B", 2}, {"A", 1}, {"B", 2}}, 3, "OUT_OF_STOCK", "B"},
    {"duplicates, first short wins",
     {{"A", 3}, {"B", 2}, {"A", 2}, {"B", 2}},
     4,
     "OUT_OF_STOCK",
     "A"},
    {"unknown product", {{"X", 1}}, 1, "UNKNOWN_PRODUCT", "X"},
    {"unknown after good", {{"A", 1}, {"X", 1}}, 2, "UNKNOWN_PRODUCT", "X"},
    {"unknown checked before short", {{"B", 9}, {"X", 1}, {"Y", 1}}, 3, "UNKNOWN_PRODUCT", "X"},
    {"quantities overflow", {{"A", INT64_MAX}, {"A", INT64_MAX}}, 2, "OUT_OF_STOCK", "A"},
    {"one huge line", {{"B", INT64_MAX}}, 1, "OUT_OF_STOCK", "B"},
};
#define RESERVATIONS_N ((int)(sizeof(reservations) / sizeof(reservations[0])))

START_TEST(test_reserve)
{
    const char *name = reservations[_i].name;
    shop_t s = {.n = 0};
    stock_abc(&s);
    shop_t before = s;
    catalog_reservation_t res = no_reservation();
    catalog_event_t ev = place(&s, &res, "o-1", reservations[_i].lines, reservations[_i].n);
    check_invariants(&s, name);
    ck_assert_str_eq(ev.order_id, "o-1");
    ck_assert_str_eq(res.order_id, "o-1");
    ck_assert_int_eq(res.version, 1);
    ck_assert_ptr_eq(res.lines, reservations[_i].lines);
    ck_assert_uint_eq(res.nlines, reservations[_i].n);
    if (reservations[_i].reason) {
        ck_assert_msg(ev.kind == CAT_EV_STOCK_RESERVATION_REJECTED, "%s: kind %s", name,
                      catalog_event_type(ev.kind));
        ck_assert_msg(!strcmp(ev.reason, reservations[_i].reason), "%s: reason %s", name,
                      ev.reason);
        ck_assert_msg(!strcmp(ev.product_id, reservations[_i].product_id), "%s: product %s", name,
                      ev.product_id);
        ck_assert_int_eq(res.status, CAT_RES_REJECTED);
        /* all or none: no product moved, not even its version */
        for (size_t i = 0; i < before.n; i++) {
            ck_assert_msg(!memcmp(&s.products[i], &before.products[i], sizeof(before.products[i])),
                          "%s: product %s changed", name, before.products[i].id);
        }
        return;
    }
    ck_assert_msg(ev.kind == CAT_EV_STOCK_RESERVED, "%s: kind %s (%s %s)", name,
                  catalog_event_type(ev.kind), ev.reason ? ev.reason : "", ev.product_id);
    ck_assert_int_eq(res.status, CAT_RES_RESERVED);
    ck_assert_ptr_eq(ev.lines, reservations[_i].lines);
    ck_assert_uint_eq(ev.nlines, reservations[_i].n);
    for (size_t i = 0; i < before.n; i++) {
        int64_t want = 0;
        for (size_t k = 0; k < reservations[_i].n; k++) {
            if (!strcmp(reservations[_i].lines[k].product_id, before.products[i].id)) {
                want += reservations[_i].lines[k].quantity;
            }
        }
        const catalog_product_t *p = &s.products[i];
        ck_assert_int_eq(p->on_hand, before.products[i].on_hand);
        ck_assert_int_eq(p->reserved, before.products[i].reserved + want);
        /* touched once per event, whatever the number of lines naming it */
        ck_assert_int_eq(p->version, before.products[i].version + (want ? 1 : 0));
    }
}
END_TEST

START_TEST(test_second_line_short_holds_nothing)
{
    shop_t s = {.n = 0};
    catalog_product_t *a = add(&s, "A", 10, 10);
    catalog_product_t *b = add(&s, "B", 10, 1);
    static const catalog_line_t lines[] = {{"A", 6}, {"B", 2}};
    catalog_reservation_t res = no_reservation();
    catalog_event_t ev = place(&s, &res, "o-1", lines, 2);
    ck_assert_int_eq(ev.kind, CAT_EV_STOCK_RESERVATION_REJECTED);
    ck_assert_str_eq(ev.reason, "OUT_OF_STOCK");
    ck_assert_str_eq(ev.product_id, "B");
    ck_assert_int_eq(a->reserved, 0);
    ck_assert_int_eq(b->reserved, 0);
    ck_assert_int_eq(a->version, 1);

    /* the refused order held nothing: another order may take all of A */
    static const catalog_line_t all_a[] = {{"A", 10}};
    catalog_reservation_t res2 = no_reservation();
    ck_assert_int_eq(place(&s, &res2, "o-2", all_a, 1).kind, CAT_EV_STOCK_RESERVED);
    ck_assert_int_eq(a->reserved, 10);
    check_invariants(&s, "after o-2");
}
END_TEST

START_TEST(test_duplicate_lines_summed)
{
    shop_t s = {.n = 0};
    catalog_product_t *a = add(&s, "A", 10, 3);
    static const catalog_line_t twice[] = {{"A", 2}, {"A", 2}};
    catalog_reservation_t res = no_reservation();
    catalog_event_t ev = place(&s, &res, "o-1", twice, 2);
    ck_assert_int_eq(ev.kind, CAT_EV_STOCK_RESERVATION_REJECTED);
    ck_assert_str_eq(ev.reason, "OUT_OF_STOCK");
    ck_assert_str_eq(ev.product_id, "A");
    ck_assert_int_eq(a->reserved, 0);

    static const catalog_line_t fits[] = {{"A", 2}, {"A", 1}};
    res = no_reservation();
    ev = place(&s, &res, "o-2", fits, 2);
    ck_assert_int_eq(ev.kind, CAT_EV_STOCK_RESERVED);
    ck_assert_int_eq(a->reserved, 3);
    ck_assert_int_eq(a->version, 2); /* one event, one version */

    /* and they come back as their sum too, in one version step */
    ck_assert_int_eq(step(&s, &res, CAT_IN_PAYMENT_CAPTURED, "o-2", &ev), CAT_EV_STOCK_COMMITTED);
    ck_assert_int_eq(a->on_hand, 0);
    ck_assert_int_eq(a->reserved, 0);
    ck_assert_int_eq(a->version, 3);
    ck_assert_int_eq(step(&s, &res, CAT_IN_ORDER_CANCELLED, "o-2", &ev), CAT_EV_STOCK_RELEASED);
    ck_assert_int_eq(a->on_hand, 3);
    ck_assert_int_eq(a->reserved, 0);
    ck_assert_int_eq(a->version, 4);
}
END_TEST

/* ---- after the reservation ---- */

START_TEST(test_commit)
{
    shop_t s = {.n = 0};
    catalog_product_t *a = add(&s, "A", 10, 5);
    catalog_product_t *b = add(&s, "B", 10, 4);
    static const catalog_line_t lines[] = {{"A", 2}, {"B", 4}};
    catalog_reservation_t res = no_reservation();
    place(&s, &res, "o-1", lines, 2);
    ck_assert_int_eq(a->reserved, 2);
    ck_assert_int_eq(b->reserved, 4);

    catalog_event_t ev;
    ck_assert_int_eq(step(&s, &res, CAT_IN_PAYMENT_CAPTURED, "o-1", &ev), CAT_EV_STOCK_COMMITTED);
    ck_assert_str_eq(ev.order_id, "o-1");
    ck_assert_ptr_eq(ev.lines, lines);
    ck_assert_uint_eq(ev.nlines, 2);
    ck_assert_ptr_null(ev.reason);
    ck_assert_int_eq(res.status, CAT_RES_COMMITTED);
    ck_assert_int_eq(res.version, 2);
    ck_assert_int_eq(a->on_hand, 3);
    ck_assert_int_eq(a->reserved, 0);
    ck_assert_int_eq(b->on_hand, 0);
    ck_assert_int_eq(b->reserved, 0);
    ck_assert_int_eq(a->version, 3);
    ck_assert_int_eq(b->version, 3);
    check_invariants(&s, "commit");
}
END_TEST

/* Release from RESERVED: the held units become available again, on_hand untouched. */
static const struct {
    catalog_input_kind_t kind;
    const char *reason;
} releases[] = {
    {CAT_IN_PAYMENT_DECLINED, "PAYMENT_DECLINED"},
    {CAT_IN_ORDER_CANCELLED, "ORDER_CANCELLED"},
};

START_TEST(test_release_reserved)
{
    shop_t s = {.n = 0};
    catalog_product_t *a = add(&s, "A", 10, 5);
    static const catalog_line_t lines[] = {{"A", 5}};
    catalog_reservation_t res = no_reservation();
    place(&s, &res, "o-1", lines, 1);
    ck_assert_int_eq(a->reserved, 5);

    catalog_event_t ev;
    ck_assert_int_eq(step(&s, &res, releases[_i].kind, "o-1", &ev), CAT_EV_STOCK_RELEASED);
    ck_assert_str_eq(ev.reason, releases[_i].reason);
    ck_assert_ptr_eq(ev.lines, lines);
    ck_assert_int_eq(res.status, CAT_RES_RELEASED);
    ck_assert_int_eq(res.version, 2);
    ck_assert_int_eq(a->on_hand, 5);
    ck_assert_int_eq(a->reserved, 0);
    ck_assert_int_eq(a->version, 3);
    check_invariants(&s, releases[_i].reason);
}
END_TEST

START_TEST(test_release_committed)
{
    shop_t s = {.n = 0};
    catalog_product_t *a = add(&s, "A", 10, 5);
    catalog_product_t *b = add(&s, "B", 10, 2);
    static const catalog_line_t lines[] = {{"A", 3}, {"B", 1}};
    catalog_reservation_t res = no_reservation();
    place(&s, &res, "o-1", lines, 2);
    catalog_event_t ev;
    ck_assert_int_eq(step(&s, &res, CAT_IN_PAYMENT_CAPTURED, "o-1", &ev), CAT_EV_STOCK_COMMITTED);
    /* another order holds one B meanwhile: the sold units come back on top of it */
    static const catalog_line_t other[] = {{"B", 1}};
    catalog_reservation_t res2 = no_reservation();
    place(&s, &res2, "o-2", other, 1);
    ck_assert_int_eq(b->on_hand, 1);
    ck_assert_int_eq(b->reserved, 1);

    ck_assert_int_eq(step(&s, &res, CAT_IN_ORDER_CANCELLED, "o-1", &ev), CAT_EV_STOCK_RELEASED);
    ck_assert_str_eq(ev.reason, "ORDER_CANCELLED");
    ck_assert_int_eq(res.status, CAT_RES_RELEASED);
    ck_assert_int_eq(res.version, 3);
    ck_assert_int_eq(a->on_hand, 5);
    ck_assert_int_eq(a->reserved, 0);
    ck_assert_int_eq(b->on_hand, 2);
    ck_assert_int_eq(b->reserved, 1);
    ck_assert_int_eq(a->version, 4);
    ck_assert_int_eq(b->version, 5);
    check_invariants(&s, "release committed");
}
END_TEST

/* ---- sequences: duplicates and late events change nothing ---- */

#define NONE (-1)
#define P CAT_IN_ORDER_PLACED
#define C CAT_IN_ORDER_CANCELLED
#define OK CAT_IN_PAYMENT_CAPTURED
#define NO CAT_IN_PAYMENT_DECLINED
#define T CAT_IN_ORDER_REJECTED /* with reason TIMEOUT: the order's saga timed out */

static const struct {
    const char *name;
    int short_stock; /* the order asks for more than there is: it is refused */
    struct {
        catalog_input_kind_t kind;
        int expect; /* event kind, or NONE */
    } steps[8];
    int nsteps;
} sequences[] = {
    {"placed twice", 0, {{P, CAT_EV_STOCK_RESERVED}, {P, NONE}}, 2},
    {"captured twice",
     0,
     {{P, CAT_EV_STOCK_RESERVED}, {OK, CAT_EV_STOCK_COMMITTED}, {OK, NONE}, {NO, NONE}, {P, NONE}},
     5},
    {"declined twice, late capture",
     0,
     {{P, CAT_EV_STOCK_RESERVED},
      {NO, CAT_EV_STOCK_RELEASED},
      {NO, NONE},
      {OK, NONE},
      {C, NONE},
      {P, NONE}},
     6},
    {"cancelled twice, late payment",
     0,
     {{P, CAT_EV_STOCK_RESERVED}, {C, CAT_EV_STOCK_RELEASED}, {C, NONE}, {OK, NONE}, {NO, NONE}},
     5},
    {"refund after sale, then late events",
     0,
     {{P, CAT_EV_STOCK_RESERVED},
      {OK, CAT_EV_STOCK_COMMITTED},
      {C, CAT_EV_STOCK_RELEASED},
      {C, NONE},
      {OK, NONE},
      {NO, NONE},
      {P, NONE}},
     7},
    {"refused order ignores the rest",
     1,
     {{P, CAT_EV_STOCK_RESERVATION_REJECTED}, {OK, NONE}, {NO, NONE}, {C, NONE}, {P, NONE}},
     5},
    {"events before the order leave no mark",
     0,
     {{OK, NONE}, {NO, NONE}, {C, NONE}, {P, CAT_EV_STOCK_RESERVED}, {OK, CAT_EV_STOCK_COMMITTED}},
     5},
    {"timed out while reserved, then late events",
     0,
     {{P, CAT_EV_STOCK_RESERVED},
      {T, CAT_EV_STOCK_RELEASED},
      {T, NONE},
      {OK, NONE},
      {NO, NONE},
      {C, NONE},
      {P, NONE}},
     7},
    {"timed out after the sale, then late events",
     0,
     {{P, CAT_EV_STOCK_RESERVED},
      {OK, CAT_EV_STOCK_COMMITTED},
      {T, CAT_EV_STOCK_RELEASED},
      {T, NONE},
      {C, NONE},
      {OK, NONE}},
     6},
    {"cancelled, then timed out",
     0,
     {{P, CAT_EV_STOCK_RESERVED}, {C, CAT_EV_STOCK_RELEASED}, {T, NONE}},
     3},
    {"declined, then timed out",
     0,
     {{P, CAT_EV_STOCK_RESERVED}, {NO, CAT_EV_STOCK_RELEASED}, {T, NONE}},
     3},
    {"refused order, then timed out", 1, {{P, CAT_EV_STOCK_RESERVATION_REJECTED}, {T, NONE}}, 2},
    {"a fence's timeout, no order", 0, {{T, NONE}, {T, NONE}}, 2},
};
#define SEQUENCES_N ((int)(sizeof(sequences) / sizeof(sequences[0])))

START_TEST(test_sequence)
{
    const char *name = sequences[_i].name;
    static const catalog_line_t ok_lines[] = {{"A", 2}, {"B", 1}, {"A", 1}};
    static const catalog_line_t short_lines[] = {{"A", 2}, {"B", 5}};
    shop_t s = {.n = 0};
    add(&s, "A", 10, 4);
    add(&s, "B", 20, 1);
    catalog_reservation_t res = no_reservation();
    for (int k = 0; k < sequences[_i].nsteps; k++) {
        catalog_input_kind_t kind = sequences[_i].steps[k].kind;
        catalog_input_t in = kind != CAT_IN_ORDER_PLACED ? saga(kind, "o-1", NULL, 0)
                             : sequences[_i].short_stock ? saga(kind, "o-1", short_lines, 2)
                                                         : saga(kind, "o-1", ok_lines, 3);
        if (kind == T) {
            snprintf(in.reason, sizeof(in.reason), "TIMEOUT");
        }
        shop_t before = s;
        catalog_reservation_t res_before = res;
        catalog_event_t ev;
        int got = apply_saga(&s, &res, &in, &ev) ? (int)ev.kind : NONE;
        ck_assert_msg(got == sequences[_i].steps[k].expect, "%s, step %d (%s): got %s", name, k,
                      catalog_input_type(kind), got == NONE ? "nothing" : catalog_event_type(got));
        check_invariants(&s, name);
        if (got == NONE) {
            ck_assert_msg(!memcmp(&s, &before, sizeof(s)), "%s, step %d: products changed", name,
                          k);
            ck_assert_msg(same_reservation(&res, &res_before), "%s, step %d: reservation changed",
                          name, k);
        } else {
            ck_assert_int_eq(res.version, res_before.version + 1);
        }
    }
}
END_TEST

#undef P
#undef C
#undef OK
#undef NO
#undef T

/* ---- a timed-out order saga: OrderRejected TIMEOUT undone like a cancel ---- */

static catalog_input_t rejected(const char *order_id, const char *reason)
{
    catalog_input_t in = saga(CAT_IN_ORDER_REJECTED, order_id, NULL, 0);
    snprintf(in.reason, sizeof(in.reason), "%s", reason);
    return in;
}

/* OrderRejected for order `order_id` with `reason`; the event kind, or NONE. */
static int step_rejected(shop_t *s, catalog_reservation_t *res, const char *order_id,
                         const char *reason, catalog_event_t *ev)
{
    catalog_input_t in = rejected(order_id, reason);
    return apply_saga(s, res, &in, ev) ? (int)ev->kind : NONE;
}

START_TEST(test_timeout_releases_reserved)
{
    shop_t s = {.n = 0};
    catalog_product_t *a = add(&s, "A", 10, 5);
    catalog_product_t *b = add(&s, "B", 10, 2);
    static const catalog_line_t lines[] = {{"A", 3}, {"B", 1}, {"A", 1}};
    catalog_reservation_t res = no_reservation();
    ck_assert_int_eq(place(&s, &res, "o-1", lines, 3).kind, CAT_EV_STOCK_RESERVED);
    ck_assert_int_eq(a->reserved, 4);
    ck_assert_int_eq(b->reserved, 1);

    catalog_event_t ev;
    ck_assert_int_eq(step_rejected(&s, &res, "o-1", "TIMEOUT", &ev), CAT_EV_STOCK_RELEASED);
    ck_assert_ptr_nonnull(ev.reason);
    ck_assert_str_eq(ev.reason, "TIMEOUT");
    ck_assert_str_eq(ev.order_id, "o-1");
    ck_assert_ptr_eq(ev.lines, lines);
    ck_assert_uint_eq(ev.nlines, 3);
    ck_assert_int_eq(res.status, CAT_RES_RELEASED);
    ck_assert_int_eq(res.version, 2);
    /* the held units are available again, nothing left the warehouse */
    ck_assert_int_eq(a->on_hand, 5);
    ck_assert_int_eq(a->reserved, 0);
    ck_assert_int_eq(b->on_hand, 2);
    ck_assert_int_eq(b->reserved, 0);
    ck_assert_int_eq(a->version, 3); /* added, reserved, released: once per event */
    ck_assert_int_eq(b->version, 3);
    check_invariants(&s, "timeout while reserved");
}
END_TEST

START_TEST(test_timeout_restores_committed)
{
    shop_t s = {.n = 0};
    catalog_product_t *a = add(&s, "A", 10, 5);
    catalog_product_t *b = add(&s, "B", 10, 2);
    static const catalog_line_t lines[] = {{"A", 3}, {"B", 1}};
    catalog_reservation_t res = no_reservation();
    place(&s, &res, "o-1", lines, 2);
    catalog_event_t ev;
    ck_assert_int_eq(step(&s, &res, CAT_IN_PAYMENT_CAPTURED, "o-1", &ev), CAT_EV_STOCK_COMMITTED);
    /* another order holds one B meanwhile: the sold units come back on top of it */
    static const catalog_line_t other[] = {{"B", 1}};
    catalog_reservation_t res2 = no_reservation();
    place(&s, &res2, "o-2", other, 1);
    ck_assert_int_eq(a->on_hand, 2);
    ck_assert_int_eq(b->on_hand, 1);
    ck_assert_int_eq(b->reserved, 1);

    ck_assert_int_eq(step_rejected(&s, &res, "o-1", "TIMEOUT", &ev), CAT_EV_STOCK_RELEASED);
    ck_assert_str_eq(ev.reason, "TIMEOUT");
    ck_assert_ptr_eq(ev.lines, lines);
    ck_assert_int_eq(res.status, CAT_RES_RELEASED);
    ck_assert_int_eq(res.version, 3);
    ck_assert_int_eq(a->on_hand, 5);
    ck_assert_int_eq(a->reserved, 0);
    ck_assert_int_eq(b->on_hand, 2);
    ck_assert_int_eq(b->reserved, 1); /* o-2's hold is untouched */
    ck_assert_int_eq(a->version, 4);
    ck_assert_int_eq(b->version, 5);
    check_invariants(&s, "timeout after the sale");
}
END_TEST

/* A reservation that holds nothing: no order yet (a fence's rejection), released (cancelled
 * or declined) or refused. _i picks it. */
START_TEST(test_timeout_on_empty_reservation_changes_nothing)
{
    static const catalog_line_t ok[] = {{"A", 2}};
    static const catalog_line_t too_many[] = {{"A", 9}};
    shop_t s = {.n = 0};
    add(&s, "A", 10, 4);
    catalog_reservation_t res = no_reservation();
    catalog_event_t ev;
    switch (_i) {
    case 0:
        break;
    case 1:
        place(&s, &res, "o-1", ok, 1);
        ck_assert_int_eq(step(&s, &res, CAT_IN_ORDER_CANCELLED, "o-1", &ev), CAT_EV_STOCK_RELEASED);
        break;
    case 2:
        place(&s, &res, "o-1", ok, 1);
        ck_assert_int_eq(step(&s, &res, CAT_IN_PAYMENT_DECLINED, "o-1", &ev),
                         CAT_EV_STOCK_RELEASED);
        break;
    default:
        ck_assert_int_eq(place(&s, &res, "o-1", too_many, 1).kind,
                         CAT_EV_STOCK_RESERVATION_REJECTED);
        break;
    }
    static const catalog_res_status_t expect[] = {CAT_RES_NONE, CAT_RES_RELEASED, CAT_RES_RELEASED,
                                                  CAT_RES_REJECTED};
    ck_assert_int_eq(res.status, expect[_i]);
    shop_t before = s;
    catalog_reservation_t res_before = res;
    ck_assert_int_eq(step_rejected(&s, &res, "o-1", "TIMEOUT", &ev), NONE);
    ck_assert(!memcmp(&s, &before, sizeof(s)));
    ck_assert(same_reservation(&res, &res_before));
}
END_TEST

/* Any other rejection follows a refused stock or a declined charge, whose own events did the
 * releasing: on a reservation that still holds units it changes nothing. */
static const char *const other_rejections[] = {
    "OUT_OF_STOCK", "PAYMENT_DECLINED", "INSUFFICIENT_FUNDS", "", "timeout", "TIMEOUT_"};

START_TEST(test_other_rejection_changes_nothing)
{
    static const catalog_line_t lines[] = {{"A", 2}, {"B", 1}};
    for (int committed = 0; committed < 2; committed++) {
        shop_t s = {.n = 0};
        add(&s, "A", 10, 4);
        add(&s, "B", 10, 1);
        catalog_reservation_t res = no_reservation();
        catalog_event_t ev;
        place(&s, &res, "o-1", lines, 2);
        if (committed) {
            ck_assert_int_eq(step(&s, &res, CAT_IN_PAYMENT_CAPTURED, "o-1", &ev),
                             CAT_EV_STOCK_COMMITTED);
        }
        shop_t before = s;
        catalog_reservation_t res_before = res;
        ck_assert_msg(step_rejected(&s, &res, "o-1", other_rejections[_i], &ev) == NONE,
                      "OrderRejected \"%s\" on %s: an event", other_rejections[_i],
                      catalog_res_status_name(res_before.status));
        ck_assert(!memcmp(&s, &before, sizeof(s)));
        ck_assert(same_reservation(&res, &res_before));
        /* the reservation is intact: a timeout still undoes it */
        ck_assert_int_eq(step_rejected(&s, &res, "o-1", "TIMEOUT", &ev), CAT_EV_STOCK_RELEASED);
        const catalog_product_t *a = shop_find(&s, "A");
        ck_assert_int_eq(a->on_hand, 4);
        ck_assert_int_eq(a->reserved, 0);
    }
}
END_TEST

/* The dead-letter checks see the TIMEOUT rejection as the cancel it is, and any other
 * rejection as the no-op it is. */
START_TEST(test_timeout_invalid_against_state)
{
    static const catalog_line_t lines[] = {{"A", 2}, {"A", 2}};
    catalog_product_t a = {.id = "A", .price = 1, .on_hand = 10, .reserved = 4, .version = 3};
    catalog_product_t *prods[] = {&a, &a};
    catalog_reservation_t res = {
        .order_id = "o-1", .status = CAT_RES_RESERVED, .lines = lines, .nlines = 2, .version = 1};
    catalog_input_t timeout = rejected("o-1", "TIMEOUT");
    catalog_input_t other = rejected("o-1", "OUT_OF_STOCK");
    catalog_input_t can = saga(CAT_IN_ORDER_CANCELLED, "o-1", NULL, 0);
    size_t n = 0;
    ck_assert_ptr_eq(catalog_stock_lines(&res, &timeout, &n), lines);
    ck_assert_uint_eq(n, 2);
    ck_assert_ptr_null(catalog_input_invalid(&res, prods, &timeout));

    a.reserved = 3; /* the row holds fewer units than the reservation's sum */
    ck_assert_str_eq(catalog_input_invalid(&res, prods, &timeout),
                     "reservation holds more units than the product has reserved");
    ck_assert_str_eq(catalog_input_invalid(&res, prods, &can),
                     catalog_input_invalid(&res, prods, &timeout));
    ck_assert_ptr_null(catalog_input_invalid(&res, prods, &other));

    a.reserved = 4;
    a.version = 0;
    ck_assert_str_eq(catalog_input_invalid(&res, prods, &timeout),
                     "reservation names a product that does not exist");
    ck_assert_ptr_null(catalog_input_invalid(&res, prods, &other));

    /* sold units coming back must fit */
    a.version = 3;
    a.reserved = 0;
    a.on_hand = INT64_MAX - 3;
    res.status = CAT_RES_COMMITTED;
    ck_assert_str_eq(catalog_input_invalid(&res, prods, &timeout),
                     "returning sold units would overflow on_hand");
    ck_assert_ptr_null(catalog_input_invalid(&res, prods, &other));
    a.on_hand = INT64_MAX - 4;
    ck_assert_ptr_null(catalog_input_invalid(&res, prods, &timeout));

    /* nothing held: nothing to check */
    res.status = CAT_RES_RELEASED;
    a.on_hand = INT64_MAX;
    ck_assert_ptr_null(catalog_input_invalid(&res, prods, &timeout));

    /* malformed: only the order id is checked */
    ck_assert_ptr_null(catalog_input_malformed(&timeout));
    ck_assert_ptr_null(catalog_input_malformed(&other));
    timeout = rejected("", "TIMEOUT");
    ck_assert_str_eq(catalog_input_malformed(&timeout), "saga event with an invalid order id");
    timeout = rejected("o/1", "TIMEOUT");
    ck_assert_str_eq(catalog_input_malformed(&timeout), "saga event with an invalid order id");
}
END_TEST

/* ---- inputs the wiring dead-letters ---- */

START_TEST(test_malformed)
{
    static catalog_line_t many[CAT_LINES_MAX + 1];
    for (int k = 0; k <= CAT_LINES_MAX; k++) {
        snprintf(many[k].product_id, sizeof(many[k].product_id), "p-%d", k);
        many[k].quantity = 1;
    }
    static const catalog_line_t bad_id[] = {{"A", 1}, {"b c", 1}};
    static const catalog_line_t empty_id[] = {{"", 1}};
    static const catalog_line_t zero[] = {{"A", 1}, {"B", 0}};
    static const catalog_line_t negative[] = {{"A", -1}};
    static const catalog_line_t fine[] = {{"A", 1}, {"A", INT64_MAX}};

    catalog_input_t in = saga(CAT_IN_ORDER_PLACED, "o-1", many, CAT_LINES_MAX);
    ck_assert_ptr_null(catalog_input_malformed(&in));
    in.nlines = CAT_LINES_MAX + 1;
    ck_assert_str_eq(catalog_input_malformed(&in), "order with more than 100 lines");
    in = saga(CAT_IN_ORDER_PLACED, "o-1", NULL, CAT_LINES_MAX + 1); /* as the wiring leaves it */
    ck_assert_str_eq(catalog_input_malformed(&in), "order with more than 100 lines");
    in = saga(CAT_IN_ORDER_PLACED, "o-1", NULL, 0);
    ck_assert_str_eq(catalog_input_malformed(&in), "order with no lines");
    in = saga(CAT_IN_ORDER_PLACED, "o-1", bad_id, 2);
    ck_assert_str_eq(catalog_input_malformed(&in), "order line with an invalid product id");
    in = saga(CAT_IN_ORDER_PLACED, "o-1", empty_id, 1);
    ck_assert_str_eq(catalog_input_malformed(&in), "order line with an invalid product id");
    in = saga(CAT_IN_ORDER_PLACED, "o-1", zero, 2);
    ck_assert_str_eq(catalog_input_malformed(&in), "order line with a non-positive quantity");
    in = saga(CAT_IN_ORDER_PLACED, "o-1", negative, 1);
    ck_assert_str_eq(catalog_input_malformed(&in), "order line with a non-positive quantity");
    in = saga(CAT_IN_ORDER_PLACED, "o-1", fine, 2);
    ck_assert_ptr_null(catalog_input_malformed(&in));
    in = saga(CAT_IN_ORDER_PLACED, "o 1", fine, 2);
    ck_assert_str_eq(catalog_input_malformed(&in), "saga event with an invalid order id");

    static const catalog_input_kind_t others[] = {CAT_IN_ORDER_CANCELLED, CAT_IN_PAYMENT_CAPTURED,
                                                  CAT_IN_PAYMENT_DECLINED};
    for (size_t k = 0; k < 3; k++) {
        in = saga(others[k], "o-1", NULL, 0);
        ck_assert_ptr_null(catalog_input_malformed(&in));
        in = saga(others[k], "", NULL, 0);
        ck_assert_str_eq(catalog_input_malformed(&in), "saga event with an invalid order id");
    }
    /* commands are refused with a reason instead */
    in = command(CAT_IN_ADD_PRODUCT, "", -1, -1);
    ck_assert_ptr_null(catalog_input_malformed(&in));
    ck_assert(catalog_input_is_command(&in));
    ck_assert(!catalog_input_is_command(&(catalog_input_t){.kind = CAT_IN_ORDER_PLACED}));
}
END_TEST

START_TEST(test_invalid_against_state)
{
    static const catalog_line_t lines[] = {{"A", 2}, {"A", 2}};
    catalog_product_t a = {.id = "A", .price = 1, .on_hand = 10, .reserved = 4, .version = 3};
    catalog_product_t *prods[] = {&a, &a};
    catalog_reservation_t res = {
        .order_id = "o-1", .status = CAT_RES_RESERVED, .lines = lines, .nlines = 2, .version = 1};
    catalog_input_t cap = saga(CAT_IN_PAYMENT_CAPTURED, "o-1", NULL, 0);
    catalog_input_t dec = saga(CAT_IN_PAYMENT_DECLINED, "o-1", NULL, 0);
    catalog_input_t can = saga(CAT_IN_ORDER_CANCELLED, "o-1", NULL, 0);
    ck_assert_ptr_null(catalog_input_invalid(&res, prods, &cap));
    ck_assert_ptr_null(catalog_input_invalid(&res, prods, &dec));
    ck_assert_ptr_null(catalog_input_invalid(&res, prods, &can));

    a.reserved = 3; /* the row holds fewer units than the reservation's sum */
    ck_assert_str_eq(catalog_input_invalid(&res, prods, &cap),
                     "reservation holds more units than the product has reserved");
    ck_assert_str_eq(catalog_input_invalid(&res, prods, &dec),
                     "reservation holds more units than the product has reserved");
    ck_assert_str_eq(catalog_input_invalid(&res, prods, &can),
                     "reservation holds more units than the product has reserved");

    a.reserved = 4;
    a.version = 0;
    ck_assert_str_eq(catalog_input_invalid(&res, prods, &cap),
                     "reservation names a product that does not exist");

    /* sold units coming back must fit */
    a.version = 3;
    a.reserved = 0;
    a.on_hand = INT64_MAX - 3;
    res.status = CAT_RES_COMMITTED;
    ck_assert_str_eq(catalog_input_invalid(&res, prods, &can),
                     "returning sold units would overflow on_hand");
    a.on_hand = INT64_MAX - 4;
    ck_assert_ptr_null(catalog_input_invalid(&res, prods, &can));
    /* steps that change nothing are never invalid */
    a.on_hand = INT64_MAX;
    ck_assert_ptr_null(catalog_input_invalid(&res, prods, &cap));
    ck_assert_ptr_null(catalog_input_invalid(&res, prods, &dec));
    res.status = CAT_RES_RELEASED;
    ck_assert_ptr_null(catalog_input_invalid(&res, prods, &can));
    res = no_reservation();
    ck_assert_ptr_null(catalog_input_invalid(&res, NULL, &cap));
}
END_TEST

START_TEST(test_stock_lines)
{
    static const catalog_line_t placed[] = {{"A", 1}};
    static const catalog_line_t held[] = {{"B", 1}, {"C", 2}};
    catalog_input_t in = saga(CAT_IN_ORDER_PLACED, "o-1", placed, 1);
    catalog_input_t cap = saga(CAT_IN_PAYMENT_CAPTURED, "o-1", NULL, 0);
    catalog_reservation_t res = no_reservation();
    size_t n = 99;
    ck_assert_ptr_eq(catalog_stock_lines(&res, &in, &n), placed);
    ck_assert_uint_eq(n, 1);
    ck_assert_ptr_null(catalog_stock_lines(&res, &cap, &n));
    ck_assert_uint_eq(n, 0);
    res.lines = held;
    res.nlines = 2;
    static const catalog_res_status_t holding[] = {CAT_RES_RESERVED, CAT_RES_COMMITTED};
    static const catalog_res_status_t done[] = {CAT_RES_RELEASED, CAT_RES_REJECTED};
    for (int k = 0; k < 2; k++) {
        res.status = holding[k];
        ck_assert_ptr_eq(catalog_stock_lines(&res, &in, &n), held);
        ck_assert_uint_eq(n, 2);
        ck_assert_ptr_eq(catalog_stock_lines(&res, &cap, &n), held);
        res.status = done[k];
        ck_assert_ptr_null(catalog_stock_lines(&res, &in, &n));
        ck_assert_uint_eq(n, 0);
    }
}
END_TEST

/* ---- names ---- */

START_TEST(test_names)
{
    static const char *const inputs[] = {"AddProduct",      "ChangePrice",    "RestockProduct",
                                         "OrderPlaced",     "OrderCancelled", "PaymentCaptured",
                                         "PaymentDeclined", "OrderRejected"};
    for (int k = 0; k < CAT_IN__COUNT; k++) {
        ck_assert_int_eq(catalog_input_kind(inputs[k]), k);
        ck_assert_str_eq(catalog_input_type((catalog_input_kind_t)k), inputs[k]);
    }
    static const char *const ignored[] = {"OrderConfirmed", "PaymentRequested", "PaymentRefunded",
                                          "StockReserved",  "ProductAdded",     "",
                                          "addproduct"};
    for (size_t k = 0; k < sizeof(ignored) / sizeof(ignored[0]); k++) {
        ck_assert_int_eq(catalog_input_kind(ignored[k]), -1);
    }
    static const char *const events[] = {"ProductAdded",     "PriceChanged",
                                         "ProductRestocked", "CatalogCommandRejected",
                                         "StockReserved",    "StockReservationRejected",
                                         "StockCommitted",   "StockReleased"};
    for (int k = 0; k < CAT_EV__COUNT; k++) {
        ck_assert_str_eq(catalog_event_type((catalog_event_kind_t)k), events[k]);
    }
    ck_assert_str_eq(catalog_event_type(CAT_EV__COUNT), "?");
    ck_assert_str_eq(catalog_input_type(CAT_IN__COUNT), "?");
    for (int k = CAT_RES_RESERVED; k < CAT_RES__COUNT; k++) {
        const char *name = catalog_res_status_name((catalog_res_status_t)k);
        ck_assert_int_eq(catalog_res_status(name), k);
    }
    ck_assert_str_eq(catalog_res_status_name(CAT_RES_RESERVED), "RESERVED");
    ck_assert_str_eq(catalog_res_status_name(CAT_RES_COMMITTED), "COMMITTED");
    ck_assert_str_eq(catalog_res_status_name(CAT_RES_RELEASED), "RELEASED");
    ck_assert_str_eq(catalog_res_status_name(CAT_RES_REJECTED), "REJECTED");
    ck_assert_int_eq(catalog_res_status("bogus"), CAT_RES_NONE);
}
END_TEST

/* ---- a random run ---- */

#define WALK_ORDERS 64
#define WALK_PRODUCTS 4

static uint64_t walk_next(uint64_t *x)
{
    /* xorshift64*: fixed seed, so a failure replays */
    *x ^= *x >> 12;
    *x ^= *x << 25;
    *x ^= *x >> 27;
    return *x * 2685821657736338717ULL;
}

START_TEST(test_random_walk)
{
    static const char *const ids[WALK_PRODUCTS] = {"A", "B", "C", "D"};
    static catalog_line_t lines[WALK_ORDERS][4];
    catalog_reservation_t res[WALK_ORDERS];
    char order_ids[WALK_ORDERS][32];
    int64_t restocked[WALK_PRODUCTS];
    shop_t s = {.n = 0};
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (int p = 0; p < WALK_PRODUCTS; p++) {
        add(&s, ids[p], 100, 5);
        restocked[p] = 5;
    }
    for (int o = 0; o < WALK_ORDERS; o++) {
        res[o] = no_reservation();
        snprintf(order_ids[o], sizeof(order_ids[o]), "o-%d", o);
    }
    int events = 0;
    for (int i = 0; i < 20000; i++) {
        int o = (int)(walk_next(&x) % WALK_ORDERS);
        int what = (int)(walk_next(&x) % 5);
        catalog_event_t ev;
        if (what == 4) {
            int p = (int)(walk_next(&x) % WALK_PRODUCTS);
            int64_t q = (int64_t)(walk_next(&x) % 3) + 1;
            catalog_input_t in = command(CAT_IN_RESTOCK_PRODUCT, ids[p], 0, q);
            ck_assert_int_eq(apply_command(shop_find(&s, ids[p]), &in).kind,
                             CAT_EV_PRODUCT_RESTOCKED);
            restocked[p] += q;
        } else if (what == 0) {
            if ((res[o].status == CAT_RES_RELEASED || res[o].status == CAT_RES_REJECTED) &&
                walk_next(&x) % 2 == 0) {
                /* the order is over: the slot takes a new order */
                res[o] = no_reservation();
                snprintf(order_ids[o], sizeof(order_ids[o]), "o-%d-%d", o, i);
            }
            if (res[o].status != CAT_RES_NONE) {
                /* a second OrderPlaced, other lines or not, changes nothing */
                static const catalog_line_t again[] = {{"A", 1}};
                catalog_input_t in = saga(CAT_IN_ORDER_PLACED, order_ids[o], again, 1);
                ck_assert_int_eq(apply_saga(&s, &res[o], &in, &ev), 0);
                continue;
            }
            size_t n = (size_t)(walk_next(&x) % 4) + 1;
            for (size_t k = 0; k < n; k++) {
                snprintf(lines[o][k].product_id, sizeof(lines[o][k].product_id), "%s",
                         ids[walk_next(&x) % WALK_PRODUCTS]);
                lines[o][k].quantity = (int64_t)(walk_next(&x) % 3) + 1;
            }
            catalog_input_t in = saga(CAT_IN_ORDER_PLACED, order_ids[o], lines[o], n);
            events += apply_saga(&s, &res[o], &in, &ev);
        } else {
            static const catalog_input_kind_t kinds[] = {
                CAT_IN_PAYMENT_CAPTURED, CAT_IN_PAYMENT_DECLINED, CAT_IN_ORDER_CANCELLED};
            events += step(&s, &res[o], kinds[what - 1], order_ids[o], &ev) != NONE;
        }
        check_invariants(&s, "random walk");
        /* the stock is exactly what the reservations say */
        for (int p = 0; p < WALK_PRODUCTS; p++) {
            int64_t held = 0, sold = 0;
            for (int r = 0; r < WALK_ORDERS; r++) {
                for (size_t k = 0; k < res[r].nlines; k++) {
                    if (strcmp(res[r].lines[k].product_id, ids[p]) != 0) {
                        continue;
                    }
                    if (res[r].status == CAT_RES_RESERVED) {
                        held += res[r].lines[k].quantity;
                    } else if (res[r].status == CAT_RES_COMMITTED) {
                        sold += res[r].lines[k].quantity;
                    }
                }
            }
            /* only ended orders (released, refused) were forgotten: they hold nothing */
            const catalog_product_t *prod = shop_find(&s, ids[p]);
            ck_assert_int_eq(prod->reserved, held);
            ck_assert_int_eq(prod->on_hand, restocked[p] - sold);
        }
    }
    ck_assert_int_gt(events, 1000);
}
END_TEST

Suite *catalog_domain_suite(void);

Suite *catalog_domain_suite(void)
{
    Suite *s = suite_create("catalog_domain");

    TCase *tc = tcase_create("commands");
    tcase_add_loop_test(tc, test_command_rejected, 0, REJECTIONS_N);
    tcase_add_test(tc, test_add_product);
    tcase_add_test(tc, test_id_and_name_limits);
    tcase_add_test(tc, test_change_price);
    tcase_add_test(tc, test_restock);
    suite_add_tcase(s, tc);

    tc = tcase_create("reserve");
    tcase_add_loop_test(tc, test_reserve, 0, RESERVATIONS_N);
    tcase_add_test(tc, test_second_line_short_holds_nothing);
    tcase_add_test(tc, test_duplicate_lines_summed);
    suite_add_tcase(s, tc);

    tc = tcase_create("commit and release");
    tcase_add_test(tc, test_commit);
    tcase_add_loop_test(tc, test_release_reserved, 0,
                        (int)(sizeof(releases) / sizeof(releases[0])));
    tcase_add_test(tc, test_release_committed);
    tcase_add_loop_test(tc, test_sequence, 0, SEQUENCES_N);
    suite_add_tcase(s, tc);

    tc = tcase_create("timeout");
    tcase_add_test(tc, test_timeout_releases_reserved);
    tcase_add_test(tc, test_timeout_restores_committed);
    tcase_add_loop_test(tc, test_timeout_on_empty_reservation_changes_nothing, 0, 4);
    tcase_add_loop_test(tc, test_other_rejection_changes_nothing, 0,
                        (int)(sizeof(other_rejections) / sizeof(other_rejections[0])));
    tcase_add_test(tc, test_timeout_invalid_against_state);
    suite_add_tcase(s, tc);

    tc = tcase_create("dead letters");
    tcase_add_test(tc, test_malformed);
    tcase_add_test(tc, test_invalid_against_state);
    tcase_add_test(tc, test_stock_lines);
    suite_add_tcase(s, tc);

    tc = tcase_create("names");
    tcase_add_test(tc, test_names);
    suite_add_tcase(s, tc);

    tc = tcase_create("random");
    tcase_add_test(tc, test_random_walk);
    suite_add_tcase(s, tc);
    return s;
}
