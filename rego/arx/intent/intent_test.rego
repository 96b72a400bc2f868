package arx.intent_test

import data.arx.intent

# One window of counts: actions split into reads and writes.
window(reads, writes, denied) := {
	"actions": reads + writes,
	"non_read": writes,
	"denied": denied,
	"targets": writes,
	"kinds": {"read": reads, "write": writes, "containment": 0, "destructive": 0},
}

quiet_window := window(0, 0, 0)

call := {
	"agent": {
		"id": "7a0c1b7e-0000-4000-8000-000000000001",
		"name": "triage-bot",
		"intent": {"purpose": "triage alerts", "scope": {"crowdstrike": ["hosts:search", "hosts:get"]}},
	},
	"org": {"id": "7a0c1b7e-0000-4000-8000-0000000000aa", "slug": "acme"},
	"connector": "crowdstrike",
	"operation": {
		"name": "hosts:search",
		"kind": data.arx.catalog.crowdstrike["hosts:search"].kind,
		"base_risk": data.arx.catalog.crowdstrike["hosts:search"].base_risk,
		"reversible": data.arx.catalog.crowdstrike["hosts:search"].reversible,
		"target_type": data.arx.catalog.crowdstrike["hosts:search"].target_type,
	},
	"params": {},
	"target_count": 0,
	"session_context": {"recent": [], "windows": {"1m": quiet_window, "5m": quiet_window, "60m": quiet_window}},
	"now": "2026-11-25T17:05:00Z",
	"now_ns": 1795626300000000000,
}

with_operation(name, kind, base_risk) := object.union(call, {"operation": {
	"name": name,
	"kind": kind,
	"base_risk": base_risk,
}})

# object.union merges nested objects, so the scope is replaced with a JSON patch.
with_scope(scope) := json.patch(call, [{"op": "replace", "path": "/agent/intent/scope", "value": scope}])

# The call with one window replaced.
with_window(name, counts) := json.patch(call, [{"op": "replace", "path": concat("/", ["/session_context/windows", name]), "value": counts}])

outside_reason := "operation outside declared intent: crowdstrike hosts:contain"

test_in_scope_read_keeps_base_risk if {
	intent.risk_score == 10 with input as call
	intent.reasons == [] with input as call
	intent.in_scope with input as call
	intent.quiet with input as call
}

test_operation_outside_intent_raises_risk_by_40 if {
	i := with_operation("hosts:contain", "containment", 30)
	intent.risk_score == 70 with input as i
	intent.reasons == [outside_reason] with input as i
	not intent.quiet with input as i
}

test_write_outside_manifest_raises_risk if {
	i := with_operation("hosts:update", "write", 20)
	intent.risk_score == 60 with input as i
	intent.reasons == ["operation outside declared intent: crowdstrike hosts:update"] with input as i
}

test_read_outside_manifest_also_raises_risk if {
	i := with_operation("detects:get", "read", 10)
	intent.risk_score == 50 with input as i
}

test_scope_glob_covers_operations_of_a_resource if {
	i := object.union(with_scope({"crowdstrike": ["hosts:*"]}), {"operation": {"name": "hosts:contain"}})
	intent.in_scope with input as i
	intent.risk_score == 10 with input as i
}

test_scope_of_another_connector_does_not_count if {
	i := with_scope({"sentinelone": ["hosts:search"]})
	not intent.in_scope with input as i
	intent.risk_score == 50 with input as i
}

test_wildcard_connector_key_covers_any_connector if {
	i := with_scope({"*": ["hosts:search"]})
	intent.in_scope with input as i
	intent.risk_score == 10 with input as i
	j := with_scope({"*": ["hosts:*"]})
	intent.in_scope with input as j
}

test_empty_scope_puts_nothing_in_scope if {
	i := with_scope({})
	not intent.in_scope with input as i
	intent.risk_score == 50 with input as i
}

test_missing_intent_puts_nothing_in_scope if {
	i := object.remove(call, ["agent"])
	j := object.union(i, {"agent": {"id": "x", "name": "triage-bot"}})
	not intent.in_scope with input as j
	intent.risk_score == 50 with input as j
}

test_five_non_read_actions_in_five_minutes_are_a_burst if {
	i := with_window("5m", window(0, 5, 0))
	intent.risk_score == 30 with input as i
	intent.reasons == ["write burst: 5 non-read actions in the last 5 minutes"] with input as i
	not intent.quiet with input as i
}

test_four_non_read_actions_are_not_a_burst if {
	i := with_window("5m", window(20, 4, 0))
	intent.write_burst == null with input as i
	intent.risk_score == 10 with input as i
	intent.quiet with input as i
}

test_containment_and_destructive_count_as_non_read if {
	# non_read is what ARX counts (actions minus reads); the factor reads it.
	counts := {
		"actions": 5,
		"non_read": 5,
		"denied": 0,
		"targets": 5,
		"kinds": {"read": 0, "write": 0, "containment": 3, "destructive": 2},
	}
	intent.write_burst != null with input as with_window("5m", counts)
}

test_reads_do_not_count_towards_a_burst if {
	# Cheap reads neither fire the factor nor dilute it: the counts are over
	# time, so 500 reads leave the five writes in the window.
	intent.risk_score == 10 with input as with_window("5m", window(500, 0, 0))
	intent.write_burst != null with input as with_window("5m", window(500, 5, 0))
}

test_only_the_five_minute_window_is_scored if {
	busy := window(0, 50, 50)
	i := json.patch(call, [
		{"op": "replace", "path": "/session_context/windows/1m", "value": busy},
		{"op": "replace", "path": "/session_context/windows/60m", "value": busy},
	])
	intent.risk_score == 10 with input as i
	intent.quiet with input as i
}

test_three_denials_in_five_minutes_raise_risk if {
	i := with_window("5m", window(3, 0, 3))
	intent.risk_score == 30 with input as i
	intent.reasons == ["repeated denials: 3 denied actions in the last 5 minutes"] with input as i
}

test_two_denials_do_not_raise_risk if {
	i := with_window("5m", window(2, 0, 2))
	intent.repeated_denials == null with input as i
	intent.risk_score == 10 with input as i
}

test_reasons_follow_factor_order if {
	i := object.union(with_operation("hosts:contain", "containment", 10), {"session_context": {"windows": {"5m": window(0, 5, 5)}}})
	intent.reasons == [
		outside_reason,
		"write burst: 5 non-read actions in the last 5 minutes",
		"repeated denials: 5 denied actions in the last 5 minutes",
	] with input as i
	intent.risk_score == 90 with input as i
}

test_risk_is_clamped_at_100 if {
	i := object.union(with_operation("hosts:contain", "containment", 60), {"session_context": {"windows": {"5m": window(0, 5, 5)}}})
	intent.risk_score == 100 with input as i
}

test_base_risk_above_100_is_clamped if {
	intent.risk_score == 100 with input as with_operation("hosts:search", "read", 250)
}

test_negative_base_risk_is_clamped_at_0 if {
	intent.risk_score == 0 with input as with_operation("hosts:search", "read", -30)
}

test_fractional_base_risk_rounds_to_an_integer if {
	intent.risk_score == 13 with input as with_operation("hosts:search", "read", 12.6)
	intent.risk_score == 12 with input as with_operation("hosts:search", "read", 12.4)
}

test_quiet_is_exactly_no_factor_firing if {
	# The fast path and the factor list must agree on every combination.
	every scope in [{"crowdstrike": ["hosts:search", "hosts:contain"]}, {}] {
		every counts in [window(0, 0, 0), window(0, 4, 2), window(0, 5, 0), window(0, 0, 3), window(9, 9, 9)] {
			every operation in [call.operation, contain.operation] {
				every targets in [0, 1, 2, 40] {
					i := json.patch(call, [
						{"op": "replace", "path": "/agent/intent/scope", "value": scope},
						{"op": "replace", "path": "/session_context/windows/5m", "value": counts},
						{"op": "replace", "path": "/operation", "value": operation},
						{"op": "replace", "path": "/target_count", "value": targets},
					])
					no_factor := count(intent.factors) == 0 with input as i
					quiet_or_not(i) == no_factor
				}
			}
		}
	}
}

# responder-bot's containment of n hosts, in scope and in a quiet session.
contain := json.patch(call, [
	{"op": "replace", "path": "/operation", "value": {"name": "hosts:contain", "kind": "containment", "base_risk": 60}},
	{"op": "replace", "path": "/agent/intent/scope", "value": {"crowdstrike": ["hosts:*"]}},
])

containing(n) := json.patch(contain, [{"op": "replace", "path": "/target_count", "value": n}])

test_one_target_adds_no_blast_radius if {
	every n in [0, 1] {
		intent.blast_radius == null with input as containing(n)
		intent.risk_score == 60 with input as containing(n)
		intent.quiet with input as containing(n)
	}
}

test_each_target_beyond_the_first_adds_three_points if {
	intent.risk_score == 63 with input as containing(2)
	intent.risk_score == 72 with input as containing(5)
	intent.reasons == ["blast radius: 5 targets in one call"] with input as containing(5)
	intent.blast_radius.code == "ARX-R004" with input as containing(5)
	not intent.quiet with input as containing(2)
}

test_blast_radius_is_capped_at_fifteen_points if {
	every n in [6, 7, 100] {
		intent.blast_radius.points == 15 with input as containing(n)
		intent.risk_score == 75 with input as containing(n)
	}
}

test_reads_of_many_targets_add_no_blast_radius if {
	i := json.patch(call, [{"op": "replace", "path": "/target_count", "value": 100}])
	intent.blast_radius == null with input as i
	intent.risk_score == 10 with input as i
	intent.quiet with input as i
}

test_blast_radius_adds_to_the_other_factors if {
	i := json.patch(containing(6), [
		{"op": "replace", "path": "/agent/intent/scope", "value": {}},
		{"op": "replace", "path": "/session_context/windows/5m", "value": window(0, 5, 0)},
	])
	intent.reasons == [
		"operation outside declared intent: crowdstrike hosts:contain",
		"write burst: 5 non-read actions in the last 5 minutes",
		"blast radius: 6 targets in one call",
	] with input as i
	intent.risk_score == 100 with input as i
}

quiet_or_not(i) if {
	intent.quiet with input as i
} else := false

test_a_rule_on_containments_in_five_minutes_is_one_comparison if {
	# How a policy engineer writes "more than three containments in five
	# minutes" on the summary (org rules say it as match.min_counts).
	spree := {"actions": 4, "non_read": 4, "denied": 0, "targets": 4, "kinds": {"read": 0, "write": 0, "containment": 4, "destructive": 0}}
	input.session_context.windows["5m"].kinds.containment > 3 with input as with_window("5m", spree)
	not input.session_context.windows["5m"].kinds.containment > 3 with input as call
}
