"""The Sentinel connector against fake Entra ID and ARM, in process."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from arx.connectors.sentinel import SentinelConnector, SentinelSecret
from arx.connectors.types import CallContext
from arx.errors import ConnectorAuthError, ConnectorRequestError, InvalidFieldError
from arx.sandbox.sentinel import SentinelState, create_app
from arx.vault.secret import Secret

TENANT, CLIENT, SECRET = str(uuid.uuid4()), str(uuid.uuid4()), "entra-app-secret~9f8e"
WORKSPACE = (str(uuid.uuid4()), "soc-rg", "soc-workspace")
CONTEXT = CallContext(
    base_url="https://management.azure.com",
    credential_key="org/sentinel/v1",
    max_response_bytes=1 << 20,
)
Run = Callable[..., Awaitable[dict[str, Any]]]


def _secret(client_secret: str = SECRET) -> SentinelSecret:
    sub, group, workspace = WORKSPACE
    return SentinelSecret(
        tenant_id=TENANT,
        client_id=CLIENT,
        client_secret=Secret(client_secret),
        subscription_id=sub,
        resource_group=group,
        workspace=workspace,
    )


@pytest.fixture
def state() -> SentinelState:
    return SentinelState.demo(TENANT, CLIENT, SECRET, WORKSPACE)


@pytest.fixture
async def run(state: SentinelState) -> AsyncIterator[Run]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(state))) as client:
        connector = SentinelConnector(client)

        async def call(
            op: str, params: dict[str, Any], secret: SentinelSecret | None = None
        ) -> Any:
            valid = SentinelConnector.validate(op, params)
            return await connector._execute_impl(
                valid.operation, valid.params, secret or _secret(), CONTEXT
            )

        yield call


@pytest.mark.anyio
async def test_an_incident_from_list_to_closed(run: Run, state: SentinelState) -> None:
    listed = await run("incidents:list", {"filter": "properties/status eq 'New'"})
    assert len(listed["value"]) == 2
    first = listed["value"][0]
    incident_id = first["name"]
    got = await run("incidents:get", {"incident_id": incident_id})
    assert got["etag"] == first["etag"]
    await run("incidents:comment", {"incident_id": incident_id, "message": "Contained WS-FIN-0142"})
    assert state.incidents[incident_id].comments == ["Contained WS-FIN-0142"]
    closed = await run(
        "incidents:update",
        {
            "incident_id": incident_id,
            "title": got["properties"]["title"],
            "severity": "High",
            "status": "Closed",
            "classification": "TruePositive",
            "etag": got["etag"],
        },
    )
    assert closed["properties"]["status"] == "Closed"
    # The etag changed: the same conditional update is refused (412).
    with pytest.raises(ConnectorRequestError) as stale:
        await run(
            "incidents:update",
            {
                "incident_id": incident_id,
                "title": "x",
                "severity": "Low",
                "status": "Active",
                "etag": got["etag"],
            },
        )
    assert stale.value.upstream_status == 412
    assert len(state.calls(f"/{TENANT}/oauth2/v2.0/token")) == 1
    assert all(dict(r.query).get("api-version") == "2024-03-01" for r in state.requests[1:])


@pytest.mark.anyio
async def test_a_wrong_secret_is_entras_refusal_and_never_told(run: Run) -> None:
    with pytest.raises(ConnectorAuthError) as denied:
        await run("incidents:list", {}, _secret("not-it~1"))
    assert "not-it~1" not in denied.value.detail + repr(denied.value.extra)
    assert "Entra ID rejected" in denied.value.detail


def test_params_and_secret_are_strict() -> None:
    for op, params in (
        ("incidents:get", {"incident_id": "../../x"}),
        (
            "incidents:update",
            {"incident_id": str(uuid.uuid4()), "title": "t", "severity": "Huge", "status": "New"},
        ),
        ("incidents:list", {"top": 5000}),
    ):
        with pytest.raises(InvalidFieldError):
            SentinelConnector.validate(op, params)
