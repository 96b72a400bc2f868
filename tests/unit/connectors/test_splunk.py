"""The Splunk connector against the fake Splunk management API, in process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import msgspec
import pytest

from arx.connectors.splunk import SplunkConnector, SplunkSecret
from arx.connectors.types import CallContext
from arx.errors import ConnectorAuthError, ConnectorRequestError, InvalidFieldError
from arx.sandbox.splunk import SplunkState, create_app
from arx.vault.secret import Secret, secret_dec_hook

USER, PASSWORD, TOKEN = "arx-svc", "splunk-pass-7e6d5c", "eyJraWQiOiJzcGx1bmsifQ.fake.jwt"
CONTEXT = CallContext(
    base_url="https://acme.splunkcloud.com:8089",
    credential_key="org/splunk/v1",
    max_response_bytes=1 << 20,
)
Run = Callable[..., Awaitable[dict[str, Any]]]
NOTABLE = "1A2B3C4D-0001@@notable@@a1b2c3"


@pytest.fixture
def state() -> SplunkState:
    return SplunkState.demo(USER, PASSWORD, TOKEN)


@pytest.fixture
async def run(state: SplunkState) -> AsyncIterator[Run]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(state))) as client:
        connector = SplunkConnector(client)

        async def call(op: str, params: dict[str, Any], secret: SplunkSecret | None = None) -> Any:
            valid = SplunkConnector.validate(op, params)
            secret = secret or SplunkSecret(username=USER, password=Secret(PASSWORD))
            return await connector._execute_impl(valid.operation, valid.params, secret, CONTEXT)

        yield call


@pytest.mark.anyio
async def test_a_search_from_job_to_results_on_one_session(run: Run, state: SplunkState) -> None:
    sid = (await run("search:query", {"search": "search index=main user=ana.ruiz"}))["sid"]
    assert state.jobs[sid].search == "search index=main user=ana.ruiz"
    first = await run("search:status", {"sid": sid})
    assert first["entry"][0]["content"]["dispatchState"] == "RUNNING"
    second = await run("search:status", {"sid": sid})
    assert second["entry"][0]["content"]["isDone"] is True
    results = await run("search:results", {"sid": sid, "count": 1})
    assert [r["host"] for r in results["results"]] == ["WS-FIN-0142"]
    # One login served every call: the session key is shared.
    assert len(state.calls("/services/auth/login")) == 1
    # A session Splunk drops is replaced once.
    state.sessions.clear()
    assert (await run("search:status", {"sid": sid}))["entry"][0]["name"] == sid
    assert len(state.calls("/services/auth/login")) == 2
    await run("search:cancel", {"sid": sid})
    assert sid not in state.jobs


def test_only_a_bare_search_is_a_read() -> None:
    """SPL can write and send data out: any pipeline, subsearch or macro is
    search:create (a write); search:query takes one search command."""
    for spl in (
        "search index=main | outputlookup users.csv",
        "search index=main | sendemail to=x@example.com",
        "search [search index=main | collect index=x]",
        "search `my_macro`",
        "| makeresults",
        "search index=main\n| delete",
    ):
        with pytest.raises(InvalidFieldError):
            SplunkConnector.validate("search:query", {"search": spl})
    assert SplunkConnector.operation("search:query").kind.value == "read"
    assert SplunkConnector.operation("search:create").kind.value == "write"
    assert SplunkConnector.operation("search:create").inverse == "search:cancel"


@pytest.mark.anyio
async def test_a_token_instead_of_a_session_and_the_notable_update(
    run: Run, state: SplunkState
) -> None:
    with_token = SplunkSecret(token=Secret(TOKEN))
    answer = await run(
        "notable:update",
        {"rule_uids": [NOTABLE], "status": 2, "new_owner": "ana.ruiz", "comment": "triaged"},
        with_token,
    )
    assert answer["success_count"] == 1
    assert (state.notables[NOTABLE].status, state.notables[NOTABLE].owner) == (2, "ana.ruiz")
    assert state.calls("/services/auth/login") == []
    with pytest.raises(ConnectorRequestError) as unknown:
        await run("notable:update", {"rule_uids": ["nope"]}, with_token)
    assert "Unknown notable event ids: nope" in unknown.value.extra["errors"]


@pytest.mark.anyio
async def test_a_wrong_password_is_refused_and_never_told(run: Run) -> None:
    wrong = SplunkSecret(username=USER, password=Secret("not-it-3f"))
    with pytest.raises(ConnectorAuthError) as denied:
        await run("search:query", {"search": "search index=main"}, wrong)
    assert "not-it-3f" not in denied.value.detail + repr(denied.value.extra)
    assert denied.value.extra["errors"] == ["Login failed"]


def test_the_secret_is_a_token_or_a_login_and_sids_are_not_paths() -> None:
    for bad in ({}, {"token": "t", "username": "u", "password": "p"}, {"username": "u"}):
        with pytest.raises(msgspec.ValidationError):
            msgspec.convert(bad, SplunkSecret, dec_hook=secret_dec_hook)
    for sid in ("..", "../../server/info", "a/b", ".hidden"):
        with pytest.raises(InvalidFieldError):
            SplunkConnector.validate("search:status", {"sid": sid})
