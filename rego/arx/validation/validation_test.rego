package arx.validation_test

import data.arx.validation

call := {
	"agent": {"id": "a", "name": "triage-bot", "intent": {"purpose": "triage", "scope": {"crowdstrike": ["hosts:*"]}}},
	"org": {"id": "o", "slug": "acme"},
	"connector": "crowdstrike",
	"operation": {"name": "hosts:search", "kind": "read", "base_risk": 10, "reversible": true, "target_type": "host"},
	"params": {},
	"session_context": [{"connector": "crowdstrike", "operation": "hosts:get", "kind": "read", "verdict": "PERMIT", "at": "2026-11-25T17:00:00Z"}],
	"now": "2026-11-25T17:05:00Z",
}

minimal := {
	"agent": {"id": "a", "name": "triage-bot"},
	"org": {"id": "o", "slug": "acme"},
	"connector": "crowdstrike",
	"operation": {"name": "hosts:search", "kind": "read", "base_risk": 10},
	"now": "2026-11-25T17:05:00Z",
}

set_field(path, value) := json.patch(call, [{"op": "add", "path": path, "value": value}])

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
	[set_field("/agent/intent", "read only"), {"input.agent.intent must be an object"}],
	[set_field("/agent/intent/scope", ["hosts:*"]), {"input.agent.intent.scope must be an object of pattern lists"}],
	[set_field("/agent/intent/scope", {"crowdstrike": "hosts:*"}), {"input.agent.intent.scope must be an object of pattern lists"}],
	[set_field("/agent/intent/scope", {"crowdstrike": [1]}), {"input.agent.intent.scope must be an object of pattern lists"}],
	[set_field("/session_context", {}), {"input.session_context must be an array"}],
	[set_field("/session_context/0/at", 1700000000), {"input.session_context[0] must be an object with a string \"at\""}],
	[set_field("/session_context/-", "entry"), {"input.session_context[1] must be an object with a string \"at\""}],
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

test_unparseable_session_timestamps_are_left_to_scoring if {
	validation.valid with input as set_field("/session_context/0/at", "17:00")
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
