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


class StoreCredential(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    secret: dict[str, Any]
    base_url: str | None = None


class Health(msgspec.Struct, frozen=True, kw_only=True):
    status: str
    database: str
    policy_engine: str
