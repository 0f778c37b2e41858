-- db-roles.sql: one PostgreSQL role for each program of the platform, each the owner of its
-- own schema and of nothing else. Roles belong to the whole cluster, not to one database: the
-- platform's start with es_ (lib/config.h), so that they never meet another application's
-- "users". Run by the superuser on the platform's database, again at every start (it changes
-- only what differs, so a second run writes nothing): scripts/pg.sh start on the dev stack,
-- scripts/db-roles.sh in compose (which also gives each role its password).
--
-- A service logs in as es_ + its schema's name (es_accounts, es_orders, ...), creates the
-- schema and its tables there, and may read or write no other service's tables: "no service
-- reads another's data" is enforced by PostgreSQL, not only by convention. The projectors
-- (es_projections, es_shop_views) and the saga coordinator (es_sagas) own their schemas the
-- same way. The query service logs in as es_query: it may read those three schemas, and write
-- nothing.
-- Every consumer grants its `positions` table (where it is in the log) to all roles, as Kafka
-- shows a consumer group's offsets to all (lib/batch.c): esctl lag and /metrics read them.
-- Operators (esctl rebuild, esctl lag, the tests) log in as the superuser.
--
-- On the dev stack the cluster trusts local connections (scripts/pg.sh): the roles keep each
-- program to its own data, but any local user may log in as any of them. Passwords, and
-- which program knows which, are the deployment's (compose/docker-compose.yml).
\set ON_ERROR_STOP on
SET client_min_messages = warning;

DO $roles$
DECLARE
    -- each program's schema; its role is es_ + the schema's name
    schemas text[] := ARRAY['accounts', 'transfers', 'users', 'catalog', 'orders', 'payments',
                            'projections', 'shop_views', 'sagas'];
    -- the schemas the query service reads
    read_models text[] := ARRAY['projections', 'shop_views', 'sagas'];
    reader text := 'es_query';
    sch text;
    r text;
    rel record;
BEGIN
    FOREACH r IN ARRAY ARRAY(SELECT 'es_' || x FROM unnest(schemas) x) || ARRAY[reader] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I LOGIN', r);
        END IF;
        IF NOT has_database_privilege(r, current_database(), 'CONNECT') THEN
            EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), r);
        END IF;
    END LOOP;

    FOREACH sch IN ARRAY schemas LOOP
        r := 'es_' || sch;
        -- a program creates its schema at start (and esctl rebuild, acting as the
        -- projector's role, a new one to swap in)
        IF NOT has_database_privilege(r, current_database(), 'CREATE') THEN
            EXECUTE format('GRANT CREATE ON DATABASE %I TO %I', current_database(), r);
        END IF;
        -- a schema made before the roles, by the superuser, and what an interrupted rebuild
        -- left of one (<schema>_rebuild, <schema>_old: the next rebuild drops them): handed
        -- over with their tables (indexes and sequences follow them; the program grants its
        -- positions to all when it starts)
        FOR rel IN
            SELECT nspname FROM pg_namespace
            WHERE nspname IN (sch, sch || '_rebuild', sch || '_old') AND nspowner <> r::regrole
        LOOP
            EXECUTE format('ALTER SCHEMA %I OWNER TO %I', rel.nspname, r);
        END LOOP;
        FOR rel IN
            SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname IN (sch, sch || '_rebuild', sch || '_old')
            AND c.relkind IN ('r', 'p', 'v', 'm') AND c.relowner <> r::regrole
        LOOP
            EXECUTE format('ALTER TABLE %I.%I OWNER TO %I', rel.nspname, rel.relname, r);
        END LOOP;
    END LOOP;

    FOREACH sch IN ARRAY read_models LOOP
        r := 'es_' || sch;
        -- what the role creates from now on (a rebuild's new schema too) ...
        FOR rel IN
            SELECT * FROM (VALUES ('n', 'USAGE ON SCHEMAS'), ('r', 'SELECT ON TABLES')) AS d(kind, what)
        LOOP
            IF NOT EXISTS (SELECT FROM pg_default_acl
                           WHERE defaclrole = r::regrole AND defaclnamespace = 0
                           AND defaclobjtype = rel.kind::"char") THEN
                EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I GRANT %s TO %I',
                               r, rel.what, reader);
            END IF;
        END LOOP;
        -- ... and what it has already
        IF EXISTS (SELECT FROM pg_namespace WHERE nspname = sch)
           AND NOT has_schema_privilege(reader, sch, 'USAGE') THEN
            EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', sch, reader);
        END IF;
        FOR rel IN
            SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = sch AND c.relkind IN ('r', 'p', 'v', 'm')
            AND NOT has_table_privilege(reader, c.oid, 'SELECT')
        LOOP
            EXECUTE format('GRANT SELECT ON %I.%I TO %I', sch, rel.relname, reader);
        END LOOP;
    END LOOP;
END
$roles$;
