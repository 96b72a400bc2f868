"""compose.yaml's policy services, run as written with the real pinned opa.

No Docker engine runs here, so this test does what compose would: it runs
the bundle builds' and the sidecar's commands from compose.yaml with the
pinned binary, the container paths mapped to what the services mount (the
repository's directories, a scratch directory for the named volume), the
environment the file gives them, and one change: the sidecar listens on a
free loopback port instead of 0.0.0.0:8181. A compose OPA that cannot start,
or that answers strangers, fails here. It also holds the images to the pins:
opa/VERSION, and the PostgreSQL major the tests run against.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import yaml

from arx.devstack.ports import LOOPBACK, free_port

TOKEN = "compose-test-token-0123456789abcdefghij"


@pytest.fixture(scope="module")
def compose(repo_root: Path) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((repo_root / "compose.yaml").read_text())
    return doc


def _mounts(service: dict[str, Any], repo_root: Path, volumes: Path) -> dict[str, Path]:
    """Container path -> host path, for the service's bind mounts and named volumes."""
    mounts: dict[str, Path] = {}
    for spec in service.get("volumes", []):
        source, target = spec.split(":")[:2]
        if source.startswith("."):
            mounts[target] = repo_root / source
        else:  # a named volume: a directory of this test's
            mounts[target] = volumes / source
            mounts[target].mkdir(parents=True, exist_ok=True)
    return mounts


def _mapped(arg: str, mounts: dict[str, Path]) -> str:
    for target in sorted(mounts, key=len, reverse=True):
        if arg == target or arg.startswith(target + "/"):
            return str(mounts[target]) + arg[len(target) :]
    return arg


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = {}
    for name, value in (service.get("environment") or {}).items():
        # ${VAR:?message} / ${VAR:-default}: what the user exports, here the test's.
        env[name] = re.sub(r"\$\{ARX_OPA_TOKEN[^}]*\}", TOKEN, str(value))
    return env


def test_images_are_the_pinned_versions(
    compose: dict[str, Any], repo_root: Path, pg_admin_url: str
) -> None:
    opa_version = (repo_root / "opa" / "VERSION").read_text().strip().removeprefix("v")
    with psycopg.connect(pg_admin_url) as conn:
        row = conn.execute("SHOW server_version_num").fetchone()
    assert row is not None
    pg_major = int(row[0]) // 10000
    images = {name: s["image"] for name, s in compose["services"].items() if "image" in s}
    for name, image in images.items():
        repo, tag = image.rsplit(":", 1)
        if repo == "openpolicyagent/opa":
            assert tag == opa_version, f"{name}: {image}, but opa/VERSION pins {opa_version}"
        elif repo == "postgres":
            assert tag == str(pg_major), f"{name}: {image}, but the tests run PostgreSQL {pg_major}"
        else:
            pytest.fail(f"{name}: {image} is pinned by nothing this test knows")


def test_the_compose_sidecar_starts_serves_arx_and_refuses_everyone_else(
    compose: dict[str, Any], opa_path: Path, repo_root: Path, tmp_path: Path
) -> None:
    services = compose["services"]
    volumes = tmp_path / "volumes"
    for name in ("bundle-base", "bundle-example"):
        service = services[name]
        mounts = _mounts(service, repo_root, volumes)
        args = [_mapped(a, mounts) for a in service["command"]]
        built = subprocess.run([opa_path, *args], capture_output=True, text=True, check=False)
        assert built.returncode == 0, f"{name}: {built.stderr}"

    opa = services["opa"]
    mounts = _mounts(opa, repo_root, volumes)
    port = free_port()
    args = [
        f"--addr={LOOPBACK}:{port}" if a.startswith("--addr=") else _mapped(a, mounts)
        for a in opa["command"]
    ]
    assert f"--addr={LOOPBACK}:{port}" in args, "the sidecar's --addr= was not found"
    env = {**os.environ, **_environment(opa)}
    assert env["ARX_OPA_TOKEN"] == TOKEN
    log = (tmp_path / "opa.log").open("w")
    proc = subprocess.Popen([opa_path, *args], env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://{LOOPBACK}:{port}"
    token = {"Authorization": f"Bearer {TOKEN}"}
    try:
        with httpx.Client(base_url=base, trust_env=False, timeout=5) as client:
            deadline = time.monotonic() + 20
            while True:
                assert proc.poll() is None, (tmp_path / "opa.log").read_text()
                assert time.monotonic() < deadline, "the compose sidecar never became ready"
                try:
                    if client.get("/health?bundles", headers=token).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
            decision = client.post("/v1/data/arx/decision", json={"input": {}}, headers=token)
            assert decision.json()["result"]["policy_id"] == "arx.invalid_input"
            assert client.put("/v1/data/orgs/example", json={}, headers=token).status_code == 401
            assert client.get("/v1/data/orgs", headers=token).status_code == 401
            assert client.post("/v1/data/arx/decision", json={"input": {}}).status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
