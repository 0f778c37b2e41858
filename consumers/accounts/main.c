/*
 * main.c: the accounts service's wiring. It consumes accounts.commands, the transfer saga's
 * TransferRequested (transfers.events) and its own FundsDebited/CreditRejected
 * (accounts.events), runs each input through the pure rules in domain.c against the
 * account's row, and emits the resulting event. Its own events it handles at once, in the
 * transaction that emitted them (loop_back in service.h): a debit and its credit commit
 * together. Everything else (batching, dedup, outbox, positions) is the shared runtime in
 * lib/service.c.
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

static const char *const topics[] = {"accounts.commands", "transfers.events", "accounts.events",
                                     "sagas.events", NULL};

static int wants(const char *type)
{
    return accounts_input_kind(type) >= 0;
}

/* Map a decoded input to the rules' view of it. The codec validated the payload against its
 * schema, so fields are present and typed. */
static void input_from_json(const es_input_t *rec, accounts_input_t *in)
{
    const json_t *p = rec->payload;
    memset(in, 0, sizeof(*in));
    in->kind = (accounts_input_kind_t)accounts_input_kind(rec->env.type);
    es_str_copy(in->command_id, sizeof(in->command_id), rec->env.event_id);
    in->amount = json_integer_value(json_object_get(p, "amount"));
    es_str_copy(in->transfer_id, sizeof(in->transfer_id), es_json_str(p, "transfer_id"));
    es_str_copy(in->currency, sizeof(in->currency), es_json_str(p, "currency"));
    switch (in->kind) {
    case ACC_IN_TRANSFER_REQUESTED:
        es_str_copy(in->from_account, sizeof(in->from_account), es_json_str(p, "from_account"));
        es_str_copy(in->to_account, sizeof(in->to_account), es_json_str(p, "to_account"));
        break;
    case ACC_IN_FUNDS_DEBITED:
        es_str_copy(in->from_account, sizeof(in->from_account), es_json_str(p, "account_id"));
        es_str_copy(in->to_account, sizeof(in->to_account), es_json_str(p, "to_account"));
        break;
    case ACC_IN_CREDIT_REJECTED:
        es_str_copy(in->from_account, sizeof(in->from_account), es_json_str(p, "from_account"));
        es_str_copy(in->to_account, sizeof(in->to_account), es_json_str(p, "account_id"));
        es_str_copy(in->reason, sizeof(in->reason), es_json_str(p, "reason"));
        break;
    case ACC_IN_SAGA_TIMED_OUT:
        /* a transfer saga's subject is its transfer; other sagas' timeouts are not ours */
        es_str_copy(in->transfer_id, sizeof(in->transfer_id),
                    strcmp(es_json_str(p, "saga_type"), "transfer") ? ""
                                                                    : es_json_str(p, "subject"));
        break;
    default:
        es_str_copy(in->account_id, sizeof(in->account_id), es_json_str(p, "account_id"));
        es_str_copy(in->owner, sizeof(in->owner), es_json_str(p, "owner"));
        break;
    }
}

static json_t *event_to_json(const accounts_event_t *ev)
{
    const char *id = ev->account_id;
    switch (ev->kind) {
    case ACC_EV_ACCOUNT_OPENED:
        return json_pack("{ss ss ss}", "account_id", id, "owner", ev->owner, "currency",
                         ev->currency);
    case ACC_EV_FUNDS_DEPOSITED:
    case ACC_EV_FUNDS_WITHDRAWN:
        return json_pack("{ss sI sI}", "account_id", id, "amount", (json_int_t)ev->amount,
                         "balance", (json_int_t)ev->balance);
    case ACC_EV_ACCOUNT_CLOSED:
        return json_pack("{ss}", "account_id", id);
    case ACC_EV_FUNDS_DEBITED:
        return json_pack("{ss ss ss sI ss sI}", "account_id", id, "transfer_id", ev->transfer_id,
                         "to_account", ev->other_account, "amount", (json_int_t)ev->amount,
                         "currency", ev->currency, "balance", (json_int_t)ev->balance);
    case ACC_EV_DEBIT_REJECTED:
        return json_pack("{ss ss sI ss}", "account_id", id, "transfer_id", ev->transfer_id,
                         "amount", (json_int_t)ev->amount, "reason", ev->reason);
    case ACC_EV_FUNDS_CREDITED:
        return json_pack("{ss ss ss sI sI}", "account_id", id, "transfer_id", ev->transfer_id,
                         "from_account", ev->other_account, "amount", (json_int_t)ev->amount,
                         "balance", (json_int_t)ev->balance);
    case ACC_EV_CREDIT_REJECTED:
        return json_pack("{ss ss ss sI ss}", "account_id", id, "transfer_id", ev->transfer_id,
                         "from_account", ev->other_account, "amount", (json_int_t)ev->amount,
                         "reason", ev->reason);
    case ACC_EV_DEBIT_REVERSED:
        return json_pack("{ss ss sI ss sI}", "account_id", id, "transfer_id", ev->transfer_id,
                         "amount", (json_int_t)ev->amount, "reason", ev->reason, "balance",
                         (json_int_t)ev->balance);
    case ACC_EV_COMMAND_REJECTED:
        return json_pack("{ss ss ss ss}", "command_id", ev->command_id, "command_type",
                         ev->command_type, "account_id", id, "reason", ev->reason);
    default:
        return NULL;
    }
}

/* Per-batch working set: the inputs' views and the accounts they touch, in the batch's arena. */
typedef struct batch {
    accounts_input_t *ins;
    account_t *accounts;
    unsigned char *dirty; /* 0 untouched, 1 existed and changed, 2 created */
    es_idset_t accs;      /* the accounts the batch touches: slot i is accounts[i] */
    /* the transfers the batch debits or fences, and whether each is fenced */
    es_idset_t transfers;
    int load_accounts, load_fences; /* the loads' places in the batch's reads */
    unsigned char *fenced;
    const char **new_fences, **new_fence_sagas;
    size_t nnew_fences;
} batch_t;

/* The transfers the batch debits or fences (their fences are loaded with the accounts), with
 * room for their flags. Returns 0 or -1 (out of memory). */
static int collect_transfers(batch_t *b, es_arena_t *arena, size_t cnt)
{
    if (es_idset_reset(&b->transfers, arena, cnt) != 0) {
        return -1;
    }
    for (size_t i = 0; i < cnt; i++) {
        const accounts_input_t *in = &b->ins[i];
        if ((in->kind == ACC_IN_TRANSFER_REQUESTED || in->kind == ACC_IN_SAGA_TIMED_OUT) &&
            in->transfer_id[0] && es_idset_add(&b->transfers, in->transfer_id) != 0) {
            return -1;
        }
    }
    b->fenced = es_arena_calloc(arena, b->transfers.n + 1, 1);
    b->new_fences = es_arena_calloc(arena, b->transfers.n + 1, sizeof(*b->new_fences));
    b->new_fence_sagas = es_arena_calloc(arena, b->transfers.n + 1, sizeof(*b->new_fence_sagas));
    b->nnew_fences = 0;
    return b->fenced && b->new_fences && b->new_fence_sagas ? 0 : -1;
}

/* SagaTimedOut of a transfer saga: fence the transfer, so that its debit, if it has not
 * happened yet, never does. Nothing is published: the fenced TransferRequested answers. */
static void fence(batch_t *b, const es_input_t *rec, const accounts_input_t *in)
{
    size_t t = in->transfer_id[0] ? es_idset_find(&b->transfers, in->transfer_id) : (size_t)-1;
    if (t == (size_t)-1 || b->fenced[t]) {
        return;
    }
    b->fenced[t] = 1;
    b->new_fences[b->nnew_fences] = in->transfer_id;
    b->new_fence_sagas[b->nnew_fences++] = rec->env.correlation_id;
}

/* Whether every input of a loop-back round concerns an account the batch holds already. */
static int round_has_accounts(const batch_t *b, size_t cnt)
{
    for (size_t i = 0; i < cnt; i++) {
        if (b->ins[i].kind == ACC_IN_SAGA_TIMED_OUT ||
            es_idset_find(&b->accs, accounts_input_account(&b->ins[i])) == (size_t)-1) {
            return 0;
        }
    }
    return 1;
}

/* The batch's reads (see es_service_def_t.load): the accounts and the fences it needs, with
 * the batch's first round trip. A debit's destination comes with them: the credit that its
 * FundsDebited loops back to (loop_back) then finds the account in memory, and that round
 * reads nothing. A loop-back round whose accounts the batch holds keeps them as the earlier
 * rounds left them (their writes are queued) and reads nothing; any other reads them all
 * again, after those writes. */
static int load(es_service_t *svc, es_pg_pipeline_t *pl, const es_input_t *inputs, size_t cnt,
                void *opaque, char *errstr, size_t errstr_size)
{
    batch_t *b = opaque;
    es_arena_t *arena = es_service_arena(svc);
    accounts_input_t *ins = es_arena_calloc(arena, cnt, sizeof(*ins));
    if (!ins) {
        goto oom;
    }
    b->ins = ins;
    for (size_t i = 0; i < cnt; i++) {
        input_from_json(&inputs[i], &b->ins[i]);
    }
    b->load_accounts = b->load_fences = -1;
    if (es_service_round(svc) > 0 && round_has_accounts(b, cnt)) {
        b->transfers.n = 0; /* no debit or fence in a loop-back round */
        return 0;
    }
    size_t cap = 2 * cnt; /* an account per input, and a debit's destination */
    b->accounts = es_arena_calloc(arena, cap, sizeof(*b->accounts));
    b->dirty = es_arena_calloc(arena, cap, 1);
    if (!b->accounts || !b->dirty || es_idset_reset(&b->accs, arena, cap) != 0) {
        goto oom;
    }
    for (size_t i = 0; i < cnt; i++) {
        const accounts_input_t *in = &b->ins[i];
        if ((in->kind != ACC_IN_SAGA_TIMED_OUT && /* concerns a transfer, not an account */
             es_idset_add(&b->accs, accounts_input_account(in)) != 0) ||
            (in->kind == ACC_IN_TRANSFER_REQUESTED && in->to_account[0] &&
             es_idset_add(&b->accs, in->to_account) != 0)) {
            goto oom;
        }
    }
    if (collect_transfers(b, arena, cnt) != 0) {
        goto oom;
    }
    b->load_accounts = accounts_store_load_queue(pl, b->accs.ids, b->accs.n);
    b->load_fences = accounts_store_load_fences_queue(pl, b->transfers.ids, b->transfers.n);
    if (b->load_accounts != -1 && b->load_fences != -1) {
        return 0;
    }
oom:
    snprintf(errstr, errstr_size, "out of memory for a batch of %zu", cnt);
    return -1;
}

static int handle(es_service_t *svc, es_input_t *inputs, size_t cnt, void *opaque, char *errstr,
                  size_t errstr_size)
{
    batch_t *b = opaque;
    es_pg_pipeline_t *reads = es_service_reads(svc);
    if (b->load_accounts >= 0) { /* else the accounts are as the last round left them */
        accounts_store_load_apply(es_pg_pipeline_result(reads, b->load_accounts), b->accs.ids,
                                  b->accs.n, b->accounts);
        accounts_store_load_fences_apply(es_pg_pipeline_result(reads, b->load_fences),
                                         b->transfers.ids, b->transfers.n, b->fenced);
    }
    /* the new inputs only: duplicates were dropped after load() saw them */
    for (size_t i = 0; i < cnt; i++) {
        input_from_json(&inputs[i], &b->ins[i]);
    }
    for (size_t i = 0; i < cnt; i++) {
        if (b->ins[i].kind == ACC_IN_SAGA_TIMED_OUT) {
            fence(b, &inputs[i], &b->ins[i]);
            continue;
        }
        if (b->ins[i].kind == ACC_IN_TRANSFER_REQUESTED) {
            size_t t = es_idset_find(&b->transfers, b->ins[i].transfer_id);
            b->ins[i].timed_out = t != (size_t)-1 && b->fenced[t];
        }
        size_t a = es_idset_find(&b->accs, accounts_input_account(&b->ins[i]));
        account_t *acc = &b->accounts[a];
        int existed = acc->status != ACCOUNT_NONE;
        const char *invalid = accounts_input_invalid(acc, &b->ins[i]);
        if (invalid) {
            es_service_dead_letter(svc, &inputs[i], invalid);
            continue;
        }
        accounts_event_t ev;
        accounts_decide(acc, &b->ins[i], &ev);
        accounts_evolve(acc, &ev);
        if (acc->status != ACCOUNT_NONE && !b->dirty[a]) {
            b->dirty[a] = existed ? 1 : 2;
        }
        if (es_service_emit(svc, &inputs[i], 0, accounts_event_type(ev.kind), ev.account_id,
                            acc->version, event_to_json(&ev), errstr, errstr_size) != 0) {
            return -1;
        }
    }
    if (accounts_store_save(es_service_pipeline(svc), b->accounts, b->dirty, b->accs.n) != 0 ||
        accounts_store_save_fences(es_service_pipeline(svc), b->new_fences, b->new_fence_sagas,
                                   b->nnew_fences) != 0) {
        snprintf(errstr, errstr_size, "out of memory queueing account writes");
        return -1;
    }
    memset(b->dirty, 0, b->accs.n); /* queued: a later round writes only what it changes */
    b->nnew_fences = 0;
    return 0;
}

int main(int argc, char **argv)
{
    batch_t batch;
    memset(&batch, 0, sizeof(batch));
    es_idset_init(&batch.accs);
    es_idset_init(&batch.transfers);
    es_service_def_t def = {.name = "accounts",
                            .schema = "accounts",
                            .dlq_topic = "accounts.dlq",
                            .topics = topics,
                            .ddl = accounts_store_ddl,
                            .wants = wants,
                            .load = load,
                            .handle = handle,
                            .opaque = &batch,
                            /* its FundsDebited and CreditRejected are handled at once */
                            .loop_back = 1};
    int rc = es_service_main(argc, argv, &def,
                             "The accounts service: opens, credits, debits and closes accounts, "
                             "and takes\nthe account steps of the transfer saga.");
    es_idset_fini(&batch.accs);
    es_idset_fini(&batch.transfers);
    return rc;
}
