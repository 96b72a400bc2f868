"""Key format, generation and verification: agent API keys and admin tokens.

An agent key reads ``arx_<id>_<secret>``, an admin token ``arxadm_<id>_<secret>``:
``id`` (16 hex chars) is public and finds the row; ``secret`` is 32 random
bytes, url-safe base64. Only SHA-256 of the secret is stored and it is
compared with ``hmac.compare_digest``. The prefixes differ so that a secret
scanner (and a person) can tell which is which, and one is never taken for
the other.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from arx.errors import AuthenticationError

PREFIX = "arx_"
ADMIN_PREFIX = "arxadm_"
_ID_HEX = 16


def generate(prefix: str = PREFIX) -> tuple[str, str, bytes]:
    """Return (key id, full key, hash of the secret)."""
    key_id = secrets.token_hex(_ID_HEX // 2)
    secret = secrets.token_urlsafe(32)
    return key_id, f"{prefix}{key_id}_{secret}", hash_secret(secret)


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def parse(key: str, prefix: str = PREFIX) -> tuple[str, str]:
    """Split a presented key into (id, secret); any malformed key is a 401."""
    if not key.startswith(prefix):
        raise AuthenticationError("the API key is malformed")
    key_id, sep, secret = key[len(prefix) :].partition("_")
    if (
        not sep
        or len(key_id) != _ID_HEX
        or any(c not in "0123456789abcdef" for c in key_id)
        or not secret
        or len(secret) > 128
    ):
        raise AuthenticationError("the API key is malformed")
    return key_id, secret


def parse_bearer(header: str | None) -> tuple[str, str]:
    if not header:
        raise AuthenticationError("an Authorization: Bearer <ARX API key> header is required")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("the Authorization header must be 'Bearer <ARX API key>'")
    return parse(token.strip())


def presented_key_id(header: str | None) -> str | None:
    """The key id (the public half) of a well-formed agent key in ``header``,
    ``None`` for anything else; the secret is neither returned nor kept."""
    try:
        key_id, _ = parse_bearer(header)
    except AuthenticationError:
        return None
    return key_id


def verify(secret: str, stored_hash: bytes) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)
