/*
 * projection.c: what every projector program shares (projection.h): its main(), and the
 * rebuild that recomputes its read models from the complete log while the platform runs,
 * then swaps them in atomically:
 *
 *   1. create the shadow schema <schema>_rebuild with the projection's tables,
 *   2. read the projection's topics from offset 0 (the journal, then the broker) through the
 *      live projector's own handler, in batches, committing as it goes,
 *   3. once it has read what the log held at the start: take the swap lock exclusively (live
 *      batches hold it shared, so the live projector pauses between two batches), read on until
 *      every partition is at least where the live projector is, carry the live outbox over,
 *      rename the schemas and drop the old one, all in one transaction.
 * The live projector then continues from positions the rebuilt tables agree with; anything
 * the rebuild read beyond them is in its dedup table, so it is not applied twice.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "logreader.h"
#include "pg.h"
#include "projection.h"
#include "service.h"

#define REBUILD_BATCH 5000
#define MAX_PARTS 1024
/* Phase 3 gives up when the log brought nothing for LOG_WAIT_S while the live projector is
 * ahead. Its transaction holds the swap lock, which pauses the live projector: a rebuild
 * stopped there (SIGSTOP, a debugger, a terminal's ^Z) would pause it for as long as it stays
 * stopped. PostgreSQL ends a session idle inside a transaction for IDLE_TX_TIMEOUT_S, which
 * releases the lock; a running rebuild is never idle that long (at most LOG_WAIT_S waiting
 * for the log). The stopped one, let run again, finds its session gone and fails; its shadow
 * schema is dropped by the next rebuild. */
#define LOG_WAIT_S 15
#define IDLE_TX_TIMEOUT_S (LOG_WAIT_S + 10)

typedef struct progress {
    const char *name; /* the projection's */
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
        fprintf(stderr, "\rrebuilding %s [%s] %3d%% %lld/%lld events %.0f ev/s", p->name, bar, pct,
                (long long)p->done, (long long)total, rate);
        if (final) {
            fputc('\n', stderr);
        }
    } else {
        fprintf(stderr, "rebuilding %s: %d%% %lld/%lld events %.0f ev/s\n", p->name, pct,
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

/* Next offsets reached per partition of each topic. */
typedef struct reached {
    int64_t next[ES_PROJECTION_MAX_TOPICS][MAX_PARTS];
} reached_t;

/* One rebuild's fixed context. */
typedef struct rebuild {
    const es_projection_t *proj;
    const char *const *topics;
    size_t topic_cnt;
    char shadow[64]; /* <schema>_rebuild */
    char old[64];    /* <schema>_old */
} rebuild_t;

static int topic_index(const rebuild_t *rb, const char *topic)
{
    for (size_t i = 0; i < rb->topic_cnt; i++) {
        if (!strcmp(topic, rb->topics[i])) {
            return (int)i;
        }
    }
    return -1;
}

static void pending_add(const rebuild_t *rb, pending_t *pd, const es_logreader_msg_t *msg, int ti)
{
    es_raw_t *raw = &pd->raws[pd->cnt];
    memset(raw, 0, sizeof(*raw));
    raw->topic = rb->topics[ti];
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

static int exec_or_report(const rebuild_t *rb, PGconn *pg, const char *sql)
{
    char errstr[1024];
    if (es_pg_exec(pg, sql, errstr, sizeof(errstr)) != 0) {
        fprintf(stderr, "%s: rebuild failed: %s\n", rb->proj->program, errstr);
        return -1;
    }
    return 0;
}

/* exec_or_report() of a statement built from a format. */
static int execf_or_report(const rebuild_t *rb, PGconn *pg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int execf_or_report(const rebuild_t *rb, PGconn *pg, const char *fmt, ...)
{
    char sql[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    return exec_or_report(rb, pg, sql);
}

/* The projection's tables belong to its projector's role (es_<schema>: scripts/db-roles.sql)
 * where the cluster has one, the rebuilt ones too, or the live projector could not write them
 * once swapped in: the rebuild acts as that role (its login must be allowed to: the superuser,
 * or a member of it). A cluster without such a role is rebuilt as whoever logged in. */
static int act_as_owner(const rebuild_t *rb, PGconn *pg)
{
    char role[128];
    snprintf(role, sizeof(role), "%s%s", ES_PG_ROLE_PREFIX, rb->proj->schema);
    const char *const param = role;
    char errstr[1024];
    PGresult *res = es_pg_query(pg,
                                "SELECT pg_has_role(current_user, oid, 'MEMBER')::int FROM pg_roles"
                                " WHERE rolname = $1 AND rolname <> current_user",
                                1, &param, NULL, NULL, 0, errstr, sizeof(errstr));
    if (!res) {
        fprintf(stderr, "%s: rebuild failed: %s\n", rb->proj->program, errstr);
        return -1;
    }
    int found = PQntuples(res) == 1, allowed = found && !strcmp(PQgetvalue(res, 0, 0), "1");
    PQclear(res);
    if (found && !allowed) {
        fprintf(stderr,
                "%s: rebuild failed: the tables of %s belong to role %s, which the role "
                "logged in (ES_PG) may not act as: rebuild as the cluster's superuser or a "
                "member of %s\n",
                rb->proj->program, rb->proj->schema, role, role);
        return -1;
    }
    return found ? execf_or_report(rb, pg, "SET ROLE %s", role) : 0;
}

/* Phase 3: under the swap lock, read until every partition is at least where the live
 * projector is, then swap the schemas. Runs inside the caller's transaction. */
static int catch_up_and_swap(const rebuild_t *rb, PGconn *pg, es_logreader_t *lr, es_service_t *svc,
                             pending_t *pd, reached_t *rc, progress_t *prog)
{
    char errstr[1024];
    char sql[256];
    const char *prog_name = rb->proj->program;
    const char *live_schema = rb->proj->schema;
    snprintf(sql, sizeof(sql), "SELECT pg_advisory_xact_lock(%d)", rb->proj->swap_lock);
    if (exec_or_report(rb, pg, sql) != 0) {
        return -1;
    }
    /* no live projection yet (a first run): nothing to catch up with */
    char query[256];
    snprintf(query, sizeof(query), "SELECT to_regclass('%s.positions') IS NOT NULL", live_schema);
    PGresult *exists = es_pg_query(pg, query, 0, NULL, NULL, NULL, 0, errstr, sizeof(errstr));
    if (!exists) {
        fprintf(stderr, "%s: rebuild failed: %s\n", prog_name, errstr);
        return -1;
    }
    int live_exists = PQntuples(exists) == 1 && PQgetvalue(exists, 0, 0)[0] == 't';
    PQclear(exists);
    PGresult *live = NULL;
    if (live_exists) {
        snprintf(query, sizeof(query), "SELECT topic, partition, next_offset FROM %s.positions",
                 live_schema);
        live = es_pg_query(pg, query, 0, NULL, NULL, NULL, 0, errstr, sizeof(errstr));
        if (!live) {
            fprintf(stderr, "%s: rebuild failed: %s\n", prog_name, errstr);
            return -1;
        }
    }
    int64_t idle_since = es_mono_us();
    for (;;) {
        int behind = 0;
        for (int r = 0; live && r < PQntuples(live); r++) {
            int ti = topic_index(rb, PQgetvalue(live, r, 0));
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
            fprintf(stderr, "%s: rebuild failed reading the log: %s\n", prog_name, errstr);
            PQclear(live);
            return -1;
        }
        if (got == 0) {
            if (pending_apply(pd, svc, pg, errstr, sizeof(errstr)) != 0) {
                fprintf(stderr, "%s: rebuild failed: %s\n", prog_name, errstr);
                PQclear(live);
                return -1;
            }
            if (es_mono_us() - idle_since > LOG_WAIT_S * 1000000LL) {
                fprintf(stderr,
                        "%s: rebuild failed: the log does not reach the live projector's "
                        "positions\n",
                        prog_name);
                PQclear(live);
                return -1;
            }
            continue;
        }
        idle_since = es_mono_us();
        int ti = topic_index(rb, msg.topic);
        if (ti < 0 || msg.partition < 0 || msg.partition >= MAX_PARTS) {
            continue;
        }
        pending_add(rb, pd, &msg, ti);
        rc->next[ti][msg.partition] = msg.rec.offset + 1;
        prog->done++;
        if (pd->cnt == REBUILD_BATCH && pending_apply(pd, svc, pg, errstr, sizeof(errstr)) != 0) {
            fprintf(stderr, "%s: rebuild failed: %s\n", prog_name, errstr);
            PQclear(live);
            return -1;
        }
    }
    PQclear(live);
    if (pending_apply(pd, svc, pg, errstr, sizeof(errstr)) != 0) {
        fprintf(stderr, "%s: rebuild failed: %s\n", prog_name, errstr);
        return -1;
    }
    if (live_exists) {
        /* records the live projector emitted (dead letters) and has not yet published keep
         * their seq, so its relay's bookkeeping stays right; the marks of the dead letters it
         * wrote stay (the rebuild writes none), so a record read again is not dead-lettered
         * twice */
        if (execf_or_report(rb, pg, "INSERT INTO %s.outbox SELECT * FROM %s.outbox", rb->shadow,
                            live_schema) != 0 ||
            execf_or_report(rb, pg,
                            "INSERT INTO %s.processed (event_id, part, at_ms) SELECT event_id, "
                            "part, at_ms FROM %s.processed ON CONFLICT DO NOTHING",
                            rb->shadow, live_schema) != 0 ||
            execf_or_report(rb, pg,
                            "SELECT setval(pg_get_serial_sequence('%s.outbox', 'seq'), "
                            "greatest(1, (SELECT last_value FROM %s.outbox_seq_seq)))",
                            rb->shadow, live_schema) != 0 ||
            execf_or_report(rb, pg, "DROP SCHEMA IF EXISTS %s CASCADE", rb->old) != 0 ||
            execf_or_report(rb, pg, "ALTER SCHEMA %s RENAME TO %s", live_schema, rb->old) != 0) {
            return -1;
        }
    }
    if (execf_or_report(rb, pg, "ALTER SCHEMA %s RENAME TO %s", rb->shadow, live_schema) != 0 ||
        (live_exists && execf_or_report(rb, pg, "DROP SCHEMA %s CASCADE", rb->old) != 0)) {
        return -1;
    }
    return 0;
}

/* Fill `def` for `proj` writing into `schema` (borrowed): the projection's own part, then
 * what every projection shares (projection.h). */
static void projection_def_init(const es_projection_t *proj, es_service_def_t *def,
                                const char *schema)
{
    static char begin_sql[96];
    snprintf(begin_sql, sizeof(begin_sql), "SELECT pg_advisory_xact_lock_shared(%d)",
             proj->swap_lock);
    memset(def, 0, sizeof(*def));
    proj->def_init(def);
    def->schema = schema;
    def->topics = proj->topics;
    def->dlq_topic = "projections.dlq";
    def->begin_sql = begin_sql;
    def->max_batch = 5000;
    def->idempotent = 1;
    def->async_commit = 1;
}

int es_projection_rebuild(es_config_t *cfg, const es_projection_t *proj)
{
    char errstr[1024];
    int rc = -1;
    const char *prog_name = proj->program;
    rebuild_t rb = {.proj = proj, .topics = proj->topics, .topic_cnt = 0};
    while (rb.topic_cnt < ES_PROJECTION_MAX_TOPICS && proj->topics[rb.topic_cnt]) {
        rb.topic_cnt++;
    }
    snprintf(rb.shadow, sizeof(rb.shadow), "%s_rebuild", proj->schema);
    snprintf(rb.old, sizeof(rb.old), "%s_old", proj->schema);
    es_codec_t *codec = NULL;
    PGconn *pg = NULL;
    es_service_t *svc = NULL;
    es_logreader_t *lr = NULL;
    pending_t *pd = calloc(1, sizeof(*pd));
    reached_t *reached = calloc(1, sizeof(*reached));
    es_service_def_t def;
    projection_def_init(proj, &def, rb.shadow);
    if (!pd || !reached) {
        fprintf(stderr, "%s: out of memory\n", prog_name);
        goto out;
    }
    es_buf_init(&pd->arena);
    codec = es_codec_new(errstr, sizeof(errstr));
    const char *conninfo = codec ? es_config_pg(cfg, errstr, sizeof(errstr)) : NULL;
    if (!conninfo || !(pg = es_pg_connect(conninfo, 10, errstr, sizeof(errstr)))) {
        fprintf(stderr, "%s: %s\n", prog_name, errstr);
        goto out;
    }
    if (act_as_owner(&rb, pg) != 0 ||
        execf_or_report(&rb, pg, "SET idle_in_transaction_session_timeout = '%ds'",
                        IDLE_TX_TIMEOUT_S) != 0 ||
        execf_or_report(&rb, pg, "DROP SCHEMA IF EXISTS %s CASCADE", rb.shadow) != 0) {
        goto out;
    }
    if (es_service_create_tables(&def, pg, errstr, sizeof(errstr)) != 0) {
        fprintf(stderr, "%s: %s\n", prog_name, errstr);
        goto out;
    }
    if (execf_or_report(&rb, pg, "SET search_path TO %s", rb.shadow) != 0) {
        goto out;
    }
    svc = es_service_offline_new(&def, codec);
    lr = es_logreader_new(cfg, rb.topics, rb.topic_cnt, 0, 0, 1, errstr, sizeof(errstr));
    if (!svc || !lr) {
        fprintf(stderr, "%s: could not read the log: %s\n", prog_name, errstr);
        goto out;
    }
    progress_t prog = {.name = proj->name,
                       .done = 0,
                       .total = es_logreader_total(lr),
                       .started_us = es_mono_us(),
                       .last_us = 0,
                       .tty = isatty(2)};
    /* phase 2: what the log held when we started, in committed batches */
    while (prog.done < prog.total) {
        es_logreader_msg_t msg;
        int got = es_logreader_next(lr, &msg, 100, errstr, sizeof(errstr));
        if (got < 0) {
            fprintf(stderr, "\n%s: rebuild failed reading the log: %s\n", prog_name, errstr);
            goto out;
        }
        if (got > 0) {
            int ti = topic_index(&rb, msg.topic);
            if (ti >= 0 && msg.partition >= 0 && msg.partition < MAX_PARTS) {
                pending_add(&rb, pd, &msg, ti);
                reached->next[ti][msg.partition] = msg.rec.offset + 1;
            }
            prog.done++;
        }
        if (pd->cnt == REBUILD_BATCH || (got == 0 && pd->cnt)) {
            if (exec_or_report(&rb, pg, "BEGIN") != 0 ||
                pending_apply(pd, svc, pg, errstr, sizeof(errstr)) != 0) {
                fprintf(stderr, "\n%s: rebuild failed: %s\n", prog_name, errstr);
                goto out;
            }
            if (exec_or_report(&rb, pg, "COMMIT") != 0) {
                goto out;
            }
        }
        progress_draw(&prog, 0);
    }
    /* phase 3 */
    if (exec_or_report(&rb, pg, "BEGIN") != 0) {
        goto out;
    }
    if (catch_up_and_swap(&rb, pg, lr, svc, pd, reached, &prog) != 0) {
        char tmp[256];
        es_pg_exec(pg, "ROLLBACK", tmp, sizeof(tmp));
        goto out;
    }
    if (exec_or_report(&rb, pg, "COMMIT") != 0) {
        goto out;
    }
    progress_draw(&prog, 1);
    fprintf(stderr, "rebuilt projection \"%s\" from %lld events and swapped it in\n", proj->name,
            (long long)prog.done);
    rc = 0;
out:
    if (rc != 0 && pg && PQstatus(pg) == CONNECTION_BAD) {
        /* libpq reports "server closed the connection unexpectedly" whatever the reason */
        fprintf(stderr,
                "%s: the rebuild lost its PostgreSQL session (PostgreSQL ends one left idle "
                "inside a transaction for %d s, as when a rebuild is stopped while it holds the "
                "swap lock); nothing was swapped in, and the next rebuild starts over\n",
                prog_name, IDLE_TX_TIMEOUT_S);
    }
    if (rc != 0 && pg) {
        char tmp[256];
        char sql[128];
        snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS %s CASCADE", rb.shadow);
        es_pg_exec(pg, sql, tmp, sizeof(tmp));
    }
    es_logreader_destroy(lr);
    es_service_destroy(svc);
    PQfinish(pg);
    es_pg_forget_prepared();
    es_codec_destroy(codec);
    proj->def_fini(&def);
    if (pd) {
        es_buf_fini(&pd->arena);
    }
    free(pd);
    free(reached);
    return rc;
}

/* Parse the common flags of rebuild mode (-d, -b, -X) into cfg. Returns 0 or 2 (usage). */
static int rebuild_flags(const es_projection_t *proj, int argc, char **argv, es_config_t *cfg)
{
    char errstr[512];
    for (int k = 1; k < argc; k++) {
        if (!strcmp(argv[k], "-d") && k + 1 < argc) {
            snprintf(cfg->data_dir, sizeof(cfg->data_dir), "%s", argv[++k]);
        } else if (!strcmp(argv[k], "-b") && k + 1 < argc) {
            snprintf(cfg->brokers, sizeof(cfg->brokers), "%s", argv[++k]);
        } else if (!strcmp(argv[k], "-X") && k + 1 < argc) {
            if (es_config_add_prop(cfg, argv[++k], errstr, sizeof(errstr)) != 0) {
                fprintf(stderr, "%s: %s\n", proj->program, errstr);
                return 2;
            }
        } else {
            fprintf(stderr, "%s: unexpected argument \"%s\"\n", proj->program, argv[k]);
            return 2;
        }
    }
    return 0;
}

int es_projection_main(int argc, char **argv, const es_projection_t *proj)
{
    /* <program> --rebuild <projection> [common flags] */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--rebuild") != 0) {
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "%s: --rebuild needs a projection name (%s)\n", proj->program,
                    proj->name);
            return 2;
        }
        if (strcmp(argv[i + 1], proj->name) != 0) {
            fprintf(stderr, "%s: unknown projection \"%s\" (this program keeps \"%s\")\n",
                    proj->program, argv[i + 1], proj->name);
            return 2;
        }
        /* drop the two words and parse the rest like any service */
        for (int k = i; k + 2 <= argc; k++) {
            argv[k] = argv[k + 2];
        }
        argc -= 2;
        es_log_init("rebuild");
        es_config_t cfg;
        char errstr[512];
        if (es_config_init(&cfg, errstr, sizeof(errstr)) != 0) {
            fprintf(stderr, "%s: %s\n", proj->program, errstr);
            return 2;
        }
        int urc = rebuild_flags(proj, argc, argv, &cfg);
        if (urc != 0) {
            return urc;
        }
        return es_projection_rebuild(&cfg, proj) == 0 ? 0 : 1;
    }
    es_service_def_t def;
    projection_def_init(proj, &def, proj->schema);
    int rc = es_service_main(argc, argv, &def, proj->about);
    proj->def_fini(&def);
    return rc;
}
