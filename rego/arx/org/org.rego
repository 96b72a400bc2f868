# METADATA
# title: Org rules
# description: |
#   Evaluates the org's rules-as-data at data.orgs[input.org.slug]:
#   {"defaults": {kind: verdict}, "rules": [{id, priority, description, verdict, match, approval}]}.
#   Rules are tried in ascending priority, ties broken by id (then by position);
#   the first whose every present match field holds wins. Absent match fields
#   match anything; an empty list matches nothing.
#
#   The whole document is validated once, when a bundle is built or activated
#   (`valid` and `errors`: scripts/check-policies.sh and the devstack's
#   build_policy_bundles refuse a bundle that is not valid). A call does not
#   re-validate it: one pass over the rules runs cheap match tests, stopping
#   at a rule's first failing field, and only what decides the call is checked
#   in full: the winning rule or, when none matches, the default for the
#   operation's kind. The pass is linear in the rule count, at a few
#   microseconds a rule; the checks cost one rule's worth.
#
#   Data that is malformed anyway (loaded by hand, or by a path that skipped
#   the check) still never lets a call through, because a broken rule can only
#   match more and rank earlier, never less or later:
#   - a match field rejects the call only when it is well-formed and fails
#     it: a field of the wrong type, a list with a non-string item, a bad glob
#     or an unknown field counts as holding, and so does a rule that is not an
#     object. A broken rule is thus a candidate unless a well-formed field of
#     it rejects the call, and then no reading of its broken parts could make
#     it match;
#   - candidates sort by [rank, id, index], where the rank is the priority when
#     it is a number and null (before every number) otherwise, and the id is
#     null (before every string) when it is not a string. A rule with a broken
#     priority or id so ranks before every well-formed rule it could have tied
#     with or beaten;
#   - the first candidate decides only if it is well-formed in full; a
#     well-formed winner matches under every reading of the rest of the
#     document and every broken candidate ranks after it, so the decision is
#     the one the repaired document would give. With no candidate, the default
#     for the kind decides only if it is a verdict. Anything else (a broken
#     winner or default, or a policy of the wrong shape) is DENY
#     "arx.invalid_org_policy" with `problems` as reasons.
package arx.org

import data.arx.intent
import data.arx.patterns

# METADATA
# title: Verdicts
# description: The verdicts a rule or a default may return.
verdicts := {"PERMIT", "ESCALATE", "DENY"}

# METADATA
# title: Match fields
# description: |
#   Match fields holding lists of strings, those holding numbers, and
#   min_counts: {window: {count: minimum}}, which holds when every named count
#   of input.session_context.windows is at least its minimum (a kind name
#   reads the window's "kinds").
list_fields := {"connectors", "operations", "agents", "kinds"}

number_fields := {"min_risk", "max_risk"}

windows := {"1m", "5m", "60m"}

counts := {"actions", "non_read", "denied", "targets", "read", "write", "containment", "destructive"}

# METADATA
# title: Org policy
# description: The org's data document, looked up by slug (an indexable equality lookup).
policy := data.orgs[input.org.slug]

# METADATA
# title: Org policy loaded
# description: True when a bundle has put a document at data.orgs[slug].
loaded if {
	_ := policy
}

rules := object.get(policy, "rules", [])

defaults := object.get(policy, "defaults", {})

# METADATA
# title: Policy shaped
# description: The policy is an object whose rules are an array and whose defaults are an object.
shaped if {
	is_array(rules)
	is_object(defaults)
}

# METADATA
# title: Candidates
# description: |
#   [rank, id, index] of every rule that no well-formed match field rejects:
#   rank is the priority, or null when it is not a number; id is the id, or
#   null when it is not a string (see the package).
candidates contains [rank(rule), id_key(rule), i] if {
	some i, rule in rules
	not rejects(rule)
}

rank(rule) := priority if {
	priority := rule.priority
	is_number(priority)
} else := null

id_key(rule) := id if {
	id := rule.id
	is_string(id)
} else := null

# METADATA
# title: Rule rejects the call
# description: |
#   True when a present, well-formed match field of rule fails the call. A
#   list field rejects only when the call is not in it and every item is a
#   string (concat is defined on nothing else); a number only when it is a
#   number; operations only when every pattern is a valid glob that misses.
#   Evaluation stops at the first clause that holds, so the cheap and most
#   selective fields come first and the globs last.
rejects(rule) if {
	kinds := rule.match.kinds
	not input.operation.kind in kinds
	concat("", kinds)
}

rejects(rule) if {
	connectors := rule.match.connectors
	not input.connector in connectors
	concat("", connectors)
}

rejects(rule) if {
	agents := rule.match.agents
	not input.agent.name in agents
	concat("", agents)
}

rejects(rule) if {
	min_risk := rule.match.min_risk
	is_number(min_risk)
	intent.risk_score < min_risk
}

rejects(rule) if {
	max_risk := rule.match.max_risk
	is_number(max_risk)
	intent.risk_score > max_risk
}

rejects(rule) if {
	some window, minimums in rule.match.min_counts
	some name, minimum in minimums
	is_number(minimum)
	window_count(window, name) < minimum
}

rejects(rule) if {
	operations := rule.match.operations
	not input.operation.name in operations
	patterns.misses_all(operations, input.operation.name)
}

# METADATA
# title: Window count
# description: A count of input.session_context.windows[window]; a kind name reads the window's "kinds".
window_count(window, name) := n if {
	n := input.session_context.windows[window].kinds[name]
} else := input.session_context.windows[window][name]

# METADATA
# title: Winning rule
# description: |
#   The first candidate, when the policy has the right shape; undefined when
#   no rule matches. It decides only if it is well-formed (`deciding_rule`).
winner := rules[min(candidates)[2]] if shaped

# METADATA
# title: Deciding rule
# description: The winning rule, when it is well-formed in full.
# custom:
#   code: ARX-O000
deciding_rule := winner if rule_ok(winner)

# METADATA
# title: Default applies
# description: |
#   No rule matches, the policy has the right shape and the default for the
#   operation's kind (ESCALATE when unset) is a verdict.
default_applies if {
	shaped
	count(candidates) == 0
	verdicts[default_verdict]
}

# METADATA
# title: Usable for this call
# description: A rule or a default can decide this call; otherwise it is DENY "arx.invalid_org_policy".
usable if deciding_rule

usable if default_applies

# METADATA
# title: Default verdict
# description: The org's default for the operation's kind; ESCALATE when the org sets none.
default_verdict := object.get(defaults, input.operation.kind, "ESCALATE")

# METADATA
# title: Default reason
# description: Explains which default applied.
default_reason := concat("", ["no rule matched; org default for ", input.operation.kind, " operations is ", default_verdict]) if {
	_ := defaults[input.operation.kind]
} else := concat("", ["no rule matched and the org sets no default for ", input.operation.kind, " operations; escalating"])

# METADATA
# title: Call problems
# description: |
#   Why a call is DENY "arx.invalid_org_policy": the policy's shape, the
#   winning rule's problems, or the default's. Only for calls that are not
#   `usable`; `errors` covers the whole document.
# custom:
#   code: ARX-O003
problems contains msg if {
	some msg in shape_errors
}

problems contains sprintf("org rule #%d: %s", [min(candidates)[2], problem]) if {
	some problem in rule_errors(winner)
}

problems contains default_error(input.operation.kind) if {
	is_object(defaults)
	count(candidates) == 0
	not verdicts[default_verdict]
}

# METADATA
# title: Rule well-formed
# description: |
#   A rule with a string id, a numeric priority, a verdict, a string
#   description if any, and a match object whose every field is known and of
#   the right type. Checked for one rule per call (the winner), and for every
#   rule by `valid`.
rule_ok(rule) if {
	concat("", [rule.id, object.get(rule, "description", "")])
	is_number(rule.priority)
	verdicts[rule.verdict]
	approval_ok(rule)
	match := object.get(rule, "match", {})
	is_object(match)
	every key, value in match {
		match_field_ok(key, value)
	}
}

# METADATA
# title: Approval terms well-formed
# description: |
#   An ESCALATE rule may say how its escalations are approved:
#   "approval": {"required": 1..5 distinct reviewers, "ttl_seconds": 60..604800}
#   (both optional; absent: one reviewer, the org's default expiry). Any
#   other rule must not carry terms it would never use.
approval_ok(rule) if not has_approval(rule)

has_approval(rule) if {
	_ := rule.approval
}

approval_valid(rule) if approval_ok(rule)

else := false

approval_ok(rule) if {
	rule.verdict == "ESCALATE"
	terms := rule.approval
	is_object(terms)
	every key, value in terms {
		approval_term_ok(key, value)
	}
}

approval_term_ok("required", n) if {
	is_number(n)
	n == round(n)
	n >= 1
	n <= 5
}

approval_term_ok("ttl_seconds", n) if {
	is_number(n)
	n == round(n)
	n >= 60
	n <= 604800
}

# METADATA
# title: Match field well-formed
# description: |
#   One match field: a list of strings (concat is defined on nothing else),
#   valid globs, a number, or min_counts. Undefined for an unknown field.
match_field_ok("kinds", value) if concat("", value)

match_field_ok("connectors", value) if concat("", value)

match_field_ok("agents", value) if concat("", value)

match_field_ok("operations", value) if patterns.all_valid(value)

match_field_ok("min_risk", value) if is_number(value)

match_field_ok("max_risk", value) if is_number(value)

match_field_ok("min_counts", value) if {
	is_object(value)
	every window, minimums in value {
		windows[window]
		is_object(minimums)
		every name, minimum in minimums {
			counts[name]
			is_number(minimum)
		}
	}
}

# METADATA
# title: Valid org policy
# description: |
#   The whole document is well-formed: every rule, unique ids, every default a
#   verdict. Not on the hot path; for bundle tests and activation checks
#   (query it with input {"org": {"slug": <slug>}}).
# custom:
#   code: ARX-O001
valid if {
	is_array(rules)
	is_object(defaults)
	every verdict in defaults {
		verdicts[verdict]
	}
	every rule in rules {
		rule_ok(rule)
	}
	count({rule.id | some rule in rules}) == count(rules)
}

# METADATA
# title: Org policy errors
# description: |
#   Explains why the org's data is not valid, for bundle tests and activation
#   checks (a call's own reasons are `problems`).
# custom:
#   code: ARX-O002
errors contains sprintf("no org policy at data.orgs[%q]", [input.org.slug]) if not loaded

errors contains msg if {
	some msg in shape_errors
}

errors contains default_error(kind) if {
	some kind, verdict in defaults
	not verdicts[verdict]
}

errors contains sprintf("org rule #%d: %s", [i, problem]) if {
	is_array(rules)
	some i, rule in rules
	not rule_ok(rule)
	some problem in rule_errors(rule)
}

errors contains sprintf("org rule id %v is used more than once", [id]) if {
	is_array(rules)
	some i, rule in rules
	id := rule.id
	some j
	rules[j].id == id
	i < j
}

shape_errors contains "org policy must be an object" if {
	loaded
	not is_object(policy)
}

shape_errors contains "org policy rules must be an array" if not is_array(rules)

shape_errors contains "org policy defaults must be an object" if not is_object(defaults)

default_error(kind) := sprintf("org default for %v must be one of PERMIT, ESCALATE, DENY", [kind])

# METADATA
# title: Rule errors
# description: The problems of one rule, as a set of messages.
rule_errors(rule) := {"must be an object"} if {
	not is_object(rule)
} else := {"match must be an object"} if {
	not is_object(object.get(rule, "match", {}))
} else := field_errors | match_errors if {
	field_errors := {check.msg |
		some check in rule_checks(rule)
		not check.ok
	}
	match_errors := {msg |
		some key, value in object.get(rule, "match", {})
		not match_field_ok(key, value)
		msg := match_field_error(key)
	}
}

rule_checks(rule) := [
	{"ok": is_string(object.get(rule, "id", null)), "msg": "id must be a string"},
	{"ok": is_number(object.get(rule, "priority", null)), "msg": "priority must be a number"},
	{"ok": object.get(rule, "verdict", null) in verdicts, "msg": "verdict must be one of PERMIT, ESCALATE, DENY"},
	{"ok": is_string(object.get(rule, "description", "")), "msg": "description must be a string"},
	{"ok": approval_valid(rule), "msg": "approval must be {\"required\": 1..5, \"ttl_seconds\": 60..604800} on an ESCALATE rule"},
]

match_field_error(key) := "match.operations must be a list of valid glob patterns" if {
	key == "operations"
} else := "match.min_counts must map windows (1m, 5m, 60m) to counts (actions, non_read, denied, targets, or a kind) and numbers" if {
	key == "min_counts"
} else := sprintf("match.%s must be a list of strings", [key]) if {
	list_fields[key]
} else := sprintf("match.%s must be a number", [key]) if {
	number_fields[key]
} else := sprintf("match.%v is not a match field (connectors, operations, agents, kinds, min_risk, max_risk, min_counts)", [key])
