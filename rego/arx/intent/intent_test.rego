package arx.intent_test

import data.arx.intent

now := "2026-11-25T17:05:00Z"

now_ns := time.parse_rfc3339_ns(now)

# The window starts ten minutes before now: 16:55:00Z.
window_start_ns := now_ns - ((10 * 60) * 1000000000)

call := {
	"agent": {
		"id": "7a0c1b7e-0000-4000-8000-000000000001",
		"name": "triage-bot",
		"intent": {"purpose": "triage alerts", "scope": {"crowdstrike": ["hosts:search", "hosts:get"]}},
	},
	"org": {"id": "7a0c1b7e-0000-4000-8000-0000000000aa", "slug": "acme"},
	"connector": "crowdstrike",
	"operation": {"name": "hosts:search", "kind": "read", "base_risk": 10, "reversible": true, "target_type": "host"},
	"params": {},
	"session_context": [],
	"now": now,
	"now_ns": now_ns,
}

with_operation(name, kind, base_risk) := object.union(call, {"operation": {
	"name": name,
	"kind": kind,
	"base_risk": base_risk,
}})

# object.union merges nested objects, so the scope is replaced with a JSON patch.
with_scope(scope) := json.patch(call, [{"op": "replace", "path": "/agent/intent/scope", "value": scope}])

with_session(entries) := object.union(call, {"session_context": entries})

# n session entries of the given kind and verdict, all stamped at (at_ns is
# the same instant).
entries(n, kind, verdict, at) := stamped(n, kind, verdict, at, time.parse_rfc3339_ns(at))

# n session entries with an explicit at_ns, which need not match at.
stamped(n, kind, verdict, at, at_ns) := [{
	"connector": "crowdstrike",
	"operation": "hosts:update",
	"kind": kind,
	"verdict": verdict,
	"at": at,
	"at_ns": at_ns,
} |
	some _ in numbers.range(1, n)
]

outside_reason := "operation outside declared intent: crowdstrike hosts:contain"

test_in_scope_read_keeps_base_risk if {
	intent.risk_score == 10 with input as call
	intent.reasons == [] with input as call
	intent.in_scope with input as call
}

test_operation_outside_intent_raises_risk_by_40 if {
	i := with_operation("hosts:contain", "containment", 30)
	intent.risk_score == 70 with input as i
	intent.reasons == [outside_reason] with input as i
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

test_five_recent_writes_are_a_burst if {
	i := with_session(entries(5, "write", "PERMIT", "2026-11-25T17:00:00Z"))
	intent.risk_score == 30 with input as i
	intent.reasons == ["write burst: 5 non-read actions in the 10 minutes before now"] with input as i
}

test_containment_and_destructive_count_as_non_read if {
	session := array.concat(
		entries(3, "containment", "ESCALATE", "2026-11-25T17:04:00Z"),
		entries(2, "destructive", "ESCALATE", "2026-11-25T17:03:00Z"),
	)
	intent.write_burst != null with input as with_session(session)
}

test_four_recent_writes_are_not_a_burst if {
	i := with_session(entries(4, "write", "PERMIT", "2026-11-25T17:00:00Z"))
	intent.write_burst == null with input as i
	intent.risk_score == 10 with input as i
}

test_entries_without_a_kind_count_as_writes if {
	session := [object.remove(e, ["kind"]) | some e in entries(5, "read", "PERMIT", "2026-11-25T17:04:00Z")]
	intent.write_burst != null with input as with_session(session)
}

test_reads_do_not_count_towards_a_burst if {
	i := with_session(entries(20, "read", "PERMIT", "2026-11-25T17:04:00Z"))
	intent.risk_score == 10 with input as i
}

test_writes_older_than_the_window_do_not_count if {
	session := array.concat(
		entries(4, "write", "PERMIT", "2026-11-25T17:01:00Z"),
		entries(10, "write", "PERMIT", "2026-11-25T16:54:59Z"),
	)
	intent.risk_score == 10 with input as with_session(session)
}

test_window_edge_exactly_ten_minutes_ago_counts if {
	i := with_session(entries(5, "write", "PERMIT", "2026-11-25T16:55:00Z"))
	intent.write_burst != null with input as i
}

test_window_edge_is_exact_to_the_nanosecond if {
	at_edge := with_session(stamped(5, "write", "PERMIT", "2026-11-25T16:55:00Z", window_start_ns))
	intent.write_burst != null with input as at_edge
	just_before := with_session(stamped(5, "write", "PERMIT", "2026-11-25T16:54:59.999999999Z", window_start_ns - 1))
	intent.write_burst == null with input as just_before
	intent.recent_writes == 0 with input as just_before
}

test_future_dated_entries_count_against_the_agent if {
	i := with_session(entries(5, "write", "PERMIT", "2026-11-25T17:06:00Z"))
	intent.write_burst != null with input as i
}

test_far_future_entries_count_against_the_agent if {
	i := with_session(stamped(3, "read", "DENY", "2099-01-01T00:00:00Z", now_ns * 2))
	intent.repeated_denials != null with input as i
}

test_window_uses_at_ns_not_at if {
	# "at" is for humans; neither its text nor its time is read.
	recent := with_session(stamped(5, "write", "PERMIT", "a while ago", now_ns))
	intent.write_burst != null with input as recent
	old := with_session(stamped(5, "write", "PERMIT", now, window_start_ns - 1000000000))
	intent.write_burst == null with input as old
}

test_window_is_relative_to_now_ns_not_now if {
	# now_ns one hour later than now: 17:01Z entries fall out of the window.
	i := object.union(
		with_session(entries(5, "write", "PERMIT", "2026-11-25T17:01:00Z")),
		{"now_ns": now_ns + ((60 * 60) * 1000000000)},
	)
	intent.write_burst == null with input as i
}

test_three_recent_denials_raise_risk if {
	i := with_session(entries(3, "read", "DENY", "2026-11-25T17:02:00Z"))
	intent.risk_score == 30 with input as i
	intent.reasons == ["repeated denials: 3 denied actions in the 10 minutes before now"] with input as i
}

test_two_recent_denials_do_not_raise_risk if {
	i := with_session(entries(2, "read", "DENY", "2026-11-25T17:02:00Z"))
	intent.risk_score == 10 with input as i
}

test_old_denials_do_not_count if {
	i := with_session(entries(3, "read", "DENY", "2026-11-25T16:50:00Z"))
	intent.repeated_denials == null with input as i
}

test_reasons_follow_factor_order if {
	session := entries(5, "write", "DENY", "2026-11-25T17:04:00Z")
	i := object.union(with_operation("hosts:contain", "containment", 10), {"session_context": session})
	intent.reasons == [
		outside_reason,
		"write burst: 5 non-read actions in the 10 minutes before now",
		"repeated denials: 5 denied actions in the 10 minutes before now",
	] with input as i
	intent.risk_score == 90 with input as i
}

test_risk_is_clamped_at_100 if {
	session := entries(5, "write", "DENY", "2026-11-25T17:04:00Z")
	i := object.union(with_operation("hosts:contain", "containment", 60), {"session_context": session})
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

test_missing_session_context_adds_nothing if {
	intent.risk_score == 10 with input as object.remove(call, ["session_context"])
}

test_window_is_ten_minutes if {
	intent.window_ns == (10 * 60) * 1000000000
}
