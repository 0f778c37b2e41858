/*
 * domain.c: the accounts context's decide/evolve (see domain.h). Pure: no I/O, no clock.
 */
#include "str.h"
#include "domain.h"

#include <stdio.h>
#include <string.h>

static const char *const input_types[ACC_IN__COUNT] = {
    "OpenAccount",       "DepositFunds", "WithdrawFunds",  "CloseAccount",
    "TransferRequested", "FundsDebited", "CreditRejected", "SagaTimedOut"};

static const char *const event_types[ACC_EV__COUNT] = {
    "AccountOpened", "FundsDeposited", "FundsWithdrawn", "AccountClosed", "FundsDebited",
    "DebitRejected", "FundsCredited",  "CreditRejected", "DebitReversed", "AccountCommandRejected"};

const char *accounts_event_type(accounts_event_kind_t kind)
{
    return kind < ACC_EV__COUNT ? event_types[kind] : "?";
}

const char *accounts_input_type(accounts_input_kind_t kind)
{
    return kind < ACC_IN__COUNT ? input_types[kind] : "?";
}

int accounts_input_kind(const char *type)
{
    for (int i = 0; i < ACC_IN__COUNT; i++) {
        if (!strcmp(type, input_types[i])) {
            return i;
        }
    }
    return -1;
}

int accounts_id_valid(const char *id)
{
    return es_str_id_valid(id, strlen(id), ACC_ID_MAX - 1);
}

static int currency_valid(const char *c)
{
    if (strlen(c) != 3) {
        return 0;
    }
    for (int i = 0; i < 3; i++) {
        if (c[i] < 'A' || c[i] > 'Z') {
            return 0;
        }
    }
    return 1;
}

const char *accounts_input_account(const accounts_input_t *in)
{
    switch (in->kind) {
    case ACC_IN_TRANSFER_REQUESTED:
    case ACC_IN_CREDIT_REJECTED:
        return in->from_account;
    case ACC_IN_FUNDS_DEBITED:
        return in->to_account;
    default:
        return in->account_id;
    }
}

static void reject_command(const account_t *st, const char *reason, accounts_event_t *out)
{
    out->kind = ACC_EV_COMMAND_REJECTED;
    es_str_copy(out->reason, sizeof(out->reason), reason);
    out->balance = st->balance;
}

/* The rule shared by commands that need an open account. */
static const char *require_open(const account_t *st)
{
    if (st->status == ACCOUNT_NONE) {
        return "ACCOUNT_NOT_FOUND";
    }
    if (st->status == ACCOUNT_CLOSED) {
        return "ACCOUNT_CLOSED";
    }
    return NULL;
}

static void decide_command(const account_t *st, const accounts_input_t *in, accounts_event_t *out)
{
    const char *why;
    out->command_type = input_types[in->kind];
    es_str_copy(out->command_id, sizeof(out->command_id), in->command_id);
    switch (in->kind) {
    case ACC_IN_OPEN_ACCOUNT:
        if (!accounts_id_valid(in->account_id)) {
            reject_command(st, "INVALID_ID", out);
        } else if (st->status != ACCOUNT_NONE) {
            reject_command(st, "ACCOUNT_EXISTS", out);
        } else if (!currency_valid(in->currency)) {
            reject_command(st, "INVALID_CURRENCY", out);
        } else if (!in->owner[0]) {
            reject_command(st, "INVALID_OWNER", out);
        } else {
            out->kind = ACC_EV_ACCOUNT_OPENED;
            es_str_copy(out->owner, sizeof(out->owner), in->owner);
            es_str_copy(out->currency, sizeof(out->currency), in->currency);
        }
        return;
    case ACC_IN_DEPOSIT_FUNDS:
        if ((why = require_open(st))) {
            reject_command(st, why, out);
        } else if (in->amount <= 0) {
            reject_command(st, "INVALID_AMOUNT", out);
        } else if (st->balance > INT64_MAX - in->amount) {
            reject_command(st, "AMOUNT_TOO_LARGE", out);
        } else {
            out->kind = ACC_EV_FUNDS_DEPOSITED;
            out->amount = in->amount;
            out->balance = st->balance + in->amount;
        }
        return;
    case ACC_IN_WITHDRAW_FUNDS:
        if ((why = require_open(st))) {
            reject_command(st, why, out);
        } else if (in->amount <= 0) {
            reject_command(st, "INVALID_AMOUNT", out);
        } else if (st->balance < in->amount) {
            reject_command(st, "INSUFFICIENT_FUNDS", out);
        } else {
            out->kind = ACC_EV_FUNDS_WITHDRAWN;
            out->amount = in->amount;
            out->balance = st->balance - in->amount;
        }
        return;
    case ACC_IN_CLOSE_ACCOUNT:
        if ((why = require_open(st))) {
            reject_command(st, why, out);
        } else if (st->balance != 0) {
            reject_command(st, "BALANCE_NOT_ZERO", out);
        } else {
            out->kind = ACC_EV_ACCOUNT_CLOSED;
        }
        return;
    default:
        return;
    }
}

static void decide_saga(const account_t *st, const accounts_input_t *in, accounts_event_t *out)
{
    const char *why;
    out->amount = in->amount;
    out->balance = st->balance;
    es_str_copy(out->transfer_id, sizeof(out->transfer_id), in->transfer_id);
    switch (in->kind) {
    case ACC_IN_TRANSFER_REQUESTED:
        es_str_copy(out->other_account, sizeof(out->other_account), in->to_account);
        es_str_copy(out->currency, sizeof(out->currency), st->currency);
        if (in->timed_out) {
            out->kind = ACC_EV_DEBIT_REJECTED;
            es_str_copy(out->reason, sizeof(out->reason), "TIMEOUT");
        } else if ((why = require_open(st))) {
            out->kind = ACC_EV_DEBIT_REJECTED;
            es_str_copy(out->reason, sizeof(out->reason), why);
        } else if (in->currency[0] && strcmp(in->currency, st->currency) != 0) {
            out->kind = ACC_EV_DEBIT_REJECTED;
            es_str_copy(out->reason, sizeof(out->reason), "CURRENCY_MISMATCH");
        } else if (in->amount <= 0 || st->balance < in->amount) {
            out->kind = ACC_EV_DEBIT_REJECTED;
            es_str_copy(out->reason, sizeof(out->reason), "INSUFFICIENT_FUNDS");
        } else {
            out->kind = ACC_EV_FUNDS_DEBITED;
            out->balance = st->balance - in->amount;
        }
        return;
    case ACC_IN_FUNDS_DEBITED:
        es_str_copy(out->other_account, sizeof(out->other_account), in->from_account);
        if ((why = require_open(st))) {
            out->kind = ACC_EV_CREDIT_REJECTED;
            es_str_copy(out->reason, sizeof(out->reason), why);
        } else if (strcmp(in->currency, st->currency) != 0) {
            out->kind = ACC_EV_CREDIT_REJECTED;
            es_str_copy(out->reason, sizeof(out->reason), "CURRENCY_MISMATCH");
        } else if (st->balance > INT64_MAX - in->amount) {
            out->kind = ACC_EV_CREDIT_REJECTED;
            es_str_copy(out->reason, sizeof(out->reason), "AMOUNT_TOO_LARGE");
        } else {
            out->kind = ACC_EV_FUNDS_CREDITED;
            out->balance = st->balance + in->amount;
        }
        return;
    case ACC_IN_CREDIT_REJECTED:
        /* The refund always goes through: the money left this account in this saga and must
         * come back, even if the account was closed in between. */
        out->kind = ACC_EV_DEBIT_REVERSED;
        es_str_copy(out->reason, sizeof(out->reason), in->reason);
        out->balance = st->balance + in->amount;
        return;
    default:
        return;
    }
}

const char *accounts_input_invalid(const account_t *state, const accounts_input_t *in)
{
    if (in->kind < ACC_IN_TRANSFER_REQUESTED) {
        return NULL; /* commands are refused with a rejection event instead */
    }
    if (in->amount <= 0) {
        return "saga event with a non-positive amount";
    }
    if (in->kind == ACC_IN_CREDIT_REJECTED && state->balance > INT64_MAX - in->amount) {
        return "refund would overflow the balance";
    }
    return NULL;
}

void accounts_decide(const account_t *state, const accounts_input_t *in, accounts_event_t *out)
{
    memset(out, 0, sizeof(*out));
    es_str_copy(out->account_id, sizeof(out->account_id), accounts_input_account(in));
    if (in->kind <= ACC_IN_CLOSE_ACCOUNT) {
        decide_command(state, in, out);
    } else {
        decide_saga(state, in, out);
    }
}

void accounts_evolve(account_t *state, const accounts_event_t *ev)
{
    switch (ev->kind) {
    case ACC_EV_ACCOUNT_OPENED:
        es_str_copy(state->id, sizeof(state->id), ev->account_id);
        es_str_copy(state->owner, sizeof(state->owner), ev->owner);
        es_str_copy(state->currency, sizeof(state->currency), ev->currency);
        state->balance = 0;
        state->status = ACCOUNT_OPEN;
        break;
    case ACC_EV_FUNDS_DEPOSITED:
    case ACC_EV_FUNDS_WITHDRAWN:
    case ACC_EV_FUNDS_DEBITED:
    case ACC_EV_FUNDS_CREDITED:
    case ACC_EV_DEBIT_REVERSED:
        state->balance = ev->balance;
        break;
    case ACC_EV_ACCOUNT_CLOSED:
        state->status = ACCOUNT_CLOSED;
        break;
    default: /* rejections change nothing but the stream position */
        break;
    }
    if (state->status != ACCOUNT_NONE) {
        state->version++;
    }
}
