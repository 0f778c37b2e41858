/*
 * journal.h: the dev broker's durable copy of every record, one append-only file per
 * topic-partition: <data>/journal/<topic>/<partition>.log.
 *
 * The dev broker appends every record it holds (offsets 0, 1, 2, ... with no gaps) and
 * restores them into a fresh mock cluster on start, so each record keeps its topic, partition,
 * offset, key, headers and timestamp across a stop and start. The journal is also the archive
 * tier: esctl replay and projection rebuilds read records the broker's in-memory window
 * (~5 MiB per partition) has dropped.
 *
 * File format: a 8-byte magic "ESJRNL01", then records:
 *   u32 body_len | u32 crc32c(body) | body
 *   body = i64 offset | i64 timestamp_ms | i32 key_len (-1 = NULL) | key |
 *          i32 value_len (-1 = NULL) | value | u32 header_cnt |
 *          header_cnt x (u16 name_len | name | i32 value_len (-1 = NULL) | value)
 * all little-endian. A torn last record (crash mid-write) is detected by length/crc and
 * truncated away when the writer reopens the file.
 */
#ifndef ES_JOURNAL_H
#define ES_JOURNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ES_JOURNAL_MAX_HEADERS 32

typedef struct es_journal_header {
    const char *name; /* NUL-terminated */
    const void *value;
    ssize_t value_len; /* -1 = NULL */
} es_journal_header_t;

/* One record. In a reader's output every pointer is borrowed until the next call. */
typedef struct es_journal_record {
    int64_t offset;
    int64_t timestamp; /* ms since epoch */
    const void *key;
    ssize_t key_len; /* -1 = NULL */
    const void *value;
    ssize_t value_len; /* -1 = NULL */
    size_t header_cnt;
    es_journal_header_t headers[ES_JOURNAL_MAX_HEADERS];
} es_journal_record_t;

typedef struct es_journal_writer es_journal_writer_t;
typedef struct es_journal_reader es_journal_reader_t;

/* Open (creating folders and file as needed) the journal of one partition for appending.
 * A torn tail is truncated. Returns NULL with errstr filled. Close with _close(). */
es_journal_writer_t *es_journal_writer_open(const char *data_dir, const char *topic,
                                            int32_t partition, char *errstr, size_t errstr_size);
/* The offset the next appended record must have (= records in the file). */
int64_t es_journal_writer_next_offset(const es_journal_writer_t *w);
/* Append one record (copied). rec->offset must equal _next_offset(). Returns 0 or -1. */
int es_journal_writer_append(es_journal_writer_t *w, const es_journal_record_t *rec);
/* Hand buffered appends to the file (the kernel): they survive this process being killed, not
 * an OS crash. Returns 0 or -1. */
int es_journal_writer_flush(es_journal_writer_t *w);
/* Flush buffered appends to the file and fdatasync it. Returns 0 or -1. */
int es_journal_writer_sync(es_journal_writer_t *w);
/* fdatasync what was handed to the file, leaving any buffered appends alone. It reads nothing
 * an append or a flush changes: another thread may call it while one thread appends and
 * flushes. Returns 0 or -1. */
int es_journal_writer_datasync(es_journal_writer_t *w);
/* Sync and close; NULL is a no-op. */
void es_journal_writer_close(es_journal_writer_t *w);

/* Open one partition's journal for reading. Returns NULL with errstr filled (a missing file
 * is reported as such: errno == ENOENT). */
es_journal_reader_t *es_journal_reader_open(const char *data_dir, const char *topic,
                                            int32_t partition, char *errstr, size_t errstr_size);
/* Position the reader at the first record with offset >= `offset`. Returns 0 or -1. */
int es_journal_reader_seek(es_journal_reader_t *r, int64_t offset);
/* Read the next record into *rec (borrowed pointers). Returns 1 for a record, 0 at the end
 * of what is written so far (call again later to follow a growing file), -1 on corruption. */
int es_journal_reader_next(es_journal_reader_t *r, es_journal_record_t *rec, char *errstr,
                           size_t errstr_size);
void es_journal_reader_close(es_journal_reader_t *r);

/* The partitions journaled for `topic` (count of <n>.log files), 0 if none. */
int es_journal_partition_count(const char *data_dir, const char *topic);

#endif
