#!/usr/bin/env bash
# Starts (or reuses) a private PostgreSQL for the backend-postgres tests and prints the
# environment to use it:
#
#   eval "$(scripts/postgres-test-env.sh)"      # start if needed, export CONFORMANCE_POSTGRES_URL
#   eval "$(scripts/postgres-test-env.sh start)" # the same
#   scripts/postgres-test-env.sh stop           # stop the private cluster
#
# If CONFORMANCE_POSTGRES_URL (or DATABASE_URL) is already set and reachable, nothing is started.
# Otherwise a throw-away cluster is created with initdb under target/pg-test (owned by the
# `postgres` user, since initdb refuses root), listening on 127.0.0.1:${PG_TEST_PORT:-55432},
# with fsync off (test data only). Installs PostgreSQL with apt when no binaries are found.
# Only the export line goes to stdout; progress goes to stderr. Idempotent.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA_DIR="${PG_TEST_DIR:-$ROOT/target/pg-test}"
PORT="${PG_TEST_PORT:-55432}"
PORT_GIVEN="${PG_TEST_PORT:+yes}"
DB_NAME="${PG_TEST_DB:-jaeger_test}"
DB_USER="${PG_TEST_USER:-jaeger}"
DB_PASSWORD="${PG_TEST_PASSWORD:-jaeger}"

log() { echo "postgres-test-env: $*" >&2; }

find_bin_dir() {
    local dir
    for dir in /usr/lib/postgresql/*/bin; do
        if [[ -x "$dir/initdb" && -x "$dir/pg_ctl" ]]; then
            latest="$dir"
        fi
    done
    if [[ -n "${latest:-}" ]]; then
        echo "$latest"
        return 0
    fi
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(command -v pg_ctl)"
        return 0
    fi
    return 1
}

# Runs a command as the cluster owner (initdb and postgres refuse to run as root).
as_owner() {
    if [[ "$(id -u)" -eq 0 ]]; then
        if command -v runuser >/dev/null 2>&1; then
            runuser -u postgres -- "$@"
        else
            su postgres -s /bin/bash -c "$(printf '%q ' "$@")"
        fi
    else
        "$@"
    fi
}

reachable() {
    local url="$1"
    command -v psql >/dev/null 2>&1 || return 1
    PGCONNECT_TIMEOUT=3 psql "$url" -Atqc 'SELECT 1' >/dev/null 2>&1
}

case "${1:-start}" in
    start | stop) ;;
    *)
        echo "usage: $0 [start|stop]" >&2
        exit 2
        ;;
esac

if [[ "${1:-start}" == "stop" ]]; then
    if BIN="$(find_bin_dir)" && [[ -f "$DATA_DIR/PG_VERSION" ]]; then
        as_owner "$BIN/pg_ctl" -D "$DATA_DIR" -m fast -w stop >&2 || true
    fi
    log "stopped"
    exit 0
fi

for existing in "${CONFORMANCE_POSTGRES_URL:-}" "${DATABASE_URL:-}"; do
    if [[ -n "$existing" ]] && reachable "$existing"; then
        log "using the already configured PostgreSQL"
        echo "export CONFORMANCE_POSTGRES_URL='$existing'"
        exit 0
    fi
done

if ! BIN="$(find_bin_dir)"; then
    log "installing PostgreSQL with apt"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update >&2
    apt-get install -y postgresql >&2
    BIN="$(find_bin_dir)"
fi
if ! id postgres >/dev/null 2>&1 && [[ "$(id -u)" -eq 0 ]]; then
    useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
fi

if [[ ! -f "$DATA_DIR/PG_VERSION" ]]; then
    log "creating a cluster in $DATA_DIR"
    mkdir -p "$DATA_DIR"
    [[ "$(id -u)" -eq 0 ]] && chown postgres:postgres "$DATA_DIR"
    chmod 700 "$DATA_DIR"
    as_owner "$BIN/initdb" -D "$DATA_DIR" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >/dev/null 2>&1 \
        || as_owner "$BIN/initdb" -D "$DATA_DIR" -U postgres --auth=trust --encoding=UTF8 --no-locale >&2
fi

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if as_owner "$BIN/pg_ctl" -D "$DATA_DIR" status >/dev/null 2>&1; then
    # Our cluster is already running: its port is the fourth line of postmaster.pid.
    PORT="$(sed -n 4p "$DATA_DIR/postmaster.pid")"
else
    # Another program (or another checkout's cluster) may hold the port: take the next free one.
    if [[ -z "$PORT_GIVEN" ]]; then
        while port_in_use "$PORT"; do
            PORT=$((PORT + 1))
        done
    fi
    log "starting PostgreSQL on 127.0.0.1:$PORT"
    as_owner "$BIN/pg_ctl" -D "$DATA_DIR" -w -t 60 -l "$DATA_DIR/server.log" \
        -o "-h 127.0.0.1 -p $PORT -k /tmp -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
        start >&2
fi

URL="postgres://${DB_USER}:${DB_PASSWORD}@127.0.0.1:${PORT}/${DB_NAME}?sslmode=disable"
SUPERUSER_URL="postgres://postgres@127.0.0.1:${PORT}/postgres?sslmode=disable"
psql_super() { PGCONNECT_TIMEOUT=5 psql "$SUPERUSER_URL" -v ON_ERROR_STOP=1 -Atq "$@"; }
if [[ "$(psql_super -c "SELECT 1 FROM pg_roles WHERE rolname = '$DB_USER'")" != "1" ]]; then
    psql_super -c "CREATE ROLE $DB_USER LOGIN PASSWORD '$DB_PASSWORD'" >&2
fi
if [[ "$(psql_super -c "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" != "1" ]]; then
    psql_super -c "CREATE DATABASE $DB_NAME OWNER $DB_USER" >&2
fi
reachable "$URL" || { log "cannot connect to $URL"; exit 1; }
log "ready"
echo "export CONFORMANCE_POSTGRES_URL='$URL'"
