# METADATA
# title: ARX decision
# description: |
#   The entrypoint OPA is asked for on every intercepted tool call. It always
#   returns {"verdict", "risk_score", "policy_id", "reasons"}; whatever cannot
#   be decided is denied. Reasons list the rule's or default's reason first,
#   then one reason per active risk factor. A call that resumes a request
#   reviewers approved (input.approval) turns an ESCALATE into a PERMIT; a
#   DENY stays a DENY (policy may have changed since the approval).
package arx

import data.arx.intent
import data.arx.org
import data.arx.validation

# METADATA
# title: Decision
# description: |
#   Fail-closed decision. Checked in order: malformed input (arx.invalid_input),
#   no org bundle (arx.no_org_policy), the first matching org rule when it is
#   well-formed (its id), else with no matching rule the org default for the
#   kind when it is a verdict (default:<kind>, ESCALATE when unset); anything
#   else is a malformed org policy (arx.invalid_org_policy, see package
#   arx.org). Then an ESCALATE of a request reviewers approved is a PERMIT
#   (approved_decision). Undefined anywhere falls to arx.default_deny.
# entrypoint: true
# custom:
#   code: ARX-D000
#   returns: '{"verdict": "PERMIT"|"ESCALATE"|"DENY", "risk_score": 0..100, "policy_id": string|null, "reasons": [string], "approvals_required"?: 1..5, "approval_ttl_seconds"?: 60..604800}'
default decision := {
	"verdict": "DENY",
	"risk_score": 100,
	"policy_id": "arx.default_deny",
	"reasons": ["no policy produced a decision"],
}

decision := approved_decision if {
	evaluated.verdict == "ESCALATE"
	input.approval.status == "approved"
} else := evaluated

# The verdict before any approval is taken into account.
evaluated := invalid_input if {
	not validation.valid
} else := no_org_policy if {
	not org.loaded
} else := rule_decision if {
	org.deciding_rule
} else := org_default_decision if {
	org.default_applies
} else := invalid_org_policy if {
	not org.usable
}

# METADATA
# title: Invalid input
# description: The input does not match rego/schema/input.json; the reasons list every problem.
# custom:
#   code: ARX-D001
#   policy_id: arx.invalid_input
invalid_input := {
	"verdict": "DENY",
	"risk_score": 100,
	"policy_id": "arx.invalid_input",
	"reasons": explain(validation.errors, "input does not match rego/schema/input.json"),
}

# METADATA
# title: No org policy
# description: No bundle has been activated for the org (data.orgs[slug] is undefined).
# custom:
#   code: ARX-D002
#   policy_id: arx.no_org_policy
no_org_policy := {
	"verdict": "DENY",
	"risk_score": 100,
	"policy_id": "arx.no_org_policy",
	"reasons": [sprintf("no policy bundle is active for org %q", [input.org.slug])],
}

# METADATA
# title: Invalid org policy
# description: |
#   The org's policy has the wrong shape, or the rule that would decide this
#   call (or the default it falls to) is malformed; the reasons list those
#   problems (org.problems). The whole document is checked at build time.
# custom:
#   code: ARX-D003
#   policy_id: arx.invalid_org_policy
invalid_org_policy := {
	"verdict": "DENY",
	"risk_score": 100,
	"policy_id": "arx.invalid_org_policy",
	"reasons": explain(org.problems, "org policy is malformed"),
}

# METADATA
# title: Rule decision
# description: The first matching org rule decides; its id is the policy_id.
# custom:
#   code: ARX-D004
rule_decision := object.union(
	{
		"verdict": org.deciding_rule.verdict,
		"risk_score": intent.risk_score,
		"policy_id": org.deciding_rule.id,
		"reasons": array.concat([rule_reason], intent.reasons),
	},
	approval_terms,
)

# An escalating rule's approval terms (org.approval_ok): the number of
# distinct reviewers, and its own expiry when it sets one. Whole numbers
# written as 2.0 or 1.8e3 pass the check; round() makes OPA answer 2 and
# 1800, which ARX reads as the integers they are.
approval_terms := {k: round(value) |
	some key, value in object.get(org.deciding_rule, "approval", {})
	k := {"required": "approvals_required", "ttl_seconds": "approval_ttl_seconds"}[key]
}

# The rule's description, or a generated reason (built only when needed).
rule_reason := description if {
	description := org.deciding_rule.description
} else := concat("", ["org rule ", org.deciding_rule.id, " matched"])

# METADATA
# title: Default decision
# description: No rule matched; the org's default verdict for the operation's kind decides.
# custom:
#   code: ARX-D005
#   policy_id: default:<kind>
org_default_decision := {
	"verdict": org.default_verdict,
	"risk_score": intent.risk_score,
	"policy_id": concat(":", ["default", input.operation.kind]),
	"reasons": array.concat([org.default_reason], intent.reasons),
}

# METADATA
# title: Approved decision
# description: |
#   The call resumes a request that reviewers approved, and policy still
#   escalates it: it runs, under the same policy id, with the approval as its
#   first reason.
# custom:
#   code: ARX-D006
approved_decision := {
	"verdict": "PERMIT",
	"risk_score": evaluated.risk_score,
	"policy_id": evaluated.policy_id,
	"reasons": array.concat(
		[sprintf("approved by reviewers (approval %s)", [input.approval.id])],
		evaluated.reasons,
	),
}

# The sorted messages, or a generic one should the gate and the explanation
# ever disagree (the decision stays DENY either way).
explain(errors, fallback) := sorted if {
	count(errors) > 0
	sorted := sort(errors)
} else := [fallback]
