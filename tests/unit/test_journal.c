/*
 * test_journal.c: the journal file format: round trips (NULL and empty keys, values and
 * header values), torn-tail truncation when a writer reopens, following a growing file,
 * seeking, and corruption in the middle being an error rather than a silent truncation.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "journal.h"

static char tmpdir[256];

static void setup(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/es-test-journal-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

static void journal_file(char *buf, size_t size, int32_t partition)
{
    snprintf(buf, size, "%s/journal/t.events/%d.log", tmpdir, (int)partition);
}

static off_t file_size(const char *path)
{
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    return st.st_size;
}

/* A record whose contents are derived from its offset, so that reads can be checked. */
static void make_record(es_journal_record_t *rec, int64_t off, char *kbuf, char *vbuf)
{
    memset(rec, 0, sizeof(*rec));
    rec->offset = off;
    rec->timestamp = 1700000000000 + off;
    snprintf(kbuf, 32, "key-%lld", (long long)off);
    snprintf(vbuf, 64, "value-%lld-xxxxxxxxxxxxxxxx", (long long)off);
    rec->key = kbuf;
    rec->key_len = (ssize_t)strlen(kbuf);
    rec->value = vbuf;
    rec->value_len = (ssize_t)strlen(vbuf);
    rec->header_cnt = 1;
    rec->headers[0].name = "n";
    rec->headers[0].value = kbuf;
    rec->headers[0].value_len = rec->key_len;
}

static void check_record(const es_journal_record_t *rec, int64_t off)
{
    char k[32], v[64];
    es_journal_record_t want;
    make_record(&want, off, k, v);
    ck_assert_int_eq(rec->offset, off);
    ck_assert_int_eq(rec->timestamp, want.timestamp);
    ck_assert_int_eq(rec->key_len, want.key_len);
    ck_assert_mem_eq(rec->key, want.key, (size_t)want.key_len);
    ck_assert_int_eq(rec->value_len, want.value_len);
    ck_assert_mem_eq(rec->value, want.value, (size_t)want.value_len);
    ck_assert_uint_eq(rec->header_cnt, 1);
    ck_assert_str_eq(rec->headers[0].name, "n");
}

static es_journal_writer_t *writer_open(void)
{
    char err[512];
    es_journal_writer_t *w = es_journal_writer_open(tmpdir, "t.events", 0, err, sizeof(err));
    ck_assert_msg(w != NULL, "%s", err);
    return w;
}

static es_journal_reader_t *reader_open(void)
{
    char err[512];
    es_journal_reader_t *r = es_journal_reader_open(tmpdir, "t.events", 0, err, sizeof(err));
    ck_assert_msg(r != NULL, "%s", err);
    return r;
}

static void append_range(es_journal_writer_t *w, int64_t from, int64_t to)
{
    for (int64_t off = from; off < to; off++) {
        char k[32], v[64];
        es_journal_record_t rec;
        make_record(&rec, off, k, v);
        ck_assert_int_eq(es_journal_writer_append(w, &rec), 0);
    }
}

START_TEST(test_round_trip_nulls_and_headers)
{
    es_journal_writer_t *w = writer_open();
    ck_assert_int_eq(es_journal_writer_next_offset(w), 0);
    es_journal_record_t rec;
    memset(&rec, 0, sizeof(rec));
    /* 0: NULL key, NULL value, no headers */
    rec.offset = 0;
    rec.timestamp = -1;
    rec.key_len = -1;
    rec.value_len = -1;
    ck_assert_int_eq(es_journal_writer_append(w, &rec), 0);
    /* 1: empty key and value, headers with NULL, empty and binary values */
    static const unsigned char bin[] = {0, 1, 2, 0xff};
    rec.offset = 1;
    rec.timestamp = 1700000000123;
    rec.key = "";
    rec.key_len = 0;
    rec.value = "";
    rec.value_len = 0;
    rec.header_cnt = 3;
    rec.headers[0] = (es_journal_header_t){"null-header", NULL, -1};
    rec.headers[1] = (es_journal_header_t){"empty-header", "", 0};
    rec.headers[2] = (es_journal_header_t){"es.trace", bin, sizeof(bin)};
    ck_assert_int_eq(es_journal_writer_append(w, &rec), 0);
    /* a wrong offset is refused */
    rec.offset = 5;
    ck_assert_int_eq(es_journal_writer_append(w, &rec), -1);
    ck_assert_int_eq(es_journal_writer_next_offset(w), 2);
    es_journal_writer_close(w);

    es_journal_reader_t *r = reader_open();
    char err[512];
    es_journal_record_t got;
    ck_assert_int_eq(es_journal_reader_next(r, &got, err, sizeof(err)), 1);
    ck_assert_int_eq(got.offset, 0);
    ck_assert_int_eq(got.timestamp, -1);
    ck_assert_ptr_null(got.key);
    ck_assert_int_eq(got.key_len, -1);
    ck_assert_ptr_null(got.value);
    ck_assert_int_eq(got.value_len, -1);
    ck_assert_uint_eq(got.header_cnt, 0);
    ck_assert_int_eq(es_journal_reader_next(r, &got, err, sizeof(err)), 1);
    ck_assert_int_eq(got.offset, 1);
    ck_assert_int_eq(got.timestamp, 1700000000123);
    ck_assert_ptr_nonnull(got.key);
    ck_assert_int_eq(got.key_len, 0);
    ck_assert_ptr_nonnull(got.value);
    ck_assert_int_eq(got.value_len, 0);
    ck_assert_uint_eq(got.header_cnt, 3);
    ck_assert_str_eq(got.headers[0].name, "null-header");
    ck_assert_ptr_null(got.headers[0].value);
    ck_assert_int_eq(got.headers[0].value_len, -1);
    ck_assert_str_eq(got.headers[1].name, "empty-header");
    ck_assert_ptr_nonnull(got.headers[1].value);
    ck_assert_int_eq(got.headers[1].value_len, 0);
    ck_assert_str_eq(got.headers[2].name, "es.trace");
    ck_assert_int_eq(got.headers[2].value_len, 4);
    ck_assert_mem_eq(got.headers[2].value, bin, sizeof(bin));
    ck_assert_int_eq(es_journal_reader_next(r, &got, err, sizeof(err)), 0);
    es_journal_reader_close(r);

    ck_assert_int_eq(es_journal_partition_count(tmpdir, "t.events"), 1);
    ck_assert_int_eq(es_journal_partition_count(tmpdir, "no.such.topic"), 0);
    errno = 0;
    ck_assert_ptr_null(es_journal_reader_open(tmpdir, "no.such.topic", 0, err, sizeof(err)));
    ck_assert_int_eq(errno, ENOENT);
}
END_TEST

START_TEST(test_large_round_trip_and_reopen)
{
    /* Enough records to cross the write and read buffers several times. */
    const int64_t n = 60000;
    es_journal_writer_t *w = writer_open();
    append_range(w, 0, n);
    es_journal_writer_close(w);
    w = writer_open();
    ck_assert_int_eq(es_journal_writer_next_offset(w), n);
    append_range(w, n, n + 10);
    es_journal_writer_close(w);

    es_journal_reader_t *r = reader_open();
    char err[512];
    es_journal_record_t got;
    int64_t cnt = 0;
    int rc;
    while ((rc = es_journal_reader_next(r, &got, err, sizeof(err))) == 1) {
        check_record(&got, cnt);
        cnt++;
    }
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_int_eq(cnt, n + 10);
    es_journal_reader_close(r);
}
END_TEST

START_TEST(test_torn_tail_truncated)
{
    char path[512];
    journal_file(path, sizeof(path), 0);
    es_journal_writer_t *w = writer_open();
    append_range(w, 0, 10);
    es_journal_writer_close(w);
    off_t good = file_size(path);

    /* A crash in the middle of writing record 10: only part of it reached the file. */
    w = writer_open();
    append_range(w, 10, 11);
    es_journal_writer_close(w);
    off_t full = file_size(path);
    ck_assert_int_eq(truncate(path, good + (full - good) / 2), 0);

    /* A reader sees the partial record as "not yet", not as corruption. */
    es_journal_reader_t *r = reader_open();
    char err[512];
    es_journal_record_t got;
    for (int64_t i = 0; i < 10; i++) {
        ck_assert_int_eq(es_journal_reader_next(r, &got, err, sizeof(err)), 1);
    }
    ck_assert_int_eq(es_journal_reader_next(r, &got, err, sizeof(err)), 0);
    es_journal_reader_close(r);

    /* The writer cuts it away and continues at offset 10. */
    w = writer_open();
    ck_assert_int_eq(es_journal_writer_next_offset(w), 10);
    ck_assert_int_eq(file_size(path), good);
    append_range(w, 10, 12);
    es_journal_writer_close(w);

    /* A torn header (fewer than 8 bytes) and a zero-filled tail are cut too. */
    int fd = open(path, O_WRONLY | O_APPEND);
    ck_assert_int_ge(fd, 0);
    static const unsigned char zeros[100] = {0};
    ck_assert_int_eq(write(fd, zeros, sizeof(zeros)), (ssize_t)sizeof(zeros));
    close(fd);
    w = writer_open();
    ck_assert_int_eq(es_journal_writer_next_offset(w), 12);
    es_journal_writer_close(w);
    fd = open(path, O_WRONLY | O_APPEND);
    ck_assert_int_eq(write(fd, "\x30\x00\x00", 3), 3);
    close(fd);
    w = writer_open();
    ck_assert_int_eq(es_journal_writer_next_offset(w), 12);
    es_journal_writer_close(w);

    r = reader_open();
    int64_t cnt = 0;
    int rc;
    while ((rc = es_journal_reader_next(r, &got, err, sizeof(err))) == 1) {
        check_record(&got, cnt++);
    }
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(cnt, 12);
    es_journal_reader_close(r);
}
END_TEST

START_TEST(test_corruption_in_the_middle_is_an_error)
{
    char path[512];
    journal_file(path, sizeof(path), 0);
    es_journal_writer_t *w = writer_open();
    append_range(w, 0, 100);
    es_journal_writer_close(w);
    /* Flip one byte inside an early record's value. */
    int fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    unsigned char b;
    ck_assert_int_eq(pread(fd, &b, 1, 200), 1);
    b ^= 0x40;
    ck_assert_int_eq(pwrite(fd, &b, 1, 200), 1);
    close(fd);

    es_journal_reader_t *r = reader_open();
    char err[512];
    es_journal_record_t got;
    int rc;
    while ((rc = es_journal_reader_next(r, &got, err, sizeof(err))) == 1) {
    }
    ck_assert_int_eq(rc, -1);
    ck_assert_ptr_nonnull(strstr(err, "corrupt"));
    es_journal_reader_close(r);

    /* The writer refuses rather than truncating good records away. */
    ck_assert_ptr_null(es_journal_writer_open(tmpdir, "t.events", 0, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "corrupt"));
}
END_TEST

START_TEST(test_follow_growing_file)
{
    es_journal_writer_t *w = writer_open();
    es_journal_reader_t *r = reader_open();
    char err[512];
    es_journal_record_t got;
    /* Nothing synced yet: appends stay buffered in the writer until a sync. */
    append_range(w, 0, 5);
    ck_assert_int_eq(es_journal_reader_next(r, &got, err, sizeof(err)), 0);
    ck_assert_int_eq(es_journal_writer_sync(w), 0);
    for (int64_t i = 0; i < 5; i++) {
        ck_assert_int_eq(es_journal_reader_next(r, &got, err, sizeof(err)), 1);
        check_record(&got, i);
    }
    ck_assert_int_eq(es_journal_reader_next(r, &got, err, sizeof(err)), 0);
    ck_assert_int_eq(es_journal_reader_next(r, &got, err, sizeof(err)), 0);

    /* A record arriving in two pieces is "not yet" until it is complete. */
    char path[512];
    journal_file(path, sizeof(path), 0);
    off_t before = file_size(path);
    append_range(w, 5, 6);
    ck_assert_int_eq(es_journal_writer_sync(w), 0);
    off_t after = file_size(path);
    unsigned char rec5[256];
    ck_assert_int_lt(after - before, (off_t)sizeof(rec5));
    int fd = open(path, O_RDWR);
    ck_assert_int_eq(pread(fd, rec5, (size_t)(after - before), before), after - before);
    ck_assert_int_eq(ftruncate(fd, before + 5), 0);
    ck_assert_int_eq(es_journal_reader_next(r, &got, err, sizeof(err)), 0);
    ck_assert_int_eq(ftruncate(fd, before), 0);
    ck_assert_int_eq(pwrite(fd, rec5, (size_t)(after - before), before), after - before);
    close(fd);
    ck_assert_int_eq(es_journal_reader_next(r, &got, err, sizeof(err)), 1);
    check_record(&got, 5);

    /* Many more records, larger than the read buffer, arrive later. */
    append_range(w, 6, 30000);
    ck_assert_int_eq(es_journal_writer_sync(w), 0);
    for (int64_t i = 6; i < 30000; i++) {
        ck_assert_int_eq(es_journal_reader_next(r, &got, err, sizeof(err)), 1);
        ck_assert_int_eq(got.offset, i);
    }
    ck_assert_int_eq(es_journal_reader_next(r, &got, err, sizeof(err)), 0);
    es_journal_reader_close(r);
    es_journal_writer_close(w);
}
END_TEST

START_TEST(test_seek)
{
    const int64_t n = 20000;
    es_journal_writer_t *w = writer_open();
    append_range(w, 0, n);
    ck_assert_int_eq(es_journal_writer_sync(w), 0);
    es_journal_reader_t *r = reader_open();
    char err[512];
    es_journal_record_t got;
    static const int64_t targets[] = {0, 17, 5000, 4999, 19999, 1, 12345, 0, 8192, 8191};
    for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
        ck_assert_int_eq(es_journal_reader_seek(r, targets[i]), 0);
        ck_assert_int_eq(es_journal_reader_next(r, &got, err, sizeof(err)), 1);
        check_record(&got, targets[i]);
        if (targets[i] + 1 < n) {
            ck_assert_int_eq(es_journal_reader_next(r, &got, err, sizeof(err)), 1);
            ck_assert_int_eq(got.offset, targets[i] + 1);
        } else {
            ck_assert_int_eq(es_journal_reader_next(r, &got, err, sizeof(err)), 0);
        }
    }
    /* Past the end: nothing yet, then exactly the record asked for once it exists. */
    ck_assert_int_eq(es_journal_reader_seek(r, n + 5), 0);
    ck_assert_int_eq(es_journal_reader_next(r, &got, err, sizeof(err)), 0);
    append_range(w, n, n + 10);
    ck_assert_int_eq(es_journal_writer_sync(w), 0);
    ck_assert_int_eq(es_journal_reader_next(r, &got, err, sizeof(err)), 1);
    check_record(&got, n + 5);
    es_journal_reader_close(r);
    es_journal_writer_close(w);
}
END_TEST

Suite *journal_suite(void);

Suite *journal_suite(void)
{
    Suite *s = suite_create("journal");
    TCase *tc = tcase_create("journal");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_round_trip_nulls_and_headers);
    tcase_add_test(tc, test_large_round_trip_and_reopen);
    tcase_add_test(tc, test_torn_tail_truncated);
    tcase_add_test(tc, test_corruption_in_the_middle_is_an_error);
    tcase_add_test(tc, test_follow_growing_file);
    tcase_add_test(tc, test_seek);
    suite_add_tcase(s, tc);
    return s;
}
