#!/usr/bin/env bash
# soak_shop_crash.sh: test_shop_crash.sh scaled up (make soak): 10,000 random orders and 1,000
# cancels while es-catalog, es-payments, es-orders and es-sagas are killed (-9) and restarted 30
# times in all, each on its own schedule; then every order has ended, every shop and ledger
# invariant holds and a rebuild reproduces the shop projection.
export SHOP_CRASH_ORDERS="${SHOP_CRASH_ORDERS:-10000}"
export SHOP_CRASH_CANCELS="${SHOP_CRASH_CANCELS:-1000}"
export SHOP_CRASH_KILLS="${SHOP_CRASH_KILLS:-30}"
export SHOP_CRASH_CHUNKS="${SHOP_CRASH_CHUNKS:-100}"
export SHOP_CRASH_CHUNK_PAUSE="${SHOP_CRASH_CHUNK_PAUSE:-1.2}" # ~8 kills a service, ~13 s each
export SHOP_CRASH_DEPOSIT="${SHOP_CRASH_DEPOSIT:-2000000}"
export SHOP_CRASH_STOCK="${SHOP_CRASH_STOCK:-4000}"
export SHOP_CRASH_SETTLE_TIMEOUT="${SHOP_CRASH_SETTLE_TIMEOUT:-900}"
# shellcheck source=tests/integration/test_shop_crash.sh
. "$(dirname "$0")/test_shop_crash.sh"
