# METADATA
# title: ARX sidecar authorization
# description: |
#   The OPA sidecar runs with --authentication=token --authorization=basic and
#   this policy: only ARX, holding the sidecar's token, may ask for the one
#   decision it uses (POST /v1/data/arx/decision) and check health
#   (GET /health). Every write (PUT/PATCH/DELETE of /v1/data or
#   /v1/policies), every other read (another org's rules, this policy) and every request without the token is refused. The token is
#   never stored in a file: OPA gets it in its environment (ARX_OPA_TOKEN),
#   as ARX does (arx.devstack.opa, compose.yaml).
package system.authz

default allow := false

allow if {
	input.method == "POST"
	input.path == ["v1", "data", "arx", "decision"]
	holds_token
}

allow if {
	input.method == "GET"
	input.path == ["health"]
	holds_token
}

holds_token if {
	expected := opa.runtime().env.ARX_OPA_TOKEN
	count(expected) >= 32
	input.identity == expected
}
