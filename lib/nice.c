/*
 * nice.c: yielding the CPU (see nice.h). A backend is renamed by PostgreSQL to
 * "postgres: <user> <database> <client> <activity>", where <client> is "host(port)" for a TCP
 * client and "[local]" for one on a Unix socket. The pid PQbackendPID() gives is the server's:
 * when the server runs elsewhere (another machine, a container) the same number may name an
 * unrelated process here, so a backend is reniced only when the process of that pid is a
 * PostgreSQL backend whose client is this very connection (its local port), or a local-socket
 * one.
 */
#include "nice.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>

int es_nice_self(int nice, char *errstr, size_t errstr_size)
{
    if (setpriority(PRIO_PROCESS, 0, nice) != 0) {
        snprintf(errstr, errstr_size, "could not set this process's nice value to %d: %s", nice,
                 strerror(errno));
        return -1;
    }
    return 0;
}

/* The local port of `pg`'s TCP socket, 0 for a Unix socket, or -1. */
static int client_port(PGconn *pg)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int fd = PQsocket(pg);
    if (fd < 0 || getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
        return -1;
    }
    if (ss.ss_family == AF_INET) {
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    if (ss.ss_family == AF_INET6) {
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    return ss.ss_family == AF_UNIX ? 0 : -1;
}

/* True when process `pid` here is a PostgreSQL backend serving a client at `port` (0: on a
 * Unix socket). */
static int is_our_backend(int pid, int port)
{
    char path[64], title[512];
    snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
    FILE *f = fopen(path, "r");
    if (!f) {
        return 0;
    }
    size_t n = fread(title, 1, sizeof(title) - 1, f);
    fclose(f);
    title[n] = '\0'; /* the title is the first string: it stops at its NUL */
    if (strncmp(title, "postgres: ", 10) != 0) {
        return 0;
    }
    char want[32];
    if (port > 0) {
        snprintf(want, sizeof(want), "(%d)", port);
    } else {
        snprintf(want, sizeof(want), " [local]");
    }
    return strstr(title, want) != NULL;
}

int es_nice_pg_backend(PGconn *pg, int nice, char *errstr, size_t errstr_size)
{
    int pid = PQbackendPID(pg), port = client_port(pg);
    if (pid <= 0 || port < 0 || !is_our_backend(pid, port)) {
        return 0;
    }
    if (setpriority(PRIO_PROCESS, (id_t)pid, nice) != 0) {
        snprintf(errstr, errstr_size,
                 "could not set the nice value of PostgreSQL backend %d to %d: %s", pid, nice,
                 strerror(errno));
        return -1;
    }
    return 1;
}
