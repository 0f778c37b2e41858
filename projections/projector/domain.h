/*
 * domain.h: how each event changes the ledger's read models, as a pure function. The
 * projector's wiring (main.c) loads the rows a batch touches, runs every event through
 * ledger_project() and writes the rows back; a rebuild runs the very same code over the log.
 */
#ifndef PROJECTOR_DOMAIN_H
#define PROJECTOR_DOMAIN_H

#include <jansson.h>
#include <stdint.h>

#define LV_ID_MAX 128
#define LV_TEXT_MAX 256
#define LV_REASON_MAX 48

/* projections.accounts */
typedef struct account_view {
    char account_id[LV_ID_MAX];
    char owner[LV_TEXT_MAX];
    char currency[8];
    int64_t balance;
    char status[8]; /* "" = no such account, OPEN, CLOSED */
    int64_t version;
    int64_t opened_at, updated_at; /* ms since epoch */
} account_view_t;

/* projections.transfers */
typedef struct transfer_view {
    char transfer_id[LV_ID_MAX];
    char from_account[LV_ID_MAX];
    char to_account[LV_ID_MAX];
    int64_t amount;
    char currency[8]; /* "" = unspecified */
    char status[12];  /* "" = unknown, PENDING, COMPLETED, FAILED */
    char reason[LV_REASON_MAX];
    int compensated;
    int64_t requested_at, updated_at;
} transfer_view_t;

/* projections.entries: one row per money movement on an account */
typedef struct entry_view {
    char account_id[LV_ID_MAX];
    int64_t seq;          /* the account event's version */
    const char *event_id; /* borrowed from the event */
    const char *kind;     /* DEPOSIT, WITHDRAWAL, DEBIT, CREDIT, REVERSAL */
    int64_t amount;       /* signed: + in, - out */
    int64_t balance_after;
    char transfer_id[LV_ID_MAX]; /* "" = none */
    int64_t occurred_at;
} entry_view_t;

/* projections.commands: what became of a command, for `esctl send --wait` */
typedef struct command_view {
    char command_id[40];
    char command_type[48];
    char aggregate_id[LV_ID_MAX];
    const char *status; /* ACCEPTED, REJECTED */
    char reason[LV_REASON_MAX];
    char event_type[48];
    int64_t recorded_at;
} command_view_t;

/* What one event asks for. */
typedef struct ledger_effect {
    int account_changed;  /* *acc was updated */
    int transfer_changed; /* *tr was updated */
    int has_entry;
    entry_view_t entry;
    int has_command;
    command_view_t command;
} ledger_effect_t;

/* The event's metadata the projection needs (borrowed strings). */
typedef struct ledger_event {
    const char *type;
    const char *event_id;
    const char *causation_id;
    const char *aggregate_id;
    int64_t version;
    int64_t occurred_at;
    const json_t *payload; /* borrowed, schema-valid */
} ledger_event_t;

/* Which view an event type changes: 'a' account, 't' transfer, 0 none. */
char ledger_event_target(const char *type);

/* Apply `ev` to the account view `acc` (for account events) or the transfer view `tr` (for
 * transfer events); either may be NULL when not targeted. An event whose version is not newer
 * than the view's is a replay and changes nothing. Fills *eff. */
void ledger_project(const ledger_event_t *ev, account_view_t *acc, transfer_view_t *tr,
                    ledger_effect_t *eff);

#endif
