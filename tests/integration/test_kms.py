"""Issue 10, point 2: key-encryption keys. ARX's own key rotates by
rewrapping; an org may bring its own key in AWS KMS (moto's server), Azure
Key Vault or Google Cloud KMS (local servers speaking their REST APIs,
tests/fixtures/kms.py), and revoking ARX's access to it fails that org
closed and nobody else.

The real PostgreSQL, the real API in-process, the fake Falcon (whose request
log shows whether anything was sent).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import boto3
import httpx
import msgspec
import psycopg
import pytest
from moto import settings as moto_settings
from moto.server import ThreadedMotoServer

from arx.admin.credentials import store_credential
from arx.config import Settings
from arx.runtime import Runtime
from arx.sandbox.falcon import FalconState
from arx.vault.keys import LocalKey
from tests.fixtures.arx import (
    FALCON_CLIENT_ID,
    FALCON_CLIENT_SECRET,
    FALCON_URL,
    Example,
    deployment,
    make_org,
    open_falcon_credential,
)
from tests.fixtures.database import Database
from tests.fixtures.kms import (
    AZURE_CLIENT_ID,
    AZURE_CLIENT_SECRET,
    KEY_VERSION,
    TENANT,
    KmsServer,
    serve_kms,
)

pytestmark = pytest.mark.anyio

EXECUTE = "/v1/sdk/execute"
SEARCH = {"connector": "crowdstrike", "operation": "hosts:search", "params": {}}
GCP_KEY = "projects/arx-project/locations/global/keyRings/arx/cryptoKeys/org-kek"
AZURE_KEY = f"https://orgvault.vault.azure.net/keys/org-kek/{KEY_VERSION}"


@pytest.fixture
def kms() -> Iterator[KmsServer]:
    yield from serve_kms()


@dataclass
class MotoKms:
    """moto's server with IAM enforced: ARX calls KMS as an IAM user whose
    policy the org's admin (another user) can take away and give back."""

    url: str
    key_arn: str
    admin: Any  # an IAM client acting as the admin user

    def revoke(self) -> None:
        self.admin.delete_user_policy(UserName="arx", PolicyName="use-org-kek")

    def restore(self) -> None:
        self.admin.put_user_policy(
            UserName="arx", PolicyName="use-org-kek", PolicyDocument=_ALLOW_KMS
        )


_ALLOW_KMS = json.dumps(
    {
        "Version": "2012-10-17",
        # moto authorizes KMS actions against resource "*" (it names no key).
        "Statement": [
            {"Effect": "Allow", "Action": ["kms:Encrypt", "kms:Decrypt"], "Resource": "*"}
        ],
    }
)


@pytest.fixture
def moto_kms(monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoKms]:
    for name in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.setenv(name, os.devnull)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    # moto's backends live in this process, across servers: start empty.
    httpx.post(f"{url}/moto-api/reset").raise_for_status()
    try:
        root = {"region_name": "us-east-1", "endpoint_url": url,
                "aws_access_key_id": "root", "aws_secret_access_key": "root"}  # fmt: skip
        iam = boto3.client("iam", **root)
        keys = {}
        for user, policy in (
            ("admin", json.dumps({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "*", "Resource": "*"}]})),
            ("arx", _ALLOW_KMS),
        ):  # fmt: skip
            iam.create_user(UserName=user)
            name = "all" if user == "admin" else "use-org-kek"
            iam.put_user_policy(UserName=user, PolicyName=name, PolicyDocument=policy)
            keys[user] = iam.create_access_key(UserName=user)["AccessKey"]
        arn = boto3.client("kms", **root).create_key(Description="org kek")["KeyMetadata"]["Arn"]
        # From here on moto checks every request against IAM, as AWS does.
        monkeypatch.setattr(moto_settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)
        # ARX's identity: the standard credential chain finds it in the environment.
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", keys["arx"]["AccessKeyId"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", keys["arx"]["SecretAccessKey"])
        monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
        admin = boto3.client(
            "iam",
            region_name="us-east-1",
            endpoint_url=url,
            aws_access_key_id=keys["admin"]["AccessKeyId"],
            aws_secret_access_key=keys["admin"]["SecretAccessKey"],
        )
        yield MotoKms(url=url, key_arn=arn, admin=admin)
    finally:
        server.stop()


@pytest.fixture
def settings(settings: Settings, kms: KmsServer, moto_kms: MotoKms, tmp_path: Path) -> Settings:
    """The usual test settings, with ARX's identities at the three KMSs, and
    no data-key cache (so a revocation shows at the next call)."""
    account = tmp_path / "gcp-sa.json"
    account.write_text(json.dumps(kms.service_account))
    return msgspec.structs.replace(
        settings,
        aws_kms=True,
        aws_kms_endpoint_url=moto_kms.url,
        azure_tenant_id=TENANT,
        azure_client_id=AZURE_CLIENT_ID,
        azure_client_secret=AZURE_CLIENT_SECRET,
        azure_authority_url=kms.url,
        azure_key_vault_endpoint=kms.url,
        gcp_credentials_file=str(account),
        gcp_kms_endpoint=kms.url,
        data_key_cache_seconds=0.0,
    )


def _rows(test_db: Database, org_id: UUID) -> list[dict[str, Any]]:
    with psycopg.connect(test_db.admin_url) as conn:
        cur = conn.execute(
            "SELECT id, version, kek_id, wrapped_dek, nonce, ciphertext FROM arx.credentials"
            " WHERE org_id = %s AND NOT deleted ORDER BY version",
            (org_id,),
        )
        names = [d.name for d in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _admin_actions(test_db: Database, org_id: UUID) -> list[tuple[str, dict[str, Any]]]:
    with psycopg.connect(test_db.admin_url) as conn:
        return conn.execute(
            "SELECT action, details FROM arx.audit_events WHERE org_id = %s AND kind = 'admin'"
            " ORDER BY seq",
            (org_id,),
        ).fetchall()


async def test_arx_kek_rotation_rewraps_data_keys_and_leaves_ciphertexts_alone(
    settings: Settings, example: Example, falcon: FalconState, test_db: Database
) -> None:
    org = example.seeded.org_id
    old_kek, new_kek = settings.kek, os.urandom(32)
    old_id, new_id = LocalKey(old_kek).key_id, LocalKey(new_kek).key_id
    (before,) = _rows(test_db, org)
    assert before["kek_id"] == old_id
    key_url = f"/v1/admin/orgs/{org}/key"

    # The operator rotates: the new key wraps, the old one still unwraps.
    rotated = {"kek": new_kek, "kek_retired": (base64.b64encode(old_kek).decode(),)}
    async with deployment(settings, falcon, **rotated) as client:
        resp = await client.post(EXECUTE, json=SEARCH, headers=example.auth("triage-bot"))
        assert resp.status_code == 200, resp.text
        shown = (await client.get(key_url, headers=example.owner)).json()
        assert shown == {
            "provider": "local",
            "key": "",
            "kek_id": new_id,
            "sealed_under": {old_id: 1},
        }
        resp = await client.post(f"{key_url}/rewrap", headers=example.owner)
        assert resp.status_code == 200, resp.text
        assert resp.json()["sealed_under"] == {new_id: 1}

    (after,) = _rows(test_db, org)
    assert after["kek_id"] == new_id
    assert after["wrapped_dek"] != before["wrapped_dek"]
    # The secret itself was not touched: same ciphertext, same nonce.
    assert (after["ciphertext"], after["nonce"]) == (before["ciphertext"], before["nonce"])
    assert ("org.key_rewrapped", {"kek_id": new_id, "rewrapped": 1}) in _admin_actions(test_db, org)

    # The old key can go: everything opens under the new one alone.
    async with deployment(settings, falcon, kek=new_kek, kek_retired=()) as client:
        resp = await client.post(EXECUTE, json=SEARCH, headers=example.auth("triage-bot"))
        assert resp.status_code == 200, resp.text
    # And the previous deployment (old key only) can no longer open it.
    falcon.requests.clear()
    async with deployment(settings, falcon, kek=old_kek) as client:
        resp = await client.post(EXECUTE, json=SEARCH, headers=example.auth("triage-bot"))
        assert (resp.status_code, resp.json()["code"]) == (500, "vault_error")
        assert falcon.requests == []


@pytest.mark.parametrize("provider", ["aws-kms", "azure-key-vault", "gcp-kms"])
async def test_an_org_brings_its_own_key_and_revoking_arx_fails_that_org_closed(
    provider: str,
    *,
    client: httpx.AsyncClient,
    runtime: Runtime,
    example: Example,
    falcon: FalconState,
    kms: KmsServer,
    moto_kms: MotoKms,
    test_db: Database,
) -> None:
    org = example.seeded.org_id
    other = await make_org(runtime, "other-org")
    await store_credential(
        runtime.control_pool,
        runtime.vault,
        runtime.settings,
        org_id=other.org_id,
        connector="crowdstrike",
        secret={"client_id": FALCON_CLIENT_ID, "client_secret": FALCON_CLIENT_SECRET},
        base_url=FALCON_URL,
        actor="pytest",
    )
    if provider == "aws-kms":
        key = moto_kms.key_arn
        revoke, restore = moto_kms.revoke, moto_kms.restore
        kek_id = f"aws-kms:{key}"
    elif provider == "azure-key-vault":
        kms.state.add_azure_key("org-kek")
        key, kek_id = AZURE_KEY, f"azure-kv:{AZURE_KEY}"
        revoke, restore = (
            lambda: kms.state.azure_allowed.discard("org-kek"),
            lambda: kms.state.azure_allowed.add("org-kek"),
        )
    else:
        kms.state.add_gcp_key(GCP_KEY)
        key, kek_id = GCP_KEY, f"gcp-kms:{GCP_KEY}"
        revoke, restore = (
            lambda: kms.state.gcp_allowed.discard(GCP_KEY),
            lambda: kms.state.gcp_allowed.add(GCP_KEY),
        )
    key_url = f"/v1/admin/orgs/{org}/key"
    (before,) = _rows(test_db, org)

    resp = await client.put(key_url, json={"provider": provider, "key": key}, headers=example.owner)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {
        "provider": provider,
        "key": key,
        "kek_id": kek_id,
        "sealed_under": {kek_id: 1},
    }
    (after,) = _rows(test_db, org)
    assert after["kek_id"] == kek_id
    assert (after["ciphertext"], after["nonce"]) == (before["ciphertext"], before["nonce"])
    assert FALCON_CLIENT_SECRET.encode() not in after["wrapped_dek"]
    [(_, details)] = [a for a in _admin_actions(test_db, org) if a[0] == "org.key_set"]
    assert details == {"provider": provider, "key": key, "kek_id": kek_id, "rewrapped": 1}

    # The org's calls now unwrap through its KMS; a new credential version too.
    ok = await client.post(EXECUTE, json=SEARCH, headers=example.auth("triage-bot"))
    assert ok.status_code == 200, ok.text
    stored = await client.put(
        f"/v1/admin/orgs/{org}/credentials/crowdstrike",
        json={"secret": {"client_id": FALCON_CLIENT_ID, "client_secret": FALCON_CLIENT_SECRET},
              "base_url": FALCON_URL},
        headers=example.owner,
    )  # fmt: skip
    assert (stored.status_code, stored.json()["kek_id"]) == (201, kek_id)

    # The org takes ARX's access away: its calls fail closed, and say why.
    revoke()
    falcon.requests.clear()
    refused = await client.post(EXECUTE, json=SEARCH, headers=example.auth("triage-bot"))
    assert (refused.status_code, refused.json().get("code")) == (503, "key_unavailable"), (
        refused.text
    )
    assert falcon.requests == []
    assert FALCON_CLIENT_SECRET not in refused.text
    # Nobody else is touched: the other org's credential opens as before.
    assert (
        await open_falcon_credential(runtime, other.org_id)
    ).client_secret.reveal() == FALCON_CLIENT_SECRET
    # A key ARX cannot use is refused before anything depends on it.
    again = await client.put(
        key_url, json={"provider": provider, "key": key}, headers=example.owner
    )
    assert again.status_code == 422
    assert "ARX cannot use this key" in again.json()["detail"]

    restore()
    resp = await client.post(EXECUTE, json=SEARCH, headers=example.auth("triage-bot"))
    assert resp.status_code == 200, resp.text

    # Back to ARX's own key: everything rewrapped again.
    back = await client.put(key_url, json={"provider": "local"}, headers=example.owner)
    assert back.status_code == 200, back.text
    assert set(back.json()["sealed_under"]) == {LocalKey(runtime.settings.kek).key_id}


async def test_key_references_are_checked_and_only_owners_set_them(
    client: httpx.AsyncClient, example: Example
) -> None:
    key_url = f"/v1/admin/orgs/{example.seeded.org_id}/key"
    for provider, key in (
        ("aws-kms", "alias/org-kek"),
        ("aws-kms", "arn:aws:kms:us-east-1:123456789012:alias/org-kek"),
        ("azure-key-vault", "https://orgvault.vault.azure.net/keys/org-kek"),  # no version
        ("azure-key-vault", f"https://evil.example/keys/org-kek/{KEY_VERSION}"),
        ("azure-key-vault", f"http://orgvault.vault.azure.net/keys/org-kek/{KEY_VERSION}"),
        ("azure-key-vault", f"https://evil.com%2f.vault.azure.net/keys/org-kek/{KEY_VERSION}"),
        ("azure-key-vault", f"https://.vault.azure.net/keys/org-kek/{KEY_VERSION}"),
        ("aws-kms", "arn:aws:kms:-:123456789012:key/" + "a" * 32),
        ("gcp-kms", "projects/p/locations/global/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1"),
        ("local", "anything"),
    ):
        resp = await client.put(
            key_url, json={"provider": provider, "key": key}, headers=example.owner
        )
        assert resp.status_code == 422, (provider, key, resp.text)
        assert resp.json()["field"] == "key"
    bad = await client.put(key_url, json={"provider": "vault"}, headers=example.owner)
    assert bad.status_code == 422


@pytest.mark.parametrize("provider", ["azure-key-vault", "gcp-kms"])
async def test_a_refused_kms_token_is_exchanged_once_and_the_call_retried(
    provider: str, *, client: httpx.AsyncClient, example: Example, kms: KmsServer
) -> None:
    """The KMS forgets ARX's bearer token before it expires (revoked, or the
    service restarted): the next call gets a new one and succeeds; later
    calls reuse it."""
    if provider == "azure-key-vault":
        kms.state.add_azure_key("org-kek")
        key, tokens, exchange = AZURE_KEY, kms.state.azure_tokens, "entra:token"
    else:
        kms.state.add_gcp_key(GCP_KEY)
        key, tokens, exchange = GCP_KEY, kms.state.gcp_tokens, "google:token"
    org = example.seeded.org_id
    resp = await client.put(
        f"/v1/admin/orgs/{org}/key", json={"provider": provider, "key": key}, headers=example.owner
    )
    assert resp.status_code == 200, resp.text
    assert kms.state.calls.count(exchange) == 1

    tokens.clear()
    kms.state.calls.clear()
    for _ in range(2):
        ok = await client.post(EXECUTE, json=SEARCH, headers=example.auth("triage-bot"))
        assert ok.status_code == 200, ok.text
    assert kms.state.calls.count(exchange) == 1
    assert len(tokens) == 1
