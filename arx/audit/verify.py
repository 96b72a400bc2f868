"""``arx audit verify``: recompute an org's chain and checkpoints from what the
database holds, and say where the trail stops being what was sealed.

What each kind of tampering looks like here:
- ``event_modified``: an event's canonical bytes no longer give its link's hash;
- ``events_swapped``: two events each hash correctly at the other's place;
- ``event_deleted``: a link names an event the table no longer has, at a
  position no retention event names (``arx db retention`` drops whole
  months and records, per org, an ``audit.retention`` event naming the
  positions it removed: there the walk goes on from the link's stored hash);
- ``link_missing``: the chain skips an org_seq (links removed);
- ``event_inserted``: an event the sealer has passed (it is below the seal
  cursor) that no link names: slipped into the past;
- ``chain_rewritten``: the links were recomputed to hide a change, so a
  signed checkpoint no longer matches the chain at its org_seq;
- ``checkpoint_forged``: a checkpoint whose signature does not verify with
  any known public key (or names an unknown key);
- ``checkpoint_deleted``: the checkpoints of the org are not numbered 1..n;
- ``retention_invalid``: a retention event names positions at or after its
  own, past the last signed checkpoint, or not as [first, last] ranges;
- ``tail_truncated``: the chain ends before a signed checkpoint, or before
  the head this host's sealer recorded in its witness file outside the
  database (links and events removed after the last checkpoint).
The first problem in chain order is reported; events not yet sealed are
counted, not judged.
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from psycopg import AsyncServerCursor
from psycopg.rows import dict_row
from psycopg.types.json import set_json_loads
from psycopg_pool import AsyncConnectionPool

from arx.audit import chain
from arx.audit.checkpoints import (
    CheckpointExport,
    ExportedCheckpoint,
    PublicKeyInfo,
    key_id,
    public_pem,
    statement,
    valid,
)
from arx.audit.sealer import read_witness
from arx.db.pool import Conn, connection, fetch_all, org_transaction
from arx.identity.orgs import require_org

# How far apart two swapped events are looked for.
SWAP_WINDOW = 64

# The chain in order, each link with its event (all nulls when it is gone),
# read through a server-side cursor a batch at a time: memory stays a batch
# (and the swap window) however long the org's history.
WALK = (
    "SELECT c.org_seq AS link_org_seq, c.event_id AS link_event_id, c.hash AS link_hash, e.*"
    " FROM arx.audit_chain c"
    " LEFT JOIN arx.audit_events e ON e.org_id = c.org_id AND e.id = c.event_id"
    " WHERE c.org_seq > %(after)s ORDER BY c.org_seq"
)
# Before a trusted checkpoint only the positions matter (gap-free), not the
# events: verify --from-checkpoint reads no event it will not judge.
PREFIX = "SELECT org_seq FROM arx.audit_chain WHERE org_seq <= %(upto)s ORDER BY org_seq"
COUNTS = (
    "SELECT (SELECT count(*) FROM arx.audit_events) AS events,"
    " (SELECT count(*) FROM arx.audit_chain) AS links"
)
# Events no link names, by where they stand against the seal cursor: after
# it they are not sealed yet; at or before it they slipped into the past.
STRAYS = (
    "SELECT count(*) FILTER (WHERE %(txid)s::xid8 IS NULL"
    " OR (e.txid, e.seq) > (%(txid)s::xid8, %(seq)s)) AS unsealed,"
    " (array_agg(e.id ORDER BY e.txid, e.seq) FILTER (WHERE %(txid)s::xid8 IS NOT NULL"
    " AND (e.txid, e.seq) <= (%(txid)s::xid8, %(seq)s)))[1] AS inserted"
    " FROM arx.audit_events e WHERE NOT EXISTS (SELECT FROM arx.audit_chain c"
    " WHERE c.org_id = e.org_id AND c.event_id = e.id)"
)
# The positions retention removed, as the chained audit.retention events
# name them ([first, last] ranges), each with its own position. Only the
# owner's retention function writes these (row-level security refuses the
# API's roles); the walk judges each like any event.
RETAINED = (
    "SELECT c.org_seq AS at, e.details -> 'org_seq' AS ranges FROM arx.audit_events e"
    " JOIN arx.audit_chain c ON c.org_id = e.org_id AND c.event_id = e.id"
    " WHERE e.kind = 'admin' AND e.action = 'audit.retention' ORDER BY c.org_seq"
)
# A result event may hold a tool's answer of up to ARX_MAX_TOOL_RESPONSE_BYTES.
WALK_BATCH = 100
CHECKPOINTS = (
    "SELECT checkpoint_no, org_seq, hash, signed_at, key_id, signature"
    " FROM arx.audit_checkpoints ORDER BY checkpoint_no"
)
CURSOR = "SELECT txid::text AS txid, seq FROM arx.seal_cursor()"
SET_ORG = "SELECT set_config('arx.org_id', %s, true)"
EXPORTED_CHECKPOINTS = (
    "SELECT checkpoint_no, org_seq, encode(hash, 'hex') AS hash, signed_at, key_id,"
    " encode(signature, 'hex') AS signature FROM arx.audit_checkpoints ORDER BY checkpoint_no"
)


class Divergence(msgspec.Struct, frozen=True, kw_only=True):
    kind: str
    org_seq: int | None
    event_id: UUID | None = None
    detail: str


class VerifyReport(msgspec.Struct, frozen=True, kw_only=True):
    ok: bool
    org_id: UUID
    events: int
    chained: int
    unsealed: int
    # Links whose events retention removed: their stored hashes were taken.
    retained: int = 0
    checkpoints: int
    last_checkpoint_org_seq: int | None
    first_problem: Divergence | None
    verified_at: datetime


async def verify_org(
    pool: AsyncConnectionPool[Conn],
    org_id: UUID,
    *,
    public_keys: list[Ed25519PublicKey],
    witness: Path | None = None,
    from_checkpoint: int | None = None,
    now: datetime,
) -> VerifyReport:
    # The witness before the database: the sealer writes it after each
    # commit, so read first it can only be behind what the database shows.
    witnessed = read_witness(witness).get(str(org_id)) if witness else None
    async with connection(pool) as conn, conn.transaction():
        # One snapshot for every read: a batch the sealer commits meanwhile
        # is either wholly in it or wholly not.
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        await conn.execute(SET_ORG, (str(org_id),))
        await require_org(conn, org_id)
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(CHECKPOINTS)
        checkpoints = await cur.fetchall()
        await cur.execute(CURSOR)
        cursor = await cur.fetchone()
        await cur.execute(COUNTS)
        counts = await cur.fetchone()
        assert counts is not None
        check = _Check(org_id, counts["links"])
        signed = check.checkpoints(checkpoints, {key_id(k): k for k in public_keys})
        await cur.execute(RETAINED)
        check.retention(await cur.fetchall(), signed)
        start = check.anchor(checkpoints, signed, from_checkpoint)
        wanted = {*signed, *([witnessed[0]] if witnessed else [])}
        computed: dict[int, bytes] = {}
        prefix = conn.cursor("arx_verify_prefix")
        await prefix.execute(PREFIX, {"upto": start[0]})
        if await check.gap_free(prefix):
            walk = conn.cursor("arx_verify_walk", row_factory=dict_row)
            set_json_loads(chain.raw_json, walk)
            await walk.execute(WALK, {"after": start[0]})
            computed = await check.walk(walk, start, wanted)
            await walk.close()
        await prefix.close()
        await cur.execute(
            STRAYS,
            {"txid": cursor["txid"] if cursor else None, "seq": cursor["seq"] if cursor else 0},
        )
        strays = await cur.fetchone()
    assert strays is not None
    check.heads(signed, computed, witnessed)
    unsealed = check.strays(strays)
    problems = check.problems
    return VerifyReport(
        ok=not problems,
        org_id=org_id,
        events=counts["events"],
        chained=counts["links"],
        unsealed=unsealed,
        retained=check.retained,
        checkpoints=len(checkpoints),
        last_checkpoint_org_seq=checkpoints[-1]["org_seq"] if checkpoints else None,
        # In chain order; problems of no position (a stray event) after those.
        first_problem=min(problems, key=lambda p: (p.org_seq is None, p.org_seq or 0))
        if problems
        else None,
        verified_at=now,
    )


async def export_checkpoints_of(
    pool: AsyncConnectionPool[Conn], org_id: UUID, public_keys: list[Ed25519PublicKey]
) -> CheckpointExport:
    """The org's signed checkpoints and the public keys that signed them:
    what an auditor keeps."""
    async with org_transaction(pool, org_id) as conn:
        await require_org(conn, org_id)
        rows = await fetch_all(conn, EXPORTED_CHECKPOINTS, None, ExportedCheckpoint)
    keys = [PublicKeyInfo(key_id=key_id(k), pem=public_pem(k).decode()) for k in public_keys]
    return CheckpointExport(org_id=org_id, public_keys=keys, checkpoints=rows)


class _Check:
    """One verification's state: what is left to judge, and what was found."""

    def __init__(self, org_id: UUID, links: int) -> None:
        self.org_id = org_id
        self.links = links
        self.removed: list[tuple[int, int]] = []
        self._starts: list[int] = []
        self.retained = 0
        self.problems: list[Divergence] = []

    def retention(self, events: list[dict[str, Any]], signed: dict[int, bytes]) -> None:
        """The positions retention may have removed: ranges a chained
        retention event names, before its own position, and already under a
        signed checkpoint (retention refuses anything else)."""
        last_signed = max(signed, default=0)
        for event in events:
            at, ranges = event["at"], event["ranges"]
            valid = isinstance(ranges, list) and all(
                isinstance(r, list)
                and len(r) == 2
                and all(type(n) is int for n in r)
                and 1 <= r[0] <= r[1] < at
                and r[1] <= last_signed
                for r in ranges
            )
            if not valid:
                self._found(
                    "retention_invalid",
                    at,
                    None,
                    f"the retention event at org_seq {at} names positions retention "
                    "could not have removed",
                )
                continue
            self.removed.extend((r[0], r[1]) for r in ranges)
        self.removed = _merged(self.removed)
        self._starts = [first for first, _ in self.removed]

    def _retained(self, seq: int) -> bool:
        """Whether retention removed the event at ``seq`` (a search, not a scan:
        a walk may cross millions of removed events)."""
        at = bisect_right(self._starts, seq) - 1
        return at >= 0 and seq <= self.removed[at][1]

    def checkpoints(
        self, checkpoints: list[dict[str, Any]], keys: dict[str, Ed25519PublicKey]
    ) -> dict[int, bytes]:
        """org_seq → head of every checkpoint signed by a known key."""
        signed: dict[int, bytes] = {}
        for number, cp in enumerate(checkpoints, start=1):
            if cp["checkpoint_no"] != number:
                self._found(
                    "checkpoint_deleted",
                    cp["org_seq"],
                    None,
                    f"checkpoint {number} is missing (the next is {cp['checkpoint_no']})",
                )
                break
            message = statement(
                org_id=self.org_id,
                checkpoint_no=cp["checkpoint_no"],
                org_seq=cp["org_seq"],
                head=bytes(cp["hash"]),
                signed_at=cp["signed_at"],
                kid=cp["key_id"],
            )
            key = keys.get(cp["key_id"])
            if key is None or not valid(key, message, bytes(cp["signature"])):
                self.problems.append(
                    Divergence(
                        kind="checkpoint_forged",
                        org_seq=cp["org_seq"],
                        detail=f"checkpoint {cp['checkpoint_no']} is not signed by a known key",
                    )
                )
                continue
            signed[cp["org_seq"]] = bytes(cp["hash"])
        return signed

    def anchor(
        self, checkpoints: list[dict[str, Any]], signed: dict[int, bytes], number: int | None
    ) -> tuple[int, bytes]:
        """Where the walk starts: the beginning, or a validly signed checkpoint."""
        if number is None:
            return 0, chain.GENESIS
        found = next((c for c in checkpoints if c["checkpoint_no"] == number), None)
        if found is None or found["org_seq"] not in signed:
            self.problems.append(
                Divergence(
                    kind="checkpoint_forged",
                    org_seq=None,
                    detail=f"checkpoint {number} is missing or not validly signed",
                )
            )
            return 0, chain.GENESIS
        return found["org_seq"], signed[found["org_seq"]]

    async def gap_free(self, positions: AsyncServerCursor[Any]) -> bool:
        """The chain up to the start holds 1, 2, 3, … with no gap."""
        position = 0
        while batch := await positions.fetchmany(10_000):
            for (seq,) in batch:
                position += 1
                if seq != position:
                    self._found(
                        "link_missing", position, None, f"the chain skips org_seq {position}"
                    )
                    return False
        return True

    async def walk(
        self,
        rows: AsyncServerCursor[dict[str, Any]],
        start: tuple[int, bytes],
        wanted: set[int],
    ) -> dict[int, bytes]:
        """Recompute every link after ``start``; stop at the first that fails.
        Returns the recomputed hashes at the ``wanted`` positions."""
        start_seq, prev = start
        computed: dict[int, bytes] = {}
        position = start_seq
        while batch := await rows.fetchmany(WALK_BATCH):
            for row in batch:
                position += 1
                seq, linked = row["link_org_seq"], row["link_event_id"]
                if seq != position:
                    self._found(
                        "link_missing", position, None, f"the chain skips org_seq {position}"
                    )
                    return computed
                if row["id"] is None:
                    if not self._retained(seq):
                        self._found(
                            "event_deleted", seq, linked, f"the event at org_seq {seq} is gone"
                        )
                        return computed
                    # Dropped by retention: its hash is what was sealed then
                    # (a checkpoint after it still signs what follows).
                    self.retained += 1
                    prev = bytes(row["link_hash"])
                    if seq in wanted:
                        computed[seq] = prev
                    continue
                digest = chain.link(self.org_id, seq, prev, chain.canonical(_event(row)))
                if digest != bytes(row["link_hash"]):
                    ahead = await rows.fetchmany(SWAP_WINDOW)
                    later = batch[batch.index(row) + 1 :] + ahead
                    self.problems.append(self._modified_or_swapped(row, later[:SWAP_WINDOW], prev))
                    return computed
                if seq in wanted:
                    computed[seq] = digest
                prev = digest
        return computed

    def heads(
        self,
        signed: dict[int, bytes],
        computed: dict[int, bytes],
        witnessed: tuple[int, str] | None,
    ) -> None:
        """Signed heads (checkpoints, the witness) the chain must still reach and match."""
        head = self.links
        for seq, digest in sorted(signed.items()):
            if seq > head:
                self._found(
                    "tail_truncated",
                    head + 1,
                    None,
                    f"the chain ends at org_seq {head}, before a checkpoint at {seq}",
                )
            elif seq in computed and computed[seq] != digest:
                self._found(
                    "chain_rewritten",
                    seq,
                    None,
                    f"the chain at org_seq {seq} is not what was signed",
                )
        if witnessed is not None and witnessed[0] > head:
            self._found(
                "tail_truncated",
                head + 1,
                None,
                f"the chain ends at org_seq {head}; this host sealed it to {witnessed[0]}",
            )
        elif (
            witnessed is not None
            and witnessed[0] in computed
            and computed[witnessed[0]].hex() != witnessed[1]
        ):
            self._found(
                "chain_rewritten",
                witnessed[0],
                None,
                f"the chain at org_seq {witnessed[0]} is not what this host sealed",
            )

    def strays(self, found: dict[str, Any]) -> int:
        """Events no link names: slipped in below the cursor, or not sealed yet."""
        if found["inserted"] is not None:
            self._found(
                "event_inserted",
                None,
                found["inserted"],
                "an event the sealer has passed is in no link",
            )
        return int(found["unsealed"])

    def _found(self, kind: str, seq: int | None, event_id: UUID | None, detail: str) -> None:
        self.problems.append(Divergence(kind=kind, org_seq=seq, event_id=event_id, detail=detail))

    def _modified_or_swapped(
        self, row: dict[str, Any], later: list[dict[str, Any]], prev: bytes
    ) -> Divergence:
        """An event that does not hash to its link: is it a later link's event?"""
        seq, stored = row["link_org_seq"], bytes(row["link_hash"])
        for other in later:
            if other["id"] is None:
                continue
            if chain.link(self.org_id, seq, prev, chain.canonical(_event(other))) == stored:
                return Divergence(
                    kind="events_swapped",
                    org_seq=seq,
                    event_id=row["link_event_id"],
                    detail=f"the events at org_seq {seq} and {other['link_org_seq']} were swapped",
                )
        return Divergence(
            kind="event_modified",
            org_seq=seq,
            event_id=row["link_event_id"],
            detail=f"the event at org_seq {seq} is not what was sealed",
        )


def _merged(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, with overlapping or touching ranges made one."""
    merged: list[tuple[int, int]] = []
    for first, last in sorted(ranges):
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return merged


def _event(row: dict[str, Any]) -> dict[str, Any]:
    """The event's own columns of a walk row."""
    return {k: v for k, v in row.items() if not k.startswith("link_")}
