/*
 * main.c: esctl's entry point: the common flags that may come before the subcommand, the
 * dispatch to one subcommand, and what they share (error lines, type-name suggestions).
 *
 *   esctl [-b brokers] [-X prop=val]... [-d dir] <send|replay|rebuild|...> [flags] [args]
 */
#include "esctl.h"

#include <ctype.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kafka.h"
#include "log.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: esctl [common flags] <command> [flags] [arguments]\n"
                 "\n"
                 "commands:\n"
                 "  send      validate commands and publish them to Kafka (--wait: until handled)\n"
                 "  replay    print the history of topics as JSON lines (journal + broker)\n"
                 "  rebuild   rebuild projections from the full log (runs es-projector)\n"
                 "  types     list every command and event type, its topic, key and fields\n"
                 "  saga      draw one saga's timeline (terminal, or --svg FILE)\n"
                 "  sagas     list sagas, e.g. the stuck ones: --status PENDING --older-than 10s\n"
                 "  lag       how far every consumer is behind the log (positions in PostgreSQL)\n"
                 "  chaos     inject a fault into the dev broker: latency, down, errors; heal\n"
                 "  help      this text; \"esctl <command> --help\" describes one command\n"
                 "\n");
    esctl_common_help(out);
    fprintf(out, "\nexit status: 0 ok, 1 runtime failure, 2 usage error, 3 (esctl lag --max-lag)\n"
                 "a consumer further behind\n");
}

void esctl_common_help(FILE *out)
{
    fprintf(out, "common flags (before or after the command):\n"
                 "  -b, --brokers LIST    Kafka bootstrap servers          env KAFKA_BROKERS\n"
                 "                        default: contents of $ES_DATA/broker.addr\n"
                 "  -X, --property P=V    any librdkafka property, repeatable\n"
                 "                        env ES_KAFKA_PROPS (comma separated), flags come last\n"
                 "  -d, --data DIR        data folder (journal, broker.addr)  env ES_DATA\n"
                 "                        default: ./.data\n"
                 "  -h, --help            show the help of the command\n");
}

void esctl_err(const esctl_t *ctx, const char *fmt, ...)
{
    char raw[2048], msg[2048 * 4];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof(raw), fmt, ap);
    va_end(ap);
    /* an error quotes what it was given (a type name, a field name, a JSON fragment): its
     * control characters are shown, not sent to the terminal, and it stays on one line */
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)raw; *p; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            o += (size_t)snprintf(msg + o, sizeof(msg) - o, "\\x%02x", *p);
        } else {
            msg[o++] = (char)*p;
        }
    }
    msg[o] = '\0';
    if (ctx && ctx->sub) {
        fprintf(stderr, "esctl %s: %s\n", ctx->sub, msg);
    } else {
        fprintf(stderr, "esctl: %s\n", msg);
    }
}

void esctl_bad_flag(const esctl_t *ctx, char **argv)
{
    const char *arg = optind > 0 ? argv[optind - 1] : "?";
    const char *sub = ctx && ctx->sub ? ctx->sub : NULL;
    esctl_err(ctx, "unknown flag, or a flag missing its value: \"%s\" (try \"esctl %s%s--help\")",
              arg, sub ? sub : "", sub ? " " : "");
}

int esctl_other_opt(esctl_t *ctx, int opt, char *arg, char **argv)
{
    int r = esctl_common_opt(ctx, opt, arg);
    if (r == 0) {
        esctl_bad_flag(ctx, argv);
    }
    return r > 0 ? 0 : -1;
}

int esctl_common_opt(esctl_t *ctx, int opt, char *arg)
{
    char errstr[512];
    switch (opt) {
    case 'b':
        if (!*arg || strlen(arg) >= sizeof(ctx->cfg.brokers)) {
            esctl_err(ctx, "-b/--brokers: %s", *arg ? "the list is too long" : "an empty list");
            return -1;
        }
        snprintf(ctx->cfg.brokers, sizeof(ctx->cfg.brokers), "%s", arg);
        break;
    case 'd':
        snprintf(ctx->cfg.data_dir, sizeof(ctx->cfg.data_dir), "%s", arg);
        break;
    case 'X': {
        if (es_config_add_prop(&ctx->cfg, arg, errstr, sizeof(errstr)) != 0) {
            esctl_err(ctx, "%s", errstr);
            return -1;
        }
        /* a property librdkafka refuses is a usage error, said now (not when a client is made) */
        rd_kafka_conf_t *probe = rd_kafka_conf_new();
        size_t last = ctx->cfg.prop_cnt - 1;
        rd_kafka_conf_res_t res = rd_kafka_conf_set(
            probe, ctx->cfg.prop_names[last], ctx->cfg.prop_values[last], errstr, sizeof(errstr));
        rd_kafka_conf_destroy(probe);
        if (res != RD_KAFKA_CONF_OK) {
            esctl_err(ctx, "-X %s: %s", arg, errstr);
            return -1;
        }
        break;
    }
    default:
        return 0;
    }
    if (ctx->pass_argc + 2 <= ESCTL_MAX_PASS) {
        static char flags[3][3] = {"-b", "-d", "-X"};
        ctx->pass_argv[ctx->pass_argc++] = flags[opt == 'b' ? 0 : opt == 'd' ? 1 : 2];
        ctx->pass_argv[ctx->pass_argc++] = arg;
    }
    return 1;
}

void esctl_prop_default(esctl_t *ctx, const char *name, const char *value)
{
    es_config_t *cfg = &ctx->cfg;
    for (size_t i = 0; i < cfg->prop_cnt; i++) {
        if (!strcmp(cfg->prop_names[i], name) || !strcmp(cfg->prop_names[i], "debug")) {
            return;
        }
    }
    char kv[256], errstr[128];
    snprintf(kv, sizeof(kv), "%s=%s", name, value);
    es_config_add_prop(cfg, kv, errstr, sizeof(errstr));
}

rd_kafka_t *esctl_broker_open(esctl_t *ctx, const char *client_id, int timeout_ms,
                              const struct rd_kafka_metadata **md)
{
    char errstr[512];
    rd_kafka_t *rk =
        es_kafka_consumer_new(&ctx->cfg, client_id, NULL, NULL, NULL, 0, errstr, sizeof(errstr));
    if (!rk) {
        esctl_err(ctx, "%s", errstr);
        return NULL;
    }
    const struct rd_kafka_metadata *got = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, md != NULL, NULL, &got, timeout_ms);
    if (err) {
        esctl_err(ctx, "could not reach the Kafka broker at %s: %s", ctx->cfg.brokers,
                  rd_kafka_err2str(err));
        rd_kafka_destroy(rk);
        return NULL;
    }
    if (md) {
        *md = got;
    } else {
        rd_kafka_metadata_destroy(got);
    }
    return rk;
}

int esctl_broker_check(esctl_t *ctx, int timeout_ms)
{
    rd_kafka_t *rk = esctl_broker_open(ctx, "esctl", timeout_ms, NULL);
    if (!rk) {
        return -1;
    }
    rd_kafka_destroy(rk);
    return 0;
}

/* Case-insensitive Levenshtein distance, bounded to short names. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63) {
        return (size_t)-1;
    }
    size_t prev[64], cur[64];
    for (size_t j = 0; j <= lb; j++) {
        prev[j] = j;
    }
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            size_t best = prev[j - 1] + cost;
            if (prev[j] + 1 < best) {
                best = prev[j] + 1;
            }
            if (cur[j - 1] + 1 < best) {
                best = cur[j - 1] + 1;
            }
            cur[j] = best;
        }
        memcpy(prev, cur, sizeof(size_t) * (lb + 1));
    }
    return prev[lb];
}

const char *esctl_suggest_type(const es_codec_t *codec, const char *name, int kind)
{
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    const es_type_t *type;
    for (size_t i = 0; (type = es_codec_type_at(codec, i)) != NULL; i++) {
        if (kind >= 0 && (int)es_type_kind(type) != kind) {
            continue;
        }
        size_t d = edit_distance(name, es_type_name(type));
        if (d < best_d) {
            best_d = d;
            best = es_type_name(type);
        }
    }
    /* Close enough to be a typo: a third of the name, at least two edits. */
    size_t limit = strlen(name) / 3;
    if (limit < 2) {
        limit = 2;
    }
    if (best_d <= limit) {
        return best;
    }
    /* A shortened name ("Deposit" for "DepositFunds"): the one type that contains it. */
    const char *found = NULL;
    size_t nlen = strlen(name);
    for (size_t i = 0; nlen >= 3 && (type = es_codec_type_at(codec, i)) != NULL; i++) {
        if (kind >= 0 && (int)es_type_kind(type) != kind) {
            continue;
        }
        const char *t = es_type_name(type);
        for (const char *p = t; *p; p++) {
            if (!strncasecmp(p, name, nlen)) {
                if (found) {
                    return NULL; /* ambiguous */
                }
                found = t;
                break;
            }
        }
    }
    return found;
}

int main(int argc, char **argv)
{
    static esctl_t ctx;
    char errstr[512];

    es_log_init("esctl");
    opterr = 0; /* our own one-line messages (esctl_bad_flag) */
    if (es_config_init(&ctx.cfg, errstr, sizeof(errstr)) != 0) {
        esctl_err(NULL, "%s", errstr);
        return ESCTL_USAGE;
    }

    static const struct option longopts[] = {
        ESCTL_COMMON_LONG, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int opt;
    /* '+': stop at the subcommand, whose own flags it parses itself. */
    while ((opt = getopt_long(argc, argv, "+" ESCTL_COMMON_SHORT "h", longopts, NULL)) != -1) {
        if (opt == 'h') {
            usage(stdout);
            return ESCTL_OK;
        }
        int r = esctl_common_opt(&ctx, opt, optarg);
        if (r < 0) {
            return ESCTL_USAGE;
        }
        if (r == 0) {
            esctl_bad_flag(&ctx, argv);
            return ESCTL_USAGE;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return ESCTL_USAGE;
    }

    static const struct {
        const char *name;
        int (*run)(esctl_t *, int, char **);
    } cmds[] = {{"send", esctl_send_main},       {"replay", esctl_replay_main},
                {"rebuild", esctl_rebuild_main}, {"types", esctl_types_main},
                {"saga", esctl_saga_main},       {"sagas", esctl_sagas_main},
                {"lag", esctl_lag_main},         {"chaos", esctl_chaos_main}};
    const char *name = argv[optind];
    if (!strcmp(name, "help")) {
        usage(stdout);
        return ESCTL_OK;
    }
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        if (!strcmp(name, cmds[i].name)) {
            ctx.sub = cmds[i].name;
            int sub_argc = argc - optind;
            char **sub_argv = argv + optind;
            optind = 0; /* glibc: full re-initialisation for the subcommand's parse */
            return cmds[i].run(&ctx, sub_argc, sub_argv);
        }
    }
    esctl_err(NULL, "unknown command \"%s\" (try \"esctl --help\")", name);
    return ESCTL_USAGE;
}
