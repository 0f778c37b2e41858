/*
 * lag.c: `esctl lag`, how far every consumer is behind the log.
 *
 * The services, projectors and the saga coordinator keep their positions in PostgreSQL, in
 * the transaction that applies their effects (<schema>.positions, lib/batch.c), never in
 * Kafka's group offsets: Kafka's own tools cannot tell their lag. This command reads every
 * such table in one query, asks the cluster for each partition's end (its high watermark)
 * and prints, per consumer and topic, the stored position, the log's end, the records still
 * to apply, and how long ago the consumer last stored a position there.
 *
 * A consumer is named by its schema (projections: es-projector, shop_views:
 * es-shop-projector, any other: es-<schema>). A partition of a topic it reads with no row yet
 * counts as read from offset 0: a consumer starts there (the journal holds what the broker
 * no longer does).
 */
#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "esctl.h"
#include "pg.h"

#define LAG_WATERMARK_TIMEOUT_MS 5000
#define LAG_MAX_FILTERS 16

/* One topic's partitions and their ends (-1: the cluster could not tell). */
typedef struct lag_topic {
    const char *name; /* borrowed from the positions' result */
    int partitions;   /* -1: the cluster does not know the topic */
    int64_t *end;
} lag_topic_t;

typedef struct lag_opts {
    int partitions, as_json;
    int64_t max_lag; /* -1: no limit */
    const char *only[LAG_MAX_FILTERS];
    int only_cnt;
} lag_opts_t;

static void help(FILE *out)
{
    fprintf(out,
            "usage: esctl lag [--consumer NAME]... [--partitions] [--json] [--max-lag N]\n"
            "\n"
            "How far every consumer (service, projector, saga coordinator) is behind the log.\n"
            "Each keeps its position in PostgreSQL with its effects, not in Kafka's group\n"
            "offsets, so this is where its lag shows. Per consumer and topic:\n"
            "  POSITION      the next offsets it will apply, summed over the partitions\n"
            "  LOG END       the partitions' ends in Kafka (high watermarks), summed\n"
            "  LAG           records written and not yet applied\n"
            "  LAST APPLIED  since it last stored a position there (an idle consumer's grows)\n"
            "and, under the table, the consumers whose outbox holds transactions committed\n"
            "and not yet published (UNSENT): their events are not in the log yet, so the lag\n"
            "of those who read them cannot show them (JSON: unsent_transactions, the same on\n"
            "each line of a consumer).\n"
            "A consumer is named by its PostgreSQL schema: projections is es-projector,\n"
            "shop_views es-shop-projector, any other es-<schema>.\n"
            "\n"
            "  -c, --consumer NAME  only this consumer (repeatable)\n"
            "  -p, --partitions     one line per partition\n"
            "  -j, --json           JSON lines instead of the table\n"
            "  -m, --max-lag N      exit status 3 when some lag is above N, or some outbox\n"
            "                       holds unsent events (a script can wait until everything\n"
            "                       is published and applied: --max-lag 0)\n"
            "\n");
    esctl_common_help(out);
    fprintf(out,
            "\nenvironment: ES_PG (the platform's PostgreSQL; default: $ES_DATA/pg.conninfo)\n"
            "exit status: 0 ok, 1 runtime failure (also when some partition's end could not be\n"
            "read: it shows as ?), 2 usage error, 3 a lag above --max-lag, or unsent events\n");
}

static int parse_args(esctl_t *ctx, int argc, char **argv, lag_opts_t *o)
{
    static const struct option longopts[] = {ESCTL_COMMON_LONG,
                                             {"consumer", required_argument, NULL, 'c'},
                                             {"partitions", no_argument, NULL, 'p'},
                                             {"json", no_argument, NULL, 'j'},
                                             {"max-lag", required_argument, NULL, 'm'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, ESCTL_COMMON_SHORT "c:pjm:h", longopts, NULL)) != -1) {
        char *end = NULL;
        switch (opt) {
        case 'h':
            help(stdout);
            return 1;
        case 'c':
            if (o->only_cnt == LAG_MAX_FILTERS) {
                esctl_err(ctx, "at most %d --consumer flags", LAG_MAX_FILTERS);
                return -1;
            }
            o->only[o->only_cnt++] = optarg;
            break;
        case 'p':
            o->partitions = 1;
            break;
        case 'j':
            o->as_json = 1;
            break;
        case 'm':
            o->max_lag = strtoll(optarg, &end, 10);
            if (!*optarg || *end || o->max_lag < 0) {
                esctl_err(ctx, "invalid --max-lag \"%s\" (a number of records, 0 or more)", optarg);
                return -1;
            }
            break;
        default:
            if (esctl_other_opt(ctx, opt, optarg, argv) != 0) {
                return -1;
            }
        }
    }
    if (optind < argc) {
        esctl_err(ctx, "unexpected argument \"%s\" (try \"esctl lag --help\")", argv[optind]);
        return -1;
    }
    return 0;
}

/* One statement over every schema `list_sql` names (one column): for each, each[0], the schema
 * as a literal, each[1], the schema as an identifier, each[2]; joined by UNION ALL, then
 * `tail`. Returns its result (an empty one when no schema is named, *none set), or NULL after
 * reporting. */
static PGresult *union_over_schemas(esctl_t *ctx, PGconn *pg, const char *list_sql,
                                    const char *const each[3], const char *tail, int *none)
{
    char errstr[1024];
    PGresult *schemas = es_pg_query(pg, list_sql, 0, NULL, NULL, NULL, 0, errstr, sizeof(errstr));
    if (!schemas) {
        esctl_err(ctx, "%s", errstr);
        return NULL;
    }
    es_buf_t sql;
    es_buf_init(&sql);
    int rc = 0;
    for (int i = 0; i < PQntuples(schemas) && rc == 0; i++) {
        const char *s = PQgetvalue(schemas, i, 0);
        char *ident = PQescapeIdentifier(pg, s, strlen(s));
        char *lit = PQescapeLiteral(pg, s, strlen(s));
        rc = !ident || !lit ||
                     es_buf_printf(&sql, "%s%s%s%s%s%s", sql.len ? " UNION ALL " : "", each[0], lit,
                                   each[1], ident, each[2]) != 0
                 ? -1
                 : 0;
        PQfreemem(ident);
        PQfreemem(lit);
    }
    *none = PQntuples(schemas) == 0;
    PQclear(schemas);
    if (*none) { /* a statement that names nothing: an empty result of the same shape */
        rc = rc ? rc : es_buf_puts(&sql, "SELECT NULL::text WHERE false");
        tail = "";
    }
    PGresult *res = NULL;
    if (rc == 0 && es_buf_puts(&sql, tail) == 0 && es_buf_append(&sql, "", 1) == 0) {
        res =
            es_pg_query(pg, (const char *)sql.data, 0, NULL, NULL, NULL, 0, errstr, sizeof(errstr));
        if (!res) {
            esctl_err(ctx, "%s", errstr);
        }
    } else {
        esctl_err(ctx, "out of memory");
    }
    es_buf_fini(&sql);
    return res;
}

/* The schemas with a positions table (a rebuild's shadow and old schemas left out). */
#define LAG_CONSUMER_SCHEMAS                                                                       \
    "SELECT n.nspname FROM pg_class r JOIN pg_namespace n ON n.oid = r.relnamespace JOIN "         \
    "pg_attribute a ON a.attrelid = r.oid AND a.attname = 'next_offset' AND NOT a.attisdropped "   \
    "WHERE r.relname = 'positions' AND r.relkind IN ('r', 'p') AND n.nspname !~ "                  \
    "'_(rebuild|old)$'"

/* Every consumer's stored positions, ordered by consumer, topic and partition, in one
 * statement. Returns the result, or NULL after reporting. */
static PGresult *read_positions(esctl_t *ctx, PGconn *pg)
{
    static const char *const each[3] = {"SELECT ",
                                        "::text, topic, partition, next_offset, extract(epoch "
                                        "FROM clock_timestamp() - updated_at)::float8 FROM ",
                                        ".positions"};
    int none = 0;
    PGresult *res = union_over_schemas(ctx, pg, LAG_CONSUMER_SCHEMAS " ORDER BY 1", each,
                                       " ORDER BY 1, 2, 3", &none);
    if (res && none) {
        PQclear(res);
        esctl_err(ctx,
                  "no consumer's positions table in this database (is the platform up? make up)");
        return NULL;
    }
    return res;
}

/* Each consumer's outbox rows: transactions committed whose events are not all in Kafka yet
 * (lib/relay.c deletes a row once Kafka acknowledged every record in it). Rows (schema, count)
 * for the consumers that have an outbox, or NULL after reporting. */
static PGresult *read_unsent(esctl_t *ctx, PGconn *pg)
{
    static const char *const each[3] = {"SELECT ", "::text, count(*) FROM ", ".outbox"};
    int none = 0;
    return union_over_schemas(ctx, pg,
                              "SELECT s.nspname FROM (" LAG_CONSUMER_SCHEMAS
                              ") s WHERE to_regclass(quote_ident(s.nspname) || '.outbox') IS "
                              "NOT NULL ORDER BY 1",
                              each, "", &none);
}

/* The outbox rows of `consumer` in `unsent` (read_unsent), 0 when it has no outbox. */
static int64_t unsent_of(PGresult *unsent, const char *consumer)
{
    for (int i = 0; i < PQntuples(unsent); i++) {
        if (!strcmp(PQgetvalue(unsent, i, 0), consumer)) {
            return strtoll(PQgetvalue(unsent, i, 1), NULL, 10);
        }
    }
    return 0;
}

static lag_topic_t *topic_find(lag_topic_t *topics, size_t cnt, const char *name)
{
    for (size_t i = 0; i < cnt; i++) {
        if (!strcmp(topics[i].name, name)) {
            return &topics[i];
        }
    }
    return NULL;
}

/* Fill every topic's partition count and ends from the cluster. Returns 0; 1 when some end
 * could not be read (reported; it shows as "?"); -1 after reporting (the broker out of
 * reach). */
static int read_ends(esctl_t *ctx, lag_topic_t *topics, size_t cnt)
{
    esctl_prop_default(ctx, "log_level", "2"); /* our one line says it better */
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_t *rk = esctl_broker_open(ctx, "esctl-lag", ESCTL_CONNECT_TIMEOUT_MS, &md);
    if (!rk) {
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < cnt && rc >= 0; i++) {
        lag_topic_t *t = &topics[i];
        t->partitions = -1;
        for (int k = 0; k < md->topic_cnt; k++) {
            if (!strcmp(md->topics[k].topic, t->name) && !md->topics[k].err) {
                t->partitions = md->topics[k].partition_cnt;
            }
        }
        if (t->partitions <= 0) {
            esctl_err(ctx, "topic %s is not in the cluster's metadata", t->name);
            rc = 1;
            continue;
        }
        if (!(t->end = calloc((size_t)t->partitions, sizeof(*t->end)))) {
            esctl_err(ctx, "out of memory");
            rc = -1;
            break;
        }
        for (int p = 0; p < t->partitions; p++) {
            int64_t lo = 0, hi = 0;
            rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(rk, t->name, p, &lo, &hi,
                                                                       LAG_WATERMARK_TIMEOUT_MS);
            t->end[p] = err ? -1 : hi;
            if (err) {
                esctl_err(ctx, "could not read the end of %s [%d]: %s", t->name, p,
                          rd_kafka_err2str(err));
                rc = 1;
            }
        }
    }
    rd_kafka_metadata_destroy(md);
    rd_kafka_destroy(rk);
    return rc;
}

/* What one output line sums up: a consumer's topic, or one partition of it. */
typedef struct lag_line {
    const char *consumer, *topic;
    int partition;  /* -1: the whole topic */
    int partitions; /* -1: unknown to the cluster */
    int64_t position, end, lag;
    int end_known;
    double ago_s;   /* -1: never stored */
    int64_t unsent; /* the consumer's outbox rows (the same on each of its lines) */
} lag_line_t;

static void ago_text(double s, char *out, size_t size)
{
    if (s < 0) {
        snprintf(out, size, "never");
    } else if (s < 60) {
        snprintf(out, size, "%.1f s ago", s);
    } else if (s < 3600) {
        snprintf(out, size, "%.0f min ago", s / 60);
    } else {
        snprintf(out, size, "%.1f h ago", s / 3600);
    }
}

static int line_print(es_buf_t *out, const lag_line_t *l, const lag_opts_t *o)
{
    if (o->as_json) {
        json_t *j = json_pack("{s:s, s:s}", "consumer", l->consumer, "topic", l->topic);
        if (!j) {
            return -1;
        }
        if (l->partition >= 0) {
            json_object_set_new(j, "partition", json_integer(l->partition));
        } else {
            json_object_set_new(j, "partitions",
                                l->partitions >= 0 ? json_integer(l->partitions) : json_null());
        }
        json_object_set_new(j, "position", json_integer(l->position));
        json_object_set_new(j, "log_end", l->end_known ? json_integer(l->end) : json_null());
        json_object_set_new(j, "lag", l->end_known ? json_integer(l->lag) : json_null());
        json_object_set_new(j, "last_applied_ms_ago",
                            l->ago_s >= 0 ? json_integer((json_int_t)(l->ago_s * 1000))
                                          : json_null());
        json_object_set_new(j, "unsent_transactions", json_integer(l->unsent));
        char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(j);
        if (!s) {
            return -1;
        }
        int rc = es_buf_printf(out, "%s\n", s);
        free(s);
        return rc;
    }
    char parts[16], end[24], lag[24], ago[32];
    if (l->partition >= 0) {
        snprintf(parts, sizeof(parts), "%d", l->partition);
    } else if (l->partitions >= 0) {
        snprintf(parts, sizeof(parts), "%d", l->partitions);
    } else {
        snprintf(parts, sizeof(parts), "?");
    }
    snprintf(end, sizeof(end), l->end_known ? "%lld" : "?", (long long)l->end);
    snprintf(lag, sizeof(lag), l->end_known ? "%lld" : "?", (long long)l->lag);
    ago_text(l->ago_s, ago, sizeof(ago));
    return es_buf_printf(out, "%-18s %-22s %5s %12lld %12s %10s  %s\n", l->consumer, l->topic,
                         parts, (long long)l->position, end, lag, ago);
}

/* Add partition `p`'s figures (stored position `next`, -1 if none, stored `ago` s ago) to
 * `l`. */
static void line_add(lag_line_t *l, const lag_topic_t *t, int p, int64_t next, double ago)
{
    int64_t pos = next < 0 ? 0 : next;
    l->position += pos;
    int64_t end = t->end && p < t->partitions ? t->end[p] : -1;
    if (end < 0) {
        l->end_known = 0;
    } else {
        l->end += end;
        l->lag += end > pos ? end - pos : 0;
    }
    if (next >= 0 && (l->ago_s < 0 || ago < l->ago_s)) {
        l->ago_s = ago;
    }
}

static int selected(const lag_opts_t *o, const char *consumer)
{
    if (o->only_cnt == 0) {
        return 1;
    }
    for (int i = 0; i < o->only_cnt; i++) {
        if (!strcmp(o->only[i], consumer)) {
            return 1;
        }
    }
    return 0;
}

/* Print one consumer's topic (rows[from, to) of the result, all of that topic): a line, or a
 * line per partition. Sets *over when a lag is above --max-lag. */
static int topic_print(es_buf_t *out, PGresult *res, int from, int to, const lag_topic_t *t,
                       int64_t unsent, const lag_opts_t *o, int *over)
{
    lag_line_t sum = {.consumer = PQgetvalue(res, from, 0),
                      .topic = t->name,
                      .partition = -1,
                      .partitions = t->partitions,
                      .end_known = t->partitions > 0,
                      .ago_s = -1,
                      .unsent = unsent};
    int nparts = t->partitions;
    if (nparts < 0) { /* unknown to the cluster: the partitions it has rows for */
        nparts = atoi(PQgetvalue(res, to - 1, 2)) + 1;
    }
    int r = from;
    for (int p = 0; p < nparts; p++) {
        int64_t next = -1;
        double ago = -1;
        while (r < to && atoi(PQgetvalue(res, r, 2)) < p) {
            r++;
        }
        if (r < to && atoi(PQgetvalue(res, r, 2)) == p) {
            next = strtoll(PQgetvalue(res, r, 3), NULL, 10);
            ago = strtod(PQgetvalue(res, r, 4), NULL);
        }
        if (o->partitions) {
            lag_line_t one = {.consumer = sum.consumer,
                              .topic = t->name,
                              .partition = p,
                              .partitions = t->partitions,
                              .end_known = t->partitions > 0,
                              .ago_s = -1,
                              .unsent = unsent};
            line_add(&one, t, p, next, ago);
            if (one.end_known && o->max_lag >= 0 && one.lag > o->max_lag) {
                *over = 1;
            }
            if (line_print(out, &one, o) != 0) {
                return -1;
            }
        }
        line_add(&sum, t, p, next, ago);
    }
    if (sum.end_known && o->max_lag >= 0 && sum.lag > o->max_lag) {
        *over = 1;
    }
    return o->partitions ? 0 : line_print(out, &sum, o);
}

int esctl_lag_main(esctl_t *ctx, int argc, char **argv)
{
    lag_opts_t o = {.max_lag = -1};
    int prc = parse_args(ctx, argc, argv, &o);
    if (prc != 0) {
        return prc > 0 ? ESCTL_OK : ESCTL_USAGE;
    }
    char errstr[1024];
    const char *conninfo = es_config_pg(&ctx->cfg, errstr, sizeof(errstr));
    PGconn *pg = conninfo ? es_pg_connect(conninfo, 0, errstr, sizeof(errstr)) : NULL;
    if (!pg) {
        esctl_err(ctx, "%s", errstr);
        return ESCTL_FAIL;
    }
    PGresult *res = read_positions(ctx, pg);
    PGresult *unsent = res ? read_unsent(ctx, pg) : NULL;
    PQfinish(pg);
    if (!unsent) {
        PQclear(res);
        return ESCTL_FAIL;
    }
    int rc = ESCTL_FAIL, over = 0;
    int n = PQntuples(res);
    for (int f = 0; f < o.only_cnt; f++) {
        int known = 0;
        for (int i = 0; i < n && !known; i++) {
            known = !strcmp(PQgetvalue(res, i, 0), o.only[f]);
        }
        if (!known) {
            es_buf_t names;
            es_buf_init(&names);
            for (int i = 0; i < n; i++) {
                if (i == 0 || strcmp(PQgetvalue(res, i, 0), PQgetvalue(res, i - 1, 0)) != 0) {
                    es_buf_printf(&names, "%s%s", names.len ? ", " : "", PQgetvalue(res, i, 0));
                }
            }
            es_buf_append(&names, "", 1);
            esctl_err(ctx, "no consumer \"%s\" has stored a position (known: %s)", o.only[f],
                      names.data ? (const char *)names.data : "");
            es_buf_fini(&names);
            PQclear(res);
            PQclear(unsent);
            return ESCTL_USAGE;
        }
    }
    /* the topics the selected consumers read */
    lag_topic_t *topics = calloc((size_t)n + 1, sizeof(*topics));
    size_t tcnt = 0;
    es_buf_t out;
    es_buf_init(&out);
    if (!topics) {
        esctl_err(ctx, "out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        const char *name = PQgetvalue(res, i, 1);
        if (selected(&o, PQgetvalue(res, i, 0)) && !topic_find(topics, tcnt, name)) {
            topics[tcnt++].name = name;
        }
    }
    int partial = read_ends(ctx, topics, tcnt);
    if (partial < 0) {
        goto done;
    }
    if (!o.as_json) {
        es_buf_printf(&out, "%-18s %-22s %5s %12s %12s %10s  %s\n", "CONSUMER", "TOPIC",
                      o.partitions ? "PART" : "PARTS", "POSITION", "LOG END", "LAG",
                      "LAST APPLIED");
    }
    for (int i = 0; i < n;) {
        int j = i + 1;
        while (j < n && !strcmp(PQgetvalue(res, j, 0), PQgetvalue(res, i, 0)) &&
               !strcmp(PQgetvalue(res, j, 1), PQgetvalue(res, i, 1))) {
            j++;
        }
        if (selected(&o, PQgetvalue(res, i, 0)) &&
            topic_print(&out, res, i, j, topic_find(topics, tcnt, PQgetvalue(res, i, 1)),
                        unsent_of(unsent, PQgetvalue(res, i, 0)), &o, &over) != 0) {
            esctl_err(ctx, "out of memory");
            goto done;
        }
        i = j;
    }
    if (n == 0 && !o.as_json) {
        es_buf_puts(&out, "(none: no consumer has applied a record yet)\n");
    }
    /* events committed and not yet in Kafka: their followers' lag cannot show them yet */
    int unsent_listed = 0;
    for (int i = 0; i < PQntuples(unsent); i++) {
        const char *consumer = PQgetvalue(unsent, i, 0);
        int64_t rows = strtoll(PQgetvalue(unsent, i, 1), NULL, 10);
        if (rows > 0 && selected(&o, consumer)) {
            over |= o.max_lag >= 0;
            if (!o.as_json) {
                es_buf_printf(&out, "%s%s %lld transaction%s",
                              unsent_listed++ ? ", " : "\nUNSENT (committed, not yet in Kafka): ",
                              consumer, (long long)rows, rows == 1 ? "" : "s");
            }
        }
    }
    if (unsent_listed) {
        es_buf_puts(&out, "\n");
    }
    if (fwrite(out.data, 1, out.len, stdout) != out.len || fflush(stdout) != 0) {
        esctl_err(ctx, "could not write the output");
        goto done;
    }
    rc = partial ? ESCTL_FAIL : over ? ESCTL_BEHIND : ESCTL_OK;
done:
    for (size_t i = 0; topics && i < tcnt; i++) {
        free(topics[i].end);
    }
    free(topics);
    es_buf_fini(&out);
    PQclear(res);
    PQclear(unsent);
    return rc;
}
