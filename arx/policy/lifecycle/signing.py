"""ARX's bundle signing key: an ECDSA P-256 key in a file, never in the database.

ARX signs every bundle it serves (``opa build --signing-key``, ES256); each
sidecar verifies with the public key (``keys.arx`` in its configuration),
so a bundle changed anywhere between ARX and OPA, the database included,
is never loaded. ``ensure_key`` makes one for a local stack; production
mounts its own (``ARX_BUNDLE_SIGNING_KEY_FILE``) and hands the sidecars the
public half (``arx policy public-key``).
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from arx.errors import PolicyToolUnavailableError

# The key id both sides use: the sidecar's keys.<id> and every bundle's signing.keyid.
KEY_ID = "arx"
ALGORITHM = "ES256"


def ensure_key(path: Path) -> Path:
    """Create a P-256 private key at ``path`` (0600) unless one is there; return it."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return path


def public_key_pem(private_key_file: Path) -> bytes:
    """The public half of the signing key, PEM (what the sidecars verify with)."""
    try:
        key = serialization.load_pem_private_key(private_key_file.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        raise PolicyToolUnavailableError(
            "the bundle signing key (ARX_BUNDLE_SIGNING_KEY_FILE) cannot be read as a PEM key"
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise PolicyToolUnavailableError("the bundle signing key must be an ECDSA P-256 key")
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def public_path(private_key_file: Path) -> Path:
    """Where the public half goes: ``<name>.pub.pem`` beside the key."""
    return private_key_file.with_name(private_key_file.name.removesuffix(".pem") + ".pub.pem")


def write_public_key(private_key_file: Path, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(public_key_pem(private_key_file))
    return out
