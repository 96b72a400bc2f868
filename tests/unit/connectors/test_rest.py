"""The connector framework: the registry's rule, retries of reads only,
429s, and the auth families (SigV4 against a published test vector)."""

from __future__ import annotations

import datetime
from typing import Any, ClassVar

import httpx
import msgspec
import pytest

from arx.connectors.auth import Basic, ConnectorAuth, SigV4, StaticToken
from arx.connectors.registry import register
from arx.connectors.rest import RestConnector, retry_after_header
from arx.connectors.types import ApiCall, CallContext, Operation, OperationKind
from arx.errors import ConnectorRateLimitedError, ConnectorRequestError, OutcomeUnknownError
from arx.vault.secret import Secret

CONTEXT = CallContext(base_url="https://tool.example", credential_key="k", max_response_bytes=4096)


class _Secret(msgspec.Struct, frozen=True):
    token: Secret


class _Params(msgspec.Struct, frozen=True):
    id: str = "x"


def _op(name: str, kind: OperationKind, method: str, *, build: bool = True) -> Operation:
    return Operation(
        name=name, params=_Params, kind=kind, base_risk=10, reversible=False, target_type="thing",
        summary=name, build=(lambda p: ApiCall(method, f"/things/{p.id}")) if build else None,
    )  # fmt: skip


class _Tool(RestConnector):
    id: ClassVar[str] = "tool"
    vendor: ClassVar[str] = "Tool"
    auth_scheme: ClassVar[str] = "static"
    secret_type: ClassVar[type[msgspec.Struct]] = _Secret
    default_base_url: ClassVar[str] = "https://tool.example"
    allowed_hosts: ClassVar[tuple[str, ...]] = ("tool.example",)
    operations: ClassVar[dict[str, Operation]] = {
        "things:get": _op("things:get", OperationKind.READ, "GET"),
        "things:close": _op("things:close", OperationKind.WRITE, "POST"),
    }

    def authenticate(self, secret: Any, context: CallContext) -> ConnectorAuth:
        return StaticToken(secret.token, template="Token token={}")


def test_the_registry_refuses_rows_without_a_request_builder() -> None:
    class Broken(_Tool):
        id: ClassVar[str] = "broken"
        operations: ClassVar[dict[str, Operation]] = {
            "things:get": _op("things:get", OperationKind.READ, "GET", build=False)
        }

    with pytest.raises(RuntimeError, match="without a request builder: things:get"):
        register(Broken)


async def _run(handler: Any, operation: str) -> dict[str, Any]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        tool = _Tool(client)
        call = tool.validate(operation, {})
        return await tool._execute_impl(
            call.operation, call.params, _Secret(Secret("t0k")), CONTEXT
        )


@pytest.mark.anyio
async def test_reads_are_asked_again_and_writes_never() -> None:
    seen: list[str] = []

    def flaky(request: httpx.Request) -> httpx.Response:
        seen.append(request.method)
        assert request.headers["authorization"] == "Token token=t0k"
        if len(seen) < 3:
            return httpx.Response(503, json={"message": "busy"})
        return httpx.Response(200, json={"ok": True})

    assert await _run(flaky, "things:get") == {"ok": True}
    assert seen == ["GET", "GET", "GET"]
    seen.clear()
    with pytest.raises(OutcomeUnknownError) as caught:
        await _run(flaky, "things:close")
    assert seen == ["POST"], "a write may have acted: never sent twice"
    assert caught.value.upstream_status == 503
    assert caught.value.extra["errors"] == ["busy"]

    def refused(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"message": "no such thing"})

    with pytest.raises(ConnectorRequestError) as rejected:
        await _run(refused, "things:close")
    assert rejected.value.upstream_status == 400

    def dropped(request: httpx.Request) -> httpx.Response:
        seen.append(request.method)
        raise httpx.ReadError("dropped", request=request)

    seen.clear()
    with pytest.raises(OutcomeUnknownError):
        await _run(dropped, "things:close")
    assert seen == ["POST"]
    seen.clear()
    with pytest.raises(OutcomeUnknownError):
        await _run(dropped, "things:get")
    assert seen == ["GET", "GET", "GET"]


@pytest.mark.anyio
async def test_a_429_tells_the_agent_when_to_come_back() -> None:
    def limited(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": "17"}, json={"errors": ["slow down"]})

    with pytest.raises(ConnectorRateLimitedError) as caught:
        await _run(limited, "things:get")
    assert caught.value.headers == {"retry-after": "17"}
    assert caught.value.extra["errors"] == ["slow down"]
    assert retry_after_header("Wed, 21 Oct 2015 07:28:00 GMT") == 0
    assert retry_after_header("soon") is None


def test_static_and_basic_headers() -> None:
    request = httpx.Request("GET", "https://tool.example/x")
    next(StaticToken(Secret("abc"), template="SSWS {}").auth_flow(request))
    assert request.headers["authorization"] == "SSWS abc"
    next(Basic("ana@example.com", Secret("api-token")).auth_flow(request))
    assert request.headers["authorization"] == "Basic YW5hQGV4YW1wbGUuY29tOmFwaS10b2tlbg=="
    assert "api-token" not in repr(Basic("ana@example.com", Secret("api-token")).hidden())


def test_sigv4_matches_the_published_test_vector(monkeypatch: pytest.MonkeyPatch) -> None:
    """vendor-apis.md, Appendix B: Security Hub GetFindings, signed by botocore."""
    import botocore.auth  # noqa: PLC0415

    class _Frozen(datetime.datetime):
        @classmethod
        def now(cls, tz: Any = None) -> _Frozen:  # type: ignore[override]
            return cls(2024, 1, 15, 12, 0, 0, tzinfo=tz)

        @classmethod
        def utcnow(cls) -> _Frozen:  # type: ignore[override]
            return cls(2024, 1, 15, 12, 0, 0)

    monkeypatch.setattr(botocore.auth.datetime, "datetime", _Frozen)
    body = b'{"Filters":{"WorkflowStatus":[{"Value":"NEW","Comparison":"EQUALS"}]},"MaxResults":10}'
    request = httpx.Request(
        "POST",
        "https://securityhub.us-east-1.amazonaws.com/findings",
        content=body,
        headers={"content-type": "application/json"},
    )
    auth = SigV4(
        access_key="AKIDEXAMPLE",
        secret_key=Secret("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
        session_token=None,
        region="us-east-1",
        service="securityhub",
    )
    next(auth.auth_flow(request))
    assert request.headers["authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240115/us-east-1/securityhub/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date, "
        "Signature=0dca8d692590959a28ed021f72445ec9bf83d690834851adcee45244d60824c3"
    )
