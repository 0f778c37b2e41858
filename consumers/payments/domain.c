/*
 * domain.c: the payments context's decide/evolve (see domain.h). Pure: no I/O, no clock.
 */
#include "str.h"
#include "domain.h"

#include <stdio.h>
#include <string.h>

static const char *const input_types[PAY_IN__COUNT] = {
    "OrderPlaced",       "OrderCancelled", "StockReserved",           "StockReservationRejected",
    "TransferCompleted", "TransferFailed", "TransferCommandRejected", "OrderRejected",
    "RetryRefund"};

static const char *const state_names[PAYMENT__COUNT] = {
    "NONE",      "AWAITING_STOCK", "AWAITING_ORDER", "CHARGING",  "CAPTURED", "DECLINED",
    "REFUNDING", "REFUNDED",       "REFUND_FAILED",  "CANCELLED", "CLOSED"};

#define CHARGE_PREFIX "pay-"
#define REFUND_PREFIX "refund-"
#define RETRY_PREFIX "refund." /* refund.<attempt>-<order_id>, attempts 2.. */

int payments_input_kind(const char *type)
{
    for (int i = 0; i < PAY_IN__COUNT; i++) {
        if (!strcmp(type, input_types[i])) {
            return i;
        }
    }
    return -1;
}

const char *payments_state_name(payment_state_t state)
{
    return (unsigned)state < PAYMENT__COUNT ? state_names[state] : "?";
}

int payments_state_from_name(const char *name)
{
    for (int i = 0; i < PAYMENT__COUNT; i++) {
        if (!strcmp(name, state_names[i])) {
            return i;
        }
    }
    return -1;
}

int payments_id_valid(const char *id)
{
    return es_str_id_valid(id, strlen(id), PAY_ID_VALID_MAX);
}

int payments_event_silent(payments_event_kind_t kind)
{
    return kind >= PAY_EV_ORDER_RECORDED;
}

payments_leg_t payments_transfer_leg(const char *transfer_id, char *order_id, size_t size,
                                     int *attempt)
{
    payments_leg_t leg = PAY_LEG_NONE;
    const char *rest = NULL;
    int n = 1;
    if (!strncmp(transfer_id, CHARGE_PREFIX, strlen(CHARGE_PREFIX))) {
        leg = PAY_LEG_CHARGE;
        rest = transfer_id + strlen(CHARGE_PREFIX);
    } else if (!strncmp(transfer_id, REFUND_PREFIX, strlen(REFUND_PREFIX))) {
        leg = PAY_LEG_REFUND;
        rest = transfer_id + strlen(REFUND_PREFIX);
    } else if (!strncmp(transfer_id, RETRY_PREFIX, strlen(RETRY_PREFIX))) {
        /* 2..PAY_REFUND_ATTEMPTS_MAX, no leading zero, then '-' */
        const char *d = transfer_id + strlen(RETRY_PREFIX);
        n = 0;
        size_t digits = 0;
        while (d[digits] >= '0' && d[digits] <= '9' && digits < 4) {
            n = n * 10 + (d[digits] - '0');
            digits++;
        }
        if (digits > 0 && d[0] != '0' && d[digits] == '-' && n >= 2 &&
            n <= PAY_REFUND_ATTEMPTS_MAX) {
            leg = PAY_LEG_REFUND;
            rest = d + digits + 1;
        }
    }
    if (leg == PAY_LEG_NONE || !payments_id_valid(rest) || strlen(rest) >= size) {
        order_id[0] = '\0';
        *attempt = 0;
        return PAY_LEG_NONE;
    }
    memcpy(order_id, rest, strlen(rest) + 1);
    *attempt = n;
    return leg;
}

/* The id of the payment's transfer of kind `leg` (a refund's `attempt`: 1 is "refund-"),
 * into out[PAY_ID_MAX] (an order id is at most 100 characters, so the prefixed id fits). */
static void transfer_id_of(char *out, const char *order_id, payments_leg_t leg, int attempt)
{
    if (leg == PAY_LEG_REFUND && attempt > 1) {
        snprintf(out, PAY_ID_MAX, RETRY_PREFIX "%d-%s", attempt, order_id);
        return;
    }
    const char *prefix = leg == PAY_LEG_REFUND ? REFUND_PREFIX : CHARGE_PREFIX;
    size_t n = strlen(prefix);
    memcpy(out, prefix, n);
    es_str_copy(out + n, PAY_ID_MAX - n, order_id);
}

/* An event of `kind` carrying the payment's figures (those in `st`). */
static void event_from_state(payments_event_t *ev, payments_event_kind_t kind, const payment_t *st,
                             const char *order_id)
{
    ev->kind = kind;
    es_str_copy(ev->order_id, sizeof(ev->order_id), order_id);
    es_str_copy(ev->account_id, sizeof(ev->account_id), st->account_id);
    es_str_copy(ev->merchant_account, sizeof(ev->merchant_account), st->merchant_account);
    ev->amount = st->amount;
}

/* The charge: the customer's account and total, to the merchant. */
static void charge(payments_event_t *ev, const char *order_id, const char *account_id,
                   int64_t amount, const char *merchant)
{
    ev->kind = PAY_EV_CHARGE_REQUESTED;
    es_str_copy(ev->order_id, sizeof(ev->order_id), order_id);
    es_str_copy(ev->account_id, sizeof(ev->account_id), account_id);
    es_str_copy(ev->merchant_account, sizeof(ev->merchant_account), merchant);
    ev->amount = amount;
    transfer_id_of(ev->transfer_id, order_id, PAY_LEG_CHARGE, 1);
}

/* The refund of a capture (its next attempt): the same amount, from the merchant the charge
 * went to. `kind` is PAY_EV_REFUND_REQUESTED, or PAY_EV_REFUND_RETRIED for a retry. */
static void refund(payments_event_t *ev, payments_event_kind_t kind, const payment_t *st,
                   const char *order_id)
{
    event_from_state(ev, kind, st, order_id);
    ev->attempt = st->refund_attempts + 1;
    transfer_id_of(ev->transfer_id, order_id, PAY_LEG_REFUND, ev->attempt);
}

/* Fill *out as a PaymentCommandRejected of `in` for `reason`; returns 1 (one event). */
static int reject_command(const payments_input_t *in, const char *reason, payments_event_t *out)
{
    out->kind = PAY_EV_COMMAND_REJECTED;
    es_str_copy(out->order_id, sizeof(out->order_id), in->order_id);
    es_str_copy(out->command_id, sizeof(out->command_id), in->command_id);
    es_str_copy(out->command_type, sizeof(out->command_type), input_types[in->kind]);
    es_str_copy(out->reason, sizeof(out->reason), reason);
    return 1;
}

/* RetryRefund: only a refund the ledger refused is asked for again. */
static int decide_retry(const payment_t *st, const payments_input_t *in,
                        payments_event_t out[PAY_EV_MAX])
{
    if (!payments_id_valid(in->order_id)) {
        return reject_command(in, "INVALID_ID", &out[0]);
    }
    switch (st->state) {
    case PAYMENT_REFUND_FAILED:
        if (st->refund_attempts >= PAY_REFUND_ATTEMPTS_MAX) {
            return reject_command(in, "TOO_MANY_ATTEMPTS", &out[0]);
        }
        refund(&out[0], PAY_EV_REFUND_RETRIED, st, in->order_id);
        return 1;
    case PAYMENT_NONE:
        return reject_command(in, "UNKNOWN_ORDER", &out[0]);
    case PAYMENT_REFUNDING:
        return reject_command(in, "REFUND_IN_PROGRESS", &out[0]);
    case PAYMENT_REFUNDED:
        return reject_command(in, "ALREADY_REFUNDED", &out[0]);
    default:
        return reject_command(in, "NO_FAILED_REFUND", &out[0]);
    }
}

/* True while the payment has not charged and is still open: none or awaiting a fact. */
static int awaiting(const payment_t *st)
{
    return st->state == PAYMENT_NONE || st->state == PAYMENT_AWAITING_STOCK ||
           st->state == PAYMENT_AWAITING_ORDER;
}

/* A transfer's outcome for the payment: only the transfer the payment waits for counts. */
static int decide_transfer(const payment_t *st, const payments_input_t *in,
                           payments_event_t out[PAY_EV_MAX])
{
    const char *id = in->order_id;
    int charging = in->leg == PAY_LEG_CHARGE && st->state == PAYMENT_CHARGING;
    /* only the attempt under way: an earlier attempt's outcome is late */
    int refunding = in->leg == PAY_LEG_REFUND && st->state == PAYMENT_REFUNDING &&
                    in->attempt == st->refund_attempts;
    if (!charging && !refunding) {
        return 0; /* not ours, late or duplicated */
    }
    if (in->kind == PAY_IN_TRANSFER_COMPLETED) {
        event_from_state(&out[0], charging ? PAY_EV_CAPTURED : PAY_EV_REFUNDED, st, id);
        es_str_copy(out[0].transfer_id, sizeof(out[0].transfer_id), in->transfer_id);
        if (charging && st->refund_owed) {
            /* cancelled while charging: give it back at once */
            refund(&out[1], PAY_EV_REFUND_REQUESTED, st, id);
            return 2;
        }
        return 1;
    }
    event_from_state(&out[0], charging ? PAY_EV_DECLINED : PAY_EV_REFUND_FAILED, st, id);
    es_str_copy(out[0].transfer_id, sizeof(out[0].transfer_id), in->transfer_id);
    if (charging && in->kind == PAY_IN_TRANSFER_FAILED && in->compensated) {
        /* the debit went through and came back: the merchant side failed */
        static const char merchant[] = "MERCHANT_";
        memcpy(out[0].reason, merchant, sizeof(merchant) - 1);
        es_str_copy(out[0].reason + sizeof(merchant) - 1,
                    sizeof(out[0].reason) - (sizeof(merchant) - 1), in->reason);
    } else {
        es_str_copy(out[0].reason, sizeof(out[0].reason), in->reason);
    }
    return 1;
}

int payments_decide(const payment_t *state, const payments_input_t *in, const char *merchant,
                    payments_event_t out[PAY_EV_MAX])
{
    const payment_t *st = state;
    const char *id = in->order_id;
    memset(out, 0, PAY_EV_MAX * sizeof(*out));
    switch (in->kind) {
    case PAY_IN_ORDER_PLACED:
        if (st->state == PAYMENT_NONE) {
            out[0].kind = PAY_EV_ORDER_RECORDED;
            es_str_copy(out[0].order_id, sizeof(out[0].order_id), id);
            es_str_copy(out[0].account_id, sizeof(out[0].account_id), in->account_id);
            out[0].amount = in->amount;
            return 1;
        }
        if (st->state == PAYMENT_AWAITING_ORDER) {
            charge(&out[0], id, in->account_id, in->amount, merchant);
            return 1;
        }
        return 0;
    case PAY_IN_STOCK_RESERVED:
        if (st->state == PAYMENT_NONE) {
            event_from_state(&out[0], PAY_EV_STOCK_RECORDED, st, id);
            return 1;
        }
        if (st->state == PAYMENT_AWAITING_STOCK) {
            charge(&out[0], id, st->account_id, st->amount, merchant);
            return 1;
        }
        return 0;
    case PAY_IN_STOCK_REJECTED:
        if (awaiting(st)) {
            event_from_state(&out[0], PAY_EV_CLOSED, st, id);
            return 1;
        }
        return 0;
    case PAY_IN_ORDER_REJECTED:
        /* a timed-out order saga is undone like a cancel (docs/SAGAS.md); other rejections
         * follow a refused stock or a declined charge, which closed the payment already */
        if (strcmp(in->reason, "TIMEOUT") != 0) {
            return 0;
        }
        /* fall through */
    case PAY_IN_ORDER_CANCELLED:
        if (awaiting(st)) {
            event_from_state(&out[0], PAY_EV_CANCELLED, st, id);
            return 1;
        }
        if (st->state == PAYMENT_CHARGING && !st->refund_owed) {
            event_from_state(&out[0], PAY_EV_REFUND_OWED, st, id);
            return 1;
        }
        if (st->state == PAYMENT_CAPTURED) {
            refund(&out[0], PAY_EV_REFUND_REQUESTED, st, id);
            return 1;
        }
        return 0;
    case PAY_IN_TRANSFER_COMPLETED:
    case PAY_IN_TRANSFER_FAILED:
    case PAY_IN_TRANSFER_REJECTED:
        return decide_transfer(st, in, out);
    case PAY_IN_RETRY_REFUND:
        return decide_retry(st, in, out);
    default:
        return 0;
    }
}

void payments_evolve(payment_t *state, const payments_event_t *ev)
{
    if (ev->kind == PAY_EV_COMMAND_REJECTED) {
        return; /* a refusal changed nothing */
    }
    if (state->state == PAYMENT_NONE) {
        es_str_copy(state->order_id, sizeof(state->order_id), ev->order_id);
    }
    switch (ev->kind) {
    case PAY_EV_ORDER_RECORDED:
        state->state = PAYMENT_AWAITING_STOCK;
        es_str_copy(state->account_id, sizeof(state->account_id), ev->account_id);
        state->amount = ev->amount;
        break;
    case PAY_EV_STOCK_RECORDED:
        state->state = PAYMENT_AWAITING_ORDER;
        break;
    case PAY_EV_CHARGE_REQUESTED:
        state->state = PAYMENT_CHARGING;
        es_str_copy(state->account_id, sizeof(state->account_id), ev->account_id);
        es_str_copy(state->merchant_account, sizeof(state->merchant_account), ev->merchant_account);
        state->amount = ev->amount;
        break;
    case PAY_EV_CAPTURED:
        state->state = PAYMENT_CAPTURED;
        break;
    case PAY_EV_DECLINED:
        state->state = PAYMENT_DECLINED;
        state->refund_owed = 0; /* nothing was taken, nothing is owed */
        es_str_copy(state->reason, sizeof(state->reason), ev->reason);
        break;
    case PAY_EV_REFUND_REQUESTED:
    case PAY_EV_REFUND_RETRIED:
        state->state = PAYMENT_REFUNDING;
        state->refund_owed = 0; /* asked for: REFUNDING says the rest */
        state->refund_attempts = ev->attempt;
        state->reason[0] = '\0';
        break;
    case PAY_EV_REFUNDED:
        state->state = PAYMENT_REFUNDED;
        break;
    case PAY_EV_REFUND_FAILED:
        state->state = PAYMENT_REFUND_FAILED;
        es_str_copy(state->reason, sizeof(state->reason), ev->reason);
        break;
    case PAY_EV_CANCELLED:
        state->state = PAYMENT_CANCELLED;
        break;
    case PAY_EV_CLOSED:
        state->state = PAYMENT_CLOSED;
        break;
    case PAY_EV_REFUND_OWED:
        state->refund_owed = 1;
        break;
    default:
        return;
    }
    if (!payments_event_silent(ev->kind)) {
        state->version++;
    }
}

/* A transfer outcome's figures against the payment's: the charge goes customer -> merchant,
 * the refund back, both for the payment's amount. */
static int transfer_matches(const payment_t *st, const payments_input_t *in)
{
    int charge_leg = in->leg == PAY_LEG_CHARGE;
    const char *from = charge_leg ? st->account_id : st->merchant_account;
    const char *to = charge_leg ? st->merchant_account : st->account_id;
    return !strcmp(in->from_account, from) && !strcmp(in->to_account, to) &&
           in->amount == st->amount;
}

const char *payments_input_invalid(const payment_t *state, const payments_input_t *in)
{
    switch (in->kind) {
    case PAY_IN_TRANSFER_COMPLETED:
    case PAY_IN_TRANSFER_FAILED:
        /* only once the payment charged does it know what its transfers look like */
        if (in->leg != PAY_LEG_NONE && state->merchant_account[0] && !transfer_matches(state, in)) {
            return "transfer under the payment's id does not match its accounts or amount";
        }
        return NULL;
    case PAY_IN_TRANSFER_REJECTED:
        return NULL; /* carries no figures; foreign ids never reach here */
    case PAY_IN_RETRY_REFUND:
        return NULL; /* a command: refused with PaymentCommandRejected instead */
    default:
        break;
    }
    if (!payments_id_valid(in->order_id)) {
        return "invalid order id";
    }
    if (in->kind != PAY_IN_ORDER_PLACED) {
        return NULL;
    }
    if (in->amount <= 0) {
        return "order placed with a non-positive total";
    }
    if (!payments_id_valid(in->account_id)) {
        return "order placed with an invalid account id";
    }
    if (state->account_id[0] &&
        (strcmp(state->account_id, in->account_id) != 0 || state->amount != in->amount)) {
        return "order placed twice with different account or total";
    }
    return NULL;
}
