"""Audit event shapes as stored and as listed."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec


class SessionAction(msgspec.Struct, frozen=True, kw_only=True):
    """One of an agent's recent decisions, as the policy sees it."""

    connector: str
    operation: str
    kind: str
    verdict: str
    at: datetime
    # The same instant as integer nanoseconds: lets the policy do window
    # arithmetic without parsing a timestamp per entry.
    at_ns: int


class AuditEvent(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    id: UUID
    seq: int
    kind: str
    created_at: datetime
    agent_id: UUID | None = None
    decision_id: UUID | None = None
    connector: str | None = None
    operation: str | None = None
    operation_kind: str | None = None
    params: dict[str, Any] | None = None
    verdict: str | None = None
    risk_score: int | None = None
    policy_id: str | None = None
    reasons: list[str] | None = None
    bundle_revisions: dict[str, str] | None = None
    outcome: str | None = None
    result: Any = None
    error: dict[str, Any] | None = None
    action: str | None = None
    details: dict[str, Any] | None = None
    actor: str | None = None
    request_id: str | None = None
