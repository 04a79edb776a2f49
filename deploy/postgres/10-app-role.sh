#!/usr/bin/env bash
# First start of the postgres container (/docker-entrypoint-initdb.d): create the application role with
# deploy/postgres/app-role.sql. POSTGRES_USER (the migration role) owns the database and every table.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v owner="$POSTGRES_USER" -v app="${POSTGRES_APP_USER:-trialsite_app}" -v app_password="$POSTGRES_APP_PASSWORD" \
    -f /trialsite/app-role.sql
