# METADATA
# title: Intent scoring
# description: |
#   Scores how far a call strays from the agent's declared intent manifest and
#   from a normal session. The score starts at the operation's base risk, each
#   active factor adds its points, and the sum is clamped to an integer in
#   0..100. Org rules match on the score (match.min_risk / match.max_risk).
#   Session factors look at input.session_context entries stamped at or after
#   now minus the window; entries stamped after now, or with an "at" that does
#   not parse, still count (doubt is held against the agent, never for it).
package arx.intent

import data.arx.patterns

# METADATA
# title: Session window
# description: How far back the session factors look, in nanoseconds (10 minutes).
window_ns := (10 * 60) * 1000000000

# METADATA
# title: Write burst threshold
# description: Non-read actions within the window at which the write-burst factor fires.
write_burst_threshold := 5

# METADATA
# title: Repeated denials threshold
# description: DENY verdicts within the window at which the repeated-denials factor fires.
denial_threshold := 3

# METADATA
# title: Declared patterns
# description: The agent's scope patterns for this connector plus those under the "*" connector key.
declared_patterns contains pattern if {
	some pattern in input.agent.intent.scope[input.connector]
}

declared_patterns contains pattern if {
	some pattern in input.agent.intent.scope["*"]
}

# METADATA
# title: Operation in declared intent
# description: True when the operation matches one of the declared patterns.
in_scope if patterns.matches_any(declared_patterns, input.operation.name)

# METADATA
# title: Window start
# description: The start of the session window, in nanoseconds since the epoch.
cutoff_ns := time.parse_rfc3339_ns(input.now) - window_ns

# METADATA
# title: Recent session entries
# description: |
#   Indexes of session_context entries not stamped before the window. An entry
#   whose "at" does not parse counts as recent: it can only raise the risk.
recent contains i if {
	some i, entry in input.session_context
	not before_window(entry.at)
}

before_window(at) if time.parse_rfc3339_ns(at) < cutoff_ns

# An entry without a kind counts as a write.
recent_writes contains i if {
	some i in recent
	object.get(input.session_context[i], "kind", null) != "read"
}

recent_denials contains i if {
	some i in recent
	input.session_context[i].verdict == "DENY"
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
	n := count(recent_writes)
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
	n := count(recent_denials)
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
