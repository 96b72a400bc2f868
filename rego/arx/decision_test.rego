package arx_test

import data.arx

agent := {
	"id": "7a0c1b7e-0000-4000-8000-000000000001",
	"name": "triage-bot",
	"intent": {"purpose": "triage alerts", "scope": {"crowdstrike": ["hosts:search", "hosts:get"]}},
}

quiet_window := {"actions": 0, "non_read": 0, "denied": 0, "targets": 0, "kinds": {"read": 0, "write": 0, "containment": 0, "destructive": 0}}

read_input := {
	"agent": agent,
	"org": {"id": "7a0c1b7e-0000-4000-8000-0000000000aa", "slug": "acme"},
	"connector": "crowdstrike",
	"operation": operation("crowdstrike", "hosts:search"),
	"params": {"filter": "hostname:'web-1'"},
	"target_count": 0,
	"session_context": {"recent": [], "windows": {"1m": quiet_window, "5m": quiet_window, "60m": quiet_window}},
	"now": "2026-11-25T17:05:00Z",
	"now_ns": 1795626300000000000,
}

# An operation as ARX puts it in the input, from the operation tables
# (data.arx.catalog, generated from them and checked in CI): never a copy.
operation(connector, name) := {
	"name": name,
	"kind": op.kind,
	"base_risk": op.base_risk,
	"reversible": op.reversible,
	"target_type": op.target_type,
} if op := data.arx.catalog[connector][name]

contain_input := object.union(read_input, {"operation": operation("crowdstrike", "hosts:contain")})

# No Falcon operation is a write: a host search relabelled as one tests the
# kind's rules (test_the_relabelled_operations_exist_nowhere keeps it honest).
write_input := object.union(read_input, {"operation": {"name": "hosts:tag", "kind": "write", "base_risk": 30}})

test_the_relabelled_operations_exist_nowhere if {
	not data.arx.catalog.crowdstrike["hosts:tag"]
	not data.arx.catalog.crowdstrike["hosts:delete"]
	every _, ops in data.arx.catalog {
		every _, op in ops {
			op.kind != "destructive"
		}
	}
}

acme := {
	"defaults": {"read": "PERMIT", "write": "ESCALATE", "containment": "ESCALATE", "destructive": "DENY"},
	"rules": [
		{
			"id": "AC-010",
			"priority": 10,
			"description": "Deny high risk",
			"verdict": "DENY",
			"match": {"min_risk": 80},
		},
		{
			"id": "AC-020",
			"priority": 20,
			"description": "Containment needs approval",
			"verdict": "ESCALATE",
			"match": {"connectors": ["crowdstrike"], "operations": ["hosts:*"], "kinds": ["containment"]},
		},
	],
}

orgs := {"acme": acme}

shape_ok(d) if {
	required := {"verdict", "risk_score", "policy_id", "reasons"}
	object.keys(d) - {"approvals_required", "approval_ttl_seconds"} == required
	required - object.keys(d) == set()
	d.verdict in {"PERMIT", "ESCALATE", "DENY"}
	is_number(d.risk_score)
	d.risk_score == floor(d.risk_score)
	d.risk_score >= 0
	d.risk_score <= 100
	is_array(d.reasons)
	every r in d.reasons {
		is_string(r)
	}
}

test_read_in_scope_falls_to_org_default_permit if {
	d := arx.decision with input as read_input with data.orgs as orgs
	d == {
		"verdict": "PERMIT",
		"risk_score": 10,
		"policy_id": "default:read",
		"reasons": ["no rule matched; org default for read operations is PERMIT"],
	}
}

test_write_outside_manifest_raises_risk_and_escalates_by_default if {
	d := arx.decision with input as write_input with data.orgs as orgs
	d.verdict == "ESCALATE"
	d.policy_id == "default:write"
	d.risk_score == 70
	d.reasons == [
		"no rule matched; org default for write operations is ESCALATE",
		"operation outside declared intent: crowdstrike hosts:tag",
	]
}

test_high_risk_rule_denies_out_of_scope_containment if {
	d := arx.decision with input as contain_input with data.orgs as orgs
	d == {
		"verdict": "DENY",
		"risk_score": 100,
		"policy_id": "AC-010",
		"reasons": ["Deny high risk", "operation outside declared intent: crowdstrike hosts:contain"],
	}
}

test_in_scope_containment_escalates_by_rule if {
	i := object.union(contain_input, {"agent": {"intent": {"scope": {"crowdstrike": ["hosts:*"]}}}})
	d := arx.decision with input as i with data.orgs as orgs
	d == {
		"verdict": "ESCALATE",
		"risk_score": 60,
		"policy_id": "AC-020",
		"reasons": ["Containment needs approval"],
	}
}

test_lowest_priority_number_wins_regardless_of_list_order if {
	rules := [
		{"id": "Z-late", "priority": 50, "verdict": "DENY", "description": "late"},
		{"id": "A-early", "priority": 5, "verdict": "PERMIT", "description": "early"},
	]
	d := arx.decision with input as read_input with data.orgs as {"acme": {"rules": rules}}
	d.policy_id == "A-early"
	d.verdict == "PERMIT"
	d.reasons == ["early"]
}

test_priority_tie_is_broken_by_id if {
	rules := [
		{"id": "R-2", "priority": 10, "verdict": "DENY", "description": "second by id"},
		{"id": "R-1", "priority": 10, "verdict": "ESCALATE", "description": "first by id"},
	]
	d := arx.decision with input as read_input with data.orgs as {"acme": {"rules": rules}}
	d.policy_id == "R-1"
	d.verdict == "ESCALATE"
}

test_rule_without_description_gets_a_generated_reason if {
	rules := [{"id": "R-1", "priority": 1, "verdict": "PERMIT"}]
	d := arx.decision with input as read_input with data.orgs as {"acme": {"rules": rules}}
	d.reasons == ["org rule R-1 matched"]
}

test_missing_default_for_kind_escalates if {
	org := {"defaults": {"read": "PERMIT"}, "rules": []}
	d := arx.decision with input as write_input with data.orgs as {"acme": org}
	d.verdict == "ESCALATE"
	d.policy_id == "default:write"
	d.reasons[0] == "no rule matched and the org sets no default for write operations; escalating"
}

test_org_without_defaults_or_rules_escalates_even_reads if {
	d := arx.decision with input as read_input with data.orgs as {"acme": {}}
	d.verdict == "ESCALATE"
	d.policy_id == "default:read"
}

test_org_default_deny_is_honoured if {
	i := object.union(read_input, {"operation": {"name": "hosts:delete", "kind": "destructive", "base_risk": 10}})
	d := arx.decision with input as i with data.orgs as {"acme": {"defaults": {"destructive": "DENY"}}}
	d.verdict == "DENY"
	d.policy_id == "default:destructive"
}

test_no_org_policy_denies if {
	d := arx.decision with input as read_input with data.orgs as {"other": acme}
	d == {
		"verdict": "DENY",
		"risk_score": 100,
		"policy_id": "arx.no_org_policy",
		"reasons": ["no policy bundle is active for org \"acme\""],
	}
}

test_no_orgs_at_all_denies if {
	d := arx.decision with input as read_input
	d.verdict == "DENY"
	d.policy_id == "arx.no_org_policy"
}

test_missing_operation_is_invalid_input if {
	d := arx.decision with input as object.remove(read_input, ["operation"]) with data.orgs as orgs
	d.verdict == "DENY"
	d.risk_score == 100
	d.policy_id == "arx.invalid_input"
	"input.operation must be an object" in d.reasons
}

test_missing_agent_is_invalid_input if {
	d := arx.decision with input as object.remove(read_input, ["agent"]) with data.orgs as orgs
	d.policy_id == "arx.invalid_input"
	d.reasons == ["input.agent must be an object", "input.agent.name must be a string"]
}

test_missing_org_is_invalid_input if {
	d := arx.decision with input as object.remove(read_input, ["org"]) with data.orgs as orgs
	d.policy_id == "arx.invalid_input"
	d.verdict == "DENY"
}

test_unknown_kind_is_invalid_input if {
	i := object.union(read_input, {"operation": {"kind": "admin"}})
	d := arx.decision with input as i with data.orgs as orgs
	d.policy_id == "arx.invalid_input"
	d.reasons == ["input.operation.kind must be one of read, write, containment, destructive"]
}

test_non_numeric_base_risk_is_invalid_input if {
	i := object.union(read_input, {"operation": {"base_risk": "60"}})
	d := arx.decision with input as i with data.orgs as orgs
	d.policy_id == "arx.invalid_input"
	d.reasons == ["input.operation.base_risk must be a number"]
}

test_missing_now_ns_is_invalid_input if {
	d := arx.decision with input as object.remove(read_input, ["now_ns"]) with data.orgs as orgs
	d.policy_id == "arx.invalid_input"
	d.reasons == ["input.now_ns must be a number (nanoseconds since the Unix epoch)"]
}

test_recent_entry_without_at_ns_is_invalid_input if {
	entry := {"connector": "crowdstrike", "operation": "hosts:get", "kind": "read", "verdict": "PERMIT"}
	i := json.patch(read_input, [{"op": "replace", "path": "/session_context/recent", "value": [object.union(entry, {"at_ns": 1795626000000000000}), entry]}])
	d := arx.decision with input as i with data.orgs as orgs
	d.verdict == "DENY"
	d.risk_score == 100
	d.policy_id == "arx.invalid_input"
	d.reasons == ["input.session_context.recent[1] must be an object with a numeric \"at_ns\" (nanoseconds since the Unix epoch)"]
}

test_missing_session_summary_is_invalid_input if {
	# ARX always sends the summary; without it the windows would read as zero.
	d := arx.decision with input as object.remove(read_input, ["session_context"]) with data.orgs as orgs
	d.policy_id == "arx.invalid_input"
	d.reasons == ["input.session_context must be an object with \"recent\" and \"windows\""]
}

test_non_integer_window_count_is_invalid_input if {
	i := json.patch(read_input, [{"op": "replace", "path": "/session_context/windows/5m/non_read", "value": "7"}])
	d := arx.decision with input as i with data.orgs as orgs
	d.policy_id == "arx.invalid_input"
	d.reasons == ["input.session_context.windows[\"5m\"].non_read must be a non-negative integer"]
}

test_empty_input_is_invalid_input if {
	d := arx.decision with input as {} with data.orgs as orgs
	d.verdict == "DENY"
	d.policy_id == "arx.invalid_input"
}

test_invalid_input_wins_over_missing_org if {
	i := object.union(object.remove(read_input, ["now_ns"]), {"org": {"slug": "nobody"}})
	d := arx.decision with input as i with data.orgs as orgs
	d.policy_id == "arx.invalid_input"
}

test_malformed_winning_rule_denies if {
	rules := [{"id": "BAD", "priority": 1, "verdict": "ALLOW"}]
	d := arx.decision with input as read_input with data.orgs as {"acme": {"rules": rules}}
	d == {
		"verdict": "DENY",
		"risk_score": 100,
		"policy_id": "arx.invalid_org_policy",
		"reasons": ["org rule #0: verdict must be one of PERMIT, ESCALATE, DENY"],
	}
}

test_malformed_org_default_denies if {
	d := arx.decision with input as read_input with data.orgs as {"acme": {"defaults": {"read": "ALLOW"}}}
	d == {
		"verdict": "DENY",
		"risk_score": 100,
		"policy_id": "arx.invalid_org_policy",
		"reasons": ["org default for read must be one of PERMIT, ESCALATE, DENY"],
	}
}

test_malformed_rule_that_may_match_denies if {
	# min_risk "80" would compare as greater than any number: a silent skip.
	rules := [{"id": "HIGH", "priority": 1, "verdict": "DENY", "match": {"min_risk": "80"}}]
	d := arx.decision with input as contain_input with data.orgs as {"acme": {"defaults": {"containment": "PERMIT"}, "rules": rules}}
	d.verdict == "DENY"
	d.policy_id == "arx.invalid_org_policy"
	d.reasons == ["org rule #0: match.min_risk must be a number"]
}

test_rule_with_broken_priority_is_never_skipped if {
	# "1" is not a number: the rule ranks first, so a PERMIT rule below it
	# cannot let the call through.
	rules := [
		{"id": "OK", "priority": 100, "verdict": "PERMIT", "description": "reads are fine"},
		{"id": "STOP", "priority": "1", "verdict": "DENY", "description": "stop everything"},
	]
	d := arx.decision with input as read_input with data.orgs as {"acme": {"rules": rules}}
	d.policy_id == "arx.invalid_org_policy"
	d.reasons == ["org rule #1: priority must be a number"]
}

test_rule_with_broken_field_is_never_skipped if {
	# connectors is a string, not a list: the DENY rule holds and wins.
	rules := [
		{"id": "OK", "priority": 100, "verdict": "PERMIT"},
		{"id": "STOP", "priority": 1, "verdict": "DENY", "match": {"connectors": "crowdstrike"}},
	]
	d := arx.decision with input as read_input with data.orgs as {"acme": {"rules": rules}}
	d.policy_id == "arx.invalid_org_policy"
	d.reasons == ["org rule #1: match.connectors must be a list of strings"]
}

test_malformed_rule_for_another_connector_does_not_block if {
	rules := [{"id": "S1", "priority": 1, "verdict": "DENY", "match": {"connectors": ["sentinelone"], "min_risk": "80"}}]
	d := arx.decision with input as read_input with data.orgs as {"acme": {"defaults": {"read": "PERMIT"}, "rules": rules}}
	d.verdict == "PERMIT"
	d.policy_id == "default:read"
}

test_malformed_rule_after_the_winner_does_not_block if {
	rules := [
		{"id": "FIRST", "priority": 1, "verdict": "ESCALATE", "description": "first"},
		{"id": "LATER", "priority": 2, "verdict": "ALLOW"},
	]
	d := arx.decision with input as read_input with data.orgs as {"acme": {"rules": rules}}
	d.policy_id == "FIRST"
	d.verdict == "ESCALATE"
}

test_malformed_default_for_another_kind_does_not_block if {
	d := arx.decision with input as read_input with data.orgs as {"acme": {"defaults": {"read": "PERMIT", "write": "ALLOW"}}}
	d.verdict == "PERMIT"
}

test_policy_of_the_wrong_shape_denies if {
	d := arx.decision with input as read_input with data.orgs as {"acme": {"rules": {"R-1": {"id": "R-1", "priority": 1, "verdict": "PERMIT"}}}}
	d.policy_id == "arx.invalid_org_policy"
	d.reasons == ["org policy rules must be an array"]
}

# Stands in for round() to make the risk score undefined.
undefined_number(_) := 0 if false

test_undefined_risk_falls_to_default_deny if {
	d := arx.decision with input as read_input with data.orgs as orgs with round as undefined_number
	d == {
		"verdict": "DENY",
		"risk_score": 100,
		"policy_id": "arx.default_deny",
		"reasons": ["no policy produced a decision"],
	}
}

test_every_path_returns_the_contract_shape if {
	shape_ok(arx.decision) with input as read_input with data.orgs as orgs
	shape_ok(arx.decision) with input as contain_input with data.orgs as orgs
	shape_ok(arx.decision) with input as write_input with data.orgs as {"acme": {}}
	shape_ok(arx.decision) with input as read_input
	shape_ok(arx.decision) with input as {}
	shape_ok(arx.decision) with input as read_input with data.orgs as {"acme": {"rules": "nope"}}
	shape_ok(arx.decision) with input as read_input with data.orgs as orgs with round as undefined_number
}

test_explain_lists_sorted_errors_or_a_generic_reason if {
	arx.explain({"b", "a"}, "generic") == ["a", "b"]
	arx.explain(set(), "generic") == ["generic"]
}

approved := {"id": "5f0c1b7e-0000-4000-8000-0000000000ff", "status": "approved"}

# Containment inside the agent's declared intent: AC-020 escalates it.
in_scope_contain := object.union(contain_input, {"agent": {"intent": {"scope": {"crowdstrike": ["hosts:*"]}}}})

test_an_approved_escalation_runs if {
	d := arx.decision with input as object.union(in_scope_contain, {"approval": approved}) with data.orgs as orgs
	shape_ok(d)
	d.verdict == "PERMIT"
	d.policy_id == "AC-020"
	d.reasons[0] == "approved by reviewers (approval 5f0c1b7e-0000-4000-8000-0000000000ff)"
}

test_an_escalation_without_approval_still_escalates if {
	d := arx.decision with input as in_scope_contain with data.orgs as orgs
	d.verdict == "ESCALATE"
	d.policy_id == "AC-020"
}

test_an_approval_never_overrides_a_denial if {
	deny := object.union(acme, {"defaults": object.union(acme.defaults, {"containment": "DENY"}), "rules": []})
	d := arx.decision with input as object.union(in_scope_contain, {"approval": approved}) with data.orgs as {"acme": deny}
	d.verdict == "DENY"
	d.policy_id == "default:containment"
}

two_person := object.union(acme, {"rules": [object.union(acme.rules[1], {"approval": {"required": 2, "ttl_seconds": 900}})]})

test_an_escalating_rule_carries_its_approval_terms if {
	d := arx.decision with input as in_scope_contain with data.orgs as {"acme": two_person}
	shape_ok(d)
	d.verdict == "ESCALATE"
	d.approvals_required == 2
	d.approval_ttl_seconds == 900
}

test_an_escalation_without_terms_leaves_them_to_arx if {
	d := arx.decision with input as in_scope_contain with data.orgs as orgs
	not "approvals_required" in object.keys(d)
	not "approval_ttl_seconds" in object.keys(d)
}

test_the_approved_call_does_not_carry_approval_terms if {
	d := arx.decision with input as object.union(in_scope_contain, {"approval": approved}) with data.orgs as {"acme": two_person}
	d.verdict == "PERMIT"
	not "approvals_required" in object.keys(d)
}

test_approval_terms_on_a_denying_rule_make_the_policy_malformed if {
	bad := object.union(acme, {"rules": [object.union(acme.rules[0], {"approval": {"required": 2}})]})
	d := arx.decision with input as object.union(contain_input, {"operation": {"base_risk": 100}}) with data.orgs as {"acme": bad}
	d.verdict == "DENY"
	d.policy_id == "arx.invalid_org_policy"
}
