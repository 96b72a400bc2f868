#!/usr/bin/env bash
# Print the absolute path of an `opa` binary of exactly the version pinned in opa/VERSION.
#
# Stdout carries that one path and nothing else (callers do `opa="$(opa/install.sh)"`);
# progress and errors go to stderr. Lookup order, first match wins:
#   1. an `opa` on PATH whose `opa version` reports the pinned version;
#   2. the per-user cache ${XDG_CACHE_HOME:-$HOME/.cache}/arx/opa/v<version>/opa;
#   3. `go install github.com/open-policy-agent/opa@v<version>` into that cache
#      (Go from PATH or /usr/local/go/bin), verified after the build.
# Exits 1 with a message naming what to install when none of these works.
set -euo pipefail

here="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
version="$(tr -d '[:space:]' <"$here/VERSION")"
version="${version#v}"
if [[ ! "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
    echo "opa/install.sh: opa/VERSION must hold a version like 1.22.3, got '$version'" >&2
    exit 1
fi

cache_dir="${XDG_CACHE_HOME:-$HOME/.cache}/arx/opa/v$version"

# True when "$1" runs and reports exactly the pinned version.
is_pinned_opa() {
    local reported
    [[ -x "$1" ]] || return 1
    reported="$("$1" version 2>/dev/null | awk '$1 == "Version:" { print $2; exit }')" || return 1
    [[ "${reported#v}" == "$version" ]]
}

emit() {
    # Resolve to an absolute, symlink-free path so the result stays valid from any cwd.
    readlink -f -- "$1"
}

if on_path="$(command -v opa 2>/dev/null)" && is_pinned_opa "$on_path"; then
    emit "$on_path"
    exit 0
fi

if is_pinned_opa "$cache_dir/opa"; then
    emit "$cache_dir/opa"
    exit 0
fi

go_bin=""
if command -v go >/dev/null 2>&1; then
    go_bin="$(command -v go)"
elif [[ -x /usr/local/go/bin/go ]]; then
    go_bin=/usr/local/go/bin/go
fi

if [[ -z "$go_bin" ]]; then
    cat >&2 <<EOF
opa/install.sh: no usable opa v$version found.
  Checked: 'opa' on PATH, and $cache_dir/opa.
  Fix one of:
    - install Go >= 1.24.6 (https://go.dev/dl/) and re-run this script; it builds
      opa v$version with 'go install' into $cache_dir;
    - or put the official opa v$version release binary on PATH
      (https://github.com/open-policy-agent/opa/releases/tag/v$version; verify its sha256).
EOF
    exit 1
fi

echo "opa/install.sh: building opa v$version with $go_bin (one-off, a few minutes)..." >&2
mkdir -p -- "$cache_dir"
# CGO off: the pure-Go build is what the OPA project ships and needs no C toolchain.
if ! GOBIN="$cache_dir" CGO_ENABLED=0 "$go_bin" install \
    "github.com/open-policy-agent/opa@v$version" 1>&2; then
    echo "opa/install.sh: 'go install github.com/open-policy-agent/opa@v$version' failed (see above)." >&2
    echo "  OPA v$version needs Go >= 1.24.6; this is $("$go_bin" version 2>&1)." >&2
    exit 1
fi

if ! is_pinned_opa "$cache_dir/opa"; then
    echo "opa/install.sh: built $cache_dir/opa but it does not report version $version." >&2
    exit 1
fi
echo "opa/install.sh: installed $cache_dir/opa" >&2
emit "$cache_dir/opa"
