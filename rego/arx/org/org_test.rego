package arx.org_test

import data.arx.org

call := {
	"agent": {"id": "a", "name": "responder-bot", "intent": {"scope": {"crowdstrike": ["hosts:*"]}}},
	"org": {"id": "o", "slug": "acme"},
	"connector": "crowdstrike",
	"operation": {"name": "hosts:contain", "kind": "containment", "base_risk": 60},
	"now": "2026-11-25T17:05:00Z",
	"now_ns": 1795626300000000000,
}

rule(id, priority, match) := {"id": id, "priority": priority, "verdict": "ESCALATE", "description": id, "match": match}

# The call (responder-bot, crowdstrike hosts:contain, containment, risk 60)
# matches a single rule with this match.
matches(match) if {
	org.applicable == {0} with input as call with data.orgs as {"acme": {"rules": [rule("A", 1, match)]}}
}

test_empty_match_matches_everything if {
	matches({})
}

test_each_match_field_holds if {
	matches({"connectors": ["sentinelone", "crowdstrike"]})
	matches({"operations": ["hosts:*"]})
	matches({"agents": ["responder-bot"]})
	matches({"kinds": ["containment", "destructive"]})
	matches({"min_risk": 60, "max_risk": 60})
}

test_each_match_field_can_reject if {
	not matches({"connectors": ["sentinelone"]})
	not matches({"operations": ["detects:*"]})
	not matches({"agents": ["triage-bot"]})
	not matches({"kinds": ["read"]})
	not matches({"min_risk": 61})
	not matches({"max_risk": 59})
}

test_all_present_fields_must_hold if {
	not matches({"connectors": ["crowdstrike"], "agents": ["triage-bot"]})
	matches({"connectors": ["crowdstrike"], "agents": ["responder-bot"], "operations": ["hosts:contain"]})
}

test_empty_list_matches_nothing if {
	not matches({"agents": []})
	not matches({"operations": []})
}

test_operation_glob_does_not_cross_delimiter if {
	not matches({"operations": ["*"]})
	matches({"operations": ["**"]})
	matches({"operations": ["*:contain"]})
}

test_rules_match_independently if {
	rules := [rule("A", 1, {"kinds": ["read"]}), rule("B", 2, {}), rule("C", 3, {"agents": ["responder-bot"]})]
	org.applicable == {1, 2} with input as call with data.orgs as {"acme": {"rules": rules}}
}

test_candidates_sort_by_priority_then_id_then_position if {
	rules := [
		rule("B", 5, {}),
		rule("A", 5, {}),
		rule("C", 1, {"agents": ["someone-else"]}),
		rule("D", 2, {}),
	]
	org.candidates == [[2, "D", 3], [5, "A", 1], [5, "B", 0]] with input as call with data.orgs as {"acme": {"rules": rules}}
	org.winner.id == "D" with input as call with data.orgs as {"acme": {"rules": rules}}
}

test_fractional_priorities_sort_numerically if {
	rules := [rule("A", 10, {}), rule("B", 9.5, {})]
	org.winner.id == "B" with input as call with data.orgs as {"acme": {"rules": rules}}
}

test_no_matching_rule_leaves_winner_undefined if {
	rules := [rule("A", 1, {"kinds": ["read"]})]
	not org.winner with input as call with data.orgs as {"acme": {"rules": rules}}
}

test_rule_without_match_matches_everything if {
	rules := [object.remove(rule("A", 1, {}), ["match"])]
	org.winner.id == "A" with input as call with data.orgs as {"acme": {"rules": rules}}
}

test_risk_bounds_use_the_intent_score if {
	# responder-bot is in scope, so the score is the base risk (60); out of
	# scope it would be 100.
	rules := [rule("LOW", 1, {"max_risk": 60})]
	org.winner.id == "LOW" with input as call with data.orgs as {"acme": {"rules": rules}}
	i := json.patch(call, [{"op": "replace", "path": "/agent/intent/scope", "value": {}}])
	not org.winner with input as i with data.orgs as {"acme": {"rules": rules}}
}

test_default_verdict_for_kind if {
	org.default_verdict == "PERMIT" with input as call with data.orgs as {"acme": {"defaults": {"containment": "PERMIT"}}}
}

test_missing_default_escalates if {
	org.default_verdict == "ESCALATE" with input as call with data.orgs as {"acme": {"defaults": {"read": "PERMIT"}}}
	org.default_reason == "no rule matched and the org sets no default for containment operations; escalating" with input as call
		with data.orgs as {"acme": {"defaults": {"read": "PERMIT"}}}
}

test_loaded_only_when_org_document_exists if {
	org.loaded with input as call with data.orgs as {"acme": {}}
	not org.loaded with input as call with data.orgs as {"other": {}}
}

usable_for(policy) if org.usable with input as call with data.orgs as {"acme": policy}

broken_for(policy) := broken if {
	broken := org.broken with input as call with data.orgs as {"acme": policy}
}

test_well_formed_policy_is_usable if {
	usable_for(well_formed)
	usable_for({})
}

test_wrongly_typed_match_field_counts_as_holding if {
	# A DENY rule with min_risk "80" must not be skipped as "not matching".
	policy := {"rules": [rule("A", 1, {"min_risk": "80"})]}
	broken_for(policy) == {0}
	not usable_for(policy)
}

test_malformed_glob_counts_as_holding if {
	# glob.match is undefined on "hosts:[": it must not read as "does not match".
	policy := {"rules": [rule("A", 1, {"operations": ["hosts:["]})]}
	broken_for(policy) == {0}
	not usable_for(policy)
	errors_for(policy) == {"org rule #0: match.operations must be a list of valid glob patterns"}
}

test_unknown_match_field_counts_as_holding if {
	policy := {"rules": [rule("A", 1, {"agent": ["triage-bot"], "kinds": ["containment"]})]}
	broken_for(policy) == {0}
	not usable_for(policy)
}

test_broken_rule_rejected_by_a_well_formed_field_is_not_applicable if {
	# connectors rejects the call, so no reading of min_risk could make it match.
	policy := {"rules": [rule("A", 1, {"connectors": ["sentinelone"], "min_risk": "80"})]}
	broken_for(policy) == set()
	usable_for(policy)
	not org.valid with input as call with data.orgs as {"acme": policy}
}

test_non_object_rule_or_match_is_broken if {
	broken_for({"rules": [42]}) == {0}
	broken_for({"rules": [rule("A", 1, "hosts:*")]}) == {0}
}

test_rule_without_id_priority_or_verdict_is_broken_when_it_applies if {
	broken_for({"rules": [{"priority": 1, "verdict": "DENY"}]}) == {0}
	broken_for({"rules": [{"id": "A", "verdict": "DENY"}]}) == {0}
	broken_for({"rules": [{"id": "A", "priority": 1, "verdict": "deny"}]}) == {0}
	broken_for({"rules": [{"id": "A", "priority": 1, "verdict": "deny", "match": {"kinds": ["read"]}}]}) == set()
}

test_policy_of_the_wrong_shape_is_not_usable if {
	not usable_for({"rules": {"id": "A"}})
	not usable_for({"defaults": ["PERMIT"]})
	not usable_for("rules")
}

test_broken_default_blocks_only_its_kind if {
	not usable_for({"defaults": {"containment": "ALLOW"}})
	usable_for({"defaults": {"write": "ALLOW"}})
}

errors_for(policy) := errors if {
	errors := org.errors with input as call with data.orgs as {"acme": policy}
}

valid_policy(policy) if org.valid with input as call with data.orgs as {"acme": policy}

well_formed := {
	"defaults": {"read": "PERMIT", "write": "ESCALATE"},
	"rules": [
		rule("A", 1, {"connectors": ["crowdstrike"], "min_risk": 10, "max_risk": 90.5}),
		{"id": "B", "priority": 2, "verdict": "DENY"},
	],
}

# Malformed policies and the exact errors each must report.
malformed := [
	[["not", "an", "object"], {"org policy must be an object"}],
	[{"rules": {"id": "A"}}, {"org policy rules must be an array"}],
	[{"defaults": ["PERMIT"]}, {"org policy defaults must be an object"}],
	[{"defaults": {"read": "ALLOW"}}, {"org default for read must be one of PERMIT, ESCALATE, DENY"}],
	[{"rules": [42]}, {"org rule #0: must be an object"}],
	[{"rules": [{"priority": 1, "verdict": "DENY"}]}, {"org rule #0: id must be a string"}],
	[{"rules": [{"id": "A", "priority": "1", "verdict": "DENY"}]}, {"org rule #0: priority must be a number"}],
	[{"rules": [{"id": "A", "priority": 1}]}, {"org rule #0: verdict must be one of PERMIT, ESCALATE, DENY"}],
	[{"rules": [{"id": "A", "priority": 1, "verdict": "DENY", "description": 7}]}, {"org rule #0: description must be a string"}],
	[{"rules": [rule("A", 1, "hosts:*")]}, {"org rule #0: match must be an object"}],
	[{"rules": [rule("A", 1, {"agent": ["triage-bot"]})]}, {"org rule #0: match.agent is not a match field (connectors, operations, agents, kinds, min_risk, max_risk)"}],
	[
		{"rules": [
			rule("A", 1, {}),
			rule("B", 2, {
				"connectors": "crowdstrike",
				"operations": [1],
				"agents": {},
				"kinds": ["read", null],
				"min_risk": "80",
				"max_risk": true,
			}),
		]},
		{
			"org rule #1: match.connectors must be a list of strings",
			"org rule #1: match.operations must be a list of valid glob patterns",
			"org rule #1: match.agents must be a list of strings",
			"org rule #1: match.kinds must be a list of strings",
			"org rule #1: match.min_risk must be a number",
			"org rule #1: match.max_risk must be a number",
		},
	],
	[{"rules": [rule("A", 1, {}), rule("A", 2, {})]}, {"org rule id A is used more than once"}],
	[
		{"rules": [rule("A", 1, {"connectors": ["crowdstrike"], "operations": ["hosts:*"], "max_risk": 90, "min_risk": "80"})]},
		{"org rule #0: match.min_risk must be a number"},
	],
]

test_well_formed_policy_is_valid if {
	valid_policy(well_formed)
	errors_for(well_formed) == set()
}

test_empty_policy_is_valid if {
	valid_policy({})
	errors_for({}) == set()
}

test_malformed_policies_are_not_valid_and_say_why if {
	every case in malformed {
		not valid_policy(case[0])
		errors_for(case[0]) == case[1]
	}
}
