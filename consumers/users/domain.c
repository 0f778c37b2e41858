/*
 * domain.c: the users context's decide/evolve, email rules and the batch's email claims (see
 * domain.h). Pure: no I/O, no clock.
 */
#include "domain.h"

#include <string.h>

#include "str.h"

static const char *const input_types[USR_IN__COUNT] = {"RegisterUser", "ChangeEmail",
                                                       "DeactivateUser"};

static const char *const event_types[USR_EV__COUNT] = {"UserRegistered", "EmailChanged",
                                                       "UserDeactivated", "UserCommandRejected"};

const char *users_event_type(users_event_kind_t kind)
{
    return kind < USR_EV__COUNT ? event_types[kind] : "?";
}

const char *users_input_type(users_input_kind_t kind)
{
    return kind < USR_IN__COUNT ? input_types[kind] : "?";
}

const char *users_status_name(user_status_t status)
{
    return status == USER_INACTIVE ? "INACTIVE" : "ACTIVE";
}

int users_input_kind(const char *type)
{
    for (int i = 0; i < USR_IN__COUNT; i++) {
        if (!strcmp(type, input_types[i])) {
            return i;
        }
    }
    return -1;
}

int users_id_valid(const char *id)
{
    return es_str_id_valid(id, strnlen(id, USR_ID_LEN_MAX + 1), USR_ID_LEN_MAX);
}

/* ---- emails and names ---- */

static int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static int is_control(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

int users_email_valid(const char *email)
{
    size_t len = strnlen(email, USR_EMAIL_LEN_MAX + 1);
    if (len < USR_EMAIL_LEN_MIN || len > USR_EMAIL_LEN_MAX) {
        return 0;
    }
    const char *at = NULL;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)email[i];
        if (c == ' ' || is_control(c)) {
            return 0;
        }
        if (c == '@') {
            if (at) {
                return 0; /* a second '@' */
            }
            at = email + i;
        }
    }
    if (!at || at == email) {
        return 0; /* no '@', or an empty local part */
    }
    const char *domain = at + 1;
    size_t dlen = len - (size_t)(domain - email);
    if (dlen < 3 || domain[0] == '.' || domain[dlen - 1] == '.' || !memchr(domain, '.', dlen)) {
        return 0;
    }
    for (size_t i = 1; i < dlen; i++) {
        if (domain[i] == '.' && domain[i - 1] == '.') {
            return 0; /* an empty label */
        }
    }
    return 1;
}

int users_email_normalize(const char *raw, char *out, size_t size)
{
    if (!raw) {
        raw = "";
    }
    while (is_space((unsigned char)*raw)) {
        raw++;
    }
    size_t len = strlen(raw);
    while (len > 0 && is_space((unsigned char)raw[len - 1])) {
        len--;
    }
    size_t n = len < size - 1 ? len : size - 1;
    for (size_t i = 0; i < n; i++) {
        char c = raw[i];
        out[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
    }
    out[n] = '\0';
    return n == len && users_email_valid(out);
}

int users_name_valid(const char *name)
{
    size_t chars = 0;
    int visible = 0;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        if (is_control(*p)) {
            return 0;
        }
        if ((*p & 0xC0) != 0x80) {
            chars++; /* not a UTF-8 continuation byte: a new character */
        }
        if (!is_space(*p)) {
            visible = 1;
        }
        if (chars > USR_NAME_CHARS_MAX ||
            (size_t)(p - (const unsigned char *)name) >= USR_NAME_MAX - 1) {
            return 0;
        }
    }
    return visible;
}

/* ---- the batch's claims ---- */

void users_claims_init(users_claims_t *c)
{
    memset(c, 0, sizeof(*c));
    es_strmap_init(&c->index);
}

void users_claims_fini(users_claims_t *c)
{
    es_strmap_fini(&c->index);
    c->slots = NULL;
    c->cnt = c->cap = 0;
}

void users_claims_reset(users_claims_t *c, users_claim_t *slots, size_t cap)
{
    es_strmap_clear(&c->index);
    c->slots = slots;
    c->cap = slots ? cap : 0;
    c->cnt = 0;
}

/* The slot of `email`, added (free) when missing; NULL when there is no room or memory. */
static users_claim_t *claim_slot(users_claims_t *c, const char *email)
{
    size_t i = es_strmap_get(&c->index, email);
    if (i != (size_t)-1) {
        return &c->slots[i];
    }
    if (c->cnt >= c->cap || es_strmap_put(&c->index, email, c->cnt) != 0) {
        return NULL;
    }
    users_claim_t *cl = &c->slots[c->cnt++];
    es_str_copy(cl->email, sizeof(cl->email), email);
    cl->before[0] = cl->owner[0] = '\0';
    return cl;
}

int users_claims_track(users_claims_t *c, const char *email)
{
    return claim_slot(c, email) ? 0 : -1;
}

int users_claims_load(users_claims_t *c, const char *email, const char *owner)
{
    users_claim_t *cl = claim_slot(c, email);
    if (!cl) {
        return -1;
    }
    es_str_copy(cl->before, sizeof(cl->before), owner);
    es_str_copy(cl->owner, sizeof(cl->owner), owner);
    return 0;
}

int users_claims_tracked(const users_claims_t *c, const char *email)
{
    return c && es_strmap_get(&c->index, email) != (size_t)-1;
}

const char *users_claims_owner(const users_claims_t *c, const char *email)
{
    size_t i = c ? es_strmap_get(&c->index, email) : (size_t)-1;
    return i == (size_t)-1 ? "" : c->slots[i].owner;
}

int users_claims_apply(users_claims_t *c, const users_event_t *ev)
{
    users_claim_t *cl;
    if (ev->kind != USR_EV_USER_REGISTERED && ev->kind != USR_EV_EMAIL_CHANGED) {
        return 0;
    }
    if (ev->kind == USR_EV_EMAIL_CHANGED) {
        if (!(cl = claim_slot(c, ev->old_email))) {
            return -1;
        }
        if (!strcmp(cl->owner, ev->user_id)) {
            cl->owner[0] = '\0'; /* only the user's own claim is theirs to release */
        }
    }
    if (!(cl = claim_slot(c, ev->email))) {
        return -1;
    }
    es_str_copy(cl->owner, sizeof(cl->owner), ev->user_id);
    return 0;
}

int users_claim_released(const users_claim_t *cl)
{
    return cl->before[0] && strcmp(cl->before, cl->owner) != 0;
}

int users_claim_claimed(const users_claim_t *cl)
{
    return cl->owner[0] && strcmp(cl->before, cl->owner) != 0;
}

/* ---- decide and evolve ---- */

static const char *s(const char *p)
{
    return p ? p : "";
}

/* Copy `src` into dst[size] like es_str_copy, but never cut a UTF-8 character in two (an
 * over-long invalid id is echoed cut short, and must stay valid UTF-8 to be sent). */
static void copy_utf8(char *dst, size_t size, const char *src)
{
    es_str_copy(dst, size, src);
    size_t n = strlen(dst);
    if (src[n] != '\0') {
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80) {
            n--; /* src[n] continues a character: cut before the character's first byte */
        }
        dst[n] = '\0';
    }
}

static void reject(const char *reason, users_event_t *out)
{
    out->kind = USR_EV_COMMAND_REJECTED;
    es_str_copy(out->reason, sizeof(out->reason), reason);
}

/* The rule shared by commands that need an active user. */
static const char *require_active(const user_t *st)
{
    if (st->status == USER_NONE) {
        return "USER_NOT_FOUND";
    }
    if (st->status == USER_INACTIVE) {
        return "USER_INACTIVE";
    }
    return NULL;
}

/* True when `email` belongs to a user other than `user_id`. */
static int taken_by_other(const users_claims_t *claims, const char *email, const char *user_id)
{
    const char *owner = users_claims_owner(claims, email);
    return owner[0] && strcmp(owner, user_id) != 0;
}

void users_decide(const user_t *state, const users_claims_t *claims, const users_input_t *in,
                  users_event_t *out)
{
    const char *user_id = s(in->user_id);
    const char *why;
    memset(out, 0, sizeof(*out));
    copy_utf8(out->user_id, sizeof(out->user_id), user_id);
    es_str_copy(out->command_id, sizeof(out->command_id), in->command_id);
    out->command_type = users_input_type(in->kind);
    if (!users_id_valid(user_id)) {
        reject("INVALID_ID", out);
        return;
    }
    switch (in->kind) {
    case USR_IN_REGISTER_USER:
        if (state->status != USER_NONE) {
            reject("USER_EXISTS", out);
        } else if (!users_email_normalize(in->email, out->email, sizeof(out->email))) {
            reject("INVALID_EMAIL", out);
        } else if (!users_name_valid(s(in->name))) {
            reject("INVALID_NAME", out);
        } else if (taken_by_other(claims, out->email, user_id)) {
            reject("EMAIL_TAKEN", out);
        } else {
            out->kind = USR_EV_USER_REGISTERED;
            es_str_copy(out->name, sizeof(out->name), s(in->name));
            return;
        }
        break;
    case USR_IN_CHANGE_EMAIL:
        if ((why = require_active(state))) {
            reject(why, out);
        } else if (!users_email_normalize(in->email, out->email, sizeof(out->email))) {
            reject("INVALID_EMAIL", out);
        } else if (!strcmp(out->email, state->email)) {
            reject("EMAIL_UNCHANGED", out);
        } else if (taken_by_other(claims, out->email, user_id)) {
            reject("EMAIL_TAKEN", out);
        } else {
            out->kind = USR_EV_EMAIL_CHANGED;
            es_str_copy(out->old_email, sizeof(out->old_email), state->email);
            return;
        }
        break;
    case USR_IN_DEACTIVATE_USER:
        if ((why = require_active(state))) {
            reject(why, out);
        } else {
            out->kind = USR_EV_USER_DEACTIVATED;
            return;
        }
        break;
    default:
        reject("UNKNOWN_COMMAND", out);
        return;
    }
    out->email[0] = '\0'; /* a rejection carries no email */
}

void users_evolve(user_t *state, const users_event_t *ev)
{
    switch (ev->kind) {
    case USR_EV_USER_REGISTERED:
        es_str_copy(state->id, sizeof(state->id), ev->user_id);
        es_str_copy(state->email, sizeof(state->email), ev->email);
        es_str_copy(state->name, sizeof(state->name), ev->name);
        state->status = USER_ACTIVE;
        break;
    case USR_EV_EMAIL_CHANGED:
        es_str_copy(state->email, sizeof(state->email), ev->email);
        break;
    case USR_EV_USER_DEACTIVATED:
        state->status = USER_INACTIVE;
        break;
    default: /* rejections change nothing but the stream position */
        break;
    }
    if (state->status != USER_NONE) {
        state->version++;
    }
}
