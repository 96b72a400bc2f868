"""Approval request shapes."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec


class ApprovalRequest(msgspec.Struct, frozen=True, kw_only=True):
    """The approval an ESCALATE decision is recorded with (same statement)."""

    id: UUID
    request_hash: str  # hex SHA-256 of the exact request it authorises
    ttl_seconds: int


class ApprovalView(msgspec.Struct, frozen=True, kw_only=True):
    approval_id: UUID
    event_id: UUID
    status: str
    connector: str
    operation: str
    created_at: datetime
    expires_at: datetime
