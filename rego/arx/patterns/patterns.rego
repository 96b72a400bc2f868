# METADATA
# title: Operation patterns
# description: |
#   Glob matching of operation names. Operation names are ":"-delimited
#   ("hosts:contain"); "*" matches within one segment ("hosts:*"), "**" across
#   segments ("**" matches every operation).
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
	glob.match(pattern, delimiters, name)
}

# METADATA
# title: Operation misses a pattern list
# description: |
#   True when every glob in patterns is well-formed and none matches name (so
#   an empty list too). One glob.match per pattern: it is false for a valid
#   pattern that does not match, and undefined (a builtin error) for a bad
#   pattern such as "hosts:[" or a non-string, which so never counts as a miss.
misses_all(patterns, name) if {
	count([pattern | some pattern in patterns; glob.match(pattern, delimiters, name) == false]) == count(patterns)
}

# METADATA
# title: Valid pattern
# description: |
#   True when pattern is a string that glob.match can compile. glob.match is
#   undefined (a builtin error) on a bad pattern such as "hosts:[", so callers
#   must not read "no match" as "does not apply" without this check.
valid(pattern) if {
	is_string(pattern)
	is_boolean(glob.match(pattern, delimiters, ""))
}
