/*
 * domain.h: the payments context's rules, as pure functions (no I/O):
 *
 *   payments_decide(state, input, merchant) -> the events the input causes (0, 1 or 2)
 *   payments_evolve(state, event)           -> the payment after the event
 *
 * A payment is keyed by order id. It waits for two facts that come on two topics in either
 * order (the order's account and total from OrderPlaced, the held stock from StockReserved),
 * then charges through the ledger (a RequestTransfer "pay-<order_id>" from the customer to the
 * merchant) and follows the transfer's outcome; a cancelled order's capture is refunded with a
 * RequestTransfer "refund-<order_id>" back. A refund the ledger refused can be asked for again
 * with the RetryRefund command, under a new transfer id ("refund.2-<order_id>", ...).
 * docs/SHOP.md, section "payments", has the table this file implements. Late and duplicated
 * inputs change nothing.
 */
#ifndef PAYMENTS_DOMAIN_H
#define PAYMENTS_DOMAIN_H

#include <stddef.h>
#include <stdint.h>

/* Buffers are larger than the longest valid id, so a too-long id is still too long (and
 * invalid) after a bounded copy. */
#define PAY_ID_MAX 128
#define PAY_ID_VALID_MAX 100 /* ids: 1..100 characters of [A-Za-z0-9._:-] */
#define PAY_REASON_MAX 64
#define PAY_EV_MAX 2 /* the most events one input causes (capture, then the owed refund) */
#define PAY_REFUND_ATTEMPTS_MAX 999 /* refund transfers one payment may ask for */
#define PAY_TYPE_MAX 32

typedef enum {
    PAYMENT_NONE = 0, /* no row yet */
    PAYMENT_AWAITING_STOCK,
    PAYMENT_AWAITING_ORDER,
    PAYMENT_CHARGING,
    PAYMENT_CAPTURED,
    PAYMENT_DECLINED,
    PAYMENT_REFUNDING,
    PAYMENT_REFUNDED,
    PAYMENT_REFUND_FAILED,
    PAYMENT_CANCELLED,
    PAYMENT_CLOSED,
    PAYMENT__COUNT
} payment_state_t;

typedef struct payment {
    char order_id[PAY_ID_MAX];
    payment_state_t state;
    char account_id[PAY_ID_MAX];       /* "" until OrderPlaced */
    char merchant_account[PAY_ID_MAX]; /* "" until the charge */
    int64_t amount;                    /* the order's total, minor units; 0 until OrderPlaced */
    int refund_owed;                   /* cancelled while charging: refund once captured */
    char reason[PAY_REASON_MAX];       /* DECLINED, REFUND_FAILED: why */
    int refund_attempts;               /* refund transfers asked for: 0, then 1 per attempt */
    int64_t version;                   /* payments events (and refund requests) so far */
    char correlation_id[PAY_ID_MAX];   /* the order's saga (wiring: the rules never read it) */
} payment_t;

typedef enum {
    PAY_IN_ORDER_PLACED = 0,
    PAY_IN_ORDER_CANCELLED,
    PAY_IN_STOCK_RESERVED,
    PAY_IN_STOCK_REJECTED,     /* StockReservationRejected */
    PAY_IN_TRANSFER_COMPLETED, /* TransferCompleted */
    PAY_IN_TRANSFER_FAILED,    /* TransferFailed */
    PAY_IN_TRANSFER_REJECTED,  /* TransferCommandRejected */
    PAY_IN_ORDER_REJECTED,     /* OrderRejected: with reason TIMEOUT, undone like a cancel */
    PAY_IN_RETRY_REFUND,       /* the RetryRefund command */
    PAY_IN__COUNT
} payments_input_kind_t;

/* Which of a payment's two transfers a transfer id names. */
typedef enum { PAY_LEG_NONE = 0, PAY_LEG_CHARGE, PAY_LEG_REFUND } payments_leg_t;

/* An upstream event, as the rules need it. Strings are NUL-terminated copies. */
typedef struct payments_input {
    payments_input_kind_t kind;
    char order_id[PAY_ID_MAX]; /* the payment; transfer events: their id without the prefix */
    payments_leg_t leg;        /* transfer events: charge or refund (NONE: not ours) */
    int attempt;               /* transfer events: the refund attempt the id names (1 first) */
    char transfer_id[PAY_ID_MAX];
    char account_id[PAY_ID_MAX];   /* OrderPlaced: the account to charge */
    int64_t amount;                /* OrderPlaced: total; TransferCompleted/Failed: amount */
    char from_account[PAY_ID_MAX]; /* TransferCompleted/Failed */
    char to_account[PAY_ID_MAX];
    char reason[PAY_REASON_MAX]; /* TransferFailed, TransferCommandRejected, OrderRejected */
    int compensated;             /* TransferFailed: the ledger reversed the debit */
    char command_id[PAY_ID_MAX]; /* RetryRefund: the command's id, for a refusal */
} payments_input_t;

typedef enum {
    PAY_EV_CHARGE_REQUESTED = 0, /* PaymentRequested + RequestTransfer pay-… */
    PAY_EV_CAPTURED,             /* PaymentCaptured */
    PAY_EV_DECLINED,             /* PaymentDeclined */
    PAY_EV_REFUND_REQUESTED,     /* RequestTransfer refund-… */
    PAY_EV_REFUNDED,             /* PaymentRefunded */
    PAY_EV_REFUND_FAILED,        /* PaymentRefundFailed */
    PAY_EV_REFUND_RETRIED,       /* PaymentRefundRetried + RequestTransfer refund.<n>-… */
    PAY_EV_COMMAND_REJECTED,     /* PaymentCommandRejected: emitted, changes nothing */
    /* silent: they change the row and emit nothing */
    PAY_EV_ORDER_RECORDED, /* -> AWAITING_STOCK */
    PAY_EV_STOCK_RECORDED, /* -> AWAITING_ORDER */
    PAY_EV_CANCELLED,      /* -> CANCELLED, never charges */
    PAY_EV_CLOSED,         /* -> CLOSED, the stock was never held */
    PAY_EV_REFUND_OWED,    /* cancelled while charging */
    PAY_EV__COUNT
} payments_event_kind_t;

typedef struct payments_event {
    payments_event_kind_t kind;
    char order_id[PAY_ID_MAX];
    char account_id[PAY_ID_MAX];
    char merchant_account[PAY_ID_MAX];
    int64_t amount;
    char transfer_id[PAY_ID_MAX]; /* the ledger transfer the event is about, or "" */
    char reason[PAY_REASON_MAX];
    int attempt;                 /* REFUND_RETRIED: the attempt it starts */
    char command_id[PAY_ID_MAX]; /* COMMAND_REJECTED: the refused command */
    char command_type[PAY_TYPE_MAX];
} payments_event_t;

/* Which of a payment's transfers `transfer_id` (borrowed) is: "pay-<order_id>" is the charge,
 * "refund-<order_id>" the first refund, "refund.<n>-<order_id>" (n 2..999, no leading zero)
 * the n-th; the order id is copied into order_id[size] and the attempt (1 for the charge and
 * the first refund) into *attempt. Any other id, or one whose rest is not a valid order id, is
 * not ours: PAY_LEG_NONE (order_id "", *attempt 0). */
payments_leg_t payments_transfer_leg(const char *transfer_id, char *order_id, size_t size,
                                     int *attempt);

/* Inputs come from other services and must make sense before any rule runs: returns NULL
 * when `in` can be decided on `state`, else why not (an invalid order or account id, a
 * non-positive total, an OrderPlaced that contradicts the one recorded, a transfer under the
 * payment's id whose accounts or amount are not the payment's). The wiring dead-letters such
 * inputs: they mean a peer is broken. Returns a static string. */
const char *payments_input_invalid(const payment_t *state, const payments_input_t *in);

/* Decide what `in` causes for the payment in `state` (PAYMENT_NONE when unknown), charging
 * to `merchant` (borrowed, a valid account id). Writes the events into out[0..n) and returns
 * n: 0 when the input changes nothing (duplicate, late, or not for this state), 2 only for a
 * capture that owes a refund (PAY_EV_CAPTURED, then PAY_EV_REFUND_REQUESTED). Apply them in
 * order with payments_evolve(). */
int payments_decide(const payment_t *state, const payments_input_t *in, const char *merchant,
                    payments_event_t out[PAY_EV_MAX]);

/* Apply `ev` to `state` in place. The version goes up by one for every event that emits a
 * record (payments_event_silent() false), the state changes for all of them; a refusal
 * (PAY_EV_COMMAND_REJECTED) changes nothing. */
void payments_evolve(payment_t *state, const payments_event_t *ev);

/* True for the events that change the row but emit nothing. */
int payments_event_silent(payments_event_kind_t kind);

/* The input kind for a type name, or -1 (types the service does not handle). */
int payments_input_kind(const char *type);

/* "AWAITING_STOCK", ... (the value stored in the table); "?" when out of range. */
const char *payments_state_name(payment_state_t state);
/* The state for a stored name, or -1. */
int payments_state_from_name(const char *name);

/* True when `id` is 1..100 characters of [A-Za-z0-9._:-]. */
int payments_id_valid(const char *id);

#endif
