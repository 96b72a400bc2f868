"""A durable local spool for result events the database could not take.

Guarantee: once ``put`` returns, the event survives a crash of this process
(the file and its directory entry are fsync'ed) and is written to the audit
trail by a later ``replay``, exactly once: replaying an event that is
already there is a no-op (``arx.record_result`` ignores a known id), so two
processes replaying one directory, or a replay interrupted half way, cannot
duplicate anything. An event the database refuses for good (not merely
unreachable) is moved to ``failed/`` and reported, so it cannot hold up the
others. Files are 0600 in a 0700 directory: a result may hold what the tool
answered.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from uuid import UUID

from arx.errors import ARXError, ServiceUnavailableError
from arx.logs import get_logger

log = get_logger("arx.audit")

# A temporary file this old belongs to a put that died half way.
_STALE_TMP_SECONDS = 3600


class SpoolUnusableError(RuntimeError):
    """The spool directory cannot be written: results could be lost."""


class ResultSpool:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def ensure(self) -> None:
        """Create the directory (0700) and prove a file can be written and synced."""
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.directory.chmod(0o700)
            probe = self._put(b"{}", ".probe")
            probe.unlink()
        except OSError as exc:
            raise SpoolUnusableError(
                f"the result spool {self.directory} is not writable ({exc.strerror}); "
                "set ARX_SPOOL_DIR to a durable directory this process may write"
            ) from None

    async def put(self, event_id: UUID, data: bytes) -> Path:
        """Keep ``data`` (a result event as JSON) until it is replayed."""
        return await asyncio.to_thread(self._put, data, f"{event_id}.json")

    def _put(self, data: bytes, name: str) -> Path:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        final = self.directory / name
        tmp = self.directory / f".{name}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        tmp.replace(final)
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return final

    def pending(self) -> list[Path]:
        try:
            return sorted(p for p in self.directory.glob("*.json") if p.is_file())
        except OSError:
            return []

    async def replay(self, write: Callable[[bytes], Awaitable[None]]) -> int:
        """Hand each spooled event to ``write``; returns how many went in.

        The round stops while the database is unavailable; an event it
        refuses otherwise is set aside in ``failed/``.
        """
        done = 0
        for path in self.pending():
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue  # another process replayed it
            try:
                await write(data)
            except ServiceUnavailableError:
                break  # still unreachable: the next round tries again
            except ARXError as exc:
                self._set_aside(path, exc)
                continue
            path.unlink(missing_ok=True)
            done += 1
        self._clean_stale_tmp()
        return done

    def _set_aside(self, path: Path, exc: ARXError) -> None:
        failed = self.directory / "failed"
        failed.mkdir(mode=0o700, exist_ok=True)
        path.replace(failed / path.name)
        log.critical(
            "a spooled result event was refused by the audit trail; kept in failed/",
            extra={"file": path.name, "code": exc.code},
        )

    def _clean_stale_tmp(self) -> None:
        cutoff = time.time() - _STALE_TMP_SECONDS
        for tmp in self.directory.glob(".*.tmp"):
            try:
                if tmp.stat().st_mtime < cutoff:
                    tmp.unlink()
            except OSError:
                continue
