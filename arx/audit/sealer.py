"""The sealer: follows commits, chains each org's events, signs checkpoints.

Runs in every API process that has a control plane, off the execute path:
an execute commits its events and returns; within about a second the sealer
gives them their org_seq and hash (migration 0016 says why the order is the
commit order and gap-free). Several processes may run it; the database lets
one batch through at a time and refuses a batch that does not start where
the cursor is, so a process that lost the race reads again.

With a signing key it also signs, per org, the chain head once it has moved
and the last checkpoint is ``checkpoint_seconds`` old (or the org has
none). After each batch it records every org's new head in the witness file
beside the key (outside the database): a tail removed after the last
checkpoint, links and all, leaves the database consistent but behind the
witness.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb, set_json_loads
from psycopg_pool import AsyncConnectionPool

from arx.audit import chain
from arx.audit.checkpoints import Signer, statement
from arx.db.pool import Conn, connection
from arx.logs import get_logger

log = get_logger("arx.audit.sealer")

# Events per round trip: a result event may hold a tool's answer (up to
# ARX_MAX_TOOL_RESPONSE_BYTES), so a batch stays small in memory.
BATCH = 200

UNSEALED = "SELECT * FROM arx.unsealed_events(%s)"
CURSOR = "SELECT txid::text AS txid, seq FROM arx.seal_cursor()"
HEADS = "SELECT org_id, org_seq, hash FROM arx.chain_heads(%s)"
APPEND = "SELECT arx.append_chain(%s::xid8, %s, %s::xid8, %s, %s)"
DUE = "SELECT org_id, checkpoint_no, org_seq, hash FROM arx.checkpoints_due(%s)"
CHECKPOINT = "SELECT arx.append_checkpoint(%s, %s, %s, %s, %s, %s, %s)"


class Sealer:
    def __init__(
        self,
        pool: AsyncConnectionPool[Conn],
        *,
        signer: Signer | None,
        witness: Path | None,
        interval_seconds: float = 0.5,
        checkpoint_seconds: float = 60.0,
    ) -> None:
        self._pool = pool
        self._signer = signer
        self._witness = witness
        self._interval = interval_seconds
        self._checkpoint_seconds = checkpoint_seconds

    async def seal_once(self) -> int:
        """Chain the next batch of committed events; how many were chained."""
        async with connection(self._pool) as conn:
            cur = conn.cursor(row_factory=dict_row)
            set_json_loads(chain.raw_json, cur)
            await cur.execute(CURSOR)
            start = await cur.fetchone()
            await cur.execute(UNSEALED, (BATCH,))
            rows = await cur.fetchall()
            if not rows or start is None:
                return 0
            orgs = sorted({row["org_id"] for row in rows})
            await cur.execute(HEADS, (orgs,))
            heads: dict[UUID, tuple[int, bytes]] = {
                h["org_id"]: (h["org_seq"], bytes(h["hash"])) for h in await cur.fetchall()
            }
            links = []
            for row in rows:
                seq, prev = heads.get(row["org_id"], (0, chain.GENESIS))
                digest = chain.link(row["org_id"], seq + 1, prev, chain.canonical(row))
                heads[row["org_id"]] = (seq + 1, digest)
                links.append(
                    {
                        "org_id": str(row["org_id"]),
                        "org_seq": seq + 1,
                        "event_id": str(row["id"]),
                        "hash": digest.hex(),
                    }
                )
            last = rows[-1]
            await cur.execute(
                APPEND, (start["txid"], start["seq"], str(last["txid"]), last["seq"], Jsonb(links))
            )
            done = await cur.fetchone()
        if done is None or not done["append_chain"]:
            return 0
        if self._witness is not None:
            # Outside the database: the head each org's chain reached.
            sealed = {str(org): (seq, digest.hex()) for org, (seq, digest) in heads.items()}
            await asyncio.to_thread(record_witness, self._witness, sealed)
        return len(rows)

    async def checkpoint_once(self) -> int:
        """Sign the heads that are due; how many checkpoints were written."""
        if self._signer is None:
            return 0
        async with connection(self._pool) as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(DUE, (self._checkpoint_seconds,))
            due = await cur.fetchall()
            witnessed = (
                await asyncio.to_thread(read_witness, self._witness) if self._witness else {}
            )
            signed = 0
            for row in due:
                now = datetime.now(UTC)
                head = bytes(row["hash"])
                seen = witnessed.get(str(row["org_id"]))
                if seen is not None and seen[0] == row["org_seq"] and seen[1] != head.hex():
                    # The database's head is not the one this host sealed:
                    # never sign a rewritten chain.
                    log.error(
                        "audit chain head differs from what this host sealed; not signed",
                        extra={"org_id": str(row["org_id"]), "org_seq": row["org_seq"]},
                    )
                    continue
                message = statement(
                    org_id=row["org_id"],
                    checkpoint_no=row["checkpoint_no"],
                    org_seq=row["org_seq"],
                    head=head,
                    signed_at=now,
                    kid=self._signer.kid,
                )
                await cur.execute(
                    CHECKPOINT,
                    (
                        row["org_id"],
                        row["checkpoint_no"],
                        row["org_seq"],
                        head,
                        now,
                        self._signer.kid,
                        self._signer.sign(message),
                    ),
                )
                signed += 1
        return signed

    async def run_forever(self) -> None:
        while True:
            try:
                while await self.seal_once() >= BATCH:
                    pass
                await self.checkpoint_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the next round tries again
                log.warning("audit sealing failed", extra={"exc_type": type(exc).__name__})
            await asyncio.sleep(self._interval)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def read_witness(path: Path) -> dict[str, tuple[int, str]]:
    """org id → (org_seq, hash hex) of the latest signed head this host saw."""
    try:
        doc: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {org: (int(v[0]), str(v[1])) for org, v in doc.items()}


def record_witness(path: Path, heads: dict[str, tuple[int, str]]) -> None:
    """Merge ``heads`` into the witness (the furthest head per org wins)."""
    with _locked(path):
        current = read_witness(path)
        for org, (seq, digest) in heads.items():
            if org not in current or current[org][0] < seq:
                current[org] = (seq, digest)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({k: list(v) for k, v in sorted(current.items())}))
        os.replace(tmp, path)
