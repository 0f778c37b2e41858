/*
 * test_accounts_domain.c: the accounts context's pure rules (consumers/accounts/domain.c):
 * every command's success and every rejection reason, the saga steps (debit, credit, refund)
 * with each of their rejection reasons, a timed-out transfer's fenced debit (refused with
 * TIMEOUT, moving no money) and its debited transfer still finishing, how evolve moves balance,
 * status and version, the wire names, and a seeded random run of 10,000 inputs over 5 accounts that
 * checks money is never negative and always conserved.
 */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "../../consumers/accounts/domain.h"

/* ---- helpers ---- */

static accounts_input_t input(accounts_input_kind_t kind, const char *account_id, int64_t amount)
{
    accounts_input_t in;
    memset(&in, 0, sizeof(in));
    in.kind = kind;
    snprintf(in.command_id, sizeof(in.command_id), "cmd-%d", (int)kind);
    snprintf(in.account_id, sizeof(in.account_id), "%s", account_id);
    in.amount = amount;
    return in;
}

/* A saga input: TransferRequested / FundsDebited / CreditRejected of transfer "t-1". */
static accounts_input_t saga(accounts_input_kind_t kind, const char *from, const char *to,
                             int64_t amount, const char *currency)
{
    accounts_input_t in;
    memset(&in, 0, sizeof(in));
    in.kind = kind;
    snprintf(in.transfer_id, sizeof(in.transfer_id), "t-1");
    snprintf(in.from_account, sizeof(in.from_account), "%s", from);
    snprintf(in.to_account, sizeof(in.to_account), "%s", to);
    snprintf(in.currency, sizeof(in.currency), "%s", currency);
    in.amount = amount;
    return in;
}

/* Decide then evolve, as the service does; returns the event. */
static accounts_event_t apply(account_t *st, const accounts_input_t *in)
{
    accounts_event_t ev;
    accounts_decide(st, in, &ev);
    accounts_evolve(st, &ev);
    return ev;
}

typedef enum { ST_MISSING, ST_OPEN, ST_CLOSED } setup_t;

/* An account "A" (USD, owner "ann") in the given condition, built through the rules. */
static account_t make_account(setup_t setup, int64_t balance)
{
    account_t st;
    memset(&st, 0, sizeof(st));
    if (setup == ST_MISSING) {
        return st;
    }
    accounts_input_t in = input(ACC_IN_OPEN_ACCOUNT, "A", 0);
    snprintf(in.owner, sizeof(in.owner), "ann");
    snprintf(in.currency, sizeof(in.currency), "USD");
    accounts_event_t ev = apply(&st, &in);
    ck_assert_int_eq(ev.kind, ACC_EV_ACCOUNT_OPENED);
    if (balance > 0) {
        in = input(ACC_IN_DEPOSIT_FUNDS, "A", balance);
        ev = apply(&st, &in);
        ck_assert_int_eq(ev.kind, ACC_EV_FUNDS_DEPOSITED);
    }
    if (setup == ST_CLOSED) {
        in = input(ACC_IN_CLOSE_ACCOUNT, "A", 0);
        ev = apply(&st, &in);
        ck_assert_int_eq(ev.kind, ACC_EV_ACCOUNT_CLOSED);
    }
    ck_assert_int_eq(st.balance, balance);
    return st;
}

/* ---- command rejections ---- */

static const struct {
    const char *name;
    setup_t setup;
    int64_t balance;
    accounts_input_kind_t kind;
    const char *account_id;
    const char *owner;
    const char *currency;
    int64_t amount;
    const char *reason;
} rejections[] = {
    {"open existing", ST_OPEN, 0, ACC_IN_OPEN_ACCOUNT, "A", "bob", "USD", 0, "ACCOUNT_EXISTS"},
    {"open existing with funds", ST_OPEN, 7, ACC_IN_OPEN_ACCOUNT, "A", "bob", "EUR", 0,
     "ACCOUNT_EXISTS"},
    {"open closed", ST_CLOSED, 0, ACC_IN_OPEN_ACCOUNT, "A", "bob", "USD", 0, "ACCOUNT_EXISTS"},
    {"open empty id", ST_MISSING, 0, ACC_IN_OPEN_ACCOUNT, "", "bob", "USD", 0, "INVALID_ID"},
    {"open id with space", ST_MISSING, 0, ACC_IN_OPEN_ACCOUNT, "a b", "bob", "USD", 0,
     "INVALID_ID"},
    {"open id with slash", ST_MISSING, 0, ACC_IN_OPEN_ACCOUNT, "a/b", "bob", "USD", 0,
     "INVALID_ID"},
    {"open id non-ascii", ST_MISSING, 0, ACC_IN_OPEN_ACCOUNT, "caf\xc3\xa9", "bob", "USD", 0,
     "INVALID_ID"},
    {"open lower-case currency", ST_MISSING, 0, ACC_IN_OPEN_ACCOUNT, "A", "bob", "usd", 0,
     "INVALID_CURRENCY"},
    {"open short currency", ST_MISSING, 0, ACC_IN_OPEN_ACCOUNT, "A", "bob", "US", 0,
     "INVALID_CURRENCY"},
    {"open long currency", ST_MISSING, 0, ACC_IN_OPEN_ACCOUNT, "A", "bob", "USDD", 0,
     "INVALID_CURRENCY"},
    {"open empty currency", ST_MISSING, 0, ACC_IN_OPEN_ACCOUNT, "A", "bob", "", 0,
     "INVALID_CURRENCY"},
    {"open currency with digit", ST_MISSING, 0, ACC_IN_OPEN_ACCOUNT, "A", "bob", "U5D", 0,
     "INVALID_CURRENCY"},
    {"open empty owner", ST_MISSING, 0, ACC_IN_OPEN_ACCOUNT, "A", "", "USD", 0, "INVALID_OWNER"},
    {"deposit missing", ST_MISSING, 0, ACC_IN_DEPOSIT_FUNDS, "A", "", "", 5, "ACCOUNT_NOT_FOUND"},
    {"deposit closed", ST_CLOSED, 0, ACC_IN_DEPOSIT_FUNDS, "A", "", "", 5, "ACCOUNT_CLOSED"},
    {"deposit zero", ST_OPEN, 10, ACC_IN_DEPOSIT_FUNDS, "A", "", "", 0, "INVALID_AMOUNT"},
    {"deposit negative", ST_OPEN, 10, ACC_IN_DEPOSIT_FUNDS, "A", "", "", -5, "INVALID_AMOUNT"},
    {"deposit INT64_MIN", ST_OPEN, 10, ACC_IN_DEPOSIT_FUNDS, "A", "", "", INT64_MIN,
     "INVALID_AMOUNT"},
    {"deposit overflow by one", ST_OPEN, INT64_MAX - 10, ACC_IN_DEPOSIT_FUNDS, "A", "", "", 11,
     "AMOUNT_TOO_LARGE"},
    {"deposit INT64_MAX on funds", ST_OPEN, 1, ACC_IN_DEPOSIT_FUNDS, "A", "", "", INT64_MAX,
     "AMOUNT_TOO_LARGE"},
    {"withdraw missing", ST_MISSING, 0, ACC_IN_WITHDRAW_FUNDS, "A", "", "", 5, "ACCOUNT_NOT_FOUND"},
    {"withdraw closed", ST_CLOSED, 0, ACC_IN_WITHDRAW_FUNDS, "A", "", "", 5, "ACCOUNT_CLOSED"},
    {"withdraw zero", ST_OPEN, 10, ACC_IN_WITHDRAW_FUNDS, "A", "", "", 0, "INVALID_AMOUNT"},
    {"withdraw negative", ST_OPEN, 10, ACC_IN_WITHDRAW_FUNDS, "A", "", "", -1, "INVALID_AMOUNT"},
    {"withdraw more than balance", ST_OPEN, 100, ACC_IN_WITHDRAW_FUNDS, "A", "", "", 101,
     "INSUFFICIENT_FUNDS"},
    {"withdraw from empty", ST_OPEN, 0, ACC_IN_WITHDRAW_FUNDS, "A", "", "", 1,
     "INSUFFICIENT_FUNDS"},
    {"close missing", ST_MISSING, 0, ACC_IN_CLOSE_ACCOUNT, "A", "", "", 0, "ACCOUNT_NOT_FOUND"},
    {"close closed", ST_CLOSED, 0, ACC_IN_CLOSE_ACCOUNT, "A", "", "", 0, "ACCOUNT_CLOSED"},
    {"close with funds", ST_OPEN, 1, ACC_IN_CLOSE_ACCOUNT, "A", "", "", 0, "BALANCE_NOT_ZERO"},
};
#define REJECTIONS_N ((int)(sizeof(rejections) / sizeof(rejections[0])))

START_TEST(test_command_rejected)
{
    const char *name = rejections[_i].name;
    account_t st = make_account(rejections[_i].setup, rejections[_i].balance);
    account_t before = st;
    accounts_input_t in =
        input(rejections[_i].kind, rejections[_i].account_id, rejections[_i].amount);
    snprintf(in.owner, sizeof(in.owner), "%s", rejections[_i].owner);
    snprintf(in.currency, sizeof(in.currency), "%s", rejections[_i].currency);

    accounts_event_t ev;
    accounts_decide(&st, &in, &ev);
    ck_assert_msg(ev.kind == ACC_EV_COMMAND_REJECTED, "%s: kind %s", name,
                  accounts_event_type(ev.kind));
    ck_assert_msg(!strcmp(ev.reason, rejections[_i].reason), "%s: reason %s, expected %s", name,
                  ev.reason, rejections[_i].reason);
    ck_assert_str_eq(ev.command_id, in.command_id);
    ck_assert_ptr_nonnull(ev.command_type);
    ck_assert_str_eq(ev.command_type, accounts_input_type(in.kind));
    ck_assert_str_eq(ev.account_id, rejections[_i].account_id);
    ck_assert_int_eq(ev.balance, before.balance);

    accounts_evolve(&st, &ev);
    ck_assert_int_eq(st.status, before.status);
    ck_assert_int_eq(st.balance, before.balance);
    ck_assert_str_eq(st.id, before.id);
    ck_assert_str_eq(st.owner, before.owner);
    ck_assert_str_eq(st.currency, before.currency);
    if (rejections[_i].setup == ST_MISSING) {
        /* a rejection of a missing account leaves it missing, at version 0 */
        ck_assert_int_eq(st.status, ACCOUNT_NONE);
        ck_assert_int_eq(st.version, 0);
    } else {
        ck_assert_msg(st.version == before.version + 1, "%s: version %" PRId64 " after %" PRId64,
                      name, st.version, before.version);
    }
}
END_TEST

/* ---- command successes ---- */

START_TEST(test_open_account)
{
    account_t st;
    memset(&st, 0, sizeof(st));
    accounts_input_t in = input(ACC_IN_OPEN_ACCOUNT, "acc-1.x_y:Z", 0);
    snprintf(in.owner, sizeof(in.owner), "ann");
    snprintf(in.currency, sizeof(in.currency), "EUR");
    accounts_event_t ev;
    accounts_decide(&st, &in, &ev);
    ck_assert_int_eq(ev.kind, ACC_EV_ACCOUNT_OPENED);
    ck_assert_str_eq(ev.account_id, "acc-1.x_y:Z");
    ck_assert_str_eq(ev.owner, "ann");
    ck_assert_str_eq(ev.currency, "EUR");
    ck_assert_int_eq(ev.balance, 0);
    ck_assert_str_eq(ev.command_id, in.command_id);
    ck_assert_str_eq(ev.command_type, "OpenAccount");
    ck_assert_str_eq(ev.reason, "");

    accounts_evolve(&st, &ev);
    ck_assert_int_eq(st.status, ACCOUNT_OPEN);
    ck_assert_str_eq(st.id, "acc-1.x_y:Z");
    ck_assert_str_eq(st.owner, "ann");
    ck_assert_str_eq(st.currency, "EUR");
    ck_assert_int_eq(st.balance, 0);
    ck_assert_int_eq(st.version, 1);
}
END_TEST

START_TEST(test_deposit_withdraw_close)
{
    account_t st = make_account(ST_OPEN, 0);
    ck_assert_int_eq(st.version, 1);

    accounts_input_t in = input(ACC_IN_DEPOSIT_FUNDS, "A", 250);
    accounts_event_t ev = apply(&st, &in);
    ck_assert_int_eq(ev.kind, ACC_EV_FUNDS_DEPOSITED);
    ck_assert_int_eq(ev.amount, 250);
    ck_assert_int_eq(ev.balance, 250);
    ck_assert_str_eq(ev.command_type, "DepositFunds");
    ck_assert_int_eq(st.balance, 250);
    ck_assert_int_eq(st.version, 2);

    in = input(ACC_IN_WITHDRAW_FUNDS, "A", 100);
    ev = apply(&st, &in);
    ck_assert_int_eq(ev.kind, ACC_EV_FUNDS_WITHDRAWN);
    ck_assert_int_eq(ev.amount, 100);
    ck_assert_int_eq(ev.balance, 150);
    ck_assert_int_eq(st.balance, 150);
    ck_assert_int_eq(st.version, 3);

    /* withdrawing everything is allowed and leaves exactly zero */
    in = input(ACC_IN_WITHDRAW_FUNDS, "A", 150);
    ev = apply(&st, &in);
    ck_assert_int_eq(ev.kind, ACC_EV_FUNDS_WITHDRAWN);
    ck_assert_int_eq(st.balance, 0);
    ck_assert_int_eq(st.version, 4);

    in = input(ACC_IN_CLOSE_ACCOUNT, "A", 0);
    ev = apply(&st, &in);
    ck_assert_int_eq(ev.kind, ACC_EV_ACCOUNT_CLOSED);
    ck_assert_str_eq(ev.command_type, "CloseAccount");
    ck_assert_int_eq(st.status, ACCOUNT_CLOSED);
    ck_assert_int_eq(st.version, 5);
}
END_TEST

START_TEST(test_deposit_up_to_int64_max)
{
    account_t st = make_account(ST_OPEN, 0);
    accounts_input_t in = input(ACC_IN_DEPOSIT_FUNDS, "A", INT64_MAX);
    accounts_event_t ev = apply(&st, &in);
    ck_assert_int_eq(ev.kind, ACC_EV_FUNDS_DEPOSITED);
    ck_assert_int_eq(st.balance, INT64_MAX);

    st = make_account(ST_OPEN, INT64_MAX - 10);
    in = input(ACC_IN_DEPOSIT_FUNDS, "A", 10);
    ev = apply(&st, &in);
    ck_assert_int_eq(ev.kind, ACC_EV_FUNDS_DEPOSITED);
    ck_assert_int_eq(st.balance, INT64_MAX);
}
END_TEST

/* ---- saga steps ---- */

static const struct {
    const char *name;
    setup_t setup;
    int64_t balance;
    accounts_input_kind_t kind;
    int64_t amount;
    const char *currency; /* of the input */
    accounts_event_kind_t expect;
    const char *reason; /* NULL: not checked */
    int64_t balance_after;
} saga_cases[] = {
    /* TransferRequested: debit the source A */
    {"debit ok", ST_OPEN, 100, ACC_IN_TRANSFER_REQUESTED, 40, "USD", ACC_EV_FUNDS_DEBITED, "", 60},
    {"debit ok any currency", ST_OPEN, 100, ACC_IN_TRANSFER_REQUESTED, 40, "", ACC_EV_FUNDS_DEBITED,
     "", 60},
    {"debit everything", ST_OPEN, 100, ACC_IN_TRANSFER_REQUESTED, 100, "USD", ACC_EV_FUNDS_DEBITED,
     "", 0},
    {"debit missing", ST_MISSING, 0, ACC_IN_TRANSFER_REQUESTED, 40, "USD", ACC_EV_DEBIT_REJECTED,
     "ACCOUNT_NOT_FOUND", 0},
    {"debit closed", ST_CLOSED, 0, ACC_IN_TRANSFER_REQUESTED, 40, "USD", ACC_EV_DEBIT_REJECTED,
     "ACCOUNT_CLOSED", 0},
    {"debit currency mismatch", ST_OPEN, 100, ACC_IN_TRANSFER_REQUESTED, 40, "EUR",
     ACC_EV_DEBIT_REJECTED, "CURRENCY_MISMATCH", 100},
    {"debit insufficient", ST_OPEN, 100, ACC_IN_TRANSFER_REQUESTED, 101, "USD",
     ACC_EV_DEBIT_REJECTED, "INSUFFICIENT_FUNDS", 100},
    {"debit zero", ST_OPEN, 100, ACC_IN_TRANSFER_REQUESTED, 0, "USD", ACC_EV_DEBIT_REJECTED, NULL,
     100},
    {"debit negative", ST_OPEN, 100, ACC_IN_TRANSFER_REQUESTED, -40, "USD", ACC_EV_DEBIT_REJECTED,
     NULL, 100},
    /* FundsDebited: credit the destination A */
    {"credit ok", ST_OPEN, 5, ACC_IN_FUNDS_DEBITED, 40, "USD", ACC_EV_FUNDS_CREDITED, "", 45},
    {"credit missing", ST_MISSING, 0, ACC_IN_FUNDS_DEBITED, 40, "USD", ACC_EV_CREDIT_REJECTED,
     "ACCOUNT_NOT_FOUND", 0},
    {"credit closed", ST_CLOSED, 0, ACC_IN_FUNDS_DEBITED, 40, "USD", ACC_EV_CREDIT_REJECTED,
     "ACCOUNT_CLOSED", 0},
    {"credit currency mismatch", ST_OPEN, 5, ACC_IN_FUNDS_DEBITED, 40, "EUR",
     ACC_EV_CREDIT_REJECTED, "CURRENCY_MISMATCH", 5},
    {"credit overflow", ST_OPEN, INT64_MAX - 5, ACC_IN_FUNDS_DEBITED, 6, "USD",
     ACC_EV_CREDIT_REJECTED, "AMOUNT_TOO_LARGE", INT64_MAX - 5},
    {"credit up to max", ST_OPEN, INT64_MAX - 5, ACC_IN_FUNDS_DEBITED, 5, "USD",
     ACC_EV_FUNDS_CREDITED, "", INT64_MAX},
    /* CreditRejected: refund the source A, whatever happened to it since */
    {"refund open", ST_OPEN, 60, ACC_IN_CREDIT_REJECTED, 40, "USD", ACC_EV_DEBIT_REVERSED, NULL,
     100},
    {"refund emptied account", ST_OPEN, 0, ACC_IN_CREDIT_REJECTED, 40, "USD", ACC_EV_DEBIT_REVERSED,
     NULL, 40},
    {"refund closed account", ST_CLOSED, 0, ACC_IN_CREDIT_REJECTED, 40, "USD",
     ACC_EV_DEBIT_REVERSED, NULL, 40},
};
#define SAGA_N ((int)(sizeof(saga_cases) / sizeof(saga_cases[0])))

START_TEST(test_saga_step)
{
    const char *name = saga_cases[_i].name;
    account_t st = make_account(saga_cases[_i].setup, saga_cases[_i].balance);
    account_t before = st;
    accounts_input_kind_t kind = saga_cases[_i].kind;
    /* A is always the account concerned: source of a debit or refund, destination of a credit */
    accounts_input_t in =
        kind == ACC_IN_FUNDS_DEBITED
            ? saga(kind, "B", "A", saga_cases[_i].amount, saga_cases[_i].currency)
            : saga(kind, "A", "B", saga_cases[_i].amount, saga_cases[_i].currency);
    if (kind == ACC_IN_CREDIT_REJECTED) {
        snprintf(in.reason, sizeof(in.reason), "ACCOUNT_CLOSED");
    }
    ck_assert_str_eq(accounts_input_account(&in), "A");

    accounts_event_t ev;
    accounts_decide(&st, &in, &ev);
    ck_assert_msg(ev.kind == saga_cases[_i].expect, "%s: kind %s, expected %s", name,
                  accounts_event_type(ev.kind), accounts_event_type(saga_cases[_i].expect));
    if (saga_cases[_i].reason) {
        ck_assert_msg(!strcmp(ev.reason, saga_cases[_i].reason), "%s: reason %s, expected %s", name,
                      ev.reason, saga_cases[_i].reason);
    } else {
        ck_assert_msg(ev.reason[0] != '\0' || ev.kind != ACC_EV_DEBIT_REJECTED,
                      "%s: a rejection without a reason", name);
    }
    if (kind == ACC_IN_CREDIT_REJECTED) {
        ck_assert_str_eq(ev.reason, "ACCOUNT_CLOSED"); /* the refund says why */
    }
    ck_assert_str_eq(ev.account_id, "A");
    ck_assert_str_eq(ev.transfer_id, "t-1");
    if (kind != ACC_IN_CREDIT_REJECTED) {
        ck_assert_str_eq(ev.other_account, "B"); /* DebitReversed carries no other account */
    }
    ck_assert_int_eq(ev.amount, saga_cases[_i].amount);
    ck_assert_msg(ev.balance == saga_cases[_i].balance_after,
                  "%s: event balance %" PRId64 ", expected %" PRId64, name, ev.balance,
                  saga_cases[_i].balance_after);
    if (kind == ACC_IN_TRANSFER_REQUESTED && saga_cases[_i].setup != ST_MISSING) {
        ck_assert_str_eq(ev.currency, "USD"); /* the source's currency travels with the debit */
    }

    accounts_evolve(&st, &ev);
    ck_assert_int_eq(st.status, before.status);
    if (saga_cases[_i].setup == ST_MISSING) {
        ck_assert_int_eq(st.version, 0);
        ck_assert_int_eq(st.balance, 0);
    } else {
        ck_assert_int_eq(st.version, before.version + 1);
        ck_assert_int_eq(st.balance, saga_cases[_i].balance_after);
    }
}
END_TEST

/* Every reason a credit can be rejected for is refunded in full to the source. */
static const char *const credit_reasons[] = {"ACCOUNT_NOT_FOUND", "ACCOUNT_CLOSED",
                                             "CURRENCY_MISMATCH", "AMOUNT_TOO_LARGE"};

START_TEST(test_debit_reversed_always_refunds)
{
    account_t src = make_account(ST_OPEN, 100);
    account_t dst;
    memset(&dst, 0, sizeof(dst));
    /* make the destination reject for the reason under test */
    int64_t amount = 30;
    const char *currency = "USD";
    if (!strcmp(credit_reasons[_i], "ACCOUNT_CLOSED")) {
        dst = make_account(ST_CLOSED, 0);
    } else if (!strcmp(credit_reasons[_i], "CURRENCY_MISMATCH")) {
        dst = make_account(ST_OPEN, 0);
        snprintf(dst.currency, sizeof(dst.currency), "EUR");
    } else if (!strcmp(credit_reasons[_i], "AMOUNT_TOO_LARGE")) {
        dst = make_account(ST_OPEN, INT64_MAX - 29);
    }

    accounts_input_t in = saga(ACC_IN_TRANSFER_REQUESTED, "A", "B", amount, currency);
    accounts_event_t debit = apply(&src, &in);
    ck_assert_int_eq(debit.kind, ACC_EV_FUNDS_DEBITED);
    ck_assert_int_eq(src.balance, 70);

    in = saga(ACC_IN_FUNDS_DEBITED, "A", "B", debit.amount, debit.currency);
    accounts_event_t credit = apply(&dst, &in);
    ck_assert_int_eq(credit.kind, ACC_EV_CREDIT_REJECTED);
    ck_assert_str_eq(credit.reason, credit_reasons[_i]);
    ck_assert_str_eq(credit.other_account, "A");

    in = saga(ACC_IN_CREDIT_REJECTED, "A", "B", credit.amount, "");
    snprintf(in.reason, sizeof(in.reason), "%s", credit.reason);
    accounts_event_t refund = apply(&src, &in);
    ck_assert_int_eq(refund.kind, ACC_EV_DEBIT_REVERSED);
    ck_assert_str_eq(refund.reason, credit_reasons[_i]);
    ck_assert_int_eq(refund.amount, 30);
    ck_assert_int_eq(src.balance, 100);
    ck_assert_int_eq(src.version, 4); /* opened, deposited, debited, reversed */
}
END_TEST

/* A refund reaches an account that was emptied and closed while the transfer was in flight. */
START_TEST(test_refund_after_close)
{
    account_t src = make_account(ST_OPEN, 30);
    accounts_input_t in = saga(ACC_IN_TRANSFER_REQUESTED, "A", "B", 30, "");
    apply(&src, &in);
    in = input(ACC_IN_CLOSE_ACCOUNT, "A", 0);
    accounts_event_t ev = apply(&src, &in);
    ck_assert_int_eq(ev.kind, ACC_EV_ACCOUNT_CLOSED);
    in = saga(ACC_IN_CREDIT_REJECTED, "A", "B", 30, "");
    snprintf(in.reason, sizeof(in.reason), "ACCOUNT_NOT_FOUND");
    ev = apply(&src, &in);
    ck_assert_int_eq(ev.kind, ACC_EV_DEBIT_REVERSED);
    ck_assert_int_eq(src.balance, 30);
    ck_assert_int_eq(src.status, ACCOUNT_CLOSED);
}
END_TEST

/* ---- a timed-out transfer saga (docs/SAGAS.md) ---- */

/* A TransferRequested that meets the transfer's fence (in.timed_out, set by the wiring) is
 * refused with TIMEOUT whatever the source's state, and moves no money; the same input
 * without the fence gets the rule it would have had. */
static const struct {
    const char *name;
    setup_t setup;
    int64_t balance;
    int64_t amount;
    const char *currency;
    accounts_event_kind_t unfenced; /* what the same input gets without the fence */
    int64_t balance_unfenced;
} fenced_debits[] = {
    {"open with enough funds", ST_OPEN, 100, 40, "USD", ACC_EV_FUNDS_DEBITED, 60},
    {"open, any currency", ST_OPEN, 100, 40, "", ACC_EV_FUNDS_DEBITED, 60},
    {"open, the whole balance", ST_OPEN, 100, 100, "USD", ACC_EV_FUNDS_DEBITED, 0},
    {"open, insufficient", ST_OPEN, 100, 101, "USD", ACC_EV_DEBIT_REJECTED, 100},
    {"open, currency mismatch", ST_OPEN, 100, 40, "EUR", ACC_EV_DEBIT_REJECTED, 100},
    {"missing source", ST_MISSING, 0, 40, "USD", ACC_EV_DEBIT_REJECTED, 0},
    {"closed source", ST_CLOSED, 0, 40, "USD", ACC_EV_DEBIT_REJECTED, 0},
};
#define FENCED_DEBITS_N ((int)(sizeof(fenced_debits) / sizeof(fenced_debits[0])))

START_TEST(test_debit_timed_out)
{
    const char *name = fenced_debits[_i].name;
    account_t st = make_account(fenced_debits[_i].setup, fenced_debits[_i].balance);
    account_t before = st;
    accounts_input_t in = saga(ACC_IN_TRANSFER_REQUESTED, "A", "B", fenced_debits[_i].amount,
                               fenced_debits[_i].currency);
    in.timed_out = 1;
    ck_assert_ptr_null(accounts_input_invalid(&st, &in)); /* decided, not dead-lettered */

    accounts_event_t ev;
    accounts_decide(&st, &in, &ev);
    ck_assert_msg(ev.kind == ACC_EV_DEBIT_REJECTED, "%s: kind %s", name,
                  accounts_event_type(ev.kind));
    ck_assert_msg(!strcmp(ev.reason, "TIMEOUT"), "%s: reason %s", name, ev.reason);
    ck_assert_str_eq(ev.account_id, "A");
    ck_assert_str_eq(ev.transfer_id, "t-1");
    ck_assert_str_eq(ev.other_account, "B");
    ck_assert_int_eq(ev.amount, fenced_debits[_i].amount);
    ck_assert_int_eq(ev.balance, before.balance);

    accounts_evolve(&st, &ev);
    ck_assert_int_eq(st.status, before.status);
    ck_assert_int_eq(st.balance, before.balance);
    ck_assert_str_eq(st.currency, before.currency);
    ck_assert_int_eq(st.version, fenced_debits[_i].setup == ST_MISSING ? 0 : before.version + 1);

    /* the same input without the fence */
    st = before;
    in.timed_out = 0;
    accounts_decide(&st, &in, &ev);
    ck_assert_msg(ev.kind == fenced_debits[_i].unfenced, "%s unfenced: kind %s", name,
                  accounts_event_type(ev.kind));
    ck_assert_str_ne(ev.reason, "TIMEOUT");
    accounts_evolve(&st, &ev);
    ck_assert_int_eq(st.balance, fenced_debits[_i].balance_unfenced);
}
END_TEST

/* Once the source was debited the money is moving: the credit, or its reversal, finishes the
 * transfer even if the saga timed out in between (the fence flag changes nothing there). */
START_TEST(test_timeout_after_debit_finishes)
{
    account_t src = make_account(ST_OPEN, 100);
    account_t dst = make_account(ST_OPEN, 5);
    accounts_input_t in = saga(ACC_IN_TRANSFER_REQUESTED, "A", "B", 30, "USD");
    accounts_event_t debit = apply(&src, &in);
    ck_assert_int_eq(debit.kind, ACC_EV_FUNDS_DEBITED);
    ck_assert_int_eq(src.balance, 70);

    in = saga(ACC_IN_FUNDS_DEBITED, "A", "B", debit.amount, debit.currency);
    in.timed_out = 1;
    accounts_event_t credit = apply(&dst, &in);
    ck_assert_int_eq(credit.kind, ACC_EV_FUNDS_CREDITED);
    ck_assert_int_eq(dst.balance, 35);

    /* the other ending: the credit was refused, the refund still comes back in full */
    in = saga(ACC_IN_CREDIT_REJECTED, "A", "B", 30, "");
    snprintf(in.reason, sizeof(in.reason), "ACCOUNT_CLOSED");
    in.timed_out = 1;
    accounts_event_t refund = apply(&src, &in);
    ck_assert_int_eq(refund.kind, ACC_EV_DEBIT_REVERSED);
    ck_assert_str_eq(refund.reason, "ACCOUNT_CLOSED");
    ck_assert_int_eq(src.balance, 100);
}
END_TEST

/* ---- names and ids ---- */

START_TEST(test_names)
{
    static const char *const inputs[] = {"OpenAccount",    "DepositFunds",      "WithdrawFunds",
                                         "CloseAccount",   "TransferRequested", "FundsDebited",
                                         "CreditRejected", "SagaTimedOut"};
    ck_assert_int_eq((int)(sizeof(inputs) / sizeof(inputs[0])), ACC_IN__COUNT);
    for (int k = 0; k < ACC_IN__COUNT; k++) {
        const char *type = accounts_input_type((accounts_input_kind_t)k);
        ck_assert_str_eq(type, inputs[k]);
        ck_assert_int_eq(accounts_input_kind(type), k);
    }
    ck_assert_int_eq(accounts_input_kind("SagaTimedOut"), ACC_IN_SAGA_TIMED_OUT);
    ck_assert_str_eq(accounts_input_type(ACC_IN_SAGA_TIMED_OUT), "SagaTimedOut");
    ck_assert_int_eq(accounts_input_kind("NoSuchCommand"), -1);
    ck_assert_int_eq(accounts_input_kind(""), -1);
    ck_assert_int_eq(accounts_input_kind("openaccount"), -1);
    ck_assert_str_eq(accounts_input_type(ACC_IN__COUNT), "?");
    for (int k = 0; k < ACC_EV__COUNT; k++) {
        ck_assert_str_ne(accounts_event_type((accounts_event_kind_t)k), "?");
    }
    ck_assert_str_eq(accounts_event_type(ACC_EV_DEBIT_REVERSED), "DebitReversed");
    ck_assert_str_eq(accounts_event_type(ACC_EV_COMMAND_REJECTED), "AccountCommandRejected");
    ck_assert_str_eq(accounts_event_type(ACC_EV__COUNT), "?");
}
END_TEST

START_TEST(test_input_account)
{
    accounts_input_t in = saga(ACC_IN_TRANSFER_REQUESTED, "src", "dst", 1, "");
    snprintf(in.account_id, sizeof(in.account_id), "other");
    ck_assert_str_eq(accounts_input_account(&in), "src");
    in.kind = ACC_IN_FUNDS_DEBITED;
    ck_assert_str_eq(accounts_input_account(&in), "dst");
    in.kind = ACC_IN_CREDIT_REJECTED;
    ck_assert_str_eq(accounts_input_account(&in), "src");
    for (int k = ACC_IN_OPEN_ACCOUNT; k <= ACC_IN_CLOSE_ACCOUNT; k++) {
        in.kind = (accounts_input_kind_t)k;
        ck_assert_str_eq(accounts_input_account(&in), "other");
    }
}
END_TEST

START_TEST(test_id_valid)
{
    char long_id[200];
    memset(long_id, 'a', sizeof(long_id));
    long_id[127] = '\0';
    ck_assert_int_eq(accounts_id_valid(long_id), 1); /* 127 characters: the maximum */
    long_id[127] = 'a';
    long_id[128] = '\0';
    ck_assert_int_eq(accounts_id_valid(long_id), 0);
    ck_assert_int_eq(accounts_id_valid("a"), 1);
    ck_assert_int_eq(accounts_id_valid("A-z_0.9:x"), 1);
    ck_assert_int_eq(accounts_id_valid(""), 0);
    ck_assert_int_eq(accounts_id_valid("a b"), 0);
    ck_assert_int_eq(accounts_id_valid("a\tb"), 0);
    ck_assert_int_eq(accounts_id_valid("a'b"), 0);
    ck_assert_int_eq(accounts_id_valid("a\"b"), 0);
    ck_assert_int_eq(accounts_id_valid("a/b"), 0);
}
END_TEST

/* ---- property: money is never negative and is conserved ---- */

#define P_ACCOUNTS 5
#define P_STEPS 10000
#define P_INFLIGHT 64

static uint64_t rng_state;

static uint64_t rng(void)
{
    /* xorshift64*: fixed seed, so a failure replays */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * UINT64_C(2685821657736338717);
}

static int64_t rng_amount(void)
{
    uint64_t r = rng() % 100;
    if (r < 3) {
        return 0;
    }
    if (r < 6) {
        return -(int64_t)(rng() % 50) - 1;
    }
    return (int64_t)(rng() % 500) + 1;
}

/* A saga step waiting to be delivered: the next input and the transfer it belongs to. */
typedef struct inflight {
    accounts_input_t in;
} inflight_t;

typedef struct world {
    account_t acc[P_ACCOUNTS];
    inflight_t q[P_INFLIGHT];
    int qn;
    int64_t deposits, withdrawals;
    int64_t in_flight; /* debited and not yet credited nor refunded */
    long debits, credits, refunds, closes;
} world_t;

static int account_index(const char *id)
{
    if (id[0] == 'p' && id[1] >= '0' && id[1] < '0' + P_ACCOUNTS && id[2] == '\0') {
        return id[1] - '0';
    }
    return -1;
}

static void check_world(const world_t *w, int step)
{
    int64_t sum = 0;
    for (int i = 0; i < P_ACCOUNTS; i++) {
        ck_assert_msg(w->acc[i].balance >= 0, "step %d: account p%d balance %" PRId64, step, i,
                      w->acc[i].balance);
        if (w->acc[i].status == ACCOUNT_NONE) {
            ck_assert_msg(w->acc[i].version == 0 && w->acc[i].balance == 0,
                          "step %d: missing account p%d has version %" PRId64, step, i,
                          w->acc[i].version);
        }
        sum += w->acc[i].balance;
    }
    ck_assert_msg(sum == w->deposits - w->withdrawals - w->in_flight,
                  "step %d: sum %" PRId64 " != deposits %" PRId64 " - withdrawals %" PRId64
                  " - in flight %" PRId64,
                  step, sum, w->deposits, w->withdrawals, w->in_flight);
}

/* Deliver one input to the account it concerns and account for the money it moves. */
static void deliver(world_t *w, const accounts_input_t *in, int step)
{
    int idx = account_index(accounts_input_account(in));
    ck_assert_int_ge(idx, 0);
    account_t *st = &w->acc[idx];
    account_t before = *st;
    accounts_event_t ev;
    accounts_decide(st, in, &ev);
    accounts_evolve(st, &ev);

    /* versions: +1 for any event on an existing account, none on a missing one */
    if (before.status == ACCOUNT_NONE && st->status == ACCOUNT_NONE) {
        ck_assert_int_eq(st->version, 0);
    } else {
        ck_assert_msg(st->version == before.version + 1, "step %d: version did not advance", step);
    }
    ck_assert_msg(ev.balance == st->balance || ev.kind == ACC_EV_ACCOUNT_OPENED ||
                      ev.kind == ACC_EV_ACCOUNT_CLOSED,
                  "step %d: %s says balance %" PRId64 ", state has %" PRId64, step,
                  accounts_event_type(ev.kind), ev.balance, st->balance);

    switch (ev.kind) {
    case ACC_EV_FUNDS_DEPOSITED:
        w->deposits += ev.amount;
        break;
    case ACC_EV_FUNDS_WITHDRAWN:
        w->withdrawals += ev.amount;
        break;
    case ACC_EV_ACCOUNT_CLOSED:
        w->closes++;
        break;
    case ACC_EV_FUNDS_DEBITED:
        w->in_flight += ev.amount;
        w->debits++;
        ck_assert_int_lt(w->qn, P_INFLIGHT);
        w->q[w->qn].in = (accounts_input_t){.kind = ACC_IN_FUNDS_DEBITED, .amount = ev.amount};
        snprintf(w->q[w->qn].in.transfer_id, ACC_ID_MAX, "%s", ev.transfer_id);
        snprintf(w->q[w->qn].in.from_account, ACC_ID_MAX, "%s", ev.account_id);
        snprintf(w->q[w->qn].in.to_account, ACC_ID_MAX, "%s", ev.other_account);
        snprintf(w->q[w->qn].in.currency, ACC_CURRENCY_MAX, "%s", ev.currency);
        w->qn++;
        break;
    case ACC_EV_FUNDS_CREDITED:
        w->in_flight -= ev.amount;
        w->credits++;
        break;
    case ACC_EV_CREDIT_REJECTED:
        ck_assert_int_lt(w->qn, P_INFLIGHT);
        w->q[w->qn].in = (accounts_input_t){.kind = ACC_IN_CREDIT_REJECTED, .amount = ev.amount};
        snprintf(w->q[w->qn].in.transfer_id, ACC_ID_MAX, "%s", ev.transfer_id);
        snprintf(w->q[w->qn].in.from_account, ACC_ID_MAX, "%s", ev.other_account);
        snprintf(w->q[w->qn].in.to_account, ACC_ID_MAX, "%s", ev.account_id);
        snprintf(w->q[w->qn].in.reason, ACC_REASON_MAX, "%s", ev.reason);
        w->qn++;
        break;
    case ACC_EV_DEBIT_REVERSED:
        w->in_flight -= ev.amount;
        w->refunds++;
        break;
    default:
        break;
    }
    check_world(w, step);
}

/* Deliver the in-flight step at position i (removing it from the queue). */
static void deliver_queued(world_t *w, int i, int step)
{
    accounts_input_t in = w->q[i].in;
    w->q[i] = w->q[--w->qn];
    deliver(w, &in, step);
}

START_TEST(test_property_money_conserved)
{
    static const char *const currencies[] = {"USD", "EUR"};
    static world_t w;
    memset(&w, 0, sizeof(w));
    rng_state = UINT64_C(0x9E3779B97F4A7C15);

    for (int step = 0; step < P_STEPS; step++) {
        /* now and then, an in-flight saga step arrives (in any order) */
        if (w.qn > 0 && (rng() % 3 == 0 || w.qn == P_INFLIGHT)) {
            deliver_queued(&w, (int)(rng() % (uint64_t)w.qn), step);
            continue;
        }
        char id[8], other[8];
        snprintf(id, sizeof(id), "p%d", (int)(rng() % P_ACCOUNTS));
        snprintf(other, sizeof(other), "p%d", (int)(rng() % P_ACCOUNTS));
        accounts_input_t in;
        uint64_t r = rng() % 100;
        if (r < 8) {
            in = input(ACC_IN_OPEN_ACCOUNT, id, 0);
            snprintf(in.owner, sizeof(in.owner), "%s", rng() % 10 ? "owner" : "");
            snprintf(in.currency, sizeof(in.currency), "%s",
                     rng() % 10 ? currencies[rng() % 2] : "usd");
        } else if (r < 40) {
            in = input(ACC_IN_DEPOSIT_FUNDS, id, rng_amount());
        } else if (r < 60) {
            in = input(ACC_IN_WITHDRAW_FUNDS, id, rng_amount());
        } else if (r < 63) {
            in = input(ACC_IN_CLOSE_ACCOUNT, id, 0);
        } else {
            const char *cur = "";
            uint64_t c = rng() % 4;
            if (c > 1) {
                cur = currencies[c - 2];
            }
            in = saga(ACC_IN_TRANSFER_REQUESTED, id, other, rng_amount(), cur);
            snprintf(in.transfer_id, sizeof(in.transfer_id), "t%d", step);
        }
        deliver(&w, &in, step);
    }
    /* drain: every saga reaches its end, then nothing is in flight */
    for (int step = P_STEPS; w.qn > 0; step++) {
        deliver_queued(&w, w.qn - 1, step);
    }
    ck_assert_int_eq(w.in_flight, 0);
    check_world(&w, -1);
    /* the run must have exercised the interesting paths */
    ck_assert_int_gt(w.debits, 100);
    ck_assert_int_gt(w.credits, 50);
    ck_assert_int_gt(w.refunds, 10);
    ck_assert_int_gt(w.closes, 0);
    ck_assert_int_gt(w.deposits, 0);
    ck_assert_int_gt(w.withdrawals, 0);
}
END_TEST

Suite *accounts_domain_suite(void);

Suite *accounts_domain_suite(void)
{
    Suite *s = suite_create("accounts_domain");

    TCase *tc = tcase_create("commands");
    tcase_add_loop_test(tc, test_command_rejected, 0, REJECTIONS_N);
    tcase_add_test(tc, test_open_account);
    tcase_add_test(tc, test_deposit_withdraw_close);
    tcase_add_test(tc, test_deposit_up_to_int64_max);
    suite_add_tcase(s, tc);

    tc = tcase_create("saga");
    tcase_add_loop_test(tc, test_saga_step, 0, SAGA_N);
    tcase_add_loop_test(tc, test_debit_reversed_always_refunds, 0,
                        (int)(sizeof(credit_reasons) / sizeof(credit_reasons[0])));
    tcase_add_test(tc, test_refund_after_close);
    suite_add_tcase(s, tc);

    tc = tcase_create("timeout");
    tcase_add_loop_test(tc, test_debit_timed_out, 0, FENCED_DEBITS_N);
    tcase_add_test(tc, test_timeout_after_debit_finishes);
    suite_add_tcase(s, tc);

    tc = tcase_create("names");
    tcase_add_test(tc, test_names);
    tcase_add_test(tc, test_input_account);
    tcase_add_test(tc, test_id_valid);
    suite_add_tcase(s, tc);

    tc = tcase_create("property");
    tcase_add_test(tc, test_property_money_conserved);
    suite_add_tcase(s, tc);
    return s;
}
