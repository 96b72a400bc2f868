"""Approval requests for ESCALATE verdicts (the full review flow comes later)."""
