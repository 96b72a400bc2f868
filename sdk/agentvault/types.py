"""What ARX answers, as msgspec Structs.

Schema evolution follows msgspec's rules: response types ignore members
they do not know (servers add fields over time), every field added after
0.1.0 gets a default, and no field ever changes its type. Open-ended values
(``verdict``, ``status``, ``kind``) are plain ``str`` rather than enums so a
server that learns a new value does not break older agents.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

__all__ = ["Approval", "ConnectorInfo", "ExecuteResult", "OperationInfo"]


class ExecuteResult(msgspec.Struct, frozen=True, kw_only=True):
    """The operation ran (HTTP 200 from ``POST /v1/sdk/execute``)."""

    event_id: str
    """Audit event that recorded the decision; quote it to reviewers."""
    verdict: str
    """Always ``"PERMIT"`` for an executed operation."""
    risk_score: int
    """0..100 as scored by the policy engine."""
    policy_id: str | None = None
    """The rule that decided, or ``None`` when the org default applied."""
    reasons: list[str] = []
    bundle_revision: str | None = None
    """Revision of the policy bundle that made the decision."""
    result: dict[str, Any] = {}
    """What the security tool returned, as a JSON object."""


class Approval(msgspec.Struct, frozen=True, kw_only=True):
    """An approval request (``GET /v1/sdk/approvals/{approval_id}``)."""

    approval_id: str
    event_id: str
    status: str
    """``"pending"``, ``"approved"``, ``"rejected"`` or ``"expired"``; once resumed,
    ``"executing"`` and then ``"executed"``."""
    connector: str
    operation: str
    created_at: datetime
    expires_at: datetime | None = None
    resolved_at: datetime | None = None
    comment: str | None = None
    """The reviewer's comment that settled it (a rejection's reason)."""


class OperationInfo(msgspec.Struct, frozen=True, kw_only=True):
    """One row of a connector's operation table."""

    name: str
    kind: str
    """``"read"``, ``"write"``, ``"containment"`` or ``"destructive"``."""
    base_risk: int
    reversible: bool
    target_type: str
    summary: str = ""
    params_schema: dict[str, Any] = {}
    """JSON Schema of the ``params`` this operation accepts."""
    inverse: str | None = None
    """The operation that undoes this one, if any (``hosts:lift_containment``)."""


class ConnectorInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A connector this ARX deployment offers (``GET /v1/sdk/connectors``)."""

    id: str
    auth_scheme: str
    operations: list[OperationInfo] = []
