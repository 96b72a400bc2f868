#!/usr/bin/env bash
# Start the whole ARX system locally and run the demo agent (see README).
# Set-up (virtualenv, pinned opa, PostgreSQL) is done first by scripts/bootstrap.sh.
# Options go to `arx demo`: --port N (default 8080), --no-wait (the demo approves the
# escalation itself instead of waiting for you on the review page, then stops).
set -euo pipefail
repo="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)"
cd -- "$repo"
bash scripts/bootstrap.sh
exec .venv/bin/arx demo "$@"
