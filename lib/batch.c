/*
 * batch.c: one batch as one PostgreSQL transaction, the unit of exactly-once effects (see
 * service.h): decoding the records (undecodable ones to the dead-letter topic), dropping
 * duplicates by event id, the handler's reads and writes, the emitted records as one outbox
 * row (outbox.h), and the positions. The loop around it is service.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caught_up.h"
#include "dedup.h"
#include "ids.h"
#include "json_mem.h"
#include "kafka.h"
#include "log.h"
#include "outbox.h"
#include "pg.h"
#include "service_int.h"

es_codec_t *es_service_codec(es_service_t *svc)
{
    return svc->codec;
}

void es_batch_inputs_clear(es_service_t *svc)
{
    for (size_t i = 0; i < svc->input_cnt; i++) {
        json_decref(svc->inputs[i].payload);
    }
    svc->input_cnt = 0;
}

/* ---- outbox rows ---------------------------------------------------------------------- */

/* Headers are stored as one bytea: repeated u16 name length, name, u16 value length, value. */
static void headers_put(es_buf_t *b, const char *name, const void *val, size_t len)
{
    size_t nlen = strlen(name);
    unsigned char n[2] = {(unsigned char)(nlen >> 8), (unsigned char)nlen};
    unsigned char v[2] = {(unsigned char)(len >> 8), (unsigned char)len};
    es_buf_append(b, n, 2);
    es_buf_append(b, name, nlen);
    es_buf_append(b, v, 2);
    es_buf_append(b, val, len);
}

static void outbox_reset(es_service_t *svc)
{
    es_buf_reset(&svc->ob_records);
    svc->ob_count = 0;
    svc->ob_failed = 0;
    svc->ob_idx = -1;
    svc->ob_seq = -1;
}

/* Add a record to the batch's outbox row. */
static void outbox_add(es_service_t *svc, const char *topic, const void *key, size_t key_len,
                       const void *value, size_t value_len, const void *headers, size_t headers_len)
{
    if (es_outbox_append(&svc->ob_records, topic, key, key_len, value, value_len, headers,
                         headers_len) != 0) {
        es_log_error("could not add a record to the outbox row", "topic=%s", topic);
        svc->ob_failed = 1;
        return;
    }
    svc->ob_count++;
}

/* ---- the loop-back (loop_back in service.h) ------------------------------------------------ */

#define LOOP_WRITES_MAX 32 /* queued writes that may travel with a round's reads */

/* The partition an event this round emits loops back to, or -1 when it does not: its topic is
 * one the service reads (with a known partition count), and its type one it wants. *topic is
 * set to the subscribed name (it outlives the batch). */
static int32_t loop_partition(const es_service_t *svc, const es_type_t *type, const char *key,
                              size_t key_len, const char **topic)
{
    if (!svc->looping || key_len == 0 ||
        (svc->def->wants && !svc->def->wants(es_type_name(type)))) {
        return -1;
    }
    const char *t = es_type_topic(type);
    for (size_t i = 0; i < MAX_TOPICS && svc->def->topics[i]; i++) {
        if (svc->topic_parts[i] > 0 && !strcmp(svc->def->topics[i], t)) {
            *topic = svc->def->topics[i];
            return es_kafka_key_partition(key, key_len, svc->topic_parts[i]);
        }
    }
    return -1;
}

/* Keep an emitted record (`value`, its encoding) as an input of the next round, decoded from
 * its bytes as a consumer would decode it. Returns 0, or -1 with errstr. */
static int loop_keep(es_service_t *svc, const char *topic, int32_t partition, const char *key,
                     size_t key_len, const es_buf_t *value, char *errstr, size_t errstr_size)
{
    if (svc->loop_cnt == svc->loop_cap) {
        size_t cap = svc->loop_cap ? svc->loop_cap * 2 : 64;
        es_input_t *n = realloc(svc->loop, cap * sizeof(*n));
        if (!n) {
            goto oom;
        }
        svc->loop = n;
        svc->loop_cap = cap;
    }
    es_raw_t *raw = es_arena_calloc(&svc->arena, 1, sizeof(*raw));
    char *k = es_arena_calloc(&svc->arena, key_len + 1, 1);
    unsigned char *v = es_arena_calloc(&svc->arena, value->len, 1);
    if (!raw || !k || !v) {
        goto oom;
    }
    memcpy(k, key, key_len);
    memcpy(v, value->data, value->len);
    *raw = (es_raw_t){.topic = topic,
                      .partition = partition,
                      .offset = -1,
                      .value = v,
                      .value_len = value->len,
                      .key = k,
                      .key_len = key_len};
    es_input_t *in = &svc->loop[svc->loop_cnt];
    memset(in, 0, sizeof(*in));
    int mem = es_json_mem_on();
    int rc = es_envelope_decode(svc->codec, v, value->len, &in->env, &in->type, &in->payload,
                                errstr, errstr_size);
    es_json_mem_off(mem);
    if (rc != 0) {
        return -1; /* it was encoded a moment ago: a bug */
    }
    raw->type_hdr = es_type_name(in->type);
    in->raw = raw;
    in->topic = topic;
    in->partition = partition;
    in->offset = -1;
    svc->loop_cnt++;
    return 0;
oom:
    snprintf(errstr, errstr_size, "out of memory keeping an event to handle at once");
    return -1;
}

void es_batch_loop_clear(es_service_t *svc)
{
    for (size_t i = 0; i < svc->loop_cnt; i++) {
        json_decref(svc->loop[i].payload);
    }
    svc->loop_cnt = 0;
}

/* ---- emitting ------------------------------------------------------------------------------ */

int es_service_emit(es_service_t *svc, const es_input_t *cause, uint32_t index,
                    const char *type_name, const char *aggregate_id, int64_t aggregate_version,
                    json_t *payload, char *errstr, size_t errstr_size)
{
    int rc = -1;
    const es_type_t *type = es_codec_type(svc->codec, type_name);
    if (!type) {
        snprintf(errstr, errstr_size, "cannot emit unknown type \"%s\"", type_name);
        goto out;
    }
    es_envelope_t env;
    es_envelope_caused_by(&env, &cause->env, svc->def->name, index, type_name, aggregate_id,
                          aggregate_version);
    es_buf_reset(&svc->scratch);
    if (es_envelope_encode(svc->codec, &env, type, payload, &svc->scratch, errstr, errstr_size) !=
        0) {
        goto out;
    }
    if (!svc->offline) {
        size_t key_len = strlen(aggregate_id);
        const char *loop_topic = NULL;
        int32_t part = loop_partition(svc, type, aggregate_id, key_len, &loop_topic);
        if (part >= 0 && es_outbox_pin(&svc->ob_records, part) != 0) {
            svc->ob_failed = 1;
        }
        /* no stored headers: the relay rebuilds them from the envelope in the value */
        outbox_add(svc, es_type_topic(type), aggregate_id, key_len, svc->scratch.data,
                   svc->scratch.len, NULL, 0);
        if (part >= 0 && loop_keep(svc, loop_topic, part, aggregate_id, key_len, &svc->scratch,
                                   errstr, errstr_size) != 0) {
            goto out;
        }
    }
    rc = 0;
out:
    json_decref(payload);
    return rc;
}

/* Queue a record for the dead-letter topic: original key, value and headers, plus the reason
 * and where it came from. */
static void dead_letter_raw(es_service_t *svc, const es_raw_t *raw, const char *reason)
{
    es_log_warn("record dead-lettered", "topic=%s partition=%d offset=%lld reason=\"%s\"",
                raw->topic, raw->partition, (long long)raw->offset, reason);
    if (svc->offline || !svc->def->dlq_topic) {
        return;
    }
    const rd_kafka_message_t *rkm = raw->rkm;
    es_buf_t *b = &svc->scratch;
    es_buf_reset(b);
    rd_kafka_headers_t *hdrs = NULL;
    if (rkm && rd_kafka_message_headers(rkm, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char *name;
        const void *val;
        size_t len;
        for (size_t i = 0; !rd_kafka_header_get_all(hdrs, i, &name, &val, &len); i++) {
            if (len < 65536 && strlen(name) < 65536) {
                headers_put(b, name, val ? val : "", val ? len : 0);
            }
        }
    }
    char num[32];
    headers_put(b, "es-dlq-reason", reason, strlen(reason));
    headers_put(b, "es-dlq-topic", raw->topic, strlen(raw->topic));
    snprintf(num, sizeof(num), "%d", raw->partition);
    headers_put(b, "es-dlq-partition", num, strlen(num));
    snprintf(num, sizeof(num), "%lld", (long long)raw->offset);
    headers_put(b, "es-dlq-offset", num, strlen(num));
    /* the key as it came, bytes and all (bytea: a key need not be valid UTF-8) */
    outbox_add(svc, svc->def->dlq_topic, raw->key, raw->key_len, raw->value ? raw->value : "",
               raw->value ? raw->value_len : 0, b->data ? b->data : (unsigned char *)"", b->len);
}

/* A dead letter that waits for its dedup mark (dead_resolve): one the batch's dedup does not
 * cover already. Its mark's id is derived from `parent`, what names the record for good: its
 * event id when it has one, else its topic, partition and offset. A service that writes no
 * dead letters (offline: a rebuild) only logs them. */
static void dead_defer(es_service_t *svc, const es_raw_t *raw, const char *reason,
                       const char *parent, int64_t at_ms)
{
    if (svc->offline || !svc->def->dlq_topic) {
        dead_letter_raw(svc, raw, reason);
        return;
    }
    if (svc->dead_cnt == svc->dead_cap) {
        size_t cap = svc->dead_cap ? svc->dead_cap * 2 : 16;
        dead_letter_t *d = realloc(svc->dead, cap * sizeof(*d));
        if (!d) {
            svc->ob_failed = 1; /* the batch fails and is tried again, whole */
            return;
        }
        svc->dead = d;
        svc->dead_cap = cap;
    }
    size_t len = strlen(reason);
    char *copy = es_arena_calloc(&svc->arena, len + 1, 1);
    if (!copy) {
        svc->ob_failed = 1;
        return;
    }
    memcpy(copy, reason, len);
    dead_letter_t *d = &svc->dead[svc->dead_cnt++];
    d->raw = raw;
    d->reason = copy;
    es_id_derive(d->id, parent, "dead-letter", 0);
    d->part = es_dedup_part(raw->topic, raw->partition);
    d->at_ms = at_ms;
}

/* A record that could not be decoded, deferred: it has no event id, so its place in the log
 * names it, and its mark takes the time Kafka gave it (0 when none). */
static void dead_defer_undecoded(es_service_t *svc, const es_raw_t *raw, const char *reason)
{
    char parent[512];
    snprintf(parent, sizeof(parent), "%s\037%d\037%lld", raw->topic, raw->partition,
             (long long)raw->offset);
    int64_t ts = raw->rkm ? rd_kafka_message_timestamp(raw->rkm, NULL) : 0;
    dead_defer(svc, raw, reason, parent, ts > 0 ? ts : 0);
}

int es_service_dead_letter(es_service_t *svc, const es_input_t *input, const char *reason)
{
    /* The record goes as it came: original key, value and headers. An input of a service that
     * dedups has its mark already: handled again, it does not reach the handler. An idempotent
     * service's handler sees copies, so its dead letters wait for marks of their own. */
    if (svc->def->idempotent && !svc->looping) {
        dead_defer(svc, input->raw, reason, input->env.event_id, input->env.occurred_at);
        return svc->ob_failed ? -1 : 0;
    }
    dead_letter_raw(svc, input->raw, reason);
    return 0;
}

/* ---- tables ---------------------------------------------------------------------------- */

int es_service_create_tables(const es_service_def_t *def, PGconn *pg, char *errstr,
                             size_t errstr_size)
{
    char sql[8192];
    int len = snprintf(
        sql, sizeof(sql),
        "CREATE SCHEMA IF NOT EXISTS %s;"
        "SET search_path TO %s;"
        /* one row per input handled: the dedup mark, written with the effects, with
         * its partition (part) and time, so the window can delete it (dedup.h). A copy
         * of an input has the same all three, so they make the key: in that order, a
         * batch's marks go to the right end of a few ranges of the index (one per
         * partition), where a key led by the random event id sent each to a page of its
         * own (a full-page image in the WAL after every checkpoint) and needed a second
         * index for the window's deletes. */
        "CREATE TABLE IF NOT EXISTS processed (event_id uuid NOT NULL, part bigint NOT "
        "NULL, at_ms bigint NOT NULL, PRIMARY KEY (part, at_ms, event_id));"
        /* the next offset to read per partition, stored with the effects, and the newest
         * time handled from it */
        "CREATE TABLE IF NOT EXISTS positions (topic text NOT NULL, partition int NOT "
        "NULL, next_offset bigint NOT NULL, high_watermark bigint NOT NULL DEFAULT 0, "
        "updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (topic, partition));"
        /* Positions are everybody's to read, as a consumer group's offsets are in Kafka
         * (esctl lag, the query service's /metrics); the schema's other tables stay its
         * owner's alone (scripts/db-roles.sql). Granted once: a restart writes nothing. */
        "DO $$ BEGIN IF NOT has_schema_privilege('public', current_schema(), 'USAGE') THEN "
        "EXECUTE format('GRANT USAGE ON SCHEMA %%I TO PUBLIC', current_schema()); END IF; "
        "IF NOT has_table_privilege('public', 'positions', 'SELECT') THEN GRANT SELECT ON "
        "positions TO PUBLIC; END IF; END $$;"
        /* Tables from before the window: their marks count as made now (part 0: see
         * es_batch_prune). Checked first, so a restart takes no lock when nothing is to
         * be done. */
        "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM information_schema.columns WHERE "
        "table_schema = current_schema() AND table_name = 'processed' AND column_name = "
        "'at_ms') THEN ALTER TABLE processed ADD COLUMN part bigint NOT NULL DEFAULT 0, ADD "
        "COLUMN at_ms bigint NOT NULL DEFAULT (extract(epoch FROM now()) * 1000)::bigint; "
        "END IF; IF NOT EXISTS (SELECT 1 FROM information_schema.columns WHERE "
        "table_schema = current_schema() AND table_name = 'positions' AND column_name = "
        "'newest_ms') THEN ALTER TABLE positions ADD COLUMN part bigint NOT NULL DEFAULT 0, "
        "ADD COLUMN newest_ms bigint NOT NULL DEFAULT 0; END IF; END $$;"
        /* Tables keyed by the event id alone take the key above, unless they still hold
         * marks from before the window (part 0: a copy of their input would not match
         * them by part and time), which keep the old key and its index until pruned. */
        "DO $$ BEGIN IF (SELECT indnatts FROM pg_index WHERE indrelid = "
        "'processed'::regclass AND indisprimary) = 1 THEN IF EXISTS (SELECT 1 FROM "
        "processed WHERE part = 0) THEN CREATE INDEX IF NOT EXISTS processed_at ON "
        "processed (at_ms); ELSE ALTER TABLE processed DROP CONSTRAINT processed_pkey, ADD "
        "PRIMARY KEY (part, at_ms, event_id); DROP INDEX IF EXISTS processed_at; END IF; "
        "END IF; END $$;"
        /* An outbox from before rows held a whole transaction's records (one row per
         * record, with a "value" column): replaced when empty, refused otherwise. */
        "DO $$ BEGIN IF EXISTS (SELECT 1 FROM information_schema.columns WHERE "
        "table_schema = current_schema() AND table_name = 'outbox' AND column_name = "
        "'value') THEN IF EXISTS (SELECT 1 FROM outbox) THEN RAISE EXCEPTION 'the outbox "
        "holds rows in the format of an older version: publish them with that version, or "
        "reset the data'; END IF; DROP TABLE outbox; END IF; IF EXISTS (SELECT 1 FROM "
        "information_schema.tables WHERE table_schema = current_schema() AND table_name = "
        "'outbox_parked') AND NOT EXISTS (SELECT 1 FROM information_schema.columns WHERE "
        "table_schema = current_schema() AND table_name = 'outbox_parked' AND "
        "column_name = 'idx') THEN ALTER TABLE outbox_parked ADD COLUMN idx int NOT NULL "
        "DEFAULT 0, DROP CONSTRAINT outbox_parked_pkey, ADD PRIMARY KEY (seq, idx); END IF; "
        "END $$;"
        /* emitted records not yet acknowledged by Kafka: one row per transaction, its
         * records in one value (outbox.h), compressed with lz4 (ids and type names repeat) */
        "CREATE TABLE IF NOT EXISTS outbox (seq bigserial PRIMARY KEY, records bytea NOT "
        "NULL);"
        "DO $$ BEGIN ALTER TABLE outbox ALTER COLUMN records SET COMPRESSION lz4; "
        "EXCEPTION WHEN OTHERS THEN NULL; END $$;"
        /* a queue: vacuum it after a few thousand deletes, not after a fifth of its size, or
         * the relay's oldest-first scan walks ever more dead rows */
        "ALTER TABLE outbox SET (autovacuum_vacuum_threshold = 2000, "
        "autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_cost_delay = 0);"
        /* records Kafka refused for good (too large...), kept with the reason; idx is the
         * record's place in its outbox row (-1: the whole row, unreadable) */
        "CREATE TABLE IF NOT EXISTS outbox_parked (seq bigint NOT NULL, idx int NOT NULL, "
        "topic text NOT NULL, key bytea, value bytea NOT NULL, headers bytea, error text NOT "
        "NULL, parked_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (seq, idx));",
        def->schema, def->schema);
    if (len < 0 || (size_t)len >= sizeof(sql)) {
        snprintf(errstr, errstr_size, "the schema name \"%s\" is too long", def->schema);
        return -1;
    }
    /* concurrent instances may race on CREATE ... IF NOT EXISTS: serialise them */
    if (es_pg_exec(pg, "SELECT pg_advisory_lock(7401)", errstr, errstr_size) != 0) {
        return -1;
    }
    int rc = es_pg_exec(pg, sql, errstr, errstr_size);
    if (rc == 0 && def->tick) {
        rc = es_pg_exec(pg, ES_CAUGHT_UP_DDL, errstr, errstr_size);
    }
    if (rc == 0 && def->ddl) {
        rc = es_pg_exec(pg, def->ddl, errstr, errstr_size);
    }
    char tmp[256];
    es_pg_exec(pg, "SELECT pg_advisory_unlock(7401)", tmp, sizeof(tmp));
    return rc;
}

/* ---- one batch ------------------------------------------------------------------------- */

static position_t *position_get(es_service_t *svc, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < svc->pos_cnt; i++) {
        if (svc->pos[i].partition == partition && !strcmp(svc->pos[i].topic, topic)) {
            return &svc->pos[i];
        }
    }
    if (svc->pos_cnt == MAX_POSITIONS) {
        return NULL;
    }
    position_t *p = &svc->pos[svc->pos_cnt++];
    p->topic = topic;
    /* the subscribed name lives as long as the service: a carried position outlives its
     * record */
    for (size_t i = 0; svc->def->topics && svc->def->topics[i]; i++) {
        if (!strcmp(svc->def->topics[i], topic)) {
            p->topic = svc->def->topics[i];
            break;
        }
    }
    p->partition = partition;
    p->next_offset = -1;
    p->high_watermark = 0;
    p->part = es_dedup_part(topic, partition);
    p->newest_ms = 0;
    return p;
}

static int inputs_push(es_service_t *svc, es_input_t **out)
{
    if (svc->input_cnt == svc->input_cap) {
        size_t cap = svc->input_cap ? svc->input_cap * 2 : 256;
        es_input_t *n = realloc(svc->inputs, cap * sizeof(*n));
        if (!n) {
            return -1;
        }
        svc->inputs = n;
        svc->input_cap = cap;
    }
    *out = &svc->inputs[svc->input_cnt++];
    memset(*out, 0, sizeof(**out));
    return 0;
}

/* Drop inputs whose event id was handled before (or earlier in this batch): one INSERT ..
 * ON CONFLICT DO NOTHING RETURNING for the whole batch; the ids it returns are new. They are
 * matched back to the inputs through a small open-addressing set of 16-byte ids. */
static uint64_t id_hash(const unsigned char *id)
{
    uint64_t h;
    memcpy(&h, id, 8);
    return h ^ (h >> 29);
}

static int id_bytes(const char *hex, unsigned char out[16])
{
    for (int i = 0; i < 16; i++) {
        unsigned v = 0;
        for (int k = 0; k < 2; k++) {
            char c = hex[2 * i + k];
            v <<= 4;
            if (c >= '0' && c <= '9') {
                v |= (unsigned)(c - '0');
            } else if (c >= 'a' && c <= 'f') {
                v |= (unsigned)(c - 'a' + 10);
            } else {
                return -1;
            }
        }
        out[i] = (unsigned char)v;
    }
    return 0;
}

void es_batch_forget_newest(es_service_t *svc)
{
    svc->newest_cnt = 0;
}

/* Where partition `part`'s newest time is kept in memory: an index, or newest_cnt if not. */
static size_t newest_find(const es_service_t *svc, int64_t part)
{
    size_t k = 0;
    while (k < svc->newest_cnt && svc->newest[k].part != part) {
        k++;
    }
    return k;
}

/* The batch's partitions' newest times from memory. Returns 0, or -1 when one is not there
 * (they must be read). */
static int newest_recall(es_service_t *svc)
{
    for (size_t i = 0; i < svc->pos_cnt; i++) {
        size_t k = newest_find(svc, svc->pos[i].part);
        if (k == svc->newest_cnt) {
            return -1;
        }
        svc->pos[i].newest_ms = svc->newest[k].newest_ms;
    }
    return 0;
}

/* Keep the batch's partitions' newest times in memory, for the next batch. */
static void newest_keep(es_service_t *svc)
{
    for (size_t i = 0; i < svc->pos_cnt; i++) {
        size_t k = newest_find(svc, svc->pos[i].part);
        if (k == svc->newest_cnt) {
            if (svc->newest_cnt == MAX_POSITIONS) {
                continue;
            }
            svc->newest[svc->newest_cnt++].part = svc->pos[i].part;
        }
        svc->newest[k].newest_ms = svc->pos[i].newest_ms;
    }
}

/* Queue the insert of the marks filled into svc->ids, parts and times (dedup.h): the ones it
 * returns were new. Returns its pipeline index, or -1 when out of memory. */
static int marks_queue(es_service_t *svc, es_pg_pipeline_t *pl)
{
    if (es_pg_array_finish(&svc->ids) != 0 || es_pg_array_finish(&svc->parts) != 0 ||
        es_pg_array_finish(&svc->times) != 0) {
        return -1;
    }
    const char *vals[3] = {(const char *)svc->ids.buf.data, (const char *)svc->parts.buf.data,
                           (const char *)svc->times.buf.data};
    int lens[3] = {(int)svc->ids.buf.len, (int)svc->parts.buf.len, (int)svc->times.buf.len};
    int fmts[3] = {1, 1, 1};
    return es_pg_pipeline_add(pl,
                              "INSERT INTO processed (event_id, part, at_ms) SELECT * FROM "
                              "unnest($1::uuid[], $2::bigint[], $3::bigint[]) ON CONFLICT DO "
                              "NOTHING RETURNING event_id",
                              3, vals, lens, fmts);
}

/* Queue the dedup statement for the batch's inputs, then, unless they are in memory or
 * read_idx is NULL, the read of their partitions' newest times (dedup.h). Returns the first
 * one's pipeline index, or -1 when out of memory; *read_idx is the read's, or -1. */
static int dedup_queue(es_service_t *svc, es_pg_pipeline_t *pl, int *read_idx)
{
    es_pg_array_reset(&svc->ids);
    es_pg_array_reset(&svc->parts);
    es_pg_array_reset(&svc->times);
    es_pg_array_reset(&svc->batch_parts);
    for (size_t i = 0; i < svc->input_cnt; i++) {
        const es_input_t *in = &svc->inputs[i];
        es_pg_array_add_uuid(&svc->ids, in->env.event_id);
        es_pg_array_add_int8(&svc->parts, es_dedup_part(in->topic, in->partition));
        es_pg_array_add_int8(&svc->times, in->env.occurred_at);
    }
    for (size_t i = 0; i < svc->pos_cnt; i++) {
        es_pg_array_add_int8(&svc->batch_parts, svc->pos[i].part);
    }
    if (read_idx) {
        *read_idx = -1;
    }
    if (es_pg_array_finish(&svc->batch_parts) != 0) {
        return -1; /* out of memory */
    }
    int idx = marks_queue(svc, pl);
    if (idx >= 0 && read_idx && newest_recall(svc) != 0) {
        const char *pv[1] = {(const char *)svc->batch_parts.buf.data};
        int pl_[1] = {(int)svc->batch_parts.buf.len};
        int fmts[1] = {1};
        *read_idx = es_pg_pipeline_add(
            pl, "SELECT part, newest_ms FROM positions WHERE part = ANY($1::bigint[])", 1, pv, pl_,
            fmts);
        if (*read_idx < 0) {
            return -1;
        }
    }
    return idx;
}

/* A uuid in PostgreSQL's text form (hyphens anywhere) as 16 bytes. Returns 0 or -1. */
static int uuid_text_bytes(const char *s, unsigned char out[16])
{
    char hex[33];
    size_t n = 0;
    for (; *s && n < 32; s++) {
        if (*s != '-') {
            hex[n++] = *s;
        }
    }
    hex[n] = '\0';
    return n == 32 && !*s ? id_bytes(hex, out) : -1;
}

/* Which of `cnt` ids are new: those a dedup insert returned (text uuids), first copy only.
 * id_at(items, i) is the i-th id (hex). *fresh_out gets one flag per id (in the batch's arena). */
static int returned_ids(es_service_t *svc, const PGresult *res, const void *items, size_t cnt,
                        const char *(*id_at)(const void *items, size_t i),
                        unsigned char **fresh_out, char *errstr, size_t errstr_size)
{
    unsigned char *flags = es_arena_calloc(&svc->arena, cnt + 1, 1);
    if (!flags) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    int n = PQntuples(res);
    size_t cap = 16;
    while (cap < (size_t)n * 2 + 2) {
        cap *= 2;
    }
    unsigned char(*set)[17] = calloc(cap, sizeof(*set)); /* 16 id bytes + "used" flag */
    if (!set) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    for (int r = 0; r < n; r++) {
        unsigned char id[16];
        if (uuid_text_bytes(PQgetvalue(res, r, 0), id) != 0) {
            free(set);
            snprintf(errstr, errstr_size, "the dedup insert returned a malformed id \"%s\"",
                     PQgetvalue(res, r, 0));
            return -1;
        }
        size_t h = (size_t)id_hash(id) & (cap - 1);
        while (set[h][16]) {
            h = (h + 1) & (cap - 1);
        }
        memcpy(set[h], id, 16);
        set[h][16] = 1;
    }
    for (size_t i = 0; i < cnt; i++) {
        unsigned char id[16];
        int fresh = 0;
        if (id_bytes(id_at(items, i), id) == 0) {
            size_t h = (size_t)id_hash(id) & (cap - 1);
            while (set[h][16]) {
                if (set[h][16] == 1 && !memcmp(set[h], id, 16)) {
                    set[h][16] = 2; /* claimed: a later copy in this batch is a duplicate */
                    fresh = 1;
                    break;
                }
                h = (h + 1) & (cap - 1);
            }
        }
        flags[i] = (unsigned char)fresh;
    }
    free(set);
    *fresh_out = flags;
    return 0;
}

static const char *input_id_at(const void *items, size_t i)
{
    return ((const es_input_t *)items)[i].env.event_id;
}

static const char *dead_id_at(const void *items, size_t i)
{
    return ((const dead_letter_t *)items)[i].id;
}

/* Which inputs are new (see returned_ids). */
static int dedup_filter(es_service_t *svc, const PGresult *res, unsigned char **fresh_out,
                        char *errstr, size_t errstr_size)
{
    return returned_ids(svc, res, svc->inputs, svc->input_cnt, input_id_at, fresh_out, errstr,
                        errstr_size);
}

/* The batch's deferred dead letters, each written once: one insert of their marks, in the
 * batch's transaction, after the handler (so its dead letters are there too). A mark already
 * there means a transaction that committed wrote that dead letter: this batch is redone after
 * a COMMIT whose answer was lost, or its records are read again (an instance that read the
 * partition from an older position, a copy delivered to an idempotent handler). The marks go
 * with the dedup window like the others. Returns 0, or -1 with errstr. */
static int dead_resolve(es_service_t *svc, PGconn *pg, char *errstr, size_t errstr_size)
{
    if (svc->dead_cnt == 0) {
        return 0;
    }
    es_pg_array_reset(&svc->ids);
    es_pg_array_reset(&svc->parts);
    es_pg_array_reset(&svc->times);
    for (size_t i = 0; i < svc->dead_cnt; i++) {
        es_pg_array_add_uuid(&svc->ids, svc->dead[i].id);
        es_pg_array_add_int8(&svc->parts, svc->dead[i].part);
        es_pg_array_add_int8(&svc->times, svc->dead[i].at_ms);
    }
    es_pg_pipeline_reset(&svc->rl);
    int idx = marks_queue(svc, &svc->rl);
    unsigned char *fresh;
    if (idx < 0 || es_pg_pipeline_run(pg, &svc->rl, 0, errstr, errstr_size) != 0 ||
        returned_ids(svc, es_pg_pipeline_result(&svc->rl, idx), svc->dead, svc->dead_cnt,
                     dead_id_at, &fresh, errstr, errstr_size) != 0) {
        if (idx < 0) {
            snprintf(errstr, errstr_size, "out of memory queueing the dead letters' marks");
        }
        es_pg_pipeline_reset(&svc->rl);
        return -1;
    }
    es_pg_pipeline_reset(&svc->rl);
    for (size_t i = 0; i < svc->dead_cnt; i++) {
        const dead_letter_t *d = &svc->dead[i];
        if (fresh[i]) {
            dead_letter_raw(svc, d->raw, d->reason);
        } else {
            es_log_info("record dead-lettered before: not again",
                        "topic=%s partition=%d offset=%lld", d->raw->topic, d->raw->partition,
                        (long long)d->raw->offset);
        }
    }
    svc->dead_cnt = 0;
    return 0;
}

/* Keep the new inputs (`fresh`) that are not too old to be told from a copy (dedup.h); those
 * go to the dead-letter topic with the reason. `res`, unless NULL (they were in memory), holds
 * the stored newest time of the batch's partitions; each partition's goes forward input by
 * input, in log order, copies too (an event handled at once by loop-back comes back as one,
 * and is the first its partition sees of its time). */
static void window_filter(es_service_t *svc, const PGresult *res, const unsigned char *fresh)
{
    /* read from the table: a partition it has no row for has no newest time yet, whatever an
     * attempt of this batch that failed (or a carried position) left in memory */
    for (size_t i = 0; res && i < svc->pos_cnt; i++) {
        svc->pos[i].newest_ms = 0;
    }
    for (int r = 0; res && r < PQntuples(res); r++) { /* text results, like the round trip */
        int64_t part = strtoll(PQgetvalue(res, r, 0), NULL, 10);
        for (size_t i = 0; i < svc->pos_cnt; i++) {
            if (svc->pos[i].part == part) {
                svc->pos[i].newest_ms = strtoll(PQgetvalue(res, r, 1), NULL, 10);
            }
        }
    }
    int64_t now_ms = es_now_ms();
    int64_t window_ms = svc->dedup_window_ms;
    size_t kept = 0;
    for (size_t i = 0; i < svc->input_cnt; i++) {
        es_input_t *in = &svc->inputs[i];
        position_t *pos = position_get(svc, in->topic, in->partition);
        int64_t t = in->env.occurred_at;
        if (!fresh[i]) {
            if (pos) {
                pos->newest_ms = es_dedup_advance(pos->newest_ms, t, now_ms);
            }
            json_decref(in->payload);
            continue;
        }
        if (pos && es_dedup_too_old(pos->newest_ms, t, window_ms)) {
            char reason[256];
            dead_letter_raw(svc, in->raw,
                            es_dedup_reason(reason, sizeof(reason), pos->newest_ms, t, window_ms));
            json_decref(in->payload);
            continue;
        }
        if (pos) {
            pos->newest_ms = es_dedup_advance(pos->newest_ms, t, now_ms);
        }
        svc->inputs[kept++] = *in;
    }
    svc->input_cnt = kept;
    newest_keep(svc);
}

/* Queue the batch's outbox row: every emitted record in one value, in emission order. */
static int queue_outbox(es_service_t *svc)
{
    if (svc->ob_failed) {
        return -1;
    }
    if (svc->ob_count == 0) {
        return 0;
    }
    const char *vals[1] = {(const char *)svc->ob_records.data};
    int lens[1] = {(int)svc->ob_records.len};
    int fmts[1] = {1};
    svc->ob_idx = es_pg_pipeline_add(
        &svc->pl, "INSERT INTO outbox (records) VALUES ($1::bytea) RETURNING seq", 1, vals, lens,
        fmts);
    return svc->ob_idx < 0 ? -1 : 0;
}

static int queue_positions(es_service_t *svc)
{
    static const es_pg_oid_t oids[6] = {ES_PG_TEXT, ES_PG_INT4, ES_PG_INT8,
                                        ES_PG_INT8, ES_PG_INT8, ES_PG_INT8};
    es_pg_cols_t c;
    es_pg_cols_init(&c, oids, 6);
    for (size_t i = 0; i < svc->pos_cnt; i++) {
        if (svc->pos[i].next_offset < 0) {
            continue;
        }
        int64_t hw = svc->pos[i].high_watermark;
        es_pg_array_add_text(&c.a[0], svc->pos[i].topic);
        es_pg_array_add_int4(&c.a[1], svc->pos[i].partition);
        es_pg_array_add_int8(&c.a[2], svc->pos[i].next_offset);
        es_pg_array_add_int8(&c.a[3], hw > svc->pos[i].next_offset ? hw : svc->pos[i].next_offset);
        es_pg_array_add_int8(&c.a[4], svc->pos[i].part);
        es_pg_array_add_int8(&c.a[5], svc->pos[i].newest_ms);
    }
    return es_pg_cols_queue(
        &c, &svc->pl,
        "INSERT INTO positions (topic, partition, next_offset, high_watermark, part, "
        "newest_ms, updated_at) SELECT t, p, o, h, k, n, now() FROM unnest($1::text[], "
        "$2::int[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[]) AS u(t, p, "
        "o, h, k, n) ON CONFLICT (topic, partition) DO UPDATE SET next_offset = "
        "GREATEST(positions.next_offset, EXCLUDED.next_offset), high_watermark = "
        "EXCLUDED.high_watermark, part = EXCLUDED.part, newest_ms = "
        "GREATEST(positions.newest_ms, EXCLUDED.newest_ms), updated_at = now()");
}

/* Decode the raws into svc->inputs (or the DLQ) and note the positions they advance. */
static void decode_raws(es_service_t *svc, const es_raw_t *raws, size_t cnt)
{
    for (size_t i = 0; i < cnt; i++) {
        const es_raw_t *raw = &raws[i];
        position_t *pos = position_get(svc, raw->topic, raw->partition);
        if (pos && raw->offset + 1 > pos->next_offset) {
            pos->next_offset = raw->offset + 1;
        }
        /* skip, undecoded, what is not ours; a type nobody knows is decoded (and fails) so a
         * bogus header cannot carry garbage past the dead-letter topic */
        if (raw->type_hdr && svc->def->wants && !svc->def->wants(raw->type_hdr) &&
            es_codec_type(svc->codec, raw->type_hdr)) {
            continue;
        }
        es_input_t tmp;
        memset(&tmp, 0, sizeof(tmp));
        char err[512];
        if (!raw->value) {
            dead_defer_undecoded(svc, raw, "record has no value");
            continue;
        }
        if (es_envelope_decode(svc->codec, raw->value, raw->value_len, &tmp.env, &tmp.type,
                               &tmp.payload, err, sizeof(err)) != 0) {
            dead_defer_undecoded(svc, raw, err);
            continue;
        }
        if (!es_id_valid(tmp.env.event_id)) {
            json_decref(tmp.payload);
            dead_defer_undecoded(svc, raw, "envelope event_id is not a 32-character hex id");
            continue;
        }
        if (svc->def->wants && !svc->def->wants(tmp.env.type)) {
            json_decref(tmp.payload);
            continue;
        }
        es_input_t *in;
        if (inputs_push(svc, &in) != 0) {
            json_decref(tmp.payload);
            svc->ob_failed = 1; /* out of memory: the batch fails and is tried again, whole */
            continue;
        }
        *in = tmp;
        in->raw = raw;
        in->topic = raw->topic;
        in->partition = raw->partition;
        in->offset = raw->offset;
    }
}

/* Drop the previous batch's working state: inputs and their payloads, outbox records, the
 * arena, and with them the payload region (the payloads just released were its). */
static void working_reset(es_service_t *svc)
{
    es_batch_inputs_clear(svc);
    outbox_reset(svc);
    svc->dead_cnt = 0; /* their reasons were in the arena */
    es_arena_reset(&svc->arena);
    es_json_mem_reset();
}

/* Decode a batch into the working state (inputs, positions). No database work: it can
 * overlap the previous batch's COMMIT. */
void es_batch_decode(es_service_t *svc, const es_raw_t *raws, size_t cnt)
{
    working_reset(svc);
    if (!svc->carry) {
        svc->pos_cnt = 0;
    }
    es_batch_decode_more(svc, raws, 0, cnt);
}

void es_batch_decode_more(es_service_t *svc, const es_raw_t *raws, size_t from, size_t cnt)
{
    int64_t t0 = es_mono_us();
    int mem = es_json_mem_on();
    decode_raws(svc, raws + from, cnt - from);
    es_json_mem_off(mem);
    if (svc->consumer) {
        for (size_t i = 0; i < svc->pos_cnt; i++) {
            int64_t lo, hi;
            if (!rd_kafka_get_watermark_offsets(svc->consumer, svc->pos[i].topic,
                                                svc->pos[i].partition, &lo, &hi)) {
                svc->pos[i].high_watermark = hi;
            }
        }
    }
    svc->decoded = raws;
    svc->spent.decode_us += es_mono_us() - t0;
}

/* Exchange two pipelines' contents (statements, parameters, results): no copy. */
static void pipelines_swap(es_pg_pipeline_t *a, es_pg_pipeline_t *b)
{
    es_pg_pipeline_t t = *a;
    *a = *b;
    *b = t;
}

/* The next loop-back round. Its inputs are events this transaction emitted: new by
 * construction (none is published before the COMMIT), so their dedup marks are writes like the
 * others, and nothing is filtered. The handler's reads, if its load hook queues any, must see
 * the writes queued so far: these go first, in the round trip that carries the reads. A handler
 * that kept what it needs from the earlier rounds reads nothing, and the round costs no round
 * trip: its writes wait for the COMMIT with the others. Returns 0, or -1 with errstr. */
static int loop_round_begin(es_service_t *svc, PGconn *pg, char *errstr, size_t errstr_size)
{
    es_batch_inputs_clear(svc);
    es_input_t *tmp = svc->inputs;
    size_t cap = svc->input_cap;
    svc->inputs = svc->loop;
    svc->input_cnt = svc->loop_cnt;
    svc->input_cap = svc->loop_cap;
    svc->loop = tmp;
    svc->loop_cap = cap;
    svc->loop_cnt = 0;
    svc->looped += (int64_t)svc->input_cnt;
    es_pg_pipeline_reset(&svc->rl);
    /* many writes go on their own, so the reads stay well within a pipeline's length */
    if (svc->pl.cnt > LOOP_WRITES_MAX) {
        int rc = es_pg_pipeline_run(pg, &svc->pl, 0, errstr, errstr_size);
        es_pg_pipeline_reset(&svc->pl);
        if (rc != 0) {
            return -1;
        }
    }
    if (!svc->def->idempotent && dedup_queue(svc, &svc->pl, NULL) < 0) {
        snprintf(errstr, errstr_size, "out of memory queueing the dedup marks");
        return -1;
    }
    pipelines_swap(&svc->rl, &svc->pl); /* the writes first (rl was empty) */
    size_t writes = svc->rl.cnt;
    if (svc->def->load && svc->def->load(svc, &svc->rl, svc->inputs, svc->input_cnt,
                                         svc->def->opaque, errstr, errstr_size) != 0) {
        return -1;
    }
    if (svc->rl.cnt == writes) { /* nothing to read: the writes wait for the COMMIT */
        svc->loop_reads_skipped++;
        pipelines_swap(&svc->rl, &svc->pl);
        return 0;
    }
    return es_pg_pipeline_run(pg, &svc->rl, 0, errstr, errstr_size);
}

/* The handler on the batch's new inputs, then (loop_back) on the events it emitted that the
 * service itself consumes, round after round. Returns 0, or -1 with errstr. */
static int handle_rounds(es_service_t *svc, PGconn *pg, char *errstr, size_t errstr_size)
{
    int rc = 0;
    es_batch_loop_clear(svc);
    for (int round = 0; rc == 0 && svc->input_cnt > 0; round++) {
        svc->looping = svc->def->loop_back && !svc->offline && round < ES_LOOP_ROUNDS;
        rc = svc->def->handle(svc, svc->inputs, svc->input_cnt, svc->def->opaque, errstr,
                              errstr_size);
        svc->looping = 0;
        if (rc != 0 || svc->loop_cnt == 0) {
            break;
        }
        svc->round = round + 1;
        rc = loop_round_begin(svc, pg, errstr, errstr_size);
    }
    svc->round = 0;
    es_batch_loop_clear(svc);
    return rc;
}

/*
 * The decoded batch up to its last round trip, which is queued on svc->pl for the caller:
 *   1. [BEGIN, begin_sql,] the dedup insert, the handler's reads (load) -> which inputs are
 *      new, and the rows they need
 *   2. the handler decides (reading more if it must) and queues its writes
 *   3. (queued) the handler's writes, the outbox row, the positions[, COMMIT]
 * With own_tx the transaction is opened and committed; otherwise the caller owns it.
 */
int es_batch_prepare(es_service_t *svc, PGconn *pg, int own_tx, char *errstr, size_t errstr_size)
{
    int64_t t0 = es_mono_us();
    es_pg_pipeline_reset(&svc->pl);
    es_pg_pipeline_reset(&svc->rl);
    if (own_tx) {
        es_pg_pipeline_add(&svc->rl, "BEGIN", 0, NULL, NULL, NULL);
        if (svc->def->begin_sql) {
            es_pg_pipeline_add(&svc->rl, svc->def->begin_sql, 0, NULL, NULL, NULL);
        }
    }
    int read_idx = -1, dedup_idx = -1;
    if (!svc->def->idempotent && svc->input_cnt > 0 &&
        (dedup_idx = dedup_queue(svc, &svc->rl, &read_idx)) < 0) {
        snprintf(errstr, errstr_size, "out of memory queueing the dedup marks");
        return -1;
    }
    if (svc->input_cnt > 0 && svc->def->load &&
        svc->def->load(svc, &svc->rl, svc->inputs, svc->input_cnt, svc->def->opaque, errstr,
                       errstr_size) != 0) {
        return -1;
    }
    if (es_pg_pipeline_run(pg, &svc->rl, 0, errstr, errstr_size) != 0) {
        return -1;
    }
    int64_t t1 = es_mono_us();
    svc->spent.begin_us += t1 - t0;
    if (dedup_idx >= 0) {
        unsigned char *fresh;
        if (dedup_filter(svc, es_pg_pipeline_result(&svc->rl, dedup_idx), &fresh, errstr,
                         errstr_size) != 0) {
            return -1;
        }
        window_filter(svc, read_idx >= 0 ? es_pg_pipeline_result(&svc->rl, read_idx) : NULL, fresh);
    }
    int rc = handle_rounds(svc, pg, errstr, errstr_size);
    es_pg_pipeline_reset(&svc->rl); /* the reads' results are the handler's no more */
    if (rc != 0 || dead_resolve(svc, pg, errstr, errstr_size) != 0) {
        return -1;
    }
    if (svc->ob_failed || (!svc->offline && queue_outbox(svc) != 0) || queue_positions(svc) != 0 ||
        (own_tx && es_pg_pipeline_add(&svc->pl, "COMMIT", 0, NULL, NULL, NULL) < 0)) {
        snprintf(errstr, errstr_size, "could not queue the batch's writes");
        return -1;
    }
    svc->spent.handle_us += es_mono_us() - t1;
    return 0;
}

/* The seq the outbox insert at pipeline index `idx` returned, or -1. */
int64_t es_batch_outbox_seq(const es_service_t *svc, int idx)
{
    const PGresult *res = idx >= 0 ? es_pg_pipeline_result(&svc->pl, idx) : NULL;
    return res && PQntuples(res) == 1 ? es_pg_get_int8(res, 0, 0) : -1;
}

/* A whole batch, waiting for its last round trip. */
int es_batch_apply(es_service_t *svc, PGconn *pg, const es_raw_t *raws, size_t cnt, int own_tx,
                   char *errstr, size_t errstr_size)
{
    es_batch_decode(svc, raws, cnt);
    if (es_batch_prepare(svc, pg, own_tx, errstr, errstr_size) != 0) {
        return -1;
    }
    int64_t t0 = es_mono_us();
    int rc = es_pg_pipeline_run(pg, &svc->pl, 1, errstr, errstr_size);
    svc->spent.commit_us += es_mono_us() - t0;
    if (rc == 0) {
        svc->ob_seq = es_batch_outbox_seq(svc, svc->ob_idx);
    }
    es_pg_pipeline_reset(&svc->pl);
    return rc;
}

int es_batch_prune(es_service_t *svc, PGconn *pg, int limit, char *errstr, size_t errstr_size)
{
    int64_t params[2] = {svc->dedup_window_ms, limit};
    /* A mark goes once its partition's newest time is more than the window past it. Marks from
     * before the window existed (part 0, timed when the table was upgraded) go once every
     * partition's newest time is: whichever partition they came from, it is past them.
     * Each partition's oldest marks are found through the key, in key order so that the scan
     * stops at the limit, then deleted by their row addresses: under the generic plan a join
     * back on the key read the whole table (0.7 s for 10,000 of 1.4 million marks, 22 ms this
     * way; under 1 ms when nothing is due). */
    const char *sql =
        "DELETE FROM processed WHERE ctid = ANY(ARRAY(SELECT d.ctid FROM positions p CROSS "
        "JOIN LATERAL (SELECT ctid FROM processed d WHERE d.part = p.part AND d.at_ms < "
        "least(p.newest_ms, (SELECT max(newest_ms) FROM positions)) - $1::bigint ORDER BY "
        "d.at_ms LIMIT $2::int) d WHERE p.part <> 0 UNION ALL SELECT ctid FROM processed WHERE "
        "part = 0 AND at_ms < (SELECT min(newest_ms) FROM positions) - $1::bigint LIMIT "
        "$2::int))";
    if (svc->def->idempotent) {
        /* Its marks are its dead letters' alone (dead_resolve), and it keeps no newest times:
         * a mark goes once the clock is a window past its record's time. A record read again
         * after that would be dead-lettered again; nothing reads back that far but a rebuild,
         * which writes none. */
        params[0] = es_now_ms() - svc->dedup_window_ms;
        sql = "DELETE FROM processed WHERE ctid = ANY(ARRAY(SELECT ctid FROM processed WHERE "
              "at_ms < $1::bigint LIMIT $2::int))";
    }
    PGresult *res = es_pg_query_int8(pg, sql, 2, params, errstr, errstr_size);
    if (!res) {
        return -1;
    }
    int n = atoi(PQcmdTuples(res));
    PQclear(res);
    return n;
}

/* Say, once in a while, that the timers are held back by another instance's partitions: a
 * deadline that seems to pass unnoticed then has its reason in the log. */
static void caught_up_say(es_service_t *svc, int known)
{
    const es_caught_up_t *g = &svc->caught_up;
    int64_t now = es_mono_us();
    if (known) {
        svc->caught_up_unknown_us = 0;
    } else if (svc->caught_up_unknown_us == 0) {
        svc->caught_up_unknown_us = now;
    }
    /* right after an assignment the others may not have read their new partitions yet */
    int slow = now - svc->assigned_us > ES_CAUGHT_UP_SLOW_MS * 1000LL &&
               (known ? g->lag_ms > ES_CAUGHT_UP_SLOW_MS
                      : now - svc->caught_up_unknown_us > ES_CAUGHT_UP_SLOW_MS * 1000LL);
    int64_t *said = &svc->caught_up_said_us[known ? 1 : 0];
    if (!slow || now - *said < 30000000) {
        return;
    }
    *said = now;
    if (known) {
        es_log_warn("timers held back: another instance has not read a partition for a while",
                    "partition=%s read_ms_ago=%lld", g->oldest, (long long)g->lag_ms);
    } else if (g->total < 0) {
        es_log_warn("timers held back: the input topics' partitions could not be counted (is a "
                    "topic missing?)",
                    "partitions_read=%d", g->rows);
    } else {
        es_log_warn("timers held back: not every partition has been read to its end yet",
                    "partitions_read=%d partitions=%d", g->rows, g->total);
    }
}

int es_batch_tick(es_service_t *svc, PGconn *pg, char *errstr, size_t errstr_size)
{
    working_reset(svc);
    svc->pos_cnt = 0;
    svc->decoded = NULL; /* the working state is the tick's now */
    es_pg_pipeline_reset(&svc->pl);
    if (es_pg_exec(pg, "BEGIN", errstr, errstr_size) != 0 ||
        (svc->def->begin_sql && es_pg_exec(pg, svc->def->begin_sql, errstr, errstr_size) != 0)) {
        return -1;
    }
    /* an instance that reads every partition knows what the group has read: all of it, up to
     * now; otherwise the others' progress counts too, and the timers wait until it is known
     * (caught_up.h; this instance's own rows commit either way) */
    int known = 1;
    svc->caught_up.at[0] = '\0';
    if (!svc->sole) {
        known = svc->assignment
                    ? es_caught_up_mark(pg, svc->assignment, svc->def->topics, svc->parts_total,
                                        &svc->caught_up, errstr, errstr_size)
                    : 0;
        if (known < 0) {
            return -1;
        }
        caught_up_say(svc, known);
    }
    if (known && svc->def->tick(svc, pg, svc->def->opaque, errstr, errstr_size) != 0) {
        return -1;
    }
    if (queue_outbox(svc) != 0 || es_pg_pipeline_add(&svc->pl, "COMMIT", 0, NULL, NULL, NULL) < 0) {
        snprintf(errstr, errstr_size, "could not queue the tick's writes");
        return -1;
    }
    int rc = es_pg_pipeline_run(pg, &svc->pl, 1, errstr, errstr_size);
    if (rc == 0) {
        svc->ob_seq = es_batch_outbox_seq(svc, svc->ob_idx);
    }
    es_pg_pipeline_reset(&svc->pl);
    return rc;
}

const char *es_service_caught_up(const es_service_t *svc)
{
    return svc->caught_up.at[0] ? svc->caught_up.at : NULL;
}

int es_service_apply(es_service_t *svc, PGconn *pg, const es_raw_t *raws, size_t cnt, char *errstr,
                     size_t errstr_size)
{
    return es_batch_apply(svc, pg, raws, cnt, 0, errstr, errstr_size);
}

es_arena_t *es_service_arena(es_service_t *svc)
{
    return &svc->arena;
}

es_pg_pipeline_t *es_service_pipeline(es_service_t *svc)
{
    return &svc->pl;
}

es_pg_pipeline_t *es_service_reads(es_service_t *svc)
{
    return &svc->rl;
}

int es_service_round(const es_service_t *svc)
{
    return svc->round;
}
