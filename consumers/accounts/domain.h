/*
 * domain.h: the accounts context's rules, as pure functions (no I/O):
 *
 *   accounts_decide(state, input) -> the event the input causes
 *   accounts_evolve(state, event) -> the state after the event
 *
 * Every input concerns exactly one account (accounts_input_account() says which), so the
 * wiring can load, lock and save just that row. The transfer saga's account steps live here:
 * debit the source on TransferRequested, credit the destination on FundsDebited, refund the
 * source on CreditRejected.
 *
 * The debit is the transfer saga's point of no return, so the accounts context decides what a
 * timed-out transfer saga becomes (docs/SAGAS.md): SagaTimedOut leaves a fence on the transfer
 * id (the wiring keeps it); a TransferRequested that meets a fence is refused with TIMEOUT. One
 * that was debited before the timeout goes through: the credit (or its reversal) finishes it.
 */
#ifndef ACCOUNTS_DOMAIN_H
#define ACCOUNTS_DOMAIN_H

#include <stdint.h>

#define ACC_ID_MAX 128
#define ACC_OWNER_MAX 256
#define ACC_CURRENCY_MAX 8
#define ACC_REASON_MAX 48

typedef enum { ACCOUNT_NONE = 0, ACCOUNT_OPEN, ACCOUNT_CLOSED } account_status_t;

typedef struct account {
    char id[ACC_ID_MAX];
    char owner[ACC_OWNER_MAX];
    char currency[ACC_CURRENCY_MAX];
    int64_t balance; /* minor units */
    account_status_t status;
    int64_t version; /* events applied to this account so far */
} account_t;

typedef enum {
    ACC_IN_OPEN_ACCOUNT = 0,
    ACC_IN_DEPOSIT_FUNDS,
    ACC_IN_WITHDRAW_FUNDS,
    ACC_IN_CLOSE_ACCOUNT,
    ACC_IN_TRANSFER_REQUESTED, /* saga: debit the source */
    ACC_IN_FUNDS_DEBITED,      /* saga: credit the destination */
    ACC_IN_CREDIT_REJECTED,    /* saga: refund the source */
    ACC_IN_SAGA_TIMED_OUT,     /* fence the transfer (wiring only: concerns no account) */
    ACC_IN__COUNT
} accounts_input_kind_t;

/* A command or an upstream event, as the rules need it. Strings are NUL-terminated copies. */
typedef struct accounts_input {
    accounts_input_kind_t kind;
    char command_id[40]; /* commands: their id, echoed in rejections */
    char account_id[ACC_ID_MAX];
    char owner[ACC_OWNER_MAX];
    char currency[ACC_CURRENCY_MAX]; /* OpenAccount; saga: the expected currency, or "" */
    int64_t amount;
    char transfer_id[ACC_ID_MAX];
    char from_account[ACC_ID_MAX];
    char to_account[ACC_ID_MAX];
    char reason[ACC_REASON_MAX]; /* CreditRejected: why */
    int timed_out; /* TransferRequested: the transfer's saga timed out before this debit */
} accounts_input_t;

typedef enum {
    ACC_EV_ACCOUNT_OPENED = 0,
    ACC_EV_FUNDS_DEPOSITED,
    ACC_EV_FUNDS_WITHDRAWN,
    ACC_EV_ACCOUNT_CLOSED,
    ACC_EV_FUNDS_DEBITED,
    ACC_EV_DEBIT_REJECTED,
    ACC_EV_FUNDS_CREDITED,
    ACC_EV_CREDIT_REJECTED,
    ACC_EV_DEBIT_REVERSED,
    ACC_EV_COMMAND_REJECTED,
    ACC_EV__COUNT
} accounts_event_kind_t;

typedef struct accounts_event {
    accounts_event_kind_t kind;
    char account_id[ACC_ID_MAX]; /* the aggregate */
    char owner[ACC_OWNER_MAX];
    char currency[ACC_CURRENCY_MAX];
    int64_t amount;
    int64_t balance; /* the account's balance after the event */
    char transfer_id[ACC_ID_MAX];
    char other_account[ACC_ID_MAX]; /* debit: to; credit, credit rejected: from */
    char reason[ACC_REASON_MAX];
    char command_id[40];
    const char *command_type; /* static string */
} accounts_event_t;

/* The account an input reads and changes (borrowed from `in`). */
const char *accounts_input_account(const accounts_input_t *in);

/* Saga events come from other services and must make sense before any rule runs: returns
 * NULL when `in` can be decided on `state`, else why not (a non-positive amount in a saga
 * event, a refund that would overflow the balance). The wiring dead-letters such inputs:
 * they mean a peer is broken, and guessing would corrupt money. */
const char *accounts_input_invalid(const account_t *state, const accounts_input_t *in);

/* Decide what `in` causes given the account's current `state` (status ACCOUNT_NONE when the
 * account does not exist). Always produces exactly one event into *out: the success event
 * or a rejection carrying a reason. */
void accounts_decide(const account_t *state, const accounts_input_t *in, accounts_event_t *out);

/* Apply `ev` to `state` in place. Rejections of a missing account leave it missing. */
void accounts_evolve(account_t *state, const accounts_event_t *ev);

/* Names used on the wire. */
const char *accounts_event_type(accounts_event_kind_t kind);
const char *accounts_input_type(accounts_input_kind_t kind);
/* The input kind for a type name, or -1. */
int accounts_input_kind(const char *type);

/* True when `id` is usable as an id: 1..127 characters of [A-Za-z0-9._:-]. */
int accounts_id_valid(const char *id);

#endif
