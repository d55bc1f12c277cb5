#!/bin/sh
# Run by docker-compose.yml's postgres-init before the migration, on every `up`: the API's own
# PostgreSQL role, `shanakht_app`, with LOGIN and the password in the postgres_app_password
# secret, and nothing else (no superuser, CREATEDB, CREATEROLE, replication, membership or
# ownership). The migration role (`shanakht`, which owns the schema) then grants it DML on
# the tables and only SELECT and INSERT on the audit log (api/migrations 0011). Safe to run
# again: an existing role keeps its grants and takes the secret's password (a rotation), and
# a role left with more than LOGIN is put back to just that.
#
# Outside compose (and in the tests): PGHOST, PGPORT, PGUSER, PGDATABASE and PGPASSWORD as
# psql reads them, SHANAKHT_SECRETS for the secrets folder, SHANAKHT_APP_ROLE for the name.
set -eu
SECRETS=${SHANAKHT_SECRETS:-/run/secrets}
APP_ROLE=${SHANAKHT_APP_ROLE:-shanakht_app}
export PGHOST="${PGHOST:-postgres}" PGUSER="${PGUSER:-shanakht}" PGDATABASE="${PGDATABASE:-shanakht}"
if [ -z "${PGPASSWORD:-}" ] && [ -r "$SECRETS/postgres_password" ]; then
  PGPASSWORD=$(cat "$SECRETS/postgres_password")
  export PGPASSWORD
fi
[ -s "$SECRETS/postgres_app_password" ] || { echo "no $SECRETS/postgres_app_password" >&2; exit 1; }
# The password goes from the file to psql by a backquote in \set, never on a command line.
psql -X -q -v ON_ERROR_STOP=1 -v app_role="$APP_ROLE" \
  -v password_file="$SECRETS/postgres_app_password" <<'SQL'
\set app_password `cat :'password_file'`
SELECT format('CREATE ROLE %I', :'app_role')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'app_role') \gexec
ALTER ROLE :"app_role" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION
  NOBYPASSRLS INHERIT PASSWORD :'app_password';
SELECT format('REVOKE %I FROM %I', r.rolname, :'app_role')
  FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid
  WHERE m.member = (SELECT oid FROM pg_roles WHERE rolname = :'app_role') \gexec
SQL
echo "PostgreSQL role $APP_ROLE ready"
