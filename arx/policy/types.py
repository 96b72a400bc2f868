"""The policy input and decision documents (see rego/schema/input.json)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

import msgspec

from arx.identity.types import IntentManifest


class Verdict(StrEnum):
    PERMIT = "PERMIT"
    ESCALATE = "ESCALATE"
    DENY = "DENY"


class AgentInput(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    name: str
    intent: IntentManifest


class OrgInput(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    slug: str


class OperationInput(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    kind: str
    base_risk: int
    reversible: bool
    target_type: str


class ApprovalInput(msgspec.Struct, frozen=True, kw_only=True):
    """The call resumes a request reviewers approved (rego/schema/input.json)."""

    id: UUID
    status: str = "approved"


class PolicyInput(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    agent: AgentInput
    org: OrgInput
    connector: str
    operation: OperationInput
    params: dict[str, Any]
    # Distinct targets the call names (Operation.targets); 0 when none. The
    # blast-radius factor of the intent scoring reads it.
    target_count: int
    # The agent's session summary exactly as PostgreSQL built it: recent
    # decisions and counts over 1/5/60-minute windows (arx.execute_context).
    session_context: msgspec.Raw
    now: datetime
    now_ns: int
    # Left out of the input unless the call resumes an approved request.
    approval: ApprovalInput | None = None


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    """A validated ``data.arx.decision``; anything else fails closed."""

    verdict: Verdict
    risk_score: Annotated[int, msgspec.Meta(ge=0, le=100)]
    policy_id: str | None
    reasons: list[str]
    # For ESCALATE: how many distinct reviewers must approve, and the rule's
    # own expiry (None: the org's default, else the deployment's).
    approvals_required: Annotated[int, msgspec.Meta(ge=1, le=5)] = 1
    approval_ttl_seconds: Annotated[int, msgspec.Meta(ge=60, le=604800)] | None = None
    # Filled in from OPA provenance, not from the policy's own output.
    bundle_revisions: dict[str, str] = msgspec.field(default_factory=dict)
