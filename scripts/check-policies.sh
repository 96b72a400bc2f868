#!/usr/bin/env bash
# Checks the Rego side: formatting, strict compilation, the input schema,
# bundle layout (roots, data paths, builds) and the tests with coverage.
#
#   OPA=/path/to/opa bash scripts/check-policies.sh
#
# Layout: rego/ is the base library bundle (root "arx"); each bundles/<slug>/
# is an org bundle (root "orgs/<slug>") that depends on the base library.
# Tests (*_test.rego) live beside the code but are never part of a built
# bundle: their packages (arx_test, orgs_test.<slug>) sit outside the bundle
# roots, so bundle-mode commands pass --ignore '*_test.rego' and the tests run
# in directory mode, where data.json files land at the same data paths.
set -euo pipefail

OPA="${OPA:-opa}"
THRESHOLD="${ARX_REGO_COVERAGE_THRESHOLD:-90}"

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v "$OPA" >/dev/null 2>&1; then
	echo "check-policies: opa binary not found: $OPA (set OPA=/path/to/opa)" >&2
	exit 127
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

run() {
	echo "+ $*"
	"$@"
}

bundles=()
for dir in bundles/*/; do
	[ -f "$dir.manifest" ] && bundles+=("${dir%/}")
done

echo "== opa $("$OPA" version | sed -n 's/^Version: //p'); org bundles: ${bundles[*]:-none}"

echo "== format"
run "$OPA" fmt --fail --list rego bundles

echo "== strict compile (with tests)"
run "$OPA" check --strict rego
for b in "${bundles[@]}"; do
	run "$OPA" check --strict rego "$b"
done

echo "== input schema (rego/schema/input.json)"
run "$OPA" check --strict --schema rego/schema/input.json rego "${bundles[@]}"

echo "== bundle mode (roots, no tests)"
run "$OPA" check --strict -b rego --ignore '*_test.rego'
for b in "${bundles[@]}"; do
	slug="$(basename "$b")"
	run "$OPA" check --strict -b rego -b "$b" --ignore '*_test.rego'
	# The org bundle's data must land at data.orgs.<slug>, where
	# data.arx.decision looks it up by input.org.slug, and be well-formed as a
	# whole (the same check an activation can run; on failure, print why).
	printf '{"org": {"slug": "%s"}}' "$slug" >"$tmp/org-input.json"
	echo "+ $OPA eval --fail -b rego -b $b --ignore '*_test.rego' -i <{\"org\": {\"slug\": \"$slug\"}}> data.arx.org.valid"
	if ! "$OPA" eval --fail -b rego -b "$b" --ignore '*_test.rego' -i "$tmp/org-input.json" \
		--format raw data.arx.org.valid >/dev/null; then
		echo "check-policies: $b: data.orgs.$slug is missing or malformed:" >&2
		"$OPA" eval -b rego -b "$b" --ignore '*_test.rego' -i "$tmp/org-input.json" \
			--format pretty data.arx.org.errors >&2 || true
		exit 1
	fi
done

echo "== build"
run "$OPA" build -b rego -r check --ignore '*_test.rego' -o "$tmp/base.tar.gz"
for b in "${bundles[@]}"; do
	run "$OPA" build -b "$b" -r check --ignore '*_test.rego' -o "$tmp/$(basename "$b").tar.gz"
done

echo "== tests: base library (coverage threshold ${THRESHOLD}%)"
# --ignore schema: in directory mode the loader would read
# rego/schema/input.json as data (data.schema.input).
run "$OPA" test rego --ignore schema
echo "+ $OPA test rego --ignore schema --coverage --threshold $THRESHOLD > $tmp/coverage.json"
cov_rc=0
"$OPA" test rego --ignore schema --coverage --threshold "$THRESHOLD" >"$tmp/coverage.json" || cov_rc=$?
coverage="$(sed -n 's/^  "coverage": \([0-9.]*\).*/\1/p' "$tmp/coverage.json" | tail -n 1)"
if [ -n "$coverage" ]; then
	coverage="$(printf '%.1f' "$coverage")"
fi
echo "coverage: base library ${coverage:-unknown}% of lines (threshold ${THRESHOLD}%)"
if [ "$cov_rc" -ne 0 ]; then
	echo "check-policies: base library coverage below ${THRESHOLD}% or tests failed (exit $cov_rc)" >&2
	exit "$cov_rc"
fi

for b in "${bundles[@]}"; do
	echo "== tests: base library + $b"
	run "$OPA" test rego "$b" --ignore schema
done

# The decision runs on every agent action with up to 100 session entries, so
# the per-entry cost must stay a few allocations (one pass per count, no
# per-entry parsing or rule lookups). Allocations per op are deterministic,
# unlike timings on a shared machine: compare an empty session with 100 worst-
# case entries (non-read, DENY, all in the window).
if [ "${#bundles[@]}" -gt 0 ]; then
	b="${bundles[0]}"
	slug="$(basename "$b")"
	budget="${ARX_REGO_ALLOCS_PER_ENTRY:-8}"
	echo "== session cost: allocations per session_context entry (budget $budget), rego + $b"
	session_input() {
		local n="$1" now_ns=1795626300000000000 i entries=""
		for ((i = 0; i < n; i++)); do
			# "at" is for humans and not read by the policy; at_ns is 1 s apart.
			entries+="${entries:+,}{\"connector\":\"crowdstrike\",\"operation\":\"hosts:update\",\"kind\":\"write\",\"verdict\":\"DENY\",\"at\":\"2026-11-25T17:05:00Z\",\"at_ns\":$((now_ns - i * 1000000000))}"
		done
		printf '{"agent":{"id":"a","name":"bench-bot","intent":{"scope":{"crowdstrike":["hosts:*"]}}},"org":{"id":"o","slug":"%s"},"connector":"crowdstrike","operation":{"name":"hosts:search","kind":"read","base_risk":10},"session_context":[%s],"now":"2026-11-25T17:05:00Z","now_ns":%s}' \
			"$slug" "$entries" "$now_ns"
	}
	allocs() {
		"$OPA" bench -b rego -b "$b" --ignore '*_test.rego' -i "$1" --format gobench --metrics=false data.arx.decision |
			awk '/allocs\/op/ {print $(NF - 1)}'
	}
	session_input 0 >"$tmp/session-0.json"
	session_input 100 >"$tmp/session-100.json"
	a0="$(allocs "$tmp/session-0.json")"
	a100="$(allocs "$tmp/session-100.json")"
	echo "allocs/op: ${a0} with no session, ${a100} with 100 entries ($(((a100 - a0) / 100)) per entry)"
	if [ -z "$a0" ] || [ -z "$a100" ] || [ $((a100 - a0)) -gt $((100 * budget)) ]; then
		echo "check-policies: data.arx.decision costs more than $budget allocations per session entry" >&2
		exit 1
	fi
fi

if command -v regal >/dev/null 2>&1; then
	echo "== regal"
	run regal lint rego bundles
else
	echo "== regal: not installed, skipped"
fi

echo "check-policies: all policy checks passed"
