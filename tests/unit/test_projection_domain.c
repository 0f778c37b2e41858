/*
 * test_projection_domain.c: the ledger projection's pure rules (projections/projector/domain.c):
 * which view each event type targets; what every account event does to the account view, its
 * entry and its command outcome; that replays, events of a missing account and events of an
 * account not yet opened change nothing; how transfer events move a transfer view to a
 * terminal state and never out of it; and a seeded random run that applies every event of an
 * account stream twice (each duplicate at a random later position) and checks the result equals
 * applying each event once.
 */
#include <check.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../projections/projector/domain.h"

#define T_AT 1700000000000LL /* occurred_at of the events under test */

/* ---- helpers ---- */

/* Project one event with fixed metadata: event id "ev-1", causation "cmd-1", aggregate "A"
 * (account events) or "t-1" (others). Steals `payload`; the effect's borrowed event_id points
 * to a string literal so it outlives the call. */
static ledger_effect_t project(const char *type, int64_t version, json_t *payload,
                               account_view_t *acc, transfer_view_t *tr)
{
    ck_assert_ptr_nonnull(payload);
    ledger_event_t ev = {.type = type,
                         .event_id = "ev-1",
                         .causation_id = "cmd-1",
                         .aggregate_id = ledger_event_target(type) == 'a' ? "A" : "t-1",
                         .version = version,
                         .occurred_at = T_AT + version,
                         .payload = payload};
    ledger_effect_t eff;
    memset(&eff, 0x5a, sizeof(eff)); /* ledger_project must clear it */
    ledger_project(&ev, acc, tr, &eff);
    json_decref(payload);
    return eff;
}

/* A schema-shaped payload for account event `type` of account "A" (transfer "t-1"). */
static json_t *account_payload(const char *type, int64_t amount, int64_t balance)
{
    json_int_t a = (json_int_t)amount, b = (json_int_t)balance;
    if (!strcmp(type, "AccountOpened")) {
        return json_pack("{s:s, s:s, s:s}", "account_id", "A", "owner", "ann", "currency", "USD");
    }
    if (!strcmp(type, "FundsDeposited") || !strcmp(type, "FundsWithdrawn")) {
        return json_pack("{s:s, s:I, s:I}", "account_id", "A", "amount", a, "balance", b);
    }
    if (!strcmp(type, "AccountClosed")) {
        return json_pack("{s:s}", "account_id", "A");
    }
    if (!strcmp(type, "FundsDebited")) {
        return json_pack("{s:s, s:s, s:s, s:I, s:s, s:I}", "account_id", "A", "transfer_id", "t-1",
                         "to_account", "B", "amount", a, "currency", "USD", "balance", b);
    }
    if (!strcmp(type, "DebitRejected")) {
        return json_pack("{s:s, s:s, s:I, s:s}", "account_id", "A", "transfer_id", "t-1", "amount",
                         a, "reason", "INSUFFICIENT_FUNDS");
    }
    if (!strcmp(type, "FundsCredited")) {
        return json_pack("{s:s, s:s, s:s, s:I, s:I}", "account_id", "A", "transfer_id", "t-1",
                         "from_account", "B", "amount", a, "balance", b);
    }
    if (!strcmp(type, "CreditRejected")) {
        return json_pack("{s:s, s:s, s:s, s:I, s:s}", "account_id", "A", "transfer_id", "t-1",
                         "from_account", "B", "amount", a, "reason", "ACCOUNT_CLOSED");
    }
    if (!strcmp(type, "DebitReversed")) {
        return json_pack("{s:s, s:s, s:I, s:s, s:I}", "account_id", "A", "transfer_id", "t-1",
                         "amount", a, "reason", "CREDIT_REJECTED", "balance", b);
    }
    if (!strcmp(type, "AccountCommandRejected")) {
        return json_pack("{s:s, s:s, s:s, s:s}", "command_id", "cmd-rej", "command_type",
                         "WithdrawFunds", "account_id", "A", "reason", "INSUFFICIENT_FUNDS");
    }
    ck_abort_msg("no payload for %s", type);
    return NULL;
}

/* A schema-shaped payload for transfer event `type` of t-1 (A -> B, 40 USD). */
static json_t *transfer_payload(const char *type, const char *reason, int compensated)
{
    if (!strcmp(type, "TransferRequested")) {
        return json_pack("{s:s, s:s, s:s, s:I, s:s}", "transfer_id", "t-1", "from_account", "A",
                         "to_account", "B", "amount", (json_int_t)40, "currency", "USD");
    }
    if (!strcmp(type, "TransferCompleted")) {
        return json_pack("{s:s, s:s, s:s, s:I}", "transfer_id", "t-1", "from_account", "A",
                         "to_account", "B", "amount", (json_int_t)40);
    }
    if (!strcmp(type, "TransferFailed")) {
        return json_pack("{s:s, s:s, s:s, s:I, s:s, s:b}", "transfer_id", "t-1", "from_account",
                         "A", "to_account", "B", "amount", (json_int_t)40, "reason", reason,
                         "compensated", compensated);
    }
    if (!strcmp(type, "TransferCommandRejected")) {
        return json_pack("{s:s, s:s, s:s, s:s}", "command_id", "cmd-rej", "command_type",
                         "RequestTransfer", "transfer_id", "t-1", "reason", reason);
    }
    ck_abort_msg("no payload for %s", type);
    return NULL;
}

static void assert_account_eq(const account_view_t *a, const account_view_t *b)
{
    ck_assert_str_eq(a->account_id, b->account_id);
    ck_assert_str_eq(a->owner, b->owner);
    ck_assert_str_eq(a->currency, b->currency);
    ck_assert_int_eq(a->balance, b->balance);
    ck_assert_str_eq(a->status, b->status);
    ck_assert_int_eq(a->version, b->version);
    ck_assert_int_eq(a->opened_at, b->opened_at);
    ck_assert_int_eq(a->updated_at, b->updated_at);
}

static void assert_transfer_eq(const transfer_view_t *a, const transfer_view_t *b)
{
    ck_assert_str_eq(a->transfer_id, b->transfer_id);
    ck_assert_str_eq(a->from_account, b->from_account);
    ck_assert_str_eq(a->to_account, b->to_account);
    ck_assert_int_eq(a->amount, b->amount);
    ck_assert_str_eq(a->currency, b->currency);
    ck_assert_str_eq(a->status, b->status);
    ck_assert_str_eq(a->reason, b->reason);
    ck_assert_int_eq(a->compensated, b->compensated);
    ck_assert_int_eq(a->requested_at, b->requested_at);
    ck_assert_int_eq(a->updated_at, b->updated_at);
}

static void assert_no_effect(const ledger_effect_t *eff)
{
    ck_assert_int_eq(eff->account_changed, 0);
    ck_assert_int_eq(eff->transfer_changed, 0);
    ck_assert_int_eq(eff->has_entry, 0);
    ck_assert_int_eq(eff->has_command, 0);
}

/* The account view of "A" as the store hands it over (id set, nothing else). */
static account_view_t missing_account(void)
{
    account_view_t acc;
    memset(&acc, 0, sizeof(acc));
    snprintf(acc.account_id, sizeof(acc.account_id), "A");
    return acc;
}

/* Account "A" opened at version 1, then at `version` (> 1) holding `balance`. */
static account_view_t open_account(int64_t version, int64_t balance)
{
    account_view_t acc = missing_account();
    ledger_effect_t eff =
        project("AccountOpened", 1, account_payload("AccountOpened", 0, 0), &acc, NULL);
    ck_assert_int_eq(eff.account_changed, 1);
    if (version > 1) {
        eff = project("FundsDeposited", version,
                      account_payload("FundsDeposited", balance, balance), &acc, NULL);
        ck_assert_int_eq(eff.account_changed, 1);
    }
    ck_assert_int_eq(acc.version, version);
    ck_assert_int_eq(acc.balance, balance);
    return acc;
}

static transfer_view_t new_transfer(void)
{
    transfer_view_t tr;
    memset(&tr, 0, sizeof(tr));
    snprintf(tr.transfer_id, sizeof(tr.transfer_id), "t-1");
    return tr;
}

/* t-1 (A -> B, 40 USD) pending after TransferRequested v1. */
static transfer_view_t pending_transfer(void)
{
    transfer_view_t tr = new_transfer();
    ledger_effect_t eff =
        project("TransferRequested", 1, transfer_payload("TransferRequested", "", 0), NULL, &tr);
    ck_assert_int_eq(eff.transfer_changed, 1);
    ck_assert_str_eq(tr.status, "PENDING");
    return tr;
}

static const char *const account_types[] = {
    "AccountOpened", "FundsDeposited", "FundsWithdrawn", "AccountClosed", "FundsDebited",
    "DebitRejected", "FundsCredited",  "CreditRejected", "DebitReversed", "AccountCommandRejected"};
#define ACCOUNT_TYPES_N ((int)(sizeof(account_types) / sizeof(account_types[0])))

/* ---- targets ---- */

static const struct {
    const char *type;
    char target;
} targets[] = {
    {"AccountOpened", 'a'},
    {"FundsDeposited", 'a'},
    {"FundsWithdrawn", 'a'},
    {"AccountClosed", 'a'},
    {"FundsDebited", 'a'},
    {"DebitRejected", 'a'},
    {"FundsCredited", 'a'},
    {"CreditRejected", 'a'},
    {"DebitReversed", 'a'},
    {"AccountCommandRejected", 'a'},
    {"TransferRequested", 't'},
    {"TransferCompleted", 't'},
    {"TransferFailed", 't'},
    {"TransferCommandRejected", 't'},
    {"", 0},
    {"accountopened", 0},
    {"AccountOpened ", 0},
    {"Transfer", 0},
    {"OpenAccount", 0},
    {"RequestTransfer", 0},
};

START_TEST(test_event_target)
{
    ck_assert_int_eq(ledger_event_target(targets[_i].type), targets[_i].target);
}
END_TEST

START_TEST(test_unknown_type_changes_nothing)
{
    account_view_t acc = open_account(3, 100), acc0 = acc;
    transfer_view_t tr = pending_transfer(), tr0 = tr;
    ledger_effect_t eff =
        project("OpenAccount", 9, account_payload("AccountOpened", 0, 0), &acc, &tr);
    assert_no_effect(&eff);
    assert_account_eq(&acc, &acc0);
    assert_transfer_eq(&tr, &tr0);
}
END_TEST

/* ---- account events ---- */

START_TEST(test_account_opened)
{
    account_view_t acc = missing_account();
    ledger_effect_t eff =
        project("AccountOpened", 1, account_payload("AccountOpened", 0, 0), &acc, NULL);
    ck_assert_int_eq(eff.account_changed, 1);
    ck_assert_int_eq(eff.transfer_changed, 0);
    ck_assert_int_eq(eff.has_entry, 0);
    ck_assert_str_eq(acc.account_id, "A");
    ck_assert_str_eq(acc.owner, "ann");
    ck_assert_str_eq(acc.currency, "USD");
    ck_assert_int_eq(acc.balance, 0);
    ck_assert_str_eq(acc.status, "OPEN");
    ck_assert_int_eq(acc.version, 1);
    ck_assert_int_eq(acc.opened_at, T_AT + 1);
    ck_assert_int_eq(acc.updated_at, T_AT + 1);

    ck_assert_int_eq(eff.has_command, 1);
    ck_assert_str_eq(eff.command.command_id, "cmd-1"); /* the causation id */
    ck_assert_str_eq(eff.command.command_type, "OpenAccount");
    ck_assert_str_eq(eff.command.aggregate_id, "A");
    ck_assert_str_eq(eff.command.status, "ACCEPTED");
    ck_assert_str_eq(eff.command.reason, "");
    ck_assert_str_eq(eff.command.event_type, "AccountOpened");
    ck_assert_int_eq(eff.command.recorded_at, T_AT + 1);
}
END_TEST

/* Events that move money: each sets the balance from the payload and writes one entry. */
static const struct {
    const char *type;
    int64_t amount, balance; /* payload */
    const char *kind;
    int64_t signed_amount;
    const char *transfer_id;
    const char *command_type; /* NULL: a saga step, no command outcome */
} money[] = {
    {"FundsDeposited", 70, 570, "DEPOSIT", 70, "", "DepositFunds"},
    {"FundsWithdrawn", 30, 470, "WITHDRAWAL", -30, "", "WithdrawFunds"},
    {"FundsDebited", 40, 460, "DEBIT", -40, "t-1", NULL},
    {"FundsCredited", 25, 525, "CREDIT", 25, "t-1", NULL},
    {"DebitReversed", 40, 540, "REVERSAL", 40, "t-1", NULL},
    {"FundsWithdrawn", 500, 0, "WITHDRAWAL", -500, "", "WithdrawFunds"},
};

START_TEST(test_money_event)
{
    account_view_t acc = open_account(4, 500), want = acc;
    ledger_effect_t eff =
        project(money[_i].type, 5,
                account_payload(money[_i].type, money[_i].amount, money[_i].balance), &acc, NULL);
    want.balance = money[_i].balance;
    want.version = 5;
    want.updated_at = T_AT + 5;
    assert_account_eq(&acc, &want);
    ck_assert_int_eq(eff.account_changed, 1);
    ck_assert_int_eq(eff.transfer_changed, 0);

    ck_assert_int_eq(eff.has_entry, 1);
    ck_assert_str_eq(eff.entry.account_id, "A");
    ck_assert_int_eq(eff.entry.seq, 5);
    ck_assert_str_eq(eff.entry.event_id, "ev-1");
    ck_assert_str_eq(eff.entry.kind, money[_i].kind);
    ck_assert_int_eq(eff.entry.amount, money[_i].signed_amount);
    ck_assert_int_eq(eff.entry.balance_after, money[_i].balance);
    ck_assert_str_eq(eff.entry.transfer_id, money[_i].transfer_id);
    ck_assert_int_eq(eff.entry.occurred_at, T_AT + 5);

    if (money[_i].command_type) {
        ck_assert_int_eq(eff.has_command, 1);
        ck_assert_str_eq(eff.command.command_id, "cmd-1");
        ck_assert_str_eq(eff.command.command_type, money[_i].command_type);
        ck_assert_str_eq(eff.command.aggregate_id, "A");
        ck_assert_str_eq(eff.command.status, "ACCEPTED");
        ck_assert_str_eq(eff.command.reason, "");
        ck_assert_str_eq(eff.command.event_type, money[_i].type);
        ck_assert_int_eq(eff.command.recorded_at, T_AT + 5);
    } else {
        ck_assert_int_eq(eff.has_command, 0);
    }
}
END_TEST

START_TEST(test_account_closed)
{
    account_view_t acc = open_account(2, 0), want = acc;
    ledger_effect_t eff =
        project("AccountClosed", 3, account_payload("AccountClosed", 0, 0), &acc, NULL);
    snprintf(want.status, sizeof(want.status), "CLOSED");
    want.version = 3;
    want.updated_at = T_AT + 3;
    assert_account_eq(&acc, &want);
    ck_assert_int_eq(eff.account_changed, 1);
    ck_assert_int_eq(eff.has_entry, 0);
    ck_assert_int_eq(eff.has_command, 1);
    ck_assert_str_eq(eff.command.command_id, "cmd-1");
    ck_assert_str_eq(eff.command.command_type, "CloseAccount");
    ck_assert_str_eq(eff.command.status, "ACCEPTED");
    ck_assert_str_eq(eff.command.event_type, "AccountClosed");
}
END_TEST

/* Refused saga steps: the account's stream moves on, nothing else does. */
static const char *const saga_rejections[] = {"DebitRejected", "CreditRejected"};

START_TEST(test_saga_rejection_bumps_version)
{
    account_view_t acc = open_account(2, 10), want = acc;
    ledger_effect_t eff =
        project(saga_rejections[_i], 3, account_payload(saga_rejections[_i], 40, 0), &acc, NULL);
    want.version = 3;
    want.updated_at = T_AT + 3;
    assert_account_eq(&acc, &want);
    ck_assert_int_eq(eff.account_changed, 1);
    ck_assert_int_eq(eff.has_entry, 0);
    ck_assert_int_eq(eff.has_command, 0);
}
END_TEST

/* AccountCommandRejected records the refusal whatever the account's state; the account's own
 * stream position moves only when the account exists and the event is new. */
static const struct {
    const char *name;
    int setup;       /* 0 missing view, 1 no view (NULL), 2 open at version 3 */
    int64_t version; /* of the event */
    int changed;
} cmd_rejections[] = {
    {"missing account", 0, 0, 0},     {"account not loaded", 1, 0, 0},
    {"open account", 2, 4, 1},        {"open account, replayed", 2, 3, 0},
    {"open account, older", 2, 2, 0},
};

START_TEST(test_account_command_rejected)
{
    account_view_t acc = cmd_rejections[_i].setup == 2 ? open_account(3, 10) : missing_account();
    account_view_t want = acc;
    account_view_t *accp = cmd_rejections[_i].setup == 1 ? NULL : &acc;
    int64_t v = cmd_rejections[_i].version;
    ledger_effect_t eff = project("AccountCommandRejected", v,
                                  account_payload("AccountCommandRejected", 0, 0), accp, NULL);
    if (cmd_rejections[_i].changed) {
        want.version = v;
        want.updated_at = T_AT + v;
    }
    assert_account_eq(&acc, &want);
    ck_assert_msg(eff.account_changed == cmd_rejections[_i].changed, "%s: account_changed %d",
                  cmd_rejections[_i].name, eff.account_changed);
    ck_assert_int_eq(eff.has_entry, 0);
    ck_assert_int_eq(eff.has_command, 1);
    ck_assert_str_eq(eff.command.command_id, "cmd-rej"); /* the payload's, not the causation */
    ck_assert_str_eq(eff.command.command_type, "WithdrawFunds");
    ck_assert_str_eq(eff.command.aggregate_id, "A");
    ck_assert_str_eq(eff.command.status, "REJECTED");
    ck_assert_str_eq(eff.command.reason, "INSUFFICIENT_FUNDS");
    ck_assert_str_eq(eff.command.event_type, "AccountCommandRejected");
    ck_assert_int_eq(eff.command.recorded_at, T_AT + v);
}
END_TEST

/* ---- replays, missing and unopened accounts ---- */

/* Each account event type at a version equal to (loop 0) or older than (loop 1) the view's:
 * nothing changes and no entry is written. Only AccountCommandRejected still reports its
 * outcome (its rows are inserted ON CONFLICT DO NOTHING, so the repeat is harmless). */
START_TEST(test_replay_changes_nothing)
{
    const char *type = account_types[_i / 2];
    int64_t v = _i % 2 == 0 ? 5 : 2;
    account_view_t acc = open_account(5, 300), want = acc;
    ledger_effect_t eff = project(type, v, account_payload(type, 40, 999), &acc, NULL);
    assert_account_eq(&acc, &want);
    ck_assert_msg(!eff.account_changed && !eff.has_entry && !eff.transfer_changed,
                  "%s v%" PRId64 " replayed: changed %d entry %d", type, v, eff.account_changed,
                  eff.has_entry);
    ck_assert_int_eq(eff.has_command, !strcmp(type, "AccountCommandRejected"));
}
END_TEST

/* Events about an account that does not exist carry version 0 and change nothing. */
START_TEST(test_missing_account_changes_nothing)
{
    const char *type = account_types[_i];
    account_view_t acc = missing_account(), want = acc;
    ledger_effect_t eff = project(type, 0, account_payload(type, 40, 40), &acc, NULL);
    assert_account_eq(&acc, &want);
    ck_assert_int_eq(eff.account_changed, 0);
    ck_assert_int_eq(eff.has_entry, 0);
    ck_assert_int_eq(eff.has_command, !strcmp(type, "AccountCommandRejected"));
}
END_TEST

/* Version 0 means "no such account" to the accounts service: even if a view exists, such an
 * event leaves it alone. */
START_TEST(test_version_zero_on_existing_account)
{
    const char *type = account_types[_i];
    account_view_t acc = open_account(2, 50), want = acc;
    ledger_effect_t eff = project(type, 0, account_payload(type, 40, 40), &acc, NULL);
    assert_account_eq(&acc, &want);
    ck_assert_int_eq(eff.account_changed, 0);
    ck_assert_int_eq(eff.has_entry, 0);
}
END_TEST

/* An event of an account the batch did not load (NULL view) is ignored without a crash. */
START_TEST(test_account_not_loaded)
{
    const char *type = account_types[_i];
    ledger_effect_t eff = project(type, 2, account_payload(type, 40, 40), NULL, NULL);
    ck_assert_int_eq(eff.account_changed, 0);
    ck_assert_int_eq(eff.has_entry, 0);
    ck_assert_int_eq(eff.has_command, !strcmp(type, "AccountCommandRejected"));
}
END_TEST

/* Out of order (cannot happen in a well-ordered log): a later event of an account whose
 * AccountOpened was never seen leaves the view empty. */
START_TEST(test_unopened_account_changes_nothing)
{
    const char *type = account_types[_i + 1]; /* all but AccountOpened */
    account_view_t acc = missing_account(), want = acc;
    ledger_effect_t eff = project(type, 3, account_payload(type, 40, 40), &acc, NULL);
    assert_account_eq(&acc, &want);
    ck_assert_int_eq(eff.account_changed, 0);
    ck_assert_int_eq(eff.has_entry, 0);
    ck_assert_int_eq(eff.has_command, !strcmp(type, "AccountCommandRejected"));
}
END_TEST

/* ---- transfers ---- */

START_TEST(test_transfer_requested)
{
    transfer_view_t tr = new_transfer();
    ledger_effect_t eff =
        project("TransferRequested", 1, transfer_payload("TransferRequested", "", 0), NULL, &tr);
    ck_assert_int_eq(eff.transfer_changed, 1);
    ck_assert_int_eq(eff.account_changed, 0);
    ck_assert_int_eq(eff.has_entry, 0);
    ck_assert_str_eq(tr.transfer_id, "t-1");
    ck_assert_str_eq(tr.from_account, "A");
    ck_assert_str_eq(tr.to_account, "B");
    ck_assert_int_eq(tr.amount, 40);
    ck_assert_str_eq(tr.currency, "USD");
    ck_assert_str_eq(tr.status, "PENDING");
    ck_assert_str_eq(tr.reason, "");
    ck_assert_int_eq(tr.compensated, 0);
    ck_assert_int_eq(tr.requested_at, T_AT + 1);
    ck_assert_int_eq(tr.updated_at, T_AT + 1);
    ck_assert_int_eq(eff.has_command, 1);
    ck_assert_str_eq(eff.command.command_id, "cmd-1");
    ck_assert_str_eq(eff.command.command_type, "RequestTransfer");
    ck_assert_str_eq(eff.command.aggregate_id, "t-1");
    ck_assert_str_eq(eff.command.status, "ACCEPTED");
    ck_assert_str_eq(eff.command.reason, "");
    ck_assert_str_eq(eff.command.event_type, "TransferRequested");
}
END_TEST

/* The currency is an optional union: a null one leaves the view's currency unspecified. */
START_TEST(test_transfer_requested_null_currency)
{
    transfer_view_t tr = new_transfer();
    json_t *p = transfer_payload("TransferRequested", "", 0);
    ck_assert_int_eq(json_object_set_new(p, "currency", json_null()), 0);
    ledger_effect_t eff = project("TransferRequested", 1, p, NULL, &tr);
    ck_assert_int_eq(eff.transfer_changed, 1);
    ck_assert_str_eq(tr.currency, "");
    ck_assert_str_eq(tr.status, "PENDING");
}
END_TEST

/* Each outcome takes a pending transfer to its terminal state. */
static const struct {
    const char *type;
    const char *reason;
    int compensated;
    const char *status;
} outcomes[] = {
    {"TransferCompleted", "", 0, "COMPLETED"},
    {"TransferFailed", "INSUFFICIENT_FUNDS", 0, "FAILED"},
    {"TransferFailed", "CREDIT_REJECTED", 1, "FAILED"},
};
#define OUTCOMES_N ((int)(sizeof(outcomes) / sizeof(outcomes[0])))

START_TEST(test_transfer_outcome)
{
    transfer_view_t tr = pending_transfer(), want = tr;
    ledger_effect_t eff =
        project(outcomes[_i].type, 3,
                transfer_payload(outcomes[_i].type, outcomes[_i].reason, outcomes[_i].compensated),
                NULL, &tr);
    snprintf(want.status, sizeof(want.status), "%s", outcomes[_i].status);
    snprintf(want.reason, sizeof(want.reason), "%s", outcomes[_i].reason);
    want.compensated = outcomes[_i].compensated;
    want.updated_at = T_AT + 3;
    assert_transfer_eq(&tr, &want);
    ck_assert_int_eq(eff.transfer_changed, 1);
    ck_assert_int_eq(eff.has_entry, 0);
    ck_assert_int_eq(eff.has_command, 0); /* the request was already accepted */
}
END_TEST

/* A terminal transfer never moves again: late or duplicated events of any kind. */
static const char *const late[] = {"TransferRequested", "TransferCompleted", "TransferFailed"};
#define LATE_N ((int)(sizeof(late) / sizeof(late[0])))

START_TEST(test_terminal_transfer_stays)
{
    int o = _i / LATE_N;
    const char *type = late[_i % LATE_N];
    transfer_view_t tr = pending_transfer();
    ledger_effect_t eff = project(
        outcomes[o].type, 3,
        transfer_payload(outcomes[o].type, outcomes[o].reason, outcomes[o].compensated), NULL, &tr);
    ck_assert_int_eq(eff.transfer_changed, 1);
    transfer_view_t want = tr;
    for (int64_t v = 1; v <= 4; v++) { /* older, same and newer versions alike */
        eff =
            project(type, v, transfer_payload(type, "OTHER", !outcomes[o].compensated), NULL, &tr);
        assert_transfer_eq(&tr, &want);
        ck_assert_msg(!eff.transfer_changed && !eff.has_command && !eff.has_entry,
                      "%s after %s (v%" PRId64 ") had an effect", type, outcomes[o].status, v);
    }
}
END_TEST

START_TEST(test_duplicate_request_while_pending)
{
    transfer_view_t tr = pending_transfer(), want = tr;
    ledger_effect_t eff =
        project("TransferRequested", 1, transfer_payload("TransferRequested", "", 0), NULL, &tr);
    assert_transfer_eq(&tr, &want);
    assert_no_effect(&eff);
}
END_TEST

/* Refused at once: the transfers service emits TransferFailed as the stream's first event. */
START_TEST(test_transfer_refused_at_once)
{
    transfer_view_t tr = new_transfer();
    ledger_effect_t eff = project("TransferFailed", 1,
                                  transfer_payload("TransferFailed", "SAME_ACCOUNT", 0), NULL, &tr);
    ck_assert_int_eq(eff.transfer_changed, 1);
    ck_assert_str_eq(tr.status, "FAILED");
    ck_assert_str_eq(tr.reason, "SAME_ACCOUNT");
    ck_assert_str_eq(tr.from_account, "A");
    ck_assert_str_eq(tr.to_account, "B");
    ck_assert_int_eq(tr.amount, 40);
    ck_assert_int_eq(tr.compensated, 0);
    ck_assert_int_eq(tr.requested_at, T_AT + 1);
    ck_assert_int_eq(tr.updated_at, T_AT + 1);
    ck_assert_int_eq(eff.has_command, 1);
    ck_assert_str_eq(eff.command.command_id, "cmd-1");
    ck_assert_str_eq(eff.command.command_type, "RequestTransfer");
    ck_assert_str_eq(eff.command.aggregate_id, "t-1");
    ck_assert_str_eq(eff.command.status, "REJECTED");
    ck_assert_str_eq(eff.command.reason, "SAME_ACCOUNT");
    ck_assert_str_eq(eff.command.event_type, "TransferFailed");

    /* delivered again: already terminal, no second outcome */
    transfer_view_t want = tr;
    eff = project("TransferFailed", 1, transfer_payload("TransferFailed", "SAME_ACCOUNT", 0), NULL,
                  &tr);
    assert_transfer_eq(&tr, &want);
    assert_no_effect(&eff);
}
END_TEST

/* TransferCommandRejected records REJECTED with the payload's command id; the transfer view
 * (loop 0: unknown, 1: pending, 2: not loaded) is left alone. */
START_TEST(test_transfer_command_rejected)
{
    transfer_view_t tr = _i == 1 ? pending_transfer() : new_transfer(), want = tr;
    ledger_effect_t eff =
        project("TransferCommandRejected", 0,
                transfer_payload("TransferCommandRejected", "DUPLICATE_TRANSFER", 0), NULL,
                _i == 2 ? NULL : &tr);
    assert_transfer_eq(&tr, &want);
    ck_assert_int_eq(eff.transfer_changed, 0);
    ck_assert_int_eq(eff.account_changed, 0);
    ck_assert_int_eq(eff.has_entry, 0);
    ck_assert_int_eq(eff.has_command, 1);
    ck_assert_str_eq(eff.command.command_id, "cmd-rej");
    ck_assert_str_eq(eff.command.command_type, "RequestTransfer");
    ck_assert_str_eq(eff.command.aggregate_id, "t-1");
    ck_assert_str_eq(eff.command.status, "REJECTED");
    ck_assert_str_eq(eff.command.reason, "DUPLICATE_TRANSFER");
    ck_assert_str_eq(eff.command.event_type, "TransferCommandRejected");
}
END_TEST

START_TEST(test_transfer_not_loaded)
{
    ledger_effect_t eff =
        project("TransferRequested", 1, transfer_payload("TransferRequested", "", 0), NULL, NULL);
    assert_no_effect(&eff);
}
END_TEST

/* ---- sequences with duplicates ---- */

#define SEQ_MAX 40
#define SEQ_ROUNDS 300

/* One event of a generated account stream; ev borrows the strings and payload here. */
typedef struct seq_event {
    char type[32];
    char event_id[32];
    char causation_id[32];
    json_t *payload;
    ledger_event_t ev;
} seq_event_t;

/* What applying a stream produced. */
typedef struct seq_result {
    account_view_t acc;
    entry_view_t entries[2 * SEQ_MAX];
    size_t n_entries;
    command_view_t commands[2 * SEQ_MAX];
    size_t n_commands;
} seq_result_t;

/* xorshift64*: a small seeded generator so that a failure names a reproducible seed. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static unsigned rng_below(uint64_t *s, unsigned n)
{
    return (unsigned)(rng_next(s) >> 33) % n;
}

/* A plausible stream of account "A": opened, then money moves and refusals (amounts that would
 * overdraw become refusals, as the accounts service decides), maybe closed at the end. */
static size_t seq_generate(uint64_t *rng, seq_event_t *evs)
{
    size_t n = 2 + rng_below(rng, SEQ_MAX - 2);
    int64_t balance = 0;
    for (size_t i = 0; i < n; i++) {
        seq_event_t *e = &evs[i];
        int64_t amount = 1 + (int64_t)rng_below(rng, 100);
        const char *type;
        if (i == 0) {
            type = "AccountOpened";
        } else if (i == n - 1 && rng_below(rng, 2)) {
            type = "AccountClosed";
        } else {
            static const char *const moves[] = {"FundsDeposited", "FundsWithdrawn",
                                                "FundsDebited",   "FundsCredited",
                                                "DebitReversed",  "CreditRejected"};
            type = moves[rng_below(rng, sizeof(moves) / sizeof(moves[0]))];
        }
        if (!strcmp(type, "FundsDeposited") || !strcmp(type, "FundsCredited") ||
            !strcmp(type, "DebitReversed")) {
            balance += amount;
        } else if (!strcmp(type, "FundsWithdrawn") || !strcmp(type, "FundsDebited")) {
            if (amount > balance) {
                type = !strcmp(type, "FundsDebited") ? "DebitRejected" : "AccountCommandRejected";
            } else {
                balance -= amount;
            }
        }
        snprintf(e->type, sizeof(e->type), "%s", type);
        snprintf(e->event_id, sizeof(e->event_id), "ev-%zu", i + 1);
        snprintf(e->causation_id, sizeof(e->causation_id), "cmd-%zu", i + 1);
        e->payload = account_payload(type, amount, balance);
        ck_assert_ptr_nonnull(e->payload);
        if (!strcmp(type, "AccountCommandRejected")) {
            json_object_set_new(e->payload, "command_id", json_string(e->causation_id));
        }
        e->ev = (ledger_event_t){.type = e->type,
                                 .event_id = e->event_id,
                                 .causation_id = e->causation_id,
                                 .aggregate_id = "A",
                                 .version = (int64_t)i + 1,
                                 .occurred_at = T_AT + (int64_t)i,
                                 .payload = e->payload};
    }
    return n;
}

static void seq_apply(seq_event_t *const *order, size_t n, seq_result_t *r)
{
    memset(r, 0, sizeof(*r));
    r->acc = missing_account();
    for (size_t i = 0; i < n; i++) {
        ledger_effect_t eff;
        ledger_project(&order[i]->ev, &r->acc, NULL, &eff);
        ck_assert_int_eq(eff.transfer_changed, 0);
        if (eff.has_entry) {
            ck_assert_uint_lt(r->n_entries, 2 * SEQ_MAX);
            r->entries[r->n_entries++] = eff.entry;
        }
        if (eff.has_command) {
            ck_assert_uint_lt(r->n_commands, 2 * SEQ_MAX);
            r->commands[r->n_commands++] = eff.command;
        }
    }
}

static const command_view_t *find_command(const seq_result_t *r, const char *command_id)
{
    for (size_t i = 0; i < r->n_commands; i++) {
        if (!strcmp(r->commands[i].command_id, command_id)) {
            return &r->commands[i];
        }
    }
    return NULL;
}

/* Every command outcome of `a` is in `b` with the same content (b may repeat some: the store
 * inserts them ON CONFLICT DO NOTHING). */
static void assert_commands_within(const seq_result_t *a, const seq_result_t *b, uint64_t seed)
{
    for (size_t i = 0; i < a->n_commands; i++) {
        const command_view_t *x = &a->commands[i];
        const command_view_t *y = find_command(b, x->command_id);
        ck_assert_msg(y != NULL, "seed %" PRIu64 ": command %s missing", seed, x->command_id);
        ck_assert_str_eq(x->command_type, y->command_type);
        ck_assert_str_eq(x->aggregate_id, y->aggregate_id);
        ck_assert_str_eq(x->status, y->status);
        ck_assert_str_eq(x->reason, y->reason);
        ck_assert_str_eq(x->event_type, y->event_type);
        ck_assert_int_eq(x->recorded_at, y->recorded_at);
    }
}

START_TEST(test_duplicated_stream_same_result)
{
    for (uint64_t seed = 1; seed <= SEQ_ROUNDS; seed++) {
        uint64_t rng = seed * 0x9e3779b97f4a7c15ULL;
        seq_event_t evs[SEQ_MAX];
        size_t n = seq_generate(&rng, evs);

        seq_event_t *once[SEQ_MAX];
        for (size_t i = 0; i < n; i++) {
            once[i] = &evs[i];
        }
        static seq_result_t want, got;
        seq_apply(once, n, &want);

        /* Insert each event's duplicate at a random position after the original's. */
        seq_event_t *twice[2 * SEQ_MAX];
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            twice[m++] = &evs[i];
        }
        for (size_t i = 0; i < n; i++) {
            size_t orig = 0;
            while (twice[orig] != &evs[i]) {
                orig++;
            }
            size_t at = orig + 1 + rng_below(&rng, (unsigned)(m - orig));
            memmove(&twice[at + 1], &twice[at], (m - at) * sizeof(twice[0]));
            twice[at] = &evs[i];
            m++;
        }
        ck_assert_uint_eq(m, 2 * n);
        seq_apply(twice, m, &got);

        assert_account_eq(&got.acc, &want.acc);
        ck_assert_int_eq(want.acc.version, (int64_t)n);
        ck_assert_msg(got.n_entries == want.n_entries, "seed %" PRIu64 ": %zu entries, want %zu",
                      seed, got.n_entries, want.n_entries);
        for (size_t i = 0; i < want.n_entries; i++) { /* both in seq order */
            const entry_view_t *x = &want.entries[i], *y = &got.entries[i];
            ck_assert_int_eq(x->seq, y->seq);
            ck_assert_str_eq(x->event_id, y->event_id);
            ck_assert_str_eq(x->kind, y->kind);
            ck_assert_int_eq(x->amount, y->amount);
            ck_assert_int_eq(x->balance_after, y->balance_after);
            ck_assert_str_eq(x->transfer_id, y->transfer_id);
            ck_assert_int_eq(x->occurred_at, y->occurred_at);
            if (i > 0) {
                ck_assert_int_lt(want.entries[i - 1].seq, x->seq);
            }
        }
        /* the entries add up to the final balance */
        int64_t sum = 0;
        for (size_t i = 0; i < want.n_entries; i++) {
            sum += want.entries[i].amount;
        }
        ck_assert_int_eq(sum, want.acc.balance);
        assert_commands_within(&want, &got, seed);
        assert_commands_within(&got, &want, seed);

        for (size_t i = 0; i < n; i++) {
            json_decref(evs[i].payload);
        }
    }
}
END_TEST

/* The same for a transfer: requested, then one outcome, every event delivered twice in any
 * later position, ends in the outcome's state with one ACCEPTED outcome. */
START_TEST(test_duplicated_transfer_stream)
{
    static const int orders[][4] = {
        {0, 0, 1, 1},
        {0, 1, 0, 1},
        {0, 1, 1, 0},
    };
    for (int o = 0; o < OUTCOMES_N; o++) {
        for (size_t k = 0; k < sizeof(orders) / sizeof(orders[0]); k++) {
            transfer_view_t tr = new_transfer();
            int accepted = 0;
            for (int j = 0; j < 4; j++) {
                const char *type = orders[k][j] == 0 ? "TransferRequested" : outcomes[o].type;
                ledger_effect_t eff = project(
                    type, orders[k][j] + 1,
                    transfer_payload(type, outcomes[o].reason, outcomes[o].compensated), NULL, &tr);
                accepted += eff.has_command;
            }
            ck_assert_str_eq(tr.status, outcomes[o].status);
            ck_assert_str_eq(tr.reason, outcomes[o].reason);
            ck_assert_int_eq(tr.compensated, outcomes[o].compensated);
            ck_assert_int_eq(tr.requested_at, T_AT + 1);
            ck_assert_int_eq(tr.updated_at, T_AT + 2);
            ck_assert_int_eq(accepted, 1);
        }
    }
}
END_TEST

Suite *projection_domain_suite(void);

Suite *projection_domain_suite(void)
{
    Suite *s = suite_create("projection_domain");

    TCase *tc = tcase_create("targets");
    tcase_add_loop_test(tc, test_event_target, 0, (int)(sizeof(targets) / sizeof(targets[0])));
    tcase_add_test(tc, test_unknown_type_changes_nothing);
    suite_add_tcase(s, tc);

    tc = tcase_create("accounts");
    tcase_add_test(tc, test_account_opened);
    tcase_add_loop_test(tc, test_money_event, 0, (int)(sizeof(money) / sizeof(money[0])));
    tcase_add_test(tc, test_account_closed);
    tcase_add_loop_test(tc, test_saga_rejection_bumps_version, 0,
                        (int)(sizeof(saga_rejections) / sizeof(saga_rejections[0])));
    tcase_add_loop_test(tc, test_account_command_rejected, 0,
                        (int)(sizeof(cmd_rejections) / sizeof(cmd_rejections[0])));
    suite_add_tcase(s, tc);

    tc = tcase_create("idempotency");
    tcase_add_loop_test(tc, test_replay_changes_nothing, 0, 2 * ACCOUNT_TYPES_N);
    tcase_add_loop_test(tc, test_missing_account_changes_nothing, 0, ACCOUNT_TYPES_N);
    tcase_add_loop_test(tc, test_version_zero_on_existing_account, 0, ACCOUNT_TYPES_N);
    tcase_add_loop_test(tc, test_account_not_loaded, 0, ACCOUNT_TYPES_N);
    tcase_add_loop_test(tc, test_unopened_account_changes_nothing, 0, ACCOUNT_TYPES_N - 1);
    suite_add_tcase(s, tc);

    tc = tcase_create("transfers");
    tcase_add_test(tc, test_transfer_requested);
    tcase_add_test(tc, test_transfer_requested_null_currency);
    tcase_add_loop_test(tc, test_transfer_outcome, 0, OUTCOMES_N);
    tcase_add_loop_test(tc, test_terminal_transfer_stays, 0, OUTCOMES_N * LATE_N);
    tcase_add_test(tc, test_duplicate_request_while_pending);
    tcase_add_test(tc, test_transfer_refused_at_once);
    tcase_add_loop_test(tc, test_transfer_command_rejected, 0, 3);
    tcase_add_test(tc, test_transfer_not_loaded);
    suite_add_tcase(s, tc);

    tc = tcase_create("sequences");
    tcase_add_test(tc, test_duplicated_stream_same_result);
    tcase_add_test(tc, test_duplicated_transfer_stream);
    suite_add_tcase(s, tc);
    return s;
}
