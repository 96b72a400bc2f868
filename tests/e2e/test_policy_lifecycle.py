"""Policy bundles as users ship them: pushed to the running API, vetted by
ARX's own opa, signed on activation, served to the real OPA sidecar by ARX's
bundle service (discovery, long polling), rolled back; and what the sidecar
does with a bundle that does not verify or that claims another org's roots.

One stack for the module: real API process, real sidecar configured by
opa/config.yaml, real PostgreSQL.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import yaml
from psycopg_pool import AsyncConnectionPool

from arx.admin.orgs import found_org
from arx.admin.types import Bootstrap
from arx.devstack.demo import Stack, local_stack
from arx.devstack.ports import free_port
from arx.devstack.postgres import psql_url_with
from arx.identity.principal import Principal, PrincipalKind
from arx.policy.lifecycle import archive

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "bundles" / "example"
DB = "arx_e2e_policy"
OPERATOR = Principal(kind=PrincipalKind.BOOTSTRAP, id="bootstrap", name="pytest")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("policy-stack")


@pytest.fixture(scope="module")
def stack(pg_admin_url: str, home: Path) -> Iterator[Stack]:
    with local_stack(home=home, port=free_port(), admin_url=pg_admin_url, db_name=DB) as running:
        yield running


@pytest.fixture(scope="module")
def api(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=stack.base_url,
        headers={"authorization": f"Bearer {stack.owner_token}"},
        timeout=60,
    ) as client:
        yield client


# --- helpers -----------------------------------------------------------------------------


def sidecar_revisions(stack: Stack) -> dict[str, str]:
    resp = httpx.post(
        f"{stack.opa_url}/v1/data/arx/decision?provenance=true",
        json={"input": {}},
        headers={"authorization": f"Bearer {stack.opa_token}"},
    )
    resp.raise_for_status()
    bundles = resp.json()["provenance"]["bundles"]
    return {name: b["revision"] for name, b in bundles.items()}


def wait_for(stack: Stack, name: str, revision: str | None, timeout: float = 10.0) -> float:
    """Seconds until the sidecar decides with ``name`` at ``revision``."""
    start = time.monotonic()
    while sidecar_revisions(stack).get(name) != revision:
        if time.monotonic() - start > timeout:
            raise AssertionError(
                f"the sidecar has {sidecar_revisions(stack)}, not {name}={revision}"
            )
        time.sleep(0.005)
    return time.monotonic() - start


def variant(
    tmp: Path, name: str, edit: Any = None, *, slug: str = "example", tests: bool = True
) -> Path:
    """A copy of the example bundle (as org ``slug``) with ``edit(policy)``
    applied; without the example's tests unless ``tests``."""
    out = tmp / name
    shutil.copytree(EXAMPLE, out)
    if not tests:
        for test in out.rglob("*_test.rego"):
            test.unlink()
    if slug != "example":
        (out / "orgs" / "example").rename(out / "orgs" / slug)
        for test in (out / "orgs" / slug).glob("*_test.rego"):
            test.unlink()
        (out / ".manifest").write_text(json.dumps({"roots": [f"orgs/{slug}"]}))
    data = out / "orgs" / slug / "data.json"
    policy = json.loads(data.read_text())
    if edit is not None:
        edit(policy)
    data.write_text(json.dumps(policy, indent=1))
    return out


def push(api: httpx.Client, org_id: str, payload: bytes | Path, **kw: Any) -> httpx.Response:
    body = archive.pack(payload) if isinstance(payload, Path) else payload
    return api.post(
        f"/v1/admin/orgs/{org_id}/policy/bundles",
        content=body,
        headers={"content-type": kw.pop("content_type", "application/gzip")},
        **kw,
    )


def push_ok(api: httpx.Client, org_id: str, source: Path) -> str:
    resp = push(api, org_id, source)
    assert resp.status_code in (200, 201), resp.text
    return str(resp.json()["bundle"]["revision"])


def activate(api: httpx.Client, org_id: str, revision: str) -> httpx.Response:
    return api.post(f"/v1/admin/orgs/{org_id}/policy/activate", json={"revision": revision})


def execute(stack: Stack, agent: str, operation: str, params: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{stack.base_url}/v1/sdk/execute",
        json={"connector": "crowdstrike", "operation": operation, "params": params},
        headers={
            "authorization": f"Bearer {stack.api_keys[agent]}",
            "prefer": "respond-async",
        },
        timeout=30,
    )


def decision_of(resp: httpx.Response) -> tuple[str, str | None, str | None]:
    doc = resp.json()
    return doc.get("verdict"), doc.get("policy_id"), doc.get("bundle_revision")


def deny_searches(policy: dict[str, Any]) -> None:
    policy["rules"].insert(
        0,
        {
            "id": "EX-900",
            "priority": 1,
            "description": "Host searches are paused",
            "verdict": "DENY",
            "match": {"operations": ["hosts:search"]},
        },
    )


def db_url(stack: Stack) -> str:
    return psql_url_with(stack.admin_url, dbname=DB)


def second_org(stack: Stack, slug: str) -> tuple[str, str]:
    """Another org, founded as the operator's tooling does: (org id, owner token)."""

    async def found() -> tuple[str, str]:
        url = stack.api_env["ARX_CONTROL_DATABASE_URL"]
        async with AsyncConnectionPool(url, min_size=1, max_size=1, open=False) as pool:
            founded = await found_org(
                pool,
                Bootstrap(org_slug=slug, org_name=slug.title(), owner_email=f"o@{slug}.test"),
                actor=OPERATOR,
            )
        return str(founded.org.id), founded.owner_token.token

    return asyncio.run(found())


# --- pushing -----------------------------------------------------------------------------


def test_a_push_is_refused_with_opas_own_words_and_nothing_is_stored(
    stack: Stack, api: httpx.Client, tmp_path: Path
) -> None:
    org = stack.org_id
    before = api.get(f"/v1/admin/orgs/{org}/policy/bundles").json()

    # Roots that are not exactly orgs/<slug>.
    wrong_roots = variant(tmp_path, "roots")
    (wrong_roots / ".manifest").write_text(json.dumps({"roots": ["orgs"]}))
    resp = push(api, org, wrong_roots)
    assert resp.status_code == 422
    assert resp.json()["code"] == "bundle_rejected"
    assert 'must be exactly ["orgs/example"]' in resp.json()["detail"]

    # A failing test: OPA's report, naming the engineer's file and test.
    failing = variant(tmp_path, "failing", deny_searches)
    resp = push(api, org, failing)
    assert resp.status_code == 422, resp.text
    detail = resp.json()["detail"]
    assert "opa test failed" in detail
    assert "bundle/orgs/example/example_test.rego" in detail
    assert "FAIL" in detail
    # Nothing of the server's paths.
    assert str(REPO) not in detail
    assert "arx-push-" not in detail

    # A test that does not compile: opa's parse error.
    broken = variant(tmp_path, "broken")
    (broken / "orgs" / "example" / "extra_test.rego").write_text("package orgs_test.x\n\nx := {\n")
    resp = push(api, org, broken)
    assert resp.status_code == 422
    assert "rego_parse_error" in resp.json()["detail"]
    assert "bundle/orgs/example/extra_test.rego" in resp.json()["detail"]

    # Org Rego policy at all: an org bundle is rules as data (and tests).
    code = variant(tmp_path, "code")
    (code / "orgs" / "example" / "extra.rego").write_text("package orgs.example\n\nx := 1\n")
    resp = push(api, org, code)
    assert resp.status_code == 422
    assert "may not hold Rego policy: orgs/example/extra.rego" in resp.json()["detail"]

    # A malformed org document: data.arx.org.errors.
    def bad_rule(policy: dict[str, Any]) -> None:
        policy["rules"].append({"id": "EX-999", "priority": "high", "verdict": "PERMIT"})

    resp = push(api, org, variant(tmp_path, "malformed", bad_rule))
    assert resp.status_code == 422
    assert "priority must be a number" in resp.json()["detail"]

    # A condition on a param no operation of the connector declares.
    def unknown_param(policy: dict[str, Any]) -> None:
        policy["rules"].append(
            {
                "id": "EX-998",
                "priority": 5,
                "verdict": "DENY",
                "match": {
                    "connectors": ["crowdstrike"],
                    "operations": ["hosts:contain"],
                    "params": {"hostz": {"count_gt": 1}},
                },
            }
        )

    resp = push(api, org, variant(tmp_path, "unknown-param", unknown_param))
    assert resp.status_code == 422
    assert "hostz" in resp.json()["detail"]

    # A signature of its own: ARX signs what it activates, nobody else.
    signed = variant(tmp_path, "signed")
    (signed / ".signatures.json").write_text('{"signatures": []}')
    resp = push(api, org, signed)
    assert resp.status_code == 422
    assert "holds .signatures.json" in resp.json()["detail"]

    # Not an archive at all, and not sent as gzip.
    assert push(api, org, b"not a tarball").status_code == 422
    assert push(api, org, EXAMPLE, content_type="application/json").status_code == 415

    # An archive member escaping the bundle directory.
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb") as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        info = tarfile.TarInfo("../escape.rego")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"x:="))
    resp = push(api, org, buffer.getvalue())
    assert resp.status_code == 422
    assert "unsafe path" in resp.json()["detail"]

    assert api.get(f"/v1/admin/orgs/{org}/policy/bundles").json() == before


def test_a_push_stores_the_revision_with_its_sha256_uploader_and_tests(
    stack: Stack, api: httpx.Client
) -> None:
    data = archive.pack(EXAMPLE)
    resp = push(api, stack.org_id, data)
    # The demo pushed this very source when it started: the same revision.
    assert resp.status_code == 200
    bundle = resp.json()["bundle"]
    assert bundle["sha256"] == hashlib.sha256(data).hexdigest()
    assert bundle["revision"] == f"example-{bundle['sha256'][:12]}"
    assert bundle["tests_passed"] > 10
    assert bundle["uploaded_by"].startswith("token:")


# --- activation, rollback, isolation ---------------------------------------------------------


def test_activation_reaches_the_sidecar_at_once_and_rollback_restores(
    stack: Stack, api: httpx.Client, tmp_path: Path
) -> None:
    org = stack.org_id
    status = api.get(f"/v1/admin/orgs/{org}/policy").json()
    original = status["active"]["revision"]
    assert sidecar_revisions(stack)["example"] == original
    assert decision_of(execute(stack, "triage-bot", "hosts:search", {}))[0] == "PERMIT"

    paused = push_ok(api, org, variant(tmp_path, "paused", pause_triage_searches, tests=False))
    latencies = []
    for _ in range(3):
        started = time.monotonic()
        resp = activate(api, org, paused)
        assert resp.status_code == 200, resp.text
        latencies.append(time.monotonic() - started + wait_for(stack, "example", paused))
        verdict, policy_id, revision = decision_of(execute(stack, "triage-bot", "hosts:search", {}))
        assert (verdict, policy_id) == ("DENY", "EX-900")
        assert revision is not None
        assert paused in revision
        resp = api.post(f"/v1/admin/orgs/{org}/policy/rollback", json={})
        assert resp.status_code == 200, resp.text
        assert resp.json()["revision"] == original
        wait_for(stack, "example", original)
        assert decision_of(execute(stack, "triage-bot", "hosts:search", {}))[0] == "PERMIT"
    print(
        f"\nactivation -> sidecar decides with it: {[round(x * 1000) for x in latencies]} ms "
        f"(median {statistics.median(latencies) * 1000:.0f} ms)"
    )
    # Long polling, not OPA's 60-120 s default polling: within the 1 s.
    assert max(latencies) < 1.0

    history = api.get(f"/v1/admin/orgs/{org}/policy").json()["history"]
    assert [h["action"] for h in history[:2]] == ["rollback", "activate"]
    assert history[1]["revision"] == paused
    events = api.get(f"/v1/admin/orgs/{org}/audit", params={"limit": 1000}).json()["events"]
    actions = [e.get("action") for e in events if e["kind"] == "admin"]
    assert actions.count("policy.activated") >= 4  # the demo's own and three here
    assert actions.count("policy.rolled_back") == 3
    # Activating what is active is refused rather than recorded twice.
    assert activate(api, org, original).status_code == 409


def pause_triage_searches(policy: dict[str, Any]) -> None:
    policy["rules"].insert(
        0,
        {
            "id": "EX-900",
            "priority": 1,
            "description": "triage-bot's host searches are paused",
            "verdict": "DENY",
            "match": {"operations": ["hosts:search"], "agents": ["triage-bot"]},
        },
    )


def test_a_new_org_is_served_without_touching_the_sidecar(stack: Stack, tmp_path: Path) -> None:
    org_id, token = second_org(stack, "northwind")
    assert "northwind" not in sidecar_revisions(stack)
    with httpx.Client(
        base_url=stack.base_url, headers={"authorization": f"Bearer {token}"}, timeout=60
    ) as owner:
        revision = push_ok(owner, org_id, variant(tmp_path, "northwind", slug="northwind"))
        started = time.monotonic()
        assert activate(owner, org_id, revision).status_code == 200
        took = time.monotonic() - started + wait_for(stack, "northwind", revision)
    print(f"\nfirst activation of a new org -> sidecar decides with it: {took * 1000:.0f} ms")
    assert took < 1.0
    # The example org is untouched.
    assert decision_of(execute(stack, "triage-bot", "hosts:search", {}))[0] == "PERMIT"


def _superuser_swap_active_bundle(stack: Stack, slug: str, data: bytes) -> None:
    """As the database superuser (triggers off): the org's active bundle bytes
    become ``data``, with a matching ETag, and the sidecars are told."""
    with psycopg.connect(db_url(stack), autocommit=True) as conn:
        conn.execute(
            "ALTER TABLE arx.policy_activations DISABLE TRIGGER policy_activations_no_update_delete"
        )
        try:
            conn.execute(
                "UPDATE arx.policy_activations SET bundle = %s, etag = %s WHERE seq ="
                " (SELECT max(a.seq) FROM arx.policy_activations a JOIN arx.orgs o"
                "  ON o.id = a.org_id WHERE o.slug = %s)",
                (data, hashlib.sha256(data).hexdigest(), slug),
            )
        finally:
            conn.execute(
                "ALTER TABLE arx.policy_activations"
                " ENABLE ALWAYS TRIGGER policy_activations_no_update_delete"
            )
        conn.execute(
            "SELECT pg_notify('arx_policy', id::text) FROM arx.orgs WHERE slug = %s", (slug,)
        )


def _served(stack: Stack, slug: str) -> bytes:
    resp = httpx.get(
        f"{stack.base_url}/v1/opa/bundles/orgs/{slug}",
        headers={"authorization": f"Bearer {stack.opa_token}"},
    )
    assert resp.status_code == 200
    return resp.content


def test_a_tampered_bundle_is_never_loaded_and_the_last_good_one_keeps_deciding(
    stack: Stack, api: httpx.Client
) -> None:
    good = sidecar_revisions(stack)["example"]
    signed = _served(stack, "example")
    # Change the policy inside the signed bundle, keep its signature file.
    members: list[tuple[tarfile.TarInfo, bytes]] = []
    with tarfile.open(fileobj=io.BytesIO(signed), mode="r:gz") as tar:
        for member in tar:
            content = tar.extractfile(member).read() if member.isfile() else b""  # type: ignore[union-attr]
            if member.name.endswith("data.json"):
                document = json.loads(content)  # opa build nests it: orgs.example
                document["orgs"]["example"]["defaults"]["read"] = "DENY"
                content = json.dumps(document).encode()
                member.size = len(content)
            members.append((member, content))
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb") as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        for member, content in members:
            tar.addfile(member, io.BytesIO(content))
    _superuser_swap_active_bundle(stack, "example", buffer.getvalue())
    # ARX now serves the tampered bytes...
    deadline = time.monotonic() + 10
    while _served(stack, "example") == signed:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    # ... and OPA refuses them: it keeps deciding with the last good revision.
    time.sleep(1.5)
    assert sidecar_revisions(stack)["example"] == good
    refusals = [
        json.loads(line)["msg"]
        for line in (stack.logs / "opa.log").read_text().splitlines()
        if '"name":"example"' in line
    ]
    assert any("data.json: digest mismatch" in msg for msg in refusals), refusals
    verdict, policy_id, revision = decision_of(execute(stack, "triage-bot", "hosts:search", {}))
    assert (verdict, policy_id) == ("PERMIT", "default:read")
    assert revision is not None
    assert good in revision  # the decision names the revision that made it

    # The same bundle with its signature removed: OPA refuses it unsigned.
    unsigned = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(signed), mode="r:gz") as tar,
        gzip.GzipFile(fileobj=unsigned, mode="wb") as gz,
        tarfile.open(fileobj=gz, mode="w") as out,
    ):
        for member in tar:
            if not member.name.endswith(".signatures.json"):
                out.addfile(member, tar.extractfile(member) if member.isfile() else None)
    _superuser_swap_active_bundle(stack, "example", unsigned.getvalue())
    deadline = time.monotonic() + 10
    while b".signatures.json" in gzip.decompress(_served(stack, "example")):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(1.5)
    assert sidecar_revisions(stack)["example"] == good
    log = (stack.logs / "opa.log").read_text()
    assert "bundle missing .signatures.json file" in log, log[-2000:]
    assert decision_of(execute(stack, "triage-bot", "hosts:search", {}))[0] == "PERMIT"


def test_a_bundle_claiming_another_orgs_roots_is_refused_and_both_orgs_keep_deciding(
    stack: Stack, home: Path, tmp_path: Path
) -> None:
    """Signed with ARX's own key (as if ARX were fooled) and served as
    northwind's, a bundle that claims orgs/example overlaps the example org's
    bundle: OPA refuses to activate it, and neither org's decisions change."""
    revisions = sidecar_revisions(stack)
    assert "northwind" in revisions  # from the test above
    hostile = variant(tmp_path, "hostile")  # roots orgs/example, data at orgs/example
    out = tmp_path / "hostile.tar.gz"
    opa = Path(stack.api_env["ARX_OPA_BINARY"])
    subprocess.run(
        [
            opa, "build", "-b", hostile, "--ignore", "*_test.rego", "-r", "northwind-000000000000",
            "--signing-key", home / "bundle-signing.pem", "--signing-alg", "ES256", "-o", out,
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    _superuser_swap_active_bundle(stack, "northwind", out.read_bytes())
    time.sleep(2.0)
    assert sidecar_revisions(stack) == revisions
    refusals = [
        json.loads(line)["msg"]
        for line in (stack.logs / "opa.log").read_text().splitlines()
        if '"name":"northwind"' in line
    ]
    assert any("overlapping roots" in msg for msg in refusals), refusals
    assert decision_of(execute(stack, "triage-bot", "hosts:search", {}))[0] == "PERMIT"


# --- the sidecar and the bundle service ----------------------------------------------------


def test_the_sidecar_refuses_writes_and_reads_of_other_paths(stack: Stack) -> None:
    auth = {"authorization": f"Bearer {stack.opa_token}"}
    for method, path, body in [
        ("PUT", "/v1/data/orgs/example", {"defaults": {"destructive": "PERMIT"}}),
        ("PUT", "/v1/policies/evil", None),
        ("PATCH", "/v1/data", [{"op": "add", "path": "/x", "value": 1}]),
        ("GET", "/v1/data/orgs", None),
        ("GET", "/v1/policies", None),
        ("GET", "/v1/config", None),
    ]:
        content = b"package evil\nallow := true\n" if path.startswith("/v1/policies") else None
        resp = httpx.request(
            method,
            f"{stack.opa_url}{path}",
            headers=auth,
            json=body if content is None else None,
            content=content,
        )
        assert resp.status_code in (401, 403), (method, path, resp.status_code)
    assert httpx.post(f"{stack.opa_url}/v1/data/arx/decision", json={"input": {}}).status_code in (
        401,
        403,
    )


def _arx(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    """The ``arx`` console script, as the example org's owner."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "arx"), *args],
        env={**os.environ, "ARX_URL": stack.base_url, "ARX_TOKEN": stack.owner_token},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_the_policy_engineers_cli_from_test_to_rollback(stack: Stack, tmp_path: Path) -> None:
    """docs/policy-workflow.md's commands: test, eval (with the doc's own
    input and answer), push, activate, status and rollback."""
    tested = _arx(stack, "policy", "test", str(EXAMPLE), "--threshold", "50")
    assert tested.returncode == 0, tested.stderr
    report = json.loads(tested.stdout)
    assert report["org"] == "example"
    assert report["tests_passed"] > 0
    assert report["coverage_percent"] >= 50
    failing = _arx(stack, "policy", "test", str(variant(tmp_path, "failing", deny_searches)))
    assert failing.returncode == 1
    assert "opa test failed" in failing.stderr
    assert "[bundle_rejected]" in failing.stderr

    # The doc's eval input, and the answer the doc gives for bundles/example.
    doc = (REPO / "docs" / "policy-workflow.md").read_text()
    section = doc.split("## 3. One decision: `arx policy eval`", 1)[1]
    call = section.split("```json\n", 1)[1].split("```", 1)[0]
    (tmp_path / "call.json").write_text(call)
    evaluated = _arx(
        stack, "policy", "eval", "--input", str(tmp_path / "call.json"), "--bundle", str(EXAMPLE)
    )
    assert evaluated.returncode == 0, evaluated.stderr
    decision = json.loads(evaluated.stdout)
    assert (decision["verdict"], decision["policy_id"], decision["risk_score"]) == (
        "ESCALATE",
        "EX-010",
        69,
    )
    assert "gives\n`ESCALATE` `EX-010`, risk 69" in section

    original = json.loads(_arx(stack, "policy", "status").stdout)["active"]["revision"]
    paused = variant(tmp_path, "paused", deny_searches, tests=False)
    pushed = _arx(stack, "policy", "push", str(paused))
    assert pushed.returncode == 0, pushed.stderr
    revision = json.loads(pushed.stdout)["bundle"]["revision"]
    activated = _arx(stack, "policy", "activate", revision)
    assert activated.returncode == 0, activated.stderr
    wait_for(stack, "example", revision)
    assert decision_of(execute(stack, "triage-bot", "hosts:search", {}))[:2] == ("DENY", "EX-900")
    status = json.loads(_arx(stack, "policy", "status").stdout)
    assert status["active"]["revision"] == revision
    rolled = _arx(stack, "policy", "rollback")
    assert rolled.returncode == 0, rolled.stderr
    assert json.loads(rolled.stdout)["revision"] == original
    wait_for(stack, "example", original)
    assert decision_of(execute(stack, "triage-bot", "hosts:search", {}))[0] == "PERMIT"


def test_the_example_bundles_blast_radius_rules_decide_real_calls(stack: Stack) -> None:
    """Through execute (ARX counts the call's targets), not only in Rego: a
    critical host among many needs two reviewers (EX-013), and six hosts in
    one call escalate by EX-014 with the blast radius in the risk. (Two
    calls only: a third containment within five minutes is EX-012's.)"""
    hosts = [f"{i:032x}" for i in range(1, 7)]
    critical = "9e8f7a6b5c4d4e3f9a1b2c3d4e5f6a7b"
    many = execute(stack, "responder-bot", "hosts:contain", {"ids": [*hosts, critical]}).json()
    assert (many["verdict"], many["policy_id"], many["approvals_required"]) == (
        "ESCALATE",
        "EX-013",
        2,
    )
    six = execute(stack, "responder-bot", "hosts:contain", {"ids": hosts}).json()
    assert (six["verdict"], six["policy_id"]) == ("ESCALATE", "EX-014")
    assert six["approvals_required"] == 1
    assert "blast radius: 6 targets in one call" in six["reasons"]
    assert six["risk_score"] >= 60 + 15  # the base risk, +3 per host beyond the first


def test_the_sidecar_logs_no_decisions(stack: Stack) -> None:
    """Decision logs would carry every call's input (params, agent) to OPA's
    stdout: ARX records decisions itself, so the configuration the sidecar
    boots from and the one ARX serves it enable none."""
    boot = yaml.safe_load((REPO / "opa" / "config.yaml").read_text())
    assert "decision_logs" not in boot
    resp = httpx.get(
        f"{stack.base_url}/v1/opa/discovery",
        headers={"authorization": f"Bearer {stack.opa_token}"},
    )
    assert resp.status_code == 200
    with tarfile.open(fileobj=io.BytesIO(resp.content), mode="r:gz") as tar:
        documents = [
            json.load(tar.extractfile(m))  # type: ignore[arg-type]
            for m in tar
            if m.name.endswith("data.json")
        ]
    assert documents, "the discovery bundle holds no configuration"
    assert "decision_logs" not in json.dumps(documents)
    assert decision_of(execute(stack, "triage-bot", "hosts:search", {}))[0] == "PERMIT"
    assert '"msg":"Decision Log"' not in (stack.logs / "opa.log").read_text()


def test_the_bundle_service_answers_only_the_sidecar_and_long_polls(
    stack: Stack, api: httpx.Client, tmp_path: Path
) -> None:
    base = f"{stack.base_url}/v1/opa"
    assert httpx.get(f"{base}/discovery").status_code == 401
    wrong = {"authorization": "Bearer not-the-token-not-the-token-not-the-token"}
    assert httpx.get(f"{base}/discovery", headers=wrong).status_code == 401
    auth = {"authorization": f"Bearer {stack.opa_token}"}
    first = httpx.get(f"{base}/bundles/orgs/example", headers=auth)
    assert first.status_code == 200
    assert first.headers["content-type"].startswith("application/vnd.openpolicyagent.bundles")
    etag = first.headers["etag"]
    assert httpx.get(f"{base}/bundles/orgs/nobody", headers=auth).status_code == 404
    # Unchanged: 304 at once without wait, after the wait with one.
    held = {**auth, "if-none-match": etag}
    assert httpx.get(f"{base}/bundles/orgs/example", headers=held).status_code == 304
    for resource in ("discovery", "bundles/arx-base", "bundles/orgs/example"):
        current = httpx.get(f"{base}/{resource}", headers=auth).headers["etag"]
        started = time.monotonic()
        resp = httpx.get(
            f"{base}/{resource}",
            headers={**auth, "if-none-match": current, "prefer": "modes=snapshot,delta;wait=1"},
            timeout=10,
        )
        assert resp.status_code == 304, resource
        assert time.monotonic() - started >= 0.9, resource
    # A change while held answers at once with the new bundle.
    revision = push_ok(
        api, stack.org_id, variant(tmp_path, "held", pause_triage_searches, tests=False)
    )
    with httpx.Client(timeout=30) as client:
        started = time.monotonic()
        import threading  # noqa: PLC0415

        threading.Timer(0.5, lambda: activate(api, stack.org_id, revision)).start()
        resp = client.get(
            f"{base}/bundles/orgs/example",
            headers={**held, "prefer": "modes=snapshot,delta;wait=20"},
        )
        waited = time.monotonic() - started
    assert resp.status_code == 200
    assert resp.headers["etag"] != etag
    assert resp.headers["x-arx-bundle-revision"] == revision
    assert 0.4 < waited < 5.0
    api.post(f"/v1/admin/orgs/{stack.org_id}/policy/rollback", json={})


def test_an_idle_sidecar_holds_its_requests_instead_of_polling_in_a_loop(stack: Stack) -> None:
    """Long polling: with nothing changing, each of the sidecar's bundles
    (discovery, the base library, each org's) is asked for about once per
    held request, not over and over (a 304 answered at once would make OPA
    ask again at once, burning both processes' CPU)."""

    def opa_requests() -> int:
        log = (stack.logs / "api.log").read_text()
        return sum(1 for line in log.splitlines() if '"path":"/v1/opa/' in line)

    before = opa_requests()
    time.sleep(3.0)
    asked = opa_requests() - before
    # Discovery, arx-base, example, northwind: each held up to 20 s.
    assert asked <= 8, f"{asked} bundle requests in 3 s of idling"
