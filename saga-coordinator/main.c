/*
 * main.c: es-sagas, the saga coordinator's wiring (docs/SAGAS.md). It reads every record that
 * is a step of an order or a transfer saga (commands that start them, every context's events),
 * folds each into its saga with the pure rules of domain.c, and keeps the sagas, their steps
 * and the metrics' counters in schema "sagas". Its timer (lib/service.h's tick) publishes
 * SagaTimedOut for the pending sagas whose deadline passed; the participants decide what to do
 * about it. Batching, dedup, outbox and positions: lib/service.c.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "domain.h"
#include "ids.h"
#include "log.h"
#include "service.h"
#include "store.h"
#include "str.h"
#include "strmap.h"
#include "json_get.h"

#define DEFAULT_DEADLINE_MS 30000
#define TIMEOUTS_PER_TICK 100 /* a mass of due sagas fires over several ticks */
#define FORGET_PER_TICK 1000  /* sagas past their retention deleted per tick, at most */

static const char *const topics[] = {"orders.commands", "transfers.commands", "orders.events",
                                     "catalog.events",  "payments.events",    "transfers.events",
                                     "accounts.events", "sagas.events",       NULL};

typedef struct coordinator {
    int64_t deadlines_ms[SAGA_T__COUNT];
    int64_t retention_ms; /* 0: ended sagas are kept for ever */
    int64_t forgotten;    /* since the last log line */
    int64_t forgotten_logged_us;
    es_idset_t set;   /* the batch's sagas */
    int load_idx;     /* their load's place in the batch's reads */
    es_buf_t details; /* the batch's step summaries, NUL-separated */
    saga_t timed_out[TIMEOUTS_PER_TICK];
} coordinator_t;

static int wants(const char *type)
{
    return saga_follows(type);
}

static void step_from_input(const es_input_t *in, saga_step_t *st)
{
    const json_t *p = in->payload;
    memset(st, 0, sizeof(*st));
    es_str_copy(st->type, sizeof(st->type), in->env.type);
    es_str_copy(st->event_id, sizeof(st->event_id), in->env.event_id);
    es_str_copy(st->correlation_id, sizeof(st->correlation_id), in->env.correlation_id);
    es_str_copy(st->causation_id, sizeof(st->causation_id), in->env.causation_id);
    es_str_copy(st->traceparent, sizeof(st->traceparent), in->env.traceparent);
    st->occurred_ms = in->env.occurred_at;
    es_str_copy(st->order_id, sizeof(st->order_id), es_json_str(p, "order_id"));
    es_str_copy(st->transfer_id, sizeof(st->transfer_id), es_json_str(p, "transfer_id"));
    es_str_copy(st->command_type, sizeof(st->command_type), es_json_str(p, "command_type"));
    es_str_copy(st->reason, sizeof(st->reason), es_json_str(p, "reason"));
}

/* Who published the record: its es-producer header; without one (records from before the
 * header existed), the context of an events topic, or the client for a command it started. */
static const char *producer_of(const es_input_t *in, char *buf, size_t size)
{
    const rd_kafka_message_t *rkm = in->raw ? in->raw->rkm : NULL;
    rd_kafka_headers_t *hdrs = NULL;
    const void *val;
    size_t len;
    if (rkm && rd_kafka_message_headers(rkm, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        rd_kafka_header_get_last(hdrs, "es-producer", &val, &len) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        val && len > 0 && len < size) {
        memcpy(buf, val, len);
        buf[len] = '\0';
        return buf;
    }
    const char *dot = strchr(in->topic, '.');
    if (dot && !strcmp(dot, ".events") && (size_t)(dot - in->topic) < size) {
        memcpy(buf, in->topic, (size_t)(dot - in->topic));
        buf[dot - in->topic] = '\0';
        return buf;
    }
    return in->env.causation_id[0] ? "unknown" : "client";
}

/* A short summary of the record for people reading the timeline, appended to `b` with its
 * NUL; returns its offset. */
static size_t detail_of(const es_input_t *in, es_buf_t *b)
{
    const json_t *p = in->payload;
    size_t at = b->len;
    const char *sep = "";
    const char *text_fields[] = {"previous_status", "reason", "last_step", NULL};
    for (size_t k = 0; text_fields[k]; k++) {
        const char *v = es_json_str(p, text_fields[k]);
        if (v[0]) {
            es_buf_printf(b, "%s%s %s", sep, text_fields[k], v);
            sep = ", ";
        }
    }
    const json_t *total = json_object_get(p, "total");
    const json_t *amount = json_object_get(p, "amount");
    if (json_is_integer(total)) {
        es_buf_printf(b, "%stotal %" JSON_INTEGER_FORMAT, sep, json_integer_value(total));
        sep = ", ";
    } else if (json_is_integer(amount)) {
        es_buf_printf(b, "%samount %" JSON_INTEGER_FORMAT, sep, json_integer_value(amount));
        sep = ", ";
    }
    const char *from = es_json_str(p, "from_account"), *to = es_json_str(p, "to_account");
    if (from[0] && to[0]) {
        es_buf_printf(b, "%s%s -> %s", sep, from, to);
        sep = ", ";
    }
    const json_t *lines = json_object_get(p, "lines");
    const json_t *items = json_object_get(p, "items");
    if (json_is_array(lines) || json_is_array(items)) {
        size_t n = json_array_size(json_is_array(lines) ? lines : items);
        es_buf_printf(b, "%s%zu line%s", sep, n, n == 1 ? "" : "s");
        sep = ", ";
    }
    const char *tr = es_json_str(p, "transfer_id"), *ord = es_json_str(p, "order_id");
    if (tr[0] && ord[0]) {
        es_buf_printf(b, "%stransfer %s", sep, tr);
    }
    es_buf_append(b, "", 1);
    return at;
}

/* The batch's reads (see es_service_def_t.load): the sagas its steps belong to. */
static int load(es_service_t *svc, es_pg_pipeline_t *pl, const es_input_t *inputs, size_t cnt,
                void *opaque, char *errstr, size_t errstr_size)
{
    coordinator_t *co = opaque;
    if (es_idset_reset(&co->set, es_service_arena(svc), cnt) != 0) {
        goto oom;
    }
    for (size_t i = 0; i < cnt; i++) {
        saga_step_t st;
        step_from_input(&inputs[i], &st);
        if (saga_step_counts(&st) && es_id_valid(st.correlation_id) &&
            es_idset_add(&co->set, st.correlation_id) != 0) {
            goto oom;
        }
    }
    co->load_idx = saga_store_load_queue(pl, co->set.ids, co->set.n);
    if (co->load_idx != -1) {
        return 0;
    }
oom:
    snprintf(errstr, errstr_size, "out of memory for a batch of %zu", cnt);
    return -1;
}

static int handle(es_service_t *svc, es_input_t *inputs, size_t cnt, void *opaque, char *errstr,
                  size_t errstr_size)
{
    coordinator_t *co = opaque;
    es_arena_t *arena = es_service_arena(svc);
    saga_step_t *steps = es_arena_calloc(arena, cnt, sizeof(*steps));
    saga_step_row_t *rows = es_arena_calloc(arena, cnt, sizeof(*rows));
    size_t *detail_at = es_arena_calloc(arena, cnt, sizeof(*detail_at));
    char(*producers)[64] = es_arena_calloc(arena, cnt, sizeof(*producers));
    size_t n = co->set.n;
    saga_t *sagas = es_arena_calloc(arena, n ? n : 1, sizeof(*sagas));
    unsigned char *dirty = es_arena_calloc(arena, n ? n : 1, 1);
    if (!steps || !rows || !detail_at || !producers || !sagas || !dirty) {
        snprintf(errstr, errstr_size, "out of memory for a batch of %zu", cnt);
        return -1;
    }
    saga_store_load_apply(es_pg_pipeline_result(es_service_reads(svc), co->load_idx), co->set.ids,
                          n, sagas);
    es_buf_reset(&co->details);
    for (size_t i = 0; i < cnt; i++) {
        step_from_input(&inputs[i], &steps[i]);
        if (!saga_step_counts(&steps[i])) {
            steps[i].correlation_id[0] = '\0'; /* not a step of any saga: skipped below */
            continue;
        }
        if (!es_id_valid(steps[i].correlation_id)) {
            es_service_dead_letter(svc, &inputs[i], "envelope correlation_id is not an id");
            steps[i].correlation_id[0] = '\0';
            continue;
        }
        detail_at[i] = detail_of(&inputs[i], &co->details);
    }
    saga_tally_t tally[SAGA_T__COUNT];
    memset(tally, 0, sizeof(tally));
    size_t nrows = 0;
    for (size_t i = 0; i < cnt; i++) {
        size_t slot = steps[i].correlation_id[0] ? es_idset_find(&co->set, steps[i].correlation_id)
                                                 : (size_t)-1;
        if (slot == (size_t)-1) {
            continue; /* not a saga's step, or dead-lettered above */
        }
        saga_change_t chg;
        saga_evolve(&sagas[slot], &steps[i], co->deadlines_ms, &chg);
        saga_tally_add(tally, &chg);
        dirty[slot] = 1;
        saga_step_row_t *r = &rows[nrows++];
        r->step = &steps[i];
        r->service = producer_of(&inputs[i], producers[i], sizeof(producers[i]));
        r->aggregate_id = inputs[i].env.aggregate_id;
        r->topic = inputs[i].topic;
        r->partition = inputs[i].partition;
        r->offset = inputs[i].offset;
        r->detail = (const char *)co->details.data + detail_at[i];
    }
    es_pg_pipeline_t *pl = es_service_pipeline(svc);
    if (saga_store_add_steps(pl, rows, nrows) != 0 || saga_store_save(pl, sagas, dirty, n) != 0 ||
        saga_store_add_tally(pl, tally) != 0) {
        snprintf(errstr, errstr_size, "out of memory queueing the batch's writes");
        return -1;
    }
    return 0;
}

/* The timer: every pending saga whose deadline passed, and whose steps up to the deadline the
 * whole group has read (es_service_caught_up(): another instance may not have read its
 * partitions yet), is marked TIMED_OUT and announced, in one transaction (the runtime commits
 * the outbox with the update). */
static int tick(es_service_t *svc, PGconn *pg, void *opaque, char *errstr, size_t errstr_size)
{
    coordinator_t *co = opaque;
    size_t n;
    if (saga_store_time_out(pg, es_service_caught_up(svc), TIMEOUTS_PER_TICK, co->timed_out, &n,
                            errstr, errstr_size) != 0) {
        return -1;
    }
    saga_tally_t tally[SAGA_T__COUNT];
    memset(tally, 0, sizeof(tally));
    for (size_t i = 0; i < n; i++) {
        const saga_t *s = &co->timed_out[i];
        /* the timeout's cause is the saga's latest step: its id derives from it, it carries
         * the saga's correlation id and joins its trace */
        es_input_t cause;
        memset(&cause, 0, sizeof(cause));
        es_str_copy(cause.env.event_id, sizeof(cause.env.event_id),
                    es_id_valid(s->last_event_id) ? s->last_event_id : s->id);
        es_str_copy(cause.env.correlation_id, sizeof(cause.env.correlation_id), s->id);
        es_str_copy(cause.env.traceparent, sizeof(cause.env.traceparent), s->traceparent);
        json_t *payload =
            json_pack("{ss ss ss ss sI}", "saga_id", s->id, "saga_type", saga_type_name(s->type),
                      "subject", s->subject, "last_step", s->last_step, "deadline_ms",
                      (json_int_t)co->deadlines_ms[s->type]);
        if (es_service_emit(svc, &cause, 0, "SagaTimedOut", s->id, s->step_count + 1, payload,
                            errstr, errstr_size) != 0) {
            return -1;
        }
        tally[s->type].timed_out++;
    }
    if (n > 0 && saga_store_add_tally(es_service_pipeline(svc), tally) != 0) {
        snprintf(errstr, errstr_size, "out of memory queueing the tick's writes");
        return -1;
    }
    /* retention: ended sagas older than it go, with their steps */
    if (co->retention_ms > 0) {
        int forgotten =
            saga_store_forget(pg, co->retention_ms, FORGET_PER_TICK, errstr, errstr_size);
        if (forgotten < 0) {
            return -1;
        }
        co->forgotten += forgotten;
        if (co->forgotten > 0 && es_mono_us() - co->forgotten_logged_us >= 60000000) {
            es_log_info("ended sagas past their retention deleted", "sagas=%lld retention_s=%lld",
                        (long long)co->forgotten, (long long)(co->retention_ms / 1000));
            co->forgotten = 0;
            co->forgotten_logged_us = es_mono_us();
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    static coordinator_t co;
    for (int t = 0; t < SAGA_T__COUNT; t++) {
        co.deadlines_ms[t] = DEFAULT_DEADLINE_MS;
    }
    char errstr[256];
    const char *spec = getenv("ES_SAGA_DEADLINES");
    if (es_service_take_flag(&argc, argv, "--deadlines", &spec) != 0) {
        fprintf(stderr, "es-sagas: option --deadlines needs a value, e.g. order=30s\n");
        return 2;
    }
    if (spec && saga_deadlines_parse(spec, co.deadlines_ms, errstr, sizeof(errstr)) != 0) {
        fprintf(stderr, "es-sagas: %s\n", errstr);
        return 2;
    }
    co.retention_ms = SAGA_RETENTION_DEFAULT_MS;
    const char *retention = getenv("ES_SAGA_RETENTION");
    if (es_service_take_flag(&argc, argv, "--retention", &retention) != 0) {
        fprintf(stderr, "es-sagas: option --retention needs a value, e.g. 30d or forever\n");
        return 2;
    }
    if (retention && *retention &&
        saga_retention_parse(retention, &co.retention_ms, errstr, sizeof(errstr)) != 0) {
        fprintf(stderr, "es-sagas: %s\n", errstr);
        return 2;
    }
    es_idset_init(&co.set);
    es_buf_init(&co.details);
    es_service_def_t def = {.name = "sagas",
                            .schema = "sagas",
                            .dlq_topic = "sagas.dlq",
                            .topics = topics,
                            .ddl = saga_store_ddl,
                            .wants = wants,
                            .load = load,
                            .handle = handle,
                            .tick = tick,
                            .opaque = &co,
                            /* a watcher: the sagas it follows never wait on it */
                            .background = 1};
    int rc = es_service_main(
        argc, argv, &def,
        "The saga coordinator: follows every order and transfer saga by its correlation id,\n"
        "keeps each one's status and steps (GET /sagas/{id}), and publishes SagaTimedOut\n"
        "when one is still pending at its deadline (docs/SAGAS.md).\n\n"
        "      --deadlines LIST  per saga type, e.g. order=30s,transfer=10s (units ms, s, m, h;\n"
        "                        ES_SAGA_DEADLINES; default 30s each)\n"
        "      --retention D     how long an ended saga and its steps are kept, e.g. 30d, 12h,\n"
        "                        or forever (ES_SAGA_RETENTION; default 30d); the log keeps\n"
        "                        every record: esctl replay --correlation ID");
    es_buf_fini(&co.details);
    es_idset_fini(&co.set);
    return rc;
}
