"""Approvals: escalations bound to the exact request, decided by people (votes,
the two-person rule, expiry), announced in Slack and Teams, resumed exactly once."""
