"""The production connector transport (aiohttp under httpx) against a tool that
is not listening (a 502: nothing was sent) or that hangs up after reading the
request (a 504: the outcome is unknown), and what the trail records of each."""

from __future__ import annotations

import asyncio

import httpx
import psycopg
import pytest

from arx.api.app import create_app
from arx.config import Settings
from arx.devstack.ports import free_port
from arx.devstack.seed import seed_example_org
from arx.runtime import open_runtime
from tests.fixtures.arx import FALCON_CLIENT_ID, FALCON_CLIENT_SECRET
from tests.fixtures.database import Database

pytestmark = pytest.mark.anyio


async def _search_through_the_real_transport(settings: Settings, falcon_url: str) -> httpx.Response:
    """One hosts:search with the production connector transport (none injected)."""
    async with open_runtime(settings) as rt:
        await rt.pool.wait(timeout=10)
        seeded = await seed_example_org(
            rt,
            falcon_url=falcon_url,
            client_id=FALCON_CLIENT_ID,
            client_secret=FALCON_CLIENT_SECRET,
        )
        app = create_app(settings, runtime=rt)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://arx.test"
        ) as client:
            return await client.post(
                "/v1/sdk/execute",
                json={"connector": "crowdstrike", "operation": "hosts:search", "params": {}},
                headers={"authorization": f"Bearer {seeded.api_keys['triage-bot']}"},
            )


def _trail(test_db: Database) -> list[tuple[str, str | None, str | None]]:
    with psycopg.connect(test_db.admin_url) as conn:
        return conn.execute(
            "SELECT kind, outcome, error->>'code' FROM arx.audit_events"
            " WHERE kind <> 'admin' ORDER BY seq"
        ).fetchall()


async def test_unreachable_tool_is_502_and_audited(settings: Settings, test_db: Database) -> None:
    resp = await _search_through_the_real_transport(settings, f"http://127.0.0.1:{free_port()}")
    assert resp.status_code == 502, resp.text
    body = resp.json()
    # Nothing was sent: the agent may retry safely.
    assert body["code"] == "connector_unreachable"
    assert body["upstream_status"] is None
    assert FALCON_CLIENT_SECRET not in resp.text
    assert _trail(test_db) == [("decision", None, None), ("result", "error", body["code"])]


async def _token_then_hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A Falcon that issues tokens and drops every API request it has read."""
    while True:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        await reader.readexactly(length)
        if not head.startswith(b"POST /oauth2/token "):
            writer.close()
            return
        body = b'{"access_token": "t0ken", "expires_in": 1799, "token_type": "bearer"}'
        writer.write(
            b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n" % len(body) + body
        )
        await writer.drain()


async def test_a_connection_dropped_after_sending_is_an_unknown_outcome(
    settings: Settings, test_db: Database
) -> None:
    """The tool took the request and hung up: it may have acted. The agent is
    told so (504 outcome_unknown, not a connect error), and the trail records
    the outcome as unknown."""
    server = await asyncio.start_server(_token_then_hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        resp = await _search_through_the_real_transport(settings, f"http://127.0.0.1:{port}")
    finally:
        server.close()
    assert resp.status_code == 504, resp.text
    body = resp.json()
    assert body["code"] == "outcome_unknown"
    assert body["reason"] == "RemoteProtocolError"
    assert _trail(test_db) == [("decision", None, None), ("result", "unknown", "outcome_unknown")]
