/*
 * caught_up.c: the group's caught-up time (caught_up.h), in one statement: this instance's
 * rows are upserted, and the oldest time is taken over its new rows and the others' rows.
 */
#include "caught_up.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "pg.h"

/* A text array literal of topic names (Kafka's: letters, digits, '.', '_', '-'). */
static int topics_literal(es_buf_t *b, const char *const *topics)
{
    int rc = es_buf_puts(b, "{");
    for (size_t i = 0; rc == 0 && topics[i]; i++) {
        rc = es_buf_printf(b, "%s\"%s\"", i ? "," : "", topics[i]);
    }
    return rc == 0 ? es_buf_append(b, "}", 2) : rc;
}

int es_caught_up_mark(PGconn *pg, const rd_kafka_topic_partition_list_t *mine,
                      const char *const *topics, int total, es_caught_up_t *out, char *errstr,
                      size_t errstr_size)
{
    memset(out, 0, sizeof(*out));
    out->total = total;
    es_buf_t mt, mp, all;
    es_buf_init(&mt);
    es_buf_init(&mp);
    es_buf_init(&all);
    int rc = es_buf_puts(&mt, "{") | es_buf_puts(&mp, "{");
    for (int i = 0; rc == 0 && i < mine->cnt; i++) {
        const rd_kafka_topic_partition_t *p = &mine->elems[i];
        rc = es_buf_printf(&mt, "%s\"%s\"", i ? "," : "", p->topic) |
             es_buf_printf(&mp, "%s%d", i ? "," : "", (int)p->partition);
    }
    rc |= es_buf_append(&mt, "}", 2) | es_buf_append(&mp, "}", 2);
    rc |= topics_literal(&all, topics);
    if (rc != 0) {
        es_buf_fini(&mt);
        es_buf_fini(&mp);
        es_buf_fini(&all);
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    char tot[16];
    snprintf(tot, sizeof(tot), "%d", total > 0 ? total : INT32_MAX); /* not known: never all */
    const char *vals[4] = {(const char *)mt.data, (const char *)mp.data, (const char *)all.data,
                           tot};
    /* the statement's snapshot does not see its own upsert: this instance's partitions count
     * with their new time, the others' with what their owners last wrote */
    PGresult *res = es_pg_query(
        pg,
        "WITH mine AS (INSERT INTO caught_up (topic, partition, at) SELECT t, p, now() FROM "
        "unnest($1::text[], $2::int[]) AS u(t, p) ON CONFLICT (topic, partition) DO UPDATE SET "
        "at = EXCLUDED.at RETURNING topic, partition, at), "
        "every AS (SELECT topic, partition, at FROM mine UNION ALL SELECT c.topic, c.partition, "
        "c.at FROM caught_up c WHERE NOT EXISTS (SELECT 1 FROM mine m WHERE m.topic = c.topic "
        "AND m.partition = c.partition)) "
        "SELECT CASE WHEN count(*) >= $4::int THEN min(at)::text END, count(*), "
        "coalesce((extract(epoch FROM now() - min(at)) * 1000)::bigint, 0), "
        "coalesce((array_agg(topic || '/' || partition ORDER BY at))[1], '') "
        "FROM every WHERE topic = ANY($3::text[])",
        4, vals, NULL, NULL, 0, errstr, errstr_size);
    es_buf_fini(&mt);
    es_buf_fini(&mp);
    es_buf_fini(&all);
    if (!res) {
        return -1;
    }
    int known = PQntuples(res) == 1 && !PQgetisnull(res, 0, 0);
    if (PQntuples(res) == 1) {
        snprintf(out->at, sizeof(out->at), "%s", known ? PQgetvalue(res, 0, 0) : "");
        out->rows = atoi(PQgetvalue(res, 0, 1));
        out->lag_ms = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
        snprintf(out->oldest, sizeof(out->oldest), "%s", PQgetvalue(res, 0, 3));
    }
    PQclear(res);
    return known;
}
