"""Local passwords (the demo's owner, orgs without an IdP): argon2id.

argon2-cffi's defaults are RFC 9106's second recommended profile (64 MiB,
three passes): memory-hard, so a stolen hash is expensive to attack. Hashing
is slow on purpose, so callers run it in a worker thread. An unknown account
is checked against a dummy hash, so timing does not tell who exists.
"""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 12
MAX_LENGTH = 1024


@cache
def _hasher() -> PasswordHasher:
    return PasswordHasher()


@cache
def _dummy_hash() -> str:
    return _hasher().hash("arx-no-such-account")


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(password: str, stored: str | None) -> bool:
    """True only if ``stored`` is an argon2 hash of ``password``."""
    try:
        return _hasher().verify(stored or _dummy_hash(), password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
