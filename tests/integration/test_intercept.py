"""The intercept's session: what policy sees of an agent's history, and that
concurrent calls of one agent are each decided on everything before them.

Real OPA with the example bundle, real PostgreSQL, the fake Falcon in-process.
"""

from __future__ import annotations

import uuid
from contextlib import AsyncExitStack
from typing import Any

import anyio
import httpx
import msgspec
import psycopg
import pytest

from arx.api.app import create_app
from arx.audit.trail import RESULT_WRITE_SECONDS, Trail
from arx.audit.types import DecisionEvent
from arx.config import Settings
from arx.deadline import Deadline
from arx.errors import DeadlineExceededError
from arx.runtime import Runtime, open_runtime
from arx.sandbox.falcon import FalconState
from arx.sandbox.falcon import create_app as create_falcon_app
from tests.fixtures.arx import Example, agent_session
from tests.fixtures.database import Database

pytestmark = pytest.mark.anyio

EXECUTE = "/v1/sdk/execute"
SEARCH = {"connector": "crowdstrike", "operation": "hosts:search", "params": {}}
BURST = "write burst"


def _contain(n: int) -> dict[str, Any]:
    return {
        "connector": "crowdstrike",
        "operation": "hosts:contain",
        "params": {"ids": [f"{n:032x}"]},
    }


def _decisions(test_db: Database, agent_id: uuid.UUID) -> list[dict[str, Any]]:
    with psycopg.connect(test_db.admin_url) as conn:
        cur = conn.execute(
            "SELECT agent_seq, verdict, risk_score, reasons, targets, tally_containment,"
            " tally_denied FROM arx.audit_events WHERE kind = 'decision' AND agent_id = %s"
            " ORDER BY agent_seq",
            (agent_id,),
        )
        names = [d.name for d in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


async def test_session_counts_every_kind_denial_and_target_over_time(
    client: httpx.AsyncClient, example: Example, runtime: Runtime
) -> None:
    empty = await agent_session(runtime, example, "responder-bot")
    assert empty["recent"] == []
    assert empty["windows"]["5m"]["actions"] == 0

    for _ in range(3):
        ok = await client.post(EXECUTE, json=SEARCH, headers=example.auth("responder-bot"))
        assert ok.status_code == 200, ok.text
    for n in (1, 2, 2):  # two distinct hosts, one of them twice
        pending = await client.post(
            EXECUTE, json=_contain(n), headers=example.auth("responder-bot")
        )
        assert pending.status_code == 202, pending.text

    session = await agent_session(runtime, example, "responder-bot")
    recent = session["recent"]
    assert [(e["operation"], e["verdict"]) for e in recent] == [
        ("hosts:contain", "ESCALATE"),
        ("hosts:contain", "ESCALATE"),
        ("hosts:contain", "ESCALATE"),
        ("hosts:search", "PERMIT"),
        ("hosts:search", "PERMIT"),
        ("hosts:search", "PERMIT"),
    ], "newest first"
    assert set(recent[0]) == {"connector", "operation", "kind", "verdict", "at_ns"}
    assert all(isinstance(e["at_ns"], int) for e in recent)
    assert recent[0]["at_ns"] > recent[-1]["at_ns"]
    for width in ("1m", "5m", "60m"):
        assert session["windows"][width] == {
            "actions": 6,
            "non_read": 3,
            "denied": 0,
            "targets": 2,
            "kinds": {"read": 3, "write": 0, "containment": 3, "destructive": 0},
        }
    # Another agent's history is its own.
    other = await agent_session(runtime, example, "triage-bot")
    assert other["windows"]["60m"]["actions"] == 0


async def test_reads_cannot_push_writes_out_of_the_window(
    client: httpx.AsyncClient, example: Example, runtime: Runtime
) -> None:
    """Padding the history with cheap reads hides nothing: windows count time."""
    for n in range(2):
        pending = await client.post(
            EXECUTE, json=_contain(n), headers=example.auth("responder-bot")
        )
        assert pending.status_code == 202, pending.text
    for _ in range(30):
        ok = await client.post(EXECUTE, json=SEARCH, headers=example.auth("responder-bot"))
        assert ok.status_code == 200, ok.text

    session = await agent_session(runtime, example, "responder-bot")
    assert len(session["recent"]) == runtime.settings.session_recent
    assert all(e["kind"] == "read" for e in session["recent"])
    assert session["windows"]["5m"]["kinds"]["containment"] == 2
    assert session["windows"]["5m"]["non_read"] == 2


async def test_old_decisions_leave_the_short_windows(
    client: httpx.AsyncClient, example: Example, runtime: Runtime, test_db: Database
) -> None:
    for n in range(2):
        pending = await client.post(
            EXECUTE, json=_contain(n), headers=example.auth("responder-bot")
        )
        assert pending.status_code == 202, pending.text
    # Age the two decisions by ten minutes, as the superuser (the app cannot).
    # Ten minutes back may be last month: a row moved to another partition is
    # inserted there, so the stamp (the writer's time refused) is off too.
    # One transaction: no other writer ever sees the guards off.
    with psycopg.connect(test_db.admin_url) as conn, conn.transaction():
        conn.execute("SELECT arx.create_audit_partition((now() - interval '1 hour')::date)")
        for trigger in ("audit_events_no_update_delete", "audit_events_stamp"):
            conn.execute(f"ALTER TABLE arx.audit_events DISABLE TRIGGER {trigger}")
        conn.execute(
            "UPDATE arx.audit_events SET created_at = created_at - interval '10 minutes'"
            " WHERE kind = 'decision'"
        )
        for trigger in ("audit_events_no_update_delete", "audit_events_stamp"):
            conn.execute(f"ALTER TABLE arx.audit_events ENABLE ALWAYS TRIGGER {trigger}")
    pending = await client.post(EXECUTE, json=_contain(9), headers=example.auth("responder-bot"))
    assert pending.status_code == 202, pending.text

    windows = (await agent_session(runtime, example, "responder-bot"))["windows"]
    assert windows["1m"]["kinds"]["containment"] == 1
    assert windows["5m"]["kinds"]["containment"] == 1
    assert windows["60m"]["kinds"]["containment"] == 3
    assert windows["5m"]["targets"] == 1
    assert windows["60m"]["targets"] == 3


async def _eight_containments(
    clients: list[httpx.AsyncClient], example: Example
) -> list[httpx.Response]:
    """Eight containments by responder-bot at once, spread over ``clients``."""
    results: list[httpx.Response] = []

    async def contain(n: int) -> None:
        client = clients[n % len(clients)]
        results.append(
            await client.post(EXECUTE, json=_contain(n), headers=example.auth("responder-bot"))
        )

    async with anyio.create_task_group() as tg:
        for n in range(8):
            tg.start_soon(contain, n)
    return results


async def test_concurrent_calls_of_one_agent_each_see_the_ones_before(
    client: httpx.AsyncClient, example: Example, test_db: Database
) -> None:
    """Eight containments at once: the write-burst factor must fire from the
    sixth on. If all eight were decided on the same (empty) session, none would
    see a burst; with one agent's decisions serialised, exactly three do."""
    results = await _eight_containments([client], example)
    assert sorted(r.status_code for r in results) == [202] * 5 + [403] * 3

    decisions = _decisions(test_db, example.seeded.agent_ids["responder-bot"])
    assert [d["agent_seq"] for d in decisions] == list(range(1, 9))
    assert [any(BURST in r for r in d["reasons"]) for d in decisions] == [False] * 5 + [True] * 3
    assert [d["verdict"] for d in decisions] == ["ESCALATE"] * 5 + ["DENY"] * 3
    assert [d["tally_containment"] for d in decisions] == list(range(1, 9))
    assert [d["tally_denied"] for d in decisions] == [0] * 5 + [1, 2, 3]
    assert sorted(d["targets"][0] for d in decisions) == [f"{n:032x}" for n in range(8)]


async def test_concurrent_calls_across_two_api_processes_are_serialised_by_the_database(
    settings: Settings, example: Example, falcon: FalconState, test_db: Database
) -> None:
    """Two runtimes (as two API processes would have) share nothing but
    PostgreSQL: the compare-and-swap on the agent's decision number alone
    keeps their decisions in one order, each made on all the earlier ones."""

    async def open_client(stack: AsyncExitStack) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=create_falcon_app(falcon))
        rt = await stack.enter_async_context(open_runtime(settings, connector_transport=transport))
        await rt.pool.wait(timeout=10)
        return await stack.enter_async_context(
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=create_app(settings, runtime=rt)),
                base_url="http://arx.test",
            )
        )

    async with AsyncExitStack() as stack:
        results = await _eight_containments([await open_client(stack) for _ in range(2)], example)

    assert sorted(r.status_code for r in results) == [202] * 5 + [403] * 3
    decisions = _decisions(test_db, example.seeded.agent_ids["responder-bot"])
    assert [d["agent_seq"] for d in decisions] == list(range(1, 9))
    assert [any(BURST in r for r in d["reasons"]) for d in decisions] == [False] * 5 + [True] * 3


async def test_a_decision_made_on_a_stale_session_is_not_recorded(
    example: Example, runtime: Runtime, test_db: Database
) -> None:
    deadline = Deadline(5)
    who = await runtime.auth.authenticate(
        f"Bearer {example.seeded.api_keys['triage-bot']}", deadline
    )
    ctx = await runtime.trail.read_context(who, "crowdstrike", deadline)

    def event() -> DecisionEvent:
        return DecisionEvent(
            id=uuid.uuid4(),
            org_id=who.org_id,
            agent_id=who.agent_id,
            connector="crowdstrike",
            operation="hosts:search",
            operation_kind="read",
            params={},
            targets=None,
            verdict="PERMIT",
            risk_score=10,
            policy_id="default:read",
            reasons=[],
            bundle_revisions={},
            request_id=None,
        )

    first = await runtime.trail.record_decision(
        event(), session=ctx, approval=None, deadline=deadline
    )
    assert first is not None
    assert first.agent_seq == ctx.head_seq + 1
    # A second decision made on the same (now stale) session is refused.
    stale = await runtime.trail.record_decision(
        event(), session=ctx, approval=None, deadline=deadline
    )
    assert stale is None
    assert len(_decisions(test_db, who.agent_id)) == 1


def _rows_read(conn: psycopg.Connection[Any]) -> int:
    """Tuples this database returned to queries so far (this backend's counts flushed)."""
    conn.execute("SELECT pg_stat_force_next_flush()")
    conn.execute("SELECT pg_stat_clear_snapshot()")
    row = conn.execute(
        "SELECT tup_returned FROM pg_stat_database WHERE datname = current_database()"
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_reading_and_recording_a_decision_cost_the_same_however_long_the_history(
    test_db: Database,
) -> None:
    """Reading the session, recording the decision (with its approval) and the
    result are index probes, never a scan of the history: rows read per call
    stay flat from 50 to 500 earlier decisions, in a database whose plans
    (and foreign-key checks' plans) were made while it was empty, and after
    the table was analyzed (the generic plans of the functions). Plans that
    picked the wrong index once read the agent's, or the org's, whole history
    on every call."""
    org, agent = uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(test_db.admin_url, autocommit=True) as admin:
        # The count is the database's: autovacuum's own reads (a VACUUM, a
        # BRIN summary) landing in a measured window added hundreds of rows
        # per decision in CI. What its ANALYZE does to plans, the explicit
        # ANALYZE below does at a known moment.
        # Settings of a partitioned table are its partitions'.
        months = admin.execute(
            "SELECT inhrelid::regclass::text FROM pg_inherits"
            " WHERE inhparent = 'arx.audit_events'::regclass"
        ).fetchall()
        for table in (*(m for (m,) in months), "arx.approval_requests", "arx.agent_heads"):
            admin.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
        admin.execute("INSERT INTO arx.orgs (id, slug, name) VALUES (%s, 'flat', 'Flat')", (org,))
        admin.execute(
            "INSERT INTO arx.agents (id, org_id, name, intent) VALUES (%s, %s, 'bot', '{}')",
            (agent, org),
        )
    event = {
        "org_id": str(org),
        "agent_id": str(agent),
        "connector": "crowdstrike",
        "params": {},
        "targets": ["h"],
        "verdict": "PERMIT",
        "risk_score": 10,
        "reasons": [],
        "bundle_revisions": {},
    }
    with psycopg.connect(test_db.app_url, autocommit=True) as conn:

        def decide(kind: str) -> None:
            row = conn.execute(
                "SELECT head_seq, head_tallies FROM arx.execute_context(%s, %s, %s, %s)",
                (org, agent, "crowdstrike", 10),
            ).fetchone()
            assert row is not None
            decision_id = str(uuid.uuid4())
            doc = {**event, "id": decision_id, "operation": kind, "operation_kind": kind}
            # Reads get a result event; containments an approval request.
            approval = None
            if kind != "read":
                approval = {"id": str(uuid.uuid4()), "request_hash": "00" * 32, "ttl_seconds": 60}
            recorded = conn.execute(
                "SELECT agent_seq, decided_at, decision_seq"
                " FROM arx.record_decision(%s::jsonb, %s, %s, %s::jsonb)",
                (_json(doc), row[0], row[1], _json(approval) if approval else None),
            ).fetchone()
            assert recorded is not None
            assert recorded[0] == row[0] + 1
            if kind == "read":
                result = {
                    "id": str(uuid.uuid4()),
                    "org_id": str(org),
                    "agent_id": str(agent),
                    "decision_id": decision_id,
                    "connector": "crowdstrike",
                    "operation": kind,
                    "outcome": "success",
                    "result": {"resources": []},
                    "decided_at": recorded[1].isoformat(),
                    "decision_seq": recorded[2],
                }
                conn.execute("SELECT arx.record_result(%s::jsonb)", (_json(result),))

        def rows_per_decision(kind: str, history: int, analyzed: bool = False) -> float:
            while _head(conn, org, agent) < history:
                decide(kind)
            if analyzed:
                # Autovacuum may analyze at any moment; the cached generic plans
                # made from those statistics must keep the bounds too.
                with psycopg.connect(test_db.admin_url, autocommit=True) as owner:
                    owner.execute("ANALYZE arx.audit_events")
            before = _rows_read(conn)
            for _ in range(20):
                decide(kind)
            return (_rows_read(conn) - before) / 20

        short, long = rows_per_decision("read", 50), rows_per_decision("read", 500)
        assert long <= short + 2, f"{short} rows read per decision at 50, {long} at 500"
        assert long < 40, f"{long} rows read per decision"
        # Targeted writes are counted over at most the last 200 of the hour.
        capped = rows_per_decision("containment", 800, analyzed=True)
        more = rows_per_decision("containment", 1200, analyzed=True)
        assert more <= capped + 2, f"{capped} rows with 280 targeted writes, {more} with 680"
        assert more < 40 + 200 + 10, f"{more} rows read per decision"


def _json(doc: dict[str, Any]) -> str:
    return msgspec.json.encode(doc).decode()


def _head(conn: psycopg.Connection[Any], org: uuid.UUID, agent: uuid.UUID) -> int:
    row = conn.execute(
        "SELECT head_seq FROM arx.execute_context(%s, %s, 'crowdstrike', 0)", (org, agent)
    ).fetchone()
    assert row is not None
    return int(row[0])


class _Interloper(Trail):
    """The real trail, with another process's decision landing once between
    this call's session read and its record: the compare-and-swap must refuse
    the first record, and the intercept must read and decide again."""

    def __init__(self, inner: Trail, who: Any) -> None:
        self.__dict__.update(inner.__dict__)
        self.who = who
        self.records: list[bool] = []
        self.reads = 0

    async def read_context(self, who: Any, connector: str, deadline: Deadline) -> Any:
        self.reads += 1
        return await super().read_context(who, connector, deadline)

    async def record_decision(self, event: DecisionEvent, **kw: Any) -> Any:
        if not self.records:
            ctx = await super().read_context(self.who, "crowdstrike", kw["deadline"])
            other = msgspec.structs.replace(event, id=uuid.uuid4(), operation="hosts:get")
            assert await super().record_decision(other, **{**kw, "session": ctx}) is not None
        recorded = await super().record_decision(event, **kw)
        self.records.append(recorded is not None)
        return recorded


async def test_a_decision_made_on_a_session_that_moved_on_is_made_again(
    runtime: Runtime, example: Example, test_db: Database
) -> None:
    deadline = Deadline(10)
    who = await runtime.auth.authenticate(example.auth("triage-bot")["authorization"], deadline)
    trail = _Interloper(runtime.trail, who)
    intercept = runtime.intercept
    intercept._trail = trail  # this test's runtime only
    call = intercept.prepare("crowdstrike", "hosts:search", {})
    outcome = await intercept.execute(who, call, deadline=deadline)

    assert trail.records == [False, True], "the stale decision is refused, the fresh one kept"
    assert trail.reads == 2, "the session is read again before deciding again"
    decisions = _decisions(test_db, who.agent_id)
    assert [d["agent_seq"] for d in decisions] == [1, 2]
    assert str(outcome.event_id) in {str(e) for e in _decision_ids(test_db)}


def _decision_ids(test_db: Database) -> list[uuid.UUID]:
    with psycopg.connect(test_db.admin_url) as conn:
        rows = conn.execute(
            "SELECT id FROM arx.audit_events WHERE kind = 'decision' AND agent_seq = 2"
        ).fetchall()
    return [r[0] for r in rows]


async def test_no_time_left_for_the_tool_is_a_503_and_the_tool_is_not_called(
    runtime: Runtime, example: Example, falcon: FalconState, test_db: Database
) -> None:
    """Past the decision, less time than a result write needs: the tool is not
    called (a 503: nothing executed), and the trail says so."""
    deadline = Deadline(10)
    who = await runtime.auth.authenticate(example.auth("triage-bot")["authorization"], deadline)
    ctx = await runtime.trail.read_context(who, "crowdstrike", deadline)
    call = runtime.intercept.prepare("crowdstrike", "hosts:search", {})
    connector = runtime.intercept._connectors["crowdstrike"]
    with pytest.raises(DeadlineExceededError):
        await runtime.intercept._run(who, connector, ctx, call, Deadline(RESULT_WRITE_SECONDS / 2))
    assert falcon.requests == []
