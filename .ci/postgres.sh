#!/usr/bin/env bash
# Start a throw-away PostgreSQL server on a loopback port for the Optuna storage tests.
# Idempotent: exits at once when the server already answers. Installs Debian's `postgresql`
# package when no server binaries are found (needs root). Trust auth on 127.0.0.1 only.
#   ACBENCH_PG_PORT (55432)  ACBENCH_PG_DIR (/tmp/acbench-pg)
# Prints the URL to use: postgresql://postgres@127.0.0.1:$PORT/postgres
# `postgres.sh stop` stops the server this script started (.ci/run does, when it ends).
set -euo pipefail
PORT="${ACBENCH_PG_PORT:-55432}"
DIR="${ACBENCH_PG_DIR:-/tmp/acbench-pg}"
URL="postgresql://postgres@127.0.0.1:${PORT}/postgres"

bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

if [ "${1:-}" = stop ]; then
  BIN="$(bindir)"
  [ -n "$BIN" ] && [ -f "$DIR/data/postmaster.pid" ] || exit 0
  if [ "$(id -u)" = 0 ]; then AS=(runuser -u postgres --); else AS=(); fi
  "${AS[@]}" "$BIN/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null
  exit 0
fi

if command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p "$PORT"; then
  echo "$URL"; exit 0
fi
BIN="$(bindir)"
if [ -z "$BIN" ] || [ ! -x "$BIN/initdb" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "postgres.sh: PostgreSQL is not installed and this user cannot install it (not root)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  # no auto-started cluster on 5432: ours is the only one needed
  mkdir -p /etc/postgresql-common/createcluster.d
  echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/acbench.conf
  apt-get install -y -qq postgresql >/dev/null
  BIN="$(bindir)"
fi

# initdb and postgres refuse to run as root: run them as the `postgres` user when root
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql postgres
  AS=(runuser -u postgres --)
  mkdir -p "$DIR"; chown postgres "$DIR"; chmod 700 "$DIR"
else
  AS=()
  mkdir -p "$DIR"; chmod 700 "$DIR"
fi
if [ ! -f "$DIR/data/PG_VERSION" ]; then
  "${AS[@]}" "$BIN/initdb" -D "$DIR/data" -U postgres --auth=trust -E UTF8 >"$DIR/initdb.log" 2>&1 \
    || { cat "$DIR/initdb.log" >&2; exit 1; }
fi
"${AS[@]}" "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 \
  -o "-p $PORT -c listen_addresses=127.0.0.1 -k $DIR -c max_connections=200 -c fsync=off" start >/dev/null \
  || { tail -20 "$DIR/server.log" >&2; exit 1; }
"$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" -t 30
echo "$URL"
