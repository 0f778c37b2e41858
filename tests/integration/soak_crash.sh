#!/usr/bin/env bash
# soak_crash.sh: test_crash.sh scaled up (make soak): 20,000 transfers among 200 accounts while
# es-accounts and es-projector are each killed (-9) and restarted 20 times; then every transfer
# has ended, the ledger invariants hold and a rebuild reproduces the projection.
export CRASH_ACCOUNTS="${CRASH_ACCOUNTS:-200}"
export CRASH_TRANSFERS="${CRASH_TRANSFERS:-20000}"
export CRASH_KILLS="${CRASH_KILLS:-20}"
export CRASH_CHUNKS="${CRASH_CHUNKS:-50}"
export CRASH_CHUNK_PAUSE="${CRASH_CHUNK_PAUSE:-4.5}"
export CRASH_SETTLE_TIMEOUT="${CRASH_SETTLE_TIMEOUT:-600}"
# shellcheck source=tests/integration/test_crash.sh
. "$(dirname "$0")/test_crash.sh"
