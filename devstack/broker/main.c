/*
 * main.c: es-broker, the dev broker daemon: a librdkafka mock cluster made durable.
 *
 * Start: lock the data folder, create every topic (<context>.commands/.events/.dlq for each
 * schema context, topics already journaled, --topics extras), restore the journals into the
 * fresh cluster, start the journal consumer, and only then publish the bootstrap address in
 * <data>/broker.addr (and the pid in <data>/broker.pid). Clients wait for that file.
 * While it runs: faults on request (chaos.c). SIGTERM/SIGINT: end any fault, journal everything
 * acknowledged so far, sync, remove broker.addr, exit 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include "broker.h"
#include "codec.h"
#include "ids.h"
#include "log.h"

#define DEFAULT_BROKERS 1
#define DEFAULT_WINDOW 100
/* 1,000 took a busy consumer's millisecond of records in one fetch; once the linger stopped
 * swinging, half of that made a transfer at 1,000/s ~1.5 ms faster at p99 (single runs) for
 * no CPU seen at full speed (bench, docs/bench/HISTORY.md); 0 let stalls through */
#define DEFAULT_FETCH_GAP_US 500
#define DEFAULT_STATS_MS 10000
#define DRAIN_TIMEOUT_MS 30000

typedef struct options {
    int partitions;
    int partitions_explicit; /* from a flag or ES_PARTITIONS: a journal disagreeing is an error */
    int brokers;
    int window;       /* message sets kept in memory per partition (window.c), 0 = the mock's own */
    int port;         /* the first mock broker's port (the others follow), 0 = the previous run's */
    int long_poll;    /* empty fetches answered when records arrive (longpoll.c) */
    int fetch_gap_us; /* a woken fetch goes again no sooner than this after the last */
    int stats_ms;     /* the "fetches" log line's window */
    int fetch_fill;   /* fetch answers carry every message set that fits (fill.c) */
    int mem_journal;  /* records journaled from the mock's memory (memjournal.c) */
    char topics[4096]; /* extra topics, comma separated */
} options_t;

static volatile sig_atomic_t run = 1;

static void on_signal(int sig)
{
    (void)sig;
    run = 0;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: es-broker [options]\n"
            "\n"
            "The dev broker: a librdkafka mock cluster whose records survive restarts\n"
            "(journaled to <data>/journal/<topic>/<partition>.log and restored on start).\n"
            "Publishes its bootstrap address in <data>/broker.addr once it is ready.\n"
            "\n"
            "  -d, --data DIR        data folder                (ES_DATA, default .data)\n"
            "  -p, --partitions N    partitions per new topic   (ES_PARTITIONS, default 6);\n"
            "                        a topic already journaled keeps its partition count\n"
            "      --brokers N       mock brokers in the cluster (ES_BROKERS, default %d)\n"
            "      --topics A,B,...  extra topics to create     (ES_TOPICS)\n"
            "      --window N        message sets kept in memory per partition; older records\n"
            "                        are read from the journal (ES_BROKER_WINDOW, default %d;\n"
            "                        0 keeps the mock's own limits: 100,000 or 5 MiB)\n"
            "      --port N          the first mock broker's port, the others follow; a port\n"
            "                        taken is an error (ES_BROKER_PORT, default: the ports of\n"
            "                        the previous run in <data>/broker.ports when free, so that\n"
            "                        running programs reconnect; else any free port)\n"
            "  -h, --help            this text\n"
            "\n"
            "Topics: <context>.commands, <context>.events and <context>.dlq for every schema\n"
            "context, every topic found in the journal, and the extras.\n"
            "ES_BROKER_NAGLE=1 leaves Nagle's algorithm on the mock's sockets (for latency\n"
            "comparisons only). ES_BROKER_LONGPOLL=0 lets the mock hold an empty fetch for\n"
            "its whole max wait, as it does by itself (comparisons only; clients then need\n"
            "a short fetch.wait.max.ms); ES_BROKER_FETCH_GAP_US (default %d) is how soon a\n"
            "held fetch goes again after the last when records arrive. ES_BROKER_FETCH_FILL=0\n"
            "answers a fetch with one message set per partition, as the mock does by itself\n"
            "(comparisons only; filling needs the long poll and the window).\n"
            "ES_BROKER_MEMJOURNAL=0 journals every record through an in-process consumer\n"
            "instead of from the mock's memory as it is acknowledged (comparisons only;\n"
            "reading the memory needs fetch filling).\n"
            "Every ES_BROKER_STATS_MS (default %d) that records came in, one \"fetches\" log\n"
            "line counts the window's records (journaled from memory or not), held and woken\n"
            "fetches, and filled answers.\n"
            "Faults on request: esctl chaos (latency, down, request errors) leaves its requests\n"
            "in <data>/chaos/; each fault is logged as it starts and ends.\n"
            "ES_LOG_LEVEL=debug|info|warn|error.\n",
            DEFAULT_BROKERS, DEFAULT_WINDOW, DEFAULT_FETCH_GAP_US, DEFAULT_STATS_MS);
}

static int parse_int(const char *s, int min, int max, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int topic_known(const broker_t *b, const char *name)
{
    for (size_t t = 0; t < b->topic_cnt; t++) {
        if (!strcmp(b->topics[t].name, name)) {
            return 1;
        }
    }
    return 0;
}

int broker_topic_add(broker_t *b, const char *name, int partition_cnt, char *errstr,
                     size_t errstr_size)
{
    if (strlen(name) >= sizeof(b->topics[0].name) || strchr(name, '/') || name[0] == '.') {
        snprintf(errstr, errstr_size, "invalid topic name \"%s\"", name);
        return -1;
    }
    broker_topic_t *n = realloc(b->topics, (b->topic_cnt + 1) * sizeof(*n));
    if (!n) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    b->topics = n;
    broker_topic_t *t = &b->topics[b->topic_cnt];
    memset(t, 0, sizeof(*t));
    snprintf(t->name, sizeof(t->name), "%s", name);
    t->parts = calloc((size_t)partition_cnt, sizeof(*t->parts));
    if (!t->parts) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    for (int p = 0; p < partition_cnt; p++) {
        t->parts[p].writer = es_journal_writer_open(b->cfg.data_dir, name, p, errstr, errstr_size);
        if (!t->parts[p].writer) {
            for (int q = 0; q < p; q++) {
                es_journal_writer_close(t->parts[q].writer);
            }
            free(t->parts);
            return -1;
        }
    }
    t->partition_cnt = partition_cnt;
    return (int)b->topic_cnt++;
}

/* Add `name` with the right partition count: its journal's if it has one. */
static int add_topic_checked(broker_t *b, const options_t *o, const char *name, char *errstr,
                             size_t errstr_size)
{
    if (topic_known(b, name)) {
        return 0;
    }
    int journaled = es_journal_partition_count(b->cfg.data_dir, name);
    int cnt = o->partitions;
    if (journaled > 0) {
        if (o->partitions_explicit && journaled != o->partitions) {
            snprintf(errstr, errstr_size,
                     "topic \"%.255s\" is journaled with %d partitions but %d were asked for: "
                     "drop the partitions setting or reset the data folder %.600s",
                     name, journaled, o->partitions, b->cfg.data_dir);
            return -1;
        }
        for (int p = 0; p < journaled; p++) {
            char path[2048];
            snprintf(path, sizeof(path), "%s/journal/%s/%d.log", b->cfg.data_dir, name, p);
            if (access(path, F_OK) != 0) {
                snprintf(errstr, errstr_size,
                         "journal of topic \"%.255s\" is incomplete: %.700s is missing", name,
                         path);
                return -1;
            }
        }
        cnt = journaled;
    }
    return broker_topic_add(b, name, cnt, errstr, errstr_size) < 0 ? -1 : 0;
}

/* Every topic: schema contexts, journal folders, extras. */
static int collect_topics(broker_t *b, const options_t *o, char *errstr, size_t errstr_size)
{
    es_codec_t *codec = es_codec_new(errstr, errstr_size);
    if (!codec) {
        return -1;
    }
    int rc = 0;
    static const char *const suffixes[] = {"commands", "events", "dlq"};
    const char *ctx;
    for (size_t i = 0; rc == 0 && (ctx = es_codec_context_at(codec, i)) != NULL; i++) {
        for (size_t s = 0; rc == 0 && s < 3; s++) {
            char name[256];
            snprintf(name, sizeof(name), "%s.%s", ctx, suffixes[s]);
            rc = add_topic_checked(b, o, name, errstr, errstr_size);
        }
    }
    es_codec_destroy(codec);
    /* the projector is no bounded context but dead-letters too */
    if (rc != 0 || add_topic_checked(b, o, "projections.dlq", errstr, errstr_size) != 0) {
        return -1;
    }
    char dir[1200];
    snprintf(dir, sizeof(dir), "%s/journal", b->cfg.data_dir);
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *de;
        while (rc == 0 && (de = readdir(d)) != NULL) {
            if (de->d_name[0] != '.' && es_journal_partition_count(b->cfg.data_dir, de->d_name)) {
                rc = add_topic_checked(b, o, de->d_name, errstr, errstr_size);
            }
        }
        closedir(d);
    }
    if (rc != 0) {
        return -1;
    }
    char copy[sizeof(o->topics)];
    snprintf(copy, sizeof(copy), "%s", o->topics);
    char *save = NULL;
    for (char *tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        if (add_topic_checked(b, o, tok, errstr, errstr_size) != 0) {
            return -1;
        }
    }
    return 0;
}

/* The ports in a bootstrap list ("127.0.0.1:40001,127.0.0.1:40002"); stops at the first entry
 * that is not host:port. Returns how many. */
static size_t parse_ports(const char *list, int *ports, size_t max)
{
    size_t n = 0;
    for (const char *p = list; *p && n < max;) {
        size_t len = strcspn(p, ",");
        const char *colon = NULL;
        for (const char *q = p; q < p + len; q++) {
            colon = *q == ':' ? q : colon;
        }
        char num[8];
        size_t digits = colon ? (size_t)(p + len - colon - 1) : 0;
        if (digits == 0 || digits >= sizeof(num)) {
            break;
        }
        memcpy(num, colon + 1, digits);
        num[digits] = '\0';
        if (parse_int(num, 1, 65535, &ports[n]) != 0) {
            break;
        }
        n++;
        p += len;
        p += *p == ',';
    }
    return n;
}

/* The mock cluster, on the ports asked for (--port) or else on those of the previous run (in
 * ports_path) when they are free: programs still running from before reconnect to the same
 * address by themselves, as Kafka clients do when a broker restarts. Returns NULL (logged) when
 * the cluster cannot be made or an asked-for port is taken. */
static rd_kafka_mock_cluster_t *cluster_new(rd_kafka_t *mrk, const options_t *o,
                                            const char *ports_path)
{
    int ports[BROKER_PORTS_MAX];
    size_t want = 0;
    char previous[512] = "";
    if (o->port > 0) {
        for (int i = 0; i < o->brokers && want < BROKER_PORTS_MAX; i++) {
            ports[want++] = o->port + i;
        }
    } else if (es_config_read_file(ports_path, previous, sizeof(previous)) == 0) {
        want = parse_ports(previous, ports, (size_t)o->brokers);
    }
    broker_ports_gate(1); /* opened once the journal is restored */
    broker_ports_want(ports, want);
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(mrk, o->brokers);
    size_t kept = broker_ports_done();
    if (!mc) {
        es_log_error("could not create the mock cluster", "brokers=%d", o->brokers);
        return NULL;
    }
    if (o->port > 0 && kept < want) {
        es_log_error("a port asked for is taken", "port=%d brokers=%d got=%s", o->port, o->brokers,
                     rd_kafka_mock_cluster_bootstraps(mc));
        rd_kafka_mock_cluster_destroy(mc);
        return NULL;
    }
    if (o->port == 0 && want > 0) {
        if (kept == want) {
            es_log_info("listening where the previous run did: running programs reconnect",
                        "bootstrap=%s", rd_kafka_mock_cluster_bootstraps(mc));
        } else {
            es_log_warn("the previous run's port is taken: programs started before this broker "
                        "must be restarted to find it",
                        "previous=%s now=%s", previous, rd_kafka_mock_cluster_bootstraps(mc));
        }
    }
    return mc;
}

static int parse_options(int argc, char **argv, options_t *o, es_config_t *cfg)
{
    const char *v;
    o->partitions = cfg->partitions;
    o->partitions_explicit = (v = getenv("ES_PARTITIONS")) && *v;
    o->brokers = DEFAULT_BROKERS;
    if ((v = getenv("ES_BROKERS")) && *v && parse_int(v, 1, 16, &o->brokers) != 0) {
        fprintf(stderr, "es-broker: ES_BROKERS must be an integer in 1..16, not \"%s\"\n", v);
        return -1;
    }
    o->window = DEFAULT_WINDOW;
    if ((v = getenv("ES_BROKER_WINDOW")) && *v && parse_int(v, 0, 100000, &o->window) != 0) {
        fprintf(stderr, "es-broker: ES_BROKER_WINDOW must be an integer in 0..100000, not \"%s\"\n",
                v);
        return -1;
    }
    if ((v = getenv("ES_BROKER_PORT")) && *v && parse_int(v, 1, 65535, &o->port) != 0) {
        fprintf(stderr, "es-broker: ES_BROKER_PORT must be an integer in 1..65535, not \"%s\"\n",
                v);
        return -1;
    }
    o->long_poll = !((v = getenv("ES_BROKER_LONGPOLL")) && !strcmp(v, "0"));
    o->fetch_fill = !((v = getenv("ES_BROKER_FETCH_FILL")) && !strcmp(v, "0"));
    o->mem_journal = !((v = getenv("ES_BROKER_MEMJOURNAL")) && !strcmp(v, "0"));
    o->fetch_gap_us = DEFAULT_FETCH_GAP_US;
    if ((v = getenv("ES_BROKER_FETCH_GAP_US")) && *v &&
        parse_int(v, 0, 1000000, &o->fetch_gap_us) != 0) {
        fprintf(stderr,
                "es-broker: ES_BROKER_FETCH_GAP_US must be an integer in 0..1000000, not \"%s\"\n",
                v);
        return -1;
    }
    o->stats_ms = DEFAULT_STATS_MS;
    if ((v = getenv("ES_BROKER_STATS_MS")) && *v && parse_int(v, 100, 3600000, &o->stats_ms) != 0) {
        fprintf(stderr,
                "es-broker: ES_BROKER_STATS_MS must be an integer in 100..3600000, not \"%s\"\n",
                v);
        return -1;
    }
    if ((v = getenv("ES_TOPICS"))) {
        snprintf(o->topics, sizeof(o->topics), "%s", v);
    }
    static const struct option longopts[] = {
        {"data", required_argument, NULL, 'd'},    {"partitions", required_argument, NULL, 'p'},
        {"brokers", required_argument, NULL, 'B'}, {"topics", required_argument, NULL, 'T'},
        {"window", required_argument, NULL, 'W'},  {"port", required_argument, NULL, 'P'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "d:p:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            snprintf(cfg->data_dir, sizeof(cfg->data_dir), "%s", optarg);
            break;
        case 'p':
            if (parse_int(optarg, 1, 1000, &o->partitions) != 0) {
                fprintf(stderr, "es-broker: --partitions must be an integer in 1..1000\n");
                return -1;
            }
            o->partitions_explicit = 1;
            break;
        case 'B':
            if (parse_int(optarg, 1, 16, &o->brokers) != 0) {
                fprintf(stderr, "es-broker: --brokers must be an integer in 1..16\n");
                return -1;
            }
            break;
        case 'W':
            if (parse_int(optarg, 0, 100000, &o->window) != 0) {
                fprintf(stderr, "es-broker: --window must be an integer in 0..100000\n");
                return -1;
            }
            break;
        case 'P':
            if (parse_int(optarg, 1, 65535, &o->port) != 0) {
                fprintf(stderr, "es-broker: --port must be an integer in 1..65535\n");
                return -1;
            }
            break;
        case 'T':
            snprintf(o->topics, sizeof(o->topics), "%s", optarg);
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "es-broker: unexpected argument \"%s\"\n", argv[optind]);
        return -1;
    }
    if (o->port > 0 && o->port + o->brokers - 1 > 65535) {
        fprintf(stderr, "es-broker: --port %d leaves no room for %d brokers\n", o->port,
                o->brokers);
        return -1;
    }
    return 0;
}

/* What the broker did for its clients since it started (longpoll.c, fill.c, the journaler). */
typedef struct broker_counts {
    long conns, held, woken, expired, cut, filled, added;
    int64_t journaled, from_memory;
} broker_counts_t;

static void counts_get(broker_journaler_t *j, broker_counts_t *c)
{
    broker_longpoll_stats(&c->conns, &c->held, &c->woken, &c->expired, &c->cut);
    broker_fill_stats(&c->filled, &c->added);
    c->journaled = broker_journaler_count(j);
    c->from_memory = broker_memjournal_count();
}

/* One line on the last window's fetches, when records came in it (an idle stack's fetches
 * only wait out their time: nothing to watch). The window is ES_BROKER_STATS_MS. */
static void counts_log(const broker_counts_t *now, const broker_counts_t *then, int window_ms)
{
    if (now->journaled == then->journaled) {
        return;
    }
    es_log_info("fetches",
                "window_ms=%d records=%lld journaled_from_memory=%lld held=%ld "
                "woken_by_records=%ld wait_up=%ld cut_short=%ld answers_filled=%ld "
                "message_sets_added=%ld",
                window_ms, (long long)(now->journaled - then->journaled),
                (long long)(now->from_memory - then->from_memory), now->held - then->held,
                now->woken - then->woken, now->expired - then->expired, now->cut - then->cut,
                now->filled - then->filled, now->added - then->added);
}

int main(int argc, char **argv)
{
    es_log_init("es-broker");
    char errstr[1024];
    broker_t b;
    memset(&b, 0, sizeof(b));
    b.sync_interval_ms = 200;
    options_t o;
    memset(&o, 0, sizeof(o));
    if (es_config_init(&b.cfg, errstr, sizeof(errstr)) != 0) {
        fprintf(stderr, "es-broker: %s\n", errstr);
        return 2;
    }
    if (parse_options(argc, argv, &o, &b.cfg) != 0) {
        return 2;
    }
    /* The internal clients talk to this process's own mock only: no pass-through props. */
    b.cfg.prop_cnt = 0;
    b.cfg.brokers[0] = '\0';

    int status = 1;
    int lock_fd = -1;
    rd_kafka_t *mrk = NULL;
    broker_journaler_t *j = NULL;
    char addr_path[1200], pid_path[1200], lock_path[1200], ports_path[1200];
    snprintf(addr_path, sizeof(addr_path), "%s/broker.addr", b.cfg.data_dir);
    snprintf(ports_path, sizeof(ports_path), "%s/broker.ports", b.cfg.data_dir);
    snprintf(pid_path, sizeof(pid_path), "%s/broker.pid", b.cfg.data_dir);
    snprintf(lock_path, sizeof(lock_path), "%s/broker.lock", b.cfg.data_dir);
    int published = 0;

    if (mkdir(b.cfg.data_dir, 0755) != 0 && errno != EEXIST) {
        es_log_error("could not create the data folder", "path=%s error=\"%s\"", b.cfg.data_dir,
                     strerror(errno));
        goto out;
    }
    lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock_fd < 0 || flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
        char pid[32] = "?";
        es_config_read_file(pid_path, pid, sizeof(pid));
        es_log_error("another es-broker is using this data folder", "path=%s pid=%s",
                     b.cfg.data_dir, pid);
        goto out;
    }
    /* broker.pid goes at a clean exit: still there, the last run was killed. Records journaled
     * from the mock's memory were in the journal's file before anyone saw them; what the
     * journal consumer had not read yet (partitions it journals: its last few milliseconds)
     * is gone. */
    char stale[32];
    if (es_config_read_file(pid_path, stale, sizeof(stale)) == 0) {
        es_log_warn("the previous run did not stop cleanly: records journaled through the "
                    "journal consumer in its last milliseconds, if any, are lost (services log "
                    "any they had read, and go on)",
                    "previous_pid=%s", stale);
    }
    /* A broker.addr left by a crash points at nothing: clients must wait for the new one. */
    unlink(addr_path);

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (collect_topics(&b, &o, errstr, sizeof(errstr)) != 0) {
        es_log_error("could not open the topics", "error=\"%s\"", errstr);
        goto out;
    }

    broker_longpoll_setup(o.long_poll, o.fetch_gap_us);
    /* The mock cluster needs a client handle to live in; it is never used otherwise. */
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char err[512];
    /* Quiet the notice that this handle has no bootstrap.servers (it needs none). */
    rd_kafka_conf_set(conf, "log_level", "4", err, sizeof(err));
    mrk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (!mrk) {
        rd_kafka_conf_destroy(conf);
        es_log_error("could not create the mock cluster's handle", "error=\"%s\"", err);
        goto out;
    }
    b.mcluster = cluster_new(mrk, &o, ports_path);
    if (!b.mcluster) {
        goto out;
    }
    for (size_t t = 0; t < b.topic_cnt; t++) {
        rd_kafka_resp_err_t cerr =
            rd_kafka_mock_topic_create(b.mcluster, b.topics[t].name, b.topics[t].partition_cnt, 1);
        if (cerr) {
            es_log_error("could not create a topic", "topic=%s error=\"%s\"", b.topics[t].name,
                         rd_kafka_err2str(cerr));
            goto out;
        }
        /* The mock's thread serves its requests before it drains its wake-up pipe: a request
         * made at once after the last one was answered can have its wake-up byte drained
         * with the last one's, and then waits for the thread's next 1 s poll timeout (22
         * topics took ~10 s). A millisecond lets the thread drain the pipe first. */
        struct timespec pause = {.tv_sec = 0, .tv_nsec = 1000000};
        nanosleep(&pause, NULL);
    }
    b.window = (uint64_t)o.window;
    if (b.window > 0) {
        if (broker_window_find(&b, errstr, sizeof(errstr)) != 0) {
            es_log_warn("keeping the mock's own in-memory limits (100,000 message sets or 5 MiB "
                        "per partition)",
                        "reason=\"%s\"", errstr);
        } else {
            broker_window_apply(&b, 0);
            es_log_info("in-memory window set; older records are read from the journal",
                        "message_sets_per_partition=%d", o.window);
        }
    }
    if (o.fetch_fill && o.long_poll && broker_fill_setup(&b, errstr, sizeof(errstr)) != 0) {
        es_log_warn("fetch answers carry one message set per partition, as the mock makes them",
                    "reason=\"%s\"", errstr);
    }
    snprintf(b.cfg.brokers, sizeof(b.cfg.brokers), "%s",
             rd_kafka_mock_cluster_bootstraps(b.mcluster));
    es_log_info("mock cluster up", "bootstrap=%s brokers=%d topics=%zu", b.cfg.brokers, o.brokers,
                b.topic_cnt);

    if (broker_restore(&b, errstr, sizeof(errstr)) != 0) {
        es_log_error("could not restore the journal", "error=\"%s\"", errstr);
        goto out;
    }
    if (o.mem_journal && broker_fill_active() &&
        broker_memjournal_setup(&b, errstr, sizeof(errstr)) != 0) {
        es_log_warn("every record is journaled through the journal consumer", "reason=\"%s\"",
                    errstr);
    }
    j = broker_journaler_start(&b, errstr, sizeof(errstr));
    if (!j) {
        es_log_error("could not start the journal consumer", "error=\"%s\"", errstr);
        goto out;
    }
    if (broker_chaos_start(o.brokers, b.cfg.data_dir, errstr, sizeof(errstr)) != 0) {
        es_log_warn("esctl chaos cannot reach this broker", "reason=\"%s\"", errstr);
    }
    char pid[32];
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    broker_ports_gate(0); /* restored: everyone may come in */
    /* broker.ports stays after exit (broker.addr does not): the next run listens there again */
    if (es_config_write_file(pid_path, pid) != 0 ||
        es_config_write_file(ports_path, b.cfg.brokers) != 0 ||
        es_config_write_file(addr_path, b.cfg.brokers) != 0) {
        es_log_error("could not publish the broker address", "path=%s error=\"%s\"", addr_path,
                     strerror(errno));
        goto out;
    }
    published = 1;
    es_log_info("ready", "bootstrap=%s data=%s pid=%s long_poll=%s fetch_fill=%s journal=%s",
                b.cfg.brokers, b.cfg.data_dir, pid, broker_longpoll_active() ? "on" : "off",
                broker_fill_active() ? "on" : "off",
                broker_memjournal_active() ? "memory" : "consumer");

    int failed = 0;
    broker_counts_t then, now;
    counts_get(j, &then);
    int64_t next_log = es_mono_us() + o.stats_ms * 1000LL;
    while (run) {
        if (broker_journaler_run_once(j, 100) != 0 || broker_memjournal_failed()) {
            es_log_error("stopping: the journal cannot be written", "%s", "");
            failed = 1;
            break;
        }
        broker_chaos_tick(&b);
        if (es_mono_us() >= next_log) {
            counts_get(j, &now);
            counts_log(&now, &then, o.stats_ms);
            then = now;
            next_log = es_mono_us() + o.stats_ms * 1000LL;
        }
    }
    /* Other processes' requests are no longer read (longpoll.c), so nothing is appended
     * after the high watermarks the drain reads: everything ever acknowledged is below them
     * and gets journaled, and a producer cut off retries against the next run. */
    unlink(addr_path);
    broker_chaos_stop(&b); /* the drain needs every broker up */
    broker_longpoll_quiesce();
    es_log_info("stopping: draining the journal", "signal=%s", run ? "none" : "received");
    int finished = broker_memjournal_finish(b.mcluster, DRAIN_TIMEOUT_MS);
    int drained = broker_journaler_drain(j, DRAIN_TIMEOUT_MS);
    drained = finished != 0 || broker_memjournal_failed() ? -1 : drained;
    counts_get(j, &now);
    es_log_info("stopped",
                "journaled_records=%lld journaled_from_memory=%lld nodelay_sockets=%ld "
                "drained=%s watched_connections=%ld fetches_held=%ld woken_by_records=%ld "
                "wait_up=%ld cut_short=%ld answers_filled=%ld message_sets_added=%ld",
                (long long)now.journaled, (long long)now.from_memory, broker_nodelay_accepted(),
                drained == 0 ? "yes" : "no", now.conns, now.held, now.woken, now.expired, now.cut,
                now.filled, now.added);
    status = failed || drained != 0 ? 1 : 0;

out:
    if (published) {
        unlink(addr_path);
    }
    broker_journaler_destroy(j);
    if (b.mcluster) {
        rd_kafka_mock_cluster_destroy(b.mcluster);
    }
    broker_longpoll_stop();
    broker_memjournal_stop();
    broker_fill_stop();
    if (mrk) {
        rd_kafka_destroy(mrk);
    }
    for (size_t t = 0; t < b.topic_cnt; t++) {
        for (int p = 0; p < b.topics[t].partition_cnt; p++) {
            es_journal_writer_close(b.topics[t].parts[p].writer);
        }
        free(b.topics[t].parts);
    }
    free(b.topics);
    free(b.limits);
    if (lock_fd >= 0) {
        if (published) {
            unlink(pid_path);
        }
        close(lock_fd);
    }
    return status;
}
