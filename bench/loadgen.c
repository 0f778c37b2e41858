/*
 * loadgen.c: es-loadgen, the fixed-rate load generator of `make bench` (bench/run.sh).
 *
 * Publishes RequestTransfer commands between random accounts (or, with --kind orders,
 * PlaceOrder commands of two lines each from random customers) at a fixed rate, built exactly as
 * `esctl send` builds a command (a random command id that is also the correlation id, an
 * envelope, the envelope headers, the transfer id as key) through the platform's idempotent
 * producer. Pacing uses the monotonic clock: every millisecond it sends however many commands
 * are due by then, so the rate holds on average and a late wake-up is caught up at once.
 * Each command's wall-clock send time is kept and, once every delivery report is in, written
 * as CSV lines "<transfer or order id>,sent_at_us" (delivered commands only) for the caller to
 * join with
 * the read model's visible_at. The summary goes to stderr.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "codec.h"
#include "config.h"
#include "envelope.h"
#include "ids.h"
#include "kafka.h"

#define LG_TID_MAX 64
#define LG_TICK_NS 1000000L
#define LG_CONNECT_TIMEOUT_MS 5000

typedef struct lg_opts {
    int orders; /* --kind orders */
    int products;
    const char *product_prefix;
    const char *user_prefix;
    double rate;
    double seconds;
    int accounts;
    const char *account_prefix;
    const char *prefix;
    long long amount;
    const char *out;
} lg_opts_t;

/* One command's record; `err` and `delivered` are filled by the delivery report. */
typedef struct lg_sent {
    int64_t sent_us;
    int delivered;
    rd_kafka_resp_err_t err;
} lg_sent_t;

typedef struct lg_state {
    lg_opts_t opt;
    es_config_t cfg;
    es_codec_t *codec;
    const es_type_t *type;
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    lg_sent_t *sent; /* one per planned command */
    size_t total, produced, outstanding;
    char prefix[LG_TID_MAX / 2];
    uint64_t rng;
    es_buf_t enc;
    int64_t max_lag_us;
} lg_state_t;

static volatile sig_atomic_t run = 1;

static void on_signal(int sig)
{
    (void)sig;
    run = 0;
}

static void help(FILE *out)
{
    fprintf(out,
            "usage: es-loadgen [flags] > sent.csv\n"
            "\n"
            "Publishes RequestTransfer commands between random accounts (--kind orders:\n"
            "PlaceOrder commands of two lines, one unit each of two different products, from\n"
            "customer N paying from account N) at a fixed rate, then prints\n"
            "\"<id>,sent_at_us\" (wall clock, microseconds since the epoch) for every\n"
            "delivered command. A summary (achieved rate, worst pacing lag, failures) goes to\n"
            "stderr.\n"
            "\n"
            "flags:\n"
            "  -k, --kind K             transfers or orders                default: transfers\n"
            "  -P, --products N         orders: products to pick from      default: 100\n"
            "      --product-prefix P   orders: product ids P0 ..     default: bench-prod-\n"
            "      --user-prefix P      orders: customer ids P0 ..    default: bench-user-\n"
            "  -r, --rate N             commands per second       env BENCH_RATE     default: "
            "1000\n"
            "  -s, --seconds S          for how long              env BENCH_SECONDS  default: 20\n"
            "  -n, --accounts N         accounts (orders: customers) to pick from   default: 50\n"
            "  -A, --account-prefix P   account ids are P0 .. P<N-1>   default: bench-acct-\n"
            "  -p, --prefix P           transfer/order ids are P<seq>  default: lat-<pid>-\n"
            "  -m, --amount N           amount of each transfer                    default: 1\n"
            "  -o, --out FILE           write the CSV to FILE                default: stdout\n"
            "  -b, --brokers LIST       Kafka bootstrap servers     env KAFKA_BROKERS\n"
            "                           default: contents of $ES_DATA/broker.addr\n"
            "  -X, --property P=V       any librdkafka property, repeatable  env ES_KAFKA_PROPS\n"
            "  -d, --data DIR           data folder                 env ES_DATA  default: ./.data\n"
            "  -h, --help               this text\n"
            "\n"
            "exit status: 0 all delivered, 1 broker failure or some commands not delivered,\n"
            "2 usage error\n");
}

static int parse_num(const char *what, const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi)) {
        fprintf(stderr, "es-loadgen: %s must be a number in [%g, %g], not \"%s\"\n", what, lo, hi,
                s);
        return -1;
    }
    *out = v;
    return 0;
}

/* Options: defaults < environment < flags. Returns 0, 1 (help shown) or -1 (usage error). */
static int parse_args(lg_state_t *s, int argc, char **argv)
{
    static const struct option longopts[] = {{"rate", required_argument, NULL, 'r'},
                                             {"seconds", required_argument, NULL, 's'},
                                             {"accounts", required_argument, NULL, 'n'},
                                             {"account-prefix", required_argument, NULL, 'A'},
                                             {"prefix", required_argument, NULL, 'p'},
                                             {"amount", required_argument, NULL, 'm'},
                                             {"out", required_argument, NULL, 'o'},
                                             {"brokers", required_argument, NULL, 'b'},
                                             {"property", required_argument, NULL, 'X'},
                                             {"data", required_argument, NULL, 'd'},
                                             {"kind", required_argument, NULL, 'k'},
                                             {"products", required_argument, NULL, 'P'},
                                             {"product-prefix", required_argument, NULL, 1},
                                             {"user-prefix", required_argument, NULL, 2},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    char errstr[512];
    double v;
    lg_opts_t *o = &s->opt;
    o->rate = 1000;
    o->seconds = 20;
    o->accounts = 50;
    o->account_prefix = "bench-acct-";
    o->products = 100;
    o->product_prefix = "bench-prod-";
    o->user_prefix = "bench-user-";
    o->prefix = NULL;
    o->amount = 1;
    const char *env = getenv("BENCH_RATE");
    if (env && *env) {
        if (parse_num("BENCH_RATE", env, 1, 1e6, &o->rate) != 0) {
            return -1;
        }
    }
    env = getenv("BENCH_SECONDS");
    if (env && *env) {
        if (parse_num("BENCH_SECONDS", env, 0.01, 86400, &o->seconds) != 0) {
            return -1;
        }
    }
    int opt;
    while ((opt = getopt_long(argc, argv, "r:s:n:A:p:m:o:b:X:d:k:P:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'r':
            if (parse_num("--rate", optarg, 1, 1e6, &o->rate) != 0) {
                return -1;
            }
            break;
        case 's':
            if (parse_num("--seconds", optarg, 0.01, 86400, &o->seconds) != 0) {
                return -1;
            }
            break;
        case 'n':
            if (parse_num("--accounts", optarg, 2, 1e6, &v) != 0) {
                return -1;
            }
            o->accounts = (int)v;
            break;
        case 'A':
            o->account_prefix = optarg;
            break;
        case 'p':
            o->prefix = optarg;
            break;
        case 'm':
            if (parse_num("--amount", optarg, 1, 1e15, &v) != 0) {
                return -1;
            }
            o->amount = (long long)v;
            break;
        case 'o':
            o->out = optarg;
            break;
        case 'k':
            if (strcmp(optarg, "transfers") != 0 && strcmp(optarg, "orders") != 0) {
                fprintf(stderr, "es-loadgen: --kind is transfers or orders, not \"%s\"\n", optarg);
                return -1;
            }
            o->orders = !strcmp(optarg, "orders");
            break;
        case 'P':
            if (parse_num("--products", optarg, 2, 1e6, &v) != 0) {
                return -1;
            }
            o->products = (int)v;
            break;
        case 1:
            o->product_prefix = optarg;
            break;
        case 2:
            o->user_prefix = optarg;
            break;
        case 'b':
            snprintf(s->cfg.brokers, sizeof(s->cfg.brokers), "%s", optarg);
            break;
        case 'd':
            snprintf(s->cfg.data_dir, sizeof(s->cfg.data_dir), "%s", optarg);
            break;
        case 'X':
            if (es_config_add_prop(&s->cfg, optarg, errstr, sizeof(errstr)) != 0) {
                fprintf(stderr, "es-loadgen: %s\n", errstr);
                return -1;
            }
            break;
        case 'h':
            help(stdout);
            return 1;
        default:
            fprintf(stderr, "es-loadgen: unknown flag or missing value (try --help)\n");
            return -1;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "es-loadgen: unexpected argument \"%s\" (try --help)\n", argv[optind]);
        return -1;
    }
    if (strlen(o->account_prefix) > 80 || strlen(o->product_prefix) > 80 ||
        strlen(o->user_prefix) > 80) {
        fprintf(stderr, "es-loadgen: an id prefix is longer than 80 bytes\n");
        return -1;
    }
    if (o->prefix) {
        if (strlen(o->prefix) >= sizeof(s->prefix)) {
            fprintf(stderr, "es-loadgen: --prefix is longer than %zu bytes\n",
                    sizeof(s->prefix) - 1);
            return -1;
        }
        snprintf(s->prefix, sizeof(s->prefix), "%s", o->prefix);
    } else {
        snprintf(s->prefix, sizeof(s->prefix), "lat-%ld-", (long)getpid());
    }
    double total = o->rate * o->seconds;
    if (total < 1 || total > 5e7) {
        fprintf(stderr, "es-loadgen: rate x seconds must be between 1 and 50,000,000 commands\n");
        return -1;
    }
    s->total = (size_t)(total + 0.5);
    return 0;
}

static int64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* xorshift64*: fast, and good enough to pick account pairs. */
static uint64_t rng_next(uint64_t *x)
{
    *x ^= *x >> 12;
    *x ^= *x << 25;
    *x ^= *x >> 27;
    return *x * 0x2545F4914F6CDD1DULL;
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    (void)rk;
    lg_state_t *s = opaque;
    lg_sent_t *e = rkm->_private;
    e->delivered = 1;
    e->err = rkm->err;
    s->outstanding--;
}

static void transfer_id(const lg_state_t *s, size_t seq, char out[LG_TID_MAX])
{
    snprintf(out, LG_TID_MAX, "%s%07zu", s->prefix, seq);
}

/* Two different values in [0, n): a random pair. */
static void pick_pair(lg_state_t *s, int n, int *a, int *b)
{
    *a = (int)(rng_next(&s->rng) % (uint64_t)n);
    *b = (*a + 1 + (int)(rng_next(&s->rng) % (uint64_t)(n - 1))) % n;
}

/* The payload of command `id`: a transfer between two accounts, or an order of two lines. */
static json_t *payload_new(lg_state_t *s, const char *id)
{
    char x[128], y[128];
    int a, b;
    if (!s->opt.orders) {
        pick_pair(s, s->opt.accounts, &a, &b);
        snprintf(x, sizeof(x), "%s%d", s->opt.account_prefix, a);
        snprintf(y, sizeof(y), "%s%d", s->opt.account_prefix, b);
        return json_pack("{s:s, s:s, s:s, s:I}", "transfer_id", id, "from_account", x, "to_account",
                         y, "amount", (json_int_t)s->opt.amount);
    }
    int c = (int)(rng_next(&s->rng) % (uint64_t)s->opt.accounts);
    char user[128], account[128];
    snprintf(user, sizeof(user), "%s%d", s->opt.user_prefix, c);
    snprintf(account, sizeof(account), "%s%d", s->opt.account_prefix, c);
    pick_pair(s, s->opt.products, &a, &b);
    snprintf(x, sizeof(x), "%s%d", s->opt.product_prefix, a);
    snprintf(y, sizeof(y), "%s%d", s->opt.product_prefix, b);
    return json_pack("{s:s, s:s, s:s, s:[{s:s, s:i}, {s:s, s:i}]}", "order_id", id, "user_id", user,
                     "account_id", account, "items", "product_id", x, "quantity", 1, "product_id",
                     y, "quantity", 1);
}

/* Build, encode and produce command number `seq`. Returns 0, or -1 with errstr. */
static int send_one(lg_state_t *s, size_t seq, char *errstr, size_t errstr_size)
{
    char tid[LG_TID_MAX];
    transfer_id(s, seq, tid);
    json_t *payload = payload_new(s, tid);
    if (!payload) {
        snprintf(errstr, errstr_size, "could not build the payload of %s: out of memory", tid);
        return -1;
    }

    es_envelope_t env;
    memset(&env, 0, sizeof(env));
    snprintf(env.aggregate_id, sizeof(env.aggregate_id), "%s", tid);
    if (es_id_random(env.event_id) != 0) {
        json_decref(payload);
        snprintf(errstr, errstr_size, "could not generate a command id: %s", strerror(errno));
        return -1;
    }
    snprintf(env.type, sizeof(env.type), "%s", es_type_name(s->type));
    env.aggregate_version = 0;
    memcpy(env.correlation_id, env.event_id, sizeof(env.correlation_id));
    env.causation_id[0] = '\0';
    es_traceparent_make(env.traceparent, env.correlation_id, env.event_id);
    env.occurred_at = es_now_ms();

    es_buf_reset(&s->enc);
    int rc = es_envelope_encode(s->codec, &env, s->type, payload, &s->enc, errstr, errstr_size);
    json_decref(payload);
    if (rc != 0) {
        return -1;
    }
    lg_sent_t *e = &s->sent[seq];
    rd_kafka_headers_t *hdrs = es_envelope_headers_new(&env, "es-loadgen");
    size_t key_len = strlen(env.aggregate_id);
    rd_kafka_resp_err_t err;
    for (;;) {
        e->sent_us = wall_us();
        err = rd_kafka_producev(
            s->rk, RD_KAFKA_V_RKT(s->rkt), RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(env.aggregate_id, key_len),
            RD_KAFKA_V_VALUE(s->enc.data, s->enc.len), RD_KAFKA_V_TIMESTAMP(env.occurred_at),
            RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(e), RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            break;
        }
        rd_kafka_poll(s->rk, 1);
    }
    if (err) {
        rd_kafka_headers_destroy(hdrs);
        e->delivered = 1;
        e->err = err;
        return 0; /* counted as a failure at the end */
    }
    s->outstanding++;
    return 0;
}

/* The paced loop: every tick, send what is due by now. Returns 0 or -1 (reported). */
static int pace(lg_state_t *s)
{
    char errstr[512];
    const double per_ns = s->opt.rate / 1e9;
    const int64_t t0 = mono_ns();
    int64_t tick = t0;
    while (run && s->produced < s->total) {
        int64_t now = mono_ns();
        size_t due = (size_t)((double)(now - t0) * per_ns) + 1;
        if (due > s->total) {
            due = s->total;
        }
        while (s->produced < due) {
            /* how late this command goes out compared with its slot in the schedule */
            int64_t lag = (now - t0 - (int64_t)((double)s->produced / per_ns)) / 1000;
            if (lag > s->max_lag_us) {
                s->max_lag_us = lag;
            }
            if (send_one(s, s->produced, errstr, sizeof(errstr)) != 0) {
                fprintf(stderr, "es-loadgen: %s\n", errstr);
                return -1;
            }
            s->produced++;
        }
        rd_kafka_poll(s->rk, 0);
        tick += LG_TICK_NS;
        if (tick < now - 10 * LG_TICK_NS) {
            tick = now; /* we slept through several ticks: do not spin to catch the clock up */
        }
        struct timespec ts = {.tv_sec = tick / 1000000000, .tv_nsec = tick % 1000000000};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR && run) {
        }
    }
    return 0;
}

/* Write the CSV of delivered commands. Returns the count of failed ones, or -1. */
static long write_csv(lg_state_t *s, FILE *out)
{
    char tid[LG_TID_MAX];
    long failed = 0;
    for (size_t i = 0; i < s->produced; i++) {
        const lg_sent_t *e = &s->sent[i];
        if (!e->delivered || e->err) {
            if (failed++ < 5) {
                transfer_id(s, i, tid);
                fprintf(stderr, "es-loadgen: could not publish %s: %s\n", tid,
                        e->delivered ? rd_kafka_err2str(e->err) : "no delivery report");
            }
            continue;
        }
        transfer_id(s, i, tid);
        if (fprintf(out, "%s,%lld\n", tid, (long long)e->sent_us) < 0) {
            return -1;
        }
    }
    return failed;
}

int main(int argc, char **argv)
{
    lg_state_t s;
    memset(&s, 0, sizeof(s));
    char errstr[512];
    int rc = 1;
    FILE *out = NULL;
    if (es_config_init(&s.cfg, errstr, sizeof(errstr)) != 0) {
        fprintf(stderr, "es-loadgen: %s\n", errstr);
        return 2;
    }
    int r = parse_args(&s, argc, argv);
    if (r != 0) {
        return r > 0 ? 0 : 2;
    }
    es_buf_init(&s.enc);
    s.rng = ((uint64_t)wall_us() << 16) ^ (uint64_t)getpid() ^ 0x9E3779B97F4A7C15ULL;

    s.codec = es_codec_new(errstr, sizeof(errstr));
    if (!s.codec) {
        fprintf(stderr, "es-loadgen: %s\n", errstr);
        goto err;
    }
    const char *command = s.opt.orders ? "PlaceOrder" : "RequestTransfer";
    s.type = es_codec_type(s.codec, command);
    if (!s.type) {
        fprintf(stderr, "es-loadgen: the schema registry has no %s command\n", command);
        goto err;
    }
    s.sent = calloc(s.total, sizeof(*s.sent));
    if (!s.sent) {
        fprintf(stderr, "es-loadgen: could not allocate %zu send records: out of memory\n",
                s.total);
        goto err;
    }
    if (s.opt.out) {
        out = fopen(s.opt.out, "w");
        if (!out) {
            fprintf(stderr, "es-loadgen: could not open %s: %s\n", s.opt.out, strerror(errno));
            goto err;
        }
    }
    s.rk = es_kafka_producer_new(&s.cfg, "es-loadgen", dr_cb, &s, errstr, sizeof(errstr));
    if (!s.rk) {
        fprintf(stderr, "es-loadgen: %s\n", errstr);
        goto err;
    }
    const char *topic = es_type_topic(s.type);
    s.rkt = rd_kafka_topic_new(s.rk, topic, NULL);
    /* Also makes the connections, so the first commands do not pay for them. */
    if (es_kafka_partition_count(s.rk, topic, LG_CONNECT_TIMEOUT_MS, errstr, sizeof(errstr)) < 0) {
        fprintf(stderr, "es-loadgen: could not reach topic \"%s\" at %s: %s\n", topic,
                s.cfg.brokers, errstr);
        goto err;
    }

    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    fprintf(stderr, "es-loadgen: sending %zu %s at %.0f/s for %g s (ids %s*)\n", s.total, command,
            s.opt.rate, s.opt.seconds, s.prefix);
    int64_t t_start = mono_ns();
    if (pace(&s) != 0) {
        goto err;
    }
    int64_t t_end = mono_ns();
    /* message.timeout.ms bounds every message, so this ends. */
    while (s.outstanding > 0) {
        rd_kafka_flush(s.rk, 1000);
    }
    int64_t t_flushed = mono_ns();

    long failed = write_csv(&s, out ? out : stdout);
    if (failed < 0 || fflush(out ? out : stdout) != 0) {
        fprintf(stderr, "es-loadgen: could not write the send times: %s\n", strerror(errno));
        goto err;
    }
    /* The send window spans the first to the last produce: n - 1 intervals. */
    double secs = (double)(t_end - t_start) / 1e9, achieved = 0;
    if (s.produced > 1) {
        double window = (double)(s.sent[s.produced - 1].sent_us - s.sent[0].sent_us) / 1e6;
        achieved = window > 0 ? (double)(s.produced - 1) / window : 0;
    }
    fprintf(stderr,
            "es-loadgen: sent %zu in %.3f s: %.1f/s (target %.0f/s), worst pacing lag %.2f ms, "
            "last delivery %.1f ms after the last send, %ld not delivered\n",
            s.produced, secs, achieved, s.opt.rate, (double)s.max_lag_us / 1e3,
            (double)(t_flushed - t_end) / 1e6, failed);
    rc = failed == 0 && s.produced == s.total ? 0 : 1;
err:
    if (out && fclose(out) != 0 && rc == 0) {
        fprintf(stderr, "es-loadgen: could not write %s: %s\n", s.opt.out, strerror(errno));
        rc = 1;
    }
    if (s.rkt) {
        rd_kafka_topic_destroy(s.rkt);
    }
    if (s.rk) {
        rd_kafka_destroy(s.rk);
    }
    free(s.sent);
    es_buf_fini(&s.enc);
    es_codec_destroy(s.codec);
    return rc;
}
