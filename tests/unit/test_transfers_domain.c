/*
 * test_transfers_domain.c: the transfers context's pure rules (consumers/transfers/domain.c):
 * requesting a transfer and each reason it is refused, each outcome taking a pending transfer
 * to its terminal state, and late, duplicated or unknown outcomes changing nothing; a timed-out
 * saga fencing a transfer not requested yet (silently), its late RequestTransfer failing with
 * TIMEOUT, and the timeout changing nothing once the transfer was requested.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "../../consumers/transfers/domain.h"

static transfers_input_t request(const char *id, const char *from, const char *to, int64_t amount)
{
    transfers_input_t in;
    memset(&in, 0, sizeof(in));
    in.kind = TR_IN_REQUEST_TRANSFER;
    snprintf(in.command_id, sizeof(in.command_id), "cmd-1");
    snprintf(in.transfer_id, sizeof(in.transfer_id), "%s", id);
    snprintf(in.from_account, sizeof(in.from_account), "%s", from);
    snprintf(in.to_account, sizeof(in.to_account), "%s", to);
    snprintf(in.currency, sizeof(in.currency), "USD");
    in.amount = amount;
    return in;
}

static transfers_input_t outcome(transfers_input_kind_t kind, const char *id, const char *reason)
{
    transfers_input_t in;
    memset(&in, 0, sizeof(in));
    in.kind = kind;
    snprintf(in.transfer_id, sizeof(in.transfer_id), "%s", id);
    snprintf(in.reason, sizeof(in.reason), "%s", reason);
    /* outcomes carry their own copy of the figures; the transfer's own must win */
    snprintf(in.from_account, sizeof(in.from_account), "X");
    snprintf(in.to_account, sizeof(in.to_account), "Y");
    in.amount = 999;
    return in;
}

/* A transfer t-1 (A -> B, 40 USD), pending. */
static transfer_t pending(void)
{
    transfer_t st;
    memset(&st, 0, sizeof(st));
    transfers_input_t in = request("t-1", "A", "B", 40);
    transfers_event_t ev;
    ck_assert_int_eq(transfers_decide(&st, &in, &ev), 1);
    ck_assert_int_eq(ev.kind, TR_EV_TRANSFER_REQUESTED);
    transfers_evolve(&st, &ev);
    ck_assert_int_eq(st.status, TRANSFER_PENDING);
    return st;
}

static void assert_same(const transfer_t *a, const transfer_t *b)
{
    ck_assert_int_eq(a->status, b->status);
    ck_assert_int_eq(a->version, b->version);
    ck_assert_int_eq(a->amount, b->amount);
    ck_assert_int_eq(a->compensated, b->compensated);
    ck_assert_str_eq(a->id, b->id);
    ck_assert_str_eq(a->from_account, b->from_account);
    ck_assert_str_eq(a->to_account, b->to_account);
    ck_assert_str_eq(a->currency, b->currency);
    ck_assert_str_eq(a->reason, b->reason);
}

/* ---- requests ---- */

START_TEST(test_request_ok)
{
    transfer_t st;
    memset(&st, 0, sizeof(st));
    transfers_input_t in = request("t-1", "A", "B", 40);
    transfers_event_t ev;
    ck_assert_int_eq(transfers_decide(&st, &in, &ev), 1);
    ck_assert_int_eq(ev.kind, TR_EV_TRANSFER_REQUESTED);
    ck_assert_str_eq(ev.transfer_id, "t-1");
    ck_assert_str_eq(ev.from_account, "A");
    ck_assert_str_eq(ev.to_account, "B");
    ck_assert_int_eq(ev.amount, 40);
    ck_assert_str_eq(ev.currency, "USD");
    ck_assert_str_eq(ev.command_id, "cmd-1");
    ck_assert_str_eq(ev.reason, "");

    transfers_evolve(&st, &ev);
    ck_assert_int_eq(st.status, TRANSFER_PENDING);
    ck_assert_str_eq(st.id, "t-1");
    ck_assert_str_eq(st.from_account, "A");
    ck_assert_str_eq(st.to_account, "B");
    ck_assert_int_eq(st.amount, 40);
    ck_assert_str_eq(st.currency, "USD");
    ck_assert_int_eq(st.version, 1);
    ck_assert_str_eq(transfers_status_name(st.status), "PENDING");
}
END_TEST

/* Requests refused at once: the transfer exists, failed, and the saga never starts. */
static const struct {
    const char *from, *to;
    int64_t amount;
    const char *reason;
} refused[] = {
    {"A", "A", 40, "SAME_ACCOUNT"},          {"A", "A", 0, "SAME_ACCOUNT"},
    {"A", "B", 0, "INVALID_AMOUNT"},         {"A", "B", -1, "INVALID_AMOUNT"},
    {"A", "B", INT64_MIN, "INVALID_AMOUNT"},
};

START_TEST(test_request_refused)
{
    transfer_t st;
    memset(&st, 0, sizeof(st));
    transfers_input_t in = request("t-1", refused[_i].from, refused[_i].to, refused[_i].amount);
    transfers_event_t ev;
    ck_assert_int_eq(transfers_decide(&st, &in, &ev), 1);
    ck_assert_int_eq(ev.kind, TR_EV_TRANSFER_FAILED);
    ck_assert_str_eq(ev.reason, refused[_i].reason);
    ck_assert_int_eq(ev.compensated, 0);
    transfers_evolve(&st, &ev);
    ck_assert_int_eq(st.status, TRANSFER_FAILED);
    ck_assert_str_eq(st.reason, refused[_i].reason);
    ck_assert_str_eq(st.id, "t-1");
    ck_assert_int_eq(st.compensated, 0);
    ck_assert_int_eq(st.version, 1);
}
END_TEST

/* Commands refused without touching the transfer: only a rejection comes out. */
static const struct {
    int exists; /* 0: none, 1: pending, 2: completed */
    const char *id;
    const char *reason;
} rejected[] = {
    {1, "t-1", "TRANSFER_EXISTS"}, {2, "t-1", "TRANSFER_EXISTS"}, {0, "", "INVALID_ID"},
    {0, "t 1", "INVALID_ID"},      {0, "t/1", "INVALID_ID"},      {0, "t\"1", "INVALID_ID"},
};

START_TEST(test_request_rejected)
{
    transfer_t st;
    memset(&st, 0, sizeof(st));
    if (rejected[_i].exists) {
        st = pending();
    }
    if (rejected[_i].exists == 2) {
        transfers_input_t in = outcome(TR_IN_FUNDS_CREDITED, "t-1", "");
        transfers_event_t ev;
        ck_assert_int_eq(transfers_decide(&st, &in, &ev), 1);
        transfers_evolve(&st, &ev);
        ck_assert_int_eq(st.status, TRANSFER_COMPLETED);
    }
    transfer_t before = st;
    /* a different request under the same id: must not overwrite anything */
    transfers_input_t in = request(rejected[_i].id, "C", "D", 77);
    transfers_event_t ev;
    ck_assert_int_eq(transfers_decide(&st, &in, &ev), 1);
    ck_assert_int_eq(ev.kind, TR_EV_COMMAND_REJECTED);
    ck_assert_str_eq(ev.reason, rejected[_i].reason);
    ck_assert_str_eq(ev.command_id, "cmd-1");
    ck_assert_str_eq(ev.transfer_id, rejected[_i].id);
    transfers_evolve(&st, &ev);
    assert_same(&st, &before);
}
END_TEST

START_TEST(test_request_long_id)
{
    transfer_t st;
    memset(&st, 0, sizeof(st));
    transfers_input_t in = request("", "A", "B", 1);
    memset(in.transfer_id, 'x', TR_ID_MAX - 1); /* 127 characters: the longest valid id */
    transfers_event_t ev;
    ck_assert_int_eq(transfers_decide(&st, &in, &ev), 1);
    ck_assert_int_eq(ev.kind, TR_EV_TRANSFER_REQUESTED);
}
END_TEST

/* ---- outcomes of a pending transfer ---- */

static const struct {
    transfers_input_kind_t kind;
    const char *reason;
    transfer_status_t status;
    int compensated;
} outcomes[] = {
    {TR_IN_FUNDS_CREDITED, "", TRANSFER_COMPLETED, 0},
    {TR_IN_DEBIT_REJECTED, "INSUFFICIENT_FUNDS", TRANSFER_FAILED, 0},
    {TR_IN_DEBIT_REJECTED, "CURRENCY_MISMATCH", TRANSFER_FAILED, 0},
    {TR_IN_DEBIT_REJECTED, "ACCOUNT_NOT_FOUND", TRANSFER_FAILED, 0},
    {TR_IN_DEBIT_REVERSED, "ACCOUNT_CLOSED", TRANSFER_FAILED, 1},
    {TR_IN_DEBIT_REVERSED, "CURRENCY_MISMATCH", TRANSFER_FAILED, 1},
};
#define OUTCOMES_N ((int)(sizeof(outcomes) / sizeof(outcomes[0])))

START_TEST(test_outcome_from_pending)
{
    transfer_t st = pending();
    transfers_input_t in = outcome(outcomes[_i].kind, "t-1", outcomes[_i].reason);
    transfers_event_t ev;
    ck_assert_int_eq(transfers_decide(&st, &in, &ev), 1);
    ck_assert_int_eq(ev.kind, outcomes[_i].status == TRANSFER_COMPLETED ? TR_EV_TRANSFER_COMPLETED
                                                                        : TR_EV_TRANSFER_FAILED);
    ck_assert_str_eq(ev.transfer_id, "t-1");
    ck_assert_str_eq(ev.from_account, "A");
    ck_assert_str_eq(ev.to_account, "B");
    ck_assert_int_eq(ev.amount, 40);
    ck_assert_str_eq(ev.reason, outcomes[_i].reason);
    ck_assert_int_eq(ev.compensated, outcomes[_i].compensated);

    transfers_evolve(&st, &ev);
    ck_assert_int_eq(st.status, outcomes[_i].status);
    ck_assert_str_eq(st.reason, outcomes[_i].reason);
    ck_assert_int_eq(st.compensated, outcomes[_i].compensated);
    ck_assert_int_eq(st.version, 2);
    /* the transfer's own figures are kept */
    ck_assert_str_eq(st.from_account, "A");
    ck_assert_str_eq(st.to_account, "B");
    ck_assert_int_eq(st.amount, 40);
    ck_assert_str_eq(st.currency, "USD");
}
END_TEST

/* ---- late, duplicated and unknown outcomes ---- */

/* Every (state, outcome) pair where the state is unknown or terminal: 4 states x 3 outcomes. */
#define LATE_STATES 4
static const transfers_input_kind_t late_kinds[] = {TR_IN_FUNDS_CREDITED, TR_IN_DEBIT_REJECTED,
                                                    TR_IN_DEBIT_REVERSED};
#define LATE_N (LATE_STATES * 3)

static transfer_t late_state(int which)
{
    transfer_t st;
    memset(&st, 0, sizeof(st));
    if (which == 0) {
        return st; /* unknown */
    }
    st = pending();
    static const transfers_input_kind_t end[] = {TR_IN_FUNDS_CREDITED, TR_IN_DEBIT_REJECTED,
                                                 TR_IN_DEBIT_REVERSED};
    transfers_input_t in = outcome(end[which - 1], "t-1", which == 1 ? "" : "WHY");
    transfers_event_t ev;
    ck_assert_int_eq(transfers_decide(&st, &in, &ev), 1);
    transfers_evolve(&st, &ev);
    ck_assert_int_ne(st.status, TRANSFER_PENDING);
    return st;
}

START_TEST(test_late_outcome_ignored)
{
    transfer_t st = late_state(_i / 3);
    transfer_t before = st;
    transfers_input_t in = outcome(late_kinds[_i % 3], "t-1", "LATE");
    transfers_event_t ev;
    ck_assert_msg(transfers_decide(&st, &in, &ev) == 0, "state %s, outcome %d: events produced",
                  transfers_status_name(st.status), (int)late_kinds[_i % 3]);
    assert_same(&st, &before);
}
END_TEST

/* The same outcome delivered twice: the second changes nothing. */
START_TEST(test_duplicate_outcome)
{
    transfer_t st = pending();
    transfers_input_t in = outcome(outcomes[_i].kind, "t-1", outcomes[_i].reason);
    transfers_event_t ev;
    ck_assert_int_eq(transfers_decide(&st, &in, &ev), 1);
    transfers_evolve(&st, &ev);
    transfer_t before = st;
    ck_assert_int_eq(transfers_decide(&st, &in, &ev), 0);
    assert_same(&st, &before);
}
END_TEST

/* ---- a timed-out transfer saga (docs/SAGAS.md) ---- */

static transfers_input_t timed_out(const char *id)
{
    transfers_input_t in;
    memset(&in, 0, sizeof(in));
    in.kind = TR_IN_SAGA_TIMED_OUT;
    snprintf(in.transfer_id, sizeof(in.transfer_id), "%s", id);
    return in;
}

/* The transfer t-1 fenced: its saga timed out before its RequestTransfer was handled. */
static transfer_t fenced(void)
{
    transfer_t st;
    memset(&st, 0, sizeof(st));
    transfers_input_t in = timed_out("t-1");
    transfers_event_t ev;
    ck_assert_int_eq(transfers_decide(&st, &in, &ev), 1);
    ck_assert_int_eq(ev.kind, TR_EV_FENCED);
    transfers_evolve(&st, &ev);
    ck_assert_int_eq(st.status, TRANSFER_TIMED_OUT);
    return st;
}

START_TEST(test_timeout_fences_unknown)
{
    transfer_t st;
    memset(&st, 0, sizeof(st));
    transfers_input_t in = timed_out("t-1");
    transfers_event_t ev;
    ck_assert_int_eq(transfers_decide(&st, &in, &ev), 1);
    ck_assert_int_eq(ev.kind, TR_EV_FENCED);
    ck_assert_str_eq(ev.transfer_id, "t-1");
    ck_assert_str_eq(ev.reason, "");
    transfers_evolve(&st, &ev);
    ck_assert_int_eq(st.status, TRANSFER_TIMED_OUT);
    ck_assert_str_eq(transfers_status_name(st.status), "TIMED_OUT");
    ck_assert_str_eq(st.id, "t-1");
    ck_assert_int_eq(st.version, 0); /* silent: nothing published, no version */
    ck_assert_int_eq(st.amount, 0);
    ck_assert_str_eq(st.from_account, "");

    /* the timeout again, and outcomes no saga step can have caused: nothing */
    transfer_t before = st;
    ck_assert_int_eq(transfers_decide(&st, &in, &ev), 0);
    assert_same(&st, &before);
    for (size_t k = 0; k < sizeof(late_kinds) / sizeof(late_kinds[0]); k++) {
        transfers_input_t o = outcome(late_kinds[k], "t-1", "LATE");
        ck_assert_int_eq(transfers_decide(&st, &o, &ev), 0);
        assert_same(&st, &before);
    }
}
END_TEST

START_TEST(test_request_after_timeout_fails)
{
    transfer_t st = fenced();
    transfers_input_t in = request("t-1", "A", "B", 40);
    transfers_event_t ev;
    ck_assert_int_eq(transfers_decide(&st, &in, &ev), 1);
    ck_assert_int_eq(ev.kind, TR_EV_TRANSFER_FAILED);
    ck_assert_str_eq(ev.reason, "TIMEOUT");
    ck_assert_int_eq(ev.compensated, 0);
    ck_assert_str_eq(ev.transfer_id, "t-1");
    ck_assert_str_eq(ev.from_account, "A");
    ck_assert_str_eq(ev.to_account, "B");
    ck_assert_int_eq(ev.amount, 40);
    ck_assert_str_eq(ev.currency, "USD");
    ck_assert_str_eq(ev.command_id, "cmd-1");

    transfers_evolve(&st, &ev);
    ck_assert_int_eq(st.status, TRANSFER_FAILED);
    ck_assert_str_eq(st.reason, "TIMEOUT");
    ck_assert_int_eq(st.compensated, 0);
    ck_assert_str_eq(st.id, "t-1");
    ck_assert_str_eq(st.from_account, "A");
    ck_assert_str_eq(st.to_account, "B");
    ck_assert_int_eq(st.amount, 40);
    ck_assert_str_eq(st.currency, "USD");
    ck_assert_int_eq(st.version, 1); /* TransferFailed is the stream's first event */

    /* the RequestTransfer again: the transfer exists now, nothing moves */
    transfer_t before = st;
    ck_assert_int_eq(transfers_decide(&st, &in, &ev), 1);
    ck_assert_int_eq(ev.kind, TR_EV_COMMAND_REJECTED);
    ck_assert_str_eq(ev.reason, "TRANSFER_EXISTS");
    transfers_evolve(&st, &ev);
    assert_same(&st, &before);
    /* and so does a late timeout */
    in = timed_out("t-1");
    ck_assert_int_eq(transfers_decide(&st, &in, &ev), 0);
    assert_same(&st, &before);
}
END_TEST

/* A request that would be refused for another reason still fails with TIMEOUT, keeping the
 * command's figures: the saga is over before it started. */
START_TEST(test_refused_request_after_timeout)
{
    transfer_t st = fenced();
    transfers_input_t in = request("t-1", refused[_i].from, refused[_i].to, refused[_i].amount);
    transfers_event_t ev;
    ck_assert_int_eq(transfers_decide(&st, &in, &ev), 1);
    ck_assert_int_eq(ev.kind, TR_EV_TRANSFER_FAILED);
    ck_assert_str_eq(ev.reason, "TIMEOUT");
    ck_assert_int_eq(ev.amount, refused[_i].amount);
    transfers_evolve(&st, &ev);
    ck_assert_int_eq(st.status, TRANSFER_FAILED);
    ck_assert_str_eq(st.reason, "TIMEOUT");
    ck_assert_int_eq(st.amount, refused[_i].amount);
    ck_assert_str_eq(st.from_account, refused[_i].from);
    ck_assert_str_eq(st.to_account, refused[_i].to);
}
END_TEST

/* A requested transfer (pending or ended) is the accounts context's to decide: the timeout
 * changes nothing here. _i: 0 pending, 1 completed, 2 failed, 3 failed and compensated. */
START_TEST(test_timeout_after_request_ignored)
{
    transfer_t st = _i == 0 ? pending() : late_state(_i);
    transfer_t before = st;
    transfers_input_t in = timed_out("t-1");
    transfers_event_t ev;
    ck_assert_msg(transfers_decide(&st, &in, &ev) == 0, "timeout on %s: events produced",
                  transfers_status_name(st.status));
    assert_same(&st, &before);
}
END_TEST

/* Not a transfer of ours (the wiring leaves "" for other sagas), or an id no transfer has. */
static const char *const timeout_bad_ids[] = {"", "t 1", "t/1", "t\"1"};

START_TEST(test_timeout_invalid_id)
{
    transfer_t st;
    memset(&st, 0, sizeof(st));
    transfer_t before = st;
    transfers_input_t in = timed_out(timeout_bad_ids[_i]);
    transfers_event_t ev;
    ck_assert_int_eq(transfers_decide(&st, &in, &ev), 0);
    assert_same(&st, &before);
}
END_TEST

/* ---- names ---- */

START_TEST(test_names)
{
    ck_assert_int_eq(transfers_input_kind("RequestTransfer"), TR_IN_REQUEST_TRANSFER);
    ck_assert_int_eq(transfers_input_kind("DebitRejected"), TR_IN_DEBIT_REJECTED);
    ck_assert_int_eq(transfers_input_kind("FundsCredited"), TR_IN_FUNDS_CREDITED);
    ck_assert_int_eq(transfers_input_kind("DebitReversed"), TR_IN_DEBIT_REVERSED);
    ck_assert_int_eq(transfers_input_kind("SagaTimedOut"), TR_IN_SAGA_TIMED_OUT);
    ck_assert_int_eq(transfers_input_kind("FundsDebited"), -1);
    ck_assert_int_eq(transfers_input_kind(""), -1);
    ck_assert_str_eq(transfers_event_type(TR_EV_TRANSFER_REQUESTED), "TransferRequested");
    ck_assert_str_eq(transfers_event_type(TR_EV_TRANSFER_COMPLETED), "TransferCompleted");
    ck_assert_str_eq(transfers_event_type(TR_EV_TRANSFER_FAILED), "TransferFailed");
    ck_assert_str_eq(transfers_event_type(TR_EV_COMMAND_REJECTED), "TransferCommandRejected");
    ck_assert_str_eq(transfers_event_type(TR_EV__COUNT), "?");
    ck_assert_str_eq(transfers_status_name(TRANSFER_NONE), "NONE");
    ck_assert_str_eq(transfers_status_name(TRANSFER_COMPLETED), "COMPLETED");
    ck_assert_str_eq(transfers_status_name(TRANSFER_PENDING), "PENDING");
    ck_assert_str_eq(transfers_status_name(TRANSFER_FAILED), "FAILED");
    ck_assert_str_eq(transfers_status_name(TRANSFER_TIMED_OUT), "TIMED_OUT");
    ck_assert_str_eq(transfers_status_name((transfer_status_t)(TRANSFER_TIMED_OUT + 1)), "?");
    /* the fence is silent: it has no wire name */
    ck_assert_str_eq(transfers_event_type(TR_EV_FENCED), "");
}
END_TEST

Suite *transfers_domain_suite(void);

Suite *transfers_domain_suite(void)
{
    Suite *s = suite_create("transfers_domain");

    TCase *tc = tcase_create("request");
    tcase_add_test(tc, test_request_ok);
    tcase_add_loop_test(tc, test_request_refused, 0, (int)(sizeof(refused) / sizeof(refused[0])));
    tcase_add_loop_test(tc, test_request_rejected, 0,
                        (int)(sizeof(rejected) / sizeof(rejected[0])));
    tcase_add_test(tc, test_request_long_id);
    suite_add_tcase(s, tc);

    tc = tcase_create("outcomes");
    tcase_add_loop_test(tc, test_outcome_from_pending, 0, OUTCOMES_N);
    tcase_add_loop_test(tc, test_late_outcome_ignored, 0, LATE_N);
    tcase_add_loop_test(tc, test_duplicate_outcome, 0, OUTCOMES_N);
    suite_add_tcase(s, tc);

    tc = tcase_create("timeout");
    tcase_add_test(tc, test_timeout_fences_unknown);
    tcase_add_test(tc, test_request_after_timeout_fails);
    tcase_add_loop_test(tc, test_refused_request_after_timeout, 0,
                        (int)(sizeof(refused) / sizeof(refused[0])));
    tcase_add_loop_test(tc, test_timeout_after_request_ignored, 0, LATE_STATES);
    tcase_add_loop_test(tc, test_timeout_invalid_id, 0,
                        (int)(sizeof(timeout_bad_ids) / sizeof(timeout_bad_ids[0])));
    suite_add_tcase(s, tc);

    tc = tcase_create("names");
    tcase_add_test(tc, test_names);
    suite_add_tcase(s, tc);
    return s;
}
