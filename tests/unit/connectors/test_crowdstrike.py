"""The CrowdStrike connector against the in-process fake Falcon API."""

from __future__ import annotations

import asyncio
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import msgspec
import pytest

from arx.connectors.crowdstrike import (
    CrowdStrikeConnector,
    FalconSecret,
    HostActionParams,
    HostGetParams,
    HostSearchParams,
)
from arx.connectors.registry import connector_class
from arx.connectors.types import CallContext, OperationKind
from arx.errors import (
    ConnectorAuthError,
    ConnectorError,
    ConnectorRateLimitedError,
    ConnectorRequestError,
    ConnectorUnreachableError,
    OutcomeUnknownError,
    ToolResponseTooLargeError,
)
from arx.sandbox.falcon import FalconState, create_app
from arx.vault.secret import Secret, secret_dec_hook

CLIENT_ID = "0123456789abcdef0123456789abcdef"
CLIENT_SECRET = "s3cr3t-Falcon-client-Secret-value"
BASE = "http://falcon.sandbox"
TOKEN = "/oauth2/token"
QUERIES = "/devices/queries/devices/v1"
ENTITIES = "/devices/entities/devices/v2"
ACTIONS = "/devices/entities/devices-actions/v2"

WS_FIN = "4c1d7e2a9b3f4e5d8a6c0b1e2f3a4d5c"
SRV_DC = "9e8f7a6b5c4d4e3f9a1b2c3d4e5f6a7b"
LAPTOP_HR = "5f4e3d2c1b0a49f8e7d6c5b4a3928170"  # seeded as contained
UNKNOWN = "ffffffffffffffffffffffffffffffff"

SECRET = FalconSecret(client_id=CLIENT_ID, client_secret=Secret(CLIENT_SECRET))
CONTEXT = CallContext(
    base_url=BASE, credential_key="org-1/crowdstrike/v1", max_response_bytes=1024 * 1024
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def state() -> FalconState:
    return FalconState.with_demo_devices({CLIENT_ID: CLIENT_SECRET})


@pytest.fixture
def sent() -> list[httpx.Request]:
    """Every request the connector sent, as it left the client."""
    return []


@pytest.fixture
async def http(state: FalconState, sent: list[httpx.Request]) -> AsyncIterator[httpx.AsyncClient]:
    async def record(request: httpx.Request) -> None:
        sent.append(request)

    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(
        transport=transport, timeout=5.0, event_hooks={"request": [record]}
    ) as client:
        yield client


@pytest.fixture
def connector(http: httpx.AsyncClient) -> CrowdStrikeConnector:
    return CrowdStrikeConnector(http)


Run = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def run(connector: CrowdStrikeConnector) -> Run:
    async def call(
        op: str,
        params: dict[str, Any] | None = None,
        *,
        secret: FalconSecret = SECRET,
        context: CallContext = CONTEXT,
    ) -> dict[str, Any]:
        operation = connector.operation(op)
        typed = msgspec.convert(params or {}, operation.params)
        return await connector._execute_impl(operation, typed, secret, context)

    return call


def _token_calls(state: FalconState) -> int:
    return len(state.calls(TOKEN))


def _statuses(state: FalconState, path: str) -> list[int]:
    return [r.status for r in state.calls(path)]


def _assert_nothing_secret(exc: ConnectorError, *hidden: str) -> None:
    texts = [str(exc), exc.detail, repr(exc.extra), repr(exc)]
    for value in (CLIENT_SECRET, *hidden):
        assert all(value not in text for text in texts)
    # The cause would carry the httpx request (token header / secret form body).
    assert exc.__cause__ is None


# --- declaration ---------------------------------------------------------------


def test_connector_is_registered_with_its_operation_table() -> None:
    cls = connector_class("crowdstrike")
    table = {
        name: (op.kind, op.base_risk, op.reversible, op.inverse, op.target_type, op.params)
        for name, op in cls.operations.items()
    }

    assert cls is CrowdStrikeConnector
    assert cls.auth_scheme == "oauth2_client_credentials"
    assert cls.secret_type is FalconSecret
    assert cls.default_base_url == "https://api.crowdstrike.com"
    assert table == {
        "hosts:search": (OperationKind.READ, 10, False, None, "host", HostSearchParams),
        "hosts:get": (OperationKind.READ, 10, False, None, "host", HostGetParams),
        "hosts:contain": (
            OperationKind.CONTAINMENT,
            60,
            True,
            "hosts:lift_containment",
            "host",
            HostActionParams,
        ),
        "hosts:lift_containment": (
            OperationKind.CONTAINMENT,
            40,
            True,
            "hosts:contain",
            "host",
            HostActionParams,
        ),
    }


def test_secret_struct_is_strict_and_hides_the_secret_in_repr() -> None:
    secret = msgspec.convert(
        {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "member_cid": "c" * 32},
        FalconSecret,
        dec_hook=secret_dec_hook,
    )

    assert secret.member_cid == "c" * 32
    assert secret.client_secret.reveal() == CLIENT_SECRET
    assert CLIENT_SECRET not in repr(secret)
    assert CLIENT_SECRET not in f"{secret}"
    # rich's display walks msgspec's __rich_repr__ field by field.
    assert CLIENT_SECRET not in repr(list(secret.__rich_repr__()))
    with pytest.raises(msgspec.ValidationError, match="unknown field"):
        msgspec.convert(
            {"client_id": "a", "client_secret": "b", "scope": "x"},
            FalconSecret,
            dec_hook=secret_dec_hook,
        )
    with pytest.raises(msgspec.ValidationError, match="client_secret"):
        msgspec.convert({"client_id": "a"}, FalconSecret, dec_hook=secret_dec_hook)


@pytest.mark.parametrize(
    ("struct", "raw"),
    [
        (HostSearchParams, {"limit": "10"}),
        (HostSearchParams, {"limit": 0}),
        (HostSearchParams, {"limit": 5001}),
        (HostSearchParams, {"offset": -1}),
        (HostSearchParams, {"filter": 3}),
        (HostSearchParams, {"query": "hostname:'x'"}),
        (HostGetParams, {}),
        (HostGetParams, {"ids": []}),
        (HostGetParams, {"ids": WS_FIN}),
        (HostGetParams, {"ids": ["not-an-aid"]}),
        (HostGetParams, {"ids": [f"{i:032x}" for i in range(101)]}),
        (HostActionParams, {"ids": [WS_FIN], "action_name": "hide_host"}),
        (HostActionParams, {"device_id": WS_FIN}),
    ],
)
def test_params_structs_reject_wrong_types_bounds_and_unknown_fields(
    struct: type[msgspec.Struct], raw: dict[str, Any]
) -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert(raw, struct)


def test_params_structs_accept_valid_input_with_defaults() -> None:
    search = msgspec.convert({"filter": "status:'normal'"}, HostSearchParams)
    action = msgspec.convert({"ids": [WS_FIN, SRV_DC]}, HostActionParams)

    assert (search.filter, search.limit, search.offset, search.sort) == (
        "status:'normal'",
        100,
        0,
        None,
    )
    assert action.ids == [WS_FIN, SRV_DC]


# --- token exchange --------------------------------------------------------------


@pytest.mark.anyio
async def test_token_exchange_posts_the_client_credentials_as_a_form(
    run: Run, state: FalconState, sent: list[httpx.Request]
) -> None:
    secret = FalconSecret(
        client_id=CLIENT_ID, client_secret=Secret(CLIENT_SECRET), member_cid="c" * 32
    )

    await run("hosts:search", secret=secret)

    exchange = sent[0]
    assert (exchange.method, exchange.url.path) == ("POST", TOKEN)
    assert exchange.headers["content-type"] == "application/x-www-form-urlencoded"
    assert urllib.parse.parse_qs(exchange.content.decode()) == {
        "client_id": [CLIENT_ID],
        "client_secret": [CLIENT_SECRET],
        "member_cid": ["c" * 32],
    }
    assert _statuses(state, TOKEN) == [201]
    [issued] = state.tokens.values()
    assert (issued.client_id, issued.member_cid) == (CLIENT_ID, "c" * 32)
    # The secret goes to the token endpoint only; the API call carries the bearer token.
    api_call = sent[1]
    assert CLIENT_SECRET not in api_call.content.decode() + str(api_call.url)
    assert api_call.headers["authorization"] == f"Bearer {next(iter(state.tokens))}"


@pytest.mark.anyio
async def test_no_member_cid_field_without_a_member_cid(
    run: Run, sent: list[httpx.Request]
) -> None:
    await run("hosts:search")

    assert set(urllib.parse.parse_qs(sent[0].content.decode())) == {"client_id", "client_secret"}


@pytest.mark.anyio
async def test_one_token_serves_many_calls(run: Run, state: FalconState) -> None:
    await run("hosts:search")
    await run("hosts:get", {"ids": [WS_FIN]})
    await run("hosts:search", {"limit": 1})

    assert _token_calls(state) == 1
    assert [r.auth_valid for r in state.requests if r.path != TOKEN] == [True, True, True]


@pytest.mark.anyio
async def test_concurrent_calls_share_one_token_exchange(state: FalconState) -> None:
    app_transport = httpx.ASGITransport(app=create_app(state))

    async def slow_token_endpoint(request: httpx.Request) -> httpx.Response:
        if request.url.path == TOKEN:
            # Suspend mid-exchange so the other calls really overlap with it.
            await asyncio.sleep(0.05)
        return await app_transport.handle_async_request(request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(slow_token_endpoint)) as client:
        connector = CrowdStrikeConnector(client)
        operation = connector.operation("hosts:search")
        results = await asyncio.gather(
            *(
                connector._execute_impl(operation, HostSearchParams(), SECRET, CONTEXT)
                for _ in range(10)
            )
        )

    assert [r["meta"]["pagination"]["total"] for r in results] == [5] * 10
    assert _token_calls(state) == 1
    assert [r.auth_valid for r in state.calls(QUERIES)] == [True] * 10


@pytest.mark.anyio
async def test_a_rotated_credential_gets_its_own_token(run: Run, state: FalconState) -> None:
    rotated = CallContext(
        base_url=BASE, credential_key="org-1/crowdstrike/v2", max_response_bytes=1024 * 1024
    )

    await run("hosts:search")
    await run("hosts:search", context=rotated)
    await run("hosts:search", context=rotated)

    assert _token_calls(state) == 2


@pytest.mark.anyio
@pytest.mark.parametrize("invalidate", ["revoke_all_tokens", "expire_all_tokens"])
async def test_a_rejected_token_is_replaced_and_the_call_retried_once(
    run: Run, state: FalconState, invalidate: str
) -> None:
    await run("hosts:search")
    getattr(state, invalidate)()

    result = await run("hosts:get", {"ids": [WS_FIN]})

    assert result["resources"][0]["device_id"] == WS_FIN
    assert _token_calls(state) == 2
    assert _statuses(state, ENTITIES) == [401, 200]


@pytest.mark.anyio
async def test_the_cached_token_is_refreshed_a_minute_before_it_expires(
    connector: CrowdStrikeConnector, run: Run, state: FalconState
) -> None:
    now = [1000.0]
    connector.tokens.clock = lambda: now[0]

    await run("hosts:search")
    now[0] += 1799 - 60 - 1
    await run("hosts:search")
    assert _token_calls(state) == 1

    now[0] += 1
    await run("hosts:search")
    assert _token_calls(state) == 2
    assert 401 not in _statuses(state, QUERIES)


@pytest.mark.anyio
async def test_a_second_401_is_an_auth_error_without_the_token(state: FalconState) -> None:
    app_transport = httpx.ASGITransport(app=create_app(state))

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == TOKEN:
            return await app_transport.handle_async_request(request)
        return httpx.Response(
            401, json={"errors": [{"code": 401, "message": "access denied, invalid bearer token"}]}
        )

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        connector = CrowdStrikeConnector(client)
        operation = connector.operation("hosts:search")
        with pytest.raises(ConnectorAuthError) as caught:
            await connector._execute_impl(operation, HostSearchParams(), SECRET, CONTEXT)

    assert caught.value.upstream_status == 401
    assert caught.value.extra["errors"] == ["access denied, invalid bearer token"]
    assert _token_calls(state) == 2
    _assert_nothing_secret(caught.value, *state.tokens)


# --- operations -----------------------------------------------------------------------


@pytest.mark.anyio
async def test_search_passes_filter_and_pagination_and_returns_the_falcon_body(
    run: Run, state: FalconState
) -> None:
    params = {"filter": "status:'normal'", "limit": 2, "offset": 1, "sort": "hostname.asc"}

    result = await run("hosts:search", params)

    assert result["resources"] == [SRV_DC, "1a2b3c4d5e6f40718293a4b5c6d7e8f9"]
    assert result["meta"]["pagination"] == {"offset": 1, "limit": 2, "total": 4}
    assert result["errors"] == []
    [logged] = state.calls(QUERIES)
    assert dict(logged.query) == {
        "filter": "status:'normal'",
        "limit": "2",
        "offset": "1",
        "sort": "hostname.asc",
    }


@pytest.mark.anyio
async def test_get_returns_the_devices_and_falcons_partial_errors(
    run: Run, state: FalconState
) -> None:
    result = await run("hosts:get", {"ids": [WS_FIN, UNKNOWN]})

    assert [(d["device_id"], d["hostname"]) for d in result["resources"]] == [
        (WS_FIN, "WS-FIN-0142")
    ]
    assert [(e["code"], e["id"]) for e in result["errors"]] == [(404, UNKNOWN)]
    assert state.calls(ENTITIES)[0].query == (("ids", WS_FIN), ("ids", UNKNOWN))


@pytest.mark.anyio
async def test_get_of_only_unknown_ids_is_a_request_error(run: Run) -> None:
    with pytest.raises(ConnectorRequestError) as caught:
        await run("hosts:get", {"ids": [UNKNOWN]})

    assert caught.value.upstream_status == 404
    assert caught.value.extra["errors"] == [f"Device not found: {UNKNOWN}"]


@pytest.mark.anyio
async def test_contain_then_lift_walks_the_containment_states(run: Run, state: FalconState) -> None:
    async def status() -> str:
        result = await run("hosts:get", {"ids": [WS_FIN]})
        value = result["resources"][0]["status"]
        assert isinstance(value, str)
        return value

    contained = await run("hosts:contain", {"ids": [WS_FIN]})
    assert contained["resources"] == [{"id": WS_FIN, "path": ACTIONS}]
    assert await status() == "containment_pending"
    assert await status() == "contained"

    lifted = await run("hosts:lift_containment", {"ids": [WS_FIN]})
    assert lifted["resources"] == [{"id": WS_FIN, "path": ACTIONS}]
    assert await status() == "lift_containment_pending"
    assert await status() == "normal"

    actions = state.calls(ACTIONS)
    assert [(r.method, dict(r.query)["action_name"], r.status) for r in actions] == [
        ("POST", "contain", 202),
        ("POST", "lift_containment", 202),
    ]


@pytest.mark.anyio
async def test_containing_a_contained_host_is_a_409_request_error(
    run: Run, state: FalconState
) -> None:
    with pytest.raises(ConnectorRequestError) as caught:
        await run("hosts:contain", {"ids": [LAPTOP_HR]})

    assert caught.value.upstream_status == 409
    assert caught.value.extra["upstream_status"] == 409
    [message] = caught.value.extra["errors"]
    assert "contained" in message
    assert message in caught.value.detail
    assert caught.value.extra["trace_id"]
    assert state.devices[LAPTOP_HR].status == "contained"


# --- failures -------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_wrong_secret_is_an_auth_error_that_reveals_nothing(
    run: Run, state: FalconState
) -> None:
    wrong = FalconSecret(client_id=CLIENT_ID, client_secret=Secret("the-wrong-Secret-9f8e7d"))

    with pytest.raises(ConnectorAuthError) as caught:
        await run("hosts:contain", {"ids": [WS_FIN]}, secret=wrong)

    assert caught.value.upstream_status == 403
    assert caught.value.extra["errors"][0].startswith("Failed to issue access token")
    _assert_nothing_secret(caught.value, wrong.client_secret.reveal())
    # The API itself was never called, and nothing was contained.
    assert [r.path for r in state.requests] == [TOKEN]
    assert state.devices[WS_FIN].status == "normal"


@pytest.mark.anyio
async def test_upstream_messages_echoing_the_secret_or_token_are_scrubbed() -> None:
    token = "leaky-bearer-token-0a1b2c3d4e5f"

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == TOKEN:
            return httpx.Response(201, json={"access_token": token, "expires_in": 1799})
        message = f"token {token} of client secret {CLIENT_SECRET} refused"
        return httpx.Response(401, json={"errors": [{"code": 401, "message": message}]})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        connector = CrowdStrikeConnector(client)
        with pytest.raises(ConnectorAuthError) as caught:
            await connector._execute_impl(
                connector.operation("hosts:search"), HostSearchParams(), SECRET, CONTEXT
            )

    assert caught.value.extra["errors"] == ["token *** of client secret *** refused"]
    _assert_nothing_secret(caught.value, token)


@pytest.mark.anyio
async def test_429_carries_falcons_epoch_retry_after(run: Run, state: FalconState) -> None:
    state.rate_limit = 1
    await run("hosts:search")

    with pytest.raises(ConnectorRateLimitedError) as caught:
        await run("hosts:search")

    limited = state.calls(QUERIES)[-1]
    assert limited.status == 429
    retry_after = caught.value.extra["retry_after"]
    assert isinstance(retry_after, int)
    assert time.time() < retry_after <= time.time() + 62
    assert 0 < caught.value.extra["retry_after_seconds"] <= 62
    assert caught.value.upstream_status == 429
    assert caught.value.extra["errors"] == ["API rate limit exceeded."]
    # The agent is told when to come back, as a standard header.
    assert caught.value.status_code == 429
    assert caught.value.headers == {"retry-after": str(caught.value.extra["retry_after_seconds"])}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("failing_path", "failure", "expected"),
    [
        # Nothing left ARX: safe to retry.
        (TOKEN, httpx.ConnectTimeout, ConnectorUnreachableError),
        (QUERIES, httpx.ConnectError, ConnectorUnreachableError),
        # Only the token request was lost: the operation was never sent.
        (TOKEN, httpx.ReadTimeout, ConnectorUnreachableError),
        # The operation was sent and no answer came: it may have run.
        (QUERIES, httpx.RemoteProtocolError, OutcomeUnknownError),
        (QUERIES, httpx.ReadTimeout, OutcomeUnknownError),
    ],
)
async def test_transport_failures_say_whether_the_tool_may_have_acted(
    state: FalconState,
    failing_path: str,
    failure: type[httpx.TransportError],
    expected: type[ConnectorError],
) -> None:
    app_transport = httpx.ASGITransport(app=create_app(state))

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == failing_path:
            raise failure("failed", request=request)
        return await app_transport.handle_async_request(request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        connector = CrowdStrikeConnector(client)
        with pytest.raises(ConnectorError) as caught:
            await connector._execute_impl(
                connector.operation("hosts:search"), HostSearchParams(), SECRET, CONTEXT
            )

    assert type(caught.value) is expected
    assert caught.value.upstream_status is None
    assert caught.value.extra["reason"] == failure.__name__
    _assert_nothing_secret(caught.value, *state.tokens)


@pytest.mark.anyio
async def test_an_answer_over_the_size_limit_is_refused(state: FalconState) -> None:
    small = CallContext(base_url=BASE, credential_key="org-1/crowdstrike/v1", max_response_bytes=64)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(state))) as client:
        connector = CrowdStrikeConnector(client)
        with pytest.raises(ToolResponseTooLargeError) as caught:
            await connector._execute_impl(
                connector.operation("hosts:search"), HostSearchParams(limit=5000), SECRET, small
            )
    assert caught.value.upstream_status == 200


@pytest.mark.anyio
async def test_a_server_error_from_the_token_endpoint_is_a_request_error() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, text="upstream unavailable")

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        connector = CrowdStrikeConnector(client)
        with pytest.raises(ConnectorRequestError) as caught:
            await connector._execute_impl(
                connector.operation("hosts:search"), HostSearchParams(), SECRET, CONTEXT
            )

    assert caught.value.upstream_status == 503
    assert caught.value.extra["errors"] == []
