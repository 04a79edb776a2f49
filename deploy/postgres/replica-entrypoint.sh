#!/usr/bin/env bash
# A read replica of the primary (docs/operations.md, "Past one machine"). On its first start it copies the primary
# with pg_basebackup, which writes the standby settings (-R) and creates a replication slot (-C) so the primary keeps
# the WAL the replica has not received yet; on every start it runs as a hot standby streaming from the primary.
set -euo pipefail
: "${POSTGRES_REPLICATION_PASSWORD:?set POSTGRES_REPLICATION_PASSWORD in .env}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    mkdir -p "$PGDATA"
    chown postgres:postgres "$PGDATA"
    chmod 700 "$PGDATA"
    until gosu postgres pg_isready -h postgres -p 5432 -q; do sleep 1; done
    PGPASSWORD="$POSTGRES_REPLICATION_PASSWORD" gosu postgres pg_basebackup -h postgres -p 5432 -U replicator \
        -D "$PGDATA" -R -X stream -C -S trialsite_replica
fi
# hot_standby_feedback: a long export on the replica is not cancelled by the primary's vacuum of rows it still reads.
exec docker-entrypoint.sh postgres -c hot_standby=on -c hot_standby_feedback=on -c max_standby_streaming_delay=5min
