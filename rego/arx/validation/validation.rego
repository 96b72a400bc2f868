# METADATA
# title: Input validation
# description: |
#   Shape checks on the input document (rego/schema/input.json). data.arx.decision
#   decides only when `valid` holds, and otherwise DENYs with policy_id
#   "arx.invalid_input" and `errors` as reasons: no decision is made on a
#   half-understood request.
#
#   `valid` is one positive conjunction, so it is cheap on the hot path and
#   fails closed: a missing field leaves it undefined. `errors` only explains,
#   and is evaluated only for invalid input. Its checks read through object.get
#   with a null default because `not f(input.x)` is undefined, not true, when
#   input.x is missing (the ref is evaluated outside the negation, OPA issue
#   1877), so a bare ref would hide the error.
#
#   The session costs one pass, not a rule per entry: every entry must be an
#   object with a numeric "at_ns" (nanoseconds since the Unix epoch; ARX sends
#   integers, see the schema). Its "at" string is for humans: the policy does
#   not read it, so it is not checked here.
package arx.validation

# METADATA
# title: Operation kinds
# description: The four kinds of the connectors' operation tables.
kinds := {"read", "write", "containment", "destructive"}

# METADATA
# title: Valid input
# description: True when the input has every field the decision needs, with the right types.
# custom:
#   code: ARX-V000
valid if {
	is_string(input.agent.name)
	intent_ok
	is_string(input.org.slug)
	is_string(input.connector)
	is_string(input.operation.name)
	kinds[input.operation.kind]
	is_number(input.operation.base_risk)
	rfc3339(input.now)
	is_number(input.now_ns)
	session_ok
}

# A missing or null intent declares nothing (so nothing is in scope), and so
# does a missing or null scope. The common case (a scope) is tried first.
intent_ok if valid_scope(input.agent.intent.scope)

intent_ok if object.get(input.agent, "intent", null) == null

intent_ok if {
	is_object(input.agent.intent)
	object.get(input.agent.intent, "scope", null) == null
}

# Missing, null or empty: no history.
session_ok if object.get(input, "session_context", []) in {null, []}

session_ok if {
	is_array(input.session_context)
	stamps := [entry.at_ns | some entry in input.session_context]
	count(stamps) == count(input.session_context)
	all_numbers(stamps)
}

# METADATA
# title: Valid scope
# description: An object whose values are arrays of strings.
valid_scope(scope) if {
	is_object(scope)
	every patterns in scope {
		is_array(patterns)
		every pattern in patterns {
			is_string(pattern)
		}
	}
}

# METADATA
# title: All numbers
# description: |
#   True when values is a non-empty array of numbers. Two builtin calls, not one
#   per element: OPA orders values of different types null < booleans <
#   numbers < strings < arrays < objects < sets, so when the smallest and the
#   largest value are numbers, every value is.
all_numbers(values) if {
	is_number(min(values))
	is_number(max(values))
}

# METADATA
# title: RFC 3339 timestamp
# description: True when value is a string that time.parse_rfc3339_ns accepts.
rfc3339(value) if {
	is_string(value)
	time.parse_rfc3339_ns(value)
}

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

errors contains "input.now must be an RFC 3339 timestamp" if not rfc3339(field("now"))

errors contains "input.now_ns must be a number (nanoseconds since the Unix epoch)" if {
	not is_number(field("now_ns"))
}

errors contains "input.session_context must be an array" if {
	not field("session_context") == null
	not is_array(field("session_context"))
}

errors contains sprintf("input.session_context[%d] must be an object with a numeric \"at_ns\" (nanoseconds since the Unix epoch)", [i]) if {
	is_array(field("session_context"))
	some i, entry in field("session_context")
	not is_number(entry_at_ns(entry))
}

entry_at_ns(entry) := object.get(entry, "at_ns", null) if is_object(entry)

else := null
