#!/bin/bash
# Runs once, when the postgres container initialises an empty data volume: one database per
# service (database per service, as on the local stack). The list is also what the deploy tests
# check against the services that have a PostgreSQL store.
set -euo pipefail
for db in auth users catalog inventory orders payments shipping notifications; do
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -c "CREATE DATABASE \"$db\" OWNER \"$POSTGRES_USER\""
done
