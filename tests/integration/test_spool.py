"""The result spool against the real database: replays are idempotent, an
event the trail refuses for good is set aside without holding up the others,
and a spool that cannot be written is refused at start-up and never turns a
tool's answer into a 500."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import httpx
import msgspec
import psycopg
import pytest

from arx.audit.spool import ResultSpool, SpoolUnusableError
from arx.audit.trail import storable
from arx.audit.types import ResultEvent
from arx.deadline import Deadline
from arx.runtime import Runtime
from tests.fixtures.arx import Example
from tests.fixtures.database import Database

pytestmark = pytest.mark.anyio

EXECUTE = "/v1/sdk/execute"
SEARCH = {"connector": "crowdstrike", "operation": "hosts:search", "params": {}}


def _result_for(example: Example, decision_id: uuid.UUID) -> ResultEvent:
    return ResultEvent(
        id=uuid.uuid4(),
        org_id=example.seeded.org_id,
        agent_id=example.seeded.agent_ids["triage-bot"],
        decision_id=decision_id,
        connector="crowdstrike",
        operation="hosts:search",
        outcome="success",
        result={"resources": []},
    )


def _results(test_db: Database) -> list[tuple[uuid.UUID, uuid.UUID]]:
    with psycopg.connect(test_db.admin_url) as conn:
        rows = conn.execute(
            "SELECT id, decision_id FROM arx.audit_events WHERE kind = 'result' ORDER BY seq"
        ).fetchall()
    return [(r[0], r[1]) for r in rows]


async def test_replay_is_idempotent_and_sets_refused_events_aside(
    client: httpx.AsyncClient, example: Example, runtime: Runtime, test_db: Database
) -> None:
    ok = await client.post(EXECUTE, json=SEARCH, headers=example.auth("triage-bot"))
    assert ok.status_code == 200, ok.text
    decision_id = uuid.UUID(ok.json()["event_id"])
    (already,) = _results(test_db)
    spool = runtime.trail.spool

    # 1. A result whose first write did land (it is in the trail already).
    first = _result_for(example, decision_id)
    first = msgspec.structs.replace(first, id=already[0])
    await spool.put(first.id, storable(first))
    # 2. One the trail refuses for good: its decision does not exist.
    orphan = _result_for(example, uuid.uuid4())
    await spool.put(orphan.id, storable(orphan))
    # 3. A good one that was waiting behind them.
    waiting = _result_for(example, decision_id)
    await spool.put(waiting.id, storable(waiting))

    assert await runtime.trail.replay_spool() == 2
    assert spool.pending() == []
    assert [p.name for p in (spool.directory / "failed").iterdir()] == [f"{orphan.id}.json"]
    assert _results(test_db) == [already, (waiting.id, decision_id)], "no duplicate, none lost"


def test_an_unwritable_spool_is_refused_at_start_up(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    with pytest.raises(SpoolUnusableError, match="ARX_SPOOL_DIR"):
        ResultSpool(blocker / "spool").ensure()
    usable = ResultSpool(tmp_path / "spool")
    usable.ensure()
    assert oct(usable.directory.stat().st_mode & 0o777) == "0o700"
    assert list(usable.directory.iterdir()) == []


async def test_a_spool_that_fails_never_turns_the_tools_answer_into_an_error(
    client: httpx.AsyncClient,
    example: Example,
    runtime: Runtime,
    test_db: Database,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Database and spool both refuse the result: the agent still gets what the
    tool did, and the loss is logged as critical (never silently)."""
    ok = await client.post(EXECUTE, json=SEARCH, headers=example.auth("triage-bot"))
    event = _result_for(example, uuid.uuid4())  # refused: no such decision
    spool = runtime.trail.spool
    spool.directory.parent.mkdir(parents=True, exist_ok=True)
    spool.directory.write_text("")  # the spool path is a file: every put fails
    with caplog.at_level(logging.CRITICAL, logger="arx.audit"):
        # A refused write would normally go to the spool; here that fails too.
        await runtime.trail.record_result(event, deadline=Deadline(5))
    assert ok.status_code == 200
    assert any("lost" in r.getMessage() for r in caplog.records)
