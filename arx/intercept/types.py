"""What an execute ends in when it does not raise."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID


@dataclass(frozen=True, slots=True)
class Executed:
    event_id: UUID
    verdict: str
    risk_score: int
    policy_id: str | None
    reasons: list[str]
    bundle_revision: str | None
    result: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Pending:
    event_id: UUID
    approval_id: UUID
    verdict: str
    risk_score: int
    policy_id: str | None
    reasons: list[str]
    bundle_revision: str | None
    expires_at: datetime
    approvals_required: int


Outcome = Executed | Pending
