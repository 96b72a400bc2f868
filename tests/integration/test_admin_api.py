"""The admin API (``/v1/admin``), the OpenAPI document and ``/health``.

The bootstrap token founds the first org with its owner and is closed from
then on. An org provisioned entirely through the admin API with the owner's
token (agent, key, credential) must work for ``/v1/sdk/execute``, and every
admin action must appear in the org's audit trail, in order, naming the
token that made it.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from typing import Any

import httpx
import psycopg
import pytest
from litestar.routes import HTTPRoute

from arx.api.app import create_app
from arx.api.guards import ROLES
from arx.config import Settings
from arx.connectors.catalog import connectors
from arx.sandbox.falcon import FalconState
from tests.fixtures.arx import BOOTSTRAP_TOKEN, FALCON_CLIENT_ID, FALCON_CLIENT_SECRET, FALCON_URL
from tests.fixtures.database import Database

pytestmark = pytest.mark.anyio

EXECUTE = "/v1/sdk/execute"
ADMIN = "/v1/admin"
ORGS = "/v1/admin/orgs"
BOOTSTRAP = {"authorization": f"Bearer {BOOTSTRAP_TOKEN}"}
FOUNDING = {
    "org_slug": "example",
    "org_name": "Example",
    "owner_email": "owner@example.test",
    "owner_display_name": "Olga Owner",
}
TRIAGE_INTENT = {
    "purpose": "Look up hosts named in alerts.",
    "scope": {"crowdstrike": ["hosts:search", "hosts:get"]},
}


def _assert_problem(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = resp.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"].endswith(code)
    assert body["request_id"] == resp.headers["x-request-id"]
    return body


def _admin_routes(org: uuid.UUID, agent: uuid.UUID) -> list[tuple[str, str, Any]]:
    return [
        ("GET", f"{ADMIN}/me", None),
        ("POST", ORGS, {"slug": "intruder", "name": "Intruder"}),
        ("POST", f"{ORGS}/{org}/agents", {"name": "intruder-bot"}),
        ("POST", f"{ORGS}/{org}/agents/{agent}/keys", None),
        (
            "PUT",
            f"{ORGS}/{org}/credentials/crowdstrike",
            {"secret": {"client_id": "x", "client_secret": "y"}},
        ),
        ("GET", f"{ORGS}/{org}/audit", None),
    ]


async def _bootstrap(client: httpx.AsyncClient) -> dict[str, Any]:
    resp = await client.post(f"{ADMIN}/bootstrap", json=FOUNDING, headers=BOOTSTRAP)
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def test_admin_api_requires_a_valid_credential(
    client: httpx.AsyncClient, test_db: Database
) -> None:
    bad_headers: list[dict[str, str]] = [
        {},
        {"authorization": "Bearer wrong-token"},
        {"authorization": f"Basic {BOOTSTRAP_TOKEN}"},
        {"authorization": BOOTSTRAP_TOKEN},
        {"authorization": "Bearer "},
        {"authorization": f"Bearer {BOOTSTRAP_TOKEN}x"},
        {"authorization": f"Bearer arxadm_{'0' * 16}_{'x' * 43}"},  # no such admin token
        {"authorization": f"Bearer arx_{'0' * 16}_{'x' * 43}"},  # an agent key is not admin
        {"authorization": "Bearer a.b.c"},  # a JWT, and no IdP configured
    ]
    for method, url, body in _admin_routes(uuid.uuid4(), uuid.uuid4()):
        for headers in bad_headers:
            resp = await client.request(method, url, json=body, headers=headers)
            problem = _assert_problem(resp, 401, "invalid_admin_token")
            assert resp.headers["www-authenticate"].startswith("Bearer")
            assert BOOTSTRAP_TOKEN not in resp.text
            assert "secret" not in problem["detail"]
    with psycopg.connect(test_db.admin_url) as conn:
        assert conn.execute("SELECT count(*) FROM arx.orgs").fetchone() == (0,)


async def test_bootstrap_founds_one_org_and_owner_then_closes(
    client: httpx.AsyncClient, test_db: Database
) -> None:
    # Before any owner exists, the bootstrap token still does nothing but bootstrap.
    for method, url, body in _admin_routes(uuid.uuid4(), uuid.uuid4()):
        resp = await client.request(method, url, json=body, headers=BOOTSTRAP)
        _assert_problem(resp, 403, "bootstrap_closed")

    founded = await _bootstrap(client)
    assert founded["org"]["slug"] == "example"
    assert founded["owner"]["email"] == "owner@example.test"
    assert founded["owner"]["roles"] == ["owner"]
    token = founded["owner_token"]
    assert token["token"].startswith(f"arxadm_{token['token_id']}_")
    assert token["roles"] == ["owner"]

    again = await client.post(
        f"{ADMIN}/bootstrap", json={**FOUNDING, "org_slug": "second"}, headers=BOOTSTRAP
    )
    _assert_problem(again, 403, "bootstrap_closed")
    # The owner token is not a bootstrap token either.
    owner = {"authorization": f"Bearer {token['token']}"}
    not_bootstrap = await client.post(
        f"{ADMIN}/bootstrap", json={**FOUNDING, "org_slug": "third"}, headers=owner
    )
    _assert_problem(not_bootstrap, 403, "bootstrap_closed")
    me = await client.get(f"{ADMIN}/me", headers=owner)
    assert me.status_code == 200, me.text
    assert me.json() == {
        "kind": "token",
        "id": token["token_id"],
        "name": "owner token",
        "orgs": [
            {
                "org_id": founded["org"]["id"],
                "slug": "example",
                "name": "Example",
                "roles": ["owner"],
            }
        ],
    }
    # An admin token belongs to its org: it cannot found another.
    other = await client.post(ORGS, json={"slug": "other", "name": "Other"}, headers=owner)
    _assert_problem(other, 403, "role_required")
    with psycopg.connect(test_db.admin_url) as conn:
        assert conn.execute("SELECT slug FROM arx.orgs").fetchall() == [("example",)]
        # Only the hash of the token's secret is stored.
        stored = conn.execute(
            "SELECT secret_hash FROM arx.admin_tokens WHERE id = %s", (token["token_id"],)
        ).fetchone()
    secret = token["token"].split("_", 2)[2]
    assert stored == (hashlib.sha256(secret.encode()).digest(),)


async def test_bootstrap_body_is_checked_and_nothing_half_written(
    client: httpx.AsyncClient, test_db: Database
) -> None:
    url = f"{ADMIN}/bootstrap"
    for payload, field in (
        ({**FOUNDING, "org_slug": "Not A Slug!"}, "org_slug"),
        ({**FOUNDING, "org_slug": "-leading-dash"}, "org_slug"),
        ({**FOUNDING, "org_slug": "x" * 64}, "org_slug"),
        # "$" in Python's re also matches before a trailing newline.
        ({**FOUNDING, "org_slug": "fine\n"}, "org_slug"),
        ({**FOUNDING, "org_name": ""}, "org_name"),
        ({**FOUNDING, "owner_email": "not-an-email"}, "owner_email"),
        ({**FOUNDING, "owner_password": "short"}, "owner_password"),
        ({**FOUNDING, "extra": 1}, "extra"),
    ):
        bad = await client.post(url, json=payload, headers=BOOTSTRAP)
        assert _assert_problem(bad, 422, "invalid_field")["field"] == field, payload
    as_json = {**BOOTSTRAP, "content-type": "application/json"}
    _assert_problem(await client.post(url, content=b"", headers=as_json), 400, "malformed_json")
    _assert_problem(
        await client.post(url, content=b"{not json", headers=as_json), 400, "malformed_json"
    )
    form = await client.post(url, data={"org_slug": "fine"}, headers=BOOTSTRAP)
    _assert_problem(form, 415, "unsupported_media_type")
    nul = b'{"org_slug": "nul", "org_name": "a\\u0000b", "owner_email": "o@x.test"}'
    _assert_problem(await client.post(url, content=nul, headers=as_json), 422, "invalid_field")
    with psycopg.connect(test_db.admin_url) as conn:
        assert conn.execute("SELECT count(*) FROM arx.orgs").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM arx.users").fetchone() == (0,)


async def test_provision_through_admin_api_then_execute_and_audit(
    client: httpx.AsyncClient, falcon: FalconState, test_db: Database
) -> None:
    founded = await _bootstrap(client)
    org = founded["org"]
    token = founded["owner_token"]
    owner = {"authorization": f"Bearer {token['token']}"}
    actor = f"token:{token['token_id']} (owner token)"

    # Agent, with its intent manifest.
    agents = f"{ORGS}/{org['id']}/agents"
    made = await client.post(
        agents, json={"name": "triage-bot", "intent": TRIAGE_INTENT}, headers=owner
    )
    assert made.status_code == 201, made.text
    agent = made.json()
    assert agent["org_id"] == org["id"]
    assert agent["name"] == "triage-bot"
    assert agent["intent"] == TRIAGE_INTENT
    assert agent["disabled"] is False
    again = await client.post(agents, json={"name": "triage-bot"}, headers=owner)
    _assert_problem(again, 409, "conflict")
    for name in ("no spaces allowed", "bot\n"):
        bad_name = await client.post(agents, json={"name": name}, headers=owner)
        assert _assert_problem(bad_name, 422, "invalid_field")["field"] == "name"
    bad_intent = await client.post(
        agents, json={"name": "x", "intent": {"scope": {"crowdstrike": "hosts:*"}}}, headers=owner
    )
    assert _assert_problem(bad_intent, 422, "invalid_field")["field"].startswith("intent.scope")

    # Key: shown once, in this response only.
    keys = f"{agents}/{agent['id']}/keys"
    issued = await client.post(keys, json={"name": "laptop"}, headers=owner)
    assert issued.status_code == 201, issued.text
    key = issued.json()
    assert key["agent_id"] == agent["id"]
    assert key["name"] == "laptop"
    assert key["api_key"].startswith(f"arx_{key['key_id']}_")
    no_agent = await client.post(f"{agents}/{uuid.uuid4()}/keys", headers=owner)
    _assert_problem(no_agent, 404, "not_found")

    # Credential.
    cred = await client.put(
        f"{ORGS}/{org['id']}/credentials/crowdstrike",
        json={
            "secret": {"client_id": FALCON_CLIENT_ID, "client_secret": FALCON_CLIENT_SECRET},
            "base_url": FALCON_URL,
        },
        headers=owner,
    )
    assert cred.status_code == 201, cred.text
    assert FALCON_CLIENT_SECRET not in cred.text

    # The key works, and the provisioned org's policy decides.
    resp = await client.post(
        EXECUTE,
        json={"connector": "crowdstrike", "operation": "hosts:search", "params": {}},
        headers={"authorization": f"Bearer {key['api_key']}"},
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["verdict"] == "PERMIT"
    assert len(falcon.calls("/devices/queries/devices/v1")) == 1

    # Only a hash of the key's secret is stored; the key itself nowhere.
    secret_part = key["api_key"].split("_", 2)[2]
    with psycopg.connect(test_db.admin_url) as conn:
        stored = conn.execute(
            "SELECT secret_hash FROM arx.api_keys WHERE id = %s", (key["key_id"],)
        ).fetchone()
        dump = conn.execute(
            "SELECT concat_ws(' ', (SELECT jsonb_agg(to_jsonb(e))::text FROM arx.audit_events e),"
            " (SELECT jsonb_agg(to_jsonb(k))::text FROM arx.api_keys k))"
        ).fetchone()
    assert stored == (hashlib.sha256(secret_part.encode()).digest(),)
    assert dump is not None
    assert secret_part not in dump[0]

    # The trail: admin events naming the real actor, then the decision and result.
    audit = await client.get(f"{ORGS}/{org['id']}/audit", headers=owner)
    assert audit.status_code == 200, audit.text
    events = audit.json()["events"][::-1]  # newest first
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs)
    assert [(e["kind"], e.get("action")) for e in events] == [
        ("admin", "org.created"),
        ("admin", "member.added"),
        ("admin", "admin_token.created"),
        ("admin", "agent.created"),
        ("admin", "api_key.created"),
        ("admin", "credential.stored"),
        ("decision", None),
        ("result", None),
    ]
    admin_events = [e for e in events if e["kind"] == "admin"]
    assert [e["actor"] for e in admin_events] == ["bootstrap"] * 3 + [actor] * 3
    assert admin_events[1]["details"]["email"] == "owner@example.test"
    assert admin_events[1]["details"]["roles"] == ["owner"]
    assert admin_events[3]["details"]["intent"] == TRIAGE_INTENT
    assert admin_events[4]["details"]["key_id"] == key["key_id"]
    assert admin_events[5]["details"]["version"] == 1
    decision, result = events[6:]
    assert decision["id"] == resp.json()["event_id"]
    assert decision["agent_id"] == agent["id"]
    assert result["decision_id"] == decision["id"]
    assert result["outcome"] == "success"
    for secret in (key["api_key"], secret_part, FALCON_CLIENT_SECRET, token["token"]):
        assert secret not in audit.text

    # Paging back with the cursor, newest first.
    first = (await client.get(f"{ORGS}/{org['id']}/audit?limit=3", headers=owner)).json()
    assert [e["seq"] for e in first["events"]] == seqs[:-4:-1]
    second = await client.get(
        f"{ORGS}/{org['id']}/audit",
        params={"limit": 3, "cursor": first["next_cursor"]},
        headers=owner,
    )
    assert [e["seq"] for e in second.json()["events"]] == seqs[-4:-7:-1]
    clamped = await client.get(f"{ORGS}/{org['id']}/audit?limit=0", headers=owner)
    assert [e["seq"] for e in clamped.json()["events"]] == seqs[-1:]
    bad_limit = await client.get(f"{ORGS}/{org['id']}/audit?limit=many", headers=owner)
    assert bad_limit.status_code == 400, bad_limit.text
    assert bad_limit.headers["content-type"].startswith("application/problem+json")


async def test_admin_routes_answer_404_for_an_unknown_org(
    client: httpx.AsyncClient, test_db: Database
) -> None:
    owner = {"authorization": f"Bearer {(await _bootstrap(client))['owner_token']['token']}"}
    missing = uuid.uuid4()
    for method, url, body in _admin_routes(missing, uuid.uuid4())[2:]:
        resp = await client.request(method, url, json=body, headers=owner)
        problem = _assert_problem(resp, 404, "not_found")
        assert "constraint" not in problem, "no schema internals in problems"
    with psycopg.connect(test_db.admin_url) as conn:
        assert conn.execute("SELECT count(*) FROM arx.credentials").fetchone() == (0,)


def _check_security(
    path: str, method: str, op: dict[str, Any], declared: dict[tuple[str, str], tuple[str, ...]]
) -> None:
    where = f"{method.upper()} {path}"
    if path.startswith("/v1/sdk/"):
        assert op["security"] == [{"AgentKey": []}], where
    elif path == "/v1/admin/bootstrap":
        assert op["security"] == [{"BootstrapToken": []}], where
    elif path.startswith(("/v1/admin/orgs/{org_id}", "/scim/v2/{org_id}")):
        # The roles the guard enforces are the roles the document lists.
        (requirement,) = op["security"]
        assert list(requirement) == ["AdminToken"], where
        assert requirement["AdminToken"] == list(declared[(path, method)]), where
        assert requirement["AdminToken"], f"{where} accepts no role"
        assert "Roles accepted" in op["description"], where
        assert {"401", "403", "404"} <= set(op["responses"]), where
    elif path.startswith(("/v1/admin/", "/scim/")):
        assert [list(r) for r in op["security"]] == [["AdminToken"]], where
    else:
        assert op["security"] == [], where


def _declared_roles() -> dict[tuple[str, str], tuple[str, ...]]:
    """(OpenAPI path, method) -> the roles its handler's guard enforces."""
    app = create_app(Settings(database_url="postgresql://unused"))
    roles: dict[tuple[str, str], tuple[str, ...]] = {}
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
        for handler in route.route_handlers:
            for method in handler.http_methods:
                roles[(path, method.lower())] = handler.opt.get(ROLES, ())
    return roles


async def test_openapi_documents_execute_and_health_is_ok(client: httpx.AsyncClient) -> None:
    resp = await client.get("/schema/openapi.json")
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    assert doc["openapi"].startswith("3.")
    paths = doc["paths"]
    execute = paths["/v1/sdk/execute"]["post"]

    # The body: one alternative per connector operation, from the operation tables.
    body = execute["requestBody"]
    assert body["required"] is True
    alternatives = body["content"]["application/json"]["schema"]["oneOf"]
    documented = {
        (a["properties"]["connector"]["const"], a["properties"]["operation"]["const"])
        for a in alternatives
    }
    assert documented == {(cid, op) for cid, cls in connectors().items() for op in cls.operations}
    for alternative in alternatives:
        assert alternative["additionalProperties"] is False
        assert {"connector", "operation"} <= set(alternative["required"])
    get = next(a for a in alternatives if a["title"] == "crowdstrike hosts:get")
    assert get["required"] == ["connector", "operation", "params"]
    assert get["properties"]["params"]["required"] == ["ids"]
    assert "$ref" not in json.dumps(body), "params schemas are inlined"

    # Every answer execute can give, errors as problem+json with the one Problem schema.
    assert set(execute["responses"]) == {
        "200", "202", "400", "401", "403", "404", "409", "413", "415", "422", "429", "500",
        "502", "503", "504",
    }  # fmt: skip
    responses = execute["responses"]
    assert responses["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ExecuteResponse"
    }
    assert responses["202"]["headers"]["Location"]["required"] is True
    assert responses["429"]["headers"]["Retry-After"]["required"] is True
    assert responses["503"]["headers"]["Retry-After"]["required"] is False
    assert "connector_rate_limited" in responses["429"]["description"]
    assert "outcome_unknown" in responses["504"]["description"]
    assert {"deadline_exceeded", "session_contention"} <= set(
        re.findall(r"`(\w+)`", responses["503"]["description"])
    )
    key = next(p for p in execute["parameters"] if p["name"] == "Idempotency-Key")
    assert key["in"] == "header"
    assert key["required"] is False

    problem = doc["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail", "code", "request_id"}
    assert {"field", "event_id", "verdict", "policy_id", "reasons", "upstream_status"} <= set(
        problem["properties"]
    )
    schemes = doc["components"]["securitySchemes"]
    assert schemes["AgentKey"]["scheme"] == schemes["AdminToken"]["scheme"] == "bearer"
    assert schemes["BootstrapToken"]["scheme"] == "bearer"

    operations = [
        (path, method, op)
        for path, item in paths.items()
        for method, op in item.items()
        if method in {"get", "post", "put", "delete", "patch"}
    ]
    declared = _declared_roles()
    for path, method, op in operations:
        where = f"{method.upper()} {path}"
        _check_security(path, method, op, declared)
        bodiless = ("/keys", "/revoke", "/rewrap")
        if method in {"post", "put", "patch"} and not path.endswith(bodiless):
            request_body = op["requestBody"]
            if "$ref" in request_body:
                request_body = doc["components"]["requestBodies"][
                    request_body["$ref"].split("/")[-1]
                ]
            if path.endswith(("/policy/bundles", "/policy/replay")):
                # A bundle archive, uploaded as it is.
                upload = request_body["content"]["application/gzip"]["schema"]
                assert upload["format"] == "binary", where
            else:
                assert request_body["content"]["application/json"]["schema"], where
        assert "500" in op["responses"], where
        for status, response in op["responses"].items():
            assert response["headers"]["X-Request-ID"]["required"] is True, (where, status)
            if status.startswith("2") or path == "/health":
                continue
            if path.startswith("/scim/"):
                # RFC 7644's error bodies; a 404 may also be Litestar's own (a
                # path segment that is not an org id), as problem+json.
                assert "application/scim+json" in response["content"], (where, status)
                continue
            assert response["content"] == {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
            }, (where, status)
        if op["security"]:
            assert op["responses"]["401"]["headers"]["WWW-Authenticate"]["required"], where

    health = await client.get("/health")
    assert health.status_code == 200, health.text
    assert health.json() == {"status": "ok", "database": "ok", "policy_engine": "ok"}
