#!/usr/bin/env bash
# Runs the benchmark suite against one backend (or all of them) and writes its JSON result:
#
#   scripts/bench.sh memory|lsm|postgres|elasticsearch|discard|all
#
# For each backend: builds the release binaries, then BENCH_RUNS times starts a fresh server on
# loopback (gRPC 127.0.0.1:47271, admin 127.0.0.1:47270) with an empty store and sends
# BENCH_SPANS tracegen-like spans spread over 24h with loadgen (--server-pid, --verify). After
# the last run it records the server's resident memory (VmRSS) and the bytes on disk (LSM: the
# data directory; PostgreSQL: pg_total_relation_size of the schema's tables with their indexes
# and TOAST, after VACUUM), then times every read query BENCH_QUERY_REPS times (p50/p99; a
# query stops early, after at least 5 repetitions, once it took BENCH_QUERY_BUDGET) over
# that data, including GetTraces of a 10,000-span trace and GetDependencies. The result goes
# to bench/results/<backend>.json; bench/results/chart.svg is re-rendered from every result
# present. `discard` stores nothing (decode-only baseline), so it has no queries.
#
# PostgreSQL comes from `scripts/postgres-test-env.sh` (a private cluster unless
# CONFORMANCE_POSTGRES_URL is set); each run uses a fresh schema, dropped afterwards. With the
# private cluster, PostgreSQL's own CPU during the load (the postmaster and its children) is
# measured apart from the server's (loadgen --database-pid).
#
# The ingest figure is the median of the runs: on this VM the first touch of memory the host
# has reclaimed costs ~2 s/GiB of kernel time (bench/PROFILES.md), so a run that follows a
# pause pays more; each run's load average and figures are kept in the JSON.
#
# BENCH_VERIFY=0 skips reading every trace back after ingest, and BENCH_SKIP_QUERIES names
# queries not to time (space-separated, as loadgen prints them, e.g. "GetDependencies"): for
# runs against a slow test engine (osmem-server), where either would take hours at 1M spans.
#
# Environment: BENCH_SPANS (1000000), BENCH_RUNS (3), BENCH_QUERY_REPS (100), BENCH_QUERY_BUDGET (20s),
# BENCH_GRPC_PORT (47271), BENCH_ADMIN_PORT (47270), BENCH_OUT (bench/results).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SPANS="${BENCH_SPANS:-1000000}"
RUNS="${BENCH_RUNS:-3}"
REPS="${BENCH_QUERY_REPS:-100}"
QUERY_BUDGET="${BENCH_QUERY_BUDGET:-20s}"
GRPC_PORT="${BENCH_GRPC_PORT:-47271}"
ADMIN_PORT="${BENCH_ADMIN_PORT:-47270}"
OUT="${BENCH_OUT:-$ROOT/bench/results}"
TIME_SPREAD=24h
LARGE_TRACE_SPANS=10000
SERVER="$ROOT/target/release/jaeger-remote-storage"
LOADGEN="$ROOT/target/release/loadgen"
CHART="$ROOT/target/release/bench-chart"

log() { echo "bench: $*" >&2; }

usage() {
    echo "usage: scripts/bench.sh memory|lsm|postgres|elasticsearch|discard|all" >&2
    exit 2
}

[[ $# -eq 1 ]] || usage
case "$1" in
    memory | lsm | postgres | elasticsearch | discard) BACKENDS=("$1") ;;
    all) BACKENDS=(discard memory lsm postgres) ;;
    *) usage ;;
esac

WORK="$(mktemp -d "${TMPDIR:-/tmp}/bench.XXXXXX")"
SERVER_PID=""
PG_URL=""
PG_SCHEMA=""
ES_URL=""

stop_server() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID"
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=""
}

drop_schema() {
    if [[ -n "$PG_SCHEMA" ]]; then
        psql "$PG_URL" -Atq -c "DROP SCHEMA IF EXISTS \"$PG_SCHEMA\" CASCADE" >/dev/null 2>&1 || true
    fi
    PG_SCHEMA=""
}

cleanup() {
    stop_server
    drop_schema
    rm -rf "$WORK"
}
trap cleanup EXIT

# Starts the server on $1 with an empty store; sets SERVER_PID.
start_server() {
    local backend="$1" run="$2"
    local args=(--backend "$backend" --grpc-addr "127.0.0.1:$GRPC_PORT"
        --admin-addr "127.0.0.1:$ADMIN_PORT" --log-level warn)
    case "$backend" in
        memory) args+=(--memory.max-traces "$((SPANS / 10 + 1000))") ;;
        lsm)
            rm -rf "$WORK/lsm"
            args+=(--lsm.data-dir "$WORK/lsm")
            ;;
        postgres)
            PG_SCHEMA="bench_$(date +%s)_${run}"
            args+=(--postgres.url "$PG_URL" --postgres.schema "$PG_SCHEMA")
            ;;
        elasticsearch)
            args+=(--es.server-urls "$ES_URL" --es.index-prefix "bench-$(date +%s)-${run}"
                --es.replicas 0)
            ;;
    esac
    "$SERVER" "${args[@]}" >"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 300); do
        if curl -fsS "http://127.0.0.1:$ADMIN_PORT/" >/dev/null 2>&1; then
            return 0
        fi
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            cat "$WORK/server.log" >&2
            log "the server exited during start-up"
            exit 1
        fi
        sleep 0.1
    done
    log "the server did not become ready"
    exit 1
}

rss_bytes() {
    awk '/^VmRSS:/ { print $2 * 1024 }' "/proc/$1/status"
}

loadavg() {
    cut -d' ' -f1 /proc/loadavg
}

# The postmaster of the private test cluster when it is the one PG_URL names (its port in
# postmaster.pid matches), so loadgen can count PostgreSQL's CPU apart from the server's; empty
# for a cluster that is not ours.
postgres_pid() {
    local pidfile="${PG_TEST_DIR:-$ROOT/target/pg-test}/postmaster.pid"
    [[ -f "$pidfile" ]] || return 0
    local port
    port="$(sed -n 4p "$pidfile")"
    [[ "$PG_URL" == *":$port/"* ]] && head -1 "$pidfile"
    return 0
}

postgres_bytes() {
    psql "$PG_URL" -Atq -v ON_ERROR_STOP=1 <<SQL
SELECT format('VACUUM ANALYZE %I.%I', n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = '$PG_SCHEMA' AND c.relkind = 'r' \gexec
SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = '$PG_SCHEMA' AND c.relkind IN ('r', 'm');
SQL
}

machine_json() {
    jq -n \
        --arg model "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" \
        --argjson cpus "$(nproc)" \
        --argjson mem "$(awk '/^MemTotal:/ { print $2 * 1024 }' /proc/meminfo)" \
        --arg kernel "$(uname -r)" \
        '{cpu_model: $model, cpus: $cpus, memory_bytes: $mem, kernel: $kernel}'
}

bench_backend() {
    local backend="$1"
    local dir="$WORK/$backend"
    mkdir -p "$dir"
    if [[ "$backend" == elasticsearch ]]; then
        # osmem-server unless CONFORMANCE_OPENSEARCH_URL names a real engine: with the test
        # double only the server's own CPU figure means anything.
        eval "$("$ROOT/scripts/opensearch-test-env.sh")"
        ES_URL="$CONFORMANCE_OPENSEARCH_URL"
    fi
    if [[ "$backend" == postgres ]]; then
        eval "$("$ROOT/scripts/postgres-test-env.sh")"
        PG_URL="$CONFORMANCE_POSTGRES_URL"
    fi
    local verify=(--verify)
    [[ "$backend" == discard || "${BENCH_VERIFY:-1}" == 0 ]] && verify=()
    local database=()
    if [[ "$backend" == postgres ]]; then
        local pid
        pid="$(postgres_pid)"
        [[ -n "$pid" ]] && database=(--database-pid "$pid")
    fi
    local skip=() name
    for name in ${BENCH_SKIP_QUERIES:-}; do
        skip+=(--skip-query "$name")
    done

    local rss_before=0 rss_after=0 disk_bytes=null disk_bytes_closed=null run
    for run in $(seq 1 "$RUNS"); do
        start_server "$backend" "$run"
        rss_before="$(rss_bytes "$SERVER_PID")"
        local load_before
        load_before="$(loadavg)"
        log "$backend: ingest run $run/$RUNS ($SPANS spans, load average $load_before)"
        "$LOADGEN" --endpoint "127.0.0.1:$GRPC_PORT" --spans "$SPANS" \
            --time-spread "$TIME_SPREAD" --server-pid "$SERVER_PID" "${database[@]}" "${verify[@]}" \
            --progress 0 --json "$dir/ingest-$run.json" >&2
        jq --arg load "$load_before" '. + {load_average_before: ($load | tonumber)}' \
            "$dir/ingest-$run.json" >"$dir/ingest-$run.tmp" && mv "$dir/ingest-$run.tmp" "$dir/ingest-$run.json"
        if [[ "$run" -lt "$RUNS" ]]; then
            stop_server
            drop_schema
        fi
    done

    rss_after="$(rss_bytes "$SERVER_PID")"
    case "$backend" in
        lsm) disk_bytes="$(du -sb "$WORK/lsm" | cut -f1)" ;;
        postgres) disk_bytes="$(postgres_bytes)" ;;
    esac

    if [[ "$backend" != discard ]]; then
        log "$backend: queries ($REPS repetitions each)"
        "$LOADGEN" --endpoint "127.0.0.1:$GRPC_PORT" --no-load --queries "$REPS" \
            --query-budget "$QUERY_BUDGET" "${skip[@]}" \
            --time-spread "$TIME_SPREAD" --large-trace-spans "$LARGE_TRACE_SPANS" \
            --json "$dir/queries.json" >&2
    else
        echo '{"queries": []}' >"$dir/queries.json"
    fi
    stop_server
    if [[ "$backend" == lsm ]]; then
        disk_bytes_closed="$(du -sb "$WORK/lsm" | cut -f1)"
    fi
    drop_schema

    mkdir -p "$OUT"
    jq -n \
        --arg backend "$backend" \
        --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
        --arg commit "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
        --argjson machine "$(machine_json)" \
        --argjson spans "$SPANS" \
        --argjson rss_before "$rss_before" \
        --argjson rss_after "$rss_after" \
        --argjson disk "$disk_bytes" \
        --argjson disk_closed "$disk_bytes_closed" \
        --slurpfile runs <(jq -s '.' "$dir"/ingest-*.json) \
        --slurpfile queries "$dir/queries.json" \
        '
        def median: sort | if length == 0 then null else .[(length - 1) / 2 | floor] end;
        ($runs[0] | map({
            spans_accepted: .load.spans_accepted,
            wall_seconds: .load.wall_seconds,
            spans_per_second: .load.spans_per_second,
            server_cpu_seconds: .load.server_cpu_seconds,
            spans_per_server_cpu_second: .load.spans_per_server_cpu_second,
            database_cpu_seconds: .load.database_cpu_seconds,
            spans_per_database_cpu_second: .load.spans_per_database_cpu_second,
            export_p99_ms: .load.latency.p99_ms,
            verified: (if .verify == null then null else .verify.ok end),
            load_average_before: .load_average_before
        })) as $ingest
        | {
            backend: $backend,
            date: $date,
            commit: $commit,
            machine: $machine,
            spans: $spans,
            time_spread: "24h",
            ingest: {
                runs: $ingest,
                median_spans_per_second: ($ingest | map(.spans_per_second) | median),
                median_spans_per_server_cpu_second:
                    ($ingest | map(.spans_per_server_cpu_second) | median),
                median_spans_per_database_cpu_second:
                    ($ingest | map(.spans_per_database_cpu_second) | map(select(. != null)) | median)
            },
            memory: {
                rss_before_load_bytes: $rss_before,
                rss_after_load_bytes: $rss_after,
                bytes_per_stored_span: (($rss_after - $rss_before) / $spans | floor)
            },
            disk: (if $disk == null then null else {
                bytes: $disk,
                bytes_per_span: ($disk / $spans | floor),
                bytes_after_close: $disk_closed
            } end),
            queries: ($queries[0].queries | map({
                name, reps, ok, errors, p50_ms, p99_ms, max_ms, traces, spans, items
            })),
            query_target: $queries[0].query_target
        }' >"$OUT/$backend.json"
    log "$backend: wrote $OUT/$backend.json"
}

log "building release binaries"
(cd "$ROOT" && cargo build --release -q -p remote-storage -p loadgen -p bench-chart)

for backend in "${BACKENDS[@]}"; do
    bench_backend "$backend"
done

shopt -s nullglob
results=()
for file in "$OUT"/*.json; do
    results+=("$file")
done
"$CHART" --out "$OUT/chart.svg" "${results[@]}"
"$CHART" --table "${results[@]}"
log "chart: $OUT/chart.svg"
