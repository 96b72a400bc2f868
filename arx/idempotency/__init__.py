"""Idempotency keys: a retried execute replays its first response."""
