#!/usr/bin/env bash
# Checks the backend seam's promise: a server built with one backend feature
# (`--no-default-features --features backend-memory`) has no sqlx, fjall, reqwest or scylla in
# its dependency tree. With `--check` it also type-checks that server, and with `--run` it builds
# it and checks that `--backend postgres` fails naming the cargo feature that adds the backend.
# CI runs only the tree check: the slim feature set shares few dependency builds with the full
# one (tokio, tower, tonic, serde… get other features), so even `--check` rebuilds most of the
# tree, minutes on 2 cores; run `--check` after touching the server's feature gates.
set -euo pipefail
cd "$(dirname "$0")/.."

features=(--no-default-features --features backend-memory)

drivers="$(cargo tree -p remote-storage "${features[@]}" -e normal,build --prefix none \
    | grep -E '^(sqlx|fjall|reqwest|scylla)[a-z-]* v' || true)"
if [ -n "$drivers" ]; then
    echo "slim build: drivers of backends it does not contain are in its tree:" >&2
    echo "$drivers" >&2
    exit 1
fi
echo "slim build: no sqlx, no fjall, no reqwest, no scylla in the dependency tree"

if [ "${1:-}" = "--check" ]; then
    cargo check -p remote-storage "${features[@]}"
fi

if [ "${1:-}" = "--run" ]; then
    cargo build -p remote-storage "${features[@]}"
    set +e
    output="$(target/debug/jaeger-remote-storage --backend postgres \
        --grpc-addr 127.0.0.1:0 --admin-addr 127.0.0.1:0 2>&1)"
    status=$?
    set -e
    # The next default-feature build puts the full binary back in place.
    if [ "$status" -eq 0 ] || ! grep -q -- "--features backend-postgres" <<<"$output"; then
        echo "slim build: --backend postgres should fail naming the backend-postgres feature;" \
            "exit $status, output:" >&2
        echo "$output" >&2
        exit 1
    fi
    echo "slim build: --backend postgres refused, naming the backend-postgres feature"
fi
