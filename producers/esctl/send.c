/*
 * send.c: `esctl send`: validate commands against their schemas, wrap them in envelopes and
 * publish them with an idempotent producer; with --wait, follow each one through the query
 * service until it has been handled.
 *
 * The whole input is validated and encoded before anything is produced, so bad input never
 * publishes a partial batch. Encoded values live in one arena until every delivery report is
 * in; messages are produced without copying and without waiting per message, and results are
 * printed in input order.
 */
#include "esctl.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "envelope.h"
#include "ids.h"
#include "kafka.h"

/* How long to wait for the broker's metadata before calling it unreachable. */
#define SEND_CONNECT_TIMEOUT_MS 4000
/* Invalid lines reported individually before the summary. */
#define SEND_MAX_REPORTED 10

typedef struct send_cmd {
    const es_type_t *type; /* borrowed from the codec */
    char id[ES_ID_LEN + 1];
    size_t agg_off; /* NUL-terminated aggregate id in the arena */
    size_t agg_len;
    size_t val_off; /* encoded envelope in the arena */
    size_t val_len;
    int64_t occurred_at;
    size_t line; /* input line, for messages */
    int delivered;
    rd_kafka_resp_err_t err;
    int32_t partition;
    int64_t offset;
} send_cmd_t;

typedef struct send_opts {
    const char *type_name; /* NULL in --batch mode without a type */
    const char *json_arg;
    const char *file;
    int batch;
    int wait;
    double timeout_s;
    const char *query_url;
} send_opts_t;

typedef struct send_state {
    esctl_t *ctx;
    send_opts_t opt;
    es_codec_t *codec;
    send_cmd_t *cmds;
    size_t cmd_cnt, cmd_cap;
    es_buf_t arena;
    size_t bad_cnt; /* invalid inputs seen */
    size_t outstanding;
} send_state_t;

static void help(FILE *out)
{
    fprintf(
        out,
        "usage: esctl send <CommandType> '<json>'\n"
        "       esctl send <CommandType> -f FILE        (FILE \"-\" = stdin)\n"
        "       esctl send --batch [<CommandType>]      JSON lines on stdin\n"
        "\n"
        "Validates each command against its schema, wraps it in an envelope (a new random\n"
        "command id, which is also the correlation id) and publishes it to its topic with the\n"
        "aggregate id as key, then prints one JSON line per command:\n"
        "  {\"command_id\",\"topic\",\"partition\",\"offset\"}\n"
        "With --batch each line is the payload of <CommandType>, or "
        "{\"type\":\"X\",\"data\":{...}}\n"
        "when no type is given. The whole input is validated first: if any line is invalid,\n"
        "nothing is published. \"esctl types\" lists the commands and their fields.\n"
        "\n"
        "flags:\n"
        "  -f, --file FILE        read the payload from FILE\n"
        "      --batch            read JSON lines from stdin\n"
        "  -w, --wait             after delivery, poll the query service until each command\n"
        "                         is handled and print its outcome and the aggregate's view:\n"
        "  {\"command_id\",\"status\",\"reason\",\"account\"|\"transfer\":{...},\"topic\",...}\n"
        "  -t, --timeout S        give up waiting after S seconds (exit 1)   default: 30\n"
        "  -q, --query-url URL    the query service      env ES_QUERY_URL\n"
        "                         default: http://127.0.0.1:$ES_HTTP_PORT, or port 8080\n"
        "\n");
    esctl_common_help(out);
}

/* Report one invalid input. Counted always, printed for the first few. */
static void bad_input(send_state_t *s, size_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void bad_input(send_state_t *s, size_t line, const char *fmt, ...)
{
    s->bad_cnt++;
    if (s->bad_cnt > SEND_MAX_REPORTED) {
        return;
    }
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (s->opt.batch) {
        esctl_err(s->ctx, "line %zu: %s", line, msg);
    } else {
        esctl_err(s->ctx, "%s", msg);
    }
}

/* Resolve a sendable type, or explain why the name is not one. */
static const es_type_t *type_resolve(send_state_t *s, const char *name, size_t line)
{
    const es_type_t *type = es_codec_type(s->codec, name);
    if (!type) {
        const char *hint = esctl_suggest_type(s->codec, name, ES_KIND_COMMAND);
        if (hint) {
            bad_input(s, line, "unknown command type \"%s\" (did you mean \"%s\"?)", name, hint);
        } else {
            bad_input(s, line, "unknown command type \"%s\" (\"esctl types\" lists them)", name);
        }
        return NULL;
    }
    if (es_type_kind(type) != ES_KIND_COMMAND) {
        bad_input(s, line, "\"%s\" is an event type: only commands can be sent", name);
        return NULL;
    }
    return type;
}

/* Validate one payload (borrowed) and append its command to the state. */
static void cmd_add(send_state_t *s, const es_type_t *type, const json_t *payload, size_t line)
{
    char errstr[512];
    if (!json_is_object(payload)) {
        bad_input(s, line, "the %s payload must be a JSON object", es_type_name(type));
        return;
    }
    const char *key_field = es_type_key_field(type);
    const json_t *key = json_object_get(payload, key_field);
    char agg[ES_AGG_MAX];
    if (json_is_string(key)) {
        if (json_string_length(key) >= sizeof(agg)) {
            bad_input(s, line, "field \"%s\": the key is longer than %d bytes", key_field,
                      ES_AGG_MAX - 1);
            return;
        }
        snprintf(agg, sizeof(agg), "%s", json_string_value(key));
    } else if (json_is_integer(key)) {
        snprintf(agg, sizeof(agg), "%" JSON_INTEGER_FORMAT, json_integer_value(key));
    } else {
        agg[0] = '\0'; /* the codec names the missing or mistyped field below */
    }

    es_envelope_t env;
    memset(&env, 0, sizeof(env));
    if (es_id_random(env.event_id) != 0) {
        bad_input(s, line, "could not generate a command id: %s", strerror(errno));
        return;
    }
    snprintf(env.type, sizeof(env.type), "%s", es_type_name(type));
    snprintf(env.aggregate_id, sizeof(env.aggregate_id), "%s", agg);
    env.aggregate_version = 0;
    memcpy(env.correlation_id, env.event_id, sizeof(env.correlation_id));
    env.causation_id[0] = '\0';
    es_traceparent_make(env.traceparent, env.correlation_id, env.event_id);
    env.occurred_at = es_now_ms();

    size_t val_off = s->arena.len;
    if (es_envelope_encode(s->codec, &env, type, payload, &s->arena, errstr, sizeof(errstr)) != 0) {
        s->arena.len = val_off;
        bad_input(s, line, "invalid %s: %s", es_type_name(type), errstr);
        return;
    }
    if (!agg[0]) {
        s->arena.len = val_off;
        bad_input(s, line, "invalid %s: field \"%s\" (the aggregate id) must not be empty",
                  es_type_name(type), key_field);
        return;
    }
    if (s->bad_cnt) {
        /* Nothing will be published: keep validating without keeping the values. */
        s->arena.len = val_off;
        return;
    }
    size_t val_len = s->arena.len - val_off;
    size_t agg_off = s->arena.len;
    size_t agg_len = strlen(agg);
    if (es_buf_append(&s->arena, agg, agg_len + 1) != 0) {
        bad_input(s, line, "out of memory");
        return;
    }
    if (s->cmd_cnt == s->cmd_cap) {
        size_t cap = s->cmd_cap ? s->cmd_cap * 2 : 1024;
        send_cmd_t *cmds = realloc(s->cmds, cap * sizeof(*cmds));
        if (!cmds) {
            bad_input(s, line, "out of memory");
            return;
        }
        s->cmds = cmds;
        s->cmd_cap = cap;
    }
    send_cmd_t *c = &s->cmds[s->cmd_cnt++];
    memset(c, 0, sizeof(*c));
    c->type = type;
    memcpy(c->id, env.event_id, sizeof(c->id));
    c->agg_off = agg_off;
    c->agg_len = agg_len;
    c->val_off = val_off;
    c->val_len = val_len;
    c->occurred_at = env.occurred_at;
    c->line = line;
    c->partition = -1;
    c->offset = -1;
}

/* Parse one JSON text; on error report it with its position. */
static json_t *json_parse(send_state_t *s, const char *text, size_t len, size_t line,
                          const char *what)
{
    json_error_t jerr;
    json_t *v = json_loadb(text, len, 0, &jerr);
    if (!v) {
        if (s->opt.batch) {
            bad_input(s, line, "invalid JSON at column %d: %s", jerr.column, jerr.text);
        } else {
            bad_input(s, line, "invalid JSON in %s at line %d, column %d: %s", what, jerr.line,
                      jerr.column, jerr.text);
        }
    }
    return v;
}

/* One --batch line: a payload of the given type, or {"type","data"}. */
static void batch_line(send_state_t *s, const es_type_t *type, char *text, size_t len, size_t line)
{
    json_t *v = json_parse(s, text, len, line, "line");
    if (!v) {
        return;
    }
    if (type) {
        cmd_add(s, type, v, line);
    } else {
        const char *tname = json_string_value(json_object_get(v, "type"));
        const json_t *data = json_object_get(v, "data");
        if (!json_is_object(v) || !tname || !data) {
            bad_input(s, line,
                      "expected {\"type\":\"<CommandType>\",\"data\":{...}} "
                      "(or give the type: esctl send --batch <CommandType>)");
        } else {
            const es_type_t *t = type_resolve(s, tname, line);
            if (t) {
                cmd_add(s, t, data, line);
            }
        }
    }
    json_decref(v);
}

static int read_batch(send_state_t *s, const es_type_t *type)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    size_t lineno = 0;
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        lineno++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) {
            n--;
        }
        size_t i = 0;
        while (i < (size_t)n && (line[i] == ' ' || line[i] == '\t')) {
            i++;
        }
        if (i == (size_t)n) {
            continue; /* blank lines separate nothing and are skipped */
        }
        batch_line(s, type, line, (size_t)n, lineno);
    }
    int rerr = ferror(stdin);
    free(line);
    if (rerr) {
        esctl_err(s->ctx, "could not read stdin: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    (void)rk;
    send_state_t *s = opaque;
    send_cmd_t *c = rkm->_private;
    c->delivered = 1;
    c->err = rkm->err;
    c->partition = rkm->partition;
    c->offset = rkm->offset;
    s->outstanding--;
}

/* Add a property unless the operator set it (their -X / ES_KAFKA_PROPS always wins). */
static void prop_default(es_config_t *cfg, const char *name, const char *value)
{
    for (size_t i = 0; i < cfg->prop_cnt; i++) {
        if (!strcmp(cfg->prop_names[i], name)) {
            return;
        }
    }
    char kv[256], errstr[128];
    snprintf(kv, sizeof(kv), "%s=%s", name, value);
    es_config_add_prop(cfg, kv, errstr, sizeof(errstr));
}

/* Check that the broker answers and every topic we will produce to exists, so that an
 * unreachable broker fails in seconds with nothing queued. */
static int check_topics(send_state_t *s, rd_kafka_t *rk, rd_kafka_topic_t **rkts, size_t rkt_cnt)
{
    for (size_t i = 0; i < rkt_cnt; i++) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkts[i], &md, SEND_CONNECT_TIMEOUT_MS);
        if (err) {
            esctl_err(s->ctx, "could not reach the Kafka broker at %s: %s", s->ctx->cfg.brokers,
                      rd_kafka_err2str(err));
            return -1;
        }
        int ok = md->topic_cnt == 1 && !md->topics[0].err && md->topics[0].partition_cnt > 0;
        if (!ok) {
            esctl_err(s->ctx, "topic \"%s\" is not available on the Kafka broker at %s: %s",
                      rd_kafka_topic_name(rkts[i]), s->ctx->cfg.brokers,
                      md->topic_cnt ? rd_kafka_err2str(md->topics[0].err) : "no metadata");
        }
        rd_kafka_metadata_destroy(md);
        if (!ok) {
            return -1;
        }
    }
    return 0;
}

/* Produce every command and wait for all delivery reports. Returns 0 when all were
 * delivered, -1 otherwise (reported). */
static int publish(send_state_t *s)
{
    char errstr[512];
    es_config_t *cfg = &s->ctx->cfg;
    /* librdkafka would print its own connection errors: our one line says it better.
     * -X log_level=7 / -X debug=... bring them back. */
    prop_default(cfg, "log_level", "2");
    rd_kafka_t *rk = es_kafka_producer_new(cfg, "esctl", dr_cb, s, errstr, sizeof(errstr));
    if (!rk) {
        esctl_err(s->ctx, "%s", errstr);
        return -1;
    }
    int ret = -1;
    rd_kafka_topic_t *rkts[64];
    const char *rkt_names[64];
    size_t rkt_cnt = 0;
    /* One topic handle per distinct topic: cheaper than a lookup by name per message. */
    for (size_t i = 0; i < s->cmd_cnt; i++) {
        const char *topic = es_type_topic(s->cmds[i].type);
        size_t j = 0;
        while (j < rkt_cnt && strcmp(rkt_names[j], topic) != 0) {
            j++;
        }
        if (j == rkt_cnt) {
            if (rkt_cnt == sizeof(rkts) / sizeof(rkts[0])) {
                esctl_err(s->ctx, "too many distinct topics in one batch");
                goto out;
            }
            rkt_names[rkt_cnt] = topic;
            rkts[rkt_cnt++] = rd_kafka_topic_new(rk, topic, NULL);
        }
    }
    if (check_topics(s, rk, rkts, rkt_cnt) != 0) {
        goto out;
    }

    s->outstanding = 0;
    for (size_t i = 0; i < s->cmd_cnt; i++) {
        send_cmd_t *c = &s->cmds[i];
        const char *topic = es_type_topic(c->type);
        size_t j = 0;
        while (strcmp(rkt_names[j], topic) != 0) {
            j++;
        }
        es_envelope_t env;
        memset(&env, 0, sizeof(env));
        memcpy(env.event_id, c->id, sizeof(env.event_id));
        snprintf(env.type, sizeof(env.type), "%s", es_type_name(c->type));
        memcpy(env.aggregate_id, s->arena.data + c->agg_off, c->agg_len + 1);
        memcpy(env.correlation_id, c->id, sizeof(env.correlation_id));
        es_traceparent_make(env.traceparent, env.correlation_id, env.event_id);
        env.occurred_at = c->occurred_at;
        rd_kafka_headers_t *hdrs = es_envelope_headers_new(&env);
        rd_kafka_resp_err_t err;
        for (;;) {
            err = rd_kafka_producev(rk, RD_KAFKA_V_RKT(rkts[j]),
                                    RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA),
                                    RD_KAFKA_V_KEY((s->arena.data + c->agg_off), c->agg_len),
                                    RD_KAFKA_V_VALUE((s->arena.data + c->val_off), c->val_len),
                                    RD_KAFKA_V_TIMESTAMP(c->occurred_at), RD_KAFKA_V_HEADERS(hdrs),
                                    RD_KAFKA_V_OPAQUE(c), RD_KAFKA_V_END);
            if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                break;
            }
            rd_kafka_poll(rk, 10); /* the local queue is full: let deliveries drain it */
        }
        if (err) {
            rd_kafka_headers_destroy(hdrs);
            c->delivered = 1;
            c->err = err;
            continue;
        }
        s->outstanding++;
        if ((i & 1023) == 0) {
            rd_kafka_poll(rk, 0);
        }
    }
    /* message.timeout.ms bounds every message, so this returns. */
    while (s->outstanding > 0) {
        rd_kafka_flush(rk, 1000);
    }
    size_t failed = 0;
    for (size_t i = 0; i < s->cmd_cnt; i++) {
        send_cmd_t *c = &s->cmds[i];
        if (c->err) {
            if (++failed <= SEND_MAX_REPORTED) {
                if (s->opt.batch) {
                    esctl_err(s->ctx, "line %zu: could not publish command %s to \"%s\": %s",
                              c->line, c->id, es_type_topic(c->type), rd_kafka_err2str(c->err));
                } else {
                    esctl_err(s->ctx, "could not publish command %s to \"%s\": %s", c->id,
                              es_type_topic(c->type), rd_kafka_err2str(c->err));
                }
            }
        }
    }
    if (failed > 1) {
        esctl_err(s->ctx, "%zu of %zu commands could not be published", failed, s->cmd_cnt);
    }
    ret = failed ? -1 : 0;
out:
    for (size_t i = 0; i < rkt_cnt; i++) {
        rd_kafka_topic_destroy(rkts[i]);
    }
    rd_kafka_destroy(rk);
    return ret;
}

/* The delivery line of one command (appended to out). */
static void delivery_json(es_buf_t *out, const send_cmd_t *c)
{
    es_buf_puts(out, "{\"command_id\":\"");
    es_buf_puts(out, c->id);
    es_buf_puts(out, "\",\"topic\":");
    const char *topic = es_type_topic(c->type);
    esctl_jw_str(out, topic, strlen(topic));
    es_buf_puts(out, ",\"partition\":");
    esctl_jw_int(out, c->partition);
    es_buf_puts(out, ",\"offset\":");
    esctl_jw_int(out, c->offset);
}

static int write_all(const es_buf_t *out)
{
    return fwrite(out->data, 1, out->len, stdout) == out->len && fflush(stdout) == 0 ? 0 : -1;
}

/*
 * --wait
 */

/* Append `s` percent-encoded as one path segment. */
static void path_segment(es_buf_t *out, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            es_buf_append(out, p, 1);
        } else {
            char enc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            es_buf_append(out, enc, 3);
        }
    }
}

static void sleep_us(int64_t us)
{
    struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* A command status after which the aggregate's view may never appear. */
static int status_rejected(const char *status)
{
    return status && (!strcasecmp(status, "REJECTED") || !strcasecmp(status, "FAILED") ||
                      !strcasecmp(status, "INVALID") || !strcasecmp(status, "ERROR"));
}

typedef enum { POLL_FOUND, POLL_ABSENT, POLL_TIMEOUT } poll_result_t;

/*
 * GET `path` until it answers 200 with a JSON object for which `done` holds, or 404 when
 * `absent_ok`, or the deadline passes. Backs off 5 ms -> 100 ms. On POLL_FOUND *view is a new
 * reference. `last` gets a description of the last failed attempt.
 */
static poll_result_t poll_view(const char *url, const char *path, int absent_ok, int pending_key,
                               int64_t deadline_us, json_t **view, char *last, size_t last_size)
{
    es_buf_t body;
    es_buf_init(&body);
    int64_t backoff_us = 5000;
    poll_result_t res = POLL_TIMEOUT;
    for (;;) {
        int64_t left_ms = (deadline_us - es_mono_us()) / 1000;
        if (left_ms <= 0) {
            break;
        }
        int status = 0;
        char errstr[512];
        int req_ms = left_ms < 2000 ? (int)left_ms : 2000;
        if (esctl_http_get(url, path, req_ms, &status, &body, errstr, sizeof(errstr)) != 0) {
            snprintf(last, last_size, "query service at %s: %s", url, errstr);
        } else if (status == 200) {
            json_error_t jerr;
            json_t *v = json_loadb((const char *)body.data, body.len, 0, &jerr);
            if (!json_is_object(v)) {
                snprintf(last, last_size, "query service at %s: GET %s: not a JSON object", url,
                         path);
                json_decref(v);
            } else {
                const char *st = json_string_value(json_object_get(v, "status"));
                if (pending_key && st && !strcasecmp(st, "PENDING")) {
                    snprintf(last, last_size, "GET %s: still PENDING", path);
                    json_decref(v);
                } else {
                    *view = v;
                    res = POLL_FOUND;
                    break;
                }
            }
        } else if (status == 404) {
            if (absent_ok) {
                res = POLL_ABSENT;
                break;
            }
            snprintf(last, last_size, "GET %s: not found yet", path);
        } else {
            snprintf(last, last_size, "query service at %s: GET %s: HTTP %d", url, path, status);
        }
        int64_t left_us = deadline_us - es_mono_us();
        sleep_us(backoff_us < left_us ? backoff_us : left_us > 0 ? left_us : 0);
        backoff_us = backoff_us * 2 > 100000 ? 100000 : backoff_us * 2;
    }
    es_buf_fini(&body);
    return res;
}

/* Follow one delivered command to its outcome and append the outcome line to out. */
static int wait_one(send_state_t *s, const send_cmd_t *c, const char *url, int64_t deadline_us,
                    es_buf_t *out)
{
    char last[640] = "no answer yet";
    es_buf_t path;
    es_buf_init(&path);
    json_t *cmdv = NULL, *view = NULL;
    int ret = -1;

    es_buf_puts(&path, "/commands/");
    path_segment(&path, c->id);
    if (poll_view(url, (const char *)path.data, 0, 0, deadline_us, &cmdv, last, sizeof(last)) !=
        POLL_FOUND) {
        esctl_err(s->ctx, "timed out after %g s waiting for command %s to be handled (%s)",
                  s->opt.timeout_s, c->id, last);
        goto out;
    }
    const char *status = json_string_value(json_object_get(cmdv, "status"));
    /* The aggregate's view: /<context>/<aggregate id>, e.g. /accounts/A1, /transfers/T1. */
    const char *context = es_type_context(c->type);
    es_buf_reset(&path);
    es_buf_puts(&path, "/");
    path_segment(&path, context);
    es_buf_puts(&path, "/");
    path_segment(&path, (const char *)s->arena.data + c->agg_off);
    poll_result_t pr = poll_view(url, (const char *)path.data, status_rejected(status), 1,
                                 deadline_us, &view, last, sizeof(last));
    if (pr == POLL_TIMEOUT) {
        esctl_err(s->ctx, "timed out after %g s waiting for the outcome of command %s (%s)",
                  s->opt.timeout_s, c->id, last);
        goto out;
    }

    /* "accounts" -> "account": the view's key in the outcome line. */
    char entity[64];
    snprintf(entity, sizeof(entity), "%s", context);
    size_t el = strlen(entity);
    if (el > 1 && entity[el - 1] == 's') {
        entity[el - 1] = '\0';
    }
    delivery_json(out, c);
    es_buf_puts(out, ",\"type\":");
    esctl_jw_str(out, es_type_name(c->type), strlen(es_type_name(c->type)));
    es_buf_puts(out, ",\"status\":");
    esctl_jw_json(out,
                  json_object_get(cmdv, "status") ? json_object_get(cmdv, "status") : json_null());
    es_buf_puts(out, ",\"reason\":");
    esctl_jw_json(out,
                  json_object_get(cmdv, "reason") ? json_object_get(cmdv, "reason") : json_null());
    es_buf_puts(out, ",");
    esctl_jw_str(out, entity, strlen(entity));
    es_buf_puts(out, ":");
    esctl_jw_json(out, view ? view : json_null());
    es_buf_puts(out, "}\n");
    ret = 0;
out:
    json_decref(cmdv);
    json_decref(view);
    es_buf_fini(&path);
    return ret;
}

/* ES_QUERY_URL, else the port the dev stack's es-query published, else ES_HTTP_PORT, else
 * 8080 (the order scripts/devstack.sh uses). */
static void query_url_default(const es_config_t *cfg, char *buf, size_t size)
{
    const char *v = getenv("ES_QUERY_URL");
    if (v && *v) {
        snprintf(buf, size, "%s", v);
        return;
    }
    char path[1200], port[32];
    snprintf(path, sizeof(path), "%s/run/es-query.port", cfg->data_dir);
    if (es_config_read_file(path, port, sizeof(port)) == 0 && port[0]) {
        snprintf(buf, size, "http://127.0.0.1:%s", port);
        return;
    }
    v = getenv("ES_HTTP_PORT");
    snprintf(buf, size, "http://127.0.0.1:%s", v && *v ? v : "8080");
}

int esctl_send_main(esctl_t *ctx, int argc, char **argv)
{
    static const struct option longopts[] = {ESCTL_COMMON_LONG,
                                             {"file", required_argument, NULL, 'f'},
                                             {"batch", no_argument, NULL, 'B'},
                                             {"wait", no_argument, NULL, 'w'},
                                             {"timeout", required_argument, NULL, 't'},
                                             {"query-url", required_argument, NULL, 'q'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    send_state_t s;
    memset(&s, 0, sizeof(s));
    s.ctx = ctx;
    s.opt.timeout_s = 30;
    es_buf_init(&s.arena);
    char query_url[1024];

    int opt;
    while ((opt = getopt_long(argc, argv, ESCTL_COMMON_SHORT "f:wt:q:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'h':
            help(stdout);
            return ESCTL_OK;
        case 'f':
            s.opt.file = optarg;
            break;
        case 'B':
            s.opt.batch = 1;
            break;
        case 'w':
            s.opt.wait = 1;
            break;
        case 't': {
            char *end;
            s.opt.timeout_s = strtod(optarg, &end);
            if (*end || end == optarg || s.opt.timeout_s <= 0 || s.opt.timeout_s > 86400) {
                esctl_err(ctx, "--timeout must be a number of seconds in (0, 86400], not \"%s\"",
                          optarg);
                return ESCTL_USAGE;
            }
            break;
        }
        case 'q':
            s.opt.query_url = optarg;
            break;
        default: {
            int r = esctl_common_opt(ctx, opt, optarg);
            if (r < 0) {
                return ESCTL_USAGE;
            }
            if (r == 0) {
                esctl_bad_flag(ctx, argv);
                return ESCTL_USAGE;
            }
        }
        }
    }
    if (!s.opt.query_url) {
        query_url_default(&ctx->cfg, query_url, sizeof(query_url));
        s.opt.query_url = query_url;
    }
    int npos = argc - optind;
    if (s.opt.batch) {
        if (npos > 1 || s.opt.file) {
            esctl_err(ctx, "--batch reads JSON lines from stdin and takes at most a type");
            return ESCTL_USAGE;
        }
        s.opt.type_name = npos == 1 ? argv[optind] : NULL;
    } else {
        if (npos < 1) {
            esctl_err(ctx, "missing the command type (try \"esctl send --help\")");
            return ESCTL_USAGE;
        }
        s.opt.type_name = argv[optind];
        if (npos == 2 && !s.opt.file) {
            s.opt.json_arg = argv[optind + 1];
        } else if (npos != 1 || !s.opt.file) {
            esctl_err(ctx, "expected exactly one payload: '<json>' or -f FILE");
            return ESCTL_USAGE;
        }
    }

    char errstr[512];
    s.codec = es_codec_new(errstr, sizeof(errstr));
    if (!s.codec) {
        esctl_err(ctx, "%s", errstr);
        return ESCTL_FAIL;
    }
    int rc = ESCTL_FAIL;
    const es_type_t *type = NULL;
    if (s.opt.type_name) {
        type = type_resolve(&s, s.opt.type_name, 0);
        if (!type) {
            rc = ESCTL_USAGE;
            goto out;
        }
    }

    /* 1. Validate and encode everything. */
    if (s.opt.batch) {
        if (read_batch(&s, type) != 0) {
            goto out;
        }
    } else if (s.opt.file) {
        json_error_t jerr;
        json_t *v = !strcmp(s.opt.file, "-") ? json_loadf(stdin, 0, &jerr)
                                             : json_load_file(s.opt.file, 0, &jerr);
        if (!v) {
            if (jerr.line < 0 || (jerr.line == -1 && jerr.column == -1)) {
                esctl_err(ctx, "could not read %s: %s", s.opt.file, jerr.text);
                rc = ESCTL_FAIL;
                goto out;
            }
            bad_input(&s, 0, "invalid JSON in %s at line %d, column %d: %s", s.opt.file, jerr.line,
                      jerr.column, jerr.text);
        } else {
            cmd_add(&s, type, v, 1);
            json_decref(v);
        }
    } else {
        json_t *v = json_parse(&s, s.opt.json_arg, strlen(s.opt.json_arg), 1, "the argument");
        if (v) {
            cmd_add(&s, type, v, 1);
            json_decref(v);
        }
    }
    if (s.bad_cnt) {
        if (s.opt.batch) {
            esctl_err(ctx, "%zu invalid line%s: nothing was published", s.bad_cnt,
                      s.bad_cnt == 1 ? "" : "s");
        }
        rc = ESCTL_USAGE;
        goto out;
    }
    if (s.cmd_cnt == 0) {
        esctl_err(ctx, "no commands in the input: nothing was published");
        rc = ESCTL_USAGE;
        goto out;
    }

    /* 2. Publish, all at once. */
    if (publish(&s) != 0) {
        if (!s.opt.wait) {
            /* Print what was delivered, so that it can be followed up. */
            es_buf_t out;
            es_buf_init(&out);
            for (size_t i = 0; i < s.cmd_cnt; i++) {
                if (s.cmds[i].delivered && !s.cmds[i].err) {
                    delivery_json(&out, &s.cmds[i]);
                    es_buf_puts(&out, "}\n");
                }
            }
            if (out.len) {
                write_all(&out);
            }
            es_buf_fini(&out);
        }
        goto out;
    }

    /* 3. Report, or follow each command to its outcome. */
    es_buf_t out;
    es_buf_init(&out);
    rc = ESCTL_OK;
    if (!s.opt.wait) {
        for (size_t i = 0; i < s.cmd_cnt; i++) {
            delivery_json(&out, &s.cmds[i]);
            es_buf_puts(&out, "}\n");
        }
    } else {
        int64_t deadline = es_mono_us() + (int64_t)(s.opt.timeout_s * 1e6);
        for (size_t i = 0; i < s.cmd_cnt; i++) {
            if (wait_one(&s, &s.cmds[i], s.opt.query_url, deadline, &out) != 0) {
                rc = ESCTL_FAIL;
                break;
            }
            if (out.len > 65536) {
                if (write_all(&out) != 0) {
                    break;
                }
                es_buf_reset(&out);
            }
        }
    }
    if (out.len && write_all(&out) != 0) {
        esctl_err(ctx, "could not write the results: %s", strerror(errno));
        rc = ESCTL_FAIL;
    }
    es_buf_fini(&out);
out:
    free(s.cmds);
    es_buf_fini(&s.arena);
    es_codec_destroy(s.codec);
    return rc;
}
