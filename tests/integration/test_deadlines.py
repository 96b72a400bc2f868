"""Hard limits: a frozen dependency costs an agent a bounded wait, never a hang,
and a result the database cannot take is kept and written later.

The dependencies are real processes frozen with SIGSTOP (a hung host, a
stuck disk) or stopped, on their own OPA sidecar or PostgreSQL cluster.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import msgspec
import psycopg
import pytest

from arx.api.app import create_app
from arx.config import Settings
from arx.db.pool import connection
from arx.devstack.opa import OpaSidecar
from arx.devstack.postgres import LocalPostgres
from arx.errors import DatabaseUnavailableError
from arx.runtime import open_runtime
from arx.sandbox.falcon import FalconState
from arx.sandbox.falcon import create_app as create_falcon_app
from tests.fixtures.database import Database
from tests.integration.test_fail_closed import (
    CONTAIN,
    EXECUTE,
    SEARCH,
    _arx,
    _migrated_cluster,
    _recorded,
    _seed,
    _settings,
)

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

QUERIES = "/devices/queries/devices/v1"


def _process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


@contextmanager
def _frozen(root: int) -> Iterator[None]:
    """SIGSTOP a process and all its children; SIGCONT them on the way out."""
    pids = _process_tree(root)
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


async def _timed(call: Callable[[], Any]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    resp = await call()
    return resp, time.monotonic() - started


async def test_frozen_opa_is_a_prompt_503_and_holds_no_database_connection(
    opa_path: Path,
    policy_bundles: list[Path],
    test_db: Database,
    falcon: FalconState,
    tmp_path: Path,
) -> None:
    sidecar = OpaSidecar(opa_path, policy_bundles, log_path=tmp_path / "opa.log")
    await anyio.to_thread.run_sync(sidecar.start)
    settings = _settings(
        test_db.app_url,
        sidecar.url,
        opa_token=sidecar.token,
        control_database_url=test_db.control_url,
        opa_timeout_seconds=1.0,
    )
    try:
        async with _arx(settings, falcon) as (rt, client):
            example = await _seed(rt)
            ok = await client.post(EXECUTE, json=SEARCH, headers=example.auth("triage-bot"))
            assert ok.status_code == 200, ok.text
            sent, recorded = len(falcon.requests), _recorded(test_db.admin_url)

            answers: list[tuple[httpx.Response, float]] = []
            health: list[httpx.Response] = []

            async def call(agent: str, body: dict[str, Any]) -> None:
                answers.append(
                    await _timed(
                        lambda: client.post(EXECUTE, json=body, headers=example.auth(agent))
                    )
                )

            with _frozen(sidecar.pid):
                async with anyio.create_task_group() as tg:
                    for n in range(30):
                        agent, body = (
                            ("triage-bot", SEARCH) if n % 2 else ("responder-bot", CONTAIN)
                        )
                        tg.start_soon(call, agent, body)
                    await anyio.sleep(0.3)  # the 30 calls are all waiting on OPA now
                    health.append(await client.get("/health"))

            assert len(answers) == 30
            codes = set()
            for resp, seconds in answers:
                assert resp.status_code == 503, resp.text
                codes.add(resp.json()["code"])
                # One OPA timeout (1 s) for the calls that asked it, and at most
                # one more for those queued behind their agent's earlier call.
                assert seconds < 2.5, f"a call waited {seconds:.1f}s on a frozen OPA"
            assert "policy_engine_unavailable" in codes
            assert codes <= {"policy_engine_unavailable", "session_contention"}
            # While 30 calls waited on OPA, the pool (4 connections) stayed free.
            assert health[0].json()["database"] == "ok", health[0].text
            assert len(falcon.requests) == sent, "nothing may execute without a decision"
            assert _recorded(test_db.admin_url) == recorded
    finally:
        await anyio.to_thread.run_sync(sidecar.stop)


async def test_frozen_database_answers_every_call_within_the_deadline(
    new_local_postgres: Callable[[], LocalPostgres],
    opa_sidecar: OpaSidecar,
    falcon: FalconState,
) -> None:
    cluster, _, app_url, control_url = await _migrated_cluster(new_local_postgres, "arx_frozen")
    deadline = 2.0
    settings = _settings(
        app_url,
        opa_sidecar.url,
        opa_token=opa_sidecar.token,
        control_database_url=control_url,
        execute_deadline_seconds=deadline,
    )

    async with _arx(settings, falcon) as (rt, client):
        example = await _seed(rt)
        ok = await client.post(EXECUTE, json=SEARCH, headers=example.auth("triage-bot"))
        assert ok.status_code == 200, ok.text
        sent = len(falcon.requests)
        # An agent whose key has never been seen: its lookup needs the database too.
        unknown_key = {"authorization": "Bearer arx_0123456789abcdef_notarealsecret"}

        answers: list[tuple[httpx.Response, float]] = []

        async def call(headers: dict[str, str]) -> None:
            answers.append(await _timed(lambda: client.post(EXECUTE, json=SEARCH, headers=headers)))

        with _frozen(cluster.postmaster_pid()):
            async with anyio.create_task_group() as tg:
                for n in range(20):
                    tg.start_soon(call, unknown_key if n % 5 == 0 else example.auth("triage-bot"))

        assert len(answers) == 20
        codes = set()
        for resp, seconds in answers:
            assert resp.status_code == 503, resp.text
            codes.add(resp.json()["code"])
            assert seconds < deadline + 1.0, (
                f"a call took {seconds:.1f}s with a {deadline}s deadline"
            )
        # Those queued behind their agent's stuck call give up as contention.
        assert "database_unavailable" in codes
        assert codes <= {"database_unavailable", "session_contention", "deadline_exceeded"}
        assert len(falcon.requests) == sent, "nothing may execute without a recorded decision"

        # Thawed, the database serves again (the abandoned queries were cancelled).
        for _ in range(50):
            resp = await client.post(EXECUTE, json=SEARCH, headers=example.auth("triage-bot"))
            if resp.status_code == 200:
                break
            await anyio.sleep(0.2)
        assert resp.status_code == 200, resp.text


async def test_result_spooled_while_the_database_is_down_reaches_the_trail_later(
    new_local_postgres: Callable[[], LocalPostgres],
    opa_sidecar: OpaSidecar,
    falcon: FalconState,
    tmp_path: Path,
) -> None:
    """PostgreSQL stops between the decision's commit and the result's write:
    the agent still gets the tool's answer, the result waits in the spool, and
    a *new* API process writes it to the trail once the database is back."""
    cluster, admin_url, app_url, control_url = await _migrated_cluster(
        new_local_postgres, "arx_spool"
    )
    spool = tmp_path / "spool"
    settings = _settings(
        app_url,
        opa_sidecar.url,
        opa_token=opa_sidecar.token,
        control_database_url=control_url,
        spool_dir=str(spool),
    )

    falcon_app = create_falcon_app(falcon)
    stop_on_query = {"armed": False}

    async def falcon_that_outlives_postgres(scope: Any, receive: Any, send: Any) -> None:
        if stop_on_query["armed"] and scope.get("path") == QUERIES:
            stop_on_query["armed"] = False
            await anyio.to_thread.run_sync(lambda: cluster.stop(mode="fast"))
        await falcon_app(scope, receive, send)

    async with _arx(settings, falcon) as (rt, client):
        example = await _seed(rt)
    # The fault: the tool answers, but by then PostgreSQL is gone.
    transport = httpx.ASGITransport(app=falcon_that_outlives_postgres)
    async with open_runtime(settings, connector_transport=transport) as rt:
        await rt.pool.wait(timeout=10)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(settings, runtime=rt)),
            base_url="http://arx.test",
        ) as client:
            stop_on_query["armed"] = True
            resp = await client.post(EXECUTE, json=SEARCH, headers=example.auth("triage-bot"))
            assert resp.status_code == 200, resp.text
            assert resp.json()["result"]["resources"], "the agent gets what the tool did"
            event_id = resp.json()["event_id"]
        assert not cluster.is_running()
        spooled = sorted(spool.glob("*.json"))
        assert len(spooled) == 1, "the result event must wait in the spool"
        assert oct(spooled[0].stat().st_mode & 0o777) == "0o600"

    # This API process is gone. The database comes back; a new process replays.
    await anyio.to_thread.run_sync(cluster.start)
    async with _arx(settings, falcon):
        for _ in range(100):
            if not list(spool.glob("*.json")):
                break
            await anyio.sleep(0.1)
    assert not list(spool.glob("*.json")), "the spool must be emptied into the trail"

    with psycopg.connect(admin_url) as conn:
        rows = conn.execute(
            "SELECT kind, outcome, decision_id::text, result IS NOT NULL FROM arx.audit_events"
            " WHERE kind <> 'admin' ORDER BY seq"
        ).fetchall()
    assert rows == [("decision", None, None, False), ("result", "success", event_id, True)]


async def test_a_flood_of_unknown_keys_holds_at_most_half_the_pool(
    new_local_postgres: Callable[[], LocalPostgres],
    opa_sidecar: OpaSidecar,
    falcon: FalconState,
) -> None:
    """Keys with random ids defeat any cache; their lookups may take at most
    half the pool, so agents already known keep connections to work with.
    A key seen a moment ago is answered from memory, even with the database
    frozen: a known agent is not slowed, a bogus key not looked up twice."""
    cluster, _, app_url, control_url = await _migrated_cluster(new_local_postgres, "arx_flood")
    settings = _settings(
        app_url,
        opa_sidecar.url,
        opa_token=opa_sidecar.token,
        control_database_url=control_url,
        db_pool_min=4,
        db_pool_max=4,
        execute_deadline_seconds=2.0,
    )
    async with _arx(settings, falcon) as (rt, client):
        example = await _seed(rt)
        bogus = {"authorization": "Bearer arx_00000000000000aa_bogus"}
        assert (await client.post(EXECUTE, json=SEARCH, headers=bogus)).status_code == 401
        ok = await client.get("/v1/sdk/connectors", headers=example.auth("triage-bot"))
        assert ok.status_code == 200, ok.text
        await rt.pool.wait(timeout=10)
        in_use: list[int] = []
        answers: list[httpx.Response] = []

        async def unknown(n: int) -> None:
            headers = {"authorization": f"Bearer arx_{n:016x}_x"}
            answers.append(await client.post(EXECUTE, json=SEARCH, headers=headers))

        with _frozen(cluster.postmaster_pid()):
            async with anyio.create_task_group() as tg:
                for n in range(10):
                    tg.start_soon(unknown, n + 1)
                await anyio.sleep(0.5)
                stats = rt.pool.get_stats()
                in_use.append(stats["pool_size"] - stats["pool_available"])
                # Remembered answers need no database.
                again = await client.post(EXECUTE, json=SEARCH, headers=bogus)
                known = await client.get("/v1/sdk/connectors", headers=example.auth("triage-bot"))
        assert in_use == [2], f"{in_use[0]} of 4 connections held by unknown-key lookups"
        assert again.status_code == 401, again.text
        assert known.status_code == 200, known.text
        assert {r.status_code for r in answers} == {503}


async def test_the_app_role_has_server_side_time_limits(
    settings: Settings, test_db: Database, falcon: FalconState
) -> None:
    """A statement ARX's pool runs is ended by the server at its limit (a 503),
    and the role itself carries limits for sessions that set none (the CLI)."""
    quick = msgspec.structs.replace(settings, db_statement_timeout_seconds=0.3)
    async with _arx(quick, falcon) as (rt, _):
        async with connection(rt.pool) as conn:
            cur = await conn.execute("SHOW idle_in_transaction_session_timeout")
            idle = round(quick.db_idle_in_transaction_timeout_seconds)
            assert await cur.fetchone() == (f"{idle}s",)
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailableError):
            async with connection(rt.pool) as conn:
                await conn.execute("SELECT pg_sleep(3)")
        assert time.monotonic() - started < 2.0
    with psycopg.connect(test_db.app_url) as conn:
        assert conn.execute("SHOW statement_timeout").fetchone() == ("5s",)
        assert conn.execute("SHOW idle_in_transaction_session_timeout").fetchone() == ("10s",)


async def test_one_lookup_per_unknown_key_however_many_ask_at_once(
    new_local_postgres: Callable[[], LocalPostgres],
    opa_sidecar: OpaSidecar,
    falcon: FalconState,
) -> None:
    """Ten requests with one key id never seen: one lookup, shared (a frozen
    database shows how many connections the lookups hold)."""
    cluster, _, app_url, control_url = await _migrated_cluster(new_local_postgres, "arx_single")
    settings = _settings(
        app_url,
        opa_sidecar.url,
        opa_token=opa_sidecar.token,
        control_database_url=control_url,
        db_pool_min=4,
        db_pool_max=4,
        execute_deadline_seconds=2.0,
    )
    async with _arx(settings, falcon) as (rt, client):
        await rt.pool.wait(timeout=10)
        headers = {"authorization": "Bearer arx_00000000000000bb_same"}
        in_use: list[int] = []
        answers: list[httpx.Response] = []

        async def ask() -> None:
            answers.append(await client.post(EXECUTE, json=SEARCH, headers=headers))

        with _frozen(cluster.postmaster_pid()):
            async with anyio.create_task_group() as tg:
                for _ in range(10):
                    tg.start_soon(ask)
                await anyio.sleep(0.5)
                stats = rt.pool.get_stats()
                in_use.append(stats["pool_size"] - stats["pool_available"])
        assert in_use == [1]
        assert {r.status_code for r in answers} == {503}
