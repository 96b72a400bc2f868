"""The trail by month (migration 0019): months created ahead and guarded
like the trail itself, the writer never choosing its month, no month meaning
nothing runs, and retention as the one way events leave: whole months, owner
only, sealed and signed for first, recorded in the chain, walked across by
verify (real PostgreSQL, real OPA, events written through the API)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import msgspec
import psycopg
import pytest
from psycopg import sql

from arx.audit import partitions
from arx.cli import main as cli
from arx.config import Settings
from arx.db.migrate import migrate
from arx.devstack.stack import create_database, drop_database
from arx.runtime import Runtime
from arx.sandbox.falcon import FalconState
from tests.fixtures.arx import Example, agent_session, sealed_by_hand
from tests.fixtures.database import Database

pytestmark = pytest.mark.anyio

EXECUTE = "/v1/sdk/execute"
SEARCH = {"connector": "crowdstrike", "operation": "hosts:search", "params": {}}


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    return sealed_by_hand(settings, tmp_path)


def _this_month() -> date:
    today = datetime.now(UTC).date()
    return today.replace(day=1)


def _add_months(month: date, n: int) -> date:
    index = month.year * 12 + month.month - 1 + n
    return date(index // 12, index % 12 + 1, 1)


def _name(month: date) -> str:
    return f"audit_events_y{month:%Y}m{month:%m}"


def _months(conn: psycopg.Connection[Any]) -> list[str]:
    rows = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'arx.audit_events'::regclass ORDER BY c.relname"
    ).fetchall()
    return [r[0] for r in rows]


async def _searches(client: httpx.AsyncClient, example: Example, n: int) -> None:
    for _ in range(n):
        resp = await client.post(EXECUTE, json=SEARCH, headers=example.auth("triage-bot"))
        assert resp.status_code == 200, resp.text


async def _seal(rt: Runtime) -> None:
    assert rt.sealer is not None
    while await rt.sealer.seal_once():
        pass
    await rt.sealer.checkpoint_once()


async def _verify(client: httpx.AsyncClient, example: Example) -> dict[str, Any]:
    resp = await client.get(
        f"/v1/admin/orgs/{example.seeded.org_id}/audit/verify", headers=example.owner
    )
    assert resp.status_code == 200, resp.text
    report: dict[str, Any] = resp.json()
    return report


def _guarded(admin: psycopg.Connection[Any], name: str) -> None:
    """A month as the trail needs it: no grant (every role but the owner
    reaches rows through the parent, where its policies apply), row-level
    security forced with no policy of its own, every guard ENABLE ALWAYS."""
    row = admin.execute(
        "SELECT relacl, relrowsecurity, relforcerowsecurity, relispartition FROM pg_class"
        " WHERE oid = %s::regclass",
        (f"arx.{name}",),
    ).fetchone()
    assert row == (None, True, True, True)
    triggers = dict(
        admin.execute(
            "SELECT tgname, tgenabled FROM pg_trigger"
            " WHERE tgrelid = %s::regclass AND NOT tgisinternal",
            (f"arx.{name}",),
        ).fetchall()
    )
    assert triggers == {
        "audit_events_no_truncate": "A",
        "audit_events_no_update_delete": "A",
        "audit_events_stamp": "A",
    }


def _drop(admin: psycopg.Connection[Any], name: str) -> None:
    admin.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier("arx", name)))


def test_months_are_made_ahead_guarded_and_made_again_by_any_control_plane(
    test_db: Database,
) -> None:
    this = _this_month()
    wanted = [_name(_add_months(this, n)) for n in range(partitions.MONTHS_AHEAD + 1)]
    with psycopg.connect(test_db.admin_url, autocommit=True) as admin:
        assert set(wanted) <= set(_months(admin))
        for name in wanted:
            _guarded(admin, name)
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            admin.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier("arx", wanted[0])))
        # The furthest month lost (it is empty), the one before detached by
        # hand: any control plane makes the one and attaches the other again.
        _drop(admin, wanted[-1])
        admin.execute(
            sql.SQL("ALTER TABLE arx.audit_events DETACH PARTITION {}").format(
                sql.Identifier("arx", wanted[-2])
            )
        )
    with psycopg.connect(test_db.control_url, autocommit=True) as control:
        made = control.execute("SELECT arx.ensure_audit_partitions(%s)", (3,)).fetchall()
        assert made == [(wanted[-2],), (wanted[-1],)]
        assert control.execute("SELECT arx.ensure_audit_partitions(3)").fetchall() == []
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            control.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier("arx", wanted[0]))
            )
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            control.execute("SELECT arx.create_audit_partition('2001-01-01')")
    with psycopg.connect(test_db.admin_url, autocommit=True) as admin:
        for name in wanted[-2:]:
            _guarded(admin, name)  # as made by the API, not by the migration
        # `arx db migrate` makes them too, with no migration pending.
        _drop(admin, wanted[-1])
    assert migrate(test_db.admin_url) == []
    with psycopg.connect(test_db.admin_url, autocommit=True) as admin:
        _guarded(admin, wanted[-1])


async def test_the_writer_cannot_choose_its_month(
    client: httpx.AsyncClient, example: Example, test_db: Database
) -> None:
    org = example.seeded.org_id
    insert = (
        "INSERT INTO arx.audit_events (id, org_id, kind, action, created_at)"
        " VALUES (gen_random_uuid(), %s, 'admin', 'x', now() + %s::interval)"
    )
    # The API's roles cannot name the stamp's columns at all.
    with psycopg.connect(test_db.control_url, autocommit=True) as control:
        control.execute("SELECT set_config('arx.org_id', %s, false)", (str(org),))
        for column, value in (("created_at", "now()"), ("seq", "1"), ("txid", "'1'::xid8")):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
                control.execute(
                    sql.SQL(
                        "INSERT INTO arx.audit_events (id, org_id, kind, action, {})"
                        " VALUES (gen_random_uuid(), %s, 'admin', 'x', {})"
                    ).format(sql.Identifier(column), sql.SQL(value)),
                    (org,),
                )
        control.execute(
            "INSERT INTO arx.audit_events (id, org_id, kind, action)"
            " VALUES (gen_random_uuid(), %s, 'admin', 'x')",
            (org,),
        )
        stamped = control.execute(
            "SELECT clock_timestamp() - created_at FROM arx.audit_events WHERE action = 'x'"
        ).fetchone()
        assert stamped is not None
        assert 0 <= stamped[0].total_seconds() < 1
    # The owner's (or a superuser's) own writes: any time before the
    # statement began, or after the clock, is refused too.
    with psycopg.connect(test_db.admin_url, autocommit=True) as admin:
        # Yesterday's month exists: the insert reaches the stamp trigger.
        admin.execute("SELECT arx.create_audit_partition((now() - interval '1 day')::date)")
        for moved in ("-1 day", "-500 milliseconds", "1 second", "1 hour"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="clock"):
                admin.execute(insert, (org, moved))


async def test_with_no_month_to_write_in_nothing_runs(
    client: httpx.AsyncClient, example: Example, test_db: Database, falcon: FalconState
) -> None:
    current = f"arx.{_name(_this_month())}"
    with psycopg.connect(test_db.admin_url, autocommit=True) as admin:
        admin.execute(f"ALTER TABLE arx.audit_events DETACH PARTITION {current}")
        heads = admin.execute("SELECT * FROM arx.agent_heads ORDER BY agent_id").fetchall()
    sent = len(falcon.requests)

    resp = await client.post(EXECUTE, json=SEARCH, headers=example.auth("triage-bot"))
    assert resp.status_code == 503, resp.text
    problem = resp.json()
    assert problem["code"] == "database_unavailable"
    assert "no partition for this month" in problem["detail"]
    assert len(falcon.requests) == sent  # the tool was never called

    with psycopg.connect(test_db.admin_url, autocommit=True) as admin:
        # Nothing half-written: the head did not move.
        assert admin.execute("SELECT * FROM arx.agent_heads ORDER BY agent_id").fetchall() == heads
        first = _this_month()
        admin.execute(
            f"ALTER TABLE arx.audit_events ATTACH PARTITION {current} FOR VALUES"
            f" FROM ('{first} 00:00:00+00') TO ('{_add_months(first, 1)} 00:00:00+00')"
        )
    resp = await client.post(EXECUTE, json=SEARCH, headers=example.auth("triage-bot"))
    assert resp.status_code == 200, resp.text


def _age(
    test_db: Database,
    org: uuid.UUID,
    n: int,
    *,
    months: int,
    kinds: list[str] | None = None,
    ids: list[uuid.UUID] | None = None,
) -> list[uuid.UUID]:
    """Move the org's first n events (of ``kinds``, or those ``ids``) to
    ``months`` ago, as the superuser with the guards off for one transaction
    (no other writer sees them off): events written long ago."""
    old = _add_months(_this_month(), -months)
    with psycopg.connect(test_db.admin_url) as admin, admin.transaction():
        admin.execute("SELECT arx.create_audit_partition(%s)", (old,))
        triggers = ("audit_events_no_update_delete", "audit_events_stamp")
        for trigger in triggers:
            admin.execute(f"ALTER TABLE arx.audit_events DISABLE TRIGGER {trigger}")
        moved = [
            r[0]
            for r in admin.execute(
                "UPDATE arx.audit_events SET created_at = %s::timestamptz + mod(seq, 1000)"
                " * interval '1 second' WHERE org_id = %s AND id IN (SELECT id FROM"
                " arx.audit_events WHERE org_id = %s AND (%s::text[] IS NULL"
                " OR kind = ANY(%s)) AND (%s::uuid[] IS NULL OR id = ANY(%s))"
                " ORDER BY seq LIMIT %s) RETURNING id",
                (f"{old} 00:00:00+00", org, org, kinds, kinds, ids, ids, n),
            )
        ]
        for trigger in triggers:
            admin.execute(f"ALTER TABLE arx.audit_events ENABLE ALWAYS TRIGGER {trigger}")
    assert len(moved) == n
    return moved


def _reuse_is_refused(test_db: Database, org: uuid.UUID, event_id: uuid.UUID) -> None:
    """An event written (by the control plane's role) under a taken id fails."""
    with psycopg.connect(test_db.control_url, autocommit=True) as control:
        control.execute("SELECT set_config('arx.org_id', %s, false)", (str(org),))
        with pytest.raises(psycopg.errors.UniqueViolation):
            control.execute(
                "INSERT INTO arx.audit_events (id, org_id, kind, action)"
                " VALUES (%s, %s, 'admin', 'x')",
                (event_id, org),
            )


@pytest.fixture
def owner_cli(
    settings: Settings,
    test_db: Database,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Callable[..., tuple[int, str, str]]:
    """`arx …` as an operator with the database owner's URL: (exit code, out, err)."""
    monkeypatch.setattr(
        cli,
        "load_settings",
        lambda: msgspec.structs.replace(settings, admin_database_url=test_db.admin_url),
    )

    def run(*args: str) -> tuple[int, str, str]:
        code = cli.main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


async def test_retention_drops_whole_signed_months_and_verify_walks_across(
    client: httpx.AsyncClient,
    example: Example,
    runtime: Runtime,
    test_db: Database,
    owner_cli: Callable[..., tuple[int, str, str]],
) -> None:
    org = example.seeded.org_id
    await _searches(client, example, 4)
    aged = _age(test_db, org, 5, months=2)
    this = _this_month()
    old = _name(_add_months(this, -2))

    # Not sealed yet: refused, nothing dropped, the operator told why.
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="not yet sealed"):
        partitions.drop_months(test_db.admin_url, this, "test")
    code, _, err = owner_cli("db", "retention", "--drop-before", f"{this:%Y-%m}", "--yes")
    assert code == 1
    assert f"{old} holds 5 events not yet sealed (wait for the sealer" in err
    code, _, err = owner_cli("db", "retention", "--drop-before", "2026-13", "--yes")
    assert (code, "not a month as YYYY-MM" in err) == (1, True)
    # Sealed, but past the last signed checkpoint: refused too.
    assert runtime.sealer is not None
    while await runtime.sealer.seal_once():
        pass
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="checkpoint"):
        partitions.drop_months(test_db.admin_url, this, "test")
    await runtime.sealer.checkpoint_once()
    # Never the current month, nor a day that does not start one.
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        partitions.drop_months(test_db.admin_url, _add_months(this, 1), "test")
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        partitions.drop_months(test_db.admin_url, this.replace(day=2), "test")
    # Only the owner: no role ARX logs in as may call it.
    for url in (test_db.app_url, test_db.control_url):
        with psycopg.connect(url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM arx.drop_audit_months(%s, 'x')", (this,))

    with psycopg.connect(test_db.admin_url) as admin:
        positions = [
            r[0]
            for r in admin.execute(
                "SELECT org_seq FROM arx.audit_chain WHERE event_id = ANY(%s) ORDER BY org_seq",
                (aged,),
            )
        ]
        events_before = admin.execute("SELECT count(*) FROM arx.audit_events").fetchone()
    assert events_before is not None

    # The operator's command, as documented: --yes or nothing happens.
    month = f"{this:%Y-%m}"
    code, _, err = owner_cli("db", "retention", "--drop-before", month)
    assert (code, "add --yes" in err) == (1, True)
    code, out, _ = owner_cli("db", "retention", "--drop-before", month, "--yes", "--actor", "ops")
    assert code == 0
    assert json.loads(out) == {"dropped": [{"partition": old, "org_id": str(org), "events": 5}]}

    with psycopg.connect(test_db.admin_url) as admin:
        assert old not in _months(admin)
        events_after = admin.execute("SELECT count(*) FROM arx.audit_events").fetchone()
        assert events_after == (events_before[0] - 5 + 1,)  # five gone, one retention event
        (details,) = admin.execute(
            "SELECT details FROM arx.audit_events WHERE org_id = %s"
            " AND action = 'audit.retention' AND actor = 'ops'",
            (org,),
        ).fetchone() or (None,)
    assert details == {
        "partition": old,
        "month": f"{_add_months(this, -2):%Y-%m}",
        "events": 5,
        "org_seq": [[positions[0], positions[-1]]],
    }
    assert positions == list(range(positions[0], positions[0] + 5))

    # A dropped event's id stays taken.
    _reuse_is_refused(test_db, org, aged[0])

    # Until the sealer has chained the retention event, verify trusts it no
    # more than any unsealed event: the first removed event reads as deleted.
    problem = (await _verify(client, example))["first_problem"]
    assert (problem["kind"], problem["org_seq"]) == ("event_deleted", positions[0])
    # Chained (and signed next): verify walks across the removed events from
    # their links' stored hashes.
    await _seal(runtime)
    report = await _verify(client, example)
    assert (report["ok"], report["retained"], report["unsealed"]) == (True, 5, 0), report
    listed = await client.get(
        f"/v1/admin/orgs/{org}/audit", params={"kind": "admin"}, headers=example.owner
    )
    retention = [e for e in listed.json()["events"] if e.get("action") == "audit.retention"]
    assert retention
    assert retention[0]["chain"]["org_seq"] > positions[-1]


async def test_an_event_deleted_outside_a_retained_range_is_still_found(
    client: httpx.AsyncClient, example: Example, runtime: Runtime, test_db: Database
) -> None:
    org = example.seeded.org_id
    await _searches(client, example, 4)
    _age(test_db, org, 2, months=3)
    await _seal(runtime)
    partitions.drop_months(test_db.admin_url, _this_month(), "test")
    await _seal(runtime)
    with psycopg.connect(test_db.admin_url, autocommit=True) as admin:
        admin.execute("ALTER TABLE arx.audit_events DISABLE TRIGGER audit_events_no_update_delete")
        (seq,) = admin.execute(
            "SELECT c.org_seq FROM arx.audit_chain c JOIN arx.audit_events e"
            " ON e.org_id = c.org_id AND e.id = c.event_id WHERE c.org_id = %s"
            " ORDER BY c.org_seq LIMIT 1",
            (org,),
        ).fetchone() or (None,)
        admin.execute(
            "DELETE FROM arx.audit_events WHERE org_id = %s AND id ="
            " (SELECT event_id FROM arx.audit_chain WHERE org_id = %s AND org_seq = %s)",
            (org, org, seq),
        )
        admin.execute(
            "ALTER TABLE arx.audit_events ENABLE ALWAYS TRIGGER audit_events_no_update_delete"
        )
    problem = (await _verify(client, example))["first_problem"]
    assert (problem["kind"], problem["org_seq"]) == ("event_deleted", seq)


@pytest.fixture
def schema_0018(pg_admin_url: str) -> Iterator[str]:
    """A database at the schema before the trail had months."""
    name = f"arx_upgrade_{uuid.uuid4().hex[:8]}"
    url = create_database(pg_admin_url, name)
    migrate(url, upto="0018_audit_read_indexes")
    yield url
    drop_database(pg_admin_url, name)


def test_an_existing_trail_moves_into_its_months_whole(schema_0018: str) -> None:
    url = schema_0018
    org, agent = uuid.uuid4(), uuid.uuid4()
    event = {
        "org_id": str(org),
        "agent_id": str(agent),
        "connector": "crowdstrike",
        "params": {"q": "x"},
        "targets": ["h"],
        "verdict": "PERMIT",
        "risk_score": 10,
        "reasons": [],
        "bundle_revisions": {"example": "r1"},
        "operation": "hosts:search",
        "operation_kind": "read",
    }
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO arx.orgs (id, slug, name) VALUES (%s, 'up', 'Up')", (org,))
        conn.execute(
            "INSERT INTO arx.agents (id, org_id, name, intent) VALUES (%s, %s, 'bot', '{}')",
            (agent, org),
        )
        conn.execute("SET ROLE arx_app")
        seq, tallies = 0, [0, 0, 0, 0, 0]
        for _ in range(12):
            decision = str(uuid.uuid4())
            (seq,) = conn.execute(
                "SELECT agent_seq FROM arx.record_decision(%s::jsonb, %s, %s, NULL)",
                (json.dumps({**event, "id": decision}), seq, tallies),
            ).fetchone() or (None,)
            tallies = [tallies[0] + 1, *tallies[1:]]
            result = {**event, "id": str(uuid.uuid4()), "decision_id": decision}
            result |= {"outcome": "success", "result": {"n": 1}}
            conn.execute("SELECT arx.record_result(%s::jsonb)", (json.dumps(result),))
        conn.execute("RESET ROLE")
        # Some of the trail from two months back (the old table let a superuser).
        conn.execute("ALTER TABLE arx.audit_events DISABLE TRIGGER audit_events_no_update_delete")
        conn.execute(
            "UPDATE arx.audit_events SET created_at = created_at - interval '62 days'"
            " WHERE seq IN (SELECT seq FROM arx.audit_events ORDER BY seq LIMIT 6)"
        )
        conn.execute(
            "ALTER TABLE arx.audit_events ENABLE ALWAYS TRIGGER audit_events_no_update_delete"
        )
        everything = "SELECT to_jsonb(e) - 'txid' AS row, txid::text FROM arx.audit_events e"
        before = conn.execute(everything + " ORDER BY seq").fetchall()
    assert len(before) == 24

    assert migrate(url, upto="0019_audit_partitions") == ["0019_audit_partitions"]

    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute(everything + " ORDER BY seq").fetchall() == before
        months = _months(conn)
        oldest = min(datetime.fromisoformat(r[0]["created_at"]) for r in before)
        assert _name(oldest.astimezone(UTC).date().replace(day=1)) in months
        assert _name(_add_months(_this_month(), partitions.MONTHS_AHEAD)) in months
        copied = conn.execute("SELECT count(*) FROM arx.audit_event_ids").fetchone()
        assert copied == (24,)
        heads = conn.execute("SELECT org_id, agent_id, head_seq, tally_read FROM arx.agent_heads")
        assert heads.fetchall() == [(org, agent, 12, 12)]
        # The agent's next decision continues its sequence; seq goes on past the copy.
        conn.execute("SET ROLE arx_app")
        recorded = conn.execute(
            "SELECT agent_seq, decision_seq FROM arx.record_decision(%s::jsonb, 12, %s, NULL)",
            (json.dumps({**event, "id": str(uuid.uuid4())}), [12, 0, 0, 0, 0]),
        ).fetchone()
        assert recorded is not None
        assert recorded[0] == 13
        assert recorded[1] > max(r[0]["seq"] for r in before)


async def test_after_retention_the_windows_count_from_the_last_dropped_decision(
    client: httpx.AsyncClient, example: Example, runtime: Runtime, test_db: Database
) -> None:
    await _searches(client, example, 3)
    # The first two calls (decision and result each) happened months ago.
    _age(test_db, example.seeded.org_id, 4, months=2, kinds=["decision", "result"])
    before = await agent_session(runtime, example, "triage-bot")
    assert before["windows"]["60m"]["actions"] == 1
    await _seal(runtime)
    partitions.drop_months(test_db.admin_url, _this_month(), "test")
    # Nothing older than the window is left in the trail; the head's floor
    # (the last dropped decision) is where the window starts, not zero.
    after = await agent_session(runtime, example, "triage-bot")
    assert after["windows"] == before["windows"]
    assert [e["operation"] for e in after["recent"]] == ["hosts:search"]


async def test_only_the_owner_says_events_left_and_verify_checks_what_it_says(
    client: httpx.AsyncClient, example: Example, runtime: Runtime, test_db: Database
) -> None:
    org = example.seeded.org_id
    await _searches(client, example, 3)
    await _seal(runtime)
    # No role the API uses may write a retention event.
    for url in (test_db.app_url, test_db.control_url):
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SELECT set_config('arx.org_id', %s, false)", (str(org),))
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
                conn.execute(RETENTION, (org, json.dumps({"org_seq": [[1, 2]]})))
    # Events sealed after the last signed checkpoint: a superuser deletes one
    # and writes a retention event naming exactly it. Retention never drops
    # what no checkpoint signed, so it covers nothing.
    await _searches(client, example, 1)
    assert runtime.sealer is not None
    while await runtime.sealer.seal_once():
        pass
    with psycopg.connect(test_db.admin_url, autocommit=True) as admin:
        (seq, event_id) = admin.execute(
            "SELECT org_seq, event_id FROM arx.audit_chain WHERE org_id = %s"
            " ORDER BY org_seq DESC LIMIT 1",
            (org,),
        ).fetchone() or (None, None)
        signed = admin.execute(
            "SELECT max(org_seq) FROM arx.audit_checkpoints WHERE org_id = %s", (org,)
        ).fetchone()
        assert signed is not None
        assert seq > signed[0]
        admin.execute("ALTER TABLE arx.audit_events DISABLE TRIGGER audit_events_no_update_delete")
        admin.execute("DELETE FROM arx.audit_events WHERE org_id = %s AND id = %s", (org, event_id))
        admin.execute(
            "ALTER TABLE arx.audit_events ENABLE ALWAYS TRIGGER audit_events_no_update_delete"
        )
        admin.execute(RETENTION, (org, json.dumps({"org_seq": [[seq, seq]]})))
    while await runtime.sealer.seal_once():
        pass
    problem = (await _verify(client, example))["first_problem"]
    assert (problem["kind"], problem["org_seq"]) == ("event_deleted", seq)


RETENTION = (
    "INSERT INTO arx.audit_events (id, org_id, kind, action, actor, details)"
    " VALUES (gen_random_uuid(), %s, 'admin', 'audit.retention', 'x', %s)"
)


@pytest.mark.parametrize(
    "named", ["all of it", [[1]], [["1", "2"]], [[3, 2]], [[0, 1]], [[1, 10**12]]]
)
async def test_a_retention_event_that_could_not_be_is_a_finding(
    client: httpx.AsyncClient, example: Example, runtime: Runtime, test_db: Database, named: Any
) -> None:
    org = example.seeded.org_id
    await _searches(client, example, 2)
    await _seal(runtime)
    with psycopg.connect(test_db.admin_url, autocommit=True) as admin:
        admin.execute(RETENTION, (org, json.dumps({"org_seq": named})))
    await _seal(runtime)
    report = await _verify(client, example)
    assert report["ok"] is False
    assert report["first_problem"]["kind"] == "retention_invalid"


async def test_a_second_retention_keeps_what_the_first_one_said(
    client: httpx.AsyncClient, example: Example, runtime: Runtime, test_db: Database
) -> None:
    org = example.seeded.org_id
    await _searches(client, example, 3)
    _age(test_db, org, 2, months=3, kinds=["decision", "result"])
    await _seal(runtime)
    this = _this_month()
    assert partitions.drop_months(test_db.admin_url, this, "first")[0][2] == 2
    # The first retention event (and two more calls) belong to last month:
    # the next retention drops them, and with them what the first one said.
    with psycopg.connect(test_db.admin_url) as admin:
        (first,) = admin.execute(
            "SELECT id FROM arx.audit_events WHERE org_id = %s AND actor = 'first'", (org,)
        ).fetchone() or (None,)
    _age(test_db, org, 1, months=1, ids=[first])
    _age(test_db, org, 2, months=1, kinds=["decision", "result"])
    await _seal(runtime)
    assert (await _verify(client, example))["retained"] == 2
    dropped = partitions.drop_months(test_db.admin_url, this, "second")
    assert [(p, n) for p, _, n in dropped] == [(_name(_add_months(this, -1)), 3)]
    await _seal(runtime)
    report = await _verify(client, example)
    assert (report["ok"], report["retained"]) == (True, 5), report


async def test_an_event_id_is_never_used_twice(
    client: httpx.AsyncClient, example: Example, runtime: Runtime, test_db: Database
) -> None:
    org = example.seeded.org_id
    resp = await client.post(EXECUTE, json=SEARCH, headers=example.auth("triage-bot"))
    assert resp.status_code == 200, resp.text
    decision = uuid.UUID(resp.json()["event_id"])
    _reuse_is_refused(test_db, org, decision)
    # The sealer goes on: every event is chained, the trail verifies.
    await _seal(runtime)
    report = await _verify(client, example)
    assert (report["ok"], report["unsealed"]) == (True, 0), report
