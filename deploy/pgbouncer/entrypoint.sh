#!/bin/sh
# The application role is the only user PgBouncer admits; it authenticates to PostgreSQL with the same password
# (SCRAM), so the password is written to a file only this container reads, never into the image.
set -eu
umask 077
printf '"%s" "%s"\n' "${POSTGRES_APP_USER:-trialsite_app}" "${POSTGRES_APP_PASSWORD:?set POSTGRES_APP_PASSWORD}" \
    > /tmp/userlist.txt
exec pgbouncer /etc/pgbouncer/pgbouncer.ini
