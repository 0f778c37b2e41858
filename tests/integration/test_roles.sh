#!/usr/bin/env bash
# test_roles.sh: every program logs in to PostgreSQL as its own role (scripts/db-roles.sql), and
# PostgreSQL keeps each to its own data. On a running stack with traffic of both contexts: each
# program's sessions use its role; each schema and table is owned by es_ + the schema's name;
# no role may read another's tables (save the positions tables, everybody's, and the
# read models, the query service's), write them or create in another's schema, and trying
# says "permission denied"; the query service writes nothing. esctl rebuild acts as the
# projector's role (the swapped-in tables are the projector's and the query service reads them;
# the projector goes on writing them), and a login that may not act as it is refused with the
# reason. A data folder from before the roles (schemas owned by the superuser, no roles, a
# rebuild's leftover) is handed over at the next start, its data kept, and rebuilds. Setting
# the roles up again writes nothing.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ledger.sh"
. "$(dirname "$0")/bank.sh"
. "$(dirname "$0")/shop.sh"

# the programs' schemas; each is owned by es_ + its name
OWNERS="accounts transfers users catalog orders payments projections shop_views sagas"
READ_MODELS="'projections', 'shop_views', 'sagas'"
OWNERS_SQL="'${OWNERS// /\', \'}'"
ROLES_SQL="'es_${OWNERS// /\', \'es_}', 'es_query'"

stack_start
bank_open 4 r- 1000
shop_open_merchant
esctl send RegisterUser '{"user_id":"r-u","email":"r@example.com","name":"R"}' --wait >/dev/null
esctl send AddProduct '{"product_id":"r-p","name":"Pen","price":150,"stock":5}' --wait >/dev/null
shop_wait_copies 1 1
shop_order r-o1 r-u r-0 'r-p:2' >/dev/null
esctl send RequestTransfer '{"transfer_id":"r-t1","from_account":"r-1","to_account":"r-2","amount":100}' \
    --wait >/dev/null
shop_wait_settled
assert_eq CONFIRMED "$(http GET /orders/r-o1 | jq -r .status)" "the order, read through es-query"

# ---- who logs in as whom -----------------------------------------------------------------------

assert_eq "accounts=es_accounts catalog=es_catalog es-query=es_query orders=es_orders payments=es_payments projector=es_projections sagas=es_sagas shop-projector=es_shop_views transfers=es_transfers users=es_users" \
    "$(sql "SELECT string_agg(DISTINCT application_name || '=' || usename, ' ') FROM pg_stat_activity
            WHERE backend_type = 'client backend' AND application_name <> 'psql'")" \
    "each program's sessions, by the role they logged in as"

# ---- who owns what -----------------------------------------------------------------------------

assert_eq "es_${OWNERS// / es_}" "$(for o in $OWNERS; do sql "SELECT nspowner::regrole FROM pg_namespace WHERE nspname = '$o'"; done | tr '\n' ' ' | sed 's/ $//')" \
    "each schema's owner"
assert_eq 0 "$(sql "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE n.nspname IN ($OWNERS_SQL) AND c.relowner::regrole::text <> 'es_' || n.nspname")" \
    "tables, indexes and sequences owned by another role than their schema's"

# ---- what each may do to the others' -----------------------------------------------------------

# every (role, table) pair of different owners: reads allowed only on positions tables and, for
# the query service, the read models; never a write; never a CREATE in another's schema
pairs="SELECT r.rolname, n.nspname, c.relname, c.oid FROM pg_roles r, pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE r.rolname IN ($ROLES_SQL) AND n.nspname IN ($OWNERS_SQL)
       AND c.relkind = 'r' AND r.rolname <> 'es_' || n.nspname"
assert_eq 0 "$(sql "SELECT count(*) FROM ($pairs) p WHERE has_table_privilege(p.rolname, p.oid, 'SELECT')
                    AND p.relname <> 'positions' AND NOT (p.rolname = 'es_query' AND p.nspname IN ($READ_MODELS))")" \
    "tables another role may read (not a positions table, not a read model read by es_query)"
assert_eq 0 "$(sql "SELECT count(*) FROM ($pairs) p
                    WHERE has_table_privilege(p.rolname, p.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')")" \
    "tables another role may write"
assert_eq 0 "$(sql "SELECT count(*) FROM pg_roles r, pg_namespace n WHERE r.rolname IN ($ROLES_SQL)
                    AND n.nspname IN ($OWNERS_SQL, 'public') AND r.rolname <> 'es_' || n.nspname
                    AND has_schema_privilege(r.rolname, n.oid, 'CREATE')")" \
    "schemas another role may create in"
assert_eq 0 "$(sql "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE n.nspname IN ($READ_MODELS) AND c.relkind = 'r'
                    AND NOT has_table_privilege('es_query', c.oid, 'SELECT')")" \
    "read model tables the query service may not read"

# tried for real: PostgreSQL refuses, and says why
# denied ROLE SQL WHAT: SQL run as ROLE fails with "permission denied"
denied() {
    local err
    if err="$(sql "BEGIN; SET LOCAL ROLE $1; $2; ROLLBACK" 2>&1)"; then
        fail "$3: allowed (it printed: $err)"
    fi
    grep -q 'permission denied' <<<"$err" || fail "$3: failed, but not for want of permission: $err"
    pass "$3: $(grep -o 'permission denied[^"]*"*[^"]*"*' <<<"$err" | head -1)"
}
denied es_orders "SELECT count(*) FROM catalog.products" "orders reads the catalog's stock"
denied es_payments "SELECT balance FROM accounts.accounts" "payments reads the ledger's balances"
denied es_orders "SELECT count(*) FROM users.users" "orders reads the users service's table"
denied es_accounts "INSERT INTO transfers.processed VALUES (gen_random_uuid(), 0, 0)" "accounts writes a dedup mark of transfers"
denied es_orders "SELECT count(*) FROM projections.accounts" "orders reads the ledger's read model"
denied es_query "DELETE FROM projections.accounts" "the query service deletes from a read model"
denied es_query "UPDATE sagas.sagas SET status = status" "the query service writes the saga coordinator's table"
denied es_catalog "CREATE TABLE orders.spy (x int)" "catalog creates a table in orders' schema"
assert_eq t "$(sql "SET ROLE es_orders; SELECT count(*) > 0 FROM catalog.positions WHERE topic = 'catalog.commands'")" \
    "orders reads where catalog is in the log (positions are everybody's)"
assert_eq 1 "$(sql "SET ROLE es_orders; SELECT count(*) FROM orders.prices WHERE product_id = 'r-p'")" \
    "orders reads its own copy of the catalog's prices"

# ---- a rebuild acts as the projector's role ----------------------------------------------------

out="$(esctl rebuild ledger 2>&1)" || {
    printf '%s\n' "$out" | sed 's/^/    /' >&2
    fail "esctl rebuild ledger failed"
}
assert_eq 0 "$(sql "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE n.nspname = 'projections' AND c.relowner::regrole::text <> 'es_projections'")" \
    "objects of the rebuilt ledger projection not owned by its projector's role"
assert_eq 0 "$(sql "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE n.nspname = 'projections' AND c.relkind = 'r'
                    AND NOT has_table_privilege('es_query', c.oid, 'SELECT')")" \
    "tables of the rebuilt projection the query service may not read"
esctl send DepositFunds '{"account_id":"r-3","amount":7}' --wait >/dev/null
assert_eq 1007 "$(http GET /accounts/r-3 | jq -r .balance)" \
    "a deposit after the rebuild, written by es-projector and read by es-query"
if out="$(ES_PG="$(cat -- "$ES_DATA/pg.conninfo") user=es_orders" "$ES_BIN/esctl" rebuild ledger 2>&1)"; then
    fail "a rebuild logged in as es_orders was not refused: $out"
fi
grep -q 'belong to role es_projections, which the role logged in (ES_PG) may not act as' <<<"$out" ||
    fail "the refused rebuild does not say why: $out"
pass "a rebuild logged in as a role that may not act as the projector's is refused: $(tail -1 <<<"$out")"
assert_eq 0 "$(sql "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'projections\\_%'")" \
    "schemas left behind by the refused rebuild"

# ---- setting the roles up again writes nothing -------------------------------------------------

assert_eq t "$("$T_PSQL" -X -q -At -v ON_ERROR_STOP=1 "$(cat -- "$ES_DATA/pg.conninfo")" \
    -c BEGIN -f "$ES_ROOT/scripts/db-roles.sql" -c 'SELECT txid_current_if_assigned() IS NULL' -c COMMIT)" \
    "scripts/db-roles.sql run again wrote nothing (no transaction id taken)"

# ---- a data folder from before the roles -------------------------------------------------------

balances="$(sql "SELECT string_agg(account_id || '=' || balance, ' ' ORDER BY account_id) FROM projections.accounts")"
for p in query sagas shop-projector payments orders catalog users projector transfers accounts; do
    svc_stop "$p"
done
# as the schemas were before: made and owned by the superuser, positions shared with nobody, and
# none of the programs' roles
for o in $OWNERS; do
    sql "REVOKE USAGE ON SCHEMA $o FROM PUBLIC; REVOKE SELECT ON $o.positions FROM PUBLIC"
done
for r in es_${OWNERS// / es_} es_query; do
    sql "REASSIGN OWNED BY $r TO CURRENT_USER; DROP OWNED BY $r; DROP ROLE $r"
done
# and what a rebuild interrupted then left behind
sql "CREATE SCHEMA projections_rebuild; CREATE TABLE projections_rebuild.leftover (x int)"
assert_eq 0 "$(sql "SELECT count(*) FROM pg_roles WHERE rolname IN ($ROLES_SQL)")" "the programs' roles, gone"
assert_eq 0 "$(sql "SELECT count(*) FROM pg_namespace WHERE nspname IN ($OWNERS_SQL) AND nspowner <> 'postgres'::regrole")" \
    "schemas not owned by the superuser, before the start"
stack_stop
stack_start
assert_eq 0 "$(sql "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE n.nspname IN ($OWNERS_SQL) AND (c.relowner::regrole::text <> 'es_' || n.nspname
                    OR n.nspowner::regrole::text <> 'es_' || n.nspname)")" \
    "objects of the old data folder not handed to their schema's role"
assert_eq es_projections "$(sql "SELECT relowner::regrole FROM pg_class WHERE relname = 'leftover'")" \
    "the owner of what an interrupted rebuild left"
out="$(esctl rebuild ledger 2>&1)" || {
    printf '%s\n' "$out" | sed 's/^/    /' >&2
    fail "esctl rebuild ledger failed on the handed-over data"
}
assert_eq 0 "$(sql "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'projections\\_%'")" \
    "schemas left once a rebuild ran on the handed-over data"
assert_eq "$balances" "$(http GET /accounts/r-0 >/dev/null && sql "SELECT string_agg(account_id || '=' || balance, ' ' ORDER BY account_id) FROM projections.accounts")" \
    "the balances, kept"
esctl send RequestTransfer '{"transfer_id":"r-t2","from_account":"r-2","to_account":"r-3","amount":50}' \
    --wait >/dev/null
assert_eq COMPLETED "$(http GET /transfers/r-t2 | jq -r .status)" "a transfer on the handed-over data"
shop_order r-o2 r-u r-0 'r-p:1' >/dev/null
shop_wait_settled
assert_eq CONFIRMED "$(http GET /orders/r-o2 | jq -r .status)" "an order on the handed-over data"
wait_until 30 'esctl lag --max-lag 0'
lags="$(curl -s "http://127.0.0.1:$ES_HTTP_PORT/metrics" | grep '^es_consumer_lag_records{')"
assert_eq 9 "$(sed 's/.*consumer="\([a-z_]*\)".*/\1/' <<<"$lags" | sort -u | wc -l)" \
    "consumers whose lag es-query reads, as role es_query"
assert_eq 0 "$(grep -vc ' 0$' <<<"$lags")" "consumer lags in /metrics that are not 0"
ledger_check
shop_check
