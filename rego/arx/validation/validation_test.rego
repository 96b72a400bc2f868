package arx.validation_test

import data.arx.validation

call := {
	"agent": {"id": "a", "name": "triage-bot", "intent": {"purpose": "triage", "scope": {"crowdstrike": ["hosts:*"]}}},
	"org": {"id": "o", "slug": "acme"},
	"connector": "crowdstrike",
	"operation": {"name": "hosts:search", "kind": "read", "base_risk": 10, "reversible": true, "target_type": "host"},
	"params": {},
	"session_context": [{
		"connector": "crowdstrike",
		"operation": "hosts:get",
		"kind": "read",
		"verdict": "PERMIT",
		"at": "2026-11-25T17:00:00Z",
		"at_ns": 1795626000000000000,
	}],
	"now": "2026-11-25T17:05:00Z",
	"now_ns": 1795626300000000000,
}

minimal := {
	"agent": {"id": "a", "name": "triage-bot"},
	"org": {"id": "o", "slug": "acme"},
	"connector": "crowdstrike",
	"operation": {"name": "hosts:search", "kind": "read", "base_risk": 10},
	"now": "2026-11-25T17:05:00Z",
	"now_ns": 1795626300000000000,
}

set_field(path, value) := json.patch(call, [{"op": "add", "path": path, "value": value}])

now_ns_error := "input.now_ns must be a number (nanoseconds since the Unix epoch)"

at_ns_error(i) := sprintf("input.session_context[%d] must be an object with a numeric \"at_ns\" (nanoseconds since the Unix epoch)", [i])

# Invalid inputs and the exact errors each must report.
invalid := [
	[object.remove(call, ["connector"]), {"input.connector must be a string"}],
	[object.remove(call, ["now"]), {"input.now must be an RFC 3339 timestamp"}],
	[set_field("/org", {"id": "o"}), {"input.org.slug must be a string"}],
	[set_field("/agent", {"id": "a"}), {"input.agent.name must be a string"}],
	[set_field("/operation", {"kind": "read", "base_risk": 1}), {"input.operation.name must be a string"}],
	[
		set_field("/operation", {"name": "a:b", "base_risk": 1}),
		{"input.operation.kind must be one of read, write, containment, destructive"},
	],
	[set_field("/operation/kind", "admin"), {"input.operation.kind must be one of read, write, containment, destructive"}],
	[set_field("/operation", {"name": "a:b", "kind": "read"}), {"input.operation.base_risk must be a number"}],
	[set_field("/agent", "triage-bot"), {"input.agent must be an object", "input.agent.name must be a string"}],
	[set_field("/org", "acme"), {"input.org must be an object", "input.org.slug must be a string"}],
	[set_field("/connector", 1), {"input.connector must be a string"}],
	[set_field("/operation/base_risk", null), {"input.operation.base_risk must be a number"}],
	[set_field("/operation/base_risk", "60"), {"input.operation.base_risk must be a number"}],
	[set_field("/now", "yesterday"), {"input.now must be an RFC 3339 timestamp"}],
	[object.remove(call, ["now_ns"]), {now_ns_error}],
	[set_field("/now_ns", "1795626300000000000"), {now_ns_error}],
	[set_field("/now_ns", null), {now_ns_error}],
	[set_field("/now_ns", true), {now_ns_error}],
	[set_field("/now_ns", [1795626300000000000]), {now_ns_error}],
	[set_field("/agent/intent", "read only"), {"input.agent.intent must be an object"}],
	[set_field("/agent/intent/scope", ["hosts:*"]), {"input.agent.intent.scope must be an object of pattern lists"}],
	[set_field("/agent/intent/scope", {"crowdstrike": "hosts:*"}), {"input.agent.intent.scope must be an object of pattern lists"}],
	[set_field("/agent/intent/scope", {"crowdstrike": [1]}), {"input.agent.intent.scope must be an object of pattern lists"}],
	[set_field("/session_context", {}), {"input.session_context must be an array"}],
	[set_field("/session_context/-", "entry"), {at_ns_error(1)}],
	[set_field("/session_context/-", [1795626000000000000]), {at_ns_error(1)}],
	[json.patch(call, [{"op": "remove", "path": "/session_context/0/at_ns"}]), {at_ns_error(0)}],
	[set_field("/session_context/0/at_ns", "1795626000000000000"), {at_ns_error(0)}],
	[set_field("/session_context/0/at_ns", null), {at_ns_error(0)}],
	[set_field("/session_context/0/at_ns", false), {at_ns_error(0)}],
	[set_field("/session_context/0/at_ns", {"ns": 1}), {at_ns_error(0)}],
	[set_field("/session_context/0/at_ns", [1]), {at_ns_error(0)}],
	[set_field("/session_context/-", {"at": "2026-11-25T17:01:00Z"}), {at_ns_error(1)}],
	[
		object.remove(call, ["operation"]),
		{
			"input.operation must be an object",
			"input.operation.name must be a string",
			"input.operation.kind must be one of read, write, containment, destructive",
			"input.operation.base_risk must be a number",
		},
	],
]

test_well_formed_input_is_valid if {
	validation.valid with input as call
	validation.errors == set() with input as call
}

test_minimal_input_is_valid if {
	validation.valid with input as minimal
	validation.errors == set() with input as minimal
}

test_null_intent_scope_and_session_count_as_missing if {
	i := json.patch(call, [
		{"op": "replace", "path": "/agent/intent/scope", "value": null},
		{"op": "replace", "path": "/session_context", "value": null},
	])
	validation.valid with input as i
	validation.errors == set() with input as i
	validation.valid with input as set_field("/agent/intent", null)
}

test_each_kind_is_valid if {
	every kind in validation.kinds {
		validation.valid with input as set_field("/operation/kind", kind)
	}
}

test_session_at_is_for_humans_and_not_checked if {
	# The window runs on at_ns; the policy never reads "at".
	validation.valid with input as set_field("/session_context/0/at", "17:00")
	validation.valid with input as json.patch(call, [{"op": "remove", "path": "/session_context/0/at"}])
}

test_any_number_is_a_stamp if {
	validation.valid with input as set_field("/now_ns", 0)
	validation.valid with input as set_field("/session_context/0/at_ns", -1)
	validation.valid with input as set_field("/session_context/0/at_ns", 1.7956263e18)
}

test_empty_session_is_valid if {
	validation.valid with input as set_field("/session_context", [])
	validation.errors == set() with input as set_field("/session_context", [])
}

test_full_session_of_100_entries_is_valid if {
	entry := call.session_context[0]
	session := [object.union(entry, {"at_ns": entry.at_ns + i}) | some i in numbers.range(0, 99)]
	validation.valid with input as set_field("/session_context", session)
}

test_one_bad_stamp_in_a_long_session_is_found if {
	entry := call.session_context[0]
	good := [entry | some _ in numbers.range(1, 50)]
	session := array.concat(good, array.concat([object.union(entry, {"at_ns": "1.5"})], good))
	i := set_field("/session_context", session)
	not validation.valid with input as i
	validation.errors == {at_ns_error(50)} with input as i
}

test_invalid_inputs_are_not_valid_and_say_why if {
	every case in invalid {
		not validation.valid with input as case[0]
		validation.errors == case[1] with input as case[0]
	}
}

test_missing_input_is_not_valid if {
	not validation.valid
	"input is missing" in validation.errors
}

test_non_object_input_is_not_valid if {
	not validation.valid with input as "hosts:contain"
	"input must be an object" in validation.errors with input as "hosts:contain"
	"input.operation must be an object" in validation.errors with input as ["x"]
}
