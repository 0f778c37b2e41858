/*
 * groups.c: consumer group joins and syncs, checked before the mock cluster reads them.
 *
 * The mock runs a group with the assignment strategy its leader lists first, and aborts the
 * whole broker (an assertion) as soon as a member lists another one first: two instances of a
 * service, one started with `-X partition.assignment.strategy=roundrobin`, stopped every
 * program's Kafka. It also trusts a join's strategy count (none, or a negative one, aborts it
 * too). Kafka instead runs the group with a strategy every member offers, and refuses a member
 * that offers none of the group's (INCONSISTENT_GROUP_PROTOCOL).
 *
 * So a JoinGroup (v0-v5, the versions the mock takes) whose first strategy is not the first
 * strategy of a member still in that group, or that lists none, is not given to the mock:
 * longpoll.c closes its connection, the broker says why in its log, and the client tries again
 * (and gets in once the group's other members have gone). A member counts as in its group from
 * its JoinGroup until its connection sends a LeaveGroup, or until that connection has sent no
 * group request (join, sync, heartbeat, offset commit) for the group's session timeout and a
 * margin: the mock keeps a member whose connection closed that long too, and times every member
 * of a group out by the session timeout of the group's last join.
 *
 * The mock also keeps one answer per member: a JoinGroup or SyncGroup waits in the member until
 * the whole group has joined or synced, and another JoinGroup or SyncGroup naming that member
 * id meanwhile aborts the broker too (an assertion). A client reconnecting while its join
 * waits can send one: its new connection's join may be read before the old connection's end;
 * so can one that sends two at once (the mock reads every request a read brings, an answer
 * waiting or not). So such a request, while the first still waits for its answer and its
 * connection is open, is refused the same way; the client's retry finds the way free once the
 * answer went out or the old connection is gone.
 *
 * Everything runs in the mock's thread (longpoll.c's calls): no lock. With the long poll off
 * (ES_BROKER_LONGPOLL=0, for comparisons) requests pass unread, and unchecked.
 */
#include "broker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_OFFSET_COMMIT 8
#define KEY_JOIN_GROUP 11
#define KEY_HEARTBEAT 12
#define KEY_LEAVE_GROUP 13
#define KEY_SYNC_GROUP 14
#define JOIN_MAX_VERSION 5  /* the mock's last */
#define SYNC_MAX_VERSION 3  /* idem */
#define PROTOCOLS_MAX 1000  /* the mock's own limit */
#define MEMBERS_MAX 4096    /* members remembered, at most */
#define WAITING_MAX 4096    /* joins and syncs waiting for their answers, at most */
#define MARGIN_US 5000000LL /* past the session timeout, a member still counts this long */

typedef struct member {
    uint64_t conn; /* the connection it joined on (longpoll.c's serial) */
    char *group;
    size_t group_len;
    char *first; /* the strategy it lists first */
    size_t first_len;
    int64_t last_us;
    int64_t session_us; /* its group's session timeout as the mock has it: the last joiner's */
} member_t;

static struct {
    member_t *m;
    size_t cnt, cap;
} g;

/* A JoinGroup or SyncGroup naming a member id, given to the mock and not answered yet. */
typedef struct waiting {
    uint64_t conn;
    int32_t corr;
    char *group; /* group id, then member id, in one allocation */
    size_t group_len, member_len;
} waiting_t;

static struct {
    waiting_t *w;
    size_t cnt, cap;
} wt;

/* A client's name for the log: at most size - 1 bytes, quotes and unprintable bytes as '?'. */
static const char *printable(const unsigned char *s, size_t len, char *out, size_t size)
{
    size_t n = len < size - 1 ? len : size - 1;
    for (size_t i = 0; i < n; i++) {
        out[i] = s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\'' && s[i] != '\\'
                     ? (char)s[i]
                     : '?';
    }
    out[n] = '\0';
    return out;
}

/* Room for one more element in *arr (cnt used of *cap, each `size` bytes): 0, or -1 when out
 * of memory (*arr and *cap unchanged). */
static int room_for_one(void **arr, size_t *cap, size_t cnt, size_t size)
{
    if (cnt < *cap) {
        return 0;
    }
    size_t n = *cap ? *cap * 2 : 16;
    void *grown = realloc(*arr, n * size);
    if (!grown) {
        return -1;
    }
    *arr = grown;
    *cap = n;
    return 0;
}

static void member_drop(size_t i)
{
    free(g.m[i].group);
    free(g.m[i].first);
    g.m[i] = g.m[--g.cnt];
}

static void expire(int64_t now_us)
{
    for (size_t i = 0; i < g.cnt;) {
        if (now_us - g.m[i].last_us > g.m[i].session_us + MARGIN_US) {
            member_drop(i);
        } else {
            i++;
        }
    }
}

static void waiting_drop(size_t i)
{
    free(wt.w[i].group);
    wt.w[i] = wt.w[--wt.cnt];
}

/* Forget what waits on connections that are gone (their answers will never go out). */
static void waiting_sweep(void)
{
    for (size_t i = 0; i < wt.cnt;) {
        if (!broker_longpoll_conn_open(wt.w[i].conn)) {
            waiting_drop(i);
        } else {
            i++;
        }
    }
}

/* A JoinGroup or SyncGroup of connection `conn` names `member` of `group`: 1 when a request for
 * that member still waits for its answer on an open connection (the reason in why), else 0. */
static int member_busy(uint64_t conn, const unsigned char *group, size_t group_len,
                       const unsigned char *member, size_t member_len, char *why, size_t why_size)
{
    for (size_t i = 0; i < wt.cnt;) {
        waiting_t *w = &wt.w[i];
        if (w->group_len != group_len || w->member_len != member_len ||
            memcmp(w->group, group, group_len) ||
            memcmp(w->group + group_len, member, member_len)) {
            i++;
            continue;
        }
        /* a closed connection's answer is gone with it (the same connection's counts: the
         * mock reads every request a read brings, a join's answer waiting or not) */
        if (!broker_longpoll_conn_open(w->conn)) {
            waiting_drop(i);
            continue;
        }
        char gp[200], mp[200];
        snprintf(why, why_size,
                 "member '%s' of group '%s' already has a join or sync waiting for its answer%s: "
                 "the mock cluster holds one per member",
                 printable(member, member_len, mp, sizeof(mp)),
                 printable(group, group_len, gp, sizeof(gp)),
                 w->conn == conn ? "" : " on another connection");
        return 1;
    }
    return 0;
}

/* Remember a request the mock takes (correlation id `corr`) until its answer goes out. Returns
 * 1, or 0 when it cannot be remembered (the reason in why): it must not go to the mock then. */
static int waiting_add(uint64_t conn, int32_t corr, const unsigned char *group, size_t group_len,
                       const unsigned char *member, size_t member_len, char *why, size_t why_size)
{
    if (member_len == 0) {
        return 1; /* a new member: the mock makes up its id, no one else can name it yet */
    }
    if (wt.cnt == WAITING_MAX) {
        waiting_sweep();
    }
    if (wt.cnt == WAITING_MAX) {
        snprintf(why, why_size, "%d group requests already wait for their answers", WAITING_MAX);
        return 0;
    }
    void *arr = wt.w;
    if (room_for_one(&arr, &wt.cap, wt.cnt, sizeof(*wt.w)) != 0) {
        snprintf(why, why_size, "out of memory");
        return 0;
    }
    wt.w = arr;
    char *ids = malloc(group_len + member_len + 1);
    if (!ids) {
        snprintf(why, why_size, "out of memory");
        return 0;
    }
    memcpy(ids, group, group_len);
    memcpy(ids + group_len, member, member_len);
    ids[group_len + member_len] = '\0';
    wt.w[wt.cnt++] = (waiting_t){
        .conn = conn, .corr = corr, .group = ids, .group_len = group_len, .member_len = member_len};
    return 1;
}

static int sync_request(uint64_t conn, int16_t ver, int32_t corr, const unsigned char *p,
                        size_t len, size_t body, char *why, size_t why_size)
{
    if (ver < 0 || ver > SYNC_MAX_VERSION) {
        return 1; /* the mock answers UNSUPPORTED_VERSION without reading it */
    }
    wire_rd_t r = {.p = p, .len = len, .pos = body};
    const unsigned char *group, *member;
    size_t group_len, member_len;
    wire_str(&r, &group, &group_len);
    wire_skip(&r, 4); /* GenerationId */
    wire_str(&r, &member, &member_len);
    if (r.bad || !group || !member) {
        return 1; /* cut short (the mock cannot parse it either), or a member the mock does not
                   * know (it answers at once) */
    }
    return !member_busy(conn, group, group_len, member, member_len, why, why_size) &&
           waiting_add(conn, corr, group, group_len, member, member_len, why, why_size);
}

static int join_request(uint64_t conn, int16_t ver, int32_t corr, const unsigned char *p,
                        size_t len, size_t body, int64_t now_us, char *why, size_t why_size)
{
    if (ver < 0 || ver > JOIN_MAX_VERSION) {
        return 1; /* the mock answers UNSUPPORTED_VERSION without reading it */
    }
    wire_rd_t r = {.p = p, .len = len, .pos = body};
    const unsigned char *group, *s, *first = NULL, *member;
    size_t group_len, n, first_len = 0, member_len;
    wire_str(&r, &group, &group_len);
    int64_t session_ms = wire_int(&r, 4);
    if (ver >= 1) {
        wire_skip(&r, 4); /* RebalanceTimeoutMs */
    }
    wire_str(&r, &member, &member_len);
    if (ver >= 5) {
        wire_str(&r, &s, &n); /* GroupInstanceId */
    }
    wire_str(&r, &s, &n); /* ProtocolType */
    int64_t cnt = wire_int(&r, 4);
    for (int64_t i = 0; i < cnt && i < PROTOCOLS_MAX && !r.bad; i++) {
        wire_str(&r, &s, &n);
        if (i == 0) {
            first = s;
            first_len = n;
        }
        int64_t meta = wire_int(&r, 4);
        if (meta > 0) {
            wire_skip(&r, (size_t)meta);
        }
    }
    if (r.bad || !group || cnt < 1 || cnt > PROTOCOLS_MAX || !first) {
        snprintf(why, why_size, "a JoinGroup the mock cannot take (%s)",
                 r.bad || !group ? "malformed" : "no assignment strategy, or over 1000");
        return 0;
    }
    expire(now_us);
    for (size_t i = 0; i < g.cnt; i++) {
        const member_t *m = &g.m[i];
        if (m->conn != conn && m->group_len == group_len && !memcmp(m->group, group, group_len) &&
            (m->first_len != first_len || memcmp(m->first, first, first_len))) {
            char gp[200], mine[64], theirs[64];
            snprintf(
                why, why_size,
                "a member of group '%s' lists assignment strategy '%s' first, and this "
                "join '%s': the mock cluster runs a group only when all its members "
                "list the same one first (Kafka would pick one they all offer)",
                printable(group, group_len, gp, sizeof(gp)),
                printable((const unsigned char *)m->first, m->first_len, theirs, sizeof(theirs)),
                printable(first, first_len, mine, sizeof(mine)));
            return 0;
        }
    }
    if (member_busy(conn, group, group_len, member, member_len, why, why_size)) {
        return 0;
    }
    size_t i;
    for (i = 0; i < g.cnt; i++) {
        if (g.m[i].conn == conn && g.m[i].group_len == group_len &&
            !memcmp(g.m[i].group, group, group_len)) {
            break;
        }
    }
    if (i == g.cnt) {
        if (g.cnt == MEMBERS_MAX) {
            snprintf(why, why_size, "%d group members already: no more are taken", MEMBERS_MAX);
            return 0;
        }
        void *arr = g.m;
        if (room_for_one(&arr, &g.cap, g.cnt, sizeof(*g.m)) != 0) {
            snprintf(why, why_size, "out of memory");
            return 0;
        }
        g.m = arr;
        member_t *m = &g.m[g.cnt];
        memset(m, 0, sizeof(*m));
        m->group = malloc(group_len + 1);
        if (!m->group) {
            snprintf(why, why_size, "out of memory");
            return 0;
        }
        memcpy(m->group, group, group_len);
        m->group[group_len] = '\0';
        m->group_len = group_len;
        m->conn = conn;
        g.cnt++;
    }
    member_t *m = &g.m[i];
    char *f = realloc(m->first, first_len + 1);
    if (!f) {
        member_drop(i);
        snprintf(why, why_size, "out of memory");
        return 0;
    }
    memcpy(f, first, first_len);
    f[first_len] = '\0';
    m->first = f;
    m->first_len = first_len;
    m->last_us = now_us;
    /* the mock times every member of a group out by the last joiner's session timeout */
    for (size_t k = 0; k < g.cnt; k++) {
        if (g.m[k].group_len == group_len && !memcmp(g.m[k].group, group, group_len)) {
            g.m[k].session_us = (session_ms > 0 ? session_ms : 0) * 1000;
        }
    }
    return waiting_add(conn, corr, group, group_len, member, member_len, why, why_size);
}

void broker_groups_seen(uint64_t conn, int16_t key, int64_t now_us)
{
    if (key != KEY_OFFSET_COMMIT && key != KEY_HEARTBEAT && key != KEY_LEAVE_GROUP &&
        key != KEY_SYNC_GROUP) {
        return;
    }
    for (size_t i = 0; i < g.cnt;) {
        if (g.m[i].conn == conn && key == KEY_LEAVE_GROUP) {
            member_drop(i);
            continue;
        }
        if (g.m[i].conn == conn) {
            g.m[i].last_us = now_us;
        }
        i++;
    }
}

int broker_groups_check(uint64_t conn, int16_t key, int16_t ver, int32_t corr,
                        const unsigned char *p, size_t len, size_t body, int64_t now_us, char *why,
                        size_t why_size)
{
    if (key == KEY_JOIN_GROUP) {
        return join_request(conn, ver, corr, p, len, body, now_us, why, why_size);
    }
    if (key == KEY_SYNC_GROUP) {
        return sync_request(conn, ver, corr, p, len, body, why, why_size);
    }
    return 1;
}

void broker_groups_answered(uint64_t conn, int16_t key, int32_t corr)
{
    if (key != KEY_JOIN_GROUP && key != KEY_SYNC_GROUP) {
        return;
    }
    for (size_t i = 0; i < wt.cnt; i++) {
        if (wt.w[i].conn == conn && wt.w[i].corr == corr) {
            waiting_drop(i);
            return;
        }
    }
}

int broker_groups_checks(int16_t key)
{
    return key == KEY_JOIN_GROUP || key == KEY_SYNC_GROUP;
}

void broker_groups_stop(void)
{
    while (g.cnt > 0) {
        member_drop(0);
    }
    free(g.m);
    memset(&g, 0, sizeof(g));
    while (wt.cnt > 0) {
        waiting_drop(0);
    }
    free(wt.w);
    memset(&wt, 0, sizeof(wt));
}
