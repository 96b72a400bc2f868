"""The agentvault SDK against the wire contract of DESIGN.md section 8.

Every test runs twice, through ``ARXClient`` and ``AsyncARXClient``, against
``httpx.MockTransport``: it checks the exact request on the wire and the
typed result or exception each response status maps to.
"""

from __future__ import annotations

import inspect
import json
import pickle
import tomllib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import agentvault
import httpx
import pytest
from agentvault import (
    APIError,
    Approval,
    ApprovalPendingError,
    ApprovalTimeoutError,
    ARXClient,
    AsyncARXClient,
    AuthenticationError,
    ConflictError,
    ConnectorError,
    ConnectorInfo,
    ConnectorUnreachableError,
    DeadlineExceededError,
    ExecuteResult,
    IdempotencyOutcomeUnknownError,
    InvalidRequestError,
    NotFoundError,
    OutcomeUnknownError,
    PermissionDeniedError,
    RateLimitedError,
    ServiceUnavailableError,
    SessionContentionError,
    TransportError,
    UnsupportedMediaTypeError,
    _core,
)
from agentvault import client as client_module
from agentvault.errors import AgentVaultError

API_KEY = "arx_test_3f9c2b7e1d5a4c8f9e0b"
BASE_URL = "http://arx.test:8080"
EVENT_ID = "0b8f3d2e-6c1a-4e5f-9a7b-1c2d3e4f5a6b"
APPROVAL_ID = "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b"
SDK_ROOT = Path(__file__).parents[3] / "sdk"

Handler = Callable[[httpx.Request], httpx.Response]

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    # The async client sleeps with asyncio.sleep, so it runs on asyncio only.
    return "asyncio"


class Api:
    """Drives ARXClient or AsyncARXClient through one awaitable interface."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.requests: list[httpx.Request] = []
        self._responses: list[httpx.Response] = []
        self._opened: list[Any] = []

    def reply(self, *responses: httpx.Response) -> Api:
        """Queue responses; the last one repeats."""
        self._responses = list(responses)
        return self

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if len(self._responses) > 1:
            return self._responses.pop(0)
        return self._responses[0]

    def client(self, handler: Handler | None = None, **kwargs: Any) -> ARXClient | AsyncARXClient:
        transport = httpx.MockTransport(handler or self._handle)
        kwargs.setdefault("api_key", API_KEY)
        kwargs.setdefault("base_url", BASE_URL)
        client: ARXClient | AsyncARXClient
        if self.kind == "sync":
            http = httpx.Client(transport=transport)
            client = ARXClient(http_client=http, **kwargs)
            self._opened.append(http)
        else:
            async_http = httpx.AsyncClient(transport=transport)
            client = AsyncARXClient(http_client=async_http, **kwargs)
            self._opened.append(async_http)
        return client

    async def call(self, method: str, *args: Any, client: Any = None, **kwargs: Any) -> Any:
        result = getattr(client or self.client(), method)(*args, **kwargs)
        return await result if inspect.isawaitable(result) else result

    async def close(self) -> None:
        for http in self._opened:
            if isinstance(http, httpx.AsyncClient):
                await http.aclose()
            else:
                http.close()

    @property
    def request(self) -> httpx.Request:
        assert len(self.requests) == 1
        return self.requests[0]


@pytest.fixture(params=["sync", "async"])
async def api(request: pytest.FixtureRequest) -> Any:
    harness = Api(request.param)
    yield harness
    await harness.close()


def problem(status: int, code: str, detail: str, **members: Any) -> httpx.Response:
    body = {
        "type": f"https://arx.dev/problems/{code}",
        "title": code.replace("_", " ").capitalize(),
        "status": status,
        "detail": detail,
        "code": code,
        "request_id": "req-42",
        **members,
    }
    return httpx.Response(
        status, content=json.dumps(body), headers={"Content-Type": "application/problem+json"}
    )


def approval_body(status: str) -> dict[str, Any]:
    return {
        "approval_id": APPROVAL_ID,
        "event_id": EVENT_ID,
        "status": status,
        "connector": "crowdstrike",
        "operation": "hosts:contain",
        "created_at": "2025-01-02T03:04:05Z",
        "expires_at": "2025-01-02T04:04:05Z",
    }


EXECUTED: dict[str, Any] = {
    "event_id": EVENT_ID,
    "verdict": "PERMIT",
    "risk_score": 10,
    "policy_id": "default:read",
    "reasons": ["read operations are permitted"],
    "bundle_revision": "rev-7",
    "result": {"resources": [{"device_id": "abc", "status": "contained"}]},
}


def assert_common_headers(request: httpx.Request) -> None:
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert request.headers["User-Agent"] == f"agentvault/{agentvault.__version__}"


# -- execute -----------------------------------------------------------------


async def test_execute_sends_the_documented_request(api: Api) -> None:
    api.reply(httpx.Response(200, json=EXECUTED))

    result = await api.call("execute", "crowdstrike", "hosts:contain", {"device_id": "abc"})

    request = api.request
    assert request.method == "POST"
    assert str(request.url) == f"{BASE_URL}/v1/sdk/execute"
    assert_common_headers(request)
    assert request.headers["Content-Type"] == "application/json"
    assert "Idempotency-Key" not in request.headers
    # Never held by the server: the SDK does its own waiting, within its timeouts.
    assert request.headers["Prefer"] == "respond-async"
    assert json.loads(request.content) == {
        "connector": "crowdstrike",
        "operation": "hosts:contain",
        "params": {"device_id": "abc"},
    }
    assert result == ExecuteResult(**EXECUTED)


async def test_resume_sends_the_approved_call_to_its_approval(api: Api) -> None:
    api.reply(httpx.Response(200, json=EXECUTED))

    result = await api.call(
        "resume", "a/../b", "crowdstrike", "hosts:contain", {"device_id": "abc"}
    )

    request = api.request
    assert request.method == "POST"
    assert request.url.raw_path == b"/v1/sdk/approvals/a%2F..%2Fb/execute"
    assert_common_headers(request)
    assert json.loads(request.content) == {
        "connector": "crowdstrike",
        "operation": "hosts:contain",
        "params": {"device_id": "abc"},
    }
    assert result == ExecuteResult(**EXECUTED)


async def test_execute_sends_idempotency_key_when_given(api: Api) -> None:
    api.reply(httpx.Response(200, json=EXECUTED))

    await api.call("execute", "okta", "users:suspend", {"id": "u1"}, idempotency_key="retry-1")

    assert api.request.headers["Idempotency-Key"] == "retry-1"


async def test_execute_without_params_sends_an_empty_object(api: Api) -> None:
    api.reply(httpx.Response(200, json=EXECUTED))

    await api.call("execute", "crowdstrike", "hosts:list")

    assert json.loads(api.request.content)["params"] == {}


async def test_execute_tolerates_new_and_missing_optional_fields(api: Api) -> None:
    body = {"event_id": EVENT_ID, "verdict": "PERMIT", "risk_score": 0, "added_in_v2": {"x": 1}}
    api.reply(httpx.Response(200, json=body))

    result = await api.call("execute", "crowdstrike", "hosts:list")

    assert result.policy_id is None
    assert result.bundle_revision is None
    assert result.reasons == []
    assert result.result == {}


async def test_execute_202_raises_approval_pending(api: Api) -> None:
    body = {
        "event_id": EVENT_ID,
        "approval_id": APPROVAL_ID,
        "status": "pending",
        "verdict": "ESCALATE",
        "risk_score": 80,
        "policy_id": "org:containment-needs-review",
        "reasons": ["containment requires a reviewer"],
        "bundle_revision": "rev-7",
        "poll_url": f"/v1/sdk/approvals/{APPROVAL_ID}",
        "expires_at": "2025-01-02T04:04:05Z",
        "approvals_required": 2,
    }
    api.reply(
        httpx.Response(202, json=body, headers={"Location": f"/v1/sdk/approvals/{APPROVAL_ID}"})
    )

    with pytest.raises(ApprovalPendingError) as caught:
        await api.call("execute", "crowdstrike", "hosts:contain", {"device_id": "abc"})

    err = caught.value
    assert err.status == 202
    assert err.approval_id == APPROVAL_ID
    assert err.approval_status == "pending"
    assert err.event_id == EVENT_ID
    assert err.verdict == "ESCALATE"
    assert err.risk_score == 80
    assert err.policy_id == "org:containment-needs-review"
    assert err.reasons == ["containment requires a reviewer"]
    assert err.bundle_revision == "rev-7"
    assert err.poll_url == f"{BASE_URL}/v1/sdk/approvals/{APPROVAL_ID}"
    assert err.expires_at == datetime(2025, 1, 2, 4, 4, 5, tzinfo=UTC)
    assert err.approvals_required == 2
    assert APPROVAL_ID in str(err)
    assert "containment requires a reviewer" in str(err)


async def test_execute_can_wait_for_the_decision_and_resume(api: Api, fake_time: FakeTime) -> None:
    escalated = {
        "event_id": EVENT_ID,
        "approval_id": APPROVAL_ID,
        "status": "pending",
        "verdict": "ESCALATE",
        "risk_score": 80,
        "policy_id": "org:containment-needs-review",
        "reasons": ["containment requires a reviewer"],
        "bundle_revision": "rev-7",
        "poll_url": f"/v1/sdk/approvals/{APPROVAL_ID}",
        "expires_at": "2025-01-02T04:04:05Z",
    }
    api.reply(
        httpx.Response(202, json=escalated),
        httpx.Response(200, json=approval_body("approved")),
        httpx.Response(200, json=EXECUTED),
    )

    result = await api.call(
        "execute", "crowdstrike", "hosts:contain", {"device_id": "abc"}, wait_for_approval=60
    )

    assert result == ExecuteResult(**EXECUTED)
    execute, poll, resume = api.requests
    assert execute.url.path == "/v1/sdk/execute"
    assert poll.url.path == f"/v1/sdk/approvals/{APPROVAL_ID}"
    assert resume.url.path == f"/v1/sdk/approvals/{APPROVAL_ID}/execute"
    assert json.loads(resume.content) == json.loads(execute.content)


async def test_execute_202_falls_back_to_the_location_header(api: Api) -> None:
    body = {"event_id": EVENT_ID, "approval_id": APPROVAL_ID, "status": "pending"}
    api.reply(httpx.Response(202, json=body, headers={"Location": "/elsewhere/a1"}))

    with pytest.raises(ApprovalPendingError) as caught:
        await api.call("execute", "crowdstrike", "hosts:contain")

    assert caught.value.poll_url == f"{BASE_URL}/elsewhere/a1"


# -- error statuses ------------------------------------------------------------


async def test_401_raises_authentication_error(api: Api) -> None:
    api.reply(problem(401, "invalid_api_key", "Missing or invalid API key"))

    with pytest.raises(AuthenticationError) as caught:
        await api.call("execute", "crowdstrike", "hosts:list")

    err = caught.value
    assert (err.status, err.code, err.request_id) == (401, "invalid_api_key", "req-42")
    assert err.detail == "Missing or invalid API key"
    assert str(err) == "[401 invalid_api_key] Missing or invalid API key (request_id=req-42)"


async def test_403_raises_permission_denied_with_the_decision(api: Api) -> None:
    api.reply(
        problem(
            403,
            "policy_denied",
            "denied by policy org:no-destroy",
            event_id=EVENT_ID,
            verdict="DENY",
            risk_score=95,
            policy_id="org:no-destroy",
            reasons=["destructive operations are never allowed", "outside intent"],
        )
    )

    with pytest.raises(PermissionDeniedError) as caught:
        await api.call("execute", "crowdstrike", "hosts:delete", {"device_id": "abc"})

    err = caught.value
    assert (err.status, err.code, err.request_id) == (403, "policy_denied", "req-42")
    assert err.event_id == EVENT_ID
    assert err.verdict == "DENY"
    assert err.risk_score == 95
    assert err.policy_id == "org:no-destroy"
    assert err.reasons == ["destructive operations are never allowed", "outside intent"]
    assert str(err) == (
        "[403 policy_denied] denied by policy org:no-destroy (policy org:no-destroy, risk 95): "
        "destructive operations are never allowed; outside intent (request_id=req-42)"
    )


@pytest.mark.parametrize(
    ("status", "code", "field", "exc_type"),
    [
        (400, "malformed_json", None, InvalidRequestError),
        (422, "invalid_field", "params.device_id", InvalidRequestError),
        (404, "unknown_connector", None, NotFoundError),
        (404, "unknown_operation", None, NotFoundError),
        (409, "credential_not_configured", None, ConflictError),
        (413, "payload_too_large", None, InvalidRequestError),
        (415, "unsupported_media_type", None, UnsupportedMediaTypeError),
        (409, "idempotency_key_in_flight", None, ConflictError),
        (422, "idempotency_key_reused", "Idempotency-Key", InvalidRequestError),
    ],
)
async def test_client_errors_raise_invalid_request(
    api: Api, status: int, code: str, field: str | None, exc_type: type[InvalidRequestError]
) -> None:
    members = {"field": field} if field else {}
    api.reply(problem(status, code, f"{code} happened", **members))

    with pytest.raises(InvalidRequestError) as caught:
        await api.call("execute", "crowdstrike", "hosts:contain", {"device_id": 1})

    err = caught.value
    assert type(err) is exc_type
    assert (err.status, err.code, err.detail, err.field) == (
        status,
        code,
        f"{code} happened",
        field,
    )
    assert err.request_id == "req-42"
    assert err.problem["type"] == f"https://arx.dev/problems/{code}"
    if field:
        assert f"(field: {field})" in str(err)


@pytest.mark.parametrize("code", ["connector_error", "connector_auth_failed"])
async def test_502_raises_connector_error(api: Api, code: str) -> None:
    api.reply(problem(502, code, "CrowdStrike said no", event_id=EVENT_ID, upstream_status=401))

    with pytest.raises(ConnectorError) as caught:
        await api.call("execute", "crowdstrike", "hosts:contain")

    err = caught.value
    assert (err.status, err.code, err.event_id, err.upstream_status) == (502, code, EVENT_ID, 401)
    assert "upstream status 401" in str(err)


async def test_502_connector_unreachable_says_nothing_was_sent(api: Api) -> None:
    api.reply(
        problem(
            502,
            "connector_unreachable",
            "could not connect to crowdstrike for hosts:contain; nothing was sent",
            event_id=EVENT_ID,
            upstream_status=None,
            reason="ConnectError",
        )
    )

    with pytest.raises(ConnectorUnreachableError) as caught:
        await api.call("execute", "crowdstrike", "hosts:contain")

    err = caught.value
    assert isinstance(err, ConnectorError)
    assert (err.status, err.code, err.event_id, err.upstream_status) == (
        502,
        "connector_unreachable",
        EVENT_ID,
        None,
    )


@pytest.mark.parametrize("code", ["outcome_unknown", "gateway_timeout"])
async def test_504_raises_outcome_unknown_a_connector_error(api: Api, code: str) -> None:
    # Any 504 leaves the outcome unknown, whoever timed out.
    api.reply(
        problem(504, code, "crowdstrike did not answer; it may have acted", event_id=EVENT_ID)
    )

    with pytest.raises(OutcomeUnknownError) as caught:
        await api.call("execute", "crowdstrike", "hosts:contain", idempotency_key="k-1")

    err = caught.value
    assert isinstance(err, ConnectorError)
    assert (err.status, err.code, err.event_id, err.upstream_status) == (504, code, EVENT_ID, None)
    assert str(err).startswith(f"[504 {code}] crowdstrike did not answer; it may have acted")


async def test_429_raises_rate_limited_with_retry_after(api: Api) -> None:
    response = problem(
        429,
        "connector_rate_limited",
        "CrowdStrike Falcon answered HTTP 429 to hosts:search",
        event_id=EVENT_ID,
        upstream_status=429,
        retry_after_seconds=12,
    )
    response.headers["Retry-After"] = "7"
    api.reply(response)

    with pytest.raises(RateLimitedError) as caught:
        await api.call("execute", "crowdstrike", "hosts:search")

    err = caught.value
    assert not isinstance(err, ConnectorError | ServiceUnavailableError)
    assert (err.status, err.code, err.retry_after, err.event_id, err.upstream_status) == (
        429,
        "connector_rate_limited",
        7,
        EVENT_ID,
        429,
    )
    assert "(retry after 7s)" in str(err)


@pytest.mark.parametrize(
    ("retry_after", "problem_seconds", "expected"),
    [(None, 12, 12), ("Wed, 21 Oct 2015 07:28:00 GMT", 5, 5), (None, None, None), ("0", 9, 0)],
)
async def test_429_without_a_usable_header_falls_back_to_the_problem(
    api: Api, retry_after: str | None, problem_seconds: int | None, expected: float | None
) -> None:
    members = {} if problem_seconds is None else {"retry_after_seconds": problem_seconds}
    response = problem(429, "connector_rate_limited", "slow down", **members)
    if retry_after is not None:
        response.headers["Retry-After"] = retry_after
    api.reply(response)

    with pytest.raises(RateLimitedError) as caught:
        await api.call("execute", "crowdstrike", "hosts:search")

    assert caught.value.retry_after == expected


async def test_409_idempotency_outcome_unknown_carries_the_first_decision(api: Api) -> None:
    api.reply(
        problem(
            409,
            "idempotency_outcome_unknown",
            "the first request with this Idempotency-Key stopped after its decision",
            event_id=EVENT_ID,
            outcome="unknown",
        )
    )

    with pytest.raises(IdempotencyOutcomeUnknownError) as caught:
        await api.call("execute", "crowdstrike", "hosts:contain", idempotency_key="k-1")

    err = caught.value
    assert isinstance(err, ConflictError)
    assert (err.status, err.code, err.event_id, err.outcome) == (
        409,
        "idempotency_outcome_unknown",
        EVENT_ID,
        "unknown",
    )


@pytest.mark.parametrize(
    ("code", "exc_type"),
    [
        ("policy_engine_unavailable", ServiceUnavailableError),
        ("database_unavailable", ServiceUnavailableError),
        ("deadline_exceeded", DeadlineExceededError),
        ("session_contention", SessionContentionError),
    ],
)
async def test_503_raises_service_unavailable(
    api: Api, code: str, exc_type: type[ServiceUnavailableError]
) -> None:
    response = problem(503, code, "try again shortly")
    response.headers["Retry-After"] = "3"
    api.reply(response)

    with pytest.raises(ServiceUnavailableError) as caught:
        await api.call("execute", "crowdstrike", "hosts:contain")

    err = caught.value
    assert type(err) is exc_type
    assert (err.status, err.code, err.detail, err.retry_after) == (
        503,
        code,
        "try again shortly",
        3,
    )


@pytest.mark.parametrize("status", [500, 418])
async def test_other_problem_statuses_raise_api_error(api: Api, status: int) -> None:
    api.reply(problem(status, "internal_error", "boom"))

    with pytest.raises(APIError) as caught:
        await api.call("execute", "crowdstrike", "hosts:contain")

    err = caught.value
    assert type(err) is APIError
    assert (err.status, err.code, err.detail, err.request_id) == (
        status,
        "internal_error",
        "boom",
        "req-42",
    )


@pytest.mark.parametrize("status", [403, 502, 503])
async def test_non_json_error_body_raises_api_error_with_truncated_body(
    api: Api, status: int
) -> None:
    html = "<html><body>" + "gateway says no " * 500 + "</body></html>"
    api.reply(httpx.Response(status, text=html, headers={"X-Request-ID": "edge-1"}))

    with pytest.raises(APIError) as caught:
        await api.call("execute", "crowdstrike", "hosts:contain")

    err = caught.value
    assert type(err) is APIError
    assert err.status == status
    assert err.code is None
    assert err.request_id == "edge-1"
    assert err.body is not None
    assert html.startswith(err.body)
    assert len(err.body) < len(html)
    assert len(str(err)) < 400
    assert f"unexpected HTTP {status} response: <html><body>gateway says no" in str(err)


async def test_unreadable_success_body_raises_api_error(api: Api) -> None:
    api.reply(httpx.Response(200, json={"event_id": EVENT_ID, "risk_score": "high"}))

    with pytest.raises(APIError) as caught:
        await api.call("execute", "crowdstrike", "hosts:contain")

    assert caught.value.status == 200
    assert "unexpected response body" in str(caught.value)


@pytest.mark.parametrize(
    "exc", [httpx.ConnectError("Connection refused"), httpx.ReadTimeout("timed out")]
)
async def test_transport_failure_raises_transport_error(api: Api, exc: httpx.RequestError) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise exc

    with pytest.raises(TransportError) as caught:
        await api.call("execute", "crowdstrike", "hosts:contain", client=api.client(fail))

    err = caught.value
    assert (err.status, err.code, err.request_id) == (None, None, None)
    assert f"POST {BASE_URL}/v1/sdk/execute failed: {type(exc).__name__}" in str(err)
    assert err.__cause__ is exc


# -- approvals and discovery ----------------------------------------------------


async def test_get_approval(api: Api) -> None:
    api.reply(httpx.Response(200, json={**approval_body("approved"), "reviewer": "ana"}))

    approval = await api.call("get_approval", APPROVAL_ID)

    request = api.request
    assert request.method == "GET"
    assert str(request.url) == f"{BASE_URL}/v1/sdk/approvals/{APPROVAL_ID}"
    assert_common_headers(request)
    assert request.content == b""
    assert approval == Approval(
        approval_id=APPROVAL_ID,
        event_id=EVENT_ID,
        status="approved",
        connector="crowdstrike",
        operation="hosts:contain",
        created_at=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
        expires_at=datetime(2025, 1, 2, 4, 4, 5, tzinfo=UTC),
    )


async def test_get_approval_quotes_the_id_into_one_path_segment(api: Api) -> None:
    api.reply(problem(404, "not_found", "no such approval"))

    with pytest.raises(NotFoundError):
        await api.call("get_approval", "../../admin?x=1")

    assert api.request.url.raw_path == b"/v1/sdk/approvals/..%2F..%2Fadmin%3Fx%3D1"


class FakeTime:
    """A clock that only moves when the client sleeps."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        monkeypatch.setattr(_core, "_clock", lambda: self.now)
        monkeypatch.setattr(client_module, "_sleep", self.sleep)
        monkeypatch.setattr(client_module, "_async_sleep", self.async_sleep)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)


@pytest.fixture
def fake_time(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    return FakeTime(monkeypatch)


async def test_wait_for_approval_polls_until_decided(api: Api, fake_time: FakeTime) -> None:
    pending = httpx.Response(200, json=approval_body("pending"))
    api.reply(pending, pending, httpx.Response(200, json=approval_body("rejected")))

    approval = await api.call("wait_for_approval", APPROVAL_ID, timeout=60, poll_interval=5)

    assert approval.status == "rejected"
    assert fake_time.sleeps == [5, 5]
    assert [r.url.path for r in api.requests] == [f"/v1/sdk/approvals/{APPROVAL_ID}"] * 3


async def test_wait_for_approval_times_out(api: Api, fake_time: FakeTime) -> None:
    api.reply(httpx.Response(200, json=approval_body("pending")))

    with pytest.raises(ApprovalTimeoutError) as caught:
        await api.call("wait_for_approval", APPROVAL_ID, timeout=12, poll_interval=5)

    err = caught.value
    # Polls at 0, 5, 10 and, clipped to the deadline, 12.
    assert fake_time.sleeps == [5, 5, 2]
    assert len(api.requests) == 4
    assert err.approval_id == APPROVAL_ID
    assert err.timeout == 12
    assert err.approval is not None
    assert err.approval.status == "pending"
    assert str(err) == f"[approval_timeout] approval {APPROVAL_ID} still pending after 12s"


async def test_wait_for_approval_clips_request_timeout_to_the_deadline(
    api: Api, fake_time: FakeTime
) -> None:
    api.reply(httpx.Response(200, json=approval_body("approved")))

    await api.call("wait_for_approval", APPROVAL_ID, timeout=7)

    # The server may hold the poll until the deadline; one second of grace on top.
    assert api.request.url.params["wait"] == "7"
    assert api.request.extensions["timeout"]["read"] == 8


async def test_wait_for_approval_asks_again_at_once_after_a_held_poll(
    api: Api, fake_time: FakeTime
) -> None:
    """A server that held the poll as asked is asked again without sleeping."""
    answers = [approval_body("pending"), approval_body("approved")]

    def holding(request: httpx.Request) -> httpx.Response:
        api.requests.append(request)
        fake_time.now += float(request.url.params["wait"])  # held as long as asked
        return httpx.Response(200, json=answers.pop(0))

    approval = await api.call(
        "wait_for_approval",
        APPROVAL_ID,
        timeout=300,
        poll_interval=5,
        client=api.client(holding),
    )

    assert approval.status == "approved"
    assert fake_time.sleeps == []
    assert [r.url.params["wait"] for r in api.requests] == ["25", "25"]


async def test_connectors(api: Api) -> None:
    body = {
        "connectors": [
            {
                "id": "crowdstrike",
                "auth_scheme": "oauth2_client_credentials",
                "docs_url": "added later",
                "operations": [
                    {
                        "name": "hosts:contain",
                        "kind": "containment",
                        "base_risk": 60,
                        "reversible": True,
                        "target_type": "host",
                        "summary": "Network-contain a host",
                        "params_schema": {"type": "object", "required": ["device_id"]},
                        "inverse": "hosts:lift_containment",
                    }
                ],
            }
        ]
    }
    api.reply(httpx.Response(200, json=body))

    connectors = await api.call("connectors")

    request = api.request
    assert (request.method, str(request.url)) == ("GET", f"{BASE_URL}/v1/sdk/connectors")
    assert_common_headers(request)
    assert len(connectors) == 1
    info = connectors[0]
    assert isinstance(info, ConnectorInfo)
    assert (info.id, info.auth_scheme) == ("crowdstrike", "oauth2_client_credentials")
    operation = info.operations[0]
    assert (operation.name, operation.kind, operation.base_risk) == (
        "hosts:contain",
        "containment",
        60,
    )
    assert operation.reversible is True
    assert operation.inverse == "hosts:lift_containment"
    assert operation.params_schema == {"type": "object", "required": ["device_id"]}


# -- configuration and secrecy ----------------------------------------------------


async def test_api_key_never_appears_in_repr_or_errors(api: Api) -> None:
    # A misbehaving proxy that echoes the request back must not leak the key either.
    echo = f"Authorization: Bearer {API_KEY}"
    responses = [
        problem(401, "invalid_api_key", f"key {API_KEY} is revoked"),
        problem(403, "policy_denied", echo, reasons=[echo], policy_id=API_KEY),
        problem(422, "invalid_field", echo, field=API_KEY),
        problem(502, "connector_error", echo),
        problem(503, "database_unavailable", echo),
        problem(500, "internal_error", echo),
        httpx.Response(502, text=f"<pre>{echo}</pre>"),
        httpx.Response(200, text=f'{{"event_id": "{API_KEY}"'),
    ]
    client = api.client()
    errors: list[AgentVaultError] = []
    for response in responses:
        api.reply(response)
        with pytest.raises(AgentVaultError) as caught:
            await api.call("execute", "crowdstrike", "hosts:contain", client=client)
        errors.append(caught.value)

    def fail(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"refused: {request.headers['Authorization']}")

    with pytest.raises(TransportError) as caught_transport:
        await api.call("execute", "crowdstrike", "hosts:contain", client=api.client(fail))
    errors.append(caught_transport.value)

    assert API_KEY not in repr(client)
    for err in errors:
        assert API_KEY not in str(err)
        assert API_KEY not in repr(err)
        assert API_KEY not in repr(vars(err))


def test_key_and_base_url_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARX_API_KEY", API_KEY)
    monkeypatch.setenv("ARX_BASE_URL", "https://arx.example.com/")
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=EXECUTED)

    with (
        httpx.Client(transport=httpx.MockTransport(handler)) as http,
        ARXClient(http_client=http) as client,
    ):
        client.execute("crowdstrike", "hosts:list")
        assert client.base_url == "https://arx.example.com"
        assert (
            ARXClient("explicit", "http://other:1", http_client=http).base_url == "http://other:1"
        )

    assert str(seen[0].url) == "https://arx.example.com/v1/sdk/execute"
    assert seen[0].headers["Authorization"] == f"Bearer {API_KEY}"


def test_defaults_without_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARX_API_KEY", raising=False)
    monkeypatch.delenv("ARX_BASE_URL", raising=False)

    with pytest.raises(ValueError, match="ARX_API_KEY"):
        ARXClient()
    with ARXClient(API_KEY) as client:
        assert client.base_url == "http://127.0.0.1:8080"


@pytest.mark.parametrize("base_url", ["ftp://arx", "arx.test:8080", "http://"])
def test_rejects_a_base_url_that_is_not_http(base_url: str) -> None:
    with pytest.raises(ValueError, match="base URL"):
        ARXClient(API_KEY, base_url)


def test_rejects_a_key_with_whitespace_without_echoing_it() -> None:
    with pytest.raises(ValueError, match="whitespace") as caught:
        ARXClient(f"{API_KEY}\n")
    assert API_KEY not in str(caught.value)


async def test_base_url_with_a_path_prefix_is_kept(api: Api) -> None:
    api.reply(httpx.Response(200, json={"connectors": []}))

    await api.call("connectors", client=api.client(base_url="https://gw.example.com/arx/"))

    assert str(api.request.url) == "https://gw.example.com/arx/v1/sdk/connectors"


async def test_timeout_applies_to_every_request(api: Api) -> None:
    api.reply(httpx.Response(200, json={"connectors": []}))

    await api.call("connectors", client=api.client(timeout=4.5))

    assert api.request.extensions["timeout"] == {
        "connect": 4.5,
        "read": 4.5,
        "write": 4.5,
        "pool": 4.5,
    }


def test_sync_client_closes_only_the_http_client_it_created() -> None:
    with ARXClient(API_KEY) as owned:
        pass
    with pytest.raises(RuntimeError):
        owned.connectors()

    with httpx.Client() as http:
        with ARXClient(API_KEY, http_client=http):
            pass
        assert not http.is_closed


async def test_async_client_closes_only_the_http_client_it_created() -> None:
    async with AsyncARXClient(API_KEY) as owned:
        pass
    with pytest.raises(RuntimeError):
        await owned.connectors()

    async with httpx.AsyncClient() as http:
        async with AsyncARXClient(API_KEY, http_client=http):
            pass
        assert not http.is_closed


def test_errors_survive_pickling() -> None:
    err = PermissionDeniedError(
        "denied", code="policy_denied", request_id="r", policy_id="p", reasons=["x"]
    )

    copy = pickle.loads(pickle.dumps(err))  # noqa: S301 -- our own bytes, round-tripped

    assert type(copy) is PermissionDeniedError
    assert str(copy) == str(err)
    assert (copy.policy_id, copy.reasons, copy.status) == ("p", ["x"], 403)


@pytest.mark.parametrize(
    "err",
    [
        RateLimitedError("slow down", code="connector_rate_limited", retry_after=7),
        OutcomeUnknownError("no answer", code="outcome_unknown", event_id="e"),
        ConnectorUnreachableError("unreachable", code="connector_unreachable"),
        IdempotencyOutcomeUnknownError("maybe ran", event_id="e", outcome="unknown"),
        SessionContentionError("busy", code="session_contention", retry_after=1),
    ],
)
def test_new_errors_survive_pickling_and_default_their_status(err: APIError) -> None:
    copy = pickle.loads(pickle.dumps(err))  # noqa: S301 -- our own bytes, round-tripped

    assert type(copy) is type(err)
    assert str(copy) == str(err)
    assert (
        copy.status
        == {
            RateLimitedError: 429,
            OutcomeUnknownError: 504,
            ConnectorUnreachableError: 502,
            IdempotencyOutcomeUnknownError: 409,
            SessionContentionError: 503,
        }[type(err)]
    )


def test_version_matches_the_distribution() -> None:
    project = tomllib.loads((SDK_ROOT / "pyproject.toml").read_text())["project"]
    assert agentvault.__version__ == project["version"]
    assert project["dependencies"] == ["httpx>=0.28,<0.29", "msgspec>=0.22,<0.23"]


def test_public_names() -> None:
    assert set(agentvault.__all__) <= set(dir(agentvault))
    for name in agentvault.__all__:
        obj = getattr(agentvault, name)
        if isinstance(obj, type) and issubclass(obj, BaseException):
            assert issubclass(obj, AgentVaultError)
