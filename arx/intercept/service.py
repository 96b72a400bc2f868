"""The intercept: the six steps of DESIGN.md section 3, in order, for every call.

Guarantees:
- the decision event is committed before the connector runs; if that commit
  fails, nothing runs (503);
- only PERMIT executes; ESCALATE answers pending, anything else is refused;
- no database connection is held while OPA or the tool is asked;
- one agent's decisions are serialised: each is made on a session that
  includes every earlier decision of that agent (read, decide, record; if
  another decision was recorded meanwhile, read and decide again);
- the call answers within its deadline (the tool call stops
  ``RESULT_WRITE_SECONDS`` before it, so that its result can be written; a
  result write, and only that, may run up to that long past it); a result
  that cannot be written is spooled, never lost;
- the decrypted secret lives for the connector call alone.
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

import httpx
import msgspec

from arx.approvals.service import request_hash
from arx.approvals.types import ApprovalRequest
from arx.audit.trail import RESULT_WRITE_SECONDS, RecordedDecision, Trail
from arx.audit.types import DecisionEvent, ExecuteContext, ResultEvent
from arx.config import KILL_AFTER_DECISION, Settings, sandbox_enabled
from arx.connectors.base import BaseConnector
from arx.connectors.http import transport_failure
from arx.connectors.registry import connector_class
from arx.connectors.types import CallContext, ExecuteCall
from arx.deadline import Deadline
from arx.errors import (
    ARXError,
    CredentialNotFoundError,
    DeadlineExceededError,
    DestinationRefusedError,
    OutcomeUnknownError,
    PermissionDeniedError,
    SessionContentionError,
)
from arx.identity.types import AgentIdentity
from arx.intercept.turns import AgentTurns
from arx.intercept.types import Executed, Outcome, Pending
from arx.logs import client_request_id_var, get_logger, request_id_var
from arx.policy.client import PolicyClient, revision_label
from arx.policy.input import policy_input, query_body
from arx.policy.types import Decision, Verdict
from arx.vault import destination
from arx.vault.service import Vault

log = get_logger("arx.intercept")

# Calls of one agent spread over several API processes may each find the
# session moved on; past this many tries the call gives up (503, nothing ran).
MAX_DECISION_ATTEMPTS = 8


class Intercept:
    def __init__(
        self,
        *,
        settings: Settings,
        trail: Trail,
        policy: PolicyClient,
        vault: Vault,
        connectors: Mapping[str, BaseConnector],
    ) -> None:
        self._settings = settings
        self._trail = trail
        self._policy = policy
        self._vault = vault
        self._connectors = connectors
        self._turns = AgentTurns()
        if settings.test_fault:
            # Said on every start, loudly: this process will kill itself.
            log.critical(
                "TEST FAULT ARMED: this process is not fit to serve anyone",
                extra={"test_fault": settings.test_fault},
            )

    def prepare(self, connector: str, operation: str, params: dict[str, Any]) -> ExecuteCall:
        """Check that the call names a known operation with valid params (no I/O)."""
        return connector_class(connector).validate(operation, params)

    async def execute(
        self,
        who: AgentIdentity,
        call: ExecuteCall,
        *,
        deadline: Deadline,
        idempotency_key: str | None = None,
        approval_id: UUID | None = None,
    ) -> Outcome:
        """``approval_id``: the call resumes this approved request (its policy
        input says so, and its decision event names it)."""
        connector = self._connectors[call.connector]
        op = call.operation

        # Steps 1-3 take the agent's turn: the session read, the decision made
        # on it and its record belong together. A turn lasts a few
        # milliseconds; waiting longer than one policy timeout for it means the
        # calls ahead are stuck (a frozen OPA), and this one would be too.
        turn_wait = deadline.budget(self._settings.opa_timeout_seconds)
        async with self._turns.turn(who.agent_id, turn_wait):
            for _ in range(MAX_DECISION_ATTEMPTS):
                # 1. Load credentials: locate the connector's credential (it is
                #    decrypted only in step 5) and read the agent's session.
                ctx = await self._trail.read_context(who, call.connector, deadline)
                if ctx.credential is None:
                    raise CredentialNotFoundError(
                        f"the org has no credential for connector {call.connector!r}; "
                        "an admin must add one",
                        extra={"connector": call.connector},
                    )
                # 2. Evaluate policy. Nothing is held open meanwhile; any failure
                #    raises and nothing below runs.
                query = query_body(
                    policy_input(
                        who,
                        call.connector,
                        op,
                        call.raw_params,
                        ctx.session,
                        approval=approval_id,
                    )
                )
                decision = await self._policy.decide(query, within=deadline.remaining())
                # 3. Write the decision event (for ESCALATE with its approval
                #    request). If the commit fails, nothing executes.
                event = self._decision_event(who, call, decision, idempotency_key, approval_id)
                # A resumed request that policy escalates again is not asked a
                # second time: it is refused below like a denial.
                approval = None if approval_id else self._approval(who, call, decision)
                # The event keeps the exact input OPA decided on (replay).
                recorded = await self._trail.record_decision(
                    event, session=ctx, approval=approval, deadline=deadline, query=query
                )
                if recorded is not None:
                    break
            else:
                raise SessionContentionError(
                    f"the agent's session changed {MAX_DECISION_ATTEMPTS} times while this "
                    "call was being decided; retry",
                    headers={"retry-after": "1"},
                )

        # 4. Route on the verdict: PERMIT alone goes on to execute.
        revision = revision_label(decision.bundle_revisions)
        match decision.verdict:
            case Verdict.PERMIT:
                pass
            case Verdict.ESCALATE if approval is not None:
                return _pending(event, approval, decision, revision, recorded)
            case _:
                raise PermissionDeniedError(
                    f"{call.connector} {op.name} was denied by policy {decision.policy_id}",
                    extra=_decision_members(event, decision, revision),
                )

        if self._settings.test_fault == KILL_AFTER_DECISION:
            # Test-only (arx.config: never armed without its acknowledgement):
            # die as a crash would, the decision committed, the tool not called.
            os.kill(os.getpid(), signal.SIGKILL)

        # 5. Execute, with the credential decrypted for this one call.
        try:
            result = await self._run(who, connector, ctx, call, deadline)
        except Exception as exc:
            # 6 (failure). The error, never the secret, is appended.
            unknown = isinstance(exc, OutcomeUnknownError)
            await self._record_result(
                who,
                event,
                recorded,
                deadline,
                outcome="unknown" if unknown else "error",
                error=_error_record(exc, event.id),
            )
            raise

        # 6. Append the result event referencing the decision.
        await self._record_result(who, event, recorded, deadline, outcome="success", result=result)
        return Executed(
            event_id=event.id,
            verdict=decision.verdict.value,
            risk_score=decision.risk_score,
            policy_id=decision.policy_id,
            reasons=decision.reasons,
            bundle_revision=revision,
            result=result,
        )

    async def _record_result(
        self,
        who: AgentIdentity,
        decision: DecisionEvent,
        recorded: RecordedDecision,
        deadline: Deadline,
        *,
        outcome: str,
        result: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
    ) -> None:
        await self._trail.record_result(
            ResultEvent(
                id=uuid.uuid4(),
                org_id=who.org_id,
                agent_id=who.agent_id,
                decision_id=decision.id,
                connector=decision.connector,
                operation=decision.operation,
                outcome=outcome,
                result=result,
                error=error,
                request_id=request_id_var.get(),
                client_request_id=client_request_id_var.get(),
                decided_at=recorded.decided_at,
                decision_seq=recorded.decision_seq,
            ),
            deadline,
        )

    def _decision_event(
        self,
        who: AgentIdentity,
        call: ExecuteCall,
        decision: Decision,
        idempotency_key: str | None,
        approval_id: UUID | None,
    ) -> DecisionEvent:
        op = call.operation
        return DecisionEvent(
            id=uuid.uuid4(),
            org_id=who.org_id,
            agent_id=who.agent_id,
            connector=call.connector,
            operation=op.name,
            operation_kind=op.kind.value,
            params=call.raw_params,
            targets=op.targets(call.raw_params),
            verdict=decision.verdict.value,
            risk_score=decision.risk_score,
            policy_id=decision.policy_id,
            reasons=decision.reasons,
            bundle_revisions=decision.bundle_revisions,
            request_id=request_id_var.get(),
            client_request_id=client_request_id_var.get(),
            idempotency_key=idempotency_key,
            approval_id=approval_id,
        )

    def _approval(
        self, who: AgentIdentity, call: ExecuteCall, decision: Decision
    ) -> ApprovalRequest | None:
        if decision.verdict is not Verdict.ESCALATE:
            return None
        digest = request_hash(who.agent_id, call.connector, call.operation.name, call.raw_params)
        return ApprovalRequest(
            id=uuid.uuid4(),
            request_hash=digest.hex(),
            approvals_required=decision.approvals_required,
            ttl_seconds=decision.approval_ttl_seconds,
            default_ttl_seconds=self._settings.approval_ttl_seconds,
        )

    async def _run(
        self,
        who: AgentIdentity,
        connector: BaseConnector,
        ctx: ExecuteContext,
        call: ExecuteCall,
        deadline: Deadline,
    ) -> dict[str, Any]:
        credential = ctx.credential
        assert credential is not None  # checked in step 1
        # Where the secret would go, held to today's rules (the URL itself is
        # sealed with the secret: a changed one fails to open below).
        try:
            destination.check(
                credential.base_url,
                connector=connector.id,
                connector_hosts=connector.allowed_hosts,
                org_hosts=ctx.allowed_hosts,
                sandbox=sandbox_enabled(self._settings, who.org_slug),
            )
        except destination.DestinationError as exc:
            raise DestinationRefusedError(
                f"the {connector.id} credential's URL is refused, and the tool was not called: "
                f"{exc}",
                extra={"connector": connector.id},
            ) from None
        # What is left of the deadline, less the time its result's write needs.
        budget = min(
            self._settings.connector_timeout_seconds,
            deadline.remaining() - RESULT_WRITE_SECONDS,
        )
        if budget <= 0:
            raise DeadlineExceededError(
                "no time was left to call the tool; it was not called",
                headers={"retry-after": "1"},
            )
        context = CallContext(
            base_url=credential.base_url,
            credential_key=credential.cache_key,
            max_response_bytes=self._settings.max_tool_response_bytes,
        )
        secret = await self._vault.open_credential(credential, connector.secret_type)
        try:
            async with _tool_deadline(budget, connector.id):
                return await connector._execute_impl(call.operation, call.params, secret, context)
        except httpx.TransportError as exc:
            # A connector that let one through: classify it here.
            raise transport_failure(exc, connector.id, call.operation.name) from None
        except httpx.InvalidURL:
            # Built before anything is sent; the destination rules should have
            # refused such a URL already.
            raise DestinationRefusedError(
                f"the {connector.id} credential's URL cannot be requested; the tool was not called",
                extra={"connector": connector.id},
            ) from None
        finally:
            del secret


@asynccontextmanager
async def _tool_deadline(seconds: float, tool: str) -> AsyncIterator[None]:
    """``asyncio.timeout`` whose expiry says what it means: the outcome is unknown."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        raise OutcomeUnknownError(
            f"{tool} did not answer within {seconds:.3g} s; it may have acted: "
            "check the tool before retrying",
            extra={"reason": "deadline"},
        ) from None


def _error_record(exc: BaseException, decision_id: uuid.UUID) -> dict[str, Any]:
    """What the trail keeps of a failed call: the error, never a secret."""
    if isinstance(exc, ARXError):
        exc.extra["event_id"] = str(decision_id)
        return {"code": exc.code, "detail": exc.detail, **_jsonable(exc.extra)}
    # Anything else is a bug: only its type is recorded.
    return {"code": "internal_error", "detail": type(exc).__name__}


def _jsonable(extra: dict[str, Any]) -> dict[str, Any]:
    return msgspec.to_builtins(extra, enc_hook=str)  # type: ignore[no-any-return]


def _pending(
    event: DecisionEvent,
    approval: ApprovalRequest,
    decision: Decision,
    revision: str | None,
    recorded: RecordedDecision,
) -> Pending:
    assert recorded.approval_expires_at is not None  # written with the ESCALATE decision
    return Pending(
        event_id=event.id,
        approval_id=approval.id,
        verdict=decision.verdict.value,
        risk_score=decision.risk_score,
        policy_id=decision.policy_id,
        reasons=decision.reasons,
        bundle_revision=revision,
        expires_at=recorded.approval_expires_at,
        approvals_required=approval.approvals_required,
    )


def _decision_members(
    event: DecisionEvent, decision: Decision, revision: str | None
) -> dict[str, Any]:
    return {
        "event_id": str(event.id),
        "verdict": decision.verdict.value,
        "risk_score": decision.risk_score,
        "policy_id": decision.policy_id,
        "reasons": decision.reasons,
        "bundle_revision": revision,
    }
