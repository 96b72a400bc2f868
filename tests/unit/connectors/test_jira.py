"""The Jira connector against the fake Jira Cloud API, in process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from arx.connectors.jira import JiraConnector, JiraSecret, adf
from arx.connectors.types import CallContext
from arx.errors import (
    ConnectorAuthError,
    ConnectorRateLimitedError,
    ConnectorRequestError,
    InvalidFieldError,
)
from arx.sandbox.jira import JiraState, create_app
from arx.vault.secret import Secret

EMAIL, TOKEN = "arx-bot@example.com", "atl-api-token-4c3b2a"
CONTEXT = CallContext(
    base_url="https://acme.atlassian.net", credential_key="org/jira/v1", max_response_bytes=1 << 20
)
Run = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def state() -> JiraState:
    return JiraState.demo(EMAIL, TOKEN)


@pytest.fixture
async def run(state: JiraState) -> AsyncIterator[Run]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(state))) as client:
        connector = JiraConnector(client)

        async def call(op: str, params: dict[str, Any], token: str = TOKEN) -> Any:
            valid = JiraConnector.validate(op, params)
            secret = JiraSecret(email=EMAIL, api_token=Secret(token))
            return await connector._execute_impl(valid.operation, valid.params, secret, CONTEXT)

        yield call


@pytest.mark.anyio
async def test_an_incident_ticket_from_search_to_done(run: Run, state: JiraState) -> None:
    page = await run("issues:search", {"jql": "project = SEC", "max_results": 1})
    assert [i["key"] for i in page["issues"]] == ["SEC-1"]
    assert page["isLast"] is False
    rest = await run(
        "issues:search", {"jql": "project = SEC", "next_page_token": page["nextPageToken"]}
    )
    assert [i["key"] for i in rest["issues"]] == ["SEC-2"]
    created = await run(
        "issues:create",
        {
            "project": "SEC",
            "summary": "Contain WS-FIN-0142",
            "description": "Falcon: C2 beacon\nHost isolated",
        },
    )
    key = created["key"]
    assert state.issues[key].description == adf("Falcon: C2 beacon\nHost isolated")
    assert (await run("issues:get", {"key": key}))["fields"]["summary"] == "Contain WS-FIN-0142"
    comment = await run("issues:comment", {"key": key, "body": "Contained by responder-bot"})
    assert comment["body"] == adf("Contained by responder-bot")
    moves = await run("issues:transitions", {"key": key})
    done = next(t["id"] for t in moves["transitions"] if t["name"] == "Done")
    assert (
        await run("issues:transition", {"key": key, "transition_id": done, "comment": "closed"})
        == {}
    )
    assert state.issues[key].status == "Done"
    assert len(state.issues[key].comments) == 2


@pytest.mark.anyio
async def test_jiras_refusals_keep_its_words(run: Run, state: JiraState) -> None:
    with pytest.raises(ConnectorRequestError) as bad:
        await run("issues:create", {"project": "NOPE", "summary": "x"})
    assert bad.value.upstream_status == 400
    assert bad.value.extra["errors"] == ["project: valid project is required"]
    with pytest.raises(ConnectorRequestError) as missing:
        await run("issues:get", {"key": "SEC-999"})
    assert missing.value.upstream_status == 404
    with pytest.raises(ConnectorAuthError) as denied:
        await run("issues:get", {"key": "SEC-1"}, token="wrong")
    assert "wrong" not in denied.value.detail + repr(denied.value.extra)
    state.rate_limit = 0
    with pytest.raises(ConnectorRateLimitedError) as limited:
        await run("issues:get", {"key": "SEC-1"})
    assert limited.value.headers == {"retry-after": "30"}


def test_params_are_strict() -> None:
    for op, params in (
        ("issues:get", {"key": "sec-1"}),
        ("issues:get", {"key": "SEC-1/../../x"}),
        ("issues:transition", {"key": "SEC-1", "transition_id": "done"}),
        ("issues:create", {"project": "SEC", "summary": ""}),
        ("issues:search", {"jql": "project = SEC", "max_results": 1000}),
    ):
        with pytest.raises(InvalidFieldError):
            JiraConnector.validate(op, params)
