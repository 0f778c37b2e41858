/*
 * rebuild.c: recompute the ledger read models from the complete log while the platform runs,
 * then swap them in atomically.
 *
 *   1. create the shadow schema projections_rebuild with the projector's tables,
 *   2. read accounts.events and transfers.events from offset 0 (the journal, then the broker)
 *      through the live projector's own handler, in batches, committing as it goes,
 *   3. once it has read what the log held at the start: take the swap lock exclusively (live
 *      batches hold it shared, so the live projector pauses between two batches), read on until
 *      every partition is at least where the live projector is, carry the live outbox over,
 *      rename the schemas and drop the old one, all in one transaction.
 * The live projector then continues from positions the rebuilt tables agree with; anything
 * the rebuild read beyond them is in its dedup table, so it is not applied twice.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "logreader.h"
#include "pg.h"
#include "projector.h"

#define REBUILD_BATCH 5000
#define MAX_PARTS 1024

static const char *const rebuild_topics[] = {"accounts.events", "transfers.events"};

typedef struct progress {
    int64_t done, total;
    int64_t started_us, last_us;
    int tty;
} progress_t;

static void progress_draw(progress_t *p, int final)
{
    int64_t now = es_mono_us();
    if (!final && now - p->last_us < (p->tty ? 100000 : 2000000)) {
        return;
    }
    p->last_us = now;
    double secs = (double)(now - p->started_us) / 1e6;
    double rate = secs > 0 ? (double)p->done / secs : 0;
    int64_t total = p->total > p->done ? p->total : p->done;
    int pct = total ? (int)(100 * p->done / total) : 100;
    if (p->tty) {
        char bar[41];
        int fill = pct * 40 / 100;
        for (int i = 0; i < 40; i++) {
            bar[i] = i < fill ? '#' : '.';
        }
        bar[40] = '\0';
        fprintf(stderr, "\rrebuilding ledger [%s] %3d%% %lld/%lld events %.0f ev/s", bar, pct,
                (long long)p->done, (long long)total, rate);
        if (final) {
            fputc('\n', stderr);
        }
    } else {
        fprintf(stderr, "rebuilding ledger: %d%% %lld/%lld events %.0f ev/s\n", pct,
                (long long)p->done, (long long)total, rate);
    }
    fflush(stderr);
}

/* Records of one batch, copied out of the reader (its pointers live until the next call). */
typedef struct pending {
    es_raw_t raws[REBUILD_BATCH];
    size_t value_off[REBUILD_BATCH];
    char types[REBUILD_BATCH][ES_TYPE_MAX];
    size_t cnt;
    es_buf_t arena;
} pending_t;

/* Next offsets reached per partition. */
typedef struct reached {
    int64_t next[2][MAX_PARTS];
} reached_t;

static int topic_index(const char *topic)
{
    for (int i = 0; i < 2; i++) {
        if (!strcmp(topic, rebuild_topics[i])) {
            return i;
        }
    }
    return -1;
}

static void pending_add(pending_t *pd, const es_logreader_msg_t *msg, int ti)
{
    es_raw_t *raw = &pd->raws[pd->cnt];
    memset(raw, 0, sizeof(*raw));
    raw->topic = rebuild_topics[ti];
    raw->partition = msg->partition;
    raw->offset = msg->rec.offset;
    pd->types[pd->cnt][0] = '\0';
    for (size_t h = 0; h < msg->rec.header_cnt; h++) {
        const es_journal_header_t *hd = &msg->rec.headers[h];
        if (!strcmp(hd->name, "es-type") && hd->value_len > 0 && hd->value_len < ES_TYPE_MAX) {
            memcpy(pd->types[pd->cnt], hd->value, (size_t)hd->value_len);
            pd->types[pd->cnt][hd->value_len] = '\0';
            raw->type_hdr = pd->types[pd->cnt];
        }
    }
    pd->value_off[pd->cnt] = pd->arena.len;
    if (msg->rec.value && msg->rec.value_len > 0) {
        es_buf_append(&pd->arena, msg->rec.value, (size_t)msg->rec.value_len);
        raw->value_len = (size_t)msg->rec.value_len;
    } else {
        raw->value_len = 0;
        pd->value_off[pd->cnt] = (size_t)-1;
    }
    pd->cnt++;
}

static int pending_apply(pending_t *pd, es_service_t *svc, PGconn *pg, char *errstr,
                         size_t errstr_size)
{
    for (size_t i = 0; i < pd->cnt; i++) {
        pd->raws[i].value =
            pd->value_off[i] == (size_t)-1 ? NULL : pd->arena.data + pd->value_off[i];
    }
    int rc = pd->cnt ? es_service_apply(svc, pg, pd->raws, pd->cnt, errstr, errstr_size) : 0;
    pd->cnt = 0;
    es_buf_reset(&pd->arena);
    return rc;
}

static int exec_or_report(PGconn *pg, const char *sql)
{
    char errstr[1024];
    if (es_pg_exec(pg, sql, errstr, sizeof(errstr)) != 0) {
        fprintf(stderr, "es-projector: rebuild failed: %s\n", errstr);
        return -1;
    }
    return 0;
}

/* Phase 3: under the swap lock, read until every partition is at least where the live
 * projector is, then swap the schemas. Runs inside the caller's transaction. */
static int catch_up_and_swap(PGconn *pg, es_logreader_t *lr, es_service_t *svc, pending_t *pd,
                             reached_t *rc, progress_t *prog)
{
    char errstr[1024];
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT pg_advisory_xact_lock(%d)", PROJECTOR_SWAP_LOCK);
    if (exec_or_report(pg, sql) != 0) {
        return -1;
    }
    PGresult *live = es_pg_query(pg,
                                 "SELECT p.topic, p.partition, p.next_offset FROM "
                                 "projections.positions p WHERE to_regclass("
                                 "'projections.positions') IS NOT NULL",
                                 0, NULL, NULL, NULL, 0, errstr, sizeof(errstr));
    int live_exists = 1;
    if (!live) {
        /* no live projection yet: nothing to catch up with */
        live_exists = 0;
        if (exec_or_report(pg, "ROLLBACK") != 0 || exec_or_report(pg, "BEGIN") != 0 ||
            exec_or_report(pg, sql) != 0) {
            return -1;
        }
    }
    int64_t idle_since = es_mono_us();
    for (;;) {
        int behind = 0;
        for (int r = 0; live && r < PQntuples(live); r++) {
            int ti = topic_index(PQgetvalue(live, r, 0));
            int p = atoi(PQgetvalue(live, r, 1));
            int64_t target = strtoll(PQgetvalue(live, r, 2), NULL, 10);
            if (ti >= 0 && p >= 0 && p < MAX_PARTS && rc->next[ti][p] < target) {
                behind = 1;
            }
        }
        if (!behind) {
            break;
        }
        es_logreader_msg_t msg;
        int got = es_logreader_next(lr, &msg, 100, errstr, sizeof(errstr));
        if (got < 0) {
            fprintf(stderr, "es-projector: rebuild failed reading the log: %s\n", errstr);
            PQclear(live);
            return -1;
        }
        if (got == 0) {
            if (pending_apply(pd, svc, pg, errstr, sizeof(errstr)) != 0) {
                fprintf(stderr, "es-projector: rebuild failed: %s\n", errstr);
                PQclear(live);
                return -1;
            }
            if (es_mono_us() - idle_since > 15 * 1000000LL) {
                fprintf(stderr, "es-projector: rebuild failed: the log does not reach the live "
                                "projector's positions\n");
                PQclear(live);
                return -1;
            }
            continue;
        }
        idle_since = es_mono_us();
        int ti = topic_index(msg.topic);
        if (ti < 0 || msg.partition < 0 || msg.partition >= MAX_PARTS) {
            continue;
        }
        pending_add(pd, &msg, ti);
        rc->next[ti][msg.partition] = msg.rec.offset + 1;
        prog->done++;
        if (pd->cnt == REBUILD_BATCH && pending_apply(pd, svc, pg, errstr, sizeof(errstr)) != 0) {
            fprintf(stderr, "es-projector: rebuild failed: %s\n", errstr);
            PQclear(live);
            return -1;
        }
    }
    PQclear(live);
    if (pending_apply(pd, svc, pg, errstr, sizeof(errstr)) != 0) {
        fprintf(stderr, "es-projector: rebuild failed: %s\n", errstr);
        return -1;
    }
    if (live_exists) {
        /* records the live projector emitted (dead letters) and has not yet published keep
         * their seq, so its relay's bookkeeping stays right */
        if (exec_or_report(pg, "INSERT INTO projections_rebuild.outbox SELECT * FROM "
                               "projections.outbox") != 0 ||
            exec_or_report(pg, "SELECT setval(pg_get_serial_sequence("
                               "'projections_rebuild.outbox', 'seq'), greatest(1, (SELECT "
                               "last_value FROM projections.outbox_seq_seq)))") != 0 ||
            exec_or_report(pg, "ALTER SCHEMA projections RENAME TO projections_old") != 0) {
            return -1;
        }
    }
    if (exec_or_report(pg, "ALTER SCHEMA projections_rebuild RENAME TO projections") != 0 ||
        (live_exists && exec_or_report(pg, "DROP SCHEMA projections_old CASCADE") != 0)) {
        return -1;
    }
    return 0;
}

int projector_rebuild(es_config_t *cfg, const char *projection)
{
    if (strcmp(projection, "ledger") != 0) {
        fprintf(stderr, "es-projector: unknown projection \"%s\" (known: ledger)\n", projection);
        return -1;
    }
    char errstr[1024];
    int rc = -1;
    es_codec_t *codec = NULL;
    PGconn *pg = NULL;
    es_service_t *svc = NULL;
    es_logreader_t *lr = NULL;
    pending_t *pd = calloc(1, sizeof(*pd));
    reached_t *reached = calloc(1, sizeof(*reached));
    es_service_def_t def;
    projector_def_init(&def, "projections_rebuild");
    if (!pd || !reached) {
        fprintf(stderr, "es-projector: out of memory\n");
        goto out;
    }
    es_buf_init(&pd->arena);
    for (int t = 0; t < 2; t++) {
        for (int p = 0; p < MAX_PARTS; p++) {
            reached->next[t][p] = 0;
        }
    }
    codec = es_codec_new(errstr, sizeof(errstr));
    const char *conninfo = codec ? es_config_pg(cfg, errstr, sizeof(errstr)) : NULL;
    if (!conninfo || !(pg = es_pg_connect(conninfo, 10, errstr, sizeof(errstr)))) {
        fprintf(stderr, "es-projector: %s\n", errstr);
        goto out;
    }
    if (exec_or_report(pg, "DROP SCHEMA IF EXISTS projections_rebuild CASCADE") != 0) {
        goto out;
    }
    if (es_service_create_tables(&def, pg, errstr, sizeof(errstr)) != 0) {
        fprintf(stderr, "es-projector: %s\n", errstr);
        goto out;
    }
    if (exec_or_report(pg, "SET search_path TO projections_rebuild") != 0) {
        goto out;
    }
    svc = es_service_offline_new(&def, codec);
    lr = es_logreader_new(cfg, rebuild_topics, 2, 0, 0, 1, errstr, sizeof(errstr));
    if (!svc || !lr) {
        fprintf(stderr, "es-projector: could not read the log: %s\n", errstr);
        goto out;
    }
    progress_t prog = {.done = 0,
                       .total = es_logreader_total(lr),
                       .started_us = es_mono_us(),
                       .last_us = 0,
                       .tty = isatty(2)};
    /* phase 2: what the log held when we started, in committed batches */
    while (prog.done < prog.total) {
        es_logreader_msg_t msg;
        int got = es_logreader_next(lr, &msg, 100, errstr, sizeof(errstr));
        if (got < 0) {
            fprintf(stderr, "\nes-projector: rebuild failed reading the log: %s\n", errstr);
            goto out;
        }
        if (got > 0) {
            int ti = topic_index(msg.topic);
            if (ti >= 0 && msg.partition >= 0 && msg.partition < MAX_PARTS) {
                pending_add(pd, &msg, ti);
                reached->next[ti][msg.partition] = msg.rec.offset + 1;
            }
            prog.done++;
        }
        if (pd->cnt == REBUILD_BATCH || (got == 0 && pd->cnt)) {
            if (exec_or_report(pg, "BEGIN") != 0 ||
                pending_apply(pd, svc, pg, errstr, sizeof(errstr)) != 0) {
                fprintf(stderr, "\nes-projector: rebuild failed: %s\n", errstr);
                goto out;
            }
            if (exec_or_report(pg, "COMMIT") != 0) {
                goto out;
            }
        }
        progress_draw(&prog, 0);
    }
    /* phase 3 */
    if (exec_or_report(pg, "BEGIN") != 0) {
        goto out;
    }
    if (catch_up_and_swap(pg, lr, svc, pd, reached, &prog) != 0) {
        char tmp[256];
        es_pg_exec(pg, "ROLLBACK", tmp, sizeof(tmp));
        goto out;
    }
    if (exec_or_report(pg, "COMMIT") != 0) {
        goto out;
    }
    progress_draw(&prog, 1);
    fprintf(stderr, "rebuilt projection \"ledger\" from %lld events and swapped it in\n",
            (long long)prog.done);
    rc = 0;
out:
    if (rc != 0 && pg) {
        char tmp[256];
        es_pg_exec(pg, "DROP SCHEMA IF EXISTS projections_rebuild CASCADE", tmp, sizeof(tmp));
    }
    es_logreader_destroy(lr);
    es_service_destroy(svc);
    PQfinish(pg);
    es_codec_destroy(codec);
    projector_def_fini(&def);
    if (pd) {
        es_buf_fini(&pd->arena);
    }
    free(pd);
    free(reached);
    return rc;
}
