"""Benchmark: N concurrent agents through ARX versus straight to the tool.

Starts the local stack (PostgreSQL, OPA sidecar, Falcon sandbox, ARX API in
its own process), then runs the same read operation (`crowdstrike`
`hosts:search`, a PERMIT) two ways, with the same load generator:

- through ARX: POST /v1/sdk/execute with the agent's ARX API key
  (auth, policy, decision event committed, connector call, result event);
- direct: the Falcon sandbox's GET /devices/queries/devices/v1 with a bearer
  token, which is what the connector itself sends.

and prints throughput and p50/p95/p99 latency for each, and ARX's overhead.
It is a benchmark, not a test: it asserts nothing about speed.

    .venv/bin/python bench/execute.py --agents 8 --requests 300

On a 2-core machine the load generator, the API, OPA, PostgreSQL and the
sandbox share the cores, so absolute figures are pessimistic; compare runs on
one machine.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import httpx

from arx.devstack.demo import SANDBOX_CLIENT_ID, local_stack
from arx.devstack.ports import free_port

# The load generator shares the machine's cores with everything it measures,
# so it uses aiohttp (about half httpx's CPU per request) to stay out of the way.
Call = Callable[[aiohttp.ClientSession], Awaitable[int]]


def _pct(sorted_ms: list[float], p: float) -> float:
    index = min(len(sorted_ms) - 1, round(p / 100 * (len(sorted_ms) - 1)))
    return sorted_ms[index]


async def _run(
    name: str, call: Call, *, agents: int, per_agent: int, warmup: int
) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=agents)
    async with aiohttp.ClientSession(connector=connector) as client:
        for _ in range(warmup):
            if await call(client) != 200:
                raise RuntimeError(f"{name}: warm-up request failed")

        async def agent() -> None:
            nonlocal errors
            for _ in range(per_agent):
                started = time.perf_counter()
                status = await call(client)
                latencies.append((time.perf_counter() - started) * 1000)
                if status != 200:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(agent() for _ in range(agents)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    stats = {
        "requests": float(len(latencies)),
        "errors": float(errors),
        "rps": len(latencies) / elapsed,
        "mean": statistics.fmean(latencies),
        "p50": _pct(latencies, 50),
        "p95": _pct(latencies, 95),
        "p99": _pct(latencies, 99),
    }
    print(
        f"{name:<8} {int(stats['requests']):>6} req  {int(stats['errors']):>3} err  "
        f"{stats['rps']:>8.1f} req/s   p50 {stats['p50']:>7.2f} ms   "
        f"p95 {stats['p95']:>7.2f} ms   p99 {stats['p99']:>7.2f} ms"
    )
    return stats


async def _bench(base: str, falcon: str, key: str, secret: str, ns: argparse.Namespace) -> None:
    async with httpx.AsyncClient() as c:
        token_resp = await c.post(
            f"{falcon}/oauth2/token",
            data={"client_id": SANDBOX_CLIENT_ID, "client_secret": secret},
        )
        token_resp.raise_for_status()
        token = token_resp.json()["access_token"]

    body = {"connector": "crowdstrike", "operation": "hosts:search", "params": {"limit": 10}}
    arx_headers = {"authorization": f"Bearer {key}"}
    direct_headers = {"authorization": f"Bearer {token}"}

    async def via_arx(client: aiohttp.ClientSession) -> int:
        async with client.post(f"{base}/v1/sdk/execute", json=body, headers=arx_headers) as r:
            await r.read()
            return r.status

    async def direct(client: aiohttp.ClientSession) -> int:
        async with client.get(
            f"{falcon}/devices/queries/devices/v1", params={"limit": 10}, headers=direct_headers
        ) as r:
            await r.read()
            return r.status

    kw = {"agents": ns.agents, "per_agent": ns.requests // ns.agents, "warmup": ns.warmup}
    print(
        f"\n{ns.agents} concurrent agents, {kw['per_agent']} requests each, "
        f"{ns.api_workers} API worker(s)"
    )
    d = await _run("direct", direct, **kw)
    a = await _run("via ARX", via_arx, **kw)
    print(
        f"overhead: p50 +{a['p50'] - d['p50']:.2f} ms, p95 +{a['p95'] - d['p95']:.2f} ms, "
        f"p99 +{a['p99'] - d['p99']:.2f} ms; throughput {a['rps'] / d['rps'] * 100:.0f}% of direct"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--agents", type=int, default=8, help="concurrent agents")
    parser.add_argument("--requests", type=int, default=400, help="requests per path in total")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--api-workers", type=int, default=1)
    ns = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="arx-bench-") as home:
        Path(home).chmod(0o755)
        with local_stack(home=Path(home), port=free_port(), api_workers=ns.api_workers) as st:
            asyncio.run(
                _bench(
                    st.base_url,
                    st.falcon_url,
                    st.api_keys["triage-bot"],
                    st.falcon_client_secret,
                    ns,
                )
            )


if __name__ == "__main__":
    main()
