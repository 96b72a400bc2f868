"""The production connector transport (aiohttp under httpx) against a tool that
is not listening: a 502 naming the failure, and an error result in the trail."""

from __future__ import annotations

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


async def test_unreachable_tool_is_502_and_audited(settings: Settings, test_db: Database) -> None:
    async with open_runtime(settings) as rt:  # no injected transport: the real one
        await rt.pool.wait(timeout=10)
        seeded = await seed_example_org(
            rt,
            falcon_url=f"http://127.0.0.1:{free_port()}",
            client_id=FALCON_CLIENT_ID,
            client_secret=FALCON_CLIENT_SECRET,
        )
        app = create_app(settings, runtime=rt)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://arx.test"
        ) as client:
            resp = await client.post(
                "/v1/sdk/execute",
                json={"connector": "crowdstrike", "operation": "hosts:search", "params": {}},
                headers={"authorization": f"Bearer {seeded.api_keys['triage-bot']}"},
            )
    assert resp.status_code == 502, resp.text
    body = resp.json()
    assert body["code"].startswith("connector")
    assert body["upstream_status"] is None
    assert FALCON_CLIENT_SECRET not in resp.text
    with psycopg.connect(test_db.admin_url) as conn:
        rows = conn.execute(
            "SELECT kind, outcome, error->>'code' FROM arx.audit_events"
            " WHERE kind <> 'admin' ORDER BY seq"
        ).fetchall()
    assert [r[0] for r in rows] == ["decision", "result"]
    assert rows[1][1] == "error"
    assert rows[1][2] == body["code"]
