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
