"""The dev stack starts real services and fails in their own words.

Covers ``arx.devstack``: the PostgreSQL cluster (admin URL, stop/start, port
reuse after a restart), content-addressed bundle revisions, and the OPA
sidecar serving a decision from a throw-away bundle and releasing its port.
"""

from __future__ import annotations

import json
import os
import tarfile
from collections.abc import Callable
from pathlib import Path

import httpx
import psycopg
import pytest

from arx.devstack.opa import OpaSidecar, build_bundle
from arx.devstack.ports import is_port_open
from arx.devstack.postgres import LocalPostgres, psql_url_with
from arx.devstack.process import ReadinessError

POLICY = """package devstacktest

default allow := false

allow if input.user == "alice"
"""

POLICY_TEST = """package devstacktest_test

import data.devstacktest

test_alice_allowed if devstacktest.allow with input as {"user": "alice"}
"""


@pytest.fixture
def bundle_source(tmp_path: Path) -> Path:
    source = tmp_path / "src"
    (source / "devstacktest").mkdir(parents=True)
    (source / ".manifest").write_text(json.dumps({"roots": ["devstacktest"]}))
    (source / "devstacktest" / "policy.rego").write_text(POLICY)
    (source / "devstacktest" / "policy_test.rego").write_text(POLICY_TEST)
    return source


def _connect_fails(url: str) -> bool:
    try:
        psycopg.connect(url, connect_timeout=2).close()
    except psycopg.OperationalError:
        return True
    return False


def test_admin_url_connects_as_superuser(pg_admin_url: str) -> None:
    with psycopg.connect(pg_admin_url) as conn:
        row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
    assert row == (True,)


def test_wrong_password_is_refused(pg_admin_url: str) -> None:
    assert _connect_fails(psql_url_with(pg_admin_url, password="not-the-password"))


def test_psql_url_with_derives_per_test_database_url(pg_admin_url: str) -> None:
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS devstack_probe")
        conn.execute("CREATE DATABASE devstack_probe")
    try:
        with psycopg.connect(psql_url_with(pg_admin_url, dbname="devstack_probe")) as conn:
            row = conn.execute("SELECT current_database()").fetchone()
        assert row == ("devstack_probe",)
    finally:
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute("DROP DATABASE devstack_probe")


def test_psql_url_with_quotes_new_parts_and_keeps_the_rest() -> None:
    url = "postgresql://arx_admin:p%40ss@127.0.0.1:5432/postgres?sslmode=disable"
    assert (
        psql_url_with(url, user="arx_app", password="a:b@c/d", dbname="arx test")
        == "postgresql://arx_app:a%3Ab%40c%2Fd@127.0.0.1:5432/arx%20test?sslmode=disable"
    )
    assert psql_url_with(url, dbname="t1") == (
        "postgresql://arx_admin:p%40ss@127.0.0.1:5432/t1?sslmode=disable"
    )


@pytest.mark.slow
def test_stop_refuses_connections_and_start_restores_them(
    new_local_postgres: Callable[[], LocalPostgres],
) -> None:
    if os.environ.get("ARX_DATABASE_URL"):
        pytest.skip("ARX_DATABASE_URL is set: PostgreSQL is external, not the dev stack's")
    cluster = new_local_postgres()
    cluster.start()
    url = cluster.admin_url
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert (cluster.data_dir.parent / "arx_admin.password").stat().st_mode & 0o777 == 0o600

    cluster.stop()
    assert not cluster.is_running()
    assert _connect_fails(url)

    # A new handle on the same directory, as a restarted demo would make, finds the
    # cluster and its recorded port again.
    again = LocalPostgres(cluster.data_dir).ensure()
    assert again.admin_url == url
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_bundle_revision_is_content_addressed(
    opa_path: Path, bundle_source: Path, tmp_path: Path
) -> None:
    first = build_bundle(opa_path, bundle_source, tmp_path / "a.tar.gz", name="devstacktest")
    second = build_bundle(opa_path, bundle_source, tmp_path / "b.tar.gz", name="devstacktest")
    assert first == second
    assert first.startswith("devstacktest-")
    assert len(first.removeprefix("devstacktest-")) == 12

    with tarfile.open(tmp_path / "a.tar.gz") as bundle:
        names = {m.name.lstrip("/") for m in bundle.getmembers()}
        manifest = bundle.extractfile("/.manifest")
        assert manifest is not None
        assert json.load(manifest)["revision"] == first
    assert "devstacktest/policy.rego" in names
    assert not any(name.endswith("_test.rego") for name in names)

    (bundle_source / "devstacktest" / "policy_test.rego").write_text(POLICY_TEST + "\n# more\n")
    unchanged = build_bundle(opa_path, bundle_source, tmp_path / "c.tar.gz", name="devstacktest")
    assert unchanged == first

    (bundle_source / "devstacktest" / "policy.rego").write_text(POLICY.replace("alice", "carol"))
    changed = build_bundle(opa_path, bundle_source, tmp_path / "d.tar.gz", name="devstacktest")
    assert changed != first


def _decision_bundle(tmp_path: Path) -> Path:
    """A bundle that answers data.arx.decision (the one query the sidecar allows)."""
    source = tmp_path / "arx-src"
    (source / "arx").mkdir(parents=True)
    (source / ".manifest").write_text(json.dumps({"roots": ["arx"]}))
    (source / "arx" / "decision.rego").write_text(
        'package arx\n\ndecision := {"verdict": "PERMIT", "user": input.user}\n'
    )
    return source


def test_sidecar_serves_its_token_holder_a_decision_and_releases_its_port(
    opa_path: Path, tmp_path: Path
) -> None:
    bundle = tmp_path / "bundle.tar.gz"
    revision = build_bundle(opa_path, _decision_bundle(tmp_path), bundle, name="arxtest")
    sidecar = OpaSidecar(opa_path, [bundle], log_path=tmp_path / "opa.log")
    with sidecar:
        with httpx.Client(base_url=sidecar.url, trust_env=False, timeout=5) as client:
            answer = client.post(
                "/v1/data/arx/decision",
                params={"provenance": "true"},
                json={"input": {"user": "alice"}},
                headers=sidecar.headers,
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["result"] == {"verdict": "PERMIT", "user": "alice"}
            revisions = [b["revision"] for b in answer.json()["provenance"]["bundles"].values()]
            assert revisions == [revision]
            assert client.get("/health", headers=sidecar.headers).status_code == 200
        assert is_port_open(sidecar.port)
    assert not sidecar.is_running()
    assert not is_port_open(sidecar.port)


def test_the_sidecar_refuses_every_write_every_other_read_and_strangers(
    opa_path: Path, tmp_path: Path
) -> None:
    bundle = tmp_path / "bundle.tar.gz"
    build_bundle(opa_path, _decision_bundle(tmp_path), bundle, name="arxtest")
    with OpaSidecar(opa_path, [bundle], log_path=tmp_path / "opa.log") as sidecar:
        token = sidecar.headers
        permit_all = 'package orgs.acme\n\ndecision := {"verdict": "PERMIT"}\n'
        with httpx.Client(base_url=sidecar.url, trust_env=False, timeout=5) as client:
            refused = {
                # Writes that would make an org PERMIT everything, even with the token.
                "PUT data": client.put("/v1/data/orgs/acme", json={"rules": []}, headers=token),
                "PATCH data": client.patch("/v1/data", json=[], headers=token),
                "DELETE data": client.delete("/v1/data/arx", headers=token),
                "PUT policy": client.put("/v1/policies/evil", content=permit_all, headers=token),
                "DELETE policy": client.delete("/v1/policies/evil", headers=token),
                # Reads of anything but the decision: rules, policies, the authz data.
                "GET data": client.get("/v1/data/arx", headers=token),
                "GET root": client.post("/v1/data", json={}, headers=token),
                "GET system": client.get("/v1/data/system/arx", headers=token),
                "GET policies": client.get("/v1/policies", headers=token),
                "query": client.post("/v1/query", json={"query": "data"}, headers=token),
                # Without the token, or with another one, not even the decision.
                "no token": client.post("/v1/data/arx/decision", json={"input": {}}),
                "wrong token": client.post(
                    "/v1/data/arx/decision",
                    json={"input": {}},
                    headers={"Authorization": "Bearer not-the-token"},
                ),
                "health, no token": client.get("/health"),
            }
            assert {name: r.status_code for name, r in refused.items()} == dict.fromkeys(
                refused, 401
            )
            still = client.post(
                "/v1/data/arx/decision", json={"input": {"user": "bob"}}, headers=token
            )
            assert still.json()["result"] == {"verdict": "PERMIT", "user": "bob"}
            assert client.get("/v1/policies/evil", headers=token).status_code == 401


def test_sidecar_that_cannot_load_its_bundle_reports_the_log(
    opa_path: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(b"not a tarball")
    sidecar = OpaSidecar(opa_path, [broken], log_path=tmp_path / "opa.log")
    with pytest.raises(ReadinessError, match="exited with status") as info:
        sidecar.start()
    assert "broken.tar.gz" in str(info.value)
    assert not sidecar.is_running()
