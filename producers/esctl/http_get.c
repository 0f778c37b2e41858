/*
 * http_get.c: a tiny blocking HTTP/1.1 GET client for `esctl send --wait`, which polls the
 * local query service. One connection per request ("Connection: close"), the whole exchange
 * bounded by one deadline, Content-Length, chunked and read-to-EOF bodies. Nothing more.
 */
#include "esctl.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ids.h"

/* Split "http://host[:port][/prefix]" into parts (caller storage). Returns 0 or -1. */
static int url_split(const char *url, char *host, size_t host_size, char *port, size_t port_size,
                     char *prefix, size_t prefix_size)
{
    if (strncmp(url, "http://", 7) != 0) {
        return -1;
    }
    const char *h = url + 7;
    const char *slash = strchr(h, '/');
    const char *end = slash ? slash : h + strlen(h);
    const char *colon = memchr(h, ':', (size_t)(end - h));
    const char *hend = colon ? colon : end;
    if (hend == h || (size_t)(hend - h) >= host_size) {
        return -1;
    }
    memcpy(host, h, (size_t)(hend - h));
    host[hend - h] = '\0';
    if (colon) {
        size_t plen = (size_t)(end - colon - 1);
        if (plen == 0 || plen >= port_size) {
            return -1;
        }
        memcpy(port, colon + 1, plen);
        port[plen] = '\0';
    } else {
        snprintf(port, port_size, "80");
    }
    /* A prefix without its trailing slash, so that prefix + "/path" joins cleanly. */
    size_t xlen = slash ? strlen(slash) : 0;
    while (xlen > 0 && slash[xlen - 1] == '/') {
        xlen--;
    }
    if (xlen >= prefix_size) {
        return -1;
    }
    memcpy(prefix, slash ? slash : "", xlen);
    prefix[xlen] = '\0';
    return 0;
}

/* Wait until fd is ready for `events` or the deadline (monotonic us) passes. 1 ready,
 * 0 timed out, -1 error. */
static int wait_fd(int fd, short events, int64_t deadline_us)
{
    for (;;) {
        int64_t left = deadline_us - es_mono_us();
        if (left <= 0) {
            return 0;
        }
        struct pollfd pfd = {.fd = fd, .events = events};
        int r = poll(&pfd, 1, (int)((left + 999) / 1000));
        if (r < 0 && errno == EINTR) {
            continue;
        }
        return r < 0 ? -1 : r > 0;
    }
}

static int connect_to(const char *host, const char *port, int64_t deadline_us, char *errstr,
                      size_t errstr_size)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int gerr = getaddrinfo(host, port, &hints, &res);
    if (gerr != 0) {
        snprintf(errstr, errstr_size, "could not resolve %s: %s", host, gai_strerror(gerr));
        return -1;
    }
    int fd = -1;
    int last_errno = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0) {
            last_errno = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            break;
        }
        if (errno == EINPROGRESS) {
            int r = wait_fd(fd, POLLOUT, deadline_us);
            int soerr = 0;
            socklen_t sl = sizeof(soerr);
            if (r > 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0) {
                break;
            }
            last_errno = r == 0 ? ETIMEDOUT : soerr ? soerr : errno;
        } else {
            last_errno = errno;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(errstr, errstr_size, "could not connect to %s:%s: %s", host, port,
                 strerror(last_errno));
    }
    return fd;
}

/* Find `needle` (nlen bytes) in p[0..len), or NULL. (memmem is a GNU extension.) */
static unsigned char *find_bytes(unsigned char *p, size_t len, const char *needle, size_t nlen)
{
    for (size_t i = 0; i + nlen <= len; i++) {
        if (p[i] == (unsigned char)needle[0] && !memcmp(p + i, needle, nlen)) {
            return p + i;
        }
    }
    return NULL;
}

/* Decode a chunked body in place. Returns the decoded length or -1. */
static ssize_t dechunk(unsigned char *p, size_t len)
{
    size_t in = 0, out = 0;
    for (;;) {
        char *end;
        if (in >= len) {
            return -1;
        }
        unsigned long n = strtoul((const char *)p + in, &end, 16);
        const unsigned char *crlf = find_bytes(p + in, len - in, "\r\n", 2);
        if (!crlf || (unsigned char *)end == p + in) {
            return -1;
        }
        in = (size_t)(crlf - p) + 2;
        if (n == 0) {
            return (ssize_t)out;
        }
        if (n > len - in) {
            return -1;
        }
        memmove(p + out, p + in, n);
        out += n;
        in += n + 2;
    }
}

int esctl_http_get(const char *base_url, const char *path, int timeout_ms, int *status,
                   es_buf_t *body, char *errstr, size_t errstr_size)
{
    char host[256], port[16], prefix[512];
    if (url_split(base_url, host, sizeof(host), port, sizeof(port), prefix, sizeof(prefix)) != 0) {
        snprintf(errstr, errstr_size, "malformed URL \"%s\": expected http://host:port", base_url);
        return -1;
    }
    int64_t deadline = es_mono_us() + (int64_t)timeout_ms * 1000;
    int fd = connect_to(host, port, deadline, errstr, errstr_size);
    if (fd < 0) {
        return -1;
    }
    int ret = -1;
    es_buf_t resp;
    es_buf_init(&resp);
    char req[2048];
    int rlen = snprintf(req, sizeof(req),
                        "GET %s%s HTTP/1.1\r\nHost: %s:%s\r\nAccept: application/json\r\n"
                        "User-Agent: esctl\r\nConnection: close\r\n\r\n",
                        prefix, path, host, port);
    if (rlen < 0 || (size_t)rlen >= sizeof(req)) {
        snprintf(errstr, errstr_size, "request path too long");
        goto out;
    }
    for (size_t sent = 0; sent < (size_t)rlen;) {
        ssize_t n = send(fd, req + sent, (size_t)rlen - sent, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (wait_fd(fd, POLLOUT, deadline) <= 0) {
                snprintf(errstr, errstr_size, "timed out sending to %s:%s", host, port);
                goto out;
            }
            continue;
        }
        if (n < 0) {
            snprintf(errstr, errstr_size, "could not send to %s:%s: %s", host, port,
                     strerror(errno));
            goto out;
        }
        sent += (size_t)n;
    }

    /* Read until EOF (the server closes), or until Content-Length is complete. */
    size_t hdr_end = 0;
    long content_length = -1;
    int chunked = 0;
    for (;;) {
        if (es_buf_reserve(&resp, 16384) != 0) {
            snprintf(errstr, errstr_size, "out of memory reading the response");
            goto out;
        }
        ssize_t n = recv(fd, resp.data + resp.len, resp.cap - resp.len - 1, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            int r = wait_fd(fd, POLLIN, deadline);
            if (r <= 0) {
                snprintf(errstr, errstr_size, "timed out waiting for a response from %s:%s", host,
                         port);
                goto out;
            }
            continue;
        }
        if (n < 0) {
            snprintf(errstr, errstr_size, "could not read from %s:%s: %s", host, port,
                     strerror(errno));
            goto out;
        }
        resp.len += (size_t)n;
        resp.data[resp.len] = '\0';
        if (!hdr_end) {
            unsigned char *e = find_bytes(resp.data, resp.len, "\r\n\r\n", 4);
            if (e) {
                hdr_end = (size_t)(e - resp.data) + 4;
                /* Scan the header lines we care about. */
                for (char *line = strstr((char *)resp.data, "\r\n");
                     line && (size_t)((unsigned char *)line - resp.data) < hdr_end - 4;
                     line = strstr(line + 2, "\r\n")) {
                    const char *h = line + 2;
                    if (!strncasecmp(h, "Content-Length:", 15)) {
                        content_length = strtol(h + 15, NULL, 10);
                    } else if (!strncasecmp(h, "Transfer-Encoding:", 18) && strstr(h, "chunked") &&
                               strstr(h, "chunked") < strstr(h, "\r\n")) {
                        chunked = 1;
                    }
                }
            }
        }
        if (n == 0) {
            break;
        }
        if (hdr_end && !chunked && content_length >= 0 &&
            resp.len - hdr_end >= (size_t)content_length) {
            break;
        }
    }
    int code = 0;
    if (!hdr_end || sscanf((const char *)resp.data, "HTTP/1.%*d %d", &code) != 1 || code < 100) {
        snprintf(errstr, errstr_size, "malformed HTTP response from %s:%s", host, port);
        goto out;
    }
    size_t blen = resp.len - hdr_end;
    if (!chunked && content_length >= 0 && (size_t)content_length < blen) {
        blen = (size_t)content_length;
    }
    if (chunked) {
        ssize_t d = dechunk(resp.data + hdr_end, blen);
        if (d < 0) {
            snprintf(errstr, errstr_size, "malformed chunked response from %s:%s", host, port);
            goto out;
        }
        blen = (size_t)d;
    }
    es_buf_reset(body);
    if (es_buf_append(body, resp.data + hdr_end, blen) != 0) {
        snprintf(errstr, errstr_size, "out of memory reading the response");
        goto out;
    }
    *status = code;
    ret = 0;
out:
    es_buf_fini(&resp);
    close(fd);
    return ret;
}

/* ES_QUERY_URL, else the port the dev stack's es-query published, else ES_HTTP_PORT, else
 * 8080 (the order scripts/devstack.sh uses). */
void esctl_query_url(const es_config_t *cfg, char *buf, size_t size)
{
    const char *v = getenv("ES_QUERY_URL");
    if (v && *v) {
        snprintf(buf, size, "%s", v);
        return;
    }
    char path[1200], port[32];
    snprintf(path, sizeof(path), "%s/run/es-query.port", cfg->data_dir);
    if (es_config_read_file(path, port, sizeof(port)) == 0 && port[0]) {
        snprintf(buf, size, "http://127.0.0.1:%s", port);
        return;
    }
    v = getenv("ES_HTTP_PORT");
    snprintf(buf, size, "http://127.0.0.1:%s", v && *v ? v : "8080");
}
