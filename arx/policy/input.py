"""Building the policy input for one call (the OPA request body).

The body is encoded once, by msgspec, straight from typed values: the
session summary is spliced in as the JSON PostgreSQL produced, and nothing
is converted to Python builtins on the way.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec

from arx.connectors.types import Operation
from arx.identity.types import AgentIdentity
from arx.policy.types import AgentInput, ApprovalInput, OperationInput, OrgInput, PolicyInput


class _Query(msgspec.Struct, frozen=True):
    input: PolicyInput


_encoder = msgspec.json.Encoder()


def policy_input(
    who: AgentIdentity,
    connector: str,
    operation: Operation,
    params: dict[str, Any],
    session: msgspec.Raw,
    *,
    approval: UUID | None = None,
) -> PolicyInput:
    now_ns = time.time_ns()
    targets = operation.targets(params)
    return PolicyInput(
        agent=AgentInput(id=who.agent_id, name=who.agent_name, intent=who.intent),
        org=OrgInput(id=who.org_id, slug=who.org_slug),
        connector=connector,
        operation=OperationInput(
            name=operation.name,
            kind=operation.kind.value,
            base_risk=operation.base_risk,
            reversible=operation.reversible,
            target_type=operation.target_type,
        ),
        params=params,
        target_count=len(set(targets)) if targets else 0,
        session_context=session,
        now=datetime.fromtimestamp(now_ns / 1e9, UTC),
        now_ns=now_ns,
        approval=ApprovalInput(id=approval) if approval is not None else None,
    )


def query_body(doc: PolicyInput) -> bytes:
    """``{"input": …}``, as OPA's data API takes it."""
    return _encoder.encode(_Query(doc))
