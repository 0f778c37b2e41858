/*
 * journal.c: the dev broker's append-only per-partition record files (format in journal.h).
 *
 * Writers buffer appends in memory and write them in large chunks; durability comes from
 * es_journal_writer_sync(). Readers read the file in large chunks too (no syscall per record),
 * verify each record's crc32c and offset continuity, and treat a partially written record at
 * the current end of the file as "not written yet" so that they can follow a growing file.
 * Opening a writer truncates a torn tail left by a crash; corruption anywhere else is an error.
 */
#include "journal.h"

#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define JOURNAL_MAGIC "ESJRNL01"
#define JOURNAL_MAGIC_LEN 8
#define REC_HDR_LEN 8 /* u32 body_len | u32 crc */
/* offset, timestamp, key_len, value_len, header_cnt */
#define BODY_MIN_LEN (8 + 8 + 4 + 4 + 4)
/* Kafka records are far smaller; anything bigger is a damaged length field. */
#define BODY_MAX_LEN (256u * 1024 * 1024)
#define WRITE_BUF_FLUSH (1024 * 1024)
#define READ_BUF_INIT (1024 * 1024)
/* The reader remembers the file position of every INDEX_EVERY-th record it passes. */
#define INDEX_EVERY 1024

/* ---- crc32c (Castagnoli, reflected polynomial 0x82F63B78), slicing by 8 ---- */

static uint32_t crc_table[8][256];
static int crc_hw; /* the CPU has the crc32c instruction (set once, with the tables) */
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc32c_init(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    crc_hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
#endif
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) {
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        }
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++) {
        for (int t = 1; t < 8; t++) {
            uint32_t prev = crc_table[t - 1][i];
            crc_table[t][i] = (prev >> 8) ^ crc_table[0][prev & 0xff];
        }
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
/* The same crc32c with the SSE4.2 instruction: reading the journal (replay, rebuild, restore)
 * spends a good part of its time here. */
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(const unsigned char *p, size_t len)
{
    uint64_t c = 0xFFFFFFFFu;
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8); /* little-endian, as the table version reads */
        c = __builtin_ia32_crc32di(c, v);
        p += 8;
        len -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (len--) {
        c32 = __builtin_ia32_crc32qi(c32, *p++);
    }
    return c32 ^ 0xFFFFFFFFu;
}
#endif

/* crc32c of `len` bytes: the CPU's instruction when it has one, else tables built once. */
static uint32_t crc32c(const unsigned char *p, size_t len)
{
    pthread_once(&crc_once, crc32c_init);
#if defined(__x86_64__) && defined(__GNUC__)
    if (crc_hw) {
        return crc32c_hw(p, len);
    }
#endif
    uint32_t c = 0xFFFFFFFFu;
    while (len >= 8) {
        uint32_t lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                           (uint32_t)p[3] << 24);
        c = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
            crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^ crc_table[3][p[4]] ^
            crc_table[2][p[5]] ^ crc_table[1][p[6]] ^ crc_table[0][p[7]];
        p += 8;
        len -= 8;
    }
    while (len--) {
        c = (c >> 8) ^ crc_table[0][(c ^ *p++) & 0xff];
    }
    return c ^ 0xFFFFFFFFu;
}

/* ---- little-endian helpers ---- */

static void put16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (unsigned char)(v >> (8 * i));
    }
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (unsigned char)(v >> (8 * i));
    }
}

static uint16_t get16(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const unsigned char *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static int journal_path(char *buf, size_t size, const char *data_dir, const char *topic,
                        int32_t partition)
{
    int n = snprintf(buf, size, "%s/journal/%s/%d.log", data_dir, topic, (int)partition);
    return n > 0 && (size_t)n < size ? 0 : -1;
}

/* mkdir -p of the folder part of `path`. */
static int mkdir_parents(const char *path)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') {
            continue;
        }
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST) {
            return -1;
        }
        *p = '/';
    }
    return 0;
}

/* ---- reader ---- */

typedef struct index_entry {
    int64_t offset;
    off_t fpos;
} index_entry_t;

struct es_journal_reader {
    int fd;
    char path[PATH_MAX];
    unsigned char *buf; /* file bytes [buf_off, buf_off + len) */
    size_t cap, len, pos;
    off_t buf_off;
    int eof;             /* the last read hit the end of the file */
    int64_t next_offset; /* offset of the record at buf_off + pos */
    int64_t skip_until;  /* records below this offset are skipped (seek) */
    int magic_ok;
    index_entry_t *idx;
    size_t idx_cnt, idx_cap;
    char *names; /* header names of the last record, NUL-terminated */
    size_t names_cap;
};

/* Read more of the file after what is buffered, keeping the unread bytes. Makes room for at
 * least `want` unread bytes. Returns 0 or -1 (errno). */
static int reader_fill(es_journal_reader_t *r, size_t want)
{
    if (r->pos > 0) {
        memmove(r->buf, r->buf + r->pos, r->len - r->pos);
        r->buf_off += (off_t)r->pos;
        r->len -= r->pos;
        r->pos = 0;
    }
    if (want > r->cap) {
        size_t ncap = r->cap;
        while (ncap < want) {
            ncap *= 2;
        }
        unsigned char *nbuf = realloc(r->buf, ncap);
        if (!nbuf) {
            return -1;
        }
        r->buf = nbuf;
        r->cap = ncap;
    }
    r->eof = 0;
    while (r->len < r->cap) {
        ssize_t n = pread(r->fd, r->buf + r->len, r->cap - r->len, r->buf_off + (off_t)r->len);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        if (n == 0) {
            r->eof = 1;
            break;
        }
        r->len += (size_t)n;
    }
    return 0;
}

es_journal_reader_t *es_journal_reader_open(const char *data_dir, const char *topic,
                                            int32_t partition, char *errstr, size_t errstr_size)
{
    es_journal_reader_t *r = calloc(1, sizeof(*r));
    if (!r) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    r->fd = -1;
    if (journal_path(r->path, sizeof(r->path), data_dir, topic, partition) != 0) {
        snprintf(errstr, errstr_size, "journal path for \"%s\" [%d] is too long", topic,
                 (int)partition);
        errno = ENAMETOOLONG;
        goto err;
    }
    r->fd = open(r->path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0) {
        int e = errno;
        snprintf(errstr, errstr_size, "could not open journal %s: %s", r->path, strerror(e));
        errno = e;
        goto err;
    }
    r->cap = READ_BUF_INIT;
    r->buf = malloc(r->cap);
    if (!r->buf) {
        snprintf(errstr, errstr_size, "out of memory");
        goto err;
    }
    r->buf_off = JOURNAL_MAGIC_LEN;
    return r;
err:
    es_journal_reader_close(r);
    return NULL;
}

void es_journal_reader_close(es_journal_reader_t *r)
{
    if (!r) {
        return;
    }
    if (r->fd >= 0) {
        close(r->fd);
    }
    free(r->buf);
    free(r->idx);
    free(r->names);
    free(r);
}

static void reader_index_add(es_journal_reader_t *r, int64_t offset, off_t fpos)
{
    if (r->idx_cnt > 0 && r->idx[r->idx_cnt - 1].offset >= offset) {
        return;
    }
    if (r->idx_cnt == r->idx_cap) {
        size_t ncap = r->idx_cap ? r->idx_cap * 2 : 64;
        index_entry_t *n = realloc(r->idx, ncap * sizeof(*n));
        if (!n) {
            return; /* the index is only a shortcut */
        }
        r->idx = n;
        r->idx_cap = ncap;
    }
    r->idx[r->idx_cnt].offset = offset;
    r->idx[r->idx_cnt].fpos = fpos;
    r->idx_cnt++;
}

int es_journal_reader_seek(es_journal_reader_t *r, int64_t offset)
{
    if (offset < 0) {
        offset = 0;
    }
    /* Start from the closest known position at or before `offset`: the sparse index, or
     * the current position when it is closer, or the start of the file. */
    off_t fpos = JOURNAL_MAGIC_LEN;
    int64_t at = 0;
    for (size_t i = r->idx_cnt; i-- > 0;) {
        if (r->idx[i].offset <= offset) {
            fpos = r->idx[i].fpos;
            at = r->idx[i].offset;
            break;
        }
    }
    if (r->next_offset <= offset && r->next_offset >= at) {
        r->skip_until = offset;
        return 0;
    }
    r->buf_off = fpos;
    r->len = r->pos = 0;
    r->eof = 0;
    r->next_offset = at;
    r->skip_until = offset;
    return 0;
}

static int corrupt(es_journal_reader_t *r, char *errstr, size_t errstr_size, const char *why)
{
    snprintf(errstr, errstr_size, "journal %s is corrupt at byte %lld (offset %lld): %s", r->path,
             (long long)(r->buf_off + (off_t)r->pos), (long long)r->next_offset, why);
    return -1;
}

/* Parse one verified body into *rec. Returns 0, or -1 when the body is inconsistent. */
static int parse_body(es_journal_reader_t *r, const unsigned char *b, size_t blen,
                      es_journal_record_t *rec)
{
    const unsigned char *end = b + blen;
    rec->offset = (int64_t)get64(b);
    rec->timestamp = (int64_t)get64(b + 8);
    b += 16;
    int32_t kl = (int32_t)get32(b);
    b += 4;
    if (kl < -1 || (kl > 0 && (size_t)(end - b) < (size_t)kl)) {
        return -1;
    }
    rec->key = kl >= 0 ? b : NULL;
    rec->key_len = kl;
    b += kl > 0 ? kl : 0;
    if ((size_t)(end - b) < 4) {
        return -1;
    }
    int32_t vl = (int32_t)get32(b);
    b += 4;
    if (vl < -1 || (vl > 0 && (size_t)(end - b) < (size_t)vl)) {
        return -1;
    }
    rec->value = vl >= 0 ? b : NULL;
    rec->value_len = vl;
    b += vl > 0 ? vl : 0;
    if ((size_t)(end - b) < 4) {
        return -1;
    }
    uint32_t hc = get32(b);
    b += 4;
    if (hc > ES_JOURNAL_MAX_HEADERS) {
        return -1;
    }
    /* First pass: validate and size the names; second pass: copy them NUL-terminated. */
    const unsigned char *h = b;
    size_t names_len = 0;
    for (uint32_t i = 0; i < hc; i++) {
        if ((size_t)(end - h) < 2) {
            return -1;
        }
        uint16_t nl = get16(h);
        h += 2;
        if ((size_t)(end - h) < (size_t)nl + 4) {
            return -1;
        }
        h += nl;
        int32_t hl = (int32_t)get32(h);
        h += 4;
        if (hl < -1 || (hl > 0 && (size_t)(end - h) < (size_t)hl)) {
            return -1;
        }
        h += hl > 0 ? hl : 0;
        names_len += (size_t)nl + 1;
    }
    if (h != end) {
        return -1;
    }
    if (names_len > r->names_cap) {
        size_t ncap = names_len < 256 ? 256 : names_len * 2;
        char *n = realloc(r->names, ncap);
        if (!n) {
            return -1;
        }
        r->names = n;
        r->names_cap = ncap;
    }
    char *np = r->names;
    for (uint32_t i = 0; i < hc; i++) {
        uint16_t nl = get16(b);
        b += 2;
        memcpy(np, b, nl);
        np[nl] = '\0';
        rec->headers[i].name = np;
        np += nl + 1;
        b += nl;
        int32_t hl = (int32_t)get32(b);
        b += 4;
        rec->headers[i].value = hl >= 0 ? b : NULL;
        rec->headers[i].value_len = hl;
        b += hl > 0 ? hl : 0;
    }
    rec->header_cnt = hc;
    return 0;
}

int es_journal_reader_next(es_journal_reader_t *r, es_journal_record_t *rec, char *errstr,
                           size_t errstr_size)
{
    if (!r->magic_ok) {
        unsigned char m[JOURNAL_MAGIC_LEN];
        ssize_t n = pread(r->fd, m, sizeof(m), 0);
        if (n < 0) {
            snprintf(errstr, errstr_size, "could not read journal %s: %s", r->path,
                     strerror(errno));
            return -1;
        }
        if (n < JOURNAL_MAGIC_LEN) {
            if (memcmp(m, JOURNAL_MAGIC, (size_t)n) != 0) {
                snprintf(errstr, errstr_size, "%s is not a journal file", r->path);
                return -1;
            }
            return 0; /* being created */
        }
        if (memcmp(m, JOURNAL_MAGIC, JOURNAL_MAGIC_LEN) != 0) {
            snprintf(errstr, errstr_size, "%s is not a journal file", r->path);
            return -1;
        }
        r->magic_ok = 1;
    }
    for (;;) {
        if (r->len - r->pos < REC_HDR_LEN) {
            if (reader_fill(r, REC_HDR_LEN) != 0) {
                snprintf(errstr, errstr_size, "could not read journal %s: %s", r->path,
                         strerror(errno));
                return -1;
            }
            if (r->len - r->pos < REC_HDR_LEN) {
                return 0;
            }
        }
        const unsigned char *p = r->buf + r->pos;
        uint32_t blen = get32(p);
        if (blen < BODY_MIN_LEN || blen > BODY_MAX_LEN) {
            return corrupt(r, errstr, errstr_size, "impossible record length");
        }
        size_t need = REC_HDR_LEN + (size_t)blen;
        if (r->len - r->pos < need) {
            if (reader_fill(r, need) != 0) {
                snprintf(errstr, errstr_size, "could not read journal %s: %s", r->path,
                         strerror(errno));
                return -1;
            }
            if (r->len - r->pos < need) {
                return 0; /* not completely written yet */
            }
            p = r->buf + r->pos;
        }
        const unsigned char *body = p + REC_HDR_LEN;
        int64_t off = (int64_t)get64(body);
        if (off != r->next_offset) {
            return corrupt(r, errstr, errstr_size, "offsets are not consecutive");
        }
        if (off < r->skip_until) {
            /* Seeking: offsets are dense, so the length and offset are enough to skip. */
            if (off % INDEX_EVERY == 0) {
                reader_index_add(r, off, r->buf_off + (off_t)r->pos);
            }
            r->pos += need;
            r->next_offset++;
            continue;
        }
        if (crc32c(body, blen) != get32(p + 4)) {
            if (r->eof && r->pos + need == r->len) {
                /* The last record of the file may still be being written: forget the
                 * bytes so that the next call reads them again. */
                r->len = r->pos;
                return 0;
            }
            return corrupt(r, errstr, errstr_size, "checksum mismatch");
        }
        if (parse_body(r, body, blen, rec) != 0) {
            return corrupt(r, errstr, errstr_size, "malformed record");
        }
        if (off % INDEX_EVERY == 0) {
            reader_index_add(r, off, r->buf_off + (off_t)r->pos);
        }
        r->pos += need;
        r->next_offset++;
        return 1;
    }
}

/* ---- writer ---- */

struct es_journal_writer {
    int fd;
    char path[PATH_MAX];
    int64_t next_offset;
    unsigned char *buf;
    size_t len, cap;
    int failed; /* a write failed: the file may end in a partial record, refuse appends */
};

static int write_all(int fd, const unsigned char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int writer_flush(es_journal_writer_t *w)
{
    if (w->failed) {
        errno = EIO;
        return -1;
    }
    if (w->len == 0) {
        return 0;
    }
    if (write_all(w->fd, w->buf, w->len) != 0) {
        w->failed = 1;
        return -1;
    }
    w->len = 0;
    return 0;
}

int es_journal_writer_flush(es_journal_writer_t *w)
{
    return writer_flush(w);
}

/* Is everything in fd from `from` to the end zero bytes? (a crash can leave the file
 * extended with zeros after the last complete write) */
static int tail_is_zero(int fd, off_t from, off_t size)
{
    unsigned char b[65536];
    while (from < size) {
        size_t want = (size_t)(size - from) < sizeof(b) ? (size_t)(size - from) : sizeof(b);
        ssize_t n = pread(fd, b, want, from);
        if (n <= 0) {
            return 0;
        }
        for (ssize_t i = 0; i < n; i++) {
            if (b[i]) {
                return 0;
            }
        }
        from += n;
    }
    return 1;
}

es_journal_writer_t *es_journal_writer_open(const char *data_dir, const char *topic,
                                            int32_t partition, char *errstr, size_t errstr_size)
{
    es_journal_reader_t *r = NULL;
    es_journal_writer_t *w = calloc(1, sizeof(*w));
    if (!w) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    w->fd = -1;
    if (journal_path(w->path, sizeof(w->path), data_dir, topic, partition) != 0) {
        snprintf(errstr, errstr_size, "journal path for \"%s\" [%d] is too long", topic,
                 (int)partition);
        goto err;
    }
    if (mkdir_parents(w->path) != 0) {
        snprintf(errstr, errstr_size, "could not create the folder of journal %s: %s", w->path,
                 strerror(errno));
        goto err;
    }
    w->fd = open(w->path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        snprintf(errstr, errstr_size, "could not open journal %s: %s", w->path, strerror(errno));
        goto err;
    }
    struct stat st;
    if (fstat(w->fd, &st) != 0) {
        snprintf(errstr, errstr_size, "could not stat journal %s: %s", w->path, strerror(errno));
        goto err;
    }
    if (st.st_size < JOURNAL_MAGIC_LEN) {
        /* New, or torn while being created: (re)write the magic. */
        unsigned char m[JOURNAL_MAGIC_LEN] = {0};
        ssize_t n = pread(w->fd, m, sizeof(m), 0);
        if (n < 0 || memcmp(m, JOURNAL_MAGIC, (size_t)n) != 0) {
            snprintf(errstr, errstr_size, "%s is not a journal file", w->path);
            goto err;
        }
        if (ftruncate(w->fd, 0) != 0 ||
            write_all(w->fd, (const unsigned char *)JOURNAL_MAGIC, JOURNAL_MAGIC_LEN) != 0 ||
            fdatasync(w->fd) != 0) {
            snprintf(errstr, errstr_size, "could not initialise journal %s: %s", w->path,
                     strerror(errno));
            goto err;
        }
    } else {
        /* Scan every record to find the end of the last complete one. */
        r = es_journal_reader_open(data_dir, topic, partition, errstr, errstr_size);
        if (!r) {
            goto err;
        }
        es_journal_record_t rec;
        int rc;
        char rerr[512];
        while ((rc = es_journal_reader_next(r, &rec, rerr, sizeof(rerr))) == 1) {
        }
        off_t end = r->buf_off + (off_t)r->pos;
        if (rc < 0 && !(r->magic_ok && tail_is_zero(w->fd, end, st.st_size))) {
            snprintf(errstr, errstr_size, "%s", rerr);
            goto err;
        }
        w->next_offset = r->next_offset;
        if (end < st.st_size) {
            if (ftruncate(w->fd, end) != 0) {
                snprintf(errstr, errstr_size, "could not truncate the torn tail of journal %s: %s",
                         w->path, strerror(errno));
                goto err;
            }
            es_log_warn("truncated the torn tail of a journal",
                        "path=%s bytes=%lld next_offset=%lld", w->path,
                        (long long)(st.st_size - end), (long long)w->next_offset);
        }
        es_journal_reader_close(r);
        r = NULL;
    }
    if (lseek(w->fd, 0, SEEK_END) < 0) {
        snprintf(errstr, errstr_size, "could not seek journal %s: %s", w->path, strerror(errno));
        goto err;
    }
    w->cap = 2 * WRITE_BUF_FLUSH;
    w->buf = malloc(w->cap);
    if (!w->buf) {
        snprintf(errstr, errstr_size, "out of memory");
        goto err;
    }
    return w;
err:
    es_journal_reader_close(r);
    if (w->fd >= 0) {
        close(w->fd);
    }
    free(w->buf);
    free(w);
    return NULL;
}

int64_t es_journal_writer_next_offset(const es_journal_writer_t *w)
{
    return w->next_offset;
}

int es_journal_writer_append(es_journal_writer_t *w, const es_journal_record_t *rec)
{
    if (w->failed) {
        errno = EIO;
        return -1;
    }
    if (rec->offset != w->next_offset || rec->header_cnt > ES_JOURNAL_MAX_HEADERS ||
        rec->key_len < -1 || rec->value_len < -1 || rec->key_len > INT32_MAX ||
        rec->value_len > INT32_MAX) {
        errno = EINVAL;
        return -1;
    }
    size_t blen = BODY_MIN_LEN + (rec->key_len > 0 ? (size_t)rec->key_len : 0) +
                  (rec->value_len > 0 ? (size_t)rec->value_len : 0);
    for (size_t i = 0; i < rec->header_cnt; i++) {
        const es_journal_header_t *h = &rec->headers[i];
        size_t nl = strlen(h->name);
        if (nl > UINT16_MAX || h->value_len < -1 || h->value_len > INT32_MAX) {
            errno = EINVAL;
            return -1;
        }
        blen += 2 + nl + 4 + (h->value_len > 0 ? (size_t)h->value_len : 0);
    }
    if (blen > BODY_MAX_LEN) {
        errno = EMSGSIZE;
        return -1;
    }
    size_t need = REC_HDR_LEN + blen;
    if (w->len + need > w->cap) {
        if (writer_flush(w) != 0) {
            return -1;
        }
        if (need > w->cap) {
            unsigned char *n = realloc(w->buf, need);
            if (!n) {
                return -1;
            }
            w->buf = n;
            w->cap = need;
        }
    }
    unsigned char *p = w->buf + w->len;
    unsigned char *body = p + REC_HDR_LEN;
    unsigned char *b = body;
    put64(b, (uint64_t)rec->offset);
    put64(b + 8, (uint64_t)rec->timestamp);
    b += 16;
    put32(b, (uint32_t)(int32_t)rec->key_len);
    b += 4;
    if (rec->key_len > 0) {
        memcpy(b, rec->key, (size_t)rec->key_len);
        b += rec->key_len;
    }
    put32(b, (uint32_t)(int32_t)rec->value_len);
    b += 4;
    if (rec->value_len > 0) {
        memcpy(b, rec->value, (size_t)rec->value_len);
        b += rec->value_len;
    }
    put32(b, (uint32_t)rec->header_cnt);
    b += 4;
    for (size_t i = 0; i < rec->header_cnt; i++) {
        const es_journal_header_t *h = &rec->headers[i];
        size_t nl = strlen(h->name);
        put16(b, (uint16_t)nl);
        b += 2;
        memcpy(b, h->name, nl);
        b += nl;
        put32(b, (uint32_t)(int32_t)h->value_len);
        b += 4;
        if (h->value_len > 0) {
            memcpy(b, h->value, (size_t)h->value_len);
            b += h->value_len;
        }
    }
    put32(p, (uint32_t)blen);
    put32(p + 4, crc32c(body, blen));
    w->len += need;
    w->next_offset++;
    if (w->len >= WRITE_BUF_FLUSH) {
        return writer_flush(w);
    }
    return 0;
}

int es_journal_writer_sync(es_journal_writer_t *w)
{
    if (writer_flush(w) != 0) {
        return -1;
    }
    return fdatasync(w->fd);
}

int es_journal_writer_datasync(es_journal_writer_t *w)
{
    return fdatasync(w->fd);
}

void es_journal_writer_close(es_journal_writer_t *w)
{
    if (!w) {
        return;
    }
    es_journal_writer_sync(w);
    close(w->fd);
    free(w->buf);
    free(w);
}

int es_journal_partition_count(const char *data_dir, const char *topic)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/journal/%s", data_dir, topic);
    DIR *d = opendir(path);
    if (!d) {
        return 0;
    }
    int cnt = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        const char *s = de->d_name;
        const char *p = s;
        while (*p >= '0' && *p <= '9') {
            p++;
        }
        if (p > s && strcmp(p, ".log") == 0) {
            cnt++;
        }
    }
    closedir(d);
    return cnt;
}
