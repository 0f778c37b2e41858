/*
 * longpoll.c: fetches that wait for records, as Kafka's do.
 *
 * The mock cluster answers a fetch that finds nothing only when the fetch's max wait is up,
 * even if records arrive meanwhile. So consumers had to ask with a 1 ms wait: each of them
 * sent a thousand fetches a second, busy or idle (half a core for a stack at rest), and a
 * record waited on average half a millisecond a hop for the held answer to come back.
 *
 * Kafka answers a waiting fetch as soon as records arrive, and the dev broker now does too.
 * Like accept() (nodelay.c), this executable defines poll(), recvmsg() and sendmsg(): calls
 * from the mock's thread on the connections it accepted go through this file, every other
 * call goes straight to the C library. On the way it reads three kinds of frames and passes
 * everything else untouched:
 *   - a Fetch request (v0-v11) reaches the mock with its max wait set to 0, and the mock reads
 *     nothing more from that connection until the fetch is answered (Kafka too answers a
 *     connection's requests one at a time, in order);
 *   - the mock's answer to it, when it has neither records nor errors, is not sent: the
 *     request is read by the mock again once records reach one of its partitions (no sooner
 *     than a gap after it last went, half a millisecond by default, so that a busy consumer
 *     takes a few records in one fetch rather than one per fetch; for a fetch that asks
 *     for MinBytes, once that many bytes of message sets came since it last went, as Kafka
 *     counts them, when fill.c can read the mock's lists), and once more when the client's
 *     wait is up, or when the client sends another request behind it; whatever the mock says
 *     then goes to the client;
 *   - a Produce response says which partitions were just appended to (memjournal.c journals
 *     their new records before it goes);
 *   - a Fetch answer that carries records goes through fill.c, which may add the message sets
 *     that follow them; what of a filled answer the socket does not take at once is sent
 *     before anything else on that connection (poll() asks for POLLOUT for it).
 * Everything runs in the mock's one thread: no extra thread, no lock.
 * ES_BROKER_LONGPOLL=0 turns this off (comparisons only: clients then need a short
 * fetch.wait.max.ms again); ES_BROKER_FETCH_GAP_US sets the gap (main.c reads both).
 */
#define _GNU_SOURCE /* RTLD_NEXT, ppoll */

#include "broker.h"
#include "log.h"
#include "mocklayout.h"

#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>

#define KEY_PRODUCE 0
#define KEY_FETCH 1
#define KEY_METADATA 3
/* Produce and Metadata requests are kept whole up to this, and checked (request_sane) */
#define CHECKED_WHOLE_MAX (16u << 20)
#define FETCH_MAX_VERSION 11   /* the last version without tagged fields */
#define PRODUCE_MAX_VERSION 8  /* idem */
#define WHOLE_MAX (1u << 20)   /* fetch requests and answers larger than this are not held */
#define PREFIX_MAX 512         /* bytes of any other request kept to read its header */
#define UNKNOWN_TOPICS_MAX 256 /* names of no topic of the broker's remembered, at most */
#define ACKS0_POKE_US 1000     /* held fetches look again this soon after an acks=0 produce */
/* requests a connection may have unanswered before it is read no more, until answers go out
 * (as Kafka reads a connection again once its answer is sent): a client that never reads its
 * answers made the mock queue them without end */
#define PENDING_READ_MAX 256

/* A request read by the mock and not answered yet. */
typedef struct lp_pending {
    int32_t corr;
    int16_t key, ver;
    int held;                    /* the connection's long-polled fetch */
    int64_t max_bytes, part_max; /* a fetch's limits (fill.c), 0 = unknown */
} lp_pending_t;

typedef struct lp_part {
    uint32_t topic; /* index in the topic table */
    int32_t partition;
} lp_part_t;

/* One connection the mock accepted, by its socket. */
typedef struct lp_conn {
    /* the request being read: its bytes so far (all of a fetch, the prefix of others) */
    unsigned char *rq;
    size_t rq_off, rq_len, rq_kept, rq_cap;
    int rq_fetch;               /* a Fetch this file may hold */
    int rq_check;               /* a Produce or Metadata, kept whole to be checked */
    int poisoned;               /* a request the mock must not parse: the connection goes */
    unsigned char *wait_at[4];  /* where its max wait lies in the mock's buffer */
    unsigned char wait_orig[4]; /* and what it was */
    int wait_n;                 /* bytes of it set to 0 so far */
    size_t rs_off, rs_len;      /* the answer being sent */
    lp_pending_t *pending;
    size_t pend_head, pend_cnt, pend_cap;
    /* the fetch being long-polled: the connection is `muted` while it is unanswered */
    int muted, parked, final;
    unsigned char *req; /* its request as the mock reads it (max wait 0) */
    size_t req_len, req_cap, inject_off;
    int injecting; /* the mock is reading req again */
    int16_t req_ver;
    int64_t max_bytes, part_max; /* its limits */
    int64_t min_bytes;           /* its MinBytes: records it waits for, unless its wait is up */
    uint64_t sent_bytes;         /* the bytes appended to its partitions when last read */
    lp_part_t *parts;
    size_t part_cnt, part_cap;
    int64_t deadline_us; /* the client's wait is up */
    int64_t sent_us;     /* last read by the mock */
    int64_t wake_us;     /* records arrived: read again at this time (0: none yet) */
    uint64_t sent_seq;   /* the append count when last read */
    uint64_t seen_seq;   /* the append count when last compared */
    struct lp_conn *park_prev, *park_next;
    int own; /* a client of this process (journaler, restore): read even when quiet */
    int fd;
    dev_t dev; /* its socket, to tell it from a file that took its number once it closed */
    ino_t ino;
    uint64_t serial; /* this connection, unlike its fd, is never another's (groups.c) */
    /* a filled answer (fill.c) the socket did not take whole yet: sent before anything else */
    unsigned char *out;
    size_t out_off, out_len;
} lp_conn_t;

/* What reached one partition of a topic. */
typedef struct lp_tpart {
    uint64_t seq;    /* the append count when records last arrived */
    uint64_t bytes;  /* bytes of message sets appended since start (when fill.c reads them) */
    int64_t counted; /* the last offset counted in `bytes` (-1: none) */
} lp_tpart_t;

typedef struct lp_topic {
    char *name;
    size_t name_len;
    int fill_idx; /* its number in fill.c's table (memjournal.c's too), or -1 */
    lp_tpart_t *parts;
    int32_t part_cnt;
} lp_topic_t;

typedef int (*poll_fn)(struct pollfd *, nfds_t, int);
typedef ssize_t (*recvmsg_fn)(int, struct msghdr *, int);
typedef ssize_t (*sendmsg_fn)(int, const struct msghdr *, int);

/* Set before the mock starts; afterwards only the mock's thread touches the rest. */
static struct {
    int enabled;
    int64_t gap_us;
    lp_conn_t **by_fd;
    int fd_cap;
    lp_conn_t *parked;
    lp_topic_t *topics;
    size_t topic_cnt, topic_cap;
    size_t unknown_cnt; /* of them, names the broker has no topic of (UNKNOWN_TOPICS_MAX) */
    uint64_t seq;
    int64_t poke_us;
    int *masked; /* poll(): entries whose POLLIN was hidden */
    size_t masked_cap;
} lp;

static _Thread_local int mock_thread;
static pthread_once_t resolve_once = PTHREAD_ONCE_INIT;
static poll_fn real_poll;
static recvmsg_fn real_recvmsg;
static sendmsg_fn real_sendmsg;
static atomic_int quiet; /* stopping: other processes' requests are no longer read */
static atomic_long stat_held, stat_woken, stat_expired, stat_cut, stat_conns, stat_refused;

static void resolve(void)
{
    void *sym = dlsym(RTLD_NEXT, "poll");
    memcpy(&real_poll, &sym, sizeof(real_poll));
    sym = dlsym(RTLD_NEXT, "recvmsg");
    memcpy(&real_recvmsg, &sym, sizeof(real_recvmsg));
    sym = dlsym(RTLD_NEXT, "sendmsg");
    memcpy(&real_sendmsg, &sym, sizeof(real_sendmsg));
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static lp_conn_t *conn_of(int fd)
{
    return mock_thread && fd >= 0 && fd < lp.fd_cap ? lp.by_fd[fd] : NULL;
}

/*
 * Topics and the append count per partition
 */

static lp_topic_t *topic_get(const unsigned char *name, size_t len, uint32_t *idx)
{
    for (size_t i = 0; i < lp.topic_cnt; i++) {
        if (lp.topics[i].name_len == len && !memcmp(lp.topics[i].name, name, len)) {
            *idx = (uint32_t)i;
            return &lp.topics[i];
        }
    }
    /* a client may name any topic, and every name kept is a slower lookup for good: names the
     * broker has no topic of are kept only up to UNKNOWN_TOPICS_MAX (a fetch naming another
     * one is not held, a produce to another one wakes nothing) */
    int fill_idx = broker_fill_topic(name, len);
    if (fill_idx < 0 && lp.unknown_cnt >= UNKNOWN_TOPICS_MAX) {
        return NULL;
    }
    if (lp.topic_cnt == lp.topic_cap) {
        size_t cap = lp.topic_cap ? lp.topic_cap * 2 : 64;
        lp_topic_t *t = realloc(lp.topics, cap * sizeof(*t));
        if (!t) {
            return NULL;
        }
        lp.topics = t;
        lp.topic_cap = cap;
    }
    lp_topic_t *t = &lp.topics[lp.topic_cnt];
    memset(t, 0, sizeof(*t));
    t->name = malloc(len + 1);
    if (!t->name) {
        return NULL;
    }
    memcpy(t->name, name, len);
    t->name[len] = '\0';
    t->name_len = len;
    t->fill_idx = fill_idx;
    lp.unknown_cnt += fill_idx < 0;
    *idx = (uint32_t)lp.topic_cnt++;
    return t;
}

/* The next name of a topic array, interned: its entry, or NULL when it is missing or
 * unreadable (r->bad) or memory ran out. */
static lp_topic_t *rd_topic(wire_rd_t *r, uint32_t *idx)
{
    const unsigned char *name;
    size_t len;
    wire_str(r, &name, &len);
    return !r->bad && name ? topic_get(name, len, idx) : NULL;
}

static uint64_t seq_of(const lp_part_t *pt)
{
    const lp_topic_t *t = &lp.topics[pt->topic];
    return pt->partition >= 0 && pt->partition < t->part_cnt ? t->parts[pt->partition].seq : 0;
}

/* Count the message sets appended to a partition since it was last counted, when fill.c can
 * read the mock's list of them. */
static void bytes_count(lp_topic_t *t, int32_t partition)
{
    const unsigned char *mpart =
        t->fill_idx >= 0 ? broker_fill_partition((size_t)t->fill_idx, partition) : NULL;
    if (!mpart) {
        return;
    }
    lp_tpart_t *tp = &t->parts[partition];
    const unsigned char *head = mock_head(mpart), *m = mock_last(mpart);
    int64_t newest = m != head ? mset_last(m) : -1;
    for (; m != head && mset_last(m) > tp->counted; m = mset_prev(m)) {
        tp->bytes += (uint64_t)mset_len(m);
    }
    tp->counted = newest > tp->counted ? newest : tp->counted;
}

/* Records reached `partition` of `t`: note it, and count their bytes. */
static void appended(lp_topic_t *t, int32_t partition)
{
    if (partition < 0 || partition > 1000000) {
        return;
    }
    if (partition >= t->part_cnt) {
        int32_t cnt = partition + 1 > 2 * t->part_cnt ? partition + 1 : 2 * t->part_cnt;
        lp_tpart_t *a = realloc(t->parts, (size_t)cnt * sizeof(*a));
        if (!a) {
            return;
        }
        for (int32_t i = t->part_cnt; i < cnt; i++) {
            a[i] = (lp_tpart_t){.counted = -1};
        }
        t->parts = a;
        t->part_cnt = cnt;
    }
    t->parts[partition].seq = lp.seq;
    bytes_count(t, partition);
}

/* The bytes appended to the fetch's partitions so far, in *sum; 0, or -1 when some of its
 * partitions are not counted (a topic fill.c does not read). */
static int bytes_of(const lp_conn_t *c, uint64_t *sum)
{
    *sum = 0;
    for (size_t i = 0; i < c->part_cnt; i++) {
        const lp_topic_t *t = &lp.topics[c->parts[i].topic];
        if (t->fill_idx < 0 || !broker_fill_active()) {
            return -1;
        }
        int32_t p = c->parts[i].partition;
        *sum += p >= 0 && p < t->part_cnt ? t->parts[p].bytes : 0;
    }
    return 0;
}

/* The fetch's MinBytes have arrived since it was last read (or cannot be counted). */
static int min_bytes_reached(const lp_conn_t *c)
{
    uint64_t sum;
    return c->min_bytes <= 1 || bytes_of(c, &sum) != 0 ||
           sum - c->sent_bytes >= (uint64_t)c->min_bytes;
}

/* Remember what reached the fetch's partitions as it goes to the mock. */
static void mark_sent(lp_conn_t *c)
{
    c->sent_seq = c->seen_seq = lp.seq;
    c->sent_us = now_us();
    c->wake_us = 0;
    if (c->min_bytes <= 1 || bytes_of(c, &c->sent_bytes) != 0) {
        c->sent_bytes = 0; /* not counted: min_bytes_reached() does not look */
    }
}

/* Records reached one of the fetch's partitions after it was sent. */
static int appended_since_sent(const lp_conn_t *c)
{
    for (size_t i = 0; i < c->part_cnt; i++) {
        if (seq_of(&c->parts[i]) > c->sent_seq) {
            return 1;
        }
    }
    return 0;
}

/* Room for one more element in a growing array. Returns 0, or -1 when out of memory. */
static int room_for_one(void **arr, size_t *cap, size_t cnt, size_t elem, size_t first)
{
    if (cnt < *cap) {
        return 0;
    }
    size_t n = *cap ? *cap * 2 : first;
    void *a = realloc(*arr, n * elem);
    if (!a) {
        return -1;
    }
    *arr = a;
    *cap = n;
    return 0;
}

/*
 * Requests waiting for their answers
 */

static int pending_push(lp_conn_t *c, int32_t corr, int16_t key, int16_t ver, int held,
                        int64_t max_bytes, int64_t part_max)
{
    if (c->pend_cnt == 0) {
        c->pend_head = 0;
    }
    if (c->pend_head > 0 && c->pend_head + c->pend_cnt == c->pend_cap) {
        memmove(c->pending, c->pending + c->pend_head, c->pend_cnt * sizeof(*c->pending));
        c->pend_head = 0;
    }
    void *arr = c->pending;
    if (room_for_one(&arr, &c->pend_cap, c->pend_head + c->pend_cnt, sizeof(*c->pending), 16) !=
        0) {
        return -1;
    }
    c->pending = arr;
    c->pending[c->pend_head + c->pend_cnt++] = (lp_pending_t){.corr = corr,
                                                              .key = key,
                                                              .ver = ver,
                                                              .held = held,
                                                              .max_bytes = max_bytes,
                                                              .part_max = part_max};
    return 0;
}

/* The request this answer belongs to, taken off the list (answers come in order; requests
 * that never get one, acks=0 produces, are dropped on the way). Returns 0 or -1 (unknown). */
static int pending_take(lp_conn_t *c, int32_t corr, lp_pending_t *out)
{
    for (size_t i = 0; i < c->pend_cnt; i++) {
        if (c->pending[c->pend_head + i].corr == corr) {
            *out = c->pending[c->pend_head + i];
            c->pend_head += i + 1;
            c->pend_cnt -= i + 1;
            return 0;
        }
    }
    return -1;
}

/*
 * The long-polled fetch
 */

static void park(lp_conn_t *c)
{
    c->parked = 1;
    c->park_prev = NULL;
    c->park_next = lp.parked;
    if (lp.parked) {
        lp.parked->park_prev = c;
    }
    lp.parked = c;
}

static void unpark(lp_conn_t *c)
{
    if (!c->parked) {
        return;
    }
    if (c->park_prev) {
        c->park_prev->park_next = c->park_next;
    } else {
        lp.parked = c->park_next;
    }
    if (c->park_next) {
        c->park_next->park_prev = c->park_prev;
    }
    c->parked = 0;
    c->park_prev = c->park_next = NULL;
}

/* Have the mock read the held request again; `final` when the client's wait is up. */
static void resend(lp_conn_t *c, int final)
{
    unpark(c);
    c->final = final;
    mark_sent(c);
    c->injecting = 1;
    c->inject_off = 0;
    if (pending_push(c, (int32_t)wire_be32(c->req + 8), KEY_FETCH, c->req_ver, 1, c->max_bytes,
                     c->part_max) != 0) {
        /* no room to remember it: let the answer go to the client as it is */
        c->injecting = 0;
        c->muted = 0;
    }
}

/* A parked fetch is due when records reached its partitions (its MinBytes of them, as Kafka
 * counts: no sooner than gap_us after it last went) or when the client's wait is up. */
static int64_t due_time(lp_conn_t *c, int64_t now, int poke)
{
    if (!c->wake_us && c->seen_seq != lp.seq) {
        c->seen_seq = lp.seq;
        poke = poke || (appended_since_sent(c) && min_bytes_reached(c));
    }
    if (!c->wake_us && poke) {
        c->wake_us = c->sent_us + lp.gap_us > now ? c->sent_us + lp.gap_us : now;
    }
    return c->wake_us && c->wake_us < c->deadline_us ? c->wake_us : c->deadline_us;
}

/* Send every due fetch again; returns when the next one is due (INT64_MAX: none). */
static int64_t wake_due(int64_t now)
{
    int poke = lp.poke_us && now >= lp.poke_us;
    if (poke) {
        lp.poke_us = 0;
    }
    int64_t next = lp.poke_us ? lp.poke_us : INT64_MAX;
    lp_conn_t *c = lp.parked;
    while (c) {
        lp_conn_t *after = c->park_next;
        int64_t at = due_time(c, now, poke);
        if (now >= at) {
            int expired = now >= c->deadline_us;
            atomic_fetch_add(expired ? &stat_expired : &stat_woken, 1);
            resend(c, expired);
        } else if (at < next) {
            next = at;
        }
        c = after;
    }
    return next;
}

static int part_not_empty(void *arg, const wire_fetch_part_t *p)
{
    (void)arg;
    return p->err != 0 || p->records_len > 0;
}

/* Does this Fetch answer (whole frame) carry neither records nor errors? */
static int fetch_response_empty(const unsigned char *p, size_t len, int16_t ver)
{
    int err;
    return wire_fetch_answer_each(p, len, ver, &err, part_not_empty, NULL) == 0 && err == 0;
}

/* A Produce answer (whole frame): note the partitions that were appended to. */
static void produce_response(const unsigned char *p, size_t len, int16_t ver)
{
    wire_rd_t r = {.p = p, .len = len, .pos = 8};
    lp.seq++;
    int32_t topics = wire_count(&r, 6);
    for (int32_t t = 0; t < topics && !r.bad; t++) {
        uint32_t idx;
        lp_topic_t *topic = rd_topic(&r, &idx);
        size_t part_size = 4 + 2 + 8 + (ver >= 2 ? 8 : 0) + (ver >= 5 ? 8 : 0);
        int32_t parts = wire_count(&r, part_size);
        for (int32_t i = 0; i < parts && !r.bad; i++) {
            int32_t partition = (int32_t)wire_int(&r, 4);
            int64_t err = wire_int(&r, 2);
            wire_skip(&r, part_size - 6);
            if (ver >= 8) {
                int32_t errs = wire_count(&r, 6);
                for (int32_t e = 0; e < errs && !r.bad; e++) {
                    const unsigned char *s;
                    size_t n;
                    wire_skip(&r, 4);
                    wire_str(&r, &s, &n);
                }
                const unsigned char *s;
                size_t n;
                wire_str(&r, &s, &n);
            }
            if (topic && err == 0 && !r.bad) {
                appended(topic, partition);
                if (topic->fill_idx >= 0) {
                    broker_memjournal_catch_up((size_t)topic->fill_idx, partition);
                }
            }
        }
    }
}

/* Whether a Produce request (whole or its first bytes) asks for no answer (acks=0). */
static int produce_acks0(const unsigned char *p, size_t len, int16_t ver, size_t body)
{
    wire_rd_t r = {.p = p, .len = len, .pos = body};
    if (ver >= 3) {
        const unsigned char *s;
        size_t n;
        wire_str(&r, &s, &n); /* TransactionalId */
    }
    int64_t acks = wire_int(&r, 2);
    return !r.bad && acks == 0;
}

/* A whole Fetch request as the mock will read it (max wait already 0): note its partitions,
 * and in *max_bytes and *part_max the most its answer may carry in all and for any of its
 * partitions. Returns 1 when it can be held, 0 when not, -1 when out of memory. */
static int fetch_request(lp_conn_t *c, const unsigned char *p, size_t len, int16_t ver, size_t body,
                         int64_t *max_bytes, int64_t *part_max)
{
    wire_rd_t r = {.p = p, .len = len, .pos = body};
    wire_skip(&r, 4 + 4); /* ReplicaId, MaxWait */
    c->min_bytes = wire_int(&r, 4);
    *max_bytes = ver >= 3 ? wire_int(&r, 4) : INT32_MAX;
    *part_max = INT32_MAX;
    if (ver >= 4) {
        wire_skip(&r, 1); /* IsolationLevel */
    }
    if (ver >= 7) {
        wire_skip(&r, 8); /* SessionId, SessionEpoch */
    }
    c->part_cnt = 0;
    int32_t topics = wire_count(&r, 6);
    for (int32_t t = 0; t < topics && !r.bad; t++) {
        uint32_t idx;
        if (!rd_topic(&r, &idx)) {
            return 0;
        }
        size_t part_size = 4 + (ver >= 9 ? 4 : 0) + 8 + (ver >= 5 ? 8 : 0) + 4;
        int32_t parts = wire_count(&r, part_size);
        for (int32_t i = 0; i < parts && !r.bad; i++) {
            int32_t partition = (int32_t)wire_int(&r, 4);
            wire_skip(&r, part_size - 8);
            int64_t limit = wire_int(&r, 4); /* PartitionMaxBytes */
            *part_max = limit < *part_max ? limit : *part_max;
            void *arr = c->parts;
            if (room_for_one(&arr, &c->part_cap, c->part_cnt, sizeof(*c->parts), 64) != 0) {
                return -1;
            }
            c->parts = arr;
            c->parts[c->part_cnt++] = (lp_part_t){.topic = idx, .partition = partition};
        }
    }
    if (r.bad) {
        *part_max = 0; /* unknown: the answer is not filled */
    }
    return !r.bad && c->part_cnt > 0;
}

/*
 * Requests, as the mock reads them
 */

/* Skip a flexible header's tagged fields. */
static void skip_tags(wire_rd_t *r)
{
    int64_t n = wire_uvarint(r);
    for (int64_t i = 0; i < n && !r->bad; i++) {
        wire_uvarint(r); /* tag */
        int64_t size = wire_uvarint(r);
        wire_skip(r, size >= 0 ? (size_t)size : (size_t)-1);
    }
}

/* Whether the mock may parse this request (`body`: where it follows the client id; the frame
 * is `frame_len` bytes, of which `len` are in `p`). librdkafka's mock trusts two things a
 * client could send, and aborts the whole broker on them: a Metadata topic count larger than
 * the frame (it allocates for that many first), and a Produce whose records are null or empty
 * (an assertion). A request that does either is not given to it. */
static int request_sane(int16_t key, int16_t ver, const unsigned char *p, size_t len,
                        size_t frame_len, size_t body)
{
    wire_rd_t r = {.p = p, .len = len, .pos = body};
    if (len < frame_len) {
        return 0; /* larger than CHECKED_WHOLE_MAX: no client of this broker sends one */
    }
    if (key == KEY_METADATA) {
        int64_t cnt;
        size_t min_item = 2; /* a name's length */
        if (ver >= 9) {      /* flexible: the header's tags, then a compact array */
            skip_tags(&r);
            cnt = wire_uvarint(&r) - 1;
            min_item = ver >= 10 ? 18 : 2; /* v10: a topic id (16), a name, tags */
        } else {
            cnt = wire_int(&r, 4);
        }
        return !r.bad && cnt >= -1 && (cnt <= 0 || (uint64_t)cnt * min_item <= frame_len - r.pos);
    }
    if (key == KEY_PRODUCE) {
        if (ver >= 3) {
            const unsigned char *s;
            size_t n;
            wire_str(&r, &s, &n); /* TransactionalId */
        }
        wire_skip(&r, 6); /* Acks, TimeoutMs */
        int32_t topics = wire_count(&r, 6);
        for (int32_t t = 0; t < topics && !r.bad; t++) {
            const unsigned char *name;
            size_t n;
            wire_str(&r, &name, &n);
            int32_t parts = wire_count(&r, 8);
            for (int32_t i = 0; i < parts && !r.bad; i++) {
                wire_skip(&r, 4);               /* Index */
                int64_t size = wire_int(&r, 4); /* Records: null (-1) or empty aborted the mock */
                if (size <= 0) {
                    return 0;
                }
                wire_skip(&r, (size_t)size);
            }
        }
        return !r.bad;
    }
    return 1;
}

/* The request just read whole: remember what its answer will be, and hold it if it is a
 * fetch that may wait. Runs before the mock parses it, so its max wait can still be put
 * back when it is not held. */
static void request_done(lp_conn_t *c)
{
    const unsigned char *p = c->rq;
    int16_t key = (int16_t)(p[4] << 8 | p[5]);
    int16_t ver = (int16_t)(p[6] << 8 | p[7]);
    int32_t corr = (int32_t)wire_be32(p + 8);
    wire_rd_t r = {.p = p, .len = c->rq_kept, .pos = 12};
    const unsigned char *client_id;
    size_t client_id_len;
    wire_str(&r, &client_id, &client_id_len);
    /* only what is checked is refused: any other request's client id may run past the prefix */
    broker_groups_seen(c->serial, key, now_us());
    char why[512];
    if (c->rq_check && !r.bad && c->rq_kept == c->rq_len && broker_groups_checks(key) &&
        !broker_groups_check(c->serial, key, ver, corr, p, c->rq_kept, r.pos, now_us(), why,
                             sizeof(why))) {
        c->poisoned = 1;
        long n = atomic_fetch_add(&stat_refused, 1);
        if (n < 10 || n % 1000 == 0) {
            es_log_warn("a group join refused: closing its connection", "reason=\"%s\" refused=%ld",
                        why, n + 1);
        }
        return;
    }
    if (c->rq_check && (r.bad || !request_sane(key, ver, p, c->rq_kept, c->rq_len, r.pos))) {
        c->poisoned = 1;
        long n = atomic_fetch_add(&stat_refused, 1);
        if (n < 10 || n % 1000 == 0) {
            es_log_warn("a malformed request: closing its connection",
                        "api_key=%d version=%d "
                        "size=%zu refused=%ld",
                        (int)key, (int)ver, c->rq_len, n + 1);
        }
        return;
    }
    int held = 0;
    int64_t max_bytes = 0, part_max = 0;
    if (c->rq_fetch == 1) {
        int64_t max_wait = c->wait_n == 4 ? (int64_t)(int32_t)wire_be32(c->wait_orig) : 0;
        held = !r.bad && c->rq_kept == c->rq_len
                   ? fetch_request(c, p, c->rq_kept, ver, r.pos, &max_bytes, &part_max)
                   : 0;
        held = max_wait > 0 ? held : 0;
        if (held > 0 && c->req_cap < c->rq_kept) {
            unsigned char *nr = realloc(c->req, c->rq_kept);
            if (nr) {
                c->req = nr;
                c->req_cap = c->rq_kept;
            } else {
                held = 0;
            }
        }
        if (held > 0 && pending_push(c, corr, key, ver, 1, max_bytes, part_max) == 0) {
            c->max_bytes = max_bytes;
            c->part_max = part_max;
            memcpy(c->req, p, c->rq_kept);
            c->req_len = c->rq_kept;
            c->req_ver = ver;
            mark_sent(c);
            c->deadline_us = c->sent_us + max_wait * 1000;
            c->final = 0;
            c->muted = 1;
            return;
        }
        for (int i = 0; i < c->wait_n && i < 4; i++) {
            *c->wait_at[i] = c->wait_orig[i];
        }
    } else if (key == KEY_PRODUCE && ver >= 0 && ver <= PRODUCE_MAX_VERSION && !r.bad &&
               produce_acks0(p, c->rq_kept, ver, r.pos)) {
        lp.poke_us = now_us() + ACKS0_POKE_US;
        broker_memjournal_soon(); /* nor an answer that says where it was appended */
        return;
    }
    pending_push(c, corr, key, ver, 0, max_bytes, part_max);
}

/* Bytes the mock just read into its buffer at `p` (requests arrive whole or in pieces, never
 * two in one read). A fetch's max wait is set to 0 in `p` as it passes. */
static void request_bytes(lp_conn_t *c, unsigned char *p, size_t n)
{
    while (n > 0 && !c->poisoned) {
        if (c->rq_off < 4) {
            size_t take = 4 - c->rq_off < n ? 4 - c->rq_off : n;
            memcpy(c->rq + c->rq_off, p, take);
            c->rq_off += take;
            c->rq_kept = c->rq_off;
            p += take;
            n -= take;
            if (c->rq_off == 4) {
                c->rq_len = (size_t)wire_be32(c->rq) + 4;
                c->rq_fetch = -1; /* not known until ApiKey and ApiVersion are in */
                c->rq_check = 0;
                c->wait_n = 0;
            }
        } else {
            size_t take = c->rq_len - c->rq_off < n ? c->rq_len - c->rq_off : n;
            size_t off = c->rq_off; /* frame offset of p[0] */
            /* the prefix is always kept; a fetch that may be held is kept whole */
            size_t keep = c->rq_kept < PREFIX_MAX && c->rq_kept == off
                              ? (PREFIX_MAX - off < take ? PREFIX_MAX - off : take)
                              : 0;
            memcpy(c->rq + off, p, keep);
            c->rq_kept += keep;
            if (c->rq_fetch == -1 && c->rq_kept >= 8) {
                int16_t key = (int16_t)(c->rq[4] << 8 | c->rq[5]);
                int16_t ver = (int16_t)(c->rq[6] << 8 | c->rq[7]);
                c->rq_fetch = key == KEY_FETCH && ver >= 0 && ver <= FETCH_MAX_VERSION &&
                              c->rq_len <= WHOLE_MAX;
                /* checked whole: a larger one is refused (request_sane) */
                c->rq_check = key == KEY_METADATA || broker_groups_checks(key) ||
                              (key == KEY_PRODUCE && ver >= 0 && ver <= PRODUCE_MAX_VERSION);
                if ((c->rq_fetch || (c->rq_check && c->rq_len <= CHECKED_WHOLE_MAX)) &&
                    c->rq_cap < c->rq_len) {
                    unsigned char *nr = realloc(c->rq, c->rq_len);
                    if (nr) {
                        c->rq = nr;
                        c->rq_cap = c->rq_len;
                    } else {
                        c->rq_fetch = 0; /* a Produce or Metadata not kept whole is refused */
                    }
                }
            }
            if ((c->rq_fetch == 1 || (c->rq_check && c->rq_cap >= c->rq_len)) &&
                c->rq_kept == off + keep && keep < take) {
                memcpy(c->rq + off + keep, p + keep, take - keep);
                c->rq_kept += take - keep;
            }
            if (c->rq_fetch == 1 && c->rq_kept >= 14) {
                /* MaxWait follows the client id (a string at 12) and ReplicaId */
                int16_t id_len = (int16_t)(c->rq[12] << 8 | c->rq[13]);
                size_t wait = 12 + 2 + (id_len > 0 ? (size_t)id_len : 0) + 4;
                for (size_t at = wait > off ? wait : off; at < wait + 4 && at < off + take; at++) {
                    c->wait_at[at - wait] = p + (at - off);
                    c->wait_orig[at - wait] = p[at - off];
                    p[at - off] = 0;
                    c->rq[at] = 0;
                    c->wait_n++;
                }
            }
            c->rq_off += take;
            p += take;
            n -= take;
        }
        if (c->rq_off >= 4 && c->rq_off == c->rq_len) {
            if (c->rq_kept >= 12 && c->rq_len >= 12) {
                request_done(c);
            }
            c->rq_off = c->rq_len = c->rq_kept = 0;
        }
    }
}

/*
 * The C library's socket calls, as the mock's thread makes them
 */

ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
    pthread_once(&resolve_once, resolve);
    lp_conn_t *c = conn_of(fd);
    if (!c) {
        return real_recvmsg ? real_recvmsg(fd, msg, flags) : (errno = ENOSYS, -1);
    }
    if (c->injecting) {
        /* the held fetch, once more */
        size_t n = 0;
        for (size_t i = 0; i < (size_t)msg->msg_iovlen && c->inject_off < c->req_len; i++) {
            size_t take = c->req_len - c->inject_off;
            take = take < msg->msg_iov[i].iov_len ? take : msg->msg_iov[i].iov_len;
            memcpy(msg->msg_iov[i].iov_base, c->req + c->inject_off, take);
            c->inject_off += take;
            n += take;
        }
        if (c->inject_off == c->req_len) {
            c->injecting = 0;
        }
        return (ssize_t)n;
    }
    if (c->muted || (!c->own && atomic_load(&quiet))) {
        errno = EAGAIN;
        return -1;
    }
    if (c->poisoned) {
        errno = ECONNRESET;
        return -1;
    }
    if (c->pend_cnt >= PENDING_READ_MAX) {
        errno = EAGAIN;
        return -1;
    }
    ssize_t r = real_recvmsg(fd, msg, flags);
    size_t left = r > 0 ? (size_t)r : 0;
    for (size_t i = 0; left > 0 && i < (size_t)msg->msg_iovlen && !c->poisoned; i++) {
        size_t n = msg->msg_iov[i].iov_len < left ? msg->msg_iov[i].iov_len : left;
        request_bytes(c, msg->msg_iov[i].iov_base, n);
        left -= n;
    }
    if (c->poisoned) {
        /* the mock sees the connection fail and closes it, the request unparsed */
        errno = ECONNRESET;
        return -1;
    }
    return r;
}

/* Copy `len` bytes at offset `off` of the iovecs into dst. Returns 0, or -1 when short. */
static int iov_copy(const struct msghdr *msg, size_t off, unsigned char *dst, size_t len)
{
    for (size_t i = 0; len > 0 && i < (size_t)msg->msg_iovlen; i++) {
        size_t seg = msg->msg_iov[i].iov_len;
        if (off >= seg) {
            off -= seg;
            continue;
        }
        size_t take = seg - off < len ? seg - off : len;
        memcpy(dst, (const unsigned char *)msg->msg_iov[i].iov_base + off, take);
        dst += take;
        len -= take;
        off = 0;
    }
    return len ? -1 : 0;
}

/* Send what is left of a filled answer. Returns 0 when it all went, 1 when the socket takes
 * no more for now, -1 on an error (errno). */
static int out_flush(lp_conn_t *c)
{
    while (c->out_off < c->out_len) {
        struct iovec iov = {.iov_base = c->out + c->out_off, .iov_len = c->out_len - c->out_off};
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
        ssize_t r = real_sendmsg(c->fd, &m, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (r < 0) {
            return errno == EAGAIN || errno == EWOULDBLOCK ? 1 : -1;
        }
        c->out_off += (size_t)r;
    }
    free(c->out);
    c->out = NULL;
    c->out_off = c->out_len = 0;
    return 0;
}

enum { ANSWER_AS_IS, ANSWER_HELD, ANSWER_REPLACED, ANSWER_ERROR };

/* The answer starting in this sendmsg(): goes as it is, is held (not sent), or was replaced by
 * a filled one (sent, or queued in c->out); ANSWER_ERROR when sending that failed (errno). */
static int answer_start(lp_conn_t *c, const struct msghdr *msg, size_t total)
{
    unsigned char head[8];
    if (iov_copy(msg, 0, head, 8) != 0) {
        return ANSWER_AS_IS;
    }
    c->rs_len = (size_t)wire_be32(head) + 4;
    lp_pending_t req;
    if (pending_take(c, (int32_t)wire_be32(head + 4), &req) != 0) {
        return ANSWER_AS_IS;
    }
    broker_groups_answered(c->serial, req.key, req.corr);
    int whole = c->rs_len <= total && c->rs_len <= WHOLE_MAX;
    int fetch = req.key == KEY_FETCH && req.part_max > 0 && broker_fill_active();
    if (!(req.held || fetch || req.key == KEY_PRODUCE) || !whole) {
        c->muted = req.held ? 0 : c->muted;
        return ANSWER_AS_IS;
    }
    unsigned char stack[4096];
    unsigned char *frame = c->rs_len <= sizeof(stack) ? stack : malloc(c->rs_len);
    if (!frame || iov_copy(msg, 0, frame, c->rs_len) != 0) {
        if (frame != stack) {
            free(frame);
        }
        c->muted = req.held ? 0 : c->muted;
        return ANSWER_AS_IS;
    }
    int how = ANSWER_AS_IS;
    if (req.key == KEY_PRODUCE) {
        produce_response(frame, c->rs_len, req.ver);
    } else if (req.held && !c->final && fetch_response_empty(frame, c->rs_len, req.ver)) {
        how = ANSWER_HELD;
        atomic_fetch_add(&stat_held, 1);
        park(c);
    } else {
        c->muted = req.held ? 0 : c->muted;
        if (fetch) {
            c->out = broker_fill_answer(frame, c->rs_len, req.ver, req.max_bytes, req.part_max,
                                        &c->out_len);
            how = c->out ? ANSWER_REPLACED : ANSWER_AS_IS;
        }
    }
    if (frame != stack) {
        free(frame);
    }
    if (how == ANSWER_REPLACED && out_flush(c) < 0) {
        how = ANSWER_ERROR;
    }
    return how;
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
    pthread_once(&resolve_once, resolve);
    lp_conn_t *c = conn_of(fd);
    if (!c) {
        return real_sendmsg ? real_sendmsg(fd, msg, flags) : (errno = ENOSYS, -1);
    }
    if (c->out) {
        /* the rest of a filled answer goes first */
        int r = out_flush(c);
        if (r != 0) {
            errno = r > 0 ? EAGAIN : errno;
            return -1;
        }
    }
    size_t total = 0;
    for (size_t i = 0; i < (size_t)msg->msg_iovlen; i++) {
        total += msg->msg_iov[i].iov_len;
    }
    /* the mock sends one answer per call (or what is left of it) */
    if (c->rs_len == 0 && total >= 8) {
        int how = answer_start(c, msg, total);
        if (how == ANSWER_HELD || how == ANSWER_REPLACED) {
            /* as far as the mock knows, its answer went */
            size_t len = c->rs_len;
            c->rs_len = 0;
            return (ssize_t)len;
        }
        if (how == ANSWER_ERROR) {
            c->rs_len = 0;
            return -1;
        }
    }
    ssize_t r = real_sendmsg(fd, msg, flags);
    if (r > 0) {
        c->rs_off += (size_t)r;
        if (c->rs_off >= c->rs_len) {
            c->rs_off = c->rs_len = 0;
        }
    }
    return r;
}

int poll(struct pollfd *fds, nfds_t nfds, int timeout_ms)
{
    pthread_once(&resolve_once, resolve);
    if (!mock_thread || !lp.fd_cap) {
        return real_poll ? real_poll(fds, nfds, timeout_ms) : (errno = ENOSYS, -1);
    }
    int64_t now = now_us();
    int64_t next = wake_due(now);
    if (lp.masked_cap < nfds) {
        int *m = realloc(lp.masked, 2 * nfds * sizeof(*m));
        if (!m) {
            return real_poll(fds, nfds, timeout_ms);
        }
        lp.masked = m;
        lp.masked_cap = nfds;
    }
    int *writing = lp.masked + nfds; /* entries given POLLOUT for a filled answer's rest */
    size_t wrote = 0;
    /* a muted connection is not read, unless its fetch is held: a request arriving behind a
     * held fetch ends it (answered empty at once, as Kafka may), so that the request waits
     * for nothing; a connection whose fetch goes again is readable at once */
    size_t masked = 0;
    int ready = 0;
    for (nfds_t i = 0; i < nfds; i++) {
        lp_conn_t *c = conn_of(fds[i].fd);
        if (c && c->out && !(fds[i].events & POLLOUT)) {
            fds[i].events |= POLLOUT;
            writing[wrote++] = (int)i;
        }
        if (c && c->injecting) {
            ready = 1;
        } else if (c && (fds[i].events & POLLIN) &&
                   ((c->muted && !c->parked) || (!c->own && atomic_load(&quiet)) ||
                    c->pend_cnt >= PENDING_READ_MAX)) {
            fds[i].events &= (short)~POLLIN;
            lp.masked[masked++] = (int)i;
        }
    }
    int64_t wait_us = timeout_ms < 0 ? INT64_MAX : (int64_t)timeout_ms * 1000;
    if (next != INT64_MAX && next - now < wait_us) {
        wait_us = next > now ? next - now : 0;
    }
    if (ready) {
        wait_us = 0;
    }
    struct timespec ts = {.tv_sec = wait_us / 1000000, .tv_nsec = (wait_us % 1000000) * 1000};
    int r = ppoll(fds, nfds, wait_us == INT64_MAX ? NULL : &ts, NULL);
    int saved = errno;
    for (size_t k = 0; k < masked; k++) {
        fds[lp.masked[k]].events |= POLLIN;
    }
    for (size_t k = 0; k < wrote; k++) {
        fds[writing[k]].events &= (short)~POLLOUT;
    }
    for (nfds_t i = 0; r >= 0 && i < nfds; i++) {
        lp_conn_t *c = conn_of(fds[i].fd);
        if (c && c->out && (fds[i].revents & POLLOUT)) {
            /* an error shows as POLLERR next time round, and the mock closes the connection */
            out_flush(c);
        }
        if (c && (fds[i].revents & POLLOUT) && !(fds[i].events & POLLOUT)) {
            fds[i].revents &= (short)~POLLOUT;
            r -= fds[i].revents ? 0 : 1;
        }
        if (c && c->parked && (fds[i].revents & POLLIN)) {
            atomic_fetch_add(&stat_cut, 1);
            resend(c, 1);
        }
        if (c && c->injecting && !(fds[i].revents & POLLIN)) {
            r += fds[i].revents ? 0 : 1;
            fds[i].revents |= POLLIN;
        }
    }
    broker_memjournal_turn(now_us());
    errno = saved;
    return r;
}

/*
 * Lifecycle
 */

static void conn_free(lp_conn_t *c)
{
    if (!c) {
        return;
    }
    unpark(c);
    free(c->rq);
    free(c->pending);
    free(c->req);
    free(c->parts);
    free(c->out);
    free(c);
}

void broker_longpoll_setup(int enabled, int gap_us)
{
    lp.enabled = enabled;
    lp.gap_us = gap_us;
}

int broker_longpoll_active(void)
{
    return lp.enabled;
}

void broker_longpoll_accepted(int fd)
{
    if (fd < 0 || !lp.enabled) {
        return;
    }
    mock_thread = 1; /* the mock accepts in its own thread */
    if (fd >= lp.fd_cap) {
        int cap = lp.fd_cap ? lp.fd_cap : 256;
        while (cap <= fd) {
            cap *= 2;
        }
        lp_conn_t **n = realloc(lp.by_fd, (size_t)cap * sizeof(*n));
        if (!n) {
            return;
        }
        memset(n + lp.fd_cap, 0, (size_t)(cap - lp.fd_cap) * sizeof(*n));
        lp.by_fd = n;
        lp.fd_cap = cap;
    }
    /* the number may have been another connection's, closed since */
    conn_free(lp.by_fd[fd]);
    lp_conn_t *c = calloc(1, sizeof(*c));
    if (c && !(c->rq = malloc(PREFIX_MAX))) {
        free(c);
        c = NULL;
    }
    struct stat st;
    if (c && fstat(fd, &st) != 0) {
        free(c->rq);
        free(c);
        c = NULL;
    }
    if (c) {
        c->rq_cap = PREFIX_MAX;
        c->own = broker_ports_from_self(fd);
        c->fd = fd;
        c->dev = st.st_dev;
        c->ino = st.st_ino;
        static uint64_t serials;
        c->serial = ++serials;
        atomic_fetch_add(&stat_conns, 1);
    }
    lp.by_fd[fd] = c; /* NULL: this connection goes untouched */
}

int broker_longpoll_conn_open(uint64_t serial)
{
    for (int fd = 0; fd < lp.fd_cap; fd++) {
        const lp_conn_t *c = lp.by_fd[fd];
        if (c && c->serial == serial) {
            struct stat st;
            return fstat(fd, &st) == 0 && st.st_dev == c->dev && st.st_ino == c->ino;
        }
    }
    return 0; /* its number was taken by a connection accepted since */
}

void broker_longpoll_quiesce(void)
{
    atomic_store(&quiet, 1);
}

void broker_longpoll_stop(void)
{
    broker_groups_stop();
    for (int fd = 0; fd < lp.fd_cap; fd++) {
        conn_free(lp.by_fd[fd]);
    }
    free(lp.by_fd);
    lp.by_fd = NULL;
    lp.fd_cap = 0;
    for (size_t i = 0; i < lp.topic_cnt; i++) {
        free(lp.topics[i].name);
        free(lp.topics[i].parts);
    }
    free(lp.topics);
    lp.topics = NULL;
    lp.topic_cnt = lp.topic_cap = 0;
    free(lp.masked);
    lp.masked = NULL;
    lp.masked_cap = 0;
}

void broker_longpoll_stats(long *conns, long *held, long *woken, long *expired, long *cut)
{
    *cut = atomic_load(&stat_cut);
    *conns = atomic_load(&stat_conns);
    *held = atomic_load(&stat_held);
    *woken = atomic_load(&stat_woken);
    *expired = atomic_load(&stat_expired);
}
