#!/usr/bin/env bash
# Validate compose.yaml with Docker's own parser. No Docker engine is needed:
# `config` only parses and interpolates. Uses `docker compose` when the plugin
# is there, else the standalone docker-compose (installed from Debian's
# packages when missing and we are root).
set -euo pipefail
cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."
# compose.yaml requires these at `up` time; any value will do for validation.
export ARX_KEK=validation-only ARX_BOOTSTRAP_TOKEN=validation-only ARX_OPA_TOKEN=validation-only

if docker compose version >/dev/null 2>&1; then
    docker compose -f compose.yaml config --quiet
    echo "compose.yaml: valid (docker compose)"
    exit 0
fi
if ! command -v docker-compose >/dev/null 2>&1; then
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "compose.yaml: installing docker-compose from Debian's packages to validate it"
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -qq docker-compose >/dev/null 2>&1 ||
            { apt-get update -qq >/dev/null && apt-get install -y -qq docker-compose >/dev/null; }
    else
        echo "compose.yaml: error: neither 'docker compose' nor 'docker-compose' is available" >&2
        exit 1
    fi
fi
docker-compose -f compose.yaml config --quiet
echo "compose.yaml: valid (docker-compose $(docker-compose version --short))"
