"""Benchmark: activation → first decision with the new revision.

Starts the local stack (PostgreSQL, the API with its bundle service, the OPA
sidecar configured by opa/config.yaml, the sandbox), pushes two revisions of
the example org's bundle, then activates them alternately ``--rounds`` times.
Each round times, from the moment the activate call is sent:

- ``activate``: the API's answer (build and sign with ARX's opa, commit);
- ``sidecar``: until the sidecar's provenance names the new revision;
- ``execute``: until an agent's execute is decided with it (a DENY from the
  variant's rule, a PERMIT from the original).

It also times the first activation of a new org (discovery, then its bundle).
It prints the figures and asserts nothing: it is a benchmark, not a test.

    .venv/bin/python bench/activation.py --rounds 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from psycopg_pool import AsyncConnectionPool

from arx.admin.orgs import found_org
from arx.admin.types import Bootstrap
from arx.devstack.demo import local_stack
from arx.devstack.ports import free_port
from arx.identity.principal import Principal, PrincipalKind
from arx.policy.lifecycle import archive

REPO = Path(__file__).resolve().parents[1]
DB = "arx_bench_activation"
SEARCH = {"connector": "crowdstrike", "operation": "hosts:search", "params": {}}


def _revisions(opa_url: str, token: str) -> dict[str, str]:
    resp = httpx.post(
        f"{opa_url}/v1/data/arx/decision?provenance=true",
        json={"input": {}},
        headers={"authorization": f"Bearer {token}"},
    )
    return {k: v["revision"] for k, v in resp.json()["provenance"]["bundles"].items()}


def _variant(tmp: Path, name: str, slug: str = "example") -> bytes:
    out = tmp / name
    shutil.copytree(REPO / "bundles" / "example", out)
    for test in out.rglob("*_test.rego"):
        test.unlink()
    if slug != "example":
        (out / "orgs" / "example").rename(out / "orgs" / slug)
        (out / ".manifest").write_text(json.dumps({"roots": [f"orgs/{slug}"]}))
    data = out / "orgs" / slug / "data.json"
    policy: dict[str, Any] = json.loads(data.read_text())
    if name == "paused":
        policy["rules"].insert(
            0,
            {
                "id": "BENCH-1",
                "priority": 1,
                "verdict": "DENY",
                "match": {"operations": ["hosts:search"], "agents": ["triage-bot"]},
            },
        )
    data.write_text(json.dumps(policy))
    return archive.pack(out)


def _ms(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return (
        f"p50 {statistics.median(values) * 1000:7.1f} ms   p95 {p95 * 1000:7.1f} ms   "
        f"max {max(values) * 1000:7.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="arx-bench-activation-") as tmp:
        work = Path(tmp)
        with local_stack(home=work / "home", port=free_port(), db_name=DB) as st:
            owner = {"authorization": f"Bearer {st.owner_token}"}
            org = f"{st.base_url}/v1/admin/orgs/{st.org_id}"
            key = {"authorization": f"Bearer {st.api_keys['triage-bot']}"}
            revisions = []
            for name in ("paused", "open"):
                resp = httpx.post(
                    f"{org}/policy/bundles",
                    content=_variant(work, name),
                    headers={**owner, "content-type": "application/gzip"},
                    timeout=60,
                )
                resp.raise_for_status()
                revisions.append((resp.json()["bundle"]["revision"], name))
            answered, loaded, decided = [], [], []
            for i in range(args.rounds):
                revision, name = revisions[i % 2]
                want = "DENY" if name == "paused" else "PERMIT"
                start = time.monotonic()
                httpx.post(
                    f"{org}/policy/activate", json={"revision": revision}, headers=owner, timeout=60
                ).raise_for_status()
                answered.append(time.monotonic() - start)
                while _revisions(st.opa_url, st.opa_token).get("example") != revision:
                    time.sleep(0.001)
                loaded.append(time.monotonic() - start)
                while True:
                    resp = httpx.post(
                        f"{st.base_url}/v1/sdk/execute",
                        json=SEARCH,
                        headers=key,
                        timeout=30,
                    )
                    if resp.json().get("verdict") == want:
                        break
                decided.append(time.monotonic() - start)

            async def new_org() -> tuple[str, str]:
                url = st.api_env["ARX_CONTROL_DATABASE_URL"]
                async with AsyncConnectionPool(url, min_size=1, max_size=1, open=False) as pool:
                    founded = await found_org(
                        pool,
                        Bootstrap(org_slug="bench-new", org_name="B", owner_email="o@b.test"),
                        actor=Principal(kind=PrincipalKind.BOOTSTRAP, id="bootstrap", name="b"),
                    )
                return str(founded.org.id), founded.owner_token.token

            new_id, new_token = asyncio.run(new_org())
            auth = {"authorization": f"Bearer {new_token}"}
            resp = httpx.post(
                f"{st.base_url}/v1/admin/orgs/{new_id}/policy/bundles",
                content=_variant(work, "new", slug="bench-new"),
                headers={**auth, "content-type": "application/gzip"},
                timeout=60,
            )
            resp.raise_for_status()
            revision = resp.json()["bundle"]["revision"]
            start = time.monotonic()
            httpx.post(
                f"{st.base_url}/v1/admin/orgs/{new_id}/policy/activate",
                json={"revision": revision},
                headers=auth,
                timeout=60,
            ).raise_for_status()
            while _revisions(st.opa_url, st.opa_token).get("bench-new") != revision:
                time.sleep(0.001)
            first = time.monotonic() - start
    print(f"\nactivation -> first decision, {args.rounds} rounds (from sending the activate call):")
    print(f"  activate answered        {_ms(answered)}")
    print(f"  sidecar serves it        {_ms(loaded)}")
    print(f"  an execute decided by it {_ms(decided)}")
    print(f"new org, first activation -> sidecar serves it: {first * 1000:.1f} ms")


if __name__ == "__main__":
    main()
