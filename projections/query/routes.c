/*
 * routes.c: path parsing and validation for the query service (see routes.h).
 */
#include "routes.h"

#include "duration.h"
#include "str.h"

#include <stdio.h>
#include <string.h>

#define ROUTE_MAX_SEGMENTS 3
/* A segment longer than this cannot be a valid id even fully percent-encoded. */
#define ROUTE_SEGMENT_MAX (ES_QUERY_ID_MAX * 3)

static const char *const route_names[ES_ROUTE__CNT] = {
    [ES_ROUTE_NONE] = "other",
    [ES_ROUTE_ACCOUNT] = "/accounts/{id}",
    [ES_ROUTE_ENTRIES] = "/accounts/{id}/entries",
    [ES_ROUTE_TRANSFER] = "/transfers/{id}",
    [ES_ROUTE_COMMAND] = "/commands/{id}",
    [ES_ROUTE_USER] = "/users/{id}",
    [ES_ROUTE_USER_ORDERS] = "/users/{id}/orders",
    [ES_ROUTE_PRODUCT] = "/products/{id}",
    [ES_ROUTE_ORDER] = "/orders/{id}",
    [ES_ROUTE_SAGA] = "/sagas/{id}",
    [ES_ROUTE_SAGAS] = "/sagas",
    [ES_ROUTE_HEALTH] = "/health",
    [ES_ROUTE_METRICS] = "/metrics",
};

const char *es_query_route_name(es_query_route_t route)
{
    if (route < 0 || route >= ES_ROUTE__CNT) {
        return route_names[ES_ROUTE_NONE];
    }
    return route_names[route];
}

static const char *const params_none[] = {NULL};
static const char *const params_page[] = {"limit", "before", NULL};
static const char *const params_sagas[] = {"status", "older_than", "type", "limit", NULL};

const char *const *es_query_route_params(es_query_route_t route)
{
    switch (route) {
    case ES_ROUTE_ENTRIES:
    case ES_ROUTE_USER_ORDERS:
        return params_page;
    case ES_ROUTE_SAGAS:
        return params_sagas;
    default:
        return params_none;
    }
}

/* `name` as printable ASCII for a message: other bytes become '?', and past 40 characters
 * "..." ends it. */
static void name_shown(const char *name, char *out, size_t out_size)
{
    size_t n = 0;
    for (const char *p = name; *p && n + 4 < out_size; p++) {
        if (n == 40) {
            memcpy(out + n, "...", 3);
            n += 3;
            break;
        }
        unsigned char ch = (unsigned char)*p;
        out[n++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    out[n] = '\0';
}

int es_query_params_check(es_query_route_t route, const char *const *names, size_t n, char *errstr,
                          size_t errstr_size)
{
    const char *const *takes = es_query_route_params(route);
    for (size_t i = 0; i < n; i++) {
        int known = 0;
        for (const char *const *t = takes; *t; t++) {
            known = known || !strcmp(names[i], *t);
        }
        int twice = 0;
        for (size_t j = 0; j < i && known; j++) {
            twice = twice || !strcmp(names[i], names[j]);
        }
        if (known && !twice) {
            continue;
        }
        char shown[48], list[64] = "";
        name_shown(names[i], shown, sizeof(shown));
        size_t len = 0;
        for (const char *const *t = takes; *t && len < sizeof(list); t++) {
            len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s", t == takes ? "" : ", ",
                                    *t);
        }
        if (twice) {
            snprintf(errstr, errstr_size, "query parameter \"%s\" given twice", shown);
        } else if (!*takes) {
            snprintf(errstr, errstr_size, "unknown query parameter \"%s\": %s takes none", shown,
                     es_query_route_name(route));
        } else {
            snprintf(errstr, errstr_size, "unknown query parameter \"%s\": %s takes %s", shown,
                     es_query_route_name(route), list);
        }
        return -1;
    }
    return 0;
}

int es_query_id_valid(const char *id, size_t len)
{
    return es_str_id_valid(id, len, ES_QUERY_ID_MAX);
}

int es_query_parse_uint(const char *s, int64_t max, int64_t *out)
{
    if (!s || !*s) {
        return -1;
    }
    int64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') {
            return -1;
        }
        int d = *p - '0';
        if (d > max || v > (max - d) / 10) {
            return -1;
        }
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

static const char *const saga_statuses[] = {"PENDING", "TIMED_OUT", "COMPLETED", "FAILED",
                                            "CANCELLED"};
static const char *const saga_types[] = {"order", "transfer"};

/* The static copy of `v` in `names` (n of them), or NULL. */
static const char *one_of(const char *v, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(v, names[i])) {
            return names[i];
        }
    }
    return NULL;
}

int es_query_sagas_filter_parse(const char *status, const char *older_than, const char *type,
                                const char *limit, es_query_sagas_filter_t *out, char *errstr,
                                size_t errstr_size)
{
    out->status = NULL;
    out->type = NULL;
    out->older_than_ms = -1;
    out->limit = ES_QUERY_SAGAS_LIMIT_DEFAULT;
    if (status) {
        out->status = one_of(status, saga_statuses, sizeof(saga_statuses) / sizeof(*saga_statuses));
        if (!out->status) {
            snprintf(errstr, errstr_size,
                     "malformed status: expected one of PENDING, TIMED_OUT, COMPLETED, FAILED, "
                     "CANCELLED");
            return -1;
        }
    }
    if (older_than &&
        es_parse_duration_ms(older_than, ES_QUERY_DURATION_MAX_MS, &out->older_than_ms) != 0) {
        snprintf(errstr, errstr_size,
                 "malformed older_than: expected a duration such as 500ms, 10s, 2m, 1h or a "
                 "number of seconds, at most 100 years");
        return -1;
    }
    if (type) {
        out->type = one_of(type, saga_types, sizeof(saga_types) / sizeof(*saga_types));
        if (!out->type) {
            snprintf(errstr, errstr_size, "malformed type: expected order or transfer");
            return -1;
        }
    }
    if (limit && (es_query_parse_uint(limit, ES_QUERY_SAGAS_LIMIT_MAX, &out->limit) != 0 ||
                  out->limit < 1)) {
        snprintf(errstr, errstr_size, "malformed limit: expected an integer 1..%d",
                 ES_QUERY_SAGAS_LIMIT_MAX);
        return -1;
    }
    return 0;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9') {
        return ch - '0';
    }
    if (ch >= 'a' && ch <= 'f') {
        return ch - 'a' + 10;
    }
    if (ch >= 'A' && ch <= 'F') {
        return ch - 'A' + 10;
    }
    return -1;
}

/* Percent-decode `len` bytes of `src` into `dst` (room for `size` bytes including the NUL).
 * Returns the decoded length, or -1 on a bad escape or when it does not fit. A decoded NUL is
 * kept (and later rejected by id validation), hence the explicit length. */
static long decode_segment(const char *src, size_t len, char *dst, size_t size)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = src[i];
        if (ch == '%') {
            if (i + 2 >= len) {
                return -1;
            }
            int hi = hexval(src[i + 1]);
            int lo = hexval(src[i + 2]);
            if (hi < 0 || lo < 0) {
                return -1;
            }
            ch = (char)(hi * 16 + lo);
            i += 2;
        }
        if (n + 1 >= size) {
            return -1;
        }
        dst[n++] = ch;
    }
    dst[n] = '\0';
    return (long)n;
}

/* True when decoded segment i is exactly the literal `lit` (no embedded NUL tricks). */
static int seg_is(const char *dec, long declen, const char *lit)
{
    return declen >= 0 && (size_t)declen == strlen(lit) && !memcmp(dec, lit, (size_t)declen);
}

int es_query_route_parse(const char *path, es_query_path_t *out, char *errstr, size_t errstr_size)
{
    out->route = ES_ROUTE_NONE;
    out->id[0] = '\0';
    if (!path || path[0] != '/') {
        return 0;
    }
    /* Split into at most three segments; more means no route. */
    const char *seg[ROUTE_MAX_SEGMENTS];
    size_t seglen[ROUTE_MAX_SEGMENTS];
    int n = 0;
    const char *p = path + 1;
    for (;;) {
        if (n == ROUTE_MAX_SEGMENTS) {
            return 0;
        }
        const char *slash = strchr(p, '/');
        seg[n] = p;
        seglen[n] = slash ? (size_t)(slash - p) : strlen(p);
        n++;
        if (!slash) {
            break;
        }
        p = slash + 1;
    }

    char dec[ROUTE_MAX_SEGMENTS][ROUTE_SEGMENT_MAX + 1];
    long declen[ROUTE_MAX_SEGMENTS];
    for (int i = 0; i < n; i++) {
        if (seglen[i] > ROUTE_SEGMENT_MAX) {
            declen[i] = -2; /* too long: only an id can be this long, and it is then malformed */
            dec[i][0] = '\0';
            continue;
        }
        declen[i] = decode_segment(seg[i], seglen[i], dec[i], sizeof(dec[i]));
        if (declen[i] < 0) {
            dec[i][0] = '\0';
        }
    }

    if (n == 1) {
        if (seg_is(dec[0], declen[0], "health")) {
            out->route = ES_ROUTE_HEALTH;
        } else if (seg_is(dec[0], declen[0], "metrics")) {
            out->route = ES_ROUTE_METRICS;
        } else if (seg_is(dec[0], declen[0], "sagas")) {
            out->route = ES_ROUTE_SAGAS;
        }
        return 0;
    }

    es_query_route_t route = ES_ROUTE_NONE;
    const char *what = "";
    if (seg_is(dec[0], declen[0], "accounts")) {
        what = "account";
        if (n == 2) {
            route = ES_ROUTE_ACCOUNT;
        } else if (seg_is(dec[2], declen[2], "entries")) {
            route = ES_ROUTE_ENTRIES;
        }
    } else if (seg_is(dec[0], declen[0], "transfers") && n == 2) {
        what = "transfer";
        route = ES_ROUTE_TRANSFER;
    } else if (seg_is(dec[0], declen[0], "commands") && n == 2) {
        what = "command";
        route = ES_ROUTE_COMMAND;
    } else if (seg_is(dec[0], declen[0], "users")) {
        what = "user";
        if (n == 2) {
            route = ES_ROUTE_USER;
        } else if (seg_is(dec[2], declen[2], "orders")) {
            route = ES_ROUTE_USER_ORDERS;
        }
    } else if (seg_is(dec[0], declen[0], "products") && n == 2) {
        what = "product";
        route = ES_ROUTE_PRODUCT;
    } else if (seg_is(dec[0], declen[0], "orders") && n == 2) {
        what = "order";
        route = ES_ROUTE_ORDER;
    } else if (seg_is(dec[0], declen[0], "sagas") && n == 2) {
        what = "saga";
        route = ES_ROUTE_SAGA;
    }
    if (route == ES_ROUTE_NONE) {
        return 0;
    }
    out->route = route;
    if (declen[1] < 0 || !es_query_id_valid(dec[1], (size_t)declen[1])) {
        snprintf(errstr, errstr_size,
                 "malformed %s id: expected 1..%d characters of [A-Za-z0-9._:-]", what,
                 ES_QUERY_ID_MAX);
        return -1;
    }
    memcpy(out->id, dec[1], (size_t)declen[1] + 1);
    return 0;
}
