"""Settings: built once from ``ARX_*`` environment variables at start-up.

Nothing else in ``arx`` reads ``os.environ``; everything gets a ``Settings``.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from pathlib import Path

import msgspec

# A request body larger than this is rejected with 413 before it is parsed.
DEFAULT_MAX_BODY_BYTES = 64 * 1024


class ConfigError(ValueError):
    """The environment does not describe a runnable ARX."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    # Connects as the application role (owns nothing, cannot bypass RLS).
    database_url: str
    # Used only by `arx db migrate`; defaults to database_url.
    admin_database_url: str | None = None
    # When set, `arx db migrate` gives the arx_app role this password.
    app_db_password: str = ""
    opa_url: str = "http://127.0.0.1:8181"
    opa_timeout_seconds: float = 2.0
    # AES-256 key-encryption key (32 bytes) wrapping every credential's data key.
    kek: bytes = msgspec.field(default=b"")
    # Bearer token for the admin API; the admin API is disabled when empty.
    admin_token: str = ""
    connector_timeout_seconds: float = 15.0
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    db_pool_min: int = 2
    db_pool_max: int = 10
    approval_ttl_seconds: int = 3600
    log_level: str = "INFO"
    # Connector base URLs must be https unless this is set (the local sandbox).
    allow_insecure_connector_urls: bool = False

    def __repr__(self) -> str:
        # Never let the KEK, the admin token or a DB password reach a log line.
        return "Settings(<redacted>)"

    __str__ = __repr__


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _load_kek(env: Mapping[str, str]) -> bytes:
    raw = env.get("ARX_KEK")
    path = env.get("ARX_KEK_FILE")
    if raw is None and path:
        try:
            raw = Path(path).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"ARX_KEK_FILE cannot be read: {exc.strerror}") from None
    if not raw:
        return b""
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError("ARX_KEK must be base64 of 32 random bytes") from None
    if len(key) != 32:
        raise ConfigError("ARX_KEK must decode to exactly 32 bytes (AES-256)")
    return key


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    url = env.get("ARX_DATABASE_URL")
    if not url:
        raise ConfigError("ARX_DATABASE_URL is not set")
    kek = _load_kek(env)
    try:
        return Settings(
            database_url=url,
            admin_database_url=env.get("ARX_ADMIN_DATABASE_URL") or None,
            app_db_password=env.get("ARX_APP_DB_PASSWORD", ""),
            opa_url=env.get("ARX_OPA_URL", "http://127.0.0.1:8181").rstrip("/"),
            opa_timeout_seconds=float(env.get("ARX_OPA_TIMEOUT_SECONDS", "2.0")),
            kek=kek,
            admin_token=env.get("ARX_ADMIN_TOKEN", ""),
            connector_timeout_seconds=float(env.get("ARX_CONNECTOR_TIMEOUT_SECONDS", "15")),
            max_body_bytes=int(env.get("ARX_MAX_BODY_BYTES", str(DEFAULT_MAX_BODY_BYTES))),
            db_pool_min=int(env.get("ARX_DB_POOL_MIN", "2")),
            db_pool_max=int(env.get("ARX_DB_POOL_MAX", "10")),
            approval_ttl_seconds=int(env.get("ARX_APPROVAL_TTL_SECONDS", "3600")),
            log_level=env.get("ARX_LOG_LEVEL", "INFO").upper(),
            allow_insecure_connector_urls=_bool(env.get("ARX_ALLOW_INSECURE_CONNECTOR_URLS", "")),
        )
    except ValueError as exc:
        raise ConfigError(f"invalid ARX_* setting: {exc}") from None
