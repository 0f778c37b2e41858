/*
 * domain.h: the users context's rules, as pure functions (no I/O):
 *
 *   users_decide(state, claims, input) -> the event the command causes
 *   users_evolve(state, event)         -> the user after the event
 *   users_claims_apply(claims, event)  -> the email claims after the event
 *
 * Every command concerns exactly one user (its user_id). Emails are unique across users: the
 * claims of one batch (users_claims_t) hold the owner of every email the batch looks at, as
 * loaded from the database and then as moved by the batch's own events in log order, so two
 * commands of one batch never both take an email; the database's primary key settles races
 * between batches (docs/SHOP.md). At the end of a batch the claims say which rows to delete
 * (users_claim_released) and which to insert (users_claim_claimed).
 */
#ifndef USERS_DOMAIN_H
#define USERS_DOMAIN_H

#include <stddef.h>
#include <stdint.h>

#include "strmap.h"

#define USR_ID_LEN_MAX 100  /* a valid id has 1..100 characters */
#define USR_ID_MAX 128      /* room for any valid id (a longer one is cut, and invalid) */
#define USR_EMAIL_LEN_MIN 3 /* a valid email, normalized, has 3..254 characters */
#define USR_EMAIL_LEN_MAX 254
#define USR_EMAIL_MAX 256                         /* room for any valid email */
#define USR_NAME_CHARS_MAX 200                    /* a valid name has 1..200 characters (UTF-8) */
#define USR_NAME_MAX (4 * USR_NAME_CHARS_MAX + 4) /* room for any valid name, in bytes */
#define USR_REASON_MAX 32

typedef enum { USER_NONE = 0, USER_ACTIVE, USER_INACTIVE } user_status_t;

typedef struct user {
    char id[USR_ID_MAX];
    char email[USR_EMAIL_MAX]; /* normalized (trimmed, lower case); claimed by this user */
    char name[USR_NAME_MAX];
    user_status_t status;
    int64_t version; /* events of this user so far, rejections included */
} user_t;

typedef enum {
    USR_IN_REGISTER_USER = 0,
    USR_IN_CHANGE_EMAIL,
    USR_IN_DEACTIVATE_USER,
    USR_IN__COUNT
} users_input_kind_t;

/* A command as the rules need it. The strings are borrowed (the wiring points them into the
 * decoded payload, valid during the handler call) so that nothing is cut short before it is
 * validated; NULL reads as "". */
typedef struct users_input {
    users_input_kind_t kind;
    char command_id[40]; /* echoed in rejections */
    const char *user_id;
    const char *email; /* as sent: decide normalizes it */
    const char *name;
} users_input_t;

typedef enum {
    USR_EV_USER_REGISTERED = 0,
    USR_EV_EMAIL_CHANGED,
    USR_EV_USER_DEACTIVATED,
    USR_EV_COMMAND_REJECTED,
    USR_EV__COUNT
} users_event_kind_t;

typedef struct users_event {
    users_event_kind_t kind;
    char user_id[USR_ID_MAX];      /* the aggregate (cut short only when invalid) */
    char email[USR_EMAIL_MAX];     /* registered with / changed to, normalized */
    char old_email[USR_EMAIL_MAX]; /* EmailChanged: the released email */
    char name[USR_NAME_MAX];       /* UserRegistered */
    char reason[USR_REASON_MAX];   /* rejections */
    char command_id[40];
    const char *command_type; /* static string */
} users_event_t;

/* One email's claim during a batch. */
typedef struct users_claim {
    char email[USR_EMAIL_MAX]; /* normalized */
    char before[USR_ID_MAX];   /* its owner in the database when loaded, "" = free */
    char owner[USR_ID_MAX];    /* its owner after the batch's events so far, "" = free */
} users_claim_t;

/* The batch's email claims: slots in the caller's storage, found by email. */
typedef struct users_claims {
    users_claim_t *slots; /* borrowed */
    size_t cnt, cap;
    es_strmap_t index; /* email -> slot (owned) */
} users_claims_t;

/* Set up `c` empty, with no room yet (users_claims_reset gives it room). Use
 * users_claims_fini(). */
void users_claims_init(users_claims_t *c);
void users_claims_fini(users_claims_t *c);

/* Forget every claim and use slots[0..cap) (borrowed, the caller's storage, e.g. the batch's
 * arena) from now on. */
void users_claims_reset(users_claims_t *c, users_claim_t *slots, size_t cap);

/* Make sure `email` (normalized; copied) has a slot, free unless a later users_claims_load
 * says otherwise; a tracked email keeps what it had. Returns 0, or -1 when there is no room
 * or no memory. */
int users_claims_track(users_claims_t *c, const char *email);

/* Record the database's claim: `email` belongs to `owner` (both copied). Returns 0, or -1
 * when there is no room or no memory. */
int users_claims_load(users_claims_t *c, const char *email, const char *owner);

/* True when `email` has a slot (users_claims_track or users_claims_load gave it one). */
int users_claims_tracked(const users_claims_t *c, const char *email);

/* The owner of `email` now (borrowed from `c`), or "" when it is free or not tracked. */
const char *users_claims_owner(const users_claims_t *c, const char *email);

/* Move the claims as `ev` says: UserRegistered claims its email, EmailChanged releases the old
 * email (if it is the user's) and claims the new one; other events change nothing. An email
 * that was not tracked gets a slot, free in the database. Returns 0, or -1 when there is no
 * room or no memory (the claims are then incomplete: fail the batch). */
int users_claims_apply(users_claims_t *c, const users_event_t *ev);

/* What the batch must write for a claim, deletes first: the row (email, before) is deleted
 * when the email is no longer before's, and the row (email, owner) inserted when the email
 * has a new owner. An email released and taken again by the same user writes nothing; one
 * claimed and released within the batch writes nothing either. */
int users_claim_released(const users_claim_t *cl);
int users_claim_claimed(const users_claim_t *cl);

/* Decide what `in` causes for the user `state` (status USER_NONE when the user does not
 * exist), given the email `claims` (borrowed; NULL: every email is free). Always writes
 * exactly one event into *out: the success event or UserCommandRejected with a reason. */
void users_decide(const user_t *state, const users_claims_t *claims, const users_input_t *in,
                  users_event_t *out);

/* Apply `ev` to `state` in place. Rejections of a missing user leave it missing (version 0);
 * every other event counts in the version. */
void users_evolve(user_t *state, const users_event_t *ev);

/* Normalize `raw` (trim ASCII white space, lower-case A-Z) into out[size] (cut short if it
 * does not fit). Returns 1 when the result is a valid email (users_email_valid) and fitted,
 * else 0. */
int users_email_normalize(const char *raw, char *out, size_t size);

/* True when the normalized `email` has 3..254 characters, exactly one '@' with a non-empty
 * local part before it, a domain that contains a '.' but does not start or end with one nor
 * hold two in a row, and no space or control character. */
int users_email_valid(const char *email);

/* True when `name` has 1..200 characters (UTF-8), not all of them white space, and no
 * control character. */
int users_name_valid(const char *name);

/* True when `id` is usable as an id: 1..100 characters of [A-Za-z0-9._:-]. */
int users_id_valid(const char *id);

/* Names used on the wire and in the table. */
const char *users_event_type(users_event_kind_t kind);
const char *users_input_type(users_input_kind_t kind);
const char *users_status_name(user_status_t status);
/* The input kind for a type name, or -1. */
int users_input_kind(const char *type);

#endif
