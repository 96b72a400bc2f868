"""Agent-facing routes (``/v1/sdk``): translate HTTP to the intercept, never decide."""

from __future__ import annotations

from contextlib import suppress
from functools import cache
from typing import Any
from uuid import UUID

import msgspec
from litestar import Request, Response, get, post
from litestar.enums import MediaType
from litestar.openapi.spec import OpenAPIMediaType, RequestBody
from litestar.openapi.spec import Operation as OpenAPIOperation
from litestar.params import FromPath

from arx.api import body
from arx.api.problems import problem
from arx.api.state import runtime
from arx.api.types import (
    ConnectorInfo,
    ConnectorList,
    ExecuteRequest,
    ExecuteResponse,
    OperationInfo,
    PendingResponse,
)
from arx.approvals.service import get_for_agent
from arx.approvals.types import ApprovalView
from arx.connectors.catalog import connectors
from arx.connectors.types import Executed, Outcome
from arx.errors import ARXError, ServiceUnavailableError
from arx.idempotency import service as idempotency
from arx.identity.service import authenticate
from arx.identity.types import AgentIdentity
from arx.logs import agent_id_var, org_id_var
from arx.runtime import Runtime

_encoder = msgspec.json.Encoder()


class _ExecuteOperation(OpenAPIOperation):
    """Documents the JSON body that ``execute`` decodes itself, strictly."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request_body = RequestBody(
            required=True,
            description="The operation to run: connector id, operation name and its params.",
            content={MediaType.JSON: OpenAPIMediaType(schema=_inline_schema(ExecuteRequest))},
        )


def _inline_schema(type_: type[msgspec.Struct]) -> Any:
    """msgspec's JSON Schema for a Struct, with its one ``$ref`` resolved."""
    schema = msgspec.json.schema(type_)
    defs = schema.get("$defs", {})
    ref = schema.get("$ref", "").rsplit("/", 1)[-1]
    return dict(defs.get(ref, schema))


async def _identify(request: Request[Any, Any, Any]) -> AgentIdentity:
    who = await authenticate(runtime(request).pool, request.headers.get("authorization"))
    org_id_var.set(str(who.org_id))
    agent_id_var.set(str(who.agent_id))
    return who


@post(
    "/v1/sdk/execute",
    operation_class=_ExecuteOperation,
    summary="Run one operation through policy, audit and the connector",
    tags=["sdk"],
    status_code=200,
)
async def execute(request: Request[Any, Any, Any]) -> Response[bytes]:
    rt = runtime(request)
    who = await _identify(request)
    header = request.headers.get("idempotency-key")
    key = idempotency.check_key(header) if header is not None else None
    req = await body.read(request, ExecuteRequest)
    connector = rt.connector(req.connector)
    call = connector.validate(req.operation, req.params)
    if key is None:
        return _respond(await connector.execute(rt, who, call))

    digest = idempotency.request_hash(req.connector, req.operation, req.params)
    stored = await idempotency.claim(rt.pool, who, key, digest)
    if stored is not None:
        return Response(
            stored.body,
            status_code=stored.status_code,
            media_type=stored.media_type,
            headers={"idempotent-replayed": "true"},
        )
    try:
        response = _respond(await connector.execute(rt, who, call))
    except ServiceUnavailableError:
        # Nothing was executed: free the key so the agent's retry runs.
        with suppress(ARXError):
            await idempotency.release(rt.pool, who, key)
        raise
    except ARXError as exc:
        # The same body the exception handler is about to send, stored for replay.
        answer = problem(exc.status_code, exc.code, exc.title, exc.detail, extra=exc.extra)
        await _store(rt, who, key, answer)
        raise
    await _store(rt, who, key, response)
    return response


async def _store(rt: Runtime, who: AgentIdentity, key: str, response: Response[bytes]) -> None:
    # If this write fails the claim stays unfinished and is re-claimable after
    # idempotency.ABANDONED_AFTER_SECONDS; the agent still gets its answer now.
    with suppress(ARXError):
        await idempotency.complete(
            rt.pool,
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
            )
        ),
        status_code=202,
        media_type="application/json",
        headers={"location": poll_url},
    )


@get("/v1/sdk/approvals/{approval_id:uuid}", tags=["sdk"], summary="Poll an approval request")
async def get_approval(
    request: Request[Any, Any, Any], approval_id: FromPath[UUID]
) -> ApprovalView:
    who = await _identify(request)
    return await get_for_agent(runtime(request).pool, who.org_id, who.agent_id, approval_id)


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
                        params_schema=_inline_schema(op.params),
                    )
                    for op in cls.operations.values()
                ],
            )
            for cid, cls in sorted(connectors().items())
        ]
    )


@get("/v1/sdk/connectors", tags=["sdk"], summary="List connectors and their operation tables")
async def list_connectors(request: Request[Any, Any, Any]) -> ConnectorList:
    await _identify(request)
    return _catalog()
