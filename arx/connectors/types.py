"""Types every connector declares: its operation table and call context.

The operation table is the single source of truth for an operation's
parameters, kind and base risk: the policy input, the OpenAPI description
and the SDK's discovery call are all derived from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

import msgspec


class OperationKind(StrEnum):
    READ = "read"
    WRITE = "write"
    CONTAINMENT = "containment"
    DESTRUCTIVE = "destructive"


@dataclass(frozen=True, slots=True)
class Operation:
    """One row of a connector's operation table."""

    name: str
    params: type[msgspec.Struct]
    kind: OperationKind
    base_risk: int
    reversible: bool
    target_type: str
    summary: str
    inverse: str | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.base_risk <= 100:
            raise ValueError(f"{self.name}: base_risk must be within 0..100")


@dataclass(frozen=True, slots=True)
class CallContext:
    """Non-secret facts about the stored credential a call runs with.

    ``credential_key`` changes whenever the credential is rotated, so anything
    a connector caches per credential (an OAuth access token) is keyed by it
    and dies with the old version.
    """

    base_url: str
    credential_key: str


@dataclass(frozen=True, slots=True)
class ExecuteCall:
    """A validated request to run one operation."""

    operation: Operation
    params: msgspec.Struct
    raw_params: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Executed:
    event_id: UUID
    result_event_id: UUID | None
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


Outcome = Executed | Pending
