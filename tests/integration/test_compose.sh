#!/usr/bin/env bash
# test_compose.sh: compose/ (the platform on real Kafka) as far as this machine can run it. No
# container runtime or registry can be reached here, so the containers' programs run as
# processes, each with the command and environment compose/docker-compose.yml gives it: the host
# names kafka-N and postgres point at this test's dev broker and PostgreSQL, each container gets
# an empty data folder of its own (no broker.addr, no journal: as on real Kafka), the database
# and superuser are the ones the postgres service creates, and the db-roles service's command
# makes each program's role with its password, which PostgreSQL checks (scram-sha-256 on the
# loopback here, as in the postgres image): each program logs in as its own role. The demo
# then runs through the `demo` service's command and the CLI through the `esctl` service's, and the ledger
# invariants hold. The file itself is read by Compose (docker-compose config: its schema, anchors
# and merges). Also checked: every program the dev stack runs is a service there; the image
# (compose/Dockerfile) installs the -dev packages of every library the Makefile builds with and
# the runtime package of every library the programs link; every topic the platform wrote is one
# scripts/create-topics.sh creates; the postgres settings exist; each program stops on SIGTERM
# within the grace period compose gives it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ledger.sh"

COMPOSE="$ES_ROOT/compose/docker-compose.yml"
DOCKERFILE="$ES_ROOT/compose/Dockerfile"
IMAGE=es-platform:latest
# the file as Compose reads it: checked against the Compose file schema, anchors and merges
# resolved, the tools profile included (docker-compose needs no Docker daemon for this)
command -v docker-compose >/dev/null || fail "docker-compose is not installed: make deps"
resolved="$(docker-compose -f "$COMPOSE" --profile tools config)" || fail "Compose rejects compose/docker-compose.yml"
spec="$(/usr/bin/python3 -c 'import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)' <<<"$resolved")" ||
    fail "could not read docker-compose's output"
q() { jq -r "$@" <<<"$spec"; }

# ---- what the file and the image hold --------------------------------------------------------

# the platform's long-running programs: the services with our image outside the tools profile
mapfile -t programs < <(q --arg i "$IMAGE" '.services | to_entries[]
    | select(.value.image == $i and ((.value.profiles // []) | length) == 0) | .key' | sort)
devstack_services="$(bash -c '. <(sed -n "/^ALL_SERVICES=(/,/)/p" "$1"); printf "%s\n" "${ALL_SERVICES[@]}"' _ \
    "$ES_ROOT/scripts/devstack.sh" | sort | tr '\n' ' ')"
assert_eq "$devstack_services" "$(printf '%s ' "${programs[@]}")" "the compose services are the programs the dev stack runs"

argv_of() { q --arg s "$1" '.services[$s] | ((.entrypoint // []) + (.command // []))[]'; }
copied="$(sed -n '/^COPY --from=build/,/[^\\]$/p' "$DOCKERFILE" | tr -s ' \\\n' '\n' | sed -n 's|^/src/bin/||p' | sort | tr '\n' ' ')"
for s in "${programs[@]}" esctl; do
    prog="$(argv_of "$s" | head -n 1)"
    [ -x "$ES_BIN/$prog" ] || fail "$s runs $prog, which make does not build"
    [[ " $copied" == *" $prog "* ]] || fail "$s runs $prog, which compose/Dockerfile does not copy into the image"
done
pass "every service runs a program make builds and the image holds"

# every file the image copies from the repository exists; the demo finds what it sources
while read -r src; do
    [ -e "$ES_ROOT/$src" ] || fail "compose/Dockerfile copies $src, which does not exist"
done < <(grep '^COPY ' "$DOCKERFILE" | grep -v -- '--from=' | awk '{ for (i = 2; i < NF; i++) print $i }')
[ "$(argv_of demo | tr '\n' ' ')" = "bash scripts/demo.sh " ] || fail "the demo service does not run scripts/demo.sh"
grep -q '^COPY .*scripts/common.sh .*scripts/demo.sh' "$DOCKERFILE" || fail "the image lacks scripts/demo.sh or the common.sh it sources"
pass "every file the image copies exists"

# the packages: a Debian package name for a file (merged /usr: dpkg may know it without /usr)
pkg_of() {
    local f
    f="$(readlink -f -- "$1")"
    { dpkg -S -- "$f" 2>/dev/null || dpkg -S -- "${f#/usr}" 2>/dev/null; } | head -n 1 | cut -d: -f1
}
build_pkgs=" $(sed -n 's/^ARG BUILD_PACKAGES="\(.*\)"$/\1/p' "$DOCKERFILE") "
runtime_pkgs=" $(sed -n 's/^ARG RUNTIME_PACKAGES="\(.*\)"$/\1/p' "$DOCKERFILE") "
[ "$build_pkgs" != '  ' ] && [ "$runtime_pkgs" != '  ' ] || fail "no BUILD_PACKAGES / RUNTIME_PACKAGES in compose/Dockerfile"
for mod in $(sed -n 's/^PKGS *:= *//p' "$ES_ROOT/Makefile"); do
    pc="$(pkg-config --variable=pcfiledir "$mod")/$mod.pc"
    p="$(pkg_of "$pc")"
    [ -n "$p" ] || fail "no Debian package holds $pc"
    [[ "$build_pkgs" == *" $p "* ]] || fail "the Makefile builds with $mod ($p), which the image's build stage does not install"
done
pass "the build stage installs the -dev package of every library the Makefile uses"
# what every Debian image holds: the essential packages and what they depend on (libc6, ...)
base=" $(dpkg-query -W -f='${Essential}\t${Package}\t${Pre-Depends}, ${Depends}\n' |
    awk -F'\t' '$1 == "yes" { print $2; print $3 }' | tr ',|' '\n\n' | sed 's/(.*//; s/:any//; s/ //g' |
    grep . | sort -u | tr '\n' ' ') "
for prog in $copied; do
    for soname in $(readelf -d "$ES_BIN/$prog" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
        path="$(ldd "$ES_BIN/$prog" | awk -v s="$soname" '$1 == s { print $3 }')"
        p="$(pkg_of "$path")"
        [ -n "$p" ] || fail "$prog links $soname ($path), which no Debian package holds"
        [[ "$base" == *" $p "* ]] && continue
        [[ "$runtime_pkgs" == *" $p "* ]] || fail "$prog links $soname from $p, which the image does not install"
    done
done
for tool in bash curl jq; do # the demo and the query service's health check
    [[ "$runtime_pkgs" == *" $tool "* ]] || fail "the image does not install $tool"
done
pass "the image installs the package of every library the programs link, and the demo's tools"

# The topics service: scripts/create-topics.sh with the cluster's settings. Kafka's
# kafka-topics.sh cannot run here (no Kafka); a stand-in in its place records each call and
# refuses the first, as a cluster still starting does.
[ "$(q '.services.topics.command | join(" ")')" = "bash /platform/scripts/create-topics.sh" ] ||
    fail "the topics service does not run scripts/create-topics.sh"
assert_eq "$ES_ROOT/scripts:/platform/scripts:ro $ES_ROOT/schemas:/platform/schemas:ro" \
    "$(q '.services.topics.volumes | join(" ")')" "the topics service sees the repository's scripts and schemas"
tmp="$(mktemp -d)"
at_exit "rm -rf '$tmp'"
printf '%s\n' '#!/usr/bin/env bash' \
    'printf "%s\n" "$*" >>"${0%/*}/calls"' \
    '[ -e "${0%/*}/ready" ] || { touch "${0%/*}/ready"; echo "Timed out waiting for a node assignment" >&2; exit 1; }' \
    >"$tmp/kafka-topics.sh"
chmod +x "$tmp/kafka-topics.sh"
topics_env=()
while IFS=$'\t' read -r name value; do
    [ "$name" = KAFKA_TOPICS ] && value="$tmp/kafka-topics.sh"
    topics_env+=("$name=$value")
done < <(q '.services.topics.environment | to_entries[] | "\(.key)\t\(.value)"')
env -i PATH=/usr/bin:/bin ES_TOPICS_RETRY_S=0 "${topics_env[@]}" bash "$ES_ROOT/scripts/create-topics.sh" \
    >"$tmp/out" 2>&1 || {
    sed 's/^/    /' "$tmp/out" >&2
    fail "the topics service's command failed"
}
ntopics="$(bash "$ES_ROOT/scripts/create-topics.sh" --dry-run | wc -l)"
assert_eq "$((ntopics + 1))" "$(wc -l <"$tmp/calls")" "kafka-topics.sh calls (one a topic, the first refused and tried again)"
want="--bootstrap-server $(q '.services.topics.environment.KAFKA_BROKERS') --create --if-not-exists"
want+=" --partitions $(q '.services.topics.environment.ES_PARTITIONS') --replication-factor 3"
want+=" --config min.insync.replicas=2 --config retention.ms=-1"
assert_eq 0 "$(awk -v w="$want" '{ t = $0; sub(/ --topic [^ ]*/, "", t); if (t != w) n++ } END { print n + 0 }' "$tmp/calls")" \
    "kafka-topics.sh calls not asking for: $want"

# ---- the environment, pointed at this machine -----------------------------------------------

export ES_PARTITIONS
ES_PARTITIONS="$(q '.services["es-accounts"].environment.ES_PARTITIONS')"
assert_eq "$ES_PARTITIONS" "$(q '.services.topics.environment.ES_PARTITIONS')" "the topics are created with the partition count the services are told"
ES_SERVICES=' ' stack_start # the dev broker and PostgreSQL only: the programs are compose's
broker="$(cat -- "$ES_DATA/broker.addr")"
stack_pg="$(es_read_file "$ES_DATA/pg.conninfo")"

pg_user="$(q '.services.postgres.environment.POSTGRES_USER')"
pg_pass="$(q '.services.postgres.environment.POSTGRES_PASSWORD')"
pg_db="$(q '.services.postgres.environment.POSTGRES_DB')"
# as the postgres image's entrypoint does (the dev stack's own database may have the same name:
# no service of the dev stack ran, so it is empty and becomes the user's)
# shellcheck disable=SC2218 # lib.sh's sql, on the stack's database (replaced further down)
sql "CREATE ROLE \"$pg_user\" LOGIN SUPERUSER PASSWORD '$pg_pass'"
if [ "$(sql "SELECT count(*) FROM pg_database WHERE datname = '$pg_db'")" = 0 ]; then
    sql "CREATE DATABASE \"$pg_db\" OWNER \"$pg_user\""
else
    assert_eq "$pg_db" "$(sql 'SELECT current_database()')" "the existing database $pg_db is the dev stack's"
    assert_eq 0 "$(sql "SELECT count(*) FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' AND nspname NOT IN ('public', 'information_schema')")" "schemas in the empty database $pg_db"
    sql "ALTER DATABASE \"$pg_db\" OWNER TO \"$pg_user\""
fi
# The roles are the db-roles service's to make: those scripts/pg.sh made are dropped, and
# passwords are checked on the loopback from now on (the superuser postgres, the test's own,
# and the private socket stay trusted)
for r in $(sql "SELECT rolname FROM pg_roles WHERE rolname !~ '^pg_' AND rolname NOT IN ('postgres', '$pg_user')"); do
    sql "DROP OWNED BY $r; DROP ROLE $r"
done
assert_eq 0 "$(sql "SELECT count(*) FROM pg_roles WHERE rolname IN ('es_accounts', 'es_query', 'es_sagas')")" "the programs' roles before db-roles runs"
hba="$(sql 'SHOW hba_file')"
printf '%s\n' 'local all all trust' 'host all postgres 127.0.0.1/32 trust' 'host all all 127.0.0.1/32 scram-sha-256' >"$hba"
assert_eq t "$(sql 'SELECT pg_reload_conf()')" "PostgreSQL reloads its pg_hba.conf"

# the db-roles service: scripts/db-roles.sh, with its environment pointed at this PostgreSQL
[ "$(q '.services["db-roles"].command | join(" ")')" = "bash /platform/scripts/db-roles.sh" ] ||
    fail "the db-roles service does not run scripts/db-roles.sh"
assert_eq "$ES_ROOT/scripts:/platform/scripts:ro" "$(q '.services["db-roles"].volumes | join(" ")')" \
    "the db-roles service sees the repository's scripts"
roles_env=()
while IFS=$'\t' read -r name value; do
    case "$name" in
    PGHOST) value=127.0.0.1 ;;
    PGPORT) value="$ES_PG_PORT" ;;
    esac
    roles_env+=("$name=$value")
done < <(q '.services["db-roles"].environment | to_entries[] | "\(.key)\t\(.value)"')
out="$(env -i PATH="$(dirname "$T_PSQL"):/usr/bin:/bin" "${roles_env[@]}" bash "$ES_ROOT/scripts/db-roles.sh" 2>&1)" || {
    printf '%s\n' "$out" | sed 's/^/    /' >&2
    fail "the db-roles service's command failed"
}
pass "the db-roles service's command: $out"
assert_eq "es_accounts es_catalog es_orders es_payments es_projections es_query es_sagas es_shop_views es_transfers es_users" \
    "$(sql "SELECT string_agg(rolname, ' ' ORDER BY rolname) FROM pg_authid WHERE rolpassword LIKE 'SCRAM-SHA-256%' AND rolname <> '$pg_user'")" \
    "roles with a password"
if out="$("$T_PSQL" -X -At "host=127.0.0.1 port=$ES_PG_PORT dbname=$pg_db user=es_accounts password=wrong" -c 'SELECT 1' 2>&1)"; then
    fail "a wrong password was accepted"
fi
grep -q 'password authentication failed' <<<"$out" || fail "a wrong password: $out"
pass "a wrong password is refused"

# the postgres service's settings are PostgreSQL 15's
for setting in $(q '.services.postgres.command[]' | sed -n 's/^\([a-z_]*\)=.*/\1/p'); do
    assert_eq 1 "$(sql "SELECT count(*) FROM pg_settings WHERE name = '$setting'")" "postgres setting $setting exists"
done

kafka_hosts="$(q '.services | keys[] | select(test("^kafka-[0-9]+$"))' | sed 's/$/:9092/' | sort | tr '\n' ',')"
qport="$(free_port)"
# env_of SERVICE: its environment as NAME=VALUE lines, the host names replaced by this test's
env_of() {
    local name value
    while IFS=$'\t' read -r name value; do
        case "$name" in
        KAFKA_BROKERS)
            [ "$(tr ',' '\n' <<<"$value" | sort | tr '\n' ',')" = "$kafka_hosts" ] ||
                fail "$1: KAFKA_BROKERS=$value does not name the cluster's nodes ($kafka_hosts)"
            value="$broker"
            ;;
        ES_PG)
            [[ "$value" =~ ^host=postgres\ port=5432\ dbname=$pg_db\ user=([a-z_]+)\ password=([^ ]+)$ ]] ||
                fail "$1: ES_PG=$value is not the postgres service's database"
            value="host=127.0.0.1 port=$ES_PG_PORT dbname=$pg_db user=${BASH_REMATCH[1]} password=${BASH_REMATCH[2]}"
            ;;
        ES_QUERY_URL)
            [ "$value" = http://es-query:8080 ] || fail "$1: ES_QUERY_URL=$value is not es-query's"
            value="http://127.0.0.1:$qport"
            ;;
        ES_HTTP_PORT) value="$qport" ;;
        ES_HTTP_BIND) value=127.0.0.1 ;; # tests talk to nothing but 127.0.0.1
        esac
        printf '%s=%s\n' "$name" "$value"
    done < <(q --arg s "$1" '.services[$s].environment // {} | to_entries[] | "\(.key)\t\(.value)"')
    printf 'ES_DATA=%s\n' "$T_STACK_DIR/containers/$1" # a container's own file system
}
assert_eq 8080 "$(q '.services["es-query"].environment.ES_HTTP_PORT')" "es-query listens on the port compose publishes"
assert_eq "8080 8080" "$(q '.services["es-query"].ports[0] | "\(.published) \(.target)"')" "es-query's port is published"
grep -q '^ENV .*ES_DATA=' "$DOCKERFILE" || fail "the image sets no ES_DATA"

# container_env SERVICE: RUN_ENV, the whole environment of the service's container
container_env() {
    local e
    RUN_ENV=(PATH="$ES_BIN:/usr/bin:/bin" HOME="$T_STACK_DIR/containers/$1" TERM=dumb NO_COLOR=1)
    mkdir -p -- "$T_STACK_DIR/containers/$1"
    while IFS= read -r e; do RUN_ENV+=("$e"); done < <(env_of "$1")
}
# run_in SERVICE ARGV...: run a program as the service's container would (that environment only;
# the image's working folder has the repository's layout)
run_in() {
    container_env "$1"
    shift
    (cd "$ES_ROOT" && exec env -i "${RUN_ENV[@]}" "$@")
}

# ---- the programs, started the compose way ---------------------------------------------------

declare -A pids
mkdir -p -- "$T_STACK_DIR/containers"
stop_programs() {
    local s
    for s in "${!pids[@]}"; do kill -KILL "${pids[$s]}" 2>/dev/null || true; done
}
at_exit stop_programs
for s in "${programs[@]}"; do
    mapfile -t argv < <(argv_of "$s")
    container_env "$s"
    (cd "$ES_ROOT" && exec env -i "${RUN_ENV[@]}" "${argv[@]}") >>"$ES_DATA/log/compose-$s.log" 2>&1 &
    pids[$s]=$! # the program itself: the subshell execs env, env execs it
    # where devstack looks for its programs: a test killed at its time limit leaves a stack
    # that the test runner stops (devstack down), these programs with it
    printf '%s\n' "${pids[$s]}" >"$ES_DATA/run/$s.pid"
done
note "started ${#programs[@]} programs with compose's commands and environment"
wait_until 60 "curl -fsS http://127.0.0.1:$qport/health >/dev/null" || fail "es-query did not answer at :$qport"
for s in "${programs[@]}"; do
    kill -0 "${pids[$s]}" 2>/dev/null || {
        tail -n 20 "$ES_DATA/log/compose-$s.log" >&2
        fail "$s exited at start"
    }
done
pass "every program runs, es-query answers /health"
# each long-running program logs in as its own role, never as the superuser
for s in "${programs[@]}"; do
    role="$(q --arg s "$s" '.services[$s].environment.ES_PG' | sed -n 's/.* user=\([^ ]*\) .*/\1/p')"
    [ -n "$role" ] && [ "$role" != "$pg_user" ] || fail "$s logs in as the superuser ($role)"
    app="${s#es-}"
    [ "$s" != es-query ] || app=es-query
    wait_until 30 "[ \"\$(sql \"SELECT string_agg(DISTINCT usename, ' ') FROM pg_stat_activity WHERE application_name = '$app'\")\" = '$role' ]"
done
pass "each program's sessions log in as the role its ES_PG names" 

# the demo, as `docker compose run --rm demo` runs it
mapfile -t argv < <(argv_of demo)
out="$(run_in demo "${argv[@]}" 2>&1)" || {
    printf '%s\n' "$out" | tail -n 30 >&2
    fail "the demo service's command failed"
}
for want in COMPLETED INSUFFICIENT_FUNDS 'compensated: the debit was reversed' CONFIRMED OUT_OF_STOCK REFUNDED; do
    grep -qF -- "$want" <<<"$out" || {
        printf '%s\n' "$out" | sed 's/^/    /' >&2
        fail "the demo's output lacks $want"
    }
done
pass "the demo runs through compose's demo service ($(grep -c . <<<"$out") lines)"
assert_eq 0 "$(grep -c 'bin/esctl\|es-query:8080\|127\.0\.0\.1' <<<"$out" || true)" \
    "commands the demo suggests that would not work from the host (bin/esctl, the containers' addresses)"
grep -qF -- "$(q '.services.demo.environment.ES_DEMO_ESCTL') saga" <<<"$out" || fail "the demo does not suggest esctl through compose"

# the CLI, as `docker compose run --rm esctl ...` runs it
mapfile -t esctl_argv < <(q '.services.esctl.entrypoint[]')
out="$(run_in esctl "${esctl_argv[@]}" send OpenAccount '{"account_id":"compose-a","owner":"A","currency":"EUR"}' --wait --timeout 30)"
assert_eq ACCEPTED "$(jq -r .status <<<"$out")" "esctl send --wait through the esctl service"
out="$(run_in esctl "${esctl_argv[@]}" send DepositFunds '{"account_id":"compose-a","amount":700}' --wait --timeout 30)"
assert_eq 700 "$(jq -r .account.balance <<<"$out")" "a deposit read back through the query service"
n="$(run_in esctl "${esctl_argv[@]}" replay --context accounts --aggregate compose-a | jq -r .type | tr '\n' ' ')"
assert_eq "OpenAccount DepositFunds AccountOpened FundsDeposited " "$n" "esctl replay from the broker alone (no journal)"
assert_eq 0 "$(find "$T_STACK_DIR/containers" -name broker.addr -o -name journal | wc -l)" "files of a dev broker in the containers' folders"
assert_eq 0 "$(cat "$ES_DATA"/log/compose-*.log | grep -c 'not connecting' || true)" "connections the dev broker check refused (none: KAFKA_BROKERS)"

# production creates the topics the dev broker creates, and the platform wrote to no other
topics="$(bash "$ES_ROOT/scripts/create-topics.sh" --dry-run | sort | tr '\n' ' ')"
assert_eq "$topics" "$(ls "$ES_DATA/journal" | sort | tr '\n' ' ')" "create-topics.sh creates the dev broker's topics"
written="$(find "$ES_DATA/journal" -name '*.log' -size +0 | awk -F/ '{ print $(NF - 1) }' | sort -u)"
for t in $written; do
    [[ " $topics" == *" $t "* ]] || fail "the platform wrote to $t, which scripts/create-topics.sh does not create"
done
pass "the demo wrote to $(wc -w <<<"$written") of those $(wc -w <<<"$topics") topics"

# the ledger's invariants, in the compose database: ledger.sh's queries go there from now on
sql() {
    local query="$1"
    shift
    "$T_PSQL" -X -q -At -v ON_ERROR_STOP=1 "$stack_pg dbname=$pg_db" "$@" -c "$query"
}
ledger_wait_settled "$(sql "SELECT count(*) FROM transfers.transfers")" 60
ledger_check

# SIGTERM, as docker compose stop sends it: each program stops within its grace period
grace="$(q '.services["es-accounts"].stop_grace_period' | sed 's/s$//')"
for s in "${programs[@]}"; do kill -TERM "${pids[$s]}"; done
for s in "${programs[@]}"; do
    deadline=$((SECONDS + grace))
    while kill -0 "${pids[$s]}" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
    kill -0 "${pids[$s]}" 2>/dev/null && fail "$s did not stop within ${grace} s of SIGTERM"
    rc=0
    wait "${pids[$s]}" || rc=$?
    [ "$rc" = 0 ] || {
        tail -n 20 "$ES_DATA/log/compose-$s.log" >&2
        fail "$s exited with status $rc on SIGTERM"
    }
    unset "pids[$s]"
done
pass "every program stopped on SIGTERM with status 0 within ${grace} s"
stack_stop
