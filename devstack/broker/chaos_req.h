/*
 * chaos_req.h: what `esctl chaos` may ask the dev broker for, read from the request it leaves
 * in <data>/chaos/ (chaos.c applies it). Pure: no I/O, no broker state, unit-tested.
 *
 * A request is one JSON object:
 *   {"id": "9f2c...", "fault": "latency", "ms": 200, "for_ms": 10000, "broker": 0}
 *   {"id": ..., "fault": "down", "for_ms": 5000, "broker": 2}
 *   {"id": ..., "fault": "errors", "api": "produce", "count": 20, "error": "_TRANSPORT"}
 *   {"id": ..., "fault": "heal"}          every fault ends now
 *   {"id": ..., "fault": "status"}        nothing changes; the answer lists the faults
 * "broker" 0 (or absent) means every broker of the cluster; "for_ms", "count" and "error" have
 * defaults (CHAOS_*_DEFAULT). Anything else, or a value out of range, is refused with a reason.
 */
#ifndef ES_CHAOS_REQ_H
#define ES_CHAOS_REQ_H

#include <stddef.h>
#include <stdint.h>

typedef enum chaos_fault {
    CHAOS_LATENCY, /* every answer of the broker(s) goes `ms` later */
    CHAOS_DOWN,    /* the broker(s) drop their connections and refuse new ones */
    CHAOS_ERRORS,  /* the next `count` requests of `api` are answered with `error` */
    CHAOS_HEAL,
    CHAOS_STATUS
} chaos_fault_t;

#define CHAOS_ID_MAX 32
#define CHAOS_LATENCY_MAX_MS 60000
#define CHAOS_FOR_MAX_MS 3600000
#define CHAOS_LATENCY_FOR_DEFAULT_MS 10000
#define CHAOS_DOWN_FOR_DEFAULT_MS 5000
#define CHAOS_COUNT_MAX 100000
#define CHAOS_COUNT_DEFAULT 10
#define CHAOS_ERROR_DEFAULT "_TRANSPORT"

typedef struct chaos_req {
    char id[CHAOS_ID_MAX + 1]; /* [A-Za-z0-9_-]: names the answer's file */
    chaos_fault_t fault;
    int broker;     /* 1..broker_cnt, or 0: every broker */
    int ms;         /* latency */
    int64_t for_ms; /* latency, down */
    int api;        /* errors: the request's ApiKey */
    int count;      /* errors */
    int error;      /* errors: the rd_kafka_resp_err_t answered */
} chaos_req_t;

/* Read the request in json[len] for a cluster of broker_cnt brokers into *out. Returns 0, or
 * -1 with the reason in errstr (out->id is filled whenever the request named a usable id, so
 * that the refusal can be answered). */
int chaos_req_parse(const char *json, size_t len, int broker_cnt, chaos_req_t *out, char *errstr,
                    size_t errstr_size);

/* The request type's name ("produce") of an ApiKey chaos_req_parse accepts, or NULL. */
const char *chaos_api_name(int api);

/* The error's name as librdkafka spells it ("_TRANSPORT", "REQUEST_TIMED_OUT"). Never NULL. */
const char *chaos_error_name(int error);

/* The fault's name ("latency"). */
const char *chaos_fault_name(chaos_fault_t fault);

#endif
