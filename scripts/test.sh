#!/usr/bin/env bash
# Run every check ARX has, exactly as CI does (.ci/run calls this and nothing else):
#   policies  opa fmt --fail, opa check --strict (+ input schema), opa test   (scripts/check-policies.sh)
#   python    ruff check, ruff format --check, mypy --strict
#   compose   `docker compose config` (or docker-compose) accepts compose.yaml
#   pytest    unit, integration (real OPA sidecar + real PostgreSQL) and end-to-end tests
# Set-up (virtualenv, pinned opa, PostgreSQL binaries, xmlsec1, pinned hydra) is done first
# by scripts/bootstrap.sh --for-tests.
# Extra arguments go to pytest, e.g. scripts/test.sh -k execute -x
set -euo pipefail
repo="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)"
cd -- "$repo"

bash scripts/bootstrap.sh --for-tests
OPA="$(cat .arx/opa-path)"
export OPA
started=$SECONDS

echo "== policies"
bash scripts/check-policies.sh

echo "== python lint and types"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy

echo "== compose.yaml"
bash scripts/check-compose.sh

echo "== pytest"
.venv/bin/python -m pytest "$@"
echo "all checks passed in $((SECONDS - started)) s"
