"""The fake Falcon API follows the documented endpoints, payloads and state machine."""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from arx.sandbox.falcon import FalconState, app_from_env, create_app

CLIENT_ID = "0123456789abcdef0123456789abcdef"
CLIENT_SECRET = "s3cr3t-Falcon-client-Secret-value"
BASE = "http://falcon.sandbox"

WS_FIN = "4c1d7e2a9b3f4e5d8a6c0b1e2f3a4d5c"
SRV_DC = "9e8f7a6b5c4d4e3f9a1b2c3d4e5f6a7b"
WEB_PROD = "1a2b3c4d5e6f40718293a4b5c6d7e8f9"
MBP_ENG = "d0c9b8a7f6e54d3c2b1a0f9e8d7c6b5a"
LAPTOP_HR = "5f4e3d2c1b0a49f8e7d6c5b4a3928170"  # seeded as contained
UNKNOWN = "ffffffffffffffffffffffffffffffff"

ACTIONS = "/devices/entities/devices-actions/v2"
ENTITIES = "/devices/entities/devices/v2"
QUERIES = "/devices/queries/devices/v1"


class FakeClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def state(clock: FakeClock) -> FalconState:
    falcon = FalconState.with_demo_devices({CLIENT_ID: CLIENT_SECRET})
    falcon.clock = clock
    return falcon


@pytest.fixture
async def client(state: FalconState) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(state))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
        yield http


async def _token(client: httpx.AsyncClient) -> str:
    reply = await client.post(
        "/oauth2/token", data={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    )
    assert reply.status_code == 201
    token = reply.json()["access_token"]
    assert isinstance(token, str)
    return token


@pytest.fixture
async def auth(client: httpx.AsyncClient) -> dict[str, str]:
    return {"Authorization": f"Bearer {await _token(client)}"}


def _assert_envelope(body: dict[str, Any], code: int) -> None:
    assert set(body["meta"]) >= {"query_time", "powered_by", "trace_id"}
    assert body["errors"][0]["code"] == code
    assert body["errors"][0]["message"]
    assert body["resources"] == []


# --- OAuth2 -------------------------------------------------------------------


@pytest.mark.anyio
async def test_token_exchange_answers_201_with_region_and_bearer_token(
    client: httpx.AsyncClient, state: FalconState
) -> None:
    reply = await client.post(
        "/oauth2/token",
        data={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "member_cid": "c" * 32},
    )

    assert reply.status_code == 201
    assert reply.headers["X-CS-Region"] == "us-1"
    body = reply.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 1799
    issued = state.tokens[body["access_token"]]
    assert (issued.client_id, issued.member_cid) == (CLIENT_ID, "c" * 32)
    [logged] = state.calls("/oauth2/token")
    assert logged.auth_valid
    assert logged.form_fields == ("client_id", "client_secret", "member_cid")
    # The log never holds the secret or the token it handed out.
    assert CLIENT_SECRET not in repr(state.requests)
    assert body["access_token"] not in repr(state.requests)
    assert CLIENT_SECRET not in repr(state)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("client_id", "client_secret"),
    [(CLIENT_ID, "wrong-secret"), ("unknown-client", CLIENT_SECRET)],
)
async def test_bad_client_credentials_are_refused_with_the_falcon_envelope(
    client: httpx.AsyncClient, state: FalconState, client_id: str, client_secret: str
) -> None:
    reply = await client.post(
        "/oauth2/token", data={"client_id": client_id, "client_secret": client_secret}
    )

    assert reply.status_code == 403
    body = reply.json()
    _assert_envelope(body, 403)
    assert body["errors"][0]["message"].startswith("Failed to issue access token")
    assert state.tokens == {}
    assert [r.auth_valid for r in state.calls("/oauth2/token")] == [False]


@pytest.mark.anyio
async def test_token_exchange_needs_a_form_with_both_fields(client: httpx.AsyncClient) -> None:
    missing = await client.post("/oauth2/token", data={"client_id": CLIENT_ID})
    as_json = await client.post(
        "/oauth2/token", json={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    )

    assert missing.status_code == 400
    assert as_json.status_code == 400
    _assert_envelope(as_json.json(), 400)


@pytest.mark.anyio
async def test_api_routes_refuse_missing_garbage_and_expired_tokens(
    client: httpx.AsyncClient, state: FalconState, clock: FakeClock, auth: dict[str, str]
) -> None:
    no_token = await client.get(QUERIES)
    garbage = await client.get(QUERIES, headers={"Authorization": "Bearer not-a-token"})
    clock.now += 1799
    still_valid = await client.get(QUERIES, headers=auth)
    clock.now += 1
    expired = await client.get(QUERIES, headers=auth)

    for reply in (no_token, garbage, expired):
        assert reply.status_code == 401
        _assert_envelope(reply.json(), 401)
        assert reply.json()["errors"][0]["message"] == "access denied, invalid bearer token"
    assert still_valid.status_code == 200
    assert [r.auth_valid for r in state.calls(QUERIES)] == [False, False, True, False]


@pytest.mark.anyio
async def test_revoke_invalidates_the_token_only_for_the_right_client(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    token = auth["Authorization"].removeprefix("Bearer ")
    wrong = base64.b64encode(f"{CLIENT_ID}:nope".encode()).decode()
    right = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()

    refused = await client.post(
        "/oauth2/revoke", data={"token": token}, headers={"Authorization": f"Basic {wrong}"}
    )
    assert refused.status_code == 401
    assert (await client.get(QUERIES, headers=auth)).status_code == 200

    revoked = await client.post(
        "/oauth2/revoke", data={"token": token}, headers={"Authorization": f"Basic {right}"}
    )
    assert revoked.status_code == 200
    assert (await client.get(QUERIES, headers=auth)).status_code == 401


# --- hosts:search -------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("fql", "expected"),
    [
        ("hostname:'WS-FIN-0142'", [WS_FIN]),
        ("hostname:'ws-fin-0142'", [WS_FIN]),
        ("status:'contained'", [LAPTOP_HR]),
        ("status:'normal'", [WS_FIN, SRV_DC, WEB_PROD, MBP_ENG]),
        ("platform_name:'Windows'+status:'normal'", [WS_FIN, SRV_DC]),
        ("hostname:'SRV-*'", [SRV_DC]),
        ("tags:'FalconGroupingTags/Servers'", [SRV_DC, WEB_PROD]),
        ("hostname:'nope'", []),
    ],
)
async def test_search_applies_the_fql_subset(
    client: httpx.AsyncClient, auth: dict[str, str], fql: str, expected: list[str]
) -> None:
    reply = await client.get(QUERIES, params={"filter": fql}, headers=auth)

    assert reply.status_code == 200
    body = reply.json()
    assert body["resources"] == expected
    assert body["meta"]["pagination"] == {"offset": 0, "limit": 100, "total": len(expected)}
    assert body["errors"] == []


@pytest.mark.anyio
async def test_search_paginates_with_limit_and_offset_in_sort_order(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    pages = [
        (
            await client.get(
                QUERIES,
                params={"limit": 2, "offset": offset, "sort": "hostname.asc"},
                headers=auth,
            )
        ).json()
        for offset in (0, 2, 4)
    ]

    assert [p["resources"] for p in pages] == [
        [LAPTOP_HR, MBP_ENG],
        [SRV_DC, WEB_PROD],
        [WS_FIN],
    ]
    assert [p["meta"]["pagination"] for p in pages] == [
        {"offset": 0, "limit": 2, "total": 5},
        {"offset": 2, "limit": 2, "total": 5},
        {"offset": 4, "limit": 2, "total": 5},
    ]


@pytest.mark.anyio
@pytest.mark.parametrize(
    "params",
    [
        {"filter": "os_build:'22631'"},
        {"filter": "hostname:WS-FIN-0142"},
        {"filter": "hostname"},
        {"limit": "0"},
        {"limit": "5001"},
        {"limit": "many"},
        {"offset": "-1"},
        {"sort": "serial_number.asc"},
        {"sort": "hostname.sideways"},
    ],
)
async def test_search_rejects_what_falcon_rejects(
    client: httpx.AsyncClient, auth: dict[str, str], params: dict[str, str]
) -> None:
    reply = await client.get(QUERIES, params=params, headers=auth)

    assert reply.status_code == 400
    _assert_envelope(reply.json(), 400)


# --- hosts:get ----------------------------------------------------------------


@pytest.mark.anyio
async def test_get_returns_device_entities_with_the_documented_fields(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    reply = await client.get(ENTITIES, params=[("ids", WS_FIN), ("ids", WEB_PROD)], headers=auth)

    assert reply.status_code == 200
    body = reply.json()
    assert [d["hostname"] for d in body["resources"]] == ["WS-FIN-0142", "web-prod-03"]
    for device in body["resources"]:
        assert set(device) >= {
            "device_id",
            "hostname",
            "status",
            "platform_name",
            "os_version",
            "local_ip",
            "external_ip",
            "last_seen",
            "agent_version",
            "tags",
        }
        assert len(device["device_id"]) == 32
        int(device["device_id"], 16)
    assert body["errors"] == []


@pytest.mark.anyio
async def test_get_reports_unknown_ids_as_404_errors_beside_the_found_ones(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    partial = await client.get(ENTITIES, params=[("ids", SRV_DC), ("ids", UNKNOWN)], headers=auth)
    none = await client.get(ENTITIES, params={"ids": UNKNOWN}, headers=auth)

    assert partial.status_code == 200
    assert [d["device_id"] for d in partial.json()["resources"]] == [SRV_DC]
    assert [(e["code"], e["id"]) for e in partial.json()["errors"]] == [(404, UNKNOWN)]
    assert none.status_code == 404
    assert none.json()["resources"] == []
    assert [(e["code"], e["id"]) for e in none.json()["errors"]] == [(404, UNKNOWN)]


@pytest.mark.anyio
async def test_get_needs_between_one_and_a_hundred_ids(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    no_ids = await client.get(ENTITIES, headers=auth)
    too_many = await client.get(
        ENTITIES, params=[("ids", f"{i:032x}") for i in range(101)], headers=auth
    )

    assert no_ids.status_code == 400
    assert too_many.status_code == 400


# --- device actions -----------------------------------------------------------


async def _status(client: httpx.AsyncClient, auth: dict[str, str], aid: str) -> str:
    reply = await client.get(ENTITIES, params={"ids": aid}, headers=auth)
    status = reply.json()["resources"][0]["status"]
    assert isinstance(status, str)
    return status


async def _act(
    client: httpx.AsyncClient, auth: dict[str, str], action: str, *ids: str
) -> httpx.Response:
    return await client.post(
        ACTIONS, params={"action_name": action}, json={"ids": list(ids)}, headers=auth
    )


@pytest.mark.anyio
async def test_containment_state_machine_goes_through_the_pending_states(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    contain = await _act(client, auth, "contain", WS_FIN)
    assert contain.status_code == 202
    assert contain.json()["resources"] == [{"id": WS_FIN, "path": ACTIONS}]
    assert contain.json()["errors"] == []
    assert await _status(client, auth, WS_FIN) == "containment_pending"
    assert await _status(client, auth, WS_FIN) == "contained"
    assert await _status(client, auth, WS_FIN) == "contained"

    lift = await _act(client, auth, "lift_containment", WS_FIN)
    assert lift.status_code == 202
    assert lift.json()["resources"] == [{"id": WS_FIN, "path": ACTIONS}]
    assert await _status(client, auth, WS_FIN) == "lift_containment_pending"
    assert await _status(client, auth, WS_FIN) == "normal"


@pytest.mark.anyio
async def test_search_does_not_settle_a_pending_action(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await _act(client, auth, "contain", MBP_ENG)
    found = await client.get(
        QUERIES, params={"filter": "status:'containment_pending'"}, headers=auth
    )

    assert found.json()["resources"] == [MBP_ENG]
    assert await _status(client, auth, MBP_ENG) == "containment_pending"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("action", "aid"),
    [
        ("contain", LAPTOP_HR),  # already contained
        ("lift_containment", SRV_DC),  # not contained
    ],
)
async def test_invalid_transitions_answer_409(
    client: httpx.AsyncClient, auth: dict[str, str], state: FalconState, action: str, aid: str
) -> None:
    before = state.devices[aid].status
    reply = await _act(client, auth, action, aid)

    assert reply.status_code == 409
    _assert_envelope(reply.json(), 409)
    assert reply.json()["errors"][0]["id"] == aid
    assert state.devices[aid].status == before


@pytest.mark.anyio
async def test_contain_twice_conflicts_even_while_pending(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    assert (await _act(client, auth, "contain", WEB_PROD)).status_code == 202
    assert (await _act(client, auth, "contain", WEB_PROD)).status_code == 409


@pytest.mark.anyio
async def test_device_action_batches_succeed_partially(
    client: httpx.AsyncClient, auth: dict[str, str], state: FalconState
) -> None:
    reply = await _act(client, auth, "contain", SRV_DC, LAPTOP_HR, UNKNOWN)

    assert reply.status_code == 202
    assert [r["id"] for r in reply.json()["resources"]] == [SRV_DC]
    assert sorted((e["code"], e["id"]) for e in reply.json()["errors"]) == [
        (404, UNKNOWN),
        (409, LAPTOP_HR),
    ]
    assert state.devices[SRV_DC].status == "containment_pending"


@pytest.mark.anyio
async def test_device_actions_reject_unknown_actions_and_bad_bodies(
    client: httpx.AsyncClient, auth: dict[str, str], state: FalconState
) -> None:
    unknown_action = await _act(client, auth, "hide_host", WS_FIN)
    no_ids = await _act(client, auth, "contain")
    not_json = await client.post(
        ACTIONS, params={"action_name": "contain"}, content=b"ids=1", headers=auth
    )
    only_unknown = await _act(client, auth, "contain", UNKNOWN)

    assert unknown_action.status_code == 400
    assert no_ids.status_code == 400
    assert not_json.status_code == 400
    assert only_unknown.status_code == 404
    assert state.devices[WS_FIN].status == "normal"


# --- rate limits and the log ----------------------------------------------------


@pytest.mark.anyio
async def test_rate_limit_headers_count_down(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    first = await client.get(QUERIES, headers=auth)
    second = await client.get(QUERIES, headers=auth)

    assert first.headers["X-RateLimit-Limit"] == "6000"
    assert int(first.headers["X-RateLimit-Remaining"]) == 5999
    assert int(second.headers["X-RateLimit-Remaining"]) == 5998


@pytest.mark.anyio
async def test_configured_rate_limit_answers_429_with_an_epoch_retry_after(
    client: httpx.AsyncClient, auth: dict[str, str], state: FalconState, clock: FakeClock
) -> None:
    state.rate_limit = 2
    assert (await client.get(QUERIES, headers=auth)).status_code == 200
    assert (await client.get(QUERIES, headers=auth)).status_code == 200

    limited = await client.get(QUERIES, headers=auth)

    assert limited.status_code == 429
    _assert_envelope(limited.json(), 429)
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    retry_after = int(limited.headers["X-RateLimit-RetryAfter"])
    # An absolute timestamp within the next minute, not a delta.
    assert clock.now < retry_after <= clock.now + 61

    clock.now = retry_after
    assert (await client.get(QUERIES, headers=auth)).status_code == 200


@pytest.mark.anyio
async def test_unknown_routes_answer_with_the_envelope_and_are_logged(
    client: httpx.AsyncClient, state: FalconState
) -> None:
    reply = await client.get("/devices/queries/devices/v9", params={"x": "1"})

    assert reply.status_code == 404
    _assert_envelope(reply.json(), 404)
    assert [(r.method, r.path, r.query, r.status) for r in state.requests] == [
        ("GET", "/devices/queries/devices/v9", (("x", "1"),), 404)
    ]


# --- the uvicorn factory ----------------------------------------------------------


@pytest.mark.anyio
async def test_app_from_env_accepts_the_configured_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ARX_SANDBOX_FALCON_CLIENT_ID", "demo-client")
    monkeypatch.setenv("ARX_SANDBOX_FALCON_CLIENT_SECRET", "demo-secret")
    transport = httpx.ASGITransport(app=app_from_env())
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
        good = await http.post(
            "/oauth2/token", data={"client_id": "demo-client", "client_secret": "demo-secret"}
        )
        bad = await http.post(
            "/oauth2/token", data={"client_id": "demo-client", "client_secret": "other"}
        )

    assert good.status_code == 201
    assert bad.status_code == 403


def test_app_from_env_refuses_to_start_without_a_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARX_SANDBOX_FALCON_CLIENT_ID", raising=False)
    monkeypatch.setenv("ARX_SANDBOX_FALCON_CLIENT_SECRET", "demo-secret")

    with pytest.raises(RuntimeError, match="ARX_SANDBOX_FALCON_CLIENT_ID"):
        app_from_env()
