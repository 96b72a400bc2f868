"""Issue 10, point 1: a credential goes only where it was stored for, and
only to an allowed host; its versions are append-only.

Against the real PostgreSQL (the superuser tampers, as a DBA or a restored
backup could) and the in-process fake Falcon, whose request log shows that
nothing was sent.
"""

from __future__ import annotations

from typing import Any

import httpx
import psycopg
import pytest

from arx.config import Settings
from arx.sandbox.falcon import FalconState
from tests.fixtures.arx import (
    FALCON_CLIENT_ID,
    FALCON_CLIENT_SECRET,
    FALCON_URL,
    Example,
    deployment,
)
from tests.fixtures.database import Database

pytestmark = pytest.mark.anyio

EXECUTE = "/v1/sdk/execute"
SEARCH = {"connector": "crowdstrike", "operation": "hosts:search", "params": {}}
SECRET = {"client_id": FALCON_CLIENT_ID, "client_secret": FALCON_CLIENT_SECRET}


def _superuser_set_base_url(test_db: Database, org_id: Any, url: str) -> None:
    """What a DBA or a restored backup can do: the trigger off, the URL changed."""
    with psycopg.connect(test_db.admin_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE arx.credentials DISABLE TRIGGER credentials_append_only")
        try:
            conn.execute(
                "UPDATE arx.credentials SET base_url = %s WHERE org_id = %s", (url, org_id)
            )
        finally:
            conn.execute(
                "ALTER TABLE arx.credentials ENABLE ALWAYS TRIGGER credentials_append_only"
            )


def _trail(test_db: Database, org_id: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(test_db.admin_url) as conn:
        return conn.execute(
            "SELECT kind, verdict, outcome, error->>'code', action, details FROM arx.audit_events"
            " WHERE org_id = %s ORDER BY seq",
            (org_id,),
        ).fetchall()


@pytest.mark.parametrize(
    "url",
    [
        # Another of Falcon's own hosts: allowed, but not what was sealed.
        "https://api.us-2.crowdstrike.com",
        # Loopback (the org may use the sandbox), another port.
        "http://localhost:9001",
        # A host of the attacker's.
        "https://collector.attacker.example",
    ],
)
async def test_a_base_url_changed_in_the_database_fails_closed_and_nothing_is_sent(
    client: httpx.AsyncClient,
    example: Example,
    falcon: FalconState,
    test_db: Database,
    url: str,
) -> None:
    org = example.seeded.org_id
    _superuser_set_base_url(test_db, org, url)

    resp = await client.post(EXECUTE, json=SEARCH, headers=example.auth("triage-bot"))

    assert falcon.requests == [], "the secret must not be sent anywhere"
    problem = resp.json()
    if url.startswith("https://collector"):
        # Not an allowed host: refused before the vault is even opened.
        assert (resp.status_code, problem["code"]) == (409, "destination_refused")
        assert "collector.attacker.example is not an allowed host" in problem["detail"]
    else:
        # An allowed host, but not the one sealed with the secret.
        assert (resp.status_code, problem["code"]) == (500, "vault_error")
    assert FALCON_CLIENT_SECRET not in resp.text
    # Audited: the PERMIT, then a result recording the refusal.
    rows = [r for r in _trail(test_db, org) if r[0] != "admin"]
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        ("decision", "PERMIT", None, None),
        ("result", None, "error", problem["code"]),
    ]


async def test_the_hosts_a_credential_may_go_to(
    client: httpx.AsyncClient, example: Example, falcon: FalconState, test_db: Database
) -> None:
    org = example.seeded.org_id
    url = f"/v1/admin/orgs/{org}/credentials/crowdstrike"
    hosts = f"/v1/admin/orgs/{org}/connectors/crowdstrike/hosts"

    async def store(base_url: str | None) -> httpx.Response:
        return await client.put(
            url, json={"secret": SECRET, "base_url": base_url}, headers=example.owner
        )

    # The connector's own hosts, and the vendor's default.
    listed = (await client.get(hosts, headers=example.owner)).json()
    assert "api.eu-1.crowdstrike.com" in listed["defaults"]
    assert listed["added"] == []
    for good, stored in (
        ("https://api.eu-1.crowdstrike.com", "https://api.eu-1.crowdstrike.com"),
        ("HTTPS://API.US-2.crowdstrike.com.:443/", "https://api.us-2.crowdstrike.com:443"),
        (None, "https://api.crowdstrike.com"),
    ):
        resp = await store(good)
        assert resp.status_code == 201, good
        assert resp.json()["base_url"] == stored
    refused = {
        "http://api.crowdstrike.com": "must use https",
        "https://user:pw@api.crowdstrike.com": "user or password",
        "https://api.crowdstrike.com/?x=1": "query",
        "https://api.crowdstrike.com?": "query",
        "https://api.crowdstrike.com#f": "fragment",
        "https://falcon.internal.example": "not an allowed host",
        "https://api.crowdstrike.com.attacker.example": "not an allowed host",
        "https://169.254.169.254": "an address is not an allowed host",
        "https://10.0.0.5": "an address is not an allowed host",
        "https://[fd00:ec2::254]": "an address is not an allowed host",
        "https://claß.io": "printable ASCII",
    }
    for bad, why in refused.items():
        resp = await store(bad)
        assert resp.status_code == 422, (bad, resp.text)
        assert resp.json()["field"] == "base_url"
        assert why in resp.json()["detail"], (bad, resp.json()["detail"])

    # An org admin adds a host (audited); credentials may go there from then on.
    added = await client.post(hosts, json={"host": "*.Falcon.Example.com"}, headers=example.owner)
    assert added.status_code == 200, added.text
    assert [h["host"] for h in added.json()["added"]] == ["*.falcon.example.com"]
    assert (await store("https://eu.falcon.example.com")).status_code == 201
    # Exactly one label in front of the domain.
    assert (await store("https://a.b.falcon.example.com")).status_code == 422
    for bad_host in ("10.0.0.1", "localhost", "*.com", "a..b.com", "*.*.example.com"):
        resp = await client.post(hosts, json={"host": bad_host}, headers=example.owner)
        assert resp.status_code == 422, (bad_host, resp.text)

    # The stored URL is held to the rules at every call: removing the host
    # refuses the credential stored for it, before anything is sent.
    removed = await client.delete(f"{hosts}/*.falcon.example.com", headers=example.owner)
    assert removed.status_code == 200, removed.text
    assert removed.json()["added"] == []
    resp = await client.post(EXECUTE, json=SEARCH, headers=example.auth("triage-bot"))
    assert (resp.status_code, resp.json()["code"]) == (409, "destination_refused")
    assert falcon.requests == []
    assert (
        await client.delete(f"{hosts}/*.falcon.example.com", headers=example.owner)
    ).status_code == 404

    actions = [(r[4], r[5]) for r in _trail(test_db, org) if r[0] == "admin"]
    assert (
        "connector.host_added",
        {"connector": "crowdstrike", "host": "*.falcon.example.com"},
    ) in actions
    assert (
        "connector.host_removed",
        {"connector": "crowdstrike", "host": "*.falcon.example.com"},
    ) in actions
    # Reviewers may read where credentials go; only owners and admins change it.
    assert (await client.get(hosts, headers=example.owner)).status_code == 200


async def test_loopback_is_only_for_orgs_the_operator_runs_a_sandbox_for(
    settings: Settings, example: Example, falcon: FalconState
) -> None:
    assert FALCON_URL.startswith("http://localhost")
    url = f"/v1/admin/orgs/{example.seeded.org_id}/credentials/crowdstrike"
    for orgs in ((), ("another-org",)):
        async with deployment(settings, falcon, sandbox_orgs=orgs) as client:
            # The loopback credential the example org stored is refused at use...
            resp = await client.post(EXECUTE, json=SEARCH, headers=example.auth("triage-bot"))
            assert (resp.status_code, resp.json()["code"]) == (409, "destination_refused")
            assert "ARX_SANDBOX_ORGS" in resp.json()["detail"]
            # ... and cannot be stored again.
            resp = await client.put(
                url, json={"secret": SECRET, "base_url": FALCON_URL}, headers=example.owner
            )
            assert resp.status_code == 422
            assert falcon.requests == []
    async with deployment(settings, falcon, sandbox_orgs=("example",)) as client:
        resp = await client.post(EXECUTE, json=SEARCH, headers=example.auth("triage-bot"))
        assert resp.status_code == 200, resp.text


async def test_versions_are_append_only_and_a_deletion_is_a_tombstone(
    client: httpx.AsyncClient, example: Example, test_db: Database
) -> None:
    org = example.seeded.org_id
    url = f"/v1/admin/orgs/{org}/credentials/crowdstrike"
    with psycopg.connect(test_db.admin_url, autocommit=True) as conn:
        for statement in (
            "UPDATE arx.credentials SET base_url = 'https://api.us-2.crowdstrike.com'",
            "UPDATE arx.credentials SET ciphertext = ciphertext || '\\x00'::bytea",
            "UPDATE arx.credentials SET version = version + 1",
            "DELETE FROM arx.credentials",
            "TRUNCATE arx.credentials CASCADE",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute(statement)
        # A rewrap (a new wrap of the same data key) is the one change allowed.
        conn.execute("UPDATE arx.credentials SET kek_id = kek_id, wrapped_dek = wrapped_dek")

    # Metadata only, for every role that reads the org.
    listed = await client.get(f"/v1/admin/orgs/{org}/credentials", headers=example.owner)
    assert listed.status_code == 200
    [current] = listed.json()["credentials"]
    assert (current["connector"], current["version"], current["deleted"]) == (
        "crowdstrike",
        1,
        False,
    )
    assert current["base_url"] == FALCON_URL
    assert FALCON_CLIENT_SECRET not in listed.text
    assert FALCON_CLIENT_ID not in listed.text

    deleted = await client.delete(url, headers=example.owner)
    assert deleted.status_code == 200, deleted.text
    assert (deleted.json()["version"], deleted.json()["deleted"]) == (2, True)
    resp = await client.post(EXECUTE, json=SEARCH, headers=example.auth("triage-bot"))
    assert (resp.status_code, resp.json()["code"]) == (409, "credential_not_configured")
    assert (await client.delete(url, headers=example.owner)).status_code == 409

    stored = await client.put(
        url, json={"secret": SECRET, "base_url": FALCON_URL}, headers=example.owner
    )
    assert stored.json()["version"] == 3
    resp = await client.post(EXECUTE, json=SEARCH, headers=example.auth("triage-bot"))
    assert resp.status_code == 200, resp.text
    with psycopg.connect(test_db.admin_url) as conn:
        versions = conn.execute(
            "SELECT version, deleted, ciphertext IS NULL, created_by FROM arx.credentials"
            " WHERE org_id = %s ORDER BY version",
            (org,),
        ).fetchall()
    assert [v[:3] for v in versions] == [(1, False, False), (2, True, True), (3, False, False)]
    assert all(v[3] for v in versions[1:])
    actions = [r[4] for r in _trail(test_db, org) if r[0] == "admin"]
    assert actions.count("credential.deleted") == 1
