/*
 * main.c: the transfers service's wiring. It consumes transfers.commands (RequestTransfer)
 * and the accounts context's saga outcomes (accounts.events: DebitRejected, FundsCredited,
 * DebitReversed), runs them through the pure rules in domain.c and emits TransferRequested,
 * TransferCompleted or TransferFailed. Batching, dedup, outbox and positions: lib/service.c.
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

static const char *const topics[] = {"transfers.commands", "accounts.events", "sagas.events", NULL};

static int wants(const char *type)
{
    return transfers_input_kind(type) >= 0;
}

static void input_from_json(const es_input_t *rec, transfers_input_t *in)
{
    const json_t *p = rec->payload;
    memset(in, 0, sizeof(*in));
    in->kind = (transfers_input_kind_t)transfers_input_kind(rec->env.type);
    es_str_copy(in->command_id, sizeof(in->command_id), rec->env.event_id);
    es_str_copy(in->transfer_id, sizeof(in->transfer_id), es_json_str(p, "transfer_id"));
    es_str_copy(in->from_account, sizeof(in->from_account), es_json_str(p, "from_account"));
    es_str_copy(in->to_account, sizeof(in->to_account), es_json_str(p, "to_account"));
    es_str_copy(in->currency, sizeof(in->currency), es_json_str(p, "currency"));
    es_str_copy(in->reason, sizeof(in->reason), es_json_str(p, "reason"));
    in->amount = json_integer_value(json_object_get(p, "amount"));
    if (in->kind == TR_IN_SAGA_TIMED_OUT) {
        /* a transfer saga's subject is its transfer; other sagas' timeouts are not ours */
        es_str_copy(in->transfer_id, sizeof(in->transfer_id),
                    strcmp(es_json_str(p, "saga_type"), "transfer") ? ""
                                                                    : es_json_str(p, "subject"));
    }
}

static json_t *event_to_json(const transfers_event_t *ev)
{
    const char *id = ev->transfer_id;
    json_int_t amount = (json_int_t)ev->amount;
    switch (ev->kind) {
    case TR_EV_TRANSFER_REQUESTED:
        return json_pack("{ss ss ss sI so}", "transfer_id", id, "from_account", ev->from_account,
                         "to_account", ev->to_account, "amount", amount, "currency",
                         ev->currency[0] ? json_string(ev->currency) : json_null());
    case TR_EV_TRANSFER_COMPLETED:
        return json_pack("{ss ss ss sI}", "transfer_id", id, "from_account", ev->from_account,
                         "to_account", ev->to_account, "amount", amount);
    case TR_EV_TRANSFER_FAILED:
        return json_pack("{ss ss ss sI ss sb}", "transfer_id", id, "from_account", ev->from_account,
                         "to_account", ev->to_account, "amount", amount, "reason", ev->reason,
                         "compensated", ev->compensated);
    case TR_EV_COMMAND_REJECTED:
        return json_pack("{ss ss ss ss}", "command_id", ev->command_id, "command_type",
                         "RequestTransfer", "transfer_id", id, "reason", ev->reason);
    default:
        return NULL;
    }
}

/* Per-batch working set: the inputs' views and the transfers they touch, in the batch's arena. */
typedef struct batch {
    transfers_input_t *ins;
    transfer_t *transfers;
    unsigned char *dirty;
    es_idset_t set; /* the transfers the batch names: slot i is transfers[i] */
    int load_idx;   /* their load's place in the batch's reads */
} batch_t;

/* Every transfer the batch names, queued to be loaded with the batch's first round trip. */
static int load(es_service_t *svc, es_pg_pipeline_t *pl, const es_input_t *inputs, size_t cnt,
                void *opaque, char *errstr, size_t errstr_size)
{
    batch_t *b = opaque;
    es_arena_t *arena = es_service_arena(svc);
    b->ins = es_arena_calloc(arena, cnt, sizeof(*b->ins));
    b->transfers = es_arena_calloc(arena, cnt, sizeof(*b->transfers));
    b->dirty = es_arena_calloc(arena, cnt, 1);
    if (!b->ins || !b->transfers || !b->dirty || es_idset_reset(&b->set, arena, cnt) != 0) {
        goto oom;
    }
    for (size_t i = 0; i < cnt; i++) {
        input_from_json(&inputs[i], &b->ins[i]);
        if (es_idset_add(&b->set, b->ins[i].transfer_id) != 0) {
            goto oom;
        }
    }
    b->load_idx = transfers_store_load_queue(pl, b->set.ids, b->set.n);
    if (b->load_idx == -1) {
        goto oom;
    }
    return 0;
oom:
    snprintf(errstr, errstr_size, "out of memory for a batch of %zu", cnt);
    return -1;
}

static int handle(es_service_t *svc, es_input_t *inputs, size_t cnt, void *opaque, char *errstr,
                  size_t errstr_size)
{
    batch_t *b = opaque;
    size_t n = b->set.n;
    transfers_store_load_apply(es_pg_pipeline_result(es_service_reads(svc), b->load_idx),
                               b->set.ids, n, b->transfers);
    /* the new inputs only now: duplicates were dropped after load() saw them */
    for (size_t i = 0; i < cnt; i++) {
        input_from_json(&inputs[i], &b->ins[i]);
    }
    for (size_t i = 0; i < cnt; i++) {
        size_t t = es_idset_find(&b->set, b->ins[i].transfer_id);
        transfer_t *tr = &b->transfers[t];
        transfers_event_t ev;
        if (transfers_decide(tr, &b->ins[i], &ev) == 0) {
            continue;
        }
        transfers_evolve(tr, &ev);
        if (ev.kind != TR_EV_COMMAND_REJECTED) {
            b->dirty[t] = 1;
        }
        if (ev.kind == TR_EV_FENCED) {
            continue; /* a silent change of state */
        }
        if (es_service_emit(svc, &inputs[i], 0, transfers_event_type(ev.kind), ev.transfer_id,
                            tr->version, event_to_json(&ev), errstr, errstr_size) != 0) {
            return -1;
        }
    }
    if (transfers_store_save(es_service_pipeline(svc), b->transfers, b->dirty, n) != 0) {
        snprintf(errstr, errstr_size, "out of memory queueing transfer writes");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    batch_t batch;
    memset(&batch, 0, sizeof(batch));
    es_idset_init(&batch.set);
    es_service_def_t def = {.name = "transfers",
                            .schema = "transfers",
                            .dlq_topic = "transfers.dlq",
                            .topics = topics,
                            .ddl = transfers_store_ddl,
                            .wants = wants,
                            .load = load,
                            .handle = handle,
                            .opaque = &batch};
    int rc = es_service_main(argc, argv, &def,
                             "The transfers service: starts money transfers and records how each "
                             "ends,\nreacting to the accounts context's debit and credit events.");
    es_idset_fini(&batch.set);
    return rc;
}
