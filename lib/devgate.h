/*
 * devgate.h: on the dev stack, connect only to this data folder's dev broker.
 *
 * Programs find the dev broker in <data>/broker.addr. librdkafka keeps that address and
 * reconnects to it whenever a connection drops; when the broker stops and another program
 * (another data folder's dev broker, say) takes its port, every client would reconnect to
 * that one: consumers would read its records and, worse, relays would publish outbox records
 * there and delete them as delivered, lost to this data folder's log. The gate is librdkafka's
 * connect callback: a connection goes ahead only when <data>/broker.addr names the address
 * and <data>/broker.pid names a running es-broker. Otherwise it fails as if refused, and
 * librdkafka retries (with its reconnect backoff) until this data folder's broker listens
 * there again; a broker that had to move elsewhere is followed by restarting the clients
 * (scripts/devstack.sh does it for the services).
 *
 * With KAFKA_BROKERS (or -b) there is no data folder's broker to check: no gate.
 */
#ifndef ES_DEVGATE_H
#define ES_DEVGATE_H

#include <stddef.h>
#include <sys/socket.h>

#include <librdkafka/rdkafka.h>

#include "config.h"

/* Install the gate on `conf` for the dev broker of `data_dir` (copied; every client of a
 * process shares one data folder: the first call's folder is kept). */
void es_devgate_install(rd_kafka_conf_t *conf, const char *data_dir);

/* Whether `addr` is one of the comma-separated host:port entries of `listed` (numeric IPv4
 * or IPv6 hosts compared by address; a name by port alone). Pure: unit-tested. */
int es_devgate_listed(const char *listed, const struct sockaddr *addr, socklen_t addr_len);

/* Whether a client may connect to `addr` now: 1, or 0 with the reason in `why`. */
int es_devgate_allows(const char *data_dir, const struct sockaddr *addr, socklen_t addr_len,
                      char *why, size_t why_size);

/* Whether <data_dir>/broker.pid names a running es-broker. */
int es_devgate_broker_runs(const char *data_dir);

/* Whether the dev broker `cfg` bootstrapped from (its data folder's broker.addr) now publishes
 * another address: 1 with it in `now` (it moved, and the process's clients still call the
 * old one), else 0 (no dev broker, not moved, or not from the data folder). */
int es_devgate_moved(const es_config_t *cfg, char *now, size_t now_size);

#endif
