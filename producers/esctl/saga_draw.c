/*
 * saga_draw.c: a saga's timeline as a terminal diagram and as SVG (see saga_draw.h).
 *
 * Both drawings share one layout: the lanes (services in the order a saga usually visits
 * them, then any other in order of appearance) and, per step, its lane, the lane of its
 * cause, its time since the saga's start and its kind (a failure, a completion, a
 * compensation, the timeout), which picks the colour.
 */
#define _GNU_SOURCE /* timegm */
#include "saga_draw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json_get.h"

#define MAX_LANES 12
#define LANE_W_MAX 11 /* columns per lane in the terminal: fits "transfers" */
#define LANE_W_MIN 4
#define TIME_W 9     /* "+1.25 s" right-aligned */
#define LABEL_MIN 28 /* columns kept for the step's name, time and detail when lanes shrink */

typedef enum { K_STEP = 0, K_OK, K_FAIL, K_UNDO, K_TIMEOUT } step_kind_t;

typedef struct step_view {
    const char *type, *detail;
    long long at_ms, took_ms; /* took_ms -1: its cause is not a step of this saga */
    int lane, cause_lane;     /* cause_lane -1: no cause in the saga */
    step_kind_t kind;
} step_view_t;

typedef struct saga_view {
    const char *id, *type, *subject, *status, *reason;
    long long duration_ms, deadline_ms, timed_out_ms; /* -1 when unknown */
    const char *lanes[MAX_LANES];
    int nlanes;
    step_view_t *steps;
    size_t n;
} saga_view_t;

/* The usual order of a saga's visits: the client first, the ledger last. */
static const char *const lane_order[] = {"esctl",    "client",    "users",    "orders", "catalog",
                                         "payments", "transfers", "accounts", "sagas",  NULL};

static long long int_or(const json_t *obj, const char *key, long long dflt)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_integer(v) ? (long long)json_integer_value(v) : dflt;
}

/* "2026-11-26T20:03:26.031Z" -> ms since the epoch, or -1. */
static long long iso_ms(const char *s)
{
    struct tm tm;
    int ms = 0, n = 0;
    memset(&tm, 0, sizeof(tm));
    if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                     &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6) {
        return -1;
    }
    if (s[n] == '.') {
        int k = 0;
        for (n++; s[n] >= '0' && s[n] <= '9'; n++, k++) {
            if (k < 3) {
                ms = ms * 10 + (s[n] - '0');
            }
        }
        for (; k < 3; k++) {
            ms *= 10;
        }
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    return t == (time_t)-1 ? -1 : (long long)t * 1000 + ms;
}

/* A saga's status drawn like the steps that lead to it. */
static step_kind_t status_kind(const char *status)
{
    return !strcmp(status, "COMPLETED")   ? K_OK
           : !strcmp(status, "FAILED")    ? K_FAIL
           : !strcmp(status, "TIMED_OUT") ? K_TIMEOUT
           : !strcmp(status, "CANCELLED") ? K_UNDO
                                          : K_STEP;
}

static step_kind_t kind_of(const char *type)
{
    if (!strcmp(type, "SagaTimedOut")) {
        return K_TIMEOUT;
    }
    if (!strcmp(type, "OrderConfirmed") || !strcmp(type, "TransferCompleted")) {
        return K_OK;
    }
    if (strstr(type, "Rejected") || strstr(type, "Failed") || strstr(type, "Declined")) {
        return K_FAIL;
    }
    if (!strcmp(type, "StockReleased") || !strcmp(type, "DebitReversed") ||
        !strcmp(type, "PaymentRefunded") || !strcmp(type, "PaymentRefundRetried") ||
        !strcmp(type, "OrderCancelled")) {
        return K_UNDO;
    }
    return K_STEP;
}

/* The lane of `service`, added when new (past MAX_LANES, the last lane takes the rest). */
static int lane_of(saga_view_t *v, const char *service)
{
    for (int i = 0; i < v->nlanes; i++) {
        if (!strcmp(v->lanes[i], service)) {
            return i;
        }
    }
    if (v->nlanes == MAX_LANES) {
        return MAX_LANES - 1;
    }
    v->lanes[v->nlanes] = service;
    return v->nlanes++;
}

static int view_load(const json_t *saga, saga_view_t *v, char *errstr, size_t errstr_size)
{
    memset(v, 0, sizeof(*v));
    const json_t *steps = json_object_get(saga, "steps");
    v->id = json_string_value(json_object_get(saga, "saga_id"));
    v->status = json_string_value(json_object_get(saga, "status"));
    if (!json_is_object(saga) || !v->id || !v->status || !json_is_array(steps)) {
        snprintf(errstr, errstr_size, "not a saga: saga_id, status and steps are required");
        return -1;
    }
    v->type = es_json_str_or(saga, "type", "");
    v->subject = es_json_str_or(saga, "subject", "");
    v->reason = es_json_str_or(saga, "reason", "");
    v->duration_ms = int_or(saga, "duration_ms", -1);
    long long start = iso_ms(es_json_str_or(saga, "started_at", NULL));
    long long deadline = iso_ms(es_json_str_or(saga, "deadline_at", NULL));
    long long timed_out = iso_ms(es_json_str_or(saga, "timed_out_at", NULL));
    v->deadline_ms = start >= 0 && deadline >= 0 ? deadline - start : -1;
    v->timed_out_ms = start >= 0 && timed_out >= 0 ? timed_out - start : -1;
    v->n = json_array_size(steps);
    v->steps = calloc(v->n ? v->n : 1, sizeof(*v->steps));
    if (!v->steps) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    /* lanes in the usual order first, then the others as they come */
    for (size_t k = 0; lane_order[k]; k++) {
        for (size_t i = 0; i < v->n; i++) {
            const char *svc =
                json_string_value(json_object_get(json_array_get(steps, i), "service"));
            if (svc && !strcmp(svc, lane_order[k])) {
                lane_of(v, svc);
                break;
            }
        }
    }
    for (size_t i = 0; i < v->n; i++) {
        const json_t *st = json_array_get(steps, i);
        const char *svc = json_string_value(json_object_get(st, "service"));
        const char *type = json_string_value(json_object_get(st, "type"));
        if (!json_is_object(st) || !svc || !type) {
            snprintf(errstr, errstr_size, "step %zu: service and type are required", i + 1);
            free(v->steps);
            v->steps = NULL;
            return -1;
        }
        step_view_t *s = &v->steps[i];
        s->type = type;
        s->detail = es_json_str_or(st, "detail", "");
        s->at_ms = int_or(st, "at_ms", 0);
        s->took_ms = int_or(st, "took_ms", -1);
        s->lane = lane_of(v, svc);
        const char *cause = json_string_value(json_object_get(st, "cause_service"));
        s->cause_lane = cause ? lane_of(v, cause) : -1;
        s->kind = kind_of(type);
    }
    return 0;
}

void esctl_saga_elapsed(long long ms, char *out, size_t size)
{
    if (ms < 0) {
        snprintf(out, size, "?");
    } else if (ms < 1000) {
        snprintf(out, size, "+%lld ms", ms);
    } else if (ms < 60000) {
        snprintf(out, size, "+%.*f s", ms < 10000 ? 2 : 1, (double)ms / 1000.0);
    } else if (ms < 3600000) {
        snprintf(out, size, "+%lldm%02llds", ms / 60000, ms % 60000 / 1000);
    } else {
        snprintf(out, size, "+%lldh%02lldm", ms / 3600000, ms % 3600000 / 60000);
    }
}

/* The elapsed time without its "+". */
static const char *span(long long ms, char *buf, size_t size)
{
    esctl_saga_elapsed(ms, buf, size);
    return buf[0] == '+' ? buf + 1 : buf;
}

/* ---- text ------------------------------------------------------------------------------ */

static const char *const ansi[] = {[K_STEP] = "",
                                   [K_OK] = "\033[32m",
                                   [K_FAIL] = "\033[31m",
                                   [K_UNDO] = "\033[35m",
                                   [K_TIMEOUT] = "\033[33m"};
static const char *const marks[] = {[K_STEP] = " ",
                                    [K_OK] = "\u2714",
                                    [K_FAIL] = "\u2716",
                                    [K_UNDO] = "\u21ba",
                                    [K_TIMEOUT] = "\u23f1"};

/* Append at most `cols` columns of `s` (cut at a character boundary). */
static void put_cols(es_buf_t *out, const char *s, size_t cols)
{
    size_t i = 0, c = 0;
    while (s[i] && c < cols) {
        size_t len = 1;
        while ((s[i + len] & 0xC0) == 0x80) {
            len++;
        }
        es_buf_append(out, s + i, len);
        i += len;
        c++;
    }
}

/* The header: what the saga is about, how it ended, how long it took. */
static void text_header(const saga_view_t *v, int color, es_buf_t *out)
{
    char a[32], b[32];
    const char *st_color = color ? ansi[status_kind(v->status)] : "";
    es_buf_printf(out, "%s saga %s%s%s  %s%s%s%s%s", v->type[0] ? v->type : "(type unknown)",
                  v->subject, v->subject[0] ? "  " : "", color ? "\033[1m" : "", st_color,
                  v->status, v->reason[0] ? " " : "", v->reason, color ? "\033[0m" : "");
    if (v->duration_ms >= 0) {
        es_buf_printf(out, "%s %s",
                      strcmp(v->status, "PENDING") && strcmp(v->status, "TIMED_OUT") ? " after"
                                                                                     : " for",
                      span(v->duration_ms, a, sizeof(a)));
    }
    es_buf_printf(out, "\n  id %s, %zu step%s", v->id, v->n, v->n == 1 ? "" : "s");
    if (v->deadline_ms >= 0) {
        es_buf_printf(out, ", deadline %s", span(v->deadline_ms, b, sizeof(b)));
    }
    if (v->timed_out_ms >= 0) {
        es_buf_printf(out, ", timed out at %s", span(v->timed_out_ms, a, sizeof(a)));
    }
    es_buf_puts(out, "\n\n");
}

/* One row's lanes: the vertical lines, the arrow from the cause's lane, the dot. */
static void text_lanes(const saga_view_t *v, const step_view_t *s, int w, int color, es_buf_t *out)
{
    int cols = v->nlanes * w;
    int from = -1, to = -1, dot = s ? s->lane * w + w / 2 : -1;
    if (s && s->cause_lane >= 0 && s->cause_lane != s->lane) {
        from = s->cause_lane * w + w / 2;
        to = dot;
    }
    int lo = from < 0 ? dot : (from < to ? from : to),
        hi = from < 0 ? dot : (from < to ? to : from);
    const char *c = s && color ? ansi[s->kind] : "";
    for (int x = 0; x < cols; x++) {
        int center = x % w == w / 2;
        if (x == lo && c[0]) {
            es_buf_puts(out, c);
        }
        if (x == dot) {
            es_buf_puts(out, "\u25cf"); /* the service that emitted the step */
        } else if (from >= 0 && x == from) {
            es_buf_puts(out, from < to ? "\u251c" : "\u2524");
        } else if (from >= 0 && from < to && x == to - 1) {
            es_buf_puts(out, "\u25b6");
        } else if (from >= 0 && from > to && x == to + 1) {
            es_buf_puts(out, "\u25c0");
        } else if (from >= 0 && x > lo && x < hi) {
            es_buf_puts(out, "\u2500");
        } else {
            es_buf_puts(out, center ? "\u2502" : " ");
        }
        if (x == hi && c[0]) {
            es_buf_puts(out, "\033[0m");
        }
    }
}

int esctl_saga_draw_text(const json_t *saga, int width, int color, es_buf_t *out, char *errstr,
                         size_t errstr_size)
{
    saga_view_t v;
    if (view_load(saga, &v, errstr, errstr_size) != 0) {
        return -1;
    }
    if (width < 40) {
        width = 120;
    }
    int w = v.nlanes ? (width - TIME_W - 2 - LABEL_MIN) / v.nlanes : LANE_W_MAX;
    w = w > LANE_W_MAX ? LANE_W_MAX : w < LANE_W_MIN ? LANE_W_MIN : w;
    int label_w = width - TIME_W - 2 - v.nlanes * w - 1;
    label_w = label_w < LABEL_MIN ? LABEL_MIN : label_w;
    text_header(&v, color, out);
    if (v.n == 0) {
        es_buf_puts(out, "  (no steps yet)\n");
        free(v.steps);
        return 0;
    }
    /* lane titles, centred */
    es_buf_printf(out, "%*s  ", TIME_W, "");
    for (int i = 0; i < v.nlanes; i++) {
        int len = (int)strlen(v.lanes[i]);
        len = len > w - 1 ? w - 1 : len;
        int left = w / 2 - len / 2;
        es_buf_printf(out, "%*s", left, "");
        put_cols(out, v.lanes[i], (size_t)len);
        es_buf_printf(out, "%*s", w - left - len, "");
    }
    es_buf_puts(out, "\n");
    for (size_t i = 0; i < v.n; i++) {
        const step_view_t *s = &v.steps[i];
        char at[32], took[32], label[512];
        esctl_saga_elapsed(s->at_ms, at, sizeof(at));
        es_buf_printf(out, "%*s  ", TIME_W, at);
        text_lanes(&v, s, w, color, out);
        int n = snprintf(label, sizeof(label), "%s %s", marks[s->kind], s->type);
        if (s->took_ms >= 0 && n > 0 && (size_t)n < sizeof(label)) {
            n += snprintf(label + n, sizeof(label) - (size_t)n, "  %s",
                          span(s->took_ms, took, sizeof(took)));
        }
        if (s->detail[0] && n > 0 && (size_t)n < sizeof(label)) {
            snprintf(label + n, sizeof(label) - (size_t)n, "  %s", s->detail);
        }
        es_buf_puts(out, " ");
        if (color && s->kind != K_STEP) {
            es_buf_puts(out, ansi[s->kind]);
        }
        put_cols(out, label, (size_t)label_w);
        es_buf_puts(out, color && s->kind != K_STEP ? "\033[0m\n" : "\n");
    }
    es_buf_printf(out,
                  "\n%*s  \u25cf emitted by that lane's service; \u251c\u2500\u25b6 in reaction "
                  "to a record of the lane it starts from\n",
                  TIME_W, "");
    es_buf_printf(out,
                  "%*s  \u2714 completed  \u2716 failed or refused  \u21ba compensation  "
                  "\u23f1 deadline passed\n",
                  TIME_W, "");
    free(v.steps);
    return 0;
}

/* ---- SVG ------------------------------------------------------------------------------- */

#define SVG_LANE 112
#define SVG_X0 96
#define SVG_ROW 26
#define SVG_TOP 96
#define SVG_LABEL 440

static const char *const svg_color[] = {[K_STEP] = "#34495e",
                                        [K_OK] = "#1e8449",
                                        [K_FAIL] = "#c0392b",
                                        [K_UNDO] = "#8e44ad",
                                        [K_TIMEOUT] = "#d68910"};
static const char *const svg_marker[] = {[K_STEP] = "a-step",
                                         [K_OK] = "a-ok",
                                         [K_FAIL] = "a-fail",
                                         [K_UNDO] = "a-undo",
                                         [K_TIMEOUT] = "a-timeout"};

/* Append `s` escaped for XML text and attribute values. */
static void xml(es_buf_t *out, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&':
            es_buf_puts(out, "&amp;");
            break;
        case '<':
            es_buf_puts(out, "&lt;");
            break;
        case '>':
            es_buf_puts(out, "&gt;");
            break;
        case '"':
            es_buf_puts(out, "&quot;");
            break;
        case '\'':
            es_buf_puts(out, "&apos;");
            break;
        default:
            if ((unsigned char)*s >= 0x20 || *s == '\t') {
                es_buf_append(out, s, 1);
            }
            break;
        }
    }
}

static int lane_x(int lane)
{
    return SVG_X0 + lane * SVG_LANE + SVG_LANE / 2;
}

int esctl_saga_draw_svg(const json_t *saga, es_buf_t *out, char *errstr, size_t errstr_size)
{
    saga_view_t v;
    if (view_load(saga, &v, errstr, errstr_size) != 0) {
        return -1;
    }
    int label_x = SVG_X0 + v.nlanes * SVG_LANE + 16;
    int width = label_x + SVG_LABEL;
    int bottom = SVG_TOP + (int)v.n * SVG_ROW + 8;
    int height = bottom + 52;
    es_buf_printf(out,
                  "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                  "viewBox=\"0 0 %d %d\" font-family=\"Helvetica, Arial, sans-serif\" "
                  "font-size=\"13\">\n<defs>\n",
                  width, height, width, height);
    for (int k = K_STEP; k <= K_TIMEOUT; k++) {
        es_buf_printf(out,
                      "<marker id=\"%s\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" "
                      "markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\"><path d=\"M0,0 L10,5 "
                      "L0,10 z\" fill=\"%s\"/></marker>\n",
                      svg_marker[k], svg_color[k]);
    }
    es_buf_printf(out, "</defs>\n<rect width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", width,
                  height);
    /* title: what the saga is about and how it ended */
    char a[32], b[32];
    const char *st_color = svg_color[status_kind(v.status)];
    es_buf_puts(out, "<text x=\"16\" y=\"28\" font-size=\"17\" font-weight=\"bold\">");
    xml(out, v.type[0] ? v.type : "saga");
    es_buf_puts(out, " saga ");
    xml(out, v.subject);
    es_buf_printf(out, " <tspan fill=\"%s\">", st_color);
    xml(out, v.status);
    if (v.reason[0]) {
        es_buf_puts(out, " ");
        xml(out, v.reason);
    }
    es_buf_puts(out, "</tspan>");
    if (v.duration_ms >= 0) {
        es_buf_printf(out, " <tspan font-weight=\"normal\">after %s</tspan>",
                      span(v.duration_ms, a, sizeof(a)));
    }
    es_buf_puts(out, "</text>\n<text x=\"16\" y=\"50\" fill=\"#7f8c8d\">id ");
    xml(out, v.id);
    es_buf_printf(out, ", %zu step%s", v.n, v.n == 1 ? "" : "s");
    if (v.deadline_ms >= 0) {
        es_buf_printf(out, ", deadline %s", span(v.deadline_ms, b, sizeof(b)));
    }
    if (v.timed_out_ms >= 0) {
        es_buf_printf(out, ", timed out at %s", span(v.timed_out_ms, a, sizeof(a)));
    }
    es_buf_puts(out, "</text>\n");
    /* the lanes */
    for (int i = 0; i < v.nlanes; i++) {
        int x = lane_x(i);
        es_buf_printf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-weight=\"bold\">",
                      x, SVG_TOP - 20);
        xml(out, v.lanes[i]);
        es_buf_printf(out,
                      "</text>\n<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#d5dbdb\" "
                      "stroke-width=\"2\"/>\n",
                      x, SVG_TOP - 10, x, bottom);
    }
    /* the steps */
    for (size_t i = 0; i < v.n; i++) {
        const step_view_t *s = &v.steps[i];
        int y = SVG_TOP + (int)i * SVG_ROW + SVG_ROW / 2;
        int x = lane_x(s->lane);
        const char *col = svg_color[s->kind];
        esctl_saga_elapsed(s->at_ms, a, sizeof(a));
        es_buf_printf(out,
                      "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" fill=\"#7f8c8d\">%s</text>\n",
                      SVG_X0 - 8, y + 4, a);
        if (s->cause_lane >= 0 && s->cause_lane != s->lane) {
            int cx = lane_x(s->cause_lane);
            int end = cx < x ? x - 7 : x + 7;
            es_buf_printf(out,
                          "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" "
                          "stroke-width=\"1.6\" marker-end=\"url(#%s)\"/>\n",
                          cx, y, end, y, col, svg_marker[s->kind]);
        }
        es_buf_printf(out, "<circle cx=\"%d\" cy=\"%d\" r=\"5\" fill=\"%s\"/>\n", x, y, col);
        es_buf_printf(out, "<text x=\"%d\" y=\"%d\"><tspan fill=\"%s\" font-weight=\"bold\">",
                      label_x, y + 4, col);
        xml(out, s->type);
        es_buf_puts(out, "</tspan>");
        if (s->took_ms >= 0) {
            es_buf_printf(out, "<tspan dx=\"8\" fill=\"#7f8c8d\">%s</tspan>",
                          span(s->took_ms, b, sizeof(b)));
        }
        if (s->detail[0]) {
            es_buf_puts(out, "<tspan dx=\"10\" fill=\"#566573\">");
            xml(out, s->detail);
            es_buf_puts(out, "</tspan>");
        }
        es_buf_puts(out, "</text>\n");
    }
    es_buf_printf(out,
                  "<text x=\"16\" y=\"%d\" fill=\"#7f8c8d\" font-size=\"11\">each dot: the "
                  "service that emitted the step; each arrow: from the service whose record "
                  "caused it</text>\n<text x=\"16\" y=\"%d\" fill=\"#7f8c8d\" "
                  "font-size=\"11\">green: completed, red: failed or refused, purple: "
                  "compensation, amber: deadline passed</text>\n</svg>\n",
                  height - 30, height - 14);
    free(v.steps);
    return 0;
}
