"""Approval request shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec


class ApprovalRequest(msgspec.Struct, frozen=True, kw_only=True):
    """The approval an ESCALATE decision is recorded with (same statement)."""

    id: UUID
    request_hash: str  # hex SHA-256 of the exact request it authorises
    approvals_required: int
    # The deciding rule's expiry; None: the org's default, else this one.
    ttl_seconds: int | None
    default_ttl_seconds: int


class ApprovalView(msgspec.Struct, frozen=True, kw_only=True):
    approval_id: UUID
    event_id: UUID
    # pending, approved, rejected or expired; then executing and executed once resumed
    status: str
    connector: str
    operation: str
    created_at: datetime
    expires_at: datetime
    resolved_at: datetime | None = None
    # The reviewer's comment that settled it (a rejection's reason).
    comment: str | None = None


Comment = Annotated[str, msgspec.Meta(max_length=2000, pattern=r"^[^\x00]*$")]


class Vote(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    comment: Comment = ""


class ApprovalSummary(msgspec.Struct, frozen=True, kw_only=True):
    approval_id: UUID
    status: str
    agent_id: UUID
    agent_name: str
    connector: str
    operation: str
    risk_score: int
    approvals_required: int
    created_at: datetime
    expires_at: datetime
    resolved_at: datetime | None


class VoteView(msgspec.Struct, frozen=True, kw_only=True):
    user_id: UUID
    email: str
    vote: Literal["approve", "reject"]
    comment: str
    created_at: datetime


class RecentAction(msgspec.Struct, frozen=True, kw_only=True):
    """One of the agent's decisions before it asked."""

    at: datetime
    connector: str
    operation: str
    kind: str
    verdict: str
    risk_score: int
    policy_id: str | None


class Execution(msgspec.Struct, frozen=True, kw_only=True):
    """The approved call, once resumed: its decision and the answer the agent got."""

    event_id: UUID | None
    claimed_at: datetime | None
    verdict: str | None
    policy_id: str | None
    decided_at: datetime | None
    # Null while it runs.
    response_status: int | None
    response: Any = None


class ApprovalDetail(ApprovalSummary, frozen=True, kw_only=True):
    """Everything a reviewer decides on (who asked, what for, what policy said,
    what the agent did just before) and what became of it (votes, execution)."""

    event_id: UUID
    agent_intent: dict[str, Any]
    params: dict[str, Any]
    reasons: list[str]
    policy_id: str | None
    bundle_revisions: dict[str, str] | None
    resolution_comment: str | None
    votes: list[VoteView]
    recent_actions: list[RecentAction]
    execution: Execution | None
