#!/usr/bin/env bash
# create-topics.sh: create the platform's topics on a real Kafka cluster (the dev broker creates
# them itself). For every context under schemas/: <context>.commands, <context>.events and
# <context>.dlq, plus projections.dlq, with the same partition count everywhere (the key decides
# the partition, so every topic of the platform must agree on the count), and kept for ever
# (retention.ms=-1: the log is the system of record, projections are rebuilt from offset 0).
#
#   KAFKA_BROKERS=host:9092 scripts/create-topics.sh [--dry-run]
#
# Environment: KAFKA_BROKERS (required), ES_PARTITIONS (default 6), ES_REPLICATION (default 3),
# KAFKA_TOPICS (the kafka-topics.sh to use, default: kafka-topics.sh on PATH),
# KAFKA_COMMAND_CONFIG (a client properties file for SASL/SSL, passed as --command-config),
# ES_TOPICS_ATTEMPTS (default 10) and ES_TOPICS_RETRY_S (default 3): how often a topic is tried
# and how long apart.
set -euo pipefail
cd "$(dirname "$0")/.."

dry=''
[ "${1:-}" = --dry-run ] && dry=1
partitions="${ES_PARTITIONS:-6}"
replication="${ES_REPLICATION:-3}"
tool="${KAFKA_TOPICS:-kafka-topics.sh}"

topics=()
for dir in schemas/*/; do
    ctx="$(basename "$dir")"
    topics+=("$ctx.commands" "$ctx.events" "$ctx.dlq")
done
topics+=(projections.dlq)

if [ -n "$dry" ]; then
    printf '%s\n' "${topics[@]}"
    exit 0
fi
if [ -z "${KAFKA_BROKERS:-}" ]; then
    echo 'create-topics: set KAFKA_BROKERS to the bootstrap servers of the cluster' >&2
    exit 1
fi
command -v "$tool" >/dev/null 2>&1 || {
    echo "create-topics: $tool not found (set KAFKA_TOPICS to Kafka's bin/kafka-topics.sh)" >&2
    exit 1
}
extra=()
[ -n "${KAFKA_COMMAND_CONFIG:-}" ] && extra=(--command-config "$KAFKA_COMMAND_CONFIG")
# A cluster that was just started may answer before it can create topics (its nodes still
# registering, too few for the replication asked): each topic is tried again a few times.
attempts="${ES_TOPICS_ATTEMPTS:-10}"
for t in "${topics[@]}"; do
    for ((a = 1; ; a++)); do
        if "$tool" --bootstrap-server "$KAFKA_BROKERS" "${extra[@]}" --create --if-not-exists \
            --topic "$t" --partitions "$partitions" --replication-factor "$replication" \
            --config min.insync.replicas=$((replication > 1 ? 2 : 1)) --config retention.ms=-1; then
            break
        fi
        if [ "$a" -ge "$attempts" ]; then
            echo "create-topics: could not create $t after $a attempts" >&2
            exit 1
        fi
        echo "create-topics: $t: attempt $a failed; trying again in ${ES_TOPICS_RETRY_S:-3} s" >&2
        sleep "${ES_TOPICS_RETRY_S:-3}"
    done
    echo "create-topics: $t ($partitions partitions, replication $replication)"
done
