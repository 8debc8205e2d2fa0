#!/bin/sh
# Creates (or upgrades) Temporal's two PostgreSQL databases, and creates Makegood's own (`makegood`:
# the worker and the API create their tables in it on first use): run by the temporal-schema job
# of docker-compose.yml, in the temporalio/admin-tools image, before the server starts. Safe to
# run again: an existing database is kept, and update-schema applies only what is missing.
set -eu
: "${POSTGRES_SEEDS:?the database host}"
: "${POSTGRES_USER:?the database user}"
: "${SQL_PASSWORD:?the database password}"
PORT=${DB_PORT:-5432}
SCHEMA=/etc/temporal/schema/postgresql/v12

tries=0
until nc -z -w 5 "$POSTGRES_SEEDS" "$PORT"; do
  tries=$((tries + 1))
  [ "$tries" -lt 30 ] || { echo "PostgreSQL at $POSTGRES_SEEDS:$PORT never answered"; exit 1; }
  sleep 2
done

sql() { temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -u "$POSTGRES_USER" -p "$PORT" --db "$name" "$@"; }

# A database that exists is kept; any other failure (a wrong password, say) stops the job.
create() {
  if out=$(sql create 2>&1); then
    echo "database $name created"
  elif echo "$out" | grep -qi "already exists"; then
    echo "database $name exists"
  else
    echo "$out"
    echo "cannot create database $name"
    exit 1
  fi
}

for db in temporal:temporal temporal_visibility:visibility; do
  name=${db%%:*}
  dir=${db##*:}
  create
  sql setup-schema -v 0.0
  sql update-schema -d "$SCHEMA/$dir/versioned"
done
# Makegood's database: created empty; the worker and the API create their tables in it.
name=makegood
create
echo "Temporal's schema is ready, and the makegood database exists"
