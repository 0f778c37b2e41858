/*
 * broker.h: the dev broker's shared state, private to devstack/broker/.
 *
 * main.c owns the lifecycle (flags, lock, mock cluster, publishing the address, signals),
 * restore.c re-produces the journals into a fresh cluster, journaler.c appends every record
 * the cluster holds to the journals, nodelay.c sets TCP_NODELAY on the mock's sockets,
 * window.c bounds how many message sets the mock keeps in memory per partition, ports.c
 * puts the mock's listeners back on the ports of the previous run, longpoll.c answers a
 * waiting fetch as soon as records arrive, fill.c puts every message set that fits in a fetch's
 * answer, wire.c reads the protocol fields those two need, memjournal.c journals each record
 * from the mock's memory as it is acknowledged (the journaler then keeps only what memjournal.c
 * cannot read), chaos.c injects the faults `esctl chaos` asks for.
 */
#ifndef ES_BROKER_H
#define ES_BROKER_H

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "journal.h"

/* Who appends to a partition's journal: the journal consumer (journaler.c, the main thread),
 * or memjournal.c in the mock's thread. A partition goes from memory to the consumer (through
 * HANDOVER, when memjournal.c meets records it cannot read), never back. */
enum { BROKER_BY_CONSUMER, BROKER_BY_MEMORY, BROKER_HANDOVER };

typedef struct broker_partition {
    es_journal_writer_t *writer; /* owned; used by the thread `owner` names */
    atomic_int owner;            /* BROKER_BY_* */
    atomic_int broken;           /* a gap was seen: nothing more is journaled this run */
    atomic_int dirty;            /* appended since the last sync */
} broker_partition_t;

typedef struct broker_topic {
    char name[256];
    int partition_cnt;
    broker_partition_t *parts;   /* partition_cnt entries, owned */
    const rd_kafka_topic_t *rkt; /* the consumer's handle for this topic once seen (cache) */
} broker_topic_t;

typedef struct broker {
    es_config_t cfg;        /* brokers = the mock's bootstrap servers, no pass-through properties */
    broker_topic_t *topics; /* owned */
    size_t topic_cnt;
    rd_kafka_mock_cluster_t *mcluster;
    int sync_interval_ms;
    /* the mock's in-memory window (window.c): message sets kept per partition, 0 = the mock's
     * own limits; where its count limits live (NULL when not found), the limit in force */
    uint64_t window;
    uint64_t **limits;
    size_t limit_cnt;
    uint64_t applied;
} broker_t;

/* Re-produce every journaled record into the fresh cluster, then check that every
 * partition's high watermark equals its journal's record count. Returns 0 or -1. */
int broker_restore(broker_t *b, char *errstr, size_t errstr_size);

/* The journal consumer. _start assigns every partition it journals (every one memjournal.c
 * does not) at its journal's next offset. */
typedef struct broker_journaler broker_journaler_t;
broker_journaler_t *broker_journaler_start(broker_t *b, char *errstr, size_t errstr_size);
/* Consume and journal for up to `timeout_ms`; syncs dirty journals every sync_interval_ms and
 * picks up topics created after start. Returns 0, or -1 on a fatal journal write error. */
int broker_journaler_run_once(broker_journaler_t *j, int timeout_ms);
/* Journal everything up to the partitions' current high watermarks (bounded by timeout_ms),
 * then sync. Returns 0 when everything acknowledged so far is journaled, -1 otherwise. */
int broker_journaler_drain(broker_journaler_t *j, int timeout_ms);
/* Records journaled since start, by this consumer and by memjournal.c. */
int64_t broker_journaler_count(const broker_journaler_t *j);
void broker_journaler_destroy(broker_journaler_t *j);

/* Find the mock's per-partition count limits (window.c explains why and how carefully); call
 * right after creating the topics, before anything is produced. Returns 0, or -1 with errstr
 * (then nothing is tuned). */
int broker_window_find(broker_t *b, char *errstr, size_t errstr_size);
/* Keep b->window message sets per partition in memory, plus `unjournaled` (the most records
 * any partition holds that are not journaled yet). No-op when the limits were not found. */
void broker_window_apply(broker_t *b, int64_t unjournaled);

/* Add a topic (not yet known) with `partition_cnt` partitions: opens its journal writers
 * (creating the topic in the mock is the caller's business). Returns its index or -1. */
int broker_topic_add(broker_t *b, const char *name, int partition_cnt, char *errstr,
                     size_t errstr_size);

/* At most this many mock brokers (the --brokers limit). */
#define BROKER_PORTS_MAX 16

/* While armed, the next IPv4 binds to port 0 go to `ports` in order (copied), each falling
 * back to any port when taken; _done disarms and returns how many got their wanted port. */
void broker_ports_want(const int *ports, size_t cnt);
size_t broker_ports_done(void);
/* While the gate is closed, connections the mock accepts from other processes are shut at
 * once (ports.c explains why); _admit applies that to a socket just accepted. */
void broker_ports_gate(int closed);
void broker_ports_admit(int fd);
/* Whether a socket the mock accepted comes from this process (its journaler, its restore). */
int broker_ports_from_self(int fd);

/* Fetches answered when records arrive (longpoll.c explains it). _setup, before the mock
 * cluster starts: whether to, and how soon a woken fetch may go again after the last.
 * _accepted is called by accept() in the mock's thread with each socket it accepted (the
 * file watches the mock's reads and writes on it from then on). _stop frees what it holds,
 * after the mock cluster is gone. */
void broker_longpoll_setup(int enabled, int gap_us);
int broker_longpoll_active(void);
void broker_longpoll_accepted(int fd);
/* Whether the connection with this serial (lp_conn_t) is still open: its socket not closed
 * (nor its number taken by another file). In the mock's thread. */
int broker_longpoll_conn_open(uint64_t serial);
/* Stop the mock reading requests from other processes' connections (no record is appended
 * for them from now on, so high watermarks read afterwards hold everything ever
 * acknowledged); this process's own clients go on. Any thread; when stopping. */
void broker_longpoll_quiesce(void);
void broker_longpoll_stop(void);
/* Connections watched, fetch answers held for lack of records, held fetches sent again
 * because records arrived, because their wait was up, and because another request came. */
void broker_longpoll_stats(long *conns, long *held, long *woken, long *expired, long *cut);

/* Fetch answers carrying every message set that fits (fill.c explains it). _setup, after
 * broker_window_find() succeeded and before any client connects: checks and records where
 * each partition's message sets live. Returns 0, or -1 with errstr (then answers stay as the
 * mock makes them). _stop after the mock cluster is gone. */
int broker_fill_setup(const broker_t *b, char *errstr, size_t errstr_size);
int broker_fill_active(void);
void broker_fill_stop(void);
/* The number of the topic named so (the broker's topics as numbered at _setup), or -1. */
int broker_fill_topic(const unsigned char *name, size_t name_len);
/* The mock's structure of partition `partition` of the broker's topic number `topic`, or
 * NULL. Only the mock's thread may follow it. */
const unsigned char *broker_fill_partition(size_t topic, int32_t partition);
/* In the mock's thread, a whole Fetch answer `frame` (`len` bytes, version `ver`): a new
 * frame (malloc'd, the caller frees it) with, after each partition's records, the message sets
 * that follow them, within `max_bytes` for the answer and `part_max` for each partition, its
 * length in *out_len. NULL when nothing follows, nothing fits, or memory ran out: then the
 * mock's answer goes as it is. */
unsigned char *broker_fill_answer(const unsigned char *frame, size_t len, int16_t ver,
                                  int64_t max_bytes, int64_t part_max, size_t *out_len);
/* Answers filled, and the message sets added to them. */
void broker_fill_stats(long *answers, long *sets);

/* Consumer group joins and syncs (groups.c), from longpoll.c in the mock's thread. A JoinGroup or
 * SyncGroup request (`p`, `len` bytes of a whole frame; its body from `body`; its correlation id
 * `corr`) of connection `conn` (a serial): 1 when the mock may take it, 0 when it must not (the
 * reason in why). Other keys: 1. */
int broker_groups_check(uint64_t conn, int16_t key, int16_t ver, int32_t corr,
                        const unsigned char *p, size_t len, size_t body, int64_t now_us, char *why,
                        size_t why_size);
/* Whether requests of this key are checked (kept whole for broker_groups_check). */
int broker_groups_checks(int16_t key);
/* The answer to request `corr` (of key `key`) of connection `conn` is going out. */
void broker_groups_answered(uint64_t conn, int16_t key, int32_t corr);
/* Any request of connection `conn`: a group request keeps its member in, a LeaveGroup ends it. */
void broker_groups_seen(uint64_t conn, int16_t key, int64_t now_us);
void broker_groups_stop(void);

/* Faults on request (chaos.c explains it). _start, before the address is published: makes
 * <data_dir>/chaos/ and empties it. Returns 0, or -1 with errstr (then esctl chaos finds no
 * broker to ask). _tick, every turn of the main loop: ends the faults that are due and takes
 * the requests (at most every 50 ms). _stop, before the drain: ends every fault. */
int broker_chaos_start(int broker_cnt, const char *data_dir, char *errstr, size_t errstr_size);
void broker_chaos_tick(broker_t *b);
void broker_chaos_stop(broker_t *b);
/* Whether a broker is down or slowed on request (the journaler's metadata calls would wait it
 * out, and hold the main loop). */
int broker_chaos_slowed(void);

/* Reading protocol fields (wire.c): a reader over one whole frame. A read past its end sets
 * `bad` and yields zeros or NULL. */
typedef struct wire_rd {
    const unsigned char *p;
    size_t len, pos;
    int bad;
} wire_rd_t;
uint32_t wire_be32(const unsigned char *p);
/* The next n bytes (borrowed from the frame), or NULL. */
const unsigned char *wire_take(wire_rd_t *r, size_t n);
void wire_skip(wire_rd_t *r, size_t n);
/* A signed big-endian integer of n bytes (1..8). */
int64_t wire_int(wire_rd_t *r, size_t n);
/* An unsigned varint (flexible versions' lengths and counts); at most 5 bytes, or r->bad. */
int64_t wire_uvarint(wire_rd_t *r);
/* A string (int16 length): *s borrowed from the frame, NULL when null or empty. */
void wire_str(wire_rd_t *r, const unsigned char **s, size_t *len);
/* An array count (null reads as 0); a count the rest cannot hold at `min_item` bytes an item
 * marks the reader bad. */
int32_t wire_count(wire_rd_t *r, size_t min_item);
/* One partition of a Fetch answer, its pointers borrowed from the frame. */
typedef struct wire_fetch_part {
    const unsigned char *topic; /* NULL when null or empty */
    size_t topic_len;
    int32_t partition;
    int err;
    size_t records_at, records_end; /* frame offsets of the records' length and of their end */
    const unsigned char *records;   /* NULL when there are none */
    size_t records_len;
} wire_fetch_part_t;
/* Call fn for each partition of a whole Fetch answer (v0-v11), in order, until it returns
 * nonzero. Returns 0 when the whole frame was read, 1 when fn stopped, -1 when the frame is
 * not one; *err is the answer's own error code (v7+, else 0). */
int wire_fetch_answer_each(const unsigned char *frame, size_t len, int16_t ver, int *err,
                           int (*fn)(void *arg, const wire_fetch_part_t *p), void *arg);

/* Journaling from the mock's memory (memjournal.c explains it). _setup, after the restore and
 * before other processes connect, with fill.c active: takes over every partition fill.c knows
 * (their owner becomes BROKER_BY_MEMORY). Returns 0, or -1 with errstr (then the journal
 * consumer keeps every partition). */
int broker_memjournal_setup(broker_t *b, char *errstr, size_t errstr_size);
int broker_memjournal_active(void);
/* In the mock's thread: journal what this partition (of the topic numbered so by
 * broker_fill_topic) holds past its journal's end, before a Produce answer says it was
 * appended to or a Fetch answer carries its records. */
void broker_memjournal_catch_up(size_t topic, int32_t partition);
/* In the mock's thread: look at every partition at the next turn (records are being appended
 * with no answer to say where: acks=0). */
void broker_memjournal_soon(void);
/* In the mock's thread, at every turn of its loop: the periodic look at every partition, and
 * the last one asked for by _finish. */
void broker_memjournal_turn(int64_t now_us);
/* When stopping, after broker_longpoll_quiesce(): has the mock's thread journal everything it
 * holds, then stop journaling. Returns 0, or -1 when the thread did not answer in time. */
int broker_memjournal_finish(rd_kafka_mock_cluster_t *mcluster, int timeout_ms);
/* Whether a journal write failed (fatal, as in the consumer), partitions waiting to be handed
 * to the consumer, and the records journaled so far. Any thread. */
int broker_memjournal_failed(void);
int broker_memjournal_handovers(void);
int64_t broker_memjournal_count(void);
void broker_memjournal_stop(void);

/* Sockets the mock accepted (and set TCP_NODELAY on) so far. */
long broker_nodelay_accepted(void);

#endif
