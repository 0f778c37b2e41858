/*
 * main.c: the users service's wiring. It consumes users.commands (RegisterUser, ChangeEmail,
 * DeactivateUser), loads the batch's users (locked) and the claims of every email the batch
 * looks at (both with the batch's first round trip), runs each command in log order through the
 * pure rules in domain.c against the user and the claims as the batch has left them so far, emits
 * the resulting event, and writes the users and the claims' net changes. Batching, dedup, outbox
 * and positions: lib/service.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domain.h"
#include "service.h"
#include "store.h"
#include "str.h"
#include "strmap.h"
#include "json_get.h"

static const char *const topics[] = {"users.commands", NULL};

static int wants(const char *type)
{
    return users_input_kind(type) >= 0;
}

/* Map a decoded command to the rules' view of it; the strings are borrowed from the payload.
 * Returns 0, or -1 when the record is not a users command. */
static int input_from_json(const es_input_t *rec, users_input_t *in)
{
    const json_t *p = rec->payload;
    memset(in, 0, sizeof(*in));
    int kind = users_input_kind(rec->env.type);
    if (kind < 0) {
        return -1;
    }
    in->kind = (users_input_kind_t)kind;
    es_str_copy(in->command_id, sizeof(in->command_id), rec->env.event_id);
    in->user_id = es_json_str(p, "user_id");
    in->email = es_json_str(p, "email");
    in->name = es_json_str(p, "name");
    return 0;
}

/* The event's payload (a new reference), or NULL when it cannot be built. */
static json_t *event_to_json(const users_event_t *ev)
{
    const char *id = ev->user_id;
    switch (ev->kind) {
    case USR_EV_USER_REGISTERED:
        return json_pack("{ss ss ss}", "user_id", id, "email", ev->email, "name", ev->name);
    case USR_EV_EMAIL_CHANGED:
        return json_pack("{ss ss ss}", "user_id", id, "email", ev->email, "old_email",
                         ev->old_email);
    case USR_EV_USER_DEACTIVATED:
        return json_pack("{ss}", "user_id", id);
    case USR_EV_COMMAND_REJECTED:
        return json_pack("{ss ss ss ss}", "command_id", ev->command_id, "command_type",
                         ev->command_type, "user_id", id, "reason", ev->reason);
    default:
        return NULL;
    }
}

#define NO_SLOT ((size_t)-1) /* decided against no user (an invalid id) */
#define SKIPPED ((size_t)-2) /* dead-lettered, not decided */

/* Per-batch working set: the inputs' views, the users they touch and the email claims, in the
 * batch's arena (the maps keep their allocations between batches). */
typedef struct batch {
    users_input_t *ins;
    size_t *slot_of; /* input -> its user's slot, or NO_SLOT, or SKIPPED */
    user_t *users;
    unsigned char *dirty; /* 0 untouched, 1 existed and changed, 2 created */
    const char **ids;
    es_strmap_t index; /* user id -> its slot in users[] */
    users_claims_t claims;
    int load_users; /* the reads' places in the batch's first round trip (load) */
    int load_claims;
} batch_t;

/* The batch's reads (see es_service_def_t.load), with its first round trip: the users its
 * commands name, locked, then the claims of the emails they name and of those users' own. */
static int load(es_service_t *svc, es_pg_pipeline_t *pl, const es_input_t *inputs, size_t cnt,
                void *opaque, char *errstr, size_t errstr_size)
{
    batch_t *b = opaque;
    es_arena_t *arena = es_service_arena(svc);
    const char **ids = es_arena_calloc(arena, cnt ? cnt : 1, sizeof(*ids));
    const char **emails = es_arena_calloc(arena, cnt ? cnt : 1, sizeof(*emails));
    if (!ids || !emails) {
        goto oom;
    }
    es_strmap_clear(&b->index);
    size_t n = 0, m = 0;
    for (size_t i = 0; i < cnt; i++) {
        users_input_t in;
        if (input_from_json(&inputs[i], &in) != 0 || !users_id_valid(in.user_id)) {
            continue; /* handle() dead-letters or refuses it, against no user */
        }
        if (es_strmap_get(&b->index, in.user_id) == (size_t)-1) {
            if (es_strmap_put(&b->index, in.user_id, n) != 0) {
                goto oom;
            }
            ids[n++] = in.user_id;
        }
        char email[USR_EMAIL_MAX];
        if (in.kind != USR_IN_DEACTIVATE_USER &&
            users_email_normalize(in.email, email, sizeof(email))) {
            size_t size = strlen(email) + 1;
            char *copy = es_arena_calloc(arena, size, 1);
            if (!copy) {
                goto oom;
            }
            emails[m++] = memcpy(copy, email, size);
        }
    }
    b->load_users = users_store_load_queue(pl, ids, n);
    b->load_claims = users_store_load_claims_queue(pl, emails, m, ids, n);
    if (b->load_users != -1 && b->load_claims != -1) {
        return 0;
    }
oom:
    snprintf(errstr, errstr_size, "out of memory for a batch of %zu", cnt);
    return -1;
}

/* Read the inputs, then take the users they name and the claims of every email they mention
 * or the users hold from what load() read. Returns the number of users, or -1 with errstr. */
static long batch_load(es_service_t *svc, batch_t *b, es_input_t *inputs, size_t cnt, char *errstr,
                       size_t errstr_size)
{
    es_strmap_clear(&b->index);
    size_t n = 0;
    for (size_t i = 0; i < cnt; i++) {
        b->slot_of[i] = SKIPPED;
        if (input_from_json(&inputs[i], &b->ins[i]) != 0) {
            es_service_dead_letter(svc, &inputs[i], "not a users command");
            continue;
        }
        b->slot_of[i] = NO_SLOT;
        const char *id = b->ins[i].user_id;
        if (!users_id_valid(id)) {
            continue; /* refused with INVALID_ID, against no user */
        }
        size_t u = es_strmap_get(&b->index, id);
        if (u == (size_t)-1) {
            if (es_strmap_put(&b->index, id, n) != 0) {
                snprintf(errstr, errstr_size, "out of memory indexing a batch of %zu", cnt);
                return -1;
            }
            b->ids[n] = id;
            u = n++;
        }
        b->slot_of[i] = u;
    }
    const es_pg_pipeline_t *reads = es_service_reads(svc);
    users_store_load_apply(es_pg_pipeline_result(reads, b->load_users), b->ids, n, b->users);
    /* the claims: every valid email a command names, and every loaded user's own email (the
     * one an EmailChanged releases) */
    char email[USR_EMAIL_MAX];
    int rc = 0;
    for (size_t i = 0; i < cnt && rc == 0; i++) {
        if (b->slot_of[i] < SKIPPED && b->ins[i].kind != USR_IN_DEACTIVATE_USER &&
            users_email_normalize(b->ins[i].email, email, sizeof(email))) {
            rc = users_claims_track(&b->claims, email);
        }
    }
    for (size_t u = 0; u < n && rc == 0; u++) {
        if (b->users[u].status != USER_NONE && b->users[u].email[0]) {
            rc = users_claims_track(&b->claims, b->users[u].email);
        }
    }
    if (rc != 0) {
        snprintf(errstr, errstr_size, "out of memory tracking the emails of a batch of %zu", cnt);
        return -1;
    }
    if (users_store_load_claims_apply(es_pg_pipeline_result(reads, b->load_claims), &b->claims) !=
        0) {
        snprintf(errstr, errstr_size, "out of memory loading email claims");
        return -1;
    }
    return (long)n;
}

static int handle(es_service_t *svc, es_input_t *inputs, size_t cnt, void *opaque, char *errstr,
                  size_t errstr_size)
{
    batch_t *b = opaque;
    es_arena_t *arena = es_service_arena(svc);
    b->ins = es_arena_calloc(arena, cnt, sizeof(*b->ins));
    b->slot_of = es_arena_calloc(arena, cnt, sizeof(*b->slot_of));
    b->users = es_arena_calloc(arena, cnt, sizeof(*b->users));
    b->dirty = es_arena_calloc(arena, cnt, 1);
    b->ids = es_arena_calloc(arena, cnt, sizeof(*b->ids));
    /* at most one email named per command and one held per user */
    users_claim_t *slots = es_arena_calloc(arena, 2 * cnt, sizeof(*slots));
    if (!b->ins || !b->slot_of || !b->users || !b->dirty || !b->ids || !slots) {
        snprintf(errstr, errstr_size, "out of memory for a batch of %zu", cnt);
        return -1;
    }
    users_claims_reset(&b->claims, slots, 2 * cnt);
    long n = batch_load(svc, b, inputs, cnt, errstr, errstr_size);
    if (n < 0) {
        return -1;
    }
    for (size_t i = 0; i < cnt; i++) {
        size_t u = b->slot_of[i];
        if (u == SKIPPED) {
            continue;
        }
        user_t none;
        memset(&none, 0, sizeof(none));
        user_t *user = u == NO_SLOT ? &none : &b->users[u];
        int existed = user->status != USER_NONE;
        users_event_t ev;
        users_decide(user, &b->claims, &b->ins[i], &ev);
        json_t *payload = event_to_json(&ev);
        if (!payload) {
            es_service_dead_letter(svc, &inputs[i], "its event could not be built");
            continue;
        }
        users_evolve(user, &ev);
        if (users_claims_apply(&b->claims, &ev) != 0) {
            json_decref(payload);
            snprintf(errstr, errstr_size, "out of memory tracking email claims");
            return -1;
        }
        if (u != NO_SLOT && user->status != USER_NONE && !b->dirty[u]) {
            b->dirty[u] = existed ? 1 : 2;
        }
        if (es_service_emit(svc, &inputs[i], 0, users_event_type(ev.kind), ev.user_id,
                            user->version, payload, errstr, errstr_size) != 0) {
            return -1;
        }
    }
    es_pg_pipeline_t *pl = es_service_pipeline(svc);
    if (users_store_save(pl, b->users, b->dirty, (size_t)n) != 0 ||
        users_store_save_claims(pl, &b->claims) != 0) {
        snprintf(errstr, errstr_size, "out of memory queueing user writes");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    batch_t batch;
    memset(&batch, 0, sizeof(batch));
    es_strmap_init(&batch.index);
    users_claims_init(&batch.claims);
    es_service_def_t def = {.name = "users",
                            .schema = "users",
                            .dlq_topic = "users.dlq",
                            .topics = topics,
                            .ddl = users_store_ddl,
                            .wants = wants,
                            .load = load,
                            .handle = handle,
                            .opaque = &batch};
    int rc = es_service_main(argc, argv, &def,
                             "The users service: registers users, changes their emails and "
                             "deactivates them,\nkeeping every email unique across users.");
    users_claims_fini(&batch.claims);
    es_strmap_fini(&batch.index);
    return rc;
}
