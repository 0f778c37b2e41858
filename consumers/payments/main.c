/*
 * main.c: the payments service's wiring. It consumes the order saga's facts (orders.events:
 * OrderPlaced, OrderCancelled; catalog.events: StockReserved, StockReservationRejected) and
 * the ledger's transfer outcomes (transfers.events: TransferCompleted, TransferFailed,
 * TransferCommandRejected of the transfers it asked for, "pay-<order_id>" and
 * "refund-<order_id>"; every other transfer is skipped), runs them through the pure rules in
 * domain.c against the payment's row, and emits payments.events plus the RequestTransfer
 * commands (transfers.commands) that charge and refund. Its own command, RetryRefund
 * (payments.commands), asks again for a refund the ledger refused; its records join the
 * order's saga (the payment keeps the saga's correlation id). Batching, dedup, outbox and
 * positions: lib/service.c.
 *
 * Configuration: the merchant account the charges go to is ES_MERCHANT_ACCOUNT, or the
 * --merchant flag, default "shop-merchant"; it is read once at start. A payment keeps the
 * merchant its charge went to, so changing it affects new charges only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "str.h"
#include "domain.h"
#include "service.h"
#include "store.h"
#include "strmap.h"
#include "json_get.h"

#define DEFAULT_MERCHANT "shop-merchant"

static const char *const topics[] = {"orders.events", "catalog.events", "transfers.events",
                                     "payments.commands", NULL};

/* The runtime decodes and hands over only the types the rules take. */
static int wants(const char *type)
{
    return payments_input_kind(type) >= 0;
}

/* True for the inputs that come from transfers.events. */
static int is_transfer_outcome(payments_input_kind_t kind)
{
    return kind == PAY_IN_TRANSFER_COMPLETED || kind == PAY_IN_TRANSFER_FAILED ||
           kind == PAY_IN_TRANSFER_REJECTED;
}

/* Map a decoded input (borrowed) to the rules' view of it. The codec validated the payload
 * against its schema; a missing field reads as "" or 0 and the rules reject it. Transfer
 * outcomes name their payment through the transfer id. */
static void input_from_json(const es_input_t *rec, payments_input_t *in)
{
    const json_t *p = rec->payload;
    memset(in, 0, sizeof(*in));
    in->kind = (payments_input_kind_t)payments_input_kind(rec->env.type);
    if (is_transfer_outcome(in->kind)) {
        es_str_copy(in->transfer_id, sizeof(in->transfer_id), es_json_str(p, "transfer_id"));
        in->leg = payments_transfer_leg(es_json_str(p, "transfer_id"), in->order_id,
                                        sizeof(in->order_id), &in->attempt);
        es_str_copy(in->from_account, sizeof(in->from_account), es_json_str(p, "from_account"));
        es_str_copy(in->to_account, sizeof(in->to_account), es_json_str(p, "to_account"));
        in->amount = json_integer_value(json_object_get(p, "amount"));
        es_str_copy(in->reason, sizeof(in->reason), es_json_str(p, "reason"));
        in->compensated = json_is_true(json_object_get(p, "compensated"));
        return;
    }
    es_str_copy(in->order_id, sizeof(in->order_id), es_json_str(p, "order_id"));
    es_str_copy(in->reason, sizeof(in->reason), es_json_str(p, "reason"));
    es_str_copy(in->command_id, sizeof(in->command_id), rec->env.event_id);
    if (in->kind == PAY_IN_ORDER_PLACED) {
        es_str_copy(in->account_id, sizeof(in->account_id), es_json_str(p, "account_id"));
        in->amount = json_integer_value(json_object_get(p, "total"));
    }
}

/* Emit one record caused by `cause` as the *index-th of that cause, then count it. `payload`
 * is stolen; NULL means json_pack ran out of memory. Returns 0 or -1 with errstr. */
static int emit_one(es_service_t *svc, const es_input_t *cause, uint32_t *index, const char *type,
                    const char *aggregate_id, int64_t version, json_t *payload, char *errstr,
                    size_t errstr_size)
{
    if (!payload) {
        snprintf(errstr, errstr_size, "out of memory building a %s", type);
        return -1;
    }
    return es_service_emit(svc, cause, (*index)++, type, aggregate_id, version, payload, errstr,
                           errstr_size);
}

/* The RequestTransfer command for one of the payment's transfers (its own aggregate, the
 * transfer, at version 0: payments does not know the transfer's stream). */
static int emit_request_transfer(es_service_t *svc, const es_input_t *cause, uint32_t *index,
                                 const payments_event_t *ev, const char *from, const char *to,
                                 char *errstr, size_t errstr_size)
{
    json_t *cmd =
        json_pack("{ss ss ss sI so}", "transfer_id", ev->transfer_id, "from_account", from,
                  "to_account", to, "amount", (json_int_t)ev->amount, "currency", json_null());
    return emit_one(svc, cause, index, "RequestTransfer", ev->transfer_id, 0, cmd, errstr,
                    errstr_size);
}

/* Emit the records of `ev` (the payment `pay` is already evolved by it). *index counts the
 * records emitted for `cause` so far, so two records of one cause get 0 and 1, every time. */
static int emit_event(es_service_t *svc, const es_input_t *cause, uint32_t *index,
                      const payments_event_t *ev, const payment_t *pay, char *errstr,
                      size_t errstr_size)
{
    const char *id = ev->order_id;
    json_int_t amount = (json_int_t)ev->amount;
    json_t *p;
    switch (ev->kind) {
    case PAY_EV_CHARGE_REQUESTED:
        p = json_pack("{ss ss ss sI ss}", "order_id", id, "account_id", ev->account_id,
                      "merchant_account", ev->merchant_account, "amount", amount, "transfer_id",
                      ev->transfer_id);
        if (emit_one(svc, cause, index, "PaymentRequested", id, pay->version, p, errstr,
                     errstr_size) != 0) {
            return -1;
        }
        return emit_request_transfer(svc, cause, index, ev, ev->account_id, ev->merchant_account,
                                     errstr, errstr_size);
    case PAY_EV_REFUND_REQUESTED:
        return emit_request_transfer(svc, cause, index, ev, ev->merchant_account, ev->account_id,
                                     errstr, errstr_size);
    case PAY_EV_REFUND_RETRIED:
        p = json_pack("{ss ss sI ss sI}", "order_id", id, "account_id", ev->account_id, "amount",
                      amount, "transfer_id", ev->transfer_id, "attempt", (json_int_t)ev->attempt);
        if (emit_one(svc, cause, index, "PaymentRefundRetried", id, pay->version, p, errstr,
                     errstr_size) != 0) {
            return -1;
        }
        return emit_request_transfer(svc, cause, index, ev, ev->merchant_account, ev->account_id,
                                     errstr, errstr_size);
    case PAY_EV_COMMAND_REJECTED:
        p = json_pack("{ss ss ss ss}", "command_id", ev->command_id, "command_type",
                      ev->command_type, "order_id", id, "reason", ev->reason);
        return emit_one(svc, cause, index, "PaymentCommandRejected", id, pay->version, p, errstr,
                        errstr_size);
    case PAY_EV_CAPTURED:
    case PAY_EV_REFUNDED:
        p = json_pack("{ss ss sI ss}", "order_id", id, "account_id", ev->account_id, "amount",
                      amount, "transfer_id", ev->transfer_id);
        return emit_one(svc, cause, index,
                        ev->kind == PAY_EV_CAPTURED ? "PaymentCaptured" : "PaymentRefunded", id,
                        pay->version, p, errstr, errstr_size);
    case PAY_EV_DECLINED:
    case PAY_EV_REFUND_FAILED:
        p = json_pack("{ss ss sI ss}", "order_id", id, "account_id", ev->account_id, "amount",
                      amount, "reason", ev->reason);
        return emit_one(svc, cause, index,
                        ev->kind == PAY_EV_DECLINED ? "PaymentDeclined" : "PaymentRefundFailed", id,
                        pay->version, p, errstr, errstr_size);
    default:
        return 0; /* silent: the row changes, nothing is published */
    }
}

/* Per-batch working set: the inputs' views and the payments they touch (in the batch's
 * arena), and the service's configuration. */
typedef struct batch {
    payments_input_t *ins;
    payment_t *payments;
    unsigned char *dirty;
    es_idset_t set; /* the payments the batch names: slot i is payments[i] */
    int load_idx;   /* their load's place in the batch's reads */
    const char *merchant;
} batch_t;

/* True when the input concerns one of our payments (transfer outcomes of other transfers
 * are most of transfers.events and none of our business). */
static int ours(const payments_input_t *in)
{
    return !is_transfer_outcome(in->kind) || in->leg != PAY_LEG_NONE;
}

/* The batch's reads (es_service_def_t.load): every payment the inputs name, in one query
 * that travels with the batch's first round trip. */
static int load(es_service_t *svc, es_pg_pipeline_t *pl, const es_input_t *inputs, size_t cnt,
                void *opaque, char *errstr, size_t errstr_size)
{
    batch_t *b = opaque;
    es_arena_t *arena = es_service_arena(svc);
    b->ins = es_arena_calloc(arena, cnt, sizeof(*b->ins));
    b->payments = es_arena_calloc(arena, cnt, sizeof(*b->payments));
    b->dirty = es_arena_calloc(arena, cnt, 1);
    if (!b->ins || !b->payments || !b->dirty || es_idset_reset(&b->set, arena, cnt) != 0) {
        goto oom;
    }
    for (size_t i = 0; i < cnt; i++) {
        input_from_json(&inputs[i], &b->ins[i]);
        if (ours(&b->ins[i]) && es_idset_add(&b->set, b->ins[i].order_id) != 0) {
            goto oom;
        }
    }
    b->load_idx = payments_store_load_queue(pl, b->set.ids, b->set.n);
    if (b->load_idx != -1) {
        return 0;
    }
oom:
    snprintf(errstr, errstr_size, "out of memory for a batch of %zu", cnt);
    return -1;
}

/* The batch handler (es_service_def_t.handle): take the loaded payments, decide and evolve in
 * log order, emit, then queue one upsert of the changed rows. */
static int handle(es_service_t *svc, es_input_t *inputs, size_t cnt, void *opaque, char *errstr,
                  size_t errstr_size)
{
    batch_t *b = opaque;
    size_t n = b->set.n;
    if (payments_store_load_apply(es_pg_pipeline_result(es_service_reads(svc), b->load_idx),
                                  b->set.ids, n, b->payments, errstr, errstr_size) != 0) {
        return -1;
    }
    /* the new inputs only: duplicates were dropped after load() saw them */
    for (size_t i = 0; i < cnt; i++) {
        input_from_json(&inputs[i], &b->ins[i]);
    }
    for (size_t i = 0; i < cnt; i++) {
        const payments_input_t *in = &b->ins[i];
        if (!ours(in)) {
            continue;
        }
        size_t k = es_idset_find(&b->set, in->order_id);
        payment_t *pay = &b->payments[k];
        const char *invalid = payments_input_invalid(pay, in);
        if (invalid) {
            es_service_dead_letter(svc, &inputs[i], invalid);
            continue;
        }
        payments_event_t evs[PAY_EV_MAX];
        int nev = payments_decide(pay, in, b->merchant, evs);
        uint32_t index = 0;
        /* The payment's records belong to the order's saga: the first fact about it says
         * which; a retry is asked for by a command of its own and joins that saga (a refusal
         * stays the command's own answer, as the other contexts' do). */
        const es_input_t *cause = &inputs[i];
        es_input_t joined;
        int refused = nev > 0 && evs[0].kind == PAY_EV_COMMAND_REJECTED;
        if (pay->state == PAYMENT_NONE && nev > 0 && !refused) {
            es_str_copy(pay->correlation_id, sizeof(pay->correlation_id),
                        inputs[i].env.correlation_id);
        } else if (in->kind == PAY_IN_RETRY_REFUND && !refused && pay->correlation_id[0]) {
            joined = inputs[i];
            es_str_copy(joined.env.correlation_id, sizeof(joined.env.correlation_id),
                        pay->correlation_id);
            cause = &joined;
        }
        for (int e = 0; e < nev; e++) {
            payments_evolve(pay, &evs[e]);
            if (evs[e].kind != PAY_EV_COMMAND_REJECTED) {
                b->dirty[k] = 1; /* a refusal changed nothing: an unknown payment stays unknown */
            }
            if (emit_event(svc, cause, &index, &evs[e], pay, errstr, errstr_size) != 0) {
                return -1;
            }
        }
    }
    if (payments_store_save(es_service_pipeline(svc), b->payments, b->dirty, n) != 0) {
        snprintf(errstr, errstr_size, "out of memory queueing payment writes");
        return -1;
    }
    return 0;
}

/* Read the merchant account once (--merchant > ES_MERCHANT_ACCOUNT > shop-merchant), refuse an
 * invalid one (exit 2), then run the shared service loop. */
int main(int argc, char **argv)
{
    const char *merchant = getenv("ES_MERCHANT_ACCOUNT");
    if (!merchant || !merchant[0]) {
        merchant = DEFAULT_MERCHANT;
    }
    if (es_service_take_flag(&argc, argv, "--merchant", &merchant) != 0) {
        fprintf(stderr, "es-payments: option --merchant needs an account id\n");
        return 2;
    }
    if (!payments_id_valid(merchant)) {
        fprintf(stderr,
                "es-payments: invalid merchant account \"%s\" (1 to 100 characters of "
                "[A-Za-z0-9._:-])\n",
                merchant);
        return 2;
    }
    batch_t batch;
    memset(&batch, 0, sizeof(batch));
    es_idset_init(&batch.set);
    batch.merchant = merchant;
    es_service_def_t def = {.name = "payments",
                            .schema = "payments",
                            .dlq_topic = "payments.dlq",
                            .topics = topics,
                            .ddl = payments_store_ddl,
                            .wants = wants,
                            .load = load,
                            .handle = handle,
                            .opaque = &batch};
    int rc = es_service_main(
        argc, argv, &def,
        "The payments service: charges an order's total through the ledger (a RequestTransfer\n"
        "pay-<order_id> from the customer's account to the merchant account) once the order\n"
        "is placed and its stock held, and refunds a cancelled order's capture\n"
        "(refund-<order_id>). RetryRefund {order_id} asks again for a refund the ledger\n"
        "refused (refund.2-<order_id>, ...).\n\n"
        "      --merchant ID   the merchant account charges go to (ES_MERCHANT_ACCOUNT,\n"
        "                      default " DEFAULT_MERCHANT ")");
    es_idset_fini(&batch.set);
    return rc;
}
