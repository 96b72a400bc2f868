package arx.org_test

import data.arx.org

counts(actions, reads, containments, denied) := {
	"actions": actions,
	"non_read": actions - reads,
	"denied": denied,
	"targets": actions - reads,
	"kinds": {"read": reads, "write": (actions - reads) - containments, "containment": containments, "destructive": 0},
}

call := {
	"agent": {"id": "a", "name": "responder-bot", "intent": {"scope": {"crowdstrike": ["hosts:*"]}}},
	"org": {"id": "o", "slug": "acme"},
	"connector": "crowdstrike",
	"operation": {"name": "hosts:contain", "kind": "containment", "base_risk": 60},
	"params": {"ids": ["h1"]},
	"target_count": 1,
	"session_context": {"recent": [], "windows": {
		"1m": counts(1, 0, 1, 0),
		"5m": counts(6, 2, 3, 1),
		"60m": counts(40, 30, 4, 2),
	}},
	"now": "2026-11-25T17:05:00Z",
	"now_ns": 1795626300000000000,
}

rule(id, priority, match) := {"id": id, "priority": priority, "verdict": "ESCALATE", "description": id, "match": match}

# The call (responder-bot, crowdstrike hosts:contain, containment, risk 60)
# matches a single rule with this match.
matches(match) if {
	count(org.candidates) == 1 with input as call with data.orgs as {"acme": {"rules": [rule("A", 1, match)]}}
}

winner_id(policy) := id if {
	id := org.winner.id with input as call with data.orgs as {"acme": policy}
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
	matches({"min_counts": {"5m": {"containment": 3, "actions": 6}, "60m": {"denied": 2}}})
}

test_each_match_field_can_reject if {
	not matches({"connectors": ["sentinelone"]})
	not matches({"operations": ["detects:*"]})
	not matches({"agents": ["triage-bot"]})
	not matches({"kinds": ["read"]})
	not matches({"min_risk": 61})
	not matches({"max_risk": 59})
	not matches({"min_counts": {"5m": {"containment": 4}}})
	not matches({"min_counts": {"5m": {"containment": 3}, "1m": {"non_read": 2}}})
}

test_all_present_fields_must_hold if {
	not matches({"connectors": ["crowdstrike"], "agents": ["triage-bot"]})
	matches({"connectors": ["crowdstrike"], "agents": ["responder-bot"], "operations": ["hosts:contain"]})
}

test_empty_list_matches_nothing if {
	not matches({"agents": []})
	not matches({"operations": []})
	not matches({"kinds": []})
}

test_operation_glob_does_not_cross_delimiter if {
	not matches({"operations": ["*"]})
	matches({"operations": ["**"]})
	matches({"operations": ["*:contain"]})
}

test_min_counts_reads_window_counts_and_kinds if {
	org.window_count("5m", "containment") == 3 with input as call
	org.window_count("5m", "non_read") == 4 with input as call
	org.window_count("60m", "denied") == 2 with input as call
}

test_more_than_three_containments_in_five_minutes if {
	# "More than K containments in M minutes": min_counts {M: {containment: K+1}}.
	spree := json.patch(call, [{"op": "replace", "path": "/session_context/windows/5m", "value": counts(4, 0, 4, 0)}])
	rules := [rule("SPREE", 1, {"kinds": ["containment"], "min_counts": {"5m": {"containment": 4}}})]
	org.winner.id == "SPREE" with input as spree with data.orgs as {"acme": {"rules": rules}}
	not org.winner with input as call with data.orgs as {"acme": {"rules": rules}}
}

test_rules_match_independently if {
	rules := [rule("A", 1, {"kinds": ["read"]}), rule("B", 2, {}), rule("C", 3, {"agents": ["responder-bot"]})]
	org.candidates == {[2, "B", 1], [3, "C", 2]} with input as call with data.orgs as {"acme": {"rules": rules}}
}

test_first_candidate_by_priority_then_id_then_position_wins if {
	rules := [
		rule("B", 5, {}),
		rule("A", 5, {}),
		rule("C", 1, {"agents": ["someone-else"]}),
		rule("D", 2, {}),
		rule("A", 5, {}),
	]
	org.candidates == {[2, "D", 3], [5, "A", 1], [5, "A", 4], [5, "B", 0]} with input as call with data.orgs as {"acme": {"rules": rules}}
	winner_id({"rules": rules}) == "D"
	winner_id({"rules": array.slice(rules, 0, 3)}) == "A"
	org.winner == rules[1] with input as call with data.orgs as {"acme": {"rules": array.slice(rules, 0, 3)}}
}

test_fractional_priorities_sort_numerically if {
	winner_id({"rules": [rule("A", 10, {}), rule("B", 9.5, {})]}) == "B"
}

test_no_matching_rule_leaves_winner_undefined if {
	rules := [rule("A", 1, {"kinds": ["read"]})]
	not org.winner with input as call with data.orgs as {"acme": {"rules": rules}}
	org.default_applies with input as call with data.orgs as {"acme": {"rules": rules}}
}

test_rule_without_match_matches_everything if {
	winner_id({"rules": [object.remove(rule("A", 1, {}), ["match"])]}) == "A"
}

test_risk_bounds_use_the_intent_score if {
	# responder-bot is in scope, so the score is the base risk (60); out of
	# scope it would be 100.
	rules := [rule("LOW", 1, {"max_risk": 60})]
	winner_id({"rules": rules}) == "LOW"
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

problems_for(policy) := problems if {
	problems := org.problems with input as call with data.orgs as {"acme": policy}
}

deciding_id(policy) := id if {
	id := org.deciding_rule.id with input as call with data.orgs as {"acme": policy}
}

test_well_formed_policy_is_usable if {
	usable_for(well_formed)
	usable_for({})
	deciding_id(well_formed) == "A"
}

# A broken match field counts as holding: the rule stays a candidate, ranks
# where its priority puts it, and if it wins the call is DENY.

test_wrongly_typed_match_field_counts_as_holding if {
	# A DENY rule with min_risk "80" must not be skipped as "not matching".
	policy := {"rules": [rule("A", 1, {"min_risk": "80"})]}
	winner_id(policy) == "A"
	not usable_for(policy)
	problems_for(policy) == {"org rule #0: match.min_risk must be a number"}
}

test_list_with_a_non_string_item_counts_as_holding if {
	# ["sentinelone", 7]: a repaired 7 could name this connector.
	policy := {"rules": [rule("A", 1, {"connectors": ["sentinelone", 7]})]}
	winner_id(policy) == "A"
	problems_for(policy) == {"org rule #0: match.connectors must be a list of strings"}
	matches({"agents": "responder-bot"})
	matches({"kinds": "containment"})
	matches({"kinds": ["read", ["containment"]]})
}

test_malformed_glob_counts_as_holding if {
	# glob.match is undefined on "hosts:[": it must not read as "does not match".
	policy := {"rules": [rule("A", 1, {"operations": ["detects:*", "hosts:["]})]}
	winner_id(policy) == "A"
	not usable_for(policy)
	problems_for(policy) == {"org rule #0: match.operations must be a list of valid glob patterns"}
}

test_exact_operation_name_holds_even_beside_a_bad_glob if {
	# The call is named in the list, so the rule matches under any repair; it
	# still may not decide while malformed.
	policy := {"rules": [rule("A", 1, {"operations": ["hosts:contain", "hosts:["]})]}
	winner_id(policy) == "A"
	not usable_for(policy)
}

test_unknown_match_field_counts_as_holding if {
	policy := {"rules": [rule("A", 1, {"agent": ["triage-bot"], "kinds": ["containment"]})]}
	winner_id(policy) == "A"
	not usable_for(policy)
	problems_for(policy) == {"org rule #0: match.agent is not a match field (connectors, operations, agents, kinds, min_risk, max_risk, min_counts, params)"}
}

test_broken_min_counts_counts_as_holding if {
	matches({"min_counts": {"5m": {"containment": "4"}}})
	matches({"min_counts": {"2m": {"containment": 4}}})
	matches({"min_counts": {"5m": {"containments": 4}}})
	matches({"min_counts": {"5m": 4}})
	matches({"min_counts": ["5m"]})
	not usable_for({"rules": [rule("A", 1, {"min_counts": {"2m": {"containment": 4}}})]})
}

test_broken_rule_rejected_by_a_well_formed_field_is_not_a_candidate if {
	# connectors rejects the call, so no reading of min_risk could make it match.
	policy := {"defaults": {"containment": "PERMIT"}, "rules": [rule("A", 1, {"connectors": ["sentinelone"], "min_risk": "80"})]}
	org.candidates == set() with input as call with data.orgs as {"acme": policy}
	usable_for(policy)
	not org.valid with input as call with data.orgs as {"acme": policy}
}

test_broken_rule_ranked_after_a_well_formed_winner_does_not_block if {
	# Whatever the broken rule meant, the well-formed rule before it wins.
	policy := {"rules": [rule("GOOD", 1, {}), rule("BAD", 2, {"min_risk": "80"})]}
	deciding_id(policy) == "GOOD"
	not org.valid with input as call with data.orgs as {"acme": policy}
}

test_broken_priority_ranks_before_every_number if {
	# A priority of "5" (or none) might have meant anything: it ranks first,
	# wins, and the call is DENY rather than silently decided by rule GOOD.
	every priority in ["5", null, true, {"p": 1}, [1]] {
		policy := {"rules": [rule("GOOD", -1000, {}), rule("BAD", priority, {})]}
		winner_id(policy) == "BAD"
		not usable_for(policy)
		problems_for(policy) == {"org rule #1: priority must be a number"}
	}
	missing := {"rules": [rule("GOOD", 1, {}), object.remove(rule("BAD", 2, {}), ["priority"])]}
	winner_id(missing) == "BAD"
	not usable_for(missing)
}

test_broken_id_ranks_before_every_string_of_the_same_priority if {
	policy := {"rules": [rule("AAA", 5, {}), object.union(rule("X", 5, {}), {"id": 7})]}
	org.winner.id == 7 with input as call with data.orgs as {"acme": policy}
	not usable_for(policy)
	problems_for(policy) == {"org rule #1: id must be a string"}

	# A lower priority still wins over it.
	deciding_id({"rules": [rule("AAA", 4, {}), object.union(rule("X", 5, {}), {"id": 7})]}) == "AAA"
}

test_rule_that_is_not_an_object_counts_as_holding_and_ranks_first if {
	policy := {"rules": [rule("GOOD", 1, {}), 42]}
	org.winner == 42 with input as call with data.orgs as {"acme": policy}
	not usable_for(policy)
	problems_for(policy) == {"org rule #1: must be an object"}
	not usable_for({"rules": [false]})
	not usable_for({"rules": [rule("A", 1, "hosts:*")]})
}

test_broken_verdict_or_description_of_the_winner_denies if {
	not usable_for({"rules": [object.union(rule("A", 1, {}), {"verdict": "ALLOW"})]})
	not usable_for({"rules": [object.union(rule("A", 1, {}), {"description": 7})]})
	problems_for({"rules": [object.union(rule("A", 1, {}), {"verdict": "deny"})]}) == {"org rule #0: verdict must be one of PERMIT, ESCALATE, DENY"}

	# Not the winner: the well-formed rule before it decides.
	usable_for({"rules": [rule("A", 1, {}), object.union(rule("B", 2, {}), {"verdict": "ALLOW"})]})
}

test_policy_of_the_wrong_shape_is_not_usable if {
	not usable_for({"rules": {"id": "A"}})
	not usable_for({"rules": {"x": rule("A", 1, {})}})
	not usable_for({"defaults": ["PERMIT"]})
	not usable_for({"defaults": ["PERMIT"], "rules": [rule("A", 1, {})]})
	not usable_for("rules")
	problems_for({"defaults": ["PERMIT"]}) == {"org policy defaults must be an object"}
	problems_for("rules") == {"org policy must be an object"}
}

test_broken_default_blocks_only_its_kind if {
	not usable_for({"defaults": {"containment": "ALLOW"}})
	not usable_for({"defaults": {"containment": false}})
	problems_for({"defaults": {"containment": "ALLOW"}}) == {"org default for containment must be one of PERMIT, ESCALATE, DENY"}
	usable_for({"defaults": {"write": "ALLOW"}})

	# A matching rule decides before the default is read.
	usable_for({"defaults": {"containment": "ALLOW"}, "rules": [rule("A", 1, {})]})
}

errors_for(policy) := errors if {
	errors := org.errors with input as call with data.orgs as {"acme": policy}
}

valid_policy(policy) if org.valid with input as call with data.orgs as {"acme": policy}

well_formed := {
	"defaults": {"read": "PERMIT", "write": "ESCALATE"},
	"rules": [
		rule("A", 1, {
			"connectors": ["crowdstrike"],
			"min_risk": 10,
			"max_risk": 90.5,
			"min_counts": {"5m": {"containment": 1, "non_read": 2}, "60m": {"actions": 1}},
		}),
		{"id": "B", "priority": 2, "verdict": "DENY"},
		object.union(rule("C", 3, {}), {"approval": {"required": 2, "ttl_seconds": 900}}),
		object.union(rule("D", 4, {}), {"approval": {}}),
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
	[{"rules": [rule("A", 1, {"agent": ["triage-bot"]})]}, {"org rule #0: match.agent is not a match field (connectors, operations, agents, kinds, min_risk, max_risk, min_counts, params)"}],
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
				"min_counts": {"5m": {"containment": "3"}},
			}),
		]},
		{
			"org rule #1: match.connectors must be a list of strings",
			"org rule #1: match.operations must be a list of valid glob patterns",
			"org rule #1: match.agents must be a list of strings",
			"org rule #1: match.kinds must be a list of strings",
			"org rule #1: match.min_risk must be a number",
			"org rule #1: match.max_risk must be a number",
			"org rule #1: match.min_counts must map windows (1m, 5m, 60m) to counts (actions, non_read, denied, targets, or a kind) and numbers",
		},
	],
	[{"rules": [rule("A", 1, {"min_counts": {"15m": {"actions": 1}}})]}, {"org rule #0: match.min_counts must map windows (1m, 5m, 60m) to counts (actions, non_read, denied, targets, or a kind) and numbers"}],
	[{"rules": [rule("A", 1, {"min_counts": {"5m": {"kinds": 1}}})]}, {"org rule #0: match.min_counts must map windows (1m, 5m, 60m) to counts (actions, non_read, denied, targets, or a kind) and numbers"}],
	[{"rules": [rule("A", 1, {}), rule("A", 2, {})]}, {"org rule id A is used more than once"}],
	[{"rules": [{"id": "A", "priority": 1, "verdict": "DENY", "approval": {"required": 2}}]}, {"org rule #0: approval must be {\"required\": 1..5, \"ttl_seconds\": 60..604800} on an ESCALATE rule"}],
	[{"rules": [object.union(rule("A", 1, {}), {"approval": {"required": 6}})]}, {"org rule #0: approval must be {\"required\": 1..5, \"ttl_seconds\": 60..604800} on an ESCALATE rule"}],
	[{"rules": [object.union(rule("A", 1, {}), {"approval": {"required": 1.5}})]}, {"org rule #0: approval must be {\"required\": 1..5, \"ttl_seconds\": 60..604800} on an ESCALATE rule"}],
	[{"rules": [object.union(rule("A", 1, {}), {"approval": {"ttl_seconds": 30}})]}, {"org rule #0: approval must be {\"required\": 1..5, \"ttl_seconds\": 60..604800} on an ESCALATE rule"}],
	[{"rules": [object.union(rule("A", 1, {}), {"approval": {"quorum": 2}})]}, {"org rule #0: approval must be {\"required\": 1..5, \"ttl_seconds\": 60..604800} on an ESCALATE rule"}],
	[{"rules": [object.union(rule("A", 1, {}), {"approval": 2})]}, {"org rule #0: approval must be {\"required\": 1..5, \"ttl_seconds\": 60..604800} on an ESCALATE rule"}],
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

test_missing_policy_is_not_valid_and_says_so if {
	not org.valid with input as call with data.orgs as {"other": {}}
	org.errors == {"no org policy at data.orgs[\"acme\"]"} with input as call with data.orgs as {"other": {}}
}

test_malformed_policies_are_not_valid_and_say_why if {
	every case in malformed {
		not valid_policy(case[0])
		errors_for(case[0]) == case[1]
	}
}

# match.params: conditions on the call's arguments.

# The call with these params (and the targets they name).
with_params(params) := json.patch(call, [{"op": "replace", "path": "/params", "value": params}])

bulk_params := {
	"ids": ["h1", "h2", "h3"],
	"filter": "hostname:'web-1'",
	"limit": 50,
	"sort": null,
	"options": {"mode": "fast", "depth": 2},
}

# The bulk call matches a single rule with these params conditions.
params_match(params, conditions) if {
	count(org.candidates) == 1 with input as with_params(params)
		with data.orgs as {"acme": {"rules": [rule("A", 1, {"params": conditions})], "lists": object.union(lists, {"broken": ["h3", 7]})}}
}

lists := {"critical_hosts": ["h3", "h9"], "quiet_hosts": ["h7"]}

test_each_params_operator_holds if {
	every conditions in [
		{"limit": {"eq": 50}},
		{"options": {"eq": {"depth": 2, "mode": "fast"}}},
		{"sort": {"eq": null}},
		{"limit": {"in": [10, 50]}},
		{"filter": {"not_in": ["hostname:'db-1'"]}},
		{"limit": {"gt": 49}},
		{"limit": {"gte": 50}},
		{"limit": {"lt": 51}},
		{"limit": {"lte": 50}},
		{"filter": {"glob": "hostname:*"}},
		{"ids": {"count_gt": 2}},
		{"ids": {"count_gte": 3}},
		{"ids": {"count_lt": 4}},
		{"ids": {"count_lte": 3}},
		{"filter": {"count_lte": 1}},
		{"ids": {"any_in": ["h2", "h8"]}},
		{"ids": {"any_in": {"data": "critical_hosts"}}},
		{"filter": {"any_in": ["hostname:'web-1'"]}},
		{"ids": {"none_in": {"data": "quiet_hosts"}}},
		{"options.mode": {"eq": "fast"}},
		{"options.depth": {"gte": 2}},
	] {
		params_match(bulk_params, conditions)
	}
}

test_each_params_operator_can_reject if {
	every conditions in [
		{"limit": {"eq": 51}},
		{"limit": {"eq": "50"}},
		{"limit": {"in": [10, 20]}},
		{"limit": {"not_in": [50]}},
		{"limit": {"gt": 50}},
		{"limit": {"gte": 51}},
		{"limit": {"lt": 50}},
		{"limit": {"lte": 49}},
		{"filter": {"glob": "ip:*"}},
		{"filter": {"glob": "*"}},
		{"ids": {"count_gt": 3}},
		{"ids": {"count_gte": 4}},
		{"ids": {"count_lt": 3}},
		{"ids": {"count_lte": 2}},
		{"ids": {"any_in": ["h8"]}},
		{"ids": {"any_in": {"data": "quiet_hosts"}}},
		{"ids": {"none_in": {"data": "critical_hosts"}}},
		{"ids": {"none_in": ["h1"]}},
		{"filter": {"none_in": ["hostname:'web-1'"]}},
		{"options.mode": {"eq": "slow"}},
	] {
		not params_match(bulk_params, conditions)
	}
}

test_every_params_condition_must_hold if {
	params_match(bulk_params, {"ids": {"count_gt": 2}, "limit": {"eq": 50}})
	not params_match(bulk_params, {"ids": {"count_gt": 2}, "limit": {"eq": 10}})
}

test_absent_param_fails_the_condition_except_counts_and_none_in if {
	every conditions in [
		{"offset": {"eq": 0}},
		{"offset": {"in": [0]}},
		{"offset": {"not_in": [5]}},
		{"offset": {"gte": 0}},
		{"offset": {"lt": 100}},
		{"offset": {"glob": "**"}},
		{"offset": {"any_in": [0]}},
		{"options.absent": {"eq": "x"}},
		{"limit.deeper": {"eq": 50}},
		{"offset": {"count_gt": 0}},
	] {
		not params_match(bulk_params, conditions)
	}
	params_match(bulk_params, {"offset": {"count_lt": 1}})
	params_match(bulk_params, {"offset": {"count_lte": 0}})
	params_match(bulk_params, {"offset": {"none_in": [0]}})
	params_match(bulk_params, {"sort": {"count_lt": 1}})
	params_match(object.remove(bulk_params, ["ids"]), {"ids": {"none_in": {"data": "critical_hosts"}}})
}

test_a_param_of_another_type_fails_the_condition if {
	# Rego orders values of different types ("50" > 49): the comparisons must not.
	every conditions in [
		{"filter": {"gt": 1}},
		{"filter": {"lte": 1000}},
		{"limit": {"glob": "**"}},
		{"limit": {"count_gte": 0}},
		{"options": {"count_gte": 0}},
	] {
		not params_match(bulk_params, conditions)
	}
}

test_a_string_counts_as_one_item if {
	params_match({"ids": "h1"}, {"ids": {"count_lte": 1}})
	params_match({"ids": "h3"}, {"ids": {"any_in": {"data": "critical_hosts"}}})
	not params_match({"ids": "h1"}, {"ids": {"any_in": {"data": "critical_hosts"}}})
}

# A broken condition counts as holding (match more, never less).

test_malformed_params_conditions_count_as_holding if {
	every conditions in [
		{"limit": {"eq": 51, "lt": 10}},
		{"limit": {}},
		{"limit": 51},
		{"limit": [51]},
		{"limit": "eq 51"},
		{"limit": {"equals": 51}},
		{"limit": {"in": 51}},
		{"limit": {"not_in": "50"}},
		{"limit": {"gt": "100"}},
		{"ids": {"count_gt": "10"}},
		{"filter": {"glob": "ip:["}},
		{"offset": {"glob": "ip:["}},
		{"filter": {"glob": 7}},
		{"ids": {"any_in": "h8"}},
		{"ids": {"any_in": {"data": "missing"}}},
		{"ids": {"any_in": {"data": "broken"}}},
		{"ids": {"any_in": {"data": "quiet_hosts", "or": "h8"}}},
		{"ids": {"none_in": {"data": ["critical_hosts"]}}},
	] {
		params_match(bulk_params, conditions)
	}
	matches({"params": "ids"})
	matches({"params": ["ids"]})
}

test_a_broken_params_winner_is_not_usable if {
	policy := {"rules": [rule("A", 1, {"params": {"ids": {"any_in": {"data": "critical_hosts"}}}})]}
	winner_id(policy) == "A"
	not usable_for(policy)
	problems_for(policy) == {"org rule #0: match.params.ids.any_in names critical_hosts, which is not a list of strings in the org's lists"}
	usable_for(object.union(policy, {"lists": lists}))
}

params_errors_for(conditions) := errors if {
	policy := {"rules": [rule("A", 1, {"params": conditions})], "lists": lists}
	errors := org.errors with input as call with data.orgs as {"acme": policy} with data.arx.catalog as fixture_catalog
}

operators := "eq, in, not_in, gt, gte, lt, lte, glob, count_gt, count_gte, count_lt, count_lte, any_in, none_in"

test_malformed_params_conditions_say_why if {
	params_errors_for("ids") == {"org rule #0: match.params must be an object mapping param paths to conditions"}
	every case in [
		[{"ids": {"count_gt": 5, "eq": 3}}, sprintf("match.params.ids must be an object with exactly one operator (%s)", [operators])],
		[{"ids": {}}, sprintf("match.params.ids must be an object with exactly one operator (%s)", [operators])],
		[{"ids": 5}, sprintf("match.params.ids must be an object with exactly one operator (%s)", [operators])],
		[{"ids": ["x"]}, sprintf("match.params.ids must be an object with exactly one operator (%s)", [operators])],
		[{"ids": "x"}, sprintf("match.params.ids must be an object with exactly one operator (%s)", [operators])],
		[{"ids": {"size": 5}}, sprintf("match.params.ids: size is not an operator (%s)", [operators])],
		[{"ids": {"in": "h1"}}, "match.params.ids.in must be a list"],
		[{"ids": {"not_in": {}}}, "match.params.ids.not_in must be a list"],
		[{"limit": {"gte": "5"}}, "match.params.limit.gte must be a number"],
		[{"ids": {"count_gt": null}}, "match.params.ids.count_gt must be a number"],
		[{"filter": {"glob": "ip:["}}, "match.params.filter.glob must be a valid glob pattern (a string)"],
		[{"filter": {"glob": ["ip:*"]}}, "match.params.filter.glob must be a valid glob pattern (a string)"],
		[{"ids": {"any_in": "h1"}}, "match.params.ids.any_in must be a list or {\"data\": <name of one of the org's lists>}"],
		[{"ids": {"none_in": {"data": "quiet_hosts", "or": 1}}}, "match.params.ids.none_in must be a list or {\"data\": <name of one of the org's lists>}"],
		[{"ids": {"any_in": {"data": "critical_host"}}}, "match.params.ids.any_in names critical_host, which is not a list of strings in the org's lists"],
	] {
		params_errors_for(case[0]) == {concat("", ["org rule #0: ", case[1]])}
	}
}

# Validation against the catalog of the connectors' operation tables.

fixture_catalog := {
	"crowdstrike": {
		"hosts:contain": {"kind": "containment", "target_param": "ids", "params": {"ids": "array"}},
		"hosts:lift_containment": {"kind": "containment", "target_param": "ids", "params": {"ids": "array"}},
		"hosts:search": {"kind": "read", "target_param": null, "params": {"filter": "string", "limit": "integer"}},
		"hosts:tag": {
			"kind": "write",
			"target_param": "ids",
			"params": {"ids": "array", "tag": "string", "options": "object", "options.mode": "string"},
		},
	},
	"sentinelone": {"agents:isolate": {"kind": "containment", "target_param": "ids", "params": {"ids": "array"}}},
}

catalog_errors_for(match) := errors if {
	policy := {"rules": [rule("A", 1, match)], "lists": lists}
	errors := org.errors with input as call with data.orgs as {"acme": policy} with data.arx.catalog as fixture_catalog
}

catalog_valid(match) if {
	policy := {"rules": [rule("A", 1, match)], "lists": lists}
	org.valid with input as call with data.orgs as {"acme": policy} with data.arx.catalog as fixture_catalog
}

test_params_declared_by_every_reachable_operation_are_valid if {
	every match in [
		{"connectors": ["crowdstrike"], "operations": ["hosts:contain"], "params": {"ids": {"count_gt": 5}}},
		{"connectors": ["crowdstrike", "sentinelone"], "operations": ["**"], "kinds": ["containment"], "params": {"ids": {"any_in": {"data": "critical_hosts"}}}},
		{"connectors": ["crowdstrike"], "operations": ["hosts:*"], "kinds": ["write"], "params": {"options.mode": {"eq": "fast"}, "tag": {"glob": "pci-*"}}},
		{"connectors": ["crowdstrike"], "operations": ["hosts:search"], "params": {"limit": {"gt": 1000}, "filter": {"in": ["x"]}}},
		{"connectors": ["crowdstrike"], "operations": ["hosts:search"], "params": {}},
		{"connectors": ["crowdstrike"], "operations": ["hosts:search"], "agents": ["triage-bot"], "params": {"filter": {"not_in": ["x"]}}},
	] {
		catalog_valid(match)
		catalog_errors_for(match) == set()
	}
}

test_a_param_an_operation_lacks_is_refused_and_named if {
	match := {"connectors": ["crowdstrike"], "operations": ["hosts:*"], "params": {"ids": {"count_gt": 5}}}
	not catalog_valid(match)
	catalog_errors_for(match) == {"org rule #0: match.params.ids is not a param of crowdstrike hosts:search"}
	catalog_errors_for({"connectors": ["crowdstrike"], "operations": ["hosts:contain"], "params": {"hostnames": {"any_in": ["web-1"]}}}) == {"org rule #0: match.params.hostnames is not a param of crowdstrike hosts:contain"}
	catalog_errors_for({"connectors": ["crowdstrike"], "operations": ["hosts:tag"], "params": {"options.depth": {"gt": 1}}}) == {"org rule #0: match.params.options.depth is not a param of crowdstrike hosts:tag"}
}

test_params_need_connectors_and_operations_that_select_operations if {
	needs := {"org rule #0: match.params needs match.connectors and match.operations to name the operations whose params it reads"}
	catalog_errors_for({"params": {"ids": {"count_gt": 5}}}) == needs
	catalog_errors_for({"connectors": ["crowdstrike"], "params": {"ids": {"count_gt": 5}}}) == needs
	catalog_errors_for({"operations": ["hosts:contain"], "params": {"ids": {"count_gt": 5}}}) == needs
	none := {"org rule #0: match.params: match.connectors, match.operations and match.kinds select no operation of the connector catalog"}
	catalog_errors_for({"connectors": ["okta"], "operations": ["**"], "params": {"ids": {"count_gt": 5}}}) == none
	catalog_errors_for({"connectors": ["crowdstrike"], "operations": ["hosts:contain"], "kinds": ["read"], "params": {"ids": {"count_gt": 5}}}) == none
	not catalog_valid({"params": {"ids": {"count_gt": 5}}})
}

test_an_operator_must_apply_to_the_param_type if {
	catalog_errors_for({"connectors": ["crowdstrike"], "operations": ["hosts:contain"], "params": {"ids": {"gt": 5}}}) == {"org rule #0: match.params.ids.gt does not apply to crowdstrike hosts:contain's param ids (array)"}
	catalog_errors_for({"connectors": ["crowdstrike"], "operations": ["hosts:search"], "params": {"limit": {"count_gt": 5}}}) == {"org rule #0: match.params.limit.count_gt does not apply to crowdstrike hosts:search's param limit (integer)"}
	catalog_errors_for({"connectors": ["crowdstrike"], "operations": ["hosts:tag"], "params": {"options": {"glob": "*"}}}) == {"org rule #0: match.params.options.glob does not apply to crowdstrike hosts:tag's param options (object)"}
}

test_the_shipped_catalog_describes_the_crowdstrike_operations if {
	# rego/arx/catalog/data.json, generated from the operation tables.
	data.arx.catalog.crowdstrike["hosts:contain"] == {
		"kind": "containment", "base_risk": 60, "reversible": true, "target_type": "host",
		"inverse": "hosts:lift_containment", "target_param": "ids", "params": {"ids": "array"},
	}
	data.arx.catalog.crowdstrike["hosts:search"].reversible == false
	data.arx.catalog.crowdstrike["hosts:search"].params.limit == "integer"
}

with_lists(l) := {"rules": [], "lists": l}

test_lists_must_be_an_object_of_string_lists if {
	not valid_policy(with_lists(["h1"]))
	errors_for(with_lists(["h1"])) == {"org policy lists must be an object of named lists"}
	bad := with_lists({"critical_hosts": ["h1", 7], "ok": ["h2"], "flat": "h3"})
	not valid_policy(bad)
	errors_for(bad) == {"org list critical_hosts must be a list of strings", "org list flat must be a list of strings"}
	valid_policy(with_lists({"critical_hosts": ["h1"], "none": []}))
}
