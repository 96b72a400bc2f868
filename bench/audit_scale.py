"""Benchmark: execute latency and audit list queries at 10 thousand vs 1 million events.

Issue 9 asks that a trail of a million events across ten orgs cost the hot
path nothing visible (execute p50 within 1.1x of a small trail) and that an
audit list query stay under 50 ms. One command starts the whole local stack
the way bench/execute.py does (durable cluster, real OPA sidecar, Falcon
sandbox, ARX API), adds nine orgs beside the example org (each with a few
agents), and then runs two phases:

- ``10k``: the trail is filled to ``--small`` events (10 000), the sealer
  catches up and VACUUM ANALYZE runs; then it measures the audit list queries
  and the execute path;
- ``1M``: the trail is filled to ``--events`` events, sealed, vacuumed, and
  measured again the same way.

The filling is SQL as the database superuser (INSERT … SELECT FROM
generate_series, about 100 000 events a transaction): decisions of several
agents per org (85% PERMIT reads, 10% ESCALATE and 5% DENY containments),
a result for every PERMIT, an admin event now and then. The JSON columns are
copied from real events the API recorded during set-up, each agent's
agent_seq and tally_* columns are what arx.record_decision would have
written, and created_at runs at a constant rate over the past 60 days,
ending at least an hour ago (the 10k phase is the oldest part of that history). The
measured agents are never given seeded rows: their sessions stay theirs.

The trail is partitioned by month (migration 0019), and a row's month is
chosen from created_at before any trigger runs; the stamp trigger refuses a
created_at that is not the clock's. So each seeding transaction switches the
stamp off and writes what it would have written itself: seq from the trail's
sequence (a block reserved for the batch), txid the transaction's own,
created_at the row's place in the history (the batch's rows evenly over its
span), and each event's id in arx.audit_event_ids. It switches the stamp
back on before it commits: no other session ever sees it off (a writer
waits for the batch instead). The months of the history are created
first, and after each batch the seeded agents' heads (arx.agent_heads) are
set to their newest decisions, as record_decision would have left them.
Append-only stays enforced throughout. While the filling runs, one open
transaction holds the sealer back (it seals only transactions older than
every one still running), so filling and sealing are timed apart: the
sealing rate printed is the sealer's alone.

Measured in each phase:

- the audit list, ``GET /v1/admin/orgs/{org}/audit`` with the example org's
  owner token: the newest page (limit 100), a page filtered by agent_id, by
  verdict=DENY, by a one-hour since/until window in the middle of the seeded
  history, and the next page through the first page's cursor; each repeated
  ``--list-repeats`` times, p50/p95 in ms. It expects the paged shape
  ``{"events": [...], "next_cursor": ...}``; a route that still answers a bare
  list is measured as it is (oldest first, ``after_seq`` for the next page)
  and the report says the filters were not honoured;
- ``POST /v1/sdk/execute`` ``crowdstrike hosts:search`` with bench/execute.py's
  closed-loop generator: 1 client, then 8 clients (one agent each, or all one
  agent with ``--one-agent``); throughput, p50/p95/p99 and CPU per request.

A final table sets the phases side by side with their ratios. It asserts
nothing about speed: it is a benchmark, not a test.

    .venv/bin/python bench/audit_scale.py                                  # 1M events
    .venv/bin/python bench/audit_scale.py --events 50000 --requests 200   # a quick look

On a 2-core machine the load generator, the API, OPA, PostgreSQL and the
sandbox share the cores: compare runs on one machine.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import shlex
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, LiteralString

import aiohttp
import msgspec
import psycopg
import uvloop

# bench/execute.py, beside this file: Python puts a script's own directory on
# sys.path, so its load generator is imported rather than copied.
from execute import Call, Result, bench_stack, run_path

from arx.admin.service import create_agent
from arx.config import load_settings
from arx.devstack.demo import DEMO_DB, SANDBOX_CLIENT_ID, Stack
from arx.devstack.postgres import psql_url_with
from arx.devstack.seed import SEED, seed_example_org
from arx.identity.types import IntentManifest
from arx.runtime import open_runtime

SEARCH = {"connector": "crowdstrike", "operation": "hosts:search", "params": {"limit": 10}}
INTENT = IntentManifest(
    purpose="benchmark agent: looks hosts up", scope={"crowdstrike": ["hosts:search", "hosts:get"]}
)
SEEDED_INTENT = IntentManifest(
    purpose="benchmark history: looks hosts up, contains some",
    scope={"crowdstrike": ["hosts:*"]},
)
HISTORY = timedelta(days=60)
# The newest seeded event is this old: the measured agents' one-hour session
# window holds only their own calls.
QUIET = timedelta(hours=1)
# Of each agent's 20 consecutive calls: 17 PERMIT reads, ESCALATE at 7 and 17,
# DENY at 13 (both containments); an admin event every 97th call, org-wide.
# SEED_BATCH spells the same numbers in its closed-form tallies.
ESCALATE_AT, DENY_AT, ADMIN_EVERY = (7, 17), 13, 97
EVENTS_PER_CALL = 1 + 17 / 20 + 1 / ADMIN_EVERY
CALLS_PER_BATCH = 54_000  # about 100 000 events a transaction
PROGRESS_SECONDS = 10.0


# --- the seeded history ------------------------------------------------------------

# The stamp is off while a batch is written (see above); the batch writes its
# columns: seq from a reserved block, created_at spaced evenly over its span.
STAMP_OFF = "ALTER TABLE arx.audit_events DISABLE TRIGGER audit_events_stamp"
STAMP_ON = "ALTER TABLE arx.audit_events ENABLE ALWAYS TRIGGER audit_events_stamp"
RESERVE_SEQ = (
    "SELECT s, setval('arx.audit_events_seq', s + %(rows)s - 1)"
    " FROM nextval('arx.audit_events_seq') AS s"
)
MONTHS = (
    "SELECT arx.create_audit_partition(m::date) FROM generate_series("
    " date_trunc('month', %s::timestamptz AT TIME ZONE 'UTC'),"
    " date_trunc('month', now() AT TIME ZONE 'UTC'), interval '1 month') AS m"
)
HEADS = """
INSERT INTO arx.agent_heads AS h (org_id, agent_id, head_seq, tally_read, tally_write,
    tally_containment, tally_destructive, tally_denied)
SELECT DISTINCT ON (org_id, agent_id) org_id, agent_id, agent_seq, tally_read, tally_write,
       tally_containment, tally_destructive, tally_denied
  FROM arx.audit_events
 WHERE kind = 'decision' AND agent_id = ANY(%s) AND agent_seq IS NOT NULL
   AND created_at >= %s
 ORDER BY org_id, agent_id, agent_seq DESC
ON CONFLICT (org_id, agent_id) DO UPDATE SET head_seq = excluded.head_seq,
    tally_read = excluded.tally_read, tally_write = excluded.tally_write,
    tally_containment = excluded.tally_containment,
    tally_destructive = excluded.tally_destructive, tally_denied = excluded.tally_denied
"""

# Call c (0, 1, 2 …) is made by seeded agent j of org o, as that agent's k-th
# call: agents take turns, so each agent's calls keep the history's order.
# Its tallies are arx.record_decision's running counts over the agent's calls
# 0..k, in closed form from the 20-call pattern (n calls, q whole patterns, m
# past the last): ESCALATE at 7 and 17, DENY at 13, every other call a read.
SEED_BATCH: LiteralString = """
WITH tpl AS MATERIALIZED (
    SELECT verdict, operation, operation_kind, params, targets, risk_score, policy_id, reasons,
           bundle_revisions, policy_input
      FROM arx.audit_events
     WHERE org_id = %(tpl_org)s AND id = ANY(%(tpl_decisions)s)
), res AS MATERIALIZED (
    SELECT outcome, result, error FROM arx.audit_events
     WHERE org_id = %(tpl_org)s AND id = %(tpl_result)s
), adm AS MATERIALIZED (
    SELECT action, details, actor FROM arx.audit_events
     WHERE org_id = %(tpl_org)s AND id = %(tpl_admin)s
), calls AS MATERIALIZED (
    SELECT g.c,
           (%(orgs)s::uuid[])[1 + mod(g.c, %(n_orgs)s)] AS org_id,
           (%(agents)s::uuid[])[1 + mod(g.c, %(n_orgs)s) * %(per_org)s
                                  + mod(g.c / %(n_orgs)s, %(per_org)s)] AS agent_id,
           g.c / (%(n_orgs)s * %(per_org)s) AS k,
           gen_random_uuid() AS decision_id,
           replace(gen_random_uuid()::text, '-', '') AS request_id
      FROM generate_series(%(c_lo)s::bigint, %(c_hi)s::bigint - 1) AS g (c)
), shaped AS (
    SELECT c.*,
           CASE WHEN mod(c.k, 20) IN (7, 17) THEN 'ESCALATE'
                WHEN mod(c.k, 20) = 13 THEN 'DENY' ELSE 'PERMIT' END AS verdict,
           2 * ((c.k + 1) / 20) + (mod(c.k + 1, 20) > 7)::int
               + (mod(c.k + 1, 20) > 17)::int AS escalated,
           (c.k + 1) / 20 + (mod(c.k + 1, 20) > 13)::int AS denied
      FROM calls c
), ins AS (
INSERT INTO arx.audit_events (id, org_id, kind, agent_id, decision_id, connector, operation,
    operation_kind, params, targets, verdict, risk_score, policy_id, reasons, bundle_revisions,
    policy_input, agent_seq, tally_read, tally_write, tally_containment, tally_destructive,
    tally_denied, outcome, result, error, action, details, actor, request_id,
    seq, created_at, txid)
SELECT CASE WHEN p.part = 0 THEN s.decision_id ELSE gen_random_uuid() END,
       s.org_id,
       (ARRAY['decision', 'result', 'admin'])[p.part + 1],
       CASE WHEN p.part < 2 THEN s.agent_id END,
       CASE WHEN p.part = 1 THEN s.decision_id END,
       CASE WHEN p.part < 2 THEN 'crowdstrike' END,
       CASE WHEN p.part < 2 THEN t.operation END,
       CASE WHEN p.part = 0 THEN t.operation_kind END,
       CASE WHEN p.part = 0 THEN t.params END,
       CASE WHEN p.part = 0 THEN t.targets END,
       CASE WHEN p.part = 0 THEN t.verdict END,
       CASE WHEN p.part = 0 THEN t.risk_score END,
       CASE WHEN p.part = 0 THEN t.policy_id END,
       CASE WHEN p.part = 0 THEN t.reasons END,
       CASE WHEN p.part = 0 THEN t.bundle_revisions END,
       CASE WHEN p.part = 0 THEN t.policy_input END,
       CASE WHEN p.part = 0 THEN s.k + 1 END,
       CASE WHEN p.part = 0 THEN s.k + 1 - s.escalated - s.denied END,
       CASE WHEN p.part = 0 THEN 0 END,
       CASE WHEN p.part = 0 THEN s.escalated + s.denied END,
       CASE WHEN p.part = 0 THEN 0 END,
       CASE WHEN p.part = 0 THEN s.denied END,
       CASE WHEN p.part = 1 THEN r.outcome END,
       CASE WHEN p.part = 1 THEN r.result END,
       CASE WHEN p.part = 1 THEN r.error END,
       CASE WHEN p.part = 2 THEN a.action END,
       CASE WHEN p.part = 2 THEN a.details END,
       CASE WHEN p.part = 2 THEN a.actor END,
       CASE WHEN p.part = 2 THEN replace(gen_random_uuid()::text, '-', '') ELSE s.request_id END,
       %(seq0)s::bigint + row_number() OVER w - 1,
       %(start)s::timestamptz + (row_number() OVER w - 1) * %(step)s::interval,
       pg_current_xact_id()
  FROM shaped s
  CROSS JOIN (VALUES (0), (1), (2)) AS p (part)
  JOIN tpl t ON t.verdict = s.verdict
  CROSS JOIN res r
  CROSS JOIN adm a
 WHERE p.part = 0 OR (p.part = 1 AND s.verdict = 'PERMIT')
    OR (p.part = 2 AND mod(s.c, %(admin_every)s) = 0)
WINDOW w AS (ORDER BY s.c, p.part)
 ORDER BY s.c, p.part
RETURNING org_id, id
)
INSERT INTO arx.audit_event_ids (org_id, id) SELECT org_id, id FROM ins
"""

# One template per verdict: the newest decision of each in the example org.
TEMPLATES = (
    "SELECT DISTINCT ON (verdict) verdict, id, operation_kind FROM arx.audit_events"
    " WHERE org_id = %s AND kind = 'decision' ORDER BY verdict, seq DESC"
)
RESULT_OF = (
    "SELECT id FROM arx.audit_events WHERE org_id = %s AND kind = 'result' AND decision_id = %s"
)
NEWEST_ADMIN = (
    "SELECT id FROM arx.audit_events WHERE org_id = %s AND kind = 'admin' ORDER BY seq DESC LIMIT 1"
)
TRAIL_SIZE = "SELECT count(*) FROM arx.audit_events"
SEAL_CURSOR = "SELECT txid, seq FROM arx.audit_seal_cursor WHERE id = 1"
UNSEALED = "SELECT count(*) FROM arx.audit_events WHERE (txid, seq) > (%s, %s)"


@dataclass
class History:
    """Where the seeded history stands: the next call number and the clock."""

    orgs: list[uuid.UUID]
    agents: list[uuid.UUID]  # per_org seeded agents of orgs[0], then of orgs[1], …
    per_org: int
    templates: dict[str, uuid.UUID]  # PERMIT/ESCALATE/DENY decisions, "result", "admin"
    template_org: uuid.UUID
    start: datetime
    step: timedelta  # between two calls
    next_call: int = 0

    def at(self, call: int) -> datetime:
        return self.start + self.step * call


@dataclass
class Filled:
    events: int  # in the trail once filled
    seeded: int
    seed_seconds: float
    seal_seconds: float
    sealed: int


def _count(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(TRAIL_SIZE).fetchone()
    return int(row[0]) if row else 0


def batch_rows(history: History, lo: int, hi: int) -> int:
    """How many events SEED_BATCH writes for calls ``lo`` to ``hi`` (its pattern)."""
    rows, per_turn = 0, len(history.orgs) * history.per_org
    for c in range(lo, hi):
        r = (c // per_turn) % 20
        rows += 1 + (r not in (*ESCALATE_AT, DENY_AT)) + (c % ADMIN_EVERY == 0)
    return rows


def seed_batch(conn: psycopg.Connection[Any], history: History, calls: int) -> None:
    """One transaction: ``calls`` calls of the history, each event at its place."""
    lo = history.next_call
    rows = batch_rows(history, lo, lo + calls)
    # The batch's events fill its span of the history exactly: the next batch
    # starts after its last event, so created_at never goes back as seq grows.
    span = history.at(lo + calls) - history.at(lo)
    with conn.transaction():
        # First: the lock it takes waits for any insert under way and holds
        # off new ones, so no other writer draws from the sequence meanwhile.
        conn.execute(STAMP_OFF)
        reserved = conn.execute(RESERVE_SEQ, {"rows": rows}).fetchone()
        assert reserved is not None
        conn.execute(
            SEED_BATCH,
            {
                "tpl_org": history.template_org,
                "tpl_decisions": [history.templates[v] for v in ("PERMIT", "ESCALATE", "DENY")],
                "tpl_result": history.templates["result"],
                "tpl_admin": history.templates["admin"],
                "orgs": history.orgs,
                "n_orgs": len(history.orgs),
                "agents": history.agents,
                "per_org": history.per_org,
                "c_lo": lo,
                "c_hi": lo + calls,
                "admin_every": ADMIN_EVERY,
                "seq0": reserved[0],
                "start": history.at(lo).isoformat(),
                "step": f"{span.total_seconds() / rows:.6f} seconds",
            },
        )
        conn.execute(STAMP_ON)
        conn.execute(HEADS, (history.agents, history.at(lo)))
    history.next_call = lo + calls


def fill(admin_db_url: str, history: History, target: int) -> Filled:
    """Seed until the trail holds about ``target`` events, then time the sealer."""
    with psycopg.connect(admin_db_url, autocommit=True) as conn:
        before = _count(conn)
        conn.execute(MONTHS, (history.start,))
        # Holds the sealer back: it seals only transactions older than every
        # one still running, and this one has an id older than every batch's.
        hold = psycopg.connect(admin_db_url)
        try:
            hold.execute("SELECT pg_current_xact_id()")
            started = time.perf_counter()
            have = before
            while have < target:
                calls = min(CALLS_PER_BATCH, math.ceil((target - have) / EVENTS_PER_CALL))
                seed_batch(conn, history, calls)
                have = _count(conn)
                print(f"  seeded {have:>10,} events", flush=True)
            seed_seconds = time.perf_counter() - started
        finally:
            hold.close()
        sealed = _unsealed(conn)
        seal_seconds = wait_sealed(conn)
        print("  VACUUM (ANALYZE) arx.audit_events, arx.audit_chain", flush=True)
        conn.execute("VACUUM (ANALYZE) arx.audit_events")
        conn.execute("VACUUM (ANALYZE) arx.audit_chain")
        return Filled(
            events=_count(conn),
            seeded=have - before,
            seed_seconds=seed_seconds,
            seal_seconds=seal_seconds,
            sealed=sealed,
        )


def _unsealed(conn: psycopg.Connection[Any]) -> int:
    """Events past the seal cursor (two statements: the index is searched from values)."""
    cursor = conn.execute(SEAL_CURSOR).fetchone()
    if cursor is None:
        raise RuntimeError("arx.audit_seal_cursor has no row (migration 0016 inserts it)")
    row = conn.execute(UNSEALED, cursor).fetchone()
    return int(row[0]) if row else 0


def wait_sealed(conn: psycopg.Connection[Any], stall_seconds: float = 120.0) -> float:
    """Until the seal cursor has passed every event; how long that took."""
    started = last_move = last_print = time.perf_counter()
    last_left: int | None = None
    while True:
        left = _unsealed(conn)
        now = time.perf_counter()
        if left == 0:
            return now - started
        if left != last_left:
            last_left, last_move = left, now
        elif now - last_move > stall_seconds:
            raise RuntimeError(f"the sealer made no progress in {stall_seconds:g} s ({left} left)")
        if now - last_print >= PROGRESS_SECONDS:
            print(f"  sealing: {left:>10,} events left", flush=True)
            last_print = now
        time.sleep(0.5)


# --- set-up: orgs, agents, templates -----------------------------------------------


@dataclass
class Env:
    stack: Stack
    keys: list[str]  # measured agents of the example org, one per client
    history: History
    admin_db_url: str


async def _post(
    client: aiohttp.ClientSession, url: str, body: dict[str, Any], headers: dict[str, str]
) -> tuple[int, Any]:
    async with client.post(url, json=body, headers=headers) as r:
        return r.status, await r.json(content_type=None)


async def setup(stack: Stack, ns: argparse.Namespace) -> Env:
    # This process only creates orgs and agents: no sealer, no bundle service.
    env = {
        **{k: v for k, v in stack.api_env.items() if k != "ARX_BUNDLE_SIGNING_KEY_FILE"},
        "ARX_AUDIT_SEAL_INTERVAL_SECONDS": "0",
    }
    org_one = uuid.UUID(stack.org_id)
    orgs, seeded_agents = [org_one], []
    async with open_runtime(load_settings(env)) as rt:
        pool = rt.control_pool
        if pool is None:
            raise RuntimeError("the stack's API environment has no control database URL")
        for i in range(1, ns.orgs):
            made = await seed_example_org(
                rt,
                falcon_url=stack.falcon_url,
                client_id=SANDBOX_CLIENT_ID,
                client_secret=stack.falcon_client_secret,
                slug=f"bench-{i:02d}",
                owner_email=f"owner-{i:02d}@bench.test",
            )
            orgs.append(made.org_id)
        for org in orgs:
            for j in range(ns.agents_per_org):
                agent = await create_agent(
                    pool, org, name=f"seeded-{j}", intent=SEEDED_INTENT, actor=SEED.actor
                )
                seeded_agents.append(agent.id)
    print(f"- {len(orgs)} orgs, {ns.agents_per_org} seeded agents each")

    owner = {"authorization": f"Bearer {stack.owner_token}"}
    org_url = f"{stack.base_url}/v1/admin/orgs/{stack.org_id}"
    execute_url = f"{stack.base_url}/v1/sdk/execute"
    keys: list[str] = []
    async with aiohttp.ClientSession() as client:
        for i in range(1 if ns.one_agent else 8):
            status, agent = await _post(
                client,
                f"{org_url}/agents",
                {"name": f"bench-{i:02d}", "intent": msgspec.to_builtins(INTENT)},
                owner,
            )
            if status != 201:
                raise RuntimeError(f"creating a measured agent: HTTP {status} {agent}")
            status, issued = await _post(client, f"{org_url}/agents/{agent['id']}/keys", {}, owner)
            keys.append(issued["api_key"])

        # Every measured agent gets a full session (the policy's worst case).
        async def session(key: str) -> None:
            for _ in range(100):
                status, body = await _post(
                    client, execute_url, SEARCH, {"authorization": f"Bearer {key}"}
                )
                if status != 200:
                    raise RuntimeError(f"session fill failed: HTTP {status} {body}")

        await asyncio.gather(*(session(k) for k in keys))
        # One DENY and one ESCALATE, recorded by the API: the seeded history's
        # templates for those verdicts (the example bundle: triage-bot may not
        # contain, responder-bot may with a reviewer's approval).
        contain = {
            "connector": "crowdstrike",
            "operation": "hosts:contain",
            "params": {"ids": [uuid.uuid4().hex]},
        }
        for name, want in (("triage-bot", 403), ("responder-bot", 202)):
            headers = {
                "authorization": f"Bearer {stack.api_keys[name]}",
                "prefer": "respond-async",
            }
            status, body = await _post(client, execute_url, contain, headers)
            if status != want:
                raise RuntimeError(f"{name} hosts:contain: HTTP {status} {body}")

    admin_db_url = psql_url_with(stack.admin_url, dbname=DEMO_DB)
    with psycopg.connect(admin_db_url, autocommit=True) as conn:
        rows = conn.execute(TEMPLATES, (org_one,)).fetchall()
        templates = {verdict: event for verdict, event, _ in rows}
        kinds = {verdict: kind for verdict, _, kind in rows}
        # The tallies in SEED_BATCH count reads and containments only.
        expected = {"PERMIT": "read", "ESCALATE": "containment", "DENY": "containment"}
        if kinds != expected:
            raise RuntimeError(f"template decisions are not as expected: {kinds}")
        result = conn.execute(RESULT_OF, (org_one, templates["PERMIT"])).fetchone()
        admin = conn.execute(NEWEST_ADMIN, (org_one,)).fetchone()
        if result is None or admin is None:
            raise RuntimeError("no result or admin event to copy")
        templates["result"], templates["admin"] = result[0], admin[0]

    total_calls = math.ceil(ns.events / EVENTS_PER_CALL)
    start = datetime.now(UTC) - HISTORY
    history = History(
        orgs=orgs,
        agents=seeded_agents,
        per_org=ns.agents_per_org,
        templates=templates,
        template_org=org_one,
        start=start,
        step=(HISTORY - QUIET) / total_calls,
    )
    return Env(stack=stack, keys=keys, history=history, admin_db_url=admin_db_url)


# --- the audit list ----------------------------------------------------------------


@dataclass
class ListResult:
    name: str
    p50: float
    p95: float
    rows: int
    errors: int
    honoured: str  # "yes", "no", or why it could not be told


@dataclass
class ListQuery:
    name: str
    params: dict[str, str]
    # Whether an event of the answer fits the filter (None: nothing to check).
    check: Callable[[dict[str, Any]], bool] | None = None


def _rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _get(
    client: aiohttp.ClientSession, url: str, params: dict[str, str]
) -> tuple[int, Any, float]:
    started = time.perf_counter()
    async with client.get(url, params=params) as r:
        body = await r.read()
    elapsed = (time.perf_counter() - started) * 1000
    return r.status, msgspec.json.decode(body) if body else None, elapsed


def _events(body: Any) -> list[dict[str, Any]]:
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        return list(body.get("events") or [])
    return []


async def _time_query(
    client: aiohttp.ClientSession, url: str, q: ListQuery, repeats: int, *, paged: bool
) -> ListResult:
    times: list[float] = []
    errors, rows, honoured = 0, 0, "-"
    for i in range(repeats + 3):  # three warm-ups
        status, body, ms = await _get(client, url, q.params)
        if i < 3:
            continue
        times.append(ms)
        if status != 200:
            errors += 1
            continue
        events = _events(body)
        rows = len(events)
        if q.check is not None:
            if not paged:
                honoured = "no (old route)"
            elif not events:
                honoured = "empty"
            else:
                honoured = "yes" if all(q.check(e) for e in events) else "NO"
    times.sort()
    return ListResult(
        name=q.name,
        p50=statistics.median(times),
        p95=times[min(len(times) - 1, round(0.95 * (len(times) - 1)))],
        rows=rows,
        errors=errors,
        honoured=honoured,
    )


async def measure_list(env: Env, repeats: int) -> tuple[list[ListResult], str]:
    """Each list query ``repeats`` times; the results and the shape seen."""
    stack, history = env.stack, env.history
    url = f"{stack.base_url}/v1/admin/orgs/{stack.org_id}/audit"
    owner = {"authorization": f"Bearer {stack.owner_token}"}
    agent = str(history.agents[0])  # a seeded agent of the example org
    middle = history.at(history.next_call // 2)
    since, until = middle - timedelta(minutes=30), middle + timedelta(minutes=30)
    async with aiohttp.ClientSession(headers=owner) as client:
        status, first, _ = await _get(client, url, {"limit": "100"})
        if status != 200:
            raise RuntimeError(f"GET audit: HTTP {status} {first}")
        paged = isinstance(first, dict)
        shape = (
            "paged ({events, next_cursor})"
            if paged
            else "a bare list (old route: oldest first, after_seq; filters not honoured)"
        )
        if paged:
            cursor = first.get("next_cursor")
            next_params = {"limit": "100", "cursor": cursor} if cursor else None
        else:
            last = first[-1]["seq"] if first else 0
            next_params = {"limit": "100", "after_seq": str(last)}

        queries = [
            ListQuery("newest page", {"limit": "100"}),
            ListQuery(
                "agent_id",
                {"limit": "100", "agent_id": agent},
                lambda e: e.get("agent_id") == agent,
            ),
            ListQuery(
                "verdict=DENY",
                {"limit": "100", "verdict": "DENY"},
                lambda e: e.get("verdict") == "DENY",
            ),
            ListQuery(
                "one hour since/until",
                {"limit": "100", "since": _rfc3339(since), "until": _rfc3339(until)},
                lambda e: (
                    since <= datetime.fromisoformat(e["created_at"]) < until + timedelta(seconds=1)
                ),
            ),
        ]
        if next_params is not None:
            queries.append(ListQuery("next page (cursor)", next_params))
        results = [await _time_query(client, url, q, repeats, paged=paged) for q in queries]
        if next_params is None:
            results.append(ListResult("next page (cursor)", math.nan, math.nan, 0, 0, "no cursor"))
    return results, shape


# --- the execute path --------------------------------------------------------------


def execute_call(stack: Stack, keys: list[str]) -> Call:
    headers = [{"authorization": f"Bearer {k}"} for k in keys]
    url = f"{stack.base_url}/v1/sdk/execute"

    async def call(client: aiohttp.ClientSession, i: int) -> int:
        async with client.post(url, json=SEARCH, headers=headers[i % len(headers)]) as r:
            await r.read()
            return r.status

    return call


@dataclass
class Phase:
    name: str
    filled: Filled
    lists: list[ListResult] = field(default_factory=list)
    shape: str = ""
    executes: dict[int, Result] = field(default_factory=dict)


async def measure(env: Env, ns: argparse.Namespace, name: str, filled: Filled) -> Phase:
    phase = Phase(name=name, filled=filled)
    # The list first: the trail is then exactly the filled size.
    phase.lists, phase.shape = await measure_list(env, ns.list_repeats)
    print(f"\n[{name}] audit list ({phase.shape}), {ns.list_repeats} requests each:")
    print(f"  {'query':<22}{'p50 ms':>9}{'p95 ms':>9}{'rows':>6}{'err':>5}  filter honoured")
    for r in phase.lists:
        print(f"  {r.name:<22}{r.p50:>9.2f}{r.p95:>9.2f}{r.rows:>6}{r.errors:>5}  {r.honoured}")
    call = execute_call(env.stack, env.keys)
    print(f"\n[{name}] POST /v1/sdk/execute hosts:search, {ns.requests} requests per level:")
    print(
        f"  {'clients':>7}{'req/s':>8}{'p50':>8}{'p95':>8}{'p99':>8}{'err':>5}"
        "   CPU ms/req api  opa   pg"
    )
    for clients in (1, 8):
        r = await run_path("ARX", call, agents=clients, total=ns.requests, pids=env.stack.pids)
        phase.executes[clients] = r
        cpu = "  ".join(f"{r.cpu_ms.get(p, 0.0):5.2f}" for p in ("api", "opa", "postgres"))
        print(
            f"  {clients:>7}{r.rps:>8.0f}{r.p50:>8.2f}{r.p95:>8.2f}{r.p99:>8.2f}{r.errors:>5}"
            f"   {cpu}"
        )
    return phase


# --- report ------------------------------------------------------------------------


def _ratio(small: float, large: float) -> str:
    if not small or math.isnan(small) or math.isnan(large):
        return "-"
    return f"{large / small:.2f}x"


def report(small: Phase, large: Phase, elapsed: float) -> None:
    a, b = small.filled, large.filled
    rows: list[tuple[str, float, float, str]] = [
        ("events in the trail", a.events, b.events, "{:,.0f}"),
        ("seeded events", a.seeded, b.seeded, "{:,.0f}"),
        ("seeding (s)", a.seed_seconds, b.seed_seconds, "{:.1f}"),
        (
            "seeding (events/s)",
            a.seeded / a.seed_seconds if a.seed_seconds else math.nan,
            b.seeded / b.seed_seconds if b.seed_seconds else math.nan,
            "{:,.0f}",
        ),
        ("sealing (s)", a.seal_seconds, b.seal_seconds, "{:.1f}"),
        (
            "sealing (events/s)",
            a.sealed / a.seal_seconds if a.seal_seconds else math.nan,
            b.sealed / b.seal_seconds if b.seal_seconds else math.nan,
            "{:,.0f}",
        ),
    ]
    for clients in (1, 8):
        x, y = small.executes[clients], large.executes[clients]
        rows += [
            (f"execute {clients} client(s) p50 ms", x.p50, y.p50, "{:.2f}"),
            (f"execute {clients} client(s) p95 ms", x.p95, y.p95, "{:.2f}"),
            (f"execute {clients} client(s) p99 ms", x.p99, y.p99, "{:.2f}"),
            (f"execute {clients} client(s) req/s", x.rps, y.rps, "{:.0f}"),
        ]
    for x, y in zip(small.lists, large.lists, strict=True):
        rows += [
            (f"list {x.name} p50 ms", x.p50, y.p50, "{:.2f}"),
            (f"list {x.name} p95 ms", x.p95, y.p95, "{:.2f}"),
        ]
    width = max(len(r[0]) for r in rows) + 2
    print(f"\n{'metric':<{width}}{small.name:>14}{large.name:>14}{'ratio':>9}")
    for label, x, y, fmt in rows:
        shown = [("-" if math.isnan(v) else fmt.format(v)) for v in (x, y)]
        print(f"{label:<{width}}{shown[0]:>14}{shown[1]:>14}{_ratio(x, y):>9}")
    print(f"\naudit list route: {large.shape}")
    print(
        "execute p50 ratio at 1 client: "
        f"{_ratio(small.executes[1].p50, large.executes[1].p50)} (issue 9: within 1.1x); "
        f"slowest list p50 at {large.name}: "
        f"{max(r.p50 for r in large.lists if not math.isnan(r.p50)):.2f} ms (issue 9: < 50 ms)"
    )
    print(f"whole run {elapsed / 60:.1f} min; reproduce with:")
    print("  " + shlex.join([".venv/bin/python", "bench/audit_scale.py", *sys.argv[1:]]))


def _label(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return f"{n:,}"


async def bench(stack: Stack, ns: argparse.Namespace, started: float) -> None:
    env = await setup(stack, ns)
    phases = []
    for target in (ns.small, ns.events):
        name = _label(target)
        print(f"\n== phase {name}: filling the trail to {target:,} events", flush=True)
        filled = await asyncio.to_thread(fill, env.admin_db_url, env.history, target)
        print(
            f"  {filled.events:,} events; seeded {filled.seeded:,} in {filled.seed_seconds:.1f} s,"
            f" sealed {filled.sealed:,} in {filled.seal_seconds:.1f} s"
        )
        phases.append(await measure(env, ns, name, filled))
    report(phases[0], phases[1], time.perf_counter() - started)
    if ns.pause:
        print(f"\nthe stack is up; database (superuser): {env.admin_db_url}")
        await asyncio.to_thread(input, "press Enter to stop it ")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=1_000_000, help="the large trail")
    parser.add_argument("--small", type=int, default=10_000, help="the small trail")
    parser.add_argument("--orgs", type=int, default=10, help="orgs, the example org included")
    parser.add_argument("--agents-per-org", type=int, default=4, help="seeded agents per org")
    parser.add_argument("--requests", type=int, default=1000, help="executes per level")
    parser.add_argument("--list-repeats", type=int, default=50, help="requests per list query")
    parser.add_argument("--api-workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument(
        "--one-agent", action="store_true", help="all execute clients share one agent"
    )
    parser.add_argument(
        "--pause", action="store_true", help="keep the stack up at the end until Enter"
    )
    ns = parser.parse_args()
    if not 0 < ns.small < ns.events or ns.orgs < 1 or ns.agents_per_org < 1:
        parser.error("expected 0 < --small < --events, --orgs >= 1, --agents-per-org >= 1")
    started = time.perf_counter()
    with bench_stack(ns.api_workers) as st:
        uvloop.run(bench(st, ns, started))


if __name__ == "__main__":
    main()
