#!/usr/bin/env bash
# Starts (or reuses) a private in-memory OpenSearch (osmem-server) for the backend-elasticsearch
# tests and prints the environment to use it:
#
#   eval "$(scripts/opensearch-test-env.sh)"       # start if needed, export CONFORMANCE_OPENSEARCH_URL
#   eval "$(scripts/opensearch-test-env.sh start)" # the same
#   scripts/opensearch-test-env.sh stop            # stop the private server
#
# If CONFORMANCE_OPENSEARCH_URL is already set and reachable, nothing is started. Otherwise
# osmem-server (an in-memory, OpenSearch-compatible test server shipped as a static binary in a
# PyPI wheel) is installed into a private virtualenv under target/osmem-venv when missing and
# started in the background, detached from this script, on 127.0.0.1:${OPENSEARCH_TEST_PORT:-59200};
# its pid goes to target/osmem/osmem.pid and its output to target/osmem/osmem.log. Data lives in
# memory only and is gone when it stops. Set OSMEM_SERVER_BIN to use another osmem-server binary.
# Only the export line goes to stdout; progress goes to stderr. Idempotent.
set -euo pipefail

OSMEM_PACKAGE="osmem-server==0.1.6" # reports OpenSearch API 3.8.0

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${OSMEM_VENV:-$ROOT/target/osmem-venv}"
STATE_DIR="${OPENSEARCH_TEST_DIR:-$ROOT/target/osmem}"
PID_FILE="$STATE_DIR/osmem.pid"
LOG_FILE="$STATE_DIR/osmem.log"
PORT="${OPENSEARCH_TEST_PORT:-59200}"
READY_TIMEOUT_SECONDS=30

log() { echo "opensearch-test-env: $*" >&2; }
die() {
    log "$*"
    exit 1
}

case "${1:-start}" in
    start | stop) ;;
    *)
        echo "usage: $0 [start|stop]" >&2
        exit 2
        ;;
esac

command -v curl >/dev/null 2>&1 || die "curl is required"

# Answers when `GET /` on the URL succeeds (prints the body).
root_document() { curl -fsS --max-time 3 "$1/" 2>/dev/null; }
reachable() { root_document "$1" >/dev/null; }
is_osmem() { root_document "$1" | grep -q '"cluster_name":"osmem"'; }

# The pid recorded in the pid file when that process is alive and is osmem-server.
recorded_pid() {
    local pid
    [[ -f "$PID_FILE" ]] || return 1
    pid="$(tr -dc '0-9' <"$PID_FILE")"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
    if [[ -r "/proc/$pid/cmdline" ]]; then
        tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'osmem-server' || return 1
    fi
    echo "$pid"
}

# The URL the recorded server announced on its ready line ({"url":"http://…","pid":…}).
recorded_url() {
    [[ -f "$LOG_FILE" ]] || return 1
    sed -n 's/^{"url":"\([^"]*\)".*/\1/p' "$LOG_FILE" | tail -n 1 | grep .
}

if [[ "${1:-start}" == "stop" ]]; then
    if PID="$(recorded_pid)"; then
        kill -TERM "$PID" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$PID" 2>/dev/null; then
            log "osmem-server (pid $PID) ignored SIGTERM; killing it"
            kill -KILL "$PID" 2>/dev/null || true
        fi
    fi
    rm -f "$PID_FILE"
    log "stopped"
    exit 0
fi

if [[ -n "${CONFORMANCE_OPENSEARCH_URL:-}" ]] && reachable "$CONFORMANCE_OPENSEARCH_URL"; then
    log "using the already configured OpenSearch"
    echo "export CONFORMANCE_OPENSEARCH_URL='$CONFORMANCE_OPENSEARCH_URL'"
    exit 0
fi

mkdir -p "$STATE_DIR"

# Our server is already running: reuse it, wherever it listens.
if PID="$(recorded_pid)"; then
    if URL="$(recorded_url)" && reachable "$URL"; then
        log "osmem-server already running (pid $PID)"
        echo "export CONFORMANCE_OPENSEARCH_URL='$URL'"
        exit 0
    fi
    die "osmem-server (pid $PID) is running but does not answer (log: $LOG_FILE); run $0 stop"
fi
rm -f "$PID_FILE"

URL="http://127.0.0.1:$PORT"
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    if is_osmem "$URL"; then
        log "an osmem-server not started by this script already listens on 127.0.0.1:$PORT; using it"
        echo "export CONFORMANCE_OPENSEARCH_URL='$URL'"
        exit 0
    fi
    die "port 127.0.0.1:$PORT is in use by something that is not a reachable osmem-server; free it or set OPENSEARCH_TEST_PORT"
fi

# The bundled binary (or OSMEM_SERVER_BIN), installing the pinned wheel when missing or different.
osmem_binary() {
    "$VENV/bin/python" - "${OSMEM_PACKAGE#*==}" <<'EOF' 2>/dev/null
import sys, osmem_server
if osmem_server.__version__ != sys.argv[1]:
    sys.exit(1)
print(osmem_server.resolve_binary())
EOF
}
if ! BIN="$(osmem_binary)"; then
    if [[ ! -x "$VENV/bin/pip" ]]; then
        log "creating a virtualenv in $VENV"
        rm -rf "$VENV"
        python3 -m venv "$VENV" >&2 || die "python3 -m venv failed (on Debian/Ubuntu: apt-get install python3-venv)"
    fi
    log "installing $OSMEM_PACKAGE"
    "$VENV/bin/pip" install --disable-pip-version-check --quiet "$OSMEM_PACKAGE" >&2
    BIN="$(osmem_binary)" || die "$OSMEM_PACKAGE installed, but its osmem-server binary cannot be found"
fi
[[ -x "$BIN" ]] || die "osmem-server binary $BIN is not executable"

# Detached: its own session, stdin from /dev/null with -no-stdin-watch (so it does not exit when
# stdin closes), no -parent-pid, so it outlives this script until `stop`.
log "starting osmem-server on 127.0.0.1:$PORT"
setsid "$BIN" -addr "127.0.0.1:$PORT" -no-ja -no-stdin-watch </dev/null >"$LOG_FILE" 2>&1 &
PID=$!
echo "$PID" >"$PID_FILE"

deadline=$((SECONDS + READY_TIMEOUT_SECONDS))
until reachable "$URL"; do
    if ! kill -0 "$PID" 2>/dev/null; then
        rm -f "$PID_FILE"
        tail -n 20 "$LOG_FILE" >&2 || true
        die "osmem-server exited during startup (log: $LOG_FILE)"
    fi
    if ((SECONDS >= deadline)); then
        tail -n 20 "$LOG_FILE" >&2 || true
        die "osmem-server did not answer on $URL within $READY_TIMEOUT_SECONDS s (pid $PID, log: $LOG_FILE)"
    fi
    sleep 0.2
done
# setsid may have forked: record the pid the server itself announced.
ANNOUNCED="$(sed -n 's/^{"url":"[^"]*","pid":\([0-9]*\).*/\1/p' "$LOG_FILE" | tail -n 1)"
if [[ -n "$ANNOUNCED" && "$ANNOUNCED" != "$PID" ]]; then
    echo "$ANNOUNCED" >"$PID_FILE"
fi
log "ready (pid $(cat "$PID_FILE"))"
echo "export CONFORMANCE_OPENSEARCH_URL='$URL'"
