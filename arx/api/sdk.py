"""Agent-facing routes (``/v1/sdk``): translate HTTP to the intercept, never decide."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Request, Response, get, post
from litestar.exceptions import HTTPException
from litestar.params import FromPath, Parameter

from arx.api import body
from arx.api.guards import address_of
from arx.api.openapi import AGENT_KEY, RouteDoc, execute_body_schema, json_schema
from arx.api.problems import HTTP_CODES, problem_response
from arx.api.state import runtime
from arx.api.types import (
    ConnectorInfo,
    ConnectorList,
    ExecuteRequest,
    ExecuteResponse,
    OperationInfo,
    PendingResponse,
)
from arx.approvals import resume as resuming
from arx.approvals import waiters
from arx.approvals.service import get_for_agent, request_hash
from arx.approvals.types import ApprovalView
from arx.config import IDEMPOTENCY_ABANDONED_AFTER_SECONDS
from arx.connectors.catalog import connectors
from arx.connectors.types import ExecuteCall
from arx.deadline import Deadline
from arx.errors import (
    AddressNotAllowedError,
    AgentDisabledError,
    ARXError,
    AuthenticationError,
    ConnectorRateLimitedError,
    ConnectorUnreachableError,
    ServiceUnavailableError,
)
from arx.idempotency import service as idempotency
from arx.identity import keys
from arx.identity.network import admitted
from arx.identity.types import AgentIdentity
from arx.intercept.types import Executed, Outcome, Pending
from arx.logs import agent_id_var, org_id_var
from arx.runtime import Runtime

_encoder = msgspec.json.Encoder()


_EXECUTE_DOC = RouteDoc(
    security=AGENT_KEY,
    success={
        200: (ExecuteResponse, "Executed: the decision and the tool's result."),
        202: (
            PendingResponse,
            "The policy said ESCALATE: nothing ran yet; poll Location until a reviewer decides.",
        ),
    },
    errors=(400, 401, 403, 404, 409, 413, 415, 422, 429, 500, 502, 503, 504),
    body=execute_body_schema(),
    idempotent=True,
    retry_after={429: True, 503: False},
    holds=True,
)
_RESUME_DOC = RouteDoc(
    security=AGENT_KEY,
    success={200: (ExecuteResponse, "Executed: the fresh decision and the tool's result.")},
    errors=(400, 401, 403, 404, 409, 413, 415, 422, 429, 500, 502, 503, 504),
    body=execute_body_schema(),
    retry_after={409: False, 429: True, 503: False},
)
_AGENT_READ_DOC = RouteDoc(security=AGENT_KEY, errors=(401, 500, 503))
_APPROVAL_DOC = RouteDoc(security=AGENT_KEY, errors=(400, 401, 403, 404, 500, 503))
# The longest an approval poll is held open; clients poll again after it.
MAX_APPROVAL_WAIT_SECONDS = 60


async def _identify(request: Request[Any, Any, Any], deadline: Deadline) -> AgentIdentity:
    """The calling agent, admitted: its key is valid, neither it nor its org is
    switched off, and the client address is in the org's allowlist. A refusal
    here happens before policy is asked and is recorded as such."""
    rt = runtime(request)
    header = request.headers.get("authorization")
    try:
        who = await rt.auth.authenticate(header, deadline)
    except AuthenticationError as exc:
        key_id = keys.presented_key_id(header)
        if key_id is not None:
            await rt.refusals.record_bad_key(
                key_id, exc.code, deadline, details={"path": request.url.path}
            )
        raise
    org_id_var.set(str(who.org_id))
    agent_id_var.set(str(who.agent_id))
    refusal: ARXError | None = None
    if who.agent_disabled or who.org_disabled:
        scope = "this agent" if who.agent_disabled else "every agent of this org"
        refusal = AgentDisabledError(f"{scope} is disabled by the kill switch")
    elif who.allowlist is not None:
        address = address_of(request)
        if not admitted(address, who.allowlist):
            refusal = AddressNotAllowedError(
                f"{address or 'an unknown address'} is not in this org's agent allowlist"
            )
    if refusal is not None:
        await rt.refusals.record(who, refusal.code, deadline, details={"path": request.url.path})
        raise refusal
    return who


@asynccontextmanager
async def _before_policy(
    rt: Runtime, who: AgentIdentity, deadline: Deadline, path: str
) -> AsyncIterator[None]:
    """Whatever refuses an agent's call before policy is asked (its headers,
    a body that is not a call, an unknown connector or operation, invalid
    params) is recorded as a refusal, then answered as it would be anyway."""
    try:
        yield
    except ARXError as exc:
        details = {"path": path, "status": exc.status_code}
        for member in ("field", "connector", "operation"):
            if isinstance(exc.extra.get(member), str):
                details[member] = exc.extra[member]
        await rt.refusals.record(who, exc.code, deadline, details=details)
        raise
    except HTTPException as exc:
        # Litestar's own refusals while reading the body (413).
        if exc.status_code < 500:
            code = HTTP_CODES.get(exc.status_code, "http_error")
            await rt.refusals.record(
                who, code, deadline, details={"path": path, "status": exc.status_code}
            )
        raise


@post(
    "/v1/sdk/execute",
    operation_class=_EXECUTE_DOC.operation_class,
    responses=_EXECUTE_DOC.responses,
    summary="Run one operation through policy, audit and the connector",
    tags=["sdk"],
    status_code=200,
)
async def execute(request: Request[Any, Any, Any]) -> Response[bytes]:
    rt = runtime(request)
    deadline = Deadline(rt.settings.execute_deadline_seconds)
    who = await _identify(request, deadline)
    async with _before_policy(rt, who, deadline, request.url.path):
        header = request.headers.get("idempotency-key")
        key = idempotency.check_key(header) if header is not None else None
        req = await body.read(request, ExecuteRequest)
        params = body.check_params(req.params)
        call = rt.intercept.prepare(req.connector, req.operation, params)
    hold = _hold_seconds(request.headers.get("prefer"), rt.settings.execute_approval_wait_seconds)
    if key is None:
        try:
            outcome = await rt.intercept.execute(who, call, deadline=deadline)
        except (AuthenticationError, AgentDisabledError) as exc:
            await _revoked(rt, who, exc, deadline, request.url.path)
            raise
        return await _held(request, who, call, outcome, hold)

    keys = rt.idempotency
    stored = await keys.claim(
        who, key, idempotency.request_hash(req.connector, req.operation, params), deadline
    )
    if stored is not None:
        return _replay(stored)
    try:
        outcome = await rt.intercept.execute(who, call, deadline=deadline, idempotency_key=key)
    except NOTHING_RAN as exc:
        # Free the key so the retry runs.
        await _nothing_ran(rt, who, exc, deadline, request.url.path)
        with suppress(ARXError):
            await keys.release(who, key)
        raise
    except ARXError as exc:
        # The same body the exception handler is about to send, stored for replay.
        await _store(keys, who, key, problem_response(exc))
        raise
    try:
        response = await _held(request, who, call, outcome, hold)
    except NOTHING_RAN:
        # Held, approved, but nothing ran (or the hold could not read the
        # request): the request is still there to resume, so a retry with this
        # key learns of it from the 202, never from this passing error.
        await _store(keys, who, key, _respond(outcome))
        raise
    except ARXError as exc:
        # Held, then rejected, expired, or run and failed: that is the answer.
        await _store(keys, who, key, problem_response(exc))
        raise
    await _store(keys, who, key, response)
    return response


_WAIT = re.compile(r"[0-9]{1,6}")


def _hold_seconds(prefer: str | None, default: int) -> int:
    """RFC 7240: ``Prefer: wait=N`` (seconds, capped) or ``respond-async`` (no hold)."""
    if prefer is None:
        return default
    for preference in prefer.split(","):
        name, _, value = preference.split(";")[0].strip().partition("=")
        if name.lower() == "respond-async":
            return 0
        if name.lower() == "wait" and _WAIT.fullmatch(value.strip()):
            return min(int(value.strip()), MAX_APPROVAL_WAIT_SECONDS)
    return default


def _hold_cap(deadline_seconds: float) -> int:
    """The longest hold that keeps a held execute (its decision, the hold, then
    the approved run, each within the deadline) under half of
    IDEMPOTENCY_ABANDONED_AFTER_SECONDS, as an unheld one is: a retry that finds
    the key unfinished after that long may then rightly take its request as dead."""
    return max(0, int(IDEMPOTENCY_ABANDONED_AFTER_SECONDS / 2 - 2 * deadline_seconds))


async def _held(
    request: Request[Any, Any, Any],
    who: AgentIdentity,
    call: ExecuteCall,
    outcome: Outcome,
    hold: int,
) -> Response[bytes]:
    """An escalated call held for up to ``hold`` seconds: approved meanwhile, it
    runs (once, as a resume would) and answers 200; rejected or expired, 403
    with the reviewers' comment; still undecided, the 202 as without a hold."""
    pending = _respond(outcome)
    rt = runtime(request)
    hold = min(hold, _hold_cap(rt.settings.execute_deadline_seconds))
    if isinstance(outcome, Executed) or hold <= 0:
        return pending
    approval_id = outcome.approval_id
    try:
        return await _wait_and_run(request, who, call, outcome, hold=hold, pending=pending)
    except ARXError as exc:
        # Whatever the answer, the agent learns which request it was.
        exc.extra.setdefault("approval_id", str(approval_id))
        raise


async def _wait_and_run(
    request: Request[Any, Any, Any],
    who: AgentIdentity,
    call: ExecuteCall,
    outcome: Pending,
    *,
    hold: int,
    pending: Response[bytes],
) -> Response[bytes]:
    rt = runtime(request)
    approval_id = outcome.approval_id

    async def state() -> ApprovalView:
        return await _approval(rt, who, approval_id)

    # As the approval poll: registered before the read, no connection held
    # while waiting, woken by the decision's NOTIFY from any process.
    async with rt.waiters.registered(str(approval_id)) as decided:
        if (await state()).status == "pending":
            await waiters.wait(decided, min(hold, (outcome.expires_at - _now()).total_seconds()))
    view = await state()
    if view.status == "pending":
        pending.headers["preference-applied"] = f"wait={hold}"
        return pending
    digest = request_hash(who.agent_id, call.connector, call.operation.name, call.raw_params)
    return await _run_approved(
        rt,
        who,
        call,
        approval_id,
        digest=digest,
        deadline=Deadline(rt.settings.execute_deadline_seconds),
        path=request.url.path,
    )


# Errors after which nothing was executed: a 503; the tool never reached; the
# tool refused with 429 and said when to come back; the key or the agent
# switched off meanwhile. What a retry may safely run again.
NOTHING_RAN = (
    ServiceUnavailableError,
    ConnectorRateLimitedError,
    ConnectorUnreachableError,
    AuthenticationError,
    AgentDisabledError,
)


async def _nothing_ran(
    rt: Runtime, who: AgentIdentity, exc: Exception, deadline: Deadline, path: str
) -> None:
    if isinstance(exc, AuthenticationError | AgentDisabledError):
        await _revoked(rt, who, exc, deadline, path)


def _now() -> datetime:
    return datetime.now(UTC)


async def _revoked(
    rt: Runtime, who: AgentIdentity, exc: ARXError, deadline: Deadline, path: str
) -> None:
    """The database refused a key this process still remembered as valid (its
    notification is still on the way): forget it now, and record the attempt
    as the cached path would have (a switched-off agent, or a key no longer valid)."""
    rt.auth.forget(f"api_keys:{who.key_id}")
    if isinstance(exc, AgentDisabledError):
        await rt.refusals.record(who, exc.code, deadline, details={"path": path})
    elif isinstance(exc, AuthenticationError):
        await rt.refusals.record_bad_key(who.key_id, exc.code, deadline, details={"path": path})


class _PollUrl(msgspec.Struct):
    poll_url: str


def _replay(stored: idempotency.StoredResponse) -> Response[bytes]:
    """The first answer again, with the headers its status always carries."""
    headers = {"idempotent-replayed": "true"}
    if stored.status_code == 202:
        headers["location"] = msgspec.json.decode(stored.body, type=_PollUrl).poll_url
    return Response(
        stored.body, status_code=stored.status_code, media_type=stored.media_type, headers=headers
    )


async def _store(
    keys: idempotency.IdempotencyKeys, who: AgentIdentity, key: str, response: Response[bytes]
) -> None:
    # If this write fails the claim stays unfinished: after
    # IDEMPOTENCY_ABANDONED_AFTER_SECONDS a retry learns the first attempt's
    # decision instead of running again. The agent still gets its answer now.
    with suppress(ARXError):
        await keys.complete(
            who,
            key,
            idempotency.StoredResponse(
                status_code=response.status_code or 200,  # always set by _respond/problem
                media_type=str(response.media_type),
                body=bytes(response.content),
            ),
        )


def _respond(outcome: Outcome) -> Response[bytes]:
    if isinstance(outcome, Executed):
        return Response(
            _encoder.encode(
                ExecuteResponse(
                    event_id=outcome.event_id,
                    verdict=outcome.verdict,
                    risk_score=outcome.risk_score,
                    policy_id=outcome.policy_id,
                    reasons=outcome.reasons,
                    bundle_revision=outcome.bundle_revision,
                    result=outcome.result,
                )
            ),
            status_code=200,
            media_type="application/json",
        )
    poll_url = f"/v1/sdk/approvals/{outcome.approval_id}"
    return Response(
        _encoder.encode(
            PendingResponse(
                event_id=outcome.event_id,
                approval_id=outcome.approval_id,
                status="pending",
                verdict=outcome.verdict,
                risk_score=outcome.risk_score,
                policy_id=outcome.policy_id,
                reasons=outcome.reasons,
                bundle_revision=outcome.bundle_revision,
                poll_url=poll_url,
                expires_at=outcome.expires_at,
                approvals_required=outcome.approvals_required,
            )
        ),
        status_code=202,
        media_type="application/json",
        headers={"location": poll_url},
    )


@post(
    "/v1/sdk/approvals/{approval_id:uuid}/execute",
    operation_class=_RESUME_DOC.operation_class,
    responses=_RESUME_DOC.responses,
    summary="Run an approved request: the same call, once",
    description="Send exactly the call that was approved. It runs once, with the "
    "credentials of this moment and a fresh decision that names the approval (a policy "
    "that now denies it wins); a second call answers what the first did. 409 while "
    "reviewers have not decided, 403 with their comment if they rejected it.",
    tags=["sdk"],
    status_code=200,
)
async def resume(request: Request[Any, Any, Any], approval_id: FromPath[UUID]) -> Response[bytes]:
    rt = runtime(request)
    deadline = Deadline(rt.settings.execute_deadline_seconds)
    who = await _identify(request, deadline)
    async with _before_policy(rt, who, deadline, request.url.path):
        req = await body.read(request, ExecuteRequest)
        params = body.check_params(req.params)
        call = rt.intercept.prepare(req.connector, req.operation, params)
    digest = request_hash(who.agent_id, req.connector, req.operation, params)
    return await _run_approved(
        rt, who, call, approval_id, digest=digest, deadline=deadline, path=request.url.path
    )


async def _run_approved(
    rt: Runtime,
    who: AgentIdentity,
    call: ExecuteCall,
    approval_id: UUID,
    *,
    digest: bytes,
    deadline: Deadline,
    path: str,
) -> Response[bytes]:
    """Claim the approval for this exact call and run it once (or replay the
    answer of the run that did)."""
    stored = await resuming.claim(rt.pool, who, approval_id, digest, deadline)
    if stored is not None:
        return Response(stored.body, status_code=stored.status_code, media_type=stored.media_type)
    try:
        outcome = await rt.intercept.execute(who, call, deadline=deadline, approval_id=approval_id)
    except NOTHING_RAN as exc:
        # The approval can be resumed again.
        await _nothing_ran(rt, who, exc, deadline, path)
        with suppress(ARXError):
            await resuming.release(rt.pool, who, approval_id)
        raise
    except ARXError as exc:
        await _kept(rt, who, approval_id, exc.extra.get("event_id"), problem_response(exc))
        raise
    response = _respond(outcome)
    await _kept(rt, who, approval_id, outcome.event_id, response)
    return response


async def _kept(
    rt: Runtime, who: AgentIdentity, approval_id: UUID, event_id: Any, response: Response[bytes]
) -> None:
    """Keep the answer on the approval: a second resume gets it, nothing runs twice.
    If this write fails the approval stays executing (outcome unknown), never runnable."""
    with suppress(ARXError):
        await resuming.complete(
            rt.pool,
            who,
            approval_id,
            event_id=UUID(str(event_id)) if event_id else None,
            answer=resuming.Stored(
                status_code=response.status_code or 200,
                media_type=str(response.media_type),
                body=bytes(response.content),
            ),
        )


@get(
    "/v1/sdk/approvals/{approval_id:uuid}",
    tags=["sdk"],
    summary="Poll an approval request",
    operation_class=_APPROVAL_DOC.operation_class,
    responses=_APPROVAL_DOC.responses,
)
async def get_approval(
    request: Request[Any, Any, Any],
    approval_id: FromPath[UUID],
    wait: Annotated[
        int,
        Parameter(
            ge=0,
            le=MAX_APPROVAL_WAIT_SECONDS,
            description="Seconds to hold the answer while the request is still pending "
            "(long poll): it comes back as soon as a reviewer decides, on any ARX process.",
        ),
    ] = 0,
) -> ApprovalView:
    rt = runtime(request)
    deadline = Deadline(rt.settings.execute_deadline_seconds)
    who = await _identify(request, deadline)
    async with rt.waiters.registered(str(approval_id)) as decided:
        view = await get_for_agent(
            rt.pool, who.org_id, who.agent_id, approval_id, deadline=deadline
        )
        if view.status != "pending" or not wait:
            return view
        # No connection is held while waiting; registered before the read, so a
        # decision landing in between still wakes this request.
        await waiters.wait(decided, min(wait, (view.expires_at - _now()).total_seconds()))
    return await _approval(rt, who, approval_id)


async def _approval(rt: Runtime, who: AgentIdentity, approval_id: UUID) -> ApprovalView:
    """The agent's own approval request, read afresh (after a wait, say)."""
    return await get_for_agent(
        rt.pool,
        who.org_id,
        who.agent_id,
        approval_id,
        deadline=Deadline(rt.settings.execute_deadline_seconds),
    )


@cache
def _catalog() -> ConnectorList:
    return ConnectorList(
        connectors=[
            ConnectorInfo(
                id=cid,
                auth_scheme=cls.auth_scheme,
                operations=[
                    OperationInfo(
                        name=op.name,
                        kind=op.kind.value,
                        base_risk=op.base_risk,
                        reversible=op.reversible,
                        target_type=op.target_type,
                        summary=op.summary,
                        inverse=op.inverse,
                        params_schema=json_schema(op.params),
                    )
                    for op in cls.operations.values()
                ],
            )
            for cid, cls in sorted(connectors().items())
        ]
    )


@get(
    "/v1/sdk/connectors",
    tags=["sdk"],
    summary="List connectors and their operation tables",
    operation_class=_AGENT_READ_DOC.operation_class,
    responses=_AGENT_READ_DOC.responses,
)
async def list_connectors(request: Request[Any, Any, Any]) -> ConnectorList:
    await _identify(request, Deadline(runtime(request).settings.execute_deadline_seconds))
    return _catalog()
