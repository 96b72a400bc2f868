"""Benchmark: which client should ARX use to ask the OPA sidecar?

Compares, against the real sidecar loaded with the repository's bundles and
the same decision input (an agent with a full session searching hosts):

- ``ARX PolicyClient``: one aiohttp session posting the body msgspec encoded
  once, decoding the answer into a typed ``Decision`` (what ARX uses);
- ``shared httpx``: one ``httpx.AsyncClient`` posting the same bytes and
  decoding with msgspec;
- ``raw aiohttp``: one ClientSession, the same bytes, decoding to builtins
  (the floor under the others).

Prints decisions per second and p50/p95/p99 for each at several concurrency
levels, and the client process's CPU per decision. A benchmark, not a test.

    .venv/bin/python bench/policy_client.py --requests 3000
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import httpx
import msgspec

from arx.connectors.crowdstrike import CrowdStrikeConnector
from arx.devstack.opa import OpaSidecar, opa_binary
from arx.devstack.stack import build_policy_bundles
from arx.identity.types import AgentIdentity, IntentManifest
from arx.policy.client import PolicyClient
from arx.policy.input import policy_input, query_body

REPO = Path(__file__).resolve().parents[1]

WINDOW = {
    "actions": 40,
    "non_read": 0,
    "denied": 0,
    "targets": 0,
    "kinds": {"read": 40, "write": 0, "containment": 0, "destructive": 0},
}
NOW_NS = time.time_ns()
SESSION = msgspec.json.encode(
    {
        "recent": [
            {
                "connector": "crowdstrike",
                "operation": "hosts:search",
                "kind": "read",
                "verdict": "PERMIT",
                "at_ns": NOW_NS - i * 1_000_000_000,
            }
            for i in range(10)
        ],
        "windows": {"1m": WINDOW, "5m": WINDOW, "60m": WINDOW},
    }
)
WHO = AgentIdentity(
    org_id=uuid.uuid4(),
    org_slug="example",
    agent_id=uuid.uuid4(),
    agent_name="triage-bot",
    intent=IntentManifest(scope={"crowdstrike": ["hosts:search", "hosts:get"]}),
)
BODY = query_body(
    policy_input(
        WHO,
        "crowdstrike",
        CrowdStrikeConnector.operation("hosts:search"),
        {"limit": 10},
        msgspec.Raw(SESSION),
    )
)


async def _measure(
    name: str, decide: Callable[[], Awaitable[str]], *, total: int, concurrency: int
) -> None:
    for _ in range(50):  # warm caches and connections
        await decide()
    latencies: list[float] = []

    async def worker(n: int) -> None:
        for _ in range(n):
            started = time.perf_counter()
            verdict = await decide()
            latencies.append((time.perf_counter() - started) * 1000)
            if verdict != "PERMIT":
                raise RuntimeError(f"unexpected verdict {verdict}")

    cpu = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(worker(total // concurrency) for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    cpu_us = (time.process_time() - cpu) / len(latencies) * 1e6
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, round(p / 100 * (len(latencies) - 1)))]

    print(
        f"{name:<18} c={concurrency:<3} {len(latencies) / elapsed:>8.0f} decisions/s  "
        f"mean {statistics.fmean(latencies):6.3f} ms  p50 {pct(50):6.3f}  "
        f"p95 {pct(95):6.3f}  p99 {pct(99):6.3f} ms  client CPU {cpu_us:5.0f} µs"
    )


async def _bench(url: str, token: str, total: int) -> None:
    target = f"{url}/v1/data/arx/decision?provenance=true"
    headers = {"content-type": "application/json", "authorization": f"Bearer {token}"}
    print(f"input: {len(BODY)} bytes")
    for concurrency in (1, 8, 32):
        policy = PolicyClient(url, timeout_seconds=5.0, token=token)

        async def via_arx(p: PolicyClient = policy) -> str:
            return (await p.decide(BODY, within=5.0)).verdict.value

        await _measure("ARX PolicyClient", via_arx, total=total, concurrency=concurrency)
        await policy.aclose()

        async with httpx.AsyncClient(timeout=5.0) as http:

            async def via_httpx(h: httpx.AsyncClient = http) -> str:
                resp = await h.post(target, content=BODY, headers=headers)
                return str(msgspec.json.decode(resp.content)["result"]["verdict"])

            await _measure("shared httpx", via_httpx, total=total, concurrency=concurrency)

        async with aiohttp.ClientSession() as session:

            async def via_aiohttp(s: aiohttp.ClientSession = session) -> str:
                async with s.post(target, data=BODY, headers=headers) as resp:
                    return str(msgspec.json.decode(await resp.read())["result"]["verdict"])

            await _measure("raw aiohttp", via_aiohttp, total=total, concurrency=concurrency)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    ns = parser.parse_args()
    opa = opa_binary(REPO)
    with tempfile.TemporaryDirectory() as tmp:
        bundles = build_policy_bundles(opa, REPO, Path(tmp) / "bundles")
        with OpaSidecar(opa, bundles, log_path=Path(tmp) / "opa.log") as sidecar:
            asyncio.run(_bench(sidecar.url, sidecar.token, ns.requests))


if __name__ == "__main__":
    main()
