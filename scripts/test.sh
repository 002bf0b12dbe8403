#!/usr/bin/env bash
# Runs every test of the workspace. Backends that need a running service have a
# scripts/<name>-test-env.sh (PostgreSQL: a private cluster; OpenSearch: osmem-server), which
# starts it on loopback and prints `export CONFORMANCE_<NAME>_URL=…`; this runs each one first,
# unless that variable already names your own service. With SKIP_<NAME>=1 (e.g.
# SKIP_POSTGRES=1) that backend's tests print one skip line instead.
set -euo pipefail
cd "$(dirname "$0")/.."

for env_script in scripts/*-test-env.sh; do
  name="$(basename "$env_script" -test-env.sh | tr '[:lower:]-' '[:upper:]_')"
  skip_var="SKIP_${name}"
  url_var="CONFORMANCE_${name}_URL"
  if [ "${!skip_var:-0}" != "1" ] && [ -z "${!url_var:-}" ]; then
    service_env="$("$env_script" start)"
    eval "$service_env"
  fi
done
exec cargo test --workspace "$@"
