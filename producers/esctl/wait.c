/*
 * wait.c: `esctl send --wait`: follow one delivered command through the query service until
 * it has been handled, then describe the outcome:
 *   GET /commands/{command_id}        until it exists (ACCEPTED or REJECTED, with a reason)
 *   GET /<context>/{aggregate_id}     the aggregate's view (/accounts/A1, /transfers/T1,
 *                                     /orders/O1; the catalog's are /products/P1,
 *                                     a payment's its order /orders/O1),
 *                                     until it exists and its status is not PENDING
 * A rejected command's aggregate may not exist: then its view is null. Polls back off from
 * 5 ms to 100 ms; one deadline bounds everything.
 */
#include "esctl.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "ids.h"

#define WAIT_BACKOFF_MIN_US 5000
#define WAIT_BACKOFF_MAX_US 100000
#define WAIT_REQUEST_MAX_MS 2000

typedef enum { POLL_FOUND, POLL_ABSENT, POLL_TIMEOUT } poll_result_t;

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
    if (us <= 0) {
        return;
    }
    struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* A command status after which the aggregate's view may never appear. */
static int status_rejected(const char *status)
{
    return status && (!strcasecmp(status, "REJECTED") || !strcasecmp(status, "FAILED"));
}

/*
 * GET `path` until it answers 200 with a JSON object (whose "status" is not PENDING when
 * `skip_pending`), or 404 (or 400: a malformed id) when `absent_ok`, or the deadline passes. On
 * POLL_FOUND *view is a new reference. `last` describes the last unsuccessful attempt.
 */
static poll_result_t poll_view(const char *url, const char *path, int absent_ok, int skip_pending,
                               int64_t deadline_us, json_t **view, char *last, size_t last_size)
{
    es_buf_t body;
    es_buf_init(&body);
    int64_t backoff_us = WAIT_BACKOFF_MIN_US;
    poll_result_t res = POLL_TIMEOUT;
    for (;;) {
        int64_t left_ms = (deadline_us - es_mono_us()) / 1000;
        if (left_ms <= 0) {
            break;
        }
        int status = 0;
        char errstr[512];
        int req_ms = left_ms < WAIT_REQUEST_MAX_MS ? (int)left_ms : WAIT_REQUEST_MAX_MS;
        if (esctl_http_get(url, path, req_ms, &status, &body, errstr, sizeof(errstr)) != 0) {
            snprintf(last, last_size, "query service at %s: %s", url, errstr);
        } else if (status == 200) {
            json_error_t jerr;
            json_t *v = json_loadb((const char *)body.data, body.len, 0, &jerr);
            const char *st = json_string_value(json_object_get(v, "status"));
            if (!json_is_object(v)) {
                snprintf(last, last_size, "query service at %s: GET %s: not a JSON object", url,
                         path);
                json_decref(v);
            } else if (skip_pending && st && !strcasecmp(st, "PENDING")) {
                snprintf(last, last_size, "GET %s: still PENDING", path);
                json_decref(v);
            } else {
                *view = v;
                res = POLL_FOUND;
                break;
            }
        } else if (status == 404 || (absent_ok && status == 400)) {
            /* 400: a refused command's id may be one no view can have (malformed) */
            if (absent_ok) {
                res = POLL_ABSENT;
                break;
            }
            snprintf(last, last_size, "GET %s: not found yet", path);
        } else {
            snprintf(last, last_size, "query service at %s: GET %s: HTTP %d", url, path, status);
        }
        int64_t left_us = deadline_us - es_mono_us();
        sleep_us(backoff_us < left_us ? backoff_us : left_us);
        backoff_us = backoff_us * 2 > WAIT_BACKOFF_MAX_US ? WAIT_BACKOFF_MAX_US : backoff_us * 2;
    }
    es_buf_fini(&body);
    return res;
}

static void put_field(es_buf_t *out, const char *name, const json_t *v)
{
    es_buf_puts(out, ",\"");
    es_buf_puts(out, name);
    es_buf_puts(out, "\":");
    esctl_jw_json(out, v ? v : json_null());
}

/* The query service's collection holding a context's aggregates: the context's own name,
 * except the catalog's, whose aggregates are products, and payments', which show in their
 * order (its "payment" field). */
static const char *view_collection(const char *context)
{
    if (!strcmp(context, "catalog")) {
        return "products";
    }
    return !strcmp(context, "payments") ? "orders" : context;
}

int esctl_wait_outcome(const char *url, const char *command_id, const es_type_t *type,
                       const char *aggregate_id, int64_t deadline_us, const char *tail,
                       es_buf_t *out, char *errstr, size_t errstr_size)
{
    char last[640] = "no answer yet";
    es_buf_t path;
    es_buf_init(&path);
    json_t *cmdv = NULL, *view = NULL;
    int ret = -1;

    es_buf_puts(&path, "/commands/");
    path_segment(&path, command_id);
    if (poll_view(url, (const char *)path.data, 0, 0, deadline_us, &cmdv, last, sizeof(last)) !=
        POLL_FOUND) {
        snprintf(errstr, errstr_size, "command %s was not handled in time (%s)", command_id, last);
        goto out;
    }
    const char *status = json_string_value(json_object_get(cmdv, "status"));
    const char *context = view_collection(es_type_context(type));
    es_buf_reset(&path);
    es_buf_puts(&path, "/");
    path_segment(&path, context);
    es_buf_puts(&path, "/");
    path_segment(&path, aggregate_id);
    if (poll_view(url, (const char *)path.data, status_rejected(status), 1, deadline_us, &view,
                  last, sizeof(last)) == POLL_TIMEOUT) {
        snprintf(errstr, errstr_size,
                 "command %s is %s but its outcome did not appear in time (%s)", command_id,
                 status ? status : "handled", last);
        goto out;
    }

    /* "accounts" -> "account": the view's name in the outcome line. */
    char entity[64];
    snprintf(entity, sizeof(entity), "%s", context);
    size_t el = strlen(entity);
    if (el > 1 && entity[el - 1] == 's') {
        entity[el - 1] = '\0';
    }
    es_buf_puts(out, "{\"command_id\":");
    esctl_jw_str(out, command_id, strlen(command_id));
    es_buf_puts(out, ",\"type\":");
    esctl_jw_str(out, es_type_name(type), strlen(es_type_name(type)));
    put_field(out, "status", json_object_get(cmdv, "status"));
    put_field(out, "reason", json_object_get(cmdv, "reason"));
    put_field(out, entity, view);
    es_buf_puts(out, tail);
    ret = 0;
out:
    json_decref(cmdv);
    json_decref(view);
    es_buf_fini(&path);
    return ret;
}
