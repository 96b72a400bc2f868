# METADATA
# title: Org rules
# description: |
#   Evaluates the org's rules-as-data at data.orgs[input.org.slug]:
#   {"defaults": {kind: verdict}, "rules": [{id, priority, description, verdict, match}]}.
#   Rules are tried in ascending priority, ties broken by id (then by position);
#   the first whose every present match field holds wins. Absent match fields
#   match anything; an empty list matches nothing.
#
#   Malformed org data never lets a call through. Checking every rule on every
#   call would cost time in proportion to the rule count, so a call checks only
#   what it touches: the policy's shape, the rules it may match and the default
#   it falls to. A match field of the wrong type, or one not known, counts as
#   holding, so a broken rule is always among the rules a call may match unless
#   a well-formed field of that rule rejects the call (then no reading of the
#   broken field could make it match). Any broken rule among them, or a broken
#   default in use, makes the decision DENY ("arx.invalid_org_policy"). `valid`
#   and `errors` check the whole document, for bundle tests and activation.
package arx.org

import data.arx.intent
import data.arx.patterns

# METADATA
# title: Verdicts
# description: The verdicts a rule or a default may return.
verdicts := {"PERMIT", "ESCALATE", "DENY"}

# METADATA
# title: Match fields
# description: Match fields holding lists of strings, and those holding numbers.
list_fields := {"connectors", "operations", "agents", "kinds"}

number_fields := {"min_risk", "max_risk"}

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
# title: Usable for this call
# description: |
#   The hot-path check: the policy has the right shape, no rule this call may
#   match is broken and the default it would fall to (if any) is a verdict.
# custom:
#   code: ARX-O000
usable if {
	is_array(rules)
	is_object(defaults)
	count(broken) == 0
	not broken_default
}

# METADATA
# title: Applicable rules
# description: |
#   Indexes of the rules this call may match: those no match field rejects.
#   Only a present, well-typed field can reject, so absent fields match
#   anything and broken ones hold (see the package). Set difference on the
#   whole of `rejected`: a lookup rejected[i] per rule would re-run its bodies.
applicable := {i | some i, _ in rules} - rejected

# METADATA
# title: Rejected rules
# description: Indexes of rules with a present, well-typed match field that the call fails.
rejected contains i if {
	some i, rule in rules
	connectors := rule.match.connectors
	is_array(connectors)
	not input.connector in connectors
}

rejected contains i if {
	some i, rule in rules
	operations := rule.match.operations
	is_array(operations)

	# A bad glob never matches; only well-formed patterns may reject.
	patterns.misses_all(operations, input.operation.name)
}

rejected contains i if {
	some i, rule in rules
	agents := rule.match.agents
	is_array(agents)
	not input.agent.name in agents
}

rejected contains i if {
	some i, rule in rules
	kinds := rule.match.kinds
	is_array(kinds)
	not input.operation.kind in kinds
}

rejected contains i if {
	some i, rule in rules
	min_risk := rule.match.min_risk
	is_number(min_risk)
	intent.risk_score < min_risk
}

rejected contains i if {
	some i, rule in rules
	max_risk := rule.match.max_risk
	is_number(max_risk)
	intent.risk_score > max_risk
}

# METADATA
# title: Broken applicable rules
# description: Indexes of applicable rules that are malformed.
broken contains i if {
	some i in applicable
	not rule_ok(rules[i])
}

broken_default if {
	verdict := defaults[input.operation.kind]
	not verdicts[verdict]
}

# METADATA
# title: Candidates
# description: "[priority, id, index] of every applicable rule, sorted: the first is the winner."
candidates := sort([[rules[i].priority, rules[i].id, i] | some i in applicable])

# METADATA
# title: Winning rule
# description: The first matching rule; undefined when none matches.
winner := rules[candidates[0][2]]

# METADATA
# title: Default verdict
# description: The org's default for the operation's kind; ESCALATE when the org sets none.
default_verdict := defaults[input.operation.kind] if {
	defaults[input.operation.kind]
} else := "ESCALATE"

# METADATA
# title: Default reason
# description: Explains which default applied.
default_reason := sprintf("no rule matched; org default for %s operations is %s", [input.operation.kind, default_verdict]) if {
	defaults[input.operation.kind]
} else := sprintf("no rule matched and the org sets no default for %s operations; escalating", [input.operation.kind])

# METADATA
# title: Rule well-formed
# description: A rule with a string id, a numeric priority, a verdict and only known match fields of the right type.
rule_ok(rule) if {
	is_string(rule.id)
	is_number(rule.priority)
	verdicts[rule.verdict]
	is_string(object.get(rule, "description", ""))
	match := object.get(rule, "match", {})
	count(object.remove(match, match_fields)) == 0
	string_list(object.get(match, "connectors", []))
	operations_ok(object.get(match, "operations", []))
	string_list(object.get(match, "agents", []))
	string_list(object.get(match, "kinds", []))
	is_number(object.get(match, "min_risk", 0))
	is_number(object.get(match, "max_risk", 0))
}

match_fields := list_fields | number_fields

string_list(value) if {
	is_array(value)
	every item in value {
		is_string(item)
	}
}

operations_ok(value) if {
	is_array(value)
	every pattern in value {
		patterns.valid(pattern)
	}
}

# One match field, for the error messages.
match_field_ok(key, value) if {
	list_fields[key]
	key != "operations"
	string_list(value)
}

match_field_ok("operations", value) if operations_ok(value)

match_field_ok(key, value) if {
	number_fields[key]
	is_number(value)
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
#   Explains why the org's data is not valid: the reasons of an
#   "arx.invalid_org_policy" decision, and what an activation check reports.
# custom:
#   code: ARX-O002
errors contains "org policy must be an object" if {
	loaded
	not is_object(policy)
}

errors contains "org policy rules must be an array" if not is_array(rules)

errors contains "org policy defaults must be an object" if not is_object(defaults)

errors contains sprintf("org default for %v must be one of PERMIT, ESCALATE, DENY", [kind]) if {
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
]

match_field_error(key) := "match.operations must be a list of valid glob patterns" if {
	key == "operations"
} else := sprintf("match.%s must be a list of strings", [key]) if {
	list_fields[key]
} else := sprintf("match.%s must be a number", [key]) if {
	number_fields[key]
} else := sprintf("match.%v is not a match field (connectors, operations, agents, kinds, min_risk, max_risk)", [key])
