"""The per-org hash chain: the canonical encoding of an event and its link hash.

Canonical event (version 1): the event row's columns that are not null,
except ``txid`` (where the sealer found it, not what happened), as one JSON
object with its keys sorted and no whitespace between them, UTF-8. Uuids
are lowercase strings, timestamps RFC 3339 UTC with microseconds and ``Z``
(``2026-12-01T05:43:12.123456Z``), text and text arrays JSON strings
(non-ASCII as is). A json or jsonb column is its text exactly as PostgreSQL
prints it (``SELECT col::text``): jsonb's normal form (``{"a": 1.50, "b":
[1, 2]}``), the ``json`` column (``policy_input``) as written. Nothing is
parsed and re-encoded, so no number is ever rounded (a change in the
twentieth digit of a 40-digit number changes the hash) and no stored value,
however large or deeply nested, can stop the sealer. ``raw_json`` is the
loader that keeps the text. Leaving nulls out keeps an old event's hash
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
from typing import Any
from uuid import UUID

DOMAIN = b"arx.audit.chain.v1\x00"
GENESIS = bytes(32)
# Columns that are bookkeeping of the trail, not part of the event.
NOT_HASHED = frozenset({"txid"})


def timestamp(value: datetime) -> str:
    """RFC 3339 in UTC with microseconds and ``Z``: the one form ARX signs and hashes."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class RawJSON(str):
    """A json/jsonb value as PostgreSQL printed it: hashed verbatim."""

    __slots__ = ()


def raw_json(data: Any) -> RawJSON:
    """The loader for the cursors that read events for hashing
    (``set_json_loads(raw_json, cursor)``): the column's text, unparsed."""
    return RawJSON(bytes(data).decode() if not isinstance(data, str) else data)


def _value(value: Any) -> str:
    if isinstance(value, RawJSON):
        return value
    if isinstance(value, UUID):
        return f'"{value}"'
    if isinstance(value, datetime):
        return f'"{timestamp(value)}"'
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def canonical(row: dict[str, Any]) -> bytes:
    """The canonical encoding of one ``arx.audit_events`` row (as a dict)."""
    fields = sorted((k, v) for k, v in row.items() if v is not None and k not in NOT_HASHED)
    return ("{" + ",".join(f'"{k}":{_value(v)}' for k, v in fields) + "}").encode()


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
