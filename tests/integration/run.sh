#!/usr/bin/env bash
# run.sh: run the integration tests and print a summary; exit non-zero if any failed, or if none
# ran.
#
#   sh tests/integration/run.sh              every tests/integration/test_*.sh, in name order
#   sh tests/integration/run.sh NAME...      only these (test_x.sh, test_x or x)
#   ES_SOAK=1 sh tests/integration/run.sh    soak_*.sh too (make soak)
#   ES_TEST_SKIP="x y" sh ...run.sh          every test but these (make test: those it has
#                                            already run under ASan)
#
# Each test runs in its own bash with no standard input and a time limit (ES_TEST_TIMEOUT, default
# 600 s; soak tests ES_SOAK_TIMEOUT, default 3600 s). Tests clean up after themselves (lib.sh);
# a test killed at its time limit cannot, so after each test, and before the first, this runner
# stops and removes the stacks of test processes that no longer exist (.data/test-*-<pid>),
# except those kept with ES_KEEP=1.
#
# The last line reads "integration: N passed, N failed".
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -uo pipefail

ES_PROG=integration
# shellcheck source=scripts/common.sh
. "$(cd "$(dirname "$0")/../.." && pwd -P)/scripts/common.sh"
cd "$ES_ROOT" || exit 1
shopt -s nullglob

# sweep_stale: stop and delete the stacks left by test processes that are gone.
sweep_stale() {
    local d pid
    for d in "$ES_ROOT"/.data/test-*-*/; do
        d="${d%/}"
        pid="${d##*-}"
        case "$pid" in
        '' | *[!0-9]*) continue ;;
        esac
        [ ! -e "$d/.keep" ] || continue
        ! es_pid_alive "$pid" || continue
        es_warn "cleaning up after a test that did not: $d"
        ES_DATA="$d" bash "$ES_ROOT/scripts/devstack.sh" down >/dev/null 2>&1 ||
            es_warn "could not stop the stack in $d"
        rm -rf -- "$d"
    done
}

tests=(tests/integration/test_*.sh)
if [ "${ES_SOAK:-0}" = 1 ]; then
    tests+=(tests/integration/soak_*.sh)
fi
if [ $# -gt 0 ]; then
    selected=()
    for want in "$@"; do
        want="$(basename "$want" .sh)"
        found=''
        for t in "${tests[@]}" tests/integration/soak_*.sh; do
            b="$(basename "$t" .sh)"
            if [ "$b" = "$want" ] || [ "$b" = "test_$want" ] || [ "$b" = "soak_$want" ]; then
                selected+=("$t")
                found=1
                break
            fi
        done
        [ -n "$found" ] || es_die "no integration test named $want"
    done
    tests=("${selected[@]}")
elif [ -n "${ES_TEST_SKIP:-}" ]; then
    kept=()
    for t in "${tests[@]}"; do
        b="$(basename "$t" .sh)"
        case " $ES_TEST_SKIP " in
        *" ${b#test_} "* | *" $b "*) ;;
        *) kept+=("$t") ;;
        esac
    done
    tests=("${kept[@]}")
fi

if [ "${#tests[@]}" -eq 0 ]; then
    es_warn "no integration tests found (tests/integration/test_*.sh)"
    printf 'integration: 0 passed, 0 failed\n'
    exit 1
fi

sweep_stale
passed=0
failed=0
results=()
t_all=$SECONDS
for t in "${tests[@]}"; do
    name="$(basename "$t" .sh)"
    case "$name" in
    soak_*) limit="${ES_SOAK_TIMEOUT:-3600}" ;;
    *) limit="${ES_TEST_TIMEOUT:-600}" ;;
    esac
    printf '\n%s=== %s%s\n' "$ES_C_BOLD" "$name" "$ES_C_OFF" >&2
    t0=$SECONDS
    timeout -k 30 "$limit" bash "$t" </dev/null
    rc=$?
    secs=$((SECONDS - t0))
    if [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
        results+=("$(printf '%sPASS%s  %-40s %5s s' "$ES_C_GREEN" "$ES_C_OFF" "$name" "$secs")")
    else
        failed=$((failed + 1))
        why="exit $rc"
        [ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] || why="timed out after $limit s"
        results+=("$(printf '%sFAIL%s  %-40s %5s s  (%s)' "$ES_C_RED" "$ES_C_OFF" "$name" "$secs" "$why")")
    fi
    sweep_stale
done

printf '\n%sintegration tests%s (%s s)\n' "$ES_C_BOLD" "$ES_C_OFF" "$((SECONDS - t_all))"
printf '  %s\n' "${results[@]}"
printf 'integration: %s passed, %s failed\n' "$passed" "$failed"
[ "$failed" -eq 0 ]
