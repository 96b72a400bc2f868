"""Replay before activation, in-process: real OPA, real PostgreSQL, fake Falcon.

Every decision event keeps the exact input OPA decided on, and a candidate
bundle replayed through the API (and the CLI) reports exactly which recorded
decisions it would change, without touching the sidecar.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import sys
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx
import psycopg
import pytest

import arx.cli.main as cli_main
from arx.audit.types import DecisionEvent
from arx.cli.client import AdminClient
from arx.config import Settings
from arx.deadline import Deadline
from arx.devstack.seed import seed_example_org
from arx.errors import InvalidFieldError
from arx.policy.lifecycle import archive, replay
from arx.runtime import Runtime
from tests.fixtures.arx import (
    FALCON_CLIENT_ID,
    FALCON_CLIENT_SECRET,
    FALCON_URL,
    Example,
)
from tests.fixtures.database import Database

pytestmark = pytest.mark.anyio

EXECUTE = "/v1/sdk/execute"
GZIP = {"content-type": "application/gzip"}
HOST = "a" * 32
# (agent, operation, params) -> what the example bundle decides.
CALLS: list[tuple[str, str, dict[str, Any], tuple[str, str]]] = [
    ("triage-bot", "hosts:search", {}, ("PERMIT", "default:read")),
    ("triage-bot", "hosts:contain", {"ids": [HOST]}, ("DENY", "EX-001")),
    ("responder-bot", "hosts:contain", {"ids": [HOST]}, ("ESCALATE", "EX-010")),
    ("responder-bot", "hosts:search", {"limit": 5}, ("PERMIT", "default:read")),
]


# --- helpers ------------------------------------------------------------------------------


def _url(org_id: Any) -> str:
    return f"/v1/admin/orgs/{org_id}/policy/replay"


def _decisions(test_db: Database, org_id: Any) -> list[dict[str, Any]]:
    """The org's decision events, newest first, with their stored input as text."""
    with psycopg.connect(test_db.admin_url) as conn:
        cur = conn.execute(
            "SELECT id, created_at, agent_id, connector, operation, verdict, policy_id,"
            " risk_score, reasons, policy_input::text AS policy_input FROM arx.audit_events"
            " WHERE org_id = %s AND kind = 'decision' ORDER BY seq DESC",
            (org_id,),
        )
        names = [d.name for d in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


async def _execute(
    client: httpx.AsyncClient, example: Example, agent: str, op: str, params: dict[str, Any]
) -> httpx.Response:
    resp = await client.post(
        EXECUTE,
        json={"connector": "crowdstrike", "operation": op, "params": params},
        headers=example.auth(agent),
    )
    assert resp.status_code in (200, 202, 403), resp.text
    return resp


async def _make_calls(client: httpx.AsyncClient, example: Example) -> None:
    for agent, op, params, (verdict, policy_id) in CALLS:
        body = (await _execute(client, example, agent, op, params)).json()
        assert (body["verdict"], body["policy_id"]) == (verdict, policy_id), body


async def _legacy_decision(runtime: Runtime, example: Example) -> uuid.UUID:
    """A decision recorded without its input, as every one before migration 0014 was."""
    deadline = Deadline(10)
    who = await runtime.auth.authenticate(example.auth("triage-bot")["authorization"], deadline)
    ctx = await runtime.trail.read_context(who, "crowdstrike", deadline)
    event = DecisionEvent(
        id=uuid.uuid4(),
        org_id=who.org_id,
        agent_id=who.agent_id,
        connector="crowdstrike",
        operation="hosts:get",
        operation_kind="read",
        params={"ids": [HOST]},
        targets=[HOST],
        verdict="PERMIT",
        risk_score=10,
        policy_id="default:read",
        reasons=[],
        bundle_revisions={},
        request_id=None,
    )
    recorded = await runtime.trail.record_decision(
        event, session=ctx, approval=None, deadline=deadline
    )
    assert recorded is not None
    return event.id


def _candidate(repo_root: Path, dest: Path, change: Any = None, *, slug: str = "example") -> Path:
    """A copy of the example bundle (for ``slug``), its data.json changed by ``change``."""
    source = dest / "candidate"
    shutil.copytree(repo_root / "bundles" / "example", source)
    if slug != "example":
        (source / "orgs" / "example").rename(source / "orgs" / slug)
        manifest = json.loads((source / ".manifest").read_text())
        manifest["roots"] = [f"orgs/{slug}"]
        (source / ".manifest").write_text(json.dumps(manifest))
        # The example's tests name data.orgs.example; replay ignores tests anyway.
        (source / "orgs" / slug / "example_test.rego").unlink()
    if change is not None:
        data_file = source / "orgs" / slug / "data.json"
        data = json.loads(data_file.read_text())
        change(data)
        data_file.write_text(json.dumps(data))
    return source


def _flip(data: dict[str, Any]) -> None:
    """Reads escalate by default, and host containment is denied outright."""
    data["defaults"]["read"] = "ESCALATE"
    for rule in data["rules"]:
        if rule["id"] == "EX-010":
            rule["verdict"] = "DENY"


# What _flip does to the example's decisions: (verdict, rule) before -> after.
FLIPPED = {
    ("PERMIT", "default:read"): ("ESCALATE", "default:read"),
    ("ESCALATE", "EX-010"): ("DENY", "EX-010"),
}


async def _replay(
    client: httpx.AsyncClient,
    org_id: Any,
    bundle: bytes,
    headers: dict[str, str],
    **params: Any,
) -> httpx.Response:
    return await client.post(
        _url(org_id),
        params={"since": "1h", **params},
        content=bundle,
        headers={**headers, **GZIP},
    )


def _expected(decisions: list[dict[str, Any]], mapping: dict[Any, Any]) -> dict[Any, list[str]]:
    """Changed decisions' ids (newest first) by transition, for those with an input."""
    expected: dict[Any, list[str]] = {}
    for d in decisions:
        before = (d["verdict"], d["policy_id"])
        if d["policy_input"] is None or before not in mapping:
            continue
        expected.setdefault((*before, *mapping[before]), []).append(str(d["id"]))
    return expected


def _reported(report: dict[str, Any]) -> dict[Any, list[str]]:
    return {
        (c["old_verdict"], c["old_policy_id"], c["new_verdict"], c["new_policy_id"]): [
            e["event_id"] for e in c["examples"]
        ]
        for c in report["changes"]
    }


# --- the stored input ---------------------------------------------------------------------


async def test_each_decision_stores_the_exact_input_opa_decided_on(
    client: httpx.AsyncClient,
    example: Example,
    runtime: Runtime,
    test_db: Database,
    *,
    opa_path: Path,
    repo_root: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[bytes] = []
    decide = runtime.policy.decide

    async def recording(body: bytes, *, within: float) -> Any:
        asked.append(body)
        return await decide(body, within=within)

    monkeypatch.setattr(runtime.policy, "decide", recording)
    await _make_calls(client, example)

    decisions = list(reversed(_decisions(test_db, example.seeded.org_id)))
    assert len(decisions) == len(asked) == len(CALLS)
    for body, d in zip(asked, decisions, strict=True):
        # Byte for byte what OPA received: the body is {"input": <this>}.
        assert body == b'{"input":' + d["policy_input"].encode() + b"}"
        # Decided again by the real opa with the bundles the sidecar serves,
        # the stored input gives the recorded decision.
        done = subprocess.run(  # noqa: ASYNC221 (a test, waiting on purpose)
            [str(opa_path), "eval", "--format", "json", "--stdin-input",
             "-b", str(repo_root / "rego"), "-b", str(repo_root / "bundles" / "example"),
             "--ignore", "*_test.rego", "data.arx.decision"],
            input=d["policy_input"].encode(),
            capture_output=True,
            check=True,
        )  # fmt: skip
        again = json.loads(done.stdout)["result"][0]["expressions"][0]["value"]
        assert (again["verdict"], again["policy_id"], again["risk_score"], again["reasons"]) == (
            d["verdict"],
            d["policy_id"],
            d["risk_score"],
            d["reasons"],
        )
    # Nothing secret: no agent key, no admin token, no tool credential.
    stored = "".join(d["policy_input"] for d in decisions)
    for secret in (
        *example.seeded.api_keys.values(),
        example.seeded.owner_token,
        FALCON_CLIENT_SECRET,
        FALCON_CLIENT_ID,
    ):
        assert secret not in stored
    for key in example.seeded.api_keys.values():
        # Not even the key's secret half.
        assert key.rsplit("_", 1)[-1] not in stored


async def test_only_decision_events_may_carry_an_input(
    client: httpx.AsyncClient, example: Example, test_db: Database
) -> None:
    await _execute(client, example, "triage-bot", "hosts:search", {})
    with psycopg.connect(test_db.admin_url) as conn:
        kinds: dict[str, bool] = dict(
            conn.execute(
                "SELECT kind, bool_and(policy_input IS NOT NULL) FROM arx.audit_events"
                " WHERE kind IN ('decision', 'result') GROUP BY kind"
            ).fetchall()
        )
        assert kinds == {"decision": True, "result": False}
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(
                "INSERT INTO arx.audit_events (id, org_id, kind, action, policy_input)"
                " VALUES (%s, %s, 'admin', 'x', '{}')",
                (uuid.uuid4(), example.seeded.org_id),
            )


# --- replay through the API -----------------------------------------------------------------


async def test_replay_reports_exactly_the_decisions_a_candidate_changes(
    client: httpx.AsyncClient,
    example: Example,
    runtime: Runtime,
    test_db: Database,
    *,
    repo_root: Path,
    tmp_path: Path,
) -> None:
    legacy = await _legacy_decision(runtime, example)
    await _make_calls(client, example)
    decisions = _decisions(test_db, example.seeded.org_id)
    org = example.seeded.org_id

    # The active bundle itself changes nothing: every stored input is exact.
    same = archive.pack(_candidate(repo_root, tmp_path / "same"))
    resp = await _replay(client, org, same, example.owner)
    assert resp.status_code == 200, resp.text
    report = resp.json()
    assert report["org_slug"] == "example"
    assert report["candidate_revision"].startswith("example-")
    assert (report["examined"], report["not_replayable"], report["unchanged"]) == (5, 1, 4)
    assert (report["changed"], report["changes"], report["truncated"]) == (0, [], False)

    flipped = archive.pack(_candidate(repo_root, tmp_path / "flipped", _flip))
    resp = await _replay(client, org, flipped, example.owner)
    assert resp.status_code == 200, resp.text
    report = resp.json()
    expected = _expected(decisions, FLIPPED)
    assert _reported(report) == expected
    assert {
        (c["old_verdict"], c["old_policy_id"], c["new_verdict"], c["new_policy_id"]): c["count"]
        for c in report["changes"]
    } == {k: len(v) for k, v in expected.items()}
    changed = sum(len(v) for v in expected.values())
    assert changed == 3  # the two reads, the containment
    assert report["examined"] == len(decisions) == 5
    assert report["not_replayable"] == 1, "the legacy decision has no input"
    assert legacy not in {e for ids in expected.values() for e in ids}
    assert (report["changed"], report["unchanged"]) == (changed, 4 - changed)
    # Largest group first; examples carry what a reviewer needs.
    assert [c["count"] for c in report["changes"]] == [2, 1]
    example_row = report["changes"][1]["examples"][0]
    recorded = next(d for d in decisions if str(d["id"]) == example_row["event_id"])
    assert example_row["agent_name"] == "responder-bot"
    assert example_row["agent_id"] == str(recorded["agent_id"])
    assert (example_row["connector"], example_row["operation"]) == ("crowdstrike", "hosts:contain")
    assert example_row["risk_before"] == example_row["risk_after"] == recorded["risk_score"]
    assert example_row["reasons"][0] == "Host containment needs a human approval"
    assert datetime.fromisoformat(example_row["decided_at"]) == recorded["created_at"]

    # One example per group, when asked; the counts stay whole.
    resp = await _replay(client, org, flipped, example.owner, examples=1)
    assert [len(c["examples"]) for c in resp.json()["changes"]] == [1, 1]
    assert [c["count"] for c in resp.json()["changes"]] == [2, 1]

    # The sidecar was never touched: the live decision is still the active bundle's.
    body = (await _execute(client, example, "triage-bot", "hosts:search", {})).json()
    assert (body["verdict"], body["policy_id"]) == ("PERMIT", "default:read")


async def test_replay_window_and_limit(
    client: httpx.AsyncClient,
    example: Example,
    test_db: Database,
    repo_root: Path,
    tmp_path: Path,
) -> None:
    await _make_calls(client, example)
    decisions = _decisions(test_db, example.seeded.org_id)  # newest first
    org = example.seeded.org_id
    flipped = archive.pack(_candidate(repo_root, tmp_path, _flip))

    # The newest two only, and the answer says the window held more.
    resp = await _replay(client, org, flipped, example.owner, limit=2)
    assert resp.status_code == 200, resp.text
    report = resp.json()
    assert (report["examined"], report["truncated"], report["limit"]) == (2, True, 2)
    assert _reported(report) == _expected(decisions[:2], FLIPPED)

    # [since, until): until excludes the decision made at that very time.
    until = decisions[1]["created_at"]
    resp = await _replay(
        client,
        org,
        flipped,
        example.owner,
        since=(until - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%MZ"),
        until=until.astimezone(UTC).isoformat(),
    )
    assert resp.status_code == 200, resp.text
    report = resp.json()
    assert report["examined"] == len(decisions) - 2
    assert _reported(report) == _expected(decisions[2:], FLIPPED)

    # since is included: the window starts at the second newest decision.
    resp = await _replay(
        client, org, flipped, example.owner, since=until.astimezone(UTC).isoformat()
    )
    assert resp.status_code == 200, resp.text
    report = resp.json()
    assert (report["examined"], report["truncated"]) == (2, False)
    assert _reported(report) == _expected(decisions[:2], FLIPPED)

    # A window before every decision holds none; the candidate is still evaluated.
    resp = await _replay(
        client, org, flipped, example.owner, since="2020-01-01T00:00Z", until="2020-01-02T00:00Z"
    )
    assert resp.status_code == 200, resp.text
    assert (resp.json()["examined"], resp.json()["changes"]) == (0, [])


async def test_replay_never_reads_another_orgs_decisions(
    client: httpx.AsyncClient,
    example: Example,
    runtime: Runtime,
    test_db: Database,
    *,
    repo_root: Path,
    tmp_path: Path,
) -> None:
    other = await seed_example_org(
        runtime,
        falcon_url=FALCON_URL,
        client_id=FALCON_CLIENT_ID,
        client_secret=FALCON_CLIENT_SECRET,
        slug="other",
        owner_email="owner@other.test",
    )
    other_example = Example(other)
    await _make_calls(client, example)
    for agent in ("triage-bot", "responder-bot"):
        # No bundle serves "other": its decisions are all DENY arx.no_org_policy.
        await _execute(client, other_example, agent, "hosts:search", {})

    mine = {str(d["id"]) for d in _decisions(test_db, example.seeded.org_id)}
    theirs = {str(d["id"]) for d in _decisions(test_db, other.org_id)}
    assert len(mine) == 4
    assert len(theirs) == 2

    # Every decision changes under this candidate: any id reported is one replayed.
    def deny_all(data: dict[str, Any]) -> None:
        data["rules"].insert(
            0, {"id": "ALL", "priority": 1, "verdict": "DENY", "match": {"min_risk": 0}}
        )

    resp = await _replay(
        client, example.seeded.org_id, archive.pack(_candidate(repo_root, tmp_path, deny_all)),
        example.owner, examples=50,
    )  # fmt: skip
    assert resp.status_code == 200, resp.text
    report = resp.json()
    assert report["examined"] == report["changed"] == 4
    assert {e for ids in _reported(report).values() for e in ids} == mine

    # The other org's candidate, by its owner, sees its decisions only.
    theirs_bundle = _candidate(repo_root, tmp_path / "other", deny_all, slug="other")
    resp = await _replay(
        client, other.org_id, archive.pack(theirs_bundle), other_example.owner, examples=50
    )
    assert resp.status_code == 200, resp.text
    report = resp.json()
    assert report["examined"] == report["changed"] == 2
    assert {e for ids in _reported(report).values() for e in ids} == theirs
    assert {(c["old_policy_id"], c["new_policy_id"]) for c in report["changes"]} == {
        ("arx.no_org_policy", "ALL")
    }

    # One org's credential on the other's path: as if it did not exist.
    resp = await _replay(client, other.org_id, archive.pack(theirs_bundle), example.owner)
    assert resp.status_code == 404, resp.text
    # And a bundle for the other org is not replayed against this one.
    resp = await _replay(client, example.seeded.org_id, archive.pack(theirs_bundle), example.owner)
    assert resp.status_code == 422, resp.text


# --- refusals -----------------------------------------------------------------------------


async def _token(client: httpx.AsyncClient, example: Example, role: str) -> dict[str, str]:
    resp = await client.post(
        f"/v1/admin/orgs/{example.seeded.org_id}/admin-tokens",
        json={"name": role, "roles": [role]},
        headers=example.owner,
    )
    assert resp.status_code == 201, resp.text
    return {"authorization": f"Bearer {resp.json()['token']}"}


async def test_who_may_replay(
    client: httpx.AsyncClient, example: Example, repo_root: Path, tmp_path: Path
) -> None:
    bundle = archive.pack(_candidate(repo_root, tmp_path))
    org = example.seeded.org_id
    # Its examples are recorded calls: those who read the audit trail.
    for role in ("auditor", "admin"):
        resp = await _replay(client, org, bundle, await _token(client, example, role))
        assert resp.status_code == 200, (role, resp.text)
    for role in ("policy_author", "reviewer"):
        resp = await _replay(client, org, bundle, await _token(client, example, role))
        assert resp.status_code == 403, (role, resp.text)
        assert resp.json()["code"] == "role_required"
    # An agent's key is no admin credential.
    resp = await _replay(client, org, bundle, example.auth("triage-bot"))
    assert resp.status_code == 401, resp.text


async def test_replay_refuses_what_it_cannot_replay(
    client: httpx.AsyncClient,
    example: Example,
    settings: Settings,
    repo_root: Path,
    tmp_path: Path,
) -> None:
    org = example.seeded.org_id
    good = archive.pack(_candidate(repo_root, tmp_path / "good"))

    async def refused(
        status: int,
        bundle: bytes = good,
        *,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] = GZIP,
    ) -> dict[str, Any]:
        resp = await client.post(
            _url(org),
            params={"since": "1h"} if params is None else params,
            content=bundle,
            headers={**example.owner, **headers},
        )
        assert resp.status_code == status, resp.text
        assert resp.headers["content-type"].startswith("application/problem+json")
        body: dict[str, Any] = resp.json()
        return body

    # Another org's roots: 422 quoting the rule.
    wrong = _candidate(repo_root, tmp_path / "wrong", slug="elsewhere")
    body = await refused(422, archive.pack(wrong))
    assert body["code"] == "bundle_rejected"
    assert 'roots must be exactly ["orgs/example"]' in body["detail"]
    # Not gzip at all: by media type, then by content.
    body = await refused(415, headers={"content-type": "application/json"})
    assert body["code"] == "unsupported_media_type"
    body = await refused(422, b"not a tarball")
    assert "not a readable .tar.gz" in body["detail"]
    # Too large.
    body = await refused(413, b"\x1f\x8b" + b"\0" * settings.max_bundle_bytes)
    assert body["code"] == "payload_too_large"
    # What a push refuses: org Rego policy, and an org document that is not
    # valid (quoting opa, naming the engineer's rule); nothing of this machine.
    code = _candidate(repo_root, tmp_path / "code")
    (code / "orgs" / "example" / "extra.rego").write_text("package orgs.example\nx := 1\n")
    body = await refused(422, archive.pack(code))
    assert "may not hold Rego policy: orgs/example/extra.rego" in body["detail"]

    def unknown_param(data: dict[str, Any]) -> None:
        data["rules"][0]["match"] = {
            "connectors": ["crowdstrike"],
            "operations": ["hosts:contain"],
            "params": {"hostnames": {"eq": "x"}},
        }

    body = await refused(422, archive.pack(_candidate(repo_root, tmp_path / "bad", unknown_param)))
    assert "match.params.hostnames is not a param of crowdstrike hosts:contain" in body["detail"]
    assert str(tmp_path) not in body["detail"]
    # A bad window: 422 naming the field; a bad limit: 400.
    for params, field in (
        ({"since": "yesterday"}, "since"),
        ({"since": "2025-02-30T00:00Z"}, "since"),
        ({"since": "1h", "until": "2h"}, "since"),
        ({"since": "1h", "until": "soon"}, "until"),
    ):
        body = await refused(422, params=params)
        assert (body["code"], body["field"]) == ("invalid_field", field), params
    await refused(400, params={"since": "1h", "limit": 0})
    await refused(400, params={"since": "1h", "limit": replay.MAX_DECISIONS + 1})
    await refused(400, params={})  # no window at all


def test_window_reads_durations_and_iso_times() -> None:
    now = datetime(2025, 1, 31, 12, 0, tzinfo=UTC)
    assert replay.window("30m", None, now=now) == (now - timedelta(minutes=30), now)
    assert replay.window("7d", "2h", now=now) == (now - timedelta(days=7), now - timedelta(hours=2))
    since, until = replay.window("2025-01-31T08:00+02:00", "2025-01-31T08:00:00.5", now=now)
    assert since == datetime(2025, 1, 31, 6, 0, tzinfo=UTC)
    assert until == datetime(2025, 1, 31, 8, 0, 0, 500000, tzinfo=UTC)
    for bad in (
        "0h",
        "24 h",
        "1w",
        "2025-01-31",
        "2025-01-31T08:00:00+0200",
        "0001-01-01T00:00+01:00",
    ):
        with pytest.raises(InvalidFieldError):
            replay.window(bad, None, now=now)


# --- the CLI --------------------------------------------------------------------------------


class _Bridge(httpx.BaseTransport):
    """The CLI's synchronous client, answered by the in-process app on the
    test's event loop (the CLI runs in a worker thread)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def send() -> httpx.Response:
            resp = await self._client.send(request)
            content = await resp.aread()
            return httpx.Response(resp.status_code, headers=resp.headers, content=content)

        return anyio.from_thread.run(send)


async def test_cli_replay_prints_the_changes(
    client: httpx.AsyncClient,
    example: Example,
    test_db: Database,
    *,
    repo_root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await _make_calls(client, example)
    expected = _expected(_decisions(test_db, example.seeded.org_id), FLIPPED)
    candidate = _candidate(repo_root, tmp_path, _flip)
    monkeypatch.setattr(
        cli_main,
        "AdminClient",
        lambda url, token: AdminClient(url, token, transport=_Bridge(client)),
    )
    env = {"ARX_URL": "http://arx.test", "ARX_TOKEN": example.seeded.owner_token}

    async def arx(*argv: str) -> str:
        code = await anyio.to_thread.run_sync(functools.partial(cli_main.main, list(argv), env))
        out, err = capsys.readouterr()
        assert (code, err) == (0, ""), err
        return out

    args = ("policy", "replay", "--bundle", str(candidate), "--since", "24h", "--org", "example")
    # Off a terminal (and with --json): the API's JSON.
    for extra in ((), ("--json",)):
        report = json.loads(await arx(*args, *extra))
        assert _reported(report) == expected
    # A .tar.gz works as well as a directory.
    packed = tmp_path / "candidate.tar.gz"
    packed.write_bytes(archive.pack(candidate))
    report = json.loads(await arx(*args[:3], str(packed), *args[4:], "--limit", "3"))
    assert report["examined"] == 3
    assert report["truncated"] is True

    # On a terminal: the table, then the examples.
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    text = await arx(*args, "--examples", "1")
    lines = text.splitlines()
    assert lines[0].startswith("Replay of example-")
    assert "Decisions: 4 examined, 1 unchanged, 3 changed, 0 not replayable" in lines[2]
    table = [line.split() for line in lines[4:7]]
    assert table == [
        ["count", "before", "after"],
        ["2", "PERMIT", "default:read", "ESCALATE", "default:read"],
        ["1", "ESCALATE", "EX-010", "DENY", "EX-010"],
    ]
    newest = expected[("PERMIT", "default:read", "ESCALATE", "default:read")][0]
    assert f"event {newest}" in text
    assert "PERMIT default:read -> ESCALATE default:read (2)" in text

    # A refusal is the CLI's one-line error, with the server's code.
    code = await anyio.to_thread.run_sync(
        functools.partial(cli_main.main, [*args[:5], "yesterday"], env)
    )
    out, err = capsys.readouterr()
    assert (code, out) == (1, "")
    assert err.startswith("arx: error: since must be an ISO 8601 time")
    assert err.rstrip().endswith("[invalid_field]")


def test_no_decision_counts_twice() -> None:
    """Groups partition the changed decisions (a unit check of the comparison)."""
    now = datetime.now(UTC)
    recorded = [("PERMIT", "a", 10), ("PERMIT", "a", 10), ("DENY", "b", 90), ("DENY", "b", 90)]
    rows = [
        replay.Recorded(
            id=uuid.uuid4(), created_at=now, agent_id=None, agent_name=None, connector=None,
            operation=None, verdict=v, policy_id=p, risk_score=r, policy_input="{}",
        )
        for v, p, r in recorded
    ]  # fmt: skip
    decided = {
        str(rows[0].id): {"verdict": "PERMIT", "risk_score": 10, "policy_id": "a", "reasons": []},
        str(rows[1].id): {"verdict": "PERMIT", "risk_score": 20, "policy_id": "a", "reasons": []},
        str(rows[2].id): {"verdict": "MAYBE"},  # not a decision: the call would fail closed
        # rows[3]: undefined
    }
    changes, unchanged = replay._compare(rows, decided, 5)
    assert unchanged == 1
    assert Counter({(c.old_policy_id, c.new_verdict): c.count for c in changes}) == Counter(
        {("a", "PERMIT"): 1, ("b", "FAIL_CLOSED"): 2}
    )
    assert sum(c.count for c in changes) == 3
