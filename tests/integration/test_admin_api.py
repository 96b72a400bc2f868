"""The admin API (``/v1/admin``), the OpenAPI document and ``/health``.

An org provisioned entirely through the admin API (org, agent, key,
credential) must work for ``/v1/sdk/execute``, and every admin action must
appear in the org's audit trail, in order, attributed to ``admin-api``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import uuid
from typing import Any

import httpx
import msgspec
import psycopg
import pytest

from arx.api.app import create_app
from arx.config import Settings
from arx.connectors.catalog import connectors
from arx.runtime import Runtime
from arx.sandbox.falcon import FalconState
from tests.fixtures.arx import ADMIN_TOKEN, FALCON_CLIENT_ID, FALCON_CLIENT_SECRET, FALCON_URL
from tests.fixtures.database import Database

pytestmark = pytest.mark.anyio

EXECUTE = "/v1/sdk/execute"
ORGS = "/v1/admin/orgs"
ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}"}
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


async def test_admin_api_requires_the_admin_token(
    client: httpx.AsyncClient, test_db: Database
) -> None:
    bad_headers: list[dict[str, str]] = [
        {},
        {"authorization": "Bearer wrong-token"},
        {"authorization": f"Bearer {ADMIN_TOKEN}x"},
        {"authorization": f"Bearer {ADMIN_TOKEN[:-1]}"},
        {"authorization": f"Basic {ADMIN_TOKEN}"},
        {"authorization": ADMIN_TOKEN},
        {"authorization": "Bearer "},
        {"authorization": f"Bearer arx_{'0' * 16}_{'x' * 43}"},  # an agent key is not admin
    ]
    for method, url, body in _admin_routes(uuid.uuid4(), uuid.uuid4()):
        for headers in bad_headers:
            resp = await client.request(method, url, json=body, headers=headers)
            problem = _assert_problem(resp, 401, "invalid_admin_token")
            assert resp.headers["www-authenticate"].startswith("Bearer")
            assert ADMIN_TOKEN not in resp.text
            assert "secret" not in problem["detail"]
    with psycopg.connect(test_db.admin_url) as conn:
        assert conn.execute("SELECT count(*) FROM arx.orgs").fetchone() == (0,)


async def test_admin_api_refuses_everything_without_a_configured_token(
    settings: Settings, runtime: Runtime, test_db: Database
) -> None:
    disabled = dataclasses.replace(
        runtime, settings=msgspec.structs.replace(settings, admin_token="")
    )
    app = create_app(disabled.settings, runtime=disabled)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://arx.test"
    ) as c:
        for method, url, body in _admin_routes(uuid.uuid4(), uuid.uuid4()):
            # Neither the old token, nor an empty one (which equals the empty setting).
            for headers in (ADMIN, {"authorization": "Bearer "}, {"authorization": "Bearer"}, {}):
                resp = await c.request(method, url, json=body, headers=headers)
                problem = _assert_problem(resp, 401, "invalid_admin_token")
                assert "disabled" in problem["detail"]
    with psycopg.connect(test_db.admin_url) as conn:
        assert conn.execute("SELECT count(*) FROM arx.orgs").fetchone() == (0,)


async def test_provision_through_admin_api_then_execute_and_audit(
    client: httpx.AsyncClient, falcon: FalconState, test_db: Database
) -> None:
    # Org. The slug names the org's policy bundle: `example` ships in bundles/.
    created = await client.post(ORGS, json={"slug": "example", "name": "Example"}, headers=ADMIN)
    assert created.status_code == 201, created.text
    org = created.json()
    assert set(org) == {"id", "slug", "name"}
    assert (org["slug"], org["name"]) == ("example", "Example")
    org_request_id = created.headers["x-request-id"]

    dup = await client.post(ORGS, json={"slug": "example", "name": "Again"}, headers=ADMIN)
    _assert_problem(dup, 409, "conflict")
    for payload, field in (
        ({"slug": "Not A Slug!", "name": "x"}, "slug"),
        ({"slug": "-leading-dash", "name": "x"}, "slug"),
        ({"slug": "x" * 64, "name": "x"}, "slug"),
        # "$" in Python's re also matches before a trailing newline.
        ({"slug": "fine\n", "name": "x"}, "slug"),
        ({"slug": "fine"}, "name"),
        ({"slug": "fine", "name": ""}, "name"),
        ({"slug": "fine", "name": "x", "extra": 1}, "extra"),
    ):
        bad = await client.post(ORGS, json=payload, headers=ADMIN)
        assert _assert_problem(bad, 422, "invalid_field")["field"] == field, payload
    as_json = {**ADMIN, "content-type": "application/json"}
    empty = await client.post(ORGS, content=b"", headers=as_json)
    _assert_problem(empty, 400, "malformed_json")
    garbage = await client.post(ORGS, content=b"{not json", headers=as_json)
    _assert_problem(garbage, 400, "malformed_json")
    form = await client.post(ORGS, data={"slug": "fine", "name": "x"}, headers=ADMIN)
    _assert_problem(form, 415, "unsupported_media_type")
    # PostgreSQL refuses a NUL in text: a 422, never a 500, and nothing written.
    nul = await client.post(ORGS, content=b'{"slug": "nul", "name": "a\\u0000b"}', headers=as_json)
    _assert_problem(nul, 422, "invalid_field")

    # Agent, with its intent manifest.
    agents = f"{ORGS}/{org['id']}/agents"
    made = await client.post(
        agents, json={"name": "triage-bot", "intent": TRIAGE_INTENT}, headers=ADMIN
    )
    assert made.status_code == 201, made.text
    agent = made.json()
    assert agent["org_id"] == org["id"]
    assert agent["name"] == "triage-bot"
    assert agent["intent"] == TRIAGE_INTENT
    again = await client.post(agents, json={"name": "triage-bot"}, headers=ADMIN)
    _assert_problem(again, 409, "conflict")
    for name in ("no spaces allowed", "bot\n"):
        bad_name = await client.post(agents, json={"name": name}, headers=ADMIN)
        assert _assert_problem(bad_name, 422, "invalid_field")["field"] == "name"
    bad_intent = await client.post(
        agents, json={"name": "x", "intent": {"scope": {"crowdstrike": "hosts:*"}}}, headers=ADMIN
    )
    assert _assert_problem(bad_intent, 422, "invalid_field")["field"].startswith("intent.scope")
    no_org = await client.post(f"{ORGS}/{uuid.uuid4()}/agents", json={"name": "x"}, headers=ADMIN)
    _assert_problem(no_org, 404, "not_found")

    # Key: shown once, in this response only.
    keys = f"{agents}/{agent['id']}/keys"
    issued = await client.post(keys, headers=ADMIN)
    assert issued.status_code == 201, issued.text
    key = issued.json()
    assert key["agent_id"] == agent["id"]
    assert key["api_key"].startswith(f"arx_{key['key_id']}_")
    no_agent = await client.post(f"{agents}/{uuid.uuid4()}/keys", headers=ADMIN)
    _assert_problem(no_agent, 404, "not_found")

    # Credential.
    cred = await client.put(
        f"{ORGS}/{org['id']}/credentials/crowdstrike",
        json={
            "secret": {"client_id": FALCON_CLIENT_ID, "client_secret": FALCON_CLIENT_SECRET},
            "base_url": FALCON_URL,
        },
        headers=ADMIN,
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

    # The trail: admin events, then the decision and its result, in seq order.
    audit = await client.get(f"{ORGS}/{org['id']}/audit", headers=ADMIN)
    assert audit.status_code == 200, audit.text
    events = audit.json()
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs)
    assert [(e["kind"], e.get("action")) for e in events] == [
        ("admin", "org.created"),
        ("admin", "agent.created"),
        ("admin", "api_key.created"),
        ("admin", "credential.stored"),
        ("decision", None),
        ("result", None),
    ]
    admin_events = [e for e in events if e["kind"] == "admin"]
    assert {e["actor"] for e in admin_events} == {"admin-api"}
    assert admin_events[0]["request_id"] == org_request_id
    assert admin_events[0]["details"] == {"slug": "example"}
    assert admin_events[1]["details"]["intent"] == TRIAGE_INTENT
    assert admin_events[2]["details"] == {"key_id": key["key_id"], "agent_id": agent["id"]}
    assert admin_events[3]["details"]["version"] == 1
    decision, result = events[4:]
    assert decision["id"] == resp.json()["event_id"]
    assert decision["agent_id"] == agent["id"]
    assert result["decision_id"] == decision["id"]
    assert result["outcome"] == "success"
    for secret in (key["api_key"], secret_part, FALCON_CLIENT_SECRET, ADMIN_TOKEN):
        assert secret not in audit.text

    # Paging by seq.
    page = await client.get(
        f"{ORGS}/{org['id']}/audit", params={"after_seq": seqs[1], "limit": 2}, headers=ADMIN
    )
    assert [e["seq"] for e in page.json()] == seqs[2:4]
    clamped = await client.get(f"{ORGS}/{org['id']}/audit?limit=0&after_seq=-5", headers=ADMIN)
    assert [e["seq"] for e in clamped.json()] == seqs[:1]
    bad_limit = await client.get(f"{ORGS}/{org['id']}/audit?limit=many", headers=ADMIN)
    assert bad_limit.status_code == 400, bad_limit.text
    assert bad_limit.headers["content-type"].startswith("application/problem+json")


async def test_admin_routes_answer_404_for_an_unknown_org(
    client: httpx.AsyncClient, test_db: Database
) -> None:
    missing = uuid.uuid4()
    for method, url, body in _admin_routes(missing, uuid.uuid4())[1:4]:
        resp = await client.request(method, url, json=body, headers=ADMIN)
        _assert_problem(resp, 404, "not_found")
        assert "constraint" not in resp.json(), "no schema internals in problems"
    with psycopg.connect(test_db.admin_url) as conn:
        assert conn.execute("SELECT count(*) FROM arx.credentials").fetchone() == (0,)


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

    operations = [
        (path, method, op)
        for path, item in paths.items()
        for method, op in item.items()
        if method in {"get", "post", "put", "delete", "patch"}
    ]
    assert len(operations) == 9
    for path, method, op in operations:
        where = f"{method.upper()} {path}"
        expected_security = (
            [{"AgentKey": []}]
            if path.startswith("/v1/sdk/")
            else [{"AdminToken": []}]
            if path.startswith("/v1/admin/")
            else []
        )
        assert op["security"] == expected_security, where
        if method in {"post", "put"} and not path.endswith("/keys"):
            request_body = op["requestBody"]
            if "$ref" in request_body:
                request_body = doc["components"]["requestBodies"][
                    request_body["$ref"].split("/")[-1]
                ]
            assert request_body["content"]["application/json"]["schema"], where
        assert "500" in op["responses"], where
        for status, response in op["responses"].items():
            assert response["headers"]["X-Request-ID"]["required"] is True, (where, status)
            if status.startswith("2") or path == "/health":
                continue
            assert response["content"] == {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
            }, (where, status)
        if op["security"]:
            assert op["responses"]["401"]["headers"]["WWW-Authenticate"]["required"], where

    health = await client.get("/health")
    assert health.status_code == 200, health.text
    assert health.json() == {"status": "ok", "database": "ok", "policy_engine": "ok"}
