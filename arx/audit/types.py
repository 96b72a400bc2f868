"""Audit event shapes: as written on the execute path, as stored, as listed."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from arx.approvals.types import ApprovalDetail
from arx.vault.types import StoredCredential


class DecisionEvent(msgspec.Struct, frozen=True, kw_only=True):
    """Step 3: what was asked, what policy answered, by which bundles.

    Field names are the columns of ``arx.audit_events``: the event travels to
    ``arx.record_decision`` as one JSON document. The policy input it was
    decided on travels beside it, as the bytes OPA received, and is stored in
    ``policy_input`` (migration 0014), never decoded here.
    """

    id: UUID
    org_id: UUID
    agent_id: UUID
    connector: str
    operation: str
    operation_kind: str
    params: dict[str, Any]
    targets: list[str] | None
    verdict: str
    risk_score: int
    policy_id: str | None
    reasons: list[str]
    bundle_revisions: dict[str, str]
    request_id: str | None
    idempotency_key: str | None = None
    # The caller's own X-Request-ID, beside ARX's request_id (never instead).
    client_request_id: str | None = None
    # The approval this decision resumes (a call reviewers approved).
    approval_id: UUID | None = None


class ResultEvent(msgspec.Struct, frozen=True, kw_only=True):
    """Step 6: what the tool did (or that nobody knows), referencing its decision."""

    id: UUID
    org_id: UUID
    agent_id: UUID
    decision_id: UUID
    connector: str
    operation: str
    outcome: str  # success | error | unknown
    result: Any = None
    error: dict[str, Any] | None = None
    request_id: str | None = None
    client_request_id: str | None = None
    # Where the decision stands (what arx.record_decision answered), so that
    # arx.record_result finds it in one probe and looks for this result in
    # the months from its decision's on. Not columns.
    decided_at: datetime | None = None
    decision_seq: int | None = None


class ExecuteContext(msgspec.Struct, frozen=True, kw_only=True):
    """What a decision needs, read in one round trip.

    ``session`` is the policy input's ``session_context`` as PostgreSQL wrote
    it (JSON text): it goes to OPA as it is. ``head_seq`` is the number of the
    agent's latest decision; the decision made on this session is recorded
    only if that is still the latest.
    """

    # The connector's current credential version; None if it has none (or
    # its latest version is a deletion).
    credential: StoredCredential | None
    # Hosts the org added to the connector's own (arx.vault.destination).
    allowed_hosts: tuple[str, ...] = ()
    head_seq: int
    # The head decision's running tallies (read, write, containment,
    # destructive, denied): the next decision's start from them.
    head_tallies: list[int]
    session: msgspec.Raw


class AuditEvent(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One event of the trail as a reader sees it.

    ``outcome`` on a result event is what the tool did: ``success``,
    ``error``, or ``unknown`` (the request reached the tool and no answer
    came back: the tool may have acted). On a PERMIT decision it is absent
    while its result may still come, and ``outcome_unknown`` once it is
    overdue and there is none (the process died between the decision and
    the result, or the result was lost): whether the tool was even called
    is unknown. That one is computed when the trail is read
    (``arx.audit.repo.OUTCOME_AS_READ``); the stored row is never changed,
    and a result that arrives later (from the spool) ends it.
    ``request_id`` is ARX's own id of the request that wrote the event;
    ``client_request_id`` the caller's X-Request-ID, when it sent one.
    """

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
    targets: list[str] | None = None
    agent_seq: int | None = None
    verdict: str | None = None
    risk_score: int | None = None
    policy_id: str | None = None
    reasons: list[str] | None = None
    bundle_revisions: dict[str, str] | None = None
    idempotency_key: str | None = None
    # A decision made when an approved request was resumed names the approval.
    approval_id: UUID | None = None
    outcome: str | None = None
    result: Any = None
    error: dict[str, Any] | None = None
    action: str | None = None
    details: dict[str, Any] | None = None
    actor: str | None = None
    request_id: str | None = None
    client_request_id: str | None = None
    # Where the sealer chained it; absent until then (well under a second).
    chain: ChainPosition | None = None


class ChainPosition(msgspec.Struct, frozen=True, kw_only=True):
    """An event's place in its org's hash chain (arx.audit.chain)."""

    org_seq: int
    hash: str


class AuditPage(msgspec.Struct, frozen=True, kw_only=True):
    """A page of the trail, newest first. ``next_cursor`` (null on the last
    page) asks for the events before it, with the same filters."""

    events: list[AuditEvent]
    next_cursor: str | None = None


class FollowPage(msgspec.Struct, frozen=True, kw_only=True):
    """Chained events after a cursor, in the org's chain order (``org_seq``).

    ``cursor`` is the ``org_seq`` of the last event here (the one asked
    after when there is none): ask after it next, and keep it to resume.
    A PERMIT decision is delivered when it is chained, before its result
    (its own event, later in the chain); one with no result event
    ``result_overdue_seconds`` after its ``created_at`` has an unknown
    outcome (list and export say ``outcome_unknown`` then; a follower that
    has passed it is not told again).
    """

    events: list[AuditEvent]
    cursor: int
    result_overdue_seconds: float


class CoveringCheckpoint(msgspec.Struct, frozen=True, kw_only=True):
    checkpoint_no: int
    org_seq: int
    signed_at: datetime


class AuditEventDetail(msgspec.Struct, frozen=True, kw_only=True):
    """One event and what belongs to it: a decision's results and approval,
    the first signed checkpoint that covers its chain position."""

    event: AuditEvent
    results: list[AuditEvent]
    # The approval request it asked for (ESCALATE) or resumed.
    approval: ApprovalDetail | None = None
    checkpoint: CoveringCheckpoint | None = None
