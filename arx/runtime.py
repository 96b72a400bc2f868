"""The long-lived services one API process shares across requests.

Built once at start-up (and torn down at shutdown), in one place: the
database pool, the OPA client, the vault with its key provider, the audit
trail with its spool (and the task that replays it), one connector instance
per registered connector (they hold per-credential token caches) on a shared
HTTP client, and the intercept that drives them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from psycopg_pool import AsyncConnectionPool

from arx.audit.spool import ResultSpool
from arx.audit.trail import Trail
from arx.config import Settings
from arx.connectors import catalog
from arx.connectors.http import AiohttpTransport, ToolClient
from arx.db.pool import Conn, create_pool
from arx.idempotency.service import IdempotencyKeys
from arx.identity.auth import Authenticator
from arx.intercept.service import Intercept
from arx.logs import get_logger
from arx.policy.client import PolicyClient
from arx.vault.keys import LocalKeyProvider
from arx.vault.service import Vault

log = get_logger("arx.runtime")

# How often spooled result events are offered to the database again.
SPOOL_REPLAY_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    pool: AsyncConnectionPool[Conn]
    policy: PolicyClient
    vault: Vault
    auth: Authenticator
    trail: Trail
    idempotency: IdempotencyKeys
    intercept: Intercept


async def _replay_spool(trail: Trail) -> None:
    while True:
        try:
            replayed = await trail.replay_spool()
            if replayed:
                log.info("spooled result events written to the audit trail", extra={"n": replayed})
        except Exception as exc:  # the loop must outlive any one failure
            log.error("spool replay failed", extra={"exc_type": type(exc).__name__})
        await asyncio.sleep(SPOOL_REPLAY_SECONDS)


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
        or AiohttpTransport(max_response_bytes=settings.max_tool_response_bytes),
        follow_redirects=False,
    )
    policy = PolicyClient(settings.opa_url, timeout_seconds=settings.opa_timeout_seconds)
    vault = Vault(LocalKeyProvider(settings.kek))
    trail = Trail(
        pool,
        ResultSpool(Path(settings.spool_dir)),
        pool_wait=settings.db_pool_wait_seconds,
        session_recent=settings.session_recent,
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
    )
    replayer = asyncio.create_task(_replay_spool(trail))
    try:
        yield runtime
    finally:
        replayer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await replayer
        await policy.aclose()
        await connector_http.aclose()
        await pool.close()
