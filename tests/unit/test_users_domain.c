/*
 * test_users_domain.c: the users context's pure rules (consumers/users/domain.c): every
 * command's success and every rejection reason with their precedence, how evolve moves status,
 * email and version (rejections of a missing user stay at version 0), duplicates refused on
 * terminal states, the email normalization and validation table, names and ids, the batch's
 * email claims (two registrations of one email in a batch: the second is EMAIL_TAKEN; an email
 * released and taken by another user in the same batch; the writes a batch derives, deletes
 * before inserts, none for a claim made and released within it), and a seeded random run of
 * batches against a simulated emails table that checks uniqueness and that no insert ever
 * hits the primary key.
 */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "../../consumers/users/domain.h"

/* ---- helpers ---- */

static users_input_t cmd(users_input_kind_t kind, const char *user_id, const char *email,
                         const char *name)
{
    users_input_t in;
    memset(&in, 0, sizeof(in));
    in.kind = kind;
    snprintf(in.command_id, sizeof(in.command_id), "cmd-%d", (int)kind);
    in.user_id = user_id;
    in.email = email;
    in.name = name;
    return in;
}

/* Decide, evolve and move the claims, as the service does; returns the event. */
static users_event_t apply(user_t *st, users_claims_t *claims, const users_input_t *in)
{
    users_event_t ev;
    users_decide(st, claims, in, &ev);
    users_evolve(st, &ev);
    if (claims) {
        ck_assert_int_eq(users_claims_apply(claims, &ev), 0);
    }
    return ev;
}

typedef enum { ST_MISSING, ST_ACTIVE, ST_INACTIVE } setup_t;

/* A user "u-1" (ann@example.com, "Ann") in the given condition, built through the rules. */
static user_t make_user(setup_t setup)
{
    user_t st;
    memset(&st, 0, sizeof(st));
    if (setup == ST_MISSING) {
        return st;
    }
    users_input_t in = cmd(USR_IN_REGISTER_USER, "u-1", "ann@example.com", "Ann");
    users_event_t ev = apply(&st, NULL, &in);
    ck_assert_int_eq(ev.kind, USR_EV_USER_REGISTERED);
    if (setup == ST_INACTIVE) {
        in = cmd(USR_IN_DEACTIVATE_USER, "u-1", "", "");
        ev = apply(&st, NULL, &in);
        ck_assert_int_eq(ev.kind, USR_EV_USER_DEACTIVATED);
    }
    return st;
}

/* Claims with room for 64 emails, as loaded: ann@example.com is u-1's (when u-1 exists),
 * bob@example.com is u-2's. users_claims_fini() them. */
static users_claim_t fixture_slots[64];

static void make_claims(users_claims_t *c, setup_t setup)
{
    users_claims_init(c);
    users_claims_reset(c, fixture_slots, 64);
    if (setup != ST_MISSING) {
        ck_assert_int_eq(users_claims_load(c, "ann@example.com", "u-1"), 0);
    }
    ck_assert_int_eq(users_claims_load(c, "bob@example.com", "u-2"), 0);
}

static void assert_same_user(const user_t *a, const user_t *b)
{
    ck_assert_int_eq(a->status, b->status);
    ck_assert_str_eq(a->id, b->id);
    ck_assert_str_eq(a->email, b->email);
    ck_assert_str_eq(a->name, b->name);
}

/* ---- rejections ---- */

static const struct {
    const char *name;
    setup_t setup;
    users_input_kind_t kind;
    const char *user_id;
    const char *email;
    const char *user_name;
    const char *reason;
} rejections[] = {
    /* RegisterUser */
    {"register empty id", ST_MISSING, USR_IN_REGISTER_USER, "", "c@example.com", "C", "INVALID_ID"},
    {"register id with space", ST_MISSING, USR_IN_REGISTER_USER, "u 1", "c@example.com", "C",
     "INVALID_ID"},
    {"register id with slash", ST_MISSING, USR_IN_REGISTER_USER, "u/1", "c@example.com", "C",
     "INVALID_ID"},
    {"register id non-ascii", ST_MISSING, USR_IN_REGISTER_USER, "caf\xc3\xa9", "c@example.com", "C",
     "INVALID_ID"},
    {"register null id", ST_MISSING, USR_IN_REGISTER_USER, NULL, "c@example.com", "C",
     "INVALID_ID"},
    {"register existing", ST_ACTIVE, USR_IN_REGISTER_USER, "u-1", "c@example.com", "C",
     "USER_EXISTS"},
    {"register existing, same payload", ST_ACTIVE, USR_IN_REGISTER_USER, "u-1", "ann@example.com",
     "Ann", "USER_EXISTS"},
    {"register inactive", ST_INACTIVE, USR_IN_REGISTER_USER, "u-1", "c@example.com", "C",
     "USER_EXISTS"},
    {"register existing beats invalid email", ST_ACTIVE, USR_IN_REGISTER_USER, "u-1", "nope", "C",
     "USER_EXISTS"},
    {"register no at", ST_MISSING, USR_IN_REGISTER_USER, "u-1", "ann.example.com", "Ann",
     "INVALID_EMAIL"},
    {"register empty email", ST_MISSING, USR_IN_REGISTER_USER, "u-1", "", "Ann", "INVALID_EMAIL"},
    {"register null email", ST_MISSING, USR_IN_REGISTER_USER, "u-1", NULL, "Ann", "INVALID_EMAIL"},
    {"register domain without dot", ST_MISSING, USR_IN_REGISTER_USER, "u-1", "ann@localhost", "Ann",
     "INVALID_EMAIL"},
    {"register invalid email beats invalid name", ST_MISSING, USR_IN_REGISTER_USER, "u-1", "x", "",
     "INVALID_EMAIL"},
    {"register empty name", ST_MISSING, USR_IN_REGISTER_USER, "u-1", "c@example.com", "",
     "INVALID_NAME"},
    {"register null name", ST_MISSING, USR_IN_REGISTER_USER, "u-1", "c@example.com", NULL,
     "INVALID_NAME"},
    {"register blank name", ST_MISSING, USR_IN_REGISTER_USER, "u-1", "c@example.com", " \t ",
     "INVALID_NAME"},
    {"register name with control", ST_MISSING, USR_IN_REGISTER_USER, "u-1", "c@example.com",
     "A\x01n", "INVALID_NAME"},
    {"register invalid name beats taken", ST_MISSING, USR_IN_REGISTER_USER, "u-1",
     "bob@example.com", "", "INVALID_NAME"},
    {"register taken", ST_MISSING, USR_IN_REGISTER_USER, "u-1", "bob@example.com", "Ann",
     "EMAIL_TAKEN"},
    {"register taken, other case and spaces", ST_MISSING, USR_IN_REGISTER_USER, "u-1",
     "  BOB@Example.Com\t", "Ann", "EMAIL_TAKEN"},
    /* ChangeEmail */
    {"change invalid id", ST_MISSING, USR_IN_CHANGE_EMAIL, "u:1 ", "c@example.com", "",
     "INVALID_ID"},
    {"change missing", ST_MISSING, USR_IN_CHANGE_EMAIL, "u-1", "c@example.com", "",
     "USER_NOT_FOUND"},
    {"change missing beats invalid email", ST_MISSING, USR_IN_CHANGE_EMAIL, "u-1", "x", "",
     "USER_NOT_FOUND"},
    {"change inactive", ST_INACTIVE, USR_IN_CHANGE_EMAIL, "u-1", "c@example.com", "",
     "USER_INACTIVE"},
    {"change inactive beats taken", ST_INACTIVE, USR_IN_CHANGE_EMAIL, "u-1", "bob@example.com", "",
     "USER_INACTIVE"},
    {"change invalid email", ST_ACTIVE, USR_IN_CHANGE_EMAIL, "u-1", "c@@example.com", "",
     "INVALID_EMAIL"},
    {"change unchanged", ST_ACTIVE, USR_IN_CHANGE_EMAIL, "u-1", "ann@example.com", "",
     "EMAIL_UNCHANGED"},
    {"change unchanged, other case", ST_ACTIVE, USR_IN_CHANGE_EMAIL, "u-1", " ANN@example.COM ", "",
     "EMAIL_UNCHANGED"},
    {"change taken", ST_ACTIVE, USR_IN_CHANGE_EMAIL, "u-1", "bob@example.com", "", "EMAIL_TAKEN"},
    {"change taken, other case", ST_ACTIVE, USR_IN_CHANGE_EMAIL, "u-1", "Bob@EXAMPLE.com", "",
     "EMAIL_TAKEN"},
    /* DeactivateUser */
    {"deactivate invalid id", ST_MISSING, USR_IN_DEACTIVATE_USER, "", "", "", "INVALID_ID"},
    {"deactivate missing", ST_MISSING, USR_IN_DEACTIVATE_USER, "u-1", "", "", "USER_NOT_FOUND"},
    {"deactivate inactive", ST_INACTIVE, USR_IN_DEACTIVATE_USER, "u-1", "", "", "USER_INACTIVE"},
};
#define REJECTIONS_N ((int)(sizeof(rejections) / sizeof(rejections[0])))

START_TEST(test_command_rejected)
{
    const char *name = rejections[_i].name;
    user_t st = make_user(rejections[_i].setup);
    user_t before = st;
    users_claims_t claims;
    make_claims(&claims, rejections[_i].setup);
    users_input_t in = cmd(rejections[_i].kind, rejections[_i].user_id, rejections[_i].email,
                           rejections[_i].user_name);

    users_event_t ev;
    users_decide(&st, &claims, &in, &ev);
    ck_assert_msg(ev.kind == USR_EV_COMMAND_REJECTED, "%s: kind %s", name,
                  users_event_type(ev.kind));
    ck_assert_msg(!strcmp(ev.reason, rejections[_i].reason), "%s: reason %s, expected %s", name,
                  ev.reason, rejections[_i].reason);
    ck_assert_str_eq(ev.command_id, in.command_id);
    ck_assert_ptr_nonnull(ev.command_type);
    ck_assert_str_eq(ev.command_type, users_input_type(in.kind));
    ck_assert_str_eq(ev.user_id, rejections[_i].user_id ? rejections[_i].user_id : "");
    ck_assert_str_eq(ev.email, "");
    ck_assert_str_eq(ev.old_email, "");
    ck_assert_str_eq(ev.name, "");

    users_evolve(&st, &ev);
    assert_same_user(&st, &before);
    if (rejections[_i].setup == ST_MISSING) {
        ck_assert_int_eq(st.status, USER_NONE);
        ck_assert_int_eq(st.version, 0);
    } else {
        ck_assert_int_eq(st.version, before.version + 1);
    }
    /* a rejection moves no claim and writes none */
    ck_assert_int_eq(users_claims_apply(&claims, &ev), 0);
    ck_assert_str_eq(users_claims_owner(&claims, "bob@example.com"), "u-2");
    for (size_t k = 0; k < claims.cnt; k++) {
        ck_assert(!users_claim_released(&claims.slots[k]));
        ck_assert(!users_claim_claimed(&claims.slots[k]));
    }
    users_claims_fini(&claims);
}
END_TEST

/* An id one character too long, and one cut short in the middle of a UTF-8 character: the
 * rejection echoes it cut before that character, so the event stays valid UTF-8. */
START_TEST(test_long_ids)
{
    char id[300];
    memset(id, 'a', sizeof(id));
    id[USR_ID_LEN_MAX] = '\0';
    user_t st = make_user(ST_MISSING);
    users_input_t in = cmd(USR_IN_REGISTER_USER, id, "c@example.com", "C");
    users_event_t ev = apply(&st, NULL, &in);
    ck_assert_int_eq(ev.kind, USR_EV_USER_REGISTERED); /* 100: the longest valid id */
    ck_assert_str_eq(ev.user_id, id);

    id[USR_ID_LEN_MAX] = 'a';
    id[USR_ID_LEN_MAX + 1] = '\0';
    memset(&st, 0, sizeof(st));
    ev = apply(&st, NULL, &in);
    ck_assert_int_eq(ev.kind, USR_EV_COMMAND_REJECTED);
    ck_assert_str_eq(ev.reason, "INVALID_ID");
    ck_assert_str_eq(ev.user_id, id);
    ck_assert_int_eq(st.version, 0);

    /* 126 'a', then a two-byte character across the end of the 127 bytes that fit */
    memset(id, 'a', sizeof(id));
    id[126] = (char)0xc3;
    id[127] = (char)0xa9;
    id[250] = '\0';
    ev = apply(&st, NULL, &in);
    ck_assert_str_eq(ev.reason, "INVALID_ID");
    ck_assert_uint_eq(strlen(ev.user_id), 126);
    ck_assert_int_eq(strncmp(ev.user_id, id, 126), 0);

    /* a long ASCII id is cut at the buffer's end */
    memset(id, 'b', 299);
    id[299] = '\0';
    ev = apply(&st, NULL, &in);
    ck_assert_str_eq(ev.reason, "INVALID_ID");
    ck_assert_uint_eq(strlen(ev.user_id), USR_ID_MAX - 1);
}
END_TEST

/* ---- successes ---- */

START_TEST(test_register)
{
    user_t st;
    memset(&st, 0, sizeof(st));
    users_claims_t claims;
    make_claims(&claims, ST_MISSING);
    users_input_t in = cmd(USR_IN_REGISTER_USER, "u-1.x_y:Z", "  Ann.Lee+shop@Example.ORG\n",
                           " Ann Lee \xc3\xa9 ");
    users_event_t ev;
    users_decide(&st, &claims, &in, &ev);
    ck_assert_int_eq(ev.kind, USR_EV_USER_REGISTERED);
    ck_assert_str_eq(users_event_type(ev.kind), "UserRegistered");
    ck_assert_str_eq(ev.user_id, "u-1.x_y:Z");
    ck_assert_str_eq(ev.email, "ann.lee+shop@example.org");
    ck_assert_str_eq(ev.name, " Ann Lee \xc3\xa9 "); /* the name is kept as sent */
    ck_assert_str_eq(ev.reason, "");
    ck_assert_str_eq(ev.old_email, "");
    ck_assert_str_eq(ev.command_type, "RegisterUser");

    users_evolve(&st, &ev);
    ck_assert_int_eq(st.status, USER_ACTIVE);
    ck_assert_str_eq(st.id, "u-1.x_y:Z");
    ck_assert_str_eq(st.email, "ann.lee+shop@example.org");
    ck_assert_str_eq(st.name, " Ann Lee \xc3\xa9 ");
    ck_assert_int_eq(st.version, 1);

    ck_assert_int_eq(users_claims_apply(&claims, &ev), 0);
    ck_assert_str_eq(users_claims_owner(&claims, "ann.lee+shop@example.org"), "u-1.x_y:Z");
    users_claims_fini(&claims);
}
END_TEST

START_TEST(test_change_email)
{
    user_t st = make_user(ST_ACTIVE);
    users_claims_t claims;
    make_claims(&claims, ST_ACTIVE);
    users_input_t in = cmd(USR_IN_CHANGE_EMAIL, "u-1", "ANN@new.example.com", NULL);
    users_event_t ev = apply(&st, &claims, &in);
    ck_assert_int_eq(ev.kind, USR_EV_EMAIL_CHANGED);
    ck_assert_str_eq(users_event_type(ev.kind), "EmailChanged");
    ck_assert_str_eq(ev.user_id, "u-1");
    ck_assert_str_eq(ev.email, "ann@new.example.com");
    ck_assert_str_eq(ev.old_email, "ann@example.com");
    ck_assert_str_eq(ev.command_type, "ChangeEmail");
    ck_assert_str_eq(st.email, "ann@new.example.com");
    ck_assert_str_eq(st.name, "Ann");
    ck_assert_int_eq(st.status, USER_ACTIVE);
    ck_assert_int_eq(st.version, 2);
    /* the old email is free again, the new one is u-1's */
    ck_assert_str_eq(users_claims_owner(&claims, "ann@example.com"), "");
    ck_assert_str_eq(users_claims_owner(&claims, "ann@new.example.com"), "u-1");

    /* and back: the old email is free, so u-1 can take it again */
    in = cmd(USR_IN_CHANGE_EMAIL, "u-1", "ann@example.com", NULL);
    ev = apply(&st, &claims, &in);
    ck_assert_int_eq(ev.kind, USR_EV_EMAIL_CHANGED);
    ck_assert_str_eq(ev.old_email, "ann@new.example.com");
    ck_assert_int_eq(st.version, 3);
    users_claims_fini(&claims);
}
END_TEST

START_TEST(test_deactivate)
{
    user_t st = make_user(ST_ACTIVE);
    users_claims_t claims;
    make_claims(&claims, ST_ACTIVE);
    users_input_t in = cmd(USR_IN_DEACTIVATE_USER, "u-1", NULL, NULL);
    users_event_t ev = apply(&st, &claims, &in);
    ck_assert_int_eq(ev.kind, USR_EV_USER_DEACTIVATED);
    ck_assert_str_eq(users_event_type(ev.kind), "UserDeactivated");
    ck_assert_str_eq(ev.user_id, "u-1");
    ck_assert_str_eq(ev.command_type, "DeactivateUser");
    ck_assert_int_eq(st.status, USER_INACTIVE);
    ck_assert_str_eq(st.email, "ann@example.com");
    ck_assert_int_eq(st.version, 2);
    /* a deactivated user's email stays claimed */
    ck_assert_str_eq(users_claims_owner(&claims, "ann@example.com"), "u-1");
    in = cmd(USR_IN_REGISTER_USER, "u-3", "ann@example.com", "Other");
    user_t other;
    memset(&other, 0, sizeof(other));
    ev = apply(&other, &claims, &in);
    ck_assert_str_eq(ev.reason, "EMAIL_TAKEN");
    ck_assert_int_eq(other.status, USER_NONE);
    users_claims_fini(&claims);
}
END_TEST

/* Duplicates and late commands on terminal states are refused and change nothing but the
 * version, however often they come. */
START_TEST(test_duplicates_refused)
{
    user_t st = make_user(ST_MISSING);
    users_input_t reg = cmd(USR_IN_REGISTER_USER, "u-1", "ann@example.com", "Ann");
    users_input_t deact = cmd(USR_IN_DEACTIVATE_USER, "u-1", NULL, NULL);
    users_input_t change = cmd(USR_IN_CHANGE_EMAIL, "u-1", "new@example.com", NULL);
    users_event_t ev = apply(&st, NULL, &reg);
    ck_assert_int_eq(ev.kind, USR_EV_USER_REGISTERED);
    for (int k = 0; k < 3; k++) {
        user_t before = st;
        ev = apply(&st, NULL, &reg);
        ck_assert_str_eq(ev.reason, "USER_EXISTS");
        assert_same_user(&st, &before);
        ck_assert_int_eq(st.version, before.version + 1);
    }
    ev = apply(&st, NULL, &deact);
    ck_assert_int_eq(ev.kind, USR_EV_USER_DEACTIVATED);
    for (int k = 0; k < 3; k++) {
        user_t before = st;
        ev = apply(&st, NULL, &deact);
        ck_assert_str_eq(ev.reason, "USER_INACTIVE");
        assert_same_user(&st, &before);
        ev = apply(&st, NULL, &change);
        ck_assert_str_eq(ev.reason, "USER_INACTIVE");
        ev = apply(&st, NULL, &reg);
        ck_assert_str_eq(ev.reason, "USER_EXISTS");
        assert_same_user(&st, &before);
        ck_assert_int_eq(st.version, before.version + 3);
    }
    ck_assert_int_eq(st.status, USER_INACTIVE);
    ck_assert_str_eq(st.email, "ann@example.com");
}
END_TEST

/* ---- evolve ---- */

START_TEST(test_evolve)
{
    user_t st;
    memset(&st, 0, sizeof(st));
    users_event_t ev;
    memset(&ev, 0, sizeof(ev));
    /* a rejection of a missing user leaves it missing at version 0 */
    ev.kind = USR_EV_COMMAND_REJECTED;
    snprintf(ev.user_id, sizeof(ev.user_id), "u-9");
    users_evolve(&st, &ev);
    ck_assert_int_eq(st.status, USER_NONE);
    ck_assert_int_eq(st.version, 0);
    ck_assert_str_eq(st.id, "");

    ev.kind = USR_EV_USER_REGISTERED;
    snprintf(ev.email, sizeof(ev.email), "a@b.co");
    snprintf(ev.name, sizeof(ev.name), "A");
    users_evolve(&st, &ev);
    ck_assert_int_eq(st.status, USER_ACTIVE);
    ck_assert_str_eq(st.id, "u-9");
    ck_assert_str_eq(st.email, "a@b.co");
    ck_assert_str_eq(st.name, "A");
    ck_assert_int_eq(st.version, 1);

    ev.kind = USR_EV_EMAIL_CHANGED;
    snprintf(ev.email, sizeof(ev.email), "c@d.co");
    snprintf(ev.old_email, sizeof(ev.old_email), "a@b.co");
    users_evolve(&st, &ev);
    ck_assert_str_eq(st.email, "c@d.co");
    ck_assert_int_eq(st.status, USER_ACTIVE);
    ck_assert_int_eq(st.version, 2);

    ev.kind = USR_EV_COMMAND_REJECTED;
    users_evolve(&st, &ev);
    ck_assert_str_eq(st.email, "c@d.co");
    ck_assert_int_eq(st.status, USER_ACTIVE);
    ck_assert_int_eq(st.version, 3);

    ev.kind = USR_EV_USER_DEACTIVATED;
    users_evolve(&st, &ev);
    ck_assert_int_eq(st.status, USER_INACTIVE);
    ck_assert_str_eq(st.email, "c@d.co");
    ck_assert_str_eq(st.name, "A");
    ck_assert_int_eq(st.version, 4);
}
END_TEST

/* ---- emails, names, ids ---- */

static const struct {
    const char *raw;
    const char *normalized;
    int valid;
} emails[] = {
    {"ann@example.com", "ann@example.com", 1},
    {"  Ann@Example.COM \t\r\n", "ann@example.com", 1},
    {"a@b.c", "a@b.c", 1},
    {"A.B+tag@Sub.Example.Org", "a.b+tag@sub.example.org", 1},
    {"\xc3\x84nn@example.com", "\xc3\x84nn@example.com", 1}, /* only A-Z are lowered */
    {"x@a-b.io", "x@a-b.io", 1},
    {"", "", 0},
    {"   ", "", 0},
    {"ab", "ab", 0},
    {"a@", "a@", 0},
    {"annexample.com", "annexample.com", 0},
    {"@example.com", "@example.com", 0},
    {"ann@", "ann@", 0},
    {"ann@localhost", "ann@localhost", 0},
    {"ann@.example.com", "ann@.example.com", 0},
    {"ann@example.com.", "ann@example.com.", 0},
    {"ann@example..com", "ann@example..com", 0},
    {"ann@@example.com", "ann@@example.com", 0},
    {"ann@x@example.com", "ann@x@example.com", 0},
    {"ann lee@example.com", "ann lee@example.com", 0},
    {"ann@exa mple.com", "ann@exa mple.com", 0},
    {"ann\t@example.com", "ann\t@example.com", 0},
    {"ann\x01@example.com", "ann\x01@example.com", 0},
    {"ann@example.com\x7f", "ann@example.com\x7f", 0},
    {"a@.c", "a@.c", 0},
    {"a@b.", "a@b.", 0},
    {".@b.c", ".@b.c", 1}, /* the local part is not checked beyond being non-empty */
};
#define EMAILS_N ((int)(sizeof(emails) / sizeof(emails[0])))

START_TEST(test_email_normalize)
{
    char out[USR_EMAIL_MAX];
    int valid = users_email_normalize(emails[_i].raw, out, sizeof(out));
    ck_assert_msg(valid == emails[_i].valid, "\"%s\": valid %d, expected %d", emails[_i].raw, valid,
                  emails[_i].valid);
    ck_assert_str_eq(out, emails[_i].normalized);
    ck_assert_int_eq(users_email_valid(out), emails[_i].valid);
}
END_TEST

START_TEST(test_email_lengths)
{
    char email[600], out[USR_EMAIL_MAX];
    const char *domain = "@example.com";
    size_t dlen = strlen(domain);
    /* 254 characters: the longest valid email */
    memset(email, 'a', USR_EMAIL_LEN_MAX - dlen);
    memcpy(email + USR_EMAIL_LEN_MAX - dlen, domain, dlen + 1);
    ck_assert_uint_eq(strlen(email), 254);
    ck_assert_int_eq(users_email_normalize(email, out, sizeof(out)), 1);
    ck_assert_str_eq(out, email);
    /* 255: too long, and cut short in `out` */
    memset(email, 'a', USR_EMAIL_LEN_MAX + 1 - dlen);
    memcpy(email + USR_EMAIL_LEN_MAX + 1 - dlen, domain, dlen + 1);
    ck_assert_int_eq(users_email_normalize(email, out, sizeof(out)), 0);
    ck_assert_int_eq(users_email_valid(email), 0);
    /* far too long for `out`: invalid, never valid because the cut part looked fine */
    memset(email, 'a', 500);
    memcpy(email + 500, domain, dlen + 1);
    ck_assert_int_eq(users_email_normalize(email, out, sizeof(out)), 0);
    ck_assert_uint_eq(strlen(out), USR_EMAIL_MAX - 1);
    /* white space around does not count */
    memset(email, ' ', 300);
    memset(email + 300, 'a', USR_EMAIL_LEN_MAX - dlen);
    memcpy(email + 300 + USR_EMAIL_LEN_MAX - dlen, domain, dlen);
    memset(email + 300 + USR_EMAIL_LEN_MAX, '\t', 20);
    email[300 + USR_EMAIL_LEN_MAX + 20] = '\0';
    ck_assert_int_eq(users_email_normalize(email, out, sizeof(out)), 1);
    ck_assert_uint_eq(strlen(out), 254);
    /* the shortest: 3 characters cannot make one ("a@b" has no dot), 5 can */
    ck_assert_int_eq(users_email_valid("a@"), 0);
    ck_assert_int_eq(users_email_valid("a@b.c"), 1);
    /* an output too small for a valid email: not valid */
    char small[4];
    ck_assert_int_eq(users_email_normalize("a@b.c", small, sizeof(small)), 0);
    ck_assert_str_eq(small, "a@b");
    /* NULL reads as "" */
    ck_assert_int_eq(users_email_normalize(NULL, out, sizeof(out)), 0);
    ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(test_name_valid)
{
    char name[1000];
    ck_assert_int_eq(users_name_valid("Ann"), 1);
    ck_assert_int_eq(users_name_valid("A"), 1);
    ck_assert_int_eq(users_name_valid(" Ann "), 1);
    ck_assert_int_eq(users_name_valid("Zo\xc3\xab"), 1);
    ck_assert_int_eq(users_name_valid(""), 0);
    ck_assert_int_eq(users_name_valid("   "), 0);
    ck_assert_int_eq(users_name_valid("\t"), 0);
    ck_assert_int_eq(users_name_valid("Ann\nLee"), 0);
    ck_assert_int_eq(users_name_valid("Ann\x7f"), 0);
    memset(name, 'x', 200);
    name[200] = '\0';
    ck_assert_int_eq(users_name_valid(name), 1);
    name[200] = 'x';
    name[201] = '\0';
    ck_assert_int_eq(users_name_valid(name), 0);
    /* characters, not bytes: 200 two-byte characters are fine, 201 are not */
    for (int k = 0; k < 201; k++) {
        name[2 * k] = (char)0xc3;
        name[2 * k + 1] = (char)0xa9;
    }
    name[400] = '\0';
    ck_assert_int_eq(users_name_valid(name), 1);
    name[400] = (char)0xc3;
    name[402] = '\0';
    ck_assert_int_eq(users_name_valid(name), 0);
    /* 200 four-byte characters fit the event */
    for (int k = 0; k < 200; k++) {
        memcpy(name + 4 * k, "\xf0\x9f\x98\x80", 4);
    }
    name[800] = '\0';
    ck_assert_int_eq(users_name_valid(name), 1);
    user_t st;
    memset(&st, 0, sizeof(st));
    users_input_t in = cmd(USR_IN_REGISTER_USER, "u-1", "a@b.co", name);
    users_event_t ev = apply(&st, NULL, &in);
    ck_assert_int_eq(ev.kind, USR_EV_USER_REGISTERED);
    ck_assert_str_eq(ev.name, name);
    ck_assert_str_eq(st.name, name);
}
END_TEST

START_TEST(test_id_valid)
{
    char id[200];
    memset(id, 'a', sizeof(id));
    id[100] = '\0';
    ck_assert_int_eq(users_id_valid(id), 1);
    id[100] = 'a';
    id[101] = '\0';
    ck_assert_int_eq(users_id_valid(id), 0);
    ck_assert_int_eq(users_id_valid("a"), 1);
    ck_assert_int_eq(users_id_valid("A-z_0.9:x"), 1);
    ck_assert_int_eq(users_id_valid(""), 0);
    ck_assert_int_eq(users_id_valid("a b"), 0);
    ck_assert_int_eq(users_id_valid("a@b"), 0);
    ck_assert_int_eq(users_id_valid("a/b"), 0);
    ck_assert_int_eq(users_id_valid("a'b"), 0);
}
END_TEST

START_TEST(test_names)
{
    for (int k = 0; k < USR_IN__COUNT; k++) {
        const char *type = users_input_type((users_input_kind_t)k);
        ck_assert_str_ne(type, "?");
        ck_assert_int_eq(users_input_kind(type), k);
    }
    ck_assert_int_eq(users_input_kind("registeruser"), -1);
    ck_assert_int_eq(users_input_kind(""), -1);
    ck_assert_int_eq(users_input_kind("UserRegistered"), -1);
    ck_assert_str_eq(users_input_type(USR_IN__COUNT), "?");
    for (int k = 0; k < USR_EV__COUNT; k++) {
        ck_assert_str_ne(users_event_type((users_event_kind_t)k), "?");
    }
    ck_assert_str_eq(users_event_type(USR_EV_COMMAND_REJECTED), "UserCommandRejected");
    ck_assert_str_eq(users_event_type(USR_EV__COUNT), "?");
    ck_assert_str_eq(users_status_name(USER_ACTIVE), "ACTIVE");
    ck_assert_str_eq(users_status_name(USER_INACTIVE), "INACTIVE");
}
END_TEST

/* ---- the batch's claims ---- */

/* The writes a batch derives from its claims, as "D email owner" / "I email owner" lines in
 * the order the store queues them (deletes first). */
static void claim_writes(const users_claims_t *c, char *out, size_t size)
{
    size_t len = 0;
    out[0] = '\0';
    for (int pass = 0; pass < 2; pass++) {
        for (size_t k = 0; k < c->cnt; k++) {
            const users_claim_t *cl = &c->slots[k];
            if (pass == 0 ? users_claim_released(cl) : users_claim_claimed(cl)) {
                len += (size_t)snprintf(out + len, size - len, "%s %s %s;", pass ? "I" : "D",
                                        cl->email, pass ? cl->owner : cl->before);
            }
        }
    }
}

/* A batch over users a, b, c: each starts as given (NULL: missing; else its email, claimed in
 * the database), commands run in order against one claims set. */
typedef struct world {
    user_t users[3];
    users_claim_t slots[16];
    users_claims_t claims;
} world_t;

static void world_init(world_t *w, const char *a_email, const char *b_email)
{
    memset(w, 0, sizeof(*w));
    users_claims_init(&w->claims);
    users_claims_reset(&w->claims, w->slots, 16);
    const char *ids[2] = {"a", "b"};
    const char *mails[2] = {a_email, b_email};
    for (int k = 0; k < 2; k++) {
        if (mails[k]) {
            users_input_t in = cmd(USR_IN_REGISTER_USER, ids[k], mails[k], ids[k]);
            users_event_t ev = apply(&w->users[k], NULL, &in);
            ck_assert_int_eq(ev.kind, USR_EV_USER_REGISTERED);
            ck_assert_int_eq(users_claims_load(&w->claims, w->users[k].email, ids[k]), 0);
        }
    }
}

static users_event_t world_run(world_t *w, users_input_kind_t kind, const char *id,
                               const char *email)
{
    int k = id[0] - 'a';
    users_input_t in = cmd(kind, id, email, id);
    return apply(&w->users[k], &w->claims, &in);
}

START_TEST(test_batch_two_registrations_one_email)
{
    world_t w;
    world_init(&w, NULL, NULL);
    ck_assert_int_eq(users_claims_track(&w.claims, "x@example.com"), 0);
    users_event_t ev = world_run(&w, USR_IN_REGISTER_USER, "a", "x@example.com");
    ck_assert_int_eq(ev.kind, USR_EV_USER_REGISTERED);
    ev = world_run(&w, USR_IN_REGISTER_USER, "b", " X@Example.com");
    ck_assert_int_eq(ev.kind, USR_EV_COMMAND_REJECTED);
    ck_assert_str_eq(ev.reason, "EMAIL_TAKEN");
    ck_assert_int_eq(w.users[1].status, USER_NONE);
    char writes[512];
    claim_writes(&w.claims, writes, sizeof(writes));
    ck_assert_str_eq(writes, "I x@example.com a;");
    users_claims_fini(&w.claims);
}
END_TEST

START_TEST(test_batch_released_then_taken)
{
    /* a changes e -> f, then b registers with e: b gets it */
    world_t w;
    world_init(&w, "e@example.com", NULL);
    ck_assert_int_eq(users_claims_track(&w.claims, "f@example.com"), 0);
    users_event_t ev = world_run(&w, USR_IN_CHANGE_EMAIL, "a", "f@example.com");
    ck_assert_int_eq(ev.kind, USR_EV_EMAIL_CHANGED);
    ck_assert_str_eq(ev.old_email, "e@example.com");
    ev = world_run(&w, USR_IN_REGISTER_USER, "b", "E@example.com");
    ck_assert_int_eq(ev.kind, USR_EV_USER_REGISTERED);
    ck_assert_str_eq(w.users[1].email, "e@example.com");
    char writes[512];
    claim_writes(&w.claims, writes, sizeof(writes));
    ck_assert_str_eq(writes, "D e@example.com a;I e@example.com b;I f@example.com a;");
    users_claims_fini(&w.claims);
}
END_TEST

START_TEST(test_batch_order_matters)
{
    /* b registers with e before a releases it: refused, log order decides */
    world_t w;
    world_init(&w, "e@example.com", NULL);
    users_event_t ev = world_run(&w, USR_IN_REGISTER_USER, "b", "e@example.com");
    ck_assert_str_eq(ev.reason, "EMAIL_TAKEN");
    ev = world_run(&w, USR_IN_CHANGE_EMAIL, "a", "f@example.com");
    ck_assert_int_eq(ev.kind, USR_EV_EMAIL_CHANGED);
    /* and the other way round, the email a took is not free for b */
    ev = world_run(&w, USR_IN_REGISTER_USER, "b", "f@example.com");
    ck_assert_str_eq(ev.reason, "EMAIL_TAKEN");
    char writes[512];
    claim_writes(&w.claims, writes, sizeof(writes));
    ck_assert_str_eq(writes, "D e@example.com a;I f@example.com a;");
    users_claims_fini(&w.claims);
}
END_TEST

START_TEST(test_batch_claimed_and_released)
{
    /* a registers with e and moves to f in the batch, b then takes e: e was never in the
     * database, so it is inserted once (for b) and never deleted */
    world_t w;
    world_init(&w, NULL, NULL);
    users_event_t ev = world_run(&w, USR_IN_REGISTER_USER, "a", "e@example.com");
    ck_assert_int_eq(ev.kind, USR_EV_USER_REGISTERED);
    ev = world_run(&w, USR_IN_CHANGE_EMAIL, "a", "f@example.com");
    ck_assert_int_eq(ev.kind, USR_EV_EMAIL_CHANGED);
    ev = world_run(&w, USR_IN_REGISTER_USER, "b", "e@example.com");
    ck_assert_int_eq(ev.kind, USR_EV_USER_REGISTERED);
    char writes[512];
    claim_writes(&w.claims, writes, sizeof(writes));
    ck_assert_str_eq(writes, "I e@example.com b;I f@example.com a;");

    /* claimed and released within the batch with nobody taking it: no write at all */
    world_t w2;
    world_init(&w2, NULL, NULL);
    world_run(&w2, USR_IN_REGISTER_USER, "a", "e@example.com");
    world_run(&w2, USR_IN_CHANGE_EMAIL, "a", "f@example.com");
    claim_writes(&w2.claims, writes, sizeof(writes));
    ck_assert_str_eq(writes, "I f@example.com a;");
    users_claims_fini(&w.claims);
    users_claims_fini(&w2.claims);
}
END_TEST

START_TEST(test_batch_round_trip_and_swap)
{
    /* a goes e -> f -> e: nothing to write */
    world_t w;
    world_init(&w, "e@example.com", NULL);
    ck_assert_int_eq(world_run(&w, USR_IN_CHANGE_EMAIL, "a", "f@example.com").kind,
                     USR_EV_EMAIL_CHANGED);
    ck_assert_int_eq(world_run(&w, USR_IN_CHANGE_EMAIL, "a", "e@example.com").kind,
                     USR_EV_EMAIL_CHANGED);
    char writes[512];
    claim_writes(&w.claims, writes, sizeof(writes));
    ck_assert_str_eq(writes, "");
    users_claims_fini(&w.claims);

    /* a and b swap emails through a third one: both rows move, deletes go first */
    world_init(&w, "e@example.com", "f@example.com");
    ck_assert_int_eq(world_run(&w, USR_IN_CHANGE_EMAIL, "a", "t@example.com").kind,
                     USR_EV_EMAIL_CHANGED);
    ck_assert_int_eq(world_run(&w, USR_IN_CHANGE_EMAIL, "b", "e@example.com").kind,
                     USR_EV_EMAIL_CHANGED);
    ck_assert_int_eq(world_run(&w, USR_IN_CHANGE_EMAIL, "a", "f@example.com").kind,
                     USR_EV_EMAIL_CHANGED);
    claim_writes(&w.claims, writes, sizeof(writes));
    ck_assert_str_eq(writes, "D e@example.com a;D f@example.com b;I e@example.com b;"
                             "I f@example.com a;");
    users_claims_fini(&w.claims);
}
END_TEST

START_TEST(test_claims_edges)
{
    users_claim_t slots[2];
    users_claims_t c;
    users_claims_init(&c);
    /* no room before a reset */
    ck_assert_int_eq(users_claims_track(&c, "a@b.co"), -1);
    ck_assert_str_eq(users_claims_owner(&c, "a@b.co"), "");
    ck_assert_str_eq(users_claims_owner(NULL, "a@b.co"), "");
    ck_assert(!users_claims_tracked(NULL, "a@b.co"));
    users_claims_reset(&c, slots, 2);
    ck_assert(!users_claims_tracked(&c, "a@b.co"));
    ck_assert_int_eq(users_claims_track(&c, "a@b.co"), 0);
    ck_assert(users_claims_tracked(&c, "a@b.co"));
    ck_assert(!users_claims_tracked(&c, "A@b.co"));        /* normalized emails only */
    ck_assert_int_eq(users_claims_track(&c, "a@b.co"), 0); /* once only */
    ck_assert_uint_eq(c.cnt, 1);
    ck_assert_int_eq(users_claims_load(&c, "a@b.co", "u-1"), 0);
    ck_assert_int_eq(users_claims_track(&c, "a@b.co"), 0); /* tracking keeps the owner */
    ck_assert_str_eq(users_claims_owner(&c, "a@b.co"), "u-1");
    ck_assert_int_eq(users_claims_load(&c, "c@d.co", "u-2"), 0);
    ck_assert(users_claims_tracked(&c, "c@d.co"));          /* a load gives a slot too */
    ck_assert_int_eq(users_claims_track(&c, "e@f.co"), -1); /* full */
    ck_assert_int_eq(users_claims_load(&c, "e@f.co", "u-3"), -1);

    /* an EmailChanged that names another user's email as old releases nothing */
    users_event_t ev;
    memset(&ev, 0, sizeof(ev));
    ev.kind = USR_EV_EMAIL_CHANGED;
    snprintf(ev.user_id, sizeof(ev.user_id), "u-1");
    snprintf(ev.old_email, sizeof(ev.old_email), "c@d.co");
    snprintf(ev.email, sizeof(ev.email), "a@b.co");
    ck_assert_int_eq(users_claims_apply(&c, &ev), 0);
    ck_assert_str_eq(users_claims_owner(&c, "c@d.co"), "u-2");
    ck_assert_str_eq(users_claims_owner(&c, "a@b.co"), "u-1");
    /* an event needing a slot when full fails */
    snprintf(ev.email, sizeof(ev.email), "g@h.co");
    ck_assert_int_eq(users_claims_apply(&c, &ev), -1);
    ev.kind = USR_EV_USER_DEACTIVATED;
    ck_assert_int_eq(users_claims_apply(&c, &ev), 0); /* claims nothing */

    /* a reset forgets everything */
    users_claims_reset(&c, slots, 2);
    ck_assert_uint_eq(c.cnt, 0);
    ck_assert_str_eq(users_claims_owner(&c, "a@b.co"), "");
    users_claims_fini(&c);
}
END_TEST

static const struct {
    const char *before, *owner;
    int released, claimed;
} claim_flags[] = {
    {"", "", 0, 0}, {"a", "a", 0, 0}, {"", "a", 0, 1}, {"a", "", 1, 0}, {"a", "b", 1, 1},
};

START_TEST(test_claim_flags)
{
    users_claim_t cl;
    memset(&cl, 0, sizeof(cl));
    snprintf(cl.email, sizeof(cl.email), "x@y.co");
    snprintf(cl.before, sizeof(cl.before), "%s", claim_flags[_i].before);
    snprintf(cl.owner, sizeof(cl.owner), "%s", claim_flags[_i].owner);
    ck_assert_int_eq(users_claim_released(&cl), claim_flags[_i].released);
    ck_assert_int_eq(users_claim_claimed(&cl), claim_flags[_i].claimed);
}
END_TEST

/* ---- property: batches against a simulated emails table ---- */

#define P_USERS 8
#define P_EMAILS 12 /* more than users: changes keep finding free emails */
#define P_BATCHES 3000
#define P_BATCH_MAX 24

static uint64_t rng_state;

static uint64_t rng(void)
{
    /* xorshift64*: fixed seed, so a failure replays */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

/* The database: users by index, and the emails table (email -> owner, "" = no row). */
typedef struct db {
    user_t users[P_USERS];
    char owner[P_EMAILS][USR_ID_MAX];
} db_t;

static const char *const p_emails[P_EMAILS] = {"e0@x.io", "e1@x.io", "e2@x.io",  "e3@x.io",
                                               "e4@x.io", "e5@x.io", "e6@x.io",  "e7@x.io",
                                               "e8@x.io", "e9@x.io", "e10@x.io", "e11@x.io"};
/* the same emails as commands may spell them */
static const char *const p_raw[P_EMAILS] = {" E0@x.io", "e1@X.IO ", "e2@x.io",     "\te3@x.io",
                                            "E4@X.io",  "e5@x.io",  "e6@x.IO",     "E7@x.io",
                                            "e8@x.io",  "e9@x.io ", " e10@x.io\n", "E11@X.IO"};

static int email_index(const char *email)
{
    for (int k = 0; k < P_EMAILS; k++) {
        if (!strcmp(p_emails[k], email)) {
            return k;
        }
    }
    return -1;
}

/* Every user holds the claim of its email, and every row belongs to the user holding it. */
static void check_db(const db_t *db, int batch)
{
    for (int e = 0; e < P_EMAILS; e++) {
        if (!db->owner[e][0]) {
            continue;
        }
        int u = db->owner[e][2] - '0';
        ck_assert_msg(db->users[u].status != USER_NONE && !strcmp(db->users[u].email, p_emails[e]),
                      "batch %d: %s claimed by u-%d who holds \"%s\"", batch, p_emails[e], u,
                      db->users[u].email);
    }
    for (int u = 0; u < P_USERS; u++) {
        if (db->users[u].status == USER_NONE) {
            continue;
        }
        int e = email_index(db->users[u].email);
        ck_assert_int_ge(e, 0);
        ck_assert_msg(!strcmp(db->owner[e], db->users[u].id), "batch %d: u-%d's %s owned by %s",
                      batch, u, p_emails[e], db->owner[e]);
    }
}

START_TEST(test_property_emails_unique)
{
    static db_t db;
    static users_claim_t slots[2 * P_BATCH_MAX];
    memset(&db, 0, sizeof(db));
    rng_state = 0x5eed0fe1a115ULL;
    users_claims_t c;
    users_claims_init(&c);
    int registered = 0, changed = 0, taken = 0, deactivated = 0, moved_in_batch = 0;
    char ids[P_USERS][16];
    for (int u = 0; u < P_USERS; u++) {
        snprintf(ids[u], sizeof(ids[u]), "u-%d", u);
    }
    for (int batch = 0; batch < P_BATCHES; batch++) {
        int n = 1 + (int)(rng() % P_BATCH_MAX);
        users_input_t ins[P_BATCH_MAX];
        int who[P_BATCH_MAX];
        for (int i = 0; i < n; i++) {
            who[i] = (int)(rng() % P_USERS);
            uint64_t r = rng() % 10;
            users_input_kind_t kind = r < 4   ? USR_IN_REGISTER_USER
                                      : r < 9 ? USR_IN_CHANGE_EMAIL
                                              : USR_IN_DEACTIVATE_USER;
            if (kind == USR_IN_DEACTIVATE_USER && who[i] < P_USERS - 2) {
                kind = USR_IN_CHANGE_EMAIL; /* most users stay active, and keep moving */
            }
            ins[i] = cmd(kind, ids[who[i]], p_raw[rng() % P_EMAILS], "N");
        }
        /* load, as the service does: the users, then the claims of the emails named and held */
        user_t users[P_USERS];
        memcpy(users, db.users, sizeof(users));
        users_claims_reset(&c, slots, 2 * P_BATCH_MAX);
        char email[USR_EMAIL_MAX];
        for (int i = 0; i < n; i++) {
            if (users_email_normalize(ins[i].email, email, sizeof(email))) {
                ck_assert_int_eq(users_claims_track(&c, email), 0);
            }
        }
        for (int u = 0; u < P_USERS; u++) {
            if (users[u].status != USER_NONE) {
                ck_assert_int_eq(users_claims_track(&c, users[u].email), 0);
            }
        }
        for (int e = 0; e < P_EMAILS; e++) {
            if (db.owner[e][0] && es_strmap_get(&c.index, p_emails[e]) != (size_t)-1) {
                ck_assert_int_eq(users_claims_load(&c, p_emails[e], db.owner[e]), 0);
            }
        }
        /* decide in log order */
        for (int i = 0; i < n; i++) {
            users_event_t ev = apply(&users[who[i]], &c, &ins[i]);
            registered += ev.kind == USR_EV_USER_REGISTERED;
            changed += ev.kind == USR_EV_EMAIL_CHANGED;
            deactivated += ev.kind == USR_EV_USER_DEACTIVATED;
            taken += !strcmp(ev.reason, "EMAIL_TAKEN");
        }
        /* write, as the store does: deletes (the row must be the owner's), then inserts (the
         * primary key must not be hit) */
        for (size_t k = 0; k < c.cnt; k++) {
            const users_claim_t *cl = &c.slots[k];
            int e = email_index(cl->email);
            ck_assert_int_ge(e, 0);
            if (users_claim_released(cl)) {
                ck_assert_str_eq(db.owner[e], cl->before);
                db.owner[e][0] = '\0';
            }
        }
        for (size_t k = 0; k < c.cnt; k++) {
            const users_claim_t *cl = &c.slots[k];
            int e = email_index(cl->email);
            if (users_claim_claimed(cl)) {
                ck_assert_msg(!db.owner[e][0], "batch %d: insert of %s hits the key (%s)", batch,
                              cl->email, db.owner[e]);
                snprintf(db.owner[e], sizeof(db.owner[e]), "%s", cl->owner);
                moved_in_batch += cl->before[0] != '\0';
            }
        }
        memcpy(db.users, users, sizeof(users));
        check_db(&db, batch);
    }
    users_claims_fini(&c);
    /* the run must have exercised the interesting paths */
    ck_assert_int_ge(registered, P_USERS / 2);
    ck_assert_int_gt(changed, 100);
    ck_assert_int_gt(taken, 100);
    ck_assert_int_gt(deactivated, 0);
    ck_assert_int_gt(moved_in_batch, 0); /* released and taken by another in one batch */
}
END_TEST

Suite *users_domain_suite(void);

Suite *users_domain_suite(void)
{
    Suite *s = suite_create("users_domain");

    TCase *tc = tcase_create("commands");
    tcase_add_loop_test(tc, test_command_rejected, 0, REJECTIONS_N);
    tcase_add_test(tc, test_long_ids);
    tcase_add_test(tc, test_register);
    tcase_add_test(tc, test_change_email);
    tcase_add_test(tc, test_deactivate);
    tcase_add_test(tc, test_duplicates_refused);
    tcase_add_test(tc, test_evolve);
    suite_add_tcase(s, tc);

    tc = tcase_create("values");
    tcase_add_loop_test(tc, test_email_normalize, 0, EMAILS_N);
    tcase_add_test(tc, test_email_lengths);
    tcase_add_test(tc, test_name_valid);
    tcase_add_test(tc, test_id_valid);
    tcase_add_test(tc, test_names);
    suite_add_tcase(s, tc);

    tc = tcase_create("claims");
    tcase_add_test(tc, test_batch_two_registrations_one_email);
    tcase_add_test(tc, test_batch_released_then_taken);
    tcase_add_test(tc, test_batch_order_matters);
    tcase_add_test(tc, test_batch_claimed_and_released);
    tcase_add_test(tc, test_batch_round_trip_and_swap);
    tcase_add_test(tc, test_claims_edges);
    tcase_add_loop_test(tc, test_claim_flags, 0,
                        (int)(sizeof(claim_flags) / sizeof(claim_flags[0])));
    suite_add_tcase(s, tc);

    tc = tcase_create("property");
    tcase_add_test(tc, test_property_emails_unique);
    suite_add_tcase(s, tc);
    return s;
}
