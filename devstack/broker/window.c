/*
 * window.c: how much of each partition the mock cluster keeps in memory (see broker.h).
 *
 * The mock keeps up to 100,000 message sets or 5 MiB per partition, and finds the message set
 * a fetch asks for by walking that list from the oldest, on every fetch of every partition that
 * has data: at a thousand small transfers a second the broker's thread spent three quarters of
 * its time in that walk, and every produce and fetch waited behind it. The library offers no
 * setting for those limits, so the dev broker lowers the count limit itself, in the mock's
 * partition structures, and only on the one library build whose layout it checked:
 *
 *   - librdkafka 2.0.2 (Debian 12's) exactly; any other version is left alone;
 *   - right after the topics are created, while every partition is empty, the broker looks in
 *     its own memory for the fields "message-set list (empty), size 0, count 0, 5 MiB,
 *     100,000" laid out as that version lays them out, and tunes nothing unless it finds exactly
 *     one such place per partition it created.
 *
 * Records that leave the window are still in the journal (the archive tier): esctl replay,
 * rebuilds and services that fall behind read them from there. The journaler raises a
 * partition's limit while records are not yet journaled, so nothing leaves memory unjournaled.
 */
#include "broker.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MOCK_VERSION 0x020002ff /* librdkafka 2.0.2 */
#define MOCK_MAX_SIZE ((uint64_t)5 * 1024 * 1024)
#define MOCK_MAX_CNT ((uint64_t)100000)
#define SCAN_CHUNK (1 << 20)
#define SCAN_OVERLAP 64
/* Larger writable mappings are reserved address space, not the heap the topics were just
 * created in (a sanitizer's shadow memory is terabytes of them): not read. */
#define SCAN_MAPPING_MAX ((unsigned long)1 << 30)

/* An empty partition's fields in that version: msgsets.tqh_first (NULL), msgsets.tqh_last
 * (pointing at tqh_first), size 0, cnt 0, max_size, max_cnt. `w` points at max_size. */
static int looks_like_limits(const uint64_t *w, uint64_t addr)
{
    return w[0] == MOCK_MAX_SIZE && w[1] == MOCK_MAX_CNT && w[-1] == 0 && w[-2] == 0 &&
           w[-4] == 0 && w[-3] == addr - 32;
}

int broker_window_find(broker_t *b, char *errstr, size_t errstr_size)
{
    b->limits = NULL;
    b->limit_cnt = 0;
    if (rd_kafka_version() != MOCK_VERSION) {
        snprintf(errstr, errstr_size, "librdkafka %s is not the version whose layout was checked",
                 rd_kafka_version_str());
        return -1;
    }
    size_t want = 0;
    for (size_t t = 0; t < b->topic_cnt; t++) {
        want += (size_t)b->topics[t].partition_cnt;
    }
    uint64_t **found = calloc(want + 1, sizeof(*found));
    uint64_t *buf = malloc(SCAN_CHUNK);
    FILE *maps = fopen("/proc/self/maps", "r");
    int mem = open("/proc/self/mem", O_RDONLY);
    size_t nfound = 0;
    uint64_t last = 0;
    int rc = -1;
    if (!found || !buf || !maps || mem < 0) {
        snprintf(errstr, errstr_size, "could not read the process's own memory map");
        goto out;
    }
    char line[512];
    while (fgets(line, sizeof(line), maps)) {
        unsigned long lo, hi;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3 || strncmp(perms, "rw", 2) != 0 ||
            hi - lo > SCAN_MAPPING_MAX) {
            continue;
        }
        /* pread through /proc/self/mem: a region that vanished meanwhile reads as an error,
         * never as a crash. Chunks overlap by SCAN_OVERLAP bytes so that no 48-byte pattern
         * falls between two; one seen twice in an overlap is counted once. */
        for (unsigned long at = lo; at < hi; at += SCAN_CHUNK - SCAN_OVERLAP) {
            size_t len = hi - at < SCAN_CHUNK ? hi - at : SCAN_CHUNK;
            ssize_t got = pread(mem, buf, len, (off_t)at);
            if (got <= 0) {
                break;
            }
            for (size_t i = 4; i + 1 < (size_t)got / 8; i++) {
                uint64_t addr = at + i * 8;
                if (addr > last && looks_like_limits(buf + i, addr)) {
                    if (nfound < want) {
                        found[nfound] = (uint64_t *)(uintptr_t)addr;
                    }
                    nfound++;
                    last = addr;
                }
            }
            if (len < SCAN_CHUNK) {
                break;
            }
        }
    }
    if (nfound != want) {
        snprintf(errstr, errstr_size, "found %zu partition limits, expected %zu", nfound, want);
        goto out;
    }
    /* which partition each one belongs to cannot be told apart while they are all empty, so
     * one limit serves them all (broker_window_apply) */
    b->limits = found;
    b->limit_cnt = nfound;
    found = NULL;
    rc = 0;
out:
    if (maps) {
        fclose(maps);
    }
    if (mem >= 0) {
        close(mem);
    }
    free(buf);
    free(found);
    return rc;
}

void broker_window_apply(broker_t *b, int64_t unjournaled)
{
    if (!b->limits || b->window == 0) {
        return;
    }
    /* a message set holds at least one record: this many records not yet journaled are at
     * most this many message sets, which must stay in memory */
    uint64_t limit = b->window + (uint64_t)(unjournaled > 0 ? unjournaled : 0);
    if (limit == b->applied) {
        return;
    }
    for (size_t i = 0; i < b->limit_cnt; i++) {
        /* read by the mock's thread when it appends: one aligned word, stored whole */
        __atomic_store_n(b->limits[i] + 1, limit, __ATOMIC_RELEASE);
    }
    b->applied = limit;
}
