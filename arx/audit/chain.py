"""The per-org hash chain: the canonical encoding of an event and its link hash.

Canonical event (version 1): the event row's columns that are not null,
except ``txid`` (where the sealer found it, not what happened), as one JSON
object: keys sorted, no whitespace, UTF-8, no NaN; uuids as lowercase
strings, timestamps as RFC 3339 UTC with microseconds and ``Z``
(``2026-12-01T05:43:12.123456Z``), JSON columns as the values PostgreSQL
holds (integers stay integers). Leaving nulls out keeps an old event's hash
when a later version of ARX adds a column.

Link (version 1), with ``prev`` 32 zero bytes for an org's first event::

    hash = SHA-256("arx.audit.chain.v1" ‖ 0x00 ‖ org id (16 bytes) ‖
                   org_seq (8 bytes, big-endian) ‖ prev (32 bytes) ‖ canonical event)

The domain tag and the fixed-width fields before the variable-length event
leave no two different inputs with the same bytes; the org id and position
make a link meaningless anywhere else.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

DOMAIN = b"arx.audit.chain.v1\x00"
GENESIS = bytes(32)
# Columns that are bookkeeping of the trail, not part of the event.
NOT_HASHED = frozenset({"txid"})


def timestamp(value: datetime) -> str:
    """RFC 3339 in UTC with microseconds and ``Z``: the one form ARX signs and hashes."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _plain(value: Any) -> Any:
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return timestamp(value)
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def canonical(row: dict[str, Any]) -> bytes:
    """The canonical encoding of one ``arx.audit_events`` row (as a dict)."""
    doc = {k: _plain(v) for k, v in row.items() if v is not None and k not in NOT_HASHED}
    return json.dumps(
        doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def link(org_id: UUID, org_seq: int, prev: bytes, event: bytes) -> bytes:
    """The chain hash of the event at ``org_seq`` (``event``: its canonical bytes)."""
    if len(prev) != 32:
        raise ValueError("prev must be a 32-byte hash")
    digest = hashlib.sha256(DOMAIN)
    digest.update(org_id.bytes)
    digest.update(org_seq.to_bytes(8, "big"))
    digest.update(prev)
    digest.update(event)
    return digest.digest()
