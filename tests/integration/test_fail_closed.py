"""Fail closed: with OPA or PostgreSQL gone, ARX answers 503 and executes nothing.

Each test starts its own OPA sidecar or PostgreSQL cluster (the session's are
shared and must stay up), proves the wiring with one successful call, stops
the real process, and checks that the next call is a 503 problem, that the
fake Falcon API saw no new request, and that no decision was recorded.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import psycopg
import pytest

from arx.api.app import create_app
from arx.config import Settings
from arx.devstack.opa import OpaSidecar
from arx.devstack.postgres import LocalPostgres
from arx.devstack.seed import seed_example_org
from arx.devstack.stack import BASE_BUNDLE, create_database, migrate_and_grant
from arx.runtime import Runtime, open_runtime
from arx.sandbox.falcon import FalconState
from arx.sandbox.falcon import create_app as create_falcon_app
from tests.fixtures.arx import (
    BOOTSTRAP_TOKEN,
    FALCON_CLIENT_ID,
    FALCON_CLIENT_SECRET,
    FALCON_URL,
    Example,
)
from tests.fixtures.database import Database

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

EXECUTE = "/v1/sdk/execute"
SEARCH = {"connector": "crowdstrike", "operation": "hosts:search", "params": {}}
CONTAIN = {
    "connector": "crowdstrike",
    "operation": "hosts:contain",
    "params": {"ids": ["a" * 32]},
}
# Once PostgreSQL is back, a request should be served within the pool's own wait
# for a connection: an agent retrying a 503 should not see a second one.
RECOVERY_SECONDS = Settings(database_url="").db_pool_wait_seconds
GIVE_UP_SECONDS = 15.0


async def _migrated_cluster(
    new_local_postgres: Callable[[], LocalPostgres], name: str
) -> tuple[LocalPostgres, str, str]:
    """A started cluster of this test's own with database ``name`` migrated:
    (cluster, superuser URL of the database, app role URL, control role URL)."""
    cluster = new_local_postgres()
    await anyio.to_thread.run_sync(cluster.start)
    admin_url = create_database(cluster.admin_url, name)
    logins = migrate_and_grant(admin_url)
    return cluster, admin_url, logins.app_url, logins.control_url


def _settings(database_url: str, opa_url: str, **overrides: Any) -> Settings:
    """The shape of the ``settings`` fixture, pointed at this test's own services."""
    fields: dict[str, Any] = {
        "database_url": database_url,
        "opa_url": opa_url,
        "kek": os.urandom(32),
        "bootstrap_token": BOOTSTRAP_TOKEN,
        "allow_insecure_connector_urls": True,
        "sandbox_orgs": ("*",),
        "db_pool_min": 1,
        "db_pool_max": 4,
        "spool_dir": tempfile.mkdtemp(prefix="arx-spool-"),
    }
    return Settings(**{**fields, **overrides})


@asynccontextmanager
async def _arx(
    settings: Settings, falcon: FalconState
) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient]]:
    """A runtime and an in-process client, wired like the ``runtime``/``client`` fixtures."""
    transport = httpx.ASGITransport(app=create_falcon_app(falcon))
    async with open_runtime(settings, connector_transport=transport) as rt:
        await rt.pool.wait(timeout=10)
        app = create_app(settings, runtime=rt)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://arx.test"
        ) as client:
            yield rt, client


async def _seed(rt: Runtime) -> Example:
    seeded = await seed_example_org(
        rt, falcon_url=FALCON_URL, client_id=FALCON_CLIENT_ID, client_secret=FALCON_CLIENT_SECRET
    )
    return Example(seeded)


def _recorded(admin_url: str) -> dict[str, int]:
    """Non-admin audit events by kind, plus approval requests."""
    with psycopg.connect(admin_url) as conn:
        rows = conn.execute(
            "SELECT kind, count(*) FROM arx.audit_events WHERE kind <> 'admin' GROUP BY kind"
        ).fetchall()
        approvals = conn.execute("SELECT count(*) FROM arx.approval_requests").fetchone()
    counts = {str(kind): int(n) for kind, n in rows}
    counts["approval_requests"] = int(approvals[0]) if approvals else 0
    return counts


def _unavailable(resp: httpx.Response, code: str) -> dict[str, Any]:
    assert resp.status_code == 503, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json"), resp.headers
    body: dict[str, Any] = resp.json()
    assert body["code"] == code
    assert body["status"] == 503
    assert body["type"].endswith("/" + code)
    assert body["title"]
    assert body["detail"]
    assert body["request_id"] == resp.headers["x-request-id"]
    return body


async def _first_success(
    call: Callable[[], Awaitable[httpx.Response]], *, give_up_after: float
) -> float | None:
    """Seconds until ``call`` first answers 200 (retrying 503s), or None if it never did."""
    started = time.monotonic()
    while time.monotonic() - started < give_up_after:
        resp = await call()
        if resp.status_code == 200:
            return time.monotonic() - started
        _unavailable(resp, "database_unavailable")
        await anyio.sleep(0.2)
    return None


# --- OPA -------------------------------------------------------------------------


async def test_opa_down_answers_503_and_executes_nothing(
    opa_path: Path,
    policy_bundles: list[Path],
    test_db: Database,
    falcon: FalconState,
    tmp_path: Path,
) -> None:
    sidecar = OpaSidecar(opa_path, policy_bundles, log_path=tmp_path / "opa.log")
    await anyio.to_thread.run_sync(sidecar.start)
    try:
        async with _arx(
            _settings(
                test_db.app_url,
                sidecar.url,
                opa_token=sidecar.token,
                control_database_url=test_db.control_url,
            ),
            falcon,
        ) as (rt, client):
            example = await _seed(rt)
            ok = await client.post(EXECUTE, json=SEARCH, headers=example.auth("triage-bot"))
            assert ok.status_code == 200, ok.text
            assert (await client.get("/health")).status_code == 200
            sent = len(falcon.requests)
            assert sent > 0
            recorded = _recorded(test_db.admin_url)
            assert recorded == {"decision": 1, "result": 1, "approval_requests": 0}

            await anyio.to_thread.run_sync(sidecar.stop)
            assert not sidecar.is_running()

            # A read that was just permitted, and a write that would escalate.
            for agent, call in (("triage-bot", SEARCH), ("responder-bot", CONTAIN)):
                resp = await client.post(EXECUTE, json=call, headers=example.auth(agent))
                body = _unavailable(resp, "policy_engine_unavailable")
                assert "event_id" not in body
            assert len(falcon.requests) == sent, "nothing may execute without a decision"
            assert _recorded(test_db.admin_url) == recorded, "no decision without OPA"

            health = await client.get("/health")
            assert health.status_code == 503, health.text
            assert health.json() == {
                "status": "degraded",
                "database": "ok",
                "policy_engine": "unavailable",
            }
    finally:
        await anyio.to_thread.run_sync(sidecar.stop)


async def test_opa_without_a_decision_answers_503_and_executes_nothing(
    opa_path: Path,
    policy_bundles: list[Path],
    test_db: Database,
    falcon: FalconState,
    tmp_path: Path,
) -> None:
    # The org bundles alone: without the base library data.arx.decision is undefined.
    org_bundles = [b for b in policy_bundles if b.name != f"{BASE_BUNDLE}.tar.gz"]
    assert org_bundles
    assert len(org_bundles) == len(policy_bundles) - 1
    sidecar = OpaSidecar(opa_path, org_bundles, log_path=tmp_path / "opa.log")
    await anyio.to_thread.run_sync(sidecar.start)
    try:
        async with _arx(
            _settings(
                test_db.app_url,
                sidecar.url,
                opa_token=sidecar.token,
                control_database_url=test_db.control_url,
            ),
            falcon,
        ) as (rt, client):
            example = await _seed(rt)
            for agent, call in (("triage-bot", SEARCH), ("responder-bot", CONTAIN)):
                resp = await client.post(EXECUTE, json=call, headers=example.auth(agent))
                _unavailable(resp, "policy_engine_unavailable")
            assert falcon.requests == []
            assert _recorded(test_db.admin_url) == {"approval_requests": 0}
    finally:
        await anyio.to_thread.run_sync(sidecar.stop)


async def test_health_is_503_when_opa_has_no_decision(
    opa_path: Path,
    policy_bundles: list[Path],
    test_db: Database,
    falcon: FalconState,
    tmp_path: Path,
) -> None:
    """Readiness must mean "can decide": every bundle active is not enough.

    A replica whose sidecar lacks the base library answers 503 to every
    execute; a load balancer must not send it traffic.
    """
    org_bundles = [b for b in policy_bundles if b.name != f"{BASE_BUNDLE}.tar.gz"]
    sidecar = OpaSidecar(opa_path, org_bundles, log_path=tmp_path / "opa.log")
    await anyio.to_thread.run_sync(sidecar.start)
    try:
        async with _arx(
            _settings(
                test_db.app_url,
                sidecar.url,
                opa_token=sidecar.token,
                control_database_url=test_db.control_url,
            ),
            falcon,
        ) as (_, client):
            health = await client.get("/health")
            assert health.status_code == 503, health.text
            assert health.json()["policy_engine"] == "unavailable"
    finally:
        await anyio.to_thread.run_sync(sidecar.stop)


async def test_a_wrong_sidecar_token_is_a_503_and_nothing_runs(
    opa_sidecar: OpaSidecar, test_db: Database, falcon: FalconState
) -> None:
    """The sidecar answers only its token's holder (opa/authz.rego): an ARX
    configured with another token cannot get a decision, so nothing runs."""
    async with _arx(
        _settings(
            test_db.app_url,
            opa_sidecar.url,
            opa_token="not-the-sidecar-token",
            control_database_url=test_db.control_url,
        ),
        falcon,
    ) as (rt, client):
        example = await _seed(rt)
        sent = len(falcon.requests)
        resp = await client.post(EXECUTE, json=SEARCH, headers=example.auth("triage-bot"))
        _unavailable(resp, "policy_engine_unavailable")
        assert "ARX_OPA_TOKEN" in resp.json()["detail"]
        assert "not-the-sidecar-token" not in resp.text
        assert len(falcon.requests) == sent
        health = await client.get("/health")
        assert health.status_code == 503
        assert health.json()["policy_engine"] == "unavailable"


# --- PostgreSQL --------------------------------------------------------------------


async def test_database_down_answers_503_then_recovers(
    new_local_postgres: Callable[[], LocalPostgres],
    opa_sidecar: OpaSidecar,
    falcon: FalconState,
) -> None:
    cluster, admin_url, app_url, control_url = await _migrated_cluster(
        new_local_postgres, "arx_outage"
    )

    async with _arx(
        _settings(
            app_url, opa_sidecar.url, opa_token=opa_sidecar.token, control_database_url=control_url
        ),
        falcon,
    ) as (rt, client):
        example = await _seed(rt)
        pending = await client.post(EXECUTE, json=CONTAIN, headers=example.auth("responder-bot"))
        assert pending.status_code == 202, pending.text
        poll_url = pending.json()["poll_url"]
        ok = await client.post(EXECUTE, json=SEARCH, headers=example.auth("triage-bot"))
        assert ok.status_code == 200, ok.text
        sent = len(falcon.requests)
        assert sent > 0
        # The test cluster runs with synchronous_commit=off, and an immediate stop
        # is a crash: flush what was committed so recovery does not lose the seed.
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute("CHECKPOINT")

        await anyio.to_thread.run_sync(lambda: cluster.stop(mode="immediate"))
        assert not cluster.is_running()

        resp = await client.post(EXECUTE, json=SEARCH, headers=example.auth("triage-bot"))
        _unavailable(resp, "database_unavailable")
        assert len(falcon.requests) == sent, "nothing may execute without a recorded decision"
        # Everything else the agent calls is a 503 too, never a 500.
        poll = await client.get(poll_url, headers=example.auth("responder-bot"))
        _unavailable(poll, "database_unavailable")
        # Discovery needs no database: the key was resolved moments ago and
        # is remembered for a few seconds.
        listing = await client.get("/v1/sdk/connectors", headers=example.auth("triage-bot"))
        assert listing.status_code == 200, listing.text
        health = await client.get("/health")
        assert health.status_code == 503, health.text
        assert health.json() == {
            "status": "degraded",
            "database": "unavailable",
            "policy_engine": "ok",
        }

        await anyio.to_thread.run_sync(cluster.start)
        recovered_after = await _first_success(
            lambda: client.post(EXECUTE, json=SEARCH, headers=example.auth("triage-bot")),
            give_up_after=GIVE_UP_SECONDS,
        )
        assert recovered_after is not None, f"still 503 {GIVE_UP_SECONDS}s after the restart"
        assert len(falcon.calls("/devices/queries/devices/v1")) == 2
        poll = await client.get(poll_url, headers=example.auth("responder-bot"))
        assert poll.status_code == 200, poll.text
        assert poll.json()["status"] == "pending"

    # The outage left no trace: two permitted searches and one escalation, nothing else.
    assert _recorded(admin_url) == {"decision": 3, "result": 2, "approval_requests": 1}
    # Checked last so that a slow recovery does not hide the checks above.
    assert recovered_after <= RECOVERY_SECONDS, (
        f"the pool took {recovered_after:.1f}s to serve requests again once PostgreSQL was back"
    )
