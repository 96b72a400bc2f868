"""The cross-tenant probe: every credential of org A, on every route of the
OpenAPI document that names a resource by id, aimed at org B's real
resources, is refused exactly as for ids that exist nowhere.

The routes come from the live OpenAPI document, so a new route is probed
without anyone listing it; a route whose path parameter this module cannot
fill fails the test until its id is added to ``_b_ids``.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest

from arx.admin.agents import create_key
from arx.admin.orgs import found_org
from arx.admin.people import add_member, create_token
from arx.admin.service import create_agent
from arx.admin.types import Bootstrap
from arx.identity.principal import Access, Principal, PrincipalKind
from arx.identity.types import IntentManifest
from arx.runtime import Runtime
from tests.fixtures.arx import Example
from tests.fixtures.database import Database

pytestmark = pytest.mark.anyio

ACTOR = Principal(kind=PrincipalKind.BOOTSTRAP, id="bootstrap", name="probe")
PARAM = re.compile(r"\{(\w+)\}")
METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class OrgB:
    ids: dict[str, str]  # path parameter name -> B's real id
    owner_token: str
    scim_token: str
    agent_key: str


async def _org_b(runtime: Runtime, test_db: Database) -> OrgB:
    pool = runtime.control_pool
    founded = await found_org(
        pool,
        Bootstrap(org_slug="org-b", org_name="Org B", owner_email="owner@b.test"),
        actor=ACTOR,
    )
    org = founded.org.id
    access = Access(principal=ACTOR, org_id=org, roles=frozenset({"owner"}))
    agent = await create_agent(pool, org, name="b-bot", intent=IntentManifest(), actor=ACTOR.actor)
    key = await create_key(pool, access, agent.id)
    token = await create_token(pool, access, name="b-ci", roles=["auditor"], lifetime=None)
    member = await add_member(
        pool, access, email="rita@b.test", display_name="", roles=["reviewer"]
    )
    group, decision, approval = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(test_db.admin_url) as conn:
        conn.execute(
            "INSERT INTO arx.scim_groups (id, org_id, display_name)"
            " VALUES (%s, %s, 'arx-reviewer')",
            (group, org),
        )
        # A host B's admin let its Falcon credentials go to.
        conn.execute(
            "INSERT INTO arx.connector_hosts (org_id, connector, host, added_by)"
            " VALUES (%s, 'crowdstrike', 'falcon.b-org.example', 'b-admin')",
            (org,),
        )
        # B has no bundle, so it cannot escalate by itself: plant a pending approval.
        conn.execute(
            "INSERT INTO arx.audit_events (id, org_id, kind, agent_id, connector, operation,"
            " verdict, risk_score) VALUES (%s, %s, 'decision', %s, 'crowdstrike',"
            " 'hosts:contain', 'ESCALATE', 70)",
            (decision, org, agent.id),
        )
        conn.execute(
            "INSERT INTO arx.approval_requests (id, org_id, event_id, agent_id, connector,"
            " operation, params, request_hash, expires_at) VALUES (%s, %s, %s, %s,"
            " 'crowdstrike', 'hosts:contain', '{}', %s, now() + interval '1 hour')",
            (approval, org, decision, agent.id, bytes(32)),
        )
    scim = await create_token(pool, access, name="b-scim", roles=["scim"], lifetime=None)
    return OrgB(
        owner_token=founded.owner_token.token,
        scim_token=scim.token,
        agent_key=key.api_key,
        ids={
            "group_id": str(group),
            "org_id": str(org),
            "agent_id": str(agent.id),
            "key_id": key.key_id,
            "token_id": token.token_id,
            "user_id": str(member.user_id),
            "connector": "crowdstrike",
            "host": "falcon.b-org.example",
            # SCIM's users are people: B's member.
            "id": str(member.user_id),
            "approval_id": str(approval),
            "event_id": str(decision),
            # SCIM discovery resources exist in every org, B's included.
            "type_id": "User",
            "schema_id": "urn:ietf:params:scim:schemas:core:2.0:User",
        },
    )


def _nowhere(name: str, real: str) -> str:
    """An id of the same shape as ``real`` that exists nowhere."""
    if name == "connector":
        return real
    try:
        uuid.UUID(real)
    except ValueError:
        return "f" * len(real)
    return str(uuid.uuid4())


def _body(path: str) -> dict[str, Any]:
    """A well-formed body: an agent's call for the agent routes, else an empty object
    (the control plane refuses a stranger before it reads a body)."""
    if path.startswith("/v1/sdk/"):
        return {"connector": "crowdstrike", "operation": "hosts:search", "params": {}}
    return {}


def _routes(doc: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted(
        (path, method)
        for path, item in doc["paths"].items()
        for method in item
        if method in METHODS and PARAM.search(path)
    )


def _fill(path: str, ids: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in ids, f"{path}: no id for path parameter {name!r}; add it to _org_b"
        return ids[name]

    return PARAM.sub(one, path)


def _answer(resp: httpx.Response, ids: dict[str, str]) -> tuple[Any, ...]:
    """What a caller can tell apart: status and body, with the ids the caller
    sent itself (and the request id) masked."""
    text = resp.text
    for value in ids.values():
        text = text.replace(value, "<id>")
    try:
        body = json.loads(text)
    except ValueError:
        return (resp.status_code, text)
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k not in {"request_id", "instance"}}
    return (resp.status_code, repr(body))


def _b_state(test_db: Database, org: str) -> tuple[Any, ...]:
    with psycopg.connect(test_db.admin_url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM arx.audit_events WHERE org_id = %(o)s),"
            " (SELECT count(*) FROM arx.api_keys WHERE org_id = %(o)s AND revoked_at IS NULL),"
            " (SELECT count(*) FROM arx.agents WHERE org_id = %(o)s AND disabled_at IS NULL),"
            " (SELECT count(*) FROM arx.memberships WHERE org_id = %(o)s AND active),"
            " (SELECT agents_disabled_at FROM arx.orgs WHERE id = %(o)s),"
            " (SELECT count(*) FROM arx.connector_hosts WHERE org_id = %(o)s),"
            " (SELECT count(*) FROM arx.credentials WHERE org_id = %(o)s)",
            {"o": org},
        ).fetchone()
    assert row is not None
    return tuple(row)


async def test_org_a_credentials_learn_nothing_about_org_b(
    client: httpx.AsyncClient, example: Example, runtime: Runtime, test_db: Database
) -> None:
    b = await _org_b(runtime, test_db)
    a_access = Access(principal=ACTOR, org_id=example.seeded.org_id, roles=frozenset({"owner"}))
    scim = await create_token(
        runtime.control_pool, a_access, name="a-scim", roles=["scim"], lifetime=None
    )
    credentials = {
        "org A owner token": example.seeded.owner_token,
        "org A provisioning token": scim.token,
        "org A agent key": example.seeded.api_keys["triage-bot"],
    }
    doc = (await client.get("/schema/openapi.json")).json()
    routes = _routes(doc)
    assert any(p.startswith("/v1/admin/orgs/") for p, _ in routes)
    before = _b_state(test_db, b.ids["org_id"])

    probed = 0
    for path, method in routes:
        nowhere_ids = {k: _nowhere(k, v) for k, v in b.ids.items()}
        real = _fill(path, b.ids)
        fake = _fill(path, nowhere_ids)
        for who, secret in credentials.items():
            headers = {"authorization": f"Bearer {secret}"}
            # A body the route could accept: refusal must come before the body matters.
            body = _body(path) if method in {"post", "put", "patch"} else None
            at_b = await client.request(method, real, json=body, headers=headers)
            nowhere = await client.request(method, fake, json=body, headers=headers)
            where = f"{who}: {method.upper()} {path}"
            assert at_b.status_code in {401, 404}, (where, at_b.status_code, at_b.text)
            assert _answer(at_b, b.ids) == _answer(nowhere, nowhere_ids), where
            probed += 1
    assert probed == len(routes) * len(credentials)
    # The control: B's own credentials reach each of these resources, so the
    # refusals above are about who asked, not about ids that do not exist.
    own = {
        "/v1/admin/orgs/{org_id}/agents/{agent_id}": b.owner_token,
        "/v1/admin/orgs/{org_id}/agents/{agent_id}/keys": b.owner_token,
        "/v1/sdk/approvals/{approval_id}": b.agent_key,
        "/scim/v2/{org_id}/Users/{user_id}": b.scim_token,
        "/scim/v2/{org_id}/Groups/{group_id}": b.scim_token,
    }
    for path, secret in own.items():
        assert (path, "get") in routes, path
        resp = await client.get(_fill(path, b.ids), headers={"authorization": f"Bearer {secret}"})
        assert resp.status_code == 200, (path, resp.text)
    # Nothing of B changed, whatever was tried.
    assert _b_state(test_db, b.ids["org_id"]) == before
