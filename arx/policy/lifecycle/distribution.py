"""The bundle service: what ARX serves its OPA sidecars (OPA's Bundle Service API).

Three kinds of signed bundle, all built by ARX's own ``opa`` and signed with
its key:
- ``discovery``: the sidecar's configuration (``opa/config.yaml`` points
  OPA at it). It lists one bundle per org with an active revision, plus the
  base library, so a new org is served without touching any sidecar;
- ``bundles/arx-base``: the base library (``rego/``), built at start-up;
- ``bundles/orgs/<slug>``: the org's active bundle, as its activation stored it.

Each answer carries an ``ETag`` (the bundle's sha256). A sidecar that sends it
back (``If-None-Match``) with ``Prefer: wait=N`` is held until that bundle
changes, or answered 304 after N seconds (capped): long polling, which OPA
uses only when answered with ``application/vnd.openpolicyagent.bundles``. An
activation commits a NOTIFY, every API process refreshes what it serves, and
the held requests answer at once: a new revision reaches each sidecar within a
round trip. Each org is its own bundle, so OPA activates (or refuses, keeping
the last good one) each on its own: one org's broken or tampered bundle never
touches another's decisions.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from psycopg_pool import AsyncConnectionPool

from arx.db.pool import Conn, connection, fetch_dict
from arx.errors import NotFoundError
from arx.logs import get_logger
from arx.policy.lifecycle import repo, signing
from arx.policy.lifecycle.toolchain import Toolchain

log = get_logger("arx.policy.distribution")

MEDIA_TYPE = "application/vnd.openpolicyagent.bundles"
BASE_BUNDLE = "arx-base"
SERVICE = "arx"
CHANNEL = "arx_policy"
# What is active is read again this often even without a NOTIFY.
RESYNC_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class Served:
    name: str
    revision: str
    etag: str
    data: bytes


def _seq(etag: str | None) -> int:
    """The activation seq of an org bundle's ETag (0 for anything else)."""
    head = (etag or "").partition("-")[0]
    return int(head) if head.isdigit() and len(head) < 19 else 0


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def source_revision(source: Path, *, name: str) -> str:
    """``<name>-<12 hex>``: sha256 over the sorted relative paths and bytes of
    ``source`` (test files left out, as they are left out of the bundle);
    each length-prefixed, so no two trees hash alike."""
    digest = hashlib.sha256()
    files = sorted(
        (p.relative_to(source).as_posix(), p)
        for p in source.rglob("*")
        if p.is_file() and not p.name.endswith("_test.rego")
    )
    for relative, path in files:
        for chunk in (relative.encode(), path.read_bytes()):
            digest.update(len(chunk).to_bytes(8, "big"))
            digest.update(chunk)
    return f"{name}-{digest.hexdigest()[:12]}"


def bundle_config(resource: str, long_poll_seconds: int) -> dict[str, Any]:
    return {
        "service": SERVICE,
        "resource": resource,
        "signing": {"keyid": signing.KEY_ID},
        "polling": {"long_polling_timeout_seconds": long_poll_seconds},
    }


class Distribution:
    def __init__(
        self,
        pool: AsyncConnectionPool[Conn],
        toolchain: Toolchain,
        *,
        long_poll_seconds: int = 30,
    ) -> None:
        self._pool = pool
        self._toolchain = toolchain
        self.long_poll_seconds = long_poll_seconds
        self._base: Served | None = None
        self._discovery: Served | None = None
        # slug -> the served ETag of its active bundle: "<activation seq>-<sha256>".
        # The seq orders them: a sidecar that presents a later one than this
        # process knows (it asked another replica) makes it read again, so
        # no process ever hands a sidecar an older revision than it has.
        self._active: dict[str, str] = {}
        self._orgs: dict[str, Served] = {}  # slug -> the bundle last read for it
        self._changed = asyncio.Event()
        self._refreshing: asyncio.Task[None] | None = None
        self._again = False
        self._refreshed_at = 0.0

    async def start(self) -> None:
        """Build and sign the base library, then read what is active."""
        base_dir = self._toolchain.base_dir
        revision = source_revision(base_dir, name=BASE_BUNDLE)
        with tempfile.TemporaryDirectory(prefix="arx-base-") as tmp:
            data = await self._toolchain.build(
                base_dir, Path(tmp) / "base.tar.gz", revision=revision, sign=True
            )
        self._base = Served(BASE_BUNDLE, revision, _digest(data), data)
        await self.refresh()

    # -- following activations -------------------------------------------

    def notified(self, _payload: str = "") -> None:
        """NOTIFY arx_policy (or the listener reconnected): refresh soon."""
        if self._refreshing is not None and not self._refreshing.done():
            self._again = True
            return
        self._refreshing = asyncio.get_running_loop().create_task(self._refresh_loop())

    async def _refresh_loop(self) -> None:
        while True:
            self._again = False
            try:
                await self.refresh()
            except Exception as exc:  # the next notice or poll tries again
                log.warning("bundle service refresh failed", extra={"exc_type": type(exc).__name__})
            if not self._again:
                return

    async def follow_forever(self) -> None:
        """Read what is active every ``RESYNC_SECONDS`` too: a NOTIFY lost
        with a dropped connection is caught up with here."""
        while True:
            await asyncio.sleep(RESYNC_SECONDS)
            self.notified()

    async def _catch_up(self) -> None:
        """Read again, at most once a second (a sidecar knows something newer)."""
        if time.monotonic() - self._refreshed_at >= 1.0:
            await self.refresh()

    async def refresh(self) -> None:
        self._refreshed_at = time.monotonic()
        async with connection(self._pool) as conn:
            cur = await conn.execute(repo.ACTIVE_BUNDLES)
            rows = await cur.fetchall()
        active = {str(r[0]): f"{r[3]}-{r[2]}" for r in rows if str(r[0]) != BASE_BUNDLE}
        if any(str(r[0]) == BASE_BUNDLE for r in rows):
            log.error("an org's slug collides with the base bundle's name; it is not served")
        rebuilt = self._discovery is None or set(active) != set(self._active)
        if rebuilt:
            self._discovery = await self._build_discovery(sorted(active))
        changed = active != self._active
        self._active = active
        if changed or rebuilt:
            self._wake()

    def _wake(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    async def _build_discovery(self, slugs: list[str]) -> Served:
        config = {
            "bundles": {
                BASE_BUNDLE: bundle_config(f"bundles/{BASE_BUNDLE}", self.long_poll_seconds),
                **{
                    slug: bundle_config(f"bundles/orgs/{slug}", self.long_poll_seconds)
                    for slug in slugs
                },
            }
        }
        with tempfile.TemporaryDirectory(prefix="arx-discovery-") as tmp:
            source = Path(tmp) / "discovery"
            source.mkdir()
            body = json.dumps(config, sort_keys=True, indent=1).encode()
            (source / "data.json").write_bytes(body)
            (source / ".manifest").write_text(json.dumps({"roots": ["bundles"]}))
            revision = source_revision(source, name="discovery")
            data = await self._toolchain.build(
                source, Path(tmp) / "discovery.tar.gz", revision=revision, sign=True
            )
        return Served("discovery", revision, _digest(data), data)

    # -- answering sidecars --------------------------------------------------

    async def _held(
        self, current: Callable[[], str | None], if_none_match: str | None, wait: float
    ) -> bool:
        """Wait (up to ``wait`` s) until ``current()`` differs from the
        sidecar's ETag; True when it does."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, min(wait, float(self.long_poll_seconds)))
        while if_none_match is not None and current() == if_none_match:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            changed = self._changed
            try:
                async with asyncio.timeout(remaining):
                    await changed.wait()
            except TimeoutError:
                return current() != if_none_match
        return True

    async def discovery(self, if_none_match: str | None, wait: float) -> Served | None:
        """The configuration bundle; None when unchanged (304)."""
        if not await self._held(self._discovery_etag, if_none_match, wait):
            return None
        assert self._discovery is not None
        return self._discovery

    def _discovery_etag(self) -> str | None:
        return self._discovery.etag if self._discovery else None

    async def base(self, if_none_match: str | None, wait: float) -> Served | None:
        """The base library; None when unchanged (304). It changes only with
        ARX itself (a new process), but a long poll is still held for its
        wait: answered at once, a sidecar would ask again at once, forever."""
        assert self._base is not None
        base = self._base
        if not await self._held(lambda: base.etag, if_none_match, wait):
            return None
        return base

    async def org(self, slug: str, if_none_match: str | None, wait: float) -> Served | None:
        """The org's active bundle; None when unchanged (304)."""
        if slug not in self._active or _seq(if_none_match) > _seq(self._active[slug]):
            await self._catch_up()
        if slug not in self._active:
            raise NotFoundError(f"no bundle is active for org {slug!r}")
        if not await self._held(lambda: self._active.get(slug), if_none_match, wait):
            return None
        etag = self._active.get(slug)
        if etag is None:
            raise NotFoundError(f"no bundle is active for org {slug!r}")
        cached = self._orgs.get(slug)
        if cached is not None and cached.etag == etag:
            return cached
        async with connection(self._pool) as conn:
            row = await fetch_dict(conn, repo.ACTIVE_BUNDLE, {"slug": slug})
        if row is None:
            raise NotFoundError(f"no bundle is active for org {slug!r}")
        served = Served(
            slug, str(row["revision"]), f"{row['seq']}-{row['etag']}", bytes(row["bundle"])
        )
        self._orgs[slug] = served
        return served

    async def aclose(self) -> None:
        if self._refreshing is not None:
            self._refreshing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refreshing
        self._wake()
