"""Benchmark: the governed execute against the direct tool call and the bare parts.

One command starts the whole local stack on a **durable** PostgreSQL cluster
(fsync on), the OPA sidecar with the repository's bundles, the Falcon sandbox
and the ARX API (``--api-workers`` uvicorn workers), creates one agent (with
its own API key) per concurrent client, fills every agent's session (then
lets VACUUM ANALYZE settle that burst of rows, so the figures are the steady
state's), and then
at each concurrency level (``--agents 1,8,32``) runs three paths with the same
closed-loop load generator:

- ``direct``: the sandbox's ``GET /devices/queries/devices/v1`` with a bearer
  token, which is what the connector itself sends;
- ``ARX``: ``POST /v1/sdk/execute`` ``crowdstrike hosts:search`` (a PERMIT):
  auth, session read, policy decision, decision event committed, connector
  call, result event committed;
- ``bare``: the parts done directly from this script, one OPA query with the
  input ARX sends for such a call (a full session) followed by one durable
  PostgreSQL insert of a decision-sized row.

For each it prints throughput, p50/p95/p99 latency and the CPU each process
tree spent per request (API workers, OPA, PostgreSQL with all its backends,
the sandbox, and this load generator), read from /proc. A final section asks
OPA for the same decision with ``metrics=true`` and prints its own timers.

It asserts nothing about speed: it is a benchmark, not a test.

    .venv/bin/python bench/execute.py                       # 1, 8 and 32 agents
    .venv/bin/python bench/execute.py --agents 32 --api-workers 2 --requests 4000

On a 2-core machine the load generator, the API, OPA, PostgreSQL and the
sandbox share the cores: compare runs on one machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import psycopg
import uvloop

from arx.config import load_settings
from arx.deadline import Deadline
from arx.devstack.demo import DEMO_DB, SANDBOX_CLIENT_ID, Stack, local_stack
from arx.devstack.ports import free_port
from arx.devstack.postgres import psql_url_with
from arx.identity.types import IntentManifest
from arx.policy.input import policy_input, query_body
from arx.runtime import Runtime, open_runtime

Call = Callable[[aiohttp.ClientSession, int], Awaitable[int]]
TICK = os.sysconf("SC_CLK_TCK")
SEARCH = {"connector": "crowdstrike", "operation": "hosts:search", "params": {"limit": 10}}
INTENT = IntentManifest(
    purpose="benchmark agent: looks hosts up", scope={"crowdstrike": ["hosts:search", "hosts:get"]}
)


# --- CPU from /proc --------------------------------------------------------------


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        tree.setdefault(int(fields[1]), []).append(int(entry.name))
    return tree


def _tree_ticks(root: int, tree: dict[int, list[int]]) -> int:
    """utime+stime of ``root`` and its descendants, plus what they reaped."""
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the ")": state is field 0, utime 11, stime 12, cutime 13, cstime 14.
        total += sum(int(f) for f in fields[11:15])
        todo.extend(tree.get(pid, []))
    return total


def cpu_snapshot(pids: dict[str, int]) -> dict[str, int]:
    tree = _children()
    snap = {name: _tree_ticks(pid, tree) for name, pid in pids.items()}
    # This process alone: the services it started are its children.
    fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    snap["bench"] = int(fields[11]) + int(fields[12])
    return snap


# --- load generation -------------------------------------------------------------


@dataclass
class Result:
    name: str
    requests: int
    errors: int
    rps: float
    p50: float
    p95: float
    p99: float
    cpu_ms: dict[str, float] = field(default_factory=dict)


def _pct(sorted_ms: list[float], p: float) -> float:
    return sorted_ms[min(len(sorted_ms) - 1, round(p / 100 * (len(sorted_ms) - 1)))]


async def run_path(
    name: str, call: Call, *, agents: int, total: int, pids: dict[str, int]
) -> Result:
    per_agent = max(1, total // agents)
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=agents * 2)
    async with aiohttp.ClientSession(connector=connector) as client:
        for i in range(min(agents, 8) * 5):  # warm connections and caches
            await call(client, i % agents)

        async def agent(index: int) -> None:
            nonlocal errors
            for _ in range(per_agent):
                started = time.perf_counter()
                status = await call(client, index)
                latencies.append((time.perf_counter() - started) * 1000)
                if status != 200:
                    errors += 1

        before = cpu_snapshot(pids)
        started = time.perf_counter()
        await asyncio.gather(*(agent(i) for i in range(agents)))
        elapsed = time.perf_counter() - started
        after = cpu_snapshot(pids)
    latencies.sort()
    n = len(latencies)
    return Result(
        name=name,
        requests=n,
        errors=errors,
        rps=n / elapsed,
        p50=_pct(latencies, 50),
        p95=_pct(latencies, 95),
        p99=_pct(latencies, 99),
        cpu_ms={k: (after[k] - before[k]) * 1000 / TICK / n for k in after},
    )


# --- the three paths -------------------------------------------------------------


async def realistic_input(rt: Runtime, key: str) -> bytes:
    """The OPA request body ARX sends for this agent's next ``hosts:search``."""
    deadline = Deadline(10)
    who = await rt.auth.authenticate(f"Bearer {key}", deadline)
    call = rt.intercept.prepare("crowdstrike", "hosts:search", {"limit": 10})
    ctx = await rt.trail.read_context(who, "crowdstrike", deadline)
    return query_body(
        policy_input(who, "crowdstrike", call.operation, call.raw_params, ctx.session)
    )


@dataclass
class Env:
    stack: Stack
    keys: list[str]
    token: str
    policy_input: bytes
    bare_url: str


async def setup(stack: Stack, agents: int) -> Env:
    settings = load_settings(stack.api_env)
    keys: list[str] = []
    async with open_runtime(settings) as rt:
        await rt.pool.wait(timeout=10)
        # Agents and keys through the admin API, with the example org's owner token.
        owner = {"authorization": f"Bearer {stack.owner_token}"}
        org = f"{stack.base_url}/v1/admin/orgs/{stack.org_id}"
        async with aiohttp.ClientSession(headers=owner) as admin:
            for i in range(agents):
                async with admin.post(
                    f"{org}/agents",
                    json={"name": f"bench-{i:02d}", "intent": msgspec.to_builtins(INTENT)},
                ) as made:
                    agent_id = (await made.json())["id"]
                async with admin.post(f"{org}/agents/{agent_id}/keys", json={}) as issued:
                    keys.append((await issued.json())["api_key"])
        # Every agent gets a full session (the policy's worst case) before measuring.
        async with aiohttp.ClientSession() as client:

            async def fill(key: str) -> None:
                for _ in range(100):
                    async with client.post(
                        f"{stack.base_url}/v1/sdk/execute",
                        json=SEARCH,
                        headers={"authorization": f"Bearer {key}"},
                    ) as r:
                        await r.read()
                        if r.status != 200:
                            raise RuntimeError(f"session fill failed: HTTP {r.status}")

            await asyncio.gather(*(fill(k) for k in keys))
        policy_input = await realistic_input(rt, keys[0])

    async with (
        aiohttp.ClientSession() as client,
        client.post(
            f"{stack.falcon_url}/oauth2/token",
            data={"client_id": SANDBOX_CLIENT_ID, "client_secret": stack.falcon_client_secret},
        ) as r,
    ):
        token = (await r.json())["access_token"]

    # The fill wrote thousands of rows at once; settle autovacuum's reaction to
    # that burst now, so that the measurements see the hot path's steady cost.
    admin = stack.admin_url
    with psycopg.connect(psql_url_with(admin, dbname=DEMO_DB), autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) arx.audit_events")
    # The bare insert goes to its own database on the same durable cluster.
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS arx_bench_bare")
        conn.execute("CREATE DATABASE arx_bench_bare")
    bare_url = psql_url_with(admin, dbname="arx_bench_bare")
    with psycopg.connect(bare_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE decisions (id uuid PRIMARY KEY, org_id uuid NOT NULL,"
            " agent_id uuid NOT NULL, connector text, operation text, params jsonb,"
            " verdict text, risk_score int, policy_id text, reasons jsonb,"
            " created_at timestamptz NOT NULL DEFAULT clock_timestamp())"
        )
    return Env(stack, keys, token, policy_input, bare_url)


def paths(
    env: Env, conns: list[psycopg.AsyncConnection[Any]], *, one_agent: bool
) -> dict[str, Call]:
    stack = env.stack
    keys = env.keys[:1] * len(env.keys) if one_agent else env.keys
    arx_headers = [{"authorization": f"Bearer {k}"} for k in keys]
    direct_headers = {"authorization": f"Bearer {env.token}"}
    opa_url = f"{stack.opa_url}/v1/data/arx/decision?provenance=true"
    json_headers = {
        "content-type": "application/json",
        "authorization": f"Bearer {stack.opa_token}",
    }
    org_id, agent_id = uuid.uuid4(), uuid.uuid4()

    async def direct(client: aiohttp.ClientSession, i: int) -> int:
        async with client.get(
            f"{stack.falcon_url}/devices/queries/devices/v1",
            params={"limit": 10},
            headers=direct_headers,
        ) as r:
            await r.read()
            return r.status

    async def via_arx(client: aiohttp.ClientSession, i: int) -> int:
        async with client.post(
            f"{stack.base_url}/v1/sdk/execute", json=SEARCH, headers=arx_headers[i]
        ) as r:
            await r.read()
            return r.status

    async def bare(client: aiohttp.ClientSession, i: int) -> int:
        async with client.post(opa_url, data=env.policy_input, headers=json_headers) as r:
            answer = msgspec.json.decode(await r.read())
        decision = answer["result"]
        await conns[i].execute(
            "INSERT INTO decisions (id, org_id, agent_id, connector, operation, params,"
            " verdict, risk_score, policy_id, reasons) VALUES (%s, %s, %s, %s, %s, %s, %s,"
            " %s, %s, %s)",
            (
                uuid.uuid4(),
                org_id,
                agent_id,
                "crowdstrike",
                "hosts:search",
                psycopg.types.json.Jsonb(SEARCH["params"]),
                decision["verdict"],
                decision["risk_score"],
                decision["policy_id"],
                psycopg.types.json.Jsonb(decision["reasons"]),
            ),
        )
        return r.status

    return {"direct": direct, "ARX": via_arx, "bare": bare}


async def opa_timers(env: Env, n: int = 500) -> dict[str, float]:
    """OPA's own timers (median, µs) for the realistic decision, warm."""
    url = f"{env.stack.opa_url}/v1/data/arx/decision?provenance=true&metrics=true"
    seen: dict[str, list[float]] = {}
    async with aiohttp.ClientSession() as client:
        for _ in range(n):
            async with client.post(
                url,
                data=env.policy_input,
                headers={
                    "content-type": "application/json",
                    "authorization": f"Bearer {env.stack.opa_token}",
                },
            ) as r:
                metrics = (await r.json())["metrics"]
            for key, value in metrics.items():
                seen.setdefault(key, []).append(value / 1000)
    return {k: statistics.median(v) for k, v in seen.items() if k.startswith("timer_")}


# --- report ----------------------------------------------------------------------

PROCS = ("api", "opa", "postgres", "sandbox", "bench")


def _row(agents: int, r: Result) -> str:
    cpu = "  ".join(f"{r.cpu_ms.get(p, 0.0):6.3f}" for p in PROCS)
    governed = sum(r.cpu_ms.get(p, 0.0) for p in ("api", "opa", "postgres"))
    return (
        f"{agents:>6}  {r.name:<7}{r.rps:>8.0f}  {r.p50:>7.2f} {r.p95:>7.2f} {r.p99:>7.2f}"
        f"  {r.errors:>4}   {cpu}   {governed:6.3f}"
    )


def report_header() -> None:
    cpu = "  ".join(f"{p:>6}" for p in PROCS)
    print(
        f"\n{'agents':>6}  {'path':<7}{'req/s':>8}  {'p50':>7} {'p95':>7} {'p99':>7}  "
        f"{'err':>4}   {cpu}   api+opa+pg"
    )
    print(f"{'':>6}  {'':<7}{'':>8}  {'(ms)':>7} {'':>7} {'':>7}  {'':>4}   CPU ms per request")


async def bench(stack: Stack, ns: argparse.Namespace) -> None:
    levels = [int(x) for x in ns.agents.split(",")]
    env = await setup(stack, max(levels))
    print(f"\npolicy input sent per decision: {len(env.policy_input)} bytes")
    conns = [
        await psycopg.AsyncConnection.connect(env.bare_url, autocommit=True)
        for _ in range(max(levels))
    ]
    calls = paths(env, conns, one_agent=ns.one_agent)
    if ns.one_agent:
        print("every client calls as the same agent: its decisions are serialised")
    report_header()
    try:
        for agents in levels:
            total = ns.requests if agents > 1 else max(ns.requests // 2, 200)
            results = [
                await run_path(name, calls[name], agents=agents, total=total, pids=stack.pids)
                for name in ("direct", "ARX", "bare")
            ]
            for r in results:
                print(_row(agents, r))
            d, a, b = results
            print(
                f"{'':>6}  overhead vs direct: p50 +{a.p50 - d.p50:.2f} ms, "
                f"p99 +{a.p99 - d.p99:.2f} ms; ARX p50 is {a.p50 / b.p50:.1f}x the bare parts"
            )
    finally:
        for c in conns:
            await c.close()
    timers = await opa_timers(env)
    print("\nOPA's own timers for that decision (median of 500, warm, µs):")
    for key in sorted(timers):
        print(f"  {key:<32} {timers[key]:8.1f}")


def _levels(value: str) -> str:
    if not all(part.isdigit() and int(part) > 0 for part in value.split(",")):
        raise argparse.ArgumentTypeError("expected a comma-separated list of positive integers")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--agents", type=_levels, default="1,8,32", help="concurrency levels")
    parser.add_argument("--requests", type=int, default=2000, help="requests per path and level")
    parser.add_argument("--api-workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument(
        "--one-agent",
        action="store_true",
        help="all clients share one agent (measures the cost of serialising its decisions)",
    )
    ns = parser.parse_args()
    with bench_stack(ns.api_workers) as st:
        uvloop.run(bench(st, ns))


@contextmanager
def bench_stack(api_workers: int) -> Iterator[Stack]:
    """The whole local stack in a scratch directory (the sandbox unthrottled)."""
    with tempfile.TemporaryDirectory(prefix="arx-bench-") as home:
        Path(home).chmod(0o755)
        with local_stack(
            home=Path(home),
            port=free_port(),
            api_workers=api_workers,
            sandbox_rate_limit=10**9,
        ) as st:
            print(f"durable cluster, {api_workers} API worker(s), {os.cpu_count()} cores")
            yield st


if __name__ == "__main__":
    main()
