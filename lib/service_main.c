/*
 * service_main.c: the command line every service shares (see es_service_main in service.h).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "service.h"

static void usage(FILE *out, const es_service_def_t *def, const char *prog, const char *about)
{
    fprintf(out,
            "usage: %s [options]\n%s\n\n"
            "  -d, --data DIR      data folder (ES_DATA, default .data)\n"
            "  -b, --brokers LIST  Kafka bootstrap servers (KAFKA_BROKERS, default: the dev\n"
            "                      broker's address in DIR/broker.addr)\n"
            "  -X name=value       any librdkafka property, repeatable (ES_KAFKA_PROPS,\n"
            "                      comma separated)\n"
            "      --pg CONNINFO   PostgreSQL connection (ES_PG, default DIR/pg.conninfo)\n"
            "  -h, --help          this help\n\n"
            "Logs go to stderr (ES_LOG_LEVEL=debug|info|warn|error). SIGTERM or SIGINT stops\n"
            "it gracefully: the batch in hand is committed and the outbox flushed.\n",
            prog, about);
    if (def->background) {
        fprintf(out,
                "When threads wait for the CPU much of the time, a batch waits up to %d ms for\n"
                "more, whatever its size: nothing waits on this service, and fewer, bigger\n"
                "transactions leave the CPU to those that do (ES_BATCH_LINGER_MS=0: never).\n",
                ES_BACKGROUND_LINGER_MS);
    } else {
        fputs("When threads wait for the CPU much of the time and records come fast, a small\n"
              "batch waits for more: 1 ms when some thread waits half of the time, up to\n"
              "ES_BATCH_LINGER_MS milliseconds (default 4, 0 never, at most 100) when they\n"
              "wait 80% of it: fewer, bigger transactions.\n",
              out);
    }
    if (!def->idempotent) {
        fputs("Copies of a record are recognised within ES_DEDUP_WINDOW seconds (default\n"
              "604800, 7 days); older dedup marks are deleted, and an input older than that\n"
              "goes to the dead-letter topic (lib/dedup.h).\n",
              out);
    }
}

int es_service_take_flag(int *argc, char **argv, const char *flag, const char **value)
{
    size_t flen = strlen(flag);
    int out = 1;
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) {
            while (i < *argc) {
                argv[out++] = argv[i++];
            }
            break;
        }
        if (!strncmp(a, flag, flen) && a[flen] == '=') {
            *value = a + flen + 1;
        } else if (!strcmp(a, flag)) {
            if (i + 1 >= *argc) {
                return -1;
            }
            *value = argv[++i];
        } else {
            argv[out++] = argv[i];
        }
    }
    *argc = out;
    argv[out] = NULL;
    return 0;
}

int es_service_main(int argc, char **argv, const es_service_def_t *def, const char *about)
{
    char prog[64];
    snprintf(prog, sizeof(prog), "es-%s", def->name);
    es_log_init(def->name);
    es_config_t cfg;
    char errstr[512];
    if (es_config_init(&cfg, errstr, sizeof(errstr)) != 0) {
        fprintf(stderr, "%s: %s\n", prog, errstr);
        return 2;
    }
    static const struct option opts[] = {{"data", required_argument, NULL, 'd'},
                                         {"brokers", required_argument, NULL, 'b'},
                                         {"pg", required_argument, NULL, 'P'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "d:b:X:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            snprintf(cfg.data_dir, sizeof(cfg.data_dir), "%s", optarg);
            break;
        case 'b':
            snprintf(cfg.brokers, sizeof(cfg.brokers), "%s", optarg);
            break;
        case 'P':
            snprintf(cfg.pg_conninfo, sizeof(cfg.pg_conninfo), "%s", optarg);
            break;
        case 'X':
            if (es_config_add_prop(&cfg, optarg, errstr, sizeof(errstr)) != 0) {
                fprintf(stderr, "%s: %s\n", prog, errstr);
                return 2;
            }
            break;
        case 'h':
            usage(stdout, def, prog, about);
            return 0;
        default:
            usage(stderr, def, prog, about);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument \"%s\"\n", prog, argv[optind]);
        return 2;
    }
    return es_service_run(def, &cfg) == 0 ? 0 : 1;
}
