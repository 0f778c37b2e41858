/*
 * esctl.h: what the esctl subcommands share: the common flags (-b, -X, -d), the exit codes,
 * the one-line error convention, the fast JSON writer used by replay and the tiny HTTP client
 * used by send --wait.
 *
 * stdout carries data only; every diagnostic goes to stderr as one line
 * "esctl <subcommand>: <message>".
 */
#ifndef ESCTL_H
#define ESCTL_H

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "buf.h"
#include "codec.h"
#include "config.h"

/* Exit codes. */
#define ESCTL_OK 0
#define ESCTL_FAIL 1   /* runtime failure: broker, query service, bad record, timeout */
#define ESCTL_USAGE 2  /* usage error: unknown flag, bad argument, invalid input */
#define ESCTL_BEHIND 3 /* esctl lag --max-lag: some consumer is further behind */

/* The maximum of -b/-d/-X flags remembered for pass-through to child programs. */
#define ESCTL_MAX_PASS 70

typedef struct esctl {
    es_config_t cfg;
    const char *sub; /* the running subcommand, for messages ("send"); borrowed */
    /* The common flags exactly as given, for programs esctl runs (rebuild). Borrowed argv. */
    int pass_argc;
    char *pass_argv[ESCTL_MAX_PASS];
} esctl_t;

/* How long a broker may take to answer before esctl calls it unreachable. */
#define ESCTL_CONNECT_TIMEOUT_MS 4000

/* Long options every subcommand accepts, and their short letters ("b:X:d:"). */
#define ESCTL_COMMON_SHORT "b:X:d:"
/* clang-format off */
#define ESCTL_COMMON_LONG                                                                          \
    {"brokers", required_argument, NULL, 'b'},                                                     \
    {"property", required_argument, NULL, 'X'},                                                    \
    {"data", required_argument, NULL, 'd'}
/* clang-format on */

/* Apply one common flag (opt is 'b', 'X' or 'd', arg borrowed from argv and remembered).
 * Returns 1 when handled, 0 when `opt` is not a common flag, -1 on a bad value (reported). */
int esctl_common_opt(esctl_t *ctx, int opt, char *arg);

/* Report the flag getopt_long() just rejected ('?'): unknown, or missing its value. */
void esctl_bad_flag(const esctl_t *ctx, char **argv);

/* The default branch of every subcommand's option loop: apply a common flag, or report what
 * getopt_long() rejected. Returns 0 when handled, -1 after reporting a usage error. */
int esctl_other_opt(esctl_t *ctx, int opt, char *arg, char **argv);

/* Add the librdkafka property name=value unless the operator set it, or set "debug" (their
 * -X / ES_KAFKA_PROPS always win). esctl lowers librdkafka's own logging this way: its
 * connection errors would repeat what esctl's one line says better. */
void esctl_prop_default(esctl_t *ctx, const char *name, const char *value);

/* Ask the broker for its metadata within timeout_ms. Returns 0, or -1 after reporting
 * "could not reach the Kafka broker at ..." (or why there is no broker address). */
int esctl_broker_check(esctl_t *ctx, int timeout_ms);

/* The same, keeping the handle (a consumer without group, good for metadata and watermarks;
 * rd_kafka_destroy() it) and, when `md` is not NULL, every topic's metadata in *md
 * (rd_kafka_metadata_destroy() it). Returns NULL after reporting. */
rd_kafka_t *esctl_broker_open(esctl_t *ctx, const char *client_id, int timeout_ms,
                              const struct rd_kafka_metadata **md);

/* The help text of the common flags and environment variables, for every --help. */
void esctl_common_help(FILE *out);

/* Print "esctl <sub>: <message>\n" on stderr. */
void esctl_err(const esctl_t *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The known type name closest to `name` (case-insensitive edit distance), restricted to
 * `kind` when kind >= 0, or NULL when none is close. Borrowed from the codec. */
const char *esctl_suggest_type(const es_codec_t *codec, const char *name, int kind);

/* Subcommands: argv[0] is the subcommand's name; each returns an exit code. */
int esctl_send_main(esctl_t *ctx, int argc, char **argv);
int esctl_replay_main(esctl_t *ctx, int argc, char **argv);
int esctl_rebuild_main(esctl_t *ctx, int argc, char **argv);
int esctl_types_main(esctl_t *ctx, int argc, char **argv);
int esctl_saga_main(esctl_t *ctx, int argc, char **argv);
int esctl_sagas_main(esctl_t *ctx, int argc, char **argv);
int esctl_lag_main(esctl_t *ctx, int argc, char **argv);
int esctl_chaos_main(esctl_t *ctx, int argc, char **argv);

/*
 * Follow a delivered command through the query service at `url` (wait.c) until it has been
 * handled, then append its outcome line to `out`:
 *   {"command_id","type","status","reason","<entity>":{view} + `tail`
 * where <entity> is the type's context without its plural s ("account", "transfer") and `tail`
 * (borrowed) completes the line, e.g. ",\"topic\":...}\n". All strings borrowed. Returns 0,
 * or -1 with errstr filled when deadline_us (monotonic, es_mono_us) passes first.
 */
int esctl_wait_outcome(const char *url, const char *command_id, const es_type_t *type,
                       const char *aggregate_id, int64_t deadline_us, const char *tail,
                       es_buf_t *out, char *errstr, size_t errstr_size);

/*
 * Fast JSON writer (jsonw.c): appends to an es_buf_t without building json_t trees.
 * Each returns 0, or -1 when out of memory.
 */
/* A JSON string literal (with quotes) from `len` bytes; bytes that are not valid UTF-8 are
 * written as \u00XX so the output is always valid JSON. */
int esctl_jw_str(es_buf_t *out, const char *s, size_t len);
/* A decimal integer. */
int esctl_jw_int(es_buf_t *out, int64_t v);
/* Any jansson value (borrowed), compact, keys in the object's order. */
int esctl_jw_json(es_buf_t *out, const json_t *v);
/* "YYYY-MM-DDTHH:MM:SS.mmmZ" with quotes, from ms since the epoch. */
int esctl_jw_time(es_buf_t *out, int64_t ms);
/* A quoted standard base64 string of `len` bytes. */
int esctl_jw_base64(es_buf_t *out, const void *data, size_t len);

/*
 * HTTP/1.1 GET (http_get.c), blocking, one connection per request.
 * `base_url` is "http://host:port[/prefix]" (borrowed), `path` starts with '/'. The whole
 * exchange is bounded by timeout_ms. On success returns 0, sets *status and replaces the
 * contents of `body` (caller storage, NUL-terminated). Returns -1 with errstr filled when the
 * server cannot be reached or the response is malformed.
 */
int esctl_http_get(const char *base_url, const char *path, int timeout_ms, int *status,
                   es_buf_t *body, char *errstr, size_t errstr_size);

/* The query service's base URL into buf[size]: ES_QUERY_URL, else the port the dev stack's
 * es-query published in $ES_DATA/run/es-query.port, else ES_HTTP_PORT, else 8080. */
void esctl_query_url(const es_config_t *cfg, char *buf, size_t size);

#endif
