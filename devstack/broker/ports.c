/*
 * ports.c: the mock's listeners on the ports of the broker's previous run.
 *
 * librdkafka's mock cluster binds each of its brokers to 127.0.0.1 port 0, so every start got
 * new ports, and programs still running from before (services, relays, esctl --follow) kept
 * calling the old address for ever: restarting the broker meant restarting everything. Real
 * Kafka brokers keep their addresses across restarts, and clients simply reconnect. This
 * executable defines bind() itself (as nodelay.c does accept()): while armed, a bind of an IPv4
 * socket to port 0 is tried first on the next wanted port, with SO_REUSEADDR so that
 * connections of the previous run still in TIME_WAIT do not hold it. When that port is taken,
 * the socket gets the port it asked for (any), and the caller learns that the address moved.
 * Disarmed, bind() is the C library's.
 *
 * Programs from before find the new broker as soon as it listens, before it has restored its
 * journal: a producer served then would append in the middle of the restore and move every
 * record after it to another offset. So until the broker opens the gate, a connection the mock
 * accepts is shut at once (the client sees a disconnect and tries again later) unless it comes
 * from this process itself: the restore's own producer.
 */
#define _GNU_SOURCE /* RTLD_NEXT */

#include "broker.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>

/* the C library's bind; the union in its prototype (with _GNU_SOURCE) is a pointer underneath */
typedef int (*bind_fn)(int, const struct sockaddr *, socklen_t);

static pthread_mutex_t ports_lock = PTHREAD_MUTEX_INITIALIZER;
static bind_fn real_bind;
static int wanted[BROKER_PORTS_MAX];
static size_t wanted_cnt, wanted_next, kept;
static int armed;
static atomic_int gate_closed;

int bind(int fd, __CONST_SOCKADDR_ARG addr, socklen_t len)
{
    pthread_mutex_lock(&ports_lock);
    if (!real_bind) {
        void *sym = dlsym(RTLD_NEXT, "bind");
        memcpy(&real_bind, &sym, sizeof(real_bind));
    }
    bind_fn next = real_bind;
    int port = 0;
    const struct sockaddr_in *in = addr.__sockaddr_in__;
    if (armed && next && in && len >= (socklen_t)sizeof(*in) && in->sin_family == AF_INET &&
        in->sin_port == 0 && wanted_next < wanted_cnt) {
        port = wanted[wanted_next++];
    }
    pthread_mutex_unlock(&ports_lock);
    if (!next) {
        errno = ENOSYS;
        return -1;
    }
    if (port > 0) {
        struct sockaddr_in want = *in;
        want.sin_port = htons((uint16_t)port);
        int one = 1;
        int saved = errno;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0 &&
            next(fd, (const struct sockaddr *)&want, sizeof(want)) == 0) {
            pthread_mutex_lock(&ports_lock);
            kept++;
            pthread_mutex_unlock(&ports_lock);
            return 0;
        }
        errno = saved; /* taken: fall back to the port asked for */
    }
    return next(fd, addr.__sockaddr__, len);
}

void broker_ports_want(const int *ports, size_t cnt)
{
    pthread_mutex_lock(&ports_lock);
    wanted_cnt = cnt < BROKER_PORTS_MAX ? cnt : BROKER_PORTS_MAX;
    memcpy(wanted, ports, wanted_cnt * sizeof(*wanted));
    wanted_next = 0;
    kept = 0;
    armed = 1;
    pthread_mutex_unlock(&ports_lock);
}

size_t broker_ports_done(void)
{
    pthread_mutex_lock(&ports_lock);
    armed = 0;
    size_t n = kept;
    pthread_mutex_unlock(&ports_lock);
    return n;
}

void broker_ports_gate(int closed)
{
    atomic_store(&gate_closed, closed);
}

/* Whether `peer` is the local address of one of this process's sockets. */
static int own_socket(const struct sockaddr_in *peer)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) {
        return 0;
    }
    int found = 0;
    struct dirent *e;
    while (!found && (e = readdir(d)) != NULL) {
        char *end;
        long fd = strtol(e->d_name, &end, 10);
        struct sockaddr_in local;
        socklen_t len = sizeof(local);
        if (*end || end == e->d_name || fd == dirfd(d) ||
            getsockname((int)fd, (struct sockaddr *)&local, &len) != 0 ||
            len < (socklen_t)sizeof(local) || local.sin_family != AF_INET) {
            continue;
        }
        found = local.sin_port == peer->sin_port && local.sin_addr.s_addr == peer->sin_addr.s_addr;
    }
    closedir(d);
    return found;
}

int broker_ports_from_self(int fd)
{
    int saved = errno;
    struct sockaddr_in peer;
    socklen_t len = sizeof(peer);
    int own = getpeername(fd, (struct sockaddr *)&peer, &len) == 0 &&
              len >= (socklen_t)sizeof(peer) && peer.sin_family == AF_INET && own_socket(&peer);
    errno = saved;
    return own;
}

void broker_ports_admit(int fd)
{
    if (fd < 0 || !atomic_load(&gate_closed)) {
        return;
    }
    if (!broker_ports_from_self(fd)) {
        int saved = errno;
        shutdown(fd, SHUT_RDWR);
        errno = saved;
    }
}
