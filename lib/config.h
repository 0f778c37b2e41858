/*
 * config.h: where every program finds the platform, with one precedence everywhere:
 * defaults < environment < flags (flags are applied by each main() through the setters).
 *
 *   ES_DATA           data folder                    default: ./.data
 *   KAFKA_BROKERS     bootstrap servers              default: contents of $ES_DATA/broker.addr
 *   ES_PG             libpq connection string        default: contents of $ES_DATA/pg.conninfo,
 *                     logged in as the program's own role (es_config_set_pg_role)
 *   ES_PARTITIONS     partitions per topic           default: 6
 *   ES_KAFKA_PROPS    extra librdkafka properties,   e.g.
 * "security.protocol=SASL_SSL,sasl.mechanism=PLAIN" comma separated (each -X prop=val flag adds one
 * more)
 *   ES_DEDUP_WINDOW   seconds within which a copy of a record is recognised (dedup.h)
 *                                                    default: 604800 (7 days)
 *   ES_BACKGROUND_NICE  nice value of the saga coordinator and of its local PostgreSQL
 *                     backend (nice.h)              default: 0; the dev stack sets 19
 */
#ifndef ES_CONFIG_H
#define ES_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define ES_CONFIG_MAX_PROPS 32

typedef struct es_config {
    char data_dir[1024];
    char brokers[1024];     /* empty until resolved */
    int brokers_from_file;  /* brokers came from <data_dir>/broker.addr: the dev stack's */
    char pg_conninfo[1024]; /* empty until resolved */
    char pg_role[64];       /* the program's PostgreSQL role on the dev stack; empty: the file's */
    int partitions;
    int64_t dedup_window_ms;
    int batch_linger_ms; /* ES_BATCH_LINGER_MS: see the loop in service.c; 0: never */
    int background_nice; /* ES_BACKGROUND_NICE: a background service's nice value (nice.h); 0 */
    size_t prop_cnt;
    char prop_names[ES_CONFIG_MAX_PROPS][128];
    char prop_values[ES_CONFIG_MAX_PROPS][512];
} es_config_t;

/* Fill `cfg` (caller storage) with the defaults, then the environment. Returns 0, or -1 with
 * a message in errstr (e.g. a malformed ES_KAFKA_PROPS). */
int es_config_init(es_config_t *cfg, char *errstr, size_t errstr_size);

/* Add one librdkafka property given as "name=value" (a -X flag). Returns 0 or -1. */
int es_config_add_prop(es_config_t *cfg, const char *name_eq_value, char *errstr,
                       size_t errstr_size);

/* Resolve the bootstrap servers: KAFKA_BROKERS, -b, or the file the dev broker publishes.
 * Returns a borrowed string, or NULL with a message saying how to start the broker. */
const char *es_config_brokers(es_config_t *cfg, char *errstr, size_t errstr_size);

/* Resolve the PostgreSQL connection string the same way ($ES_DATA/pg.conninfo). From that file
 * (the dev stack's cluster, whose file names its superuser) it logs in as the role set with
 * es_config_set_pg_role(), if any; ES_PG and --pg are taken as given (a deployment names each
 * program's role and password there). */
const char *es_config_pg(es_config_t *cfg, char *errstr, size_t errstr_size);

/* The platform's PostgreSQL roles are named ES_PG_ROLE_PREFIX + what they own or do
 * (es_accounts owns schema accounts, es_query is the query service: scripts/db-roles.sql);
 * roles are the cluster's, not the database's, and the prefix keeps them from meeting another
 * application's "users" or "orders". */
#define ES_PG_ROLE_PREFIX "es_"

/* The PostgreSQL role the program logs in as on the dev stack: ES_PG_ROLE_PREFIX + `name`
 * (a service's schema, which it owns). `name` is copied; call before the first es_config_pg().
 * Returns 0, or -1 for a name that is not [a-z0-9_]+ or too long. */
int es_config_set_pg_role(es_config_t *cfg, const char *name);

/* Read a small text file into buf (trailing whitespace trimmed). Returns 0 or -1. */
int es_config_read_file(const char *path, char *buf, size_t size);

/* Write a small text file atomically (tmp + rename). Returns 0 or -1 (errno set). */
int es_config_write_file(const char *path, const char *text);

#endif
