#!/bin/sh
# Run by docker-compose.yml's postgres-init before the migration, on every `up`, as the cluster
# superuser (the DBA's role, `postgres`; no other service connects as it). It makes the two
# roles Shanakht uses, each with LOGIN and a password from its own secret, and nothing else (no
# superuser, CREATEDB, CREATEROLE, replication, BYPASSRLS or membership):
#
# - `shanakht`, the schema's owner: it owns the database and its `public` schema, so it can
#   create, alter and drop its own tables (the `migrate` service, `shanakht db upgrade`), and
#   nothing in any other database or in the cluster; password in postgres_owner_password;
# - `shanakht_app`, the API's: it owns nothing; the owner grants it DML on the tables and only
#   SELECT and INSERT on the audit log (api/migrations 0011); password in
#   postgres_app_password.
#
# Safe to run again: an existing role keeps its grants and takes its secret's password (a
# rotation), and a role left with more than that is put back to just that. A cluster whose
# superuser is itself the owner (made by an older docker-compose.yml, POSTGRES_USER=shanakht)
# is refused: docs/deployment.md says how to move it to a superuser of its own.
#
# Outside compose (and in the tests): PGHOST, PGPORT, PGUSER, PGDATABASE and PGPASSWORD as
# psql reads them, SHANAKHT_SECRETS for the secrets folder, SHANAKHT_OWNER_ROLE and
# SHANAKHT_APP_ROLE for the names.
set -eu
SECRETS=${SHANAKHT_SECRETS:-/run/secrets}
OWNER_ROLE=${SHANAKHT_OWNER_ROLE:-shanakht}
APP_ROLE=${SHANAKHT_APP_ROLE:-shanakht_app}
export PGHOST="${PGHOST:-postgres}" PGUSER="${PGUSER:-postgres}" PGDATABASE="${PGDATABASE:-shanakht}"
if [ -z "${PGPASSWORD:-}" ] && [ -r "$SECRETS/postgres_password" ]; then
  PGPASSWORD=$(cat "$SECRETS/postgres_password")
  export PGPASSWORD
fi
for secret in postgres_owner_password postgres_app_password; do
  [ -s "$SECRETS/$secret" ] || { echo "no $SECRETS/$secret" >&2; exit 1; }
done
# The passwords go from the files to psql by a backquote in \set, never on a command line.
psql -X -q -v ON_ERROR_STOP=1 -v owner_role="$OWNER_ROLE" -v app_role="$APP_ROLE" \
  -v owner_password_file="$SECRETS/postgres_owner_password" \
  -v app_password_file="$SECRETS/postgres_app_password" <<'SQL'
SELECT current_user = :'owner_role' AS owner_is_superuser \gset
\if :owner_is_superuser
DO $$ BEGIN RAISE EXCEPTION 'the owner role is the superuser this script connects as: '
  'give the cluster a superuser of its own first (docs/deployment.md)'; END $$;
\endif
\set owner_password `cat :'owner_password_file'`
\set app_password `cat :'app_password_file'`
SELECT format('CREATE ROLE %I', r) FROM unnest(ARRAY[:'owner_role', :'app_role']) AS r
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) \gexec
ALTER ROLE :"owner_role" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION
  NOBYPASSRLS INHERIT PASSWORD :'owner_password';
ALTER ROLE :"app_role" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION
  NOBYPASSRLS INHERIT PASSWORD :'app_password';
SELECT format('REVOKE %I FROM %I', r.rolname, m.rolname)
  FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles m ON m.oid = a.member
  WHERE m.rolname IN (:'owner_role', :'app_role') \gexec
SELECT format('ALTER DATABASE %I OWNER TO %I', current_database(), :'owner_role') \gexec
ALTER SCHEMA public OWNER TO :"owner_role";
SQL
echo "PostgreSQL roles $OWNER_ROLE (owner) and $APP_ROLE ready"
