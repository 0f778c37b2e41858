/*
 * config.c: defaults < environment < flags (see config.h).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dedup.h"

int es_config_read_file(const char *path, char *buf, size_t size)
{
    if (size == 0) {
        return -1;
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        return -1;
    }
    size_t n = fread(buf, 1, size - 1, f);
    fclose(f);
    buf[n] = '\0';
    while (n > 0 &&
           (buf[n - 1] == '\n' || buf[n - 1] == ' ' || buf[n - 1] == '\r' || buf[n - 1] == '\t')) {
        buf[--n] = '\0';
    }
    return 0;
}

int es_config_write_file(const char *path, const char *text)
{
    char tmp[1100];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) {
        return -1;
    }
    int ok = fputs(text, f) >= 0 && fputc('\n', f) != EOF;
    if (fclose(f) != 0 || !ok) {
        unlink(tmp);
        return -1;
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        errno = e;
        return -1;
    }
    return 0;
}

int es_config_add_prop(es_config_t *cfg, const char *name_eq_value, char *errstr,
                       size_t errstr_size)
{
    const char *eq = strchr(name_eq_value, '=');
    if (!eq || eq == name_eq_value) {
        snprintf(errstr, errstr_size, "malformed Kafka property \"%s\": expected name=value",
                 name_eq_value);
        return -1;
    }
    if (cfg->prop_cnt >= ES_CONFIG_MAX_PROPS) {
        snprintf(errstr, errstr_size, "too many Kafka properties (at most %d)",
                 ES_CONFIG_MAX_PROPS);
        return -1;
    }
    size_t nlen = (size_t)(eq - name_eq_value);
    if (nlen >= sizeof(cfg->prop_names[0]) || strlen(eq + 1) >= sizeof(cfg->prop_values[0])) {
        snprintf(errstr, errstr_size, "Kafka property \"%s\" is too long", name_eq_value);
        return -1;
    }
    memcpy(cfg->prop_names[cfg->prop_cnt], name_eq_value, nlen);
    cfg->prop_names[cfg->prop_cnt][nlen] = '\0';
    snprintf(cfg->prop_values[cfg->prop_cnt], sizeof(cfg->prop_values[0]), "%s", eq + 1);
    cfg->prop_cnt++;
    return 0;
}

/* A numeric environment variable in min..max: 1 with *out set, 0 when unset or empty, or -1
 * with errstr naming the variable, what it must be and the value given. */
static int env_number(const char *name, const char *what, long long min, long long max,
                      long long *out, char *errstr, size_t errstr_size)
{
    const char *v = getenv(name);
    if (!v || !*v) {
        return 0;
    }
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || *end || n < min || n > max) {
        snprintf(errstr, errstr_size, "%s must be %s in %lld..%lld, not \"%s\"", name, what, min,
                 max, v);
        return -1;
    }
    *out = n;
    return 1;
}

int es_config_init(es_config_t *cfg, char *errstr, size_t errstr_size)
{
    memset(cfg, 0, sizeof(*cfg));
    const char *v = getenv("ES_DATA");
    snprintf(cfg->data_dir, sizeof(cfg->data_dir), "%s", v && *v ? v : ".data");
    cfg->partitions = 6;
    cfg->dedup_window_ms = ES_DEDUP_WINDOW_DEFAULT_MS;
    long long n;
    int rc;
    if ((rc = env_number("ES_PARTITIONS", "an integer", 1, 1000, &n, errstr, errstr_size)) < 0) {
        return -1;
    }
    if (rc == 1) {
        cfg->partitions = (int)n;
    }
    if ((rc = env_number("ES_DEDUP_WINDOW", "a number of seconds", 1, 10LL * 366 * 24 * 3600, &n,
                         errstr, errstr_size)) < 0) {
        return -1;
    }
    if (rc == 1) {
        cfg->dedup_window_ms = n * 1000;
    }
    cfg->batch_linger_ms = 4;
    if ((rc = env_number("ES_BATCH_LINGER_MS", "a number of milliseconds", 0, 100, &n, errstr,
                         errstr_size)) < 0) {
        return -1;
    }
    if (rc == 1) {
        cfg->batch_linger_ms = (int)n;
    }
    if ((rc = env_number("ES_BACKGROUND_NICE", "a nice value", 0, 19, &n, errstr, errstr_size)) <
        0) {
        return -1;
    }
    if (rc == 1) {
        cfg->background_nice = (int)n;
    }
    if ((v = getenv("KAFKA_BROKERS")) && *v) {
        snprintf(cfg->brokers, sizeof(cfg->brokers), "%s", v);
    }
    if ((v = getenv("ES_PG")) && *v) {
        snprintf(cfg->pg_conninfo, sizeof(cfg->pg_conninfo), "%s", v);
    }
    if ((v = getenv("ES_KAFKA_PROPS")) && *v) {
        char copy[4096];
        if (strlen(v) >= sizeof(copy)) {
            snprintf(errstr, errstr_size, "ES_KAFKA_PROPS is too long (at most %zu characters)",
                     sizeof(copy) - 1);
            return -1;
        }
        snprintf(copy, sizeof(copy), "%s", v);
        char *save = NULL;
        for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            if (es_config_add_prop(cfg, tok, errstr, errstr_size) != 0) {
                return -1;
            }
        }
    }
    return 0;
}

const char *es_config_brokers(es_config_t *cfg, char *errstr, size_t errstr_size)
{
    if (!cfg->brokers[0]) {
        char path[1200];
        snprintf(path, sizeof(path), "%s/broker.addr", cfg->data_dir);
        if (es_config_read_file(path, cfg->brokers, sizeof(cfg->brokers)) != 0 ||
            !cfg->brokers[0]) {
            snprintf(errstr, errstr_size,
                     "no Kafka broker: KAFKA_BROKERS is not set and %s does not exist "
                     "(start the dev stack with \"make up\")",
                     path);
            return NULL;
        }
        cfg->brokers_from_file = 1;
    }
    return cfg->brokers;
}

const char *es_config_pg(es_config_t *cfg, char *errstr, size_t errstr_size)
{
    if (!cfg->pg_conninfo[0]) {
        char path[1200];
        snprintf(path, sizeof(path), "%s/pg.conninfo", cfg->data_dir);
        if (es_config_read_file(path, cfg->pg_conninfo, sizeof(cfg->pg_conninfo)) != 0 ||
            !cfg->pg_conninfo[0]) {
            snprintf(errstr, errstr_size,
                     "no PostgreSQL: ES_PG is not set and %s does not exist "
                     "(start the dev stack with \"make up\")",
                     path);
            return NULL;
        }
        if (cfg->pg_role[0]) {
            /* a later keyword wins in a libpq connection string */
            size_t n = strlen(cfg->pg_conninfo);
            int len = snprintf(cfg->pg_conninfo + n, sizeof(cfg->pg_conninfo) - n, " user=%s",
                               cfg->pg_role);
            if (len < 0 || (size_t)len >= sizeof(cfg->pg_conninfo) - n) {
                cfg->pg_conninfo[0] = '\0';
                snprintf(errstr, errstr_size, "%s is too long", path);
                return NULL;
            }
        }
    }
    return cfg->pg_conninfo;
}

int es_config_set_pg_role(es_config_t *cfg, const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n >= sizeof(cfg->pg_role) - strlen(ES_PG_ROLE_PREFIX) ||
        strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") != n) {
        return -1;
    }
    snprintf(cfg->pg_role, sizeof(cfg->pg_role), "%s%s", ES_PG_ROLE_PREFIX, name);
    return 0;
}
