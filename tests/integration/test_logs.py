"""Structured logs: one JSON access line per request carrying the request id
(and org/agent once authenticated), and no secret anywhere: not in a log
line, a response, or the audit trail.

Logs are captured the way production emits them: a handler with
``arx.logs.JSONFormatter`` on the root logger at INFO, formatting each record
when it is emitted (the request context lives in context variables).
"""

from __future__ import annotations

import base64
import logging
import re
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import msgspec
import psycopg
import pytest

from arx.config import Settings
from arx.logs import JSONFormatter
from arx.sandbox.falcon import FalconState
from tests.fixtures.arx import BOOTSTRAP_TOKEN, FALCON_CLIENT_ID, FALCON_CLIENT_SECRET, Example
from tests.fixtures.database import Database

pytestmark = pytest.mark.anyio

EXECUTE = "/v1/sdk/execute"
SEARCH = {"connector": "crowdstrike", "operation": "hosts:search", "params": {}}
CONTAIN = {"connector": "crowdstrike", "operation": "hosts:contain", "params": {"ids": ["a" * 32]}}
GENERATED_ID = re.compile(r"^[0-9a-f]{32}$")


class _JSONCapture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(JSONFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def json_logs() -> Iterator[list[str]]:
    """Every log line emitted during the test, formatted as production does."""
    handler = _JSONCapture()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield handler.lines
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _parse(lines: list[str]) -> list[dict[str, Any]]:
    for line in lines:
        assert "\n" not in line, line
        assert "\r" not in line, line
    return [msgspec.json.decode(line) for line in lines]


def _access_line(logs: list[dict[str, Any]], resp: httpx.Response) -> dict[str, Any]:
    rid = resp.headers["x-request-id"]
    lines = [d for d in logs if d["logger"] == "arx.access" and d.get("request_id") == rid]
    assert len(lines) == 1, f"one access line per request, got {lines}"
    line = lines[0]
    assert line["msg"] == "request"
    assert line["status"] == resp.status_code
    assert line["method"] == resp.request.method
    assert line["path"] == resp.request.url.path
    assert isinstance(line["duration_ms"], int | float)
    return line


async def test_logs_carry_request_context_and_never_a_secret(
    *,
    client: httpx.AsyncClient,
    example: Example,
    falcon: FalconState,
    settings: Settings,
    test_db: Database,
    json_logs: list[str],
) -> None:
    org_id = str(example.seeded.org_id)
    triage = str(example.seeded.agent_ids["triage-bot"])
    bad_secret = secrets.token_urlsafe(32)
    bad_key = f"arx_{secrets.token_hex(8)}_{bad_secret}"

    permit = await client.post(EXECUTE, json=SEARCH, headers=example.auth("triage-bot"))
    assert permit.status_code == 200, permit.text
    falcon_tokens = list(falcon.tokens)
    assert falcon_tokens, "the PERMIT exchanged a Falcon token"

    deny = await client.post(EXECUTE, json=CONTAIN, headers=example.auth("triage-bot"))
    assert deny.status_code == 403, deny.text

    bad = await client.post(EXECUTE, json=SEARCH, headers={"authorization": f"Bearer {bad_key}"})
    assert bad.status_code == 401, bad.text

    admin = await client.get(f"/v1/admin/orgs/{org_id}/audit", headers=example.owner)
    assert admin.status_code == 200, admin.text

    # The vendor rotates the client secret behind ARX's back: the stored one is now wrong.
    falcon.clients = {FALCON_CLIENT_ID: "rotated-elsewhere-" + secrets.token_hex(8)}
    falcon.revoke_all_tokens()
    broken = await client.post(EXECUTE, json=SEARCH, headers=example.auth("triage-bot"))
    assert broken.status_code == 502, broken.text
    problem = broken.json()
    assert problem["code"] == "connector_auth_failed"
    assert problem["upstream_status"] == 403

    logs = _parse(json_logs)
    responses = [permit, deny, bad, admin, broken]
    assert len({r.headers["x-request-id"] for r in responses}) == len(responses)

    for resp in (permit, deny, broken):
        line = _access_line(logs, resp)
        assert (line["org_id"], line["agent_id"]) == (org_id, triage), line
    unauthenticated = _access_line(logs, bad)
    assert "org_id" not in unauthenticated
    assert "agent_id" not in unauthenticated
    assert "agent_id" not in _access_line(logs, admin)

    for resp in (deny, bad, broken):
        assert resp.headers["content-type"].startswith("application/problem+json")
        assert resp.json()["request_id"] == resp.headers["x-request-id"]

    # The 502 is also logged as a failure, in the same request's context.
    failures = [d for d in logs if d["msg"] == "request failed"]
    assert [(d["request_id"], d["code"], d["org_id"]) for d in failures] == [
        (broken.headers["x-request-id"], "connector_auth_failed", org_id)
    ]

    with psycopg.connect(test_db.admin_url) as conn:
        rows = conn.execute(
            "SELECT kind, verdict, outcome, error, request_id, id, decision_id"
            " FROM arx.audit_events WHERE kind <> 'admin' ORDER BY seq"
        ).fetchall()
        audit_dump = conn.execute(
            "SELECT jsonb_agg(to_jsonb(e))::text FROM arx.audit_events e"
        ).fetchone()
    rid = {r.headers["x-request-id"]: name for r, name in zip(responses, "PDBAX", strict=True)}
    assert [(r[0], r[1], r[2], rid.get(r[4])) for r in rows] == [
        ("decision", "PERMIT", None, "P"),
        ("result", None, "success", "P"),
        ("decision", "DENY", None, "D"),
        ("decision", "PERMIT", None, "X"),
        ("result", None, "error", "X"),
    ]
    failed = rows[-1]
    assert str(failed[6]) == problem["event_id"] == str(rows[-2][5])
    assert failed[3]["code"] == "connector_auth_failed"

    kek = settings.kek
    forbidden = {
        "falcon client secret": FALCON_CLIENT_SECRET,
        "owner admin token": example.seeded.owner_token,
        "bootstrap token": BOOTSTRAP_TOKEN,
        "KEK (base64)": base64.b64encode(kek).decode(),
        "KEK (urlsafe base64)": base64.urlsafe_b64encode(kek).decode(),
        "KEK (hex)": kek.hex(),
        "rejected key secret": bad_secret,
        **{f"API key of {name}": key for name, key in example.seeded.api_keys.items()},
        **{
            f"API key secret of {name}": key.split("_", 2)[2]
            for name, key in example.seeded.api_keys.items()
        },
        **{f"Falcon access token {i}": t for i, t in enumerate(falcon_tokens)},
    }
    assert audit_dump is not None
    haystacks = {
        "logs": "\n".join(json_logs),
        "audit": audit_dump[0],
        **{
            f"response {r.request.method} {r.request.url.path} {r.status_code}": r.text
            + str(r.headers)
            for r in responses
        },
    }
    leaks = [
        (what, where)
        for what, value in forbidden.items()
        for where, text in haystacks.items()
        if value in text
    ]
    assert leaks == []


async def test_the_request_id_is_arx_own_and_a_well_formed_client_id_is_kept_beside_it(
    client: httpx.AsyncClient, json_logs: list[str]
) -> None:
    good = "trace-0a1B.2_c"
    resp = await client.get("/health", headers={"x-request-id": good})
    assert resp.status_code == 200
    # ARX's own id, never the caller's; the caller's is echoed beside it.
    (ours,) = resp.headers.get_list("x-request-id")
    assert GENERATED_ID.match(ours), ours
    assert resp.headers.get_list("x-client-request-id") == [good]
    line = _access_line(_parse(json_logs), resp)
    assert (line["request_id"], line["client_request_id"]) == (ours, good)

    # The same client id twice: two requests, two ids of ARX's.
    again = await client.get("/health", headers={"x-request-id": good})
    assert again.headers["x-request-id"] != ours
    assert again.headers["x-client-request-id"] == good

    # An authenticated route's problem body carries ARX's id, not the caller's.
    unauth = await client.post(EXECUTE, json=SEARCH, headers={"x-request-id": good + "-2"})
    assert unauth.status_code == 401
    assert unauth.json()["request_id"] == unauth.headers["x-request-id"] != good + "-2"
    assert unauth.headers["x-client-request-id"] == good + "-2"

    # Without one, nothing is echoed or logged in its place.
    bare = await client.get("/health")
    assert "x-client-request-id" not in bare.headers
    assert "client_request_id" not in _access_line(_parse(json_logs), bare)

    invalid: list[bytes] = [
        b"has spaces",
        b"abc\r\nx-injected: 1",
        b"abc\nforged-log-line",
        b"x" * 65,
        b"semi;colon",
        b'"quoted"',
        "caf\u00e9".encode(),
    ]
    seen: set[str] = set()
    for value in invalid:
        resp = await client.get("/health", headers={b"x-request-id": value})
        assert resp.status_code == 200
        assert "x-injected" not in resp.headers
        assert "x-client-request-id" not in resp.headers, value
        replaced = resp.headers.get_list("x-request-id")
        assert len(replaced) == 1
        assert GENERATED_ID.match(replaced[0]), (value, replaced)
        seen.add(replaced[0])
    assert len(seen) == len(invalid), "a fresh id for every request"

    logs = _parse(json_logs)
    text = "\n".join(json_logs)
    for marker in ("has spaces", "x-injected", "forged-log-line", "x" * 65, "semi;colon"):
        assert marker not in text
    assert {d["request_id"] for d in logs if d["logger"] == "arx.access"} >= seen


async def test_unrouted_requests_get_a_request_id_and_an_access_line(
    client: httpx.AsyncClient, json_logs: list[str]
) -> None:
    """'A request id for every request and one access log line' (arx.api.middleware):
    that includes requests no route matches (404) or with the wrong method (405)."""
    for method, path, status in (("GET", "/no/such/route", 404), ("GET", EXECUTE, 405)):
        resp = await client.request(method, path, headers={"x-request-id": f"unrouted-{status}"})
        assert resp.status_code == status
        assert resp.headers["content-type"].startswith("application/problem+json")
        assert GENERATED_ID.match(resp.headers.get("x-request-id", "")), resp.headers
        assert resp.headers.get("x-client-request-id") == f"unrouted-{status}", resp.headers
        assert resp.json()["request_id"] == resp.headers["x-request-id"]
        _access_line(_parse(json_logs), resp)
