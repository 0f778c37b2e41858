/*
 * chaos.c: faults injected into the running dev broker on request (`esctl chaos`), to watch
 * the platform ride through them: a broker that answers late, one that goes down, requests
 * that fail.
 *
 * esctl leaves a request in <data>/chaos/<id>.req (written whole, then renamed into place);
 * the main thread looks there every CHAOS_LOOK_US, applies it to the mock cluster
 * (rd_kafka_mock_broker_set_rtt, _set_down/_up, rd_kafka_mock_push_request_errors_array) and
 * answers in <data>/chaos/<id>.ack with the faults in force, which esctl reads and removes.
 * A fault with a duration ends by itself when it is up, even if nobody asks again, and every
 * fault ends when the broker stops (its drain needs the cluster whole). Each start and end is
 * logged, so the services' logs can be read against it.
 *
 * Everything here runs in the main thread; the mock's calls hand the change to its own
 * thread and wait until it is made.
 */
#include "broker.h"
#include "chaos_req.h"
#include "ids.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CHAOS_LOOK_US 50000
#define CHAOS_REQ_MAX 4096
/* an answer nobody took (its esctl was killed) goes after this */
#define CHAOS_ACK_STALE_S 60

typedef struct chaos_errors {
    int count;     /* pushed since the last heal */
    int error;     /* the last push's */
    int64_t at_us; /* the last push */
} chaos_errors_t;

static struct {
    int active; /* broker_chaos_start succeeded */
    char dir[1200];
    int broker_cnt;
    int64_t next_look_us;
    int latency_ms[BROKER_PORTS_MAX + 1]; /* by broker id, 0 = none */
    int64_t latency_until_us[BROKER_PORTS_MAX + 1];
    int64_t down_until_us[BROKER_PORTS_MAX + 1]; /* 0 = up */
    chaos_errors_t errors[32];                   /* by ApiKey */
} cs;

int broker_chaos_start(int broker_cnt, const char *data_dir, char *errstr, size_t errstr_size)
{
    memset(&cs, 0, sizeof(cs));
    cs.broker_cnt = broker_cnt;
    snprintf(cs.dir, sizeof(cs.dir), "%s/chaos", data_dir);
    if (mkdir(cs.dir, 0755) != 0 && errno != EEXIST) {
        snprintf(errstr, errstr_size, "could not create %s: %s", cs.dir, strerror(errno));
        return -1;
    }
    /* requests and answers of an earlier run are nobody's now */
    DIR *d = opendir(cs.dir);
    if (!d) {
        snprintf(errstr, errstr_size, "could not open %s: %s", cs.dir, strerror(errno));
        return -1;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] != '.') {
            char path[1500];
            snprintf(path, sizeof(path), "%s/%s", cs.dir, de->d_name);
            unlink(path);
        }
    }
    closedir(d);
    cs.active = 1;
    return 0;
}

/* Broker ids a request for `broker` (0: all) covers: [*lo, *hi]. */
static void span(int broker, int *lo, int *hi)
{
    *lo = broker ? broker : 1;
    *hi = broker ? broker : cs.broker_cnt;
}

static void set_latency(broker_t *b, int id, int ms, int64_t until_us)
{
    rd_kafka_mock_broker_set_rtt(b->mcluster, id, ms);
    cs.latency_ms[id] = ms;
    cs.latency_until_us[id] = until_us;
}

static void set_down(broker_t *b, int id, int64_t until_us)
{
    if (until_us && !cs.down_until_us[id]) {
        rd_kafka_mock_broker_set_down(b->mcluster, id);
    } else if (!until_us && cs.down_until_us[id]) {
        rd_kafka_mock_broker_set_up(b->mcluster, id);
    }
    cs.down_until_us[id] = until_us;
}

/* End every fault. Returns how many there were. */
static int heal_all(broker_t *b)
{
    int healed = 0;
    for (int id = 1; id <= cs.broker_cnt; id++) {
        if (cs.latency_ms[id]) {
            set_latency(b, id, 0, 0);
            healed++;
        }
        healed += cs.down_until_us[id] != 0;
        set_down(b, id, 0);
    }
    for (int api = 0; api < (int)(sizeof(cs.errors) / sizeof(cs.errors[0])); api++) {
        if (cs.errors[api].count) {
            rd_kafka_mock_clear_request_errors(b->mcluster, (int16_t)api);
            cs.errors[api].count = 0;
            healed++;
        }
    }
    return healed;
}

/* Apply a parsed request. */
static void apply(broker_t *b, const chaos_req_t *r, int64_t now_us)
{
    int lo, hi;
    char which[16] = "all";
    if (r->broker) {
        snprintf(which, sizeof(which), "%d", r->broker);
    }
    switch (r->fault) {
    case CHAOS_LATENCY:
        span(r->broker, &lo, &hi);
        for (int id = lo; id <= hi; id++) {
            set_latency(b, id, r->ms, now_us + r->for_ms * 1000);
        }
        es_log_warn("chaos: latency injected", "broker=%s ms=%d for_ms=%lld", which, r->ms,
                    (long long)r->for_ms);
        break;
    case CHAOS_DOWN:
        span(r->broker, &lo, &hi);
        for (int id = lo; id <= hi; id++) {
            set_down(b, id, now_us + r->for_ms * 1000);
        }
        es_log_warn("chaos: broker down", "broker=%s for_ms=%lld", which, (long long)r->for_ms);
        break;
    case CHAOS_ERRORS: {
        rd_kafka_resp_err_t *errs = malloc((size_t)r->count * sizeof(*errs));
        if (!errs) {
            es_log_error("chaos: out of memory", "count=%d", r->count);
            break;
        }
        for (int i = 0; i < r->count; i++) {
            errs[i] = (rd_kafka_resp_err_t)r->error;
        }
        rd_kafka_mock_push_request_errors_array(b->mcluster, (int16_t)r->api, (size_t)r->count,
                                                errs);
        free(errs);
        chaos_errors_t *e = &cs.errors[r->api];
        e->count += r->count;
        e->error = r->error;
        e->at_us = now_us;
        es_log_warn("chaos: request errors injected", "api=%s count=%d error=%s",
                    chaos_api_name(r->api), r->count, chaos_error_name(r->error));
        break;
    }
    case CHAOS_HEAL:
        heal_all(b);
        es_log_warn("chaos: every fault healed", "by=%s", "esctl chaos heal");
        break;
    case CHAOS_STATUS:
        break;
    }
}

/* End what is due. */
static void expire(broker_t *b, int64_t now_us)
{
    for (int id = 1; id <= cs.broker_cnt; id++) {
        if (cs.latency_ms[id] && now_us >= cs.latency_until_us[id]) {
            es_log_info("chaos: latency over", "broker=%d ms=%d", id, cs.latency_ms[id]);
            set_latency(b, id, 0, 0);
        }
        if (cs.down_until_us[id] && now_us >= cs.down_until_us[id]) {
            int64_t late_ms = (now_us - cs.down_until_us[id]) / 1000;
            set_down(b, id, 0);
            es_log_info("chaos: broker up again", "broker=%d late_ms=%lld", id, (long long)late_ms);
        }
    }
}

/* The faults in force, as the answer lists them. */
static json_t *faults_json(int64_t now_us)
{
    json_t *list = json_array();
    for (int id = 1; id <= cs.broker_cnt; id++) {
        if (cs.latency_ms[id]) {
            json_array_append_new(
                list, json_pack("{s:s,s:i,s:i,s:I}", "fault", "latency", "broker", id, "ms",
                                cs.latency_ms[id], "left_ms",
                                (json_int_t)((cs.latency_until_us[id] - now_us) / 1000)));
        }
        if (cs.down_until_us[id]) {
            json_array_append_new(
                list, json_pack("{s:s,s:i,s:I}", "fault", "down", "broker", id, "left_ms",
                                (json_int_t)((cs.down_until_us[id] - now_us) / 1000)));
        }
    }
    for (int api = 0; api < (int)(sizeof(cs.errors) / sizeof(cs.errors[0])); api++) {
        const chaos_errors_t *e = &cs.errors[api];
        if (e->count) {
            json_array_append_new(
                list, json_pack("{s:s,s:s,s:s,s:i,s:I}", "fault", "errors", "api",
                                chaos_api_name(api), "error", chaos_error_name(e->error), "pushed",
                                e->count, "ago_ms", (json_int_t)((now_us - e->at_us) / 1000)));
        }
    }
    return list;
}

static void answer(const char *id, const char *error, int64_t now_us)
{
    json_t *a = json_pack("{s:s,s:b}", "id", id, "ok", error == NULL);
    if (error) {
        json_object_set_new(a, "error", json_string(error));
    }
    json_object_set_new(a, "faults", faults_json(now_us));
    char *text = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    char path[1500];
    snprintf(path, sizeof(path), "%s/%s.ack", cs.dir, id);
    if (!text || es_config_write_file(path, text) != 0) {
        es_log_error("chaos: could not answer a request", "path=%s error=\"%s\"", path,
                     text ? strerror(errno) : "out of memory");
    }
    free(text);
}

/* One request file `name` (ends in .req): read, removed, applied, answered. */
static void take(broker_t *b, const char *name, int64_t now_us)
{
    char path[1500];
    snprintf(path, sizeof(path), "%s/%s", cs.dir, name);
    char text[CHAOS_REQ_MAX + 1];
    size_t len = 0;
    FILE *f = fopen(path, "r");
    if (f) {
        len = fread(text, 1, sizeof(text), f);
        fclose(f);
    }
    unlink(path);
    if (!f) {
        return;
    }
    chaos_req_t r;
    memset(&r, 0, sizeof(r));
    char why[512];
    int rc =
        len > CHAOS_REQ_MAX
            ? (snprintf(why, sizeof(why), "the request is larger than %d bytes", CHAOS_REQ_MAX), -1)
            : chaos_req_parse(text, len, cs.broker_cnt, &r, why, sizeof(why));
    if (rc != 0) {
        /* answered under the file's own name when the request carried no usable id */
        char id[CHAOS_ID_MAX + 1];
        size_t n = strlen(name) - 4;
        snprintf(id, sizeof(id), "%.*s", (int)(n < CHAOS_ID_MAX ? n : CHAOS_ID_MAX), name);
        es_log_warn("chaos: request refused", "file=%s reason=\"%s\"", name, why);
        answer(len <= CHAOS_REQ_MAX && r.id[0] ? r.id : id, why, now_us);
        return;
    }
    apply(b, &r, now_us);
    answer(r.id, NULL, now_us);
}

void broker_chaos_tick(broker_t *b)
{
    if (!cs.active) {
        return;
    }
    int64_t now_us = es_mono_us();
    expire(b, now_us);
    if (now_us < cs.next_look_us) {
        return;
    }
    cs.next_look_us = now_us + CHAOS_LOOK_US;
    DIR *d = opendir(cs.dir);
    if (!d) {
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (n > 4 && !strcmp(de->d_name + n - 4, ".req")) {
            take(b, de->d_name, now_us);
        } else if (n > 4 && !strcmp(de->d_name + n - 4, ".ack")) {
            char path[1500];
            struct stat st;
            snprintf(path, sizeof(path), "%s/%s", cs.dir, de->d_name);
            if (stat(path, &st) == 0 && time(NULL) - st.st_mtime > CHAOS_ACK_STALE_S) {
                unlink(path);
            }
        }
    }
    closedir(d);
}

int broker_chaos_slowed(void)
{
    for (int id = 1; cs.active && id <= cs.broker_cnt; id++) {
        if (cs.down_until_us[id] || cs.latency_ms[id]) {
            return 1;
        }
    }
    return 0;
}

void broker_chaos_stop(broker_t *b)
{
    if (!cs.active) {
        return;
    }
    if (heal_all(b) > 0) {
        es_log_info("chaos: every fault healed", "by=%s", "stopping");
    }
    cs.active = 0;
}
