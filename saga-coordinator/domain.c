/*
 * domain.c: the saga coordinator's pure rules (see domain.h and docs/SAGAS.md).
 */
#include "domain.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "str.h"

/* The records the coordinator follows: the two sagas' commands, and every event that is a
 * step of an order or a transfer, plus its own SagaTimedOut. */
static const char *const followed[] = {"PlaceOrder",
                                       "RequestTransfer",
                                       "OrderPlaced",
                                       "OrderConfirmed",
                                       "OrderRejected",
                                       "OrderCancelled",
                                       "OrderCommandRejected",
                                       "StockReserved",
                                       "StockReservationRejected",
                                       "StockCommitted",
                                       "StockReleased",
                                       "PaymentRequested",
                                       "PaymentCaptured",
                                       "PaymentDeclined",
                                       "PaymentRefunded",
                                       "PaymentRefundFailed",
                                       "PaymentRefundRetried",
                                       "TransferRequested",
                                       "TransferCompleted",
                                       "TransferFailed",
                                       "TransferCommandRejected",
                                       "FundsDebited",
                                       "DebitRejected",
                                       "FundsCredited",
                                       "CreditRejected",
                                       "DebitReversed",
                                       "SagaTimedOut",
                                       NULL};

int saga_follows(const char *type)
{
    for (size_t i = 0; followed[i]; i++) {
        if (!strcmp(followed[i], type)) {
            return 1;
        }
    }
    return 0;
}

static int is(const saga_step_t *st, const char *type)
{
    return !strcmp(st->type, type);
}

int saga_step_counts(const saga_step_t *st)
{
    return !(is(st, "OrderCommandRejected") && strcmp(st->command_type, "PlaceOrder") != 0);
}

saga_type_t saga_step_reveals(const saga_step_t *st)
{
    if ((is(st, "PlaceOrder") && !strcmp(st->event_id, st->correlation_id)) ||
        is(st, "OrderPlaced") || is(st, "OrderConfirmed") || is(st, "OrderRejected") ||
        is(st, "OrderCancelled") ||
        (is(st, "OrderCommandRejected") && !strcmp(st->command_type, "PlaceOrder"))) {
        return st->order_id[0] ? SAGA_T_ORDER : SAGA_T_UNKNOWN;
    }
    /* a client's transfer: the command itself, or a record it caused directly (a TransferFailed
     * too: refused at once, it is the saga's only other step, on another topic than the
     * command, and may be read first; its end must not wait for the type) */
    if ((is(st, "RequestTransfer") && !strcmp(st->event_id, st->correlation_id)) ||
        ((is(st, "TransferRequested") || is(st, "TransferCommandRejected") ||
          is(st, "TransferFailed")) &&
         !strcmp(st->causation_id, st->correlation_id))) {
        return st->transfer_id[0] ? SAGA_T_TRANSFER : SAGA_T_UNKNOWN;
    }
    return SAGA_T_UNKNOWN;
}

static int terminal(saga_status_t s)
{
    return s == SAGA_COMPLETED || s == SAGA_FAILED || s == SAGA_CANCELLED;
}

/* The status `st` moves a saga of type `t` about `subject` to, or -1 for none. */
static int status_after(saga_type_t t, const char *subject, const saga_step_t *st,
                        const char **reason)
{
    *reason = "";
    if (t == SAGA_T_ORDER && !strcmp(st->order_id, subject)) {
        if (is(st, "OrderConfirmed")) {
            return SAGA_COMPLETED;
        }
        if (is(st, "OrderCancelled")) {
            return SAGA_CANCELLED;
        }
        if (is(st, "OrderRejected") ||
            (is(st, "OrderCommandRejected") && !strcmp(st->command_type, "PlaceOrder"))) {
            *reason = st->reason;
            return SAGA_FAILED;
        }
    }
    if (t == SAGA_T_TRANSFER && !strcmp(st->transfer_id, subject)) {
        if (is(st, "TransferCompleted")) {
            return SAGA_COMPLETED;
        }
        if (is(st, "TransferFailed") ||
            (is(st, "TransferCommandRejected") && !strcmp(st->causation_id, st->correlation_id))) {
            *reason = st->reason;
            return SAGA_FAILED;
        }
    }
    return -1;
}

void saga_evolve(saga_t *s, const saga_step_t *st, const int64_t deadlines_ms[SAGA_T__COUNT],
                 saga_change_t *chg)
{
    memset(chg, 0, sizeof(*chg));
    chg->duration_ms = -1;
    if (!s->exists) {
        memset(s, 0, sizeof(*s));
        s->exists = 1;
        es_str_copy(s->id, sizeof(s->id), st->correlation_id);
        s->status = SAGA_PENDING;
        s->started_ms = st->occurred_ms;
        s->updated_ms = st->occurred_ms;
    }
    /* counted once, when it is both typed and timed out (live, the tick counted it) */
    int timed_out_counted = s->type != SAGA_T_UNKNOWN && s->timed_out_ms != 0;
    s->step_count++;
    if (st->occurred_ms < s->started_ms) {
        s->started_ms = st->occurred_ms; /* an earlier record came late: the start moves back */
    }
    if (st->occurred_ms >= s->updated_ms || !s->last_step[0]) {
        s->updated_ms = st->occurred_ms > s->updated_ms ? st->occurred_ms : s->updated_ms;
        es_str_copy(s->last_step, sizeof(s->last_step), st->type);
        es_str_copy(s->last_event_id, sizeof(s->last_event_id), st->event_id);
    }
    if (!s->traceparent[0] || !st->causation_id[0]) {
        es_str_copy(s->traceparent, sizeof(s->traceparent), st->traceparent);
    }
    saga_type_t t = saga_step_reveals(st);
    if (s->type == SAGA_T_UNKNOWN && t != SAGA_T_UNKNOWN) {
        s->type = t;
        es_str_copy(s->subject, sizeof(s->subject),
                    t == SAGA_T_ORDER ? st->order_id : st->transfer_id);
        chg->started = 1;
    }
    if (s->type != SAGA_T_UNKNOWN && !terminal(s->status)) {
        s->deadline_ms = s->started_ms + deadlines_ms[s->type];
    }
    chg->counted_type = s->type;
    if (is(st, "SagaTimedOut")) {
        /* The coordinator's own timeout, read back from the log. Live, the tick already marked
         * the saga and counted it; a coordinator rebuilding its tables from the log learns it
         * here (and fires no timer twice). Either way the time kept is the event's, so a
         * rebuilt saga equals the live one. */
        s->timed_out_ms = st->occurred_ms;
        if (s->status == SAGA_PENDING) {
            s->status = SAGA_TIMED_OUT;
        }
    }
    /* read back from the log, the timeout may come before the record that says what the saga
     * is (another topic): it counts once both are known */
    chg->timed_out = !timed_out_counted && s->type != SAGA_T_UNKNOWN && s->timed_out_ms != 0;
    const char *reason;
    int next = status_after(s->type, s->subject, st, &reason);
    if (next < 0) {
        return;
    }
    if (!terminal(s->status)) {
        s->status = (saga_status_t)next;
        es_str_copy(s->reason, sizeof(s->reason), reason);
        s->ended_ms = st->occurred_ms;
        chg->duration_ms = s->ended_ms > s->started_ms ? s->ended_ms - s->started_ms : 0;
        chg->completed = next == SAGA_COMPLETED;
        chg->failed = next == SAGA_FAILED;
        chg->cancelled = next == SAGA_CANCELLED;
    } else if (s->status == SAGA_COMPLETED && next == SAGA_CANCELLED) {
        /* a confirmed order cancelled later: refunded and restocked */
        s->status = SAGA_CANCELLED;
        s->ended_ms = st->occurred_ms;
        chg->cancelled = 1;
    }
}

int saga_time_out(saga_t *s, int64_t now_ms)
{
    if (!s->exists || s->status != SAGA_PENDING || s->type == SAGA_T_UNKNOWN ||
        s->deadline_ms <= 0 || s->deadline_ms > now_ms) {
        return 0;
    }
    s->status = SAGA_TIMED_OUT;
    s->timed_out_ms = now_ms;
    return 1;
}

static const char *const type_names[SAGA_T__COUNT] = {"", "order", "transfer"};
static const char *const status_names[SAGA_S__COUNT] = {"PENDING", "TIMED_OUT", "COMPLETED",
                                                        "FAILED", "CANCELLED"};

const char *saga_type_name(saga_type_t t)
{
    return t >= 0 && t < SAGA_T__COUNT ? type_names[t] : "";
}

const char *saga_status_name(saga_status_t s)
{
    return s >= 0 && s < SAGA_S__COUNT ? status_names[s] : "";
}

int saga_type_parse(const char *name)
{
    for (int i = 0; i < SAGA_T__COUNT; i++) {
        if (!strcmp(type_names[i], name)) {
            return i;
        }
    }
    return -1;
}

int saga_status_parse(const char *name)
{
    for (int i = 0; i < SAGA_S__COUNT; i++) {
        if (!strcmp(status_names[i], name)) {
            return i;
        }
    }
    return -1;
}

/* "30s", "500ms", "2m", "3h", "30d", "45" (seconds) -> ms; -1 when malformed or above
 * max_ms. */
static int64_t duration_ms(const char *s, size_t len, int64_t max_ms)
{
    char buf[32];
    if (len == 0 || len >= sizeof(buf) || s[0] < '0' || s[0] > '9') {
        return -1;
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    errno = 0;
    char *end;
    long long v = strtoll(buf, &end, 10);
    if (errno || v <= 0 || v > max_ms) {
        return -1;
    }
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (!strcmp(end, units[i].unit)) {
            return v <= max_ms / units[i].ms ? v * units[i].ms : -1;
        }
    }
    return -1;
}

int saga_deadlines_parse(const char *spec, int64_t deadlines_ms[SAGA_T__COUNT], char *errstr,
                         size_t errstr_size)
{
    const char *p = spec;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        char name[32];
        size_t nlen = eq ? (size_t)(eq - p) : 0;
        if (!eq || nlen == 0 || nlen >= sizeof(name)) {
            snprintf(errstr, errstr_size, "bad deadline \"%.*s\": expected type=duration", (int)len,
                     p);
            return -1;
        }
        memcpy(name, p, nlen);
        name[nlen] = '\0';
        int t = saga_type_parse(name);
        if (t <= SAGA_T_UNKNOWN) {
            snprintf(errstr, errstr_size, "unknown saga type \"%s\" (order or transfer)", name);
            return -1;
        }
        int64_t ms = duration_ms(eq + 1, len - nlen - 1, 86400LL * 1000);
        if (ms < 0) {
            snprintf(errstr, errstr_size,
                     "bad duration \"%.*s\" for %s: expected e.g. 30s, 500ms, 2m (1 ms to 24 h)",
                     (int)(len - nlen - 1), eq + 1, name);
            return -1;
        }
        deadlines_ms[t] = ms;
        p += len;
        if (*p == ',') {
            p++;
        }
    }
    return 0;
}

int saga_retention_parse(const char *spec, int64_t *retention_ms, char *errstr, size_t errstr_size)
{
    if (!strcmp(spec, "forever")) {
        *retention_ms = 0;
        return 0;
    }
    int64_t ms = duration_ms(spec, strlen(spec), SAGA_RETENTION_MAX_MS);
    if (ms < 0) {
        snprintf(errstr, errstr_size,
                 "bad retention \"%s\": expected e.g. 30d, 12h, 90m, 45s or forever (at most "
                 "10 years)",
                 spec);
        return -1;
    }
    *retention_ms = ms;
    return 0;
}
