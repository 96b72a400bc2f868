# METADATA
# title: Intent scoring
# description: |
#   Scores how far a call strays from the agent's declared intent manifest and
#   from a normal session. The score starts at the operation's base risk, each
#   active factor adds its points, and the sum is clamped to an integer in
#   0..100. Org rules match on the score (match.min_risk / match.max_risk).
#
#   Session factors read input.session_context.windows["5m"]: counts that ARX
#   computes over the agent's decisions stamped within the last five minutes
#   (the current call not counted). They are counts over time, not over the
#   last N entries, so padding the history with cheap reads cannot push writes
#   out of a window, and the scoring costs a fixed number of lookups whatever
#   the history's length: nothing loops over the recent entries.
#
#   The blast-radius factor reads input.target_count, the number of distinct
#   targets (e.g. host ids) the call names, which ARX counts from the
#   operation's target_param.
#
#   Most calls are `quiet` (no factor fires); they are scored without building
#   the factor list. A factor on another count is one comparison, e.g. more
#   than three containments in five minutes:
#     input.session_context.windows["5m"].kinds.containment > 3
#   and an org can say the same as data (match.min_counts, package arx.org).
package arx.intent

import data.arx.patterns

# METADATA
# title: Write burst threshold
# description: Non-read actions in the last five minutes at which the write-burst factor fires.
write_burst_threshold := 5

# METADATA
# title: Repeated denials threshold
# description: DENY verdicts in the last five minutes at which the repeated-denials factor fires.
denial_threshold := 3

# METADATA
# title: Blast radius points
# description: |
#   Points per target beyond the first that a non-read call names, and their
#   cap: +3 a target, at most +15 (reached at six targets). The cap keeps a
#   quiet containment (base risk 60) below the 80 at which the example org
#   denies outright, so how many hosts one call may touch stays the org's
#   decision (match.params count_gt), while bulk calls out of intent or in a
#   burst still add up to a denial.
blast_radius_points := 3

blast_radius_cap := 15

# METADATA
# title: Operation in declared intent
# description: |
#   True when the operation matches one of the agent's scope patterns for this
#   connector or under the "*" connector key. An exact name is tried first: one
#   membership test instead of a glob per pattern.
in_scope if input.operation.name in input.agent.intent.scope[input.connector]

in_scope if patterns.matches_any(input.agent.intent.scope[input.connector], input.operation.name)

in_scope if patterns.matches_any(input.agent.intent.scope["*"], input.operation.name)

# METADATA
# title: Quiet call
# description: |
#   No factor fires: the operation is in scope, the last five minutes are
#   below both thresholds and the call names at most one target (first
#   clause) or is a read (second). Exactly the negation of the four factors
#   below. The conditions are written out in both clauses: a helper rule
#   for "at most one target or a read" costs more than the whole clause.
quiet if {
	in_scope
	window := input.session_context.windows["5m"]
	window.non_read < write_burst_threshold
	window.denied < denial_threshold
	input.target_count <= 1
}

quiet if {
	input.operation.kind == "read"
	in_scope
	window := input.session_context.windows["5m"]
	window.non_read < write_burst_threshold
	window.denied < denial_threshold
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
# description: Five or more non-read actions in the last five minutes; null otherwise.
# custom:
#   code: ARX-R002
#   points: 20
write_burst := {
	"code": "ARX-R002",
	"points": 20,
	"reason": sprintf("write burst: %d non-read actions in the last 5 minutes", [n]),
} if {
	n := input.session_context.windows["5m"].non_read
	n >= write_burst_threshold
} else := null

# METADATA
# title: Repeated denials
# description: Three or more DENY verdicts in the last five minutes; null otherwise.
# custom:
#   code: ARX-R003
#   points: 20
repeated_denials := {
	"code": "ARX-R003",
	"points": 20,
	"reason": sprintf("repeated denials: %d denied actions in the last 5 minutes", [n]),
} if {
	n := input.session_context.windows["5m"].denied
	n >= denial_threshold
} else := null

# METADATA
# title: Blast radius
# description: |
#   A non-read call naming more than one target: +3 points per target beyond
#   the first, at most +15; null otherwise.
# custom:
#   code: ARX-R004
#   points: 3 per target beyond the first, at most 15
blast_radius := {
	"code": "ARX-R004",
	"points": min([blast_radius_points * (n - 1), blast_radius_cap]),
	"reason": sprintf("blast radius: %d targets in one call", [n]),
} if {
	input.operation.kind != "read"
	n := input.target_count
	n > 1
} else := null

# METADATA
# title: Active factors
# description: The factors that fire, in a fixed order (the order of their reasons).
factors := [f | some f in [outside_intent, write_burst, repeated_denials, blast_radius]; f != null]

# METADATA
# title: Risk reasons
# description: One reason per active factor; none for a quiet call.
reasons := [] if quiet

else := [f.reason | some f in factors]

# METADATA
# title: Risk score
# description: base_risk plus the active factors' points, clamped to 0..100 and rounded to an integer.
# custom:
#   code: ARX-R000
risk_score := clamp(input.operation.base_risk) if quiet

else := clamp(input.operation.base_risk + sum([f.points | some f in factors]))

clamp(score) := 100 if score >= 100

else := 0 if score <= 0

else := round(score)
