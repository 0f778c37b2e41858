/*
 * nodelay.c: TCP_NODELAY on every socket the mock cluster accepts.
 *
 * librdkafka's mock broker accepts client connections with the C library's accept() and never
 * sets TCP_NODELAY, so when two responses queue on one connection the second waits for the
 * client's delayed ACK (~40 ms). This executable defines accept() and accept4() itself: the
 * dynamic linker binds librdkafka's calls to these definitions, which call the C library's
 * (found with dlsym(RTLD_NEXT)) and then set TCP_NODELAY on the new socket (and, while the
 * journal is being restored, shut it unless this process opened it: see ports.c), and make
 * it known to longpoll.c, which watches the mock's reads and writes on it.
 * ES_BROKER_NAGLE=1 turns the fix off, for latency comparisons only.
 */
#define _GNU_SOURCE /* RTLD_NEXT, accept4 */

#include "broker.h"

#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

typedef int (*accept_fn)(int, __SOCKADDR_ARG, socklen_t *);
typedef int (*accept4_fn)(int, __SOCKADDR_ARG, socklen_t *, int);

static atomic_long nodelay_accepted;
static pthread_once_t resolve_once = PTHREAD_ONCE_INIT;
static accept_fn real_accept;
static accept4_fn real_accept4;
static int nagle_kept;

/* Find the C library's functions (the next definitions after this executable's). */
static void resolve(void)
{
    void *sym = dlsym(RTLD_NEXT, "accept");
    memcpy(&real_accept, &sym, sizeof(real_accept));
    sym = dlsym(RTLD_NEXT, "accept4");
    memcpy(&real_accept4, &sym, sizeof(real_accept4));
    const char *v = getenv("ES_BROKER_NAGLE");
    nagle_kept = v && !strcmp(v, "1");
}

static void set_nodelay(int fd)
{
    if (fd < 0 || nagle_kept) {
        return;
    }
    int saved = errno;
    int one = 1;
    /* Fails harmlessly (EOPNOTSUPP) on a non-TCP socket. */
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0) {
        atomic_fetch_add(&nodelay_accepted, 1);
    }
    errno = saved;
}

int accept(int fd, __SOCKADDR_ARG addr, socklen_t *addr_len)
{
    pthread_once(&resolve_once, resolve);
    if (!real_accept) {
        errno = ENOSYS;
        return -1;
    }
    int s = real_accept(fd, addr, addr_len);
    set_nodelay(s);
    broker_ports_admit(s);
    broker_longpoll_accepted(s);
    return s;
}

int accept4(int fd, __SOCKADDR_ARG addr, socklen_t *addr_len, int flags)
{
    pthread_once(&resolve_once, resolve);
    if (!real_accept4) {
        errno = ENOSYS;
        return -1;
    }
    int s = real_accept4(fd, addr, addr_len, flags);
    set_nodelay(s);
    broker_ports_admit(s);
    broker_longpoll_accepted(s);
    return s;
}

long broker_nodelay_accepted(void)
{
    return atomic_load(&nodelay_accepted);
}
