"""The audit trail proves itself: each org's events are chained in commit
order and sealed into signed checkpoints, and `verify` finds every kind of
tampering a database superuser can do with the triggers off (real
PostgreSQL, real OPA, events written through the API)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import msgspec
import psycopg
import pytest
from psycopg.types.json import set_json_loads

from arx.audit import chain, verify
from arx.audit.checkpoints import ensure_key, load_signer
from arx.audit.verify import export_checkpoints_of, verify_org
from arx.cli.main import main as cli_main
from arx.config import ConfigError, Settings
from arx.runtime import Runtime, retired_audit_keys
from tests.fixtures.arx import Example, make_org, sealed_by_hand
from tests.fixtures.database import Database

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    """Signed checkpoints; the tests seal by hand (no background sealer)."""
    return sealed_by_hand(settings, tmp_path)


async def _calls(client: httpx.AsyncClient, example: Example, n: int = 3) -> None:
    for i in range(n):
        resp = await client.post(
            "/v1/sdk/execute",
            json={"connector": "crowdstrike", "operation": "hosts:search", "params": {}},
            headers=example.auth("triage-bot"),
        )
        assert resp.status_code == 200, (i, resp.text)
    # One DENY: outside triage-bot's intent.
    resp = await client.post(
        "/v1/sdk/execute",
        json={
            "connector": "crowdstrike",
            "operation": "hosts:contain",
            "params": {"ids": ["4c1d7e2a9b3f4e5d8a6c0b1e2f3a4d5c"]},
        },
        headers=example.auth("triage-bot"),
    )
    assert resp.status_code == 403, resp.text


async def _seal(rt: Runtime, *, checkpoint: bool = True) -> None:
    assert rt.sealer is not None
    while await rt.sealer.seal_once():
        pass
    if checkpoint:
        await rt.sealer.checkpoint_once()


async def _verify(client: httpx.AsyncClient, example: Example, **params: Any) -> dict[str, Any]:
    resp = await client.get(
        f"/v1/admin/orgs/{example.seeded.org_id}/audit/verify",
        params=params,
        headers=example.owner,
    )
    assert resp.status_code == 200, resp.text
    report: dict[str, Any] = resp.json()
    return report


@contextmanager
def _superuser(test_db: Database) -> Iterator[psycopg.Connection[Any]]:
    """The database superuser with every guard of the trail switched off."""
    guarded = {
        "arx.audit_events": ["audit_events_no_update_delete", "audit_events_stamp"],
        "arx.audit_chain": ["audit_chain_no_update_delete"],
        "arx.audit_checkpoints": ["audit_checkpoints_no_update_delete"],
    }
    with psycopg.connect(test_db.admin_url, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")  # foreign keys off too
        for table, triggers in guarded.items():
            for trigger in triggers:
                conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER {trigger}")
        try:
            yield conn
        finally:
            for table, triggers in guarded.items():
                for trigger in triggers:
                    conn.execute(f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {trigger}")


def _links(test_db: Database, org_id: uuid.UUID) -> list[tuple[int, uuid.UUID, bytes]]:
    with psycopg.connect(test_db.admin_url) as conn:
        rows = conn.execute(
            "SELECT org_seq, event_id, hash FROM arx.audit_chain WHERE org_id = %s"
            " ORDER BY org_seq",
            (org_id,),
        ).fetchall()
    return [(r[0], r[1], bytes(r[2])) for r in rows]


def _permit_and_relink(test_db: Database, org: uuid.UUID, event_id: uuid.UUID) -> None:
    """Turn a decision into a PERMIT and recompute the org's links to hide it."""
    with _superuser(test_db) as conn:
        conn.execute(
            "UPDATE arx.audit_events SET verdict = 'PERMIT' WHERE org_id = %s AND id = %s",
            (org, event_id),
        )
        _rebuild_links(conn, test_db, org)


def _rebuild_links(conn: psycopg.Connection[Any], test_db: Database, org: uuid.UUID) -> None:
    """What anyone who knows the (public) algorithm can do after a change:
    recompute every link of the org from its events as they are now."""
    cur = conn.cursor(row_factory=psycopg.rows.dict_row)
    set_json_loads(chain.raw_json, cur)
    events = {
        r["id"]: r for r in cur.execute("SELECT * FROM arx.audit_events WHERE org_id = %s", (org,))
    }
    prev = bytes(32)
    for position, linked, _ in _links(test_db, org):
        prev = chain.link(org, position, prev, chain.canonical(events[linked]))
        conn.execute(
            "UPDATE arx.audit_chain SET hash = %s WHERE org_id = %s AND org_seq = %s",
            (prev, org, position),
        )


def _decision_links(test_db: Database, org_id: uuid.UUID) -> list[tuple[int, uuid.UUID, str]]:
    with psycopg.connect(test_db.admin_url) as conn:
        rows = conn.execute(
            "SELECT c.org_seq, c.event_id, e.verdict FROM arx.audit_chain c"
            " JOIN arx.audit_events e ON e.org_id = c.org_id AND e.id = c.event_id"
            " WHERE c.org_id = %s AND e.kind = 'decision' ORDER BY c.org_seq",
            (org_id,),
        ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


async def test_a_sealed_trail_verifies_and_each_org_has_its_own_gap_free_chain(
    client: httpx.AsyncClient, example: Example, runtime: Runtime, test_db: Database
) -> None:
    await _calls(client, example)
    other = await make_org(runtime, "globex")  # its own events: org.created, its owner
    await _seal(runtime)
    report = await _verify(client, example)
    assert report["ok"] is True, report
    assert report["first_problem"] is None
    assert report["chained"] == report["events"] > 5
    assert (report["unsealed"], report["checkpoints"]) == (0, 1)
    assert report["last_checkpoint_org_seq"] == report["chained"]
    for org in (example.seeded.org_id, other.org_id):
        assert [seq for seq, _, _ in _links(test_db, org)] == list(
            range(1, len(_links(test_db, org)) + 1)
        )
    # Newer events are counted as unsealed until the sealer passes.
    await _calls(client, example, 1)
    report = await _verify(client, example)
    assert report["ok"] is True
    assert report["unsealed"] > 0
    await _seal(runtime)
    report = await _verify(client, example)
    assert (report["ok"], report["unsealed"], report["checkpoints"]) == (True, 0, 2)


async def test_the_chain_is_what_anyone_can_recompute(
    client: httpx.AsyncClient, example: Example, runtime: Runtime, test_db: Database
) -> None:
    """Documented encoding: SHA-256 over the domain tag, org, position,
    previous hash and the canonical event (arx/audit/chain.py)."""
    await _calls(client, example, 1)
    await _seal(runtime)
    with psycopg.connect(test_db.admin_url) as conn:
        cur = conn.cursor(row_factory=psycopg.rows.dict_row)
        # Numbers exactly as PostgreSQL prints them, never through a float.
        set_json_loads(chain.raw_json, cur)
        events = {
            r["id"]: r
            for r in cur.execute(
                "SELECT * FROM arx.audit_events WHERE org_id = %s", (example.seeded.org_id,)
            ).fetchall()
        }
    prev = bytes(32)
    for seq, event_id, digest in _links(test_db, example.seeded.org_id):
        body = chain.canonical(events[event_id])
        assert json.loads(body)["id"] == str(event_id)
        prev = chain.link(example.seeded.org_id, seq, prev, body)
        assert prev == digest


async def _tampered(client: httpx.AsyncClient, example: Example, runtime: Runtime) -> None:
    """A sealed, checkpointed trail that verifies: the starting point of each tampering."""
    await _calls(client, example)
    await _seal(runtime)
    assert (await _verify(client, example))["ok"] is True


async def test_a_modified_verdict_is_found(
    client: httpx.AsyncClient, example: Example, runtime: Runtime, test_db: Database
) -> None:
    await _tampered(client, example, runtime)
    org = example.seeded.org_id
    seq, event_id, verdict = next(d for d in _decision_links(test_db, org) if d[2] == "DENY")
    with _superuser(test_db) as conn:
        conn.execute(
            "UPDATE arx.audit_events SET verdict = 'PERMIT' WHERE org_id = %s AND id = %s",
            (org, event_id),
        )
    problem = (await _verify(client, example))["first_problem"]
    assert (problem["kind"], problem["org_seq"], problem["event_id"]) == (
        "event_modified",
        seq,
        str(event_id),
    )
    assert verdict == "DENY"


async def test_numbers_are_hashed_as_stored_and_none_stops_the_sealer(
    client: httpx.AsyncClient, example: Example, runtime: Runtime, test_db: Database
) -> None:
    """A float holds neither of these exactly (one not at all), nor a Python
    int 1e5000's 5001 digits: hashed through either, a change in the last
    digit would go unseen, and 1e400 or 1e5000 would stop sealing for every
    org. The chain hashes jsonb as PostgreSQL prints it."""
    org, event = example.seeded.org_id, uuid.uuid4()
    with psycopg.connect(test_db.admin_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO arx.audit_events (id, org_id, kind, action, details, actor)"
            " VALUES (%s, %s, 'admin', 'test.numbers', %s::jsonb, 'test')",
            (event, org, '{"amount": 123456789012345678901234567890.123456789, "big": 1e400,'
                         ' "huge": 1e5000, "rate": 1.50, "tiny": 0.0000001}'),
        )  # fmt: skip
    await _calls(client, example, 1)
    await _seal(runtime)
    assert event in {linked for _, linked, _ in _links(test_db, org)}
    report = await _verify(client, example)
    assert report["ok"] is True, report
    assert report["unsealed"] == 0
    with _superuser(test_db) as conn:
        conn.execute(
            "UPDATE arx.audit_events SET details = jsonb_set(details, '{amount}',"
            " '123456789012345678901234567890.123456788') WHERE id = %s",
            (event,),
        )
    problem = (await _verify(client, example))["first_problem"]
    assert (problem["kind"], problem["event_id"]) == ("event_modified", str(event))


async def test_after_a_key_rotation_old_checkpoints_verify_with_the_retired_public_key(
    client: httpx.AsyncClient, example: Example, runtime: Runtime, tmp_path: Path
) -> None:
    await _tampered(client, example, runtime)  # checkpoints signed by the current key
    assert runtime.audit_signer is not None
    old_public = tmp_path / "retired.pub.pem"
    old_public.write_bytes(runtime.audit_signer.public_pem())
    new = load_signer(ensure_key(tmp_path / "new" / "audit-signing.pem"))
    retired = retired_audit_keys(
        msgspec.structs.replace(runtime.settings, audit_trusted_key_files=(str(old_public),))
    )
    org = example.seeded.org_id

    async def verify(keys: list[Any]) -> dict[str, Any]:
        report = await verify_org(
            runtime.control_pool, org, public_keys=keys, witness=None, now=datetime.now(UTC)
        )
        return msgspec.to_builtins(report)  # type: ignore[no-any-return]

    # With only the new key, the old checkpoints look forged.
    problem = (await verify([new.public]))["first_problem"]
    assert problem["kind"] == "checkpoint_forged", problem
    # Trusting the retired key's public half, everything verifies, and the
    # export names both keys.
    assert (await verify([new.public, *retired]))["ok"] is True
    exported = await export_checkpoints_of(runtime.control_pool, org, [new.public, *retired])
    assert [k.key_id for k in exported.public_keys] == [new.kid, runtime.audit_signer.kid]
    # A file that is not an Ed25519 public key stops the start.
    (tmp_path / "junk.pem").write_text("not a key")
    with pytest.raises(ConfigError, match="ARX_AUDIT_TRUSTED_KEY_FILES"):
        retired_audit_keys(
            msgspec.structs.replace(
                runtime.settings, audit_trusted_key_files=(str(tmp_path / "junk.pem"),)
            )
        )


async def test_a_deleted_event_is_found(
    client: httpx.AsyncClient, example: Example, runtime: Runtime, test_db: Database
) -> None:
    await _tampered(client, example, runtime)
    org = example.seeded.org_id
    seq, event_id, _ = _decision_links(test_db, org)[-1]
    with _superuser(test_db) as conn:
        conn.execute("DELETE FROM arx.audit_events WHERE org_id = %s AND id = %s", (org, event_id))
    problem = (await _verify(client, example))["first_problem"]
    assert (problem["kind"], problem["org_seq"]) == ("event_deleted", seq)


async def test_an_event_and_its_link_deleted_leave_a_gap(
    client: httpx.AsyncClient, example: Example, runtime: Runtime, test_db: Database
) -> None:
    await _tampered(client, example, runtime)
    org = example.seeded.org_id
    seq, event_id, _ = _decision_links(test_db, org)[1]
    with _superuser(test_db) as conn:
        conn.execute("DELETE FROM arx.audit_events WHERE org_id = %s AND id = %s", (org, event_id))
        conn.execute("DELETE FROM arx.audit_chain WHERE org_id = %s AND org_seq = %s", (org, seq))
    problem = (await _verify(client, example))["first_problem"]
    assert (problem["kind"], problem["org_seq"]) == ("link_missing", seq)


async def test_an_event_slipped_into_the_past_is_found(
    client: httpx.AsyncClient, example: Example, runtime: Runtime, test_db: Database
) -> None:
    await _tampered(client, example, runtime)
    org = example.seeded.org_id
    with _superuser(test_db) as conn:
        # A copy of an old decision under a new id, stamped as the old one was.
        conn.execute(
            "INSERT INTO arx.audit_events OVERRIDING SYSTEM VALUE SELECT (jsonb_populate_record("
            "NULL::arx.audit_events,"
            " to_jsonb(e) || jsonb_build_object('id', gen_random_uuid(), 'agent_seq', NULL, 'seq',"
            " nextval('arx.audit_events_seq'),"
            " 'verdict', 'PERMIT'))).* FROM arx.audit_events e"
            " WHERE e.org_id = %s AND e.kind = 'decision' ORDER BY e.seq LIMIT 1",
            (org,),
        )
    problem = (await _verify(client, example))["first_problem"]
    assert problem["kind"] == "event_inserted"


@pytest.fixture(params=[100, 1], ids=["one-fetch", "partner-in-a-later-fetch"])
def walk_batch(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """verify's fetch size: with 1, a swapped event's partner is read ahead."""
    batch: int = request.param
    monkeypatch.setattr(verify, "WALK_BATCH", batch)
    return batch


@pytest.mark.usefixtures("walk_batch")
async def test_two_swapped_events_are_found(
    client: httpx.AsyncClient, example: Example, runtime: Runtime, test_db: Database
) -> None:
    await _tampered(client, example, runtime)
    org = example.seeded.org_id
    (a, ea, _), (b, eb, _) = _decision_links(test_db, org)[-2:]
    with _superuser(test_db) as conn:
        # The PERMIT now comes after the DENY: the links name each other's
        # event (through a placeholder: event ids are unique in the chain).
        swap = "UPDATE arx.audit_chain SET event_id = %s WHERE org_id = %s AND org_seq = %s"
        conn.execute(swap, (uuid.uuid4(), org, a))
        conn.execute(swap, (ea, org, b))
        conn.execute(swap, (eb, org, a))
    problem = (await _verify(client, example))["first_problem"]
    assert (problem["kind"], problem["org_seq"]) == ("events_swapped", a)
    assert str(b) in problem["detail"]


async def test_a_truncated_tail_after_the_last_checkpoint_is_found(
    client: httpx.AsyncClient, example: Example, runtime: Runtime, test_db: Database
) -> None:
    await _tampered(client, example, runtime)
    org = example.seeded.org_id
    checkpointed = len(_links(test_db, org))
    # More events, sealed (the witness outside the database records the head)
    # but not checkpointed yet.
    await _calls(client, example, 2)
    await _seal(runtime, checkpoint=False)
    assert len(_links(test_db, org)) > checkpointed
    assert (await _verify(client, example))["ok"] is True
    with _superuser(test_db) as conn:
        doomed = conn.execute(
            "SELECT event_id FROM arx.audit_chain WHERE org_id = %s AND org_seq > %s",
            (org, checkpointed),
        ).fetchall()
        conn.execute(
            "DELETE FROM arx.audit_chain WHERE org_id = %s AND org_seq > %s", (org, checkpointed)
        )
        conn.execute(
            "DELETE FROM arx.audit_events WHERE org_id = %s AND id = ANY(%s)",
            (org, [r[0] for r in doomed]),
        )
    report = await _verify(client, example)
    assert report["chained"] == checkpointed
    problem = report["first_problem"]
    assert (problem["kind"], problem["org_seq"]) == ("tail_truncated", checkpointed + 1)


async def test_a_forged_checkpoint_is_found(
    client: httpx.AsyncClient, example: Example, runtime: Runtime, test_db: Database
) -> None:
    await _tampered(client, example, runtime)
    org = example.seeded.org_id
    with _superuser(test_db) as conn:
        conn.execute(
            "UPDATE arx.audit_checkpoints SET org_seq = org_seq + 5 WHERE org_id = %s", (org,)
        )
    problem = (await _verify(client, example))["first_problem"]
    assert problem["kind"] == "checkpoint_forged"
    # A checkpoint signed by another key is no better.
    with _superuser(test_db) as conn:
        conn.execute(
            "UPDATE arx.audit_checkpoints SET org_seq = org_seq - 5, key_id = 'feedfacefeedface'"
            " WHERE org_id = %s",
            (org,),
        )
    assert (await _verify(client, example))["first_problem"]["kind"] == "checkpoint_forged"


async def test_a_rewritten_chain_does_not_match_the_signed_checkpoint(
    client: httpx.AsyncClient, example: Example, runtime: Runtime, test_db: Database
) -> None:
    """Whoever knows the (public) algorithm can rebuild the links after a
    change; only the checkpoint's signature gives it away."""
    await _tampered(client, example, runtime)
    org = example.seeded.org_id
    _, event_id, _ = next(d for d in _decision_links(test_db, org) if d[2] == "DENY")
    _permit_and_relink(test_db, org, event_id)
    problem = (await _verify(client, example))["first_problem"]
    assert problem["kind"] == "chain_rewritten"


async def test_an_auditor_verifies_the_exported_checkpoints_with_the_public_key_alone(
    client: httpx.AsyncClient,
    example: Example,
    runtime: Runtime,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await _tampered(client, example, runtime)
    await _calls(client, example, 1)
    await _seal(runtime)
    resp = await client.get(
        f"/v1/admin/orgs/{example.seeded.org_id}/audit/checkpoints", headers=example.owner
    )
    assert resp.status_code == 200, resp.text
    export = resp.json()
    assert [c["checkpoint_no"] for c in export["checkpoints"]] == [1, 2]
    assert runtime.audit_signer is not None
    public = tmp_path / "auditor.pub.pem"
    public.write_bytes(runtime.audit_signer.public_pem())
    kept = tmp_path / "checkpoints.json"
    kept.write_text(json.dumps(export))
    args = ["audit", "verify-checkpoints", str(kept), "--public-key", str(public)]
    assert cli_main(args) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True

    # A checkpoint whose head was changed in the file: its signature fails.
    forged = dict(export)
    forged["checkpoints"] = [dict(c) for c in export["checkpoints"]]
    forged["checkpoints"][1]["hash"] = "00" * 32
    kept.write_text(json.dumps(forged))
    assert cli_main(args) == 1
    assert "checkpoint 2's signature does not verify" in capsys.readouterr().err

    # The right file, the wrong key.
    kept.write_text(json.dumps(export))
    other = ensure_key(tmp_path / "other.pem")
    public.write_bytes(load_signer(other).public_pem())
    assert cli_main(args) == 1
    assert "names key" in capsys.readouterr().err


async def test_a_deleted_checkpoint_is_found(
    client: httpx.AsyncClient, example: Example, runtime: Runtime, test_db: Database
) -> None:
    await _tampered(client, example, runtime)
    await _calls(client, example, 1)
    await _seal(runtime)
    with _superuser(test_db) as conn:
        conn.execute(
            "DELETE FROM arx.audit_checkpoints WHERE org_id = %s AND checkpoint_no = 1",
            (example.seeded.org_id,),
        )
    problem = (await _verify(client, example))["first_problem"]
    assert problem["kind"] == "checkpoint_deleted"


async def test_a_chain_rewritten_after_the_last_checkpoint_is_found_and_never_signed(
    client: httpx.AsyncClient, example: Example, runtime: Runtime, test_db: Database
) -> None:
    """Links recomputed after a change past the last checkpoint: the witness
    (outside the database) still holds the head this host sealed, so verify
    finds it and the sealer refuses to sign the rewritten head."""
    await _tampered(client, example, runtime)
    org = example.seeded.org_id
    await _calls(client, example, 1)  # a DENY, sealed but not yet checkpointed
    await _seal(runtime, checkpoint=False)
    _, event_id, _ = _decision_links(test_db, org)[-1]
    _permit_and_relink(test_db, org, event_id)
    problem = (await _verify(client, example))["first_problem"]
    assert problem["kind"] == "chain_rewritten"
    assert runtime.sealer is not None
    assert await runtime.sealer.checkpoint_once() == 0
