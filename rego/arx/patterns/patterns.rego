# METADATA
# title: Operation patterns
# description: |
#   Glob matching of operation names. Operation names are ":"-delimited
#   ("hosts:contain"); "*" matches within one segment ("hosts:*"), "**" across
#   segments ("**" matches every operation).
#
#   The functions run on every decision, so each is one function call with the
#   delimiters written as a literal (a rule reference costs about as much as a
#   glob.match); `delimiters` names them for callers and tests, which check
#   that the literals agree.
package arx.patterns

# METADATA
# title: Pattern delimiters
# description: Delimiters passed to glob.match for operation names.
delimiters := [":"]

# METADATA
# title: Operation matches a pattern list
# description: True when name matches at least one glob in patterns.
matches_any(patterns, name) if {
	some pattern in patterns
	glob.match(pattern, [":"], name)
}

# METADATA
# title: Operation misses a pattern list
# description: |
#   True when every glob in patterns is well-formed and none matches name (so
#   an empty list too). glob.match is false for a valid pattern that does not
#   match, and undefined (a builtin error) for a bad pattern such as "hosts:["
#   or a non-string, which so never counts as a miss. Stops at the first
#   pattern that matches or is bad.
misses_all(patterns, name) if {
	every pattern in patterns {
		glob.match(pattern, [":"], name) == false
	}
}

# METADATA
# title: Valid pattern list
# description: |
#   True when patterns is an array of strings that glob.match can compile.
#   glob.match is undefined (a builtin error) on a bad pattern such as
#   "hosts:[", so callers must not read "no match" as "does not apply" without
#   this check.
all_valid(patterns) if {
	is_array(patterns)
	every pattern in patterns {
		is_boolean(glob.match(pattern, [":"], ""))
	}
}
