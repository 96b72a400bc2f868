#!/usr/bin/env bash
# Set up a development checkout of ARX. Idempotent; a re-run with nothing changed
# takes well under two seconds.
#
#   1. .venv with Python >= 3.11, the exact pins of requirements.lock, and arx (and
#      sdk/, once it has a pyproject.toml) installed editable. Skipped while the
#      stamp in .venv matches the sha256 of requirements.lock and the pyproject files.
#   2. The pinned opa binary (opa/install.sh); its path goes to .arx/opa-path.
#   3. Unless ARX_DATABASE_URL is set: PostgreSQL server binaries (initdb, pg_ctl,
#      postgres), installed with apt-get when missing and running as root.
#   4. xmlsec1 (SAML signatures, through pysaml2), with apt-get when missing.
#   5. With --for-tests: the pinned ory/hydra (hydra/install.sh), the real OpenID
#      provider the identity tests sign in against; built once into the user cache.
#   6. With --for-tests: Debian's chromium (the browser tests drive it headless through
#      Playwright), with apt-get when missing.
#
# Prints one line per step; on failure, the failing tool's output.
set -euo pipefail

for_tests=0
if [[ "${1:-}" == "--for-tests" ]]; then
    for_tests=1
fi
repo="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)"
cd -- "$repo"
venv="$repo/.venv"
stamp="$venv/.arx-bootstrap.sha256"
mkdir -p .arx
log="$repo/.arx/bootstrap.log"

step() { printf 'bootstrap: %s\n' "$*"; }
die() {
    printf 'bootstrap: error: %s\n' "$*" >&2
    exit 1
}
# Run a command with its output in $log; show the log only if it fails.
quietly() {
    if ! "$@" >"$log" 2>&1; then
        printf 'bootstrap: error: %s failed; its output:\n' "$*" >&2
        tail -n 40 "$log" >&2
        exit 1
    fi
}

# --- 1. Python environment ---------------------------------------------------------

python_ok() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; }

find_python() {
    local candidate
    for candidate in python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 && python_ok "$candidate"; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

inputs_digest() {
    # What decides the contents of .venv: the lock, our pyproject, the SDK's if any.
    local file
    for file in requirements.lock pyproject.toml sdk/pyproject.toml; do
        if [[ -f "$file" ]]; then
            printf '%s %s\n' "$file" "$(sha256sum <"$file" | cut -d' ' -f1)"
        else
            printf '%s absent\n' "$file"
        fi
    done | sha256sum | cut -d' ' -f1
}

if [[ -x "$venv/bin/python" ]] && ! python_ok "$venv/bin/python"; then
    die ".venv uses $("$venv/bin/python" --version 2>&1); ARX needs Python >= 3.11. Remove .venv and re-run."
fi
if [[ ! -x "$venv/bin/python" ]]; then
    python="$(find_python)" ||
        die "Python >= 3.11 not found (tried python3.11, python3). Install Python 3.11 and re-run."
    quietly "$python" -m venv "$venv"
fi

digest="$(inputs_digest)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$digest" ]]; then
    step "python: .venv up to date ($("$venv/bin/python" --version))"
else
    pip=("$venv/bin/python" -m pip --disable-pip-version-check --quiet)
    quietly "${pip[@]}" install --require-virtualenv -r requirements.lock
    editable=(-e .)
    if [[ -f sdk/pyproject.toml ]]; then
        editable+=(-e sdk)
    fi
    quietly "${pip[@]}" install --require-virtualenv --no-deps "${editable[@]}"
    printf '%s\n' "$digest" >"$stamp"
    step "python: installed requirements.lock and ${editable[*]} into .venv ($("$venv/bin/python" --version))"
fi

# --- 2. opa ----------------------------------------------------------------------------

# install.sh prints the path on stdout; its progress and errors go straight to stderr.
opa="$(bash opa/install.sh)" || die "no opa binary (see the message above)"
printf '%s\n' "$opa" >.arx/opa-path.tmp
mv .arx/opa-path.tmp .arx/opa-path
step "opa: $opa (v$(tr -d '[:space:]' <opa/VERSION))"

# --- 3. PostgreSQL server binaries -------------------------------------------------------

has_server() { [[ -x "$1/initdb" && -x "$1/pg_ctl" && -x "$1/postgres" ]]; }

find_pg_bindir() {
    local dir
    if command -v pg_config >/dev/null 2>&1; then
        dir="$(pg_config --bindir 2>/dev/null || true)"
        if [[ -n "$dir" ]] && has_server "$dir"; then
            printf '%s\n' "$dir"
            return 0
        fi
    fi
    # Debian layout, highest major version first.
    for dir in $(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null |
        sort -t/ -k5,5 -rn); do
        if has_server "$dir"; then
            printf '%s\n' "$dir"
            return 0
        fi
    done
    if dir="$(command -v initdb 2>/dev/null)"; then
        dir="$(dirname -- "$(readlink -f -- "$dir")")"
        if has_server "$dir"; then
            printf '%s\n' "$dir"
            return 0
        fi
    fi
    return 1
}

if [[ -n "${ARX_DATABASE_URL:-}" ]]; then
    step "postgres: ARX_DATABASE_URL is set; using that server, no local binaries needed"
elif bindir="$(find_pg_bindir)"; then
    step "postgres: server binaries in $bindir"
elif [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    quietly apt-get update
    quietly apt-get install -y --no-install-recommends postgresql
    bindir="$(find_pg_bindir)" || die "apt-get installed postgresql but no initdb/pg_ctl/postgres found"
    step "postgres: installed the Debian package; server binaries in $bindir"
else
    die "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found. Install a PostgreSQL >= 15
  server (Debian/Ubuntu: sudo apt-get install postgresql; macOS: brew install postgresql@15),
  or set ARX_DATABASE_URL to a server you already run, then re-run this script."
fi

# --- 4. xmlsec1 ------------------------------------------------------------------------

if command -v xmlsec1 >/dev/null 2>&1; then
    step "xmlsec1: $(command -v xmlsec1)"
elif [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    quietly apt-get update
    quietly apt-get install -y --no-install-recommends xmlsec1
    step "xmlsec1: installed the Debian package"
else
    die "xmlsec1 not found: SAML sign-in verifies signatures with it. Install it
  (Debian/Ubuntu: sudo apt-get install xmlsec1; macOS: brew install libxmlsec1), then re-run."
fi

# --- 5. hydra (tests only) ----------------------------------------------------------------

if [[ "$for_tests" == 1 ]]; then
    hydra="$(bash hydra/install.sh)" || die "no hydra binary (see the message above)"
    step "hydra: $hydra (v$(tr -d '[:space:]' <hydra/VERSION), for the OIDC tests)"
fi

# --- 6. chromium (tests only) -------------------------------------------------------------

if [[ "$for_tests" == 1 ]]; then
    if chromium="$(command -v chromium || command -v chromium-browser)"; then
        step "chromium: $chromium (for the browser tests)"
    elif [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
        export DEBIAN_FRONTEND=noninteractive
        quietly apt-get update
        quietly apt-get install -y --no-install-recommends chromium
        step "chromium: installed the Debian package (for the browser tests)"
    else
        die "chromium not found: the browser tests (tests/e2e/test_browser_docs.py) drive it.
  Install it (Debian/Ubuntu: sudo apt-get install chromium), then re-run."
    fi
fi
