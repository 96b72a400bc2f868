# METADATA
# title: ARX sidecar authorization
# description: |
#   The OPA sidecar runs with --authentication=token --authorization=basic and
#   this policy: only ARX, holding the sidecar's token, may ask for the one
#   decision it uses (POST /v1/data/arx/decision) and check health
#   (GET /health). Every write (PUT/PATCH/DELETE of /v1/data or
#   /v1/policies), every other read (another org's rules, this policy, the
#   token's hash) and every request without the token is refused. The token is
#   never stored here: data.system.arx.token_sha256 holds its SHA-256, written
#   beside this file when the sidecar starts (arx.devstack.opa).
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
	is_string(input.identity)
	crypto.sha256(input.identity) == data.system.arx.token_sha256
}
