"""Benchmark: which client should ARX use to ask the OPA sidecar?

Compares, against the real sidecar loaded with the repository's bundles and
the same decision input (the demo's triage-bot searching hosts):

- ``httpx``: one shared ``httpx.AsyncClient`` posting a msgspec-encoded body
  and decoding with msgspec;
- ``opa-python-client``: ``opa_client.AsyncOpaClient.query_rule`` (aiohttp),
  bare and wrapped in ARX's ``PolicyClient`` (validation, provenance);
- raw ``aiohttp``: one ClientSession, msgspec in and out (the floor under the above).

Prints decisions per second and p50/p95/p99 for each at several concurrency
levels. A benchmark, not a test.

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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import msgspec
from opa_client import AsyncOpaClient

from arx.audit.service import epoch_ns
from arx.devstack.opa import OpaSidecar, opa_binary
from arx.devstack.stack import build_policy_bundles
from arx.policy.client import PolicyClient
from arx.policy.types import AgentInput, OperationInput, OrgInput, PolicyInput

REPO = Path(__file__).resolve().parents[1]

NOW = datetime.now(UTC)
INPUT = PolicyInput(
    agent=AgentInput(
        id=uuid.uuid4(),
        name="triage-bot",
        intent={"purpose": "", "scope": {"crowdstrike": ["hosts:search", "hosts:get"]}},
    ),
    org=OrgInput(id=uuid.uuid4(), slug="example"),
    connector="crowdstrike",
    operation=OperationInput(
        name="hosts:search", kind="read", base_risk=10, reversible=True, target_type="host"
    ),
    params={"limit": 10},
    session_context=[],
    now=NOW,
    now_ns=epoch_ns(NOW),
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

    started = time.perf_counter()
    await asyncio.gather(*(worker(total // concurrency) for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, round(p / 100 * (len(latencies) - 1)))]

    print(
        f"{name:<18} c={concurrency:<3} {len(latencies) / elapsed:>8.0f} decisions/s  "
        f"mean {statistics.fmean(latencies):6.3f} ms  p50 {pct(50):6.3f}  "
        f"p95 {pct(95):6.3f}  p99 {pct(99):6.3f} ms"
    )


async def _bench(url: str, port: int, total: int) -> None:
    raw_input: dict[str, Any] = msgspec.to_builtins(INPUT)
    for concurrency in (1, 8, 32):
        body = msgspec.json.encode({"input": INPUT})
        async with httpx.AsyncClient(timeout=5.0) as http:

            async def via_httpx(h: httpx.AsyncClient = http, b: bytes = body) -> str:
                resp = await h.post(
                    f"{url}/v1/data/arx/decision",
                    params={"provenance": "true"},
                    content=b,
                    headers={"content-type": "application/json"},
                )
                return str(msgspec.json.decode(resp.content)["result"]["verdict"])

            await _measure("shared httpx", via_httpx, total=total, concurrency=concurrency)

        async with AsyncOpaClient(host="127.0.0.1", port=port, timeout=5.0) as opa:

            async def via_opa_client(o: AsyncOpaClient = opa) -> str:
                answer = await o.query_rule(
                    raw_input, "arx", "decision", query_params={"provenance": "true"}
                )
                return str(answer["result"]["verdict"])

            await _measure(
                "opa-python-client", via_opa_client, total=total, concurrency=concurrency
            )
            policy = PolicyClient(opa)

            async def via_arx(p: PolicyClient = policy) -> str:
                return (await p.decide(INPUT)).verdict.value

            await _measure("ARX PolicyClient", via_arx, total=total, concurrency=concurrency)

        async with aiohttp.ClientSession() as session:

            async def via_aiohttp(s: aiohttp.ClientSession = session, b: bytes = body) -> str:
                async with s.post(
                    f"{url}/v1/data/arx/decision?provenance=true",
                    data=b,
                    headers={"content-type": "application/json"},
                ) as resp:
                    return str(msgspec.json.decode(await resp.read())["result"]["verdict"])

            await _measure("aiohttp (raw)", via_aiohttp, total=total, concurrency=concurrency)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    ns = parser.parse_args()
    opa = opa_binary(REPO)
    with tempfile.TemporaryDirectory() as tmp:
        bundles = build_policy_bundles(opa, REPO, Path(tmp) / "bundles")
        with OpaSidecar(opa, bundles, log_path=Path(tmp) / "opa.log") as sidecar:
            asyncio.run(_bench(sidecar.url, sidecar.port, ns.requests))


if __name__ == "__main__":
    main()
