"""Pushing, activating and rolling back bundles through the admin API, in
process, with ARX's own real opa and the real PostgreSQL: who may, what is
recorded, what is signed, what cannot be rewritten, and what another org sees.
(Served to a real sidecar: tests/e2e/test_policy_lifecycle.py.)"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import msgspec
import psycopg
import pytest

from arx.config import Settings
from arx.errors import BundleRejectedError, NotFoundError
from arx.policy.lifecycle import archive, service, signing
from arx.runtime import Runtime
from tests.fixtures.arx import Example, make_org
from tests.fixtures.database import Database

pytestmark = pytest.mark.anyio

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "bundles" / "example"


@pytest.fixture
def signing_key(tmp_path: Path) -> Path:
    key = signing.ensure_key(tmp_path / "keys" / "bundle-signing.pem")
    signing.write_public_key(key, signing.public_path(key))
    return key


@pytest.fixture
def settings(settings: Settings, opa_path: Path, signing_key: Path) -> Settings:
    """The shared settings, with ARX's own opa and a signing key: the bundle
    service is on."""
    return msgspec.structs.replace(
        settings,
        opa_binary=str(opa_path),
        bundle_signing_key_file=str(signing_key),
        max_bundle_bytes=64 * 1024,
    )


def _org(example: Example) -> str:
    return f"/v1/admin/orgs/{example.seeded.org_id}"


async def _push(
    client: httpx.AsyncClient, org: str, headers: dict[str, str], data: bytes
) -> httpx.Response:
    return await client.post(
        f"{org}/policy/bundles",
        content=data,
        headers={**headers, "content-type": "application/gzip"},
        params={"description": "from the test"},
    )


def _variant(tmp_path: Path, name: str, rule_id: str) -> bytes:
    out = tmp_path / name
    shutil.copytree(EXAMPLE, out)
    data = out / "orgs" / "example" / "data.json"
    policy = json.loads(data.read_text())
    policy["rules"].append(
        {
            "id": rule_id,
            "priority": 999,
            "verdict": "DENY",
            "match": {"agents": [f"nobody-{rule_id}"]},
        }
    )
    data.write_text(json.dumps(policy))
    return archive.pack(out)


@pytest.fixture
async def token(client: httpx.AsyncClient, example: Example) -> Any:
    async def make(*roles: str) -> dict[str, str]:
        resp = await client.post(
            f"{_org(example)}/admin-tokens",
            json={"name": "-".join(roles), "roles": list(roles)},
            headers=example.owner,
        )
        assert resp.status_code == 201, resp.text
        return {"authorization": f"Bearer {resp.json()['token']}"}

    return make


async def test_push_activate_rollback_are_recorded_and_signed(
    client: httpx.AsyncClient,
    example: Example,
    token: Any,
    tmp_path: Path,
    *,
    opa_path: Path,
    signing_key: Path,
) -> None:
    org = _org(example)
    author = await token("policy_author")
    first, second = _variant(tmp_path, "a", "EX-801"), _variant(tmp_path, "b", "EX-802")
    pushed = await _push(client, org, author, first)
    assert pushed.status_code == 201, pushed.text
    rev1 = pushed.json()["bundle"]["revision"]
    again = await _push(client, org, author, first)
    assert again.status_code == 200
    assert again.json() == {**pushed.json(), "created": False}
    rev2 = (await _push(client, org, author, second)).json()["bundle"]["revision"]
    assert rev1 != rev2

    status = (await client.get(f"{org}/policy", headers=author)).json()
    assert status == {"org_slug": "example", "active": None, "history": []}
    nothing = await client.post(f"{org}/policy/rollback", json={}, headers=author)
    assert nothing.status_code == 409

    for revision in (rev1, rev2):
        resp = await client.post(
            f"{org}/policy/activate", json={"revision": revision}, headers=author
        )
        assert resp.status_code == 200, resp.text
    again = await client.post(f"{org}/policy/activate", json={"revision": rev2}, headers=author)
    assert again.status_code == 409
    back = await client.post(f"{org}/policy/rollback", json={}, headers=author)
    assert back.status_code == 200, back.text
    assert (back.json()["revision"], back.json()["action"]) == (rev1, "rollback")

    status = (await client.get(f"{org}/policy", headers=author)).json()
    assert [(h["revision"], h["action"]) for h in status["history"]] == [
        (rev1, "rollback"),
        (rev2, "activate"),
        (rev1, "activate"),
    ]
    listed = (await client.get(f"{org}/policy/bundles", headers=author)).json()
    assert {b["revision"]: b["active"] for b in listed} == {rev1: True, rev2: False}
    assert all(b["description"] == "from the test" for b in listed)

    audit = (await client.get(f"{org}/audit", params={"limit": 1000}, headers=example.owner)).json()
    policy_events = [
        (e["action"], e["details"]["revision"])
        for e in audit["events"][::-1]
        if e.get("action", "").startswith("policy.")
    ]
    assert policy_events == [
        ("policy.bundle_pushed", rev1),
        ("policy.bundle_pushed", rev2),
        ("policy.activated", rev1),
        ("policy.activated", rev2),
        ("policy.rolled_back", rev1),
    ]
    # What the sidecars get verifies with the public key, and only with it.
    served = await client.get(
        "/v1/opa/bundles/orgs/example",
        headers={"authorization": f"Bearer {client_token(client)}"},
    )
    assert served.status_code == 200
    bundle = tmp_path / "served.tar.gz"
    bundle.write_bytes(served.content)
    verify = [opa_path, "build", "-b", bundle, "-o", tmp_path / "out.tar.gz"]
    verify += ["--signing-alg", "ES256", "--verification-key"]
    ok = subprocess.run(  # noqa: ASYNC221 (a test, waiting on purpose)
        [*verify, signing.public_path(signing_key)], capture_output=True, check=False
    )
    assert ok.returncode == 0, ok.stderr
    other = signing.ensure_key(tmp_path / "other.pem")
    bad = subprocess.run(  # noqa: ASYNC221
        [*verify, signing.write_public_key(other, tmp_path / "other.pub.pem")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode != 0
    assert "verif" in (bad.stdout + bad.stderr).lower()


def client_token(client: httpx.AsyncClient) -> str:
    app = client._transport.app  # type: ignore[attr-defined]
    token: str = app.state.runtime.settings.opa_token
    return token


async def test_only_policy_authors_and_owners_ship_policy(
    client: httpx.AsyncClient, example: Example, token: Any, tmp_path: Path
) -> None:
    org = _org(example)
    data = _variant(tmp_path, "a", "EX-801")
    for roles in (("reviewer",), ("auditor",), ("admin",)):
        headers = await token(*roles)
        refused = await _push(client, org, headers, data)
        assert refused.status_code == 403, (roles, refused.text)
        assert refused.json()["code"] == "role_required"
        act = await client.post(
            f"{org}/policy/activate", json={"revision": "example-0123456789ab"}, headers=headers
        )
        assert act.status_code == 403
        # Reading is fine.
        assert (await client.get(f"{org}/policy", headers=headers)).status_code == 200
    agent = await _push(client, org, example.auth("triage-bot"), data)
    assert agent.status_code == 401
    assert (await client.get(f"{org}/policy/bundles", headers=example.owner)).json() == []


async def test_bad_uploads_are_clear_4xx_and_store_nothing(
    client: httpx.AsyncClient, example: Example
) -> None:
    org = _org(example)
    owner = example.owner
    as_json = await client.post(f"{org}/policy/bundles", json={"x": 1}, headers=owner)
    assert as_json.status_code == 415
    too_big = await _push(client, org, owner, b"\x1f\x8b" + b"0" * (70 * 1024))
    assert too_big.status_code == 413
    assert too_big.json()["code"] == "payload_too_large"
    garbage = await _push(client, org, owner, b"garbage")
    assert garbage.status_code == 422
    assert garbage.json()["code"] == "bundle_rejected"
    for body in ({"revision": "../../x"}, {"revision": 5}, {}):
        resp = await client.post(f"{org}/policy/activate", json=body, headers=owner)
        assert resp.status_code == 422, resp.text
    unknown = await client.post(
        f"{org}/policy/activate", json={"revision": "example-0123456789ab"}, headers=owner
    )
    assert unknown.status_code == 404
    assert (await client.get(f"{org}/policy/bundles", headers=owner)).json() == []


async def test_another_org_sees_nothing_and_cannot_use_a_revision(
    client: httpx.AsyncClient, example: Example, runtime: Runtime, tmp_path: Path
) -> None:
    org = _org(example)
    pushed = await _push(client, org, example.owner, archive.pack(EXAMPLE))
    revision = pushed.json()["bundle"]["revision"]
    other = await make_org(runtime, "globex")
    founded_token = await client.post(
        f"/v1/admin/orgs/{other.org_id}/admin-tokens",
        json={"name": "t", "roles": ["owner"]},
        headers=example.owner,
    )
    # The example org's owner cannot act on globex either.
    assert founded_token.status_code == 404
    # Globex's owner (through the services): the example bundle's roots are
    # not globex's, and the example org's revision does not exist in globex.
    with pytest.raises(BundleRejectedError, match=r'exactly \["orgs/globex"\]'):
        await service.push(runtime.control_pool, runtime.toolchain, other, archive.pack(EXAMPLE))
    with pytest.raises(NotFoundError, match="no bundle"):
        await service.activate(runtime.control_pool, runtime.toolchain, other, revision)
    assert await service.bundles(runtime.control_pool, other.org_id) == []
    assert (await service.status(runtime.control_pool, other.org_id)).history == []


async def test_bundles_and_activations_cannot_be_rewritten(
    client: httpx.AsyncClient, example: Example, test_db: Database
) -> None:
    org = _org(example)
    revision = (await _push(client, org, example.owner, archive.pack(EXAMPLE))).json()["bundle"][
        "revision"
    ]
    assert (
        await client.post(
            f"{org}/policy/activate", json={"revision": revision}, headers=example.owner
        )
    ).status_code == 200
    for url in (test_db.control_url, test_db.admin_url):
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "SELECT set_config('arx.org_id', %s, false)", (str(example.seeded.org_id),)
            )
            for statement in (
                "UPDATE arx.policy_bundles SET description = 'x'",
                "DELETE FROM arx.policy_bundles",
                "UPDATE arx.policy_activations SET revision = revision",
                "DELETE FROM arx.policy_activations",
                "TRUNCATE arx.policy_activations CASCADE",
            ):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(statement)
    # The agent path's role cannot even read them.
    with (
        psycopg.connect(test_db.app_url, autocommit=True) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute("SELECT count(*) FROM arx.policy_bundles")


async def test_the_bundle_service_answers_only_its_sidecar(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    assert runtime.distribution is not None  # this module's settings turn it on
    token = runtime.settings.opa_token
    ok = await client.get("/v1/opa/discovery", headers={"authorization": f"Bearer {token}"})
    assert ok.status_code == 200
    assert ok.headers["content-type"].startswith("application/vnd.openpolicyagent.bundles")
    assert (await client.get("/v1/opa/discovery")).status_code == 401
    assert (
        await client.get("/v1/opa/bundles/arx-base", headers={"authorization": "Bearer x"})
    ).status_code == 401


async def test_without_a_key_the_bundle_service_answers_503(
    settings: Settings, falcon: Any
) -> None:
    from arx.api.app import create_app  # noqa: PLC0415
    from arx.runtime import open_runtime  # noqa: PLC0415

    plain = msgspec.structs.replace(settings, bundle_signing_key_file="")
    async with open_runtime(plain) as rt:
        assert rt.distribution is None
        app = create_app(plain, runtime=rt)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://arx.test"
        ) as c:
            resp = await c.get(
                "/v1/opa/discovery", headers={"authorization": f"Bearer {plain.opa_token}"}
            )
    assert resp.status_code == 503
    assert "ARX_BUNDLE_SIGNING_KEY_FILE" in resp.json()["detail"]


@pytest.mark.parametrize(
    ("where", "rego", "says"),
    [
        (
            "orgs/example/leak.rego",
            "package orgs.example\n\nt := opa.runtime().env\n",
            "may not hold Rego policy: orgs/example/leak.rego",
        ),
        (
            "orgs/example/read_test.rego",
            "package orgs_test.read\n\ntest_env if opa.runtime().env\n",
            "undefined function opa.runtime",
        ),
        (
            "orgs/example/probe_test.rego",
            "package orgs_test.probe\n\n"
            'test_p if http.send({"method": "GET", "url": "http://169.254.169.254/"})\n',
            "undefined function http.send",
        ),
        (
            "orgs/example/clock_test.rego",
            "package orgs_test.clock\n\ntest_t if time.now_ns() > 0\n",
            "undefined function time.now_ns",
        ),
    ],
)
async def test_org_policy_code_and_tests_that_reach_out_are_refused(
    client: httpx.AsyncClient, example: Example, tmp_path: Path, *, where: str, rego: str, says: str
) -> None:
    """An org bundle is data (the sidecar is every org's: org code there could
    read other orgs' documents); its tests never reach the network, the
    process's environment or the clock (they do not even compile)."""
    source = tmp_path / "hostile"
    shutil.copytree(EXAMPLE, source)
    (source / where).write_text(rego)
    resp = await _push(client, _org(example), example.owner, archive.pack(source))
    assert resp.status_code == 422, resp.text
    assert says in resp.json()["detail"]
    assert (await client.get(f"{_org(example)}/policy/bundles", headers=example.owner)).json() == []
