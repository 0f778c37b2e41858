/*
 * test_devgate.c: the dev stack's connect gate (lib/devgate.c): which addresses a broker.addr
 * names, and when a client may connect: the address listed and broker.pid naming a running
 * es-broker (a child process named so stands in for it), in a private mkdtemp() folder.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "devgate.h"

static char dir[256];
static char why[2048];
static pid_t children[2]; /* fake brokers still running, killed by teardown if a check failed */

/* A socket address of either family, as a connect callback gets it. */
typedef struct {
    struct sockaddr_storage ss;
    socklen_t len;
} addr_t;

static addr_t addr(const char *ip, int port)
{
    addr_t a;
    memset(&a, 0, sizeof(a));
    struct sockaddr_in *in = (struct sockaddr_in *)&a.ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a.ss;
    if (inet_pton(AF_INET, ip, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        a.len = sizeof(*in);
    } else {
        ck_assert_int_eq(inet_pton(AF_INET6, ip, &in6->sin6_addr), 1);
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        a.len = sizeof(*in6);
    }
    return a;
}

#define LISTED(text, a) es_devgate_listed(text, (const struct sockaddr *)&(a).ss, (a).len)

START_TEST(test_listed)
{
    addr_t a = addr("127.0.0.1", 40123);
    ck_assert_int_eq(LISTED("127.0.0.1:40123", a), 1);
    ck_assert_int_eq(LISTED("127.0.0.1:40124", a), 0);             /* another port */
    ck_assert_int_eq(LISTED("127.0.0.2:40123", a), 0);             /* another address */
    ck_assert_int_eq(LISTED("127.0.0.1:1,127.0.0.1:40123", a), 1); /* any of several */
    ck_assert_int_eq(LISTED(" 127.0.0.1:1 , 127.0.0.1:40123\n", a), 1);
    ck_assert_int_eq(LISTED("localhost:40123", a), 1); /* a name: by port */
    ck_assert_int_eq(LISTED("localhost:4012", a), 0);
    ck_assert_int_eq(LISTED("[::1]:40123", a), 0); /* an IPv6 entry is not this one */
    ck_assert_int_eq(LISTED("", a), 0);
    ck_assert_int_eq(LISTED(",,,", a), 0);
    /* malformed entries name nothing */
    ck_assert_int_eq(LISTED("127.0.0.1", a), 0);
    ck_assert_int_eq(LISTED("127.0.0.1:", a), 0);
    ck_assert_int_eq(LISTED(":40123", a), 0);
    ck_assert_int_eq(LISTED("127.0.0.1:40123x", a), 0);
    ck_assert_int_eq(LISTED("127.0.0.1:99999", a), 0);

    addr_t b = addr("::1", 40123);
    ck_assert_int_eq(LISTED("[::1]:40123", b), 1);
    ck_assert_int_eq(LISTED("[::2]:40123", b), 0);
    ck_assert_int_eq(LISTED("127.0.0.1:40123", b), 0);
    ck_assert_int_eq(LISTED("localhost:40123", b), 1);

    struct sockaddr un = {.sa_family = AF_UNIX};
    ck_assert_int_eq(es_devgate_listed("127.0.0.1:40123", &un, sizeof(un)), 0);
}
END_TEST

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/es-test-devgate-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void reap(pid_t pid);

static void teardown(void)
{
    for (size_t i = 0; i < 2; i++) {
        if (children[i] > 0) {
            reap(children[i]);
        }
    }
    const char *names[] = {"broker.addr", "broker.pid"};
    char path[512];
    for (size_t i = 0; i < 2; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

static void put(const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    ck_assert_int_eq(es_config_write_file(path, text), 0);
}

/* A child named es-broker that waits to be killed; returns its pid. */
static pid_t fake_broker(const char *name)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    for (size_t i = 0; pid > 0 && i < 2; i++) {
        if (children[i] <= 0) {
            children[i] = pid;
            break;
        }
    }
    if (pid == 0) {
        prctl(PR_SET_NAME, name, 0, 0, 0);
        for (;;) {
            pause();
        }
    }
    /* wait until the name shows */
    char path[64], comm[64] = "";
    snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
    for (int i = 0; i < 1000 && strcmp(comm, name); i++) {
        if (es_config_read_file(path, comm, sizeof(comm)) != 0) {
            comm[0] = '\0';
        }
        usleep(1000);
    }
    ck_assert_str_eq(comm, name);
    return pid;
}

static void reap(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    for (size_t i = 0; i < 2; i++) {
        if (children[i] == pid) {
            children[i] = 0;
        }
    }
}

#define ALLOWS(a)                                                                                  \
    es_devgate_allows(dir, (const struct sockaddr *)&(a).ss, (a).len, why, sizeof(why))

START_TEST(test_allows)
{
    addr_t a = addr("127.0.0.1", 40123);
    /* no broker.addr: this data folder's broker does not run */
    ck_assert_int_eq(ALLOWS(a), 0);
    ck_assert_ptr_nonnull(strstr(why, "is not running"));

    pid_t broker = fake_broker("es-broker");
    char pid[32];
    snprintf(pid, sizeof(pid), "%d", (int)broker);
    put("broker.pid", pid);
    put("broker.addr", "127.0.0.1:40123");
    ck_assert_int_eq(ALLOWS(a), 1);

    /* the broker moved: the old address is refused, saying where it listens */
    put("broker.addr", "127.0.0.1:40999");
    ck_assert_int_eq(ALLOWS(a), 0);
    ck_assert_ptr_nonnull(strstr(why, "listens at 127.0.0.1:40999"));
    put("broker.addr", "127.0.0.1:40123");

    /* killed: broker.addr stays behind, broker.pid names a dead process */
    reap(broker);
    ck_assert_int_eq(ALLOWS(a), 0);
    ck_assert_ptr_nonnull(strstr(why, "names no running es-broker"));

    /* a pid reused by another program is not the broker */
    pid_t other = fake_broker("not-a-broker");
    snprintf(pid, sizeof(pid), "%d", (int)other);
    put("broker.pid", pid);
    ck_assert_int_eq(ALLOWS(a), 0);
    reap(other);

    /* a malformed broker.pid */
    put("broker.pid", "12ab");
    ck_assert_int_eq(ALLOWS(a), 0);
    put("broker.pid", "");
    ck_assert_int_eq(ALLOWS(a), 0);
}
END_TEST

START_TEST(test_moved)
{
    es_config_t cfg;
    memset(&cfg, 0, sizeof(cfg));
    snprintf(cfg.data_dir, sizeof(cfg.data_dir), "%s", dir);
    snprintf(cfg.brokers, sizeof(cfg.brokers), "127.0.0.1:40123");
    char now[256];
    /* brokers not from the data folder (KAFKA_BROKERS, -b): never "moved" */
    put("broker.addr", "127.0.0.1:40999");
    ck_assert_int_eq(es_devgate_moved(&cfg, now, sizeof(now)), 0);
    cfg.brokers_from_file = 1;
    ck_assert_int_eq(es_devgate_moved(&cfg, now, sizeof(now)), 1);
    ck_assert_str_eq(now, "127.0.0.1:40999");
    /* where it was: not moved; stopped (no broker.addr) or empty: not moved either */
    put("broker.addr", "127.0.0.1:40123\n");
    ck_assert_int_eq(es_devgate_moved(&cfg, now, sizeof(now)), 0);
    put("broker.addr", "");
    ck_assert_int_eq(es_devgate_moved(&cfg, now, sizeof(now)), 0);
    char path[512];
    snprintf(path, sizeof(path), "%s/broker.addr", dir);
    unlink(path);
    ck_assert_int_eq(es_devgate_moved(&cfg, now, sizeof(now)), 0);
}
END_TEST

Suite *devgate_suite(void);

Suite *devgate_suite(void)
{
    Suite *s = suite_create("devgate");
    TCase *tc = tcase_create("gate");
    tcase_add_test(tc, test_listed);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_allows);
    tcase_add_test(tc, test_moved);
    suite_add_tcase(s, tc);
    return s;
}
