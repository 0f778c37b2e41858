#!/usr/bin/env bash
# db-roles.sh: set up the programs' PostgreSQL roles on a database that is not the dev stack's
# (compose's one-shot db-roles service; the dev stack's scripts/pg.sh runs the same SQL itself):
# scripts/db-roles.sql as a superuser, then each role's password.
#
#   PGHOST=db PGUSER=admin PGPASSWORD=... PGDATABASE=es \
#   ES_DB_PASSWORD_ES_ACCOUNTS=... ES_DB_PASSWORD_ES_QUERY=... scripts/db-roles.sh
#
# Environment: libpq's PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE (a superuser on the
# platform's database); ES_DB_PASSWORD_<ROLE> (the role's name in capitals: ES_ACCOUNTS,
# ES_SHOP_VIEWS, ES_QUERY, ...), the password that role logs in with, set on every run. A role
# without one keeps the password it has (none at first: it cannot log in with a password).
# Safe to run again: the SQL changes only what differs.
set -euo pipefail
here="$(dirname "$0")"

psql -X -q -v ON_ERROR_STOP=1 -f "$here/db-roles.sql"
n=0
for var in $(compgen -v ES_DB_PASSWORD_ || true); do
    role="${var#ES_DB_PASSWORD_}"
    role="${role,,}"
    [ -n "${!var}" ] || {
        echo "db-roles: $var is empty" >&2
        exit 1
    }
    # the name and the password travel as psql variables, quoted by psql (:"x", :'x'), never
    # spliced into SQL
    known="$(psql -X -At -v ON_ERROR_STOP=1 -v role="$role" \
        <<<"SELECT count(*) FROM pg_roles WHERE rolname = :'role'")"
    [ "$known" = 1 ] || {
        echo "db-roles: $var: no role $role (scripts/db-roles.sql makes them)" >&2
        exit 1
    }
    psql -X -q -v ON_ERROR_STOP=1 -v role="$role" -v pw="${!var}" <<<"ALTER ROLE :\"role\" PASSWORD :'pw';"
    n=$((n + 1))
done
echo "db-roles: the programs' roles are set up on ${PGDATABASE:-the database} (passwords set: $n)"
