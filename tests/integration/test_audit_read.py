"""Reading the trail: filtered pages with a cursor, one event with what belongs
to it, streamed exports, and the follow cursor that a SIEM consumer resumes
from (real PostgreSQL and OPA, events written through the API and, for the
concurrent writers, straight into the table as the API's role)."""

from __future__ import annotations

import csv
import io
import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import msgspec
import psycopg
import pytest

from arx.admin.people import create_token
from arx.audit import export
from arx.audit.query import AuditFilter
from arx.audit.reads import export_pages, get_event, list_events
from arx.audit.service import record_admin_event, result_overdue_seconds
from arx.config import Settings
from arx.db.pool import org_transaction
from arx.errors import NotFoundError
from arx.identity.principal import Access
from arx.runtime import Runtime
from tests.fixtures.arx import SEED_ACTOR, Example, make_org, sealed_by_hand
from tests.fixtures.database import Database

pytestmark = pytest.mark.anyio

EXECUTE = "/v1/sdk/execute"
SEARCH = {"connector": "crowdstrike", "operation": "hosts:search", "params": {}}
CONTAIN = {
    "connector": "crowdstrike",
    "operation": "hosts:contain",
    "params": {"ids": ["4c1d7e2a9b3f4e5d8a6c0b1e2f3a4d5c"]},
}


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    """Signed checkpoints; the tests seal by hand unless they run a sealer."""
    return sealed_by_hand(settings, tmp_path)


async def _seal(rt: Runtime) -> None:
    assert rt.sealer is not None
    while await rt.sealer.seal_once():
        pass
    await rt.sealer.checkpoint_once()


async def _traffic(client: httpx.AsyncClient, example: Example) -> None:
    """Three PERMITs and a DENY by triage-bot, an ESCALATE by responder-bot."""
    for _ in range(3):
        resp = await client.post(EXECUTE, json=SEARCH, headers=example.auth("triage-bot"))
        assert resp.status_code == 200, resp.text
    denied = await client.post(EXECUTE, json=CONTAIN, headers=example.auth("triage-bot"))
    assert denied.status_code == 403, denied.text
    pending = await client.post(EXECUTE, json=CONTAIN, headers=example.auth("responder-bot"))
    assert pending.status_code == 202, pending.text


async def _page(client: httpx.AsyncClient, example: Example, **params: Any) -> dict[str, Any]:
    resp = await client.get(
        f"/v1/admin/orgs/{example.seeded.org_id}/audit", params=params, headers=example.owner
    )
    assert resp.status_code == 200, resp.text
    page: dict[str, Any] = resp.json()
    return page


async def _all(client: httpx.AsyncClient, example: Example, **params: Any) -> list[dict[str, Any]]:
    """Every page, following next_cursor."""
    events: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await _page(client, example, **params, **({"cursor": cursor} if cursor else {}))
        events += page["events"]
        cursor = page["next_cursor"]
        if cursor is None:
            return events


async def _agent_id(client: httpx.AsyncClient, example: Example, name: str) -> str:
    resp = await client.get(f"/v1/admin/orgs/{example.seeded.org_id}/agents", headers=example.owner)
    return str(next(a["id"] for a in resp.json() if a["name"] == name))


async def test_pages_filter_and_the_cursor_walks_every_event_once(
    client: httpx.AsyncClient, example: Example, runtime: Runtime
) -> None:
    await _traffic(client, example)
    other = await make_org(runtime, "globex")  # its own events never show here
    everything = await _all(client, example, limit=1000)
    seqs = [e["seq"] for e in everything]
    assert seqs == sorted(seqs, reverse=True)  # newest first
    # Small pages, walked with the cursor: the same events, each once.
    assert [e["seq"] for e in await _all(client, example, limit=2)] == seqs
    theirs = await list_events(
        runtime.control_pool, other.org_id, AuditFilter(), overdue_seconds=60
    )
    assert theirs.events
    assert not {str(e.id) for e in theirs.events} & {e["id"] for e in everything}

    triage = await _agent_id(client, example, "triage-bot")
    by_agent = await _all(client, example, agent_id=triage)
    assert {e["agent_id"] for e in by_agent} == {triage}
    assert len(by_agent) == 3 * 2 + 1  # three decisions and results, one DENY
    denied = await _all(client, example, verdict="DENY")
    assert [(e["agent_id"], e["operation"]) for e in denied] == [(triage, "hosts:contain")]
    escalated = await _all(client, example, verdict="ESCALATE")
    assert len(escalated) == 1
    assert escalated[0]["agent_id"] != triage
    decisions = await _all(client, example, kind="decision", operation="hosts:search")
    assert len(decisions) == 3
    assert {e["connector"] for e in decisions} == {"crowdstrike"}
    results = await _all(client, example, outcome="success")
    assert len(results) == 3
    assert {e["kind"] for e in results} == {"result"}
    assert await _all(client, example, connector="splunk") == []

    # A time range: since inclusive, until exclusive.
    middle = everything[len(everything) // 2]
    at = datetime.fromisoformat(middle["created_at"])
    newer = await _all(client, example, since=at.isoformat())
    older = await _all(client, example, until=at.isoformat())
    assert {e["seq"] for e in newer} | {e["seq"] for e in older} == set(seqs)
    assert not {e["seq"] for e in newer} & {e["seq"] for e in older}
    assert middle["seq"] in {e["seq"] for e in newer}
    future = datetime.now(UTC) + timedelta(days=1)
    assert await _all(client, example, since=future.isoformat()) == []


async def test_bad_queries_are_problems_naming_the_parameter(
    client: httpx.AsyncClient, example: Example
) -> None:
    url = f"/v1/admin/orgs/{example.seeded.org_id}/audit"
    for params, parameter in (
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "czEuLTU"}, "cursor"),  # "s1.-5": well formed, never given out
        ({"since": "2026-12-01T00:00:00"}, "since"),  # no zone
        ({"since": "2026-12-01T00:00:00Z", "until": "2026-11-30T00:00:00Z"}, "until"),
        ({"after_seq": 5}, "after_seq"),  # removed: a client relying on it learns at once
    ):
        resp = await client.get(url, params=params, headers=example.owner)
        assert resp.status_code == 400, (params, resp.text)
        assert resp.headers["content-type"].startswith("application/problem+json")
        assert (resp.json()["code"], resp.json()["parameter"]) == ("invalid_query", parameter)
    for params in (
        {"verdict": "MAYBE"},
        {"agent_id": "bot"},
        {"kind": "x"},
        {"since": "soon"},
        {"connector": "crowd\x00strike"},
        {"operation": "x" * 201},
        {"cursor": "a/b"},
    ):
        resp = await client.get(url, params=params, headers=example.owner)
        assert resp.status_code == 400, (params, resp.text)
        assert resp.headers["content-type"].startswith("application/problem+json")
    for wait in ("26", "-1", "1.5"):
        resp = await client.get(f"{url}/follow", params={"wait": wait}, headers=example.owner)
        assert resp.status_code == 400, (wait, resp.text)
        assert resp.headers["content-type"].startswith("application/problem+json")
    export_bad = await client.get(f"{url}/export", params={"format": "xml"}, headers=example.owner)
    assert export_bad.status_code == 400
    assert export_bad.headers["content-type"].startswith("application/problem+json")


async def test_one_event_with_its_result_approval_chain_and_checkpoint(
    client: httpx.AsyncClient, example: Example, runtime: Runtime
) -> None:
    await _traffic(client, example)
    org = example.seeded.org_id
    (decision, *_) = await _all(client, example, kind="decision", verdict="PERMIT")
    # Not sealed yet: no chain position, no checkpoint.
    detail = (await client.get(f"/v1/admin/orgs/{org}/audit/events/{decision['id']}",
                               headers=example.owner)).json()  # fmt: skip
    assert "chain" not in detail["event"]
    assert detail["checkpoint"] is None
    await _seal(runtime)
    resp = await client.get(f"/v1/admin/orgs/{org}/audit/events/{decision['id']}",
                            headers=example.owner)  # fmt: skip
    assert resp.status_code == 200, resp.text
    detail = resp.json()
    assert detail["event"]["id"] == decision["id"]
    [result] = detail["results"]
    assert (result["decision_id"], result["outcome"]) == (decision["id"], "success")
    assert detail["approval"] is None
    position = detail["event"]["chain"]
    assert position["org_seq"] >= 1
    assert len(position["hash"]) == 64
    assert detail["checkpoint"]["org_seq"] >= position["org_seq"]
    assert detail["checkpoint"]["checkpoint_no"] == 1

    [escalated] = await _all(client, example, verdict="ESCALATE")
    detail = (await client.get(f"/v1/admin/orgs/{org}/audit/events/{escalated['id']}",
                               headers=example.owner)).json()  # fmt: skip
    assert detail["results"] == []
    assert detail["approval"]["event_id"] == escalated["id"]
    assert detail["approval"]["status"] == "pending"

    # Another org's event is not found from there, nor a made-up id here.
    other = await make_org(runtime, "globex")
    with pytest.raises(NotFoundError):
        await get_event(
            runtime.control_pool, other.org_id, uuid.UUID(decision["id"]), overdue_seconds=60
        )
    resp = await client.get(f"/v1/admin/orgs/{org}/audit/events/{uuid.uuid4()}",
                            headers=example.owner)  # fmt: skip
    assert resp.status_code == 404
    assert resp.json()["code"] == "not_found"


async def test_exports_stream_every_event_as_jsonl_and_csv(
    client: httpx.AsyncClient, example: Example, runtime: Runtime
) -> None:
    await _traffic(client, example)
    await _seal(runtime)
    listed = (await _all(client, example, limit=1000))[::-1]
    url = f"/v1/admin/orgs/{example.seeded.org_id}/audit/export"

    resp = await client.get(url, headers=example.owner)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("application/x-ndjson")
    assert resp.headers["content-disposition"].startswith("attachment;")
    lines = [msgspec.json.decode(line) for line in resp.content.splitlines()]
    assert lines == listed  # oldest first, each event as the list shows it

    resp = await client.get(url, params={"format": "csv"}, headers=example.owner)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    assert [int(r["seq"]) for r in rows] == [e["seq"] for e in listed]
    assert tuple(rows[0]) == export.CSV_COLUMNS
    for row, event in zip(rows, listed, strict=True):
        assert row["id"] == event["id"]
        assert row["verdict"] == (event.get("verdict") or "")
        assert row["org_seq"] == str(event["chain"]["org_seq"])
        if event.get("params") is not None:
            assert msgspec.json.decode(row["params"]) == event["params"]

    only_denied = await client.get(url, params={"verdict": "DENY"}, headers=example.owner)
    assert [msgspec.json.decode(x)["verdict"] for x in only_denied.content.splitlines()] == ["DENY"]


def test_csv_cells_a_spreadsheet_would_run_are_neutralised() -> None:
    assert export._cell('=HYPERLINK("http://x")') == '\'=HYPERLINK("http://x")'
    assert export._cell("+1") == "'+1"
    assert export._cell("@SUM(A1)") == "'@SUM(A1)"
    assert export._cell("-2+3") == "'-2+3"
    assert export._cell(-5) == "-5"  # a number is a number
    assert export._cell("host-1") == "host-1"
    assert export._cell({"a": "=1"}) == '{"a":"=1"}'


async def test_an_export_is_the_set_of_events_final_when_it_began(
    example: Example, runtime: Runtime, client: httpx.AsyncClient, test_db: Database
) -> None:
    """Pages are short transactions, yet the export is one fixed set: every
    event committed before it began (even while some unrelated transaction
    of the cluster stays open), none written while it runs (even one whose
    transaction had begun before), none read twice."""
    org = example.seeded.org_id
    with psycopg.connect(test_db.admin_url) as idle:
        # Some session elsewhere in the cluster, open all along.
        idle.execute("SELECT pg_current_xact_id()")
        await _traffic(client, example)
        before = {e["id"] for e in await _all(client, example, limit=1000)}
        async with org_transaction(runtime.control_pool, org) as late:
            straddling = await record_admin_event(
                late, org, action="test.straddling", actor="test", details={}
            )
            pages = await export_pages(
                runtime.control_pool, org, AuditFilter(), overdue_seconds=60, page_size=2
            )
        # The straddling event commits now, after the export began.
        seen: list[str] = []
        async for page in pages:
            seen += [str(e.id) for e in page]
            # Someone acts while the export runs.
            resp = await client.post(EXECUTE, json=SEARCH, headers=example.auth("triage-bot"))
            assert resp.status_code == 200
    assert len(seen) == len(set(seen))
    assert set(seen) == before
    assert str(straddling) not in seen


async def test_reviewers_and_strangers_cannot_read_the_trail(
    client: httpx.AsyncClient, example: Example, runtime: Runtime
) -> None:
    org = example.seeded.org_id
    access = Access(principal=SEED_ACTOR, org_id=org, roles=frozenset({"owner"}))
    reviewer = await create_token(runtime.control_pool, access, name="r", roles=["reviewer"],
                                  lifetime=None)  # fmt: skip
    headers = {"authorization": f"Bearer {reviewer.token}"}
    event = (await _page(client, example, limit=1))["events"][0]["id"]
    for path in ("audit", f"audit/events/{event}", "audit/export", "audit/follow"):
        resp = await client.get(f"/v1/admin/orgs/{org}/{path}", headers=headers)
        assert resp.status_code == 403, (path, resp.text)
        assert resp.json()["code"] == "role_required"
        resp = await client.get(f"/v1/admin/orgs/{org}/{path}")
        assert resp.status_code == 401, (path, resp.text)


async def test_follow_sees_every_event_once_in_chain_order_across_restarts(
    client: httpx.AsyncClient, example: Example, runtime: Runtime
) -> None:
    """Writers commit out of order (each holds its transaction open a random
    while), a sealer runs, and a consumer follows with the API cursor,
    restarting twice from the cursor it kept: it sees every event of the org
    exactly once, numbered 1, 2, 3, … with no gap."""
    org = example.seeded.org_id
    url = f"/v1/admin/orgs/{org}/audit/follow"
    assert runtime.sealer is not None
    sealer = runtime.sealer
    done = anyio.Event()
    rng = random.Random(7)  # noqa: S311 -- commit-order jitter, not a secret

    async def writer(n: int) -> None:
        # Several events a transaction, with time between them: seq order
        # (taken at insert) and commit order differ.
        for i in range(3):
            async with org_transaction(runtime.control_pool, org) as conn:
                for j in range(2):
                    await record_admin_event(
                        conn,
                        org,
                        action="test.write",
                        actor=f"writer-{n}",
                        details={"i": i, "j": j},
                    )
                    await anyio.sleep(rng.uniform(0, 0.05))

    async def seal() -> None:
        while not done.is_set():
            await sealer.seal_once()
            await anyio.sleep(0.01)

    seen: list[dict[str, Any]] = []
    kept = 0  # the consumer's cursor, as it would persist it

    async def consume(pages: int) -> None:
        nonlocal kept
        for _ in range(pages):
            resp = await client.get(
                url, params={"after": kept, "limit": 7, "wait": 1}, headers=example.owner
            )
            assert resp.status_code == 200, resp.text
            body = resp.json()
            seen.extend(body["events"])
            kept = body["cursor"]

    async with anyio.create_task_group() as tg:
        tg.start_soon(seal)
        async with anyio.create_task_group() as writers:
            for n in range(6):
                writers.start_soon(writer, n)
            writers.start_soon(_traffic, client, example)
            await consume(3)  # restarts: a new loop from the kept cursor
            await consume(3)
        # Writers are done; read to the end.
        while True:
            before = len(seen)
            await consume(1)
            if len(seen) == before:
                await sealer.seal_once()
                await consume(1)
                if len(seen) == before:
                    break
        done.set()

    positions = [e["chain"]["org_seq"] for e in seen]
    seqs = [e["seq"] for e in seen]
    assert seqs != sorted(seqs), "the writers' commits should have overtaken each other"
    assert positions == list(range(1, len(seen) + 1))
    ids = [e["id"] for e in seen]
    assert len(ids) == len(set(ids))
    everything = {e["id"] for e in await _all(client, example, limit=1000)}
    assert set(ids) == everything
    assert sum(e.get("action") == "test.write" for e in seen) == 36
    # Nothing after the end: an empty page keeps the cursor.
    resp = await client.get(url, params={"after": kept}, headers=example.owner)
    assert resp.json() == {
        "events": [],
        "cursor": kept,
        "result_overdue_seconds": result_overdue_seconds(runtime.settings),
    }
