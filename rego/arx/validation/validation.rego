# METADATA
# title: Input validation
# description: |
#   Shape checks on the input document (rego/schema/input.json). data.arx.decision
#   decides only when `valid` holds, and otherwise DENYs with policy_id
#   "arx.invalid_input" and `errors` as reasons: no decision is made on a
#   half-understood request.
#
#   `valid` is one positive conjunction, so it fails closed (a missing field
#   leaves it undefined) and runs on every call: each line is one or two
#   builtin calls, and lines check several fields where a builtin is defined
#   only on the right types (concat on strings, sum on numbers). It checks what
#   a decision reads or what ARX promises: the fields the scoring and the org
#   rules read (params an object, as org rules look params up in it),
#   target_count and the 24 window counts, and that every recent entry has a
#   numeric "at_ns" (one pass). `now` is for humans: it must be a string, and
#   nothing on the hot path parses a timestamp.
#
#   `errors` only explains, and is evaluated only for invalid input. Its checks
#   read through object.get with a null default because `not f(input.x)` is
#   undefined, not true, when input.x is missing (the ref is evaluated outside
#   the negation, OPA issue 1877), so a bare ref would hide the error.
package arx.validation

# METADATA
# title: Operation kinds
# description: The four kinds of the connectors' operation tables.
kinds := {"read", "write", "containment", "destructive"}

# METADATA
# title: Session windows and counts
# description: The windows of input.session_context.windows, and the counts of each.
windows := ["1m", "5m", "60m"]

counts := ["actions", "denied", "non_read", "targets"]

# METADATA
# title: Valid input
# description: True when the input has every field the decision needs, with the right types.
# custom:
#   code: ARX-V000
valid if {
	concat("", [input.agent.name, input.org.slug, input.connector, input.operation.name, input.now])
	kinds[input.operation.kind]
	is_object(input.params)
	is_number(sum([input.operation.base_risk, input.now_ns]))
	intent_ok
	regex.match(counts_pattern, sprintf("%v", [[input.target_count, input.session_context.windows]]))

	# One pass over the recent entries: every one must yield a stamp, and sum
	# is defined only when every stamp is a number.
	recent := input.session_context.recent
	is_array(recent)
	stamps := [entry.at_ns | some entry in recent]
	count(stamps) == count(recent)
	is_number(sum(stamps))
}

# A missing or null intent declares nothing (so nothing is in scope), and so
# does a missing or null scope. The common case (a scope) is tried first.
intent_ok if {
	scope := input.agent.intent.scope
	is_object(scope)
	every patterns in scope {
		concat("", patterns)
	}
}

intent_ok if object.get(input.agent, "intent", null) == null

intent_ok if {
	is_object(input.agent.intent)
	object.get(input.agent.intent, "scope", null) == null
}

# METADATA
# title: Counts pattern
# description: |
#   [input.target_count, input.session_context.windows] as sprintf("%v")
#   prints it (keys sorted, numbers as written) when target_count is a
#   non-negative integer in plain digits and the windows are exactly 1m, 5m
#   and 60m, each with exactly the counts of the schema, every one a
#   non-negative integer in plain digits. One print and one match check all
#   25 counts in less than half the time of one is_number call per count (and
#   %v prints the value directly, where json.marshal converts it first). The
#   tests check the pattern against the schema's shape and against every way
#   to break it.
counts_pattern := `^\[[0-9]+, \{"1m": \{"actions": [0-9]+, "denied": [0-9]+, "kinds": \{"containment": [0-9]+, "destructive": [0-9]+, "read": [0-9]+, "write": [0-9]+\}, "non_read": [0-9]+, "targets": [0-9]+\}, "5m": \{"actions": [0-9]+, "denied": [0-9]+, "kinds": \{"containment": [0-9]+, "destructive": [0-9]+, "read": [0-9]+, "write": [0-9]+\}, "non_read": [0-9]+, "targets": [0-9]+\}, "60m": \{"actions": [0-9]+, "denied": [0-9]+, "kinds": \{"containment": [0-9]+, "destructive": [0-9]+, "read": [0-9]+, "write": [0-9]+\}, "non_read": [0-9]+, "targets": [0-9]+\}\}\]$`

# METADATA
# title: Valid scope
# description: |
#   An object whose values are arrays of strings (concat is defined on nothing
#   else). The first clause of intent_ok has the same body, inlined to save a
#   call on the hot path.
valid_scope(scope) if {
	is_object(scope)
	every patterns in scope {
		concat("", patterns)
	}
}

# METADATA
# title: Count
# description: |
#   True when value is a non-negative integer written in plain digits, as the
#   counts pattern wants. Printed inside an array, as the windows are: %v
#   prints a number in a collection as written (2.0 stays 2.0), a bare one
#   through Go formatting.
count_ok(value) if regex.match(`^\[[0-9]+\]$`, sprintf("%v", [[value]]))

# METADATA
# title: Input document
# description: The input when it is an object, else an empty object (whose fields are all missing).
doc := input if is_object(input)

else := {}

# METADATA
# title: Field
# description: The value at path in the input, or null when any step is missing.
field(path) := object.get(doc, path, null)

# METADATA
# title: Input errors
# description: One message per problem in the input; empty when the input is valid.
# custom:
#   code: ARX-V001
errors contains "input is missing" if not input

errors contains "input must be an object" if {
	input
	not is_object(input)
}

errors contains "input.agent must be an object" if not is_object(field("agent"))

errors contains "input.agent.name must be a string" if not is_string(field(["agent", "name"]))

errors contains "input.agent.intent must be an object" if {
	not field(["agent", "intent"]) == null
	not is_object(field(["agent", "intent"]))
}

errors contains "input.agent.intent.scope must be an object of pattern lists" if {
	not field(["agent", "intent", "scope"]) == null
	not valid_scope(field(["agent", "intent", "scope"]))
}

errors contains "input.org must be an object" if not is_object(field("org"))

errors contains "input.org.slug must be a string" if not is_string(field(["org", "slug"]))

errors contains "input.connector must be a string" if not is_string(field("connector"))

errors contains "input.operation must be an object" if not is_object(field("operation"))

errors contains "input.operation.name must be a string" if not is_string(field(["operation", "name"]))

errors contains "input.operation.kind must be one of read, write, containment, destructive" if {
	not field(["operation", "kind"]) in kinds
}

errors contains "input.operation.base_risk must be a number" if {
	not is_number(field(["operation", "base_risk"]))
}

errors contains "input.now must be a string (an RFC 3339 timestamp)" if not is_string(field("now"))

errors contains "input.params must be an object" if not is_object(field("params"))

errors contains "input.target_count must be a non-negative integer (the targets the call names)" if {
	not count_ok(field("target_count"))
}

errors contains "input.now_ns must be a number (nanoseconds since the Unix epoch)" if {
	not is_number(field("now_ns"))
}

errors contains "input.session_context must be an object with \"recent\" and \"windows\"" if {
	not is_object(field("session_context"))
}

errors contains "input.session_context.windows must be an object with the windows 1m, 5m and 60m" if {
	is_object(field("session_context"))
	not is_object(field(["session_context", "windows"]))
}

errors contains sprintf("input.session_context.windows has an unknown window %v (expected 1m, 5m, 60m)", [w]) if {
	is_object(field(["session_context", "windows"]))
	some w, _ in field(["session_context", "windows"])
	not w in windows
}

errors contains sprintf("input.session_context.windows[%q] must be an object of counts", [w]) if {
	is_object(field(["session_context", "windows"]))
	some w in windows
	not is_object(field(["session_context", "windows", w]))
}

errors contains sprintf("input.session_context.windows[%q].%s must be a non-negative integer", [w, name]) if {
	some w in windows
	is_object(field(["session_context", "windows", w]))
	some name in counts
	not count_ok(field(["session_context", "windows", w, name]))
}

errors contains sprintf("input.session_context.windows[%q] has an unknown count %v", [w, name]) if {
	some w in windows
	is_object(field(["session_context", "windows", w]))
	some name, _ in field(["session_context", "windows", w])
	not name in counts
	name != "kinds"
}

errors contains sprintf("input.session_context.windows[%q].kinds must be an object of counts", [w]) if {
	some w in windows
	is_object(field(["session_context", "windows", w]))
	not is_object(field(["session_context", "windows", w, "kinds"]))
}

errors contains sprintf("input.session_context.windows[%q].kinds.%s must be a non-negative integer", [w, kind]) if {
	some w in windows
	is_object(field(["session_context", "windows", w, "kinds"]))
	some kind in kinds
	not count_ok(field(["session_context", "windows", w, "kinds", kind]))
}

errors contains sprintf("input.session_context.windows[%q].kinds has an unknown kind %v", [w, kind]) if {
	some w in windows
	is_object(field(["session_context", "windows", w, "kinds"]))
	some kind, _ in field(["session_context", "windows", w, "kinds"])
	not kind in kinds
}

errors contains "input.session_context.recent must be an array" if {
	is_object(field("session_context"))
	not is_array(field(["session_context", "recent"]))
}

errors contains sprintf("input.session_context.recent[%d] must be an object with a numeric \"at_ns\" (nanoseconds since the Unix epoch)", [i]) if {
	is_array(field(["session_context", "recent"]))
	some i, entry in field(["session_context", "recent"])
	not is_number(entry_at_ns(entry))
}

entry_at_ns(entry) := object.get(entry, "at_ns", null) if is_object(entry)

else := null
