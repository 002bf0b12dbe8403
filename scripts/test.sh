#!/usr/bin/env bash
# Runs every test of the workspace. PostgreSQL tests need a database: this starts a private
# cluster on loopback first (see postgres-test-env.sh; set CONFORMANCE_POSTGRES_URL to use your
# own). With SKIP_POSTGRES=1 they print one skip line instead.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${SKIP_POSTGRES:-0}" != "1" ] && [ -z "${CONFORMANCE_POSTGRES_URL:-}" ]; then
  postgres_env="$(scripts/postgres-test-env.sh)"
  eval "$postgres_env"
fi
exec cargo test --workspace "$@"
