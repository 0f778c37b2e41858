/*
 * memjournal.c: every record journaled from the mock's memory as it is acknowledged.
 *
 * The journal consumer (journaler.c) read every record back from the mock over the Kafka
 * protocol: one more consumer of every partition, a fetch answered for every produce, every
 * record decoded by librdkafka and handed between two threads. That was 37% of the dev
 * broker's CPU at 1,000 transfers/s. Yet the records are in this process already: the mock
 * keeps each produced record batch, as its client sent it, in its partition's list
 * (mocklayout.h). So when a Produce answer says a partition was appended to (longpoll.c reads
 * it before it goes), or a Fetch answer carries records of a partition (fill.c reads it before
 * it goes), the mock's thread reads the new batches there, from the journal's next offset on,
 * and appends their records to the journal, handed to the kernel at once; the main thread
 * syncs them every sync interval. A record is in the journal's file before its producer hears
 * it was acknowledged and before any consumer reads it: a broker killed with -9 loses none
 * that anyone saw (an OS crash loses what the last sync had not taken).
 *
 * Only batches this file reads in full are journaled so: version 2, uncompressed, not a control
 * batch, one batch per message set with the records its header counts. Anything else (a client
 * that compresses, say) hands its partition to the journal consumer for the rest of the run,
 * from the journal's next offset. Topics created after start are the consumer's from the
 * start: fill.c checked only the partitions the broker created.
 *
 * Every 100 ms the mock's thread also looks at every partition, for the records of a Produce
 * answer that never went (its client gone), and at the turn after a produce that asks for no
 * answer (acks=0); when stopping, it looks once more and then journals nothing more (_finish).
 * ES_BROKER_MEMJOURNAL=0 leaves every partition to the consumer (comparisons only).
 */
#include "broker.h"
#include "mocklayout.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

#define SWEEP_INTERVAL_US 100000
#define BATCH_HEADER 61 /* a record batch's bytes before its records */
#define ATTR_COMPRESSION 0x07
#define ATTR_LOG_APPEND_TIME 0x08
#define ATTR_CONTROL 0x20

/* By the topic numbers of fill.c, whose table also holds the mock's partitions. */
typedef struct mj_topic {
    char name[256];             /* for the log */
    broker_partition_t **parts; /* the broker's (writer, owner, flags), by id */
    int part_cnt;
} mj_topic_t;

/* Built by _setup before `ready`; afterwards only the mock's thread touches it. */
static struct {
    mj_topic_t *topics;
    size_t topic_cnt;
    int64_t next_sweep_us;
    char *names; /* a record's header names, each NUL-terminated */
    size_t names_cap;
    int stopped;
} mj;
static atomic_int ready, failed, handovers, finish_asked, finish_done;
static atomic_llong journaled;

int broker_memjournal_setup(broker_t *b, char *errstr, size_t errstr_size)
{
    if (!broker_fill_active()) {
        snprintf(errstr, errstr_size, "the mock's message sets cannot be read (fill.c is off)");
        return -1;
    }
    mj_topic_t *topics = calloc(b->topic_cnt ? b->topic_cnt : 1, sizeof(*topics));
    if (!topics) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    for (size_t t = 0; t < b->topic_cnt; t++) {
        mj_topic_t *mt = &topics[t];
        snprintf(mt->name, sizeof(mt->name), "%s", b->topics[t].name);
        mt->part_cnt = b->topics[t].partition_cnt;
        mt->parts = calloc((size_t)mt->part_cnt, sizeof(*mt->parts));
        if (!mt->parts) {
            for (size_t u = 0; u < t; u++) {
                free(topics[u].parts);
            }
            free(topics);
            snprintf(errstr, errstr_size, "out of memory");
            return -1;
        }
        for (int p = 0; p < mt->part_cnt; p++) {
            mt->parts[p] = &b->topics[t].parts[p];
        }
    }
    /* the partitions are the mock thread's from here on; the consumer is not started yet */
    for (size_t t = 0; t < b->topic_cnt; t++) {
        for (int p = 0; p < topics[t].part_cnt; p++) {
            if (broker_fill_partition(t, p)) {
                atomic_store(&topics[t].parts[p]->owner, BROKER_BY_MEMORY);
            }
        }
    }
    mj.topics = topics;
    mj.topic_cnt = b->topic_cnt;
    atomic_store_explicit(&ready, 1, memory_order_release);
    return 0;
}

int broker_memjournal_active(void)
{
    return atomic_load_explicit(&ready, memory_order_acquire);
}

/*
 * Reading a record batch, in the mock's thread
 */

/* A zigzag varint, as record fields are written. */
static int64_t rd_varint(wire_rd_t *r)
{
    uint64_t v = 0;
    for (int shift = 0;; shift += 7) {
        if (r->pos >= r->len || shift > 63) {
            r->bad = 1;
            return 0;
        }
        unsigned char c = r->p[r->pos++];
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            break;
        }
    }
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/* Bytes with a varint length (-1 = NULL): *len -1 for NULL. */
static const unsigned char *rd_bytes(wire_rd_t *r, ssize_t *len)
{
    int64_t n = rd_varint(r);
    if (r->bad || n < -1 || n > INT32_MAX) {
        r->bad = 1;
        *len = -1;
        return NULL;
    }
    *len = (ssize_t)n;
    return n < 0 ? NULL : n == 0 ? r->p + r->pos : wire_take(r, (size_t)n);
}

/* One record of the batch whose base offset and timestamps are given, the `index`-th: into
 * *rec, with its header names copied (NUL-terminated) into mj.names when `names` is set.
 * Returns 0, or -1 when it is not what the batch header promised. */
static int record_read(wire_rd_t *r, int64_t base, int64_t first_ts, int64_t max_ts, int log_append,
                       int64_t index, int names, es_journal_record_t *rec, size_t *headers_dropped)
{
    int64_t len = rd_varint(r);
    if (r->bad || len <= 0 || (uint64_t)len > r->len - r->pos) {
        return -1;
    }
    size_t end = r->pos + (size_t)len;
    wire_skip(r, 1); /* attributes, unused */
    int64_t ts_delta = rd_varint(r);
    int64_t off_delta = rd_varint(r);
    /* the deltas are the client's: added in unsigned arithmetic (a sum past int64 wraps instead
     * of being undefined); a wrong offset delta is refused below */
    rec->offset = (int64_t)((uint64_t)base + (uint64_t)off_delta);
    rec->timestamp = log_append ? max_ts : (int64_t)((uint64_t)first_ts + (uint64_t)ts_delta);
    rec->key = rd_bytes(r, &rec->key_len);
    rec->value = rd_bytes(r, &rec->value_len);
    int64_t cnt = rd_varint(r);
    if (r->bad || off_delta != index || cnt < 0 || cnt > (int64_t)(end - r->pos)) {
        return -1;
    }
    rec->header_cnt = 0;
    *headers_dropped = 0;
    size_t at = 0;
    for (int64_t i = 0; i < cnt; i++) {
        ssize_t nlen, vlen;
        const unsigned char *name = rd_bytes(r, &nlen);
        const unsigned char *value = rd_bytes(r, &vlen);
        if (r->bad || nlen < 0) {
            return -1;
        }
        if (rec->header_cnt == ES_JOURNAL_MAX_HEADERS) {
            (*headers_dropped)++;
            continue;
        }
        es_journal_header_t *h = &rec->headers[rec->header_cnt++];
        if (names) { /* mj.names holds the whole batch: these names fit */
            memcpy(mj.names + at, name, (size_t)nlen);
            mj.names[at + (size_t)nlen] = '\0';
            h->name = mj.names + at;
            at += (size_t)nlen + 1;
        } else {
            h->name = "";
        }
        h->value = value;
        h->value_len = vlen;
    }
    return r->bad || r->pos != end ? -1 : 0;
}

/* The records of message set `m` from the journal's next offset on, appended to it. Returns
 * 0 when done (or when all were journaled before), 1 when this file cannot read the set (it
 * is read whole before anything is appended), -1 on a write error. */
static int journal_set(const mj_topic_t *t, int32_t id, const unsigned char *m)
{
    es_journal_writer_t *w = t->parts[id]->writer;
    int32_t len = mset_len(m);
    const unsigned char *data = mset_data(m);
    int64_t first = mset_first(m), last = mset_last(m);
    if (len < BATCH_HEADER || !data) {
        return 1;
    }
    wire_rd_t r = {.p = data, .len = (size_t)len};
    int64_t base = wire_int(&r, 8);
    int64_t batch_len = wire_int(&r, 4);
    wire_skip(&r, 4); /* partition leader epoch */
    int64_t magic = wire_int(&r, 1);
    wire_skip(&r, 4); /* crc */
    int64_t attr = wire_int(&r, 2);
    int64_t last_delta = wire_int(&r, 4);
    int64_t first_ts = wire_int(&r, 8);
    int64_t max_ts = wire_int(&r, 8);
    wire_skip(&r, 8 + 2 + 4); /* producer id, epoch, base sequence */
    int64_t cnt = wire_int(&r, 4);
    if (r.bad || base != first || batch_len + 12 != len || magic != 2 ||
        (attr & (ATTR_COMPRESSION | ATTR_CONTROL)) || cnt != last - first + 1 ||
        last_delta != cnt - 1) {
        return 1;
    }
    if (mj.names_cap < (size_t)len) {
        char *n = realloc(mj.names, (size_t)len);
        if (!n) {
            return 1; /* the consumer needs no such buffer */
        }
        mj.names = n;
        mj.names_cap = (size_t)len;
    }
    int log_append = (attr & ATTR_LOG_APPEND_TIME) != 0;
    es_journal_record_t rec;
    size_t dropped;
    /* first read it all: a set this file cannot read goes to the consumer whole */
    for (int64_t i = 0; i < cnt; i++) {
        if (record_read(&r, base, first_ts, max_ts, log_append, i, 0, &rec, &dropped) != 0) {
            return 1;
        }
    }
    if (r.pos != r.len) {
        return 1;
    }
    r.pos = BATCH_HEADER;
    int64_t appended = 0;
    for (int64_t i = 0; i < cnt; i++) {
        record_read(&r, base, first_ts, max_ts, log_append, i, 1, &rec, &dropped);
        if (rec.offset < es_journal_writer_next_offset(w)) {
            continue; /* journaled before */
        }
        if (dropped) {
            es_log_error("record has too many headers for the journal, extra headers dropped",
                         "topic=%s partition=%d offset=%lld headers=%zu max=%d", t->name, (int)id,
                         (long long)rec.offset, ES_JOURNAL_MAX_HEADERS + dropped,
                         ES_JOURNAL_MAX_HEADERS);
        }
        if (es_journal_writer_append(w, &rec) != 0) {
            es_log_error("could not append to the journal",
                         "topic=%s partition=%d offset=%lld "
                         "error=\"%s\"",
                         t->name, (int)id, (long long)rec.offset, strerror(errno));
            return -1;
        }
        appended++;
    }
    atomic_fetch_add_explicit(&journaled, appended, memory_order_relaxed);
    return 0;
}

/* Journal what partition `id` of topic number `topic` holds past its journal's next offset. */
static void journal_partition(size_t topic, int32_t id)
{
    const mj_topic_t *t = &mj.topics[topic];
    broker_partition_t *part = t->parts[id];
    const unsigned char *mpart = broker_fill_partition(topic, id);
    if (!mpart || atomic_load_explicit(&part->owner, memory_order_relaxed) != BROKER_BY_MEMORY ||
        atomic_load_explicit(&part->broken, memory_order_relaxed) ||
        atomic_load_explicit(&failed, memory_order_relaxed)) {
        return; /* after a write error the broker stops: one error logged is enough */
    }
    const unsigned char *head = mock_head(mpart), *m = mock_last(mpart);
    int64_t next = es_journal_writer_next_offset(part->writer);
    if (m == head || mset_last(m) < next) {
        return; /* nothing new */
    }
    while (m != head && mset_first(m) > next) {
        m = mset_prev(m);
    }
    if (m == head) {
        atomic_store(&part->broken, 1);
        es_log_error("JOURNAL GAP: the broker dropped records before they were journaled; "
                     "this partition is no longer journaled until restart",
                     "topic=%s partition=%d journal_next_offset=%lld oldest_held=%lld", t->name,
                     (int)id, (long long)next, (long long)mset_first(mset_next(head)));
        return;
    }
    int rc = 0;
    for (; m && rc == 0; m = mset_next(m)) {
        rc = journal_set(t, id, m);
    }
    if (es_journal_writer_flush(part->writer) != 0 && rc >= 0) {
        es_log_error("could not write the journal", "topic=%s partition=%d error=\"%s\"", t->name,
                     (int)id, strerror(errno));
        rc = -1;
    }
    atomic_store_explicit(&part->dirty, 1, memory_order_release);
    if (rc < 0) {
        atomic_store(&failed, 1);
    } else if (rc > 0) {
        es_log_info("journaling a partition through the journal consumer from now on: its "
                    "records are not in uncompressed record batches",
                    "topic=%s partition=%d from_offset=%lld", t->name, (int)id,
                    (long long)es_journal_writer_next_offset(part->writer));
        atomic_store_explicit(&part->owner, BROKER_HANDOVER, memory_order_release);
        atomic_fetch_add(&handovers, 1);
    }
}

void broker_memjournal_catch_up(size_t topic, int32_t partition)
{
    if (broker_memjournal_active() && !mj.stopped && topic < mj.topic_cnt && partition >= 0 &&
        partition < mj.topics[topic].part_cnt) {
        journal_partition(topic, partition);
    }
}

static void journal_all(void)
{
    for (size_t t = 0; t < mj.topic_cnt; t++) {
        for (int p = 0; p < mj.topics[t].part_cnt; p++) {
            journal_partition(t, p);
        }
    }
}

void broker_memjournal_soon(void)
{
    mj.next_sweep_us = 0;
}

void broker_memjournal_turn(int64_t now_us)
{
    if (!broker_memjournal_active() || mj.stopped) {
        return;
    }
    if (atomic_load_explicit(&finish_asked, memory_order_acquire)) {
        journal_all();
        mj.stopped = 1;
        atomic_store_explicit(&finish_done, 1, memory_order_release);
        return;
    }
    if (now_us >= mj.next_sweep_us) {
        journal_all();
        mj.next_sweep_us = now_us + SWEEP_INTERVAL_US;
    }
}

int broker_memjournal_finish(rd_kafka_mock_cluster_t *mcluster, int timeout_ms)
{
    if (!broker_memjournal_active()) {
        return 0;
    }
    /* Called after broker_longpoll_quiesce(): from the turn that sees this on, the mock's
     * thread reads no more request bytes from other processes (longpoll.c's recvmsg() refuses
     * them), and any request it read before was handled, records appended, when it was read.
     * So the last look finds every record that will ever be appended in this run. */
    atomic_store_explicit(&finish_asked, 1, memory_order_release);
    for (int waited = 0;; waited += 10) {
        /* a request to the mock wakes its thread (and returns once the thread served it):
         * setting the round trip time it already has changes nothing */
        rd_kafka_mock_broker_set_rtt(mcluster, 1, 0);
        if (atomic_load_explicit(&finish_done, memory_order_acquire)) {
            return 0;
        }
        if (waited >= timeout_ms) {
            es_log_error("gave up waiting for the mock's thread to journal what it holds",
                         "waited_ms=%d", waited);
            return -1;
        }
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 10 * 1000000};
        nanosleep(&ts, NULL);
    }
}

int broker_memjournal_failed(void)
{
    return atomic_load(&failed);
}

int broker_memjournal_handovers(void)
{
    return atomic_load(&handovers);
}

int64_t broker_memjournal_count(void)
{
    return atomic_load_explicit(&journaled, memory_order_relaxed);
}

void broker_memjournal_stop(void)
{
    atomic_store(&ready, 0);
    for (size_t t = 0; t < mj.topic_cnt; t++) {
        free(mj.topics[t].parts);
    }
    free(mj.topics);
    free(mj.names);
    memset(&mj, 0, sizeof(mj));
}
