"""compose.yaml's own commands, run as written with the real pinned opa and
the real ARX, against a running stack.

No Docker engine runs here, so this test does what compose would: it runs
the services' commands from compose.yaml with the host's binaries (the
pinned opa, the venv's arx), the container paths mapped to what the services
mount (the repository's files, a scratch directory per named volume), and
the environment the file gives them, with service hostnames (api, opa,
falcon-sandbox) pointing at the test's stack. The order is compose's: `keys`
makes the signing key, the API signs with it, the sidecar from compose
verifies with its public half and takes every bundle from ARX, and `seed`
founds the example org and activates its policy. A compose OPA that cannot
start, a seed that cannot seed, or a sidecar that answers strangers fails
here. It also holds the images to the pins: opa/VERSION, and the PostgreSQL
major the tests run against.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import yaml

from arx.devstack.demo import Stack, local_stack
from arx.devstack.ports import LOOPBACK, free_port

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((REPO / "compose.yaml").read_text())
    return doc


@pytest.fixture(scope="module")
def volumes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("compose-volumes")


def _mounts(service: dict[str, Any], volumes: Path) -> dict[str, Path]:
    """Container path -> host path, for the service's bind mounts and named volumes."""
    mounts: dict[str, Path] = {}
    for spec in service.get("volumes", []):
        source, target = spec.split(":")[:2]
        if source.startswith("."):
            mounts[target] = REPO / source
        else:  # a named volume: a directory of this test's
            mounts[target] = volumes / source
            mounts[target].mkdir(parents=True, exist_ok=True)
    return mounts


def _mapped(arg: str, mounts: dict[str, Path], hosts: dict[str, str]) -> str:
    for target in sorted(mounts, key=len, reverse=True):
        arg = re.sub(rf"(^|[=\s(]){re.escape(target)}(?=/|$|\s)", rf"\g<1>{mounts[target]}", arg)
    for host, url in hosts.items():
        arg = arg.replace(f"http://{host}", url)
    return arg


def _environment(
    service: dict[str, Any], values: dict[str, str], hosts: dict[str, str]
) -> dict[str, str]:
    env = {}
    for name, value in (service.get("environment") or {}).items():
        # ${VAR:?message} / ${VAR:-default}: what the user exports, here the test's.
        text = re.sub(
            r"\$\{(\w+)(?::[?-]([^}]*))?\}",
            lambda m: values.get(m.group(1), m.group(2) or ""),
            str(value),
        )
        env[name] = _mapped(text, {}, hosts)
    return env


def _run(
    service: dict[str, Any], mounts: dict[str, Path], hosts: dict[str, str], env: dict[str, str]
) -> str:
    args = [_mapped(str(a), mounts, hosts) for a in service["command"]]
    done = subprocess.run(
        args,
        env={**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}", **env},
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        timeout=120,
    )
    assert done.returncode == 0, f"{args}: {done.stderr}"
    return done.stdout


def test_images_are_the_pinned_versions(compose: dict[str, Any], pg_admin_url: str) -> None:
    opa_version = (REPO / "opa" / "VERSION").read_text().strip().removeprefix("v")
    with psycopg.connect(pg_admin_url) as conn:
        row = conn.execute("SHOW server_version_num").fetchone()
    assert row is not None
    pg_major = int(row[0]) // 10000
    images = {name: s["image"] for name, s in compose["services"].items() if "image" in s}
    # The API image copies ARX's own opa from the official image.
    for line in (REPO / "Dockerfile").read_text().splitlines():
        if line.startswith("FROM openpolicyagent/opa:"):
            images["Dockerfile"] = line.split()[1].removesuffix("-static")
    assert "Dockerfile" in images, "the Dockerfile no longer takes opa from the pinned image"
    for name, image in images.items():
        repo, tag = image.rsplit(":", 1)
        if repo == "openpolicyagent/opa":
            assert tag == opa_version, f"{name}: {image}, but opa/VERSION pins {opa_version}"
        elif repo == "postgres":
            assert tag == str(pg_major), f"{name}: {image}, but the tests run PostgreSQL {pg_major}"
        else:
            pytest.fail(f"{name}: {image} is pinned by nothing this test knows")


def test_the_image_owns_every_volume_its_services_write(compose: dict[str, Any]) -> None:
    """A named volume starts as a copy of the image's directory at its mount
    point: where the image has none, Docker makes it root's, and ARX, which
    runs as `arx`, cannot write its keys or its spool there."""
    dockerfile = (REPO / "Dockerfile").read_text()
    install = r"install -d -o arx -g arx -m \d+ ((?:/[\w/.-]+\s*\\?\s*)+)"
    made = {
        path
        for match in re.finditer(install, dockerfile)
        for path in match.group(1).replace("\\", " ").split()
    }
    for name, service in compose["services"].items():
        if "build" not in service:
            continue
        for volume in service.get("volumes") or []:
            source, target, *mode = volume.split(":")
            if source.startswith((".", "/")) or mode == ["ro"]:
                continue  # a file of the repository, or read only
            assert target in made, f"{name} writes {target}, which the image does not make for arx"


@pytest.fixture(scope="module")
def stack(
    compose: dict[str, Any],
    volumes: Path,
    pg_admin_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """compose's `keys` first; then an ARX that signs with the key it made
    (the local stack keeps a key it finds) and has not been seeded."""
    keys = compose["services"]["keys"]
    mounts = _mounts(keys, volumes)
    _run(keys, mounts, {}, {})
    home = tmp_path_factory.mktemp("compose-stack")
    made = {
        "bundle-signing.pem": mounts["/var/lib/arx/signing"] / "bundle-signing.pem",
        "audit-signing.pem": mounts["/var/lib/arx/audit"] / "audit-signing.pem",
    }
    for name, path in made.items():
        (home / name).write_bytes(path.read_bytes())
    assert (mounts["/var/lib/arx/audit"] / "audit-signing.pub.pem").is_file()
    # Run again: keys that exist are kept, not replaced.
    before = {name: path.read_bytes() for name, path in made.items()}
    _run(keys, mounts, {}, {})
    assert {name: path.read_bytes() for name, path in made.items()} == before
    with local_stack(
        home=home, port=free_port(), admin_url=pg_admin_url, db_name="arx_e2e_compose", seed=False
    ) as running:
        yield running


def test_the_seed_and_the_compose_sidecar_give_a_governed_call(
    compose: dict[str, Any], volumes: Path, stack: Stack, tmp_path: Path
) -> None:
    services = compose["services"]
    # The sandbox runs on the API's loopback (the URL the API is given).
    assert compose["services"]["falcon-sandbox"]["network_mode"] == "service:api"
    assert compose["services"]["vendor-sandboxes"]["network_mode"] == "service:api"
    hosts = {
        "api:8080": stack.base_url,
        "127.0.0.1:9000": stack.falcon_url,
        "127.0.0.1:9100": stack.sandbox_url,
    }
    values = {
        "ARX_OPA_TOKEN": stack.opa_token,
        "ARX_BOOTSTRAP_TOKEN": stack.api_env["ARX_BOOTSTRAP_TOKEN"],
        "ARX_SANDBOX_FALCON_CLIENT_SECRET": stack.falcon_client_secret,
        "ARX_SANDBOX_SECRET": stack.falcon_client_secret,
    }

    # The seed: the example org, its agents and keys, its policy activated.
    seed = services["seed"]
    out = json.loads(_run(seed, _mounts(seed, volumes), hosts, _environment(seed, values, hosts)))
    assert set(out["api_keys"]) == {"triage-bot", "responder-bot"}
    assert out["policy_revision"].startswith("example-")

    # The sidecar as compose runs it: in the API's network namespace, on its
    # loopback (here a free loopback port instead of 8181, which may be taken).
    opa = services["opa"]
    assert opa["network_mode"] == "service:api"
    assert "--addr=127.0.0.1:8181" in opa["command"], "the sidecar must listen on loopback"
    assert compose["x-arx-env"]["ARX_OPA_URL"] == "http://127.0.0.1:8181"
    mounts = _mounts(opa, volumes)
    port = free_port()
    hosts = {**hosts, "127.0.0.1:8080": stack.base_url}
    args = [
        f"--addr={LOOPBACK}:{port}" if a.startswith("--addr=") else _mapped(a, mounts, hosts)
        for a in opa["command"]
    ]
    env = {**os.environ, **_environment(opa, values, hosts)}
    assert env["ARX_BUNDLE_SERVICE_URL"] == f"{stack.base_url}/v1/opa"
    opa_bin = stack.api_env["ARX_OPA_BINARY"]
    log = (tmp_path / "opa.log").open("w")
    proc = subprocess.Popen([opa_bin, *args], env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://{LOOPBACK}:{port}"
    token = {"Authorization": f"Bearer {stack.opa_token}"}
    try:
        with httpx.Client(base_url=base, trust_env=False, timeout=5) as client:
            deadline = time.monotonic() + 30
            while True:
                assert proc.poll() is None, (tmp_path / "opa.log").read_text()
                assert time.monotonic() < deadline, (tmp_path / "opa.log").read_text()
                try:
                    resp = client.post(
                        "/v1/data/arx/decision?provenance=true", json={"input": {}}, headers=token
                    )
                    bundles = resp.json().get("provenance", {}).get("bundles", {})
                    # Both bundles: each is downloaded on its own.
                    example = bundles.get("example", {}).get("revision")
                    if example == out["policy_revision"] and "arx-base" in bundles:
                        break
                except (httpx.TransportError, ValueError):
                    pass
                time.sleep(0.1)
            assert "arx-base" in bundles
            assert client.put("/v1/data/orgs/example", json={}, headers=token).status_code == 401
            assert client.get("/v1/data/orgs", headers=token).status_code == 401
            assert client.post("/v1/data/arx/decision", json={"input": {}}).status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()

    # A governed call with the key the seed printed.
    resp = httpx.post(
        f"{stack.base_url}/v1/sdk/execute",
        json={"connector": "crowdstrike", "operation": "hosts:search", "params": {}},
        headers={"authorization": f"Bearer {out['api_keys']['triage-bot']}"},
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["verdict"] == "PERMIT"
    assert out["policy_revision"] in resp.json()["bundle_revision"]
    # The seed stored a credential for each other sandbox: a governed call on one.
    resp = httpx.post(
        f"{stack.base_url}/v1/sdk/execute",
        json={
            "connector": "jira",
            "operation": "issues:search",
            "params": {"jql": "project = SEC"},
        },
        headers={"authorization": f"Bearer {out['api_keys']['triage-bot']}"},
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    assert [i["key"] for i in resp.json()["result"]["issues"]] == ["SEC-1", "SEC-2"]

    # The trail's checkpoints are signed with the audit key `keys` made, and
    # its public half, as an auditor would get it, verifies them offline.
    public = (volumes / "audit-key" / "audit-signing.pub.pem").read_bytes()
    owner = {"authorization": f"Bearer {out['owner_token']}"}
    me = httpx.get(f"{stack.base_url}/v1/admin/me", headers=owner, timeout=10).json()
    (org_id,) = [m["org_id"] for m in me["orgs"] if m["slug"] == out["org"]]
    url = f"{stack.base_url}/v1/admin/orgs/{org_id}/audit/checkpoints"
    deadline = time.monotonic() + 30
    while True:
        exported = httpx.get(url, headers=owner, timeout=10).json()
        if exported["checkpoints"] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert exported["checkpoints"], exported
    assert [k["pem"].encode().strip() for k in exported["public_keys"]] == [public.strip()]
    (tmp_path / "checkpoints.json").write_text(json.dumps(exported))
    (tmp_path / "auditor.pub.pem").write_bytes(public)
    check = subprocess.run(
        [str(VENV_BIN / "arx"), "audit", "verify-checkpoints", str(tmp_path / "checkpoints.json"),
         "--public-key", str(tmp_path / "auditor.pub.pem")],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert check.returncode == 0, check.stderr
    assert json.loads(check.stdout)["ok"] is True
