"""Settings: built once from ``ARX_*`` environment variables at start-up.

Nothing else in ``arx`` reads ``os.environ``; everything gets a ``Settings``.
Every number is bounded: a zero, negative or absurd timeout, limit or size is
refused at start-up with a message naming the variable, never discovered
under load. Defaults are written once, in the Struct.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import msgspec

# A request body larger than this is rejected with 413 before it is parsed.
DEFAULT_MAX_BODY_BYTES = 64 * 1024

# A claim left unfinished this long belongs to a request that died; a retry
# then learns whether its first attempt reached a decision (see
# arx.idempotency). Every execute must finish well inside it.
IDEMPOTENCY_ABANDONED_AFTER_SECONDS = 300

# Fault injection, for tests only (tests/e2e/test_crash_between_steps.py):
# KILL_AFTER_DECISION makes the API process SIGKILL itself right after a
# PERMIT decision commits, before its connector runs (a crash between the two
# steps). ARX_TEST_FAULT arms it only beside ARX_TEST_FAULTS_ALLOWED set to
# exactly TEST_FAULTS_ACK; either one alone stops the API at start-up, so a
# stray variable in a deployment cannot arm it silently, and an armed process
# says so in a critical log line when it starts.
KILL_AFTER_DECISION = "kill-after-decision"
TEST_FAULTS_ACK = "this-process-may-kill-itself"

# Bounded settings: a value outside is refused at start-up.
Seconds30 = Annotated[float, msgspec.Meta(gt=0, le=30)]
Seconds60 = Annotated[float, msgspec.Meta(gt=0, le=60)]
Seconds120 = Annotated[float, msgspec.Meta(gt=0, le=120)]
Seconds300 = Annotated[float, msgspec.Meta(gt=0, le=300)]
BodyBytes = Annotated[int, msgspec.Meta(ge=1024, le=16 * 1024 * 1024)]
ToolBytes = Annotated[int, msgspec.Meta(ge=1024, le=64 * 1024 * 1024)]
PoolSize = Annotated[int, msgspec.Meta(ge=1, le=200)]
ApprovalSeconds = Annotated[int, msgspec.Meta(ge=1, le=30 * 24 * 3600)]
HoldSeconds = Annotated[int, msgspec.Meta(ge=0, le=60)]
BundleBytes = Annotated[int, msgspec.Meta(ge=64 * 1024, le=64 * 1024 * 1024)]
LongPollSeconds = Annotated[int, msgspec.Meta(ge=1, le=30)]
SealSeconds = Annotated[float, msgspec.Meta(ge=0, le=60)]
CheckpointSeconds = Annotated[float, msgspec.Meta(gt=0, le=86400)]
RecentCount = Annotated[int, msgspec.Meta(ge=0, le=100)]
SessionSeconds = Annotated[int, msgspec.Meta(ge=300, le=7 * 24 * 3600)]
OverlapSeconds = Annotated[int, msgspec.Meta(ge=0, le=30 * 24 * 3600)]
Attempts = Annotated[int, msgspec.Meta(ge=1, le=50)]


class ConfigError(ValueError):
    """The environment does not describe a runnable ARX."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    # The agent path connects as arx_app (owns nothing, cannot bypass RLS,
    # cannot create orgs, agents, keys or credentials).
    database_url: str
    # The control plane (admin API, sign-in, SCIM) connects as arx_control:
    # no ownership, no BYPASSRLS either, but it may change identities. Unset:
    # this process serves agents only and those routes answer 503.
    control_database_url: str | None = None
    # Used only by `arx db migrate`; defaults to database_url.
    admin_database_url: str | None = None
    # When set, `arx db migrate` gives the arx_app / arx_control roles these passwords.
    app_db_password: str = ""
    control_db_password: str = ""
    opa_url: str = "http://127.0.0.1:8181"
    # The sidecar's token (opa/authz.rego): it answers nobody else. Empty: no
    # Authorization header (a sidecar run without authentication).
    opa_token: str = ""
    # ARX's own opa (the pinned version): it vets, builds, signs and replays
    # bundles, never serves decisions.
    opa_binary: str = "opa"
    # The base policy library (rego/) ARX serves its sidecars; empty: the one
    # beside the arx package.
    policy_base_dir: str = ""
    # ECDSA P-256 private key (PEM) signing every bundle ARX serves. Set, the
    # bundle service is on (/v1/opa/...): sidecars are configured by discovery
    # and verify every bundle with the public half.
    bundle_signing_key_file: str = ""
    # The largest bundle archive a push or a replay may upload.
    max_bundle_bytes: BundleBytes = 4 * 1024 * 1024
    # The longest a sidecar's bundle request is held waiting for a change
    # (under opa/config.yaml's response_header_timeout_seconds, 40).
    bundle_long_poll_seconds: LongPollSeconds = 20
    # Ed25519 private key (PEM) signing the audit trail's checkpoints; empty:
    # the chain is sealed but not signed. Its directory also holds the
    # witness of the last signed heads.
    audit_signing_key_file: str = ""
    # Public keys (PEM files) of retired signing keys: checkpoints they signed
    # still verify after a rotation, and exports name them.
    audit_trusted_key_files: tuple[str, ...] = ()
    # How often the sealer chains newly committed events (0: not in this
    # process), and how long an org's moved head waits for its next checkpoint.
    audit_seal_interval_seconds: SealSeconds = 0.5
    audit_checkpoint_seconds: CheckpointSeconds = 60.0
    # AES-256 key-encryption key (32 bytes) wrapping the data keys of every org
    # that does not bring its own; retired ones (base64) still unwrap what they
    # wrapped until each org is rewrapped (POST .../key/rewrap).
    kek: bytes = msgspec.field(default=b"")
    kek_retired: tuple[str, ...] = ()
    # How long an unwrapped data key is kept (0: never); revoking ARX's access
    # to an org's KMS key takes effect within it.
    data_key_cache_seconds: Annotated[float, msgspec.Meta(ge=0, le=3600)] = 300.0
    # Orgs' own keys (arx.vault.kms). AWS (opt-in: ARX would otherwise offer
    # the host's instance role to every org): the standard credential chain,
    # and an endpoint for a local KMS (tests). Azure: ARX's Entra application; an
    # endpoint every vault's requests go to instead (tests, emulators).
    # Google: ARX's service account key file; the Cloud KMS endpoint.
    aws_kms: bool = False
    aws_kms_endpoint_url: str | None = None
    azure_tenant_id: str | None = None
    azure_client_id: str | None = None
    azure_client_secret: str | None = None
    azure_authority_url: str = "https://login.microsoftonline.com"
    azure_key_vault_endpoint: str | None = None
    gcp_credentials_file: str | None = None
    gcp_kms_endpoint: str = "https://cloudkms.googleapis.com"
    # Creates the first org and its owner, and nothing else: refused once any
    # owner exists. Empty: bootstrap through `arx bootstrap` is disabled.
    bootstrap_token: str = ""
    # ARX's own public URL (OIDC redirect URI, SAML ACS and entity id).
    public_url: str = "http://127.0.0.1:8000"
    # The session cookie carries Secure unless this is off (the local demo on http).
    cookie_secure: bool = True
    session_ttl_seconds: SessionSeconds = 8 * 3600
    # OpenID Connect: sign-in for web pages and bearer JWTs for the admin API.
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: str = ""
    # The `aud` an admin-API access token must carry. Never the client id: an
    # id_token (whose aud is the client id) must not pass as an access token.
    # Default: ARX's admin API URL, <public_url>/v1/admin.
    oidc_audience: str = ""
    # SAML 2.0: the IdP's metadata document (a file path).
    saml_idp_metadata_file: str = ""
    # Client addresses: X-Forwarded-For is believed only from these peers.
    trusted_proxies: tuple[str, ...] = ()
    # A rotated agent key or admin token keeps working this long by default.
    key_rotation_overlap_seconds: OverlapSeconds = 24 * 3600
    # The whole execute, tool call included, answers within this; its bound
    # keeps it under half of IDEMPOTENCY_ABANDONED_AFTER_SECONDS.
    execute_deadline_seconds: Seconds120 = 30.0
    opa_timeout_seconds: Seconds30 = 2.0
    connector_timeout_seconds: Seconds120 = 15.0
    # How long a request may wait for a pooled connection before a 503.
    db_pool_wait_seconds: Seconds30 = 3.0
    # Server-side bounds for the app role's sessions (also set on the role).
    db_statement_timeout_seconds: Seconds300 = 5.0
    db_idle_in_transaction_timeout_seconds: Seconds300 = 10.0
    max_body_bytes: BodyBytes = DEFAULT_MAX_BODY_BYTES
    # The largest tool answer ARX reads; a bigger one is a 502 and is not stored.
    max_tool_response_bytes: ToolBytes = 1024 * 1024
    db_pool_min: PoolSize = 2
    db_pool_max: PoolSize = 10
    approval_ttl_seconds: ApprovalSeconds = 3600
    # How long an escalated execute is held for reviewers before it answers
    # 202, unless the agent asks otherwise (Prefer: wait=N); 0 answers at once.
    execute_approval_wait_seconds: HoldSeconds = 0
    # How many of the agent's latest decisions the policy input lists one by
    # one (counts over time windows come on top, whatever this is).
    session_recent: RecentCount = 10
    # How long a resolved API key (or an unknown one) is remembered.
    auth_cache_seconds: Seconds60 = 5.0
    # Result events that cannot reach PostgreSQL wait here, fsync'ed, and are
    # replayed into the audit trail when it is back.
    spool_dir: str = ".arx/spool"
    log_level: str = "INFO"
    # Notification webhooks may be plain http on loopback (tests, the demo).
    allow_insecure_connector_urls: bool = False
    # The orgs (slugs; "*": every org, for development) whose connectors may
    # call a sandbox on this host's loopback, over http too. The operator's
    # decision, never an org admin's: loopback is this host's own services.
    sandbox_orgs: tuple[str, ...] = ()
    # Reviewer notifications (arx.approvals.notify): Slack's Web API (tests
    # point it at a local receiver), each delivery's timeout, how many
    # attempts a message gets (with exponential backoff and jitter from
    # notify_backoff_seconds) and how often due retries are looked for.
    slack_api_url: str = "https://slack.com/api"
    notify_timeout_seconds: Seconds30 = 10.0
    notify_max_attempts: Attempts = 8
    notify_backoff_seconds: Seconds300 = 5.0
    notify_poll_seconds: Seconds300 = 5.0
    # Tests only: see KILL_AFTER_DECISION. Empty: no fault.
    test_fault: Literal["", "kill-after-decision"] = ""

    @property
    def oidc_admin_audience(self) -> str:
        return self.oidc_audience or f"{self.public_url}/v1/admin"

    def __repr__(self) -> str:
        # Never let the KEK, the admin token or a DB password reach a log line.
        return "Settings(<redacted>)"

    __str__ = __repr__


# Environment variable -> Settings field, for the fields read as plain values.
_PLAIN = {
    "ARX_CONTROL_DATABASE_URL": "control_database_url",
    "ARX_ADMIN_DATABASE_URL": "admin_database_url",
    "ARX_APP_DB_PASSWORD": "app_db_password",
    "ARX_CONTROL_DB_PASSWORD": "control_db_password",
    "ARX_OPA_URL": "opa_url",
    "ARX_OPA_TOKEN": "opa_token",
    "ARX_OPA_BINARY": "opa_binary",
    "ARX_POLICY_BASE_DIR": "policy_base_dir",
    "ARX_BUNDLE_SIGNING_KEY_FILE": "bundle_signing_key_file",
    "ARX_MAX_BUNDLE_BYTES": "max_bundle_bytes",
    "ARX_BUNDLE_LONG_POLL_SECONDS": "bundle_long_poll_seconds",
    "ARX_AUDIT_SIGNING_KEY_FILE": "audit_signing_key_file",
    "ARX_AUDIT_SEAL_INTERVAL_SECONDS": "audit_seal_interval_seconds",
    "ARX_AUDIT_CHECKPOINT_SECONDS": "audit_checkpoint_seconds",
    "ARX_BOOTSTRAP_TOKEN": "bootstrap_token",
    "ARX_PUBLIC_URL": "public_url",
    "ARX_SESSION_TTL_SECONDS": "session_ttl_seconds",
    "ARX_OIDC_ISSUER": "oidc_issuer",
    "ARX_OIDC_CLIENT_ID": "oidc_client_id",
    "ARX_OIDC_CLIENT_SECRET": "oidc_client_secret",
    "ARX_OIDC_AUDIENCE": "oidc_audience",
    "ARX_SAML_IDP_METADATA_FILE": "saml_idp_metadata_file",
    "ARX_KEY_ROTATION_OVERLAP_SECONDS": "key_rotation_overlap_seconds",
    "ARX_EXECUTE_DEADLINE_SECONDS": "execute_deadline_seconds",
    "ARX_OPA_TIMEOUT_SECONDS": "opa_timeout_seconds",
    "ARX_CONNECTOR_TIMEOUT_SECONDS": "connector_timeout_seconds",
    "ARX_DB_POOL_WAIT_SECONDS": "db_pool_wait_seconds",
    "ARX_DB_STATEMENT_TIMEOUT_SECONDS": "db_statement_timeout_seconds",
    "ARX_DB_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS": "db_idle_in_transaction_timeout_seconds",
    "ARX_MAX_BODY_BYTES": "max_body_bytes",
    "ARX_MAX_TOOL_RESPONSE_BYTES": "max_tool_response_bytes",
    "ARX_DB_POOL_MIN": "db_pool_min",
    "ARX_DB_POOL_MAX": "db_pool_max",
    "ARX_APPROVAL_TTL_SECONDS": "approval_ttl_seconds",
    "ARX_EXECUTE_APPROVAL_WAIT_SECONDS": "execute_approval_wait_seconds",
    "ARX_SESSION_RECENT": "session_recent",
    "ARX_AUTH_CACHE_SECONDS": "auth_cache_seconds",
    "ARX_SPOOL_DIR": "spool_dir",
    "ARX_LOG_LEVEL": "log_level",
    "ARX_SLACK_API_URL": "slack_api_url",
    "ARX_NOTIFY_TIMEOUT_SECONDS": "notify_timeout_seconds",
    "ARX_NOTIFY_MAX_ATTEMPTS": "notify_max_attempts",
    "ARX_NOTIFY_BACKOFF_SECONDS": "notify_backoff_seconds",
    "ARX_NOTIFY_POLL_SECONDS": "notify_poll_seconds",
    "ARX_TEST_FAULT": "test_fault",
    "ARX_DATA_KEY_CACHE_SECONDS": "data_key_cache_seconds",
    "ARX_AWS_KMS_ENDPOINT_URL": "aws_kms_endpoint_url",
    "ARX_AWS_KMS": "aws_kms",
    "ARX_AZURE_TENANT_ID": "azure_tenant_id",
    "ARX_AZURE_CLIENT_ID": "azure_client_id",
    "ARX_AZURE_CLIENT_SECRET": "azure_client_secret",
    "ARX_AZURE_AUTHORITY_URL": "azure_authority_url",
    "ARX_AZURE_KEY_VAULT_ENDPOINT": "azure_key_vault_endpoint",
    "ARX_GCP_CREDENTIALS_FILE": "gcp_credentials_file",
    "ARX_GCP_KMS_ENDPOINT": "gcp_kms_endpoint",
}
_FIELD_TO_ENV = {field: env for env, field in _PLAIN.items()}


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
    return _kek_bytes(raw, "ARX_KEK")


def _kek_bytes(raw: str, name: str) -> bytes:
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{name} must be base64 of 32 random bytes") from None
    if len(key) != 32:
        raise ConfigError(f"{name} must decode to exactly 32 bytes (AES-256)")
    return key


def sandbox_enabled(settings: Settings, org_slug: str) -> bool:
    """May ``org_slug``'s connectors call a sandbox on loopback (ARX_SANDBOX_ORGS)?"""
    return "*" in settings.sandbox_orgs or org_slug in settings.sandbox_orgs


def _lists(env: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
    """The comma-separated settings that are set."""
    lists = {}
    if env.get("ARX_AUDIT_TRUSTED_KEY_FILES"):
        files = env["ARX_AUDIT_TRUSTED_KEY_FILES"].split(",")
        lists["audit_trusted_key_files"] = tuple(f.strip() for f in files if f.strip())
    if env.get("ARX_KEK_RETIRED"):
        retired = tuple(k.strip() for k in env["ARX_KEK_RETIRED"].split(",") if k.strip())
        for key in retired:
            _kek_bytes(key, "ARX_KEK_RETIRED")
        lists["kek_retired"] = retired
    if env.get("ARX_SANDBOX_ORGS"):
        slugs = (s.strip() for s in env["ARX_SANDBOX_ORGS"].split(","))
        lists["sandbox_orgs"] = tuple(s for s in slugs if s)
    if env.get("ARX_TRUSTED_PROXIES"):
        lists["trusted_proxies"] = _trusted_proxies(env["ARX_TRUSTED_PROXIES"])
    return lists


def _trusted_proxies(value: str) -> tuple[str, ...]:
    """``ARX_TRUSTED_PROXIES``: comma-separated addresses or CIDR networks."""
    networks = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ConfigError(
                f"ARX_TRUSTED_PROXIES: {item!r} is not an address or network"
            ) from None
    return tuple(networks)


def _problem(exc: msgspec.ValidationError) -> str:
    """Name the environment variable a validation error points at."""
    message = str(exc)
    for field, env in _FIELD_TO_ENV.items():
        if f"`$.{field}`" in message:
            return f"{env}: {message.split(' - at ', 1)[0]}"
    return message


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    url = env.get("ARX_DATABASE_URL")
    if not url:
        raise ConfigError("ARX_DATABASE_URL is not set")
    raw: dict[str, Any] = {"database_url": url, "kek": _load_kek(env)}
    for name, field in _PLAIN.items():
        value = env.get(name)
        if value:
            raw[field] = value
    for url in ("opa_url", "slack_api_url"):
        if url in raw:
            raw[url] = raw[url].rstrip("/")
    if "log_level" in raw:
        raw["log_level"] = raw["log_level"].upper()
    raw["allow_insecure_connector_urls"] = _bool(env.get("ARX_ALLOW_INSECURE_CONNECTOR_URLS", ""))
    if env.get("ARX_COOKIE_SECURE"):
        raw["cookie_secure"] = _bool(env["ARX_COOKIE_SECURE"])
    raw.update(_lists(env))
    if "public_url" in raw:
        raw["public_url"] = raw["public_url"].rstrip("/")
    try:
        settings = msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"invalid ARX_* setting: {_problem(exc)}") from None
    if settings.oidc_issuer and settings.oidc_admin_audience == settings.oidc_client_id:
        raise ConfigError(
            "ARX_OIDC_AUDIENCE must differ from ARX_OIDC_CLIENT_ID (an id_token would pass "
            "as an access token)"
        )
    if settings.db_pool_min > settings.db_pool_max:
        raise ConfigError("ARX_DB_POOL_MIN must not exceed ARX_DB_POOL_MAX")
    _check_test_fault(env, settings)
    _check_slack_api_url(settings)
    return settings


def _check_test_fault(env: Mapping[str, str], settings: Settings) -> None:
    """A fault is armed only with its acknowledgement, and the acknowledgement
    is refused without a fault: neither can be left set by accident."""
    allowed = env.get("ARX_TEST_FAULTS_ALLOWED", "")
    if settings.test_fault and allowed != TEST_FAULTS_ACK:
        raise ConfigError(
            "ARX_TEST_FAULT makes the API kill itself and exists for tests only; it is "
            f"refused unless ARX_TEST_FAULTS_ALLOWED={TEST_FAULTS_ACK}"
        )
    if allowed and not settings.test_fault:
        raise ConfigError(
            "ARX_TEST_FAULTS_ALLOWED is set but ARX_TEST_FAULT is not: remove it (tests only)"
        )


def _check_slack_api_url(settings: Settings) -> None:
    """The bot token travels to it: https, unless insecure URLs are allowed (tests)."""
    schemes = ("https", "http") if settings.allow_insecure_connector_urls else ("https",)
    try:
        slack_api = urlsplit(settings.slack_api_url)
        usable = slack_api.scheme in schemes and bool(slack_api.hostname)
    except ValueError:
        usable = False
    if not usable:
        raise ConfigError(
            "ARX_SLACK_API_URL must be an https URL (plain http only with "
            "ARX_ALLOW_INSECURE_CONNECTOR_URLS)"
        )
