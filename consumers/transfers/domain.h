/*
 * domain.h: the transfers context's rules, as pure functions (no I/O).
 *
 * A transfer is requested by a command; the accounts context then debits and credits (or
 * rejects, or compensates) and transfers only reacts to those outcomes, ending every transfer
 * in exactly one terminal state. Late or duplicated outcomes never move a terminal transfer.
 *
 * A transfer saga that missed its deadline (SagaTimedOut, docs/SAGAS.md) before its
 * RequestTransfer was handled is fenced: the transfer is recorded TIMED_OUT, silently, and the
 * RequestTransfer that comes later fails at once with TIMEOUT instead of starting the saga.
 * Once requested, the accounts context decides (it owns the debit).
 */
#ifndef TRANSFERS_DOMAIN_H
#define TRANSFERS_DOMAIN_H

#include <stdint.h>

#define TR_ID_MAX 128
#define TR_REASON_MAX 48
#define TR_CURRENCY_MAX 8

typedef enum {
    TRANSFER_NONE = 0,
    TRANSFER_PENDING,
    TRANSFER_COMPLETED,
    TRANSFER_FAILED,
    TRANSFER_TIMED_OUT /* a timeout's fence: the saga timed out before it was requested */
} transfer_status_t;

typedef struct transfer {
    char id[TR_ID_MAX];
    char from_account[TR_ID_MAX];
    char to_account[TR_ID_MAX];
    int64_t amount;
    char currency[TR_CURRENCY_MAX]; /* "" = whatever the source holds */
    transfer_status_t status;
    char reason[TR_REASON_MAX];
    int compensated;
    int64_t version;
} transfer_t;

typedef enum {
    TR_IN_REQUEST_TRANSFER = 0,
    TR_IN_DEBIT_REJECTED,
    TR_IN_FUNDS_CREDITED,
    TR_IN_DEBIT_REVERSED,
    TR_IN_SAGA_TIMED_OUT, /* sagas.events; transfer_id: the saga's subject ("" if not ours) */
    TR_IN__COUNT
} transfers_input_kind_t;

typedef struct transfers_input {
    transfers_input_kind_t kind;
    char command_id[40];
    char transfer_id[TR_ID_MAX];
    char from_account[TR_ID_MAX];
    char to_account[TR_ID_MAX];
    int64_t amount;
    char currency[TR_CURRENCY_MAX];
    char reason[TR_REASON_MAX];
} transfers_input_t;

typedef enum {
    TR_EV_TRANSFER_REQUESTED = 0,
    TR_EV_TRANSFER_COMPLETED,
    TR_EV_TRANSFER_FAILED,
    TR_EV_COMMAND_REJECTED,
    TR_EV_FENCED, /* silent: the transfer becomes TIMED_OUT, nothing is published */
    TR_EV__COUNT
} transfers_event_kind_t;

typedef struct transfers_event {
    transfers_event_kind_t kind;
    char transfer_id[TR_ID_MAX];
    char from_account[TR_ID_MAX];
    char to_account[TR_ID_MAX];
    int64_t amount;
    char currency[TR_CURRENCY_MAX];
    char reason[TR_REASON_MAX];
    int compensated;
    char command_id[40];
} transfers_event_t;

/* Decide what `in` causes for the transfer in `state` (TRANSFER_NONE if unknown). Returns the
 * number of events written to *out: 1, or 0 when the input changes nothing (an outcome for a
 * transfer that is already terminal). */
int transfers_decide(const transfer_t *state, const transfers_input_t *in, transfers_event_t *out);

/* Apply `ev` to `state` in place. */
void transfers_evolve(transfer_t *state, const transfers_event_t *ev);

const char *transfers_event_type(transfers_event_kind_t kind);
/* The input kind for a type name, or -1. */
int transfers_input_kind(const char *type);
const char *transfers_status_name(transfer_status_t status);

#endif
