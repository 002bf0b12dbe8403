#!/usr/bin/env bash
# The scale curve: runs scripts/bench.sh for each backend at several data sizes and renders how
# ingest and every query's p99 change as the stored data grows.
#
#   scripts/bench-scale.sh memory|lsm|postgres ...
#
# For each size in BENCH_SCALE_SPANS (default "1000000 3000000 10000000") and each backend
# named, runs `scripts/bench.sh <backend>` with BENCH_SPANS set to the size and its result in
# bench/results/scale/<size>/<backend>.json (BENCH_SCALE_OUT to write elsewhere). Then
# `bench-chart --scale` prints one table per backend (a column per size and the largest size's
# figure over the smallest's; a row for ingest, size per span and each query's p99; FindTraces
# growing beyond 2x is marked ✗) and draws
# bench/results/scale/scale.svg.
#
# Every other BENCH_* variable passes through to bench.sh. Defaults differ for these long runs:
# BENCH_RUNS=1 (one ingest per size) and BENCH_VERIFY=0 (reading 10M spans back would double
# the run). A 10M-span run takes roughly 3-10 minutes per backend on a 2-vCPU machine, plus the
# queries.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SIZES="${BENCH_SCALE_SPANS:-1000000 3000000 10000000}"
OUT="${BENCH_SCALE_OUT:-$ROOT/bench/results/scale}"

if [[ $# -eq 0 ]]; then
    echo "usage: scripts/bench-scale.sh memory|lsm|postgres ..." >&2
    exit 2
fi
for backend in "$@"; do
    case "$backend" in
        memory | lsm | postgres | elasticsearch) ;;
        *)
            echo "bench-scale: unknown backend $backend (memory, lsm, postgres, elasticsearch)" >&2
            exit 2
            ;;
    esac
done

for size in $SIZES; do
    for backend in "$@"; do
        echo "bench-scale: $backend at $size spans" >&2
        BENCH_SPANS="$size" BENCH_RUNS="${BENCH_RUNS:-1}" BENCH_VERIFY="${BENCH_VERIFY:-0}" \
            BENCH_OUT="$OUT/$size" "$ROOT/scripts/bench.sh" "$backend"
        # bench.sh also draws the size's own bar chart; the scale chart below replaces it.
        rm -f "$OUT/$size/chart.svg"
    done
done

shopt -s nullglob
results=("$OUT"/*/*.json)
"$ROOT/target/release/bench-chart" --scale --out "$OUT/scale.svg" "${results[@]}"
