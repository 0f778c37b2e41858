/*
 * ids.c: random and derived 128-bit identifiers, W3C traceparents and clocks (see ids.h).
 *
 * Derived ids must be stable across processes, builds and machines: the hash below is fixed
 * (little-endian word assembly, fixed seeds) and must never change, or replayed inputs would
 * emit events with new ids and escape deduplication.
 */
#include "ids.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static const char hexdigits[] = "0123456789abcdef";

static void hex_write(char *out, const unsigned char *bytes, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hexdigits[bytes[i] >> 4];
        out[2 * i + 1] = hexdigits[bytes[i] & 0x0f];
    }
}

static void u64_to_hex(char *out, uint64_t v)
{
    for (int i = 15; i >= 0; i--) {
        out[i] = hexdigits[v & 0x0f];
        v >>= 4;
    }
}

static int fill_random(unsigned char *buf, size_t len)
{
    size_t got = 0;

    while (got < len) {
        ssize_t n = getrandom(buf + got, len - got, 0);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }
        got += (size_t)n;
    }
    if (got < len) {
        /* no getrandom (old kernel, seccomp): fall back to the device */
        int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            return -1;
        }
        while (got < len) {
            ssize_t n = read(fd, buf + got, len - got);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                close(fd);
                return -1;
            }
            got += (size_t)n;
        }
        close(fd);
    }
    return 0;
}

/* The first ES_ID_TIME_HEX characters of an id are the milliseconds since the epoch: ids made
 * later sort later, so the indexes they go into grow at their right edge instead of being
 * written all over (much less I/O and WAL than random ids). */
#define ES_ID_TIME_HEX 12

static void time_prefix(char *out)
{
    uint64_t ms = (uint64_t)es_now_ms();
    for (int i = ES_ID_TIME_HEX - 1; i >= 0; i--) {
        out[i] = hexdigits[ms & 0x0f];
        ms >>= 4;
    }
}

int es_id_random(char out[ES_ID_LEN + 1])
{
    unsigned char bytes[(ES_ID_LEN - ES_ID_TIME_HEX) / 2];

    if (fill_random(bytes, sizeof(bytes)) != 0) {
        out[0] = '\0';
        return -1;
    }
    time_prefix(out);
    hex_write(out + ES_ID_TIME_HEX, bytes, sizeof(bytes));
    out[ES_ID_LEN] = '\0';
    return 0;
}

/* The finaliser of SplitMix64: a bijective mix with full avalanche. */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* A streaming 64-bit hash: bytes are gathered into little-endian words, each word is mixed
 * into the state, and the total length goes into the final mix. */
typedef struct hash64 {
    uint64_t h;
    uint64_t word;
    unsigned fill;
    uint64_t len;
} hash64_t;

static void hash64_init(hash64_t *st, uint64_t seed)
{
    st->h = seed;
    st->word = 0;
    st->fill = 0;
    st->len = 0;
}

static void hash64_word(hash64_t *st, uint64_t w)
{
    st->h = mix64(st->h ^ mix64(w + UINT64_C(0x9e3779b97f4a7c15)));
    st->h = (st->h << 23 | st->h >> 41) * UINT64_C(0xff51afd7ed558ccd);
}

static void hash64_update(hash64_t *st, const void *data, size_t len)
{
    const unsigned char *p = data;

    for (size_t i = 0; i < len; i++) {
        st->word |= (uint64_t)p[i] << (8 * st->fill);
        if (++st->fill == 8) {
            hash64_word(st, st->word);
            st->word = 0;
            st->fill = 0;
        }
    }
    st->len += len;
}

static uint64_t hash64_final(hash64_t *st)
{
    /* the tail word always goes in (even when empty) so that "ab"+len differs from "ab\0" */
    hash64_word(st, st->word);
    return mix64(st->h ^ st->len);
}

/* Hash the parts of a derived id with a seed. Separators keep ("ab","c") and ("a","bc")
 * apart: every string goes in with its terminating NUL. */
static uint64_t derive64(uint64_t seed, const char *parent, const char *salt, uint32_t index)
{
    hash64_t st;
    unsigned char ix[4];

    ix[0] = (unsigned char)index;
    ix[1] = (unsigned char)(index >> 8);
    ix[2] = (unsigned char)(index >> 16);
    ix[3] = (unsigned char)(index >> 24);
    hash64_init(&st, seed);
    hash64_update(&st, parent, strlen(parent) + 1);
    hash64_update(&st, salt, strlen(salt) + 1);
    hash64_update(&st, ix, sizeof(ix));
    return hash64_final(&st);
}

#define SEED_HI UINT64_C(0x243f6a8885a308d3) /* digits of pi: nothing up the sleeve */
#define SEED_LO UINT64_C(0x13198a2e03707344)
#define SEED_SPAN UINT64_C(0xa4093822299f31d0)
#define SEED_TRACE UINT64_C(0x082efa98ec4e6c89)

void es_id_derive(char out[ES_ID_LEN + 1], const char *parent, const char *salt, uint32_t index)
{
    if (parent == NULL) {
        parent = "";
    }
    if (salt == NULL) {
        salt = "";
    }
    char lo[16];
    u64_to_hex(out, derive64(SEED_HI, parent, salt, index));
    u64_to_hex(lo, derive64(SEED_LO, parent, salt, index));
    memcpy(out + 16, lo, 16);
    if (es_id_valid(parent)) {
        /* a derived id keeps its parent's time: a saga's ids all sort with its command */
        memmove(out + ES_ID_TIME_HEX, out, ES_ID_LEN - ES_ID_TIME_HEX);
        memcpy(out, parent, ES_ID_TIME_HEX);
    }
    out[ES_ID_LEN] = '\0';
}

int es_id_valid(const char *s)
{
    size_t i;

    if (s == NULL) {
        return 0;
    }
    for (i = 0; i < ES_ID_LEN; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return 0;
        }
    }
    return s[i] == '\0';
}

static int all_zero(const char *hex, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (hex[i] != '0') {
            return 0;
        }
    }
    return 1;
}

void es_traceparent_make(char out[ES_TRACEPARENT_LEN + 1], const char *correlation_id,
                         const char *event_id)
{
    uint64_t span;

    if (correlation_id == NULL) {
        correlation_id = "";
    }
    if (event_id == NULL) {
        event_id = "";
    }
    memcpy(out, "00-", 3);
    /* W3C forbids an all-zero trace id; anything that is not an id gets hashed into one */
    if (es_id_valid(correlation_id) && !all_zero(correlation_id, ES_ID_LEN)) {
        memcpy(out + 3, correlation_id, ES_ID_LEN);
    } else {
        u64_to_hex(out + 3, derive64(SEED_TRACE, correlation_id, "trace", 0));
        u64_to_hex(out + 19, derive64(SEED_TRACE, correlation_id, "trace", 1));
    }
    out[35] = '-';
    span = derive64(SEED_SPAN, event_id, "span", 0);
    if (span == 0) {
        span = 1; /* all-zero span ids are invalid too */
    }
    u64_to_hex(out + 36, span);
    memcpy(out + 52, "-01", 4); /* with the terminating NUL at out[55] */
}

int64_t es_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t es_mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
