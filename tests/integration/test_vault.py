"""INV-005: credentials are envelope-encrypted, bound to their row, rotated by
version, and never returned.

The crypto tests at the top need no services; the rest run against the real
PostgreSQL (as the app role through ``arx.vault.service`` and as the
superuser for tampering) and the fake Falcon API.
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from typing import Any
from uuid import UUID

import httpx
import msgspec
import psycopg
import pytest

from arx.admin.credentials import store_credential
from arx.api.app import create_app
from arx.config import Settings
from arx.connectors.crowdstrike import FalconSecret
from arx.errors import VaultError
from arx.runtime import Runtime, open_runtime
from arx.sandbox.falcon import FalconState
from arx.sandbox.falcon import create_app as create_falcon_app
from arx.vault import crypto
from arx.vault.keyring import KeyRing
from arx.vault.keys import LocalKey
from arx.vault.service import Vault
from tests.fixtures.arx import (
    FALCON_CLIENT_ID,
    FALCON_CLIENT_SECRET,
    FALCON_URL,
    Example,
    make_org,
    open_falcon_credential,
)
from tests.fixtures.database import Database

pytestmark = pytest.mark.anyio

EXECUTE = "/v1/sdk/execute"
TOKEN_PATH = "/oauth2/token"
SEARCH = {"connector": "crowdstrike", "operation": "hosts:search", "params": {}}
ROTATED_SECRET = "falcon-rotated-secret-93ab0e"
PLAINTEXT = b'{"client_id":"abc","client_secret":"s3cr3t-value"}'


# --- crypto, no services ---------------------------------------------------------------


CID = uuid.uuid4()
URL = "https://api.crowdstrike.com"


def _aad(
    org: UUID, connector: str = "crowdstrike", version: int = 1, cid: UUID = CID, url: str = URL
) -> bytes:
    return crypto.credential_aad(org, connector, version, cid, url)


async def test_seal_round_trips_and_hides_plaintext() -> None:
    kek, org = os.urandom(32), uuid.uuid4()
    sealed = await crypto.seal(LocalKey(kek), _aad(org), PLAINTEXT)
    assert await crypto.open_sealed(KeyRing(kek), _aad(org), sealed, org) == PLAINTEXT
    for blob in (sealed.wrapped_dek, sealed.nonce, sealed.ciphertext):
        assert b"s3cr3t-value" not in blob
        assert b"abc" not in blob
    assert len(sealed.nonce) == 12
    # AES-GCM: ciphertext is plaintext length plus the 16-byte tag.
    assert len(sealed.ciphertext) == len(PLAINTEXT) + 16
    assert sealed.kek_id == LocalKey(kek).key_id
    assert kek.hex() not in sealed.kek_id
    assert "s3cr3t" not in repr(sealed)
    # A fresh data key and nonce every time: equal plaintexts never look equal.
    again = await crypto.seal(LocalKey(kek), _aad(org), PLAINTEXT)
    assert again.ciphertext != sealed.ciphertext
    assert again.wrapped_dek != sealed.wrapped_dek
    assert again.nonce != sealed.nonce


async def test_ciphertext_is_bound_to_org_connector_version_id_and_url() -> None:
    kek, org = os.urandom(32), uuid.uuid4()
    sealed = await crypto.seal(LocalKey(kek), _aad(org), PLAINTEXT)
    for moved in (
        _aad(uuid.uuid4()),
        _aad(org, connector="okta"),
        _aad(org, version=2),
        _aad(org, cid=uuid.uuid4()),
        _aad(org, url="https://api.us-2.crowdstrike.com"),
        _aad(org, url=URL + "/"),
        _aad(org, url="https://evil.example"),
        crypto.record_aad(org, "crowdstrike", 1),
    ):
        with pytest.raises(VaultError, match="failed authentication"):
            await crypto.open_sealed(KeyRing(kek, cache_seconds=0), moved, sealed, org)


async def test_tampering_and_foreign_keys_fail_authentication() -> None:
    kek, org = os.urandom(32), uuid.uuid4()
    sealed = await crypto.seal(LocalKey(kek), _aad(org), PLAINTEXT)
    other = await crypto.seal(LocalKey(kek), _aad(org), PLAINTEXT)
    flipped = bytes([sealed.ciphertext[0] ^ 1]) + sealed.ciphertext[1:]
    tampered = [
        dataclasses.replace(sealed, ciphertext=flipped),
        dataclasses.replace(sealed, nonce=os.urandom(12)),
        dataclasses.replace(sealed, wrapped_dek=other.wrapped_dek),  # a DEK from another row
        dataclasses.replace(sealed, wrapped_dek=sealed.wrapped_dek[:20]),
    ]
    for bad in tampered:
        with pytest.raises(VaultError, match="failed authentication"):
            await crypto.open_sealed(KeyRing(kek), _aad(org), bad, org)

    wrong_kek = os.urandom(32)
    with pytest.raises(VaultError, match="does not hold"):
        await crypto.open_sealed(KeyRing(wrong_kek), _aad(org), sealed, org)
    # Even with the label forged to name the wrong KEK, the cryptography refuses.
    relabelled = dataclasses.replace(sealed, kek_id=LocalKey(wrong_kek).key_id)
    with pytest.raises(VaultError, match="failed authentication"):
        await crypto.open_sealed(KeyRing(wrong_kek), _aad(org), relabelled, org)
    for missing in (b"", b"short"):
        with pytest.raises(VaultError, match="no key-encryption key"):
            await crypto.seal(LocalKey(missing), _aad(org), PLAINTEXT)
        with pytest.raises(VaultError, match="does not hold"):
            await crypto.open_sealed(KeyRing(missing), _aad(org), sealed, org)


# --- stored credentials ---------------------------------------------------------------


def _credential_rows(test_db: Database, org_id: UUID) -> list[dict[str, Any]]:
    with psycopg.connect(test_db.admin_url) as conn:
        cur = conn.execute(
            "SELECT * FROM arx.credentials WHERE org_id = %s ORDER BY version", (org_id,)
        )
        names = [d.name for d in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


async def _open(runtime: Runtime, org_id: UUID, *, kek: bytes | None = None) -> FalconSecret:
    vault = Vault(KeyRing(kek)) if kek is not None else None
    return await open_falcon_credential(runtime, org_id, vault=vault)


async def test_stored_row_holds_no_secret_and_opens_for_its_org(
    example: Example, runtime: Runtime, test_db: Database
) -> None:
    (row,) = _credential_rows(test_db, example.seeded.org_id)
    assert row["version"] == 1
    assert row["kek_id"] == LocalKey(runtime.settings.kek).key_id
    stored = b"".join(v if isinstance(v, bytes) else str(v).encode() for v in row.values())
    assert FALCON_CLIENT_SECRET.encode() not in stored
    assert FALCON_CLIENT_ID.encode() not in stored
    assert runtime.settings.kek not in stored

    secret = await _open(runtime, example.seeded.org_id)
    assert secret.client_id == FALCON_CLIENT_ID
    assert secret.client_secret.reveal() == FALCON_CLIENT_SECRET
    assert FALCON_CLIENT_SECRET not in repr(secret)
    with pytest.raises(VaultError):
        await _open(runtime, example.seeded.org_id, kek=os.urandom(32))


async def test_row_copied_to_another_org_or_version_does_not_decrypt(
    example: Example, runtime: Runtime, test_db: Database
) -> None:
    org_a = example.seeded.org_id
    org_b = (await make_org(runtime, "thief")).org_id
    (row,) = _credential_rows(test_db, org_a)
    copy = (
        "INSERT INTO arx.credentials (id, org_id, connector, version, base_url, kek_id,"
        " wrapped_dek, nonce, ciphertext) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
    )
    values = [row[k] for k in ("base_url", "kek_id", "wrapped_dek", "nonce", "ciphertext")]
    with psycopg.connect(test_db.admin_url) as conn:
        # A's bytes, byte for byte, as B's version 1 ...
        conn.execute(copy, (uuid.uuid4(), org_b, "crowdstrike", 1, *values))
        # ... and as A's own version 2 (a replayed old version must not pass as new).
        conn.execute(copy, (uuid.uuid4(), org_a, "crowdstrike", 2, *values))

    with pytest.raises(VaultError, match="failed authentication"):
        await _open(runtime, org_b)
    with pytest.raises(VaultError, match="failed authentication"):
        await _open(runtime, org_a)


async def test_rotation_creates_a_new_version_that_the_connector_uses(
    client: httpx.AsyncClient,
    example: Example,
    falcon: FalconState,
    runtime: Runtime,
    test_db: Database,
) -> None:
    first = await client.post(EXECUTE, json=SEARCH, headers=example.auth("triage-bot"))
    assert first.status_code == 200, first.text
    assert [r.status for r in falcon.calls(TOKEN_PATH)] == [201]

    # The vendor side rotates: only the new secret is accepted from now on.
    falcon.clients = {FALCON_CLIENT_ID: ROTATED_SECRET}
    info = await store_credential(
        runtime.control_pool,
        runtime.vault,
        runtime.settings,
        org_id=example.seeded.org_id,
        connector="crowdstrike",
        secret={"client_id": FALCON_CLIENT_ID, "client_secret": ROTATED_SECRET},
        base_url=FALCON_URL,
        actor="pytest",
    )
    assert info.version == 2
    rows = _credential_rows(test_db, example.seeded.org_id)
    assert [r["version"] for r in rows] == [1, 2], "version 1 is kept, never rewritten"
    assert rows[0]["ciphertext"] != rows[1]["ciphertext"]
    assert (await _open(runtime, example.seeded.org_id)).client_secret.reveal() == ROTATED_SECRET

    second = await client.post(EXECUTE, json=SEARCH, headers=example.auth("triage-bot"))
    assert second.status_code == 200, second.text
    # A fresh token exchange, made with the new secret (the old one would get 403).
    exchanges = falcon.calls(TOKEN_PATH)
    assert [(r.status, r.auth_valid) for r in exchanges] == [(201, True), (201, True)]
    assert len(falcon.calls("/devices/queries/devices/v1")) == 2

    with psycopg.connect(test_db.admin_url) as conn:
        details = conn.execute(
            "SELECT details FROM arx.audit_events WHERE action = 'credential.stored' ORDER BY seq"
        ).fetchall()
    assert [d[0]["version"] for d in details] == [1, 2]
    assert ROTATED_SECRET not in str(details)


async def test_undecryptable_credential_fails_closed_and_is_audited(
    settings: Settings,
    example: Example,
    falcon: FalconState,
    runtime: Runtime,
    test_db: Database,
) -> None:
    """A process with another KEK cannot use the stored credential: nothing
    reaches the tool, and the committed PERMIT gets a result event recording
    the failure (DESIGN section 3, step 6), like any other execution error."""
    wrong_settings = msgspec.structs.replace(settings, kek=os.urandom(32))
    transport = httpx.ASGITransport(app=create_falcon_app(falcon))
    async with (
        open_runtime(wrong_settings, connector_transport=transport) as wrong,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(wrong_settings, runtime=wrong)),
            base_url="http://arx.test",
        ) as other,
    ):
        resp = await other.post(EXECUTE, json=SEARCH, headers=example.auth("triage-bot"))
    assert resp.status_code == 500, resp.text
    assert resp.json()["code"] == "vault_error"
    assert FALCON_CLIENT_SECRET not in resp.text
    assert falcon.requests == [], "nothing may reach the tool without a usable credential"

    with psycopg.connect(test_db.admin_url) as conn:
        rows = conn.execute(
            "SELECT kind, verdict, outcome, error, decision_id, id FROM arx.audit_events"
            " WHERE kind <> 'admin' ORDER BY seq"
        ).fetchall()
    assert [(r[0], r[1]) for r in rows[:1]] == [("decision", "PERMIT")]
    assert [(r[0], r[2], (r[3] or {}).get("code"), r[4]) for r in rows[1:]] == [
        ("result", "error", "vault_error", rows[0][5])
    ], "the PERMIT decision must be followed by a result event recording the vault error"
    # As for connector errors, the problem names the decision event it belongs to.
    assert resp.json().get("event_id") == str(rows[0][5])


async def test_admin_put_credential_never_returns_the_secret(
    client: httpx.AsyncClient, example: Example, test_db: Database
) -> None:
    url = f"/v1/admin/orgs/{example.seeded.org_id}/credentials/crowdstrike"
    resp = await client.put(
        url,
        json={
            "secret": {"client_id": FALCON_CLIENT_ID, "client_secret": ROTATED_SECRET},
            "base_url": FALCON_URL,
        },
        headers=example.owner,
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert set(body) == {
        "id",
        "connector",
        "version",
        "base_url",
        "kek_id",
        "deleted",
        "created_by",
        "created_at",
    }
    assert body["version"] == 2
    assert body["base_url"] == FALCON_URL
    assert ROTATED_SECRET not in resp.text
    assert FALCON_CLIENT_ID not in resp.text

    # A malformed secret names the field without echoing what was sent.
    bad = await client.put(
        url,
        json={"secret": {"client_id": FALCON_CLIENT_ID, "client_secret": 12345678901}},
        headers=example.owner,
    )
    assert bad.status_code == 422, bad.text
    assert bad.json()["field"] == "secret.client_secret"
    assert "12345678901" not in bad.text
    secret = {"client_id": FALCON_CLIENT_ID, "client_secret": ROTATED_SECRET}
    for base in ("http://[", "http://a:999999", "ftp://falcon.sandbox", "falcon.sandbox"):
        bad_url = await client.put(
            url, json={"secret": secret, "base_url": base}, headers=example.owner
        )
        assert bad_url.status_code == 422, (base, bad_url.text)
        assert bad_url.json()["field"] == "base_url"

    audit = await client.get(f"/v1/admin/orgs/{example.seeded.org_id}/audit", headers=example.owner)
    assert audit.status_code == 200
    assert ROTATED_SECRET not in audit.text
    assert FALCON_CLIENT_SECRET not in audit.text
    assert len(_credential_rows(test_db, example.seeded.org_id)) == 2
