#!/bin/sh
# The official postgres image's start-up, reduced to what the chart uses: on an empty PGDATA, initdb with
# POSTGRES_USER as the superuser (password POSTGRES_PASSWORD, scram-sha-256 for TCP, trust on the local socket),
# listen on every address, create POSTGRES_DB, run /docker-entrypoint-initdb.d/*.sql and *.sh; then exec the server.
# Any other command (psql, sh, ...), or postgres --version / --help / -C, runs as given.
set -eu
if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
  set -- postgres "$@"
fi
if [ "$1" != postgres ]; then
  exec "$@"
fi
for argument in "$@"; do  # asking the server about itself (--version, -C setting, ...) needs no database
  case "$argument" in -'?'|--help|--describe-config|-C|-V|--version) exec "$@" ;; esac
done

: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is not set: the database would be open to anyone who reaches it}"
POSTGRES_USER=${POSTGRES_USER:-postgres}
POSTGRES_DB=${POSTGRES_DB:-$POSTGRES_USER}
export PGDATA=${PGDATA:-/var/lib/postgresql/data}
socket_dir=/var/run/postgresql

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  mkdir -p "$PGDATA"
  chmod 700 "$PGDATA"
  password_file=$(mktemp)
  trap 'rm -f "$password_file"' EXIT
  printf '%s\n' "$POSTGRES_PASSWORD" > "$password_file"
  initdb --username="$POSTGRES_USER" --pwfile="$password_file" --auth-local=trust --auth-host=scram-sha-256 \
    --encoding=UTF8 --no-locale >/dev/null
  rm -f "$password_file"
  printf 'host all all all scram-sha-256\n' >> "$PGDATA/pg_hba.conf"
  printf "listen_addresses = '*'\nunix_socket_directories = '%s'\n" "$socket_dir" >> "$PGDATA/postgresql.conf"

  # A private server on the socket only while the database is created and the init scripts run.
  pg_ctl --pgdata="$PGDATA" --wait --silent -o "-c listen_addresses='' -p 5432" start
  if [ "$POSTGRES_DB" != postgres ]; then
    printf 'CREATE DATABASE :"db";\n' |
      psql --quiet -v ON_ERROR_STOP=1 -v db="$POSTGRES_DB" -h "$socket_dir" -p 5432 -U "$POSTGRES_USER" -d postgres
  fi
  for script in /docker-entrypoint-initdb.d/*; do
    case "$script" in
      *.sql) psql --quiet -v ON_ERROR_STOP=1 -h "$socket_dir" -p 5432 -U "$POSTGRES_USER" -d "$POSTGRES_DB" -f "$script" ;;
      *.sh) . "$script" ;;
    esac
  done
  pg_ctl --pgdata="$PGDATA" --wait --silent -m fast stop
  echo "PostgreSQL init process complete; ready for start up."
fi

exec "$@"
