/*
 * domain.c: the ledger projection's rules (see domain.h). Pure: no I/O, no clock.
 */
#include "str.h"
#include "domain.h"
#include "json_get.h"

#include <stdio.h>
#include <string.h>

static int64_t num(const json_t *obj, const char *field)
{
    return (int64_t)json_integer_value(json_object_get(obj, field));
}

char ledger_event_target(const char *type)
{
    static const char *const account_events[] = {
        "AccountOpened", "FundsDeposited",        "FundsWithdrawn", "AccountClosed",
        "FundsDebited",  "DebitRejected",         "FundsCredited",  "CreditRejected",
        "DebitReversed", "AccountCommandRejected"};
    static const char *const transfer_events[] = {"TransferRequested", "TransferCompleted",
                                                  "TransferFailed", "TransferCommandRejected"};
    for (size_t i = 0; i < sizeof(account_events) / sizeof(account_events[0]); i++) {
        if (!strcmp(type, account_events[i])) {
            return 'a';
        }
    }
    for (size_t i = 0; i < sizeof(transfer_events) / sizeof(transfer_events[0]); i++) {
        if (!strcmp(type, transfer_events[i])) {
            return 't';
        }
    }
    return 0;
}

static void command_outcome(const ledger_event_t *ev, ledger_effect_t *eff, const char *status,
                            const char *command_type, const char *reason)
{
    command_view_t *c = &eff->command;
    eff->has_command = 1;
    es_str_copy(c->command_id, sizeof(c->command_id), ev->causation_id);
    es_str_copy(c->command_type, sizeof(c->command_type), command_type);
    es_str_copy(c->aggregate_id, sizeof(c->aggregate_id), ev->aggregate_id);
    c->status = status;
    es_str_copy(c->reason, sizeof(c->reason), reason);
    es_str_copy(c->event_type, sizeof(c->event_type), ev->type);
    c->recorded_at = ev->occurred_at;
}

static void entry(const ledger_event_t *ev, ledger_effect_t *eff, const char *kind, int64_t amount)
{
    entry_view_t *e = &eff->entry;
    eff->has_entry = 1;
    es_str_copy(e->account_id, sizeof(e->account_id), ev->aggregate_id);
    e->seq = ev->version;
    e->event_id = ev->event_id;
    e->kind = kind;
    e->amount = amount;
    e->balance_after = num(ev->payload, "balance");
    es_str_copy(e->transfer_id, sizeof(e->transfer_id), es_json_str(ev->payload, "transfer_id"));
    e->occurred_at = ev->occurred_at;
}

static void project_account(const ledger_event_t *ev, account_view_t *acc, ledger_effect_t *eff)
{
    const json_t *p = ev->payload;
    const char *t = ev->type;
    if (!strcmp(t, "AccountCommandRejected")) {
        command_outcome(ev, eff, "REJECTED", es_json_str(p, "command_type"),
                        es_json_str(p, "reason"));
        es_str_copy(eff->command.command_id, sizeof(eff->command.command_id),
                    es_json_str(p, "command_id"));
    }
    /* events of a missing account (version 0) and replays leave the view alone */
    if (ev->version <= 0 || !acc || (acc->status[0] && ev->version <= acc->version)) {
        return;
    }
    if (!strcmp(t, "AccountOpened")) {
        es_str_copy(acc->owner, sizeof(acc->owner), es_json_str(p, "owner"));
        es_str_copy(acc->currency, sizeof(acc->currency), es_json_str(p, "currency"));
        acc->balance = 0;
        es_str_copy(acc->status, sizeof(acc->status), "OPEN");
        acc->opened_at = ev->occurred_at;
        command_outcome(ev, eff, "ACCEPTED", "OpenAccount", "");
    } else if (!acc->status[0]) {
        return; /* not opened yet: cannot happen in a well-ordered log */
    } else if (!strcmp(t, "FundsDeposited")) {
        acc->balance = num(p, "balance");
        entry(ev, eff, "DEPOSIT", num(p, "amount"));
        command_outcome(ev, eff, "ACCEPTED", "DepositFunds", "");
    } else if (!strcmp(t, "FundsWithdrawn")) {
        acc->balance = num(p, "balance");
        entry(ev, eff, "WITHDRAWAL", -num(p, "amount"));
        command_outcome(ev, eff, "ACCEPTED", "WithdrawFunds", "");
    } else if (!strcmp(t, "AccountClosed")) {
        es_str_copy(acc->status, sizeof(acc->status), "CLOSED");
        command_outcome(ev, eff, "ACCEPTED", "CloseAccount", "");
    } else if (!strcmp(t, "FundsDebited")) {
        acc->balance = num(p, "balance");
        entry(ev, eff, "DEBIT", -num(p, "amount"));
    } else if (!strcmp(t, "FundsCredited")) {
        acc->balance = num(p, "balance");
        entry(ev, eff, "CREDIT", num(p, "amount"));
    } else if (!strcmp(t, "DebitReversed")) {
        acc->balance = num(p, "balance");
        entry(ev, eff, "REVERSAL", num(p, "amount"));
    }
    acc->version = ev->version;
    acc->updated_at = ev->occurred_at;
    eff->account_changed = 1;
}

static void project_transfer(const ledger_event_t *ev, transfer_view_t *tr, ledger_effect_t *eff)
{
    const json_t *p = ev->payload;
    const char *t = ev->type;
    if (!strcmp(t, "TransferCommandRejected")) {
        command_outcome(ev, eff, "REJECTED", es_json_str(p, "command_type"),
                        es_json_str(p, "reason"));
        es_str_copy(eff->command.command_id, sizeof(eff->command.command_id),
                    es_json_str(p, "command_id"));
        return;
    }
    if (!tr) {
        return;
    }
    int is_new = !tr->status[0];
    if (!is_new && strcmp(tr->status, "PENDING") != 0) {
        return; /* terminal: nothing moves it */
    }
    if (is_new) {
        es_str_copy(tr->from_account, sizeof(tr->from_account), es_json_str(p, "from_account"));
        es_str_copy(tr->to_account, sizeof(tr->to_account), es_json_str(p, "to_account"));
        tr->amount = num(p, "amount");
        es_str_copy(tr->currency, sizeof(tr->currency), es_json_str(p, "currency"));
        tr->requested_at = ev->occurred_at;
    }
    if (!strcmp(t, "TransferRequested")) {
        if (!is_new) {
            return;
        }
        es_str_copy(tr->status, sizeof(tr->status), "PENDING");
        command_outcome(ev, eff, "ACCEPTED", "RequestTransfer", "");
    } else if (!strcmp(t, "TransferCompleted")) {
        es_str_copy(tr->status, sizeof(tr->status), "COMPLETED");
    } else if (!strcmp(t, "TransferFailed")) {
        es_str_copy(tr->status, sizeof(tr->status), "FAILED");
        es_str_copy(tr->reason, sizeof(tr->reason), es_json_str(p, "reason"));
        tr->compensated = json_is_true(json_object_get(p, "compensated"));
        if (ev->version == 1) {
            /* refused at once: the request itself is the command's outcome */
            command_outcome(ev, eff, "REJECTED", "RequestTransfer", tr->reason);
        }
    } else {
        return;
    }
    tr->updated_at = ev->occurred_at;
    eff->transfer_changed = 1;
}

void ledger_project(const ledger_event_t *ev, account_view_t *acc, transfer_view_t *tr,
                    ledger_effect_t *eff)
{
    memset(eff, 0, sizeof(*eff));
    char target = ledger_event_target(ev->type);
    if (target == 'a') {
        project_account(ev, acc, eff);
    } else if (target == 't') {
        project_transfer(ev, tr, eff);
    }
}
