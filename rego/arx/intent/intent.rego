# METADATA
# title: Intent scoring
# description: |
#   Scores how far a call strays from the agent's declared intent manifest and
#   from a normal session. The score starts at the operation's base risk, each
#   active factor adds its points, and the sum is clamped to an integer in
#   0..100. Org rules match on the score (match.min_risk / match.max_risk).
#   Session factors look at input.session_context entries stamped (at_ns) at
#   or after now_ns minus the window; entries stamped after now still count
#   (doubt is held against the agent, never for it). The window arithmetic
#   uses the integer stamps only: no timestamp is parsed per entry.
package arx.intent

import data.arx.patterns

# METADATA
# title: Session window
# description: How far back the session factors look, in nanoseconds (10 minutes).
window_ns := 600000000000

# METADATA
# title: Write burst threshold
# description: Non-read actions within the window at which the write-burst factor fires.
write_burst_threshold := 5

# METADATA
# title: Repeated denials threshold
# description: DENY verdicts within the window at which the repeated-denials factor fires.
denial_threshold := 3

# METADATA
# title: Operation in declared intent
# description: |
#   True when the operation matches one of the agent's scope patterns for this
#   connector or under the "*" connector key.
in_scope if patterns.matches_any(input.agent.intent.scope[input.connector], input.operation.name)

in_scope if patterns.matches_any(input.agent.intent.scope["*"], input.operation.name)

# METADATA
# title: Window start
# description: The start of the session window, in nanoseconds since the Unix epoch.
cutoff_ns := input.now_ns - window_ns

# The counts below make one pass each over the session. The cheap kind or
# verdict test comes first, so most entries cost one comparison; the window
# start is bound to a local first, because a rule reference inside the loop
# would be looked up once per entry.

# METADATA
# title: Recent writes
# description: |
#   Non-read actions stamped (at_ns) at or after the window start, future
#   ones included. An entry without a kind counts as a write.
recent_writes := n if {
	cutoff := cutoff_ns
	n := count([1 |
		some entry in input.session_context
		not entry.kind == "read"
		entry.at_ns >= cutoff
	])
}

# METADATA
# title: Recent denials
# description: DENY verdicts stamped (at_ns) at or after the window start, future ones included.
recent_denials := n if {
	cutoff := cutoff_ns
	n := count([1 |
		some entry in input.session_context
		entry.verdict == "DENY"
		entry.at_ns >= cutoff
	])
}

# METADATA
# title: Outside declared intent
# description: The operation is not covered by the agent's intent scope; null when it is.
# custom:
#   code: ARX-R001
#   points: 40
outside_intent := {
	"code": "ARX-R001",
	"points": 40,
	"reason": sprintf("operation outside declared intent: %s %s", [input.connector, input.operation.name]),
} if {
	not in_scope
} else := null

# METADATA
# title: Write burst
# description: Five or more non-read actions in the 10 minutes before now; null otherwise.
# custom:
#   code: ARX-R002
#   points: 20
write_burst := {
	"code": "ARX-R002",
	"points": 20,
	"reason": sprintf("write burst: %d non-read actions in the 10 minutes before now", [n]),
} if {
	n := recent_writes
	n >= write_burst_threshold
} else := null

# METADATA
# title: Repeated denials
# description: Three or more DENY verdicts in the 10 minutes before now; null otherwise.
# custom:
#   code: ARX-R003
#   points: 20
repeated_denials := {
	"code": "ARX-R003",
	"points": 20,
	"reason": sprintf("repeated denials: %d denied actions in the 10 minutes before now", [n]),
} if {
	n := recent_denials
	n >= denial_threshold
} else := null

# METADATA
# title: Active factors
# description: The factors that fire, in a fixed order (the order of their reasons).
factors := [f | some f in [outside_intent, write_burst, repeated_denials]; f != null]

# METADATA
# title: Risk reasons
# description: One reason per active factor.
reasons := [f.reason | some f in factors]

# METADATA
# title: Risk score
# description: base_risk plus the active factors' points, clamped to 0..100 and rounded to an integer.
# custom:
#   code: ARX-R000
risk_score := round(min([100, max([0, input.operation.base_risk + sum([f.points | some f in factors])])]))
