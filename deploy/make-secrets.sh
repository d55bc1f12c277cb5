#!/bin/sh
# Make the secrets docker-compose.yml reads, once, into ./secrets beside it (never commit it;
# .gitignore keeps it out). Random values from the kernel. The folder is the owner's only;
# the files are readable (0644) because compose mounts them as they are into containers that
# run as other users (the API's uid 10001).
#
# Keep a copy of secrets/shanakht_master_key apart from every backup: without it, the keys in
# the data volume and in `shanakht backup` do not open.
set -eu
cd "$(dirname "$0")/.."
mkdir -p secrets
chmod 700 secrets
random() { head -c 32 /dev/urandom | base64 | tr -d '\n/+=' ; }
put() {
  if [ -e "secrets/$1" ]; then echo "secrets/$1 exists: kept"; return; fi
  printf '%s' "$2" > "secrets/$1"
  chmod 644 "secrets/$1"
  echo "secrets/$1 made"
}
# PostgreSQL: the superuser `postgres` is the DBA's (and postgres-init's, which makes the
# other two); `shanakht` owns the schema and migrates it (the `migrate` service only), with no
# superuser rights; `shanakht_app` is what the API replicas connect as, with DML only and no
# way to change the audit log (deploy/postgres/init.sh makes both, migration 0011 grants).
put postgres_password "$(random)"
put postgres_owner_password "$(random)"
put postgres_app_password "$(random)"
# Secrets made when the owner was the superuser gave `migrate` the superuser's password.
if [ -e secrets/shanakht_database_migration_url ] && grep -qF "$(cat secrets/postgres_password)@" secrets/shanakht_database_migration_url; then
  rm secrets/shanakht_database_migration_url
  echo "secrets/shanakht_database_migration_url held the superuser's password: replaced by the owner's"
fi
put shanakht_database_migration_url "postgresql+psycopg://shanakht:$(cat secrets/postgres_owner_password)@postgres:5432/shanakht"
# Secrets made before the two roles gave the API the owner's URL: replace that one.
if [ -e secrets/shanakht_database_url ] && grep -q '^postgresql+psycopg://shanakht:' secrets/shanakht_database_url; then
  rm secrets/shanakht_database_url
  echo "secrets/shanakht_database_url named the schema's owner: replaced by shanakht_app's"
fi
put shanakht_database_url "postgresql+psycopg://shanakht_app:$(cat secrets/postgres_app_password)@postgres:5432/shanakht"
put minio_root_password "$(random)"
put shanakht_s3_secret_key "$(random)"
put shanakht_master_key "$(head -c 32 /dev/urandom | base64 | tr -d '\n')"
