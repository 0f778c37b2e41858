/*
 * send.c: `esctl send`: validate commands against their schemas, wrap them in envelopes and
 * publish them with an idempotent producer; with --wait, follow each one to its outcome
 * (wait.c).
 *
 * The whole input is validated and encoded before anything is produced, so bad input never
 * publishes a partial batch. Large batches are validated by several threads (one codec each)
 * over contiguous ranges of lines; encoded values stay in chunked arenas until every delivery
 * report is in, so messages are produced without copying and without waiting per message.
 * Results are printed in input order.
 */
#include "esctl.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "envelope.h"
#include "ids.h"
#include "kafka.h"
#include "log.h"

/* Invalid lines reported individually before the summary. */
#define SEND_MAX_REPORTED 10
#define SEND_BLOCK_CMDS 4096
#define SEND_CHUNK_BYTES (4u << 20)
#define SEND_MAX_THREADS 8
#define SEND_INPUT_MAX ((size_t)16 << 20)         /* -f: one command */
#define SEND_BATCH_INPUT_MAX ((size_t)1024 << 20) /* --batch: held whole while validated */
/* a command's record, its envelope included: Kafka's default limit for a message is 1,000,000
 * bytes (message.max.bytes), and a record's key and headers count too */
#define SEND_RECORD_MAX 900000
/* Below this many lines per thread, starting threads costs more than it saves. */
#define SEND_LINES_PER_THREAD 20000

typedef struct send_cmd {
    const es_type_t *type; /* borrowed from its part's codec */
    const char *agg;       /* NUL-terminated, in its part's arena */
    size_t agg_len;
    const unsigned char *val; /* the encoded envelope, in its part's arena */
    size_t val_len;
    char id[ES_ID_LEN + 1];
    char traceparent[ES_TRACEPARENT_LEN + 1];
    int64_t occurred_at;
    size_t line; /* input line, for messages */
    rd_kafka_topic_t *rkt;
    int delivered;
    rd_kafka_resp_err_t err;
    int32_t partition;
    int64_t offset;
} send_cmd_t;

typedef struct send_line {
    const char *text; /* not NUL-terminated */
    size_t len;
    size_t lineno;
} send_line_t;

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t used, cap;
    unsigned char data[];
} arena_chunk_t;

/* One validator's share of the input and everything it produced. */
typedef struct send_part {
    es_codec_t *codec; /* owned when own_codec */
    int own_codec;
    const send_line_t *lines; /* borrowed */
    size_t line_cnt;
    const char *type_name; /* NULL: each line names its type */
    int batch;
    const char *what; /* where a single payload came from, for JSON errors */
    send_cmd_t **blocks;
    size_t block_cap;
    size_t cmd_cnt;
    arena_chunk_t *chunks;
    es_buf_t enc; /* scratch for one encoded envelope */
    size_t bad_cnt;
    size_t err_cnt;
    struct {
        size_t line;
        char msg[600];
    } errs[SEND_MAX_REPORTED];
} send_part_t;

typedef struct send_opts {
    const char *type_name;
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
    send_part_t parts[SEND_MAX_THREADS];
    size_t part_cnt;
    size_t cmd_cnt;
    size_t outstanding;
} send_state_t;

static void help(FILE *out)
{
    fprintf(out,
            "usage: esctl send <CommandType> '<json>'\n"
            "       esctl send <CommandType> -f FILE        (FILE \"-\" = stdin)\n"
            "       esctl send --batch [<CommandType>] [-f FILE]  JSON lines, stdin by default\n"
            "\n"
            "Validates each command against its schema, wraps it in an envelope (a new random\n"
            "command id, which is also the correlation id) and publishes it to its topic with the\n"
            "aggregate id as key, then prints one JSON line per command, in input order:\n"
            "  {\"command_id\",\"topic\",\"partition\",\"offset\"}\n"
            "With --batch each line is the payload of <CommandType>, or "
            "{\"type\":\"X\",\"data\":{...}}\n"
            "when no type is given; blank lines are skipped. The whole input is validated first:\n"
            "if any line is invalid, nothing is published. \"esctl types\" lists the commands.\n"
            "\n"
            "flags:\n"
            "  -f, --file FILE        read the payload from FILE\n"
            "      --batch            read JSON lines from stdin\n"
            "  -w, --wait             after delivery, poll the query service until each command\n"
            "                         is handled; print its outcome and the aggregate's view:\n"
            "                         {\"command_id\",\"type\",\"status\",\"reason\",\n"
            "                          "
            "\"account\"|\"transfer\":{...},\"topic\",\"partition\",\"offset\"}\n"
            "  -t, --timeout S        give up waiting after S seconds (exit 1)   default: 30\n"
            "  -q, --query-url URL    the query service                  env ES_QUERY_URL\n"
            "                         default: http://127.0.0.1:<port>, the port from\n"
            "                         $ES_DATA/run/es-query.port, else $ES_HTTP_PORT, else 8080\n"
            "\n");
    esctl_common_help(out);
    fprintf(out, "\nexit status: 0 all published (and handled, with --wait), 1 broker or query\n"
                 "service failure or timeout, 2 invalid input or usage\n");
}

/* Record one invalid input of a part. Counted always, kept for the first few. */
static void bad_input(send_part_t *pt, size_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void bad_input(send_part_t *pt, size_t line, const char *fmt, ...)
{
    pt->bad_cnt++;
    if (pt->err_cnt == SEND_MAX_REPORTED) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pt->errs[pt->err_cnt].msg, sizeof(pt->errs[0].msg), fmt, ap);
    va_end(ap);
    pt->errs[pt->err_cnt++].line = line;
}

/* Copy `len` bytes into the part's arena. Returns a stable pointer, or NULL. */
static void *arena_copy(send_part_t *pt, const void *data, size_t len)
{
    arena_chunk_t *c = pt->chunks;
    if (!c || c->cap - c->used < len) {
        size_t cap = len > SEND_CHUNK_BYTES ? len : SEND_CHUNK_BYTES;
        c = malloc(sizeof(*c) + cap);
        if (!c) {
            return NULL;
        }
        c->next = pt->chunks;
        c->used = 0;
        c->cap = cap;
        pt->chunks = c;
    }
    void *p = c->data + c->used;
    memcpy(p, data, len);
    c->used += len;
    return p;
}

static send_cmd_t *cmd_at(const send_part_t *pt, size_t i)
{
    return &pt->blocks[i / SEND_BLOCK_CMDS][i % SEND_BLOCK_CMDS];
}

static send_cmd_t *cmd_new(send_part_t *pt)
{
    size_t b = pt->cmd_cnt / SEND_BLOCK_CMDS;
    if (pt->cmd_cnt % SEND_BLOCK_CMDS == 0) {
        if (b == pt->block_cap) {
            size_t cap = pt->block_cap ? pt->block_cap * 2 : 16;
            send_cmd_t **blocks = realloc(pt->blocks, cap * sizeof(*blocks));
            if (!blocks) {
                return NULL;
            }
            pt->blocks = blocks;
            pt->block_cap = cap;
        }
        pt->blocks[b] = malloc(SEND_BLOCK_CMDS * sizeof(send_cmd_t));
        if (!pt->blocks[b]) {
            return NULL;
        }
    }
    send_cmd_t *c = cmd_at(pt, pt->cmd_cnt++);
    memset(c, 0, sizeof(*c));
    return c;
}

static void part_fini(send_part_t *pt)
{
    size_t blocks = (pt->cmd_cnt + SEND_BLOCK_CMDS - 1) / SEND_BLOCK_CMDS;
    for (size_t i = 0; i < blocks; i++) {
        free(pt->blocks[i]);
    }
    free(pt->blocks);
    while (pt->chunks) {
        arena_chunk_t *next = pt->chunks->next;
        free(pt->chunks);
        pt->chunks = next;
    }
    es_buf_fini(&pt->enc);
    if (pt->own_codec) {
        es_codec_destroy(pt->codec);
    }
}

/* Resolve a sendable type, or record why the name is not one. */
static const es_type_t *type_resolve(send_part_t *pt, const char *name, size_t line)
{
    const es_type_t *type = es_codec_type(pt->codec, name);
    if (!type) {
        const char *hint = esctl_suggest_type(pt->codec, name, ES_KIND_COMMAND);
        if (hint) {
            bad_input(pt, line, "unknown command type \"%s\" (did you mean \"%s\"?)", name, hint);
        } else {
            bad_input(pt, line, "unknown command type \"%s\" (\"esctl types\" lists them)", name);
        }
        return NULL;
    }
    if (es_type_kind(type) != ES_KIND_COMMAND) {
        bad_input(pt, line, "\"%s\" is an event type: only commands can be sent", name);
        return NULL;
    }
    return type;
}

/* Validate one payload (borrowed) and keep its encoded command. */
static void cmd_add(send_part_t *pt, const es_type_t *type, const json_t *payload, size_t line)
{
    char errstr[512];
    const char *tname = es_type_name(type);
    if (!json_is_object(payload)) {
        bad_input(pt, line, "the %s payload must be a JSON object", tname);
        return;
    }
    const char *key_field = es_type_key_field(type);
    const json_t *key = json_object_get(payload, key_field);
    es_envelope_t env;
    memset(&env, 0, sizeof(env));
    if (json_is_string(key)) {
        if (json_string_length(key) >= sizeof(env.aggregate_id)) {
            bad_input(pt, line,
                      "invalid %s: field \"%s\" (the aggregate id) is longer than %d bytes", tname,
                      key_field, ES_AGG_MAX - 1);
            return;
        }
        memcpy(env.aggregate_id, json_string_value(key), json_string_length(key) + 1);
    } /* else the codec names the missing or mistyped field below */
    if (es_id_random(env.event_id) != 0) {
        bad_input(pt, line, "could not generate a command id: %s", strerror(errno));
        return;
    }
    snprintf(env.type, sizeof(env.type), "%s", tname);
    env.aggregate_version = 0;
    memcpy(env.correlation_id, env.event_id, sizeof(env.correlation_id));
    env.causation_id[0] = '\0';
    es_traceparent_make(env.traceparent, env.correlation_id, env.event_id);
    env.occurred_at = es_now_ms();

    es_buf_reset(&pt->enc);
    if (es_envelope_encode(pt->codec, &env, type, payload, &pt->enc, errstr, sizeof(errstr)) != 0) {
        bad_input(pt, line, "invalid %s: %s", tname, errstr);
        return;
    }
    if (!env.aggregate_id[0]) {
        bad_input(pt, line, "invalid %s: field \"%s\" (the aggregate id) must not be empty", tname,
                  key_field);
        return;
    }
    if (pt->enc.len > SEND_RECORD_MAX) {
        bad_input(pt, line,
                  "invalid %s: the command is too large: %zu bytes once encoded, more than %d "
                  "(Kafka takes at most 1,000,000 in a message by default)",
                  tname, pt->enc.len, SEND_RECORD_MAX);
        return;
    }
    if (pt->bad_cnt) {
        return; /* nothing will be published: keep validating, keep nothing */
    }
    size_t agg_len = strlen(env.aggregate_id);
    send_cmd_t *c = cmd_new(pt);
    if (!c || !(c->val = arena_copy(pt, pt->enc.data, pt->enc.len)) ||
        !(c->agg = arena_copy(pt, env.aggregate_id, agg_len + 1))) {
        bad_input(pt, line, "out of memory");
        return;
    }
    c->type = type;
    c->val_len = pt->enc.len;
    c->agg_len = agg_len;
    memcpy(c->id, env.event_id, sizeof(c->id));
    memcpy(c->traceparent, env.traceparent, sizeof(c->traceparent));
    c->occurred_at = env.occurred_at;
    c->line = line;
    c->partition = -1;
    c->offset = -1;
}

/* Validate one input line (or the single payload). */
static void line_validate(send_part_t *pt, const es_type_t *type, const send_line_t *ln)
{
    json_error_t jerr;
    json_t *v = json_loadb(ln->text, ln->len, JSON_REJECT_DUPLICATES, &jerr);
    if (!v) {
        if (pt->batch) {
            bad_input(pt, ln->lineno, "invalid JSON at column %d: %s", jerr.column, jerr.text);
        } else {
            bad_input(pt, ln->lineno, "invalid JSON in %s at line %d, column %d: %s", pt->what,
                      jerr.line, jerr.column, jerr.text);
        }
        return;
    }
    if (type) {
        cmd_add(pt, type, v, ln->lineno);
    } else {
        const char *tname = json_string_value(json_object_get(v, "type"));
        const json_t *data = json_object_get(v, "data");
        if (!json_is_object(v) || !tname || !data || json_object_size(v) != 2) {
            bad_input(pt, ln->lineno,
                      "expected {\"type\":\"<CommandType>\",\"data\":{...}} and nothing else "
                      "(or name the type: esctl send --batch <CommandType>)");
        } else {
            const es_type_t *t = type_resolve(pt, tname, ln->lineno);
            if (t) {
                cmd_add(pt, t, data, ln->lineno);
            }
        }
    }
    json_decref(v);
}

static void *part_validate(void *arg)
{
    send_part_t *pt = arg;
    const es_type_t *type = pt->type_name ? es_codec_type(pt->codec, pt->type_name) : NULL;
    for (size_t i = 0; i < pt->line_cnt; i++) {
        line_validate(pt, type, &pt->lines[i]);
    }
    return NULL;
}

/* Read all of `fd` into buf, `max` bytes at most. Returns 0 or -1 (errno set: EFBIG when
 * there is more). */
static int read_all(int fd, es_buf_t *buf, size_t max)
{
    for (;;) {
        if (buf->len > max) {
            errno = EFBIG;
            return -1;
        }
        if (es_buf_reserve(buf, 1 << 20) != 0) {
            errno = ENOMEM;
            return -1;
        }
        ssize_t n = read(fd, buf->data + buf->len, buf->cap - buf->len - 1);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return -1;
        }
        if (n == 0) {
            return 0;
        }
        buf->len += (size_t)n;
        buf->data[buf->len] = '\0';
    }
}

/* Split the input into non-blank lines. Returns the count, or -1 when out of memory. */
static ssize_t lines_split(const es_buf_t *in, send_line_t **out)
{
    size_t cap = 1024, cnt = 0, lineno = 0;
    send_line_t *lines = malloc(cap * sizeof(*lines));
    const char *p = (const char *)in->data, *end = p + in->len;
    while (lines && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        lineno++;
        const char *s = p;
        while (s < e && (*s == ' ' || *s == '\t' || *s == '\r')) {
            s++;
        }
        if (s < e) {
            if (cnt == cap) {
                cap *= 2;
                send_line_t *nlines = realloc(lines, cap * sizeof(*lines));
                if (!nlines) {
                    free(lines);
                    return -1;
                }
                lines = nlines;
            }
            size_t len = (size_t)(e - p);
            while (len > 0 && p[len - 1] == '\r') {
                len--;
            }
            lines[cnt++] = (send_line_t){.text = p, .len = len, .lineno = lineno};
        }
        p = nl ? nl + 1 : end;
    }
    if (!lines) {
        return -1;
    }
    *out = lines;
    return (ssize_t)cnt;
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

/* Check that the broker answers and that every topic we will produce to exists, so that an
 * unreachable broker fails in seconds with nothing queued. */
static int check_topics(send_state_t *s, rd_kafka_t *rk, rd_kafka_topic_t **rkts, size_t rkt_cnt)
{
    for (size_t i = 0; i < rkt_cnt; i++) {
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkts[i], &md, ESCTL_CONNECT_TIMEOUT_MS);
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

/* Produce one command, waiting only while librdkafka's local queue is full. */
static rd_kafka_resp_err_t produce_one(rd_kafka_t *rk, send_cmd_t *c)
{
    es_envelope_t env;
    memcpy(env.event_id, c->id, sizeof(env.event_id));
    snprintf(env.type, sizeof(env.type), "%s", es_type_name(c->type));
    memcpy(env.aggregate_id, c->agg, c->agg_len + 1);
    env.aggregate_version = 0;
    memcpy(env.correlation_id, c->id, sizeof(env.correlation_id));
    env.causation_id[0] = '\0';
    memcpy(env.traceparent, c->traceparent, sizeof(env.traceparent));
    env.occurred_at = c->occurred_at;
    rd_kafka_headers_t *hdrs = es_envelope_headers_new(&env, "esctl");
    rd_kafka_resp_err_t err;
    for (;;) {
        /* No copy flag: the arena outlives every delivery report. */
        err = rd_kafka_producev(
            rk, RD_KAFKA_V_RKT(c->rkt), RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA),
            RD_KAFKA_V_KEY((c->agg), c->agg_len), RD_KAFKA_V_VALUE(((void *)c->val), c->val_len),
            RD_KAFKA_V_TIMESTAMP(c->occurred_at), RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(c),
            RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            break;
        }
        rd_kafka_poll(rk, 10); /* let delivery reports drain the queue */
    }
    if (err) {
        rd_kafka_headers_destroy(hdrs);
    }
    return err;
}

/* Produce every command and wait for all delivery reports. Returns 0 when all were
 * delivered, -1 otherwise (reported). */
static int publish(send_state_t *s)
{
    char errstr[512];
    es_config_t *cfg = &s->ctx->cfg;
    esctl_prop_default(s->ctx, "log_level", "2");
    rd_kafka_t *rk = es_kafka_producer_new(cfg, "esctl", dr_cb, s, errstr, sizeof(errstr));
    if (!rk) {
        esctl_err(s->ctx, "%s", errstr);
        return -1;
    }
    int ret = -1;
    rd_kafka_topic_t *rkts[64];
    size_t rkt_cnt = 0;
    /* One topic handle per distinct topic: cheaper than a lookup by name per message. */
    for (size_t p = 0; p < s->part_cnt; p++) {
        for (size_t i = 0; i < s->parts[p].cmd_cnt; i++) {
            send_cmd_t *c = cmd_at(&s->parts[p], i);
            const char *topic = es_type_topic(c->type);
            size_t j = 0;
            while (j < rkt_cnt && strcmp(rd_kafka_topic_name(rkts[j]), topic) != 0) {
                j++;
            }
            if (j == rkt_cnt) {
                if (rkt_cnt == sizeof(rkts) / sizeof(rkts[0])) {
                    esctl_err(s->ctx, "too many distinct topics in one batch");
                    goto out;
                }
                rkts[rkt_cnt++] = rd_kafka_topic_new(rk, topic, NULL);
            }
            c->rkt = rkts[j];
        }
    }
    if (check_topics(s, rk, rkts, rkt_cnt) != 0) {
        goto out;
    }

    s->outstanding = 0;
    size_t n = 0;
    for (size_t p = 0; p < s->part_cnt; p++) {
        for (size_t i = 0; i < s->parts[p].cmd_cnt; i++, n++) {
            send_cmd_t *c = cmd_at(&s->parts[p], i);
            rd_kafka_resp_err_t err = produce_one(rk, c);
            if (err) {
                c->delivered = 1;
                c->err = err;
                continue;
            }
            s->outstanding++;
            if ((n & 1023) == 0) {
                rd_kafka_poll(rk, 0);
            }
        }
    }
    /* message.timeout.ms bounds every message, so this ends. */
    while (s->outstanding > 0) {
        rd_kafka_flush(rk, 1000);
    }
    size_t failed = 0;
    for (size_t p = 0; p < s->part_cnt; p++) {
        for (size_t i = 0; i < s->parts[p].cmd_cnt; i++) {
            send_cmd_t *c = cmd_at(&s->parts[p], i);
            if (c->err && ++failed <= SEND_MAX_REPORTED) {
                char where[32] = "";
                if (s->opt.batch) {
                    snprintf(where, sizeof(where), "line %zu: ", c->line);
                }
                esctl_err(s->ctx, "%scould not publish command %s to \"%s\": %s", where, c->id,
                          es_type_topic(c->type), rd_kafka_err2str(c->err));
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

/* ,"topic":..,"partition":..,"offset":..}\n */
static void delivery_tail(es_buf_t *out, const send_cmd_t *c)
{
    const char *topic = es_type_topic(c->type);
    es_buf_puts(out, ",\"topic\":");
    esctl_jw_str(out, topic, strlen(topic));
    es_buf_puts(out, ",\"partition\":");
    esctl_jw_int(out, c->partition);
    es_buf_puts(out, ",\"offset\":");
    esctl_jw_int(out, c->offset);
    es_buf_puts(out, "}\n");
}

static void delivery_line(es_buf_t *out, const send_cmd_t *c)
{
    es_buf_puts(out, "{\"command_id\":\"");
    es_buf_puts(out, c->id);
    es_buf_puts(out, "\"");
    delivery_tail(out, c);
}

static int out_write(es_buf_t *out)
{
    int ok = fwrite(out->data, 1, out->len, stdout) == out->len && fflush(stdout) == 0;
    es_buf_reset(out);
    return ok ? 0 : -1;
}

static int parse_args(send_state_t *s, int argc, char **argv)
{
    static const struct option longopts[] = {ESCTL_COMMON_LONG,
                                             {"file", required_argument, NULL, 'f'},
                                             {"batch", no_argument, NULL, 'B'},
                                             {"wait", no_argument, NULL, 'w'},
                                             {"timeout", required_argument, NULL, 't'},
                                             {"query-url", required_argument, NULL, 'q'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    esctl_t *ctx = s->ctx;
    int opt;
    while ((opt = getopt_long(argc, argv, ESCTL_COMMON_SHORT "f:wt:q:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'h':
            help(stdout);
            return 1;
        case 'f':
            s->opt.file = optarg;
            break;
        case 'B':
            s->opt.batch = 1;
            break;
        case 'w':
            s->opt.wait = 1;
            break;
        case 't': {
            char *end;
            s->opt.timeout_s = strtod(optarg, &end);
            if (*end || end == optarg || !(s->opt.timeout_s > 0) || s->opt.timeout_s > 86400) {
                esctl_err(ctx, "--timeout must be a number of seconds in (0, 86400], not \"%s\"",
                          optarg);
                return -1;
            }
            break;
        }
        case 'q':
            s->opt.query_url = optarg;
            break;
        default:
            if (esctl_other_opt(ctx, opt, optarg, argv) != 0) {
                return -1;
            }
        }
    }
    int npos = argc - optind;
    if (s->opt.batch) {
        if (npos > 1) {
            esctl_err(ctx, "--batch reads JSON lines from stdin (or -f FILE) and takes at most "
                           "a type");
            return -1;
        }
        s->opt.type_name = npos == 1 ? argv[optind] : NULL;
        return 0;
    }
    if (npos < 1) {
        esctl_err(ctx, "missing the command type (try \"esctl send --help\")");
        return -1;
    }
    s->opt.type_name = argv[optind];
    if (npos == 2 && !s->opt.file) {
        s->opt.json_arg = argv[optind + 1];
    } else if (npos != 1 || !s->opt.file) {
        esctl_err(ctx, "expected exactly one payload: '<json>' or -f FILE");
        return -1;
    }
    return 0;
}

static int cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > SEND_MAX_THREADS ? SEND_MAX_THREADS : (int)n;
}

/* Validate every line, in parallel when there are many. Returns 0 when all are valid;
 * otherwise reports them and returns ESCTL_USAGE, or ESCTL_FAIL on a setup failure. */
static int validate_all(send_state_t *s, es_codec_t *codec, const send_line_t *lines,
                        size_t line_cnt, const char *what)
{
    char errstr[512];
    size_t nthreads = 1;
    if (line_cnt >= 2 * SEND_LINES_PER_THREAD) {
        nthreads = line_cnt / SEND_LINES_PER_THREAD;
        if (nthreads > (size_t)cpu_count()) {
            nthreads = (size_t)cpu_count();
        }
    }
    size_t per = line_cnt / nthreads;
    for (size_t i = 0; i < nthreads; i++) {
        send_part_t *pt = &s->parts[i];
        pt->lines = lines + i * per;
        pt->line_cnt = i + 1 == nthreads ? line_cnt - i * per : per;
        pt->type_name = s->opt.type_name;
        pt->batch = s->opt.batch;
        pt->what = what;
        if (i == 0) {
            pt->codec = codec;
        } else {
            pt->codec = es_codec_new(errstr, sizeof(errstr));
            if (!pt->codec) {
                esctl_err(s->ctx, "%s", errstr);
                return ESCTL_FAIL;
            }
            pt->own_codec = 1;
        }
        s->part_cnt = i + 1;
    }
    pthread_t th[SEND_MAX_THREADS];
    size_t started = 1;
    for (size_t i = 1; i < nthreads; i++, started++) {
        if (pthread_create(&th[i], NULL, part_validate, &s->parts[i]) != 0) {
            break;
        }
    }
    part_validate(&s->parts[0]);
    for (size_t i = started; i < nthreads; i++) {
        part_validate(&s->parts[i]); /* no thread for it: do it here */
    }
    for (size_t i = 1; i < started; i++) {
        pthread_join(th[i], NULL);
    }

    size_t bad = 0, shown = 0;
    for (size_t i = 0; i < s->part_cnt; i++) {
        const send_part_t *pt = &s->parts[i];
        bad += pt->bad_cnt;
        s->cmd_cnt += pt->cmd_cnt;
        for (size_t e = 0; e < pt->err_cnt && shown < SEND_MAX_REPORTED; e++, shown++) {
            if (s->opt.batch) {
                esctl_err(s->ctx, "line %zu: %s", pt->errs[e].line, pt->errs[e].msg);
            } else {
                esctl_err(s->ctx, "%s", pt->errs[e].msg);
            }
        }
    }
    if (bad) {
        if (s->opt.batch) {
            esctl_err(s->ctx, "%zu invalid line%s: nothing was published", bad,
                      bad == 1 ? "" : "s");
        }
        return ESCTL_USAGE;
    }
    if (s->cmd_cnt == 0) {
        esctl_err(s->ctx, "no commands in the input: nothing was published");
        return ESCTL_USAGE;
    }
    return 0;
}

int esctl_send_main(esctl_t *ctx, int argc, char **argv)
{
    send_state_t s;
    memset(&s, 0, sizeof(s));
    s.ctx = ctx;
    s.opt.timeout_s = 30;
    int r = parse_args(&s, argc, argv);
    if (r != 0) {
        return r > 0 ? ESCTL_OK : ESCTL_USAGE;
    }
    char query_url[1024];
    if (!s.opt.query_url) {
        esctl_query_url(&ctx->cfg, query_url, sizeof(query_url));
        s.opt.query_url = query_url;
    }

    char errstr[512];
    es_codec_t *codec = es_codec_new(errstr, sizeof(errstr));
    if (!codec) {
        esctl_err(ctx, "%s", errstr);
        return ESCTL_FAIL;
    }
    int rc = ESCTL_FAIL;
    es_buf_t input, out;
    es_buf_init(&input);
    es_buf_init(&out);
    send_line_t *lines = NULL;
    send_line_t single;
    size_t line_cnt = 0;
    const char *what = "the argument";

    /* The named type, checked once up front. */
    if (s.opt.type_name) {
        send_part_t probe;
        memset(&probe, 0, sizeof(probe));
        probe.codec = codec;
        if (!type_resolve(&probe, s.opt.type_name, 0)) {
            esctl_err(ctx, "%s", probe.errs[0].msg);
            rc = ESCTL_USAGE;
            goto out;
        }
    }

    /* 1. The input, as lines. */
    int64_t t_start = es_mono_us();
    if (s.opt.batch || s.opt.file) {
        int fd = 0;
        if (s.opt.file && strcmp(s.opt.file, "-") != 0) {
            fd = open(s.opt.file, O_RDONLY | O_CLOEXEC);
            what = s.opt.file;
        } else {
            what = "stdin";
        }
        /* a command's record is at most SEND_RECORD_MAX; a batch is held whole until every
         * line is valid */
        size_t max = s.opt.batch ? SEND_BATCH_INPUT_MAX : SEND_INPUT_MAX;
        if (fd < 0 || read_all(fd, &input, max) != 0) {
            if (errno == EFBIG) {
                esctl_err(ctx, "could not read %s: more than %zu MiB%s", what, max >> 20,
                          s.opt.batch ? " (split the batch)" : "");
            } else {
                esctl_err(ctx, "could not read %s: %s", what, strerror(errno));
            }
            if (fd > 0) {
                close(fd);
            }
            goto out;
        }
        if (fd > 0) {
            close(fd);
        }
    }
    if (s.opt.batch) {
        ssize_t n = lines_split(&input, &lines);
        if (n < 0) {
            esctl_err(ctx, "out of memory");
            goto out;
        }
        line_cnt = (size_t)n;
    } else {
        single.text = s.opt.file ? (const char *)input.data : s.opt.json_arg;
        single.len = s.opt.file ? input.len : strlen(s.opt.json_arg);
        single.lineno = 1;
        if (!single.text) {
            single.text = "";
        }
        lines = &single;
        line_cnt = 1;
    }

    /* 2. Validate and encode everything. */
    r = validate_all(&s, codec, lines, line_cnt, what);
    if (r != 0) {
        rc = r;
        goto out;
    }

    /* 3. Publish, all at once. */
    int64_t t_valid = es_mono_us();
    int pub = publish(&s);
    int64_t t_pub = es_mono_us();
    es_log_debug("send timing",
                 "commands=%zu threads=%zu validate_ms=%.1f publish_ms=%.1f rate=%.0f/s", s.cmd_cnt,
                 s.part_cnt, (double)(t_valid - t_start) / 1e3, (double)(t_pub - t_valid) / 1e3,
                 (double)s.cmd_cnt * 1e6 / (double)(t_pub - t_start + 1));

    /* 4. Report: deliveries, or each command's outcome. */
    rc = pub == 0 ? ESCTL_OK : ESCTL_FAIL;
    int64_t deadline = es_mono_us() + (int64_t)(s.opt.timeout_s * 1e6);
    for (size_t p = 0; p < s.part_cnt && !(s.opt.wait && pub != 0); p++) {
        for (size_t i = 0; i < s.parts[p].cmd_cnt; i++) {
            const send_cmd_t *c = cmd_at(&s.parts[p], i);
            if (!c->delivered || c->err) {
                continue;
            }
            if (!s.opt.wait) {
                delivery_line(&out, c);
            } else {
                es_buf_t tail;
                es_buf_init(&tail);
                delivery_tail(&tail, c);
                int w = esctl_wait_outcome(s.opt.query_url, c->id, c->type, c->agg, deadline,
                                           (const char *)tail.data, &out, errstr, sizeof(errstr));
                es_buf_fini(&tail);
                if (w != 0) {
                    esctl_err(ctx, "timed out after %g s: %s", s.opt.timeout_s, errstr);
                    rc = ESCTL_FAIL;
                    goto flush;
                }
            }
            if (out.len >= 65536 && out_write(&out) != 0) {
                goto flush;
            }
        }
    }
flush:
    if (out.len && out_write(&out) != 0) {
        esctl_err(ctx, "could not write the results: %s", strerror(errno));
        rc = ESCTL_FAIL;
    }
out:
    for (size_t i = 0; i < s.part_cnt; i++) {
        part_fini(&s.parts[i]);
    }
    if (lines != &single) {
        free(lines);
    }
    es_buf_fini(&input);
    es_buf_fini(&out);
    es_codec_destroy(codec);
    return rc;
}
