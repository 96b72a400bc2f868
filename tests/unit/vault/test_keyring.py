"""The key ring: which key opens a stored wrap, and the brief data-key cache."""

from __future__ import annotations

import os
import uuid

import pytest

from arx.errors import KeyUnavailableError, VaultError
from arx.vault.keyring import KeyRing, OrgKey, check_key_ref
from arx.vault.keys import LocalKey

pytestmark = pytest.mark.anyio
AAD = b"binding"
ORG = uuid.uuid4()


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_data_keys_are_kept_briefly_and_per_binding(monkeypatch: pytest.MonkeyPatch) -> None:
    kek, clock = os.urandom(32), _Clock()
    ring = KeyRing(kek, cache_seconds=60, clock=clock)
    dek = os.urandom(32)
    wrapped = await ring.local.wrap(dek, AAD)
    calls: list[bytes] = []
    unwrap = LocalKey.unwrap

    async def counting(self: LocalKey, blob: bytes, aad: bytes) -> bytes:
        calls.append(aad)
        return await unwrap(self, blob, aad)

    monkeypatch.setattr(LocalKey, "unwrap", counting)
    assert await ring.unwrap(ring.local.key_id, wrapped, AAD, ORG) == dek
    assert await ring.unwrap(ring.local.key_id, wrapped, AAD, ORG) == dek
    assert calls == [AAD], "the second call within the interval is served from memory"
    # Another binding is never served from the cache: the key checks it.
    with pytest.raises(VaultError, match="failed authentication"):
        await ring.unwrap(ring.local.key_id, wrapped, b"another binding", ORG)
    clock.now = 61
    assert await ring.unwrap(ring.local.key_id, wrapped, AAD, ORG) == dek
    assert calls == [AAD, b"another binding", AAD], "expired: asked again"

    no_cache = KeyRing(kek, cache_seconds=0)
    for _ in range(2):
        await no_cache.unwrap(no_cache.local.key_id, wrapped, AAD, ORG)
    assert len(calls) == 5


async def test_which_key_opens_what() -> None:
    old, new = os.urandom(32), os.urandom(32)
    ring = KeyRing(new, retired=[old])
    assert ring.current(None, ORG) is ring.local
    assert ring.current(OrgKey("local", ""), ORG) is ring.local
    wrapped = await LocalKey(old).wrap(b"k" * 32, AAD)
    assert await ring.unwrap(LocalKey(old).key_id, wrapped, AAD, ORG) == b"k" * 32
    with pytest.raises(VaultError, match="does not hold"):
        KeyRing(new).provider(LocalKey(old).key_id, ORG)
    # An org's KMS key, where this deployment has no identity there: fail closed.
    arn = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    with pytest.raises(KeyUnavailableError, match="not configured"):
        KeyRing(new).provider("azure-kv:https://v.vault.azure.net/keys/k/" + "0" * 32, ORG)
    assert KeyRing(new, aws_kms=None).current(OrgKey("local", ""), ORG).key_id.startswith("local:")
    with pytest.raises(VaultError, match="does not know"):
        ring.provider("rot13:whatever", ORG)
    assert check_key_ref("aws-kms", arn) == arn
    with pytest.raises(ValueError, match="one of"):
        check_key_ref("hsm", "x")
