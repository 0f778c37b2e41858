/*
 * devgate.c: connect only to this data folder's dev broker (see devgate.h).
 */
#include "devgate.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "config.h"
#include "ids.h"
#include "log.h"

/* A refusal is logged at most this often per process (librdkafka retries every second or so). */
#define GATE_LOG_EVERY_US (10 * 1000 * 1000LL)

static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER; /* guards setting gate_dir */
static char gate_dir[1024]; /* set before the first gated client exists, then only read */
static _Atomic int64_t gate_logged_us = -GATE_LOG_EVERY_US;

/* Whether one "host:port" entry names `addr`. */
static int entry_names(const char *entry, size_t len, const struct sockaddr *addr,
                       socklen_t addr_len)
{
    char host[256];
    const char *colon = NULL;
    for (size_t i = len; i > 0; i--) {
        if (entry[i - 1] == ':') {
            colon = entry + i - 1;
            break;
        }
    }
    if (!colon || colon == entry || (size_t)(colon - entry) >= sizeof(host)) {
        return 0;
    }
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (end != entry + len || end == colon + 1 || port <= 0 || port > 65535) {
        return 0;
    }
    size_t hlen = (size_t)(colon - entry);
    if (hlen >= 2 && entry[0] == '[' && entry[hlen - 1] == ']') { /* [v6]:port */
        memcpy(host, entry + 1, hlen - 2);
        host[hlen - 2] = '\0';
    } else {
        memcpy(host, entry, hlen);
        host[hlen] = '\0';
    }
    const void *have; /* the address being connected to, in network order */
    size_t have_len;
    int have_port, other_family;
    if (addr->sa_family == AF_INET && addr_len >= (socklen_t)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)addr;
        have = &in->sin_addr;
        have_len = sizeof(in->sin_addr);
        have_port = ntohs(in->sin_port);
        other_family = AF_INET6;
    } else if (addr->sa_family == AF_INET6 && addr_len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)addr;
        have = &in6->sin6_addr;
        have_len = sizeof(in6->sin6_addr);
        have_port = ntohs(in6->sin6_port);
        other_family = AF_INET;
    } else {
        return 0;
    }
    if (have_port != port) {
        return 0;
    }
    unsigned char want[sizeof(struct in6_addr)];
    if (inet_pton(addr->sa_family, host, want) == 1) {
        return !memcmp(want, have, have_len);
    }
    return inet_pton(other_family, host, want) != 1; /* a name: its port is what we know */
}

int es_devgate_listed(const char *listed, const struct sockaddr *addr, socklen_t addr_len)
{
    static const char seps[] = ", \t\r\n";
    for (const char *p = listed; *p;) {
        p += strspn(p, seps);
        size_t len = strcspn(p, seps);
        if (len > 0 && entry_names(p, len, addr, addr_len)) {
            return 1;
        }
        p += len;
    }
    return 0;
}

/* Whether `pid` is a running es-broker (its command name, where /proc tells it). */
static int broker_alive(long pid)
{
    if (pid <= 0 || (kill((pid_t)pid, 0) != 0 && errno != EPERM)) {
        return 0;
    }
    char path[64], comm[64];
    snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
    if (es_config_read_file(path, comm, sizeof(comm)) != 0) {
        return 1; /* no /proc: alive is all we know */
    }
    return !strcmp(comm, "es-broker");
}

/* The address the dev broker of `data_dir` publishes, into `buf`: 0, or -1 (none: it does not
 * run). The path is left in `path`. */
static int published_addr(const char *data_dir, char *path, size_t path_size, char *buf,
                          size_t size)
{
    snprintf(path, path_size, "%s/broker.addr", data_dir);
    return es_config_read_file(path, buf, size) == 0 && buf[0] ? 0 : -1;
}

int es_devgate_allows(const char *data_dir, const struct sockaddr *addr, socklen_t addr_len,
                      char *why, size_t why_size)
{
    char path[1200], listed[1024];
    if (published_addr(data_dir, path, sizeof(path), listed, sizeof(listed)) != 0) {
        snprintf(why, why_size, "this data folder's dev broker is not running (no %s)", path);
        return 0;
    }
    if (!es_devgate_listed(listed, addr, addr_len)) {
        snprintf(why, why_size,
                 "this data folder's dev broker listens at %s: restart this program to follow it",
                 listed);
        return 0;
    }
    if (!es_devgate_broker_runs(data_dir)) {
        snprintf(why, why_size,
                 "%s/broker.pid names no running es-broker: the broker that listened there was "
                 "killed",
                 data_dir);
        return 0;
    }
    return 1;
}

int es_devgate_broker_runs(const char *data_dir)
{
    char path[1200], pidtext[32];
    snprintf(path, sizeof(path), "%s/broker.pid", data_dir);
    char *end = NULL;
    long pid =
        es_config_read_file(path, pidtext, sizeof(pidtext)) == 0 ? strtol(pidtext, &end, 10) : 0;
    return end && !*end && broker_alive(pid);
}

static int gate_connect(int fd, const struct sockaddr *addr, int addr_len, const char *id,
                        void *opaque)
{
    (void)opaque;
    char why[1400];
    if (!es_devgate_allows(gate_dir, addr, (socklen_t)addr_len, why, sizeof(why))) {
        int64_t now = es_mono_us();
        int64_t last = atomic_load(&gate_logged_us);
        if (now - last >= GATE_LOG_EVERY_US &&
            atomic_compare_exchange_strong(&gate_logged_us, &last, now)) {
            es_log_warn("not connecting: this data folder's dev broker is not at this "
                        "address now (retrying)",
                        "broker=\"%s\" reason=\"%s\"", id ? id : "", why);
        }
        return ECONNREFUSED;
    }
    if (connect(fd, addr, (socklen_t)addr_len) == -1 && errno != EINPROGRESS) {
        return errno;
    }
    return 0;
}

void es_devgate_install(rd_kafka_conf_t *conf, const char *data_dir)
{
    pthread_mutex_lock(&gate_lock);
    if (!gate_dir[0]) {
        char *abs = realpath(data_dir, NULL); /* a later chdir() must not move the folder */
        snprintf(gate_dir, sizeof(gate_dir), "%s", abs ? abs : data_dir);
        free(abs);
    }
    pthread_mutex_unlock(&gate_lock);
    rd_kafka_conf_set_connect_cb(conf, gate_connect);
}

int es_devgate_moved(const es_config_t *cfg, char *now, size_t now_size)
{
    if (!cfg->brokers_from_file) {
        return 0;
    }
    char path[1200];
    return published_addr(cfg->data_dir, path, sizeof(path), now, now_size) == 0 &&
           strcmp(now, cfg->brokers) != 0;
}
