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
# KAFKA_COMMAND_CONFIG (a client properties file for SASL/SSL, passed as --command-config).
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
for t in "${topics[@]}"; do
    "$tool" --bootstrap-server "$KAFKA_BROKERS" "${extra[@]}" --create --if-not-exists \
        --topic "$t" --partitions "$partitions" --replication-factor "$replication" \
        --config min.insync.replicas=$((replication > 1 ? 2 : 1)) --config retention.ms=-1
    echo "create-topics: $t ($partitions partitions, replication $replication)"
done
