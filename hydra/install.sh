#!/usr/bin/env bash
# Print the absolute path of an ory/hydra binary of exactly the version pinned in
# hydra/VERSION. Hydra is the real OpenID provider the identity tests sign in
# against (tests/integration/test_oidc.py); ARX itself never runs it.
#
# Stdout carries that one path; progress and errors go to stderr. Lookup order:
#   1. the per-user cache ${XDG_CACHE_HOME:-$HOME/.cache}/arx/hydra/v<version>/hydra;
#   2. a build from the Go module proxy into that cache (~5 minutes, once).
# `go install` refuses hydra because its go.mod has replace directives, so the
# module source is downloaded, its one replace of the nested client module
# (absent from the module zip; the published module serves) is dropped, and it
# is built with -mod=mod.
set -euo pipefail

here="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)"
version="$(tr -d '[:space:]' <"$here/VERSION")"
version="${version#v}"
cache_dir="${XDG_CACHE_HOME:-$HOME/.cache}/arx/hydra/v$version"

is_pinned_hydra() {
    [[ -x "$1" ]] || return 1
    "$1" version 2>/dev/null | grep -q "v$version"
}

if is_pinned_hydra "$cache_dir/hydra"; then
    readlink -f -- "$cache_dir/hydra"
    exit 0
fi

go_bin=""
if command -v go >/dev/null 2>&1; then
    go_bin="$(command -v go)"
elif [[ -x /usr/local/go/bin/go ]]; then
    go_bin=/usr/local/go/bin/go
fi
if [[ -z "$go_bin" ]]; then
    echo "hydra/install.sh: no hydra v$version in $cache_dir and no Go to build it; install Go >= 1.23 and re-run." >&2
    exit 1
fi

echo "hydra/install.sh: building ory/hydra v$version with $go_bin (one-off, about five minutes)..." >&2
scratch="$(mktemp -d)"
trap 'chmod -R u+w "$scratch" 2>/dev/null; rm -rf "$scratch"' EXIT
src="$("$go_bin" mod download -json "github.com/ory/hydra/v2@v$version" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
if [[ -z "$src" || ! -d "$src" ]]; then
    echo "hydra/install.sh: 'go mod download github.com/ory/hydra/v2@v$version' gave no source dir." >&2
    exit 1
fi
cp -r -- "$src" "$scratch/hydra"
chmod -R u+w "$scratch/hydra"
sed -i '\#^replace github.com/ory/hydra-client-go/v2 => ./internal/httpclient#d' "$scratch/hydra/go.mod"
mkdir -p -- "$cache_dir"
(
    cd "$scratch/hydra"
    CGO_ENABLED=0 "$go_bin" build -mod=mod \
        -ldflags "-X github.com/ory/hydra/v2/driver/config.Version=v$version" \
        -o "$cache_dir/hydra.tmp" . 1>&2
)
mv -- "$cache_dir/hydra.tmp" "$cache_dir/hydra"
if ! is_pinned_hydra "$cache_dir/hydra"; then
    echo "hydra/install.sh: built $cache_dir/hydra but 'hydra version' does not report v$version:" >&2
    "$cache_dir/hydra" version >&2 || true
    exit 1
fi
echo "hydra/install.sh: installed $cache_dir/hydra" >&2
readlink -f -- "$cache_dir/hydra"
