/*
 * main.c: es-query, the HTTP query service over the read models in PostgreSQL.
 *
 * Parses options (defaults < environment < flags), resolves the PostgreSQL connection string
 * with es_config_pg(), runs the server on one libevent loop, and on SIGTERM/SIGINT stops
 * listening, finishes the requests in hand and exits 0. A second signal exits at once.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "config.h"
#include "log.h"
#include "routes.h"
#include "server.h"

#define DEFAULT_PORT 8080
#define DEFAULT_BIND "127.0.0.1"
#define DEFAULT_POOL 4
#define QUEUE_TIMEOUT_MS 5000
#define DRAIN_MAX_MS 10000
#define DEFAULT_BREAKER_FAILURES 5
#define DEFAULT_BREAKER_COOLDOWN_MS 1000

typedef struct query_opts {
    char bind[256];
    int port;
    int pool;
    int breaker_failures;
    int breaker_cooldown_ms;
} query_opts_t;

typedef struct query_main {
    struct event_base *base;
    es_query_server_t *srv;
    es_query_ends_t *ends; /* the log's ends from Kafka, for the lags (NULL: not read) */
    int signals;
} query_main_t;

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: es-query [options]\n"
        "HTTP query service over the read models in PostgreSQL (schemas projections,\n"
        "shop_views and sagas).\n"
        "\n"
        "  -p, --port PORT   port to listen on        env ES_HTTP_PORT   default %d\n"
        "      --bind ADDR   address to listen on     env ES_HTTP_BIND   default %s\n"
        "      --pool N      PostgreSQL connections   env ES_QUERY_POOL  default %d\n"
        "      --breaker-failures N\n"
        "                    queries in a row the database does not answer (unreachable,\n"
        "                    connection lost, %d s in the queue) before the circuit opens\n"
        "                    and requests get 503 with Retry-After at once; 0 never opens\n"
        "                                             env ES_QUERY_BREAKER_FAILURES  default %d\n"
        "      --breaker-cooldown-ms MS\n"
        "                    the open circuit's first pause; then one probe query goes,\n"
        "                    and each failed probe doubles the pause (up to 8 times)\n"
        "                                             env ES_QUERY_BREAKER_COOLDOWN_MS  default "
        "%d\n"
        "  -h, --help        show this help\n"
        "\n"
        "PostgreSQL: env ES_PG, default the contents of $ES_DATA/pg.conninfo\n"
        "(ES_DATA default ./.data). Logs: env ES_LOG_LEVEL=debug|info|warn|error,\n"
        "default info; debug logs one line per request.\n"
        "Routes: GET /accounts/{id}, /accounts/{id}/entries?limit=N&before=SEQ,\n"
        "/transfers/{id}, /commands/{id}, /users/{id}, /users/{id}/orders?limit=N&before=C,\n"
        "/products/{id}, /orders/{id}, /sagas/{id}, /sagas?status=S&older_than=D&type=T&limit=N,\n"
        "/health, /metrics.\n",
        DEFAULT_PORT, DEFAULT_BIND, DEFAULT_POOL, QUEUE_TIMEOUT_MS / 1000, DEFAULT_BREAKER_FAILURES,
        DEFAULT_BREAKER_COOLDOWN_MS);
}

static int parse_int(const char *what, const char *s, long min, long max, int *out)
{
    int64_t v;
    if (es_query_parse_uint(s, max, &v) != 0 || v < min) {
        fprintf(stderr, "es-query: invalid %s \"%s\": expected an integer %ld..%ld\n", what, s, min,
                max);
        return -1;
    }
    *out = (int)v;
    return 0;
}

/* Defaults, then the environment, then flags. 0, 1 (help shown) or -1 (bad usage). */
static int parse_opts(int argc, char **argv, query_opts_t *o)
{
    snprintf(o->bind, sizeof(o->bind), "%s", DEFAULT_BIND);
    o->port = DEFAULT_PORT;
    o->pool = DEFAULT_POOL;
    const char *v;
    if ((v = getenv("ES_HTTP_BIND")) && *v) {
        snprintf(o->bind, sizeof(o->bind), "%s", v);
    }
    if ((v = getenv("ES_HTTP_PORT")) && *v && parse_int("ES_HTTP_PORT", v, 0, 65535, &o->port)) {
        return -1;
    }
    if ((v = getenv("ES_QUERY_POOL")) && *v && parse_int("ES_QUERY_POOL", v, 1, 256, &o->pool)) {
        return -1;
    }
    o->breaker_failures = DEFAULT_BREAKER_FAILURES;
    o->breaker_cooldown_ms = DEFAULT_BREAKER_COOLDOWN_MS;
    if ((v = getenv("ES_QUERY_BREAKER_FAILURES")) && *v &&
        parse_int("ES_QUERY_BREAKER_FAILURES", v, 0, 1000000, &o->breaker_failures)) {
        return -1;
    }
    if ((v = getenv("ES_QUERY_BREAKER_COOLDOWN_MS")) && *v &&
        parse_int("ES_QUERY_BREAKER_COOLDOWN_MS", v, 1, 3600000, &o->breaker_cooldown_ms)) {
        return -1;
    }

    enum { OPT_BIND = 256, OPT_POOL, OPT_BREAKER_FAILURES, OPT_BREAKER_COOLDOWN };
    static const struct option longopts[] = {
        {"port", required_argument, NULL, 'p'},
        {"bind", required_argument, NULL, OPT_BIND},
        {"pool", required_argument, NULL, OPT_POOL},
        {"breaker-failures", required_argument, NULL, OPT_BREAKER_FAILURES},
        {"breaker-cooldown-ms", required_argument, NULL, OPT_BREAKER_COOLDOWN},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "p:h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'p':
            if (parse_int("port", optarg, 0, 65535, &o->port)) {
                return -1;
            }
            break;
        case OPT_BIND:
            snprintf(o->bind, sizeof(o->bind), "%s", optarg);
            break;
        case OPT_POOL:
            if (parse_int("pool size", optarg, 1, 256, &o->pool)) {
                return -1;
            }
            break;
        case OPT_BREAKER_FAILURES:
            if (parse_int("breaker failures", optarg, 0, 1000000, &o->breaker_failures)) {
                return -1;
            }
            break;
        case OPT_BREAKER_COOLDOWN:
            if (parse_int("breaker cooldown", optarg, 1, 3600000, &o->breaker_cooldown_ms)) {
                return -1;
            }
            break;
        case 'h':
            usage(stdout);
            return 1;
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "es-query: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        return -1;
    }
    return 0;
}

static void on_drained(void *opaque)
{
    query_main_t *m = opaque;
    event_base_loopexit(m->base, NULL);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    query_main_t *m = arg;
    if (m->signals++ == 0) {
        es_log_info("stopping", "signal=%d", (int)sig);
        es_query_server_drain(m->srv, DRAIN_MAX_MS, on_drained, m);
    } else {
        es_log_warn("stopping now", "signal=%d", (int)sig);
        event_base_loopbreak(m->base);
    }
}

int main(int argc, char **argv)
{
    query_opts_t opts;
    memset(&opts, 0, sizeof(opts));
    int prc = parse_opts(argc, argv, &opts);
    if (prc != 0) {
        return prc > 0 ? 0 : 2;
    }
    es_log_init("es-query");

    char errstr[512];
    es_config_t cfg;
    if (es_config_init(&cfg, errstr, sizeof(errstr)) != 0) {
        es_log_error("invalid configuration", "error=\"%s\"", errstr);
        return 1;
    }
    /* on the dev stack it logs in as es_query, which may read the read models and every
     * consumer's positions, and write nothing (scripts/db-roles.sql) */
    es_config_set_pg_role(&cfg, "query");
    const char *conninfo = es_config_pg(&cfg, errstr, sizeof(errstr));
    if (!conninfo) {
        es_log_error("no postgresql connection string", "error=\"%s\"", errstr);
        return 1;
    }

    int rc = 1;
    query_main_t m = {0};
    struct event *sigterm = NULL, *sigint = NULL;
    signal(SIGPIPE, SIG_IGN);

    m.base = event_base_new();
    if (!m.base) {
        es_log_error("could not create the event loop", "error=\"%s\"", strerror(errno));
        goto err;
    }
    /* the lags of /metrics are measured against the ends Kafka gives; without a broker
     * address, against those the consumers stored (ends.h) */
    m.ends = es_query_ends_start(&cfg, errstr, sizeof(errstr));
    if (!m.ends) {
        es_log_info("not reading the log's ends from Kafka: lags are measured against the ends "
                    "the consumers stored",
                    "reason=\"%s\"", errstr);
    }
    es_query_server_conf_t conf = {.bind = opts.bind,
                                   .port = opts.port,
                                   .pool_size = opts.pool,
                                   .conninfo = conninfo,
                                   .queue_timeout_ms = QUEUE_TIMEOUT_MS,
                                   .breaker_failures = opts.breaker_failures,
                                   .breaker_cooldown_ms = opts.breaker_cooldown_ms,
                                   .ends = m.ends};
    m.srv = es_query_server_new(m.base, &conf, errstr, sizeof(errstr));
    if (!m.srv) {
        es_log_error("could not start", "error=\"%s\"", errstr);
        goto err;
    }
    sigterm = evsignal_new(m.base, SIGTERM, on_signal, &m);
    sigint = evsignal_new(m.base, SIGINT, on_signal, &m);
    if (!sigterm || !sigint || evsignal_add(sigterm, NULL) != 0 ||
        evsignal_add(sigint, NULL) != 0) {
        es_log_error("could not install signal handlers", "error=\"%s\"", strerror(errno));
        goto err;
    }
    es_log_info("listening", "bind=%s port=%d pool=%d breaker_failures=%d breaker_cooldown_ms=%d",
                opts.bind, es_query_server_port(m.srv), opts.pool, opts.breaker_failures,
                opts.breaker_cooldown_ms);
    if (event_base_dispatch(m.base) < 0) {
        es_log_error("event loop failed", "error=\"%s\"", strerror(errno));
        goto err;
    }
    es_log_info("stopped", "port=%d", es_query_server_port(m.srv));
    rc = 0;
err:
    if (sigterm) {
        event_free(sigterm);
    }
    if (sigint) {
        event_free(sigint);
    }
    es_query_server_destroy(m.srv);
    es_query_ends_stop(m.ends);
    if (m.base) {
        event_base_free(m.base);
    }
    return rc;
}
