/*
 * saga.c: `esctl saga <id>` draws one saga's timeline (saga_draw.c) from the query service's
 * GET /sagas/{id}, in the terminal or as SVG; `esctl sagas` lists sagas (GET /sagas), e.g. the
 * stuck ones. Both only talk HTTP to the query service.
 */
#include "esctl.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "json_get.h"
#include "saga_draw.h"
#include "str.h"

#define HTTP_TIMEOUT_MS 10000

static void saga_help(FILE *out)
{
    fprintf(out,
            "usage: esctl saga <id> [--svg FILE] [--json] [-q URL]\n"
            "\n"
            "Draws a saga's timeline: the services as lanes, each step as an arrow from the\n"
            "service whose record caused it to the one that emitted it, with the time since\n"
            "the saga started and how long after its cause each step came. <id> is the saga\n"
            "id (the first command's id, as esctl send prints it) or an order or transfer id.\n"
            "\n"
            "flags:\n"
            "      --svg FILE         write the timeline as an SVG picture instead (-: to\n"
            "                         standard output)\n"
            "      --json             print the saga as the query service returns it\n"
            "  -q, --query-url URL    the query service                  env ES_QUERY_URL\n"
            "                         default: http://127.0.0.1:<port>, the port from\n"
            "                         $ES_DATA/run/es-query.port, else $ES_HTTP_PORT, else 8080\n"
            "\n");
    esctl_common_help(out);
}

static void sagas_help(FILE *out)
{
    fprintf(out,
            "usage: esctl sagas [--status S] [--older-than D] [--type T] [--limit N] [-q URL]\n"
            "\n"
            "Lists sagas, oldest first, one a line: e.g. the stuck ones with\n"
            "--status PENDING --older-than 10s.\n"
            "\n"
            "flags:\n"
            "      --status S       PENDING, TIMED_OUT, COMPLETED, FAILED or CANCELLED\n"
            "      --older-than D   started more than D ago: 10s, 500ms, 2m, 1h\n"
            "      --type T         order or transfer\n"
            "      --limit N        at most N sagas (1..1000)              default 100\n"
            "      --json           print the query service's answer as it is\n"
            "  -q, --query-url URL  the query service (see esctl saga --help)\n"
            "\n");
    esctl_common_help(out);
}

/* GET `path` from the query service (at url_opt, or the default one) and parse the JSON body.
 * Returns the body (new reference) with *status set, or NULL after reporting why. */
static json_t *query(esctl_t *ctx, const char *url_opt, const char *path, int *status,
                     es_buf_t *body)
{
    char errstr[512], url[1024];
    if (url_opt) {
        snprintf(url, sizeof(url), "%s", url_opt);
    } else {
        esctl_query_url(&ctx->cfg, url, sizeof(url));
    }
    if (esctl_http_get(url, path, HTTP_TIMEOUT_MS, status, body, errstr, sizeof(errstr)) != 0) {
        esctl_err(ctx, "the query service at %s did not answer: %s", url, errstr);
        return NULL;
    }
    json_error_t jerr;
    json_t *j = json_loadb((const char *)body->data, body->len, 0, &jerr);
    if (!j) {
        esctl_err(ctx, "the query service answered %d with something that is not JSON", *status);
    }
    return j;
}

/* Write buf to `path` (created or replaced). Returns 0, or -1 after reporting. */
static int write_file(esctl_t *ctx, const char *path, const es_buf_t *buf)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        esctl_err(ctx, "cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    int ok = fwrite(buf->data, 1, buf->len, f) == buf->len;
    ok = fclose(f) == 0 && ok;
    if (!ok) {
        esctl_err(ctx, "cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int out_write(const es_buf_t *buf)
{
    return fwrite(buf->data, 1, buf->len, stdout) == buf->len && fflush(stdout) == 0 ? 0 : -1;
}

/* What both subcommands do with the query service's answer before their own output: a non-200
 * is reported (a 400 as a usage error), --json prints the body as it came. Returns -1 when the
 * caller goes on with its own output, else the exit code to return. */
static int answered(esctl_t *ctx, const json_t *res, int status, es_buf_t *body, int as_json)
{
    if (status != 200) {
        const char *why = json_string_value(json_object_get(res, "error"));
        esctl_err(ctx, "the query service answered %d: %s", status, why ? why : "no reason given");
        return status == 400 ? ESCTL_USAGE : ESCTL_FAIL;
    }
    if (as_json) {
        es_buf_append(body, "\n", 1);
        return out_write(body) == 0 ? ESCTL_OK : ESCTL_FAIL;
    }
    return -1;
}

/* The terminal's width, or 120 when stdout is not a terminal. */
static int term_width(void)
{
    const char *cols = getenv("COLUMNS");
    if (cols && atoi(cols) >= 40) {
        return atoi(cols);
    }
    struct winsize ws;
    if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40) {
        return ws.ws_col;
    }
    return 120;
}

int esctl_saga_main(esctl_t *ctx, int argc, char **argv)
{
    static const struct option longopts[] = {ESCTL_COMMON_LONG,
                                             {"svg", required_argument, NULL, 's'},
                                             {"json", no_argument, NULL, 'j'},
                                             {"query-url", required_argument, NULL, 'q'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    const char *svg = NULL, *url_opt = NULL;
    int as_json = 0, opt;
    while ((opt = getopt_long(argc, argv, ESCTL_COMMON_SHORT "q:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'h':
            saga_help(stdout);
            return ESCTL_OK;
        case 's':
            svg = optarg;
            break;
        case 'j':
            as_json = 1;
            break;
        case 'q':
            url_opt = optarg;
            break;
        default:
            if (esctl_other_opt(ctx, opt, optarg, argv) != 0) {
                return ESCTL_USAGE;
            }
        }
    }
    if (optind + 1 != argc) {
        esctl_err(ctx,
                  optind < argc ? "one saga id expected, got \"%s\" and more"
                                : "a saga id (or an order or transfer id) is required",
                  optind < argc ? argv[optind] : "");
        return ESCTL_USAGE;
    }
    const char *id = argv[optind];
    if (!es_str_id_valid(id, strlen(id), 128)) {
        esctl_err(ctx, "invalid id \"%s\": 1 to 128 characters of [A-Za-z0-9._:-]", id);
        return ESCTL_USAGE;
    }
    char path[256], errstr[512];
    snprintf(path, sizeof(path), "/sagas/%s", id);
    es_buf_t body, out;
    es_buf_init(&body);
    es_buf_init(&out);
    int status = 0, rc = ESCTL_FAIL;
    json_t *saga = query(ctx, url_opt, path, &status, &body);
    if (!saga) {
        goto done;
    }
    if (status == 404) {
        esctl_err(ctx,
                  "no saga \"%s\" (neither a saga id nor an order or transfer id; sagas "
                  "ended before es-sagas' retention are forgotten: esctl replay --correlation "
                  "SAGA_ID reads their records)",
                  id);
        goto done;
    }
    if ((rc = answered(ctx, saga, status, &body, as_json)) >= 0) {
        goto done;
    }
    rc = ESCTL_FAIL;
    if (svg) {
        if (esctl_saga_draw_svg(saga, &out, errstr, sizeof(errstr)) != 0) {
            esctl_err(ctx, "cannot draw the saga: %s", errstr);
            goto done;
        }
        if (!strcmp(svg, "-")) {
            rc = out_write(&out) == 0 ? ESCTL_OK : ESCTL_FAIL;
        } else if (write_file(ctx, svg, &out) == 0) {
            fprintf(stderr, "esctl saga: wrote %s (%zu steps)\n", svg,
                    json_array_size(json_object_get(saga, "steps")));
            rc = ESCTL_OK;
        }
        goto done;
    }
    int color = isatty(STDOUT_FILENO) && !getenv("NO_COLOR");
    if (esctl_saga_draw_text(saga, term_width(), color, &out, errstr, sizeof(errstr)) != 0) {
        esctl_err(ctx, "cannot draw the saga: %s", errstr);
        goto done;
    }
    rc = out_write(&out) == 0 ? ESCTL_OK : ESCTL_FAIL;
done:
    json_decref(saga);
    es_buf_fini(&body);
    es_buf_fini(&out);
    return rc;
}

/* Append "&name=value" (or "?name=value" first) when value is set; values are checked to be
 * plain words so they need no escaping. Returns 0, or -1 after reporting. */
static int query_param(esctl_t *ctx, char *path, size_t size, const char *name, const char *value)
{
    if (!value) {
        return 0;
    }
    for (const char *p = value; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_')) {
            esctl_err(ctx, "invalid --%s \"%s\"", name, value);
            return -1;
        }
    }
    size_t len = strlen(path);
    snprintf(path + len, size - len, "%s%s=%s", strchr(path, '?') ? "&" : "?", name, value);
    return 0;
}

int esctl_sagas_main(esctl_t *ctx, int argc, char **argv)
{
    static const struct option longopts[] = {ESCTL_COMMON_LONG,
                                             {"status", required_argument, NULL, 's'},
                                             {"older-than", required_argument, NULL, 'o'},
                                             {"type", required_argument, NULL, 't'},
                                             {"limit", required_argument, NULL, 'l'},
                                             {"json", no_argument, NULL, 'j'},
                                             {"query-url", required_argument, NULL, 'q'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    const char *status_f = NULL, *older = NULL, *type = NULL, *limit = NULL, *url_opt = NULL;
    int as_json = 0, opt;
    while ((opt = getopt_long(argc, argv, ESCTL_COMMON_SHORT "q:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'h':
            sagas_help(stdout);
            return ESCTL_OK;
        case 's':
            status_f = optarg;
            break;
        case 'o':
            older = optarg;
            break;
        case 't':
            type = optarg;
            break;
        case 'l':
            limit = optarg;
            break;
        case 'j':
            as_json = 1;
            break;
        case 'q':
            url_opt = optarg;
            break;
        default:
            if (esctl_other_opt(ctx, opt, optarg, argv) != 0) {
                return ESCTL_USAGE;
            }
        }
    }
    if (optind < argc) {
        esctl_err(ctx, "unexpected argument \"%s\"", argv[optind]);
        return ESCTL_USAGE;
    }
    char path[512] = "/sagas";
    if (query_param(ctx, path, sizeof(path), "status", status_f) != 0 ||
        query_param(ctx, path, sizeof(path), "older_than", older) != 0 ||
        query_param(ctx, path, sizeof(path), "type", type) != 0 ||
        query_param(ctx, path, sizeof(path), "limit", limit) != 0) {
        return ESCTL_USAGE;
    }
    es_buf_t body, out;
    es_buf_init(&body);
    es_buf_init(&out);
    int status = 0, rc = ESCTL_FAIL;
    json_t *res = query(ctx, url_opt, path, &status, &body);
    if (!res) {
        goto done;
    }
    if ((rc = answered(ctx, res, status, &body, as_json)) >= 0) {
        goto done;
    }
    rc = ESCTL_FAIL;
    const json_t *list = json_object_get(res, "sagas");
    es_buf_printf(&out, "%-32s  %-8s  %-20s  %-9s  %-16s  %9s  %s\n", "SAGA", "TYPE", "SUBJECT",
                  "STATUS", "REASON", "AGE", "LAST STEP");
    size_t i;
    const json_t *s;
    json_array_foreach(list, i, s)
    {
        char age[32];
        esctl_saga_elapsed((long long)json_integer_value(json_object_get(s, "age_ms")), age,
                           sizeof(age));
        const char *reason = json_string_value(json_object_get(s, "reason"));
        es_buf_printf(&out, "%-32s  %-8s  %-20s  %-9s  %-16s  %9s  %s\n",
                      es_json_str_or(s, "saga_id", "?"), es_json_str_or(s, "type", ""),
                      es_json_str_or(s, "subject", ""), es_json_str_or(s, "status", "?"),
                      reason && reason[0] ? reason : "-", age + (age[0] == '+'),
                      es_json_str_or(s, "last_step", ""));
    }
    if (json_array_size(list) == 0) {
        es_buf_puts(&out, "(none)\n");
    }
    rc = out_write(&out) == 0 ? ESCTL_OK : ESCTL_FAIL;
done:
    json_decref(res);
    es_buf_fini(&body);
    es_buf_fini(&out);
    return rc;
}
