"""Signed checkpoints of an org's chain: Ed25519, with a key outside the database.

A checkpoint says "org O's chain had N links, the last one hashing to H, at
time T", signed. The signed statement (version 1) is canonical JSON (keys
sorted, no whitespace)::

    {"checkpoint_no": k, "hash": "<hex>", "key_id": "<hex>", "org_id": "<uuid>",
     "org_seq": N, "signed_at": "<RFC 3339 UTC, microseconds, Z>",
     "v": "arx.audit.checkpoint.v1"}

``key_id`` is the first 16 hex digits of SHA-256 over the raw public key, so
an auditor holding several public keys knows which one to try. Whoever can
rewrite the database can rebuild a chain, but not sign for it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from uuid import UUID

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from arx.audit import chain
from arx.errors import ServiceUnavailableError

VERSION = "arx.audit.checkpoint.v1"


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def statement(
    *, org_id: UUID, checkpoint_no: int, org_seq: int, head: bytes, signed_at: datetime, kid: str
) -> bytes:
    doc = {
        "checkpoint_no": checkpoint_no,
        "hash": head.hex(),
        "key_id": kid,
        "org_id": str(org_id),
        "org_seq": org_seq,
        "signed_at": chain.timestamp(signed_at),
        "v": VERSION,
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class Signer:
    private: Ed25519PrivateKey

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @property
    def kid(self) -> str:
        return key_id(self.public)

    def sign(self, message: bytes) -> bytes:
        return self.private.sign(message)

    def public_pem(self) -> bytes:
        return public_pem(self.public)


def public_pem(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def ensure_key(path: Path) -> Path:
    """Create an Ed25519 private key at ``path`` (0600) unless one is there."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return path


def load_signer(path: Path) -> Signer:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        raise ServiceUnavailableError(
            "the audit signing key (ARX_AUDIT_SIGNING_KEY_FILE) cannot be read as a PEM key"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ServiceUnavailableError("the audit signing key must be an Ed25519 key")
    return Signer(key)


def load_public(pem: bytes) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def valid(public: Ed25519PublicKey, message: bytes, signature: bytes) -> bool:
    try:
        public.verify(signature, message)
    except InvalidSignature:
        return False
    return True


# --- export, and verification with the public key alone ------------------------------


class ExportedCheckpoint(msgspec.Struct, frozen=True, kw_only=True):
    checkpoint_no: int
    org_seq: int
    hash: str  # hex
    signed_at: datetime
    key_id: str
    signature: str  # hex


class PublicKeyInfo(msgspec.Struct, frozen=True, kw_only=True):
    key_id: str
    pem: str


class CheckpointExport(msgspec.Struct, frozen=True, kw_only=True):
    """What an auditor keeps: every checkpoint of one org and the public keys."""

    org_id: UUID
    public_keys: list[PublicKeyInfo]
    checkpoints: list[ExportedCheckpoint]


class OfflineResult(msgspec.Struct, frozen=True, kw_only=True):
    ok: bool
    org_id: UUID
    checkpoints: int
    last_org_seq: int | None
    first_bad_checkpoint: int | None = None
    detail: str | None = None


def verify_export(export: CheckpointExport, public: Ed25519PublicKey) -> OfflineResult:
    """Check every checkpoint of ``export`` with ``public`` (the key the
    auditor was given, not one from the file) and that they only move forward."""
    kid = key_id(public)
    last_seq = 0
    for cp in export.checkpoints:
        message = statement(
            org_id=export.org_id,
            checkpoint_no=cp.checkpoint_no,
            org_seq=cp.org_seq,
            head=bytes.fromhex(cp.hash),
            signed_at=cp.signed_at,
            kid=cp.key_id,
        )
        problem = None
        if cp.key_id != kid:
            problem = f"checkpoint {cp.checkpoint_no} names key {cp.key_id}, not {kid}"
        elif not valid(public, message, bytes.fromhex(cp.signature)):
            problem = f"checkpoint {cp.checkpoint_no}'s signature does not verify"
        elif cp.org_seq < last_seq:
            problem = f"checkpoint {cp.checkpoint_no} goes back to org_seq {cp.org_seq}"
        if problem is not None:
            return OfflineResult(
                ok=False,
                org_id=export.org_id,
                checkpoints=len(export.checkpoints),
                last_org_seq=last_seq or None,
                first_bad_checkpoint=cp.checkpoint_no,
                detail=problem,
            )
        last_seq = cp.org_seq
    return OfflineResult(
        ok=True,
        org_id=export.org_id,
        checkpoints=len(export.checkpoints),
        last_org_seq=last_seq or None,
    )
