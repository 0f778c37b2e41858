/*
 * test_config.c: configuration (lib/config.c): the defaults, the environment over the
 * defaults, flags (-X) after the environment, ES_KAFKA_PROPS, ES_PARTITIONS and ES_DEDUP_WINDOW
 * parsing with their malformed values, resolving brokers and PostgreSQL from the data folder, and
 * the small-file read/write pair, all in a private mkdtemp() folder.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

static const char *const env_names[] = {"ES_DATA",
                                        "KAFKA_BROKERS",
                                        "ES_PG",
                                        "ES_PARTITIONS",
                                        "ES_KAFKA_PROPS",
                                        "ES_DEDUP_WINDOW",
                                        "ES_BATCH_LINGER_MS",
                                        "ES_BACKGROUND_NICE"};
#define ENV_N (sizeof(env_names) / sizeof(env_names[0]))

static char dir[256];
static char errstr[512];

static void clear_env(void)
{
    for (size_t i = 0; i < ENV_N; i++) {
        unsetenv(env_names[i]);
    }
}

static void setup(void)
{
    clear_env();
    snprintf(dir, sizeof(dir), "/tmp/es-test-config-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    errstr[0] = '\0';
}

static void remove_in_dir(const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    unlink(path);
}

static void teardown(void)
{
    static const char *const files[] = {"broker.addr", "pg.conninfo", "f.txt", "g.txt"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        remove_in_dir(files[i]);
    }
    rmdir(dir);
    clear_env();
}

static void path_in_dir(char *out, size_t size, const char *name)
{
    snprintf(out, size, "%s/%s", dir, name);
}

/* ---- defaults and environment ---- */

START_TEST(test_defaults)
{
    es_config_t cfg;
    ck_assert_int_eq(es_config_init(&cfg, errstr, sizeof(errstr)), 0);
    ck_assert_str_eq(cfg.data_dir, ".data");
    ck_assert_str_eq(cfg.brokers, "");
    ck_assert_str_eq(cfg.pg_conninfo, "");
    ck_assert_int_eq(cfg.partitions, 6);
    ck_assert_uint_eq(cfg.prop_cnt, 0);
    ck_assert_int_eq(cfg.dedup_window_ms, 7LL * 24 * 3600 * 1000);
    ck_assert_int_eq(cfg.batch_linger_ms, 4);
}
END_TEST

START_TEST(test_environment)
{
    setenv("ES_DATA", "/srv/es", 1);
    setenv("KAFKA_BROKERS", "127.0.0.1:9092,127.0.0.1:9093", 1);
    setenv("ES_PG", "host=/tmp dbname=es", 1);
    setenv("ES_PARTITIONS", "12", 1);
    setenv("ES_KAFKA_PROPS", "linger.ms=5", 1);
    es_config_t cfg;
    ck_assert_int_eq(es_config_init(&cfg, errstr, sizeof(errstr)), 0);
    ck_assert_str_eq(cfg.data_dir, "/srv/es");
    ck_assert_str_eq(cfg.brokers, "127.0.0.1:9092,127.0.0.1:9093");
    ck_assert_str_eq(cfg.pg_conninfo, "host=/tmp dbname=es");
    ck_assert_int_eq(cfg.partitions, 12);
    ck_assert_uint_eq(cfg.prop_cnt, 1);
    /* the environment wins over the data folder's files */
    ck_assert_str_eq(es_config_brokers(&cfg, errstr, sizeof(errstr)),
                     "127.0.0.1:9092,127.0.0.1:9093");
    ck_assert_str_eq(es_config_pg(&cfg, errstr, sizeof(errstr)), "host=/tmp dbname=es");
}
END_TEST

START_TEST(test_empty_environment_means_default)
{
    for (size_t i = 0; i < ENV_N; i++) {
        setenv(env_names[i], "", 1);
    }
    es_config_t cfg;
    ck_assert_int_eq(es_config_init(&cfg, errstr, sizeof(errstr)), 0);
    ck_assert_str_eq(cfg.data_dir, ".data");
    ck_assert_str_eq(cfg.brokers, "");
    ck_assert_int_eq(cfg.partitions, 6);
    ck_assert_uint_eq(cfg.prop_cnt, 0);
    ck_assert_int_eq(cfg.dedup_window_ms, 7LL * 24 * 3600 * 1000);
}
END_TEST

/* ---- the numeric variables: ES_PARTITIONS, ES_DEDUP_WINDOW (seconds), ES_BATCH_LINGER_MS,
 * ES_BACKGROUND_NICE ---- */

static long long partitions_of(const es_config_t *cfg)
{
    return cfg->partitions;
}

static long long window_of(const es_config_t *cfg)
{
    return cfg->dedup_window_ms;
}

static long long linger_of(const es_config_t *cfg)
{
    return cfg->batch_linger_ms;
}

static long long nice_of(const es_config_t *cfg)
{
    return cfg->background_nice;
}

static const struct {
    const char *env, *value;
    int ok;
    long long want;
    long long (*got)(const es_config_t *);
} number_cases[] = {
    {"ES_PARTITIONS", "1", 1, 1, partitions_of},
    {"ES_PARTITIONS", "6", 1, 6, partitions_of},
    {"ES_PARTITIONS", "1000", 1, 1000, partitions_of},
    {"ES_PARTITIONS", "0", 0, 0, partitions_of},
    {"ES_PARTITIONS", "-1", 0, 0, partitions_of},
    {"ES_PARTITIONS", "1001", 0, 0, partitions_of},
    {"ES_PARTITIONS", "abc", 0, 0, partitions_of},
    {"ES_PARTITIONS", "6x", 0, 0, partitions_of},
    {"ES_PARTITIONS", "1.5", 0, 0, partitions_of},
    {"ES_PARTITIONS", "6 ", 0, 0, partitions_of},
    {"ES_PARTITIONS", "0x10", 0, 0, partitions_of},
    {"ES_PARTITIONS", "99999999999999999999", 0, 0, partitions_of},
    {"ES_PARTITIONS", "-99999999999999999999", 0, 0, partitions_of},
    {"ES_DEDUP_WINDOW", "1", 1, 1000, window_of},
    {"ES_DEDUP_WINDOW", "3600", 1, 3600000, window_of},
    {"ES_DEDUP_WINDOW", "316224000", 1, 316224000000LL, window_of},
    {"ES_DEDUP_WINDOW", "0", 0, 0, window_of},
    {"ES_DEDUP_WINDOW", "-5", 0, 0, window_of},
    {"ES_DEDUP_WINDOW", "316224001", 0, 0, window_of},
    {"ES_DEDUP_WINDOW", "2.5", 0, 0, window_of},
    {"ES_DEDUP_WINDOW", "7d", 0, 0, window_of},
    {"ES_DEDUP_WINDOW", "99999999999999999999", 0, 0, window_of},
    {"ES_BATCH_LINGER_MS", "0", 1, 0, linger_of},
    {"ES_BATCH_LINGER_MS", "10", 1, 10, linger_of},
    {"ES_BATCH_LINGER_MS", "100", 1, 100, linger_of},
    {"ES_BATCH_LINGER_MS", "101", 0, 0, linger_of},
    {"ES_BATCH_LINGER_MS", "-1", 0, 0, linger_of},
    {"ES_BATCH_LINGER_MS", "2.5", 0, 0, linger_of},
    {"ES_BACKGROUND_NICE", "0", 1, 0, nice_of},
    {"ES_BACKGROUND_NICE", "19", 1, 19, nice_of},
    {"ES_BACKGROUND_NICE", "20", 0, 0, nice_of},
    {"ES_BACKGROUND_NICE", "-5", 0, 0, nice_of},
    {"ES_BACKGROUND_NICE", "low", 0, 0, nice_of},
};

START_TEST(test_numbers)
{
    setenv(number_cases[_i].env, number_cases[_i].value, 1);
    es_config_t cfg;
    int rc = es_config_init(&cfg, errstr, sizeof(errstr));
    if (number_cases[_i].ok) {
        ck_assert_msg(rc == 0, "%s=\"%s\": %s", number_cases[_i].env, number_cases[_i].value,
                      errstr);
        ck_assert_int_eq(number_cases[_i].got(&cfg), number_cases[_i].want);
    } else {
        ck_assert_msg(rc == -1, "%s=\"%s\" accepted as %lld", number_cases[_i].env,
                      number_cases[_i].value, number_cases[_i].got(&cfg));
        ck_assert_ptr_nonnull(strstr(errstr, number_cases[_i].env));
        ck_assert_ptr_nonnull(strstr(errstr, number_cases[_i].value));
    }
}
END_TEST

/* ---- ES_KAFKA_PROPS and -X ---- */

static const struct {
    const char *value;
    int ok;
    size_t cnt;
    const char *names[3];
    const char *values[3];
} props_cases[] = {
    {"a=1", 1, 1, {"a"}, {"1"}},
    {"security.protocol=SASL_SSL,sasl.mechanism=PLAIN",
     1,
     2,
     {"security.protocol", "sasl.mechanism"},
     {"SASL_SSL", "PLAIN"}},
    {"a=b=c", 1, 1, {"a"}, {"b=c"}},
    {"a=", 1, 1, {"a"}, {""}},
    {"a=1,,b=2,", 1, 2, {"a", "b"}, {"1", "2"}},
    {",a=1", 1, 1, {"a"}, {"1"}},
    {"a", 0, 0, {NULL}, {NULL}},
    {"=1", 0, 0, {NULL}, {NULL}},
    {"a=1,b", 0, 0, {NULL}, {NULL}},
    {"a=1,=2", 0, 0, {NULL}, {NULL}},
};

START_TEST(test_kafka_props)
{
    setenv("ES_KAFKA_PROPS", props_cases[_i].value, 1);
    es_config_t cfg;
    int rc = es_config_init(&cfg, errstr, sizeof(errstr));
    if (!props_cases[_i].ok) {
        ck_assert_msg(rc == -1, "\"%s\" accepted", props_cases[_i].value);
        ck_assert_ptr_nonnull(strstr(errstr, "malformed"));
        return;
    }
    ck_assert_msg(rc == 0, "\"%s\": %s", props_cases[_i].value, errstr);
    ck_assert_uint_eq(cfg.prop_cnt, props_cases[_i].cnt);
    for (size_t i = 0; i < props_cases[_i].cnt; i++) {
        ck_assert_str_eq(cfg.prop_names[i], props_cases[_i].names[i]);
        ck_assert_str_eq(cfg.prop_values[i], props_cases[_i].values[i]);
    }
}
END_TEST

START_TEST(test_flags_after_environment)
{
    setenv("ES_KAFKA_PROPS", "linger.ms=5", 1);
    es_config_t cfg;
    ck_assert_int_eq(es_config_init(&cfg, errstr, sizeof(errstr)), 0);
    /* -X flags come later, so a property given both ways ends with the flag's value last */
    ck_assert_int_eq(es_config_add_prop(&cfg, "linger.ms=50", errstr, sizeof(errstr)), 0);
    ck_assert_uint_eq(cfg.prop_cnt, 2);
    ck_assert_str_eq(cfg.prop_names[0], "linger.ms");
    ck_assert_str_eq(cfg.prop_values[0], "5");
    ck_assert_str_eq(cfg.prop_names[1], "linger.ms");
    ck_assert_str_eq(cfg.prop_values[1], "50");
    ck_assert_int_eq(es_config_add_prop(&cfg, "nothing", errstr, sizeof(errstr)), -1);
    ck_assert_str_eq(errstr, "malformed Kafka property \"nothing\": expected name=value");
    ck_assert_uint_eq(cfg.prop_cnt, 2);
}
END_TEST

START_TEST(test_too_many_props)
{
    es_config_t cfg;
    ck_assert_int_eq(es_config_init(&cfg, errstr, sizeof(errstr)), 0);
    char prop[32];
    for (int i = 0; i < ES_CONFIG_MAX_PROPS; i++) {
        snprintf(prop, sizeof(prop), "p%d=%d", i, i);
        ck_assert_int_eq(es_config_add_prop(&cfg, prop, errstr, sizeof(errstr)), 0);
    }
    ck_assert_int_eq(es_config_add_prop(&cfg, "one.more=1", errstr, sizeof(errstr)), -1);
    ck_assert_ptr_nonnull(strstr(errstr, "too many"));
    ck_assert_uint_eq(cfg.prop_cnt, ES_CONFIG_MAX_PROPS);
    ck_assert_str_eq(cfg.prop_names[ES_CONFIG_MAX_PROPS - 1], "p31");
}
END_TEST

START_TEST(test_prop_too_long)
{
    es_config_t cfg;
    ck_assert_int_eq(es_config_init(&cfg, errstr, sizeof(errstr)), 0);
    char prop[1024];
    /* a 128-character name does not fit (127 does) */
    memset(prop, 'n', 128);
    snprintf(prop + 128, sizeof(prop) - 128, "=v");
    ck_assert_int_eq(es_config_add_prop(&cfg, prop, errstr, sizeof(errstr)), -1);
    ck_assert_ptr_nonnull(strstr(errstr, "too long"));
    ck_assert_int_eq(es_config_add_prop(&cfg, prop + 1, errstr, sizeof(errstr)), 0);
    ck_assert_uint_eq(strlen(cfg.prop_names[0]), 127);
    /* a 512-character value does not fit (511 does) */
    prop[0] = 'v';
    prop[1] = '=';
    memset(prop + 2, 'x', 512);
    prop[514] = '\0';
    ck_assert_int_eq(es_config_add_prop(&cfg, prop, errstr, sizeof(errstr)), -1);
    prop[513] = '\0';
    ck_assert_int_eq(es_config_add_prop(&cfg, prop, errstr, sizeof(errstr)), 0);
    ck_assert_uint_eq(strlen(cfg.prop_values[1]), 511);
    ck_assert_uint_eq(cfg.prop_cnt, 2);
}
END_TEST

/* ---- brokers and PostgreSQL from the data folder ---- */

START_TEST(test_resolve_from_data_dir)
{
    setenv("ES_DATA", dir, 1);
    es_config_t cfg;
    ck_assert_int_eq(es_config_init(&cfg, errstr, sizeof(errstr)), 0);
    ck_assert_str_eq(cfg.data_dir, dir);

    /* nothing published yet: a message that says what to do */
    ck_assert_ptr_null(es_config_brokers(&cfg, errstr, sizeof(errstr)));
    ck_assert_ptr_nonnull(strstr(errstr, "broker.addr"));
    ck_assert_ptr_nonnull(strstr(errstr, "make up"));
    ck_assert_ptr_null(es_config_pg(&cfg, errstr, sizeof(errstr)));
    ck_assert_ptr_nonnull(strstr(errstr, "pg.conninfo"));

    char path[512];
    path_in_dir(path, sizeof(path), "broker.addr");
    ck_assert_int_eq(es_config_write_file(path, "127.0.0.1:40123"), 0);
    path_in_dir(path, sizeof(path), "pg.conninfo");
    ck_assert_int_eq(es_config_write_file(path, "host=127.0.0.1 port=5433"), 0);
    ck_assert_str_eq(es_config_brokers(&cfg, errstr, sizeof(errstr)), "127.0.0.1:40123");
    ck_assert_str_eq(es_config_pg(&cfg, errstr, sizeof(errstr)), "host=127.0.0.1 port=5433");

    /* the environment wins over the files */
    setenv("KAFKA_BROKERS", "127.0.0.1:1", 1);
    setenv("ES_PG", "dbname=env", 1);
    ck_assert_int_eq(es_config_init(&cfg, errstr, sizeof(errstr)), 0);
    ck_assert_str_eq(es_config_brokers(&cfg, errstr, sizeof(errstr)), "127.0.0.1:1");
    ck_assert_str_eq(es_config_pg(&cfg, errstr, sizeof(errstr)), "dbname=env");
}
END_TEST

/* Each program's role: added to the dev stack's conninfo, never to ES_PG (a deployment names
 * the role and its password there). */
START_TEST(test_pg_role)
{
    setenv("ES_DATA", dir, 1);
    char path[512];
    path_in_dir(path, sizeof(path), "pg.conninfo");
    ck_assert_int_eq(es_config_write_file(path, "host=/tmp/x port=5433 user=postgres\n"), 0);
    es_config_t cfg;
    ck_assert_int_eq(es_config_init(&cfg, errstr, sizeof(errstr)), 0);
    ck_assert_int_eq(es_config_set_pg_role(&cfg, "shop_views"), 0);
    ck_assert_str_eq(es_config_pg(&cfg, errstr, sizeof(errstr)),
                     "host=/tmp/x port=5433 user=postgres user=es_shop_views");
    /* resolved once: asked again, the same string */
    ck_assert_str_eq(es_config_pg(&cfg, errstr, sizeof(errstr)),
                     "host=/tmp/x port=5433 user=postgres user=es_shop_views");

    /* names that are not plain identifiers are refused, the role set before stays */
    ck_assert_int_eq(es_config_init(&cfg, errstr, sizeof(errstr)), 0);
    ck_assert_int_eq(es_config_set_pg_role(&cfg, "query"), 0);
    ck_assert_int_eq(es_config_set_pg_role(&cfg, ""), -1);
    ck_assert_int_eq(es_config_set_pg_role(&cfg, "a b"), -1);
    ck_assert_int_eq(es_config_set_pg_role(&cfg, "x password=y"), -1);
    ck_assert_int_eq(es_config_set_pg_role(&cfg, "Orders"), -1);
    char longname[62]; /* 61 characters: with es_, one too many for the role's 63 */
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    ck_assert_int_eq(es_config_set_pg_role(&cfg, longname), -1);
    ck_assert_str_eq(es_config_pg(&cfg, errstr, sizeof(errstr)),
                     "host=/tmp/x port=5433 user=postgres user=es_query");

    /* ES_PG is taken as given */
    setenv("ES_PG", "dbname=env user=accounts password=s", 1);
    ck_assert_int_eq(es_config_init(&cfg, errstr, sizeof(errstr)), 0);
    ck_assert_int_eq(es_config_set_pg_role(&cfg, "orders"), 0);
    ck_assert_str_eq(es_config_pg(&cfg, errstr, sizeof(errstr)),
                     "dbname=env user=accounts password=s");
}
END_TEST

START_TEST(test_empty_published_file)
{
    setenv("ES_DATA", dir, 1);
    char path[512];
    path_in_dir(path, sizeof(path), "broker.addr");
    ck_assert_int_eq(es_config_write_file(path, "  "), 0);
    es_config_t cfg;
    ck_assert_int_eq(es_config_init(&cfg, errstr, sizeof(errstr)), 0);
    ck_assert_ptr_null(es_config_brokers(&cfg, errstr, sizeof(errstr)));
}
END_TEST

/* ---- small files ---- */

START_TEST(test_file_round_trip)
{
    char path[512], buf[256];
    path_in_dir(path, sizeof(path), "f.txt");
    ck_assert_int_eq(es_config_read_file(path, buf, sizeof(buf)), -1);

    ck_assert_int_eq(es_config_write_file(path, "hello world"), 0);
    ck_assert_int_eq(es_config_read_file(path, buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "hello world");

    /* rewriting replaces the whole content */
    ck_assert_int_eq(es_config_write_file(path, "hi"), 0);
    ck_assert_int_eq(es_config_read_file(path, buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "hi");

    /* trailing blanks and line ends are trimmed, leading ones kept */
    ck_assert_int_eq(es_config_write_file(path, " x y \r\n\n  "), 0);
    ck_assert_int_eq(es_config_read_file(path, buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, " x y");

    ck_assert_int_eq(es_config_write_file(path, ""), 0);
    ck_assert_int_eq(es_config_read_file(path, buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "");

    /* a small buffer gets a truncated, terminated prefix */
    ck_assert_int_eq(es_config_write_file(path, "abcdefgh"), 0);
    char small[4];
    ck_assert_int_eq(es_config_read_file(path, small, sizeof(small)), 0);
    ck_assert_str_eq(small, "abc");

    /* no temporary file is left behind: the folder holds exactly f.txt */
    char tmp_path[600];
    snprintf(tmp_path, sizeof(tmp_path), "%s.tmp.%d", path, (int)getpid());
    struct stat sb;
    ck_assert_int_eq(stat(tmp_path, &sb), -1);
    ck_assert_int_eq(stat(path, &sb), 0);
}
END_TEST

START_TEST(test_write_file_fails)
{
    char path[512];
    path_in_dir(path, sizeof(path), "no-such-dir/f.txt");
    errno = 0;
    ck_assert_int_eq(es_config_write_file(path, "x"), -1);
    ck_assert_int_eq(errno, ENOENT);
    /* renaming onto a folder fails and cleans up the temporary file */
    path_in_dir(path, sizeof(path), "g.txt");
    ck_assert_int_eq(mkdir(path, 0700), 0);
    ck_assert_int_eq(es_config_write_file(path, "x"), -1);
    char tmp_path[600];
    snprintf(tmp_path, sizeof(tmp_path), "%s.tmp.%d", path, (int)getpid());
    struct stat sb;
    ck_assert_int_eq(stat(tmp_path, &sb), -1);
    ck_assert_int_eq(rmdir(path), 0);
}
END_TEST

Suite *config_suite(void);

Suite *config_suite(void)
{
    Suite *s = suite_create("config");

    TCase *tc = tcase_create("environment");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_environment);
    tcase_add_test(tc, test_empty_environment_means_default);
    tcase_add_loop_test(tc, test_numbers, 0, (int)(sizeof(number_cases) / sizeof(number_cases[0])));
    suite_add_tcase(s, tc);

    tc = tcase_create("kafka_props");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_kafka_props, 0,
                        (int)(sizeof(props_cases) / sizeof(props_cases[0])));
    tcase_add_test(tc, test_flags_after_environment);
    tcase_add_test(tc, test_too_many_props);
    tcase_add_test(tc, test_prop_too_long);
    suite_add_tcase(s, tc);

    tc = tcase_create("files");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_resolve_from_data_dir);
    tcase_add_test(tc, test_pg_role);
    tcase_add_test(tc, test_empty_published_file);
    tcase_add_test(tc, test_file_round_trip);
    tcase_add_test(tc, test_write_file_fails);
    suite_add_tcase(s, tc);
    return s;
}
