/*
 * fill.c: fetch answers that carry every message set that fits, as Kafka's do.
 *
 * The mock answers a fetch with at most one message set per partition (its handler says
 * "FIXME: Multiple messageSets?"). A consumer that is k message sets behind on a partition
 * then needs k fetches to catch up, and under load every hop's batches stay as small as the
 * steps of the producer before it: what each fetch and each database transaction costs is
 * paid again and again. Kafka fills an answer up to the fetch's byte limits.
 *
 * longpoll.c hands this file each whole Fetch answer the mock is about to send; after each
 * partition's records it adds copies of the message sets that follow them in the mock's own
 * list, while they fit within the fetch's limits (its MaxBytes, and the smallest of its
 * partitions' limits). The answer is otherwise the mock's own: its high watermarks were read
 * in the same thread, in the same turn, so they cover every set added.
 *
 * The list lives in the mock's partition structures. Like window.c, this file reads them only
 * on the one library build whose layout was checked (librdkafka 2.0.2), and only after
 * checking, through /proc/self/mem (a wrong guess reads as an error, never as a crash), that
 * every partition found by window.c points at a topic that points back at it, with the name
 * and partition count the broker created. Afterwards only the mock's thread reads the lists,
 * in the same thread that appends to and trims them.
 * ES_BROKER_FETCH_FILL=0 turns this off (comparisons only).
 */
#include "broker.h"
#include "mocklayout.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FILL_MAX ((int64_t)16 << 20) /* bytes added to one answer at most */

typedef struct fill_topic {
    char name[256];
    size_t name_len;
    const unsigned char **parts; /* the mock's partition structures, by id */
    int part_cnt;
} fill_topic_t;

static struct {
    fill_topic_t *topics;
    size_t topic_cnt;
} fl;
static atomic_int fill_ready; /* fl is complete: the mock's thread may read it */
static atomic_long stat_answers, stat_sets;

static int mem_read(int mem, uintptr_t at, void *dst, size_t n)
{
    return pread(mem, dst, n, (off_t)at) == (ssize_t)n ? 0 : -1;
}

/* The partition structure whose max_size field is at `limit`: its topic's name, its id, and
 * whether the topic's partitions array puts it where it is. Returns 0 or -1. */
static int partition_check(int mem, uintptr_t limit, char *name, size_t name_size, int32_t *id,
                           int *part_cnt)
{
    uintptr_t base = limit - PART_MAX_SIZE, topic, parts, name_at;
    int cnt;
    if (mem_read(mem, base + PART_ID, id, sizeof(*id)) != 0 ||
        mem_read(mem, base + PART_TOPIC, &topic, sizeof(topic)) != 0 || !topic ||
        mem_read(mem, topic + TOPIC_PARTS, &parts, sizeof(parts)) != 0 ||
        mem_read(mem, topic + TOPIC_PART_CNT, &cnt, sizeof(cnt)) != 0 ||
        mem_read(mem, topic + TOPIC_NAME, &name_at, sizeof(name_at)) != 0 || !name_at) {
        return -1;
    }
    if (*id < 0 || *id >= cnt || parts + (uintptr_t)*id * PART_STRUCT != base) {
        return -1;
    }
    /* the name, in one read of up to the buffer's size: a read that reaches unmapped memory
     * stops short there (the name ends before), and a name must end within it */
    ssize_t got = pread(mem, name, name_size - 1, (off_t)name_at);
    if (got <= 0 || !memchr(name, '\0', (size_t)got)) {
        return -1;
    }
    *part_cnt = cnt;
    return 0;
}

int broker_fill_setup(const broker_t *b, char *errstr, size_t errstr_size)
{
    if (!b->limits || b->limit_cnt == 0) {
        snprintf(errstr, errstr_size, "the partitions' limits were not found (window.c)");
        return -1;
    }
    fill_topic_t *topics = calloc(b->topic_cnt, sizeof(*topics));
    int mem = open("/proc/self/mem", O_RDONLY);
    int rc = -1;
    if (!topics || mem < 0) {
        snprintf(errstr, errstr_size, "could not read the process's own memory");
        goto out;
    }
    for (size_t t = 0; t < b->topic_cnt; t++) {
        snprintf(topics[t].name, sizeof(topics[t].name), "%s", b->topics[t].name);
        topics[t].name_len = strlen(topics[t].name);
        topics[t].part_cnt = b->topics[t].partition_cnt;
        topics[t].parts = calloc((size_t)topics[t].part_cnt, sizeof(*topics[t].parts));
        if (!topics[t].parts) {
            snprintf(errstr, errstr_size, "out of memory");
            goto out;
        }
    }
    for (size_t i = 0; i < b->limit_cnt; i++) {
        char name[256];
        int32_t id;
        int cnt;
        if (partition_check(mem, (uintptr_t)b->limits[i], name, sizeof(name), &id, &cnt) != 0) {
            snprintf(errstr, errstr_size, "partition %zu does not have the expected layout", i);
            goto out;
        }
        size_t t = 0;
        while (t < b->topic_cnt && strcmp(topics[t].name, name) != 0) {
            t++;
        }
        if (t == b->topic_cnt || cnt != topics[t].part_cnt || topics[t].parts[id]) {
            snprintf(errstr, errstr_size, "partition %zu names an unknown or repeated one", i);
            goto out;
        }
        topics[t].parts[id] = (const unsigned char *)b->limits[i] - PART_MAX_SIZE;
    }
    /* limit_cnt equals the partitions created (window.c), none repeated: all are known */
    fl.topics = topics;
    fl.topic_cnt = b->topic_cnt;
    topics = NULL;
    atomic_store_explicit(&fill_ready, 1, memory_order_release);
    rc = 0;
out:
    if (mem >= 0) {
        close(mem);
    }
    for (size_t t = 0; topics && t < b->topic_cnt; t++) {
        free(topics[t].parts);
    }
    free(topics);
    return rc;
}

const unsigned char *broker_fill_partition(size_t topic, int32_t partition)
{
    if (!broker_fill_active() || topic >= fl.topic_cnt || partition < 0 ||
        partition >= fl.topics[topic].part_cnt) {
        return NULL;
    }
    return fl.topics[topic].parts[partition];
}

int broker_fill_active(void)
{
    return atomic_load_explicit(&fill_ready, memory_order_acquire);
}

void broker_fill_stop(void)
{
    atomic_store(&fill_ready, 0);
    for (size_t t = 0; t < fl.topic_cnt; t++) {
        free(fl.topics[t].parts);
    }
    free(fl.topics);
    fl.topics = NULL;
    fl.topic_cnt = 0;
}

void broker_fill_stats(long *answers, long *sets)
{
    *answers = atomic_load(&stat_answers);
    *sets = atomic_load(&stat_sets);
}

/*
 * Filling an answer, in the mock's thread
 */

int broker_fill_topic(const unsigned char *name, size_t name_len)
{
    for (size_t t = 0; broker_fill_active() && t < fl.topic_cnt; t++) {
        if (fl.topics[t].name_len == name_len && !memcmp(fl.topics[t].name, name, name_len)) {
            return (int)t;
        }
    }
    return -1;
}

/* What one partition of the answer gets: the sets from `from` on, `add` bytes in all. */
typedef struct fill_part {
    size_t records_at; /* frame offset of the partition's records length */
    size_t records_end;
    const unsigned char *from;
    size_t add;
    long sets;
} fill_part_t;

/* The message set that starts at `first` in partition `mpart`, or NULL. Looked for from the
 * newest back: a fetch that has records is nearly always for the last few (walking from the
 * oldest, as the mock does, costs the whole window every time). */
static const unsigned char *find_back(const unsigned char *mpart, int64_t first)
{
    const unsigned char *head = mock_head(mpart);
    const unsigned char *m = mock_last(mpart);
    while (m != head && mset_first(m) > first) {
        m = mset_prev(m);
    }
    return m != head && mset_first(m) == first ? m : NULL;
}

/* The message sets after the one that starts at `first` in partition `mpart` that fit in
 * `room` bytes (a partition's limit less what it already carries): the first of them, their
 * bytes and count. */
static const unsigned char *follow(const unsigned char *mpart, int64_t first, int64_t room,
                                   size_t *add, long *sets)
{
    const unsigned char *m = find_back(mpart, first);
    *add = 0;
    *sets = 0;
    if (!m) {
        return NULL;
    }
    const unsigned char *from = mset_next(m);
    for (m = from; m; m = mset_next(m)) {
        int32_t n = mset_len(m);
        if (n <= 0 || (int64_t)(*add + (size_t)n) > room) {
            break;
        }
        *add += (size_t)n;
        (*sets)++;
    }
    return *sets ? from : NULL;
}

/* What the answer's partitions get, gathered while it is read. */
typedef struct fill_plan {
    fill_part_t stack[64];
    fill_part_t *fp;
    size_t cnt, cap;
    int64_t total;    /* bytes of records the answer already carries */
    int64_t part_max; /* the fetch's smallest partition limit */
} fill_plan_t;

static int plan_partition(void *arg, const wire_fetch_part_t *p)
{
    fill_plan_t *pl = arg;
    int64_t n = (int64_t)p->records_len;
    pl->total += n;
    int topic = p->topic ? broker_fill_topic(p->topic, p->topic_len) : -1;
    if (p->err == 0 && n > 0 && topic >= 0) {
        /* what a consumer reads is journaled first (memjournal.c) */
        broker_memjournal_catch_up((size_t)topic, p->partition);
    }
    const unsigned char *mpart =
        topic >= 0 ? broker_fill_partition((size_t)topic, p->partition) : NULL;
    if (p->err != 0 || n < 8 || !mpart || n >= pl->part_max) {
        return 0;
    }
    const unsigned char *rec = p->records;
    int64_t first = (int64_t)((uint64_t)wire_be32(rec) << 32 | wire_be32(rec + 4));
    fill_part_t f = {.records_at = p->records_at, .records_end = p->records_end};
    f.from = follow(mpart, first, pl->part_max - n, &f.add, &f.sets);
    if (!f.from) {
        return 0;
    }
    if (pl->cnt == pl->cap) {
        size_t cap = pl->cap * 2;
        fill_part_t *g =
            pl->fp == pl->stack ? malloc(cap * sizeof(*g)) : realloc(pl->fp, cap * sizeof(*g));
        if (!g) {
            return 1; /* out of memory: the answer goes as the mock made it */
        }
        if (pl->fp == pl->stack) {
            memcpy(g, pl->stack, sizeof(pl->stack));
        }
        pl->fp = g;
        pl->cap = cap;
    }
    pl->fp[pl->cnt++] = f;
    return 0;
}

unsigned char *broker_fill_answer(const unsigned char *frame, size_t len, int16_t ver,
                                  int64_t max_bytes, int64_t part_max, size_t *out_len)
{
    if (!broker_fill_active() || ver < 4 || part_max <= 0) {
        return NULL; /* v4 and later: the record batches (magic 2) the mock keeps */
    }
    fill_plan_t pl = {.cap = sizeof(pl.stack) / sizeof(pl.stack[0]), .part_max = part_max};
    pl.fp = pl.stack;
    int err;
    int read = wire_fetch_answer_each(frame, len, ver, &err, plan_partition, &pl);
    fill_part_t *fp = pl.fp;
    size_t fp_cnt = pl.cnt;
    int64_t total = pl.total, budget = max_bytes < FILL_MAX ? max_bytes : FILL_MAX;
    unsigned char *out = NULL;
    if (read != 0 || err != 0 || fp_cnt == 0) {
        goto out;
    }
    /* the answer's own bytes count towards its limit first; sets that would pass it stay */
    size_t add = 0;
    long sets = 0;
    for (size_t i = 0; i < fp_cnt; i++) {
        if (total + (int64_t)fp[i].add > budget) {
            fp_cnt = i;
            break;
        }
        total += (int64_t)fp[i].add;
        add += fp[i].add;
        sets += fp[i].sets;
    }
    if (add == 0 || len + add > INT32_MAX || !(out = malloc(len + add))) {
        goto out;
    }
    /* copy the frame, each filled partition's records followed by the sets, sizes updated */
    size_t from = 0, to = 0;
    for (size_t i = 0; i < fp_cnt; i++) {
        memcpy(out + to, frame + from, fp[i].records_end - from);
        size_t len_at = to + (fp[i].records_at - from);
        to += fp[i].records_end - from;
        from = fp[i].records_end;
        uint32_t rec_len = wire_be32(out + len_at) + (uint32_t)fp[i].add;
        const unsigned char *m = fp[i].from;
        for (long k = 0; k < fp[i].sets; k++, m = mset_next(m)) {
            size_t n = (size_t)mset_len(m);
            memcpy(out + to, mset_data(m), n);
            to += n;
        }
        out[len_at] = (unsigned char)(rec_len >> 24);
        out[len_at + 1] = (unsigned char)(rec_len >> 16);
        out[len_at + 2] = (unsigned char)(rec_len >> 8);
        out[len_at + 3] = (unsigned char)rec_len;
    }
    memcpy(out + to, frame + from, len - from);
    to += len - from;
    uint32_t size = (uint32_t)(to - 4);
    out[0] = (unsigned char)(size >> 24);
    out[1] = (unsigned char)(size >> 16);
    out[2] = (unsigned char)(size >> 8);
    out[3] = (unsigned char)size;
    *out_len = to;
    atomic_fetch_add(&stat_answers, 1);
    atomic_fetch_add(&stat_sets, sets);
out:
    if (fp != pl.stack) {
        free(fp);
    }
    return out;
}
