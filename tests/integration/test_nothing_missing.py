"""Nothing silently missing (issue 9, point 3), in-process against the real OPA
and PostgreSQL:

- the caller's X-Request-ID is kept beside ARX's own request id, in every
  kind of event a request writes, never in its place;
- a PERMIT decision whose result never arrived reads ``outcome_unknown`` once
  overdue (the row itself unchanged), unlike a result whose outcome is
  ``unknown`` (the tool did not answer);
- refused attempts that never reach policy are recorded, rate-limited per
  key and code, a bad key in the org of the key it names, nothing secret.

The same crash with a real API process killed between the two steps:
tests/e2e/test_crash_between_steps.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

import anyio
import httpx
import msgspec
import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from arx.api.app import create_app
from arx.audit import refusals
from arx.audit.refusals import Refusals
from arx.audit.service import result_overdue_seconds
from arx.config import Settings
from arx.devstack.seed import Seeded, seed_example_org
from arx.runtime import Runtime, open_runtime
from arx.sandbox.falcon import FalconState
from arx.sandbox.falcon import create_app as create_falcon_app
from tests.fixtures.arx import FALCON_CLIENT_ID, FALCON_CLIENT_SECRET, FALCON_URL, Example
from tests.fixtures.database import Database

pytestmark = pytest.mark.anyio

EXECUTE = "/v1/sdk/execute"
ORGS = "/v1/admin/orgs"
SEARCH = {"connector": "crowdstrike", "operation": "hosts:search", "params": {}}
# The example policy denies triage-bot any containment (EX-001).
CONTAIN = {"connector": "crowdstrike", "operation": "hosts:contain", "params": {"ids": ["a" * 32]}}
GENERATED_ID = re.compile(r"^[0-9a-f]{32}$")


def _events(test_db: Database) -> list[dict[str, Any]]:
    """Every event, as the superuser sees it (no row-level security)."""
    with psycopg.connect(test_db.admin_url) as conn:
        cur = conn.execute(
            "SELECT id, org_id, kind, agent_id, decision_id, verdict, outcome, action, details,"
            " actor, request_id, client_request_id FROM arx.audit_events ORDER BY seq"
        )
        names = [d.name for d in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _refusals(test_db: Database) -> list[dict[str, Any]]:
    return [e for e in _events(test_db) if e["kind"] == "refusal"]


def _dump(test_db: Database) -> str:
    with psycopg.connect(test_db.admin_url) as conn:
        row = conn.execute("SELECT jsonb_agg(to_jsonb(e))::text FROM arx.audit_events e").fetchone()
    assert row is not None
    return str(row[0])


def _ids(event: dict[str, Any]) -> tuple[str | None, str | None]:
    return event["request_id"], event["client_request_id"]


def _bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


async def _trail(client: httpx.AsyncClient, seeded: Seeded) -> list[dict[str, Any]]:
    """The org's trail as the admin API reads it, oldest first."""
    resp = await client.get(
        f"{ORGS}/{seeded.org_id}/audit", params={"limit": 1000}, headers=seeded.owner_headers
    )
    assert resp.status_code == 200, resp.text
    events: list[dict[str, Any]] = resp.json()["events"][::-1]
    return events


# --- the client's request id, beside ARX's ----------------------------------------------


async def test_the_client_request_id_is_kept_beside_arx_own_in_every_event_kind(
    client: httpx.AsyncClient, example: Example, test_db: Database
) -> None:
    org = f"{ORGS}/{example.seeded.org_id}"
    triage = example.seeded.agent_ids["triage-bot"]
    mine = "trace-A.1_b"

    permit = await client.post(
        EXECUTE, json=SEARCH, headers={**example.auth("triage-bot"), "x-request-id": mine}
    )
    assert permit.status_code == 200, permit.text
    # The same client id on a second request: ARX's ids still tell them apart.
    deny = await client.post(
        EXECUTE, json=CONTAIN, headers={**example.auth("triage-bot"), "x-request-id": mine}
    )
    assert deny.status_code == 403, deny.text
    switched = await client.put(
        f"{org}/agents/{triage}/kill-switch",
        json={"disabled": True, "reason": "drill"},
        headers={**example.owner, "x-request-id": "trace-admin"},
    )
    assert switched.status_code == 200, switched.text
    refused = await client.post(
        EXECUTE, json=SEARCH, headers={**example.auth("triage-bot"), "x-request-id": "trace-off"}
    )
    assert refused.status_code == 403, refused.text
    plain = await client.post(EXECUTE, json=SEARCH, headers=example.auth("responder-bot"))
    assert plain.status_code == 200, plain.text

    ours = {
        name: resp.headers["x-request-id"]
        for name, resp in {
            "permit": permit,
            "deny": deny,
            "switch": switched,
            "refused": refused,
            "plain": plain,
        }.items()
    }
    for name, rid in ours.items():
        assert GENERATED_ID.match(rid), (name, rid)
    assert len(set(ours.values())) == len(ours), "a fresh id of ARX's for every request"
    assert permit.headers["x-client-request-id"] == deny.headers["x-client-request-id"] == mine
    assert switched.headers["x-client-request-id"] == "trace-admin"
    assert "x-client-request-id" not in plain.headers
    # The problem body names ARX's id, never the caller's.
    assert deny.json()["request_id"] == ours["deny"]
    assert refused.json()["request_id"] == ours["refused"]

    got = [
        (e["kind"], e["verdict"] or e["outcome"] or e["action"], *_ids(e))
        for e in _events(test_db)
        if e["request_id"] in ours.values()
    ]
    assert got == [
        ("decision", "PERMIT", ours["permit"], mine),
        ("result", "success", ours["permit"], mine),
        ("decision", "DENY", ours["deny"], mine),
        ("admin", "agent.disabled", ours["switch"], "trace-admin"),
        ("refusal", "agent_disabled", ours["refused"], "trace-off"),
        ("decision", "PERMIT", ours["plain"], None),
        ("result", "success", ours["plain"], None),
    ]

    # Readers see both, side by side.
    listed = {e.get("request_id"): e for e in await _trail(client, example.seeded)}
    assert listed[ours["permit"]]["client_request_id"] == mine
    assert listed[ours["refused"]]["client_request_id"] == "trace-off"
    assert "client_request_id" not in listed[ours["plain"]]


async def test_a_malformed_client_request_id_is_neither_echoed_nor_stored(
    client: httpx.AsyncClient, example: Example, test_db: Database
) -> None:
    for bad in (b"has spaces", b"x" * 65, b"semi;colon", b"abc\r\nx-injected: 1"):
        resp = await client.post(
            EXECUTE, json=SEARCH, headers={**example.auth("triage-bot"), "x-request-id": bad}
        )
        assert resp.status_code == 200, resp.text
        assert "x-client-request-id" not in resp.headers
        assert GENERATED_ID.match(resp.headers["x-request-id"])
    assert {e["client_request_id"] for e in _events(test_db) if e["kind"] != "admin"} == {None}


# --- outcome_unknown ---------------------------------------------------------------------


class _HangingFalcon(httpx.AsyncBaseTransport):
    """The fake Falcon, whose device API can be made to never answer."""

    def __init__(self, falcon: FalconState) -> None:
        self._inner = httpx.ASGITransport(app=create_falcon_app(falcon))
        self.hang = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.hang and request.url.path.startswith("/devices/"):
            await asyncio.Event().wait()  # until the call is cancelled
        return await self._inner.handle_async_request(request)


@asynccontextmanager
async def _short_deadline_arx(
    settings: Settings, falcon: FalconState
) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient, Seeded, _HangingFalcon]]:
    """ARX with a 2 s execute deadline, so a result is overdue 3.5 s after its
    decision (2 s, the result write's 1 s, the 0.5 s statement timeout)."""
    short = msgspec.structs.replace(
        settings, execute_deadline_seconds=2.0, db_statement_timeout_seconds=0.5
    )
    transport = _HangingFalcon(falcon)
    async with open_runtime(short, connector_transport=transport) as rt:
        await rt.pool.wait(timeout=10)
        seeded = await seed_example_org(
            rt,
            falcon_url=FALCON_URL,
            client_id=FALCON_CLIENT_ID,
            client_secret=FALCON_CLIENT_SECRET,
        )
        app = create_app(short, runtime=rt)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://arx.test"
        ) as client:
            yield rt, client, seeded, transport


async def _dies_after_its_decision(
    client: httpx.AsyncClient, seeded: Seeded, test_db: Database
) -> UUID:
    """A PERMIT whose request dies right after its decision commits (the tool
    hangs; the request is cancelled as a killed process would stop): its
    decision's id. Nothing after the decision runs, the result write included."""
    before = {e["id"] for e in _events(test_db)}
    async with anyio.create_task_group() as tg:
        tg.start_soon(
            lambda: client.post(
                EXECUTE, json=SEARCH, headers=_bearer(seeded.api_keys["responder-bot"])
            )
        )
        with anyio.fail_after(5):
            while True:
                new = [e for e in _events(test_db) if e["id"] not in before]
                if any(e["kind"] == "decision" for e in new):
                    break
                await anyio.sleep(0.02)
        tg.cancel_scope.cancel()
    (decision,) = [e for e in _events(test_db) if e["id"] not in before]
    assert (decision["kind"], decision["verdict"]) == ("decision", "PERMIT")
    return UUID(str(decision["id"]))


async def test_a_permit_without_a_result_reads_outcome_unknown_once_overdue(
    settings: Settings, falcon: FalconState, test_db: Database
) -> None:
    async with _short_deadline_arx(settings, falcon) as (rt, client, seeded, tool):
        assert result_overdue_seconds(rt.settings) == 3.5
        done = await client.post(
            EXECUTE, json=SEARCH, headers=_bearer(seeded.api_keys["triage-bot"])
        )
        assert done.status_code == 200, done.text
        denied = await client.post(
            EXECUTE, json=CONTAIN, headers=_bearer(seeded.api_keys["triage-bot"])
        )
        assert denied.status_code == 403, denied.text
        tool.hang = True
        # The tool never answers within the deadline: a result whose outcome is "unknown".
        timed_out = await client.post(
            EXECUTE, json=SEARCH, headers=_bearer(seeded.api_keys["triage-bot"])
        )
        assert timed_out.status_code == 504, timed_out.text
        lost = await _dies_after_its_decision(client, seeded, test_db)
        started = time.monotonic()

        # Still within its deadline: as a call still running, no outcome yet.
        fresh = {e["id"]: e for e in await _trail(client, seeded)}
        assert "outcome" not in fresh[str(lost)]

        await anyio.sleep(max(0.0, 3.6 - (time.monotonic() - started)))
        trail = await _trail(client, seeded)
        by_id = {e["id"]: e for e in trail}
        assert by_id[str(lost)]["outcome"] == "outcome_unknown"
        assert by_id[str(lost)]["verdict"] == "PERMIT"
        results = {e["decision_id"]: e["outcome"] for e in trail if e["kind"] == "result"}
        assert str(lost) not in results
        # Every other decision reads as stored: the completed PERMIT and the
        # one whose tool timed out have their results (success, unknown), the
        # DENY never runs anything.
        timed_out_id = timed_out.json()["event_id"]
        assert results == {done.json()["event_id"]: "success", timed_out_id: "unknown"}
        assert "outcome" not in by_id[done.json()["event_id"]]
        assert "outcome" not in by_id[timed_out_id]
        assert "outcome" not in by_id[denied.json()["event_id"]]

        # Computed when read: the stored row has no outcome, and a result that
        # arrives later (the spool's replay, say) ends it.
        (stored,) = [e for e in _events(test_db) if e["id"] == lost]
        assert stored["outcome"] is None
        with psycopg.connect(test_db.admin_url) as conn:
            conn.execute(
                "INSERT INTO arx.audit_events (id, org_id, kind, agent_id, decision_id,"
                " connector, operation, outcome)"
                " SELECT gen_random_uuid(), org_id, 'result', agent_id, id, connector, operation,"
                " 'success' FROM arx.audit_events WHERE id = %s",
                (lost,),
            )
        late = {e["id"]: e for e in await _trail(client, seeded)}
        assert "outcome" not in late[str(lost)]


# --- refused attempts ---------------------------------------------------------------------


async def test_a_bad_key_is_recorded_in_the_org_of_the_key_it_names(
    client: httpx.AsyncClient,
    example: Example,
    runtime: Runtime,
    test_db: Database,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    seeded = example.seeded
    triage = seeded.agent_ids["triage-bot"]
    key_id = seeded.api_keys["triage-bot"].split("_")[1]
    wrong = secrets.token_urlsafe(32)
    for _ in range(3):
        resp = await client.post(
            EXECUTE,
            json=SEARCH,
            headers={**_bearer(f"arx_{key_id}_{wrong}"), "x-request-id": "probe-1"},
        )
        assert resp.status_code == 401, resp.text
        assert resp.json()["code"] == "invalid_api_key"

    # Revoked: still recorded, in its org, with its state.
    keys = f"{ORGS}/{seeded.org_id}/agents/{triage}/keys"
    issued = (await client.post(keys, json={"name": "old"}, headers=seeded.owner_headers)).json()
    revoked = await client.post(f"{keys}/{issued['key_id']}/revoke", headers=seeded.owner_headers)
    assert revoked.status_code == 200, revoked.text
    gone = await client.post(EXECUTE, json=SEARCH, headers=_bearer(issued["api_key"]))
    assert gone.status_code == 401, gone.text

    # An id that names no key: there is no org to record it in; it is logged.
    unknown_id = secrets.token_hex(8)
    nobody_secret = secrets.token_urlsafe(32)
    nobody = await client.post(
        EXECUTE, json=SEARCH, headers=_bearer(f"arx_{unknown_id}_{nobody_secret}")
    )
    assert nobody.status_code == 401, nobody.text
    # No key id at all: nothing to record (its access line is the trace).
    malformed = await client.post(EXECUTE, json=SEARCH, headers=_bearer("arx_not-a-key"))
    assert malformed.status_code == 401, malformed.text

    refused = _refusals(test_db)
    assert [
        (e["org_id"], e["agent_id"], e["action"], e["actor"], e["details"]) for e in refused
    ] == [
        (
            seeded.org_id,
            triage,
            "invalid_api_key",
            f"key:{key_id}",
            {
                "path": EXECUTE,
                "key_id": key_id,
                "key_state": "active",  # the key is fine: the secret was wrong
                "left_out_before": 0,
            },
        ),
        (
            seeded.org_id,
            triage,
            "invalid_api_key",
            f"key:{issued['key_id']}",
            {
                "path": EXECUTE,
                "key_id": issued["key_id"],
                "key_state": "revoked",
                "left_out_before": 0,
            },
        ),
    ], "one refusal for the three bad secrets (rate-limited per key), one for the revoked key"
    first = refused[0]
    assert first["request_id"] is not None
    assert first["client_request_id"] == "probe-1"
    # The org's readers see it.
    assert any(e.get("action") == "invalid_api_key" for e in await _trail(client, seeded))

    unrecorded = [r for r in caplog.records if r.name == "arx.audit.refusals"]
    assert [(getattr(r, "key_id", None), getattr(r, "why", None)) for r in unrecorded] == [
        (unknown_id, "the key id names no key")
    ]
    logs = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    dump = _dump(test_db)
    for secret in (wrong, nobody_secret, issued["api_key"], seeded.api_keys["triage-bot"]):
        assert secret not in dump
        assert secret not in logs


async def test_the_key_refusal_count_carries_what_was_left_out(
    client: httpx.AsyncClient,
    example: Example,
    test_db: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(refusals, "EVERY_SECONDS", 0.3)
    key_id = example.seeded.api_keys["triage-bot"].split("_")[1]
    bad = _bearer(f"arx_{key_id}_{secrets.token_urlsafe(32)}")
    for _ in range(4):
        assert (await client.post(EXECUTE, json=SEARCH, headers=bad)).status_code == 401
    await anyio.sleep(0.35)
    assert (await client.post(EXECUTE, json=SEARCH, headers=bad)).status_code == 401
    assert [e["details"]["left_out_before"] for e in _refusals(test_db)] == [0, 3]


async def test_calls_refused_before_policy_are_recorded_per_key_and_code(
    client: httpx.AsyncClient, example: Example, test_db: Database
) -> None:
    triage = example.seeded.agent_ids["triage-bot"]
    auth = example.auth("triage-bot")
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"json": {**SEARCH, "connector": "nope"}}, 404, "unknown_connector"),
        ({"json": {**SEARCH, "operation": "hosts:melt"}}, 404, "unknown_operation"),
        ({"json": {**SEARCH, "params": {"limit": "many"}}}, 422, "invalid_field"),
        ({"json": {**SEARCH, "params": {"limit": -1}}}, 422, "invalid_field"),
        ({"json": {"connector": "crowdstrike"}}, 422, "invalid_field"),
        ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 400,
         "malformed_json"),
        ({"content": b"connector=crowdstrike", "headers": {"content-type": "text/plain"}}, 415,
         "unsupported_media_type"),
    ]  # fmt: skip
    for kwargs, status, code in cases:
        headers = {**auth, **kwargs.pop("headers", {})}
        resp = await client.post(EXECUTE, headers=headers, **kwargs)
        assert (resp.status_code, resp.json()["code"]) == (status, code), resp.text
    # A bad Idempotency-Key header is refused before the body is read.
    bad_key = await client.post(
        EXECUTE, json=SEARCH, headers={**auth, "idempotency-key": "k" * 300}
    )
    assert bad_key.status_code == 422, bad_key.text

    assert not [e for e in _events(test_db) if e["kind"] == "decision"], "policy never asked"
    got = [(e["agent_id"], e["action"], e["details"]) for e in _refusals(test_db)]
    base = {"path": EXECUTE, "key_id": example.seeded.api_keys["triage-bot"].split("_")[1]}
    assert got == [
        (
            triage,
            "unknown_connector",
            {**base, "status": 404, "connector": "nope", "left_out_before": 0},
        ),
        (
            triage,
            "unknown_operation",
            {
                **base,
                "status": 404,
                "connector": "crowdstrike",
                "operation": "hosts:melt",
                "left_out_before": 0,
            },
        ),
        # Once for the three invalid fields (and the idempotency key): per key and code.
        (
            triage,
            "invalid_field",
            {**base, "status": 422, "field": "params.limit", "left_out_before": 0},
        ),
        (triage, "malformed_json", {**base, "status": 400, "left_out_before": 0}),
        (triage, "unsupported_media_type", {**base, "status": 415, "left_out_before": 0}),
    ]
    assert all(e["actor"].startswith(f"agent:{triage}") for e in _refusals(test_db))


class _SilentServer:
    """A TCP server that accepts and never answers: a database that hangs."""

    def __init__(self) -> None:
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self._writers.append(writer)
            await reader.read()  # until either side closes

        self._server = await asyncio.start_server(hold, "127.0.0.1", 0)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def stop(self) -> None:
        """Refuse new connections and close the held ones: nothing outlives the test."""
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        await self._server.wait_closed()


async def test_a_refusal_record_never_changes_the_answer_and_holds_it_at_most_a_second(
    example: Example, runtime: Runtime, test_db: Database
) -> None:
    key_id = example.seeded.api_keys["triage-bot"].split("_")[1]
    silent = _SilentServer()
    port = await silent.start()
    # The trail's database hangs: no connection ever comes back.
    hung: AsyncConnectionPool[Any] = AsyncConnectionPool(
        f"postgresql://arx_app@127.0.0.1:{port}/arx", min_size=1, open=False
    )
    await hung.open(wait=False)
    rt = dataclasses.replace(runtime, refusals=Refusals(hung, pool_wait=30.0))
    app = create_app(rt.settings, runtime=rt)
    answers = []
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://arx.test"
        ) as c:
            for call in (
                lambda: c.post(EXECUTE, json=SEARCH, headers=_bearer(f"arx_{key_id}_wrong")),
                lambda: c.post(
                    EXECUTE,
                    json={**SEARCH, "connector": "nope"},
                    headers=example.auth("triage-bot"),
                ),
            ):
                started = time.monotonic()
                resp = await call()
                answers.append((resp.status_code, resp.json()["code"]))
                # refusals.WRITE_SECONDS, the pool wait included, and no more.
                assert time.monotonic() - started < refusals.WRITE_SECONDS + 0.5
    finally:
        await silent.stop()  # the pool's connection attempts fail now
        await hung.close(timeout=5)
    assert answers == [(401, "invalid_api_key"), (404, "unknown_connector")]
    assert _refusals(test_db) == []
