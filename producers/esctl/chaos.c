/*
 * chaos.c: `esctl chaos`, faults injected into the running dev broker, to watch the platform
 * ride through them (chaos engineering on the dev stack).
 *
 *   esctl chaos latency MS [--for D] [--broker N]   every answer of the broker MS later
 *   esctl chaos down [--for D] [--broker N]         the broker drops its connections
 *   esctl chaos errors API [--count N] [--error E]  the next N requests of API fail
 *   esctl chaos heal                                every fault ends now
 *   esctl chaos status                              the faults in force
 *
 * The request goes to the dev broker of the data folder through <data>/chaos/<id>.req, and
 * its answer comes back in <id>.ack (devstack/broker/chaos.c applies it). The broker checks
 * the request: what it refuses is a usage error here. Real Kafka has no such door: there,
 * faults come from the network or the cluster's own tools.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "devgate.h"
#include "duration.h"
#include "esctl.h"
#include "ids.h"

#define CHAOS_ANSWER_TIMEOUT_MS 5000
#define CHAOS_FOR_MAX_MS 3600000 /* as the broker's limit (chaos_req.h) */

static void help(FILE *out)
{
    fprintf(out,
            "usage: esctl chaos <fault> [flags]\n"
            "\n"
            "Inject a fault into the running dev broker, to watch the platform ride through it\n"
            "(every transfer and order still ends, once, and money is conserved):\n"
            "  latency MS       every answer of the broker goes MS milliseconds later (1..60000)\n"
            "  down             the broker drops every connection and refuses new ones\n"
            "  errors API       the next --count requests of type API fail with --error; API is\n"
            "                   produce, fetch, listoffsets, metadata, offsetcommit, offsetfetch,\n"
            "                   findcoordinator, joingroup, heartbeat, leavegroup, syncgroup or\n"
            "                   initproducerid\n"
            "  heal             every fault ends now\n"
            "  status           the faults in force\n"
            "A latency or a down ends by itself after --for; a new one on the same broker\n"
            "replaces it. The broker logs every start and end (log/es-broker.log), and ends\n"
            "every fault when it stops. Each command prints the faults in force afterwards.\n"
            "\n"
            "  -f, --for D        how long: 500ms, 10s, 2m (latency: 10s, down: 5s; at most 1h)\n"
            "  -B, --broker N     only broker N of a cluster of several (es-broker --brokers);\n"
            "                     default: every broker\n"
            "  -n, --count N      errors: how many requests fail (default 10, at most 100000)\n"
            "  -e, --error NAME   errors: the error they get, as librdkafka names it, e.g.\n"
            "                     REQUEST_TIMED_OUT, NOT_LEADER_FOR_PARTITION (default\n"
            "                     _TRANSPORT: the broker cuts the connection as it reads one;\n"
            "                     librdkafka then waits twice as long before each reconnection,\n"
            "                     up to 10 s, so a few cuts in a row stall a client for seconds)\n"
            "  -j, --json         print the broker's answer as one JSON line\n"
            "\n"
            "Only the dev broker takes faults (it finds the requests in $ES_DATA/chaos/); on\n"
            "real Kafka, faults come from the network or the cluster's own tools.\n"
            "\n");
    esctl_common_help(out);
    fprintf(out, "\nexit status: 0 ok, 1 no dev broker or no answer, 2 usage error (also a\n"
                 "request the broker refused)\n");
}

typedef struct chaos_opts {
    const char *fault;
    const char *arg; /* latency's MS, errors' API */
    int64_t for_ms;  /* -1: the broker's default */
    int broker;
    int count; /* 0: the broker's default */
    const char *error;
    int as_json;
} chaos_opts_t;

/* The decimal integer `s` in [min, max] into *out: 0, or -1 (out untouched). */
static int int_in(const char *s, long min, long max, int *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int parse_args(esctl_t *ctx, int argc, char **argv, chaos_opts_t *o)
{
    static const struct option longopts[] = {ESCTL_COMMON_LONG,
                                             {"for", required_argument, NULL, 'f'},
                                             {"broker", required_argument, NULL, 'B'},
                                             {"count", required_argument, NULL, 'n'},
                                             {"error", required_argument, NULL, 'e'},
                                             {"json", no_argument, NULL, 'j'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    o->for_ms = -1;
    int opt;
    while ((opt = getopt_long(argc, argv, ESCTL_COMMON_SHORT "f:B:n:e:jh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'f':
            if (es_parse_duration_ms(optarg, CHAOS_FOR_MAX_MS, &o->for_ms) != 0 || o->for_ms < 1) {
                esctl_err(ctx,
                          "--for: expected a duration from 1ms to 1h, such as 500ms, 10s "
                          "or 2m, not \"%s\"",
                          optarg);
                return -1;
            }
            break;
        case 'B':
            if (int_in(optarg, 1, 16, &o->broker) != 0) {
                esctl_err(ctx, "--broker: expected a broker id in 1..16, not \"%s\"", optarg);
                return -1;
            }
            break;
        case 'n':
            if (int_in(optarg, 1, 100000, &o->count) != 0) {
                esctl_err(ctx, "--count: expected an integer in 1..100000, not \"%s\"", optarg);
                return -1;
            }
            break;
        case 'e':
            o->error = optarg;
            break;
        case 'j':
            o->as_json = 1;
            break;
        case 'h':
            help(stdout);
            return 1;
        default:
            if (esctl_other_opt(ctx, opt, optarg, argv) != 0) {
                return -1;
            }
        }
    }
    static const struct {
        const char *name;
        int args;          /* positional arguments after the fault */
        const char *flags; /* the flags it takes */
    } faults[] = {{"latency", 1, "fB"},
                  {"down", 0, "fB"},
                  {"errors", 1, "ne"},
                  {"heal", 0, ""},
                  {"status", 0, ""}};
    if (optind >= argc) {
        esctl_err(ctx, "which fault? latency, down, errors, heal or status (try \"esctl chaos "
                       "--help\")");
        return -1;
    }
    o->fault = argv[optind++];
    size_t f = 0;
    while (f < sizeof(faults) / sizeof(faults[0]) && strcmp(o->fault, faults[f].name)) {
        f++;
    }
    if (f == sizeof(faults) / sizeof(faults[0])) {
        esctl_err(ctx, "unknown fault \"%s\": latency, down, errors, heal or status", o->fault);
        return -1;
    }
    if (argc - optind != faults[f].args) {
        esctl_err(ctx, "%s takes %s", o->fault,
                  !faults[f].args                ? "no argument"
                  : !strcmp(o->fault, "latency") ? "one argument: the milliseconds to add"
                                                 : "one argument: the request type (API)");
        return -1;
    }
    o->arg = faults[f].args ? argv[optind] : NULL;
    const struct {
        int given;
        char letter;
        const char *name;
    } given[] = {{o->for_ms >= 0, 'f', "--for"},
                 {o->broker > 0, 'B', "--broker"},
                 {o->count > 0, 'n', "--count"},
                 {o->error != NULL, 'e', "--error"}};
    for (size_t i = 0; i < sizeof(given) / sizeof(given[0]); i++) {
        if (given[i].given && !strchr(faults[f].flags, given[i].letter)) {
            esctl_err(ctx, "%s does not take %s", o->fault, given[i].name);
            return -1;
        }
    }
    return 0;
}

/* The request as JSON (a new reference), or NULL after reporting a usage error. */
static json_t *request_new(esctl_t *ctx, const chaos_opts_t *o, const char *id)
{
    json_t *r = json_pack("{s:s,s:s}", "id", id, "fault", o->fault);
    if (!strcmp(o->fault, "latency")) {
        int ms = 0;
        if (int_in(o->arg, 1, 60000, &ms) != 0) {
            esctl_err(ctx, "latency: expected the milliseconds to add, 1..60000, not \"%s\"",
                      o->arg);
            json_decref(r);
            return NULL;
        }
        json_object_set_new(r, "ms", json_integer(ms));
    } else if (!strcmp(o->fault, "errors")) {
        json_object_set_new(r, "api", json_string(o->arg));
    }
    if (o->for_ms >= 0) {
        json_object_set_new(r, "for_ms", json_integer(o->for_ms));
    }
    if (o->broker > 0) {
        json_object_set_new(r, "broker", json_integer(o->broker));
    }
    if (o->count > 0) {
        json_object_set_new(r, "count", json_integer(o->count));
    }
    if (o->error) {
        json_object_set_new(r, "error", json_string(o->error));
    }
    return r;
}

static void print_faults(const json_t *faults)
{
    if (json_array_size(faults) == 0) {
        printf("no faults: the broker answers as it should\n");
        return;
    }
    size_t i;
    const json_t *f;
    json_array_foreach(faults, i, f)
    {
        const char *kind = json_string_value(json_object_get(f, "fault"));
        long long broker = json_integer_value(json_object_get(f, "broker"));
        double left = (double)json_integer_value(json_object_get(f, "left_ms")) / 1000.0;
        if (!strcmp(kind, "latency")) {
            printf("latency  broker %lld  +%lld ms per answer, %.1f s left\n", broker,
                   json_integer_value(json_object_get(f, "ms")), left);
        } else if (!strcmp(kind, "down")) {
            printf("down     broker %lld  no connections, %.1f s left\n", broker, left);
        } else {
            printf("errors   %s  %lld pushed with %s, the last %.1f s ago (each fails one "
                   "request; heal drops those left)\n",
                   json_string_value(json_object_get(f, "api")),
                   json_integer_value(json_object_get(f, "pushed")),
                   json_string_value(json_object_get(f, "error")),
                   (double)json_integer_value(json_object_get(f, "ago_ms")) / 1000.0);
        }
    }
}

/* Leave the request, wait for the answer. The answer (a new reference) or NULL (reported). */
static json_t *ask(esctl_t *ctx, const json_t *req, const char *id)
{
    char dir[1200], req_path[1300], ack_path[1300];
    snprintf(dir, sizeof(dir), "%s/chaos", ctx->cfg.data_dir);
    snprintf(req_path, sizeof(req_path), "%s/%s.req", dir, id);
    snprintf(ack_path, sizeof(ack_path), "%s/%s.ack", dir, id);
    struct stat st;
    if (!es_devgate_broker_runs(ctx->cfg.data_dir) || stat(dir, &st) != 0) {
        esctl_err(ctx,
                  "no dev broker runs on the data folder %s (make up starts one); only the dev "
                  "broker takes faults",
                  ctx->cfg.data_dir);
        return NULL;
    }
    char *text = json_dumps(req, JSON_COMPACT);
    if (!text || es_config_write_file(req_path, text) != 0) {
        esctl_err(ctx, "could not write %s: %s", req_path, text ? strerror(errno) : "no memory");
        free(text);
        return NULL;
    }
    free(text);
    for (int waited = 0; waited < CHAOS_ANSWER_TIMEOUT_MS; waited += 10) {
        json_error_t jerr;
        json_t *a = json_load_file(ack_path, 0, &jerr);
        if (a) {
            unlink(ack_path);
            return a;
        }
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    unlink(req_path);
    esctl_err(ctx, "the dev broker did not answer within %d s (is it stopping?)",
              CHAOS_ANSWER_TIMEOUT_MS / 1000);
    return NULL;
}

int esctl_chaos_main(esctl_t *ctx, int argc, char **argv)
{
    chaos_opts_t o;
    memset(&o, 0, sizeof(o));
    int r = parse_args(ctx, argc, argv, &o);
    if (r != 0) {
        return r > 0 ? ESCTL_OK : ESCTL_USAGE;
    }
    char id[ES_ID_LEN + 1];
    if (es_id_random(id) != 0) {
        esctl_err(ctx, "could not draw a random id");
        return ESCTL_FAIL;
    }
    json_t *req = request_new(ctx, &o, id);
    if (!req) {
        return ESCTL_USAGE;
    }
    json_t *a = ask(ctx, req, id);
    json_decref(req);
    if (!a) {
        return ESCTL_FAIL;
    }
    int ok = json_is_true(json_object_get(a, "ok"));
    if (!ok) {
        esctl_err(ctx, "the broker refused it: %s", json_string_value(json_object_get(a, "error")));
    } else if (o.as_json) {
        json_dumpf(a, stdout, JSON_COMPACT);
        putchar('\n');
    } else {
        print_faults(json_object_get(a, "faults"));
    }
    json_decref(a);
    return ok ? ESCTL_OK : ESCTL_USAGE;
}
