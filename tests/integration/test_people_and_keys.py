"""Who may administer what, the agent-key lifecycle, the kill switches and
the IP allowlists, through the admin API of one running process.

(Revocation across two API processes: tests/e2e/test_revocation.py; the
cross-tenant probe over every route: tests/integration/test_cross_tenant.py.)
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import psycopg
import pytest

from arx.admin.people import add_member, create_token
from arx.api.app import create_app
from arx.identity.network import parse_networks
from arx.identity.principal import Access, Principal, PrincipalKind
from arx.runtime import Runtime
from arx.sandbox.falcon import FalconState
from tests.fixtures.arx import Example, make_org
from tests.fixtures.database import Database

pytestmark = pytest.mark.anyio

ORGS = "/v1/admin/orgs"
EXECUTE = "/v1/sdk/execute"
SEARCH = {"connector": "crowdstrike", "operation": "hosts:search", "params": {}}


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def _problem(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json"), resp.text
    body: dict[str, Any] = resp.json()
    assert body["code"] == code, body
    return body


async def _token(
    client: httpx.AsyncClient, example: Example, roles: list[str], name: str = "t"
) -> dict[str, Any]:
    resp = await client.post(
        f"{ORGS}/{example.seeded.org_id}/admin-tokens",
        json={"name": name, "roles": roles},
        headers=example.owner,
    )
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _events(test_db: Database, action_prefix: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(test_db.admin_url) as conn:
        return conn.execute(
            "SELECT kind, action, actor, details FROM arx.audit_events"
            " WHERE action LIKE %s ORDER BY seq",
            (action_prefix + "%",),
        ).fetchall()


# --- roles -----------------------------------------------------------------------------


async def test_each_route_accepts_only_its_roles(
    client: httpx.AsyncClient, example: Example, test_db: Database
) -> None:
    org = f"{ORGS}/{example.seeded.org_id}"
    agent = example.seeded.agent_ids["triage-bot"]
    reviewer = _bearer((await _token(client, example, ["reviewer"]))["token"])
    auditor = _bearer((await _token(client, example, ["auditor"]))["token"])
    admin = _bearer((await _token(client, example, ["admin"]))["token"])
    scim = _bearer((await _token(client, example, ["scim"]))["token"])

    # Reads: any person's role; a provisioning token is no person.
    for who in (reviewer, auditor, admin):
        assert (await client.get(f"{org}/agents", headers=who)).status_code == 200
    _problem(await client.get(f"{org}/agents", headers=scim), 403, "role_required")
    # The trail: auditors and administrators, not reviewers.
    assert (await client.get(f"{org}/audit", headers=auditor)).status_code == 200
    _problem(await client.get(f"{org}/audit", headers=reviewer), 403, "role_required")
    # Changes: owners and admins only.
    for who in (reviewer, auditor, scim):
        denied = await client.post(f"{org}/agents/{agent}/keys", headers=who)
        body = _problem(denied, 403, "role_required")
        assert "owner, admin" in body["detail"]
        _problem(
            await client.put(
                f"{org}/agents/{agent}/kill-switch", json={"disabled": True}, headers=who
            ),
            403,
            "role_required",
        )
    assert (await client.post(f"{org}/agents/{agent}/keys", headers=admin)).status_code == 201
    with psycopg.connect(test_db.admin_url) as conn:
        disabled = conn.execute("SELECT count(*) FROM arx.agents WHERE disabled_at IS NOT NULL")
        assert disabled.fetchone() == (0,)


async def test_nobody_grants_more_than_they_hold(
    client: httpx.AsyncClient, example: Example
) -> None:
    org = f"{ORGS}/{example.seeded.org_id}"
    admin = _bearer((await _token(client, example, ["admin"]))["token"])
    for roles in (["owner"], ["scim"], ["admin", "owner"]):
        resp = await client.post(
            f"{org}/admin-tokens", json={"name": "x", "roles": roles}, headers=admin
        )
        _problem(resp, 403, "role_required")
    made = await client.post(
        f"{org}/admin-tokens", json={"name": "ci", "roles": ["auditor"]}, headers=admin
    )
    assert made.status_code == 201, made.text
    # People: an admin adds reviewers, never owners.
    owner_grant = await client.post(
        f"{org}/members", json={"email": "eve@example.test", "roles": ["owner"]}, headers=admin
    )
    _problem(owner_grant, 403, "role_required")
    added = await client.post(
        f"{org}/members",
        json={"email": "rita@example.test", "roles": ["reviewer"], "display_name": "Rita"},
        headers=admin,
    )
    assert added.status_code == 201, added.text
    assert added.json()["effective_roles"] == ["reviewer"]
    twice = await client.post(
        f"{org}/members", json={"email": "RITA@example.test", "roles": ["reviewer"]}, headers=admin
    )
    assert "already a member" in _problem(twice, 409, "conflict")["detail"]


async def test_the_last_owner_stays(client: httpx.AsyncClient, example: Example) -> None:
    org = f"{ORGS}/{example.seeded.org_id}"
    members = (await client.get(f"{org}/members", headers=example.owner)).json()
    (owner,) = members
    demote = await client.patch(
        f"{org}/members/{owner['user_id']}", json={"roles": ["admin"]}, headers=example.owner
    )
    _problem(demote, 409, "conflict")
    leave = await client.patch(
        f"{org}/members/{owner['user_id']}", json={"active": False}, headers=example.owner
    )
    _problem(leave, 409, "conflict")
    # With a second owner, the first may step down.
    second = await client.post(
        f"{org}/members",
        json={"email": "second@example.test", "roles": ["owner"]},
        headers=example.owner,
    )
    assert second.status_code == 201, second.text
    stepped = await client.patch(
        f"{org}/members/{owner['user_id']}", json={"roles": ["auditor"]}, headers=example.owner
    )
    assert stepped.status_code == 200, stepped.text
    assert stepped.json()["effective_roles"] == ["auditor"]


async def test_admin_changes_are_audited_with_the_real_actor(
    client: httpx.AsyncClient, example: Example, test_db: Database
) -> None:
    org = f"{ORGS}/{example.seeded.org_id}"
    admin = await _token(client, example, ["admin"], name="ops laptop")
    added = await client.post(
        f"{org}/members",
        json={"email": "rita@example.test", "roles": ["reviewer"]},
        headers=_bearer(admin["token"]),
    )
    assert added.status_code == 201, added.text
    (created,) = _events(test_db, "admin_token.created")[-1:]
    assert created[2] == f"token:{example.seeded.owner_token.split('_')[1]} (owner token)"
    assert created[3]["roles"] == ["admin"]
    assert admin["token"] not in str(created)
    member = _events(test_db, "member.added")[-1]
    assert member[2] == f"token:{admin['token_id']} (ops laptop)"
    assert member[3]["email"] == "rita@example.test"


# --- agent keys -----------------------------------------------------------------------


async def test_key_lifecycle_create_list_rotate_revoke(
    client: httpx.AsyncClient, example: Example, runtime: Runtime, test_db: Database
) -> None:
    org = f"{ORGS}/{example.seeded.org_id}"
    agent = example.seeded.agent_ids["triage-bot"]
    keys = f"{org}/agents/{agent}/keys"
    issued = await client.post(
        keys, json={"name": "ci", "expires_in_seconds": 3600}, headers=example.owner
    )
    assert issued.status_code == 201, issued.text
    key = issued.json()
    assert key["expires_at"] is not None
    assert (await client.post(EXECUTE, json=SEARCH, headers=_bearer(key["api_key"]))).is_success

    # Listed by id (its public prefix) and metadata, never the secret.
    listing = await client.get(keys, headers=example.owner)
    assert listing.status_code == 200, listing.text
    assert key["api_key"] not in listing.text
    listed = {k["key_id"]: k for k in listing.json()}
    assert listed[key["key_id"]]["status"] == "active"
    assert listed[key["key_id"]]["name"] == "ci"
    assert set(listed[key["key_id"]]) == {
        "key_id", "agent_id", "name", "status", "created_at", "created_by", "expires_at",
        "last_used_at", "revoked_at", "replaced_by",
    }  # fmt: skip

    # Last use: written in a batch, at most once a minute per key and process.
    assert await runtime.auth.flush_last_use() >= 1
    with psycopg.connect(test_db.admin_url) as conn:
        first = conn.execute(
            "SELECT last_used_at FROM arx.api_keys WHERE id = %s", (key["key_id"],)
        ).fetchone()
    assert first is not None
    assert first[0] is not None
    assert (await client.post(EXECUTE, json=SEARCH, headers=_bearer(key["api_key"]))).is_success
    assert await runtime.auth.flush_last_use() == 0, "a second use within the minute writes nothing"

    # Rotation: both keys work during the overlap; the old one then stops.
    rotated = await client.post(
        f"{keys}/{key['key_id']}/rotate", json={"overlap_seconds": 3600}, headers=example.owner
    )
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()["new"]
    for k in (key["api_key"], new["api_key"]):
        assert (await client.post(EXECUTE, json=SEARCH, headers=_bearer(k))).is_success
    twice = await client.post(f"{keys}/{key['key_id']}/rotate", headers=example.owner)
    _problem(twice, 409, "conflict")
    # The overlap ends (as the clock would move, here by the superuser).
    with psycopg.connect(test_db.admin_url) as conn:
        conn.execute(
            "UPDATE arx.api_keys SET expires_at = now() - interval '1 second' WHERE id = %s",
            (key["key_id"],),
        )
    _problem(
        await client.post(EXECUTE, json=SEARCH, headers=_bearer(key["api_key"])),
        401,
        "invalid_api_key",
    )
    assert (await client.post(EXECUTE, json=SEARCH, headers=_bearer(new["api_key"]))).is_success

    # Revocation: at once (the NOTIFY empties the cache that just served the key).
    revoked = await client.post(f"{keys}/{new['key_id']}/revoke", headers=example.owner)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["status"] == "revoked"
    assert revoked.json()["revoked_at"] is not None
    _problem(
        await client.post(EXECUTE, json=SEARCH, headers=_bearer(new["api_key"])),
        401,
        "invalid_api_key",
    )
    statuses = {
        k["key_id"]: k["status"] for k in (await client.get(keys, headers=example.owner)).json()
    }
    assert statuses[key["key_id"]] == "expired"
    assert statuses[new["key_id"]] == "revoked"
    actions = [e[1] for e in _events(test_db, "api_key.")]
    assert actions.count("api_key.rotated") == 1
    assert actions[-1] == "api_key.revoked"
    # A key of another agent cannot be managed through this agent's path.
    other = example.seeded.agent_ids["responder-bot"]
    _problem(
        await client.post(
            f"{org}/agents/{other}/keys/{key['key_id']}/revoke", headers=example.owner
        ),
        404,
        "not_found",
    )


async def test_a_key_expires_on_time_even_while_remembered(
    client: httpx.AsyncClient, example: Example, test_db: Database
) -> None:
    org = f"{ORGS}/{example.seeded.org_id}"
    agent = example.seeded.agent_ids["triage-bot"]
    key = (
        await client.post(
            f"{org}/agents/{agent}/keys", json={"expires_in_seconds": 60}, headers=example.owner
        )
    ).json()
    # Bring the expiry to 1.5 s from now before the key is first used.
    with psycopg.connect(test_db.admin_url) as conn:
        conn.execute(
            "UPDATE arx.api_keys SET expires_at = now() + interval '1.5 seconds' WHERE id = %s",
            (key["key_id"],),
        )
    assert (await client.post(EXECUTE, json=SEARCH, headers=_bearer(key["api_key"]))).is_success
    await anyio.sleep(1.6)
    # Still remembered (the cache lasts 5 s and nothing changed), yet refused:
    # the expiry is checked against the clock on every request.
    _problem(
        await client.post(EXECUTE, json=SEARCH, headers=_bearer(key["api_key"])),
        401,
        "invalid_api_key",
    )


# --- kill switches --------------------------------------------------------------------


def _decisions(test_db: Database) -> int:
    with psycopg.connect(test_db.admin_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM arx.audit_events WHERE kind = 'decision'"
        ).fetchone()
    assert row is not None
    return int(row[0])


def _refusals(test_db: Database) -> list[tuple[Any, ...]]:
    with psycopg.connect(test_db.admin_url) as conn:
        return conn.execute(
            "SELECT agent_id, action, actor, details FROM arx.audit_events"
            " WHERE kind = 'refusal' ORDER BY seq"
        ).fetchall()


async def test_agent_kill_switch_stops_one_agent_before_policy(
    client: httpx.AsyncClient, example: Example, falcon: FalconState, test_db: Database
) -> None:
    org = f"{ORGS}/{example.seeded.org_id}"
    triage = example.seeded.agent_ids["triage-bot"]
    assert (await client.post(EXECUTE, json=SEARCH, headers=example.auth("triage-bot"))).is_success
    decisions, sent = _decisions(test_db), len(falcon.requests)

    switched = await client.put(
        f"{org}/agents/{triage}/kill-switch",
        json={"disabled": True, "reason": "looping on containment"},
        headers=example.owner,
    )
    assert switched.status_code == 200, switched.text
    assert switched.json()["disabled"] is True
    assert switched.json()["disabled_reason"] == "looping on containment"
    for _ in range(3):
        body = _problem(
            await client.post(EXECUTE, json=SEARCH, headers=example.auth("triage-bot")),
            403,
            "agent_disabled",
        )
        assert "this agent" in body["detail"]
    # Before any policy call: no decision, nothing sent; one refusal recorded
    # for the three (rate-limited per agent and reason).
    assert _decisions(test_db) == decisions
    assert len(falcon.requests) == sent
    (refusal,) = _refusals(test_db)
    assert (refusal[0], refusal[1]) == (triage, "agent_disabled")
    assert refusal[2].startswith(f"agent:{triage}")
    # The other agent is unaffected.
    assert (
        await client.post(EXECUTE, json=SEARCH, headers=example.auth("responder-bot"))
    ).is_success

    listing = {
        a["name"]: a for a in (await client.get(f"{org}/agents", headers=example.owner)).json()
    }
    assert listing["triage-bot"]["disabled"] is True
    assert listing["responder-bot"]["disabled"] is False

    back = await client.put(
        f"{org}/agents/{triage}/kill-switch", json={"disabled": False}, headers=example.owner
    )
    assert back.json()["disabled"] is False
    assert (await client.post(EXECUTE, json=SEARCH, headers=example.auth("triage-bot"))).is_success
    assert [e[1] for e in _events(test_db, "agent.")][-2:] == ["agent.disabled", "agent.enabled"]


async def test_org_kill_switch_stops_every_agent(
    client: httpx.AsyncClient, example: Example, test_db: Database
) -> None:
    org = f"{ORGS}/{example.seeded.org_id}"
    for agent in ("triage-bot", "responder-bot"):
        assert (await client.post(EXECUTE, json=SEARCH, headers=example.auth(agent))).is_success
    decisions = _decisions(test_db)
    engaged = await client.put(
        f"{org}/kill-switch",
        json={"disabled": True, "reason": "incident 42"},
        headers=example.owner,
    )
    assert engaged.status_code == 200, engaged.text
    assert engaged.json()["agents_disabled"] is True
    for agent in ("triage-bot", "responder-bot"):
        body = _problem(
            await client.post(EXECUTE, json=SEARCH, headers=example.auth(agent)),
            403,
            "agent_disabled",
        )
        assert "every agent of this org" in body["detail"]
    assert _decisions(test_db) == decisions
    released = await client.put(
        f"{org}/kill-switch", json={"disabled": False}, headers=example.owner
    )
    assert released.json()["agents_disabled"] is False
    for agent in ("triage-bot", "responder-bot"):
        assert (await client.post(EXECUTE, json=SEARCH, headers=example.auth(agent))).is_success
    assert [e[1] for e in _events(test_db, "org.agents_")] == [
        "org.agents_disabled",
        "org.agents_enabled",
    ]


# --- allowlists -----------------------------------------------------------------------


@asynccontextmanager
async def _client_behind(
    runtime: Runtime, trusted: list[str], peer: str
) -> AsyncIterator[httpx.AsyncClient]:
    """The app with these trusted proxies, called from ``peer``."""
    rt = dataclasses.replace(runtime, trusted_proxies=parse_networks(trusted))
    app = create_app(rt.settings, runtime=rt)
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://arx.test") as c:
        yield c


async def test_agent_allowlist_with_trusted_proxies(
    client: httpx.AsyncClient, example: Example, runtime: Runtime, test_db: Database
) -> None:
    org = f"{ORGS}/{example.seeded.org_id}"
    set_list = await client.put(
        f"{org}/allowlists",
        json={"agent": ["10.20.0.0/16", "2001:db8::/32"]},
        headers=example.owner,
    )
    assert set_list.status_code == 200, set_list.text
    assert set_list.json()["agent_allowlist"] == ["10.20.0.0/16", "2001:db8::/32"]
    assert set_list.json()["admin_allowlist"] is None
    triage = example.auth("triage-bot")

    # The in-process client comes from 127.0.0.1: outside the list.
    body = _problem(
        await client.post(EXECUTE, json=SEARCH, headers=triage), 403, "address_not_allowed"
    )
    assert "127.0.0.1" in body["detail"]
    # Forwarded-For from a peer that is not a trusted proxy changes nothing.
    spoofed = await client.post(
        EXECUTE, json=SEARCH, headers={**triage, "x-forwarded-for": "10.20.1.1"}
    )
    _problem(spoofed, 403, "address_not_allowed")

    async with _client_behind(runtime, ["192.0.2.10/32"], "192.0.2.10") as proxied:
        inside = await proxied.post(
            EXECUTE, json=SEARCH, headers={**triage, "x-forwarded-for": "10.20.1.1"}
        )
        assert inside.status_code == 200, inside.text
        # The client's own claim left of the proxy's is not believed over the proxy's.
        forged = await proxied.post(
            EXECUTE, json=SEARCH, headers={**triage, "x-forwarded-for": "10.20.1.1, 203.0.113.9"}
        )
        _problem(forged, 403, "address_not_allowed")
    async with _client_behind(runtime, [], "10.20.3.4") as direct:
        assert (await direct.post(EXECUTE, json=SEARCH, headers=triage)).status_code == 200

    refusals = [r for r in _refusals(test_db) if r[1] == "address_not_allowed"]
    assert refusals, "a refused address leaves a trace"
    cleared = await client.put(f"{org}/allowlists", json={"agent": None}, headers=example.owner)
    assert cleared.json()["agent_allowlist"] is None
    assert (await client.post(EXECUTE, json=SEARCH, headers=triage)).status_code == 200


async def test_admin_allowlist_refuses_outside_addresses_after_membership(
    client: httpx.AsyncClient, example: Example, runtime: Runtime
) -> None:
    org = f"{ORGS}/{example.seeded.org_id}"
    bad = await client.put(
        f"{org}/allowlists", json={"admin": ["not-a-network"]}, headers=example.owner
    )
    _problem(bad, 422, "invalid_field")
    empty = await client.put(f"{org}/allowlists", json={"admin": []}, headers=example.owner)
    _problem(empty, 422, "invalid_field")
    async with _client_behind(runtime, [], "198.51.100.7") as office:
        ok = await office.put(
            f"{org}/allowlists", json={"admin": ["198.51.100.0/24"]}, headers=example.owner
        )
        assert ok.status_code == 200, ok.text
        assert (await office.get(org, headers=example.owner)).status_code == 200
    # From elsewhere: refused, even for the owner.
    _problem(await client.get(org, headers=example.owner), 403, "address_not_allowed")
    _problem(await client.get(f"{org}/agents", headers=example.owner), 403, "address_not_allowed")
    # Agents are not bound by the admin list.
    assert (await client.post(EXECUTE, json=SEARCH, headers=example.auth("triage-bot"))).is_success


# --- what a review found: roles and lifetimes that must not grow --------------------


async def _member_id(client: httpx.AsyncClient, example: Example, email: str) -> str:
    members = (
        await client.get(f"{ORGS}/{example.seeded.org_id}/members", headers=example.owner)
    ).json()
    return str(next(m["user_id"] for m in members if m["email"] == email))


async def test_an_admin_cannot_bring_a_deactivated_owner_back(
    client: httpx.AsyncClient, example: Example
) -> None:
    org = f"{ORGS}/{example.seeded.org_id}"
    added = await client.post(
        f"{org}/members",
        json={"email": "olaf@example.test", "roles": ["owner"]},
        headers=example.owner,
    )
    assert added.status_code == 201, added.text
    olaf = added.json()["user_id"]
    off = await client.patch(f"{org}/members/{olaf}", json={"active": False}, headers=example.owner)
    assert off.status_code == 200, off.text
    assert off.json()["effective_roles"] == []
    admin = _bearer((await _token(client, example, ["admin"]))["token"])
    back = await client.patch(f"{org}/members/{olaf}", json={"active": True}, headers=admin)
    _problem(back, 403, "role_required")
    again = await client.patch(
        f"{org}/members/{olaf}", json={"active": True}, headers=example.owner
    )
    assert again.json()["effective_roles"] == ["owner"]


async def test_an_admin_cannot_revoke_owner_or_provisioning_tokens(
    client: httpx.AsyncClient, example: Example
) -> None:
    org = f"{ORGS}/{example.seeded.org_id}"
    admin = _bearer((await _token(client, example, ["admin"]))["token"])
    scim = await _token(client, example, ["scim"])
    owner_id = example.seeded.owner_token.split("_")[1]
    for token_id in (owner_id, scim["token_id"]):
        denied = await client.post(f"{org}/admin-tokens/{token_id}/revoke", headers=admin)
        _problem(denied, 403, "role_required")
    assert (await client.get(org, headers=example.owner)).status_code == 200


async def test_a_token_cannot_outlive_itself(client: httpx.AsyncClient, example: Example) -> None:
    org = f"{ORGS}/{example.seeded.org_id}"
    made = await client.post(
        f"{org}/admin-tokens",
        json={"name": "short", "roles": ["admin"], "expires_in_seconds": 600},
        headers=example.owner,
    )
    short = made.json()
    assert short["expires_at"] is not None
    as_short = _bearer(short["token"])
    # Neither a token it makes, nor its own successor, lives past its expiry.
    child = await client.post(
        f"{org}/admin-tokens", json={"name": "child", "roles": ["auditor"]}, headers=as_short
    )
    assert child.status_code == 201, child.text
    assert child.json()["expires_at"] is not None
    assert child.json()["expires_at"] <= short["expires_at"]
    rotated = await client.post(f"{org}/admin-tokens/{short['token_id']}/rotate", headers=as_short)
    assert rotated.status_code == 201, rotated.text
    assert rotated.json()["new"]["expires_at"] is not None
    assert rotated.json()["new"]["expires_at"] <= short["expires_at"]
    # The same for an agent key rotated: no longer-lived successor.
    agent = example.seeded.agent_ids["triage-bot"]
    key = (
        await client.post(
            f"{org}/agents/{agent}/keys", json={"expires_in_seconds": 600}, headers=example.owner
        )
    ).json()
    successor = await client.post(
        f"{org}/agents/{agent}/keys/{key['key_id']}/rotate", headers=example.owner
    )
    assert successor.json()["new"]["expires_at"] <= key["expires_at"]


async def test_tokens_hold_no_more_than_the_person_who_made_them(
    client: httpx.AsyncClient, example: Example, runtime: Runtime
) -> None:
    org_id = example.seeded.org_id
    org = f"{ORGS}/{org_id}"
    added = await client.post(
        f"{org}/members",
        json={"email": "ada@example.test", "roles": ["admin"]},
        headers=example.owner,
    )
    ada = added.json()["user_id"]
    person = Principal(
        kind=PrincipalKind.USER, id=ada, name="ada@example.test", person=uuid.UUID(ada)
    )
    token = await create_token(
        runtime.control_pool,
        Access(principal=person, org_id=org_id, roles=frozenset({"admin"})),
        name="ada's automation",
        roles=["admin"],
        lifetime=None,
    )
    as_ada = _bearer(token.token)
    agent = example.seeded.agent_ids["triage-bot"]
    assert (await client.post(f"{org}/agents/{agent}/keys", headers=as_ada)).status_code == 201
    # Ada becomes an auditor: her token can read, no longer manage.
    await client.patch(f"{org}/members/{ada}", json={"roles": ["auditor"]}, headers=example.owner)
    _problem(await client.post(f"{org}/agents/{agent}/keys", headers=as_ada), 403, "role_required")
    # Ada leaves: her token holds nothing.
    await client.patch(f"{org}/members/{ada}", json={"active": False}, headers=example.owner)
    _problem(await client.get(f"{org}/agents", headers=as_ada), 403, "role_required")


async def test_two_owners_demoted_at_once_leave_one(
    client: httpx.AsyncClient, example: Example, test_db: Database
) -> None:
    org = f"{ORGS}/{example.seeded.org_id}"
    second = await client.post(
        f"{org}/members",
        json={"email": "otto@example.test", "roles": ["owner"]},
        headers=example.owner,
    )
    assert second.status_code == 201, second.text
    owners = [
        m["user_id"] for m in (await client.get(f"{org}/members", headers=example.owner)).json()
    ]
    answers = await asyncio.gather(
        *(
            client.patch(f"{org}/members/{u}", json={"roles": ["admin"]}, headers=example.owner)
            for u in owners
        )
    )
    assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
    with psycopg.connect(test_db.admin_url) as conn:
        left = conn.execute(
            "SELECT count(*) FROM arx.memberships WHERE 'owner' = ANY (roles) AND active"
        ).fetchone()
    assert left == (1,)


async def test_scim_cannot_remove_the_last_owner(
    client: httpx.AsyncClient, example: Example
) -> None:
    org_id = example.seeded.org_id
    scim = _bearer((await _token(client, example, ["scim"]))["token"])
    owner = await _member_id(client, example, example.seeded.owner_email)
    user = f"/scim/v2/{org_id}/Users/{owner}"
    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": False}],
    }
    deactivated = await client.patch(user, json=patch, headers=scim)
    assert deactivated.status_code == 409, deactivated.text
    deleted = await client.delete(user, headers=scim)
    assert deleted.status_code == 409, deleted.text
    still = await client.get(f"{ORGS}/{org_id}/members", headers=example.owner)
    assert [m["effective_roles"] for m in still.json()] == [["owner"]]


async def test_scim_email_change_forgets_idp_links_and_is_refused_across_orgs(
    client: httpx.AsyncClient, example: Example, runtime: Runtime, test_db: Database
) -> None:
    org_id = example.seeded.org_id
    scim = _bearer((await _token(client, example, ["scim"]))["token"])
    users = f"/scim/v2/{org_id}/Users"
    made = await client.post(
        users,
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "sam@example.test",
            "emails": [{"value": "sam@example.test", "primary": True}],
            "active": True,
        },
        headers=scim,
    )
    assert made.status_code == 201, made.text
    sam = made.json()["id"]
    with psycopg.connect(test_db.admin_url) as conn:
        conn.execute(
            "INSERT INTO arx.user_identities (issuer, subject, user_id)"
            " VALUES ('https://idp.test', 'sub-sam', %s)",
            (sam,),
        )

    def patch(email: str) -> dict[str, Any]:
        return {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [
                {"op": "replace", "path": "emails", "value": [{"value": email, "primary": True}]}
            ],
        }

    moved = await client.patch(f"{users}/{sam}", json=patch("sam@new.test"), headers=scim)
    assert moved.status_code == 200, moved.text
    with psycopg.connect(test_db.admin_url) as conn:
        links = conn.execute(
            "SELECT count(*) FROM arx.user_identities WHERE user_id = %s", (sam,)
        ).fetchone()
    assert links == (0,), "a new address must be vouched for again before it signs anyone in"

    # Once Sam also belongs to another org, this org's IdP cannot move his sign-in.
    other = await make_org(runtime, "elsewhere")
    await add_member(
        runtime.control_pool, other, email="sam@new.test", display_name="", roles=["auditor"]
    )
    refused = await client.patch(f"{users}/{sam}", json=patch("sam@evil.test"), headers=scim)
    assert refused.status_code == 400, refused.text
    assert refused.json()["scimType"] == "mutability"
    # What one org calls someone is its own: the other org's name for Sam is untouched.
    renamed = await client.patch(
        f"{users}/{sam}",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "displayName", "value": "CEO (approve all)"}],
        },
        headers=scim,
    )
    assert renamed.status_code == 200, renamed.text
    with psycopg.connect(test_db.admin_url) as conn:
        names = dict(
            conn.execute(
                "SELECT org_id, display_name FROM arx.memberships WHERE user_id = %s", (sam,)
            ).fetchall()
        )
    assert names[other.org_id] == ""
    assert names[org_id] == "CEO (approve all)"
