#!/usr/bin/env bash
# deps.sh: install the Debian 12 packages this platform builds, tests and runs with, and only
# those that are missing. Silent when nothing is missing, so `make` targets can call it every time.
#
# Installs with apt-get as root (CI), or through sudo; with neither, prints the command to run and
# fails. `apt-get update` runs only when an install is needed and fails without it.
#
# Usage: sh scripts/deps.sh        (or make deps)
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail

ES_PROG=deps
# shellcheck source=scripts/common.sh
. "$(dirname "$0")/common.sh"

# What each package is for:
#   build-essential pkg-config    the C toolchain and the Makefile's pkg-config lookups
#   librdkafka-dev libavro-dev    Kafka client (with its mock cluster) and Avro encoding
#   libjansson-dev libevent-dev   JSON, and the HTTP server of es-query
#   libpq-dev postgresql-15       PostgreSQL client library; the server (initdb, pg_ctl) for the
#                                 private dev/test cluster of scripts/pg.sh
#   check                         unit tests
#   curl jq procps                the dev stack and integration tests (HTTP, JSON, ps)
#   docker-compose python3-yaml   test_compose.sh: docker-compose checks compose/docker-compose.yml
#                                 against the Compose file schema and resolves it (no Docker
#                                 daemon needed, none installed); python3-yaml makes it JSON
#   clang-format                  make fmt / fmt-check
#   cppcheck                      make lint
PACKAGES=(build-essential pkg-config librdkafka-dev libavro-dev libjansson-dev libevent-dev
    libpq-dev check postgresql-15 curl jq procps docker-compose python3-yaml clang-format cppcheck)

missing_packages() {
    local installed
    # Unknown packages make dpkg-query complain and print nothing for them: they count as missing.
    installed="$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${PACKAGES[@]}" 2>/dev/null |
        awk '$2 == "installed" { print $1 }')" || true
    local p
    for p in "${PACKAGES[@]}"; do
        if ! grep -qxF -- "$p" <<<"$installed"; then
            printf '%s\n' "$p"
        fi
    done
}

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
    es_die "this script installs with apt-get on Debian 12; install the equivalents of: ${PACKAGES[*]}"
fi

mapfile -t MISSING < <(missing_packages)
if [ "${#MISSING[@]}" -eq 0 ]; then
    exit 0
fi

if [ -r /etc/os-release ]; then
    # shellcheck disable=SC1091
    os_id="$(. /etc/os-release && printf '%s %s' "${ID:-?}" "${VERSION_ID:-?}")"
    if [ "$os_id" != "debian 12" ]; then
        es_warn "written for debian 12, this is $os_id: package names may differ"
    fi
fi

es_info "missing packages: ${MISSING[*]}"

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    es_info "not root and no sudo: as root, run"
    printf '    apt-get update && apt-get install -y %s\n' "${MISSING[*]}" >&2
    exit 1
fi

# env, not export: sudo would drop an exported variable.
install_cmd=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${MISSING[@]}")
if ! "${install_cmd[@]}"; then
    es_info "install failed; refreshing the package lists (apt-get update) and trying again"
    "${SUDO[@]}" apt-get update -q || es_die "apt-get update failed"
    "${install_cmd[@]}" || es_die "could not install: ${MISSING[*]}"
fi

mapfile -t STILL < <(missing_packages)
if [ "${#STILL[@]}" -gt 0 ]; then
    es_die "still missing after install: ${STILL[*]}"
fi
es_info "installed: ${MISSING[*]}"
