#!/bin/sh
# Run once by docker-compose.yml's minio-init: the locker's bucket, and a MinIO user for the
# API that may use that bucket only (the root credentials stay with the operator). Safe to
# run again.
set -eu
BUCKET=shanakht-locker
mc alias set local http://minio:9000 shanakht-admin "$(cat /run/secrets/minio_root_password)" >/dev/null
mc mb --ignore-existing "local/$BUCKET"
mc admin policy create local shanakht-locker /deploy/minio/policy.json
mc admin user add local shanakht-api "$(cat /run/secrets/shanakht_s3_secret_key)"
mc admin policy attach local shanakht-locker --user shanakht-api \
  || mc admin user info local shanakht-api | grep -q shanakht-locker
echo "bucket $BUCKET and user shanakht-api ready"
