"""Pushing, activating and rolling back an org's policy bundles.

Guarantees:
- a bundle is stored only after ARX's own ``opa`` accepted it (roots exactly
  ``orgs/<slug>``, strict compile with the base library, bundle build, the
  org document valid as a whole, the bundle's tests); a refusal quotes OPA;
- a revision is ``<slug>-<12 hex of the archive's sha256>``: the same archive
  pushed twice is the same revision (the second push changes nothing);
- an activation builds the bundle with its revision and signs it with ARX's
  key (outside the database) before anything is written; the signed bytes,
  the activation row and its ``admin`` audit event commit together, and the
  commit wakes every sidecar (NOTIFY arx_policy);
- a rollback is an activation of an earlier revision, recorded as one: the
  history is append-only.
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
from pathlib import Path
from uuid import UUID

import msgspec
from psycopg_pool import AsyncConnectionPool

from arx.audit.service import record_admin_event
from arx.db.pool import Conn, fetch_all, fetch_dict, org_transaction
from arx.errors import ConflictError, NotFoundError
from arx.identity.orgs import require_org
from arx.identity.principal import Access
from arx.policy.lifecycle import archive, repo
from arx.policy.lifecycle.toolchain import Toolchain
from arx.policy.lifecycle.types import Activation, BundleInfo, PolicyStatus, Pushed

HISTORY_LIMIT = 50


async def _slug(conn: Conn, org_id: UUID) -> str:
    row = await fetch_dict(conn, repo.ORG_SLUG, {"org_id": org_id})
    if row is None:
        raise NotFoundError(f"no org {org_id}")
    return str(row["slug"])


async def org_slug(pool: AsyncConnectionPool[Conn], org_id: UUID) -> str:
    async with org_transaction(pool, org_id) as conn:
        return await _slug(conn, org_id)


def revision_for(slug: str, sha256: str) -> str:
    return f"{slug}-{sha256[:12]}"


async def push(
    pool: AsyncConnectionPool[Conn],
    toolchain: Toolchain,
    access: Access,
    data: bytes,
    *,
    description: str | None = None,
) -> Pushed:
    """Vet the archive ``data`` with the real ``opa`` and store it."""
    org_id = access.org_id
    slug = await org_slug(pool, org_id)
    sha256 = hashlib.sha256(data).hexdigest()
    revision = revision_for(slug, sha256)
    with tempfile.TemporaryDirectory(prefix="arx-push-") as tmp:
        source = Path(tmp) / "bundle"
        source.mkdir()
        await asyncio.to_thread(archive.unpack, data, source)
        vetted = await toolchain.vet(source, slug)
    async with org_transaction(pool, org_id) as conn:
        await require_org(conn, org_id)
        cur = await conn.execute(
            repo.INSERT_BUNDLE,
            {
                "org_id": org_id,
                "revision": revision,
                "sha256": sha256,
                "source": data,
                "tests_passed": vetted.tests_passed,
                "description": description,
                "uploaded_by": access.actor,
            },
        )
        created = cur.rowcount == 1
        if created:
            await record_admin_event(
                conn,
                org_id,
                action="policy.bundle_pushed",
                actor=access.actor,
                details={
                    "revision": revision,
                    "sha256": sha256,
                    "size_bytes": len(data),
                    "tests_passed": vetted.tests_passed,
                    "description": description,
                },
            )
        info = await _bundle(conn, revision)
    return Pushed(bundle=info, created=created)


async def _bundle(conn: Conn, revision: str) -> BundleInfo:
    rows = await fetch_all(conn, repo.BUNDLE, {"revision": revision}, BundleInfo)
    if not rows:
        raise NotFoundError(f"no bundle {revision!r} in this org")
    return rows[0]


async def _history(conn: Conn, limit: int = HISTORY_LIMIT) -> list[Activation]:
    return await fetch_all(conn, repo.HISTORY, {"limit": limit}, Activation)


async def status(pool: AsyncConnectionPool[Conn], org_id: UUID) -> PolicyStatus:
    async with org_transaction(pool, org_id) as conn:
        slug = await _slug(conn, org_id)
        history = await _history(conn)
    return PolicyStatus(org_slug=slug, active=history[0] if history else None, history=history)


async def bundles(pool: AsyncConnectionPool[Conn], org_id: UUID) -> list[BundleInfo]:
    async with org_transaction(pool, org_id) as conn:
        await require_org(conn, org_id)
        found = await fetch_all(conn, repo.BUNDLES, None, BundleInfo)
        history = await _history(conn, 1)
    active = history[0].revision if history else None
    return [_marked(b, active) for b in found]


def _marked(info: BundleInfo, active: str | None) -> BundleInfo:
    if info.revision != active:
        return info
    return msgspec.structs.replace(info, active=True)


async def activate(
    pool: AsyncConnectionPool[Conn],
    toolchain: Toolchain,
    access: Access,
    revision: str,
) -> Activation:
    """Make ``revision`` the org's active bundle."""
    return await _switch(pool, toolchain, access, revision, action="activate")


async def rollback(
    pool: AsyncConnectionPool[Conn],
    toolchain: Toolchain,
    access: Access,
    to: str | None,
) -> Activation:
    """Go back to ``to``, or to the revision active before the current one."""
    if to is None:
        async with org_transaction(pool, access.org_id) as conn:
            await require_org(conn, access.org_id)
            history = await _history(conn)
        if not history:
            raise ConflictError("nothing to roll back: no bundle was ever activated")
        current = history[0].revision
        earlier = next((a.revision for a in history if a.revision != current), None)
        if earlier is None:
            raise ConflictError(
                f"nothing to roll back to: {current} is the only revision ever activated"
            )
        to = earlier
    return await _switch(pool, toolchain, access, to, action="rollback")


async def _switch(
    pool: AsyncConnectionPool[Conn],
    toolchain: Toolchain,
    access: Access,
    revision: str,
    *,
    action: str,
) -> Activation:
    org_id = access.org_id
    async with org_transaction(pool, org_id) as conn:
        await require_org(conn, org_id)
        row = await fetch_dict(conn, repo.BUNDLE_SOURCE, {"revision": revision})
    if row is None:
        raise NotFoundError(f"no bundle {revision!r} in this org: push it first")
    # Built and signed before the transaction: no connection is held while
    # opa runs, and a failure writes nothing.
    with tempfile.TemporaryDirectory(prefix="arx-activate-") as tmp:
        source = Path(tmp) / "bundle"
        source.mkdir()
        await asyncio.to_thread(archive.unpack, bytes(row["source"]), source)
        signed = await toolchain.build(
            source, Path(tmp) / "signed.tar.gz", revision=revision, sign=True
        )
    etag = hashlib.sha256(signed).hexdigest()
    async with org_transaction(pool, org_id) as conn:
        await conn.execute(repo.LOCK_ORG, {"org_id": org_id})
        history = await _history(conn, 1)
        previous = history[0].revision if history else None
        if previous == revision:
            raise ConflictError(f"{revision} is already the active bundle")
        inserted = await fetch_dict(
            conn,
            repo.INSERT_ACTIVATION,
            {
                "org_id": org_id,
                "revision": revision,
                "action": action,
                "bundle": signed,
                "etag": etag,
                "activated_by": access.actor,
            },
        )
        activation = msgspec.convert(inserted, Activation)
        await record_admin_event(
            conn,
            org_id,
            action="policy.activated" if action == "activate" else "policy.rolled_back",
            actor=access.actor,
            details={"revision": revision, "previous": previous, "etag": etag},
        )
    return activation
