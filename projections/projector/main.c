/*
 * main.c: the ledger projector: keeps projections.accounts, entries, transfers and commands
 * up to date from accounts.events and transfers.events, exactly once (the shared runtime's
 * dedup, positions and effects commit together). With --rebuild it recomputes them from the
 * complete log instead (lib/projection.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domain.h"
#include "log.h"
#include "projection.h"
#include "store.h"
#include "strmap.h"

static const char *const topics[] = {"accounts.events", "transfers.events", NULL};

/* The advisory lock every live batch takes shared and a rebuild's swap takes exclusively. */
#define PROJECTOR_SWAP_LOCK 74020

/* Per-batch working set, in the batch's arena: load() fills it, handle() uses it. */
typedef struct batch {
    account_view_t *accounts;
    transfer_view_t *transfers;
    unsigned char *adirty, *tdirty;
    es_idset_t aset, tset; /* the accounts and transfers the batch touches */
    int aload, tload;      /* their loads' places in the batch's reads */
} batch_t;

static int wants(const char *type)
{
    return ledger_event_target(type) != 0;
}

/* The runtime's load hook (service.h): every account and transfer the batch touches, queued
 * to be loaded with the batch's first round trip. */
static int load(es_service_t *svc, es_pg_pipeline_t *pl, const es_input_t *inputs, size_t cnt,
                void *opaque, char *errstr, size_t errstr_size)
{
    batch_t *b = opaque;
    if (!b) {
        snprintf(errstr, errstr_size, "out of memory for the batch's working set");
        return -1;
    }
    es_arena_t *arena = es_service_arena(svc);
    b->accounts = es_arena_calloc(arena, cnt, sizeof(*b->accounts));
    b->transfers = es_arena_calloc(arena, cnt, sizeof(*b->transfers));
    b->adirty = es_arena_calloc(arena, cnt, 1);
    b->tdirty = es_arena_calloc(arena, cnt, 1);
    if (!b->accounts || !b->transfers || !b->adirty || !b->tdirty ||
        es_idset_reset(&b->aset, arena, cnt) != 0 || es_idset_reset(&b->tset, arena, cnt) != 0) {
        goto oom;
    }
    for (size_t i = 0; i < cnt; i++) {
        char target = ledger_event_target(inputs[i].env.type);
        int rc = 0;
        if (target == 'a') {
            rc = es_idset_add(&b->aset, inputs[i].env.aggregate_id);
        } else if (target == 't') {
            rc = es_idset_add(&b->tset, inputs[i].env.aggregate_id);
        }
        if (rc != 0) {
            goto oom;
        }
    }
    b->aload = projector_load_accounts_queue(pl, b->aset.ids, b->aset.n);
    b->tload = projector_load_transfers_queue(pl, b->tset.ids, b->tset.n);
    if (b->aload == -1 || b->tload == -1) {
        goto oom;
    }
    return 0;
oom:
    snprintf(errstr, errstr_size, "out of memory for a batch of %zu", cnt);
    return -1;
}

/* The runtime's handler: project every input onto the views load() had loaded, in log order,
 * and queue the writes. The views are found by id, never by an input's position in load(). */
static int handle(es_service_t *svc, es_input_t *inputs, size_t cnt, void *opaque, char *errstr,
                  size_t errstr_size)
{
    batch_t *b = opaque;
    es_arena_t *arena = es_service_arena(svc);
    entry_view_t *entries = es_arena_calloc(arena, cnt, sizeof(*entries));
    command_view_t *commands = es_arena_calloc(arena, cnt, sizeof(*commands));
    if (!entries || !commands) {
        snprintf(errstr, errstr_size, "out of memory for a batch of %zu", cnt);
        return -1;
    }
    es_pg_pipeline_t *reads = es_service_reads(svc);
    projector_load_accounts_apply(es_pg_pipeline_result(reads, b->aload), b->aset.ids, b->aset.n,
                                  b->accounts);
    projector_load_transfers_apply(es_pg_pipeline_result(reads, b->tload), b->tset.ids, b->tset.n,
                                   b->transfers);
    size_t ne = 0, nc = 0;
    for (size_t i = 0; i < cnt; i++) {
        const es_envelope_t *env = &inputs[i].env;
        ledger_event_t ev = {.type = env->type,
                             .event_id = env->event_id,
                             .causation_id = env->causation_id,
                             .aggregate_id = env->aggregate_id,
                             .version = env->aggregate_version,
                             .occurred_at = env->occurred_at,
                             .payload = inputs[i].payload};
        size_t ai = es_idset_find(&b->aset, env->aggregate_id);
        size_t ti = es_idset_find(&b->tset, env->aggregate_id);
        char target = ledger_event_target(env->type);
        account_view_t *acc = target == 'a' && ai != (size_t)-1 ? &b->accounts[ai] : NULL;
        transfer_view_t *tr = target == 't' && ti != (size_t)-1 ? &b->transfers[ti] : NULL;
        ledger_effect_t eff;
        ledger_project(&ev, acc, tr, &eff);
        if (eff.account_changed) {
            b->adirty[ai] = 1;
        }
        if (eff.transfer_changed) {
            b->tdirty[ti] = 1;
        }
        if (eff.has_entry) {
            entries[ne++] = eff.entry;
        }
        if (eff.has_command) {
            commands[nc++] = eff.command;
        }
    }
    es_pg_pipeline_t *pl = es_service_pipeline(svc);
    if (projector_save_accounts(pl, b->accounts, b->adirty, b->aset.n) != 0 ||
        projector_save_transfers(pl, b->transfers, b->tdirty, b->tset.n) != 0 ||
        projector_insert_entries(pl, entries, ne) != 0 ||
        projector_insert_commands(pl, commands, nc) != 0) {
        snprintf(errstr, errstr_size, "out of memory queueing projection writes");
        return -1;
    }
    return 0;
}

/* Fill the ledger projection's own part of `def` (lib/projection.c fills in what every
 * projection shares). */
static void projector_def_init(es_service_def_t *def)
{
    batch_t *b = calloc(1, sizeof(*b));
    if (b) {
        es_idset_init(&b->aset);
        es_idset_init(&b->tset);
    }
    def->name = "projector";
    def->ddl = projector_store_ddl;
    def->wants = wants;
    def->load = load;
    def->handle = handle;
    def->opaque = b;
}

static void projector_def_fini(es_service_def_t *def)
{
    batch_t *b = def->opaque;
    if (!b) {
        return;
    }
    es_idset_fini(&b->aset);
    es_idset_fini(&b->tset);
    free(b);
    def->opaque = NULL;
}

static const es_projection_t ledger = {
    .name = "ledger",
    .program = "es-projector",
    .schema = "projections",
    .topics = topics,
    .swap_lock = PROJECTOR_SWAP_LOCK,
    .def_init = projector_def_init,
    .def_fini = projector_def_fini,
    .about = "The ledger projector: keeps the read models (accounts, ledger entries, transfers,\n"
             "command outcomes) in PostgreSQL schema \"projections\" from the event log.\n"
             "  --rebuild ledger    recompute them from the complete log and swap them in"};

int main(int argc, char **argv)
{
    return es_projection_main(argc, argv, &ledger);
}
