/*
 * domain.h: the saga coordinator's rules, as pure functions (no I/O). A saga is every record
 * sharing one correlation id (docs/SAGAS.md); the coordinator folds each record it sees into
 * the saga's state:
 *
 *   saga_evolve(state, step) -> the state after the step, and what changed for the metrics
 *
 * Records of one saga arrive from many topics in any order across topics, so the rules never
 * assume an order beyond the one Kafka keeps per aggregate: a saga's type is set by whichever
 * record reveals it first, its start is the earliest record seen, and a terminal status is
 * never left (except an order's cancel after it was completed).
 */
#ifndef SAGA_DOMAIN_H
#define SAGA_DOMAIN_H

#include <stddef.h>
#include <stdint.h>

#define SAGA_ID_MAX 40
#define SAGA_SUBJECT_MAX 128
#define SAGA_TYPE_NAME_MAX 64
#define SAGA_REASON_MAX 64
#define SAGA_TRACE_MAX 64

typedef enum { SAGA_T_UNKNOWN = 0, SAGA_T_ORDER, SAGA_T_TRANSFER, SAGA_T__COUNT } saga_type_t;

typedef enum {
    SAGA_PENDING = 0,
    SAGA_TIMED_OUT, /* deadline passed, SagaTimedOut published: participants are reacting */
    SAGA_COMPLETED,
    SAGA_FAILED,
    SAGA_CANCELLED, /* orders only */
    SAGA_S__COUNT
} saga_status_t;

typedef struct saga {
    int exists;
    char id[SAGA_ID_MAX];
    saga_type_t type;
    char subject[SAGA_SUBJECT_MAX]; /* the order id or transfer id, "" while unknown */
    saga_status_t status;
    char reason[SAGA_REASON_MAX];
    int64_t started_ms;   /* the earliest step's time */
    int64_t updated_ms;   /* the latest step's time */
    int64_t ended_ms;     /* when it became terminal, 0 while not */
    int64_t deadline_ms;  /* 0 while the type is unknown */
    int64_t timed_out_ms; /* when the coordinator published SagaTimedOut, 0 if never */
    char last_step[SAGA_TYPE_NAME_MAX];
    char last_event_id[SAGA_ID_MAX];
    char traceparent[SAGA_TRACE_MAX];
    int64_t step_count;
} saga_t;

/* One record of a saga, as the rules need it. Strings are NUL-terminated copies. */
typedef struct saga_step {
    char type[SAGA_TYPE_NAME_MAX]; /* the record's type: "PlaceOrder", "FundsDebited" */
    char event_id[SAGA_ID_MAX];
    char correlation_id[SAGA_ID_MAX]; /* the saga */
    char causation_id[SAGA_ID_MAX];   /* "" for a client's command */
    char traceparent[SAGA_TRACE_MAX];
    int64_t occurred_ms;
    char order_id[SAGA_SUBJECT_MAX];       /* from the payload, "" when it has none */
    char transfer_id[SAGA_SUBJECT_MAX];    /* from the payload, "" when it has none */
    char command_type[SAGA_TYPE_NAME_MAX]; /* *CommandRejected: the refused command */
    char reason[SAGA_REASON_MAX];          /* failures: why */
} saga_step_t;

/* What one step changed, for the counters and the duration histogram. */
typedef struct saga_change {
    saga_type_t counted_type; /* the type the flags below count under */
    int started;              /* the saga's type became known: one more saga of it */
    int completed, failed, cancelled;
    int timed_out;       /* a SagaTimedOut read back from the log taught it the timeout */
    int64_t duration_ms; /* >= 0 when it just ended (first terminal status), else -1 */
} saga_change_t;

/* The record types the coordinator follows (everything else about a saga is noise: account
 * openings, price changes). Returns 1 when `type` is one of them. */
int saga_follows(const char *type);

/* Whether a followed record is a step of a saga at all: a refused CancelOrder's
 * OrderCommandRejected is not (it carries the refused command's own correlation id, no saga
 * ever starts there, and nothing happened). Returns 1 for a step. */
int saga_step_counts(const saga_step_t *step);

/* The saga type `step` reveals on its own, or SAGA_T_UNKNOWN: PlaceOrder (the client's),
 * OrderPlaced, OrderConfirmed, OrderRejected, OrderCancelled, OrderCommandRejected of a
 * PlaceOrder reveal an order saga; the client's RequestTransfer, and TransferRequested or
 * TransferCommandRejected caused by it, a transfer saga (a payment's transfers are caused by a
 * payments record: they are steps of their order's saga). */
saga_type_t saga_step_reveals(const saga_step_t *step);

/* Fold `step` into `s` (s->exists 0: a saga seen for the first time). deadlines_ms[type] is
 * each type's deadline. Fills *chg. */
void saga_evolve(saga_t *s, const saga_step_t *step, const int64_t deadlines_ms[SAGA_T__COUNT],
                 saga_change_t *chg);

/* The coordinator's own transition at a deadline: PENDING -> TIMED_OUT at `now_ms`. Returns 1
 * when it applies (the saga is pending, of a known type, and its deadline passed), else 0. */
int saga_time_out(saga_t *s, int64_t now_ms);

/* Names on the wire and in the tables. */
const char *saga_type_name(saga_type_t t);
const char *saga_status_name(saga_status_t s);
/* Parse a name back; -1 when unknown. */
int saga_type_parse(const char *name);
int saga_status_parse(const char *name);

/* How long an ended saga and its steps are kept: 30 days unless told (0: for ever). */
#define SAGA_RETENTION_DEFAULT_MS (30LL * 86400 * 1000)
#define SAGA_RETENTION_MAX_MS (3660LL * 86400 * 1000)

/* Parse a retention "30d", "12h", "90m", "45s", "500ms" (a plain number is seconds) or
 * "forever" (0) into *retention_ms. Returns 0, or -1 with errstr. */
int saga_retention_parse(const char *spec, int64_t *retention_ms, char *errstr, size_t errstr_size);

/* Parse a deadline list "order=30s,transfer=10s" (units ms, s, m, h; a plain number is seconds;
 * at most 24 h) into deadlines_ms[] (entries not named are left as they are). Returns 0, or -1
 * with errstr. */
int saga_deadlines_parse(const char *spec, int64_t deadlines_ms[SAGA_T__COUNT], char *errstr,
                         size_t errstr_size);

#endif
