"""The execute path's reads and writes of the audit trail: one round trip each.

Guarantees:
- ``read_context`` reads, in one statement, the connector's credential
  locator and the agent's session summary, and holds no connection after;
- ``record_decision`` appends the decision event (with, for ESCALATE, its
  approval request) in one statement, and only if the agent's latest
  decision is still the one the session was read at: of two calls decided
  on the same history only the first is recorded, the second must read again.
  The event keeps the policy input of the OPA request it was decided on,
  as the bytes OPA received (``arx policy replay`` evaluates them again);
- ``record_result`` appends the result event, or, when PostgreSQL cannot take
  it, puts it in the durable spool, from which it is replayed later. The
  decision is always committed before its connector runs (the intercept),
  so a crash between the two leaves a decision without a result, never a
  result without a decision.

A NUL in any string of an event (a tool's answer may hold one; ``jsonb``
cannot) is replaced by U+FFFD before it is written.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

import msgspec
from psycopg.rows import class_row
from psycopg.types.json import Json, Jsonb
from psycopg_pool import AsyncConnectionPool

from arx.approvals.types import ApprovalRequest
from arx.audit import repo
from arx.audit.spool import ResultSpool
from arx.audit.types import DecisionEvent, ExecuteContext, ResultEvent
from arx.db.pool import Conn, call, call_function
from arx.deadline import Deadline
from arx.errors import ARXError
from arx.identity.types import AgentIdentity
from arx.logs import get_logger
from arx.vault.types import Sealed, StoredCredential

log = get_logger("arx.audit")

# Writing a result: the tool call leaves this much of the execute's deadline
# for it, and it gets at least this long even when the deadline is spent,
# before it goes to the spool.
RESULT_WRITE_SECONDS = 1.0
# A spooled result being replayed in the background.
REPLAY_WRITE_SECONDS = 2.0

_encoder = msgspec.json.Encoder()
_ESCAPED_NUL = b"\\u0000"


class RecordedDecision(NamedTuple):
    """What ``arx.record_decision`` answers: no number when the session moved on."""

    agent_seq: int | None
    approval_expires_at: datetime | None
    # Where the decision stands (its created_at and seq): its result carries
    # them, so that arx.record_result finds it in one probe (migration 0019).
    decided_at: datetime | None
    decision_seq: int | None


class _ContextRow(NamedTuple):
    """The one row of ``arx.execute_context``."""

    credential_id: UUID | None
    credential_version: int
    base_url: str
    # NULL for a deletion (a tombstone version).
    kek_id: str | None
    wrapped_dek: bytes | None
    nonce: bytes | None
    ciphertext: bytes | None
    head_seq: int
    head_tallies: list[int]
    session: str
    allowed_hosts: list[str]


def _without_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value


def storable(event: msgspec.Struct) -> bytes:
    """The event as JSON that ``jsonb`` accepts: any NUL character replaced."""
    data = _encoder.encode(event)
    if _ESCAPED_NUL in data:
        # Rare: walk the builtins form only when the fast check finds one.
        data = _encoder.encode(_without_nul(msgspec.to_builtins(event)))
    return data


def _jsonb(data: bytes) -> Jsonb:
    return Jsonb(msgspec.Raw(data))


class Trail:
    def __init__(
        self,
        pool: AsyncConnectionPool[Conn],
        spool: ResultSpool,
        *,
        pool_wait: float,
        session_recent: int,
    ) -> None:
        self._pool = pool
        self._spool = spool
        self._pool_wait = pool_wait
        self._recent = session_recent

    async def read_context(
        self, who: AgentIdentity, connector: str, deadline: Deadline
    ) -> ExecuteContext:
        row = await call_function(
            self._pool,
            repo.EXECUTE_CONTEXT,
            (who.key_id, who.org_id, who.agent_id, connector, self._recent),
            deadline=deadline,
            pool_wait=self._pool_wait,
            row_factory=class_row(_ContextRow),
        )
        credential = None
        if (
            row.credential_id is not None
            and row.kek_id is not None
            and row.wrapped_dek is not None
            and row.nonce is not None
            and row.ciphertext is not None
        ):
            credential = StoredCredential(
                id=row.credential_id,
                org_id=who.org_id,
                connector=connector,
                version=row.credential_version,
                base_url=row.base_url,
                sealed=Sealed(
                    kek_id=row.kek_id,
                    wrapped_dek=row.wrapped_dek,
                    nonce=row.nonce,
                    ciphertext=row.ciphertext,
                ),
            )
        return ExecuteContext(
            credential=credential,
            allowed_hosts=tuple(row.allowed_hosts),
            head_seq=row.head_seq,
            head_tallies=row.head_tallies,
            session=msgspec.Raw(row.session.encode()),
        )

    async def record_decision(
        self,
        event: DecisionEvent,
        *,
        session: ExecuteContext,
        approval: ApprovalRequest | None,
        deadline: Deadline,
        query: bytes | None = None,
    ) -> RecordedDecision | None:
        """Commit the decision made on ``session``; ``None`` if the agent's
        session moved on meanwhile (nothing is written then).

        ``query``: the request body OPA decided on (``{"input": …}``, as
        ``arx.policy.input.query_body`` encoded it). PostgreSQL keeps its input
        with the event, unparsed by Python; without it the event is recorded
        as not replayable.
        """
        recorded = await call_function(
            self._pool,
            repo.RECORD_DECISION,
            (
                _jsonb(storable(event)),
                session.head_seq,
                session.head_tallies,
                Jsonb(approval) if approval else None,
                # Sent as json, and stored as json: the bytes go through as they are.
                Json(msgspec.Raw(query)) if query is not None else None,
            ),
            deadline=deadline,
            pool_wait=self._pool_wait,
            row_factory=class_row(RecordedDecision),
        )
        return recorded if recorded.agent_seq is not None else None

    async def record_result(self, event: ResultEvent, deadline: Deadline) -> None:
        """Append the result; if the database cannot take it, spool it."""
        data = storable(event)
        budget = Deadline(max(deadline.remaining(), RESULT_WRITE_SECONDS))
        try:
            await call(
                self._pool,
                repo.RECORD_RESULT,
                (_jsonb(data),),
                deadline=budget,
                pool_wait=self._pool_wait,
            )
        except ARXError as exc:
            # The operation already ran: the agent still gets its answer, and
            # the event reaches the trail when the database is back.
            try:
                await self._spool.put(event.id, data)
            except OSError as spool_exc:
                log.critical(
                    "result event lost: neither the audit trail nor the spool could take it",
                    extra={
                        "decision_id": str(event.decision_id),
                        "cause": exc.code,
                        "spool_error": spool_exc.strerror,
                    },
                )
                return
            log.error(
                "result event spooled: the audit trail could not take it",
                extra={"decision_id": str(event.decision_id), "cause": exc.code},
            )

    @property
    def spool(self) -> ResultSpool:
        return self._spool

    async def replay_spool(self) -> int:
        """Move spooled results into the trail; returns how many went in."""
        return await self._spool.replay(self._write_spooled)

    async def _write_spooled(self, data: bytes) -> None:
        await call(
            self._pool,
            repo.RECORD_RESULT,
            (_jsonb(data),),
            deadline=Deadline(REPLAY_WRITE_SECONDS),
            pool_wait=self._pool_wait,
        )
