"""SQL for idempotency keys: one statement per step (migration 0003)."""

from __future__ import annotations

CLAIM = "SELECT * FROM arx.claim_idempotency_key(%s, %s, %s, %s, %s, %s)"
COMPLETE = "SELECT arx.complete_idempotency_key(%s, %s, %s, %s, %s, %s)"
RELEASE = "SELECT arx.release_idempotency_key(%s, %s, %s)"
