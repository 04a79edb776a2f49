#!/usr/bin/env bash
# First start of the primary (/docker-entrypoint-initdb.d): the role a read replica streams with, and the pg_hba
# line that lets it connect for replication. Skipped when POSTGRES_REPLICATION_PASSWORD is unset (no replica).
set -euo pipefail
if [ -z "${POSTGRES_REPLICATION_PASSWORD:-}" ]; then
    exit 0
fi
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v password="$POSTGRES_REPLICATION_PASSWORD" \
    -c "CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD :'password'"
echo "host replication replicator all scram-sha-256" >> "$PGDATA/pg_hba.conf"
