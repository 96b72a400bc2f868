"""The Okta connector against the fake Okta API, in process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import msgspec
import pytest

from arx.connectors.okta import OktaConnector, OktaSecret
from arx.connectors.types import CallContext
from arx.errors import (
    ConnectorAuthError,
    ConnectorRateLimitedError,
    ConnectorRequestError,
    InvalidFieldError,
)
from arx.sandbox.okta import OktaState, create_app
from arx.vault.secret import Secret

TOKEN = "00okta-api-token-5d1e9c7b"
BASE = "https://acme.okta.com"
CONTEXT = CallContext(base_url=BASE, credential_key="org/okta/v1", max_response_bytes=1 << 20)
Run = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def state() -> OktaState:
    return OktaState.demo(TOKEN)


@pytest.fixture
async def run(state: OktaState) -> AsyncIterator[Run]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(state))) as client:
        connector = OktaConnector(client)

        async def call(op: str, params: dict[str, Any] | None = None, token: str = TOKEN) -> Any:
            validated = OktaConnector.validate(op, params or {})
            secret = OktaSecret(api_token=Secret(token))
            return await connector._execute_impl(
                validated.operation, validated.params, secret, CONTEXT
            )

        yield call


def _user(state: OktaState, login: str) -> str:
    return next(u.id for u in state.users.values() if u.login == login)


@pytest.mark.anyio
async def test_search_and_get_speak_oktas_api(run: Run, state: OktaState) -> None:
    found = await run("users:search", {"search": 'profile.email eq "ben.okafor@example.com"'})
    [user] = found["items"]
    assert user["profile"]["login"] == "ben.okafor@example.com"
    assert found["next_after"] is None
    by_login = await run("users:get", {"user": "chen.li@example.com"})
    assert by_login["id"] == _user(state, "chen.li@example.com")
    assert (await run("users:get", {"user": by_login["id"]}))["status"] == "ACTIVE"
    # Pages: the Link header's cursor, given back as next_after.
    first = await run("users:search", {"limit": 2})
    assert len(first["items"]) == 2
    assert first["next_after"]
    rest = await run("users:search", {"limit": 2, "after": first["next_after"]})
    assert [u["id"] for u in rest["items"]] not in ([u["id"] for u in first["items"]],)
    assert rest["next_after"] is None
    assert all(r.auth_valid for r in state.requests)


@pytest.mark.anyio
async def test_containment_and_its_inverses(run: Run, state: OktaState) -> None:
    user_id = _user(state, "ana.ruiz@example.com")
    group_id = next(iter(state.groups))
    assert await run("users:suspend", {"user_id": user_id}) == {}
    assert state.users[user_id].status == "SUSPENDED"
    # Okta refuses a transition from the wrong state, with its own words.
    with pytest.raises(ConnectorRequestError) as caught:
        await run("users:suspend", {"user_id": user_id})
    assert caught.value.upstream_status == 400
    assert caught.value.extra["okta_error"] == "E0000001"
    assert "Cannot suspend a user that is suspended" in caught.value.extra["errors"]
    await run("users:unsuspend", {"user_id": user_id})
    assert state.users[user_id].status == "ACTIVE"
    assert await run("sessions:revoke", {"user_id": user_id}) == {}
    assert state.users[user_id].sessions == 0
    assert ("oauthTokens", "true") in state.calls(method="DELETE")[0].query
    await run("groups:remove_user", {"group_id": group_id, "user_id": user_id})
    assert group_id not in state.users[user_id].groups
    await run("groups:add_user", {"group_id": group_id, "user_id": user_id})
    assert group_id in state.users[user_id].groups


@pytest.mark.anyio
async def test_refusals_say_what_okta_said_and_never_the_token(run: Run, state: OktaState) -> None:
    with pytest.raises(ConnectorAuthError) as denied:
        await run("users:search", token="not-the-token")
    assert denied.value.extra["okta_error"] == "E0000011"
    assert "not-the-token" not in repr(denied.value.extra) + denied.value.detail
    with pytest.raises(ConnectorRequestError) as missing:
        await run("users:get", {"user": "nobody@example.com"})
    assert missing.value.upstream_status == 404
    state.rate_limit = 0
    with pytest.raises(ConnectorRateLimitedError) as limited:
        await run("users:search")
    assert limited.value.extra["okta_error"] == "E0000047"
    assert 0 <= limited.value.extra["retry_after_seconds"] <= 61
    assert limited.value.headers["retry-after"] == str(limited.value.extra["retry_after_seconds"])


def test_params_are_strict() -> None:
    for op, params in (
        ("users:suspend", {"user_id": "ana.ruiz@example.com"}),
        ("users:suspend", {"user_id": "00u1", "extra": 1}),
        ("groups:add_user", {"group_id": "../../users", "user_id": "00uabcdefghijklmnopq"}),
        ("users:get", {"user": "a/b"}),
        # Not ids, not logins: "." would be GET /api/v1/users, the whole directory.
        ("users:get", {"user": "."}),
        ("users:get", {"user": ".."}),
        ("users:get", {"user": "%2e"}),
        ("users:search", {"limit": 500}),
    ):
        with pytest.raises(InvalidFieldError):
            OktaConnector.validate(op, params)
    assert msgspec.structs.asdict(OktaConnector.validate("users:search", {}).params) == {
        "search": None,
        "limit": 20,
        "after": None,
    }
