"""BaseConnector: the one path every operation takes (the INV-002 intercept).

Subclasses declare ``id``, ``auth_scheme``, ``secret_type`` (the msgspec
Struct their decrypted credential decodes into), ``default_base_url`` and
the ``operations`` table, and implement ``_execute_impl``. They never touch
policy, audit or the vault: ``execute()`` (in this module) does, in the
order DESIGN.md section 3 fixes.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar
from uuid import UUID

import httpx
import msgspec
import psycopg
from psycopg.types.json import Jsonb

from arx.approvals.service import create_request
from arx.audit import repo as audit_repo
from arx.audit.service import epoch_ns, recent_actions
from arx.audit.types import SessionAction
from arx.connectors.types import CallContext, ExecuteCall, Executed, Operation, Outcome, Pending
from arx.db.pool import Conn, org_transaction
from arx.errors import (
    ARXError,
    ConnectorError,
    DatabaseUnavailableError,
    InvalidFieldError,
    PermissionDeniedError,
    UnknownOperationError,
)
from arx.identity.types import AgentIdentity
from arx.logs import get_logger, request_id_var
from arx.policy.client import revision_label
from arx.policy.types import (
    AgentInput,
    Decision,
    OperationInput,
    OrgInput,
    PolicyInput,
    Verdict,
)
from arx.vault.service import StoredCredential, locate, open_secret

if TYPE_CHECKING:
    from arx.runtime import Runtime

log = get_logger("arx.intercept")


class BaseConnector(ABC):
    id: ClassVar[str]
    auth_scheme: ClassVar[str]
    secret_type: ClassVar[type[msgspec.Struct]]
    default_base_url: ClassVar[str]
    operations: ClassVar[Mapping[str, Operation]]

    def __init__(self, http: httpx.AsyncClient) -> None:
        # One shared client with explicit timeouts, injected so tests can
        # point it at an in-process fake through httpx.ASGITransport.
        self._http = http

    @classmethod
    def operation(cls, name: str) -> Operation:
        try:
            return cls.operations[name]
        except KeyError:
            raise UnknownOperationError(
                f"connector {cls.id!r} has no operation {name!r}",
                extra={"connector": cls.id, "operation": name},
            ) from None

    @abstractmethod
    async def _execute_impl(
        self,
        operation: Operation,
        params: msgspec.Struct,
        secret: Any,
        context: CallContext,
    ) -> dict[str, Any]:
        """Call the tool's API and return a JSON-serialisable result.

        ``secret`` is an instance of ``secret_type``; it must not be logged,
        returned, or placed in an exception message. Failures raise
        ``ConnectorAuthError`` / ``ConnectorRequestError``.
        """

    @classmethod
    def validate(cls, operation_name: str, params: dict[str, Any]) -> ExecuteCall:
        """Check an operation's params against its table entry (no I/O)."""
        operation = cls.operation(operation_name)
        try:
            typed = msgspec.convert(params, operation.params)
        except msgspec.ValidationError as exc:
            raise InvalidFieldError.from_validation(
                exc, prefix="params", what=f"invalid params for {cls.id} {operation_name}: "
            ) from None
        return ExecuteCall(operation=operation, params=typed, raw_params=params)

    async def execute(self, rt: Runtime, who: AgentIdentity, call: ExecuteCall) -> Outcome:
        """The intercept: the six steps of DESIGN.md section 3, in order."""
        op = call.operation

        # Steps 1-3 share one transaction (one BEGIN/COMMIT instead of two);
        # the decision event is committed when it closes, before step 4.
        async with org_transaction(rt.pool, who.org_id) as conn:
            # 1. Locate the org's credential (decrypted only in step 5) and
            #    read the agent's recent actions for intent scoring.
            credential = await locate(conn, who.org_id, self.id)
            session = await recent_actions(conn, who.org_id, who.agent_id)

            # 2. Evaluate policy. Any failure raises, the transaction rolls
            #    back, and nothing below runs.
            decision = await rt.policy.decide(self._policy_input(who, call, session))

            # 3. Write the decision event (and, for ESCALATE, its approval
            #    request). If the commit fails, nothing executes.
            event_id, approval = await self._record_decision(conn, rt, who, call, decision)
        revision = revision_label(decision.bundle_revisions)

        # 4. Route on the verdict.
        if decision.verdict is Verdict.DENY:
            raise PermissionDeniedError(
                f"{self.id} {op.name} was denied by policy {decision.policy_id}",
                extra=_decision_members(event_id, decision, revision),
            )
        if approval is not None:
            approval_id, expires_at = approval
            return Pending(
                event_id=event_id,
                approval_id=approval_id,
                verdict=decision.verdict.value,
                risk_score=decision.risk_score,
                policy_id=decision.policy_id,
                reasons=decision.reasons,
                bundle_revision=revision,
                expires_at=expires_at,
            )

        # 5. Execute with credentials decrypted for this one call.
        try:
            result = await self._run(rt, credential, call)
        except Exception as exc:
            # 6 (failure). The error, never the secret, is appended. Anything
            # that is not an ARXError is a bug: only its type is recorded.
            if isinstance(exc, ARXError):
                exc.extra["event_id"] = str(event_id)
                error = {"code": exc.code, "detail": exc.detail, **_jsonable(exc.extra)}
            else:
                error = {"code": "internal_error", "detail": type(exc).__name__}
            await self._log_result(rt, who, event_id, op, outcome="error", result=None, error=error)
            raise

        # 6. Append the result event referencing the decision.
        result_id = await self._log_result(
            rt, who, event_id, op, outcome="success", result=result, error=None
        )
        return Executed(
            event_id=event_id,
            result_event_id=result_id,
            verdict=decision.verdict.value,
            risk_score=decision.risk_score,
            policy_id=decision.policy_id,
            reasons=decision.reasons,
            bundle_revision=revision,
            result=result,
        )

    def _policy_input(
        self, who: AgentIdentity, call: ExecuteCall, session: list[SessionAction]
    ) -> PolicyInput:
        op = call.operation
        now = datetime.now(UTC)
        return PolicyInput(
            agent=AgentInput(
                id=who.agent_id, name=who.agent_name, intent=msgspec.to_builtins(who.intent)
            ),
            org=OrgInput(id=who.org_id, slug=who.org_slug),
            connector=self.id,
            operation=OperationInput(
                name=op.name,
                kind=op.kind.value,
                base_risk=op.base_risk,
                reversible=op.reversible,
                target_type=op.target_type,
            ),
            params=call.raw_params,
            session_context=session,
            now=now,
            now_ns=epoch_ns(now),
        )

    async def _record_decision(
        self, conn: Conn, rt: Runtime, who: AgentIdentity, call: ExecuteCall, decision: Decision
    ) -> tuple[UUID, tuple[UUID, datetime] | None]:
        """Write the decision event; for ESCALATE also its approval request."""
        op = call.operation
        event_id = uuid.uuid4()
        approval = None
        await conn.execute(
            audit_repo.INSERT_DECISION,
            (
                event_id,
                who.org_id,
                who.agent_id,
                self.id,
                op.name,
                op.kind.value,
                Jsonb(call.raw_params),
                decision.verdict.value,
                decision.risk_score,
                decision.policy_id,
                Jsonb(decision.reasons),
                Jsonb(decision.bundle_revisions),
                request_id_var.get(),
            ),
        )
        if decision.verdict is Verdict.ESCALATE:
            approval = await create_request(
                conn,
                org_id=who.org_id,
                event_id=event_id,
                agent_id=who.agent_id,
                connector=self.id,
                operation=op.name,
                params=call.raw_params,
                ttl_seconds=rt.settings.approval_ttl_seconds,
            )
        return event_id, approval

    async def _run(
        self, rt: Runtime, credential: StoredCredential, call: ExecuteCall
    ) -> dict[str, Any]:
        secret = open_secret(rt.settings.kek, credential, self.secret_type)
        context = CallContext(base_url=credential.base_url, credential_key=credential.cache_key)
        try:
            return await self._execute_impl(call.operation, call.params, secret, context)
        except ARXError:
            raise
        except httpx.HTTPError as exc:
            raise ConnectorError(f"{self.id} could not be reached ({type(exc).__name__})") from None
        finally:
            del secret

    async def _log_result(
        self,
        rt: Runtime,
        who: AgentIdentity,
        decision_id: UUID,
        op: Operation,
        *,
        outcome: str,
        result: dict[str, Any] | None,
        error: dict[str, Any] | None,
    ) -> UUID | None:
        result_id = uuid.uuid4()
        try:
            async with org_transaction(rt.pool, who.org_id) as conn:
                await conn.execute(
                    audit_repo.INSERT_RESULT,
                    (
                        result_id,
                        who.org_id,
                        who.agent_id,
                        decision_id,
                        self.id,
                        op.name,
                        outcome,
                        Jsonb(result) if result is not None else None,
                        Jsonb(error) if error is not None else None,
                        request_id_var.get(),
                    ),
                )
        except (DatabaseUnavailableError, psycopg.Error) as exc:
            # The operation already ran: answering 503 ("nothing executed")
            # would be a lie. Record the loss loudly and let the caller see
            # the result; the committed decision event proves the attempt.
            log.error(
                "result event could not be written: outcome unknown in the audit trail",
                extra={
                    "decision_id": str(decision_id),
                    "outcome": outcome,
                    "cause": type(exc).__name__,
                },
            )
            return None
        return result_id


def _jsonable(extra: dict[str, Any]) -> dict[str, Any]:
    return msgspec.to_builtins(extra, enc_hook=str)  # type: ignore[no-any-return]


def _decision_members(event_id: UUID, decision: Decision, revision: str | None) -> dict[str, Any]:
    return {
        "event_id": str(event_id),
        "verdict": decision.verdict.value,
        "risk_score": decision.risk_score,
        "policy_id": decision.policy_id,
        "reasons": decision.reasons,
        "bundle_revision": revision,
    }
