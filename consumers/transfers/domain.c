/*
 * domain.c: the transfers context's decide/evolve (see domain.h). Pure: no I/O, no clock.
 */
#include "str.h"
#include "domain.h"

#include <stdio.h>
#include <string.h>

static const char *const input_types[TR_IN__COUNT] = {
    "RequestTransfer", "DebitRejected", "FundsCredited", "DebitReversed", "SagaTimedOut"};
static const char *const event_types[TR_EV__COUNT] = {
    "TransferRequested", "TransferCompleted", "TransferFailed", "TransferCommandRejected", ""};

const char *transfers_event_type(transfers_event_kind_t kind)
{
    return kind < TR_EV__COUNT ? event_types[kind] : "?";
}

int transfers_input_kind(const char *type)
{
    for (int i = 0; i < TR_IN__COUNT; i++) {
        if (!strcmp(type, input_types[i])) {
            return i;
        }
    }
    return -1;
}

const char *transfers_status_name(transfer_status_t status)
{
    static const char *const names[] = {"NONE", "PENDING", "COMPLETED", "FAILED", "TIMED_OUT"};
    return (unsigned)status < sizeof(names) / sizeof(names[0]) ? names[status] : "?";
}

static int id_valid(const char *id)
{
    return es_str_id_valid(id, strlen(id), TR_ID_MAX - 1);
}

static int decide_request(const transfer_t *st, const transfers_input_t *in, transfers_event_t *out)
{
    es_str_copy(out->from_account, sizeof(out->from_account), in->from_account);
    es_str_copy(out->to_account, sizeof(out->to_account), in->to_account);
    es_str_copy(out->currency, sizeof(out->currency), in->currency);
    out->amount = in->amount;
    es_str_copy(out->command_id, sizeof(out->command_id), in->command_id);
    if (st->status == TRANSFER_TIMED_OUT) {
        /* its saga timed out before it started: it fails without starting */
        out->kind = TR_EV_TRANSFER_FAILED;
        es_str_copy(out->reason, sizeof(out->reason), "TIMEOUT");
        return 1;
    }
    if (st->status != TRANSFER_NONE || !id_valid(in->transfer_id)) {
        /* the transfer itself is not touched: only the command is refused */
        out->kind = TR_EV_COMMAND_REJECTED;
        es_str_copy(out->reason, sizeof(out->reason),
                    st->status != TRANSFER_NONE ? "TRANSFER_EXISTS" : "INVALID_ID");
        return 1;
    }
    /* refused at once: the saga never starts */
    if (!id_valid(in->from_account) || !id_valid(in->to_account)) {
        out->kind = TR_EV_TRANSFER_FAILED;
        es_str_copy(out->reason, sizeof(out->reason), "INVALID_ACCOUNT_ID");
    } else if (!strcmp(in->from_account, in->to_account)) {
        out->kind = TR_EV_TRANSFER_FAILED;
        es_str_copy(out->reason, sizeof(out->reason), "SAME_ACCOUNT");
    } else if (in->amount <= 0) {
        out->kind = TR_EV_TRANSFER_FAILED;
        es_str_copy(out->reason, sizeof(out->reason), "INVALID_AMOUNT");
    } else {
        out->kind = TR_EV_TRANSFER_REQUESTED;
    }
    return 1;
}

int transfers_decide(const transfer_t *state, const transfers_input_t *in, transfers_event_t *out)
{
    memset(out, 0, sizeof(*out));
    es_str_copy(out->transfer_id, sizeof(out->transfer_id), in->transfer_id);
    if (in->kind == TR_IN_REQUEST_TRANSFER) {
        return decide_request(state, in, out);
    }
    if (in->kind == TR_IN_SAGA_TIMED_OUT) {
        if (state->status != TRANSFER_NONE || !id_valid(in->transfer_id)) {
            return 0; /* requested: the accounts context decides; or not ours */
        }
        out->kind = TR_EV_FENCED;
        return 1;
    }
    if (state->status != TRANSFER_PENDING) {
        return 0; /* unknown or already terminal: a late or duplicated outcome */
    }
    es_str_copy(out->from_account, sizeof(out->from_account), state->from_account);
    es_str_copy(out->to_account, sizeof(out->to_account), state->to_account);
    out->amount = state->amount;
    switch (in->kind) {
    case TR_IN_FUNDS_CREDITED:
        out->kind = TR_EV_TRANSFER_COMPLETED;
        return 1;
    case TR_IN_DEBIT_REJECTED:
    case TR_IN_DEBIT_REVERSED:
        out->kind = TR_EV_TRANSFER_FAILED;
        es_str_copy(out->reason, sizeof(out->reason), in->reason);
        out->compensated = in->kind == TR_IN_DEBIT_REVERSED;
        return 1;
    default:
        return 0;
    }
}

void transfers_evolve(transfer_t *state, const transfers_event_t *ev)
{
    if (ev->kind == TR_EV_COMMAND_REJECTED) {
        return; /* not an event of the transfer's own stream */
    }
    if (ev->kind == TR_EV_FENCED) {
        es_str_copy(state->id, sizeof(state->id), ev->transfer_id);
        state->status = TRANSFER_TIMED_OUT; /* silent: no version */
        return;
    }
    if (state->status == TRANSFER_NONE || state->status == TRANSFER_TIMED_OUT) {
        es_str_copy(state->id, sizeof(state->id), ev->transfer_id);
        es_str_copy(state->from_account, sizeof(state->from_account), ev->from_account);
        es_str_copy(state->to_account, sizeof(state->to_account), ev->to_account);
        es_str_copy(state->currency, sizeof(state->currency), ev->currency);
        state->amount = ev->amount;
    }
    switch (ev->kind) {
    case TR_EV_TRANSFER_REQUESTED:
        state->status = TRANSFER_PENDING;
        break;
    case TR_EV_TRANSFER_COMPLETED:
        state->status = TRANSFER_COMPLETED;
        break;
    case TR_EV_TRANSFER_FAILED:
        state->status = TRANSFER_FAILED;
        es_str_copy(state->reason, sizeof(state->reason), ev->reason);
        state->compensated = ev->compensated;
        break;
    default:
        break;
    }
    state->version++;
}
