package arx.validation_test

import data.arx.validation

window(actions, read, denied) := {
	"actions": actions,
	"non_read": actions - read,
	"denied": denied,
	"targets": 1,
	"kinds": {"read": read, "write": actions - read, "containment": 0, "destructive": 0},
}

call := {
	"agent": {"id": "a", "name": "triage-bot", "intent": {"purpose": "triage", "scope": {"crowdstrike": ["hosts:*"]}}},
	"org": {"id": "o", "slug": "acme"},
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
	"session_context": {
		"recent": [{
			"connector": "crowdstrike",
			"operation": "hosts:get",
			"kind": "read",
			"verdict": "PERMIT",
			"at_ns": 1795626000000000000,
		}],
		"windows": {"1m": window(0, 0, 0), "5m": window(1, 1, 0), "60m": window(12, 9, 1)},
	},
	"now": "2026-11-25T17:05:00Z",
	"now_ns": 1795626300000000000,
}

empty_session := {"recent": [], "windows": {"1m": window(0, 0, 0), "5m": window(0, 0, 0), "60m": window(0, 0, 0)}}

minimal := {
	"agent": {"id": "a", "name": "triage-bot"},
	"org": {"id": "o", "slug": "acme"},
	"connector": "crowdstrike",
	"operation": {"name": "hosts:search", "kind": "read", "base_risk": 10},
	"params": {},
	"target_count": 0,
	"session_context": empty_session,
	"now": "2026-11-25T17:05:00Z",
	"now_ns": 1795626300000000000,
}

set_field(path, value) := json.patch(call, [{"op": "add", "path": path, "value": value}])

remove_field(path) := json.patch(call, [{"op": "remove", "path": path}])

now_ns_error := "input.now_ns must be a number (nanoseconds since the Unix epoch)"

target_count_error := "input.target_count must be a non-negative integer (the targets the call names)"

at_ns_error(i) := sprintf("input.session_context.recent[%d] must be an object with a numeric \"at_ns\" (nanoseconds since the Unix epoch)", [i])

count_error(w, name) := sprintf("input.session_context.windows[%q].%s must be a non-negative integer", [w, name])

# Invalid inputs and the exact errors each must report.
invalid := [
	[object.remove(call, ["connector"]), {"input.connector must be a string"}],
	[object.remove(call, ["now"]), {"input.now must be a string (an RFC 3339 timestamp)"}],
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
	[set_field("/now", 1795626300), {"input.now must be a string (an RFC 3339 timestamp)"}],
	[object.remove(call, ["now_ns"]), {now_ns_error}],
	[set_field("/now_ns", "1795626300000000000"), {now_ns_error}],
	[set_field("/now_ns", null), {now_ns_error}],
	[set_field("/now_ns", true), {now_ns_error}],
	[set_field("/now_ns", [1795626300000000000]), {now_ns_error}],
	[set_field("/agent/intent", "read only"), {"input.agent.intent must be an object"}],
	# The call's params (org rules read them) and the targets it names.
	[object.remove(call, ["params"]), {"input.params must be an object"}],
	[set_field("/params", ["ids"]), {"input.params must be an object"}],
	[set_field("/params", null), {"input.params must be an object"}],
	[object.remove(call, ["target_count"]), {target_count_error}],
	[set_field("/target_count", -1), {target_count_error}],
	[set_field("/target_count", 1.5), {target_count_error}],
	[set_field("/target_count", 2.0), {target_count_error}],
	[set_field("/target_count", "2"), {target_count_error}],
	[set_field("/target_count", null), {target_count_error}],
	[set_field("/target_count", [2]), {target_count_error}],
	[set_field("/agent/intent/scope", ["hosts:*"]), {"input.agent.intent.scope must be an object of pattern lists"}],
	[set_field("/agent/intent/scope", {"crowdstrike": "hosts:*"}), {"input.agent.intent.scope must be an object of pattern lists"}],
	[set_field("/agent/intent/scope", {"crowdstrike": [1]}), {"input.agent.intent.scope must be an object of pattern lists"}],
	# The session summary.
	[object.remove(call, ["session_context"]), {"input.session_context must be an object with \"recent\" and \"windows\""}],
	[set_field("/session_context", []), {"input.session_context must be an object with \"recent\" and \"windows\""}],
	[set_field("/session_context", null), {"input.session_context must be an object with \"recent\" and \"windows\""}],
	[remove_field("/session_context/windows"), {"input.session_context.windows must be an object with the windows 1m, 5m and 60m"}],
	[set_field("/session_context/windows", [window(0, 0, 0)]), {"input.session_context.windows must be an object with the windows 1m, 5m and 60m"}],
	[remove_field("/session_context/windows/5m"), {"input.session_context.windows[\"5m\"] must be an object of counts"}],
	[set_field("/session_context/windows/5m", 3), {"input.session_context.windows[\"5m\"] must be an object of counts"}],
	[set_field("/session_context/windows/15m", window(0, 0, 0)), {"input.session_context.windows has an unknown window 15m (expected 1m, 5m, 60m)"}],
	[remove_field("/session_context/windows/5m/non_read"), {count_error("5m", "non_read")}],
	[set_field("/session_context/windows/5m/non_read", "3"), {count_error("5m", "non_read")}],
	[set_field("/session_context/windows/1m/denied", null), {count_error("1m", "denied")}],
	[set_field("/session_context/windows/60m/actions", -1), {count_error("60m", "actions")}],
	[set_field("/session_context/windows/60m/targets", 1.5), {count_error("60m", "targets")}],
	[set_field("/session_context/windows/60m/targets", 2.0), {count_error("60m", "targets")}],
	[set_field("/session_context/windows/60m/targets", 1e2), {count_error("60m", "targets")}],
	[set_field("/session_context/windows/5m/writes", 1), {"input.session_context.windows[\"5m\"] has an unknown count writes"}],
	[remove_field("/session_context/windows/5m/kinds"), {"input.session_context.windows[\"5m\"].kinds must be an object of counts"}],
	[set_field("/session_context/windows/5m/kinds", [0, 0, 0, 0]), {"input.session_context.windows[\"5m\"].kinds must be an object of counts"}],
	[
		remove_field("/session_context/windows/5m/kinds/containment"),
		{"input.session_context.windows[\"5m\"].kinds.containment must be a non-negative integer"},
	],
	[
		set_field("/session_context/windows/1m/kinds/write", true),
		{"input.session_context.windows[\"1m\"].kinds.write must be a non-negative integer"},
	],
	[set_field("/session_context/windows/1m/kinds/admin", 0), {"input.session_context.windows[\"1m\"].kinds has an unknown kind admin"}],
	[remove_field("/session_context/recent"), {"input.session_context.recent must be an array"}],
	[set_field("/session_context/recent", {}), {"input.session_context.recent must be an array"}],
	[set_field("/session_context/recent", {"0": {"at_ns": 1}}), {"input.session_context.recent must be an array"}],
	[set_field("/session_context/recent/-", "entry"), {at_ns_error(1)}],
	[set_field("/session_context/recent/-", [1795626000000000000]), {at_ns_error(1)}],
	[remove_field("/session_context/recent/0/at_ns"), {at_ns_error(0)}],
	[set_field("/session_context/recent/0/at_ns", "1795626000000000000"), {at_ns_error(0)}],
	[set_field("/session_context/recent/0/at_ns", null), {at_ns_error(0)}],
	[set_field("/session_context/recent/0/at_ns", false), {at_ns_error(0)}],
	[set_field("/session_context/recent/0/at_ns", {"ns": 1}), {at_ns_error(0)}],
	[set_field("/session_context/recent/0/at_ns", [1]), {at_ns_error(0)}],
	[set_field("/session_context/recent/-", {"at": "2026-11-25T17:01:00Z"}), {at_ns_error(1)}],
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

test_null_intent_or_scope_count_as_missing if {
	i := set_field("/agent/intent/scope", null)
	validation.valid with input as i
	validation.errors == set() with input as i
	validation.valid with input as set_field("/agent/intent", null)
	validation.valid with input as set_field("/agent/intent", {"purpose": "nothing yet"})
}

test_each_kind_is_valid if {
	every kind in validation.kinds {
		validation.valid with input as set_field("/operation/kind", kind)
	}
}

test_now_is_for_humans_and_not_parsed if {
	# Nothing on the hot path parses a timestamp: any string will do.
	validation.valid with input as set_field("/now", "yesterday")
}

test_any_number_is_a_stamp if {
	validation.valid with input as set_field("/now_ns", 0)
	validation.valid with input as set_field("/session_context/recent/0/at_ns", -1)
	validation.valid with input as set_field("/session_context/recent/0/at_ns", 1.7956263e18)
}

test_recent_entries_need_only_a_numeric_stamp if {
	# The decision does not read the recent entries; only their stamps are checked.
	validation.valid with input as set_field("/session_context/recent/0", {"at_ns": 1})
}

test_empty_session_is_valid if {
	validation.valid with input as set_field("/session_context", empty_session)
	validation.errors == set() with input as set_field("/session_context", empty_session)
}

test_any_non_negative_target_count_is_valid if {
	every n in [0, 1, 100, 123456789] {
		validation.valid with input as set_field("/target_count", n)
	}
}

test_large_counts_are_valid if {
	i := set_field("/session_context/windows/60m", window(100000000, 1, 99999999))
	validation.valid with input as i
}

test_full_recent_list_of_100_entries_is_valid if {
	entry := call.session_context.recent[0]
	recent := [object.union(entry, {"at_ns": entry.at_ns - i}) | some i in numbers.range(0, 99)]
	validation.valid with input as set_field("/session_context/recent", recent)
}

test_one_bad_stamp_in_a_long_list_is_found if {
	entry := call.session_context.recent[0]
	good := [entry | some _ in numbers.range(1, 50)]
	recent := array.concat(good, array.concat([object.union(entry, {"at_ns": "1.5"})], good))
	i := set_field("/session_context/recent", recent)
	not validation.valid with input as i
	validation.errors == {at_ns_error(50)} with input as i
}

test_invalid_inputs_are_not_valid_and_say_why if {
	every case in invalid {
		not validation.valid with input as case[0]
		validation.errors == case[1] with input as case[0]
	}
}

test_counts_pattern_accepts_exactly_the_schema_shape if {
	# The pattern is written against sprintf("%v") output of [target_count,
	# windows]: check it on both inputs above and on large counts.
	every i in [call, minimal] {
		regex.match(validation.counts_pattern, sprintf("%v", [[i.target_count, i.session_context.windows]]))
	}
	big := json.patch(call.session_context.windows, [{"op": "replace", "path": "/60m", "value": window(123456789, 0, 7)}])
	regex.match(validation.counts_pattern, sprintf("%v", [[100, big]]))
	not regex.match(validation.counts_pattern, sprintf("%v", [[0, object.remove(call.session_context.windows, ["1m"])]]))
	every bad in [-1, 1.5, "1", null, [1]] {
		not regex.match(validation.counts_pattern, sprintf("%v", [[bad, call.session_context.windows]]))
	}
}

test_count_check_wants_plain_non_negative_integers if {
	validation.count_ok(0)
	validation.count_ok(12345678901234567890)
	not validation.count_ok(-1)
	not validation.count_ok(1.5)
	not validation.count_ok(json.unmarshal("1e3"))
	not validation.count_ok(json.unmarshal("2.0"))
	not validation.count_ok("1")
	not validation.count_ok(null)
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
