"""Wire types of the HTTP API (requests are strict, responses evolve by
adding defaulted fields, never by changing a field's type)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec

from arx.identity.types import AgentName, IntentManifest, Slug

ConnectorId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
OperationName = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class ExecuteRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    connector: ConnectorId
    operation: OperationName
    params: dict[str, Any] = msgspec.field(default_factory=dict)


class ExecuteResponse(msgspec.Struct, frozen=True, kw_only=True):
    event_id: UUID
    verdict: str
    risk_score: int
    policy_id: str | None
    reasons: list[str]
    bundle_revision: str | None
    result: dict[str, Any]


class PendingResponse(msgspec.Struct, frozen=True, kw_only=True):
    event_id: UUID
    approval_id: UUID
    status: str
    verdict: str
    risk_score: int
    policy_id: str | None
    reasons: list[str]
    bundle_revision: str | None
    poll_url: str
    expires_at: datetime
    # Distinct reviewers who must approve (policy's two-person rule); one rejection rejects.
    approvals_required: int = 1


class OperationInfo(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    kind: str
    base_risk: int
    reversible: bool
    target_type: str
    summary: str
    inverse: str | None
    params_schema: dict[str, Any]


class ConnectorInfo(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    auth_scheme: str
    operations: list[OperationInfo]


class ConnectorList(msgspec.Struct, frozen=True, kw_only=True):
    connectors: list[ConnectorInfo]


class CreateOrg(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    slug: Slug
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class CreateAgent(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: AgentName
    intent: IntentManifest = msgspec.field(default_factory=IntentManifest)
    # The person accountable for it (an active member). Default: the person
    # registering it, or nobody when an admin token does.
    owner_user_id: UUID | None = None


class StoreCredential(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    secret: dict[str, Any]
    base_url: str | None = None


class AddConnectorHost(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A host the connector's credentials may go to: a DNS name, or ``*.domain``
    (exactly one label in front of the domain)."""

    host: Annotated[
        str,
        msgspec.Meta(
            min_length=4,
            max_length=253,
            # The last label starts with a letter: an address is never a host.
            pattern=r"^(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]"
            r"([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$",
        ),
    ]


class Health(msgspec.Struct, frozen=True, kw_only=True):
    status: str
    database: str
    policy_engine: str


class Problem(msgspec.Struct, frozen=True, kw_only=True):
    """An RFC 9457 problem: the body of every error answer (``application/problem+json``).

    Only the OpenAPI document reads this Struct: ``arx.api.problems`` builds
    the bodies. The first six members are always present; the extension
    members appear where the error carries them, and new ones may be added
    (clients must ignore members they do not know).
    """

    type: Annotated[str, msgspec.Meta(description="https://arx.dev/problems/<code>")]
    title: str
    status: Annotated[int, msgspec.Meta(ge=400, le=599)]
    detail: str
    code: Annotated[str, msgspec.Meta(description="Stable machine-readable error code")]
    request_id: Annotated[str, msgspec.Meta(description="Also in the X-Request-ID header")]
    # A field error: the offending field (``params.ids[0]``, ``Idempotency-Key``).
    field: str | None = None
    # A decision was recorded: its audit event and what the policy said.
    event_id: str | None = None
    verdict: str | None = None
    risk_score: int | None = None
    policy_id: str | None = None
    reasons: list[str] | None = None
    bundle_revision: str | None = None
    # The connector and operation the problem is about.
    connector: str | None = None
    operation: str | None = None
    # The tool's answer: its HTTP status, messages and trace id, and on a 429
    # when it lets ARX back in (epoch seconds, and seconds from now).
    upstream_status: int | None = None
    errors: list[str] | None = None
    trace_id: str | None = None
    retry_after: int | None = None
    retry_after_seconds: int | None = None
    # Why a tool call failed (a transport error's name, ``deadline``).
    reason: str | None = None
    # 409 idempotency_outcome_unknown: the first attempt's recorded outcome, if any.
    outcome: str | None = None
