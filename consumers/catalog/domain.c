/*
 * domain.c: the catalog context's decide/evolve (see domain.h). Pure: no I/O, no clock.
 */
#include "domain.h"

#include <string.h>

#include "str.h"

static const char *const input_types[CAT_IN__COUNT] = {
    "AddProduct",     "ChangePrice",     "RestockProduct",  "OrderPlaced",
    "OrderCancelled", "PaymentCaptured", "PaymentDeclined", "OrderRejected"};

static const char *const event_types[CAT_EV__COUNT] = {
    "ProductAdded",           "PriceChanged",  "ProductRestocked",
    "CatalogCommandRejected", "StockReserved", "StockReservationRejected",
    "StockCommitted",         "StockReleased"};

static const char *const status_names[CAT_RES__COUNT] = {"NONE", "RESERVED", "COMMITTED",
                                                         "RELEASED", "REJECTED"};

const char *catalog_event_type(catalog_event_kind_t kind)
{
    return kind < CAT_EV__COUNT ? event_types[kind] : "?";
}

const char *catalog_input_type(catalog_input_kind_t kind)
{
    return kind < CAT_IN__COUNT ? input_types[kind] : "?";
}

int catalog_input_kind(const char *type)
{
    for (int i = 0; i < CAT_IN__COUNT; i++) {
        if (!strcmp(type, input_types[i])) {
            return i;
        }
    }
    return -1;
}

const char *catalog_res_status_name(catalog_res_status_t status)
{
    return status < CAT_RES__COUNT ? status_names[status] : "?";
}

catalog_res_status_t catalog_res_status(const char *name)
{
    for (int i = 1; i < CAT_RES__COUNT; i++) {
        if (!strcmp(name, status_names[i])) {
            return (catalog_res_status_t)i;
        }
    }
    return CAT_RES_NONE;
}

int catalog_id_valid(const char *id)
{
    return es_str_id_valid(id, strnlen(id, CAT_ID_CHARS + 1), CAT_ID_CHARS);
}

int catalog_name_valid(const char *name)
{
    size_t chars = 0;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        /* count every byte that starts a code point, i.e. all but continuation bytes */
        if ((*p & 0xC0) != 0x80 && ++chars > CAT_NAME_CHARS) {
            return 0;
        }
    }
    return chars > 0;
}

int catalog_input_is_command(const catalog_input_t *in)
{
    return in->kind <= CAT_IN_RESTOCK_PRODUCT;
}

const char *catalog_input_malformed(const catalog_input_t *in)
{
    if (catalog_input_is_command(in)) {
        return NULL;
    }
    if (!catalog_id_valid(in->order_id)) {
        return "saga event with an invalid order id";
    }
    if (in->kind != CAT_IN_ORDER_PLACED) {
        return NULL;
    }
    if (in->nlines == 0) {
        return "order with no lines";
    }
    if (in->nlines > CAT_LINES_MAX || !in->lines) {
        return "order with more than 100 lines";
    }
    for (size_t k = 0; k < in->nlines; k++) {
        if (!catalog_id_valid(in->lines[k].product_id)) {
            return "order line with an invalid product id";
        }
        if (in->lines[k].quantity <= 0) {
            return "order line with a non-positive quantity";
        }
    }
    return NULL;
}

const catalog_line_t *catalog_stock_lines(const catalog_reservation_t *res,
                                          const catalog_input_t *in, size_t *n)
{
    if (res->status == CAT_RES_RESERVED || res->status == CAT_RES_COMMITTED) {
        *n = res->nlines;
        return res->lines;
    }
    if (res->status == CAT_RES_NONE && in->kind == CAT_IN_ORDER_PLACED) {
        *n = in->nlines;
        return in->lines;
    }
    *n = 0;
    return NULL;
}

/* True when line k is the first of `lines` to name its product (the one that bumps the
 * product's version and carries the product's total). */
static int first_of_product(const catalog_line_t *lines, size_t k)
{
    for (size_t j = 0; j < k; j++) {
        if (!strcmp(lines[j].product_id, lines[k].product_id)) {
            return 0;
        }
    }
    return 1;
}

/* The units lines[0..upto] ask of lines[upto]'s product. Returns 0, or -1 when the sum
 * overflows (then it is more than any product holds). */
static int units_so_far(const catalog_line_t *lines, size_t upto, int64_t *sum)
{
    int64_t s = 0;
    for (size_t j = 0; j <= upto; j++) {
        if (strcmp(lines[j].product_id, lines[upto].product_id) != 0) {
            continue;
        }
        if (lines[j].quantity > INT64_MAX - s) {
            return -1;
        }
        s += lines[j].quantity;
    }
    *sum = s;
    return 0;
}

/* The units all of `lines` hold of line k's product (see units_so_far). */
static int units_total(const catalog_line_t *lines, size_t n, size_t k, int64_t *sum)
{
    int64_t s = 0;
    for (size_t j = 0; j < n; j++) {
        if (strcmp(lines[j].product_id, lines[k].product_id) != 0) {
            continue;
        }
        if (lines[j].quantity > INT64_MAX - s) {
            return -1;
        }
        s += lines[j].quantity;
    }
    *sum = s;
    return 0;
}

/* An order saga that timed out is undone like a cancel (docs/SAGAS.md); other rejections
 * come after the stock was refused or already released. */
static int undoes(const catalog_input_t *in)
{
    return in->kind == CAT_IN_ORDER_CANCELLED ||
           (in->kind == CAT_IN_ORDER_REJECTED && !strcmp(in->reason, "TIMEOUT"));
}

const char *catalog_input_invalid(const catalog_reservation_t *res,
                                  catalog_product_t *const *products, const catalog_input_t *in)
{
    int sells = in->kind == CAT_IN_PAYMENT_CAPTURED && res->status == CAT_RES_RESERVED;
    int unreserves =
        (in->kind == CAT_IN_PAYMENT_DECLINED || undoes(in)) && res->status == CAT_RES_RESERVED;
    int restores = undoes(in) && res->status == CAT_RES_COMMITTED;
    if (!sells && !unreserves && !restores) {
        return NULL; /* reserving checks stock itself; everything else changes nothing */
    }
    for (size_t k = 0; k < res->nlines; k++) {
        const catalog_product_t *p = products[k];
        int64_t units;
        if (!first_of_product(res->lines, k)) {
            continue;
        }
        if (p->version == 0) {
            return "reservation names a product that does not exist";
        }
        if (units_total(res->lines, res->nlines, k, &units) != 0) {
            return "reservation lines overflow";
        }
        if ((sells || unreserves) && p->reserved < units) {
            return "reservation holds more units than the product has reserved";
        }
        if (restores && p->on_hand > INT64_MAX - units) {
            return "returning sold units would overflow on_hand";
        }
    }
    return NULL;
}

static void reject_command(const catalog_product_t *p, const char *reason, catalog_event_t *out)
{
    out->kind = CAT_EV_COMMAND_REJECTED;
    out->reason = reason;
    out->on_hand = p->on_hand;
    out->reserved = p->reserved;
    out->price = p->price;
}

void catalog_product_decide(const catalog_product_t *product, const catalog_input_t *in,
                            catalog_event_t *out)
{
    const catalog_product_t *p = product;
    memset(out, 0, sizeof(*out));
    es_str_copy(out->product_id, sizeof(out->product_id), in->product_id);
    es_str_copy(out->command_id, sizeof(out->command_id), in->command_id);
    out->command_type = catalog_input_type(in->kind);
    if (!catalog_id_valid(in->product_id)) {
        reject_command(p, "INVALID_ID", out);
        return;
    }
    switch (in->kind) {
    case CAT_IN_ADD_PRODUCT:
        if (p->version != 0) {
            reject_command(p, "PRODUCT_EXISTS", out);
        } else if (!in->name || !catalog_name_valid(in->name)) {
            reject_command(p, "INVALID_NAME", out);
        } else if (in->price <= 0) {
            reject_command(p, "INVALID_PRICE", out);
        } else if (in->quantity < 0) {
            reject_command(p, "INVALID_QUANTITY", out);
        } else {
            out->kind = CAT_EV_PRODUCT_ADDED;
            out->name = in->name;
            out->price = in->price;
            out->on_hand = in->quantity;
            out->reserved = 0;
        }
        return;
    case CAT_IN_CHANGE_PRICE:
        if (p->version == 0) {
            reject_command(p, "PRODUCT_NOT_FOUND", out);
        } else if (in->price <= 0) {
            reject_command(p, "INVALID_PRICE", out);
        } else if (in->price == p->price) {
            reject_command(p, "PRICE_UNCHANGED", out);
        } else {
            out->kind = CAT_EV_PRICE_CHANGED;
            out->price = in->price;
            out->old_price = p->price;
            out->on_hand = p->on_hand;
            out->reserved = p->reserved;
        }
        return;
    case CAT_IN_RESTOCK_PRODUCT:
        if (p->version == 0) {
            reject_command(p, "PRODUCT_NOT_FOUND", out);
        } else if (in->quantity <= 0 || p->on_hand > INT64_MAX - in->quantity) {
            reject_command(p, "INVALID_QUANTITY", out);
        } else {
            out->kind = CAT_EV_PRODUCT_RESTOCKED;
            out->quantity = in->quantity;
            out->price = p->price;
            out->on_hand = p->on_hand + in->quantity;
            out->reserved = p->reserved;
        }
        return;
    default: /* not a command: the wiring never asks */
        reject_command(p, "NOT_A_COMMAND", out);
        return;
    }
}

void catalog_product_evolve(catalog_product_t *product, const catalog_event_t *ev)
{
    switch (ev->kind) {
    case CAT_EV_PRODUCT_ADDED:
        es_str_copy(product->id, sizeof(product->id), ev->product_id);
        product->name = ev->name;
        product->price = ev->price;
        product->on_hand = ev->on_hand;
        product->reserved = 0;
        break;
    case CAT_EV_PRICE_CHANGED:
        product->price = ev->price;
        break;
    case CAT_EV_PRODUCT_RESTOCKED:
        product->on_hand = ev->on_hand;
        break;
    default: /* rejections change nothing, not even the version */
        return;
    }
    product->version++;
}

/* The StockReservationRejected for `lines`, if one is due: first any line naming an unknown
 * product, then the first line whose units (with those the earlier lines took of the same
 * product) exceed what is available. Returns 1 with *out filled, 0 when all can be held. */
static int reservation_refused(catalog_product_t *const *products, const catalog_line_t *lines,
                               size_t n, catalog_event_t *out)
{
    for (size_t k = 0; k < n; k++) {
        if (products[k]->version == 0) {
            out->kind = CAT_EV_STOCK_RESERVATION_REJECTED;
            out->reason = "UNKNOWN_PRODUCT";
            es_str_copy(out->product_id, sizeof(out->product_id), lines[k].product_id);
            return 1;
        }
    }
    for (size_t k = 0; k < n; k++) {
        const catalog_product_t *p = products[k];
        int64_t want;
        if (units_so_far(lines, k, &want) != 0 || want > p->on_hand - p->reserved) {
            out->kind = CAT_EV_STOCK_RESERVATION_REJECTED;
            out->reason = "OUT_OF_STOCK";
            es_str_copy(out->product_id, sizeof(out->product_id), lines[k].product_id);
            return 1;
        }
    }
    return 0;
}

int catalog_stock_decide(const catalog_reservation_t *res, catalog_product_t *const *products,
                         const catalog_input_t *in, catalog_event_t *out)
{
    memset(out, 0, sizeof(*out));
    es_str_copy(out->order_id, sizeof(out->order_id), in->order_id);
    switch (in->kind) {
    case CAT_IN_ORDER_PLACED:
        if (res->status != CAT_RES_NONE) {
            return 0; /* a second OrderPlaced for the order */
        }
        if (!reservation_refused(products, in->lines, in->nlines, out)) {
            out->kind = CAT_EV_STOCK_RESERVED;
        }
        out->lines = in->lines; /* a refused order's reservation keeps them too */
        out->nlines = in->nlines;
        return 1;
    case CAT_IN_PAYMENT_CAPTURED:
        if (res->status != CAT_RES_RESERVED) {
            return 0;
        }
        out->kind = CAT_EV_STOCK_COMMITTED;
        break;
    case CAT_IN_PAYMENT_DECLINED:
        if (res->status != CAT_RES_RESERVED) {
            return 0;
        }
        out->kind = CAT_EV_STOCK_RELEASED;
        out->reason = "PAYMENT_DECLINED";
        break;
    case CAT_IN_ORDER_CANCELLED:
    case CAT_IN_ORDER_REJECTED:
        if (!undoes(in) || (res->status != CAT_RES_RESERVED && res->status != CAT_RES_COMMITTED)) {
            return 0;
        }
        out->kind = CAT_EV_STOCK_RELEASED;
        out->reason = in->kind == CAT_IN_ORDER_CANCELLED ? "ORDER_CANCELLED" : "TIMEOUT";
        break;
    default: /* commands are not saga inputs */
        return 0;
    }
    out->lines = res->lines;
    out->nlines = res->nlines;
    return 1;
}

void catalog_stock_evolve(catalog_reservation_t *res, catalog_product_t *const *products,
                          const catalog_event_t *ev)
{
    catalog_res_status_t before = res->status;
    switch (ev->kind) {
    case CAT_EV_STOCK_RESERVED:
        res->status = CAT_RES_RESERVED;
        break;
    case CAT_EV_STOCK_RESERVATION_REJECTED:
        res->status = CAT_RES_REJECTED;
        break;
    case CAT_EV_STOCK_COMMITTED:
        res->status = CAT_RES_COMMITTED;
        break;
    case CAT_EV_STOCK_RELEASED:
        res->status = CAT_RES_RELEASED;
        break;
    default: /* product events are not the reservation's */
        return;
    }
    es_str_copy(res->order_id, sizeof(res->order_id), ev->order_id);
    if (before == CAT_RES_NONE) {
        /* the reservation keeps the order's lines, even when it holds nothing */
        res->lines = ev->lines;
        res->nlines = ev->nlines;
    }
    res->version++;
    if (ev->kind == CAT_EV_STOCK_RESERVATION_REJECTED) {
        return;
    }
    for (size_t k = 0; k < ev->nlines; k++) {
        catalog_product_t *p = products[k];
        int64_t q = ev->lines[k].quantity;
        if (ev->kind == CAT_EV_STOCK_RESERVED) {
            p->reserved += q;
        } else if (ev->kind == CAT_EV_STOCK_COMMITTED) {
            p->on_hand -= q;
            p->reserved -= q;
        } else if (before == CAT_RES_COMMITTED) {
            p->on_hand += q; /* sold units come back to the warehouse */
        } else {
            p->reserved -= q;
        }
        if (first_of_product(ev->lines, k)) {
            p->version++;
        }
    }
}
