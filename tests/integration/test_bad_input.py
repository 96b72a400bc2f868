"""Bad requests to the agent-facing API: a 4xx problem, never a 500, and nothing run.

Every case answers ``application/problem+json`` with a stable ``code`` (and,
for a field error, the ``field`` it names); none writes a decision, result or
approval row, and none reaches the connector's API. What an agent's key sent
and was refused before policy is a ``refusal`` event with that code (one, and
only one, per case: arx.audit.refusals); a key that is not one has none.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest

from arx.config import DEFAULT_MAX_BODY_BYTES, Settings
from arx.identity.types import IntentManifest
from arx.runtime import Runtime
from arx.sandbox.falcon import FalconState
from tests.fixtures.arx import Example, make_agent, make_org
from tests.fixtures.database import Database

pytestmark = pytest.mark.anyio

EXECUTE = "/v1/sdk/execute"
PROBLEM_TYPE_BASE = "https://arx.dev/problems/"
AID = "0123456789abcdef0123456789abcdef"
SEARCH = {"connector": "crowdstrike", "operation": "hosts:search", "params": {}}


def _written(test_db: Database) -> tuple[int, int]:
    """(decision and result events, approval requests): what a request that was
    decided or run would have recorded."""
    with psycopg.connect(test_db.admin_url) as conn:
        events = conn.execute(
            "SELECT count(*) FROM arx.audit_events WHERE kind IN ('decision', 'result')"
        )
        approvals = conn.execute("SELECT count(*) FROM arx.approval_requests")
        return _one(events.fetchone()), _one(approvals.fetchone())


def _refused(test_db: Database) -> list[str]:
    """The codes of the refusal events, oldest first."""
    with psycopg.connect(test_db.admin_url) as conn:
        rows = conn.execute(
            "SELECT action FROM arx.audit_events WHERE kind = 'refusal' ORDER BY seq"
        ).fetchall()
    return [str(r[0]) for r in rows]


def _one(row: tuple[Any, ...] | None) -> int:
    assert row is not None
    value = row[0]
    assert isinstance(value, int)
    return value


def _problem(
    resp: httpx.Response, status: int, code: str, *, field: str | None = None
) -> dict[str, Any]:
    """Check the RFC 9457 shape every error shares; return the body for more checks."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json"), resp.headers
    body: dict[str, Any] = resp.json()
    assert body["type"] == PROBLEM_TYPE_BASE + code
    assert body["code"] == code
    assert body["status"] == status
    assert isinstance(body["title"], str)
    assert body["title"]
    assert isinstance(body["detail"], str)
    assert body["detail"]
    if field is not None:
        assert body["field"] == field, body
    # Last, so that a missing id does not hide a wrong status or code.
    assert body["request_id"], f"the problem names no request id: {body}"
    assert resp.headers.get("x-request-id") == body["request_id"], resp.headers
    return body


@dataclass(frozen=True)
class Ledger:
    """What was recorded and sent when the test began; ``assert_untouched`` compares."""

    test_db: Database
    falcon: FalconState
    before: tuple[int, int]
    refused_before: int

    def assert_untouched(self, refused: str | None = None) -> None:
        """Nothing decided, run or sent; one refusal with the code ``refused``
        recorded, or none."""
        assert _written(self.test_db) == self.before, "a row was written"
        assert self.falcon.requests == [], "the connector's API was called"
        new = _refused(self.test_db)[self.refused_before :]
        assert new == ([refused] if refused else []), new


@pytest.fixture
def ledger(example: Example, test_db: Database, falcon: FalconState) -> Ledger:
    # After `example`: seeding writes admin events, which are not what we count.
    return Ledger(
        test_db=test_db,
        falcon=falcon,
        before=_written(test_db),
        refused_before=len(_refused(test_db)),
    )


# --- the request body ----------------------------------------------------------


def _case(sent: Any, status: int, code: str, field: str | None, id: str) -> Any:
    """One table row: what is sent, and the problem (status, code, field) expected back."""
    return pytest.param(sent, (status, code, field), id=id)


def _body(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


def _nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


BAD_BODIES = [
    _case(b'{"connector": "crowdstrike", ', 400, "malformed_json", None, "truncated"),
    _case(b"{'connector': 'crowdstrike'}", 400, "malformed_json", None, "single-quotes"),
    _case(b"\xff\xfe{}", 400, "malformed_json", None, "not-utf8"),
    _case(
        b'{"connector": "crowd\xffstrike", "operation": "hosts:search"}',
        400,
        "malformed_json",
        None,
        "not-utf8-inside-a-string",
    ),
    _case(b"", 400, "malformed_json", None, "empty"),
    _case(b" \n\t ", 400, "malformed_json", None, "whitespace-only"),
    # Valid JSON of the wrong shape: the body as a whole is wrong, not one field.
    _case(b"[]", 422, "invalid_field", None, "array"),
    _case(b'"crowdstrike"', 422, "invalid_field", None, "string"),
    _case(b"null", 422, "invalid_field", None, "null"),
    _case(_body(operation="hosts:search"), 422, "invalid_field", "connector", "no-connector"),
    _case(_body(connector="crowdstrike"), 422, "invalid_field", "operation", "no-operation"),
    _case(
        _body(connector=7, operation="hosts:search"),
        422,
        "invalid_field",
        "connector",
        "connector-int",
    ),
    _case(
        _body(connector="", operation="hosts:search"),
        422,
        "invalid_field",
        "connector",
        "connector-empty",
    ),
    _case(
        _body(connector="crowdstrike", operation=["hosts:search"]),
        422,
        "invalid_field",
        "operation",
        "operation-list",
    ),
    _case(
        _body(connector="crowdstrike", operation="hosts:search", org_id="x"),
        422,
        "invalid_field",
        "org_id",
        "unknown-top-level-field",
    ),
    _case(
        _body(connector="crowdstrike", operation="hosts:search", params=[1]),
        422,
        "invalid_field",
        "params",
        "params-array",
    ),
    _case(
        _body(connector="crowdstrike", operation="hosts:search", params="limit=1"),
        422,
        "invalid_field",
        "params",
        "params-string",
    ),
    _case(
        _body(connector="crowdstrike", operation="hosts:search", params=None),
        422,
        "invalid_field",
        "params",
        "params-null",
    ),
    # Nested past what any JSON decoder recursion allows: not a 500.
    _case(
        b'{"connector": "crowdstrike", "operation": "hosts:search", "params": {"a": '
        + b"[" * 1000
        + b"]" * 1000
        + b"}}",
        400,
        "malformed_json",
        None,
        "params-nested-1000-deep",
    ),
    # Decodable, but deeper than params may be.
    _case(
        _body(connector="crowdstrike", operation="hosts:search", params={"a": _nested(40)}),
        422,
        "invalid_field",
        "params.a" + "[0]" * 31,
        "params-nested-40-deep",
    ),
    # jsonb cannot hold a NUL: refused before anything is decided or written.
    _case(
        b'{"connector": "crowdstrike", "operation": "hosts:search",'
        b' "params": {"filter": "hostname:\\u0000"}}',
        422,
        "invalid_field",
        "params.filter",
        "nul-in-param",
    ),
    _case(
        b'{"connector": "crowdstrike", "operation": "hosts:search", "params": {"a\\u0000": 1}}',
        422,
        "invalid_field",
        "params",
        "nul-in-param-key",
    ),
    _case(
        _body(connector="crowdstrike\n", operation="hosts:search"),
        404,
        "unknown_connector",
        None,
        "connector-trailing-newline",
    ),
    _case(
        _body(connector="crowdstrike", operation="hosts:search\n"),
        404,
        "unknown_operation",
        None,
        "operation-trailing-newline",
    ),
]


@pytest.mark.parametrize(("content", "expected"), BAD_BODIES)
async def test_bad_body_is_a_problem_and_records_nothing(
    client: httpx.AsyncClient,
    example: Example,
    ledger: Ledger,
    content: bytes,
    expected: tuple[int, str, str | None],
) -> None:
    status, code, field = expected
    resp = await client.post(
        EXECUTE,
        content=content,
        headers={**example.auth("triage-bot"), "content-type": "application/json"},
    )
    _problem(resp, status, code, field=field)
    ledger.assert_untouched(refused=code)


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"],
)
async def test_a_body_that_is_not_json_is_415(
    client: httpx.AsyncClient, example: Example, ledger: Ledger, content_type: str | None
) -> None:
    headers = dict(example.auth("triage-bot"))
    if content_type is not None:
        headers["content-type"] = content_type
    resp = await client.post(EXECUTE, content=json.dumps(SEARCH).encode(), headers=headers)
    _problem(resp, 415, "unsupported_media_type")
    ledger.assert_untouched(refused="unsupported_media_type")


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "application/x+json"]
)
async def test_json_media_types_are_accepted(
    client: httpx.AsyncClient, example: Example, content_type: str
) -> None:
    resp = await client.post(
        EXECUTE,
        content=json.dumps(SEARCH).encode(),
        headers={**example.auth("triage-bot"), "content-type": content_type},
    )
    assert resp.status_code == 200, resp.text


# --- connector, operation and params -------------------------------------------


def _call(operation: str, params: dict[str, Any], connector: str = "crowdstrike") -> Any:
    return {"connector": connector, "operation": operation, "params": params}


BAD_CALLS = [
    _case(
        _call("users:suspend", {}, "nessus"), 404, "unknown_connector", None, "unknown-connector"
    ),
    _case(
        _call("hosts:search", {}, "CrowdStrike"),
        404,
        "unknown_connector",
        None,
        "connector-wrong-case",
    ),
    _case(_call("hosts:delete", {}), 404, "unknown_operation", None, "unknown-operation"),
    _case(_call("Hosts:Search", {}), 404, "unknown_operation", None, "operation-wrong-case"),
    _case(
        _call("hosts:search", {"limit": "ten"}),
        422,
        "invalid_field",
        "params.limit",
        "param-wrong-type",
    ),
    _case(
        _call("hosts:search", {"limit": 0}),
        422,
        "invalid_field",
        "params.limit",
        "param-out-of-range",
    ),
    _case(
        _call("hosts:search", {"hostname": "ws01"}),
        422,
        "invalid_field",
        "params.hostname",
        "unknown-param",
    ),
    _case(_call("hosts:get", {}), 422, "invalid_field", "params.ids", "missing-param"),
    _case(_call("hosts:get", {"ids": AID}), 422, "invalid_field", "params.ids", "ids-not-a-list"),
    _case(_call("hosts:get", {"ids": []}), 422, "invalid_field", "params.ids", "ids-empty"),
    _case(
        _call("hosts:get", {"ids": [AID, "xyz"]}),
        422,
        "invalid_field",
        "params.ids[1]",
        "id-not-32-hex",
    ),
    _case(
        _call("hosts:contain", {"ids": [AID + "0"]}),
        422,
        "invalid_field",
        "params.ids[0]",
        "id-33-hex",
    ),
    _case(
        _call("hosts:contain", {"ids": ["g" * 32]}),
        422,
        "invalid_field",
        "params.ids[0]",
        "id-not-hex",
    ),
    _case(_call("hosts:contain", {"ids": [1]}), 422, "invalid_field", "params.ids[0]", "id-int"),
    _case(
        _call("hosts:contain", {"ids": [AID + "\n"]}),
        422,
        "invalid_field",
        "params.ids[0]",
        "id-trailing-newline",
    ),
    _case(
        _call("hosts:contain", {"ids": [AID] * 101}),
        422,
        "invalid_field",
        "params.ids",
        "too-many-ids",
    ),
]


@pytest.mark.parametrize(("payload", "expected"), BAD_CALLS)
async def test_bad_call_is_a_problem_and_records_nothing(
    client: httpx.AsyncClient,
    example: Example,
    ledger: Ledger,
    payload: dict[str, Any],
    expected: tuple[int, str, str | None],
) -> None:
    status, code, field = expected
    # responder-bot may contain hosts (ESCALATE): only validation can stop these.
    resp = await client.post(EXECUTE, json=payload, headers=example.auth("responder-bot"))
    body = _problem(resp, status, code, field=field)
    if code == "invalid_field":
        assert body["field"].startswith("params")
    ledger.assert_untouched(refused=code)


# --- body size -----------------------------------------------------------------


def _oversized(settings: Settings) -> bytes:
    """Valid JSON for a real operation, 6 KiB over the limit (70 KiB by default)."""
    padding = "x" * (settings.max_body_bytes + 6 * 1024)
    content = _body(connector="crowdstrike", operation="hosts:search", params={"filter": padding})
    assert len(content) > settings.max_body_bytes
    return content


async def test_body_over_the_limit_is_413(
    client: httpx.AsyncClient, settings: Settings, example: Example, ledger: Ledger
) -> None:
    assert settings.max_body_bytes == DEFAULT_MAX_BODY_BYTES == 64 * 1024
    resp = await client.post(
        EXECUTE,
        content=_oversized(settings),
        headers={**example.auth("triage-bot"), "content-type": "application/json"},
    )
    _problem(resp, 413, "payload_too_large")
    ledger.assert_untouched(refused="payload_too_large")


async def test_body_over_the_limit_without_content_length_is_413(
    client: httpx.AsyncClient, settings: Settings, example: Example, ledger: Ledger
) -> None:
    content = _oversized(settings)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(content), 8192):
            yield content[start : start + 8192]

    resp = await client.post(
        EXECUTE,
        content=chunks(),
        headers={**example.auth("triage-bot"), "content-type": "application/json"},
    )
    assert "content-length" not in resp.request.headers
    _problem(resp, 413, "payload_too_large")
    ledger.assert_untouched(refused="payload_too_large")


# --- authentication --------------------------------------------------------------


def _tampered(key: str) -> str:
    """The same key id with a secret that differs in its last character."""
    return key[:-1] + ("A" if key[-1] != "A" else "B")


BAD_AUTH = [
    pytest.param(None, id="missing"),
    pytest.param("", id="empty"),
    pytest.param("Bearer", id="bearer-without-key"),
    pytest.param("Bearer ", id="bearer-blank"),
    pytest.param("Basic dHJpYWdlOmJvdA==", id="basic-scheme"),
    pytest.param("Bearer not-an-arx-key", id="malformed"),
    pytest.param("Bearer arx_0123456789abcdef", id="no-secret"),
    pytest.param("Bearer arx_0123_secret", id="short-key-id"),
    pytest.param("Bearer arx_0123456789abcdef_" + "s" * 200, id="secret-too-long"),
    pytest.param(
        "Bearer arx_0123456789abcdef_Zm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZm8",
        id="well-formed-unknown",
    ),
    pytest.param("tampered", id="wrong-secret"),
    pytest.param("mixed", id="key-id-of-one-agent-secret-of-another"),
]


@pytest.mark.parametrize("authorization", BAD_AUTH)
async def test_bad_api_key_is_401_and_runs_nothing(
    client: httpx.AsyncClient, example: Example, ledger: Ledger, authorization: str | None
) -> None:
    keys = example.seeded.api_keys
    # A key id that names one of the org's keys is refused in that org, on the record.
    names_a_key = authorization in ("tampered", "mixed")
    if authorization == "tampered":
        authorization = f"Bearer {_tampered(keys['triage-bot'])}"
        assert authorization != f"Bearer {keys['triage-bot']}"
    elif authorization == "mixed":
        # arx_<16 hex id>_<secret>; the secret itself may contain "_".
        key_id, secret = keys["triage-bot"][:20], keys["responder-bot"][21:]
        authorization = f"Bearer {key_id}_{secret}"
    headers = {} if authorization is None else {"authorization": authorization}
    resp = await client.post(EXECUTE, json=SEARCH, headers=headers)
    _problem(resp, 401, "invalid_api_key")
    assert resp.headers["www-authenticate"].lower().startswith("bearer")
    ledger.assert_untouched(refused="invalid_api_key" if names_a_key else None)


async def test_authentication_comes_before_the_body(
    client: httpx.AsyncClient, ledger: Ledger
) -> None:
    """An unauthenticated caller learns nothing, not even whether its body parses."""
    resp = await client.post(
        EXECUTE, content=b"{not json", headers={"content-type": "application/json"}
    )
    _problem(resp, 401, "invalid_api_key")
    ledger.assert_untouched()


@pytest.mark.parametrize(
    "path", ["/v1/sdk/connectors", "/v1/sdk/approvals/00000000-0000-4000-8000-000000000000"]
)
async def test_every_sdk_route_requires_a_key(
    client: httpx.AsyncClient, ledger: Ledger, path: str
) -> None:
    resp = await client.get(path, headers={"authorization": "Bearer arx_nope"})
    _problem(resp, 401, "invalid_api_key")
    assert "www-authenticate" in resp.headers
    ledger.assert_untouched()


# --- the org has no credential -----------------------------------------------------


async def test_connector_without_credential_is_409_and_nothing_runs(
    client: httpx.AsyncClient, runtime: Runtime, example: Example, ledger: Ledger
) -> None:
    # A second org whose agent may use crowdstrike, but which stored no credential.
    org = await make_org(runtime, "no-credentials")
    _, key = await make_agent(
        runtime, org, "lonely-bot", IntentManifest(scope={"crowdstrike": ["hosts:*"]})
    )

    resp = await client.post(EXECUTE, json=SEARCH, headers={"authorization": f"Bearer {key}"})

    body = _problem(resp, 409, "credential_not_configured")
    assert body["connector"] == "crowdstrike"
    ledger.assert_untouched()
    # The example org's credential was not borrowed, and it still works for its own agents.
    ok = await client.post(EXECUTE, json=SEARCH, headers=example.auth("triage-bot"))
    assert ok.status_code == 200, ok.text


# --- routes and methods ------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        pytest.param("POST", "/v1/sdk/exec", id="post-unknown"),
        pytest.param("GET", "/v1/sdk/nothing-here", id="get-unknown"),
        pytest.param("POST", "/v2/sdk/execute", id="other-version"),
        pytest.param("GET", "/v1/sdk/approvals/not-a-uuid", id="approval-id-not-uuid"),
    ],
)
async def test_unknown_route_is_404_problem(
    client: httpx.AsyncClient, example: Example, ledger: Ledger, method: str, path: str
) -> None:
    resp = await client.request(method, path, json=SEARCH, headers=example.auth("triage-bot"))
    ledger.assert_untouched()
    _problem(resp, 404, "not_found")


async def test_unknown_approval_is_404_problem(
    client: httpx.AsyncClient, example: Example, ledger: Ledger
) -> None:
    resp = await client.get(
        "/v1/sdk/approvals/00000000-0000-4000-8000-000000000000",
        headers=example.auth("responder-bot"),
    )
    _problem(resp, 404, "not_found")
    ledger.assert_untouched()


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
async def test_wrong_method_is_405_problem(
    client: httpx.AsyncClient, example: Example, ledger: Ledger, method: str
) -> None:
    resp = await client.request(method, EXECUTE, json=SEARCH, headers=example.auth("triage-bot"))
    ledger.assert_untouched()
    _problem(resp, 405, "method_not_allowed")


async def test_405_names_the_allowed_methods(client: httpx.AsyncClient) -> None:
    resp = await client.get(EXECUTE)
    assert resp.status_code == 405
    # RFC 9110 section 15.5.6: a 405 must list the methods the resource supports.
    assert "POST" in resp.headers.get("allow", ""), resp.headers
