/*
 * chaos_req.c: reading an `esctl chaos` request (see chaos_req.h).
 */
#include "chaos_req.h"

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* The request types a fault may fail: what the platform's clients send (ApiKey numbers are
 * Kafka's; the installed headers do not name them). */
static const struct {
    const char *name;
    int key;
} apis[] = {{"produce", 0},          {"fetch", 1},        {"listoffsets", 2},
            {"metadata", 3},         {"offsetcommit", 8}, {"offsetfetch", 9},
            {"findcoordinator", 10}, {"joingroup", 11},   {"heartbeat", 12},
            {"leavegroup", 13},      {"syncgroup", 14},   {"initproducerid", 22}};
#define API_CNT (sizeof(apis) / sizeof(apis[0]))

static const char *const fault_names[] = {"latency", "down", "errors", "heal", "status"};

const char *chaos_fault_name(chaos_fault_t fault)
{
    return fault_names[fault];
}

const char *chaos_api_name(int api)
{
    for (size_t i = 0; i < API_CNT; i++) {
        if (apis[i].key == api) {
            return apis[i].name;
        }
    }
    return NULL;
}

const char *chaos_error_name(int error)
{
    const struct rd_kafka_err_desc *descs;
    size_t cnt;
    rd_kafka_get_err_descs(&descs, &cnt);
    for (size_t i = 0; i < cnt; i++) {
        if (descs[i].name && descs[i].code == error) {
            return descs[i].name;
        }
    }
    return "?";
}

/* An error a broker can answer with: one of Kafka's codes, or _TRANSPORT (librdkafka's own,
 * which makes the mock cut the connection as it reads the request). Returns -1 for none. */
static int error_by_name(const char *name)
{
    const struct rd_kafka_err_desc *descs;
    size_t cnt;
    rd_kafka_get_err_descs(&descs, &cnt);
    for (size_t i = 0; i < cnt; i++) {
        if (descs[i].name && !strcasecmp(descs[i].name, name) &&
            (descs[i].code > 0 || descs[i].code == RD_KAFKA_RESP_ERR__TRANSPORT)) {
            return descs[i].code;
        }
    }
    return -1;
}

/* The integer `key` of `obj` in [min, max] into *out, `dflt` when absent. 0 or -1. */
static int int_field(const json_t *obj, const char *key, int64_t min, int64_t max, int64_t dflt,
                     int64_t *out, char *errstr, size_t errstr_size)
{
    const json_t *v = json_object_get(obj, key);
    if (!v) {
        *out = dflt;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        snprintf(errstr, errstr_size, "%s must be an integer in %lld..%lld", key, (long long)min,
                 (long long)max);
        return -1;
    }
    *out = json_integer_value(v);
    return 0;
}

static int id_valid(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > CHAOS_ID_MAX) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-')) {
            return 0;
        }
    }
    return 1;
}

/* The fields each fault may carry, besides "id" and "fault". */
static const char *const allowed[][4] = {
    [CHAOS_LATENCY] = {"ms", "for_ms", "broker", NULL},
    [CHAOS_DOWN] = {"for_ms", "broker", NULL},
    [CHAOS_ERRORS] = {"api", "count", "error", NULL},
    [CHAOS_HEAL] = {NULL},
    [CHAOS_STATUS] = {NULL},
};

static int fields_known(const json_t *doc, chaos_fault_t fault, char *errstr, size_t errstr_size)
{
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)doc, key, v)
    {
        (void)v;
        int ok = !strcmp(key, "id") || !strcmp(key, "fault");
        for (size_t i = 0; !ok && allowed[fault][i]; i++) {
            ok = !strcmp(key, allowed[fault][i]);
        }
        if (!ok) {
            snprintf(errstr, errstr_size, "the %s fault takes no %.64s", chaos_fault_name(fault),
                     key);
            return -1;
        }
    }
    return 0;
}

static int parse_doc(const json_t *doc, int broker_cnt, chaos_req_t *out, char *errstr,
                     size_t errstr_size)
{
    const char *fault = json_string_value(json_object_get(doc, "fault"));
    size_t f = 0;
    for (; fault && f < sizeof(fault_names) / sizeof(fault_names[0]); f++) {
        if (!strcmp(fault, fault_names[f])) {
            break;
        }
    }
    if (!fault || f == sizeof(fault_names) / sizeof(fault_names[0])) {
        snprintf(errstr, errstr_size,
                 "the fault must be one of latency, down, errors, heal, status");
        return -1;
    }
    out->fault = (chaos_fault_t)f;
    if (fields_known(doc, out->fault, errstr, errstr_size) != 0) {
        return -1;
    }
    int64_t v;
    switch (out->fault) {
    case CHAOS_LATENCY:
    case CHAOS_DOWN:
        if (int_field(doc, "broker", 0, broker_cnt, 0, &v, errstr, errstr_size) != 0) {
            return -1;
        }
        out->broker = (int)v;
        if (int_field(doc, "for_ms", 1, CHAOS_FOR_MAX_MS,
                      out->fault == CHAOS_LATENCY ? CHAOS_LATENCY_FOR_DEFAULT_MS
                                                  : CHAOS_DOWN_FOR_DEFAULT_MS,
                      &out->for_ms, errstr, errstr_size) != 0) {
            return -1;
        }
        if (out->fault == CHAOS_LATENCY) {
            if (!json_object_get(doc, "ms")) {
                snprintf(errstr, errstr_size, "a latency fault needs ms");
                return -1;
            }
            if (int_field(doc, "ms", 1, CHAOS_LATENCY_MAX_MS, 0, &v, errstr, errstr_size) != 0) {
                return -1;
            }
            out->ms = (int)v;
        }
        return 0;
    case CHAOS_ERRORS: {
        const char *api = json_string_value(json_object_get(doc, "api"));
        out->api = -1;
        for (size_t i = 0; api && i < API_CNT; i++) {
            if (!strcasecmp(api, apis[i].name)) {
                out->api = apis[i].key;
            }
        }
        if (out->api < 0) {
            snprintf(errstr, errstr_size,
                     "the api must be one of produce, fetch, listoffsets, metadata, "
                     "offsetcommit, offsetfetch, findcoordinator, joingroup, heartbeat, "
                     "leavegroup, syncgroup, initproducerid");
            return -1;
        }
        if (int_field(doc, "count", 1, CHAOS_COUNT_MAX, CHAOS_COUNT_DEFAULT, &v, errstr,
                      errstr_size) != 0) {
            return -1;
        }
        out->count = (int)v;
        const json_t *e = json_object_get(doc, "error");
        const char *name = e ? json_string_value(e) : CHAOS_ERROR_DEFAULT;
        out->error = name ? error_by_name(name) : -1;
        if (out->error == -1) {
            snprintf(errstr, errstr_size,
                     "the error must name a Kafka error code (REQUEST_TIMED_OUT, "
                     "NOT_LEADER_FOR_PARTITION, ...) or _TRANSPORT (the connection is cut)");
            return -1;
        }
        return 0;
    }
    case CHAOS_HEAL:
    case CHAOS_STATUS:
        return 0;
    }
    return 0;
}

int chaos_req_parse(const char *json, size_t len, int broker_cnt, chaos_req_t *out, char *errstr,
                    size_t errstr_size)
{
    memset(out, 0, sizeof(*out));
    json_error_t jerr;
    json_t *doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc || !json_is_object(doc)) {
        snprintf(errstr, errstr_size, "the request is not a JSON object%s%.200s", doc ? "" : ": ",
                 doc ? "" : jerr.text);
        json_decref(doc);
        return -1;
    }
    const char *id = json_string_value(json_object_get(doc, "id"));
    if (!id || !id_valid(id)) {
        snprintf(errstr, errstr_size, "the id must be 1..%d characters of [A-Za-z0-9_-]",
                 CHAOS_ID_MAX);
        json_decref(doc);
        return -1;
    }
    snprintf(out->id, sizeof(out->id), "%s", id);
    int rc = parse_doc(doc, broker_cnt, out, errstr, errstr_size);
    json_decref(doc);
    return rc;
}
