"""The long-lived services one API process shares across requests.

Built once at start-up (and torn down at shutdown), in one place: the
database pool, the OPA client, the vault with its key provider, the audit
trail with its spool (and the task that replays it), one connector instance
per registered connector (they hold per-credential token caches) on a shared
HTTP client, the intercept that drives them, and (with a control plane) the
worker that notifies reviewers of approval requests.
"""

from __future__ import annotations

import asyncio
import base64
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from psycopg_pool import AsyncConnectionPool

from arx.approvals import expiry
from arx.approvals.notify.worker import NOTIFY_CHANNEL, NotificationWorker
from arx.approvals.waiters import ApprovalWaiters
from arx.audit import partitions
from arx.audit.checkpoints import Signer, load_public, load_signer
from arx.audit.refusals import Refusals
from arx.audit.sealer import Sealer
from arx.audit.spool import ResultSpool
from arx.audit.trail import Trail
from arx.config import ConfigError, Settings
from arx.connectors import catalog
from arx.connectors.http import AiohttpTransport, ToolClient
from arx.db.notify import Notifications
from arx.db.pool import Conn, create_pool
from arx.errors import ControlPlaneDisabledError
from arx.idempotency.service import IdempotencyKeys
from arx.identity.auth import Authenticator
from arx.identity.control import ControlPlane
from arx.identity.network import Network, parse_networks
from arx.identity.oidc import OIDCClient, OIDCConfig
from arx.identity.repo import AUTH_CHANNEL
from arx.identity.saml import SamlConfig, SamlServiceProvider
from arx.intercept.service import Intercept
from arx.logs import get_logger
from arx.policy.client import PolicyClient
from arx.policy.lifecycle.distribution import CHANNEL as POLICY_CHANNEL
from arx.policy.lifecycle.distribution import Distribution
from arx.policy.lifecycle.toolchain import Toolchain
from arx.vault.destination import LOOPBACK_NAMES
from arx.vault.keyring import KeyRing
from arx.vault.kms.aws import AwsKms
from arx.vault.kms.azure import AzureKeyVault
from arx.vault.kms.gcp import GcpKms, load_service_account
from arx.vault.secret import Secret
from arx.vault.service import Vault

log = get_logger("arx.runtime")

APPROVALS_CHANNEL = "arx_approvals"

# The base policy library, beside the arx package (the image copies it there too).
BASE_LIBRARY = Path(__file__).resolve().parents[1] / "rego"

# How long shutting down waits for each background task to stop.
STOP_SECONDS = 5.0

# How often spooled result events are offered to the database again.
SPOOL_REPLAY_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    # The agent path's pool (arx_app).
    pool: AsyncConnectionPool[Conn]
    policy: PolicyClient
    vault: Vault
    auth: Authenticator
    trail: Trail
    idempotency: IdempotencyKeys
    intercept: Intercept
    refusals: Refusals
    waiters: ApprovalWaiters
    # The control plane (arx_control); None when this process serves agents only.
    control: ControlPlane | None
    trusted_proxies: tuple[Network, ...]
    http: httpx.AsyncClient  # for identity providers
    oidc: OIDCClient | None
    saml: SamlServiceProvider | None
    # ARX's own opa, for pushes and replays.
    toolchain: Toolchain
    # The bundle service; None unless a signing key is configured.
    distribution: Distribution | None = None
    # Chains and signs the audit trail (None without a control plane).
    sealer: Sealer | None = None
    audit_signer: Signer | None = None
    # Retired signing keys' public halves (ARX_AUDIT_TRUSTED_KEY_FILES).
    audit_retired_keys: tuple[Ed25519PublicKey, ...] = ()
    # Reads of the trail that may be long or many (exports, follow polls) share
    # these slots: the control pool has 4 connections, and the sealer and the
    # admin API need theirs.
    audit_reads: anyio.CapacityLimiter = field(default_factory=lambda: anyio.CapacityLimiter(2))

    def control_plane(self) -> ControlPlane:
        if self.control is None:
            raise ControlPlaneDisabledError(
                "this ARX process serves agents only (ARX_CONTROL_DATABASE_URL is not set)"
            )
        return self.control

    @property
    def control_pool(self) -> AsyncConnectionPool[Conn]:
        return self.control_plane().pool


async def _replay_spool(trail: Trail) -> None:
    while True:
        try:
            replayed = await trail.replay_spool()
            if replayed:
                log.info("spooled result events written to the audit trail", extra={"n": replayed})
        except Exception as exc:  # the loop must outlive any one failure
            log.error("spool replay failed", extra={"exc_type": type(exc).__name__})
        await asyncio.sleep(SPOOL_REPLAY_SECONDS)


def oidc_client(settings: Settings, http: httpx.AsyncClient) -> OIDCClient | None:
    if not settings.oidc_issuer:
        return None
    return OIDCClient(
        OIDCConfig(
            issuer=settings.oidc_issuer,
            client_id=settings.oidc_client_id,
            client_secret=settings.oidc_client_secret,
            redirect_uri=f"{settings.public_url}/auth/oidc/callback",
            audience=settings.oidc_admin_audience,
        ),
        http,
    )


def witness_path(settings: Settings) -> Path | None:
    """Beside the audit signing key: the last heads this host signed."""
    if not settings.audit_signing_key_file:
        return None
    return Path(settings.audit_signing_key_file).with_name("audit-witness.json")


def retired_audit_keys(settings: Settings) -> tuple[Ed25519PublicKey, ...]:
    """The public keys of retired audit signing keys; a file that is not one
    stops the start (verify would otherwise call their checkpoints forged)."""
    keys = []
    for name in settings.audit_trusted_key_files:
        try:
            keys.append(load_public(Path(name).read_bytes()))
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"ARX_AUDIT_TRUSTED_KEY_FILES: {name} is not an Ed25519 public key ({exc})"
            ) from None
    return tuple(keys)


def policy_toolchain(settings: Settings) -> Toolchain:
    base = Path(settings.policy_base_dir) if settings.policy_base_dir else BASE_LIBRARY
    key = Path(settings.bundle_signing_key_file) if settings.bundle_signing_key_file else None
    return Toolchain(Path(settings.opa_binary), base.resolve(), signing_key=key)


def saml_provider(settings: Settings) -> SamlServiceProvider | None:
    if not settings.saml_idp_metadata_file:
        return None
    try:
        metadata = Path(settings.saml_idp_metadata_file).read_text()
    except OSError as exc:
        raise ConfigError(f"ARX_SAML_IDP_METADATA_FILE cannot be read: {exc.strerror}") from None
    return SamlServiceProvider(
        SamlConfig(
            sp_entity_id=f"{settings.public_url}/auth/saml/metadata",
            acs_url=f"{settings.public_url}/auth/saml/acs",
            idp_metadata_xml=metadata,
        ),
        state_dir=tempfile.gettempdir(),
    )


def key_ring(settings: Settings, http: httpx.AsyncClient) -> KeyRing:
    """ARX's own keys, and its identities at the KMSs orgs may bring keys in."""
    azure = None
    if settings.azure_tenant_id and settings.azure_client_id and settings.azure_client_secret:
        azure = AzureKeyVault(
            http,
            tenant_id=settings.azure_tenant_id,
            client_id=settings.azure_client_id,
            client_secret=Secret(settings.azure_client_secret),
            authority=settings.azure_authority_url,
            endpoint=settings.azure_key_vault_endpoint,
        )
    gcp = None
    if settings.gcp_credentials_file:
        try:
            account = load_service_account(settings.gcp_credentials_file)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        gcp = GcpKms(http, account, endpoint=settings.gcp_kms_endpoint)
    return KeyRing(
        settings.kek,
        retired=[base64.b64decode(k) for k in settings.kek_retired],
        aws_kms=AwsKms(endpoint_url=settings.aws_kms_endpoint_url) if settings.aws_kms else None,
        azure_kv=azure,
        gcp_kms=gcp,
        cache_seconds=settings.data_key_cache_seconds,
    )


@asynccontextmanager
async def open_runtime(
    settings: Settings,
    *,
    connector_transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncIterator[Runtime]:
    """Open every shared resource; ``connector_transport`` lets tests route
    connector traffic to in-process fake vendor APIs."""
    pool = create_pool(settings)
    # Do not wait for the database: the API must start (and report itself
    # unhealthy) when PostgreSQL is down, answering 503 rather than crashing.
    await pool.open(wait=False)
    connector_http = ToolClient(
        timeout=httpx.Timeout(
            settings.connector_timeout_seconds,
            connect=min(5.0, settings.connector_timeout_seconds),
        ),
        transport=connector_transport
        or AiohttpTransport(
            max_response_bytes=settings.max_tool_response_bytes,
            # A sandbox may answer on localhost; any other name must be public.
            loopback_names=LOOPBACK_NAMES if settings.sandbox_orgs else frozenset(),
        ),
        follow_redirects=False,
    )
    policy = PolicyClient(
        settings.opa_url, timeout_seconds=settings.opa_timeout_seconds, token=settings.opa_token
    )
    control_pool = None
    if settings.control_database_url:
        # Small: administration is rare next to agents' calls.
        control_pool = create_pool(
            settings, url=settings.control_database_url, name="arx-control", max_size=4
        )
        await control_pool.open(wait=False)
    http = httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=5.0), follow_redirects=False)
    oidc = oidc_client(settings, http)
    vault = Vault(key_ring(settings, http))
    trail = Trail(
        pool,
        ResultSpool(Path(settings.spool_dir)),
        pool_wait=settings.db_pool_wait_seconds,
        session_recent=settings.session_recent,
    )
    toolchain = policy_toolchain(settings)
    distribution = None
    if settings.bundle_signing_key_file and control_pool is not None:
        distribution = Distribution(
            control_pool, toolchain, long_poll_seconds=settings.bundle_long_poll_seconds
        )
        # Fail at start-up, not at a sidecar's first request: the base
        # library must build and sign with this key and this opa.
        await distribution.start()
    audit_signer = (
        load_signer(Path(settings.audit_signing_key_file))
        if settings.audit_signing_key_file
        else None
    )
    retired = retired_audit_keys(settings)
    sealer = (
        Sealer(
            control_pool,
            signer=audit_signer,
            witness=witness_path(settings),
            interval_seconds=settings.audit_seal_interval_seconds,
            checkpoint_seconds=settings.audit_checkpoint_seconds,
        )
        if control_pool is not None
        else None
    )
    runtime = Runtime(
        settings=settings,
        pool=pool,
        policy=policy,
        vault=vault,
        auth=Authenticator(
            pool,
            ttl_seconds=settings.auth_cache_seconds,
            # Half the pool at most: unknown keys cannot starve known agents.
            max_lookups=settings.db_pool_max // 2,
            pool_wait=settings.db_pool_wait_seconds,
        ),
        idempotency=IdempotencyKeys(pool, pool_wait=settings.db_pool_wait_seconds),
        trail=trail,
        intercept=Intercept(
            settings=settings,
            trail=trail,
            policy=policy,
            vault=vault,
            connectors={cid: cls(connector_http) for cid, cls in catalog.connectors().items()},
        ),
        control=ControlPlane(control_pool, bootstrap_token=settings.bootstrap_token, oidc=oidc)
        if control_pool is not None
        else None,
        refusals=Refusals(pool, pool_wait=settings.db_pool_wait_seconds),
        waiters=ApprovalWaiters(),
        trusted_proxies=parse_networks(settings.trusted_proxies),
        http=http,
        oidc=oidc,
        saml=saml_provider(settings),
        toolchain=toolchain,
        distribution=distribution,
        sealer=sealer,
        audit_signer=audit_signer,
        audit_retired_keys=retired,
    )
    notifications = Notifications(settings.database_url)
    notifications.subscribe(AUTH_CHANNEL, runtime.auth.forget, runtime.auth.forget_all)
    notifications.subscribe(APPROVALS_CHANNEL, runtime.waiters.notified, runtime.waiters.wake_all)
    # Reviewer notifications are control-plane work: a process that serves
    # agents only leaves its queue to the processes that have a control plane.
    worker = (
        NotificationWorker(control_pool, vault, http, settings)
        if control_pool is not None
        else None
    )
    if worker is not None:
        notifications.subscribe(NOTIFY_CHANNEL, worker.notified, worker.wake)
    if distribution is not None:
        notifications.subscribe(POLICY_CHANNEL, distribution.notified, distribution.notified)
    tasks = [
        asyncio.create_task(_replay_spool(trail)),
        asyncio.create_task(notifications.run()),
        asyncio.create_task(runtime.auth.touch_forever()),
        *([asyncio.create_task(expiry.sweep_forever(control_pool))] if control_pool else []),
        *([asyncio.create_task(partitions.ensure_forever(control_pool))] if control_pool else []),
        *([asyncio.create_task(worker.run())] if worker is not None else []),
        *([asyncio.create_task(distribution.follow_forever())] if distribution else []),
        *(
            [asyncio.create_task(sealer.run_forever())]
            if sealer is not None and settings.audit_seal_interval_seconds > 0
            else []
        ),
    ]
    try:
        yield runtime
    finally:
        for task in tasks:
            task.cancel()
        # A background task stuck past its cancellation (a query the server
        # never answers) must not keep the process from stopping.
        _, stuck = await asyncio.wait(tasks, timeout=STOP_SECONDS)
        for task in stuck:
            log.warning("a background task did not stop", extra={"task": task.get_name()})
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                log.error(
                    "a background task had failed",
                    extra={"exc_type": type(task.exception()).__name__},
                )
        if distribution is not None:
            await distribution.aclose()
        await policy.aclose()
        await connector_http.aclose()
        await http.aclose()
        if control_pool is not None:
            await control_pool.close()
        await pool.close()
